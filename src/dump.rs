//! Finds a `pg_dump` new enough for the server, runs it, and reads the dump into a catalog with
//! pg_dump's dependency graph (custom format through `pg_restore --verbose`), line by line from
//! the text pg_restore writes. Passwords reach the child through its environment only.

use crate::catalog::{self, Catalog, Filter};
use crate::endpoint::ConnParams;
use anyhow::{anyhow, bail, Context, Result};
use regex::Regex;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// A pg_dump and the pg_restore beside it.
#[derive(Debug, Clone)]
pub struct Tools {
    pub pg_dump: PathBuf,
    pub pg_restore: PathBuf,
    pub major: u32,
    pub version: String,
}

/// Every pg_dump we can find, newest first: `override_path` alone when given, else `$PG_DUMP`,
/// PATH and `/usr/lib/postgresql/*/bin`.
pub fn find_tools(override_path: Option<&Path>) -> Result<Vec<Tools>> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = override_path {
        candidates.push(p.to_path_buf());
    } else {
        if let Ok(p) = std::env::var("PG_DUMP") {
            if !p.is_empty() {
                candidates.push(PathBuf::from(p));
            }
        }
        if let Ok(p) = which::which("pg_dump") {
            candidates.push(p);
        }
        if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
            let mut dirs: Vec<_> = rd.flatten().map(|e| e.path()).collect();
            dirs.sort();
            for d in dirs {
                let p = d.join("bin/pg_dump");
                if p.is_file() {
                    candidates.push(p);
                }
            }
        }
    }
    let mut out: Vec<Tools> = Vec::new();
    for c in candidates {
        let c = std::fs::canonicalize(&c).unwrap_or(c);
        if out.iter().any(|t| t.pg_dump == c) {
            continue;
        }
        let pg_restore = c.with_file_name("pg_restore");
        // Without a pg_restore beside it a candidate is unusable: skip it before paying for
        // `--version` (Debian's /usr/bin/pg_dump is a Perl wrapper that takes ~80 ms to answer).
        if override_path.is_none() && !pg_restore.is_file() {
            continue;
        }
        let output = std::process::Command::new(&c).arg("--version").output();
        let Ok(output) = output else {
            if override_path.is_some() {
                bail!("cannot run pg_dump at {}", c.display());
            }
            continue;
        };
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        let Some(major) = parse_major(&text) else {
            continue;
        };
        if !pg_restore.is_file() {
            continue;
        }
        out.push(Tools {
            pg_dump: c,
            pg_restore,
            major,
            version: text.trim().to_string(),
        });
    }
    out.sort_by_key(|t| std::cmp::Reverse(t.major));
    if out.is_empty() {
        bail!("no pg_dump found (looked at $PG_DUMP, PATH and /usr/lib/postgresql/*/bin): install the PostgreSQL client tools (Debian/Ubuntu: apt-get install postgresql-client) or set PG_DUMP=/path/to/pg_dump");
    }
    Ok(out)
}

/// `pg_dump (PostgreSQL) 15.20 (Debian ...)` -> 15; `pg_dump (PostgreSQL) 9.6.24` -> 9.
pub fn parse_major(version_text: &str) -> Option<u32> {
    let re = Regex::new(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?").ok()?;
    let c = re.captures(version_text)?;
    c[1].parse().ok()
}

/// Why a dump failed, so callers can react (fall back to serial dumps, name a version).
#[derive(Debug)]
pub enum DumpError {
    /// The server's lock table is full (each pg_dump locks every table it dumps).
    OutOfLocks(String),
    /// pg_dump is older than the server.
    VersionMismatch {
        server: String,
        tool: u32,
    },
    Other(anyhow::Error),
}

impl std::fmt::Display for DumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpError::OutOfLocks(s) => write!(
                f,
                "the server ran out of lock slots (pg_dump locks every table it dumps): raise max_locks_per_transaction on the server, or dump the sides one after the other: {s}"
            ),
            DumpError::VersionMismatch { server, tool } => {
                let major = server.split('.').next().unwrap_or(server);
                write!(
                    f,
                    "the server runs PostgreSQL {server} but the newest pg_dump found is {tool}: install pg_dump {major} or newer (Debian/Ubuntu: apt-get install postgresql-client-{major}) or point PG_DUMP / --pg-dump at one"
                )
            }
            DumpError::Other(e) => write!(f, "{e:#}"),
        }
    }
}

/// Runs pg_dump (custom format) on a live database, then pg_restore --verbose over the archive,
/// building the catalog from pg_restore's output line by line (the text is never held whole).
pub async fn dump_database(
    conn: &ConnParams,
    tools: &Tools,
    filter: &Filter,
) -> Result<Catalog, DumpError> {
    dump_archive(conn, tools)
        .await?
        .catalog(tools, filter)
        .await
}

/// A custom-format archive made by pg_dump, in a temporary directory removed with it.
pub struct Archive {
    dir: tempfile::TempDir,
    path: PathBuf,
}

impl Archive {
    /// The archive read into a catalog (through pg_restore); the archive is removed after.
    pub async fn catalog(self, tools: &Tools, filter: &Filter) -> Result<Catalog, DumpError> {
        let cat = restore_to_catalog(self.path, tools, filter)
            .await
            .map_err(DumpError::Other);
        drop(self.dir);
        cat
    }
}

/// Runs pg_dump (custom format) on a live database into a temporary archive. Only this part
/// holds locks on the server: two sides dumped one after the other can overlap one side's
/// reading with the other's dump.
pub async fn dump_archive(conn: &ConnParams, tools: &Tools) -> Result<Archive, DumpError> {
    let dir = tempfile::tempdir()
        .context("creating a temporary directory")
        .map_err(DumpError::Other)?;
    let archive = dir.path().join("schema.dump");
    let mut cmd = Command::new(&tools.pg_dump);
    cmd.arg("--schema-only")
        .arg("--format=custom")
        .arg("--no-sync")
        .arg(format!("--file={}", archive.display()))
        .arg(format!("--dbname={}", conn.conninfo()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // The password goes through the child's environment, never its command line.
    if let Some(p) = conn.password() {
        cmd.env("PGPASSWORD", p);
    }
    if conn.get("application_name").is_none() {
        cmd.env("PGAPPNAME", "pgalign");
    }
    let out = cmd
        .output()
        .await
        .with_context(|| format!("running {}", tools.pg_dump.display()))
        .map_err(DumpError::Other)?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if stderr.contains("server version mismatch") {
            let server = Regex::new(r"server version: ([0-9.]+)")
                .ok()
                .and_then(|re| re.captures(&stderr).map(|c| c[1].to_string()))
                .unwrap_or_else(|| "?".into());
            return Err(DumpError::VersionMismatch {
                server,
                tool: tools.major,
            });
        }
        if stderr.contains("out of shared memory") || stderr.contains("max_locks_per_transaction") {
            return Err(DumpError::OutOfLocks(one_line(&stderr)));
        }
        return Err(DumpError::Other(anyhow!(
            "pg_dump failed ({}): {}",
            out.status,
            one_line(&stderr)
        )));
    }
    Ok(Archive { dir, path: archive })
}

/// Turns a custom-format archive into a catalog: pg_restore --verbose writes plain SQL with TOC
/// ids and dependencies into a temporary file, which is then read line by line (never whole).
/// A file, not a pipe: read as pg_restore wrote it, each 8 KiB write woke the reader, and the
/// switching cost as much CPU as pg_restore's own work (10,000 tables: 0.85-0.93 s for a plan
/// between custom files through a pipe, 0.73 s through a file).
pub async fn restore_to_catalog(
    archive: PathBuf,
    tools: &Tools,
    filter: &Filter,
) -> Result<Catalog> {
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let text = dir.path().join("schema.sql");
    // --verbose also reports every entry on stderr: into a file too, read only on failure.
    let log = dir.path().join("pg_restore.log");
    let log_file = std::fs::File::create(&log).context("creating a temporary file")?;
    let status = Command::new(&tools.pg_restore)
        .arg("--verbose")
        .arg(format!("--file={}", text.display()))
        .arg(&archive)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .kill_on_drop(true)
        .status()
        .await
        .with_context(|| format!("running {}", tools.pg_restore.display()))?;
    if !status.success() {
        let errors = std::fs::read(&log).unwrap_or_default();
        bail!(
            "pg_restore failed ({status}): {}",
            one_line(&String::from_utf8_lossy(&errors))
        );
    }
    let filter = filter.clone();
    tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&text).context("reading pg_restore's output")?;
        let cat = catalog::from_dump_reader(std::io::BufReader::with_capacity(1 << 16, f), &filter);
        drop(dir);
        cat
    })
    .await
    .context("reading pg_restore's output stopped unexpectedly")?
}

/// Reads a dump file into a catalog: custom-format archives go through pg_restore, plain SQL is
/// read line by line.
pub async fn read_dump_file(
    path: &Path,
    tools: Option<&Tools>,
    filter: &Filter,
) -> Result<Catalog> {
    let mut magic = [0u8; 5];
    let n = {
        use tokio::io::AsyncReadExt;
        let mut f = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("reading {}", path.display()))?;
        f.read(&mut magic)
            .await
            .with_context(|| format!("reading {}", path.display()))?
    };
    if &magic[..n] == b"PGDMP" {
        let tools = tools.context("a custom-format dump needs pg_restore, and none was found: install the PostgreSQL client tools")?;
        return restore_to_catalog(path.to_path_buf(), tools, filter).await;
    }
    let (path, filter) = (path.to_path_buf(), filter.clone());
    tokio::task::spawn_blocking(move || {
        let f =
            std::fs::File::open(&path).with_context(|| format!("reading {}", path.display()))?;
        catalog::from_dump_reader(std::io::BufReader::with_capacity(1 << 16, f), &filter)
    })
    .await
    .context("reading the dump file stopped unexpectedly")?
}

/// The last meaningful lines of a child's stderr, on one line.
pub fn one_line(s: &str) -> String {
    let lines: Vec<&str> = s
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let tail = if lines.len() > 3 {
        &lines[lines.len() - 3..]
    } else {
        &lines[..]
    };
    tail.join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors() {
        assert_eq!(
            parse_major("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"),
            Some(15)
        );
        assert_eq!(parse_major("pg_dump (PostgreSQL) 9.6.24"), Some(9));
        assert_eq!(parse_major("garbage"), None);
    }

    #[test]
    fn mismatch_message_names_version_to_install() {
        let e = DumpError::VersionMismatch {
            server: "17.2".into(),
            tool: 15,
        };
        let s = e.to_string();
        assert!(s.contains("postgresql-client-17"), "{s}");
    }
}
