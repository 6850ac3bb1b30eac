//! Classifiers: a run of consecutive rules of one shape (the same fields
//! compared for equality with constants, the same statements, an
//! `accept` or `drop`) becomes one hash-map lookup keyed by the fields'
//! values, whatever the number of rules.
//!
//! The map's value for a key is the index in the run of the FIRST rule
//! with that key (later rules with the same key can never decide: nft
//! stops at the first), shifted left by one, with the rule's verdict in
//! the low bit (1: accept). A hit counts into that rule's counter
//! ([`Action::CountIndexed`]: the run's counters have consecutive
//! slots) and goes to the verdict; a miss goes on after the run.
//!
//! nft's meaning is kept: each rule of the run matches exactly when
//! every field can be read and equals its constants, so a field that
//! cannot be read (a short packet, no transport header) fails every
//! rule of the run, and the fields are read once, before the lookup,
//! with the guards of a set's lookup.

use std::collections::HashMap;
use std::ops::Range;

use pktmatch::ir::{BinOp, CmpOp, Cond, Edge, EntityRef, Key, KeyPart, VarNo};

use super::cfg::Short;
use super::sets::layout_of;
use super::{ChainCtx, Lower, pktinfo};
use crate::check::tree::{
    CmpOp as NftOp, Counter, ElemKey, RuleId, Selector, Source, Stmt, Test, Verdict,
};
use crate::compile::actions::Action;
use crate::compile::sets::{SetKind, SetMap, element_keys};
use crate::compile::{Decision, Outcome};
use crate::error::Error;

/// Runs of fewer rules stay rules. A classifier takes a few blocks
/// whatever its rules (the program's budget of blocks, `PROGRAM_BLOCKS`),
/// where eight rules take dozens; per packet, its hash lookup costs
/// a few nanoseconds more than ten rules' compares (benches' nft2bpf
/// part 6: 23-24 ns against 16-19 ns), and much less than a thousand.
pub const MIN_RUN: usize = 8;

/// The most classifiers a hook's programs have; later runs (lowered
/// first) take them, earlier ones stay rules. Each is a map, and a
/// deployed hook pins at most 64 maps of sets and classifiers together
/// (`deploy`'s `SET_MEMBERS`, the maps one program may use): half are
/// left to the sets.
pub const MAX_CLASSIFIERS: usize = 32;

/// What a rule of a run reads and does, apart from its constants.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    /// Each match's field and mask, in order.
    fields: Vec<(Source, Option<u128>)>,
    /// Whether the rule counts (an anonymous `counter` after its matches).
    counts: bool,
}

/// A rule of a run: its shape, its constants, its counter and verdict.
struct Classified {
    shape: Shape,
    values: Vec<u128>,
    /// The counter statement's index and its initial values.
    counter: Option<(usize, Counter)>,
    accept: bool,
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
/// for equality with a constant that fits it.
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
    for s in matches {
        let Stmt::Match(m) = s else { return None };
        let [Selector { source, mask, .. }] = m.key.parts.as_slice() else {
            return None;
        };
        let Test::Cmp {
            op: NftOp::Eq,
            value,
        } = m.test
        else {
            return None;
        };
        // A constant wider than its field never matches: left to rules.
        let bits = source.bits();
        if bits < 128 && value >> bits != 0 {
            return None;
        }
        fields.push((*source, *mask));
        values.push(value);
    }
    Some(Classified {
        shape: Shape {
            fields,
            counts: counter.is_some(),
        },
        values,
        counter,
        accept,
    })
}

impl Lower<'_> {
    /// `rules` cut into pieces: runs of at least [`MIN_RUN`] rules of one
    /// shape (when classifiers are on), and single rules.
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
            let mut end = i + 1;
            if shapes[i].is_some() {
                while end < rules.len() && shapes[end] == shapes[i] {
                    end += 1;
                }
            }
            if end - i >= MIN_RUN {
                out.push(Piece::Run(i..end));
            } else {
                out.extend((i..end).map(Piece::Rule));
            }
            i = end;
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
        if self.classifiers.len() >= MAX_CLASSIFIERS {
            return Ok(None);
        }
        let rules: Vec<Classified> = run
            .iter()
            .map(|&r| classified(&self.rs.rules[r].stmts).expect("a rule of a run"))
            .collect();
        let first = &self.rs.rules[run[0]];
        let span = first.span;
        let mut parts = Vec::new();
        for s in &first.stmts {
            if let Stmt::Match(m) = s {
                parts.extend(self.key_parts(&m.key, m.span)?);
            }
        }
        let Some((layout, words)) = layout_of(&parts) else {
            return Ok(None);
        };
        let data_bytes = 4 * words.len() as u32;
        if data_bytes > pktmatch::ir::MAX_KEY_BYTES {
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
        // The first rule of each key decides; the rest are dead.
        let mut first_of: HashMap<Vec<u8>, u32> = HashMap::new();
        let mut entries = Vec::new();
        for (i, c) in rules.iter().enumerate() {
            let key: Vec<ElemKey> = c.values.iter().map(|&v| ElemKey::Value(v)).collect();
            for bytes in element_keys(SetKind::Hash, &layout, &key) {
                if first_of.contains_key(&bytes) {
                    continue;
                }
                let value = ((i as u32) << 1) | u32::from(c.accept);
                first_of.insert(bytes.clone(), value);
                entries.push((bytes, value));
            }
        }
        self.sets.maps.push(SetMap {
            set: None,
            kind: SetKind::Hash,
            layout,
            verdicts: Vec::new(),
            data_bytes,
            max_entries: (entries.len() as u32).max(1),
            entries,
            stateful: false,
            timeouts: Vec::new(),
        });
        let map = self.sets.maps.len() - 1;
        self.sets.in_program.insert(map);

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
        let key = Key {
            parts: words.iter().map(|&w| KeyPart::network(w, 4)).collect(),
        };
        let cond = Cond::Lookup {
            key: self.ir.key(key),
            action: self.action(Action::Lookup { map: map as u32 }),
            result: Some(VarNo::new(var as usize)).into(),
        };
        let block = self.cfg.test(cond, hit, next, Short::False, span);
        Ok(Some(self.guard(&parts, block, next, span)))
    }
}
