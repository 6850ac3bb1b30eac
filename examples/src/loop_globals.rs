//! A program with a subprogram, `bpf_loop` with a callback, and global
//! data: read-only settings in `.rodata`, results in `.data`.
//!
//! `total = mix(sum over i < iterations of (step + i))`, where
//! `mix(x) = 3x + 1` is a bpf-to-bpf call and the sum runs in a
//! `bpf_loop` callback.

use bpf_builder::asm::Asm;
use bpf_builder::ctx::XdpAction;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, AtomicOp, JmpOp, Reg::*, Size};
use bpf_builder::object::{MapId, Object, ObjectError, ProgId, ProgramType};

/// Offsets in `.rodata`.
pub mod rodata {
    /// `u32 iterations`.
    pub const ITERATIONS: u32 = 0;
    /// `u32 step`.
    pub const STEP: u32 = 4;
}

/// Offsets in `.data`.
pub mod data {
    /// `u64 total`.
    pub const TOTAL: u32 = 0;
    /// `u64 runs`.
    pub const RUNS: u32 = 8;
}

/// The built object and the ids the runner needs.
pub struct LoopGlobals {
    /// The object to load.
    pub object: Object,
    /// `.rodata`.
    pub rodata: MapId,
    /// `.data`.
    pub data: MapId,
    /// The XDP program.
    pub program: ProgId,
}

/// Builds the object with the given settings.
pub fn build(iterations: u32, step: u32) -> Result<LoopGlobals, ObjectError> {
    let mut object = Object::new();
    let ro = [iterations.to_ne_bytes(), step.to_ne_bytes()].concat();
    let rodata = object.add_rodata(".rodata", &ro)?;
    let data = object.add_data(".data", &[0u8; 16])?;

    // mix(x) = 3x + 1
    let mut a = Asm::new();
    a.mov64(R0, R1);
    a.alu64(AluOp::Mul, R0, 3);
    a.add64(R0, 1);
    a.exit();
    let mix = object.add_function("mix", a.finish().expect("no labels"))?;

    // add_step(index, acc *u64): *acc += step + index; continue
    let mut a = Asm::new();
    a.ld_map_value(R3, rodata, rodata::STEP);
    a.ldx(Size::W, R3, R3, 0);
    a.alu64(AluOp::Add, R3, R1);
    a.ldx(Size::DW, R4, R2, 0);
    a.alu64(AluOp::Add, R4, R3);
    a.stx(Size::DW, R2, 0, R4);
    a.mov64(R0, 0);
    a.exit();
    let add_step = object.add_function("add_step", a.finish().expect("no labels"))?;

    // The program.
    let mut a = Asm::new();
    let done = a.named_label("done");
    a.st(Size::DW, R10, -8, 0);
    a.ld_map_value(R1, rodata, rodata::ITERATIONS);
    a.ldx(Size::W, R1, R1, 0);
    a.ld_func(R2, add_step);
    a.mov64(R3, R10);
    a.add64(R3, -8);
    a.mov64(R4, 0);
    a.call(Helper::Loop);
    a.jmp(JmpOp::SLt, R0, 0, done);
    a.ldx(Size::DW, R1, R10, -8);
    a.call_func(mix);
    a.ld_map_value(R1, data, data::TOTAL);
    a.stx(Size::DW, R1, 0, R0);
    a.bind(done);
    a.ld_map_value(R1, data, data::RUNS);
    a.mov64(R2, 1);
    a.atomic(AtomicOp::Add, Size::DW, R1, 0, R2);
    a.mov64(R0, XdpAction::Pass);
    a.exit();
    let program =
        object.add_program("loop_globals", ProgramType::Xdp, a.finish().expect("bound"))?;
    Ok(LoopGlobals {
        object,
        rodata,
        data,
        program,
    })
}

/// What `total` must be, computed the plain way.
pub fn expected_total(iterations: u32, step: u32) -> u64 {
    let sum: u64 = (0..iterations as u64).map(|i| step as u64 + i).sum();
    3 * sum + 1
}
