//! pg_dump's custom-format archive, read directly: its header and table of contents (TOC), and
//! from them the text `pg_restore --verbose` prints for a schema-only archive, byte for byte, so
//! that `catalog::from_dump_reader` builds the very catalog it built from pg_restore's output,
//! without a second process.
//!
//! The layout (pg_backup_archiver.c, ReadHead/ReadToc; pg_backup_custom.c, _ReadExtraToc):
//! `PGDMP`, version major/minor/rev bytes, intSize, offSize, format (1 = custom), compression
//! (a byte from 1.15, an int before), the creation time as 7 ints, then strings: database name,
//! server version, pg_dump version. Then the TOC: an int count, and per entry: dump id,
//! hadDumper, table OID and OID (as strings), tag, desc, section (int), defn, dropStmt,
//! copyStmt, namespace, tablespace, tableam (1.14), relkind (int, 1.16), owner, "withOids"
//! (a string), the dependency ids (strings up to a NULL one), and the custom format's data
//! state (a byte) and offset (offSize bytes, little-endian). An int is a sign byte then intSize
//! bytes, little-endian; a string is an int length (-1: NULL) then its bytes.
//!
//! The text follows pg_restore's RestoreArchive/_printTocEntry of the major that wrote the
//! archive (pgalign ran the pg_restore beside the pg_dump it used): entries without a CREATE
//! text are skipped, ACLs come in a second pass and event triggers in a third, `SET
//! default_tablespace` / `default_table_access_method` lines come when they change, and
//! `ALTER ... OWNER TO` follows each ownable object (`ALTER TABLE` for views and sequences
//! before 16). Only the schema is rendered: data entries (a dump with data) are left out.

use anyhow::{bail, Result};
use std::io::{BufRead, Read};

/// Archive versions read here: 1.14 (pg_dump 12-15), 1.15 (16), 1.16 (17, 18).
pub const OLDEST: (u8, u8) = (1, 14);
pub const NEWEST: (u8, u8) = (1, 16);

const SECTION_NONE: i64 = 1;
const SECTION_PRE_DATA: i64 = 2;
const SECTION_POST_DATA: i64 = 4;
const RELKIND_PARTITIONED_TABLE: i64 = b'p' as i64;

/// What the header says.
#[derive(Debug, Clone)]
pub struct Header<'a> {
    pub version: (u8, u8, u8),
    pub int_size: u8,
    pub off_size: u8,
    pub compression: i64,
    /// tm_sec, tm_min, tm_hour, tm_mday, tm_mon, tm_year, tm_isdst, as pg_dump wrote them.
    pub created: [i64; 7],
    pub dbname: Option<&'a [u8]>,
    pub server_version: Option<&'a [u8]>,
    pub dump_version: Option<&'a [u8]>,
}

impl Header<'_> {
    /// The major version of the pg_dump that wrote the archive (`15.20 (Debian ...)` -> 15).
    pub fn dump_major(&self) -> Option<u32> {
        let v = self.dump_version?;
        let digits: Vec<u8> = v.iter().copied().take_while(u8::is_ascii_digit).collect();
        std::str::from_utf8(&digits).ok()?.parse().ok()
    }
}

/// One TOC entry; the strings borrow the archive's bytes.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub dump_id: i32,
    pub had_dumper: bool,
    pub table_oid: u32,
    pub oid: u32,
    pub tag: Option<&'a [u8]>,
    pub desc: &'a [u8],
    pub section: i64,
    pub defn: Option<&'a [u8]>,
    pub drop_stmt: Option<&'a [u8]>,
    pub copy_stmt: Option<&'a [u8]>,
    pub namespace: Option<&'a [u8]>,
    pub tablespace: Option<&'a [u8]>,
    pub tableam: Option<&'a [u8]>,
    pub relkind: i64,
    pub owner: Option<&'a [u8]>,
    pub with_oids: Option<&'a [u8]>,
    pub deps: Vec<i32>,
    pub data_state: u8,
    pub data_pos: i64,
}

/// A parsed archive: its header and its TOC, in the archive's order.
#[derive(Debug, Clone)]
pub struct Toc<'a> {
    pub header: Header<'a>,
    pub entries: Vec<Entry<'a>>,
    /// Where the TOC ends (data blocks, if any, follow).
    pub end: usize,
}

/// Reads the input front to back; every read names its byte offset and what it expected when
/// the input ends or holds nonsense, and no length is trusted beyond what is left.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    int_size: usize,
    off_size: usize,
}

impl<'a> Cursor<'a> {
    fn fail<T>(&self, what: &str, found: &str) -> Result<T> {
        bail!(
            "not a readable pg_dump custom-format archive: at byte {}: expected {what}, found {found}",
            self.pos
        )
    }
    fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.buf.len() - self.pos < n {
            let left = self.buf.len() - self.pos;
            return self.fail(
                what,
                &format!("the end of the input ({left} of {n} bytes left)"),
            );
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn byte(&mut self, what: &str) -> Result<u8> {
        Ok(self.bytes(1, what)?[0])
    }
    /// A sign byte and `int_size` little-endian bytes.
    fn int(&mut self, what: &str) -> Result<i64> {
        let start = self.pos;
        let sign = self.byte(what)?;
        let b = self.bytes(self.int_size, what)?;
        let mut v: i64 = 0;
        for (i, &x) in b.iter().enumerate() {
            v |= (x as i64) << (8 * i);
        }
        if v > i32::MAX as i64 {
            self.pos = start;
            return self.fail(what, &format!("{v}, out of range"));
        }
        Ok(if sign != 0 { -v } else { v })
    }
    /// An int length (-1: NULL) and that many bytes.
    fn string(&mut self, what: &str) -> Result<Option<&'a [u8]>> {
        let start = self.pos;
        let n = self.int(what)?;
        if n == -1 {
            return Ok(None);
        }
        let left = self.buf.len() - self.pos;
        if n < 0 || n as usize > left {
            self.pos = start;
            return self.fail(
                what,
                &format!("a length of {n} with {left} bytes left after it"),
            );
        }
        self.bytes(n as usize, what).map(Some)
    }
    /// A string holding a number, as pg_dump writes OIDs and dependency ids.
    fn number<T: std::str::FromStr>(&mut self, what: &str) -> Result<T> {
        let start = self.pos;
        let s = self.string(what)?;
        match s.and_then(|s| std::str::from_utf8(s).ok()?.parse().ok()) {
            Some(v) => Ok(v),
            None => {
                self.pos = start;
                self.fail(what, "something else")
            }
        }
    }
}

/// Parses the header and the TOC of a custom-format archive (the data after them is not read).
pub fn parse(buf: &[u8]) -> Result<Toc<'_>> {
    let mut c = Cursor {
        buf,
        pos: 0,
        int_size: 4,
        off_size: 8,
    };
    if c.bytes(5, "the magic string PGDMP")? != b"PGDMP" {
        c.pos = 0;
        return c.fail("the magic string PGDMP", "other bytes");
    }
    let (vmaj, vmin, vrev) = (
        c.byte("the archive's major version")?,
        c.byte("the archive's minor version")?,
        c.byte("the archive's revision")?,
    );
    if (vmaj, vmin) < OLDEST || (vmaj, vmin) > NEWEST {
        bail!(
            "unsupported archive version {vmaj}.{vmin}-{vrev}: pgalign reads {}.{} to {}.{} (pg_dump 12 to 18)",
            OLDEST.0,
            OLDEST.1,
            NEWEST.0,
            NEWEST.1
        );
    }
    let int_size = c.byte("the integer size")?;
    if !(1..=8).contains(&int_size) {
        c.pos -= 1;
        return c.fail("an integer size of 1 to 8 bytes", &int_size.to_string());
    }
    c.int_size = int_size as usize;
    let off_size = c.byte("the offset size")?;
    if !(1..=8).contains(&off_size) {
        c.pos -= 1;
        return c.fail("an offset size of 1 to 8 bytes", &off_size.to_string());
    }
    c.off_size = off_size as usize;
    let format = c.byte("the archive format")?;
    if format != 1 {
        c.pos -= 1;
        return c.fail("format 1 (custom)", &format.to_string());
    }
    let compression = if (vmaj, vmin) >= (1, 15) {
        c.byte("the compression algorithm")? as i64
    } else {
        c.int("the compression level")?
    };
    let mut created = [0i64; 7];
    for v in created.iter_mut() {
        *v = c.int("the creation time")?;
    }
    let dbname = c.string("the database name")?;
    let server_version = c.string("the server version")?;
    let dump_version = c.string("the pg_dump version")?;
    let header = Header {
        version: (vmaj, vmin, vrev),
        int_size,
        off_size,
        compression,
        created,
        dbname,
        server_version,
        dump_version,
    };
    let count_at = c.pos;
    let count = c.int("the number of TOC entries")?;
    if count < 0 {
        c.pos = count_at;
        return c.fail("a number of TOC entries", &count.to_string());
    }
    // No entry takes fewer than 20 bytes: never reserve more than the input can hold.
    let mut entries = Vec::with_capacity((count as usize).min((buf.len() - c.pos) / 20));
    for _ in 0..count {
        entries.push(read_entry(&mut c, (vmaj, vmin))?);
    }
    Ok(Toc {
        header,
        entries,
        end: c.pos,
    })
}

fn read_entry<'a>(c: &mut Cursor<'a>, version: (u8, u8)) -> Result<Entry<'a>> {
    let at = c.pos;
    let dump_id = c.int("a TOC entry's dump id")?;
    if dump_id <= 0 {
        c.pos = at;
        return c.fail("a TOC entry's dump id (1 or more)", &dump_id.to_string());
    }
    let had_dumper = c.int("a TOC entry's hadDumper flag")? != 0;
    let table_oid = c.number("a TOC entry's table OID")?;
    let oid = c.number("a TOC entry's OID")?;
    let tag = c.string("a TOC entry's tag")?;
    let desc_at = c.pos;
    let Some(desc) = c.string("a TOC entry's description")? else {
        c.pos = desc_at;
        return c.fail("a TOC entry's description", "NULL");
    };
    let section = c.int("a TOC entry's section")?;
    let defn = c.string("a TOC entry's definition")?;
    let drop_stmt = c.string("a TOC entry's DROP statement")?;
    let copy_stmt = c.string("a TOC entry's COPY statement")?;
    let namespace = c.string("a TOC entry's schema")?;
    let tablespace = c.string("a TOC entry's tablespace")?;
    let tableam = c.string("a TOC entry's table access method")?;
    let relkind = if version >= (1, 16) {
        c.int("a TOC entry's relkind")?
    } else {
        0
    };
    let owner = c.string("a TOC entry's owner")?;
    let with_oids = c.string("a TOC entry's WITH OIDS flag")?;
    let mut deps = Vec::new();
    loop {
        let at = c.pos;
        match c.string("a dependency id or the end of the list")? {
            None => break,
            Some(s) => match std::str::from_utf8(s).ok().and_then(|s| s.parse().ok()) {
                Some(d) => deps.push(d),
                None => {
                    c.pos = at;
                    return c.fail("a dependency id", "something else");
                }
            },
        }
    }
    let flag_at = c.pos;
    let data_state = c.byte("a TOC entry's data state")?;
    if !(1..=3).contains(&data_state) {
        c.pos = flag_at;
        return c.fail("a data state of 1 to 3", &data_state.to_string());
    }
    let mut data_pos: i64 = 0;
    for (i, &b) in c
        .bytes(c.off_size, "a TOC entry's data offset")?
        .iter()
        .enumerate()
    {
        data_pos |= (b as i64) << (8 * i);
    }
    Ok(Entry {
        dump_id: dump_id as i32,
        had_dumper,
        table_oid,
        oid,
        tag,
        desc,
        section,
        defn,
        drop_stmt,
        copy_stmt,
        namespace,
        tablespace,
        tableam,
        relkind,
        owner,
        with_oids,
        deps,
        data_state,
        data_pos,
    })
}

/// The passes of pg_restore's serial restore: most entries, then ACLs, then what must follow
/// the ACLs (event triggers and their comments).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Main,
    Acl,
    PostAcl,
}

fn pass_of(e: &Entry) -> Pass {
    let desc = e.desc;
    if matches!(desc, b"ACL" | b"ACL LANGUAGE" | b"DEFAULT ACL") {
        return Pass::Acl;
    }
    if matches!(desc, b"EVENT TRIGGER" | b"MATERIALIZED VIEW DATA") {
        return Pass::PostAcl;
    }
    let tag = e.tag.unwrap_or_default();
    if matches!(desc, b"COMMENT" | b"SECURITY LABEL") && tag.starts_with(b"EVENT TRIGGER ") {
        return Pass::PostAcl;
    }
    if desc == b"STATISTICS DATA" && e.section == SECTION_POST_DATA {
        return Pass::PostAcl;
    }
    Pass::Main
}

/// Whether pg_restore (no options) prints this entry's schema part; `section` is the section in
/// force (entries of SECTION_NONE take the one before them).
fn wants_schema(e: &Entry, section: i64) -> bool {
    let desc = e.desc;
    let tag = e.tag.unwrap_or_default();
    if matches!(desc, b"ENCODING" | b"STDSTRINGS" | b"SEARCHPATH") {
        return false;
    }
    // Statistics are data, and a schema-only dump has none.
    if desc == b"STATISTICS DATA" {
        return false;
    }
    // Restored only with --create.
    if matches!(desc, b"DATABASE" | b"DATABASE PROPERTIES") {
        return false;
    }
    if !(SECTION_PRE_DATA..=SECTION_POST_DATA).contains(&section) {
        return false;
    }
    if matches!(desc, b"ACL" | b"COMMENT" | b"SECURITY LABEL") && tag.starts_with(b"DATABASE ") {
        return false;
    }
    if !e.had_dumper {
        let large_object = tag.starts_with(b"LARGE OBJECT");
        if matches!(desc, b"SEQUENCE SET" | b"BLOB" | b"BLOB METADATA")
            || (matches!(desc, b"ACL" | b"COMMENT" | b"SECURITY LABEL") && large_object)
        {
            return false;
        }
    }
    match e.defn {
        None | Some(b"") => return false,
        Some(d) if d.starts_with(b"-- load via partition root ") => return false,
        _ => {}
    }
    !(desc == b"<Init>" && tag == b"Max OID")
}

/// pg_restore's sanitize_line: line breaks become spaces; NULL is `-` or nothing.
fn sanitized(out: &mut Vec<u8>, s: Option<&[u8]>, want_hyphen: bool) {
    match s {
        None if want_hyphen => out.push(b'-'),
        None => {}
        Some(s) => out.extend(s.iter().map(|&b| match b {
            b'\n' | b'\r' => b' ',
            b => b,
        })),
    }
}

/// pg_dump's fmtId: the name as is when it is a plain lower-case identifier and not a keyword
/// that needs quoting, else in double quotes.
fn fmt_id(out: &mut Vec<u8>, s: &[u8], major: u32) {
    let plain = s
        .first()
        .is_some_and(|&b| b.is_ascii_lowercase() || b == b'_')
        && s.iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    // `plain` means ASCII; quote_ident decides on keywords with the server's grammar.
    if plain {
        if let Ok(word) = std::str::from_utf8(s) {
            if keyword_since(word) > major
                || !crate::catalog::parse::is_keyword_needing_quotes(word)
            {
                out.extend_from_slice(s);
                return;
            }
        }
    }
    out.push(b'"');
    for &b in s {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// The first major whose pg_restore knows `word` as a keyword, for the keywords added since 15
/// (the grammar pgalign parses with is 18's; each pg_restore quotes by its own list).
fn keyword_since(word: &str) -> u32 {
    match word {
        "json" | "json_array" | "json_arrayagg" | "json_object" | "json_objectagg"
        | "system_user" => 16,
        "json_exists" | "json_query" | "json_scalar" | "json_serialize" | "json_table"
        | "json_value" | "merge_action" => 17,
        "enforced" | "objects" | "period" | "virtual" => 18,
        _ => 0,
    }
}

/// pg_restore's _getObjectDescription: how `ALTER ... OWNER TO` names the object; false when
/// the kind has no owner of its own.
fn object_description(out: &mut Vec<u8>, e: &Entry, major: u32) -> bool {
    let mut desc = e.desc;
    // Before 16, pg_restore altered views and sequences through ALTER TABLE.
    if major < 16 && matches!(desc, b"VIEW" | b"SEQUENCE" | b"MATERIALIZED VIEW") {
        desc = b"TABLE";
    }
    match desc {
        b"COLLATION"
        | b"CONVERSION"
        | b"DOMAIN"
        | b"FOREIGN TABLE"
        | b"MATERIALIZED VIEW"
        | b"SEQUENCE"
        | b"STATISTICS"
        | b"TABLE"
        | b"TEXT SEARCH DICTIONARY"
        | b"TEXT SEARCH CONFIGURATION"
        | b"TYPE"
        | b"VIEW"
        | b"DATABASE"
        | b"PROCEDURAL LANGUAGE"
        | b"SCHEMA"
        | b"EVENT TRIGGER"
        | b"FOREIGN DATA WRAPPER"
        | b"SERVER"
        | b"PUBLICATION"
        | b"SUBSCRIPTION" => {
            out.extend_from_slice(desc);
            out.push(b' ');
            if let Some(ns) = e.namespace.filter(|n| !n.is_empty()) {
                fmt_id(out, ns, major);
                out.push(b'.');
            }
            fmt_id(out, e.tag.unwrap_or_default(), major);
            true
        }
        b"BLOB" => {
            out.extend_from_slice(b"LARGE OBJECT ");
            out.extend_from_slice(e.tag.unwrap_or_default());
            true
        }
        b"AGGREGATE" | b"FUNCTION" | b"OPERATOR" | b"OPERATOR CLASS" | b"OPERATOR FAMILY"
        | b"PROCEDURE" => {
            // The DROP statement names it exactly: `DROP FUNCTION s.f(integer);\n`.
            let d = e.drop_stmt.unwrap_or_default();
            let mut d = d.get(5..).unwrap_or_default();
            while let Some((&last, rest)) = d.split_last() {
                if last == b'\n' || last == b';' {
                    d = rest;
                } else {
                    break;
                }
            }
            out.extend_from_slice(d);
            true
        }
        _ => false,
    }
}

/// Streams the text `pg_restore --verbose` prints for the archive (without the `\restrict`
/// lines and the `Started on` / `Completed on` times, which change on every run), one entry
/// at a time.
pub struct Text<'a> {
    toc: &'a Toc<'a>,
    major: u32,
    searchpath: Option<&'a [u8]>,
    encoding: &'a [u8],
    std_strings: bool,
    /// Section in force per entry, and whether the entry is printed (worked out up front, as
    /// pg_restore marks entries before restoring them).
    wanted: Vec<bool>,
    cur_tablespace: Option<&'a [u8]>,
    cur_tableam: Option<&'a [u8]>,
    cur_schema: Option<&'a [u8]>,
    stage: Stage,
    buf: Vec<u8>,
    pos: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    Entries(Pass, usize),
    End,
    Done,
}

impl<'a> Text<'a> {
    pub fn new(toc: &'a Toc<'a>) -> Text<'a> {
        let mut searchpath = None;
        let mut encoding: &[u8] = b"SQL_ASCII";
        let mut std_strings = false;
        let mut section = SECTION_PRE_DATA;
        let mut wanted = Vec::with_capacity(toc.entries.len());
        for e in &toc.entries {
            match e.desc {
                // `SET client_encoding = 'UTF8';`
                b"ENCODING" => {
                    let d = e.defn.unwrap_or_default();
                    let mut parts = d.split(|&b| b == b'\'');
                    if let (Some(_), Some(enc), Some(_)) =
                        (parts.next(), parts.next(), parts.next())
                    {
                        encoding = enc;
                    }
                }
                b"STDSTRINGS" => {
                    let d = e.defn.unwrap_or_default();
                    if let Some(i) = d.iter().position(|&b| b == b'\'') {
                        std_strings = d[i..].starts_with(b"'on'");
                    }
                }
                b"SEARCHPATH" => searchpath = e.defn,
                _ => {}
            }
            if e.section != SECTION_NONE {
                section = e.section;
            }
            wanted.push(wants_schema(e, section));
        }
        Text {
            toc,
            major: toc.header.dump_major().unwrap_or(0),
            searchpath,
            encoding,
            std_strings,
            wanted,
            cur_tablespace: None,
            cur_tableam: None,
            cur_schema: None,
            stage: Stage::Start,
            buf: Vec::with_capacity(1 << 16),
            pos: 0,
        }
    }

    fn preamble(&mut self) {
        let h = &self.toc.header;
        let b = &mut self.buf;
        b.extend_from_slice(b"--\n-- PostgreSQL database dump\n--\n\n");
        if let Some(v) = h.server_version {
            b.extend_from_slice(b"-- Dumped from database version ");
            b.extend_from_slice(v);
            b.push(b'\n');
        }
        if let Some(v) = h.dump_version {
            b.extend_from_slice(b"-- Dumped by pg_dump version ");
            b.extend_from_slice(v);
            b.push(b'\n');
        }
        b.push(b'\n');
        b.extend_from_slice(b"SET statement_timeout = 0;\nSET lock_timeout = 0;\nSET idle_in_transaction_session_timeout = 0;\n");
        if self.major >= 17 {
            b.extend_from_slice(b"SET transaction_timeout = 0;\n");
        }
        b.extend_from_slice(b"SET client_encoding = '");
        b.extend_from_slice(self.encoding);
        b.extend_from_slice(b"';\nSET standard_conforming_strings = ");
        b.extend_from_slice(if self.std_strings {
            b"on;\n"
        } else {
            b"off;\n"
        });
        if let Some(sp) = self.searchpath {
            b.extend_from_slice(sp);
        }
        b.extend_from_slice(
            b"SET check_function_bodies = false;\nSET xmloption = content;\nSET client_min_messages = warning;\n",
        );
        if !self.std_strings {
            b.extend_from_slice(b"SET escape_string_warning = off;\n");
        }
        b.extend_from_slice(b"SET row_security = off;\n\n");
    }

    fn entry(&mut self, e: &Entry<'a>) {
        let major = self.major;
        let b = &mut self.buf;
        // _selectOutputSchema: only archives without a SEARCHPATH entry (made before 1.13).
        if self.searchpath.is_none() {
            if let Some(ns) = e.namespace.filter(|n| !n.is_empty()) {
                if self.cur_schema != Some(ns) {
                    b.extend_from_slice(b"SET search_path = ");
                    fmt_id(b, ns, major);
                    if ns != b"pg_catalog" {
                        b.extend_from_slice(b", pg_catalog");
                    }
                    b.extend_from_slice(b";\n\n");
                    self.cur_schema = Some(ns);
                }
            }
        }
        if let Some(ts) = e.tablespace {
            if self.cur_tablespace != Some(ts) {
                if ts.is_empty() {
                    b.extend_from_slice(b"SET default_tablespace = '';\n\n");
                } else {
                    b.extend_from_slice(b"SET default_tablespace = ");
                    fmt_id(b, ts, major);
                    b.extend_from_slice(b";\n\n");
                }
                self.cur_tablespace = Some(ts);
            }
        }
        if e.relkind != RELKIND_PARTITIONED_TABLE {
            if let Some(am) = e.tableam {
                if self.cur_tableam != Some(am) {
                    b.extend_from_slice(b"SET default_table_access_method = ");
                    fmt_id(b, am, major);
                    b.extend_from_slice(b";\n\n");
                    self.cur_tableam = Some(am);
                }
            }
        }
        use std::io::Write;
        let _ = write!(
            b,
            "--\n-- TOC entry {} (class {} OID {})\n",
            e.dump_id, e.table_oid, e.oid
        );
        if !e.deps.is_empty() {
            b.extend_from_slice(b"-- Dependencies:");
            for d in &e.deps {
                let _ = write!(b, " {d}");
            }
            b.push(b'\n');
        }
        b.extend_from_slice(b"-- Name: ");
        sanitized(b, e.tag, false);
        b.extend_from_slice(b"; Type: ");
        b.extend_from_slice(e.desc);
        b.extend_from_slice(b"; Schema: ");
        sanitized(b, e.namespace, true);
        b.extend_from_slice(b"; Owner: ");
        sanitized(b, e.owner, true);
        if let Some(ts) = e.tablespace.filter(|t| !t.is_empty()) {
            b.extend_from_slice(b"; Tablespace: ");
            sanitized(b, Some(ts), false);
        }
        let _ = write!(b, "\n-- Data Pos: {}\n--\n\n", e.data_pos);
        if let Some(d) = e.defn.filter(|d| !d.is_empty()) {
            b.extend_from_slice(d);
            b.extend_from_slice(b"\n\n");
        }
        let owner = e.owner.filter(|o| !o.is_empty());
        if let (Some(owner), Some(_)) = (owner, e.drop_stmt.filter(|d| !d.is_empty())) {
            let start = b.len();
            b.extend_from_slice(b"ALTER ");
            if object_description(b, e, self.major) {
                b.extend_from_slice(b" OWNER TO ");
                fmt_id(b, owner, major);
                b.extend_from_slice(b";\n\n");
            } else {
                b.truncate(start);
            }
        }
        if e.relkind == RELKIND_PARTITIONED_TABLE {
            if let Some(am) = e.tableam {
                b.extend_from_slice(b"ALTER TABLE ");
                if let Some(ns) = e.namespace.filter(|n| !n.is_empty()) {
                    fmt_id(b, ns, major);
                    b.push(b'.');
                }
                fmt_id(b, e.tag.unwrap_or_default(), major);
                b.extend_from_slice(b" SET ACCESS METHOD ");
                fmt_id(b, am, major);
                b.extend_from_slice(b";\n\n");
            }
        }
    }

    /// Renders the next piece into `buf`; false when everything was rendered.
    fn advance(&mut self) -> bool {
        self.buf.clear();
        self.pos = 0;
        loop {
            match self.stage {
                Stage::Start => {
                    self.preamble();
                    self.stage = Stage::Entries(Pass::Main, 0);
                    return true;
                }
                Stage::Entries(pass, i) => {
                    let entries = &self.toc.entries;
                    // Render up to ~64 KiB at a time.
                    let mut i = i;
                    while i < entries.len() && self.buf.len() < (1 << 16) {
                        let e = &entries[i];
                        if self.wanted[i] && pass_of(e) == pass {
                            self.entry(e);
                        }
                        i += 1;
                    }
                    self.stage = if i < entries.len() {
                        Stage::Entries(pass, i)
                    } else {
                        match pass {
                            Pass::Main => Stage::Entries(Pass::Acl, 0),
                            Pass::Acl => Stage::Entries(Pass::PostAcl, 0),
                            Pass::PostAcl => Stage::End,
                        }
                    };
                    if !self.buf.is_empty() {
                        return true;
                    }
                }
                Stage::End => {
                    self.buf
                        .extend_from_slice(b"--\n-- PostgreSQL database dump complete\n--\n\n");
                    self.stage = Stage::Done;
                    return true;
                }
                Stage::Done => return false,
            }
        }
    }
}

impl Read for Text<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Text<'_> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos >= self.buf.len() && !self.advance() {
            return Ok(&[]);
        }
        Ok(&self.buf[self.pos..])
    }
    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.buf.len());
    }
}

/// The whole text at once (tests, debugging).
pub fn render(toc: &Toc) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = Text::new(toc).read_to_end(&mut out);
    out
}

/// Whether the bytes start like a custom-format archive.
pub fn is_archive(start: &[u8]) -> bool {
    start.starts_with(b"PGDMP")
}

/// The archive's version, when the bytes are an archive whose header is long enough.
pub fn version_of(buf: &[u8]) -> Option<(u8, u8, u8)> {
    (buf.len() >= 8 && is_archive(buf)).then(|| (buf[5], buf[6], buf[7]))
}

/// Whether this reader reads the archive (its version is one of those checked).
pub fn supported(buf: &[u8]) -> bool {
    version_of(buf).is_some_and(|(a, b, _)| (a, b) >= OLDEST && (a, b) <= NEWEST)
}

/// Builds the catalog of a custom-format archive held in memory.
pub fn catalog_of(buf: &[u8], filter: &crate::catalog::Filter) -> Result<crate::catalog::Catalog> {
    let toc = parse(buf)?;
    crate::catalog::from_dump_reader(Text::new(&toc), filter)
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
