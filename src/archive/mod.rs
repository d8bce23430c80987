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

use anyhow::{bail, Context, Result};
use std::io::{BufRead, Read};

mod text;
pub use text::{render, Halt, Text};

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
pub struct Header {
    pub version: (u8, u8, u8),
    pub int_size: u8,
    pub off_size: u8,
    pub compression: i64,
    /// tm_sec, tm_min, tm_hour, tm_mday, tm_mon, tm_year, tm_isdst, as pg_dump wrote them.
    pub created: [i64; 7],
    pub dbname: Option<Bytes>,
    pub server_version: Option<Bytes>,
    pub dump_version: Option<Bytes>,
}

/// A string of the archive, held on its own: each entry's strings are freed once the entry is
/// rendered, so that an archive of 10,000 tables does not stay whole beside its catalog.
pub type Bytes = Box<[u8]>;

impl Header {
    /// The major version of the pg_dump that wrote the archive (`15.20 (Debian ...)` -> 15).
    pub fn dump_major(&self) -> Option<u32> {
        let v = self.dump_version.as_deref()?;
        let digits: Vec<u8> = v.iter().copied().take_while(u8::is_ascii_digit).collect();
        std::str::from_utf8(&digits).ok()?.parse().ok()
    }
}

/// One TOC entry. Its strings are held in one allocation (an archive of 10,000 tables has
/// ~80,000 entries, each freed once rendered); the COPY statement and the WITH OIDS flag, which
/// a schema's text never shows, are read past.
#[derive(Debug, Clone)]
pub struct Entry {
    pub dump_id: i32,
    pub had_dumper: bool,
    pub table_oid: u32,
    pub oid: u32,
    pub section: i64,
    pub relkind: i64,
    pub deps: smallvec::SmallVec<[i32; 4]>,
    pub data_state: u8,
    pub data_pos: i64,
    /// The strings, one after another.
    text: Bytes,
    /// Where each string (`Field`) is in `text`; None for NULL.
    spans: [Option<(u32, u32)>; FIELDS],
}

/// The strings of an entry, in the order the archive holds them.
#[derive(Clone, Copy)]
enum Field {
    Tag,
    Desc,
    Defn,
    DropStmt,
    Namespace,
    Tablespace,
    Tableam,
    Owner,
}
const FIELDS: usize = 8;

impl Entry {
    fn field(&self, f: Field) -> Option<&[u8]> {
        let (start, len) = self.spans[f as usize]?;
        self.text.get(start as usize..(start + len) as usize)
    }
    pub fn tag(&self) -> Option<&[u8]> {
        self.field(Field::Tag)
    }
    /// pg_dump's Type (`TABLE`, `ACL`, ...); never NULL in an archive that parsed.
    pub fn desc(&self) -> &[u8] {
        self.field(Field::Desc).unwrap_or_default()
    }
    pub fn defn(&self) -> Option<&[u8]> {
        self.field(Field::Defn)
    }
    pub fn drop_stmt(&self) -> Option<&[u8]> {
        self.field(Field::DropStmt)
    }
    pub fn namespace(&self) -> Option<&[u8]> {
        self.field(Field::Namespace)
    }
    pub fn tablespace(&self) -> Option<&[u8]> {
        self.field(Field::Tablespace)
    }
    pub fn tableam(&self) -> Option<&[u8]> {
        self.field(Field::Tableam)
    }
    pub fn owner(&self) -> Option<&[u8]> {
        self.field(Field::Owner)
    }
}

/// A parsed archive: its header and its TOC, in the archive's order.
#[derive(Debug, Clone)]
pub struct Toc {
    pub header: Header,
    /// Each entry boxed: a renderer frees an entry whole once it is printed.
    pub entries: Vec<Box<Entry>>,
    /// Where the TOC ends (data blocks, if any, follow).
    pub end: usize,
}

/// Reads the input front to back; every read names its byte offset and what it expected when
/// the input ends or holds nonsense, and no length is trusted beyond what is left of `len`, the
/// input's size.
struct Cursor<R> {
    input: R,
    pos: usize,
    len: usize,
    int_size: usize,
    off_size: usize,
}

impl<R: Read> Cursor<R> {
    fn fail<T>(&self, what: &str, found: &str) -> Result<T> {
        bail!(
            "not a readable pg_dump custom-format archive: at byte {}: expected {what}, found {found}",
            self.pos
        )
    }
    fn left(&self) -> usize {
        self.len.saturating_sub(self.pos)
    }
    /// That `n` more bytes are left of the input.
    fn ensure(&self, n: usize, what: &str) -> Result<()> {
        let left = self.left();
        if left < n {
            return self.fail(
                what,
                &format!("the end of the input ({left} of {n} bytes left)"),
            );
        }
        Ok(())
    }
    /// Fills `out` from the input.
    fn fill(&mut self, out: &mut [u8], what: &str) -> Result<()> {
        let n = out.len();
        self.ensure(n, what)?;
        if let Err(e) = self.input.read_exact(out) {
            return self.fail(what, &format!("a read error ({e})"));
        }
        self.pos += n;
        Ok(())
    }
    fn bytes(&mut self, n: usize, what: &str) -> Result<Bytes> {
        // Checked before allocating: `n` may come from the input.
        self.ensure(n, what)?;
        let mut out = vec![0; n].into_boxed_slice();
        self.fill(&mut out, what)?;
        Ok(out)
    }
    fn byte(&mut self, what: &str) -> Result<u8> {
        let mut b = [0u8];
        self.fill(&mut b, what)?;
        Ok(b[0])
    }
    /// A sign byte and `int_size` little-endian bytes.
    fn int(&mut self, what: &str) -> Result<i64> {
        let start = self.pos;
        let sign = self.byte(what)?;
        let mut b = [0u8; 8];
        let b = &mut b[..self.int_size];
        self.fill(b, what)?;
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
    fn string(&mut self, what: &str) -> Result<Option<Bytes>> {
        match self.length(what)? {
            Some(n) => self.bytes(n, what).map(Some),
            None => Ok(None),
        }
    }
    /// A string appended to `text`: where it is there, None for NULL.
    fn string_into(&mut self, what: &str, text: &mut Vec<u8>) -> Result<Option<(u32, u32)>> {
        let Some(n) = self.length(what)? else {
            return Ok(None);
        };
        let start = text.len();
        text.resize(start + n, 0);
        self.fill(&mut text[start..], what)?;
        match (u32::try_from(start), u32::try_from(n)) {
            (Ok(s), Ok(n)) => Ok(Some((s, n))),
            _ => self.fail(what, "a string too long to hold"),
        }
    }
    /// A string read past.
    fn skip_string(&mut self, what: &str) -> Result<()> {
        let mut n = self.length(what)?.unwrap_or(0);
        let mut scratch = [0u8; 256];
        while n > 0 {
            let k = n.min(scratch.len());
            self.fill(&mut scratch[..k], what)?;
            n -= k;
        }
        Ok(())
    }
    /// A string's length (None: NULL), checked against what is left of the input.
    fn length(&mut self, what: &str) -> Result<Option<usize>> {
        let start = self.pos;
        let n = self.int(what)?;
        if n == -1 {
            return Ok(None);
        }
        let left = self.left();
        if n < 0 || n as usize > left {
            self.pos = start;
            return self.fail(
                what,
                &format!("a length of {n} with {left} bytes left after it"),
            );
        }
        Ok(Some(n as usize))
    }
    /// A string holding a number, as pg_dump writes OIDs and dependency ids; None for NULL.
    fn number<T: std::str::FromStr>(&mut self, what: &str) -> Result<Option<T>> {
        let start = self.pos;
        let Some(n) = self.length(what)? else {
            return Ok(None);
        };
        let mut digits = [0u8; 24];
        let parsed = if n <= digits.len() {
            self.fill(&mut digits[..n], what)?;
            std::str::from_utf8(&digits[..n])
                .ok()
                .and_then(|s| s.parse().ok())
        } else {
            None
        };
        match parsed {
            Some(v) => Ok(Some(v)),
            None => {
                self.pos = start;
                self.fail(what, "something else")
            }
        }
    }
}

/// Parses the header and the TOC of a custom-format archive held in memory (the data after them
/// is not read).
pub fn parse(buf: &[u8]) -> Result<Toc> {
    parse_from(buf, buf.len())
}

/// Parses the header and the TOC of a custom-format archive of `len` bytes from `input`, read
/// front to back once (the data after them is not read).
pub fn parse_from(input: impl Read, len: usize) -> Result<Toc> {
    let (header, mut read) = open(input, len)?;
    // No entry takes fewer than 20 bytes: never reserve more than the input can hold.
    let mut entries = Vec::with_capacity(read.left.min(read.c.left() / 20));
    for e in &mut read {
        entries.push(e?);
    }
    Ok(Toc {
        header,
        entries,
        end: read.c.pos,
    })
}

/// The TOC's entries, read one at a time after the header (`open`): a renderer that prints
/// each as it comes never holds the whole TOC.
pub struct Entries<R> {
    c: Cursor<R>,
    version: (u8, u8),
    /// Entries not read yet; 0 after an error.
    left: usize,
    /// Each entry's strings are read into this buffer, then copied out at their exact size.
    text: Vec<u8>,
}

impl<R: Read> Iterator for Entries<R> {
    type Item = Result<Box<Entry>>;
    fn next(&mut self) -> Option<Result<Box<Entry>>> {
        if self.left == 0 {
            return None;
        }
        let e = read_entry(&mut self.c, self.version, &mut self.text).map(Box::new);
        self.left = if e.is_ok() { self.left - 1 } else { 0 };
        Some(e)
    }
}

/// Reads the header of a custom-format archive of `len` bytes from `input` and the number of
/// TOC entries; the entries follow, one a call, from the iterator.
pub fn open<R: Read>(input: R, len: usize) -> Result<(Header, Entries<R>)> {
    let mut c = Cursor {
        input,
        pos: 0,
        len,
        int_size: 4,
        off_size: 8,
    };
    if *c.bytes(5, "the magic string PGDMP")? != *b"PGDMP" {
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
    Ok((
        header,
        Entries {
            c,
            version: (vmaj, vmin),
            left: count as usize,
            text: Vec::new(),
        },
    ))
}

fn read_entry(c: &mut Cursor<impl Read>, version: (u8, u8), text: &mut Vec<u8>) -> Result<Entry> {
    let at = c.pos;
    let dump_id = c.int("a TOC entry's dump id")?;
    if dump_id <= 0 {
        c.pos = at;
        return c.fail("a TOC entry's dump id (1 or more)", &dump_id.to_string());
    }
    let had_dumper = c.int("a TOC entry's hadDumper flag")? != 0;
    let oid = |c: &mut Cursor<_>, what| -> Result<u32> {
        let at = c.pos;
        match c.number(what)? {
            Some(v) => Ok(v),
            None => {
                c.pos = at;
                c.fail(what, "NULL")
            }
        }
    };
    let table_oid = oid(c, "a TOC entry's table OID")?;
    let oid = oid(c, "a TOC entry's OID")?;
    text.clear();
    let mut spans = [None; FIELDS];
    spans[Field::Tag as usize] = c.string_into("a TOC entry's tag", text)?;
    let desc_at = c.pos;
    spans[Field::Desc as usize] = c.string_into("a TOC entry's description", text)?;
    if spans[Field::Desc as usize].is_none() {
        c.pos = desc_at;
        return c.fail("a TOC entry's description", "NULL");
    }
    let section = c.int("a TOC entry's section")?;
    spans[Field::Defn as usize] = c.string_into("a TOC entry's definition", text)?;
    spans[Field::DropStmt as usize] = c.string_into("a TOC entry's DROP statement", text)?;
    c.skip_string("a TOC entry's COPY statement")?;
    spans[Field::Namespace as usize] = c.string_into("a TOC entry's schema", text)?;
    spans[Field::Tablespace as usize] = c.string_into("a TOC entry's tablespace", text)?;
    spans[Field::Tableam as usize] = c.string_into("a TOC entry's table access method", text)?;
    let relkind = if version >= (1, 16) {
        c.int("a TOC entry's relkind")?
    } else {
        0
    };
    spans[Field::Owner as usize] = c.string_into("a TOC entry's owner", text)?;
    c.skip_string("a TOC entry's WITH OIDS flag")?;
    let mut deps = smallvec::SmallVec::new();
    while let Some(d) = c.number("a dependency id or the end of the list")? {
        deps.push(d);
    }
    let flag_at = c.pos;
    let data_state = c.byte("a TOC entry's data state")?;
    if !(1..=3).contains(&data_state) {
        c.pos = flag_at;
        return c.fail("a data state of 1 to 3", &data_state.to_string());
    }
    let mut data_pos: i64 = 0;
    let mut offset = [0u8; 8];
    let offset = &mut offset[..c.off_size];
    c.fill(offset, "a TOC entry's data offset")?;
    for (i, &b) in offset.iter().enumerate() {
        data_pos |= (b as i64) << (8 * i);
    }
    Ok(Entry {
        dump_id: dump_id as i32,
        had_dumper,
        table_oid,
        oid,
        section,
        relkind,
        deps,
        data_state,
        data_pos,
        text: text.as_slice().into(),
        spans,
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

/// The catalog of a schema-only archive file this reader knows; None for another version, or for
/// an archive only pg_restore reads alike (one that holds data: pg_restore's path refuses
/// those, naming the first data entry). A known version that does not parse is an error naming
/// where. The file is read once, front to back, each entry printed and freed as it is read: the
/// TOC is never held whole beside the catalog.
pub fn schema_catalog(
    path: &std::path::Path,
    filter: &crate::catalog::Filter,
) -> Result<Option<crate::catalog::Catalog>> {
    use std::io::{Seek, SeekFrom};
    let reading = || format!("reading {}", path.display());
    let mut file = std::fs::File::open(path).with_context(reading)?;
    let len = file.metadata().with_context(reading)?.len();
    let mut head = Vec::with_capacity(8);
    (&mut file)
        .take(8)
        .read_to_end(&mut head)
        .with_context(reading)?;
    if !supported(&head) {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(0)).with_context(reading)?;
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let input = std::io::BufReader::with_capacity(1 << 16, file);
    streamed(input, len, |text| {
        crate::catalog::from_dump_reader(text, filter)
    })
}

/// Builds the catalog of a custom-format archive held in memory, as `schema_catalog` does.
pub fn catalog_of(buf: &[u8], filter: &crate::catalog::Filter) -> Result<crate::catalog::Catalog> {
    streamed(buf, buf.len(), |text| {
        crate::catalog::from_dump_reader(text, filter)
    })?
    .context(
        "this archive needs pg_restore (it holds data, or its entries are not in pg_dump's order)",
    )
}

/// The text of an archive of `len` bytes read from `input` as `schema_catalog` reads it; None
/// where only pg_restore prints it alike.
pub fn render_from(input: impl Read, len: usize) -> Result<Option<Vec<u8>>> {
    streamed(input, len, |text| {
        let mut out = Vec::new();
        text.read_to_end(&mut out)?;
        Ok(out)
    })
}

/// Gives `use_text` the archive's text as it is read; an error of the archive itself (a
/// truncation, nonsense bytes) is returned as the archive reader worded it.
fn streamed<T>(
    input: impl Read,
    len: usize,
    use_text: impl FnOnce(&mut Text<Entries<&mut dyn Read>>) -> Result<T>,
) -> Result<Option<T>> {
    let mut input = input;
    let (header, entries) = open(&mut input as &mut dyn Read, len)?;
    let mut text = Text::new(header, entries);
    let out = use_text(&mut text);
    match text.halt() {
        Some(Halt::NeedsPgRestore) => Ok(None),
        Some(Halt::Failed(e)) => Err(e),
        None => out.map(Some),
    }
}

#[cfg(test)]
mod tests;
