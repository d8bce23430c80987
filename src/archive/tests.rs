//! Unit tests of archive.rs (kept apart: the module is long enough).

use super::text::fmt_id;
use super::*;

/// A real archive (pg_dump 15, version 1.14), checked in for the README's example.
const REAL: &[u8] = include_bytes!("../../fixtures/dumps/production.dump");

/// Gives at most `step` bytes a read.
struct Trickle<'a>(&'a [u8], usize);
impl std::io::Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.1.min(out.len()).min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn reads_a_real_archive() {
    let toc = parse(REAL).unwrap();
    assert_eq!(toc.header.version, (1, 14, 0));
    assert_eq!(toc.header.dump_major(), Some(15));
    assert!(toc.entries.iter().any(|e| e.desc() == b"TABLE"
        && e.tag() == Some(b"orders".as_slice())
        && e.namespace() == Some(b"public".as_slice())));
    let text = String::from_utf8(render(toc)).unwrap();
    assert!(text.starts_with("--\n-- PostgreSQL database dump\n--\n\n-- Dumped from"));
    assert!(text.contains("-- Name: orders; Type: TABLE; Schema: public; Owner: "));
    let cat = catalog_of(REAL, &Default::default()).unwrap();
    assert!(cat
        .blocks
        .iter()
        .any(|b| b.key.name == "orders" && b.toc_id.is_some()));
}

#[test]
fn every_truncation_is_a_one_line_error() {
    let end = parse(REAL).unwrap().end;
    assert!(end > 100 && end <= REAL.len());
    for n in 0..end {
        let err = match parse(&REAL[..n]) {
            Ok(_) => panic!("{n} bytes of {} parsed", REAL.len()),
            Err(e) => format!("{e:#}"),
        };
        assert!(!err.contains('\n'), "{n}: {err}");
        assert!(
            err.contains("at byte") && err.contains("expected"),
            "{n}: {err}"
        );
    }
    // Whatever follows the TOC (data blocks) is not needed.
    parse(&REAL[..end]).unwrap();
}

#[test]
fn corrupt_bytes_never_panic_nor_allocate_unbounded() {
    // Every byte of the header and TOC set to 0xff, to 0x7f and to 0: errors or a parse,
    // never a panic; lengths beyond the input are refused before allocating.
    let mut copy = REAL.to_vec();
    for i in 0..REAL.len().min(4096) {
        for v in [0xffu8, 0x7f, 0x00, 0x01] {
            let old = copy[i];
            copy[i] = v;
            if let Ok(toc) = parse(&copy) {
                let _ = render(toc);
            }
            copy[i] = old;
        }
    }
    let mut huge = REAL[..8].to_vec();
    huge.extend_from_slice(&[4, 8, 1, 1]);
    huge.extend_from_slice(&[0, 0xff, 0xff, 0xff, 0x7f]);
    let e = format!("{:#}", parse(&huge).unwrap_err());
    assert!(e.contains("at byte"), "{e}");
}

#[test]
fn not_an_archive() {
    let e = format!("{:#}", parse(b"-- PostgreSQL database dump\n").unwrap_err());
    assert!(
        e.contains("at byte 0: expected the magic string PGDMP"),
        "{e}"
    );
    let mut v = REAL.to_vec();
    v[6] = 9;
    let e = format!("{:#}", parse(&v).unwrap_err());
    assert!(e.contains("unsupported archive version 1.9"), "{e}");
    assert!(!supported(&v) && supported(REAL));
}

#[test]
fn quoting_follows_the_major() {
    let q = |s: &str, m| {
        let mut v = Vec::new();
        fmt_id(&mut v, s.as_bytes(), m);
        String::from_utf8(v).unwrap()
    };
    assert_eq!(q("orders", 15), "orders");
    assert_eq!(q("select", 15), "\"select\"");
    assert_eq!(q("My Table", 15), "\"My Table\"");
    assert_eq!(q("a\"b", 15), "\"a\"\"b\"");
    assert_eq!(q("", 15), "\"\"");
    assert_eq!(q("json_table", 15), "json_table");
    assert_eq!(q("json_table", 17), "\"json_table\"");
}

/// Read from a stream in pieces of any size, the archive parses and renders as from memory;
/// and a file that ends before the length it was said to have is an error naming the offset.
#[test]
fn streamed_in_small_pieces_reads_as_from_memory() {
    let whole = render(parse(REAL).unwrap());
    for step in [1, 3, 7, 4096] {
        let toc = parse_from(Trickle(REAL, step), REAL.len()).unwrap();
        assert_eq!(render(toc), whole, "read {step} bytes at a time");
    }
    let short = &REAL[..REAL.len() / 2];
    let err = format!(
        "{:#}",
        parse_from(Trickle(short, 4096), REAL.len()).unwrap_err()
    );
    assert!(
        err.contains("at byte") && err.contains("read error"),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
}

/// Rendered as its entries are read (as `schema_catalog` reads a file), the text equals the one
/// rendered from the whole TOC; an archive that ends inside its TOC fails with the reader's own
/// one-line error, naming the offset, however far the catalog had got.
#[test]
fn rendered_as_read_equals_rendered_whole() {
    let toc = parse(REAL).unwrap();
    let end = toc.end;
    let whole = render(toc);
    for step in [1, 7, 4096] {
        let text = render_from(Trickle(REAL, step), REAL.len()).unwrap();
        assert_eq!(
            text.as_deref(),
            Some(whole.as_slice()),
            "{step} bytes a read"
        );
    }
    for n in [end / 3, end / 2, end - 1] {
        let err = format!(
            "{:#}",
            catalog_of(&REAL[..n], &Default::default()).unwrap_err()
        );
        assert!(
            err.contains("at byte") && err.contains("expected") && !err.contains('\n'),
            "{n}: {err}"
        );
    }
}

/// What only pg_restore prints alike stops the text, and the file goes to pg_restore: an
/// ENCODING entry after other entries (pg_restore reads it before printing anything), or data.
#[test]
fn entries_out_of_pg_dumps_order_or_data_need_pg_restore() {
    let halted = |toc: Toc| {
        let mut t = Text::new(toc.header, toc.entries.into_iter().map(Ok));
        assert!(t.read_to_end(&mut Vec::new()).is_err());
        t.halt()
    };
    let mut toc = parse(REAL).unwrap();
    let at = toc
        .entries
        .iter()
        .position(|e| e.desc() == b"ENCODING")
        .unwrap();
    let encoding = toc.entries.remove(at);
    toc.entries.push(encoding);
    assert!(matches!(halted(toc), Some(Halt::NeedsPgRestore)));
    let mut toc = parse(REAL).unwrap();
    let table = toc
        .entries
        .iter_mut()
        .find(|e| e.desc() == b"TABLE")
        .unwrap();
    table.section = SECTION_DATA;
    assert!(matches!(halted(toc), Some(Halt::NeedsPgRestore)));
    let toc = parse(REAL).unwrap();
    let mut t = Text::new(toc.header, toc.entries.into_iter().map(Ok));
    assert!(t.read_to_end(&mut Vec::new()).is_ok());
    assert!(t.halt().is_none());
}
