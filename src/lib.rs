//! pgalign: compare two PostgreSQL schemas through pg_dump, write the migration, apply it
//! safely, and verify it. The pipeline: endpoint -> dump -> catalog -> diff -> plan -> render.

pub mod apply;
pub mod archive;
pub mod bytes;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod diff;
pub mod dump;
pub mod duration;
pub mod endpoint;
pub mod files;
pub mod fleet;
pub mod interrupt;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod render;
pub mod scratch;
pub mod secrets;
pub mod shards;
pub mod threads;
pub mod throwaway;

use cli::{Cli, Command};
use commands::Outcome;
use std::io::Write;

/// Runs one command; `out` is where its main output goes.
pub async fn run(cli: Cli, stdout_is_tty: bool, out: &mut impl Write) -> anyhow::Result<Outcome> {
    match &cli.command {
        // Nothing changes before apply: a signal stops diff and plan at once.
        Command::Diff(a) => {
            interrupt::or_interrupted("diffing", commands::diff::run(a, stdout_is_tty, out)).await
        }
        Command::Plan(a) => {
            interrupt::or_interrupted("planning", commands::plan::run(a, out)).await
        }
        Command::Apply(a) => commands::apply::run(a, out).await,
        Command::Dump(a) => {
            interrupt::or_interrupted("dumping to files", commands::dump_files::run(a)).await
        }
        Command::Fleet(f) => commands::fleet::run(f, out).await,
    }
}
