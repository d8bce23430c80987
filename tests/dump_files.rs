//! `pgalign dump -o DIR`: a database's schema as files that load back as they are. Round trip:
//! database -> dump -> files -> loaded on a scratch database -> diff against the database:
//! exit 0. On fixtures and on whole real-world histories (../corpus-realworld).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn server() -> String {
    format!("postgres://{}@{}:{}/postgres", user(), host(), port())
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Dumps `db` into a new directory, checks its layout, and diffs the files against `db`.
fn round_trip(db: &TempDb, what: &str) -> usize {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("schema");
    let (d, url, scratch) = (dir.to_str().unwrap(), db.url(), server());
    let o = pgalign(&["dump", "--source", &url, "-o", d]);
    assert_eq!(o.status.code(), Some(0), "{what}: {}", text(&o));
    let order = std::fs::read_to_string(dir.join("load-order.txt")).unwrap();
    let listed: Vec<&str> = order
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    for f in &listed {
        assert_eq!(
            Path::new(f).components().count(),
            3,
            "{what}: {f} is not <schema>/<kind>/<name>.sql"
        );
        assert!(dir.join(f).is_file(), "{what}: {f}");
    }
    let o = pgalign(&[
        "diff",
        "--source",
        d,
        "--target",
        &url,
        "--scratch",
        &scratch,
    ]);
    assert_eq!(o.status.code(), Some(0), "{what}: {}", text(&o));
    listed.len()
}

#[test]
fn fixture_schemas_dump_to_files_that_load_back_equal() {
    for case in [
        "comment/removed_from_every_kind",
        "constraint/add_exclusion_with_btree_gist",
        "grant/column_level_grant",
        // pg_dump's "no default of its own" markers, written as the planner runs them.
        "table/partition_without_its_parents_default",
    ] {
        let dir = repo().join("fixtures").join(case);
        if !dir.join("old.sql").is_file() {
            panic!("no fixture {case}");
        }
        ensure_roles(&fixture_roles(&dir));
        let db = TempDb::new(&format!("dumpfiles_{case}"));
        // old.sql: the richer side of a "removed" case.
        let side = if case.contains("removed") {
            "old.sql"
        } else {
            "new.sql"
        };
        db.load_file(&dir.join(side)).unwrap();
        assert!(round_trip(&db, case) > 0, "{case}: no files");
    }
}

/// Two whole migration histories: each b.sql, a plain SQL file with its own BEGIN/COMMIT
/// blocks, is a SQL-file SOURCE equal to a database it was loaded into; the database's dump as
/// files round-trips too.
#[test]
fn real_world_histories_round_trip_as_files() {
    let corpus = repo().join("../shared/corpus-realworld");
    let corpus = if corpus.is_dir() {
        corpus
    } else {
        PathBuf::from("/work/shared/corpus-realworld")
    };
    if !corpus.is_dir() {
        eprintln!("skipped: no corpus-realworld next to the repository");
        return;
    }
    for project in ["crates-io", "supabase-storage"] {
        let case = corpus.join(project).join("empty_to_full");
        ensure_roles(&fixture_roles(&case));
        let db = TempDb::new(&format!("dumpfiles_{project}"));
        db.load_file(&case.join("b.sql")).unwrap();
        let b = case.join("b.sql");
        let o = pgalign(&[
            "diff",
            "--source",
            b.to_str().unwrap(),
            "--target",
            &db.url(),
            "--scratch",
            &server(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{project} b.sql: {}", text(&o));
        let n = round_trip(&db, project);
        assert!(n > 50, "{project}: only {n} files");
    }
}

#[test]
fn dump_writes_only_into_a_new_or_empty_directory() {
    let db = TempDb::new("dumpfiles_refuse");
    db.exec("CREATE TABLE t (id int)").unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("keep.sql"), "SELECT 1;\n").unwrap();
    let o = pgalign(&[
        "dump",
        "--source",
        &db.url(),
        "-o",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is not empty"), "{}", text(&o));
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 1);
    let o = pgalign(&[
        "dump",
        "--source",
        &db.url(),
        "--target",
        &db.url(),
        "-o",
        "x",
    ]);
    assert!(text(&o).contains("--source only"), "{}", text(&o));
}
