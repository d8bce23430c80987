//! Turns differences into ordered Steps, each with its SQL, hazards and timeouts. Pure.
//!
//! Order: drops walk TARGET's dump order backwards (pg_dump's order is a valid creation order, so
//! its reverse is a valid drop order); creates and alters walk SOURCE's dump order forwards.
//! Objects that must be dropped and created again pull their dependents (by pg_dump's own
//! dependency graph) along with them.

pub(crate) mod cascade;
mod checks;
mod context;
pub mod impact;
mod kinds;
pub use kinds::create_sql;
mod order;
pub mod preflight;

use cascade::*;
use checks::*;
pub(crate) use context::{Ctx, Relations};
use order::*;
pub use order::{Mark, Role};

use crate::catalog::ObjectKind;
use crate::catalog::{read, Catalog, Dependents, Filter, Key};
use crate::diff::{ChangeKind, Diff, Sides};
use crate::duration::Millis;
use crate::threads::joined;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

pub use crate::catalog::read::identity_of;

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
    /// What preflight asks of TARGET's rows before anything is locked: rows that would make
    /// this step fail, or that it loses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preflight: Vec<preflight::Check>,
    /// The locks it takes on TARGET's relations and the work it does under them (a rewrite,
    /// a scan, an index build): what a reviewer weighs before a maintenance window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<impact::Impact>,
    /// What the planner's ordering rules know of the step: its object's typed key, and what
    /// it does that another step must run before or after. Planning only: a plan file does
    /// not carry it.
    #[serde(skip)]
    pub mark: Mark,
}

impl Step {
    /// Whether this step shares the main transaction with its neighbours.
    pub fn shares_transaction(&self) -> bool {
        self.transactional && !self.own_transaction
    }
}

/// Timeouts for a step: what the rendered script says and what apply runs, from one place so
/// they cannot drift apart. `local` inside a transaction, session-wide outside one.
pub fn session_settings(step: &Step, local: bool) -> String {
    let l = if local { "LOCAL " } else { "" };
    format!(
        "SET {l}lock_timeout = '{}';\nSET {l}statement_timeout = '{}';\n",
        step.lock_timeout, step.statement_timeout
    )
}

/// Settings every pgalign script runs under, as pg_dump's own output does: its statements are
/// written for an empty search_path and with function bodies unchecked until all exist.
pub fn preamble(local: bool) -> String {
    let l = if local { "LOCAL " } else { "" };
    format!("SET {l}search_path = '';\nSET {l}check_function_bodies = false;\nSET {l}client_min_messages = warning;\n")
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

/// Plans the change that makes TARGET equal SOURCE.
pub fn plan(src: &Catalog, tgt: &Catalog, diff: &Diff, opts: &Options) -> Plan {
    // The two fingerprints hash every block of both schemas: on threads of their own while the
    // steps are planned (a fifth of the run at 10,000 tables otherwise).
    std::thread::scope(|scope| {
        let tf = scope.spawn(|| tgt.fingerprint());
        let sf = scope.spawn(|| src.fingerprint());
        let mut p = plan_steps(src, tgt, diff, opts);
        p.target_fingerprint = joined(tf);
        p.source_fingerprint = joined(sf);
        p.seal();
        p
    })
}

/// The plan as a script alone: no fingerprints and no seal, which only a plan file carries
/// (`apply --plan` checks them). For `plan --format sql`: hashing both schemas is a tenth of
/// its work at 10,000 tables, for digests the script does not print.
pub fn script(src: &Catalog, tgt: &Catalog, diff: &Diff, opts: &Options) -> Plan {
    plan_steps(src, tgt, diff, opts)
}

fn plan_steps(src: &Catalog, tgt: &Catalog, diff: &Diff, opts: &Options) -> Plan {
    let mut sact = vec![Act::Keep; src.blocks.len()];
    let mut tact = vec![Act::Keep; tgt.blocks.len()];
    // TARGET's dependency graph, inverted once: both phases walk it (tens of millions of
    // instructions at 10,000 tables). Made on a thread of its own while the changes are
    // decided, as TARGET's relations are while SOURCE's are gathered (2 cores).
    let (mut ctx, deps, mut decided) = std::thread::scope(|scope| {
        let deps = scope.spawn(|| tgt.dependents());
        let tgt_rel = scope.spawn(|| Relations::of(tgt));
        let src_rel = Relations::of(src);
        let mut ctx = Ctx {
            src,
            tgt,
            opts,
            unsupported: Vec::new(),
            src_rel,
            tgt_rel: joined(tgt_rel),
        };
        let decided = decide(&mut ctx, diff, &mut sact, &mut tact);
        (ctx, joined(deps), decided)
    });
    let (adopted, after_attach) =
        cascade_dependents(&mut ctx, &deps, &mut sact, &mut tact, &mut decided);
    let (mut steps, late) = drop_steps(&mut ctx, &deps, diff, &tact, &adopted, &mut decided);
    let created = create_steps(&mut ctx, &sact, decided);

    // The first order: drops, creates and alters, then what is dropped last. Possible renames
    // are flagged in it, then the ordering rules move what it misses.
    let drops = 0..steps.len();
    steps.extend(created);
    let creates = drops.end..steps.len();
    steps.extend(late);
    possible_renames(src, tgt, diff, &mut steps, (drops, creates.clone()));
    let mut order = Order::new(steps.len());
    attach_partitions_after_their_indexes(&steps, creates.clone(), &after_attach, &mut order);
    parents_change_after_no_inherit(&steps, creates, &mut order);
    let mut steps = order.settle(steps);
    commit_new_enum_labels(&mut steps);
    preflight::after_tables_emptied(&mut steps);
    let mut steps = steps_that_parse(steps, &mut ctx.unsupported);
    if let Some(major) = tgt.server_version {
        steps = without_newer_syntax(steps, major, &mut ctx.unsupported);
    }
    impact::annotate(&mut steps, tgt);
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

/// What the decisions hand to the later phases, in decision order (gathered from each kind's
/// `kinds::Altered`).
#[derive(Default)]
struct Decided {
    /// Alter steps by the SOURCE block they belong to.
    alters: Vec<(usize, Vec<Step>)>,
    /// Columns dropped or retyped, by TARGET table block: their dependents are rebuilt. Also
    /// columns of TARGET tables whose type an alter of another object changes (an enum's
    /// rebuild): views and rules over them are rebuilt.
    touched_columns: Vec<(usize, Vec<String>)>,
    /// Steps that run with the drops, before anything is dropped.
    early: Vec<Step>,
    /// Steps that run after every drop and before the first create (renames that free a name
    /// a create needs, on a partition detached by the drops).
    after_drops: Vec<Step>,
    /// TARGET objects rebuilt by an alter (an enum): their dependents are dropped before and
    /// created again after.
    rebuilds: Vec<usize>,
    /// SOURCE blocks whose creation a step of another object makes (a serial column's DEFAULT
    /// entry, an identity column's sequence, taken into the column's ADD COLUMN): not created
    /// on their own.
    created_within: Vec<usize>,
    /// (SOURCE table block, SOURCE block): the second is created before the first's alter
    /// steps when the plan creates it (a serial column's sequence, which its ADD COLUMN uses).
    created_before: Vec<(usize, usize)>,
}

/// Each changed object's decision: altered in place (its steps), dropped and created again,
/// or unsupported.
fn decide(ctx: &mut Ctx, diff: &Diff, sact: &mut [Act], tact: &mut [Act]) -> Decided {
    let (src, tgt) = (ctx.src, ctx.tgt);
    let mut out = Decided::default();
    let mut elsewhere = Vec::new();

    for ch in &diff.changes {
        match ch.sides {
            Sides::Created { source } => sact[source] = Act::Create,
            Sides::Dropped { target } => tact[target] = Act::Drop,
            Sides::Changed {
                source: si,
                target: ti,
            } => match kinds::alter(ctx, si, ti) {
                kinds::Decision::Alter(a) => {
                    let a = *a;
                    sact[si] = Act::Alter;
                    tact[ti] = Act::Alter;
                    out.alters.push((si, a.steps));
                    if !a.columns.is_empty() {
                        out.touched_columns.push((ti, a.columns));
                    }
                    out.early.extend(a.early);
                    out.after_drops.extend(a.after_drops);
                    out.created_within.extend(a.created_within);
                    out.created_before
                        .extend(a.created_before.into_iter().map(|q| (si, q)));
                    out.rebuilds.extend(a.rebuilds);
                    elsewhere.extend(a.touched_elsewhere);
                }
                kinds::Decision::Recreate => {
                    sact[si] = Act::Recreate;
                    tact[ti] = Act::Recreate;
                }
                kinds::Decision::Unsupported(reason) => {
                    let (s, t) = (&src.blocks[si], &tgt.blocks[ti]);
                    ctx.unsupported(&s.key, reason, Some(t), Some(s));
                }
            },
        }
    }

    out.touched_columns.append(&mut elsewhere);
    out
}

/// What the decisions take with them: dependents of what is dropped, recreated or rebuilt,
/// and of columns that change, are dropped and created again; so are local indexes an ATTACH
/// PARTITION would adopt. Returns those (TARGET, SOURCE) index pairs and the objects to create
/// after the attach.
fn cascade_dependents(
    ctx: &mut Ctx,
    deps: &Dependents,
    sact: &mut [Act],
    tact: &mut [Act],
    decided: &mut Decided,
) -> (Vec<(usize, usize)>, Vec<Key>) {
    let (src, tgt) = (ctx.src, ctx.tgt);
    // Dependents of what is dropped and created again must go first and come back after.
    // (Dependents of what is dropped for good have changed too, or they could not stay.)
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
    let rebuilt = std::mem::take(&mut decided.rebuilds);
    for i in dropped.into_iter().chain(rebuilt) {
        for &d in &deps[i] {
            if tact[d] == Act::Keep
                && tgt.blocks[d].key.kind.is_recreatable()
                && !tgt.blocks[d].key.kind.is_reapplied()
                && cascade(ctx, sact, tact, d, i)
            {
                work.push(d);
            }
        }
    }
    for (ti, cols) in &decided.touched_columns {
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
                && cascade(ctx, sact, tact, d, *ti)
            {
                work.push(d);
            }
        }
    }
    // Local indexes an ATTACH PARTITION would adopt in place of the ones SOURCE attaches: out
    // of the way before the attach, created again after it.
    let adopted = adopted_on_attach(ctx, sact, tact);
    for &(ti, si) in &adopted {
        if tact[ti] == Act::Keep {
            tact[ti] = Act::Recreate;
            sact[si] = Act::Recreate;
            work.push(ti);
        }
    }
    // Those indexes, and what is on them (comments), are created after the attach.
    let after_attach: Vec<Key> = adopted
        .iter()
        .flat_map(|&(_, si)| {
            let toc = src.blocks[si].toc_id;
            std::iter::once(si).chain(
                (0..src.blocks.len())
                    .filter(move |&i| toc.is_some_and(|t| src.blocks[i].deps.contains(&t))),
            )
        })
        .map(|i| src.blocks[i].key.clone())
        .collect();
    while let Some(t) = work.pop() {
        for &d in &deps[t] {
            if matches!(tact[d], Act::Keep | Act::Alter) && cascade(ctx, sact, tact, d, t) {
                work.push(d);
            }
        }
    }

    (adopted, after_attach)
}

/// The drop steps, TARGET order reversed, after the decisions' early steps and before their
/// steps that run after the drops; and, apart, those that run last.
fn drop_steps(
    ctx: &mut Ctx,
    deps: &Dependents,
    diff: &Diff,
    tact: &[Act],
    adopted: &[(usize, usize)],
    decided: &mut Decided,
) -> (Vec<Step>, Vec<Step>) {
    let tgt = ctx.tgt;
    // Drops, TARGET order reversed. Objects that only go away (tables, types, functions,
    // extensions, schemas ...) are dropped after the alters, which may still need them (a column
    // moving off a type); what must make room (views, constraints, anything recreated) goes first.
    let created_names: BTreeSet<(String, String)> = diff
        .changes
        .iter()
        .filter(|c| c.kind() == ChangeKind::Created)
        .map(|c| (c.key.schema.to_string(), base_name(&c.key.name)))
        .collect();
    let owned_sequences: BTreeSet<String> = tgt
        .blocks
        .iter()
        .filter(|b| b.key.kind == ObjectKind::SequenceOwnedBy)
        .map(|b| b.key.name.to_string())
        .collect();
    let implicit = dropped_with_owning_column(ctx.src, tgt, &ctx.tgt_rel, tact);
    // What is dropped for good but uses a column the alters drop or retype (a function whose
    // BEGIN ATOMIC body reads it): PostgreSQL refuses the column's change while it is there.
    let uses_changed_column: BTreeSet<usize> = decided
        .touched_columns
        .iter()
        .flat_map(|(t, cols)| {
            deps[*t].iter().copied().filter(move |&d| {
                tact[d] == Act::Drop && cols.iter().any(|c| mentions(&tgt.blocks[d].sql(), c))
            })
        })
        .collect();
    let mut first = std::mem::take(&mut decided.early);
    let mut late: Vec<Step> = Vec::new();
    let mut dropped_after_detach: Vec<Step> = Vec::new();
    for ti in (0..tgt.blocks.len()).rev() {
        if !matches!(tact[ti], Act::Drop | Act::Recreate) {
            continue;
        }
        let b = &tgt.blocks[ti];
        if goes_with_parent(tgt, &ctx.tgt_rel, tact, ti) || implicit.contains(&ti) {
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
            || b.key.kind.is_view()
            || matches!(b.key.kind, ObjectKind::FkConstraint | ObjectKind::TableAttach)
            || (b.key.kind == ObjectKind::Sequence
                && ((owned_sequences.contains(b.key.name.as_str())
                    // A table the plan alters may still use it (a partition's own default,
                    // dropped in that alter): then it goes after the alters.
                    && !deps[ti].iter().any(|&d| {
                        tact[d] == Act::Alter && tgt.blocks[d].key.kind.is_table()
                    }))
                    || b.stmts
                        .first()
                        .is_some_and(|s| s.starts_with("ALTER TABLE"))))
            || created_names.contains(&(b.key.schema.to_string(), base_name(&b.key.name)))
            || uses_changed_column.contains(&ti)
            // Something on it is recreated (an index moving to another table under the same
            // name) and goes with it: the old one must be gone before the new one is created.
            // (A dependent dropped on its own, a view over a type's column, needs nothing of it.)
            || deps[ti].iter().any(|&d| {
                tact[d] == Act::Recreate && goes_with_parent(tgt, &ctx.tgt_rel, tact, d)
            });
        let is_late = tact[ti] == Act::Drop && !must_go_first;
        // An owned sequence released from a table that is created again: OWNED BY NONE must
        // run before the table's drop, or the drop takes the sequence with it.
        let releases = b.key.kind == ObjectKind::SequenceOwnedBy
            && tact[ti] == Act::Recreate
            && b.stmts
                .first()
                .and_then(|s| read::owned_by_target(s))
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
        let after_detach = outlives_parent_table(tgt, &ctx.tgt_rel, tact, ti);
        match kinds::drop(ctx, ti, tact[ti] == Act::Recreate && !releases) {
            kinds::DropHow::Steps(steps) => {
                for mut s in steps {
                    s.reason = reason.clone();
                    if is_late {
                        late.push(s);
                    } else if after_detach {
                        dropped_after_detach.push(s);
                    } else {
                        first.push(s);
                    }
                }
            }
            kinds::DropHow::Nothing => {}
            kinds::DropHow::Unknown(why) => {
                let key = b.key.clone();
                ctx.unsupported(&key, why, Some(b), None);
            }
        }
    }

    first.append(&mut dropped_after_detach);
    first.append(&mut decided.after_drops);

    (first, late)
}

/// The create and alter steps, SOURCE order.
fn create_steps(ctx: &mut Ctx, sact: &[Act], decided: Decided) -> Vec<Step> {
    // Creates and alters, SOURCE order. Alters by SOURCE block: few blocks are altered, so a
    // map, not a slot per block.
    let mut alters_by_src: HashMap<usize, Vec<Step>> = decided.alters.into_iter().collect();
    let mut creates: Vec<Step> = Vec::new();
    let mut done: BTreeSet<usize> = decided.created_within.into_iter().collect();
    let before = decided.created_before;
    for (si, &act) in sact.iter().enumerate() {
        match act {
            // Made already: within another object's step, or before the table that needs it.
            Act::Create | Act::Recreate if !done.contains(&si) => {
                let recreated = act == Act::Recreate;
                creates.extend(kinds::create(ctx, si, recreated));
            }
            Act::Alter => {
                // Those before it in SOURCE's order are made already.
                for &(_, first) in before.iter().filter(|&&(t, f)| t == si && f > si) {
                    if matches!(sact[first], Act::Create | Act::Recreate) && done.insert(first) {
                        let recreated = sact[first] == Act::Recreate;
                        creates.extend(kinds::create(ctx, first, recreated));
                    }
                }
                creates.extend(alters_by_src.remove(&si).unwrap_or_default())
            }
            _ => {}
        }
    }
    creates
}

#[cfg(test)]
mod tests;
