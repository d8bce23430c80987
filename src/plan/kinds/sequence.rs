//! Sequences: a regular one takes ALTER SEQUENCE with the new options; an identity column's
//! takes ALTER COLUMN ... SET GENERATED / SET options, which keeps the current value. A serial
//! column's sequence that becomes the column's identity under the same name (or the reverse)
//! makes way for the new one, which takes its value.

use super::{acl, Altered, Decision};
use crate::catalog::parse::{name_making_way, qualified, quote_ident, quote_literal};
use crate::catalog::read::{self, identity_of};
use crate::catalog::{Block, Key, ObjectKind};
use crate::plan::{Ctx, Hazard, Op};

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
            return identity_to_sequence(ctx, s, t);
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
    if old.starts_with("CREATE SEQUENCE ") {
        return sequence_to_identity(ctx, s, t);
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

/// What TARGET's sequence is renamed to while the new one of its name is made.
const MAKING_WAY: &str = "__pgalign_old";

/// A sequence of TARGET (a serial column's, or one of its own) that SOURCE has as an identity
/// column's, under the same name (`serial` to `GENERATED ... AS IDENTITY`: both name it
/// `<table>_<column>_seq`). The column's serial default and OWNED BY are dropped with the drops;
/// here the old sequence is renamed out of the way, the identity added with SOURCE's sequence
/// name and options, given the old one's value, and the old one dropped.
fn sequence_to_identity(ctx: &Ctx, s: &Block, t: &Block) -> Decision {
    let Some(add) = s
        .stmts
        .first()
        .filter(|x| read::identity_parts(x).is_some())
    else {
        return Decision::Unsupported("cannot read the identity definition".into());
    };
    make_way(
        ctx,
        s,
        (t.key.schema.as_str(), t.key.name.as_str()),
        &format!("{add};\n"),
        |old| format!("DROP SEQUENCE {old};\n"),
        "the sequence becomes the identity of its column (serial to identity): the old one makes way for SOURCE's, which continues from its value",
    )
}

/// An identity column's sequence that SOURCE has as a sequence of its own (a serial column's,
/// `GENERATED ... AS IDENTITY` to `serial`) under the same name: the identity's sequence is
/// renamed out of the way, SOURCE's created, given its value, and the identity dropped (with its
/// sequence). The serial default and OWNED BY are SOURCE entries of their own, created after.
fn identity_to_sequence(ctx: &Ctx, s: &Block, t: &Block) -> Decision {
    let drop_identity = t
        .stmts
        .first()
        .filter(|x| read::identity_parts(x).is_some())
        .and_then(|x| read::replace_from(x, &["ADD", "GENERATED"], "DROP IDENTITY"));
    let (Some(drop_identity), Some(create)) = (drop_identity, s.stmts.first()) else {
        return Decision::Unsupported("cannot read the identity definition".into());
    };
    make_way(
        ctx,
        s,
        (s.key.schema.as_str(), s.key.name.as_str()),
        &format!("{create};\n"),
        |_| drop_identity,
        "the identity's sequence becomes a sequence of its own (identity to serial): SOURCE's is created and continues from the identity's value",
    )
}

/// One step for a sequence that changes form under its name: the old one is renamed out of the
/// way, `make` makes SOURCE's under the name, which takes the old one's value, then what `then`
/// writes for the old one (given its name aside, as SQL) runs, which removes it, and SOURCE's
/// comment and privileges are set again.
fn make_way(
    ctx: &Ctx,
    s: &Block,
    (schema, name): (&str, &str),
    make: &str,
    then: impl FnOnce(&str) -> String,
    reason: &str,
) -> Decision {
    let aside = name_making_way(name, MAKING_WAY);
    let old = qualified(schema, &aside);
    let mut sql = format!(
        "ALTER SEQUENCE {} RENAME TO {};\n{make}",
        qualified(schema, name),
        quote_ident(&aside),
    );
    sql.push_str(&carry_value(&old, schema, name));
    sql.push_str(&then(&old));
    sql.push_str(&comment_and_privileges(ctx, s));
    Decision::alter(Altered::steps(vec![ctx.step(
        s,
        Op::Replace,
        reason,
        sql,
        vec![Hazard::AccessExclusiveLock],
    )]))
}

/// Gives sequence `schema.name` the value of sequence `from`, when `from` has handed out a value
/// and that value lies within the new one's bounds (else the new one starts where its options
/// say). The new sequence is made in the same transaction: a rollback takes it, value and all.
fn carry_value(from: &str, schema: &str, name: &str) -> String {
    let to = quote_literal(&qualified(schema, name));
    format!(
        "SELECT pg_catalog.setval({to}, o.last_value, true) FROM {from} o, pg_catalog.pg_sequence s \
         WHERE s.seqrelid = {to}::pg_catalog.regclass AND o.is_called AND o.last_value BETWEEN s.seqmin AND s.seqmax;\n"
    )
}

/// A sequence made anew starts without a comment and with the built-in privileges: SOURCE's
/// comment and privileges on it (which the diff may see as unchanged) are set again.
fn comment_and_privileges(ctx: &Ctx, s: &Block) -> String {
    let mut sql = String::new();
    let tag = format!("SEQUENCE {}", s.key.name);
    for kind in [ObjectKind::Comment, ObjectKind::Acl] {
        let key = Key {
            kind: kind.clone(),
            schema: s.key.schema,
            name: tag.as_str().into(),
        };
        let Some(b) = ctx.src.get(&key) else { continue };
        if kind == ObjectKind::Acl {
            if let Ok(x) = acl::change(None, Some(b), ctx.tgt.server_version) {
                sql.push_str(&x);
            }
        } else {
            sql.push_str(&b.sql());
        }
    }
    sql
}

/// For an identity SOURCE adds to a column that TARGET has as a serial column of another
/// sequence (dropped by the plan): a note that the identity does not continue from that
/// sequence's value, which is gone before the identity is made.
pub(super) fn replaces_serial(ctx: &Ctx, s: &Block) -> Option<String> {
    let ((schema, table), column, _) = read::identity_parts(s.stmts.first()?)?;
    let default = ctx.tgt.get(&Key {
        kind: ObjectKind::Default,
        schema: schema.as_str().into(),
        name: format!("{table} {column}").as_str().into(),
    })?;
    let expr = read::set_default_expr(default.stmts.first()?)?;
    let (sch, seq) = read::nextval_sequence(&expr)?;
    let old = Key {
        kind: ObjectKind::Sequence,
        schema: sch.as_str().into(),
        name: seq.as_str().into(),
    };
    (ctx.tgt.get(&old).is_some() && ctx.src.get(&old).is_none()).then(|| {
        format!(
            "; TARGET's column took its values from {}, which is dropped: the identity starts where its options say, not where that sequence was (setval it by hand if the table has rows)",
            qualified(&sch, &seq)
        )
    })
}
