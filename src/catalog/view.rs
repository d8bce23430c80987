//! View definitions across the PostgreSQL 15/16 boundary.
//!
//! The server stores a view as a query tree and pg_dump prints it back through the server's own
//! deparser (ruleutils), which qualifies column names whenever the query's range table has more
//! than one entry. Up to 15 a view's range table always held two hidden entries (OLD and NEW), so
//! every column came out qualified: `SELECT t.a FROM s.t`. From 16 on they are gone, and a view over
//! a single relation prints `SELECT a FROM s.t`. Nested queries (subqueries, set operations, CTE
//! bodies) are qualified on every major. So the same view reads differently on 15 and 16; this
//! module removes exactly that difference, for comparison only.

use super::parse::{ident_of, tokens, Tok};

/// A `CREATE [MATERIALIZED] VIEW` statement with the qualifiers that 16 and newer leave out
/// removed from its top-level query: `None` when the query is not over a single relation (or is
/// in a shape this does not know), in which case every major prints it the same way.
pub fn unqualified_columns(stmt: &str) -> Option<String> {
    let toks = tokens(stmt).ok()?;
    let w = |i: usize, word: &str| toks.get(i).is_some_and(|t| t.is_word(stmt, word));
    if !w(0, "CREATE") {
        return None;
    }
    // The query starts after the first AS outside parentheses (column list, WITH options).
    let mut depth = 0usize;
    let mut start = None;
    for (i, t) in toks.iter().enumerate() {
        if t.is_punct('(') {
            depth += 1;
        } else if t.is_punct(')') {
            depth = depth.checked_sub(1)?;
        } else if depth == 0 && t.is_word(stmt, "AS") {
            start = Some(i + 1);
            break;
        }
    }
    let start = start?;
    if !w(start, "SELECT") {
        return None;
    }
    // One pass over the top-level query: find the FROM list and the spans to strip later.
    // `subquery[k]` says whether the k-th open parenthesis starts a nested query.
    let mut subquery: Vec<bool> = Vec::new();
    let mut from: Option<(usize, usize)> = None;
    let mut in_from = false;
    for i in start..toks.len() {
        let t = &toks[i];
        if t.is_punct('(') {
            let nested = ["SELECT", "WITH", "VALUES"].iter().any(|k| w(i + 1, k));
            subquery.push(nested);
            continue;
        }
        if t.is_punct(')') {
            subquery.pop()?;
            continue;
        }
        if !subquery.is_empty() {
            continue;
        }
        if ["UNION", "INTERSECT", "EXCEPT"]
            .iter()
            .any(|k| t.is_word(stmt, k))
        {
            return None;
        }
        if t.is_word(stmt, "FROM") && from.is_none() {
            in_from = true;
            from = Some((i + 1, toks.len()));
            continue;
        }
        if in_from {
            let ends = [
                "WHERE", "GROUP", "HAVING", "WINDOW", "ORDER", "LIMIT", "OFFSET", "FETCH", "FOR",
                "WITH",
            ]
            .iter()
            .any(|k| t.is_word(stmt, k))
                || t.is_punct(';');
            if ends {
                in_from = false;
                from = from.map(|(a, _)| (a, i));
            } else if t.is_punct(',')
                || ["JOIN", "LATERAL", "TABLESAMPLE", "ORDINALITY", "ROWS"]
                    .iter()
                    .any(|k| t.is_word(stmt, k))
            {
                return None;
            }
        }
    }
    let (fa, fb) = from?;
    // The range table entry's name: its alias, else the relation's (or function's) own name.
    let refname = top_level_words(&toks, fa, fb)
        .into_iter()
        .filter(|&i| !w(i, "ONLY") && !w(i, "AS"))
        .filter_map(|i| ident_of(stmt, &toks[i]))
        .next_back()?;
    let mut cut: Vec<(usize, usize)> = Vec::new();
    let mut depth_sub: Vec<bool> = Vec::new();
    for i in start..toks.len() {
        let t = &toks[i];
        if t.is_punct('(') {
            depth_sub.push(["SELECT", "WITH", "VALUES"].iter().any(|k| w(i + 1, k)));
            continue;
        }
        if t.is_punct(')') {
            depth_sub.pop();
            continue;
        }
        if depth_sub.iter().any(|&s| s) || (fa..fb).contains(&i) {
            continue;
        }
        let qualifies = ident_of(stmt, t).as_deref() == Some(refname.as_str())
            && toks.get(i + 1).is_some_and(|d| d.is_punct('.'))
            && toks.get(i + 2).is_some_and(|c| ident_of(stmt, c).is_some())
            && !toks
                .get(i + 3)
                .is_some_and(|p| p.is_punct('(') || p.is_punct('.'))
            && !(i > 0 && toks[i - 1].is_punct('.'));
        if qualifies {
            cut.push((t.start, toks[i + 1].end));
        }
    }
    let mut out = String::with_capacity(stmt.len());
    let mut at = 0;
    for (a, b) in cut {
        out.push_str(&stmt[at..a]);
        at = b;
    }
    out.push_str(&stmt[at..]);
    Some(out)
}

/// Whether view definition `new` is `old` with columns added at the end of its select list and
/// nothing else changed: then `CREATE OR REPLACE VIEW` can make the change and keep everything
/// that depends on the view.
pub fn appends_columns(old: &str, new: &str) -> bool {
    match (select_list(old), select_list(new)) {
        (Some((oh, ol, ot)), Some((nh, nl, nt))) => {
            oh == nh && ot == nt && nl.len() > ol.len() && nl[..ol.len()] == ol[..]
        }
        _ => false,
    }
}

/// (text up to and including SELECT, the top-level select list entries, text from FROM on).
fn select_list(stmt: &str) -> Option<(&str, Vec<&str>, &str)> {
    let toks = tokens(stmt).ok()?;
    let mut depth = 0usize;
    let mut select = None;
    let mut entries_start = 0;
    let mut cuts: Vec<usize> = Vec::new();
    let mut tail = stmt.len();
    for (i, t) in toks.iter().enumerate() {
        if t.is_punct('(') {
            depth += 1;
        } else if t.is_punct(')') {
            depth = depth.checked_sub(1)?;
        } else if depth > 0 {
            continue;
        } else if select.is_none() {
            if t.is_word(stmt, "AS") {
                if !toks.get(i + 1).is_some_and(|n| n.is_word(stmt, "SELECT")) {
                    return None;
                }
                select = Some(i + 1);
                entries_start = toks[i + 1].end;
            }
        } else if i > select? && t.is_punct(',') {
            cuts.push(t.start);
        } else if i > select?
            && [
                "FROM",
                "WHERE",
                "GROUP",
                "HAVING",
                "WINDOW",
                "ORDER",
                "LIMIT",
                "UNION",
                "INTERSECT",
                "EXCEPT",
                "WITH",
            ]
            .iter()
            .any(|k| t.is_word(stmt, k))
            || t.is_punct(';')
        {
            tail = t.start;
            break;
        }
    }
    select?;
    let mut entries = Vec::new();
    let mut at = entries_start;
    for c in cuts.into_iter().chain(std::iter::once(tail)) {
        entries.push(stmt[at..c].trim());
        at = c + 1;
    }
    Some((&stmt[..entries_start], entries, &stmt[tail..]))
}

/// Indexes of the tokens in `a..b` that are outside any parentheses.
fn top_level_words(toks: &[Tok], a: usize, b: usize) -> Vec<usize> {
    let mut depth = 0usize;
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate().take(b).skip(a) {
        if t.is_punct('(') {
            depth += 1;
        } else if t.is_punct(')') {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && !t.is_punct('.') {
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unqualified_columns as u;

    #[test]
    fn fifteen_and_sixteen_read_the_same() {
        let old = "CREATE VIEW public.v AS\n SELECT t.id,\n    (t.a + 1) AS b,\n    (t.c).f AS g\n   FROM public.t\n  WHERE (t.id > 0)\n  ORDER BY t.id";
        let new = "CREATE VIEW public.v AS\n SELECT id,\n    (a + 1) AS b,\n    (c).f AS g\n   FROM public.t\n  WHERE (id > 0)\n  ORDER BY id";
        assert_eq!(u(old).unwrap(), new);
        assert_eq!(u(new).unwrap(), new);
        let aliased = "CREATE VIEW public.v AS\n SELECT x.id\n   FROM ONLY public.t x";
        assert_eq!(
            u(aliased).unwrap(),
            "CREATE VIEW public.v AS\n SELECT id\n   FROM ONLY public.t x"
        );
    }

    #[test]
    fn nested_queries_and_functions_keep_their_qualifiers() {
        let sub = "CREATE VIEW public.v AS\n SELECT t.id\n   FROM public.t\n  WHERE (EXISTS ( SELECT 1\n           FROM public.u\n          WHERE (u.id = t.id)))";
        assert_eq!(
            u(sub).unwrap(),
            "CREATE VIEW public.v AS\n SELECT id\n   FROM public.t\n  WHERE (EXISTS ( SELECT 1\n           FROM public.u\n          WHERE (u.id = t.id)))"
        );
        // A schema named like the table: `t.f(...)` is a function, not a column.
        let func = "CREATE VIEW t.v AS\n SELECT t.f(t.a) AS f\n   FROM t.t";
        assert_eq!(
            u(func).unwrap(),
            "CREATE VIEW t.v AS\n SELECT t.f(a) AS f\n   FROM t.t"
        );
    }

    #[test]
    fn appended_columns_only() {
        use super::appends_columns as a;
        let old = "CREATE VIEW public.v AS\n SELECT t.a,\n    f(t.b, t.c) AS x\n   FROM public.t\n  WHERE (t.a > 0)";
        let new = "CREATE VIEW public.v AS\n SELECT t.a,\n    f(t.b, t.c) AS x,\n    t.d\n   FROM public.t\n  WHERE (t.a > 0)";
        assert!(a(old, new));
        assert!(!a(new, old), "a column removed");
        assert!(!a(old, old), "nothing appended");
        let filter = new.replace("(t.a > 0)", "(t.a > 1)");
        assert!(!a(old, &filter), "the filter changed too");
        let inserted = "CREATE VIEW public.v AS\n SELECT t.d,\n    t.a,\n    f(t.b, t.c) AS x\n   FROM public.t\n  WHERE (t.a > 0)";
        assert!(!a(old, inserted), "a column inserted before the others");
        let opts = new.replace("public.v AS", "public.v WITH (security_barrier='true') AS");
        assert!(!a(old, &opts), "options changed");
    }

    #[test]
    fn several_relations_are_left_alone() {
        for sql in [
            "CREATE VIEW public.v AS\n SELECT a.id\n   FROM (public.a\n     JOIN public.b ON ((a.id = b.id)))",
            "CREATE VIEW public.v AS\n SELECT a.id\n   FROM public.a,\n    public.b",
            "CREATE VIEW public.v AS\n SELECT t.id\n   FROM public.t\nUNION\n SELECT u.id\n   FROM public.u",
            "CREATE VIEW public.v AS\n WITH c AS (SELECT 1 AS x) SELECT c.x FROM c",
        ] {
            assert_eq!(u(sql), None, "{sql}");
        }
    }
}
