//! What pgalign is doing while it works: on a terminal, a live line per running stage (dumping
//! each side, reading, preflight check by check, apply step by step, verifying), with elapsed
//! time (`indicatif`); with `--progress plain` (CI logs), a line as each stage or check ends;
//! otherwise nothing, so that stderr carries only the outcome.
//!
//! `main` installs it once with where lines go (its own stderr writer) and, for the live form,
//! the draw target it made; the stages report to it from wherever they run. Every message is
//! redacted on its way out.

use crate::endpoint::redact;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Live lines when stderr is a terminal, nothing otherwise.
    Auto,
    /// Live lines (on a terminal).
    Live,
    /// A plain line on stderr as each stage or check ends (for CI logs).
    Plain,
    /// Nothing.
    None,
}

enum Sink {
    Live(MultiProgress),
    Plain(fn(&str)),
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Called once by `main`. `live` is the draw target for the live form (None when stderr is
/// not a terminal: `Auto` then shows nothing, `Live` falls back to nothing as well).
pub fn install(mode: Mode, live: Option<MultiProgress>, line: fn(&str)) {
    let sink = match (mode, live) {
        (Mode::Auto | Mode::Live, Some(m)) => Sink::Live(m),
        (Mode::Plain, _) => Sink::Plain(line),
        _ => return,
    };
    let _ = SINK.set(sink);
}

/// Runs `f` with the live lines cleared, for output that must not be drawn over.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    match SINK.get() {
        Some(Sink::Live(m)) => m.suspend(f),
        _ => f(),
    }
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// A stage while it runs; `done` ends it (dropped without `done`, it ends silently: the error
/// that stopped it says what happened).
pub struct Stage {
    name: String,
    bar: Option<ProgressBar>,
    started: Instant,
    total: Option<u64>,
    done: u64,
    /// Shown live only: its items already have lines of their own (apply's steps, on stdout).
    live_only: bool,
}

/// A stage of unknown length: `dumping target app@db/prod`.
pub fn stage(name: &str) -> Stage {
    start(name, None)
}

/// A stage of `total` items (checks, steps).
pub fn counted(name: &str, total: usize) -> Stage {
    start(name, Some(total as u64))
}

/// A stage of `total` items that print their own lines: a live bar, and no plain lines.
pub fn counted_live(name: &str, total: usize) -> Stage {
    let mut s = start(name, Some(total as u64));
    s.live_only = true;
    s
}

fn start(name: &str, total: Option<u64>) -> Stage {
    let name = redact(name);
    let bar = match SINK.get() {
        Some(Sink::Live(m)) => {
            let bar = match total {
                Some(n) => {
                    let b = ProgressBar::new(n);
                    b.set_style(
                        ProgressStyle::with_template(
                            "{prefix} [{bar:24}] {pos}/{len} {msg} ({elapsed})",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    b
                }
                None => {
                    let b = ProgressBar::new_spinner();
                    b.set_style(
                        ProgressStyle::with_template("{spinner} {prefix} ({elapsed})")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    b
                }
            };
            let bar = m.add(bar);
            bar.set_prefix(name.clone());
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        }
        _ => None,
    };
    Stage {
        name,
        bar,
        started: Instant::now(),
        total,
        done: 0,
        live_only: false,
    }
}

impl Stage {
    /// The item about to run (shown live; a check's or step's name).
    pub fn at(&self, what: &str) {
        if let Some(b) = &self.bar {
            b.set_message(redact(what));
        }
    }

    /// An item finished, `what` being how it ended: a live bar advances; a plain line says it.
    pub fn item(&mut self, what: &str, took: Duration) {
        self.done += 1;
        match (&self.bar, SINK.get()) {
            (Some(b), _) => b.inc(1),
            (None, Some(Sink::Plain(line))) if !self.live_only => {
                let of = self.total.map(|t| format!("/{t}")).unwrap_or_default();
                line(&format!(
                    "pgalign: {} {}{of}: {} ({})",
                    self.name,
                    self.done,
                    redact(what),
                    secs(took)
                ));
            }
            _ => {}
        }
    }

    /// The stage ended well.
    pub fn done(self) {
        if self.live_only {
            return;
        }
        if let Some(Sink::Plain(line)) = SINK.get() {
            line(&format!(
                "pgalign: {}: done in {}",
                self.name,
                secs(self.started.elapsed())
            ));
        }
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
