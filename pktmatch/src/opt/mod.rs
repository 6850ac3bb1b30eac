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
//! run, so the passes follow libpcap's optimiser, not just soundness:
//! its branch loop (module `jumps`: threading by `fold_edge` over the
//! edge dominators of the pass start, then the pull-ups of module
//! `pullup`), equal blocks merged only after it
//! (`intern_blocks`), and the first test's loads kept (`opt_root`).

mod jumps;
mod pullup;

use std::collections::HashMap;

use crate::ir::{Block, Cond, Edge, FxBuild, Ir, Val, ValNode};
use jumps::{Passes, branch_loop, can_reject, constant};

/// Per-block working state of the passes.
#[derive(Clone, Copy)]
struct Slot {
    /// Where an edge to the block really goes (`merge_duplicates`).
    alias: Option<Edge>,
    /// The block's index after compaction, `DEAD` if unreachable
    /// (`compact`).
    index: u32,
}

const DEAD: u32 = u32::MAX;

const FRESH: Slot = Slot {
    alias: None,
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
    // libpcap's branch loop, pull-ups included.
    branch_loop(ir, &mut Passes::default(), &mut |ir| {
        compact(ir, &mut s);
    });
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
    debug_assert_eq!(ir.verify(), Ok(()), "after optimisation");
}

/// libpcap's `opt_root`: while the first test's edges meet, evaluation
/// starts where they go.
fn skip_trivial_root(ir: &mut Ir) {
    while let Some(Edge::Block(i)) = ir.entry {
        let b = ir.blocks[i as usize];
        ir.entry = Some(match constant(ir, b.cond) {
            Some(r) => {
                if r {
                    b.t
                } else {
                    b.f
                }
            }
            None if b.t == b.f && !matches!(b.cond, Cond::Let { .. }) => {
                // Unoptimised, libpcap runs the test's loads.
                if ir.pcap_unoptimized && b.t != Edge::Reject {
                    break;
                }
                b.t
            }
            None => break,
        });
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
