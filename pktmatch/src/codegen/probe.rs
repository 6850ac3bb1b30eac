//! The filter as a bpf-to-bpf function over packet bytes in kernel
//! memory ([`Target::Probe`]), for tracing programs: fentry on an XDP
//! program reads `xdp_buff.data`, a tracepoint reads an skb's data. The
//! caller passes the bytes' address, the captured length and the wire
//! length; the function reads with `bpf_probe_read_kernel`, never past
//! the captured length (libpcap's meaning: a load past it rejects).
//!
//! Its whole program ([`add_program`](super::add_program) with the
//! probe target) is a raw tracepoint program taking the three values as
//! its first three arguments: what `BPF_PROG_TEST_RUN` runs it with.

use bpf_builder::asm::{Asm, Code};
use bpf_builder::ctx::raw_tracepoint_args;
use bpf_builder::insn::{JmpOp, Reg, Size};
use bpf_builder::object::{FuncId, Object};

use super::{EmitOptions, Target, emit, no_actions};
use crate::ir::{Ir, Verdict};
use crate::{Error, internal};

/// The name [`add_program`](super::add_program) gives the function of a
/// probe target's whole program: the program's name, then this.
pub const FUNCTION_SUFFIX: &str = "_fn";

/// What a probe function returns on a match (and 0 otherwise).
pub const PROBE_MATCH: i32 = 1;

/// Adds the filter `ir` to `object` as a function named `name` (a BTF
/// name: letters, digits, `_`), callable from any program of the object
/// with [`Asm::call_func`]: r1 holds the address of the packet's bytes in
/// kernel memory, r2 how many of them were captured (a `u32`), r3 the
/// packet's length on the wire (what `len` reads). It returns
/// [`PROBE_MATCH`] in r0 on a match, else 0, and clobbers r1-r5 as a
/// call does. Its frame takes up to about 300 of the 512 bytes a
/// program and the functions it calls share. `source` is the filter's
/// text, for annotations.
pub fn add_probe_function(
    object: &mut Object,
    ir: &Ir,
    source: &str,
    name: &str,
) -> Result<FuncId, Error> {
    let mut asm = Asm::with_capacity(12 * ir.blocks.len() + 16);
    let opts = EmitOptions::new(Target::Probe);
    let mut verdict = |a: &mut Asm, v: Verdict| {
        a.mov32(Reg::R0, if v == Verdict::MATCH { PROBE_MATCH } else { 0 });
        a.exit();
    };
    emit(ir, &mut asm, &opts, source, &mut verdict, &mut no_actions)?;
    let code = asm.finish().map_err(internal)?;
    object.add_function(name, code).map_err(internal)
}

/// A raw tracepoint program's code that calls `func` (a probe function)
/// with its first three arguments and ends in `verdict` (match or not).
pub(super) fn raw_tracepoint_caller(
    func: FuncId,
    mut verdict: impl FnMut(&mut Asm, Verdict),
) -> Result<Code, Error> {
    let mut a = Asm::with_capacity(12);
    let matched = a.new_label();
    a.ldx(Size::DW, Reg::R2, Reg::R1, raw_tracepoint_args::arg(1));
    a.ldx(Size::DW, Reg::R3, Reg::R1, raw_tracepoint_args::arg(2));
    a.ldx(Size::DW, Reg::R1, Reg::R1, raw_tracepoint_args::arg(0));
    a.call_func(func);
    a.jmp(JmpOp::Eq, Reg::R0, PROBE_MATCH, matched);
    verdict(&mut a, Verdict::NO_MATCH);
    a.bind(matched);
    verdict(&mut a, Verdict::MATCH);
    a.finish().map_err(internal)
}
