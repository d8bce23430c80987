//! `pgalign plan`: the migration script (or the plan as JSON).

use super::{load, Outcome, Timings};
use crate::cli::{PlanArgs, PlanFormat};
use crate::{diff, plan, render};
use anyhow::{Context, Result};
use std::io::Write;
use std::time::Instant;

pub async fn run(args: &PlanArgs, out: &mut impl Write) -> Result<Outcome> {
    let mut timings = Timings::default();
    let mut loaded = load(&args.common, &mut timings).await?;
    let ahead = super::preflight::connect_ahead(&loaded);
    let t = Instant::now();
    let d = diff::diff(&loaded.source, &loaded.target);
    super::validate(&loaded, &d)?;
    timings.lap("diff", t);
    let t = Instant::now();
    let opts = super::plan_options(&args.common, &args.timeouts, args.online);
    let p = match args.format {
        PlanFormat::Json => plan::plan(&loaded.source, &loaded.target, &d, &opts),
        PlanFormat::Sql => plan::script(&loaded.source, &loaded.target, &d, &opts),
    };
    timings.lap("plan", t);
    let t = Instant::now();
    let mut messages = std::mem::take(&mut loaded.messages);
    let checked =
        super::preflight::for_plan(&args.preflight, &loaded, &p, ahead, &mut messages).await;
    if checked.is_some() {
        timings.lap("preflight", t);
    }
    let t = Instant::now();
    let mut buf = Vec::new();
    match args.format {
        PlanFormat::Sql => render::plan_sql_with(
            &p,
            &render::Header {
                source: &loaded.source_name,
                target: &loaded.target_name,
            },
            checked.as_ref(),
            &mut buf,
        )?,
        PlanFormat::Json => render::plan_json_with(&p, checked.as_ref(), &mut buf)?,
    }
    match &args.output {
        Some(path) => std::fs::write(path, &buf)
            .with_context(|| format!("writing the plan to {}", path.display()))?,
        None => out.write_all(&buf)?,
    }
    timings.lap("render", t);
    // The process ends after this command: freeing two catalogs of ~100,000 blocks one by one
    // would only delay the exit (a tenth of a second at 10,000 tables).
    std::mem::forget(loaded.source);
    std::mem::forget(loaded.target);
    if !p.unsupported.is_empty() {
        messages.push(format!(
            "warning: {} change(s) are not supported yet and are listed in the plan, not made: {}",
            p.unsupported.len(),
            p.unsupported
                .iter()
                .map(|u| u.object.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if args.common.timings {
        messages.extend(timings.lines());
    }
    Ok(Outcome {
        code: if args.exit_code && !p.is_empty() {
            2
        } else {
            0
        },
        messages,
    })
}
