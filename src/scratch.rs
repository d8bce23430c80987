//! Scratch databases: for rehearsals (on TARGET's server, or the one `--rehearse-on` names) and
//! for SQL-file endpoints (on the `--scratch` server), filled by the caller, and dropped on every
//! path that unwinds.
//! Nothing here touches TARGET's database: CREATE and DROP DATABASE run on a maintenance
//! connection, which takes no lock on any table.
//!
//! A run that is killed leaves its scratch database behind. Its name carries its creation time
//! (`pgalign_rehearsal_<unix secs>_<random>`, `pgalign_scratch_<unix secs>_<random>`), so the
//! next scratch database made on that server drops such leftovers once they are an hour old
//! without needing a catalog timestamp (PostgreSQL keeps none for databases).

use crate::apply::connect::{connect, Target};
use crate::apply::pg_error_text;
use crate::catalog::quote_ident;
use crate::endpoint::ConnParams;
use anyhow::{anyhow, Result};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const PREFIX: &str = "pgalign_rehearsal_";
/// The databases that SQL-file endpoints are loaded into.
pub const FILES_PREFIX: &str = "pgalign_scratch_";
const PREFIXES: [&str; 2] = [PREFIX, FILES_PREFIX];

/// What a scratch database is for: its name says so, and so can a leftover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Rehearsal,
    Files,
}

impl Purpose {
    fn prefix(self) -> &'static str {
        match self {
            Purpose::Rehearsal => PREFIX,
            Purpose::Files => FILES_PREFIX,
        }
    }
}

/// Older than this, a scratch database is a leftover of a killed run (a rehearsal runs a
/// schema-only plan on empty tables, a load runs schema files: minutes, not an hour).
pub const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Bounds each CREATE or DROP DATABASE: both wait for nothing but the server's own work (DROP
/// ... WITH (FORCE) ends the sessions connected to it), yet every wait must end.
const STATEMENT_TIMEOUT: &str = "SET statement_timeout = '120s'; SET lock_timeout = '30s'";
const OVERALL: Duration = Duration::from_secs(150);

/// `pgalign_rehearsal_<secs>_<8 hex digits>` (or `pgalign_scratch_...`).
pub fn name_at(purpose: Purpose, secs: u64, random: u32) -> String {
    format!("{}{secs}_{random:08x}", purpose.prefix())
}

/// When a scratch database was created, read from its name; None for any name that is not
/// exactly `pgalign_rehearsal_<digits>_<lower-case letters and digits>` (or the same after
/// `pgalign_scratch_`): a database someone else named with the same start is never taken for
/// one of ours.
pub fn created_at(name: &str) -> Option<u64> {
    let rest = PREFIXES.iter().find_map(|p| name.strip_prefix(p))?;
    let (secs, tag) = rest.split_once('_')?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    let tag_ok = !tag.is_empty()
        && tag.len() <= 16
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !digits(secs) || !tag_ok {
        return None;
    }
    secs.parse().ok()
}

/// Whether `name` is one of ours and older than STALE_AFTER at `now` (unix seconds).
pub fn is_stale(name: &str, now: u64) -> bool {
    created_at(name).is_some_and(|t| now.saturating_sub(t) > STALE_AFTER.as_secs())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// 32 random bits without a dependency: std's hasher keys are drawn from the OS per process,
/// and the time and pid tell apart two names drawn in one.
fn random_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish() as u32
}

/// A maintenance connection to a server, bounded as every statement here is.
async fn admin(server: &ConnParams) -> Result<Target> {
    let t = connect(server).await?;
    t.client
        .batch_execute(STATEMENT_TIMEOUT)
        .await
        .map_err(|e| anyhow!("{}", pg_error_text(&e)))?;
    Ok(t)
}

/// `DROP DATABASE`, ending the sessions still connected to it where the server can (13+).
async fn drop_database(client: &tokio_postgres::Client, name: &str) -> Result<(), String> {
    let version: i32 = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| pg_error_text(&e))?
        .get(0);
    let force = if version >= 130000 {
        " WITH (FORCE)"
    } else {
        ""
    };
    let sql = format!("DROP DATABASE IF EXISTS {}{force}", quote_ident(name));
    // Before 13, the rehearsal's own connection may still be closing: a few short tries.
    let mut tries = 0;
    loop {
        tries += 1;
        match client.batch_execute(&sql).await {
            Ok(()) => return Ok(()),
            Err(e)
                if tries < 10
                    && e.code() == Some(&tokio_postgres::error::SqlState::OBJECT_IN_USE) =>
            {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => return Err(pg_error_text(&e)),
        }
    }
}

/// A scratch database that exists on its server until `drop` is called.
pub struct Scratch {
    server: ConnParams,
    pub name: String,
    /// The server's connection parameters with the scratch database's name.
    pub conn: ConnParams,
}

/// Drops the leftovers of killed runs, then creates a scratch database. Returns it with a
/// warning for each leftover that could not be dropped.
pub async fn create(server: &ConnParams, purpose: Purpose) -> Result<(Scratch, Vec<String>)> {
    let work = async {
        let t = admin(server).await?;
        let warnings = drop_stale(&t.client, unix_now()).await;
        let name = name_at(purpose, unix_now(), random_u32());
        // template0: the copy must hold TARGET's schema and nothing template1 was given.
        let sql = format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(&name));
        t.client
            .batch_execute(&sql)
            .await
            .map_err(|e| anyhow!("{}", pg_error_text(&e)))?;
        let mut conn = server.clone();
        conn.params.insert("dbname".into(), name.clone());
        Ok((
            Scratch {
                server: server.clone(),
                name,
                conn,
            },
            warnings,
        ))
    };
    tokio::time::timeout(OVERALL, work)
        .await
        .map_err(|_| anyhow!("no answer within {OVERALL:?}"))?
}

/// Drops every database of ours older than STALE_AFTER; one that cannot be dropped (another
/// user's, or in use on a server before 13) is a warning, not a reason to stop.
async fn drop_stale(client: &tokio_postgres::Client, now: u64) -> Vec<String> {
    let prefixes: Vec<String> = PREFIXES.iter().map(|p| p.to_string()).collect();
    let names: Vec<String> = match client
        .query(
            "SELECT datname::text FROM pg_catalog.pg_database WHERE strpos(datname::text, $1) = 1 OR strpos(datname::text, $2) = 1 ORDER BY 1",
            &[&prefixes[0], &prefixes[1]],
        )
        .await
    {
        Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
        Err(e) => {
            return vec![format!(
                "warning: listing leftover scratch databases: {}",
                pg_error_text(&e)
            )]
        }
    };
    let mut warnings = Vec::new();
    for name in names.iter().filter(|n| is_stale(n, now)) {
        if let Err(e) = drop_database(client, name).await {
            warnings.push(format!(
                "warning: could not drop the leftover scratch database {name}: {e}"
            ));
        }
    }
    warnings
}

impl Scratch {
    /// Drops the database. Called on every path once it exists, signals included (a second
    /// signal exits at once: the next rehearsal drops what that leaves).
    pub async fn drop(self) -> Result<(), String> {
        let work = async {
            let t = admin(&self.server).await.map_err(|e| format!("{e:#}"))?;
            drop_database(&t.client, &self.name).await
        };
        match tokio::time::timeout(OVERALL, work).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {OVERALL:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_creation_time() {
        let n = name_at(Purpose::Rehearsal, 1_700_000_000, 0xdead_beef);
        assert_eq!(n, "pgalign_rehearsal_1700000000_deadbeef");
        assert!(n.len() <= 63);
        assert_eq!(created_at(&n), Some(1_700_000_000));
        let m = name_at(Purpose::Files, u64::MAX, u32::MAX);
        assert_eq!(created_at(&m), Some(u64::MAX));
        assert!(m.starts_with("pgalign_scratch_") && m.len() <= 63, "{m}");
    }

    #[test]
    fn only_our_exact_pattern_is_ever_stale() {
        let now = 1_700_010_000;
        assert!(is_stale("pgalign_rehearsal_1700000000_x", now));
        assert!(is_stale("pgalign_scratch_1700000000_x", now));
        assert!(!is_stale("pgalign_rehearsal_1700009000_x", now), "fresh");
        for other in [
            "pgalign_rehearsal_1700000000",
            "pgalign_rehearsal_1700000000_",
            "pgalign_rehearsal__x",
            "pgalign_rehearsal_17000x0000_x",
            "pgalign_rehearsal_1700000000_X",
            "pgalign_rehearsal_1700000000_x_y",
            "pgalign_rehearsal_1700000000_x; DROP",
            "pgalign_rehearsal_1700000000_abcdefghijklmnopq",
            "pgalign_rehearsal_123456789012345678901_x",
            "my_pgalign_rehearsal_1700000000_x",
            "pgalign_scratch_1700000000_x_y",
            "pgalign_scratch1700000000_x",
            "app",
        ] {
            assert!(created_at(other).is_none(), "{other}");
            assert!(!is_stale(other, now), "{other}");
        }
    }
}
