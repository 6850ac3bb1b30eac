//! The optimiser: jump threading, folding of constant tests, removal of
//! tests whose edges meet, and dead block removal.
//!
//! Soundness with truncated packets: a test may be skipped when its
//! outcome is implied by an earlier test *on the same value* along the
//! path (that value was loaded successfully there, so loading it again
//! cannot reject). Static knowledge alone (e.g. a byte is at most 255)
//! never removes a test, since the test's loads could reject the packet.
//! Tests whose two edges go to the same place are removed with their
//! loads, as libpcap's optimiser does (not when libpcap leaves the filter
//! unoptimised, see [`Ir::pcap_unoptimized`]). `Let` blocks (variable
//! assignments) are never skipped: what follows may read the variable.
//!
//! Exactness with truncated packets: which tests go decides which loads
//! run, so the passes follow libpcap's optimiser, not just soundness:
//! its branch loop (module `jumps`: threading by `fold_edge` over the
//! edge dominators of the pass start, then the pull-ups of module
//! `pullup`), equal blocks merged only after it (module `merge`,
//! libpcap's `intern_blocks`), and the first test's loads kept (module
//! `root`, `opt_root`).
//!
//! All of that is libpcap's meaning ([`Semantics::Libpcap`]). With
//! [`Semantics::Exact`] a short read goes where each block says, which
//! libpcap's threading and pull-ups do not respect; only the passes that
//! keep every verdict on every packet run: `dead_lets`, `known` (tests
//! the path before them decides, threaded only through edges no short
//! read takes), `decided` (tests of constants, tests that go one way
//! whatever they find), `merge` and `compact`.
//!
//! One pass a module: `dead_lets` (unread assignments), `known`, `jumps` and
//! `pullup` (the branch loop), `compact` (dead blocks), `merge`,
//! `decided` and `root`; this module holds the driver, [`optimize`], and
//! the state the passes share.

mod ancestors;
mod compact;
mod dead_lets;
mod decided;
mod jumps;
mod known;
mod merge;
mod pullup;
mod root;
mod walks;

use std::collections::HashMap;

use cranelift_entity::packed_option::PackedOption;

use crate::ir::{Block, BlockId, Edge, EntityRef, FxBuild, Ir, Semantics};
use compact::compact;
use dead_lets::drop_dead_lets;
use decided::skip_decided;
use jumps::{Passes, branch_loop};
use known::thread_known_tests;
use merge::{BlockKey, merge_duplicates};
use root::{keep_root_loads, skip_trivial_root};

/// Per-block working state of the passes; the default is a slot before
/// a pass looks at its block.
#[derive(Clone, Copy, Default)]
struct Slot {
    /// Where an edge to the block really goes (`merge_duplicates`).
    alias: Option<Edge>,
    /// The block's id after compaction, none if no edge reaches it
    /// (`compact`).
    index: PackedOption<BlockId>,
}

/// Buffers the passes reuse from round to round, so that a round
/// allocates nothing once they have grown.
#[derive(Default)]
struct Scratch {
    slots: Vec<Slot>,
    /// The blocks kept so far by `merge_duplicates`, on large graphs.
    seen: HashMap<BlockKey, BlockId, FxBuild>,
}

impl Scratch {
    /// `n` fresh slots.
    fn reset(&mut self, n: usize) {
        self.slots.clear();
        self.slots.resize(n, Slot::default());
    }
}

/// Optimises `ir` in place, keeping the meaning its [`Semantics`] gives
/// it on every packet, short ones included.
pub fn optimize(ir: &mut Ir) {
    match ir.semantics {
        Semantics::Libpcap => optimize_like_libpcap(ir),
        Semantics::Exact => optimize_exact(ir),
    }
}

/// The passes that keep every verdict whatever a short read means.
fn optimize_exact(ir: &mut Ir) {
    drop_dead_lets(ir);
    for _ in 0..known::ROUNDS {
        if !thread_known_tests(ir) {
            break;
        }
    }
    skip_decided(ir);
    let mut s = Scratch::default();
    merge_duplicates(ir, &mut s);
    compact(ir, &mut s);
}

/// libpcap's optimiser, pass for pass where a short read's verdict
/// depends on it.
fn optimize_like_libpcap(ir: &mut Ir) {
    drop_dead_lets(ir);
    let root = match ir.entry {
        Some(Edge::Block(i)) => Some(ir.blocks[i.index()]),
        _ => None,
    };
    let mut s = Scratch::default();
    // libpcap's branch loop, pull-ups included.
    branch_loop(ir, &mut Passes::default(), &mut |ir| {
        compact(ir, &mut s);
    });
    // libpcap merges equal blocks only after its loops (`intern_blocks`):
    // a test whose two edges meet through a merge stays, with its loads,
    // except at the root (`opt_root`), whose loads stay all the same.
    if merge_duplicates(ir, &mut s) {
        compact(ir, &mut s);
    }
    skip_trivial_root(ir);
    compact(ir, &mut s);
    if let Some(root) = root {
        keep_root_loads(ir, root);
    }
    debug_assert_eq!(ir.verify(), Ok(()), "after optimisation");
}

/// Points every edge (and the entry) past the blocks `skip` bypasses.
/// Blocks are visited from the last: `skip(ir, block)` sees the block with
/// its edges already pointed past the later bypassed ones, and says where
/// an edge to it may go instead (`None`: the block stays).
fn bypass(ir: &mut Ir, mut skip: impl FnMut(&Ir, Block) -> Option<Edge>) {
    let n = ir.blocks.len();
    let mut alias: Vec<Option<Edge>> = vec![None; n];
    let res = |e: Edge, alias: &[Option<Edge>]| match e {
        Edge::Block(i) => alias[i.index()].unwrap_or(e),
        e => e,
    };
    for i in (0..n).rev() {
        let mut b = ir.blocks[i];
        b.map_edges(|e| res(e, &alias));
        ir.blocks[i] = b;
        alias[i] = skip(ir, b);
    }
    if let Some(e) = ir.entry {
        ir.entry = Some(res(e, &alias));
    }
}
