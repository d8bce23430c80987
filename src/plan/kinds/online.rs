//! Low-lock forms of steps on tables that already exist (`--online`): concurrent index builds,
//! constraints added NOT VALID and validated in a transaction of their own, NOT NULL through a
//! validated CHECK. Each rewrite returns `None` when the statement is not in a shape it knows,
//! and the caller keeps the plain (locking) form.

use crate::catalog::parse::quote_ident;
use crate::catalog::read::{self};
use crate::catalog::{Block, ObjectKind, TableDef};
use crate::plan::preflight::Check;
use crate::plan::{Ctx, Hazard, Op, Step};

/// `CREATE [UNIQUE] INDEX name ON ...` -> `CREATE [UNIQUE] INDEX CONCURRENTLY name ON ...`.
/// Not for `ON ONLY` (a partitioned table's parent index, which cannot be built concurrently).
pub fn concurrent_index(sql: &str) -> Option<String> {
    let c = read::create_index(sql)?;
    if c.has_only || c.keyword_at > 2 {
        return None;
    }
    Some(format!("{} CONCURRENTLY{}", c.head, c.rest))
}

/// The index a `CREATE INDEX` statement names, schema-qualified as SQL.
pub fn index_name(sql: &str, schema_sql: &str) -> Option<String> {
    let name = read::create_index(sql)?.name?;
    Some(format!("{schema_sql}.{name}"))
}

/// A FOREIGN KEY or CHECK constraint added NOT VALID, and the statement that validates it.
pub fn not_valid_constraint(sql: &str) -> Option<(String, String)> {
    let read::AddConstraint {
        rel,
        name,
        rest,
        not_valid,
    } = read::add_constraint(sql)?;
    let upper = rest.to_ascii_uppercase();
    if !(upper.starts_with("FOREIGN KEY") || upper.starts_with("CHECK")) || not_valid {
        return None;
    }
    Some((
        format!("{} NOT VALID;\n", sql.trim_end_matches(';')),
        format!("ALTER TABLE {rel} VALIDATE CONSTRAINT {name};\n"),
    ))
}

/// `ADD CONSTRAINT n UNIQUE (a) [INCLUDE (b)]` (or PRIMARY KEY) built as a concurrent unique
/// index first, then attached: returns (index build, attach).
pub fn unique_via_index(sql: &str) -> Option<(String, String)> {
    let read::AddConstraint {
        rel, name, rest, ..
    } = read::add_constraint(sql)?;
    let upper = rest.to_ascii_uppercase();
    let (kind, cols) = if let Some(c) = rest.strip_prefix("UNIQUE ") {
        ("UNIQUE", c)
    } else if let Some(c) = rest.strip_prefix("PRIMARY KEY ") {
        ("PRIMARY KEY", c)
    } else {
        return None;
    };
    // Only the plain shapes: a column list, optionally INCLUDE; nothing deferrable, no options.
    if upper.contains("DEFERRABLE")
        || upper.contains(" WITH (")
        || upper.contains("USING INDEX")
        || upper.contains("NULLS NOT DISTINCT")
    {
        return None;
    }
    if !cols.starts_with('(') {
        return None;
    }
    Some((
        format!("CREATE UNIQUE INDEX CONCURRENTLY {name} ON {rel} USING btree {cols};\n"),
        format!("ALTER TABLE {rel} ADD CONSTRAINT {name} {kind} USING INDEX {name};\n"),
    ))
}

/// Why an index or constraint on `table` (TARGET's definition of the table it is built on) keeps
/// its plain form when that table is partitioned: PostgreSQL builds no index CONCURRENTLY on a
/// partitioned table and (before 18) adds no NOT VALID foreign key to one. (A CHECK constraint
/// can be NOT VALID there: it keeps its online form.)
pub(super) fn not_on_partitioned_table(
    kind: &ObjectKind,
    table: Option<&TableDef>,
) -> Option<&'static str> {
    if table.is_none_or(|t| t.partition_by.is_none()) {
        return None;
    }
    match kind {
        ObjectKind::Index | ObjectKind::Constraint => Some(
            "; on a partitioned table, which has no CONCURRENTLY form: created ON ONLY as pg_dump writes it, and each partition's index is built in a step of its own (CONCURRENTLY) and attached (--online)",
        ),
        ObjectKind::FkConstraint => Some(
            "; on a partitioned table, which takes no NOT VALID foreign key: added and validated in one step (--online)",
        ),
        _ => None,
    }
}

/// `--online` forms of building an index or adding a constraint on a table that exists.
/// `checks` (what the rows must satisfy) go on the step that scans them: the concurrent build,
/// or the VALIDATE.
pub(super) fn create_online(
    ctx: &Ctx,
    s: &Block,
    reason: &str,
    checks: &[Check],
) -> Option<Vec<Step>> {
    let first = s.stmts.first()?;
    if s.stmts.len() != 1 {
        return None;
    }
    let schema = quote_ident(&s.key.schema);
    match &s.key.kind {
        ObjectKind::Index => {
            let sql = concurrent_index(first)?;
            let mut st = ctx.step(
                s,
                Op::Create,
                &format!("{reason}; built CONCURRENTLY (--online)"),
                format!("{sql};\n"),
                vec![],
            );
            st.transactional = false;
            st.replaces_invalid_index = index_name(first, &schema);
            st.preflight = checks.to_vec();
            Some(vec![st])
        }
        ObjectKind::FkConstraint | ObjectKind::CheckConstraint => {
            let (add, validate) = not_valid_constraint(first)?;
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
            v.preflight = checks.to_vec();
            Some(vec![a, v])
        }
        ObjectKind::Constraint => {
            let (build, attach) = unique_via_index(first)?;
            let mut b = ctx.step(
                s,
                Op::Create,
                &format!("{reason}; its index built CONCURRENTLY first (--online)"),
                build,
                vec![],
            );
            b.transactional = false;
            b.replaces_invalid_index = index_name(&b.sql, &schema);
            b.preflight = checks.to_vec();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites() {
        assert_eq!(
            concurrent_index("CREATE UNIQUE INDEX i ON public.t USING btree (a)").unwrap(),
            "CREATE UNIQUE INDEX CONCURRENTLY i ON public.t USING btree (a)"
        );
        assert!(concurrent_index("CREATE INDEX i ON ONLY public.p USING btree (a)").is_none());
        assert_eq!(
            index_name("CREATE INDEX \"I x\" ON public.t USING btree (a)", "public").unwrap(),
            "public.\"I x\""
        );
        let (a, v) = not_valid_constraint(
            "ALTER TABLE ONLY public.c\n    ADD CONSTRAINT c_fk FOREIGN KEY (p) REFERENCES public.p(id)",
        )
        .unwrap();
        assert!(a.ends_with("REFERENCES public.p(id) NOT VALID;\n"), "{a}");
        assert_eq!(v, "ALTER TABLE public.c VALIDATE CONSTRAINT c_fk;\n");
        let (i, at) = unique_via_index(
            "ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_a_key UNIQUE (a) INCLUDE (b)",
        )
        .unwrap();
        assert_eq!(
            i,
            "CREATE UNIQUE INDEX CONCURRENTLY t_a_key ON public.t USING btree (a) INCLUDE (b);\n"
        );
        assert_eq!(
            at,
            "ALTER TABLE public.t ADD CONSTRAINT t_a_key UNIQUE USING INDEX t_a_key;\n"
        );
        assert!(unique_via_index(
            "ALTER TABLE ONLY public.t\n    ADD CONSTRAINT k UNIQUE (a) DEFERRABLE"
        )
        .is_none());
    }
}
