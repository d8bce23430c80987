//! Privileges as pg_dump writes them: GRANT and REVOKE statements (behind `ALTER DEFAULT
//! PRIVILEGES FOR ROLE r [IN SCHEMA s]` for default privileges), read into `Stmt`s. What they
//! add up to, and the SQL that turns one side's into the other's, is the planner's
//! (plan/acl.rs).

use super::parse::{tokens, Tok, TokKind};
use super::Block;

/// One GRANT or REVOKE.
pub struct Stmt {
    /// `ALTER DEFAULT PRIVILEGES FOR ROLE x [IN SCHEMA s] ` for default privileges, else empty.
    pub prefix: String,
    pub grant: bool,
    pub grant_option_for: bool,
    pub privs: Vec<String>,
    pub object: String,
    pub grantee: String,
    pub with_grant_option: bool,
}

/// A privilege block's statements; an error names the statement that cannot be read.
pub fn read(b: &Block) -> Result<Vec<Stmt>, String> {
    b.stmts.iter().map(|s| parse_stmt(s)).collect()
}

fn parse_stmt(full: &str) -> Result<Stmt, String> {
    // Default privileges are a GRANT/REVOKE behind a prefix that names the role and schema.
    let (prefix, sql) = match full.strip_prefix("ALTER DEFAULT PRIVILEGES ") {
        Some(_) => {
            let toks = tokens(full).map_err(|_| format!("cannot read `{full}`"))?;
            let at = toks
                .iter()
                .position(|t| t.is_word(full, "GRANT") || t.is_word(full, "REVOKE"))
                .ok_or_else(|| format!("cannot read `{full}`"))?;
            (full[..toks[at].start].to_string(), &full[toks[at].start..])
        }
        None => (String::new(), full),
    };
    let err = || {
        format!(
            "cannot read privilege statement `{}`",
            sql.lines().next().unwrap_or("")
        )
    };
    let toks = tokens(sql).map_err(|_| err())?;
    let word = |t: &Tok, w: &str| t.is_word(sql, w);
    let grant = toks.first().is_some_and(|t| word(t, "GRANT"));
    let revoke = toks.first().is_some_and(|t| word(t, "REVOKE"));
    if !grant && !revoke {
        return Err(format!(
            "{}: only GRANT and REVOKE are understood (a grant made by another role through SET SESSION AUTHORIZATION is not yet)",
            err()
        ));
    }
    let mut i = 1;
    let mut grant_option_for = false;
    if revoke
        && toks.get(1).is_some_and(|t| word(t, "GRANT"))
        && toks.get(2).is_some_and(|t| word(t, "OPTION"))
    {
        grant_option_for = true;
        i = 4;
    }
    let top = |from: usize, w: &str| -> Option<usize> {
        let mut depth = 0;
        for (k, t) in toks.iter().enumerate().skip(from) {
            match t.kind {
                TokKind::Punct('(') => depth += 1,
                TokKind::Punct(')') => depth -= 1,
                _ if depth == 0 && word(t, w) => return Some(k),
                _ => {}
            }
        }
        None
    };
    let on = top(i, "ON").ok_or_else(err)?;
    let to = top(on + 1, if grant { "TO" } else { "FROM" }).ok_or_else(err)?;
    // Privileges between the verb and ON, the object between ON and TO/FROM: neither empty.
    if on <= i || to <= on + 1 {
        return Err(err());
    }
    let privs_text = &sql[toks[i].start..toks[on - 1].end];
    let object = sql[toks[on + 1].start..toks[to - 1].end].trim().to_string();
    // Grantee runs to WITH / GRANTED / CASCADE / end.
    let mut end = toks.len();
    for (k, t) in toks.iter().enumerate().skip(to + 1) {
        if word(t, "WITH") || word(t, "GRANTED") || word(t, "CASCADE") || t.is_punct(';') {
            end = k;
            break;
        }
    }
    if end <= to + 1 {
        return Err(err());
    }
    let grantee = sql[toks[to + 1].start..toks[end - 1].end].to_string();
    let with_grant_option = toks.get(end).is_some_and(|t| word(t, "WITH"));
    Ok(Stmt {
        prefix,
        grant,
        grant_option_for,
        privs: split_top_commas(privs_text),
        object,
        grantee,
        with_grant_option,
    })
}

fn split_top_commas(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    let mut in_quote = false;
    for c in s.chars() {
        match c {
            '"' => in_quote = !in_quote,
            '(' if !in_quote => depth += 1,
            ')' if !in_quote => depth -= 1,
            ',' if depth == 0 && !in_quote => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// `ALTER DEFAULT PRIVILEGES FOR ROLE x ` -> `x` (as written).
pub fn default_acl_role(prefix: &str) -> Option<String> {
    let rest = prefix.strip_prefix("ALTER DEFAULT PRIVILEGES FOR ROLE ")?;
    let role = match rest.find(" IN SCHEMA ") {
        Some(i) => &rest[..i],
        None => rest,
    };
    Some(role.trim().to_string())
}

/// The object type a privilege statement names (its SQL keyword, not an entry kind):
/// `TABLE app.t` -> `TABLE`; `FOREIGN DATA WRAPPER w` -> `FOREIGN DATA WRAPPER`.
pub fn object_kind(object: &str) -> String {
    match object {
        "TABLES" => return "TABLE".into(),
        "SEQUENCES" => return "SEQUENCE".into(),
        "FUNCTIONS" | "ROUTINES" => return "FUNCTION".into(),
        "TYPES" => return "TYPE".into(),
        "SCHEMAS" => return "SCHEMA".into(),
        _ => {}
    }
    for k in [
        "FOREIGN DATA WRAPPER",
        "FOREIGN SERVER",
        "LARGE OBJECT",
        "ALL TABLES IN SCHEMA",
    ] {
        if object.starts_with(k) {
            return k.to_string();
        }
    }
    object.split(' ').next().unwrap_or("").to_string()
}

/// Every privilege an object kind has on a server of this major: what `ALL` means.
pub fn all_privs(kind: &str, major: Option<u32>) -> &'static [&'static str] {
    // A table's privileges; from PostgreSQL 17 on, MAINTAIN too (the last one here).
    const TABLE: &[&str] = &[
        "SELECT",
        "INSERT",
        "UPDATE",
        "DELETE",
        "TRUNCATE",
        "REFERENCES",
        "TRIGGER",
        "MAINTAIN",
    ];
    match kind {
        "TABLE" if major.is_some_and(|m| m >= 17) => TABLE,
        "TABLE" => &TABLE[..TABLE.len() - 1],
        "SEQUENCE" => &["USAGE", "SELECT", "UPDATE"],
        "FUNCTION" | "PROCEDURE" | "ROUTINE" => &["EXECUTE"],
        "SCHEMA" => &["USAGE", "CREATE"],
        "DATABASE" => &["CREATE", "CONNECT", "TEMPORARY"],
        "TABLESPACE" => &["CREATE"],
        "LARGE OBJECT" => &["SELECT", "UPDATE"],
        _ => &["USAGE"],
    }
}

/// PUBLIC's privileges on a fresh object of this kind.
pub fn public_default(kind: &str) -> &'static [&'static str] {
    match kind {
        "FUNCTION" | "PROCEDURE" | "ROUTINE" => &["EXECUTE"],
        "TYPE" | "DOMAIN" | "LANGUAGE" => &["USAGE"],
        "DATABASE" => &["CONNECT", "TEMPORARY"],
        _ => &[],
    }
}
