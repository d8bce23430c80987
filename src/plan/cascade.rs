//! What else a change takes with it: the dependents of what is dropped, recreated or altered
//! (cascade), what goes with its parent table or owning column, and indexes an ATTACH
//! PARTITION would adopt.

use super::{Act, Ctx, Relations};
use crate::catalog::{read, Catalog, Key, ObjectKind};
use std::collections::BTreeSet;

/// Marks TARGET block `d` (a dependent of `because`) to be dropped and created again.
/// Returns whether it is newly marked.
pub(super) fn cascade(
    ctx: &mut Ctx,
    sact: &mut [Act],
    tact: &mut [Act],
    d: usize,
    because: usize,
) -> bool {
    if matches!(tact[d], Act::Drop | Act::Recreate) {
        return false;
    }
    let b = &ctx.tgt.blocks[d];
    if b.key.kind == ObjectKind::Sequence
        && ctx.tgt.blocks[because].key.kind == ObjectKind::Table
        && !b
            .stmts
            .first()
            .is_some_and(|s| s.starts_with("ALTER TABLE"))
    {
        // A sequence owned by a column of a table that is created again (serial) outlives it
        // and keeps its value: released before the drop (OWNED BY NONE), owned again after.
        let owned = Key {
            kind: ObjectKind::SequenceOwnedBy,
            schema: b.key.schema,
            name: b.key.name.clone(),
        };
        if let Some(o) = ctx.tgt.position(&owned) {
            if tact[o] == Act::Keep {
                tact[o] = Act::Recreate;
                match ctx.src.position(&owned) {
                    Some(so) => sact[so] = Act::Recreate,
                    None => tact[o] = Act::Drop,
                }
            }
        }
        return false;
    }
    if b.key.kind.is_table() && ctx.tgt.blocks[because].key.kind == ObjectKind::Table {
        // A partition (or inheritance child) of a table created again: it is detached before
        // the drop and attached again after (its TABLE ATTACH entry), not rebuilt.
        return false;
    }
    if survives_detach(ctx, tact, d, because) {
        return false;
    }
    let Some(si) = ctx.src.position(&b.key) else {
        tact[d] = Act::Drop;
        return true;
    };
    if b.key.kind.is_recreatable()
        || b.key.kind == ObjectKind::Sequence
            && ctx.tgt.blocks[because].key.kind == ObjectKind::Table
    {
        tact[d] = Act::Recreate;
        sact[si] = Act::Recreate;
        true
    } else {
        let why = format!(
            "depends on {}, which must be dropped and created again; pgalign cannot rebuild a {} yet",
            ctx.tgt.blocks[because].key.display(),
            b.key.kind.as_str().to_lowercase()
        );
        let key = b.key.clone();
        let (t, s) = (ctx.tgt.blocks[d].clone(), ctx.src.blocks[si].clone());
        ctx.unsupported(&key, why, Some(&t), Some(&s));
        false
    }
}

/// For an INDEX or CONSTRAINT block of a partition: the block of the partitioned index (or
/// constraint) it is attached to (`ALTER INDEX parent ATTACH PARTITION it`).
pub(crate) fn attached_to(cat: &Catalog, rel: &Relations, i: usize) -> Option<usize> {
    let b = &cat.blocks[i];
    if !matches!(b.key.kind, ObjectKind::Index | ObjectKind::Constraint) {
        return None;
    }
    // A constraint's tag is `table name`; its index has the constraint's name.
    let own = b.key.name.rsplit(' ').next().unwrap_or(&b.key.name);
    rel.index_parent
        .get(&(b.key.schema.to_string(), own.to_string()))
        .and_then(|p| index_block(cat, &p.0, &p.1))
}

/// True when TARGET block `d` is a partition's index (or constraint) attached to `because`, an
/// index of a partitioned table that is created again: the partition is detached before that
/// table is dropped, and its index stays with it.
pub(super) fn survives_detach(ctx: &Ctx, tact: &[Act], d: usize, because: usize) -> bool {
    attached_to(ctx.tgt, &ctx.tgt_rel, d) == Some(because)
        && table_of(ctx.tgt, because).is_some_and(|t| matches!(tact[t], Act::Drop | Act::Recreate))
}

/// The table an index or constraint is on: its first TABLE dependency (a partition's index
/// depends on its parent index first).
pub(super) fn table_of(cat: &Catalog, i: usize) -> Option<usize> {
    cat.blocks[i]
        .deps
        .iter()
        .filter_map(|&d| cat.at_toc(d))
        .find(|&p| cat.blocks[p].key.kind == ObjectKind::Table)
}

/// True when TARGET block `ti`, an index (or constraint) of a partition attached to an index of
/// a partitioned table that is dropped (or created again), outlives that table: the partition
/// is detached first (its TABLE ATTACH goes before the table's drop), and its index with it.
pub(super) fn outlives_parent_table(
    tgt: &Catalog,
    rel: &Relations,
    tact: &[Act],
    ti: usize,
) -> bool {
    let dropped = |p: usize| matches!(tact[p], Act::Drop | Act::Recreate);
    let Some(pi) = attached_to(tgt, rel, ti) else {
        return false;
    };
    let parent_table_dropped = table_of(tgt, pi).is_some_and(dropped);
    // The partition's own table, and its ATTACH entry (detached when dropped or recreated).
    parent_table_dropped
        && table_of(tgt, ti).is_some_and(|t| {
            let attach = Key {
                kind: ObjectKind::TableAttach,
                schema: tgt.blocks[t].key.schema,
                name: tgt.blocks[t].key.name.clone(),
            };
            tgt.position(&attach).is_some_and(dropped)
        })
}

/// The block that creates index `schema.name`: an INDEX, or the CONSTRAINT whose index it is.
pub(super) fn index_block(cat: &Catalog, schema: &str, name: &str) -> Option<usize> {
    let key = Key {
        kind: ObjectKind::Index,
        schema: schema.into(),
        name: name.into(),
    };
    cat.position(&key).or_else(|| {
        let suffix = format!(" {name}");
        cat.blocks.iter().position(|b| {
            b.key.kind == ObjectKind::Constraint
                && b.key.schema == schema
                && b.key.name.ends_with(&suffix)
        })
    })
}

/// Sequences owned by a column (serial) go away with that column or its table. When both the
/// sequence and its owner go, the sequence's own drop (and OWNED BY NONE) must not run: it would
/// come first and find the column's default still using it.
pub(super) fn dropped_with_owning_column(
    src: &Catalog,
    tgt: &Catalog,
    rel: &Relations,
    tact: &[Act],
) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    for (oi, ob) in tgt.blocks.iter().enumerate() {
        if ob.key.kind != ObjectKind::SequenceOwnedBy || tact[oi] != Act::Drop {
            continue;
        }
        // The sequence has the OWNED BY entry's tag; in a plain dump the inferred first
        // dependency may be the owning table instead.
        let Some(seq) = tgt
            .position(&Key {
                kind: ObjectKind::Sequence,
                schema: ob.key.schema,
                name: ob.key.name.clone(),
            })
            .or_else(|| {
                tgt.parent_of(oi)
                    .filter(|&p| tgt.blocks[p].key.kind == ObjectKind::Sequence)
            })
        else {
            continue;
        };
        if tact[seq] != Act::Drop {
            continue;
        }
        let Some((schema, table, column)) = ob.stmts.first().and_then(|s| read::owned_by_target(s))
        else {
            continue;
        };
        let table_block = rel.tables.get(&(schema, table)).copied();
        let Some(tb) = table_block else { continue };
        let table_goes = matches!(tact[tb], Act::Drop | Act::Recreate);
        let column_goes = !src
            .get(&tgt.blocks[tb].key)
            .and_then(|b| b.table())
            .is_some_and(|t| t.columns.iter().any(|c| c.name == column));
        if table_goes || column_goes {
            out.insert(oi);
            out.insert(seq);
        }
    }
    out
}

/// True when dropping TARGET block `ti` happens by itself because what it lives on is dropped.
pub(super) fn goes_with_parent(tgt: &Catalog, rel: &Relations, tact: &[Act], ti: usize) -> bool {
    let b = &tgt.blocks[ti];
    let dropped = |p: usize| matches!(tact[p], Act::Drop | Act::Recreate);
    let kind = &b.key.kind;
    if *kind == ObjectKind::Owner && b.key.schema.is_empty() && b.key.name == "SCHEMA public" {
        // initdb's public schema is never dropped: its owner goes back by itself (objects.rs).
        return false;
    }
    if *kind == ObjectKind::SequenceOwnedBy && tact[ti] == Act::Recreate {
        // Released before its table is created again (OWNED BY NONE), never left to the
        // table's drop, which would take the sequence with it.
        return false;
    }
    if *kind == ObjectKind::FkConstraint {
        // Always dropped on its own: the table it references may be dropped before the
        // table that holds it.
        return false;
    }
    if matches!(kind, ObjectKind::Table | ObjectKind::TableAttach) {
        // A partition dropped with its partitioned table goes with it (DROP TABLE takes the
        // partitions): detached first, it would outlive the sequences and types the parent's
        // drop removes while it still uses them.
        let me = (b.key.schema.to_string(), b.key.name.to_string());
        let dropped_for_good =
            |t: &(String, String)| rel.tables.get(t).is_some_and(|&i| tact[i] == Act::Drop);
        if let Some(parent) = rel.parent.get(&me) {
            if dropped_for_good(parent) && dropped_for_good(&me) {
                return true;
            }
        }
    }
    // An index attached to a partitioned index goes when that one does (and cannot be dropped
    // alone while attached); so does a partition's constraint inherited with it.
    if attached_to(tgt, rel, ti).is_some_and(dropped) && !outlives_parent_table(tgt, rel, tact, ti)
    {
        return true;
    }
    if *kind == ObjectKind::IndexAttach {
        // Gone with the partitioned index (or the constraint that made it) it is attached to.
        return b.deps.iter().filter_map(|&d| tgt.at_toc(d)).any(|p| {
            dropped(p)
                && matches!(
                    tgt.blocks[p].key.kind,
                    ObjectKind::Index | ObjectKind::Constraint
                )
        });
    }
    let identity_sequence = *kind == ObjectKind::Sequence
        && b.stmts
            .first()
            .is_some_and(|s| s.starts_with("ALTER TABLE"));
    if !(kind.is_attached() || identity_sequence) {
        return false;
    }
    b.deps.iter().filter_map(|&d| tgt.at_toc(d)).any(|p| {
        dropped(p)
            && (tgt.blocks[p].key.kind.is_relation()
                || matches!(
                    kind,
                    ObjectKind::Comment
                        | ObjectKind::Acl
                        | ObjectKind::Owner
                        | ObjectKind::SecurityLabel
                ))
    })
}

/// TARGET indexes that `ALTER TABLE ... ATTACH PARTITION` would adopt for a partitioned index
/// in place of the one SOURCE attaches: PostgreSQL attaches the first matching index of the
/// partition it finds, and SOURCE keeps this one local. Pairs of (TARGET, SOURCE) block.
/// An index matches when its definition, without its name, is the same.
pub(super) fn adopted_on_attach(ctx: &Ctx, sact: &[Act], tact: &[Act]) -> Vec<(usize, usize)> {
    let (src, tgt) = (ctx.src, ctx.tgt);
    let mut out = Vec::new();
    for (si, b) in src.blocks.iter().enumerate() {
        if b.key.kind != ObjectKind::TableAttach || sact[si] != Act::Create {
            continue;
        }
        let Some((_, (cs, cn))) = b.stmts.first().and_then(|s| read::attach_parts(s)) else {
            continue;
        };
        // A partition new on TARGET has no indexes yet to adopt.
        let Some(&pt) = ctx.tgt_rel.tables.get(&(cs.clone(), cn.clone())) else {
            continue;
        };
        if matches!(tact[pt], Act::Drop | Act::Recreate) {
            continue;
        }
        let on = format!(" ON {} ", crate::catalog::qualified(&cs, &cn));
        let attached: Vec<String> = ctx
            .src_rel
            .index_parent
            .keys()
            .filter(|(s, _)| *s == cs)
            .filter_map(|(s, n)| {
                let i = src.position(&Key {
                    kind: ObjectKind::Index,
                    schema: s.into(),
                    name: n.into(),
                })?;
                index_shape(src.blocks[i].stmts.first()?, &on)
            })
            .collect();
        if attached.is_empty() {
            continue;
        }
        for (ti, t) in tgt.blocks.iter().enumerate() {
            if t.key.kind != ObjectKind::Index
                || t.key.schema != cs
                || !matches!(tact[ti], Act::Keep | Act::Recreate)
            {
                continue;
            }
            let me = (t.key.schema.to_string(), t.key.name.to_string());
            if ctx.src_rel.index_parent.contains_key(&me) {
                continue;
            }
            let matches = t
                .stmts
                .first()
                .and_then(|s| index_shape(s, &on))
                .is_some_and(|shape| attached.contains(&shape));
            if let (true, Some(s2)) = (matches, src.position(&t.key)) {
                out.push((ti, s2));
            }
        }
    }
    out
}

/// `CREATE [UNIQUE] INDEX name ON rel USING ...` without its name, when it is on `on`
/// (` ON schema.table `).
pub(super) fn index_shape(stmt: &str, on: &str) -> Option<String> {
    let i = stmt.find(on)?;
    let k = stmt[..i].find(" INDEX ")?;
    Some(format!(
        "{}{}",
        &stmt[..k + " INDEX ".len()],
        &stmt[i + 1..]
    ))
}

/// Whether SQL text mentions an identifier (as a word, quoted or not).
pub(super) fn mentions(sql: &str, ident: &str) -> bool {
    let lower = sql.to_lowercase();
    let needle = ident.to_lowercase();
    let bytes = lower.as_bytes();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(&needle) {
        let s = from + pos;
        let e = s + needle.len();
        let before = s == 0 || !is_ident_byte(bytes[s - 1]);
        let after = e >= bytes.len() || !is_ident_byte(bytes[e]);
        if before && after {
            return true;
        }
        // Past the first character of the match, whatever its length in bytes.
        from = s + lower[s..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

pub(super) fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}
