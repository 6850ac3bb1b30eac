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
    MIN_SET_ENTRIES, NAMED_SET_ENTRIES, PartLayout, SetKind, SetMap, each_element_key,
};
use crate::error::Error;

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
    /// A stateful set's map number.
    stateful: HashMap<SetId, usize>,
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

/// Room a set that rules add to has without a `size`: the kernel's
/// (`nft_dynset_init` makes a size of 0 `0xffff`).
pub const DYNAMIC_SET_ENTRIES: u32 = 0xffff;

impl Lower<'_> {
    /// The map of a stateful set ([`crate::check::tree::SetState`]) for
    /// the key `parts`, and the key: one map per set, so the program's
    /// lookups and additions meet, whatever field they read.
    pub(super) fn stateful_set(
        &mut self,
        parts: &[Part],
        set: SetId,
        span: pktmatch::Span,
    ) -> Result<(KeyId, usize), Error> {
        let (layout, words) = layout_of(parts).ok_or_else(|| {
            Error::new(
                "nft2bpf keeps this set's elements in a hash map, which this key cannot be looked up in",
                span,
            )
        })?;
        let data_bytes = 4 * words.len() as u32;
        if data_bytes > pktmatch::ir::MAX_KEY_BYTES {
            return Err(Error::new(
                format!("the key is too long for a map ({data_bytes} bytes)"),
                span,
            ));
        }
        let m = match self.sets.stateful.get(&set) {
            Some(&m) => {
                if self.sets.maps[m].layout != layout {
                    return Err(Error::new(
                        "this set is used with keys of different alignments (nft2bpf keeps a set with timeouts or added to from rules in one map: not implemented)",
                        span,
                    ));
                }
                m
            }
            None => {
                let s = &self.rs.sets[set];
                let mut entries = Vec::new();
                let mut timeouts = Vec::new();
                for e in &s.elements {
                    each_element_key(SetKind::Hash, &layout, &e.key, |key| {
                        entries.push((key, 1));
                        timeouts.push(e.timeout.or(s.state.timeout));
                    });
                }
                let max_entries = match s.size {
                    Some(size) => size,
                    None if s.state.dynamic => DYNAMIC_SET_ENTRIES,
                    None => (2 * entries.len() as u32).max(NAMED_SET_ENTRIES),
                };
                self.sets.maps.push(SetMap {
                    set: Some(set),
                    kind: SetKind::Hash,
                    layout: layout.clone(),
                    verdicts: Vec::new(),
                    data_bytes,
                    entries,
                    max_entries,
                    stateful: true,
                    timeouts,
                });
                let m = self.sets.maps.len() - 1;
                self.sets.stateful.insert(set, m);
                m
            }
        };
        self.sets.in_program.insert(m);
        let key = Key {
            parts: words.iter().map(|&w| KeyPart::network(w, 4)).collect(),
        };
        Ok((self.ir.key(key), m))
    }

    /// The lookup of `set` with the key `parts`, when it goes to a map
    /// (a stateful set's always does, or is an error).
    /// A hit runs the element's limit unless `negated` (nft's
    /// `nft_lookup_eval` runs an element's expressions only when it
    /// finds the element and the lookup is not inverted).
    pub(super) fn set_lookup(
        &mut self,
        parts: &[Part],
        set: SetId,
        negated: bool,
        span: pktmatch::Span,
    ) -> Result<Option<SetLookup>, Error> {
        if self.rs.sets[set].state.stateful() {
            let (key, map) = self.stateful_set(parts, set, span)?;
            let action = self.action(Action::LookupElement {
                map: map as u32,
                limits: !negated,
            });
            return Ok(Some(SetLookup {
                key,
                action,
                verdicts: Vec::new(),
            }));
        }
        Ok(self.plain_set_lookup(parts, set))
    }

    /// [`Lower::set_lookup`] of a set without state.
    fn plain_set_lookup(&mut self, parts: &[Part], set: SetId) -> Option<SetLookup> {
        let s = &self.rs.sets[set];
        if s.name.is_none() && s.elements.len() <= INLINE_ELEMENTS {
            return None;
        }
        let (layout, words) = layout_of(parts)?;
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
                // Only anonymous sets share maps: a named set's entries
                // (a million, maybe) are neither copied nor hashed.
                let shared = s
                    .name
                    .is_none()
                    .then(|| (layout.clone(), kind, entries.clone()));
                match shared.as_ref().and_then(|c| self.sets.anonymous.get(c)) {
                    Some(&m) => m,
                    _ => {
                        let max_entries = match (&s.name, s.size) {
                            (None, _) => (2 * entries.len() as u32).max(MIN_SET_ENTRIES),
                            (Some(_), Some(size)) => size,
                            (Some(_), None) => (2 * entries.len() as u32).max(NAMED_SET_ENTRIES),
                        };
                        self.sets.maps.push(SetMap {
                            set: Some(set),
                            kind,
                            layout: layout.clone(),
                            verdicts: verdicts.clone(),
                            data_bytes,
                            entries,
                            max_entries,
                            stateful: false,
                            timeouts: Vec::new(),
                        });
                        let m = self.sets.maps.len() - 1;
                        match shared {
                            Some(contents) => self.sets.anonymous.insert(contents, m),
                            None => self.sets.named.insert((set, layout), m),
                        };
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

/// The layout of a key of `parts` and the words it is made of, when
/// every part is words of the packet.
pub(super) fn layout_of(parts: &[Part]) -> Option<(Layout, Vec<pktmatch::ir::Val>)> {
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
    Some((layout, words))
}

/// The map entries of a set's elements: [`each_element_key`] of each, with
/// the element's value (its verdict's index in `verdicts`; 1 in a set).
fn entries(
    s: &crate::check::tree::Set,
    layout: &[PartLayout],
    kind: SetKind,
    verdicts: &[Verdict],
) -> Vec<(Vec<u8>, u32)> {
    let mut out = Vec::with_capacity(s.elements.len());
    for e in &s.elements {
        let value = match e.verdict {
            Some(v) => verdicts.iter().position(|x| *x == v).unwrap_or(0) as u32,
            None => 1,
        };
        each_element_key(kind, layout, &e.key, |key| out.push((key, value)));
    }
    out
}
