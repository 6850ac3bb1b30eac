//! Lowering: a checked ruleset's base chains for one hook and device to
//! one packet-match IR with nft's meaning ([`Semantics::Exact`]: a load
//! that does not fit makes its match false, and the next rule runs).
//!
//! The program runs as nft runs the hook: the packet's facts first
//! (`pktinfo`), then each base chain in priority order, its rules in
//! order; a rule's statements in order (`rule`): a match that fails
//! ends the rule (`test`; sets in maps: `sets`), an action (counter,
//! quota, limit, log) is a `Cond::Act` block, a verdict ends it; a
//! `pcap "EXPR"` match is the filter's own graph (`pcap`), its short
//! reads going to the next rule. `jump` and `goto` inline the chain they
//! name, once per place it returns to; an accept goes on with the next
//! base chain, and what ends the last is a [`Decision`].
//!
//! The graph is built backwards (`cfg`): the continuation of each piece
//! exists before the piece. When the rules outgrow one program
//! ([`PROGRAM_BLOCKS`]), the ones after the cut become a program of
//! their own and the edges into them tail calls ([`Outcome::Next`]).

mod cfg;
mod classify;
mod pcap;
mod pktinfo;
mod rule;
mod sets;
mod test;

pub(crate) use test::words_of;

use std::collections::HashMap;

use indexmap::IndexSet;

use pktmatch::ir::{Edge, Ir, Semantics, Verdict};

use super::actions::Action;
use super::{Attach, Decision, Device, Lowered, Outcome, Slots};
use crate::check::fields::MetaKey;
use crate::check::tree::{ChainId, Key, Policy, Ruleset, Source, Stmt};
use crate::error::Error;
use cfg::Cfg;
use classify::Piece;

pub use classify::{MAX_CLASSIFIERS, MIN_RUN};
pub use pktinfo::IPV6_EXT_HEADERS;
pub use sets::INLINE_ELEMENTS;

/// The variable that holds nft's `skb->len` (for the action code).
pub const LEN_VAR: u32 = pktinfo::var::LEN;

/// The variable that holds a classifier lookup's value (for the verdict
/// code of a test run).
pub(super) const CLASSIFIED_VAR: u32 = pktinfo::var::CLASSIFIED;

/// The most blocks one program's IR may have: past it, inlining the
/// chains that several rules jump to has blown up.
const MAX_BLOCKS: usize = 1 << 20;

/// Past this many blocks, the rules before go to a program of their own
/// that tail-calls this one: the verifier keeps every branch it has yet
/// to explore on a stack of at most 8,192, and a chain of rules pushes a
/// few a rule (measured: 1,132 mixed rules loaded, 1,202 did not).
/// Actions and lookups weigh more than tests (`cfg`'s weight): they are
/// more instructions.
pub const PROGRAM_BLOCKS: usize = 3000;

/// The most programs a hook's rules may take: the kernel follows at
/// most 33 tail calls in a row (bpf-builder's
/// `the_kernel_follows_thirty_three_tail_calls` pins it), one from the
/// hook's generation switch ([`crate::compile::switch`]) into the first
/// program, 32 from program to program.
pub const MAX_PROGRAMS: usize = 33;

/// Past this many set maps, the rules before go to a program of their
/// own: a program may use at most 64 maps, and counters, quotas, limits,
/// log, fwd targets and the program array take up to 8.
const PROGRAM_SET_MAPS: usize = 48;

/// The lowering of one program.
pub(super) struct Lower<'r> {
    rs: &'r Ruleset,
    ir: Ir,
    cfg: Cfg,
    hook: Attach,
    device: &'r Device,
    device_mac: Option<[u8; 6]>,
    uses_pkttype: bool,
    /// The decisions, by verdict number (each once).
    decisions: IndexSet<Decision>,
    /// The actions, by action number (each once).
    actions: IndexSet<Action>,
    slots: Slots,
    /// The maps of the sets looked up.
    sets: sets::SetMaps,
    /// The programs cut off so far, later rules first (their number in
    /// `Outcome::Next` counts in this order until the end).
    cut: Vec<Ir>,
    /// Chains already lowered, by where they return to.
    inlined: HashMap<(ChainId, Edge, Option<Edge>), Edge>,
    /// The names `pcap "EXPR"` filters look up (this machine's `/etc`
    /// files, as tcpdump reads them), once a filter needs them.
    pcap_names: Option<pcap2bpf::Tables>,
    /// Whether runs of rules of one shape become classifiers.
    use_classifiers: bool,
    /// The classifiers' rules, by number.
    classifiers: Vec<Vec<crate::check::tree::RuleId>>,
    /// The maps the classifiers look up (a trie's second map, for frames
    /// cut inside its field, counted).
    classifier_maps: usize,
}

/// How rules are lowered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowerOptions {
    /// Runs of at least [`MIN_RUN`] consecutive rules of one shape (the
    /// same fields compared for equality, an `accept` or `drop`, an
    /// optional `counter`) become one map lookup each, whatever their
    /// number; off, every rule is its own tests (the plain chain the
    /// classifiers are compared with).
    pub classifiers: bool,
}

impl Default for LowerOptions {
    fn default() -> LowerOptions {
        LowerOptions { classifiers: true }
    }
}

/// Lowers the base chains of `ruleset` that hook `attach`'s hook on
/// `device`, in priority order, with classifiers.
pub fn lower(ruleset: &Ruleset, attach: Attach, device: &Device) -> Result<Lowered, Error> {
    lower_with(ruleset, attach, device, LowerOptions::default())
}

/// [`lower`] with `options`.
pub fn lower_with(
    ruleset: &Ruleset,
    attach: Attach,
    device: &Device,
    options: LowerOptions,
) -> Result<Lowered, Error> {
    let mut chains: Vec<ChainId> = ruleset
        .base_chains()
        .filter(|(_, c, b)| {
            b.hook == attach.hook()
                && b.devices.contains(&device.name)
                && !ruleset.tables[c.table].dormant
        })
        .map(|(id, _, _)| id)
        .collect();
    // Lower priorities run first; equal ones in the order nft registers
    // them (declaration order).
    chains.sort_by_key(|&c| ruleset.chains[c].base.as_ref().map(|b| b.priority));
    let mut l = Lower {
        rs: ruleset,
        ir: Ir::with_semantics(Semantics::Exact),
        cfg: Cfg::default(),
        hook: attach,
        device,
        device_mac: device.mac,
        uses_pkttype: reads_meta(ruleset, MetaKey::PktType),
        // Decision 0: frames the hook never sees pass.
        decisions: IndexSet::from([Decision::new(Outcome::Accept, None, None)]),
        actions: IndexSet::new(),
        slots: Slots::default(),
        sets: sets::SetMaps::default(),
        cut: Vec::new(),
        inlined: HashMap::new(),
        pcap_names: None,
        use_classifiers: options.classifiers,
        classifiers: Vec::new(),
        classifier_maps: 0,
    };
    if l.uses_pkttype && attach == Attach::Xdp && l.device_mac.is_none() {
        return Err(Error::new(
            "`meta pkttype` in an XDP program needs the device's MAC address",
            pktmatch::Span::default(),
        ));
    }
    let mut next = l.decision(Outcome::Accept, None, None);
    for (i, &c) in chains.iter().enumerate().rev() {
        // The last chain's accept is a decision of its own.
        let accept = (i + 1 < chains.len()).then_some(next);
        next = l.base_chain(c, accept, i == 0)?;
    }
    let cfg = std::mem::take(&mut l.cfg);
    let entry = l.program(cfg, next);
    // Programs are numbered from the entry: the last cut off is 1.
    let n = l.cut.len() as u32;
    let mut decisions: Vec<Decision> = l.decisions.into_iter().collect();
    for d in &mut decisions {
        if let Outcome::Next(b) = d.outcome {
            d.outcome = Outcome::Next(n - b);
        }
    }
    let more: Vec<Ir> = l.cut.into_iter().rev().collect();
    Ok(Lowered {
        attach,
        device: device.clone(),
        chains,
        ir: entry,
        more,
        decisions,
        actions: l.actions.into_iter().collect(),
        slots: l.slots,
        set_maps: l.sets.maps,
        classifiers: l.classifiers,
    })
}

/// Whether some rule reads the metadata key.
fn reads_meta(rs: &Ruleset, key: MetaKey) -> bool {
    let reads = |k: &Key| k.parts.iter().any(|p| p.source == Source::Meta(key));
    rs.rules.values().flat_map(|r| &r.stmts).any(|s| match s {
        Stmt::Match(m) => reads(&m.key),
        Stmt::VerdictMap(vm) => reads(&vm.key),
        _ => false,
    })
}

impl Lower<'_> {
    /// The verdict edge of a decision (equal decisions share one).
    fn decision(
        &mut self,
        outcome: Outcome,
        rule: Option<crate::check::tree::RuleId>,
        chain: Option<ChainId>,
    ) -> Edge {
        self.decided(Decision::new(outcome, rule, chain))
    }

    /// The verdict edge of `d` (equal decisions share one).
    fn decided(&mut self, d: Decision) -> Edge {
        let n = self.decisions.insert_full(d).0;
        Edge::Verdict(Verdict(n as u32))
    }

    /// A base chain: its rules, then its policy; `accept` is where an
    /// accepted packet goes (the next base chain, or the final accept).
    /// `first`: no chain runs before it.
    fn base_chain(&mut self, c: ChainId, accept: Option<Edge>, first: bool) -> Result<Edge, Error> {
        let base = self.rs.chains[c].base.as_ref().expect("a base chain");
        let policy = match (base.policy, accept) {
            (Policy::Accept, Some(e)) => e,
            (Policy::Accept, None) => self.decision(Outcome::Accept, None, Some(c)),
            (Policy::Drop, _) => self.decision(Outcome::Drop, None, Some(c)),
        };
        let mut ctx = ChainCtx {
            accept,
            ret: policy,
        };
        let rules = &self.rs.chains[c].rules;
        let mut next = ctx.ret;
        let mut todo = self.pieces(rules);
        while let Some(piece) = todo.pop() {
            let Some((e, i)) = self.piece(rules, piece, &mut todo, next, ctx)? else {
                continue;
            };
            next = e;
            let full =
                self.cfg.weight() > PROGRAM_BLOCKS || self.sets.in_program.len() > PROGRAM_SET_MAPS;
            if full && !(first && i == 0) {
                let span = self.rs.rules[rules[i]].span;
                let [n, a, ret] =
                    self.cut_here([next, ctx.accept.unwrap_or(next), ctx.ret], span)?;
                next = n;
                ctx.accept = ctx.accept.map(|_| a);
                ctx.ret = ret;
            }
        }
        Ok(next)
    }

    /// Ends the program being built here: each of `edges` that goes into
    /// it becomes a program of its own (the prologue, then that edge),
    /// and the edge a tail call to it. The rules before start a new one.
    fn cut_here(&mut self, edges: [Edge; 3], span: pktmatch::Span) -> Result<[Edge; 3], Error> {
        let cfg = std::mem::take(&mut self.cfg);
        self.inlined.clear();
        self.sets.in_program.clear();
        let mut done: Vec<(Edge, Edge)> = Vec::new();
        let mut out = edges;
        for e in &mut out {
            if !matches!(e, Edge::Block(_)) {
                continue;
            }
            if let Some(&(_, to)) = done.iter().find(|(from, _)| from == e) {
                *e = to;
                continue;
            }
            if self.cut.len() + 2 > MAX_PROGRAMS {
                return Err(Error::new(
                    format!(
                        "the rules of this hook need more than {MAX_PROGRAMS} programs \
                         (the kernel follows at most {MAX_PROGRAMS} tail calls): put \
                         values in sets, which are maps, instead of rules"
                    ),
                    span,
                ));
            }
            let ir = self.program(cfg.clone(), *e);
            self.cut.push(ir);
            let to = self.decision(Outcome::Next(self.cut.len() as u32 - 1), None, None);
            done.push((*e, to));
            *e = to;
        }
        Ok(out)
    }

    /// A whole program of `cfg`: the prologue, then `body`.
    fn program(&mut self, cfg: Cfg, body: Edge) -> Ir {
        let outer = std::mem::replace(&mut self.cfg, cfg);
        let entry = self.prologue(body, Edge::Verdict(Verdict(0)));
        let cfg = std::mem::replace(&mut self.cfg, outer);
        let (blocks, entry) = cfg.finish(entry);
        let mut ir = self.ir.clone();
        ir.blocks = blocks;
        ir.entry = Some(entry);
        pktmatch::opt::optimize(&mut ir);
        ir
    }

    /// A chain's rules: `ctx.ret` after its last rule and at `return`.
    fn chain(&mut self, c: ChainId, ctx: ChainCtx) -> Result<Edge, Error> {
        let mut next = ctx.ret;
        let rules = &self.rs.chains[c].rules;
        let mut todo = self.pieces(rules);
        while let Some(piece) = todo.pop() {
            let Some((e, i)) = self.piece(rules, piece, &mut todo, next, ctx)? else {
                continue;
            };
            next = e;
            let r = rules[i];
            if self.cfg.len() > MAX_BLOCKS {
                return Err(Error::new(
                    format!(
                        "the ruleset needs more than {MAX_BLOCKS} tests in one program: \
                         too many jumps to the same chains"
                    ),
                    self.rs.rules[r].span,
                ));
            }
        }
        Ok(next)
    }

    /// A piece of `rules` (the last of `todo`, taken off it), going to
    /// `next` when it ends without a verdict: a rule, or a run as a
    /// classifier; its entry and the index of its first rule. A run that
    /// cannot be a classifier goes back on `todo` as its rules (`None`).
    fn piece(
        &mut self,
        rules: &[crate::check::tree::RuleId],
        piece: Piece,
        todo: &mut Vec<Piece>,
        next: Edge,
        ctx: ChainCtx,
    ) -> Result<Option<(Edge, usize)>, Error> {
        match piece {
            Piece::Rule(i) => Ok(Some((self.rule(rules[i], next, ctx)?, i))),
            Piece::Run(run) => match self.classifier(&rules[run.clone()], next, ctx)? {
                Some(e) => Ok(Some((e, run.start))),
                None => {
                    todo.extend(run.map(Piece::Rule));
                    Ok(None)
                }
            },
        }
    }

    /// A regular chain `jump`ed or `goto`ed to, returning to `ret`: one
    /// copy per place it returns to.
    fn inline(&mut self, c: ChainId, ctx: ChainCtx) -> Result<Edge, Error> {
        let key = (c, ctx.ret, ctx.accept);
        if let Some(&e) = self.inlined.get(&key) {
            return Ok(e);
        }
        let e = self.chain(c, ctx)?;
        self.inlined.insert(key, e);
        Ok(e)
    }
}

/// Where a chain's verdicts go.
#[derive(Debug, Clone, Copy)]
struct ChainCtx {
    /// `accept`: the next base chain; none in the last, where it is a
    /// decision.
    accept: Option<Edge>,
    /// `return` and the chain's end.
    ret: Edge,
}
