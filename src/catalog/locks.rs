//! Which relations a statement locks, and how strongly: read with the server's grammar from
//! the statement itself, by PostgreSQL's documented lock level of each form (the ALTER TABLE
//! reference's notes per subcommand, CREATE INDEX [CONCURRENTLY], CREATE TRIGGER, ...).
//! `tests/impact.rs` runs each form on a real server and compares what `pg_locks` shows.
//! The planner turns these into each step's impact; it never reads the statement itself.

use pg_query::protobuf::{AlterTableCmd, AlterTableType, ConstrType, ObjectType, RangeVar};
use pg_query::{Node, NodeEnum};
use serde::{Deserialize, Serialize};

/// A relation as (schema, name), unquoted.
pub type Rel = (String, String);

/// Table-level lock modes a migration takes, weakest first (the derived order is their
/// strength; the modes below SHARE UPDATE EXCLUSIVE do not block plain reads or writes and are
/// left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Lock {
    /// Blocks VACUUM, ANALYZE, schema changes and other SHARE UPDATE EXCLUSIVE holders; reads
    /// and writes go on.
    ShareUpdateExclusive,
    /// Blocks writes (INSERT, UPDATE, DELETE); reads go on.
    Share,
    /// Blocks writes and other SHARE ROW EXCLUSIVE holders; reads go on.
    ShareRowExclusive,
    /// Blocks everything, reads included.
    AccessExclusive,
}

impl Lock {
    pub fn name(self) -> &'static str {
        match self {
            Lock::ShareUpdateExclusive => "SHARE UPDATE EXCLUSIVE",
            Lock::Share => "SHARE",
            Lock::ShareRowExclusive => "SHARE ROW EXCLUSIVE",
            Lock::AccessExclusive => "ACCESS EXCLUSIVE",
        }
    }
    /// What waits while it is held, for people.
    pub fn blocks(self) -> &'static str {
        match self {
            Lock::ShareUpdateExclusive => "blocks other schema changes and VACUUM",
            Lock::Share | Lock::ShareRowExclusive => "blocks writes",
            Lock::AccessExclusive => "blocks reads and writes",
        }
    }
}

/// What a statement locks: a relation by name, or the table of an index named by the
/// statement (DROP INDEX names only the index: the caller knows its table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum On {
    Relation(Rel),
    TableOfIndex(Rel),
}

/// One lock a statement takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    pub on: On,
    pub lock: Lock,
}

/// Every lock the statements of `sql` take on existing relations, strongest first per relation
/// (a relation appears once). Empty when nothing is locked that readers or writers would wait
/// for, or when the text does not parse.
pub fn taken_by(sql: &str) -> Vec<Taken> {
    let Ok(parsed) = pg_query::parse(sql, 0) else {
        return Vec::new();
    };
    let mut out: Vec<Taken> = Vec::new();
    for raw in &parsed.protobuf.stmts {
        let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
            continue;
        };
        statement(
            node,
            &mut |on, lock| match out.iter_mut().find(|t| t.on == on) {
                Some(t) => t.lock = t.lock.max(lock),
                None => out.push(Taken { on, lock }),
            },
        );
    }
    out
}

/// The table a `CREATE INDEX` statement builds on.
pub fn index_table(sql: &str) -> Option<Rel> {
    let parsed = pg_query::parse(sql, 0).ok()?;
    let [stmt] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    match stmt.stmt.as_ref()?.node.as_ref()? {
        NodeEnum::IndexStmt(ix) => ix.relation.as_ref().map(rel),
        _ => None,
    }
}

fn rel(r: &RangeVar) -> Rel {
    let schema = if r.schemaname.is_empty() {
        "public".to_string()
    } else {
        r.schemaname.clone()
    };
    (schema, r.relname.clone())
}

/// A qualified name from a list of `String` nodes: `[schema, name]` or `[name]`.
fn name_of(nodes: &[Node]) -> Option<Rel> {
    let parts: Vec<&str> = nodes
        .iter()
        .map(|n| match n.node.as_ref()? {
            NodeEnum::String(s) => Some(s.sval.as_str()),
            _ => None,
        })
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [name] => Some(("public".into(), (*name).into())),
        [schema, name] => Some(((*schema).into(), (*name).into())),
        [_db, schema, name] => Some(((*schema).into(), (*name).into())),
        _ => None,
    }
}

fn list_items(n: &Node) -> Option<&[Node]> {
    match n.node.as_ref()? {
        NodeEnum::List(l) => Some(&l.items),
        _ => None,
    }
}

fn statement(node: &NodeEnum, take: &mut impl FnMut(On, Lock)) {
    let mut on = |r: &RangeVar, lock| take(On::Relation(rel(r)), lock);
    match node {
        NodeEnum::AlterTableStmt(a) => {
            let Some(r) = a.relation.as_ref() else { return };
            let index = a.objtype == ObjectType::ObjectIndex as i32;
            for cmd in &a.cmds {
                let Some(NodeEnum::AlterTableCmd(cmd)) = cmd.node.as_ref() else {
                    continue;
                };
                for (target, lock) in alter_cmd(cmd, index) {
                    match target {
                        Some(other) => take(On::Relation(other), lock),
                        None => take(On::Relation(rel(r)), lock),
                    }
                }
            }
        }
        NodeEnum::IndexStmt(ix) => {
            // CREATE INDEX takes SHARE (writes wait for the whole build); CONCURRENTLY takes
            // SHARE UPDATE EXCLUSIVE.
            if let Some(r) = ix.relation.as_ref() {
                on(
                    r,
                    if ix.concurrent {
                        Lock::ShareUpdateExclusive
                    } else {
                        Lock::Share
                    },
                );
            }
        }
        NodeEnum::CreateStmt(c) => {
            // A new partition takes ACCESS EXCLUSIVE on its parent; a new inheritance child,
            // SHARE UPDATE EXCLUSIVE; a foreign key to an existing table, SHARE ROW EXCLUSIVE
            // on that table.
            for parent in &c.inh_relations {
                if let Some(NodeEnum::RangeVar(p)) = parent.node.as_ref() {
                    on(
                        p,
                        if c.partbound.is_some() {
                            Lock::AccessExclusive
                        } else {
                            Lock::ShareUpdateExclusive
                        },
                    );
                }
            }
            for elt in c.table_elts.iter().chain(&c.constraints) {
                for r in foreign_keys_of(elt) {
                    on(r, Lock::ShareRowExclusive);
                }
            }
        }
        NodeEnum::DropStmt(d) => drop_stmt(d, take),
        NodeEnum::CreateTrigStmt(t) => {
            if let Some(r) = t.relation.as_ref() {
                on(r, Lock::ShareRowExclusive);
            }
        }
        NodeEnum::CreatePolicyStmt(p) => {
            if let Some(r) = p.table.as_ref() {
                on(r, Lock::AccessExclusive);
            }
        }
        NodeEnum::AlterPolicyStmt(p) => {
            if let Some(r) = p.table.as_ref() {
                on(r, Lock::AccessExclusive);
            }
        }
        NodeEnum::RuleStmt(r) => {
            if let Some(r) = r.relation.as_ref() {
                on(r, Lock::AccessExclusive);
            }
        }
        NodeEnum::ViewStmt(v) if v.replace => {
            if let Some(r) = v.view.as_ref() {
                on(r, Lock::AccessExclusive);
            }
        }
        NodeEnum::RenameStmt(rn) => {
            // Renaming an index takes SHARE UPDATE EXCLUSIVE (PostgreSQL 12 and later); a
            // table, view or column, ACCESS EXCLUSIVE.
            if let Some(r) = rn.relation.as_ref() {
                let lock = if rn.rename_type == ObjectType::ObjectIndex as i32 {
                    Lock::ShareUpdateExclusive
                } else {
                    Lock::AccessExclusive
                };
                on(r, lock);
            }
        }
        NodeEnum::AlterObjectSchemaStmt(s) => {
            if let Some(r) = s.relation.as_ref() {
                on(r, Lock::AccessExclusive);
            }
        }
        NodeEnum::CommentStmt(c) => {
            // COMMENT ON TABLE / COLUMN takes SHARE UPDATE EXCLUSIVE on the table.
            let table = c.objtype == ObjectType::ObjectTable as i32;
            let column = c.objtype == ObjectType::ObjectColumn as i32;
            if table || column {
                let items = c.object.as_deref().and_then(list_items).unwrap_or(&[]);
                let items = if column && !items.is_empty() {
                    &items[..items.len() - 1]
                } else {
                    items
                };
                if let Some(r) = name_of(items) {
                    take(On::Relation(r), Lock::ShareUpdateExclusive);
                }
            }
        }
        NodeEnum::CreateStatsStmt(s) => {
            for r in &s.relations {
                if let Some(NodeEnum::RangeVar(r)) = r.node.as_ref() {
                    on(r, Lock::ShareUpdateExclusive);
                }
            }
        }
        _ => {}
    }
}

/// The tables a column or table constraint's FOREIGN KEY references.
fn foreign_keys_of(elt: &Node) -> Vec<&RangeVar> {
    let constraints: Vec<&Node> = match elt.node.as_ref() {
        Some(NodeEnum::ColumnDef(c)) => c.constraints.iter().collect(),
        Some(NodeEnum::Constraint(_)) => vec![elt],
        _ => Vec::new(),
    };
    constraints
        .into_iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(NodeEnum::Constraint(c)) if c.contype == ConstrType::ConstrForeign as i32 => {
                c.pktable.as_ref()
            }
            _ => None,
        })
        .collect()
}

/// One ALTER TABLE subcommand: its lock on the altered relation (None) or on another.
fn alter_cmd(cmd: &AlterTableCmd, index: bool) -> Vec<(Option<Rel>, Lock)> {
    use AlterTableType as T;
    let Ok(kind) = AlterTableType::try_from(cmd.subtype) else {
        return vec![(None, Lock::AccessExclusive)];
    };
    let own = |lock| vec![(None, lock)];
    match kind {
        T::AtSetStatistics
        | T::AtSetOptions
        | T::AtResetOptions
        | T::AtClusterOn
        | T::AtDropCluster
        | T::AtValidateConstraint
        | T::AtDetachPartitionFinalize => own(Lock::ShareUpdateExclusive),
        T::AtSetRelOptions | T::AtResetRelOptions => own(rel_options_lock(cmd)),
        T::AtEnableTrig
        | T::AtEnableAlwaysTrig
        | T::AtEnableReplicaTrig
        | T::AtDisableTrig
        | T::AtEnableTrigAll
        | T::AtDisableTrigAll
        | T::AtEnableTrigUser
        | T::AtDisableTrigUser
        | T::AtAlterConstraint => own(Lock::ShareRowExclusive),
        T::AtAddConstraint => {
            let c = match cmd.def.as_ref().and_then(|d| d.node.as_ref()) {
                Some(NodeEnum::Constraint(c)) => c,
                _ => return own(Lock::AccessExclusive),
            };
            if c.contype == ConstrType::ConstrForeign as i32 {
                // Both tables: SHARE ROW EXCLUSIVE.
                let mut v = own(Lock::ShareRowExclusive);
                if let Some(r) = c.pktable.as_ref() {
                    v.push((Some(rel(r)), Lock::ShareRowExclusive));
                }
                v
            } else {
                own(Lock::AccessExclusive)
            }
        }
        T::AtAttachPartition | T::AtDetachPartition => {
            let Some(NodeEnum::PartitionCmd(p)) = cmd.def.as_ref().and_then(|d| d.node.as_ref())
            else {
                return own(Lock::AccessExclusive);
            };
            if index {
                // ALTER INDEX ... ATTACH PARTITION: SHARE UPDATE EXCLUSIVE on both indexes,
                // nothing a reader or writer of their tables waits for.
                return Vec::new();
            }
            let child = p.name.as_ref().map(rel);
            let attach = kind == T::AtAttachPartition;
            // ATTACH: SHARE UPDATE EXCLUSIVE on the parent, ACCESS EXCLUSIVE on the partition
            // (it is scanned for rows outside its bound unless a CHECK proves them in).
            // DETACH: ACCESS EXCLUSIVE on both; DETACH CONCURRENTLY: SHARE UPDATE EXCLUSIVE.
            let (parent, on_child) = if attach {
                (Lock::ShareUpdateExclusive, Lock::AccessExclusive)
            } else if p.concurrent {
                (Lock::ShareUpdateExclusive, Lock::ShareUpdateExclusive)
            } else {
                (Lock::AccessExclusive, Lock::AccessExclusive)
            };
            let mut v = own(parent);
            if let Some(c) = child {
                v.push((Some(c), on_child));
            }
            v
        }
        T::AtAddInherit | T::AtDropInherit => {
            // The child: ACCESS EXCLUSIVE; the parent: SHARE UPDATE EXCLUSIVE.
            let mut v = own(Lock::AccessExclusive);
            if let Some(NodeEnum::RangeVar(p)) = cmd.def.as_ref().and_then(|d| d.node.as_ref()) {
                v.push((Some(rel(p)), Lock::ShareUpdateExclusive));
            }
            v
        }
        _ if index => own(Lock::ShareUpdateExclusive),
        _ => own(Lock::AccessExclusive),
    }
}

/// `ALTER TABLE ... SET (...)`: SHARE UPDATE EXCLUSIVE for the parameters that only steer
/// autovacuum, fillfactor and planning; ACCESS EXCLUSIVE for any other.
fn rel_options_lock(cmd: &AlterTableCmd) -> Lock {
    let Some(items) = cmd.def.as_deref().and_then(list_items) else {
        return Lock::AccessExclusive;
    };
    let light = items.iter().all(|i| match i.node.as_ref() {
        Some(NodeEnum::DefElem(d)) => {
            let name = d.defname.as_str();
            name.starts_with("autovacuum_")
                || name.starts_with("toast_tuple_target")
                || matches!(
                    name,
                    "fillfactor"
                        | "parallel_workers"
                        | "seq_page_cost"
                        | "random_page_cost"
                        | "n_distinct"
                        | "n_distinct_inherited"
                        | "vacuum_truncate"
                        | "vacuum_index_cleanup"
                        | "log_autovacuum_min_duration"
                        | "user_catalog_table"
                )
        }
        _ => false,
    });
    if light {
        Lock::ShareUpdateExclusive
    } else {
        Lock::AccessExclusive
    }
}

fn drop_stmt(d: &pg_query::protobuf::DropStmt, take: &mut impl FnMut(On, Lock)) {
    let Ok(kind) = ObjectType::try_from(d.remove_type) else {
        return;
    };
    for obj in &d.objects {
        let Some(items) = list_items(obj) else {
            continue;
        };
        match kind {
            ObjectType::ObjectTable
            | ObjectType::ObjectView
            | ObjectType::ObjectMatview
            | ObjectType::ObjectForeignTable => {
                if let Some(r) = name_of(items) {
                    take(On::Relation(r), Lock::AccessExclusive);
                }
            }
            ObjectType::ObjectIndex => {
                // DROP INDEX takes ACCESS EXCLUSIVE on the index's table; CONCURRENTLY,
                // SHARE UPDATE EXCLUSIVE.
                if let Some(r) = name_of(items) {
                    let lock = if d.concurrent {
                        Lock::ShareUpdateExclusive
                    } else {
                        Lock::AccessExclusive
                    };
                    take(On::TableOfIndex(r), lock);
                }
            }
            ObjectType::ObjectTrigger | ObjectType::ObjectPolicy | ObjectType::ObjectRule => {
                // `[schema, table, name]`: the table is locked ACCESS EXCLUSIVE.
                if let Some((_, table)) = items.split_last() {
                    if let Some(r) = name_of(table) {
                        take(On::Relation(r), Lock::AccessExclusive);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str, n: &str) -> On {
        On::Relation((s.into(), n.into()))
    }

    fn one(sql: &str) -> Vec<(On, Lock)> {
        taken_by(sql).into_iter().map(|t| (t.on, t.lock)).collect()
    }

    #[test]
    fn alter_table_forms() {
        use Lock::*;
        let t = || r("public", "t");
        assert_eq!(
            one("ALTER TABLE public.t ADD COLUMN x integer;"),
            [(t(), AccessExclusive)]
        );
        assert_eq!(
            one("ALTER TABLE ONLY public.t ALTER COLUMN x SET STATISTICS 100;"),
            [(t(), ShareUpdateExclusive)]
        );
        assert_eq!(
            one("ALTER TABLE public.t VALIDATE CONSTRAINT c;"),
            [(t(), ShareUpdateExclusive)]
        );
        assert_eq!(
            one("ALTER TABLE ONLY public.t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES app.p(id);"),
            [(t(), ShareRowExclusive), (r("app", "p"), ShareRowExclusive)]
        );
        assert_eq!(
            one("ALTER TABLE ONLY public.t SET (fillfactor='70', autovacuum_enabled='false');"),
            [(t(), ShareUpdateExclusive)]
        );
        assert_eq!(
            one("ALTER TABLE ONLY public.t SET (fillfactor='70', parallel_workers='2', toast.autovacuum_enabled='false');"),
            [(t(), ShareUpdateExclusive)]
        );
        assert_eq!(
            one("ALTER TABLE ONLY public.p ATTACH PARTITION public.c FOR VALUES IN (1);"),
            [
                (r("public", "p"), ShareUpdateExclusive),
                (r("public", "c"), AccessExclusive)
            ]
        );
        // Two statements on one table: the strongest.
        assert_eq!(
            one("ALTER TABLE public.t VALIDATE CONSTRAINT c;\nALTER TABLE public.t DROP COLUMN x;"),
            [(t(), AccessExclusive)]
        );
    }

    #[test]
    fn other_statements() {
        use Lock::*;
        assert_eq!(
            one("CREATE INDEX CONCURRENTLY i ON public.t USING btree (a);"),
            [(r("public", "t"), ShareUpdateExclusive)]
        );
        assert_eq!(
            one("CREATE UNIQUE INDEX i ON public.t USING btree (a);"),
            [(r("public", "t"), Share)]
        );
        assert_eq!(
            one("DROP INDEX public.i;"),
            [(
                On::TableOfIndex(("public".into(), "i".into())),
                AccessExclusive
            )]
        );
        assert_eq!(
            one("DROP TRIGGER trg ON app.t;"),
            [(r("app", "t"), AccessExclusive)]
        );
        assert_eq!(
            one("CREATE TABLE public.c PARTITION OF public.p FOR VALUES IN (1);"),
            [(r("public", "p"), AccessExclusive)]
        );
        assert_eq!(
            one("CREATE TABLE public.n (id integer REFERENCES public.p(id), b integer, FOREIGN KEY (b) REFERENCES app.q(id));"),
            [(r("public", "p"), ShareRowExclusive), (r("app", "q"), ShareRowExclusive)]
        );
        assert_eq!(
            one("COMMENT ON COLUMN public.t.a IS 'x';"),
            [(r("public", "t"), ShareUpdateExclusive)]
        );
        assert!(one("CREATE TABLE public.n (id integer);").is_empty());
        assert!(
            one("CREATE FUNCTION public.f() RETURNS integer LANGUAGE sql AS 'SELECT 1';")
                .is_empty()
        );
        assert!(one("not sql at all").is_empty());
    }
}
