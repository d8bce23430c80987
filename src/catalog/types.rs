//! What PostgreSQL can convert a column's values between, for `ALTER COLUMN ... TYPE ... USING
//! col::new`: the types as pg_dump prints them (`timestamp(3) without time zone`, `public.mood[]`),
//! enums known from the dump, built-in types by name. The rules (`USING` runs an explicit cast):
//!
//! - a cast listed in `pg_cast`, of any context, converts;
//! - so does I/O conversion to and from a string type (text, varchar, char, name), which
//!   PostgreSQL allows for every type as an explicit cast;
//! - nothing else does: an enum converts to nothing but a string type, and from nothing else, so
//!   enum to enum goes through text.
//!
//! Types this module does not know (domains, composite and range types, extension types,
//! built-ins left out of the list below) are left to the server: `Conversion::Cast`, as before.

/// How a column's values are converted to its new type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    /// `USING col::new`: a cast exists, or the types are not ones this module knows.
    Cast,
    /// `USING col::<via>::new`: enum to enum (or to or from a string type) through `text`
    /// (`text[]` for arrays). A value the new enum lacks makes the cast fail at apply.
    Through(&'static str),
    /// No cast or I/O conversion exists: `ALTER COLUMN ... TYPE` would fail on any row.
    None,
}

/// How a column of type `old` (as TARGET's dump prints it) converts to `new` (SOURCE's).
/// `old_enum` and `new_enum` tell whether an element type (`public.mood` of `public.mood[]`) is
/// an enum of TARGET's and of SOURCE's dump.
pub fn conversion(
    old: &str,
    new: &str,
    old_enum: impl Fn(&str) -> bool,
    new_enum: impl Fn(&str) -> bool,
) -> Conversion {
    let ((o, o_dims), (n, n_dims)) = (element(old), element(new));
    if o_dims != n_dims {
        return Conversion::Cast;
    }
    let via = if o_dims > 0 { "text[]" } else { "text" };
    let class = |t: &str, is_enum: bool| {
        if is_enum {
            Class::Enum
        } else {
            builtin(t).map_or(Class::Unknown, Class::Builtin)
        }
    };
    match (class(o, old_enum(o)), class(n, new_enum(n))) {
        (Class::Enum, Class::Enum) => Conversion::Through(via),
        (Class::Enum, Class::Builtin(b)) | (Class::Builtin(b), Class::Enum) => {
            if b == Builtin::String {
                Conversion::Through(via)
            } else {
                Conversion::None
            }
        }
        (Class::Builtin(a), Class::Builtin(b)) => {
            if a == b || a == Builtin::String || b == Builtin::String || CASTS.contains(&(a, b)) {
                Conversion::Cast
            } else {
                Conversion::None
            }
        }
        _ => Conversion::Cast,
    }
}

enum Class {
    Enum,
    Builtin(Builtin),
    Unknown,
}

/// The built-in types judged here: those whose casts are known and the same on every major
/// pgalign supports (13 and later). bytea is left out (18 added casts from and to integers),
/// as are the types of other categories (geometric, ranges, text search, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    /// text, character varying, character, name: I/O conversion reaches every type.
    String,
    Int2,
    Int4,
    Int8,
    Numeric,
    Float4,
    Float8,
    Money,
    Bool,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Interval,
    Uuid,
    Json,
    Jsonb,
    Inet,
    Cidr,
    Macaddr,
    Macaddr8,
    Bit,
    VarBit,
}

/// Casts between two different non-string types above, as `pg_cast` lists them on PostgreSQL
/// 15 (every context: USING casts explicitly). Regenerate with, for the types above:
/// `SELECT format_type(castsource, NULL), format_type(casttarget, NULL) FROM pg_cast ...`.
const CASTS: &[(Builtin, Builtin)] = {
    use Builtin::*;
    &[
        (Int2, Int4),
        (Int2, Int8),
        (Int2, Numeric),
        (Int2, Float4),
        (Int2, Float8),
        (Int4, Int2),
        (Int4, Int8),
        (Int4, Numeric),
        (Int4, Float4),
        (Int4, Float8),
        (Int4, Money),
        (Int4, Bool),
        (Int4, Bit),
        (Int8, Int2),
        (Int8, Int4),
        (Int8, Numeric),
        (Int8, Float4),
        (Int8, Float8),
        (Int8, Money),
        (Int8, Bit),
        (Numeric, Int2),
        (Numeric, Int4),
        (Numeric, Int8),
        (Numeric, Float4),
        (Numeric, Float8),
        (Numeric, Money),
        (Float4, Int2),
        (Float4, Int4),
        (Float4, Int8),
        (Float4, Numeric),
        (Float4, Float8),
        (Float8, Int2),
        (Float8, Int4),
        (Float8, Int8),
        (Float8, Numeric),
        (Float8, Float4),
        (Money, Numeric),
        (Bool, Int4),
        (Bit, Int4),
        (Bit, Int8),
        (Bit, VarBit),
        (VarBit, Bit),
        (Date, Timestamp),
        (Date, TimestampTz),
        (Time, TimeTz),
        (Time, Interval),
        (TimeTz, Time),
        (Timestamp, Date),
        (Timestamp, Time),
        (Timestamp, TimestampTz),
        (TimestampTz, Date),
        (TimestampTz, Time),
        (TimestampTz, TimeTz),
        (TimestampTz, Timestamp),
        (Interval, Time),
        (Json, Jsonb),
        (Jsonb, Json),
        (Jsonb, Bool),
        (Jsonb, Int2),
        (Jsonb, Int4),
        (Jsonb, Int8),
        (Jsonb, Numeric),
        (Jsonb, Float4),
        (Jsonb, Float8),
        (Inet, Cidr),
        (Cidr, Inet),
        (Macaddr, Macaddr8),
        (Macaddr8, Macaddr),
    ]
};

/// A type as pg_dump prints it, without its array brackets: (element type, dimensions).
fn element(t: &str) -> (&str, usize) {
    let mut t = t.trim();
    let mut dims = 0;
    while let Some(rest) = t.strip_suffix("[]") {
        t = rest.trim_end();
        dims += 1;
    }
    (t, dims)
}

/// A built-in type by the name pg_dump prints (its modifiers left out). A schema-qualified or
/// quoted name is never one of these: pg_dump qualifies the types it does not print this way.
fn builtin(t: &str) -> Option<Builtin> {
    use Builtin::*;
    // `timestamp(3) without time zone` -> `timestamp without time zone`.
    let mut name = std::string::String::with_capacity(t.len());
    let mut depth = 0usize;
    for ch in t.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1)?,
            _ if depth == 0 => name.push(ch),
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name == "interval" || name.starts_with("interval ") {
        // `interval year to month`, `interval day to second(3)`.
        return Some(Interval);
    }
    Some(match name.as_str() {
        "text" | "character varying" | "character" | "bpchar" | "name" => String,
        "smallint" => Int2,
        "integer" => Int4,
        "bigint" => Int8,
        "numeric" => Numeric,
        "real" => Float4,
        "double precision" => Float8,
        "money" => Money,
        "boolean" => Bool,
        "date" => Date,
        "time without time zone" => Time,
        "time with time zone" => TimeTz,
        "timestamp without time zone" => Timestamp,
        "timestamp with time zone" => TimestampTz,
        "uuid" => Uuid,
        "json" => Json,
        "jsonb" => Jsonb,
        "inet" => Inet,
        "cidr" => Cidr,
        "macaddr" => Macaddr,
        "macaddr8" => Macaddr8,
        "bit" => Bit,
        "bit varying" => VarBit,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(old: &str, new: &str) -> Conversion {
        let enums = |t: &str| t.starts_with("public.mood") || t == "public.\"Colour\"";
        conversion(old, new, enums, enums)
    }

    #[test]
    fn enums_convert_through_text_and_only_to_strings() {
        assert_eq!(
            conv("public.mood", "public.mood2"),
            Conversion::Through("text")
        );
        assert_eq!(
            conv("public.mood[]", "public.\"Colour\"[]"),
            Conversion::Through("text[]")
        );
        assert_eq!(
            conv("character(4)", "public.mood"),
            Conversion::Through("text")
        );
        assert_eq!(
            conv("public.mood", "character varying(20)"),
            Conversion::Through("text")
        );
        assert_eq!(
            conv("text[]", "public.mood[]"),
            Conversion::Through("text[]")
        );
        assert_eq!(conv("smallint", "public.mood"), Conversion::None);
        assert_eq!(conv("public.mood", "integer"), Conversion::None);
        assert_eq!(
            conv("timestamp(3) without time zone", "public.mood"),
            Conversion::None
        );
        // Not known: left to the server, as before.
        assert_eq!(conv("public.positive", "public.mood"), Conversion::Cast);
        assert_eq!(conv("bytea", "public.mood"), Conversion::Cast);
        assert_eq!(conv("public.mood", "public.mood[]"), Conversion::Cast);
    }

    #[test]
    fn builtins_by_pg_cast() {
        assert_eq!(conv("integer", "bigint"), Conversion::Cast);
        assert_eq!(conv("numeric(10,2)", "integer"), Conversion::Cast);
        assert_eq!(conv("text", "integer"), Conversion::Cast);
        assert_eq!(conv("uuid", "text"), Conversion::Cast);
        assert_eq!(
            conv("timestamp(3) without time zone", "date"),
            Conversion::Cast
        );
        assert_eq!(
            conv("interval year to month", "time(0) without time zone"),
            Conversion::Cast
        );
        assert_eq!(conv("integer[]", "bigint[]"), Conversion::Cast);
        assert_eq!(
            conv("bigint", "timestamp without time zone"),
            Conversion::None
        );
        assert_eq!(conv("smallint", "boolean"), Conversion::None);
        assert_eq!(conv("integer", "boolean"), Conversion::Cast);
        assert_eq!(conv("uuid", "bigint"), Conversion::None);
        assert_eq!(conv("date", "time without time zone"), Conversion::None);
        assert_eq!(conv("json", "integer"), Conversion::None);
        assert_eq!(conv("jsonb", "integer"), Conversion::Cast);
        // Unbalanced or unknown: left to the server.
        assert_eq!(conv("numeric(10", "uuid"), Conversion::Cast);
        assert_eq!(conv("public.citext", "uuid"), Conversion::Cast);
    }
}
