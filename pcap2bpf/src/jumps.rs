//! libpcap's branch optimisation loop (`opt_loop` in optimize.c, the pass
//! that moves branches): passes until one changes nothing, each pass
//!
//! 1. finds the blocks reachable from the entry, their levels (distance
//!    from the verdicts) and the dominators of blocks and of edges, once:
//!    they stay as they were for the whole pass, however the pass moves
//!    edges (libpcap's `find_dom`, `find_edom`);
//! 2. folds tests of two constants (`opt_peep`);
//! 3. threads every edge (`opt_j`): past a test whose edges meet, then,
//!    while a dominating edge decides the test it reaches (`fold_edge`),
//!    to that test's successor;
//! 4. applies the pull-ups (`or_pullup`, `and_pullup`, see
//!    [`crate::pullup`]), which see the edges as threading left them but
//!    the dominators of the pass start.
//!
//! The stale dominators matter: a test whose outcome holds on every path
//! because each path tested it (two copies of `ip proto 6`, say, on two
//! branches) is not decided, as no single edge dominates; and what a pass
//! moves changes dominators only for the next pass. Which tests stay
//! decides which loads run, so a packet cut short gets libpcap's verdict
//! only if the same tests stay.

use crate::ir::{BinOp, Block, CmpOp, Cond, Edge, Ir, Val, ValNode};

/// No edge (the entry's edges have no dominating edge).
const NONE: u32 = u32::MAX;

/// libpcap gives up after this many passes in a row that only moved
/// branches (it may cycle).
const MAX_BRANCH_PASSES: usize = 100;

/// What a pass computes at its start and keeps for the whole pass.
#[derive(Default)]
pub(crate) struct PassInfo {
    /// The blocks reachable at the pass start, in libpcap's order: by
    /// level from the verdicts up, each level in the order of its list
    /// (`find_levels`).
    pub order: Vec<u32>,
    /// Whether each block was reachable at the pass start.
    pub reached: Vec<bool>,
    /// The immediate dominator of each reachable block (the entry: itself).
    pub idom: Vec<u32>,
    /// The immediate dominating edge of each edge (edge `2 i` is block
    /// `i`'s true edge, `2 i + 1` its false edge), `NONE` at the entry.
    edom: Vec<u32>,
    /// Buffers of `compute`.
    level: Vec<u32>,
    acc_block: Vec<u32>,
    acc_edge: Vec<u32>,
    stack: Vec<(u32, u8)>,
    lists: Vec<Vec<u32>>,
}

impl PassInfo {
    fn compute(&mut self, ir: &Ir) {
        let n = ir.blocks.len();
        self.order.clear();
        self.reached.clear();
        self.reached.resize(n, false);
        self.idom.clear();
        self.idom.resize(n, NONE);
        self.edom.clear();
        self.edom.resize(2 * n, NONE);
        let Some(Edge::Block(entry)) = ir.entry else {
            return;
        };
        // Levels by a depth-first walk, true edge first; each block goes to
        // the front of its level's list when its walk ends, as in libpcap.
        self.level.clear();
        self.level.resize(n, 0);
        for l in &mut self.lists {
            l.clear();
        }
        self.stack.clear();
        self.reached[entry as usize] = true;
        self.stack.push((entry, 0));
        while let Some(top) = self.stack.last_mut() {
            let (i, step) = *top;
            let b = ir.blocks[i as usize];
            if step < 2 {
                top.1 += 1;
                if let Edge::Block(j) = if step == 0 { b.t } else { b.f }
                    && !self.reached[j as usize]
                {
                    self.reached[j as usize] = true;
                    self.stack.push((j, 0));
                }
                continue;
            }
            self.stack.pop();
            let lv = |e: Edge| match e {
                Edge::Block(j) => self.level[j as usize],
                _ => 0,
            };
            let level = lv(b.t).max(lv(b.f)) + 1;
            self.level[i as usize] = level;
            if self.lists.len() <= level as usize {
                self.lists.resize_with(level as usize + 1, Vec::new);
            }
            self.lists[level as usize].push(i);
        }
        for l in &self.lists {
            // Pushed at the end here, at the front in libpcap.
            self.order.extend(l.iter().rev());
        }
        // Dominators: blocks only jump forward, so one sweep in index
        // order sees every predecessor of a block before the block.
        self.acc_block.clear();
        self.acc_block.resize(n, NONE);
        self.acc_edge.clear();
        self.acc_edge.resize(n, NONE);
        self.idom[entry as usize] = entry;
        for i in 0..n {
            if !self.reached[i] {
                continue;
            }
            if i != entry as usize {
                self.idom[i] = self.acc_block[i];
                self.edom[2 * i] = self.acc_edge[i];
                self.edom[2 * i + 1] = self.acc_edge[i];
            }
            let b = ir.blocks[i];
            for (s, e) in [b.t, b.f].into_iter().enumerate() {
                let Edge::Block(j) = e else { continue };
                let j = j as usize;
                let edge = (2 * i + s) as u32;
                self.acc_edge[j] = if self.acc_edge[j] == NONE && self.acc_block[j] == NONE {
                    edge
                } else {
                    common_edge(&self.edom, self.acc_edge[j], edge)
                };
                self.acc_block[j] = if self.acc_block[j] == NONE {
                    i as u32
                } else {
                    common_block(&self.idom, self.acc_block[j], i as u32)
                };
            }
        }
    }
}

/// The nearest edge dominating both edges `a` and `b` (or being one).
fn common_edge(edom: &[u32], mut a: u32, mut b: u32) -> u32 {
    while a != b {
        if a == NONE || b == NONE {
            return NONE;
        }
        if a > b {
            a = edom[a as usize];
        } else {
            b = edom[b as usize];
        }
    }
    a
}

/// The nearest block dominating both blocks.
fn common_block(idom: &[u32], mut a: u32, mut b: u32) -> u32 {
    while a != b {
        while a > b {
            a = idom[a as usize];
        }
        while b > a {
            b = idom[b as usize];
        }
    }
    a
}

/// Whether `v` loads from the packet.
fn has_load(ir: &Ir, v: Val) -> bool {
    match ir.node(v) {
        ValNode::Load { .. } => true,
        ValNode::Bin(_, a, b) => has_load(ir, a) || has_load(ir, b),
        ValNode::Neg(a) => has_load(ir, a),
        _ => false,
    }
}

/// Whether evaluating `v` can reject the packet (a load, a division).
pub(crate) fn can_reject(ir: &Ir, v: Val) -> bool {
    match ir.node(v) {
        ValNode::Load { .. } => true,
        ValNode::Bin(op, a, b) => {
            matches!(op, BinOp::Div | BinOp::Mod) || can_reject(ir, a) || can_reject(ir, b)
        }
        ValNode::Neg(a) => can_reject(ir, a),
        _ => false,
    }
}

/// A test against a constant as libpcap's `fold_edge` sees it: the value
/// number of the accumulator, the operator and the constant. A relation
/// loads packet bytes through the index register, so its value differs
/// from the same bytes loaded by a primitive; and in the first pass an
/// equality relation still tests `a - k == 0` (its subtraction goes in
/// that pass), a value of its own for each `k`.
#[derive(PartialEq, Eq)]
struct Test {
    a: AValue,
    op: CmpOp,
    k: u32,
    /// libpcap's test is the negation of the block's (its true edge is
    /// the block's false edge).
    neg: bool,
}

/// The accumulator leaving a block as libpcap numbers it: the value
/// tested, whether a relation loaded it, and in the first pass the value
/// an equality relation subtracts.
pub(crate) type AValue = (Val, bool, Option<Val>);

/// A primitive's `(x & m) == 0` as libpcap's `opt_peep` rewrites it in
/// the first pass: `x & m` not set (`jset #m` with the edges swapped).
/// The accumulator holds `x & m` in that pass, `x` after (the `and`
/// goes).
fn as_jset(ir: &Ir, cond: Cond, first_pass: bool) -> Option<(Val, u32)> {
    let Cond::Cmp {
        a,
        op: CmpOp::Eq,
        b,
        relation: false,
    } = cond
    else {
        return None;
    };
    if ir.const_of(b) != Some(0) {
        return None;
    }
    let ValNode::Bin(BinOp::And, x, m) = ir.node(a) else {
        return None;
    };
    let (x, m) = match (ir.const_of(x), ir.const_of(m)) {
        (None, Some(m)) => (x, m),
        (Some(k), None) => (m, k),
        _ => return None,
    };
    Some((if first_pass { a } else { x }, m))
}

/// Whether libpcap's test is the negation of the block's (a `jset` whose
/// true edge is the block's false edge, see `as_jset`).
pub(crate) fn negated(ir: &Ir, cond: Cond) -> bool {
    as_jset(ir, cond, true).is_some()
}

/// The accumulator value a test compares (see [`AValue`]).
pub(crate) fn a_value(ir: &Ir, cond: Cond, first_pass: bool) -> Option<AValue> {
    let Cond::Cmp { a, op, b, relation } = cond else {
        return None;
    };
    if let Some((x, _)) = as_jset(ir, cond, first_pass) {
        return Some((x, false, None));
    }
    let form = relation && has_load(ir, a);
    let sub = (relation && first_pass && op == CmpOp::Eq).then_some(b);
    Some((a, form, sub))
}

fn test_of(ir: &Ir, cond: Cond, first_pass: bool) -> Option<Test> {
    let Cond::Cmp { op, b, .. } = cond else {
        return None;
    };
    let a = a_value(ir, cond, first_pass)?;
    Some(match as_jset(ir, cond, first_pass) {
        Some((_, m)) => Test {
            a,
            op: CmpOp::Set,
            k: m,
            neg: true,
        },
        None => Test {
            a,
            op,
            k: ir.const_of(b)?,
            neg: false,
        },
    })
}

/// libpcap's `fold_edge`: where block `child` goes when edge `d` (of a
/// block testing the same value) was taken, if that decides it.
fn fold_edge(ir: &Ir, child: Block, d: u32, first_pass: bool) -> Option<Edge> {
    let pred = ir.blocks[(d / 2) as usize];
    let c = test_of(ir, child.cond, first_pass)?;
    let p = test_of(ir, pred.cond, first_pass)?;
    if c.op != p.op || c.a != p.a {
        return None;
    }
    // In libpcap's terms: the sense of the edge, the child's edges.
    let sense = (d & 1 == 0) != p.neg;
    let (jt, jf) = if c.neg {
        (child.f, child.t)
    } else {
        (child.t, child.f)
    };
    if c.k == p.k {
        return Some(if sense { jt } else { jf });
    }
    // A value equal to one constant differs from every other.
    (sense && c.op == CmpOp::Eq).then_some(jf)
}

/// Whether a test whose edges meet may go: libpcap drops it with its
/// loads when it optimises; unoptimised, only when dropping it changes
/// nothing (it cannot reject, or rejects either way).
fn may_skip(ir: &Ir, b: Block) -> bool {
    if b.t != b.f {
        return false;
    }
    match b.cond {
        Cond::Let { .. } => false,
        Cond::Cmp { a, b: rhs, .. } => {
            !ir.pcap_unoptimized
                || b.t == Edge::Reject
                || !(can_reject(ir, a) || can_reject(ir, rhs))
        }
        Cond::ProtoChain { .. } => !ir.pcap_unoptimized || b.t == Edge::Reject,
    }
}

/// The outcome of a test of two constants.
pub(crate) fn constant(ir: &Ir, cond: Cond) -> Option<bool> {
    match cond {
        Cond::Cmp { a, op, b, .. } => Some(op.eval(ir.const_of(a)?, ir.const_of(b)?)),
        _ => None,
    }
}

/// libpcap's `opt_j` on edge `e`; says whether it moved the edge, and
/// whether that was past a test whose edges meet.
fn opt_j(ir: &mut Ir, info: &PassInfo, e: u32, first_pass: bool) -> (bool, bool) {
    let i = (e / 2) as usize;
    let old = if e & 1 == 0 {
        ir.blocks[i].t
    } else {
        ir.blocks[i].f
    };
    let mut target = old;
    let mut skipped = false;
    if let Edge::Block(s) = target {
        let sb = ir.blocks[s as usize];
        if may_skip(ir, sb) {
            target = sb.t;
            skipped = true;
        }
    }
    'top: while let Edge::Block(s) = target {
        let child = ir.blocks[s as usize];
        let mut d = e;
        while d != NONE {
            if let Some(next) = fold_edge(ir, child, d, first_pass) {
                target = next;
                continue 'top;
            }
            d = info.edom[d as usize];
        }
        break;
    }
    if e & 1 == 0 {
        ir.blocks[i].t = target;
    } else {
        ir.blocks[i].f = target;
    }
    (target != old, skipped)
}

/// Buffers reused from pass to pass.
#[derive(Default)]
pub(crate) struct Passes {
    info: PassInfo,
    pulls: crate::pullup::Graph,
}

/// What one pass did.
pub(crate) struct PassResult {
    /// It changed an edge.
    pub changed: bool,
    /// It did more than move branches: folded a constant test or went
    /// past a test whose edges meet (libpcap's
    /// `non_branch_movement_performed`).
    pub other: bool,
    /// The filter has an equality relation: libpcap's first pass changes
    /// its statements, so a second pass follows, with other values.
    pub relation: bool,
}

/// One pass of libpcap's branch loop (`first`: the first pass).
pub(crate) fn pass(ir: &mut Ir, p: &mut Passes, first: bool) -> PassResult {
    p.info.compute(ir);
    let mut r = PassResult {
        changed: false,
        other: false,
        relation: false,
    };
    // opt_peep: a test of constants goes one way.
    for k in 0..p.info.order.len() {
        let i = p.info.order[k] as usize;
        let b = ir.blocks[i];
        r.relation |= matches!(
            b.cond,
            Cond::Cmp {
                op: CmpOp::Eq,
                relation: true,
                ..
            }
        );
        if b.t != b.f
            && let Some(c) = constant(ir, b.cond)
        {
            let e = if c { b.t } else { b.f };
            ir.blocks[i].t = e;
            ir.blocks[i].f = e;
            r.changed = true;
            r.other = true;
        }
    }
    for k in 0..p.info.order.len() {
        let i = p.info.order[k];
        for e in [2 * i, 2 * i + 1] {
            let (moved, skipped) = opt_j(ir, &p.info, e, first);
            r.changed |= moved;
            r.other |= skipped;
        }
    }
    if !ir.pcap_unoptimized {
        r.changed |= crate::pullup::pull_ups(ir, &p.info, &mut p.pulls, first);
    }
    r
}

/// libpcap's branch loop: passes until one changes nothing; `compact`
/// drops the blocks a pass left unreachable. Says whether it changed
/// anything.
pub(crate) fn branch_loop(ir: &mut Ir, p: &mut Passes, compact: &mut dyn FnMut(&mut Ir)) -> bool {
    let mut any = false;
    let mut branch_only = 0;
    let mut first = true;
    loop {
        let r = pass(ir, p, first);
        compact(ir);
        any |= r.changed;
        if !(r.changed || first && r.relation) {
            break;
        }
        first = false;
        branch_only = if r.other { 0 } else { branch_only + 1 };
        if branch_only >= MAX_BRANCH_PASSES {
            break;
        }
    }
    any
}
