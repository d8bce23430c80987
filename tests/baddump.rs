//! Dump files that are not one database's `pg_dump --schema-only`, or that were damaged or
//! edited, are refused with one line naming the entry (its pg_dump header) and what to do: the
//! plan copies statements out of the dump, so anything else in it would run on TARGET. Each case
//! starts from a real dump (fixtures/dumps/staging.sql), is read as SOURCE and as TARGET against
//! a real custom-format dump, and needs no server.

use std::path::Path;
use std::process::{Command, Output};

const STAGING: &str = include_str!("../fixtures/dumps/staging.sql");

fn production() -> String {
    format!(
        "{}/fixtures/dumps/production.dump",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn pgalign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgalign"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run pgalign")
}

/// A plain-dump entry: its header and its statements.
fn entry(name: &str, kind: &str, schema: &str, body: &str) -> String {
    format!("--\n-- Name: {name}; Type: {kind}; Schema: {schema}; Owner: -\n--\n\n{body}\n\n\n")
}

/// staging.sql with `extra` as its last entries.
fn with_entries(extra: &str) -> String {
    let end = "--\n-- PostgreSQL database dump complete\n--";
    let at = STAGING.find(end).expect("dump trailer");
    format!("{}{extra}{}", &STAGING[..at], &STAGING[at..])
}

/// staging.sql with `from` replaced by `to` (exactly once).
fn replaced(from: &str, to: &str) -> String {
    assert_eq!(STAGING.matches(from).count(), 1, "{from}");
    STAGING.replacen(from, to, 1)
}

const CUSTOMERS: &str = "CREATE TABLE public.customers (\n    id bigint NOT NULL,\n    email text NOT NULL,\n    name text,\n    created_at timestamp with time zone DEFAULT now() NOT NULL\n);\n";

/// Plans with the bad dump as SOURCE and as TARGET: each time exit 1, one line on stderr that
/// holds every needle, and no panic.
fn refused(case: &str, text: impl AsRef<[u8]>, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join(format!("{case}.sql"));
    std::fs::write(&bad, text).unwrap();
    let bad = bad.display().to_string();
    let prod = production();
    for (side, args) in [
        ("source", ["plan", "--source", &bad, "--target", &prod]),
        ("target", ["plan", "--source", &prod, "--target", &bad]),
    ] {
        let o = pgalign(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        let what = format!("{case} as {side}: {err}");
        assert!(!err.contains("panicked"), "{what}");
        assert_eq!(o.status.code(), Some(1), "{what}");
        assert_eq!(err.trim_end().lines().count(), 1, "not one line: {what}");
        assert!(err.starts_with("pgalign: error: "), "{what}");
        assert!(err.contains(side) && err.contains(&bad), "{what}");
        for n in needles {
            assert!(err.contains(n), "{n:?} missing: {what}");
        }
    }
}

#[test]
fn the_fixture_dumps_themselves_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("staging.sql");
    std::fs::write(&ok, STAGING).unwrap();
    let o = pgalign(&[
        "plan",
        "--source",
        &ok.display().to_string(),
        "--target",
        &production(),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(Path::new(&production()).is_file());
}

#[test]
fn table_data_copy() {
    let data = "--\n-- Data for Name: orders; Type: TABLE DATA; Schema: public; Owner: -\n--\n\nCOPY public.orders (id, customer_id, total, status, created_at) FROM stdin;\n1\t1\t9.50\tnew\t2024-01-01 00:00:00+00\n2\t1\t'quoted\tpaid\t\\N\n\\.\n\n\n";
    refused(
        "copy",
        with_entries(data),
        &[
            "entry \"Name: orders; Type: TABLE DATA; Schema: public\"",
            "not a schema-only dump: it has table data (COPY public.orders",
            "pg_dump --schema-only",
        ],
    );
}

#[test]
fn table_data_inserts() {
    let data = "--\n-- Data for Name: orders; Type: TABLE DATA; Schema: public; Owner: -\n--\n\nINSERT INTO public.orders VALUES (1, 1, 9.50, 'new', NULL);\n\n\n";
    refused(
        "inserts",
        with_entries(data),
        &["Type: TABLE DATA", "table data (INSERT INTO public.orders"],
    );
}

#[test]
fn an_insert_in_a_table_entry() {
    refused(
        "insert_in_table",
        replaced(
            CUSTOMERS,
            &format!("{CUSTOMERS}INSERT INTO public.customers VALUES (1, 'a@b', 'a', now());\n"),
        ),
        &[
            "entry \"Name: customers; Type: TABLE; Schema: public\"",
            "table data (INSERT INTO public.customers",
        ],
    );
}

#[test]
fn sequence_values() {
    refused(
        "sequence_set",
        with_entries(&entry(
            "orders_id_seq",
            "SEQUENCE SET",
            "public",
            "SELECT pg_catalog.setval('public.orders_id_seq', 2, true);",
        )),
        &[
            "entry \"Name: orders_id_seq; Type: SEQUENCE SET; Schema: public\"",
            "sequence's current value (SELECT pg_catalog.setval(",
        ],
    );
}

#[test]
fn materialized_view_data() {
    refused(
        "matview_data",
        with_entries(&entry(
            "open_orders",
            "MATERIALIZED VIEW DATA",
            "public",
            "REFRESH MATERIALIZED VIEW public.open_orders;",
        )),
        &["Type: MATERIALIZED VIEW DATA", "REFRESH MATERIALIZED VIEW"],
    );
}

#[test]
fn pg_dumpall_output() {
    let all = format!(
        "--\n-- PostgreSQL database cluster dump\n--\n\nSET default_transaction_read_only = off;\n\nCREATE ROLE app;\nALTER ROLE app WITH NOSUPERUSER LOGIN;\n\n\\connect app\n\n{STAGING}"
    );
    refused("dumpall", all, &["pg_dumpall", "pg_dump --schema-only"]);
}

#[test]
fn roles_before_the_first_entry() {
    refused(
        "roles_in_preamble",
        replaced(
            "SET row_security = off;\n",
            "SET row_security = off;\nCREATE ROLE app;\n",
        ),
        &["the dump's preamble", "CREATE ROLE app", "pg_dumpall"],
    );
}

#[test]
fn a_role_in_an_entry() {
    refused(
        "role_in_entry",
        replaced(
            CUSTOMERS,
            &format!("{CUSTOMERS}ALTER ROLE app SUPERUSER;\n"),
        ),
        &[
            "Name: customers; Type: TABLE",
            "ALTER ROLE app",
            "pg_dumpall",
        ],
    );
}

#[test]
fn create_database_and_connect() {
    let db = "--\n-- Name: app; Type: DATABASE; Schema: -; Owner: -\n--\n\nCREATE DATABASE app WITH TEMPLATE = template0 ENCODING = 'UTF8';\n\n\n\\connect app\n\n";
    let at = STAGING.find("--\n-- Name: order_status").unwrap();
    let text = format!("{}{db}{}", &STAGING[..at], &STAGING[at..]);
    refused(
        "create_database",
        text,
        &[
            "entry \"Name: app; Type: DATABASE; Schema: -\"",
            "CREATE DATABASE app",
            "without --create",
        ],
    );
}

#[test]
fn psql_meta_commands() {
    refused(
        "connect",
        replaced(CUSTOMERS, &format!("{CUSTOMERS}\n\\connect other\n\n")),
        &[
            "Name: customers; Type: TABLE",
            "psql meta-command (\\connect other",
        ],
    );
    refused(
        "shell",
        replaced(
            CUSTOMERS,
            &format!("{CUSTOMERS}\n\\! touch /tmp/pgalign-was-here\n"),
        ),
        &[
            "Name: customers; Type: TABLE",
            "psql meta-command (\\! touch",
        ],
    );
}

#[test]
fn a_statement_hidden_after_a_create_table() {
    refused(
        "hidden_delete",
        replaced(
            CUSTOMERS,
            &CUSTOMERS.replace(");\n", "); DELETE FROM canary;\n"),
        ),
        &[
            "entry \"Name: customers; Type: TABLE; Schema: public\"",
            "changes data (DELETE FROM canary)",
        ],
    );
    refused(
        "hidden_do",
        replaced(
            CUSTOMERS,
            &format!("{CUSTOMERS}DO $$ BEGIN DELETE FROM canary; END $$;\n"),
        ),
        &["Name: customers; Type: TABLE", "DO block"],
    );
    refused(
        "hidden_commit",
        replaced(CUSTOMERS, &format!("{CUSTOMERS}COMMIT;\n")),
        &[
            "Name: customers; Type: TABLE",
            "transaction control (COMMIT)",
        ],
    );
    refused(
        "hidden_in_setting",
        replaced(
            "SET default_tablespace = '';\n",
            "SET default_tablespace = ''; DELETE FROM canary;\n",
        ),
        &["DELETE FROM canary"],
    );
}

#[test]
fn a_statement_of_another_kind_in_an_entry() {
    let index = "CREATE INDEX orders_customer_idx ON public.orders USING btree (customer_id);\n";
    refused(
        "comment_in_index",
        replaced(
            index,
            &format!("{index}COMMENT ON TABLE public.orders IS 'not here';\n"),
        ),
        &[
            "entry \"Name: orders_customer_idx; Type: INDEX; Schema: public\"",
            "COMMENT ON TABLE public.orders",
            "CommentStmt",
        ],
    );
}

#[test]
fn a_dump_made_with_clean() {
    refused(
        "clean",
        replaced(
            CUSTOMERS,
            &format!("DROP TABLE IF EXISTS public.customers;\n{CUSTOMERS}"),
        ),
        &["Name: customers; Type: TABLE", "--clean"],
    );
}

#[test]
fn a_truncated_statement() {
    refused(
        "truncated_domain",
        with_entries(&entry(
            "d",
            "DOMAIN",
            "public",
            "CREATE DOMAIN public.d AS;",
        )),
        &[
            "entry \"Name: d; Type: DOMAIN; Schema: public\"",
            "CREATE DOMAIN public.d AS",
            "does not parse",
        ],
    );
}

#[test]
fn a_file_cut_short() {
    let fk = "ALTER TABLE ONLY public.orders\n    ADD CONSTRAINT orders_customer_id_fkey";
    let at = STAGING.find(fk).unwrap() + fk.len();
    refused(
        "cut",
        &STAGING[..at],
        &[
            "entry \"Name: orders orders_customer_id_fkey; Type: FK CONSTRAINT; Schema: public\"",
            "no semicolon",
            "cut",
        ],
    );
}

#[test]
fn identifiers_longer_than_postgres_keeps() {
    let long = "a".repeat(70);
    refused(
        "long_identifier",
        replaced(
            "    name text,\n    created_at",
            &format!("    name text,\n    {long} integer,\n    created_at"),
        ),
        &[
            "Name: customers; Type: TABLE",
            "more than 63 bytes",
            &long[..50],
        ],
    );
}

/// pg_dump never writes a GRANT without privileges; the privilege reader indexed past its
/// token list on one (issue 13).
#[test]
fn grants_without_privileges() {
    for (case, stmt) in [
        ("empty_grant", "GRANT ON TABLE public.orders TO reader;"),
        ("empty_revoke", "REVOKE ON TABLE public.orders FROM reader;"),
    ] {
        refused(
            case,
            with_entries(&entry("TABLE orders", "ACL", "public", stmt)),
            &[
                "entry \"Name: TABLE orders; Type: ACL; Schema: public\"",
                "does not parse",
            ],
        );
    }
}

#[test]
fn not_text() {
    let mut bytes = STAGING.as_bytes().to_vec();
    let at = STAGING.find("Orders placed").unwrap();
    bytes[at] = 0xff;
    refused("not_utf8", bytes, &["not UTF-8"]);
    refused(
        "nul",
        replaced("Orders placed", "Orders\0placed"),
        &["Name: TABLE orders; Type: COMMENT", "NUL"],
    );
}
