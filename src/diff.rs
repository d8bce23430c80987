//! Matches objects of two catalogs by identity: created, dropped, changed. Pure.

use crate::catalog::{Block, Catalog, Key, TableDef};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// In SOURCE only: TARGET must create it.
    Created,
    /// In TARGET only: TARGET must drop it.
    Dropped,
    /// In both, defined differently.
    Changed,
}

#[derive(Debug, Clone)]
pub struct Change {
    pub key: Key,
    pub kind: ChangeKind,
    /// Index into the SOURCE catalog.
    pub source: Option<usize>,
    /// Index into the TARGET catalog.
    pub target: Option<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct Diff {
    pub changes: Vec<Change>,
    /// Differences that need no change (a table's column order).
    pub notes: Vec<String>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Compares SOURCE (desired) with TARGET (current).
pub fn diff(source: &Catalog, target: &Catalog) -> Diff {
    let mut out = Diff::default();
    for (si, sb) in source.blocks.iter().enumerate() {
        match target.index.get(&sb.key) {
            None => out.changes.push(Change {
                key: sb.key.clone(),
                kind: ChangeKind::Created,
                source: Some(si),
                target: None,
            }),
            Some(&ti) => {
                let tb = &target.blocks[ti];
                match compare(sb, tb) {
                    Same::Equal => {}
                    Same::ColumnOrderOnly => out.notes.push(format!(
                        "{}: columns are in a different order; PostgreSQL appends added columns and reordering would rewrite the table, so pgalign leaves the order alone",
                        sb.key.display()
                    )),
                    Same::Different => out.changes.push(Change {
                        key: sb.key.clone(),
                        kind: ChangeKind::Changed,
                        source: Some(si),
                        target: Some(ti),
                    }),
                }
            }
        }
    }
    for (ti, tb) in target.blocks.iter().enumerate() {
        if !source.index.contains_key(&tb.key) {
            out.changes.push(Change {
                key: tb.key.clone(),
                kind: ChangeKind::Dropped,
                source: None,
                target: Some(ti),
            });
        }
    }
    out
}

enum Same {
    Equal,
    ColumnOrderOnly,
    Different,
}

fn compare(a: &Block, b: &Block) -> Same {
    if a.compare_text() == b.compare_text() {
        return Same::Equal;
    }
    if let (Some(ta), Some(tb)) = (&a.table, &b.table) {
        if a.settings == b.settings
            && a.stmts.get(1..) == b.stmts.get(1..)
            && same_ignoring_column_order(ta, tb)
        {
            return Same::ColumnOrderOnly;
        }
    }
    Same::Different
}

fn same_ignoring_column_order(a: &TableDef, b: &TableDef) -> bool {
    let mut ca: Vec<_> = a.columns.iter().map(|c| &c.text).collect();
    let mut cb: Vec<_> = b.columns.iter().map(|c| &c.text).collect();
    ca.sort();
    cb.sort();
    let mut ka: Vec<_> = a.constraints.iter().map(|c| &c.text).collect();
    let mut kb: Vec<_> = b.constraints.iter().map(|c| &c.text).collect();
    ka.sort();
    kb.sort();
    a.head == b.head && a.tail == b.tail && ca == cb && ka == kb
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{from_dump_text, Filter};

    fn cat(body: &str) -> Catalog {
        let text = format!("--\n-- PostgreSQL database dump\n--\n\n{body}");
        from_dump_text(&text, &Filter::default()).unwrap()
    }

    fn table(cols: &str) -> String {
        format!("--\n-- Name: t; Type: TABLE; Schema: public; Owner: x\n--\n\nCREATE TABLE public.t (\n{cols}\n);\n\n")
    }

    #[test]
    fn created_dropped_changed() {
        let a = cat(&(table("    a integer")
            + "--\n-- Name: s; Type: SEQUENCE; Schema: public; Owner: x\n--\n\nCREATE SEQUENCE public.s;\n"));
        let b = cat(&(table("    a bigint")
            + "--\n-- Name: i; Type: INDEX; Schema: public; Owner: x\n--\n\nCREATE INDEX i ON public.t USING btree (a);\n"));
        let d = diff(&b, &a);
        let got: Vec<_> = d
            .changes
            .iter()
            .map(|c| (c.kind, c.key.display()))
            .collect();
        assert_eq!(
            got,
            [
                (ChangeKind::Changed, "table public.t".to_string()),
                (ChangeKind::Created, "index public.i".to_string()),
                (ChangeKind::Dropped, "sequence public.s".to_string()),
            ]
        );
    }

    #[test]
    fn column_order_alone_is_a_note() {
        let a = cat(&table("    a integer,\n    b text"));
        let b = cat(&table("    b text,\n    a integer"));
        let d = diff(&b, &a);
        assert!(d.is_empty());
        assert_eq!(d.notes.len(), 1);
        assert!(d.notes[0].contains("different order"));
    }

    #[test]
    fn constants_matter() {
        let a = cat(&table("    a integer,\n    CONSTRAINT c CHECK ((a > 0))"));
        let b = cat(&table("    a integer,\n    CONSTRAINT c CHECK ((a > 5))"));
        assert_eq!(diff(&b, &a).changes.len(), 1);
    }
}
