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

#[test]
fn sharded_catalogs_equal_whole_ones() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pool = TempDb::new("shards_pool");
    let mut alone: Vec<(String, TempDb)> = Vec::new();
    let mut pooled = 0;
    for (n, (label, path, roles)) in inputs().into_iter().enumerate() {
        ensure_roles(&roles);
        if pool.load_file(&path).is_ok() {
            pool.exec(&format!(
                "ALTER SCHEMA public RENAME TO input_{n}; CREATE SCHEMA public"
            ))
            .unwrap();
            pooled += 1;
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
    let mut diffs = compare(&rt, &pool, &[2, 5], "pooled inputs");
    for (label, db) in &alone {
        let k = schemas_with_relations(db);
        diffs.extend(compare(&rt, db, &[k], label));
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
