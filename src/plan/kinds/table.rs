//! Tables are altered in place, column by column, clause by clause. The one exception is a change
//! of partitioning (a table becoming partitioned, or no longer, or a new partition key), which
//! PostgreSQL cannot make in place: the table is dropped and created again with its dependents,
//! a data-loss hazard that apply refuses unless it is allowed.
//!
//! What differs is worked out first, from the two definitions alone (`diff`); each part is then
//! written as steps: the head and clauses here, parents in `inherit`, columns and CHECK
//! constraints in `columns`.

mod added;
mod columns;
mod diff;
mod inherit;

use super::{Altered, Decision};
use crate::catalog::parse::{quote_ident, table_setting, TableSettingKind};
use crate::catalog::{qualified, Block, Catalog, ObjectKind, TableDef};
use crate::plan::{Ctx, Hazard, Op, Relations, Step};
use diff::{Clauses, ColumnsDiff, HeadChange, Storage, TableDiff};

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
                match inherit::change(&table, old, new, p) {
                    Ok(ch) => {
                        out.steps.push(ch.step);
                        own_columns = ch.becoming_own;
                        own_checks = ch.checks_becoming_own;
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
    let cols = columns::Columns {
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
    Decision::alter(Altered {
        steps: out.steps,
        columns: out.touched,
        early: out.early,
        after_drops: out.renames,
        created_within: out.created_within,
        created_before: out.created_before,
        ..Altered::default()
    })
}

/// For a table the plan creates: `DROP DEFAULT` on each column whose default in its CREATE TABLE
/// is pg_dump's "no default of its own" marker, which the CREATE TABLE, run as written, may have
/// stored as a typed null (see `is_no_default_marker`).
pub(super) fn without_marked_defaults(b: &Block) -> String {
    let Some(def) = b.table() else {
        return String::new();
    };
    let table = Table::alter_keyword(b, def, true);
    def.columns
        .iter()
        .filter(|c| c.has_no_default_marker())
        .map(|c| {
            format!(
                "{table} ALTER COLUMN {} DROP DEFAULT;\n",
                quote_ident(&c.name)
            )
        })
        .collect()
}

/// The statements of a table's entry after its CREATE TABLE.
fn after_create(b: &Block) -> &[Box<str>] {
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
    /// The same with ONLY (`ALTER TABLE ONLY s.t`).
    alter_only: String,
    /// SOURCE's definition.
    def: &'c TableDef,
    /// Whether the table has partitions or inheritance children, asked once when needed.
    children: std::cell::OnceCell<bool>,
}

impl<'c, 'a> Table<'c, 'a> {
    fn new(ctx: &'c Ctx<'a>, block: &'c Block, def: &'c TableDef) -> Self {
        Table {
            ctx,
            block,
            foreign: block.key.kind == ObjectKind::ForeignTable,
            alter: Table::alter_keyword(block, def, false),
            alter_only: Table::alter_keyword(block, def, true),
            def,
            children: std::cell::OnceCell::new(),
        }
    }
    /// `ALTER [FOREIGN] TABLE [ONLY] s.t`: a foreign table is altered with ALTER FOREIGN TABLE
    /// (ALTER TABLE refuses it).
    fn alter_keyword(block: &Block, def: &TableDef, only: bool) -> String {
        let keyword = if block.key.kind == ObjectKind::ForeignTable {
            "ALTER FOREIGN TABLE"
        } else {
            "ALTER TABLE"
        };
        let only = if only { " ONLY" } else { "" };
        format!("{keyword}{only} {}", qualified(&def.schema, &def.name))
    }
    fn step(&self, reason: &str, sql: String, hazards: Vec<Hazard>) -> Step {
        self.ctx.step(self.block, Op::Alter, reason, sql, hazards)
    }
    /// One statement altering the table: `ALTER TABLE s.t <action>;`.
    fn sql(&self, action: &str) -> String {
        format!("{} {action};\n", self.alter)
    }
    /// A statement that must not reach partitions or inheritance children (a default: each of
    /// those has its own, set by its own step): `ALTER TABLE ONLY s.t <action>;` on a table
    /// that has them, else as `sql`.
    fn sql_here_only(&self, action: &str) -> String {
        let children = *self
            .children
            .get_or_init(|| added::has_children(self.ctx, self.def));
        if children {
            format!("{} {action};\n", self.alter_only)
        } else {
            self.sql(action)
        }
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
    // A dropped column's statistics target goes with the column: undoing it after the DROP
    // COLUMN would fail ("column does not exist").
    let of_dropped_column = |stmt: &str| {
        table_setting(stmt).is_some_and(|s| {
            s.kind == TableSettingKind::Statistics
                && diff.columns.dropped.iter().any(|c| {
                    s.on.ends_with(&format!(" ALTER COLUMN {}", quote_ident(&c.name)))
                })
        })
    };
    for x in &diff.settings_dropped {
        if of_dropped_column(x) {
            continue;
        }
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
