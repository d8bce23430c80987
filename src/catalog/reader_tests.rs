//! Tests of reading a dump's text by hand where a pattern used to: each against its pattern.

use super::*;

/// `split_owner_stmt` captures what its pattern captures: random statements built from
/// the pieces that matter (kinds, ` OWNER TO `, quotes, doubled quotes, spaces, newlines).
#[test]
fn owner_statements_read_like_the_pattern() {
    use proptest::prelude::*;
    let pieces = prop::sample::select(vec![
        "ALTER ",
        "TABLE",
        "OPERATOR",
        "OPERATOR CLASS",
        "MATERIALIZED VIEW",
        " ",
        " OWNER TO ",
        "OWNER TO",
        "\"",
        "\"\"",
        "r",
        "a.b",
        "f(integer)",
        "\n",
        "\u{a0}",
        "é",
        ";",
        "x y",
    ]);
    let words = || prop::collection::vec(pieces.clone(), 0..6).prop_map(|v| v.concat());
    // Mostly the shape pg_dump writes, with random words in each part.
    let texts = (
        prop::sample::select(vec!["ALTER ", "ALTER", "", "ALTER TABLE "]),
        prop::sample::select(vec!["TABLE ", "OPERATOR CLASS ", "OPERATOR ", "VIEW", "X "]),
        words(),
        prop::sample::select(vec![" OWNER TO ", "OWNER TO ", " "]),
        words(),
    )
        .prop_map(|(a, k, m, o, r)| format!("{a}{k}{m}{o}{r}"));
    let mut runner = crate::catalog::fixed_runner(30_000, 9);
    let read = std::cell::Cell::new(0);
    runner
        .run(&texts, |t| {
            let by_regex = owner_re().captures(&t).map(|c| {
                (
                    c[1].trim().to_string(),
                    c[2].trim().to_string(),
                    c[3].to_string(),
                )
            });
            let by_hand = split_owner_stmt(&t);
            if by_hand.is_some() {
                read.set(read.get() + 1);
            }
            prop_assert_eq!(by_hand, by_regex, "{:?}", t);
            Ok(())
        })
        .unwrap();
    assert!(
        read.get() > 500,
        "only {} statements were owner statements",
        read.get()
    );
    assert_eq!(
        split_owner_stmt("ALTER OPERATOR CLASS public.c USING btree OWNER TO \"Ro\"\"le\""),
        Some((
            "OPERATOR CLASS".into(),
            "public.c USING btree".into(),
            "\"Ro\"\"le\"".into()
        ))
    );
}

/// The byte loop finds the qualified names the pattern finds, in the same order.
#[test]
fn qualified_names_found_like_the_pattern() {
    use proptest::prelude::*;
    let pieces = prop::sample::select(vec![
        "a", "Z", "_", "1", "$", ".", "..", " ", "(", "é", "x.y", "s1.t_2", "9.a", "a.9", "$a.b",
        "a$.b", "\"", "\"q\".r", "::",
    ]);
    let texts = prop::collection::vec(pieces, 0..16).prop_map(|v| v.concat());
    let mut runner = crate::catalog::fixed_runner(30_000, 5);
    runner
        .run(&texts, |t| {
            let by_regex: Vec<&str> = crate::catalog::infer::qualified_name_re()
                .find_iter(&t)
                .map(|m| m.as_str())
                .collect();
            let mut by_hand = Vec::new();
            crate::catalog::infer::for_each_qualified_name(&t, |m| by_hand.push(m));
            prop_assert_eq!(by_hand, by_regex, "{:?}", t);
            Ok(())
        })
        .unwrap();
}

/// A name's pieces, hashed as the dependency map stores them, hash like the text `qualified`
/// builds and pg_dump prints (as a statement names it): random schemas and names that need
/// quotes, doubled quotes, keywords, or none.
#[test]
fn qualified_pieces_hash_like_the_qualified_text() {
    use crate::catalog::infer::NameHash;
    use crate::catalog::parse::qualified_pieces;
    use proptest::prelude::*;
    let pieces = prop::sample::select(vec![
        "a", "Z", "_", "1", "$", ".", " ", "é", "\"", "select", "user", "t", "x_y", "",
    ]);
    let names = || prop::collection::vec(pieces.clone(), 0..5).prop_map(|v| v.concat());
    let mut runner = crate::catalog::fixed_runner(20_000, 11);
    runner
        .run(&(names(), names()), |(schema, name)| {
            let text = qualified(&schema, &name);
            // The spelling, written out apart from the pieces: quoted when quote_ident quotes,
            // with inner quotes doubled.
            let q = |s: &str| {
                if quote_ident(s) == s {
                    s.to_string()
                } else {
                    format!("\"{}\"", s.replace('"', "\"\""))
                }
            };
            let spelled = if schema.is_empty() {
                q(&name)
            } else {
                format!("{}.{}", q(&schema), q(&name))
            };
            prop_assert_eq!(&text, &spelled);
            let mut built = String::new();
            qualified_pieces(&schema, &name, |p| built.push_str(p));
            prop_assert_eq!(&built, &text);
            let (mut whole, mut cut) = (NameHash::new(), NameHash::new());
            whole.write(&text);
            qualified_pieces(&schema, &name, |p| cut.write(p));
            prop_assert_eq!(whole.0, cut.0, "{:?}", text);
            Ok(())
        })
        .unwrap();
}
