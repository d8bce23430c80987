//! What the same schema looks like on different server majors, where the difference is only in
//! how the server prints it back (pg_get_function_arguments, range type defaults, NOT NULL
//! constraint names). Used to read both sides the same way; see also `view`.

use super::parse::qualified;
use regex::Regex;
use std::borrow::Cow;
use std::sync::OnceLock;

/// From 14 on, servers print a procedure's arguments with their mode, `IN` included
/// (`note(IN m text)`); 13 prints `note(m text)`. IN is the default, so it is left out
/// everywhere: in CREATE PROCEDURE and in the ALTER/COMMENT/GRANT statements naming one.
pub fn procedure_without_in(stmt: &str) -> Option<String> {
    let at = stmt.find("PROCEDURE ")?;
    let open = at + stmt[at..].find('(')?;
    let bytes = stmt.as_bytes();
    let mut out = String::with_capacity(stmt.len());
    out.push_str(&stmt[..=open]);
    let (mut depth, mut i, mut changed) = (1usize, open + 1, false);
    let mut arg_start = true;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
        } else if c == b'"' || c == b'\'' {
            quote = Some(c);
        } else if c == b'(' {
            depth += 1;
        } else if c == b')' {
            depth -= 1;
            if depth == 0 {
                out.push_str(&stmt[i..]);
                return changed.then_some(out);
            }
        } else if depth == 1 && c == b',' {
            arg_start = true;
            out.push(',');
            i += 1;
            continue;
        }
        if arg_start && c != b' ' {
            arg_start = false;
            if quote.is_none() && stmt[i..].starts_with("IN ") {
                i += 3;
                changed = true;
                continue;
            }
        }
        // Copy one whole character (names may hold any UTF-8).
        let len = stmt[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&stmt[i..i + len]);
        i += len;
    }
    None
}

/// From 14 on, pg_dump prints a range type's multirange type name; when it is the name the
/// server would choose anyway (`floatrange` -> `floatmultirange`, else `<name>_multirange`, in
/// the same schema), it says nothing and a 13 server refuses it: it is left out.
pub fn range_without_default_multirange(stmt: &str, schema: &str, name: &str) -> Option<String> {
    if !stmt.starts_with("CREATE TYPE ") || !stmt.contains(" AS RANGE (") {
        return None;
    }
    let default = match name.find("range") {
        Some(_) => name.replacen("range", "multirange", 1),
        None => format!("{name}_multirange"),
    };
    let item = format!("multirange_type_name = {}", qualified(schema, &default));
    if let Some(i) = stmt.find(&format!("{item},\n")) {
        // `    item,\n` in the middle: drop the line.
        let line_start = stmt[..i].rfind('\n').map_or(0, |n| n + 1);
        let end = i + item.len() + 2;
        return Some(format!("{}{}", &stmt[..line_start], &stmt[end..]));
    }
    let i = stmt.find(&format!("{item}\n"))?;
    // The last item: drop it and the comma that ends the item before it.
    let before = stmt[..i].trim_end_matches([' ', '\n']);
    let before = before.strip_suffix(',')?;
    Some(format!("{before}\n{}", &stmt[i + item.len() + 1..]))
}

fn not_null_name_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"CONSTRAINT (?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*) NOT NULL"#).unwrap()
    })
}

/// From 18 on, NOT NULL constraints have names, and pg_dump prints one that is not the default
/// (`id integer CONSTRAINT events_id_not_null NOT NULL` on a partition, whose constraint comes
/// from its parent). Before 18 they have none: comparing across that boundary, names are left out.
pub fn without_not_null_names(stmt: &str) -> Cow<'_, str> {
    not_null_name_re().replace_all(stmt, "NOT NULL")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procedure_argument_modes() {
        assert_eq!(
            procedure_without_in("CREATE PROCEDURE public.note(IN m text, INOUT n integer, IN \"IN x\" text DEFAULT 'IN ')\n    LANGUAGE sql").as_deref(),
            Some("CREATE PROCEDURE public.note(m text, INOUT n integer, \"IN x\" text DEFAULT 'IN ')\n    LANGUAGE sql")
        );
        assert_eq!(
            procedure_without_in("ALTER PROCEDURE public.p(IN a numeric(10,2)) OWNER TO r")
                .as_deref(),
            Some("ALTER PROCEDURE public.p(a numeric(10,2)) OWNER TO r")
        );
        assert_eq!(
            procedure_without_in("CREATE PROCEDURE public.p(m text)"),
            None
        );
        assert_eq!(procedure_without_in("ALTER TABLE t OWNER TO r"), None);
    }

    #[test]
    fn default_multirange_names_go() {
        let s = "CREATE TYPE public.floatrange AS RANGE (\n    subtype = double precision,\n    multirange_type_name = public.floatmultirange,\n    subtype_diff = float8mi\n)";
        assert_eq!(
            range_without_default_multirange(s, "public", "floatrange").as_deref(),
            Some("CREATE TYPE public.floatrange AS RANGE (\n    subtype = double precision,\n    subtype_diff = float8mi\n)")
        );
        let last = "CREATE TYPE public.span AS RANGE (\n    subtype = integer,\n    multirange_type_name = public.span_multirange\n)";
        assert_eq!(
            range_without_default_multirange(last, "public", "span").as_deref(),
            Some("CREATE TYPE public.span AS RANGE (\n    subtype = integer\n)")
        );
        let custom = s.replace("public.floatmultirange", "public.floats");
        assert_eq!(
            range_without_default_multirange(&custom, "public", "floatrange"),
            None
        );
    }

    #[test]
    fn not_null_names() {
        assert_eq!(
            without_not_null_names("    id integer CONSTRAINT events_id_not_null NOT NULL,\n    \"A\" text CONSTRAINT \"x y\" NOT NULL"),
            "    id integer NOT NULL,\n    \"A\" text NOT NULL"
        );
    }
}
