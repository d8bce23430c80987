//! Per-kind knowledge: how to create, drop and alter each kind of object pg_dump emits.
//! Tables live in `table.rs`, privileges in `acl.rs`.

use super::{acl, kinds::table, online, Ctx, Hazard, Op, Step};
use crate::catalog::parse::{ident_of, matching_paren, quote_ident, tokens, Tok, TokKind};
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
    let Some(sql) = s.stmts.first() else {
        return false;
    };
    let Ok(toks) = tokens(sql) else { return false };
    let word = if s.key.kind == ObjectKind::Index {
        "ON"
    } else {
        "TABLE"
    };
    let Some(i) = find_words(sql, &toks, &[word]) else {
        return false;
    };
    let mut j = i + 1;
    if toks.get(j).is_some_and(|t| t.is_word(sql, "ONLY")) {
        j += 1;
    }
    let Some(table) = read_qualified(sql, &toks, j) else {
        return false;
    };
    ctx.tgt_rel.tables.contains_key(&table)
}

/// `[schema.]name` at token `from`, unquoted.
fn read_qualified(sql: &str, toks: &[Tok], from: usize) -> Option<(String, String)> {
    let mut parts = Vec::new();
    let mut k = from;
    loop {
        parts.push(ident_of(sql, toks.get(k)?)?);
        if toks.get(k + 1).is_some_and(|t| t.is_punct('.')) {
            k += 2;
        } else {
            break;
        }
    }
    match parts.as_slice() {
        [s, n] => Some((s.clone(), n.clone())),
        [n] => Some((String::new(), n.clone())),
        _ => None,
    }
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

/// The object's identity as SQL (`app.f(a integer)`, `public."Orders"`): from pg_dump's own
/// `ALTER ... OWNER TO` statement when the dump has one, else read from the CREATE statement.
pub fn identity_of(b: &Block) -> Option<String> {
    if let Some(id) = b.identity() {
        return Some(id.to_string());
    }
    let first = b.stmts.first()?;
    let toks = tokens(first).ok()?;
    // CREATE [OR REPLACE] [modifiers] KIND name [(args)]
    let kind_words: Vec<&str> = b.key.kind.as_str().split(' ').collect();
    let last_kind = *kind_words.last()?;
    let i = toks.iter().position(|t| t.is_word(first, last_kind))?;
    let mut j = i + 1;
    // Skip IF NOT EXISTS.
    if toks.get(j).is_some_and(|t| t.is_word(first, "IF")) {
        j += 3;
    }
    let (end, _) = qualified_name_end(first, &toks, j)?;
    let name = &first[toks[j].start..toks[end - 1].end];
    if matches!(
        b.key.kind,
        ObjectKind::Function | ObjectKind::Procedure | ObjectKind::Aggregate
    ) && toks.get(end).is_some_and(|t| t.is_punct('('))
    {
        let close = matching_paren(&toks, end)?;
        return Some(format!(
            "{name}({})",
            arguments(first, &toks[end + 1..close])
        ));
    }
    Some(name.to_string())
}

/// A routine's arguments as DROP and ALTER take them: each without its `DEFAULT` / `= value`
/// (which a dump made without owners leaves only the CREATE statement to read them from).
fn arguments(sql: &str, toks: &[Tok]) -> String {
    let mut args: Vec<&str> = Vec::new();
    let (mut start, mut end, mut depth, mut in_default) = (None::<usize>, 0, 0, false);
    for (k, t) in toks.iter().enumerate() {
        let text = &sql[t.start..t.end];
        if t.is_punct('(') || text == "[" {
            depth += 1;
        } else if t.is_punct(')') || text == "]" {
            depth -= 1;
        }
        if depth == 0 && t.is_punct(',') {
            if let Some(s) = start.take() {
                args.push(&sql[s..end]);
            }
            in_default = false;
            continue;
        }
        let default =
            depth == 0 && (t.is_word(sql, "DEFAULT") || (t.kind == TokKind::Other && text == "="));
        in_default |= default;
        if !in_default {
            start.get_or_insert(t.start);
            end = toks[k].end;
        }
    }
    if let Some(s) = start {
        args.push(&sql[s..end]);
    }
    args.join(", ")
}

/// `ALTER TABLE ONLY p ATTACH PARTITION c FOR VALUES ...` (or `ALTER INDEX p ATTACH PARTITION c`)
/// -> ((schema, parent), (schema, child)),
/// unquoted.
pub fn attach_parts(sql: &str) -> Option<((String, String), (String, String))> {
    let toks = tokens(sql).ok()?;
    let read = |from: usize| read_qualified(sql, &toks, from);
    let mut j =
        find_words(sql, &toks, &["TABLE"]).or_else(|| find_words(sql, &toks, &["INDEX"]))? + 1;
    if toks.get(j).is_some_and(|t| t.is_word(sql, "ONLY")) {
        j += 1;
    }
    let parent = read(j)?;
    let p = find_words(sql, &toks, &["ATTACH", "PARTITION"])?;
    Some((parent, read(p + 2)?))
}

/// `ALTER SEQUENCE s OWNED BY sch.tab.col` -> (sch, tab, col), unquoted.
pub fn owned_by_target(sql: &str) -> Option<(String, String, String)> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, &["OWNED", "BY"])?;
    let mut parts = Vec::new();
    let mut k = i + 2;
    while let Some(t) = toks.get(k) {
        parts.push(ident_of(sql, t)?);
        if toks.get(k + 1).is_some_and(|t| t.is_punct('.')) {
            k += 2;
        } else {
            break;
        }
    }
    match parts.as_slice() {
        [s, t, c] => Some((s.clone(), t.clone(), c.clone())),
        [t, c] => Some((String::new(), t.clone(), c.clone())),
        _ => None,
    }
}

/// `ALTER TABLE [ONLY] sch.tab ALTER COLUMN col ADD GENERATED ... AS IDENTITY (...)` (an
/// identity sequence's entry) -> ((sch, tab), col, the clause from GENERATED to the end).
pub fn identity_parts(sql: &str) -> Option<((String, String), String, String)> {
    let toks = tokens(sql).ok()?;
    if !(toks.first()?.is_word(sql, "ALTER") && toks.get(1)?.is_word(sql, "TABLE")) {
        return None;
    }
    let mut j = 2;
    if toks.get(j).is_some_and(|t| t.is_word(sql, "ONLY")) {
        j += 1;
    }
    let table = read_qualified(sql, &toks, j)?;
    let a = find_words(sql, &toks, &["ALTER", "COLUMN"])?;
    let column = ident_of(sql, toks.get(a + 2)?)?;
    let g = find_words(sql, &toks, &["ADD", "GENERATED"])?;
    (g == a + 3).then(|| (table, column, sql[toks[g + 1].start..].to_string()))
}

/// `ALTER TABLE ONLY t ALTER COLUMN c SET DEFAULT expr` -> `expr`.
pub fn set_default_expr(sql: &str) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, &["SET", "DEFAULT"])?;
    Some(sql[toks.get(i + 2)?.start..].trim().to_string())
}

/// The sequence a default takes its values from, when it is exactly
/// `nextval('sch.seq'::regclass)` (a serial column's): (sch, seq), unquoted.
pub fn nextval_sequence(expr: &str) -> Option<(String, String)> {
    let toks = tokens(expr).ok()?;
    let [f, open, lit, cast, ty, close] = toks.as_slice() else {
        return None;
    };
    let literal = expr[lit.start..lit.end]
        .strip_prefix('\'')?
        .strip_suffix('\'')?
        .replace("''", "'");
    if !(f.is_word(expr, "nextval")
        && open.is_punct('(')
        && lit.kind == TokKind::Other
        && &expr[cast.start..cast.end] == "::"
        && ty.is_word(expr, "regclass")
        && close.is_punct(')'))
    {
        return None;
    }
    let inner = tokens(&literal).ok()?;
    match read_qualified(&literal, &inner, 0)? {
        (s, n) if !s.is_empty() && inner.len() == 3 => Some((s, n)),
        _ => None,
    }
}

/// Reads `ident[.ident[.ident]]` starting at token `j`; returns the index after it.
fn qualified_name_end(sql: &str, toks: &[Tok], j: usize) -> Option<(usize, String)> {
    let mut k = j;
    let mut name = ident_of(sql, toks.get(k)?)?;
    k += 1;
    while toks.get(k).is_some_and(|t| t.is_punct('.')) {
        name = ident_of(sql, toks.get(k + 1)?)?;
        k += 2;
    }
    Some((k, name))
}

/// Index of the first top-level token sequence spelling `words`.
fn find_words(sql: &str, toks: &[Tok], words: &[&str]) -> Option<usize> {
    let mut depth = 0;
    for i in 0..toks.len() {
        if toks[i].is_punct('(') {
            depth += 1;
        } else if toks[i].is_punct(')') {
            depth -= 1;
        }
        if depth == 0
            && words
                .iter()
                .enumerate()
                .all(|(k, w)| toks.get(i + k).is_some_and(|t| t.is_word(sql, w)))
        {
            return Some(i);
        }
    }
    None
}

/// Keeps the statement up to `words` and puts `replacement` there instead of the rest.
fn replace_from(sql: &str, words: &[&str], replacement: &str) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, words)?;
    Some(format!("{}{replacement};\n", &sql[..toks[i].start]))
}

fn replace_word(sql: &str, word: &str, replacement: &str) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, &[word])?;
    Some(format!(
        "{}{replacement}{};\n",
        &sql[..toks[i].start],
        &sql[toks[i].end..]
    ))
}

/// The (quoted, as written) name that follows `words`, skipping CONCURRENTLY / IF NOT EXISTS.
fn name_after(sql: &str, words: &[&str]) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, words)?;
    let mut j = i + words.len();
    while toks.get(j).is_some_and(|t| t.is_word(sql, "CONCURRENTLY")) {
        j += 1;
    }
    if toks.get(j).is_some_and(|t| t.is_word(sql, "IF")) {
        j += 3;
    }
    let t = toks.get(j)?;
    ident_of(sql, t)?;
    Some(sql[t.start..t.end].to_string())
}

/// The qualified relation name (as written) after the first top-level `word`.
fn relation_after(sql: &str, word: &str) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, &[word])?;
    let mut j = i + 1;
    if toks.get(j).is_some_and(|t| t.is_word(sql, "ONLY")) {
        j += 1;
    }
    let (end, _) = qualified_name_end(sql, &toks, j)?;
    Some(sql[toks[j].start..toks[end - 1].end].to_string())
}

fn paren_after(sql: &str, word: &str) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, &[word])?;
    let open = i + 1;
    if !toks.get(open)?.is_punct('(') {
        return None;
    }
    let close = matching_paren(&toks, open)?;
    Some(sql[toks[open].start..toks[close].end].to_string())
}

/// `ALTER TABLE ONLY t ADD CONSTRAINT c ...` -> `ALTER TABLE ONLY t DROP CONSTRAINT c;`
fn drop_constraint(sql: &str) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = find_words(sql, &toks, &["ADD", "CONSTRAINT"])?;
    let name = toks.get(i + 2)?;
    ident_of(sql, name)?;
    let head = sql[..toks[i].start].trim_end();
    Some(format!(
        "{head} DROP CONSTRAINT {};\n",
        &sql[name.start..name.end]
    ))
}

/// `COMMENT ON X IS '...'` -> `COMMENT ON X IS NULL;`
fn comment_to_null(sql: &str) -> Option<String> {
    let toks = tokens(sql).ok()?;
    let i = toks
        .iter()
        .position(|t| matches!(&t.kind, TokKind::Keyword(k) if k == "IS"))?;
    Some(format!("{}IS NULL;\n", &sql[..toks[i].start]))
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
    // ALTER TABLE t ALTER COLUMN c ADD GENERATED {ALWAYS|BY DEFAULT} AS IDENTITY ( opts )
    // Read by tokens, not by pg_dump's spacing: `AS\n IDENTITY` is the same statement.
    let parse = |txt: &str| -> Option<(String, String, Vec<String>)> {
        let toks = tokens(txt).ok()?;
        let gen = find_words(txt, &toks, &["ADD", "GENERATED"])?;
        let head = txt[..toks[gen].start].trim_end().to_string();
        let as_i = gen + 2 + find_words(txt, &toks[gen + 2..], &["AS", "IDENTITY"])?;
        let kind = toks[gen + 2..as_i]
            .iter()
            .map(|t| &txt[t.start..t.end])
            .collect::<Vec<_>>()
            .join(" ");
        let open = as_i + 2;
        if kind.is_empty() || !toks.get(open)?.is_punct('(') {
            return None;
        }
        let close = matching_paren(&toks, open)?;
        let opts = txt[toks[open].end..toks[close].start]
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        Some((head, kind, opts))
    };
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

/// Enum labels in order, from `CREATE TYPE x AS ENUM ('a', 'b')`.
fn enum_labels(sql: &str) -> Option<Vec<String>> {
    let toks = tokens(sql).ok()?;
    find_words(sql, &toks, &["AS", "ENUM"])?;
    let open = toks.iter().position(|t| t.is_punct('('))?;
    let close = matching_paren(&toks, open)?;
    Some(
        toks[open + 1..close]
            .iter()
            .filter(|t| t.kind == TokKind::Other)
            .map(|t| sql[t.start..t.end].to_string())
            .collect(),
    )
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

/// `CREATE TYPE x AS (a text, b integer)` -> [(a, "a text", "text"), ...]: name, the attribute
/// as written, its type as written.
fn composite_attributes(sql: &str) -> Option<Vec<(String, String, String)>> {
    let toks = tokens(sql).ok()?;
    let as_i = find_words(sql, &toks, &["AS"])?;
    if !toks.get(as_i + 1)?.is_punct('(') {
        return None;
    }
    let open = as_i + 1;
    let close = matching_paren(&toks, open)?;
    let mut out = Vec::new();
    let mut start = open + 1;
    let mut depth = 0;
    for k in open + 1..=close {
        let t = &toks[k];
        if t.is_punct('(') {
            depth += 1;
        } else if t.is_punct(')') && k != close {
            depth -= 1;
        } else if (k == close || (t.is_punct(',') && depth == 0)) && k > start {
            let name = ident_of(sql, &toks[start])?;
            let full = sql[toks[start].start..toks[k - 1].end].to_string();
            let ty = sql[toks[start].end..toks[k - 1].end].trim().to_string();
            out.push((name, full, ty));
            start = k + 1;
        }
    }
    Some(out)
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

/// A domain as pg_dump writes it: `CREATE DOMAIN d AS type [COLLATE c] [DEFAULT x] [NOT NULL]`
/// then one `CONSTRAINT name CHECK (...)` per line.
struct Domain {
    base: String,
    default: Option<String>,
    not_null: bool,
    checks: Vec<(String, String)>,
}

fn parse_domain(sql: &str) -> Option<Domain> {
    let toks = tokens(sql).ok()?;
    let as_i = find_words(sql, &toks, &["AS"])?;
    // Top-level clause starts after AS type.
    let mut marks: Vec<(usize, &str)> = Vec::new();
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().skip(as_i + 1) {
        if t.is_punct('(') {
            depth += 1;
        } else if t.is_punct(')') {
            depth -= 1;
        } else if depth == 0 {
            if t.is_word(sql, "DEFAULT") {
                marks.push((i, "default"));
            } else if t.is_word(sql, "NOT")
                && toks.get(i + 1).is_some_and(|n| n.is_word(sql, "NULL"))
            {
                marks.push((i, "notnull"));
            } else if t.is_word(sql, "CONSTRAINT") {
                marks.push((i, "constraint"));
            } else if t.is_word(sql, "COLLATE")
                || t.is_word(sql, "CHECK") && !marks.iter().any(|m| m.1 == "constraint")
            {
                marks.push((i, "other"));
            }
        }
    }
    let first_mark = marks.first().map(|m| m.0).unwrap_or(toks.len());
    // The base type: at least one token between AS and the first clause.
    if first_mark <= as_i + 1 {
        return None;
    }
    let base = sql[toks[as_i + 1].start..toks[first_mark - 1].end].to_string();
    let mut d = Domain {
        base,
        default: None,
        not_null: false,
        checks: Vec::new(),
    };
    for (k, (i, what)) in marks.iter().enumerate() {
        let end = marks
            .get(k + 1)
            .map(|m| toks[m.0].start)
            .unwrap_or(sql.len());
        let text = sql[toks[*i].start..end].trim().to_string();
        match *what {
            "default" => d.default = Some(text["DEFAULT".len()..].trim().to_string()),
            "notnull" => d.not_null = true,
            "constraint" => {
                let t = toks.get(i + 1)?;
                let name = sql[t.start..t.end].to_string();
                d.checks.push((name, text));
            }
            _ => d.base.push_str(&format!(" {text}")),
        }
    }
    Some(d)
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

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn drop_forms() {
        assert_eq!(
            drop_constraint(
                "ALTER TABLE ONLY app.\"Items\"\n    ADD CONSTRAINT \"a b\" PRIMARY KEY (id)"
            )
            .unwrap(),
            "ALTER TABLE ONLY app.\"Items\" DROP CONSTRAINT \"a b\";\n"
        );
        assert_eq!(
            comment_to_null("COMMENT ON COLUMN app.t.\"is\" IS 'x is y'").unwrap(),
            "COMMENT ON COLUMN app.t.\"is\" IS NULL;\n"
        );
        assert_eq!(
            replace_from(
                "ALTER TABLE ONLY app.t ALTER COLUMN id SET DEFAULT nextval('s'::regclass)",
                &["SET", "DEFAULT"],
                "DROP DEFAULT"
            )
            .unwrap(),
            "ALTER TABLE ONLY app.t ALTER COLUMN id DROP DEFAULT;\n"
        );
        assert_eq!(
            name_after(
                "CREATE UNIQUE INDEX \"Odd\"\"idx\" ON app.t USING btree (a)",
                &["INDEX"]
            )
            .unwrap(),
            "\"Odd\"\"idx\""
        );
        assert_eq!(
            relation_after(
                "CREATE TRIGGER trg BEFORE INSERT ON app.\"T t\" FOR EACH ROW EXECUTE FUNCTION f()",
                "ON"
            )
            .unwrap(),
            "app.\"T t\""
        );
        assert_eq!(
            attach_parts(
                "ALTER TABLE ONLY app.\"p x\" ATTACH PARTITION app.p1 FOR VALUES FROM (1) TO (2)"
            )
            .unwrap(),
            (("app".into(), "p x".into()), ("app".into(), "p1".into()))
        );
    }

    #[test]
    fn serial_and_identity_entries_read() {
        assert_eq!(
            identity_parts("ALTER TABLE public.\"Log\" ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (\n    SEQUENCE NAME public.log_id_seq\n    START WITH 1\n)"),
            Some((
                ("public".to_string(), "Log".to_string()),
                "id".to_string(),
                "GENERATED ALWAYS AS IDENTITY (\n    SEQUENCE NAME public.log_id_seq\n    START WITH 1\n)".to_string()
            ))
        );
        assert_eq!(
            identity_parts("ALTER TABLE public.t ALTER COLUMN id SET DEFAULT 1"),
            None
        );
        let d = set_default_expr(
            "ALTER TABLE ONLY public.t ALTER COLUMN id SET DEFAULT nextval('public.\"T id''s seq\"'::regclass)",
        )
        .unwrap();
        assert_eq!(d, "nextval('public.\"T id''s seq\"'::regclass)");
        assert_eq!(
            nextval_sequence(&d),
            Some(("public".to_string(), "T id's seq".to_string()))
        );
        assert_eq!(
            nextval_sequence("nextval('public.t_id_seq'::regclass)"),
            Some(("public".to_string(), "t_id_seq".to_string()))
        );
        assert_eq!(
            nextval_sequence("(nextval('public.t_id_seq'::regclass) * 2)"),
            None
        );
    }

    #[test]
    fn domains_read() {
        let d = parse_domain("CREATE DOMAIN public.email AS character varying(100) COLLATE pg_catalog.\"C\" DEFAULT 'a'::text NOT NULL\n\tCONSTRAINT c1 CHECK ((VALUE ~~ '%@%'::text))\n\tCONSTRAINT c2 CHECK ((length((VALUE)::text) > 3))").unwrap();
        assert_eq!(d.base, "character varying(100) COLLATE pg_catalog.\"C\"");
        assert_eq!(d.default.as_deref(), Some("'a'::text"));
        assert!(d.not_null);
        assert_eq!(d.checks.len(), 2);
        assert_eq!(
            d.checks[1].1,
            "CONSTRAINT c2 CHECK ((length((VALUE)::text) > 3))"
        );
    }

    /// Regression (issue 13): a domain cut after AS (or with nothing between AS and a clause,
    /// or a CONSTRAINT without a name) indexed past its tokens.
    #[test]
    fn domains_missing_a_part_are_not_read() {
        for sql in [
            "CREATE DOMAIN public.d AS",
            "CREATE DOMAIN public.d AS DEFAULT 1",
            "CREATE DOMAIN public.d AS integer CONSTRAINT",
        ] {
            assert!(parse_domain(sql).is_none(), "{sql}");
        }
    }

    /// Regression (mutation test): without its `ALTER FUNCTION ... OWNER TO` (a dump made with
    /// --no-owner), a routine's name was read from its CREATE with the defaults, and
    /// `DROP FUNCTION f(p numeric, pct integer DEFAULT 10)` does not parse.
    #[test]
    fn routine_names_leave_out_defaults() {
        let b = Block::new(
            crate::catalog::Key {
                kind: ObjectKind::Function,
                schema: "public".into(),
                name: "f(numeric, integer)".into(),
            },
            None,
            Default::default(),
            Default::default(),
            smallvec::smallvec!["CREATE FUNCTION public.f(p numeric, pct integer DEFAULT 10, q text = 'a,b'::text, VARIADIC r integer[] DEFAULT ARRAY[1, 2]) RETURNS numeric\n    LANGUAGE sql\n    AS $$ select p $$".to_string()],
            Box::default(),
            None,
        );
        assert_eq!(
            identity_of(&b).unwrap(),
            "public.f(p numeric, pct integer, q text, VARIADIC r integer[])"
        );
    }

    #[test]
    fn composite_attributes_read() {
        let a = composite_attributes("CREATE TYPE public.addr AS (\n\tstreet text,\n\t\"City\" character varying(20) COLLATE pg_catalog.\"C\",\n\tn numeric(10,2)\n)").unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a[1].0, "City");
        assert_eq!(
            a[1].1,
            "\"City\" character varying(20) COLLATE pg_catalog.\"C\""
        );
        assert_eq!(a[1].2, "character varying(20) COLLATE pg_catalog.\"C\"");
        assert_eq!(a[2].1, "n numeric(10,2)");
    }

    #[test]
    fn enum_labels_read() {
        assert_eq!(
            enum_labels("CREATE TYPE app.mood AS ENUM (\n    'sad',\n    'o''k'\n)").unwrap(),
            ["'sad'", "'o''k'"]
        );
    }
}
