//! How each kind of object is dropped: the statement that undoes what TARGET's entry made.

use super::{acl, DropHow};
use crate::catalog::parse::quote_ident;
use crate::catalog::read::{
    self, attach_parts, comment_removal, drop_constraint, identity_of, name_after, paren_after,
    relation_after, replace_from, replace_word,
};
use crate::catalog::ObjectKind;
use crate::plan::preflight::{Check, Rel};
use crate::plan::{Ctx, Hazard, Op};

/// SQL that drops TARGET block `ti`.
pub fn drop(ctx: &mut Ctx, ti: usize, recreated: bool) -> DropHow {
    let b = &ctx.tgt.blocks[ti];
    let kind = &b.key.kind;
    let first = b.stmts.first().cloned().unwrap_or_default();
    let step = |sql: String, hazards: Vec<Hazard>| {
        DropHow::Steps(vec![ctx.step(b, Op::Drop, "", sql, hazards)])
    };
    match kind {
        // An owner cannot be removed; the object keeps whichever it has.
        // initdb's public schema: pg_dump lists it only when its owner differs from initdb's
        // (pg_database_owner from PostgreSQL 15), so its entry going away means "back to that
        // owner", never DROP SCHEMA.
        ObjectKind::Owner if b.key.schema.is_empty() && b.key.name == "SCHEMA public" => {
            if ctx.tgt.server_version.is_some_and(|v| v >= 15) {
                step("ALTER SCHEMA public OWNER TO pg_database_owner;\n".into(), vec![])
            } else {
                DropHow::Nothing
            }
        }
        ObjectKind::Schema if b.key.name == "public" && b.stmts.is_empty() => DropHow::Nothing,
        ObjectKind::Schema if b.key.name == "public" => DropHow::Unknown(
            "pgalign never drops the public schema; drop it by hand if you mean to".into(),
        ),
        ObjectKind::Owner => DropHow::Nothing,
        // Re-applied on top when created again: nothing to undo first.
        ObjectKind::Comment | ObjectKind::SecurityLabel | ObjectKind::Default | ObjectKind::SequenceOwnedBy if recreated => {
            DropHow::Nothing
        }
        ObjectKind::Acl if recreated => DropHow::Nothing,
        ObjectKind::Comment | ObjectKind::SecurityLabel => match comment_removal(b) {
            Some(sql) => step(sql, vec![]),
            None => DropHow::Unknown("cannot read the comment statement".into()),
        },
        ObjectKind::Acl | ObjectKind::DefaultAcl => match acl::change(Some(b), None, ctx.tgt.server_version) {
            Ok(sql) if sql.is_empty() => DropHow::Nothing,
            Ok(sql) => step(sql, vec![]),
            Err(e) => DropHow::Unknown(e),
        },
        ObjectKind::Default => match replace_from(&first, &["SET", "DEFAULT"], "DROP DEFAULT") {
            Some(sql) => step(sql, vec![]),
            None => DropHow::Unknown("cannot read the default statement".into()),
        },
        ObjectKind::SequenceOwnedBy => match replace_from(&first, &["OWNED", "BY"], "OWNED BY NONE") {
            Some(sql) => step(sql, vec![]),
            None => DropHow::Unknown("cannot read the OWNED BY statement".into()),
        },
        ObjectKind::Constraint | ObjectKind::FkConstraint | ObjectKind::CheckConstraint => match drop_constraint(&first) {
            Some(sql) => step(sql, vec![Hazard::AccessExclusiveLock]),
            None => DropHow::Unknown("cannot read the constraint statement".into()),
        },
        ObjectKind::Sequence if first.starts_with("ALTER TABLE") => {
            match replace_from(&first, &["ADD", "GENERATED"], "DROP IDENTITY") {
                Some(sql) => step(sql, vec![Hazard::AccessExclusiveLock]),
                None => DropHow::Unknown("cannot read the identity statement".into()),
            }
        }
        ObjectKind::Index => drop_index(ctx, ti, &first),
        ObjectKind::Trigger | ObjectKind::Policy => {
            let name = name_after(
                &first,
                &[if *kind == ObjectKind::Trigger {
                    "TRIGGER"
                } else {
                    "POLICY"
                }],
            );
            let on = relation_after(&first, "ON");
            match (name, on) {
                (Some(n), Some(t)) => step(format!("DROP {kind} {n} ON {t};\n"), vec![]),
                _ => DropHow::Unknown(format!(
                    "cannot read the {} statement",
                    kind.as_str().to_lowercase()
                )),
            }
        }
        ObjectKind::Rule => match (name_after(&first, &["RULE"]), relation_after(&first, "TO")) {
            (Some(n), Some(t)) => step(format!("DROP RULE {n} ON {t};\n"), vec![]),
            _ => DropHow::Unknown("cannot read the rule statement".into()),
        },
        ObjectKind::RowSecurity => {
            let sql: String = b.stmts.iter().map(|s| invert_row_security(s)).collect();
            step(sql, vec![Hazard::AccessExclusiveLock])
        }
        ObjectKind::TableAttach => {
            // DETACH takes the partition's name only, not its bound.
            match attach_parts(&first) {
                Some(((ps, pn), (cs, cn))) => step(
                    format!(
                        "ALTER TABLE {} DETACH PARTITION {};\n",
                        crate::catalog::qualified(&ps, &pn),
                        crate::catalog::qualified(&cs, &cn)
                    ),
                    vec![],
                ),
                None => DropHow::Unknown("cannot read the ATTACH PARTITION statement".into()),
            }
        }
        // An index partition cannot be detached; it goes with either index (see plan).
        ObjectKind::IndexAttach => DropHow::Unknown(
            "an attached index partition cannot be detached: drop and recreate the partitioned index".into(),
        ),
        ObjectKind::Extension => match name_after(&first, &["EXTENSION"]) {
            Some(n) => step(format!("DROP EXTENSION {n};\n"), vec![Hazard::DataLoss]),
            None => DropHow::Unknown("cannot read the extension statement".into()),
        },
        ObjectKind::Cast => match paren_after(&first, "CAST") {
            Some(p) => step(format!("DROP CAST {p};\n"), vec![]),
            None => DropHow::Unknown("cannot read the cast statement".into()),
        },
        ObjectKind::PublicationTable => match replace_word(&first, "ADD", "DROP") {
            Some(sql) => step(sql, vec![]),
            None => DropHow::Unknown("cannot read the publication statement".into()),
        },
        ObjectKind::UserMapping => match first.strip_prefix("CREATE USER MAPPING ") {
            Some(rest) => {
                let upto = rest.find(" OPTIONS").map(|i| &rest[..i]).unwrap_or(rest);
                step(format!("DROP USER MAPPING {upto};\n"), vec![])
            }
            None => DropHow::Unknown("cannot read the user mapping statement".into()),
        },
        _ => drop_object(ctx, ti, recreated),
    }
}

/// An index: CONCURRENTLY with --online (outside a transaction), else with the table locked.
fn drop_index(ctx: &Ctx, ti: usize, first: &str) -> DropHow {
    let b = &ctx.tgt.blocks[ti];
    let step = |sql: String, hazards: Vec<Hazard>| {
        DropHow::Steps(vec![ctx.step(b, Op::Drop, "", sql, hazards)])
    };
    let index = read::create_index(first);
    let on_only = index.as_ref().is_some_and(|c| c.has_only);
    match index.and_then(|c| c.name) {
        Some(name) if ctx.opts.online && !on_only => {
            let mut st = ctx.step(
                b,
                Op::Drop,
                "",
                format!(
                    "DROP INDEX CONCURRENTLY {}.{name};\n",
                    quote_ident(&b.key.schema)
                ),
                vec![],
            );
            st.transactional = false;
            DropHow::Steps(vec![st])
        }
        Some(name) => {
            // A partitioned index whose partition index belongs to a constraint of the
            // partition (`ADD CONSTRAINT ... USING INDEX`): neither can be dropped alone.
            // CASCADE takes the constraint with it, and only it (see cascade_to_constraints).
            let with = if first.contains(" ON ONLY ") {
                cascade_to_constraints(ctx, ti)
            } else {
                Vec::new()
            };
            let mut sql = String::new();
            if !with.is_empty() {
                sql.push_str(&format!(
                    "-- CASCADE drops the constraint(s) attached to it, and nothing else: {}\n",
                    with.join(", ")
                ));
            }
            sql.push_str(&format!(
                "DROP INDEX {}.{name}{};\n",
                quote_ident(&b.key.schema),
                if with.is_empty() { "" } else { " CASCADE" }
            ));
            step(sql, vec![Hazard::AccessExclusiveLock])
        }
        None => DropHow::Unknown("cannot read the index statement".into()),
    }
}

/// An object of its own, by `DROP <type> <identity>`.
fn drop_object(ctx: &Ctx, ti: usize, recreated: bool) -> DropHow {
    let b = &ctx.tgt.blocks[ti];
    let kind = &b.key.kind;
    // The type becomes SQL (`DROP <type> <name>`): only the kinds `DROP` takes, never
    // whatever a header says.
    let word = kind.drop_keyword();
    let id = identity_of(b).filter(|_| word.is_some());
    let (Some(id), Some(word)) = (id, word) else {
        return DropHow::Unknown(format!(
            "pgalign does not know how to drop a {} yet",
            kind.as_str().to_lowercase()
        ));
    };
    let hazards = match kind {
        ObjectKind::Table => vec![Hazard::DataLoss, Hazard::AccessExclusiveLock],
        ObjectKind::Schema | ObjectKind::Sequence => vec![Hazard::DataLoss],
        ObjectKind::MaterializedView | ObjectKind::View => {
            vec![Hazard::AccessExclusiveLock]
        }
        ObjectKind::Type if recreated => vec![Hazard::TypeRebuild],
        _ => vec![],
    };
    let mut st = ctx.step(b, Op::Drop, "", format!("DROP {word} {id};\n"), hazards);
    // The rows that go with it: preflight counts them, next to the data-loss hazard.
    if *kind == ObjectKind::Table {
        if let Some(def) = b.table() {
            st.preflight = vec![Check::RowsLost {
                table: Rel::of(def),
                column: None,
            }];
        }
    }
    DropHow::Steps(vec![st])
}

pub(super) fn invert_row_security(stmt: &str) -> String {
    let s = if stmt.contains(" ENABLE ROW LEVEL SECURITY") {
        stmt.replacen(
            " ENABLE ROW LEVEL SECURITY",
            " DISABLE ROW LEVEL SECURITY",
            1,
        )
    } else if stmt.contains(" FORCE ROW LEVEL SECURITY") && !stmt.contains(" NO FORCE ") {
        stmt.replacen(
            " FORCE ROW LEVEL SECURITY",
            " NO FORCE ROW LEVEL SECURITY",
            1,
        )
    } else {
        stmt.to_string()
    };
    format!("{s};\n")
}

/// The constraints of partitions whose index is attached to TARGET's partitioned index `ti`
/// (made with `ADD CONSTRAINT ... USING INDEX` on an attached index), when nothing but their
/// comments, grants and the attachment depends on them: `DROP INDEX ... CASCADE` then removes
/// exactly those. Empty when there are none, or when something else would go with them (the
/// drop then fails at apply and rolls back, rather than cascade further).
fn cascade_to_constraints(ctx: &Ctx, ti: usize) -> Vec<String> {
    let tgt = ctx.tgt;
    let mut out = Vec::new();
    for (c, b) in tgt.blocks.iter().enumerate() {
        if b.key.kind != ObjectKind::Constraint
            || crate::plan::cascade::attached_to(tgt, &ctx.tgt_rel, c) != Some(ti)
        {
            continue;
        }
        let Some(toc) = b.toc_id else {
            return Vec::new();
        };
        let others = tgt.blocks.iter().any(|d| {
            d.deps.contains(&toc)
                && !matches!(
                    d.key.kind,
                    ObjectKind::Comment
                        | ObjectKind::Acl
                        | ObjectKind::Owner
                        | ObjectKind::SecurityLabel
                        | ObjectKind::IndexAttach
                )
        });
        if others {
            return Vec::new();
        }
        out.push(b.key.display());
    }
    out
}
