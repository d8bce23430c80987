//! Trust at the edges (issue 13): no flag or edited plan makes pgalign run SQL it did not plan,
//! every wait is bounded, apply stops cleanly on a signal, and what it reports is what
//! committed. Each test runs the real binary against the real server.

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const OLD: &str = "CREATE TABLE canary (id int); INSERT INTO canary SELECT generate_series(1, 5); CREATE TABLE gone (id int); CREATE TABLE t (id int);";
const NEW: &str =
    "CREATE TABLE a_new (id int); CREATE TABLE canary (id int); CREATE TABLE t (id int, v int);";

fn pair(label: &str) -> (TempDb, TempDb) {
    let t = TempDb::new(&format!("edge_t_{label}"));
    let s = TempDb::new(&format!("edge_s_{label}"));
    t.exec(OLD).unwrap();
    s.exec(NEW).unwrap();
    (t, s)
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgalign"));
    c.args(args).env("NO_COLOR", "1");
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Exit 1 and exactly one line on stderr, without a panic.
fn assert_one_line_error(o: &Output, what: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "{what}: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{what}: not one line: {e}");
    assert!(!e.contains("panicked"), "{what}: {e}");
}

#[test]
fn sql_cannot_come_in_through_timeout_flags() {
    let (t, s) = pair("flags");
    let before = schema_of(&t);
    let (su, tu) = (s.url(), t.url());
    for (flag, value, extra) in [
        ("--lock-timeout", "1s'; DROP TABLE public.canary; --", ""),
        (
            "--statement-timeout",
            "0'; DELETE FROM public.canary; --",
            "",
        ),
        (
            "--statement-timeout",
            "0'; DELETE FROM public.canary; COMMIT; --",
            "--dry-run",
        ),
        ("--lock-wait", "nan", ""),
        ("--lock-wait", "inf", ""),
        ("--lock-wait", "1e30s", ""),
        ("--lock-timeout", "-5s", ""),
        ("--lock-timeout", "0", ""),
        ("--lock-retries", "4294967295", ""),
        ("--dump-lock-timeout", "10 fortnights", ""),
        (
            "--preflight-timeout",
            "30s'; DELETE FROM public.canary; --",
            "",
        ),
        ("--preflight-timeout", "0", ""),
        ("--preflight-timeout", "30", ""),
    ] {
        // `--flag=value`: a value starting with '-' is still the flag's.
        let flag_value = format!("{flag}={value}");
        let mut args = vec![
            "apply",
            "--source",
            &su,
            "--target",
            &tu,
            "--allow-all-hazards",
            &flag_value,
        ];
        if !extra.is_empty() {
            args.push(extra);
        }
        let o = cmd(&args).output().unwrap();
        assert_one_line_error(&o, &format!("{flag} {value:?}"));
        assert!(stderr(&o).contains(flag), "{flag}: {}", stderr(&o));
        assert_eq!(t.exec("SELECT count(*) FROM canary").unwrap().trim(), "5");
        assert_eq!(schema_of(&t), before, "{flag} {value:?} changed the target");
    }
    // Plan renders the typed value, whatever spelling was given.
    let o = cmd(&[
        "plan",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--lock-timeout",
        "1.5s",
        "--statement-timeout",
        "2m",
    ])
    .output()
    .unwrap();
    let sql = String::from_utf8_lossy(&o.stdout);
    assert!(
        sql.contains("SET LOCAL lock_timeout = '1500ms';")
            && sql.contains("SET LOCAL statement_timeout = '2min';"),
        "{sql}"
    );
}

#[test]
fn usage_errors_exit_1_on_one_line() {
    for args in [
        vec!["plan", "--no-such-flag"],
        vec!["plan", "--format", "yaml"],
        vec!["diff", "--color", "sometimes"],
        vec!["frobnicate"],
        vec!["apply", "--allow-hazards", "data-loss,everything"],
        vec!["plan", "--sslmode", "maybe"],
    ] {
        let o = cmd(&args).output().unwrap();
        assert_one_line_error(&o, &args.join(" "));
        assert!(stderr(&o).starts_with("pgalign: error: "), "{}", stderr(&o));
    }
    let o = cmd(&["--help"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let o = cmd(&["--version"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
}

fn json_plan(s: &TempDb, t: &TempDb, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("plan.json");
    let o = cmd(&[
        "plan",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--format",
        "json",
        "-o",
        path.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    path
}

#[test]
fn an_edited_plan_is_refused() {
    let (t, s) = pair("digest");
    let before = schema_of(&t);
    let dir = tempfile::tempdir().unwrap();
    let path = json_plan(&s, &t, dir.path());
    let text = std::fs::read_to_string(&path).unwrap();
    let plan: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(plan["digest"].as_str().unwrap().len(), 64);
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 6] = [
        ("sql", |p| {
            let sql = p["steps"][0]["sql"].as_str().unwrap().to_string();
            p["steps"][0]["sql"] = (sql + "\nDELETE FROM public.canary;").into();
        }),
        ("timeout", |p| p["steps"][0]["lock_timeout"] = "1h".into()),
        ("hazards", |p| {
            let steps = p["steps"].as_array_mut().unwrap();
            let drop = steps
                .iter_mut()
                .find(|s| s["hazards"].to_string().contains("data-loss"))
                .expect("the plan drops table gone");
            drop["hazards"] = serde_json::json!([]);
        }),
        ("transactional", |p| {
            p["steps"][0]["transactional"] = false.into()
        }),
        ("fingerprint", |p| {
            p["source_fingerprint"] = "0".repeat(64).into()
        }),
        ("version", |p| p["pgalign_version"] = "0.0.1".into()),
    ];
    for (what, edit) in edits {
        let mut p = plan.clone();
        edit(&mut p);
        let edited = dir.path().join(format!("{what}.json"));
        std::fs::write(&edited, serde_json::to_string_pretty(&p).unwrap()).unwrap();
        let o = cmd(&[
            "apply",
            "--plan",
            edited.to_str().unwrap(),
            "--target",
            &t.url(),
            "--allow-all-hazards",
        ])
        .output()
        .unwrap();
        assert_one_line_error(&o, what);
        let e = stderr(&o);
        assert!(e.contains("plan again"), "{what}: {e}");
        assert_eq!(schema_of(&t), before, "{what}: the edited plan ran");
    }
    // The plan as written applies.
    let o = cmd(&[
        "apply",
        "--plan",
        path.to_str().unwrap(),
        "--target",
        &t.url(),
        "--allow-all-hazards",
    ])
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Holds a lock (`ACCESS EXCLUSIVE`, `EXCLUSIVE`) on `table` in `db` until the returned child
/// is killed.
fn hold_lock(db: &TempDb, table: &str, mode: &str) -> std::process::Child {
    let mut c = Command::new(bin("psql"))
        .args([
            "-X",
            "-q",
            "-h",
            &host(),
            "-p",
            &port(),
            "-U",
            &user(),
            "-d",
            &db.name,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    let stdin = c.stdin.as_mut().unwrap();
    writeln!(
        stdin,
        "BEGIN; LOCK TABLE {table} IN {mode} MODE; SELECT pg_sleep(120);"
    )
    .unwrap();
    stdin.flush().unwrap();
    // Until the lock is held.
    let start = Instant::now();
    while db
        .exec(&format!(
            "SELECT count(*) FROM pg_locks WHERE relation = '{table}'::regclass AND mode = '{}Lock' AND granted",
            // ACCESS EXCLUSIVE -> AccessExclusive
            mode.split(' ')
                .map(|w| w[..1].to_string() + &w[1..].to_lowercase())
                .collect::<String>()
        ))
        .unwrap()
        .trim()
        != "1"
    {
        assert!(start.elapsed() < Duration::from_secs(20), "lock never held");
        std::thread::sleep(Duration::from_millis(50));
    }
    c
}

#[test]
fn a_locked_table_bounds_the_dump_and_names_the_holder() {
    let (t, s) = pair("dumplock");
    let mut holder = hold_lock(&t, "public.canary", "ACCESS EXCLUSIVE");
    let start = Instant::now();
    let o = cmd(&[
        "apply",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--allow-all-hazards",
        "--dump-lock-timeout",
        "2s",
    ])
    .output()
    .unwrap();
    let took = start.elapsed();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_one_line_error(&o, "locked table");
    let e = stderr(&o);
    assert!(took < Duration::from_secs(30), "waited {took:?}: {e}");
    assert!(
        e.contains("public.canary") && e.contains("by pid ") && e.contains("--dump-lock-timeout"),
        "{e}"
    );
}

#[test]
fn an_unwritable_report_stops_apply_before_any_change() {
    let (t, s) = pair("report");
    let before = schema_of(&t);
    let o = cmd(&[
        "apply",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--allow-all-hazards",
        "--report",
        "/nonexistent/dir/r.json",
    ])
    .output()
    .unwrap();
    assert_one_line_error(&o, "report");
    assert!(stderr(&o).contains("nothing was changed"), "{}", stderr(&o));
    assert_eq!(schema_of(&t), before);
}

#[test]
fn a_failed_apply_reports_rolled_back_steps_not_ok() {
    // t.v's new NOT NULL fails on the NULL row, after the steps before it ran.
    let t = TempDb::new("edge_t_rolled");
    let s = TempDb::new("edge_s_rolled");
    t.exec("CREATE TABLE t (id int, v int); INSERT INTO t VALUES (1, NULL);")
        .unwrap();
    s.exec("CREATE TABLE a_new (id int); CREATE TABLE t (id int, v int NOT NULL);")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let o = cmd(&[
        "apply",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--allow-all-hazards",
        // Preflight would refuse it before any step ran (tests/preflight.rs).
        "--no-preflight",
        "--report",
        report.to_str().unwrap(),
    ])
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let statuses: Vec<&str> = r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert!(!statuses.contains(&"ok"), "{statuses:?}");
    assert!(statuses.contains(&"rolled back"), "{statuses:?}");
    assert!(
        statuses.iter().any(|s| s.starts_with("failed: ")),
        "{statuses:?}"
    );
    assert_eq!(r["groups_committed"], 0);
}

/// SIGTERM (then SIGINT) while a step waits for a lock: the statement is cancelled, the
/// transaction rolled back, temporary files removed, and the output shows the steps that ran.
#[test]
fn a_signal_during_apply_rolls_back_and_says_so() {
    for signal in ["TERM", "INT"] {
        let (t, s) = pair(&format!("sig{signal}"));
        let before = schema_of(&t);
        let tmp = tempfile::tempdir().unwrap();
        // The new table a_new is created first; then altering t waits for t's lock.
        let mut child = cmd(&[
            "apply",
            "--source",
            &s.url(),
            "--target",
            &t.url(),
            "--allow-all-hazards",
            "--lock-timeout",
            "60s",
        ])
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        // EXCLUSIVE lets pg_dump read t (ACCESS SHARE) but keeps ALTER TABLE waiting.
        let mut holder = hold_lock(&t, "public.t", "EXCLUSIVE");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        // The first step's line is out before the apply ends (after preflight's lines).
        let mut first = String::new();
        loop {
            first.clear();
            if out.read_line(&mut first).unwrap() == 0 || !first.starts_with("preflight: ") {
                break;
            }
        }
        assert!(first.starts_with("step 1/"), "{first}");
        let pid = child.id().to_string();
        assert!(Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap()
            .success());
        let o = child.wait_with_output().unwrap();
        let _ = holder.kill();
        let _ = holder.wait();
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{e}");
        assert!(
            e.contains(&format!("interrupted by SIG{signal}")) && e.contains("rolled back"),
            "{e}"
        );
        assert_eq!(schema_of(&t), before, "SIG{signal}: the target changed");
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "temporary files left behind"
        );
    }
}

/// While pg_dump runs (here: waits for a lock), its temporary files are private, and a
/// SIGTERM removes them.
#[test]
fn temporary_dumps_are_private_and_removed_on_a_signal() {
    use std::os::unix::fs::PermissionsExt;
    let (t, s) = pair("tmpfiles");
    let mut holder = hold_lock(&t, "public.canary", "ACCESS EXCLUSIVE");
    let tmp = tempfile::tempdir().unwrap();
    let child = cmd(&["plan", "--source", &s.url(), "--target", &t.url()])
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let dir = loop {
        let found = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("schema.dump").exists());
        if let Some(d) = found {
            break d;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no dump started");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    assert_eq!(mode(&dir.join("schema.dump")), 0o600);
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let o = child.wait_with_output().unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    assert_one_line_error(&o, "SIGTERM during plan");
    assert!(
        stderr(&o).contains("interrupted by SIGTERM"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn a_schema_on_neither_side_is_an_error() {
    let (t, s) = pair("schema");
    let o = cmd(&[
        "diff",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--schema",
        "no_such_schema",
    ])
    .output()
    .unwrap();
    assert_one_line_error(&o, "--schema");
    assert!(stderr(&o).contains("no_such_schema"));
}
