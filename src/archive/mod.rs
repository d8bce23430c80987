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

mod text;
pub use text::{render, Text};

/// Archive versions read here: 1.14 (pg_dump 12-15), 1.15 (16), 1.16 (17, 18).
pub const OLDEST: (u8, u8) = (1, 14);
pub const NEWEST: (u8, u8) = (1, 16);

const SECTION_NONE: i64 = 1;
const SECTION_PRE_DATA: i64 = 2;
const SECTION_DATA: i64 = 3;
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

/// The catalog of a schema-only archive this reader knows; None for another version, or for an
/// archive that holds data (pg_restore's path refuses those, naming the first data entry). A
/// known version that does not parse is an error naming where.
pub fn schema_catalog(
    buf: &[u8],
    filter: &crate::catalog::Filter,
) -> Result<Option<crate::catalog::Catalog>> {
    if !supported(buf) {
        return Ok(None);
    }
    let toc = parse(buf)?;
    if toc.entries.iter().any(|e| e.section == SECTION_DATA) {
        return Ok(None);
    }
    crate::catalog::from_dump_reader(Text::new(&toc), filter).map(Some)
}

/// Builds the catalog of a custom-format archive held in memory.
pub fn catalog_of(buf: &[u8], filter: &crate::catalog::Filter) -> Result<crate::catalog::Catalog> {
    let toc = parse(buf)?;
    crate::catalog::from_dump_reader(Text::new(&toc), filter)
}

#[cfg(test)]
mod tests;
