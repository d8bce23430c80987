//! `pgalign diff`: what differs, one line per object, then the definitions side by side.

use super::{load, Outcome, Timings};
use crate::cli::{ColorChoice, DiffArgs, DiffFormat};
use crate::{diff, render};
use anyhow::Result;
use std::io::Write;
use std::time::Instant;

pub async fn run(args: &DiffArgs, stdout_is_tty: bool, out: &mut impl Write) -> Result<Outcome> {
    let mut timings = Timings::default();
    let loaded = load(&args.common, &mut timings).await?;
    let t = Instant::now();
    let d = diff::diff(&loaded.source, &loaded.target);
    super::validate(&loaded, &d)?;
    timings.lap("diff", t);
    let t = Instant::now();
    match args.format {
        DiffFormat::Json => render::diff_json(&d, &loaded.source, &loaded.target, out)?,
        DiffFormat::Text => {
            let color = match args.color {
                ColorChoice::Always => true,
                ColorChoice::Never => false,
                ColorChoice::Auto => stdout_is_tty && std::env::var_os("NO_COLOR").is_none(),
            };
            render::diff_text(&d, &loaded.source, &loaded.target, color, out)?
        }
    }
    timings.lap("render", t);
    // The process ends after this command: freeing two catalogs of ~100,000 blocks one by one
    // would only delay the exit (a tenth of a second at 10,000 tables).
    std::mem::forget(loaded.source);
    std::mem::forget(loaded.target);
    let mut messages = loaded.messages;
    if args.common.timings {
        messages.extend(timings.lines());
    }
    Ok(Outcome {
        code: if d.is_empty() { 0 } else { 2 },
        messages,
    })
}
