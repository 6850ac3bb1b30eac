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

use crate::check::tree::{ElemKey, SetId, Verdict};

/// The kind of a set's map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetKind {
    /// `BPF_MAP_TYPE_HASH`: exact keys.
    Hash,
    /// `BPF_MAP_TYPE_LPM_TRIE`: prefixes of one part.
    Lpm,
}

impl SetKind {
    /// `hash` or `lpm`, as descriptions name it.
    pub fn name(self) -> &'static str {
        match self {
            SetKind::Hash => "hash",
            SetKind::Lpm => "lpm",
        }
    }

    /// The kind [`SetKind::name`] names.
    pub fn named(name: &str) -> Option<SetKind> {
        match name {
            "hash" => Some(SetKind::Hash),
            "lpm" => Some(SetKind::Lpm),
            _ => None,
        }
    }
}

/// Where one part of a key is in the key: the 32-bit words it takes
/// (bits of the value in each, most significant first), how far left
/// the value is shifted in them, and its width. The words are those the
/// program loads for the field the set is looked up with, so one set
/// looked up with two fields of different alignments has two maps.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartLayout {
    /// Bits of the value in each word, most significant first.
    pub widths: Vec<u32>,
    /// Where the value's lowest bit is in the last word.
    pub shift: u32,
    /// The value's width in bits.
    pub bits: u32,
}

impl PartLayout {
    /// Appends the part's bytes in a key to `out`: its words in network
    /// order.
    fn write_bytes(&self, v: u128, out: &mut Vec<u8>) {
        for word in crate::compile::lower::words_of(v << self.shift, &self.widths) {
            out.extend_from_slice(&word.to_be_bytes());
        }
    }

    /// The value the part's bytes hold (the inverse of `write_bytes`).
    fn value(&self, bytes: &[u8]) -> u128 {
        let mut v = 0u128;
        for (w, c) in self.widths.iter().zip(bytes.chunks(4)) {
            let word = u32::from_be_bytes(c.try_into().unwrap_or([0; 4]));
            let w = (*w).min(32);
            let mask = if w == 32 { u32::MAX } else { (1u32 << w) - 1 };
            v = (v << w) | u128::from(word & mask);
        }
        v >> self.shift
    }

    /// Bytes the part takes in a key.
    pub fn key_bytes(&self) -> usize {
        4 * self.widths.len()
    }

    /// Bits of the words above the value (an LPM prefix starts there).
    fn pad(&self) -> u32 {
        32 * self.widths.len() as u32 - self.bits - self.shift
    }
}

/// The map keys of an element whose key parts are `key` (one per part
/// of `layout`): one key for a hash map (each part's exact value; a
/// range's low end, as hash sets have no ranges); for an LPM trie, one
/// key per prefix of the last part's range ([`prefixes`]) after the
/// other parts' exact values (a set's trie has one part; a
/// classifier's, its exact fields first), each led by its prefix length
/// in host order. Lowering writes a set's first
/// elements with it and `nft2bpf::deploy::sets` the elements added to a
/// running program's map: the same bytes either way.
pub fn element_keys(kind: SetKind, layout: &[PartLayout], key: &[ElemKey]) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    each_element_key(kind, layout, key, |k| keys.push(k));
    keys
}

/// [`element_keys`] given one by one to `each`, without the list (a
/// set of a million elements is a million lists fewer).
pub fn each_element_key(
    kind: SetKind,
    layout: &[PartLayout],
    key: &[ElemKey],
    mut each: impl FnMut(Vec<u8>),
) {
    match kind {
        SetKind::Hash => {
            let mut bytes = Vec::with_capacity(layout.iter().map(PartLayout::key_bytes).sum());
            for (k, part) in key.iter().zip(layout) {
                part.write_bytes(k.bounds().0, &mut bytes);
            }
            each(bytes);
        }
        SetKind::Lpm => {
            let (Some((part, exact_parts)), Some((k, exact))) =
                (layout.split_last(), key.split_last())
            else {
                return;
            };
            // Leading parts (a classifier's exact fields) whole: every
            // bit of their words is in the prefix.
            let mut lead = Vec::new();
            for (k, p) in exact.iter().zip(exact_parts) {
                p.write_bytes(k.bounds().0, &mut lead);
            }
            let lead_bits = 8 * lead.len() as u32;
            let (low, high) = k.bounds();
            for (v, len) in prefixes(low, high, part.bits) {
                let mut bytes = Vec::with_capacity(4 + lead.len() + part.key_bytes());
                bytes.extend_from_slice(&(lead_bits + part.pad() + len).to_ne_bytes());
                bytes.extend_from_slice(&lead);
                part.write_bytes(v, &mut bytes);
                each(bytes);
            }
        }
    }
}

/// What a map key holds, [`element_keys`]'s inverse: each part's value
/// for a hash map; for an LPM trie, the one part's prefix as the range
/// it covers. `None` when the key's length does not fit the layout.
pub fn key_element(kind: SetKind, layout: &[PartLayout], key: &[u8]) -> Option<Vec<ElemKey>> {
    match kind {
        SetKind::Hash => {
            let mut out = Vec::new();
            let mut at = 0;
            for part in layout {
                let bytes = key.get(at..at + part.key_bytes())?;
                out.push(ElemKey::Value(part.value(bytes)));
                at += part.key_bytes();
            }
            (at == key.len()).then_some(out)
        }
        SetKind::Lpm => {
            let part = layout.first()?;
            let len = u32::from_ne_bytes(key.get(..4)?.try_into().ok()?);
            let data = key.get(4..)?;
            if data.len() != part.key_bytes() {
                return None;
            }
            let len = len.checked_sub(part.pad())?.min(part.bits);
            let low = part.value(data);
            let free = part.bits - len;
            let high = if free >= 128 {
                u128::MAX
            } else {
                low | ((1u128 << free) - 1)
            };
            Some(vec![if low == high {
                ElemKey::Value(low)
            } else {
                ElemKey::Range(low, high)
            }])
        }
    }
}

/// A set's map: what the program looks up and what the map holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetMap {
    /// The set; none for a classifier's map (rules folded into one
    /// lookup, whose value is the first matching rule's index).
    pub set: Option<SetId>,
    /// Its kind.
    pub kind: SetKind,
    /// Where each part of the key is in the map's keys.
    pub layout: Vec<PartLayout>,
    /// For a verdict map, the verdicts the program branches to, by the
    /// map's value: the only ones an element may have, since the program
    /// was built with no other (empty for a set).
    pub verdicts: Vec<Verdict>,
    /// Bytes of a key's data (after an LPM key's prefix length).
    pub data_bytes: u32,
    /// The entries: key bytes (an LPM key's prefix length included) and
    /// value (for a verdict map, the index of the element's verdict in
    /// the map's verdict list; 1 for a set).
    pub entries: Vec<(Vec<u8>, u32)>,
    /// Room for this many entries.
    pub max_entries: u32,
    /// The values are [`ElemValue`](super::dynset::ElemValue)s (a set
    /// with timeouts, or one that rules add to), not a `u32`.
    pub stateful: bool,
    /// In a stateful set, each entry's timeout in milliseconds (the
    /// element's own, else the set's), counted from when the map is
    /// filled.
    pub timeouts: Vec<Option<u64>>,
}

/// Room an anonymous set's map has: twice its elements, at least this
/// many.
pub const MIN_SET_ENTRIES: u32 = 64;

/// Room a named set's map has when its declaration gives no `size`, so
/// that elements can be added while it runs: twice its entries, at least
/// this many. With `size N` the map holds N entries.
pub const NAMED_SET_ENTRIES: u32 = 1024;

impl SetMap {
    /// The map's name: `nft_set` and its number.
    pub fn map_name(index: usize) -> String {
        format!("nft_set{index}")
    }

    /// The map's description, for an object.
    pub fn spec(&self, index: usize) -> MapSpec {
        let name = SetMap::map_name(index);
        if self.stateful {
            return super::dynset::map(&name, self.data_bytes, self.max_entries);
        }
        match self.kind {
            SetKind::Hash => MapSpec::hash(name, self.data_bytes, 4, self.max_entries),
            SetKind::Lpm => MapSpec::lpm_trie(name, self.data_bytes, 4, self.max_entries),
        }
    }

    /// In a deployed program, the one-entry array of maps the program
    /// finds the set's map in (slot 0), named as the set's map: user
    /// space replaces the whole set at once by putting another map of
    /// the same shape in the slot (`nft2bpf::deploy::sets::apply`).
    pub fn swappable_spec(&self, index: usize) -> MapSpec {
        MapSpec::array_of_maps(SetMap::map_name(index), 1, self.inner_spec(index))
    }

    /// The map [`SetMap::swappable_spec`] holds: [`SetMap::spec`], named
    /// `nft_set` and the number and `_in`.
    pub fn inner_spec(&self, index: usize) -> MapSpec {
        let mut spec = self.spec(index);
        spec.name = format!("{}_in", SetMap::map_name(index));
        spec
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
                let key_len = u32::from_ne_bytes(key.get(..4)?.try_into().ok()?);
                let data = key.get(4..)?;
                self.entries
                    .iter()
                    .filter(|(k, _)| {
                        let len = u32::from_ne_bytes(k[..4].try_into().expect("4 bytes"));
                        len <= key_len && same_prefix(&k[4..], data, len)
                    })
                    .max_by_key(|(k, _)| u32::from_ne_bytes(k[..4].try_into().expect("4 bytes")))
                    .map(|e| e.1)
            }
        }
    }
}

/// Whether `a` and `b` agree on their first `bits` bits.
pub(crate) fn same_prefix(a: &[u8], b: &[u8], bits: u32) -> bool {
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
    fn keys_decode_to_the_elements_they_encode() {
        // `tcp dport`-like: 16 bits in the low half of a word.
        let port = PartLayout {
            widths: vec![32],
            shift: 0,
            bits: 16,
        };
        let addr = PartLayout {
            widths: vec![32],
            shift: 0,
            bits: 32,
        };
        let layout = [addr.clone(), port.clone()];
        let key = [ElemKey::Value(0x0a00_0001), ElemKey::Value(22)];
        let keys = element_keys(SetKind::Hash, &layout, &key);
        assert_eq!(keys, vec![vec![10, 0, 0, 1, 0, 0, 0, 22]]);
        assert_eq!(
            key_element(SetKind::Hash, &layout, &keys[0]),
            Some(key.to_vec())
        );
        // A /24 in an LPM trie: one prefix, length 24.
        let net = [ElemKey::Range(0x0a01_0200, 0x0a01_02ff)];
        let keys = element_keys(SetKind::Lpm, std::slice::from_ref(&addr), &net);
        assert_eq!(keys.len(), 1);
        assert_eq!(&keys[0][..4], &24u32.to_ne_bytes());
        assert_eq!(
            key_element(SetKind::Lpm, std::slice::from_ref(&addr), &keys[0]),
            Some(net.to_vec())
        );
        // A port in the high half of its word: the prefix starts at bit 0.
        let high = PartLayout {
            widths: vec![32],
            shift: 16,
            bits: 16,
        };
        let keys = element_keys(
            SetKind::Lpm,
            std::slice::from_ref(&high),
            &[ElemKey::Value(80)],
        );
        assert_eq!(keys, vec![[16u32.to_ne_bytes(), [0, 80, 0, 0]].concat()]);
        assert_eq!(
            key_element(SetKind::Lpm, std::slice::from_ref(&high), &keys[0]),
            Some(vec![ElemKey::Value(80)])
        );
    }

    #[test]
    fn lpm_lookups_take_the_longest_prefix() {
        let key = |len: u32, data: [u8; 4]| [len.to_ne_bytes(), data].concat();
        let m = SetMap {
            set: Some(SetId::new(0)),
            kind: SetKind::Lpm,
            layout: vec![PartLayout {
                widths: vec![32],
                shift: 0,
                bits: 32,
            }],
            verdicts: Vec::new(),
            data_bytes: 4,
            entries: vec![(key(8, [10, 0, 0, 0]), 1), (key(24, [10, 1, 2, 0]), 2)],
            max_entries: 64,
            stateful: false,
            timeouts: Vec::new(),
        };
        assert_eq!(m.lookup(&key(32, [10, 1, 2, 3])), Some(2));
        assert_eq!(m.lookup(&key(32, [10, 9, 2, 3])), Some(1));
        assert_eq!(m.lookup(&key(32, [11, 1, 2, 3])), None);
        // A key's length bounds the entries it finds.
        assert_eq!(m.lookup(&key(16, [10, 1, 2, 3])), Some(1));
        assert_eq!(m.lookup(&key(7, [10, 1, 2, 3])), None);
    }
}
