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

use cranelift_entity::packed_option::PackedOption;
use cranelift_entity::{EntityRef, PrimaryMap, entity_impl};

use std::collections::HashMap;

use super::ancestors::{Intervals, Lifting, Marks};
use crate::ir::{BinOp, Block, BlockId, CmpOp, Cond, Edge, FxBuild, Ir, Val, ValNode};

/// An edge of the CFG, numbered as libpcap numbers them: block `b`'s
/// true edge is `2 b`, its false edge `2 b + 1` (so edges sort as their
/// blocks do).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct EdgeId(u32);
entity_impl!(EdgeId, "e");

impl EdgeId {
    /// Block `b`'s true edge (`true_edge`) or false edge.
    fn of(b: BlockId, true_edge: bool) -> EdgeId {
        EdgeId::from_u32(2 * b.as_u32() + u32::from(!true_edge))
    }

    /// The block the edge leaves.
    fn block(self) -> BlockId {
        BlockId::from_u32(self.0 / 2)
    }

    /// Whether it is its block's true edge.
    fn is_true(self) -> bool {
        self.0 & 1 == 0
    }
}

/// libpcap gives up after this many passes in a row that only moved
/// branches (it may cycle).
const MAX_BRANCH_PASSES: usize = 100;

/// What a pass computes at its start and keeps for the whole pass.
#[derive(Default)]
pub(crate) struct PassInfo {
    /// The blocks reachable at the pass start, in libpcap's order: by
    /// level from the verdicts up, each level in the order of its list
    /// (`find_levels`).
    pub order: Vec<BlockId>,
    /// Per block of the IR, in order, what the pass start says about it.
    blocks: PrimaryMap<BlockId, BlockInfo>,
    /// The dominator tree of the blocks reached.
    doms: Intervals,
    /// The tree of edges under their immediate dominating edges.
    edoms: Intervals,
    /// The edges that decide tests, by what they decide (see
    /// [`Decides`]).
    deciders: Marks<Decides>,
    /// The same edges by the value and operator they test, whatever the
    /// constant (see [`Hops`]).
    kinds: Marks<(AValue, CmpOp)>,
    /// Common dominators of blocks and of edges, while `compute` finds
    /// the dominators.
    common_blocks: Lifting,
    common_edges: Lifting,
    /// Buffers of `compute`.
    stack: Vec<(BlockId, u8)>,
    level_start: Vec<u32>,
    marks_stack: Vec<u32>,
}

/// What an edge tells a later test of value `a` with operator `op`
/// (`fold_edge`): its outcome when the edge's test is the same
/// (`k: Some`: the same constant), or, for an equality, that it is false
/// whatever its constant (`k: None`: the edge found the value equal to
/// another constant).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Decides {
    a: AValue,
    op: CmpOp,
    k: Option<u32>,
}

/// What a pass knows about one block from its start: tests stay in place
/// during a pass (only edges move), so they are read once too.
#[derive(Clone, Copy)]
struct BlockInfo {
    /// Reachable at the pass start.
    reached: bool,
    /// The immediate dominator (the entry: itself); none until the sweep
    /// of `compute` meets a predecessor (so none if unreachable).
    idom: PackedOption<BlockId>,
    /// The immediate dominating edge of the block's two edges (see
    /// [`EdgeId`]); none at the entry, whose edges have none.
    edom: PackedOption<EdgeId>,
    /// Distance from the verdicts.
    level: u32,
    /// Its test as `fold_edge` sees it.
    test: Option<Test>,
    /// The value it leaves in the accumulator.
    avalue: Option<AValue>,
    /// libpcap's test is the negation of ours.
    negated: bool,
}

impl PassInfo {
    /// Whether block `i` was reachable at the pass start.
    pub fn reached(&self, i: BlockId) -> bool {
        self.blocks[i].reached
    }

    /// Whether every path from the entry to block `c` went through
    /// block `b` at the pass start (false when `c` was not reached).
    pub fn dominates(&self, b: BlockId, c: BlockId) -> bool {
        self.doms.is_ancestor(b.index(), c.index())
    }

    /// The nearest edge among `e` and the edges dominating it that
    /// decides test `c` (the first that libpcap's walk up the edge
    /// dominators finds `fold_edge` to answer).
    fn decider(&self, e: EdgeId, c: &Test) -> Option<EdgeId> {
        let nearest = |k| {
            let key = Decides {
                a: c.a,
                op: c.op,
                k,
            };
            self.deciders.nearest(key, e.index(), &self.edoms)
        };
        let same = nearest(Some(c.k));
        let other = if c.op == CmpOp::Eq {
            nearest(None)
        } else {
            None
        };
        // Both lie on the path up from `e`: the later one is nearer.
        let (_, d) = same.max(other)?;
        Some(EdgeId::new(d))
    }

    /// The immediate dominator of reachable block `i`.
    fn idom(&self, i: BlockId) -> BlockId {
        self.blocks[i]
            .idom
            .expect("a reachable block has a dominator")
    }

    /// The accumulator value leaving block `i` (libpcap's `val[A_ATOM]`).
    pub fn avalue(&self, i: BlockId) -> Option<AValue> {
        self.blocks[i].avalue
    }

    /// Whether libpcap's test of block `i` is the negation of ours.
    pub fn negated(&self, i: BlockId) -> bool {
        self.blocks[i].negated
    }

    fn compute(&mut self, ir: &Ir, first: bool) {
        self.order.clear();
        self.blocks.clear();
        self.blocks.extend(ir.blocks.iter().map(|b| {
            let LibTest {
                avalue,
                test,
                negated,
            } = read_test(ir, b.cond, first);
            BlockInfo {
                reached: false,
                idom: None.into(),
                edom: None.into(),
                level: 0,
                test,
                avalue,
                negated,
            }
        }));
        let Some(Edge::Block(entry)) = ir.entry else {
            return;
        };
        // Levels by a depth-first walk, true edge first; `order` gets the
        // blocks as their walks end.
        self.stack.clear();
        self.blocks[entry].reached = true;
        self.stack.push((entry, 0));
        let mut top_level = 0;
        while let Some(top) = self.stack.last_mut() {
            let (i, step) = *top;
            let b = ir.blocks[i.index()];
            if step < 2 {
                top.1 += 1;
                if let Edge::Block(j) = if step == 0 { b.t } else { b.f }
                    && !self.blocks[j].reached
                {
                    self.blocks[j].reached = true;
                    self.stack.push((j, 0));
                }
                continue;
            }
            self.stack.pop();
            let lv = |e: Edge| match e {
                Edge::Block(j) => self.blocks[j].level,
                _ => 0,
            };
            let level = lv(b.t).max(lv(b.f)) + 1;
            self.blocks[i].level = level;
            top_level = top_level.max(level);
            self.order.push(i);
        }
        // libpcap puts each block at the front of its level's list when
        // its walk ends: by level, latest finished first (a counting sort;
        // the finish order moves to `stack`, now empty).
        self.level_start.clear();
        self.level_start.resize(top_level as usize + 2, 0);
        for &i in &self.order {
            self.level_start[self.blocks[i].level as usize + 1] += 1;
        }
        for l in 1..self.level_start.len() {
            self.level_start[l] += self.level_start[l - 1];
        }
        self.stack.extend(self.order.iter().map(|&i| (i, 0)));
        for &(i, _) in self.stack.iter().rev() {
            let slot = &mut self.level_start[self.blocks[i].level as usize];
            self.order[*slot as usize] = i;
            *slot += 1;
        }
        self.stack.clear();
        // Dominators: blocks only jump forward, so one sweep in index
        // order sees every predecessor of a block before the block. Until
        // a block's turn, its `idom` and `edom` gather its predecessors'.
        self.blocks[entry].idom = entry.into();
        self.common_blocks.reset(ir.blocks.len());
        self.common_edges.reset(2 * ir.blocks.len());
        for (i, b) in ir.blocks.iter().enumerate() {
            let i = BlockId::new(i);
            if !self.blocks[i].reached {
                continue;
            }
            // The block's dominators are known now: it joins the trees.
            let idom = Some(self.idom(i).index()).filter(|_| i != entry);
            self.common_blocks.add(i.index(), idom);
            let edom = self.blocks[i].edom.expand().map(|e| e.index());
            for true_edge in [true, false] {
                self.common_edges
                    .add(EdgeId::of(i, true_edge).index(), edom);
            }
            for (e, true_edge) in [(b.t, true), (b.f, false)] {
                let Edge::Block(j) = e else { continue };
                let edge = EdgeId::of(i, true_edge);
                let to = self.blocks[j];
                let edom = match (to.edom.expand(), to.idom.expand()) {
                    (None, None) => Some(edge),
                    (e, _) => e.and_then(|e| {
                        let c = self.common_edges.common(e.index(), edge.index());
                        c.map(EdgeId::new)
                    }),
                };
                let idom = match to.idom.expand() {
                    None => i,
                    // Reachable blocks share the entry at least.
                    Some(d) => self
                        .common_blocks
                        .common(d.index(), i.index())
                        .map_or(entry, BlockId::new),
                };
                self.blocks[j].edom = edom.into();
                self.blocks[j].idom = idom.into();
            }
        }
        self.ancestors(entry);
    }

    /// The trees of dominators and dominating edges, and the deciding
    /// edges, for the queries of the pass.
    fn ancestors(&mut self, entry: BlockId) {
        let blocks = &self.blocks;
        self.doms.compute(blocks.len(), |i| {
            let b = &blocks[BlockId::new(i)];
            let idom = b.idom.expand().filter(|_| i != entry.index());
            b.reached.then(|| idom.map(|d| d.index()))
        });
        self.edoms.compute(2 * blocks.len(), |i| {
            let b = &blocks[EdgeId::new(i).block()];
            b.reached.then(|| b.edom.expand().map(|d| d.index()))
        });
        self.deciders.clear();
        self.kinds.clear();
        for (b, info) in blocks.iter() {
            let (true, Some(p)) = (info.reached, info.test) else {
                continue;
            };
            for d in [EdgeId::of(b, true), EdgeId::of(b, false)] {
                let same = Decides {
                    a: p.a,
                    op: p.op,
                    k: Some(p.k),
                };
                self.deciders.mark(same, d.index(), &self.edoms);
                self.kinds.mark((p.a, p.op), d.index(), &self.edoms);
                // The sense of the edge in libpcap's terms (`fold_edge`).
                if p.op == CmpOp::Eq && d.is_true() != p.neg {
                    let other = Decides { k: None, ..same };
                    self.deciders.mark(other, d.index(), &self.edoms);
                }
            }
        }
        self.deciders.finish(&mut self.marks_stack);
        self.kinds.finish(&mut self.marks_stack);
    }

    /// What deciding edge `d` tells the tests it decides.
    fn fact(&self, d: EdgeId) -> Fact {
        let p = self.blocks[d.block()]
            .test
            .expect("a deciding edge leaves a test");
        Fact {
            a: p.a,
            op: p.op,
            k: p.k,
            sense: d.is_true() != p.neg,
        }
    }

    /// Whether `d`, an edge dominating edge `e` (or `e`), is the nearest
    /// such edge testing its value with its operator, whatever the
    /// constant: then `d` decides, for `e`, every test it decides.
    fn nearest_of_its_kind(&self, e: EdgeId, d: EdgeId) -> bool {
        let p = self.blocks[d.block()]
            .test
            .expect("a deciding edge leaves a test");
        self.kinds
            .nearest((p.a, p.op), e.index(), &self.edoms)
            .is_some_and(|(_, n)| n == d.index())
    }
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
#[derive(Clone, Copy, PartialEq, Eq)]
struct Test {
    a: AValue,
    op: CmpOp,
    k: u32,
    /// libpcap's test is the negation of the block's (its true edge is
    /// the block's false edge).
    neg: bool,
}

/// The accumulator leaving a block as libpcap numbers it (its value
/// number, `val[A_ATOM]`): two blocks leave the same number when all
/// three parts agree.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct AValue {
    /// The value tested.
    val: Val,
    /// A relation loaded it: libpcap loads a relation's packet bytes
    /// through its index register, a value number of its own.
    relation: bool,
    /// In the first pass, the value an equality relation subtracts (it
    /// still tests `a - k == 0` then).
    sub: Option<Val>,
}

/// A block's test as libpcap has it, as [`read_test`] finds it.
#[derive(Default)]
struct LibTest {
    /// The accumulator value it compares; none for a `protochain` or an
    /// assignment.
    avalue: Option<AValue>,
    /// The test against a constant as `fold_edge` sees it.
    test: Option<Test>,
    /// libpcap's test is the negation of the block's (a `jset` whose true
    /// edge is the block's false edge, see `as_jset`).
    negated: bool,
}

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

/// A block's test as libpcap has it: the accumulator value it compares,
/// the test against a constant as `fold_edge` sees it, and whether
/// libpcap's test is the negation of the block's (see [`LibTest`]).
fn read_test(ir: &Ir, cond: Cond, first_pass: bool) -> LibTest {
    let Cond::Cmp { a, op, b, relation } = cond else {
        return LibTest::default();
    };
    if let Some((x, m)) = as_jset(ir, cond, first_pass) {
        let a = AValue {
            val: x,
            relation: false,
            sub: None,
        };
        let test = Test {
            a,
            op: CmpOp::Set,
            k: m,
            neg: true,
        };
        return LibTest {
            avalue: Some(a),
            test: Some(test),
            negated: true,
        };
    }
    let a = AValue {
        val: a,
        relation: relation && has_load(ir, a),
        sub: (relation && first_pass && op == CmpOp::Eq).then_some(b),
    };
    let test = ir.const_of(b).map(|k| Test {
        a,
        op,
        k,
        neg: false,
    });
    LibTest {
        avalue: Some(a),
        test,
        negated: false,
    }
}

/// libpcap's `fold_edge`: where block `child` (whose test is `c`) goes
/// when edge `d` was taken, if that decides it.
fn fold_edge(info: &PassInfo, child: Block, c: &Test, d: EdgeId) -> Option<Edge> {
    let p = info.blocks[d.block()].test.as_ref()?;
    if c.op != p.op || c.a != p.a {
        return None;
    }
    // In libpcap's terms: the sense of the edge, the child's edges.
    let sense = d.is_true() != p.neg;
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
        Cond::Let { .. } | Cond::Act { .. } | Cond::Lookup { .. } => false,
        Cond::Cmp { a, b: rhs, .. } => {
            !ir.pcap_unoptimized
                || b.t == Edge::REJECT
                || !(can_reject(ir, a) || can_reject(ir, rhs))
        }
        Cond::ProtoChain { .. } => !ir.pcap_unoptimized || b.t == Edge::REJECT,
    }
}

/// The outcome of a test of two constants.
pub(crate) fn constant(ir: &Ir, cond: Cond) -> Option<bool> {
    match cond {
        Cond::Cmp { a, op, b, .. } => Some(op.eval(ir.const_of(a)?, ir.const_of(b)?)),
        _ => None,
    }
}

/// What a deciding edge tells `fold_edge`: its test (the value, the
/// operator, the constant) and the sense it was taken in, in libpcap's
/// terms. Two edges with the same fact decide the same tests the same
/// way.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Fact {
    a: AValue,
    op: CmpOp,
    k: u32,
    sense: bool,
}

/// Where threading goes past runs of tests that one fact decides, so
/// that `opt_j` need not hop through them again edge after edge: a
/// filter of many terms repeats its protocol tests (`ether proto`, `ip
/// proto`) in every term, and an edge that knows the protocol (`arp`,
/// say) hops through those of every later term, each edge in turn:
/// quadratic in the terms, as in libpcap.
///
/// `memo[(s, f)]` is the end of a run of hops from test `s`, each decided
/// by an edge whose fact was `f`. It serves any edge `e` whose decider of
/// `s` has fact `f` and is the nearest edge above `e` testing that value
/// with that operator (`nearest_of_its_kind`): every test of the run
/// tests that value with that operator, and is one the fact decides, so
/// `e`'s decider of it is that same edge, and `e` hops the same way. The
/// tests' edges hopped through are final for the pass (blocks nearer the
/// verdicts are threaded first), so the memo lasts the pass.
#[derive(Default)]
struct Hops {
    memo: HashMap<(BlockId, Fact), Edge, FxBuild>,
    /// The hops of the current edge: the test, the fact that decided
    /// it, where the edge went.
    steps: Vec<(BlockId, Fact, Edge)>,
}

impl Hops {
    /// Notes the runs of the current edge's hops: each step's run ends
    /// where the last step with its fact in a row went.
    fn note_runs(&mut self) {
        let mut end = None;
        for k in (0..self.steps.len()).rev() {
            let (s, fact, after) = self.steps[k];
            let same_run = self.steps.get(k + 1).is_some_and(|n| n.1 == fact);
            let run_end = match end {
                Some(e) if same_run => e,
                _ => after,
            };
            end = Some(run_end);
            self.memo.insert((s, fact), run_end);
        }
    }
}

/// libpcap's `opt_j` on edge `e`; says whether it moved the edge, and
/// whether that was past a test whose edges meet.
fn opt_j(ir: &mut Ir, info: &PassInfo, hops: &mut Hops, e: EdgeId) -> (bool, bool) {
    let i = e.block().index();
    let old = if e.is_true() {
        ir.blocks[i].t
    } else {
        ir.blocks[i].f
    };
    let mut target = old;
    let mut skipped = false;
    if let Edge::Block(s) = target {
        let sb = ir.blocks[s.index()];
        if may_skip(ir, sb) {
            target = sb.t;
            skipped = true;
        }
    }
    hops.steps.clear();
    while let Edge::Block(s) = target {
        let child = ir.blocks[s.index()];
        let Some(c) = &info.blocks[s].test else {
            break;
        };
        let Some(d) = info.decider(e, c) else {
            break;
        };
        let fact = info.fact(d);
        let next = match hops.memo.get(&(s, fact)) {
            Some(&end) if info.nearest_of_its_kind(e, d) => end,
            _ => match fold_edge(info, child, c, d) {
                Some(next) => next,
                None => break,
            },
        };
        hops.steps.push((s, fact, next));
        target = next;
    }
    hops.note_runs();
    if e.is_true() {
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
    hops: Hops,
    pulls: super::pullup::Graph,
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

/// libpcap's `opt_peep` on block `i`: a test of two constants goes one
/// way. Says whether it changed the block.
fn fold_constant(ir: &mut Ir, i: usize) -> bool {
    let b = ir.blocks[i];
    let Some(c) = constant(ir, b.cond) else {
        return false;
    };
    let e = if c { b.t } else { b.f };
    ir.blocks[i].t = e;
    ir.blocks[i].f = e;
    b.t != b.f
}

/// One pass of libpcap's branch loop (`first`: the first pass).
pub(crate) fn pass(ir: &mut Ir, p: &mut Passes, first: bool) -> PassResult {
    p.info.compute(ir, first);
    let mut r = PassResult {
        changed: false,
        other: false,
        relation: false,
    };
    // opt_peep: a test of constants goes one way.
    for k in 0..p.info.order.len() {
        let i = p.info.order[k].index();
        let b = ir.blocks[i];
        r.relation |= matches!(
            b.cond,
            Cond::Cmp {
                op: CmpOp::Eq,
                relation: true,
                ..
            }
        );
        if fold_constant(ir, i) {
            r.changed = true;
            r.other = true;
        }
    }
    p.hops.memo.clear();
    for k in 0..p.info.order.len() {
        let i = p.info.order[k];
        for e in [EdgeId::of(i, true), EdgeId::of(i, false)] {
            let (moved, skipped) = opt_j(ir, &p.info, &mut p.hops, e);
            r.changed |= moved;
            r.other |= skipped;
        }
    }
    if !ir.pcap_unoptimized {
        r.changed |= super::pullup::pull_ups(ir, &p.info, &mut p.pulls);
    }
    r
}

/// libpcap's branch loop: passes until one changes nothing; `compact`
/// drops the blocks a pass left unreachable. Says whether it changed
/// anything.
pub(crate) fn branch_loop(ir: &mut Ir, p: &mut Passes, compact: &mut dyn FnMut(&mut Ir)) -> bool {
    if ir.blocks.len() == 1 {
        // A single test: nothing to thread or pull up, so every pass but
        // its folding (`opt_peep`) would change nothing.
        return fold_constant(ir, 0);
    }
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
