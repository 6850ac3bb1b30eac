//! Programs the benchmarks build, shared so each bench measures the same
//! code.

use bpf_builder::asm::{Asm, Label};
use bpf_builder::ctx::{XdpAction, xdp_md};
use bpf_builder::insn::{AluOp, JmpOp, Reg::*, Size};
use bpf_builder::map::MapSpec;
use bpf_builder::object::{Object, ProgramType};

/// Emits `n` instructions of a realistic mix into a fresh assembler:
/// loads, arithmetic and forward conditional jumps, a label every 8.
pub fn emit_mix(n: usize) -> Asm {
    let mut a = Asm::with_capacity(n + 1);
    let mut pending: Option<Label> = None;
    for i in 0..n / 8 {
        if let Some(l) = pending.take() {
            a.bind(l);
        }
        let l = a.new_label();
        a.ldx(Size::W, R2, R1, xdp_md::DATA);
        a.ldx(Size::W, R3, R1, xdp_md::DATA_END);
        a.mov64(R4, R2);
        a.add64(R4, (i % 64) as i32);
        a.jmp(JmpOp::Gt, R4, R3, l);
        a.ldx(Size::H, R5, R2, 12);
        a.alu64(AluOp::And, R5, 0xfff);
        a.jmp(JmpOp::Eq, R5, 0x800, l);
        pending = Some(l);
    }
    if let Some(l) = pending {
        a.bind(l);
    }
    a.mov64(R0, XdpAction::Pass);
    a.exit();
    a
}

/// A small XDP program that counts into an array map: the kind of program
/// a firewall or filter compiler generates per rule or per device.
pub fn small_object(i: u32) -> Object {
    let mut o = Object::new();
    let m = o.add_map(MapSpec::array("hits", 8, 1)).expect("valid map");
    let mut a = Asm::new();
    let out = a.new_label();
    a.ldx(Size::W, R2, R1, xdp_md::DATA);
    a.ldx(Size::W, R3, R1, xdp_md::DATA_END);
    a.mov64(R4, R2);
    a.add64(R4, 14);
    a.jmp(JmpOp::Gt, R4, R3, out);
    a.ldx(Size::H, R4, R2, 12);
    a.jmp(JmpOp::Ne, R4, (i & 0xffff) as i32, out);
    a.st(Size::W, R10, -4, 0);
    a.ld_map_fd(R1, m);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(bpf_builder::helpers::Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, out);
    a.mov64(R1, 1);
    a.atomic(bpf_builder::insn::AtomicOp::Add, Size::DW, R0, 0, R1);
    a.bind(out);
    a.mov64(R0, XdpAction::Pass);
    a.exit();
    o.add_program(
        &format!("p{i}"),
        ProgramType::Xdp,
        a.finish().expect("bound"),
    )
    .expect("valid program");
    o
}

/// The median of `v` (the upper of the two middle values when their
/// number is even); sorts `v`.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median over `rounds` runs of `f`, each handling `items` items
/// (packets, say), in nanoseconds per item.
pub fn ns_per_item(rounds: usize, items: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = std::time::Instant::now();
            f();
            t.elapsed().as_nanos() as f64 / items as f64
        })
        .collect();
    median(&mut v)
}
