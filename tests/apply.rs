//! `pgalign apply` against the real server: all or nothing, lock-aware, hazard-gated, verified.

mod common;

use common::*;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn conninfo(db: &TempDb) -> String {
    format!(
        "host={} port={} user={} dbname={}",
        host(),
        port(),
        user(),
        db.name
    )
}

async fn session(db: &TempDb) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(&conninfo(db), tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    c
}

fn apply_cmd(s: &TempDb, t: &TempDb, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgalign"));
    c.args(["apply", "--source", &s.url(), "--target", &t.url()])
        .args(extra);
    c
}

fn run(mut c: Command) -> Output {
    c.output().expect("run pgalign")
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn pair(old: &str, new: &str) -> (TempDb, TempDb) {
    let t = TempDb::new("apply_t");
    let s = TempDb::new("apply_s");
    t.exec(old).unwrap();
    s.exec(new).unwrap();
    (t, s)
}

/// Waits until pgalign's own connection to `db` is waiting for a lock; returns its pid.
async fn wait_for_blocked_apply(watch: &tokio_postgres::Client, db: &str) -> i32 {
    let start = Instant::now();
    loop {
        let row = watch
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pgalign' AND wait_event_type = 'Lock' LIMIT 1",
                &[&db],
            )
            .await
            .unwrap();
        if let Some(r) = row {
            return r.get(0);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "apply never blocked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const OLD: &str = "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 100) g;";
const NEW: &str = "CREATE TABLE a_new (id int); CREATE TABLE t (id int PRIMARY KEY, v bigint, w int); CREATE INDEX t_v ON t (v);";

#[test]
fn a_failing_statement_changes_nothing() {
    // The new table is created first; then SET NOT NULL fails on the NULLs already there.
    let (t, s) = pair(
        "CREATE TABLE t (id int, v int); INSERT INTO t VALUES (1, NULL);",
        "CREATE TABLE a_new (id int); CREATE TABLE t (id int, v int NOT NULL);",
    );
    let before = schema_of(&t);
    // Without preflight (which would refuse the plan before it runs: tests/preflight.rs), the
    // statement fails on the server and rolls back.
    let o = run(apply_cmd(
        &s,
        &t,
        &["--allow-all-hazards", "--no-preflight"],
    ));
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let e = err(&o);
    assert!(
        e.contains("contains null values") && e.contains("nothing was changed"),
        "{e}"
    );
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert_eq!(schema_of(&t), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_connection_changes_nothing() {
    let (t, s) = pair(OLD, NEW);
    let before = schema_of(&t);
    let holder = session(&t).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let child = apply_cmd(&s, &t, &["--allow-all-hazards", "--lock-timeout", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let watch = session(&t).await;
    let pid = wait_for_blocked_apply(&watch, &t.name).await;
    watch
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let o = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(
        err(&o).contains("connection to the target was lost"),
        "{}",
        err(&o)
    );
    assert!(err(&o).contains("nothing was changed"), "{}", err(&o));
    assert_eq!(schema_of(&t), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_is_retried_then_fails_cleanly() {
    let (t, s) = pair(OLD, NEW);
    let before = schema_of(&t);
    let holder = session(&t).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let start = Instant::now();
    let o = tokio::task::spawn_blocking(move || {
        let o = run(apply_cmd(
            &s,
            &t,
            &[
                "--allow-all-hazards",
                "--lock-timeout",
                "200ms",
                "--lock-retries",
                "2",
            ],
        ));
        (o, t)
    })
    .await
    .unwrap();
    let (o, t) = o;
    let took = start.elapsed();
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let e = err(&o);
    assert!(
        e.contains("could not get its lock within lock_timeout 200ms after 3 tries"),
        "{e}"
    );
    assert!(e.contains("nothing was changed"), "{e}");
    // Three tries of 200 ms with 0.5 s and 1 s pauses between them: bounded, not hung.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert_eq!(schema_of(&t), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_released_between_tries_lets_apply_succeed() {
    let (t, s) = pair(OLD, NEW);
    let holder = session(&t).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        holder.batch_execute("ROLLBACK").await.unwrap();
    });
    let (o, t, s) = tokio::task::spawn_blocking(move || {
        let o = run(apply_cmd(
            &s,
            &t,
            &[
                "--allow-all-hazards",
                "--lock-timeout",
                "300ms",
                "--lock-retries",
                "5",
            ],
        ));
        (o, t, s)
    })
    .await
    .unwrap();
    release.await.unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("verification: target equals source"), "{out}");
    let again = pgalign(&["diff", "--source", &s.url(), "--target", &t.url()]);
    assert_eq!(again.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applies_at_once_never_interleave() {
    let (t, s) = pair(OLD, NEW);
    let holder = session(&t).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE")
        .await
        .unwrap();
    // The first apply takes pgalign's advisory lock and blocks on the table lock.
    let first = apply_cmd(&s, &t, &["--allow-all-hazards", "--lock-timeout", "60s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let watch = session(&t).await;
    wait_for_blocked_apply(&watch, &t.name).await;
    let second = run(apply_cmd(
        &s,
        &t,
        &["--allow-all-hazards", "--lock-wait", "1s"],
    ));
    assert_eq!(second.status.code(), Some(1), "{}", err(&second));
    assert!(
        err(&second).contains("another pgalign run is applying to this database"),
        "{}",
        err(&second)
    );
    holder.batch_execute("ROLLBACK").await.unwrap();
    let first = tokio::task::spawn_blocking(move || first.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", err(&first));
}

#[test]
fn a_reviewed_plan_is_refused_when_target_changed() {
    let (t, s) = pair(OLD, NEW);
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let p = plan.to_str().unwrap();
    let o = pgalign(&[
        "plan",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--format",
        "json",
        "-o",
        p,
    ]);
    assert!(o.status.success(), "{}", err(&o));
    t.exec("CREATE TABLE sneaky (id int)").unwrap();
    let o = pgalign(&[
        "apply",
        "--plan",
        p,
        "--target",
        &t.url(),
        "--allow-all-hazards",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("has changed since the plan"),
        "{}",
        err(&o)
    );
    t.exec("DROP TABLE sneaky").unwrap();
    let report = dir.path().join("report.json");
    let o = pgalign(&[
        "apply",
        "--plan",
        p,
        "--target",
        &t.url(),
        "--allow-all-hazards",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["verification"], "target equals source");
    assert!(r["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "ok"));
}

#[test]
fn dry_run_proves_the_plan_and_changes_nothing() {
    let (t, s) = pair(OLD, NEW);
    let before = schema_of(&t);
    let o = run(apply_cmd(&s, &t, &["--allow-all-hazards", "--dry-run"]));
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("rehearsal: passed"), "{out}");
    assert_eq!(schema_of(&t), before);
    // A plan that cannot run on TARGET's rows: the rehearsal's copy has none, so it is
    // preflight, the dry run's other half, that says so; still changing nothing.
    t.exec("INSERT INTO t VALUES (1000, NULL)").unwrap();
    s.exec("ALTER TABLE t ALTER COLUMN v SET NOT NULL").unwrap();
    let o = run(apply_cmd(&s, &t, &["--allow-all-hazards", "--dry-run"]));
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert!(err(&o).contains("refused by preflight"), "{}", err(&o));
    assert_eq!(schema_of(&t), before);
}

/// --online builds a unique constraint's index concurrently, then attaches it: a dry run
/// rehearses both (outside a transaction, as on TARGET), on the scratch copy only.
#[test]
fn an_online_dry_run_rehearses_the_concurrent_build_and_its_attach() {
    let old = "CREATE TABLE u (id integer PRIMARY KEY, code text); INSERT INTO u VALUES (1, 'a');";
    let new = "CREATE TABLE u (id integer PRIMARY KEY, code text, note text, CONSTRAINT u_code_key UNIQUE (code));";
    let (t, s) = pair(old, new);
    let before = schema_of(&t);
    let o = run(apply_cmd(
        &s,
        &t,
        &["--allow-all-hazards", "--online", "--dry-run"],
    ));
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let rehearsed: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("rehearsal: step ") && l.contains("u_code_key"))
        .collect();
    assert_eq!(
        rehearsed.len(),
        2,
        "the build and the attach are rehearsed:\n{out}"
    );
    assert!(
        out.contains("rehearsal: done step") && out.contains("(outside a transaction)"),
        "the build runs outside a transaction:\n{out}"
    );
    assert!(
        !out.lines().any(|l| l.starts_with("step ")),
        "nothing ran on TARGET:\n{out}"
    );
    assert_eq!(schema_of(&t), before);
}

/// A reader of stdout that has gone away ends diff and plan with exit 0; apply has changed
/// TARGET, and its exit code must still say that differences remain.
#[test]
fn a_closed_stdout_leaves_the_exit_code_of_apply() {
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;
    // Only an unsupported change: no step, so the first line apply writes is the verdict.
    let (t, s) = pair(
        "CREATE DOMAIN d AS int; CREATE TABLE t (x d);",
        "CREATE DOMAIN d AS bigint; CREATE TABLE t (x d);",
    );
    // A socket whose other end is closed: a write fails with EPIPE, as to a pipe whose reader
    // has gone.
    let (gone, stdout) = UnixStream::pair().unwrap();
    drop(gone);
    let mut c = apply_cmd(&s, &t, &["--allow-all-hazards"]);
    c.stdout(Stdio::from(OwnedFd::from(stdout)));
    let o = run(c);
    assert_eq!(o.status.code(), Some(2), "{}", err(&o));
    assert_eq!(err(&o), "");
}

/// Each hazard: refused (exit 3, named) when everything else is allowed, applied when it is too.
#[test]
fn each_hazard_gates() {
    ensure_roles(&[]);
    let cases: &[(&str, &str, &str, i32)] = &[
        (
            "data-loss",
            "CREATE TABLE t (id int, gone text);",
            "CREATE TABLE t (id int);",
            0,
        ),
        (
            "table-rewrite",
            "CREATE TABLE t (id int);",
            "CREATE TABLE t (id bigint);",
            0,
        ),
        (
            "access-exclusive-lock",
            "CREATE TABLE t (id int); CREATE INDEX t_i ON t (id);",
            "CREATE TABLE t (id int);",
            0,
        ),
        (
            "index-build",
            "CREATE TABLE t (id int);",
            "CREATE TABLE t (id int); CREATE INDEX t_i ON t (id);",
            0,
        ),
        (
            "validation-scan",
            "CREATE TABLE t (id int);",
            "CREATE TABLE t (id int NOT NULL);",
            0,
        ),
        (
            "type-rebuild",
            "CREATE TYPE e AS ENUM ('a', 'b', 'c'); CREATE TABLE t (x e);",
            "CREATE TYPE e AS ENUM ('a', 'c'); CREATE TABLE t (x e);",
            0,
        ),
        (
            "possible-rename",
            "CREATE TABLE old_name (id int, v text);",
            "CREATE TABLE new_name (id int, v text);",
            0,
        ),
        // Unsupported changes are not made: allowed, the rest applies and the residue shows.
        (
            "unsupported",
            "CREATE DOMAIN d AS int; CREATE TABLE t (x d);",
            "CREATE DOMAIN d AS bigint; CREATE TABLE t (x d);",
            2,
        ),
    ];
    for (hazard, old, new, code_when_allowed) in cases {
        let (t, s) = pair(old, new);
        let others: Vec<&str> = [
            "data-loss",
            "table-rewrite",
            "access-exclusive-lock",
            "index-build",
            "validation-scan",
            "type-rebuild",
            "possible-rename",
            "unsupported",
        ]
        .into_iter()
        .filter(|h| h != hazard)
        .collect();
        let allow = others.join(",");
        let before = schema_of(&t);
        let o = run(apply_cmd(&s, &t, &["--allow-hazards", &allow]));
        assert_eq!(o.status.code(), Some(3), "{hazard}: {}", err(&o));
        assert!(err(&o).contains(hazard), "{hazard}: {}", err(&o));
        assert!(
            err(&o).contains(&format!("--allow-hazards {hazard}")),
            "{hazard}: {}",
            err(&o)
        );
        assert_eq!(schema_of(&t), before, "{hazard}: refused but changed");
        let o = run(apply_cmd(
            &s,
            &t,
            &["--allow-hazards", &format!("{allow},{hazard}")],
        ));
        assert_eq!(
            o.status.code(),
            Some(*code_when_allowed),
            "{hazard}: {}",
            err(&o)
        );
    }
}

#[test]
fn unknown_hazard_names_are_errors() {
    let (t, s) = pair("CREATE TABLE t (id int);", "CREATE TABLE t (id int);");
    let o = run(apply_cmd(&s, &t, &["--allow-hazards", "data-los"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("unknown hazard \"data-los\""),
        "{}",
        err(&o)
    );
}

/// Clients read and write the table while `apply --online` changes it: none of their queries
/// fails. Prints the longest client wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_apply_under_client_load() {
    let (t, s) = pair(
        "CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p SELECT generate_series(1, 100);
         CREATE TABLE t (id serial PRIMARY KEY, p_id int, v int, email text);
         INSERT INTO t (p_id, v, email) SELECT g % 100 + 1, g, 'u' || g || '@x' FROM generate_series(1, 50000) g;",
        "CREATE TABLE p (id int PRIMARY KEY);
         CREATE TABLE t (id serial PRIMARY KEY, p_id int REFERENCES p (id), v int NOT NULL, email text UNIQUE);
         CREATE INDEX t_v ON t (v);",
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for k in 0..4 {
        let c = session(&t).await;
        let stop = stop.clone();
        clients.push(tokio::spawn(async move {
            let (mut errors, mut longest, mut n) = (0u32, Duration::ZERO, 0u64);
            let mut i: i64 = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let start = Instant::now();
                let r = if i % 3 == 0 {
                    c.execute(
                        "INSERT INTO t (p_id, v, email) VALUES ($1, $2, $3)",
                        &[&((i % 100 + 1) as i32), &(i as i32), &format!("c{k}-{i}@x")],
                    )
                    .await
                } else if i % 3 == 1 {
                    c.execute(
                        "UPDATE t SET v = v + 1 WHERE id = $1",
                        &[&((i % 50000 + 1) as i32)],
                    )
                    .await
                } else {
                    c.query(
                        "SELECT count(*) FROM t WHERE v = $1",
                        &[&((i % 1000) as i32)],
                    )
                    .await
                    .map(|r| r.len() as u64)
                };
                longest = longest.max(start.elapsed());
                n += 1;
                if let Err(e) = r {
                    errors += 1;
                    eprintln!("client {k}: {e}");
                }
            }
            (errors, longest, n)
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (o, t, s) = tokio::task::spawn_blocking(move || {
        let o = run(apply_cmd(
            &s,
            &t,
            &["--online", "--allow-hazards", "access-exclusive-lock"],
        ));
        (o, t, s)
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut errors, mut longest, mut queries) = (0, Duration::ZERO, 0);
    for c in clients {
        let (e, l, n) = c.await.unwrap();
        errors += e;
        longest = longest.max(l);
        queries += n;
    }
    println!("online apply under load: {queries} client queries, {errors} errors, longest client wait {longest:?}");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}\n{}",
        err(&o),
        String::from_utf8_lossy(&o.stdout)
    );
    assert_eq!(errors, 0);
    assert!(queries > 0);
    let again = pgalign(&["diff", "--source", &s.url(), "--target", &t.url()]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

/// An interrupted CREATE INDEX CONCURRENTLY leaves an INVALID index; the next apply rebuilds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_leftover_index_is_rebuilt() {
    let (t, s) = pair(
        "CREATE TABLE t (id int, v int); INSERT INTO t SELECT g, g % 7 FROM generate_series(1, 1000) g;",
        "CREATE TABLE t (id int, v int); CREATE UNIQUE INDEX t_v ON t (v);",
    );
    // A unique build over duplicate values fails and leaves the index INVALID.
    let c = session(&t).await;
    assert!(c
        .batch_execute("CREATE UNIQUE INDEX CONCURRENTLY t_v ON t (v)")
        .await
        .is_err());
    let invalid: bool = c
        .query_one(
            "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = 'public.t_v'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(invalid);
    c.batch_execute("DELETE FROM t WHERE id > 7").await.unwrap();
    let o = tokio::task::spawn_blocking(move || {
        let o = run(apply_cmd(&s, &t, &["--online", "--allow-all-hazards"]));
        (o, t)
    })
    .await
    .unwrap();
    let (o, t) = o;
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let c = session(&t).await;
    let valid: bool = c
        .query_one(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.t_v'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(valid);
}

/// `--online` on a partitioned table: PostgreSQL builds no index CONCURRENTLY there (and adds
/// no NOT VALID foreign key before 18), so its primary key, index and foreign key are built in
/// the plain form, which the plan says; its leaf partition's index is still built concurrently.
#[test]
fn online_keeps_the_plain_form_on_a_partitioned_table() {
    let tables = "CREATE TABLE r (id int PRIMARY KEY); \
        CREATE TABLE p (id int NOT NULL, at date NOT NULL, r int) PARTITION BY RANGE (at); \
        CREATE TABLE p1 PARTITION OF p FOR VALUES FROM ('2024-01-01') TO ('2025-01-01'); \
        CREATE TABLE leaf (v int);";
    let (t, s) = pair(
        &format!("{tables} ALTER TABLE p1 ADD CONSTRAINT p1_custom_pk PRIMARY KEY (id, at);"),
        &format!(
            "{tables} ALTER TABLE p ADD PRIMARY KEY (id, at); CREATE INDEX p_r ON p (r); \
             ALTER TABLE p ADD CONSTRAINT p_r_fk FOREIGN KEY (r) REFERENCES r (id); \
             CREATE INDEX leaf_v ON leaf (v);"
        ),
    );
    let o = pgalign(&[
        "plan",
        "--online",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
    ]);
    let plan = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(plan.contains("CREATE INDEX CONCURRENTLY leaf_v"), "{plan}");
    assert!(!plan.contains("CONCURRENTLY p_"), "{plan}");
    assert!(
        !plan.contains("p_r_fk FOREIGN KEY (r) REFERENCES public.r(id) NOT VALID"),
        "{plan}"
    );
    assert!(plan.contains("on a partitioned table"), "{plan}");
    let o = run(apply_cmd(&s, &t, &["--online", "--allow-all-hazards"]));
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let again = pgalign(&["diff", "--source", &s.url(), "--target", &t.url()]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
}

#[test]
fn a_column_dropped_and_one_alike_added_is_a_possible_rename() {
    let (t, s) = pair(
        "CREATE TABLE t (id int, full_name text);",
        "CREATE TABLE t (id int, display_name text);",
    );
    let all_but: &str = "data-loss,table-rewrite,access-exclusive-lock,index-build,validation-scan,type-rebuild,unsupported";
    let o = run(apply_cmd(&s, &t, &["--allow-hazards", all_but]));
    assert_eq!(o.status.code(), Some(3), "{}", err(&o));
    assert!(err(&o).contains("possible-rename"), "{}", err(&o));
    let o = pgalign(&["plan", "--source", &s.url(), "--target", &t.url()]);
    let plan = String::from_utf8_lossy(&o.stdout);
    assert!(
        plan.contains("column full_name of the same type is dropped: was it renamed?"),
        "{plan}"
    );
}

/// The helper CHECK constraints an online SET NOT NULL left on `t` (`pgalign_nn_*`).
async fn helper_checks(db: &TempDb) -> Vec<String> {
    session(db)
        .await
        .query(
            "SELECT conname::text FROM pg_constraint WHERE conrelid = 'public.t'::regclass AND conname LIKE 'pgalign_nn_%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// `--online` SET NOT NULL commits a NOT VALID helper CHECK, then validates it in a transaction
/// of its own. When validation fails on a NULL, apply removes the helper: it must not stay on
/// TARGET refusing NULLs, and TARGET's schema is what it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_online_not_null_leaves_no_helper_check() {
    let (t, s) = pair(
        "CREATE TABLE t (id int, v int); INSERT INTO t VALUES (1, 1), (2, NULL);",
        "CREATE TABLE t (id int, v int NOT NULL);",
    );
    let before = schema_of(&t);
    let (o, t) = tokio::task::spawn_blocking(move || {
        let o = run(apply_cmd(
            &s,
            &t,
            &["--online", "--allow-all-hazards", "--no-preflight"],
        ));
        (o, t)
    })
    .await
    .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    assert_eq!(helper_checks(&t).await, Vec::<String>::new(), "{}", err(&o));
    assert_eq!(schema_of(&t), before);
    let e = err(&o);
    assert!(e.contains("is violated by some row"), "{e}");
    assert!(
        e.contains("was removed (ALTER TABLE public.t DROP CONSTRAINT IF EXISTS pgalign_nn_v;)"),
        "{e}"
    );
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
}

/// When the helper cannot be removed, the error says so and gives the statement to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_helper_check_that_cannot_be_removed_is_named_with_its_fix() {
    let (t, s) = pair(
        "CREATE TABLE t (id int, v int); INSERT INTO t VALUES (1, 1), (2, NULL);",
        "CREATE TABLE t (id int, v int NOT NULL);",
    );
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.json");
    let p = plan.to_str().unwrap().to_string();
    let o = pgalign(&[
        "plan",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--online",
        "--lock-timeout",
        "300ms",
        "--format",
        "json",
        "-o",
        &p,
    ]);
    assert!(o.status.success(), "{}", err(&o));
    // The step that adds the helper holds its lock a while, so that another session can queue
    // for a lock the removal needs and VALIDATE does not (ACCESS SHARE): granted when that
    // step commits, it is held until apply has given up.
    // The edit is sealed again as pgalign would (apply refuses an edited plan otherwise).
    let mut sealed: pgalign::plan::Plan =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let first = &mut sealed.steps[0];
    assert!(first.sql.contains("pgalign_nn_v"));
    first.sql.push_str("SELECT pg_sleep(1);\n");
    sealed.seal();
    std::fs::write(&plan, serde_json::to_string(&sealed).unwrap()).unwrap();
    let url = t.url();
    let apply = tokio::task::spawn_blocking(move || {
        pgalign(&[
            "apply",
            "--plan",
            &p,
            "--target",
            &url,
            "--allow-all-hazards",
            "--no-preflight",
        ])
    });
    let watch = session(&t).await;
    let start = Instant::now();
    while watch
        .query_opt(
            "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pgalign' AND query LIKE '%pg_sleep%' AND state = 'active'",
            &[&t.name],
        )
        .await
        .unwrap()
        .is_none()
    {
        assert!(start.elapsed() < Duration::from_secs(30), "apply never slept");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let holder = session(&t).await;
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let o = apply.await.unwrap();
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
    let e = err(&o);
    assert!(e.contains("is violated by some row"), "{e}");
    assert!(
        e.contains("is still there (removing it failed: ")
            && e.contains("run ALTER TABLE public.t DROP CONSTRAINT IF EXISTS pgalign_nn_v;"),
        "{e}"
    );
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert_eq!(helper_checks(&t).await, vec!["pgalign_nn_v".to_string()]);
}
