//! Preflight on the real server: for each kind of check, TARGET holds rows that would make the
//! step fail (or that it loses); `plan` shows the finding with the right count, and `apply`
//! refuses before its first change, leaving TARGET's schema and rows as they were, having taken
//! no lock on a table but ACCESS SHARE. A clean TARGET applies.

mod common;

use common::*;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn pair(old: &str, new: &str) -> (TempDb, TempDb) {
    let t = TempDb::new("pf_t");
    let s = TempDb::new("pf_s");
    t.exec(old).unwrap();
    s.exec(new).unwrap();
    (t, s)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// `pgalign plan` between the two databases, with `extra` flags; must succeed.
fn plan(s: &TempDb, t: &TempDb, extra: &[&str]) -> String {
    let (su, tu) = (s.url(), t.url());
    let mut args = vec!["plan", "--source", &su, "--target", &tu];
    args.extend_from_slice(extra);
    let o = pgalign(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    stdout(&o)
}

fn apply(s: &TempDb, t: &TempDb, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgalign"))
        .args(["apply", "--source", &s.url(), "--target", &t.url()])
        .arg("--allow-all-hazards")
        .args(extra)
        .output()
        .expect("run pgalign")
}

/// A dump with the per-run `\restrict` keys removed: equal dumps mean an unchanged schema.
fn schema_of(db: &TempDb) -> String {
    db.dump(&[])
        .lines()
        .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `-- preflight:` lines of a plan script.
fn findings(plan: &str) -> Vec<&str> {
    plan.lines()
        .filter(|l| l.starts_with("-- preflight: "))
        .collect()
}

/// Asserts the plan has a line containing every part, and returns it.
fn finding<'a>(plan: &'a str, parts: &[&str]) -> &'a str {
    findings(plan)
        .into_iter()
        .find(|l| parts.iter().all(|p| l.contains(p)))
        .unwrap_or_else(|| panic!("no preflight line with {parts:?} in:\n{plan}"))
}

/// Apply refuses: exit 1, one line naming the step and what it meets, nothing changed.
fn assert_refused(s: &TempDb, t: &TempDb, extra: &[&str], parts: &[&str], rows: &str) {
    let before = schema_of(t);
    let rows_before = t.exec(rows).unwrap();
    let o = apply(s, t, extra);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    assert!(e.contains("refused by preflight"), "{e}");
    assert!(e.contains("nothing was changed"), "{e}");
    for p in parts {
        assert!(e.contains(p), "{p:?} not in {e}");
    }
    assert_eq!(schema_of(t), before, "the schema changed");
    assert_eq!(t.exec(rows).unwrap(), rows_before, "the rows changed");
}

#[test]
fn set_not_null_meets_nulls() {
    let (t, s) = pair(
        "CREATE TABLE t (id int PRIMARY KEY, email text);
         INSERT INTO t VALUES (1, NULL), (2, 'b@x'), (3, NULL);",
        "CREATE TABLE t (id int PRIMARY KEY, email text NOT NULL);",
    );
    let p = plan(&s, &t, &[]);
    finding(
        &p,
        &["WILL FAIL: SET NOT NULL on column email meets 2 rows with NULL (e.g. id=1, id=3)"],
    );
    assert!(
        p.contains("-- preflight: 1 check(s) on TARGET's rows, 1 finding(s), 1 step(s) WILL FAIL")
    );
    // The online form fails at its VALIDATE: the finding is on that step (2), not the NOT
    // VALID helper before it.
    let online = plan(&s, &t, &["--online"]);
    let step2 = online.split("-- step 2:").nth(1).unwrap();
    let step2 = step2.split("-- step 3:").next().unwrap();
    finding(step2, &["meets 2 rows with NULL"]);
    assert_refused(
        &s,
        &t,
        &[],
        &[
            "step 1 (alter table public.t)",
            "SET NOT NULL on column email meets 2 rows with NULL",
        ],
        "SELECT id, email FROM t ORDER BY id",
    );
    assert_refused(
        &s,
        &t,
        &["--online"],
        &["step 2 (alter table public.t)"],
        "SELECT id, email FROM t ORDER BY id",
    );
}

#[test]
fn a_not_null_column_without_default_meets_rows() {
    let (t, s) = pair(
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1234);",
        "CREATE TABLE t (id int, code text NOT NULL);",
    );
    let p = plan(&s, &t, &[]);
    finding(
        &p,
        &["WILL FAIL: ADD COLUMN code NOT NULL without a default, on a table with 1,234 rows"],
    );
    assert_refused(&s, &t, &[], &["1,234 rows"], "SELECT count(*) FROM t");
    // Empty, it applies.
    t.exec("DELETE FROM t").unwrap();
    let o = apply(&s, &t, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn new_keys_meet_duplicates_and_null_keys() {
    let (t, s) = pair(
        "CREATE TABLE t (id int, code text, a int, b int, email text);
         INSERT INTO t VALUES (1, 'x', 1, 1, 'A'), (1, 'x', 1, 1, 'a'), (NULL, 'y', 2, 2, 'b'),
                              (3, 'y', NULL, 1, 'c'), (4, NULL, NULL, 1, 'c'), (5, NULL, 2, 2, 'd');",
        "CREATE TABLE t (id int PRIMARY KEY, code text UNIQUE, a int, b int, email text);
         CREATE UNIQUE INDEX t_ab ON t (a, b);
         CREATE UNIQUE INDEX t_lower_email ON t (lower(email));",
    );
    let p = plan(&s, &t, &[]);
    // id: 1 twice, and one NULL.
    finding(
        &p,
        &[
            "WILL FAIL: PRIMARY KEY (id) meets 1 group of rows sharing a key (e.g. 1) and 1 row with a NULL in the key",
        ],
    );
    // code: 'x' and 'y' twice each; the NULLs are distinct.
    finding(&p, &["UNIQUE (code) meets 2 groups of rows sharing a key"]);
    // (a, b): (1, 1) twice and (2, 2) twice; rows with a NULL in it do not count.
    finding(&p, &["UNIQUE (a, b) meets 2 groups", "(1,1)"]);
    finding(
        &p,
        &["not checked: a unique index on an expression: its rows are not counted"],
    );
    assert_refused(
        &s,
        &t,
        &[],
        &[
            "PRIMARY KEY (id) meets 1 group",
            "UNIQUE (code) meets 2 groups",
        ],
        "SELECT * FROM t ORDER BY 1, 2, 3, 4, 5",
    );
}

#[test]
fn a_new_foreign_key_meets_orphans() {
    let (t, s) = pair(
        "CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p VALUES (1), (2);
         CREATE TABLE c (id int PRIMARY KEY, p_id int, q_id int);
         INSERT INTO c VALUES (1, 1, 1), (2, 9, 2), (3, NULL, 3), (4, 7, NULL), (5, 9, NULL);",
        "CREATE TABLE p (id int PRIMARY KEY);
         CREATE TABLE q (id int PRIMARY KEY);
         CREATE TABLE c (id int PRIMARY KEY, p_id int REFERENCES p (id), q_id int REFERENCES q (id));",
    );
    let p = plan(&s, &t, &[]);
    // 9, 7 and 9 have no parent; the NULL key is not checked (MATCH SIMPLE).
    finding(
        &p,
        &["WILL FAIL: FOREIGN KEY (p_id) REFERENCES public.p (id) meets 3 rows whose key matches no row there (e.g. "],
    );
    // q is created by the plan: every key is an orphan.
    finding(
        &p,
        &["FOREIGN KEY (q_id) REFERENCES public.q (id) meets 3 rows whose key matches no row there (the plan creates it)"],
    );
    assert_refused(
        &s,
        &t,
        &[],
        &["meets 3 rows"],
        "SELECT * FROM c ORDER BY id",
    );
}

#[test]
fn type_changes_that_cannot_convert() {
    // m goes to a domain over an enum: no cast from smallint, and a type the plan's own cast
    // list does not judge (an enum itself is refused when the plan is made), so the step is
    // written and preflight's probe is what finds it.
    let (t, s) = pair(
        "CREATE TYPE mood AS ENUM ('sad', 'ok'); CREATE DOMAIN mood_d AS mood;
         CREATE TABLE t (id int PRIMARY KEY, v text, m smallint, n numeric, s varchar(20));
         INSERT INTO t VALUES (1, '1', 1, 1.5, 'short'), (2, 'abc', NULL, 2, 'longer than 8'),
                              (3, 'x', NULL, 3, NULL);",
        "CREATE TYPE mood AS ENUM ('sad', 'ok'); CREATE DOMAIN mood_d AS mood;
         CREATE TABLE t (id int PRIMARY KEY, v integer, m mood_d, n integer, s varchar(8));",
    );
    let p = plan(&s, &t, &[]);
    finding(
        &p,
        &[
            "WILL FAIL: converting column v to integer fails on a value",
            "\"abc\"",
        ],
    );
    // No cast from smallint to an enum: whatever the rows.
    finding(
        &p,
        &["WILL FAIL: column m has no conversion to public.mood_d"],
    );
    // numeric 1.5 casts to integer (it rounds): no finding, although the input function
    // would refuse '1.5'.
    assert!(
        !p.lines()
            .any(|l| l.starts_with("-- preflight:") && l.contains("column n")),
        "{p}"
    );
    // A shorter string type cuts, without an error.
    finding(
        &p,
        &["cuts 1 value of column s to 8 characters (e.g. id=2)"],
    );
    assert_refused(
        &s,
        &t,
        &[],
        &[
            "converting column v to integer",
            "column m has no conversion",
        ],
        "SELECT * FROM t ORDER BY id",
    );
}

#[test]
fn drops_say_what_they_lose_and_do_not_block() {
    let (t, s) = pair(
        "CREATE TABLE gone (id int); INSERT INTO gone SELECT generate_series(1, 1234);
         CREATE TABLE t (id int, old text); INSERT INTO t VALUES (1, 'a'), (2, NULL), (3, 'c');
         CREATE TABLE empty (id int);",
        "CREATE TABLE t (id int);",
    );
    let p = plan(&s, &t, &[]);
    finding(&p, &["-- preflight: drops 1,234 rows"]);
    finding(&p, &["-- preflight: drops column old with 2 values"]);
    assert_eq!(findings(&p).len(), 3, "{p}");
    // Data loss is for the reviewer to allow (a hazard), not a failure: apply goes ahead.
    let o = apply(&s, &t, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("preflight: step "), "{out}");
    assert!(out.contains("drops 1,234 rows"), "{out}");
}

#[test]
fn a_clean_target_applies_and_json_carries_the_findings() {
    let (t, s) = pair(
        "CREATE TABLE p (id int PRIMARY KEY); INSERT INTO p VALUES (1);
         CREATE TABLE t (id int, email text, p_id int);
         INSERT INTO t VALUES (1, 'a', 1), (2, 'b', NULL);",
        "CREATE TABLE p (id int PRIMARY KEY);
         CREATE TABLE t (id int PRIMARY KEY, email text NOT NULL UNIQUE, p_id int REFERENCES p (id));",
    );
    let p = plan(&s, &t, &[]);
    assert_eq!(
        findings(&p),
        ["-- preflight: 5 check(s) on TARGET's rows, 0 finding(s)"],
        "{p}"
    );
    // JSON: checks on the steps (in the digest), findings beside the plan (not in it).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    let f = file.to_str().unwrap();
    plan(&s, &t, &["--format", "json", "-o", f]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(json["preflight"], serde_json::json!([]));
    // NOT NULL on id (the primary key's) and email, the two keys, the foreign key.
    let mut kinds: Vec<&str> = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["preflight"].as_array().into_iter().flatten())
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        ["duplicates", "duplicates", "nulls", "nulls", "orphans"]
    );
    // The reviewed plan runs its checks again: a NULL since is refused before any change.
    t.exec("INSERT INTO t VALUES (3, NULL, NULL)").unwrap();
    let before = schema_of(&t);
    let o = pgalign(&[
        "apply",
        "--plan",
        f,
        "--target",
        &t.url(),
        "--allow-all-hazards",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains(
            "step 2 (alter table public.t): SET NOT NULL on column email meets 1 row with NULL:"
        ),
        "{e}"
    );
    assert_eq!(schema_of(&t), before);
    // Without it, the plan applies.
    t.exec("DELETE FROM t WHERE id = 3").unwrap();
    let o = pgalign(&[
        "apply",
        "--plan",
        f,
        "--target",
        &t.url(),
        "--allow-all-hazards",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("preflight: 5 check(s) on TARGET's rows, 0 finding(s)"));
}

#[test]
fn hostile_names_are_counted_and_stay_names() {
    let table = "t\"; DELETE FROM canary; --";
    let column = "c'; TRUNCATE canary; /*";
    let q = |n: &str| format!("\"{}\"", n.replace('"', "\"\""));
    let (t, s) = pair(
        &format!(
            "CREATE TABLE canary (x int); INSERT INTO canary VALUES (1);
             CREATE TABLE {} (id int PRIMARY KEY, {} text);
             INSERT INTO {} VALUES (1, NULL), (2, NULL);",
            q(table),
            q(column),
            q(table)
        ),
        &format!(
            "CREATE TABLE canary (x int);
             CREATE TABLE {} (id int PRIMARY KEY, {} text NOT NULL);",
            q(table),
            q(column)
        ),
    );
    let p = plan(&s, &t, &[]);
    finding(&p, &["meets 2 rows with NULL (e.g. id=1, id=2)"]);
    assert_refused(
        &s,
        &t,
        &[],
        &["2 rows with NULL"],
        "SELECT count(*) FROM canary",
    );
    assert_eq!(t.exec("SELECT count(*) FROM canary").unwrap().trim(), "1");
}

/// While apply runs preflight and refuses, a watcher on the target database samples pg_locks
/// as fast as it can: pgalign's sessions hold or ask for no lock on the table but ACCESS
/// SHARE. (The table is large enough that preflight's scans are seen.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_refuses_before_locking_anything_but_access_share() {
    let (t, s) = pair(
        "CREATE TABLE t (id int PRIMARY KEY, v int);
         INSERT INTO t SELECT g, CASE WHEN g > 299700 THEN NULL ELSE g END FROM generate_series(1, 300000) g;
         ANALYZE t;",
        "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL UNIQUE);",
    );
    let (watch, conn) = tokio_postgres::connect(
        &format!(
            "host={} port={} user={} dbname={}",
            host(),
            port(),
            user(),
            t.name
        ),
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect");
    tokio::spawn(conn);
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let watcher = tokio::spawn(async move {
        let mut seen = std::collections::BTreeSet::new();
        let mut samples = 0;
        while !flag.load(Ordering::SeqCst) {
            let rows = watch
                .query(
                    "SELECT l.mode FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                      WHERE a.application_name = 'pgalign' AND l.locktype = 'relation'
                        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                        AND l.relation = 'public.t'::regclass",
                    &[],
                )
                .await
                .unwrap();
            seen.extend(rows.iter().map(|r| r.get::<_, String>(0)));
            samples += 1;
        }
        (seen, samples)
    });
    let (t, s) = tokio::task::spawn_blocking(move || {
        assert_refused(
            &s,
            &t,
            &[],
            &["SET NOT NULL on column v meets 300 rows with NULL"],
            "SELECT count(*), count(v) FROM t",
        );
        (t, s)
    })
    .await
    .unwrap();
    done.store(true, Ordering::SeqCst);
    let (seen, samples) = watcher.await.unwrap();
    eprintln!("{samples} samples of pg_locks; pgalign's locks on t: {seen:?}");
    assert!(
        seen.iter().all(|m| m == "AccessShareLock"),
        "pgalign took {seen:?} on t"
    );
    drop((t, s));
}

/// An index locked by another session (REINDEX holds ACCESS EXCLUSIVE on it, and SHARE on its
/// table, which pg_dump's ACCESS SHARE does not wait for): the query that plans over it waits
/// at most half of --preflight-timeout, and the check is reported "not checked", not an error.
#[test]
fn a_lock_wait_is_bounded_and_not_checked() {
    let (t, s) = pair(
        "CREATE TABLE p (id int PRIMARY KEY);
         CREATE TABLE c (id int, p_id int); INSERT INTO c VALUES (1, 1);",
        "CREATE TABLE p (id int PRIMARY KEY);
         CREATE TABLE c (id int, p_id int REFERENCES p (id));",
    );
    let holder = std::thread::spawn({
        let name = t.name.clone();
        move || {
            Command::new(bin("psql"))
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
                    &name,
                ])
                .args([
                    "-c",
                    "BEGIN; REINDEX INDEX public.p_pkey; SELECT pg_sleep(6); COMMIT;",
                ])
                .output()
                .unwrap()
        }
    });
    let start = Instant::now();
    while admin_query(&format!(
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
          WHERE d.datname = '{}' AND l.mode = 'AccessExclusiveLock' AND l.granted",
        t.name
    )) == "0"
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the lock was never taken"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    let p = plan(&s, &t, &["--preflight-timeout", "2s"]);
    let took = start.elapsed();
    finding(
        &p,
        &[
            "not checked: another session holds a lock on public.c (or a table it refers to)",
            "waited 1s",
        ],
    );
    assert!(took < Duration::from_secs(5), "plan took {took:?}");
    holder.join().unwrap();
}

#[test]
fn a_query_over_its_timeout_is_not_checked() {
    let (t, s) = pair(
        "CREATE TABLE t (id int, v int); INSERT INTO t SELECT g, g FROM generate_series(1, 300000) g;",
        "CREATE TABLE t (id int, v int NOT NULL);",
    );
    let p = plan(&s, &t, &["--preflight-timeout", "1ms"]);
    finding(
        &p,
        &["not checked: timed out after 1ms (--preflight-timeout)"],
    );
}

#[test]
fn dump_files_and_no_preflight_skip_it() {
    let (t, s) = pair(
        "CREATE TABLE t (id int, v int); INSERT INTO t VALUES (1, NULL);",
        "CREATE TABLE t (id int, v int NOT NULL);",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("target.sql");
    std::fs::write(&file, t.dump(&[])).unwrap();
    let o = pgalign(&[
        "plan",
        "--source",
        &s.url(),
        "--target",
        file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(findings(&stdout(&o)).is_empty());
    assert_eq!(
        stderr(&o).trim_end(),
        "note: preflight not run: the target is a dump file (there are no rows to look at)"
    );
    let p = plan(&s, &t, &["--no-preflight"]);
    assert!(findings(&p).is_empty(), "{p}");
}

/// One value from the admin database, as text.
fn admin_query(sql: &str) -> String {
    let out = Command::new(bin("psql"))
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
        .args(["-c", sql])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
