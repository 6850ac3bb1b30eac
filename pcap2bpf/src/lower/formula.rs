//! The formula algebra: tests combined with and, or and not, in
//! evaluation order, and its conversion to blocks with short-circuit
//! evaluation.

use pktmatch::ir::{Block, BlockId, Cond, Edge, EntityRef};

use crate::syntax::ast::Span;

/// A boolean formula of tests, in evaluation order.
#[derive(Debug, Clone)]
pub(super) enum P {
    True,
    False,
    Test(Cond, Span),
    /// The test, negated.
    NotTest(Cond, Span),
    // One box for both operands: half the allocations of two.
    And(Box<(P, P)>),
    Or(Box<(P, P)>),
}

impl P {
    /// Number of tests (each becomes one block).
    fn tests(&self) -> usize {
        match self {
            P::True | P::False => 0,
            P::Test(..) | P::NotTest(..) => 1,
            P::And(ab) | P::Or(ab) => ab.0.tests() + ab.1.tests(),
        }
    }
}

pub(super) fn and(a: P, b: P) -> P {
    P::And(Box::new((a, b)))
}

pub(super) fn or(a: P, b: P) -> P {
    P::Or(Box::new((a, b)))
}

/// `a` negated down to its tests (De Morgan): the blocks are those a
/// negation node would give (its edges swapped), without allocating one.
pub(super) fn not(a: P) -> P {
    match a {
        P::True => P::False,
        P::False => P::True,
        P::Test(c, s) => P::NotTest(c, s),
        P::NotTest(c, s) => P::Test(c, s),
        P::And(mut ab) => {
            let (x, y) = std::mem::replace(&mut *ab, (P::True, P::True));
            *ab = (not(x), not(y));
            P::Or(ab)
        }
        P::Or(mut ab) => {
            let (x, y) = std::mem::replace(&mut *ab, (P::True, P::True));
            *ab = (not(x), not(y));
            P::And(ab)
        }
    }
}

pub(super) fn and_opt(a: Option<P>, b: P) -> P {
    match a {
        Some(a) => and(a, b),
        None => b,
    }
}

/// The blocks of `p` and their entry: one block per test, every jump
/// forward, the block evaluated first at index 0.
pub(super) fn to_blocks(p: &P) -> (Vec<Block>, Edge) {
    // Build backwards so that every jump goes forward: the block
    // evaluated first gets the lowest index after the reversal below.
    // One block per test, allocated once at its exact size.
    let mut b = CfgBuilder {
        blocks: Vec::with_capacity(p.tests()),
    };
    let entry = b.emit(p, Edge::ACCEPT, Edge::REJECT);
    let n = b.blocks.len();
    let flip = |e: Edge| match e {
        Edge::Block(i) => Edge::Block(BlockId::new(n - 1 - i.index())),
        e => e,
    };
    b.blocks.reverse();
    for blk in &mut b.blocks {
        blk.t = flip(blk.t);
        blk.f = flip(blk.f);
    }
    (b.blocks, flip(entry))
}

/// Turns a formula into blocks with short-circuit evaluation.
struct CfgBuilder {
    blocks: Vec<Block>,
}

impl CfgBuilder {
    /// Emits `p` so that it continues at `t` when true and `f` when false;
    /// returns its entry. Blocks are pushed last-evaluated first.
    fn emit(&mut self, p: &P, t: Edge, f: Edge) -> Edge {
        match p {
            P::True => t,
            P::False => f,
            P::Test(cond, span) => self.emit_test(*cond, *span, t, f),
            P::And(ab) => {
                let eb = self.emit(&ab.1, t, f);
                self.emit(&ab.0, eb, f)
            }
            P::Or(ab) => {
                let eb = self.emit(&ab.1, t, f);
                self.emit(&ab.0, t, eb)
            }
            P::NotTest(cond, span) => self.emit_test(*cond, *span, f, t),
        }
    }

    /// One block testing `cond`.
    fn emit_test(&mut self, cond: Cond, span: Span, t: Edge, f: Edge) -> Edge {
        // An assignment always holds; its false edge is unused.
        let f = if matches!(cond, Cond::Let { .. }) {
            Edge::REJECT
        } else {
            f
        };
        self.blocks.push(Block::new(cond, t, f, span));
        Edge::Block(BlockId::new(self.blocks.len() - 1))
    }
}
