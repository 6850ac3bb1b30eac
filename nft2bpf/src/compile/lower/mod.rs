//! Lowering: a checked ruleset's base chains for one hook and device to
//! one packet-match IR with nft's meaning ([`Semantics::Exact`]: a load
//! that does not fit makes its match false, and the next rule runs).
//!
//! The program runs as nft runs the hook: the packet's facts first
//! (`pktinfo`), then each base chain in priority order, its rules in
//! order; a rule's statements in order (`rule`): a match that fails
//! ends the rule, an action (counter, quota, limit, log) is a
//! `Cond::Act` block, a verdict ends it; a `pcap "EXPR"` match is the
//! filter's own graph (`pcap`), its short reads going to the next rule. `jump` and `goto` inline the
//! chain they name, once per place it returns to; an accept goes on
//! with the next base chain, and what ends the last is a [`Decision`].
//!
//! The graph is built backwards (`cfg`): the continuation of each piece
//! exists before the piece.

mod cfg;
mod pcap;
mod pktinfo;
mod rule;
mod sets;
mod test;

use std::collections::HashMap;

use pktmatch::ir::{Edge, Ir, Semantics, Verdict};

use super::actions::Action;
use super::{Attach, Decision, Device, Lowered, Outcome, Slots};
use crate::check::fields::MetaKey;
use crate::check::tree::{ChainId, Key, Policy, Ruleset, Source, Stmt};
use crate::error::Error;
use cfg::Cfg;

pub use pktinfo::IPV6_EXT_HEADERS;
pub use sets::INLINE_ELEMENTS;

/// The variable that holds nft's `skb->len` (for the action code).
pub const LEN_VAR: u32 = pktinfo::var::LEN;

/// The most blocks one program's IR may have: past it, inlining the
/// chains that several rules jump to has blown up.
const MAX_BLOCKS: usize = 1 << 20;

/// The lowering of one program.
pub(super) struct Lower<'r> {
    rs: &'r Ruleset,
    ir: Ir,
    cfg: Cfg,
    hook: Attach,
    device: &'r Device,
    device_mac: Option<[u8; 6]>,
    uses_pkttype: bool,
    decisions: Vec<Decision>,
    actions: Vec<Action>,
    slots: Slots,
    /// The maps of the sets looked up.
    sets: sets::SetMaps,
    /// Chains already lowered, by where they return to.
    inlined: HashMap<(ChainId, Edge, Option<Edge>), Edge>,
    /// The names `pcap "EXPR"` filters look up (this machine's `/etc`
    /// files, as tcpdump reads them), once a filter needs them.
    pcap_names: Option<pcap2bpf::Tables>,
}

/// Lowers the base chains of `ruleset` that hook `attach`'s hook on
/// `device`, in priority order.
pub fn lower(ruleset: &Ruleset, attach: Attach, device: &Device) -> Result<Lowered, Error> {
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
        decisions: vec![Decision::new(Outcome::Accept, None, None)],
        actions: Vec::new(),
        slots: Slots::default(),
        sets: sets::SetMaps::default(),
        inlined: HashMap::new(),
        pcap_names: None,
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
        next = l.base_chain(c, accept)?;
    }
    let unseen = Edge::Verdict(Verdict(0));
    let entry = l.prologue(next, unseen);
    let (blocks, entry) = std::mem::take(&mut l.cfg).finish(entry);
    l.ir.blocks = blocks;
    l.ir.entry = Some(entry);
    pktmatch::opt::optimize(&mut l.ir);
    Ok(Lowered {
        attach,
        device: device.clone(),
        chains,
        ir: l.ir,
        decisions: l.decisions,
        actions: l.actions,
        slots: l.slots,
        set_maps: l.sets.maps,
        len_var: LEN_VAR,
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
        let d = Decision::new(outcome, rule, chain);
        let n = match self.decisions.iter().position(|x| *x == d) {
            Some(n) => n,
            None => {
                self.decisions.push(d);
                self.decisions.len() - 1
            }
        };
        Edge::Verdict(Verdict(n as u32))
    }

    /// A base chain: its rules, then its policy; `accept` is where an
    /// accepted packet goes (the next base chain, or the final accept).
    fn base_chain(&mut self, c: ChainId, accept: Option<Edge>) -> Result<Edge, Error> {
        let base = self.rs.chains[c].base.as_ref().expect("a base chain");
        let policy = match (base.policy, accept) {
            (Policy::Accept, Some(e)) => e,
            (Policy::Accept, None) => self.decision(Outcome::Accept, None, Some(c)),
            (Policy::Drop, _) => self.decision(Outcome::Drop, None, Some(c)),
        };
        let ctx = ChainCtx {
            accept,
            ret: policy,
        };
        self.chain(c, ctx)
    }

    /// A chain's rules: `ctx.ret` after its last rule and at `return`.
    fn chain(&mut self, c: ChainId, ctx: ChainCtx) -> Result<Edge, Error> {
        let mut next = ctx.ret;
        for &r in self.rs.chains[c].rules.iter().rev() {
            next = self.rule(r, next, ctx)?;
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
