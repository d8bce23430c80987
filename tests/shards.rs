//! Sharded dumps (src/shards.rs) against whole ones: the catalog merged from the shards of one
//! snapshot must equal the catalog of one whole pg_dump, block by block, dependency by
//! dependency (by key: dump ids differ), in the same order.
//!
//! Inputs: every fixture's new.sql, a few corpus states and a generated bench schema. To keep
//! it to seconds, they share databases: each input is loaded into a pooled database and its
//! `public` schema renamed after it, so one database holds a hundred schemas; an input that does
//! not load there (a global object another input made already) gets a database of its own.

mod common;

use common::*;
use pgalign::catalog::{Catalog, Filter, Key};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The SQL files: fixtures' new.sql, some corpus states, with the roles each needs.
fn inputs() -> Vec<(String, PathBuf, Vec<String>)> {
    let mut v = Vec::new();
    for case in fixture_cases() {
        let label = case
            .strip_prefix(repo().join("fixtures"))
            .unwrap()
            .display()
            .to_string();
        v.push((label, case.join("new.sql"), fixture_roles(&case)));
    }
    let shared = repo().join("../shared");
    for state in [
        "corpus-realworld/crates-io/empty_to_full/b.sql",
        "corpus-realworld/supabase-storage/jump_0014_0036/b.sql",
        "corpus-realworld/supabase-storage/empty_to_full/b.sql",
    ] {
        let p = shared.join(state);
        if p.is_file() {
            let roles = fixture_roles(p.parent().unwrap());
            v.push((state.to_string(), p, roles));
        }
    }
    v
}

/// A catalog as comparable values: each block's key, text, owner, settings and dependencies (as
/// keys), in the catalog's order.
type Flat = Vec<(Key, Vec<String>, String, Vec<String>, BTreeSet<Key>)>;

fn flat(c: &Catalog) -> Flat {
    c.blocks
        .iter()
        .map(|b| {
            let deps = b
                .deps
                .iter()
                .filter_map(|&t| c.at_toc(t))
                .map(|i| c.blocks[i].key.clone())
                .collect();
            (
                b.key.clone(),
                b.stmts.to_vec(),
                b.owner.to_string(),
                b.settings().to_vec(),
                deps,
            )
        })
        .collect()
}

/// What differs between the whole dump's catalog and the merged one, empty when nothing does.
fn differences(whole: &Catalog, merged: &Catalog) -> Vec<String> {
    let (w, m) = (flat(whole), flat(merged));
    let mut out = Vec::new();
    let by_key = |f: &Flat| -> BTreeMap<Key, usize> {
        f.iter()
            .enumerate()
            .map(|(i, b)| (b.0.clone(), i))
            .collect()
    };
    let (wk, mk) = (by_key(&w), by_key(&m));
    for (k, &i) in &wk {
        match mk.get(k) {
            None => out.push(format!("missing from the shards: {}", k.display())),
            Some(&j) if w[i] != m[j] => out.push(format!(
                "differs: {}\n  whole:  {:?}\n  shards: {:?}",
                k.display(),
                w[i],
                m[j]
            )),
            _ => {}
        }
    }
    for k in mk.keys().filter(|k| !wk.contains_key(*k)) {
        out.push(format!("only in the shards: {}", k.display()));
    }
    if out.is_empty() {
        if let Some(i) = (0..w.len()).find(|&i| w[i].0 != m[i].0) {
            out.push(format!(
                "order differs at block {i}: whole has {}, shards have {}",
                w[i].0.display(),
                m[i].0.display()
            ));
        }
    }
    out
}

/// One database: its whole dump's catalog against the merged catalogs of `counts` shards.
fn compare(
    rt: &tokio::runtime::Runtime,
    db: &TempDb,
    counts: &[usize],
    label: &str,
) -> Vec<String> {
    let conn = pgalign::endpoint::parse_url(&db.url()).unwrap();
    let tools = pgalign::dump::find_tools(None).unwrap();
    let tool = &tools[0];
    let filter = Filter::default();
    let whole = rt
        .block_on(pgalign::dump::dump_database(&conn, tool, &filter))
        .unwrap_or_else(|e| panic!("{label}: whole dump: {e}"));
    let mut out = Vec::new();
    for &k in counts {
        let sharded = rt
            .block_on(pgalign::shards::dump_sides(
                &[&conn],
                tool,
                &filter,
                Some(k),
            ))
            .unwrap_or_else(|e| panic!("{label}: {k} shards: {e}"))
            .expect("a forced count always shards");
        for d in differences(&whole, &sharded.catalogs[0]) {
            out.push(format!("{label} ({} shards): {d}", sharded.shards[0]));
        }
    }
    out
}

/// Schemas holding relations in the database.
fn schemas_with_relations(db: &TempDb) -> usize {
    db.exec("SELECT count(DISTINCT relnamespace) FROM pg_class WHERE relkind IN ('r','p','v','m','S','f') AND relnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema') AND relnamespace::regnamespace::text !~ '^pg_toast'")
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// scripts/bench/gen.py's multi-tenant schema, small: `shared` and two tenants whose foreign
/// keys point into it.
fn bench_db() -> TempDb {
    let roles: Vec<String> = [
        "pgalign_bench_readonly",
        "pgalign_bench_readwrite",
        "pgalign_bench_app",
    ]
    .map(String::from)
    .to_vec();
    ensure_roles(&roles);
    let out = std::process::Command::new("python3")
        .arg(repo().join("scripts/bench/gen.py"))
        .args(["--tables", "120", "--variant", "b"])
        .output()
        .expect("run scripts/bench/gen.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.sql");
    std::fs::write(&path, &out.stdout).unwrap();
    let db = TempDb::new("shards_bench");
    // gen.py commits in batches of its own: not one transaction.
    let load = std::process::Command::new(bin("psql"))
        .args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &host(),
            "-p",
            &port(),
            "-U",
            &user(),
        ])
        .args(["-d", &db.name, "-f"])
        .arg(&path)
        .output()
        .expect("run psql");
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    db
}

#[test]
fn sharded_catalogs_equal_whole_ones() {
    let t0 = std::time::Instant::now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pool = TempDb::new("shards_pool");
    let inputs = inputs();
    // One psql session loads every input, each in a transaction of its own that renames its
    // `public` after it; one that fails rolls back alone (no ON_ERROR_STOP).
    let roles: BTreeSet<String> = inputs.iter().flat_map(|i| i.2.clone()).collect();
    ensure_roles(&roles.into_iter().collect::<Vec<_>>());
    let mut script = String::new();
    for (n, (_, path, _)) in inputs.iter().enumerate() {
        script.push_str(&format!(
            "RESET ALL;\nRESET SESSION AUTHORIZATION;\nBEGIN;\n\\i '{}'\nALTER SCHEMA public RENAME TO input_{n};\nCREATE SCHEMA public;\nCOMMIT;\n",
            path.display().to_string().replace('\'', "''")
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.sql");
    std::fs::write(&all, script).unwrap();
    let out = std::process::Command::new(bin("psql"))
        .args(["-X", "-q", "-h", &host(), "-p", &port(), "-U", &user()])
        .args(["-d", &pool.name, "-f"])
        .arg(&all)
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let loaded = pool
        .exec("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'input\\_%'")
        .unwrap();
    let loaded: BTreeSet<&str> = loaded.lines().collect();
    let pooled = loaded.len();
    // What did not load beside the others (a global object made twice) gets a database of its
    // own when it has schemas to shard.
    let mut alone: Vec<(String, TempDb)> = Vec::new();
    for (n, (label, path, _)) in inputs.into_iter().enumerate() {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if loaded.contains(format!("input_{n}").as_str()) || !text.contains("CREATE SCHEMA") {
            continue;
        }
        let db = TempDb::new("shards_alone");
        if db.load_file(&path).is_ok() && schemas_with_relations(&db) > 1 {
            alone.push((label, db));
        }
    }
    assert!(
        pooled > 150,
        "only {pooled} inputs loaded into the pooled database"
    );
    eprintln!(
        "{pooled} inputs pooled, {} alone, loaded in {:.1} s",
        alone.len(),
        t0.elapsed().as_secs_f64()
    );
    alone.push(("bench schema".into(), bench_db()));
    let mut diffs = compare(&rt, &pool, &[2, 5], "pooled inputs");
    for (label, db) in &alone {
        let k = schemas_with_relations(db);
        diffs.extend(compare(&rt, db, &[k.min(3)], label));
    }
    eprintln!("compared in {:.1} s", t0.elapsed().as_secs_f64());
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
