//! Turns differences into ordered Steps, each with its SQL, hazards and timeouts. Pure.
//!
//! Order: drops walk TARGET's dump order backwards (pg_dump's order is a valid creation order, so
//! its reverse is a valid drop order); creates and alters walk SOURCE's dump order forwards.
//! Objects that must be dropped and created again pull their dependents (by pg_dump's own
//! dependency graph) along with them.

mod acl;
mod compat;
mod kinds;
mod objects;
mod online;

use crate::catalog::ObjectKind;
use crate::catalog::{Block, Catalog, Filter, Key};
use crate::diff::{ChangeKind, Diff};
use crate::duration::Millis;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

pub use objects::identity_of;

/// What can go wrong when a step runs on a production database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hazard {
    /// Rows or objects with data are removed.
    DataLoss,
    /// The table is rewritten (time and disk proportional to its size).
    TableRewrite,
    /// An ACCESS EXCLUSIVE lock on an existing table: reads and writes wait.
    AccessExclusiveLock,
    /// An index is built without CONCURRENTLY on an existing table: writes wait.
    IndexBuild,
    /// Every row is read to validate a constraint.
    ValidationScan,
    /// A type is dropped and rebuilt.
    TypeRebuild,
    /// Something dropped and something alike created: maybe a rename.
    PossibleRename,
    /// pgalign cannot make this change yet.
    Unsupported,
}

impl Hazard {
    pub const ALL: [Hazard; 8] = [
        Hazard::DataLoss,
        Hazard::TableRewrite,
        Hazard::AccessExclusiveLock,
        Hazard::IndexBuild,
        Hazard::ValidationScan,
        Hazard::TypeRebuild,
        Hazard::PossibleRename,
        Hazard::Unsupported,
    ];
    pub fn name(self) -> &'static str {
        match self {
            Hazard::DataLoss => "data-loss",
            Hazard::TableRewrite => "table-rewrite",
            Hazard::AccessExclusiveLock => "access-exclusive-lock",
            Hazard::IndexBuild => "index-build",
            Hazard::ValidationScan => "validation-scan",
            Hazard::TypeRebuild => "type-rebuild",
            Hazard::PossibleRename => "possible-rename",
            Hazard::Unsupported => "unsupported",
        }
    }
    pub fn parse(s: &str) -> Option<Hazard> {
        Hazard::ALL.into_iter().find(|h| h.name() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Drop,
    Alter,
    Replace,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Create => "create",
            Op::Drop => "drop",
            Op::Alter => "alter",
            Op::Replace => "replace",
        }
    }
}

/// One unit of change: SQL plus everything a renderer or apply needs to know about it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Step {
    /// Who is changed, as people read it: `table public.orders`.
    pub object: String,
    /// pg_dump's type of the object (`TABLE`, `INDEX`, ...).
    pub kind: ObjectKind,
    pub op: Op,
    /// Why: which difference this step resolves.
    pub reason: String,
    /// One or more statements, each ending with a semicolon.
    pub sql: String,
    pub hazards: Vec<Hazard>,
    /// `lock_timeout` for this step, e.g. `10s`.
    pub lock_timeout: Millis,
    /// `statement_timeout` for this step, `0` for none.
    pub statement_timeout: Millis,
    /// False for statements PostgreSQL refuses inside a transaction block
    /// (`CREATE INDEX CONCURRENTLY`): they run on their own, in autocommit.
    pub transactional: bool,
    /// Runs in a transaction of its own, after what precedes it has committed (a VALIDATE that
    /// should not hold the first transaction's locks while it scans).
    #[serde(default)]
    pub own_transaction: bool,
    /// For a concurrent index build: the index (as SQL) that an interrupted earlier build may
    /// have left INVALID; apply drops such a leftover before building.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces_invalid_index: Option<String>,
    /// SQL that removes what a committed earlier step left for this one (the NOT VALID helper
    /// CHECK of an online SET NOT NULL, which otherwise stays, enforcing): apply runs it, in
    /// autocommit, when this step's group fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure_sql: Option<String>,
}

impl Step {
    /// Whether this step shares the main transaction with its neighbours.
    pub fn shares_transaction(&self) -> bool {
        self.transactional && !self.own_transaction
    }
}

/// A change pgalign cannot make yet: never silently skipped.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Unsupported {
    pub object: String,
    pub reason: String,
    pub target_sql: Option<String>,
    pub source_sql: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Plan {
    /// Version of this file's layout.
    pub format: u32,
    /// The pgalign that made the plan: apply runs only plans made by its own version.
    #[serde(default)]
    pub pgalign_version: String,
    /// SHA-256 over everything else in the plan (steps, SQL, hazards, timeouts, groups, both
    /// fingerprints, the version): `apply --plan` refuses a plan edited after it was written.
    #[serde(default)]
    pub digest: String,
    /// Fingerprint of TARGET's schema when the plan was made: apply refuses any other.
    pub target_fingerprint: String,
    /// Fingerprint of SOURCE's schema: what TARGET's must be after apply.
    pub source_fingerprint: String,
    /// What the catalogs kept (schemas, owners, privileges), so apply reads TARGET the same way.
    pub filter: Filter,
    pub steps: Vec<Step>,
    pub unsupported: Vec<Unsupported>,
    /// Differences that need no step (column order).
    pub notes: Vec<String>,
}

/// How a run of steps is executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKind {
    /// One transaction for all of them.
    Transaction,
    /// No transaction: a statement PostgreSQL refuses inside one.
    Autocommit,
}

/// A run of consecutive steps executed together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub kind: GroupKind,
    pub steps: std::ops::Range<usize>,
}

impl Plan {
    /// Steps in execution groups: consecutive shared steps in one transaction; a step with
    /// `own_transaction` starts a new one; non-transactional steps run alone.
    pub fn groups(&self) -> Vec<Group> {
        let mut out: Vec<Group> = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            let joins = s.shares_transaction()
                && out.last().is_some_and(|g| {
                    g.kind == GroupKind::Transaction
                        && g.steps.end == i
                        && self.steps[g.steps.start].shares_transaction()
                });
            if joins {
                out.last_mut().unwrap().steps.end = i + 1;
            } else {
                out.push(Group {
                    kind: if s.transactional {
                        GroupKind::Transaction
                    } else {
                        GroupKind::Autocommit
                    },
                    steps: i..i + 1,
                });
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.unsupported.is_empty()
    }

    /// The digest of everything but the digest itself: the plan's JSON with `digest` empty.
    pub fn compute_digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut unsealed = self.clone();
        unsealed.digest.clear();
        let json = serde_json::to_vec(&unsealed).unwrap_or_default();
        let hash = Sha256::digest(&json);
        hash.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Records this pgalign's version and the digest; done once the plan is complete.
    pub fn seal(&mut self) {
        self.pgalign_version = env!("CARGO_PKG_VERSION").to_string();
        self.digest = self.compute_digest();
    }

    /// Why a plan read from a file must not run: edited after it was written, or written by
    /// another pgalign. None when it is as pgalign wrote it.
    pub fn tampered(&self) -> Option<String> {
        if self.digest != self.compute_digest() {
            return Some(
                "was changed after pgalign wrote it (its digest does not match its content)".into(),
            );
        }
        let ours = env!("CARGO_PKG_VERSION");
        if self.pgalign_version != ours {
            return Some(format!(
                "was made by pgalign {:?}, this is pgalign {ours}",
                self.pgalign_version.chars().take(40).collect::<String>()
            ));
        }
        None
    }
    pub fn hazards(&self) -> BTreeSet<Hazard> {
        self.steps
            .iter()
            .flat_map(|s| s.hazards.iter().copied())
            .collect()
    }
}

/// Settings that shape every step.
#[derive(Debug, Clone)]
pub struct Options {
    pub lock_timeout: Millis,
    pub statement_timeout: Millis,
    /// Rewrite steps on existing tables into their low-lock forms.
    pub online: bool,
    pub filter: Filter,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            lock_timeout: Millis::from_secs(10),
            statement_timeout: Millis::ZERO,
            online: false,
            filter: Filter::default(),
        }
    }
}

/// The layout version written into plan files.
pub const PLAN_FORMAT: u32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Act {
    Keep,
    Drop,
    Create,
    /// Dropped (TARGET side) and created again (SOURCE side).
    Recreate,
    Alter,
}

/// What the planner works with while it decides.
pub(crate) struct Ctx<'a> {
    pub src: &'a Catalog,
    pub tgt: &'a Catalog,
    pub opts: &'a Options,
    pub steps_drop: Vec<Step>,
    /// Steps that run after every drop and before the first create (renames that free a name
    /// a create needs, on a partition detached by the drops).
    pub steps_after_drops: Vec<Step>,
    /// TARGET objects rebuilt by an alter (an enum): their dependents are dropped before and
    /// created again after.
    pub rebuild_dependents: Vec<usize>,
    /// Columns of TARGET tables whose type an alter of another object changes (an enum's
    /// rebuild): views and rules over them are rebuilt.
    pub touched_elsewhere: Vec<(usize, Vec<String>)>,
    pub unsupported: Vec<Unsupported>,
    /// A table leaving inheritance parents (its step's object) and those parents: their column
    /// changes run after its NO INHERIT, or they would reach the table too.
    pub inherit_moves: Vec<(String, Vec<String>)>,
    /// SOURCE blocks whose creation a step of another object makes (a serial column's DEFAULT
    /// entry, an identity column's sequence, taken into the column's ADD COLUMN): not created
    /// on their own.
    pub created_within: Vec<usize>,
    /// (SOURCE table block, SOURCE block): the second is created before the first's alter
    /// steps when the plan creates it (a serial column's sequence, which its ADD COLUMN uses).
    pub created_before: Vec<(usize, usize)>,
    /// Lookups built once: tables by (schema, name), and each partition's parent.
    pub src_rel: Relations,
    pub tgt_rel: Relations,
}

/// A catalog's tables by (schema, name), and each partition's parent, built once per plan so
/// that per-object questions stay cheap on schemas of many thousand tables.
#[derive(Default)]
pub(crate) struct Relations {
    pub tables: HashMap<(String, String), usize>,
    pub parent: HashMap<(String, String), (String, String)>,
    /// Index attached to a partitioned index -> that index (`ALTER INDEX p ATTACH PARTITION c`).
    pub index_parent: HashMap<(String, String), (String, String)>,
    /// The DEFAULT ACL blocks, in catalog order.
    pub default_acls: Vec<usize>,
    /// The FUNCTION blocks, in catalog order.
    pub functions: Vec<usize>,
    /// Identity columns (schema, table, column) -> their sequence's block (`ALTER TABLE ...
    /// ADD GENERATED ... AS IDENTITY`).
    pub identities: HashMap<(String, String, String), usize>,
}

impl Relations {
    fn of(cat: &Catalog) -> Relations {
        let mut r = Relations::default();
        for (i, b) in cat.blocks.iter().enumerate() {
            // A table's key names it as its CREATE TABLE does; no need to parse it here.
            let creates_table = matches!(b.key.kind, ObjectKind::Table | ObjectKind::ForeignTable)
                && b.stmts.first().is_some_and(|s| s.starts_with("CREATE "));
            if creates_table {
                r.tables
                    .insert((b.key.schema.to_string(), b.key.name.to_string()), i);
            } else if b.key.kind == ObjectKind::TableAttach {
                if let Some((parent, child)) =
                    b.stmts.first().and_then(|s| objects::attach_parts(s))
                {
                    r.parent.insert(child, parent);
                }
            } else if b.key.kind == ObjectKind::DefaultAcl {
                r.default_acls.push(i);
            } else if b.key.kind == ObjectKind::Function {
                r.functions.push(i);
            } else if b.key.kind == ObjectKind::Sequence
                && b.stmts
                    .first()
                    .is_some_and(|s| s.starts_with("ALTER TABLE"))
            {
                if let Some(((sch, tab), col, _)) =
                    b.stmts.first().and_then(|s| objects::identity_parts(s))
                {
                    r.identities.insert((sch, tab, col), i);
                }
            } else if b.key.kind == ObjectKind::IndexAttach {
                if let Some((parent, child)) =
                    b.stmts.first().and_then(|s| objects::attach_parts(s))
                {
                    r.index_parent.insert(child, parent);
                }
            }
        }
        r
    }
}

impl Ctx<'_> {
    pub fn step(&self, b: &Block, op: Op, reason: &str, sql: String, hazards: Vec<Hazard>) -> Step {
        let mut hazards = hazards;
        hazards.sort();
        hazards.dedup();
        Step {
            object: b.key.display(),
            kind: b.key.kind.clone(),
            op,
            reason: reason.to_string(),
            sql,
            hazards,
            lock_timeout: self.opts.lock_timeout,
            statement_timeout: self.opts.statement_timeout,
            transactional: true,
            own_transaction: false,
            replaces_invalid_index: None,
            on_failure_sql: None,
        }
    }
    pub fn unsupported(&mut self, key: &Key, reason: String, t: Option<&Block>, s: Option<&Block>) {
        self.unsupported.push(Unsupported {
            object: key.display(),
            reason,
            target_sql: t.map(|b| b.sql()),
            source_sql: s.map(|b| b.sql()),
        });
    }
}

/// Plans the change that makes TARGET equal SOURCE.
pub fn plan(src: &Catalog, tgt: &Catalog, diff: &Diff, opts: &Options) -> Plan {
    // The two fingerprints hash every block of both schemas: on threads of their own while the
    // steps are planned (a fifth of the run at 10,000 tables otherwise).
    std::thread::scope(|scope| {
        let tf = scope.spawn(|| tgt.fingerprint());
        let sf = scope.spawn(|| src.fingerprint());
        let mut p = plan_steps(src, tgt, diff, opts);
        let join = |h: std::thread::ScopedJoinHandle<'_, String>| {
            h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
        };
        p.target_fingerprint = join(tf);
        p.source_fingerprint = join(sf);
        p.seal();
        p
    })
}

fn plan_steps(src: &Catalog, tgt: &Catalog, diff: &Diff, opts: &Options) -> Plan {
    let mut sact = vec![Act::Keep; src.blocks.len()];
    let mut tact = vec![Act::Keep; tgt.blocks.len()];
    let mut ctx = Ctx {
        src,
        tgt,
        opts,
        steps_drop: Vec::new(),
        steps_after_drops: Vec::new(),
        rebuild_dependents: Vec::new(),
        touched_elsewhere: Vec::new(),
        unsupported: Vec::new(),
        inherit_moves: Vec::new(),
        created_within: Vec::new(),
        created_before: Vec::new(),
        src_rel: Relations::of(src),
        tgt_rel: Relations::of(tgt),
    };
    // Alter steps decided per changed object, attached to the SOURCE block they belong to.
    let mut alters: Vec<(usize, Vec<Step>)> = Vec::new();
    // Columns dropped or retyped per TARGET table: their dependents are rebuilt.
    let mut touched_columns: Vec<(usize, Vec<String>)> = Vec::new();

    for ch in &diff.changes {
        match ch.kind {
            ChangeKind::Created => sact[ch.source.unwrap()] = Act::Create,
            ChangeKind::Dropped => tact[ch.target.unwrap()] = Act::Drop,
            ChangeKind::Changed => {
                let (si, ti) = (ch.source.unwrap(), ch.target.unwrap());
                match objects::alter(&mut ctx, si, ti) {
                    objects::Decision::Alter(steps, columns) => {
                        sact[si] = Act::Alter;
                        tact[ti] = Act::Alter;
                        alters.push((si, steps));
                        if !columns.is_empty() {
                            touched_columns.push((ti, columns));
                        }
                    }
                    objects::Decision::Recreate => {
                        sact[si] = Act::Recreate;
                        tact[ti] = Act::Recreate;
                    }
                    objects::Decision::Unsupported(reason) => {
                        let (s, t) = (&src.blocks[si], &tgt.blocks[ti]);
                        ctx.unsupported(&s.key, reason, Some(t), Some(s));
                    }
                }
            }
        }
    }

    // Dependents of what is dropped and created again must go first and come back after.
    // (Dependents of what is dropped for good have changed too, or they could not stay.)
    let deps = tgt.dependents();
    let mut work: Vec<usize> = (0..tgt.blocks.len())
        .filter(|&i| tact[i] == Act::Recreate)
        .collect();
    // A dependent left unchanged on an object that is dropped for good now refers to something
    // else of the same name (a table replaced by a view): it is rebuilt too. Altered dependents
    // are not: their alter is what removes the dependency.
    // So are the dependents of what an alter rebuilds (an enum's functions and views).
    let dropped: Vec<usize> = (0..tgt.blocks.len())
        .filter(|&i| tact[i] == Act::Drop)
        .collect();
    let rebuilt = std::mem::take(&mut ctx.rebuild_dependents);
    for i in dropped.into_iter().chain(rebuilt) {
        for &d in &deps[i] {
            if tact[d] == Act::Keep
                && tgt.blocks[d].key.kind.is_recreatable()
                && !tgt.blocks[d].key.kind.is_reapplied()
                && cascade(&mut ctx, &mut sact, &mut tact, d, i)
            {
                work.push(d);
            }
        }
    }
    touched_columns.append(&mut ctx.touched_elsewhere);
    for (ti, cols) in &touched_columns {
        for &d in &deps[*ti] {
            let b = &tgt.blocks[d];
            if matches!(
                b.key.kind,
                ObjectKind::View
                    | ObjectKind::MaterializedView
                    | ObjectKind::Rule
                    | ObjectKind::Policy
                    | ObjectKind::Trigger
            ) && cols.iter().any(|c| mentions(&b.sql(), c))
                && cascade(&mut ctx, &mut sact, &mut tact, d, *ti)
            {
                work.push(d);
            }
        }
    }
    // Local indexes an ATTACH PARTITION would adopt in place of the ones SOURCE attaches: out
    // of the way before the attach, created again after it.
    let adopted = adopted_on_attach(&ctx, &sact, &tact);
    for &(ti, si) in &adopted {
        if tact[ti] == Act::Keep {
            tact[ti] = Act::Recreate;
            sact[si] = Act::Recreate;
            work.push(ti);
        }
    }
    // Those indexes, and what is on them (comments), are created after the attach.
    let after_attach: Vec<String> = adopted
        .iter()
        .flat_map(|&(_, si)| {
            let toc = src.blocks[si].toc_id;
            std::iter::once(si).chain(
                (0..src.blocks.len())
                    .filter(move |&i| toc.is_some_and(|t| src.blocks[i].deps.contains(&t))),
            )
        })
        .map(|i| src.blocks[i].key.display())
        .collect();
    while let Some(t) = work.pop() {
        for &d in &deps[t] {
            if matches!(tact[d], Act::Keep | Act::Alter)
                && cascade(&mut ctx, &mut sact, &mut tact, d, t)
            {
                work.push(d);
            }
        }
    }

    // Drops, TARGET order reversed. Objects that only go away (tables, types, functions,
    // extensions, schemas ...) are dropped after the alters, which may still need them (a column
    // moving off a type); what must make room (views, constraints, anything recreated) goes first.
    let created_names: BTreeSet<(String, String)> = diff
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Created)
        .map(|c| (c.key.schema.to_string(), base_name(&c.key.name)))
        .collect();
    let owned_sequences: BTreeSet<String> = tgt
        .blocks
        .iter()
        .filter(|b| b.key.kind == ObjectKind::SequenceOwnedBy)
        .map(|b| b.key.name.to_string())
        .collect();
    let implicit = dropped_with_owning_column(src, tgt, &ctx.tgt_rel, &tact);
    let mut late: Vec<Step> = Vec::new();
    let mut dropped_after_detach: Vec<Step> = Vec::new();
    for ti in (0..tgt.blocks.len()).rev() {
        if !matches!(tact[ti], Act::Drop | Act::Recreate) {
            continue;
        }
        let b = &tgt.blocks[ti];
        if goes_with_parent(tgt, &ctx.tgt_rel, &tact, ti) || implicit.contains(&ti) {
            continue;
        }
        let mut reason = if tact[ti] == Act::Drop {
            "not in source".to_string()
        } else if adopted.iter().any(|&(a, _)| a == ti) {
            "its partition is attached below, and ATTACH PARTITION would adopt this index in place of the one SOURCE attaches; dropped here and created again after the attach".to_string()
        } else {
            "changed; dropped here and created again below".to_string()
        };
        if tact[ti] == Act::Drop && b.key.kind == ObjectKind::Table {
            // Partitions that go with it are named: their rows go too.
            let me = (b.key.schema.to_string(), b.key.name.to_string());
            let mut with: Vec<String> = ctx
                .tgt_rel
                .parent
                .iter()
                .filter(|(child, parent)| {
                    **parent == me
                        && ctx
                            .tgt_rel
                            .tables
                            .get(*child)
                            .is_some_and(|&c| tact[c] == Act::Drop)
                })
                .map(|(child, _)| crate::catalog::parse::qualified(&child.0, &child.1))
                .collect();
            if !with.is_empty() {
                with.sort();
                reason.push_str(&format!("; its partitions go with it: {}", with.join(", ")));
            }
        }
        let must_go_first = b.key.kind.is_attached()
            || matches!(b.key.kind, ObjectKind::View | ObjectKind::MaterializedView | ObjectKind::FkConstraint | ObjectKind::TableAttach)
            || (b.key.kind == ObjectKind::Sequence
                && (owned_sequences.contains(b.key.name.as_str())
                    || b.stmts
                        .first()
                        .is_some_and(|s| s.starts_with("ALTER TABLE"))))
            || created_names.contains(&(b.key.schema.to_string(), base_name(&b.key.name)))
            // Something on it is recreated (an index moving to another table under the same
            // name) and goes with it: the old one must be gone before the new one is created.
            || deps[ti].iter().any(|&d| tact[d] == Act::Recreate);
        let is_late = tact[ti] == Act::Drop && !must_go_first;
        // An owned sequence released from a table that is created again: OWNED BY NONE must
        // run before the table's drop, or the drop takes the sequence with it.
        let releases = b.key.kind == ObjectKind::SequenceOwnedBy
            && tact[ti] == Act::Recreate
            && b.stmts
                .first()
                .and_then(|s| objects::owned_by_target(s))
                .and_then(|(sch, tab, _)| ctx.tgt_rel.tables.get(&(sch, tab)))
                .is_some_and(|&t| tact[t] == Act::Recreate);
        let is_late = is_late && !releases;
        let reason = if releases {
            "released from its table, which is created again (the sequence keeps its value)"
                .to_string()
        } else {
            reason
        };
        // Dropped after the partition it lives on is detached (see outlives_parent_table).
        let after_detach = outlives_parent_table(tgt, &ctx.tgt_rel, &tact, ti);
        match objects::drop(&mut ctx, ti, tact[ti] == Act::Recreate && !releases) {
            objects::DropHow::Steps(steps) => {
                for mut s in steps {
                    s.reason = reason.clone();
                    if is_late {
                        late.push(s);
                    } else if after_detach {
                        dropped_after_detach.push(s);
                    } else {
                        ctx.steps_drop.push(s);
                    }
                }
            }
            objects::DropHow::Nothing => {}
            objects::DropHow::Unknown(why) => {
                let key = b.key.clone();
                ctx.unsupported(&key, why, Some(b), None);
            }
        }
    }

    ctx.steps_drop.append(&mut dropped_after_detach);
    let mut after_drops = std::mem::take(&mut ctx.steps_after_drops);
    ctx.steps_drop.append(&mut after_drops);

    // Creates and alters, SOURCE order. Alters by SOURCE block: few blocks are altered, so a
    // map, not a slot per block.
    let mut alters_by_src: HashMap<usize, Vec<Step>> = alters.into_iter().collect();
    let mut creates: Vec<Step> = Vec::new();
    let mut done: BTreeSet<usize> = std::mem::take(&mut ctx.created_within)
        .into_iter()
        .collect();
    let before = std::mem::take(&mut ctx.created_before);
    for (si, &act) in sact.iter().enumerate() {
        match act {
            // Made already: within another object's step, or before the table that needs it.
            Act::Create | Act::Recreate if !done.contains(&si) => {
                let recreated = act == Act::Recreate;
                creates.extend(objects::create(&mut ctx, si, recreated));
            }
            Act::Alter => {
                // Those before it in SOURCE's order are made already.
                for &(_, first) in before.iter().filter(|&&(t, f)| t == si && f > si) {
                    if matches!(sact[first], Act::Create | Act::Recreate) && done.insert(first) {
                        let recreated = sact[first] == Act::Recreate;
                        creates.extend(objects::create(&mut ctx, first, recreated));
                    }
                }
                creates.extend(alters_by_src.remove(&si).unwrap_or_default())
            }
            _ => {}
        }
    }
    attach_partitions_after_their_indexes(&mut creates, &after_attach);
    parent_changes_after_no_inherit(&mut creates, &ctx.inherit_moves);
    possible_renames(src, tgt, diff, &mut ctx.steps_drop, &mut creates);

    let mut steps = std::mem::take(&mut ctx.steps_drop);
    steps.extend(creates);
    steps.extend(late);
    commit_new_enum_labels(&mut steps);
    let mut steps = steps_that_parse(steps, &mut ctx.unsupported);
    if let Some(major) = tgt.server_version {
        steps = without_newer_syntax(steps, major, &mut ctx.unsupported);
    }
    Plan {
        format: PLAN_FORMAT,
        pgalign_version: String::new(),
        digest: String::new(),
        target_fingerprint: String::new(),
        source_fingerprint: String::new(),
        filter: opts.filter.clone(),
        steps,
        unsupported: ctx.unsupported,
        notes: diff.notes.clone(),
    }
}

/// Steps are written by cutting and joining the dump's text. Where a definition is written in
/// a way pg_dump never writes (an edited dump) that can give SQL the server would refuse, or
/// read differently: every statement of every step is checked with the server's grammar, and a
/// step that fails is an unsupported entry, never a step.
fn steps_that_parse(steps: Vec<Step>, out: &mut Vec<Unsupported>) -> Vec<Step> {
    let mut kept = Vec::with_capacity(steps.len());
    for s in steps {
        let bad = match crate::catalog::parse::split_script(&s.sql) {
            Ok(split) if split.unterminated => Some("a statement without its semicolon".into()),
            Ok(split) => split
                .stmts
                .iter()
                .find_map(|st| crate::catalog::parse::one_statement(st).err())
                .map(|e| e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        match bad {
            Some(why) => out.push(Unsupported {
                object: s.object.clone(),
                reason: format!(
                    "pgalign could not write this change as SQL the server accepts ({why}); the definition is not written as pg_dump writes it: change it by hand"
                ),
                target_sql: None,
                source_sql: Some(s.sql),
            }),
            None => kept.push(s),
        }
    }
    kept
}

/// Steps whose SQL needs a newer major than TARGET's become unsupported entries: the server
/// would refuse them (or drop the clause), so they are reported before anything runs.
fn without_newer_syntax(steps: Vec<Step>, major: u32, out: &mut Vec<Unsupported>) -> Vec<Step> {
    let mut kept = Vec::with_capacity(steps.len());
    for s in steps {
        match compat::needs(&s.sql) {
            Some((need, what)) if need > major => out.push(Unsupported {
                object: s.object.clone(),
                reason: format!("{what} needs PostgreSQL {need} or newer; TARGET runs {major}"),
                target_sql: None,
                source_sql: Some(s.sql),
            }),
            _ => kept.push(s),
        }
    }
    kept
}

/// Marks TARGET block `d` (a dependent of `because`) to be dropped and created again.
/// Returns whether it is newly marked.
fn cascade(ctx: &mut Ctx, sact: &mut [Act], tact: &mut [Act], d: usize, because: usize) -> bool {
    if matches!(tact[d], Act::Drop | Act::Recreate) {
        return false;
    }
    let b = &ctx.tgt.blocks[d];
    if b.key.kind == ObjectKind::Sequence
        && ctx.tgt.blocks[because].key.kind == ObjectKind::Table
        && !b
            .stmts
            .first()
            .is_some_and(|s| s.starts_with("ALTER TABLE"))
    {
        // A sequence owned by a column of a table that is created again (serial) outlives it
        // and keeps its value: released before the drop (OWNED BY NONE), owned again after.
        let owned = Key {
            kind: ObjectKind::SequenceOwnedBy,
            schema: b.key.schema.clone(),
            name: b.key.name.clone(),
        };
        if let Some(o) = ctx.tgt.position(&owned) {
            if tact[o] == Act::Keep {
                tact[o] = Act::Recreate;
                match ctx.src.position(&owned) {
                    Some(so) => sact[so] = Act::Recreate,
                    None => tact[o] = Act::Drop,
                }
            }
        }
        return false;
    }
    if matches!(b.key.kind, ObjectKind::Table | ObjectKind::ForeignTable)
        && ctx.tgt.blocks[because].key.kind == ObjectKind::Table
    {
        // A partition (or inheritance child) of a table created again: it is detached before
        // the drop and attached again after (its TABLE ATTACH entry), not rebuilt.
        return false;
    }
    if survives_detach(ctx, tact, d, because) {
        return false;
    }
    let Some(si) = ctx.src.position(&b.key) else {
        tact[d] = Act::Drop;
        return true;
    };
    if b.key.kind.is_recreatable()
        || b.key.kind == ObjectKind::Sequence
            && ctx.tgt.blocks[because].key.kind == ObjectKind::Table
    {
        tact[d] = Act::Recreate;
        sact[si] = Act::Recreate;
        true
    } else {
        let why = format!(
            "depends on {}, which must be dropped and created again; pgalign cannot rebuild a {} yet",
            ctx.tgt.blocks[because].key.display(),
            b.key.kind.as_str().to_lowercase()
        );
        let key = b.key.clone();
        let (t, s) = (ctx.tgt.blocks[d].clone(), ctx.src.blocks[si].clone());
        ctx.unsupported(&key, why, Some(&t), Some(&s));
        false
    }
}

/// For an INDEX or CONSTRAINT block of a partition: the block of the partitioned index (or
/// constraint) it is attached to (`ALTER INDEX parent ATTACH PARTITION it`).
fn attached_to(cat: &Catalog, rel: &Relations, i: usize) -> Option<usize> {
    let b = &cat.blocks[i];
    if !matches!(b.key.kind, ObjectKind::Index | ObjectKind::Constraint) {
        return None;
    }
    // A constraint's tag is `table name`; its index has the constraint's name.
    let own = b.key.name.rsplit(' ').next().unwrap_or(&b.key.name);
    rel.index_parent
        .get(&(b.key.schema.to_string(), own.to_string()))
        .and_then(|p| index_block(cat, &p.0, &p.1))
}

/// True when TARGET block `d` is a partition's index (or constraint) attached to `because`, an
/// index of a partitioned table that is created again: the partition is detached before that
/// table is dropped, and its index stays with it.
fn survives_detach(ctx: &Ctx, tact: &[Act], d: usize, because: usize) -> bool {
    attached_to(ctx.tgt, &ctx.tgt_rel, d) == Some(because)
        && table_of(ctx.tgt, because).is_some_and(|t| matches!(tact[t], Act::Drop | Act::Recreate))
}

/// The table an index or constraint is on: its first TABLE dependency (a partition's index
/// depends on its parent index first).
fn table_of(cat: &Catalog, i: usize) -> Option<usize> {
    cat.blocks[i]
        .deps
        .iter()
        .filter_map(|&d| cat.at_toc(d))
        .find(|&p| cat.blocks[p].key.kind == ObjectKind::Table)
}

/// True when TARGET block `ti`, an index (or constraint) of a partition attached to an index of
/// a partitioned table that is dropped (or created again), outlives that table: the partition
/// is detached first (its TABLE ATTACH goes before the table's drop), and its index with it.
fn outlives_parent_table(tgt: &Catalog, rel: &Relations, tact: &[Act], ti: usize) -> bool {
    let dropped = |p: usize| matches!(tact[p], Act::Drop | Act::Recreate);
    let Some(pi) = attached_to(tgt, rel, ti) else {
        return false;
    };
    let parent_table_dropped = table_of(tgt, pi).is_some_and(dropped);
    // The partition's own table, and its ATTACH entry (detached when dropped or recreated).
    parent_table_dropped
        && table_of(tgt, ti).is_some_and(|t| {
            let attach = Key {
                kind: ObjectKind::TableAttach,
                schema: tgt.blocks[t].key.schema.clone(),
                name: tgt.blocks[t].key.name.clone(),
            };
            tgt.position(&attach).is_some_and(dropped)
        })
}

/// The block that creates index `schema.name`: an INDEX, or the CONSTRAINT whose index it is.
fn index_block(cat: &Catalog, schema: &str, name: &str) -> Option<usize> {
    let key = Key {
        kind: ObjectKind::Index,
        schema: schema.into(),
        name: name.into(),
    };
    cat.position(&key).or_else(|| {
        let suffix = format!(" {name}");
        cat.blocks.iter().position(|b| {
            b.key.kind == ObjectKind::Constraint
                && b.key.schema == schema
                && b.key.name.ends_with(&suffix)
        })
    })
}

/// Sequences owned by a column (serial) go away with that column or its table. When both the
/// sequence and its owner go, the sequence's own drop (and OWNED BY NONE) must not run: it would
/// come first and find the column's default still using it.
fn dropped_with_owning_column(
    src: &Catalog,
    tgt: &Catalog,
    rel: &Relations,
    tact: &[Act],
) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for (oi, ob) in tgt.blocks.iter().enumerate() {
        if ob.key.kind != ObjectKind::SequenceOwnedBy || tact[oi] != Act::Drop {
            continue;
        }
        // The sequence has the OWNED BY entry's tag; in a plain dump the inferred first
        // dependency may be the owning table instead.
        let Some(seq) = tgt
            .position(&Key {
                kind: ObjectKind::Sequence,
                schema: ob.key.schema.clone(),
                name: ob.key.name.clone(),
            })
            .or_else(|| {
                tgt.parent_of(oi)
                    .filter(|&p| tgt.blocks[p].key.kind == ObjectKind::Sequence)
            })
        else {
            continue;
        };
        if tact[seq] != Act::Drop {
            continue;
        }
        let Some((schema, table, column)) =
            ob.stmts.first().and_then(|s| objects::owned_by_target(s))
        else {
            continue;
        };
        let table_block = rel.tables.get(&(schema, table)).copied();
        let Some(tb) = table_block else { continue };
        let table_goes = matches!(tact[tb], Act::Drop | Act::Recreate);
        let column_goes = !src
            .get(&tgt.blocks[tb].key)
            .and_then(|b| b.table())
            .is_some_and(|t| t.columns.iter().any(|c| c.name == column));
        if table_goes || column_goes {
            out.insert(oi);
            out.insert(seq);
        }
    }
    out
}

/// True when dropping TARGET block `ti` happens by itself because what it lives on is dropped.
fn goes_with_parent(tgt: &Catalog, rel: &Relations, tact: &[Act], ti: usize) -> bool {
    let b = &tgt.blocks[ti];
    let dropped = |p: usize| matches!(tact[p], Act::Drop | Act::Recreate);
    let kind = &b.key.kind;
    if *kind == ObjectKind::Owner && b.key.schema.is_empty() && b.key.name == "SCHEMA public" {
        // initdb's public schema is never dropped: its owner goes back by itself (objects.rs).
        return false;
    }
    if *kind == ObjectKind::SequenceOwnedBy && tact[ti] == Act::Recreate {
        // Released before its table is created again (OWNED BY NONE), never left to the
        // table's drop, which would take the sequence with it.
        return false;
    }
    if *kind == ObjectKind::FkConstraint {
        // Always dropped on its own: the table it references may be dropped before the
        // table that holds it.
        return false;
    }
    if matches!(kind, ObjectKind::Table | ObjectKind::TableAttach) {
        // A partition dropped with its partitioned table goes with it (DROP TABLE takes the
        // partitions): detached first, it would outlive the sequences and types the parent's
        // drop removes while it still uses them.
        let me = (b.key.schema.to_string(), b.key.name.to_string());
        let dropped_for_good =
            |t: &(String, String)| rel.tables.get(t).is_some_and(|&i| tact[i] == Act::Drop);
        if let Some(parent) = rel.parent.get(&me) {
            if dropped_for_good(parent) && dropped_for_good(&me) {
                return true;
            }
        }
    }
    // An index attached to a partitioned index goes when that one does (and cannot be dropped
    // alone while attached); so does a partition's constraint inherited with it.
    if attached_to(tgt, rel, ti).is_some_and(dropped) && !outlives_parent_table(tgt, rel, tact, ti)
    {
        return true;
    }
    if *kind == ObjectKind::IndexAttach {
        // Gone with the partitioned index (or the constraint that made it) it is attached to.
        return b.deps.iter().filter_map(|&d| tgt.at_toc(d)).any(|p| {
            dropped(p)
                && matches!(
                    tgt.blocks[p].key.kind,
                    ObjectKind::Index | ObjectKind::Constraint
                )
        });
    }
    let identity_sequence = *kind == ObjectKind::Sequence
        && b.stmts
            .first()
            .is_some_and(|s| s.starts_with("ALTER TABLE"));
    if !(kind.is_attached() || identity_sequence) {
        return false;
    }
    b.deps.iter().filter_map(|&d| tgt.at_toc(d)).any(|p| {
        dropped(p)
            && (tgt.blocks[p].key.kind.is_relation()
                || matches!(
                    kind,
                    ObjectKind::Comment
                        | ObjectKind::Acl
                        | ObjectKind::Owner
                        | ObjectKind::SecurityLabel
                ))
    })
}

/// Attaching a partition to a table that already has partitioned indexes makes PostgreSQL create
/// the partition's copies of them, unless matching ones exist, which it adopts. pg_dump's order
/// attaches first (its parent indexes are created ON ONLY, afterwards); on a live TARGET the
/// parent's indexes already exist, so the partition's own indexes and constraints are created
/// first and the attach, moved after them, adopts them.
/// Indexes named in `after_attach` (see `adopted_on_attach`) are created after the attaches.
fn attach_partitions_after_their_indexes(creates: &mut Vec<Step>, after_attach: &[String]) {
    let attaches: Vec<usize> = (0..creates.len())
        .filter(|&i| creates[i].kind == ObjectKind::TableAttach && creates[i].op == Op::Create)
        .collect();
    if attaches.is_empty() {
        return;
    }
    // Removed from the back so the indexes stay valid, then put back in their order. (A lazy
    // `.rev().map(remove).rev()` removes from the front and takes the wrong steps.)
    let mut moved: Vec<Step> = Vec::with_capacity(attaches.len());
    for &i in attaches.iter().rev() {
        moved.push(creates.remove(i));
    }
    moved.reverse();
    let at = creates
        .iter()
        .position(|s| {
            matches!(
                s.kind,
                ObjectKind::IndexAttach | ObjectKind::FkConstraint | ObjectKind::Trigger
            )
        })
        .unwrap_or(creates.len());
    let n = moved.len();
    insert_at(creates, at, moved);
    // Indexes before the attaches that must come after them: moved to just after.
    let (later, at) = take_before(creates, at, |s| after_attach.contains(&s.object));
    insert_at(creates, at + n, later);
}

/// Removes the steps before `end` that `pick` selects, in order; returns them and where `end`
/// is now.
fn take_before(
    creates: &mut Vec<Step>,
    mut end: usize,
    pick: impl Fn(&Step) -> bool,
) -> (Vec<Step>, usize) {
    let mut taken = Vec::new();
    let mut i = 0;
    while i < end {
        if pick(&creates[i]) {
            taken.push(creates.remove(i));
            end -= 1;
        } else {
            i += 1;
        }
    }
    (taken, end)
}

/// Puts `steps` in at `at`, in order.
fn insert_at(creates: &mut Vec<Step>, at: usize, steps: Vec<Step>) {
    creates.splice(at..at, steps);
}

/// Columns an inheritance parent on TARGET adds, drops or changes reach its children too,
/// unless they left it first: the parent's steps move after the child's NO INHERIT, and its
/// column drops after the child's new column defaults as well (an old default may use the
/// parent's serial sequence, which goes with the column).
fn parent_changes_after_no_inherit(creates: &mut Vec<Step>, moves: &[(String, Vec<String>)]) {
    for (child, parents) in moves {
        let Some(at) = creates
            .iter()
            .position(|s| s.object == *child && s.sql.contains(" NO INHERIT "))
        else {
            continue;
        };
        let (moved, at) = take_before(creates, at, |s| {
            parents.contains(&s.object) && s.kind == ObjectKind::Table
        });
        let (drops, changes): (Vec<Step>, Vec<Step>) = moved
            .into_iter()
            .partition(|s| s.sql.contains(" DROP COLUMN "));
        insert_at(creates, at + 1, changes);
        let defaults = format!("default {} ", child.strip_prefix("table ").unwrap_or(child));
        let last = creates
            .iter()
            .rposition(|s| s.object == *child || s.object.starts_with(&defaults))
            .unwrap_or(at);
        insert_at(creates, last + 1, drops);
    }
}

/// TARGET indexes that `ALTER TABLE ... ATTACH PARTITION` would adopt for a partitioned index
/// in place of the one SOURCE attaches: PostgreSQL attaches the first matching index of the
/// partition it finds, and SOURCE keeps this one local. Pairs of (TARGET, SOURCE) block.
/// An index matches when its definition, without its name, is the same.
fn adopted_on_attach(ctx: &Ctx, sact: &[Act], tact: &[Act]) -> Vec<(usize, usize)> {
    let (src, tgt) = (ctx.src, ctx.tgt);
    let mut out = Vec::new();
    for (si, b) in src.blocks.iter().enumerate() {
        if b.key.kind != ObjectKind::TableAttach || sact[si] != Act::Create {
            continue;
        }
        let Some((_, (cs, cn))) = b.stmts.first().and_then(|s| objects::attach_parts(s)) else {
            continue;
        };
        // A partition new on TARGET has no indexes yet to adopt.
        let Some(&pt) = ctx.tgt_rel.tables.get(&(cs.clone(), cn.clone())) else {
            continue;
        };
        if matches!(tact[pt], Act::Drop | Act::Recreate) {
            continue;
        }
        let on = format!(" ON {} ", crate::catalog::qualified(&cs, &cn));
        let attached: Vec<String> = ctx
            .src_rel
            .index_parent
            .keys()
            .filter(|(s, _)| *s == cs)
            .filter_map(|(s, n)| {
                let i = src.position(&Key {
                    kind: ObjectKind::Index,
                    schema: s.into(),
                    name: n.into(),
                })?;
                index_shape(src.blocks[i].stmts.first()?, &on)
            })
            .collect();
        if attached.is_empty() {
            continue;
        }
        for (ti, t) in tgt.blocks.iter().enumerate() {
            if t.key.kind != ObjectKind::Index
                || t.key.schema != cs
                || !matches!(tact[ti], Act::Keep | Act::Recreate)
            {
                continue;
            }
            let me = (t.key.schema.to_string(), t.key.name.to_string());
            if ctx.src_rel.index_parent.contains_key(&me) {
                continue;
            }
            let matches = t
                .stmts
                .first()
                .and_then(|s| index_shape(s, &on))
                .is_some_and(|shape| attached.contains(&shape));
            if let (true, Some(s2)) = (matches, src.position(&t.key)) {
                out.push((ti, s2));
            }
        }
    }
    out
}

/// `CREATE [UNIQUE] INDEX name ON rel USING ...` without its name, when it is on `on`
/// (` ON schema.table `).
fn index_shape(stmt: &str, on: &str) -> Option<String> {
    let i = stmt.find(on)?;
    let k = stmt[..i].find(" INDEX ")?;
    Some(format!(
        "{}{}",
        &stmt[..k + " INDEX ".len()],
        &stmt[i + 1..]
    ))
}

/// A label added with ALTER TYPE ... ADD VALUE cannot be used before its transaction commits
/// ("unsafe use of new value"). When a later step uses it, the ADD VALUE step is committed on
/// its own, which splits the plan in two transactions; the step says why.
fn commit_new_enum_labels(steps: &mut [Step]) {
    for i in 0..steps.len() {
        if steps[i].kind != ObjectKind::Type || !steps[i].sql.contains(" ADD VALUE ") {
            continue;
        }
        let labels: Vec<String> = steps[i]
            .sql
            .lines()
            .filter_map(|l| l.split(" ADD VALUE ").nth(1))
            .filter_map(|rest| {
                // The label is the first string literal after ADD VALUE (a name holding
                // ` ADD VALUE ` may be followed by anything: no slicing inside a character).
                let body = rest.get(1..)?;
                let end = body.find("' ").or_else(|| body.rfind('\''))?;
                Some(rest[..end + 2].to_string())
            })
            .collect();
        let used_later = steps[i + 1..]
            .iter()
            .any(|s| labels.iter().any(|l| s.sql.contains(l.as_str())));
        if used_later {
            steps[i].own_transaction = true;
            steps[i].reason.push_str(
                "; committed in a transaction of its own because a later step uses the new value (PostgreSQL refuses a new enum value before its transaction commits)",
            );
        }
    }
}

/// `f(integer)` -> `f`: the name two objects of different kinds would collide on.
fn base_name(tag: &str) -> String {
    tag.split('(').next().unwrap_or(tag).to_string()
}

/// Whether SQL text mentions an identifier (as a word, quoted or not).
fn mentions(sql: &str, ident: &str) -> bool {
    let lower = sql.to_lowercase();
    let needle = ident.to_lowercase();
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(&needle) {
        let s = from + pos;
        let e = s + needle.len();
        let before = s == 0 || !is_ident_byte(bytes[s - 1]);
        let after = e >= bytes.len() || !is_ident_byte(bytes[e]);
        if before && after {
            return true;
        }
        // Past the first character of the match, whatever its length in bytes.
        from = s + lower[s..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

/// A table or column dropped while one of the same shape is created: flag both steps.
fn possible_renames(
    src: &Catalog,
    tgt: &Catalog,
    diff: &Diff,
    drops: &mut [Step],
    creates: &mut [Step],
) {
    for d in diff
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Dropped)
    {
        let tb = &tgt.blocks[d.target.unwrap()];
        let Some(tt) = tb.table() else { continue };
        let twin = diff.changes.iter().find(|c| {
            c.kind == ChangeKind::Created
                && c.key.kind == ObjectKind::Table
                && c.key.schema == d.key.schema
                && src.blocks[c.source.unwrap()].table().is_some_and(|st| {
                    st.columns.iter().map(|c| &c.type_sql).collect::<Vec<_>>()
                        == tt.columns.iter().map(|c| &c.type_sql).collect::<Vec<_>>()
                })
        });
        if let Some(c) = twin {
            let created = c.key.display();
            let dropped = d.key.display();
            for s in drops
                .iter_mut()
                .filter(|s| s.object == dropped && s.op == Op::Drop)
            {
                s.hazards.push(Hazard::PossibleRename);
                s.reason = format!(
                    "{}; {created} has the same columns: was it renamed? pgalign drops and creates",
                    s.reason
                );
            }
            for s in creates
                .iter_mut()
                .filter(|s| s.object == created && s.op == Op::Create)
            {
                s.hazards.push(Hazard::PossibleRename);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_shape_leaves_out_the_name_only() {
        let on = " ON app.events_click ";
        let a = index_shape(
            "CREATE INDEX local_idx ON app.events_click USING btree (kind, body)",
            on,
        );
        let b = index_shape(
            "CREATE INDEX events_click_kind_body_idx ON app.events_click USING btree (kind, body)",
            on,
        );
        assert_eq!(a, b);
        assert_eq!(
            a.as_deref(),
            Some("CREATE INDEX ON app.events_click USING btree (kind, body)")
        );
        let u = index_shape(
            "CREATE UNIQUE INDEX u ON app.events_click USING btree (kind, body)",
            on,
        );
        assert_ne!(u, a);
        assert_eq!(
            index_shape("CREATE INDEX x ON app.other USING btree (kind)", on),
            None
        );
    }

    #[test]
    fn mentions_whole_words_only() {
        assert!(mentions("SELECT t.amount FROM t", "amount"));
        assert!(!mentions("SELECT t.amounts FROM t", "amount"));
        assert!(mentions("SELECT \"Amount\" FROM t", "Amount"));
        // Regression: a name starting with a character of two bytes, first found inside a longer
        // word, made the search resume inside that character (a panic).
        assert!(mentions("SELECT t.\"xéa\", t.\"éa\" FROM t", "éa"));
        assert!(!mentions("SELECT t.\"xéa\" FROM t", "éa"));
    }

    /// Regression: a composite type's step holding ` ADD VALUE ` in a quoted attribute name
    /// followed by a character of two bytes made the enum-label reader slice inside it.
    #[test]
    fn enum_labels_are_read_without_slicing_characters() {
        let step = |sql: &str| Step {
            object: "type public.t".into(),
            kind: ObjectKind::Type,
            op: Op::Alter,
            reason: String::new(),
            sql: sql.into(),
            hazards: vec![],
            lock_timeout: Millis::from_secs(10),
            statement_timeout: Millis::ZERO,
            transactional: true,
            own_transaction: false,
            replaces_invalid_index: None,
            on_failure_sql: None,
        };
        let mut steps = vec![
            step("ALTER TYPE public.t ADD ATTRIBUTE \"a ADD VALUE é\" integer;\n"),
            step("ALTER TYPE public.e ADD VALUE 'x' AFTER 'w';\n"),
            step("SELECT 'x'::public.e;\n"),
        ];
        commit_new_enum_labels(&mut steps);
        assert!(!steps[0].own_transaction);
        assert!(steps[1].own_transaction);
    }

    fn catalog(body: &str) -> Catalog {
        let text = format!("--\n-- PostgreSQL database dump\n--\n\n{body}");
        crate::catalog::from_dump_text(&text, &Filter::default()).unwrap()
    }

    fn plan_of(src: &Catalog, tgt: &Catalog) -> Plan {
        let d = crate::diff::diff(src, tgt);
        plan(src, tgt, &d, &Options::default())
    }

    const IDENTITY: &str = "--\n-- Name: t; Type: TABLE; Schema: public; Owner: x\n--\n\nCREATE TABLE public.t (\n    id integer NOT NULL\n);\n\n--\n-- Name: t_id_seq; Type: SEQUENCE; Schema: public; Owner: x\n--\n\nALTER TABLE public.t ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (\n    SEQUENCE NAME public.t_id_seq\n    START WITH 1\n    CACHE 1\n);\n";

    /// Regression (mutation test): `AS\n IDENTITY`, the same statement spaced otherwise, was
    /// read as a kind of identity `BY DEFAULT AS\n IDENTITY (...` and written into the step.
    #[test]
    fn identity_options_read_by_tokens() {
        let tgt = catalog(IDENTITY);
        let src = catalog(
            &IDENTITY
                .replace("ALWAYS AS IDENTITY", "BY DEFAULT AS\n IDENTITY")
                .replace("CACHE 1", "CACHE 5"),
        );
        let p = plan_of(&src, &tgt);
        assert!(p.unsupported.is_empty(), "{:?}", p.unsupported);
        assert_eq!(
            p.steps[0].sql,
            "ALTER TABLE public.t ALTER COLUMN id SET GENERATED BY DEFAULT SET START WITH 1 SET CACHE 5 SET NO CYCLE;\n"
        );
    }

    /// Whatever a reader makes of a definition, a step the server would refuse is reported as
    /// unsupported, never written.
    #[test]
    fn steps_that_do_not_parse_are_unsupported() {
        let ok = Step {
            object: "table public.t".into(),
            kind: ObjectKind::Table,
            op: Op::Alter,
            reason: String::new(),
            sql: "-- why\nALTER TABLE public.t ADD COLUMN a integer;\nCOMMENT ON TABLE public.t IS 'a;b';\n".into(),
            hazards: vec![],
            lock_timeout: Millis::from_secs(10),
            statement_timeout: Millis::ZERO,
            transactional: true,
            own_transaction: false,
            replaces_invalid_index: None,
            on_failure_sql: None,
        };
        let mut unsupported = Vec::new();
        let mut bad = ok.clone();
        bad.sql = "DROP VIEW ,public.v;\n".into();
        let mut cut = ok.clone();
        cut.sql = "ALTER TABLE public.t ADD COLUMN a integer".into();
        let kept = steps_that_parse(vec![ok.clone(), bad, cut], &mut unsupported);
        assert_eq!(kept, [ok]);
        assert_eq!(unsupported.len(), 2);
        assert!(
            unsupported[0].reason.contains("syntax error"),
            "{:?}",
            unsupported[0]
        );
    }

    #[test]
    fn hazard_names_round_trip() {
        for h in Hazard::ALL {
            assert_eq!(Hazard::parse(h.name()), Some(h));
        }
    }
}
