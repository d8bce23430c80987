//! The catalog's readers of single statements: what the planner needs to know of a dump's
//! SQL (a name, an identity, an enum's labels, a domain's parts, what a statement attaches) is
//! read here, and the planner works on what they return; it never tokenizes. A reader that
//! cannot read its statement returns None, and the planner reports the change as unsupported
//! (never best-guess SQL).

use super::parse::{ident_of, matching_paren, tokens, Tok, TokKind};
use super::{Block, ObjectKind};

/// The object's identity as SQL (`app.f(a integer)`, `public."Orders"`): from pg_dump's own
/// `ALTER ... OWNER TO` statement when the dump has one, else read from the CREATE statement.
pub fn identity_of(b: &Block) -> Option<String> {
    if let Some(id) = b.identity() {
        return Some(id.to_string());
    }
    let first = b.stmts.first()?;
    let toks = tokens(first).ok()?;
    // CREATE [OR REPLACE] [modifiers] KIND name [(args)]
    let kind_words: Vec<&str> = b.key.kind.as_str().split(' ').collect();
    let last_kind = *kind_words.last()?;
    let i = toks.iter().position(|t| t.is_word(first, last_kind))?;
    let mut j = i + 1;
    // Skip IF NOT EXISTS.
    if toks.get(j).is_some_and(|t| t.is_word(first, "IF")) {
        j += 3;
    }
    let (end, _) = qualified_name_end(first, &toks, j)?;
    let name = &first[toks[j].start..toks[end - 1].end];
    if b.key.kind.is_routine() && toks.get(end).is_some_and(|t| t.is_punct('(')) {
        let close = matching_paren(&toks, end)?;
        return Some(format!(
            "{name}({})",
            arguments(first, &toks[end + 1..close])
        ));
    }
    Some(name.to_string())
}

/// A routine's arguments as DROP and ALTER take them: each without its `DEFAULT` / `= value`
/// (which a dump made without owners leaves only the CREATE statement to read them from).
fn arguments(sql: &str, toks: &[Tok]) -> String {
    let mut args: Vec<&str> = Vec::new();
    let (mut start, mut end, mut depth, mut in_default) = (None::<usize>, 0, 0, false);
    for (k, t) in toks.iter().enumerate() {
        let text = &sql[t.start..t.end];
        if t.is_punct('(') || text == "[" {
            depth += 1;
        } else if t.is_punct(')') || text == "]" {
            depth -= 1;
        }
        if depth == 0 && t.is_punct(',') {
            if let Some(s) = start.take() {
                args.push(&sql[s..end]);
            }
            in_default = false;
            continue;
        }
        let default =
            depth == 0 && (t.is_word(sql, "DEFAULT") || (t.kind == TokKind::Other && text == "="));
        in_default |= default;
        if !in_default {
            start.get_or_insert(t.start);
            end = toks[k].end;
        }
    }
    if let Some(s) = start {
        args.push(&sql[s..end]);
    }
    args.join(", ")
}

/// `ALTER TABLE ONLY p ATTACH PARTITION c FOR VALUES ...` (or `ALTER INDEX p ATTACH PARTITION c`)
/// -> ((schema, parent), (schema, child)),
/// unquoted.
pub fn attach_parts(sql: &str) -> Option<((String, String), (String, String))> {
    let toks = tokens(sql).ok()?;
    let read = |from: usize| read_qualified(sql, &toks, from);
    let mut j =
        find_words(sql, &toks, &["TABLE"]).or_else(|| find_words(sql, &toks, &["INDEX"]))? + 1;
    if toks.get(j).is_some_and(|t| t.is_word(sql, "ONLY")) {
        j += 1;
    }
    let parent = read(j)?;
    let p = find_words(sql, &toks, &["ATTACH", "PARTITION"])?;
    Some((parent, read(p + 2)?))
}

/// `ALTER SEQUENCE s OWNED BY sch.tab.col` -> (sch, tab, col), unquoted.
pub fn owned_by_target(sql: &str) -> Option<(String, String, String)> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, &["OWNED", "BY"])?;
    let mut parts = Vec::new();
    let mut k = i + 2;
    while let Some(t) = toks.get(k) {
        parts.push(ident_of(sql, t)?);
        if toks.get(k + 1).is_some_and(|t| t.is_punct('.')) {
            k += 2;
        } else {
            break;
        }
    }
    match parts.as_slice() {
        [s, t, c] => Some((s.clone(), t.clone(), c.clone())),
        [t, c] => Some((String::new(), t.clone(), c.clone())),
        _ => None,
    }
}

/// `ALTER TABLE [ONLY] sch.tab ALTER COLUMN col ADD GENERATED ... AS IDENTITY (...)` (an
/// identity sequence's entry) -> ((sch, tab), col, the clause from GENERATED to the end).
pub fn identity_parts(sql: &str) -> Option<((String, String), String, String)> {
    let toks = tokens(sql).ok()?;
    if !(toks.first()?.is_word(sql, "ALTER") && toks.get(1)?.is_word(sql, "TABLE")) {
        return None;
    }
    let mut j = 2;
    if toks.get(j).is_some_and(|t| t.is_word(sql, "ONLY")) {
        j += 1;
    }
    let table = read_qualified(sql, &toks, j)?;
    let a = find_words(sql, &toks, &["ALTER", "COLUMN"])?;
    let column = ident_of(sql, toks.get(a + 2)?)?;
    let g = find_words(sql, &toks, &["ADD", "GENERATED"])?;
    (g == a + 3).then(|| (table, column, sql[toks[g + 1].start..].to_string()))
}

/// `ALTER TABLE ONLY t ALTER COLUMN c SET DEFAULT expr` -> `expr`.
pub fn set_default_expr(sql: &str) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, &["SET", "DEFAULT"])?;
    Some(sql[toks.get(i + 2)?.start..].trim().to_string())
}

/// A DEFAULT entry that only says "no default of its own" (`ALTER TABLE ONLY t ALTER COLUMN c
/// SET DEFAULT NULL`, see `table::is_no_default_marker`): the statement that gives the column
/// none, `... DROP DEFAULT;`. None for any other entry.
pub fn no_default_marker_as_drop(sql: &str) -> Option<String> {
    let expr = set_default_expr(sql)?;
    if !super::table::is_no_default_marker(&expr) {
        return None;
    }
    replace_from(sql, &["SET", "DEFAULT"], "DROP DEFAULT")
}

/// The sequence a default takes its values from, when it is exactly
/// `nextval('sch.seq'::regclass)` (a serial column's): (sch, seq), unquoted.
pub fn nextval_sequence(expr: &str) -> Option<(String, String)> {
    let toks = tokens(expr).ok()?;
    let [f, open, lit, cast, ty, close] = toks.as_slice() else {
        return None;
    };
    let literal = expr[lit.start..lit.end]
        .strip_prefix('\'')?
        .strip_suffix('\'')?
        .replace("''", "'");
    if !(f.is_word(expr, "nextval")
        && open.is_punct('(')
        && lit.kind == TokKind::Other
        && &expr[cast.start..cast.end] == "::"
        && ty.is_word(expr, "regclass")
        && close.is_punct(')'))
    {
        return None;
    }
    let inner = tokens(&literal).ok()?;
    match read_qualified(&literal, &inner, 0)? {
        (s, n) if !s.is_empty() && inner.len() == 3 => Some((s, n)),
        _ => None,
    }
}

/// `[schema.]name` at token `from`, unquoted.
fn read_qualified(sql: &str, toks: &[Tok], from: usize) -> Option<(String, String)> {
    let mut parts = Vec::new();
    let mut k = from;
    loop {
        parts.push(ident_of(sql, toks.get(k)?)?);
        if toks.get(k + 1).is_some_and(|t| t.is_punct('.')) {
            k += 2;
        } else {
            break;
        }
    }
    match parts.as_slice() {
        [s, n] => Some((s.clone(), n.clone())),
        [n] => Some((String::new(), n.clone())),
        _ => None,
    }
}

/// Reads `ident[.ident[.ident]]` starting at token `j`; returns the index after it.
fn qualified_name_end(sql: &str, toks: &[Tok], j: usize) -> Option<(usize, String)> {
    let mut k = j;
    let mut name = ident_of(sql, toks.get(k)?)?;
    k += 1;
    while toks.get(k).is_some_and(|t| t.is_punct('.')) {
        name = ident_of(sql, toks.get(k + 1)?)?;
        k += 2;
    }
    Some((k, name))
}

/// Index of the first top-level token sequence spelling `words`.
fn find_words(sql: &str, toks: &[Tok], words: &[&str]) -> Option<usize> {
    let mut depth = 0;
    for i in 0..toks.len() {
        if toks[i].is_punct('(') {
            depth += 1;
        } else if toks[i].is_punct(')') {
            depth -= 1;
        }
        if depth == 0
            && words
                .iter()
                .enumerate()
                .all(|(k, w)| toks.get(i + k).is_some_and(|t| t.is_word(sql, w)))
        {
            return Some(i);
        }
    }
    None
}

/// Keeps the statement up to `words` and puts `replacement` there instead of the rest.
pub fn replace_from(sql: &str, words: &[&str], replacement: &str) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, words)?;
    Some(format!("{}{replacement};\n", &sql[..toks[i].start]))
}

pub fn replace_word(sql: &str, word: &str, replacement: &str) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, &[word])?;
    Some(format!(
        "{}{replacement}{};\n",
        &sql[..toks[i].start],
        &sql[toks[i].end..]
    ))
}

/// The (quoted, as written) name that follows `words`, skipping CONCURRENTLY / IF NOT EXISTS.
pub fn name_after(sql: &str, words: &[&str]) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, words)?;
    let mut j = i + words.len();
    while toks.get(j).is_some_and(|t| t.is_word(sql, "CONCURRENTLY")) {
        j += 1;
    }
    if toks.get(j).is_some_and(|t| t.is_word(sql, "IF")) {
        j += 3;
    }
    let t = toks.get(j)?;
    ident_of(sql, t)?;
    Some(sql[t.start..t.end].to_string())
}

/// The qualified relation name (as written) after the first top-level `word`.
pub fn relation_after(sql: &str, word: &str) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, &[word])?;
    let mut j = i + 1;
    if toks.get(j).is_some_and(|t| t.is_word(sql, "ONLY")) {
        j += 1;
    }
    let (end, _) = qualified_name_end(sql, &toks, j)?;
    Some(sql[toks[j].start..toks[end - 1].end].to_string())
}

pub fn paren_after(sql: &str, word: &str) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, &[word])?;
    let open = i + 1;
    if !toks.get(open)?.is_punct('(') {
        return None;
    }
    let close = matching_paren(&toks, open)?;
    Some(sql[toks[open].start..toks[close].end].to_string())
}

/// `ALTER TABLE ONLY t ADD CONSTRAINT c ...` -> `ALTER TABLE ONLY t DROP CONSTRAINT c;`
pub fn drop_constraint(sql: &str) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, &["ADD", "CONSTRAINT"])?;
    let name = toks.get(i + 2)?;
    ident_of(sql, name)?;
    let head = sql[..toks[i].start].trim_end();
    Some(format!(
        "{head} DROP CONSTRAINT {};\n",
        &sql[name.start..name.end]
    ))
}

/// The comment initdb gives the public schema. pg_dump (15 and later) leaves it out of a dump,
/// and prints the schema without a comment as `COMMENT ON SCHEMA public IS ''`, an entry of its
/// own: so no entry means this comment, not none.
const PUBLIC_SCHEMA_INITDB_COMMENT: &str = "standard public schema";

/// The statement that undoes a COMMENT or SECURITY LABEL entry: `... IS NULL`, but for the public
/// schema's comment, initdb's comment again (what the entry's absence means, see above).
pub fn comment_removal(b: &Block) -> Option<String> {
    if b.key.kind == ObjectKind::Comment && b.key.schema.is_empty() && b.key.name == "SCHEMA public"
    {
        return Some(format!(
            "COMMENT ON SCHEMA public IS {};\n",
            super::quote_literal(PUBLIC_SCHEMA_INITDB_COMMENT)
        ));
    }
    comment_to_null(b.stmts.first()?)
}

/// `COMMENT ON X IS '...'` -> `COMMENT ON X IS NULL;`
fn comment_to_null(sql: &str) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = toks
        .iter()
        .position(|t| matches!(&t.kind, TokKind::Keyword(k) if k == "IS"))?;
    Some(format!("{}IS NULL;\n", &sql[..toks[i].start]))
}

/// Enum labels in order, from `CREATE TYPE x AS ENUM ('a', 'b')`.
pub fn enum_labels(sql: &str) -> Option<Vec<String>> {
    let toks = tokens(sql).ok()?;
    find_words(sql, &toks, &["AS", "ENUM"])?;
    let open = toks.iter().position(|t| t.is_punct('('))?;
    let close = matching_paren(&toks, open)?;
    Some(
        toks[open + 1..close]
            .iter()
            .filter(|t| t.kind == TokKind::Other)
            .map(|t| sql[t.start..t.end].to_string())
            .collect(),
    )
}

/// `CREATE TYPE x AS (a text, b integer)` -> [(a, "a text", "text"), ...]: name, the attribute
/// as written, its type as written.
pub fn composite_attributes(sql: &str) -> Option<Vec<(String, String, String)>> {
    let toks = tokens(sql).ok()?;
    let as_i = find_words(sql, &toks, &["AS"])?;
    if !toks.get(as_i + 1)?.is_punct('(') {
        return None;
    }
    let open = as_i + 1;
    let close = matching_paren(&toks, open)?;
    let mut out = Vec::new();
    let mut start = open + 1;
    let mut depth = 0;
    for k in open + 1..=close {
        let t = &toks[k];
        if t.is_punct('(') {
            depth += 1;
        } else if t.is_punct(')') && k != close {
            depth -= 1;
        } else if (k == close || (t.is_punct(',') && depth == 0)) && k > start {
            let name = ident_of(sql, &toks[start])?;
            let full = sql[toks[start].start..toks[k - 1].end].to_string();
            let ty = sql[toks[start].end..toks[k - 1].end].trim().to_string();
            out.push((name, full, ty));
            start = k + 1;
        }
    }
    Some(out)
}

/// A domain as pg_dump writes it: `CREATE DOMAIN d AS type [COLLATE c] [DEFAULT x] [NOT NULL]`
/// then one `CONSTRAINT name CHECK (...)` per line.
pub struct Domain {
    pub base: String,
    pub default: Option<String>,
    pub not_null: bool,
    pub checks: Vec<(String, String)>,
}

pub fn parse_domain(sql: &str) -> Option<Domain> {
    let toks = tokens(sql).ok()?;
    let as_i = find_words(sql, &toks, &["AS"])?;
    // Top-level clause starts after AS type.
    let mut marks: Vec<(usize, &str)> = Vec::new();
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().skip(as_i + 1) {
        if t.is_punct('(') {
            depth += 1;
        } else if t.is_punct(')') {
            depth -= 1;
        } else if depth == 0 {
            if t.is_word(sql, "DEFAULT") {
                marks.push((i, "default"));
            } else if t.is_word(sql, "NOT")
                && toks.get(i + 1).is_some_and(|n| n.is_word(sql, "NULL"))
            {
                marks.push((i, "notnull"));
            } else if t.is_word(sql, "CONSTRAINT") {
                marks.push((i, "constraint"));
            } else if t.is_word(sql, "COLLATE")
                || t.is_word(sql, "CHECK") && !marks.iter().any(|m| m.1 == "constraint")
            {
                marks.push((i, "other"));
            }
        }
    }
    let first_mark = marks.first().map(|m| m.0).unwrap_or(toks.len());
    // The base type: at least one token between AS and the first clause.
    if first_mark <= as_i + 1 {
        return None;
    }
    let base = sql[toks[as_i + 1].start..toks[first_mark - 1].end].to_string();
    let mut d = Domain {
        base,
        default: None,
        not_null: false,
        checks: Vec::new(),
    };
    for (k, (i, what)) in marks.iter().enumerate() {
        let end = marks
            .get(k + 1)
            .map(|m| toks[m.0].start)
            .unwrap_or(sql.len());
        let text = sql[toks[*i].start..end].trim().to_string();
        match *what {
            "default" => d.default = Some(text["DEFAULT".len()..].trim().to_string()),
            "notnull" => d.not_null = true,
            "constraint" => {
                let t = toks.get(i + 1)?;
                let name = sql[t.start..t.end].to_string();
                d.checks.push((name, text));
            }
            _ => d.base.push_str(&format!(" {text}")),
        }
    }
    Some(d)
}

/// The table an index or constraint statement builds on (`CREATE INDEX ... ON t`, `ALTER TABLE
/// t ADD CONSTRAINT ...`): the table the statement names, not any table it refers to (a
/// foreign key's referenced table does not get scanned). (schema, table), unquoted.
pub fn built_on(kind: &ObjectKind, sql: &str) -> Option<(String, String)> {
    let toks = tokens(sql).ok()?;
    let word = if *kind == ObjectKind::Index {
        "ON"
    } else {
        "TABLE"
    };
    let i = find_words(sql, &toks, &[word])?;
    let mut j = i + 1;
    if toks.get(j).is_some_and(|t| t.is_word(sql, "ONLY")) {
        j += 1;
    }
    read_qualified(sql, &toks, j)
}

/// An identity column's sequence entry: `ALTER TABLE t ALTER COLUMN c ADD GENERATED
/// {ALWAYS|BY DEFAULT} AS IDENTITY ( options )`.
pub struct IdentityDef {
    /// The statement up to ADD GENERATED (`ALTER TABLE t ALTER COLUMN c`).
    pub head: String,
    /// `ALWAYS` or `BY DEFAULT`.
    pub generated: String,
    /// The sequence options, one a line as pg_dump writes them (`SEQUENCE NAME s`, `START WITH 1`).
    pub options: Vec<String>,
}

/// Reads an identity sequence's entry by tokens, not by pg_dump's spacing: `AS\n IDENTITY` is
/// the same statement.
pub fn identity_definition(txt: &str) -> Option<IdentityDef> {
    let toks = tokens(txt).ok()?;
    let gen = find_words(txt, &toks, &["ADD", "GENERATED"])?;
    let head = txt[..toks[gen].start].trim_end().to_string();
    let as_i = gen + 2 + find_words(txt, &toks[gen + 2..], &["AS", "IDENTITY"])?;
    let generated = toks[gen + 2..as_i]
        .iter()
        .map(|t| &txt[t.start..t.end])
        .collect::<Vec<_>>()
        .join(" ");
    let open = as_i + 2;
    if generated.is_empty() || !toks.get(open)?.is_punct('(') {
        return None;
    }
    let close = matching_paren(&toks, open)?;
    let options = txt[toks[open].end..toks[close].start]
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    Some(IdentityDef {
        head,
        generated,
        options,
    })
}

/// A `CREATE [UNIQUE] INDEX [CONCURRENTLY] name ON ...` statement, split where the planner
/// rewrites it.
pub struct CreateIndex {
    /// Up to and including the INDEX keyword.
    pub head: String,
    /// Everything after the INDEX keyword.
    pub rest: String,
    /// Which token INDEX is (0-based: 1 in `CREATE INDEX`, 2 in `CREATE UNIQUE INDEX`).
    pub keyword_at: usize,
    /// The index's name as written, when there is one.
    pub name: Option<String>,
    /// Whether the statement says ONLY (`ON ONLY`: a partitioned table's parent index).
    pub has_only: bool,
}

pub fn create_index(sql: &str) -> Option<CreateIndex> {
    let toks = tokens(sql).ok()?;
    let idx = toks.iter().position(|t| t.is_word(sql, "INDEX"))?;
    let mut j = idx + 1;
    if toks.get(j).is_some_and(|t| t.is_word(sql, "CONCURRENTLY")) {
        j += 1;
    }
    if toks.get(j).is_some_and(|t| t.is_word(sql, "IF")) {
        j += 3;
    }
    let name = toks
        .get(j)
        .filter(|t| ident_of(sql, t).is_some())
        .map(|t| sql[t.start..t.end].to_string());
    Some(CreateIndex {
        head: sql[..toks[idx].end].to_string(),
        rest: sql[toks[idx].end..].to_string(),
        keyword_at: idx,
        name,
        has_only: toks.iter().any(|t| t.is_word(sql, "ONLY")),
    })
}

/// `ALTER TABLE [ONLY] rel ADD CONSTRAINT name <rest>`, as written.
pub struct AddConstraint {
    pub rel: String,
    pub name: String,
    pub rest: String,
    /// Whether it ends `NOT VALID` (added without checking the rows already there).
    pub not_valid: bool,
}

pub fn add_constraint(sql: &str) -> Option<AddConstraint> {
    let toks = tokens(sql).ok()?;
    let w = |t: &Tok, s: &str| t.is_word(sql, s);
    if !(toks.first().is_some_and(|t| w(t, "ALTER")) && toks.get(1).is_some_and(|t| w(t, "TABLE")))
    {
        return None;
    }
    let mut j = 2;
    if toks.get(j).is_some_and(|t| w(t, "ONLY")) {
        j += 1;
    }
    let add = toks
        .iter()
        .enumerate()
        .skip(j)
        .find(|(i, t)| w(t, "ADD") && toks.get(i + 1).is_some_and(|n| w(n, "CONSTRAINT")))?
        .0;
    // `ALTER TABLE ADD CONSTRAINT ...` names no table.
    if add == j {
        return None;
    }
    let rel = sql[toks[j].start..toks[add - 1].end].to_string();
    let name_tok = toks.get(add + 2)?;
    ident_of(sql, name_tok)?;
    let words: Vec<&Tok> = toks.iter().filter(|t| !t.is_punct(';')).collect();
    let not_valid =
        words.len() >= 2 && w(words[words.len() - 2], "NOT") && w(words[words.len() - 1], "VALID");
    Some(AddConstraint {
        rel,
        name: sql[name_tok.start..name_tok.end].to_string(),
        rest: sql[name_tok.end..].trim().to_string(),
        not_valid,
    })
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn not_valid_is_read_from_the_last_words() {
        let c = |s: &str| add_constraint(s).map(|c| c.not_valid);
        assert_eq!(
            c("ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0) NOT VALID;"),
            Some(true)
        );
        assert_eq!(
            c("ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0) NOT\n VALID"),
            Some(true)
        );
        assert_eq!(
            c("ALTER TABLE t ADD CONSTRAINT c CHECK (x > 0)"),
            Some(false)
        );
        assert_eq!(
            c("ALTER TABLE t ADD CONSTRAINT c CHECK ((note <> 'NOT VALID'))"),
            Some(false)
        );
    }

    #[test]
    fn an_add_constraint_without_a_table_is_not_read() {
        assert!(add_constraint("ALTER TABLE ADD CONSTRAINT c CHECK (x > 0)").is_none());
        assert!(add_constraint("ALTER TABLE ONLY ADD CONSTRAINT c CHECK (x > 0)").is_none());
        let a = add_constraint("ALTER TABLE ONLY public.t ADD CONSTRAINT c CHECK (x > 0)").unwrap();
        assert_eq!(
            (a.rel.as_str(), a.name.as_str(), a.rest.as_str()),
            ("public.t", "c", "CHECK (x > 0)")
        );
    }

    #[test]
    fn drop_forms() {
        assert_eq!(
            drop_constraint(
                "ALTER TABLE ONLY app.\"Items\"\n    ADD CONSTRAINT \"a b\" PRIMARY KEY (id)"
            )
            .unwrap(),
            "ALTER TABLE ONLY app.\"Items\" DROP CONSTRAINT \"a b\";\n"
        );
        assert_eq!(
            comment_to_null("COMMENT ON COLUMN app.t.\"is\" IS 'x is y'").unwrap(),
            "COMMENT ON COLUMN app.t.\"is\" IS NULL;\n"
        );
        let dump = "--\n-- PostgreSQL database dump\n--\n\n--\n-- Name: SCHEMA public; Type: COMMENT; Schema: -; Owner: pg_database_owner\n--\n\nCOMMENT ON SCHEMA public IS '';\n\n\n--\n-- Name: SCHEMA app; Type: COMMENT; Schema: -; Owner: postgres\n--\n\nCOMMENT ON SCHEMA app IS 'x';\n\n";
        let cat = crate::catalog::from_dump_text(dump, &Default::default()).unwrap();
        let removals: Vec<_> = cat.blocks.iter().filter_map(comment_removal).collect();
        assert_eq!(
            removals,
            [
                "COMMENT ON SCHEMA public IS 'standard public schema';\n",
                "COMMENT ON SCHEMA app IS NULL;\n"
            ]
        );
        assert_eq!(
            replace_from(
                "ALTER TABLE ONLY app.t ALTER COLUMN id SET DEFAULT nextval('s'::regclass)",
                &["SET", "DEFAULT"],
                "DROP DEFAULT"
            )
            .unwrap(),
            "ALTER TABLE ONLY app.t ALTER COLUMN id DROP DEFAULT;\n"
        );
        assert_eq!(
            name_after(
                "CREATE UNIQUE INDEX \"Odd\"\"idx\" ON app.t USING btree (a)",
                &["INDEX"]
            )
            .unwrap(),
            "\"Odd\"\"idx\""
        );
        assert_eq!(
            relation_after(
                "CREATE TRIGGER trg BEFORE INSERT ON app.\"T t\" FOR EACH ROW EXECUTE FUNCTION f()",
                "ON"
            )
            .unwrap(),
            "app.\"T t\""
        );
        assert_eq!(
            attach_parts(
                "ALTER TABLE ONLY app.\"p x\" ATTACH PARTITION app.p1 FOR VALUES FROM (1) TO (2)"
            )
            .unwrap(),
            (("app".into(), "p x".into()), ("app".into(), "p1".into()))
        );
    }

    #[test]
    fn serial_and_identity_entries_read() {
        assert_eq!(
            identity_parts("ALTER TABLE public.\"Log\" ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (\n    SEQUENCE NAME public.log_id_seq\n    START WITH 1\n)"),
            Some((
                ("public".to_string(), "Log".to_string()),
                "id".to_string(),
                "GENERATED ALWAYS AS IDENTITY (\n    SEQUENCE NAME public.log_id_seq\n    START WITH 1\n)".to_string()
            ))
        );
        assert_eq!(
            identity_parts("ALTER TABLE public.t ALTER COLUMN id SET DEFAULT 1"),
            None
        );
        let d = set_default_expr(
            "ALTER TABLE ONLY public.t ALTER COLUMN id SET DEFAULT nextval('public.\"T id''s seq\"'::regclass)",
        )
        .unwrap();
        assert_eq!(d, "nextval('public.\"T id''s seq\"'::regclass)");
        assert_eq!(
            nextval_sequence(&d),
            Some(("public".to_string(), "T id's seq".to_string()))
        );
        assert_eq!(
            nextval_sequence("nextval('public.t_id_seq'::regclass)"),
            Some(("public".to_string(), "t_id_seq".to_string()))
        );
        assert_eq!(
            nextval_sequence("(nextval('public.t_id_seq'::regclass) * 2)"),
            None
        );
    }

    #[test]
    fn no_default_markers_read() {
        assert_eq!(
            no_default_marker_as_drop(
                "ALTER TABLE ONLY public.\"Child\" ALTER COLUMN at SET DEFAULT NULL"
            )
            .as_deref(),
            Some("ALTER TABLE ONLY public.\"Child\" ALTER COLUMN at DROP DEFAULT;\n")
        );
        for typed in [
            "ALTER TABLE ONLY public.c ALTER COLUMN at SET DEFAULT NULL::timestamp without time zone",
            "ALTER TABLE ONLY public.c ALTER COLUMN at SET DEFAULT 'NULL'::text",
        ] {
            assert_eq!(no_default_marker_as_drop(typed), None, "{typed}");
        }
    }

    #[test]
    fn domains_read() {
        let d = parse_domain("CREATE DOMAIN public.email AS character varying(100) COLLATE pg_catalog.\"C\" DEFAULT 'a'::text NOT NULL\n\tCONSTRAINT c1 CHECK ((VALUE ~~ '%@%'::text))\n\tCONSTRAINT c2 CHECK ((length((VALUE)::text) > 3))").unwrap();
        assert_eq!(d.base, "character varying(100) COLLATE pg_catalog.\"C\"");
        assert_eq!(d.default.as_deref(), Some("'a'::text"));
        assert!(d.not_null);
        assert_eq!(d.checks.len(), 2);
        assert_eq!(
            d.checks[1].1,
            "CONSTRAINT c2 CHECK ((length((VALUE)::text) > 3))"
        );
    }

    /// Regression (issue 13): a domain cut after AS (or with nothing between AS and a clause,
    /// or a CONSTRAINT without a name) indexed past its tokens.
    #[test]
    fn domains_missing_a_part_are_not_read() {
        for sql in [
            "CREATE DOMAIN public.d AS",
            "CREATE DOMAIN public.d AS DEFAULT 1",
            "CREATE DOMAIN public.d AS integer CONSTRAINT",
        ] {
            assert!(parse_domain(sql).is_none(), "{sql}");
        }
    }

    /// Regression (mutation test): without its `ALTER FUNCTION ... OWNER TO` (a dump made with
    /// --no-owner), a routine's name was read from its CREATE with the defaults, and
    /// `DROP FUNCTION f(p numeric, pct integer DEFAULT 10)` does not parse.
    #[test]
    fn routine_names_leave_out_defaults() {
        let b = Block::new(
            crate::catalog::Key {
                kind: ObjectKind::Function,
                schema: "public".into(),
                name: "f(numeric, integer)".into(),
            },
            None,
            Default::default(),
            Default::default(),
            smallvec::smallvec!["CREATE FUNCTION public.f(p numeric, pct integer DEFAULT 10, q text = 'a,b'::text, VARIADIC r integer[] DEFAULT ARRAY[1, 2]) RETURNS numeric\n    LANGUAGE sql\n    AS $$ select p $$".into()],
            Box::default(),
            None,
        );
        assert_eq!(
            identity_of(&b).unwrap(),
            "public.f(p numeric, pct integer, q text, VARIADIC r integer[])"
        );
    }

    #[test]
    fn composite_attributes_read() {
        let a = composite_attributes("CREATE TYPE public.addr AS (\n\tstreet text,\n\t\"City\" character varying(20) COLLATE pg_catalog.\"C\",\n\tn numeric(10,2)\n)").unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a[1].0, "City");
        assert_eq!(
            a[1].1,
            "\"City\" character varying(20) COLLATE pg_catalog.\"C\""
        );
        assert_eq!(a[1].2, "character varying(20) COLLATE pg_catalog.\"C\"");
        assert_eq!(a[2].1, "n numeric(10,2)");
    }

    #[test]
    fn enum_labels_read() {
        assert_eq!(
            enum_labels("CREATE TYPE app.mood AS ENUM (\n    'sad',\n    'o''k'\n)").unwrap(),
            ["'sad'", "'o''k'"]
        );
    }
}
