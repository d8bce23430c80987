//! Tokens, statements and identifiers, through libpg_query (the `pg_query` crate). With
//! table.rs (CREATE TABLE) and validate.rs, the catalog is the only place that talks to the SQL
//! parser; everything else sees our own types: tokens, identifiers and table definitions.

pub use super::table::*;
use anyhow::{anyhow, bail, Result};
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
    // Most blocks of a dump (indexes, constraints, owners, grants, tables with literal defaults,
    // comments) quote with '...' and "..." alone, or not at all: a byte loop reads them as the
    // scanner does, and only the rest (dollar quotes, comments, function bodies) is scanned.
    let (pieces, rest) = match split_quoted(text) {
        Some(split) => split,
        None => split_scanned(text)?,
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

/// Statements closed by a semicolon outside quotes and parentheses, and the text after the last
/// one, for text whose only quoting is '...' and "..." (a doubled quote inside being part of
/// it). None when the text holds anything else the scanner must read: a dollar quote, a
/// backslash (escape strings), a comment, `begin` (a function body), an unclosed quote or an
/// empty quoted name (which the scanner refuses).
fn split_quoted(text: &str) -> Option<(Vec<&str>, &str)> {
    let b = text.as_bytes();
    let mut pieces = Vec::new();
    let (mut start, mut depth, mut i) = (0usize, 0i64, 0usize);
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                let open = i;
                i += 1;
                loop {
                    let at = i + b.get(i..)?.iter().position(|&c| c == q || c == b'\\')?;
                    if b[at] == b'\\' {
                        return None;
                    }
                    if b.get(at + 1) == Some(&q) {
                        i = at + 2;
                        continue;
                    }
                    if q == b'"' && at == open + 1 {
                        return None;
                    }
                    i = at + 1;
                    break;
                }
                continue;
            }
            b'$' | b'\\' => return None,
            b'-' if b.get(i + 1) == Some(&b'-') => return None,
            b'/' if b.get(i + 1) == Some(&b'*') => return None,
            b'b' | b'B'
                if b.get(i + 1..i + 5)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"egin")) =>
            {
                return None
            }
            b'(' => depth += 1,
            b')' => depth -= 1,
            b';' if depth == 0 => {
                pieces.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    Some((pieces, &text[start..]))
}

/// `split_quoted` for any text, with the server's scanner.
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

    /// The fast path splits exactly as the server's scanner (see also
    /// `quoted_split_agrees_with_the_scanner`).
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
            assert_eq!(
                split_quoted(text).unwrap(),
                split_scanned(text).unwrap(),
                "{text:?}"
            );
        }
        // Comments and dollars take the scanner.
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
    let mut s = String::with_capacity(name.len() + 2);
    quoted_pieces(name, &mut |p| s.push_str(p));
    s
}

/// `quote_ident(name)`, given piece by piece without building it.
fn quoted_pieces(name: &str, out: &mut impl FnMut(&str)) {
    if !needs_quotes(name) {
        return out(name);
    }
    out("\"");
    for (i, part) in name.split('"').enumerate() {
        if i > 0 {
            out("\"\"");
        }
        out(part);
    }
    out("\"");
}

/// Whether `quote_ident` quotes `name`.
fn needs_quotes(name: &str) -> bool {
    let plain = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    !plain || is_keyword_needing_quotes(name)
}

/// Whether a plain lower-case word is a keyword that pg_dump's fmtId quotes (any but an
/// unreserved one), by the grammar's own keyword list.
pub fn is_keyword_needing_quotes(word: &str) -> bool {
    // The grammar's answer, remembered per thread: reading a plain dump asks it for every
    // object's name (a scan through libpg_query each, a sixth of reading 10,000 tables), and
    // a schema asks about the same few thousand words again and again. Emptied when full, so
    // that it stays small.
    const MEMO_LIMIT: usize = 1 << 16;
    // No keyword of the grammar is longer (libpg_query's kwlist.h: `current_timestamp`): the
    // long names of a large schema are answered without a scan or a place in the memo.
    const LONGEST_KEYWORD: usize = "current_timestamp".len();
    if word.len() > LONGEST_KEYWORD {
        return false;
    }
    thread_local! {
        static MEMO: std::cell::RefCell<std::collections::HashMap<Box<str>, bool>> =
            std::cell::RefCell::new(std::collections::HashMap::new());
    }
    if let Some(known) = MEMO.with(|m| m.borrow().get(word).copied()) {
        return known;
    }
    let answer = keyword_needing_quotes_scanned(word);
    MEMO.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MEMO_LIMIT {
            m.clear();
        }
        m.insert(word.into(), answer);
    });
    answer
}

fn keyword_needing_quotes_scanned(word: &str) -> bool {
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
    let mut s = String::with_capacity(schema.len() + name.len() + 5);
    qualified_pieces(schema, name, |p| s.push_str(p));
    s
}

/// `qualified(schema, name)`, given piece by piece without building it (a plain dump's
/// dependencies hash names this way, without a String per object).
pub(crate) fn qualified_pieces(schema: &str, name: &str, mut out: impl FnMut(&str)) {
    if !schema.is_empty() {
        quoted_pieces(schema, &mut out);
        out(".");
    }
    quoted_pieces(name, &mut out);
}

/// The longest start of `s` that fits `bytes` bytes, cut on a character boundary.
fn cut_to_bytes(s: &str, bytes: usize) -> &str {
    let end = s
        .char_indices()
        .map(|(i, ch)| i + ch.len_utf8())
        .take_while(|&end| end <= bytes)
        .last()
        .unwrap_or(0);
    &s[..end]
}

/// PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1); cut here, on a character
/// boundary, the name used is the one it keeps.
pub fn truncate_identifier(s: &str) -> String {
    cut_to_bytes(s, 63).to_string()
}

/// A name for an object that makes way for another of its name: `name` with `suffix`, `name`
/// cut short enough that the suffix survives PostgreSQL's truncation (unquoted).
pub fn name_making_way(name: &str, suffix: &str) -> String {
    let base = cut_to_bytes(name, 63usize.saturating_sub(suffix.len()));
    truncate_identifier(&format!("{base}{suffix}"))
}

/// Quotes a string literal.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
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

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
