//! One catalog from the catalogs of several pg_dumps of one snapshot (`crate::shards`), equal to
//! the catalog of one whole dump: each object once, pg_dump's dependencies re-linked by key (dump
//! ids differ between dumps), and pg_dump's creation order rebuilt.
//!
//! What a shard misses: pg_dump keeps only the dependencies between entries it dumps, and for
//! one on an object it leaves out it takes that object's own dumped dependencies instead
//! (pg_dump.c, BuildArchiveDependencies). The shards are cut so that every object a dependency
//! of a table, view or their parts points at is in the same shard, and every other object is
//! in every shard; so a dependency of X on Y is in each shard holding both, and a dependency
//! that is in one shard holding both X and Y but not in another is the stand-in of one left
//! out there. Hence: a dependency counts when every shard holding both ends has it.

use super::{Block, Catalog, ObjectKind};
use anyhow::{bail, Result};

use ObjectKind as K;

/// pg_dump's sort class of an entry's kind (pg_dump_sort.c, dbObjectTypePriority), coarse:
/// objects of one class are created by schema, then name. None for entries that follow
/// another (comments, labels, owners, privileges), which take their object's.
fn class(kind: &ObjectKind) -> Option<u8> {
    Some(match kind {
        K::Schema => 1,
        K::ProceduralLanguage => 2,
        K::Collation => 3,
        K::Transform => 4,
        K::Extension => 5,
        K::Type | K::ShellType | K::Domain => 6,
        K::Cast => 7,
        K::Function | K::Procedure => 8,
        K::Aggregate => 9,
        K::AccessMethod => 10,
        K::Operator => 11,
        K::OperatorFamily | K::OperatorClass => 12,
        K::Conversion => 13,
        K::TextSearchParser => 14,
        K::TextSearchTemplate => 15,
        K::TextSearchDictionary => 16,
        K::TextSearchConfiguration => 17,
        K::ForeignDataWrapper => 18,
        K::ForeignServer | K::UserMapping => 19,
        K::Table | K::View | K::Sequence | K::MaterializedView | K::ForeignTable => 20,
        K::TableAttach => 21,
        K::Default => 22,
        K::Constraint | K::CheckConstraint => 30,
        K::Index => 31,
        K::IndexAttach => 32,
        K::Statistics => 33,
        K::Rule => 34,
        K::Trigger => 35,
        K::FkConstraint => 36,
        K::Policy | K::RowSecurity => 37,
        K::Publication => 38,
        K::PublicationTable => 39,
        K::PublicationTablesInSchema => 40,
        K::Subscription | K::SubscriptionTable => 41,
        K::DefaultAcl => 42,
        K::EventTrigger => 43,
        // A sequence's OWNED BY is an entry of its own, right after the sequence's.
        K::Comment | K::SecurityLabel | K::Owner | K::Acl | K::SequenceOwnedBy => return None,
        _ => 50,
    })
}

/// Where a block goes among blocks of other shards: pg_restore's pass (privileges after every
/// object), the sort class, the schema.
type Rank = (u8, u8, super::name::Name);

/// Each block's rank in its shard: entries that follow an object take the object's.
fn ranks(cat: &Catalog) -> Vec<Rank> {
    let mut out: Vec<Rank> = Vec::with_capacity(cat.blocks.len());
    let mut last: Rank = (0, 0, super::name::Name::default());
    for (i, b) in cat.blocks.iter().enumerate() {
        let r = match class(&b.key.kind) {
            Some(c) => (0, c, b.key.schema),
            None if b.key.kind == K::Acl => {
                let parent = cat.parent_of(i).filter(|&p| p < i);
                match parent.map(|p| &out[p]) {
                    Some(p) => (1, p.1, p.2),
                    None => (1, 0, b.key.schema),
                }
            }
            None => last,
        };
        if b.key.kind != K::Acl {
            last = r;
        }
        out.push(r);
    }
    out
}

/// The catalog of one whole dump, from the catalogs of the shards of one snapshot. Every object
/// must read the same in every shard that holds it: a difference means the shards did not see
/// one schema, and is an error (the caller dumps whole instead).
pub fn merge(shards: Vec<Catalog>) -> Result<Catalog> {
    // Blocks are moved out of the shards, not copied: ~100,000 a side at 10,000 tables.
    let mut nodes: Vec<Option<Block>> = Vec::new();
    // Key -> node, by the key's hash (as a catalog finds its blocks): a cloned Key a node was
    // the largest part of a merge's peak at 10,000 tables.
    let mut node_of = super::KeyIndex::default();
    // Per shard: its blocks as nodes, in its order, and each block's dependencies as nodes.
    let mut seqs: Vec<Vec<usize>> = Vec::with_capacity(shards.len());
    // Per shard, aligned with its order: each block's dependencies as nodes, sorted.
    let mut shard_deps: Vec<Vec<Vec<usize>>> = Vec::with_capacity(shards.len());
    let mut rank: Vec<Rank> = Vec::new();
    let (dumped_by, server_version) = shards
        .first()
        .map_or((None, None), |c| (c.dumped_by, c.server_version));
    let count = shards.len();
    for cat in shards {
        let r = ranks(&cat);
        let mut seq = Vec::with_capacity(cat.blocks.len());
        let mut first = Vec::with_capacity(cat.blocks.len());
        for (i, b) in cat.blocks.iter().enumerate() {
            // Nodes of earlier shards hold their block; a shard's own keys are unique.
            let h = super::key_hash(&b.key);
            let n = match node_of.find(h, |n| nodes[n].as_ref().is_some_and(|s| s.key == b.key)) {
                Some(n) => {
                    if let Some(seen) = &nodes[n] {
                        same_object(seen, b)?;
                    }
                    n
                }
                None => {
                    node_of.insert(h, nodes.len());
                    nodes.push(None);
                    first.push(i);
                    rank.push(r[i]);
                    nodes.len() - 1
                }
            };
            seq.push(n);
        }
        let mut deps = Vec::with_capacity(cat.blocks.len());
        for b in &cat.blocks {
            let mut d: Vec<usize> = b
                .deps
                .iter()
                .filter_map(|&t| cat.at_toc(t))
                .map(|p| seq[p])
                .collect();
            d.sort_unstable();
            d.dedup();
            deps.push(d);
        }
        let mut first = first.into_iter().peekable();
        for (i, b) in cat.blocks.into_iter().enumerate() {
            if first.next_if_eq(&i).is_some() {
                nodes[seq[i]] = Some(b);
            }
        }
        seqs.push(seq);
        shard_deps.push(deps);
    }
    // What follows holds every block of the side once more in other forms: each structure is
    // dropped as soon as it has served, so that they never all count at once.
    drop(node_of);
    // Where each node is in each shard (usize::MAX: not there).
    let mut pos_in: Vec<Vec<usize>> = vec![vec![usize::MAX; nodes.len()]; count];
    for (s, seq) in seqs.iter().enumerate() {
        for (pos, &node) in seq.iter().enumerate() {
            pos_in[s][node] = pos;
        }
    }
    let of = |s: usize, node: usize| shard_deps[s].get(pos_in[s][node]);
    // Dependencies, by node: those every shard holding both ends agrees on.
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (n, out) in deps.iter_mut().enumerate() {
        let mut all: Vec<usize> = (0..count)
            .filter_map(|s| of(s, n))
            .flatten()
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        all.retain(|&z| {
            (0..count).all(|s| {
                pos_in[s][z] == usize::MAX || of(s, n).is_none_or(|d| d.binary_search(&z).is_ok())
            })
        });
        *out = all;
    }
    drop((shard_deps, pos_in));
    let order = creation_order(&seqs, &deps, &rank)?;
    drop((seqs, rank));
    // Each node's position in the merged order. Its TOC id is that position + 1: what pg_dump's
    // ids are to one dump, unique.
    let mut at = vec![usize::MAX; nodes.len()];
    for (pos, &n) in order.iter().enumerate() {
        at[n] = pos;
    }
    if order.len() != nodes.len() || at.contains(&usize::MAX) {
        bail!("merging the shards: the order found does not hold every object once");
    }
    let toc_of = |n: usize| at[n] as u32 + 1;
    for (n, node) in nodes.iter_mut().enumerate() {
        let Some(b) = node else { continue };
        if b.toc_id.is_some() {
            b.toc_id = Some(toc_of(n));
        }
        // An owner entry has no TOC id of its own: it depends on its object's.
        b.deps = if b.toc_id.is_none() {
            b.deps
                .iter()
                .filter_map(|_| deps[n].first().map(|&p| toc_of(p)))
                .take(1)
                .collect()
        } else {
            let mut d: super::Deps = deps[n].iter().map(|&p| toc_of(p)).collect();
            d.sort_unstable();
            d
        };
    }
    drop(deps);
    // The blocks put in the merged order where they are, and handed over without a copy.
    for i in 0..nodes.len() {
        while at[i] != i {
            let j = at[i];
            nodes.swap(i, j);
            at.swap(i, j);
        }
    }
    let mut cat = Catalog {
        dumped_by,
        server_version,
        ..Catalog::default()
    };
    cat.blocks = nodes.into_iter().flatten().collect();
    cat.reindex();
    Ok(cat)
}

/// Two copies of one object from two shards must say the same.
fn same_object(a: &Block, b: &Block) -> Result<()> {
    if a.stmts != b.stmts || a.owner != b.owner || a.identity() != b.identity() {
        bail!("the shards of one snapshot disagree on {}", a.key.display());
    }
    Ok(())
}

/// pg_dump's order, rebuilt: each shard's order is kept, and so is every dependency; where
/// shards leave a choice, the block of the earlier rank (pass, sort class, schema) goes first,
/// as pg_dump sorts by class and schema before it sorts by dependencies. Shards that disagree
/// on the order of two shared blocks give way to the dependencies alone.
fn creation_order(seqs: &[Vec<usize>], deps: &[Vec<usize>], rank: &[Rank]) -> Result<Vec<usize>> {
    let n = deps.len();
    let mut waiting = vec![0usize; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, d) in deps.iter().enumerate() {
        for &p in d {
            if p != i {
                waiting[i] += 1;
                dependents[p].push(i);
            }
        }
    }
    // Where each node is in each shard that holds it.
    let mut at: Vec<Vec<(usize, usize)>> = vec![Vec::new(); n];
    for (s, seq) in seqs.iter().enumerate() {
        for (pos, &node) in seq.iter().enumerate() {
            at[node].push((s, pos));
        }
    }
    // Nodes free to go, for when no shard's next one is.
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut head = vec![0usize; seqs.len()];
    let mut done = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        for (s, seq) in seqs.iter().enumerate() {
            while head[s] < seq.len() && done[seq[head[s]]] {
                head[s] += 1;
            }
        }
        let heads = || {
            seqs.iter()
                .enumerate()
                .filter(|(s, seq)| head[*s] < seq.len())
                .map(|(s, seq)| (s, seq[head[s]]))
                .filter(|&(_, node)| waiting[node] == 0)
        };
        let best = |c: &mut dyn Iterator<Item = (usize, usize)>| {
            c.min_by(|a, b| rank[a.1].cmp(&rank[b.1]).then(a.0.cmp(&b.0)))
                .map(|(_, node)| node)
        };
        let next =
            best(&mut heads().filter(|&(_, node)| at[node].iter().all(|&(s, pos)| head[s] == pos)))
                .or_else(|| best(&mut heads()))
                .or_else(|| ready.first().copied());
        let Some(node) = next else {
            bail!("the shards' dependencies form a cycle");
        };
        done[node] = true;
        ready.remove(&node);
        order.push(node);
        for &d in &dependents[node] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.insert(d);
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(text: &str) -> Catalog {
        super::super::from_dump_text(text, &Default::default()).unwrap()
    }

    fn entry(toc: u32, deps: &[u32], kind: &str, schema: &str, name: &str, sql: &str) -> String {
        let d = if deps.is_empty() {
            String::new()
        } else {
            let d: Vec<String> = deps.iter().map(|d| d.to_string()).collect();
            format!("-- Dependencies: {}\n", d.join(" "))
        };
        format!("--\n-- TOC entry {toc} (class 0 OID 0)\n{d}-- Name: {name}; Type: {kind}; Schema: {schema}; Owner: -\n--\n\n{sql}\n\n")
    }

    fn dump(entries: &[String]) -> String {
        format!(
            "--\n-- PostgreSQL database dump\n--\n\n{}--\n-- PostgreSQL database dump complete\n--\n\n",
            entries.concat()
        )
    }

    #[test]
    fn relinks_dependencies_across_shards_and_drops_stand_ins() {
        // Shard 1 holds a.t; shard 2 holds b.v, which reads a.t: pg_dump gave b.v a stand-in
        // dependency on schema a there. A function in every shard.
        let schema_a = entry(1, &[], "SCHEMA", "-", "a", "CREATE SCHEMA a;");
        let schema_b = entry(2, &[], "SCHEMA", "-", "b", "CREATE SCHEMA b;");
        let f = entry(
            3,
            &[1],
            "FUNCTION",
            "a",
            "f()",
            "CREATE FUNCTION a.f() RETURNS integer LANGUAGE sql AS 'select 1';",
        );
        let s1 = dump(&[
            schema_a.clone(),
            schema_b.clone(),
            f.clone(),
            entry(
                40,
                &[1],
                "TABLE",
                "a",
                "t",
                "CREATE TABLE a.t (\n    id integer\n);",
            ),
            entry(
                41,
                &[40, 3],
                "VIEW",
                "b",
                "v",
                "CREATE VIEW b.v AS\n SELECT t.id\n   FROM a.t;",
            ),
        ]);
        let s2 = dump(&[
            schema_a,
            schema_b,
            f,
            entry(
                7,
                &[2],
                "TABLE",
                "b",
                "u",
                "CREATE TABLE b.u (\n    id integer\n);",
            ),
            entry(
                8,
                &[1, 3],
                "VIEW",
                "b",
                "v",
                "CREATE VIEW b.v AS\n SELECT t.id\n   FROM a.t;",
            ),
        ]);
        let m = merge(vec![cat(&s1), cat(&s2)]).unwrap();
        let names: Vec<String> = m.blocks.iter().map(|b| b.key.display()).collect();
        assert_eq!(
            names,
            [
                "schema a",
                "schema b",
                "function a.f()",
                "table a.t",
                "table b.u",
                "view b.v"
            ]
        );
        let v = m.position(&m.blocks[5].key).unwrap();
        let deps: Vec<String> = m.blocks[v]
            .deps
            .iter()
            .map(|&t| m.blocks[m.at_toc(t).unwrap()].key.display())
            .collect();
        // Schema a was shard 2's stand-in for a.t: not a dependency of the whole dump's.
        assert_eq!(deps, ["function a.f()", "table a.t"]);
    }

    #[test]
    fn copies_that_differ_are_an_error() {
        let a = dump(&[entry(1, &[], "SCHEMA", "-", "a", "CREATE SCHEMA a;")]);
        let b = dump(&[entry(
            1,
            &[],
            "SCHEMA",
            "-",
            "a",
            "CREATE SCHEMA a AUTHORIZATION x;",
        )]);
        let e = merge(vec![cat(&a), cat(&b)]).unwrap_err().to_string();
        assert!(e.contains("disagree on schema a"), "{e}");
    }
}
