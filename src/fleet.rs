//! Fleets: one SOURCE, many TARGETs. The members file, what became of each member, and the
//! summary, JSON and Markdown reports over them. Pure: `commands/fleet.rs` runs the members.

use serde::{Deserialize, Serialize};

/// One share of a fleet's members: the `index`-th (from 1) of `of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub of: u32,
}

impl Shard {
    /// `2/4`: the second of four shares.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || {
            format!(
                "{:?} is not a shard: write I/N with 1 <= I <= N <= 100, e.g. 2/4",
                s.chars().take(20).collect::<String>()
            )
        };
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let (index, of): (u32, u32) =
            (i.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
        if index == 0 || index > of || of > 100 {
            return Err(bad());
        }
        Ok(Shard { index, of })
    }
    /// Whether the member at `position` (from 0, in file order) belongs to this share.
    pub fn has(self, position: usize) -> bool {
        position % self.of as usize == (self.index - 1) as usize
    }
}

/// One TARGET of a fleet, as its line in the members file gives it.
#[derive(Clone, PartialEq, Eq)]
pub struct Member {
    /// A short name: letters, digits, `_`, `-`, `.` (it names the member's plan file).
    pub name: String,
    /// Any endpoint pgalign takes (URL, libpq string, secret, dump file for diff and plan).
    pub endpoint: String,
    /// The line it was read from, counted from 1.
    pub line: usize,
    /// `schema=TENANT`: the member is that schema of its database, compared with SOURCE's
    /// template schema (`--source-schema`) as if it bore the tenant's name.
    pub schema: Option<String>,
}

impl std::fmt::Debug for Member {
    // The endpoint may hold a password: never shown whole.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("name", &self.name)
            .field("endpoint", &crate::endpoint::redact(&self.endpoint))
            .field("line", &self.line)
            .field("schema", &self.schema)
            .finish()
    }
}

/// Reads a members file: `NAME ENDPOINT` a line, `#` comments and blank lines ignored. The
/// error names the line and what is wrong with it (never its endpoint, which may hold a
/// password).
pub fn parse_members(text: &str) -> Result<Vec<Member>, String> {
    let mut out: Vec<Member> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (name, rest) = match l.split_once(char::is_whitespace) {
            Some((n, r)) => (n, r.trim()),
            None => {
                return Err(format!(
                    "line {line}: a member needs a name and an endpoint (NAME ENDPOINT)"
                ))
            }
        };
        let name_ok = !name.is_empty()
            && name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && !name.starts_with('.');
        if !name_ok {
            return Err(format!(
                "line {line}: the member name {:?} is not 1-63 letters, digits, '_', '-' or '.'",
                name.chars().take(40).collect::<String>()
            ));
        }
        if rest.is_empty() {
            return Err(format!("line {line}: member {name} has no endpoint"));
        }
        // A last word `schema=TENANT` (libpq has no such keyword, so it cannot end an endpoint).
        let (rest, schema) = match rest.rsplit_once(char::is_whitespace) {
            Some((ep, last)) if last.starts_with("schema=") => (ep.trim(), Some(&last[7..])),
            _ if rest.starts_with("schema=") => {
                return Err(format!(
                    "line {line}: member {name} has no endpoint before schema="
                ))
            }
            _ => (rest, None),
        };
        if let Some(t) = schema {
            if t.is_empty() || t.len() > 63 || t.contains(['"', '\0']) {
                return Err(format!(
                    "line {line}: member {name}: schema= needs a schema name of 1-63 bytes"
                ));
            }
        }
        if let Some(first) = out.iter().find(|m| m.name == name) {
            return Err(format!(
                "line {line}: member {name} is already on line {}",
                first.line
            ));
        }
        out.push(Member {
            name: name.to_string(),
            endpoint: rest.to_string(),
            line,
            schema: schema.map(String::from),
        });
    }
    if out.is_empty() {
        return Err("it lists no member (one a line: NAME ENDPOINT)".into());
    }
    Ok(out)
}

/// What became of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Already equal to SOURCE (diff, plan: nothing to do; apply: nothing applied).
    Equal,
    /// Differs from SOURCE (diff, plan).
    Differs,
    /// Applied and verified equal.
    Applied,
    /// Applied, and differences remain (not supported changes).
    Residue,
    /// Refused before any change: hazards not allowed, or a rewrite over --max-rewrite.
    Refused,
    /// An error: connection, dump, preflight refusal, rehearsal, apply.
    Failed,
    /// Not started: the canary failed, too many failures, or a signal.
    NotStarted,
}

impl Outcome {
    pub fn text(self) -> &'static str {
        match self {
            Outcome::Equal => "equal",
            Outcome::Differs => "differs",
            Outcome::Applied => "applied",
            Outcome::Residue => "applied, differences remain",
            Outcome::Refused => "refused",
            Outcome::Failed => "FAILED",
            Outcome::NotStarted => "not started",
        }
    }
    /// Whether it counts against `--max-failures` and the canary.
    pub fn failed(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Refused)
    }
}

/// One member's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberResult {
    pub member: String,
    /// The endpoint, passwords redacted.
    pub endpoint: String,
    pub outcome: Outcome,
    /// Steps planned (or applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hazards: Vec<String>,
    /// Differences found (diff), or left after apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub residue: Vec<String>,
    /// What went wrong, or why it was not started: one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub ms: f64,
    /// Whether it ran in the canary wave.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub canary: bool,
}

impl MemberResult {
    /// The line printed as the member finishes.
    pub fn line(&self) -> String {
        let mut s = format!("member {}: {}", self.member, self.outcome.text());
        if let Some(n) = self.steps.filter(|n| *n > 0) {
            s.push_str(&format!(", {n} step(s)"));
        }
        if !self.residue.is_empty() {
            s.push_str(&format!(", {} difference(s)", self.residue.len()));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!(": {e}"));
        }
        if self.outcome != Outcome::NotStarted {
            s.push_str(&format!(" ({:.1} s)", self.ms / 1000.0));
        }
        s.replace(['\n', '\r'], " ")
    }
}

/// The fleet's exit code: 1 when any member failed, else 3 when any was refused, else 2 when
/// any differs or has residue (or was not started), else 0.
pub fn exit_code(results: &[MemberResult]) -> i32 {
    let any = |o: Outcome| results.iter().any(|r| r.outcome == o);
    if any(Outcome::Failed) {
        1
    } else if any(Outcome::Refused) {
        3
    } else if any(Outcome::Differs) || any(Outcome::Residue) || any(Outcome::NotStarted) {
        2
    } else {
        0
    }
}

/// The summary table printed at the end.
pub fn summary(results: &[MemberResult]) -> Vec<String> {
    let width = results
        .iter()
        .map(|r| r.member.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let mut out = vec![format!(
        "{:<width$}  {:<28}  {:>5}  {:>8}  hazards",
        "member", "result", "steps", "time"
    )];
    for r in results {
        out.push(format!(
            "{:<width$}  {:<28}  {:>5}  {:>8}  {}",
            r.member,
            r.outcome.text(),
            r.steps.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            if r.outcome == Outcome::NotStarted {
                "-".to_string()
            } else {
                format!("{:.1} s", r.ms / 1000.0)
            },
            if r.hazards.is_empty() {
                "-".to_string()
            } else {
                r.hazards.join(",")
            }
        ));
    }
    let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    let mut totals = Vec::new();
    for o in [
        Outcome::Equal,
        Outcome::Differs,
        Outcome::Applied,
        Outcome::Residue,
        Outcome::Refused,
        Outcome::Failed,
        Outcome::NotStarted,
    ] {
        if count(o) > 0 {
            totals.push(format!("{} {}", count(o), o.text()));
        }
    }
    out.push(format!(
        "{} member(s): {}",
        results.len(),
        totals.join(", ")
    ));
    out
}

/// The fleet report, as JSON.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    pub action: &'a str,
    pub source: &'a str,
    pub exit_code: i32,
    pub members: &'a [MemberResult],
    pub total_ms: f64,
}

/// A fleet report read back (`fleet merge-reports`).
#[derive(Debug, Deserialize)]
pub struct ReadReport {
    pub action: String,
    pub source: String,
    pub members: Vec<MemberResult>,
    pub total_ms: f64,
}

/// Reports of several runs (a batch's shards) as one: members in the order given, the same
/// action and SOURCE required. The wall time is the longest run's (the shards ran at once).
pub fn merge(
    reports: Vec<(String, ReadReport)>,
) -> Result<(String, String, Vec<MemberResult>, f64), String> {
    let mut it = reports.into_iter();
    let Some((first_name, first)) = it.next() else {
        return Err("no report to merge: pass --from FILE (repeatable)".into());
    };
    let (action, source, mut members, mut ms) =
        (first.action, first.source, first.members, first.total_ms);
    for (name, r) in it {
        if r.action != action || r.source != source {
            return Err(format!(
                "{name} is a fleet {} of {}, {first_name} a fleet {action} of {source}: only reports of one run merge",
                r.action, r.source
            ));
        }
        for m in r.members {
            if let Some(dup) = members.iter().find(|x| x.member == m.member) {
                return Err(format!(
                    "member {} is in two reports ({name} and another)",
                    dup.member
                ));
            }
            members.push(m);
        }
        ms = ms.max(r.total_ms);
    }
    Ok((action, source, members, ms))
}

/// A CodeBuild batch buildspec: `shards` builds, each running `fleet apply` (or the action
/// given) on its share of the members listed in `targets` (a path in the repository), and
/// uploading its report.
pub fn batch_buildspec(targets: &str, shards: u32, action: &str) -> String {
    // YAML single-quoted: a quote is written twice; nothing else is special inside.
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let mut s = String::from(
        "# CodeBuild batch build: pgalign fleet, one build per shard of the members.\n\
         # Written by `pgalign fleet codebuild`; start it with\n\
         #   aws codebuild start-build-batch --project-name pgalign --buildspec-override file://THIS_FILE\n\
         # (the project needs batch builds enabled and a batch service role: see the README). Each\n\
         # build uploads fleet-<shard>.json/.md; merge them with\n\
         #   pgalign fleet merge-reports --from fleet-1.json --from fleet-2.json ... --report-md fleet.md\n\
         version: 0.2\n\nbatch:\n  fast-fail: false\n  build-list:\n",
    );
    for i in 1..=shards {
        s.push_str(&format!(
            "    - identifier: shard_{i}\n      env:\n        variables:\n          PGALIGN_FLEET_SHARD: {}\n",
            q(&format!("{i}/{shards}"))
        ));
    }
    s.push_str(&format!(
        "\nenv:\n  variables:\n    PGALIGN_PG_MAJOR: \"16\"\n    PGALIGN_FLEET_TARGETS: {}\n    PGALIGN_FLEET_ACTION: {}\n\n\
         phases:\n  install:\n    commands:\n      - bash scripts/codebuild-phase.sh install\n  build:\n    commands:\n      - bash scripts/codebuild-phase.sh fleet\n\n\
         artifacts:\n  base-directory: pgalign-out\n  files:\n    - \"**/*\"\n  discard-paths: yes\n",
        q(targets),
        q(action)
    ));
    s
}

/// The fleet report in Markdown: a drift dashboard for a pull request or a wiki.
pub fn report_md(r: &Report) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace(['\n', '\r'], " ");
    let mut s = format!(
        "### pgalign fleet {}: {} member(s), exit {}\n\nSource: `{}` · {:.1} s\n\n",
        r.action,
        r.members.len(),
        r.exit_code,
        cell(r.source),
        r.total_ms / 1000.0
    );
    s.push_str(
        "| member | result | steps | hazards | time | details |\n|---|---|---|---|---|---|\n",
    );
    for m in r.members {
        let details = match (&m.error, m.residue.is_empty()) {
            (Some(e), _) => e.clone(),
            (None, false) => m.residue.join("; "),
            (None, true) => String::new(),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            cell(&m.member),
            m.outcome.text(),
            m.steps.map(|n| n.to_string()).unwrap_or_default(),
            m.hazards.join(", "),
            if m.outcome == Outcome::NotStarted {
                String::new()
            } else {
                format!("{:.1} s", m.ms / 1000.0)
            },
            cell(&details.chars().take(300).collect::<String>())
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_file() {
        let m = parse_members(
            "# region databases\n\neu postgres://app@eu.example/app\nus-1  host=us.example dbname=app user=app\n",
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].name, "us-1");
        assert_eq!(m[1].endpoint, "host=us.example dbname=app user=app");
        assert_eq!(m[1].line, 4);
        let t = parse_members("t1 host=h dbname=app schema=tenant_1\n").unwrap();
        assert_eq!(t[0].endpoint, "host=h dbname=app");
        assert_eq!(t[0].schema.as_deref(), Some("tenant_1"));
        for (text, says) in [
            ("eu\n", "line 1: a member needs a name and an endpoint"),
            ("e/u x\n", "line 1: the member name \"e/u\""),
            ("a x\na y\n", "line 2: member a is already on line 1"),
            ("# only\n", "lists no member"),
            ("t schema=tenant_1\n", "has no endpoint before schema="),
            ("t postgres://h/db schema=\n", "schema= needs a schema name"),
        ] {
            let e = parse_members(text).unwrap_err();
            assert!(e.contains(says), "{text:?}: {e}");
        }
        let e = parse_members("a\tpostgres://u:hunter2@h/db\nbad/name postgres://u:hunter2@h/db\n")
            .unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let m = parse_members("a postgres://u:hunter2@h/db\n").unwrap();
        assert!(!format!("{m:?}").contains("hunter2"));
    }

    fn r(o: Outcome) -> MemberResult {
        MemberResult {
            member: "m".into(),
            endpoint: String::new(),
            outcome: o,
            steps: None,
            hazards: vec![],
            residue: vec![],
            error: None,
            ms: 0.0,
            canary: false,
        }
    }

    #[test]
    fn shards_and_batches() {
        let s = Shard::parse("2/3").unwrap();
        let picked: Vec<usize> = (0..7).filter(|i| s.has(*i)).collect();
        assert_eq!(picked, [1, 4]);
        for bad in ["0/2", "3/2", "1/101", "a/b", "2", "1/0", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let spec = batch_buildspec("fleets/it's.txt", 2, "apply");
        assert!(spec.contains("    - identifier: shard_2\n"), "{spec}");
        assert!(spec.contains("PGALIGN_FLEET_SHARD: '2/2'"), "{spec}");
        assert!(
            spec.contains("PGALIGN_FLEET_TARGETS: 'fleets/it''s.txt'"),
            "{spec}"
        );
        assert!(
            spec.contains("bash scripts/codebuild-phase.sh fleet"),
            "{spec}"
        );
    }

    #[test]
    fn reports_merge() {
        let rep = |members: Vec<MemberResult>| ReadReport {
            action: "apply".into(),
            source: "s".into(),
            members,
            total_ms: 5.0,
        };
        let mut a = r(Outcome::Applied);
        a.member = "a".into();
        let mut b = r(Outcome::Failed);
        b.member = "b".into();
        let (_, _, m, _) = merge(vec![
            ("1".into(), rep(vec![a.clone()])),
            ("2".into(), rep(vec![b])),
        ])
        .unwrap();
        assert_eq!(exit_code(&m), 1);
        assert!(merge(vec![
            ("1".into(), rep(vec![a.clone()])),
            ("2".into(), rep(vec![a]))
        ])
        .unwrap_err()
        .contains("member a is in two reports"));
        assert!(merge(Vec::new()).is_err());
    }

    #[test]
    fn exit_codes() {
        use Outcome::*;
        assert_eq!(exit_code(&[r(Equal), r(Applied)]), 0);
        assert_eq!(exit_code(&[r(Equal), r(Differs)]), 2);
        assert_eq!(exit_code(&[r(Residue), r(Refused)]), 3);
        assert_eq!(exit_code(&[r(Refused), r(Failed)]), 1);
        assert_eq!(exit_code(&[r(Applied), r(NotStarted)]), 2);
    }
}
