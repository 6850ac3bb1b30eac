//! The optimiser: jump threading, folding of constant tests, removal of
//! tests whose edges meet, and dead block removal.
//!
//! Soundness with truncated packets: a test may be skipped when its
//! outcome is implied by an earlier test *on the same value* along the
//! path (that value was loaded successfully there, so loading it again
//! cannot reject). Static knowledge alone (e.g. a byte is at most 255)
//! never removes a test, since the test's loads could reject the packet.
//! Tests whose two edges go to the same place are removed with their
//! loads, as libpcap's optimiser does (not when libpcap leaves the filter
//! unoptimised, see [`Ir::pcap_unoptimized`]). `Let` blocks (variable
//! assignments) are never skipped: what follows may read the variable.
//!
//! Exactness with truncated packets: which tests go decides which loads
//! run, so the passes follow libpcap's optimiser, not just soundness.
//! Threading infers only what its `fold_edge` infers, relations and
//! primitives are kept apart as its X and K comparisons are, the first
//! test's loads stay (`opt_root`), and the pull-ups reorder chains
//! as its `or_pullup`/`and_pullup` do.

use std::collections::HashMap;

use crate::ir::{BinOp, Block, CmpOp, Cond, Edge, FxBuild, Ir, Val, ValNode};

/// What a taken edge says about a value: `val op k` is `holds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fact {
    val: Val,
    op: CmpOp,
    k: u32,
    holds: bool,
    /// From a relation's test (see [`Cond::Cmp`]).
    relation: bool,
}

/// Per-block working state of the passes.
#[derive(Clone, Copy)]
struct Slot {
    /// Where an edge to the block really goes (`skip_trivial`,
    /// `merge_duplicates`).
    alias: Option<Edge>,
    /// The facts that hold on every path to the block, as a range of
    /// `Scratch::arena`; `None` while no path is known (`thread`).
    known: Option<(u32, u32)>,
    /// The block's index after compaction, `DEAD` if unreachable
    /// (`compact`).
    index: u32,
}

const DEAD: u32 = u32::MAX;

const FRESH: Slot = Slot {
    alias: None,
    known: None,
    index: DEAD,
};

/// Up to this many blocks, `merge_duplicates` looks for an equal block
/// by scanning (cheaper than building a hash map); past it, the scans
/// (quadratic, every round) cost more than the map.
const SCAN_MAX: usize = 16;

/// Buffers the passes reuse from round to round, so that a round
/// allocates nothing once they have grown.
#[derive(Default)]
struct Scratch {
    slots: Vec<Slot>,
    /// Storage of the `known` fact lists, and at its end the facts along
    /// the path being threaded.
    arena: Vec<Fact>,
    /// The blocks kept so far by `merge_duplicates`, on large graphs.
    seen: HashMap<(Cond, Edge, Edge), u32, FxBuild>,
}

impl Scratch {
    /// `n` fresh slots.
    fn reset(&mut self, n: usize) {
        self.slots.clear();
        self.slots.resize(n, FRESH);
    }
}

/// Optimises `ir` in place.
pub fn optimize(ir: &mut Ir) {
    drop_dead_lets(ir);
    let root = match ir.entry {
        Some(Edge::Block(i)) => Some(ir.blocks[i as usize]),
        _ => None,
    };
    let mut s = Scratch::default();
    // libpcap's optimisation loops, then (when they moved branches) again
    // on what the pull-ups opened up.
    rounds(ir, &mut s);
    if !ir.pcap_unoptimized && crate::pullup::pull_up(ir) {
        rounds(ir, &mut s);
    }
    // libpcap merges equal blocks only after its loops (`intern_blocks`):
    // a test whose two edges meet through a merge stays, with its loads,
    // except at the root (`opt_root`), whose loads stay all the same.
    if merge_duplicates(ir, &mut s) {
        compact(ir, &mut s);
    }
    skip_trivial_root(ir);
    compact(ir, &mut s);
    if let Some(root) = root {
        keep_root_loads(ir, root);
    }
}

/// The passes in turn, at most four rounds: every pass says whether it
/// changed an edge, the entry or the block list; once the last three
/// passes (one of each) changed nothing, the IR is a fixed point of them
/// all, as at the end of a round without change.
fn rounds(ir: &mut Ir, s: &mut Scratch) {
    type Pass = fn(&mut Ir, &mut Scratch) -> bool;
    const PASSES: [Pass; 3] = [skip_trivial, thread, compact];
    let mut unchanged = 0;
    for pass in PASSES.iter().cycle().take(4 * PASSES.len()) {
        if pass(ir, s) {
            unchanged = 0;
        } else {
            unchanged += 1;
            if unchanged == PASSES.len() {
                break;
            }
        }
    }
}

/// libpcap's `opt_root`: while the first test's edges meet, evaluation
/// starts where they go.
fn skip_trivial_root(ir: &mut Ir) {
    if ir.pcap_unoptimized {
        return;
    }
    while let Some(Edge::Block(i)) = ir.entry {
        let b = ir.blocks[i as usize];
        if b.t != b.f || matches!(b.cond, Cond::Let { .. }) {
            break;
        }
        ir.entry = Some(b.t);
    }
}

/// libpcap's optimiser never drops the loads of the first test: when its
/// branch goes (both edges meet), `opt_root` moves the test's statements
/// into the new first block. So if the first test is gone but the filter
/// still tests something, its loads come back as a test whose edges
/// meet, which the code generator keeps for its loads.
fn keep_root_loads(ir: &mut Ir, root: Block) {
    let Some(Edge::Block(entry)) = ir.entry else {
        return;
    };
    let loads = match root.cond {
        Cond::Cmp { a, b, .. } => can_reject(ir, a) || can_reject(ir, b),
        Cond::ProtoChain { .. } | Cond::Let { .. } => false,
    };
    if !loads || ir.blocks[entry as usize].cond == root.cond {
        return;
    }
    let shift = |e: Edge| match e {
        Edge::Block(i) => Edge::Block(i + 1),
        e => e,
    };
    for b in &mut ir.blocks {
        b.t = shift(b.t);
        b.f = shift(b.f);
    }
    let next = shift(Edge::Block(entry));
    ir.blocks.insert(
        0,
        Block {
            t: next,
            f: next,
            ..root
        },
    );
    ir.entry = Some(Edge::Block(0));
}

fn fact_of(ir: &Ir, cond: Cond, holds: bool) -> Option<Fact> {
    match cond {
        Cond::Cmp { a, op, b, relation } => ir.const_of(b).map(|k| Fact {
            val: a,
            op,
            k,
            holds,
            relation,
        }),
        Cond::ProtoChain { .. } | Cond::Let { .. } => None,
    }
}

/// The outcome of `cond` when `facts` hold, if they decide it.
fn decide(ir: &Ir, facts: &[Fact], cond: Cond) -> Option<bool> {
    let Cond::Cmp { a, op, b, relation } = cond else {
        return None;
    };
    if let (Some(x), Some(y)) = (ir.const_of(a), ir.const_of(b)) {
        return Some(op.eval(x, y));
    }
    let k = ir.const_of(b)?;
    // libpcap's `fold_edge`, no more: the same test has the same outcome,
    // and a value equal to one constant differs from every other, for
    // tests against a constant (a relation's test compares with X, which
    // fold_edge leaves alone, and the two forms never meet). Deeper
    // inferences are sound on their own, but they leave tests whose edges
    // meet where libpcap's do not, and dropping those drops loads libpcap
    // keeps: a packet cut short then gets a different verdict.
    for f in facts
        .iter()
        .filter(|f| f.val == a && f.relation == relation)
    {
        if f.op == op && f.k == k {
            return Some(f.holds);
        }
        if f.op == CmpOp::Eq && f.holds && op == CmpOp::Eq && !relation {
            return Some(false);
        }
    }
    None
}

/// Where an edge goes once blocks are replaced by their aliases.
fn resolve(e: Edge, slots: &[Slot]) -> Edge {
    match e {
        Edge::Block(i) => slots[i as usize].alias.unwrap_or(e),
        e => e,
    }
}

/// Points block `i`'s edges past aliased blocks; returns whether they
/// moved, and the block.
fn set_edges(ir: &mut Ir, i: usize, slots: &[Slot]) -> (bool, crate::ir::Block) {
    let old = ir.blocks[i];
    let mut b = old;
    b.t = resolve(b.t, slots);
    b.f = resolve(b.f, slots);
    ir.blocks[i] = b;
    (b.t != old.t || b.f != old.f, b)
}

/// Points the entry past aliased blocks; says whether it moved.
fn set_entry(ir: &mut Ir, slots: &[Slot]) -> bool {
    let old = ir.entry;
    ir.entry = old.map(|e| resolve(e, slots));
    ir.entry != old
}

/// Resolves edges through tests that are constant or whose edges meet.
fn skip_trivial(ir: &mut Ir, s: &mut Scratch) -> bool {
    let n = ir.blocks.len();
    s.reset(n);
    let mut changed = false;
    for i in (0..n).rev() {
        let (moved, b) = set_edges(ir, i, &s.slots);
        changed |= moved;
        // Unoptimised, libpcap runs every test's loads, and a load out of
        // the packet rejects: only tests that lead to REJECT either way
        // may go then.
        if b.t == b.f && (b.t == Edge::Reject || !ir.pcap_unoptimized) {
            s.slots[i].alias = Some(b.t);
        } else if let Some(r) = decide(ir, &[], b.cond) {
            s.slots[i].alias = Some(if r { b.t } else { b.f });
        }
    }
    changed | set_entry(ir, &s.slots)
}

/// Whether evaluating `v` can reject the packet (a load, a division).
fn can_reject(ir: &Ir, v: Val) -> bool {
    match ir.node(v) {
        ValNode::Load { .. } => true,
        ValNode::Bin(op, a, b) => {
            matches!(op, BinOp::Div | BinOp::Mod) || can_reject(ir, a) || can_reject(ir, b)
        }
        ValNode::Neg(a) => can_reject(ir, a),
        _ => false,
    }
}

/// The variables `v` reads, as a bit set.
fn reads(ir: &Ir, v: Val) -> u64 {
    match ir.node(v) {
        ValNode::Var(n) => 1u64.checked_shl(n).unwrap_or(0),
        ValNode::Load { off: Some(o), .. } | ValNode::Neg(o) => reads(ir, o),
        ValNode::Bin(_, a, b) => reads(ir, a) | reads(ir, b),
        _ => 0,
    }
}

/// Skips assignments to variables nothing reads, when computing the value
/// cannot reject (e.g. the inner offsets after a trailing `geneve`).
fn drop_dead_lets(ir: &mut Ir) {
    if !ir.blocks.iter().any(|b| matches!(b.cond, Cond::Let { .. })) {
        return;
    }
    let read = ir.blocks.iter().fold(0u64, |acc, b| {
        acc | match b.cond {
            Cond::Cmp { a, b, .. } => reads(ir, a) | reads(ir, b),
            Cond::Let { val, .. } => reads(ir, val),
            Cond::ProtoChain { .. } => 0,
        }
    });
    let n = ir.blocks.len();
    let mut alias: Vec<Option<Edge>> = vec![None; n];
    let res = |e: Edge, alias: &[Option<Edge>]| match e {
        Edge::Block(i) => alias[i as usize].unwrap_or(e),
        e => e,
    };
    for i in (0..n).rev() {
        let mut b = ir.blocks[i];
        b.t = res(b.t, &alias);
        b.f = res(b.f, &alias);
        ir.blocks[i] = b;
        if let Cond::Let { var, val } = b.cond
            && read & 1u64.checked_shl(var).unwrap_or(0) == 0
            && !can_reject(ir, val)
        {
            alias[i] = Some(b.t);
        }
    }
    if let Some(e) = ir.entry {
        ir.entry = Some(res(e, &alias));
    }
}

/// Redirects each edge past the tests its path already decides.
fn thread(ir: &mut Ir, s: &mut Scratch) -> bool {
    let n = ir.blocks.len();
    if n < 2 {
        // No test lies beyond another.
        return false;
    }
    s.reset(n);
    let Scratch { slots, arena, .. } = s;
    arena.clear();
    // Room for a few facts a block up front: growing step by step costs
    // more than the spare room.
    arena.reserve(4 * n);
    if let Some(Edge::Block(i)) = ir.entry {
        slots[i as usize].known = Some((0, 0));
    }
    let mut changed = false;
    for i in 0..n {
        let Some((start, len)) = slots[i].known else {
            continue;
        };
        let (start, len) = (start as usize, len as usize);
        let b = ir.blocks[i];
        let mut out = [b.t, b.f];
        for (slot, holds) in out.iter_mut().zip([true, false]) {
            // The facts along this path, at the end of the arena: they
            // stay there as the target's when it has none yet.
            let path = arena.len();
            arena.extend_from_within(start..start + len);
            arena.extend(fact_of(ir, b.cond, holds));
            let mut target = *slot;
            while let Edge::Block(j) = target {
                let nb = ir.blocks[j as usize];
                let Some(r) = decide(ir, &arena[path..], nb.cond) else {
                    break;
                };
                arena.extend(fact_of(ir, nb.cond, r));
                target = if r { nb.t } else { nb.f };
            }
            *slot = target;
            // Blocks only jump forward, so `j > i` and its facts are
            // stored apart from block `i`'s, before this path's.
            let mut keep_path = false;
            if let Edge::Block(j) = target {
                let j = j as usize;
                slots[j].known = Some(match slots[j].known {
                    None => {
                        keep_path = true;
                        (path as u32, (arena.len() - path) as u32)
                    }
                    Some((at, len)) => {
                        // Keep the facts that also hold on this path.
                        let (at, len) = (at as usize, len as usize);
                        let mut kept = at;
                        for r in at..at + len {
                            let f = arena[r];
                            if arena[path..].contains(&f) {
                                arena[kept] = f;
                                kept += 1;
                            }
                        }
                        (at as u32, (kept - at) as u32)
                    }
                });
            }
            if !keep_path {
                arena.truncate(path);
            }
        }
        changed |= out != [b.t, b.f];
        ir.blocks[i].t = out[0];
        ir.blocks[i].f = out[1];
    }
    changed
}

/// Merges blocks that make the same test with the same successors (the
/// port tests that `port 53` repeats for tcp, udp and sctp, over IPv4
/// and IPv6): they behave alike on every path, so one serves all.
/// Blocks only jump forward, so scanning backwards sees successors merged
/// before their predecessors, and the kept (later) copy stays after every
/// block that now jumps to it.
fn merge_duplicates(ir: &mut Ir, s: &mut Scratch) -> bool {
    let n = ir.blocks.len();
    if n < 2 {
        // Nothing to merge with, and no alias to resolve.
        return false;
    }
    s.reset(n);
    s.seen.clear();
    if n > SCAN_MAX {
        // At its final size at once: growing rehashes.
        s.seen.reserve(n);
    }
    let mut changed = false;
    for i in (0..n).rev() {
        let (moved, b) = set_edges(ir, i, &s.slots);
        changed |= moved;
        let key = (b.cond, b.t, b.f);
        // At most one later block with this key is kept (the others are
        // aliases of it): that is the one to merge into.
        let kept = if n <= SCAN_MAX {
            (i + 1..n)
                .find(|&j| {
                    let o = ir.blocks[j];
                    s.slots[j].alias.is_none() && (o.cond, o.t, o.f) == key
                })
                .map(|j| j as u32)
        } else {
            match s.seen.entry(key) {
                std::collections::hash_map::Entry::Occupied(kept) => Some(*kept.get()),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(i as u32);
                    None
                }
            }
        };
        if let Some(k) = kept {
            s.slots[i].alias = Some(Edge::Block(k));
        }
    }
    changed | set_entry(ir, &s.slots)
}

/// Drops unreachable blocks, keeping the order.
fn compact(ir: &mut Ir, s: &mut Scratch) -> bool {
    let n = ir.blocks.len();
    s.reset(n);
    let slots = &mut s.slots;
    // Mark the live blocks (index 0), then number them.
    if let Some(Edge::Block(i)) = ir.entry {
        slots[i as usize].index = 0;
    }
    for i in 0..n {
        if slots[i].index != DEAD {
            for e in [ir.blocks[i].t, ir.blocks[i].f] {
                if let Edge::Block(j) = e {
                    slots[j as usize].index = 0;
                }
            }
        }
    }
    let mut next = 0u32;
    for slot in slots.iter_mut() {
        if slot.index != DEAD {
            slot.index = next;
            next += 1;
        }
    }
    if next as usize == n {
        // All live: the numbering stays as it is.
        return false;
    }
    let map = |e: Edge| match e {
        Edge::Block(i) => Edge::Block(slots[i as usize].index),
        e => e,
    };
    let mut kept = 0;
    for (i, slot) in slots.iter().enumerate() {
        if slot.index != DEAD {
            let mut b = ir.blocks[i];
            b.t = map(b.t);
            b.f = map(b.f);
            ir.blocks[kept] = b;
            kept += 1;
        }
    }
    ir.blocks.truncate(kept);
    ir.entry = ir.entry.map(map);
    true
}

#[cfg(test)]
mod tests {
    use crate::ir::{Edge, Ir, ValNode};
    use crate::{LinkType, LowerOptions, Tables, build_ir, parse};

    fn ir(expr: &str) -> Ir {
        let t = Tables::new();
        let f = parse(expr, LinkType::En10mb, &t).unwrap();
        let o = LowerOptions {
            link: LinkType::En10mb,
            vlan_meta: false,
            offline: false,
            fixed_direction: Some(false),
            netmask: None,
        };
        build_ir(&f, &o).unwrap().0
    }

    /// Blocks that compare the EtherType with `v`.
    fn ethertype_tests(ir: &Ir, v: u32) -> usize {
        ir.blocks
            .iter()
            .filter(|b| match b.cond {
                crate::ir::Cond::Cmp { a, b, .. } => {
                    ir.node(a)
                        == (ValNode::Load {
                            off: None,
                            k: 12,
                            size: 2,
                        })
                        && ir.const_of(b) == Some(v)
                }
                _ => false,
            })
            .count()
    }

    /// Blocks that compare any value with the constant `k`.
    fn tests_against(ir: &Ir, k: u32) -> usize {
        ir.blocks
            .iter()
            .filter(
                |b| matches!(b.cond, crate::ir::Cond::Cmp { b, .. } if ir.const_of(b) == Some(k)),
            )
            .count()
    }

    #[test]
    fn identical_port_tests_are_merged() {
        // `port 53` tests the source and destination port after tcp, udp
        // and sctp, over IPv4 (offset from the header length) and IPv6
        // (fixed offset): 12 tests, of which 4 differ.
        assert_eq!(tests_against(&ir("port 53"), 53), 4);
    }

    #[test]
    fn identical_port_tests_are_merged_in_large_graphs() {
        // Over `SCAN_MAX` blocks, duplicates are found by hashing.
        let big = ir("port 53 or port 54 or port 55 or port 56");
        assert!(big.blocks.len() > 20);
        for k in 53..=56 {
            assert_eq!(tests_against(&big, k), 4, "port {k}");
        }
    }

    #[test]
    fn shared_header_checks_are_tested_once_per_path() {
        // Unoptimised there are two IPv4 and two IPv6 EtherType tests.
        let ir = ir("tcp port 80 or tcp port 443");
        assert_eq!(ethertype_tests(&ir, 0x0800), 1);
        assert_eq!(ethertype_tests(&ir, 0x86dd), 1);
    }

    #[test]
    fn contradictions_reject_all() {
        let ir = ir("ip and not ip");
        assert!(ir.blocks.is_empty());
        assert_eq!(ir.entry, Some(Edge::Reject));
    }

    #[test]
    fn tests_with_meeting_edges_go() {
        let ir = ir("ip or not ip");
        assert_eq!(ir.entry, Some(Edge::Accept));
    }
}
