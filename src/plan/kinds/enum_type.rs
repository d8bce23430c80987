//! Enum types: labels added in place; labels removed or reordered rebuild the type and move
//! its columns over.

use super::{acl, first_statements, Altered, Decision};
use crate::catalog::parse::{name_making_way, quote_ident};
use crate::catalog::read::{enum_labels, identity_of};
use crate::catalog::rules::enum_values;
use crate::catalog::{Block, ObjectKind};
use crate::plan::preflight::{Check, Rel};
use crate::plan::{Ctx, Hazard, Op, Role};

/// A changed enum: new labels are added in place (BEFORE/AFTER keeps the order); removing or
/// reordering labels rebuilds the type (see `rebuild_enum`).
pub(super) fn enum_type(ctx: &mut Ctx, s: &Block, t: &Block) -> Decision {
    let Some((new, old)) = first_statements(s, t, enum_labels) else {
        return super::composite::composite_type(ctx, s, t);
    };
    let Some(id) = identity_of(s) else {
        return Decision::Unsupported("cannot read the type's name".into());
    };
    // Old labels must appear in the same order within the new ones.
    let kept: Vec<&String> = new.iter().filter(|l| old.contains(l)).collect();
    if kept.len() != old.len() || kept.iter().zip(old.iter()).any(|(a, b)| *a != b) {
        return rebuild_enum(ctx, s, t, &id);
    }
    let mut sql = String::new();
    let mut added = Vec::new();
    for (i, l) in new.iter().enumerate() {
        if old.contains(l) {
            continue;
        }
        added.push(l.clone());
        // Place it after its predecessor, or before the first label when it leads.
        let place = if i > 0 {
            format!(" AFTER {}", new[i - 1])
        } else {
            match new.iter().find(|x| old.contains(x)) {
                Some(next) => format!(" BEFORE {next}"),
                None => String::new(),
            }
        };
        sql.push_str(&format!("ALTER TYPE {id} ADD VALUE {l}{place};\n"));
    }
    let mut step = ctx.step(s, Op::Alter, "enum gains labels", sql, vec![]);
    step.mark.role = Role::AddsEnumLabels(added);
    Decision::alter(Altered::steps(vec![step]))
}

/// Labels removed or reordered: PostgreSQL cannot do that in place. The type is renamed away, a
/// new one created, every column moved over through text (a row holding a removed label makes
/// the cast fail, and the whole transaction with it), and the old type dropped.
fn rebuild_enum(ctx: &mut Ctx, s: &Block, t: &Block, id: &str) -> Decision {
    let tgt = ctx.tgt;
    let ti = tgt.position(&t.key).expect("indexed");
    // Columns are moved by the rebuild itself; functions, procedures, aggregates and views that
    // use the type are dropped before it and created again after (with their own dependents).
    // Domains, composite types and casts over it would need rebuilding too: not yet.
    let deps = tgt.dependents();
    let blockers: Vec<String> = deps[ti]
        .iter()
        .map(|&d| &tgt.blocks[d])
        .filter(|b| {
            !matches!(
                b.key.kind,
                ObjectKind::Table
                    | ObjectKind::Owner
                    | ObjectKind::Comment
                    | ObjectKind::Acl
                    | ObjectKind::Function
                    | ObjectKind::Procedure
                    | ObjectKind::Aggregate
                    | ObjectKind::View
                    | ObjectKind::MaterializedView
            )
        })
        .map(|b| b.key.display())
        .collect();
    if !blockers.is_empty() {
        return Decision::Unsupported(format!(
            "enum labels were removed or reordered, which needs the type rebuilt; it is used by {}, which pgalign does not rebuild with it yet",
            blockers.join(", ")
        ));
    }
    let mut touched_elsewhere = Vec::new();
    let name = s.key.name.as_str();
    // Cut to fit 63 bytes so that PostgreSQL's truncation cannot bring it back to `name`.
    let old_name = name_making_way(name, "__pgalign_old");
    let mut sql = format!(
        "ALTER TYPE {id} RENAME TO {};\n{};\n",
        quote_ident(&old_name),
        s.stmts[0]
    );
    let array = format!("{id}[]");
    // A row holding a label SOURCE drops makes its column's conversion fail: preflight counts
    // them, column by column.
    let removed: Vec<String> = match (
        s.stmts.first().and_then(|x| enum_values(x)),
        t.stmts.first().and_then(|x| enum_values(x)),
    ) {
        (Some(new), Some(old)) => old.into_iter().filter(|l| !new.contains(l)).collect(),
        _ => Vec::new(),
    };
    let mut checks = Vec::new();
    for b in tgt
        .blocks
        .iter()
        .filter(|b| b.key.kind == ObjectKind::Table)
    {
        let Some(tab) = b.table() else { continue };
        let rel = crate::catalog::qualified(&tab.schema, &tab.name);
        for c in tab
            .columns
            .iter()
            .filter(|c| c.type_sql == id || c.type_sql == array)
        {
            // Views and rules over the column must go before its type changes.
            if let Some(bi) = tgt.position(&b.key) {
                touched_elsewhere.push((bi, vec![c.name.clone()]));
            }
            if !removed.is_empty() {
                checks.push(Check::RemovedLabels {
                    table: Rel::of(tab),
                    column: c.name.clone(),
                    labels: removed.clone(),
                    array: c.type_sql == array,
                });
            }
            let col = quote_ident(&c.name);
            let text = if c.type_sql == array {
                "text[]"
            } else {
                "text"
            };
            if c.default.is_some() {
                sql.push_str(&format!(
                    "ALTER TABLE {rel} ALTER COLUMN {col} DROP DEFAULT;\n"
                ));
            }
            sql.push_str(&format!(
                "ALTER TABLE {rel} ALTER COLUMN {col} TYPE {} USING {col}::{text}::{};\n",
                c.type_sql, c.type_sql
            ));
            // The default SOURCE wants, if the table and column are there.
            let wanted = ctx
                .src
                .get(&b.key)
                .and_then(|sb| sb.table())
                .and_then(|st| st.columns.iter().find(|x| x.name == c.name))
                .and_then(|x| x.default_to_set().map(str::to_string));
            if let Some(d) = wanted {
                sql.push_str(&format!(
                    "ALTER TABLE {rel} ALTER COLUMN {col} SET DEFAULT {d};\n"
                ));
            }
        }
    }
    sql.push_str(&format!(
        "DROP TYPE {}.{};\n",
        quote_ident(&s.key.schema),
        quote_ident(&old_name)
    ));
    // The new type starts with default owner, comment and privileges: set SOURCE's.
    let tag = format!("TYPE {name}");
    for kind in [ObjectKind::Owner, ObjectKind::Comment, ObjectKind::Acl] {
        let key = crate::catalog::Key {
            kind: kind.clone(),
            schema: s.key.schema,
            name: tag.as_str().into(),
        };
        if let Some(b) = ctx.src.get(&key) {
            if kind == ObjectKind::Acl {
                if let Ok(x) = acl::change(None, Some(b), ctx.tgt.server_version) {
                    sql.push_str(&x);
                }
            } else {
                sql.push_str(&b.sql());
            }
        }
    }
    let mut step = ctx.step(
        s,
        Op::Replace,
        "enum labels removed or reordered: the type is rebuilt and its columns moved over",
        sql,
        vec![
            Hazard::TypeRebuild,
            Hazard::TableRewrite,
            Hazard::AccessExclusiveLock,
        ],
    );
    step.preflight = checks;
    Decision::alter(Altered {
        rebuilds: vec![ti],
        touched_elsewhere,
        ..Altered::steps(vec![step])
    })
}
