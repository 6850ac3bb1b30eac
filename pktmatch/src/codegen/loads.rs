//! Reading packet bytes, in one of four ways (`Loads`): direct access
//! between `data` and `data_end` after bounds checks the verifier sees
//! (XDP, tc), `ld_abs`/`ld_ind` (socket filters), `bpf_xdp_load_bytes`
//! (XDP frames in fragments), or `bpf_probe_read_kernel` within the
//! captured length (probe functions over bytes in kernel memory).
//!
//! XDP with fragment support (`EmitOptions::xdp_frags`) emits the filter
//! twice: with direct access, for frames whose first buffer holds all the
//! filter can read, and then with `bpf_xdp_load_bytes`, which clobbers
//! r0-r5 as `ld_abs` does, so that copy has a socket filter's shape.
//!
//! For loads at a variable offset, r9 itself moves to the end it checked,
//! and those loads reach back from it.

use bpf_builder::asm::{Asm, Label};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, Endian, Insn, JmpOp, Reg, Size};

use super::frame::{CAPLEN_SLOT, CTX, DATA, END, LOAD_SLOT, PTR, SCRATCH};
use super::{Gen, R, Target};
use crate::ir::{Val, ValNode};

/// Largest packet offset the generated code can read at a constant
/// offset (the verifier's limit).
pub const MAX_PACKET_OFF: u32 = 0xffff;

/// Largest variable part of an offset (so that, with the constant part,
/// it stays within what the verifier tracks).
pub const MAX_VAR_OFF: u32 = 0x7fff;

/// Socket filters: largest packet offset `ld_abs`/`ld_ind` can read
/// (their offsets are signed; negative ones address special areas).
const SOCKET_MAX_OFF: u32 = 0x7fff_ffff;

/// Socket filters: largest variable part of an offset (with a constant
/// part of at most 64 KiB the sum stays below [`SOCKET_MAX_OFF`]).
const SOCKET_MAX_VAR_OFF: u32 = 0x7ffe_0000;

/// How the generated code reads packet bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Loads {
    /// Directly between `data` and `data_end`, after bounds checks the
    /// verifier sees.
    Direct,
    /// `ld_abs`/`ld_ind` (socket filters): they check the bounds and end
    /// the program, returning 0, past them.
    Legacy,
    /// `bpf_xdp_load_bytes` into a stack slot (XDP frames in fragments);
    /// a load that fails rejects. Like `ld_abs`, a call clobbers r0-r5,
    /// so the code has the shape of a socket filter's.
    Helper,
    /// `bpf_probe_read_kernel` into a stack slot, from the address in r6,
    /// after a check against the captured length on the stack (probe
    /// functions); past it, or on a fault, the load rejects. The same
    /// shape as `Helper`.
    Probe,
}

/// `r0 = packet[index + k ..][..size]` in host order, by `ld_abs`/`ld_ind`,
/// by `bpf_xdp_load_bytes` (the context in r6) or by
/// `bpf_probe_read_kernel` (the address in r6); clobbers r0-r5.
pub(super) fn packet_load(
    a: &mut Asm,
    loads: Loads,
    size: u8,
    index: Option<Reg>,
    k: u32,
    reject: Label,
) {
    let sz = size_of(size);
    match loads {
        Loads::Direct => unreachable!("direct loads do not go through the helpers"),
        Loads::Legacy => a.emit(match index {
            None => Insn::ld_abs(sz, k as i32),
            Some(x) => Insn::ld_ind(sz, x, k as i32),
        }),
        Loads::Helper => {
            a.mov64(Reg::R1, CTX);
            match index {
                None => a.mov32(Reg::R2, k as i32),
                Some(x) => {
                    a.mov32(Reg::R2, x);
                    if k != 0 {
                        a.alu32(AluOp::Add, Reg::R2, k as i32);
                    }
                }
            }
            a.mov64(Reg::R3, Reg::R10);
            a.add64(Reg::R3, i32::from(LOAD_SLOT));
            a.mov32(Reg::R4, i32::from(size));
            a.call(Helper::XdpLoadBytes);
            load_from_slot(a, size, reject);
        }
        Loads::Probe => {
            // libpcap's meaning: bytes past the captured ones reject. The
            // offset is below 2^32 and `size` small: no wrap in 64 bits.
            let (caplen, off, src) = (Reg::R1, Reg::R2, Reg::R3);
            a.ldx(Size::W, caplen, Reg::R10, CAPLEN_SLOT);
            a.mov64(src, CTX);
            match index {
                // `k + size` is at most `SOCKET_MAX_OFF` (`load_abs`).
                None => {
                    a.jmp(JmpOp::Lt, caplen, (k + u32::from(size)) as i32, reject);
                    a.add64(src, k as i32);
                }
                Some(x) => {
                    a.mov32(off, x);
                    if k != 0 {
                        a.alu32(AluOp::Add, off, k as i32);
                    }
                    a.alu64(AluOp::Add, src, off);
                    a.add64(off, i32::from(size));
                    a.jmp(JmpOp::Gt, off, caplen, reject);
                }
            }
            a.mov64(Reg::R1, Reg::R10);
            a.add64(Reg::R1, i32::from(LOAD_SLOT));
            a.mov32(Reg::R2, i32::from(size));
            a.call(Helper::ProbeReadKernel);
            load_from_slot(a, size, reject);
        }
    }
}

/// After a helper copied `size` bytes to the load slot: rejects if it
/// failed (r0 not 0), else `r0` = the bytes in host order.
fn load_from_slot(a: &mut Asm, size: u8, reject: Label) {
    a.jmp32(JmpOp::Ne, Reg::R0, 0, reject);
    a.ldx(size_of(size), Reg::R0, Reg::R10, LOAD_SLOT);
    if size > 1 {
        a.endian(Endian::Be, Reg::R0, 8 * size);
    }
}

fn size_of(n: u8) -> Size {
    match n {
        1 => Size::B,
        2 => Size::H,
        _ => Size::W,
    }
}

impl Gen<'_, '_> {
    /// `r = packet[k .. k + size]` (already bounds-checked for direct access).
    pub(super) fn load_abs(&mut self, r: Reg, k: u32, size: u8, raw: bool) {
        let sz = size_of(size);
        if !self.direct() {
            if u64::from(k) + u64::from(size) > u64::from(SOCKET_MAX_OFF) {
                self.always_reject();
                self.asm.mov32(r, 0);
                return;
            }
            let reject = self.rej();
            packet_load(self.asm, self.loads, size, None, k, reject);
            self.acc = None;
            if r != Reg::R0 {
                self.asm.mov64(r, Reg::R0);
            }
            return;
        }
        if k <= i16::MAX as u32 {
            self.asm.ldx(sz, r, DATA, k as i16);
        } else {
            self.asm.mov64(r, DATA);
            self.asm.add64(r, k as i32);
            self.asm.ldx(sz, r, r, 0);
        }
        if !raw && size > 1 {
            self.asm.endian(Endian::Be, r, 8 * size);
        }
    }

    /// Socket filters: moves `r` out of r0 when evaluating `next` loads
    /// from the packet (`ld_abs`/`ld_ind` overwrite r0). Returns where
    /// the value is now.
    pub(super) fn keep_across_loads(&mut self, r: Reg, next: Val) -> R<Reg> {
        if self.direct() || r != Reg::R0 || !self.reads_packet(next) {
            return Ok(r);
        }
        let kept = self.alloc()?;
        self.asm.mov64(kept, r);
        self.release(r);
        Ok(kept)
    }

    /// Whether evaluating `v` loads packet bytes at a variable offset.
    fn loads_at_var_off(&self, v: Val) -> bool {
        match self.ir.node(v) {
            ValNode::Load { off, .. } => off.is_some(),
            ValNode::Bin(_, a, b) => self.loads_at_var_off(a) || self.loads_at_var_off(b),
            ValNode::Neg(a) => self.loads_at_var_off(a),
            ValNode::Const(_) | ValNode::Len | ValNode::Meta(_) | ValNode::Var(_) => false,
        }
    }

    /// Whether evaluating `v` loads packet bytes.
    fn reads_packet(&self, v: Val) -> bool {
        match self.ir.node(v) {
            ValNode::Load { .. } => true,
            ValNode::Bin(_, a, b) => self.reads_packet(a) || self.reads_packet(b),
            ValNode::Neg(a) => self.reads_packet(a),
            ValNode::Const(_) | ValNode::Len | ValNode::Meta(_) | ValNode::Var(_) => false,
        }
    }

    /// Loads at a variable offset: the largest variable part and the
    /// largest constant part (plus size) they can read; past them, the
    /// load counts as outside the packet.
    fn offset_limits(&self) -> (u32, u32) {
        if self.direct() {
            (MAX_VAR_OFF, MAX_PACKET_OFF - MAX_VAR_OFF)
        } else {
            (SOCKET_MAX_VAR_OFF, SOCKET_MAX_OFF - SOCKET_MAX_VAR_OFF)
        }
    }

    /// Makes r9 point at `data + off` (socket filters: hold `off`, the
    /// index of `ld_ind`), unless it already does.
    pub(super) fn point_at(&mut self, off: Val) -> R<()> {
        if self.cache.is_some_and(|(v, _)| v == off) {
            return Ok(());
        }
        // With direct access the offset is computed in the pointer
        // register itself (saving a move), unless computing it reads at
        // a variable offset, which needs that register.
        let into_ptr = self.direct() && !self.loads_at_var_off(off);
        if into_ptr {
            self.free.push(PTR);
        }
        let r = self.eval(off, false)?;
        // With direct access the verifier must see the bound too; socket
        // filters only keep `ld_ind` away from its negative, special
        // offsets.
        let (max_var, _) = self.offset_limits();
        let hi = if self.direct() {
            self.ir.proven_range(off).1
        } else {
            self.ir.range(off).1
        };
        if hi > u64::from(max_var) {
            let reject = self.rej();
            self.asm.jmp32(JmpOp::Gt, r, max_var as i32, reject);
        }
        // The leftmost leaf's register is the first taken from the pool,
        // so with the pointer register on top the value lands there.
        debug_assert!(!into_ptr || r == PTR);
        if r != PTR {
            self.asm.mov64(PTR, r);
            self.release(r);
            if into_ptr {
                self.free.remove(PTR);
            }
        }
        if self.direct() {
            self.asm.add64(PTR, DATA);
        }
        self.cache = Some((off, 0));
        Ok(())
    }

    /// `dst = packet[r9 + k ..][..size]`, checking bounds unless the
    /// cached pointer is known to have them.
    pub(super) fn load_cached(&mut self, dst: Reg, k: u32, size: u8, raw: bool) {
        let end = u64::from(k) + u64::from(size);
        if end > u64::from(self.offset_limits().1) {
            self.always_reject();
            self.asm.mov32(dst, 0);
            return;
        }
        if !self.direct() {
            // `ld_ind` checks the bounds itself (and ends the program,
            // returning 0, past them).
            let reject = self.rej();
            packet_load(self.asm, self.loads, size, Some(PTR), k, reject);
            self.acc = None;
            if dst != Reg::R0 {
                self.asm.mov64(dst, Reg::R0);
            }
            return;
        }
        let Some((v, mut checked)) = self.cache else {
            return;
        };
        if end > checked {
            // r9 itself moves to the new end: no copy to check.
            let reject = self.rej();
            let a = &mut *self.asm;
            a.add64(PTR, (end - checked) as i32);
            a.jmp(JmpOp::Gt, PTR, END, reject);
            if self.opts.test_run_meta && self.opts.target == Target::Xdp {
                a.mov64(SCRATCH, PTR);
                a.alu64(AluOp::Sub, SCRATCH, DATA);
                a.jmp(JmpOp::Gt, SCRATCH, CTX, reject);
                self.scratch = None;
            }
            checked = end;
            self.cache = Some((v, end));
        }
        // r9 is `end` bytes past the load's base; `k` < 32 KiB and
        // `checked` <= 32 KiB, so the difference fits the offset field.
        let back = i64::from(k) - checked as i64;
        debug_assert!(i16::try_from(back).is_ok());
        self.asm.ldx(size_of(size), dst, PTR, back as i16);
        if !raw && size > 1 {
            self.asm.endian(Endian::Be, dst, 8 * size);
        }
    }

    /// `dst = packet[off + k .. off + k + size]` with its own bounds check;
    /// `off` holds a 32-bit value and may be `dst`.
    pub(super) fn load_ind(&mut self, dst: Reg, off: Reg, k: u32, size: u8, raw: bool) {
        let reject = self.rej();
        let sz = size_of(size);
        let end = u64::from(k) + u64::from(size);
        if end > u64::from(MAX_PACKET_OFF - MAX_VAR_OFF) {
            self.always_reject();
            self.asm.mov32(dst, 0);
            return;
        }
        let direct = self.direct();
        let test_mode = self.test_mode();
        self.scratch = None;
        let a = &mut *self.asm;
        a.jmp32(JmpOp::Gt, off, MAX_VAR_OFF as i32, reject);
        debug_assert!(direct, "protochain alone uses this, with direct access");
        if test_mode {
            a.mov32(SCRATCH, off);
            a.add64(SCRATCH, end as i32);
            a.jmp(JmpOp::Gt, SCRATCH, CTX, reject);
        }
        if dst != off {
            a.mov64(dst, off);
        }
        a.add64(dst, DATA);
        let k = if k > i16::MAX as u32 - 4 {
            a.add64(dst, k as i32);
            0
        } else {
            k
        };
        a.mov64(SCRATCH, dst);
        a.add64(SCRATCH, (k + u32::from(size)) as i32);
        a.jmp(JmpOp::Gt, SCRATCH, END, reject);
        a.ldx(sz, dst, dst, k as i16);
        if !raw && size > 1 {
            a.endian(Endian::Be, dst, 8 * size);
        }
    }
}
