//! The only place that touches stdout, stderr and exit codes.

use clap::Parser;
use std::io::{IsTerminal, Write};

fn main() {
    let cli = pgalign::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pgalign: cannot start: {e}");
            std::process::exit(1);
        }
    };
    let stdout = std::io::stdout();
    let tty = stdout.is_terminal();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = runtime.block_on(pgalign::run(cli, tty, &mut out));
    let flushed = out.flush();
    let code = match result {
        Ok(outcome) => {
            for m in &outcome.messages {
                eprintln!("{}", pgalign::endpoint::redact(m));
            }
            outcome.code
        }
        Err(e) => {
            // One line: what was being done, then why. Redacted once more here, whatever
            // produced it (a child's stderr, a library's message): no password reaches stderr.
            let msg = pgalign::endpoint::redact(&format!("{e:#}").replace('\n', " "));
            eprintln!("pgalign: error: {msg}");
            1
        }
    };
    if let Err(e) = flushed {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("pgalign: error: writing output: {e}");
            std::process::exit(1);
        }
    }
    std::process::exit(code);
}
