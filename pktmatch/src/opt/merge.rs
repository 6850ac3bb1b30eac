//! libpcap's `intern_blocks`: blocks that make the same test with the
//! same successors merge into one. It runs after the branch loop only, as
//! libpcap's does.

use super::{Scratch, Slot};
use crate::ir::{Block, BlockId, Cond, Edge, EntityRef, Ir, OnShort};

/// Up to this many blocks, `merge_duplicates` looks for an equal block
/// by scanning (cheaper than building a hash map); past it, the scans
/// (quadratic, every round) cost more than the map.
const SCAN_MAX: usize = 16;

/// What two blocks must share to merge: all but their spans.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct BlockKey {
    cond: Cond,
    t: Edge,
    f: Edge,
    short: OnShort,
}

impl BlockKey {
    /// The key of block `b`.
    fn of(b: &Block) -> BlockKey {
        BlockKey {
            cond: b.cond,
            t: b.t,
            f: b.f,
            short: b.short,
        }
    }
}

/// Where an edge goes once blocks are replaced by their aliases.
fn resolve(e: Edge, slots: &[Slot]) -> Edge {
    match e {
        Edge::Block(i) => slots[i.index()].alias.unwrap_or(e),
        e => e,
    }
}

/// Points block `i`'s edges (its short edge too) past aliased blocks;
/// returns whether they
/// moved, and the block.
fn set_edges(ir: &mut Ir, i: usize, slots: &[Slot]) -> (bool, Block) {
    let old = ir.blocks[i];
    let mut b = old;
    b.map_edges(|e| resolve(e, slots));
    ir.blocks[i] = b;
    (b != old, b)
}

/// Points the entry past aliased blocks; says whether it moved.
fn set_entry(ir: &mut Ir, slots: &[Slot]) -> bool {
    let old = ir.entry;
    ir.entry = old.map(|e| resolve(e, slots));
    ir.entry != old
}

/// Merges blocks that make the same test with the same successors (the
/// port tests that `port 53` repeats for tcp, udp and sctp, over IPv4
/// and IPv6): they behave alike on every path, so one serves all.
/// Blocks only jump forward, so scanning backwards sees successors merged
/// before their predecessors, and the kept (later) copy stays after every
/// block that now jumps to it.
pub(super) fn merge_duplicates(ir: &mut Ir, s: &mut Scratch) -> bool {
    let n = ir.blocks.len();
    if n < 2 {
        // Nothing to merge with, and no alias to resolve.
        return false;
    }
    s.reset(n);
    s.seen.clear();
    if n > SCAN_MAX {
        // At its final size at once: growing rehashes.
        s.seen.reserve(n);
    }
    let mut changed = false;
    for i in (0..n).rev() {
        let (moved, b) = set_edges(ir, i, &s.slots);
        changed |= moved;
        let key = BlockKey::of(&b);
        // At most one later block with this key is kept (the others are
        // aliases of it): that is the one to merge into.
        let kept = if n <= SCAN_MAX {
            (i + 1..n)
                .find(|&j| s.slots[j].alias.is_none() && BlockKey::of(&ir.blocks[j]) == key)
                .map(BlockId::new)
        } else {
            match s.seen.entry(key) {
                std::collections::hash_map::Entry::Occupied(kept) => Some(*kept.get()),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(BlockId::new(i));
                    None
                }
            }
        };
        if let Some(k) = kept {
            s.slots[i].alias = Some(Edge::Block(k));
        }
    }
    changed | set_entry(ir, &s.slots)
}
