//! libpcap's `opt_root`, in two steps: evaluation starts past first tests
//! whose edges meet (`skip_trivial_root`), and the first test's loads
//! stay (`keep_root_loads`).

use super::jumps::{can_reject, constant};
use crate::ir::{Block, BlockId, Cond, Edge, EntityRef, Ir};

/// libpcap's `opt_root`: while the first test's edges meet, evaluation
/// starts where they go.
pub(super) fn skip_trivial_root(ir: &mut Ir) {
    while let Some(Edge::Block(i)) = ir.entry {
        let b = ir.blocks[i.index()];
        ir.entry = Some(match constant(ir, b.cond) {
            Some(r) => {
                if r {
                    b.t
                } else {
                    b.f
                }
            }
            None if b.t == b.f && !b.cond.has_effect() => {
                // Unoptimised, libpcap runs the test's loads.
                if ir.pcap_unoptimized && b.t != Edge::REJECT {
                    break;
                }
                b.t
            }
            None => break,
        });
    }
}

/// libpcap's optimiser never drops the loads of the first test: when its
/// branch goes (both edges meet), `opt_root` moves the test's statements
/// into the new first block. So if the first test is gone but the filter
/// still tests something, its loads come back as a test whose edges
/// meet, which the code generator keeps for its loads.
pub(super) fn keep_root_loads(ir: &mut Ir, root: Block) {
    let Some(Edge::Block(entry)) = ir.entry else {
        return;
    };
    let loads = match root.cond {
        Cond::Cmp { a, b, .. } => can_reject(ir, a) || can_reject(ir, b),
        Cond::ProtoChain { .. } | Cond::Let { .. } | Cond::Act { .. } | Cond::Lookup { .. } => {
            false
        }
    };
    if !loads || ir.blocks[entry.index()].cond == root.cond {
        return;
    }
    let shift = |e: Edge| match e {
        Edge::Block(i) => Edge::Block(BlockId::new(i.index() + 1)),
        e => e,
    };
    for b in &mut ir.blocks {
        b.map_edges(shift);
    }
    let next = shift(Edge::Block(entry));
    ir.blocks.insert(
        0,
        Block {
            t: next,
            f: next,
            ..root
        },
    );
    ir.entry = Some(Edge::Block(BlockId::new(0)));
}
