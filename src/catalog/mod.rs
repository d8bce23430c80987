//! A dump, split into blocks keyed by pg_dump's own identity (Type, Schema, Name), normalized so
//! that two dumps of equal schemas are equal block by block. Pure: text in, values out.

pub mod compat;
mod infer;
mod key_index;
pub mod kind;
pub mod locks;
pub mod majors;
pub mod merge;
pub mod name;
pub mod parse;
pub mod privileges;
pub mod read;
mod reader;
pub mod rules;
pub mod table;
pub mod types;
pub mod validate;
pub mod view;

use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

pub(crate) use key_index::HashIndex;
use key_index::{key_hash, KeyIndex};
pub use kind::ObjectKind;
pub use parse::{qualified, quote_ident, quote_literal, TableDef};
pub use reader::{from_dump_reader, from_dump_text, split_owner_stmt};
pub use validate::validate;

/// The short strings of a block (kind, schema, name, owner): held inline up to 24 bytes, so a
/// large schema's ~100,000 blocks a side do not each pay four heap allocations for them.
pub type Str = compact_str::CompactString;

/// A block's statements: most blocks have one, held inline.
pub type Stmts = smallvec::SmallVec<[Box<str>; 1]>;

/// A block's TOC dependencies: most blocks have a few, held inline.
pub type Deps = smallvec::SmallVec<[u32; 4]>;

/// An object's identity as pg_dump names it in its header comment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Key {
    /// pg_dump's Type: `TABLE`, `FK CONSTRAINT`, `COMMENT`, ... and pgalign's own `OWNER`.
    pub kind: ObjectKind,
    /// Empty for objects outside any schema.
    pub schema: name::Name,
    /// pg_dump's tag: `orders`, `orders orders_pkey`, `f(integer)`, `COLUMN orders.id`, ...
    pub name: Str,
}

impl Key {
    /// How people read the identity: `table public.orders`, `comment on column public.orders.id`.
    pub fn display(&self) -> String {
        let kind = self.kind.as_str().to_lowercase();
        let qual = |n: &str| {
            if self.schema.is_empty() {
                n.to_string()
            } else {
                format!("{}.{}", self.schema, n)
            }
        };
        match &self.kind {
            ObjectKind::Comment
            | ObjectKind::Acl
            | ObjectKind::SecurityLabel
            | ObjectKind::Owner => {
                // The tag starts with the object's kind in capitals: `TABLE orders`.
                let split = split_kind_prefix(&self.name);
                let what = match &self.kind {
                    ObjectKind::Comment => "comment on",
                    ObjectKind::Acl => "privileges on",
                    ObjectKind::Owner => "owner of",
                    _ => "security label on",
                };
                match split {
                    Some((k, n)) if !self.schema.is_empty() && k != "SCHEMA" => {
                        format!("{what} {} {}", k.to_lowercase(), qual(n))
                    }
                    Some((k, n)) => format!("{what} {} {n}", k.to_lowercase()),
                    None => format!("{what} {}", qual(&self.name)),
                }
            }
            _ => format!("{kind} {}", qual(&self.name)),
        }
    }
}

/// Object kinds as they are spelled at the start of COMMENT/ACL tags and in `ALTER <kind> ...`,
/// longest first so that `OPERATOR CLASS` wins over `OPERATOR`.
pub const OBJECT_KINDS: &[&str] = &[
    "TEXT SEARCH CONFIGURATION",
    "TEXT SEARCH DICTIONARY",
    "TEXT SEARCH TEMPLATE",
    "TEXT SEARCH PARSER",
    "FOREIGN DATA WRAPPER",
    "PROCEDURAL LANGUAGE",
    "MATERIALIZED VIEW",
    "OPERATOR FAMILY",
    "OPERATOR CLASS",
    "ACCESS METHOD",
    "EVENT TRIGGER",
    "FOREIGN TABLE",
    "LARGE OBJECT",
    "USER MAPPING",
    "SUBSCRIPTION",
    "PUBLICATION",
    "CONSTRAINT",
    "STATISTICS",
    "COLLATION",
    "CONVERSION",
    "EXTENSION",
    "AGGREGATE",
    "PROCEDURE",
    "TABLESPACE",
    "TRANSFORM",
    "FUNCTION",
    "LANGUAGE",
    "OPERATOR",
    "SEQUENCE",
    "DATABASE",
    "TRIGGER",
    "ROUTINE",
    "COLUMN",
    "DOMAIN",
    "SCHEMA",
    "SERVER",
    "POLICY",
    "INDEX",
    "TABLE",
    "TYPE",
    "VIEW",
    "RULE",
    "CAST",
];

/// `TABLE orders` -> (`TABLE`, `orders`); `MATERIALIZED VIEW mv` -> (`MATERIALIZED VIEW`, `mv`).
pub fn split_kind_prefix(tag: &str) -> Option<(&str, &str)> {
    OBJECT_KINDS.iter().find_map(|k| {
        tag.strip_prefix(k)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(|rest| (&tag[..k.len()], rest))
    })
}

/// One object of the dump.
#[derive(Debug, Clone)]
pub struct Block {
    pub key: Key,
    /// pg_dump's TOC entry id, when the dump came through pg_restore --verbose.
    pub toc_id: Option<u32>,
    /// TOC ids this entry depends on (pg_dump's own dependency graph).
    pub deps: Deps,
    /// The owner named in the header (empty when none).
    pub owner: name::Name,
    /// The statements that define the object, each without its trailing semicolon, in order.
    pub stmts: Stmts,
    /// What most blocks lack (settings, an identity, a parsed table), behind one pointer: a
    /// large schema has ~100,000 blocks a side, and the block itself is most of their memory.
    rare: Option<Box<Rare>>,
}

#[derive(Debug, Clone, Default)]
struct Rare {
    settings: Box<[String]>,
    identity: Option<Str>,
    /// The parsed CREATE TABLE, parsed when first asked for (`table()`): most tables of a large
    /// schema are equal on both sides and never need it.
    parsed_table: OnceLock<Option<Box<TableDef>>>,
}

impl Block {
    /// A block. `settings`: non-default `default_tablespace` / `default_table_access_method` in
    /// force for it; `identity`: the object's name as SQL (`app.f(a integer)`), from pg_dump's
    /// `ALTER ... OWNER TO`.
    pub fn new(
        key: Key,
        toc_id: Option<u32>,
        deps: Deps,
        owner: name::Name,
        stmts: Stmts,
        settings: Box<[String]>,
        identity: Option<Str>,
    ) -> Block {
        let is_table = key.kind.is_table();
        let rare = (is_table || !settings.is_empty() || identity.is_some()).then(|| {
            Box::new(Rare {
                settings,
                identity,
                parsed_table: OnceLock::new(),
            })
        });
        Block {
            key,
            toc_id,
            deps,
            owner,
            stmts,
            rare,
        }
    }
    /// Non-default `default_tablespace` / `default_table_access_method` in force for it.
    pub fn settings(&self) -> &[String] {
        self.rare.as_deref().map_or(&[], |r| &r.settings)
    }
    /// The object's name as SQL (`app.f(a integer)`), from pg_dump's `ALTER ... OWNER TO`.
    pub fn identity(&self) -> Option<&str> {
        self.rare.as_deref()?.identity.as_deref()
    }
    /// Adds TOC ids to the ones this entry depends on (kept sorted, each once).
    fn add_deps(&mut self, more: impl IntoIterator<Item = u32>) {
        self.deps.extend(more);
        self.deps.sort_unstable();
        self.deps.dedup();
        self.deps.shrink_to_fit();
    }
    /// For a TABLE or FOREIGN TABLE created by its first statement: that CREATE TABLE, parsed.
    pub fn table(&self) -> Option<&TableDef> {
        self.rare
            .as_deref()?
            .parsed_table
            .get_or_init(|| {
                if !self.key.kind.is_table() {
                    return None;
                }
                self.stmts
                    .first()
                    .filter(|s| s.starts_with("CREATE "))
                    .and_then(|s| parse::parse_create_table(s).ok())
                    .map(Box::new)
            })
            .as_deref()
    }

    /// The definition as SQL, one statement a line group, each ending in a semicolon.
    pub fn sql(&self) -> String {
        let mut s = String::new();
        for st in &self.stmts {
            s.push_str(st);
            s.push_str(";\n");
        }
        s
    }
    /// Like `compare_text`, with the lines of a table's element list (columns, inline
    /// constraints) sorted, so that column order does not count. pg_dump writes one element a
    /// line; no parse is needed, which keeps fingerprints cheap on 10,000 tables.
    pub fn canonical_text(&self) -> String {
        let mut s = String::new();
        self.canonical_pieces(&mut Vec::new(), &mut |p| s.push_str(p));
        s
    }

    /// `canonical_text`, given to `out` piece by piece (the fingerprint hashes it without
    /// building it), with `lines` as room to sort a table's lines in.
    fn canonical_pieces<'b>(&'b self, lines: &mut Vec<&'b str>, out: &mut impl FnMut(&str)) {
        let table = self
            .has_table_text()
            .then(|| {
                let first = self.stmts.first().map(|s| &**s).unwrap_or("");
                let (head, rest) = first.split_once(" (\n").unwrap_or((first, ""));
                rest.rfind("\n)").map(|close| (head, rest, close))
            })
            .flatten();
        let Some((head, rest, close)) = table else {
            // compare_text()
            let stmts = self.stmts.iter().map(|s| &**s);
            for st in self.settings().iter().map(String::as_str).chain(stmts) {
                out(st);
                out(";\n");
            }
            return;
        };
        lines.clear();
        lines.extend(rest[..close].lines().map(|l| l.trim_end_matches(',')));
        lines.sort_unstable();
        for (i, st) in self.settings().iter().enumerate() {
            if i > 0 {
                out(";\n");
            }
            out(st);
        }
        out("\n");
        out(head);
        out("\n");
        for (i, l) in lines.iter().enumerate() {
            if i > 0 {
                out("\n");
            }
            out(l);
        }
        out(&rest[close..]);
        out("\n");
        for st in self.stmts.iter().skip(1) {
            out(st);
            out(";\n");
        }
    }

    /// Whether `canonical_text` sorts an element list here (a CREATE TABLE with one).
    fn has_table_text(&self) -> bool {
        self.key.kind.is_table()
            && self
                .stmts
                .first()
                .is_some_and(|s| s.starts_with("CREATE ") && s.contains(" (\n"))
    }

    /// What is compared: the statements plus the settings they run under.
    pub fn compare_text(&self) -> String {
        let mut s = String::new();
        for st in self.settings() {
            s.push_str(st);
            s.push_str(";\n");
        }
        s.push_str(&self.sql());
        s
    }
}

/// Options that decide what a catalog keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Filter {
    pub schemas: Vec<String>,
    pub exclude_schemas: Vec<String>,
    pub no_owner: bool,
    pub no_privileges: bool,
}

/// Each block's direct dependents, indexed by block: `deps[i]` is a sorted slice.
pub struct Dependents {
    starts: Vec<usize>,
    of: Vec<usize>,
}

impl std::ops::Index<usize> for Dependents {
    type Output = [usize];
    fn index(&self, i: usize) -> &[usize] {
        &self.of[self.starts[i]..self.starts[i + 1]]
    }
}

/// A dump as objects, in the dump's own (creation) order.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub blocks: Vec<Block>,
    /// Key -> position in `blocks` (see `position`): by the key's hash, so that the keys are
    /// not stored twice; ordered keys cost a tenth of the run and much memory at 10,000 tables.
    index: KeyIndex,
    /// TOC id -> position in `blocks` (see `at_toc`).
    by_toc: HashMap<u32, u32>,
    /// Major version of the pg_dump that wrote it, from `-- Dumped by pg_dump version N`.
    pub dumped_by: Option<u32>,
    /// Major version of the server, from `-- Dumped from database version N`.
    pub server_version: Option<u32>,
}

impl Catalog {
    pub fn get(&self, key: &Key) -> Option<&Block> {
        self.position(key).map(|i| &self.blocks[i])
    }

    /// Where the block with this key is in `blocks`.
    pub fn position(&self, key: &Key) -> Option<usize> {
        self.index
            .find(key_hash(key), |i| self.blocks[i].key == *key)
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.position(key).is_some()
    }

    /// The key and TOC indexes built anew over `blocks`, whose keys are unique.
    pub(crate) fn reindex(&mut self) {
        self.index = KeyIndex::default();
        self.by_toc = HashMap::with_capacity(self.blocks.len());
        for i in 0..self.blocks.len() {
            self.index_block(i);
        }
    }

    /// Enters the block at `i` in the key and TOC indexes.
    fn index_block(&mut self, i: usize) {
        let b = &self.blocks[i];
        self.index.insert(key_hash(&b.key), i);
        if let Some(t) = b.toc_id {
            self.by_toc.insert(t, i as u32);
        }
    }

    /// The position of the block with pg_dump's TOC id `toc`.
    pub fn at_toc(&self, toc: u32) -> Option<usize> {
        self.by_toc.get(&toc).map(|&i| i as usize)
    }

    /// Blocks that depend directly on each block, by pg_dump's graph: `dependents()[i]`.
    pub fn dependents(&self) -> Dependents {
        // (dependency, dependent) pairs, sorted: one flat list, not a list per block, of
        // positions as u32 (blocks are counted in u32 already), and the dependents copied out
        // at their exact size (memory: this is built during the plan stage, its peak).
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            for d in &b.deps {
                if let Some(p) = self.at_toc(*d) {
                    if p != i {
                        pairs.push((p as u32, i as u32));
                    }
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut starts = Vec::with_capacity(self.blocks.len() + 1);
        let mut k = 0;
        for i in 0..=self.blocks.len() {
            while k < pairs.len() && (pairs[k].0 as usize) < i {
                k += 1;
            }
            starts.push(k);
        }
        Dependents {
            starts,
            of: pairs.iter().map(|&(_, d)| d as usize).collect(),
        }
    }

    /// The first dependency that names a block, the object an attached entry belongs to.
    pub fn parent_of(&self, i: usize) -> Option<usize> {
        self.blocks[i]
            .deps
            .iter()
            .filter_map(|&d| self.at_toc(d))
            .find(|&p| p != i)
    }

    /// A digest of the whole schema in canonical form: equal for equal schemas, whatever the
    /// column order (a note, never a difference). Plans record TARGET's, so that a reviewed plan
    /// is only applied to the schema it was made for.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        // Sorted, so that dump order does not count: by the key's (fixed) hash, then the key
        // (pairs of hash and position: half the memory of holding the keys' references too).
        let mut order: Vec<(u64, u32)> = self
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| (key_hash(&b.key), i as u32))
            .collect();
        order.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                self.blocks[a.1 as usize]
                    .key
                    .cmp(&self.blocks[b.1 as usize].key)
            })
        });
        let mut h = Sha256::new();
        let mut lines = Vec::new();
        for (_, i) in order {
            let b = &self.blocks[i as usize];
            let k = &b.key;
            for (part, sep) in [
                (k.kind.as_str(), "\u{1}"),
                (k.schema.as_str(), "\u{1}"),
                (k.name.as_str(), "\u{2}"),
            ] {
                h.update(part.as_bytes());
                h.update(sep.as_bytes());
            }
            b.canonical_pieces(&mut lines, &mut |p| h.update(p.as_bytes()));
            h.update("\u{3}");
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Role names that appear as owners, for reports.
    pub fn owners(&self) -> BTreeSet<String> {
        self.blocks
            .iter()
            .filter(|b| !b.owner.is_empty())
            .map(|b| b.owner.to_string())
            .collect()
    }
}

/// A proptest runner for the catalog's tests that hold a hand-written reader to the pattern or
/// scanner it replaced: `cases` cases, from a fixed seed (the same cases every run).
#[cfg(test)]
pub(crate) fn fixed_runner(cases: u32, seed: u8) -> proptest::test_runner::TestRunner {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    )
}

#[cfg(test)]
mod tests {
    use super::reader::*;
    use super::*;

    const DUMP: &str = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\nSET statement_timeout = 0;\n\n--\n-- TOC entry 7 (class 2615 OID 16425)\n-- Name: app; Type: SCHEMA; Schema: -; Owner: postgres\n-- Data Pos: 0\n--\n\nCREATE SCHEMA app;\n\n\nALTER SCHEMA app OWNER TO postgres;\n\nSET default_tablespace = '';\n\n--\n-- TOC entry 220 (class 1259 OID 16451)\n-- Dependencies: 7\n-- Name: items; Type: TABLE; Schema: app; Owner: postgres\n-- Data Pos: 0\n--\n\nCREATE TABLE app.items (\n    id integer NOT NULL\n);\n\n\nALTER TABLE app.items OWNER TO postgres;\n\n--\n-- TOC entry 3416 (class 0 OID 0)\n-- Dependencies: 220\n-- Name: TABLE items; Type: COMMENT; Schema: app; Owner: postgres\n--\n\nCOMMENT ON TABLE app.items IS 'a; b';\n\n-- Completed on 2026-11-24\n\n\\unrestrict abc\n";

    #[test]
    fn headers_read_like_the_pattern() {
        assert_eq!(
            parse_header("-- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: root"),
            Some(("t t_pkey", "CONSTRAINT", "public", "root"))
        );
        assert_eq!(
            parse_header("-- Name: SCHEMA x; Type: COMMENT; Schema: -; Owner:"),
            Some(("SCHEMA x", "COMMENT", "-", ""))
        );
        // A name holding the separators keeps them (the pattern's first group is greedy).
        assert_eq!(
            parse_header("-- Name: a; Type: X; Schema: b; Type: TABLE; Schema: s; Owner: o"),
            Some(("a; Type: X; Schema: b", "TABLE", "s", "o"))
        );
        assert_eq!(
            parse_header("-- Name: t; Type: table; Schema: s; Owner: o"),
            None
        );
        assert_eq!(parse_header("-- Name: t"), None);
        // Regression (mutation test): a type with a stray space was read as an unknown kind,
        // which the planner then wrote into `DROP  CONSTRAINT`.
        for kind in [" CONSTRAINT", "FK  CONSTRAINT", "TABLE "] {
            let l = format!("-- Name: t; Type: {kind}; Schema: s; Owner: o");
            assert_eq!(parse_header(&l), None, "{l}");
        }
    }

    #[test]
    fn splits_blocks_and_owners() {
        let c = from_dump_text(DUMP, &Filter::default()).unwrap();
        let kinds: Vec<_> = c.blocks.iter().map(|b| b.key.kind.as_str()).collect();
        assert_eq!(kinds, ["SCHEMA", "OWNER", "TABLE", "OWNER", "COMMENT"]);
        assert_eq!(
            c.blocks[2].stmts[..],
            [Box::<str>::from(
                "CREATE TABLE app.items (\n    id integer NOT NULL\n)"
            )]
        );
        assert_eq!(*c.blocks[2].deps, [7]);
        assert_eq!(
            c.blocks[4].stmts[..],
            [Box::<str>::from("COMMENT ON TABLE app.items IS 'a; b'")]
        );
        assert!(c.blocks[2].table().is_some());
        assert_eq!(c.blocks[3].key.display(), "owner of table app.items");
        assert_eq!(c.blocks[4].key.display(), "comment on table app.items");
    }

    #[test]
    fn filters() {
        let f = Filter {
            no_owner: true,
            exclude_schemas: vec!["app".into()],
            ..Default::default()
        };
        let c = from_dump_text(DUMP, &f).unwrap();
        assert!(c.blocks.is_empty());
        let f = Filter {
            no_owner: true,
            ..Default::default()
        };
        let c = from_dump_text(DUMP, &f).unwrap();
        assert_eq!(c.blocks.len(), 3);
    }

    #[test]
    fn plain_dumps_get_an_inferred_graph() {
        let plain = "--\n-- PostgreSQL database dump\n--\n\n--\n-- Name: t; Type: TABLE; Schema: public; Owner: x\n--\n\nCREATE TABLE public.t (\n    a integer\n);\n\n--\n-- Name: v; Type: VIEW; Schema: public; Owner: x\n--\n\nCREATE VIEW public.v AS\n SELECT t.a\n   FROM public.t;\n\n--\n-- Name: TABLE t; Type: COMMENT; Schema: public; Owner: x\n--\n\nCOMMENT ON TABLE public.t IS 'x';\n";
        let c = from_dump_text(plain, &Filter::default()).unwrap();
        let t = c.blocks[0].toc_id.unwrap();
        assert_eq!(*c.blocks[1].deps, [t]);
        assert_eq!(*c.blocks[2].deps, [t]);
        assert_eq!(c.dependents()[0], [1, 2]);
    }

    /// Regression (mutation test): a NUL in a header's schema went into `DROP INDEX "\0public".i`.
    #[test]
    fn headers_hold_no_control_characters() {
        let broken = DUMP.replacen(
            "Schema: app; Owner: postgres\n-- Data Pos",
            "Schema: \0app; Owner: postgres\n-- Data Pos",
            1,
        );
        assert_ne!(broken, DUMP);
        let e = from_dump_text(&broken, &Filter::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("control character"), "{e}");
    }

    /// Regression (mutation test): a header without its closing `--` swallowed the entry's
    /// statements, leaving an ALTER TABLE where the CREATE TABLE was.
    #[test]
    fn a_header_must_be_closed() {
        let broken = DUMP.replacen(
            "-- Name: items; Type: TABLE; Schema: app; Owner: postgres\n-- Data Pos: 0\n--\n",
            "-- Name: items; Type: TABLE; Schema: app; Owner: postgres\n-- Data Pos: 0\n",
            1,
        );
        assert_ne!(broken, DUMP);
        let e = from_dump_text(&broken, &Filter::default()).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("Name: items; Type: TABLE; Schema: app") && e.contains("no closing `--`"),
            "{e}"
        );
    }

    #[test]
    fn rejects_non_dumps() {
        let e = from_dump_text("SELECT 1;", &Filter::default()).unwrap_err();
        assert!(e.to_string().contains("not the output of pg_dump"));
    }

    #[test]
    fn owner_statement_split() {
        let (k, id, role) =
            split_owner_stmt("ALTER FUNCTION app.f(a integer) OWNER TO \"Big Boss\"").unwrap();
        assert_eq!(k, "FUNCTION");
        assert_eq!(id, "app.f(a integer)");
        assert_eq!(role, "\"Big Boss\"");
        let (k, id, _) =
            split_owner_stmt("ALTER TEXT SEARCH CONFIGURATION public.c OWNER TO x").unwrap();
        assert_eq!(k, "TEXT SEARCH CONFIGURATION");
        assert_eq!(id, "public.c");
    }
    #[test]
    fn pg_attver_options_are_not_schema() {
        let only = "ALTER TABLE ONLY public.t ALTER COLUMN id SET (pg_attver=40506113288)";
        assert_eq!(without_pg_attver(only.to_string()), None);
        let mixed = "ALTER TABLE ONLY public.t ALTER COLUMN id SET (n_distinct=5, pg_attver=1)";
        assert_eq!(
            without_pg_attver(mixed.to_string()).as_deref(),
            Some("ALTER TABLE ONLY public.t ALTER COLUMN id SET (n_distinct=5)")
        );
        let other = "ALTER TABLE ONLY public.t ALTER COLUMN id SET (n_distinct=5)";
        assert_eq!(without_pg_attver(other.to_string()).as_deref(), Some(other));
        let dump = "--\n-- PostgreSQL database dump\n--\n\n--\n-- Name: t; Type: TABLE; Schema: public; Owner: postgres\n--\n\nCREATE TABLE public.t (\n    id integer\n);\nALTER TABLE ONLY public.t ALTER COLUMN id SET (pg_attver=40506113288);\n\n\nALTER TABLE public.t OWNER TO postgres;\n";
        let plain = "--\n-- PostgreSQL database dump\n--\n\n--\n-- Name: t; Type: TABLE; Schema: public; Owner: postgres\n--\n\nCREATE TABLE public.t (\n    id integer\n);\n\n\nALTER TABLE public.t OWNER TO postgres;\n";
        let (a, b) = (
            from_dump_text(dump, &Filter::default()).unwrap(),
            from_dump_text(plain, &Filter::default()).unwrap(),
        );
        assert!(crate::diff::diff(&a, &b).is_empty());
    }
    #[test]
    fn statements_read_the_same_from_every_pg_dump() {
        let n = |s: &str, kind: &str, v: Option<u32>| {
            same_for_every_pg_dump(s.to_string(), &ObjectKind::from_text(kind), v)
        };
        assert_eq!(
            n("ALTER TABLE public.s OWNER TO app", "SEQUENCE", Some(15)),
            "ALTER SEQUENCE public.s OWNER TO app"
        );
        assert_eq!(
            n(
                "ALTER TABLE public.v OWNER TO app",
                "MATERIALIZED VIEW",
                Some(15)
            ),
            "ALTER MATERIALIZED VIEW public.v OWNER TO app"
        );
        assert_eq!(
            n("ALTER TABLE public.t OWNER TO app", "TABLE", Some(15)),
            "ALTER TABLE public.t OWNER TO app"
        );
        assert_eq!(
            n(
                "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA s GRANT SELECT ON TABLES  TO r",
                "DEFAULT ACL",
                Some(15)
            ),
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA s GRANT SELECT ON TABLES TO r"
        );
        assert_eq!(
            n(
                "ALTER DEFAULT PRIVILEGES FOR ROLE postgres REVOKE ALL ON FUNCTIONS  FROM PUBLIC",
                "DEFAULT ACL",
                Some(15)
            ),
            "ALTER DEFAULT PRIVILEGES FOR ROLE postgres REVOKE ALL ON FUNCTIONS FROM PUBLIC"
        );
        let seven = "GRANT SELECT,INSERT,REFERENCES,DELETE,TRIGGER,TRUNCATE,UPDATE ON TABLE public.t TO r WITH GRANT OPTION";
        assert_eq!(
            n(seven, "ACL", Some(13)),
            "GRANT ALL ON TABLE public.t TO r WITH GRANT OPTION"
        );
        // From 17 on the seven are not all of them (MAINTAIN), and a missing version says nothing.
        assert_eq!(n(seven, "ACL", Some(17)), seven);
        assert_eq!(n(seven, "ACL", None), seven);
        let six = "GRANT SELECT,INSERT,REFERENCES,DELETE,TRIGGER,TRUNCATE ON TABLE public.t TO r";
        assert_eq!(n(six, "ACL", Some(13)), six);
    }
}
