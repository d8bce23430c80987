//! `pgalign fleet diff|plan|apply`: one SOURCE, many TARGETs. SOURCE is dumped once, into an
//! archive every member reads; members run `--jobs` at a time, each exactly as a single
//! `diff`, `plan` or `apply` runs (its own connection, advisory lock, preflight, rehearsal when
//! asked, verification); `--canary N` runs the first N before the rest, `--max-failures K`
//! stops starting members after K failures, and a signal stops starting them at once.

use super::{connect_params, find_tools, load, Outcome, Timings};
use crate::cli::{ApplyArgs, FleetAction, FleetArgs};
use crate::endpoint::{redact, Endpoint, Side};
use crate::fleet::{self, Member, MemberResult, Outcome as Became};
use crate::{diff, dump, interrupt, plan, render};
use anyhow::{anyhow, bail, Context, Result};
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// SOURCE as every member reads it: a dump file as given, or the archive of one pg_dump.
struct Source {
    /// Keeps the archive (and its private directory) for as long as the members run.
    _archive: Option<dump::Archive>,
    path: PathBuf,
    name: String,
    /// SOURCE read once, for diff and plan (apply reads the archive per member, as a single
    /// apply reads its SOURCE).
    catalog: Option<crate::catalog::Catalog>,
    /// pg_dump and pg_restore, found once for every member.
    tools: Vec<dump::Tools>,
}

/// SOURCE's catalog, for the actions that can share one.
async fn read_once(fleet: &FleetArgs, path: &Path) -> Result<Option<crate::catalog::Catalog>> {
    if fleet.action == FleetAction::Apply {
        return Ok(None);
    }
    let tools = find_tools(&fleet.apply.common).unwrap_or_default();
    let filter = super::filter_of(&fleet.apply.common);
    dump::read_dump_file(path, tools.first(), &filter)
        .await
        .map(Some)
        .context("reading the source's dump")
}

async fn source_once(fleet: &FleetArgs) -> Result<Source> {
    let args = &fleet.apply;
    let ep = Endpoint::resolve(args.common.source.as_deref(), Side::Source)?;
    if let Endpoint::DumpFile(p) = &ep {
        return Ok(Source {
            _archive: None,
            path: p.clone(),
            name: redact(&p.display().to_string()),
            catalog: read_once(fleet, p).await?,
            tools: find_tools(&args.common).unwrap_or_default(),
        });
    }
    let tools = find_tools(&args.common)?;
    let tool = tools.first().context("no pg_dump found")?;
    // SQL files: loaded into a scratch database, dumped, and dropped once the archive exists.
    let mut held = super::files::Scratches::default();
    let made = interrupt::or_interrupted("dumping the source", async {
        let conn = match &ep {
            Endpoint::SqlFiles(p) => {
                let mut notes = Vec::new();
                let c = &args.common;
                let target = (&ep, None);
                super::files::materialize_side(
                    "source", p, c, target, &tools, &mut held, &mut notes,
                )
                .await?
            }
            _ => connect_params(&ep, &args.common)
                .await
                .with_context(|| format!("reading source {ep}"))?
                .context("the source is not a database")?,
        };
        let name = match &ep {
            Endpoint::SqlFiles(_) => ep.to_string(),
            _ => conn.to_string(),
        };
        let stage = crate::progress::stage(&format!("dumping source {name}"));
        let archive = dump::dump_archive(&conn, tool)
            .await
            .map_err(|e| anyhow!("dumping source {name}: {e}"))?;
        stage.done();
        Ok((archive, name))
    })
    .await;
    let warnings = held.release().await;
    let (archive, name) = match made {
        Ok(a) => a,
        Err(e) if warnings.is_empty() => return Err(e),
        Err(e) => return Err(anyhow!("{e:#} ({})", warnings.join("; "))),
    };
    Ok(Source {
        catalog: read_once(fleet, archive.path()).await?,
        path: archive.path().to_path_buf(),
        _archive: Some(archive),
        name,
        tools,
    })
}

/// The members file, read and checked.
fn members(path: &Path) -> Result<Vec<Member>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the members file {}", path.display()))?;
    fleet::parse_members(&text).map_err(|e| anyhow!("the members file {}: {e}", path.display()))
}

/// The flags of one member's run: the fleet's, with SOURCE's archive and the member's endpoint.
fn member_args(args: &ApplyArgs, source: &Source, m: &Member) -> ApplyArgs {
    let mut a = args.clone();
    a.common.source = Some(source.path.display().to_string());
    a.common.target = Some(m.endpoint.clone());
    a.report = None;
    a.report_md = None;
    // A tenant member's schema mapping is the fleet's (its own SOURCE), not the member run's.
    a.common.source_schema = None;
    a.common.target_schema = None;
    a
}

/// SOURCE as a `schema=TENANT` member sees it (`commands::tenant`), on the member's server.
async fn tenant_source(
    args: &ApplyArgs,
    source: &Source,
    m: &Member,
    template: &str,
    tenant: &str,
) -> Result<dump::Archive> {
    let ep = Endpoint::parse(&m.endpoint).context("reading the member's endpoint")?;
    let server = connect_params(&ep, &args.common)
        .await
        .context("reading the member's endpoint")?
        .context("schema= needs a database member, not a dump file")?;
    super::tenant::renamed_source(
        &args.common,
        &source.path,
        &server,
        &source.tools,
        (template, tenant),
    )
    .await
}

/// One line of an error, redacted.
fn first_line(e: &anyhow::Error) -> String {
    redact(&format!("{e:#}").replace('\n', " "))
}

/// SOURCE's catalog (shared, or this member's own) and the member's.
enum Sides<'a> {
    /// SOURCE read once, and the member: (catalog, name, connection).
    Shared(
        &'a crate::catalog::Catalog,
        &'a str,
        Box<(
            crate::catalog::Catalog,
            String,
            Option<crate::endpoint::ConnParams>,
        )>,
    ),
    Own(Box<super::Loaded>),
}

impl<'a> Sides<'a> {
    async fn load(
        args: &ApplyArgs,
        shared: Option<(&'a crate::catalog::Catalog, &'a str, &'a [dump::Tools])>,
    ) -> Result<Sides<'a>> {
        Ok(match shared {
            Some((src, name, tools)) => {
                let (tgt, tname, conn) = super::load_target(&args.common, tools).await?;
                Sides::Shared(src, name, Box::new((tgt, tname, conn)))
            }
            None => Sides::Own(Box::new(load(&args.common, &mut Timings::default()).await?)),
        })
    }
    fn source(&self) -> (&crate::catalog::Catalog, &str) {
        match self {
            Sides::Shared(s, n, ..) => (s, n),
            Sides::Own(l) => (&l.source, &l.source_name),
        }
    }
    fn target(&self) -> (&crate::catalog::Catalog, &str) {
        match self {
            Sides::Shared(_, _, m) => (&m.0, &m.1),
            Sides::Own(l) => (&l.target, &l.target_name),
        }
    }
    fn target_conn(&self) -> Option<&crate::endpoint::ConnParams> {
        match self {
            Sides::Shared(_, _, m) => m.2.as_ref(),
            Sides::Own(l) => l.target_conn.as_ref(),
        }
    }
}

async fn diff_member(
    args: &ApplyArgs,
    shared: Option<(&crate::catalog::Catalog, &str, &[dump::Tools])>,
    r: &mut MemberResult,
) -> Result<()> {
    let sides = Sides::load(args, shared).await?;
    let d = diff::diff(sides.source().0, sides.target().0);
    super::validate_pair(sides.source(), sides.target(), &d)?;
    r.residue = d.changes.iter().map(render::change_line).collect();
    r.outcome = if d.changes.is_empty() {
        Became::Equal
    } else {
        Became::Differs
    };
    Ok(())
}

async fn plan_member(
    args: &ApplyArgs,
    fleet: &FleetArgs,
    m: &Member,
    shared: Option<(&crate::catalog::Catalog, &str, &[dump::Tools])>,
    r: &mut MemberResult,
) -> Result<()> {
    let sides = Sides::load(args, shared).await?;
    let ((src, src_name), (tgt, tgt_name)) = (sides.source(), sides.target());
    let d = diff::diff(src, tgt);
    super::validate_pair((src, src_name), (tgt, tgt_name), &d)?;
    let opts = super::plan_options(&args.common, &args.timeouts, args.online);
    // Each member's plan is written as SQL, which prints no fingerprints (`plan::script`):
    // SOURCE's, the same for every member, is not hashed once per member.
    let p = plan::script(src, tgt, &d, &opts);
    let mut messages = Vec::new();
    let checked = super::preflight::for_plan_on(
        &args.preflight,
        (sides.target_conn(), tgt_name),
        &p,
        None,
        &mut messages,
    )
    .await;
    if let Some(dir) = &fleet.out_dir {
        let path = dir.join(format!("{}.sql", m.name));
        let mut buf = Vec::new();
        render::plan_sql_with(
            &p,
            &render::Header {
                source: src_name,
                target: tgt_name,
            },
            checked.as_ref(),
            &mut buf,
        )?;
        std::fs::write(&path, &buf)
            .with_context(|| format!("writing the plan {}", path.display()))?;
    }
    r.steps = Some(p.steps.len());
    r.hazards = p.hazards().iter().map(|h| h.name().to_string()).collect();
    if let Some(o) = &checked {
        r.residue = o.blocking().map(|f| f.line()).collect();
    }
    r.outcome = if p.is_empty() {
        Became::Equal
    } else {
        Became::Differs
    };
    Ok(())
}

async fn apply_member(
    args: &ApplyArgs,
    fleet: &FleetArgs,
    m: &Member,
    r: &mut MemberResult,
) -> Result<()> {
    let dir = tempfile::tempdir().context("making a temporary directory")?;
    let mut a = args.clone();
    let report = dir.path().join("report.json");
    a.report = Some(report.clone());
    let mut log = Vec::new();
    let ran = super::apply::run(&a, &mut log).await;
    if let Some(out) = &fleet.out_dir {
        let path = out.join(format!("{}.log", m.name));
        std::fs::write(&path, &log)
            .with_context(|| format!("writing the log {}", path.display()))?;
    }
    // What apply recorded, when it got as far as opening its report.
    if let Ok(text) = std::fs::read_to_string(&report) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            r.steps = v["plan_steps"].as_u64().map(|n| n as usize);
            r.hazards = strings(&v["hazards_present"]);
            r.residue = strings(&v["residue"]);
        }
    }
    let o = ran?;
    r.outcome = match o.code {
        0 if r.steps == Some(0) => Became::Equal,
        0 => Became::Applied,
        2 => Became::Residue,
        3 => Became::Refused,
        _ => Became::Failed,
    };
    if o.code != 0 && o.code != 2 {
        r.error = Some(redact(
            &o.messages
                .iter()
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join(" "),
        ));
    }
    Ok(())
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs one member to its end; never an error (it is the member's result).
async fn run_member(fleet: &FleetArgs, source: &Source, m: &Member, canary: bool) -> MemberResult {
    let started = Instant::now();
    let mut args = member_args(&fleet.apply, source, m);
    let mut r = MemberResult {
        member: m.name.clone(),
        endpoint: redact(&m.endpoint),
        outcome: Became::Failed,
        steps: None,
        hazards: Vec::new(),
        residue: Vec::new(),
        error: None,
        ms: 0.0,
        canary,
    };
    // A tenant schema: its own SOURCE, and both sides read as that schema alone.
    let mut _tenant = None;
    if let (Some(t), Some(template)) = (&m.schema, &fleet.apply.common.source_schema) {
        match tenant_source(&fleet.apply, source, m, template, t).await {
            Ok(a) => {
                args.common.source = Some(a.path().display().to_string());
                args.common.schemas = vec![t.clone()];
                _tenant = Some(a);
            }
            Err(e) => {
                r.error = Some(first_line(&e));
                r.ms = started.elapsed().as_secs_f64() * 1000.0;
                return r;
            }
        }
    }
    // SOURCE read once serves every member but a tenant (whose SOURCE is its own).
    let shared = source
        .catalog
        .as_ref()
        .filter(|_| _tenant.is_none())
        .map(|c| (c, source.name.as_str(), source.tools.as_slice()));
    let ran = match fleet.action {
        FleetAction::Diff => diff_member(&args, shared, &mut r).await,
        FleetAction::Plan => plan_member(&args, fleet, m, shared, &mut r).await,
        _ => apply_member(&args, fleet, m, &mut r).await,
    };
    if let Err(e) = ran {
        r.outcome = Became::Failed;
        r.error = Some(first_line(&e));
    }
    r.ms = started.elapsed().as_secs_f64() * 1000.0;
    r
}

/// Why no more members start, once something says so.
fn stop_reason(results: &[Option<MemberResult>], fleet: &FleetArgs) -> Option<String> {
    if interrupt::interrupted() {
        return Some(format!("interrupted by {}", interrupt::name()));
    }
    let failures = results
        .iter()
        .flatten()
        .filter(|r| r.outcome.failed())
        .count();
    match fleet.max_failures {
        Some(k) if failures >= k as usize => {
            Some(format!("{failures} member(s) failed (--max-failures {k})"))
        }
        _ => None,
    }
}

/// `fleet codebuild`: the batch buildspec, its members file checked first.
fn codebuild(fleet: &FleetArgs, targets: &Path, out: &mut impl Write) -> Result<Outcome> {
    let members = members(targets)?;
    let shards = fleet.shards.min(members.len() as u32).max(1);
    if targets.is_absolute()
        || targets
            .components()
            .any(|c| c == std::path::Component::ParentDir)
    {
        bail!(
            "--targets {} must be a path inside the repository the build checks out (relative, no ..)",
            targets.display()
        );
    }
    let text = fleet::batch_buildspec(&targets.display().to_string(), shards, "apply");
    match &fleet.output {
        Some(p) => std::fs::write(p, &text)
            .with_context(|| format!("writing the buildspec {}", p.display()))?,
        None => out.write_all(text.as_bytes())?,
    }
    Ok(Outcome {
        code: 0,
        messages: vec![format!(
            "pgalign: fleet: a batch of {shards} build(s) over {} member(s)",
            members.len()
        )],
    })
}

/// `fleet merge-reports`: one report from several runs' (a batch's shards).
fn merge(fleet: &FleetArgs, out: &mut impl Write) -> Result<Outcome> {
    let mut read = Vec::new();
    for p in &fleet.from {
        let text = std::fs::read_to_string(p)
            .with_context(|| format!("reading the report {}", p.display()))?;
        let r: fleet::ReadReport = serde_json::from_str(&text).map_err(|e| {
            anyhow!(
                "{} is not a pgalign fleet report (--report of `pgalign fleet`): {e}",
                p.display()
            )
        })?;
        read.push((p.display().to_string(), r));
    }
    let (action, source, members, ms) = fleet::merge(read).map_err(|e| anyhow!("{e}"))?;
    let code = fleet::exit_code(&members);
    for line in fleet::summary(&members) {
        super::apply::say(out, &line)?;
    }
    write_reports(
        &super::apply::Reports::open(&fleet.apply)?,
        &fleet::Report {
            action: &action,
            source: &source,
            exit_code: code,
            members: &members,
            total_ms: ms,
        },
    )?;
    Ok(Outcome {
        code,
        messages: Vec::new(),
    })
}

/// The fleet's report, as JSON and Markdown, into the files opened for it.
fn write_reports(files: &super::apply::Reports, report: &fleet::Report) -> Result<()> {
    files.write_with(
        || Ok(serde_json::to_string_pretty(report)? + "\n"),
        || fleet::report_md(report),
    )
}

pub async fn run(fleet: &FleetArgs, out: &mut impl Write) -> Result<Outcome> {
    let started = Instant::now();
    let args = &fleet.apply;
    if args.common.target.is_some() {
        bail!("fleet takes its targets from --targets FILE, not --target");
    }
    if args.plan.is_some() {
        bail!("fleet apply plans each member itself: --plan (one reviewed plan) is for a single apply");
    }
    if fleet.action == FleetAction::Merge {
        return merge(fleet, out);
    }
    if args.common.target_schema.is_some() {
        bail!("fleet takes each tenant's schema from its members line (schema=TENANT), not --target-schema");
    }
    let Some(targets) = &fleet.targets else {
        bail!("fleet needs its members: --targets FILE (one a line: NAME ENDPOINT)");
    };
    if fleet.action == FleetAction::Codebuild {
        return codebuild(fleet, targets, out);
    }
    let members: Vec<Member> = members(targets)?
        .into_iter()
        .enumerate()
        .filter(|(i, _)| fleet.shard.is_none_or(|s| s.has(*i)))
        .map(|(_, m)| m)
        .collect();
    if members.is_empty() {
        bail!("--shard leaves no member of {} to run", targets.display());
    }
    if let Some(m) = members.iter().find(|m| m.schema.is_some()) {
        if fleet.apply.common.source_schema.is_none() {
            bail!(
                "member {} (line {}) is a tenant schema: name SOURCE's template schema with --source-schema NAME",
                m.name,
                m.line
            );
        }
    }
    if let Some(dir) = &fleet.out_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("making the directory {}", dir.display()))?;
    }
    // The fleet's reports, opened before anything changes.
    let reports = super::apply::Reports::open(args)?;
    let source = source_once(fleet).await?;

    let canary = (fleet.canary as usize).min(members.len());
    let mut results: Vec<Option<MemberResult>> = vec![None; members.len()];
    let mut stopped: Option<String> = None;
    for wave in [0..canary, canary..members.len()] {
        let mut next = wave.start;
        let mut running = FuturesUnordered::new();
        loop {
            if stopped.is_none() {
                stopped = stop_reason(&results, fleet);
            }
            while stopped.is_none() && running.len() < fleet.jobs as usize && next < wave.end {
                let i = next;
                next += 1;
                let in_canary = i < canary;
                let (f, s, m) = (fleet, &source, &members[i]);
                running.push(async move { (i, run_member(f, s, m, in_canary).await) });
            }
            let Some((i, r)) = running.next().await else {
                break;
            };
            super::apply::say(out, &r.line())?;
            results[i] = Some(r);
        }
        if wave.end == canary && canary > 0 && stopped.is_none() {
            let bad: Vec<&str> = results[..canary]
                .iter()
                .flatten()
                .filter(|r| r.outcome.failed())
                .map(|r| r.member.as_str())
                .collect();
            if !bad.is_empty() {
                stopped = Some(format!("the canary failed ({})", bad.join(", ")));
            }
        }
    }
    let results: Vec<MemberResult> = results
        .into_iter()
        .zip(&members)
        .map(|(r, m)| {
            r.unwrap_or_else(|| MemberResult {
                member: m.name.clone(),
                endpoint: redact(&m.endpoint),
                outcome: Became::NotStarted,
                steps: None,
                hazards: Vec::new(),
                residue: Vec::new(),
                error: stopped.clone(),
                ms: 0.0,
                canary: false,
            })
        })
        .collect();
    let code = fleet::exit_code(&results);
    for line in fleet::summary(&results) {
        super::apply::say(out, &line)?;
    }
    let action = match fleet.action {
        FleetAction::Diff => "diff",
        FleetAction::Plan => "plan",
        _ => "apply",
    };
    let report = fleet::Report {
        action,
        source: &source.name,
        exit_code: code,
        members: &results,
        total_ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    write_reports(&reports, &report)?;
    let mut messages = Vec::new();
    if let Some(why) = &stopped {
        messages.push(format!("pgalign: fleet: members not started: {why}"));
    }
    Ok(Outcome { code, messages })
}
