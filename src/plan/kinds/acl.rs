//! Privileges. pg_dump writes an object's ACL as the GRANT/REVOKE statements that turn the
//! default ACL into the real one. pgalign replays both sides' statements over the defaults and
//! emits only the difference: a REVOKE for what goes, a GRANT for what comes.

use crate::catalog::parse::quote_ident;
use crate::catalog::privileges::{
    all_privs, default_acl_role, object_kind, public_default, read as parse_block, Stmt,
};
use crate::catalog::Block;
use std::collections::{BTreeMap, BTreeSet};

/// grantee (as SQL, e.g. `PUBLIC`, `"Role X"`) -> privilege (`SELECT`, `UPDATE(a)`) -> grant option
type Acl = BTreeMap<String, BTreeMap<String, bool>>;

/// The SQL that turns TARGET's privileges (`old`) into SOURCE's (`new`); `None` means the object
/// has default privileges on that side. `major` is TARGET's server major: what `ALL` means there
/// (from 17 on a table's ALL includes MAINTAIN) and which privileges it knows.
pub fn change(
    old: Option<&Block>,
    new: Option<&Block>,
    major: Option<u32>,
) -> Result<String, String> {
    let oldp = old.map(parse_block).transpose()?.unwrap_or_default();
    let newp = new.map(parse_block).transpose()?.unwrap_or_default();
    let first = oldp.first().or(newp.first()).ok_or("empty ACL")?;
    let object = first.object.clone();
    let prefix = first.prefix.clone();
    let kind = object_kind(&object);
    if !prefix.is_empty() {
        // ALTER DEFAULT PRIVILEGES: per schema they start empty; globally they start from the
        // built-in defaults of the role named in FOR ROLE.
        let owner = if prefix.contains(" IN SCHEMA ") {
            String::new()
        } else {
            default_acl_role(&prefix).ok_or("cannot read FOR ROLE in a default privilege")?
        };
        let before = replay(&oldp, &kind, &owner, !owner.is_empty(), major)?;
        let after = replay(&newp, &kind, &owner, !owner.is_empty(), major)?;
        return Ok(render(&prefix, &object, &before, &after));
    }
    let owner_of = |b: Option<&Block>| b.map(|b| quote_ident(&b.owner)).unwrap_or_default();
    // The owner is renamed first (its own step), which moves its privileges with it.
    let new_owner = if new.is_some() {
        owner_of(new)
    } else {
        owner_of(old)
    };
    let old_owner = if old.is_some() {
        owner_of(old)
    } else {
        new_owner.clone()
    };
    let mut before = replay(&oldp, &kind, &old_owner, true, major)?;
    if old_owner != new_owner {
        if let Some(p) = before.remove(&old_owner) {
            before.insert(new_owner.clone(), p);
        }
    }
    let after = replay(&newp, &kind, &new_owner, true, major)?;
    Ok(render("", &object, &before, &after))
}

/// What a DEFAULT ACL block hands out: (the objects word `TABLES`, ..., grantee) pairs. A grant
/// to the role the default privileges are for (FOR ROLE, who creates and so owns the object) is
/// left out: an owner holds every privilege anyway, so it hands out nothing.
pub fn default_acl_grants(b: &Block) -> Vec<(String, String)> {
    parse_block(b)
        .map(|stmts| {
            stmts
                .into_iter()
                .filter(|s| !s.prefix.is_empty())
                .filter(|s| default_acl_role(&s.prefix).as_deref() != Some(s.grantee.as_str()))
                .map(|s| (s.object, s.grantee))
                .collect()
        })
        .unwrap_or_default()
}

/// Expands one privilege as written (`ALL`, `SELECT(a, b)`, `TEMP`) into privilege keys.
fn expand(kind: &str, p: &str, major: Option<u32>) -> Vec<String> {
    let (name, cols) = match p.find('(') {
        Some(i) => (p[..i].trim().to_ascii_uppercase(), Some(p[i..].to_string())),
        None => (p.trim().to_ascii_uppercase(), None),
    };
    let names: Vec<String> = match (name.as_str(), &cols) {
        ("ALL" | "ALL PRIVILEGES", None) => all_privs(kind, major)
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ("ALL" | "ALL PRIVILEGES", Some(_)) => ["SELECT", "INSERT", "UPDATE", "REFERENCES"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        ("TEMP", _) => vec!["TEMPORARY".into()],
        (n, _) => vec![n.to_string()],
    };
    names
        .into_iter()
        .map(|n| match &cols {
            Some(c) => format!("{n}{c}"),
            None => n,
        })
        .collect()
}

fn replay(
    stmts: &[Stmt],
    kind: &str,
    owner: &str,
    defaults: bool,
    major: Option<u32>,
) -> Result<Acl, String> {
    let mut acl: Acl = BTreeMap::new();
    if defaults && !owner.is_empty() {
        acl.insert(
            owner.to_string(),
            all_privs(kind, major)
                .iter()
                .map(|p| (p.to_string(), false))
                .collect(),
        );
    }
    let public: BTreeMap<String, bool> = public_default(kind)
        .iter()
        .map(|p| (p.to_string(), false))
        .collect();
    if defaults && !public.is_empty() {
        acl.insert("PUBLIC".into(), public);
    }
    for s in stmts {
        let privs: Vec<String> = s
            .privs
            .iter()
            .flat_map(|p| expand(kind, p, major))
            .collect();
        if let Some(m) = major.filter(|m| *m < 17) {
            if privs.iter().any(|p| p.starts_with("MAINTAIN")) {
                return Err(format!(
                    "the MAINTAIN privilege needs PostgreSQL 17 or newer; TARGET runs {m}"
                ));
            }
        }
        let entry = acl.entry(s.grantee.clone()).or_default();
        for p in privs {
            if s.grant {
                let go = entry.get(&p).copied().unwrap_or(false) || s.with_grant_option;
                entry.insert(p, go);
            } else if s.grant_option_for {
                if let Some(go) = entry.get_mut(&p) {
                    *go = false;
                }
            } else {
                entry.remove(&p);
            }
        }
    }
    acl.retain(|_, v| !v.is_empty());
    Ok(acl)
}

fn render(prefix: &str, object: &str, before: &Acl, after: &Acl) -> String {
    let mut sql = String::new();
    let empty = BTreeMap::new();
    let grantees: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    // Revokes first, then grants, so that nothing is briefly granted twice over.
    for g in &grantees {
        let (b, a) = (
            before.get(*g).unwrap_or(&empty),
            after.get(*g).unwrap_or(&empty),
        );
        let gone: Vec<&str> = b
            .keys()
            .filter(|p| !a.contains_key(*p))
            .map(|s| s.as_str())
            .collect();
        if !gone.is_empty() {
            sql.push_str(&format!(
                "{prefix}REVOKE {} ON {object} FROM {g};\n",
                gone.join(",")
            ));
        }
        let lost_option: Vec<&str> = b
            .iter()
            .filter(|(p, go)| **go && a.get(*p) == Some(&false))
            .map(|(p, _)| p.as_str())
            .collect();
        if !lost_option.is_empty() {
            sql.push_str(&format!(
                "{prefix}REVOKE GRANT OPTION FOR {} ON {object} FROM {g};\n",
                lost_option.join(",")
            ));
        }
    }
    for g in &grantees {
        let (b, a) = (
            before.get(*g).unwrap_or(&empty),
            after.get(*g).unwrap_or(&empty),
        );
        for with_option in [false, true] {
            let add: Vec<&str> = a
                .iter()
                .filter(|(p, go)| {
                    **go == with_option
                        && (!b.contains_key(*p) || (with_option && b.get(*p) == Some(&false)))
                })
                .map(|(p, _)| p.as_str())
                .collect();
            if !add.is_empty() {
                sql.push_str(&format!(
                    "{prefix}GRANT {} ON {object} TO {g}{};\n",
                    add.join(","),
                    if with_option {
                        " WITH GRANT OPTION"
                    } else {
                        ""
                    }
                ));
            }
        }
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Key;

    fn block(owner: &str, stmts: &[&str]) -> Block {
        Block::new(
            Key {
                kind: crate::catalog::ObjectKind::Acl,
                schema: "app".into(),
                name: "TABLE t".into(),
            },
            None,
            Default::default(),
            owner.into(),
            stmts.iter().map(|&s| s.into()).collect(),
            Box::default(),
            None,
        )
    }

    #[test]
    fn grant_and_revoke_only_the_difference() {
        let old = block(
            "root",
            &[
                "GRANT SELECT ON TABLE app.t TO reader",
                "GRANT ALL ON TABLE app.t TO writer",
            ],
        );
        let new = block(
            "root",
            &[
                "GRANT SELECT,INSERT ON TABLE app.t TO reader",
                "GRANT SELECT ON TABLE app.t TO writer WITH GRANT OPTION",
            ],
        );
        let sql = change(Some(&old), Some(&new), Some(15)).unwrap();
        assert_eq!(
            sql,
            "REVOKE DELETE,INSERT,REFERENCES,TRIGGER,TRUNCATE,UPDATE ON TABLE app.t FROM writer;\nGRANT INSERT ON TABLE app.t TO reader;\nGRANT SELECT ON TABLE app.t TO writer WITH GRANT OPTION;\n"
        );
    }

    #[test]
    fn dropping_an_acl_restores_defaults() {
        let old = block(
            "root",
            &[
                "REVOKE ALL ON FUNCTION app.f() FROM PUBLIC",
                "GRANT ALL ON FUNCTION app.f() TO x",
            ],
        );
        let sql = change(Some(&old), None, Some(15)).unwrap();
        assert_eq!(sql, "REVOKE EXECUTE ON FUNCTION app.f() FROM x;\nGRANT EXECUTE ON FUNCTION app.f() TO PUBLIC;\n");
    }

    #[test]
    fn default_privileges() {
        let mut old = block("postgres", &["ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA s GRANT SELECT ON TABLES  TO PUBLIC"]);
        old.key.kind = "DEFAULT ACL".into();
        let sql = change(Some(&old), None, Some(15)).unwrap();
        assert_eq!(sql, "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA s REVOKE SELECT ON TABLES FROM PUBLIC;\n");
        let new = block(
            "postgres",
            &["ALTER DEFAULT PRIVILEGES FOR ROLE postgres REVOKE ALL ON FUNCTIONS  FROM PUBLIC"],
        );
        let sql = change(None, Some(&new), Some(15)).unwrap();
        assert_eq!(
            sql,
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;\n"
        );
        let sql = change(Some(&new), None, Some(15)).unwrap();
        assert_eq!(
            sql,
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres GRANT EXECUTE ON FUNCTIONS TO PUBLIC;\n"
        );
    }

    #[test]
    fn quoted_grantees_and_columns() {
        let new = block(
            "root",
            &["GRANT SELECT(\"a,b\") ON TABLE app.t TO \"Odd Role\""],
        );
        let sql = change(None, Some(&new), Some(15)).unwrap();
        assert_eq!(
            sql,
            "GRANT SELECT(\"a,b\") ON TABLE app.t TO \"Odd Role\";\n"
        );
    }

    #[test]
    fn all_means_what_the_target_major_has() {
        // From 17 on, a table's ALL includes MAINTAIN: the seven of 16 are no longer all of it.
        let old = block("root", &["GRANT ALL ON TABLE app.t TO w"]);
        let new = block(
            "root",
            &["GRANT SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER ON TABLE app.t TO w"],
        );
        assert_eq!(change(Some(&old), Some(&new), Some(16)).unwrap(), "");
        assert_eq!(
            change(Some(&old), Some(&new), Some(17)).unwrap(),
            "REVOKE MAINTAIN ON TABLE app.t FROM w;\n"
        );
        let grant = change(None, Some(&old), Some(17)).unwrap();
        assert!(grant.contains("MAINTAIN"), "{grant}");
    }

    /// Regression (issue 13): an empty privilege list or object indexed past the tokens.
    #[test]
    fn statements_missing_a_part_are_errors() {
        for stmt in [
            "GRANT ON TABLE app.t TO r",
            "REVOKE ON TABLE app.t FROM r",
            "GRANT SELECT ON TO r",
            "REVOKE GRANT OPTION FOR ON TABLE app.t FROM r",
            "REVOKE GRANT OPTION",
            "GRANT SELECT ON TABLE app.t TO",
            "ALTER DEFAULT PRIVILEGES FOR ROLE x GRANT ON TABLES TO r",
        ] {
            let err = change(None, Some(&block("root", &[stmt])), Some(15)).expect_err(stmt);
            assert!(err.contains("cannot read"), "{stmt}: {err}");
        }
    }

    #[test]
    fn maintain_on_a_target_before_17_is_refused() {
        let new = block("root", &["GRANT MAINTAIN ON TABLE app.t TO w"]);
        let err = change(None, Some(&new), Some(16)).unwrap_err();
        assert!(err.contains("PostgreSQL 17"), "{err}");
        assert!(change(None, Some(&new), Some(17)).is_ok());
    }
}
