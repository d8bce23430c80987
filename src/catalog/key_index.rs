//! Blocks found by the hash of their key: the catalog's index, and the fixed hash it uses.

use super::Key;
use std::collections::HashMap;

/// Positions of blocks by the hash of their key; the rare hash collision goes to `more`.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyIndex {
    // Keyed by the hash folded to 32 bits: 8 bytes a slot rather than 16, ~1 MB a side at
    // 10,000 tables; the rare key that shares a folded hash goes to `more`.
    first: HashMap<u32, u32, std::hash::BuildHasherDefault<PassThrough>>,
    more: HashMap<u32, Vec<u32>, std::hash::BuildHasherDefault<PassThrough>>,
}

/// A key's hash: FNV-1a over its three parts, 8 bytes at a time. Fixed (the same in every
/// build, unlike std's SipHash keys), fast, and only used to find blocks.
pub(crate) fn key_hash(key: &Key) -> u64 {
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
pub(crate) struct PassThrough(u64);

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
    /// A folded hash: spread over 64 bits again, since the map reads both its low and its
    /// high bits.
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

pub(crate) type HashIndex<V> = HashMap<u64, V, std::hash::BuildHasherDefault<PassThrough>>;

/// A key's hash in 32 bits.
fn fold(h: u64) -> u32 {
    (h ^ (h >> 32)) as u32
}

impl KeyIndex {
    /// The position, among those stored under hash `h`, that `is` accepts.
    pub(crate) fn find(&self, h: u64, is: impl Fn(usize) -> bool) -> Option<usize> {
        let h = fold(h);
        let first = *self.first.get(&h)? as usize;
        if is(first) {
            return Some(first);
        }
        self.more
            .get(&h)?
            .iter()
            .map(|&i| i as usize)
            .find(|&i| is(i))
    }
    pub(crate) fn insert(&mut self, h: u64, i: usize) {
        let h = fold(h);
        match self.first.entry(h) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i as u32);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.more.entry(h).or_default().push(i as u32)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys whose hashes fold to the same 32 bits are all kept and all found.
    #[test]
    fn key_index_keeps_keys_that_share_a_hash() {
        let mut ix = KeyIndex::default();
        assert_eq!(fold(7), fold(7 << 32));
        ix.insert(7, 0);
        ix.insert(7, 1);
        ix.insert(7 << 32, 2);
        for i in 0..3 {
            let h = if i == 2 { 7 << 32 } else { 7 };
            assert_eq!(ix.find(h, |j| j == i), Some(i));
        }
        assert_eq!(ix.find(7, |j| j == 5), None);
        assert_eq!(ix.find(8, |_| true), None);
    }
}
