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
    /// `-- ...` or `/* ... */`.
    Comment,
    /// Anything else: literals, operators.
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

/// The server's scanner over `sql`. Text without a token is not handed to it: libpg_query
/// returns no token list at all then, which `pg_query::scan_tokens` turns into a slice from a
/// null pointer (an abort in debug builds).
fn scan(sql: &str) -> Result<Vec<pg_query::protobuf::ScanToken>> {
    if sql.bytes().all(|b| b" \t\n\r\x0b\x0c".contains(&b)) {
        return Ok(Vec::new());
    }
    pg_query::scan_tokens(sql).map_err(|e| match e {
        pg_query::Error::Conversion(_) => anyhow!("it holds a NUL byte"),
        pg_query::Error::Scan(m) => anyhow!("cannot scan SQL: {m}"),
        e => anyhow!("cannot scan SQL: {e}"),
    })
}

/// Splits SQL text into tokens with the server's own scanner.
pub fn tokens(sql: &str) -> Result<Vec<Tok>> {
    let raw = scan(sql)?;
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
            Token::SqlComment | Token::CComment => TokKind::Comment,
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
    Ok(split_script(text)?.stmts)
}

/// A script cut into statements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Each statement without its semicolon, trimmed, leading `--` comments removed.
    pub stmts: Vec<String>,
    /// The last statement has no semicolon after it: pg_dump closes every statement, so the
    /// text was cut.
    pub unterminated: bool,
}

/// Splits a script into statements as psql does: at semicolons outside quotes, dollar quotes,
/// comments and parentheses, and outside a SQL-standard function body (`BEGIN ATOMIC ... END`,
/// whose statements end in semicolons of their own). Nothing is skipped: text between two
/// semicolons is a statement even when it is not SQL (libpg_query's own splitter drops what
/// holds no keyword, which would hide it from every check).
pub fn split_script(text: &str) -> Result<Split> {
    // Most blocks of a dump (indexes, constraints, owners, grants) hold no literal, quoted name,
    // dollar quote, comment or function body: only parentheses can hide a `;` there, and the
    // scanner is not needed.
    let plain = is_plain(text.as_bytes());
    let (pieces, rest) = if plain {
        split_plain(text)
    } else {
        split_scanned(text)?
    };
    let unterminated = !strip_leading_comments(rest).trim().is_empty();
    Ok(Split {
        stmts: pieces
            .into_iter()
            .chain([rest])
            .map(|s| strip_leading_comments(s).trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        unterminated,
    })
}

/// Statements closed by a semicolon, and the text after the last one: text without quotes,
/// comments or function bodies.
fn split_plain(text: &str) -> (Vec<&str>, &str) {
    let mut pieces = Vec::new();
    let (mut start, mut depth) = (0, 0i64);
    for (i, c) in text.bytes().enumerate() {
        match c {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b';' if depth == 0 => {
                pieces.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    (pieces, &text[start..])
}

/// `split_plain` for any text, with the server's scanner.
fn split_scanned(text: &str) -> Result<(Vec<&str>, &str)> {
    let toks = scan(text)?;
    let mut pieces = Vec::new();
    let (mut start, mut depth) = (0, 0i64);
    // psql's reading of `CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN ... END`: the first
    // letters of the statement's leading words (0 for other words), and how many BEGIN (or
    // CASE inside one) are open.
    let mut lead: Vec<u8> = Vec::new();
    let mut words = 0usize;
    let mut begin_depth = 0u32;
    for t in toks {
        let (s, e) = (t.start as usize, t.end as usize);
        let kw = KeywordKind::try_from(t.keyword_kind).unwrap_or(KeywordKind::NoKeyword);
        let token = Token::try_from(t.token).unwrap_or(Token::Nul);
        match token {
            Token::Ascii40 => depth += 1,
            Token::Ascii41 => depth -= 1,
            Token::Ascii59 if depth == 0 && begin_depth == 0 => {
                pieces.push(text.get(start..s).unwrap_or(""));
                start = e;
                lead.clear();
                words = 0;
            }
            _ => {
                let word = text.get(s..e).unwrap_or("");
                let unquoted_word = kw != KeywordKind::NoKeyword
                    || (token == Token::Ident && !word.starts_with('"'));
                if !unquoted_word {
                    continue;
                }
                if words < 4
                    && ["create", "function", "procedure", "or", "replace"]
                        .iter()
                        .any(|w| word.eq_ignore_ascii_case(w))
                {
                    lead.resize(words, 0);
                    lead.push(word.as_bytes()[0].to_ascii_lowercase());
                }
                words += 1;
                let routine = matches!(
                    lead.as_slice(),
                    [b'c', b'f' | b'p', ..] | [b'c', b'o', b'r', b'f' | b'p', ..]
                );
                if routine && depth == 0 {
                    if word.eq_ignore_ascii_case("begin")
                        || (word.eq_ignore_ascii_case("case") && begin_depth >= 1)
                    {
                        begin_depth += 1;
                    } else if word.eq_ignore_ascii_case("end") && begin_depth > 0 {
                        begin_depth -= 1;
                    }
                }
            }
        }
    }
    Ok((pieces, text.get(start..).unwrap_or("")))
}

/// Whether `text` holds no quote, dollar, backslash, comment start and no `begin` (any case):
/// one pass, as every block of the dump comes here.
fn is_plain(text: &[u8]) -> bool {
    for (i, c) in text.iter().enumerate() {
        match c {
            b'\'' | b'"' | b'$' | b'\\' | b'/' | b'-' => return false,
            b'b' | b'B'
                if text
                    .get(i + 1..i + 5)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"egin")) =>
            {
                return false
            }
            _ => {}
        }
    }
    true
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

/// Why a script of statements would not parse as the server's grammar: a statement without
/// its semicolon, or the first statement that does not parse; None when all of it parses.
pub fn script_error(sql: &str) -> Option<String> {
    match split_script(sql) {
        Ok(split) if split.unterminated => Some("a statement without its semicolon".into()),
        Ok(split) => split
            .stmts
            .iter()
            .find_map(|st| one_statement(st).err())
            .map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;

    /// The fast path (no quotes, comments or dollars) splits exactly as the server's scanner.
    #[test]
    fn fast_path_agrees_with_the_scanner() {
        for text in [
            "CREATE INDEX i ON public.t USING btree (a);\n\n\nALTER TABLE public.t OWNER TO r;\n",
            "ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n",
            "GRANT SELECT ON TABLE public.t TO r;\nGRANT ALL ON TABLE public.t TO w;",
            "CREATE TABLE public.t (\n    a integer,\n    b numeric(10,2)\n);\n",
            "CREATE TABLE public.t (a integer; DELETE FROM x; b integer);\n",
            "",
            ";;",
        ] {
            assert_eq!(split_plain(text), split_scanned(text).unwrap(), "{text:?}");
        }
        // Quotes, comments and dollars take the scanner.
        assert_eq!(
            split_statements("COMMENT ON TABLE t IS 'a;b';\nSELECT $$;$$;").unwrap(),
            vec!["COMMENT ON TABLE t IS 'a;b'", "SELECT $$;$$"]
        );
    }

    /// A SQL-standard function body is one statement, as psql reads it; other statements
    /// after it are not.
    #[test]
    fn begin_atomic_bodies_stay_whole() {
        let f = "CREATE FUNCTION public.f(a integer) RETURNS integer\n    LANGUAGE sql\n    BEGIN ATOMIC\n SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END;\n SELECT (a + 2);\nEND";
        let s = split_script(&format!(
            "{f};\n\nALTER FUNCTION public.f(a integer) OWNER TO x;\n"
        ))
        .unwrap();
        assert_eq!(
            s.stmts,
            [f, "ALTER FUNCTION public.f(a integer) OWNER TO x"]
        );
        assert!(!s.unterminated);
        let s = split_script("CREATE TABLE public.begin_at (a integer);\nDELETE FROM t;").unwrap();
        assert_eq!(s.stmts.len(), 2);
    }

    /// A routine named `begin` keeps psql's splitter from ending the statement: the next one
    /// rides along, and the check finds two where there must be one.
    #[test]
    fn a_statement_hidden_behind_begin_is_found() {
        let text = "CREATE FUNCTION public.begin() RETURNS integer LANGUAGE sql AS $$select 1$$; DELETE FROM canary;\n";
        let s = split_script(text).unwrap();
        assert_eq!(s.stmts.len(), 1);
        let e = check_statement(&s.stmts[0], 63).unwrap_err().to_string();
        assert!(e.contains("2 statements"), "{e}");
        // What the scanner could find is never skipped by the quick look before it.
        for sql in [
            "CREATE TABLE \"t\" (a integer)",
            "CREATE TABLE t (a integer) -- c",
            "CREATE TABLE t (a /* c */ integer)",
        ] {
            assert!(
                check_statement(sql, 63).unwrap().1.is_some() || sql.contains('"'),
                "{sql}"
            );
        }
        let long = format!("CREATE TABLE t ({} integer)", "a".repeat(64));
        assert!(check_statement(&long, 63).unwrap().1.is_some());
        assert!(check_statement("CREATE TABLE t (a integer)", 63)
            .unwrap()
            .1
            .is_none());
    }

    /// Text after the last semicolon is a statement of its own, and says the script was cut;
    /// what libpg_query's splitter would skip (no keyword) is kept.
    #[test]
    fn keeps_everything_and_sees_cuts() {
        let s = split_script("CREATE INDEX i ON t USING btree (a);\n-- done\n").unwrap();
        assert!(!s.unterminated);
        let s = split_script("ALTER TABLE ONLY t\n    ADD CONSTRAINT").unwrap();
        assert!(s.unterminated);
        assert_eq!(s.stmts, ["ALTER TABLE ONLY t\n    ADD CONSTRAINT"]);
        let s = split_script("asdf; \"x\";\n\\connect db\nSET a = 1;").unwrap();
        assert_eq!(s.stmts, ["asdf", "\"x\"", "\\connect db\nSET a = 1"]);
    }
}

/// A statement of a dump checked with the server's grammar: its kind, as libpg_query names
/// its node (`CreateStmt`, `AlterTableStmt`, `DeleteStmt`, ...), and what pg_dump never writes
/// inside a statement, found by the scanner: an identifier longer than `max_identifier` bytes
/// (PostgreSQL would truncate it), or a comment (pgalign cuts statements into pieces and joins
/// them on one line, where a `--` comment would swallow the rest). An error when it does not
/// parse, or holds more than one statement.
pub fn check_statement(sql: &str, max_identifier: usize) -> Result<(String, Option<String>)> {
    // The summary parses without building a tree on this side (a sixth of the cost of a parse
    // tree); the scanner finds the rest.
    let summary = pg_query::summary(sql, 0, -1).map_err(parser_error)?;
    let kind = summary
        .statement_types
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("it holds no statement"))?;
    let mut problem = None;
    let mut semicolon = false;
    // The scanner only where it can find something: a quoted name, a comment, a semicolon, or a
    // word longer than an identifier may be (most statements have none of them).
    let tokens = if may_need_scanner(sql.as_bytes(), max_identifier) {
        scan(sql)?
    } else {
        Vec::new()
    };
    for t in tokens {
        let (start, end) = (t.start as usize, t.end as usize);
        let text = sql.get(start..end).unwrap_or("");
        // Short and on one line, for an error message.
        let shown = || -> String { text.chars().filter(|c| !c.is_control()).take(80).collect() };
        match Token::try_from(t.token).unwrap_or(Token::Nul) {
            Token::Ident if ident_len(text) > max_identifier && problem.is_none() => {
                problem = Some(format!(
                    "an identifier of more than {max_identifier} bytes ({}), which PostgreSQL would truncate",
                    shown()
                ));
            }
            Token::SqlComment | Token::CComment if problem.is_none() => {
                problem = Some(format!("a comment inside it ({})", shown()));
            }
            Token::Ascii59 => semicolon = true,
            _ => {}
        }
    }
    // The statements were split at every semicolon but those in a SQL-standard function body
    // (psql's rule): only there can a second statement hide.
    if semicolon {
        one_statement(sql)?;
    }
    Ok((kind, problem))
}

/// Whether `check_statement` needs the scanner for `sql`: it holds a `"`, `--`, `/*` or `;`,
/// or a run of identifier bytes longer than `max_identifier` (what the scanner could read as a
/// quoted name, a comment, a statement's end or a long identifier; literals may give a false
/// yes, never a false no).
fn may_need_scanner(sql: &[u8], max_identifier: usize) -> bool {
    let mut run = 0;
    for (i, &c) in sql.iter().enumerate() {
        match c {
            b'"' | b';' => return true,
            b'-' | b'/' if matches!(sql.get(i + 1), Some(b'-' | b'*')) => return true,
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80 => {
                run += 1;
                if run > max_identifier {
                    return true;
                }
            }
            _ => run = 0,
        }
    }
    false
}

/// The kind of the one statement `sql` holds (see `check_statement`).
pub fn statement_kind(sql: &str) -> Result<String> {
    one_statement(sql)?;
    Ok(check_statement(sql, usize::MAX)?.0)
}

/// The length in bytes of the identifier a token spells (quotes off, `""` one quote).
fn ident_len(text: &str) -> usize {
    match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(inner) => inner.len() - inner.matches("\"\"").count(),
        None => text.len(),
    }
}

/// Whether `sql` is one statement the server's grammar accepts (no parse tree is built).
pub fn one_statement(sql: &str) -> Result<()> {
    let n = pg_query::split_with_parser(sql)
        .map_err(parser_error)?
        .len();
    if n != 1 {
        bail!("it holds {n} statements, not one");
    }
    Ok(())
}

fn parser_error(e: pg_query::Error) -> anyhow::Error {
    match e {
        pg_query::Error::Split(m) | pg_query::Error::Parse(m) => anyhow!("{m}"),
        pg_query::Error::Conversion(_) => anyhow!("it holds a NUL byte"),
        e => anyhow!("{e}"),
    }
}

/// Whether `text` is an object's name as `ALTER ... OWNER TO` writes it: identifiers, dots,
/// and for routines an argument list in parentheses; no literal, no semicolon.
pub fn is_plain_name(text: &str) -> bool {
    let Ok(toks) = tokens(text) else {
        return false;
    };
    let mut depth = 0i32;
    for t in &toks {
        match &t.kind {
            TokKind::Punct('(') => depth += 1,
            TokKind::Punct(')') => depth -= 1,
            TokKind::Punct(';') => return false,
            TokKind::Comment => return false,
            TokKind::Other => {
                let s = &text[t.start..t.end];
                // Literals and dollar quotes; operators and `[]` of argument types pass.
                if s.starts_with(['\'', '$']) || s.contains('\'') {
                    return false;
                }
            }
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0 && !toks.is_empty()
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

/// Whether a plain lower-case word is a keyword that pg_dump's fmtId quotes (any but an
/// unreserved one), by the grammar's own keyword list.
pub fn is_keyword_needing_quotes(word: &str) -> bool {
    match scan(word) {
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

impl ColumnDef {
    /// The definition with `clause` after the type and collation (`id integer DEFAULT ...
    /// NOT NULL`), as an ADD COLUMN takes a default or identity that pg_dump printed apart.
    pub fn with_clause(&self, clause: &str) -> String {
        let mut head = format!("{} {}", quote_ident(&self.name), self.type_sql);
        if let Some(x) = &self.collate {
            head.push_str(&format!(" COLLATE {x}"));
        }
        match self.text.strip_prefix(&head) {
            Some(rest) => format!("{head} {clause}{rest}"),
            None => format!("{} {clause}", self.text),
        }
    }
}

/// A column type's modifiers when `type_sql` is `base`, with or without them: `numeric(10,2)`
/// and `numeric` give [10, 2] and []. `None` for another type, or modifiers not all numbers.
pub fn type_modifiers(type_sql: &str, base: &str) -> Option<Vec<u32>> {
    let rest = type_sql.strip_prefix(base)?;
    if rest.is_empty() {
        return Some(vec![]);
    }
    let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
    inner.split(',').map(|x| x.trim().parse().ok()).collect()
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
    /// The tail's storage parameters (`WITH (fillfactor='70')`) as (name, value), in the order
    /// the dump lists them.
    pub storage: Vec<(String, String)>,
    /// The tail's inheritance parents (`INHERITS (a, b)`) as (schema, name), in order. A
    /// clause that cannot be read is left in `rest`.
    pub inherits: Vec<(String, String)>,
    /// The tail's `PARTITION BY ...` clause.
    pub partition_by: Option<String>,
    /// The rest of the tail (a foreign table's `SERVER` and `OPTIONS`), whitespace collapsed.
    pub rest: String,
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
    let (storage, without_storage) = split_with(&tail);
    let (inherits, clauses) = split_inherits(&without_storage);
    let (partition_by, rest) = split_partition_by(&clauses);

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
        storage,
        inherits,
        partition_by,
        rest,
        columns,
        constraints,
        unlogged: rel.relpersistence == "u",
        is_typed_or_partition: create.partbound.is_some() || create.of_typename.is_some(),
    })
}

impl TableDef {
    /// The tail without its storage parameters (what a message about its other clauses shows).
    pub fn tail_without_storage(&self) -> String {
        split_with(&self.tail).1
    }
    /// The head as it would read were the table logged (`CREATE TABLE s.t` for `CREATE
    /// UNLOGGED TABLE s.t`): equal on two tables that differ only in their persistence.
    pub fn head_when_logged(&self) -> String {
        self.head.replace(" UNLOGGED", "")
    }
}

/// Splits `WITH (a='1', b='2') rest` into the parameters and the rest.
fn split_with(tail: &str) -> (Vec<(String, String)>, String) {
    let mut params = Vec::new();
    let Some(start) = tail.find("WITH (") else {
        return (params, tail.to_string());
    };
    let inner_start = start + "WITH (".len();
    let Some(close) = tail[inner_start..].find(')') else {
        return (params, tail.to_string());
    };
    for p in tail[inner_start..inner_start + close].split(", ") {
        if let Some((k, v)) = p.split_once('=') {
            params.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let rest = format!("{}{}", &tail[..start], &tail[inner_start + close + 1..]);
    (params, collapse_ws(&rest))
}

/// `INHERITS (a, b)` in a table's tail: the parents as (schema, name), in order, and the tail
/// without the clause. A clause that cannot be read is left in the tail.
fn split_inherits(rest: &str) -> (Vec<(String, String)>, String) {
    let whole = || (Vec::new(), rest.to_string());
    let Some(i) = rest.find("INHERITS (") else {
        return whole();
    };
    let sub = &rest[i..];
    let Ok(toks) = tokens(sub) else {
        return whole();
    };
    let Some(close) = matching_paren(&toks, 1) else {
        return whole();
    };
    let mut parents = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    for t in toks[2..=close].iter() {
        if t.is_punct(',') || t.is_punct(')') {
            match parts.as_slice() {
                [sch, name] => parents.push((sch.clone(), name.clone())),
                _ => return whole(),
            }
            parts.clear();
        } else if !t.is_punct('.') {
            match ident_of(sub, t) {
                Some(x) => parts.push(x),
                None => return whole(),
            }
        }
    }
    let without = format!("{} {}", &rest[..i], &sub[toks[close].end..]);
    (parents, collapse_ws(&without))
}

/// `PARTITION BY ...` in a table's tail (it runs to the end: pg_dump prints it last but for
/// storage parameters, which a partitioned table cannot have), and the tail without it.
fn split_partition_by(rest: &str) -> (Option<String>, String) {
    match rest.find("PARTITION BY ") {
        Some(i) => (
            Some(rest[i..].trim().to_string()),
            rest[..i].trim().to_string(),
        ),
        None => (None, rest.trim().to_string()),
    }
}

/// Whether a CREATE TABLE may name inheritance parents, told without parsing it: a cheap test
/// before `parse_create_table` when every table of a large schema is asked.
pub fn may_inherit(create_table: &str) -> bool {
    create_table.contains("INHERITS (")
}

/// What a statement pg_dump prints after a CREATE TABLE, in the table's entry, sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableSettingKind {
    /// `ALTER TABLE ONLY s.t ALTER COLUMN c SET STATISTICS 100`
    Statistics,
    /// `ALTER TABLE ONLY s.t REPLICA IDENTITY FULL`
    ReplicaIdentity,
    /// `ALTER TABLE ONLY s.t FORCE ROW LEVEL SECURITY`
    ForceRowLevelSecurity,
    /// `ALTER TABLE s.t ENABLE ROW LEVEL SECURITY`
    RowLevelSecurity,
    /// `ALTER TABLE s.t CLUSTER ON i`
    ClusterOn,
}

/// Such a statement, read: `on` is its text before the setting (`ALTER TABLE ONLY s.t ALTER
/// COLUMN c`), which the statement undoing it shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSetting<'a> {
    pub on: &'a str,
    pub kind: TableSettingKind,
}

/// Reads a statement of a table's entry after its CREATE TABLE; `None` for one that sets none
/// of `TableSettingKind`'s (`NO FORCE ROW LEVEL SECURITY`, a default pg_dump never prints).
pub fn table_setting(stmt: &str) -> Option<TableSetting<'_>> {
    let at = |i: usize, kind| {
        Some(TableSetting {
            on: &stmt[..i],
            kind,
        })
    };
    if let Some(i) = stmt.find(" SET STATISTICS ") {
        return at(i, TableSettingKind::Statistics);
    }
    if let Some(i) = stmt.find(" REPLICA IDENTITY ") {
        return at(i, TableSettingKind::ReplicaIdentity);
    }
    if let Some(i) = stmt.find(" FORCE ROW LEVEL SECURITY") {
        if !stmt[..i].ends_with(" NO") {
            return at(i, TableSettingKind::ForceRowLevelSecurity);
        }
    }
    if let Some(i) = stmt.find(" ENABLE ROW LEVEL SECURITY") {
        return at(i, TableSettingKind::RowLevelSecurity);
    }
    if let Some(i) = stmt.find(" CLUSTER ON ") {
        return at(i, TableSettingKind::ClusterOn);
    }
    None
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

/// Whether an expression mentions a call of `name`, in any case (`name(`), told from its text:
/// the guess for an expression that does not scan, whose calls `called_functions` cannot list.
pub fn mentions_call(expr: &str, name: &str) -> bool {
    expr.to_ascii_lowercase().contains(&format!("{name}("))
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
        let t =
            parse_create_table("CREATE TABLE public.p (\n    k integer\n)\nPARTITION BY LIST (k)")
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
        let s =
            table_setting("ALTER TABLE ONLY public.t ALTER COLUMN x SET STATISTICS 100").unwrap();
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
}
