//! Sharded dumps (src/shards.rs) against whole ones: the catalog merged from the shards of one
//! snapshot must equal the catalog of one whole pg_dump, block by block, dependency by
//! dependency (by key: dump ids differ), in the same order.
//!
//! Inputs: every fixture's new.sql, a few corpus states and a generated bench schema. To keep
//! it to seconds, they share databases: each input is loaded into a pooled database and its
//! `public` schema renamed after it, so one database holds a hundred schemas; an input that does
//! not load there (a global object another input made already) gets a database of its own.

mod common;

use common::*;
use pgalign::catalog::{Catalog, Filter, Key};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The SQL files: fixtures' new.sql, some corpus states, with the roles each needs.
fn inputs() -> Vec<(String, PathBuf, Vec<String>)> {
    let mut v = Vec::new();
    for case in fixture_cases() {
        let label = case
            .strip_prefix(repo().join("fixtures"))
            .unwrap()
            .display()
            .to_string();
        v.push((label, case.join("new.sql"), fixture_roles(&case)));
    }
    let shared = repo().join("../shared");
    for state in [
        "corpus-realworld/crates-io/empty_to_full/b.sql",
        "corpus-realworld/supabase-storage/jump_0014_0036/b.sql",
        "corpus-realworld/supabase-storage/empty_to_full/b.sql",
    ] {
        let p = shared.join(state);
        if p.is_file() {
            let roles = fixture_roles(p.parent().unwrap());
            v.push((state.to_string(), p, roles));
        }
    }
    v
}

/// A catalog as comparable values: each block's key, text, owner, settings and dependencies (as
/// keys), in the catalog's order.
type Flat = Vec<(Key, Vec<Box<str>>, String, Vec<String>, BTreeSet<Key>)>;

fn flat(c: &Catalog) -> Flat {
    c.blocks
        .iter()
        .map(|b| {
            let deps = b
                .deps
                .iter()
                .filter_map(|&t| c.at_toc(t))
                .map(|i| c.blocks[i].key.clone())
                .collect();
            (
                b.key.clone(),
                b.stmts.to_vec(),
                b.owner.to_string(),
                b.settings().to_vec(),
                deps,
            )
        })
        .collect()
}

/// What differs between the whole dump's catalog and the merged one, empty when nothing does.
fn differences(whole: &Catalog, merged: &Catalog) -> Vec<String> {
    let (w, m) = (flat(whole), flat(merged));
    let mut out = Vec::new();
    let by_key = |f: &Flat| -> BTreeMap<Key, usize> {
        f.iter()
            .enumerate()
            .map(|(i, b)| (b.0.clone(), i))
            .collect()
    };
    let (wk, mk) = (by_key(&w), by_key(&m));
    for (k, &i) in &wk {
        match mk.get(k) {
            None => out.push(format!("missing from the shards: {}", k.display())),
            Some(&j) if w[i] != m[j] => out.push(format!(
                "differs: {}\n  whole:  {:?}\n  shards: {:?}",
                k.display(),
                w[i],
                m[j]
            )),
            _ => {}
        }
    }
    for k in mk.keys().filter(|k| !wk.contains_key(*k)) {
        out.push(format!("only in the shards: {}", k.display()));
    }
    if out.is_empty() {
        if let Some(i) = (0..w.len()).find(|&i| w[i].0 != m[i].0) {
            out.push(format!(
                "order differs at block {i}: whole has {}, shards have {}",
                w[i].0.display(),
                m[i].0.display()
            ));
        }
    }
    out
}

/// One database: its whole dump's catalog against the merged catalogs of `counts` shards.
fn compare(
    rt: &tokio::runtime::Runtime,
    db: &TempDb,
    counts: &[usize],
    label: &str,
) -> Vec<String> {
    let conn = pgalign::endpoint::parse_url(&db.url()).unwrap();
    let tools = pgalign::dump::find_tools(None).unwrap();
    let tool = &tools[0];
    let filter = Filter::default();
    let whole = rt
        .block_on(pgalign::dump::dump_database(&conn, tool, &filter))
        .unwrap_or_else(|e| panic!("{label}: whole dump: {e}"));
    let mut out = Vec::new();
    for &k in counts {
        let sharded = rt
            .block_on(pgalign::shards::dump_sides(
                &[&conn],
                tool,
                &filter,
                Some(k),
            ))
            .unwrap_or_else(|e| panic!("{label}: {k} shards: {e}"))
            .expect("a forced count always shards");
        for d in differences(&whole, &sharded.catalogs[0]) {
            out.push(format!("{label} ({} shards): {d}", sharded.shards[0]));
        }
    }
    out
}

/// Schemas holding relations in the database.
fn schemas_with_relations(db: &TempDb) -> usize {
    db.exec("SELECT count(DISTINCT relnamespace) FROM pg_class WHERE relkind IN ('r','p','v','m','S','f') AND relnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema') AND relnamespace::regnamespace::text !~ '^pg_toast'")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// scripts/bench/gen.py's multi-tenant schema, small: `shared` and two tenants whose foreign
/// keys point into it.
fn bench_db() -> TempDb {
    let roles: Vec<String> = [
        "pgalign_bench_readonly",
        "pgalign_bench_readwrite",
        "pgalign_bench_app",
    ]
    .map(String::from)
    .to_vec();
    ensure_roles(&roles);
    let out = std::process::Command::new("python3")
        .arg(repo().join("scripts/bench/gen.py"))
        .args(["--tables", "120", "--variant", "b"])
        .output()
        .expect("run scripts/bench/gen.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.sql");
    std::fs::write(&path, &out.stdout).unwrap();
    let db = TempDb::new("shards_bench");
    // gen.py commits in batches of its own: not one transaction.
    let load = common::psql_on(&host(), &port(), &user(), &db.name)
        .arg("-f")
        .arg(&path)
        .output()
        .expect("run psql");
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    db
}

#[test]
fn sharded_catalogs_equal_whole_ones() {
    let t0 = std::time::Instant::now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pool = TempDb::new("shards_pool");
    let inputs = inputs();
    // One psql session loads every input, each in a transaction of its own that renames its
    // `public` after it; one that fails rolls back alone (no ON_ERROR_STOP).
    let roles: BTreeSet<String> = inputs.iter().flat_map(|i| i.2.clone()).collect();
    ensure_roles(&roles.into_iter().collect::<Vec<_>>());
    let mut script = String::new();
    for (n, (_, path, _)) in inputs.iter().enumerate() {
        script.push_str(&format!(
            "RESET ALL;\nRESET SESSION AUTHORIZATION;\nBEGIN;\n\\i '{}'\nALTER SCHEMA public RENAME TO input_{n};\nCREATE SCHEMA public;\nCOMMIT;\n",
            path.display().to_string().replace('\'', "''")
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.sql");
    std::fs::write(&all, script).unwrap();
    let out = std::process::Command::new(bin("psql"))
        .args(["-X", "-q", "-h", &host(), "-p", &port(), "-U", &user()])
        .args(["-d", &pool.name, "-f"])
        .arg(&all)
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let loaded = pool
        .exec("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'input\\_%'")
        .unwrap();
    let loaded: BTreeSet<&str> = loaded.lines().collect();
    let pooled = loaded.len();
    // What did not load beside the others (a global object made twice) gets a database of its
    // own when it has schemas to shard.
    let mut alone: Vec<(String, TempDb)> = Vec::new();
    for (n, (label, path, _)) in inputs.into_iter().enumerate() {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if loaded.contains(format!("input_{n}").as_str()) || !text.contains("CREATE SCHEMA") {
            continue;
        }
        let db = TempDb::new("shards_alone");
        if db.load_file(&path).is_ok() && schemas_with_relations(&db) > 1 {
            alone.push((label, db));
        }
    }
    assert!(
        pooled > 150,
        "only {pooled} inputs loaded into the pooled database"
    );
    eprintln!(
        "{pooled} inputs pooled, {} alone, loaded in {:.1} s",
        alone.len(),
        t0.elapsed().as_secs_f64()
    );
    alone.push(("bench schema".into(), bench_db()));
    let mut diffs = compare(&rt, &pool, &[2, 5], "pooled inputs");
    for (label, db) in &alone {
        let k = schemas_with_relations(db);
        diffs.extend(compare(&rt, db, &[k.min(3)], label));
    }
    eprintln!("compared in {:.1} s", t0.elapsed().as_secs_f64());
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

/// A throw-away server of the local major whose lock table holds one whole dump of the test's
/// databases but not two (max_locks_per_transaction 32), run as an unprivileged user on a spare
/// port as scripts/pg-matrix.sh runs its servers; stopped and removed when dropped.
struct SmallServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl SmallServer {
    fn start() -> Option<SmallServer> {
        let bin = PathBuf::from("/usr/lib/postgresql/15/bin");
        if !bin.join("initdb").is_file() {
            eprintln!("SKIPPED: no /usr/lib/postgresql/15/bin/initdb");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = Command::new("id").arg("-u").output().ok()?.stdout == b"0\n";
        if root {
            let ok = Command::new("chown")
                .args(["postgres"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("SKIPPED: initdb refuses root and there is no postgres user");
                return None;
            }
        }
        let as_pg = |tool: &str| {
            let mut c = if root {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
                c
            } else {
                Command::new(bin.join(tool))
            };
            c.stdout(std::process::Stdio::null());
            c
        };
        let data = dir.path().join("data");
        let st = as_pg("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "initdb failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_locks_per_transaction=32 -c max_connections=20 -c max_worker_processes=2 -c max_wal_senders=0 -c autovacuum_max_workers=1 -c fsync=off -c shared_buffers=16MB",
            dir.path().display()
        );
        let st = as_pg("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"])
            .status()
            .unwrap();
        assert!(st.success(), "pg_ctl start failed");
        Some(SmallServer { dir, bin, port })
    }

    /// psql on `db`, reading its statements from stdin (piped).
    fn psql_cmd(&self, db: &str) -> Command {
        let mut c = common::psql_on("127.0.0.1", &self.port.to_string(), "postgres", db);
        c.args(["-f", "-"]).stdin(std::process::Stdio::piped());
        c
    }

    fn psql(&self, db: &str, sql: &str) {
        let mut child = self.psql_cmd(db).spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "psql on {db}");
    }

    fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl SmallServer {
    /// pg_ctl on this server's data directory (as `postgres` when the tests run as root).
    fn pg_ctl(&self, args: &[&str]) -> bool {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n");
        let mut c = if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        c.arg("-D")
            .arg(self.dir.path().join("data"))
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for SmallServer {
    fn drop(&mut self) {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }
}

/// Where two whole pg_dumps do not fit the lock table, the shard planner's budget does: both
/// sides dump in two shards each, and the plan is the one whole dumps give.
#[test]
fn shards_fit_a_lock_table_too_small_for_two_whole_dumps() {
    let Some(server) = SmallServer::start() else {
        return;
    };
    // Four schemas of 150 tables, each with a foreign key into `shared`, which every shard
    // then dumps too.
    let mut tables = String::from(
        "CREATE SCHEMA shared;\nCREATE TABLE shared.lookup (id integer PRIMARY KEY);\n",
    );
    for s in 1..=4 {
        tables.push_str(&format!("CREATE SCHEMA s{s};\n"));
        for t in 1..=150 {
            tables.push_str(&format!(
                "CREATE TABLE s{s}.t{t} (id integer PRIMARY KEY REFERENCES shared.lookup (id));\n"
            ));
        }
    }
    for db in ["a", "b"] {
        server.psql("postgres", &format!("CREATE DATABASE {db}"));
        server.psql(db, &tables);
    }
    server.psql("b", "CREATE TABLE s3.added (id integer);");
    // Two whole dumps at once do not fit: while one transaction holds what a whole dump of `a`
    // locks (every table, ACCESS SHARE), a whole dump of `b` runs out of lock slots. (Two
    // pg_dumps merely started together need not overlap on a loaded machine.)
    let mut holder = server
        .psql_cmd("a")
        .arg("-At")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_holder = holder.stdin.take().unwrap();
    use std::io::{BufRead, Write};
    to_holder
        .write_all(
            b"BEGIN;\nDO $$DECLARE r record; BEGIN FOR r IN SELECT c.oid::regclass AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' AND n.nspname IN ('shared', 's1', 's2', 's3', 's4') LOOP EXECUTE format('LOCK TABLE %s IN ACCESS SHARE MODE', r.t); END LOOP; END$$;\nSELECT 'locked';\n",
        )
        .unwrap();
    to_holder.flush().unwrap();
    let mut from_holder = std::io::BufReader::new(holder.stdout.take().unwrap());
    let mut said = String::new();
    from_holder.read_line(&mut said).unwrap();
    assert_eq!(said.trim(), "locked", "the tables of a were not locked");
    let dump_b = Command::new(common::bin("pg_dump"))
        .args(["-s", "-h", "127.0.0.1", "-U", "postgres", "-p"])
        .arg(server.port.to_string())
        .arg("b")
        .stdout(std::process::Stdio::null())
        .output()
        .unwrap();
    // Released before pgalign runs: the server has answered the ROLLBACK once `released` is read
    // (a psql merely ending leaves its backend to let go of the locks a moment later).
    to_holder
        .write_all(b"ROLLBACK;\nSELECT 'released';\n")
        .unwrap();
    drop(to_holder);
    said.clear();
    from_holder.read_line(&mut said).unwrap();
    assert_eq!(said.trim(), "released");
    holder.wait().unwrap();
    // The overflow used up the shared memory the lock table grows into: a fresh server for
    // pgalign, with the same settings.
    let log = server.dir.path().join("log");
    let log = log.to_str().unwrap();
    assert!(
        server.pg_ctl(&["-l", log, "-w", "-t", "60", "restart"]),
        "pg_ctl restart failed"
    );
    assert!(
        String::from_utf8_lossy(&dump_b.stderr).contains("out of shared memory"),
        "two whole dumps fit: the server's lock table is larger than this test expects: {}",
        String::from_utf8_lossy(&dump_b.stderr)
    );
    let run = |env: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pgalign"));
        c.args([
            "plan",
            "--source",
            &server.url("b"),
            "--target",
            &server.url("a"),
            "--timings",
        ]);
        if let Some(v) = env {
            c.env("PGALIGN_DUMP_SHARDS", v);
        }
        c.output().unwrap()
    };
    let sharded = run(Some("auto"));
    let stderr = String::from_utf8_lossy(&sharded.stderr);
    assert!(sharded.status.success(), "{stderr}");
    assert!(
        stderr.contains("in shards of one snapshot each (2 source, 2 target)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("timing: shard source 1/2: pg_dump locking"),
        "{stderr}"
    );
    let plan = String::from_utf8_lossy(&sharded.stdout);
    assert!(plan.contains("CREATE TABLE s3.added"), "{plan}");
    // Without the knob: pgalign sees that the lock table holds fewer than both sides' tables
    // and stops the whole dumps for shards; the same plan.
    let natural = run(None);
    let stderr = String::from_utf8_lossy(&natural.stderr);
    assert!(natural.status.success(), "{stderr}");
    assert!(
        stderr.contains("(2 source, 2 target)")
            && stderr.contains("holds fewer than both sides' tables"),
        "{stderr}"
    );
    assert_eq!(String::from_utf8_lossy(&natural.stdout), plan);
}
