//! Composite types: attributes added, dropped or retyped with ALTER TYPE.

use super::{first_statements, Altered, Decision};
use crate::catalog::parse::quote_ident;
use crate::catalog::read::{composite_attributes, identity_of};
use crate::catalog::Block;
use crate::plan::{Ctx, Hazard, Op};

/// A changed composite type: attributes are added, dropped and retyped in place. Columns of
/// tables that use the type make PostgreSQL refuse some of these; apply then stops and rolls
/// back, naming the column.
pub(super) fn composite_type(ctx: &Ctx, s: &Block, t: &Block) -> Decision {
    let Some((new, old)) = first_statements(s, t, composite_attributes) else {
        return Decision::Unsupported(
            "pgalign cannot change this type in place yet (enums, domains and composite types only; a range or base type needs rebuilding)".into(),
        );
    };
    let Some(id) = identity_of(s) else {
        return Decision::Unsupported("cannot read the type's name".into());
    };
    let mut sql = String::new();
    let mut hazards = vec![];
    for (name, _, _) in &old {
        if !new.iter().any(|(n, _, _)| n == name) {
            sql.push_str(&format!(
                "ALTER TYPE {id} DROP ATTRIBUTE {};\n",
                quote_ident(name)
            ));
            hazards.push(Hazard::DataLoss);
        }
    }
    for (name, text, ty) in &new {
        match old.iter().find(|(n, _, _)| n == name) {
            Some((_, o, _)) if o == text => {}
            Some(_) => {
                sql.push_str(&format!(
                    "ALTER TYPE {id} ALTER ATTRIBUTE {} TYPE {ty};\n",
                    quote_ident(name)
                ));
            }
            None => sql.push_str(&format!("ALTER TYPE {id} ADD ATTRIBUTE {text};\n")),
        }
    }
    let old_kept: Vec<&String> = old
        .iter()
        .map(|(n, _, _)| n)
        .filter(|n| new.iter().any(|(x, _, _)| x == *n))
        .collect();
    let new_kept: Vec<&String> = new
        .iter()
        .map(|(n, _, _)| n)
        .filter(|n| old.iter().any(|(x, _, _)| x == *n))
        .collect();
    let mut reason = "attributes differ".to_string();
    if old_kept != new_kept {
        reason.push_str("; their order differs too, which PostgreSQL cannot change in place (added attributes go last)");
    }
    Decision::alter(Altered::steps(vec![ctx.step(
        s,
        Op::Alter,
        &reason,
        sql,
        hazards,
    )]))
}
