//! Building the control-flow graph backwards: a block's successors exist
//! before it, so a ruleset is lowered from its last rule to its first
//! and every edge points at a block already built. [`Cfg::finish`]
//! reverses the order, so that every jump goes forward as the IR wants.

use pktmatch::Span;
use pktmatch::ir::{Block, BlockId, Cond, Edge, EntityRef, OnShort};

/// The blocks built so far, the one evaluated last first.
#[derive(Default, Clone)]
pub(super) struct Cfg {
    blocks: Vec<Block>,
    /// The blocks' [`weight`]s, summed.
    weight: usize,
}

/// What a block weighs in a program's budget ([`super::PROGRAM_BLOCKS`]):
/// an action or a map lookup is a helper call the verifier expands
/// inline (an array or hash lookup becomes several instructions), some
/// three times a test's code. Counted by blocks alone, a program of
/// counting rules outgrew the 16-bit jumps the verifier patches
/// (measured: 3,270 blocks, a third of them counters, 26,708
/// instructions before patching, refused).
fn weight(cond: &Cond) -> usize {
    match cond {
        Cond::Act { .. } | Cond::Lookup { .. } => 3,
        _ => 1,
    }
}

/// Where a block goes when its loads do not fit in the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Short {
    /// Its true edge.
    True,
    /// Its false edge.
    False,
}

impl Cfg {
    /// A block testing `cond`: `t` when it holds, `f` when not, and
    /// `short` when its loads do not fit; its entry edge.
    pub(super) fn test(&mut self, cond: Cond, t: Edge, f: Edge, short: Short, span: Span) -> Edge {
        let short = match short {
            Short::True => OnShort::True,
            Short::False => OnShort::False,
        };
        self.weight += weight(&cond);
        self.blocks
            .push(Block::new(cond, t, f, span).on_short(short));
        Edge::Block(BlockId::new(self.blocks.len() - 1))
    }

    /// A block as it is (its edges, short edge included, to blocks
    /// already built); its entry edge.
    pub(super) fn block(&mut self, block: Block) -> Edge {
        self.weight += weight(&block.cond);
        self.blocks.push(block);
        Edge::Block(BlockId::new(self.blocks.len() - 1))
    }

    /// How many blocks there are.
    pub(super) fn len(&self) -> usize {
        self.blocks.len()
    }

    /// What the blocks weigh ([`weight`]).
    pub(super) fn weight(&self) -> usize {
        self.weight
    }

    /// The blocks in evaluation order (every jump forward) and the entry.
    pub(super) fn finish(mut self, entry: Edge) -> (Vec<Block>, Edge) {
        let n = self.blocks.len();
        let flip = |e: Edge| match e {
            Edge::Block(i) => Edge::Block(BlockId::new(n - 1 - i.index())),
            e => e,
        };
        self.blocks.reverse();
        for b in &mut self.blocks {
            b.map_edges(flip);
        }
        (self.blocks, flip(entry))
    }
}
