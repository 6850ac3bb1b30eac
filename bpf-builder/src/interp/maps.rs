//! Maps inside the interpreter: arrays, hashes and LPM tries with the
//! kernel's update rules and error numbers, one CPU (per-CPU maps hold
//! one value).

use std::collections::HashMap;

use crate::map::{F_RDONLY_PROG, InitValue, MapSpec, MapType};

/// `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST`: the update flags.
pub mod update {
    /// Create or replace.
    pub const ANY: u64 = 0;
    /// Create only.
    pub const NOEXIST: u64 = 1;
    /// Replace only.
    pub const EXIST: u64 = 2;
}

/// Largest map the interpreter allocates (values of arrays are allocated
/// up front).
const MAX_BYTES: u64 = 1 << 28;

/// The kinds of maps the interpreter implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InterpMapKind {
    /// Array (also per-CPU arrays, with one CPU): every index exists.
    Array,
    /// Hash (also per-CPU hashes).
    Hash,
    /// LRU hash: when full, an update evicts the least recently used entry.
    LruHash,
    /// Redirect targets by index (devmap, cpumap, xskmap): an index exists
    /// once set.
    RedirectArray,
    /// Redirect targets by key (devmap hash).
    RedirectHash,
    /// Longest-prefix match: a key is a `u32` prefix length in host
    /// order, then the data; a lookup finds the entry of the longest
    /// prefix (no longer than the key's) that the key's data starts with,
    /// and nothing for a key longer than the data.
    LpmTrie,
}

/// Why a map operation failed, with the kernel's errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MapOpError {
    /// Key or value of the wrong size.
    #[error("key or value of the wrong size")]
    Size,
    /// `BPF_NOEXIST` on an existing key (EEXIST).
    #[error("the key exists (EEXIST)")]
    Exists,
    /// No such key (ENOENT).
    #[error("no such key (ENOENT)")]
    NotFound,
    /// The map is full or the index is past the end (E2BIG).
    #[error("the map is full or the index is out of range (E2BIG)")]
    Full,
    /// An LPM trie is full (ENOSPC).
    #[error("the trie is full (ENOSPC)")]
    NoSpace,
    /// Bad flags, or deleting from an array (EINVAL).
    #[error("invalid flags or operation (EINVAL)")]
    Invalid,
}

impl MapOpError {
    /// The positive errno.
    pub fn errno(self) -> i32 {
        match self {
            MapOpError::Size | MapOpError::Invalid => 22,
            MapOpError::Exists => 17,
            MapOpError::NotFound => 2,
            MapOpError::Full => 7,
            MapOpError::NoSpace => 28,
        }
    }
}

/// Why a map cannot be created in the interpreter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpMapError {
    /// A kind the interpreter does not implement.
    #[error("map `{0}`: {1} maps are not supported by the interpreter")]
    Unsupported(String, &'static str),
    /// Sizes that do not make a map.
    #[error("map `{0}`: {1}")]
    BadSpec(String, &'static str),
    /// An initial entry the map refuses.
    #[error("map `{0}`: initial entry refused: {1}")]
    Contents(String, MapOpError),
}

/// A map in the interpreter.
#[derive(Clone, Debug)]
pub struct InterpMap {
    kind: InterpMapKind,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    read_only: bool,
    /// Values by element: array index or hash slot.
    values: Vec<u8>,
    /// Whether each element exists (hashes, redirect arrays).
    present: Vec<bool>,
    /// Hashes: key -> slot.
    index: HashMap<Vec<u8>, u32>,
    /// Hashes: slot -> key.
    slot_keys: Vec<Vec<u8>>,
    /// Hashes: slots freed by deletions.
    free: Vec<u32>,
    /// LRU hashes: last use of each slot.
    last_use: Vec<u64>,
    clock: u64,
}

impl InterpMap {
    /// A map of `kind` with the given sizes.
    pub fn new(
        kind: InterpMapKind,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> Result<InterpMap, InterpMapError> {
        let bad = |why| Err(InterpMapError::BadSpec(String::new(), why));
        if key_size == 0 || value_size == 0 || max_entries == 0 {
            return bad("key size, value size and max entries must be non-zero");
        }
        let indexed = matches!(kind, InterpMapKind::Array | InterpMapKind::RedirectArray);
        let four = indexed || kind == InterpMapKind::RedirectHash;
        if four && key_size != 4 {
            return bad("arrays and redirect maps have 4-byte keys");
        }
        if kind == InterpMapKind::LpmTrie && !(5..=4 + 256).contains(&key_size) {
            return bad("LPM trie keys are a u32 prefix length and 1 to 256 data bytes");
        }
        if u64::from(value_size) * u64::from(max_entries) > MAX_BYTES {
            return bad("larger than the interpreter allocates (256 MiB)");
        }
        let (values, present) = if indexed {
            let n = max_entries as usize;
            (
                vec![0; n * value_size as usize],
                vec![kind == InterpMapKind::Array; n],
            )
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(InterpMap {
            kind,
            key_size,
            value_size,
            max_entries,
            read_only: false,
            values,
            present,
            index: HashMap::new(),
            slot_keys: Vec::new(),
            free: Vec::new(),
            last_use: Vec::new(),
            clock: 0,
        })
    }

    /// An array of `max_entries` values of `value_size` bytes, all zero.
    pub fn array(value_size: u32, max_entries: u32) -> Result<InterpMap, InterpMapError> {
        Self::new(InterpMapKind::Array, 4, value_size, max_entries)
    }

    /// An empty hash map.
    pub fn hash(
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> Result<InterpMap, InterpMapError> {
        Self::new(InterpMapKind::Hash, key_size, value_size, max_entries)
    }

    /// The interpreter's version of a map specification, with its initial
    /// contents (byte values only).
    pub fn from_spec(spec: &MapSpec) -> Result<InterpMap, InterpMapError> {
        let kind = match spec.map_type {
            MapType::Array | MapType::PerCpuArray => InterpMapKind::Array,
            MapType::Hash | MapType::PerCpuHash => InterpMapKind::Hash,
            MapType::LruHash | MapType::LruPerCpuHash => InterpMapKind::LruHash,
            MapType::DevMap | MapType::CpuMap => InterpMapKind::RedirectArray,
            MapType::DevMapHash => InterpMapKind::RedirectHash,
            MapType::LpmTrie => InterpMapKind::LpmTrie,
            other => {
                return Err(InterpMapError::Unsupported(spec.name.clone(), other.name()));
            }
        };
        let mut map = Self::new(kind, spec.key_size, spec.value_size, spec.max_entries).map_err(
            |e| match e {
                InterpMapError::BadSpec(_, why) => InterpMapError::BadSpec(spec.name.clone(), why),
                other => other,
            },
        )?;
        map.read_only = spec.flags & F_RDONLY_PROG != 0;
        for (key, value) in &spec.contents {
            let InitValue::Bytes(bytes) = value else {
                return Err(InterpMapError::Unsupported(
                    spec.name.clone(),
                    "program or map valued",
                ));
            };
            map.update(key, bytes, update::ANY)
                .map_err(|e| InterpMapError::Contents(spec.name.clone(), e))?;
        }
        Ok(map)
    }

    /// The kind of map.
    pub fn kind(&self) -> InterpMapKind {
        self.kind
    }

    /// Key size in bytes.
    pub fn key_size(&self) -> u32 {
        self.key_size
    }

    /// Value size in bytes.
    pub fn value_size(&self) -> u32 {
        self.value_size
    }

    /// Whether programs may only read the map (`BPF_F_RDONLY_PROG`).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Makes the map read-only (or writable) for programs.
    pub fn set_read_only(&mut self, read_only: bool) {
        self.read_only = read_only;
    }

    /// Whether this is a plain array (whose values `ld_imm64` may point into).
    pub(crate) fn kind_is_array(&self) -> bool {
        self.kind == InterpMapKind::Array
    }

    fn is_indexed(&self) -> bool {
        matches!(
            self.kind,
            InterpMapKind::Array | InterpMapKind::RedirectArray
        )
    }

    /// The element holding `key`, if it exists (marks LRU use).
    pub(crate) fn find(&mut self, key: &[u8]) -> Option<u32> {
        let elem = self.peek(key)?;
        if self.kind == InterpMapKind::LruHash {
            self.clock += 1;
            self.last_use[elem as usize] = self.clock;
        }
        Some(elem)
    }

    /// The element holding `key`, without marking use (in a trie, the
    /// longest prefix that holds it).
    fn peek(&self, key: &[u8]) -> Option<u32> {
        if key.len() != self.key_size as usize {
            return None;
        }
        if self.is_indexed() {
            let i = u32::from_le_bytes(key.try_into().ok()?);
            return (i < self.max_entries && self.present[i as usize]).then_some(i);
        }
        if self.kind == InterpMapKind::LpmTrie {
            // A key longer than the data finds nothing, as in the kernel.
            let len = u32::from_ne_bytes(key[..4].try_into().ok()?);
            if len > self.max_prefix() {
                return None;
            }
            return (0..=len)
                .rev()
                .find_map(|l| self.index.get(&lpm_masked(key, l)).copied());
        }
        self.index.get(key).copied()
    }

    /// An LPM trie's longest prefix: the data's bits.
    fn max_prefix(&self) -> u32 {
        8 * (self.key_size - 4)
    }

    /// `key` as the map stores it: in an LPM trie, the prefix's bits (the
    /// rest cleared, so that two keys of one prefix are one entry); a
    /// prefix longer than the data is EINVAL, as in the kernel.
    fn stored_key(&self, key: &[u8]) -> Result<Vec<u8>, MapOpError> {
        if self.kind != InterpMapKind::LpmTrie {
            return Ok(key.to_vec());
        }
        let len = u32::from_ne_bytes(key[..4].try_into().map_err(|_| MapOpError::Size)?);
        if len > self.max_prefix() {
            return Err(MapOpError::Invalid);
        }
        Ok(lpm_masked(key, len))
    }

    /// The value bytes of element `elem`.
    pub(crate) fn elem(&self, elem: u32) -> &[u8] {
        let n = self.value_size as usize;
        let at = elem as usize * n;
        &self.values[at..at + n]
    }

    /// The value bytes of element `elem`, to write.
    pub(crate) fn elem_mut(&mut self, elem: u32) -> &mut [u8] {
        let n = self.value_size as usize;
        let at = elem as usize * n;
        &mut self.values[at..at + n]
    }

    /// Whether `elem` names storage (pointers to deleted hash elements
    /// stay valid, as in the kernel's preallocated hashes).
    pub(crate) fn has_elem(&self, elem: u32) -> bool {
        (elem as usize + 1) * self.value_size as usize <= self.values.len()
    }

    /// The value of `key`.
    pub fn lookup(&self, key: &[u8]) -> Option<&[u8]> {
        self.peek(key).map(|e| self.elem(e))
    }

    /// Creates or replaces the value of `key` (`flags`: [`update`]).
    pub fn update(&mut self, key: &[u8], value: &[u8], flags: u64) -> Result<(), MapOpError> {
        if key.len() != self.key_size as usize || value.len() != self.value_size as usize {
            return Err(MapOpError::Size);
        }
        if flags > update::EXIST {
            return Err(MapOpError::Invalid);
        }
        if self.is_indexed() {
            let i = u32::from_le_bytes(key.try_into().map_err(|_| MapOpError::Size)?);
            if i >= self.max_entries {
                return Err(MapOpError::Full);
            }
            let exists = self.present[i as usize];
            match flags {
                update::NOEXIST if exists || self.kind == InterpMapKind::Array => {
                    return Err(MapOpError::Exists);
                }
                update::EXIST if !exists => return Err(MapOpError::NotFound),
                _ => {}
            }
            self.present[i as usize] = true;
            self.elem_mut(i).copy_from_slice(value);
            return Ok(());
        }
        let key = &self.stored_key(key)?[..];
        if let Some(slot) = self.index.get(key).copied() {
            if flags == update::NOEXIST {
                return Err(MapOpError::Exists);
            }
            self.elem_mut(slot).copy_from_slice(value);
            self.touch(slot);
            return Ok(());
        }
        if flags == update::EXIST {
            return Err(MapOpError::NotFound);
        }
        if self.index.len() >= self.max_entries as usize {
            match self.kind {
                InterpMapKind::LruHash => self.evict(),
                InterpMapKind::LpmTrie => return Err(MapOpError::NoSpace),
                _ => return Err(MapOpError::Full),
            }
        }
        let slot = match self.free.pop() {
            Some(s) => s,
            None => {
                let s = self.slot_keys.len() as u32;
                self.slot_keys.push(Vec::new());
                self.present.push(false);
                self.last_use.push(0);
                self.values
                    .resize(self.values.len() + self.value_size as usize, 0);
                s
            }
        };
        self.slot_keys[slot as usize] = key.to_vec();
        self.present[slot as usize] = true;
        self.index.insert(key.to_vec(), slot);
        self.elem_mut(slot).copy_from_slice(value);
        self.touch(slot);
        Ok(())
    }

    fn touch(&mut self, slot: u32) {
        self.clock += 1;
        self.last_use[slot as usize] = self.clock;
    }

    /// Removes the least recently used entry of an LRU hash.
    fn evict(&mut self) {
        let victim = (0..self.slot_keys.len())
            .filter(|&s| self.present[s])
            .min_by_key(|&s| self.last_use[s]);
        if let Some(s) = victim {
            let key = std::mem::take(&mut self.slot_keys[s]);
            let _ = self.remove(&key);
        }
    }

    fn remove(&mut self, key: &[u8]) -> Result<(), MapOpError> {
        let slot = self.index.remove(key).ok_or(MapOpError::NotFound)?;
        self.present[slot as usize] = false;
        self.free.push(slot);
        Ok(())
    }

    /// Deletes `key` (arrays refuse with EINVAL).
    pub fn delete(&mut self, key: &[u8]) -> Result<(), MapOpError> {
        if key.len() != self.key_size as usize {
            return Err(MapOpError::Size);
        }
        match self.kind {
            InterpMapKind::Array => Err(MapOpError::Invalid),
            InterpMapKind::RedirectArray => {
                let i = u32::from_le_bytes(key.try_into().map_err(|_| MapOpError::Size)?);
                if i >= self.max_entries {
                    return Err(MapOpError::Invalid);
                }
                self.present[i as usize] = false;
                Ok(())
            }
            _ => {
                let key = self.stored_key(key)?;
                self.remove(&key)
            }
        }
    }

    /// Number of existing entries.
    pub fn len(&self) -> usize {
        if self.is_indexed() {
            self.present.iter().filter(|p| **p).count()
        } else {
            self.index.len()
        }
    }

    /// Whether no entry exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All entries `(key, value)`, arrays by index, hashes and tries in no
    /// order (a trie's keys with the bits past their prefix cleared).
    pub fn entries(&self) -> Vec<(Vec<u8>, &[u8])> {
        if self.is_indexed() {
            (0..self.max_entries)
                .filter(|&i| self.present[i as usize])
                .map(|i| (i.to_le_bytes().to_vec(), self.elem(i)))
                .collect()
        } else {
            self.index
                .iter()
                .map(|(k, &s)| (k.clone(), self.elem(s)))
                .collect()
        }
    }
}

/// `key` (an LPM trie's: prefix length, data) with prefix length `len`
/// and the data's bits past it cleared.
fn lpm_masked(key: &[u8], len: u32) -> Vec<u8> {
    let mut out = key.to_vec();
    out[..4].copy_from_slice(&len.to_ne_bytes());
    for (i, b) in out[4..].iter_mut().enumerate() {
        let kept = len.saturating_sub(8 * i as u32).min(8);
        *b &= !(0xffu16 >> kept) as u8;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_follow_kernel_update_rules() {
        let mut a = InterpMap::array(8, 2).unwrap();
        let k0 = 0u32.to_le_bytes();
        assert_eq!(a.lookup(&k0), Some(&[0u8; 8][..]));
        assert_eq!(
            a.update(&k0, &[1; 8], update::NOEXIST),
            Err(MapOpError::Exists)
        );
        assert_eq!(
            a.update(&2u32.to_le_bytes(), &[1; 8], 0),
            Err(MapOpError::Full)
        );
        assert_eq!(a.delete(&k0), Err(MapOpError::Invalid));
        a.update(&k0, &[7; 8], update::EXIST).unwrap();
        assert_eq!(a.lookup(&k0), Some(&[7u8; 8][..]));
    }

    #[test]
    fn hashes_fill_reuse_and_evict() {
        let mut h = InterpMap::hash(2, 1, 2).unwrap();
        h.update(b"aa", &[1], 0).unwrap();
        h.update(b"bb", &[2], 0).unwrap();
        assert_eq!(h.update(b"cc", &[3], 0), Err(MapOpError::Full));
        assert_eq!(
            h.update(b"cc", &[3], update::EXIST),
            Err(MapOpError::NotFound)
        );
        h.delete(b"aa").unwrap();
        assert_eq!(h.delete(b"aa"), Err(MapOpError::NotFound));
        h.update(b"cc", &[3], update::NOEXIST).unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h.lookup(b"cc"), Some(&[3u8][..]));

        let mut l = InterpMap::new(InterpMapKind::LruHash, 1, 1, 2).unwrap();
        l.update(b"a", &[1], 0).unwrap();
        l.update(b"b", &[2], 0).unwrap();
        l.find(b"a");
        l.update(b"c", &[3], 0).unwrap();
        assert_eq!(l.lookup(b"b"), None, "b was least recently used");
        assert_eq!(l.lookup(b"a"), Some(&[1u8][..]));
    }
}
