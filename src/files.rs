//! Schema as code: an endpoint that is SQL files (a directory of `.sql` files, or one `.sql`
//! file pg_dump did not write) becomes a database by loading the files into a scratch database,
//! which is then dumped like any other database and dropped.
//!
//! The files are run by psql, not split here: psql knows the grammar (dollar quotes, COPY,
//! meta-commands) and names the file and line of a failing statement itself. One psql runs all
//! the files, in order, on one connection.

use crate::dump::{one_line, Tools};
use crate::duration::Millis;
use crate::endpoint::ConnParams;
use crate::scratch::{self, Scratch};
use anyhow::{anyhow, bail, Context, Result};
use regex::Regex;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// In a directory, the file that lists the `.sql` files in the order they load (one relative
/// path a line; `#` starts a comment). Without it, they load sorted by path.
pub const ORDER_FILE: &str = "load-order.txt";

/// A directory tree deeper than this is a symlink loop, not a schema.
const MAX_DEPTH: usize = 32;

/// psql's command line holds every file: past this many bytes of paths, the files are loaded
/// by several psql runs one after the other (Linux allows 2 MiB of arguments and environment).
const ARGV_BUDGET: usize = 512 * 1024;

/// The files an endpoint names, in the order they load, each as a path the user can open
/// (the endpoint's path joined with the file's place under it).
pub fn list(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        let len = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        if len == 0 {
            bail!("the file is empty: an empty schema would make a plan that drops everything; give a file with the schema's SQL");
        }
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    walk(path, Path::new(""), 0, &mut found)?;
    found.sort();
    let order = path.join(ORDER_FILE);
    // An order file that lists nothing says the schema is empty (a dump of an empty
    // database); without one, an empty directory is more likely the wrong one.
    let files = if order.is_file() {
        ordered(path, &order, &found)?
    } else if found.is_empty() {
        bail!("no .sql files in this directory: an empty schema would make a plan that drops everything (an empty {ORDER_FILE} says the schema is meant to be empty)");
    } else {
        found
    };
    Ok(files.into_iter().map(|f| path.join(f)).collect())
}

/// Every `.sql` file under `dir` (relative to the root), hidden files and directories left out.
fn walk(root: &Path, rel: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    if depth > MAX_DEPTH {
        bail!(
            "{}: more than {MAX_DEPTH} directories deep (a symbolic link loop?)",
            rel.display()
        );
    }
    let dir = root.join(rel);
    let entries = std::fs::read_dir(&dir)
        .with_context(|| format!("reading the directory {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading the directory {}", dir.display()))?;
        let name = entry.file_name();
        let Some(name_str) = name.to_str() else {
            bail!(
                "{}: a file name that is not UTF-8 under {}: rename it",
                name.to_string_lossy(),
                dir.display()
            );
        };
        if name_str.starts_with('.') {
            continue;
        }
        let rel_child = rel.join(&name);
        // Follows symbolic links, as psql will.
        let meta = std::fs::metadata(entry.path())
            .with_context(|| format!("reading {}", entry.path().display()))?;
        if meta.is_dir() {
            walk(root, &rel_child, depth + 1, out)?;
        } else if name_str.ends_with(".sql") {
            out.push(rel_child);
        }
    }
    Ok(())
}

/// The files `order` lists, checked against the files found: each listed one exists, none is
/// listed twice, and every `.sql` file found is listed (a file left out would be a schema
/// change silently not made).
fn ordered(root: &Path, order: &Path, found: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let text =
        std::fs::read_to_string(order).with_context(|| format!("reading {}", order.display()))?;
    let shown = order.display();
    let mut out: Vec<PathBuf> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = n + 1;
        let rel = PathBuf::from(line);
        let normal = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !normal {
            bail!(
                "{shown}:{at}: {line:?} is not a path inside the directory (no leading /, no ..)"
            );
        }
        if !line.ends_with(".sql") {
            bail!("{shown}:{at}: {line:?} is not a .sql file");
        }
        if !root.join(&rel).is_file() {
            bail!("{shown}:{at}: {line}: no such file");
        }
        if out.contains(&rel) {
            bail!("{shown}:{at}: {line} is listed twice");
        }
        out.push(rel);
    }
    if let Some(missing) = found.iter().find(|f| !out.contains(f)) {
        bail!(
            "{} is not listed in {shown}: add it there where it loads, or remove the file",
            missing.display()
        );
    }
    Ok(out)
}

/// psql, beside the pg_dump found (as pg_restore is).
pub fn psql_of(tools: &Tools) -> Result<PathBuf> {
    let psql = tools.pg_dump.with_file_name("psql");
    if !psql.is_file() {
        bail!(
            "no psql beside {} (SQL files are loaded with psql): install the PostgreSQL client tools",
            tools.pg_dump.display()
        );
    }
    Ok(psql)
}

/// How long loading may take: each statement (an endless loop in a file ends there), and psql
/// in all.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub statement: Millis,
    pub overall: Millis,
}

/// Runs `files` in order into the database `conn` names, stopping at the first error, which is
/// psql's own line: `schema/t.sql:3: ERROR: syntax error at or near "x"`.
pub async fn load(files: &[PathBuf], conn: &ConnParams, psql: &Path, limits: Limits) -> Result<()> {
    let mut conn = conn.clone();
    // In the connection string rather than PGOPTIONS, which an `options` keyword there would
    // override. client_min_messages keeps NOTICEs out of the stderr the error is read from.
    // check_function_bodies off, as pg_dump's scripts set it: a function's body may name
    // what a later file creates (pg_dump orders SQL-language bodies by nothing).
    let ours = format!(
        "-c statement_timeout={} -c client_min_messages=warning -c check_function_bodies=off",
        limits.statement.as_ms()
    );
    let options = match conn.get("options") {
        Some(o) if !o.trim().is_empty() => format!("{o} {ours}"),
        _ => ours,
    };
    conn.params.insert("options".into(), options);
    let deadline = tokio::time::Instant::now() + limits.overall.as_duration();
    for chunk in chunks(files) {
        let mut cmd = Command::new(psql);
        cmd.args(["-X", "-q", "-w", "-v", "ON_ERROR_STOP=1"])
            .arg(format!("--dbname={}", conn.conninfo()));
        for f in chunk {
            cmd.arg("-f").arg(f);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        crate::dump::connection_env(&mut cmd, &conn);
        let out = match tokio::time::timeout_at(deadline, cmd.output()).await {
            Ok(r) => r.context("running psql")?,
            Err(_) => bail!(
                "loading the files did not finish within {} and was stopped (raise --dump-timeout)",
                limits.overall
            ),
        };
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(anyhow!(failure(&stderr, limits.statement)));
        }
    }
    Ok(())
}

/// `files` in runs whose paths fit on one command line.
fn chunks(files: &[PathBuf]) -> Vec<&[PathBuf]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, f) in files.iter().enumerate() {
        let len = f.as_os_str().len() + 4;
        if i > start && bytes + len > ARGV_BUDGET {
            out.push(&files[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += len;
    }
    if start < files.len() {
        out.push(&files[start..]);
    }
    out
}

/// psql's error as one line, `FILE:LINE: ERROR: ...`, with what to do for the failures that
/// have a remedy.
pub fn failure(stderr: &str, statement_timeout: Millis) -> String {
    let first = stderr
        .lines()
        .find(|l| l.starts_with("psql:") && (l.contains("ERROR:") || l.contains("FATAL:")))
        .or_else(|| stderr.lines().find(|l| l.starts_with("psql:")));
    let Some(line) = first else {
        return format!("psql failed: {}", one_line(stderr));
    };
    let line = line.strip_prefix("psql:").unwrap_or(line);
    let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    let missing_extension = Regex::new(r#"extension "([^"]+)" is not available|could not open extension control file "[^"]*/([^"/]+)\.control""#)
        .ok()
        .and_then(|re| re.captures(&line).or_else(|| re.captures(stderr)))
        .and_then(|c| c.get(1).or_else(|| c.get(2)).map(|m| m.as_str().to_string()));
    if let Some(ext) = missing_extension {
        return format!("{line} (the extension {ext} is not installed on the scratch server: install it there, or load the files on a server that has it with --scratch URL)");
    }
    if let Some(role) = missing_role(&line) {
        return format!("{line} (roles belong to the server, not to a database: create the role {role} on the scratch server, or load the files on a throwaway server (no --scratch), where pgalign creates the roles they name)");
    }
    if line.contains("canceling statement due to statement timeout") {
        return format!("{line} (a statement ran longer than --scratch-timeout {statement_timeout}: raise it if the statement is meant to take that long)");
    }
    line
}

/// A database holding what SQL files made, on a scratch server, until `release` (or, when it is
/// dropped unreleased because a signal or an error unwound the command, at once in `drop`).
pub struct Materialized {
    pub conn: ConnParams,
    scratch: Option<Scratch>,
}

impl Materialized {
    /// Drops the scratch database; a warning when that failed.
    pub async fn release(mut self) -> Option<String> {
        let s = self.scratch.take()?;
        let name = s.name.clone();
        s.drop().await.err().map(|e| left_behind(&name, &e))
    }
}

impl Materialized {
    /// For a database on a server that is removed whole: nothing to drop.
    pub fn forget(mut self) {
        self.scratch = None;
    }
}

fn left_behind(name: &str, e: &str) -> String {
    format!("warning: the scratch database {name} could not be dropped ({e}): drop it by hand, or the next run that makes one on that server drops it once it is an hour old")
}

impl Drop for Materialized {
    /// The command's future was dropped (a signal, or an error returned past `release`): the
    /// async drop cannot run there, so it runs to its end on a thread of its own, bounded as
    /// `Scratch::drop` is.
    fn drop(&mut self) {
        let Some(s) = self.scratch.take() else {
            return;
        };
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(s.drop()).ok()
        })
        .join();
    }
}

/// More roles than this missing is not a few owners and grantees: something else is wrong.
const MAX_ROLES: usize = 100;

/// Loads `files` (from `list`) into a new scratch database on `server`. Returns it (with the
/// warnings of the stale-database cleanup), or the error of the load, the database dropped.
/// `make_roles` (a throwaway server, whose roles are its own): a role the files name that does
/// not exist is created there, and the files loaded again on a new database.
pub async fn materialize(
    files: &[PathBuf],
    server: &ConnParams,
    tools: &Tools,
    limits: Limits,
    make_roles: bool,
) -> Result<(Materialized, Vec<String>)> {
    let psql = psql_of(tools)?;
    let mut warnings = Vec::new();
    let mut made: Vec<String> = Vec::new();
    loop {
        let (s, w) = scratch::create(server, scratch::Purpose::Files)
            .await
            .with_context(|| format!("creating a scratch database on {server}"))?;
        warnings.extend(w);
        let m = Materialized {
            conn: s.conn.clone(),
            scratch: Some(s),
        };
        let e = match load(files, &m.conn, &psql, limits).await {
            Ok(()) => return Ok((m, warnings)),
            Err(e) => e,
        };
        warnings.extend(m.release().await);
        let role = missing_role(&format!("{e:#}")).filter(|r| !made.contains(r));
        match role {
            Some(role) if make_roles && made.len() < MAX_ROLES => {
                create_role(server, &role)
                    .await
                    .with_context(|| format!("creating the role {role} the files name"))?;
                made.push(role);
            }
            _ if warnings.is_empty() => return Err(e),
            _ => return Err(anyhow!("{e:#} ({})", warnings.join("; "))),
        }
    }
}

/// The role in psql's `ERROR: role "app" does not exist`.
fn missing_role(error: &str) -> Option<String> {
    let re = Regex::new(r#"ERROR: role "((?:[^"]|"")+)" does not exist"#).ok()?;
    Some(re.captures(error)?[1].replace("\"\"", "\""))
}

async fn create_role(server: &ConnParams, role: &str) -> Result<()> {
    let work = async {
        let t = crate::apply::connect::connect(server).await?;
        let sql = format!("CREATE ROLE {}", crate::catalog::quote_ident(role));
        t.client
            .batch_execute(&sql)
            .await
            .map_err(|e| anyhow!("{}", crate::apply::pg_error_text(&e)))
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), work)
        .await
        .map_err(|_| anyhow!("no answer within 60 s"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_psqls_first_line_with_a_remedy() {
        let t = Millis::from_secs(1);
        let syntax = "psql:schema/a.sql:3: ERROR:  syntax error at or near \"TABLEX\"\nLINE 1: CREATE TABLEX b (id int);\n               ^\n";
        assert_eq!(
            failure(syntax, t),
            "schema/a.sql:3: ERROR: syntax error at or near \"TABLEX\""
        );
        let ext = "psql:ext.sql:1: ERROR:  extension \"nonexistent_ext\" is not available\nDETAIL:  Could not open extension control file \"/usr/share/postgresql/15/extension/nonexistent_ext.control\": No such file or directory.\n";
        let e = failure(ext, t);
        assert!(e.starts_with("ext.sql:1: ERROR:"), "{e}");
        assert!(
            e.contains("the extension nonexistent_ext is not installed"),
            "{e}"
        );
        let old = "psql:ext.sql:1: ERROR:  could not open extension control file \"/usr/share/postgresql/12/extension/pgx.control\": No such file or directory\n";
        assert!(failure(old, t).contains("the extension pgx is not"));
        let timeout = "psql:loop.sql:2: ERROR:  canceling statement due to statement timeout\nCONTEXT:  PL/pgSQL function inline_code_block line 1 at LOOP\n";
        assert!(failure(timeout, t).contains("--scratch-timeout 1s"));
        assert!(failure("psql: error: connection refused\n", t).contains("connection refused"));
        let role = "psql:t.sql:4: ERROR:  role \"the \"\"app\"\"\" does not exist\n";
        assert!(failure(role, t).contains("create the role the \"app\" on"));
        assert_eq!(
            missing_role(&failure(role, t)).as_deref(),
            Some("the \"app\"")
        );
    }

    #[test]
    fn directories_load_sorted_or_as_their_order_file_says() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in ["b/2.sql", "b/10.sql", "a.sql", ".hidden/x.sql", "notes.txt"] {
            let p = d.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "SELECT 1;\n").unwrap();
        }
        let rel = |v: Vec<PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.strip_prefix(d).unwrap().display().to_string())
                .collect()
        };
        assert_eq!(rel(list(d).unwrap()), ["a.sql", "b/10.sql", "b/2.sql"]);
        std::fs::write(d.join(ORDER_FILE), "# first\nb/2.sql\n\nb/10.sql\na.sql\n").unwrap();
        assert_eq!(rel(list(d).unwrap()), ["b/2.sql", "b/10.sql", "a.sql"]);
        let bad = |text: &str, want: &str| {
            std::fs::write(d.join(ORDER_FILE), text).unwrap();
            let e = format!("{:#}", list(d).unwrap_err());
            assert!(e.contains(want), "{text:?}: {e}");
        };
        bad("b/2.sql\nb/10.sql\n", "a.sql is not listed in");
        bad(
            "a.sql\nb/2.sql\nb/10.sql\na.sql\n",
            ":4: a.sql is listed twice",
        );
        bad("../x.sql\n", ":1: \"../x.sql\" is not a path inside");
        bad("a.sql\nc.sql\n", ":2: c.sql: no such file");
        let empty = tempfile::tempdir().unwrap();
        assert!(format!("{:#}", list(empty.path()).unwrap_err()).contains("no .sql files"));
        std::fs::write(empty.path().join(ORDER_FILE), "# nothing\n").unwrap();
        assert!(list(empty.path()).unwrap().is_empty());
    }

    #[test]
    fn long_lists_are_split_between_psql_runs() {
        let files: Vec<PathBuf> = (0..20_000)
            .map(|i| PathBuf::from(format!("schema/public/table/t{i:05}.sql")))
            .collect();
        let runs = chunks(&files);
        assert!(runs.len() > 1);
        assert_eq!(runs.iter().map(|r| r.len()).sum::<usize>(), files.len());
        assert_eq!(runs.concat(), files);
        assert_eq!(chunks(&files[..3]).len(), 1);
    }
}
