//! Sides that are SQL files, for `load`: where they are loaded (the `--scratch` server, else a
//! throwaway server of TARGET's major), and everything made for them, released together.

use super::Common;
use crate::dump::Tools;
use crate::endpoint::{ConnParams, Endpoint};
use crate::files::{self, Materialized};
use crate::throwaway;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// The scratch databases and the throwaway server made for this run. Fields drop in order:
/// the databases, then the server they are on.
#[derive(Default)]
pub struct Scratches {
    dbs: Vec<Materialized>,
    server: Option<throwaway::Server>,
    /// Where the SQL files load: decided at the first files side.
    host: Option<ConnParams>,
}

impl Scratches {
    /// Drops the databases, then stops and removes the server; a warning for what is left.
    pub async fn release(self) -> Vec<String> {
        let Scratches { dbs, server, .. } = self;
        let mut warnings = Vec::new();
        // On a throwaway server the databases go with it.
        if server.is_none() {
            for m in dbs {
                warnings.extend(m.release().await);
            }
        } else {
            for m in dbs {
                m.forget();
            }
        }
        if let Some(s) = server {
            warnings.extend(s.stop().await);
        }
        warnings
    }
}

/// The server SQL files are loaded on: `--scratch`, else PGALIGN_SCRATCH_URL, else None (a
/// throwaway). Not given the endpoints' --sslmode: it is often a local server of another kind
/// than the two sides.
async fn given_server(c: &Common) -> Result<Option<ConnParams>> {
    let ep = match &c.scratch {
        Some(ep) => ep.clone(),
        None => match std::env::var("PGALIGN_SCRATCH_URL") {
            Ok(v) if !v.is_empty() => crate::cli::parse_scratch_server(&v)
                .map_err(|e| anyhow!("reading PGALIGN_SCRATCH_URL: {e}"))?,
            _ => return Ok(None),
        },
    };
    match &ep {
        Endpoint::Database(p) => Ok(Some(p.clone())),
        Endpoint::Secret(s) => crate::secrets::resolve(s, &BTreeMap::new())
            .await
            .map(Some)
            .context("reading the scratch server's secret"),
        _ => bail!("the scratch server is a database server, not a file"),
    }
}

/// TARGET's major version, which a throwaway server matches (pg_dump's text differs between
/// server majors): asked of the server, or read from a dump file's header. None when TARGET
/// is SQL files too, or says nothing.
async fn target_major(ep: &Endpoint, conn: Option<&ConnParams>) -> Option<u32> {
    if let Some(conn) = conn {
        let ask = async {
            let t = crate::apply::connect::connect(conn).await.ok()?;
            let row = t
                .client
                .query_one(
                    "SELECT current_setting('server_version_num')::int / 10000",
                    &[],
                )
                .await
                .ok()?;
            u32::try_from(row.get::<_, i32>(0)).ok()
        };
        return tokio::time::timeout(Duration::from_secs(40), ask)
            .await
            .ok()
            .flatten();
    }
    let Endpoint::DumpFile(p) = ep else {
        return None;
    };
    dump_file_major(p)
}

/// `-- Dumped from database version 15.4` in a plain dump, or the custom archive's header.
fn dump_file_major(p: &Path) -> Option<u32> {
    use std::io::Read;
    // Only the start is read: the first 64 KiB, which hold a plain dump's header comment; an
    // archive's header is read on from there.
    let mut file = std::fs::File::open(p).ok()?;
    let len = usize::try_from(file.metadata().ok()?.len()).ok()?;
    let mut head = Vec::new();
    (&mut file).take(64 * 1024).read_to_end(&mut head).ok()?;
    let version: Vec<u8> = if crate::archive::is_archive(&head) {
        let whole = head.as_slice().chain(std::io::BufReader::new(file));
        crate::archive::open(whole, len)
            .ok()?
            .0
            .server_version?
            .to_vec()
    } else {
        String::from_utf8_lossy(&head)
            .lines()
            .find_map(|l| l.strip_prefix("-- Dumped from database version "))?
            .as_bytes()
            .to_vec()
    };
    let digits: Vec<u8> = version.into_iter().take_while(u8::is_ascii_digit).collect();
    String::from_utf8(digits).ok()?.parse().ok()
}

/// Where the files load: the given server, else a throwaway one started now (once a run).
async fn host(
    c: &Common,
    target: (&Endpoint, Option<&ConnParams>),
    held: &mut Scratches,
    messages: &mut Vec<String>,
) -> Result<ConnParams> {
    if let Some(h) = &held.host {
        return Ok(h.clone());
    }
    let h = match given_server(c).await? {
        Some(s) => {
            // Both asked at once; either may say nothing (a dump file without its header).
            let scratch_ep = Endpoint::Database(s.clone());
            let (theirs, ours) = tokio::join!(
                target_major(target.0, target.1),
                target_major(&scratch_ep, Some(&s))
            );
            if let (Some(t), Some(o)) = (theirs, ours) {
                if t != o {
                    messages.push(format!("warning: the scratch server runs PostgreSQL {o} and TARGET {t}: pg_dump writes some definitions differently on other majors, which would show as differences; load on a server of {t} (or leave out --scratch: pgalign starts one)"));
                }
            }
            s
        }
        None => {
            let major = match c.scratch_major {
                Some(m) => Some(m),
                None => target_major(target.0, target.1).await,
            };
            let bins = throwaway::find(c.pg_bin.as_deref(), major)?;
            let stage = crate::progress::stage(&format!(
                "starting a throwaway PostgreSQL {} server",
                bins.major
            ));
            let (server, warnings) = throwaway::start(bins).await.context(
                "starting a throwaway PostgreSQL server (or give one with --scratch URL)",
            )?;
            stage.done();
            messages.extend(warnings);
            let conn = server.conn.clone();
            held.server = Some(server);
            conn
        }
    };
    held.host = Some(h.clone());
    Ok(h)
}

/// Loads a side that is SQL files into a scratch database; its connection, held in `held`.
pub async fn materialize_side(
    side: &str,
    path: &Path,
    c: &Common,
    target: (&Endpoint, Option<&ConnParams>),
    tools: &[Tools],
    held: &mut Scratches,
    messages: &mut Vec<String>,
) -> Result<ConnParams> {
    let what = || format!("loading {side} SQL files {}", path.display());
    // Before any server is started: an empty directory needs none to be refused.
    let list = files::list(path).with_context(what)?;
    let tool = tools.first().context("no pg_dump found")?;
    files::psql_of(tool).with_context(what)?;
    let server = host(c, target, held, messages).await.with_context(what)?;
    let stage = crate::progress::stage(&format!(
        "loading {side} SQL files {} into a scratch database",
        path.display()
    ));
    let limits = files::Limits {
        statement: c.scratch_timeout,
        overall: c.dump_timeout,
    };
    let throwaway = held.server.is_some();
    let (m, warnings) = files::materialize(&list, &server, tool, limits, throwaway)
        .await
        .with_context(what)?;
    stage.done();
    messages.extend(warnings);
    let conn = m.conn.clone();
    held.dbs.push(m);
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_files_major_is_read_from_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("p.sql");
        std::fs::write(
            &plain,
            "--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 16.4 (Debian)\n-- Dumped by pg_dump version 17.0\n",
        )
        .unwrap();
        assert_eq!(dump_file_major(&plain), Some(16));
        let custom = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dumps/production.dump");
        assert!(dump_file_major(&custom).is_some_and(|m| m >= 12));
        std::fs::write(&plain, "CREATE TABLE t ();\n").unwrap();
        assert_eq!(dump_file_major(&plain), None);
    }
}
