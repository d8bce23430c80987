//! A table's columns and inline CHECK constraints, written as steps from their `ColumnsDiff`:
//! CHECK constraints that go or change first (they may use dropped columns), then dropped
//! columns in TARGET's order, changed and added ones in SOURCE's (PostgreSQL appends added
//! columns), new CHECK constraints last.

use super::added::{folded_default, volatile_default};
use super::diff::{AddedColumn, CheckChange, ColumnChange, ColumnsDiff, Generated};
use super::{Out, PartitionParent, Table};
use crate::catalog::parse::{
    qualified, quote_ident, truncate_identifier, type_modifiers, ColumnDef,
};
use crate::catalog::types::{self, Conversion};
use crate::catalog::{Catalog, Key, ObjectKind, TableDef};
use crate::plan::preflight::{self, Check, Rel};
use crate::plan::{Hazard, Role, Step};

/// What the column steps of one table need besides its diff.
pub(super) struct Columns<'t, 'c, 'a> {
    pub table: &'t Table<'c, 'a>,
    /// TARGET's definition, as dumped (without the columns that NO INHERIT makes its own).
    pub old: &'t TableDef,
    pub new: &'t TableDef,
    /// For a partition, its parent.
    pub parent: Option<&'t PartitionParent>,
}

impl Columns<'_, '_, '_> {
    /// A check on this table's rows; none on a foreign table (its rows are not here).
    fn check(&self, make: impl FnOnce(Rel) -> Check) -> Vec<Check> {
        if self.table.foreign {
            Vec::new()
        } else {
            vec![make(Rel::of(self.new))]
        }
    }

    pub fn write(&self, diff: &ColumnsDiff, out: &mut Out) {
        for k in &diff.checks_dropped {
            self.dropped_check(k, out);
        }
        for c in &diff.dropped {
            self.dropped_column(c, out);
        }
        for ch in &diff.changed {
            self.changed_column(ch, out);
        }
        for a in &diff.added {
            self.added_column(a, out);
        }
        // A new CHECK over a column whose type (or collation) changes first meets other values
        // than TARGET's.
        let retyped: Vec<String> = diff
            .changed
            .iter()
            .filter(|ch| ch.type_sql || ch.collation)
            .map(|ch| ch.new.name.clone())
            .collect();
        for k in &diff.checks_added {
            self.added_check(k, &retyped, out);
        }
    }

    /// Whether column `col` changes on the partition's parent, and the same way here: the
    /// parent's change reaches it. Compared as the parent defines it: a partition's default is
    /// its own (pg_dump prints it inline on the partition and as a separate entry on the
    /// parent), and so may be NOT NULL.
    fn via_parent(&self, col: &str) -> bool {
        let Some(p) = self.parent else {
            return false;
        };
        let shape = |t: &TableDef| {
            t.columns.iter().find(|c| c.name == col).map(|c| {
                (
                    c.type_sql.clone(),
                    c.collate.clone(),
                    c.generated.clone(),
                    c.other.clone(),
                )
            })
        };
        shape(&p.old) == shape(self.old)
            && shape(&p.new) == shape(self.new)
            && shape(&p.old) != shape(&p.new)
    }

    /// A partition's CHECK constraint of the same name as one on its parent is the parent's:
    /// dropped and added there, it goes and comes here too (and cannot be dropped here alone).
    fn parents_check(cat: &Catalog, parent: Option<&TableDef>, name: &str) -> bool {
        parent.is_some_and(|p| {
            p.constraints.iter().any(|k| k.name == name)
                || cat
                    .position(&Key {
                        kind: ObjectKind::CheckConstraint,
                        schema: p.schema.as_str().into(),
                        name: compact_str::format_compact!("{} {name}", p.name),
                    })
                    .is_some()
        })
    }

    fn dropped_check(&self, k: &CheckChange, out: &mut Out) {
        let t = self.table;
        if Self::parents_check(t.ctx.tgt, self.parent.map(|p| &p.old), &k.check.name) {
            return;
        }
        let why = if k.differs {
            "differs"
        } else {
            "not in source"
        };
        out.steps.push(t.step(
            &format!("check constraint {} {why}", k.check.name),
            t.sql(&format!("DROP CONSTRAINT {}", quote_ident(&k.check.name))),
            vec![Hazard::AccessExclusiveLock],
        ));
    }

    fn dropped_column(&self, c: &ColumnDef, out: &mut Out) {
        let t = self.table;
        out.touched.push(c.name.clone());
        if self.via_parent(&c.name) {
            return;
        }
        out.drop_steps.push((c.name.clone(), out.steps.len()));
        let mut step = drops_column(t.step(
            &format!("column {} not in source", c.name),
            t.sql(&format!("DROP COLUMN {}", quote_ident(&c.name))),
            if t.foreign {
                vec![Hazard::AccessExclusiveLock]
            } else {
                vec![Hazard::DataLoss, Hazard::AccessExclusiveLock]
            },
        ));
        step.preflight = self.check(|table| Check::RowsLost {
            table,
            column: Some(c.name.clone()),
        });
        out.steps.push(step);
    }

    /// A partition's column that its parent changes: the parent's change (type, collation,
    /// generation) reaches it; only its own default and NOT NULL are set here, and the NOT NULL
    /// only when the parent's does not change the same way.
    fn changed_column(&self, ch: &ColumnChange, out: &mut Out) {
        let t = self.table;
        let (o, c) = (ch.old, ch.new);
        let via_parent = self.via_parent(&c.name);
        let parent_not_null = |d: &TableDef| {
            d.columns
                .iter()
                .find(|x| x.name == c.name)
                .map(|x| x.not_null)
        };
        let not_null_via_parent = via_parent
            && self
                .parent
                .and_then(|p| Some((parent_not_null(&p.old)?, parent_not_null(&p.new)?)))
                == Some((o.not_null, c.not_null));
        if !via_parent && ch.clauses {
            out.problems.push(format!(
                "column {}: clauses differ ({:?} vs {:?})",
                c.name, o.other, c.other
            ));
            return;
        }
        let generated = if via_parent {
            None
        } else {
            ch.generated.as_ref()
        };
        if let Some(g) = generated {
            out.touched.push(c.name.clone());
            let col = quote_ident(&c.name);
            match g {
                // The remaining differences (type, default, NOT NULL) follow.
                Generated::Dropped => out.steps.push(t.step(
                    &format!("column {} is no longer generated", c.name),
                    t.sql(&format!("ALTER COLUMN {col} DROP EXPRESSION")),
                    vec![Hazard::AccessExclusiveLock],
                )),
                // A generation expression cannot be changed in place before PostgreSQL 17:
                // the column is dropped and added again (it holds derived data only).
                Generated::Changed => {
                    out.steps.push(drops_column(t.step(
                        &format!("column {} generation expression differs; dropped and added again (it moves to the end of the table)", c.name),
                        t.sql(&format!("DROP COLUMN {col}")) + &t.sql(&format!("ADD COLUMN {}", c.text)),
                        vec![Hazard::TableRewrite, Hazard::AccessExclusiveLock],
                    )));
                    return;
                }
            }
        }
        let reset = self.default_reset_by_parent(ch);
        if !via_parent && (ch.type_sql || ch.collation) {
            match self.type_step(ch) {
                Ok(step) => {
                    out.touched.push(c.name.clone());
                    out.steps.push(step);
                }
                Err(why) => out.problems.push(why),
            }
        } else if ch.default || reset {
            let col = quote_ident(&c.name);
            // Only here: partitions and children have defaults of their own, set by their steps.
            let sql = match c.default_to_set() {
                Some(d) => t.sql_here_only(&format!("ALTER COLUMN {col} SET DEFAULT {d}")),
                None => t.sql_here_only(&format!("ALTER COLUMN {col} DROP DEFAULT")),
            };
            let why = if ch.default {
                format!("column {} default differs", c.name)
            } else {
                format!(
                    "column {}: its own default again, after the parent's type change gave it the parent's",
                    c.name
                )
            };
            let s = t.step(&why, sql, vec![]);
            if via_parent && !reset && c.default_to_set().is_none() {
                // With the drops: a partition's own default may use a sequence dropped there.
                out.early.push(s);
            } else {
                out.steps.push(s);
            }
        }
        if ch.not_null && !not_null_via_parent {
            self.not_null_steps(c, out);
        } else if !via_parent && c.not_null && ch.not_null_name {
            self.not_null_rename(o, c, out);
        }
    }

    /// Whether the partition's default must be set again because its parent's type change
    /// replaced it: that change drops the default on the parent and every partition (the old
    /// one may not cast to the new type) and sets the parent's new one on all of them.
    fn default_reset_by_parent(&self, ch: &ColumnChange) -> bool {
        let Some(p) = self.parent else {
            return false;
        };
        let parents = p.new.columns.iter().find(|x| x.name == ch.new.name);
        self.via_parent(&ch.new.name)
            && (ch.type_sql || ch.collation)
            && parents.and_then(|x| x.default_to_set()) != ch.new.default_to_set()
    }

    /// A new type or collation. The old default may not cast to the new type: it is dropped
    /// first, SOURCE's set after. The values are converted by a cast (through text from and to
    /// an enum); when PostgreSQL has none between the two types, why the change is not made.
    fn type_step(&self, ch: &ColumnChange) -> Result<Step, String> {
        let t = self.table;
        let (o, c) = (ch.old, ch.new);
        let col = quote_ident(&c.name);
        // ALTER FOREIGN TABLE takes no USING: there are no local rows to convert.
        let conversion = if ch.type_sql && !t.foreign {
            let ctx = t.ctx;
            Some(types::conversion(
                &o.type_sql,
                &c.type_sql,
                |x| ctx.tgt_rel.is_enum(ctx.tgt, x),
                |x| ctx.src_rel.is_enum(ctx.src, x),
            ))
        } else {
            None
        };
        // The USING clause, and the type it converts through first, if any.
        let (using, via) = match conversion {
            None => (String::new(), None),
            Some(Conversion::Cast) => (format!(" USING {col}::{}", c.type_sql), None),
            Some(Conversion::Through(via)) => {
                (format!(" USING {col}::{via}::{}", c.type_sql), Some(via))
            }
            Some(Conversion::None) => {
                return Err(format!(
                    "column {}: its type changes from {} to {}, and PostgreSQL has no cast between the two, so ALTER COLUMN ... TYPE would fail; convert it by hand (ALTER TABLE {} ALTER COLUMN {col} TYPE {} USING <an expression that maps each old value>), then plan again",
                    c.name,
                    o.type_sql,
                    c.type_sql,
                    qualified(&self.new.schema, &self.new.name),
                    c.type_sql
                ))
            }
        };
        let collate = |x: &ColumnDef| {
            x.collate
                .as_ref()
                .map(|x| format!(" COLLATE {x}"))
                .unwrap_or_default()
        };
        let mut sql = String::new();
        if o.default.is_some() {
            sql.push_str(&t.sql(&format!("ALTER COLUMN {col} DROP DEFAULT")));
        }
        sql.push_str(&t.sql(&format!(
            "ALTER COLUMN {col} TYPE {}{}{using}",
            c.type_sql,
            collate(c)
        )));
        if let Some(d) = c.default_to_set() {
            sql.push_str(&t.sql(&format!("ALTER COLUMN {col} SET DEFAULT {d}")));
        }
        let mut hazards = vec![Hazard::AccessExclusiveLock];
        let cost = type_change_cost(&o.type_sql, &c.type_sql);
        match cost {
            _ if t.foreign => {}
            Cost::Free if !ch.collation => {}
            Cost::Narrowing => {
                hazards.push(Hazard::DataLoss);
                hazards.push(Hazard::TableRewrite);
            }
            _ => hazards.push(Hazard::TableRewrite),
        }
        let mut step = t.step(
            &format!(
                "column {} type {}{} -> {}{}",
                c.name,
                o.type_sql,
                collate(o),
                c.type_sql,
                collate(c)
            ),
            sql,
            hazards,
        );
        // What the existing values do to the conversion: a shorter string type cuts them (an
        // explicit cast never fails there); another narrowing may fail on them. A widening
        // cannot fail, and is not looked at.
        if !using.is_empty() {
            let column = c.name.clone();
            step.preflight = match shorter_string(&o.type_sql, &c.type_sql) {
                Some(length) => self.check(|table| Check::Truncates {
                    table,
                    column,
                    length,
                }),
                None if matches!(cost, Cost::Narrowing) => self.check(|table| Check::Converts {
                    table,
                    column,
                    to_type: c.type_sql.clone(),
                    via: via.map(str::to_string),
                }),
                None => Vec::new(),
            };
        }
        Ok(step)
    }

    fn not_null_steps(&self, c: &ColumnDef, out: &mut Out) {
        let t = self.table;
        let col = quote_ident(&c.name);
        if c.not_null && t.ctx.opts.online {
            // A validated CHECK (col IS NOT NULL) lets SET NOT NULL skip its scan, and the
            // validation itself only takes SHARE UPDATE EXCLUSIVE.
            let tmp = quote_ident(&truncate_identifier(&format!("pgalign_nn_{}", c.name)));
            out.steps.push(t.step(
                &format!(
                    "column {} becomes NOT NULL: a NOT VALID check first (--online)",
                    c.name
                ),
                t.sql(&format!(
                    "ADD CONSTRAINT {tmp} CHECK ({col} IS NOT NULL) NOT VALID"
                )),
                vec![],
            ));
            let mut v = t.step(
                &format!(
                    "column {}: validate the check without blocking writes (--online)",
                    c.name
                ),
                t.sql(&format!("VALIDATE CONSTRAINT {tmp}")),
                vec![],
            );
            v.own_transaction = true;
            v.preflight = self.check(|table| Check::Nulls {
                table,
                column: c.name.clone(),
            });
            // The helper commits before it is validated: should validation (NULLs) or the
            // SET NOT NULL below fail, it would stay, refusing new NULLs. Apply removes it.
            let remove_helper = t.sql(&format!("DROP CONSTRAINT IF EXISTS {tmp}"));
            v.on_failure_sql = Some(remove_helper.clone());
            out.steps.push(v);
            let mut n = t.step(
                &format!(
                    "column {} becomes NOT NULL, proven by the validated check (--online)",
                    c.name
                ),
                t.sql(&format!("ALTER COLUMN {col} SET NOT NULL"))
                    + &t.sql(&format!("DROP CONSTRAINT {tmp}")),
                vec![Hazard::AccessExclusiveLock],
            );
            n.own_transaction = true;
            n.on_failure_sql = Some(remove_helper);
            out.steps.push(n);
        } else if c.not_null {
            let mut step = t.step(
                &format!("column {} becomes NOT NULL", c.name),
                t.sql(&format!("ALTER COLUMN {col} SET NOT NULL")),
                vec![Hazard::ValidationScan, Hazard::AccessExclusiveLock],
            );
            step.preflight = self.check(|table| Check::Nulls {
                table,
                column: c.name.clone(),
            });
            out.steps.push(step);
        } else {
            out.steps.push(t.step(
                &format!("column {} becomes nullable", c.name),
                t.sql(&format!("ALTER COLUMN {col} DROP NOT NULL")),
                vec![],
            ));
        }
    }

    /// 18+: NOT NULL constraints have names; a partition inherits its parent's and keeps them
    /// when detached. pg_dump prints a name only when it is not the default.
    fn not_null_rename(&self, o: &ColumnDef, c: &ColumnDef, out: &mut Out) {
        let t = self.table;
        let new = self.new;
        let default = || format!("{}_{}_not_null", new.name, c.name);
        let from = o.not_null_name.clone().unwrap_or_else(default);
        let to = c.not_null_name.clone().unwrap_or_else(default);
        let named_target =
            o.not_null_name.is_some() || t.ctx.tgt.server_version.is_some_and(|m| m >= 18);
        if from == to || !named_target {
            return;
        }
        let rename = t.sql(&format!(
            "RENAME CONSTRAINT {} TO {}",
            quote_ident(&from),
            quote_ident(&to)
        ));
        let partition = (new.schema.clone(), new.name.clone());
        if t.ctx.src_rel.parent.contains_key(&partition) {
            out.problems.push(format!(
                "column {}: the NOT NULL constraint of a partition is named {} on TARGET and {} on SOURCE; an inherited constraint cannot be renamed",
                c.name, from, to
            ));
        } else if !self.old.columns.iter().any(|x| x.name == c.name) {
            // A column NO INHERIT made the table's own: its inherited NOT NULL is renamed only
            // after that step.
            out.steps.push(t.step(
                &format!(
                    "column {}: its NOT NULL constraint, inherited until now, is renamed",
                    c.name
                ),
                rename,
                vec![],
            ));
        } else {
            // After the drops (a detach gives it this name) and before the creates (a new
            // table's NOT NULL would otherwise pick another name to avoid this one).
            out.renames.push(t.step(
                &format!("column {}: its NOT NULL constraint is renamed", c.name),
                rename,
                vec![],
            ));
        }
    }

    fn added_column(&self, a: &AddedColumn, out: &mut Out) {
        let t = self.table;
        let c = a.column;
        if self.via_parent(&c.name) {
            return;
        }
        let mut hazards = vec![];
        // A serial's default or an identity, entries of their own in the dump, go into the
        // ADD COLUMN: added NOT NULL without them, the column fails on a table with rows.
        let folded = folded_default(t.ctx, self.new, c);
        let volatile = match &folded {
            Some(f) => f.volatile,
            None => c
                .default
                .as_deref()
                .is_some_and(|d| volatile_default(t.ctx, d)),
        };
        if c.generated.is_some() || volatile {
            hazards.push(Hazard::TableRewrite);
            hazards.push(Hazard::AccessExclusiveLock);
        }
        let mut reason = format!("column {} not in target", c.name);
        if let Some(f) = &folded {
            reason.push_str(f.why);
        }
        if let Some(o) = a.twin {
            hazards.push(Hazard::PossibleRename);
            reason.push_str(&format!(
                "; column {} of the same type is dropped: was it renamed? pgalign drops and adds",
                o.name
            ));
            // Two added columns may both match one dropped column: it is flagged once.
            for (_, i) in out.drop_steps.iter().filter(|(name, _)| *name == o.name) {
                let h = &mut out.steps[*i].hazards;
                if !h.contains(&Hazard::PossibleRename) {
                    h.push(Hazard::PossibleRename);
                }
            }
        }
        let no_default =
            c.not_null && c.default.is_none() && c.generated.is_none() && folded.is_none();
        if no_default {
            reason.push_str(" (NOT NULL without a default: fails if the table has rows)");
        }
        let text = match &folded {
            Some(f) => c.with_clause(&f.clause),
            None => c.text.clone(),
        };
        let mut step = t.step(&reason, t.sql(&format!("ADD COLUMN {text}")), hazards);
        if no_default {
            step.preflight = self.check(|table| Check::AnyRow {
                table,
                column: c.name.clone(),
            });
        }
        out.steps.push(step);
        if let Some(f) = folded {
            out.created_within.push(f.entry);
            out.created_before.extend(f.sequence);
        }
    }

    fn added_check(&self, k: &CheckChange, retyped: &[String], out: &mut Out) {
        let t = self.table;
        if Self::parents_check(t.ctx.src, self.parent.map(|p| &p.new), &k.check.name) {
            return;
        }
        let name = &k.check.name;
        // What TARGET's rows must satisfy, on the step that reads them: the ADD, or the
        // VALIDATE of the online form. A foreign table's are not here to read.
        let checks = if t.foreign {
            Vec::new()
        } else {
            preflight::for_table_check(t.block, name, self.old, retyped)
        };
        if t.ctx.opts.online {
            out.steps.push(t.step(
                &format!("check constraint {name} added NOT VALID, validated below (--online)"),
                t.sql(&format!("ADD {} NOT VALID", k.check.text)),
                vec![],
            ));
            let mut v = t.step(
                &format!("check constraint {name}: validate without blocking writes (--online)"),
                t.sql(&format!("VALIDATE CONSTRAINT {}", quote_ident(name))),
                vec![],
            );
            v.own_transaction = true;
            v.preflight = checks;
            out.steps.push(v);
        } else {
            let why = if k.differs {
                "differs"
            } else {
                "not in target"
            };
            let mut step = t.step(
                &format!("check constraint {name} {why}"),
                t.sql(&format!("ADD {}", k.check.text)),
                vec![Hazard::ValidationScan, Hazard::AccessExclusiveLock],
            );
            step.preflight = checks;
            out.steps.push(step);
        }
    }
}

enum Cost {
    /// Binary-coercible: no rewrite, no scan.
    Free,
    /// Every value fits, but the table is rewritten.
    Rewrite,
    /// Values may not fit: data can be lost or the change can fail.
    Narrowing,
}

/// What changing a column's type costs, for the common cases; anything unknown is a rewrite.
fn type_change_cost(old: &str, new: &str) -> Cost {
    let typmod = type_modifiers;
    for base in ["character varying", "bit varying"] {
        if let (Some(a), Some(b)) = (typmod(old, base), typmod(new, base)) {
            return match (a.first(), b.first()) {
                (_, None) => Cost::Free,
                (Some(x), Some(y)) if y >= x => Cost::Free,
                _ => Cost::Narrowing,
            };
        }
        if typmod(old, base).is_some() && new == "text" && base == "character varying" {
            return Cost::Free;
        }
    }
    if let (Some(a), Some(b)) = (typmod(old, "numeric"), typmod(new, "numeric")) {
        return match (a.as_slice(), b.as_slice()) {
            (_, []) => Cost::Free,
            ([p1, s1], [p2, s2]) if s1 == s2 && p2 >= p1 => Cost::Free,
            ([p1, s1], [p2, s2]) if p2 >= p1 && s2 >= s1 && p2 - s2 >= p1 - s1 => Cost::Rewrite,
            _ => Cost::Narrowing,
        };
    }
    let rank = |t: &str| match t {
        "smallint" => Some(1),
        "integer" => Some(2),
        "bigint" => Some(3),
        _ => None,
    };
    if let (Some(a), Some(b)) = (rank(old), rank(new)) {
        return if b >= a {
            Cost::Rewrite
        } else {
            Cost::Narrowing
        };
    }
    // varchar -> text is binary coercible; char(n) -> text is not (its cast strips the padding,
    // rtrim), so PostgreSQL rewrites the table: that falls to the rewrite below.
    if new == "text" && old == "character varying" {
        return Cost::Free;
    }
    if new == "text" || old.starts_with("timestamp") && new.starts_with("timestamp") {
        return Cost::Rewrite;
    }
    Cost::Narrowing
}

/// The length a string type change cuts values to: SOURCE's type is `character varying(n)` or
/// `character(n)`, TARGET's a string type without a limit or with a larger one. The cast
/// `USING col::type` cuts longer values without an error.
fn shorter_string(old: &str, new: &str) -> Option<u32> {
    let bases = ["character varying", "character"];
    let to = bases
        .iter()
        .find_map(|b| type_modifiers(new, b))
        .and_then(|m| m.first().copied())?;
    let from = if old == "text" {
        None
    } else {
        bases
            .iter()
            .find_map(|b| type_modifiers(old, b))?
            .first()
            .copied()
    };
    from.is_none_or(|n| n > to).then_some(to)
}

/// Marks a step that drops a column: what an inheritance parent drops runs after its leaving
/// child's steps (see `order::parents_change_after_no_inherit`).
fn drops_column(mut step: Step) -> Step {
    step.mark.role = Role::DropsColumn;
    step
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorter_strings() {
        assert_eq!(
            shorter_string("character varying(50)", "character varying(10)"),
            Some(10)
        );
        assert_eq!(shorter_string("text", "character varying(10)"), Some(10));
        assert_eq!(shorter_string("character varying", "character(3)"), Some(3));
        assert_eq!(
            shorter_string("character varying(10)", "character varying(50)"),
            None
        );
        assert_eq!(shorter_string("integer", "character varying(10)"), None);
        assert_eq!(shorter_string("character varying(10)", "text"), None);
    }

    #[test]
    fn costs() {
        // char(n) -> text runs rtrim over every row: the table is rewritten (seen on the server:
        // a new relfilenode); varchar -> text is binary coercible.
        assert!(matches!(
            type_change_cost("character(10)", "text"),
            Cost::Rewrite
        ));
        assert!(matches!(
            type_change_cost("character varying(10)", "text"),
            Cost::Free
        ));
        assert!(matches!(
            type_change_cost("character varying(10)", "character varying(50)"),
            Cost::Free
        ));
        assert!(matches!(
            type_change_cost("character varying(50)", "character varying(10)"),
            Cost::Narrowing
        ));
        assert!(matches!(
            type_change_cost("numeric(10,2)", "numeric(12,2)"),
            Cost::Free
        ));
        assert!(matches!(
            type_change_cost("numeric(10,2)", "numeric(12,4)"),
            Cost::Rewrite
        ));
        assert!(matches!(
            type_change_cost("integer", "bigint"),
            Cost::Rewrite
        ));
        assert!(matches!(
            type_change_cost("bigint", "integer"),
            Cost::Narrowing
        ));
        assert!(matches!(
            type_change_cost("text", "integer"),
            Cost::Narrowing
        ));
        assert!(matches!(type_change_cost("integer", "text"), Cost::Rewrite));
    }
}
