//! libpcap's `or_pullup` and `and_pullup` (optimize.c): in a chain of
//! tests linked by their false edges (an `or`) that all jump to the same
//! place when true, a later test of the value the chain's predecessors
//! already hold moves up, ahead of the first test of another value; the
//! same along true edges for an `and`. `tcp port 80 or tcp port 443` then
//! tests the source port against 80 and 443 before it loads the
//! destination port.
//!
//! This is not only about speed: on a packet cut short between the two
//! ports, the order decides the verdict (a load past the captured bytes
//! rejects), and tcpdump's meaning is the order libpcap's optimiser
//! leaves. So the conditions are libpcap's, one for one: every predecessor
//! of the chain's head tests the same value, every moved-over test jumps
//! to the same place and is dominated by the head. As in libpcap, the
//! pull-ups are the end of a pass of its branch loop ([`crate::jumps`]):
//! they see the dominators of the pass start and the predecessors as the
//! pass's threading left them, both unchanged by the pull-ups themselves.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::jumps::{AValue, PassInfo};
use crate::ir::{Block, BlockId, Edge, EntityRef, Ir};

/// The pull-ups of one pass, at each block in the pass's order; says
/// whether any applied. Leaves the blocks in topological order.
pub(crate) fn pull_ups(ir: &mut Ir, info: &PassInfo, g: &mut Graph) -> bool {
    // Built when a pull-up first needs the predecessors: most filters
    // have no chain and never do.
    g.built = false;
    let mut pulled = false;
    for &b in &info.order {
        // libpcap tries both at each block.
        pulled |= pull(ir, g, info, b, true);
        pulled |= pull(ir, g, info, b, false);
    }
    if pulled {
        let sorted = sort_topologically(ir, g);
        debug_assert!(sorted, "pull-ups that close a loop are undone");
    }
    pulled
}

/// The predecessors of the blocks as a pass's threading left them, and
/// buffers for the pull-ups; reused from pass to pass.
#[derive(Default)]
pub(crate) struct Graph {
    /// Block `i`'s in-edges are `preds[pred_start[i]..pred_start[i + 1]]`,
    /// one per edge (a block whose edges meet there is in twice).
    pred_start: Vec<u32>,
    preds: Vec<BlockId>,
    /// `preds` is up to date for this pass.
    built: bool,
    /// Blocks as they were before a pull-up changed them (to undo it).
    undo: Vec<(BlockId, Block)>,
    /// Buffers of `build`, `reaches_itself` and `sort_topologically`.
    incoming: Vec<u32>,
    order: Vec<usize>,
    new_index: Vec<BlockId>,
    ready: BinaryHeap<Reverse<usize>>,
    old: Vec<Block>,
}

impl Graph {
    /// The in-edges of the blocks from the blocks reached at the pass
    /// start (libpcap's `find_inedges` walks its stale level lists).
    fn build(&mut self, ir: &Ir, info: &PassInfo) {
        let n = ir.blocks.len();
        let edges = |i: usize| {
            let b = ir.blocks[i];
            let to = |e: Edge| match e {
                Edge::Block(j) if info.reached(BlockId::new(i)) => Some(j.index()),
                _ => None,
            };
            [to(b.t), to(b.f)].into_iter().flatten()
        };
        self.pred_start.clear();
        self.pred_start.resize(n + 1, 0);
        for i in 0..n {
            for j in edges(i) {
                self.pred_start[j + 1] += 1;
            }
        }
        for i in 0..n {
            self.pred_start[i + 1] += self.pred_start[i];
        }
        self.preds.clear();
        self.preds
            .resize(self.pred_start[n] as usize, BlockId::new(0));
        // Fill each block's range from its end down.
        let fill = &mut self.incoming;
        fill.clear();
        fill.extend_from_slice(&self.pred_start[1..]);
        for i in 0..n {
            for j in edges(i) {
                fill[j] -= 1;
                self.preds[fill[j] as usize] = BlockId::new(i);
            }
        }
    }

    fn preds_of(&self, b: BlockId) -> &[BlockId] {
        let i = b.index();
        &self.preds[self.pred_start[i] as usize..self.pred_start[i + 1] as usize]
    }
}

/// A block's true and false edges as libpcap's test has them (it tests
/// the negation of some of ours, see `jumps::negated`).
fn lib_edges(ir: &Ir, info: &PassInfo, x: BlockId) -> (Edge, Edge) {
    let b = ir.blocks[x.index()];
    if info.negated(x) {
        (b.f, b.t)
    } else {
        (b.t, b.f)
    }
}

/// Sets a block's edge that libpcap's test takes when true (`jt`) or
/// false.
fn set_lib_edge(ir: &mut Ir, info: &PassInfo, x: BlockId, jt: bool, e: Edge) {
    let ours_t = jt != info.negated(x);
    let b = &mut ir.blocks[x.index()];
    if ours_t {
        b.t = e;
    } else {
        b.f = e;
    }
}

/// The accumulator value leaving a block (libpcap's `val[A_ATOM]`).
fn tested(info: &PassInfo, b: BlockId) -> Option<AValue> {
    info.avalue(b)
}

/// One pull-up with `b` as the head of an `or` chain (`or`) or an `and`
/// chain; says whether it changed the graph.
fn pull(ir: &mut Ir, g: &mut Graph, info: &PassInfo, b: BlockId, or: bool) -> bool {
    // The edge a chain shares, and the one it continues by.
    let shared = |ir: &Ir, x: BlockId| {
        let (jt, jf) = lib_edges(ir, info, x);
        if or { jt } else { jf }
    };
    let next = |ir: &Ir, x: BlockId| {
        let (jt, jf) = lib_edges(ir, info, x);
        if or { jf } else { jt }
    };
    // Changes a block's chain edge, noting the block for an undo.
    let set_next = |ir: &mut Ir, undo: &mut Vec<(BlockId, Block)>, x: BlockId, e: Edge| {
        undo.push((x, ir.blocks[x.index()]));
        set_lib_edge(ir, info, x, !or, e);
    };
    // Cheap first: the head and the test after it share the edge.
    match next(ir, b) {
        Edge::Block(c) if shared(ir, c) == shared(ir, b) => {}
        _ => return false,
    }
    // Every predecessor of the head holds the same value. The graph is
    // the one threading left: no pull-up has happened yet this pass when
    // it is first built.
    if !g.built {
        g.build(ir, info);
        g.built = true;
    }
    let Some((&first, rest)) = g.preds_of(b).split_first() else {
        return false;
    };
    let Some(val) = tested(info, first) else {
        return false;
    };
    if rest.iter().any(|&p| tested(info, p) != Some(val)) {
        return false;
    }
    let target = shared(ir, b);
    let in_chain = |ir: &Ir, x: BlockId| shared(ir, x) == target && info.dominates(b, x);
    // Down the chain to the first test of another value.
    let (mut diff, mut above) = (b, None);
    loop {
        if !in_chain(ir, diff) {
            return false;
        }
        if tested(info, diff) != Some(val) {
            break;
        }
        let Edge::Block(n) = next(ir, diff) else {
            return false;
        };
        above = Some(diff);
        diff = n;
    }
    // Further down, the next test of the value: it moves up.
    let mut before = diff;
    let pulled = loop {
        let Edge::Block(s) = next(ir, before) else {
            return false;
        };
        if !in_chain(ir, s) {
            return false;
        }
        if tested(info, s) == Some(val) {
            break s;
        }
        before = s;
    };
    let mut undo = std::mem::take(&mut g.undo);
    undo.clear();
    let after = next(ir, pulled);
    set_next(ir, &mut undo, before, after);
    set_next(ir, &mut undo, pulled, Edge::Block(diff));
    match above {
        Some(a) => set_next(ir, &mut undo, a, Edge::Block(pulled)),
        // At the head: the edges into it (as the pass's threading left
        // them) now go to the pulled test. libpcap takes an in-edge for
        // the false edge when it is not the true one.
        None => {
            for k in 0..g.preds_of(b).len() {
                let p = g.preds_of(b)[k];
                undo.push((p, ir.blocks[p.index()]));
                let jt = lib_edges(ir, info, p).0 == Edge::Block(b);
                set_lib_edge(ir, info, p, jt, Edge::Block(pulled));
            }
        }
    }
    // The move may close a loop (another edge into the pulled test from
    // below the head; libpcap does not check): then it is undone.
    let looped = reaches_itself(ir, g, pulled);
    if looped {
        for &(i, blk) in undo.iter().rev() {
            ir.blocks[i.index()] = blk;
        }
    }
    g.undo = undo;
    !looped
}

/// Whether block `x` lies on a loop. Every loop a pull-up closes goes
/// through the pulled test (its new edges all start or end there, but
/// the one that skips it, which cannot close a loop alone), so looking
/// below it suffices: its descendants, not the whole graph.
fn reaches_itself(ir: &Ir, g: &mut Graph, x: BlockId) -> bool {
    let x = x.index();
    let seen = &mut g.incoming;
    seen.clear();
    seen.resize(ir.blocks.len(), 0);
    let stack = &mut g.order;
    stack.clear();
    stack.push(x);
    while let Some(i) = stack.pop() {
        let b = ir.blocks[i];
        for e in [b.t, b.f] {
            if let Edge::Block(j) = e {
                let j = j.index();
                if j == x {
                    return true;
                }
                if seen[j] == 0 {
                    seen[j] = 1;
                    stack.push(j);
                }
            }
        }
    }
    false
}

/// Renumbers the blocks in a topological order: the present order where
/// the edges allow, except that a block whose last edge in comes from the
/// block just placed follows it (the code generator falls through there
/// rather than jumping; jumps must go forward). False, and nothing
/// changed, when the graph has a loop.
fn sort_topologically(ir: &mut Ir, g: &mut Graph) -> bool {
    let n = ir.blocks.len();
    let incoming = &mut g.incoming;
    incoming.clear();
    incoming.resize(n, 0);
    for b in &ir.blocks {
        for e in [b.t, b.f] {
            if let Edge::Block(j) = e {
                incoming[j.index()] += 1;
            }
        }
    }
    let ready = &mut g.ready;
    ready.clear();
    ready.extend((0..n).filter(|&i| incoming[i] == 0).map(Reverse));
    let order = &mut g.order;
    order.clear();
    let mut follow = None;
    loop {
        let i = match follow.take() {
            Some(i) => i,
            None => match ready.pop() {
                Some(Reverse(i)) => i,
                None => break,
            },
        };
        order.push(i);
        let b = ir.blocks[i];
        // The false edge first: it is where a test falls through (the
        // true one when the false edge goes to a verdict).
        for e in [b.f, b.t] {
            if let Edge::Block(j) = e {
                let j = j.index();
                incoming[j] -= 1;
                if incoming[j] == 0 {
                    if follow.is_none() {
                        follow = Some(j);
                    } else {
                        ready.push(Reverse(j));
                    }
                }
            }
        }
    }
    if order.len() != n {
        return false;
    }
    let new_index = &mut g.new_index;
    new_index.clear();
    new_index.resize(n, BlockId::new(0));
    for (k, &i) in order.iter().enumerate() {
        new_index[i] = BlockId::new(k);
    }
    let map = |e: Edge| match e {
        Edge::Block(i) => Edge::Block(new_index[i.index()]),
        e => e,
    };
    g.old.clear();
    g.old.extend_from_slice(&ir.blocks);
    for (k, &i) in order.iter().enumerate() {
        let mut b = g.old[i];
        b.t = map(b.t);
        b.f = map(b.f);
        ir.blocks[k] = b;
    }
    ir.entry = ir.entry.map(map);
    true
}
