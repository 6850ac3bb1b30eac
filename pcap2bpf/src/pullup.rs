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

use crate::ir::{Cond, Edge, Ir, Val};

/// Bound on pull-ups per filter: libpcap's optimiser gives up after 100
/// passes of moving branches alone; each of its passes pulls up at least
/// once.
const MAX_PULLS: usize = 100;

/// Applies the pull-ups until none applies; says whether any did. Keeps
/// the blocks in topological order.
pub fn pull_up(ir: &mut Ir) -> bool {
    let mut pulls = 0;
    'again: while pulls < MAX_PULLS {
        let g = Graph::new(ir);
        // Like libpcap, from the blocks nearest the verdicts up.
        for b in (0..ir.blocks.len()).rev() {
            if pull(ir, &g, b, true) || pull(ir, &g, b, false) {
                pulls += 1;
                continue 'again;
            }
        }
        break;
    }
    pulls > 0
}

/// Predecessors and immediate dominators of the blocks.
struct Graph {
    /// For each block, the blocks with an edge to it.
    preds: Vec<Vec<usize>>,
    /// Immediate dominator of each reachable block (the entry: itself);
    /// `usize::MAX` when unreachable.
    idom: Vec<usize>,
}

impl Graph {
    fn new(ir: &Ir) -> Graph {
        let n = ir.blocks.len();
        let mut preds = vec![Vec::new(); n];
        for (i, b) in ir.blocks.iter().enumerate() {
            for e in [b.t, b.f] {
                if let Edge::Block(j) = e
                    && !preds[j as usize].contains(&i)
                {
                    preds[j as usize].push(i);
                }
            }
        }
        // Blocks are in topological order: one forward sweep finds every
        // immediate dominator (the nearest common dominator of the
        // predecessors).
        let mut idom = vec![usize::MAX; n];
        if let Some(Edge::Block(e)) = ir.entry {
            idom[e as usize] = e as usize;
        }
        for i in 0..n {
            if idom[i] == i {
                continue;
            }
            let mut d = usize::MAX;
            for &p in &preds[i] {
                if idom[p] == usize::MAX {
                    continue;
                }
                d = if d == usize::MAX {
                    p
                } else {
                    common_dominator(&idom, d, p)
                };
            }
            idom[i] = d;
        }
        Graph { preds, idom }
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
fn pull(ir: &mut Ir, g: &Graph, b: usize, or: bool) -> bool {
    // The edge a chain shares, and the one it continues by.
    let shared = |ir: &Ir, x: usize| {
        let blk = ir.blocks[x];
        if or { blk.t } else { blk.f }
    };
    let next = |ir: &Ir, x: usize| {
        let blk = ir.blocks[x];
        if or { blk.f } else { blk.t }
    };
    let set_next = |ir: &mut Ir, x: usize, e: Edge| {
        let blk = &mut ir.blocks[x];
        if or { blk.f = e } else { blk.t = e }
    };
    // Every predecessor of the head holds the same value.
    let Some((&first, rest)) = g.preds[b].split_first() else {
        return false;
    };
    let Some(val) = tested(ir, first) else {
        return false;
    };
    if rest.iter().any(|&p| tested(ir, p) != Some(val)) {
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
    // Kept in case the move would close a loop (another edge into the
    // pulled test from below the first one); libpcap does not check.
    let saved = ir.blocks.clone();
    let after = next(ir, pulled);
    set_next(ir, before, after);
    set_next(ir, pulled, Edge::Block(diff as u32));
    match above {
        Some(a) => set_next(ir, a, Edge::Block(pulled as u32)),
        // At the head: every edge into it now goes to the pulled test.
        None => {
            for &p in &g.preds[b] {
                let blk = &mut ir.blocks[p];
                for e in [&mut blk.t, &mut blk.f] {
                    if *e == Edge::Block(b as u32) {
                        *e = Edge::Block(pulled as u32);
                    }
                }
            }
        }
    }
    if !sort_topologically(ir) {
        ir.blocks = saved;
        return false;
    }
    true
}

/// Renumbers the blocks in a topological order: the present order where
/// the edges allow, except that a block whose last edge in comes from the
/// block just placed follows it (the code generator falls through there
/// rather than jumping; jumps must go forward). False, and nothing
/// changed, when the graph has a loop.
fn sort_topologically(ir: &mut Ir) -> bool {
    let n = ir.blocks.len();
    let mut incoming = vec![0u32; n];
    for b in &ir.blocks {
        for e in [b.t, b.f] {
            if let Edge::Block(j) = e {
                incoming[j as usize] += 1;
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| incoming[i] == 0).map(Reverse).collect();
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut follow = None;
    loop {
        let i = match follow.take() {
            Some(i) => i,
            None => match ready.pop() {
                Some(Reverse(i)) if placed[i] => continue,
                Some(Reverse(i)) => i,
                None => break,
            },
        };
        placed[i] = true;
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
    let mut new_index = vec![0u32; n];
    for (k, &i) in order.iter().enumerate() {
        new_index[i] = k as u32;
    }
    let map = |e: Edge| match e {
        Edge::Block(i) => Edge::Block(new_index[i as usize]),
        e => e,
    };
    let old = std::mem::take(&mut ir.blocks);
    ir.blocks = order
        .iter()
        .map(|&i| {
            let mut b = old[i];
            b.t = map(b.t);
            b.f = map(b.f);
            b
        })
        .collect();
    ir.entry = ir.entry.map(map);
    true
}
