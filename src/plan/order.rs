//! The order steps run in, as data. The phases make steps in a first order (drops walk
//! TARGET's dump order backwards, creates and alters SOURCE's forwards); the rules here add
//! what that order misses, as "this step runs before that one" (`Order`), and `Order::settle`
//! sorts the steps topologically, keeping the first order wherever no rule speaks, so plans
//! stay byte-stable. Steps are told apart by their mark (`Mark`): their object's typed key and
//! what they do (`Role`), never by their SQL.
//!
//! Also here: new enum labels committed before use, and renames flagged.

use super::{Hazard, Op, Step};
use crate::catalog::{Catalog, Key, ObjectKind};
use crate::diff::{Diff, Sides};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

/// What the ordering rules know of a step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mark {
    /// The object the step belongs to (none for a step read from a plan file).
    pub key: Option<Key>,
    pub role: Role,
}

/// What a step does that another step must run before or after.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Role {
    #[default]
    Other,
    /// A table's `NO INHERIT`: it leaves these parents (their TABLE keys).
    LeavesParents(Vec<Key>),
    /// Drops a column of its table (also a generated column dropped and added again).
    DropsColumn,
    /// An enum's `ADD VALUE`: the labels it adds, as SQL literals.
    AddsEnumLabels(Vec<String>),
}

/// Which step must run before which. Nodes are the steps, by position in the first order, then
/// barriers: nodes without a step, which gather many "before"s into one.
pub(super) struct Order {
    steps: usize,
    barriers: usize,
    /// (before, after) pairs of nodes.
    edges: Vec<(usize, usize)>,
}

impl Order {
    pub fn new(steps: usize) -> Order {
        Order {
            steps,
            barriers: 0,
            edges: Vec::new(),
        }
    }

    /// A new barrier node.
    pub fn barrier(&mut self) -> usize {
        self.barriers += 1;
        self.steps + self.barriers - 1
    }

    /// Node `a` runs before node `b`.
    pub fn before(&mut self, a: usize, b: usize) {
        self.edges.push((a, b));
    }

    /// The steps in an order that keeps every rule: of the nodes free to go next, the one first
    /// in the first order goes (a barrier as soon as it is free). A step no rule holds back
    /// keeps its place; one held back goes right after what it waits for. Rules that contradict
    /// each other (a planner bug) cannot lose a step: what a cycle holds goes last, in the
    /// first order.
    pub fn settle(self, steps: Vec<Step>) -> Vec<Step> {
        if self.edges.is_empty() {
            return steps;
        }
        let n = self.steps + self.barriers;
        let mut waits = vec![0usize; n];
        let mut after: Vec<Vec<usize>> = vec![Vec::new(); n];
        for &(a, b) in &self.edges {
            if a != b && a < n && b < n {
                after[a].push(b);
                waits[b] += 1;
            }
        }
        // Barriers first (they run nothing), then by first-order position.
        let rank = |i: usize| (i < self.steps, i);
        let mut free: BinaryHeap<Reverse<(bool, usize)>> = (0..n)
            .filter(|&i| waits[i] == 0)
            .map(|i| Reverse(rank(i)))
            .collect();
        let mut slots: Vec<Option<Step>> = steps.into_iter().map(Some).collect();
        let mut out = Vec::with_capacity(slots.len());
        while let Some(Reverse((_, i))) = free.pop() {
            if let Some(s) = slots.get_mut(i).and_then(Option::take) {
                out.push(s);
            }
            for &b in &after[i] {
                waits[b] -= 1;
                if waits[b] == 0 {
                    free.push(Reverse(rank(b)));
                }
            }
        }
        out.extend(slots.into_iter().flatten());
        out
    }
}

/// Attaching a partition to a table that already has partitioned indexes makes PostgreSQL create
/// the partition's copies of them, unless matching ones exist, which it adopts. pg_dump's order
/// attaches first (its parent indexes are created ON ONLY, afterwards); on a live TARGET the
/// parent's indexes already exist, so the attaches run after the creates of tables, indexes and
/// constraints, which they adopt, and before the index attaches, triggers and foreign keys
/// (the first of those in `creates`, and all after it). Indexes in `after_attach` (see
/// `adopted_on_attach`), which an attach must not adopt, are created after the attaches, and
/// so are CHECK constraints of their own.
pub(super) fn attach_partitions_after_their_indexes(
    steps: &[Step],
    creates: Range<usize>,
    after_attach: &[Key],
    order: &mut Order,
) {
    let is_attach =
        |i: usize| steps[i].kind == ObjectKind::TableAttach && steps[i].op == Op::Create;
    if !creates.clone().any(is_attach) {
        return;
    }
    // Also after the attaches: CHECK constraints in entries of their own (NOT VALID). On a
    // partitioned table they reach its partitions, which an attach requires to have them
    // already ("child table is missing constraint"); pg_dump's order has them after too.
    let later = |i: usize| {
        steps[i].kind == ObjectKind::CheckConstraint
            || steps[i]
                .mark
                .key
                .as_ref()
                .is_some_and(|k| after_attach.contains(k))
    };
    let at = creates
        .clone()
        .find(|&i| {
            !is_attach(i)
                && matches!(
                    steps[i].kind,
                    ObjectKind::IndexAttach | ObjectKind::FkConstraint | ObjectKind::Trigger
                )
        })
        .unwrap_or(creates.end);
    let (ready, done) = (order.barrier(), order.barrier());
    order.before(ready, done);
    for i in creates {
        if is_attach(i) {
            order.before(ready, i);
            order.before(i, done);
        } else if i >= at || later(i) {
            order.before(done, i);
        } else {
            order.before(i, ready);
        }
    }
}

/// Columns an inheritance parent on TARGET adds, drops or changes reach its children too,
/// unless they left it first: the parent's steps before a child's NO INHERIT run after it, and
/// its column drops also after the child's own steps and new column defaults (an old default
/// may use the parent's serial sequence, which goes with the column).
pub(super) fn parents_change_after_no_inherit(
    steps: &[Step],
    creates: Range<usize>,
    order: &mut Order,
) {
    for n in creates.clone() {
        let Role::LeavesParents(parents) = &steps[n].mark.role else {
            continue;
        };
        let Some(child) = &steps[n].mark.key else {
            continue;
        };
        let of_child = |s: &Step| {
            s.mark.key.as_ref().is_some_and(|k| {
                k == child
                    || (k.kind == ObjectKind::Default
                        && k.schema == child.schema
                        && k.name
                            .strip_prefix(child.name.as_str())
                            .is_some_and(|r| r.starts_with(' ')))
            })
        };
        let last = creates
            .clone()
            .rev()
            .find(|&i| of_child(&steps[i]))
            .unwrap_or(n);
        for (p, s) in steps.iter().enumerate().take(n).skip(creates.start) {
            let of_parent = s.kind == ObjectKind::Table
                && s.mark.key.as_ref().is_some_and(|k| parents.contains(k));
            if !of_parent {
                continue;
            }
            order.before(n, p);
            if s.mark.role == Role::DropsColumn {
                order.before(last, p);
            }
        }
    }
}

/// A label added with ALTER TYPE ... ADD VALUE cannot be used before its transaction commits
/// ("unsafe use of new value"). When a later step uses it, the ADD VALUE step is committed on
/// its own, which splits the plan in two transactions; the step says why.
pub(super) fn commit_new_enum_labels(steps: &mut [Step]) {
    for i in 0..steps.len() {
        let Role::AddsEnumLabels(labels) = &steps[i].mark.role else {
            continue;
        };
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

/// A table or column dropped while one of the same shape is created: flag both steps.
pub(super) fn possible_renames(
    src: &Catalog,
    tgt: &Catalog,
    diff: &Diff,
    steps: &mut [Step],
    (drops, creates): (Range<usize>, Range<usize>),
) {
    for d in &diff.changes {
        let Sides::Dropped { target } = d.sides else {
            continue;
        };
        let tb = &tgt.blocks[target];
        let Some(tt) = tb.table() else { continue };
        let twin = diff.changes.iter().find(|c| {
            let Sides::Created { source } = c.sides else {
                return false;
            };
            c.key.kind == ObjectKind::Table
                && c.key.schema == d.key.schema
                && src.blocks[source].table().is_some_and(|st| {
                    st.columns.iter().map(|c| &c.type_sql).collect::<Vec<_>>()
                        == tt.columns.iter().map(|c| &c.type_sql).collect::<Vec<_>>()
                })
        });
        if let Some(c) = twin {
            let created = c.key.display();
            let is = |s: &Step, key: &Key, op: Op| s.op == op && s.mark.key.as_ref() == Some(key);
            for s in steps[drops.clone()]
                .iter_mut()
                .filter(|s| is(s, &d.key, Op::Drop))
            {
                s.hazards.push(Hazard::PossibleRename);
                s.reason = format!(
                    "{}; {created} has the same columns: was it renamed? pgalign drops and creates",
                    s.reason
                );
            }
            for s in steps[creates.clone()]
                .iter_mut()
                .filter(|s| is(s, &c.key, Op::Create))
            {
                s.hazards.push(Hazard::PossibleRename);
            }
        }
    }
}

/// `f(integer)` -> `f`: the name two objects of different kinds would collide on.
pub(super) fn base_name(tag: &str) -> String {
    tag.split('(').next().unwrap_or(tag).to_string()
}
