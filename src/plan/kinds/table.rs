//! Tables are altered in place, column by column, clause by clause. The one exception is a change
//! of partitioning (a table becoming partitioned, or no longer, or a new partition key), which
//! PostgreSQL cannot make in place: the table is dropped and created again with its dependents,
//! a data-loss hazard that apply refuses unless it is allowed.
//!
//! What differs is worked out first, from the two definitions alone (`diff`); each part is then
//! written as steps.

mod added;
mod diff;

use crate::catalog::parse::{
    quote_ident, table_setting, type_modifiers, ColumnDef, TableConstraint, TableSettingKind,
};
use crate::catalog::{qualified, Block, Catalog, Key, ObjectKind, TableDef};
use crate::plan::objects::Decision;
use crate::plan::{Ctx, Hazard, Op, Relations, Step};
use added::{folded_default, volatile_default};
use diff::{
    AddedColumn, CheckChange, Clauses, ColumnChange, ColumnsDiff, Generated, HeadChange, Parents,
    Storage, TableDiff,
};

/// How TARGET's table (block `ti`) is brought in line with SOURCE's (block `si`).
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
    let with_own;
    let mut diff = TableDiff::of(old, new, after_create(t), after_create(s));
    let table = Table::new(ctx, s, new);
    let mut out = Out::default();
    head(&table, &mut out, &diff, old, new);
    let (mut own_columns, mut own_checks) = (Vec::new(), Vec::new());
    match &diff.clauses {
        Clauses::Same { storage, parents } => {
            if let Some(p) = parents {
                match inheritance_change(&table, old, new, p) {
                    Ok(ch) => {
                        out.steps.push(ch.step);
                        own_columns = ch.becoming_own;
                        own_checks = ch.checks_becoming_own;
                        out.inherit_move = ch.moves;
                    }
                    Err(why) => out.problems.push(why),
                }
            }
            if let Some(st) = storage {
                out.steps.push(storage_step(&table, st));
            }
        }
        // Partitioning cannot be added, removed or changed in place: the table is dropped and
        // created again with its dependents (a data-loss hazard the user must allow).
        Clauses::Partitioning => return Decision::Recreate,
        Clauses::Other => out.problems.push(format!(
            "table clauses differ ({:?} vs {:?}): partitioning, inheritance and access method changes need the table rebuilt",
            old.tail_without_storage(),
            new.tail_without_storage()
        )),
    }
    // Columns and CHECK constraints inherited only from parents that go become the table's own
    // (NO INHERIT keeps them): from here on they are compared as ones TARGET has.
    if !own_columns.is_empty() || !own_checks.is_empty() {
        let mut t = old.clone();
        t.columns.append(&mut own_columns);
        t.constraints.append(&mut own_checks);
        with_own = t;
        diff.columns = ColumnsDiff::of(&with_own, new);
    }
    let parent = PartitionParent::of(ctx, new);
    let cols = Columns {
        table: &table,
        old,
        new,
        parent: parent.as_ref(),
    };
    cols.write(&diff.columns, &mut out);
    settings(&table, &mut out, &diff);

    if !out.problems.is_empty() {
        return Decision::Unsupported(out.problems.join("; "));
    }
    ctx.steps_drop.append(&mut out.early);
    ctx.steps_after_drops.append(&mut out.renames);
    ctx.created_within.append(&mut out.created_within);
    ctx.created_before
        .extend(out.created_before.into_iter().map(|q| (si, q)));
    ctx.inherit_moves.extend(out.inherit_move);
    Decision::Alter(out.steps, out.touched)
}

/// The statements of a table's entry after its CREATE TABLE.
fn after_create(b: &Block) -> &[String] {
    &b.stmts[1.min(b.stmts.len())..]
}

/// The table being altered: whose steps they are, and how its statements begin.
struct Table<'c, 'a> {
    ctx: &'c Ctx<'a>,
    /// SOURCE's block, whose steps they are.
    block: &'c Block,
    /// A foreign table is altered with ALTER FOREIGN TABLE (ALTER TABLE refuses it), and holds
    /// no rows here: its columns change without a rewrite and without losing data.
    foreign: bool,
    /// `ALTER TABLE s.t` or `ALTER FOREIGN TABLE s.t`.
    alter: String,
}

impl<'c, 'a> Table<'c, 'a> {
    fn new(ctx: &'c Ctx<'a>, block: &'c Block, def: &TableDef) -> Self {
        let foreign = block.key.kind == ObjectKind::ForeignTable;
        let keyword = if foreign {
            "ALTER FOREIGN TABLE"
        } else {
            "ALTER TABLE"
        };
        Table {
            ctx,
            block,
            foreign,
            alter: format!("{keyword} {}", qualified(&def.schema, &def.name)),
        }
    }
    fn step(&self, reason: &str, sql: String, hazards: Vec<Hazard>) -> Step {
        self.ctx.step(self.block, Op::Alter, reason, sql, hazards)
    }
    /// One statement altering the table: `ALTER TABLE s.t <action>;`.
    fn sql(&self, action: &str) -> String {
        format!("{} {action};\n", self.alter)
    }
}

/// What altering one table comes to, gathered part by part.
#[derive(Default)]
struct Out {
    steps: Vec<Step>,
    /// Columns dropped or retyped (views and rules over them are rebuilt).
    touched: Vec<String>,
    /// Why pgalign does not alter the table, when it does not.
    problems: Vec<String>,
    /// Steps that run with the drops, before anything is dropped.
    early: Vec<Step>,
    /// Steps that run after the drops, before the creates.
    renames: Vec<Step>,
    /// SOURCE entries taken into an ADD COLUMN, and sequences to create before it.
    created_within: Vec<usize>,
    created_before: Vec<usize>,
    /// The table's step object and the inheritance parents it leaves.
    inherit_move: Option<(String, Vec<String>)>,
    /// Each dropped column's step, by position in `steps`: a possible rename marks it.
    drop_steps: Vec<(String, usize)>,
}

/// The head: CREATE [UNLOGGED] TABLE name.
fn head(table: &Table, out: &mut Out, diff: &TableDiff, old: &TableDef, new: &TableDef) {
    match diff.head {
        None => {}
        Some(HeadChange::Persistence { unlogged }) => {
            let to = if unlogged { "UNLOGGED" } else { "LOGGED" };
            out.steps.push(table.step(
                &format!("table becomes {}", to.to_lowercase()),
                table.sql(&format!("SET {to}")),
                vec![Hazard::TableRewrite, Hazard::AccessExclusiveLock],
            ));
        }
        Some(HeadChange::Kind) => out.problems.push(format!(
            "table kind differs: {:?} vs {:?}",
            old.head, new.head
        )),
    }
}

/// PostgreSQL keeps storage parameters in the order they were set, and so does the dump: they
/// are all reset and set again in SOURCE's order.
fn storage_step(table: &Table, storage: &Storage) -> Step {
    let mut sql = String::new();
    if !storage.old.is_empty() {
        let list: Vec<&str> = storage.old.iter().map(|(k, _)| k.as_str()).collect();
        sql.push_str(&table.sql(&format!("RESET ({})", list.join(", "))));
    }
    let set: Vec<String> = storage
        .new
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !set.is_empty() {
        sql.push_str(&table.sql(&format!("SET ({})", set.join(", "))));
    }
    table.step(
        "storage parameters differ",
        sql,
        vec![Hazard::AccessExclusiveLock],
    )
}

/// Statements after CREATE TABLE (SET STATISTICS, REPLICA IDENTITY, ...): TARGET's that SOURCE
/// lacks are undone, SOURCE's that TARGET lacks are run.
fn settings(table: &Table, out: &mut Out, diff: &TableDiff) {
    for x in &diff.settings_dropped {
        match undo_setting(x) {
            Some(sql) => out
                .steps
                .push(table.step("table setting not in source", sql, vec![])),
            None => out.problems.push(format!("cannot undo `{x}`")),
        }
    }
    for x in &diff.settings_added {
        out.steps
            .push(table.step("table setting not in target", format!("{x};\n"), vec![]));
    }
}

/// The statement that undoes a setting of the table's entry (back to PostgreSQL's default).
fn undo_setting(stmt: &str) -> Option<String> {
    let setting = table_setting(stmt)?;
    let undo = match setting.kind {
        TableSettingKind::Statistics => "SET STATISTICS -1",
        TableSettingKind::ReplicaIdentity => "REPLICA IDENTITY DEFAULT",
        TableSettingKind::ForceRowLevelSecurity => "NO FORCE ROW LEVEL SECURITY",
        TableSettingKind::RowLevelSecurity => "DISABLE ROW LEVEL SECURITY",
        TableSettingKind::ClusterOn => "SET WITHOUT CLUSTER",
    };
    Some(format!("{} {undo};\n", setting.on))
}

/// A partition's parent, attached to the same parent on both sides: its TARGET and SOURCE
/// definitions. A partition's columns follow its parent's: a change made on the parent
/// reaches it.
struct PartitionParent {
    old: TableDef,
    new: TableDef,
}

impl PartitionParent {
    fn of(ctx: &Ctx, t: &TableDef) -> Option<PartitionParent> {
        let me = (t.schema.clone(), t.name.clone());
        let parent_in = |cat: &Catalog, rel: &Relations| {
            let p = rel.parent.get(&me)?;
            let i = *rel.tables.get(p)?;
            cat.blocks[i].table().cloned()
        };
        let (old, new) = (
            parent_in(ctx.tgt, &ctx.tgt_rel)?,
            parent_in(ctx.src, &ctx.src_rel)?,
        );
        (old.schema == new.schema && old.name == new.name).then_some(PartitionParent { old, new })
    }
}

/// What the change of parents takes.
struct InheritanceChange {
    step: Step,
    /// Columns inherited only from parents that go: NO INHERIT makes them the table's own.
    becoming_own: Vec<ColumnDef>,
    /// CHECK constraints inherited only from parents that go: they become the table's own too.
    checks_becoming_own: Vec<TableConstraint>,
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
    Ok(InheritanceChange {
        step: ctx.step(
            table.block,
            Op::Alter,
            &reason,
            sql,
            vec![Hazard::AccessExclusiveLock],
        ),
        becoming_own,
        checks_becoming_own,
        moves: moves(new, parents),
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

/// The table's step object and the parents it leaves, when it leaves any: their column changes
/// run after its NO INHERIT, or they would reach the table too.
fn moves(new: &TableDef, parents: &Parents) -> Option<(String, Vec<String>)> {
    if parents.removed.is_empty() {
        return None;
    }
    let table_key = |schema: &str, name: &str| {
        Key {
            kind: ObjectKind::Table,
            schema: schema.into(),
            name: name.into(),
        }
        .display()
    };
    let me = table_key(&new.schema, &new.name);
    let left = parents
        .removed
        .iter()
        .map(|p| table_key(&p.0, &p.1))
        .collect();
    Some((me, left))
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

/// What the column steps of one table need besides its diff. They write CHECK constraints that
/// go or change first (they may use dropped columns), then dropped columns in TARGET's order,
/// changed and added ones in SOURCE's (PostgreSQL appends added columns), new CHECK constraints
/// last.
struct Columns<'t, 'c, 'a> {
    table: &'t Table<'c, 'a>,
    /// TARGET's definition, as dumped (without the columns that NO INHERIT makes its own).
    old: &'t TableDef,
    new: &'t TableDef,
    /// For a partition, its parent.
    parent: Option<&'t PartitionParent>,
}

impl Columns<'_, '_, '_> {
    fn write(&self, diff: &ColumnsDiff, out: &mut Out) {
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
        for k in &diff.checks_added {
            self.added_check(k, out);
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
        out.steps.push(t.step(
            &format!("column {} not in source", c.name),
            t.sql(&format!("DROP COLUMN {}", quote_ident(&c.name))),
            if t.foreign {
                vec![Hazard::AccessExclusiveLock]
            } else {
                vec![Hazard::DataLoss, Hazard::AccessExclusiveLock]
            },
        ));
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
                    out.steps.push(t.step(
                        &format!("column {} generation expression differs; dropped and added again (it moves to the end of the table)", c.name),
                        t.sql(&format!("DROP COLUMN {col}")) + &t.sql(&format!("ADD COLUMN {}", c.text)),
                        vec![Hazard::TableRewrite, Hazard::AccessExclusiveLock],
                    ));
                    return;
                }
            }
        }
        if !via_parent && (ch.type_sql || ch.collation) {
            out.touched.push(c.name.clone());
            out.steps.push(self.type_step(ch));
        } else if ch.default {
            let col = quote_ident(&c.name);
            let sql = match &c.default {
                Some(d) => t.sql(&format!("ALTER COLUMN {col} SET DEFAULT {d}")),
                None => t.sql(&format!("ALTER COLUMN {col} DROP DEFAULT")),
            };
            let s = t.step(&format!("column {} default differs", c.name), sql, vec![]);
            if via_parent && c.default.is_none() {
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

    /// A new type or collation. The old default may not cast to the new type: it is dropped
    /// first, SOURCE's set after.
    fn type_step(&self, ch: &ColumnChange) -> Step {
        let t = self.table;
        let (o, c) = (ch.old, ch.new);
        let col = quote_ident(&c.name);
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
        // ALTER FOREIGN TABLE takes no USING: there are no local rows to convert.
        let using = if ch.type_sql && !t.foreign {
            format!(" USING {col}::{}", c.type_sql)
        } else {
            String::new()
        };
        sql.push_str(&t.sql(&format!(
            "ALTER COLUMN {col} TYPE {}{}{using}",
            c.type_sql,
            collate(c)
        )));
        if let Some(d) = &c.default {
            sql.push_str(&t.sql(&format!("ALTER COLUMN {col} SET DEFAULT {d}")));
        }
        let mut hazards = vec![Hazard::AccessExclusiveLock];
        match type_change_cost(&o.type_sql, &c.type_sql) {
            _ if t.foreign => {}
            Cost::Free if !ch.collation => {}
            Cost::Narrowing => {
                hazards.push(Hazard::DataLoss);
                hazards.push(Hazard::TableRewrite);
            }
            _ => hazards.push(Hazard::TableRewrite),
        }
        t.step(
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
        )
    }

    fn not_null_steps(&self, c: &ColumnDef, out: &mut Out) {
        let t = self.table;
        let col = quote_ident(&c.name);
        if c.not_null && t.ctx.opts.online {
            // A validated CHECK (col IS NOT NULL) lets SET NOT NULL skip its scan, and the
            // validation itself only takes SHARE UPDATE EXCLUSIVE.
            let tmp = quote_ident(&truncate63(&format!("pgalign_nn_{}", c.name)));
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
            out.steps.push(t.step(
                &format!("column {} becomes NOT NULL", c.name),
                t.sql(&format!("ALTER COLUMN {col} SET NOT NULL")),
                vec![Hazard::ValidationScan, Hazard::AccessExclusiveLock],
            ));
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
            for (_, i) in out.drop_steps.iter().filter(|(name, _)| *name == o.name) {
                out.steps[*i].hazards.push(Hazard::PossibleRename);
            }
        }
        if c.not_null && c.default.is_none() && c.generated.is_none() && folded.is_none() {
            reason.push_str(" (NOT NULL without a default: fails if the table has rows)");
        }
        let text = match &folded {
            Some(f) => c.with_clause(&f.clause),
            None => c.text.clone(),
        };
        out.steps
            .push(t.step(&reason, t.sql(&format!("ADD COLUMN {text}")), hazards));
        if let Some(f) = folded {
            out.created_within.push(f.entry);
            out.created_before.extend(f.sequence);
        }
    }

    fn added_check(&self, k: &CheckChange, out: &mut Out) {
        let t = self.table;
        if Self::parents_check(t.ctx.src, self.parent.map(|p| &p.new), &k.check.name) {
            return;
        }
        let name = &k.check.name;
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
            out.steps.push(v);
        } else {
            let why = if k.differs {
                "differs"
            } else {
                "not in target"
            };
            out.steps.push(t.step(
                &format!("check constraint {name} {why}"),
                t.sql(&format!("ADD {}", k.check.text)),
                vec![Hazard::ValidationScan, Hazard::AccessExclusiveLock],
            ));
        }
    }
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
