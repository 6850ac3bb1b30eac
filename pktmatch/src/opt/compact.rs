//! Dead-block removal: blocks no edge reaches go, the others keep their
//! order and are numbered again.

use super::Scratch;
use crate::ir::{BlockId, Edge, EntityRef, Ir};

/// Drops unreachable blocks, keeping the order.
pub(super) fn compact(ir: &mut Ir, s: &mut Scratch) -> bool {
    let n = ir.blocks.len();
    s.reset(n);
    let slots = &mut s.slots;
    // Mark the live blocks (with any index), then number them.
    let live = BlockId::new(0).into();
    if let Some(Edge::Block(i)) = ir.entry {
        slots[i.index()].index = live;
    }
    for i in 0..n {
        if slots[i].index.is_some() {
            for e in ir.blocks[i].successors() {
                if let Edge::Block(j) = e {
                    slots[j.index()].index = live;
                }
            }
        }
    }
    let mut next = 0;
    for slot in slots.iter_mut() {
        if slot.index.is_some() {
            slot.index = BlockId::new(next).into();
            next += 1;
        }
    }
    if next == n {
        // All live: the numbering stays as it is.
        return false;
    }
    let map = |e: Edge| match e {
        Edge::Block(i) => Edge::Block(
            slots[i.index()]
                .index
                .expect("live blocks go to live blocks"),
        ),
        e => e,
    };
    let mut kept = 0;
    for (i, slot) in slots.iter().enumerate() {
        if slot.index.is_some() {
            let mut b = ir.blocks[i];
            b.map_edges(map);
            ir.blocks[kept] = b;
            kept += 1;
        }
    }
    ir.blocks.truncate(kept);
    ir.entry = ir.entry.map(map);
    true
}
