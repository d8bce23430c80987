//! What a new column takes along: its serial default or identity, which pg_dump prints as entries
//! of their own, and whether its default makes ADD COLUMN rewrite the table.

use crate::catalog::parse::{self, ColumnDef, Volatility};
use crate::catalog::read;
use crate::catalog::{Key, ObjectKind, TableDef};
use crate::plan::Ctx;

/// A new column's default or identity that pg_dump writes as an entry of its own, taken into
/// the column's ADD COLUMN so that existing rows get values from its sequence.
pub(super) struct Folded {
    /// `DEFAULT nextval(...)` or `GENERATED ... AS IDENTITY (...)`.
    pub clause: String,
    /// The SOURCE entry this replaces (the DEFAULT, or the identity's SEQUENCE).
    pub entry: usize,
    /// A serial's sequence (SOURCE block), created before the ADD COLUMN when the plan
    /// creates it.
    pub sequence: Option<usize>,
    pub volatile: bool,
    pub why: &'static str,
}

/// For column `c`, new on table `t`: its serial default (`SET DEFAULT nextval(...)`) or identity
/// (`ADD GENERATED ... AS IDENTITY`) when SOURCE has it as an entry of its own that TARGET lacks.
/// Not on tables with partitions or inheritance children: ADD COLUMN gives them the column too,
/// with the default, which their own entries may not have.
pub(super) fn folded_default(ctx: &Ctx, t: &TableDef, c: &ColumnDef) -> Option<Folded> {
    if c.default.is_some() || c.generated.is_some() {
        return None;
    }
    // Scans every table of both sides: asked last, only for the rare column that has a
    // serial default or identity to fold (once per new column, it cost a second at 10,000).
    let no_children = || !has_children(ctx, t);
    let new_entry = |i: usize| {
        let key = &ctx.src.blocks[i].key;
        (ctx.tgt.position(key).is_none()).then_some(i)
    };
    let me = (t.schema.clone(), t.name.clone(), c.name.clone());
    if let Some(q) = ctx
        .src_rel
        .identity(ctx.src, &me)
        .and_then(new_entry)
        .filter(|_| no_children())
    {
        let (_, _, clause) = ctx.src.blocks[q]
            .stmts
            .first()
            .and_then(|s| read::identity_parts(s))?;
        return Some(Folded {
            clause,
            entry: q,
            sequence: None,
            // Each existing row takes the sequence's next value.
            volatile: true,
            why: "; an identity column, added with its sequence so that existing rows get values",
        });
    }
    let key = Key {
        kind: ObjectKind::Default,
        schema: t.schema.as_str().into(),
        name: compact_str::format_compact!("{} {}", t.name, c.name),
    };
    let d = ctx.src.position(&key).and_then(new_entry)?;
    let expr = ctx.src.blocks[d]
        .stmts
        .first()
        .and_then(|s| read::set_default_expr(s))?;
    let (sch, seq) = read::nextval_sequence(&expr)?;
    if !no_children() {
        return None;
    }
    let sequence = ctx.src.position(&Key {
        kind: ObjectKind::Sequence,
        schema: sch.as_str().into(),
        name: seq.as_str().into(),
    });
    Some(Folded {
        volatile: volatile_default(ctx, &expr),
        clause: format!("DEFAULT {expr}"),
        entry: d,
        sequence,
        why: "; added with its sequence's default (serial) so that existing rows get values",
    })
}

/// Whether table `t` is partitioned or has inheritance children, in SOURCE or TARGET.
pub(super) fn has_children(ctx: &Ctx, t: &TableDef) -> bool {
    if t.partition_by.is_some() {
        return true;
    }
    let me = (t.schema.clone(), t.name.clone());
    ctx.src_rel.has_children(ctx.src, &me) || ctx.tgt_rel.has_children(ctx.tgt, &me)
}

/// Whether adding a column with this default rewrites the table: PostgreSQL evaluates a
/// volatile default once per existing row (a rewrite), any other default once, stored as the
/// value those rows read.
///
/// A function the dumps define is judged by its definition (pg_dump prints `IMMUTABLE` or
/// `STABLE`; nothing means `VOLATILE`): SOURCE's when this plan creates it, TARGET's when it is
/// there already. When both sides define it, either one declaring it VOLATILE makes the default
/// volatile: the plan may replace the function before the column is added, and a missed
/// rewrite is worse than a warned one. Overloads of the name count alike (which one a call
/// picks is the server's choice). Functions the dumps do not define (builtins, and extension
/// members, which pg_dump leaves out) are judged by name.
pub(super) fn volatile_default(ctx: &Ctx, expr: &str) -> bool {
    let Some(calls) = parse::called_functions(expr) else {
        // Unreadable: judged by the names it mentions.
        return VOLATILE_BUILTINS
            .iter()
            .any(|f| parse::mentions_call(expr, f));
    };
    calls.iter().any(|(schema, name)| {
        let mut defined = [(ctx.src, &ctx.src_rel), (ctx.tgt, &ctx.tgt_rel)]
            .into_iter()
            .flat_map(|(cat, rel)| {
                rel.functions
                    .iter()
                    .map(move |&i| &cat.blocks[i])
                    .filter(|b| {
                        !schema.is_empty()
                            && b.key.schema == schema.as_str()
                            && b.key
                                .name
                                .strip_prefix(name.as_str())
                                .is_some_and(|args| args.starts_with('('))
                    })
            })
            .peekable();
        if defined.peek().is_none() {
            return VOLATILE_BUILTINS.contains(&name.as_str());
        }
        defined.any(|b| {
            b.stmts
                .first()
                .and_then(|s| parse::function_volatility(s))
                // A definition pgalign cannot read: assume the worst.
                .is_none_or(|v| v == Volatility::Volatile)
        })
    })
}

/// Volatile functions seen in column defaults that the dumps do not define: builtins
/// (`now()`, `current_timestamp` and the like are STABLE: no rewrite) and extension members
/// (uuid-ossp, pgcrypto).
const VOLATILE_BUILTINS: &[&str] = &[
    "nextval",
    "random",
    "random_normal",
    "gen_random_uuid",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "txid_current",
    "pg_current_xact_id",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "gen_random_bytes",
    "gen_salt",
];
