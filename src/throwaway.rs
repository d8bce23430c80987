//! A throwaway PostgreSQL server, for SQL-file endpoints when no `--scratch` server is given:
//! initdb into a private temporary directory, started by pg_ctl on a Unix socket in that
//! directory only (no TCP port), stopped and removed on every path that unwinds.
//!
//! initdb refuses to run as root: run as root, the server runs as the `postgres` user (else
//! `nobody`), as scripts/pg-matrix.sh does. The directory's name carries pgalign's process id,
//! so a run that was killed (and could not stop its server) is cleaned up by the next one.

use crate::dump::parse_major;
use crate::endpoint::ConnParams;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

const DIR_PREFIX: &str = "pgalign-pg-";
/// initdb writes a few MB and fsyncs nothing (`--no-sync`); a loaded machine still takes
/// seconds, not minutes.
const INITDB_LIMIT: Duration = Duration::from_secs(120);
/// pg_ctl's own wait for the server to accept connections (`-t`), and ours around it.
const START_WAIT_SECS: u64 = 60;
const STOP_WAIT_SECS: u64 = 30;

/// A server's binaries: initdb, pg_ctl and postgres in one directory, of one major.
#[derive(Debug, Clone)]
pub struct Bins {
    pub dir: PathBuf,
    pub major: u32,
}

impl Bins {
    fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// The server binaries to use: those at `pg_bin` (checked), else of `major` (or, when None, the
/// newest) among PATH's and `/usr/lib/postgresql/*/bin`.
pub fn find(pg_bin: Option<&Path>, major: Option<u32>) -> Result<Bins> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = pg_bin {
        let b = bins_in(d).ok_or_else(|| {
            anyhow!(
                "--pg-bin {}: no initdb, pg_ctl and postgres there that run",
                d.display()
            )
        })?;
        if let Some(m) = major.filter(|m| *m != b.major) {
            bail!(
                "--pg-bin {} holds PostgreSQL {} and {m} is needed: point --pg-bin at a {m} server's bin directory, or pass --scratch-major {}",
                d.display(),
                b.major,
                b.major
            );
        }
        return Ok(b);
    }
    if let Ok(p) = which::which("postgres") {
        let p = std::fs::canonicalize(&p).unwrap_or(p);
        dirs.extend(p.parent().map(Path::to_path_buf));
    }
    if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut found: Vec<PathBuf> = rd.flatten().map(|e| e.path().join("bin")).collect();
        found.sort();
        dirs.extend(found);
    }
    let mut all: Vec<Bins> = Vec::new();
    for d in dirs {
        if all.iter().any(|b| b.dir == d) {
            continue;
        }
        all.extend(bins_in(&d));
    }
    let found = |all: &[Bins]| {
        all.iter()
            .map(|b| b.major.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let pick = match major {
        Some(m) => all.iter().find(|b| b.major == m),
        None => all.iter().max_by_key(|b| b.major),
    };
    match (pick, major) {
        (Some(b), _) => Ok(b.clone()),
        (None, Some(m)) => bail!(
            "no PostgreSQL {m} server binaries (initdb, pg_ctl, postgres) on PATH or in /usr/lib/postgresql/*/bin{}: install them (Debian/Ubuntu: apt-get install postgresql-{m}), point --pg-bin at their directory, pick another major with --scratch-major, or load the files on a server of yours with --scratch URL",
            if all.is_empty() { String::new() } else { format!(" (found: {})", found(&all)) }
        ),
        (None, None) => bail!("no PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH or in /usr/lib/postgresql/*/bin to start a throwaway server for the SQL files: install a server (Debian/Ubuntu: apt-get install postgresql), point --pg-bin at its bin directory, or load the files on a server of yours with --scratch URL"),
    }
}

/// The binaries in `dir`, when all three are there and `postgres --version` names a major.
fn bins_in(dir: &Path) -> Option<Bins> {
    if !["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|t| dir.join(t).is_file())
    {
        return None;
    }
    let out = std::process::Command::new(dir.join("postgres"))
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let major = parse_major(&String::from_utf8_lossy(&out.stdout))?;
    Some(Bins {
        dir: dir.to_path_buf(),
        major,
    })
}

/// Who the server runs as: None for pgalign's own user, Some((uid, gid)) when pgalign runs as
/// root (initdb refuses root).
fn run_as() -> Result<Option<(u32, u32)>> {
    // The owner of /proc/self is the process's effective user.
    let euid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1);
    if euid != 0 {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let lookup = |name: &str| {
        passwd.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[0] == name)
                .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .flatten()
        })
    };
    match lookup("postgres").or_else(|| lookup("nobody")) {
        Some((0, _)) | None => bail!("pgalign runs as root and found neither a postgres nor a nobody user in /etc/passwd to run the throwaway server as (initdb refuses root): create one (useradd --system postgres), or load the files on a server of yours with --scratch URL"),
        Some(ids) => Ok(Some(ids)),
    }
}

/// Where the server's directory goes: the system's temporary directory when the server's user
/// can reach it and its path is plain (pg_ctl hands paths to a shell, a Unix socket's path is
/// at most 107 bytes), else /tmp.
fn base_dir(as_root: bool) -> PathBuf {
    let t = std::env::temp_dir();
    let plain = t.to_str().is_some_and(|s| {
        s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b))
    });
    let reachable = !as_root
        || t.ancestors()
            .all(|a| std::fs::metadata(a).is_ok_and(|m| m.mode() & 0o001 != 0));
    if plain && reachable {
        t
    } else {
        PathBuf::from("/tmp")
    }
}

/// A running throwaway server. `stop` (or, if it is dropped first, `Drop`) stops it and
/// removes its directory.
pub struct Server {
    dir: PathBuf,
    bins: Bins,
    user: Option<(u32, u32)>,
    /// Connection to its `postgres` database, over the Unix socket in `dir`.
    pub conn: ConnParams,
    running: bool,
}

fn command(tool: PathBuf, user: Option<(u32, u32)>) -> Command {
    let mut c = Command::new(tool);
    if let Some((uid, gid)) = user {
        c.uid(uid).gid(gid);
    }
    // The server's environment is its own: no PGDATA, PGPORT or PGOPTIONS of the caller's.
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("PG")) {
            c.env_remove(k);
        }
    }
    c.stdin(Stdio::null()).kill_on_drop(true);
    c
}

/// Runs `c` to its end within `limit`; its stderr (and stdout) as the error when it fails.
async fn run(what: &str, mut c: Command, limit: Duration) -> Result<()> {
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = tokio::time::timeout(limit, c.output())
        .await
        .map_err(|_| anyhow!("{what} did not finish within {limit:?}"))?
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        bail!(
            "{what} failed ({}): {}",
            out.status,
            crate::dump::one_line(&text)
        );
    }
    Ok(())
}

/// A postgresql.conf string value: in single quotes, a quote doubled.
fn conf_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Starts a server of `bins`; returns it with warnings about leftovers of killed runs.
pub async fn start(bins: Bins) -> Result<(Server, Vec<String>)> {
    let user = run_as()?;
    let base = base_dir(user.is_some());
    let warnings = clean_stale(&base, &bins);
    let dir = tempfile::Builder::new()
        .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
        .tempdir_in(&base)
        .with_context(|| format!("creating a directory in {}", base.display()))?
        .keep();
    let mut conn = BTreeMap::new();
    conn.insert("host".to_string(), dir.display().to_string());
    conn.insert("port".to_string(), "5432".to_string());
    conn.insert("user".to_string(), "postgres".to_string());
    conn.insert("dbname".to_string(), "postgres".to_string());
    conn.insert("sslmode".to_string(), "disable".to_string());
    let mut server = Server {
        dir,
        bins,
        user,
        conn: ConnParams::new(conn, None),
        running: false,
    };
    match server.init_and_start().await {
        Ok(()) => Ok((server, warnings)),
        Err(e) => {
            let log = std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
            server.stop_now();
            match log.trim().is_empty() {
                true => Err(e),
                false => Err(anyhow!(
                    "{e:#}; server log: {}",
                    crate::dump::one_line(&log)
                )),
            }
        }
    }
}

impl Server {
    async fn init_and_start(&mut self) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
        if let Some((uid, gid)) = self.user {
            std::os::unix::fs::chown(&self.dir, Some(uid), Some(gid))
                .with_context(|| format!("handing {} to the server's user", self.dir.display()))?;
        }
        let data = self.dir.join("data");
        let mut initdb = command(self.bins.tool("initdb"), self.user);
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run("initdb", initdb, INITDB_LIMIT).await?;
        // In the configuration file, not on pg_ctl's -o: pg_ctl hands that string to a shell.
        // A throwaway: no durability, a socket in its own directory and no TCP at all.
        let settings = format!(
            "\n# pgalign throwaway server\nlisten_addresses = ''\nunix_socket_directories = {}\nport = 5432\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 20\nshared_buffers = 16MB\n",
            conf_string(&self.dir.display().to_string())
        );
        {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("postgresql.conf"))
                .context("writing the throwaway server's postgresql.conf")?;
            f.write_all(settings.as_bytes())?;
        }
        self.running = true;
        let mut pg_ctl = command(self.bins.tool("pg_ctl"), self.user);
        pg_ctl
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", &START_WAIT_SECS.to_string(), "start"]);
        run(
            "pg_ctl start",
            pg_ctl,
            Duration::from_secs(START_WAIT_SECS + 10),
        )
        .await
    }

    /// Stops the server (immediate: nothing in it is kept) and removes its directory. Blocks
    /// for at most pg_ctl's own wait; an error names what is left.
    pub fn stop_now(&mut self) -> Option<String> {
        let mut left = None;
        if std::mem::take(&mut self.running) {
            left = stop_server(&self.dir.join("data"), &self.bins, self.user);
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                left = Some(format!("could not remove {}: {e}", self.dir.display()));
            }
        }
        left.map(|e| {
            format!(
                "warning: the throwaway server in {}: {e}",
                self.dir.display()
            )
        })
    }

    /// `stop_now` off the runtime's threads.
    pub async fn stop(mut self) -> Option<String> {
        tokio::task::spawn_blocking(move || self.stop_now())
            .await
            .unwrap_or_else(|e| Some(format!("warning: stopping the throwaway server: {e}")))
    }

    pub fn major(&self) -> u32 {
        self.bins.major
    }
}

impl Drop for Server {
    /// A signal or an error dropped the command's future before `stop`.
    fn drop(&mut self) {
        if self.dir.exists() {
            let _ = self.stop_now();
        }
    }
}

/// `pg_ctl stop -m immediate`, and if the server is still there, SIGKILL to its postmaster.
fn stop_server(data: &Path, bins: &Bins, user: Option<(u32, u32)>) -> Option<String> {
    use std::os::unix::process::CommandExt;
    let pg_ctl = |args: &[&str]| {
        let mut c = std::process::Command::new(bins.tool("pg_ctl"));
        if let Some((uid, gid)) = user {
            c.uid(uid).gid(gid);
        }
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let data_s = data.display().to_string();
    let wait = STOP_WAIT_SECS.to_string();
    if pg_ctl(&["-D", &data_s, "-m", "immediate", "-w", "-t", &wait, "stop"]) {
        return None;
    }
    let pid = std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.trim().to_string()))
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    match pid {
        // No postmaster.pid: the server never started, or has stopped.
        None => None,
        Some(pid) if pg_ctl(&["kill", "KILL", &pid]) => None,
        Some(pid) => Some(format!("could not stop its postmaster (pid {pid})")),
    }
}

/// Stops and removes the servers of pgalign runs that no longer exist (killed before they
/// could), found by the process id in their directories' names.
fn clean_stale(base: &Path, bins: &Bins) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let mut warnings = Vec::new();
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|r| r.split_once('-'))
            .map(|(pid, _)| pid)
            .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let path = e.path();
        let ours = std::fs::symlink_metadata(&path)
            .is_ok_and(|m| m.is_dir() && (me == Some(0) || Some(m.uid()) == me));
        if !ours || Path::new("/proc").join(pid).exists() {
            continue;
        }
        let owner = std::fs::metadata(&path).ok().map(|m| (m.uid(), m.gid()));
        let user = owner.filter(|(uid, _)| me == Some(0) && *uid != 0);
        let mut leftover = Server {
            dir: path,
            bins: bins.clone(),
            user,
            conn: ConnParams::default(),
            running: true,
        };
        warnings.extend(leftover.stop_now());
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conf_strings_are_quoted() {
        assert_eq!(conf_string("/tmp/a'b"), "'/tmp/a''b'");
    }

    #[test]
    fn missing_binaries_say_what_to_install() {
        let e = format!("{:#}", find(None, Some(3)).unwrap_err());
        assert!(
            e.contains("apt-get install postgresql-3") && e.contains("--scratch URL"),
            "{e}"
        );
        let dir = tempfile::tempdir().unwrap();
        let e = format!("{:#}", find(Some(dir.path()), None).unwrap_err());
        assert!(e.contains("--pg-bin"), "{e}");
    }
}
