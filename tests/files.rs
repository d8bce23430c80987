//! Schema as code: SQL files as an endpoint, loaded into a scratch database on the test server
//! (`--scratch`), dumped, and dropped on every path (errors, timeouts, signals).
//!
//! Every test here holds SCRATCH while it runs: another test making scratch databases at the
//! same time would look like a leftover to the one that counts them.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SCRATCH: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    SCRATCH.lock().unwrap_or_else(|e| e.into_inner())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn server() -> String {
    format!("postgres://{}@{}:{}/postgres", user(), host(), port())
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Exit 1 and exactly one line on stderr, holding every one of `needles`.
fn assert_one_line_error(o: &Output, needles: &[&str]) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "not one line: {e}");
    for n in needles {
        assert!(e.contains(n), "{n:?} not in: {e}");
    }
}

/// The scratch databases on the test server now.
fn scratch_databases() -> Vec<String> {
    let db = TempDb {
        name: "postgres".into(),
    };
    let out = db
        .exec(
            "SELECT datname FROM pg_database WHERE datname LIKE 'pgalign\\_scratch\\_%' ORDER BY 1",
        )
        .unwrap();
    std::mem::forget(db);
    out.lines().map(str::to_string).collect()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// Fixtures' new.sql as SOURCE: planned against old.sql loaded in a database, applied and
/// verified by apply, then diffed again (exit 0). A handful of kinds, not all: each case costs
/// a scratch database and four dumps.
#[test]
fn fixture_sources_round_trip_through_a_scratch_database() {
    let _one = one_at_a_time();
    let scratch = server();
    for case in [
        "cast/create_cast",
        "column/type_int_to_bigint",
        "constraint/add_foreign_key",
        "owner/table_owner",
        "view/change_view_with_dependent_view",
    ] {
        let dir = repo().join("fixtures").join(case);
        ensure_roles(&fixture_roles(&dir));
        let target = TempDb::new(&format!("files_{case}"));
        target.load_file(&dir.join("old.sql")).unwrap();
        let source = dir.join("new.sql");
        let (src, tgt) = (source.to_str().unwrap(), target.url());
        let o = pgalign(&[
            "apply",
            "--source",
            src,
            "--target",
            &tgt,
            "--scratch",
            &scratch,
            "--allow-all-hazards",
        ]);
        assert_eq!(o.status.code(), Some(0), "{case}: {}", stderr(&o));
        assert!(
            stdout(&o).contains("verification: target equals source"),
            "{case}: {}",
            stdout(&o)
        );
        // apply verified against its own load of the files; a second load must agree.
        if case.starts_with("view/") {
            let o = pgalign(&[
                "diff",
                "--source",
                src,
                "--target",
                &tgt,
                "--scratch",
                &scratch,
            ]);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{case}: {}{}",
                stdout(&o),
                stderr(&o)
            );
        }
    }
}

/// A directory loads in its order file's order: sorted by name, the view would come before
/// its table and fail.
#[test]
fn a_directory_loads_in_the_order_its_file_lists() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "a_view.sql",
        "CREATE VIEW public.v AS SELECT id FROM public.t;\n",
    );
    write(d, "z/table.sql", "CREATE TABLE public.t (id int);\n");
    let target = TempDb::new("files_order");
    let (src, tgt, scratch) = (d.to_str().unwrap(), target.url(), server());
    let args = [
        "plan",
        "--source",
        src,
        "--target",
        &tgt,
        "--scratch",
        &scratch,
    ];
    let o = pgalign(&args);
    assert_one_line_error(
        &o,
        &[
            "a_view.sql:1: ERROR:",
            "relation \"public.t\" does not exist",
        ],
    );
    write(
        d,
        "load-order.txt",
        "# tables first\nz/table.sql\na_view.sql\n",
    );
    let o = pgalign(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let plan = stdout(&o);
    assert!(
        plan.contains("CREATE TABLE public.t") && plan.contains("CREATE VIEW public.v"),
        "{plan}"
    );
    // TARGET may be SQL files too (plan and diff; apply needs a database).
    let o = pgalign(&[
        "diff",
        "--source",
        src,
        "--target",
        src,
        "--scratch",
        &scratch,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = pgalign(&[
        "apply",
        "--source",
        &tgt,
        "--target",
        src,
        "--scratch",
        &scratch,
    ]);
    assert_one_line_error(&o, &["is SQL files: apply needs a database"]);
}

/// A syntax error, a missing extension and an endless loop: each one line naming the file and
/// line, exit 1, and no scratch database left; nor after a SIGINT during the load.
#[test]
fn bad_files_are_one_line_errors_and_leave_nothing_behind() {
    let _one = one_at_a_time();
    let before = scratch_databases();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let target = TempDb::new("files_bad");
    let (tgt, scratch) = (target.url(), server());
    let plan = |src: &str, extra: &[&str]| {
        let mut args = vec![
            "plan",
            "--source",
            src,
            "--target",
            &tgt,
            "--scratch",
            &scratch,
        ];
        args.extend_from_slice(extra);
        pgalign(&args)
    };

    let syntax = tempfile::tempdir().unwrap();
    write(syntax.path(), "a.sql", "CREATE TABLE public.a (id int);\n");
    let bad = write(
        syntax.path(),
        "b.sql",
        "CREATE TABLE public.b (id int);\n\nCREATE TABLEX public.c (id int);\n",
    );
    let o = plan(syntax.path().to_str().unwrap(), &[]);
    assert_one_line_error(
        &o,
        &[
            &format!("{bad}:3: ERROR:"),
            "syntax error at or near \"TABLEX\"",
        ],
    );

    let ext = write(d, "ext.sql", "CREATE EXTENSION nonexistent_ext;\n");
    let o = plan(&ext, &[]);
    assert_one_line_error(
        &o,
        &[
            &format!("{ext}:1: ERROR:"),
            "the extension nonexistent_ext is not installed",
        ],
    );

    let endless = write(
        d,
        "loop.sql",
        "SELECT 1;\nDO $$BEGIN LOOP END LOOP; END$$;\n",
    );
    let start = Instant::now();
    let o = plan(&endless, &["--scratch-timeout", "1s"]);
    assert_one_line_error(
        &o,
        &[
            &format!("{endless}:2: ERROR:"),
            "statement timeout",
            "--scratch-timeout 1s",
        ],
    );
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );

    let no_server = Command::new(env!("CARGO_BIN_EXE_pgalign"))
        .args(["plan", "--source", &ext, "--target", &tgt])
        .env_remove("PGALIGN_SCRATCH_URL")
        .output()
        .unwrap();
    assert_one_line_error(&no_server, &["ext.sql", "--scratch URL"]);
    assert_eq!(
        scratch_databases(),
        before,
        "a scratch database was left behind"
    );

    // SIGINT while the endless loop runs: the database is dropped before pgalign exits.
    let child = Command::new(env!("CARGO_BIN_EXE_pgalign"))
        .args([
            "plan",
            "--source",
            &endless,
            "--target",
            &tgt,
            "--scratch",
            &scratch,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while scratch_databases() == before {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no scratch database made"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let o = child.wait_with_output().unwrap();
    assert_one_line_error(&o, &["interrupted by SIGINT"]);
    assert_eq!(
        scratch_databases(),
        before,
        "SIGINT left a scratch database"
    );
}
