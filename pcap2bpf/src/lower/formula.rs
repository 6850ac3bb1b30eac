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
    /// Both operands (`and`: true) or either. One box for both
    /// operands: half the allocations of two.
    Op {
        and: bool,
        ab: Box<(P, P)>,
    },
}

// Formulas follow the filter's chains of `and` and `or`: a chain whose
// operators take turns is a tree as high as it is long, all down the
// left side. So the functions here loop down the left operands and
// recurse only into the right ones (whose depth the parser bounds).

impl P {
    /// Number of tests (each becomes one block).
    fn tests(&self) -> usize {
        let mut n = 0;
        let mut p = self;
        loop {
            match p {
                P::True | P::False => return n,
                P::Test(..) | P::NotTest(..) => return n + 1,
                P::Op { ab, .. } => {
                    n += ab.1.tests();
                    p = &ab.0;
                }
            }
        }
    }

    /// The left operand of an `And` or `Or`, `True` left in its place.
    fn take_left(&mut self) -> Option<P> {
        match self {
            P::Op { ab, .. } => Some(std::mem::replace(&mut ab.0, P::True)),
            _ => None,
        }
    }
}

impl Drop for P {
    /// Takes the left operands apart one by one: the derived drop would
    /// recurse down a chain, a stack frame per operator.
    fn drop(&mut self) {
        let mut next = self.take_left();
        while let Some(mut p) = next {
            next = p.take_left();
        }
    }
}

pub(super) fn and(a: P, b: P) -> P {
    P::Op {
        and: true,
        ab: Box::new((a, b)),
    }
}

pub(super) fn or(a: P, b: P) -> P {
    P::Op {
        and: false,
        ab: Box::new((a, b)),
    }
}

/// `a` negated down to its tests (De Morgan): the blocks are those a
/// negation node would give (its edges swapped), without allocating one.
pub(super) fn not(mut a: P) -> P {
    negate(&mut a);
    a
}

/// Negates `p` in place, down its left operands by a loop.
fn negate(mut p: &mut P) {
    loop {
        match p {
            P::True => *p = P::False,
            P::False => *p = P::True,
            P::Test(c, s) => *p = P::NotTest(*c, *s),
            P::NotTest(c, s) => *p = P::Test(*c, *s),
            P::Op { and, ab } => {
                *and = !*and;
                negate(&mut ab.1);
                p = &mut ab.0;
                continue;
            }
        }
        return;
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
        // The right operand first, then the left one going there (by
        // a loop: see the note on formulas above).
        let (mut p, mut t, mut f) = (p, t, f);
        loop {
            match p {
                P::True => return t,
                P::False => return f,
                P::Test(cond, span) => return self.emit_test(*cond, *span, t, f),
                P::NotTest(cond, span) => return self.emit_test(*cond, *span, f, t),
                P::Op { and: true, ab } => {
                    t = self.emit(&ab.1, t, f);
                    p = &ab.0;
                }
                P::Op { and: false, ab } => {
                    f = self.emit(&ab.1, t, f);
                    p = &ab.0;
                }
            }
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
