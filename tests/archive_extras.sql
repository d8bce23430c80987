-- Object kinds the fixtures and corpora lack, for tests/archive.rs: each kind's header, owner
-- statement and restore pass must come out as pg_restore prints them.
CREATE SCHEMA "Odd Schema";
CREATE SCHEMA app AUTHORIZATION pgalign_archive_role;
CREATE TABLE "Odd Schema"."select" (id int PRIMARY KEY, "Name" text);
CREATE TABLE app."new
line" (a int);
COMMENT ON TABLE app."new
line" IS 'two
lines';
CREATE TABLE app."user" (id int);
CREATE TABLE app.json_table (id int);
ALTER TABLE app."user" OWNER TO pgalign_archive_role;
CREATE VIEW app.v AS SELECT 1 AS x;
ALTER VIEW app.v OWNER TO pgalign_archive_role;
CREATE MATERIALIZED VIEW app.mv AS SELECT 1 AS x;
CREATE SEQUENCE app.s;
GRANT SELECT ON app.v TO PUBLIC;
GRANT USAGE ON SCHEMA app TO PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO pgalign_archive_role;
CREATE ACCESS METHOD heap2 TYPE TABLE HANDLER heap_tableam_handler;
CREATE TABLE app.t_am (a int) USING heap2;
CREATE TABLE app.p (a int) PARTITION BY RANGE (a);
CREATE TABLE app.p1 PARTITION OF app.p FOR VALUES FROM (1) TO (10);
CREATE TABLE app.p2 PARTITION OF app.p FOR VALUES FROM (10) TO (20) USING heap2;
CREATE FUNCTION app.f(a int) RETURNS int LANGUAGE sql AS 'SELECT a';
CREATE PROCEDURE app.pr(a int) LANGUAGE sql AS 'SELECT 1';
CREATE AGGREGATE app.agg(int) (sfunc = int4pl, stype = int);
CREATE FUNCTION app.eq(int, int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT $1 = $2';
CREATE OPERATOR app.=== (leftarg = int, rightarg = int, function = app.eq);
CREATE OPERATOR FAMILY app.fam USING btree;
CREATE OPERATOR CLASS app.cls FOR TYPE int USING btree FAMILY app.fam AS OPERATOR 1 <, FUNCTION 1 btint4cmp(int, int);
CREATE TYPE app.mood AS ENUM ('sad', 'ok');
CREATE DOMAIN app.pos AS int CHECK (VALUE > 0);
CREATE COLLATION app.coll (provider = libc, locale = 'C');
CREATE CONVERSION app.conv FOR 'LATIN1' TO 'UTF8' FROM iso8859_1_to_utf8;
CREATE TEXT SEARCH CONFIGURATION app.ts (COPY = pg_catalog.english);
CREATE TEXT SEARCH DICTIONARY app.dict (TEMPLATE = pg_catalog.simple);
CREATE TABLE app.two (a int, b int);
CREATE STATISTICS app.st ON a, b FROM app.two;
CREATE FOREIGN DATA WRAPPER fdw;
CREATE SERVER srv FOREIGN DATA WRAPPER fdw;
CREATE USER MAPPING FOR pgalign_archive_role SERVER srv;
CREATE FOREIGN TABLE app.ft (a int) SERVER srv;
CREATE PUBLICATION pub FOR TABLE app.json_table;
CREATE FUNCTION app.on_ddl() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END';
CREATE EVENT TRIGGER et ON ddl_command_start EXECUTE FUNCTION app.on_ddl();
COMMENT ON EVENT TRIGGER et IS 'after the ACLs';
CREATE INDEX ON app."user" (id);
CREATE RULE r AS ON INSERT TO app.json_table DO NOTHING;
CREATE POLICY pol ON app."user" USING (true);
ALTER TABLE app."user" ENABLE ROW LEVEL SECURITY;
