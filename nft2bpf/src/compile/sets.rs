//! Sets and verdict maps as BPF maps: a hash table when every element
//! is one value per part, an LPM trie when a set of one part has ranges
//! or prefixes (each range cut into the prefixes that cover it exactly).
//! The rest (few elements, or ranges in a concatenation) are compare
//! chains in the program, and have no map.
//!
//! A key is each part's 32-bit words in network order, the word holding
//! the field's bytes as the packet has them, masked; an LPM key starts
//! with the prefix length in host order, as the kernel's trie wants.

use bpf_builder::map::MapSpec;

use crate::check::tree::SetId;

/// The kind of a set's map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetKind {
    /// `BPF_MAP_TYPE_HASH`: exact keys.
    Hash,
    /// `BPF_MAP_TYPE_LPM_TRIE`: prefixes of one part.
    Lpm,
}

/// A set's map: what the program looks up and what the map holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetMap {
    /// The set.
    pub set: SetId,
    /// Its kind.
    pub kind: SetKind,
    /// Bytes of a key's data (after an LPM key's prefix length).
    pub data_bytes: u32,
    /// The entries: key bytes (an LPM key's prefix length included) and
    /// value (for a verdict map, the index of the element's verdict in
    /// the map's verdict list; 1 for a set).
    pub entries: Vec<(Vec<u8>, u32)>,
    /// Room for this many entries.
    pub max_entries: u32,
}

/// Room a set's map has beyond its elements, so that elements can be
/// added while it runs: twice as many, at least this many.
pub const MIN_SET_ENTRIES: u32 = 64;

impl SetMap {
    /// The map's name: `nft_set` and its number.
    pub fn map_name(index: usize) -> String {
        format!("nft_set{index}")
    }

    /// The map's description, for an object.
    pub fn spec(&self, index: usize) -> MapSpec {
        let name = SetMap::map_name(index);
        match self.kind {
            SetKind::Hash => MapSpec::hash(name, self.data_bytes, 4, self.max_entries),
            SetKind::Lpm => MapSpec::lpm_trie(name, self.data_bytes, 4, self.max_entries),
        }
    }

    /// The key's length in bytes, as the map has it.
    pub fn key_bytes(&self) -> u32 {
        match self.kind {
            SetKind::Hash => self.data_bytes,
            SetKind::Lpm => 4 + self.data_bytes,
        }
    }

    /// What the map gives for `key` (the bytes the program looks up):
    /// the interpreter's lookup, the kernel's semantics.
    pub fn lookup(&self, key: &[u8]) -> Option<u32> {
        match self.kind {
            SetKind::Hash => self
                .entries
                .iter()
                .find(|(k, _)| k.as_slice() == key)
                .map(|e| e.1),
            SetKind::Lpm => {
                let data = key.get(4..)?;
                self.entries
                    .iter()
                    .filter(|(k, _)| {
                        let len = u32::from_ne_bytes(k[..4].try_into().expect("4 bytes"));
                        same_prefix(&k[4..], data, len)
                    })
                    .max_by_key(|(k, _)| u32::from_ne_bytes(k[..4].try_into().expect("4 bytes")))
                    .map(|e| e.1)
            }
        }
    }
}

/// Whether `a` and `b` agree on their first `bits` bits.
fn same_prefix(a: &[u8], b: &[u8], bits: u32) -> bool {
    let whole = (bits / 8) as usize;
    if a.len() < whole || b.len() < whole || a[..whole] != b[..whole] {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    match (a.get(whole), b.get(whole)) {
        (Some(x), Some(y)) => x & mask == y & mask,
        _ => false,
    }
}

/// The prefixes (value, length) of a `bits`-wide number that cover
/// `low..=high` exactly, fewest first to last.
pub fn prefixes(low: u128, high: u128, bits: u32) -> Vec<(u128, u32)> {
    let mut out = Vec::new();
    let mut at = low;
    loop {
        // The largest aligned block from `at` that stays within `high`.
        let mut size_log = if at == 0 {
            bits
        } else {
            at.trailing_zeros().min(bits)
        };
        while size_log > 0 && block_end(at, size_log) > high {
            size_log -= 1;
        }
        out.push((at, bits - size_log));
        let end = block_end(at, size_log);
        if end >= high {
            return out;
        }
        at = end + 1;
    }
}

/// The last value of the block of `2^size_log` values from `at`.
fn block_end(at: u128, size_log: u32) -> u128 {
    if size_log >= 128 {
        u128::MAX
    } else {
        at | ((1u128 << size_log) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_entity::EntityRef;

    #[test]
    fn ranges_cut_into_the_prefixes_that_cover_them() {
        assert_eq!(prefixes(0, 255, 8), vec![(0, 0)]);
        assert_eq!(prefixes(22, 22, 16), vec![(22, 16)]);
        // 1000-2000: 1000/13 (1000-1007), 1008/12 ... 2000/16.
        let p = prefixes(1000, 2000, 16);
        let mut covered = 0u128;
        let mut next = 1000u128;
        for (v, len) in &p {
            assert_eq!(*v, next, "{p:?}");
            let size = 1u128 << (16 - len);
            assert_eq!(v % size, 0);
            next += size;
            covered += size;
        }
        assert_eq!((next, covered), (2001, 1001));
        assert_eq!(prefixes(0, u128::MAX, 128), vec![(0, 0)]);
        assert_eq!(prefixes(u128::MAX, u128::MAX, 128), vec![(u128::MAX, 128)]);
    }

    #[test]
    fn lpm_lookups_take_the_longest_prefix() {
        let key = |len: u32, data: [u8; 4]| [len.to_ne_bytes(), data].concat();
        let m = SetMap {
            set: SetId::new(0),
            kind: SetKind::Lpm,
            data_bytes: 4,
            entries: vec![(key(8, [10, 0, 0, 0]), 1), (key(24, [10, 1, 2, 0]), 2)],
            max_entries: 64,
        };
        assert_eq!(m.lookup(&key(32, [10, 1, 2, 3])), Some(2));
        assert_eq!(m.lookup(&key(32, [10, 9, 2, 3])), Some(1));
        assert_eq!(m.lookup(&key(32, [11, 1, 2, 3])), None);
    }
}
