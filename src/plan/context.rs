//! What the planner works with while it decides: both catalogs, the options, lookups built
//! once, and what the planner cannot do (unsupported changes).

use super::{Hazard, Mark, Op, Options, Role, Step, Unsupported};
use crate::catalog::{read, Block, Catalog, Key, ObjectKind};
use std::collections::HashMap;

/// What the planner works with while it decides. What a decision hands to the later phases is
/// returned (`kinds::Altered`, gathered into the planner's `Decided`), not kept here.
pub(crate) struct Ctx<'a> {
    pub src: &'a Catalog,
    pub tgt: &'a Catalog,
    pub opts: &'a Options,
    pub unsupported: Vec<Unsupported>,
    /// Lookups built once: tables by (schema, name), and each partition's parent.
    pub src_rel: Relations,
    pub tgt_rel: Relations,
}

/// A catalog's tables by (schema, name), and each partition's parent, built once per plan so
/// that per-object questions stay cheap on schemas of many thousand tables.
#[derive(Default)]
pub(crate) struct Relations {
    pub tables: HashMap<(String, String), usize>,
    pub parent: HashMap<(String, String), (String, String)>,
    /// Index attached to a partitioned index -> that index (`ALTER INDEX p ATTACH PARTITION c`).
    pub index_parent: HashMap<(String, String), (String, String)>,
    /// The DEFAULT ACL blocks, in catalog order.
    pub default_acls: Vec<usize>,
    /// The FUNCTION blocks, in catalog order.
    pub functions: Vec<usize>,
    /// Identity sequences' blocks (`ALTER TABLE ... ADD GENERATED ... AS IDENTITY`), unread.
    identity_sequences: Vec<usize>,
    /// The TYPE blocks, unread.
    types: Vec<usize>,
    /// The enum types' names as column types print them (`public.mood`): read from `types` the
    /// first time a column's type change asks.
    enums: std::cell::OnceCell<std::collections::BTreeSet<String>>,
    /// Identity columns (schema, table, column) -> their sequence's block: read from
    /// `identity_sequences` the first time a new column asks (rarely; reading all of them is a
    /// third of the plan stage at 10,000 tables).
    identities: std::cell::OnceCell<HashMap<(String, String, String), usize>>,
    /// Tables with partitions or inheritance children: found the first time a table asks, by
    /// one pass over the tables (asking each table about every other one was a tenth of a
    /// second per thousand altered tables, at 10,000 tables).
    parents: std::cell::OnceCell<std::collections::HashSet<(String, String)>>,
}

impl Relations {
    /// Whether table (schema, name) of `cat`, the catalog these relations were built from,
    /// has partitions or inheritance children.
    pub fn has_children(&self, cat: &Catalog, table: &(String, String)) -> bool {
        self.parents
            .get_or_init(|| {
                let mut set: std::collections::HashSet<(String, String)> =
                    self.parent.values().cloned().collect();
                for &i in self.tables.values() {
                    let b = &cat.blocks[i];
                    if b.stmts
                        .first()
                        .is_some_and(|s| crate::catalog::parse::may_inherit(s))
                    {
                        if let Some(t) = b.table() {
                            set.extend(t.inherits.iter().cloned());
                        }
                    }
                }
                set
            })
            .contains(table)
    }

    /// The identity sequence of a column (schema, table, column) of `cat`, the catalog these
    /// relations were built from.
    pub fn identity(&self, cat: &Catalog, column: &(String, String, String)) -> Option<usize> {
        self.identities
            .get_or_init(|| {
                self.identity_sequences
                    .iter()
                    .filter_map(|&i| {
                        let ((sch, tab), col, _) = cat.blocks[i]
                            .stmts
                            .first()
                            .and_then(|s| read::identity_parts(s))?;
                        Some(((sch, tab, col), i))
                    })
                    .collect()
            })
            .get(column)
            .copied()
    }

    /// Whether `type_sql` (a column's type as the dump prints it, without array brackets) is an
    /// enum type of `cat`, the catalog these relations were built from.
    pub fn is_enum(&self, cat: &Catalog, type_sql: &str) -> bool {
        self.enums
            .get_or_init(|| {
                self.types
                    .iter()
                    .map(|&i| &cat.blocks[i])
                    .filter(|b| b.stmts.first().and_then(|s| read::enum_labels(s)).is_some())
                    .filter_map(read::identity_of)
                    .collect()
            })
            .contains(type_sql)
    }

    pub(super) fn of(cat: &Catalog) -> Relations {
        let mut r = Relations::default();
        for (i, b) in cat.blocks.iter().enumerate() {
            // A table's key names it as its CREATE TABLE does; no need to parse it here.
            let creates_table =
                b.key.kind.is_table() && b.stmts.first().is_some_and(|s| s.starts_with("CREATE "));
            if creates_table {
                r.tables
                    .insert((b.key.schema.to_string(), b.key.name.to_string()), i);
            } else if b.key.kind == ObjectKind::TableAttach {
                if let Some((parent, child)) = b.stmts.first().and_then(|s| read::attach_parts(s)) {
                    r.parent.insert(child, parent);
                }
            } else if b.key.kind == ObjectKind::Type {
                r.types.push(i);
            } else if b.key.kind == ObjectKind::DefaultAcl {
                r.default_acls.push(i);
            } else if b.key.kind == ObjectKind::Function {
                r.functions.push(i);
            } else if b.key.kind == ObjectKind::Sequence
                && b.stmts
                    .first()
                    .is_some_and(|s| s.starts_with("ALTER TABLE"))
            {
                r.identity_sequences.push(i);
            } else if b.key.kind == ObjectKind::IndexAttach {
                if let Some((parent, child)) = b.stmts.first().and_then(|s| read::attach_parts(s)) {
                    r.index_parent.insert(child, parent);
                }
            }
        }
        r
    }
}

impl Ctx<'_> {
    pub fn step(&self, b: &Block, op: Op, reason: &str, sql: String, hazards: Vec<Hazard>) -> Step {
        let mut hazards = hazards;
        hazards.sort();
        hazards.dedup();
        Step {
            object: b.key.display(),
            kind: b.key.kind.clone(),
            op,
            reason: reason.to_string(),
            sql,
            hazards,
            lock_timeout: self.opts.lock_timeout,
            statement_timeout: self.opts.statement_timeout,
            transactional: true,
            own_transaction: false,
            replaces_invalid_index: None,
            on_failure_sql: None,
            preflight: Vec::new(),
            impact: None,
            mark: Mark {
                key: Some(b.key.clone()),
                role: Role::Other,
            },
        }
    }
    pub fn unsupported(&mut self, key: &Key, reason: String, t: Option<&Block>, s: Option<&Block>) {
        self.unsupported.push(Unsupported {
            object: key.display(),
            reason,
            target_sql: t.map(|b| b.sql()),
            source_sql: s.map(|b| b.sql()),
        });
    }
}
