//! Sequences: a regular one takes ALTER SEQUENCE with the new options; an identity column's
//! takes ALTER COLUMN ... SET GENERATED / SET options, which keeps the current value.

use super::{Altered, Decision};
use crate::catalog::read::{self, identity_of};
use crate::catalog::Block;
use crate::plan::{Ctx, Op};

/// A changed sequence: regular ones take ALTER SEQUENCE with the new options; identity ones
/// take ALTER COLUMN ... SET GENERATED / SET options, which keeps the current value.
pub(super) fn sequence(ctx: &Ctx, s: &Block, t: &Block) -> Decision {
    let (Some(new), Some(old)) = (s.stmts.first(), t.stmts.first()) else {
        return Decision::Unsupported("empty sequence definition".into());
    };
    if s.stmts.len() != 1 || t.stmts.len() != 1 {
        return Decision::Unsupported("sequence definition has extra statements".into());
    }
    let cycle = |txt: &str| txt.lines().any(|l| l.trim() == "CYCLE");
    if let Some(rest) = new.strip_prefix("CREATE SEQUENCE ") {
        if !old.starts_with("CREATE SEQUENCE ") {
            return Decision::Unsupported("a sequence became an identity or the reverse".into());
        }
        let min = |txt: &str| -> Option<i128> {
            txt.lines()
                .find_map(|l| l.trim().strip_prefix("MINVALUE "))
                .and_then(|v| v.trim().parse().ok())
        };
        let mut sql = String::new();
        if let (Some(new_min), Some(id)) = (min(new), identity_of(s)) {
            if min(old).is_none_or(|o| new_min > o) {
                // A sequence whose current value is below the new MINVALUE cannot take it:
                // move it up first (setval is not undone by a rollback; moving a sequence
                // forward never reuses a value).
                sql.push_str(&format!(
                    "SELECT pg_catalog.setval({}, {new_min}, false) FROM {id} WHERE last_value < {new_min};\n",
                    crate::catalog::quote_literal(&id)
                ));
            }
        }
        sql.push_str(&format!("ALTER SEQUENCE {rest}"));
        // pg_dump leaves out `AS bigint`, the default; ALTER must say it to change back.
        let has_as = |txt: &str| txt.lines().any(|l| l.trim().starts_with("AS "));
        if has_as(old) && !has_as(new) {
            sql.push_str("\n    AS bigint");
        }
        if !cycle(new) {
            sql.push_str("\n    NO CYCLE");
        }
        sql.push_str(";\n");
        return Decision::alter(Altered::steps(vec![ctx.step(
            s,
            Op::Alter,
            "sequence options differ",
            sql,
            vec![],
        )]));
    }
    let parse =
        |txt: &str| read::identity_definition(txt).map(|d| (d.head, d.generated, d.options));
    let (Some((head, kind, opts)), Some((ohead, _, oopts))) = (parse(new), parse(old)) else {
        return Decision::Unsupported("cannot read the identity definition".into());
    };
    let seqname = |o: &[String]| o.iter().find(|l| l.starts_with("SEQUENCE NAME")).cloned();
    if head != ohead || seqname(&opts) != seqname(&oopts) {
        return Decision::Unsupported(
            "the identity moved to another column or its sequence was renamed".into(),
        );
    }
    let mut sql = format!("{head} SET GENERATED {kind}");
    for o in opts
        .iter()
        .filter(|o| !o.starts_with("SEQUENCE NAME") && !o.starts_with("AS "))
    {
        sql.push_str(&format!(" SET {o}"));
    }
    if !opts.iter().any(|o| o == "CYCLE") {
        sql.push_str(" SET NO CYCLE");
    }
    sql.push_str(";\n");
    Decision::alter(Altered::steps(vec![ctx.step(
        s,
        Op::Alter,
        "identity options differ",
        sql,
        vec![],
    )]))
}
