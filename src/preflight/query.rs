//! The read-only queries of preflight, written from a check's typed facts: every table and
//! column name goes through `quote_ident`, a type name only after the catalog read it as one
//! type name and nothing else (`catalog::rules::is_type_name`), and values from outside (a type
//! name given to `pg_input_is_valid`, a schema and table name looked up) are bind parameters.
//! Pure: the text is tested without a server.

use crate::catalog::rules::{is_type_name, one_expression};
use crate::catalog::{qualified, quote_ident};
use crate::plan::preflight::Rel;

/// Counts stop here: `count(*)` over a LIMIT bounds the work of counting, whatever the table's
/// statistics say. A count that reaches it reads "more than 1,000,000".
pub const CAP: u64 = 1_000_000;

/// Examples are cut to this many characters, on the server.
const EXAMPLE_CHARS: u32 = 60;

/// What preflight knows of a table before it asks about its rows.
#[derive(Debug, Clone, Default)]
pub struct RelInfo {
    /// A partitioned table holds no rows itself: its partitions' rows are its rows.
    pub partitioned: bool,
    /// `pg_class.reltuples` (for a partitioned table, its leaf partitions' sum); None when the
    /// table was never vacuumed or analyzed.
    pub estimate: Option<f64>,
    /// Its primary key's columns (examples name rows by them), empty when it has none.
    pub primary_key: Vec<String>,
}

/// Looks tables up: (schema, name, partitioned, estimated rows or NULL, primary key columns),
/// one row per table TARGET has of those named by the arrays $1 (schemas) and $2 (names). One
/// query for every table preflight checks (one round trip each was most of its time).
pub const REL_INFO: &str = "SELECT w.s, w.n, c.relkind = 'p',
       CASE WHEN c.relkind = 'p'
            THEN (SELECT sum(greatest(l.reltuples, 0))::float8
                    FROM pg_catalog.pg_partition_tree(c.oid) t
                    JOIN pg_catalog.pg_class l ON l.oid = t.relid
                   WHERE t.isleaf)
            ELSE c.reltuples::float8 END,
       coalesce((SELECT array_agg(a.attname::text ORDER BY k.n)
                   FROM pg_catalog.pg_index x
                  CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                  WHERE x.indrelid = c.oid AND x.indisprimary), '{}')
  FROM unnest($1::text[], $2::text[]) AS w(s, n)
  JOIN pg_catalog.pg_namespace ns ON ns.nspname = w.s
  JOIN pg_catalog.pg_class c ON c.relnamespace = ns.oid AND c.relname = w.n
 WHERE c.relkind IN ('r', 'p')";

/// The size on disk (indexes and TOAST included; a partitioned table's partitions summed) and
/// the estimated rows of the relations named by the arrays $1 (schemas) and $2 (names): one
/// row per relation TARGET has.
pub const SIZES: &str = "SELECT w.s, w.n,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT coalesce(sum(pg_catalog.pg_total_relation_size(t.relid)), 0)::int8
                    FROM pg_catalog.pg_partition_tree(c.oid) t)
            ELSE pg_catalog.pg_total_relation_size(c.oid)::int8 END,
       CASE WHEN c.relkind = 'p'
            THEN (SELECT sum(greatest(l.reltuples, 0))::float8
                    FROM pg_catalog.pg_partition_tree(c.oid) t
                    JOIN pg_catalog.pg_class l ON l.oid = t.relid
                   WHERE t.isleaf)
            WHEN c.reltuples < 0 THEN NULL
            ELSE c.reltuples::float8 END
  FROM unnest($1::text[], $2::text[]) AS w(s, n)
  JOIN pg_catalog.pg_namespace ns ON ns.nspname = w.s
  JOIN pg_catalog.pg_class c ON c.relnamespace = ns.oid AND c.relname = w.n
 WHERE c.relkind IN ('r', 'p', 'm', 't', 'S')";

/// Which of a table's rows a statement reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `ALTER TABLE t` (no ONLY): the table and its inheritance children or partitions.
    WithChildren,
    /// `ALTER TABLE ONLY t`, `CREATE INDEX ON t`: the table's own rows (a partitioned table's
    /// are its partitions').
    Own,
}

/// The table as a FROM item, with the alias given.
fn from(t: &Rel, info: &RelInfo, scope: Scope, alias: &str) -> String {
    let only = if scope == Scope::Own && !info.partitioned {
        "ONLY "
    } else {
        ""
    };
    format!("{only}{} {alias}", qualified(&t.schema, &t.name))
}

/// `alias.col` for each column.
fn cols(alias: &str, columns: &[String]) -> Vec<String> {
    columns
        .iter()
        .map(|c| format!("{alias}.{}", quote_ident(c)))
        .collect()
}

/// A text value of the columns, cut short: `x.a::text`, or `ROW(x.a, x.b)::text`.
fn as_text(columns: &[String]) -> String {
    let v = match columns {
        [one] => format!("{one}::text"),
        many => format!("ROW({})::text", many.join(", ")),
    };
    format!("left({v}, {EXAMPLE_CHARS})")
}

/// How examples name a row: by its primary key (`id=`), or not at all (a NULL per row).
pub fn example_key(info: &RelInfo, alias: &str) -> (String, String) {
    if info.primary_key.is_empty() {
        return ("NULL::text".into(), String::new());
    }
    let label = match info.primary_key.as_slice() {
        [one] => format!("{}=", quote_ident(one)),
        many => format!(
            "({})=",
            many.iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    (as_text(&cols(alias, &info.primary_key)), label)
}

/// Two queries over the rows that match a condition: up to three examples (one text column,
/// NULL when there is nothing to show), then, only when there are some, how many (at most
/// CAP + 1). The examples come first: a clean table is read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowsWhere {
    pub examples: String,
    pub count: String,
    /// How examples read: `id=` before each value, or nothing.
    pub label: String,
}

fn rows_where(from: &str, cond: &str, example: String, label: String) -> RowsWhere {
    let cap = CAP + 1;
    let filter = if cond.is_empty() {
        String::new()
    } else {
        format!(" WHERE {cond}")
    };
    RowsWhere {
        examples: format!("SELECT {example} FROM {from}{filter} LIMIT 3"),
        count: format!("SELECT count(*) FROM (SELECT FROM {from}{filter} LIMIT {cap}) s"),
        label,
    }
}

/// Rows where the column is NULL (what SET NOT NULL meets).
pub fn nulls(t: &Rel, info: &RelInfo, column: &str) -> RowsWhere {
    let (ex, label) = example_key(info, "x");
    let cond = format!("x.{} IS NULL", quote_ident(column));
    rows_where(&from(t, info, Scope::WithChildren, "x"), &cond, ex, label)
}

/// Any row at all (what ADD COLUMN ... NOT NULL without a default meets).
pub fn any_row(t: &Rel, info: &RelInfo, scope: Scope) -> RowsWhere {
    let (ex, label) = example_key(info, "x");
    rows_where(&from(t, info, scope, "x"), "", ex, label)
}

/// Rows where the column has a value (what DROP COLUMN loses).
pub fn values(t: &Rel, info: &RelInfo, column: &str) -> RowsWhere {
    let cond = format!("x.{} IS NOT NULL", quote_ident(column));
    rows_where(
        &from(t, info, Scope::WithChildren, "x"),
        &cond,
        "NULL::text".into(),
        String::new(),
    )
}

/// Rows whose value is longer than `length` characters (what a shorter string type cuts).
pub fn longer_than(t: &Rel, info: &RelInfo, column: &str, length: u32) -> RowsWhere {
    let (ex, label) = example_key(info, "x");
    let cond = format!("char_length(x.{}) > {length}", quote_ident(column));
    rows_where(&from(t, info, Scope::WithChildren, "x"), &cond, ex, label)
}

/// Groups of rows sharing a key (what a new unique key meets); rows with a NULL in the key are
/// distinct unless `nulls_not_distinct`. The examples are the duplicated keys.
pub fn duplicates(t: &Rel, info: &RelInfo, columns: &[String], nulls_equal: bool) -> RowsWhere {
    let key = cols("x", columns);
    let filter = if nulls_equal {
        String::new()
    } else {
        format!(
            " WHERE {}",
            key.iter()
                .map(|k| format!("{k} IS NOT NULL"))
                .collect::<Vec<_>>()
                .join(" AND ")
        )
    };
    let groups = format!(
        "{}{filter} GROUP BY {} HAVING count(*) > 1",
        from(t, info, Scope::Own, "x"),
        key.join(", ")
    );
    let cap = CAP + 1;
    RowsWhere {
        examples: format!("SELECT {} FROM {groups} LIMIT 3", as_text(&key)),
        count: format!("SELECT count(*) FROM (SELECT FROM {groups} LIMIT {cap}) s"),
        label: String::new(),
    }
}

/// Rows with a NULL in any of the key's columns (what a new primary key meets).
pub fn null_keys(t: &Rel, info: &RelInfo, columns: &[String]) -> RowsWhere {
    let (ex, label) = example_key(info, "x");
    let cond = cols("x", columns)
        .iter()
        .map(|k| format!("{k} IS NULL"))
        .collect::<Vec<_>>()
        .join(" OR ");
    rows_where(&from(t, info, Scope::Own, "x"), &cond, ex, label)
}

/// A foreign key's child rows that match no row of the referenced table (`parent` None: the
/// plan creates that table, so it has none). MATCH SIMPLE: a key with a NULL is not checked;
/// MATCH FULL: a key NULL in some columns but not all fails too. The examples are the keys.
pub fn orphans(
    t: &Rel,
    info: &RelInfo,
    columns: &[String],
    parent: Option<(&Rel, &RelInfo)>,
    ref_columns: &[String],
    match_full: bool,
) -> RowsWhere {
    let key = cols("x", columns);
    let all_set = key
        .iter()
        .map(|k| format!("{k} IS NOT NULL"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut cond = match parent {
        Some((p, pinfo)) => {
            let on = key
                .iter()
                .zip(cols("p", ref_columns))
                .map(|(k, r)| format!("{r} = {k}"))
                .collect::<Vec<_>>()
                .join(" AND ");
            format!(
                "({all_set} AND NOT EXISTS (SELECT FROM {} WHERE {on}))",
                from(p, pinfo, Scope::Own, "p")
            )
        }
        None => format!("({all_set})"),
    };
    if match_full && key.len() > 1 {
        let none_set = key
            .iter()
            .map(|k| format!("{k} IS NULL"))
            .collect::<Vec<_>>()
            .join(" AND ");
        cond = format!("{cond} OR (NOT ({all_set}) AND NOT ({none_set}))");
    }
    rows_where(
        &from(t, info, Scope::Own, "x"),
        &cond,
        as_text(&key),
        String::new(),
    )
}

/// The conversion a type change makes, run on every row (`count(x.c::type)` evaluates the cast
/// for each one): it fails as the step would, on the first value that does not convert, or
/// when there is no cast at all. None when the type name is not one type name alone.
pub fn converts(
    t: &Rel,
    info: &RelInfo,
    column: &str,
    via: Option<&str>,
    to_type: &str,
) -> Option<String> {
    if !is_type_name(to_type) || via.is_some_and(|v| !is_type_name(v)) {
        return None;
    }
    let via = via.map(|v| format!("::{v}")).unwrap_or_default();
    Some(format!(
        "SELECT count((x.{}){via}::{to_type}) FROM {}",
        quote_ident(column),
        from(t, info, Scope::WithChildren, "x")
    ))
}

/// PostgreSQL 16+: the values that the type's input function refuses, judged from their text
/// (`pg_input_is_valid`, the type name a parameter, $1). An estimate of what the cast refuses:
/// a cast may accept what the input function does not (numeric 1.5 to integer rounds).
pub fn invalid_input(t: &Rel, info: &RelInfo, column: &str) -> RowsWhere {
    let c = format!("x.{}", quote_ident(column));
    let cond = format!("{c} IS NOT NULL AND NOT pg_catalog.pg_input_is_valid({c}::text, $1)");
    rows_where(
        &from(t, info, Scope::WithChildren, "x"),
        &cond,
        as_text(std::slice::from_ref(&c)),
        String::new(),
    )
}

/// Rows where a CHECK constraint's expression is false (a NULL passes, as PostgreSQL has it).
/// None when `expr` is not one expression alone, as the catalog deparsed it
/// (`catalog::rules::one_expression`): nothing else is written after `WHERE NOT`.
pub fn violations(t: &Rel, info: &RelInfo, expr: &str, scope: Scope) -> Option<RowsWhere> {
    let expr = one_expression(expr)?;
    let (ex, label) = example_key(info, "x");
    Some(rows_where(
        &from(t, info, scope, "x"),
        &format!("NOT ({expr})"),
        ex,
        label,
    ))
}

/// The columns `ALTER DOMAIN ... ADD CONSTRAINT` or `SET NOT NULL` reads: every column of the
/// domain, or of a domain over it, in a table or populated materialized view (a partitioned
/// table's are its partitions'), as (schema, table, column, whether it holds the domain inside
/// an array, which PostgreSQL refuses whatever the values). Domain schema and name are
/// parameters ($1, $2).
pub const DOMAIN_COLUMNS: &str = "WITH RECURSIVE d(oid) AS (
       SELECT t.oid
         FROM pg_catalog.pg_type t
         JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = $1 AND t.typname = $2 AND t.typtype = 'd'
       UNION
       SELECT t.oid FROM pg_catalog.pg_type t JOIN d ON t.typbasetype = d.oid
        WHERE t.typtype = 'd')
SELECT n.nspname::text, c.relname::text, a.attname::text, a.atttypid NOT IN (SELECT oid FROM d)
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'm') AND a.attnum > 0 AND NOT a.attisdropped
   AND (a.atttypid IN (SELECT oid FROM d) AND (c.relkind = 'r' OR c.relispopulated)
        OR a.atttypid IN (SELECT t.oid FROM pg_catalog.pg_type t
                           WHERE t.typcategory = 'A' AND t.typelem IN (SELECT oid FROM d)))
 ORDER BY 1, 2, a.attnum";

/// A domain column's values that break its new constraint (`expr`, over `value`), or that are
/// NULL (`expr` None: SET NOT NULL). The values reach the expression as the one column `value`
/// of a subquery (beside the example key, `k`): a column of the table named `value` cannot be
/// what the expression reads. Each table on its own (ONLY), as PostgreSQL checks them. None
/// when `expr` is not one expression alone.
pub fn domain_violations(
    t: &Rel,
    info: &RelInfo,
    column: &str,
    expr: Option<&str>,
) -> Option<RowsWhere> {
    let cond = match expr {
        Some(e) => format!("NOT ({})", one_expression(e)?),
        None => "v.value IS NULL".to_string(),
    };
    let (ex, label) = example_key(info, "x");
    let values = format!(
        "(SELECT x.{} AS value, {ex} AS k FROM {}) v",
        quote_ident(column),
        from(t, info, Scope::Own, "x")
    );
    Some(rows_where(&values, &cond, "v.k".into(), label))
}

/// Rows whose value in the column is one of an enum's labels (a text[] parameter, $1); for an
/// array column, rows with any element that is. The enum's rebuild converts the column through
/// text: such a value has no label to go to.
pub fn holding_labels(t: &Rel, info: &RelInfo, column: &str, array: bool) -> RowsWhere {
    let c = format!("x.{}", quote_ident(column));
    let cond = if array {
        format!("{c}::text[] && $1::text[]")
    } else {
        format!("{c}::text = ANY ($1::text[])")
    };
    let (ex, label) = example_key(info, "x");
    rows_where(&from(t, info, Scope::WithChildren, "x"), &cond, ex, label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(schema: &str, name: &str) -> Rel {
        Rel {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// Names made to break out of the query: quotes, semicolons, comments, a line break. Each
    /// query must stay one statement, and each name must appear only as one quoted identifier.
    #[test]
    fn hostile_names_stay_quoted() {
        let evil = "x\"; DROP TABLE canary; --";
        let t = rel("s'; DELETE FROM canary; --", evil);
        let info = RelInfo {
            partitioned: false,
            estimate: None,
            primary_key: vec![evil.into()],
        };
        let col = "c\"\n; TRUNCATE canary; /*".to_string();
        let parent = rel("p\"", "q;");
        let queries: Vec<String> = [
            nulls(&t, &info, &col),
            any_row(&t, &info, Scope::Own),
            values(&t, &info, &col),
            longer_than(&t, &info, &col, 3),
            duplicates(&t, &info, std::slice::from_ref(&col), false),
            null_keys(&t, &info, std::slice::from_ref(&col)),
            orphans(
                &t,
                &info,
                &[col.clone(), "b".into()],
                Some((&parent, &info)),
                &[evil.into(), "k".into()],
                true,
            ),
            invalid_input(&t, &info, &col),
            holding_labels(&t, &info, &col, false),
            holding_labels(&t, &info, &col, true),
            violations(&t, &info, "x > 0", Scope::Own).unwrap(),
            domain_violations(&t, &info, &col, Some("value > 0")).unwrap(),
            domain_violations(&t, &info, &col, None).unwrap(),
        ]
        .into_iter()
        .flat_map(|q| [q.examples, q.count])
        .chain(converts(&t, &info, &col, None, "integer"))
        .collect();
        for q in &queries {
            let stmts = crate::catalog::parse::split_statements(q).unwrap();
            assert_eq!(stmts.len(), 1, "{q}");
            // With every name taken out as the one quoted identifier it must be, nothing
            // of them is left.
            let mut bare = q.clone();
            for name in [evil, &col, "q;", "p\"", "s'; DELETE FROM canary; --"] {
                bare = bare.replace(&format!("\"{}\"", name.replace('"', "\"\"")), "");
            }
            assert!(!bare.contains("canary") && !bare.contains(';'), "{q}");
            assert!(crate::catalog::parse::one_statement(q).is_ok(), "{q}");
        }
        // A type name that is more than a type never becomes SQL.
        for ty in [
            "integer; DROP TABLE canary",
            "integer) FROM canary --",
            "int\n",
        ] {
            assert!(converts(&t, &info, "c", None, ty).is_none(), "{ty}");
        }
        // Nor does an expression that is more than one expression, or not as the deparser
        // writes it.
        for expr in [
            "x > 0) OR (true",
            "x > 0; DROP TABLE canary",
            "x > 0 -- canary",
            "true) FROM canary --",
            "x>0",
        ] {
            assert!(violations(&t, &info, expr, Scope::Own).is_none(), "{expr}");
            assert!(
                domain_violations(&t, &info, "c", Some(expr)).is_none(),
                "{expr}"
            );
        }
    }

    #[test]
    fn shapes() {
        let t = rel("public", "Orders");
        let plain = RelInfo {
            primary_key: vec!["id".into()],
            ..RelInfo::default()
        };
        let q = nulls(&t, &plain, "email");
        assert_eq!(
            q.examples,
            "SELECT left(x.id::text, 60) FROM public.\"Orders\" x WHERE x.email IS NULL LIMIT 3"
        );
        assert_eq!(
            q.count,
            "SELECT count(*) FROM (SELECT FROM public.\"Orders\" x WHERE x.email IS NULL LIMIT 1000001) s"
        );
        assert_eq!(q.label, "id=");
        let d = duplicates(&t, &plain, &["a".into(), "b".into()], false);
        assert_eq!(
            d.examples,
            "SELECT left(ROW(x.a, x.b)::text, 60) FROM ONLY public.\"Orders\" x WHERE x.a IS NOT NULL AND x.b IS NOT NULL GROUP BY x.a, x.b HAVING count(*) > 1 LIMIT 3"
        );
        let partitioned = RelInfo {
            partitioned: true,
            ..RelInfo::default()
        };
        let o = orphans(
            &t,
            &partitioned,
            &["p_id".into()],
            Some((&rel("public", "p"), &plain)),
            &["id".into()],
            false,
        );
        assert_eq!(
            o.examples,
            "SELECT left(x.p_id::text, 60) FROM public.\"Orders\" x WHERE (x.p_id IS NOT NULL AND NOT EXISTS (SELECT FROM ONLY public.p p WHERE p.id = x.p_id)) LIMIT 3"
        );
        assert_eq!(
            converts(&t, &plain, "v", None, "character varying(3)").unwrap(),
            "SELECT count((x.v)::character varying(3)) FROM public.\"Orders\" x"
        );
        // Enum to enum goes through text, as the step does: the probe casts the same way.
        assert_eq!(
            converts(&t, &plain, "v", Some("text"), "public.mood").unwrap(),
            "SELECT count((x.v)::text::public.mood) FROM public.\"Orders\" x"
        );
        assert!(converts(&t, &plain, "v", Some("text; DROP"), "public.mood").is_none());
        let v = violations(&t, &plain, "qty >= 0", Scope::WithChildren).unwrap();
        assert_eq!(
            v.examples,
            "SELECT left(x.id::text, 60) FROM public.\"Orders\" x WHERE NOT (qty >= 0) LIMIT 3"
        );
        // VALUE is the subquery's one column: the table's own `value` cannot be it.
        let d = domain_violations(&t, &plain, "value", Some("value > 0")).unwrap();
        assert_eq!(
            d.examples,
            "SELECT v.k FROM (SELECT x.value AS value, left(x.id::text, 60) AS k FROM ONLY public.\"Orders\" x) v WHERE NOT (value > 0) LIMIT 3"
        );
        assert_eq!(
            domain_violations(&t, &plain, "c", None).unwrap().count,
            "SELECT count(*) FROM (SELECT FROM (SELECT x.c AS value, left(x.id::text, 60) AS k FROM ONLY public.\"Orders\" x) v WHERE v.value IS NULL LIMIT 1000001) s"
        );
        assert_eq!(
            holding_labels(&t, &plain, "m", true).examples,
            "SELECT left(x.id::text, 60) FROM public.\"Orders\" x WHERE x.m::text[] && $1::text[] LIMIT 3"
        );
    }
}
