//! What preflight says: a finding per step and check (its verdict, count, examples and
//! message), the outcome of a whole run, and how counts read ("1,204", "more than
//! 1,000,000", "~9.1M").

use super::query::CAP;
use super::TableSize;
use crate::plan::preflight::Rel;
use serde::Serialize;

/// What a finding means for its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The step will fail on TARGET's rows as they are: apply refuses the plan.
    WillFail,
    /// The step may fail: what was checked is TARGET as it is, and an earlier step of the plan
    /// changes a type it uses.
    MayFail,
    /// The step removes rows or values (it carries the data-loss hazard): how many.
    DataLoss,
    /// The step can fail on rows, and they were not counted: why.
    NotChecked,
}

/// One thing preflight found about one step.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The step, counted from 1 as the plan shows it.
    pub step: usize,
    pub op: String,
    pub object: String,
    /// The table whose rows were looked at (for a domain's constraint, the domain).
    pub table: String,
    pub verdict: Verdict,
    /// Rows (or groups of rows, or values) found; with `approximate`, an estimate or a count
    /// that stopped at its limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub approximate: bool,
    /// Up to three example values from TARGET's rows (primary keys, or the offending keys or
    /// values), each cut to 60 characters.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
    /// What was found and what to do, one line.
    pub message: String,
}

impl Finding {
    /// What the step's `-- preflight:` comment says.
    pub fn text(&self) -> String {
        let head = match self.verdict {
            Verdict::WillFail => "WILL FAIL: ",
            Verdict::MayFail => "may fail: ",
            Verdict::DataLoss => "",
            Verdict::NotChecked => "not checked: ",
        };
        one_line(&format!("{head}{}", self.message))
    }
    /// One line naming the step: `step 3 (alter table public.t): ...`.
    pub fn line(&self) -> String {
        one_line(&format!(
            "step {} ({} {}): {}",
            self.step,
            self.op,
            self.object,
            self.text()
        ))
    }
    /// Whether apply must refuse the plan.
    pub fn blocks(&self) -> bool {
        self.verdict == Verdict::WillFail
    }
}

/// Text from names and server messages, on one line (it goes into `--` comments).
pub(super) fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

/// What preflight did: how many checks it ran, what it found, and how big the relations the
/// steps lock are.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Outcome {
    pub checks: usize,
    pub findings: Vec<Finding>,
    /// The relations the plan's steps lock (`Step::impact`), with their sizes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sizes: Vec<TableSize>,
    /// Why the sizes are missing, when they could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sizes_not_read: Option<String>,
}

impl Outcome {
    pub fn size_of(&self, t: &Rel) -> Option<&TableSize> {
        self.sizes.iter().find(|s| s.table == *t)
    }
    pub fn blocking(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.blocks())
    }
    /// A one-line summary for a plan's header and apply's output.
    pub fn summary(&self) -> String {
        // Steps, not findings: one step can fail on several columns (an enum's rebuild).
        let fail = self
            .blocking()
            .map(|f| f.step)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let mut s = format!(
            "{} check(s) on TARGET's rows, {} finding(s)",
            self.checks,
            self.findings.len()
        );
        if fail > 0 {
            s.push_str(&format!(", {fail} step(s) WILL FAIL"));
        }
        s
    }
}

/// Rows found: how many, and some of them.
pub(super) struct Counted {
    pub n: u64,
    pub approximate: bool,
    pub examples: Vec<String>,
}

impl Counted {
    /// `12`, `more than 1,000,000`, `~9.1M`.
    pub fn shown(&self) -> String {
        if self.n > CAP {
            format!("more than {}", thousands(CAP))
        } else if self.approximate {
            estimate(self.n as f64)
        } else {
            thousands(self.n)
        }
    }
    /// ` (e.g. id=3, id=7)`, or nothing.
    pub fn examples(&self) -> String {
        if self.examples.is_empty() {
            String::new()
        } else {
            format!(" (e.g. {})", self.examples.join(", "))
        }
    }
}

pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub(super) fn estimate(n: f64) -> String {
    if n >= 1e9 {
        format!("~{:.1}G", n / 1e9)
    } else if n >= 1e6 {
        format!("~{:.1}M", n / 1e6)
    } else {
        format!("~{}", thousands(n.round() as u64))
    }
}

pub(super) fn plural(n: &Counted, one: &str, many: &str) -> String {
    format!("{} {}", n.shown(), if n.n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_as_people_read_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1204), "1,204");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(estimate(9_100_000.0), "~9.1M");
        assert_eq!(estimate(2_500_000_000.0), "~2.5G");
        let capped = Counted {
            n: CAP + 1,
            approximate: true,
            examples: vec![],
        };
        assert_eq!(capped.shown(), "more than 1,000,000");
    }
}
