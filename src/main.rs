//! The only place that touches stdout, stderr and exit codes.

use clap::error::ErrorKind;
use clap::Parser;
use std::io::{self, IsTerminal, Write};

/// jemalloc, configured at build time (`.cargo/config.toml`): see Cargo.toml for why.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let cli = match pgalign::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => usage_error(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            say(&format!("pgalign: cannot start: {e}"));
            std::process::exit(1);
        }
    };
    // Progress goes to stderr: live lines (drawn by indicatif) only on a terminal.
    let live = io::stderr().is_terminal().then(|| {
        indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr())
    });
    pgalign::progress::install(cli.common().progress, live, say_redacted);
    let stdout = io::stdout();
    let tty = stdout.is_terminal();
    let mut out = io::BufWriter::new(Stdout {
        inner: stdout.lock(),
        closed: false,
    });
    let result = runtime.block_on(async {
        pgalign::interrupt::install().map_err(|e| anyhow::anyhow!("listening for signals: {e}"))?;
        pgalign::run(cli, tty, &mut out).await
    });
    let flushed = out.flush();
    // The reader went away (`pgalign plan | head -1`) and has what it wanted: exit 0 with
    // nothing on stderr, as ripgrep does. Only when stdout is the pipe that closed: another's
    // (pg_restore's) is an error.
    let reader_gone = out.get_ref().closed
        && match &result {
            Err(e) => e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            }),
            Ok(_) => matches!(&flushed, Err(e) if e.kind() == io::ErrorKind::BrokenPipe),
        };
    if reader_gone {
        std::process::exit(0);
    }
    let code = match result {
        Ok(outcome) => {
            for m in &outcome.messages {
                say(&pgalign::endpoint::redact(m));
            }
            outcome.code
        }
        Err(e) => {
            // One line: what was being done, then why. Redacted once more here, whatever
            // produced it (a child's stderr, a library's message): no password reaches stderr.
            let msg = pgalign::endpoint::redact(&format!("{e:#}").replace('\n', " "));
            say(&format!("pgalign: error: {msg}"));
            1
        }
    };
    if let Err(e) = flushed {
        if e.kind() != io::ErrorKind::BrokenPipe {
            say(&format!("pgalign: error: writing output: {e}"));
            std::process::exit(1);
        }
    }
    std::process::exit(code);
}

fn say_redacted(line: &str) {
    say(&pgalign::endpoint::redact(line));
}

/// One line on stderr. Not `eprintln!`, which panics when stderr is a closed pipe (Rust ignores
/// SIGPIPE, so the write fails instead of killing the process): a line nobody can read is lost,
/// and the exit code still tells.
fn say(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Stdout that notices its reader going away. The write that finds the pipe closed fails
/// (BrokenPipe), so that diff and plan stop there; later ones are dropped, as nothing could
/// read them, so that apply, which carries on, ends as it would have.
struct Stdout<W> {
    inner: W,
    closed: bool,
}

impl<W: Write> Stdout<W> {
    fn note(&mut self, e: &io::Error) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            self.closed = true;
        }
    }
}

impl<W: Write> Write for Stdout<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        self.inner.write(buf).inspect_err(|e| self.note(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        self.inner.flush().inspect_err(|e| self.note(e))
    }
}

/// `--help` and `--version` print as clap prints them (exit 0); every other command-line error
/// is an error like any other: one line on stderr, exit 1 (2 means "differences found").
fn usage_error(e: clap::Error) -> ! {
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        std::process::exit(0);
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        say("pgalign: error: a subcommand is needed: diff, plan, apply or dump (see pgalign --help)");
        std::process::exit(1);
    }
    let text = e.render().to_string();
    let mut parts: Vec<&str> = Vec::new();
    let mut in_usage = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("Usage:") {
            in_usage = true;
            continue;
        }
        if line.is_empty() {
            in_usage = false;
            continue;
        }
        if in_usage || line.starts_with("For more information") {
            continue;
        }
        parts.push(line);
    }
    let msg = parts.join(" ");
    let msg = msg.strip_prefix("error: ").unwrap_or(&msg);
    // clap repeats the value it refused: redacted like every other error.
    let msg = pgalign::endpoint::redact(msg);
    say(&format!("pgalign: error: {msg} (see pgalign --help)"));
    std::process::exit(1);
}
