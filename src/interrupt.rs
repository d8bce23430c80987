//! SIGINT, SIGTERM and SIGHUP. The first one sets a flag and wakes whoever waits: before any
//! change, the command stops (its temporary files are removed as it unwinds); during apply, the
//! running statement is cancelled on the server and the open transaction rolled back.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;
use tokio::sync::Notify;

/// 0 while nothing arrived, else which signal (1 INT, 2 TERM, 3 HUP).
static SIGNAL: AtomicU8 = AtomicU8::new(0);

fn notify() -> &'static Notify {
    static N: OnceLock<Notify> = OnceLock::new();
    N.get_or_init(Notify::new)
}

/// Listens for the signals on the current runtime (call once, inside it).
pub fn install() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        let which = tokio::select! {
            _ = int.recv() => 1,
            _ = term.recv() => 2,
            _ = hup.recv() => 3,
        };
        SIGNAL.store(which, Ordering::SeqCst);
        notify().notify_waiters();
        // A second signal while pgalign rolls back is taken as "stop now".
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
            _ = hup.recv() => {},
        }
        std::process::exit(1);
    });
    Ok(())
}

/// Whether a signal arrived.
pub fn interrupted() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

/// The signal's name, for messages.
pub fn name() -> &'static str {
    match SIGNAL.load(Ordering::SeqCst) {
        1 => "SIGINT",
        2 => "SIGTERM",
        3 => "SIGHUP",
        _ => "a signal",
    }
}

/// Resolves once a signal has arrived (at once if one already has).
pub async fn wait() {
    let n = notify().notified();
    tokio::pin!(n);
    n.as_mut().enable();
    if interrupted() {
        return;
    }
    n.await;
}

/// Runs `f` unless a signal arrives first; then `f` is dropped (its children killed, its
/// temporary files removed) and the error says so.
pub async fn or_interrupted<T>(
    what: &str,
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        biased;
        _ = wait() => Err(anyhow::anyhow!("interrupted by {} while {what}", name())),
        r = f => r,
    }
}
