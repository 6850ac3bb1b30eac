//! Classifiers: a run of consecutive rules of one shape (the same fields
//! compared for equality with constants, the same statements, an
//! `accept` or `drop`) becomes one hash-map lookup keyed by the fields'
//! values, whatever the number of rules. A run whose rules compare one
//! of their fields with a prefix or a range (`ip saddr 10.0.0.0/8`,
//! `tcp dport 1000-2000`) and the others for equality becomes one
//! lookup in an LPM trie keyed by the exact fields, then that field.
//!
//! Fields the compiler knows (`meta iiftype`, which the checker puts
//! before `ether` and `vlan` fields) are no part of the key: a rule
//! whose constant is their value always passes them, and a rule with
//! another constant never matches, so it has no entry.
//!
//! The map's value for a key is the index in the run of the FIRST rule
//! with that key (later rules with the same key can never decide: nft
//! stops at the first), shifted left by one, with the rule's verdict in
//! the low bit (1: accept). A hit counts into that rule's counter
//! ([`Action::CountIndexed`]: the run's counters have consecutive
//! slots) and goes to the verdict; a miss goes on after the run.
//!
//! In a trie a rule is the prefixes of its range (a value is a prefix
//! of the field's length), and a lookup finds the longest prefix that
//! holds the key. The prefixes that hold a key are nested, the longest
//! innermost, so each entry's value names the first rule among its own
//! and those of every shorter entry that holds it ([`first_matches`]):
//! the longest match names the first rule that matches.
//!
//! nft's meaning is kept: each rule of the run matches exactly when
//! every field can be read and equals its constants, so a field that
//! cannot be read (a short packet, no transport header) fails every
//! rule of the run, and the fields are read once, before the lookup,
//! with the guards of a set's lookup. But nft reads only the bytes of a
//! prefix that ends on a byte boundary (`ip saddr 10.0.0.0/8` reads one
//! byte), so such a rule matches a frame that ends inside the field,
//! after the prefix: a trie with such rules has a second trie of their
//! entries, looked up with the bytes the frame has when the field's
//! guard fails ([`Lower::cut_lookups`]; IP addresses only, other byte
//! prefixes nft reads alone stay rules).

use std::collections::HashSet;
use std::ops::Range;

use pktmatch::Span;
use pktmatch::ir::{BinOp, CmpOp, Cond, Edge, EntityRef, Key, KeyPart, Val, VarNo};

use super::cfg::Short;
use super::sets::layout_of;
use super::test::{Part, ones};
use super::{ChainCtx, Lower, pktinfo};
use crate::check::fields::{Base, Load};
use crate::check::tree::{
    CmpOp as NftOp, Counter, ElemKey, RuleId, Selector, Source, Stmt, Test, Verdict,
};
use crate::compile::actions::Action;
use crate::compile::sets::{PartLayout, SetKind, SetMap, element_keys, same_prefix};
use crate::compile::{Decision, Outcome};
use crate::error::Error;

/// Runs of fewer rules stay rules. A classifier takes a few blocks
/// whatever its rules (the program's budget of blocks, `PROGRAM_BLOCKS`),
/// where eight rules take dozens; per packet, its hash lookup costs
/// a few nanoseconds more than ten rules' compares (benches' nft2bpf
/// part 6: 23-24 ns against 16-19 ns), and much less than a thousand.
pub const MIN_RUN: usize = 8;

/// The most classifier maps a hook's programs have (a trie for byte
/// prefixes of addresses has two); later runs (lowered first) take
/// them, earlier ones stay rules. A deployed hook pins at most 64 maps
/// of sets and classifiers together (`deploy`'s `SET_MEMBERS`, the maps
/// one program may use): half are left to the sets.
pub const MAX_CLASSIFIERS: usize = 32;

/// What a rule of a run reads and does, apart from its constants.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    /// Each match's field and mask, in order.
    fields: Vec<(Source, Option<u128>)>,
    /// Whether the rule counts (an anonymous `counter` after its matches).
    counts: bool,
    /// The match that tests a range or prefix (the rule fits a trie
    /// whose key ends with that field); none when all are equalities.
    ranged: Option<usize>,
}

impl Shape {
    /// Whether a rule of shape `other` may join a trie run of rules of
    /// this shape whose ranged field is `at` (set by the first rule that
    /// has one): the same fields and counter, its range at `at` if any.
    fn joins_trie(&self, other: &Shape, at: &mut Option<usize>) -> bool {
        if self.fields != other.fields || self.counts != other.counts {
            return false;
        }
        match other.ranged {
            None => true,
            Some(r) => *at.get_or_insert(r) == r,
        }
    }
}

/// A rule of a run: its shape, its constants, its counter and verdict.
struct Classified {
    shape: Shape,
    /// Each match's constant: a value, or the ranged match's range (a
    /// prefix being the range it covers).
    values: Vec<ElemKey>,
    /// The counter statement's index and its initial values.
    counter: Option<(usize, Counter)>,
    accept: bool,
    /// The ranged match is a prefix of whole bytes that nft reads alone
    /// (`ip saddr 10.0.0.0/8` reads one byte): it matches a frame that
    /// ends inside the field, after the prefix.
    short: bool,
}

/// A piece of a chain's rules: one rule, or a run lowered as a classifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Piece {
    /// The rule at this index.
    Rule(usize),
    /// The rules at these indexes, of one shape.
    Run(Range<usize>),
}

/// `rule`'s shape, constants, counter and verdict, when it may join a run:
/// `MATCH... [counter] accept|drop`, each match a single field compared
/// for equality with a constant that fits it, but for at most one
/// unmasked field compared with a range or prefix.
fn classified(stmts: &[Stmt]) -> Option<Classified> {
    let (last, rest) = stmts.split_last()?;
    let accept = match last {
        Stmt::Verdict(Verdict::Accept) => true,
        Stmt::Verdict(Verdict::Drop) => false,
        _ => return None,
    };
    let (counter, matches) = match rest.split_last() {
        Some((Stmt::Counter(c @ Counter::Anonymous { .. }), m)) => (Some((m.len(), *c)), m),
        _ => (None, rest),
    };
    if matches.is_empty() {
        return None;
    }
    let mut fields = Vec::with_capacity(matches.len());
    let mut values = Vec::with_capacity(matches.len());
    let mut ranged = None;
    let mut short = false;
    for (i, s) in matches.iter().enumerate() {
        let Stmt::Match(m) = s else { return None };
        let [Selector { source, mask, .. }] = m.key.parts.as_slice() else {
            return None;
        };
        let bits = source.bits();
        // A mask of the whole field (`ip saddr 10.1.2.3/32`) is none.
        let mask = mask.filter(|&m| m & ones(bits) != ones(bits));
        let value = match m.test {
            Test::Cmp {
                op: NftOp::Eq,
                value,
            } => ElemKey::Value(value),
            Test::Prefix {
                value,
                len,
                negated: false,
            } if mask.is_none() => ElemKey::Range(value, value | ones(bits - len)),
            Test::Range {
                low,
                high,
                negated: false,
            } if mask.is_none() && low <= high => ElemKey::Range(low, high),
            _ => return None,
        };
        if let Test::Prefix { len, .. } = m.test
            && reads_prefix_alone(source, len)
        {
            // Frames cut inside the field take a second trie, whose key
            // is the bytes there are: words of an IP header only.
            let whole_words = bits.is_multiple_of(32);
            if !whole_words || source.load().is_none_or(|l| l.base != Base::Network) {
                return None;
            }
            short = true;
        }
        if let ElemKey::Range(..) = value {
            if ranged.is_some() {
                return None;
            }
            ranged = Some(i);
        }
        // A constant wider than its field never matches: left to rules.
        let high = value.bounds().1;
        if bits < 128 && high >> bits != 0 {
            return None;
        }
        fields.push((*source, mask));
        values.push(value);
    }
    Some(Classified {
        shape: Shape {
            fields,
            counts: counter.is_some(),
            ranged,
        },
        values,
        counter,
        accept,
        short,
    })
}

/// Whether nft reads only the bytes of a prefix of `len` bits of
/// `source` (the lowering's `prefix_as_cmp`): a prefix of whole bytes of
/// a field of whole bytes.
fn reads_prefix_alone(source: &Source, len: u32) -> bool {
    source
        .load()
        .is_some_and(|l| l.shift == 0 && l.bits.is_multiple_of(8) && len.is_multiple_of(8))
}

impl Lower<'_> {
    /// `rules` cut into pieces: runs of at least [`MIN_RUN`] rules of one
    /// shape (when classifiers are on), and single rules. A run for a
    /// trie (rules with ranges, and rules of equalities on the same
    /// fields among them) is taken when longer than the hash run there
    /// and either that hash run is too short or the trie holds
    /// [`MIN_RUN`] rules more.
    pub(super) fn pieces(&self, rules: &[RuleId]) -> Vec<Piece> {
        let shapes: Vec<Option<Shape>> = rules
            .iter()
            .map(|&r| match self.use_classifiers {
                true => classified(&self.rs.rules[r].stmts).map(|c| c.shape),
                false => None,
            })
            .collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < rules.len() {
            let Some(shape) = &shapes[i] else {
                out.push(Piece::Rule(i));
                i += 1;
                continue;
            };
            let mut hash_end = i;
            if shape.ranged.is_none() {
                while hash_end < rules.len() && shapes[hash_end].as_ref() == Some(shape) {
                    hash_end += 1;
                }
            }
            let mut at = None;
            let mut trie_end = i;
            while trie_end < rules.len()
                && shapes[trie_end]
                    .as_ref()
                    .is_some_and(|s| shape.joins_trie(s, &mut at))
            {
                trie_end += 1;
            }
            // A trie lookup costs about twice a hash lookup (the nft2bpf
            // bench's part 6): a trie takes the run only when the hash
            // run is too short to be one, or when the trie holds
            // [`MIN_RUN`] rules more; else the rules after the hash run
            // make pieces of their own.
            let trie = at.is_some()
                && trie_end > hash_end
                && (hash_end - i < MIN_RUN || trie_end - hash_end >= MIN_RUN);
            let end = if trie { trie_end } else { hash_end };
            if end - i >= MIN_RUN {
                out.push(Piece::Run(i..end));
                i = end;
            } else {
                out.push(Piece::Rule(i));
                i += 1;
            }
        }
        out
    }

    /// The rules `run` (of one shape, [`Lower::pieces`]) as one lookup,
    /// going to `next` when none matches; `None` when they cannot be
    /// (their fields are no words of the packet, or too long for a key,
    /// or their counters' slots are not consecutive, or the hook has
    /// [`MAX_CLASSIFIERS`]): then they are lowered one by one.
    pub(super) fn classifier(
        &mut self,
        run: &[RuleId],
        next: Edge,
        ctx: ChainCtx,
    ) -> Result<Option<Edge>, Error> {
        let rules: Vec<Classified> = run
            .iter()
            .map(|&r| classified(&self.rs.rules[r].stmts).expect("a rule of a run"))
            .collect();
        let short = rules.iter().any(|c| c.short);
        if self.classifier_maps + 1 + usize::from(short) > MAX_CLASSIFIERS {
            return Ok(None);
        }
        let first = &self.rs.rules[run[0]];
        let span = first.span;
        let mut parts = Vec::new();
        for s in &first.stmts {
            if let Stmt::Match(m) = s {
                parts.extend(self.key_parts(&m.key, m.span)?);
            }
        }
        // Fields the compiler knows leave the key (see the module docs).
        let known: Vec<Option<u128>> = parts
            .iter()
            .map(|p| match p {
                Part::Known(v) => Some(*v),
                Part::Words { .. } => None,
            })
            .collect();
        let matches_known = |c: &Classified| {
            known
                .iter()
                .zip(&c.values)
                .all(|(k, v)| k.is_none_or(|k| *v == ElemKey::Value(k)))
        };
        let ranged = rules.iter().find_map(|c| c.shape.ranged);
        if ranged.is_some_and(|at| known[at].is_some()) {
            return Ok(None);
        }
        parts.retain(|p| matches!(p, Part::Words { .. }));
        // The ranged field's place among the fields that stay.
        let ranged_part = ranged.map(|at| known[..at].iter().filter(|k| k.is_none()).count());
        // A trie's key: the exact fields, then the ranged one.
        let kind = match ranged_part {
            Some(at) => {
                let part = parts.remove(at);
                parts.push(part);
                SetKind::Lpm
            }
            None => SetKind::Hash,
        };
        let key_of = |c: &Classified| -> Vec<ElemKey> {
            let mut key: Vec<ElemKey> = c
                .values
                .iter()
                .zip(&known)
                .filter(|(_, k)| k.is_none())
                .map(|(v, _)| *v)
                .collect();
            if let Some(at) = ranged_part {
                let v = key.remove(at);
                key.push(v);
            }
            key
        };
        if parts.is_empty() {
            return Ok(None);
        }
        let Some((layout, words)) = layout_of(&parts) else {
            return Ok(None);
        };
        let data_bytes = 4 * words.len() as u32;
        let lpm_header = if kind == SetKind::Lpm { 4 } else { 0 };
        if data_bytes + lpm_header > pktmatch::ir::MAX_KEY_BYTES {
            return Ok(None);
        }
        let mut base = None;
        for (i, (&r, c)) in run.iter().zip(&rules).enumerate() {
            let Some((stmt, counter)) = c.counter else {
                continue;
            };
            let slot = self.counter_slot(r, stmt, counter);
            let b = *base.get_or_insert(slot);
            if slot != b + i as u32 {
                return Ok(None);
            }
        }
        // Each rule's keys, in the rules' order.
        let mut entries = Vec::new();
        for (i, c) in rules.iter().enumerate().filter(|(_, c)| matches_known(c)) {
            for bytes in element_keys(kind, &layout, &key_of(c)) {
                entries.push((bytes, i as u32));
            }
        }
        let short_map = short.then(|| {
            let cut: Vec<_> = entries
                .iter()
                .filter(|(_, i)| rules[*i as usize].short)
                .cloned()
                .collect();
            self.classifier_map(&rules, kind, &layout, data_bytes, cut)
        });
        let map = self.classifier_map(&rules, kind, &layout, data_bytes, entries);

        // Built backwards: the verdict, the counter, the lookup, the guards.
        // The decisions name the classifier, whose lookup names the rule.
        let number = self.classifiers.len() as u32;
        self.classifiers.push(run.to_vec());
        let mut decision = |outcome| {
            let mut d = Decision::new(outcome, None, Some(first.chain));
            d.classifier = Some(number);
            self.decided(d)
        };
        let accept = rules.iter().any(|c| c.accept).then(|| match ctx.accept {
            Some(e) => e,
            None => decision(Outcome::Accept),
        });
        let drop = rules
            .iter()
            .any(|c| !c.accept)
            .then(|| decision(Outcome::Drop));
        let var = pktinfo::var::CLASSIFIED;
        let mut hit = match (accept, drop) {
            (Some(a), Some(d)) => {
                let value = self.var(var);
                let one = self.k(1);
                let bit = self.bin(BinOp::And, value, one);
                let cond = self.cmp_cond(bit, CmpOp::Eq, 1);
                self.cfg.test(cond, a, d, Short::False, span)
            }
            (Some(e), None) | (None, Some(e)) => e,
            (None, None) => unreachable!("a run has rules"),
        };
        if let Some(base) = base {
            let action = Action::CountIndexed {
                base,
                rules: run.len() as u32,
                var,
            };
            hit = self.act(action, hit, hit, span);
        }
        let length = (kind == SetKind::Lpm).then_some(8 * data_bytes);
        let block = self.classifier_lookup(map, length, &words, hit, next, span);
        let Some(short_map) = short_map else {
            return Ok(Some(self.guard(&parts, block, next, span)));
        };
        // Frames whose ranged field is cut short: its guards fail to the
        // second trie's lookups, once the other fields are read.
        let (field, exact) = parts.split_last().expect("a trie's key has its field");
        let load = ranged
            .and_then(|at| rules[0].shape.fields[at].0.load())
            .expect("a prefix nft reads alone is a load");
        let field_words = field_words(field);
        let exact_words = &words[..words.len() - field_words];
        let cut = self.cut_lookups(short_map, exact_words, load, hit, next, span);
        let block = self.guard(std::slice::from_ref(field), block, cut, span);
        Ok(Some(self.guard(exact, block, next, span)))
    }

    /// A classifier's map of `entries` (keys, and the index of the first
    /// rule of each): in a trie, each entry names the first rule of the
    /// entries holding it ([`first_matches`]); the value is the index
    /// shifted left by one, the rule's verdict in the low bit.
    fn classifier_map(
        &mut self,
        rules: &[Classified],
        kind: SetKind,
        layout: &[PartLayout],
        data_bytes: u32,
        mut entries: Vec<(Vec<u8>, u32)>,
    ) -> usize {
        match kind {
            SetKind::Lpm => entries = first_matches(entries),
            SetKind::Hash => {
                // The first rule of each key decides; the rest are dead.
                let mut seen: HashSet<Vec<u8>> = HashSet::new();
                entries.retain(|(key, _)| seen.insert(key.clone()));
            }
        }
        for (_, value) in &mut entries {
            let accept = rules[*value as usize].accept;
            *value = (*value << 1) | u32::from(accept);
        }
        self.sets.maps.push(SetMap {
            set: None,
            kind,
            layout: layout.to_vec(),
            verdicts: Vec::new(),
            data_bytes,
            max_entries: (entries.len() as u32).max(1),
            entries,
            stateful: false,
            timeouts: Vec::new(),
        });
        self.classifier_maps += 1;
        let map = self.sets.maps.len() - 1;
        self.sets.in_program.insert(map);
        map
    }

    /// The lookup of `words` in classifier map `map` (after the key's
    /// prefix `length` in a trie), its value in [`pktinfo::var::CLASSIFIED`]:
    /// `hit` when found, else `miss`.
    fn classifier_lookup(
        &mut self,
        map: usize,
        length: Option<u32>,
        words: &[Val],
        hit: Edge,
        miss: Edge,
        span: Span,
    ) -> Edge {
        let mut key = Key::default();
        if let Some(length) = length {
            let length = self.k(length);
            key.parts.push(KeyPart::host(length, 4));
        }
        key.parts
            .extend(words.iter().map(|&w| KeyPart::network(w, 4)));
        let cond = Cond::Lookup {
            key: self.ir.key(key),
            action: self.action(Action::Lookup { map: map as u32 }),
            result: Some(VarNo::new(pktinfo::var::CLASSIFIED as usize)).into(),
        };
        self.cfg.test(cond, hit, miss, Short::False, span)
    }

    /// For a frame that ends inside the trie's field (`load`, words of
    /// an IP header) after its first byte: the lookup, in `map` (the
    /// rules of prefixes nft reads alone), of the `exact_words` then the
    /// bytes there are, zeros after them, the key's length ending with
    /// them; the longest first, each after a guard of its last byte.
    fn cut_lookups(
        &mut self,
        map: usize,
        exact_words: &[Val],
        load: Load,
        hit: Edge,
        miss: Edge,
        span: Span,
    ) -> Edge {
        let from = Some(self.var(pktinfo::var::NH));
        let lead_bits = 32 * exact_words.len() as u32;
        let mut e = miss;
        for there in 1..load.len {
            let mut words = exact_words.to_vec();
            for at in (0..load.len).step_by(4) {
                let word = match there.saturating_sub(at).min(4) {
                    0 => self.k(0),
                    4 => self.bytes(from, load.offset + at, 4),
                    n => {
                        let bytes = self.bytes(from, load.offset + at, n);
                        let by = self.k(8 * (4 - n));
                        self.bin(BinOp::Shl, bytes, by)
                    }
                };
                words.push(word);
            }
            let lookup =
                self.classifier_lookup(map, Some(lead_bits + 8 * there), &words, hit, miss, span);
            // The last byte fits: they all do.
            let last = self.ir.load(from, load.offset + there - 1, 1);
            let cond = self.cmp_cond(last, CmpOp::Ge, 0);
            e = self.cfg.test(cond, lookup, e, Short::False, span);
        }
        e
    }
}

/// The words of a part of a key.
fn field_words(p: &Part) -> usize {
    match p {
        Part::Words { words, .. } => words.len(),
        _ => 0,
    }
}

/// A trie's entries (key: prefix length in host order, then the data;
/// value: a rule's index; in the rules' order), each key once, with
/// each value made the least of its own and those of the entries whose
/// prefix holds its own (shorter or equal, and agreeing on its length):
/// the rule that decides a key whose longest match is that entry.
///
/// Sorted by data then length, an entry comes after every entry that
/// holds it, and the entries between are inside that one; so a stack
/// of the entries that hold the current one, each with its least
/// value, gives every entry's in one pass after the sort.
fn first_matches(mut entries: Vec<(Vec<u8>, u32)>) -> Vec<(Vec<u8>, u32)> {
    let len_of = |key: &[u8]| u32::from_ne_bytes(key[..4].try_into().expect("a prefix length"));
    // Stable: a key's first rule stays first, and is kept.
    entries.sort_by(|a, b| (&a.0[4..], len_of(&a.0)).cmp(&(&b.0[4..], len_of(&b.0))));
    entries.dedup_by(|later, first| later.0 == first.0);
    // Indexes into `entries` of the entries holding the current one.
    let mut holders: Vec<usize> = Vec::new();
    for i in 0..entries.len() {
        let (key, _) = &entries[i];
        while let Some(&h) = holders.last() {
            let outer = &entries[h].0;
            if same_prefix(&outer[4..], &key[4..], len_of(outer)) {
                break;
            }
            holders.pop();
        }
        if let Some(&h) = holders.last() {
            entries[i].1 = entries[i].1.min(entries[h].1);
        }
        holders.push(i);
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 trie key: prefix length, then the address.
    fn key(addr: [u8; 4], len: u32) -> Vec<u8> {
        [len.to_ne_bytes(), addr].concat()
    }

    #[test]
    fn each_entry_takes_the_first_rule_of_the_prefixes_holding_it() {
        let entries = vec![
            (key([10, 1, 2, 0], 24), 0),
            (key([10, 0, 0, 0], 8), 1),
            (key([10, 1, 0, 0], 16), 2),
            (key([10, 1, 2, 3], 32), 3),
            (key([11, 0, 0, 0], 8), 4),
            (key([10, 2, 0, 0], 16), 5),
            (key([0, 0, 0, 0], 0), 6),
            (key([10, 1, 3, 0], 24), 7),
            (key([10, 0, 0, 0], 8), 8),
        ];
        let mut got = first_matches(entries);
        got.sort();
        let mut want = vec![
            (key([10, 1, 2, 0], 24), 0),
            (key([10, 0, 0, 0], 8), 1),
            (key([10, 1, 0, 0], 16), 1),
            (key([10, 1, 2, 3], 32), 0),
            (key([11, 0, 0, 0], 8), 4),
            (key([10, 2, 0, 0], 16), 1),
            (key([0, 0, 0, 0], 0), 6),
            (key([10, 1, 3, 0], 24), 1),
        ];
        want.sort();
        assert_eq!(got, want);
    }
}
