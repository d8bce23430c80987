//! Where steps must move from the order they were made in: attaches after their indexes,
//! a parent's column changes after its child's NO INHERIT, new enum labels committed before
//! use, and renames that free a name a create needs.

use super::{Hazard, Op, Step};
use crate::catalog::{Catalog, ObjectKind};
use crate::diff::{Diff, Sides};

/// Attaching a partition to a table that already has partitioned indexes makes PostgreSQL create
/// the partition's copies of them, unless matching ones exist, which it adopts. pg_dump's order
/// attaches first (its parent indexes are created ON ONLY, afterwards); on a live TARGET the
/// parent's indexes already exist, so the partition's own indexes and constraints are created
/// first and the attach, moved after them, adopts them.
/// Indexes named in `after_attach` (see `adopted_on_attach`) are created after the attaches.
pub(super) fn attach_partitions_after_their_indexes(
    creates: &mut Vec<Step>,
    after_attach: &[String],
) {
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
pub(super) fn take_before(
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
pub(super) fn insert_at(creates: &mut Vec<Step>, at: usize, steps: Vec<Step>) {
    creates.splice(at..at, steps);
}

/// Columns an inheritance parent on TARGET adds, drops or changes reach its children too,
/// unless they left it first: the parent's steps move after the child's NO INHERIT, and its
/// column drops after the child's new column defaults as well (an old default may use the
/// parent's serial sequence, which goes with the column).
pub(super) fn parent_changes_after_no_inherit(
    creates: &mut Vec<Step>,
    moves: &[(String, Vec<String>)],
) {
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

/// A label added with ALTER TYPE ... ADD VALUE cannot be used before its transaction commits
/// ("unsafe use of new value"). When a later step uses it, the ADD VALUE step is committed on
/// its own, which splits the plan in two transactions; the step says why.
pub(super) fn commit_new_enum_labels(steps: &mut [Step]) {
    for i in 0..steps.len() {
        if steps[i].adds_enum_labels.is_empty() {
            continue;
        }
        let labels = &steps[i].adds_enum_labels;
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
    drops: &mut [Step],
    creates: &mut [Step],
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

/// `f(integer)` -> `f`: the name two objects of different kinds would collide on.
pub(super) fn base_name(tag: &str) -> String {
    tag.split('(').next().unwrap_or(tag).to_string()
}
