//! `apply --rehearse` (and `--dry-run`): the whole plan, first, on a scratch database holding
//! TARGET's schema (restored from the dump apply already took), with the same engine, groups,
//! timeouts and online forms as on TARGET, then verified against SOURCE. The scratch database
//! is dropped on every path, errors and signals included; TARGET is only read.
//!
//! On another server (`--rehearse-on`) the restore keeps owners and privileges, so TARGET's
//! roles must exist there: a rehearsal without them would skip the plan's OWNER and GRANT
//! steps, or fail on them, and prove less than it says. `--no-owner` / `--no-privileges` leave
//! them out of the comparison, and then out of the restore too.

use super::apply::{apply_plan, say};
use super::verify::{self, Verification};
use crate::apply;
use crate::catalog::Catalog;
use crate::cli::ApplyArgs;
use crate::dump::{self, RestoreOptions, Tools};
use crate::endpoint::{ConnParams, Endpoint};
use crate::interrupt;
use crate::plan::Plan;
use crate::render::RehearsalReport;
use crate::scratch::{self, Scratch};
use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;
use std::time::Instant;

/// The server to rehearse on: the one `--rehearse-on` names, else TARGET's own for
/// `--rehearse` and `--dry-run`; None when the run does not rehearse. Read before anything
/// else happens, so that a bad `--rehearse-on` stops the run at once.
pub async fn server(args: &ApplyArgs, target: &ConnParams) -> Result<Option<ConnParams>> {
    match &args.rehearse_on {
        Some(ep @ (Endpoint::Database(_) | Endpoint::Secret(_))) => {
            let p = super::connect_params(ep, &args.common)
                .await
                .with_context(|| format!("reading --rehearse-on {ep}"))?
                .context("--rehearse-on is not a database server")?;
            Ok(Some(p))
        }
        Some(Endpoint::DumpFile(_) | Endpoint::SqlFiles(_)) => {
            anyhow::bail!("--rehearse-on needs a database server")
        }
        None if args.rehearse || args.dry_run => Ok(Some(target.clone())),
        None => Ok(None),
    }
}

/// Rehearses when the run asked for it (`server` is Some) and there is something to rehearse.
pub async fn when_asked(
    server: Option<&ConnParams>,
    archive: Option<&dump::Archive>,
    plan: &Plan,
    source: Option<&Catalog>,
    tools: &[Tools],
    args: &ApplyArgs,
    out: &mut impl Write,
) -> Result<Option<RehearsalReport>> {
    let Some(server) = server else {
        return Ok(None);
    };
    if plan.is_empty() {
        return Ok(None);
    }
    let archive = archive.context("no dump of TARGET to rehearse on")?;
    let inputs = Inputs {
        server,
        archive: archive.path(),
        source,
        tools,
    };
    Ok(Some(run(&inputs, plan, args, out).await))
}

/// What the rehearsal needs besides the plan.
pub struct Inputs<'a> {
    pub server: &'a ConnParams,
    /// TARGET's schema as pg_dump wrote it when the plan was made (or checked).
    pub archive: &'a Path,
    pub source: Option<&'a Catalog>,
    pub tools: &'a [Tools],
}

/// Rehearses `plan`; every line it has to say goes to `out` (prefixed `rehearsal: `). Never an
/// error: what went wrong is the report's `error`, and `passed` is false.
pub async fn run(
    inputs: &Inputs<'_>,
    plan: &Plan,
    args: &ApplyArgs,
    out: &mut impl Write,
) -> RehearsalReport {
    let started = Instant::now();
    let mut report = RehearsalReport {
        database: inputs.server.to_string(),
        verification: Verification::NotRun("the rehearsal stopped first").summary(),
        ..Default::default()
    };
    let created = interrupt::or_interrupted(
        "creating the rehearsal's scratch database",
        scratch::create(inputs.server, scratch::Purpose::Rehearsal),
    )
    .await;
    let scratch = match created {
        Ok((s, warnings)) => {
            for w in warnings {
                let _ = say(out, &format!("rehearsal: {w}"));
            }
            s
        }
        Err(e) => {
            let e = format!("{e:#}");
            let hint = if e.contains("permission denied") {
                " (the user needs CREATEDB there; or rehearse on another server with --rehearse-on URL)"
            } else {
                ""
            };
            report.error = Some(format!(
                "creating a scratch database on {}: {e}{hint}",
                inputs.server
            ));
            report.ms = ms_since(started);
            return report;
        }
    };
    report.database = scratch.conn.to_string();
    let _ = say(
        out,
        &format!(
            "rehearsal: on the scratch database {} (TARGET's schema, no rows)",
            report.database
        ),
    );
    on_scratch(&scratch, inputs, plan, args, out, &mut report).await;
    let name = scratch.name.clone();
    match scratch.drop().await {
        Ok(()) => {
            let _ = say(out, &format!("rehearsal: dropped {name}"));
        }
        Err(e) => {
            let _ = say(out, &format!("rehearsal: warning: the scratch database {name} could not be dropped ({e}): drop it by hand, or the next rehearsal on that server drops it once it is an hour old"));
        }
    }
    report.passed = report.error.is_none();
    report.ms = ms_since(started);
    let verdict = match &report.error {
        None => format!(
            "passed ({:.1} s); verification: {}",
            report.ms / 1000.0,
            report.verification
        ),
        Some(e) => format!("FAILED ({:.1} s): {e}", report.ms / 1000.0),
    };
    let _ = say(out, &format!("rehearsal: {verdict}"));
    report
}

/// TARGET's schema into the scratch database: pg_restore itself, unless it is 17 or later and
/// the server older (it would send `SET transaction_timeout`, which such a server refuses:
/// common, as the newest client tools dump every major): then pg_restore's script, without
/// that line, run on a connection of pgalign's in one transaction.
pub(super) async fn restore(
    archive: &std::path::Path,
    conn: &crate::endpoint::ConnParams,
    tool: &dump::Tools,
    opts: RestoreOptions,
) -> anyhow::Result<()> {
    let target = apply::connect::connect(conn).await?;
    let asked = target.client.query_one(
        "SELECT current_setting('server_version_num')::int / 10000",
        &[],
    );
    let major = tokio::time::timeout(tool.timeout.as_duration(), asked)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "the scratch database's server did not say its version within {}",
                tool.timeout
            )
        })??
        .try_get::<_, i32>(0)?;
    if tool.major < 17 || major >= 17 {
        drop(target);
        return dump::restore_schema(archive, conn, tool, opts).await;
    }
    let script = format!(
        "BEGIN;\n{}\nCOMMIT;",
        dump::schema_script(archive, tool, opts).await?
    );
    let run = target.client.batch_execute(&script);
    match tokio::time::timeout(tool.timeout.as_duration(), run).await {
        Ok(r) => r.map_err(|e| {
            anyhow::anyhow!(
                "restoring pg_restore's script: {}",
                apply::pg_error_text(&e)
            )
        }),
        Err(_) => anyhow::bail!(
            "restoring the schema did not finish within {} and was stopped (raise --dump-timeout)",
            tool.timeout
        ),
    }
}

/// Restore, apply, verify: fills `report`, stopping at the first thing that goes wrong.
async fn on_scratch(
    scratch: &Scratch,
    inputs: &Inputs<'_>,
    plan: &Plan,
    args: &ApplyArgs,
    out: &mut impl Write,
    report: &mut RehearsalReport,
) {
    let tool = match inputs.tools.first() {
        Some(t) => t,
        None => {
            report.error = Some("no pg_restore found".into());
            return;
        }
    };
    let opts = RestoreOptions {
        no_owner: plan.filter.no_owner,
        no_privileges: plan.filter.no_privileges,
    };
    let stage = crate::progress::stage("rehearsal: restoring TARGET's schema");
    let restored = interrupt::or_interrupted(
        "restoring TARGET's schema for the rehearsal",
        restore(inputs.archive, &scratch.conn, tool, opts),
    )
    .await;
    if restored.is_ok() {
        stage.done();
    }
    if let Err(e) = restored {
        let e = format!("{e:#}");
        let hint = if e.contains("role") && e.contains("does not exist") {
            " (TARGET's roles must exist on the rehearsal server: create them there, e.g. from `pg_dumpall --roles-only`, or leave owners and privileges out with --no-owner --no-privileges)"
        } else {
            ""
        };
        report.error = Some(format!(
            "restoring TARGET's schema into {}: {e}{hint}",
            scratch.name
        ));
        return;
    }
    let target = match interrupt::or_interrupted(
        "connecting to the rehearsal's scratch database",
        apply::connect::connect(&scratch.conn),
    )
    .await
    {
        Ok(t) => t,
        Err(e) => {
            report.error = Some(format!("connecting to {}: {e:#}", scratch.name));
            return;
        }
    };
    let ran = apply_plan(&target, plan, args, "rehearsal: ", out).await;
    // Closed before the DROP DATABASE: on a server before 13 it cannot end other sessions.
    drop(target);
    match ran {
        Ok(o) => report.steps = o.runs,
        Err(f) => {
            report.error = Some(failed_step(&f.outcome.runs).unwrap_or(f.message));
            report.steps = f.outcome.runs;
            return;
        }
    }
    let what = format!("the rehearsal's copy {}", scratch.name);
    let verification =
        verify::verify(&scratch.conn, inputs.tools, plan, inputs.source, &what).await;
    if interrupt::interrupted() {
        report.error = Some(format!(
            "interrupted by {} while verifying the copy",
            interrupt::name()
        ));
        return;
    }
    report.verification = verification.summary();
    report.residue = verification.residue().to_vec();
    report.error = match &verification {
        Verification::Failed(e) => Some(format!("verifying: {e}")),
        // The plan's unsupported entries (allowed, or the gate would have refused) are known to
        // remain; anything else remaining means the plan does not do what it says.
        Verification::Done(r) if !r.is_empty() && plan.unsupported.is_empty() => Some(format!(
            "the plan ran, but the copy still differs from SOURCE in {} object(s), first: {}",
            r.len(),
            r[0]
        )),
        _ => None,
    };
}

/// `step 3 (alter table public.t): ERROR: ...`, from the step that failed.
fn failed_step(runs: &[apply::StepRun]) -> Option<String> {
    let r = runs
        .iter()
        .rev()
        .find(|r| r.status.starts_with("failed: "))?;
    Some(format!(
        "step {} ({} {}): {}",
        r.step,
        r.op,
        r.object,
        r.status.trim_start_matches("failed: ")
    ))
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}
