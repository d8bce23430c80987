//! `pgalign apply --rehearse` / `--rehearse-on` / `--dry-run` against the real server: the plan
//! runs first on a scratch database holding TARGET's schema, which is always dropped, and a
//! plan that fails there never reaches TARGET.

mod common;

use common::*;
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

fn apply_cmd(s: &TempDb, t: &TempDb, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgalign"));
    c.args(["apply", "--source", &s.url(), "--target", &t.url()])
        .args(extra);
    c
}

fn run(mut c: Command) -> Output {
    c.output().expect("run pgalign")
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn pair(old: &str, new: &str) -> (TempDb, TempDb) {
    let t = TempDb::new("rehearse_t");
    let s = TempDb::new("rehearse_s");
    t.exec(old).unwrap();
    s.exec(new).unwrap();
    (t, s)
}

/// The databases on the server whose names start with `prefix` (a psql variable: psql quotes
/// it, and reads variables only from a script, not from `-c`).
fn databases_like(prefix: &str) -> Vec<String> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(bin("psql"))
        .args([
            "-X",
            "-At",
            "-h",
            &host(),
            "-p",
            &port(),
            "-U",
            &user(),
            "-d",
            "postgres",
        ])
        .args(["-v", &format!("p={prefix}"), "-v", "ON_ERROR_STOP=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run psql");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT datname FROM pg_database WHERE strpos(datname, :'p') = 1 ORDER BY 1;\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
    out(&o).lines().map(str::to_string).collect()
}

/// The scratch database a run names on stdout (`rehearsal: on the scratch database
/// user@host:port/NAME (...)`); asserts it is no longer on the server.
fn assert_scratch_dropped(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("rehearsal: on the scratch database "))
        .unwrap_or_else(|| panic!("no rehearsal in:\n{stdout}"));
    let name = line
        .split('/')
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .unwrap()
        .to_string();
    assert!(name.starts_with("pgalign_rehearsal_"), "{line}");
    assert!(
        databases_like(&name).is_empty(),
        "{name} is still there:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("rehearsal: dropped {name}")),
        "{stdout}"
    );
    name
}

/// Lines apply printed about TARGET itself (not the rehearsal's).
fn target_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| {
            l.starts_with("step ")
                || l.starts_with("committed ")
                || l.starts_with("rolled back ")
                || l.starts_with("done ")
        })
        .collect()
}

/// A type change with no cast fails whatever the rows: an empty scratch copy fails it too.
/// (Preflight would refuse it first; `--no-preflight` leaves it to the rehearsal.)
#[test]
fn a_plan_that_fails_in_rehearsal_never_reaches_target() {
    let (t, s) = pair(
        "CREATE TABLE t (id int PRIMARY KEY, v point); INSERT INTO t VALUES (1, point(1, 2));",
        "CREATE TABLE a_new (id int); CREATE TABLE t (id int PRIMARY KEY, v integer);",
    );
    let before = schema_of(&t);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let o = run(apply_cmd(
        &s,
        &t,
        &[
            "--allow-all-hazards",
            "--no-preflight",
            "--rehearse",
            "--report",
            report.to_str().unwrap(),
        ],
    ));
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    let e = err(&o);
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(
        e.starts_with("pgalign: error: rehearsal: step ")
            && e.contains("(alter table public.t): ERROR: cannot cast type point to integer")
            && e.contains("nothing was changed on target"),
        "{e}"
    );
    let stdout = out(&o);
    assert!(stdout.contains("rehearsal: FAILED"), "{stdout}");
    assert!(
        target_lines(&stdout).is_empty(),
        "TARGET was reached:\n{stdout}"
    );
    assert_scratch_dropped(&stdout);
    assert_eq!(schema_of(&t), before);
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["rehearsal"]["passed"], false, "{r}");
    assert!(r["rehearsal"]["error"]
        .as_str()
        .unwrap()
        .contains("cannot cast"));
    assert_eq!(r["steps"].as_array().unwrap().len(), 0, "{r}");

    // Without the rehearsal the same plan starts on TARGET (and rolls back there): the lines
    // above would have been printed.
    let o = run(apply_cmd(
        &s,
        &t,
        &["--allow-all-hazards", "--no-preflight"],
    ));
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(!target_lines(&out(&o)).is_empty(), "{}", out(&o));
}

/// A reviewed plan (`--plan FILE`) rehearses too, then applies; both reports show the
/// rehearsal's steps, times and verdict.
#[test]
fn a_good_reviewed_plan_rehearses_then_applies() {
    let (t, s) = pair(
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 100) g;",
        "CREATE TABLE t (id int PRIMARY KEY, v bigint, w text UNIQUE); CREATE INDEX t_v ON t (v);",
    );
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let o = pgalign(&[
        "plan",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--online",
        "--format",
        "json",
        "-o",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let (json, md) = (dir.path().join("r.json"), dir.path().join("r.md"));
    let o = pgalign(&[
        "apply",
        "--plan",
        plan.to_str().unwrap(),
        "--target",
        &t.url(),
        "--allow-all-hazards",
        "--rehearse",
        "--report",
        json.to_str().unwrap(),
        "--report-md",
        md.to_str().unwrap(),
    ]);
    let stdout = out(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}{}", err(&o));
    assert_scratch_dropped(&stdout);
    let passed = stdout
        .find("rehearsal: passed")
        .unwrap_or_else(|| panic!("{stdout}"));
    let first_on_target = stdout.find("\nstep 1/").expect("applied on TARGET");
    assert!(passed < first_on_target, "rehearsed after:\n{stdout}");
    assert!(stdout.contains("verification: target equals source"));

    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rh = &r["rehearsal"];
    assert_eq!(rh["passed"], true, "{r}");
    assert_eq!(rh["verification"], "target equals source", "{r}");
    let steps = rh["steps"].as_array().unwrap();
    assert_eq!(steps.len(), r["plan_steps"].as_u64().unwrap() as usize);
    assert!(steps
        .iter()
        .all(|s| s["status"] == "ok" && s["ms"].as_f64().is_some()));
    assert_eq!(r["verification"], "target equals source");
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(
        md.contains("Rehearsal on a scratch copy of TARGET's schema: ✅ passed"),
        "{md}"
    );
    assert!(md.contains("#### On TARGET"), "{md}");
}

/// `--rehearse-on` another server. A second server costs a cluster start; this is the same
/// server through another URL form (localhost, not the target's 127.0.0.1, and the
/// `postgres` database as the maintenance database), which takes the --rehearse-on path end to
/// end: its own connection parameters for CREATE/DROP DATABASE, pg_restore and apply.
#[test]
fn rehearse_on_another_server_url() {
    let (t, s) = pair(
        "CREATE TABLE t (id int PRIMARY KEY);",
        "CREATE TABLE t (id int PRIMARY KEY, note text); CREATE VIEW v AS SELECT id, note FROM t;",
    );
    let server = format!("postgres://{}@localhost:{}/postgres", user(), port());
    let o = run(apply_cmd(&s, &t, &["--rehearse-on", &server]));
    let stdout = out(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}{}", err(&o));
    assert!(
        stdout.contains(&format!(
            "rehearsal: on the scratch database {}@localhost:",
            user()
        )),
        "{stdout}"
    );
    assert_scratch_dropped(&stdout);
    assert!(stdout.contains("rehearsal: passed"), "{stdout}");
    assert!(stdout.contains("verification: target equals source"));

    // A dump file is no server to rehearse on: refused before anything runs.
    let o = run(apply_cmd(
        &s,
        &t,
        &["--rehearse-on", "fixtures/dumps/staging.sql"],
    ));
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("not a dump file"), "{}", err(&o));
}

/// A killed run leaves its scratch database; the next rehearsal drops those over an hour old
/// (by the time in their names), and keeps younger ones and names not exactly of that form.
#[test]
fn a_stale_scratch_database_is_dropped_a_fresh_one_kept() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let tag = format!("x{}", std::process::id());
    let stale = format!("pgalign_rehearsal_{}_{tag}", now - 7200);
    let fresh = format!("pgalign_rehearsal_{}_{tag}", now - 60);
    let other = format!("pgalign_rehearsal_{}_{tag}_keep", now - 7200);
    for db in [&stale, &fresh, &other] {
        admin(&format!("CREATE DATABASE {db}"));
    }
    let (t, s) = pair(
        "CREATE TABLE t (id int);",
        "CREATE TABLE t (id int, v int);",
    );
    let o = run(apply_cmd(&s, &t, &["--dry-run"]));
    let left: Vec<String> = [&stale, &fresh, &other]
        .iter()
        .filter(|n| databases_like(n).contains(n))
        .map(|n| n.to_string())
        .collect();
    for db in [&stale, &fresh, &other] {
        admin(&format!("DROP DATABASE IF EXISTS {db}"));
    }
    assert_eq!(o.status.code(), Some(0), "{}{}", out(&o), err(&o));
    assert_scratch_dropped(&out(&o));
    assert_eq!(left, vec![fresh, other]);
}

/// `--dry-run` is a rehearsal plus preflight: it never locks TARGET's tables beyond what
/// pg_dump and preflight read with (ACCESS SHARE). A session holding EXCLUSIVE on the table
/// (which blocks every ALTER TABLE, but not readers) does not stop it; the same plan for real
/// cannot get its lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_takes_no_lock_on_target() {
    let (t, s) = pair(
        "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 100) g;",
        "CREATE TABLE t (id int PRIMARY KEY, v bigint, w int); CREATE INDEX t_v ON t (v);",
    );
    let before = schema_of(&t);
    let conninfo = format!(
        "host={} port={} user={} dbname={}",
        host(),
        port(),
        user(),
        t.name
    );
    let (holder, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let flags = [
        "--allow-all-hazards",
        "--lock-timeout",
        "1s",
        "--lock-retries",
        "0",
    ];
    let dry = {
        let mut c = apply_cmd(&s, &t, &flags);
        c.arg("--dry-run");
        tokio::task::spawn_blocking(move || run(c)).await.unwrap()
    };
    let real = {
        let c = apply_cmd(&s, &t, &flags);
        tokio::task::spawn_blocking(move || run(c)).await.unwrap()
    };
    holder.batch_execute("ROLLBACK").await.unwrap();

    let stdout = out(&dry);
    assert_eq!(dry.status.code(), Some(0), "{stdout}{}", err(&dry));
    assert!(stdout.contains("rehearsal: passed"), "{stdout}");
    assert!(
        stdout.contains("dry run: the plan rehearsed cleanly; nothing was changed"),
        "{stdout}"
    );
    assert!(target_lines(&stdout).is_empty(), "{stdout}");
    assert_scratch_dropped(&stdout);

    assert_eq!(real.status.code(), Some(1), "{}", err(&real));
    assert!(
        err(&real).contains("could not get its lock"),
        "{}",
        err(&real)
    );
    assert_eq!(schema_of(&t), before);
}

/// SIGTERM while the rehearsal runs, as soon as its scratch database exists (in practice during
/// the restore, whose pg_restore is killed): the run stops with exit 1, the scratch database is
/// dropped all the same, TARGET is unchanged.
#[test]
fn a_signal_during_the_rehearsal_still_drops_the_scratch_database() {
    // Enough tables that the scratch database lives for a while (restore, steps, re-dump).
    let (t, s) = pair(
        "DO $$BEGIN FOR i IN 1..300 LOOP EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text)', i); END LOOP; END$$;",
        "DO $$BEGIN FOR i IN 1..300 LOOP EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, v text, w int)', i); END LOOP; END$$;",
    );
    let before = schema_of(&t);
    let mut child = apply_cmd(&s, &t, &["--rehearse"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // This run's own scratch database, as it names it (other tests of this file rehearse at
    // the same time: a new name in the server's list could be theirs).
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut seen = String::new();
    let scratch = loop {
        let Some(Ok(line)) = lines.next() else {
            panic!("no scratch database named on stdout:\n{seen}");
        };
        seen.push_str(&line);
        seen.push('\n');
        if let Some(rest) = line.strip_prefix("rehearsal: on the scratch database ") {
            let name = rest.split(' ').next().unwrap_or("");
            break name.rsplit('/').next().unwrap_or("").to_string();
        }
    };
    assert!(scratch.starts_with("pgalign_rehearsal_"), "{seen}");
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    seen.push_str(&rest.join("\n"));
    let o = child.wait_with_output().unwrap();
    let o = std::process::Output {
        stdout: seen.into_bytes(),
        ..o
    };
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    assert!(err(&o).contains("interrupted by SIGTERM"), "{}", err(&o));
    assert!(
        !databases_like(&scratch).contains(&scratch),
        "{scratch} is still there:\n{}",
        out(&o)
    );
    assert!(target_lines(&out(&o)).is_empty(), "{}", out(&o));
    assert_eq!(schema_of(&t), before);
}

/// A TARGET user without CREATEDB cannot rehearse on TARGET's server: exit 1 before TARGET is
/// touched, saying what to do; `--rehearse-on` a server where another user may create
/// databases rehearses, and the restore keeps TARGET's owner (the role exists there).
#[test]
fn without_createdb_the_error_says_to_rehearse_elsewhere() {
    let role = format!("pgalign_nocreatedb_{}", std::process::id());
    ensure_roles(std::slice::from_ref(&role));
    admin(&format!("ALTER ROLE {role} LOGIN NOCREATEDB"));
    let (t, s) = pair(
        &format!("GRANT ALL ON SCHEMA public TO {role}; SET ROLE {role}; CREATE TABLE t (id int);"),
        &format!("GRANT ALL ON SCHEMA public TO {role}; SET ROLE {role}; CREATE TABLE t (id int, v int);"),
    );
    let before = schema_of(&t);
    let target = format!("postgres://{role}@{}:{}/{}", host(), port(), t.name);
    let run_with = |extra: &[&str]| {
        run({
            let mut c = Command::new(env!("CARGO_BIN_EXE_pgalign"));
            c.args(["apply", "--source", &s.url(), "--target", &target])
                .args(extra);
            c
        })
    };
    let refused = run_with(&["--rehearse"]);
    let after_refused = schema_of(&t);
    let elsewhere = run_with(&[
        "--rehearse-on",
        &format!("postgres://{}@{}:{}/postgres", user(), host(), port()),
    ]);
    let after = t.exec("SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'v'");
    drop((t, s));
    admin(&format!("DROP ROLE {role}"));

    assert_eq!(refused.status.code(), Some(1), "{}", err(&refused));
    let e = err(&refused);
    assert!(
        e.contains("rehearsal: creating a scratch database on")
            && e.contains("permission denied")
            && e.contains("CREATEDB")
            && e.contains("--rehearse-on"),
        "{e}"
    );
    assert_eq!(after_refused, before);
    assert_eq!(
        elsewhere.status.code(),
        Some(0),
        "{}{}",
        out(&elsewhere),
        err(&elsewhere)
    );
    assert!(
        out(&elsewhere).contains("rehearsal: passed"),
        "{}",
        out(&elsewhere)
    );
    assert_eq!(after.unwrap().trim(), "1");
}

/// The real client tools' directory: PGALIGN_TEST_BINDIR, else the newest
/// /usr/lib/postgresql/*/bin (PATH's pg_restore may be Debian's wrapper script).
fn real_bindir() -> std::path::PathBuf {
    if let Ok(d) = std::env::var("PGALIGN_TEST_BINDIR") {
        if !d.is_empty() {
            return d.into();
        }
    }
    let mut dirs: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("/usr/lib/postgresql")
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_restore").is_file().then_some((major, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().expect("a PostgreSQL bin directory").1
}

/// A password in TARGET's URL reaches pg_restore through its environment, never its command
/// line, and appears in no output of a rehearsal, passing or failing. (The server trusts
/// local connections, so any password is accepted.)
#[test]
fn the_password_reaches_pg_restore_through_its_environment_only() {
    use std::os::unix::fs::PermissionsExt;
    let pw = format!("Rh{}pw_secret", std::process::id());
    let (t, s) = pair(
        "CREATE TABLE t (id int PRIMARY KEY, v point);",
        "CREATE TABLE t (id int PRIMARY KEY, v integer);",
    );
    let dir = tempfile::tempdir().unwrap();
    let real = real_bindir();
    let d = dir.path().display();
    let tools = [
        ("pg_dump", String::new()),
        (
            "pg_restore",
            format!(
                "{{ printf 'argv:'; for a in \"$@\"; do printf ' [%s]' \"$a\"; done; printf ' env:%s\\n' \"$PGPASSWORD\"; }} >> '{d}/calls'\n"
            ),
        ),
    ];
    for (tool, record) in tools {
        let p = dir.path().join(tool);
        let script = format!(
            "#!/bin/sh\n{record}exec '{}' \"$@\"\n",
            real.join(tool).display()
        );
        std::fs::write(&p, script).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let target = format!(
        "postgres://{}:{pw}@{}:{}/{}",
        user(),
        host(),
        port(),
        t.name
    );
    let pg_dump = dir.path().join("pg_dump");
    let o = pgalign(&[
        "apply",
        "--source",
        &s.url(),
        "--target",
        &target,
        "--rehearse",
        "--no-preflight",
        "--allow-all-hazards",
        "--pg-dump",
        pg_dump.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}{}", out(&o), err(&o));
    assert!(err(&o).contains("rehearsal: step 1"), "{}", err(&o));
    assert!(!out(&o).contains(&pw) && !err(&o).contains(&pw));
    let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(lines.len(), 1, "{calls}");
    let (argv, env) = lines[0].split_once(" env:").unwrap();
    assert!(!argv.contains(&pw), "{argv}");
    if argv.contains("[--file=-]") {
        // A pg_restore of 17 or later and an older server: pg_restore only prints the script
        // (pgalign runs it), it connects nowhere and gets no password.
        assert!(!argv.contains("dbname="), "{argv}");
        assert_eq!(env, "");
    } else {
        assert!(
            argv.contains("--single-transaction") && argv.contains("dbname=pgalign_rehearsal_"),
            "{argv}"
        );
        assert_eq!(env, pw);
    }
}
