//! Tests the tests before them decide, with a firewall's meaning
//! ([`Semantics::Exact`](crate::ir::Semantics::Exact)): an edge into a
//! test whose outcome the path already knows goes straight to where the
//! test would go. A chain of rules becomes a decision graph: a packet
//! that failed `meta l4proto tcp` in one rule skips every later rule
//! that needs TCP, and a rule's guards are tested once on each path.
//!
//! What a path knows comes from the edges that dominate it: an edge
//! taken only when its test held (or failed) tells every block it
//! dominates that outcome.
//!
//! - An edge a short read also takes (`short false` on a false edge,
//!   when the values may fail to read) knows less: the test failed, or
//!   its values could not be read. The same values read again fail
//!   again, and go by the later test's short edge: such a fact decides
//!   only an outcome whose edge is also the later test's short edge,
//!   unless a sure fact shows the values were read. So `tcp dport 22`
//!   failing in one rule decides `tcp dport 22` in a later one, short
//!   packets included.
//! - A test of a variable says nothing where an assignment to that
//!   variable may come later (a `Let`, or a lookup's result).
//! - An assignment that may not fit the packet and goes on (`short
//!   true`: nft's packet facts) leaves its variable unset: reads of it
//!   may fail, as loads do.
//!
//! Actions and lookups never write the packet, so knowledge flows
//! through them; they are never skipped themselves.
//!
//! A test is decided by a known test of the same values and operator,
//! or by the range the known tests leave a value in (`dport >= 1000`
//! false decides `dport == 3000`). Blocks are visited from the last, so
//! the edges of a test an edge hops over are already threaded and a
//! hop goes as far as they do: linear in the blocks, not in the rules
//! times the rules. Each block looks at most [`MAX_FACTS`] dominating
//! facts, the nearest first. Dominators are those of the graph a round
//! starts with; a few rounds ([`ROUNDS`]) see what threading made known
//! (a rule's guard, skipped on the edges from the rule before, no
//! longer joins that rule's paths with the paths that failed it).

use cranelift_entity::EntityRef;

use super::dead_lets::reads;
use super::jumps::can_reject;
use crate::ir::{Block, CmpOp, Cond, Edge, Ir, OnShort, Val, ValNode};

/// The most dominating facts a block looks at (its nearest): enough for
/// the guards of a rule and of the rules around it, and a bound on the
/// work per block.
const MAX_FACTS: usize = 32;

/// A test's outcome, known on a path.
#[derive(Clone, Copy)]
struct Fact {
    a: Val,
    op: CmpOp,
    b: Val,
    holds: bool,
    /// No short read takes the edge: the values were read.
    sure: bool,
}

/// Which of a block's edges.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    True,
    False,
    /// The edge of [`OnShort::To`].
    Short,
}

/// Every side, in the order edges are visited.
const SIDES: [Side; 3] = [Side::True, Side::False, Side::Short];

/// How many edges reach a block, and the one when there is one.
#[derive(Clone, Copy)]
enum Incoming {
    None,
    One(usize, Side),
    Many,
}

/// Rounds of [`thread_known_tests`] at most: each round's dominators
/// are those of the graph the round before left, which knows more (a
/// test an edge now skips no longer joins the paths after it). Two
/// rounds thread a chain of rules; the third is for what they left.
pub(super) const ROUNDS: usize = 3;

/// Points edges past tests the path before them decides; whether it
/// moved an edge.
pub(super) fn thread_known_tests(ir: &mut Ir) -> bool {
    let Some(Edge::Block(entry)) = ir.entry else {
        return false;
    };
    let mut moved = false;
    let fallible = fallible_vars(ir);
    let n = ir.blocks.len();
    let entry = entry.index();
    // Dominators by intersection of the predecessors' (blocks only jump
    // forward, so every predecessor is final before its successors).
    let mut reached = vec![false; n];
    let mut idom: Vec<Option<usize>> = vec![None; n];
    let mut incoming = vec![Incoming::None; n];
    reached[entry] = true;
    for p in entry..n {
        if !reached[p] {
            continue;
        }
        for side in SIDES {
            let Some(Edge::Block(x)) = edge(&ir.blocks[p], side) else {
                continue;
            };
            let x = x.index();
            reached[x] = true;
            incoming[x] = match incoming[x] {
                Incoming::None => Incoming::One(p, side),
                _ => Incoming::Many,
            };
            idom[x] = Some(match idom[x] {
                None => p,
                Some(d) => common_dominator(&idom, d, p),
            });
        }
    }
    // The variables assigned after each block, on some path.
    let mut assigned_after = vec![0u64; n];
    for p in (entry..n).rev() {
        if !reached[p] {
            continue;
        }
        let mut after = 0;
        for side in SIDES {
            if let Some(Edge::Block(x)) = edge(&ir.blocks[p], side) {
                after |= assigns(&ir.blocks[x.index()]) | assigned_after[x.index()];
            }
        }
        assigned_after[p] = after;
    }
    // Each block's own fact (from its one incoming edge) and the nearest
    // block at or above it in the dominator tree that has one.
    let mut own: Vec<Option<Fact>> = vec![None; n];
    let mut nearest: Vec<Option<usize>> = vec![None; n];
    for x in entry..n {
        if !reached[x] {
            continue;
        }
        if let Incoming::One(p, side) = incoming[x] {
            own[x] = edge_fact(ir, fallible, assigned_after[p], p, side);
        }
        nearest[x] = if own[x].is_some() {
            Some(x)
        } else {
            idom[x].and_then(|d| nearest[d])
        };
    }
    let mut facts = Vec::with_capacity(MAX_FACTS + 1);
    for x in (entry..n).rev() {
        if !reached[x] {
            continue;
        }
        facts.clear();
        let mut at = nearest[x];
        while let Some(y) = at {
            if facts.len() == MAX_FACTS {
                break;
            }
            facts.extend(own[y]);
            at = idom[y].and_then(|d| nearest[d]);
        }
        let mut block = ir.blocks[x];
        for side in SIDES {
            let Some(e) = edge(&block, side) else {
                continue;
            };
            let mine = edge_fact(ir, fallible, assigned_after[x], x, side);
            facts.extend(mine);
            let to = thread(ir, e, &facts);
            if mine.is_some() {
                facts.pop();
            }
            moved |= to != e;
            set_edge(&mut block, side, to);
        }
        ir.blocks[x] = block;
    }
    moved
}

/// Where an edge to `e` may go instead: past every test `facts` decide.
fn thread(ir: &Ir, mut e: Edge, facts: &[Fact]) -> Edge {
    while let Edge::Block(t) = e {
        let b = &ir.blocks[t.index()];
        match decide(ir, b, facts) {
            Some(true) => e = b.t,
            Some(false) => e = b.f,
            None => break,
        }
    }
    e
}

/// The outcome `facts` give block `b`'s test, if they decide it.
///
/// A fact that is not sure (its edge also takes short reads) says the
/// value was out of the test's range or could not be read. The same
/// value read again fails again, and then takes the block's short edge:
/// such a fact decides only an outcome whose edge a short read takes
/// too, unless a sure fact shows the value was read.
fn decide(ir: &Ir, b: &Block, facts: &[Fact]) -> Option<bool> {
    let Cond::Cmp { a, op, b: bv, .. } = b.cond else {
        return None;
    };
    let read = facts
        .iter()
        .any(|f| f.sure && f.a == a && (f.b == bv || ir.const_of(bv).is_some()));
    let allowed = |o: bool| read || short_takes(b, o);
    if let Some(f) = facts.iter().find(|f| f.a == a && f.op == op && f.b == bv) {
        return Some(f.holds).filter(|&o| allowed(o));
    }
    let k = ir.const_of(bv)?;
    // The range the facts leave the value in. Only a fact about the
    // value decides it: without one, the test's loads have not run on
    // the path and may still fail (`a >= 0` is not known to hold).
    let (mut lo, mut hi) = (0u32, u32::MAX);
    let mut bounded = false;
    for f in facts.iter().filter(|f| f.a == a) {
        let Some(fk) = ir.const_of(f.b) else { continue };
        let range = match (f.op, f.holds) {
            (CmpOp::Eq, true) => Some((fk, fk)),
            (CmpOp::Gt, true) => fk.checked_add(1).map(|l| (l, u32::MAX)),
            (CmpOp::Gt, false) => Some((0, fk)),
            (CmpOp::Ge, true) => Some((fk, u32::MAX)),
            (CmpOp::Ge, false) => fk.checked_sub(1).map(|h| (0, h)),
            _ => continue,
        };
        // No value takes the edge (`a >= 0` false): only a failed read.
        let (l, h) = range?;
        (lo, hi) = (lo.max(l), hi.min(h));
        bounded = true;
    }
    if !bounded || lo > hi {
        // Unknown, or no value takes this path: leave it as it is.
        return None;
    }
    let outcome = match op {
        CmpOp::Eq if k < lo || k > hi => false,
        CmpOp::Gt if lo > k => true,
        CmpOp::Gt if hi <= k => false,
        CmpOp::Ge if lo >= k => true,
        CmpOp::Ge if hi < k => false,
        _ if lo == hi => op.eval(lo, k),
        _ => return None,
    };
    Some(outcome).filter(|&o| allowed(o))
}

/// What taking `side` of block `p` tells the blocks after it: its
/// test's outcome, sure unless a short read may take the same edge;
/// none for a test of a variable in `assigned_after` (the variables
/// assigned after `p`: a later test reads another value).
fn edge_fact(ir: &Ir, fallible: u64, assigned_after: u64, p: usize, side: Side) -> Option<Fact> {
    let b = &ir.blocks[p];
    let Cond::Cmp { a, op, b: bv, .. } = b.cond else {
        return None;
    };
    if (reads(ir, a) | reads(ir, bv)) & assigned_after != 0 {
        return None;
    }
    let holds = match side {
        Side::True => true,
        Side::False => false,
        Side::Short => return None,
    };
    let sure = !short_takes(b, holds) || !(may_fail(ir, fallible, a) || may_fail(ir, fallible, bv));
    Some(Fact {
        a,
        op,
        b: bv,
        holds,
        sure,
    })
}

/// Whether a short read in block `b` takes the edge of outcome `o` (its
/// true edge for `true`).
fn short_takes(b: &Block, o: bool) -> bool {
    match b.short {
        OnShort::True => o,
        OnShort::False => !o,
        OnShort::Reject | OnShort::To(_) => false,
    }
}

/// Whether reading `v` may take the short edge: a load, a division,
/// metadata (which the evaluator may not have), or a variable in
/// `fallible`.
fn may_fail(ir: &Ir, fallible: u64, v: Val) -> bool {
    can_reject(ir, v) || has_meta(ir, v) || reads(ir, v) & fallible != 0
}

/// The variables a read of may fail: those an assignment that may not
/// fit the packet leaves unset when it goes on (nft's packet facts,
/// read only where they fit; the evaluator rejects a read of an unset
/// variable).
fn fallible_vars(ir: &Ir) -> u64 {
    let mut fallible = 0;
    loop {
        let before = fallible;
        for b in &ir.blocks {
            if let Cond::Let { var, val } = b.cond
                && b.short == OnShort::True
                && may_fail(ir, fallible, val)
            {
                fallible |= 1u64.checked_shl(var).unwrap_or(u64::MAX);
            }
        }
        if fallible == before {
            return fallible;
        }
    }
}

fn has_meta(ir: &Ir, v: Val) -> bool {
    match ir.node(v) {
        ValNode::Meta(_) => true,
        ValNode::Load { off: Some(o), .. } | ValNode::Neg(o) => has_meta(ir, o),
        ValNode::Bin(_, a, b) => has_meta(ir, a) || has_meta(ir, b),
        _ => false,
    }
}

/// The variables a block assigns, as a bit set (as `reads` gives them).
fn assigns(b: &Block) -> u64 {
    let var = match b.cond {
        Cond::Let { var, .. } => var,
        Cond::Lookup { result, .. } => match result.expand() {
            Some(v) => v.as_u32(),
            None => return 0,
        },
        _ => return 0,
    };
    1u64.checked_shl(var).unwrap_or(u64::MAX)
}

/// The nearest block that dominates both `a` and `b`.
fn common_dominator(idom: &[Option<usize>], mut a: usize, mut b: usize) -> usize {
    while a != b {
        if a > b {
            a = idom[a].expect("a block after the entry has a dominator");
        } else {
            b = idom[b].expect("a block after the entry has a dominator");
        }
    }
    a
}

fn edge(b: &Block, side: Side) -> Option<Edge> {
    match side {
        Side::True => Some(b.t),
        Side::False => Some(b.f),
        Side::Short => match b.short {
            OnShort::To(e) => Some(e),
            _ => None,
        },
    }
}

fn set_edge(b: &mut Block, side: Side, e: Edge) {
    match side {
        Side::True => b.t = e,
        Side::False => b.f = e,
        Side::Short => b.short = OnShort::To(e),
    }
}
