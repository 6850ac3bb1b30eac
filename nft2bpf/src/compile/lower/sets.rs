//! Sets and verdict maps looked up in BPF maps ([`crate::compile::sets`]):
//! the key's words written by a `Cond::Lookup`, the map's entries from
//! the set's elements. A named set always has a map (so that a running
//! firewall can change it); an anonymous one when it has more than
//! [`INLINE_ELEMENTS`] elements.

use std::collections::HashMap;

use pktmatch::ir::{Key, KeyId, KeyPart};

use super::Lower;
use super::test::Part;
use crate::check::tree::{ElemKey, SetId, Verdict};
use crate::compile::actions::Action;
use crate::compile::sets::{
    MIN_SET_ENTRIES, NAMED_SET_ENTRIES, PartLayout, SetKind, SetMap, element_keys,
};

/// Anonymous sets of at most this many elements are compare chains: a
/// few tests cost less than a map lookup.
pub const INLINE_ELEMENTS: usize = 4;

/// A set's key layout: each part's words, shift and bits.
type Layout = Vec<PartLayout>;

/// What makes two anonymous sets' maps the same: layout, kind, entries.
type Contents = (Layout, SetKind, Vec<(Vec<u8>, u32)>);

/// The maps of the sets lowered so far.
#[derive(Default)]
pub(super) struct SetMaps {
    /// By map number.
    pub(super) maps: Vec<SetMap>,
    /// A named set's map number by the set and key layout.
    named: HashMap<(SetId, Layout), usize>,
    /// An anonymous set's map number by its layout and entries: equal
    /// anonymous sets share a map (a program may use at most 64).
    anonymous: HashMap<Contents, usize>,
    /// The maps the program being built uses, for its cut.
    pub(super) in_program: std::collections::HashSet<usize>,
}

/// How a set is looked up.
pub(super) struct SetLookup {
    /// The key.
    pub(super) key: KeyId,
    /// The lookup's action.
    pub(super) action: u32,
    /// A verdict map's verdicts, by the map's value.
    pub(super) verdicts: Vec<Verdict>,
}

impl Lower<'_> {
    /// The lookup of `set` with the key `parts`, when it goes to a map.
    pub(super) fn set_lookup(&mut self, parts: &[Part], set: SetId) -> Option<SetLookup> {
        let s = &self.rs.sets[set];
        if s.name.is_none() && s.elements.len() <= INLINE_ELEMENTS {
            return None;
        }
        let mut layout = Layout::new();
        let mut words = Vec::new();
        for p in parts {
            let Part::Words {
                words: w,
                widths,
                shift,
                bits,
                ..
            } = p
            else {
                return None;
            };
            layout.push(PartLayout {
                widths: widths.clone(),
                shift: *shift,
                bits: *bits,
            });
            words.extend(w.iter().copied());
        }
        let exact = s
            .elements
            .iter()
            .all(|e| e.key.iter().all(|k| matches!(k, ElemKey::Value(_))));
        // A named interval set of one part is a trie even while its
        // elements are single values: ranges may be added while it runs.
        let named_interval = s.name.is_some() && s.interval && parts.len() == 1;
        let kind = match (exact && !named_interval, parts.len()) {
            (true, _) => SetKind::Hash,
            (false, 1) => SetKind::Lpm,
            // Ranges in a concatenation: a compare chain.
            (false, _) => return None,
        };
        let data_bytes = 4 * words.len() as u32;
        let lpm_header = if kind == SetKind::Lpm { 4 } else { 0 };
        if data_bytes + lpm_header > pktmatch::ir::MAX_KEY_BYTES {
            return None;
        }
        let mut verdicts: Vec<Verdict> = Vec::new();
        for e in &s.elements {
            if let Some(v) = e.verdict
                && !verdicts.contains(&v)
            {
                verdicts.push(v);
            }
        }
        let map = match self.sets.named.get(&(set, layout.clone())) {
            Some(&m) => m,
            None => {
                let entries = entries(s, &layout, kind, &verdicts);
                let shared = (layout.clone(), kind, entries.clone());
                match self.sets.anonymous.get(&shared) {
                    Some(&m) if s.name.is_none() => m,
                    _ => {
                        let max_entries = match (&s.name, s.size) {
                            (None, _) => (2 * entries.len() as u32).max(MIN_SET_ENTRIES),
                            (Some(_), Some(size)) => size,
                            (Some(_), None) => (2 * entries.len() as u32).max(NAMED_SET_ENTRIES),
                        };
                        self.sets.maps.push(SetMap {
                            set,
                            kind,
                            layout: layout.clone(),
                            verdicts: verdicts.clone(),
                            data_bytes,
                            entries,
                            max_entries,
                        });
                        let m = self.sets.maps.len() - 1;
                        if s.name.is_some() {
                            self.sets.named.insert((set, layout), m);
                        } else {
                            self.sets.anonymous.insert(shared, m);
                        }
                        m
                    }
                }
            }
        };
        self.sets.in_program.insert(map);
        let mut key = Key::default();
        if kind == SetKind::Lpm {
            let full = self.k(8 * data_bytes);
            key.parts.push(KeyPart::host(full, 4));
        }
        key.parts
            .extend(words.iter().map(|&w| KeyPart::network(w, 4)));
        let key = self.ir.key(key);
        let action = self.action(Action::Lookup { map: map as u32 });
        Some(SetLookup {
            key,
            action,
            verdicts,
        })
    }
}

/// The map entries of a set's elements: [`element_keys`] of each, with
/// the element's value (its verdict's index in `verdicts`; 1 in a set).
fn entries(
    s: &crate::check::tree::Set,
    layout: &[PartLayout],
    kind: SetKind,
    verdicts: &[Verdict],
) -> Vec<(Vec<u8>, u32)> {
    let mut out = Vec::new();
    for e in &s.elements {
        let value = match e.verdict {
            Some(v) => verdicts.iter().position(|x| *x == v).unwrap_or(0) as u32,
            None => 1,
        };
        for key in element_keys(kind, layout, &e.key) {
            out.push((key, value));
        }
    }
    out
}
