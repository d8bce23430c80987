//! Progress on stderr: `--progress plain` says each stage as it ends (CI logs), never with a
//! password; by default, off a terminal, stderr carries only the outcome.

mod common;

use common::*;

fn run(args: &[&str]) -> (Option<i32>, String, String) {
    let o = pgalign(args);
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn plain_progress_says_each_stage_and_check_without_the_password() {
    let t = TempDb::new("prog_t");
    let s = TempDb::new("prog_s");
    t.exec("CREATE TABLE public.t (id integer PRIMARY KEY, a integer); INSERT INTO public.t VALUES (1, NULL);")
        .unwrap();
    s.exec("CREATE TABLE public.t (id integer PRIMARY KEY, a integer NOT NULL);")
        .unwrap();
    // A password the trust-auth server ignores: it must not appear anywhere.
    let with_password = |db: &TempDb| {
        format!(
            "postgres://{}:pr0gress-secret@{}:{}/{}",
            user(),
            host(),
            port(),
            db.name
        )
    };
    let (su, tu) = (with_password(&s), with_password(&t));
    let (code, plan, e) = run(&[
        "plan",
        "--source",
        &su,
        "--target",
        &tu,
        "--progress",
        "plain",
    ]);
    assert_eq!(code, Some(0), "{e}");
    assert!(
        plan.contains("ALTER TABLE public.t ALTER COLUMN a SET NOT NULL"),
        "{plan}"
    );
    let lines: Vec<&str> = e.lines().collect();
    for stage in [
        format!(
            "pgalign: dumping source {}@{}:{}/{}: done in ",
            user(),
            host(),
            port(),
            s.name
        ),
        format!(
            "pgalign: dumping target {}@{}:{}/{}: done in ",
            user(),
            host(),
            port(),
            t.name
        ),
        "pgalign: preflight 1/1: step 1 (alter table public.t): WILL FAIL: ".to_string(),
        "pgalign: preflight: done in ".to_string(),
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(&stage)),
            "no {stage:?} in:\n{e}"
        );
    }
    assert!(
        !e.contains("pr0gress-secret") && !plan.contains("pr0gress-secret"),
        "{e}"
    );

    // By default, off a terminal: only the outcome (here the preflight warning).
    let (code, _, e) = run(&["plan", "--source", &su, "--target", &tu]);
    assert_eq!(code, Some(0), "{e}");
    assert!(!e.contains("done in"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn a_bad_progress_mode_is_a_usage_error() {
    let (code, _, e) = run(&[
        "plan",
        "--source",
        "a.sql",
        "--target",
        "b.sql",
        "--progress",
        "fancy",
    ]);
    assert_eq!(code, Some(1), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}
