//! `pgalign apply`: plan (or read a reviewed plan), gate on hazards, apply on one connection
//! under an advisory lock, then re-dump TARGET and prove it equals SOURCE.

use super::{connect_params, filter_of, load, Outcome, Timings};
use crate::apply;
use crate::catalog::{self, Catalog};
use crate::cli::ApplyArgs;
use crate::diff;
use crate::dump;
use crate::endpoint::{Endpoint, Side};
use crate::interrupt;
use crate::plan::{self, Hazard, Plan};
use crate::render::{self, ApplyReport};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

fn allowed_hazards(args: &ApplyArgs) -> BTreeSet<Hazard> {
    if args.allow_all_hazards {
        return Hazard::ALL.into_iter().collect();
    }
    args.allow_hazards.iter().copied().collect()
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

async fn dump_catalog(
    conn: &crate::endpoint::ConnParams,
    tools: &[dump::Tools],
    filter: &catalog::Filter,
    what: &str,
) -> Result<Catalog> {
    let t = tools.first().context("no pg_dump found")?;
    dump::dump_database(conn, t, filter)
        .await
        .map_err(|e| anyhow!("dumping {what}: {e}"))
}

/// Connected, locked, and planned: what apply starts from.
struct Prepared {
    target: apply::connect::Target,
    plan: Plan,
    source: Option<Catalog>,
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
    let (plan, source): (Plan, Option<Catalog>) = match &args.plan {
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
            let now =
                dump_catalog(conn, tools, &p.filter, &format!("target {target_name}")).await?;
            if now.fingerprint() != p.target_fingerprint {
                bail!(
                    "target {target_name} has changed since the plan {} was made (schema fingerprint {} now, {} in the plan): make a new plan and review it",
                    path.display(),
                    &now.fingerprint()[..12],
                    &p.target_fingerprint[..12.min(p.target_fingerprint.len())]
                );
            }
            (p, None)
        }
        None => {
            let loaded = load(&args.common, timings).await?;
            let d = diff::diff(&loaded.source, &loaded.target);
            super::validate(&loaded, &d)?;
            let opts = plan::Options {
                lock_timeout: args.timeouts.lock_timeout,
                statement_timeout: args.timeouts.statement_timeout,
                online: args.online,
                filter: filter_of(&args.common),
            };
            (
                plan::plan(&loaded.source, &loaded.target, &d, &opts),
                Some(loaded.source),
            )
        }
    };
    timings.lap("plan", t);
    Ok(Prepared {
        target,
        plan,
        source,
    })
}

pub async fn run(args: &ApplyArgs, out: &mut impl Write) -> Result<Outcome> {
    let started = Instant::now();
    let mut timings = Timings::default();
    let allowed = allowed_hazards(args);
    let target_ep = Endpoint::resolve(args.common.target.as_deref(), Side::Target)?;
    if let Endpoint::DumpFile(p) = &target_ep {
        bail!(
            "the target {} is a dump file: apply needs a database to change",
            crate::endpoint::redact(&p.display().to_string())
        );
    }
    // Every output file is opened before anything changes: a report that cannot be written
    // must stop the run while TARGET is still untouched.
    let create = |path: &std::path::Path| {
        std::fs::File::create(path).with_context(|| {
            format!(
                "opening the report file {} (nothing was changed)",
                path.display()
            )
        })
    };
    let report_file = args.report.as_deref().map(create).transpose()?;
    let report_md_file = args.report_md.as_deref().map(create).transpose()?;
    let conn = connect_params(&target_ep, &args.common)
        .await
        .with_context(|| format!("reading target {target_ep}"))?
        .context("the target is not a database")?;
    let target_name = conn.to_string();
    let tools = super::find_tools(&args.common)?;

    let Prepared {
        target,
        plan: p,
        source,
    } = interrupt::or_interrupted(
        "connecting and planning (nothing was changed)",
        prepare(args, &conn, &target_name, &tools, &mut timings),
    )
    .await?;
    let client = &target.client;

    let mut messages = Vec::new();
    let write_reports = |report: &ApplyReport| -> Result<()> {
        if let (Some(f), Some(path)) = (&report_file, &args.report) {
            let json = render::apply_report_json(report)?;
            let mut f: &std::fs::File = f;
            f.write_all(json.as_bytes())
                .with_context(|| format!("writing the report {}", path.display()))?;
        }
        if let (Some(f), Some(path)) = (&report_md_file, &args.report_md) {
            let mut f: &std::fs::File = f;
            f.write_all(render::apply_report_md(report).as_bytes())
                .with_context(|| format!("writing the report {}", path.display()))?;
        }
        Ok(())
    };
    let mut report = ApplyReport {
        target: &target_name,
        dry_run: args.dry_run,
        plan_steps: p.steps.len(),
        hazards_present: p.hazards().into_iter().map(|h| h.name()).collect(),
        hazards_allowed: allowed.iter().map(|h| h.name()).collect(),
        steps: &[],
        groups: 0,
        groups_committed: 0,
        error: None,
        verification: "not run",
        residue: &[],
        total_ms: 0.0,
    };
    let refused = refusals(&p, &allowed);
    if !refused.is_empty() {
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
        messages.push(format!(
            "pgalign: refused: the plan has hazards that were not allowed; nothing was changed on {target_name}"
        ));
        for r in &refused {
            messages.push(format!("  {r}"));
        }
        messages.push(format!(
            "  to apply anyway: --allow-hazards {} (or --allow-all-hazards)",
            present.into_iter().collect::<Vec<_>>().join(",")
        ));
        apply::unlock(client).await;
        report.error = Some("refused: the plan has hazards that were not allowed");
        report.total_ms = started.elapsed().as_secs_f64() * 1000.0;
        write_reports(&report)?;
        return Ok(Outcome { code: 3, messages });
    }

    let t = Instant::now();
    let opts = apply::Options {
        lock_retries: args.lock_retries,
        dry_run: args.dry_run,
        backoff: Duration::from_millis(500),
    };
    let total = p.steps.len();
    // Each line goes out as soon as its step has run (a killed apply still shows how far it
    // got); a failed write (a closed pipe) must not stop the apply midway.
    let result = apply::run(&target, &p, &opts, &mut |ev| {
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
        let _ = writeln!(out, "{line}").and_then(|_| out.flush());
    })
    .await;
    timings.lap("apply", t);
    apply::unlock(client).await;
    drop(target);

    let (outcome, error) = match result {
        Ok(o) => (o, None),
        Err(f) => (f.outcome, Some(f.message)),
    };

    // Verify: TARGET dumped again must equal SOURCE.
    let t = Instant::now();
    let mut residue: Vec<String> = Vec::new();
    let verification = if error.is_some() {
        "not run (apply failed)".to_string()
    } else if args.dry_run {
        "not run (dry run: nothing was changed)".to_string()
    } else {
        let after = interrupt::or_interrupted(
            "verifying (the plan was applied and committed; run `pgalign diff` to check the target)",
            dump_catalog(
                &conn,
                &tools,
                &p.filter,
                &format!("target {target_name} after apply"),
            ),
        )
        .await;
        match after {
            Err(e) => format!("failed: {e:#}"),
            Ok(after) => {
                match &source {
                    Some(src) => {
                        let d = diff::diff(src, &after);
                        residue = d
                            .changes
                            .iter()
                            .map(|c| {
                                let sign = match c.kind {
                                    diff::ChangeKind::Created => "+",
                                    diff::ChangeKind::Dropped => "-",
                                    diff::ChangeKind::Changed => "~",
                                };
                                format!("{sign} {}", c.key.display())
                            })
                            .collect();
                    }
                    None => {
                        if after.fingerprint() != p.source_fingerprint {
                            residue.push("target's schema fingerprint differs from the plan's source fingerprint (run `pgalign diff` against the source to see what)".into());
                        }
                    }
                }
                if residue.is_empty() {
                    "target equals source".into()
                } else {
                    format!("{} difference(s) remain", residue.len())
                }
            }
        }
    };
    timings.lap("verify", t);

    report.steps = &outcome.runs;
    report.groups = outcome.groups;
    report.groups_committed = outcome.groups_committed;
    report.error = error.as_deref();
    report.verification = &verification;
    report.residue = &residue;
    report.total_ms = started.elapsed().as_secs_f64() * 1000.0;
    write_reports(&report)?;
    if let Some(e) = error {
        bail!("applying to target {target_name}: {e}");
    }
    if let Some(why) = verification.strip_prefix("failed: ") {
        bail!("target {target_name}: the plan was applied and committed, but verifying it failed: {why}");
    }
    if p.is_empty() {
        writeln!(out, "nothing to apply: target already equals source")?;
    }
    writeln!(out, "verification: {verification}")?;
    for r in &residue {
        writeln!(out, "  {r}")?;
    }
    if args.common.timings {
        messages.extend(timings.lines());
    }
    Ok(Outcome {
        code: if residue.is_empty() { 0 } else { 2 },
        messages,
    })
}
