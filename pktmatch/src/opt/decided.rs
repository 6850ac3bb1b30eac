//! Tests whose outcome is known before the packet is read: a test of
//! two constants, and a test (not an assignment) whose two edges meet
//! and whose short read goes there too. Edges are pointed past them. Run
//! with [`Semantics::Exact`](crate::ir::Semantics::Exact), where this
//! keeps every verdict: libpcap's meaning has its own passes for these
//! (`jumps`, `root`), because there a skipped test's loads could have
//! rejected the packet.

use super::bypass;
use super::jumps::constant;
use crate::ir::Ir;

/// Points edges (and the entry) past blocks whose outcome is known.
pub(super) fn skip_decided(ir: &mut Ir) {
    bypass(ir, |ir, b| match constant(ir, b.cond) {
        Some(true) => Some(b.t),
        Some(false) => Some(b.f),
        // A short read going elsewhere (REJECT, or an `OnShort::To`
        // edge of its own) keeps the test.
        None if b.t == b.f && b.short_edge() == b.t && !b.cond.has_effect() => Some(b.t),
        None => None,
    });
}
