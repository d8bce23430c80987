//! Unit tests of rules.rs (kept apart: the module is long enough).

use super::*;

fn r(s: &str, n: &str) -> Rel {
    (s.to_string(), n.to_string())
}

#[test]
fn constraints_read() {
    assert_eq!(
        row_rule("ALTER TABLE ONLY app.\"T t\"\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id, \"Odd\"\"col\")"),
        Some(RowRule::Unique {
            table: r("app", "T t"),
            columns: vec!["id".into(), "Odd\"col".into()],
            primary_key: true,
            nulls_not_distinct: false,
        })
    );
    assert_eq!(
        row_rule("ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_e_key UNIQUE NULLS NOT DISTINCT (email) INCLUDE (x)"),
        Some(RowRule::Unique {
            table: r("public", "t"),
            columns: vec!["email".into()],
            primary_key: false,
            nulls_not_distinct: true,
        })
    );
    assert_eq!(
        row_rule("ALTER TABLE ONLY public.c\n    ADD CONSTRAINT c_fk FOREIGN KEY (a, b) REFERENCES public.p(x, y) MATCH FULL ON DELETE CASCADE"),
        Some(RowRule::ForeignKey {
            table: r("public", "c"),
            columns: vec!["a".into(), "b".into()],
            references: r("public", "p"),
            ref_columns: vec!["x".into(), "y".into()],
            match_full: true,
        })
    );
    assert_eq!(
        row_rule("ALTER TABLE public.c\n    ADD CONSTRAINT c_fk FOREIGN KEY (a) REFERENCES public.p(x) NOT VALID"),
        Some(RowRule::Nothing)
    );
    assert!(matches!(
        row_rule("ALTER TABLE ONLY public.t\n    ADD CONSTRAINT ex EXCLUDE USING gist (r WITH &&)"),
        Some(RowRule::NotReadable { .. })
    ));
}

fn check(table: Rel, name: &str, expr: &str, columns: &[&str], calls: &[&str]) -> RowRule {
    RowRule::Check {
        table,
        name: name.into(),
        expr: Condition {
            expr: expr.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            calls: calls.iter().map(|c| c.to_string()).collect(),
        },
        no_inherit: false,
    }
}

#[test]
fn checks_read() {
    assert_eq!(
        row_rule("ALTER TABLE public.t\n    ADD CONSTRAINT c CHECK (((qty > 0) AND (char_length(\"Code\") <= 8)))"),
        Some(check(
            r("public", "t"),
            "c",
            "qty > 0 AND char_length(\"Code\") <= 8",
            &["Code", "qty"],
            &[]
        ))
    );
    assert_eq!(
        row_rule("ALTER TABLE public.t\n    ADD CONSTRAINT c CHECK ((x > 0)) NOT VALID"),
        Some(RowRule::Nothing)
    );
    // 18+: a constraint that is not enforced reads no rows.
    assert_eq!(
        row_rule("ALTER TABLE public.t\n    ADD CONSTRAINT c CHECK ((x > 0)) NOT ENFORCED"),
        Some(RowRule::Nothing)
    );
    assert!(matches!(
        row_rule("ALTER TABLE public.t\n    ADD CONSTRAINT c CHECK ((x > 0)) NO INHERIT"),
        Some(RowRule::Check {
            no_inherit: true,
            ..
        })
    ));
    // Calls other than known-immutable builtins are named (qualified as written).
    let calls = |sql: &str| match row_rule(sql) {
        Some(RowRule::Check { expr, .. }) => expr.calls,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        calls("ALTER TABLE t ADD CONSTRAINT c CHECK ((public.valid(x) AND (ts < now()) AND (pg_catalog.lower(a) = lower(a)) AND (length(b, 'UTF8'::name) > length(a))))"),
        ["length", "now", "public.valid"]
    );
    assert_eq!(
        calls("ALTER TABLE t ADD CONSTRAINT c CHECK ((x OPERATOR(public.===) 1))"),
        ["OPERATOR(public.===)"]
    );
    // A call nested where the tree's own iterator does not look.
    assert_eq!(
        calls("ALTER TABLE t ADD CONSTRAINT c CHECK ((ARRAY[public.f(x)] <> '{}'::integer[]))"),
        ["public.f"]
    );
    let create = "CREATE TABLE public.t (\n    id integer,\n    s text,\n    CONSTRAINT a CHECK ((id > 0)),\n    CONSTRAINT \"B b\" CHECK ((s <> ''::text))\n)";
    assert_eq!(
        table_check(create, "B b"),
        Some(check(r("public", "t"), "B b", "s <> ''::text", &["s"], &[]))
    );
    assert_eq!(table_check(create, "c"), None);
}

/// A CHECK's text made to carry a second statement, a comment, or a query: it parses to
/// one expression (what is deparsed from it is that expression, and nothing else) or it
/// is refused.
#[test]
fn hostile_checks_are_one_expression_or_refused() {
    let expr = |sql: &str| match row_rule(sql) {
        Some(RowRule::Check { expr, .. }) => expr.expr,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        row_rule("ALTER TABLE t ADD CONSTRAINT c CHECK ((x > 0)); DROP TABLE canary"),
        None
    );
    assert_eq!(
        table_check(
            "CREATE TABLE public.t (x integer, CONSTRAINT c CHECK ((x > 0)));\nDROP TABLE canary; --)",
            "c"
        ),
        None
    );
    // Comments are not part of the tree: they do not come back.
    assert_eq!(
        expr("ALTER TABLE t ADD CONSTRAINT c CHECK ((x > 0 /* ; DROP TABLE canary */)) -- ; DROP TABLE canary"),
        "x > 0"
    );
    // A literal stays a literal, whatever it holds.
    let lit =
        expr("ALTER TABLE t ADD CONSTRAINT c CHECK ((s <> '''); DROP TABLE canary; --'::text))");
    assert_eq!(lit, "s <> '''); DROP TABLE canary; --'::text");
    assert_eq!(one_expression(&lit).as_deref(), Some(lit.as_str()));
    for sql in [
        "ALTER TABLE t ADD CONSTRAINT c CHECK (((SELECT count(*) FROM canary) > 0))",
        "ALTER TABLE t ADD CONSTRAINT c CHECK ((x > $1))",
        "ALTER TABLE t ADD CONSTRAINT c CHECK ((t.x > 0))",
    ] {
        assert!(
            matches!(
                row_rule(sql),
                Some(RowRule::NotReadable { table: Some(_), .. })
            ),
            "{sql}"
        );
    }
}

#[test]
fn one_expression_is_a_fixed_point() {
    assert_eq!(one_expression("x > 0").as_deref(), Some("x > 0"));
    assert_eq!(
        one_expression("status = ANY(ARRAY['a'::text, 'b'::text])").as_deref(),
        Some("status = ANY(ARRAY['a'::text, 'b'::text])")
    );
    for bad in [
        "x > 0; DROP TABLE canary",
        "x > 0 -- DROP TABLE canary",
        "x > 0 /* */",
        "1 FROM canary",
        "x > 0) OR (true",
        "(SELECT 1 FROM canary) IS NOT NULL",
        "x > $1",
        "x>0",
        "1 AS a",
        "",
        "1 UNION SELECT 2",
        // Not as the deparser writes it: refused, although harmless.
        "status = ANY (ARRAY['a'::text])",
    ] {
        assert_eq!(one_expression(bad), None, "{bad}");
    }
}

#[test]
fn domain_checks_and_enum_labels_read() {
    let d = "CREATE DOMAIN public.d AS integer NOT NULL\n\tCONSTRAINT pos CHECK ((VALUE > 0))\n\tCONSTRAINT \"Small\" CHECK ((VALUE < abs(-100)))";
    assert_eq!(
        domain_check(d, "pos"),
        Some(Ok(Condition {
            expr: "value > 0".into(),
            columns: vec!["value".into()],
            calls: vec![],
        }))
    );
    assert!(matches!(domain_check(d, "Small"), Some(Ok(c)) if c.expr == "value < abs(-100)"));
    assert_eq!(domain_check(d, "nope"), None);
    assert!(matches!(
        domain_check(
            "CREATE DOMAIN public.d AS integer CONSTRAINT c CHECK ((other > 0))",
            "c"
        ),
        Some(Err(_))
    ));
    assert_eq!(
        enum_values("CREATE TYPE public.m AS ENUM (\n    'a',\n    'it''s',\n    'B b'\n)"),
        Some(vec!["a".into(), "it's".into(), "B b".into()])
    );
    assert_eq!(enum_values("CREATE TYPE public.m AS (a integer)"), None);
}

#[test]
fn indexes_read() {
    assert_eq!(
        row_rule("CREATE UNIQUE INDEX i ON public.t USING btree (a, b DESC) INCLUDE (c)"),
        Some(RowRule::Unique {
            table: r("public", "t"),
            columns: vec!["a".into(), "b".into()],
            primary_key: false,
            nulls_not_distinct: false,
        })
    );
    assert_eq!(
        row_rule("CREATE INDEX i ON public.t USING btree (a)"),
        Some(RowRule::Nothing)
    );
    assert_eq!(
        row_rule("CREATE UNIQUE INDEX i ON ONLY public.p USING btree (a)"),
        Some(RowRule::Nothing)
    );
    for sql in [
        "CREATE UNIQUE INDEX i ON public.t USING btree (lower(email))",
        "CREATE UNIQUE INDEX i ON public.t USING btree (a) WHERE (b IS NULL)",
    ] {
        assert!(
            matches!(
                row_rule(sql),
                Some(RowRule::NotReadable { table: Some(_), .. })
            ),
            "{sql}"
        );
    }
    assert_eq!(
        row_rule("CREATE UNIQUE INDEX i ON public.t (a); SELECT 1"),
        None
    );
}

#[test]
fn type_names() {
    for ok in [
        "integer",
        "character varying(10)",
        "public.\"Mood\"[]",
        "timestamp(3) with time zone",
        "numeric(10,2)",
    ] {
        assert!(is_type_name(ok), "{ok}");
    }
    for bad in [
        "integer; DROP TABLE t",
        "integer FROM pg_class",
        "integer, 1",
        "integer)::text; --",
        "integer -- x",
        "int WHERE true",
        "",
        "integer UNION SELECT 1",
    ] {
        assert!(!is_type_name(bad), "{bad}");
    }
}
