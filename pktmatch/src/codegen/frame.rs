//! The frame: what each register holds, the stack slots, and the pool
//! value registers come from.
//!
//! Registers: r6 holds the context (in the test-run mode: the captured
//! length; in a probe function: the packet bytes' address), r7 the packet start and r8 the packet end (direct access
//! only); values are computed in r0-r4; r9 holds `data + offset` for
//! loads at a variable offset; r5 is scratch for bounds checks.
//!
//! Socket filters load with `ld_abs`/`ld_ind`, which check the bounds
//! themselves, leave their value in r0 and clobber r0-r5: values are
//! computed in r0 and kept in r7/r8 only while another load runs; r9
//! holds the variable offset (like classic BPF's X register).
//!
//! The stack, from r10 down: a counter's key (verdict code only), the
//! wire length (test-run mode, fragment support, probe functions), the
//! captured length (probe functions, beside variable 0), the IR variables, the next header of a socket filter's
//! protochain walk, the bytes `bpf_xdp_load_bytes` loads, a slot left
//! to the caller, the context (for action code) and a lookup's key.

use bpf_builder::insn::Reg;

use super::{Gen, R};
use crate::ir::MAX_VARS;
use crate::{Error, Span};

/// The context (test-run mode: the captured length; probe functions:
/// the packet bytes' address).
pub(super) const CTX: Reg = Reg::R6;
/// The packet start (direct access).
pub(super) const DATA: Reg = Reg::R7;
/// The packet end (direct access).
pub(super) const END: Reg = Reg::R8;
/// Scratch for bounds checks.
pub(super) const SCRATCH: Reg = Reg::R5;

/// The pointer cache register (direct access).
pub(super) const PTR: Reg = Reg::R9;

/// Stack slot of the wire length in the test-run mode.
pub(super) const WIRELEN_SLOT: i16 = -8;

/// Stack slot of the captured length ([`Target::Probe`](super::Target::Probe)):
/// the lower half of IR variable 0's slot, which [`var_slot`] leaves
/// unused (variables sit in the upper half).
pub(super) const CAPLEN_SLOT: i16 = -16;

/// The 4-byte key of a counter's lookup, in the verdict code (the filter
/// never touches these bytes, just above the wire length).
pub(super) const COUNTER_KEY_SLOT: i16 = -4;

/// Stack slot (offset from r10, 8 bytes) of IR variable `n`, below the
/// wire length: a [`Cond::Let`](crate::ir::Cond::Let) stores its value
/// there as a `u32`, and action code may read it (the front end's way
/// to hand an action a value computed by the filter).
///
/// The value sits in the upper half of its 8-byte slot, off the 8-byte
/// alignment the verifier tracks stored registers at: it sees the slot
/// as bytes of unknown value, not as the value stored. So it keeps no
/// per-path copy of each variable, and paths that set a variable to
/// different values (a firewall's prologue sets the transport offset on
/// dozens of paths) merge into one state instead of multiplying the
/// rest of the program (measured on an nft2bpf chain of 16 rules
/// `ip ttl 64 accept`: the verifier walked 44,051 instructions with the
/// value tracked, 6,842 without). Code reading a variable bounds
/// it at run time anyway ([`MAX_VAR_OFF`](super::MAX_VAR_OFF)).
pub fn var_slot(n: u32) -> i16 {
    debug_assert!(n < MAX_VARS);
    -16 - 8 * n.min(MAX_VARS) as i16 + 4
}

/// Socket filters' protochain walk: the next header, below the IR
/// variables.
pub(super) const PROTOCHAIN_SLOT: i16 = -16 - 8 * MAX_VARS as i16;

/// Where `bpf_xdp_load_bytes` puts the bytes it loads.
pub(super) const LOAD_SLOT: i16 = PROTOCHAIN_SLOT - 8;

/// An 8-byte stack slot (offset from r10) that the generated code never
/// touches: the caller's code around it may keep a value there.
pub const CALLER_SLOT: i16 = LOAD_SLOT - 8;

/// An 8-byte stack slot holding the program's context (`xdp_md` or
/// `__sk_buff` pointer) in programs whose IR has actions or lookups
/// ([`Cond::Act`](crate::ir::Cond::Act)), or whose options ask for it
/// ([`EmitOptions::keep_context`](super::EmitOptions::keep_context)):
/// action and verdict code load it from here to call helpers on the
/// packet, whatever the registers hold.
pub const CONTEXT_SLOT: i16 = CALLER_SLOT - 8;

/// Where a [`Cond::Lookup`](crate::ir::Cond::Lookup) writes its key's
/// bytes (an offset from r10, 8-byte aligned, room for
/// [`MAX_KEY_BYTES`](crate::ir::MAX_KEY_BYTES)): the front end's lookup
/// code passes `r10 + KEY_SLOT` to the map lookup.
pub const KEY_SLOT: i16 = CONTEXT_SLOT - crate::ir::MAX_KEY_BYTES as i16;

/// The free value registers: a stack of at most six (five value
/// registers and, while an offset is computed, the pointer register),
/// kept inline (a vector would cost an allocation per compile).
#[derive(Clone, Copy, Default)]
pub(super) struct Pool {
    regs: [Option<Reg>; 6],
    len: usize,
}

impl Pool {
    fn new(regs: &[Reg]) -> Pool {
        let mut p = Pool::default();
        for &r in regs {
            p.push(r);
        }
        p
    }

    fn pop(&mut self) -> Option<Reg> {
        self.len = self.len.checked_sub(1)?;
        self.regs[self.len]
    }

    pub(super) fn push(&mut self, r: Reg) {
        self.regs[self.len] = Some(r);
        self.len += 1;
    }

    pub(super) fn last(&self) -> Option<&Reg> {
        self.regs[..self.len].last()?.as_ref()
    }

    /// Takes `r` out of the stack, if it is there.
    pub(super) fn remove(&mut self, r: Reg) {
        if let Some(i) = self.regs[..self.len].iter().position(|&x| x == Some(r)) {
            self.regs.copy_within(i + 1..self.len, i);
            self.len -= 1;
        }
    }

    /// Moves r0, if free, to the top of the stack.
    fn raise_r0(&mut self) {
        if let Some(i) = self.regs[..self.len]
            .iter()
            .position(|&r| r == Some(Reg::R0))
        {
            self.regs.swap(i, self.len - 1);
        }
    }
}

impl Gen<'_, '_> {
    pub(super) fn reset_pool(&mut self) {
        self.free = if self.direct() {
            Pool::new(&[Reg::R4, Reg::R3, Reg::R2, Reg::R1, Reg::R0])
        } else {
            // r0 first: `ld_abs` leaves its value there. A value that must
            // survive another load moves to r7/r8 (see `keep_across_loads`).
            Pool::new(&[Reg::R8, Reg::R7, Reg::R0])
        };
    }

    /// A free register; r0 is about to change, so it no longer holds
    /// the accumulated value.
    pub(super) fn alloc(&mut self) -> R<Reg> {
        let r = self
            .free
            .pop()
            .ok_or_else(|| Error::new("expression too deep for the registers", Span::default()))?;
        if r == Reg::R0 {
            self.acc = None;
        }
        Ok(r)
    }

    /// Returns `r` to the pool, keeping r0 on top when it is free: values
    /// land in r0 first (where loads and `acc` want them).
    pub(super) fn release(&mut self, r: Reg) {
        self.free.push(r);
        self.free.raise_r0();
    }
}
