//! Syntax that only newer PostgreSQL majors accept. A step whose SQL uses a feature TARGET's
//! server lacks is never emitted: the plan reports it as unsupported on that target, with the
//! feature and the major that introduced it, so the gap is seen before anything runs.
//!
//! Only constructs that pg_dump writes for a schema and that an older server rejects (or would
//! silently drop) are listed; each is recognised from tokens, never from raw text, so names and
//! string literals that happen to spell a keyword do not count.

use crate::catalog::parse::{matching_paren, tokens, Tok};

/// The newest-major feature a statement (or several) needs: (major, what it is).
pub fn needs(sql: &str) -> Option<(u32, &'static str)> {
    let toks = tokens(sql).ok()?;
    let w = |i: usize, word: &str| toks.get(i).is_some_and(|t| t.is_word(sql, word));
    let p = |i: usize, c: char| toks.get(i).is_some_and(|t| t.is_punct(c));
    let mut found: Option<(u32, &'static str)> = None;
    let mut note = |major: u32, what: &'static str| {
        if found.is_none_or(|(m, _)| major > m) {
            found = Some((major, what));
        }
    };
    for i in 0..toks.len() {
        if w(i, "NULLS") && w(i + 1, "NOT") && w(i + 2, "DISTINCT") {
            note(15, "UNIQUE NULLS NOT DISTINCT");
        }
        if w(i, "WITHOUT") && w(i + 1, "OVERLAPS") {
            note(18, "a temporal key (WITHOUT OVERLAPS)");
        }
        if w(i, "PERIOD")
            && i > 0
            && (p(i - 1, '(') || p(i - 1, ','))
            && (1..i).any(|k| w(k - 1, "FOREIGN") && w(k, "KEY"))
        {
            note(18, "a temporal foreign key (PERIOD)");
        }
        if w(i, "NOT") && w(i + 1, "ENFORCED") {
            note(18, "a NOT ENFORCED constraint");
        }
        if w(i, "BEGIN") && w(i + 1, "ATOMIC") {
            note(14, "a SQL-standard function body (BEGIN ATOMIC)");
        }
        if w(i, "RETURN")
            && is_function_head(sql, &toks)
            && toks[..i].iter().any(|t| t.is_word(sql, "LANGUAGE"))
        {
            note(14, "a SQL-standard function body (RETURN)");
        }
        if (w(i, "DELETE") || w(i, "UPDATE"))
            && i > 0
            && w(i - 1, "ON")
            && w(i + 1, "SET")
            && (w(i + 2, "NULL") || w(i + 2, "DEFAULT"))
            && p(i + 3, '(')
        {
            note(15, "ON DELETE SET NULL/DEFAULT with a column list");
        }
        if (w(0, "CREATE") || w(0, "ALTER"))
            && w(1, "PUBLICATION")
            && w(i, "TABLES")
            && w(i + 1, "IN")
            && w(i + 2, "SCHEMA")
        {
            note(15, "a publication of all tables in a schema");
        }
        if matches!(&toks[i].kind, crate::catalog::parse::TokKind::Ident(s) if s == "multirange_type_name")
        {
            note(14, "a range type's multirange type name");
        }
        if w(i, "ADD") && w(i + 1, "CONSTRAINT") && w(i + 3, "NOT") && w(i + 4, "NULL") {
            note(18, "a NOT NULL table constraint");
        }
        if matches!(&toks[i].kind, crate::catalog::parse::TokKind::Ident(s) if s == "security_invoker")
        {
            note(15, "a security_invoker view");
        }
        if w(i, "GENERATED") && w(i + 1, "ALWAYS") && w(i + 2, "AS") && p(i + 3, '(') {
            let close = matching_paren(&toks, i + 3);
            if close.is_some_and(|c| !w(c + 1, "STORED")) {
                note(18, "a virtual generated column");
            }
        }
    }
    found
}

/// Whether the statement is `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
fn is_function_head(sql: &str, toks: &[Tok]) -> bool {
    let words: Vec<&Tok> = toks.iter().take(4).collect();
    words.first().is_some_and(|t| t.is_word(sql, "CREATE"))
        && words
            .iter()
            .any(|t| t.is_word(sql, "FUNCTION") || t.is_word(sql, "PROCEDURE"))
}

#[cfg(test)]
mod tests {
    use super::needs;

    #[test]
    fn newer_syntax_is_recognised_with_its_major() {
        let cases = [
            ("ALTER TABLE ONLY public.t ADD CONSTRAINT u UNIQUE NULLS NOT DISTINCT (a)", 15),
            ("CREATE TABLE public.t (\n    a integer,\n    b integer GENERATED ALWAYS AS ((a * 2))\n)", 18),
            ("ALTER TABLE ONLY public.t ADD CONSTRAINT k PRIMARY KEY (id, during WITHOUT OVERLAPS)", 18),
            ("ALTER TABLE public.t ADD CONSTRAINT c CHECK ((a > 0)) NOT ENFORCED", 18),
            ("ALTER TABLE ONLY public.c ADD CONSTRAINT f FOREIGN KEY (id, PERIOD during) REFERENCES public.p(id, PERIOD during)", 18),
            ("CREATE FUNCTION public.f(a integer) RETURNS integer\n    LANGUAGE sql\n    BEGIN ATOMIC\n SELECT (a + 1);\nEND", 14),
            ("CREATE FUNCTION public.f(a integer) RETURNS integer\n    LANGUAGE sql\n    RETURN (a + 1)", 14),
            ("ALTER TABLE ONLY public.c ADD CONSTRAINT f FOREIGN KEY (a, b) REFERENCES public.p(a, b) ON DELETE SET NULL (b)", 15),
            ("CREATE PUBLICATION p FOR TABLES IN SCHEMA public", 15),
            ("CREATE VIEW public.v WITH (security_invoker='true') AS\n SELECT 1", 15),
            ("CREATE TYPE public.r AS RANGE (\n    subtype = integer,\n    multirange_type_name = public.rs\n)", 14),
            ("ALTER TABLE public.t ADD CONSTRAINT t_a_nn NOT NULL a", 18),
        ];
        for (sql, major) in cases {
            assert_eq!(needs(sql).map(|(m, _)| m), Some(major), "{sql}");
        }
    }

    #[test]
    fn look_alikes_are_not_features() {
        for sql in [
            "CREATE TABLE public.t (\n    a integer,\n    b integer GENERATED ALWAYS AS ((a * 2)) STORED\n)",
            "CREATE TABLE public.t (\n    id integer GENERATED ALWAYS AS IDENTITY\n)",
            "CREATE TABLE public.t (\n    \"nulls\" integer,\n    period integer\n)",
            "CREATE FUNCTION public.f() RETURNS integer\n    LANGUAGE plpgsql\n    AS $$ begin atomic; return 1; end $$",
            "COMMENT ON TABLE public.t IS 'UNIQUE NULLS NOT DISTINCT, NOT ENFORCED'",
            "ALTER TABLE ONLY public.c ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES public.p(a) ON DELETE SET NULL",
            "ALTER DEFAULT PRIVILEGES FOR ROLE r IN SCHEMA s GRANT SELECT ON TABLES TO x",
            "CREATE INDEX i ON public.t USING btree (a NULLS FIRST)",
        ] {
            assert_eq!(needs(sql), None, "{sql}");
        }
    }
}
