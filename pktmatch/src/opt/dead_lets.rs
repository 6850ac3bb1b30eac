//! Assignments nothing reads: a `Let` block whose variable no test reads
//! is skipped, when computing its value cannot reject (e.g. the inner
//! offsets after a trailing `geneve`). Runs first, before the branch
//! loop.

use super::bypass;
use super::jumps::can_reject;
use crate::ir::{Cond, Ir, Val, ValNode};

/// The variables `v` reads, as a bit set.
pub(super) fn reads(ir: &Ir, v: Val) -> u64 {
    match ir.node(v) {
        ValNode::Var(n) => 1u64.checked_shl(n).unwrap_or(0),
        ValNode::Load { off: Some(o), .. } | ValNode::Neg(o) => reads(ir, o),
        ValNode::Bin(_, a, b) => reads(ir, a) | reads(ir, b),
        _ => 0,
    }
}

/// Skips assignments to variables nothing reads, when computing the value
/// cannot reject (e.g. the inner offsets after a trailing `geneve`).
pub(super) fn drop_dead_lets(ir: &mut Ir) {
    if !ir.blocks.iter().any(|b| matches!(b.cond, Cond::Let { .. })) {
        return;
    }
    let read = ir.blocks.iter().fold(0u64, |acc, b| {
        acc | match b.cond {
            Cond::Cmp { a, b, .. } => reads(ir, a) | reads(ir, b),
            Cond::Let { val, .. } => reads(ir, val),
            Cond::Lookup { key, .. } => ir
                .key_parts(key)
                .iter()
                .fold(0, |r, p| r | reads(ir, p.val)),
            Cond::ProtoChain { .. } | Cond::Act { .. } => 0,
        }
    });
    bypass(ir, |ir, b| match b.cond {
        Cond::Let { var, val }
            if read & 1u64.checked_shl(var).unwrap_or(0) == 0 && !can_reject(ir, val) =>
        {
            Some(b.t)
        }
        _ => None,
    });
}
