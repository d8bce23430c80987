//! When `plan` and `apply` run preflight (`crate::preflight`), and what they say about it.

use super::Loaded;
use crate::apply::connect::Target;
use crate::cli;
use crate::plan::Plan;
use crate::preflight::{self, Outcome};

fn options(args: &cli::Preflight) -> preflight::Options {
    preflight::Options {
        timeout: args.preflight_timeout,
    }
}

/// Whether there is anything to run: checks (unless skipped), or sizes to look up for the
/// steps' impact (read from the catalog, not the rows: looked up even with `--no-preflight`).
fn wanted(args: &cli::Preflight, plan: &Plan) -> bool {
    (!args.no_preflight && preflight::has_checks(plan)) || preflight::has_impact(plan)
}

/// A connection to TARGET being opened, for preflight.
pub type Connecting = tokio::task::JoinHandle<anyhow::Result<Target>>;

/// Starts connecting to TARGET for `for_plan` while the plan is made: connecting waits on the
/// network (a TLS handshake, authentication), planning works the CPU. None for a dump file.
/// The task is stopped, and the connection closed, if the plan turns out to need none.
pub fn connect_ahead(loaded: &Loaded) -> Option<Connecting> {
    let conn = loaded.target_conn.clone()?;
    Some(tokio::spawn(async move {
        crate::apply::connect::connect(&conn).await
    }))
}

/// For `plan`: TARGET's rows, looked at on a connection of its own once the plan is made (the
/// one `connect_ahead` opened, when given). None when it does not run: skipped, nothing to
/// check, a dump file (with a note), or TARGET cannot be reached (a warning: the plan stands
/// without it).
pub async fn for_plan(
    args: &cli::Preflight,
    loaded: &Loaded,
    plan: &Plan,
    ahead: Option<Connecting>,
    messages: &mut Vec<String>,
) -> Option<Outcome> {
    for_plan_on(
        args,
        (loaded.target_conn.as_ref(), &loaded.target_name),
        plan,
        ahead,
        messages,
    )
    .await
}

/// `for_plan` with TARGET's connection (None: a dump file) and name given apart.
pub async fn for_plan_on(
    args: &cli::Preflight,
    (target_conn, target_name): (Option<&crate::endpoint::ConnParams>, &str),
    plan: &Plan,
    ahead: Option<Connecting>,
    messages: &mut Vec<String>,
) -> Option<Outcome> {
    if !wanted(args, plan) {
        if let Some(connecting) = ahead {
            connecting.abort();
        }
        return None;
    }
    let Some(conn) = target_conn else {
        if args.no_preflight || !preflight::has_checks(plan) {
            return None;
        }
        messages.push(
            "note: preflight not run: the target is a dump file (there are no rows to look at)"
                .into(),
        );
        return None;
    };
    let connected = match ahead {
        Some(connecting) => connecting
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the connecting task ended: {e}"))),
        None => crate::apply::connect::connect(conn).await,
    };
    let target = match connected {
        Ok(t) => t,
        Err(e) => {
            messages.push(format!(
                "warning: preflight not run: connecting to target {target_name}: {e:#}"
            ));
            return None;
        }
    };
    let outcome = preflight::run(&target, plan, &options(args), !args.no_preflight).await;
    for f in outcome.blocking() {
        messages.push(format!("warning: preflight: {}", f.line()));
    }
    Some(outcome)
}

/// For `apply`: on apply's own connection, before its first change.
pub async fn for_apply(args: &cli::Preflight, target: &Target, plan: &Plan) -> Option<Outcome> {
    if !wanted(args, plan) {
        return None;
    }
    Some(preflight::run(target, plan, &options(args), !args.no_preflight).await)
}

/// Why apply refuses, on one line: each step that would fail, what it meets and what to do.
/// None when nothing would fail.
pub fn refusal(outcome: &Outcome, target_name: &str) -> Option<String> {
    let lines: Vec<String> = outcome
        .blocking()
        .map(|f| format!("step {} ({} {}): {}", f.step, f.op, f.object, f.message))
        .collect();
    if lines.is_empty() {
        return None;
    }
    Some(format!(
        "refused by preflight on target {target_name} (nothing was changed): {}",
        lines.join("; ")
    ))
}
