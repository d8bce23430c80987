//! `pgalign apply`: plan (or read a reviewed plan), gate on hazards, apply on one connection
//! under an advisory lock, then re-dump TARGET and prove it equals SOURCE.

use super::verify::{self, Verification};
use super::{connect_params, load, Outcome, Timings};
use crate::apply;
use crate::catalog::Catalog;
use crate::cli::ApplyArgs;
use crate::diff;
use crate::dump;
use crate::endpoint::{ConnParams, Endpoint, Side};
use crate::interrupt;
use crate::plan::impact::Work;
use crate::plan::{self, Hazard, Plan};
use crate::render::{self, ApplyReport};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

fn allowed_hazards(args: &ApplyArgs) -> BTreeSet<Hazard> {
    if args.allow_all_hazards {
        return Hazard::ALL.into_iter().collect();
    }
    args.allow_hazards.iter().copied().collect()
}

/// What stderr says when the plan has hazards that were not allowed (None: it has none).
fn refusal(p: &Plan, allowed: &BTreeSet<Hazard>, target_name: &str) -> Option<Vec<String>> {
    let refused = refusals(p, allowed);
    if refused.is_empty() {
        return None;
    }
    let present: BTreeSet<&str> = p
        .hazards()
        .into_iter()
        .chain(if p.unsupported.is_empty() {
            None
        } else {
            Some(Hazard::Unsupported)
        })
        .filter(|h| !allowed.contains(h))
        .map(|h| h.name())
        .collect();
    let mut messages = vec![format!(
        "pgalign: refused: the plan has hazards that were not allowed; nothing was changed on {target_name}"
    )];
    messages.extend(refused.iter().map(|r| format!("  {r}")));
    messages.push(format!(
        "  to apply anyway: --allow-hazards {} (or --allow-all-hazards)",
        present.into_iter().collect::<Vec<_>>().join(",")
    ));
    Some(messages)
}

/// Steps (and unsupported entries) whose hazards are not allowed.
fn refusals(p: &Plan, allowed: &BTreeSet<Hazard>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, s) in p.steps.iter().enumerate() {
        let blocking: Vec<&str> = s
            .hazards
            .iter()
            .filter(|h| !allowed.contains(h))
            .map(|h| h.name())
            .collect();
        if !blocking.is_empty() {
            out.push(format!(
                "step {} ({} {}): {}",
                i + 1,
                s.op.name(),
                s.object,
                blocking.join(", ")
            ));
        }
    }
    if !allowed.contains(&Hazard::Unsupported) {
        for u in &p.unsupported {
            out.push(format!(
                "{}: unsupported ({}); applying the rest would leave it different",
                u.object, u.reason
            ));
        }
    }
    out
}

/// What stderr says when a step rewrites a table larger than `--max-rewrite`, or one whose
/// size could not be read (None: every rewrite is within the limit).
fn too_large_rewrites(
    p: &Plan,
    sizes: Option<&crate::preflight::Outcome>,
    max: crate::bytes::Bytes,
    target_name: &str,
) -> Option<Vec<String>> {
    let mut refused = Vec::new();
    for (i, s) in p.steps.iter().enumerate() {
        let Some(m) = s.impact.as_ref().filter(|m| m.work == Some(Work::Rewrite)) else {
            continue;
        };
        for t in m.strongest() {
            let what = match sizes.and_then(|o| o.size_of(t)) {
                Some(z) if z.bytes <= max.0 => continue,
                Some(z) => format!("rewrites {} ({})", t.display(), z.text()),
                None => format!(
                    "rewrites {}, whose size could not be read{}",
                    t.display(),
                    sizes
                        .and_then(|o| o.sizes_not_read.as_deref())
                        .map(|w| format!(" ({w})"))
                        .unwrap_or_default()
                ),
            };
            refused.push(format!(
                "  step {} ({} {}): {what}",
                i + 1,
                s.op.name(),
                s.object
            ));
        }
    }
    if refused.is_empty() {
        return None;
    }
    let mut messages = vec![format!(
        "pgalign: refused: the plan rewrites a table larger than --max-rewrite {max}; nothing was changed on {target_name}"
    )];
    messages.extend(refused);
    messages.push(
        "  rewrite it in a maintenance window with a larger --max-rewrite, or change it in smaller steps by hand (a new column, backfill, swap)".into(),
    );
    Some(messages)
}

/// Connected, locked, and planned: what apply starts from.
struct Prepared {
    target: apply::connect::Target,
    plan: Plan,
    source: Option<Catalog>,
    /// TARGET's schema as dumped for the plan (or for checking the reviewed plan): what a
    /// rehearsal restores.
    archive: Option<dump::Archive>,
}

/// Connects, takes the advisory lock, and plans (or reads and checks the reviewed plan).
/// Nothing is changed here: a signal may stop it at any point.
async fn prepare(
    args: &ApplyArgs,
    conn: &crate::endpoint::ConnParams,
    target_name: &str,
    tools: &[dump::Tools],
    timings: &mut Timings,
) -> Result<Prepared> {
    let target = apply::connect::connect(conn)
        .await
        .with_context(|| format!("connecting to target {target_name}"))?;
    apply::lock(&target.client, args.lock_wait.as_duration())
        .await
        .map_err(|e| anyhow!("target {target_name}: {e}"))?;
    // Under the lock: what TARGET is now, and the plan for it.
    let t = Instant::now();
    let (plan, source, archive) = match &args.plan {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the plan {}", path.display()))?;
            let p: Plan = serde_json::from_str(&text).map_err(|e| {
                anyhow!(
                    "{} is not a pgalign plan (make one with `pgalign plan --format json -o FILE`): {e}",
                    path.display()
                )
            })?;
            if p.format != plan::PLAN_FORMAT {
                bail!(
                    "{} is a plan of format {}, this pgalign reads format {}: make the plan again",
                    path.display(),
                    p.format,
                    plan::PLAN_FORMAT
                );
            }
            if let Some(why) = p.tampered() {
                bail!(
                    "the plan {} {why}: make the plan again (`pgalign plan --format json -o FILE`) and review it, or run the reviewed SQL script by hand with psql",
                    path.display()
                );
            }
            let tool = tools.first().context("no pg_dump found")?;
            let dumped = async {
                let a = dump::dump_archive(conn, tool).await?;
                let cat = a.read(tool, &p.filter).await?;
                Ok::<_, dump::DumpError>((cat, a))
            };
            let (now, archive) = dumped
                .await
                .map_err(|e| anyhow!("dumping target {target_name}: {e}"))?;
            if now.fingerprint() != p.target_fingerprint {
                bail!(
                    "target {target_name} has changed since the plan {} was made (schema fingerprint {} now, {} in the plan): make a new plan and review it",
                    path.display(),
                    &now.fingerprint()[..12],
                    &p.target_fingerprint[..12.min(p.target_fingerprint.len())]
                );
            }
            (p, None, Some(archive))
        }
        None => {
            let loaded = load(&args.common, timings).await?;
            let d = diff::diff(&loaded.source, &loaded.target);
            super::validate(&loaded, &d)?;
            let opts = super::plan_options(&args.common, &args.timeouts, args.online);
            let planned = plan::plan(&loaded.source, &loaded.target, &d, &opts);
            // Dumped in shards, TARGET has no archive of its own for a rehearsal: one whole dump
            // of it alone fits where two at once did not.
            let archive = match (loaded.target_archive, tools.first()) {
                (None, Some(tool)) => Some(
                    dump::dump_archive(conn, tool)
                        .await
                        .map_err(|e| anyhow!("dumping target {target_name}: {e}"))?,
                ),
                (a, _) => a,
            };
            (planned, Some(loaded.source), archive)
        }
    };
    timings.lap("plan", t);
    Ok(Prepared {
        target,
        plan,
        source,
        archive,
    })
}

/// The report files (`--report`, `--report-md`), opened before anything changes (apply's, and
/// a fleet's).
pub(super) struct Reports<'a> {
    json: Option<(File, &'a Path)>,
    md: Option<(File, &'a Path)>,
}

impl<'a> Reports<'a> {
    pub(super) fn open(args: &'a ApplyArgs) -> Result<Self> {
        let create = |path: &'a Path| -> Result<(File, &'a Path)> {
            let f = File::create(path).with_context(|| {
                format!(
                    "opening the report file {} (nothing was changed)",
                    path.display()
                )
            })?;
            Ok((f, path))
        };
        Ok(Reports {
            json: args.report.as_deref().map(create).transpose()?,
            md: args.report_md.as_deref().map(create).transpose()?,
        })
    }

    /// Ends a run that changed nothing: TARGET's advisory lock released, the reports written.
    async fn stop(
        &self,
        report: &mut ApplyReport<'_>,
        target: &apply::connect::Target,
        started: Instant,
    ) -> Result<()> {
        apply::unlock(&target.client).await;
        report.total_ms = ms_since(started);
        self.write(report)
    }

    fn write(&self, report: &ApplyReport) -> Result<()> {
        self.write_with(
            || Ok(render::apply_report_json(report)?),
            || render::apply_report_md(report),
        )
    }

    /// Writes the report as each open file wants it (rendered only for the files asked for).
    pub(super) fn write_with(
        &self,
        json: impl FnOnce() -> Result<String>,
        md: impl FnOnce() -> String,
    ) -> Result<()> {
        if let Some((f, path)) = &self.json {
            let mut f: &File = f;
            f.write_all(json()?.as_bytes())
                .with_context(|| format!("writing the report {}", path.display()))?;
        }
        if let Some((f, path)) = &self.md {
            let mut f: &File = f;
            f.write_all(md().as_bytes())
                .with_context(|| format!("writing the report {}", path.display()))?;
        }
        Ok(())
    }
}

/// Runs the plan with a line on `out` (each starting with `prefix`) as each step (and each
/// group) ends: on TARGET, or on a rehearsal's scratch database.
pub(super) async fn apply_plan(
    target: &apply::connect::Target,
    p: &Plan,
    args: &ApplyArgs,
    prefix: &str,
    out: &mut impl Write,
) -> Result<apply::Outcome, apply::Failure> {
    let opts = apply::Options {
        lock_retries: args.lock_retries,
        backoff: Duration::from_millis(500),
    };
    let total = p.steps.len();
    let mut bar = crate::progress::counted_live(
        if prefix.is_empty() {
            "applying"
        } else {
            "rehearsing"
        },
        total,
    );
    // A failed write must not stop the apply midway.
    apply::run(target, p, &opts, &mut |ev| {
        if let apply::Progress::Step(r) = &ev {
            bar.item(&r.object, Duration::from_secs_f64(r.ms.max(0.0) / 1000.0));
        }
        let line = match ev {
            apply::Progress::Step(r) if r.ms > 0.0 => format!(
                "step {}/{total}: {} {}: {} ({:.0} ms)",
                r.step, r.op, r.object, r.status, r.ms
            ),
            apply::Progress::Step(r) => {
                format!(
                    "step {}/{total}: {} {}: {}",
                    r.step, r.op, r.object, r.status
                )
            }
            apply::Progress::Group(g) => g,
        };
        let _ = say(out, &format!("{prefix}{line}"));
    })
    .await
}

/// One line of apply's stdout, out at once: a killed apply still shows how far it got. A reader
/// that went away (a closed pipe) is no error here, unlike in diff and plan (which then end
/// with exit 0): apply's result is its exit code and its reports, and they must stand.
pub(super) fn say(out: &mut impl Write, line: &str) -> std::io::Result<()> {
    // Live progress lines are cleared while it is written, and drawn again after.
    let written = crate::progress::suspend(|| writeln!(out, "{line}").and_then(|()| out.flush()));
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// The report as it stands before anything ran.
fn first_report<'a>(
    target_name: &'a str,
    args: &ApplyArgs,
    p: &Plan,
    allowed: &BTreeSet<Hazard>,
) -> ApplyReport<'a> {
    ApplyReport {
        target: target_name,
        dry_run: args.dry_run,
        plan_steps: p.steps.len(),
        hazards_present: p.hazards().into_iter().map(|h| h.name()).collect(),
        hazards_allowed: allowed.iter().map(|h| h.name()).collect(),
        preflight: None,
        impact: Vec::new(),
        steps: &[],
        groups: 0,
        groups_committed: 0,
        error: None,
        verification: "not run",
        residue: &[],
        rehearsal: None,
        total_ms: 0.0,
    }
}

/// What a dry run says once its rehearsal and preflight have passed.
fn dry_run_done(
    p: &Plan,
    target_name: &str,
    args: &ApplyArgs,
    timings: &Timings,
    out: &mut impl Write,
) -> Result<Outcome> {
    say(
        out,
        &if p.is_empty() {
            "nothing to apply: target already equals source".to_string()
        } else {
            format!(
                "dry run: the plan rehearsed cleanly; nothing was changed on target {target_name}"
            )
        },
    )?;
    let mut messages = Vec::new();
    if args.common.timings {
        messages.extend(timings.lines());
    }
    Ok(Outcome { code: 0, messages })
}

/// TARGET's connection (a database: a dump file cannot be changed), and the report files,
/// opened before anything changes: a report that cannot be written must stop the run while
/// TARGET is still untouched.
async fn target_and_reports(args: &ApplyArgs) -> Result<(ConnParams, Reports<'_>)> {
    let target_ep = Endpoint::resolve(args.common.target.as_deref(), Side::Target)?;
    if let Endpoint::DumpFile(p) = &target_ep {
        bail!(
            "the target {} is a dump file: apply needs a database to change",
            crate::endpoint::redact(&p.display().to_string())
        );
    }
    if let Endpoint::SqlFiles(_) = &target_ep {
        bail!("the target {target_ep} is SQL files: apply needs a database to change");
    }
    let reports = Reports::open(args)?;
    let conn = connect_params(&target_ep, &args.common)
        .await
        .with_context(|| format!("reading target {target_ep}"))?
        .context("the target is not a database")?;
    Ok((conn, reports))
}

pub async fn run(args: &ApplyArgs, out: &mut impl Write) -> Result<Outcome> {
    let started = Instant::now();
    let mut timings = Timings::default();
    let allowed = allowed_hazards(args);
    let (conn, reports) = target_and_reports(args).await?;
    let target_name = conn.to_string();
    let tools = super::find_tools(&args.common)?;
    let rehearsal_server = super::rehearse::server(args, &conn).await?;

    let Prepared {
        target,
        plan: p,
        source,
        archive,
    } = interrupt::or_interrupted(
        "connecting and planning (nothing was changed)",
        prepare(args, &conn, &target_name, &tools, &mut timings),
    )
    .await?;

    let mut report = first_report(&target_name, args, &p, &allowed);
    if let Some(messages) = refusal(&p, &allowed, &target_name) {
        report.error = Some("refused: the plan has hazards that were not allowed");
        reports.stop(&mut report, &target, started).await?;
        return Ok(Outcome { code: 3, messages });
    }

    // TARGET's rows, before the first change: a step they would make fail refuses the plan
    // now, before it holds any lock but ACCESS SHARE.
    let t = Instant::now();
    let checked = interrupt::or_interrupted("running preflight (nothing was changed)", async {
        Ok(super::preflight::for_apply(&args.preflight, &target, &p).await)
    })
    .await?;
    if let Some(o) = checked.as_ref().filter(|o| o.checks > 0) {
        timings.lap("preflight", t);
        say(out, &format!("preflight: {}", o.summary()))?;
        for f in &o.findings {
            say(out, &format!("preflight: {}", f.line()))?;
        }
        report.preflight = Some(&o.findings);
    }
    report.impact = render::impact_rows(&p, checked.as_ref());
    if let Some(messages) = args
        .max_rewrite
        .and_then(|max| too_large_rewrites(&p, checked.as_ref(), max, &target_name))
    {
        report.error = Some("refused: the plan rewrites a table larger than --max-rewrite");
        reports.stop(&mut report, &target, started).await?;
        return Ok(Outcome { code: 3, messages });
    }
    if let Some(refused) = checked
        .as_ref()
        .and_then(|o| super::preflight::refusal(o, &target_name))
    {
        report.error = Some(&refused);
        reports.stop(&mut report, &target, started).await?;
        bail!("{refused}");
    }

    // The whole plan on a scratch copy of TARGET's schema, while the advisory lock keeps other
    // pgalign runs off TARGET: a plan that fails there never reaches it.
    let t = Instant::now();
    let rehearsal = super::rehearse::when_asked(
        rehearsal_server.as_ref(),
        archive.as_ref(),
        &p,
        source.as_ref(),
        &tools,
        args,
        out,
    )
    .await?;
    if rehearsal.is_some() {
        timings.lap("rehearsal", t);
    }
    drop(archive);
    report.rehearsal = rehearsal.as_ref();
    if let Some(e) = rehearsal.as_ref().and_then(|r| r.error.as_deref()) {
        report.error = Some(e);
        report.verification = "not run (the rehearsal failed: nothing was changed)";
        reports.stop(&mut report, &target, started).await?;
        bail!("rehearsal: {e}; nothing was changed on target {target_name}");
    }
    if args.dry_run {
        report.verification = "not run (dry run: nothing was changed)";
        reports.stop(&mut report, &target, started).await?;
        return dry_run_done(&p, &target_name, args, &timings, out);
    }

    let t = Instant::now();
    let result = apply_plan(&target, &p, args, "", out).await;
    timings.lap("apply", t);
    apply::unlock(&target.client).await;
    drop(target);
    let (outcome, error) = match result {
        Ok(o) => (o, None),
        Err(f) => (f.outcome, Some(f.message)),
    };

    let t = Instant::now();
    let verification = if error.is_some() {
        Verification::NotRun("apply failed")
    } else {
        verify::verify(&conn, &tools, &p, source.as_ref(), &target_name).await
    };
    timings.lap("verify", t);

    let summary = verification.summary();
    report.steps = &outcome.runs;
    report.groups = outcome.groups;
    report.groups_committed = outcome.groups_committed;
    report.error = error.as_deref();
    report.verification = &summary;
    report.residue = verification.residue();
    report.total_ms = ms_since(started);
    reports.write(&report)?;
    if let Some(e) = error {
        bail!("applying to target {target_name}: {e}");
    }
    if let Verification::Failed(why) = &verification {
        bail!("target {target_name}: the plan was applied and committed, but verifying it failed: {why}");
    }
    if p.is_empty() {
        say(out, "nothing to apply: target already equals source")?;
    }
    say(out, &format!("verification: {summary}"))?;
    for r in verification.residue() {
        say(out, &format!("  {r}"))?;
    }
    let mut messages = Vec::new();
    if args.common.timings {
        messages.extend(timings.lines());
    }
    Ok(Outcome {
        code: if verification.residue().is_empty() {
            0
        } else {
            2
        },
        messages,
    })
}
