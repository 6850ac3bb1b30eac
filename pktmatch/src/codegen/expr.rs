//! Values into registers: constants, lengths, metadata, variables,
//! packet loads and arithmetic, each computed into a register from the
//! pool. A load compared with (or masked by) a constant may stay in
//! network byte order, the constant swapped instead.

use bpf_builder::ctx::{sk_buff, xdp_md};
use bpf_builder::insn::{AluOp, Endian, JmpOp, Reg, Size};

use super::frame::{CTX, DATA, END, WIRELEN_SLOT, var_slot};
use super::{Gen, R, Target};
use crate::ir::{BinOp, Meta, Val, ValNode};

/// Byte-swaps the low `size` bytes of `k` (network to host order on a
/// little-endian machine).
pub(super) fn swap(k: u32, size: u8) -> u32 {
    if cfg!(target_endian = "big") {
        return k;
    }
    match size {
        2 => u32::from((k as u16).swap_bytes()),
        4 => k.swap_bytes(),
        _ => k,
    }
}

impl Gen<'_, '_> {
    /// The load size if `v` can be computed in network byte order: a load
    /// of 2 or 4 bytes, possibly masked by a constant.
    pub(super) fn raw_size(&self, v: Val) -> Option<u8> {
        match self.ir.node(v) {
            ValNode::Load { size, .. } if size > 1 => Some(size),
            ValNode::Bin(BinOp::And, x, m) if self.ir.const_of(m).is_some() => self.raw_size(x),
            _ => None,
        }
    }

    /// Computes `v` into a fresh register (`raw`: in network byte order,
    /// see [`Gen::raw_size`]).
    pub(super) fn eval(&mut self, v: Val, raw: bool) -> R<Reg> {
        if self.acc == Some((v, raw)) && self.free.last() == Some(&Reg::R0) {
            return self.alloc();
        }
        match self.ir.node(v) {
            ValNode::Const(k) => {
                let r = self.alloc()?;
                self.asm.mov32(r, k as i32);
                Ok(r)
            }
            ValNode::Len => {
                let r = self.alloc()?;
                match self.opts.target {
                    // The prologue put the whole length there.
                    Target::Probe => self.asm.ldx(Size::W, r, Reg::R10, WIRELEN_SLOT),
                    Target::Xdp if self.test_mode() || self.frags() => {
                        self.asm.ldx(Size::W, r, Reg::R10, WIRELEN_SLOT)
                    }
                    Target::Xdp => {
                        self.asm.mov64(r, END);
                        self.asm.alu64(AluOp::Sub, r, DATA);
                    }
                    Target::Tc | Target::SocketFilter => {
                        self.asm.ldx(Size::W, r, CTX, sk_buff::LEN)
                    }
                }
                Ok(r)
            }
            ValNode::Meta(m) => {
                let r = self.alloc()?;
                self.meta(m, r);
                Ok(r)
            }
            ValNode::Var(n) => {
                let r = self.alloc()?;
                self.asm.ldx(Size::W, r, Reg::R10, var_slot(n));
                Ok(r)
            }
            ValNode::Load { off, k, size } => {
                let r = match off {
                    None => {
                        let r = self.alloc()?;
                        self.load_abs(r, k, size, raw);
                        r
                    }
                    Some(o) => {
                        self.point_at(o)?;
                        let r = self.alloc()?;
                        self.load_cached(r, k, size, raw);
                        r
                    }
                };
                Ok(r)
            }
            ValNode::Neg(a) => {
                let r = self.eval(a, false)?;
                self.asm.alu32(AluOp::Neg, r, 0);
                Ok(r)
            }
            ValNode::Bin(op, a, b) => {
                let size = if raw { self.raw_size(a) } else { None };
                let mut ra = self.eval(a, raw)?;
                if let Some(k) = self.ir.const_of(b) {
                    let k = match size {
                        Some(s) if op == BinOp::And => swap(k, s),
                        _ => k,
                    };
                    self.bin_imm(op, ra, k);
                } else {
                    ra = self.keep_across_loads(ra, b)?;
                    let rb = self.eval(b, false)?;
                    self.bin_reg(op, ra, rb);
                    self.release(rb);
                }
                Ok(ra)
            }
        }
    }

    fn meta(&mut self, m: Meta, r: Reg) {
        let off = match (self.opts.target, m) {
            (Target::Xdp, Meta::IfIndex) => xdp_md::INGRESS_IFINDEX,
            // A probe function has none (`emit` refuses it there).
            (Target::Xdp | Target::Probe, _) => {
                // No metadata tag and no direction in XDP: tags are in the
                // frame and every packet is incoming.
                self.asm.mov32(r, 0);
                return;
            }
            (_, Meta::VlanPresent) => sk_buff::VLAN_PRESENT,
            (_, Meta::VlanTci) => sk_buff::VLAN_TCI,
            (_, Meta::IfIndex) => sk_buff::IFINDEX,
            (_, Meta::PktType) => sk_buff::PKT_TYPE,
            (_, Meta::VlanProto) => {
                // The kernel keeps it in network order.
                self.asm.ldx(Size::W, r, CTX, sk_buff::VLAN_PROTO);
                self.asm.endian(Endian::Be, r, 16);
                return;
            }
        };
        self.asm.ldx(Size::W, r, CTX, off);
    }

    fn bin_imm(&mut self, op: BinOp, r: Reg, k: u32) {
        let a = &mut *self.asm;
        let alu = match op {
            BinOp::Add => AluOp::Add,
            BinOp::Sub => AluOp::Sub,
            BinOp::Mul => AluOp::Mul,
            BinOp::Div | BinOp::Mod if k == 0 => {
                self.always_reject();
                return;
            }
            BinOp::Div => AluOp::Div,
            BinOp::Mod => AluOp::Mod,
            BinOp::And => AluOp::And,
            BinOp::Or => AluOp::Or,
            BinOp::Xor => AluOp::Xor,
            BinOp::Shl | BinOp::Shr if k >= 32 => {
                a.mov32(r, 0);
                return;
            }
            BinOp::Shl => AluOp::Lsh,
            BinOp::Shr => AluOp::Rsh,
        };
        a.alu32(alu, r, k as i32);
    }

    fn bin_reg(&mut self, op: BinOp, r: Reg, b: Reg) {
        let reject = self.rej();
        let alu = match op {
            BinOp::Add => AluOp::Add,
            BinOp::Sub => AluOp::Sub,
            BinOp::Mul => AluOp::Mul,
            BinOp::Div | BinOp::Mod => {
                self.asm.jmp32(JmpOp::Eq, b, 0, reject);
                if op == BinOp::Div {
                    AluOp::Div
                } else {
                    AluOp::Mod
                }
            }
            BinOp::And => AluOp::And,
            BinOp::Or => AluOp::Or,
            BinOp::Xor => AluOp::Xor,
            BinOp::Shl | BinOp::Shr => {
                let (small, done) = (self.asm.new_label(), self.asm.new_label());
                self.asm.jmp32(JmpOp::Lt, b, 32, small);
                self.asm.mov32(r, 0);
                self.asm.ja(done);
                self.asm.bind(small);
                let alu = if op == BinOp::Shl {
                    AluOp::Lsh
                } else {
                    AluOp::Rsh
                };
                self.asm.alu32(alu, r, b);
                self.asm.bind(done);
                return;
            }
        };
        self.asm.alu32(alu, r, b);
    }
}
