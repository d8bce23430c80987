//! Unit tests of parse.rs and table.rs (kept apart: the modules are long enough).

use super::*;

#[test]
fn quotes_like_postgres() {
    assert_eq!(quote_ident("orders"), "orders");
    assert_eq!(quote_ident("Orders"), "\"Orders\"");
    assert_eq!(quote_ident("order"), "\"order\"");
    assert_eq!(quote_ident("user"), "\"user\"");
    assert_eq!(quote_ident("name"), "name");
    assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    assert_eq!(quote_ident("café"), "\"café\"");
    assert_eq!(quote_ident("with space"), "\"with space\"");
    assert_eq!(quote_ident("1abc"), "\"1abc\"");
    // The longest keyword is still asked about (names beyond its length are not).
    assert_eq!(quote_ident("current_timestamp"), "\"current_timestamp\"");
    assert_eq!(quote_ident("current_timestamp_x"), "current_timestamp_x");
    assert_eq!(
        keyword_needing_quotes_scanned("current_timestamp"),
        is_keyword_needing_quotes("current_timestamp")
    );
}

#[test]
fn unquotes() {
    assert_eq!(unquote_ident("\"a\"\"b\""), "a\"b");
    assert_eq!(unquote_ident("Foo"), "foo");
}

#[test]
fn splits_dollar_quoted_bodies() {
    let s = "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ select 1; select 2 $$;\nALTER FUNCTION f() OWNER TO x;";
    let parts = split_statements(s).unwrap();
    assert_eq!(parts.len(), 2);
    assert!(parts[0].ends_with("$$"));
}

#[test]
fn keeps_not_null_constraint_names() {
    let sql = "CREATE TABLE public.\"events 1\" (\n    id integer CONSTRAINT \"some events_id_not_null\" NOT NULL,\n    region text NOT NULL\n)";
    let t = parse_create_table(sql).unwrap();
    assert!(t.columns[0].not_null && t.columns[1].not_null);
    assert_eq!(
        t.columns[0].not_null_name.as_deref(),
        Some("some events_id_not_null")
    );
    assert_eq!(t.columns[1].not_null_name, None);
}

#[test]
fn parses_table_columns() {
    let sql = "CREATE TABLE app.orders (\n    id integer NOT NULL,\n    name text DEFAULT 'x,y'::text NOT NULL,\n    \"Weird \"\"col\" character varying(10) COLLATE pg_catalog.\"C\",\n    g integer GENERATED ALWAYS AS ((id * 2)) STORED,\n    CONSTRAINT c CHECK ((id > 0))\n) WITH (fillfactor='70')";
    let t = parse_create_table(sql).unwrap();
    assert_eq!(t.schema, "app");
    assert_eq!(t.name, "orders");
    assert_eq!(t.columns.len(), 4);
    assert_eq!(t.columns[1].default.as_deref(), Some("'x,y'::text"));
    assert!(t.columns[1].not_null);
    assert_eq!(t.columns[1].type_sql, "text");
    assert_eq!(t.columns[2].name, "Weird \"col");
    assert_eq!(t.columns[2].type_sql, "character varying(10)");
    assert_eq!(t.columns[2].collate.as_deref(), Some("pg_catalog.\"C\""));
    assert_eq!(
        t.columns[3].generated.as_deref(),
        Some("GENERATED ALWAYS AS ((id * 2)) STORED")
    );
    assert_eq!(t.constraints[0].name, "c");
    assert_eq!(t.constraints[0].text, "CONSTRAINT c CHECK ((id > 0))");
    assert_eq!(t.tail, "WITH (fillfactor='70')");
    assert_eq!(t.storage, [("fillfactor".into(), "'70'".into())]);
    assert!(t.inherits.is_empty() && t.partition_by.is_none() && t.rest.is_empty());
}

#[test]
fn reads_table_tails() {
    let t = parse_create_table(
        "CREATE TABLE public.c (\n    a integer\n)\nINHERITS (public.p, \"My Schema\".\"b,c\")\nWITH (fillfactor='70', autovacuum_enabled='false')",
    )
    .unwrap();
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(t.inherits, [pair("public", "p"), pair("My Schema", "b,c")]);
    assert_eq!(
        t.storage,
        [
            pair("fillfactor", "'70'"),
            pair("autovacuum_enabled", "'false'")
        ]
    );
    assert_eq!(t.rest, "");
    assert_eq!(
        t.tail_without_storage(),
        r#"INHERITS (public.p, "My Schema"."b,c")"#
    );
    let t = parse_create_table("CREATE TABLE public.p (\n    k integer\n)\nPARTITION BY LIST (k)")
        .unwrap();
    assert_eq!(t.partition_by.as_deref(), Some("PARTITION BY LIST (k)"));
    assert!(t.storage.is_empty() && t.inherits.is_empty() && t.rest.is_empty());
    let t = parse_create_table(
        "CREATE FOREIGN TABLE public.f (\n    a integer\n)\nINHERITS (public.p)\nSERVER s\nOPTIONS (\n    table_name 'x'\n)",
    )
    .unwrap();
    assert_eq!(t.inherits, [pair("public", "p")]);
    assert_eq!(t.rest, "SERVER s OPTIONS ( table_name 'x' )");
    // Not readable: left in the rest, so the tails still differ.
    assert_eq!(
        split_inherits("INHERITS (a"),
        (vec![], "INHERITS (a".to_string())
    );
    let t = parse_create_table("CREATE UNLOGGED TABLE public.u (\n    a integer\n)").unwrap();
    assert_eq!(t.head_when_logged(), "CREATE TABLE public.u");
}

#[test]
fn reads_table_settings() {
    let s = table_setting("ALTER TABLE ONLY public.t ALTER COLUMN x SET STATISTICS 100").unwrap();
    assert_eq!(s.on, "ALTER TABLE ONLY public.t ALTER COLUMN x");
    assert_eq!(s.kind, TableSettingKind::Statistics);
    let s = table_setting("ALTER TABLE ONLY public.t FORCE ROW LEVEL SECURITY").unwrap();
    assert_eq!(s.on, "ALTER TABLE ONLY public.t");
    assert_eq!(s.kind, TableSettingKind::ForceRowLevelSecurity);
    assert_eq!(
        table_setting("ALTER TABLE ONLY public.t NO FORCE ROW LEVEL SECURITY"),
        None
    );
    assert_eq!(table_setting("ALTER TABLE public.t OWNER TO x"), None);
}

#[test]
fn reads_type_modifiers() {
    assert_eq!(
        type_modifiers("numeric(10,2)", "numeric"),
        Some(vec![10, 2])
    );
    assert_eq!(type_modifiers("numeric", "numeric"), Some(vec![]));
    assert_eq!(type_modifiers("numeric(10,2)[]", "numeric"), None);
    assert_eq!(type_modifiers("integer", "numeric"), None);
}

#[test]
fn puts_a_clause_after_the_type() {
    let t = parse_create_table(
        "CREATE TABLE public.t (\n    id integer COLLATE pg_catalog.\"C\" NOT NULL\n)",
    )
    .unwrap();
    assert_eq!(
        t.columns[0].with_clause("DEFAULT 1"),
        "id integer COLLATE pg_catalog.\"C\" DEFAULT 1 NOT NULL"
    );
}

#[test]
fn reads_function_volatility() {
    let f = |sql: &str| function_volatility(sql);
    assert_eq!(
        f("CREATE FUNCTION public.f() RETURNS text\n    LANGUAGE sql\n    AS $$ SELECT 'stable' $$"),
        Some(Volatility::Volatile)
    );
    assert_eq!(
        f("CREATE FUNCTION public.f(a integer) RETURNS integer\n    LANGUAGE sql IMMUTABLE\n    AS $$ SELECT a $$"),
        Some(Volatility::Immutable)
    );
    assert_eq!(
        f("CREATE FUNCTION public.\"Volatile\"() RETURNS TABLE(immutable integer)\n    LANGUAGE sql STABLE PARALLEL SAFE\n    AS $$ SELECT 1 $$"),
        Some(Volatility::Stable)
    );
    assert_eq!(
        f("CREATE FUNCTION public.f() RETURNS integer\n    LANGUAGE sql IMMUTABLE\n    RETURN 1"),
        Some(Volatility::Immutable)
    );
    assert_eq!(f("CREATE TABLE public.t (a integer)"), None);
}

#[test]
fn reads_called_functions() {
    let calls = called_functions(
        "(public.next_code() || \"My Schema\".\"Gen\"(1, now()))::character varying(20)",
    )
    .unwrap();
    let want = |s: &str, n: &str| (s.to_string(), n.to_string());
    assert!(calls.contains(&want("public", "next_code")));
    assert!(calls.contains(&want("My Schema", "Gen")));
    assert!(calls.contains(&want("", "now")));
    assert!(called_functions("'x'::text").unwrap().is_empty());
    assert_eq!(
        called_functions("nextval('public.t_id_seq'::regclass)").unwrap(),
        vec![want("", "nextval")]
    );
    // Unscannable (an open quote), yet the call is seen.
    assert!(called_functions("RANDOM() || 'x").is_none());
    assert!(mentions_call("RANDOM() || 'x", "random"));
    assert!(!mentions_call("random_x() || 'x", "random"));
}

#[test]
fn parses_empty_table() {
    let t = parse_create_table("CREATE TABLE public.e (\n)").unwrap();
    assert!(t.columns.is_empty());
}

#[test]
fn names_making_way_fit_in_63_bytes() {
    assert_eq!(name_making_way("t_id_seq", "__old"), "t_id_seq__old");
    let long = "é".repeat(40); // 80 bytes
    let n = name_making_way(&long, "__old");
    assert!(
        n.len() <= 63 && n.ends_with("__old") && n.starts_with('é'),
        "{n}"
    );
    assert_eq!(truncate_identifier(&long).len(), 62);
}

/// The byte loop for '...' and "..." quoting splits exactly where the server's scanner does, or
/// leaves the text to it: random text over the characters that matter (quotes, doubled quotes,
/// semicolons, parentheses, comment starts, dollars, backslashes, `begin`).
#[test]
fn quoted_split_agrees_with_the_scanner() {
    use proptest::prelude::*;
    let pieces = prop::sample::select(vec![
        "'",
        "\"",
        "''",
        "\"\"",
        ";",
        "(",
        ")",
        "-",
        "--",
        "/",
        "/*",
        "*/",
        "$",
        "$$",
        "\\",
        " ",
        "\n",
        "a",
        "x1",
        "begin",
        "BEGIN ATOMIC",
        "é",
        "CREATE TABLE t",
        "DEFAULT 'a;b'",
        "COMMENT ON",
        "E'",
        "U&\"",
        "end",
    ]);
    let texts = prop::collection::vec(pieces, 0..24).prop_map(|v| v.concat());
    let mut runner = crate::catalog::fixed_runner(20_000, 7);
    let fast = std::cell::Cell::new(0);
    runner
        .run(&texts, |text| {
            if let Some(quick) = split_quoted(&text) {
                fast.set(fast.get() + 1);
                match split_scanned(&text) {
                    Ok(scanned) => prop_assert_eq!(quick, scanned, "{:?}", text),
                    Err(e) => prop_assert!(false, "{:?}: split, but the scanner says {}", text, e),
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(
        fast.get() > 1_000,
        "only {} texts took the quick path",
        fast.get()
    );
    // What pg_dump writes, read the quick way.
    let table = "CREATE TABLE \"My\".t (\n    a text DEFAULT 'x;y'::text,\n    \"b\"\"c\" integer\n);\nALTER TABLE \"My\".t OWNER TO \"r'1\";\n";
    let (quick, rest) = split_quoted(table).unwrap();
    assert_eq!(quick.len(), 2);
    assert_eq!(rest, "\n");
    for refused in [
        "SELECT $$;$$;",
        "SELECT E'\\';'",
        "-- c\nSELECT 1;",
        "SELECT \"\";",
        "SELECT 'open;",
    ] {
        assert!(split_quoted(refused).is_none(), "{refused}");
    }
}
