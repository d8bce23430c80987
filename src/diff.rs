//! Matches objects of two catalogs by identity: created, dropped, changed. Pure.

use crate::catalog::majors::without_not_null_names;
use crate::catalog::view::unqualified_columns;
use crate::catalog::{Block, Catalog, Key, TableDef};
use crate::threads::joined;
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

/// Where a changed object is: block indexes into the SOURCE and TARGET catalogs, exactly the
/// sides its kind of change has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sides {
    Created { source: usize },
    Dropped { target: usize },
    Changed { source: usize, target: usize },
}

#[derive(Debug, Clone)]
pub struct Change {
    pub key: Key,
    pub sides: Sides,
}

impl Change {
    pub fn kind(&self) -> ChangeKind {
        match self.sides {
            Sides::Created { .. } => ChangeKind::Created,
            Sides::Dropped { .. } => ChangeKind::Dropped,
            Sides::Changed { .. } => ChangeKind::Changed,
        }
    }
    /// The SOURCE block, for a created or changed object.
    pub fn source(&self) -> Option<usize> {
        match self.sides {
            Sides::Created { source } | Sides::Changed { source, .. } => Some(source),
            Sides::Dropped { .. } => None,
        }
    }
    /// The TARGET block, for a dropped or changed object.
    pub fn target(&self) -> Option<usize> {
        match self.sides {
            Sides::Dropped { target } | Sides::Changed { target, .. } => Some(target),
            Sides::Created { .. } => None,
        }
    }
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
    // One side up to 15, the other 16 or newer: views print their columns differently.
    let straddle = |old: u32, new: u32| {
        matches!(
            (source.server_version, target.server_version),
            (Some(a), Some(b)) if a.min(b) <= old && a.max(b) >= new
        )
    };
    let skew = Skew {
        views: straddle(15, 16),
        not_null_names: straddle(17, 18),
    };
    // SOURCE in two interleaved shares and the TARGET-only objects, on three threads (2 cores):
    // each is a lookup and a comparison per block, independent of the others. Interleaved in
    // runs, not halves: pg_dump writes every table first, and the tables are the blocks that
    // take parsing. Merged back into SOURCE's order.
    let n = source.blocks.len();
    let (first, second, dropped) = std::thread::scope(|scope| {
        let second = scope.spawn(|| in_source(source, target, share(n, 1), skew));
        let dropped = scope.spawn(|| only_in_target(source, target));
        let first = in_source(source, target, share(n, 0), skew);
        (first, joined(second), joined(dropped))
    });
    let ((c1, n1), (c2, n2)) = (first, second);
    out.changes = merged(c1, c2, |c| c.source());
    out.notes = merged(n1, n2, |(i, _)| Some(*i))
        .into_iter()
        .map(|(_, note)| note)
        .collect();
    out.changes.extend(dropped);
    out
}

/// Runs of SOURCE's block positions, every other one from `which` (0 or 1).
fn share(n: usize, which: usize) -> impl Iterator<Item = usize> {
    const RUN: usize = 256;
    (0..n).filter(move |i| (i / RUN) % 2 == which)
}

/// Two lists each in SOURCE's order, as one in that order.
fn merged<T>(a: Vec<T>, b: Vec<T>, at: impl Fn(&T) -> Option<usize>) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => at(x) <= at(y),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return out,
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
}

/// Changes and notes (with the block's position) for SOURCE blocks at `positions`: created or
/// changed.
fn in_source(
    source: &Catalog,
    target: &Catalog,
    positions: impl Iterator<Item = usize>,
    skew: Skew,
) -> (Vec<Change>, Vec<(usize, String)>) {
    let (mut changes, mut notes) = (Vec::new(), Vec::new());
    for si in positions {
        let sb = &source.blocks[si];
        match target.position(&sb.key) {
            None => changes.push(Change {
                key: sb.key.clone(),
                sides: Sides::Created { source: si },
            }),
            Some(ti) => {
                let tb = &target.blocks[ti];
                match compare(sb, tb, skew) {
                    Same::Equal => {}
                    Same::ColumnOrderOnly => notes.push((
                        si,
                        format!(
                            "{}: columns are in a different order; PostgreSQL appends added columns and reordering would rewrite the table, so pgalign leaves the order alone",
                            sb.key.display()
                        ),
                    )),
                    Same::Different => changes.push(Change {
                        key: sb.key.clone(),
                        sides: Sides::Changed {
                            source: si,
                            target: ti,
                        },
                    }),
                }
            }
        }
    }
    (changes, notes)
}

/// TARGET blocks that SOURCE lacks: dropped.
fn only_in_target(source: &Catalog, target: &Catalog) -> Vec<Change> {
    target
        .blocks
        .iter()
        .enumerate()
        .filter(|(_, tb)| !source.contains(&tb.key))
        .map(|(ti, tb)| Change {
            key: tb.key.clone(),
            sides: Sides::Dropped { target: ti },
        })
        .collect()
}

enum Same {
    Equal,
    ColumnOrderOnly,
    Different,
}

fn compare(a: &Block, b: &Block, skew: Skew) -> Same {
    // The name the plan would use for the object (from its ALTER ... OWNER TO, which is not
    // compared when owners are ignored) must be the same too: a block that differs only there
    // is changed, and so checked before its name reaches a step (catalog::validate).
    if a.identity() != b.identity() {
        return Same::Different;
    }
    // compare_text() without building it: the same settings and the same statements.
    if a.settings() == b.settings() && a.stmts == b.stmts {
        return Same::Equal;
    }
    if skew.views && same_view_across_majors(a, b) {
        return Same::Equal;
    }
    if skew.not_null_names && same_table_but_not_null_names(a, b) {
        return Same::Equal;
    }
    if let (Some(ta), Some(tb)) = (a.table(), b.table()) {
        if a.settings() == b.settings()
            && a.stmts.get(1..) == b.stmts.get(1..)
            && same_ignoring_column_order(ta, tb)
        {
            return Same::ColumnOrderOnly;
        }
    }
    Same::Different
}

/// The two sides straddle a major where the server prints the same thing differently.
#[derive(Debug, Clone, Copy)]
struct Skew {
    /// 15 and older vs 16 and newer: column qualifiers in views over one relation.
    views: bool,
    /// 17 and older vs 18 and newer: NOT NULL constraint names.
    not_null_names: bool,
}

/// Two tables that differ only in the names of NOT NULL constraints, which exist from 18 on.
fn same_table_but_not_null_names(a: &Block, b: &Block) -> bool {
    a.key.kind.is_table()
        && a.settings() == b.settings()
        && a.stmts.len() == b.stmts.len()
        && a.stmts
            .iter()
            .zip(&b.stmts)
            .all(|(x, y)| without_not_null_names(x) == without_not_null_names(y))
}

/// Two views that differ only in how 15 and 16 print column names (see `catalog::view`).
fn same_view_across_majors(a: &Block, b: &Block) -> bool {
    if !a.key.kind.is_view()
        || a.settings() != b.settings()
        || a.stmts.len() != b.stmts.len()
        || a.stmts.get(1..) != b.stmts.get(1..)
    {
        return false;
    }
    let (Some(sa), Some(sb)) = (a.stmts.first(), b.stmts.first()) else {
        return false;
    };
    match (unqualified_columns(sa), unqualified_columns(sb)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
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
            .map(|c| (c.kind(), c.key.display()))
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

    /// Regression (mutation test): under --no-owner a view whose `ALTER VIEW ,public.v OWNER TO`
    /// was damaged compared equal, was then rebuilt with a changed table, and its drop used the
    /// damaged name unchecked.
    #[test]
    fn the_name_from_the_owner_statement_counts() {
        let view = |owner: &str| {
            format!("--\n-- Name: v; Type: VIEW; Schema: public; Owner: x\n--\n\nCREATE VIEW public.v AS\n SELECT 1 AS a;\n\n\n{owner}\n\n")
        };
        let f = Filter {
            no_owner: true,
            ..Default::default()
        };
        let text = |owner: &str| format!("--\n-- PostgreSQL database dump\n--\n\n{}", view(owner));
        let a = from_dump_text(&text("ALTER VIEW public.v OWNER TO x;"), &f).unwrap();
        let b = from_dump_text(&text("ALTER VIEW ,public.v OWNER TO x;"), &f).unwrap();
        let c = from_dump_text(&text("ALTER VIEW public.v OWNER TO y;"), &f).unwrap();
        assert_eq!(diff(&a, &b).changes.len(), 1);
        assert!(diff(&a, &c).is_empty());
    }

    #[test]
    fn constants_matter() {
        let a = cat(&table("    a integer,\n    CONSTRAINT c CHECK ((a > 0))"));
        let b = cat(&table("    a integer,\n    CONSTRAINT c CHECK ((a > 5))"));
        assert_eq!(diff(&b, &a).changes.len(), 1);
    }
}
