//! A table whose inheritance parents differ: `INHERIT` each new parent, then `NO INHERIT` each
//! old one, in one step that runs before the table's own column changes (and before the old
//! parents change columns: the step's mark, `Role::LeavesParents`, says so to the ordering).
//!
//! PostgreSQL cannot make a column or CHECK constraint of the table's own inherited-only again,
//! and INHERIT needs every column and CHECK constraint of the new parent already there: those
//! cases, and parents with CHECK constraints in entries of their own, are unsupported.

use super::diff::Parents;
use super::Table;
use crate::catalog::parse::{ColumnDef, TableConstraint};
use crate::catalog::{qualified, Catalog, Key, ObjectKind, TableDef};
use crate::plan::{Ctx, Hazard, Op, Relations, Role, Step};

/// What the change of parents takes.
pub(super) struct InheritanceChange {
    pub step: Step,
    /// Columns inherited only from parents that go: NO INHERIT makes them the table's own.
    pub becoming_own: Vec<ColumnDef>,
    /// CHECK constraints inherited only from parents that go: they become the table's own too.
    pub checks_becoming_own: Vec<TableConstraint>,
}

/// The step that moves table `new` (`old` on TARGET) from its old parents to its new ones, or
/// why pgalign does not.
pub(super) fn change(
    table: &Table,
    old: &TableDef,
    new: &TableDef,
    parents: &Parents,
) -> Result<InheritanceChange, String> {
    let ctx = table.ctx;
    separate_checks(ctx, parents)?;
    let inherited = Inherited::of(ctx, parents)?;
    inheritable(old, new, &inherited)?;
    let own = |c: &str| old.columns.iter().any(|x| x.name == c);
    let becoming_own: Vec<ColumnDef> = inherited
        .old
        .columns
        .iter()
        .filter(|c| !own(&c.name) && !inherited.still.has_column(&c.name))
        .map(|c| ColumnDef {
            text: String::new(),
            default: None,
            ..c.clone()
        })
        .collect();
    let checks_becoming_own: Vec<TableConstraint> = inherited
        .old
        .checks
        .iter()
        .filter(|k| {
            !old.constraints.iter().any(|x| x.name == k.name) && !inherited.still.has_check(&k.name)
        })
        .cloned()
        .collect();
    let mut sql = String::new();
    for p in &parents.added {
        sql.push_str(&table.sql(&format!("INHERIT {}", qualified(&p.0, &p.1))));
    }
    for p in &parents.removed {
        sql.push_str(&table.sql(&format!("NO INHERIT {}", qualified(&p.0, &p.1))));
    }
    let mut reason = "inheritance parents differ".to_string();
    if !becoming_own.is_empty() {
        let names: Vec<&str> = becoming_own.iter().map(|c| c.name.as_str()).collect();
        reason.push_str(&format!(
            "; column(s) {} stay as the table's own",
            names.join(", ")
        ));
    }
    if !checks_becoming_own.is_empty() {
        let names: Vec<&str> = checks_becoming_own
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        reason.push_str(&format!(
            "; CHECK constraint(s) {} stay as the table's own",
            names.join(", ")
        ));
    }
    let mut step = ctx.step(
        table.block,
        Op::Alter,
        &reason,
        sql,
        vec![Hazard::AccessExclusiveLock],
    );
    if !parents.removed.is_empty() {
        // The parents it leaves change their columns after this step, or the changes would
        // reach this table too.
        let table_key = |p: &(String, String)| Key {
            kind: ObjectKind::Table,
            schema: p.0.as_str().into(),
            name: p.1.as_str().into(),
        };
        step.mark.role =
            Role::LeavesParents(parents.removed.iter().map(|p| table_key(p)).collect());
    }
    Ok(InheritanceChange {
        step,
        becoming_own,
        checks_becoming_own,
    })
}

/// Refuses parents whose CHECK constraints are entries of their own (NOT VALID, or added
/// later): not followed here.
fn separate_checks(ctx: &Ctx, parents: &Parents) -> Result<(), String> {
    let separate = |cat: &Catalog, ps: &[&(String, String)]| {
        ps.iter()
            .find(|p| {
                cat.blocks.iter().any(|b| {
                    b.key.kind == ObjectKind::CheckConstraint
                        && b.key.schema == p.0
                        && b.key.name.starts_with(&format!("{} ", p.1))
                })
            })
            .map(|p| qualified(&p.0, &p.1))
    };
    match separate(ctx.src, &parents.added).or_else(|| separate(ctx.tgt, &parents.removed)) {
        Some(p) => Err(format!(
            "inheritance parents differ, and {p} has CHECK constraints of its own entries (NOT VALID or added later); pgalign does not move those yet"
        )),
        None => Ok(()),
    }
}

/// What the table inherits, before and after.
struct Inherited {
    /// From the parents it gains (SOURCE's definitions).
    from_added: Parts,
    /// From all its parents on TARGET.
    old: Parts,
    /// From all its parents on SOURCE.
    new: Parts,
    /// What stays inherited after the change: the new parents' and the kept ones'.
    still: Parts,
}

impl Inherited {
    fn of(ctx: &Ctx, parents: &Parents) -> Result<Inherited, String> {
        let parts = |cat: &Catalog, rel: &Relations, ps: &[&(String, String)]| {
            let mut out = Parts::default();
            for p in ps {
                let Some(t) = rel.tables.get(*p).and_then(|&i| cat.blocks[i].table()) else {
                    return Err(format!(
                        "inheritance parent {} is not a table pgalign can read",
                        qualified(&p.0, &p.1)
                    ));
                };
                out.add(cat, rel, t);
            }
            Ok(out)
        };
        let all_old: Vec<&(String, String)> = parents.old.iter().collect();
        let all_new: Vec<&(String, String)> = parents.new.iter().collect();
        let from_added = parts(ctx.src, &ctx.src_rel, &parents.added)?;
        let old = parts(ctx.tgt, &ctx.tgt_rel, &all_old)?;
        let new = parts(ctx.src, &ctx.src_rel, &all_new)?;
        let mut still = parts(ctx.tgt, &ctx.tgt_rel, &parents.kept)?;
        still.columns.extend(from_added.columns.iter().cloned());
        still.checks.extend(from_added.checks.iter().cloned());
        Ok(Inherited {
            from_added,
            old,
            new,
            still,
        })
    }
}

/// Refuses what INHERIT and NO INHERIT cannot do: INHERIT needs the new parents' columns on the
/// table already, of the same type, and their CHECK constraints inherited already (one of the
/// table's own would stay its own, which SOURCE does not have); a column of the table's own
/// cannot become inherited-only.
fn inheritable(old: &TableDef, new: &TableDef, inherited: &Inherited) -> Result<(), String> {
    let own = |c: &str| old.columns.iter().find(|x| x.name == c);
    for c in &inherited.from_added.columns {
        let have = own(&c.name).or_else(|| inherited.old.columns.iter().find(|x| x.name == c.name));
        match have {
            None => {
                return Err(format!(
                    "new inheritance parent's column {} is not in the table on TARGET; added here it would be the table's own, not inherited, so pgalign does not do it",
                    c.name
                ))
            }
            Some(h) if h.type_sql != c.type_sql || h.collate != c.collate => {
                return Err(format!(
                    "column {} has type {} on TARGET and its new inheritance parent has {}",
                    c.name, h.type_sql, c.type_sql
                ))
            }
            Some(_) => {}
        }
    }
    for k in &inherited.from_added.checks {
        let already = inherited.old.checks.iter().any(|x| x == k);
        if !already || old.constraints.iter().any(|x| x.name == k.name) {
            return Err(format!(
                "new inheritance parent's CHECK constraint {} is not inherited by the table on TARGET; PostgreSQL needs it there, and made here it would be the table's own",
                k.name
            ));
        }
    }
    for c in &inherited.new.columns {
        if !new.columns.iter().any(|x| x.name == c.name) && own(&c.name).is_some() {
            return Err(format!(
                "column {} is the table's own on TARGET and only inherited on SOURCE; PostgreSQL cannot make an own column inherited-only without rebuilding the table",
                c.name
            ));
        }
    }
    Ok(())
}

/// Every column and inline CHECK constraint a table has in `cat`: its own, then those it
/// inherits (depth-first, each once). On 18 and later an inherited NOT NULL constraint keeps the
/// name it has where the column is defined: each column carries that name.
#[derive(Default)]
struct Parts {
    columns: Vec<ColumnDef>,
    checks: Vec<TableConstraint>,
}

impl Parts {
    fn add(&mut self, cat: &Catalog, rel: &Relations, t: &TableDef) {
        self.add_at(cat, rel, t, 0);
    }
    fn add_at(&mut self, cat: &Catalog, rel: &Relations, t: &TableDef, depth: u32) {
        let named = cat.server_version.is_some_and(|m| m >= 18);
        for c in &t.columns {
            if !self.columns.iter().any(|x| x.name == c.name) {
                let mut c = c.clone();
                if named && c.not_null && c.not_null_name.is_none() {
                    c.not_null_name = Some(format!("{}_{}_not_null", t.name, c.name));
                }
                self.columns.push(c);
            }
        }
        for k in &t.constraints {
            if !self.checks.iter().any(|x| x.name == k.name) {
                self.checks.push(k.clone());
            }
        }
        if depth > 32 {
            return;
        }
        for p in &t.inherits {
            if let Some(pt) = rel.tables.get(p).and_then(|&i| cat.blocks[i].table()) {
                self.add_at(cat, rel, pt, depth + 1);
            }
        }
    }
    fn has_column(&self, name: &str) -> bool {
        self.columns.iter().any(|x| x.name == name)
    }
    fn has_check(&self, name: &str) -> bool {
        self.checks.iter().any(|x| x.name == name)
    }
}
