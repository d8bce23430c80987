//! What differs between a table's two definitions, as data, before any SQL is written (as
//! stripe's pg-schema-diff builds a table diff, then has each part written by its own
//! generator). Worked out from the two `TableDef`s alone: what only the catalogs know (a
//! partition's parent, the parents' columns) is the SQL writers' business.

use crate::catalog::parse::{ColumnDef, TableConstraint};
use crate::catalog::TableDef;
use std::collections::BTreeMap;

/// What differs between TARGET's definition of a table (`old`) and SOURCE's (`new`).
pub(super) struct TableDiff<'a> {
    /// `CREATE [UNLOGGED] TABLE name`, when it differs.
    pub head: Option<HeadChange>,
    /// The clauses after the element list.
    pub clauses: Clauses<'a>,
    pub columns: ColumnsDiff<'a>,
    /// Statements of the table's entry after its CREATE TABLE (SET STATISTICS, REPLICA
    /// IDENTITY, ...) that TARGET has and SOURCE lacks, in TARGET's order.
    pub settings_dropped: Vec<&'a str>,
    /// Those SOURCE has and TARGET lacks, in SOURCE's order.
    pub settings_added: Vec<&'a str>,
}

pub(super) enum HeadChange {
    /// Only UNLOGGED differs: SOURCE's table is unlogged (or logged).
    Persistence { unlogged: bool },
    /// Another kind of table.
    Kind,
}

pub(super) enum Clauses<'a> {
    /// Partitioning and the rest of the tail are equal: storage parameters and parents, which
    /// change in place, may differ.
    Same {
        storage: Option<Storage<'a>>,
        parents: Option<Parents<'a>>,
    },
    /// The partitioning differs, and nothing else but storage parameters.
    Partitioning,
    /// Other clauses differ (a foreign table's server or options, the parents along with the
    /// partitioning).
    Other,
}

/// Storage parameters, as (name, value) in the dump's order.
pub(super) struct Storage<'a> {
    pub old: &'a [(String, String)],
    pub new: &'a [(String, String)],
}

/// Inheritance parents, as (schema, name).
pub(super) struct Parents<'a> {
    pub old: &'a [(String, String)],
    pub new: &'a [(String, String)],
    /// SOURCE's that TARGET lacks, in SOURCE's order.
    pub added: Vec<&'a (String, String)>,
    /// TARGET's that SOURCE lacks, in TARGET's order.
    pub removed: Vec<&'a (String, String)>,
    /// SOURCE's that TARGET has too, in SOURCE's order.
    pub kept: Vec<&'a (String, String)>,
}

/// Columns and inline CHECK constraints.
pub(super) struct ColumnsDiff<'a> {
    /// TARGET's CHECK constraints that SOURCE lacks or defines otherwise, in TARGET's order.
    pub checks_dropped: Vec<CheckChange<'a>>,
    /// TARGET's columns that SOURCE lacks, in TARGET's order.
    pub dropped: Vec<&'a ColumnDef>,
    /// Columns of both whose definitions differ, in SOURCE's order.
    pub changed: Vec<ColumnChange<'a>>,
    /// SOURCE's columns that TARGET lacks, in SOURCE's order.
    pub added: Vec<AddedColumn<'a>>,
    /// SOURCE's CHECK constraints that TARGET lacks or defines otherwise, in SOURCE's order.
    pub checks_added: Vec<CheckChange<'a>>,
}

pub(super) struct CheckChange<'a> {
    pub check: &'a TableConstraint,
    /// The other side has a CHECK constraint of this name, defined otherwise.
    pub differs: bool,
}

pub(super) struct AddedColumn<'a> {
    pub column: &'a ColumnDef,
    /// The first dropped column of the same type and collation: maybe this one renamed, which
    /// a drop and an add cannot tell (and the drop loses its data).
    pub twin: Option<&'a ColumnDef>,
}

/// A column on both sides, and what differs in its definition.
pub(super) struct ColumnChange<'a> {
    pub old: &'a ColumnDef,
    pub new: &'a ColumnDef,
    /// Its other inline clauses (STORAGE, COMPRESSION, CHECK ...).
    pub clauses: bool,
    pub generated: Option<Generated>,
    pub type_sql: bool,
    pub collation: bool,
    pub default: bool,
    pub not_null: bool,
    /// The name of its NOT NULL constraint (18+).
    pub not_null_name: bool,
}

pub(super) enum Generated {
    /// SOURCE's column is not generated.
    Dropped,
    /// SOURCE's is generated, by another expression or where TARGET's is not.
    Changed,
}

impl<'a> TableDiff<'a> {
    /// The difference between TARGET's table (`old`, with the statements of its entry after the
    /// CREATE TABLE) and SOURCE's (`new`).
    pub fn of(
        old: &'a TableDef,
        new: &'a TableDef,
        old_settings: &'a [Box<str>],
        new_settings: &'a [Box<str>],
    ) -> TableDiff<'a> {
        TableDiff {
            head: head(old, new),
            clauses: clauses(old, new),
            columns: ColumnsDiff::of(old, new),
            settings_dropped: missing_from(old_settings, new_settings),
            settings_added: missing_from(new_settings, old_settings),
        }
    }
}

fn head(old: &TableDef, new: &TableDef) -> Option<HeadChange> {
    if old.head == new.head {
        None
    } else if old.unlogged != new.unlogged && old.head_when_logged() == new.head_when_logged() {
        Some(HeadChange::Persistence {
            unlogged: new.unlogged,
        })
    } else {
        Some(HeadChange::Kind)
    }
}

fn clauses<'a>(old: &'a TableDef, new: &'a TableDef) -> Clauses<'a> {
    if old.partition_by == new.partition_by && old.rest == new.rest {
        let parents = (old.inherits != new.inherits).then(|| Parents {
            old: &old.inherits,
            new: &new.inherits,
            added: new
                .inherits
                .iter()
                .filter(|p| !old.inherits.contains(p))
                .collect(),
            removed: old
                .inherits
                .iter()
                .filter(|p| !new.inherits.contains(p))
                .collect(),
            kept: new
                .inherits
                .iter()
                .filter(|p| old.inherits.contains(p))
                .collect(),
        });
        Clauses::Same {
            storage: (old.storage != new.storage).then_some(Storage {
                old: &old.storage,
                new: &new.storage,
            }),
            parents,
        }
    } else if old.partition_by != new.partition_by
        && old.inherits == new.inherits
        && old.rest == new.rest
    {
        Clauses::Partitioning
    } else {
        Clauses::Other
    }
}

fn missing_from<'a>(these: &'a [Box<str>], those: &[Box<str>]) -> Vec<&'a str> {
    these
        .iter()
        .filter(|x| !those.contains(x))
        .map(|x| &**x)
        .collect()
}

impl<'a> ColumnsDiff<'a> {
    /// The difference between TARGET's columns and CHECK constraints (`old`) and SOURCE's.
    pub fn of(old: &'a TableDef, new: &'a TableDef) -> ColumnsDiff<'a> {
        let oldc: BTreeMap<&str, &ColumnDef> =
            old.columns.iter().map(|c| (c.name.as_str(), c)).collect();
        let newc: BTreeMap<&str, &ColumnDef> =
            new.columns.iter().map(|c| (c.name.as_str(), c)).collect();
        let dropped: Vec<&ColumnDef> = old
            .columns
            .iter()
            .filter(|c| !newc.contains_key(c.name.as_str()))
            .collect();
        let changed = new
            .columns
            .iter()
            .filter_map(|c| {
                let o = oldc.get(c.name.as_str())?;
                (*o != c && o.text != c.text).then(|| ColumnChange::of(o, c))
            })
            .collect();
        let added = new
            .columns
            .iter()
            .filter(|c| !oldc.contains_key(c.name.as_str()))
            .map(|c| AddedColumn {
                column: c,
                twin: dropped
                    .iter()
                    .find(|o| o.type_sql == c.type_sql && o.collate == c.collate)
                    .copied(),
            })
            .collect();
        ColumnsDiff {
            checks_dropped: checks_missing_from(&old.constraints, &new.constraints),
            dropped,
            changed,
            added,
            checks_added: checks_missing_from(&new.constraints, &old.constraints),
        }
    }
}

impl<'a> ColumnChange<'a> {
    fn of(old: &'a ColumnDef, new: &'a ColumnDef) -> ColumnChange<'a> {
        let generated = (old.generated != new.generated).then_some(match new.generated {
            None => Generated::Dropped,
            Some(_) => Generated::Changed,
        });
        ColumnChange {
            old,
            new,
            clauses: old.other != new.other,
            generated,
            type_sql: old.type_sql != new.type_sql,
            collation: old.collate != new.collate,
            default: old.default != new.default,
            not_null: old.not_null != new.not_null,
            not_null_name: old.not_null_name != new.not_null_name,
        }
    }
}

/// The CHECK constraints of `these` that `those` lacks or defines otherwise (by name; of two of
/// one name, the last counts).
fn checks_missing_from<'a>(
    these: &'a [TableConstraint],
    those: &[TableConstraint],
) -> Vec<CheckChange<'a>> {
    let by_name: BTreeMap<&str, &str> = those
        .iter()
        .map(|c| (c.name.as_str(), c.text.as_str()))
        .collect();
    these
        .iter()
        .filter(|c| by_name.get(c.name.as_str()) != Some(&c.text.as_str()))
        .map(|c| CheckChange {
            check: c,
            differs: by_name.contains_key(c.name.as_str()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::parse::parse_create_table;

    fn table(sql: &str) -> TableDef {
        parse_create_table(sql).unwrap()
    }

    #[test]
    fn columns_and_checks() {
        let old = table(
            "CREATE TABLE public.t (\n    id integer NOT NULL,\n    gone text,\n    n numeric(10,2) DEFAULT 0,\n    CONSTRAINT a CHECK ((id > 0)),\n    CONSTRAINT b CHECK ((id < 9))\n)",
        );
        let new = table(
            "CREATE TABLE public.t (\n    id bigint,\n    n numeric(10,2) DEFAULT 1 NOT NULL,\n    fresh text,\n    CONSTRAINT a CHECK ((id > 1)),\n    CONSTRAINT c CHECK ((id < 9))\n)",
        );
        let d = TableDiff::of(&old, &new, &[], &[]);
        assert!(d.head.is_none());
        assert!(matches!(
            d.clauses,
            Clauses::Same {
                storage: None,
                parents: None
            }
        ));
        let c = &d.columns;
        let names = |v: &[&ColumnDef]| v.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&c.dropped), ["gone"]);
        let added: Vec<&ColumnDef> = c.added.iter().map(|a| a.column).collect();
        assert_eq!(names(&added), ["fresh"]);
        assert_eq!(c.added[0].twin.map(|t| t.name.as_str()), Some("gone"));
        let (id, n) = (&c.changed[0], &c.changed[1]);
        assert!(id.type_sql && id.not_null && !id.default && !id.collation);
        assert!(n.default && n.not_null && !n.type_sql && n.generated.is_none());
        let checks = |v: &[CheckChange]| {
            v.iter()
                .map(|k| (k.check.name.clone(), k.differs))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            checks(&c.checks_dropped),
            [("a".to_string(), true), ("b".to_string(), false)]
        );
        assert_eq!(
            checks(&c.checks_added),
            [("a".to_string(), true), ("c".to_string(), false)]
        );
    }

    #[test]
    fn head_and_clauses() {
        let plain = table("CREATE TABLE public.t (\n    k integer\n)\nWITH (fillfactor='70')");
        let unlogged = table("CREATE UNLOGGED TABLE public.t (\n    k integer\n)");
        let child =
            table("CREATE TABLE public.t (\n    k integer\n)\nINHERITS (public.a, public.b)");
        let partitioned = table("CREATE TABLE public.t (\n    k integer\n)\nPARTITION BY LIST (k)");
        let d = TableDiff::of(&plain, &unlogged, &[], &[]);
        assert!(matches!(
            d.head,
            Some(HeadChange::Persistence { unlogged: true })
        ));
        match d.clauses {
            Clauses::Same {
                storage: Some(s),
                parents: None,
            } => assert_eq!((s.old.len(), s.new.len()), (1, 0)),
            _ => panic!("storage parameters differ"),
        }
        match TableDiff::of(&unlogged, &child, &[], &[]).clauses {
            Clauses::Same {
                storage: None,
                parents: Some(p),
            } => assert_eq!((p.added.len(), p.removed.len()), (2, 0)),
            _ => panic!("parents differ"),
        }
        let d = TableDiff::of(&plain, &partitioned, &[], &[]);
        assert!(matches!(d.clauses, Clauses::Partitioning));
        let d = TableDiff::of(&child, &partitioned, &[], &[]);
        assert!(matches!(d.clauses, Clauses::Other));
    }

    #[test]
    fn settings() {
        let t = table("CREATE TABLE public.t (\n    k integer\n)");
        let old: [Box<str>; 2] = ["A".into(), "B".into()];
        let new: [Box<str>; 2] = ["B".into(), "C".into()];
        let d = TableDiff::of(&t, &t, &old, &new);
        assert_eq!(d.settings_dropped, ["A"]);
        assert_eq!(d.settings_added, ["C"]);
        assert!(d.columns.changed.is_empty() && d.head.is_none());
    }
}
