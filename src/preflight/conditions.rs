//! The checks of conditions on values: a table's new CHECK constraint, a domain's new
//! constraint or NOT NULL (over every column of the domain, found on TARGET), and the labels an
//! enum's rebuild drops.

use super::query::{self, RelInfo, Scope};
use super::{one_line, plural, At, Counted, Fail, Finding, Session, Verdict};
use crate::apply::pg_error_text;
use crate::catalog::{quote_ident, quote_literal};
use crate::plan::preflight::Rel;

/// Examples across a domain's columns: no more than the other checks show.
const EXAMPLES: usize = 3;

impl Session<'_> {
    /// A table's new CHECK: the rows where it is false, through the children the ADD reaches.
    pub(super) async fn violations(
        &mut self,
        at: &At<'_>,
        info: &RelInfo,
        constraint: &str,
        expr: &str,
        no_inherit: bool,
    ) -> Result<Option<Finding>, String> {
        let scope = if no_inherit {
            Scope::Own
        } else {
            Scope::WithChildren
        };
        let Some(q) = query::violations(at.table, info, expr, scope) else {
            return Err(NOT_ONE_EXPRESSION.to_string());
        };
        let what = format!("CHECK constraint {}", quote_ident(constraint));
        let n = match self.rows(&q, &[]).await {
            Ok(Some(n)) => n,
            Ok(None) => return Ok(None),
            Err(f) => return self.not_evaluated(at, &what, f, at.table),
        };
        let msg = format!(
            "{what} meets {} where it is false{}: fix them, or change the constraint in SOURCE",
            plural(&n, "row", "rows"),
            n.examples()
        );
        Ok(Some(at.finding(Verdict::WillFail, Some(n), msg)))
    }

    /// Every column of the domain on TARGET, each counted on its own: one finding for the
    /// step, with the sum.
    pub(super) async fn domain_violations(
        &mut self,
        at: &At<'_>,
        domain: &Rel,
        constraint: Option<&str>,
        expr: Option<&str>,
    ) -> Result<Option<Finding>, String> {
        if expr.is_some_and(|e| crate::catalog::rules::one_expression(e).is_none()) {
            return Err(NOT_ONE_EXPRESSION.to_string());
        }
        let what = match constraint {
            Some(c) => format!(
                "ADD CONSTRAINT {} on domain {}",
                quote_ident(c),
                domain.display()
            ),
            None => format!("SET NOT NULL on domain {}", domain.display()),
        };
        let rows = self
            .query(query::DOMAIN_COLUMNS, &[&domain.schema, &domain.name])
            .await
            .map_err(|f| self.why(f, domain))?;
        let mut columns = Vec::new();
        for r in &rows {
            let text = |i| r.try_get::<_, String>(i).unwrap_or_default();
            let table = Rel {
                schema: text(0),
                name: text(1),
            };
            columns.push((table, text(2), r.try_get::<_, bool>(3).unwrap_or(false)));
        }
        if let Some((table, column, _)) = columns.iter().find(|c| c.2) {
            let msg = format!(
                "{what} fails whatever the values: column {} of {} holds the domain inside an array, and PostgreSQL changes no constraint of a domain a column uses that way; change that column's type first, by hand",
                quote_ident(column),
                table.display()
            );
            return Ok(Some(at.finding(Verdict::WillFail, None, msg)));
        }
        let mut total = Counted {
            n: 0,
            approximate: false,
            examples: Vec::new(),
        };
        let mut parts = Vec::new();
        for (table, column) in columns.into_iter().map(|(t, c, _)| (t, c)) {
            // A materialized view is no table REL_INFO finds: looked at without a key.
            let info = self
                .info(&table)
                .await
                .map_err(|f| self.why(f, &table))?
                .unwrap_or_default();
            let Some(q) = query::domain_violations(&table, &info, &column, expr) else {
                return Err(NOT_ONE_EXPRESSION.to_string());
            };
            let n = match self.rows(&q, &[]).await {
                Ok(Some(n)) => n,
                Ok(None) => continue,
                Err(f) => return self.not_evaluated(at, &what, f, &table),
            };
            parts.push(format!(
                "{} in column {} of {}",
                n.shown(),
                quote_ident(&column),
                table.display()
            ));
            total.n += n.n;
            total.approximate |= n.approximate;
            for e in n.examples {
                if total.examples.len() < EXAMPLES {
                    total
                        .examples
                        .push(one_line(&format!("{} {e}", table.display())));
                }
            }
        }
        if parts.is_empty() {
            return Ok(None);
        }
        let (values, todo) = match expr {
            Some(_) => (
                plural(&total, "value that breaks it", "values that break it"),
                "fix them, or change the constraint in SOURCE",
            ),
            None => (
                plural(&total, "NULL value", "NULL values"),
                "fill them, or drop the NOT NULL from SOURCE",
            ),
        };
        let examples = if total.examples.is_empty() {
            String::new()
        } else {
            format!("; e.g. {}", total.examples.join(", "))
        };
        let msg = format!(
            "{what} meets {values} ({}{examples}): {todo}",
            parts.join(", ")
        );
        Ok(Some(at.finding(Verdict::WillFail, Some(total), msg)))
    }

    /// An enum rebuilt without `labels`: the rows of one of its columns that hold one.
    pub(super) async fn removed_labels(
        &mut self,
        at: &At<'_>,
        info: &RelInfo,
        column: &str,
        labels: &[String],
        array: bool,
    ) -> Result<Option<Finding>, Fail> {
        // Its partitions are columns of the rebuild, and checks, of their own.
        if info.partitioned {
            return Ok(None);
        }
        let q = query::holding_labels(at.table, info, column, array);
        let Some(n) = self.rows(&q, &[&labels]).await? else {
            return Ok(None);
        };
        let shown: Vec<String> = labels.iter().map(|l| quote_literal(l)).collect();
        let msg = format!(
            "column {} of {} holds {} with a label SOURCE's enum no longer has ({}){}: change those rows first, or keep the labels in SOURCE",
            quote_ident(column),
            at.table.display(),
            plural(&n, "row", "rows"),
            shown.join(", "),
            n.examples()
        );
        Ok(Some(at.finding(Verdict::WillFail, Some(n), msg)))
    }
}

impl Session<'_> {
    /// A condition's query that failed while evaluating it. On a value (a data exception:
    /// division by zero, a cast that does not read), the step fails the same way, or may, when
    /// an earlier step changes a type (TARGET as it is is not what the step meets); on a type
    /// or function TARGET lacks (the plan creates it), not checked. Anything else is the
    /// query's failure.
    fn not_evaluated(
        &self,
        at: &At<'_>,
        what: &str,
        f: Fail,
        table: &Rel,
    ) -> Result<Option<Finding>, String> {
        let e = match f {
            Fail::Pg(e) => e,
            f => return Err(self.why(f, table)),
        };
        let code = e.code().map(|c| c.code()).unwrap_or("");
        let server = pg_error_text(&e);
        if matches!(code, "42704" | "42883" | "42804" | "42846" | "42725") {
            return Err(format!(
                "{what} does not evaluate on TARGET as it is ({server}): it uses what the plan creates or changes"
            ));
        }
        if !code.starts_with("22") {
            return Err(self.why(Fail::Pg(e), table));
        }
        let (verdict, after) = if at.types_change_before {
            (
                Verdict::MayFail,
                "; an earlier step of the plan changes a type, and this is TARGET as it is",
            )
        } else {
            (Verdict::WillFail, "")
        };
        let msg = format!(
            "{what} fails on a row as it is evaluated ({server}): the step fails the same way{after}; fix that row, or change the constraint in SOURCE"
        );
        Ok(Some(at.finding(verdict, None, msg)))
    }
}

const NOT_ONE_EXPRESSION: &str =
    "the constraint's expression does not read back as one expression: it is not evaluated";
