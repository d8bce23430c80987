//! One file per subcommand: orchestration only. Shared here: loading both sides.

pub mod apply;
pub mod diff;
pub mod dump_files;
mod files;
pub mod fleet;
pub mod plan;
mod preflight;
mod rehearse;
mod tenant;
mod verify;

use crate::catalog::ObjectKind;
use crate::catalog::{self, Catalog, Filter};
use crate::cli::Common;
use crate::dump::{self, DumpError, Tools};
use crate::endpoint::{ConnParams, Endpoint, Side};
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What a command hands back to `main`: its exit code and lines for stderr.
#[derive(Debug, Default)]
pub struct Outcome {
    pub code: i32,
    pub messages: Vec<String>,
}

/// Stage timings, printed with --timings, each with the process's peak memory so far (where
/// the system tells it), so that the stage which raises the peak is visible too.
#[derive(Debug, Default)]
pub struct Timings(pub Vec<(String, Duration, Option<u64>)>);

impl Timings {
    pub fn lap(&mut self, stage: &str, since: Instant) {
        self.0
            .push((stage.to_string(), since.elapsed(), peak_rss_kib()));
    }
    pub fn lines(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(s, d, peak)| {
                let ms = d.as_secs_f64() * 1000.0;
                match peak {
                    Some(kib) => format!(
                        "timing: {s}: {ms:.1} ms (peak RSS so far {:.1} MB)",
                        *kib as f64 / 1024.0
                    ),
                    None => format!("timing: {s}: {ms:.1} ms"),
                }
            })
            .collect()
    }
}

/// The process's peak resident set in KiB (`VmHWM` in /proc/self/status; None elsewhere).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Both sides, loaded.
pub struct Loaded {
    pub source: Catalog,
    pub target: Catalog,
    pub source_name: String,
    pub target_name: String,
    /// TARGET's connection, when it is a database (not a dump file).
    pub target_conn: Option<ConnParams>,
    /// TARGET's schema as pg_dump wrote it (when it is a database), for a rehearsal to restore.
    pub target_archive: Option<dump::Archive>,
    pub messages: Vec<String>,
}

/// The planner's options from a command's flags.
pub fn plan_options(c: &Common, t: &crate::cli::Timeouts, online: bool) -> crate::plan::Options {
    crate::plan::Options {
        lock_timeout: t.lock_timeout,
        statement_timeout: t.statement_timeout,
        online,
        filter: filter_of(c),
    }
}

pub fn filter_of(c: &Common) -> Filter {
    Filter {
        // --target-schema: both sides are that one schema (SOURCE's renamed to it).
        schemas: match &c.target_schema {
            Some(t) => vec![t.clone()],
            None => c.schemas.clone(),
        },
        exclude_schemas: c.exclude_schemas.clone(),
        no_owner: c.no_owner,
        no_privileges: c.no_privileges,
    }
}

/// Connection keywords the user gave besides the endpoints.
fn extra_params(c: &Common) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Some(s) = &c.sslmode {
        m.insert("sslmode".into(), s.name().to_string());
    }
    if let Some(p) = &c.sslrootcert {
        m.insert("sslrootcert".into(), p.display().to_string());
    }
    m
}

/// The pg_dump tools found, with the waits the flags allow them.
pub fn find_tools(c: &Common) -> Result<Vec<Tools>> {
    let tools = dump::find_tools(c.pg_dump.as_deref())?;
    Ok(Tools::with_limits(
        tools,
        c.dump_lock_timeout,
        c.dump_timeout,
    ))
}

/// Turns an endpoint into connection parameters (fetching the secret if it is one).
pub async fn connect_params(ep: &Endpoint, c: &Common) -> Result<Option<ConnParams>> {
    let extra = extra_params(c);
    match ep {
        Endpoint::DumpFile(_) | Endpoint::SqlFiles(_) => Ok(None),
        Endpoint::Database(p) => {
            let mut p = p.clone();
            for (k, v) in extra {
                p.params.insert(k, v);
            }
            Ok(Some(p))
        }
        Endpoint::Secret(s) => Ok(Some(crate::secrets::resolve(s, &extra).await?)),
    }
}

/// One side's catalog, and the archive pg_dump wrote when it is a database.
type SideDump = (Catalog, Option<dump::Archive>);

async fn dump_side(
    side: &str,
    ep: &Endpoint,
    conn: Option<&ConnParams>,
    tools: &[Tools],
    filter: &catalog::Filter,
) -> Result<SideDump, DumpError> {
    let stage = match conn {
        Some(c) => crate::progress::stage(&format!("dumping {side} {c}")),
        None => crate::progress::stage(&format!("reading {side} {ep}")),
    };
    let r = dump_side_now(ep, conn, tools, filter).await;
    if r.is_ok() {
        stage.done();
    }
    r
}

async fn dump_side_now(
    ep: &Endpoint,
    conn: Option<&ConnParams>,
    tools: &[Tools],
    filter: &catalog::Filter,
) -> Result<SideDump, DumpError> {
    match (ep, conn) {
        (Endpoint::DumpFile(p), _) => dump::read_dump_file(p, tools.first(), filter)
            .await
            .map(|c| (c, None))
            .map_err(DumpError::Other),
        (_, Some(c)) => {
            let t = tools
                .first()
                .ok_or_else(|| DumpError::Other(anyhow!("no pg_dump found")))?;
            let archive = dump::dump_archive(c, t).await?;
            let cat = archive.read(t, filter).await?;
            Ok((cat, Some(archive)))
        }
        _ => Err(DumpError::Other(anyhow!("no connection parameters"))),
    }
}

/// One database dumped into its catalog; `what` names it in the error.
pub async fn dump_catalog(
    conn: &ConnParams,
    tools: &[Tools],
    filter: &catalog::Filter,
    what: &str,
) -> Result<Catalog> {
    let t = tools.first().context("no pg_dump found")?;
    let stage = crate::progress::stage(&format!("dumping {what}"));
    let cat = dump::dump_database(conn, t, filter)
        .await
        .map_err(|e| anyhow!("dumping {what}: {e}"))?;
    stage.done();
    Ok(cat)
}

/// The blocks of both sides that reach the plan (created, dropped or changed), checked with the
/// server's grammar (`catalog::validate`): a statement that is not pg_dump's never becomes a step.
/// Only those: parsing every statement of 10,000 tables would cost more than reading them.
pub fn validate(loaded: &Loaded, d: &crate::diff::Diff) -> Result<()> {
    validate_pair(
        (&loaded.source, &loaded.source_name),
        (&loaded.target, &loaded.target_name),
        d,
    )
}

/// `validate` for two catalogs held apart (a fleet's SOURCE, read once, and a member).
pub fn validate_pair(
    (source, source_name): (&Catalog, &str),
    (target, target_name): (&Catalog, &str),
    d: &crate::diff::Diff,
) -> Result<()> {
    // One side on a thread of its own (2 cores): each is a parse per changed statement.
    let (s, t) = std::thread::scope(|scope| {
        let t =
            scope.spawn(|| catalog::validate(target, d.changes.iter().filter_map(|c| c.target())));
        let s = catalog::validate(source, d.changes.iter().filter_map(|c| c.source()));
        (s, crate::threads::joined(t))
    });
    s.with_context(|| format!("reading source {source_name}"))?;
    t.with_context(|| format!("reading target {target_name}"))
}

/// TARGET alone, resolved, dumped and catalogued: a fleet member beside a SOURCE read once,
/// with the tools the fleet found once (finding them asks each pg_dump its version: 80 ms for
/// Debian's wrapper). Returns its catalog, its name and its connection (None for a dump file).
pub async fn load_target(
    c: &Common,
    tools: &[Tools],
) -> Result<(Catalog, String, Option<ConnParams>)> {
    let ep = Endpoint::resolve(c.target.as_deref(), Side::Target)?;
    let conn = connect_params(&ep, c).await.with_context(|| match &ep {
        Endpoint::Secret(_) => "reading the target's secret".to_string(),
        _ => format!("reading target {ep}"),
    })?;
    let name = conn
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or(ep.to_string());
    if conn.is_some() && tools.is_empty() {
        bail!("no pg_dump found: install PostgreSQL's client tools or pass --pg-dump PATH");
    }
    let (cat, _) = dump_side("target", &ep, conn.as_ref(), tools, &filter_of(c))
        .await
        .map_err(|e| anyhow!("dumping target {name}: {e}"))?;
    Ok((cat, name, conn))
}

/// Resolves, dumps (in parallel) and catalogs both sides. A side that is SQL files is loaded
/// into a scratch database first (on a throwaway server when no --scratch is given), dumped
/// from there, and the database and server removed before this returns, whatever happened:
/// when a signal drops this future, their `Drop`s remove them.
pub async fn load(c: &Common, timings: &mut Timings) -> Result<Loaded> {
    // --source-schema/--target-schema: SOURCE's schema renamed first (the archives live until
    // both sides are read).
    let mapped = tenant::mapped(c).await?;
    let c = mapped.as_ref().map_or(c, |(m, _)| m);
    let mut held = files::Scratches::default();
    let loaded = load_into(c, timings, &mut held).await;
    let warnings = held.release().await;
    match loaded {
        Ok(mut l) => {
            l.messages.extend(warnings);
            Ok(l)
        }
        Err(e) if warnings.is_empty() => Err(e),
        Err(e) => Err(anyhow!("{e:#} ({})", warnings.join("; "))),
    }
}

async fn load_into(
    c: &Common,
    timings: &mut Timings,
    held: &mut files::Scratches,
) -> Result<Loaded> {
    let t0 = Instant::now();
    let src_ep = Endpoint::resolve(c.source.as_deref(), Side::Source)?;
    let tgt_ep = Endpoint::resolve(c.target.as_deref(), Side::Target)?;
    let (sp, tp) = tokio::join!(connect_params(&src_ep, c), connect_params(&tgt_ep, c));
    // Secret errors name the secret themselves; other endpoints are named here.
    let what = |side: &str, ep: &Endpoint| match ep {
        Endpoint::Secret(_) => format!("reading the {side}'s secret"),
        _ => format!("reading {side} {ep}"),
    };
    let sp = sp.with_context(|| what("source", &src_ep))?;
    let tp = tp.with_context(|| what("target", &tgt_ep))?;
    let source_name = sp
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or(src_ep.to_string());
    let target_name = tp
        .as_ref()
        .map(|p| p.to_string())
        .unwrap_or(tgt_ep.to_string());
    let files_side = |ep: &Endpoint| match ep {
        Endpoint::SqlFiles(p) => Some(p.clone()),
        _ => None,
    };
    let (src_files, tgt_files) = (files_side(&src_ep), files_side(&tgt_ep));
    let needs_tools = sp.is_some() || tp.is_some() || src_files.is_some() || tgt_files.is_some();
    let tools = match find_tools(c) {
        Ok(t) => t,
        Err(e) if needs_tools => return Err(e),
        Err(_) => Vec::new(),
    };
    timings.lap("resolve endpoints", t0);

    let mut messages = Vec::new();
    let t1 = Instant::now();
    // A scratch database is dumped as the side it stands for; it is not TARGET for preflight.
    let target_conn = tp.clone();
    let mut sp = sp;
    let mut tp = tp;
    let target = (&tgt_ep, target_conn.as_ref());
    if let Some(p) = &src_files {
        let conn = files::materialize_side("source", p, c, target, &tools, held, &mut messages);
        sp = Some(conn.await?);
    }
    if let Some(p) = &tgt_files {
        let conn = files::materialize_side("target", p, c, target, &tools, held, &mut messages);
        tp = Some(conn.await?);
    }
    if src_files.is_some() || tgt_files.is_some() {
        timings.lap("load SQL files", t1);
    }

    // Each side is read into its catalog while pg_restore (or the file) streams it: the dump
    // text is never held whole.
    let t1 = Instant::now();
    let filter = filter_of(c);
    let (s, t, shards_tried) = first_dumps(
        [&src_ep, &tgt_ep],
        [sp.as_ref(), tp.as_ref()],
        &tools,
        &filter,
        timings,
        &mut messages,
    )
    .await;
    // Two pg_dumps on one server can exhaust its lock table: shards of one snapshot a side,
    // within one whole dump's locks, or else one side after the other.
    let mut retry_s = matches!(s, Err(DumpError::OutOfLocks(_)));
    let mut retry_t = matches!(t, Err(DumpError::OutOfLocks(_)));
    let (s, t) = if retry_s && retry_t && !shards_tried {
        let (s2, t2, note) =
            in_shards(sp.as_ref(), tp.as_ref(), &tools, &filter, None, timings).await;
        if let Some(note) = note {
            messages.push(format!("warning: the server ran out of lock slots with both dumps running at once (raise max_locks_per_transaction); {note}"));
            (retry_s, retry_t) = (false, false);
        }
        (s2, t2)
    } else {
        (s, t)
    };
    if retry_s || retry_t {
        messages.push("warning: the server ran out of lock slots with both dumps running at once (raise max_locks_per_transaction); dumping one side after the other".to_string());
    }
    let (s, t) = match (retry_s, retry_t, sp.as_ref(), tp.as_ref(), tools.first()) {
        // Both again, one pg_dump at a time (only pg_dump holds locks): the source's archive is
        // read while the target is dumped.
        (true, true, Some(sc), Some(tc), Some(tool)) => serial(sc, tc, tool, &filter).await,
        _ => {
            let s = if retry_s {
                dump_side("source", &src_ep, sp.as_ref(), &tools, &filter).await
            } else {
                s
            };
            let t = if retry_t {
                dump_side("target", &tgt_ep, tp.as_ref(), &tools, &filter).await
            } else {
                t
            };
            (s, t)
        }
    };
    // The source's archive is removed here; the target's stays for a rehearsal.
    let (source, _) = s.map_err(|e| anyhow!("dumping source {source_name}: {e}"))?;
    let (target, target_archive) = t.map_err(|e| anyhow!("dumping target {target_name}: {e}"))?;
    timings.lap("dump and catalog both sides", t1);
    // A --schema that names nothing on either side (a typo) would compare two empty sets and
    // call them equal.
    for name in &c.schemas {
        let present = |cat: &Catalog| {
            cat.blocks.iter().any(|b| {
                b.key.schema == name.as_str()
                    || (b.key.kind == ObjectKind::Schema && b.key.name == name.as_str())
            })
        };
        if name != "public" && !present(&source) && !present(&target) {
            bail!(
                "--schema {name:?}: no such schema in source {source_name} or target {target_name}: check the name (it is case-sensitive, as in the dump)"
            );
        }
    }
    Ok(Loaded {
        source,
        target,
        source_name,
        target_name,
        target_conn,
        target_archive,
        messages,
    })
}

/// Both live sides dumped one after the other (only pg_dump holds locks): the source's archive
/// is read while the target is dumped.
async fn serial(
    sc: &ConnParams,
    tc: &ConnParams,
    tool: &Tools,
    filter: &Filter,
) -> (Result<SideDump, DumpError>, Result<SideDump, DumpError>) {
    match dump::dump_archive(sc, tool).await {
        Ok(sa) => {
            let (s, ta) = tokio::join!(sa.catalog(tool, filter), dump::dump_archive(tc, tool));
            let t = match ta {
                Ok(ta) => ta.read(tool, filter).await.map(|c| (c, Some(ta))),
                Err(e) => Err(e),
            };
            (s.map(|c| (c, None)), t)
        }
        Err(e) => (
            Err(e),
            Err(DumpError::Other(anyhow!(
                "not dumped: the source's dump failed"
            ))),
        ),
    }
}

/// Both live sides dumped in shards (`crate::shards`), their timings added. An error of either
/// side as both sides' when sharding fails; OutOfLocks for both when the sides cannot be cut to
/// fit (the caller then dumps one side after the other). No archive: a rehearsal needs one.
async fn in_shards(
    sp: Option<&ConnParams>,
    tp: Option<&ConnParams>,
    tools: &[Tools],
    filter: &Filter,
    count: Option<usize>,
    timings: &mut Timings,
) -> (
    Result<SideDump, DumpError>,
    Result<SideDump, DumpError>,
    Option<String>,
) {
    let out_of_locks = |why: &str| {
        (
            Err(DumpError::OutOfLocks(why.to_string())),
            Err(DumpError::OutOfLocks(why.to_string())),
            None,
        )
    };
    let (Some(sc), Some(tc), Some(tool)) = (sp, tp, tools.first()) else {
        return out_of_locks("no shards: a side is not a database");
    };
    let stage = crate::progress::stage(&format!("dumping source {sc} and target {tc} in shards"));
    match crate::shards::dump_pair([sc, tc], tool, filter, count).await {
        Ok(Some(p)) => {
            stage.done();
            timings
                .0
                .extend(p.timings.into_iter().map(|(s, d)| (s, d, None)));
            (Ok((p.source, None)), Ok((p.target, None)), Some(p.message))
        }
        Ok(None) => out_of_locks("a schema holds more tables than a shard may lock"),
        Err(DumpError::OutOfLocks(e)) => out_of_locks(&e),
        Err(e) if count.is_some() => {
            let e = e.to_string();
            (
                Err(DumpError::Other(anyhow!("in shards: {e}"))),
                Err(DumpError::Other(anyhow!("in shards: {e}"))),
                None,
            )
        }
        // A failed sharded dump falls back to the serial one, which reports its own errors.
        Err(_) => out_of_locks("the sharded dump failed"),
    }
}

/// Both sides dumped whole and at once, unless the server's lock table cannot hold both sides'
/// tables (asked while the dumps start; when it cannot, they are stopped) or the test knob
/// asks for shards: then in shards (the last value says so).
async fn first_dumps(
    eps: [&Endpoint; 2],
    conns: [Option<&ConnParams>; 2],
    tools: &[Tools],
    filter: &Filter,
    timings: &mut Timings,
    messages: &mut Vec<String>,
) -> (
    Result<SideDump, DumpError>,
    Result<SideDump, DumpError>,
    bool,
) {
    let why = match (crate::shards::forced(), conns) {
        (Some(k), [Some(_), Some(_)]) => Some((k, "PGALIGN_DUMP_SHARDS")),
        (None, [Some(a), Some(b)]) => {
            let mut whole = Box::pin(async {
                tokio::join!(
                    dump_side("source", eps[0], conns[0], tools, filter),
                    dump_side("target", eps[1], conns[1], tools, filter)
                )
            });
            let t = Instant::now();
            let check = crate::shards::whole_dumps_overflow([a, b]);
            let overflow = tokio::select! {
                (s, t) = &mut whole => return (s, t, false),
                o = check => o,
            };
            timings.lap("lock table check (do two whole dumps fit?)", t);
            if !overflow {
                let (s, t) = whole.await;
                return (s, t, false);
            }
            // Stopped (their pg_dumps are killed) before they fill the lock table.
            drop(whole);
            Some((
                None,
                "the server's lock table holds fewer than both sides' tables (max_locks_per_transaction)",
            ))
        }
        _ => None,
    };
    match why {
        Some((k, why)) => {
            let (s, t, note) = in_shards(conns[0], conns[1], tools, filter, k, timings).await;
            messages.extend(note.map(|n| format!("note: {n}: {why}")));
            (s, t, true)
        }
        None => {
            let (s, t) = tokio::join!(
                dump_side("source", eps[0], conns[0], tools, filter),
                dump_side("target", eps[1], conns[1], tools, filter)
            );
            (s, t, false)
        }
    }
}
