//! Per-kind knowledge: how to create, drop and alter each kind of object pg_dump emits. Here:
//! the decisions the planner acts on, and dispatch by kind; each kind that needs more than
//! "the text changed, so replace it" has a file of its own (named like its `fixtures/<kind>/`
//! folder), and dropping is in `drop.rs`.

mod acl;
mod composite;
mod domain;
mod drop;
mod enum_type;
mod online;
mod sequence;
mod table;

pub use drop::drop;

use super::{preflight, Ctx, Hazard, Op, Step};
use crate::catalog::parse::quote_ident;
use crate::catalog::read::{self, identity_of};
use crate::catalog::Block;
use crate::catalog::ObjectKind;

pub enum Decision {
    /// Alter in place: the steps, and what else they hand to the planner's later phases.
    Alter(Box<Altered>),
    Recreate,
    Unsupported(String),
}

/// An object altered in place: its steps, and what they mean for the rest of the plan. Returned,
/// not pushed onto the planner's context, so that a kind's file says everything it decides.
#[derive(Default)]
pub struct Altered {
    pub steps: Vec<Step>,
    /// Columns dropped or retyped (their dependents are rebuilt).
    pub columns: Vec<String>,
    /// Steps that run with the drops, before anything is dropped.
    pub early: Vec<Step>,
    /// Steps that run after every drop and before the first create (renames that free a name a
    /// create needs).
    pub after_drops: Vec<Step>,
    /// SOURCE blocks made within these steps (a serial column's DEFAULT entry): not created on
    /// their own.
    pub created_within: Vec<usize>,
    /// SOURCE blocks created before these steps when the plan creates them (the sequence a new
    /// serial column uses).
    pub created_before: Vec<usize>,
    /// TARGET objects these steps rebuild (an enum): their dependents are dropped before and
    /// created again after.
    pub rebuilds: Vec<usize>,
    /// Columns of TARGET tables whose type these steps change (an enum's rebuild): views and
    /// rules over them are rebuilt.
    pub touched_elsewhere: Vec<(usize, Vec<String>)>,
}

impl Decision {
    pub fn alter(a: Altered) -> Decision {
        Decision::Alter(Box::new(a))
    }
}

impl Altered {
    /// Just these steps.
    pub fn steps(steps: Vec<Step>) -> Altered {
        Altered {
            steps,
            ..Altered::default()
        }
    }
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
        Decision::alter(Altered::steps(vec![ctx.step(
            s,
            Op::Alter,
            why,
            s.sql(),
            vec![],
        )]))
    };
    match kind {
        ObjectKind::Table | ObjectKind::ForeignTable => table::alter(ctx, si, ti),
        ObjectKind::Owner => reapply(ctx, "owner differs"),
        ObjectKind::Comment | ObjectKind::SecurityLabel => reapply(ctx, "text differs"),
        ObjectKind::Default => match s.stmts.first().and_then(|x| read::no_default_marker_as_drop(x)) {
            // pg_dump's "no default of its own" (see table::is_no_default_marker).
            Some(sql) => Decision::alter(Altered::steps(vec![ctx.step(
                s,
                Op::Alter,
                "default expression differs: SOURCE's column has no default of its own",
                sql,
                vec![],
            )])),
            None => reapply(ctx, "default expression differs"),
        },
        ObjectKind::SequenceOwnedBy => reapply(ctx, "owning column differs"),
        ObjectKind::Acl | ObjectKind::DefaultAcl => match acl::change(Some(t), Some(s), ctx.tgt.server_version) {
            Ok(sql) => Decision::alter(Altered::steps(vec![ctx.step(s, Op::Alter, "privileges differ", sql, vec![])])),
            Err(e) => Decision::Unsupported(e),
        },
        ObjectKind::Sequence => sequence::sequence(ctx, s, t),
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
                    return Decision::alter(Altered::steps(vec![ctx.step(s, Op::Replace, "body or attributes differ", sql, vec![])]));
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
                Some(rest) if appended => Decision::alter(Altered::steps(vec![ctx.step(
                        s,
                        Op::Replace,
                        "columns added at the end; CREATE OR REPLACE keeps what depends on the view",
                        format!("CREATE OR REPLACE VIEW {rest};\n"),
                        vec![],
                    )])),
                _ => Decision::Recreate,
            }
        }
        ObjectKind::Type => enum_type::enum_type(ctx, s, t),
        ObjectKind::Domain => domain::domain(ctx, s, t),
        ObjectKind::RowSecurity => {
            let mut sql = String::new();
            for st in &t.stmts {
                if !s.stmts.contains(st) {
                    sql.push_str(&drop::invert_row_security(st));
                }
            }
            sql.push_str(&s.sql());
            Decision::alter(Altered::steps(vec![ctx.step(s, Op::Alter, "row level security differs", sql, vec![Hazard::AccessExclusiveLock])]))
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

/// The block's statements as they create it: under the table settings it was dumped with
/// (then reset), with pg_dump's "no default of its own" markers made into DROP DEFAULT (see
/// table::is_no_default_marker). `pgalign dump` writes blocks this way too.
pub fn create_sql(s: &Block) -> String {
    let kind = &s.key.kind;
    let mut sql = String::new();
    for st in s.settings() {
        sql.push_str(st);
        sql.push_str(";\n");
    }
    match kind {
        ObjectKind::Default => match s
            .stmts
            .first()
            .and_then(|x| read::no_default_marker_as_drop(x))
        {
            Some(drop) => sql.push_str(&drop),
            None => sql.push_str(&s.sql()),
        },
        _ => sql.push_str(&s.sql()),
    }
    if kind.is_table() {
        sql.push_str(&table::without_marked_defaults(s));
    }
    if !s.settings().is_empty() {
        sql.push_str("SET default_tablespace = '';\nSET default_table_access_method = heap;\n");
    }
    sql
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
    let mut sql = create_sql(s);
    let mut reason = reason.to_string();
    let existing = builds_on_rows(kind) && on_existing_table(ctx, s);
    // TARGET's definition of the table it is built on, and what the rows already in it must
    // satisfy for the build to succeed.
    let table = if existing {
        built_on_table(ctx, s)
    } else {
        None
    };
    let checks = if existing {
        preflight::for_created(s, table)
    } else {
        Vec::new()
    };
    if ctx.opts.online && s.settings().is_empty() && existing {
        if let Some(why) = online::not_on_partitioned_table(kind, table) {
            // The plain form, and its hazard, stay.
            reason.push_str(why);
        } else if let Some(steps) = online::create_online(ctx, s, &reason, &checks) {
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
    // Building on a table that already exists in TARGET blocks its writes while it runs (a
    // constraint added NOT VALID reads no rows).
    let not_valid = s
        .stmts
        .first()
        .and_then(|x| read::add_constraint(x))
        .is_some_and(|c| c.not_valid);
    if existing && !not_valid {
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
    let op = if kind.is_reapplied() && recreated {
        Op::Alter
    } else {
        Op::Create
    };
    let mut step = ctx.step(s, op, &reason, sql, hazards);
    step.preflight = checks;
    if *kind == ObjectKind::Sequence {
        if let Some(note) = sequence::replaces_serial(ctx, s) {
            step.reason.push_str(&note);
        }
    }
    vec![step]
}

/// Whether creating this kind builds on a table's rows (an index, a constraint).
fn builds_on_rows(kind: &ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::Index
            | ObjectKind::Constraint
            | ObjectKind::FkConstraint
            | ObjectKind::CheckConstraint
    )
}

/// TARGET's definition of the table an index or constraint is built on.
fn built_on_table<'a>(ctx: &Ctx<'a>, s: &Block) -> Option<&'a crate::catalog::TableDef> {
    let table = read::built_on(&s.key.kind, s.stmts.first()?)?;
    ctx.tgt.blocks[*ctx.tgt_rel.tables.get(&table)?].table()
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

/// Whether the table an index or constraint is built on already exists in TARGET: the table
/// the statement names (`ON t`, `ALTER TABLE t`), not any table it refers to (a foreign key's
/// referenced table does not get scanned).
pub(super) fn on_existing_table(ctx: &Ctx, s: &Block) -> bool {
    s.stmts
        .first()
        .and_then(|sql| read::built_on(&s.key.kind, sql))
        .is_some_and(|table| ctx.tgt_rel.tables.contains_key(&table))
}

/// Both sides' first statements read by `read`: (SOURCE's, TARGET's).
pub(super) fn first_statements<T>(
    s: &Block,
    t: &Block,
    read: impl Fn(&str) -> Option<T>,
) -> Option<(T, T)> {
    Some((read(s.stmts.first()?)?, read(t.stmts.first()?)?))
}
