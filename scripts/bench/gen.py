#!/usr/bin/env python3
"""Generates a realistic multi-tenant PostgreSQL schema of about N tables for scripts/bench.sh.

    gen.py --tables N --variant a|b [--change-pct 2] [--summary FILE] > schema.sql

Variant `a` is the base schema. Variant `b` is the same schema with about --change-pct percent of
its objects (as pg_dump counts them: tables, constraints, indexes, triggers, comments, grants, ...)
changed: columns added, dropped, retyped, defaults and NOT NULL changed, indexes added, dropped and
changed, check and unique constraints, comments, grants and triggers changed, tables dropped and
added, function bodies and view comments changed, an enum label added, a sequence altered. Both variants come from one seeded model, so a given
(N, variant) always produces the same bytes: scripts/bench.sh hashes this file to decide whether a
database it loaded earlier is still current.

The mix: a `shared` schema (enums, domains, lookup tables, trigger functions, an audit log) and
tenant schemas `tenant_NNN` (multi-tenant SaaS style) holding tables with identity, bigserial and
uuid keys, foreign keys (some composite-key link tables, some to the shared lookups), unique and
check constraints, plain, partial, expression, GIN, DESC and INCLUDE indexes, views, a
materialized view, plpgsql and SQL functions, a procedure, triggers, a per-tenant enum, standalone
sequences, comments, grants to pgalign_bench_* roles (including column grants and default
privileges), and a few range- and list-partitioned tables.

N counts every table: regular tables, partitioned parents and their partitions. The output is
split into transactions of a few hundred statements: one transaction creating 10,000 tables would
need more lock slots than a default server has (max_locks_per_transaction).

Python standard library only.
"""

import argparse
import random
import sys

ROLE_RO = "pgalign_bench_readonly"
ROLE_RW = "pgalign_bench_readwrite"
ROLE_APP = "pgalign_bench_app"
ROLES = (ROLE_RO, ROLE_RW, ROLE_APP)

NOUNS = (
    "account", "address", "agent", "alert", "asset", "attachment", "audit", "batch", "bill",
    "booking", "branch", "budget", "campaign", "card", "cart", "case", "category", "channel",
    "charge", "claim", "client", "comment", "contact", "contract", "coupon", "credit", "customer",
    "deal", "delivery", "device", "discount", "document", "employee", "entry", "estimate",
    "expense", "feature", "feedback", "file", "fleet", "goal", "grant", "group", "holiday",
    "incident", "invoice", "item", "job", "journal", "ledger", "lead", "lesson", "license",
    "location", "lot", "meeting", "member", "message", "meter", "milestone", "note", "offer",
    "order", "owner", "package", "partner", "payment", "payout", "period", "permit", "plan",
    "policy", "post", "price", "product", "project", "promotion", "quote", "rate", "receipt",
    "refund", "region", "reminder", "report", "request", "reservation", "resource", "review",
    "reward", "route", "rule", "sale", "schedule", "seat", "segment", "session", "shift",
    "shipment", "site", "sku", "slot", "source", "sprint", "stage", "store", "subscription",
    "supplier", "survey", "task", "team", "template", "territory", "ticket", "timesheet",
    "token", "topic", "tour", "trade", "transfer", "trip", "unit", "upload", "usage", "vehicle",
    "vendor", "visit", "voucher", "warehouse", "webhook", "widget", "workflow", "zone",
)
QUALIFIERS = (
    "line", "log", "history", "version", "link", "event", "tag", "snapshot", "summary", "queue",
    "detail", "setting", "status", "archive", "map", "stat", "rule", "note", "item", "role",
)

# (name, type, default, NOT NULL probability). `{enum}` is the tenant's enum.
PLAIN_COLUMNS = (
    ("name", "text", None, 0.8),
    ("title", "character varying(200)", None, 0.5),
    ("code", "character varying(32)", None, 0.6),
    ("description", "text", None, 0.0),
    ("email", "shared.email", None, 0.3),
    ("status", "shared.status", "'active'::shared.status", 0.9),
    ("priority", "shared.priority", "'medium'::shared.priority", 0.5),
    ("amount", "shared.money_amount", "0", 0.7),
    ("price", "numeric(12,2)", None, 0.3),
    ("quantity", "integer", "0", 0.8),
    ("position", "smallint", None, 0.2),
    ("score", "real", None, 0.0),
    ("ratio", "double precision", None, 0.0),
    ("is_active", "boolean", "true", 1.0),
    ("is_archived", "boolean", "false", 1.0),
    ("metadata", "jsonb", "'{}'::jsonb", 0.9),
    ("tags", "text[]", "'{}'::text[]", 0.5),
    ("ip_address", "inet", None, 0.0),
    ("external_ref", "uuid", None, 0.1),
    ("payload", "bytea", None, 0.0),
    ("starts_on", "date", None, 0.5),
    ("valid_during", "tstzrange", None, 0.0),
    ("country_code", "character(2)", None, 0.3),
    ("currency", "character(3)", "'EUR'::bpchar", 0.9),
    ("discount", "shared.percentage", None, 0.0),
    ("version", "integer", "1", 1.0),
    ("notes", "text", None, 0.0),
    ("counter", "bigint", "0", 0.9),
    ("locale", "character varying(10)", "'en'::character varying", 0.5),
    ("kind", "{enum}", None, 0.4),
    ("deleted_at", "timestamp with time zone", None, 0.0),
    ("updated_at", "timestamp with time zone", None, 0.0),
)

CHECKS = {
    "quantity": "quantity >= 0",
    "price": "price >= (0)::numeric",
    "position": "position >= 0 AND position <= 1000",
    "code": "char_length((code)::text) > 0",
    "score": "score >= (0)::double precision",
    "counter": "counter >= 0",
    "version": "version > 0",
    "name": "name <> ''::text",
}


def q(ident):
    """Quotes identifiers that are keywords in our vocabulary (position, order, ...)."""
    if ident in ("position", "order", "case", "grant", "group", "user", "check", "table"):
        return '"%s"' % ident
    return ident


class Col:
    def __init__(self, name, typ, default=None, notnull=False, identity=None):
        self.name, self.type, self.default, self.notnull, self.identity = name, typ, default, notnull, identity

    def sql(self):
        s = "    %s %s" % (q(self.name), self.type)
        if self.identity:
            s += " GENERATED %s AS IDENTITY" % self.identity
        if self.default is not None:
            s += " DEFAULT %s" % self.default
        if self.notnull:
            s += " NOT NULL"
        return s


class Index:
    def __init__(self, name, cols, unique=False, method=None, where=None, include=None):
        self.name, self.cols, self.unique, self.method, self.where, self.include = name, cols, unique, method, where, include

    def sql(self, t):
        s = "CREATE %sINDEX %s ON %s" % ("UNIQUE " if self.unique else "", self.name, t.qname())
        if self.method:
            s += " USING %s" % self.method
        s += " (%s)" % ", ".join(self.cols)
        if self.include:
            s += " INCLUDE (%s)" % ", ".join(q(c) for c in self.include)
        if self.where:
            s += " WHERE %s" % self.where
        return s + ";"


class Table:
    def __init__(self, schema, name):
        self.schema, self.name = schema, name
        self.cols = []
        self.pk = None  # (constraint name, [cols])
        self.pk_type = None  # type an FK to this table's `id` uses, None when not referenceable
        self.uniques = []  # (name, [cols])
        self.checks = []  # (name, expr)
        self.fks = []  # (name, [cols], Table, [ref cols], on_delete, deferrable)
        self.indexes = []
        self.triggers = []  # (name, sql)
        self.comment = None
        self.col_comments = {}
        self.grants = []  # (privileges, role, column or None)
        self.partition_by = None
        self.partition_of = None  # (parent Table, bound)
        self.used = set()  # columns something else depends on: never dropped or retyped
        self.dependents = 0  # FKs, views, functions pointing here: never dropped

    def qname(self):
        return "%s.%s" % (self.schema, q(self.name))

    def col(self, name):
        for c in self.cols:
            if c.name == name:
                return c
        return None

    def colnames(self):
        return {c.name for c in self.cols}


class Model:
    def __init__(self):
        self.tenants = []  # schema names
        self.tables = {}  # schema -> [Table]
        self.enums = {}  # qualified name -> [labels]
        self.sequences = {}  # schema -> [(name, options)]
        self.functions = {}  # schema -> [(signature, sql, comment, grants)]
        self.views = {}  # schema -> [[name, sql, comment, grants]]
        self.matviews = {}  # schema -> [(name, sql, index sql)]
        self.schema_comments = {}
        self.default_privs = []  # schemas
        self.changes = {}  # what variant b changed: kind -> count


def table_name(rng, taken):
    for _ in range(50):
        n = rng.choice(NOUNS)
        if rng.random() < 0.7:
            n += "_" + rng.choice(QUALIFIERS)
        if rng.random() < 0.15:
            n = rng.choice(NOUNS) + "_" + n
        if n not in taken and len(n) <= 26:
            taken.add(n)
            return n
    i = 2
    while True:
        n = "%s_%d" % (rng.choice(NOUNS), i)
        if n not in taken:
            taken.add(n)
            return n
        i += 1


def add_regular_table(rng, m, schema, name, earlier, enum_name):
    t = Table(schema, name)
    link = len([e for e in earlier if e.pk_type]) >= 2 and rng.random() < 0.08
    if link:
        a, b = rng.sample([e for e in earlier if e.pk_type], 2)
        if a.name == b.name:
            link = False
    if link:
        for p in (a, b):
            c = "%s_id" % p.name
            t.cols.append(Col(c, p.pk_type, notnull=True))
            t.fks.append(("%s_%s_fkey" % (name, c), [c], p, ["id"], "CASCADE", False))
            p.dependents += 1
            t.used.add(c)
        t.pk = ("%s_pkey" % name, ["%s_id" % a.name, "%s_id" % b.name])
        t.cols.append(Col("created_at", "timestamp with time zone", "now()", True))
        t.used.add("created_at")
        t.indexes.append(Index("%s_%s_id_idx" % (name, b.name), ["%s_id" % b.name]))
    else:
        r = rng.random()
        if r < 0.6:
            t.cols.append(Col("id", "bigint", notnull=True, identity=rng.choice(["BY DEFAULT", "BY DEFAULT", "ALWAYS"])))
            t.pk_type = "bigint"
        elif r < 0.85:
            t.cols.append(Col("id", "bigserial", notnull=True))  # a sequence owned by the column
            t.pk_type = "bigint"
        else:
            t.cols.append(Col("id", "uuid", "gen_random_uuid()", True))
            t.pk_type = "uuid"
        t.pk = ("%s_pkey" % name, ["id"])
        t.used.add("id")
        # foreign keys to earlier tables of the tenant
        nfk = 0
        if earlier and rng.random() < 0.55:
            nfk = 1 + (rng.random() < 0.25)
        for _ in range(nfk):
            cands = [e for e in earlier[-200:] if e.pk_type]
            if not cands:
                break
            p = rng.choice(cands)
            c = "%s_id" % p.name
            if t.col(c):
                continue
            nullable = rng.random() < 0.3
            t.cols.append(Col(c, p.pk_type, notnull=not nullable))
            ondel = rng.choice(["CASCADE", "RESTRICT", "SET NULL" if nullable else "CASCADE", None])
            t.fks.append(("%s_%s_fkey" % (name, c), [c], p, ["id"], ondel, rng.random() < 0.05))
            p.dependents += 1
            t.used.add(c)
            if rng.random() < 0.85:
                t.indexes.append(Index("%s_%s_idx" % (name, c), [c]))
        # plain columns
        for (cn, ct, cd, pnn) in rng.sample(PLAIN_COLUMNS, rng.randint(2, 10)):
            if cn == "updated_at":
                continue
            ct = ct.replace("{enum}", enum_name)
            t.cols.append(Col(cn, ct, cd, rng.random() < pnn))
            if cn == "starts_on" and rng.random() < 0.7:
                t.cols.append(Col("ends_on", "date"))
                t.checks.append(("%s_dates_check" % name, "ends_on IS NULL OR ends_on >= starts_on"))
                t.used.update(["starts_on", "ends_on"])
            if cn in CHECKS and rng.random() < 0.35:
                t.checks.append(("%s_%s_check" % (name, cn), CHECKS[cn]))
                t.used.add(cn)
            if cn == "country_code" and rng.random() < 0.6:
                t.fks.append(("%s_country_code_fkey" % name, ["country_code"], m.shared_countries, ["code"], None, False))
                t.used.add(cn)
            if cn == "currency" and rng.random() < 0.4:
                t.fks.append(("%s_currency_fkey" % name, ["currency"], m.shared_currencies, ["code"], None, False))
                t.used.add(cn)
        t.cols.append(Col("created_at", "timestamp with time zone", "now()", True))
        t.used.add("created_at")
        if rng.random() < 0.6:
            t.cols.append(Col("updated_at", "timestamp with time zone", "now()", True))
            t.used.add("updated_at")
        names = t.colnames()
        # unique constraints
        if "code" in names and rng.random() < 0.5:
            cols = ["code"]
            if t.fks and t.fks[0][1][0] in names and rng.random() < 0.5:
                cols = [t.fks[0][1][0], "code"]
            t.uniques.append(("%s_%s_key" % (name, "_".join(cols)), cols))
            t.used.update(cols)
        elif "external_ref" in names and rng.random() < 0.5:
            t.uniques.append(("%s_external_ref_key" % name, ["external_ref"]))
            t.used.add("external_ref")
        # indexes: partial, expression, GIN, multi-column DESC, INCLUDE
        if "deleted_at" in names and rng.random() < 0.6:
            t.indexes.append(Index("%s_live_idx" % name, ["created_at DESC"], where="(deleted_at IS NULL)"))
            t.used.add("deleted_at")
        if "email" in names and rng.random() < 0.5:
            where = "(deleted_at IS NULL)" if "deleted_at" in names else None
            t.indexes.append(Index("%s_email_lower_idx" % name, ["lower((email)::text)"], unique=True, where=where))
            t.used.add("email")
        if "name" in names and rng.random() < 0.25:
            t.indexes.append(Index("%s_name_slug_idx" % name, ["shared.slugify(name)"]))
            t.used.add("name")
        if "metadata" in names and rng.random() < 0.3:
            if rng.random() < 0.5:
                t.indexes.append(Index("%s_metadata_idx" % name, ["metadata jsonb_path_ops"], method="gin"))
            else:
                t.indexes.append(Index("%s_metadata_kind_idx" % name, ["((metadata ->> 'kind'::text))"]))
            t.used.add("metadata")
        if "tags" in names and rng.random() < 0.3:
            t.indexes.append(Index("%s_tags_idx" % name, ["tags"], method="gin"))
            t.used.add("tags")
        if "status" in names and rng.random() < 0.3:
            inc = ["amount"] if "amount" in names and rng.random() < 0.5 else None
            t.indexes.append(Index("%s_status_created_idx" % name, ["status", "created_at DESC"], include=inc,
                                   where="(status <> 'archived'::shared.status)" if rng.random() < 0.3 else None))
            t.used.add("status")
            if inc:
                t.used.add("amount")
        if "valid_during" in names and rng.random() < 0.3:
            t.indexes.append(Index("%s_valid_during_idx" % name, ["valid_during"], method="gist"))
            t.used.add("valid_during")
    # triggers
    names = t.colnames()
    if "updated_at" in names and rng.random() < 0.4:
        t.triggers.append(("%s_set_updated_at" % name,
                           "CREATE TRIGGER %s_set_updated_at BEFORE UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION shared.set_updated_at();" % (name, t.qname())))
    if "version" in names and rng.random() < 0.3:
        t.triggers.append(("%s_bump_version" % name,
                           "CREATE TRIGGER %s_bump_version BEFORE UPDATE ON %s FOR EACH ROW WHEN ((old.* IS DISTINCT FROM new.*)) EXECUTE FUNCTION %s.bump_version();" % (name, t.qname(), schema)))
        t.used.add("version")
    if rng.random() < 0.05:
        t.triggers.append(("%s_audit" % name,
                           "CREATE TRIGGER %s_audit AFTER INSERT OR DELETE OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION shared.audit_row();" % (name, t.qname())))
    # comments and grants
    if rng.random() < 0.3:
        t.comment = "%s records of the tenant (%s)" % (name.replace("_", " ").capitalize(), rng.choice(["owned by billing", "owned by ops", "owned by the core team", "see the wiki", "append-mostly"]))
    for c in t.cols:
        if rng.random() < 0.06:
            t.col_comments[c.name] = "The %s of the %s" % (c.name.replace("_", " "), name.replace("_", " "))
    if rng.random() < 0.8:
        t.grants.append(("SELECT", ROLE_RO, None))
    if rng.random() < 0.6:
        t.grants.append(("SELECT,INSERT,DELETE,UPDATE", ROLE_RW, None))
    if "notes" in names and rng.random() < 0.2:
        t.grants.append(("UPDATE", ROLE_APP, "notes"))
        t.used.add("notes")
    return t


def build(n):
    rng = random.Random("pgalign-bench-%d" % n)
    m = Model()
    # shared schema
    sh = []
    countries = Table("shared", "countries")
    countries.cols = [Col("code", "character(2)", notnull=True), Col("name", "text", notnull=True),
                      Col("region", "text")]
    countries.pk = ("countries_pkey", ["code"])
    countries.comment = "ISO 3166-1 alpha-2 countries"
    countries.grants = [("SELECT", ROLE_RO, None), ("SELECT", ROLE_RW, None)]
    currencies = Table("shared", "currencies")
    currencies.cols = [Col("code", "character(3)", notnull=True), Col("name", "text", notnull=True),
                       Col("minor_units", "smallint", "2", True)]
    currencies.pk = ("currencies_pkey", ["code"])
    currencies.checks = [("currencies_minor_units_check", "minor_units >= 0 AND minor_units <= 4")]
    currencies.grants = [("SELECT", ROLE_RO, None), ("SELECT", ROLE_RW, None)]
    audit = Table("shared", "audit_log")
    audit.cols = [Col("id", "bigint", notnull=True, identity="ALWAYS"), Col("table_name", "text", notnull=True),
                  Col("op", "text", notnull=True), Col("row_data", "jsonb"),
                  Col("changed_by", "text", "CURRENT_USER", True),
                  Col("changed_at", "timestamp with time zone", "now()", True)]
    audit.pk = ("audit_log_pkey", ["id"])
    audit.checks = [("audit_log_op_check", "op = ANY (ARRAY['INSERT'::text, 'UPDATE'::text, 'DELETE'::text])")]
    audit.indexes = [Index("audit_log_table_changed_idx", ["table_name", "changed_at DESC"])]
    audit.grants = [("INSERT", ROLE_RW, None), ("SELECT", ROLE_RO, None)]
    settings = Table("shared", "settings")
    settings.cols = [Col("key", "text", notnull=True), Col("value", "jsonb", "'null'::jsonb", True),
                     Col("updated_at", "timestamp with time zone", "now()", True)]
    settings.pk = ("settings_pkey", ["key"])
    settings.triggers = [("settings_set_updated_at", "CREATE TRIGGER settings_set_updated_at BEFORE UPDATE ON shared.settings FOR EACH ROW EXECUTE FUNCTION shared.set_updated_at();")]
    for t in (countries, currencies, audit, settings):
        t.dependents = 1
        t.used = t.colnames()
    sh = [countries, currencies, audit, settings]
    m.shared_countries, m.shared_currencies = countries, currencies
    m.tables["shared"] = sh
    m.enums["shared.status"] = ["active", "inactive", "pending", "suspended", "archived"]
    m.enums["shared.priority"] = ["low", "medium", "high", "urgent"]
    m.schema_comments["shared"] = "Lookups, domains and functions every tenant uses"

    ntenants = max(2, round(n / 250))
    budget = n - len(sh)
    tenants = ["tenant_%03d" % (i + 1) for i in range(ntenants)]
    m.tenants = tenants
    # partitioned tables: one range-partitioned per tenant (1 parent + 4 months + default), and a
    # list-partitioned one in every fifth tenant; only in the first tenant for small N
    parts = {}
    for i, s in enumerate(tenants):
        kinds = []
        if (n >= 500 and i % 4 == 0) or (n < 500 and i == 0):
            kinds.append("range")
        if (n >= 500 and i % 5 == 2) or (n < 500 and i == 1):
            kinds.append("list")
        parts[s] = kinds
        budget -= sum(6 if k == "range" else 4 for k in kinds)
    per = [budget // ntenants + (1 if i < budget % ntenants else 0) for i in range(ntenants)]

    for si, s in enumerate(tenants):
        trng = random.Random("pgalign-bench-%d-%s" % (n, s))
        enum_name = "%s.%s_kind" % (s, trng.choice(NOUNS))
        m.enums[enum_name] = ["standard", "premium", "internal", "trial"][: trng.randint(2, 4)]
        m.sequences[s] = [("invoice_number_seq", "START WITH 1000 INCREMENT BY 1 MINVALUE 1000 CACHE 1"),
                          ("ticket_number_seq", "START WITH 1 INCREMENT BY 1 NO MAXVALUE CACHE 10")]
        m.schema_comments[s] = "Tenant %d" % (si + 1)
        taken = set()
        tables = []
        for _ in range(per[si]):
            t = add_regular_table(trng, m, s, table_name(trng, taken), tables, enum_name)
            tables.append(t)
        if trng.random() < 0.7 and tables:
            # a column numbered from a standalone sequence
            t = trng.choice([t for t in tables if t.pk_type] or tables)
            t.cols.append(Col("number", "bigint", "nextval('%s.invoice_number_seq'::regclass)" % s, True))
            t.used.add("number")
        owners = [t for t in tables if t.pk_type == "bigint"]
        for kind in parts[s]:
            if kind == "range":
                p = Table(s, "events")
                p.cols = [Col("id", "bigint", "nextval('%s.events_id_seq'::regclass)" % s, True),
                          Col("occurred_at", "timestamp with time zone", notnull=True),
                          Col("kind", "text", notnull=True), Col("payload", "jsonb", "'{}'::jsonb", True)]
                if owners:
                    o = trng.choice(owners)
                    p.cols.insert(1, Col("%s_id" % o.name, "bigint"))
                    p.fks.append(("events_%s_id_fkey" % o.name, ["%s_id" % o.name], o, ["id"], "SET NULL", False))
                    o.dependents += 1
                p.pk = ("events_pkey", ["id", "occurred_at"])
                p.partition_by = "RANGE (occurred_at)"
                p.indexes = [Index("events_kind_occurred_at_idx", ["kind", "occurred_at DESC"])]
                p.comment = "Append-only event stream, one partition per month"
                p.grants = [("SELECT", ROLE_RO, None), ("INSERT,SELECT", ROLE_RW, None)]
                p.used, p.dependents = p.colnames(), 1
                m.sequences[s].append(("events_id_seq", "START WITH 1 INCREMENT BY 1 CACHE 1"))
                tables.append(p)
                for mo in range(1, 5):
                    c = Table(s, "events_2026_%02d" % mo)
                    c.partition_of = (p, "FOR VALUES FROM ('2026-%02d-01 00:00:00+00') TO ('2026-%02d-01 00:00:00+00')" % (mo, mo + 1))
                    c.used, c.dependents = p.colnames(), 1
                    tables.append(c)
                d = Table(s, "events_default")
                d.partition_of = (p, "DEFAULT")
                d.used, d.dependents = p.colnames(), 1
                tables.append(d)
            else:
                p = Table(s, "measurements")
                p.cols = [Col("region", "text", notnull=True), Col("sensor", "text", notnull=True),
                          Col("taken_at", "timestamp with time zone", notnull=True),
                          Col("value", "double precision")]
                p.pk = ("measurements_pkey", ["region", "sensor", "taken_at"])
                p.partition_by = "LIST (region)"
                p.checks = [("measurements_value_check", "value IS NULL OR value > ('-1000'::integer)::double precision")]
                p.grants = [("SELECT", ROLE_RO, None)]
                p.used, p.dependents = p.colnames(), 1
                tables.append(p)
                for r in ("eu", "us", "apac"):
                    c = Table(s, "measurements_%s" % r)
                    c.partition_of = (p, "FOR VALUES IN ('%s')" % r)
                    c.used, c.dependents = p.colnames(), 1
                    tables.append(c)
        m.tables[s] = tables

        # functions: a trigger function, plpgsql and SQL functions over tables, a procedure
        fns = [("bump_version()",
                "CREATE FUNCTION %s.bump_version() RETURNS trigger\n    LANGUAGE plpgsql\n    AS $$\nBEGIN\n  NEW.version := OLD.version + 1;\n  RETURN NEW;\nEND;\n$$;" % s,
                None, [])]
        regular = [t for t in tables if t.partition_by is None and t.partition_of is None]
        for t in trng.sample(regular, max(1, len(regular) // 15)):
            t.dependents += 1
            t.used.add("created_at")
            if trng.random() < 0.6:
                sig = "count_%s(timestamp with time zone)" % t.name
                body = ("CREATE FUNCTION %s.count_%s(p_since timestamp with time zone) RETURNS bigint\n    LANGUAGE plpgsql STABLE\n    AS $$\nDECLARE\n  n bigint;\nBEGIN\n  SELECT count(*) INTO n FROM %s WHERE created_at >= p_since;\n  RETURN n;\nEND;\n$$;"
                        % (s, t.name, t.qname()))
            elif "code" in t.colnames():
                t.used.add("code")
                sig = "%s_by_code(text)" % t.name
                body = ("CREATE FUNCTION %s.%s_by_code(p_code text) RETURNS SETOF %s\n    LANGUAGE sql STABLE\n    AS $$ SELECT * FROM %s WHERE code = p_code $$;"
                        % (s, t.name, t.qname(), t.qname()))
            else:
                sig = "purge_%s(integer)" % t.name
                body = ("CREATE FUNCTION %s.purge_%s(p_days integer DEFAULT 90) RETURNS integer\n    LANGUAGE plpgsql SECURITY DEFINER\n    SET search_path TO 'pg_catalog'\n    AS $$\nDECLARE\n  n integer;\nBEGIN\n  DELETE FROM %s WHERE created_at < now() - make_interval(days => p_days);\n  GET DIAGNOSTICS n = ROW_COUNT;\n  RAISE NOTICE 'purged %% rows', n;\n  RETURN n;\nEND;\n$$;"
                        % (s, t.name, t.qname()))
            comment = "Used by the nightly jobs" if trng.random() < 0.3 else None
            grants = [("EXECUTE", ROLE_APP)] if trng.random() < 0.5 else []
            fns.append((sig, body, comment, grants))
        if regular:
            t = trng.choice(regular)
            t.dependents += 1
            fns.append(("archive_%s(interval)" % t.name,
                        "CREATE PROCEDURE %s.archive_%s(IN p_age interval)\n    LANGUAGE plpgsql\n    AS $$\nBEGIN\n  DELETE FROM %s WHERE created_at < now() - p_age;\n  COMMIT;\nEND;\n$$;" % (s, t.name, t.qname()),
                        None, []))
        m.functions[s] = fns

        # views: one per ~12 tables, some joining a table to its parent; one materialized view
        views = []
        for t in trng.sample(regular, max(1, len(regular) // 12)):
            names = t.colnames()
            pick = [c for c in ("name", "code", "status", "amount", "title", "email") if c in names][:3]
            cols = ["t.%s" % q(c) for c in ([c for c in t.pk[1]] + pick + ["created_at"])]
            where = " WHERE (t.deleted_at IS NULL)" if "deleted_at" in names else ""
            t.used.update(t.pk[1] + pick + ["created_at"] + (["deleted_at"] if where else []))
            t.dependents += 1
            fk = next((f for f in t.fks if f[2].schema == s and "created_at" in f[2].colnames()), None)
            if fk and trng.random() < 0.5:
                p = fk[2]
                p.dependents += 1
                p.used.add("created_at")
                sql = ("CREATE VIEW %s.%s_with_%s AS\n SELECT %s,\n    p.created_at AS %s_created_at\n   FROM (%s t\n     JOIN %s p ON ((p.id = t.%s)))%s;"
                       % (s, t.name, p.name, ",\n    ".join(cols), p.name, t.qname(), p.qname(), fk[1][0], where))
                vname = "%s_with_%s" % (t.name, p.name)
            else:
                sql = "CREATE VIEW %s.%s_live AS\n SELECT %s\n   FROM %s t%s;" % (s, t.name, ",\n    ".join(cols), t.qname(), where)
                vname = "%s_live" % t.name
            if len(vname) > 63:
                continue
            views.append([vname, sql, "Live rows of %s" % t.name if trng.random() < 0.3 else None,
                          [("SELECT", ROLE_RO)] if trng.random() < 0.7 else []])
        m.views[s] = views
        fkd = [t for t in regular if t.fks and t.fks[0][2].schema == s]
        if fkd:
            t = trng.choice(fkd)
            t.dependents += 1
            c = t.fks[0][1][0]
            t.used.add(c)
            m.matviews[s] = [("%s_counts" % t.name,
                              "CREATE MATERIALIZED VIEW %s.%s_counts AS\n SELECT t.%s,\n    count(*) AS n\n   FROM %s t\n  GROUP BY t.%s\n  WITH NO DATA;" % (s, t.name, c, t.qname(), c),
                              "CREATE UNIQUE INDEX %s_counts_key ON %s.%s_counts (%s);" % (t.name, s, t.name, c))]
        if si % 4 == 0:
            m.default_privs.append(s)
    return m


def mutate(m, n, pct):
    """Variant b: about pct % of the tables touched, the same share of functions and views."""
    rng = random.Random("pgalign-bench-%d-b" % n)
    ch = m.changes

    def count(k):
        ch[k] = ch.get(k, 0) + 1

    p = pct / 100.0
    # pct is a share of objects (as pg_dump counts them: tables, constraints, indexes, triggers,
    # comments, grants, sequences): one change per touched table, so touch p * objects/table.
    regular_all = [t for s in m.tenants for t in m.tables[s] if t.partition_by is None and t.partition_of is None]
    objs = sum(1 + (t.pk is not None) + len(t.uniques) + len(t.checks) + len(t.fks) + len(t.indexes) + len(t.triggers)
               + (t.comment is not None) + len(t.col_comments) + len(t.grants)
               + any(c.identity or c.type == "bigserial" for c in t.cols) for t in regular_all)
    m.objects_per_table = objs / max(1, len(regular_all))
    for s in m.tenants:
        tables = m.tables[s]
        taken = {t.name for t in tables}
        regular = [t for t in tables if t.partition_by is None and t.partition_of is None]
        # small schemas still get a few changes
        pt = min(1.0, max(p * m.objects_per_table, 3.0 / max(1, len(regular))))
        for t in list(regular):
            if rng.random() >= pt:
                continue
            names = t.colnames()
            free = [c for c in t.cols if c.name not in t.used]
            r = rng.random()
            if r < 0.12 and t.dependents == 0:
                tables.remove(t)
                count("table dropped")
            elif r < 0.26:
                for cn, ct, cd, _ in rng.sample(PLAIN_COLUMNS, len(PLAIN_COLUMNS)):
                    if cn not in names and "{enum}" not in ct:
                        t.cols.append(Col(cn, ct, cd if rng.random() < 0.5 else None, cd is not None and rng.random() < 0.5))
                        t.used.add(cn)
                        count("column added")
                        break
            elif r < 0.36 and free:
                c = rng.choice(free)
                t.cols.remove(c)
                t.col_comments.pop(c.name, None)
                count("column dropped")
            elif r < 0.46 and free:
                c = rng.choice(free)
                new = {"integer": "bigint", "smallint": "integer", "real": "double precision",
                       "character varying(200)": "character varying(400)", "character varying(32)": "character varying(64)",
                       "character varying(10)": "character varying(35)", "text": "character varying(1000)",
                       "numeric(12,2)": "numeric(14,4)"}.get(c.type)
                if new:
                    c.type = new
                    if c.default is not None and "::" in c.default and "character varying" in new:
                        c.default = c.default.split("::")[0] + "::character varying"
                    count("column type changed")
                else:
                    c.notnull = not c.notnull
                    count("column NOT NULL changed")
            elif r < 0.52 and free:
                c = rng.choice(free)
                c.notnull = not c.notnull
                count("column NOT NULL changed")
            elif r < 0.58:
                c = t.col("created_at")
                c.default = "clock_timestamp()" if c.default == "now()" else "now()"
                count("column default changed")
            elif r < 0.66:
                cn = next((c.name for c in t.cols if c.name not in ("id",) and c.type in ("text", "bigint", "integer", "date", "timestamp with time zone") and not any(i.cols == [c.name] for i in t.indexes)), None)
                if cn and len("%s_%s_bench_idx" % (t.name, cn)) <= 63:
                    t.indexes.append(Index("%s_%s_bench_idx" % (t.name, cn), [q(cn)]))
                    t.used.add(cn)
                    count("index added")
            elif r < 0.70 and t.indexes:
                t.indexes.pop(rng.randrange(len(t.indexes)))
                count("index dropped")
            elif r < 0.76 and t.indexes:
                i = rng.choice(t.indexes)
                if i.where:
                    i.where = None
                elif "deleted_at" in names:
                    i.where = "(deleted_at IS NULL)"
                    t.used.add("deleted_at")
                elif i.method is None and len(i.cols) > 1:
                    i.cols = i.cols[:-1]
                elif i.method is None and "created_at" not in i.cols[0]:
                    i.cols = i.cols + ["created_at"]
                else:
                    i.unique = False
                    i.where = "(created_at > '2020-01-01 00:00:00+00'::timestamp with time zone)"
                count("index changed")
            elif r < 0.80:
                cn = next((c for c in CHECKS if c in names), None)
                old = [c for c in t.checks if not c[0].endswith("dates_check")]
                if old:
                    nm, expr = old[0]
                    t.checks.remove(old[0])
                    t.checks.append((nm, expr.replace("(0)", "(1)").replace(">= 0", ">= 1").replace("> 0", "> 1")
                                     .replace("<= 1000", "<= 2000").replace("<> ''::text", "<> ' '::text")))
                    count("check constraint changed")
                elif cn:
                    t.checks.append(("%s_%s_check" % (t.name, cn), CHECKS[cn]))
                    t.used.add(cn)
                    count("check constraint added")
            elif r < 0.83 and t.uniques:
                t.uniques.pop()
                count("unique constraint dropped")
            elif r < 0.91:
                t.comment = None if t.comment and rng.random() < 0.3 else "%s (revised)" % (t.comment or t.name)
                count("table comment changed")
            else:
                if any(g[1] == ROLE_RO for g in t.grants):
                    t.grants = [g for g in t.grants if g[1] != ROLE_RO]
                    count("grant revoked")
                else:
                    t.grants.append(("SELECT", ROLE_RO, None))
                    count("grant added")
            if rng.random() < 0.1 and "updated_at" in t.colnames() and not any(n.endswith("set_updated_at") for n, _ in t.triggers):
                t.triggers.append(("%s_set_updated_at" % t.name,
                                   "CREATE TRIGGER %s_set_updated_at BEFORE UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION shared.set_updated_at();" % (t.name, t.qname())))
                count("trigger added")
        # new tables, appended at the end of the tenant
        enum_name = next(k for k in m.enums if k.startswith(s + "."))
        earlier = [t for t in tables if t.partition_by is None and t.partition_of is None]
        for _ in range(max(0, round(len(regular) * p * 0.5 + rng.random() - 0.5))):
            t = add_regular_table(rng, m, s, table_name(rng, taken), earlier, enum_name)
            tables.append(t)
            count("table added")
        # functions and views
        fns = m.functions[s]
        for i, f in enumerate(fns):
            if rng.random() < p * 3 and "RETURN n;" in f[1]:
                fns[i] = (f[0], f[1].replace("RETURN n;", "RETURN coalesce(n, 0);"), f[2], f[3])
                count("function body changed")
        for v in m.views[s]:
            if rng.random() < p:
                v[2] = "%s (revised)" % (v[2] or v[0])
                count("view comment changed")
    # a new enum label and a changed sequence, once
    e = next(k for k in m.enums if k.startswith(m.tenants[0] + "."))
    m.enums[e].append("enterprise")
    count("enum value added")
    m.sequences[m.tenants[-1]][1] = ("ticket_number_seq", "START WITH 1 INCREMENT BY 1 NO MAXVALUE CACHE 50")
    count("sequence changed")
    # keep only what still exists: FKs to dropped tables would not load
    alive = {(t.schema, t.name) for ts in m.tables.values() for t in ts}
    for ts in m.tables.values():
        for t in ts:
            t.fks = [f for f in t.fks if (f[2].schema, f[2].name) in alive]


class Out:
    """Writes statements, closing the transaction every `batch` statements."""

    def __init__(self, w, batch=250):
        self.w, self.batch, self.n = w, batch, 0

    def __call__(self, sql):
        self.w.write(sql + "\n")
        self.n += 1
        if self.n % self.batch == 0:
            self.w.write("COMMIT;\nBEGIN;\n")


def lit(s):
    return "'" + s.replace("'", "''") + "'"


def emit(m, w):
    w.write("-- generated by scripts/bench/gen.py; do not edit\n")
    w.write("SET client_min_messages = warning;\nSET synchronous_commit = off;\nSET check_function_bodies = on;\nBEGIN;\n")
    out = Out(w)
    out("CREATE SCHEMA shared;")
    out("COMMENT ON SCHEMA shared IS %s;" % lit(m.schema_comments["shared"]))
    for e, labels in m.enums.items():
        if e.startswith("shared."):
            out("CREATE TYPE %s AS ENUM (%s);" % (e, ", ".join(lit(x) for x in labels)))
    out("CREATE DOMAIN shared.email AS text CONSTRAINT email_check CHECK ((VALUE ~ '^[^@[:space:]]+@[^@[:space:]]+$'::text));")
    out("COMMENT ON DOMAIN shared.email IS 'An e-mail address, checked loosely';")
    out("CREATE DOMAIN shared.money_amount AS numeric(14,2) CONSTRAINT money_amount_check CHECK ((VALUE >= (0)::numeric));")
    out("CREATE DOMAIN shared.percentage AS numeric(5,2) CONSTRAINT percentage_check CHECK (((VALUE >= (0)::numeric) AND (VALUE <= (100)::numeric)));")
    out("CREATE FUNCTION shared.slugify(p text) RETURNS text\n    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE\n    AS $$ SELECT trim(both '-' from regexp_replace(lower(p), '[^a-z0-9]+', '-', 'g')) $$;")
    out("COMMENT ON FUNCTION shared.slugify(text) IS 'URL-safe form of a name; used in expression indexes';")
    out("CREATE FUNCTION shared.set_updated_at() RETURNS trigger\n    LANGUAGE plpgsql\n    AS $$\nBEGIN\n  NEW.updated_at := now();\n  RETURN NEW;\nEND;\n$$;")
    emit_tables(m, "shared", out)
    out("CREATE FUNCTION shared.audit_row() RETURNS trigger\n    LANGUAGE plpgsql SECURITY DEFINER\n    AS $$\nBEGIN\n  INSERT INTO shared.audit_log (table_name, op, row_data)\n  VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, TG_OP,\n          to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END));\n  RETURN NULL;\nEND;\n$$;")
    out("REVOKE ALL ON FUNCTION shared.audit_row() FROM PUBLIC;")
    out("CREATE SEQUENCE shared.global_id_seq START WITH 1 INCREMENT BY 1 NO MINVALUE NO MAXVALUE CACHE 1;")
    out("GRANT USAGE ON SCHEMA shared TO %s, %s, %s;" % ROLES)
    emit_after_tables(m, "shared", out)
    for s in m.tenants:
        out("CREATE SCHEMA %s;" % s)
        out("COMMENT ON SCHEMA %s IS %s;" % (s, lit(m.schema_comments[s])))
        for e, labels in m.enums.items():
            if e.startswith(s + "."):
                out("CREATE TYPE %s AS ENUM (%s);" % (e, ", ".join(lit(x) for x in labels)))
        for name, opts in m.sequences[s]:
            out("CREATE SEQUENCE %s.%s %s;" % (s, name, opts))
        out("GRANT USAGE ON SCHEMA %s TO %s, %s;" % (s, ROLE_RO, ROLE_RW))
        out("GRANT USAGE ON SEQUENCE %s.invoice_number_seq TO %s;" % (s, ROLE_RW))
        emit_tables(m, s, out)
        for sig, sql, comment, grants in m.functions[s]:
            out(sql)
            kind = "PROCEDURE" if sql.startswith("CREATE PROCEDURE") else "FUNCTION"
            if comment:
                out("COMMENT ON %s %s.%s IS %s;" % (kind, s, sig, lit(comment)))
            for priv, role in grants:
                out("REVOKE ALL ON FUNCTION %s.%s FROM PUBLIC;" % (s, sig))
                out("GRANT %s ON FUNCTION %s.%s TO %s;" % (priv, s, sig, role))
        emit_after_tables(m, s, out)
        for name, sql, comment, grants in m.views[s]:
            out(sql)
            if comment:
                out("COMMENT ON VIEW %s.%s IS %s;" % (s, name, lit(comment)))
            for priv, role in grants:
                out("GRANT %s ON TABLE %s.%s TO %s;" % (priv, s, name, role))
        for name, sql, idx in m.matviews.get(s, []):
            out(sql)
            out(idx)
            out("GRANT SELECT ON TABLE %s.%s TO %s;" % (s, name, ROLE_RO))
    # last, so that they do not apply to the objects above
    for s in m.default_privs:
        out("ALTER DEFAULT PRIVILEGES IN SCHEMA %s GRANT SELECT ON TABLES TO %s;" % (s, ROLE_RO))
        out("ALTER DEFAULT PRIVILEGES IN SCHEMA %s GRANT USAGE ON SEQUENCES TO %s;" % (s, ROLE_RW))
    w.write("COMMIT;\n")


def emit_tables(m, s, out):
    for t in m.tables[s]:
        if t.partition_of:
            p, bound = t.partition_of
            out("CREATE TABLE %s PARTITION OF %s %s;" % (t.qname(), p.qname(), bound))
            continue
        parts = [c.sql() for c in t.cols]
        if t.pk:
            parts.append("    CONSTRAINT %s PRIMARY KEY (%s)" % (t.pk[0], ", ".join(q(c) for c in t.pk[1])))
        for name, cols in t.uniques:
            parts.append("    CONSTRAINT %s UNIQUE (%s)" % (name, ", ".join(q(c) for c in cols)))
        for name, expr in t.checks:
            parts.append("    CONSTRAINT %s CHECK (%s)" % (name, expr.replace("position", '"position"')))
        for name, cols, ref, rcols, ondel, deferrable in t.fks:
            s2 = "    CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s(%s)" % (name, ", ".join(cols), ref.qname(), ", ".join(rcols))
            if ondel:
                s2 += " ON DELETE %s" % ondel
            if deferrable:
                s2 += " DEFERRABLE INITIALLY DEFERRED"
            parts.append(s2)
        sql = "CREATE TABLE %s (\n%s\n)" % (t.qname(), ",\n".join(parts))
        if t.partition_by:
            sql += " PARTITION BY %s" % t.partition_by
        out(sql + ";")


def emit_after_tables(m, s, out):
    for t in m.tables[s]:
        for i in t.indexes:
            out(i.sql(t))
        for _, sql in t.triggers:
            out(sql)
        if t.comment:
            out("COMMENT ON TABLE %s IS %s;" % (t.qname(), lit(t.comment)))
        for c, text in t.col_comments.items():
            out("COMMENT ON COLUMN %s.%s IS %s;" % (t.qname(), q(c), lit(text)))
        for privs, role, col in t.grants:
            if col:
                out("GRANT %s (%s) ON TABLE %s TO %s;" % (privs, q(col), t.qname(), role))
            else:
                out("GRANT %s ON TABLE %s TO %s;" % (privs, t.qname(), role))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tables", "-n", type=int, required=True)
    ap.add_argument("--variant", choices=["a", "b"], required=True)
    ap.add_argument("--change-pct", type=float, default=2.0)
    ap.add_argument("--summary", help="write what variant b changed, one 'count kind' a line, to this file")
    a = ap.parse_args()
    if a.tables < 20:
        ap.error("--tables must be at least 20")
    m = build(a.tables)
    if a.variant == "b":
        mutate(m, a.tables, a.change_pct)
    w = sys.stdout
    emit(m, w)
    if a.summary:
        ntables = sum(len(ts) for ts in m.tables.values())
        with open(a.summary, "w") as f:
            f.write("%d tables\n" % ntables)
            f.write("%d schemas\n" % (len(m.tenants) + 1))
            if a.variant == "b":
                total = sum(m.changes.values())
                f.write("%d changes (about %.1f objects per table)\n" % (total, m.objects_per_table))
            for k, v in sorted(m.changes.items()):
                f.write("%d %s\n" % (v, k))


if __name__ == "__main__":
    main()
