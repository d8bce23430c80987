//! `pgalign dump --source X -o DIR`: a schema as files, one per object
//! (`DIR/<schema>/<kind>/<name>.sql`), its comments, privileges and owner beside it, and
//! `load-order.txt` listing the files in pg_dump's order, which loads back as it is.

use super::{files::Scratches, Outcome};
use crate::catalog::{Block, Catalog, ObjectKind};
use crate::cli::DumpArgs;
use crate::endpoint::{Endpoint, Side};
use crate::files::ORDER_FILE;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Longest file or directory name written (most file systems allow 255 bytes).
const MAX_NAME: usize = 120;

pub async fn run(args: &DumpArgs) -> Result<Outcome> {
    let c = &args.common;
    if c.target.is_some() {
        bail!("dump reads --source only (it writes SOURCE's schema as files): leave --target out");
    }
    check_output(&args.output)?;
    let ep = Endpoint::resolve(c.source.as_deref(), Side::Source)?;
    let conn = super::connect_params(&ep, c)
        .await
        .with_context(|| format!("reading source {ep}"))?;
    let tools = super::find_tools(c)?;
    let filter = super::filter_of(c);
    let mut messages = Vec::new();
    let mut held = Scratches::default();
    let name = conn.as_ref().map_or(ep.to_string(), |p| p.to_string());
    let read = async {
        let conn = match &ep {
            Endpoint::SqlFiles(p) => {
                let m = super::files::materialize_side(
                    "source",
                    p,
                    c,
                    (&ep, None),
                    &tools,
                    &mut held,
                    &mut messages,
                );
                Some(m.await?)
            }
            _ => conn,
        };
        super::dump_side("source", &ep, conn.as_ref(), &tools, &filter)
            .await
            .map(|(cat, _)| cat)
            .map_err(|e| anyhow!("dumping source {name}: {e}"))
    };
    let cat = read.await;
    let warnings = held.release().await;
    let cat = cat?;
    messages.extend(warnings);
    let files = layout(&cat);
    write(&args.output, &files)?;
    messages.push(format!(
        "wrote {} file(s) ({} dump entries) to {} (load order in {ORDER_FILE})",
        files.len(),
        cat.blocks.len(),
        args.output.display()
    ));
    Ok(Outcome { code: 0, messages })
}

/// The output directory must be new or empty: files of an earlier dump left among the new
/// ones would load too, and pgalign removes nothing it did not make.
fn check_output(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                bail!(
                    "{} is not empty: dump into a new or empty directory (files of an earlier dump would load with the new ones)",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow!("{}: {e}", dir.display())),
    }
}

/// Kinds written into the file of the object they are about.
fn beside_its_object(kind: &ObjectKind) -> bool {
    kind.is_about_another() || *kind == ObjectKind::Owner
}

/// Files in load order, each with its SQL. A block goes to its own file, at its place in the
/// dump (pg_dump's order creates everything after what it needs), except comments, privileges,
/// labels and owners, which go after their object in its file: they need nothing else that
/// the dump creates.
pub fn layout(cat: &Catalog) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let mut file_of: Vec<Option<usize>> = vec![None; cat.blocks.len()];
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for (i, b) in cat.blocks.iter().enumerate() {
        let parent_file = beside_its_object(&b.key.kind)
            .then(|| cat.parent_of(i))
            .flatten()
            .filter(|&p| p < i)
            .and_then(|p| file_of[p]);
        let f = match parent_file {
            Some(f) => f,
            None => {
                files.push((unique(path_of(b), &mut taken), String::new()));
                files.len() - 1
            }
        };
        file_of[i] = Some(f);
        let text = &mut files[f].1;
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&crate::plan::create_sql(b));
    }
    files
}

/// `<schema>/<kind>/<name>.sql`; a schema's own file under its name, objects of no schema
/// (extensions, casts, event triggers, ...) under `_global`.
fn path_of(b: &Block) -> PathBuf {
    let k = &b.key;
    let dir = if k.kind == ObjectKind::Schema {
        safe(&k.name)
    } else if k.schema.is_empty() {
        "_global".to_string()
    } else {
        safe(&k.schema)
    };
    let kind = k.kind.as_str().to_lowercase().replace(' ', "_");
    PathBuf::from(dir)
        .join(kind)
        .join(format!("{}.sql", safe(&k.name)))
}

/// A name as a file name: letters, digits, `_`, `-` and `.` kept (not leading), anything else
/// `_`; a long one cut, with a hash of the whole so that two cut alike stay apart.
fn safe(name: &str) -> String {
    let mut s: String = name
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let keep = c.is_alphanumeric() || c == '_' || c == '-' || (c == '.' && i > 0);
            if keep {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        s.push('_');
    }
    if s.len() > MAX_NAME {
        use sha2::{Digest, Sha256};
        let hash = Sha256::digest(name.as_bytes());
        let mut cut = MAX_NAME - 9;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str(&format!(
            "-{:02x}{:02x}{:02x}{:02x}",
            hash[0], hash[1], hash[2], hash[3]
        ));
    }
    s
}

/// `path`, or `path` with `~2`, `~3`, ... before `.sql` when another object's name maps to the
/// same file: compared without case, for file systems that ignore it.
fn unique(path: PathBuf, taken: &mut BTreeSet<String>) -> PathBuf {
    let stem = path.with_extension("");
    let mut candidate = path;
    let mut n = 1;
    while !taken.insert(candidate.to_string_lossy().to_lowercase()) {
        n += 1;
        candidate = PathBuf::from(format!("{}~{n}.sql", stem.display()));
    }
    candidate
}

fn write(dir: &Path, files: &[(PathBuf, String)]) -> Result<()> {
    let fail = |p: &Path, e: std::io::Error| anyhow!("writing {}: {e}", p.display());
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let mut order = String::from(
        "# Written by pgalign dump: the files in the order they load (pg_dump's order).\n# A file added by hand goes in this list where it loads.\n",
    );
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| fail(&path, e))?;
        order.push_str(&rel.to_string_lossy());
        order.push('\n');
    }
    let path = dir.join(ORDER_FILE);
    std::fs::write(&path, order).map_err(|e| fail(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_plain_file_names() {
        assert_eq!(safe("orders orders_pkey"), "orders_orders_pkey");
        assert_eq!(safe("f(integer, text)"), "f_integer__text_");
        assert_eq!(safe(".hidden"), "_hidden");
        assert_eq!(safe("../x"), "_._x");
        assert_eq!(safe("café"), "café");
        assert_eq!(safe(""), "_");
        let long = safe(&"x".repeat(300));
        assert!(long.len() <= MAX_NAME, "{long}");
        assert_ne!(long, safe(&"x".repeat(301)));
    }

    #[test]
    fn names_that_collide_get_a_number() {
        let mut taken = BTreeSet::new();
        let p = PathBuf::from("public/table/T.sql");
        assert_eq!(unique(p.clone(), &mut taken), p);
        assert_eq!(
            unique(PathBuf::from("public/table/t.sql"), &mut taken),
            PathBuf::from("public/table/t~2.sql")
        );
        assert_eq!(
            unique(PathBuf::from("public/table/t.sql"), &mut taken),
            PathBuf::from("public/table/t~3.sql")
        );
    }

    #[test]
    fn comments_privileges_and_owners_go_beside_their_object() {
        let dump = "--\n-- PostgreSQL database dump\n--\n\n--\n-- TOC entry 1 (class 1259 OID 1)\n-- Name: t; Type: TABLE; Schema: public; Owner: app\n--\n\nCREATE TABLE public.t (\n    id integer\n);\n\n\nALTER TABLE public.t OWNER TO app;\n\n--\n-- TOC entry 2 (class 1259 OID 2)\n-- Dependencies: 1\n-- Name: v; Type: VIEW; Schema: public; Owner: app\n--\n\nCREATE VIEW public.v AS\n SELECT t.id\n   FROM public.t;\n\n--\n-- TOC entry 3 (class 0 OID 0)\n-- Dependencies: 1\n-- Name: TABLE t; Type: COMMENT; Schema: public; Owner: app\n--\n\nCOMMENT ON TABLE public.t IS 'x';\n\n--\n-- TOC entry 4 (class 0 OID 0)\n-- Dependencies: 1\n-- Name: TABLE t; Type: ACL; Schema: public; Owner: app\n--\n\nGRANT SELECT ON TABLE public.t TO PUBLIC;\n";
        let cat = crate::catalog::from_dump_reader(dump.as_bytes(), &Default::default()).unwrap();
        let files = layout(&cat);
        let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(names, ["public/table/t.sql", "public/view/v.sql"]);
        let t = &files[0].1;
        let at = |s: &str| t.find(s).unwrap_or_else(|| panic!("{s} not in {t}"));
        assert!(at("CREATE TABLE") < at("OWNER TO app"));
        assert!(at("OWNER TO app") < at("COMMENT ON TABLE"));
        assert!(at("COMMENT ON TABLE") < at("GRANT SELECT"));
        assert!(!files[1].1.contains("COMMENT"));
    }
}
