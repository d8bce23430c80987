//! Shared test support: real databases on the local PostgreSQL server, real pg_dump, and the
//! real pgalign binary. Every database a test creates has a unique name and is dropped after.
#![allow(dead_code)]

mod normalize;
#[allow(unused_imports)] // not every test binary compares dumps
pub use normalize::normalize_dump;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn host() -> String {
    std::env::var("PGALIGN_TEST_HOST").unwrap_or_else(|_| "127.0.0.1".into())
}
pub fn port() -> String {
    std::env::var("PGALIGN_TEST_PORT").unwrap_or_else(|_| "5432".into())
}
pub fn user() -> String {
    std::env::var("PGALIGN_TEST_USER").unwrap_or_else(|_| "postgres".into())
}

/// Directory holding psql / pg_dump for the server under test (PATH when unset).
pub fn bin(tool: &str) -> String {
    match std::env::var("PGALIGN_TEST_BINDIR") {
        Ok(d) if !d.is_empty() => format!("{d}/{tool}"),
        _ => tool.to_string(),
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A database created for one test and dropped when it goes out of scope.
/// A database name no other test (or run) uses: `<prefix><pid>_<n>_<label, made safe>`.
pub fn unique_db_name(prefix: &str, label: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let clean: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(30)
        .collect();
    format!("{prefix}{}_{n}_{clean}", std::process::id())
}

pub struct TempDb {
    pub name: String,
}

impl TempDb {
    pub fn new(label: &str) -> TempDb {
        let name = unique_db_name("pgalign_t", label);
        admin(&format!("CREATE DATABASE {name}"));
        TempDb { name }
    }
    pub fn url(&self) -> String {
        format!("postgres://{}@{}:{}/{}", user(), host(), port(), self.name)
    }
    /// Runs a SQL file (one transaction, stop on error); Err carries psql's stderr.
    pub fn load_file(&self, path: &Path) -> Result<(), String> {
        let out = psql_cmd(&self.name)
            .args(["-1", "-f"])
            .arg(path)
            .output()
            .expect("run psql");
        check(out)
    }
    /// Runs a pgalign plan the way its header says: with `-1` unless it manages its own
    /// transactions.
    pub fn run_plan(&self, path: &Path) -> Result<(), String> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text
            .lines()
            .any(|l| l.starts_with("-- run with: psql -X -1 "))
            || !text.contains("-- run with:")
        {
            return self.load_file(path);
        }
        let out = psql_cmd(&self.name)
            .arg("-f")
            .arg(path)
            .output()
            .expect("run psql");
        check(out)
    }
    pub fn exec(&self, sql: &str) -> Result<String, String> {
        let out = psql_cmd(&self.name)
            .args(["-At", "-c", sql])
            .output()
            .expect("run psql");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }
    pub fn dump(&self, extra: &[&str]) -> String {
        let mut c = self.pg_dump(&["--schema-only"]);
        String::from_utf8(ran(c.args(extra).arg(&self.name)).stdout).unwrap()
    }
    /// pg_dump of this database into `file`, with `args` alone (no `--schema-only` unless given).
    pub fn dump_to(&self, file: &Path, args: &[&str]) {
        ran(self.pg_dump(args).arg("-f").arg(file).arg(&self.name));
    }
    /// pg_dump on this server with `args`; the database name goes last.
    fn pg_dump(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin("pg_dump"));
        c.args(["-h", &host(), "-p", &port(), "-U", &user()])
            .args(args);
        c
    }
}

/// The output of a pg_dump that must succeed.
fn ran(c: &mut Command) -> Output {
    let out = c.output().expect("run pg_dump");
    assert!(
        out.status.success(),
        "pg_dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Drop for TempDb {
    fn drop(&mut self) {
        admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

fn psql_cmd(db: &str) -> Command {
    psql_on(&host(), &port(), &user(), db)
}

/// psql on `db` of the server at `host`:`port` as `user`: no psqlrc, quiet, stopping at the
/// first error.
pub fn psql_on(host: &str, port: &str, user: &str, db: &str) -> Command {
    let mut c = Command::new(bin("psql"));
    c.args([
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        host,
        "-p",
        port,
        "-U",
        user,
        "-d",
        db,
    ]);
    c
}

fn check(out: Output) -> Result<(), String> {
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// A database's schema dump without the per-run `\restrict` keys: equal text means an
/// unchanged schema.
pub fn schema_of(db: &TempDb) -> String {
    db.dump(&[])
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn admin(sql: &str) {
    let out = psql_cmd("postgres")
        .args(["-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Creates cluster roles a case needs (roles are cluster-wide; creating one twice is fine).
pub fn ensure_roles(names: &[String]) {
    for r in names {
        let lit = r.replace('\'', "''");
        let ident = format!("\"{}\"", r.replace('"', "\"\""));
        let sql = format!(
            "DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{lit}') THEN CREATE ROLE {ident}; END IF; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END$$"
        );
        admin(&sql);
    }
}

/// Runs the pgalign binary.
pub fn pgalign(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgalign"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run pgalign")
}

/// Every fixture case: `fixtures/<kind>/<case>/` holding old.sql and new.sql, sorted.
pub fn fixture_cases() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut out = Vec::new();
    for kind in std::fs::read_dir(&root).expect("fixtures/") {
        let kind = kind.unwrap().path();
        if !kind.is_dir() {
            continue;
        }
        for case in std::fs::read_dir(&kind).unwrap() {
            let case = case.unwrap().path();
            if case.join("old.sql").is_file() && case.join("new.sql").is_file() {
                out.push(case);
            }
        }
    }
    out.sort();
    out
}

/// The roles a fixture case needs (its roles.txt, one a line).
pub fn fixture_roles(case: &Path) -> Vec<String> {
    std::fs::read_to_string(case.join("roles.txt"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The line of psql's stderr that says what went wrong (without the file path prefix).
pub fn first_error(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains("ERROR:"))
        .or_else(|| stderr.lines().next())
        .unwrap_or("");
    match line.find("ERROR:") {
        Some(i) => line[i..].to_string(),
        None => line.to_string(),
    }
}
