//! Writers over a plan or a diff: SQL script, human text, JSON. They decide nothing.

use crate::catalog::Catalog;
use crate::diff::{ChangeKind, Diff};
use crate::plan::{Plan, Step};
use serde::Serialize;
use std::io::{self, Write};

/// The statements that open a transaction group: the same helper apply uses, so that what
/// the script says and what apply does cannot drift apart.
pub fn session_settings(step: &Step) -> String {
    format!(
        "SET LOCAL lock_timeout = '{}';\nSET LOCAL statement_timeout = '{}';\n",
        step.lock_timeout, step.statement_timeout
    )
}

/// Settings every pgalign script runs under, as pg_dump's own output does: its statements are
/// written for an empty search_path and with function bodies unchecked until all exist.
pub const SCRIPT_PREAMBLE: &str = "SET LOCAL search_path = '';\nSET LOCAL check_function_bodies = false;\nSET LOCAL client_min_messages = warning;\n";

/// Header lines naming both sides.
pub struct Header<'a> {
    pub source: &'a str,
    pub target: &'a str,
}

pub fn plan_sql(plan: &Plan, header: &Header, w: &mut impl Write) -> io::Result<()> {
    writeln!(w, "-- pgalign migration")?;
    writeln!(w, "-- source (desired): {}", header.source)?;
    writeln!(w, "-- target (changed): {}", header.target)?;
    writeln!(
        w,
        "-- {} step(s), {} not supported yet",
        plan.steps.len(),
        plan.unsupported.len()
    )?;
    let hazards = plan.hazards();
    if !hazards.is_empty() {
        let names: Vec<&str> = hazards.iter().map(|h| h.name()).collect();
        writeln!(w, "-- hazards: {}", names.join(", "))?;
    }
    writeln!(w, "-- run with: psql -X -1 -v ON_ERROR_STOP=1 -f THIS_FILE")?;
    for n in &plan.notes {
        writeln!(w, "-- note: {n}")?;
    }
    for u in &plan.unsupported {
        writeln!(w, "--")?;
        writeln!(w, "-- NOT SUPPORTED YET: {}: {}", u.object, u.reason)?;
        if let Some(t) = &u.target_sql {
            writeln!(w, "--   target has:")?;
            for l in t.lines() {
                writeln!(w, "--     {l}")?;
            }
        }
        if let Some(s) = &u.source_sql {
            writeln!(w, "--   source has:")?;
            for l in s.lines() {
                writeln!(w, "--     {l}")?;
            }
        }
    }
    if plan.steps.is_empty() {
        return Ok(());
    }
    writeln!(w)?;
    writeln!(w, "{}", SCRIPT_PREAMBLE.trim_end())?;
    let mut current: Option<(String, String)> = None;
    for (i, s) in plan.steps.iter().enumerate() {
        let timeouts = (s.lock_timeout.clone(), s.statement_timeout.clone());
        if current.as_ref() != Some(&timeouts) {
            write!(w, "{}", session_settings(s))?;
            current = Some(timeouts);
        }
        writeln!(w)?;
        writeln!(
            w,
            "-- step {}: {} {}: {}",
            i + 1,
            s.op.name(),
            s.object,
            s.reason
        )?;
        if !s.hazards.is_empty() {
            let names: Vec<&str> = s.hazards.iter().map(|h| h.name()).collect();
            writeln!(w, "-- hazards: {}", names.join(", "))?;
        }
        write!(w, "{}", s.sql)?;
    }
    Ok(())
}

pub fn plan_json(plan: &Plan, w: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *w, plan)?;
    writeln!(w)
}

#[derive(Serialize)]
struct JsonChange {
    change: ChangeKind,
    kind: String,
    schema: String,
    name: String,
    object: String,
    target_sql: Option<String>,
    source_sql: Option<String>,
}

#[derive(Serialize)]
struct JsonDiff {
    equal: bool,
    changes: Vec<JsonChange>,
    notes: Vec<String>,
}

pub fn diff_json(d: &Diff, src: &Catalog, tgt: &Catalog, w: &mut impl Write) -> io::Result<()> {
    let out = JsonDiff {
        equal: d.is_empty(),
        changes: d
            .changes
            .iter()
            .map(|c| JsonChange {
                change: c.kind,
                kind: c.key.kind.clone(),
                schema: c.key.schema.clone(),
                name: c.key.name.clone(),
                object: c.key.display(),
                target_sql: c.target.map(|i| tgt.blocks[i].compare_text()),
                source_sql: c.source.map(|i| src.blocks[i].compare_text()),
            })
            .collect(),
        notes: d.notes.clone(),
    };
    serde_json::to_writer_pretty(&mut *w, &out)?;
    writeln!(w)
}

/// `+ table public.orders` lines, then a unified diff per changed object.
pub fn diff_text(
    d: &Diff,
    src: &Catalog,
    tgt: &Catalog,
    color: bool,
    w: &mut impl Write,
) -> io::Result<()> {
    let paint = |code: &str, s: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    };
    for c in &d.changes {
        let (sign, code) = match c.kind {
            ChangeKind::Created => ("+", "32"),
            ChangeKind::Dropped => ("-", "31"),
            ChangeKind::Changed => ("~", "33"),
        };
        writeln!(w, "{}", paint(code, &format!("{sign} {}", c.key.display())))?;
    }
    for n in &d.notes {
        writeln!(w, "note: {n}")?;
    }
    for c in d.changes.iter().filter(|c| c.kind == ChangeKind::Changed) {
        let old = tgt.blocks[c.target.unwrap()].compare_text();
        let new = src.blocks[c.source.unwrap()].compare_text();
        writeln!(w)?;
        let text = similar::TextDiff::from_lines(&old, &new);
        let udiff = text
            .unified_diff()
            .context_radius(3)
            .header(
                &format!("target: {}", c.key.display()),
                &format!("source: {}", c.key.display()),
            )
            .to_string();
        for line in udiff.lines() {
            let code = if line.starts_with("+++") || line.starts_with("---") {
                "1"
            } else if line.starts_with('+') {
                "32"
            } else if line.starts_with('-') {
                "31"
            } else if line.starts_with("@@") {
                "36"
            } else {
                ""
            };
            if code.is_empty() {
                writeln!(w, "{line}")?;
            } else {
                writeln!(w, "{}", paint(code, line))?;
            }
        }
    }
    Ok(())
}
