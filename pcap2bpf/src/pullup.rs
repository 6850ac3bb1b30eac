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
//! to the same place and is dominated by the head.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::ir::{Block, Cond, Edge, Ir, Val};

/// Bound on pull-ups per filter: libpcap's optimiser gives up after 100
/// passes of moving branches alone; each of its passes pulls up at least
/// once.
const MAX_PULLS: usize = 100;

/// Applies the pull-ups until none applies; says whether any did. Keeps
/// the blocks in topological order.
pub fn pull_up(ir: &mut Ir) -> bool {
    if !has_chain(ir, true) && !has_chain(ir, false) {
        // Nothing to move: skip building the graph (most filters).
        return false;
    }
    let mut g = Graph::default();
    g.build(ir);
    let mut pulls = 0;
    // Like libpcap: sweeps from the blocks nearest the verdicts up, each
    // pull-up followed by fresh dominators, until a sweep moves nothing.
    loop {
        let before = pulls;
        let mut b = ir.blocks.len();
        while b > 0 && pulls < MAX_PULLS {
            b -= 1;
            if pull(ir, &mut g, b, true) || pull(ir, &mut g, b, false) {
                pulls += 1;
                g.build(ir);
                // Renumbering moved blocks: go on from the same place.
                b = b.min(ir.blocks.len());
            }
        }
        if pulls == before || pulls >= MAX_PULLS {
            break;
        }
    }
    pulls > 0
}

/// Whether some test leads to two more tests linked by their `or` chain
/// edge (`or`: false; else true) that share their other edge: what any
/// pull-up needs (a predecessor, the chain's head, and a test below it).
fn has_chain(ir: &Ir, or: bool) -> bool {
    let next = |e: Edge| match e {
        Edge::Block(i) => {
            let b = ir.blocks[i as usize];
            Some(if or { b.f } else { b.t })
        }
        _ => None,
    };
    let shared = |i: u32| {
        let b = ir.blocks[i as usize];
        if or { b.t } else { b.f }
    };
    // The head may be reached by either edge of its predecessor.
    ir.blocks.iter().any(|p| {
        [p.t, p.f].into_iter().any(|e| match e {
            Edge::Block(b) => {
                matches!(next(e), Some(Edge::Block(c)) if shared(b) == shared(c))
            }
            _ => false,
        })
    })
}

/// Predecessors and immediate dominators of the blocks, and buffers for
/// the pull-ups; reused from one pull-up to the next.
#[derive(Default)]
struct Graph {
    /// Block `i`'s predecessors are `preds[pred_start[i]..pred_start[i + 1]]`.
    pred_start: Vec<u32>,
    preds: Vec<u32>,
    /// Immediate dominator of each reachable block (the entry: itself);
    /// `usize::MAX` when unreachable.
    idom: Vec<usize>,
    /// Blocks as they were before a pull-up changed them (to undo it).
    undo: Vec<(usize, Block)>,
    /// Buffers of `build` and `sort_topologically`.
    incoming: Vec<u32>,
    order: Vec<usize>,
    new_index: Vec<u32>,
    ready: BinaryHeap<Reverse<usize>>,
    old: Vec<Block>,
}

impl Graph {
    fn build(&mut self, ir: &Ir) {
        let n = ir.blocks.len();
        // Counting sort of the edges by target (an edge counts once even
        // when both of a block's edges go to the same place).
        let edges = |b: &Block| {
            let t = match b.t {
                Edge::Block(j) => Some(j as usize),
                _ => None,
            };
            let f = match b.f {
                Edge::Block(j) if b.f != b.t => Some(j as usize),
                _ => None,
            };
            [t, f].into_iter().flatten()
        };
        self.pred_start.clear();
        self.pred_start.resize(n + 1, 0);
        for b in &ir.blocks {
            for j in edges(b) {
                self.pred_start[j + 1] += 1;
            }
        }
        for i in 0..n {
            self.pred_start[i + 1] += self.pred_start[i];
        }
        self.preds.clear();
        self.preds.resize(self.pred_start[n] as usize, 0);
        // Fill each block's range from its end down.
        let fill = &mut self.incoming;
        fill.clear();
        fill.extend_from_slice(&self.pred_start[1..]);
        for (i, b) in ir.blocks.iter().enumerate() {
            for j in edges(b) {
                fill[j] -= 1;
                self.preds[fill[j] as usize] = i as u32;
            }
        }
        // Blocks are in topological order: one forward sweep finds every
        // immediate dominator (the nearest common dominator of the
        // predecessors).
        self.idom.clear();
        self.idom.resize(n, usize::MAX);
        if let Some(Edge::Block(e)) = ir.entry {
            self.idom[e as usize] = e as usize;
        }
        for i in 0..n {
            if self.idom[i] == i {
                continue;
            }
            let mut d = usize::MAX;
            for &p in self.preds_of(i) {
                let p = p as usize;
                if self.idom[p] == usize::MAX {
                    continue;
                }
                d = if d == usize::MAX {
                    p
                } else {
                    common_dominator(&self.idom, d, p)
                };
            }
            self.idom[i] = d;
        }
    }

    fn preds_of(&self, i: usize) -> &[u32] {
        &self.preds[self.pred_start[i] as usize..self.pred_start[i + 1] as usize]
    }

    /// Whether every path from the entry to `c` goes through `b`.
    fn dominates(&self, b: usize, mut c: usize) -> bool {
        if self.idom[c] == usize::MAX {
            return false;
        }
        while c > b {
            c = self.idom[c];
        }
        c == b
    }
}

fn common_dominator(idom: &[usize], mut a: usize, mut b: usize) -> usize {
    while a != b {
        while a > b {
            a = idom[a];
        }
        while b > a {
            b = idom[b];
        }
    }
    a
}

/// The value a block's test looks at (libpcap's accumulator leaving it).
fn tested(ir: &Ir, b: usize) -> Option<Val> {
    match ir.blocks[b].cond {
        Cond::Cmp { a, .. } => Some(a),
        Cond::ProtoChain { .. } | Cond::Let { .. } => None,
    }
}

/// One pull-up with `b` as the head of an `or` chain (`or`) or an `and`
/// chain; says whether it changed the graph.
fn pull(ir: &mut Ir, g: &mut Graph, b: usize, or: bool) -> bool {
    // The edge a chain shares, and the one it continues by.
    let shared = |ir: &Ir, x: usize| {
        let blk = ir.blocks[x];
        if or { blk.t } else { blk.f }
    };
    let next = |ir: &Ir, x: usize| {
        let blk = ir.blocks[x];
        if or { blk.f } else { blk.t }
    };
    // Changes a block's chain edge, noting the block for an undo.
    let set_next = |ir: &mut Ir, undo: &mut Vec<(usize, Block)>, x: usize, e: Edge| {
        undo.push((x, ir.blocks[x]));
        let blk = &mut ir.blocks[x];
        if or { blk.f = e } else { blk.t = e }
    };
    // Cheap first: the head and the test after it share the edge.
    match next(ir, b) {
        Edge::Block(c) if shared(ir, c as usize) == shared(ir, b) => {}
        _ => return false,
    }
    // Every predecessor of the head holds the same value.
    let Some((&first, rest)) = g.preds_of(b).split_first() else {
        return false;
    };
    let Some(val) = tested(ir, first as usize) else {
        return false;
    };
    if rest.iter().any(|&p| tested(ir, p as usize) != Some(val)) {
        return false;
    }
    let target = shared(ir, b);
    let in_chain = |ir: &Ir, x: usize| shared(ir, x) == target && g.dominates(b, x);
    // Down the chain to the first test of another value.
    let (mut diff, mut above) = (b, None);
    loop {
        if !in_chain(ir, diff) {
            return false;
        }
        if tested(ir, diff) != Some(val) {
            break;
        }
        let Edge::Block(n) = next(ir, diff) else {
            return false;
        };
        above = Some(diff);
        diff = n as usize;
    }
    // Further down, the next test of the value: it moves up.
    let mut before = diff;
    let pulled = loop {
        let Edge::Block(s) = next(ir, before) else {
            return false;
        };
        let s = s as usize;
        if !in_chain(ir, s) {
            return false;
        }
        if tested(ir, s) == Some(val) {
            break s;
        }
        before = s;
    };
    let mut undo = std::mem::take(&mut g.undo);
    undo.clear();
    let after = next(ir, pulled);
    set_next(ir, &mut undo, before, after);
    set_next(ir, &mut undo, pulled, Edge::Block(diff as u32));
    match above {
        Some(a) => set_next(ir, &mut undo, a, Edge::Block(pulled as u32)),
        // At the head: every edge into it now goes to the pulled test.
        None => {
            for i in 0..g.preds_of(b).len() {
                let p = g.preds_of(b)[i] as usize;
                undo.push((p, ir.blocks[p]));
                let blk = &mut ir.blocks[p];
                for e in [&mut blk.t, &mut blk.f] {
                    if *e == Edge::Block(b as u32) {
                        *e = Edge::Block(pulled as u32);
                    }
                }
            }
        }
    }
    // The move may close a loop (another edge into the pulled test from
    // below the head; libpcap does not check): then it is undone.
    let sorted = sort_topologically(ir, g);
    if !sorted {
        for &(i, blk) in undo.iter().rev() {
            ir.blocks[i] = blk;
        }
    }
    g.undo = undo;
    sorted
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
                incoming[j as usize] += 1;
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
                let j = j as usize;
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
    new_index.resize(n, 0);
    for (k, &i) in order.iter().enumerate() {
        new_index[i] = k as u32;
    }
    let map = |e: Edge| match e {
        Edge::Block(i) => Edge::Block(new_index[i as usize]),
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
