//! libpcap's `protochain` walk: from a network-layer header, past IPv6
//! extension headers and AH, to the protocol asked for, at most
//! `PROTOCHAIN_STEPS` headers; with direct access, or with
//! `ld_ind`/`bpf_xdp_load_bytes` for socket filters and fragments.

use bpf_builder::insn::{AluOp, JmpOp, Reg, Size};

use super::frame::{PROTOCHAIN_SLOT, PTR};
use super::loads::packet_load;
use super::{Gen, R};
use crate::ir::PROTOCHAIN_STEPS;

impl Gen<'_, '_> {
    /// [`Gen::protochain`] for socket filters: the same walk with
    /// `ld_ind`, which overwrites r0-r5, so the protocol, the offset and
    /// the step count live in r7, r8 and r9, and the next header waits on
    /// the stack while the length loads.
    fn socket_protochain(&mut self, nl: u32, ipv6: bool, proto: u32) -> R<Reg> {
        let reject = self.rej();
        // The pool hands out r0 first; the walk wants r7 and r8.
        let r0 = self.alloc()?;
        let (ra, rx) = (self.alloc()?, self.alloc()?);
        self.release(r0);
        let rc = PTR;
        self.cache = None;
        let loads = self.loads;
        let a = &mut *self.asm;
        if ipv6 {
            packet_load(a, loads, 1, None, nl + 6, reject);
            a.mov64(ra, Reg::R0);
            a.mov32(rx, 40);
        } else {
            packet_load(a, loads, 1, None, nl + 9, reject);
            a.mov64(ra, Reg::R0);
            packet_load(a, loads, 1, None, nl, reject);
            a.alu32(AluOp::And, Reg::R0, 0xf);
            a.alu32(AluOp::Lsh, Reg::R0, 2);
            a.mov64(rx, Reg::R0);
        }
        a.mov32(rc, 0);
        let (again, adv, end) = (a.new_label(), a.new_label(), a.new_label());
        a.bind(again);
        a.jmp32(JmpOp::Eq, ra, proto as i32, end);
        a.jmp32(JmpOp::Eq, ra, 59, end);
        a.jmp32(JmpOp::Ge, rc, PROTOCHAIN_STEPS as i32, reject);
        a.alu32(AluOp::Add, rc, 1);
        if ipv6 {
            for h in [0, 60, 43, 44] {
                a.jmp32(JmpOp::Eq, ra, h, adv);
            }
        }
        a.jmp32(JmpOp::Eq, ra, 51, adv);
        a.ja(end);
        a.bind(adv);
        // The next header, kept on the stack; then the length byte.
        packet_load(a, loads, 1, Some(rx), nl, reject);
        a.stx(Size::DW, Reg::R10, PROTOCHAIN_SLOT, Reg::R0);
        packet_load(a, loads, 1, Some(rx), nl + 1, reject);
        // AH (libpcap's arithmetic): x = (len + 2) * 4, in r1.
        a.mov32(Reg::R1, Reg::R0);
        a.alu32(AluOp::Add, Reg::R1, 2);
        a.alu32(AluOp::Mul, Reg::R1, 4);
        if ipv6 {
            // Extension header: r2 = x + (len + 1) * 8; then, with r3 =
            // (a == 51) as 0/1, x = r2 + r3 * (r1 - r2).
            a.mov32(Reg::R2, Reg::R0);
            a.alu32(AluOp::Add, Reg::R2, 1);
            a.alu32(AluOp::Mul, Reg::R2, 8);
            a.alu32(AluOp::Add, Reg::R2, rx);
            a.mov64(Reg::R3, ra);
            a.alu64(AluOp::Xor, Reg::R3, 51);
            a.alu64(AluOp::Sub, Reg::R3, 1);
            a.alu64(AluOp::Rsh, Reg::R3, 63);
            a.alu32(AluOp::Sub, Reg::R1, Reg::R2);
            a.alu32(AluOp::Mul, Reg::R1, Reg::R3);
            a.alu32(AluOp::Add, Reg::R1, Reg::R2);
        }
        a.mov32(rx, Reg::R1);
        a.ldx(Size::DW, ra, Reg::R10, PROTOCHAIN_SLOT);
        a.ja(again);
        a.bind(end);
        self.acc = None;
        self.release(rx);
        Ok(ra)
    }

    /// libpcap's protochain loop; returns the register holding the
    /// protocol it stopped at. The header advance is computed without
    /// branches (extension header and AH alike) so that the verifier sees
    /// one path per iteration.
    pub(super) fn protochain(&mut self, nl: u32, ipv6: bool, proto: u32) -> R<Reg> {
        if !self.direct() {
            return self.socket_protochain(nl, ipv6, proto);
        }
        let reject = self.rej();
        let ra = self.alloc()?;
        let rx = self.alloc()?;
        let rc = self.alloc()?;
        let t1 = self.alloc()?;
        let t2 = self.alloc()?;
        // r9 (the pointer cache) serves as the sixth register.
        let t3 = PTR;
        self.cache = None;
        self.scratch = None;
        if ipv6 {
            self.load_abs(ra, nl + 6, 1, false);
            self.asm.mov32(rx, 40);
        } else {
            self.load_abs(ra, nl + 9, 1, false);
            self.load_abs(rx, nl, 1, false);
            self.asm.alu32(AluOp::And, rx, 0xf);
            self.asm.alu32(AluOp::Lsh, rx, 2);
        }
        self.asm.mov32(rc, 0);
        let (again, adv, end) = (
            self.asm.new_label(),
            self.asm.new_label(),
            self.asm.new_label(),
        );
        self.asm.bind(again);
        self.asm.jmp32(JmpOp::Eq, ra, proto as i32, end);
        self.asm.jmp32(JmpOp::Eq, ra, 59, end);
        self.asm
            .jmp32(JmpOp::Ge, rc, PROTOCHAIN_STEPS as i32, reject);
        self.asm.alu32(AluOp::Add, rc, 1);
        if ipv6 {
            for h in [0, 60, 43, 44] {
                self.asm.jmp32(JmpOp::Eq, ra, h, adv);
            }
        }
        self.asm.jmp32(JmpOp::Eq, ra, 51, adv);
        self.asm.ja(end);
        self.asm.bind(adv);
        // t1 = next header, t2 = length byte.
        self.load_ind(t1, rx, nl, 1, false);
        self.load_ind(t2, rx, nl + 1, 1, false);
        // AH (libpcap's arithmetic): x = (len + 2) * 4.
        self.asm.mov32(t3, t2);
        self.asm.alu32(AluOp::Add, t3, 2);
        self.asm.alu32(AluOp::Mul, t3, 4);
        if ipv6 {
            // Extension header: x += (len + 1) * 8.
            self.asm.alu32(AluOp::Add, t2, 1);
            self.asm.alu32(AluOp::Mul, t2, 8);
            self.asm.alu32(AluOp::Add, t2, rx);
            // is_ah = (a == 51) as 0/1, then x = ext + is_ah * (ah - ext).
            self.asm.alu64(AluOp::Xor, ra, 51);
            self.asm.alu64(AluOp::Sub, ra, 1);
            self.asm.alu64(AluOp::Rsh, ra, 63);
            self.asm.alu32(AluOp::Sub, t3, t2);
            self.asm.alu32(AluOp::Mul, t3, ra);
            self.asm.alu32(AluOp::Add, t2, t3);
            self.asm.mov32(rx, t2);
        } else {
            self.asm.mov32(rx, t3);
        }
        self.asm.mov32(ra, t1);
        self.asm.ja(again);
        self.asm.bind(end);
        // Loop iterations moved r5.
        self.scratch = None;
        for r in [t2, t1, rc, rx] {
            self.release(r);
        }
        Ok(ra)
    }
}
