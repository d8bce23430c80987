//! Domains: default, NOT NULL and named CHECK constraints change in place; a new base type
//! rebuilds the domain.

use super::{first_statements, Altered, Decision};
use crate::catalog::parse::unquote_ident;
use crate::catalog::read::{identity_of, parse_domain};
use crate::catalog::Block;
use crate::plan::preflight::{self, Check, Rel};
use crate::plan::{Ctx, Hazard, Op};

/// A changed domain: constraints, default and NOT NULL change in place; a new base type or
/// collation needs the domain rebuilt, which pgalign does not do yet.
pub(super) fn domain(ctx: &Ctx, s: &Block, t: &Block) -> Decision {
    let Some((new, old)) = first_statements(s, t, parse_domain) else {
        return Decision::Unsupported("cannot read the domain definition".into());
    };
    if new.base != old.base {
        return Decision::Unsupported(format!(
            "the domain's base type or collation changed ({} -> {}): that needs the domain rebuilt, which pgalign does not do yet",
            old.base, new.base
        ));
    }
    let Some(id) = identity_of(s) else {
        return Decision::Unsupported("cannot read the domain's name".into());
    };
    // The domain, as preflight looks it up on TARGET (the key names it unquoted).
    let domain = || Rel {
        schema: s.key.schema.to_string(),
        name: s.key.name.to_string(),
    };
    let mut steps = Vec::new();
    for (name, text) in &old.checks {
        if !new.checks.iter().any(|(n, x)| n == name && x == text) {
            steps.push(ctx.step(
                s,
                Op::Alter,
                &format!("constraint {name} not in source or differs"),
                format!("ALTER DOMAIN {id} DROP CONSTRAINT {name};\n"),
                vec![],
            ));
        }
    }
    if new.default != old.default {
        let sql = match &new.default {
            Some(d) => format!("ALTER DOMAIN {id} SET DEFAULT {d};\n"),
            None => format!("ALTER DOMAIN {id} DROP DEFAULT;\n"),
        };
        steps.push(ctx.step(s, Op::Alter, "default differs", sql, vec![]));
    }
    if new.not_null != old.not_null {
        let (sql, hz) = if new.not_null {
            (
                format!("ALTER DOMAIN {id} SET NOT NULL;\n"),
                vec![Hazard::ValidationScan],
            )
        } else {
            (format!("ALTER DOMAIN {id} DROP NOT NULL;\n"), vec![])
        };
        let mut step = ctx.step(s, Op::Alter, "NOT NULL differs", sql, hz);
        if new.not_null {
            step.preflight = vec![Check::DomainViolations {
                domain: domain(),
                constraint: None,
                expr: None,
            }];
        }
        steps.push(step);
    }
    for (name, text) in &new.checks {
        if !old.checks.iter().any(|(n, x)| n == name && x == text) {
            // Adding a CHECK to a domain checks every column that uses it.
            let mut step = ctx.step(
                s,
                Op::Alter,
                &format!("constraint {name} not in target or differs"),
                format!("ALTER DOMAIN {id} ADD {text};\n"),
                vec![Hazard::ValidationScan],
            );
            step.preflight = preflight::for_domain_check(s, domain(), &unquote_ident(name));
            steps.push(step);
        }
    }
    Decision::alter(Altered::steps(steps))
}
