//! Per-kind knowledge: how to create, drop and alter each kind of object pg_dump emits.
//! Tables live in `table.rs`, privileges in `acl.rs`.

use super::{acl, online, table, Ctx, Hazard, Op, Step};
use crate::catalog::parse::quote_ident;
use crate::catalog::read::{
    self, attach_parts, comment_to_null, composite_attributes, drop_constraint, enum_labels,
    identity_of, name_after, paren_after, parse_domain, relation_after, replace_from, replace_word,
};
// The table planner's readers, until it reads them from the catalog itself.
pub use crate::catalog::read::{identity_parts, nextval_sequence, set_default_expr};
use crate::catalog::Block;
use crate::catalog::ObjectKind;

pub enum Decision {
    /// Alter in place: the steps, and the columns dropped or retyped (for dependents).
    Alter(Vec<Step>, Vec<String>),
    Recreate,
    Unsupported(String),
}

pub enum DropHow {
    Steps(Vec<Step>),
    Nothing,
    Unknown(String),
}

/// How a changed object (SOURCE block `si`, TARGET block `ti`) is brought in line.
pub fn alter(ctx: &mut Ctx, si: usize, ti: usize) -> Decision {
    let (s, t) = (&ctx.src.blocks[si], &ctx.tgt.blocks[ti]);
    let kind = &s.key.kind;
    let reapply = |ctx: &Ctx, why: &str| {
        Decision::Alter(vec![ctx.step(s, Op::Alter, why, s.sql(), vec![])], vec![])
    };
    match kind {
        ObjectKind::Table | ObjectKind::ForeignTable => table::alter(ctx, si, ti),
        ObjectKind::Owner => reapply(ctx, "owner differs"),
        ObjectKind::Comment | ObjectKind::SecurityLabel => reapply(ctx, "text differs"),
        ObjectKind::Default => reapply(ctx, "default expression differs"),
        ObjectKind::SequenceOwnedBy => reapply(ctx, "owning column differs"),
        ObjectKind::Acl | ObjectKind::DefaultAcl => match acl::change(Some(t), Some(s), ctx.tgt.server_version) {
            Ok(sql) => Decision::Alter(
                vec![ctx.step(s, Op::Alter, "privileges differ", sql, vec![])],
                vec![],
            ),
            Err(e) => Decision::Unsupported(e),
        },
        ObjectKind::Sequence => sequence(ctx, s, t),
        ObjectKind::Function | ObjectKind::Procedure => {
            // CREATE OR REPLACE keeps dependents, but cannot change the signature, the argument
            // names or the return type, which pg_dump prints on the first line.
            let first = |b: &Block| {
                b.stmts
                    .first()
                    .and_then(|x| x.lines().next())
                    .map(str::to_string)
            };
            let body = s.stmts.first().cloned().unwrap_or_default();
            if first(s) == first(t) && s.stmts.len() == t.stmts.len() {
                if let Some(rest) = body.strip_prefix("CREATE ") {
                    let mut sql = format!("CREATE OR REPLACE {rest};\n");
                    for extra in &s.stmts[1..] {
                        sql.push_str(extra);
                        sql.push_str(";\n");
                    }
                    return Decision::Alter(
                        vec![ctx.step(s, Op::Replace, "body or attributes differ", sql, vec![])],
                        vec![],
                    );
                }
            }
            Decision::Recreate
        }
        ObjectKind::View => {
            // Columns added at the end: CREATE OR REPLACE keeps the view's dependents.
            let appended = s.settings() == t.settings()
                && s.stmts.len() == t.stmts.len()
                && s.stmts.get(1..) == t.stmts.get(1..)
                && matches!((s.stmts.first(), t.stmts.first()),
                    (Some(n), Some(o)) if crate::catalog::view::appends_columns(o, n));
            match s.stmts[0].strip_prefix("CREATE VIEW ") {
                Some(rest) if appended => Decision::Alter(
                    vec![ctx.step(
                        s,
                        Op::Replace,
                        "columns added at the end; CREATE OR REPLACE keeps what depends on the view",
                        format!("CREATE OR REPLACE VIEW {rest};\n"),
                        vec![],
                    )],
                    vec![],
                ),
                _ => Decision::Recreate,
            }
        }
        ObjectKind::Type => enum_type(ctx, s, t),
        ObjectKind::Domain => domain(ctx, s, t),
        ObjectKind::RowSecurity => {
            let mut sql = String::new();
            for st in &t.stmts {
                if !s.stmts.contains(st) {
                    sql.push_str(&invert_row_security(st));
                }
            }
            sql.push_str(&s.sql());
            Decision::Alter(
                vec![ctx.step(s, Op::Alter, "row level security differs", sql, vec![Hazard::AccessExclusiveLock])],
                vec![],
            )
        }
        ObjectKind::Extension => Decision::Unsupported(
            "the extension's definition differs (schema or options); change it by hand with ALTER EXTENSION".into(),
        ),
        ObjectKind::Schema => Decision::Unsupported("the schema's definition differs".into()),
        k if k.is_recreatable() => Decision::Recreate,
        _ => Decision::Unsupported(format!(
            "pgalign cannot change a {} in place yet",
            kind.as_str().to_lowercase()
        )),
    }
}

/// SQL that creates SOURCE block `si` (plus a refresh for materialized views).
pub fn create(ctx: &mut Ctx, si: usize, recreated: bool) -> Vec<Step> {
    let s = &ctx.src.blocks[si];
    let reason = if recreated {
        "created again after the drop above"
    } else {
        "not in target"
    };
    let kind = &s.key.kind;
    if s.stmts.is_empty() {
        // Nothing to run: initdb's public schema, listed for its owner only.
        return vec![];
    }
    if *kind == ObjectKind::Acl || *kind == ObjectKind::DefaultAcl {
        // The object is new (or new again), so its privileges start from the defaults.
        return match acl::change(None, Some(s), ctx.tgt.server_version) {
            Ok(sql) if sql.is_empty() => vec![],
            Ok(sql) => vec![ctx.step(s, Op::Create, reason, sql, vec![])],
            Err(_) => vec![ctx.step(s, Op::Create, reason, s.sql(), vec![])],
        };
    }
    let mut sql = String::new();
    for st in s.settings() {
        sql.push_str(st);
        sql.push_str(";\n");
    }
    sql.push_str(&s.sql());
    if !s.settings().is_empty() {
        sql.push_str("SET default_tablespace = '';\nSET default_table_access_method = heap;\n");
    }
    if ctx.opts.online && s.settings().is_empty() && on_existing_table(ctx, s) {
        if let Some(steps) = create_online(ctx, s, reason) {
            return steps;
        }
    }
    sql.push_str(&undo_default_privileges(ctx, s));
    let mut hazards = vec![];
    if *kind == ObjectKind::MaterializedView && sql.contains("WITH NO DATA") {
        if let Some(id) = identity_of(s) {
            sql.push_str(&format!("REFRESH MATERIALIZED VIEW {id};\n"));
        }
    }
    if *kind == ObjectKind::Index
        || matches!(
            kind,
            ObjectKind::Constraint | ObjectKind::FkConstraint | ObjectKind::CheckConstraint
        )
    {
        // Building on a table that already exists in TARGET blocks its writes while it runs.
        if on_existing_table(ctx, s) {
            hazards.push(
                if *kind == ObjectKind::Index
                    || s.sql().contains(" PRIMARY KEY ")
                    || s.sql().contains(" UNIQUE ")
                {
                    Hazard::IndexBuild
                } else {
                    Hazard::ValidationScan
                },
            );
        }
    }
    let op = if kind.is_reapplied() && recreated {
        Op::Alter
    } else {
        Op::Create
    };
    vec![ctx.step(s, op, reason, sql, hazards)]
}

/// TARGET's default privileges (ALTER DEFAULT PRIVILEGES) grant on every object created there,
/// and the plan's own privilege steps assume an object starts with the built-in defaults. So a
/// created object is first put back to those: what default privileges granted is revoked, and
/// what they revoked from PUBLIC is granted back.
fn undo_default_privileges(ctx: &Ctx, s: &Block) -> String {
    let (objects, keyword, public): (&str, &str, Option<&str>) = match &s.key.kind {
        ObjectKind::Table
        | ObjectKind::View
        | ObjectKind::MaterializedView
        | ObjectKind::ForeignTable => ("TABLES", "TABLE", None),
        ObjectKind::Sequence
            if !s
                .stmts
                .first()
                .is_some_and(|x| x.starts_with("ALTER TABLE")) =>
        {
            ("SEQUENCES", "SEQUENCE", None)
        }
        ObjectKind::Function | ObjectKind::Aggregate => ("FUNCTIONS", "FUNCTION", Some("EXECUTE")),
        ObjectKind::Procedure => ("FUNCTIONS", "PROCEDURE", Some("EXECUTE")),
        ObjectKind::Type => ("TYPES", "TYPE", Some("USAGE")),
        ObjectKind::Domain => ("TYPES", "DOMAIN", Some("USAGE")),
        ObjectKind::Schema => ("SCHEMAS", "SCHEMA", None),
        _ => return String::new(),
    };
    let schema = if s.key.kind == ObjectKind::Schema {
        ""
    } else {
        s.key.schema.as_str()
    };
    let mut grantees: Vec<String> = Vec::new();
    let mut any = false;
    for b in ctx.tgt_rel.default_acls.iter().map(|&i| &ctx.tgt.blocks[i]) {
        if !(b.key.schema.is_empty() || b.key.schema == schema) {
            continue;
        }
        for (obj, grantee) in acl::default_acl_grants(b) {
            if obj == objects {
                any = true;
                if grantee != "PUBLIC" && !grantees.contains(&grantee) {
                    grantees.push(grantee);
                }
            }
        }
    }
    let Some(id) = identity_of(s).filter(|_| any) else {
        return String::new();
    };
    let owner = quote_ident(&s.owner);
    let mut sql = String::new();
    for g in grantees.iter().filter(|g| **g != owner) {
        sql.push_str(&format!("REVOKE ALL ON {keyword} {id} FROM {g};\n"));
    }
    sql.push_str(&format!("REVOKE ALL ON {keyword} {id} FROM PUBLIC;\n"));
    if let Some(p) = public {
        sql.push_str(&format!("GRANT {p} ON {keyword} {id} TO PUBLIC;\n"));
    }
    sql
}

/// `--online` forms of building an index or adding a constraint on a table that exists.
fn create_online(ctx: &Ctx, s: &Block, reason: &str) -> Option<Vec<Step>> {
    let first = s.stmts.first()?;
    if s.stmts.len() != 1 {
        return None;
    }
    let schema = quote_ident(&s.key.schema);
    match &s.key.kind {
        ObjectKind::Index => {
            let sql = online::concurrent_index(first)?;
            let mut st = ctx.step(
                s,
                Op::Create,
                &format!("{reason}; built CONCURRENTLY (--online)"),
                format!("{sql};\n"),
                vec![],
            );
            st.transactional = false;
            st.replaces_invalid_index = online::index_name(first, &schema);
            Some(vec![st])
        }
        ObjectKind::FkConstraint | ObjectKind::CheckConstraint => {
            let (add, validate) = online::not_valid_constraint(first)?;
            let a = ctx.step(
                s,
                Op::Create,
                &format!("{reason}; added NOT VALID, validated below (--online)"),
                add,
                vec![],
            );
            let mut v = ctx.step(
                s,
                Op::Alter,
                "validates the constraint without blocking writes (--online)",
                validate,
                vec![],
            );
            v.own_transaction = true;
            Some(vec![a, v])
        }
        ObjectKind::Constraint => {
            let (build, attach) = online::unique_via_index(first)?;
            let mut b = ctx.step(
                s,
                Op::Create,
                &format!("{reason}; its index built CONCURRENTLY first (--online)"),
                build,
                vec![],
            );
            b.transactional = false;
            b.replaces_invalid_index = online::index_name(&b.sql, &schema);
            let mut a = ctx.step(
                s,
                Op::Create,
                "attaches the index built above (--online)",
                attach,
                vec![Hazard::AccessExclusiveLock],
            );
            a.own_transaction = true;
            Some(vec![b, a])
        }
        _ => None,
    }
}

/// Whether the table an index or constraint is built on already exists in TARGET: the table
/// the statement names (`ON t`, `ALTER TABLE t`), not any table it refers to (a foreign key's
/// referenced table does not get scanned).
fn on_existing_table(ctx: &Ctx, s: &Block) -> bool {
    s.stmts
        .first()
        .and_then(|sql| read::built_on(&s.key.kind, sql))
        .is_some_and(|table| ctx.tgt_rel.tables.contains_key(&table))
}

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
        ObjectKind::Comment | ObjectKind::SecurityLabel => match comment_to_null(&first) {
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
        ObjectKind::Index => match name_after(&first, &["INDEX"]) {
            Some(name) if ctx.opts.online && !first.contains(" ON ONLY ") => {
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
        },
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
        _ => {
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
            step(format!("DROP {word} {id};\n"), hazards)
        }
    }
}

fn invert_row_security(stmt: &str) -> String {
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

/// A changed sequence: regular ones take ALTER SEQUENCE with the new options; identity ones
/// take ALTER COLUMN ... SET GENERATED / SET options, which keeps the current value.
fn sequence(ctx: &Ctx, s: &Block, t: &Block) -> Decision {
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
        return Decision::Alter(
            vec![ctx.step(s, Op::Alter, "sequence options differ", sql, vec![])],
            vec![],
        );
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
    Decision::Alter(
        vec![ctx.step(s, Op::Alter, "identity options differ", sql, vec![])],
        vec![],
    )
}

/// Both sides' first statements read by `read`: (SOURCE's, TARGET's).
fn first_statements<T>(s: &Block, t: &Block, read: impl Fn(&str) -> Option<T>) -> Option<(T, T)> {
    Some((read(s.stmts.first()?)?, read(t.stmts.first()?)?))
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
            || super::attached_to(tgt, &ctx.tgt_rel, c) != Some(ti)
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

/// A changed enum: new labels are added in place (BEFORE/AFTER keeps the order); removing or
/// reordering labels rebuilds the type (see `rebuild_enum`).
fn enum_type(ctx: &mut Ctx, s: &Block, t: &Block) -> Decision {
    let Some((new, old)) = first_statements(s, t, enum_labels) else {
        return composite_type(ctx, s, t);
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
    for (i, l) in new.iter().enumerate() {
        if old.contains(l) {
            continue;
        }
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
    Decision::Alter(
        vec![ctx.step(s, Op::Alter, "enum gains labels", sql, vec![])],
        vec![],
    )
}

/// A changed composite type: attributes are added, dropped and retyped in place. Columns of
/// tables that use the type make PostgreSQL refuse some of these; apply then stops and rolls
/// back, naming the column.
fn composite_type(ctx: &Ctx, s: &Block, t: &Block) -> Decision {
    let Some((new, old)) = first_statements(s, t, composite_attributes) else {
        return Decision::Unsupported(
            "pgalign cannot change this type in place yet (enums, domains and composite types only; a range or base type needs rebuilding)".into(),
        );
    };
    let Some(id) = identity_of(s) else {
        return Decision::Unsupported("cannot read the type's name".into());
    };
    let mut sql = String::new();
    let mut hazards = vec![];
    for (name, _, _) in &old {
        if !new.iter().any(|(n, _, _)| n == name) {
            sql.push_str(&format!(
                "ALTER TYPE {id} DROP ATTRIBUTE {};\n",
                quote_ident(name)
            ));
            hazards.push(Hazard::DataLoss);
        }
    }
    for (name, text, ty) in &new {
        match old.iter().find(|(n, _, _)| n == name) {
            Some((_, o, _)) if o == text => {}
            Some(_) => {
                sql.push_str(&format!(
                    "ALTER TYPE {id} ALTER ATTRIBUTE {} TYPE {ty};\n",
                    quote_ident(name)
                ));
            }
            None => sql.push_str(&format!("ALTER TYPE {id} ADD ATTRIBUTE {text};\n")),
        }
    }
    let old_kept: Vec<&String> = old
        .iter()
        .map(|(n, _, _)| n)
        .filter(|n| new.iter().any(|(x, _, _)| x == *n))
        .collect();
    let new_kept: Vec<&String> = new
        .iter()
        .map(|(n, _, _)| n)
        .filter(|n| old.iter().any(|(x, _, _)| x == *n))
        .collect();
    let mut reason = "attributes differ".to_string();
    if old_kept != new_kept {
        reason.push_str("; their order differs too, which PostgreSQL cannot change in place (added attributes go last)");
    }
    Decision::Alter(vec![ctx.step(s, Op::Alter, &reason, sql, hazards)], vec![])
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
    ctx.rebuild_dependents.push(ti);
    let name = s.key.name.as_str();
    let old_name = format!("{name}__pgalign_old");
    let mut sql = format!(
        "ALTER TYPE {id} RENAME TO {};\n{};\n",
        quote_ident(&old_name),
        s.stmts[0]
    );
    let array = format!("{id}[]");
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
                ctx.touched_elsewhere.push((bi, vec![c.name.clone()]));
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
                .and_then(|x| x.default.clone());
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
            schema: s.key.schema.clone(),
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
    Decision::Alter(
        vec![ctx.step(
            s,
            Op::Replace,
            "enum labels removed or reordered: the type is rebuilt and its columns moved over",
            sql,
            vec![
                Hazard::TypeRebuild,
                Hazard::TableRewrite,
                Hazard::AccessExclusiveLock,
            ],
        )],
        vec![],
    )
}

/// A changed domain: constraints, default and NOT NULL change in place; a new base type or
/// collation needs the domain rebuilt, which pgalign does not do yet.
fn domain(ctx: &Ctx, s: &Block, t: &Block) -> Decision {
    let Some((new, old)) = first_statements(s, t, parse_domain) else {
        return Decision::Unsupported("cannot read the domain definition".into());
    };
    if new.base != old.base {
        return Decision::Unsupported(format!(
            "the domain's base type or collation changed ({} -> {}): that needs the domain rebuilt, which pgalign does not do yet",
            old.base, new.base
        ));
    }
    let Some(id) = identity_of(s) else {
        return Decision::Unsupported("cannot read the domain's name".into());
    };
    let mut steps = Vec::new();
    for (name, text) in &old.checks {
        if !new.checks.iter().any(|(n, x)| n == name && x == text) {
            steps.push(ctx.step(
                s,
                Op::Alter,
                &format!("constraint {name} not in source or differs"),
                format!("ALTER DOMAIN {id} DROP CONSTRAINT {name};\n"),
                vec![],
            ));
        }
    }
    if new.default != old.default {
        let sql = match &new.default {
            Some(d) => format!("ALTER DOMAIN {id} SET DEFAULT {d};\n"),
            None => format!("ALTER DOMAIN {id} DROP DEFAULT;\n"),
        };
        steps.push(ctx.step(s, Op::Alter, "default differs", sql, vec![]));
    }
    if new.not_null != old.not_null {
        let (sql, hz) = if new.not_null {
            (
                format!("ALTER DOMAIN {id} SET NOT NULL;\n"),
                vec![Hazard::ValidationScan],
            )
        } else {
            (format!("ALTER DOMAIN {id} DROP NOT NULL;\n"), vec![])
        };
        steps.push(ctx.step(s, Op::Alter, "NOT NULL differs", sql, hz));
    }
    for (name, text) in &new.checks {
        if !old.checks.iter().any(|(n, x)| n == name && x == text) {
            // Adding a CHECK to a domain checks every column that uses it.
            steps.push(ctx.step(
                s,
                Op::Alter,
                &format!("constraint {name} not in target or differs"),
                format!("ALTER DOMAIN {id} ADD {text};\n"),
                vec![Hazard::ValidationScan],
            ));
        }
    }
    Decision::Alter(steps, vec![])
}
