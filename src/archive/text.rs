//! The text `pg_restore --verbose` prints for a schema-only archive, rendered from the parsed
//! table of contents (see the module above for the layout and the passes).

use super::*;

/// The passes of pg_restore's serial restore: most entries, then ACLs, then what must follow
/// the ACLs (event triggers and their comments).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Main,
    Acl,
    PostAcl,
}

fn pass_of(e: &Entry) -> Pass {
    let desc = e.desc();
    if matches!(desc, b"ACL" | b"ACL LANGUAGE" | b"DEFAULT ACL") {
        return Pass::Acl;
    }
    if matches!(desc, b"EVENT TRIGGER" | b"MATERIALIZED VIEW DATA") {
        return Pass::PostAcl;
    }
    let tag = e.tag().unwrap_or_default();
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
    let desc = e.desc();
    let tag = e.tag().unwrap_or_default();
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
    match e.defn() {
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
pub(super) fn fmt_id(out: &mut Vec<u8>, s: &[u8], major: u32) {
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
    let mut desc: &[u8] = e.desc();
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
            if let Some(ns) = e.namespace().filter(|n| !n.is_empty()) {
                fmt_id(out, ns, major);
                out.push(b'.');
            }
            fmt_id(out, e.tag().unwrap_or_default(), major);
            true
        }
        b"BLOB" => {
            out.extend_from_slice(b"LARGE OBJECT ");
            out.extend_from_slice(e.tag().unwrap_or_default());
            true
        }
        b"AGGREGATE" | b"FUNCTION" | b"OPERATOR" | b"OPERATOR CLASS" | b"OPERATOR FAMILY"
        | b"PROCEDURE" => {
            // The DROP statement names it exactly: `DROP FUNCTION s.f(integer);\n`.
            let d = e.drop_stmt().unwrap_or_default();
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
/// at a time, as the entries come from `source`: each main-pass entry is printed and freed as
/// it is read; the ACL passes' entries wait for the end of the main pass.
pub struct Text<I> {
    header: Header,
    source: I,
    /// The first entry after the leading ENCODING, STDSTRINGS and SEARCHPATH ones, which `new`
    /// reads ahead for the preamble.
    ahead: Option<Box<Entry>>,
    /// The entries of the ACL pass and of the pass after it, until the main pass is printed.
    later: [std::collections::VecDeque<Box<Entry>>; 2],
    /// The section in force (entries of SECTION_NONE take the one before them).
    section: i64,
    major: u32,
    searchpath: Option<Bytes>,
    encoding: Bytes,
    std_strings: bool,
    cur_tablespace: Option<Bytes>,
    cur_tableam: Option<Bytes>,
    cur_schema: Option<Bytes>,
    stage: Stage,
    buf: Vec<u8>,
    pos: usize,
    halt: Option<Halt>,
}

/// Why a text stopped short of its end.
#[derive(Debug)]
pub enum Halt {
    /// The archive does not read: the reader's error, naming the offset.
    Failed(anyhow::Error),
    /// An entry that only pg_restore prints alike: data, or an ENCODING, STDSTRINGS or
    /// SEARCHPATH entry after others (pg_restore reads those before printing anything; pg_dump
    /// writes them first).
    NeedsPgRestore,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    Start,
    Main,
    /// The ACL pass (0), then the pass after it (1).
    Later(usize),
    End,
    Done,
}

impl<I: Iterator<Item = Result<Box<Entry>>>> Text<I> {
    pub fn new(header: Header, source: I) -> Text<I> {
        let mut t = Text {
            major: header.dump_major().unwrap_or(0),
            header,
            source,
            ahead: None,
            later: Default::default(),
            section: SECTION_PRE_DATA,
            searchpath: None,
            encoding: Box::new(*b"SQL_ASCII"),
            std_strings: false,
            cur_tablespace: None,
            cur_tableam: None,
            cur_schema: None,
            stage: Stage::Start,
            buf: Vec::with_capacity(1 << 16),
            pos: 0,
            halt: None,
        };
        while let Some(e) = t.next_entry() {
            if !t.setting(&e) {
                t.ahead = Some(e);
                break;
            }
            t.enter_section(&e);
        }
        t
    }

    /// Why the text stopped short, if it did.
    pub fn halt(self) -> Option<Halt> {
        self.halt
    }

    /// The next entry of the source; None at its end or after an error (kept in `halt`).
    fn next_entry(&mut self) -> Option<Box<Entry>> {
        if self.halt.is_some() {
            return None;
        }
        match self.ahead.take().map(Ok).or_else(|| self.source.next())? {
            Ok(e) => Some(e),
            Err(e) => {
                self.halt = Some(Halt::Failed(e));
                None
            }
        }
    }

    /// Reads an ENCODING, STDSTRINGS or SEARCHPATH entry into the preamble's settings; false
    /// for any other entry.
    fn setting(&mut self, e: &Entry) -> bool {
        match e.desc() {
            // `SET client_encoding = 'UTF8';`
            b"ENCODING" => {
                let d = e.defn().unwrap_or_default();
                let mut parts = d.split(|&b| b == b'\'');
                if let (Some(_), Some(enc), Some(_)) = (parts.next(), parts.next(), parts.next()) {
                    self.encoding = enc.into();
                }
            }
            b"STDSTRINGS" => {
                let d = e.defn().unwrap_or_default();
                if let Some(i) = d.iter().position(|&b| b == b'\'') {
                    self.std_strings = d[i..].starts_with(b"'on'");
                }
            }
            b"SEARCHPATH" => self.searchpath = e.defn().map(Bytes::from),
            _ => return false,
        }
        true
    }

    fn enter_section(&mut self, e: &Entry) {
        if e.section != SECTION_NONE {
            self.section = e.section;
        }
    }

    fn preamble(&mut self) {
        let h = &self.header;
        let b = &mut self.buf;
        b.extend_from_slice(b"--\n-- PostgreSQL database dump\n--\n\n");
        if let Some(v) = h.server_version.as_deref() {
            b.extend_from_slice(b"-- Dumped from database version ");
            b.extend_from_slice(v);
            b.push(b'\n');
        }
        if let Some(v) = h.dump_version.as_deref() {
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
        b.extend_from_slice(&self.encoding);
        b.extend_from_slice(b"';\nSET standard_conforming_strings = ");
        b.extend_from_slice(if self.std_strings {
            b"on;\n"
        } else {
            b"off;\n"
        });
        if let Some(sp) = self.searchpath.as_deref() {
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

    fn entry(&mut self, e: &Entry) {
        let major = self.major;
        let b = &mut self.buf;
        // _selectOutputSchema: only archives without a SEARCHPATH entry (made before 1.13).
        if self.searchpath.is_none() {
            if let Some(ns) = e.namespace().filter(|n| !n.is_empty()) {
                if self.cur_schema.as_deref() != Some(ns) {
                    b.extend_from_slice(b"SET search_path = ");
                    fmt_id(b, ns, major);
                    if ns != b"pg_catalog" {
                        b.extend_from_slice(b", pg_catalog");
                    }
                    b.extend_from_slice(b";\n\n");
                    self.cur_schema = Some(ns.into());
                }
            }
        }
        if let Some(ts) = e.tablespace() {
            if self.cur_tablespace.as_deref() != Some(ts) {
                if ts.is_empty() {
                    b.extend_from_slice(b"SET default_tablespace = '';\n\n");
                } else {
                    b.extend_from_slice(b"SET default_tablespace = ");
                    fmt_id(b, ts, major);
                    b.extend_from_slice(b";\n\n");
                }
                self.cur_tablespace = Some(ts.into());
            }
        }
        if e.relkind != RELKIND_PARTITIONED_TABLE {
            if let Some(am) = e.tableam() {
                if self.cur_tableam.as_deref() != Some(am) {
                    b.extend_from_slice(b"SET default_table_access_method = ");
                    fmt_id(b, am, major);
                    b.extend_from_slice(b";\n\n");
                    self.cur_tableam = Some(am.into());
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
        sanitized(b, e.tag(), false);
        b.extend_from_slice(b"; Type: ");
        b.extend_from_slice(e.desc());
        b.extend_from_slice(b"; Schema: ");
        sanitized(b, e.namespace(), true);
        b.extend_from_slice(b"; Owner: ");
        sanitized(b, e.owner(), true);
        if let Some(ts) = e.tablespace().filter(|t| !t.is_empty()) {
            b.extend_from_slice(b"; Tablespace: ");
            sanitized(b, Some(ts), false);
        }
        let _ = write!(b, "\n-- Data Pos: {}\n--\n\n", e.data_pos);
        if let Some(d) = e.defn().filter(|d| !d.is_empty()) {
            b.extend_from_slice(d);
            b.extend_from_slice(b"\n\n");
        }
        let owner = e.owner().filter(|o| !o.is_empty());
        if let (Some(owner), Some(_)) = (owner, e.drop_stmt().filter(|d| !d.is_empty())) {
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
            if let Some(am) = e.tableam() {
                b.extend_from_slice(b"ALTER TABLE ");
                if let Some(ns) = e.namespace().filter(|n| !n.is_empty()) {
                    fmt_id(b, ns, major);
                    b.push(b'.');
                }
                fmt_id(b, e.tag().unwrap_or_default(), major);
                b.extend_from_slice(b" SET ACCESS METHOD ");
                fmt_id(b, am, major);
                b.extend_from_slice(b";\n\n");
            }
        }
    }

    /// Renders the next piece into `buf`; false when everything was rendered, or when the text
    /// stopped short (`halt`).
    fn advance(&mut self) -> bool {
        self.buf.clear();
        self.pos = 0;
        loop {
            match self.stage {
                Stage::Start => {
                    self.preamble();
                    self.stage = Stage::Main;
                    return true;
                }
                Stage::Main => {
                    // Render up to ~64 KiB at a time.
                    while self.buf.len() < (1 << 16) {
                        let Some(e) = self.next_entry() else {
                            if self.halt.is_some() {
                                return false;
                            }
                            self.stage = Stage::Later(0);
                            break;
                        };
                        if e.section == SECTION_DATA || self.setting(&e) {
                            self.halt = Some(Halt::NeedsPgRestore);
                            return false;
                        }
                        self.enter_section(&e);
                        // Printed once, and freed once printed; never printed: freed now.
                        match wants_schema(&e, self.section).then(|| pass_of(&e)) {
                            Some(Pass::Main) => self.entry(&e),
                            Some(Pass::Acl) => self.later[0].push_back(e),
                            Some(Pass::PostAcl) => self.later[1].push_back(e),
                            None => {}
                        }
                    }
                    if !self.buf.is_empty() {
                        return true;
                    }
                }
                Stage::Later(pass) => {
                    while self.buf.len() < (1 << 16) {
                        let Some(e) = self.later[pass].pop_front() else {
                            self.stage = if pass == 0 {
                                Stage::Later(1)
                            } else {
                                Stage::End
                            };
                            break;
                        };
                        self.entry(&e);
                    }
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

impl<I: Iterator<Item = Result<Box<Entry>>>> Read for Text<I> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<I: Iterator<Item = Result<Box<Entry>>>> BufRead for Text<I> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos >= self.buf.len() && !self.advance() {
            if self.halt.is_some() {
                // The caller's error; the archive's own is in `halt`.
                return Err(std::io::Error::other("the archive stopped being read"));
            }
            return Ok(&[]);
        }
        Ok(&self.buf[self.pos..])
    }
    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.buf.len());
    }
}

/// The whole text at once (tests, debugging).
pub fn render(toc: Toc) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = Text::new(toc.header, toc.entries.into_iter().map(Ok)).read_to_end(&mut out);
    out
}
