//! Writers over a plan, a diff or an apply's report: SQL script, human text, JSON, Markdown.
//! They decide nothing.

use crate::apply::StepRun;
use crate::catalog::locks::Lock;
use crate::catalog::Catalog;
use crate::diff::{Change, ChangeKind, Diff, Sides};
use crate::duration::Millis;
use crate::plan::impact::{Impact, Rel, Work};
use crate::plan::{preamble, session_settings, GroupKind, Plan, Step};
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
    if let Some(o) = preflight.filter(|o| o.checks > 0) {
        writeln!(w, "-- preflight: {}", one_line(&o.summary()))?;
    }
    for line in impact_summary(plan, preflight) {
        writeln!(w, "-- impact: {}", one_line(&line))?;
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
            if let Some(text) = impact_text(s, preflight) {
                writeln!(w, "-- impact: {}", one_line(&text))?;
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

/// A table as the impact lines show it: `public.orders (1.2 GB, ~9.1M rows)` when its size
/// is known.
fn sized(t: &Rel, o: Option<&preflight::Outcome>) -> String {
    match o.and_then(|o| o.size_of(t)) {
        Some(size) => format!("{} ({})", t.display(), size.text()),
        None => t.display(),
    }
}

/// What a step locks and does: `ACCESS EXCLUSIVE on public.orders (1.2 GB, ~9.1M rows),
/// rewrites the table; SHARE ROW EXCLUSIVE on public.customers (...)`. None when it locks
/// nothing TARGET has.
pub fn impact_text(s: &Step, o: Option<&preflight::Outcome>) -> Option<String> {
    let imp = s.impact.as_ref()?;
    let mut parts: Vec<String> = Vec::new();
    let mut levels: Vec<Lock> = imp.locks.iter().map(|l| l.lock).collect();
    levels.dedup();
    for (n, level) in levels.into_iter().enumerate() {
        let tables: Vec<String> = imp
            .locks
            .iter()
            .filter(|l| l.lock == level)
            .map(|l| sized(&l.table, o))
            .collect();
        let mut part = format!("{} on {}", level.name(), tables.join(", "));
        if n == 0 {
            if let Some(work) = imp.work {
                part.push_str(&format!(", {}", work.text()));
            }
        }
        parts.push(part);
    }
    Some(parts.join("; "))
}

/// The header's summary of the steps' impact: how many steps take which strongest lock, and
/// the largest tables rewritten or locked ACCESS EXCLUSIVE (sizes when TARGET was read).
pub fn impact_summary(plan: &Plan, o: Option<&preflight::Outcome>) -> Vec<String> {
    let mut out = Vec::new();
    let with: Vec<(usize, &Impact)> = plan
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.impact.as_ref().map(|m| (i + 1, m)))
        .collect();
    if with.is_empty() {
        return out;
    }
    let count = |lock: Lock| with.iter().filter(|(_, m)| m.lock() == Some(lock)).count();
    let mut counts: Vec<String> = [
        Lock::AccessExclusive,
        Lock::ShareRowExclusive,
        Lock::Share,
        Lock::ShareUpdateExclusive,
    ]
    .into_iter()
    .filter(|l| count(*l) > 0)
    .map(|l| format!("{} {}", count(l), l.name()))
    .collect();
    let rewrites = with
        .iter()
        .filter(|(_, m)| m.work == Some(Work::Rewrite))
        .count();
    if rewrites > 0 {
        counts.push(format!("{rewrites} rewrite(s)"));
    }
    out.push(format!(
        "steps on existing tables by strongest lock: {}",
        counts.join(", ")
    ));
    if let Some(why) = o.and_then(|o| o.sizes_not_read.as_deref()) {
        out.push(format!("sizes not read: {why}"));
    }
    // The tables that wait longest: those rewritten or locked ACCESS EXCLUSIVE, largest first
    // (in plan order when sizes are unknown), each once, with the steps that do it.
    struct Heavy<'a> {
        table: &'a Rel,
        bytes: u64,
        locked: Vec<usize>,
        rewritten: Vec<usize>,
    }
    let mut heavy: Vec<Heavy> = Vec::new();
    for (i, m) in &with {
        let rewrite = m.work == Some(Work::Rewrite);
        if !rewrite && m.lock() != Some(Lock::AccessExclusive) {
            continue;
        }
        for t in m.strongest() {
            let at = match heavy.iter().position(|h| h.table == t) {
                Some(at) => at,
                None => {
                    let bytes = o.and_then(|o| o.size_of(t)).map_or(0, |z| z.bytes);
                    heavy.push(Heavy {
                        table: t,
                        bytes,
                        locked: Vec::new(),
                        rewritten: Vec::new(),
                    });
                    heavy.len() - 1
                }
            };
            let h = &mut heavy[at];
            if m.lock() == Some(Lock::AccessExclusive) {
                h.locked.push(*i);
            }
            if rewrite {
                h.rewritten.push(*i);
            }
        }
    }
    heavy.sort_by_key(|h| std::cmp::Reverse(h.bytes));
    let steps = |v: &[usize]| {
        let n: Vec<String> = v.iter().map(|i| i.to_string()).collect();
        format!(
            "step{} {}",
            if v.len() > 1 { "s" } else { "" },
            n.join(", ")
        )
    };
    let more = heavy.len().saturating_sub(3);
    for h in heavy.iter().take(3) {
        let mut what = Vec::new();
        if !h.locked.is_empty() {
            what.push(format!("ACCESS EXCLUSIVE in {}", steps(&h.locked)));
        }
        if !h.rewritten.is_empty() {
            what.push(format!("rewritten in {}", steps(&h.rewritten)));
        }
        out.push(format!("{}: {}", sized(h.table, o), what.join("; ")));
    }
    if more > 0 {
        out.push(format!(
            "and {more} more table(s) locked ACCESS EXCLUSIVE or rewritten"
        ));
    }
    out
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
/// array, and the sizes of the relations its steps lock as `table_sizes`. Both are what TARGET
/// was when the plan was made: kept beside the plan, outside its digest, and ignored when the
/// plan is read back (`apply --plan` looks again).
pub fn plan_json_with(
    plan: &Plan,
    preflight: Option<&preflight::Outcome>,
    w: &mut impl Write,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct WithFindings<'a> {
        #[serde(flatten)]
        plan: &'a Plan,
        #[serde(skip_serializing_if = "Option::is_none")]
        preflight: Option<&'a [preflight::Finding]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        table_sizes: Option<&'a [preflight::TableSize]>,
    }
    let findings = preflight.filter(|o| o.checks > 0).map(|o| &o.findings[..]);
    let table_sizes = preflight
        .filter(|o| !o.sizes.is_empty())
        .map(|o| &o.sizes[..]);
    serde_json::to_writer_pretty(
        &mut *w,
        &WithFindings {
            plan,
            preflight: findings,
            table_sizes,
        },
    )?;
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
    /// What each step locks on TARGET's existing relations, with their sizes when read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub impact: Vec<ImpactRow>,
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

/// One step's impact, for reports.
#[derive(Debug, Clone, Serialize)]
pub struct ImpactRow {
    pub step: usize,
    pub object: String,
    pub lock: &'static str,
    /// `ACCESS EXCLUSIVE on public.orders (1.2 GB, ~9.1M rows), rewrites the table`.
    pub text: String,
    /// The size of the largest table under the strongest lock, when read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub work: Option<Work>,
}

/// The impact of each step that has one.
pub fn impact_rows(plan: &Plan, o: Option<&preflight::Outcome>) -> Vec<ImpactRow> {
    plan.steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let m = s.impact.as_ref()?;
            Some(ImpactRow {
                step: i + 1,
                object: s.object.clone(),
                lock: m.lock()?.name(),
                text: impact_text(s, o)?,
                bytes: m
                    .strongest()
                    .filter_map(|t| o.and_then(|o| o.size_of(t)).map(|z| z.bytes))
                    .max(),
                work: m.work,
            })
        })
        .collect()
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
    if !r.impact.is_empty() {
        s.push_str("Impact (locks on TARGET's existing tables):\n\n| # | step | lock | on, and work |\n|---|---|---|---|\n");
        for m in &r.impact {
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                m.step,
                m.object.replace('|', "\\|"),
                m.lock,
                m.text.replace('|', "\\|")
            ));
        }
        s.push('\n');
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
            preflight: Vec::new(),
            impact: None,
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
