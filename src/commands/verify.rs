//! The last stage of `pgalign apply`: TARGET dumped again must equal SOURCE. What still
//! differs is the residue, listed as `pgalign diff` lists it; apply exits 2 when there is one.

use super::dump_catalog;
use crate::catalog::Catalog;
use crate::dump::Tools;
use crate::endpoint::ConnParams;
use crate::interrupt;
use crate::plan::Plan;
use crate::{diff, render};

/// What verifying found, or why it did not run.
pub enum Verification {
    NotRun(&'static str),
    /// TARGET could not be dumped again after the plan was committed.
    Failed(String),
    /// What differs from SOURCE still (empty: TARGET equals SOURCE).
    Done(Vec<String>),
}

impl Verification {
    /// The verdict, as the report and stdout give it.
    pub fn summary(&self) -> String {
        match self {
            Verification::NotRun(why) => format!("not run ({why})"),
            Verification::Failed(e) => format!("failed: {e}"),
            Verification::Done(r) if r.is_empty() => "target equals source".into(),
            Verification::Done(r) => format!("{} difference(s) remain", r.len()),
        }
    }

    pub fn residue(&self) -> &[String] {
        match self {
            Verification::Done(r) => r,
            _ => &[],
        }
    }
}

/// Dumps TARGET again and compares it with SOURCE: with the source's catalog when apply made
/// the plan, else (a reviewed plan, whose source may be out of reach) with the source's
/// fingerprint the plan carries.
pub async fn verify(
    conn: &ConnParams,
    tools: &[Tools],
    plan: &Plan,
    source: Option<&Catalog>,
    target_name: &str,
) -> Verification {
    let after = interrupt::or_interrupted(
        "verifying (the plan was applied and committed; run `pgalign diff` to check the target)",
        dump_catalog(
            conn,
            tools,
            &plan.filter,
            &format!("target {target_name} after apply"),
        ),
    )
    .await;
    match after {
        Err(e) => Verification::Failed(format!("{e:#}")),
        Ok(after) => Verification::Done(residue(source, &after, plan)),
    }
}

fn residue(source: Option<&Catalog>, after: &Catalog, plan: &Plan) -> Vec<String> {
    match source {
        Some(src) => diff::diff(src, after)
            .changes
            .iter()
            .map(render::change_line)
            .collect(),
        None if after.fingerprint() != plan.source_fingerprint => vec![
            "target's schema fingerprint differs from the plan's source fingerprint (run `pgalign diff` against the source to see what)".into(),
        ],
        None => Vec::new(),
    }
}
