//! Tables are altered in place, column by column, clause by clause. The one exception is a change
//! of partitioning (a table becoming partitioned, or no longer, or a new partition key), which
//! PostgreSQL cannot make in place: the table is dropped and created again with its dependents,
//! a data-loss hazard that apply refuses unless it is allowed.

mod added;

use crate::catalog::parse::{quote_ident, ColumnDef};
use crate::catalog::qualified;
use crate::catalog::ObjectKind;
use crate::plan::objects::Decision;
use crate::plan::{Ctx, Hazard, Op, Step};
use added::{folded_default, volatile_default};
use std::collections::BTreeMap;

pub fn alter(ctx: &mut Ctx, si: usize, ti: usize) -> Decision {
    let (s, t) = (&ctx.src.blocks[si], &ctx.tgt.blocks[ti]);
    let (Some(new), Some(old)) = (s.table(), t.table()) else {
        return Decision::Unsupported("cannot parse the table definition".into());
    };
    if s.settings() != t.settings() {
        return Decision::Unsupported(
            "the table's tablespace or access method differs; moving a table rewrites it, do it by hand".into(),
        );
    }
    if (new.is_typed_or_partition || old.is_typed_or_partition) && new != old {
        return Decision::Unsupported(
            "a typed table (OF type) or partition changed its columns; pgalign does not alter those yet".into(),
        );
    }
    let name = qualified(&new.schema, &new.name);
    // A foreign table is altered with ALTER FOREIGN TABLE (ALTER TABLE refuses it), and holds
    // no rows here: its columns change without a rewrite and without losing data.
    let foreign = s.key.kind == ObjectKind::ForeignTable;
    let alter = if foreign {
        "ALTER FOREIGN TABLE"
    } else {
        "ALTER TABLE"
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut touched: Vec<String> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    // Steps that run with the drops, before anything is dropped.
    let mut early: Vec<Step> = Vec::new();
    let mut renames: Vec<Step> = Vec::new();
    // SOURCE entries taken into an ADD COLUMN, and sequences to create before it.
    let mut created_within: Vec<usize> = Vec::new();
    let mut created_before: Vec<usize> = Vec::new();
    let step = |reason: String, sql: String, hazards: Vec<Hazard>| {
        ctx.step(s, Op::Alter, &reason, sql, hazards)
    };

    // Head: CREATE [UNLOGGED] TABLE name.
    if old.head != new.head {
        if old.unlogged != new.unlogged && old.head_when_logged() == new.head_when_logged() {
            let to = if new.unlogged { "UNLOGGED" } else { "LOGGED" };
            steps.push(step(
                format!("table becomes {}", to.to_lowercase()),
                format!("{alter} {name} SET {to};\n"),
                vec![Hazard::TableRewrite, Hazard::AccessExclusiveLock],
            ));
        } else {
            problems.push(format!(
                "table kind differs: {:?} vs {:?}",
                old.head, new.head
            ));
        }
    }
    // Tail: storage parameters and inheritance parents change in place; partitioning cannot.
    let mut becoming_own: Vec<ColumnDef> = Vec::new();
    let mut checks_becoming_own = Vec::new();
    let mut inherit_move = None;
    if old.tail != new.tail {
        let same_clauses = old.partition_by == new.partition_by && old.rest == new.rest;
        if old.inherits != new.inherits && same_clauses {
            match inheritance_change(ctx, s, old, new, &old.inherits, &new.inherits) {
                Ok(ch) => {
                    steps.push(ch.step);
                    becoming_own = ch.becoming_own;
                    checks_becoming_own = ch.checks_becoming_own;
                    inherit_move = ch.moves;
                }
                Err(why) => problems.push(why),
            }
        }
        if old.storage == new.storage && same_clauses {
            // Only the parents differ: done above.
        } else if same_clauses {
            let mut sql = String::new();
            // PostgreSQL keeps parameters in the order they were set, and so does the dump:
            // reset them all and set them again in SOURCE's order.
            if !old.storage.is_empty() {
                let list: Vec<&str> = old.storage.iter().map(|(k, _)| k.as_str()).collect();
                sql.push_str(&format!("{alter} {name} RESET ({});\n", list.join(", ")));
            }
            let set: Vec<String> = new
                .storage
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if !set.is_empty() {
                sql.push_str(&format!("{alter} {name} SET ({});\n", set.join(", ")));
            }
            steps.push(step(
                "storage parameters differ".into(),
                sql,
                vec![Hazard::AccessExclusiveLock],
            ));
        } else if old.partition_by != new.partition_by
            && old.inherits == new.inherits
            && old.rest == new.rest
        {
            // Partitioning cannot be added, removed or changed in place: the table is dropped
            // and created again with its dependents (a data-loss hazard the user must allow).
            return Decision::Recreate;
        } else {
            problems.push(format!(
                "table clauses differ ({:?} vs {:?}): partitioning, inheritance and access method changes need the table rebuilt",
                old.tail_without_storage(),
                new.tail_without_storage()
            ));
        }
    }

    // A partition's columns follow its parent's: a change made on the parent reaches it.
    let parent_change = partition_parent_change(ctx, &new.schema, &new.name);
    let inherited = |col: &str| -> bool {
        let Some((po, pn)) = &parent_change else {
            return false;
        };
        // The column as the parent defines it; a partition's default is its own (pg_dump prints
        // it inline on the partition and as a separate entry on the parent), and so may be NOT
        // NULL.
        let shape = |t: &crate::catalog::TableDef| {
            t.columns.iter().find(|c| c.name == col).map(|c| {
                (
                    c.type_sql.clone(),
                    c.collate.clone(),
                    c.generated.clone(),
                    c.other.clone(),
                )
            })
        };
        shape(po) == shape(old) && shape(pn) == shape(new) && shape(po) != shape(pn)
    };
    // Columns and CHECK constraints inherited only from parents that go become the table's own
    // (NO INHERIT keeps them): from here on they are compared as ones TARGET has.
    let target_def = old;
    let with_own;
    let old = if becoming_own.is_empty() && checks_becoming_own.is_empty() {
        old
    } else {
        let mut t = old.clone();
        t.columns.append(&mut becoming_own);
        t.constraints.append(&mut checks_becoming_own);
        with_own = t;
        &with_own
    };
    let oldc: BTreeMap<&str, &ColumnDef> =
        old.columns.iter().map(|c| (c.name.as_str(), c)).collect();
    let newc: BTreeMap<&str, &ColumnDef> =
        new.columns.iter().map(|c| (c.name.as_str(), c)).collect();
    let oldk: BTreeMap<&str, &str> = old
        .constraints
        .iter()
        .map(|c| (c.name.as_str(), c.text.as_str()))
        .collect();
    let newk: BTreeMap<&str, &str> = new
        .constraints
        .iter()
        .map(|c| (c.name.as_str(), c.text.as_str()))
        .collect();

    // A partition's CHECK constraint of the same name as one on its parent is the parent's:
    // dropped and added there, it goes and comes here too (and cannot be dropped here alone).
    let parent_check =
        |cat: &crate::catalog::Catalog, parent: Option<&crate::catalog::TableDef>, cname: &str| {
            parent.is_some_and(|p| {
                p.constraints.iter().any(|k| k.name == cname)
                    || cat
                        .position(&crate::catalog::Key {
                            kind: ObjectKind::CheckConstraint,
                            schema: p.schema.as_str().into(),
                            name: compact_str::format_compact!("{} {cname}", p.name),
                        })
                        .is_some()
            })
        };
    let old_parent = parent_change.as_ref().map(|(po, _)| po);
    let new_parent = parent_change.as_ref().map(|(_, pn)| pn);
    // 1. Inline CHECK constraints that go or change: drop first, they may use dropped columns.
    for c in &old.constraints {
        if parent_check(ctx.tgt, old_parent, &c.name) {
            continue;
        }
        if newk.get(c.name.as_str()) != Some(&c.text.as_str()) {
            steps.push(step(
                format!(
                    "check constraint {} {}",
                    c.name,
                    if newk.contains_key(c.name.as_str()) {
                        "differs"
                    } else {
                        "not in source"
                    }
                ),
                format!("{alter} {name} DROP CONSTRAINT {};\n", quote_ident(&c.name)),
                vec![Hazard::AccessExclusiveLock],
            ));
        }
    }
    // 2. Dropped columns, in TARGET order.
    for c in &old.columns {
        if !newc.contains_key(c.name.as_str()) {
            touched.push(c.name.clone());
            if inherited(&c.name) {
                continue;
            }
            steps.push(step(
                format!("column {} not in source", c.name),
                format!("{alter} {name} DROP COLUMN {};\n", quote_ident(&c.name)),
                if foreign {
                    vec![Hazard::AccessExclusiveLock]
                } else {
                    vec![Hazard::DataLoss, Hazard::AccessExclusiveLock]
                },
            ));
        }
    }
    // 3. Changed columns, in SOURCE order.
    for c in &new.columns {
        let Some(o) = oldc.get(c.name.as_str()) else {
            continue;
        };
        // A partition's column that its parent changes: the parent's change (type, collation,
        // generation) reaches it; only its own default and NOT NULL are set here, and the NOT
        // NULL only when the parent's does not change the same way.
        let via_parent = inherited(&c.name);
        let parent_not_null = |t: &crate::catalog::TableDef| {
            t.columns
                .iter()
                .find(|x| x.name == c.name)
                .map(|x| x.not_null)
        };
        let not_null_via_parent = via_parent
            && parent_change
                .as_ref()
                .and_then(|(po, pn)| Some((parent_not_null(po)?, parent_not_null(pn)?)))
                == Some((o.not_null, c.not_null));
        if *o == c || (o.text == c.text) {
            continue;
        }
        let col = quote_ident(&c.name);
        if !via_parent && o.other != c.other {
            problems.push(format!(
                "column {}: clauses differ ({:?} vs {:?})",
                c.name, o.other, c.other
            ));
            continue;
        }
        if !via_parent && o.generated != c.generated {
            touched.push(c.name.clone());
            if c.generated.is_none() {
                steps.push(step(
                    format!("column {} is no longer generated", c.name),
                    format!("{alter} {name} ALTER COLUMN {col} DROP EXPRESSION;\n"),
                    vec![Hazard::AccessExclusiveLock],
                ));
                // Fall through for the remaining differences (type, default, NOT NULL).
            } else {
                // A generation expression cannot be changed in place before PostgreSQL 17:
                // the column is dropped and added again (it holds derived data only).
                steps.push(step(
                    format!("column {} generation expression differs; dropped and added again (it moves to the end of the table)", c.name),
                    format!("{alter} {name} DROP COLUMN {col};\n{alter} {name} ADD COLUMN {};\n", c.text),
                    vec![Hazard::TableRewrite, Hazard::AccessExclusiveLock],
                ));
                continue;
            }
        }
        let type_changed = !via_parent && (o.type_sql != c.type_sql || o.collate != c.collate);
        if type_changed {
            touched.push(c.name.clone());
            let mut sql = String::new();
            if o.default.is_some() {
                // The old default may not cast to the new type; it is set again below.
                sql.push_str(&format!(
                    "{alter} {name} ALTER COLUMN {col} DROP DEFAULT;\n"
                ));
            }
            let collate = c
                .collate
                .as_ref()
                .map(|x| format!(" COLLATE {x}"))
                .unwrap_or_default();
            // ALTER FOREIGN TABLE takes no USING: there are no local rows to convert.
            let using = if o.type_sql != c.type_sql && !foreign {
                format!(" USING {col}::{}", c.type_sql)
            } else {
                String::new()
            };
            sql.push_str(&format!(
                "{alter} {name} ALTER COLUMN {col} TYPE {}{collate}{using};\n",
                c.type_sql
            ));
            if let Some(d) = &c.default {
                sql.push_str(&format!(
                    "{alter} {name} ALTER COLUMN {col} SET DEFAULT {d};\n"
                ));
            }
            let mut hazards = vec![Hazard::AccessExclusiveLock];
            match type_change_cost(&o.type_sql, &c.type_sql) {
                _ if foreign => {}
                Cost::Free if o.collate == c.collate => {}
                Cost::Narrowing => {
                    hazards.push(Hazard::DataLoss);
                    hazards.push(Hazard::TableRewrite);
                }
                _ => hazards.push(Hazard::TableRewrite),
            }
            steps.push(step(
                format!(
                    "column {} type {}{} -> {}{}",
                    c.name,
                    o.type_sql,
                    o.collate
                        .as_ref()
                        .map(|x| format!(" COLLATE {x}"))
                        .unwrap_or_default(),
                    c.type_sql,
                    c.collate
                        .as_ref()
                        .map(|x| format!(" COLLATE {x}"))
                        .unwrap_or_default()
                ),
                sql,
                hazards,
            ));
        } else if o.default != c.default {
            let sql = match &c.default {
                Some(d) => format!("{alter} {name} ALTER COLUMN {col} SET DEFAULT {d};\n"),
                None => format!("{alter} {name} ALTER COLUMN {col} DROP DEFAULT;\n"),
            };
            let s = step(format!("column {} default differs", c.name), sql, vec![]);
            if via_parent && c.default.is_none() {
                // With the drops: a partition's own default may use a sequence dropped there.
                early.push(s);
            } else {
                steps.push(s);
            }
        }
        if o.not_null != c.not_null && !not_null_via_parent {
            if c.not_null && ctx.opts.online {
                // A validated CHECK (col IS NOT NULL) lets SET NOT NULL skip its scan, and the
                // validation itself only takes SHARE UPDATE EXCLUSIVE.
                let tmp = quote_ident(&truncate63(&format!("pgalign_nn_{}", c.name)));
                steps.push(step(
                    format!("column {} becomes NOT NULL: a NOT VALID check first (--online)", c.name),
                    format!("{alter} {name} ADD CONSTRAINT {tmp} CHECK ({col} IS NOT NULL) NOT VALID;\n"),
                    vec![],
                ));
                let mut v = step(
                    format!(
                        "column {}: validate the check without blocking writes (--online)",
                        c.name
                    ),
                    format!("{alter} {name} VALIDATE CONSTRAINT {tmp};\n"),
                    vec![],
                );
                v.own_transaction = true;
                // The helper commits before it is validated: should validation (NULLs) or the
                // SET NOT NULL below fail, it would stay, refusing new NULLs. Apply removes it.
                let remove_helper = format!("{alter} {name} DROP CONSTRAINT IF EXISTS {tmp};\n");
                v.on_failure_sql = Some(remove_helper.clone());
                steps.push(v);
                let mut n = step(
                    format!("column {} becomes NOT NULL, proven by the validated check (--online)", c.name),
                    format!("{alter} {name} ALTER COLUMN {col} SET NOT NULL;\n{alter} {name} DROP CONSTRAINT {tmp};\n"),
                    vec![Hazard::AccessExclusiveLock],
                );
                n.own_transaction = true;
                n.on_failure_sql = Some(remove_helper);
                steps.push(n);
            } else if c.not_null {
                steps.push(step(
                    format!("column {} becomes NOT NULL", c.name),
                    format!("{alter} {name} ALTER COLUMN {col} SET NOT NULL;\n"),
                    vec![Hazard::ValidationScan, Hazard::AccessExclusiveLock],
                ));
            } else {
                steps.push(step(
                    format!("column {} becomes nullable", c.name),
                    format!("{alter} {name} ALTER COLUMN {col} DROP NOT NULL;\n"),
                    vec![],
                ));
            }
        } else if !via_parent && c.not_null && o.not_null_name != c.not_null_name {
            // 18+: NOT NULL constraints have names; a partition inherits its parent's and keeps
            // them when detached. pg_dump prints a name only when it is not the default.
            let default = || format!("{}_{}_not_null", new.name, c.name);
            let from = o.not_null_name.clone().unwrap_or_else(default);
            let to = c.not_null_name.clone().unwrap_or_else(default);
            let named_target =
                o.not_null_name.is_some() || ctx.tgt.server_version.is_some_and(|m| m >= 18);
            if from != to && named_target {
                if ctx
                    .src_rel
                    .parent
                    .contains_key(&(new.schema.clone(), new.name.clone()))
                {
                    problems.push(format!(
                        "column {}: the NOT NULL constraint of a partition is named {} on TARGET and {} on SOURCE; an inherited constraint cannot be renamed",
                        c.name, from, to
                    ));
                } else if !target_def.columns.iter().any(|x| x.name == c.name) {
                    // A column NO INHERIT made the table's own: its inherited NOT NULL is
                    // renamed only after that step.
                    steps.push(step(
                        format!(
                            "column {}: its NOT NULL constraint, inherited until now, is renamed",
                            c.name
                        ),
                        format!(
                            "{alter} {name} RENAME CONSTRAINT {} TO {};\n",
                            quote_ident(&from),
                            quote_ident(&to)
                        ),
                        vec![],
                    ));
                } else {
                    // After the drops (a detach gives it this name) and before the creates (a
                    // new table's NOT NULL would otherwise pick another name to avoid this one).
                    renames.push(step(
                        format!("column {}: its NOT NULL constraint is renamed", c.name),
                        format!(
                            "{alter} {name} RENAME CONSTRAINT {} TO {};\n",
                            quote_ident(&from),
                            quote_ident(&to)
                        ),
                        vec![],
                    ));
                }
            }
        }
    }
    // 4. Added columns, in SOURCE order (PostgreSQL appends them).
    for c in &new.columns {
        if oldc.contains_key(c.name.as_str()) || inherited(&c.name) {
            continue;
        }
        let mut hazards = vec![];
        // A serial's default or an identity, entries of their own in the dump, go into the
        // ADD COLUMN: added NOT NULL without them, the column fails on a table with rows.
        let folded = folded_default(ctx, new, c);
        let volatile = match &folded {
            Some(f) => f.volatile,
            None => c
                .default
                .as_deref()
                .is_some_and(|d| volatile_default(ctx, d)),
        };
        if c.generated.is_some() || volatile {
            hazards.push(Hazard::TableRewrite);
            hazards.push(Hazard::AccessExclusiveLock);
        }
        let mut reason = format!("column {} not in target", c.name);
        if let Some(f) = &folded {
            reason.push_str(f.why);
        }
        // A column of the same type dropped from this table: maybe a rename, which pgalign
        // cannot tell from a drop and an add (and the drop loses the data).
        let twin = old.columns.iter().find(|o| {
            !newc.contains_key(o.name.as_str())
                && o.type_sql == c.type_sql
                && o.collate == c.collate
        });
        if let Some(o) = twin {
            hazards.push(Hazard::PossibleRename);
            reason.push_str(&format!(
                "; column {} of the same type is dropped: was it renamed? pgalign drops and adds",
                o.name
            ));
            for st in steps.iter_mut() {
                if st
                    .sql
                    .contains(&format!(" DROP COLUMN {};", quote_ident(&o.name)))
                {
                    st.hazards.push(Hazard::PossibleRename);
                }
            }
        }
        if c.not_null && c.default.is_none() && c.generated.is_none() && folded.is_none() {
            reason.push_str(" (NOT NULL without a default: fails if the table has rows)");
        }
        let text = match &folded {
            Some(f) => c.with_clause(&f.clause),
            None => c.text.clone(),
        };
        steps.push(step(
            reason,
            format!("{alter} {name} ADD COLUMN {text};\n"),
            hazards,
        ));
        if let Some(f) = folded {
            created_within.push(f.entry);
            created_before.extend(f.sequence);
        }
    }
    // 5. Inline CHECK constraints that are new or changed.
    for c in &new.constraints {
        if parent_check(ctx.src, new_parent, &c.name) {
            continue;
        }
        if oldk.get(c.name.as_str()) != Some(&c.text.as_str()) && ctx.opts.online {
            steps.push(step(
                format!(
                    "check constraint {} added NOT VALID, validated below (--online)",
                    c.name
                ),
                format!("{alter} {name} ADD {} NOT VALID;\n", c.text),
                vec![],
            ));
            let mut v = step(
                format!(
                    "check constraint {}: validate without blocking writes (--online)",
                    c.name
                ),
                format!(
                    "{alter} {name} VALIDATE CONSTRAINT {};\n",
                    quote_ident(&c.name)
                ),
                vec![],
            );
            v.own_transaction = true;
            steps.push(v);
        } else if oldk.get(c.name.as_str()) != Some(&c.text.as_str()) {
            steps.push(step(
                format!(
                    "check constraint {} {}",
                    c.name,
                    if oldk.contains_key(c.name.as_str()) {
                        "differs"
                    } else {
                        "not in target"
                    }
                ),
                format!("{alter} {name} ADD {};\n", c.text),
                vec![Hazard::ValidationScan, Hazard::AccessExclusiveLock],
            ));
        }
    }
    // 6. Statements after CREATE TABLE (SET STATISTICS, REPLICA IDENTITY, ...).
    let (oextra, nextra) = (
        &t.stmts[1.min(t.stmts.len())..],
        &s.stmts[1.min(s.stmts.len())..],
    );
    for x in oextra.iter().filter(|x| !nextra.contains(x)) {
        match undo_table_extra(x) {
            Some(sql) => steps.push(step("table setting not in source".into(), sql, vec![])),
            None => problems.push(format!("cannot undo `{x}`")),
        }
    }
    for x in nextra.iter().filter(|x| !oextra.contains(x)) {
        steps.push(step(
            "table setting not in target".into(),
            format!("{x};\n"),
            vec![],
        ));
    }

    if !problems.is_empty() {
        return Decision::Unsupported(problems.join("; "));
    }
    ctx.steps_drop.append(&mut early);
    ctx.steps_after_drops.append(&mut renames);
    ctx.created_within.append(&mut created_within);
    ctx.created_before
        .extend(created_before.into_iter().map(|q| (si, q)));
    ctx.inherit_moves.extend(inherit_move);
    Decision::Alter(steps, touched)
}

/// For a partition: its parent's table definitions in TARGET and SOURCE, when it is attached to
/// the same parent on both sides.
fn partition_parent_change(
    ctx: &Ctx,
    schema: &str,
    name: &str,
) -> Option<(crate::catalog::TableDef, crate::catalog::TableDef)> {
    let me = (schema.to_string(), name.to_string());
    let parent_in = |cat: &crate::catalog::Catalog, rel: &crate::plan::Relations| {
        let p = rel.parent.get(&me)?;
        let i = *rel.tables.get(p)?;
        cat.blocks[i].table().cloned()
    };
    let (po, pn) = (
        parent_in(ctx.tgt, &ctx.tgt_rel)?,
        parent_in(ctx.src, &ctx.src_rel)?,
    );
    (po.schema == pn.schema && po.name == pn.name).then_some((po, pn))
}

/// Every column and inline CHECK constraint a table has in `cat`: its own, then those it
/// inherits (depth-first, each once). On 18 and later an inherited NOT NULL constraint keeps the
/// name it has where the column is defined: each column carries that name.
#[derive(Default)]
struct Parts {
    columns: Vec<ColumnDef>,
    checks: Vec<crate::catalog::parse::TableConstraint>,
}

impl Parts {
    fn add(
        &mut self,
        cat: &crate::catalog::Catalog,
        rel: &crate::plan::Relations,
        t: &crate::catalog::TableDef,
    ) {
        self.add_at(cat, rel, t, 0);
    }
    fn add_at(
        &mut self,
        cat: &crate::catalog::Catalog,
        rel: &crate::plan::Relations,
        t: &crate::catalog::TableDef,
        depth: u32,
    ) {
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

/// What `inheritance_change` decided.
struct InheritanceChange {
    step: Step,
    /// Columns inherited only from parents that go: NO INHERIT makes them the table's own.
    becoming_own: Vec<ColumnDef>,
    /// CHECK constraints inherited only from parents that go: they become the table's own too.
    checks_becoming_own: Vec<crate::catalog::parse::TableConstraint>,
    /// The table's step object and the parents it leaves (for `ctx.inherit_moves`).
    moves: Option<(String, Vec<String>)>,
}

/// A table whose inheritance parents differ: `INHERIT` each new parent, then `NO INHERIT` each
/// old one, in one step that runs before the table's own column changes (and before the old
/// parents change columns: see `ctx.inherit_moves`).
///
/// PostgreSQL cannot make a column or CHECK constraint of the table's own inherited-only again,
/// and INHERIT needs every column and CHECK constraint of the new parent already there: those
/// cases, and parents with CHECK constraints in entries of their own, are unsupported.
fn inheritance_change(
    ctx: &Ctx,
    s: &crate::catalog::Block,
    old: &crate::catalog::TableDef,
    new: &crate::catalog::TableDef,
    oparents: &[(String, String)],
    nparents: &[(String, String)],
) -> Result<InheritanceChange, String> {
    let name = qualified(&new.schema, &new.name);
    let alter = if s.key.kind == ObjectKind::ForeignTable {
        "ALTER FOREIGN TABLE"
    } else {
        "ALTER TABLE"
    };
    let added: Vec<&(String, String)> = nparents.iter().filter(|p| !oparents.contains(p)).collect();
    let removed: Vec<&(String, String)> =
        oparents.iter().filter(|p| !nparents.contains(p)).collect();
    // Parents whose CHECK constraints are entries of their own (NOT VALID, or added later):
    // not followed here.
    let separate_checks = |cat: &crate::catalog::Catalog, ps: &[&(String, String)]| {
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
    if let Some(p) = separate_checks(ctx.src, &added).or_else(|| separate_checks(ctx.tgt, &removed))
    {
        return Err(format!(
            "inheritance parents differ, and {p} has CHECK constraints of its own entries (NOT VALID or added later); pgalign does not move those yet"
        ));
    }
    let parts = |cat: &crate::catalog::Catalog,
                 rel: &crate::plan::Relations,
                 ps: &[&(String, String)]|
     -> Result<Parts, String> {
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
    let kept: Vec<&(String, String)> = nparents.iter().filter(|p| oparents.contains(p)).collect();
    let all_old: Vec<&(String, String)> = oparents.iter().collect();
    let all_new: Vec<&(String, String)> = nparents.iter().collect();
    let from_added = parts(ctx.src, &ctx.src_rel, &added)?;
    let inherited_old = parts(ctx.tgt, &ctx.tgt_rel, &all_old)?;
    let inherited_new = parts(ctx.src, &ctx.src_rel, &all_new)?;
    // What stays inherited after the change: the new parents' and the kept ones'.
    let mut still = parts(ctx.tgt, &ctx.tgt_rel, &kept)?;
    still.columns.extend(from_added.columns.iter().cloned());
    still.checks.extend(from_added.checks.iter().cloned());
    let own = |c: &str| old.columns.iter().find(|x| x.name == c);
    // INHERIT needs the new parents' columns on the table already, of the same type.
    for c in &from_added.columns {
        let have = own(&c.name).or_else(|| inherited_old.columns.iter().find(|x| x.name == c.name));
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
    // ... and their CHECK constraints, inherited already (one of the table's own would stay its
    // own, which SOURCE does not have).
    for k in &from_added.checks {
        let inherited = inherited_old.checks.iter().any(|x| x == k);
        if !inherited || old.constraints.iter().any(|x| x.name == k.name) {
            return Err(format!(
                "new inheritance parent's CHECK constraint {} is not inherited by the table on TARGET; PostgreSQL needs it there, and made here it would be the table's own",
                k.name
            ));
        }
    }
    // A column of the table's own cannot become inherited-only.
    for c in &inherited_new.columns {
        if !new.columns.iter().any(|x| x.name == c.name) && own(&c.name).is_some() {
            return Err(format!(
                "column {} is the table's own on TARGET and only inherited on SOURCE; PostgreSQL cannot make an own column inherited-only without rebuilding the table",
                c.name
            ));
        }
    }
    let becoming_own: Vec<ColumnDef> = inherited_old
        .columns
        .iter()
        .filter(|c| own(&c.name).is_none() && !still.has_column(&c.name))
        .map(|c| ColumnDef {
            text: String::new(),
            default: None,
            ..c.clone()
        })
        .collect();
    let checks_becoming_own: Vec<crate::catalog::parse::TableConstraint> = inherited_old
        .checks
        .iter()
        .filter(|k| !old.constraints.iter().any(|x| x.name == k.name) && !still.has_check(&k.name))
        .cloned()
        .collect();
    let mut sql = String::new();
    for p in &added {
        sql.push_str(&format!(
            "{alter} {name} INHERIT {};
",
            qualified(&p.0, &p.1)
        ));
    }
    for p in &removed {
        sql.push_str(&format!(
            "{alter} {name} NO INHERIT {};
",
            qualified(&p.0, &p.1)
        ));
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
    let mut moves = None;
    if !removed.is_empty() {
        let me = crate::catalog::Key {
            kind: ObjectKind::Table,
            schema: new.schema.as_str().into(),
            name: new.name.as_str().into(),
        }
        .display();
        let parents = removed
            .iter()
            .map(|p| {
                crate::catalog::Key {
                    kind: ObjectKind::Table,
                    schema: p.0.as_str().into(),
                    name: p.1.as_str().into(),
                }
                .display()
            })
            .collect();
        moves = Some((me, parents));
    }
    let st = ctx.step(
        s,
        Op::Alter,
        &reason,
        sql,
        vec![Hazard::AccessExclusiveLock],
    );
    Ok(InheritanceChange {
        step: st,
        becoming_own,
        checks_becoming_own,
        moves,
    })
}

/// PostgreSQL truncates identifiers to 63 bytes; do it ourselves so the name we use is the one
/// it keeps.
fn truncate63(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        if out.len() + ch.len_utf8() > 63 {
            break;
        }
        out.push(ch);
    }
    out
}

/// The statement that undoes a setting of the table's entry (back to PostgreSQL's default).
fn undo_table_extra(stmt: &str) -> Option<String> {
    use crate::catalog::parse::TableSettingKind as Kind;
    let setting = crate::catalog::parse::table_setting(stmt)?;
    let undo = match setting.kind {
        Kind::Statistics => "SET STATISTICS -1",
        Kind::ReplicaIdentity => "REPLICA IDENTITY DEFAULT",
        Kind::ForceRowLevelSecurity => "NO FORCE ROW LEVEL SECURITY",
        Kind::RowLevelSecurity => "DISABLE ROW LEVEL SECURITY",
        Kind::ClusterOn => "SET WITHOUT CLUSTER",
    };
    Some(format!("{} {undo};\n", setting.on))
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
    let typmod = crate::catalog::parse::type_modifiers;
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
    if new == "text" && (old == "character varying" || old.starts_with("character(")) {
        return Cost::Free;
    }
    if new == "text" || old.starts_with("timestamp") && new.starts_with("timestamp") {
        return Cost::Rewrite;
    }
    Cost::Narrowing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs() {
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
