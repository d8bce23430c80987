//! A plain dump carries no dependency graph (pg_restore --verbose writes `-- Dependencies:`
//! lines; a plain file does not): an approximation is rebuilt from the names statements use.

use super::{qualified, Catalog, HashIndex, ObjectKind};
use regex::Regex;
use std::collections::HashMap;
use std::sync::OnceLock;

pub(super) fn qualified_name_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)\.(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)"#)
            .unwrap()
    })
}

/// Each match of `qualified_name_re` in `st`, in order. A statement without a double quote (most
/// of a dump) is read by a byte loop: the regex's automaton over every byte was a fifth of reading
/// a plain dump. With quoted names, the regex itself.
pub(super) fn for_each_qualified_name<'a>(st: &'a str, mut found: impl FnMut(&'a str)) {
    if st.contains('"') {
        for m in qualified_name_re().find_iter(st) {
            found(m.as_str());
        }
        return;
    }
    let b = st.as_bytes();
    let starts = |c: u8| c.is_ascii_alphabetic() || c == b'_';
    let goes_on = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b'$';
    // Where the search goes on from: the end of the last match (matches do not overlap).
    let mut from = 0;
    let mut dot = 0;
    while let Some(at) = b[dot..].iter().position(|&c| c == b'.') {
        let d = dot + at;
        dot = d + 1;
        // The first part: the run of name characters before the dot (not before `from`), from
        // its first character that can start a name; the second: a name starting after it.
        let mut run = d;
        while run > from && goes_on(b[run - 1]) {
            run -= 1;
        }
        let Some(start) = (run..d).find(|&i| starts(b[i])) else {
            continue;
        };
        if !b.get(d + 1).is_some_and(|&c| starts(c)) {
            continue;
        }
        let mut end = d + 2;
        while end < b.len() && goes_on(b[end]) {
            end += 1;
        }
        found(&st[start..end]);
        from = end;
        dot = end;
    }
}

/// A plain dump carries no dependency graph. Rebuild an approximation: a block depends on its
/// schema and on every named object whose schema-qualified name (as pg_dump writes it) appears in
/// its statements. pg_dump qualifies every reference when it writes a dump, so this finds what
/// views, indexes, constraints, triggers, defaults, comments and grants refer to.
pub(super) fn infer_dependencies(cat: &mut Catalog) {
    // Names by the hash of their qualified text, not by the text: a String per named object was
    // most of what reading a plain dump of 10,000 tables allocated at its peak. Two names that
    // shared a hash (about one chance in 10^10 at 100,000 names) would only add a dependency,
    // which orders steps and never drops one.
    let mut names: HashIndex<smallvec::SmallVec<[u32; 2]>> = HashIndex::default();
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
                let mut h = NameHash::new();
                super::parse::qualified_pieces(&b.key.schema, base, |p| h.write(p));
                names.entry(h.0).or_default().push(id);
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
            for_each_qualified_name(st, |m| {
                let mut h = NameHash::new();
                h.write(m);
                if let Some(ids) = names.get(&h.0) {
                    deps.extend(ids.iter().copied().filter(|&i| Some(i) != own));
                }
            });
        }
        b.add_deps(deps);
    }
    infer_constraint_comment_dependencies(cat);
    infer_index_dependencies(cat);
}

/// FNV-1a over the bytes of a text given in pieces: the same hash however the text is cut.
pub(super) struct NameHash(pub(super) u64);

impl NameHash {
    pub(super) fn new() -> NameHash {
        NameHash(0xcbf2_9ce4_8422_2325)
    }
    pub(super) fn write(&mut self, piece: &str) {
        for &c in piece.as_bytes() {
            self.0 = (self.0 ^ u64::from(c)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

/// `COMMENT ON CONSTRAINT c ON t` names the table, qualified, and the constraint only bare: it
/// depends on the constraint (its tag is `CONSTRAINT c ON t`; the constraint's is `t c`).
pub(super) fn infer_constraint_comment_dependencies(cat: &mut Catalog) {
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
pub(super) fn infer_index_dependencies(cat: &mut Catalog) {
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
