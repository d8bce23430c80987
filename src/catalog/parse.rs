//! The one module that talks to the SQL parser (libpg_query through the `pg_query` crate).
//! Everything else sees our own types: tokens, identifiers and table definitions.

use anyhow::{anyhow, bail, Context, Result};
use pg_query::protobuf::{KeywordKind, Token};
use pg_query::NodeEnum;

/// A lexical token of a statement, with its byte span in that statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tok {
    pub start: usize,
    pub end: usize,
    pub kind: TokKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokKind {
    /// An identifier or an unreserved keyword used as one; `.0` is its unquoted value.
    Ident(String),
    /// A keyword that is not a plain identifier, upper-cased (`ON`, `TO`, `CONSTRAINT`, ...).
    Keyword(String),
    /// A one-character token: `(`, `)`, `,`, `.`, `;`.
    Punct(char),
    /// Anything else: literals, operators, comments.
    Other,
}

impl Tok {
    pub fn is_kw(&self, kw: &str) -> bool {
        match &self.kind {
            TokKind::Keyword(k) => k == kw,
            // Unreserved keywords (OWNER, SEQUENCE, ...) scan as keywords but read as identifiers.
            TokKind::Ident(_) => false,
            _ => false,
        }
    }
    pub fn is_word(&self, sql: &str, word: &str) -> bool {
        matches!(self.kind, TokKind::Keyword(_) | TokKind::Ident(_))
            && sql[self.start..self.end].eq_ignore_ascii_case(word)
    }
    pub fn is_punct(&self, c: char) -> bool {
        self.kind == TokKind::Punct(c)
    }
}

/// Splits SQL text into tokens with the server's own scanner.
pub fn tokens(sql: &str) -> Result<Vec<Tok>> {
    let raw = pg_query::scan_tokens(sql).map_err(|e| anyhow!("cannot scan SQL: {e}"))?;
    let mut out = Vec::with_capacity(raw.len());
    for t in raw {
        let (start, end) = (t.start as usize, t.end as usize);
        let text = &sql[start..end];
        let kw = KeywordKind::try_from(t.keyword_kind).unwrap_or(KeywordKind::NoKeyword);
        let token = Token::try_from(t.token).unwrap_or(Token::Nul);
        let kind = match token {
            Token::Ident => TokKind::Ident(unquote_ident(text)),
            Token::Ascii40 => TokKind::Punct('('),
            Token::Ascii41 => TokKind::Punct(')'),
            Token::Ascii44 => TokKind::Punct(','),
            Token::Ascii46 => TokKind::Punct('.'),
            Token::Ascii59 => TokKind::Punct(';'),
            _ if kw == KeywordKind::UnreservedKeyword => {
                // Unreserved keywords are also valid identifiers; keep both readings.
                TokKind::Keyword(text.to_ascii_uppercase())
            }
            _ if kw != KeywordKind::NoKeyword => TokKind::Keyword(text.to_ascii_uppercase()),
            _ => TokKind::Other,
        };
        out.push(Tok { start, end, kind });
    }
    Ok(out)
}

/// The identifier a token spells, if it can be read as one (identifiers and non-reserved keywords).
pub fn ident_of(sql: &str, t: &Tok) -> Option<String> {
    match &t.kind {
        TokKind::Ident(s) => Some(s.clone()),
        TokKind::Keyword(_) => Some(sql[t.start..t.end].to_ascii_lowercase()),
        _ => None,
    }
}

/// Splits a script into statements (without the trailing semicolon), respecting quotes,
/// dollar quoting and comments.
pub fn split_statements(text: &str) -> Result<Vec<String>> {
    // Most blocks of a dump (indexes, constraints, owners, grants) hold no literal, quoted name,
    // dollar quote or comment: every `;` ends a statement there, and the scanner is not needed.
    let plain = !text
        .bytes()
        .any(|c| matches!(c, b'\'' | b'"' | b'$' | b'\\' | b'/' | b'-'));
    let parts: Vec<&str> = if plain {
        text.split(';').collect()
    } else {
        pg_query::split_with_scanner(text).map_err(|e| anyhow!("cannot split SQL: {e}"))?
    };
    Ok(parts
        .into_iter()
        .map(|s| strip_leading_comments(s).trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

fn strip_leading_comments(mut s: &str) -> &str {
    loop {
        let t = s.trim_start();
        if let Some(rest) = t.strip_prefix("--") {
            s = rest.find('\n').map(|i| &rest[i + 1..]).unwrap_or("");
        } else {
            return t;
        }
    }
}

#[cfg(test)]
mod split_tests {
    use super::split_statements;

    /// The fast path (no quotes, comments or dollars) splits exactly as the server's scanner.
    #[test]
    fn fast_path_agrees_with_the_scanner() {
        for text in [
            "CREATE INDEX i ON public.t USING btree (a);\n\n\nALTER TABLE public.t OWNER TO r;\n",
            "ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n",
            "GRANT SELECT ON TABLE public.t TO r;\nGRANT ALL ON TABLE public.t TO w;",
            "CREATE TABLE public.t (\n    a integer,\n    b numeric(10,2)\n);\n",
            "",
            ";;",
        ] {
            let fast = split_statements(text).unwrap();
            let scanner: Vec<String> = pg_query::split_with_scanner(text)
                .unwrap()
                .into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            assert_eq!(fast, scanner, "{text:?}");
        }
        // Quotes, comments and dollars take the scanner.
        assert_eq!(
            split_statements("COMMENT ON TABLE t IS 'a;b';\nSELECT $$;$$;").unwrap(),
            vec!["COMMENT ON TABLE t IS 'a;b'", "SELECT $$;$$"]
        );
    }
}

/// Reads a possibly double-quoted identifier as PostgreSQL does.
pub fn unquote_ident(text: &str) -> String {
    if text.len() >= 2 && text.starts_with('"') && text.ends_with('"') {
        text[1..text.len() - 1].replace("\"\"", "\"")
    } else {
        text.to_lowercase()
    }
}

/// Quotes an identifier when PostgreSQL needs it quoted, the way `quote_ident` and pg_dump do:
/// anything but lower-case letters, digits and underscores, or a keyword that is not unreserved.
pub fn quote_ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain && !is_keyword_needing_quotes(name) {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

fn is_keyword_needing_quotes(word: &str) -> bool {
    match pg_query::scan_tokens(word) {
        Ok(toks) if toks.len() == 1 => {
            let kw = KeywordKind::try_from(toks[0].keyword_kind).unwrap_or(KeywordKind::NoKeyword);
            !matches!(kw, KeywordKind::NoKeyword | KeywordKind::UnreservedKeyword)
        }
        _ => true,
    }
}

/// `schema.name`, each part quoted as needed.
pub fn qualified(schema: &str, name: &str) -> String {
    if schema.is_empty() {
        quote_ident(name)
    } else {
        format!("{}.{}", quote_ident(schema), quote_ident(name))
    }
}

/// Quotes a string literal.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// One column of a `CREATE TABLE`, each part as the text pg_dump wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ColumnDef {
    pub name: String,
    /// The whole column definition as written (used to add the column).
    pub text: String,
    pub type_sql: String,
    pub collate: Option<String>,
    pub default: Option<String>,
    pub generated: Option<String>,
    pub not_null: bool,
    /// The NOT NULL constraint's name where pg_dump prints one (18+: a name other than
    /// `<table>_<column>_not_null`, e.g. one a partition inherited from its parent).
    pub not_null_name: Option<String>,
    /// Any other inline clause (STORAGE, COMPRESSION, CHECK ...), as written.
    pub other: Vec<String>,
}

/// A table-level element of a `CREATE TABLE` that is not a column (inline CHECK constraints).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableConstraint {
    pub name: String,
    pub text: String,
}

/// A `CREATE TABLE` statement as pgalign needs to understand it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TableDef {
    pub schema: String,
    pub name: String,
    /// Text before the element list, normalized (`CREATE UNLOGGED TABLE s.t`).
    pub head: String,
    /// Text after the element list (`PARTITION BY ...`, `INHERITS (...)`, `WITH (...)`), trimmed.
    pub tail: String,
    pub columns: Vec<ColumnDef>,
    pub constraints: Vec<TableConstraint>,
    pub unlogged: bool,
    /// `PARTITION OF` / `OF type` tables keep their columns elsewhere; they are compared as text.
    pub is_typed_or_partition: bool,
}

/// Parses a `CREATE TABLE` (or `CREATE FOREIGN TABLE`) statement as pg_dump writes it.
pub fn parse_create_table(sql: &str) -> Result<TableDef> {
    let parsed = pg_query::parse(sql, 0).map_err(|e| anyhow!("cannot parse CREATE TABLE: {e}"))?;
    let stmt = parsed
        .protobuf
        .stmts
        .first()
        .and_then(|s| s.stmt.as_ref())
        .and_then(|n| n.node.as_ref())
        .ok_or_else(|| anyhow!("empty statement"))?;
    let create = match stmt {
        NodeEnum::CreateStmt(c) => c,
        NodeEnum::CreateForeignTableStmt(f) => f
            .base_stmt
            .as_ref()
            .ok_or_else(|| anyhow!("foreign table without base"))?,
        _ => bail!("not a CREATE TABLE statement"),
    };
    let rel = create
        .relation
        .as_ref()
        .ok_or_else(|| anyhow!("CREATE TABLE without a name"))?;
    let toks = tokens(sql)?;
    // The element list is the first parenthesis after the relation name.
    let rel_loc = rel.location.max(0) as usize;
    let open = toks
        .iter()
        .position(|t| t.start >= rel_loc && t.is_punct('('));
    let (open_i, close_i) = match open {
        Some(o) => (
            o,
            matching_paren(&toks, o).ok_or_else(|| anyhow!("unbalanced parentheses"))?,
        ),
        None => bail!("CREATE TABLE without an element list"),
    };
    let body_start = toks[open_i].end;
    let body_end = toks[close_i].start;
    let head = collapse_ws(&sql[..toks[open_i].start]);
    let tail = collapse_ws(&sql[toks[close_i].end..]);

    // Element boundaries: top-level commas inside the list.
    let mut bounds = vec![body_start];
    let mut depth = 0i32;
    for t in &toks[open_i + 1..close_i] {
        match t.kind {
            TokKind::Punct('(') => depth += 1,
            TokKind::Punct(')') => depth -= 1,
            TokKind::Punct(',') if depth == 0 => {
                bounds.push(t.start);
                bounds.push(t.end);
            }
            _ => {}
        }
    }
    bounds.push(body_end);
    let spans: Vec<(usize, usize)> = bounds.chunks(2).map(|c| (c[0], c[1])).collect();

    let mut columns = Vec::new();
    let mut constraints = Vec::new();
    for (elt, (s, e)) in create.table_elts.iter().zip(spans.iter()) {
        let text = sql[*s..*e].trim().to_string();
        match elt.node.as_ref() {
            Some(NodeEnum::ColumnDef(c)) => columns.push(column_parts(sql, &toks, c, *s, *e)?),
            Some(NodeEnum::Constraint(c)) => constraints.push(TableConstraint {
                name: c.conname.clone(),
                text,
            }),
            _ => {
                // LIKE clauses never appear in dumps; keep them as opaque constraints so a
                // difference is still seen.
                constraints.push(TableConstraint {
                    name: String::new(),
                    text,
                })
            }
        }
    }
    if create.table_elts.len() != spans.len() && !create.table_elts.is_empty() {
        bail!("CREATE TABLE element list did not split cleanly");
    }
    Ok(TableDef {
        schema: rel.schemaname.clone(),
        name: rel.relname.clone(),
        head,
        tail,
        columns,
        constraints,
        unlogged: rel.relpersistence == "u",
        is_typed_or_partition: create.partbound.is_some() || create.of_typename.is_some(),
    })
}

/// How a function's result may change between calls with the same arguments
/// (`pg_proc.provolatile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Volatility {
    Immutable,
    Stable,
    Volatile,
}

/// The volatility a `CREATE FUNCTION` declares. pg_dump prints `IMMUTABLE` or `STABLE` and
/// nothing for `VOLATILE`, the default. `None` when the statement is not a CREATE FUNCTION.
pub fn function_volatility(sql: &str) -> Option<Volatility> {
    let parsed = pg_query::parse(sql, 0).ok()?;
    let stmt = parsed
        .protobuf
        .stmts
        .first()?
        .stmt
        .as_ref()?
        .node
        .as_ref()?;
    let NodeEnum::CreateFunctionStmt(f) = stmt else {
        return None;
    };
    for o in &f.options {
        let Some(NodeEnum::DefElem(d)) = o.node.as_ref() else {
            continue;
        };
        if d.defname != "volatility" {
            continue;
        }
        if let Some(NodeEnum::String(v)) = d.arg.as_ref().and_then(|a| a.node.as_ref()) {
            return Some(match v.sval.as_str() {
                "immutable" => Volatility::Immutable,
                "stable" => Volatility::Stable,
                _ => Volatility::Volatile,
            });
        }
    }
    Some(Volatility::Volatile)
}

/// The functions an expression calls, as (schema, name), unquoted, the schema empty when the
/// call is unqualified (pg_dump qualifies every function outside pg_catalog). Read from the
/// tokens (a name followed by `(`), so it sees calls inside any kind of expression; a type
/// modifier (`numeric(10,2)`) reads as a call too, which callers looking up functions by name
/// can ignore. `None` when the expression does not scan.
pub fn called_functions(expr: &str) -> Option<Vec<(String, String)>> {
    let toks = tokens(expr).ok()?;
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if !toks.get(i + 1).is_some_and(|n| n.is_punct('(')) {
            continue;
        }
        let Some(name) = ident_of(expr, t) else {
            continue;
        };
        let schema = match i.checked_sub(2) {
            Some(j) if toks[i - 1].is_punct('.') => ident_of(expr, &toks[j]).unwrap_or_default(),
            _ => String::new(),
        };
        if !out.iter().any(|(s, n)| *s == schema && *n == name) {
            out.push((schema, name));
        }
    }
    Some(out)
}

/// The index of the token `)` that closes the `(` at `open`.
pub fn matching_paren(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t.kind {
            TokKind::Punct('(') => depth += 1,
            TokKind::Punct(')') => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cuts one column definition into its clauses using the parser's locations: each clause runs
/// from its own location to the next clause's.
fn column_parts(
    sql: &str,
    toks: &[Tok],
    c: &pg_query::protobuf::ColumnDef,
    s: usize,
    e: usize,
) -> Result<ColumnDef> {
    let text = sql[s..e].trim().to_string();
    let type_loc = c
        .type_name
        .as_ref()
        .map(|t| t.location.max(0) as usize)
        .context("column without a type")?;
    // (location, what) of every clause after the type.
    let mut marks: Vec<(usize, &str)> = Vec::new();
    let mut not_null_name = None;
    if let Some(cc) = &c.coll_clause {
        marks.push((
            clause_start(toks, cc.location.max(0) as usize, "COLLATE"),
            "collate",
        ));
    }
    for con in &c.constraints {
        if let Some(NodeEnum::Constraint(k)) = con.node.as_ref() {
            let what = match pg_query::protobuf::ConstrType::try_from(k.contype) {
                Ok(pg_query::protobuf::ConstrType::ConstrDefault) => "default",
                Ok(pg_query::protobuf::ConstrType::ConstrNotnull) => {
                    if !k.conname.is_empty() {
                        not_null_name = Some(k.conname.clone());
                    }
                    "notnull"
                }
                Ok(pg_query::protobuf::ConstrType::ConstrGenerated) => "generated",
                _ => "other",
            };
            marks.push((k.location.max(0) as usize, what));
        }
    }
    marks.sort();
    let type_end = marks.first().map(|m| m.0).unwrap_or(e);
    let type_sql = sql[type_loc..type_end].trim().to_string();
    let mut col = ColumnDef {
        name: c.colname.clone(),
        text,
        type_sql,
        collate: None,
        default: None,
        generated: None,
        not_null: false,
        not_null_name,
        other: Vec::new(),
    };
    for (i, (loc, what)) in marks.iter().enumerate() {
        let end = marks.get(i + 1).map(|m| m.0).unwrap_or(e);
        let part = sql[*loc..end].trim().to_string();
        match *what {
            "collate" => col.collate = Some(part["COLLATE".len()..].trim().to_string()),
            "default" => col.default = Some(part["DEFAULT".len()..].trim().to_string()),
            "notnull" => col.not_null = true,
            "generated" => col.generated = Some(part),
            _ => col.other.push(part),
        }
    }
    Ok(col)
}

/// The parser puts a COLLATE clause's location at the collation name on some versions; the
/// clause starts at the COLLATE keyword before it.
fn clause_start(toks: &[Tok], loc: usize, kw: &str) -> usize {
    let i = toks.iter().rposition(|t| t.start <= loc).unwrap_or(0);
    toks[..=i]
        .iter()
        .rev()
        .find(|t| t.is_kw(kw))
        .map(|t| t.start)
        .unwrap_or(loc)
}

#[cfg(test)]
mod tests {
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
    }

    #[test]
    fn parses_empty_table() {
        let t = parse_create_table("CREATE TABLE public.e (\n)").unwrap();
        assert!(t.columns.is_empty());
    }
}
