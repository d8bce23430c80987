//! Whether a dump is what pgalign reads: one database's schema, as `pg_dump --schema-only`
//! wrote it. Anything else is refused, naming the entry, because the plan copies statements
//! from the dump: a statement an entry should not hold (table data, a `DELETE` hidden after a
//! `CREATE TABLE`, a psql meta-command, a statement cut short) would otherwise run on TARGET.
//!
//! Two levels, so that large schemas stay cheap:
//! - while the dump is read, every statement's first words (`refuse_statement`) and every
//!   entry's type (`refuse_entry`): data, pg_dumpall and `--create` / `--clean` output;
//! - for the entries that reach the plan (created, dropped or changed), `validate`: each
//!   statement parses with the server's grammar, alone, is of a kind pg_dump writes in that type
//!   of entry (`STATEMENTS`; an entry that creates an object starts with its CREATE, `FIRST`),
//!   holds no comment and names nothing longer than PostgreSQL keeps; the object's name as its
//!   `ALTER ... OWNER TO` writes it (which the planner uses in DROP, GRANT ...) parses there.

use super::{parse, reader::SYNTHETIC_TOC_BASE, Catalog};
use crate::catalog::ObjectKind;
use anyhow::{anyhow, bail, Result};

/// The longest identifier PostgreSQL keeps (NAMEDATALEN - 1 bytes); longer ones are truncated
/// with only a NOTICE, so the plan would name something else than the dump does.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// What to do about a dump that is not a schema dump of one database.
const REMAKE: &str = "make it again with pg_dump --schema-only";

/// The statement kinds (libpg_query's node names) pg_dump writes in each type of entry. An
/// entry holding any other kind was not written by pg_dump, or was edited since.
const STATEMENTS: &[(&str, &[&str])] = &[
    ("ACCESS METHOD", &["CreateAmStmt"]),
    // A grant made by another role comes between SET and RESET SESSION AUTHORIZATION (the SET
    // is dropped with the other settings; see `allowed`).
    ("ACL", &["GrantStmt", "VariableSetStmt"]),
    ("AGGREGATE", &["DefineStmt"]),
    ("BLOB", &["SelectStmt", "AlterOwnerStmt"]),
    ("BLOB METADATA", &["SelectStmt", "AlterOwnerStmt"]),
    ("CAST", &["CreateCastStmt"]),
    ("CHECK CONSTRAINT", &["AlterTableStmt", "AlterDomainStmt"]),
    ("COLLATION", &["DefineStmt"]),
    ("COMMENT", &["CommentStmt"]),
    ("CONSTRAINT", &["AlterTableStmt"]),
    ("CONVERSION", &["CreateConversionStmt"]),
    ("DEFAULT", &["AlterTableStmt"]),
    (
        "DEFAULT ACL",
        &["AlterDefaultPrivilegesStmt", "VariableSetStmt"],
    ),
    ("DOMAIN", &["CreateDomainStmt", "AlterDomainStmt"]),
    (
        "EVENT TRIGGER",
        &["CreateEventTrigStmt", "AlterEventTrigStmt"],
    ),
    ("EXTENSION", &["CreateExtensionStmt"]),
    ("FK CONSTRAINT", &["AlterTableStmt"]),
    ("FOREIGN DATA WRAPPER", &["CreateFdwStmt"]),
    ("FOREIGN SERVER", &["CreateForeignServerStmt"]),
    (
        "FOREIGN TABLE",
        &["CreateForeignTableStmt", "AlterTableStmt"],
    ),
    ("FUNCTION", &["CreateFunctionStmt"]),
    ("INDEX", &["IndexStmt", "AlterTableStmt"]),
    ("INDEX ATTACH", &["AlterTableStmt"]),
    ("LARGE OBJECT", &["SelectStmt", "AlterOwnerStmt"]),
    (
        "MATERIALIZED VIEW",
        &["CreateTableAsStmt", "AlterTableStmt"],
    ),
    ("OPERATOR", &["DefineStmt"]),
    ("OPERATOR CLASS", &["CreateOpClassStmt"]),
    (
        "OPERATOR FAMILY",
        &["CreateOpFamilyStmt", "AlterOpFamilyStmt"],
    ),
    // pgalign's own entry: the object's `ALTER ... OWNER TO`.
    ("OWNER", &["AlterOwnerStmt", "AlterTableStmt"]),
    ("POLICY", &["CreatePolicyStmt"]),
    // Without HANDLER the grammar reads CREATE LANGUAGE as CREATE EXTENSION (PostgreSQL 13+).
    (
        "PROCEDURAL LANGUAGE",
        &["CreatePLangStmt", "CreateExtensionStmt"],
    ),
    ("PROCEDURE", &["CreateFunctionStmt"]),
    ("PUBLICATION", &["CreatePublicationStmt"]),
    ("PUBLICATION TABLE", &["AlterPublicationStmt"]),
    ("PUBLICATION TABLES IN SCHEMA", &["AlterPublicationStmt"]),
    ("ROW SECURITY", &["AlterTableStmt"]),
    // A view in a dependency loop is created as a table first and becomes a view by its rule.
    ("RULE", &["RuleStmt", "ViewStmt", "AlterTableStmt"]),
    ("SCHEMA", &["CreateSchemaStmt"]),
    ("SECURITY LABEL", &["SecLabelStmt"]),
    // Identity sequences are `ALTER TABLE ... ADD GENERATED ... AS IDENTITY`.
    (
        "SEQUENCE",
        &["CreateSeqStmt", "AlterSeqStmt", "AlterTableStmt"],
    ),
    ("SEQUENCE OWNED BY", &["AlterSeqStmt"]),
    ("SERVER", &["CreateForeignServerStmt"]),
    ("SHELL TYPE", &["DefineStmt"]),
    ("STATISTICS", &["CreateStatsStmt", "AlterStatsStmt"]),
    (
        "SUBSCRIPTION",
        &["CreateSubscriptionStmt", "AlterSubscriptionStmt"],
    ),
    (
        "TABLE",
        &["CreateStmt", "CreateForeignTableStmt", "AlterTableStmt"],
    ),
    ("TABLE ATTACH", &["AlterTableStmt"]),
    (
        "TEXT SEARCH CONFIGURATION",
        &["DefineStmt", "AlterTSConfigurationStmt"],
    ),
    ("TEXT SEARCH DICTIONARY", &["DefineStmt"]),
    ("TEXT SEARCH PARSER", &["DefineStmt"]),
    ("TEXT SEARCH TEMPLATE", &["DefineStmt"]),
    ("TRANSFORM", &["CreateTransformStmt"]),
    ("TRIGGER", &["CreateTrigStmt", "AlterTableStmt"]),
    (
        "TYPE",
        &[
            "CompositeTypeStmt",
            "CreateEnumStmt",
            "CreateRangeStmt",
            "DefineStmt",
        ],
    ),
    ("USER MAPPING", &["CreateUserMappingStmt"]),
    ("VIEW", &["ViewStmt", "AlterTableStmt"]),
];

/// Entries that create an object start with the statement that creates it: the planner reads
/// the object's name and definition there (a TABLE entry holding only an ALTER TABLE would have
/// it read `ONLY` as the table's name).
const FIRST: &[(&str, &[&str])] = &[
    ("TABLE", &["CreateStmt", "CreateForeignTableStmt"]),
    ("FOREIGN TABLE", &["CreateForeignTableStmt"]),
    ("INDEX", &["IndexStmt"]),
    ("VIEW", &["ViewStmt"]),
    ("MATERIALIZED VIEW", &["CreateTableAsStmt"]),
    ("SEQUENCE", &["CreateSeqStmt", "AlterTableStmt"]),
    ("DOMAIN", &["CreateDomainStmt"]),
    ("TRIGGER", &["CreateTrigStmt"]),
    ("RULE", &["RuleStmt", "ViewStmt"]),
    ("STATISTICS", &["CreateStatsStmt"]),
    ("EVENT TRIGGER", &["CreateEventTrigStmt"]),
    ("OPERATOR FAMILY", &["CreateOpFamilyStmt"]),
    ("SUBSCRIPTION", &["CreateSubscriptionStmt"]),
    ("TEXT SEARCH CONFIGURATION", &["DefineStmt"]),
    ("BLOB", &["SelectStmt"]),
    ("BLOB METADATA", &["SelectStmt"]),
    ("LARGE OBJECT", &["SelectStmt"]),
];

/// For entry types pgalign does not know (a newer pg_dump's): definitions only. Never data,
/// transaction control, code blocks, or objects of the whole cluster (databases, roles,
/// tablespaces, server settings), whose statements start like definitions too.
fn unknown_entry_allows(kind: &str) -> bool {
    let ddl = kind.starts_with("Create")
        || kind.starts_with("Alter")
        || matches!(
            kind,
            "DefineStmt"
                | "CommentStmt"
                | "SecLabelStmt"
                | "IndexStmt"
                | "ViewStmt"
                | "RuleStmt"
                | "CompositeTypeStmt"
        );
    let cluster_or_query = matches!(
        kind,
        "CreatedbStmt"
            | "CreateRoleStmt"
            | "CreateTableSpaceStmt"
            | "CreateTableAsStmt"
            | "AlterDatabaseStmt"
            | "AlterDatabaseSetStmt"
            | "AlterDatabaseRefreshCollStmt"
            | "AlterRoleStmt"
            | "AlterRoleSetStmt"
            | "AlterSystemStmt"
            | "AlterTableSpaceOptionsStmt"
            | "AlterTableMoveAllStmt"
    );
    ddl && !cluster_or_query
}

/// Whether an entry of type `entry` may hold `stmt`, a statement of kind `kind`.
fn allowed(entry: &str, kind: &str, stmt: &str) -> bool {
    let listed = match STATEMENTS.iter().find(|(e, _)| *e == entry) {
        Some((_, kinds)) => kinds.contains(&kind),
        None => unknown_entry_allows(kind),
    };
    listed
        && match kind {
            // The one query pg_dump writes: a large object's creation.
            "SelectStmt" => is_large_object_create(entry, stmt),
            // `CREATE TABLE ... AS` runs its query; a materialized view is made WITH NO DATA.
            "CreateTableAsStmt" => starts_with_words(stmt, &["CREATE", "MATERIALIZED", "VIEW"]),
            "VariableSetStmt" => {
                starts_with_words(stmt, &["RESET", "SESSION", "AUTHORIZATION"])
                    && stmt.split_whitespace().count() == 3
            }
            _ => true,
        }
}

/// `SELECT pg_catalog.lo_create('16424')` in a large object's entry.
fn is_large_object_create(entry: &str, stmt: &str) -> bool {
    matches!(entry, "BLOB" | "BLOB METADATA" | "LARGE OBJECT")
        && stmt.starts_with("SELECT pg_catalog.lo_create('")
        && stmt.ends_with("')")
        && stmt["SELECT pg_catalog.lo_create('".len()..stmt.len() - 2]
            .bytes()
            .all(|b| b.is_ascii_digit())
}

/// Whether `stmt` starts with these words (any case), each followed by white space or the end.
fn starts_with_words(stmt: &str, words: &[&str]) -> bool {
    let mut rest = stmt;
    for w in words {
        let Some(head) = rest.get(..w.len()) else {
            return false;
        };
        if !head.eq_ignore_ascii_case(w) {
            return false;
        }
        rest = &rest[w.len()..];
        if !(rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_whitespace())) {
            return false;
        }
        rest = rest.trim_start();
    }
    true
}

/// The statement, short, on one line, for an error message.
pub(crate) fn summary(stmt: &str) -> String {
    let line = stmt.lines().next().unwrap_or("").trim();
    let line: String = line.chars().filter(|c| !c.is_control()).collect();
    match line.char_indices().nth(60) {
        Some((i, _)) => format!("{} ...", &line[..i]),
        None if stmt.trim().lines().nth(1).is_some() => format!("{line} ..."),
        None => line,
    }
}

/// An entry as errors name it: its pg_dump header, and its TOC id when the dump has them.
pub(crate) fn entry_name(kind: &str, schema: &str, name: &str, toc: Option<u32>) -> String {
    let clean = |s: &str| -> String { s.chars().filter(|c| !c.is_control()).collect() };
    let schema = if schema.is_empty() { "-" } else { schema };
    let header = format!(
        "entry \"Name: {}; Type: {}; Schema: {}\"",
        clean(name),
        clean(kind),
        clean(schema)
    );
    match toc.filter(|t| *t < SYNTHETIC_TOC_BASE) {
        Some(t) => format!("{header} (TOC entry {t})"),
        None => header,
    }
}

/// Entry types that hold no schema: data, and the database itself. Refused whatever they hold.
pub(crate) fn refuse_entry(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "TABLE DATA" | "BLOBS" | "BLOB DATA" | "LARGE OBJECTS" => {
            "not a schema-only dump: it has table data"
        }
        "SEQUENCE SET" => "not a schema-only dump: it sets a sequence's current value",
        "MATERIALIZED VIEW DATA" => "not a schema-only dump: it fills a materialized view",
        // pg_dump 18's optimizer statistics, never in a --schema-only dump.
        "STATISTICS DATA" => "not a schema-only dump: it has optimizer statistics",
        "DATABASE" | "DATABASE PROPERTIES" => {
            "it creates or sets up the database itself, as pg_dump --create and pg_dumpall do; pgalign compares the schema inside one database: make it with pg_dump --schema-only, without --create"
        }
        _ => return None,
    })
}

/// What a `refuse_entry` message lacks: what to do.
pub(crate) fn refuse_entry_advice(kind: &str) -> &'static str {
    if kind.starts_with("DATABASE") {
        ""
    } else {
        REMAKE
    }
}

/// Why a statement cannot be in a schema dump, judged by its first words (cheap: every
/// statement of the dump passes here). `kind` is the type of its entry ("" before the first).
pub(crate) fn refuse_statement(kind: &str, stmt: &str) -> Option<String> {
    // Every statement of the dump comes here: nothing is allocated unless it is refused (words
    // are borrowed when already upper case, as pg_dump writes them).
    let s = || summary(stmt);
    if stmt.starts_with('\\') {
        return Some(format!(
            "it has a psql meta-command ({}), which pg_dump --schema-only does not write (pg_dumpall and pg_dump --create do): dump one database with pg_dump --schema-only",
            s()
        ));
    }
    let mut words = stmt
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(|w| -> std::borrow::Cow<'_, str> {
            if w.bytes().any(|b| b.is_ascii_lowercase()) {
                w.to_ascii_uppercase().into()
            } else {
                w.into()
            }
        });
    let first = words.next().unwrap_or_default();
    let second = words.next().unwrap_or_default();
    let data = |what: &str| {
        Some(format!(
            "not a schema-only dump: {what} ({}): {REMAKE}",
            s()
        ))
    };
    let foreign = |what: &str| {
        Some(format!(
            "{what} ({}), which pg_dump does not write in a schema dump: {REMAKE}",
            s()
        ))
    };
    let cluster = || {
        Some(format!(
            "it has {}, a statement of pg_dumpall (roles, databases, tablespaces), not of one database's schema: dump one database with pg_dump --schema-only",
            s()
        ))
    };
    if !stmt.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return foreign("it has a statement that is not SQL");
    }
    match (first.as_ref(), second.as_ref()) {
        ("COPY" | "INSERT", _) => data("it has table data"),
        ("SELECT", _) if stmt.starts_with("SELECT pg_catalog.set_config(") => None,
        ("SELECT", _) if stmt.starts_with("SELECT pg_catalog.setval(") => {
            data("it sets a sequence's current value")
        }
        ("SELECT", _) if is_large_object_create(kind, stmt) => None,
        ("SELECT" | "WITH" | "VALUES" | "TABLE" | "CALL" | "EXECUTE", _) => {
            foreign("it runs a query")
        }
        ("UPDATE" | "DELETE" | "MERGE" | "TRUNCATE", _) => foreign("it changes data"),
        ("REFRESH", _) => data("it fills a materialized view"),
        (
            "BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE"
            | "PREPARE",
            _,
        ) => foreign("it has transaction control"),
        ("DO", _) => foreign("it runs a DO block"),
        ("DROP", _) => Some(drops(stmt)),
        ("CREATE" | "ALTER", "DATABASE") => Some(format!(
            "it creates or alters the database itself ({}), as pg_dump --create and pg_dumpall do; pgalign compares the schema inside one database: make it with pg_dump --schema-only, without --create",
            s()
        )),
        ("CREATE" | "ALTER", "ROLE" | "GROUP" | "TABLESPACE") => cluster(),
        ("CREATE" | "ALTER", "USER") if words.next().as_deref() != Some("MAPPING") => cluster(),
        ("ALTER", "SYSTEM") => cluster(),
        ("CREATE" | "ALTER" | "COMMENT" | "GRANT" | "REVOKE" | "SECURITY" | "SET" | "RESET", _) => {
            None
        }
        _ => foreign("it has a statement"),
    }
}

/// The word of `ALTER <word> <name> OWNER TO` for an entry type, where pgalign knows it.
fn alter_word(kind: &str) -> Option<&str> {
    match kind {
        "FOREIGN SERVER" => Some("SERVER"),
        "BLOB" | "BLOB METADATA" => Some("LARGE OBJECT"),
        k => super::OBJECT_KINDS.iter().copied().find(|o| *o == k),
    }
}

/// Why a statement that drops something cannot be in a schema dump.
pub(crate) fn drops(stmt: &str) -> String {
    format!(
        "it drops objects ({}), as a dump made with --clean does: make it again with pg_dump --schema-only, without --clean",
        summary(stmt)
    )
}

/// The entry a block came from: pgalign's OWNER entries name the object's own.
fn origin(cat: &Catalog, i: usize) -> (String, String, String, Option<u32>) {
    let b = &cat.blocks[i];
    if b.key.kind == ObjectKind::Owner {
        if let Some(p) = cat.parent_of(i) {
            let o = &cat.blocks[p];
            return (
                o.key.kind.to_string(),
                o.key.schema.to_string(),
                o.key.name.to_string(),
                o.toc_id,
            );
        }
    }
    (
        b.key.kind.to_string(),
        b.key.schema.to_string(),
        b.key.name.to_string(),
        b.toc_id,
    )
}

/// Checks the blocks that reach the plan (`blocks`: positions in `cat`) with the server's
/// grammar: every statement parses alone, is of a kind pg_dump writes in that type of entry, and
/// names nothing longer than PostgreSQL keeps. The first problem is the error, naming the entry.
pub fn validate(cat: &Catalog, blocks: impl IntoIterator<Item = usize>) -> Result<()> {
    for i in blocks {
        if i < cat.blocks.len() {
            check_block(cat, i)?;
        }
    }
    Ok(())
}

fn check_block(cat: &Catalog, i: usize) -> Result<()> {
    let b = &cat.blocks[i];
    let (kind, schema, name, toc) = origin(cat, i);
    let label = || entry_name(&kind, &schema, &name, toc);
    let n = b.stmts.len();
    for (k, stmt) in b.stmts.iter().enumerate() {
        let which = if n == 1 {
            "its statement".to_string()
        } else {
            format!("its statement {} of {n}", k + 1)
        };
        let (node, lexical) = parse::check_statement(stmt, MAX_IDENTIFIER_BYTES).map_err(|e| {
            anyhow!(
                "{}: {which} ({}) does not parse: {e}: the dump is damaged or was cut; {REMAKE}",
                label(),
                summary(stmt)
            )
        })?;
        let first = FIRST
            .iter()
            .find(|(e, _)| *e == b.key.kind.as_str() && k == 0);
        if let Some((_, kinds)) = first.filter(|(_, kinds)| !kinds.contains(&node.as_str())) {
            bail!(
                "{}: it starts with {} ({node}), not with the statement that creates a {} ({}): the dump was edited or is not pg_dump's; {REMAKE}",
                label(),
                summary(stmt),
                b.key.kind.as_str().to_lowercase(),
                kinds.join(" or ")
            );
        }
        if !allowed(b.key.kind.as_str(), &node, stmt) {
            if let Some(why) = refuse_statement(b.key.kind.as_str(), stmt) {
                bail!("{}: {why}", label());
            }
            bail!(
                "{}: {which} ({}) is a {node}, which pg_dump does not write in an entry of type {}: the dump was edited or is not pg_dump's; {REMAKE}",
                label(),
                summary(stmt),
                b.key.kind
            );
        }
        if let Some(what) = lexical {
            bail!(
                "{}: {which} ({}) holds {}: pg_dump never writes one; {REMAKE}",
                label(),
                summary(stmt),
                what
            );
        }
    }
    for setting in b.settings() {
        let ok = parse::statement_kind(setting).is_ok_and(|k| k == "VariableSetStmt");
        if !ok {
            bail!(
                "{}: the setting it is made under ({}) is not one SET statement: {REMAKE}",
                label(),
                summary(setting)
            );
        }
    }
    // The name pgalign uses for the object in DROP, COMMENT, GRANT ... comes from its
    // `ALTER <kind> <name> OWNER TO` (which is not a block of its own under --no-owner).
    if let Some(id) = b.identity() {
        // Most names are plain words and dots, which need no parse (a keyword where a name
        // goes would make a step that does not parse, which the planner reports).
        let plain = id.split('.').all(|part| {
            part.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && part
                    .bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        });
        let ok = plain
            || match alter_word(b.key.kind.as_str()) {
                Some(word) => {
                    parse::one_statement(&format!("ALTER {word} {id} OWNER TO x")).is_ok()
                }
                None => parse::is_plain_name(id),
            };
        if !ok {
            bail!(
                "{}: its ALTER ... OWNER TO names the object as `{}`, which is not a name: {REMAKE}",
                label(),
                summary(id)
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_words_refuse_what_no_schema_dump_holds() {
        let r = |s: &str| refuse_statement("TABLE", s);
        assert!(r("CREATE TABLE public.t (\n    a integer\n)").is_none());
        assert!(r("CREATE USER MAPPING FOR app SERVER s").is_none());
        assert!(r("RESET SESSION AUTHORIZATION").is_none());
        assert!(r("SELECT pg_catalog.set_config('search_path', '', false)").is_none());
        for (stmt, says) in [
            (
                "COPY public.t (a) FROM stdin",
                "table data (COPY public.t (a) FROM stdin)",
            ),
            ("insert into t values (1)", "table data"),
            (
                "SELECT pg_catalog.setval('public.s', 2, true)",
                "sequence's current value",
            ),
            ("DELETE FROM canary", "changes data (DELETE FROM canary)"),
            ("COMMIT", "transaction control"),
            ("DO $$ BEGIN END $$", "DO block"),
            ("\\connect app", "psql meta-command (\\connect app)"),
            ("CREATE DATABASE app", "--create"),
            ("CREATE ROLE app", "pg_dumpall"),
            ("ALTER ROLE app SET x = 1", "pg_dumpall"),
            ("CREATE USER app", "pg_dumpall"),
            ("DROP TABLE public.t", "--clean"),
            ("VACUUM t", "statement"),
            ("SELECT 1", "runs a query"),
            ("\"x\"", "not SQL"),
        ] {
            let why = r(stmt).unwrap_or_else(|| panic!("{stmt} passed"));
            assert!(why.contains(says), "{stmt}: {why}");
        }
        assert!(refuse_statement("BLOB", "SELECT pg_catalog.lo_create('16424')").is_none());
        assert!(r("SELECT pg_catalog.lo_create('16424')").is_some());
    }

    #[test]
    fn the_table_lists_only_known_node_kinds() {
        // A typo in the table would silently refuse every such entry: each name must be one
        // libpg_query gives for a statement of that kind.
        for (stmt, kind) in [
            ("CREATE PROCEDURAL LANGUAGE x HANDLER h", "CreatePLangStmt"),
            ("CREATE PROCEDURAL LANGUAGE x", "CreateExtensionStmt"),
            (
                "ALTER TEXT SEARCH CONFIGURATION c ADD MAPPING FOR word WITH simple",
                "AlterTSConfigurationStmt",
            ),
            (
                "ALTER TABLE ONLY t ADD CONSTRAINT c CHECK (a > 0)",
                "AlterTableStmt",
            ),
            (
                "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO r",
                "AlterDefaultPrivilegesStmt",
            ),
            ("RESET SESSION AUTHORIZATION", "VariableSetStmt"),
        ] {
            assert_eq!(parse::statement_kind(stmt).unwrap(), kind, "{stmt}");
        }
        let names = [
            "CreateAmStmt",
            "GrantStmt",
            "VariableSetStmt",
            "DefineStmt",
            "SelectStmt",
            "AlterOwnerStmt",
            "CreateCastStmt",
            "AlterTableStmt",
            "AlterDomainStmt",
            "CommentStmt",
            "CreateConversionStmt",
            "AlterDefaultPrivilegesStmt",
            "CreateDomainStmt",
            "CreateEventTrigStmt",
            "AlterEventTrigStmt",
            "CreateExtensionStmt",
            "CreateFdwStmt",
            "CreateForeignServerStmt",
            "CreateForeignTableStmt",
            "CreateFunctionStmt",
            "IndexStmt",
            "CreateTableAsStmt",
            "CreateOpClassStmt",
            "CreateOpFamilyStmt",
            "AlterOpFamilyStmt",
            "CreatePolicyStmt",
            "CreatePLangStmt",
            "CreatePublicationStmt",
            "AlterPublicationStmt",
            "RuleStmt",
            "ViewStmt",
            "CreateSchemaStmt",
            "SecLabelStmt",
            "CreateSeqStmt",
            "AlterSeqStmt",
            "CreateStatsStmt",
            "AlterStatsStmt",
            "CreateSubscriptionStmt",
            "AlterSubscriptionStmt",
            "CreateStmt",
            "AlterTSConfigurationStmt",
            "CreateTransformStmt",
            "CreateTrigStmt",
            "CompositeTypeStmt",
            "CreateEnumStmt",
            "CreateRangeStmt",
            "CreateUserMappingStmt",
        ];
        for (entry, kinds) in STATEMENTS.iter().chain(FIRST) {
            for k in *kinds {
                assert!(names.contains(k), "{entry}: {k}");
            }
        }
        // What an entry must start with, it may hold.
        for (entry, kinds) in FIRST {
            let (_, all) = STATEMENTS.iter().find(|(e, _)| e == entry).unwrap();
            assert!(kinds.iter().all(|k| all.contains(k)), "{entry}");
        }
    }

    #[test]
    fn entries_hold_only_their_own_kinds() {
        assert!(allowed("TABLE", "CreateStmt", "CREATE TABLE t ()"));
        assert!(!allowed("TABLE", "DeleteStmt", "DELETE FROM t"));
        assert!(!allowed(
            "TABLE",
            "CommentStmt",
            "COMMENT ON TABLE t IS 'x'"
        ));
        assert!(allowed(
            "MATERIALIZED VIEW",
            "CreateTableAsStmt",
            "CREATE MATERIALIZED VIEW v AS SELECT 1 WITH NO DATA"
        ));
        assert!(!allowed(
            "MATERIALIZED VIEW",
            "CreateTableAsStmt",
            "CREATE TABLE v AS SELECT 1"
        ));
        assert!(allowed(
            "ACL",
            "VariableSetStmt",
            "RESET SESSION AUTHORIZATION"
        ));
        assert!(!allowed("ACL", "VariableSetStmt", "RESET ROLE"));
        // Types pgalign does not know take definitions, never data or cluster objects.
        assert!(allowed("NEW THING", "CreateFooStmt", "CREATE FOO x"));
        assert!(!allowed(
            "NEW THING",
            "InsertStmt",
            "INSERT INTO t VALUES (1)"
        ));
        assert!(!allowed("NEW THING", "CreatedbStmt", "CREATE DATABASE d"));
        assert!(!allowed("NEW THING", "TransactionStmt", "COMMIT"));
        assert!(!allowed("NEW THING", "DoStmt", "DO $$ $$"));
    }

    fn all_blocks(body: &str, no_owner: bool) -> Result<()> {
        let text = format!("--\n-- PostgreSQL database dump\n--\n\n{body}");
        let f = super::super::Filter {
            no_owner,
            ..Default::default()
        };
        let cat = super::super::from_dump_text(&text, &f)?;
        validate(&cat, 0..cat.blocks.len())
    }

    const TABLE: &str = "--\n-- Name: t; Type: TABLE; Schema: public; Owner: x\n--\n\nCREATE TABLE public.t (\n    a integer\n);\n\n\nALTER TABLE public.t OWNER TO x;\n\n";

    /// Regressions (mutation test): what passed for a definition and made the planner write
    /// something else.
    #[test]
    fn what_pg_dump_never_writes_in_an_entry() {
        all_blocks(TABLE, false).unwrap();
        all_blocks(TABLE, true).unwrap();
        for (body, no_owner, says) in [
            // `ALTER TABLE O--NLY t ...`: valid, but the planner joins pieces on one line.
            (
                TABLE.replace("public.t (", "public.t -- x\n("),
                false,
                "a comment inside it",
            ),
            // A TABLE entry that does not create the table: its name would be read as `ONLY`.
            (
                TABLE.replace(
                    "CREATE TABLE public.t (\n    a integer\n)",
                    "ALTER TABLE ONLY public.t ADD COLUMN a integer",
                ),
                false,
                "not with the statement that creates a table",
            ),
            // The object's name comes from its owner statement, even without owners.
            (
                TABLE.replace("ALTER TABLE public.t OWNER", "ALTER TABLE ,public.t OWNER"),
                true,
                "which is not a name",
            ),
            // Regression (mutation test, strict): words and dots, but not a name.
            (
                TABLE.replace("ALTER TABLE public.t OWNER", "ALTER TABLE public.t. OWNER"),
                true,
                "which is not a name",
            ),
        ] {
            let e = all_blocks(&body, no_owner).unwrap_err().to_string();
            assert!(e.contains(says), "{says}: {e}");
        }
    }

    #[test]
    fn summaries_are_short_and_on_one_line() {
        assert_eq!(
            summary("CREATE TABLE t (\n    a integer\n)"),
            "CREATE TABLE t ( ..."
        );
        let long = "x".repeat(100);
        assert_eq!(summary(&long), format!("{} ...", "x".repeat(60)));
        assert_eq!(summary("é\rDELETE"), "éDELETE");
    }
}
