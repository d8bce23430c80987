//! What a new constraint or index asks of the rows already in its table, read with the server's
//! grammar from the statement pg_dump wrote for it: the columns it keys on, and for a foreign
//! key the table and columns it references. Preflight counts the rows that break it; the
//! planner only hands these facts over, it never reads the statement itself.

use pg_query::protobuf::{ConstrType, Constraint, IndexStmt, RangeVar};
use pg_query::{Node, NodeEnum};

/// A table as (schema, name), unquoted.
pub type Rel = (String, String);

/// What existing rows must satisfy for the statement to succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowRule {
    /// PRIMARY KEY, UNIQUE, or a unique index over plain columns.
    Unique {
        table: Rel,
        columns: Vec<String>,
        primary_key: bool,
        /// `NULLS NOT DISTINCT`: rows with NULLs in the key are equal too.
        nulls_not_distinct: bool,
    },
    /// FOREIGN KEY ... REFERENCES.
    ForeignKey {
        table: Rel,
        columns: Vec<String>,
        references: Rel,
        ref_columns: Vec<String>,
        /// `MATCH FULL`: a key NULL in some columns but not all is refused too.
        match_full: bool,
    },
    /// Nothing of existing rows: a plain index, a constraint added NOT VALID, a partitioned
    /// table's parent index made `ON ONLY` (its partitions' own indexes are built, and checked,
    /// in steps of their own), a constraint over an index that exists.
    Nothing,
    /// Something a column list cannot say (an expression or partial index, an exclusion
    /// constraint): why it is not checked. Table named when it can be read.
    NotReadable {
        table: Option<Rel>,
        why: &'static str,
    },
}

/// The rule of an `ALTER TABLE ... ADD CONSTRAINT` (PRIMARY KEY, UNIQUE, FOREIGN KEY, EXCLUDE)
/// or a `CREATE [UNIQUE] INDEX` statement; None for any other statement, or one that does not
/// parse.
pub fn row_rule(sql: &str) -> Option<RowRule> {
    let parsed = pg_query::parse(sql, 0).ok()?;
    let [stmt] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    match stmt.stmt.as_ref()?.node.as_ref()? {
        NodeEnum::IndexStmt(ix) => index_rule(ix),
        NodeEnum::AlterTableStmt(alter) => {
            let [cmd] = alter.cmds.as_slice() else {
                return None;
            };
            let Some(NodeEnum::AlterTableCmd(cmd)) = cmd.node.as_ref() else {
                return None;
            };
            let Some(NodeEnum::Constraint(c)) = cmd.def.as_ref()?.node.as_ref() else {
                return None;
            };
            constraint_rule(rel(alter.relation.as_ref()?), c)
        }
        _ => None,
    }
}

fn rel(r: &RangeVar) -> Rel {
    (r.schemaname.clone(), r.relname.clone())
}

/// Names of a list of `String` nodes (a constraint's columns); None when one is something else.
fn names(nodes: &[Node]) -> Option<Vec<String>> {
    nodes
        .iter()
        .map(|n| match n.node.as_ref()? {
            NodeEnum::String(s) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

fn index_rule(ix: &IndexStmt) -> Option<RowRule> {
    let r = ix.relation.as_ref()?;
    if !ix.unique || !r.inh {
        return Some(RowRule::Nothing);
    }
    let table = rel(r);
    let not_readable = |why| {
        Some(RowRule::NotReadable {
            table: Some(table.clone()),
            why,
        })
    };
    if ix.where_clause.is_some() {
        return not_readable("a partial unique index (WHERE ...): its rows are not counted");
    }
    let mut columns = Vec::new();
    for p in &ix.index_params {
        match p.node.as_ref()? {
            NodeEnum::IndexElem(e) if e.expr.is_none() && !e.name.is_empty() => {
                columns.push(e.name.clone())
            }
            _ => return not_readable("a unique index on an expression: its rows are not counted"),
        }
    }
    Some(RowRule::Unique {
        table,
        columns,
        primary_key: false,
        nulls_not_distinct: ix.nulls_not_distinct,
    })
}

fn constraint_rule(table: Rel, c: &Constraint) -> Option<RowRule> {
    let kind = ConstrType::try_from(c.contype).ok()?;
    if c.skip_validation {
        // NOT VALID: existing rows are not checked when it is added.
        return Some(RowRule::Nothing);
    }
    match kind {
        ConstrType::ConstrPrimary | ConstrType::ConstrUnique => {
            if !c.indexname.is_empty() {
                return Some(RowRule::Nothing);
            }
            Some(RowRule::Unique {
                table,
                columns: names(&c.keys)?,
                primary_key: kind == ConstrType::ConstrPrimary,
                nulls_not_distinct: c.nulls_not_distinct,
            })
        }
        ConstrType::ConstrForeign => {
            let columns = names(&c.fk_attrs)?;
            let ref_columns = names(&c.pk_attrs)?;
            if ref_columns.len() != columns.len() || c.fk_with_period {
                return Some(RowRule::NotReadable {
                    table: Some(table),
                    why: "a foreign key without its referenced columns spelled out, or with PERIOD: its rows are not counted",
                });
            }
            Some(RowRule::ForeignKey {
                table,
                columns,
                references: rel(c.pktable.as_ref()?),
                ref_columns,
                match_full: c.fk_matchtype == "f",
            })
        }
        ConstrType::ConstrExclusion => Some(RowRule::NotReadable {
            table: Some(table),
            why: "an exclusion constraint: its rows are not counted",
        }),
        _ => None,
    }
}

/// Whether `text` is one type name and nothing else (`integer`, `character varying(10)`,
/// `public."Mood"[]`): what preflight may write after `::`. Read as the type of a cast, by the
/// server's grammar.
pub fn is_type_name(text: &str) -> bool {
    // What could end the cast where it is written (a comment, a line break, a second
    // statement) is refused outright, even inside a quoted name: such a type is not checked.
    if text.is_empty()
        || text.contains(['\0', ';', '\n', '\r'])
        || text.contains("--")
        || text.contains("/*")
    {
        return false;
    }
    let Ok(parsed) = pg_query::parse(&format!("SELECT NULL::{text}"), 0) else {
        return false;
    };
    let [stmt] = parsed.protobuf.stmts.as_slice() else {
        return false;
    };
    let Some(NodeEnum::SelectStmt(s)) = stmt.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
        return false;
    };
    let [target] = s.target_list.as_slice() else {
        return false;
    };
    let Some(NodeEnum::ResTarget(t)) = target.node.as_ref() else {
        return false;
    };
    let Some(NodeEnum::TypeCast(cast)) = t.val.as_ref().and_then(|v| v.node.as_ref()) else {
        return false;
    };
    let plain_null = matches!(
        cast.arg.as_ref().and_then(|a| a.node.as_ref()),
        Some(NodeEnum::AConst(c)) if c.isnull
    );
    plain_null
        && s.from_clause.is_empty()
        && s.where_clause.is_none()
        && s.op == pg_query::protobuf::SetOperation::SetopNone as i32
        && s.larg.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str, n: &str) -> Rel {
        (s.to_string(), n.to_string())
    }

    #[test]
    fn constraints_read() {
        assert_eq!(
            row_rule("ALTER TABLE ONLY app.\"T t\"\n    ADD CONSTRAINT t_pkey PRIMARY KEY (id, \"Odd\"\"col\")"),
            Some(RowRule::Unique {
                table: r("app", "T t"),
                columns: vec!["id".into(), "Odd\"col".into()],
                primary_key: true,
                nulls_not_distinct: false,
            })
        );
        assert_eq!(
            row_rule("ALTER TABLE ONLY public.t\n    ADD CONSTRAINT t_e_key UNIQUE NULLS NOT DISTINCT (email) INCLUDE (x)"),
            Some(RowRule::Unique {
                table: r("public", "t"),
                columns: vec!["email".into()],
                primary_key: false,
                nulls_not_distinct: true,
            })
        );
        assert_eq!(
            row_rule("ALTER TABLE ONLY public.c\n    ADD CONSTRAINT c_fk FOREIGN KEY (a, b) REFERENCES public.p(x, y) MATCH FULL ON DELETE CASCADE"),
            Some(RowRule::ForeignKey {
                table: r("public", "c"),
                columns: vec!["a".into(), "b".into()],
                references: r("public", "p"),
                ref_columns: vec!["x".into(), "y".into()],
                match_full: true,
            })
        );
        assert_eq!(
            row_rule("ALTER TABLE public.c\n    ADD CONSTRAINT c_fk FOREIGN KEY (a) REFERENCES public.p(x) NOT VALID"),
            Some(RowRule::Nothing)
        );
        assert!(matches!(
            row_rule(
                "ALTER TABLE ONLY public.t\n    ADD CONSTRAINT ex EXCLUDE USING gist (r WITH &&)"
            ),
            Some(RowRule::NotReadable { .. })
        ));
        assert_eq!(
            row_rule("ALTER TABLE ONLY public.t\n    ADD CONSTRAINT c CHECK ((x > 0))"),
            None
        );
    }

    #[test]
    fn indexes_read() {
        assert_eq!(
            row_rule("CREATE UNIQUE INDEX i ON public.t USING btree (a, b DESC) INCLUDE (c)"),
            Some(RowRule::Unique {
                table: r("public", "t"),
                columns: vec!["a".into(), "b".into()],
                primary_key: false,
                nulls_not_distinct: false,
            })
        );
        assert_eq!(
            row_rule("CREATE INDEX i ON public.t USING btree (a)"),
            Some(RowRule::Nothing)
        );
        assert_eq!(
            row_rule("CREATE UNIQUE INDEX i ON ONLY public.p USING btree (a)"),
            Some(RowRule::Nothing)
        );
        for sql in [
            "CREATE UNIQUE INDEX i ON public.t USING btree (lower(email))",
            "CREATE UNIQUE INDEX i ON public.t USING btree (a) WHERE (b IS NULL)",
        ] {
            assert!(
                matches!(
                    row_rule(sql),
                    Some(RowRule::NotReadable { table: Some(_), .. })
                ),
                "{sql}"
            );
        }
        assert_eq!(
            row_rule("CREATE UNIQUE INDEX i ON public.t (a); SELECT 1"),
            None
        );
    }

    #[test]
    fn type_names() {
        for ok in [
            "integer",
            "character varying(10)",
            "public.\"Mood\"[]",
            "timestamp(3) with time zone",
            "numeric(10,2)",
        ] {
            assert!(is_type_name(ok), "{ok}");
        }
        for bad in [
            "integer; DROP TABLE t",
            "integer FROM pg_class",
            "integer, 1",
            "integer)::text; --",
            "integer -- x",
            "int WHERE true",
            "",
            "integer UNION SELECT 1",
        ] {
            assert!(!is_type_name(bad), "{bad}");
        }
    }
}
