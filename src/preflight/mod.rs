//! Preflight: read-only questions to TARGET's rows, asked before anything is locked, for the
//! steps that carry checks (`plan::preflight::Check`): the rows that would make a step fail
//! (NULLs under a new NOT NULL, duplicates under a new key, orphans under a new foreign key,
//! values a type change cannot convert) and the rows a drop loses.
//!
//! All of it runs in one `READ ONLY` transaction (started again after a query fails, never in
//! a subtransaction), under `SET LOCAL statement_timeout` (`--preflight-timeout`) and a short
//! `lock_timeout`: its queries take ACCESS SHARE, which still queues behind an ACCESS EXCLUSIVE
//! lock held elsewhere. A query that times out, waits too long for its lock or fails is a
//! finding, "not checked", never an error that stops the run.

mod conditions;
mod finding;
pub mod query;
mod sizes;

use finding::{estimate, one_line, plural, Counted};
pub use finding::{Finding, Outcome, Verdict};
use sizes::locked_relations;
pub use sizes::{has_impact, TableSize};

use crate::apply::connect::Target;
use crate::apply::pg_error_text;
use crate::catalog::{quote_ident, ObjectKind};
use crate::duration::Millis;
use crate::plan::preflight::{Check, Rel};
use crate::plan::{Plan, Step};
use query::{RelInfo, RowsWhere, Scope, CAP};
use std::collections::HashMap;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `statement_timeout` of each preflight query.
    pub timeout: Millis,
}

impl Options {
    /// How long a query waits for its ACCESS SHARE lock: 5 s at most, and less than the
    /// statement timeout (half of it), so that a lock wait is told as one.
    fn lock_timeout(&self) -> Millis {
        let half = Millis::from_ms((self.timeout.as_ms() / 2).max(1)).unwrap_or(Millis::ZERO);
        half.min(Millis::from_secs(5))
    }
}

/// Whether any step carries a check.
pub fn has_checks(plan: &Plan) -> bool {
    plan.steps.iter().any(|s| !s.preflight.is_empty())
}

/// Runs every check of the plan on TARGET's connection, in step order (none when `checks` is
/// false: `--no-preflight`), after looking up the sizes of the relations its steps lock.
pub async fn run(target: &Target, plan: &Plan, opts: &Options, checks: bool) -> Outcome {
    let mut s = Session {
        target,
        opts: *opts,
        open: false,
        lost: None,
        major: 0,
        tables: HashMap::new(),
        prepared: HashMap::new(),
    };
    let mut out = Outcome::default();
    let locked = locked_relations(plan);
    if !locked.is_empty() {
        match s.sizes(&locked).await {
            Ok(sizes) => out.sizes = sizes,
            Err(f) => out.sizes_not_read = Some(s.why(f, &locked[0])),
        }
    }
    let steps = if checks { &plan.steps[..] } else { &[] };
    // Every table the checks look at, in one query. Should it fail, each check asks for its own
    // and says why it could not.
    let mut looked_at: Vec<Rel> = steps
        .iter()
        .flat_map(|s| &s.preflight)
        .flat_map(|c| match c {
            Check::DomainViolations { .. } | Check::NotChecked { .. } => [None, None],
            Check::Orphans { references, .. } => [Some(c.table()), Some(references)],
            _ => [Some(c.table()), None],
        })
        .flatten()
        .cloned()
        .collect();
    looked_at.sort_by(|a, b| (&a.schema, &a.name).cmp(&(&b.schema, &b.name)));
    looked_at.dedup();
    if !looked_at.is_empty() {
        let _ = s.look_up(&looked_at).await;
    }
    let total = steps.iter().map(|s| s.preflight.len()).sum();
    let mut stage = (total > 0).then(|| crate::progress::counted("preflight", total));
    for (i, step) in steps.iter().enumerate() {
        for check in &step.preflight {
            out.checks += 1;
            let started = std::time::Instant::now();
            if let Some(p) = &stage {
                p.at(&format!(
                    "step {} ({} {})",
                    i + 1,
                    step.op.name(),
                    step.object
                ));
            }
            let types_change_before = plan.steps[..i]
                .iter()
                .any(|p| matches!(p.kind, ObjectKind::Type | ObjectKind::Domain));
            let at = At {
                index: i,
                step,
                table: check.table(),
                types_change_before,
            };
            let found = match s.check(&at, check).await {
                Ok(f) => f,
                Err(why) => Some(at.finding(Verdict::NotChecked, None, why)),
            };
            if let Some(p) = &mut stage {
                let said = found
                    .as_ref()
                    .map_or_else(|| format!("step {}: nothing found", i + 1), |f| f.line());
                p.item(&said, started.elapsed());
            }
            out.findings.extend(found);
        }
    }
    s.close().await;
    if let Some(p) = stage {
        p.done();
    }
    out
}

/// Why a query gave no answer.
enum Fail {
    /// The server refused or stopped it.
    Pg(tokio_postgres::Error),
    /// The connection is gone: nothing more can be checked.
    Lost(String),
}

/// The step a check belongs to.
struct At<'a> {
    index: usize,
    step: &'a Step,
    table: &'a Rel,
    types_change_before: bool,
}

impl At<'_> {
    fn finding(&self, verdict: Verdict, counted: Option<Counted>, message: String) -> Finding {
        let (count, approximate, examples) = match counted {
            Some(c) => (Some(c.n), c.approximate, c.examples),
            None => (None, false, Vec::new()),
        };
        Finding {
            step: self.index + 1,
            op: self.step.op.name().to_string(),
            object: self.step.object.clone(),
            table: self.table.display(),
            verdict,
            count,
            approximate,
            examples,
            message,
        }
    }
}

struct Session<'a> {
    target: &'a Target,
    opts: Options,
    /// Whether the read-only transaction is open.
    open: bool,
    lost: Option<String>,
    /// The server's major version (16 and later have `pg_input_is_valid`).
    major: u32,
    /// Tables looked up so far: None when TARGET has no such table.
    tables: HashMap<(String, String), Option<RelInfo>>,
    /// Statements with parameters, prepared once on this connection.
    prepared: HashMap<String, tokio_postgres::Statement>,
}

impl Session<'_> {
    /// Opens the read-only transaction with its limits, unless it is open.
    async fn begin(&mut self) -> Result<(), Fail> {
        if let Some(why) = &self.lost {
            return Err(Fail::Lost(why.clone()));
        }
        if self.open {
            return Ok(());
        }
        // Rendered from typed durations (DESIGN rule 13); search_path as pg_dump's scripts,
        // whose type names the checks use.
        let sql = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\nSET LOCAL statement_timeout = '{}';\nSET LOCAL lock_timeout = '{}';\nSET LOCAL search_path = '';\n",
            self.opts.timeout,
            self.opts.lock_timeout()
        );
        let client = &self.target.client;
        match client.batch_execute(&sql).await {
            Ok(()) => self.open = true,
            Err(e) => return Err(self.failed(e).await),
        }
        if self.major == 0 {
            let version = client
                .query_one(
                    "SELECT current_setting('server_version_num')::int / 10000",
                    &[],
                )
                .await;
            match version {
                Ok(r) => self.major = r.try_get::<_, i32>(0).unwrap_or(0).max(0) as u32,
                Err(e) => return Err(self.failed(e).await),
            }
        }
        Ok(())
    }

    /// After an error: the transaction is rolled back (and opened again by the next query).
    async fn failed(&mut self, e: tokio_postgres::Error) -> Fail {
        if e.is_closed() {
            let why = format!("the connection to TARGET was lost ({})", pg_error_text(&e));
            self.lost = Some(why.clone());
            return Fail::Lost(why);
        }
        if self.open {
            let _ = self.target.client.batch_execute("ROLLBACK").await;
            self.open = false;
        }
        Fail::Pg(e)
    }

    async fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, Fail> {
        self.begin().await?;
        let client = &self.target.client;
        // `query` prepares, then runs: two round trips a query. Without parameters the text
        // goes with its execution in one; with them, each text is prepared once (the table
        // lookup runs for every table checked).
        let rows = if params.is_empty() {
            client.query_typed(sql, &[]).await
        } else if let Some(p) = self.prepared.get(sql) {
            client.query(p, params).await
        } else {
            match client.prepare(sql).await {
                Ok(p) => {
                    let rows = client.query(&p, params).await;
                    self.prepared.insert(sql.to_string(), p);
                    rows
                }
                Err(e) => Err(e),
            }
        };
        match rows {
            Ok(rows) => Ok(rows),
            Err(e) => Err(self.failed(e).await),
        }
    }

    async fn close(&mut self) {
        if self.open {
            let _ = self.target.client.batch_execute("ROLLBACK").await;
            self.open = false;
        }
    }

    /// The table's facts, looked up once; None when TARGET has no such table.
    async fn info(&mut self, t: &Rel) -> Result<Option<RelInfo>, Fail> {
        let key = (t.schema.clone(), t.name.clone());
        if !self.tables.contains_key(&key) {
            self.look_up(std::slice::from_ref(t)).await?;
        }
        Ok(self.tables.get(&key).cloned().flatten())
    }

    /// These tables' facts, in one query, remembered for `info` (None for those TARGET lacks).
    async fn look_up(&mut self, rels: &[Rel]) -> Result<(), Fail> {
        let schemas: Vec<&str> = rels.iter().map(|r| r.schema.as_str()).collect();
        let names: Vec<&str> = rels.iter().map(|r| r.name.as_str()).collect();
        let rows = self.query(query::REL_INFO, &[&schemas, &names]).await?;
        for r in &rows {
            let (Ok(schema), Ok(name)) = (r.try_get(0), r.try_get(1)) else {
                continue;
            };
            let info = RelInfo {
                partitioned: r.try_get(2).unwrap_or(false),
                estimate: r
                    .try_get::<_, Option<f64>>(3)
                    .ok()
                    .flatten()
                    .filter(|n| *n >= 0.0),
                primary_key: r.try_get(4).unwrap_or_default(),
            };
            self.tables.insert((schema, name), Some(info));
        }
        for r in rels {
            self.tables
                .entry((r.schema.clone(), r.name.clone()))
                .or_insert(None);
        }
        Ok(())
    }

    /// The examples, then, when there are any, the count (see `RowsWhere`).
    async fn rows(
        &mut self,
        q: &RowsWhere,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Counted>, Fail> {
        let found = self.query(&q.examples, params).await?;
        if found.is_empty() {
            return Ok(None);
        }
        let examples = found
            .iter()
            .filter_map(|r| r.try_get::<_, Option<String>>(0).ok().flatten())
            .map(|v| one_line(&format!("{}{v}", q.label)))
            .collect();
        let rows = self.query(&q.count, params).await?;
        let n = rows
            .first()
            .and_then(|r| r.try_get::<_, i64>(0).ok())
            .unwrap_or(0)
            .max(0) as u64;
        Ok(Some(Counted {
            n,
            approximate: n > CAP,
            examples,
        }))
    }

    /// Why a query gave no answer, as a "not checked" reason.
    fn why(&self, f: Fail, table: &Rel) -> String {
        let e = match f {
            Fail::Lost(why) => return why,
            Fail::Pg(e) => e,
        };
        match e.code() {
            Some(c) if *c == SqlState::QUERY_CANCELED => format!(
                "timed out after {} (--preflight-timeout)",
                self.opts.timeout
            ),
            Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE => format!(
                "another session holds a lock on {} (or a table it refers to) that reading it waits for; ACCESS SHARE waited {}",
                table.display(),
                self.opts.lock_timeout()
            ),
            Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => {
                format!("no privilege to read it ({})", pg_error_text(&e))
            }
            _ => format!("the query failed: {}", pg_error_text(&e)),
        }
    }

    /// One check: None when it found nothing to say; Err, why it was not checked.
    async fn check(&mut self, at: &At<'_>, check: &Check) -> Result<Option<Finding>, String> {
        let table = check.table();
        match check {
            Check::NotChecked { why, .. } => {
                return Ok(Some(at.finding(Verdict::NotChecked, None, why.clone())))
            }
            // A domain is no table: its columns are looked up by the check itself.
            Check::DomainViolations {
                domain,
                constraint,
                expr,
            } => {
                return self
                    .domain_violations(at, domain, constraint.as_deref(), expr.as_deref())
                    .await
            }
            _ => {}
        }
        let info = match self.info(table).await {
            Ok(Some(i)) => i,
            Ok(None) => return Err(format!("TARGET has no table {}", table.display())),
            Err(f) => return Err(self.why(f, table)),
        };
        let result = match check {
            Check::Nulls { column, .. } => self.nulls(at, &info, column).await,
            Check::AnyRow { column, .. } => self.any_row(at, &info, column).await,
            Check::Duplicates {
                columns,
                primary_key,
                nulls_not_distinct,
                ..
            } => {
                self.duplicates(at, &info, columns, *primary_key, *nulls_not_distinct)
                    .await
            }
            Check::Orphans {
                columns,
                references,
                ref_columns,
                match_full,
                references_emptied,
                ..
            } => {
                let parent = match self.info(references).await {
                    Ok(p) => p.filter(|_| !references_emptied),
                    Err(f) => return Err(self.why(f, references)),
                };
                let parent = parent.as_ref().map(|p| (references, p));
                let q = query::orphans(table, &info, columns, parent, ref_columns, *match_full);
                let there = if *references_emptied {
                    " (the plan drops it and creates it again, empty)"
                } else if parent.is_none() {
                    " (the plan creates it)"
                } else {
                    ""
                };
                self.orphans(at, &q, columns, (references, there), ref_columns)
                    .await
            }
            Check::Converts {
                column,
                to_type,
                via,
                ..
            } => {
                return self
                    .converts(at, &info, column, via.as_deref(), to_type)
                    .await
            }
            Check::Truncates { column, length, .. } => {
                self.truncates(at, &info, column, *length).await
            }
            Check::RowsLost { column, .. } => self.rows_lost(at, &info, column.as_deref()).await,
            Check::Violations {
                constraint,
                expr,
                no_inherit,
                ..
            } => {
                return self
                    .violations(at, &info, constraint, expr, *no_inherit)
                    .await
            }
            Check::RemovedLabels {
                column,
                labels,
                array,
                ..
            } => self.removed_labels(at, &info, column, labels, *array).await,
            Check::NotChecked { .. } | Check::DomainViolations { .. } => Ok(None),
        };
        result.map_err(|f| self.why(f, table))
    }

    async fn nulls(
        &mut self,
        at: &At<'_>,
        info: &RelInfo,
        column: &str,
    ) -> Result<Option<Finding>, Fail> {
        let Some(n) = self
            .rows(&query::nulls(at.table, info, column), &[])
            .await?
        else {
            return Ok(None);
        };
        let msg = format!(
            "SET NOT NULL on column {} meets {} with NULL{}: fill them, or drop the NOT NULL from SOURCE",
            quote_ident(column),
            plural(&n, "row", "rows"),
            n.examples()
        );
        Ok(Some(at.finding(Verdict::WillFail, Some(n), msg)))
    }

    async fn any_row(
        &mut self,
        at: &At<'_>,
        info: &RelInfo,
        column: &str,
    ) -> Result<Option<Finding>, Fail> {
        let q = query::any_row(at.table, info, Scope::WithChildren);
        let Some(mut n) = self.rows(&q, &[]).await? else {
            return Ok(None);
        };
        n.examples.clear();
        let msg = format!(
            "ADD COLUMN {} NOT NULL without a default, on a table with {}: give the column a default in SOURCE, or add it nullable, fill it, then make it NOT NULL",
            quote_ident(column),
            plural(&n, "row", "rows")
        );
        Ok(Some(at.finding(Verdict::WillFail, Some(n), msg)))
    }

    async fn duplicates(
        &mut self,
        at: &At<'_>,
        info: &RelInfo,
        columns: &[String],
        primary_key: bool,
        nulls_equal: bool,
    ) -> Result<Option<Finding>, Fail> {
        let t = at.table;
        let groups = self
            .rows(&query::duplicates(t, info, columns, nulls_equal), &[])
            .await?;
        let nulls = if primary_key {
            self.rows(&query::null_keys(t, info, columns), &[]).await?
        } else {
            None
        };
        let key = format!(
            "{} ({})",
            if primary_key { "PRIMARY KEY" } else { "UNIQUE" },
            columns
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut parts = Vec::new();
        if let Some(g) = &groups {
            parts.push(format!(
                "{} of rows sharing a key{}",
                plural(g, "group", "groups"),
                g.examples()
            ));
        }
        if let Some(n) = &nulls {
            parts.push(format!(
                "{} with a NULL in the key{}",
                plural(n, "row", "rows"),
                n.examples()
            ));
        }
        let Some(first) = groups.or(nulls) else {
            return Ok(None);
        };
        let msg = format!(
            "{key} meets {}: remove or change those rows, or change the key in SOURCE",
            parts.join(" and ")
        );
        Ok(Some(at.finding(Verdict::WillFail, Some(first), msg)))
    }

    async fn orphans(
        &mut self,
        at: &At<'_>,
        q: &RowsWhere,
        columns: &[String],
        (references, there): (&Rel, &str),
        ref_columns: &[String],
    ) -> Result<Option<Finding>, Fail> {
        let Some(n) = self.rows(q, &[]).await? else {
            return Ok(None);
        };
        let list = |c: &[String]| {
            c.iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let msg = format!(
            "FOREIGN KEY ({}) REFERENCES {} ({}) meets {} whose key matches no row there{there}{}: delete or fix them, or add the rows they reference first",
            list(columns),
            references.display(),
            list(ref_columns),
            plural(&n, "row", "rows"),
            n.examples()
        );
        Ok(Some(at.finding(Verdict::WillFail, Some(n), msg)))
    }

    /// The conversion itself, run as the step runs it; when it fails on a value (and the server
    /// has `pg_input_is_valid`), an estimate of how many values fail.
    async fn converts(
        &mut self,
        at: &At<'_>,
        info: &RelInfo,
        column: &str,
        via: Option<&str>,
        to_type: &str,
    ) -> Result<Option<Finding>, String> {
        let t = at.table;
        let Some(probe) = query::converts(t, info, column, via, to_type) else {
            return Err(format!(
                "the new type of column {} is not read as one type name",
                quote_ident(column)
            ));
        };
        let e = match self.query(&probe, &[]).await {
            Ok(_) => return Ok(None),
            Err(Fail::Pg(e)) => e,
            Err(f) => return Err(self.why(f, t)),
        };
        let code = e.code().cloned();
        let server = pg_error_text(&e);
        let col = quote_ident(column);
        let verdict = if at.types_change_before {
            Verdict::MayFail
        } else {
            Verdict::WillFail
        };
        // A value the type refuses (class 22), or a domain's constraint it breaks (class 23).
        let data_error = code
            .as_ref()
            .is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("23"));
        if code == Some(SqlState::CANNOT_COERCE) {
            let msg = format!(
                "column {col} has no conversion to {to_type} ({server}): the step fails whatever the rows; change the column by hand, with a USING expression, before applying"
            );
            return Ok(Some(at.finding(verdict, None, msg)));
        }
        if code == Some(SqlState::UNDEFINED_OBJECT) {
            return Err(format!(
                "type {to_type} is not in TARGET yet (the plan creates it): {server}"
            ));
        }
        if !data_error {
            return Err(self.why(Fail::Pg(e), t));
        }
        let mut counted = None;
        if self.major >= 16 {
            let q = query::invalid_input(t, info, column);
            if let Ok(n) = self.rows(&q, &[&to_type]).await {
                counted = n.map(|mut n| {
                    n.approximate = true;
                    n
                });
            }
        }
        let how_many = match &counted {
            Some(n) => format!(
                "; {} do not read as {to_type}{}",
                plural(n, "value", "values"),
                n.examples()
            ),
            None => String::new(),
        };
        let msg = format!(
            "converting column {col} to {to_type} fails on a value ({server}){how_many}: fix those values, or change the column by hand with a USING expression that converts them"
        );
        Ok(Some(at.finding(verdict, counted, msg)))
    }

    async fn truncates(
        &mut self,
        at: &At<'_>,
        info: &RelInfo,
        column: &str,
        length: u32,
    ) -> Result<Option<Finding>, Fail> {
        let q = query::longer_than(at.table, info, column, length);
        let Some(n) = self.rows(&q, &[]).await? else {
            return Ok(None);
        };
        let msg = format!(
            "cuts {} of column {} to {length} characters{}",
            plural(&n, "value", "values"),
            quote_ident(column),
            n.examples()
        );
        Ok(Some(at.finding(Verdict::DataLoss, Some(n), msg)))
    }

    /// Rows a dropped table loses, or values a dropped column loses: counted up to CAP; for a
    /// table the statistics call larger than that, their estimate.
    async fn rows_lost(
        &mut self,
        at: &At<'_>,
        info: &RelInfo,
        column: Option<&str>,
    ) -> Result<Option<Finding>, Fail> {
        let large = info.estimate.filter(|n| *n > CAP as f64);
        let counted = match large {
            Some(est) => Some(Counted {
                n: est.round() as u64,
                approximate: true,
                examples: Vec::new(),
            }),
            None => {
                let q = match column {
                    Some(c) => query::values(at.table, info, c),
                    None => query::any_row(at.table, info, Scope::Own),
                };
                self.rows(&q, &[]).await?.map(|mut n| {
                    n.examples.clear();
                    n
                })
            }
        };
        let Some(n) = counted.filter(|n| n.n > 0) else {
            return Ok(None);
        };
        let msg = match (column, large.is_some()) {
            (None, _) => format!("drops {}", plural(&n, "row", "rows")),
            (Some(c), false) => format!(
                "drops column {} with {}",
                quote_ident(c),
                plural(&n, "value", "values")
            ),
            (Some(c), true) => format!(
                "drops column {} of a table of {} (estimated; its values were not counted)",
                quote_ident(c),
                plural(&n, "row", "rows")
            ),
        };
        Ok(Some(at.finding(Verdict::DataLoss, Some(n), msg)))
    }
}
