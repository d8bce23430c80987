//! Dumping a side in shards when two whole pg_dumps do not fit the server's lock table: each
//! shard is a pg_dump of one snapshot (exported by a connection held open for the side) that
//! locks the tables of some schemas only, and the shards of both sides run so that the locks held
//! at once stay within what one whole dump needs. The shards' catalogs are merged into the one
//! a whole dump gives (`catalog::merge`).
//!
//! How a shard is cut: pg_dump `--exclude-table 'schema.*'` for the schemas of other shards.
//! Only tables are left out: every other object (schemas, types, functions, extensions,
//! publications...) is in every shard, and needs no lock (pg_dump locks plain and partitioned
//! tables only). A schema whose tables, views or their parts depend on the relations of another
//! schema (a foreign key, a view, inheritance, a sequence owned across schemas) takes that
//! schema's tables into its shard too: pg_dump keeps only dependencies between entries it dumps,
//! and the merge re-links the rest by key.
//!
//! Test knob: `PGALIGN_DUMP_SHARDS=N` dumps both live sides in N shards each (at most one per
//! schema holding relations) without trying whole dumps first; `PGALIGN_DUMP_SHARDS=auto` in the
//! shards the lock budget calls for, as after whole dumps ran out of locks (when a side cannot
//! be cut to fit, both are dumped one after the other).

use crate::catalog::{self, Catalog, Filter};
use crate::dump::{self, DumpError, Part, Tools};
use crate::endpoint::ConnParams;
use anyhow::{anyhow, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// One side's schemas as the shard planner sees them.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Each schema holding relations: the tables pg_dump locks in it.
    pub locks: BTreeMap<String, u64>,
    /// Schema -> the schemas whose relations its relations (or their parts) depend on.
    pub needs: BTreeMap<String, BTreeSet<String>>,
}

impl Layout {
    /// The schemas whose tables a shard holding `schema` must dump too (itself included).
    fn closure(&self, schema: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![schema.to_string()];
        while let Some(s) = todo.pop() {
            if let Some(next) = self.needs.get(&s) {
                todo.extend(next.iter().filter(|n| !out.contains(*n)).cloned());
            }
            out.insert(s);
        }
        out
    }

    fn locks_of<'a>(&self, schemas: impl IntoIterator<Item = &'a String>) -> u64 {
        schemas
            .into_iter()
            .map(|s| self.locks.get(s).copied().unwrap_or(0))
            .sum()
    }

    /// The most tables one schema's shard must lock for other schemas' sake.
    pub fn shared_overhead(&self) -> u64 {
        self.locks
            .keys()
            .map(|s| self.locks_of(&self.closure(s)) - self.locks_of([s]))
            .max()
            .unwrap_or(0)
    }

    /// The tables every shard of a whole dump would lock.
    pub fn total(&self) -> u64 {
        self.locks.values().sum()
    }
}

/// One shard: the schemas whose tables it dumps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub schemas: BTreeSet<String>,
    pub locks: u64,
}

/// Cuts a side into as few shards as keep each within `cap` tables: two, balanced, or more when
/// two do not fit. None when one schema's tables with those it needs exceed `cap`, or when the
/// side fits one shard: then sharding does not pay.
pub fn plan_within(layout: &Layout, cap: u64) -> Option<Vec<Shard>> {
    let n = layout.locks.len();
    if n < 2 || layout.total() <= cap {
        return None;
    }
    let least = layout.total().div_ceil(cap.max(1)).max(2) as usize;
    (least..=n)
        .filter_map(|k| plan(layout, cap, Some(k)))
        .find(|p| p.iter().all(|s| s.locks <= cap))
}

/// Cuts a side into shards. `cap`: the most tables one shard may lock; `count`: a number of
/// shards wanted instead, balanced. Largest schemas first, each into the shard it adds the
/// fewest locks to (first fit), or with a count into the smallest. None when a schema's tables
/// with those it needs exceed `cap` alone, or when there would be one shard only.
pub fn plan(layout: &Layout, cap: u64, count: Option<usize>) -> Option<Vec<Shard>> {
    let mut homes: Vec<(u64, &String, BTreeSet<String>)> = layout
        .locks
        .keys()
        .map(|s| {
            let c = layout.closure(s);
            (layout.locks_of(&c), s, c)
        })
        .collect();
    homes.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
    let mut shards: Vec<Shard> = Vec::new();
    if let Some(k) = count {
        shards.resize(
            k.clamp(1, homes.len().max(1)),
            Shard {
                schemas: BTreeSet::new(),
                locks: 0,
            },
        );
    }
    for (own, _, closure) in homes {
        if count.is_none() && own > cap {
            return None;
        }
        let grown = |s: &Shard| layout.locks_of(s.schemas.union(&closure));
        let fits = shards
            .iter()
            .enumerate()
            .map(|(i, s)| (grown(s), s.locks, i))
            .filter(|&(g, _, _)| count.is_some() || g <= cap)
            // A shard that dumps all it needs already takes it; else forced counts balance
            // (smallest shard first) and capped ones fill (least growth).
            .min_by_key(|&(g, l, i)| match count {
                _ if g == l => (0, 0, 0, i),
                Some(_) => (1, l, g, i),
                None => (1, g - l, g, i),
            });
        match fits {
            Some((g, _, i)) => {
                shards[i].schemas.extend(closure);
                shards[i].locks = g;
            }
            None => shards.push(Shard {
                locks: own,
                schemas: closure,
            }),
        }
    }
    shards.retain(|s| !s.schemas.is_empty());
    (shards.len() > 1 || count.is_some()).then_some(shards)
}

/// pg_dump `--exclude-table` patterns that leave out the tables of every schema `shard` does
/// not dump: quoted names (so no character means anything to pg_dump's pattern syntax but a
/// doubled quote), alternated, a hundred to a pattern (one catalog query each).
pub fn exclude_patterns(layout: &Layout, shard: &Shard) -> Vec<String> {
    let others: Vec<String> = layout
        .locks
        .keys()
        .filter(|s| !shard.schemas.contains(*s))
        .map(|s| format!("\"{}\"", s.replace('"', "\"\"")))
        .collect();
    others
        .chunks(100)
        .map(|c| format!("({}).*", c.join("|")))
        .collect()
}

/// Which waiting shard starts next: the first whose locks fit beside those held, or the first
/// at all when none runs (one shard alone is never held back), below `parallel` at once.
pub fn pick(
    waiting: &[u64],
    held: u64,
    running: usize,
    budget: u64,
    parallel: usize,
) -> Option<usize> {
    if running >= parallel {
        return None;
    }
    if running == 0 {
        return (!waiting.is_empty()).then_some(0);
    }
    waiting.iter().position(|&l| held + l <= budget)
}

/// Whether two whole dumps of these sides at once would overflow their server's lock table, by
/// the server's own numbers (tables to lock against the lock table's size, `LOCK_TABLE`):
/// asked while the whole dumps start, so that a large pair
/// goes to shards at once instead of after two whole dumps failed halfway. False when the sides
/// are on different servers, or the question gets no answer within 10 s.
pub async fn whole_dumps_overflow(conns: [&ConnParams; 2]) -> bool {
    let server = |c: &ConnParams| {
        (
            c.resolved("hostaddr").or_else(|| c.resolved("host")),
            c.resolved("port"),
        )
    };
    if server(conns[0]) != server(conns[1]) {
        return false;
    }
    let count = |c: ConnParams| async move {
        let t = crate::apply::connect::connect(&c).await.ok()?;
        let row = t
            .client
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM pg_catalog.pg_class c
                              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                             WHERE c.relkind IN ('r', 'p')
                               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                               AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'), {LOCK_TABLE}"
                ),
                &[],
            )
            .await
            .ok()?;
        Some((row.get::<_, i64>(0), row.get::<_, i64>(1)))
    };
    let ask = async {
        let (a, b) = tokio::join!(count(conns[0].clone()), count(conns[1].clone()));
        let ((ta, lock_table), (tb, _)) = (a?, b?);
        Some(ta + tb > lock_table)
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(10), ask).await,
        Ok(Some(true))
    )
}

/// What `PGALIGN_DUMP_SHARDS` asks for (a test knob), if set: `auto`, the shards the lock budget
/// calls for (Some(None)), or a number of shards a side.
pub fn forced() -> Option<Option<usize>> {
    let v = std::env::var("PGALIGN_DUMP_SHARDS").ok()?;
    let v = v.trim();
    if v == "auto" {
        return Some(None);
    }
    v.parse().ok().filter(|&n: &usize| n >= 1).map(Some)
}

/// A connection holding one side's snapshot open while its shards read it.
struct Snapshot {
    _conn: crate::apply::connect::Target,
    id: String,
    layout: Layout,
    /// The lock table's size (`LOCK_TABLE`).
    lock_table: u64,
}

const LAYOUT_LOCKS: &str = "SELECT n.nspname::text, count(*) FILTER (WHERE c.relkind IN ('r', 'p'))
   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    AND n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  GROUP BY 1";

/// Which schema's relations (or their parts) depend on another schema's relations, where that
/// can happen: foreign keys, inheritance and partitions, what views and rules read, sequences
/// that defaults call or that a table owns, tables triggers and policies name, row types (and
/// arrays of them) in columns and defaults. Each part reads its rows of pg_depend by index:
/// one join of all of pg_depend took twice as long at 10,000 tables (0.7-1.2 s). Internal
/// triggers are left out: a foreign key's triggers on the referenced table are not dumped.
const LAYOUT_NEEDS: &str = "WITH pairs(from_nsp, to_nsp) AS (
      -- foreign keys
      SELECT c.relnamespace, r.relnamespace
        FROM pg_catalog.pg_constraint o
        JOIN pg_catalog.pg_class c ON c.oid = o.conrelid
        JOIN pg_catalog.pg_class r ON r.oid = o.confrelid
       WHERE o.contype = 'f'
      -- inheritance and partitions
      UNION SELECT c.relnamespace, p.relnamespace
        FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
        JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
      -- what a view or rule reads
      UNION SELECT c.relnamespace, r.relnamespace
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid
        JOIN pg_catalog.pg_class c ON c.oid = w.ev_class
        JOIN pg_catalog.pg_class r ON r.oid = d.refobjid
       WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.deptype = 'n'
         AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      -- sequences a default calls, tables a trigger or policy names
      UNION SELECT c.relnamespace, r.relnamespace
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_attrdef a ON a.oid = d.objid
        JOIN pg_catalog.pg_class c ON c.oid = a.adrelid
        JOIN pg_catalog.pg_class r ON r.oid = d.refobjid
       WHERE d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND d.deptype = 'n'
         AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      UNION SELECT c.relnamespace, r.relnamespace
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_trigger t ON t.oid = d.objid
        JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
        JOIN pg_catalog.pg_class r ON r.oid = d.refobjid
       WHERE d.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass AND d.deptype = 'n'
         AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND NOT t.tgisinternal
      UNION SELECT c.relnamespace, r.relnamespace
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_policy p ON p.oid = d.objid
        JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
        JOIN pg_catalog.pg_class r ON r.oid = d.refobjid
       WHERE d.classid = 'pg_catalog.pg_policy'::pg_catalog.regclass AND d.deptype = 'n'
         AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      -- sequences owned by a table
      UNION SELECT s.relnamespace, r.relnamespace
        FROM pg_catalog.pg_sequence q
        JOIN pg_catalog.pg_class s ON s.oid = q.seqrelid
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
         AND d.objid = q.seqrelid AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
        JOIN pg_catalog.pg_class r ON r.oid = d.refobjid
      -- row types (and arrays of them) of other relations, in columns or defaults
      UNION SELECT c.relnamespace, r.relnamespace
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_type t ON t.oid = d.refobjid
        LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem
        JOIN pg_catalog.pg_class r ON r.oid = COALESCE(NULLIF(t.typrelid, 0), e.typrelid)
        JOIN pg_catalog.pg_class c ON c.oid = d.objid
       WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
         AND d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.deptype = 'n'
      UNION SELECT c.relnamespace, r.relnamespace
        FROM pg_catalog.pg_depend d
        JOIN pg_catalog.pg_type t ON t.oid = d.refobjid
        LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem
        JOIN pg_catalog.pg_class r ON r.oid = COALESCE(NULLIF(t.typrelid, 0), e.typrelid)
        JOIN pg_catalog.pg_attrdef a ON a.oid = d.objid
        JOIN pg_catalog.pg_class c ON c.oid = a.adrelid
       WHERE d.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass
         AND d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.deptype = 'n')
  SELECT dn.nspname::text, rn.nspname::text
    FROM pairs
    JOIN pg_catalog.pg_namespace dn ON dn.oid = pairs.from_nsp
    JOIN pg_catalog.pg_namespace rn ON rn.oid = pairs.to_nsp
   WHERE pairs.from_nsp <> pairs.to_nsp";

/// The lock table's size: `max_locks_per_transaction` times the server's backends (its
/// MaxBackends: connections, autovacuum workers and their launcher, background workers, WAL
/// senders) and prepared transactions, as lock.c sizes it (NLOCKENTS).
const LOCK_TABLE: &str = "(pg_catalog.current_setting('max_locks_per_transaction')::int8
        * (pg_catalog.current_setting('max_connections')::int8
           + pg_catalog.current_setting('autovacuum_max_workers')::int8 + 1
           + pg_catalog.current_setting('max_worker_processes')::int8
           + pg_catalog.current_setting('max_wal_senders')::int8
           + pg_catalog.current_setting('max_prepared_transactions')::int8))";

impl Snapshot {
    /// Opens a repeatable-read transaction and exports its snapshot; a second transaction reads
    /// the layout at that snapshot and ends, so that the catalog locks its queries took are not
    /// held while the shards need the lock table.
    async fn open(conn: &ConnParams) -> Result<Snapshot> {
        let work = async {
            let c = crate::apply::connect::connect(conn).await?;
            c.client
                .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .await?;
            let id: String = c
                .client
                .query_one("SELECT pg_catalog.pg_export_snapshot()", &[])
                .await?
                .get(0);
            let r = crate::apply::connect::connect(conn).await?;
            // SET TRANSACTION SNAPSHOT takes a literal, not a parameter.
            r.client
                .batch_execute(&format!(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}; SET LOCAL statement_timeout = '120s'",
                    crate::catalog::quote_literal(&id)
                ))
                .await?;
            let mut layout = Layout::default();
            for row in r.client.query(LAYOUT_LOCKS, &[]).await? {
                layout
                    .locks
                    .insert(row.get(0), row.get::<_, i64>(1).max(0) as u64);
            }
            for row in r.client.query(LAYOUT_NEEDS, &[]).await? {
                let (from, to): (String, String) = (row.get(0), row.get(1));
                if layout.locks.contains_key(&from) && layout.locks.contains_key(&to) {
                    layout.needs.entry(from).or_default().insert(to);
                }
            }
            let lock_table: i64 = r
                .client
                .query_one(&format!("SELECT {LOCK_TABLE}"), &[])
                .await?
                .get(0);
            r.client.batch_execute("COMMIT").await?;
            anyhow::Ok(Snapshot {
                _conn: c,
                id,
                layout,
                lock_table: lock_table.max(0) as u64,
            })
        };
        tokio::time::timeout(Duration::from_secs(150), work)
            .await
            .map_err(|_| anyhow!("exporting a snapshot did not finish within 150 s"))?
            .map_err(|e| match e.downcast_ref::<tokio_postgres::Error>() {
                Some(pg) => anyhow!("{}", crate::apply::pg_error_text(pg)),
                None => e,
            })
            .context("exporting a snapshot for a sharded dump")
    }
}

/// Both sides, dumped in shards.
pub struct Pair {
    pub source: Catalog,
    pub target: Catalog,
    /// For --timings: each shard, its locks and how long its pg_dump and its reading took.
    pub timings: Vec<(String, Duration)>,
    /// What was done, for stderr.
    pub message: String,
}

/// One pg_dump to run.
struct Job {
    conn: ConnParams,
    side: usize,
    index: usize,
    of: usize,
    locks: u64,
    part: Part,
}

const SIDES: [&str; 2] = ["source", "target"];

/// Dumps both live sides in shards within one whole dump's locks; None when a side cannot be cut
/// into shards that fit (one schema holds too many tables): the caller dumps one side after the
/// other instead. `count`: the test knob's number of shards a side.
pub async fn dump_pair(
    conns: [&ConnParams; 2],
    tools: &Tools,
    filter: &Filter,
    count: Option<usize>,
) -> Result<Option<Pair>, DumpError> {
    let Some(sharded) = dump_sides(&conns, tools, filter, count).await? else {
        return Ok(None);
    };
    let [source, target]: [Catalog; 2] = sharded
        .catalogs
        .try_into()
        .map_err(|_| DumpError::Other(anyhow!("two sides dumped, but not two catalogs")))?;
    Ok(Some(Pair {
        source,
        target,
        timings: sharded.timings,
        message: format!(
            "dumped both sides in shards of one snapshot each ({} source, {} target), at most {} tables locked at once",
            sharded.shards[0], sharded.shards[1], sharded.budget
        ),
    }))
}

/// Sides dumped in shards: a merged catalog, and its number of shards, a side.
pub struct Sharded {
    pub catalogs: Vec<Catalog>,
    pub shards: Vec<usize>,
    pub budget: u64,
    pub timings: Vec<(String, Duration)>,
}

/// Dumps live sides (one or two) in shards; None when one cannot be cut to fit.
pub async fn dump_sides(
    conns: &[&ConnParams],
    tools: &Tools,
    filter: &Filter,
    count: Option<usize>,
) -> Result<Option<Sharded>, DumpError> {
    let t0 = Instant::now();
    let mut opening = tokio::task::JoinSet::new();
    for (i, c) in conns.iter().enumerate() {
        let c = (*c).clone();
        opening.spawn(async move { (i, Snapshot::open(&c).await) });
    }
    let mut snaps: Vec<(usize, Snapshot)> = Vec::new();
    while let Some(r) = opening.join_next().await {
        let (i, s) = r.map_err(|e| {
            DumpError::Other(anyhow!("exporting a snapshot stopped unexpectedly: {e}"))
        })?;
        snaps.push((i, s.map_err(DumpError::Other)?));
    }
    snaps.sort_by_key(|(i, _)| *i);
    let snaps: Vec<Snapshot> = snaps.into_iter().map(|(_, s)| s).collect();
    let mut timings = vec![(
        "shards: export snapshots and read layouts".to_string(),
        t0.elapsed(),
    )];
    // What one whole dump of the larger side needs: the serial fallback holds that much.
    let budget = snaps
        .iter()
        .map(|s| s.layout.total())
        .max()
        .unwrap_or(0)
        .max(1);
    // Tables a shard dumps for another schema's sake (`shared` lookups behind foreign keys) are
    // locked by every shard that needs them: the cap leaves room for them.
    let shared = snaps
        .iter()
        .map(|s| s.layout.shared_overhead())
        .max()
        .unwrap_or(0);
    // Halves, so that one shard of each side runs at once: two shards more would each add a
    // pg_dump's fixed cost (it reads the whole catalog whatever it dumps). Schemas do not cut
    // into exact halves: 2% of room. Two pg_dumps at once also hold one pg_dump's catalog locks
    // (~60) more than one whole dump does.
    let cap = (budget + shared + budget / 50).div_ceil(2).max(1);
    let budget = 2 * cap;
    let mut jobs = Vec::new();
    let mut shards = Vec::new();
    for (side, snap) in snaps.iter().enumerate() {
        let planned = match count {
            Some(k) => plan(&snap.layout, cap, Some(k)),
            None => plan_within(&snap.layout, cap),
        };
        let planned = match planned {
            Some(s) => s,
            // A side small enough for one shard is dumped whole, at the snapshot.
            None if snap.layout.total() <= cap => vec![Shard {
                schemas: snap.layout.locks.keys().cloned().collect(),
                locks: snap.layout.total(),
            }],
            None => return Ok(None),
        };
        let mut planned = planned;
        planned.sort_by_key(|s| std::cmp::Reverse(s.locks));
        shards.push(planned.len());
        let of = planned.len();
        for (index, sh) in planned.iter().enumerate() {
            jobs.push(Job {
                conn: conns[side].clone(),
                side,
                index,
                of,
                locks: sh.locks,
                part: Part {
                    snapshot: Some(snap.id.clone()),
                    exclude_tables: exclude_patterns(&snap.layout, sh),
                },
            });
        }
    }
    let lock_table = snaps.iter().map(|s| s.lock_table).max().unwrap_or(0);
    timings[0].0 = format!(
        "shards: export snapshots and read layouts (lock table {lock_table}, budget {budget} tables)"
    );
    // The sides take turns, each side's largest shard first: a shard of each side runs at once.
    jobs.sort_by_key(|j| (j.index, j.side));
    let (cats, mut lines) = run(jobs, conns.len(), tools, filter, budget).await?;
    drop(snaps);
    timings.append(&mut lines);
    let t1 = Instant::now();
    // One side after the other: a merge briefly holds each block's dependencies several times
    // over (20-30 MB a side at 10,000 tables), and two at once were the peak of a sharded plan.
    // A merge takes ~0.2 s at that size, against ~9 s of dumps.
    let merged = tokio::task::spawn_blocking(move || {
        cats.into_iter()
            .map(catalog::merge::merge)
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .await
    .map_err(|e| DumpError::Other(anyhow!("merging the shards stopped unexpectedly: {e}")))?
    .map_err(DumpError::Other)?;
    timings.push(("shards: merge".to_string(), t1.elapsed()));
    Ok(Some(Sharded {
        catalogs: merged,
        shards,
        budget,
        timings,
    }))
}

type Done = (
    usize,
    usize,
    usize,
    u64,
    Result<dump::Archive, DumpError>,
    Duration,
);
type Read = (usize, usize, Result<Catalog, DumpError>, Duration);

/// Runs the jobs within `budget` locks at once, each archive read while others dump; the
/// catalogs of each side in shard order, and a timing line a shard.
async fn run(
    mut jobs: Vec<Job>,
    sides: usize,
    tools: &Tools,
    filter: &Filter,
    budget: u64,
) -> Result<(Vec<Vec<Catalog>>, Vec<(String, Duration)>), DumpError> {
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 4));
    let mut dumps: tokio::task::JoinSet<Done> = tokio::task::JoinSet::new();
    let mut reads: tokio::task::JoinSet<Read> = tokio::task::JoinSet::new();
    let mut held = 0u64;
    let mut lines = Vec::new();
    loop {
        let waiting: Vec<u64> = jobs.iter().map(|j| j.locks).collect();
        if let Some(i) = pick(&waiting, held, dumps.len(), budget, parallel) {
            let j = jobs.remove(i);
            held += j.locks;
            let tools = tools.clone();
            dumps.spawn(async move {
                let t = Instant::now();
                let r = dump::dump_part(&j.conn, &tools, &j.part).await;
                (j.side, j.index, j.of, j.locks, r, t.elapsed())
            });
            continue;
        }
        let Some(done) = dumps.join_next().await else {
            break;
        };
        let (side, index, of, locks, archive, took) = done.map_err(|e| {
            DumpError::Other(anyhow!("a shard's pg_dump stopped unexpectedly: {e}"))
        })?;
        held -= locks;
        lines.push((
            format!(
                "shard {} {}/{of}: pg_dump locking {locks} tables",
                SIDES.get(side).unwrap_or(&"side"),
                index + 1
            ),
            took,
        ));
        let archive = archive?;
        let (tools, filter) = (tools.clone(), filter.clone());
        reads.spawn(async move {
            let t = Instant::now();
            let r = archive.catalog(&tools, &filter).await;
            (side, index, r, t.elapsed())
        });
    }
    let mut cats: Vec<Vec<(usize, Catalog)>> = (0..sides).map(|_| Vec::new()).collect();
    while let Some(r) = reads.join_next().await {
        let (side, index, cat, took) =
            r.map_err(|e| DumpError::Other(anyhow!("reading a shard stopped unexpectedly: {e}")))?;
        lines.push((
            format!(
                "shard {} {}: read into a catalog",
                SIDES.get(side).unwrap_or(&"side"),
                index + 1
            ),
            took,
        ));
        cats[side].push((index, cat?));
    }
    let cats = cats
        .into_iter()
        .map(|mut v| {
            v.sort_by_key(|(i, _)| *i);
            v.into_iter().map(|(_, c)| c).collect()
        })
        .collect();
    Ok((cats, lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(locks: &[(&str, u64)], needs: &[(&str, &str)]) -> Layout {
        let mut l = Layout::default();
        for (s, n) in locks {
            l.locks.insert(s.to_string(), *n);
        }
        for (a, b) in needs {
            l.needs
                .entry(a.to_string())
                .or_default()
                .insert(b.to_string());
        }
        l
    }

    fn names(s: &Shard) -> Vec<&str> {
        s.schemas.iter().map(String::as_str).collect()
    }

    #[test]
    fn tenants_split_within_the_cap_and_take_what_they_need_along() {
        // 40 tenants of 250 tables, each with foreign keys into `shared` (10 tables).
        let mut locks = vec![("shared".to_string(), 10u64)];
        locks.extend((1..=40).map(|i| (format!("tenant_{i:03}"), 250)));
        let locks: Vec<(&str, u64)> = locks.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        let needs: Vec<(String, String)> = (1..=40)
            .map(|i| (format!("tenant_{i:03}"), "shared".to_string()))
            .collect();
        let needs: Vec<(&str, &str)> = needs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let l = layout(&locks, &needs);
        // One whole dump's 10,010 tables, and room for `shared` twice.
        assert_eq!(l.shared_overhead(), 10);
        let cap = (l.total() + l.shared_overhead()) / 2;
        let shards = plan_within(&l, cap).unwrap();
        assert_eq!(shards.len(), 2);
        for s in &shards {
            assert!(s.locks <= cap, "{s:?}");
            assert!(s.schemas.contains("shared"), "{s:?}");
            assert_eq!(s.locks, l.locks_of(&s.schemas));
        }
        // Every tenant is dumped by exactly one shard.
        for i in 1..=40 {
            let t = format!("tenant_{i:03}");
            assert_eq!(shards.iter().filter(|s| s.schemas.contains(&t)).count(), 1);
        }
        // Shard 1 leaves out the other shard's tenants, not `shared`.
        let pats = exclude_patterns(&l, &shards[0]);
        assert_eq!(pats.len(), 1);
        assert!(!pats[0].contains("\"shared\""), "{pats:?}");
        assert_eq!(pats[0].matches('|').count(), 19, "{pats:?}");
    }

    #[test]
    fn one_schema_over_the_cap_cannot_be_sharded() {
        let l = layout(&[("public", 9_000), ("audit", 100)], &[]);
        assert_eq!(plan_within(&l, 5_000), None);
        // Mutual needs make one unit: too big together.
        let l = layout(&[("a", 3_000), ("b", 3_000)], &[("a", "b"), ("b", "a")]);
        assert_eq!(plan_within(&l, 5_000), None);
        // Small enough for one shard: sharding does not pay.
        let l = layout(&[("a", 100), ("b", 100)], &[]);
        assert_eq!(plan_within(&l, 5_000), None);
    }

    #[test]
    fn uneven_schemas_still_make_two_shards_within_two_percent() {
        // gen.py's 10,000 tables after its changes: tenants of 240 to 262 tables.
        let names: Vec<String> = (1..=40).map(|i| format!("tenant_{i:03}")).collect();
        let mut locks: Vec<(&str, u64)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), 240 + (i as u64 * 7) % 23))
            .collect();
        locks.push(("shared", 12));
        let needs: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "shared")).collect();
        let l = layout(&locks, &needs);
        let total = l.total();
        let cap = (total + l.shared_overhead() + total / 50).div_ceil(2);
        let shards = plan_within(&l, cap).unwrap();
        assert_eq!(shards.len(), 2, "{shards:?}");
        // Without the room, first fit into exact halves needs a third.
        assert!(plan(&l, (total + 12).div_ceil(2), None).unwrap().len() > 2);
    }

    #[test]
    fn forced_counts_balance_and_never_exceed_the_schemas() {
        let l = layout(&[("a", 10), ("b", 5), ("c", 4), ("d", 1)], &[("d", "a")]);
        let shards = plan(&l, 1, Some(2)).unwrap();
        assert_eq!(shards.len(), 2);
        assert_eq!(names(&shards[0]), ["a", "d"]);
        assert_eq!(names(&shards[1]), ["b", "c"]);
        // `a` goes where `d` took it already: three shards, not four.
        assert_eq!(plan(&l, 1, Some(9)).unwrap().len(), 3);
    }

    #[test]
    fn patterns_quote_names_for_pg_dump() {
        let l = layout(&[("we\"ird.s|x", 1), ("b", 1)], &[]);
        let sh = Shard {
            schemas: ["b".to_string()].into(),
            locks: 1,
        };
        assert_eq!(exclude_patterns(&l, &sh), ["(\"we\"\"ird.s|x\").*"]);
    }

    #[test]
    fn the_scheduler_keeps_held_locks_within_the_budget() {
        // Two sides of 10,000 tables in two shards each; one whole dump's locks at once.
        let mut waiting = vec![5_000u64, 5_000, 5_000, 5_000, 10];
        let (budget, parallel) = (10_000, 4);
        let mut running: Vec<u64> = Vec::new();
        let mut most = 0;
        while !waiting.is_empty() {
            while let Some(i) = pick(
                &waiting,
                running.iter().sum(),
                running.len(),
                budget,
                parallel,
            ) {
                running.push(waiting.remove(i));
                assert!(running.iter().sum::<u64>() <= budget, "{running:?}");
                most = most.max(running.len());
            }
            running.remove(0);
        }
        // Two halves at once, one of each side.
        assert_eq!(most, 2);
        // A shard larger than the budget still runs, alone.
        assert_eq!(pick(&[20_000], 0, 0, budget, parallel), Some(0));
        assert_eq!(pick(&[20_000], 1, 1, budget, parallel), None);
        assert_eq!(pick(&[1], 0, 4, budget, parallel), None);
    }
}
