//! What a new constraint or index asks of the rows already in its table, read with the server's
//! grammar from the statement pg_dump wrote for it: the columns it keys on, for a foreign key
//! the table and columns it references, for a CHECK constraint (of a table or a domain) its
//! expression. Preflight counts the rows that break it; the planner only hands these facts
//! over, it never reads the statement itself.

use pg_query::protobuf::{self, ConstrType, Constraint, IndexStmt, RangeVar};
use pg_query::{Node, NodeEnum};
use std::collections::BTreeSet;

/// A table as (schema, name), unquoted.
pub type Rel = (String, String);

/// What existing rows must satisfy for the statement to succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowRule {
    /// PRIMARY KEY, UNIQUE, or a unique index over plain columns.
    Unique {
        table: Rel,
        columns: Vec<String>,
        primary_key: bool,
        /// `NULLS NOT DISTINCT`: rows with NULLs in the key are equal too.
        nulls_not_distinct: bool,
    },
    /// FOREIGN KEY ... REFERENCES.
    ForeignKey {
        table: Rel,
        columns: Vec<String>,
        references: Rel,
        ref_columns: Vec<String>,
        /// `MATCH FULL`: a key NULL in some columns but not all is refused too.
        match_full: bool,
    },
    /// CHECK: the rows where `expr` is false (a NULL passes).
    Check {
        table: Rel,
        name: String,
        expr: Condition,
        /// `NO INHERIT`: the table's own rows only.
        no_inherit: bool,
    },
    /// Nothing of existing rows: a plain index, a constraint added NOT VALID, a partitioned
    /// table's parent index made `ON ONLY` (its partitions' own indexes are built, and checked,
    /// in steps of their own), a constraint over an index that exists.
    Nothing,
    /// Something a column list cannot say (an expression or partial index, an exclusion
    /// constraint): why it is not checked. Table named when it can be read.
    NotReadable {
        table: Option<Rel>,
        why: &'static str,
    },
}

/// The rule of an `ALTER TABLE ... ADD CONSTRAINT` (PRIMARY KEY, UNIQUE, FOREIGN KEY, EXCLUDE)
/// or a `CREATE [UNIQUE] INDEX` statement; None for any other statement, or one that does not
/// parse.
pub fn row_rule(sql: &str) -> Option<RowRule> {
    let parsed = pg_query::parse(sql, 0).ok()?;
    let [stmt] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    match stmt.stmt.as_ref()?.node.as_ref()? {
        NodeEnum::IndexStmt(ix) => index_rule(ix),
        NodeEnum::AlterTableStmt(alter) => {
            let [cmd] = alter.cmds.as_slice() else {
                return None;
            };
            let Some(NodeEnum::AlterTableCmd(cmd)) = cmd.node.as_ref() else {
                return None;
            };
            let Some(NodeEnum::Constraint(c)) = cmd.def.as_ref()?.node.as_ref() else {
                return None;
            };
            constraint_rule(rel(alter.relation.as_ref()?), c)
        }
        _ => None,
    }
}

fn rel(r: &RangeVar) -> Rel {
    (r.schemaname.clone(), r.relname.clone())
}

/// Names of a list of `String` nodes (a constraint's columns); None when one is something else.
fn names(nodes: &[Node]) -> Option<Vec<String>> {
    nodes
        .iter()
        .map(|n| match n.node.as_ref()? {
            NodeEnum::String(s) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

fn index_rule(ix: &IndexStmt) -> Option<RowRule> {
    let r = ix.relation.as_ref()?;
    if !ix.unique || !r.inh {
        return Some(RowRule::Nothing);
    }
    let table = rel(r);
    let not_readable = |why| {
        Some(RowRule::NotReadable {
            table: Some(table.clone()),
            why,
        })
    };
    if ix.where_clause.is_some() {
        return not_readable("a partial unique index (WHERE ...): its rows are not counted");
    }
    let mut columns = Vec::new();
    for p in &ix.index_params {
        match p.node.as_ref()? {
            NodeEnum::IndexElem(e) if e.expr.is_none() && !e.name.is_empty() => {
                columns.push(e.name.clone())
            }
            _ => return not_readable("a unique index on an expression: its rows are not counted"),
        }
    }
    Some(RowRule::Unique {
        table,
        columns,
        primary_key: false,
        nulls_not_distinct: ix.nulls_not_distinct,
    })
}

fn constraint_rule(table: Rel, c: &Constraint) -> Option<RowRule> {
    let kind = ConstrType::try_from(c.contype).ok()?;
    if c.skip_validation {
        // NOT VALID: existing rows are not checked when it is added.
        return Some(RowRule::Nothing);
    }
    match kind {
        ConstrType::ConstrPrimary | ConstrType::ConstrUnique => {
            if !c.indexname.is_empty() {
                return Some(RowRule::Nothing);
            }
            Some(RowRule::Unique {
                table,
                columns: names(&c.keys)?,
                primary_key: kind == ConstrType::ConstrPrimary,
                nulls_not_distinct: c.nulls_not_distinct,
            })
        }
        ConstrType::ConstrForeign => {
            let columns = names(&c.fk_attrs)?;
            let ref_columns = names(&c.pk_attrs)?;
            if ref_columns.len() != columns.len() || c.fk_with_period {
                return Some(RowRule::NotReadable {
                    table: Some(table),
                    why: "a foreign key without its referenced columns spelled out, or with PERIOD: its rows are not counted",
                });
            }
            Some(RowRule::ForeignKey {
                table,
                columns,
                references: rel(c.pktable.as_ref()?),
                ref_columns,
                match_full: c.fk_matchtype == "f",
            })
        }
        ConstrType::ConstrExclusion => Some(RowRule::NotReadable {
            table: Some(table),
            why: "an exclusion constraint: its rows are not counted",
        }),
        ConstrType::ConstrCheck if !c.is_enforced => Some(RowRule::Nothing),
        ConstrType::ConstrCheck => match condition(c.raw_expr.as_deref()?, Over::Columns) {
            Ok(expr) => Some(RowRule::Check {
                table,
                name: c.conname.clone(),
                expr,
                no_inherit: c.is_no_inherit,
            }),
            Err(why) => Some(RowRule::NotReadable {
                table: Some(table),
                why,
            }),
        },
        _ => None,
    }
}

/// The rule of the CHECK constraint `name` inside a `CREATE TABLE` statement (pg_dump writes a
/// table's valid CHECK constraints there); None when the statement has no such constraint.
pub fn table_check(create_table: &str, name: &str) -> Option<RowRule> {
    let parsed = pg_query::parse(create_table, 0).ok()?;
    let [stmt] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    let create = match stmt.stmt.as_ref()?.node.as_ref()? {
        NodeEnum::CreateStmt(c) => c,
        _ => return None,
    };
    let table = rel(create.relation.as_ref()?);
    create
        .table_elts
        .iter()
        .find_map(|e| match e.node.as_ref()? {
            NodeEnum::Constraint(c)
                if c.conname == name && c.contype == ConstrType::ConstrCheck as i32 =>
            {
                constraint_rule(table.clone(), c)
            }
            _ => None,
        })
}

/// A CHECK condition read from its parse tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// The expression as pg_query deparses its tree: one expression, whatever the statement
    /// around it held (see `one_expression`).
    pub expr: String,
    /// The columns it names (for a domain's, only `value`).
    pub columns: Vec<String>,
    /// What it calls that is not a known-immutable builtin (`IMMUTABLE_BUILTINS`): functions,
    /// and operators named with a schema other than pg_catalog, as written. Preflight does
    /// not evaluate a condition that calls any: their code is not pgalign's to run.
    pub calls: Vec<String>,
}

/// Builtin functions a CHECK condition may call and still be evaluated by preflight: in
/// pg_catalog, immutable in every overload there but `length(bytea, name)` (which a call with
/// one argument is not; tests/preflight.rs asks the server), with no effect but their result. Unqualified names resolve there: preflight runs with an
/// empty search_path, and pg_dump qualifies any function outside pg_catalog.
pub const IMMUTABLE_BUILTINS: &[&str] = &[
    "abs",
    "array_length",
    "array_lower",
    "array_ndims",
    "array_upper",
    "btrim",
    "cardinality",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "floor",
    "json_typeof",
    "jsonb_array_length",
    "jsonb_typeof",
    "left",
    "length",
    "lower",
    "ltrim",
    "mod",
    "num_nonnulls",
    "num_nulls",
    "octet_length",
    "position",
    "replace",
    "right",
    "round",
    "rtrim",
    "sign",
    "split_part",
    "starts_with",
    "strpos",
    "substr",
    "substring",
    "trunc",
    "upper",
];

/// What a condition's column references may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Over {
    /// A table's columns, unqualified (as pg_dump writes a table's CHECK).
    Columns,
    /// A domain's `VALUE`, and nothing else.
    DomainValue,
}

/// Reads a CHECK expression's tree: refused (why) when it is more than an expression preflight
/// can evaluate on rows, or when its deparsed text does not read back as the same expression.
fn condition(node: &Node, over: Over) -> Result<Condition, &'static str> {
    let mut seen = Seen::default();
    let tree = serde_json::to_value(node).map_err(|_| UNREADABLE)?;
    seen.walk(&tree)?;
    if over == Over::DomainValue && seen.columns.iter().any(|c| c != "value") {
        return Err("a domain CHECK naming something other than VALUE: its values are not counted");
    }
    let expr = deparse_expression(node).ok_or(UNREADABLE)?;
    // The text must read back as itself (what preflight asks of a plan's expression), and as
    // this very tree: parentheses the deparser left out would change what is evaluated.
    let again = reread(&expr).ok_or(UNREADABLE)?;
    if !same_tree(node, &again) || deparse_expression(&again).as_deref() != Some(expr.as_str()) {
        return Err(UNREADABLE);
    }
    Ok(Condition {
        expr,
        columns: seen.columns.into_iter().collect(),
        calls: seen.calls.into_iter().collect(),
    })
}

const UNREADABLE: &str =
    "a CHECK expression pgalign cannot read back as one expression: its rows are not counted";

/// What a walk over an expression's tree found.
#[derive(Default)]
struct Seen {
    columns: BTreeSet<String>,
    calls: BTreeSet<String>,
}

impl Seen {
    /// Every node of the tree, through its serialized form: a walk that cannot miss a child
    /// (the tree's own iterator skips some kinds of node).
    fn walk(&mut self, v: &serde_json::Value) -> Result<(), &'static str> {
        match v {
            serde_json::Value::Array(items) => items.iter().try_for_each(|x| self.walk(x)),
            serde_json::Value::Object(map) => {
                for (k, x) in map {
                    self.node(k, x)?;
                    self.walk(x)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn node(&mut self, kind: &str, v: &serde_json::Value) -> Result<(), &'static str> {
        match kind {
            // Not in a CHECK PostgreSQL accepts; nothing preflight would write a query around.
            "SubLink" | "ParamRef" | "AStar" | "ResTarget" | "RangeVar" | "SelectStmt" => {
                Err("a CHECK expression with a subquery, a parameter or a star: its rows are not counted")
            }
            "ColumnRef" => {
                let fields = strings(&v["fields"]);
                let [one] = fields.as_slice() else {
                    return Err("a CHECK expression with a qualified column reference: its rows are not counted");
                };
                self.columns.insert(one.clone());
                Ok(())
            }
            "FuncCall" => {
                let name = strings(&v["funcname"]);
                let known = |f: &str| {
                    // length(bytea, encoding) is stable; its one-argument forms are immutable.
                    IMMUTABLE_BUILTINS.contains(&f)
                        && (f != "length" || v["args"].as_array().is_some_and(|a| a.len() == 1))
                };
                let builtin = match name.as_slice() {
                    [f] => known(f),
                    [s, f] => s == "pg_catalog" && known(f),
                    _ => false,
                };
                let plain = v["agg_star"] != true
                    && v["agg_distinct"] != true
                    && v["over"].is_null()
                    && v["agg_filter"].is_null();
                if !(builtin && plain) {
                    self.calls.insert(name.join("."));
                }
                Ok(())
            }
            "AExpr" => {
                if let [s, op] = strings(&v["name"]).as_slice() {
                    if s != "pg_catalog" {
                        self.calls.insert(format!("OPERATOR({s}.{op})"));
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The `sval`s of a list of `String` nodes, serialized (a function's or column's name parts).
fn strings(list: &serde_json::Value) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .map(|n| match n["node"]["String"]["sval"].as_str() {
            Some(s) => s.to_string(),
            // A part that is not a name (`*`) stays visible as one.
            None => "*".to_string(),
        })
        .collect()
}

/// The text of one expression node, as pg_query deparses it inside `SELECT <expr>`.
fn deparse_expression(node: &Node) -> Option<String> {
    let target = protobuf::ResTarget {
        val: Some(Box::new(node.clone())),
        ..Default::default()
    };
    let select = protobuf::SelectStmt {
        target_list: vec![Node {
            node: Some(NodeEnum::ResTarget(Box::new(target))),
        }],
        op: protobuf::SetOperation::SetopNone as i32,
        limit_option: protobuf::LimitOption::Default as i32,
        ..Default::default()
    };
    let text = NodeEnum::SelectStmt(Box::new(select))
        .deparse(Default::default())
        .ok()?;
    text.strip_prefix("SELECT ").map(str::to_string)
}

/// `expr` when it is one expression and exactly the text pg_query deparses from its own tree,
/// with nothing that reads rows (a subquery) or takes a parameter; None otherwise. What
/// preflight writes after `WHERE NOT`: the plan file carries the expression, and only this
/// fixed point of the deparser becomes SQL, so a plan edited to smuggle a second statement, a
/// comment or a FROM clause into it is refused.
pub fn one_expression(expr: &str) -> Option<String> {
    let val = reread(expr)?;
    Seen::default()
        .walk(&serde_json::to_value(&val).ok()?)
        .ok()?;
    let again = deparse_expression(&val)?;
    (again == expr).then_some(again)
}

/// The tree of `expr`, read as the one target of `SELECT <expr>` and nothing more.
fn reread(expr: &str) -> Option<Node> {
    let parsed = pg_query::parse(&format!("SELECT {expr}"), 0).ok()?;
    let [stmt] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    let Some(NodeEnum::SelectStmt(s)) = stmt.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
        return None;
    };
    let [target] = s.target_list.as_slice() else {
        return None;
    };
    let Some(NodeEnum::ResTarget(t)) = target.node.as_ref() else {
        return None;
    };
    let plain = s.from_clause.is_empty()
        && s.where_clause.is_none()
        && s.group_clause.is_empty()
        && s.having_clause.is_none()
        && s.window_clause.is_empty()
        && s.distinct_clause.is_empty()
        && s.sort_clause.is_empty()
        && s.locking_clause.is_empty()
        && s.values_lists.is_empty()
        && s.limit_count.is_none()
        && s.limit_offset.is_none()
        && s.into_clause.is_none()
        && s.with_clause.is_none()
        && s.op == protobuf::SetOperation::SetopNone as i32
        && s.larg.is_none()
        && t.name.is_empty()
        && t.indirection.is_empty();
    if !plain {
        return None;
    }
    t.val.as_deref().cloned()
}

/// Whether two expression trees are the same but for where they were read (`location`, and
/// where a list's parentheses were: `list_start`, `rexpr_list_end`, ...).
fn same_tree(a: &Node, b: &Node) -> bool {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.retain(|k, _| {
                    k != "location" && !k.ends_with("list_start") && !k.ends_with("list_end")
                });
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(mut x), Ok(mut y)) => {
            strip(&mut x);
            strip(&mut y);
            x == y
        }
        _ => false,
    }
}

/// A domain's CHECK constraint `name` as `CREATE DOMAIN` (SOURCE's dump) defines it: its
/// condition over `VALUE`, or why it is not counted. None when there is no such constraint.
pub fn domain_check(create_domain: &str, name: &str) -> Option<Result<Condition, &'static str>> {
    let parsed = pg_query::parse(create_domain, 0).ok()?;
    let [stmt] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    let Some(NodeEnum::CreateDomainStmt(d)) = stmt.stmt.as_ref()?.node.as_ref() else {
        return None;
    };
    d.constraints.iter().find_map(|n| match n.node.as_ref()? {
        NodeEnum::Constraint(c)
            if c.conname == name && c.contype == ConstrType::ConstrCheck as i32 =>
        {
            Some(condition(c.raw_expr.as_deref()?, Over::DomainValue))
        }
        _ => None,
    })
}

/// The labels of `CREATE TYPE ... AS ENUM (...)`, as values (quotes undone), in order.
pub fn enum_values(create_type: &str) -> Option<Vec<String>> {
    let parsed = pg_query::parse(create_type, 0).ok()?;
    let [stmt] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    let Some(NodeEnum::CreateEnumStmt(e)) = stmt.stmt.as_ref()?.node.as_ref() else {
        return None;
    };
    names(&e.vals)
}

/// Whether `text` is one type name and nothing else (`integer`, `character varying(10)`,
/// `public."Mood"[]`): what preflight may write after `::`. Read as the type of a cast, by the
/// server's grammar.
pub fn is_type_name(text: &str) -> bool {
    // What could end the cast where it is written (a comment, a line break, a second
    // statement) is refused outright, even inside a quoted name: such a type is not checked.
    if text.is_empty()
        || text.contains(['\0', ';', '\n', '\r'])
        || text.contains("--")
        || text.contains("/*")
    {
        return false;
    }
    let Ok(parsed) = pg_query::parse(&format!("SELECT NULL::{text}"), 0) else {
        return false;
    };
    let [stmt] = parsed.protobuf.stmts.as_slice() else {
        return false;
    };
    let Some(NodeEnum::SelectStmt(s)) = stmt.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
        return false;
    };
    let [target] = s.target_list.as_slice() else {
        return false;
    };
    let Some(NodeEnum::ResTarget(t)) = target.node.as_ref() else {
        return false;
    };
    let Some(NodeEnum::TypeCast(cast)) = t.val.as_ref().and_then(|v| v.node.as_ref()) else {
        return false;
    };
    let plain_null = matches!(
        cast.arg.as_ref().and_then(|a| a.node.as_ref()),
        Some(NodeEnum::AConst(c)) if c.isnull
    );
    plain_null
        && s.from_clause.is_empty()
        && s.where_clause.is_none()
        && s.op == pg_query::protobuf::SetOperation::SetopNone as i32
        && s.larg.is_none()
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
