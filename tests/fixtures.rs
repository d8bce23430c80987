//! Every fixture is a round trip on the real server: load old.sql into TARGET and new.sql into
//! SOURCE, plan, check the plan against its snapshot, apply it with psql, then TARGET's dump must
//! equal SOURCE's and a second `pgalign diff` must find nothing.

mod common;

use common::*;
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::Path;

/// True when the environment variable is set to something other than "" or "0".
fn env_on(name: &str) -> bool {
    matches!(std::env::var(name).as_deref(), Ok(v) if !v.is_empty() && v != "0")
}

/// `from_files`: plan between plain `pg_dump --schema-only` files of the two databases (the
/// path where pgalign infers the dependency graph from the SQL) instead of between the
/// databases themselves.
fn round_trip(case: &Path, flags: &[&str], trial: &str, from_files: bool) -> Result<(), Failed> {
    ensure_roles(&fixture_roles(case));
    let label = case.file_name().unwrap().to_string_lossy().to_string();
    let target = TempDb::new(&format!("{label}_t"));
    let source = TempDb::new(&format!("{label}_s"));
    let loaded = target
        .load_file(&case.join("old.sql"))
        .map_err(|e| ("old.sql", e))
        .and_then(|_| {
            source
                .load_file(&case.join("new.sql"))
                .map_err(|e| ("new.sql", e))
        });
    if let Err((file, e)) = loaded {
        // Matrix runs (scripts/pg-matrix.sh): a case written in syntax that a later major added
        // cannot load on an older server; it is counted as skipped there, not failed.
        if env_on("PGALIGN_TEST_SKIP_UNLOADABLE") {
            eprintln!(
                "SKIPPED-UNLOADABLE {trial}: {file} does not load: {}",
                first_error(&e)
            );
            return Ok(());
        }
        return Err(format!("{file} does not load: {e}").into());
    }
    let (s, t) = (source.url(), target.url());
    let files = if from_files {
        let dir = tempfile::tempdir().unwrap();
        let (sf, tf) = (dir.path().join("source.sql"), dir.path().join("target.sql"));
        std::fs::write(&sf, source.dump(&[])).unwrap();
        std::fs::write(&tf, target.dump(&[])).unwrap();
        Some((dir, sf.display().to_string(), tf.display().to_string()))
    } else {
        None
    };
    let (ps, pt) = match &files {
        Some((_, sf, tf)) => (sf.as_str(), tf.as_str()),
        None => (s.as_str(), t.as_str()),
    };
    let mut args = vec!["plan", "--source", ps, "--target", pt];
    args.extend_from_slice(flags);
    let out = pgalign(&args);
    if !out.status.success() {
        return Err(format!("plan failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let plan = String::from_utf8(out.stdout).unwrap();
    // Preflight ran on the fixture's rows (most have none): what it says is TARGET's data, not
    // the plan, and stays out of the snapshot; a query it could not run is a bug in it.
    if let Some(l) = plan
        .lines()
        .find(|l| l.starts_with("-- preflight: not checked: the query failed"))
    {
        return Err(format!("a preflight query failed: {l}\n--- plan ---\n{plan}").into());
    }
    // Matrix runs set PGALIGN_TEST_NO_SNAPSHOT: plans may differ between majors.
    if flags.is_empty() && !from_files && !env_on("PGALIGN_TEST_NO_SNAPSHOT") {
        // The header names the temporary databases; the rest must not change between runs.
        // The snapshot is tests/plans.rs's, made from dump files: TARGET here is a database,
        // whose table sizes (and so the header's largest-first list) are its own. Both are
        // compared without them.
        let snap = std::fs::read_to_string(case.join("plan.snap"))
            .map_err(|e| format!("reading plan.snap (make it with tests/plans.rs): {e}"))?;
        let expected = without_sizes(snap.splitn(3, "---\n").nth(2).unwrap_or(""));
        let actual = without_sizes(&plan);
        if expected != actual {
            let first = expected
                .iter()
                .zip(&actual)
                .position(|(a, b)| a != b)
                .unwrap_or(expected.len().min(actual.len()));
            return Err(format!(
                "the plan differs from its snapshot (plan.snap) at line {}: expected {:?}, got {:?}; make it again with INSTA_UPDATE=always cargo test --test plans\n--- plan ---\n{plan}",
                first + 1,
                expected.get(first),
                actual.get(first)
            )
            .into());
        }
    }
    let plan_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(plan_file.path(), &plan).unwrap();
    target
        .run_plan(plan_file.path())
        .map_err(|e| format!("applying the plan failed: {e}\n--- plan ---\n{plan}"))?;
    let dump_flags: Vec<&str> = flags.to_vec();
    let (a, b) = (target.dump(&dump_flags), source.dump(&dump_flags));
    let (na, nb) = (normalize_dump(&a), normalize_dump(&b));
    if na != nb {
        let only_t: Vec<_> = na.iter().filter(|x| !nb.contains(x)).collect();
        let only_s: Vec<_> = nb.iter().filter(|x| !na.contains(x)).collect();
        return Err(format!(
            "after apply, target differs from source.\nonly in target: {only_t:#?}\nonly in source: {only_s:#?}\n--- plan ---\n{plan}"
        )
        .into());
    }
    let mut args = vec!["diff", "--source", &s, "--target", &t];
    args.extend_from_slice(flags);
    let again = pgalign(&args);
    if again.status.code() != Some(0) {
        return Err(format!(
            "second diff is not empty (exit {:?}):\n{}",
            again.status.code(),
            String::from_utf8_lossy(&again.stdout)
        )
        .into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for case in fixture_cases() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let name = case.strip_prefix(&root).unwrap().display().to_string();
        let c = case.clone();
        let t = format!("roundtrip::{name}");
        trials.push(Trial::test(t.clone(), move || {
            round_trip(&c, &[], &t, false)
        }));
        let c = case.clone();
        let t = format!("roundtrip_no_owner_no_privileges::{name}");
        trials.push(Trial::test(t.clone(), move || {
            round_trip(&c, &["--no-owner", "--no-privileges"], &t, false)
        }));
        let c = case.clone();
        let t = format!("roundtrip_from_plain_dump_files::{name}");
        trials.push(Trial::test(t.clone(), move || {
            round_trip(&c, &[], &t, true)
        }));
    }
    libtest_mimic::run(&args, trials).exit();
}

/// A plan's lines as its snapshot holds them, without what depends on TARGET's data: the
/// names of the temporary databases, preflight's findings, table sizes on impact lines, and
/// the header's list of the largest tables (ordered by those sizes).
fn without_sizes(plan: &str) -> Vec<String> {
    let size = regex::Regex::new(r" \([0-9.]+ (bytes|kB|MB|GB|TB), [^()]*rows[^()]*\)").unwrap();
    plan.lines()
        .filter(|l| {
            !l.starts_with("-- source (desired)")
                && !l.starts_with("-- target (changed)")
                && !l.starts_with("-- preflight:")
        })
        .filter(|l| match l.strip_prefix("-- impact: ") {
            Some(rest) => {
                rest.starts_with("ACCESS ")
                    || rest.starts_with("SHARE ")
                    || rest.starts_with("steps on existing tables")
            }
            None => true,
        })
        .map(|l| size.replace_all(l, "").into_owned())
        .collect()
}
