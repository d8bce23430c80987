//! A table's CREATE TABLE, read once into a `TableDef`: columns, constraints, and the clauses
//! after the column list (storage parameters, parents, partitioning); and the table settings
//! pg_dump writes as statements of their own.

use super::parse::*;
use anyhow::{anyhow, bail, Context, Result};
use pg_query::NodeEnum;

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

/// Whether a default, as pg_dump prints it, is pg_dump's marker for "no default of its own":
/// `DEFAULT NULL` on a partition's or inheritance child's column whose parent has a default
/// (printed so that a restore through `PARTITION OF` or `INHERITS` would not copy the parent's).
/// No stored default prints as a bare `NULL`: a null constant is not stored, and a typed one
/// prints its type (`NULL::timestamp(3) without time zone`). Run as written, the marker is not
/// always "none": on a column with a type modifier or a domain it stores a typed null, which
/// dumps differently; what gives the column none is `DROP DEFAULT`.
pub fn is_no_default_marker(expr: &str) -> bool {
    expr.trim() == "NULL"
}

impl ColumnDef {
    /// The default to give the column, if any: None when it has none, or only pg_dump's
    /// "no default of its own" marker (see `is_no_default_marker`).
    pub fn default_to_set(&self) -> Option<&str> {
        self.default.as_deref().filter(|d| !is_no_default_marker(d))
    }

    /// Whether the column's default is pg_dump's "no default of its own" marker.
    pub fn has_no_default_marker(&self) -> bool {
        self.default.as_deref().is_some_and(is_no_default_marker)
    }

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
pub(super) fn split_with(tail: &str) -> (Vec<(String, String)>, String) {
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
pub(super) fn split_inherits(rest: &str) -> (Vec<(String, String)>, String) {
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
pub(super) fn split_partition_by(rest: &str) -> (Option<String>, String) {
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

pub(super) fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Cuts one column definition into its clauses using the parser's locations: each clause runs
/// from its own location to the next clause's.
pub(super) fn column_parts(
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
pub(super) fn clause_start(toks: &[Tok], loc: usize, kw: &str) -> usize {
    let i = toks.iter().rposition(|t| t.start <= loc).unwrap_or(0);
    toks[..=i]
        .iter()
        .rev()
        .find(|t| t.is_kw(kw))
        .map(|t| t.start)
        .unwrap_or(loc)
}
