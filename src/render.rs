//! Writers over a plan, a diff or an apply's report: SQL script, human text, JSON, Markdown.
//! They decide nothing.

use crate::apply::StepRun;
use crate::catalog::Catalog;
use crate::diff::{Change, ChangeKind, Diff, Sides};
use crate::duration::Millis;
use crate::plan::{preamble, session_settings, GroupKind, Plan};
use crate::preflight;
use serde::Serialize;
use std::io::{self, Write};

/// Header lines naming both sides.
pub struct Header<'a> {
    pub source: &'a str,
    pub target: &'a str,
}

pub fn plan_sql(plan: &Plan, header: &Header, w: &mut impl Write) -> io::Result<()> {
    plan_sql_with(plan, header, None, w)
}

/// The script, with what preflight found on TARGET's rows (when it ran): a summary in the
/// header, and a `-- preflight:` line on each step it has something to say about.
pub fn plan_sql_with(
    plan: &Plan,
    header: &Header,
    preflight: Option<&preflight::Outcome>,
    w: &mut impl Write,
) -> io::Result<()> {
    writeln!(w, "-- pgalign migration")?;
    writeln!(w, "-- source (desired): {}", one_line(header.source))?;
    writeln!(w, "-- target (changed): {}", one_line(header.target))?;
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
    if let Some(o) = preflight {
        writeln!(w, "-- preflight: {}", one_line(&o.summary()))?;
    }
    let findings = preflight.map_or(&[][..], |o| &o.findings);
    let groups = plan.groups();
    let single = groups.len() <= 1 && groups.iter().all(|g| g.kind == GroupKind::Transaction);
    if single {
        writeln!(w, "-- run with: psql -X -1 -v ON_ERROR_STOP=1 -f THIS_FILE")?;
    } else {
        let outside = groups
            .iter()
            .filter(|g| g.kind == GroupKind::Autocommit)
            .count();
        writeln!(
            w,
            "-- run with: psql -X -v ON_ERROR_STOP=1 -f THIS_FILE   (no -1: it commits in {} groups{}; a failure leaves the groups before it applied)",
            groups.len(),
            if outside > 0 { format!(", {outside} of them outside any transaction") } else { String::new() }
        )?;
    }
    for n in &plan.notes {
        writeln!(w, "-- note: {}", one_line(n))?;
    }
    for u in &plan.unsupported {
        writeln!(w, "--")?;
        writeln!(
            w,
            "-- NOT SUPPORTED YET: {}: {}",
            one_line(&u.object),
            one_line(&u.reason)
        )?;
        if let Some(t) = &u.target_sql {
            writeln!(w, "--   target has:")?;
            for l in comment_lines(t) {
                writeln!(w, "--     {l}")?;
            }
        }
        if let Some(s) = &u.source_sql {
            writeln!(w, "--   source has:")?;
            for l in comment_lines(s) {
                writeln!(w, "--     {l}")?;
            }
        }
    }
    if plan.steps.is_empty() {
        return Ok(());
    }
    for g in &groups {
        let tx = g.kind == GroupKind::Transaction;
        writeln!(w)?;
        if !single {
            if tx {
                writeln!(w, "BEGIN;")?;
            } else {
                writeln!(
                    w,
                    "-- outside any transaction: PostgreSQL refuses this statement inside one"
                )?;
            }
        }
        write!(w, "{}", preamble(tx))?;
        let mut current: Option<(Millis, Millis)> = None;
        for i in g.steps.clone() {
            let s = &plan.steps[i];
            let timeouts = (s.lock_timeout, s.statement_timeout);
            if current.as_ref() != Some(&timeouts) {
                write!(w, "{}", session_settings(s, tx))?;
                current = Some(timeouts);
            }
            writeln!(w)?;
            writeln!(
                w,
                "-- step {}: {} {}: {}",
                i + 1,
                s.op.name(),
                one_line(&s.object),
                one_line(&s.reason)
            )?;
            if !s.hazards.is_empty() {
                let names: Vec<&str> = s.hazards.iter().map(|h| h.name()).collect();
                writeln!(w, "-- hazards: {}", names.join(", "))?;
            }
            for f in findings.iter().filter(|f| f.step == i + 1) {
                writeln!(w, "-- preflight: {}", one_line(&f.text()))?;
            }
            if let Some(ix) = &s.replaces_invalid_index {
                writeln!(
                    w,
                    "-- if an earlier interrupted build left {} INVALID, drop it first (pgalign apply does)",
                    one_line(ix)
                )?;
            }
            if let Some(undo) = &s.on_failure_sql {
                writeln!(
                    w,
                    "-- if this step fails, run: {} (pgalign apply does)",
                    undo.trim_end()
                )?;
            }
            write!(w, "{}", s.sql)?;
        }
        if !single && tx {
            writeln!(w, "COMMIT;")?;
        }
    }
    Ok(())
}

/// Text for a `--` comment: names (which may hold line breaks, quoted) on one line. The server
/// ends a comment at `\n` or `\r`; what follows would be SQL.
fn one_line(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\n', '\r']) {
        s.replace(['\n', '\r'], " ").into()
    } else {
        s.into()
    }
}

/// Lines of SQL to show in `--` comments, broken where the server would break them.
fn comment_lines(s: &str) -> impl Iterator<Item = &str> {
    s.split(['\n', '\r'])
}

pub fn plan_json(plan: &Plan, w: &mut impl Write) -> io::Result<()> {
    plan_json_with(plan, None, w)
}

/// The plan as JSON, with what preflight found (when it ran) as a top-level `preflight`
/// array. Findings are what TARGET's rows were when the plan was made: kept beside the plan,
/// outside its digest, and ignored when the plan is read back (`apply --plan` runs the checks
/// again).
pub fn plan_json_with(
    plan: &Plan,
    preflight: Option<&[preflight::Finding]>,
    w: &mut impl Write,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct WithFindings<'a> {
        #[serde(flatten)]
        plan: &'a Plan,
        #[serde(skip_serializing_if = "Option::is_none")]
        preflight: Option<&'a [preflight::Finding]>,
    }
    serde_json::to_writer_pretty(&mut *w, &WithFindings { plan, preflight })?;
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
                change: c.kind(),
                kind: c.key.kind.to_string(),
                schema: c.key.schema.to_string(),
                name: c.key.name.to_string(),
                object: c.key.display(),
                target_sql: c.target().map(|i| tgt.blocks[i].compare_text()),
                source_sql: c.source().map(|i| src.blocks[i].compare_text()),
            })
            .collect(),
        notes: d.notes.clone(),
    };
    serde_json::to_writer_pretty(&mut *w, &out)?;
    writeln!(w)
}

/// `+ table public.orders`: one change as `diff` lists it, and as `apply` lists what remains
/// after it (so that the two can be compared).
pub fn change_line(c: &Change) -> String {
    let sign = match c.kind() {
        ChangeKind::Created => "+",
        ChangeKind::Dropped => "-",
        ChangeKind::Changed => "~",
    };
    format!("{sign} {}", c.key.display())
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
        let code = match c.kind() {
            ChangeKind::Created => "32",
            ChangeKind::Dropped => "31",
            ChangeKind::Changed => "33",
        };
        writeln!(w, "{}", paint(code, &change_line(c)))?;
    }
    for n in &d.notes {
        writeln!(w, "note: {n}")?;
    }
    for c in &d.changes {
        let Sides::Changed { source, target } = c.sides else {
            continue;
        };
        let old = tgt.blocks[target].compare_text();
        let new = src.blocks[source].compare_text();
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

/// What `apply` did, as `--report` writes it (JSON) and `--report-md` renders it.
#[derive(Serialize)]
pub struct ApplyReport<'a> {
    pub target: &'a str,
    pub dry_run: bool,
    pub plan_steps: usize,
    pub hazards_present: Vec<&'static str>,
    pub hazards_allowed: Vec<&'static str>,
    /// What preflight found before anything changed; None when it did not run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preflight: Option<&'a [preflight::Finding]>,
    pub steps: &'a [StepRun],
    pub groups: usize,
    pub groups_committed: usize,
    pub error: Option<&'a str>,
    pub verification: &'a str,
    pub residue: &'a [String],
    /// The plan run first on a scratch copy of TARGET's schema; None when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rehearsal: Option<&'a RehearsalReport>,
    pub total_ms: f64,
}

/// What the rehearsal on a scratch database found, before anything ran on TARGET.
#[derive(Debug, Default, Serialize)]
pub struct RehearsalReport {
    /// The scratch database, as `user@host:port/pgalign_rehearsal_...`.
    pub database: String,
    pub passed: bool,
    pub steps: Vec<StepRun>,
    pub error: Option<String>,
    pub verification: String,
    pub residue: Vec<String>,
    pub ms: f64,
}

fn steps_table_md(steps: &[StepRun], s: &mut String) {
    if steps.is_empty() {
        return;
    }
    s.push_str("| # | step | status | ms |\n|---|---|---|---|\n");
    for st in steps {
        s.push_str(&format!(
            "| {} | {} {} | {} | {:.0} |\n",
            st.step,
            st.op,
            st.object.replace('|', "\\|"),
            st.status.replace('|', "\\|"),
            st.ms
        ));
    }
    s.push('\n');
}

fn rehearsal_md(r: &RehearsalReport, s: &mut String) {
    s.push_str(&format!(
        "#### Rehearsal on a scratch copy of TARGET's schema: {} ({:.1} s)\n\n",
        if r.passed { "✅ passed" } else { "❌ failed" },
        r.ms / 1000.0
    ));
    s.push_str(&format!(
        "Scratch database: `{}` (dropped after)\n\n",
        r.database
    ));
    if let Some(e) = &r.error {
        s.push_str(&format!("**Error:** {}\n\n", e.replace('|', "\\|")));
    }
    steps_table_md(&r.steps, s);
    s.push_str(&format!("Verification: {}\n", r.verification));
    for x in &r.residue {
        s.push_str(&format!("- `{x}`\n"));
    }
    s.push('\n');
}

pub fn apply_report_json(r: &ApplyReport) -> serde_json::Result<String> {
    Ok(serde_json::to_string_pretty(r)? + "\n")
}

/// The report as a pull request comment: status first, then the steps as a table.
pub fn apply_report_md(r: &ApplyReport) -> String {
    let mut s = String::new();
    let status = if r.error.is_some() {
        "❌ failed"
    } else if !r.residue.is_empty() {
        "⚠️ applied, differences remain"
    } else if r.dry_run {
        "🧪 dry run (rehearsed; nothing was changed on TARGET)"
    } else {
        "✅ applied and verified"
    };
    s.push_str(&format!("### pgalign apply: {status}\n\n"));
    s.push_str(&format!(
        "Target: `{}` · {} step(s) · {:.1} s\n\n",
        r.target,
        r.plan_steps,
        r.total_ms / 1000.0
    ));
    if !r.hazards_present.is_empty() {
        s.push_str(&format!(
            "Hazards in the plan: {} (allowed: {})\n\n",
            r.hazards_present.join(", "),
            if r.hazards_allowed.is_empty() {
                "none".to_string()
            } else {
                r.hazards_allowed.join(", ")
            }
        ));
    }
    if let Some(e) = r.error {
        s.push_str(&format!("**Error:** {}\n\n", e.replace('|', "\\|")));
    }
    match r.preflight {
        Some([]) => s.push_str("Preflight: nothing found on TARGET's rows\n\n"),
        Some(found) => {
            s.push_str("Preflight (TARGET's rows, before anything was locked):\n\n");
            for f in found {
                s.push_str(&format!("- {}\n", f.line().replace('|', "\\|")));
            }
            s.push('\n');
        }
        None => {}
    }
    if let Some(rh) = r.rehearsal {
        rehearsal_md(rh, &mut s);
    }
    if r.rehearsal.is_some() && !r.steps.is_empty() {
        s.push_str("#### On TARGET\n\n");
    }
    steps_table_md(r.steps, &mut s);
    s.push_str(&format!("Verification: {}\n", r.verification));
    for x in r.residue {
        s.push_str(&format!("- `{x}`\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Op, Step, Unsupported};

    /// Regression (mutation test): an index named `";\nDELETE FROM x;\n"` went into a `--`
    /// comment as it was, and its second line became a statement of the script.
    #[test]
    fn comments_stay_comments() {
        let name = "public.\";\nDELETE FROM x;\r\n\"";
        let step = Step {
            object: format!("index {name}"),
            kind: crate::catalog::ObjectKind::Index,
            op: Op::Create,
            reason: "not in target\rDELETE FROM y;".into(),
            sql: "SELECT 1;\n".into(),
            hazards: vec![],
            lock_timeout: crate::duration::Millis::from_secs(10),
            statement_timeout: crate::duration::Millis::ZERO,
            transactional: true,
            own_transaction: false,
            replaces_invalid_index: Some(name.into()),
            on_failure_sql: None,
            finishes_concurrent_build: false,
            preflight: Vec::new(),
            mark: Default::default(),
        };
        let plan = Plan {
            format: 1,
            pgalign_version: String::new(),
            digest: String::new(),
            target_fingerprint: String::new(),
            source_fingerprint: String::new(),
            filter: Default::default(),
            steps: vec![step],
            unsupported: vec![Unsupported {
                object: name.into(),
                reason: "x\ny".into(),
                target_sql: Some("CREATE INDEX a;\rDELETE FROM z;".into()),
                source_sql: None,
            }],
            notes: vec!["a\nDELETE FROM n;".into()],
        };
        let mut out = Vec::new();
        let header = Header {
            source: "s\nDELETE FROM h;",
            target: "t",
        };
        plan_sql(&plan, &header, &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        for line in out.split(['\n', '\r']) {
            assert!(!line.starts_with("DELETE"), "{line:?} in:\n{out}");
        }
    }
}
