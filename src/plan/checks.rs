//! The last look at each step before it is planned: SQL the server's grammar refuses, or syntax
//! TARGET's major lacks, becomes an unsupported change, never a step.

use super::{Step, Unsupported};

/// Steps are written by cutting and joining the dump's text. Where a definition is written in
/// a way pg_dump never writes (an edited dump) that can give SQL the server would refuse, or
/// read differently: every statement of every step is checked with the server's grammar, and a
/// step that fails is an unsupported entry, never a step.
pub(super) fn steps_that_parse(steps: Vec<Step>, out: &mut Vec<Unsupported>) -> Vec<Step> {
    let mut kept = Vec::with_capacity(steps.len());
    let errors =
        crate::threads::on_two_threads(&steps, |s| crate::catalog::parse::script_error(&s.sql));
    for (s, error) in steps.into_iter().zip(errors) {
        match error {
            Some(why) => out.push(Unsupported {
                object: s.object.clone(),
                reason: format!(
                    "pgalign could not write this change as SQL the server accepts ({why}); the definition is not written as pg_dump writes it: change it by hand"
                ),
                target_sql: None,
                source_sql: Some(s.sql),
            }),
            None => kept.push(s),
        }
    }
    kept
}

/// Steps whose SQL needs a newer major than TARGET's become unsupported entries: the server
/// would refuse them (or drop the clause), so they are reported before anything runs.
pub(super) fn without_newer_syntax(
    steps: Vec<Step>,
    major: u32,
    out: &mut Vec<Unsupported>,
) -> Vec<Step> {
    let mut kept = Vec::with_capacity(steps.len());
    let needs = crate::threads::on_two_threads(&steps, |s| crate::catalog::compat::needs(&s.sql));
    for (s, need) in steps.into_iter().zip(needs) {
        match need {
            Some((need, what)) if need > major => out.push(Unsupported {
                object: s.object.clone(),
                reason: format!("{what} needs PostgreSQL {need} or newer; TARGET runs {major}"),
                target_sql: None,
                source_sql: Some(s.sql),
            }),
            _ => kept.push(s),
        }
    }
    kept
}
