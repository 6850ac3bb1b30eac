//! The prologue of each target: the context and the packet pointers into
//! their registers, the test-run metadata (XDP), the bytes the filter
//! reads pulled into the linear data (tc), with fragment support the
//! choice between the two copies of the filter (XDP), and the lengths a
//! probe function is given.

use bpf_builder::asm::{Annotation, Label};
use bpf_builder::ctx::{sk_buff, xdp_md};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, JmpOp, Reg, Size};

use super::frame::{CAPLEN_SLOT, CONTEXT_SLOT, CTX, DATA, END, WIRELEN_SLOT};
use super::loads::MAX_PACKET_OFF;
use super::{Gen, Target};
use crate::ir::{Cond, Ir, Val, ValNode, Verdict};

/// Ethernet header length.
const ETH_HLEN: u32 = 14;

/// Whether any test reads packet metadata (from the context).
pub(super) fn uses_meta(ir: &Ir) -> bool {
    fn val(ir: &Ir, v: Val) -> bool {
        match ir.node(v) {
            ValNode::Meta(_) => true,
            ValNode::Load { off: Some(o), .. } | ValNode::Neg(o) => val(ir, o),
            ValNode::Bin(_, a, b) => val(ir, a) || val(ir, b),
            _ => false,
        }
    }
    ir.blocks.iter().any(|b| match b.cond {
        Cond::Cmp { a, b, .. } => val(ir, a) || val(ir, b),
        Cond::ProtoChain { .. } | Cond::Act { .. } => false,
        Cond::Let { val: v, .. } => val(ir, v),
        Cond::Lookup { key, .. } => ir.key_parts(key).iter().any(|p| val(ir, p.val)),
    })
}

impl Gen<'_, '_> {
    /// The prologue; with fragment support, it also decides which copy of
    /// the filter runs and returns the label of the second (helper loads),
    /// if there is one.
    pub(super) fn prologue(&mut self) -> Option<Label> {
        self.asm.set_source(Annotation::new("prologue"));
        if self.opts.keep_context
            || self
                .ir
                .blocks
                .iter()
                .any(|b| matches!(b.cond, Cond::Act { .. } | Cond::Lookup { .. }))
        {
            self.asm.stx(Size::DW, Reg::R10, CONTEXT_SLOT, Reg::R1);
        }
        if self.frags() {
            self.asm.mov64(CTX, Reg::R1);
            return self.frags_prologue();
        }
        let needs_ctx =
            self.opts.target != Target::Xdp || uses_meta(self.ir) || self.opts.reload_at_joins;
        let a = &mut *self.asm;
        if needs_ctx {
            a.mov64(CTX, Reg::R1);
        }
        match self.opts.target {
            Target::Xdp => {
                a.ldx(Size::W, DATA, Reg::R1, xdp_md::DATA);
                a.ldx(Size::W, END, Reg::R1, xdp_md::DATA_END);
                if self.opts.test_run_meta {
                    // struct { u32 caplen, wirelen; } just before data.
                    a.ldx(Size::W, Reg::R2, Reg::R1, xdp_md::DATA_META);
                    a.mov64(Reg::R3, Reg::R2);
                    a.add64(Reg::R3, 8);
                    // No metadata: the test run's input is not ours.
                    let nomatch = self.verdicts[Verdict::NO_MATCH].label;
                    self.verdicts[Verdict::NO_MATCH].used = true;
                    let a = &mut *self.asm;
                    a.jmp(JmpOp::Gt, Reg::R3, DATA, nomatch);
                    a.ldx(Size::W, CTX, Reg::R2, 0);
                    a.ldx(Size::W, Reg::R4, Reg::R2, 4);
                    a.stx(Size::W, Reg::R10, WIRELEN_SLOT, Reg::R4);
                }
            }
            Target::Tc => {
                a.ldx(Size::W, DATA, Reg::R1, sk_buff::DATA);
                a.ldx(Size::W, END, Reg::R1, sk_buff::DATA_END);
                self.pull_what_is_read();
            }
            Target::SocketFilter => {}
            Target::Probe => {
                // The address stays in r6 (moved there above); the
                // lengths go to the stack, as loads clobber r1-r5.
                a.stx(Size::W, Reg::R10, CAPLEN_SLOT, Reg::R2);
                a.stx(Size::W, Reg::R10, WIRELEN_SLOT, Reg::R3);
            }
        }
        None
    }

    /// How many bytes of a packet the filter can read, at most
    /// [`MAX_PACKET_OFF`] (also when unbounded).
    fn readable(&self) -> u32 {
        self.ir
            .max_read()
            .map_or(MAX_PACKET_OFF, |n| n.min(u64::from(MAX_PACKET_OFF)) as u32)
    }

    /// XDP with fragment support: `data .. data_end` is only the frame's
    /// first buffer. The whole length goes to the stack (for `len`); when
    /// the frame is in one buffer, or its first buffer holds all the
    /// filter can read, the direct-access copy runs; else the copy with
    /// helper loads, whose label this returns (none when the filter reads
    /// no packet byte).
    fn frags_prologue(&mut self) -> Option<Label> {
        let need = self.readable();
        let a = &mut *self.asm;
        a.call(Helper::XdpGetBuffLen);
        a.stx(Size::W, Reg::R10, WIRELEN_SLOT, Reg::R0);
        a.ldx(Size::W, DATA, CTX, xdp_md::DATA);
        a.ldx(Size::W, END, CTX, xdp_md::DATA_END);
        if need == 0 {
            return None;
        }
        let (direct, helper) = (a.new_label(), a.new_label());
        let first = Reg::R2;
        a.mov64(first, END);
        a.alu64(AluOp::Sub, first, DATA);
        a.jmp(JmpOp::Ge, first, Reg::R0, direct);
        a.jmp(JmpOp::Ge, first, need as i32, direct);
        a.ja(helper);
        a.bind(direct);
        Some(helper)
    }

    /// tc: direct access sees only the skb's linear data, and the rest of
    /// a packet (TCP payload, for one) often sits in page fragments. When
    /// the linear part is shorter than both the packet and what the filter
    /// can read, `bpf_skb_pull_data` makes that much linear, so the filter
    /// reads what libpcap reads. (If the pull fails, loads past the
    /// linear part reject, as for a packet cut short.) Part of the
    /// prologue: r1 still holds the context.
    fn pull_what_is_read(&mut self) {
        let need = self.readable();
        // The first 14 bytes are linear: Ethernet drivers pull the header
        // for `eth_type_trans`, and raw-IP devices (tun, wireguard) hand
        // over at least a linear IP header.
        if need <= ETH_HLEN {
            return;
        }
        let a = &mut *self.asm;
        let linear = a.new_label();
        let (len, head) = (Reg::R2, Reg::R3);
        a.mov64(head, END);
        a.alu64(AluOp::Sub, head, DATA);
        a.jmp(JmpOp::Ge, head, need as i32, linear);
        a.ldx(Size::W, len, CTX, sk_buff::LEN);
        a.jmp(JmpOp::Ge, head, len, linear);
        let pull = a.new_label();
        a.jmp32(JmpOp::Le, len, need as i32, pull);
        a.mov32(len, need as i32);
        // r1 still holds the context.
        a.bind(pull);
        a.call(Helper::SkbPullData);
        a.ldx(Size::W, DATA, CTX, 76);
        a.ldx(Size::W, END, CTX, 80);
        a.bind(linear);
    }
}
