//! One schema of SOURCE compared as a schema of another name in TARGET (`--source-schema A
//! --target-schema B`, and a fleet's `schema=TENANT` members): SOURCE restored into a scratch
//! database on TARGET's server, schema A renamed to B there by the server (so every reference
//! it tracks follows: keys, grants, comments, dependencies; text it does not track, such as
//! function bodies, stays as written), dumped again; then both sides are read as schema B.
//! The scratch database is dropped on every path (a killed run's by the next one, by its age).

use super::{connect_params, find_tools};
use crate::apply;
use crate::catalog::quote_ident;
use crate::cli::Common;
use crate::dump::{self, Tools};
use crate::endpoint::{ConnParams, Endpoint, Side};
use crate::{interrupt, scratch};
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// SOURCE's archive at `source` with schema `template` renamed to `tenant`, made on `server`.
pub async fn renamed_source(
    c: &Common,
    source: &Path,
    server: &ConnParams,
    tools: &[Tools],
    (template, tenant): (&str, &str),
) -> Result<dump::Archive> {
    let tool = tools.first().context("no pg_dump found")?;
    let (scratch, _) = scratch::create(server, scratch::Purpose::Rehearsal)
        .await
        .map_err(|e| {
            anyhow!("creating a scratch database on {server} to rename SOURCE's schema {template} to {tenant} (the user needs CREATEDB): {e:#}")
        })?;
    let made = interrupt::or_interrupted("renaming SOURCE's schema", async {
        let opts = dump::RestoreOptions {
            no_owner: c.no_owner,
            no_privileges: c.no_privileges,
        };
        super::rehearse::restore(source, &scratch.conn, tool, opts)
            .await
            .context("restoring SOURCE into the scratch database")?;
        let t = apply::connect::connect(&scratch.conn).await?;
        let sql = format!(
            "ALTER SCHEMA {} RENAME TO {}",
            quote_ident(template),
            quote_ident(tenant)
        );
        // Bounded like the restore before it (--dump-timeout): a wait must end.
        tokio::time::timeout(tool.timeout.as_duration(), t.client.batch_execute(&sql))
            .await
            .map_err(|_| {
                anyhow!(
                    "renaming SOURCE's schema {template} to {tenant} did not finish within {}",
                    tool.timeout
                )
            })?
            .map_err(|e| {
                anyhow!(
                    "renaming SOURCE's schema {template} to {tenant}: {}",
                    apply::pg_error_text(&e)
                )
            })?;
        drop(t);
        dump::dump_archive(&scratch.conn, tool)
            .await
            .map_err(|e| anyhow!("dumping SOURCE with its schema renamed: {e}"))
    })
    .await;
    let _ = scratch.drop().await;
    made
}

/// What `--source-schema A --target-schema B` makes of the flags: SOURCE's renamed archive as
/// the source and schema B alone on both sides, with the archives that must outlive the load.
/// None when neither flag is given.
pub async fn mapped(c: &Common) -> Result<Option<(Common, Vec<dump::Archive>)>> {
    let (template, tenant) = match (&c.source_schema, &c.target_schema) {
        (None, None) => return Ok(None),
        (Some(a), Some(b)) => (a.as_str(), b.as_str()),
        _ => bail!("--source-schema and --target-schema go together: SOURCE's schema, and the TARGET schema it is compared with"),
    };
    let tgt_ep = Endpoint::resolve(c.target.as_deref(), Side::Target)?;
    let server = match &tgt_ep {
        Endpoint::Database(_) | Endpoint::Secret(_) => connect_params(&tgt_ep, c)
            .await
            .with_context(|| format!("reading target {tgt_ep}"))?
            .context("the target is not a database")?,
        _ => bail!("--target-schema needs TARGET to be a database: SOURCE's schema is renamed in a scratch database on its server"),
    };
    let tools = find_tools(c)?;
    let mut keep = Vec::new();
    let src_ep = Endpoint::resolve(c.source.as_deref(), Side::Source)?;
    let source = match &src_ep {
        Endpoint::DumpFile(p) => p.clone(),
        Endpoint::Database(_) | Endpoint::Secret(_) => {
            let conn = connect_params(&src_ep, c)
                .await
                .with_context(|| format!("reading source {src_ep}"))?
                .context("the source is not a database")?;
            let tool = tools.first().context("no pg_dump found")?;
            let a = dump::dump_archive(&conn, tool)
                .await
                .map_err(|e| anyhow!("dumping source {conn}: {e}"))?;
            let p = a.path().to_path_buf();
            keep.push(a);
            p
        }
        _ => bail!("--source-schema takes a database or a dump file as SOURCE"),
    };
    let renamed = renamed_source(c, &source, &server, &tools, (template, tenant)).await?;
    let mut m = c.clone();
    m.source = Some(renamed.path().display().to_string());
    m.schemas = vec![tenant.to_string()];
    m.source_schema = None;
    m.target_schema = None;
    keep.push(renamed);
    Ok(Some((m, keep)))
}
