//! A dump, split into blocks keyed by pg_dump's own identity (Type, Schema, Name), normalized so
//! that two dumps of equal schemas are equal block by block. Pure: text in, values out.

pub mod compat;
pub mod kind;
pub mod majors;
pub mod parse;
pub mod privileges;
pub mod read;
pub mod validate;
pub mod view;

use anyhow::{bail, Result};
use regex::Regex;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

pub use kind::ObjectKind;
pub use parse::{qualified, quote_ident, quote_literal, TableDef};
pub use validate::validate;

/// The short strings of a block (kind, schema, name, owner): held inline up to 24 bytes, so a
/// large schema's ~100,000 blocks a side do not each pay four heap allocations for them.
pub type Str = compact_str::CompactString;

/// A block's statements: most blocks have one, held inline.
pub type Stmts = smallvec::SmallVec<[String; 1]>;

/// A block's TOC dependencies: most blocks have a few, held inline.
pub type Deps = smallvec::SmallVec<[u32; 4]>;

/// An object's identity as pg_dump names it in its header comment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Key {
    /// pg_dump's Type: `TABLE`, `FK CONSTRAINT`, `COMMENT`, ... and pgalign's own `OWNER`.
    pub kind: ObjectKind,
    /// Empty for objects outside any schema.
    pub schema: Str,
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
    pub owner: Str,
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
        owner: Str,
        stmts: Stmts,
        settings: Box<[String]>,
        identity: Option<Str>,
    ) -> Block {
        let is_table = matches!(key.kind, ObjectKind::Table | ObjectKind::ForeignTable);
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
                if !matches!(self.key.kind, ObjectKind::Table | ObjectKind::ForeignTable) {
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
        if !self.has_table_text() {
            return self.compare_text();
        }
        let first = self.stmts.first().map(String::as_str).unwrap_or("");
        let (head, rest) = first.split_once(" (\n").unwrap_or((first, ""));
        let Some(close) = rest.rfind("\n)") else {
            return self.compare_text();
        };
        let mut lines: Vec<&str> = rest[..close]
            .lines()
            .map(|l| l.trim_end_matches(','))
            .collect();
        lines.sort_unstable();
        let mut s = self.settings().join(";\n");
        s.push('\n');
        s.push_str(head);
        s.push('\n');
        s.push_str(&lines.join("\n"));
        s.push_str(&rest[close..]);
        s.push('\n');
        for st in self.stmts.iter().skip(1) {
            s.push_str(st);
            s.push_str(";\n");
        }
        s
    }

    /// Whether `canonical_text` sorts an element list here (a CREATE TABLE with one).
    fn has_table_text(&self) -> bool {
        matches!(self.key.kind, ObjectKind::Table | ObjectKind::ForeignTable)
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

/// Reads `-- Name: N; Type: T; Schema: S; Owner: O` as the pattern
/// `^-- Name: (.*); Type: ([A-Z ]+); Schema: (.*); Owner: ?(.*)$` would (greedy: a name holding
/// `; Type: ` keeps it), without a regex: it runs on every object of the dump.
fn parse_header(l: &str) -> Option<(&str, &str, &str, &str)> {
    header_fields(l.strip_prefix("-- Name: ")?)
}

/// `parse_header` after its `-- Name: `.
fn header_fields(rest: &str) -> Option<(&str, &str, &str, &str)> {
    let oi = rest.rfind("; Owner:")?;
    let after = &rest[oi + "; Owner:".len()..];
    let owner = after.strip_prefix(' ').unwrap_or(after);
    let before = &rest[..oi];
    let mut end = before.len();
    while let Some(ti) = before[..end].rfind("; Type: ") {
        let tail = &before[ti + "; Type: ".len()..];
        if let Some(si) = tail.find("; Schema: ") {
            let kind = &tail[..si];
            // Words of capitals, one space apart (`FK CONSTRAINT`): the type is matched against
            // known ones, and ` CONSTRAINT` must not pass for another.
            let words_ok = kind
                .split(' ')
                .all(|w| !w.is_empty() && w.bytes().all(|c| c.is_ascii_uppercase()));
            if words_ok {
                return Some((&before[..ti], kind, &tail[si + "; Schema: ".len()..], owner));
            }
        }
        end = ti;
    }
    None
}

fn owner_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let kinds = OBJECT_KINDS.join("|");
        Regex::new(&format!(
            r#"(?s)^ALTER ({kinds}) (.+) OWNER TO ("(?:[^"]|"")+"|[^\s"]+)$"#
        ))
        .unwrap()
    })
}

fn version_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^-- Dumped (from database|by pg_dump) version (\d+)").unwrap())
}

/// Splits an `ALTER <KIND> <identity> OWNER TO <role>` statement into (kind, identity, role).
pub fn split_owner_stmt(stmt: &str) -> Option<(String, String, String)> {
    // Most statements are not ALTER ... OWNER TO: skip the regex for them (every statement of
    // the dump passes here).
    if !stmt.starts_with("ALTER ") || !stmt.contains(" OWNER TO ") {
        return None;
    }
    let c = owner_re().captures(stmt)?;
    Some((
        c[1].trim().to_string(),
        c[2].trim().to_string(),
        c[3].to_string(),
    ))
}

struct RawBlock {
    name: Str,
    kind: ObjectKind,
    schema: Str,
    owner: Str,
    toc_id: Option<u32>,
    deps: Vec<u32>,
    body: String,
    settings: Vec<String>,
}

/// Lines of a dump without their line ends, with one line of lookahead, read into buffers that
/// are reused (no allocation per line).
struct Lines<R> {
    reader: R,
    peeked: String,
    has_peeked: bool,
    done: bool,
}

impl<R: std::io::BufRead> Lines<R> {
    fn new(reader: R) -> Self {
        Lines {
            reader,
            peeked: String::new(),
            has_peeked: false,
            done: false,
        }
    }

    /// Reads the next line into `buf`; false at the end.
    fn read(&mut self, buf: &mut String) -> Result<bool> {
        buf.clear();
        if self.done {
            return Ok(false);
        }
        match self.reader.read_line(buf) {
            Ok(0) => {
                self.done = true;
                Ok(false)
            }
            Ok(_) => {
                if buf.ends_with('\n') {
                    buf.pop();
                    if buf.ends_with('\r') {
                        buf.pop();
                    }
                }
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                bail!("this is not a pg_dump file (not UTF-8 text and not a custom-format archive)")
            }
            Err(e) => Err(anyhow::anyhow!("reading the dump: {e}")),
        }
    }

    /// The next line into `line`; false at the end.
    fn next_into(&mut self, line: &mut String) -> Result<bool> {
        if self.has_peeked {
            self.has_peeked = false;
            std::mem::swap(line, &mut self.peeked);
            return Ok(true);
        }
        let mut buf = std::mem::take(line);
        let more = self.read(&mut buf)?;
        *line = buf;
        Ok(more)
    }

    fn peek(&mut self) -> Result<Option<&str>> {
        if !self.has_peeked {
            let mut buf = std::mem::take(&mut self.peeked);
            self.has_peeked = self.read(&mut buf)?;
            self.peeked = buf;
        }
        Ok(self.has_peeked.then_some(self.peeked.as_str()))
    }
}

/// Builds a catalog from the text of `pg_dump --schema-only` (plain) or of
/// `pg_restore --verbose --file=-` over a custom-format archive.
pub fn from_dump_text(text: &str, filter: &Filter) -> Result<Catalog> {
    from_dump_reader(text.as_bytes(), filter)
}

/// Builds a catalog from a dump read line by line (a file, or pg_restore's output as it comes),
/// so that the whole text is never held: only the block being read.
pub fn from_dump_reader(reader: impl std::io::BufRead, filter: &Filter) -> Result<Catalog> {
    let mut cat = Catalog::default();
    // Blocks are finished one at a time, so only one block's raw text is held at once.
    let mut raw_count: u32 = 0;
    let mut plain = true;
    let mut is_dump = false;
    let mut cur: Option<RawBlock> = None;
    let mut settings: BTreeMap<&str, String> = BTreeMap::new();
    let mut pending_toc: Option<u32> = None;
    let mut pending_deps: Vec<u32> = Vec::new();
    // An entry that holds no schema (table data, the database itself): refused with the first
    // statement it holds, or without one at the next header or the end.
    let mut refused: Option<Refused> = None;
    // One pass over the lines, one line of lookahead (no list of all lines: memory).
    let mut lines = Lines::new(reader);
    let mut line_buf = String::new();
    while lines.next_into(&mut line_buf)? {
        let line = line_buf.as_str();
        if !is_dump && line.starts_with("-- PostgreSQL database dump") {
            is_dump = true;
        }
        if line == "-- PostgreSQL database cluster dump" {
            bail!("this is pg_dumpall output (a cluster dump: roles, tablespaces and every database, joined by \\connect), not one database's schema: dump one database with pg_dump --schema-only");
        }
        if let Some(r) = &refused {
            if is_statement_line(line) {
                bail!(
                    "{}: {} ({}): {}",
                    r.entry,
                    r.why,
                    validate::summary(line),
                    r.advice
                );
            }
            if line == "--" && lines.peek()?.is_some_and(is_header_line) {
                bail!("{}: {}: {}", r.entry, r.why, r.advice);
            }
        }
        if is_dump
            && cur.is_none()
            && refused.is_none()
            && is_statement_line(line)
            && !is_preamble_line(line)
        {
            // Before the first entry pg_dump writes settings only (pg_dumpall: roles, databases).
            // pg_dump --clean writes its DROPs there, before any entry.
            let clean = line.starts_with("DROP ")
                || (line.starts_with("ALTER ") && line.contains(" DROP "));
            let refusal = if clean {
                Some(validate::drops(line))
            } else {
                validate::refuse_statement("", line)
            };
            let why = refusal.unwrap_or_else(|| {
                format!(
                    "it has {}, where pg_dump writes settings only: {}",
                    validate::summary(line),
                    "make it again with pg_dump --schema-only"
                )
            });
            bail!("the dump's preamble (before its first entry): {why}");
        }
        if let Some(c) = line
            .starts_with("-- Dumped ")
            .then(|| version_re().captures(line))
            .flatten()
        {
            let v: u32 = c[2].parse().unwrap_or(0);
            if &c[1] == "by pg_dump" {
                cat.dumped_by = Some(v);
            } else {
                cat.server_version = Some(v);
            }
        }
        // A header is `--` then `-- TOC entry` / `-- Dependencies` / `-- Name:` lines then `--`.
        if line == "--" && lines.peek()?.is_some_and(is_header_line) {
            let mut header: Option<(Str, Str, Str, Str)> = None;
            let mut seen: Vec<String> = vec![line.to_string()];
            let mut l = String::new();
            while lines.next_into(&mut l)? {
                seen.push(l.clone());
                let l = l.as_str();
                if l == "--" {
                    break;
                }
                if !l.starts_with("--") {
                    // pg_dump's header is comment lines only, closed by `--`: without the
                    // closing line it would swallow the entry's statements.
                    if let Some((n, k, sc, _)) = &header {
                        let sc = if sc == "-" { "" } else { sc.as_str() };
                        bail!(
                            "{}: its header has no closing `--` line before `{}`: the dump is damaged; make it again with pg_dump --schema-only",
                            validate::entry_name(k, sc, n, pending_toc),
                            validate::summary(l)
                        );
                    }
                    break;
                }
                if let Some(rest) = l.strip_prefix("-- TOC entry ") {
                    pending_toc = rest.split(' ').next().and_then(|n| n.parse().ok());
                } else if let Some(rest) = l.strip_prefix("-- Dependencies: ") {
                    pending_deps = rest
                        .split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect();
                } else if let Some((n, k, sc, o)) = parse_header(l).or_else(|| data_header(l)) {
                    // pg_dump writes names in headers with line breaks made spaces; other
                    // control characters cannot be in a name at all.
                    if l.chars().any(|c| c.is_control() && c != '\t') {
                        bail!(
                            "the header of {} holds a control character, which pg_dump never writes: the dump is damaged; make it again with pg_dump --schema-only",
                            validate::entry_name(k, if sc == "-" { "" } else { sc }, n, pending_toc)
                        );
                    }
                    header = Some((n.into(), k.into(), sc.into(), o.into()));
                }
            }
            if let Some((name, kind, schema, owner)) = header {
                if let Some(b) = cur.take() {
                    add_raw_block(&mut cat, b, filter, &mut raw_count, &mut plain)?;
                }
                if validate::refuse_entry(&kind).is_some() {
                    refused = Some(Refused::new(&kind, &schema, &name, pending_toc.take()));
                    continue;
                }
                cur = Some(RawBlock {
                    name,
                    kind: ObjectKind::from_text(&kind),
                    schema: if schema == "-" {
                        Str::default()
                    } else {
                        schema
                    },
                    owner: if owner == "-" { Str::default() } else { owner },
                    toc_id: pending_toc.take(),
                    deps: std::mem::take(&mut pending_deps),
                    body: String::new(),
                    settings: settings
                        .iter()
                        .filter(|(k, v)| !is_default_setting(k, v))
                        .map(|(k, v)| format!("SET {k} = {v}"))
                        .collect(),
                });
                continue;
            }
            // Not an object's header after all: the lines belong to the block being read.
            if let Some(b) = cur.as_mut() {
                for l in seen.iter().filter(|l| !is_noise_line(l)) {
                    b.body.push_str(l);
                    b.body.push('\n');
                }
            }
            continue;
        }
        // `SET default_tablespace` and friends between blocks set the scene for the next ones.
        if let Some(rest) = line.strip_prefix("SET ") {
            if let Some((k, v)) = rest.strip_suffix(';').and_then(|r| r.split_once(" = ")) {
                // The value goes into the plan with the objects made under it: one word or one
                // quoted name, as pg_dump writes it, or the line is read as a statement.
                if (k == "default_tablespace" || k == "default_table_access_method")
                    && is_setting_value(v)
                {
                    let k: &'static str = if k == "default_tablespace" {
                        "default_tablespace"
                    } else {
                        "default_table_access_method"
                    };
                    settings.insert(k, v.to_string());
                    continue;
                }
            }
        }
        if let Some(b) = cur.as_mut() {
            if !is_noise_line(line) {
                b.body.push_str(line);
                b.body.push('\n');
            }
        }
    }
    if !is_dump {
        bail!("this is not the output of pg_dump (no \"PostgreSQL database dump\" header); give a file made by `pg_dump --schema-only`, plain or --format=custom");
    }
    if let Some(r) = refused {
        bail!("{}: {}: {}", r.entry, r.why, r.advice);
    }
    if let Some(b) = cur.take() {
        add_raw_block(&mut cat, b, filter, &mut raw_count, &mut plain)?;
    }
    if !plain {
        // pg_restore --verbose gives every entry a TOC id; numbers pgalign gave to entries
        // without one mean nothing in such a dump.
        for b in cat.blocks.iter_mut() {
            if b.toc_id.is_some_and(|t| t >= SYNTHETIC_TOC_BASE) {
                b.toc_id = None;
            }
        }
        cat.by_toc.retain(|t, _| *t < SYNTHETIC_TOC_BASE);
    }
    if plain {
        infer_dependencies(&mut cat);
    }
    // Read as a stream, the number of blocks was not known up front: give back what doubling
    // over-reserved (up to half the list; a large buffer shrinks in place).
    cat.blocks.shrink_to_fit();
    Ok(cat)
}

/// Turns one block of the dump into catalog entries (the object, and its owner as an entry of
/// its own). A plain dump has no TOC ids: blocks are numbered as they come, and the dependency
/// graph is inferred once all are read.
fn add_raw_block(
    cat: &mut Catalog,
    mut raw: RawBlock,
    filter: &Filter,
    raw_count: &mut u32,
    plain: &mut bool,
) -> Result<()> {
    if raw.toc_id.is_some() {
        *plain = false;
    } else {
        raw.toc_id = Some(SYNTHETIC_TOC_BASE + *raw_count);
    }
    *raw_count += 1;
    if !keep_block(&raw, filter) {
        return Ok(());
    }
    let entry = || validate::entry_name(raw.kind.as_str(), &raw.schema, &raw.name, raw.toc_id);
    let split = parse::split_script(&raw.body).map_err(|e| {
        anyhow::anyhow!(
            "{}: {e}: the dump is damaged; make it again with pg_dump --schema-only",
            entry()
        )
    })?;
    // What is not SQL at all (a psql command ends at its line, not at a semicolon) first.
    if let Some(why) = split
        .stmts
        .iter()
        .find_map(|s| validate::refuse_statement(raw.kind.as_str(), s))
    {
        bail!("{}: {why}", entry());
    }
    if split.unterminated {
        bail!(
            "{}: its last statement ({}) has no semicolon after it: the dump was cut; make it again with pg_dump --schema-only",
            entry(),
            validate::summary(split.stmts.last().map_or("", String::as_str))
        );
    }
    let mut defs = Vec::new();
    let mut owner_stmt = None;
    for s in split.stmts {
        let is_set = s.starts_with("SET ") || s.starts_with("SELECT pg_catalog.set_config");
        if is_set {
            continue;
        }
        let Some(s) = without_pg_attver(s) else {
            continue;
        };
        let s = same_for_every_pg_dump(s, &raw.kind, cat.server_version);
        let s = same_on_every_server(s, &raw);
        if split_owner_stmt(&s).is_some() && owner_stmt.is_none() && raw.kind != ObjectKind::Acl {
            owner_stmt = Some(s);
        } else {
            defs.push(s);
        }
    }
    // A block with nothing but its owner (initdb's public schema) says nothing when owners are ignored.
    if defs.is_empty() && (owner_stmt.is_none() || filter.no_owner) {
        return Ok(());
    }
    // Tens of thousands of blocks a side: no spare capacity (one statement and a few
    // dependencies are held inline), and the raw block's strings are moved, not copied.
    let owner_key = (owner_stmt.is_some() && !filter.no_owner).then(|| Key {
        kind: ObjectKind::Owner,
        schema: raw.schema.clone(),
        name: compact_str::format_compact!("{} {}", raw.kind, raw.name),
    });
    let identity = owner_stmt
        .as_deref()
        .and_then(split_owner_stmt)
        .map(|(_, id, _)| Str::from(id));
    let owner = if owner_key.is_some() {
        raw.owner.clone()
    } else {
        std::mem::take(&mut raw.owner)
    };
    let block = Block::new(
        Key {
            kind: std::mem::replace(&mut raw.kind, ObjectKind::Owner),
            schema: std::mem::take(&mut raw.schema),
            name: std::mem::take(&mut raw.name),
        },
        raw.toc_id,
        std::mem::take(&mut raw.deps).into_iter().collect(),
        owner,
        defs.into_iter().collect(),
        std::mem::take(&mut raw.settings).into_boxed_slice(),
        identity,
    );
    let toc_id = raw.toc_id;
    push_block(cat, block);
    if let (Some(stmt), Some(okey)) = (owner_stmt, owner_key) {
        // Ownership is an object of its own, so a new owner is never a changed table.
        push_block(
            cat,
            Block::new(
                okey,
                None,
                toc_id.into_iter().collect(),
                std::mem::take(&mut raw.owner),
                smallvec::smallvec![stmt],
                Box::default(),
                None,
            ),
        );
    }
    Ok(())
}

/// One statement as a server of any major prints it, where majors differ only in how they print
/// the same object (see `majors`).
fn same_on_every_server(stmt: String, raw: &RawBlock) -> String {
    let kind = &raw.kind;
    if matches!(
        kind,
        ObjectKind::Procedure | ObjectKind::Comment | ObjectKind::Acl | ObjectKind::SecurityLabel
    ) && stmt.contains("PROCEDURE ")
    {
        if let Some(s) = majors::procedure_without_in(&stmt) {
            return s;
        }
    }
    if *kind == ObjectKind::Type {
        if let Some(s) = majors::range_without_default_multirange(&stmt, &raw.schema, &raw.name) {
            return s;
        }
    }
    stmt
}

/// TOC ids pgalign gives the blocks of a plain dump, far above pg_dump's own.
const SYNTHETIC_TOC_BASE: u32 = 1 << 30;

fn qualified_name_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\.(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)"#)
            .unwrap()
    })
}

/// A plain dump carries no dependency graph. Rebuild an approximation: a block depends on its
/// schema and on every named object whose schema-qualified name (as pg_dump writes it) appears in
/// its statements. pg_dump qualifies every reference when it writes a dump, so this finds what
/// views, indexes, constraints, triggers, defaults, comments and grants refer to.
fn infer_dependencies(cat: &mut Catalog) {
    let mut names: HashMap<String, Vec<u32>> = HashMap::new();
    let mut schemas: HashMap<String, u32> = HashMap::new();
    for b in &cat.blocks {
        let Some(id) = b.toc_id else { continue };
        match &b.key.kind {
            ObjectKind::Schema => {
                schemas.insert(b.key.name.to_string(), id);
            }
            ObjectKind::Table
            | ObjectKind::View
            | ObjectKind::MaterializedView
            | ObjectKind::Sequence
            | ObjectKind::ForeignTable
            | ObjectKind::Type
            | ObjectKind::Domain
            | ObjectKind::Function
            | ObjectKind::Procedure
            | ObjectKind::Aggregate
            | ObjectKind::Index => {
                let base = b.key.name.split('(').next().unwrap_or(&b.key.name);
                names
                    .entry(qualified(&b.key.schema, base))
                    .or_default()
                    .push(id);
            }
            _ => {}
        }
    }
    for b in cat.blocks.iter_mut() {
        if b.key.kind == ObjectKind::Owner {
            continue;
        }
        let own = b.toc_id;
        let mut deps: Vec<u32> = Vec::new();
        if let Some(&s) = schemas.get(b.key.schema.as_str()) {
            deps.push(s);
        }
        for st in &b.stmts {
            for m in qualified_name_re().find_iter(st) {
                if let Some(ids) = names.get(m.as_str()) {
                    deps.extend(ids.iter().copied().filter(|&i| Some(i) != own));
                }
            }
        }
        b.add_deps(deps);
    }
    infer_constraint_comment_dependencies(cat);
    infer_index_dependencies(cat);
}

/// `COMMENT ON CONSTRAINT c ON t` names the table, qualified, and the constraint only bare: it
/// depends on the constraint (its tag is `CONSTRAINT c ON t`; the constraint's is `t c`).
fn infer_constraint_comment_dependencies(cat: &mut Catalog) {
    let constraints: HashMap<(String, String), u32> = cat
        .blocks
        .iter()
        .filter(|b| b.key.kind.is_constraint())
        .filter_map(|b| {
            Some((
                (b.key.schema.to_string(), b.key.name.to_string()),
                b.toc_id?,
            ))
        })
        .collect();
    if constraints.is_empty() {
        return;
    }
    for b in cat.blocks.iter_mut() {
        if !matches!(b.key.kind, ObjectKind::Comment | ObjectKind::SecurityLabel) {
            continue;
        }
        let Some((c, t)) = b
            .key
            .name
            .strip_prefix("CONSTRAINT ")
            .and_then(|r| r.split_once(" ON "))
        else {
            continue;
        };
        if let Some(&id) = constraints.get(&(b.key.schema.to_string(), format!("{t} {c}"))) {
            b.add_deps([id]);
        }
    }
}

/// What pg_dump's graph knows and names alone do not tell: an index attached to a partitioned
/// index depends on that index (dropping the parent drops it), and a foreign key depends on the
/// unique constraint or index of the referenced columns (which cannot go while it stands).
fn infer_index_dependencies(cat: &mut Catalog) {
    // Plain string matching, not regexes: a regex's lazy DFA cache per thread would add
    // megabytes to the peak on schemas of many thousand indexes.
    fn cols_in(rest: &str) -> Option<&str> {
        let rest = rest.strip_prefix('(')?;
        Some(&rest[..rest.find(')')?])
    }
    // `ALTER INDEX p ATTACH PARTITION c` -> (p, c).
    let attach = |st: &str| -> Option<(String, String)> {
        let (p, c) = st
            .strip_prefix("ALTER INDEX ")?
            .split_once(" ATTACH PARTITION ")?;
        Some((p.to_string(), c.to_string()))
    };
    // `ALTER TABLE [ONLY] t ADD CONSTRAINT k UNIQUE|PRIMARY KEY (cols)` -> (t, cols).
    let unique = |st: &str| -> Option<(String, String)> {
        let rest = st.strip_prefix("ALTER TABLE ")?;
        let rest = rest.strip_prefix("ONLY ").unwrap_or(rest);
        let (table, rest) = rest.split_once(char::is_whitespace)?;
        let rest = rest.trim_start().strip_prefix("ADD CONSTRAINT ")?;
        let (_, rest) = rest.split_once(' ')?;
        let rest = rest
            .strip_prefix("PRIMARY KEY ")
            .or_else(|| rest.strip_prefix("UNIQUE NULLS NOT DISTINCT "))
            .or_else(|| rest.strip_prefix("UNIQUE "))?;
        Some((table.to_string(), cols_in(rest)?.to_string()))
    };
    // `CREATE UNIQUE INDEX i ON [ONLY] t USING m (cols)` (nothing after) -> (t, cols).
    let unique_index = |st: &str| -> Option<(String, String)> {
        let rest = st.strip_prefix("CREATE UNIQUE INDEX ")?;
        let (_, rest) = rest.split_once(" ON ")?;
        let rest = rest.strip_prefix("ONLY ").unwrap_or(rest);
        let (table, rest) = rest.split_once(" USING ")?;
        let (_, rest) = rest.split_once(' ')?;
        let cols = cols_in(rest)?;
        (rest.len() == cols.len() + 2).then(|| (table.to_string(), cols.to_string()))
    };
    // `... REFERENCES t(cols)` -> (t, cols).
    let references = |st: &str| -> Option<(String, String)> {
        let rest = &st[st.find("REFERENCES ")? + "REFERENCES ".len()..];
        let open = rest.find('(')?;
        Some((
            rest[..open].to_string(),
            cols_in(&rest[open..])?.to_string(),
        ))
    };
    // Keys are hashes, not strings: this runs on every block of a large schema, and what it
    // allocates stays in the process's peak memory.
    fn hash_of(parts: &[&str]) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        for p in parts {
            p.hash(&mut h);
        }
        h.finish()
    }
    // A column list without its spaces, as parts: `a, b` and `a,b` hash alike.
    let key_of = |table: &str, cols: &str| {
        let mut parts: Vec<&str> = vec![table];
        parts.extend(cols.split(',').map(str::trim));
        hash_of(&parts)
    };
    // Index name (qualified as printed) -> its block's id; (table, columns) -> unique keys' ids.
    let mut indexes: HashMap<u64, u32> = HashMap::new();
    let mut keys: HashMap<u64, Vec<u32>> = HashMap::new();
    let mut attaches: Vec<(u64, u64)> = Vec::new();
    for b in &cat.blocks {
        let (Some(id), Some(st)) = (b.toc_id, b.stmts.first()) else {
            continue;
        };
        match &b.key.kind {
            ObjectKind::Index => {
                indexes.insert(hash_of(&[&qualified(&b.key.schema, &b.key.name)]), id);
                if let Some((t, c)) = unique_index(st) {
                    keys.entry(key_of(&t, &c)).or_default().push(id);
                }
            }
            ObjectKind::Constraint => {
                if let Some((t, c)) = unique(st) {
                    keys.entry(key_of(&t, &c)).or_default().push(id);
                }
            }
            ObjectKind::IndexAttach => {
                if let Some((p, c)) = attach(st) {
                    attaches.push((hash_of(&[&p]), hash_of(&[&c])));
                }
            }
            _ => {}
        }
    }
    // (dependent, dependency) pairs.
    let mut extra: Vec<(u32, u32)> = Vec::new();
    for (parent, child) in attaches {
        if let (Some(&p), Some(&c)) = (indexes.get(&parent), indexes.get(&child)) {
            extra.push((c, p));
        }
    }
    drop(indexes);
    for b in &cat.blocks {
        if b.key.kind != ObjectKind::FkConstraint {
            continue;
        }
        let (Some(id), Some(st)) = (b.toc_id, b.stmts.first()) else {
            continue;
        };
        if let Some((t, c)) = references(st) {
            if let Some(ids) = keys.get(&key_of(&t, &c)) {
                extra.extend(ids.iter().map(|&k| (id, k)));
            }
        }
    }
    drop(keys);
    if extra.is_empty() {
        return;
    }
    extra.sort_unstable();
    for b in cat.blocks.iter_mut() {
        let Some(id) = b.toc_id else { continue };
        let from = extra.partition_point(|&(d, _)| d < id);
        let more: Vec<u32> = extra[from..]
            .iter()
            .take_while(|&&(d, _)| d == id)
            .map(|&(_, k)| k)
            .collect();
        if !more.is_empty() {
            b.add_deps(more);
        }
    }
}

fn push_block(cat: &mut Catalog, mut block: Block) {
    // pg_dump tags are unique per type and schema in practice; if two ever collide, keep both.
    if cat.contains(&block.key) {
        let base = block.key.name.clone();
        let mut n = 2;
        while cat.contains(&block.key) {
            block.key.name = compact_str::format_compact!("{base} #{n}");
            n += 1;
        }
    }
    let idx = cat.blocks.len();
    cat.insert_position(&block.key, idx);
    if let Some(t) = block.toc_id {
        cat.by_toc.insert(t, idx as u32);
    }
    cat.blocks.push(block);
}

/// An entry refused at its header (see `validate::refuse_entry`).
struct Refused {
    entry: String,
    why: &'static str,
    advice: &'static str,
}

impl Refused {
    fn new(kind: &str, schema: &str, name: &str, toc: Option<u32>) -> Refused {
        let schema = if schema == "-" { "" } else { schema };
        Refused {
            entry: validate::entry_name(kind, schema, name, toc),
            why: validate::refuse_entry(kind).unwrap_or("not a schema-only dump"),
            advice: validate::refuse_entry_advice(kind),
        }
    }
}

/// A line that holds SQL or a psql command (not blank, not a comment).
fn is_statement_line(l: &str) -> bool {
    let t = l.trim();
    !t.is_empty() && !t.starts_with("--") && !is_noise_line(l)
}

/// What pg_dump writes before its first entry: settings.
fn is_preamble_line(l: &str) -> bool {
    (l.starts_with("SET ") || l.starts_with("SELECT pg_catalog.set_config("))
        && l.ends_with(';')
        && l.matches(';').count() == 1
}

/// A `SET default_tablespace` / `default_table_access_method` value as pg_dump writes it: one
/// word, `''`, or one double-quoted name.
fn is_setting_value(v: &str) -> bool {
    let quoted = |q: char| {
        v.len() >= 2
            && v.starts_with(q)
            && v.ends_with(q)
            && !v[1..v.len() - 1]
                .replace(&format!("{q}{q}"), "")
                .contains(q)
    };
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        || quoted('\'')
        || quoted('"')
}

fn is_header_line(l: &str) -> bool {
    l.starts_with("-- TOC entry ")
        || l.starts_with("-- Dependencies: ")
        || parse_header(l).is_some()
        || data_header(l).is_some()
}

/// A data entry's header, `-- Data for Name: t; Type: TABLE DATA; Schema: s; Owner: o`, read
/// as `parse_header` reads the others.
fn data_header(l: &str) -> Option<(&str, &str, &str, &str)> {
    header_fields(l.strip_prefix("-- Data for Name: ")?)
}

fn is_default_setting(k: &str, v: &str) -> bool {
    (k == "default_tablespace" && v == "''") || (k == "default_table_access_method" && v == "heap")
}

/// Lines that differ from run to run or carry no schema: psql meta-commands such as
/// `\restrict KEY`, and the dump's own trailer comments.
fn is_noise_line(l: &str) -> bool {
    l.starts_with("\\restrict ")
        || l.starts_with("\\unrestrict ")
        || l.starts_with("-- Started on")
        || l.starts_with("-- Completed on")
        || l.starts_with("-- Data Pos:")
}

fn pg_attver_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(ALTER TABLE (?:ONLY )?.+ ALTER COLUMN .+ SET \()(.*)\)$").unwrap()
    })
}

/// Some vendor builds of PostgreSQL stamp every column with an attribute option
/// `pg_attver=<number>` that differs from table to table; their own pg_dump hides it, an upstream
/// pg_dump prints `ALTER TABLE ONLY t ALTER COLUMN c SET (pg_attver=...)`. It is no schema: drop
/// it from the option list, and the statement when nothing else is left.
fn without_pg_attver(stmt: String) -> Option<String> {
    if !stmt.contains("pg_attver=") {
        return Some(stmt);
    }
    let Some(c) = pg_attver_re().captures(&stmt) else {
        return Some(stmt);
    };
    let kept: Vec<&str> = c[2]
        .split(", ")
        .filter(|o| !o.starts_with("pg_attver="))
        .collect();
    if kept.is_empty() {
        return None;
    }
    Some(format!("{}{})", &c[1], kept.join(", ")))
}

fn owner_as_table_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?s)^ALTER TABLE (.+ OWNER TO .+)$").unwrap())
}

fn default_acl_space_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(ALTER DEFAULT PRIVILEGES .* ON (?:TABLES|SEQUENCES|FUNCTIONS|ROUTINES|TYPES|SCHEMAS|LARGE OBJECTS))  (TO|FROM) ").unwrap()
    })
}

fn table_all_privileges_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(GRANT|REVOKE(?: GRANT OPTION FOR)?) ([A-Z,]+) (ON TABLE .*)$").unwrap()
    })
}

/// One statement as the newest pg_dump prints it, so that dumps of one schema made by different
/// pg_dump majors compare equal:
/// - pg_dump before 17 gives sequences, views, materialized views and foreign tables
///   `ALTER TABLE x OWNER TO r` (plain format only: pg_restore rewrites it);
/// - pg_dump before 17 writes two spaces before TO/FROM in `ALTER DEFAULT PRIVILEGES ... ON TABLES`;
/// - pg_dump 17 and newer print every privilege on a table of a server before 17 as the list of
///   its 7 privileges, since their ALL also has MAINTAIN; older pg_dumps print ALL.
fn same_for_every_pg_dump(stmt: String, kind: &ObjectKind, server_major: Option<u32>) -> String {
    if matches!(
        kind,
        ObjectKind::Sequence
            | ObjectKind::View
            | ObjectKind::MaterializedView
            | ObjectKind::ForeignTable
    ) && stmt.starts_with("ALTER TABLE ")
    {
        if let Some(c) = owner_as_table_re().captures(&stmt) {
            return format!("ALTER {kind} {}", &c[1]);
        }
    }
    if *kind == ObjectKind::DefaultAcl {
        if let Some(c) = default_acl_space_re().captures(&stmt) {
            let end = c.get(0).unwrap().end();
            return format!("{} {} {}", &c[1], &c[2], &stmt[end..]);
        }
    }
    if *kind == ObjectKind::Acl && server_major.is_some_and(|v| v < 17) {
        if let Some(c) = table_all_privileges_re().captures(&stmt) {
            let mut privs: Vec<&str> = c[2].split(',').collect();
            privs.sort_unstable();
            let all = [
                "DELETE",
                "INSERT",
                "REFERENCES",
                "SELECT",
                "TRIGGER",
                "TRUNCATE",
                "UPDATE",
            ];
            if privs == all {
                return format!("{} ALL {}", &c[1], &c[3]);
            }
        }
    }
    stmt
}

fn keep_block(raw: &RawBlock, f: &Filter) -> bool {
    if f.no_privileges && matches!(raw.kind, ObjectKind::Acl | ObjectKind::DefaultAcl) {
        return false;
    }
    // Objects outside schemas are kept, except the excluded schemas' own entries.
    let schema_of_entry = if raw.kind == ObjectKind::Schema {
        raw.name.as_str()
    } else if matches!(
        raw.kind,
        ObjectKind::Comment | ObjectKind::Acl | ObjectKind::SecurityLabel
    ) && raw.schema.is_empty()
    {
        raw.name.strip_prefix("SCHEMA ").unwrap_or("")
    } else {
        raw.schema.as_str()
    };
    if schema_of_entry.is_empty() {
        return f.schemas.is_empty() || raw.kind != ObjectKind::Schema;
    }
    if f.exclude_schemas.iter().any(|s| s == schema_of_entry) {
        return false;
    }
    f.schemas.is_empty() || f.schemas.iter().any(|s| s == schema_of_entry)
}

/// Positions of blocks by the hash of their key; the rare hash collision goes to `more`.
#[derive(Debug, Clone, Default)]
struct KeyIndex {
    first: HashIndex<u32>,
    more: HashIndex<Vec<u32>>,
}

/// A key's hash: FNV-1a over its three parts, 8 bytes at a time. Fixed (the same in every
/// build, unlike std's SipHash keys), fast, and only used to find blocks.
fn key_hash(key: &Key) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [key.kind.as_str(), &key.schema, &key.name] {
        let b = part.as_bytes();
        let mut chunks = b.chunks_exact(8);
        for c in &mut chunks {
            h = (h ^ u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .wrapping_mul(0x100_0000_01b3);
            h ^= h >> 29;
        }
        for &c in chunks.remainder() {
            h = (h ^ u64::from(c)).wrapping_mul(0x100_0000_01b3);
        }
        // Part boundary, so ("ab", "c") and ("a", "bc") differ.
        h = (h ^ 0xff).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// HashMap keyed by `key_hash` values: they are hashes already.
#[derive(Debug, Clone, Default)]
struct PassThrough(u64);

impl std::hash::Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type HashIndex<V> = HashMap<u64, V, std::hash::BuildHasherDefault<PassThrough>>;

impl Catalog {
    pub fn get(&self, key: &Key) -> Option<&Block> {
        self.position(key).map(|i| &self.blocks[i])
    }

    /// Where the block with this key is in `blocks`.
    pub fn position(&self, key: &Key) -> Option<usize> {
        let h = key_hash(key);
        let first = *self.index.first.get(&h)? as usize;
        if self.blocks[first].key == *key {
            return Some(first);
        }
        self.index
            .more
            .get(&h)?
            .iter()
            .map(|&i| i as usize)
            .find(|&i| self.blocks[i].key == *key)
    }

    pub fn contains(&self, key: &Key) -> bool {
        self.position(key).is_some()
    }

    fn insert_position(&mut self, key: &Key, i: usize) {
        let h = key_hash(key);
        match self.index.first.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i as u32);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.index.more.entry(h).or_default().push(i as u32)
            }
        }
    }

    /// The position of the block with pg_dump's TOC id `toc`.
    pub fn at_toc(&self, toc: u32) -> Option<usize> {
        self.by_toc.get(&toc).map(|&i| i as usize)
    }

    /// Blocks that depend directly on each block, by pg_dump's graph: `dependents()[i]`.
    pub fn dependents(&self) -> Dependents {
        // (dependency, dependent) pairs, sorted: one flat list, not a list per block (memory).
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            for d in &b.deps {
                if let Some(p) = self.at_toc(*d) {
                    if p != i {
                        pairs.push((p, i));
                    }
                }
            }
        }
        pairs.sort_unstable();
        pairs.dedup();
        let mut starts = Vec::with_capacity(self.blocks.len() + 1);
        let mut k = 0;
        for i in 0..=self.blocks.len() {
            while k < pairs.len() && pairs[k].0 < i {
                k += 1;
            }
            starts.push(k);
        }
        Dependents {
            starts,
            of: pairs.into_iter().map(|(_, d)| d).collect(),
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
            if b.has_table_text() {
                h.update(b.canonical_text());
            } else {
                // canonical_text() is compare_text() here: fed piece by piece, not built.
                for st in b.settings().iter().chain(&b.stmts) {
                    h.update(st.as_bytes());
                    h.update(b";\n");
                }
            }
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

#[cfg(test)]
mod tests {
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
            ["CREATE TABLE app.items (\n    id integer NOT NULL\n)"]
        );
        assert_eq!(*c.blocks[2].deps, [7]);
        assert_eq!(
            c.blocks[4].stmts[..],
            ["COMMENT ON TABLE app.items IS 'a; b'"]
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
