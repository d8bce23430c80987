//! Mutation test: real dumps (every fixture's `dumps/{old,new}.sql`, written by
//! scripts/fixture-dumps.sh), damaged at random, through the whole pure pipeline in process
//! (catalog -> validate -> diff -> plan -> render; no server). Whatever the damage:
//! - nothing panics: a bad dump is an error, never a crash (and the planner does not panic on
//!   what validation refuses either: it is planned anyway, for that);
//! - when planning succeeds, the statement injected by a mutation (`DELETE FROM canary_pgalign`)
//!   is in no step nor anywhere in the rendered script as SQL (inside a string literal or a quoted
//!   name it is data, not a statement), and every step's statements parse.
//!
//! A few thousand cases by default; for longer hunts:
//!   PGALIGN_MUTATION_CASES=100000 PGALIGN_MUTATION_SEED=7 cargo test --test mutation
//! (`PGALIGN_MUTATION_SEED=random` picks one and prints it; `PGALIGN_MUTATION_STRICT=1` also fails
//! on steps the planner had to report as unsupported because it wrote SQL that does not parse). A
//! failure is shrunk to a small set of edits and printed with the seed that found it.

use pgalign::catalog::{self, parse, Catalog, Filter};
use pgalign::{diff, plan, render};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

const CANARY: &str = "canary_pgalign";

/// How cases ended: refused while reading, refused by `validate`, planned.
static READ_ERRORS: AtomicUsize = AtomicUsize::new(0);
static INVALID: AtomicUsize = AtomicUsize::new(0);
static PLANNED: AtomicUsize = AtomicUsize::new(0);

/// One fixture's two dumps.
struct Pair {
    name: String,
    old: Vec<u8>,
    new: Vec<u8>,
}

fn pairs() -> Vec<Pair> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut out = Vec::new();
    for kind in std::fs::read_dir(&root).expect("fixtures/") {
        let kind = kind.unwrap().path();
        let Ok(cases) = std::fs::read_dir(&kind) else {
            continue;
        };
        for case in cases {
            let dumps = case.unwrap().path().join("dumps");
            let (Ok(old), Ok(new)) = (
                std::fs::read(dumps.join("old.sql")),
                std::fs::read(dumps.join("new.sql")),
            ) else {
                continue;
            };
            let name = dumps
                .parent()
                .unwrap()
                .strip_prefix(&root)
                .unwrap()
                .display()
                .to_string();
            out.push(Pair { name, old, new });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        out.len() > 100,
        "fixture dumps missing: run scripts/fixture-dumps.sh"
    );
    out
}

/// Bytes a mutation puts into a dump.
const INSERTS: &[&[u8]] = &[
    b"'",
    b"\"",
    b"$$",
    b"$x$",
    b";",
    b"; DELETE FROM canary_pgalign;",
    b";\nDELETE FROM canary_pgalign;\n",
    b"\0",
    b"\xff",
    b"\xc3",
    b"(",
    b")",
    b"\\",
    b"\n",
    b"\r",
    b"--",
    b"/*",
    b" ",
    b",",
    b".",
    b"\xc3\xa9",
    b"\n\\connect other\n",
    b"\nCOPY public.t (a) FROM stdin;\n",
    b" BEGIN ATOMIC ",
    b"\n--\n",
    // Pieces that keep a statement valid and change what it means.
    b" NOT NULL",
    b" DEFAULT 1",
    b"[]",
    b"::text",
    b",\n    zz integer",
    b" COLLATE \"C\"",
    b"ONLY ",
    b" WITH GRANT OPTION",
    b" CASCADE",
    b"x",
];

/// One random change to a dump's bytes. Positions are drawn as `Index`es, resolved against the
/// text as it is when the edit applies.
#[derive(Debug, Clone)]
enum Edit {
    /// Cut the file here.
    Truncate(Index),
    DeleteLine(Index),
    DuplicateLine(Index),
    /// Swap a word with one of the next few (words: runs of bytes between ASCII white space).
    SwapWords(Index, usize),
    DeleteWord(Index),
    Insert(Index, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => any::<Index>().prop_map(Edit::Truncate),
        3 => any::<Index>().prop_map(Edit::DeleteLine),
        3 => any::<Index>().prop_map(Edit::DuplicateLine),
        3 => (any::<Index>(), 1usize..4).prop_map(|(i, k)| Edit::SwapWords(i, k)),
        2 => any::<Index>().prop_map(Edit::DeleteWord),
        6 => (any::<Index>(), 0..INSERTS.len()).prop_map(|(i, k)| Edit::Insert(i, k)),
    ]
}

/// Byte ranges of the lines of `text` (each with its `\n`).
fn lines(text: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in text.iter().enumerate() {
        if *b == b'\n' {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

/// Byte ranges of the words of `text`: runs of bytes between ASCII white space.
fn words(text: &[u8]) -> Vec<(usize, usize)> {
    let mut words = Vec::new();
    let mut start = None;
    for (p, b) in text.iter().enumerate() {
        match (b.is_ascii_whitespace(), start) {
            (false, None) => start = Some(p),
            (true, Some(s)) => {
                words.push((s, p));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        words.push((s, text.len()));
    }
    words
}

fn apply(text: &mut Vec<u8>, e: &Edit) {
    match e {
        Edit::Truncate(i) => {
            let at = i.index(text.len() + 1);
            text.truncate(at);
        }
        Edit::DeleteLine(i) | Edit::DuplicateLine(i) => {
            let ls = lines(text);
            if ls.is_empty() {
                return;
            }
            let (s, e2) = ls[i.index(ls.len())];
            if matches!(e, Edit::DeleteLine(_)) {
                text.drain(s..e2);
            } else {
                let line = text[s..e2].to_vec();
                text.splice(e2..e2, line);
            }
        }
        Edit::DeleteWord(i) => {
            let words = words(text);
            if !words.is_empty() {
                let (s, e) = words[i.index(words.len())];
                text.drain(s..e);
            }
        }
        Edit::SwapWords(i, k) => {
            let words = words(text);
            if words.len() < 2 {
                return;
            }
            let a = i.index(words.len() - 1);
            let b = (a + k).min(words.len() - 1);
            let ((s1, e1), (s2, e2)) = (words[a], words[b]);
            let mut out = text[..s1].to_vec();
            out.extend_from_slice(&text[s2..e2]);
            out.extend_from_slice(&text[e1..s2]);
            out.extend_from_slice(&text[s1..e1]);
            out.extend_from_slice(&text[e2..]);
            *text = out;
        }
        Edit::Insert(i, k) => {
            let at = i.index(text.len() + 1);
            text.splice(at..at, INSERTS[*k].iter().copied());
        }
    }
}

/// Which dumps a case damages, which way it plans, and with which options.
#[derive(Debug, Clone)]
struct Case {
    pair: Index,
    /// Old is SOURCE (plans old -> new's schema) or the other way round.
    old_is_source: bool,
    source_edits: Vec<Edit>,
    target_edits: Vec<Edit>,
    opts: Opts,
}

#[derive(Debug, Clone, Copy, Default)]
struct Opts {
    no_owner: bool,
    no_privileges: bool,
    online: bool,
}

fn case() -> impl Strategy<Value = Case> {
    let edits = || prop::collection::vec(edit(), 1..4);
    (
        any::<Index>(),
        any::<bool>(),
        // Source only, target only, or both.
        0..3u8,
        edits(),
        edits(),
        any::<(bool, bool, bool)>(),
    )
        .prop_map(
            |(pair, old_is_source, which, s, t, (no, np, online))| Case {
                pair,
                old_is_source,
                source_edits: if which != 1 { s } else { vec![] },
                target_edits: if which != 0 { t } else { vec![] },
                opts: Opts {
                    no_owner: no,
                    no_privileges: np,
                    online,
                },
            },
        )
}

fn read(text: &[u8], filter: &Filter) -> anyhow::Result<Catalog> {
    catalog::from_dump_reader(text, filter)
}

/// Where the canary is SQL in `sql`: an identifier token `canary_pgalign` (quoted or not).
/// Inside a string literal, a comment or a longer quoted name it is data.
fn canary_as_sql(sql: &str) -> bool {
    match parse::tokens(sql) {
        Ok(toks) => toks
            .iter()
            .any(|t| matches!(&t.kind, parse::TokKind::Ident(v) if v == CANARY)),
        // What does not even scan cannot be judged by tokens: then any mention counts.
        Err(_) => sql.contains(CANARY),
    }
}

/// The pipeline on one pair of texts, and the checks. Errors on the way are fine: the dump was
/// damaged and pgalign said so.
fn check(source: &[u8], target: &[u8], o: Opts) -> Result<(), TestCaseError> {
    let filter = Filter {
        no_owner: o.no_owner,
        no_privileges: o.no_privileges,
        ..Default::default()
    };
    let (Ok(s), Ok(t)) = (read(source, &filter), read(target, &filter)) else {
        READ_ERRORS.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    };
    let d = diff::diff(&s, &t);
    let valid = catalog::validate(&s, d.changes.iter().filter_map(|c| c.source()))
        .and_then(|_| catalog::validate(&t, d.changes.iter().filter_map(|c| c.target())));
    let opts = plan::Options {
        online: o.online,
        filter,
        ..Default::default()
    };
    if valid.is_err() {
        INVALID.fetch_add(1, Ordering::Relaxed);
        // pgalign stops here. The planner's readers must not panic on such text either (they
        // also read blocks validation does not reach): plan and render, and only look for
        // panics.
        let p = plan::plan(&s, &t, &d, &opts);
        let header = render::Header {
            source: "source",
            target: "target",
        };
        render::plan_sql(&p, &header, &mut Vec::new()).unwrap();
        return Ok(());
    }
    PLANNED.fetch_add(1, Ordering::Relaxed);
    let p = plan::plan(&s, &t, &d, &opts);
    let mut script = Vec::new();
    render::plan_sql(
        &p,
        &render::Header {
            source: "source",
            target: "target",
        },
        &mut script,
    )
    .map_err(|e| TestCaseError::fail(format!("rendering: {e}")))?;
    render::plan_json(&p, &mut Vec::new()).unwrap();
    render::diff_text(&d, &s, &t, false, &mut Vec::new()).unwrap();
    render::diff_json(&d, &s, &t, &mut Vec::new()).unwrap();
    for step in &p.steps {
        if canary_as_sql(&step.sql) {
            return Err(TestCaseError::fail(format!(
                "the injected statement reached step `{}`:\n{}",
                step.object, step.sql
            )));
        }
        let split = parse::split_script(&step.sql)
            .map_err(|e| TestCaseError::fail(format!("step `{}`: {e}", step.object)))?;
        for stmt in &split.stmts {
            if let Err(e) = parse::statement_kind(stmt) {
                return Err(TestCaseError::fail(format!(
                    "a statement of step `{}` does not parse ({e}):\n{stmt}",
                    step.object
                )));
            }
        }
    }
    // A step the planner wrote wrong is reported as unsupported (plan::steps_that_parse): fine
    // for a damaged dump, but a hunt for readers that depend on pg_dump's spacing wants them.
    if std::env::var("PGALIGN_MUTATION_STRICT").is_ok_and(|v| v == "1") {
        if let Some(u) = p
            .unsupported
            .iter()
            .find(|u| u.reason.contains("could not write this change"))
        {
            return Err(TestCaseError::fail(format!(
                "{}: {}\n{}",
                u.object,
                u.reason,
                u.source_sql.as_deref().unwrap_or("")
            )));
        }
    }
    let script = String::from_utf8(script).unwrap();
    if canary_as_sql(&script) {
        return Err(TestCaseError::fail(format!(
            "the injected statement reached the rendered script:\n{script}"
        )));
    }
    Ok(())
}

/// The lines of `after` that `before` lacks, for a failure's report.
fn changed_lines(before: &[u8], after: &[u8]) -> String {
    let (b, a) = (
        String::from_utf8_lossy(before),
        String::from_utf8_lossy(after),
    );
    let old: std::collections::HashSet<&str> = b.lines().collect();
    let mut out: Vec<String> = a
        .lines()
        .filter(|l| !old.contains(l))
        .take(12)
        .map(|l| format!("  + {l:?}"))
        .collect();
    if a.len() < b.len() && out.is_empty() {
        out.push(format!(
            "  (cut or lines removed: {} -> {} bytes)",
            b.len(),
            a.len()
        ));
    }
    out.join("\n")
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Every real dump pair plans both ways, undamaged: every block validates (not only the changed
/// ones), and every step parses. What the mutation test damages is known to be good.
#[test]
fn real_dumps_read_validate_and_plan() {
    for pair in pairs() {
        for (src, tgt) in [(&pair.old, &pair.new), (&pair.new, &pair.old)] {
            for filter in [
                Filter::default(),
                Filter {
                    no_owner: true,
                    no_privileges: true,
                    ..Default::default()
                },
            ] {
                let what = &pair.name;
                let s = read(src, &filter).unwrap_or_else(|e| panic!("{what}: {e:#}"));
                let t = read(tgt, &filter).unwrap_or_else(|e| panic!("{what}: {e:#}"));
                catalog::validate(&s, 0..s.blocks.len())
                    .unwrap_or_else(|e| panic!("{what}: {e:#}"));
                catalog::validate(&t, 0..t.blocks.len())
                    .unwrap_or_else(|e| panic!("{what}: {e:#}"));
            }
            for online in [false, true] {
                let o = Opts {
                    online,
                    ..Opts::default()
                };
                check(src, tgt, o).unwrap_or_else(|e| panic!("{}: {e}", pair.name));
            }
        }
    }
}

#[test]
fn damaged_dumps_never_panic_nor_leak_into_the_plan() {
    let pairs = pairs();
    let cases = env_u64("PGALIGN_MUTATION_CASES").unwrap_or(3000) as u32;
    let seed = match std::env::var("PGALIGN_MUTATION_SEED").as_deref() {
        Ok("random") => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
        _ => env_u64("PGALIGN_MUTATION_SEED").unwrap_or(13),
    };
    eprintln!("mutation test: {cases} cases, PGALIGN_MUTATION_SEED={seed}");
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 4096,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let result = runner.run(&case(), |c| {
        let pair = &pairs[c.pair.index(pairs.len())];
        let (mut source, mut target) = if c.old_is_source {
            (pair.old.clone(), pair.new.clone())
        } else {
            (pair.new.clone(), pair.old.clone())
        };
        for e in &c.source_edits {
            apply(&mut source, e);
        }
        for e in &c.target_edits {
            apply(&mut target, e);
        }
        check(&source, &target, c.opts).map_err(|e| {
            let (s0, t0) = if c.old_is_source {
                (&pair.old, &pair.new)
            } else {
                (&pair.new, &pair.old)
            };
            TestCaseError::fail(format!(
                "{} ({}): {e}\nsource lines changed:\n{}\ntarget lines changed:\n{}",
                pair.name,
                if c.old_is_source {
                    "old as source"
                } else {
                    "new as source"
                },
                changed_lines(s0, &source),
                changed_lines(t0, &target)
            ))
        })
    });
    eprintln!(
        "mutation test: {} refused while reading, {} by validate, {} planned (shrinking included)",
        READ_ERRORS.load(Ordering::Relaxed),
        INVALID.load(Ordering::Relaxed),
        PLANNED.load(Ordering::Relaxed)
    );
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, case)) => {
            panic!("PGALIGN_MUTATION_SEED={seed}: {why}\nminimal case: {case:#?}")
        }
        Err(e) => panic!("PGALIGN_MUTATION_SEED={seed}: {e}"),
    }
}
