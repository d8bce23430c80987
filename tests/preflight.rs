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

/// The plan as JSON: the findings preflight made (beside the plan), and the checks the steps
/// carry, by kind.
fn json_plan(s: &TempDb, t: &TempDb, extra: &[&str]) -> (Vec<serde_json::Value>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    let mut args = vec!["--format", "json", "-o", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    plan(s, t, &args);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let checks = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["preflight"].as_array().into_iter().flatten())
        .map(|c| c["check"].as_str().unwrap().to_string())
        .collect();
    (json["preflight"].as_array().unwrap().clone(), checks)
}

/// The JSON finding whose message contains `part`: its count.
fn json_count(findings: &[serde_json::Value], part: &str) -> u64 {
    let f = findings
        .iter()
        .find(|f| f["message"].as_str().unwrap().contains(part))
        .unwrap_or_else(|| panic!("no finding with {part:?} in {findings:#?}"));
    assert_eq!(f["verdict"], "will-fail", "{f:#}");
    f["count"].as_u64().unwrap()
}

#[test]
fn a_new_check_constraint_meets_rows_where_it_is_false() {
    let funcs = "CREATE TABLE canary (x int); INSERT INTO canary VALUES (1);
         CREATE FUNCTION valid(s text) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT s <> 'x' $$;";
    let (t, s) = pair(
        &format!(
            "{funcs}
             CREATE TABLE t (id int PRIMARY KEY, qty int, code text);
             INSERT INTO t VALUES (1, -1, 'a'), (2, 5, 'b'), (3, NULL, 'c'), (4, -3, 'toolong'),
                                  (5, 1, '''); DELETE FROM canary; --');"
        ),
        &format!(
            "{funcs}
             CREATE TABLE t (id int PRIMARY KEY, qty int CHECK (qty >= 0), code text,
                 CONSTRAINT code_short CHECK (char_length(code) <= 4),
                 CONSTRAINT \"no evil\" CHECK (code <> '''); DELETE FROM canary; --'),
                 CONSTRAINT code_valid CHECK (public.valid(code)));"
        ),
    );
    let p = plan(&s, &t, &[]);
    // -1 and -3 break it; the NULL passes, as PostgreSQL has it.
    finding(
        &p,
        &["WILL FAIL: CHECK constraint t_qty_check meets 2 rows where it is false (e.g. id=1, id=4)"],
    );
    finding(
        &p,
        &["CHECK constraint code_short meets 2 rows where it is false (e.g. id=4, id=5)"],
    );
    // The constraint's literal is a literal in preflight's query too.
    finding(
        &p,
        &["CHECK constraint \"no evil\" meets 1 row where it is false (e.g. id=5)"],
    );
    finding(
        &p,
        &["not checked: calls a function that is not immutable or not a builtin (public.valid)"],
    );
    assert!(
        p.contains("-- preflight: 4 check(s) on TARGET's rows, 4 finding(s), 3 step(s) WILL FAIL"),
        "{p}"
    );
    let (found, checks) = json_plan(&s, &t, &[]);
    assert_eq!(json_count(&found, "t_qty_check"), 2);
    assert_eq!(json_count(&found, "code_short"), 2);
    // In the order pg_dump lists the constraints.
    assert_eq!(
        checks,
        ["violations", "not-checked", "violations", "violations"]
    );
    // Online, the VALIDATE is what reads the rows: the finding is on it, not on the NOT VALID
    // constraint before it.
    let online = plan(&s, &t, &["--online"]);
    let step = |sql: &str| {
        online
            .split("\n-- step ")
            .find(|st| st.contains(sql))
            .unwrap_or_else(|| panic!("no step with {sql}:\n{online}"))
    };
    finding(
        step("VALIDATE CONSTRAINT t_qty_check"),
        &["t_qty_check meets 2 rows where it is false"],
    );
    assert!(
        findings(step("CHECK ((qty >= 0)) NOT VALID")).is_empty(),
        "{online}"
    );
    let rows = "SELECT * FROM t ORDER BY id";
    assert_refused(
        &s,
        &t,
        &[],
        &[
            "step 1 (alter table public.t): CHECK constraint code_short meets 2 rows",
            "step 4 (alter table public.t): CHECK constraint t_qty_check meets 2 rows",
        ],
        rows,
    );
    assert_refused(&s, &t, &["--online"], &["t_qty_check meets 2 rows"], rows);
    // A reviewed plan carries the expressions, and apply --plan runs them again.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    let f = file.to_str().unwrap();
    plan(&s, &t, &["--format", "json", "-o", f]);
    let before = schema_of(&t);
    let o = pgalign(&[
        "apply",
        "--plan",
        f,
        "--target",
        &t.url(),
        "--allow-all-hazards",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("t_qty_check meets 2 rows"),
        "{}",
        stderr(&o)
    );
    assert_eq!(schema_of(&t), before);
    assert_eq!(t.exec("SELECT count(*) FROM canary").unwrap().trim(), "1");
    // Rows that keep them: no finding, and the plan applies.
    t.exec("DELETE FROM t WHERE id = 5; UPDATE t SET qty = abs(qty), code = left(code, 4)")
        .unwrap();
    let p = plan(&s, &t, &[]);
    assert_eq!(
        findings(&p),
        [
            "-- preflight: 4 check(s) on TARGET's rows, 1 finding(s)",
            "-- preflight: not checked: calls a function that is not immutable or not a builtin (public.valid): preflight does not run it on TARGET's rows",
        ],
        "{p}"
    );
    let o = apply(&s, &t, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_domain_constraint_meets_values_that_break_it() {
    // `small` is a domain over `posint`: its column is checked too. t's own column named
    // `value` (all negative) is not what VALUE reads.
    let tables = "CREATE DOMAIN small AS posint;
         CREATE TABLE t (id int PRIMARY KEY, v posint, value int);
         CREATE TABLE u (k text PRIMARY KEY, w small);
         CREATE TABLE c (id int PRIMARY KEY, x code);";
    let (t, s) = pair(
        &format!(
            "CREATE DOMAIN posint AS int; CREATE DOMAIN code AS text; {tables}
             INSERT INTO t VALUES (1, -1, -5), (2, 3, -9), (3, NULL, -1);
             INSERT INTO u VALUES ('a', -7), ('b', 2);
             INSERT INTO c VALUES (1, NULL), (2, 'a'), (3, NULL);"
        ),
        &format!(
            "CREATE DOMAIN posint AS int CONSTRAINT pos CHECK (VALUE > 0);
             CREATE DOMAIN code AS text NOT NULL; {tables}"
        ),
    );
    let p = plan(&s, &t, &[]);
    finding(
        &p,
        &["WILL FAIL: ADD CONSTRAINT pos on domain public.posint meets 2 values that break it (1 in column v of public.t, 1 in column w of public.u; e.g. public.t id=1, public.u k=a)"],
    );
    finding(
        &p,
        &["WILL FAIL: SET NOT NULL on domain public.code meets 2 NULL values (2 in column x of public.c; e.g. public.c id=1, public.c id=3)"],
    );
    let (found, checks) = json_plan(&s, &t, &[]);
    assert_eq!(json_count(&found, "ADD CONSTRAINT pos"), 2);
    assert_eq!(json_count(&found, "SET NOT NULL on domain"), 2);
    assert_eq!(checks, ["domain-violations", "domain-violations"]);
    let rows = "SELECT * FROM t, u, c ORDER BY 1, 4, 6";
    assert_refused(
        &s,
        &t,
        &[],
        &["ADD CONSTRAINT pos on domain public.posint meets 2 values"],
        rows,
    );
    // Values that keep them: no finding, and the plan applies.
    t.exec("UPDATE t SET v = 1 WHERE id = 1; UPDATE u SET w = 1; UPDATE c SET x = 'z'")
        .unwrap();
    let p = plan(&s, &t, &[]);
    assert_eq!(
        findings(&p),
        ["-- preflight: 2 check(s) on TARGET's rows, 0 finding(s)"],
        "{p}"
    );
    let o = apply(&s, &t, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// PostgreSQL changes no constraint of a domain that a column uses inside an array, whatever
/// the values: preflight says so before the step is tried.
#[test]
fn a_domain_used_in_an_array_column_cannot_take_a_constraint() {
    let (t, s) = pair(
        "CREATE DOMAIN tag AS text; CREATE TABLE a (id int, tags tag[]);",
        "CREATE DOMAIN tag AS text CONSTRAINT nonempty CHECK (VALUE <> '');
         CREATE TABLE a (id int, tags tag[]);",
    );
    let p = plan(&s, &t, &[]);
    finding(
        &p,
        &["WILL FAIL: ADD CONSTRAINT nonempty on domain public.tag fails whatever the values: column tags of public.a holds the domain inside an array"],
    );
    assert_refused(
        &s,
        &t,
        &[],
        &["column tags of public.a"],
        "SELECT count(*) FROM a",
    );
}

#[test]
fn removed_enum_labels_meet_rows_holding_them() {
    let table = "CREATE TABLE t (id int PRIMARY KEY, m mood, hist mood[]);";
    let (t, s) = pair(
        &format!(
            "CREATE TYPE mood AS ENUM ('sad', 'meh', 'ok', 'it''s'); {table}
             INSERT INTO t VALUES (1, 'sad', '{{ok}}'), (2, 'meh', '{{ok,sad}}'), (3, 'ok', NULL),
                                  (4, 'it''s', '{{}}'), (5, NULL, '{{meh}}');"
        ),
        &format!("CREATE TYPE mood AS ENUM ('ok', 'happy'); {table}"),
    );
    let p = plan(&s, &t, &[]);
    finding(
        &p,
        &["WILL FAIL: column m of public.t holds 3 rows with a label SOURCE's enum no longer has ('sad', 'meh', 'it''s') (e.g. id=1, id=2, id=4)"],
    );
    finding(
        &p,
        &[
            "WILL FAIL: column hist of public.t holds 2 rows with a label SOURCE's enum no longer has",
            "(e.g. id=2, id=5)",
        ],
    );
    let (found, checks) = json_plan(&s, &t, &[]);
    assert_eq!(json_count(&found, "column m of public.t holds"), 3);
    assert_eq!(json_count(&found, "column hist of public.t holds"), 2);
    // Two findings, one step.
    assert!(
        p.contains("-- preflight: 2 check(s) on TARGET's rows, 2 finding(s), 1 step(s) WILL FAIL"),
        "{p}"
    );
    assert_eq!(checks, ["removed-labels", "removed-labels"]);
    assert_refused(
        &s,
        &t,
        &[],
        &["(replace type public.mood): column m of public.t holds 3 rows"],
        "SELECT * FROM t ORDER BY id",
    );
    // Rows holding kept labels only: no finding, and the rebuild applies.
    t.exec("UPDATE t SET m = 'ok', hist = '{ok}' WHERE id <> 3")
        .unwrap();
    let p = plan(&s, &t, &[]);
    assert_eq!(
        findings(&p),
        ["-- preflight: 2 check(s) on TARGET's rows, 0 finding(s)"],
        "{p}"
    );
    let o = apply(&s, &t, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        t.exec("SELECT count(*) FROM t WHERE m = 'ok'")
            .unwrap()
            .trim(),
        "5"
    );
}

/// A condition that errors on a row fails the step the same way; after an earlier step
/// changes a type (here, adds the label the condition names), TARGET as it is only says it may.
#[test]
fn a_check_that_errors_on_target() {
    let table = "CREATE TABLE t (id int PRIMARY KEY, d int, st state,
             CONSTRAINT ratio CHECK (100 / d > 1));";
    let (t, s) = pair(
        "CREATE TYPE state AS ENUM ('open');
         CREATE TABLE t (id int PRIMARY KEY, d int, st state);
         INSERT INTO t VALUES (1, 5, 'open'), (2, 0, 'open');",
        &format!("CREATE TYPE state AS ENUM ('open'); {table}"),
    );
    let p = plan(&s, &t, &[]);
    finding(
        &p,
        &["WILL FAIL: CHECK constraint ratio fails on a row as it is evaluated (ERROR: division by zero): the step fails the same way; fix that row"],
    );
    assert_refused(
        &s,
        &t,
        &[],
        &["division by zero"],
        "SELECT * FROM t ORDER BY id",
    );
    s.exec("ALTER TYPE state ADD VALUE 'done'").unwrap();
    s.exec("ALTER TABLE t ADD CONSTRAINT st_known CHECK (st <> 'done' OR d > 0)")
        .unwrap();
    let p = plan(&s, &t, &[]);
    finding(
        &p,
        &["may fail: CHECK constraint st_known fails on a row as it is evaluated (ERROR: invalid input value for enum public.state: \"done\"): the step fails the same way; an earlier step of the plan changes a type"],
    );
}

/// The builtins a CHECK may call and still be evaluated are immutable in every overload the
/// server has, as pgalign's list says.
#[test]
fn immutable_builtins_are_immutable_on_the_server() {
    let names = pgalign::catalog::rules::IMMUTABLE_BUILTINS;
    let list = names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let q = |cond: &str| {
        admin_query(&format!(
            "SELECT coalesce(string_agg(DISTINCT proname, ','), '') FROM pg_proc
              WHERE pronamespace = 'pg_catalog'::regnamespace
                AND proname = ANY (ARRAY[{list}]) AND {cond}"
        ))
    };
    // length(bytea, name) is stable: pgalign evaluates length with one argument only.
    assert_eq!(
        q("provolatile <> 'i' AND NOT (proname = 'length' AND pronargs = 2)"),
        "",
        "not immutable"
    );
    assert_eq!(q("true").split(',').count(), names.len(), "not all found");
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
