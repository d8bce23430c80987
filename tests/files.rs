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

/// No scratch database beyond `before` stays: another run's (another test binary, another
/// checkout on this server) lives a second or two; a leftover lives until dropped by hand.
fn assert_no_leftover(before: &[String], when: &str) {
    let start = Instant::now();
    loop {
        let now = scratch_databases();
        let new: Vec<&String> = now.iter().filter(|n| !before.contains(n)).collect();
        if new.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{when}: a scratch database was left behind: {new:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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
    // A fleet's SOURCE too: loaded once, dumped, dropped before the members run.
    let elsewhere = tempfile::tempdir().unwrap();
    let members = write(elsewhere.path(), "members.txt", &format!("one {tgt}\n"));
    let o = pgalign(&[
        "fleet",
        "diff",
        "--source",
        src,
        "--targets",
        &members,
        "--scratch",
        &scratch,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("1 differs"), "{}", stdout(&o));
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

    // A scratch server that does not answer: its password is in no error.
    let o = pgalign(&[
        "plan",
        "--source",
        &ext,
        "--target",
        &tgt,
        "--scratch",
        "postgres://u:S3cretPW42@127.0.0.1:1/db",
    ]);
    assert_one_line_error(&o, &["ext.sql", "127.0.0.1:1"]);
    assert!(!stderr(&o).contains("S3cret"), "{}", stderr(&o));

    assert_no_leftover(&before, "after the bad files");

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
    // psql runs once the scratch database exists.
    let start = Instant::now();
    while !runs_psql(child.id()) {
        assert!(start.elapsed() < Duration::from_secs(20), "no psql started");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let o = child.wait_with_output().unwrap();
    assert_one_line_error(&o, &["interrupted by SIGINT"]);
    assert_no_leftover(&before, "after SIGINT");
}

/// Whether process `pid` has a psql child.
fn runs_psql(pid: u32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // pid (comm) state ppid ...
        let Some((comm, rest)) = stat.split_once(") ") else {
            return false;
        };
        comm.ends_with("(psql") && rest.split(' ').nth(1) == Some(&pid.to_string())
    })
}

/// Processes whose command line names `dir` (a throwaway server's postgres and its children).
fn processes_under(dir: &Path) -> Vec<String> {
    let needle = dir.to_str().unwrap();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// Waits until a throwaway server runs under `tmp`; its directory.
fn wait_for_server(tmp: &Path) -> PathBuf {
    let start = Instant::now();
    loop {
        let running = std::fs::read_dir(tmp)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("data/postmaster.pid").exists() && p.join(".s.PGSQL.5432").exists());
        if let Some(d) = running {
            return d;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no throwaway server started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Without --scratch: a throwaway server of TARGET's major, on a Unix socket in a directory
/// of its own, gone after a plan, after a load failure, after a SIGINT, and (left by a
/// SIGKILL) after the next run.
#[test]
fn a_throwaway_server_is_started_and_removed_on_every_path() {
    let _one = one_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    // Reachable by the server's user when the tests run as root.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let files = tempfile::tempdir().unwrap();
    let ext = write(
        files.path(),
        "ext.sql",
        "CREATE EXTENSION nonexistent_ext;\n",
    );
    let endless = write(
        files.path(),
        "loop.sql",
        "DO $$BEGIN LOOP END LOOP; END$$;\n",
    );
    let source = repo().join("fixtures/column/type_int_to_bigint");
    let target = TempDb::new("files_throwaway");
    target.load_file(&source.join("old.sql")).unwrap();
    let tgt = target.url();
    let new_sql = source.join("new.sql");
    let cmd = |src: &str, extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pgalign"));
        c.args(["plan", "--source", src, "--target", &tgt])
            .args(extra)
            .env("TMPDIR", tmp.path())
            .env_remove("PGALIGN_SCRATCH_URL");
        c
    };
    let assert_gone = |when: &str| {
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "{when}: left {left:?}");
        let procs = processes_under(tmp.path());
        assert!(procs.is_empty(), "{when}: still running: {procs:?}");
    };

    let o = cmd(new_sql.to_str().unwrap(), &["--progress", "plain"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("starting a throwaway PostgreSQL 15 server"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("TYPE bigint"), "{}", stdout(&o));
    assert_gone("after a plan");

    // A role the files name is created on the throwaway server (it has none but postgres).
    ensure_roles(&["pgalign_files_owner".to_string()]);
    let owned = "CREATE TABLE public.owned (id int);\nALTER TABLE public.owned OWNER TO pgalign_files_owner;\n";
    target.exec(owned).unwrap();
    let with_owner = write(
        files.path(),
        "owned.sql",
        &format!("{}{owned}", std::fs::read_to_string(&new_sql).unwrap()),
    );
    let o = cmd(&with_owner, &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("TYPE bigint") && !stdout(&o).contains("OWNER"),
        "{}",
        stdout(&o)
    );
    assert_gone("after a plan that created a role");

    let o = cmd(&ext, &[]).output().unwrap();
    assert_one_line_error(&o, &[&format!("{ext}:1: ERROR:"), "nonexistent_ext"]);
    assert_gone("after a load failure");

    let o = cmd(&ext, &["--scratch-major", "9"]).output().unwrap();
    assert_one_line_error(&o, &["no PostgreSQL 9 server binaries", "--scratch URL"]);
    assert_gone("without binaries");

    let child = cmd(&endless, &[]).stderr(Stdio::piped()).spawn().unwrap();
    wait_for_server(tmp.path());
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let o = child.wait_with_output().unwrap();
    assert_one_line_error(&o, &["interrupted by SIGINT"]);
    assert_gone("after SIGINT");

    // SIGKILL leaves the server running; the next run stops and removes it.
    let mut child = cmd(&endless, &[]).stderr(Stdio::null()).spawn().unwrap();
    let dir = wait_for_server(tmp.path());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !processes_under(&dir).is_empty(),
        "the killed run's server is gone already"
    );
    let o = cmd(new_sql.to_str().unwrap(), &[]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_gone("after the run that follows a SIGKILL");
}
