//! Finds a `pg_dump` new enough for the server, runs it, and reads the dump into a catalog with
//! pg_dump's dependency graph: the custom-format archive read directly (`crate::archive`), or,
//! for an archive version that reader does not know, through `pg_restore --verbose`'s text.
//! Passwords reach the child through its environment only.

use crate::catalog::{self, Catalog, Filter};
use crate::duration::Millis;
use crate::endpoint::ConnParams;
use anyhow::{anyhow, bail, Context, Result};
use regex::Regex;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// A pg_dump and the pg_restore beside it, and how long they may wait.
#[derive(Debug, Clone)]
pub struct Tools {
    pub pg_dump: PathBuf,
    pub pg_restore: PathBuf,
    pub major: u32,
    pub version: String,
    /// pg_dump's `--lock-wait-timeout`: how long it waits for each table's lock.
    pub lock_timeout: Millis,
    /// How long one pg_dump or pg_restore may run in all.
    pub timeout: Millis,
}

impl Tools {
    /// Sets both limits on every tool found (from --dump-lock-timeout and --dump-timeout).
    pub fn with_limits(mut tools: Vec<Tools>, lock_timeout: Millis, timeout: Millis) -> Vec<Tools> {
        for t in &mut tools {
            t.lock_timeout = lock_timeout;
            t.timeout = timeout;
        }
        tools
    }
}

/// A private temporary directory (0700; its files 0600): dumps can hold what a schema says
/// about a business, and they are removed when it is dropped, on every path that unwinds.
fn private_tempdir() -> Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .prefix("pgalign-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .context("creating a temporary directory")
}

/// Creates `path` empty and readable by its owner only; a child that writes it keeps the mode.
fn private_file(path: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// Waits for a child at most `limit`; on timeout it is killed (kill_on_drop) and the error
/// names the flag that sets the limit.
async fn bounded<T>(
    what: &str,
    limit: Millis,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit.as_duration(), f).await {
        Ok(r) => r.with_context(|| format!("running {what}")),
        Err(_) => {
            bail!("{what} did not finish within {limit} and was stopped (raise --dump-timeout)")
        }
    }
}

/// Every pg_dump we can find, newest first: `override_path` alone when given, else `$PG_DUMP`,
/// PATH and `/usr/lib/postgresql/*/bin`.
pub fn find_tools(override_path: Option<&Path>) -> Result<Vec<Tools>> {
    // $PG_DUMP names one pg_dump as --pg-dump does: one that does not work is an error, not a
    // reason to quietly take another.
    let from_env = std::env::var_os("PG_DUMP")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from);
    let override_path = override_path.or(from_env.as_deref());
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = override_path {
        candidates.push(p.to_path_buf());
    } else {
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
            lock_timeout: Millis::from_secs(30),
            timeout: Millis::from_secs(30 * 60),
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

/// Runs pg_dump (custom format) on a live database, then reads the archive into a catalog
/// (`archive_to_catalog`).
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
    /// The archive read into a catalog; the archive is removed after.
    pub async fn catalog(self, tools: &Tools, filter: &Filter) -> Result<Catalog, DumpError> {
        let cat = self.read(tools, filter).await;
        drop(self.dir);
        cat
    }

    /// The archive read into a catalog, kept for a rehearsal to restore (removed when dropped).
    pub async fn read(&self, tools: &Tools, filter: &Filter) -> Result<Catalog, DumpError> {
        archive_to_catalog(self.path.clone(), Some(tools), filter)
            .await
            .map_err(DumpError::Other)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What a schema restore leaves out: owners and privileges, when the comparison ignores them
/// too (`--no-owner`, `--no-privileges`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RestoreOptions {
    pub no_owner: bool,
    pub no_privileges: bool,
}

impl RestoreOptions {
    fn add_to(self, cmd: &mut Command) {
        if self.no_owner {
            cmd.arg("--no-owner");
        }
        if self.no_privileges {
            cmd.arg("--no-privileges");
        }
    }
}

/// What a pg_dump, pg_restore or psql connecting to `conn` gets in its environment: the password
/// (never on its command line), an application name and a connect timeout unless given.
pub fn connection_env(cmd: &mut Command, conn: &ConnParams) {
    if let Some(p) = conn.password() {
        cmd.env("PGPASSWORD", p);
    }
    if conn.get("application_name").is_none() {
        cmd.env("PGAPPNAME", "pgalign");
    }
    if conn.resolved("connect_timeout").is_none() {
        cmd.env("PGCONNECT_TIMEOUT", "30");
    }
}

/// Restores a custom-format archive's schema into the (empty) database `conn` names: one
/// transaction, stopping at the first error, within `--dump-timeout`. The password reaches
/// pg_restore through its environment only.
pub async fn restore_schema(
    archive: &Path,
    conn: &ConnParams,
    tools: &Tools,
    opts: RestoreOptions,
) -> Result<()> {
    let mut cmd = Command::new(&tools.pg_restore);
    cmd.arg("--schema-only")
        // --single-transaction implies --exit-on-error: a schema restored halfway would be
        // rehearsed on as if it were TARGET's.
        .arg("--single-transaction")
        .arg(format!("--dbname={}", conn.conninfo()));
    opts.add_to(&mut cmd);
    cmd.arg(archive)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    connection_env(&mut cmd, conn);
    let out = bounded("pg_restore", tools.timeout, cmd.output()).await?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        // pg_restore's first error is the cause; what follows it is the rollback's echo.
        let first = stderr
            .lines()
            .find(|l| l.contains("error:") || l.contains("ERROR:"))
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| one_line(&stderr));
        bail!("pg_restore failed ({}): {first}", out.status);
    }
    Ok(())
}

/// A custom-format archive's schema as the SQL script pg_restore prints (no server needed), for
/// a server older than pg_restore's SET lines allow (`restore_schema` then cannot be used: a
/// pg_restore of 17 or later sends `SET transaction_timeout`, which servers before 17 refuse).
/// The lines only a newer server or psql understands are left out: `SET transaction_timeout`,
/// and the `\restrict` / `\unrestrict` meta-commands.
pub async fn schema_script(archive: &Path, tools: &Tools, opts: RestoreOptions) -> Result<String> {
    let mut cmd = Command::new(&tools.pg_restore);
    cmd.arg("--schema-only").arg("--file=-");
    opts.add_to(&mut cmd);
    cmd.arg(archive)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = bounded("pg_restore", tools.timeout, cmd.output()).await?;
    if !out.status.success() {
        bail!(
            "pg_restore failed ({}): {}",
            out.status,
            one_line(&String::from_utf8_lossy(&out.stderr))
        );
    }
    let text =
        String::from_utf8(out.stdout).context("pg_restore printed text that is not UTF-8")?;
    Ok(text
        .lines()
        .filter(|l| {
            !(l.starts_with("SET transaction_timeout")
                || l.starts_with("\\restrict ")
                || l.starts_with("\\unrestrict "))
        })
        .map(|l| format!("{l}\n"))
        .collect())
}

/// Runs pg_dump (custom format) on a live database into a temporary archive. Only this part
/// holds locks on the server: two sides dumped one after the other can overlap one side's
/// reading with the other's dump.
pub async fn dump_archive(conn: &ConnParams, tools: &Tools) -> Result<Archive, DumpError> {
    dump_part(conn, tools, &Part::default()).await
}

/// What one pg_dump of several reads (`crate::shards`): the snapshot they share, and the tables
/// it leaves to the others.
#[derive(Debug, Clone, Default)]
pub struct Part {
    /// An id from `pg_export_snapshot()` (hex digits and dashes, checked before use).
    pub snapshot: Option<String>,
    /// pg_dump `--exclude-table` patterns.
    pub exclude_tables: Vec<String>,
}

/// `dump_archive`, of a part of the database at a snapshot another session exported.
pub async fn dump_part(
    conn: &ConnParams,
    tools: &Tools,
    part: &Part,
) -> Result<Archive, DumpError> {
    let dir = private_tempdir().map_err(DumpError::Other)?;
    let archive = dir.path().join("schema.dump");
    private_file(&archive).map_err(DumpError::Other)?;
    let mut cmd = Command::new(&tools.pg_dump);
    cmd.arg("--schema-only")
        .arg("--format=custom")
        .arg("--no-sync")
        // A session holding ACCESS EXCLUSIVE on a table would otherwise keep pg_dump waiting
        // for as long as it holds it.
        .arg(format!(
            "--lock-wait-timeout={}",
            tools.lock_timeout.as_ms()
        ))
        .arg(format!("--file={}", archive.display()))
        .arg(format!("--dbname={}", conn.conninfo()));
    if let Some(snap) = &part.snapshot {
        if snap.is_empty() || !snap.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Err(DumpError::Other(anyhow!(
                "the server exported a snapshot id pgalign does not recognise ({snap:?}): dump without shards (unset PGALIGN_DUMP_SHARDS)"
            )));
        }
        cmd.arg(format!("--snapshot={snap}"));
    }
    for p in &part.exclude_tables {
        cmd.arg(format!("--exclude-table={p}"));
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    connection_env(&mut cmd, conn);
    let out = bounded("pg_dump", tools.timeout, cmd.output())
        .await
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
        // --lock-wait-timeout ends pg_dump's LOCK TABLE through a statement timeout.
        if stderr.contains("LOCK TABLE")
            && (stderr.contains("statement timeout") || stderr.contains("lock timeout"))
        {
            let blocker = lock_holder(conn, &stderr).await;
            return Err(DumpError::Other(anyhow!(
                "pg_dump could not lock a table within {} (--dump-lock-timeout){blocker}: wait until that session ends, end it, or raise --dump-lock-timeout",
                tools.lock_timeout
            )));
        }
        return Err(DumpError::Other(anyhow!(
            "pg_dump failed ({}): {}",
            out.status,
            one_line(&stderr)
        )));
    }
    Ok(Archive { dir, path: archive })
}

/// After pg_dump's lock timeout: which table it waited for, and the session holding it, as
/// ` (table public.t is locked ACCESS EXCLUSIVE by pid 123, app "psql", user u, in a
/// transaction open for 00:00:05)`. Empty when the holder cannot be found (it may be gone).
async fn lock_holder(conn: &ConnParams, stderr: &str) -> String {
    // pg_dump's failed query: `LOCK TABLE public.t IN ACCESS SHARE MODE` (newer majors lock
    // several tables in one statement).
    let tables: Vec<String> = Regex::new(r"LOCK TABLE (.+?) IN ACCESS SHARE MODE")
        .ok()
        .and_then(|re| re.captures(stderr).map(|c| c[1].to_string()))
        .map(|list| list.split(", ").map(|t| t.trim().to_string()).collect())
        .unwrap_or_default();
    let query = async {
        let target = crate::apply::connect::connect(conn).await.ok()?;
        target
            .client
            .batch_execute("SET statement_timeout = '5s'")
            .await
            .ok()?;
        let row = target
            .client
            .query_opt(
                "SELECT format('%I.%I', n.nspname, c.relname), a.pid, coalesce(a.application_name, ''),
                        coalesce(a.usename::text, ''), coalesce(a.state, ''),
                        coalesce(date_trunc('second', now() - a.xact_start)::text, '?')
                   FROM pg_catalog.pg_locks l
                   JOIN pg_catalog.pg_class c ON c.oid = l.relation
                   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                   JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
                  WHERE l.locktype = 'relation' AND l.granted AND l.mode = 'AccessExclusiveLock'
                    AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
                    AND l.pid <> pg_catalog.pg_backend_pid()
                  ORDER BY format('%I.%I', n.nspname, c.relname) = ANY($1) DESC, a.xact_start
                  LIMIT 1",
                &[&tables],
            )
            .await
            .ok()??;
        Some(format!(
            " (table {} is locked ACCESS EXCLUSIVE by pid {}, application {:?}, user {}, {}, in a transaction open for {})",
            row.get::<_, String>(0),
            row.get::<_, i32>(1),
            row.get::<_, String>(2),
            row.get::<_, String>(3),
            row.get::<_, String>(4),
            row.get::<_, String>(5)
        ))
    };
    match tokio::time::timeout(std::time::Duration::from_secs(15), query).await {
        Ok(Some(s)) => s,
        _ if !tables.is_empty() => format!(" (waiting for {})", tables.join(", ")),
        _ => String::new(),
    }
}

/// Turns a custom-format archive into a catalog: read directly (`crate::archive`, no second
/// process, no temporary text) when its version is one the reader knows and it holds no data;
/// otherwise through pg_restore, which needs the client tools.
async fn archive_to_catalog(
    path: PathBuf,
    tools: Option<&Tools>,
    filter: &Filter,
) -> Result<Catalog> {
    let f = filter.clone();
    let file = path.clone();
    let read = tokio::task::spawn_blocking(move || crate::archive::schema_catalog(&file, &f))
        .await
        .context("reading the archive stopped unexpectedly")?;
    if let Some(cat) = read? {
        return Ok(cat);
    }
    let tools = tools.context("this custom-format dump needs pg_restore (an archive version pgalign does not read itself, or one with data), and none was found: install the PostgreSQL client tools")?;
    restore_to_catalog(path, tools, filter).await
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
    let dir = private_tempdir()?;
    let text = dir.path().join("schema.sql");
    private_file(&text)?;
    // --verbose also reports every entry on stderr: into a file too, read only on failure.
    let log = dir.path().join("pg_restore.log");
    let log_file = private_file(&log)?;
    let mut cmd = Command::new(&tools.pg_restore);
    cmd.arg("--verbose")
        .arg(format!("--file={}", text.display()))
        .arg(&archive)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .kill_on_drop(true);
    let status = bounded("pg_restore", tools.timeout, cmd.status()).await?;
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

/// Reads a dump file into a catalog: custom-format archives as `archive_to_catalog` does, plain
/// SQL line by line.
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
        return archive_to_catalog(path.to_path_buf(), tools, filter).await;
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
