//! Bounds checks for direct packet access: which checks go where, and
//! the code of one check.
//!
//! Before a block, one check covers the largest constant offset that
//! *every* path from that block to ACCEPT reads (paths that reject anyway
//! do not count: rejecting earlier is the same verdict), and only when
//! the checks on every path into the block do not already cover it.
//! Loads at variable offsets are checked one by one (in `loads`).
//! Offsets beyond 64 KiB count as outside the packet (XDP and tc see at
//! most that much linear data).
//!
//! After a bounds check, r5 holds the end it checked, so the next check
//! from the same base moves r5 by the difference (two instructions
//! rather than three).

use bpf_builder::insn::JmpOp;

use super::blocks::Slot;
use super::frame::{CTX, DATA, END, SCRATCH};
use super::loads::MAX_PACKET_OFF;
use super::{Gen, Target};
use crate::ir::{Cond, Edge, EntityRef, Ir, OnShort, Semantics, Val, ValNode};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Check {
    #[default]
    None,
    /// The packet must have at least this many bytes.
    Len(u32),
    /// Every path from here rejects.
    Fail,
}

/// r5 after a bounds check on a constant offset: `data + n`, so the next
/// check adds the difference instead of starting from `data` again.
pub(super) type Scratch = u64;

/// Constant-offset bytes every path from `v`'s evaluation reads.
fn val_need(ir: &Ir, v: Val) -> u64 {
    match ir.node(v) {
        ValNode::Load { off: None, k, size } => u64::from(k) + u64::from(size),
        ValNode::Load { off: Some(o), .. } => val_need(ir, o),
        ValNode::Bin(_, a, b) => val_need(ir, a).max(val_need(ir, b)),
        ValNode::Neg(a) => val_need(ir, a),
        _ => 0,
    }
}

fn cond_need(ir: &Ir, c: Cond) -> u64 {
    match c {
        Cond::Cmp { a, b, .. } => val_need(ir, a).max(val_need(ir, b)),
        Cond::ProtoChain { nl, ipv6, .. } => u64::from(nl) + if ipv6 { 7 } else { 10 },
        Cond::Let { val, .. } => val_need(ir, val),
        Cond::Lookup { key, .. } => ir
            .key_parts(key)
            .iter()
            .map(|p| val_need(ir, p.val))
            .max()
            .unwrap_or(0),
        Cond::Act { .. } => 0,
    }
}

/// Where to check the packet length, and for how much (into
/// `slots[i].check`).
///
/// With libpcap's meaning, a check covers what every path to a verdict
/// other than no match reads: a packet too short for it ends with no
/// match whichever test reads past its end. Otherwise a short read can
/// lead anywhere, so each block checks what it reads itself, and a
/// failed check takes the block's short edge.
///
/// With `reload`, a block several edges lead to reads the packet
/// pointers again (`Slot::reload`) and knows no checked length.
pub(super) fn plan_checks(ir: &Ir, entry: Edge, reload: bool, slots: &mut [Slot]) {
    let n = ir.blocks.len();
    if reload {
        let mut preds = vec![0u8; n];
        for b in &ir.blocks {
            // Each successor block once: a block whose edges meet is one
            // predecessor.
            let mut to: Vec<usize> = b
                .successors()
                .filter_map(|e| match e {
                    Edge::Block(j) => Some(j.index()),
                    Edge::Verdict(_) => None,
                })
                .collect();
            to.sort_unstable();
            to.dedup();
            for j in to {
                preds[j] = preds[j].saturating_add(1);
            }
        }
        for (slot, p) in slots.iter_mut().zip(preds) {
            slot.reload = p > 1;
        }
    }
    let hoist = ir.semantics == Semantics::Libpcap;
    for i in (0..n).rev() {
        let b = ir.blocks[i];
        if !hoist {
            slots[i].need = Some(cond_need(ir, b.cond));
            continue;
        }
        let succ = |e: Edge| match e {
            Edge::REJECT => None,
            Edge::Verdict(_) => Some(0),
            Edge::Block(j) => slots[j.index()].need,
        };
        let after = match (succ(b.t), succ(b.f)) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, None) => x,
            (None, y) => y,
        };
        slots[i].need = after.map(|a| a.max(cond_need(ir, b.cond)));
    }
    if let Edge::Block(i) = entry {
        slots[i.index()].known = Some(0);
    }
    for i in 0..n {
        let k = if slots[i].reload {
            0
        } else {
            slots[i].known.unwrap_or(0)
        };
        let after = match slots[i].need {
            None => {
                slots[i].check = Check::Fail;
                continue;
            }
            Some(nd) if nd > u64::from(MAX_PACKET_OFF) => {
                slots[i].check = Check::Fail;
                continue;
            }
            Some(nd) if nd > k => {
                slots[i].check = Check::Len(nd as u32);
                nd
            }
            Some(_) => k,
        };
        let b = ir.blocks[i];
        // A short read reaches the short edge with only what was known.
        let short = match b.short {
            OnShort::Reject => None,
            OnShort::True | OnShort::False | OnShort::To(_) => Some((b.short_edge(), k)),
        };
        for (e, known) in [(b.t, after), (b.f, after)].into_iter().chain(short) {
            if let Edge::Block(j) = e {
                let j = j.index();
                slots[j].known = Some(slots[j].known.map_or(known, |x| x.min(known)));
            }
        }
    }
}

impl Gen<'_, '_> {
    /// Rejects, with a conditional jump so that the code after it stays
    /// statically reachable (the verifier refuses unreachable code).
    pub(super) fn always_reject(&mut self) {
        self.scratch = None;
        self.asm.mov32(SCRATCH, 0);
        let reject = self.rej();
        self.asm.jmp32(JmpOp::Eq, SCRATCH, 0, reject);
    }

    /// Rejects unless the packet has `n` bytes.
    pub(super) fn check_len(&mut self, n: u32) {
        let reject = self.rej();
        self.point_scratch(u64::from(n));
        let a = &mut *self.asm;
        a.jmp(JmpOp::Gt, SCRATCH, END, reject);
        if self.opts.test_run_meta && self.opts.target == Target::Xdp {
            a.jmp(JmpOp::Lt, CTX, n as i32, reject);
        }
    }

    /// Makes r5 `data + n`, from what r5 already holds when it can.
    fn point_scratch(&mut self, n: u64) {
        match self.scratch {
            Some(m) => {
                if n != m {
                    self.asm.add64(SCRATCH, (n as i64 - m as i64) as i32);
                }
            }
            None => {
                self.asm.mov64(SCRATCH, DATA);
                self.asm.add64(SCRATCH, n as i32);
            }
        }
        self.scratch = Some(n);
    }
}
