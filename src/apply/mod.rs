//! Runs a plan on ONE connection to TARGET, under an advisory lock, group by group: every step
//! that can share a transaction shares one; a lock timeout is retried with backoff; any other
//! failure rolls the open transaction back. It never re-plans.

pub mod connect;

use crate::plan::{preamble, session_settings, GroupKind, Plan};
use connect::Target;
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

/// The advisory lock key every pgalign run takes on TARGET: "pgalign" in ASCII.
pub const ADVISORY_KEY: i64 = 0x0070_6761_6c69_676e;

#[derive(Debug, Clone)]
pub struct Options {
    pub lock_retries: u32,
    /// First pause after a lock timeout; doubled on each retry.
    pub backoff: Duration,
}

/// What happened to one step.
#[derive(Debug, Clone, Serialize)]
pub struct StepRun {
    pub step: usize,
    pub object: String,
    pub op: String,
    pub status: String,
    pub ms: f64,
    pub attempts: u32,
}

#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub runs: Vec<StepRun>,
    pub groups: usize,
    pub groups_committed: usize,
}

/// Why apply stopped, with what had been committed by then.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub outcome: Outcome,
}

/// A PostgreSQL error on one line: severity, message, detail and hint.
pub fn pg_error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(d) = db.detail() {
            s.push_str(&format!(" (detail: {d})"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!(" (hint: {h})"));
        }
        return s.replace('\n', " ");
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(x) = src {
        s.push_str(&format!(": {x}"));
        src = x.source();
    }
    s.replace('\n', " ")
}

fn is_lock_timeout(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

fn is_connection_lost(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || matches!(
            e.code(),
            Some(c) if *c == SqlState::ADMIN_SHUTDOWN || *c == SqlState::CRASH_SHUTDOWN
        )
}

/// Takes the advisory lock, waiting at most `wait`. On timeout, says who holds it.
pub async fn lock(client: &Client, wait: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&ADVISORY_KEY])
            .await
            .map_err(|e| format!("taking pgalign's advisory lock: {}", pg_error_text(&e)))?;
        if row.get::<_, bool>(0) {
            return Ok(());
        }
        if start.elapsed() >= wait {
            let holder = client
                .query_opt(
                    "SELECT a.pid, coalesce(a.application_name, ''), coalesce(a.client_addr::text, 'local'), coalesce(now() - a.backend_start, '0')::text
                       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                      WHERE l.locktype = 'advisory' AND l.granted
                        AND ((l.classid::bigint << 32) | l.objid::bigint) = $1 LIMIT 1",
                    &[&ADVISORY_KEY],
                )
                .await
                .ok()
                .flatten()
                .map(|r| {
                    format!(
                        " (held by pid {}, {} from {}, connected {} ago)",
                        r.get::<_, i32>(0),
                        r.get::<_, String>(1),
                        r.get::<_, String>(2),
                        r.get::<_, String>(3)
                    )
                })
                .unwrap_or_default();
            return Err(format!(
                "another pgalign run is applying to this database{holder}; waited {:.0?}: try again when it is done, or raise --lock-wait",
                wait
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

pub async fn unlock(client: &Client) {
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&ADVISORY_KEY])
        .await;
}

/// What apply reports as it goes, so that a line is out as soon as its step is.
pub enum Progress<'a> {
    /// A step ran (inside its group's transaction until the group commits), failed, or is
    /// retried.
    Step(&'a StepRun),
    /// A group ended: committed, or rolled back.
    Group(String),
}

/// Why a group stopped: the server's error, or a signal.
enum Stop {
    Pg(tokio_postgres::Error),
    Interrupted,
}

impl Stop {
    fn text(&self) -> String {
        match self {
            Stop::Pg(e) => pg_error_text(e),
            Stop::Interrupted => format!(
                "interrupted by {}: the running statement was cancelled",
                crate::interrupt::name()
            ),
        }
    }
    fn is_lock_timeout(&self) -> bool {
        matches!(self, Stop::Pg(e) if is_lock_timeout(e))
    }
}

/// One statement, cancelled on the server if a signal arrives while it runs.
async fn execute(target: &Target, sql: &str) -> Result<(), Stop> {
    if crate::interrupt::interrupted() {
        return Err(Stop::Interrupted);
    }
    let run = target.client.batch_execute(sql);
    tokio::pin!(run);
    tokio::select! {
        r = &mut run => return r.map_err(Stop::Pg),
        _ = crate::interrupt::wait() => {}
    }
    // The server ends the statement with an error (or it had just finished); either way the
    // caller rolls back.
    let _ = target.cancel().await;
    let _ = run.await;
    Err(Stop::Interrupted)
}

/// Runs the plan, group by group. (A dry run does not come here: it is a rehearsal, this same
/// run on a scratch database, plus preflight; see `commands::rehearse`.)
pub async fn run(
    target: &Target,
    plan: &Plan,
    opts: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, Failure> {
    let mut out = Outcome::default();
    let groups: Vec<(GroupKind, Vec<usize>)> = plan
        .groups()
        .into_iter()
        .map(|g| (g.kind, g.steps.collect::<Vec<_>>()))
        .collect();
    out.groups = groups.len();
    for (kind, steps) in groups {
        if steps.is_empty() {
            continue;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = run_group(target, plan, kind, &steps, attempt, progress).await;
            let range = format!(
                "step{} {}",
                if steps.len() > 1 { "s" } else { "" },
                if steps.len() > 1 {
                    format!("{}-{}", steps[0] + 1, steps[steps.len() - 1] + 1)
                } else {
                    (steps[0] + 1).to_string()
                }
            );
            match result {
                Ok(mut runs) => {
                    for r in &mut runs {
                        r.status = "ok".into();
                    }
                    out.groups_committed += 1;
                    progress(Progress::Group(match kind {
                        GroupKind::Transaction => format!("committed {range}"),
                        GroupKind::Autocommit => {
                            format!("done {range} (outside a transaction)")
                        }
                    }));
                    out.runs.extend(runs);
                    break;
                }
                Err((i, stop, runs)) => {
                    let step = &plan.steps[i];
                    if stop.is_lock_timeout() && attempt <= opts.lock_retries {
                        // Doubling, at most 30 s a pause: --lock-retries is bounded, so is the whole wait.
                        let pause = opts
                            .backoff
                            .saturating_mul(1 << (attempt - 1).min(16))
                            .min(Duration::from_secs(30));
                        progress(Progress::Step(&StepRun {
                            step: i + 1,
                            object: step.object.clone(),
                            op: step.op.name().into(),
                            status: format!(
                                "lock timeout ({}), rolled back; retrying the group in {:.1?}",
                                step.lock_timeout, pause
                            ),
                            ms: 0.0,
                            attempts: attempt,
                        }));
                        tokio::select! {
                            _ = tokio::time::sleep(pause) => continue,
                            _ = crate::interrupt::wait() => {}
                        }
                    }
                    // A signal during the pause between tries ends the run as one during a step.
                    let stop = if crate::interrupt::interrupted() {
                        Stop::Interrupted
                    } else {
                        stop
                    };
                    // What ran in this group was rolled back with it (or, outside a
                    // transaction, stopped): the report says so, not "ok".
                    let undone = if kind == GroupKind::Transaction {
                        "rolled back"
                    } else {
                        "stopped"
                    };
                    out.runs.extend(runs.into_iter().map(|mut r| {
                        r.status = undone.into();
                        r
                    }));
                    out.runs.push(StepRun {
                        step: i + 1,
                        object: step.object.clone(),
                        op: step.op.name().into(),
                        status: format!("failed: {}", stop.text()),
                        ms: 0.0,
                        attempts: attempt,
                    });
                    if kind == GroupKind::Transaction {
                        progress(Progress::Group(format!("rolled back {range}")));
                    }
                    let cleanup = clean_up_failed_group(&target.client, plan, &steps).await;
                    let what = format!("step {} ({} {})", i + 1, step.op.name(), step.object);
                    let committed = if out.groups_committed == 0 {
                        "nothing was changed".to_string()
                    } else {
                        format!(
                            "{} of {} groups had already committed (the plan runs in several because of steps that cannot share a transaction)",
                            out.groups_committed, out.groups
                        )
                    };
                    let message = match &stop {
                        Stop::Pg(e) if is_connection_lost(e) => format!("the connection to the target was lost during {what}: {}; the server rolled the open transaction back, so that group was not applied: {committed}", stop.text()),
                        Stop::Pg(e) if is_lock_timeout(e) => format!("{what} could not get its lock within lock_timeout {} after {attempt} tries: {}; the transaction was rolled back: {committed}", step.lock_timeout, stop.text()),
                        Stop::Pg(_) => format!(
                            "{what} failed: {}; the transaction was rolled back: {committed}",
                            stop.text()
                        ),
                        Stop::Interrupted => format!(
                            "{} during {what}; the open transaction was rolled back: {committed}",
                            stop.text()
                        ),
                    };
                    return Err(Failure {
                        message: message + &cleanup,
                        outcome: out,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// After a group failed and rolled back: runs, in autocommit, each of its steps'
/// `on_failure_sql` (what earlier, committed groups left for them: an online SET NOT NULL's
/// helper CHECK). Returns what to add to the error: that it was removed, or the SQL to run.
async fn clean_up_failed_group(client: &Client, plan: &Plan, steps: &[usize]) -> String {
    let mut said = String::new();
    for s in steps.iter().map(|&i| &plan.steps[i]) {
        let Some(sql) = &s.on_failure_sql else {
            continue;
        };
        let undo = sql.trim_end();
        let ran = async {
            client.batch_execute(&session_settings(s, false)).await?;
            client.batch_execute(sql).await
        }
        .await;
        said.push_str(&match ran {
            Ok(()) => format!("; the helper an earlier group added for it was removed ({undo})"),
            Err(e) => format!(
                "; the helper an earlier group added for it is still there (removing it failed: {}): run {undo}",
                pg_error_text(&e)
            ),
        });
    }
    said
}

type GroupError = (usize, Stop, Vec<StepRun>);

async fn run_group(
    target: &Target,
    plan: &Plan,
    kind: GroupKind,
    steps: &[usize],
    attempt: u32,
    progress: &mut dyn FnMut(Progress),
) -> Result<Vec<StepRun>, GroupError> {
    let client = &target.client;
    let tx = kind == GroupKind::Transaction;
    let first = steps[0];
    let last = steps[steps.len() - 1];
    if tx {
        execute(target, "BEGIN")
            .await
            .map_err(|e| (first, e, vec![]))?;
    }
    let mut runs = Vec::new();
    let mut current: Option<(crate::duration::Millis, crate::duration::Millis)> = None;
    let result: Result<(), (usize, Stop)> = async {
        execute(target, &preamble(tx))
            .await
            .map_err(|e| (first, e))?;
        for &i in steps {
            let s = &plan.steps[i];
            let t = (s.lock_timeout, s.statement_timeout);
            if current.as_ref() != Some(&t) {
                execute(target, &session_settings(s, tx))
                    .await
                    .map_err(|e| (i, e))?;
                current = Some(t);
            }
            let start = Instant::now();
            if let Some(ix) = &s.replaces_invalid_index {
                // An interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index behind.
                let invalid = client
                    .query_opt(
                        "SELECT NOT i.indisvalid FROM pg_catalog.pg_index i WHERE i.indexrelid = pg_catalog.to_regclass($1)",
                        &[ix],
                    )
                    .await
                    .map_err(|e| (i, Stop::Pg(e)))?
                    .is_some_and(|r| r.get::<_, bool>(0));
                if invalid {
                    execute(target, &format!("DROP INDEX CONCURRENTLY {ix}"))
                        .await
                        .map_err(|e| (i, e))?;
                }
            }
            execute(target, &s.sql).await.map_err(|e| (i, e))?;
            let r = StepRun {
                step: i + 1,
                object: s.object.clone(),
                op: s.op.name().into(),
                status: if tx {
                    "ran (commits with its group)".into()
                } else {
                    "done".into()
                },
                ms: start.elapsed().as_secs_f64() * 1000.0,
                attempts: attempt,
            };
            progress(Progress::Step(&r));
            runs.push(r);
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            if tx {
                // A signal that arrived after the last statement still stops the commit.
                let end = if crate::interrupt::interrupted() {
                    "ROLLBACK"
                } else {
                    "COMMIT"
                };
                if let Err(e) = client.batch_execute(end).await {
                    return Err((last, Stop::Pg(e), runs));
                }
                if end == "ROLLBACK" {
                    return Err((last, Stop::Interrupted, runs));
                }
            }
            Ok(runs)
        }
        Err((i, e)) => {
            if tx {
                let _ = client.batch_execute("ROLLBACK").await;
            }
            Err((i, e, runs))
        }
    }
}
