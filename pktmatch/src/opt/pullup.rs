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
use super::walks::{Walk, Walks};
use crate::ir::{Block, BlockId, Edge, EntityRef, Ir};

/// The pull-ups of one pass, at each block in the pass's order; says
/// whether any applied. Leaves the blocks in topological order.
pub(crate) fn pull_ups(ir: &mut Ir, info: &PassInfo, g: &mut Graph) -> bool {
    // Built when a pull-up first needs the predecessors: most filters
    // have no chain and never do.
    g.built = false;
    g.in_degree.clear();
    g.in_degree.resize(ir.blocks.len(), 0);
    for b in &ir.blocks {
        for e in [b.t, b.f] {
            if let Edge::Block(j) = e {
                g.in_degree[j.index()] += 1;
            }
        }
    }
    g.walks.reset(ir.blocks.len());
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
    /// The number of true and false edges into each block, as the
    /// pull-ups leave them.
    in_degree: Vec<u32>,
    /// `reaches_itself` marks block `i` seen with `seen[i] == stamp`, so
    /// that a search need not clear marks all over the graph.
    seen: Vec<u32>,
    stamp: u32,
    /// Buffers of `build`, `reaches_itself` and `sort_topologically`.
    incoming: Vec<u32>,
    order: Vec<usize>,
    new_index: Vec<BlockId>,
    ready: BinaryHeap<Reverse<usize>>,
    old: Vec<Block>,
    /// The walks of the pass, for the heads above.
    walks: Walks,
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
    let kind = usize::from(!or);
    // The walk the head below left, if this head passes the checks it
    // would pass first in a walk of its own (see `walks`).
    let resumed = match next(ir, b) {
        Edge::Block(c)
            if in_chain(ir, b) && tested(info, b) == Some(val) && info.dominates(b, c) =>
        {
            g.walks.resume(kind, b, c, val, target)
        }
        _ => None,
    };
    let (id, mut walk) = resumed.unwrap_or_else(|| {
        let id = g.walks.start();
        (
            id,
            Walk::Same {
                diff: b,
                above: None,
            },
        )
    });
    // Down the chain to the first test of another value, then further
    // down to the next test of the value: it moves up.
    let found = loop {
        match walk {
            Walk::Same { diff, above } => {
                if !in_chain(ir, diff) {
                    break None;
                }
                g.walks.passed(kind, id, diff);
                if tested(info, diff) != Some(val) {
                    walk = Walk::Other {
                        diff,
                        above,
                        before: diff,
                    };
                    continue;
                }
                let Edge::Block(n) = next(ir, diff) else {
                    break None;
                };
                walk = Walk::Same {
                    diff: n,
                    above: Some(diff),
                };
            }
            Walk::Other {
                diff,
                above,
                before,
            } => {
                let Edge::Block(s) = next(ir, before) else {
                    break None;
                };
                if !in_chain(ir, s) {
                    break None;
                }
                g.walks.passed(kind, id, s);
                if tested(info, s) == Some(val) {
                    break Some((diff, above, before, s));
                }
                walk = Walk::Other {
                    diff,
                    above,
                    before: s,
                };
            }
        }
    };
    let Some((diff, above, before, pulled)) = found else {
        // The head above stops where this one did, or goes on from there.
        g.walks.leave(kind, b, id, walk, val, target);
        return false;
    };
    g.walks.moving(kind, id);
    let moved = move_up(ir, g, info, b, or, (diff, above, before, pulled));
    g.walks.moved();
    // The head above finds the pulled test among those of the value,
    // and goes on from where this walk found it. A move at the head
    // changed edges into it, which walks do not follow: no walk to leave.
    match (moved, above) {
        (false, _) => g.walks.leave(kind, b, id, walk, val, target),
        (true, Some(_)) => {
            let walk = Walk::Other {
                diff,
                above: Some(pulled),
                before,
            };
            g.walks.leave(kind, b, id, walk, val, target);
        }
        (true, None) => {}
    }
    moved
}

/// Moves test `pulled` up to just above `diff` (below `above`, or at the
/// head `b` of the chain: in its place), `before` now going past it;
/// says whether it did (a move that closes a loop is undone).
fn move_up(
    ir: &mut Ir,
    g: &mut Graph,
    info: &PassInfo,
    b: BlockId,
    or: bool,
    (diff, above, before, pulled): (BlockId, Option<BlockId>, BlockId, BlockId),
) -> bool {
    let next = |ir: &Ir, x: BlockId| {
        let (jt, jf) = lib_edges(ir, info, x);
        if or { jf } else { jt }
    };
    // Changes a block's chain edge, noting the block for an undo.
    let set_next = |ir: &mut Ir, g: &mut Graph, x: BlockId, e: Edge| {
        g.set_edge(ir, info, x, !or, e);
    };
    g.undo.clear();
    let after = next(ir, pulled);
    set_next(ir, g, before, after);
    set_next(ir, g, pulled, Edge::Block(diff));
    // The edges now into the pulled test that the move put there, and
    // whether each replaced an edge into the head or the test above
    // `diff`, from which `diff` leads down to the pulled test.
    let (placed, from_above) = match above {
        Some(a) => {
            set_next(ir, g, a, Edge::Block(pulled));
            (1, true)
        }
        // At the head: the edges into it (as the pass's threading left
        // them) now go to the pulled test. libpcap takes an in-edge for
        // the false edge when it is not the true one.
        None => {
            let mut fresh = true;
            for k in 0..g.preds_of(b).len() {
                let p = g.preds_of(b)[k];
                let (jt, jf) = lib_edges(ir, info, p);
                // Threading or a pull-up of this pass may have moved it.
                fresh &= jt == Edge::Block(b) || jf == Edge::Block(b);
                g.set_edge(ir, info, p, jt == Edge::Block(b), Edge::Block(pulled));
            }
            (g.preds_of(b).len(), fresh)
        }
    };
    // The move may close a loop (another edge into the pulled test from
    // below the head; libpcap does not check): then it is undone. A loop
    // goes through the pulled test and enters it by an edge that comes
    // from below `diff`. The edges the move put there come from above
    // it (the graph had no loop), so with no other edge in, there is no
    // loop, and no need to look.
    let looped = !(from_above && g.in_degree[pulled.index()] as usize == placed)
        && reaches_itself(ir, g, pulled);
    if looped {
        for k in (0..g.undo.len()).rev() {
            let (i, blk) = g.undo[k];
            g.replace(ir, i, blk);
        }
    }
    !looped
}

impl Graph {
    /// Sets block `x`'s edge that libpcap's test takes when true (`jt`)
    /// or false, noting the block for an undo.
    fn set_edge(&mut self, ir: &mut Ir, info: &PassInfo, x: BlockId, jt: bool, e: Edge) {
        let old = ir.blocks[x.index()];
        self.undo.push((x, old));
        let mut new = old;
        if jt != info.negated(x) {
            new.t = e;
        } else {
            new.f = e;
        }
        self.replace(ir, x, new);
    }

    /// Replaces block `x` by `new`, keeping `in_degree` up to date (and
    /// dropping the walks that passed it).
    fn replace(&mut self, ir: &mut Ir, x: BlockId, new: Block) {
        self.walks.changed(x);
        let old = &mut ir.blocks[x.index()];
        for (from, to) in [(old.t, new.t), (old.f, new.f)] {
            if let Edge::Block(j) = from {
                self.in_degree[j.index()] -= 1;
            }
            if let Edge::Block(j) = to {
                self.in_degree[j.index()] += 1;
            }
        }
        *old = new;
    }
}

/// Whether block `x` lies on a loop. Every loop a pull-up closes goes
/// through the pulled test (its new edges all start or end there, but
/// the one that skips it, which cannot close a loop alone), so looking
/// below it suffices: its descendants, not the whole graph.
fn reaches_itself(ir: &Ir, g: &mut Graph, x: BlockId) -> bool {
    let x = x.index();
    let seen = &mut g.seen;
    seen.resize(ir.blocks.len(), 0);
    g.stamp = g.stamp.wrapping_add(1);
    if g.stamp == 0 {
        // Wrapped: marks of old searches could pass for this one's.
        seen.fill(0);
        g.stamp = 1;
    }
    let stamp = g.stamp;
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
                if seen[j] != stamp {
                    seen[j] = stamp;
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
