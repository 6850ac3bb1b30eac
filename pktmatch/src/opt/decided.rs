//! Tests whose outcome is known before the packet is read: a test of
//! two constants, and a test (not an assignment) whose two edges meet
//! and whose short read goes there too. Edges are pointed past them. Run
//! with [`Semantics::Exact`](crate::ir::Semantics::Exact), where this
//! keeps every verdict: libpcap's meaning has its own passes for these
//! (`jumps`, `root`), because there a skipped test's loads could have
//! rejected the packet.

use super::jumps::constant;
use crate::ir::{Cond, Edge, EntityRef, Ir, OnShort};

/// Points edges (and the entry) past blocks whose outcome is known.
pub(super) fn skip_decided(ir: &mut Ir) {
    let n = ir.blocks.len();
    let mut alias: Vec<Option<Edge>> = vec![None; n];
    let res = |e: Edge, alias: &[Option<Edge>]| match e {
        Edge::Block(i) => alias[i.index()].unwrap_or(e),
        e => e,
    };
    for i in (0..n).rev() {
        let mut b = ir.blocks[i];
        b.t = res(b.t, &alias);
        b.f = res(b.f, &alias);
        ir.blocks[i] = b;
        alias[i] = match constant(ir, b.cond) {
            Some(true) => Some(b.t),
            Some(false) => Some(b.f),
            None if b.t == b.f
                && b.short != OnShort::Reject
                && !matches!(b.cond, Cond::Let { .. }) =>
            {
                Some(b.t)
            }
            None => None,
        };
    }
    if let Some(e) = ir.entry {
        ir.entry = Some(res(e, &alias));
    }
}
