//! What a step asks of the rows already in TARGET: the checks preflight runs before anything is
//! locked (`crate::preflight`). A step that can fail because of existing rows (SET NOT NULL, a
//! new key, a foreign key, a type change) or that loses rows (a table or column dropped) carries
//! them, typed, in the plan: `apply --plan` runs them again, and the plan's digest covers them.
//! Made from the catalog's definitions (`TableDef`, `ColumnDef`, `catalog::rules`), never by
//! reading a step's SQL. Pure.

use super::{Op, Step};
use crate::catalog::rules::{domain_check, row_rule, table_check, RowRule};
use crate::catalog::{Block, TableDef};
use serde::{Deserialize, Serialize};

/// A table, by its schema and name, unquoted (preflight quotes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rel {
    pub schema: String,
    pub name: String,
}

impl Rel {
    pub fn of(def: &TableDef) -> Rel {
        Rel {
            schema: def.schema.clone(),
            name: def.name.clone(),
        }
    }
    fn from_pair((schema, name): (String, String)) -> Rel {
        Rel { schema, name }
    }
    /// `public.orders`, as people read it (quoted where SQL would quote it).
    pub fn display(&self) -> String {
        crate::catalog::qualified(&self.schema, &self.name)
    }
}

/// One question about TARGET's rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "check", rename_all = "kebab-case")]
pub enum Check {
    /// `SET NOT NULL` (or its online form, a validated `CHECK (c IS NOT NULL)`): rows where the
    /// column is NULL make it fail.
    Nulls { table: Rel, column: String },
    /// A column added `NOT NULL` without a default: any row makes it fail.
    AnyRow { table: Rel, column: String },
    /// A new PRIMARY KEY, UNIQUE constraint or unique index over plain columns: groups of rows
    /// sharing a key make it fail (and, for a primary key, rows with a NULL in it).
    Duplicates {
        table: Rel,
        columns: Vec<String>,
        primary_key: bool,
        nulls_not_distinct: bool,
    },
    /// A new FOREIGN KEY: rows whose key matches no row of the referenced table make it fail.
    Orphans {
        table: Rel,
        columns: Vec<String>,
        references: Rel,
        ref_columns: Vec<String>,
        match_full: bool,
        /// The plan drops the referenced table before this step (and creates it again): it
        /// has no rows then, so every key is an orphan.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        references_emptied: bool,
    },
    /// A column's new type (the step converts with `USING col::type`): values that do not
    /// convert make it fail. `to_type` is SOURCE's column type as its dump spells it.
    Converts {
        table: Rel,
        column: String,
        to_type: String,
        /// The type the step converts through first (`USING col::text::new_enum`), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<String>,
    },
    /// A column's new string type is shorter (`USING col::varchar(n)` cuts longer values
    /// without an error): the values longer than `length` characters, which lose their end.
    Truncates {
        table: Rel,
        column: String,
        length: u32,
    },
    /// A table dropped (no column) or a column dropped: what is lost with it.
    RowsLost {
        table: Rel,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        column: Option<String>,
    },
    /// A CHECK constraint added to a table TARGET has (without NOT VALID), or validated
    /// (`--online`): rows where its expression is false make it fail (a NULL passes). `expr`
    /// is the expression the catalog deparsed from SOURCE's dump (`catalog::rules`); preflight
    /// writes it into its query only after reading it back as one expression.
    Violations {
        table: Rel,
        constraint: String,
        expr: String,
        /// `NO INHERIT`: the table's own rows only.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        no_inherit: bool,
    },
    /// A domain's CHECK constraint added (`expr`, over `value`), or its NOT NULL set (no
    /// `expr`): values in TARGET's columns of the domain, or of a domain over it, that break it
    /// make the step fail. Preflight finds those columns itself.
    DomainViolations {
        domain: Rel,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        constraint: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expr: Option<String>,
    },
    /// Enum labels removed (the type is rebuilt and each column converted through text): rows
    /// whose value in the column (an element, for an array column) is one of `labels` make it
    /// fail.
    RemovedLabels {
        table: Rel,
        column: String,
        labels: Vec<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        array: bool,
    },
    /// The step can fail on existing rows, and pgalign does not count them: why.
    NotChecked { table: Rel, why: String },
}

impl Check {
    /// The table whose rows it reads; for a domain's constraint, the domain.
    pub fn table(&self) -> &Rel {
        match self {
            Check::Nulls { table, .. }
            | Check::AnyRow { table, .. }
            | Check::Duplicates { table, .. }
            | Check::Orphans { table, .. }
            | Check::Converts { table, .. }
            | Check::Truncates { table, .. }
            | Check::RowsLost { table, .. }
            | Check::Violations { table, .. }
            | Check::RemovedLabels { table, .. }
            | Check::NotChecked { table, .. } => table,
            Check::DomainViolations { domain, .. } => domain,
        }
    }
}

/// The checks of an index or constraint created on a table TARGET has (`target` is that table's
/// definition in TARGET): from what the catalog reads of its statement.
pub(crate) fn for_created(s: &Block, target: Option<&TableDef>) -> Vec<Check> {
    match s.stmts.first().and_then(|sql| row_rule(sql)) {
        Some(rule) => of_rule(rule, target, &[]),
        None => Vec::new(),
    }
}

/// The checks of the CHECK constraint `name` of SOURCE's `CREATE TABLE` (its block `s`), added
/// to the table TARGET has (`target`); `retyped`: the columns whose type or collation the plan
/// changes before it.
pub(crate) fn for_table_check(
    s: &Block,
    name: &str,
    target: &TableDef,
    retyped: &[String],
) -> Vec<Check> {
    let rule = s
        .stmts
        .first()
        .and_then(|sql| table_check(sql, name))
        .unwrap_or(RowRule::NotReadable {
            table: Some((target.schema.clone(), target.name.clone())),
            why: "a CHECK constraint pgalign cannot find in SOURCE's CREATE TABLE: its rows are not counted",
        });
    of_rule(rule, Some(target), retyped)
}

/// What a rule asks of TARGET's rows. A key or condition over a column the plan adds is not
/// checked (TARGET has no such column to look at), nor a condition over a column whose type
/// the plan changes first (TARGET's values are not the ones it will meet), nor one that calls
/// a function preflight does not run.
fn of_rule(rule: RowRule, target: Option<&TableDef>, retyped: &[String]) -> Vec<Check> {
    let missing = |table: &(String, String), columns: &[String]| -> Option<Check> {
        let def = target?;
        let not_checked = |why: String| Check::NotChecked {
            table: Rel::from_pair(table.clone()),
            why,
        };
        if let Some(absent) = columns
            .iter()
            .find(|c| !def.columns.iter().any(|d| d.name == **c))
        {
            return Some(not_checked(format!(
                "column {} is added by this plan: TARGET has no values of it to look at",
                crate::catalog::quote_ident(absent)
            )));
        }
        let changed = columns.iter().find(|c| retyped.contains(c))?;
        Some(not_checked(format!(
            "column {} changes type or collation in this plan before this step: TARGET's values are not the ones it will meet",
            crate::catalog::quote_ident(changed)
        )))
    };
    let check = match rule {
        RowRule::Nothing => return Vec::new(),
        RowRule::NotReadable { table, why } => match table {
            Some(t) => Check::NotChecked {
                table: Rel::from_pair(t),
                why: why.to_string(),
            },
            None => return Vec::new(),
        },
        RowRule::Unique {
            table,
            columns,
            primary_key,
            nulls_not_distinct,
        } => missing(&table, &columns).unwrap_or(Check::Duplicates {
            table: Rel::from_pair(table),
            columns,
            primary_key,
            nulls_not_distinct,
        }),
        RowRule::ForeignKey {
            table,
            columns,
            references,
            ref_columns,
            match_full,
        } => missing(&table, &columns).unwrap_or(Check::Orphans {
            table: Rel::from_pair(table),
            columns,
            references: Rel::from_pair(references),
            ref_columns,
            match_full,
            references_emptied: false,
        }),
        RowRule::Check {
            table,
            name,
            expr,
            no_inherit,
        } => match (missing(&table, &expr.columns), calls_note(&expr.calls)) {
            (Some(not_checked), _) => not_checked,
            (None, Some(why)) => Check::NotChecked {
                table: Rel::from_pair(table),
                why,
            },
            (None, None) => Check::Violations {
                table: Rel::from_pair(table),
                constraint: name,
                expr: expr.expr,
                no_inherit,
            },
        },
    };
    vec![check]
}

/// Why a condition that calls `calls` is not evaluated, if it calls any.
fn calls_note(calls: &[String]) -> Option<String> {
    (!calls.is_empty()).then(|| {
        format!(
            "calls a function that is not immutable or not a builtin ({}): preflight does not run it on TARGET's rows",
            calls.join(", ")
        )
    })
}

/// The check of a domain's CHECK constraint `name`, added by the plan, as SOURCE's `CREATE
/// DOMAIN` (block `s`) defines it; `domain` is the domain's (schema, name).
pub(crate) fn for_domain_check(s: &Block, domain: Rel, name: &str) -> Vec<Check> {
    let read = s.stmts.first().and_then(|sql| domain_check(sql, name));
    let why = match read {
        Some(Ok(c)) => match calls_note(&c.calls) {
            None => {
                return vec![Check::DomainViolations {
                    domain,
                    constraint: Some(name.to_string()),
                    expr: Some(c.expr),
                }]
            }
            Some(why) => why,
        },
        Some(Err(why)) => why.to_string(),
        None => "a domain constraint pgalign cannot find in SOURCE's CREATE DOMAIN: its values are not counted".to_string(),
    };
    vec![Check::NotChecked { table: domain, why }]
}

/// A table the plan drops before a step (to create it again: a change of partitioning) has no
/// rows when that step runs: the step's checks of its rows are left out (nothing can break
/// them), and a foreign key referencing it will find no row there. Read from the steps'
/// typed checks, in plan order.
pub(crate) fn after_tables_emptied(steps: &mut [Step]) {
    let mut emptied: Vec<Rel> = Vec::new();
    for s in steps.iter_mut() {
        s.preflight.retain(|c| !emptied.contains(c.table()));
        for c in &mut s.preflight {
            if let Check::Orphans {
                references,
                references_emptied,
                ..
            } = c
            {
                *references_emptied |= emptied.contains(references);
            }
        }
        if s.op == Op::Drop {
            for c in &s.preflight {
                if let Check::RowsLost {
                    table,
                    column: None,
                } = c
                {
                    emptied.push(table.clone());
                }
            }
        }
    }
}
