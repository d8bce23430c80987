//! The sizes of the relations a plan's steps lock (`Step::impact`): read from TARGET's catalog
//! (`pg_total_relation_size`, `reltuples`), not its rows, in preflight's read-only session, so
//! a reviewer sees "ACCESS EXCLUSIVE on public.orders (1.2 GB, ~9.1M rows)" and
//! `--max-rewrite` can refuse.

use super::{estimate, query, Fail, Session};
use crate::plan::preflight::Rel;
use crate::plan::Plan;
use serde::Serialize;

/// How big a relation a step locks is, in TARGET now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableSize {
    pub table: Rel,
    /// `pg_total_relation_size`: heap, indexes and TOAST (a partitioned table's partitions
    /// summed).
    pub bytes: u64,
    /// `reltuples`, the planner's estimate; None when the table was never analyzed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<f64>,
}

impl TableSize {
    /// `1.2 GB, ~9.1M rows`.
    pub fn text(&self) -> String {
        let size = crate::bytes::Bytes(self.bytes);
        match self.rows {
            Some(r) => format!("{size}, {} rows", estimate(r)),
            None => format!("{size}, rows not estimated"),
        }
    }
}

/// Whether any step locks a relation TARGET has (whose size is then looked up).
pub fn has_impact(plan: &Plan) -> bool {
    plan.steps.iter().any(|s| s.impact.is_some())
}

/// The relations the steps lock, each once, in step order.
pub(super) fn locked_relations(plan: &Plan) -> Vec<Rel> {
    let mut out: Vec<Rel> = Vec::new();
    for l in plan.steps.iter().filter_map(|s| s.impact.as_ref()) {
        for t in &l.locks {
            if !out.contains(&t.table) {
                out.push(t.table.clone());
            }
        }
    }
    out
}

impl Session<'_> {
    /// The sizes of the relations given, in the order given (those TARGET has).
    pub(super) async fn sizes(&mut self, rels: &[Rel]) -> Result<Vec<TableSize>, Fail> {
        let schemas: Vec<&str> = rels.iter().map(|r| r.schema.as_str()).collect();
        let names: Vec<&str> = rels.iter().map(|r| r.name.as_str()).collect();
        let rows = self.query(query::SIZES, &[&schemas, &names]).await?;
        let mut out: Vec<TableSize> = rows
            .iter()
            .filter_map(|r| {
                Some(TableSize {
                    table: Rel {
                        schema: r.try_get(0).ok()?,
                        name: r.try_get(1).ok()?,
                    },
                    bytes: r.try_get::<_, i64>(2).ok()?.max(0) as u64,
                    rows: r.try_get::<_, Option<f64>>(3).ok().flatten(),
                })
            })
            .collect();
        out.sort_by_key(|t| rels.iter().position(|r| *r == t.table));
        Ok(out)
    }
}
