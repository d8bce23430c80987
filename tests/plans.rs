//! The planner on every fixture, in process and with no server: each fixture's checked-in dumps
//! (`dumps/{old,new}.sql`, written by scripts/fixture-dumps.sh from PostgreSQL 15) go through
//! catalog -> diff -> validate -> plan -> render, and
//! - the SQL script must equal the fixture's `plan.snap` (the same snapshot the round trip on
//!   the server checks), and
//! - the plan's shape must equal its `plan_json.snap`: each step's kind, operation, hazards,
//!   timeouts and transaction, the execution groups, what is unsupported, the notes.
//!
//! A third check keeps one truth for "equal": the round-trip tests' dump normalizer
//! (tests/common/normalize.rs) must print exactly what scripts/dumpnorm.py (the corpus script's)
//! prints for every fixture dump, and both must call a fixture's two dumps equal exactly when
//! pgalign's catalogs find no difference.
//!
//! Runs in seconds: the quick loop for planner work (`cargo test --test plans`). New fixtures
//! need their dumps first: `scripts/fixture-dumps.sh <kind>/<case>`; new snapshots are reviewed
//! with `cargo insta review` (or written with INSTA_UPDATE=always).

mod common;

use common::normalize_dump;
use libtest_mimic::{Arguments, Failed, Trial};
use pgalign::catalog::{self, Catalog, Filter};
use pgalign::{diff, plan, render};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Every fixture with both of its dumps checked in; a fixture without them is an error, so a
/// new case cannot slip past this test.
fn cases() -> Vec<PathBuf> {
    common::fixture_cases()
}

fn read(path: &Path) -> Result<Catalog, Failed> {
    let text = std::fs::read(path).map_err(|e| {
        format!(
            "{}: {e} (write the fixture's dumps with scripts/fixture-dumps.sh)",
            path.display()
        )
    })?;
    catalog::from_dump_reader(&text[..], &Filter::default())
        .map_err(|e| format!("{}: {e:#}", path.display()).into())
}

fn snapshot(case: &Path, name: &str, value: &str) -> Result<(), Failed> {
    let ok = std::panic::catch_unwind(|| {
        insta::with_settings!({
            snapshot_path => case,
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, value);
        });
    });
    ok.map_err(|_| {
        format!("the plan differs from its snapshot ({name}.snap); review with cargo insta review")
            .into()
    })
}

/// The plan's shape without its SQL (which plan.snap holds) and without what changes with
/// pgalign's version (the version and the digest over it).
fn shape(p: &plan::Plan) -> String {
    let mut v = serde_json::to_value(p).expect("a plan serializes");
    let o = v.as_object_mut().expect("a plan is an object");
    o.remove("pgalign_version");
    o.remove("digest");
    for s in o["steps"].as_array_mut().expect("steps").iter_mut() {
        s.as_object_mut().expect("a step").remove("sql");
    }
    for u in o["unsupported"]
        .as_array_mut()
        .expect("unsupported")
        .iter_mut()
    {
        let u = u.as_object_mut().expect("an unsupported change");
        u.remove("target_sql");
        u.remove("source_sql");
    }
    let groups: Vec<serde_json::Value> = p
        .groups()
        .iter()
        .map(|g| {
            serde_json::json!({
                "kind": format!("{:?}", g.kind),
                "steps": [g.steps.start, g.steps.end],
            })
        })
        .collect();
    o.insert("groups".into(), groups.into());
    let mut s = serde_json::to_string_pretty(&v).expect("json");
    s.push('\n');
    s
}

fn plan_case(case: &Path) -> Result<(), Failed> {
    let dumps = case.join("dumps");
    let target = read(&dumps.join("old.sql"))?;
    let source = read(&dumps.join("new.sql"))?;
    let d = diff::diff(&source, &target);
    catalog::validate(&source, d.changes.iter().filter_map(|c| c.source()))
        .and_then(|_| catalog::validate(&target, d.changes.iter().filter_map(|c| c.target())))
        .map_err(|e| format!("validation refused a fixture dump: {e:#}"))?;
    let mut p = plan::plan(&source, &target, &d, &plan::Options::default());
    p.seal();
    let mut script = Vec::new();
    let header = render::Header {
        source: "source",
        target: "target",
    };
    render::plan_sql(&p, &header, &mut script)?;
    // As in tests/fixtures.rs: the header lines name the databases.
    let stable: String = String::from_utf8(script)?
        .lines()
        .filter(|l| !l.starts_with("-- source (desired)") && !l.starts_with("-- target (changed)"))
        .map(|l| format!("{l}\n"))
        .collect();
    snapshot(case, "plan", &stable)?;
    snapshot(case, "plan_json", &shape(&p))
}

/// Both normalizers on every fixture dump, and their verdicts against the catalog's.
fn normalizers_agree() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let mut inputs = Vec::new();
    for case in cases() {
        for side in ["old", "new"] {
            inputs.push(case.join("dumps").join(format!("{side}.sql")));
        }
    }
    let outputs: Vec<PathBuf> = (0..inputs.len())
        .map(|i| dir.path().join(format!("{i}.norm")))
        .collect();
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dumpnorm.py"));
    cmd.args(&inputs);
    for o in &outputs {
        cmd.arg("-o").arg(o);
    }
    let out = cmd.output().map_err(|e| format!("running python3: {e}"))?;
    if !out.status.success() {
        return Err(format!("dumpnorm.py: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let texts: Vec<String> = inputs
        .iter()
        .map(|i| std::fs::read(i).map(|t| String::from_utf8_lossy(&t).into_owned()))
        .collect::<Result<_, _>>()?;
    let joined = |v: Vec<String>| -> String { v.iter().map(|s| format!("{s}\n")).collect() };
    let mut problems = Vec::new();
    let mut norms = Vec::new();
    for ((input, output), text) in inputs.iter().zip(&outputs).zip(&texts) {
        let ours = joined(normalize_dump(text));
        if ours != std::fs::read_to_string(output)? {
            problems.push(format!(
                "{}: the test normalizer and dumpnorm.py differ",
                input.display()
            ));
        }
        norms.push(ours);
    }
    // Verdicts: each fixture's two dumps, and each dump against itself with every table's
    // columns in another order (which all must call equal: column order is a note).
    let read = |text: &str| catalog::from_dump_reader(text.as_bytes(), &Filter::default());
    for (k, text) in texts.iter().enumerate() {
        let Ok(a) = read(text) else {
            problems.push(format!("{}: the catalog refused it", inputs[k].display()));
            continue;
        };
        let rotated = rotate_table_elements(text);
        let rotated_norm = joined(normalize_dump(&rotated));
        let mut against = vec![(
            "itself with its columns reordered",
            rotated.as_str(),
            &rotated_norm,
        )];
        if k % 2 == 1 {
            against.push(("the fixture's other dump", &texts[k - 1], &norms[k - 1]));
        }
        for (what, other, other_norm) in against {
            let equal_by_text = norms[k] == *other_norm;
            let Ok(b) = read(other) else {
                problems.push(format!(
                    "{}: vs {what}: the catalog refused it",
                    inputs[k].display()
                ));
                continue;
            };
            let changes = diff::diff(&a, &b).changes.len();
            if equal_by_text != (changes == 0) {
                problems.push(format!(
                    "{}: vs {what}: the normalizers say {}, the catalogs find {changes} change(s)",
                    inputs[k].display(),
                    if equal_by_text { "equal" } else { "different" },
                ));
            }
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n").into())
    }
}

/// The dump with the element lines of every `CREATE ... TABLE ... (` rotated by one (the first
/// column last), commas moved so the statement stays well formed. Only tables whose elements
/// are one line each are touched.
fn rotate_table_elements(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        out.push(l.to_string());
        i += 1;
        if !(l.starts_with("CREATE ") && l.contains("TABLE ") && l.ends_with(" (")) {
            continue;
        }
        let Some(len) = lines[i..].iter().position(|x| x.starts_with(')')) else {
            continue;
        };
        let elems = &lines[i..i + len];
        let one_line_each = elems
            .iter()
            .enumerate()
            .all(|(j, e)| e.starts_with("    ") && (e.ends_with(',') == (j + 1 < elems.len())));
        if elems.len() < 2 || !one_line_each {
            continue;
        }
        let mut bare: Vec<&str> = elems.iter().map(|e| e.trim_end_matches(',')).collect();
        bare.rotate_left(1);
        for (j, e) in bare.iter().enumerate() {
            out.push(if j + 1 < bare.len() {
                format!("{e},")
            } else {
                e.to_string()
            });
        }
        i += len;
    }
    out.join("\n")
}

fn main() {
    let args = Arguments::from_args();
    let mut trials = Vec::new();
    for case in cases() {
        let name = case.strip_prefix(root()).unwrap().display().to_string();
        trials.push(Trial::test(format!("plan::{name}"), move || {
            plan_case(&case)
        }));
    }
    trials.push(Trial::test("normalizers_agree", normalizers_agree));
    libtest_mimic::run(&args, trials).exit();
}
