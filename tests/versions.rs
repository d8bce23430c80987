//! PostgreSQL majors against each other, on the servers that scripts/pg-matrix.sh starts:
//! - a plan made from a SOURCE on a new major, applied to a TARGET on an old one, verified by a
//!   second diff that must be empty (every fixture case that loads on both majors);
//! - the same schema loaded on two majors: `pgalign diff` must find nothing;
//! - only a pg_dump older than the server: one clear error line naming the version to install.
//!
//! Runs only when `PGALIGN_MATRIX_PORTS` names the servers (`13=54313,17=54317`, all on
//! PGALIGN_TEST_HOST as PGALIGN_TEST_USER) and `PGALIGN_MATRIX_BINDIR` holds client tools (psql,
//! pg_dump, pg_restore) at least as new as the newest of them; otherwise each test prints why it
//! did nothing and passes. `PGALIGN_MATRIX_CROSS=17:13` picks the SOURCE:TARGET majors (default:
//! newest:oldest); `PGALIGN_MATRIX_OLD_PG_DUMP` an old pg_dump (default: the newest
//! /usr/lib/postgresql/*/bin/pg_dump older than the newest server).

mod common;

use common::{first_error, fixture_cases, normalize_dump};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

#[derive(Debug, Clone)]
struct Server {
    major: u32,
    port: String,
}

#[derive(Debug, Clone)]
struct Matrix {
    servers: Vec<Server>,
    bindir: PathBuf,
}

fn matrix(test: &str) -> Option<Matrix> {
    let ports = std::env::var("PGALIGN_MATRIX_PORTS").unwrap_or_default();
    let bindir = std::env::var("PGALIGN_MATRIX_BINDIR").unwrap_or_default();
    if ports.is_empty() || bindir.is_empty() {
        println!(
            "{test}: skipped: set PGALIGN_MATRIX_PORTS and PGALIGN_MATRIX_BINDIR (scripts/pg-matrix.sh does)"
        );
        return None;
    }
    let mut servers: Vec<Server> = ports
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let (m, p) = s
                .split_once('=')
                .unwrap_or_else(|| panic!("PGALIGN_MATRIX_PORTS: {s:?} is not MAJOR=PORT"));
            Server {
                major: m.trim().parse().expect("PGALIGN_MATRIX_PORTS: major"),
                port: p.trim().to_string(),
            }
        })
        .collect();
    servers.sort_by_key(|s| s.major);
    Some(Matrix {
        servers,
        bindir: PathBuf::from(bindir),
    })
}

impl Matrix {
    fn tool(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }
    fn server(&self, major: u32) -> &Server {
        self.servers
            .iter()
            .find(|s| s.major == major)
            .unwrap_or_else(|| panic!("no PostgreSQL {major} in PGALIGN_MATRIX_PORTS"))
    }
    /// SOURCE and TARGET majors for the cross-major test, or None with fewer than two servers.
    fn cross(&self) -> Option<(&Server, &Server)> {
        if let Ok(v) = std::env::var("PGALIGN_MATRIX_CROSS") {
            if let Some((s, t)) = v.split_once(':') {
                return Some((
                    self.server(s.trim().parse().expect("PGALIGN_MATRIX_CROSS")),
                    self.server(t.trim().parse().expect("PGALIGN_MATRIX_CROSS")),
                ));
            }
        }
        if self.servers.len() < 2 {
            return None;
        }
        Some((self.servers.last().unwrap(), self.servers.first().unwrap()))
    }
    fn psql(&self, server: &Server, db: &str) -> Command {
        let mut c = Command::new(self.tool("psql"));
        c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(common::host())
            .args(["-p", &server.port, "-U"])
            .arg(common::user())
            .args(["-d", db]);
        c
    }
    fn admin(&self, server: &Server, sql: &str) {
        let out = self
            .psql(server, "postgres")
            .args(["-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "PostgreSQL {}: {sql}: {}",
            server.major,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    /// pgalign with the matrix's pg_dump (unless the arguments name one).
    fn pgalign(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_pgalign"))
            .args(args)
            .env("NO_COLOR", "1")
            .env("PG_DUMP", self.tool("pg_dump"))
            .output()
            .expect("run pgalign")
    }
}

/// A database on one of the matrix servers, dropped when it goes out of scope.
struct Db<'a> {
    m: &'a Matrix,
    server: &'a Server,
    name: String,
}

impl<'a> Db<'a> {
    fn new(m: &'a Matrix, server: &'a Server, label: &str) -> Db<'a> {
        let name = common::unique_db_name("pgalign_v", label);
        m.admin(server, &format!("CREATE DATABASE {name}"));
        Db { m, server, name }
    }
    fn url(&self) -> String {
        format!(
            "postgres://{}@{}:{}/{}",
            common::user(),
            common::host(),
            self.server.port,
            self.name
        )
    }
    fn load_file(&self, path: &Path) -> Result<(), String> {
        let out = self
            .m
            .psql(self.server, &self.name)
            .args(["-1", "-f"])
            .arg(path)
            .output()
            .expect("run psql");
        if out.status.success() {
            Ok(())
        } else {
            Err(first_error(&String::from_utf8_lossy(&out.stderr)))
        }
    }
    fn exec(&self, sql: &str) -> Result<String, String> {
        let out = self
            .m
            .psql(self.server, &self.name)
            .args(["-At", "-c", sql])
            .output()
            .expect("run psql");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(first_error(&String::from_utf8_lossy(&out.stderr)))
        }
    }
    fn dump(&self) -> String {
        let out = Command::new(self.m.tool("pg_dump"))
            .args(["--schema-only", "-h"])
            .arg(common::host())
            .args(["-p", &self.server.port, "-U"])
            .arg(common::user())
            .arg(&self.name)
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Db<'_> {
    fn drop(&mut self) {
        self.m.admin(
            self.server,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn case_name(case: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    case.strip_prefix(&root).unwrap().display().to_string()
}

fn ensure_roles(m: &Matrix, server: &Server, case: &Path) {
    let roles = std::fs::read_to_string(case.join("roles.txt")).unwrap_or_default();
    for r in roles.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let lit = r.replace('\'', "''");
        let ident = format!("\"{}\"", r.replace('"', "\"\""));
        m.admin(server, &format!(
            "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{lit}') THEN CREATE ROLE {ident}; END IF; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END$$"
        ));
    }
}

/// What became of one case.
enum Outcome {
    Passed,
    /// A file of the case does not load on one of the majors: not a test of pgalign.
    Skipped(String),
    /// Failed for a reason already known (see `known_gap`).
    Known(String),
    Failed(String),
}

/// PostgreSQL 15 changed the public schema of a new database (owner pg_database_owner, no CREATE
/// for PUBLIC). Fresh databases on 14 and older and on 15 and newer differ there before any case
/// runs: make the newer one look like a database upgraded from the older major (pg_upgrade keeps
/// the old public schema), so the cases test what they are about. What pgalign does with the
/// fresh difference itself: `fresh_public_schemas_across_15` (ignored: it plans DROP SCHEMA public).
fn align_public_schema(newer: &Db, older: &Db) {
    if !(older.server.major <= 14 && newer.server.major >= 15) {
        return;
    }
    let owner = older
        .exec("SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'public'")
        .expect("owner of public");
    newer
        .exec(&format!(
            "ALTER SCHEMA public OWNER TO {owner}; GRANT ALL ON SCHEMA public TO PUBLIC"
        ))
        .expect("align the public schema");
}

/// Why a case cannot pass between these two majors yet, when pgalign has a known gap there.
/// (None today: views deparsed differently by 15 and 16 are compared as the same since
/// src/catalog/view.rs; add an entry here, with its reason, when a new gap is found.)
fn known_gap(_case: &Path, _a: u32, _b: u32) -> Option<&'static str> {
    None
}

/// Runs `f` over every fixture case on a few threads; prints a summary; panics listing failures.
fn over_cases(what: &str, f: impl Fn(&Path) -> Outcome + Sync) {
    let cases = fixture_cases();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(String, Outcome)>> = Mutex::new(Vec::new());
    let threads: usize = std::env::var("PGALIGN_TEST_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(case)))
                    .unwrap_or_else(|p| {
                        let msg = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        Outcome::Failed(format!("panicked: {msg}"))
                    });
                results.lock().unwrap().push((case_name(case), r));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by(|a, b| a.0.cmp(&b.0));
    let (mut passed, mut skipped, mut known, mut failures) =
        (0, Vec::new(), Vec::new(), Vec::new());
    for (name, r) in results {
        match r {
            Outcome::Passed => passed += 1,
            Outcome::Skipped(why) => skipped.push(format!("{name}: {why}")),
            Outcome::Known(why) => known.push(format!("{name}: {why}")),
            Outcome::Failed(why) => failures.push(format!("--- {name}\n{why}")),
        }
    }
    println!(
        "{what}: {passed} cases passed, {} failed, {} known gaps, {} skipped (a file does not load on one of the majors)",
        failures.len(),
        known.len(),
        skipped.len()
    );
    for k in &known {
        println!("  known gap {k}");
    }
    for s in &skipped {
        println!("  skipped {s}");
    }
    assert!(
        failures.is_empty(),
        "{what}: {} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(passed > 0, "{what}: no case ran");
}

/// Fixture cases planned from a SOURCE on a newer major, applied to a TARGET on an older one:
/// the second diff must be empty. Cases whose new.sql does not load on the TARGET's major (a
/// feature that major lacks) or whose files do not load at all are skipped.
#[test]
fn plan_from_newer_major_applies_to_older_major() {
    let Some(m) = matrix("plan_from_newer_major_applies_to_older_major") else {
        return;
    };
    let Some((src, tgt)) = m.cross() else {
        println!("cross-major: skipped: PGALIGN_MATRIX_PORTS names only one server");
        return;
    };
    let what = format!(
        "cross-major plan, source PostgreSQL {} -> target PostgreSQL {}",
        src.major, tgt.major
    );
    over_cases(&what, |case| {
        ensure_roles(&m, src, case);
        ensure_roles(&m, tgt, case);
        let label = case.file_name().unwrap().to_string_lossy().to_string();
        let target = Db::new(&m, tgt, &format!("{label}_t"));
        let source = Db::new(&m, src, &format!("{label}_s"));
        let probe = Db::new(&m, tgt, &format!("{label}_p"));
        align_public_schema(&source, &target);
        let gap = known_gap(case, src.major, tgt.major);
        let failed = |why: String| match gap {
            Some(g) => Outcome::Known(g.to_string()),
            None => Outcome::Failed(why),
        };
        if let Err(e) = target.load_file(&case.join("old.sql")) {
            return Outcome::Skipped(format!("old.sql on {}: {e}", tgt.major));
        }
        if let Err(e) = source.load_file(&case.join("new.sql")) {
            return Outcome::Skipped(format!("new.sql on {}: {e}", src.major));
        }
        if let Err(e) = probe.load_file(&case.join("new.sql")) {
            return Outcome::Skipped(format!("new.sql on {}: {e}", tgt.major));
        }
        drop(probe);
        let (s, t) = (source.url(), target.url());
        let out = m.pgalign(&["plan", "--source", &s, "--target", &t]);
        if !out.status.success() {
            return failed(format!(
                "plan failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let plan = String::from_utf8_lossy(&out.stdout).to_string();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &plan).unwrap();
        if let Err(e) = target.load_file(file.path()) {
            return failed(format!(
                "applying the plan on {} failed: {e}\n{plan}",
                tgt.major
            ));
        }
        let again = m.pgalign(&["diff", "--source", &s, "--target", &t]);
        if again.status.code() != Some(0) {
            return failed(format!(
                "second diff is not empty (exit {:?}):\n{}{}\n--- plan ---\n{plan}",
                again.status.code(),
                String::from_utf8_lossy(&again.stdout),
                String::from_utf8_lossy(&again.stderr)
            ));
        }
        Outcome::Passed
    });
}

/// A SOURCE using syntax TARGET's major lacks: the plan lists it as unsupported (naming the
/// feature and both majors) instead of emitting it, and apply refuses to run, changing nothing.
#[test]
fn newer_syntax_on_older_target_is_unsupported() {
    let Some(m) = matrix("newer_syntax_on_older_target_is_unsupported") else {
        return;
    };
    let Some((src, tgt)) = m.cross() else {
        println!("newer syntax: skipped: PGALIGN_MATRIX_PORTS names only one server");
        return;
    };
    if src.major < 15 || tgt.major >= 15 {
        println!(
            "newer syntax: skipped: needs a SOURCE on 15+ and a TARGET before 15 (have {} -> {})",
            src.major, tgt.major
        );
        return;
    }
    let source = Db::new(&m, src, "newer_syntax_s");
    let target = Db::new(&m, tgt, "newer_syntax_t");
    align_public_schema(&source, &target);
    source
        .exec("CREATE TABLE public.tag (id integer PRIMARY KEY, name text, CONSTRAINT tag_name_key UNIQUE NULLS NOT DISTINCT (name))")
        .expect("create the source table");
    let (s, t) = (source.url(), target.url());
    let out = m.pgalign(&["plan", "--format", "json", "--source", &s, "--target", &t]);
    assert!(
        out.status.success(),
        "plan: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    let unsupported = plan["unsupported"].as_array().expect("unsupported list");
    let entry = unsupported
        .iter()
        .find(|u| u["object"].as_str().unwrap_or("").contains("tag_name_key"))
        .unwrap_or_else(|| panic!("no unsupported entry for the constraint: {plan:#}"));
    let reason = entry["reason"].as_str().unwrap();
    assert!(
        reason.contains("NULLS NOT DISTINCT")
            && reason.contains("PostgreSQL 15")
            && reason.contains(&format!("TARGET runs {}", tgt.major)),
        "{reason}"
    );
    let sql: String = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["sql"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        !sql.contains("NULLS NOT DISTINCT"),
        "emitted anyway:\n{sql}"
    );
    let before = target.dump();
    let out = m.pgalign(&["apply", "--source", &s, "--target", &t]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "apply must refuse: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unsupported"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        normalize_dump(&before),
        normalize_dump(&target.dump()),
        "TARGET changed"
    );
}

/// The same schema (each case's new.sql) on the oldest and the newest major: pg_dump prints it
/// differently on each (and pg_dump's own output differs by major), but pgalign must see no
/// difference.
#[test]
fn same_schema_on_two_majors_diffs_empty() {
    let Some(m) = matrix("same_schema_on_two_majors_diffs_empty") else {
        return;
    };
    let Some((new, old)) = m.cross() else {
        println!("same schema on two majors: skipped: PGALIGN_MATRIX_PORTS names only one server");
        return;
    };
    let what = format!(
        "same schema on PostgreSQL {} and {}, diff",
        new.major, old.major
    );
    over_cases(&what, |case| {
        ensure_roles(&m, new, case);
        ensure_roles(&m, old, case);
        let label = case.file_name().unwrap().to_string_lossy().to_string();
        let a = Db::new(&m, new, &format!("{label}_a"));
        let b = Db::new(&m, old, &format!("{label}_b"));
        align_public_schema(&a, &b);
        if let Err(e) = a.load_file(&case.join("new.sql")) {
            return Outcome::Skipped(format!("new.sql on {}: {e}", new.major));
        }
        if let Err(e) = b.load_file(&case.join("new.sql")) {
            return Outcome::Skipped(format!("new.sql on {}: {e}", old.major));
        }
        let (s, t) = (a.url(), b.url());
        let out = m.pgalign(&["diff", "--source", &s, "--target", &t]);
        if out.status.code() == Some(0) {
            return Outcome::Passed;
        }
        if let Some(g) = known_gap(case, new.major, old.major) {
            return Outcome::Known(g.to_string());
        }
        // Tell a pgalign misreading from a real difference in what the server stores.
        let (na, nb) = (normalize_dump(&a.dump()), normalize_dump(&b.dump()));
        let only_new: Vec<_> = na.iter().filter(|x| !nb.contains(x)).collect();
        let only_old: Vec<_> = nb.iter().filter(|x| !na.contains(x)).collect();
        Outcome::Failed(format!(
            "pgalign diff exit {:?}:\n{}{}\npg_dump text only on {}: {only_new:#?}\npg_dump text only on {}: {only_old:#?}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            new.major,
            old.major
        ))
    });
}

/// `pg_dump (PostgreSQL) 15.20 (Debian ...)` -> 15.
fn tool_major(pg_dump: &Path) -> Option<u32> {
    let out = Command::new(pg_dump).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let v = text.split(')').nth(1)?.split_whitespace().next()?;
    v.split('.').next()?.parse().ok()
}

/// An installed pg_dump older than `major`, with pg_restore beside it.
fn old_pg_dump(major: u32) -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PGALIGN_MATRIX_OLD_PG_DUMP") {
        return Some(PathBuf::from(p));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin/pg_dump"))
        .filter(|p| p.is_file() && p.with_file_name("pg_restore").is_file())
        .filter_map(|p| tool_major(&p).map(|v| (v, p)))
        .filter(|(v, _)| *v < major)
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

fn assert_names_version(out: &Output, major: u32) {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    println!("  stderr: {}", stderr.trim_end());
    assert_eq!(out.status.code(), Some(1), "exit code; stderr: {stderr}");
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line on stderr: {stderr}"
    );
    assert!(stderr.starts_with("pgalign: error:"), "{stderr}");
    assert!(
        stderr.contains(&format!("install pg_dump {major}")),
        "names the version to install: {stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

/// Only a pg_dump older than the server: exit 1 and one line naming the pg_dump to install,
/// both when it is given with --pg-dump and when it is the only one pgalign finds.
#[test]
fn old_pg_dump_for_new_server_names_the_version_to_install() {
    let Some(m) = matrix("old_pg_dump_for_new_server_names_the_version_to_install") else {
        return;
    };
    let newest = m.servers.last().expect("a server").clone();
    let Some(old) = old_pg_dump(newest.major) else {
        println!(
            "old pg_dump: skipped: no pg_dump older than {} in /usr/lib/postgresql (set PGALIGN_MATRIX_OLD_PG_DUMP)",
            newest.major
        );
        return;
    };
    let old_major = tool_major(&old).expect("pg_dump --version");
    assert!(old_major < newest.major, "{} is not older", old.display());
    let a = Db::new(&m, &newest, "mismatch_a");
    let b = Db::new(&m, &newest, "mismatch_b");
    let (s, t) = (a.url(), b.url());
    let old_s = old.display().to_string();
    println!(
        "pgalign diff --pg-dump {old_s} (pg_dump {old_major}) on PostgreSQL {}:",
        newest.major
    );
    let out = m.pgalign(&["diff", "--pg-dump", &old_s, "--source", &s, "--target", &t]);
    assert_names_version(&out, newest.major);

    // Found, not given: PG_DUMP names the old one and nothing newer is on PATH or in
    // /usr/lib/postgresql (checked), so pgalign's own search ends at the old one.
    let newer_installed = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| tool_major(&e.path().join("bin/pg_dump")))
                .any(|v| v >= newest.major)
        })
        .unwrap_or(false);
    if newer_installed {
        println!(
            "  (search case skipped: /usr/lib/postgresql holds a pg_dump {} or newer)",
            newest.major
        );
        return;
    }
    let dir = old.parent().unwrap().display().to_string();
    println!("pgalign diff with PG_DUMP={old_s}, PATH={dir}:/usr/bin:/bin:");
    let out = Command::new(env!("CARGO_BIN_EXE_pgalign"))
        .args(["diff", "--source", &s, "--target", &t])
        .env("NO_COLOR", "1")
        .env("PG_DUMP", &old)
        .env("PATH", format!("{dir}:/usr/bin:/bin"))
        .output()
        .expect("run pgalign");
    assert_names_version(&out, newest.major);
}

/// Two fresh databases, one on 14 or older and one on 15 or newer: their public schemas differ
/// (owner postgres and CREATE for PUBLIC before 15; owner pg_database_owner after). pgalign reads
/// the older side's public schema entry (`-- *not* creating schema, since initdb creates it`) as
/// a schema missing from the newer side and plans `DROP SCHEMA public`; the same happens on one
/// major when only TARGET's public schema has a non-default owner. Ignored until that is fixed:
/// `cargo test --test versions -- --ignored` with the matrix servers up.
#[test]
#[ignore = "pgalign plans DROP SCHEMA public when only one side's public schema is non-default"]
fn fresh_public_schemas_across_15() {
    let Some(m) = matrix("fresh_public_schemas_across_15") else {
        return;
    };
    let (Some(old), Some(new)) = (
        m.servers.iter().find(|s| s.major <= 14),
        m.servers.iter().rev().find(|s| s.major >= 15),
    ) else {
        println!(
            "fresh public schemas: skipped: needs a server on 14 or older and one on 15 or newer"
        );
        return;
    };
    for (src, tgt) in [(new, old), (old, new)] {
        let source = Db::new(&m, src, "fresh_s");
        let target = Db::new(&m, tgt, "fresh_t");
        let (s, t) = (source.url(), target.url());
        let out = m.pgalign(&["plan", "--source", &s, "--target", &t]);
        let plan = String::from_utf8_lossy(&out.stdout);
        println!("plan {} -> {}:\n{plan}", src.major, tgt.major);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!plan.contains("DROP SCHEMA public"), "{plan}");
    }
}

/// Two pg_dumps at once exhaust a small lock table (each locks every table it dumps): pgalign
/// says so, names the setting to raise, dumps one side after the other, and still finds the
/// difference. Runs on the server scripts/pg-matrix.sh starts with max_locks_per_transaction=10
/// (`PGALIGN_MATRIX_SMALL_LOCKS_PORT`).
#[test]
fn out_of_lock_slots_falls_back_to_one_dump_at_a_time() {
    let test = "out_of_lock_slots_falls_back_to_one_dump_at_a_time";
    let Some(m) = matrix(test) else { return };
    let Ok(port) = std::env::var("PGALIGN_MATRIX_SMALL_LOCKS_PORT") else {
        println!("{test}: skipped: PGALIGN_MATRIX_SMALL_LOCKS_PORT is not set (scripts/pg-matrix.sh sets it)");
        return;
    };
    let server = Server {
        major: m.servers[0].major,
        port,
    };
    let (a, b) = (
        Db::new(&m, &server, "locks_a"),
        Db::new(&m, &server, "locks_b"),
    );
    // One table a transaction: a single transaction creating them all would itself run out.
    let tables: String = (1..=300)
        .map(|i| format!("CREATE TABLE t{i} (id integer PRIMARY KEY, v text);\n"))
        .collect();
    // Removed when dropped, also when an assertion below fails.
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), tables).unwrap();
    for db in [&a, &b] {
        let out = m
            .psql(&server, &db.name)
            .arg("-f")
            .arg(file.path())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(file);
    b.exec("CREATE TABLE only_in_source (id integer)").unwrap();
    // The server really is too small for two dumps at once (else this test proves nothing).
    let out = m.pgalign(&["diff", "--source", &b.url(), "--target", &a.url()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("max_locks_per_transaction") && stderr.contains("one side after the other"),
        "expected the serial fallback warning; stderr: {stderr}"
    );
    // diff exits 2 when it finds differences.
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stdout.contains("+ table public.only_in_source"),
        "stdout: {stdout}"
    );
    assert!(!stdout.contains("table public.t1\n"), "stdout: {stdout}");
    println!("{test}: fell back to serial dumps and found the difference");
}
