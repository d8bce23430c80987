//! What each step locks on the relations TARGET already has, how strongly, and the work it
//! does under that lock (a rewrite, a scan of every row, an index build). Read from the
//! catalog's reading of the step's statements (`catalog::locks`) and the step's hazards; a
//! relation the plan itself creates is left out (nobody waits for it). Sizes are not here:
//! they are TARGET's facts of the moment, looked up when TARGET is a live database
//! (`crate::preflight::sizes`). Pure.

use super::{Hazard, Op, Step};
use crate::catalog::locks::{self, Lock, On};
use crate::catalog::{Catalog, Key, ObjectKind};
use serde::{Deserialize, Serialize};

pub use super::preflight::Rel;

/// A lock a step takes on a relation TARGET has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locked {
    pub table: Rel,
    pub lock: Lock,
}

/// What a step does under its strongest lock, besides changing the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Work {
    /// Writes the whole table anew (time and disk in proportion to its size).
    Rewrite,
    /// Reads every row (to validate a constraint or NOT NULL).
    Scan,
    /// Builds an index (reads every row and sorts).
    IndexBuild,
}

impl Work {
    pub fn text(self) -> &'static str {
        match self {
            Work::Rewrite => "rewrites the table",
            Work::Scan => "reads every row",
            Work::IndexBuild => "builds an index",
        }
    }
}

/// A step's impact: the locks on TARGET's relations, strongest first, and its work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    pub locks: Vec<Locked>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work: Option<Work>,
}

impl Impact {
    /// The strongest lock it takes.
    pub fn lock(&self) -> Option<Lock> {
        self.locks.iter().map(|l| l.lock).max()
    }
    /// The tables under the strongest lock (the work, when there is some, is done on them).
    pub fn strongest(&self) -> impl Iterator<Item = &Rel> {
        let top = self.lock();
        self.locks
            .iter()
            .filter(move |l| Some(l.lock) == top)
            .map(|l| &l.table)
    }
}

/// Kinds whose statements never lock a relation: their text is not read (a function body can
/// be long).
fn locks_nothing(kind: &ObjectKind) -> bool {
    use ObjectKind as K;
    matches!(
        kind,
        K::Function
            | K::Procedure
            | K::Aggregate
            | K::Schema
            | K::Extension
            | K::Acl
            | K::DefaultAcl
            | K::Collation
            | K::Operator
            | K::OperatorClass
            | K::OperatorFamily
            | K::ProceduralLanguage
            | K::Cast
            | K::Conversion
            | K::EventTrigger
            | K::Publication
            | K::Subscription
    )
}

/// TARGET's relations of any sort, as steps name them.
fn exists(tgt: &Catalog, (schema, name): (&str, &str)) -> bool {
    use ObjectKind as K;
    [
        K::Table,
        K::ForeignTable,
        K::View,
        K::MaterializedView,
        K::Sequence,
    ]
    .into_iter()
    .any(|kind| {
        tgt.get(&Key {
            kind,
            schema: schema.into(),
            name: name.into(),
        })
        .is_some()
    })
}

/// The table of TARGET's index `schema.name`.
fn table_of_index(tgt: &Catalog, (schema, name): (&str, &str)) -> Option<(String, String)> {
    let b = tgt.get(&Key {
        kind: ObjectKind::Index,
        schema: schema.into(),
        name: name.into(),
    })?;
    b.stmts.first().and_then(|s| locks::index_table(s))
}

/// The impact of one step on TARGET's relations; None when it locks none of them.
pub(crate) fn of(step: &Step, tgt: &Catalog) -> Option<Impact> {
    if locks_nothing(&step.kind) {
        return None;
    }
    let mut out: Vec<Locked> = Vec::new();
    for t in locks::taken_by(&step.sql) {
        let table = match t.on {
            On::Relation(r) => r,
            On::TableOfIndex(ix) => match table_of_index(tgt, (&ix.0, &ix.1)) {
                Some(r) => r,
                None => continue,
            },
        };
        if !exists(tgt, (&table.0, &table.1)) {
            continue;
        }
        let table = Rel {
            schema: table.0,
            name: table.1,
        };
        match out.iter_mut().find(|l| l.table == table) {
            Some(l) => l.lock = l.lock.max(t.lock),
            None => out.push(Locked {
                table,
                lock: t.lock,
            }),
        }
    }
    if out.is_empty() {
        return None;
    }
    // Strongest first; equal locks keep the statement's order.
    out.sort_by_key(|l| std::cmp::Reverse(l.lock));
    let has = |h| step.hazards.contains(&h);
    let work = if has(Hazard::TableRewrite) {
        Some(Work::Rewrite)
    } else if has(Hazard::IndexBuild) || (step.kind == ObjectKind::Index && step.op == Op::Create) {
        Some(Work::IndexBuild)
    } else if has(Hazard::ValidationScan) {
        Some(Work::Scan)
    } else {
        None
    };
    Some(Impact { locks: out, work })
}

/// Gives every step its impact.
pub(crate) fn annotate(steps: &mut [Step], tgt: &Catalog) {
    // Each is a parse of the step's SQL: on two threads (2 cores).
    let impacts = crate::threads::on_two_threads(steps, |s| of(s, tgt));
    for (s, impact) in steps.iter_mut().zip(impacts) {
        s.impact = impact;
    }
}
