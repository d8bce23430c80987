//! Fleets on the real server: one SOURCE against members with different drift (equal, a column
//! added, an index dropped, a member that errors, a member with a hazard not allowed): each
//! member's result, the exit code, the reports, SOURCE dumped once; the canary stops the
//! rollout; `--max-failures` stops starting members.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

const SOURCE: &str = "CREATE TABLE public.t (id integer PRIMARY KEY, a integer, b text);
CREATE INDEX t_a ON public.t (a);";

fn run(args: &[&str]) -> Output {
    pgalign(args)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// A pg_dump that records the database each run dumps, then runs the real one.
fn counting_pg_dump(dir: &Path) -> std::path::PathBuf {
    let real = Path::new(&bin("pg_dump")).to_path_buf();
    let real = if real.is_absolute() {
        real
    } else {
        which_in_path(&bin("pg_dump"))
    };
    let restore = real.with_file_name("pg_restore");
    let log = dir.join("dumps.log");
    let p = dir.join("pg_dump");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --dbname=*) echo \"$a\" >> '{}';; esac; done\nexec '{}' \"$@\"\n",
            log.display(),
            real.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink(restore, dir.join("pg_restore")).unwrap();
    p
}

fn which_in_path(name: &str) -> std::path::PathBuf {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not on PATH"))
}

struct Fleet {
    source: TempDb,
    members: Vec<(String, TempDb)>,
}

/// SOURCE and four member databases: equal, missing column b, missing index t_a, and one
/// with a column SOURCE lacks (dropping it is data-loss).
fn fleet() -> Fleet {
    let source = TempDb::new("fl_src");
    source.exec(SOURCE).unwrap();
    let mk = |label: &str, sql: &str| {
        let db = TempDb::new(label);
        db.exec(sql).unwrap();
        db
    };
    let members = vec![
        ("equal".to_string(), mk("fl_eq", SOURCE)),
        (
            "column".to_string(),
            mk(
                "fl_col",
                "CREATE TABLE public.t (id integer PRIMARY KEY, a integer); CREATE INDEX t_a ON public.t (a);",
            ),
        ),
        (
            "index".to_string(),
            mk("fl_idx", "CREATE TABLE public.t (id integer PRIMARY KEY, a integer, b text);"),
        ),
        (
            "hazard".to_string(),
            mk(
                "fl_hz",
                "CREATE TABLE public.t (id integer PRIMARY KEY, a integer, b text, old text); CREATE INDEX t_a ON public.t (a); INSERT INTO public.t VALUES (1, 1, 'x', 'keep me');",
            ),
        ),
    ];
    Fleet { source, members }
}

/// The members file: the fleet's members, then one that cannot be reached.
fn members_file(dir: &Path, f: &Fleet, broken_first: bool) -> std::path::PathBuf {
    let broken = format!(
        "broken postgres://{}@{}:{}/pgalign_fleet_no_such_db_{}\n",
        user(),
        host(),
        port(),
        std::process::id()
    );
    let mut s = String::from("# test fleet\n");
    if broken_first {
        s.push_str(&broken);
    }
    for (name, db) in &f.members {
        s.push_str(&format!("{name} {}\n", db.url()));
    }
    if !broken_first {
        s.push_str(&broken);
    }
    let p = dir.join("members.txt");
    std::fs::write(&p, s).unwrap();
    p
}

fn line_of<'a>(out: &'a str, member: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("member {member}: ")))
        .unwrap_or_else(|| panic!("no line for {member} in:\n{out}"))
}

#[test]
fn drift_plan_and_apply_across_a_fleet() {
    let f = fleet();
    let dir = tempfile::tempdir().unwrap();
    let file = members_file(dir.path(), &f, false);
    let pg_dump = counting_pg_dump(dir.path());
    let src = f.source.url();
    let (file_s, pg_dump_s) = (file.to_str().unwrap(), pg_dump.to_str().unwrap());

    // Drift: which members differ, and the unreachable one is an error (exit 1).
    let o = run(&[
        "fleet",
        "diff",
        "--source",
        &src,
        "--targets",
        file_s,
        "--pg-dump",
        pg_dump_s,
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(
        line_of(&out, "equal").starts_with("member equal: equal"),
        "{out}"
    );
    assert!(
        line_of(&out, "column").starts_with("member column: differs, 1 difference(s)"),
        "{out}"
    );
    assert!(
        line_of(&out, "index").starts_with("member index: differs"),
        "{out}"
    );
    assert!(
        line_of(&out, "broken").starts_with("member broken: FAILED: "),
        "{out}"
    );
    assert!(
        out.contains("5 member(s): 1 equal, 3 differs, 1 FAILED"),
        "{out}"
    );
    // SOURCE was dumped once, each member once.
    let dumps = std::fs::read_to_string(dir.path().join("dumps.log")).unwrap();
    let of_source = dumps
        .lines()
        .filter(|l| l.contains(&format!("dbname={}", f.source.name)))
        .count();
    assert_eq!(of_source, 1, "{dumps}");

    // Plans, one file per member.
    let plans = dir.path().join("plans");
    let o = run(&[
        "fleet",
        "plan",
        "--source",
        &src,
        "--targets",
        file_s,
        "--out-dir",
        plans.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let col = std::fs::read_to_string(plans.join("column.sql")).unwrap();
    assert!(
        col.contains("ALTER TABLE public.t ADD COLUMN b text;"),
        "{col}"
    );
    assert!(plans.join("equal.sql").exists());

    // Apply without allowing data-loss: the hazard member is refused, the broken one fails,
    // the others are applied and verified; reports say so.
    let (json, md) = (dir.path().join("fleet.json"), dir.path().join("fleet.md"));
    let o = run(&[
        "fleet",
        "apply",
        "--source",
        &src,
        "--targets",
        file_s,
        "--jobs",
        "2",
        "--allow-hazards",
        "index-build",
        "--report",
        json.to_str().unwrap(),
        "--report-md",
        md.to_str().unwrap(),
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(
        line_of(&out, "equal").starts_with("member equal: equal"),
        "{out}"
    );
    assert!(
        line_of(&out, "column").starts_with("member column: applied, 1 step(s)"),
        "{out}"
    );
    assert!(
        line_of(&out, "index").starts_with("member index: applied"),
        "{out}"
    );
    assert!(
        line_of(&out, "hazard").starts_with("member hazard: refused"),
        "{out}"
    );
    assert!(line_of(&out, "hazard").contains("data-loss"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["exit_code"], 1);
    let by = |name: &str| {
        v["members"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["member"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(by("column")["outcome"], "applied");
    assert_eq!(by("hazard")["outcome"], "refused");
    assert_eq!(by("broken")["outcome"], "failed");
    let report = std::fs::read_to_string(&md).unwrap();
    assert!(report.contains("| hazard | refused |"), "{report}");
    // Applied members now equal SOURCE; the refused one kept its column and row.
    assert_eq!(
        f.members[1].1.exec("SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'b'").unwrap().trim(),
        "1"
    );
    assert_eq!(
        f.members[3]
            .1
            .exec("SELECT old FROM public.t")
            .unwrap()
            .trim(),
        "keep me"
    );
    let o = run(&["fleet", "diff", "--source", &src, "--targets", file_s]);
    let out = text(&o.stdout);
    assert!(
        line_of(&out, "column").starts_with("member column: equal"),
        "{out}"
    );
    assert!(
        line_of(&out, "index").starts_with("member index: equal"),
        "{out}"
    );
}

#[test]
fn a_failed_canary_stops_the_rollout_and_max_failures_stops_starting() {
    let f = fleet();
    let dir = tempfile::tempdir().unwrap();
    let file = members_file(dir.path(), &f, true);
    let src = f.source.url();
    let o = run(&[
        "fleet",
        "apply",
        "--source",
        &src,
        "--targets",
        file.to_str().unwrap(),
        "--canary",
        "1",
        "--allow-all-hazards",
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        line_of(&out, "broken").starts_with("member broken: FAILED"),
        "{out}"
    );
    assert!(out.contains("4 not started"), "{out}");
    assert!(
        text(&o.stderr).contains("not started: the canary failed (broken)"),
        "{}",
        text(&o.stderr)
    );
    // Nothing reached the members after the canary.
    assert_eq!(
        f.members[1].1.exec("SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'b'").unwrap().trim(),
        "0"
    );

    // One at a time, stop after the first failure.
    let o = run(&[
        "fleet",
        "diff",
        "--source",
        &src,
        "--targets",
        file.to_str().unwrap(),
        "--jobs",
        "1",
        "--max-failures",
        "1",
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("1 FAILED, 4 not started"), "{out}");
    assert!(
        text(&o.stderr).contains("(--max-failures 1)"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_bad_members_file_is_one_line_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.txt");
    std::fs::write(&p, "ok postgres://u:s3cret@h/db\nno_endpoint\n").unwrap();
    let o = run(&[
        "fleet",
        "diff",
        "--source",
        "x.sql",
        "--targets",
        p.to_str().unwrap(),
    ]);
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(
        e.contains("line 2: a member needs a name and an endpoint"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}

#[test]
fn shards_run_apart_and_their_reports_merge() {
    let f = fleet();
    let dir = tempfile::tempdir().unwrap();
    let file = members_file(dir.path(), &f, false);
    let src = f.source.url();
    let mut froms = Vec::new();
    let mut seen = 0;
    for i in 1..=2 {
        let rep = dir.path().join(format!("r{i}.json"));
        let o = run(&[
            "fleet",
            "diff",
            "--source",
            &src,
            "--targets",
            file.to_str().unwrap(),
            "--shard",
            &format!("{i}/2"),
            "--report",
            rep.to_str().unwrap(),
        ]);
        seen += text(&o.stdout)
            .lines()
            .filter(|l| l.starts_with("member ") && l.contains(": "))
            .count();
        froms.push(rep);
    }
    assert_eq!(seen, 5, "each member in exactly one shard");
    let md = dir.path().join("all.md");
    let o = run(&[
        "fleet",
        "merge-reports",
        "--from",
        froms[0].to_str().unwrap(),
        "--from",
        froms[1].to_str().unwrap(),
        "--report-md",
        md.to_str().unwrap(),
    ]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("5 member(s): 1 equal, 3 differs, 1 FAILED"),
        "{out}"
    );
    assert!(std::fs::read_to_string(&md)
        .unwrap()
        .contains("| broken | FAILED |"));

    // The batch buildspec for CodeBuild: one build per shard.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_pgalign"))
        .current_dir(dir.path())
        .args([
            "fleet",
            "codebuild",
            "--targets",
            "members.txt",
            "--shards",
            "3",
        ])
        .output()
        .unwrap();
    let spec = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(spec.matches("- identifier: shard_").count(), 3, "{spec}");
    assert!(
        spec.contains("PGALIGN_FLEET_TARGETS: 'members.txt'"),
        "{spec}"
    );
}

#[test]
fn tenant_schemas_compare_with_the_template_schema() {
    let source = TempDb::new("fl_tmpl");
    source
        .exec(
            "CREATE SCHEMA tmpl; CREATE TABLE tmpl.t (id integer PRIMARY KEY, b text); CREATE INDEX ON tmpl.t (b);
             CREATE TABLE public.shared (id integer);",
        )
        .unwrap();
    let db = TempDb::new("fl_tenants");
    db.exec(
        "CREATE SCHEMA tenant_1; CREATE TABLE tenant_1.t (id integer PRIMARY KEY, b text); CREATE INDEX ON tenant_1.t (b);
         CREATE SCHEMA tenant_2; CREATE TABLE tenant_2.t (id integer PRIMARY KEY);",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenants.txt");
    std::fs::write(
        &file,
        format!(
            "t1 {} schema=tenant_1\nt2 {} schema=tenant_2\n",
            db.url(),
            db.url()
        ),
    )
    .unwrap();
    let (src, file_s) = (source.url(), file.to_str().unwrap().to_string());
    let base = [
        "--source",
        &src,
        "--targets",
        &file_s,
        "--source-schema",
        "tmpl",
    ];
    let scratch_before = db
        .exec("SELECT count(*) FROM pg_database WHERE datname LIKE 'pgalign_rehearsal_%'")
        .unwrap();

    let o = run(&[&["fleet", "diff"][..], &base].concat());
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(2), "{out}{}", text(&o.stderr));
    assert!(line_of(&out, "t1").starts_with("member t1: equal"), "{out}");
    assert!(
        line_of(&out, "t2").starts_with("member t2: differs, 2 difference(s)"),
        "{out}"
    );

    let o = run(&[&["fleet", "apply", "--allow-all-hazards"][..], &base].concat());
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    assert!(
        line_of(&out, "t2").starts_with("member t2: applied"),
        "{out}"
    );
    let o = run(&[&["fleet", "diff"][..], &base].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    // Only the tenant's schema was compared: SOURCE's public.shared did not come along.
    assert_eq!(
        db.exec("SELECT count(*) FROM pg_class WHERE relname = 'shared'")
            .unwrap()
            .trim(),
        "0"
    );
    assert_eq!(
        db.exec("SELECT count(*) FROM pg_database WHERE datname LIKE 'pgalign_rehearsal_%'")
            .unwrap(),
        scratch_before,
        "a scratch database was left behind"
    );

    // Outside fleets: one schema onto another of another name, planned and applied alone.
    db.exec("ALTER TABLE tenant_1.t DROP COLUMN b").unwrap();
    let one = [
        "--source",
        &src,
        "--target",
        &db.url(),
        "--source-schema",
        "tmpl",
        "--target-schema",
        "tenant_1",
    ];
    let o = run(&[&["plan"][..], &one].concat());
    let plan = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        plan.contains("ALTER TABLE tenant_1.t ADD COLUMN b text;"),
        "{plan}"
    );
    assert!(!plan.contains("tmpl") && !plan.contains("shared"), "{plan}");
    let o = run(&[&["apply", "--allow-all-hazards"][..], &one].concat());
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let o = run(&[&["diff"][..], &one].concat());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let o = run(&[
        "plan",
        "--source",
        &src,
        "--target",
        &db.url(),
        "--source-schema",
        "tmpl",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("go together"),
        "{}",
        text(&o.stderr)
    );

    // Without the template's name, a tenant member is refused at once.
    let o = run(&["fleet", "diff", "--source", &src, "--targets", &file_s]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("--source-schema"),
        "{}",
        text(&o.stderr)
    );
}
