//! Reading a dump: pg_dump's text (a plain file, or pg_restore's rendering of an archive)
//! into blocks, one entry at a time, normalized so that equal schemas give equal blocks; and,
//! for a plain dump, the dependencies pg_dump did not write.

use super::*;
use anyhow::{bail, Result};
use regex::Regex;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Reads `-- Name: N; Type: T; Schema: S; Owner: O` as the pattern
/// `^-- Name: (.*); Type: ([A-Z ]+); Schema: (.*); Owner: ?(.*)$` would (greedy: a name holding
/// `; Type: ` keeps it), without a regex: it runs on every object of the dump.
pub(super) fn parse_header(l: &str) -> Option<(&str, &str, &str, &str)> {
    header_fields(l.strip_prefix("-- Name: ")?)
}

/// `parse_header` after its `-- Name: `.
pub(super) fn header_fields(rest: &str) -> Option<(&str, &str, &str, &str)> {
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

/// The pattern `split_owner_stmt` reads by hand (kept for its test).
#[cfg(test)]
pub(super) fn owner_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        let kinds = OBJECT_KINDS.join("|");
        Regex::new(&format!(
            r#"(?s)^ALTER ({kinds}) (.+) OWNER TO ("(?:[^"]|"")+"|[^\s"]+)$"#
        ))
        .unwrap()
    })
}

pub(super) fn version_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^-- Dumped (from database|by pg_dump) version (\d+)").unwrap())
}

/// Splits an `ALTER <KIND> <identity> OWNER TO <role>` statement into (kind, identity, role):
/// what `^ALTER (KIND) (.+) OWNER TO ("(?:[^"]|"")+"|[^\s"]+)$` captures (`owner_re`, each
/// kind tried in `OBJECT_KINDS`' order, the identity as long as it can be), read without a
/// regex: every statement of the dump passes here, and the regex was a tenth of reading one.
pub fn split_owner_stmt(stmt: &str) -> Option<(String, String, String)> {
    const OWNER_TO: &str = " OWNER TO ";
    let rest = stmt.strip_prefix("ALTER ")?;
    if !rest.contains(OWNER_TO) {
        return None;
    }
    OBJECT_KINDS.iter().find_map(|kind| {
        let after = rest.strip_prefix(kind)?.strip_prefix(' ')?;
        // The identity is `.+`, greedy: the last ` OWNER TO ` whose role ends the statement.
        let mut end = after.len();
        while let Some(at) = after[..end].rfind(OWNER_TO) {
            let role = &after[at + OWNER_TO.len()..];
            if at > 0 && is_role_token(role) {
                return Some((
                    kind.trim().to_string(),
                    after[..at].trim().to_string(),
                    role.to_string(),
                ));
            }
            end = at;
        }
        None
    })
}

/// `"(?:[^"]|"")+"` or `[^\s"]+`, the whole of `s`.
fn is_role_token(s: &str) -> bool {
    if let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        let b = inner.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'"' {
                if b.get(i + 1) != Some(&b'"') {
                    return false;
                }
                i += 2;
            } else {
                i += 1;
            }
        }
        !inner.is_empty()
    } else {
        !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c == '"')
    }
}

pub(super) struct RawBlock {
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
pub(super) struct Lines<R> {
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

/// An entry header's (name, type, schema, owner), as written.
pub(super) type Header = (Str, Str, Str, Str);

/// Why a statement before the first entry cannot be there: pg_dump writes settings only
/// (pg_dumpall writes roles and databases; pg_dump --clean its DROPs).
pub(super) fn preamble_refusal(line: &str) -> String {
    let clean =
        line.starts_with("DROP ") || (line.starts_with("ALTER ") && line.contains(" DROP "));
    let refusal = if clean {
        Some(validate::drops(line))
    } else {
        validate::refuse_statement("", line)
    };
    refusal.unwrap_or_else(|| {
        format!(
            "it has {}, where pg_dump writes settings only: {}",
            validate::summary(line),
            "make it again with pg_dump --schema-only"
        )
    })
}

/// An entry's header, after its opening `--`: its `-- TOC entry`, `-- Dependencies:` and
/// `-- Name: ...; Type: ...` lines, up to the closing `--`. Returns (name, type, schema, owner)
/// when it names an entry, and every line read (which belong to the current block when the
/// lines were not a header after all).
pub(super) fn read_header(
    lines: &mut Lines<impl std::io::BufRead>,
    first: &str,
    pending_toc: &mut Option<u32>,
    pending_deps: &mut Vec<u32>,
) -> Result<(Option<Header>, Vec<String>)> {
    let mut header: Option<(Str, Str, Str, Str)> = None;
    let mut seen: Vec<String> = vec![first.to_string()];
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
                    validate::entry_name(k, sc, n, *pending_toc),
                    validate::summary(l)
                );
            }
            break;
        }
        if let Some(rest) = l.strip_prefix("-- TOC entry ") {
            *pending_toc = rest.split(' ').next().and_then(|n| n.parse().ok());
        } else if let Some(rest) = l.strip_prefix("-- Dependencies: ") {
            *pending_deps = rest
                .split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect();
        } else if let Some((n, k, sc, o)) = parse_header(l).or_else(|| data_header(l)) {
            // pg_dump writes names in headers with line breaks made spaces; other
            // control characters cannot be in a name at all.
            if l.chars().any(|c| c.is_control() && c != '\t') {
                bail!(
                    "the header of {} holds a control character, which pg_dump never writes: the dump is damaged; make it again with pg_dump --schema-only",
                    validate::entry_name(k, if sc == "-" { "" } else { sc }, n, *pending_toc)
                );
            }
            header = Some((n.into(), k.into(), sc.into(), o.into()));
        }
    }
    Ok((header, seen))
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
            bail!(
                "the dump's preamble (before its first entry): {}",
                preamble_refusal(line)
            );
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
            let (header, seen) =
                read_header(&mut lines, line, &mut pending_toc, &mut pending_deps)?;
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
    finish(&mut cat, plain);
    Ok(cat)
}

/// The catalog once every entry is read: dependencies for a plain dump (which has none), and
/// the spare capacity given back.
pub(super) fn finish(cat: &mut Catalog, plain: bool) {
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
    // Read as a stream, the number of blocks was not known up front: give back what doubling
    // over-reserved (up to half the list; a large buffer shrinks in place), before inferring
    // dependencies allocates its maps, so that the two never count at once.
    cat.blocks.shrink_to_fit();
    if plain {
        super::infer::infer_dependencies(cat);
    }
}

/// Turns one block of the dump into catalog entries (the object, and its owner as an entry of
/// its own). A plain dump has no TOC ids: blocks are numbered as they come, and the dependency
/// graph is inferred once all are read.
pub(super) fn add_raw_block(
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
    let schema = super::name::Name::new(&raw.schema);
    let owner_key = (owner_stmt.is_some() && !filter.no_owner).then(|| Key {
        kind: ObjectKind::Owner,
        schema,
        name: compact_str::format_compact!("{} {}", raw.kind, raw.name),
    });
    let identity = owner_stmt
        .as_deref()
        .and_then(split_owner_stmt)
        .map(|(_, id, _)| Str::from(id));
    let owner = super::name::Name::new(&raw.owner);
    let block = Block::new(
        Key {
            kind: std::mem::replace(&mut raw.kind, ObjectKind::Owner),
            schema,
            name: std::mem::take(&mut raw.name),
        },
        raw.toc_id,
        std::mem::take(&mut raw.deps).into_iter().collect(),
        owner,
        defs.into_iter().map(String::into_boxed_str).collect(),
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
                owner,
                smallvec::smallvec![stmt.into_boxed_str()],
                Box::default(),
                None,
            ),
        );
    }
    Ok(())
}

/// One statement as a server of any major prints it, where majors differ only in how they print
/// the same object (see `majors`).
pub(super) fn same_on_every_server(stmt: String, raw: &RawBlock) -> String {
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
pub(super) const SYNTHETIC_TOC_BASE: u32 = 1 << 30;

pub(super) fn push_block(cat: &mut Catalog, mut block: Block) {
    // pg_dump tags are unique per type and schema in practice; if two ever collide, keep both.
    if cat.contains(&block.key) {
        let base = block.key.name.clone();
        let mut n = 2;
        while cat.contains(&block.key) {
            block.key.name = compact_str::format_compact!("{base} #{n}");
            n += 1;
        }
    }
    cat.blocks.push(block);
    cat.index_block(cat.blocks.len() - 1);
}

/// An entry refused at its header (see `validate::refuse_entry`).
pub(super) struct Refused {
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
pub(super) fn is_statement_line(l: &str) -> bool {
    let t = l.trim();
    !t.is_empty() && !t.starts_with("--") && !is_noise_line(l)
}

/// What pg_dump writes before its first entry: settings.
pub(super) fn is_preamble_line(l: &str) -> bool {
    (l.starts_with("SET ") || l.starts_with("SELECT pg_catalog.set_config("))
        && l.ends_with(';')
        && l.matches(';').count() == 1
}

/// A `SET default_tablespace` / `default_table_access_method` value as pg_dump writes it: one
/// word, `''`, or one double-quoted name.
pub(super) fn is_setting_value(v: &str) -> bool {
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

pub(super) fn is_header_line(l: &str) -> bool {
    l.starts_with("-- TOC entry ")
        || l.starts_with("-- Dependencies: ")
        || parse_header(l).is_some()
        || data_header(l).is_some()
}

/// A data entry's header, `-- Data for Name: t; Type: TABLE DATA; Schema: s; Owner: o`, read
/// as `parse_header` reads the others.
pub(super) fn data_header(l: &str) -> Option<(&str, &str, &str, &str)> {
    header_fields(l.strip_prefix("-- Data for Name: ")?)
}

pub(super) fn is_default_setting(k: &str, v: &str) -> bool {
    (k == "default_tablespace" && v == "''") || (k == "default_table_access_method" && v == "heap")
}

/// Lines that differ from run to run or carry no schema: psql meta-commands such as
/// `\restrict KEY`, and the dump's own trailer comments.
pub(super) fn is_noise_line(l: &str) -> bool {
    l.starts_with("\\restrict ")
        || l.starts_with("\\unrestrict ")
        || l.starts_with("-- Started on")
        || l.starts_with("-- Completed on")
        || l.starts_with("-- Data Pos:")
}

pub(super) fn pg_attver_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(ALTER TABLE (?:ONLY )?.+ ALTER COLUMN .+ SET \()(.*)\)$").unwrap()
    })
}

/// Some vendor builds of PostgreSQL stamp every column with an attribute option
/// `pg_attver=<number>` that differs from table to table; their own pg_dump hides it, an upstream
/// pg_dump prints `ALTER TABLE ONLY t ALTER COLUMN c SET (pg_attver=...)`. It is no schema: drop
/// it from the option list, and the statement when nothing else is left.
pub(super) fn without_pg_attver(stmt: String) -> Option<String> {
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

pub(super) fn owner_as_table_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?s)^ALTER TABLE (.+ OWNER TO .+)$").unwrap())
}

pub(super) fn default_acl_space_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^(ALTER DEFAULT PRIVILEGES .* ON (?:TABLES|SEQUENCES|FUNCTIONS|ROUTINES|TYPES|SCHEMAS|LARGE OBJECTS))  (TO|FROM) ").unwrap()
    })
}

pub(super) fn table_all_privileges_re() -> &'static Regex {
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
pub(super) fn same_for_every_pg_dump(
    stmt: String,
    kind: &ObjectKind,
    server_major: Option<u32>,
) -> String {
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

pub(super) fn keep_block(raw: &RawBlock, f: &Filter) -> bool {
    if f.no_privileges && matches!(raw.kind, ObjectKind::Acl | ObjectKind::DefaultAcl) {
        return false;
    }
    // Objects outside schemas are kept, except the excluded schemas' own entries.
    let schema_of_entry = if raw.kind == ObjectKind::Schema {
        raw.name.as_str()
    } else if raw.kind.is_about_another() && raw.schema.is_empty() {
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

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
