//! The command line end to end: endpoints of every kind, output formats, exit codes, and the
//! one-line errors bad input gets.

mod common;

use common::*;
use std::process::Command;

fn two_dbs(old: &str, new: &str) -> (TempDb, TempDb) {
    let t = TempDb::new("cli_t");
    let s = TempDb::new("cli_s");
    t.exec(old).unwrap();
    s.exec(new).unwrap();
    (t, s)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}
fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// An error is one line on stderr, starting with `pgalign: error:`, with exit code 1.
fn assert_one_line_error(o: &std::process::Output, needle: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(1), "stderr: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "not one line: {e}");
    assert!(e.starts_with("pgalign: error: "), "{e}");
    assert!(e.contains(needle), "expected {needle:?} in: {e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn diff_lists_objects_and_exits_2_then_0() {
    let (t, s) = two_dbs(
        "CREATE TABLE orders (id int PRIMARY KEY, note text); CREATE INDEX orders_note ON orders (note);",
        "CREATE TABLE orders (id int PRIMARY KEY, note varchar(20)); CREATE TABLE items (id int); CREATE VIEW v AS SELECT id FROM orders;",
    );
    let o = pgalign(&["diff", "--source", &s.url(), "--target", &t.url()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("~ table public.orders\n"), "{out}");
    assert!(out.contains("+ table public.items\n"), "{out}");
    assert!(out.contains("+ view public.v\n"), "{out}");
    assert!(out.contains("- index public.orders_note\n"), "{out}");
    assert!(
        out.contains("-    note text\n") && out.contains("+    note character varying(20)\n"),
        "{out}"
    );
    assert!(!out.contains('\x1b'), "no color when not a terminal");

    let o = pgalign(&[
        "diff",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["equal"], false);
    let changes = v["changes"].as_array().unwrap();
    assert!(changes
        .iter()
        .any(|c| c["change"] == "dropped" && c["kind"] == "INDEX"));

    let o = pgalign(&["diff", "--source", &s.url(), "--target", &s.url()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
}

#[test]
fn plan_is_byte_identical_between_runs_and_json_has_steps() {
    let (t, s) = two_dbs(
        "CREATE TABLE a (id int); CREATE TABLE b (id int);",
        "CREATE TABLE a (id bigint, x text DEFAULT 'x'); CREATE TABLE c (id int); CREATE INDEX c_id ON c (id); COMMENT ON TABLE a IS 'hi';",
    );
    let args = ["plan", "--source", &s.url(), "--target", &t.url()];
    let one = pgalign(&args);
    let two = pgalign(&args);
    assert!(one.status.success(), "{}", stderr(&one));
    assert_eq!(one.stdout, two.stdout);
    let sql = stdout(&one);
    assert!(sql.contains("-- step 1: "), "{sql}");

    let o = pgalign(&[
        "plan",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let steps = v["steps"].as_array().unwrap();
    assert!(steps
        .iter()
        .any(|st| st["op"] == "drop" && st["object"] == "table public.b"));
    assert!(steps
        .iter()
        .all(|st| st["sql"].as_str().unwrap().ends_with(";\n")));
    let drop_b = steps
        .iter()
        .find(|st| st["object"] == "table public.b")
        .unwrap();
    assert!(drop_b["hazards"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h == "data-loss"));
}

#[test]
fn plan_exit_code_flag_and_output_file() {
    let (t, s) = two_dbs(
        "CREATE TABLE a (id int);",
        "CREATE TABLE a (id int, b int);",
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.sql");
    let f = file.to_str().unwrap();
    let o = pgalign(&[
        "plan",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "-o",
        f,
        "--exit-code",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(stdout(&o), "");
    let sql = std::fs::read_to_string(&file).unwrap();
    assert!(
        sql.contains("ALTER TABLE public.a ADD COLUMN b integer;"),
        "{sql}"
    );
    let o = pgalign(&["plan", "--source", &s.url(), "--target", &t.url()]);
    assert_eq!(o.status.code(), Some(0));
    let o = pgalign(&[
        "plan",
        "--source",
        &s.url(),
        "--target",
        &s.url(),
        "--exit-code",
    ]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn dump_files_plain_and_custom_need_no_server() {
    let (t, s) = two_dbs(
        "CREATE TABLE a (id int);",
        "CREATE TABLE a (id int NOT NULL);",
    );
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("source.sql");
    std::fs::write(&plain, s.dump(&[])).unwrap();
    let custom = dir.path().join("target.dump");
    t.dump_to(&custom, &["--schema-only", "--format=custom"]);
    drop((t, s)); // the databases are gone: the files must be enough
    let o = pgalign(&[
        "plan",
        "--source",
        plain.to_str().unwrap(),
        "--target",
        custom.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("ALTER TABLE public.a ALTER COLUMN id SET NOT NULL;"),
        "{}",
        stdout(&o)
    );
}

/// A custom-format dump that holds data is not read as it streams: it goes to pg_restore, whose
/// text pgalign refuses in one line naming the first data entry (exit 1).
#[test]
fn a_custom_dump_with_data_is_refused_naming_its_data() {
    let (t, s) = two_dbs(
        "CREATE TABLE a (id int);",
        "CREATE TABLE a (id int); INSERT INTO a VALUES (1);",
    );
    let dir = tempfile::tempdir().unwrap();
    let custom = dir.path().join("with-data.dump");
    s.dump_to(&custom, &["--format=custom"]);
    let o = pgalign(&[
        "plan",
        "--source",
        custom.to_str().unwrap(),
        "--target",
        &t.url(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("TABLE DATA"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn endpoints_from_environment() {
    let (t, s) = two_dbs("CREATE TABLE a (id int);", "CREATE TABLE a (id int);");
    let o = Command::new(env!("CARGO_BIN_EXE_pgalign"))
        .arg("diff")
        .env("SOURCE_DATABASE_URL", s.url())
        .env("TARGET_DATABASE_URL", t.url())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = Command::new(env!("CARGO_BIN_EXE_pgalign"))
        .arg("diff")
        .env_remove("SOURCE_DATABASE_URL")
        .env_remove("SOURCE_DB_SECRETS")
        .env("TARGET_DATABASE_URL", t.url())
        .output()
        .unwrap();
    assert_one_line_error(&o, "no source given");
}

#[test]
fn schema_filters() {
    let (t, s) = two_dbs(
        "CREATE SCHEMA app; CREATE SCHEMA other; CREATE TABLE app.a (id int); CREATE TABLE other.x (id int);",
        "CREATE SCHEMA app; CREATE SCHEMA other; CREATE TABLE app.a (id int); CREATE TABLE other.x (id int, y int);",
    );
    let o = pgalign(&[
        "diff",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--schema",
        "app",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = pgalign(&[
        "diff",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--exclude-schema",
        "other",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = pgalign(&[
        "diff",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--schema",
        "other",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).contains("~ table other.x"));
}

#[test]
fn owner_and_privilege_filters() {
    ensure_roles(&["pgalign_reader".to_string()]);
    let (t, s) = two_dbs(
        "CREATE TABLE a (id int);",
        "CREATE TABLE a (id int); GRANT SELECT ON a TO pgalign_reader; ALTER TABLE a OWNER TO pgalign_reader;",
    );
    let o = pgalign(&["diff", "--source", &s.url(), "--target", &t.url()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stdout(&o).contains("~ owner of table public.a"),
        "{}",
        stdout(&o)
    );
    let o = pgalign(&[
        "diff",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--no-owner",
        "--no-privileges",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn bad_input_gets_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Not .sql: a .sql file that pg_dump did not write is SQL files, loaded (tests/files.rs).
    let notdump = dir.path().join("notes.txt");
    std::fs::write(&notdump, "SELECT 1;\n").unwrap();
    let binary = dir.path().join("blob.sql");
    std::fs::write(&binary, [0xffu8, 0xfe, 0x00, 0x01]).unwrap();
    let good = TempDb::new("cli_good");
    let g = good.url();

    let o = pgalign(&[
        "diff",
        "--source",
        notdump.to_str().unwrap(),
        "--target",
        &g,
    ]);
    assert_one_line_error(&o, "not the output of pg_dump");
    let o = pgalign(&["diff", "--source", binary.to_str().unwrap(), "--target", &g]);
    assert_one_line_error(&o, "not a pg_dump file");
    // A custom-format magic string over nonsense: pg_restore refuses it, and says why.
    let archive = dir.path().join("broken.dump");
    std::fs::write(&archive, b"PGDMP\x00\x00\x00 not an archive").unwrap();
    let o = pgalign(&[
        "diff",
        "--source",
        archive.to_str().unwrap(),
        "--target",
        &g,
    ]);
    assert_one_line_error(&o, "pg_restore failed");
    let o = pgalign(&["diff", "--source", "missing/dir/x.sql", "--target", &g]);
    assert_one_line_error(&o, "no such file");
    let o = pgalign(&[
        "diff",
        "--source",
        "postgres://u@127.0.0.1:notaport/db",
        "--target",
        &g,
    ]);
    assert_one_line_error(&o, "not a number");
    let o = pgalign(&["diff", "--source", "nonsense", "--target", &g]);
    assert_one_line_error(&o, "not a postgres:// URL");
    // Nothing listens on port 1.
    let o = pgalign(&[
        "diff",
        "--source",
        "postgres://postgres:hunter2@127.0.0.1:1/db",
        "--target",
        &g,
    ]);
    assert_one_line_error(&o, "dumping source postgres@127.0.0.1:1/db");
    assert!(
        !stderr(&o).contains("hunter2"),
        "password leaked: {}",
        stderr(&o)
    );
    let o = pgalign(&[
        "diff",
        "--source",
        &format!(
            "postgres://{}@{}:{}/pgalign_no_such_db",
            user(),
            host(),
            port()
        ),
        "--target",
        &g,
    ]);
    assert_one_line_error(&o, "pgalign_no_such_db");
    let o = pgalign(&[
        "diff",
        "--source",
        &g,
        "--target",
        &g,
        "--pg-dump",
        "/nonexistent/pg_dump",
    ]);
    assert_one_line_error(&o, "/nonexistent/pg_dump");
}

#[test]
fn identifiers_full_of_quotes_round_trip() {
    let (t, s) = two_dbs(
        r#"CREATE SCHEMA "we""ird sch"; CREATE TABLE "we""ird sch"."Tab ""1""" ("Col ""A""" int);"#,
        r#"CREATE SCHEMA "we""ird sch"; CREATE TABLE "we""ird sch"."Tab ""1""" ("Col ""A""" bigint NOT NULL, "select" text, "ünï" int);
           CREATE INDEX "i ""x""" ON "we""ird sch"."Tab ""1""" ("select"); COMMENT ON COLUMN "we""ird sch"."Tab ""1"""."Col ""A""" IS 'it''s';"#,
    );
    let o = pgalign(&["plan", "--source", &s.url(), "--target", &t.url()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.sql");
    std::fs::write(&f, &o.stdout).unwrap();
    t.load_file(&f).unwrap();
    let o = pgalign(&["diff", "--source", &s.url(), "--target", &t.url()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// A column type change PostgreSQL has no cast for (smallint to an enum, bigint to timestamp) is
/// reported when the plan is made, naming the column, both types and what to do, instead of
/// written as an ALTER COLUMN ... TYPE that fails at apply. The rest of the plan is made, and
/// what it made then applies.
#[test]
fn a_type_change_without_a_cast_is_reported_when_planned() {
    let (t, s) = two_dbs(
        "CREATE TABLE job (id int PRIMARY KEY, state smallint, started bigint); INSERT INTO job VALUES (1, 0, 0);",
        "CREATE TYPE job_state AS ENUM ('new', 'done'); CREATE TABLE job (id int PRIMARY KEY, state job_state, started timestamp);",
    );
    let o = pgalign(&[
        "plan",
        "--source",
        &s.url(),
        "--target",
        &t.url(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let unsupported = v["unsupported"].as_array().unwrap();
    let job = unsupported
        .iter()
        .find(|u| u["object"] == "table public.job")
        .unwrap_or_else(|| panic!("the table is reported: {v:#}"));
    let why = job["reason"].as_str().unwrap();
    for needle in [
        "column state: its type changes from smallint to public.job_state",
        "column started: its type changes from bigint to timestamp without time zone",
        "no cast",
        "USING",
    ] {
        assert!(why.contains(needle), "{needle:?} in {why}");
    }
    let steps = v["steps"].as_array().unwrap();
    assert!(
        steps.iter().all(|st| st["object"] != "table public.job"),
        "{v:#}"
    );
    assert!(steps
        .iter()
        .any(|st| st["object"] == "type public.job_state"));
    let o = pgalign(&["plan", "--source", &s.url(), "--target", &t.url()]);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("p.sql");
    std::fs::write(&f, &o.stdout).unwrap();
    t.load_file(&f).unwrap();
}

#[test]
fn plain_dumps_rebuild_dependent_views_too() {
    // A plain dump has no dependency graph; pgalign infers one from qualified names.
    let (t, s) = two_dbs(
        "CREATE TABLE emp (id int, pay int); CREATE VIEW payroll AS SELECT id, pay FROM emp;",
        "CREATE TABLE emp (id int, pay bigint); CREATE VIEW payroll AS SELECT id, pay FROM emp;",
    );
    let dir = tempfile::tempdir().unwrap();
    let (sf, tf) = (dir.path().join("s.sql"), dir.path().join("t.sql"));
    std::fs::write(&sf, s.dump(&[])).unwrap();
    std::fs::write(&tf, t.dump(&[])).unwrap();
    let o = pgalign(&[
        "plan",
        "--source",
        sf.to_str().unwrap(),
        "--target",
        tf.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plan = stdout(&o);
    assert!(plan.contains("DROP VIEW public.payroll;"), "{plan}");
    let f = dir.path().join("p.sql");
    std::fs::write(&f, &o.stdout).unwrap();
    t.load_file(&f).unwrap();
    let o = pgalign(&["diff", "--source", &s.url(), "--target", &t.url()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// Two plain dumps of 200 tables of 40 columns, integer on one side and bigint on the other:
/// diff shows every column of every table, and plan alters each one.
fn wide_dumps(dir: &std::path::Path) -> (String, String) {
    let staging = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dumps/staging.sql"),
    )
    .unwrap();
    // pg_dump's header (its SET lines) from a real dump, then the tables.
    let header = &staging[..staging.find("--\n-- Name:").unwrap()];
    let dump = |column_type: &str| {
        let mut s = header.to_string();
        for t in 0..200 {
            let columns: Vec<String> = (0..40).map(|c| format!("    c{c} {column_type}")).collect();
            s.push_str(&format!(
                "--\n-- Name: t{t}; Type: TABLE; Schema: public; Owner: -\n--\n\nCREATE TABLE public.t{t} (\n{}\n);\n\n\n",
                columns.join(",\n")
            ));
        }
        s
    };
    let (old, new) = (dir.join("old.sql"), dir.join("new.sql"));
    std::fs::write(&old, dump("integer")).unwrap();
    std::fs::write(&new, dump("bigint")).unwrap();
    (
        new.to_str().unwrap().to_string(),
        old.to_str().unwrap().to_string(),
    )
}

/// `pgalign diff ... | head -1`: the reader goes away after one line, and pgalign stops
/// quietly with exit 0, as ripgrep does (no error, no panic).
#[test]
fn a_reader_that_stops_early_ends_pgalign_quietly() {
    use std::io::BufRead;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let (source, target) = wide_dumps(dir.path());
    let args = |cmd: &'static str, extra: &'static [&'static str]| {
        let mut a = vec![cmd, "--source", &source, "--target", &target];
        a.extend(extra);
        a
    };
    for a in [
        args("diff", &[]),
        args("diff", &["--format", "json"]),
        args("plan", &[]),
    ] {
        // More than any pipe holds (64 KiB on Linux), or no write would ever fail and this
        // would prove nothing.
        let whole = pgalign(&a);
        assert!(
            whole.stdout.len() > 256 * 1024,
            "{a:?}: {} bytes",
            whole.stdout.len()
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_pgalign"))
            .args(&a)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        reader.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "{a:?}: no output");
        drop(reader);
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{a:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{a:?}");
    }
}

/// `pgalign ... 2>&1 | head -0`: an error that nobody can read is lost, but the exit code still
/// says it (Rust ignores SIGPIPE, and `eprintln!` panics on the failed write).
#[test]
fn a_closed_stderr_is_no_panic() {
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;
    use std::process::Stdio;
    // A socket whose other end is closed: writing to it fails with EPIPE at once, like a pipe
    // whose reader has gone.
    let (gone, stderr) = UnixStream::pair().unwrap();
    drop(gone);
    let o = Command::new(env!("CARGO_BIN_EXE_pgalign"))
        .args([
            "diff",
            "--source",
            "/nonexistent/source.sql",
            "--target",
            "/nonexistent/target.sql",
        ])
        .stderr(Stdio::from(OwnedFd::from(stderr)))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
}

/// The binary allocates through jemalloc, built with the options `.cargo/config.toml` gives it:
/// freed pages go back at once (decay 0), which the README's memory figures rely on.
#[cfg(not(target_env = "msvc"))]
#[test]
fn the_allocator_gives_freed_memory_back_at_once() {
    let o = Command::new(env!("CARGO_BIN_EXE_pgalign"))
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true")
        .output()
        .unwrap();
    assert!(o.status.success());
    let stats = String::from_utf8_lossy(&o.stderr);
    for line in [
        "config.malloc_conf: \"dirty_decay_ms:0,muzzy_decay_ms:0\"",
        "opt.dirty_decay_ms: 0 (",
        "opt.muzzy_decay_ms: 0 (",
    ] {
        assert!(
            stats.contains(line),
            "no {line:?} in jemalloc's stats: {stats}"
        );
    }
}
