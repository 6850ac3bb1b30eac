//! The interpreter against the real kernel: the same programs, loaded
//! through the verifier and run with `BPF_PROG_TEST_RUN`, must give the same
//! return value, output packet and map contents in both.

mod common;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use testbed::Rng;

use bpf_builder::asm::Asm;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, AtomicOp, Endian, Insn, JmpOp, Reg, Reg::*, Size};
use bpf_builder::interp::{Interp, InterpMap, InterpMapKind, MapOpError, SkbCtx, XdpCtx};
use bpf_builder::run::{TestRun, TestRunOutput, test_run};
use bpf_builder::sys::bpf::{
    MapCreateAttr, ProgLoadAttr, bpf_map_type, bpf_prog_type, map_create, map_delete_elem,
    map_lookup_elem, map_update_elem, prog_load,
};
use common::{GPL, require_bpf};

/// Random values biased towards the edge cases of the instruction set.
trait Edges {
    /// A 64-bit value, often an edge case.
    fn edge64(&mut self) -> u64;
    /// A 32-bit immediate, often an edge case.
    fn edge32(&mut self) -> i32;
}

impl Edges for Rng {
    fn edge64(&mut self) -> u64 {
        const EDGES: [u64; 14] = [
            0,
            1,
            u64::MAX,
            i32::MIN as u32 as u64,
            i32::MAX as u64,
            i32::MIN as i64 as u64,
            i64::MIN as u64,
            i64::MAX as u64,
            0xffff_ffff,
            31,
            32,
            63,
            64,
            0x8000,
        ];
        match self.below(3) {
            0 => self.pick(&EDGES),
            1 => self.next_u64(),
            _ => self.below(200),
        }
    }
    fn edge32(&mut self) -> i32 {
        const EDGES: [i32; 9] = [0, 1, -1, i32::MIN, i32::MAX, 31, 32, 63, 0x7fff];
        match self.below(3) {
            0 => self.pick(&EDGES),
            1 => self.next_u64() as i32,
            _ => self.below(100) as i32 - 50,
        }
    }
}

fn load(prog_type: bpf_prog_type, insns: &[Insn]) -> OwnedFd {
    let attr = ProgLoadAttr::new(prog_type as u32, insns, GPL);
    match prog_load(&attr) {
        Ok(fd) => fd,
        Err(e) => panic!("the verifier refused a test program: {e}\n{}", e.log),
    }
}

fn load_xdp(insns: &[Insn]) -> OwnedFd {
    load(bpf_prog_type::BPF_PROG_TYPE_XDP, insns)
}

/// The kernel's XDP run on `packet` with `meta` before it: (retval, data).
fn kernel_xdp(fd: &OwnedFd, packet: &[u8], meta: &[u8]) -> TestRunOutput {
    let mut data = meta.to_vec();
    data.extend_from_slice(packet);
    if meta.is_empty() {
        return test_run(fd.as_fd(), &TestRun::new(&data)).expect("XDP test run");
    }
    let mut ctx = [0u8; 24];
    ctx[0..4].copy_from_slice(&(meta.len() as u32).to_ne_bytes()); // data
    ctx[4..8].copy_from_slice(&(data.len() as u32).to_ne_bytes()); // data_end
    test_run(fd.as_fd(), &TestRun::new(&data).ctx_in(&ctx)).expect("XDP test run with metadata")
}

/// Runs `insns` as XDP in both and asserts the same verdict and output.
fn same_xdp(fd: &OwnedFd, interp: &mut Interp, packet: &[u8], meta: &[u8], what: &str) -> u32 {
    let k = kernel_xdp(fd, packet, meta);
    let i = interp
        .run_xdp(packet, meta, XdpCtx::test_run())
        .unwrap_or_else(|e| panic!("{what}: the interpreter failed: {e}"));
    assert_eq!(i.retval as u32, k.retval, "{what}: return value");
    let mut out = i.meta.clone();
    out.extend_from_slice(&i.packet);
    assert_eq!(out, k.data, "{what}: output packet");
    k.retval
}

/// Frames the kernel accepts (at least an Ethernet header).
fn frame(rng: &mut Rng, min: usize, max: usize) -> Vec<u8> {
    let n = min + rng.below((max - min + 1) as u64) as usize;
    rng.bytes(n)
}

// ---- ALU ----

const REGS: [Reg; 10] = [R0, R1, R2, R3, R4, R5, R6, R7, R8, R9];

/// One random ALU instruction on r0-r9 the verifier accepts.
fn random_alu(rng: &mut Rng) -> Insn {
    let dst = rng.pick(&REGS);
    let src = rng.pick(&REGS);
    let wide = rng.below(2) == 0;
    match rng.below(12) {
        0 => {
            let kind = rng.pick(&[Endian::Le, Endian::Be, Endian::Swap]);
            Insn::endian(kind, dst, rng.pick(&[16, 32, 64]))
        }
        1 if wide => Insn::movsx64(dst, src, rng.pick(&[8, 16, 32])),
        1 => Insn::movsx32(dst, src, rng.pick(&[8, 16])),
        _ => {
            let op = rng.pick(&AluOp::ALL);
            let bits = if wide { 64 } else { 32 };
            let operand: bpf_builder::insn::Operand = if rng.below(2) == 0 {
                src.into()
            } else {
                let mut imm = rng.edge32();
                match op {
                    // The verifier refuses constant shifts past the width
                    // and division by a constant zero.
                    AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => imm = imm.rem_euclid(bits),
                    AluOp::Div | AluOp::SDiv | AluOp::Mod | AluOp::SMod if imm == 0 => imm = 3,
                    _ => {}
                }
                imm.into()
            };
            if wide {
                Insn::alu64(op, dst, operand)
            } else {
                Insn::alu32(op, dst, operand)
            }
        }
    }
}

/// A program that sets r0-r9 to `init`, runs `body`, and writes r0-r9 to
/// the first 80 bytes of the packet (whose pointer waits on the stack).
fn registers_to_packet(init: &[u64; 10], body: &[Insn]) -> Vec<Insn> {
    let mut p = vec![
        Insn::ldx(Size::W, R2, R1, 0),
        Insn::ldx(Size::W, R3, R1, 4),
        Insn::mov64(R4, R2),
        Insn::alu64(AluOp::Add, R4, 80),
        Insn::jmp(JmpOp::Le, R4, R3, 2),
        Insn::mov64(R0, 1),
        Insn::exit(),
        Insn::stx(Size::DW, R10, -8, R2),
    ];
    for (r, v) in REGS.iter().zip(init) {
        p.extend(Insn::ld_imm64(*r, *v));
    }
    p.extend_from_slice(body);
    p.push(Insn::stx(Size::DW, R10, -16, R0));
    p.push(Insn::ldx(Size::DW, R0, R10, -8));
    for (i, r) in REGS.iter().enumerate().skip(1) {
        p.push(Insn::stx(Size::DW, R0, 8 * i as i16, *r));
    }
    p.push(Insn::ldx(Size::DW, R1, R10, -16));
    p.push(Insn::stx(Size::DW, R0, 0, R1));
    p.push(Insn::mov64(R0, 2));
    p.push(Insn::exit());
    p
}

#[test]
fn random_alu_programs_match_the_kernel() {
    if !require_bpf() {
        return;
    }
    let mut rng = Rng::new(0x1234_5678_9abc_def1);
    for n in 0..250 {
        let init: [u64; 10] = std::array::from_fn(|_| rng.edge64());
        let len = 1 + rng.below(40) as usize;
        let body: Vec<Insn> = (0..len).map(|_| random_alu(&mut rng)).collect();
        let prog = registers_to_packet(&init, &body);
        let fd = load_xdp(&prog);
        let mut interp = Interp::new(&prog);
        let packet = [0u8; 80];
        same_xdp(
            &fd,
            &mut interp,
            &packet,
            &[],
            &format!("program {n}: {body:?}"),
        );
    }
}

/// Every ALU operation, both widths, register and immediate, on every pair
/// of edge values.
#[test]
fn every_alu_op_on_edge_values_matches_the_kernel() {
    if !require_bpf() {
        return;
    }
    let edges: [u64; 10] = [
        0,
        1,
        u64::MAX,
        i32::MIN as u32 as u64,
        i64::MIN as u64,
        i32::MAX as u64,
        0xffff_ffff,
        31,
        32,
        63,
    ];
    let pairs: Vec<(u64, u64)> = edges
        .iter()
        .flat_map(|&a| edges.iter().map(move |&b| (a, b)))
        .collect();
    for op in AluOp::ALL {
        for wide in [true, false] {
            // Nine pairs per program: r1-r9 = a, then r_k op= b (through r0).
            for chunk in pairs.chunks(9) {
                let mut body = Vec::new();
                for (k, &(a, b)) in chunk.iter().enumerate() {
                    let dst = REGS[k + 1];
                    body.extend(Insn::ld_imm64(dst, a));
                    body.extend(Insn::ld_imm64(R0, b));
                    body.push(if wide {
                        Insn::alu64(op, dst, R0)
                    } else {
                        Insn::alu32(op, dst, R0)
                    });
                }
                body.push(Insn::mov64(R0, 0));
                let prog = registers_to_packet(&edges, &body);
                let fd = load_xdp(&prog);
                let mut interp = Interp::new(&prog);
                let what = format!("{op:?} wide={wide} pairs {chunk:?}");
                same_xdp(&fd, &mut interp, &[0u8; 80], &[], &what);
            }
            // Immediate operands: each edge register with each edge imm.
            let imms = [0, 1, -1, i32::MIN, i32::MAX, 31, 32, 63, 7];
            let bits = if wide { 64 } else { 32 };
            for (k, &imm) in imms.iter().enumerate() {
                let imm = match op {
                    AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => imm.rem_euclid(bits),
                    AluOp::Div | AluOp::SDiv | AluOp::Mod | AluOp::SMod if imm == 0 => -7,
                    _ => imm,
                };
                let body: Vec<Insn> = REGS
                    .iter()
                    .map(|&r| {
                        if wide {
                            Insn::alu64(op, r, imm)
                        } else {
                            Insn::alu32(op, r, imm)
                        }
                    })
                    .collect();
                let prog = registers_to_packet(&edges, &body);
                let fd = load_xdp(&prog);
                let mut interp = Interp::new(&prog);
                let what = format!("{op:?} wide={wide} imm #{k} {imm}");
                same_xdp(&fd, &mut interp, &[0u8; 80], &[], &what);
            }
        }
    }
}

#[test]
fn byte_swaps_and_sign_extensions_match_the_kernel() {
    if !require_bpf() {
        return;
    }
    let init = [
        0x0102_0304_0506_0708,
        0x8081_8283_8485_8687,
        u64::MAX,
        0x7f,
        0x80,
        0xff7f,
        0x8000_0000,
        0x1_0000_8080,
        0xdead_beef_cafe_f00d,
        0,
    ];
    let mut bodies: Vec<Vec<Insn>> = Vec::new();
    for kind in [Endian::Le, Endian::Be, Endian::Swap] {
        for bits in [16, 32, 64] {
            bodies.push(REGS.iter().map(|&r| Insn::endian(kind, r, bits)).collect());
        }
    }
    for from in [8, 16, 32] {
        bodies.push(
            (0..10)
                .map(|i| Insn::movsx64(REGS[i], REGS[(i + 1) % 10], from))
                .collect(),
        );
    }
    for from in [8, 16] {
        bodies.push(
            (0..10)
                .map(|i| Insn::movsx32(REGS[i], REGS[(i + 3) % 10], from))
                .collect(),
        );
    }
    bodies.push(
        REGS.iter()
            .map(|&r| Insn::alu64(AluOp::Neg, r, 0))
            .chain(REGS.iter().map(|&r| Insn::alu32(AluOp::Neg, r, 0)))
            .collect(),
    );
    for (n, body) in bodies.iter().enumerate() {
        let prog = registers_to_packet(&init, body);
        let fd = load_xdp(&prog);
        let mut interp = Interp::new(&prog);
        same_xdp(&fd, &mut interp, &[0u8; 80], &[], &format!("body {n}"));
    }
}

// ---- jumps ----

/// Up to 32 comparisons per program, each setting one bit of r0 when its
/// jump is taken.
fn comparisons_program(cases: &[(JmpOp, bool, u64, Option<u64>, i32)]) -> Vec<Insn> {
    let mut p = vec![Insn::mov64(R6, 0)];
    for (bit, &(op, wide, a, b, imm)) in cases.iter().enumerate() {
        p.extend(Insn::ld_imm64(R1, a));
        let jump = match b {
            Some(b) => {
                p.extend(Insn::ld_imm64(R2, b));
                if wide {
                    Insn::jmp(op, R1, R2, 1)
                } else {
                    Insn::jmp32(op, R1, R2, 1)
                }
            }
            None if wide => Insn::jmp(op, R1, imm, 1),
            None => Insn::jmp32(op, R1, imm, 1),
        };
        p.push(jump);
        p.push(Insn::ja(1));
        p.push(Insn::alu32(AluOp::Or, R6, (1u32 << bit) as i32));
    }
    p.push(Insn::mov64(R0, R6));
    p.push(Insn::exit());
    p
}

#[test]
fn every_jump_kind_matches_the_kernel() {
    if !require_bpf() {
        return;
    }
    let mut rng = Rng::new(0xfeed_f00d_1234_5678);
    for round in 0..60 {
        let cases: Vec<_> = (0..32)
            .map(|_| {
                let op = rng.pick(&JmpOp::ALL);
                let wide = rng.below(2) == 0;
                let a = rng.edge64();
                // Often compare a value with itself or a neighbour.
                let b = match rng.below(4) {
                    0 => a,
                    1 => a.wrapping_add(1),
                    _ => rng.edge64(),
                };
                let reg = rng.below(2) == 0;
                (op, wide, a, reg.then_some(b), rng.edge32())
            })
            .collect();
        let prog = comparisons_program(&cases);
        let fd = load_xdp(&prog);
        let mut interp = Interp::new(&prog);
        same_xdp(
            &fd,
            &mut interp,
            &[0u8; 64],
            &[],
            &format!("round {round}: {cases:?}"),
        );
    }
}

#[test]
fn gotol_and_backward_loops_match_the_kernel() {
    if !require_bpf() {
        return;
    }
    // r0 = sum of 1..=20 with a backward jump, then skip a block with gotol.
    let prog = vec![
        Insn::mov64(R0, 0),
        Insn::mov64(R1, 20),
        Insn::alu64(AluOp::Add, R0, R1),
        Insn::alu64(AluOp::Sub, R1, 1),
        Insn::jmp(JmpOp::Ne, R1, 0, -3),
        Insn::jmp32(JmpOp::Gt, R0, 5000, 1),
        Insn::gotol(1),
        Insn::mov64(R0, 0),
        Insn::jmp32(JmpOp::SLt, R0, -1, 1),
        Insn::alu64(AluOp::Add, R0, 1000),
        Insn::exit(),
    ];
    let fd = load_xdp(&prog);
    let mut interp = Interp::new(&prog);
    assert_eq!(same_xdp(&fd, &mut interp, &[0u8; 64], &[], "loop"), 1210);
}

// ---- packets and metadata ----

#[test]
fn packet_reads_writes_and_bounds_checks_match_the_kernel() {
    if !require_bpf() {
        return;
    }
    // Sum bytes 14.. of the packet (up to 64 of them) with a bounds check per
    // byte, write the sum at offset 0, and sign-extend byte 1 into byte 2.
    let prog = vec![
        Insn::ldx(Size::W, R2, R1, 0),
        Insn::ldx(Size::W, R3, R1, 4),
        Insn::mov64(R4, R2),
        Insn::alu64(AluOp::Add, R4, 14),
        Insn::jmp(JmpOp::Gt, R4, R3, 16), // -> exit with 1
        Insn::mov64(R0, 0),
        Insn::mov64(R5, 0),
        // loop:
        Insn::mov64(R6, R4),
        Insn::alu64(AluOp::Add, R6, 1),
        Insn::jmp(JmpOp::Gt, R6, R3, 5), // -> done
        Insn::ldx(Size::B, R7, R4, 0),
        Insn::alu64(AluOp::Add, R0, R7),
        Insn::mov64(R4, R6),
        Insn::alu64(AluOp::Add, R5, 1),
        Insn::jmp(JmpOp::Lt, R5, 64, -8),
        // done:
        Insn::stx(Size::H, R2, 0, R0),
        Insn::ldxsx(Size::B, R7, R2, 1),
        Insn::stx(Size::B, R2, 2, R7),
        Insn::alu64(AluOp::Rsh, R7, 32),
        Insn::stx(Size::W, R2, 3, R7),
        Insn::exit(),
        Insn::mov64(R0, 1),
        Insn::exit(),
    ];
    let fd = load_xdp(&prog);
    let mut interp = Interp::new(&prog);
    let mut rng = Rng::new(77);
    for n in 0..200 {
        let packet = frame(&mut rng, 14, 120);
        same_xdp(&fd, &mut interp, &packet, &[], &format!("packet {n}"));
    }
}

#[test]
fn xdp_metadata_matches_the_kernel() {
    if !require_bpf() {
        return;
    }
    // r0 = data - data_meta + first meta word (if any); meta[0] ^= 0xff;
    // packet[0] = meta length.
    let prog = vec![
        Insn::ldx(Size::W, R2, R1, 8), // data_meta
        Insn::ldx(Size::W, R3, R1, 0), // data
        Insn::ldx(Size::W, R4, R1, 4), // data_end
        Insn::mov64(R0, R3),
        Insn::alu64(AluOp::Sub, R0, R2),
        Insn::mov64(R5, R3),
        Insn::alu64(AluOp::Add, R5, 1),
        Insn::jmp(JmpOp::Gt, R5, R4, 1),
        Insn::stx(Size::B, R3, 0, R0),
        Insn::mov64(R5, R2),
        Insn::alu64(AluOp::Add, R5, 4),
        Insn::jmp(JmpOp::Gt, R5, R3, 5),
        Insn::ldx(Size::W, R6, R2, 0),
        Insn::alu64(AluOp::Add, R0, R6),
        Insn::ldx(Size::B, R6, R2, 0),
        Insn::alu64(AluOp::Xor, R6, 0xff),
        Insn::stx(Size::B, R2, 0, R6),
        Insn::exit(),
    ];
    let fd = load_xdp(&prog);
    let mut interp = Interp::new(&prog);
    let mut rng = Rng::new(99);
    for metalen in [0, 4, 8, 12, 32] {
        for _ in 0..5 {
            let meta = rng.bytes(metalen);
            let packet = frame(&mut rng, 14, 80);
            same_xdp(&fd, &mut interp, &packet, &meta, &format!("meta {metalen}"));
        }
    }
}

// ---- stack, atomics, calls ----

#[test]
fn random_atomics_on_the_stack_match_the_kernel() {
    if !require_bpf() {
        return;
    }
    let ops = AtomicOp::ALL
        .into_iter()
        .filter(|o| !matches!(o, AtomicOp::LoadAcquire | AtomicOp::StoreRelease))
        .collect::<Vec<_>>();
    let mut rng = Rng::new(4242);
    for round in 0..80 {
        let init: [u64; 10] = std::array::from_fn(|_| rng.edge64());
        // r6, r7 hold the slot's initial values; the body stores them, runs
        // atomics with r0-r5/r8/r9 as operands, and reloads the slots.
        let mut body = vec![
            Insn::stx(Size::DW, R10, -24, R6),
            Insn::stx(Size::DW, R10, -32, R7),
        ];
        for _ in 0..12 {
            let op = rng.pick(&ops);
            let size = rng.pick(&[Size::W, Size::DW]);
            let src = rng.pick(&[R1, R2, R3, R4, R5, R8, R9]);
            let off = rng.pick(&[-24, -32, -28]);
            let off = if size == Size::DW && off == -28 {
                -24
            } else {
                off
            };
            body.push(Insn::atomic(op, size, R10, off, src));
        }
        body.push(Insn::ldx(Size::DW, R6, R10, -24));
        body.push(Insn::ldx(Size::DW, R7, R10, -32));
        let prog = registers_to_packet(&init, &body);
        let fd = load_xdp(&prog);
        let mut interp = Interp::new(&prog);
        same_xdp(
            &fd,
            &mut interp,
            &[0u8; 80],
            &[],
            &format!("round {round}: {body:?}"),
        );
    }
}

#[test]
fn subprogram_calls_keep_callee_saved_registers_and_frames() {
    if !require_bpf() {
        return;
    }
    // main: r6..r9 = 6..9; stack[-8] = 100; call f(&stack[-8], 5);
    //       r0 = r0 + r6 + r7 + r8 + r9 + stack[-8]
    // f:    r6..r9 = 0; own stack[-8] = 7; *arg1 += arg2 + own[-8]; r0 = g(3) * 2
    // g:    r0 = r1 + 1
    let prog = vec![
        Insn::mov64(R6, 6),
        Insn::mov64(R7, 7),
        Insn::mov64(R8, 8),
        Insn::mov64(R9, 9),
        Insn::st(Size::DW, R10, -8, 100),
        Insn::mov64(R1, R10),
        Insn::alu64(AluOp::Add, R1, -8),
        Insn::mov64(R2, 5),
        Insn::call_rel(7), // -> 16
        Insn::alu64(AluOp::Add, R0, R6),
        Insn::alu64(AluOp::Add, R0, R7),
        Insn::alu64(AluOp::Add, R0, R8),
        Insn::alu64(AluOp::Add, R0, R9),
        Insn::ldx(Size::DW, R1, R10, -8),
        Insn::alu64(AluOp::Add, R0, R1),
        Insn::exit(),
        // f at 16:
        Insn::mov64(R6, 0),
        Insn::mov64(R7, 0),
        Insn::mov64(R8, 0),
        Insn::mov64(R9, 0),
        Insn::st(Size::DW, R10, -8, 7),
        Insn::ldx(Size::DW, R3, R10, -8),
        Insn::alu64(AluOp::Add, R2, R3),
        Insn::ldx(Size::DW, R4, R1, 0),
        Insn::alu64(AluOp::Add, R4, R2),
        Insn::stx(Size::DW, R1, 0, R4),
        Insn::mov64(R1, 3),
        Insn::call_rel(2), // -> 30
        Insn::alu64(AluOp::Mul, R0, 2),
        Insn::exit(),
        // g at 30:
        Insn::mov64(R0, R1),
        Insn::alu64(AluOp::Add, R0, 1),
        Insn::exit(),
    ];
    let fd = load_xdp(&prog);
    let mut interp = Interp::new(&prog);
    // 8 + 6 + 7 + 8 + 9 + (100 + 5 + 7)
    assert_eq!(same_xdp(&fd, &mut interp, &[0u8; 64], &[], "calls"), 150);
}

// ---- helpers and maps ----

fn create_map(map_type: bpf_map_type, key: u32, value: u32, max: u32) -> OwnedFd {
    map_create(&MapCreateAttr {
        map_type: map_type as u32,
        key_size: key,
        value_size: value,
        max_entries: max,
        name: "interp_test",
        ..Default::default()
    })
    .expect("map create")
}

#[test]
fn counting_with_array_and_hash_maps_matches_the_kernel() {
    if !require_bpf() {
        return;
    }
    let array = create_map(bpf_map_type::BPF_MAP_TYPE_ARRAY, 4, 8, 4);
    let hash = create_map(bpf_map_type::BPF_MAP_TYPE_HASH, 4, 8, 3);
    let (afd, hfd) = (array.as_raw_fd(), hash.as_raw_fd());
    // key = first packet byte & 7; array[key] += len (missing key: skip);
    // hash[key] += 1, or insert 1 with NOEXIST when missing (r0 = result of
    // the update + 100, so a full hash shows); then delete key 5.
    let mut a = Asm::new();
    let (short, hash_miss, delete) = (a.new_label(), a.new_label(), a.new_label());
    a.ldx(Size::W, R2, R1, 0);
    a.ldx(Size::W, R3, R1, 4);
    a.mov64(R7, R3);
    a.alu64(AluOp::Sub, R7, R2); // r7 = len
    a.mov64(R4, R2);
    a.add64(R4, 14);
    a.jmp(JmpOp::Gt, R4, R3, short);
    a.ldx(Size::B, R6, R2, 0);
    a.alu64(AluOp::And, R6, 7);
    a.stx(Size::W, R10, -4, R6);
    a.emit_wide(Insn::ld_map_fd(R1, afd));
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    let no_array = a.new_label();
    a.jmp(JmpOp::Eq, R0, 0, no_array);
    a.atomic(AtomicOp::Add, Size::DW, R0, 0, R7);
    a.bind(no_array);
    a.emit_wide(Insn::ld_map_fd(R1, hfd));
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, hash_miss);
    a.mov64(R1, 1);
    a.atomic(AtomicOp::Add, Size::DW, R0, 0, R1);
    a.mov64(R0, 2);
    a.stx(Size::DW, R10, -24, R0);
    a.ja(delete);
    a.bind(hash_miss);
    a.st(Size::DW, R10, -16, 1);
    a.emit_wide(Insn::ld_map_fd(R1, hfd));
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.mov64(R3, R10);
    a.add64(R3, -16);
    a.mov64(R4, 1);
    a.call(Helper::MapUpdateElem);
    a.add64(R0, 100);
    a.stx(Size::DW, R10, -24, R0);
    a.bind(delete);
    let done = a.new_label();
    a.jmp(JmpOp::Ne, R6, 5, done);
    a.emit_wide(Insn::ld_map_fd(R1, hfd));
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapDeleteElem);
    a.bind(done);
    a.ldx(Size::DW, R0, R10, -24);
    a.exit();
    a.bind(short);
    a.mov64(R0, 1);
    a.exit();
    let prog = a.finish().unwrap().insns;
    let fd = load_xdp(&prog);
    let mut interp = Interp::new(&prog);
    interp.with_map(afd, InterpMap::array(8, 4).unwrap());
    interp.with_map(hfd, InterpMap::hash(4, 8, 3).unwrap());
    let mut rng = Rng::new(5);
    for n in 0..60 {
        let packet = frame(&mut rng, 14, 100);
        same_xdp(&fd, &mut interp, &packet, &[], &format!("packet {n}"));
    }
    for key in 0u32..8 {
        let k = key.to_ne_bytes();
        for (fd, raw) in [(&array, afd), (&hash, hfd)] {
            let mut v = [0u8; 8];
            let found = map_lookup_elem(fd.as_fd(), &k, &mut v, 0).expect("lookup");
            let kernel = found.then_some(&v[..]);
            assert_eq!(
                kernel,
                interp.map(raw).unwrap().lookup(&k),
                "map {raw} key {key}"
            );
        }
    }
}

/// An LPM trie of 4-byte data: random prefixes written into the
/// kernel's map and the interpreter's with the same results (errors
/// too: a prefix past 32 bits, a full trie, `NOEXIST` on an entry, an
/// entry given with bits past its prefix), then a program looking up
/// keys of every length up to 63 from the packet finds the same values
/// in both; deletions after, the same again.
#[test]
fn lpm_trie_lookups_and_updates_match_the_kernel() {
    if !require_bpf() {
        return;
    }
    const NO_PREALLOC: u32 = 1;
    let trie = map_create(&MapCreateAttr {
        map_type: bpf_map_type::BPF_MAP_TYPE_LPM_TRIE as u32,
        key_size: 8,
        value_size: 4,
        max_entries: 24,
        map_flags: NO_PREALLOC,
        name: "interp_lpm",
        ..Default::default()
    })
    .expect("map create");
    let raw = trie.as_raw_fd();
    // key = {packet[0] & 63, packet[1..5]}; r0 = its value, or 0xffff.
    let mut a = Asm::new();
    let (short, miss) = (a.new_label(), a.new_label());
    a.ldx(Size::W, R2, R1, 0);
    a.ldx(Size::W, R3, R1, 4);
    a.mov64(R4, R2);
    a.add64(R4, 5);
    a.jmp(JmpOp::Gt, R4, R3, short);
    a.ldx(Size::B, R5, R2, 0);
    a.alu64(AluOp::And, R5, 63);
    a.stx(Size::W, R10, -8, R5);
    a.ldx(Size::W, R5, R2, 1);
    a.stx(Size::W, R10, -4, R5);
    a.emit_wide(Insn::ld_map_fd(R1, raw));
    a.mov64(R2, R10);
    a.add64(R2, -8);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, miss);
    a.ldx(Size::W, R0, R0, 0);
    a.exit();
    a.bind(miss);
    a.mov64(R0, 0xffff);
    a.exit();
    a.bind(short);
    a.mov64(R0, 1);
    a.exit();
    let prog = a.finish().unwrap().insns;
    let fd = load_xdp(&prog);
    let mut interp = Interp::new(&prog);
    interp.with_map(
        raw,
        InterpMap::new(InterpMapKind::LpmTrie, 8, 4, 24).unwrap(),
    );
    let key = |len: u32, data: [u8; 4]| [len.to_ne_bytes(), data].concat();
    let mut rng = Rng::new(11);
    // Nested prefixes of a few addresses, lengths 0 to 34 (33 and 34 are
    // refused), some written twice, some with bits past the prefix.
    let bases = [
        [10, 1, 2, 3],
        [10, 1, 200, 7],
        [192, 168, 0, 1],
        [0x80, 0, 0, 0],
    ];
    let mut written = Vec::new();
    for n in 0..40u32 {
        let data = bases[rng.below(4) as usize];
        let len = rng.below(35) as u32;
        let k = key(len, data);
        let flags = rng.below(3);
        let v = n.to_ne_bytes();
        let kernel = map_update_elem(trie.as_fd(), &k, &v, flags).map_err(|e| e.raw_os_error());
        let ours = interp.map_mut(raw).unwrap().update(&k, &v, flags);
        assert_eq!(
            kernel,
            ours.map_err(|e| Some(e.errno())),
            "update {n}: /{len} of {data:?}, flags {flags}"
        );
        written.push(k);
    }
    let frames: Vec<Vec<u8>> = (0..400)
        .map(|_| {
            let mut f = vec![rng.below(64) as u8];
            let mut data = bases[rng.below(4) as usize];
            // Flip one bit somewhere, or none.
            let bit = rng.below(40) as usize;
            if bit < 32 {
                data[bit / 8] ^= 0x80 >> (bit % 8);
            }
            f.extend(data);
            f.extend(rng.bytes(9));
            f
        })
        .collect();
    let mut hits = 0;
    for (i, f) in frames.iter().enumerate() {
        hits += usize::from(
            same_xdp(
                &fd,
                &mut interp,
                f,
                &[],
                &format!("frame {i} {:?}", &f[..5]),
            ) != 0xffff,
        );
    }
    assert!(hits > 100, "{hits} hits");
    for (n, k) in written.iter().enumerate().step_by(3) {
        let kernel = map_delete_elem(trie.as_fd(), k).map_err(|e| e.raw_os_error());
        let ours = interp.map_mut(raw).unwrap().delete(k);
        let ours = match ours {
            Ok(()) => Ok(true),
            Err(MapOpError::NotFound) => Ok(false),
            Err(e) => Err(Some(e.errno())),
        };
        assert_eq!(kernel, ours, "delete {n}");
    }
    for (i, f) in frames.iter().enumerate() {
        same_xdp(
            &fd,
            &mut interp,
            f,
            &[],
            &format!("frame {i} after deletions"),
        );
    }
}

// ---- socket buffers: tc and socket filters ----

fn load_tc(insns: &[Insn]) -> Result<OwnedFd, String> {
    let attr = ProgLoadAttr::new(bpf_prog_type::BPF_PROG_TYPE_SCHED_CLS as u32, insns, GPL);
    prog_load(&attr).map_err(|e| e.to_string())
}

fn load_socket(insns: &[Insn]) -> Result<OwnedFd, String> {
    let attr = ProgLoadAttr::new(
        bpf_prog_type::BPF_PROG_TYPE_SOCKET_FILTER as u32,
        insns,
        GPL,
    );
    prog_load(&attr).map_err(|e| e.to_string())
}

/// An `__sk_buff` for the kernel's test run and the interpreter's view of
/// the same socket buffer.
fn skb_pair(frame: &[u8], socket: bool) -> (Vec<u8>, SkbCtx) {
    let mut skb = if socket {
        SkbCtx::test_run_socket_filter(frame)
    } else {
        SkbCtx::test_run_tc(frame)
    };
    skb.mark = 0x1122_3344;
    skb.priority = 0x5566_7788;
    skb.ingress_ifindex = 7;
    skb.cb = [0x0102_0304, 0xa0b0_c0d0, 5, 0xffff_ffff, 0x8000_0001];
    skb.tstamp = 0x0102_0304_0506_0708;
    skb.hwtstamp = 0x1112_1314_1516_1718;
    skb.gso_segs = 3;
    skb.gso_size = 1400;
    let mut ctx = vec![0u8; 192];
    let mut put = |off: usize, bytes: &[u8]| ctx[off..off + bytes.len()].copy_from_slice(bytes);
    put(8, &skb.mark.to_ne_bytes());
    put(32, &skb.priority.to_ne_bytes());
    put(36, &skb.ingress_ifindex.to_ne_bytes());
    for (i, w) in skb.cb.iter().enumerate() {
        put(48 + 4 * i, &w.to_ne_bytes());
    }
    put(152, &skb.tstamp.to_ne_bytes());
    put(164, &u32::from(skb.gso_segs).to_ne_bytes());
    put(176, &u32::from(skb.gso_size).to_ne_bytes());
    put(184, &skb.hwtstamp.to_ne_bytes());
    (ctx, skb)
}

/// Runs a loaded skb program in both; asserts the same verdict and packet.
fn same_skb(fd: &OwnedFd, interp: &mut Interp, frame: &[u8], socket: bool, what: &str) -> u32 {
    let (ctx, skb) = skb_pair(frame, socket);
    let k = test_run(fd.as_fd(), &TestRun::new(frame).ctx_in(&ctx))
        .unwrap_or_else(|e| panic!("{what}: skb test run: {e}"));
    let i = if socket {
        interp.run_socket_filter(frame, &skb)
    } else {
        interp.run_skb(frame, &[], &skb)
    }
    .unwrap_or_else(|e| panic!("{what}: the interpreter failed: {e}"));
    assert_eq!(i.retval as u32, k.retval, "{what}: return value");
    if socket {
        // The test run zeroes the Ethernet header it pushes back.
        assert_eq!(&k.data[..14], &[0u8; 14], "{what}");
        assert_eq!(&i.packet[14..], &k.data[14..], "{what}: output packet");
    } else {
        assert_eq!(i.packet, k.data, "{what}: output packet");
    }
    // The fields the kernel reports back in the output context.
    let out = i.skb.expect("skb out");
    let word = |off: usize| u32::from_ne_bytes(k.ctx[off..off + 4].try_into().unwrap());
    assert_eq!(out.mark, word(8), "{what}: mark");
    assert_eq!(out.priority, word(32), "{what}: priority");
    for n in 0..5 {
        assert_eq!(out.cb[n], word(48 + 4 * n), "{what}: cb[{n}]");
    }
    k.retval
}

fn test_frame(len: usize) -> Vec<u8> {
    let mut f: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
    f[..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
    // The kernel's skb test run refuses IP frames shorter than an IP
    // header: short frames get a local experimental ethertype.
    let ethertype: [u8; 2] = match len {
        54.. => [0x86, 0xdd],
        34.. => [0x08, 0x00],
        _ => [0x88, 0xb5],
    };
    f[12..14].copy_from_slice(&ethertype);
    f
}

/// Every offset and size of `__sk_buff`, read and written: the interpreter
/// accepts exactly what the verifier accepts (apart from the socket pointer,
/// which it cannot give), and reads the same values.
#[test]
fn skb_context_access_rules_and_values_match_the_kernel() {
    if !require_bpf() {
        return;
    }
    let frame = test_frame(60);
    for socket in [false, true] {
        for size in [Size::B, Size::H, Size::W, Size::DW] {
            let n = size.bytes() as i16;
            for off in (0..200i16).step_by(n as usize) {
                if matches!(off, 76 | 80 | 140) {
                    continue; // pointers: tested below
                }
                let what = format!("socket={socket} read {n} bytes at {off}");
                let prog = [Insn::ldx(size, R0, R1, off), Insn::exit()];
                let kernel = if socket {
                    load_socket(&prog)
                } else {
                    load_tc(&prog)
                };
                let mut interp = Interp::new(&prog);
                match kernel {
                    Ok(fd) if off == 168 => {
                        // `sk`: a kernel socket pointer the interpreter refuses.
                        drop(fd);
                        let (_, skb) = skb_pair(&frame, socket);
                        assert!(interp.run_skb(&frame, &[], &skb).is_err(), "{what}");
                    }
                    Ok(fd) => {
                        same_skb(&fd, &mut interp, &frame, socket, &what);
                    }
                    Err(_) => {
                        let (_, skb) = skb_pair(&frame, socket);
                        let r = if socket {
                            interp.run_socket_filter(&frame, &skb)
                        } else {
                            interp.run_skb(&frame, &[], &skb)
                        };
                        assert!(
                            r.is_err(),
                            "{what}: the kernel refuses, the interpreter ran"
                        );
                    }
                }
                // Writes of a value, then a word read back where allowed.
                let mut prog = Insn::ld_imm64(R2, 0x8877_6655_4433_2211).to_vec();
                prog.push(Insn::stx(size, R1, off, R2));
                prog.push(Insn::mov64(R0, 0));
                prog.push(Insn::exit());
                let what = format!("socket={socket} write {n} bytes at {off}");
                let kernel = if socket {
                    load_socket(&prog)
                } else {
                    load_tc(&prog)
                };
                let mut interp = Interp::new(&prog);
                match kernel {
                    Ok(fd) => {
                        same_skb(&fd, &mut interp, &frame, socket, &what);
                    }
                    Err(_) => {
                        let (_, skb) = skb_pair(&frame, socket);
                        let r = if socket {
                            interp.run_socket_filter(&frame, &skb)
                        } else {
                            interp.run_skb(&frame, &[], &skb)
                        };
                        assert!(
                            r.is_err(),
                            "{what}: the kernel refuses, the interpreter ran"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn tc_writes_to_narrow_fields_read_back_as_in_the_kernel() {
    if !require_bpf() {
        return;
    }
    let frame = test_frame(60);
    // queue_mapping (12), tc_index (44), tc_classid (72), mark (8)
    for off in [12i16, 44, 72, 8, 32] {
        for value in [0x1234_5678u64, 0xffff, 0xfffe, 0x1_0000] {
            let mut prog = Insn::ld_imm64(R2, value).to_vec();
            prog.push(Insn::stx(Size::W, R1, off, R2));
            prog.push(Insn::ldx(Size::W, R0, R1, off));
            prog.push(Insn::exit());
            let fd = load_tc(&prog).expect("loads");
            let mut interp = Interp::new(&prog);
            same_skb(
                &fd,
                &mut interp,
                &frame,
                false,
                &format!("{off} = {value:#x}"),
            );
        }
    }
}

#[test]
fn tc_packet_pointers_and_direct_writes_match_the_kernel() {
    if !require_bpf() {
        return;
    }
    // r0 = (data_end - data) | (data - data_meta) << 16; swap bytes 0 and 13.
    let mut a = Asm::new();
    let out = a.new_label();
    a.ldx(Size::W, R2, R1, 76);
    a.ldx(Size::W, R3, R1, 80);
    a.ldx(Size::W, R4, R1, 140);
    a.mov64(R0, R3);
    a.alu64(AluOp::Sub, R0, R2);
    a.mov64(R5, R2);
    a.alu64(AluOp::Sub, R5, R4);
    a.alu64(AluOp::Lsh, R5, 16);
    a.alu64(AluOp::Or, R0, R5);
    a.mov64(R5, R2);
    a.add64(R5, 14);
    a.jmp(JmpOp::Gt, R5, R3, out);
    a.ldx(Size::B, R6, R2, 0);
    a.ldx(Size::B, R7, R2, 13);
    a.stx(Size::B, R2, 0, R7);
    a.stx(Size::B, R2, 13, R6);
    a.bind(out);
    a.exit();
    let prog = a.finish().unwrap().insns;
    let fd = load_tc(&prog).expect("loads");
    let mut interp = Interp::new(&prog);
    for len in [14, 15, 40, 60, 200] {
        let r = same_skb(
            &fd,
            &mut interp,
            &test_frame(len),
            false,
            &format!("len {len}"),
        );
        assert_eq!(r, len as u32);
    }
}

/// `ld_abs` and `ld_ind` of every size at offsets in, at the edges of and
/// outside the packet, including `SKF_NET_OFF`/`SKF_LL_OFF` forms, in socket
/// filters and tc programs.
#[test]
fn legacy_packet_loads_match_the_kernel() {
    if !require_bpf() {
        return;
    }
    const NET: i32 = -0x10_0000;
    const LL: i32 = -0x20_0000;
    let mut offsets: Vec<i32> = (0..70).collect();
    offsets.extend([
        -1,
        -2,
        -4,
        i32::MIN,
        i32::MAX,
        0x7fff_fff0,
        1000,
        65535,
        65536,
    ]);
    offsets.extend((-3..70).map(|k| NET + k));
    offsets.extend((-3..70).map(|k| LL + k));
    let frames = [
        test_frame(14),
        test_frame(17),
        test_frame(40),
        test_frame(60),
    ];
    for socket in [true, false] {
        for size in [Size::B, Size::H, Size::W] {
            for &k in &offsets {
                let prog = [
                    Insn::mov64(R6, R1),
                    Insn::ld_abs(size, k),
                    Insn::alu64(AluOp::Add, R0, 1),
                    Insn::exit(),
                ];
                let fd = if socket {
                    load_socket(&prog)
                } else {
                    load_tc(&prog)
                }
                .expect("ld_abs loads");
                let mut interp = Interp::new(&prog);
                for f in &frames {
                    let what = format!("socket={socket} ld_abs {size:?} {k} on {} bytes", f.len());
                    same_skb(&fd, &mut interp, f, socket, &what);
                }
            }
        }
    }
    // ld_ind: a register (64-bit, may be negative or huge) plus an imm.
    let regs = [
        0u64,
        3,
        13,
        40,
        u64::MAX,
        (-0x10_0000i64) as u64,
        0x1_0000_0002,
        1 << 31,
    ];
    for size in [Size::B, Size::H, Size::W] {
        for &x in &regs {
            for imm in [0, 1, -1, 10, NET] {
                let mut prog = vec![Insn::mov64(R6, R1)];
                prog.extend(Insn::ld_imm64(R7, x));
                prog.push(Insn::ld_ind(size, R7, imm));
                prog.push(Insn::alu64(AluOp::Add, R0, 1));
                prog.push(Insn::exit());
                let fd = load_socket(&prog).expect("ld_ind loads");
                let mut interp = Interp::new(&prog);
                for f in &frames {
                    let what = format!("ld_ind {size:?} {x:#x} + {imm} on {} bytes", f.len());
                    same_skb(&fd, &mut interp, f, true, &what);
                }
            }
        }
    }
}

// ---- helpers ----

/// Fills a 64-byte stack buffer with 0xaa, calls `bpf_{xdp,skb}_load_bytes(ctx,
/// offset, buf, len)`, and writes the status and the buffer to the packet.
fn load_bytes_program(tc: bool, offset: u32, len: i32) -> Vec<Insn> {
    let (data, end, helper) = if tc {
        (76, 80, Helper::SkbLoadBytes)
    } else {
        (0, 4, Helper::XdpLoadBytes)
    };
    let mut a = Asm::new();
    let short = a.new_label();
    a.mov64(R6, R1);
    a.ldx(Size::W, R2, R6, data);
    a.ldx(Size::W, R3, R6, end);
    a.mov64(R4, R2);
    a.add64(R4, 80);
    a.jmp(JmpOp::Gt, R4, R3, short);
    for i in 0..16 {
        a.st(Size::W, R10, -64 + 4 * i, 0xaaaa_aaaau32 as i32);
    }
    a.mov64(R1, R6);
    a.mov32(R2, offset as i32);
    a.mov64(R3, R10);
    a.add64(R3, -64);
    a.mov64(R4, len);
    a.call(helper);
    a.mov64(R7, R0);
    a.ldx(Size::W, R2, R6, data);
    a.ldx(Size::W, R3, R6, end);
    a.mov64(R4, R2);
    a.add64(R4, 80);
    a.jmp(JmpOp::Gt, R4, R3, short);
    a.stx(Size::DW, R2, 0, R7);
    for i in 0..8 {
        a.ldx(Size::DW, R5, R10, -64 + 8 * i);
        a.stx(Size::DW, R2, 8 + 8 * i, R5);
    }
    a.mov64(R0, if tc { 0 } else { 2 });
    a.exit();
    a.bind(short);
    a.mov64(R0, 1);
    a.exit();
    a.finish().unwrap().insns
}

/// `bpf_xdp_get_buff_len` (the frame's whole length) written to the
/// first 8 bytes of the packet, with and without metadata before it.
#[test]
fn xdp_buff_len_matches_the_kernel() {
    if !require_bpf() {
        return;
    }
    let mut a = Asm::new();
    let short = a.new_label();
    a.mov64(R6, R1);
    a.call(Helper::XdpGetBuffLen);
    a.ldx(Size::W, R2, R6, 0);
    a.ldx(Size::W, R3, R6, 4);
    a.mov64(R4, R2);
    a.add64(R4, 8);
    a.jmp(JmpOp::Gt, R4, R3, short);
    a.stx(Size::DW, R2, 0, R0);
    a.bind(short);
    a.mov64(R0, 2);
    a.exit();
    let prog = a.finish().unwrap().insns;
    let fd = load_xdp(&prog);
    let mut interp = Interp::new(&prog);
    let mut rng = Rng::new(0xb0ff);
    for (min, max) in [(14, 14), (15, 64), (64, 1500), (1500, 3000)] {
        let f = frame(&mut rng, min, max);
        for meta in [&[][..], &[7u8; 8][..]] {
            let what = format!("buff len of {} bytes, {} of metadata", f.len(), meta.len());
            same_xdp(&fd, &mut interp, &f, meta, &what);
        }
    }
}

#[test]
fn load_bytes_helpers_match_the_kernel() {
    if !require_bpf() {
        return;
    }
    let offsets = [
        0u32,
        1,
        40,
        79,
        80,
        95,
        100,
        0xffff,
        0x1_0000,
        0x7fff_ffff,
        u32::MAX,
    ];
    for tc in [false, true] {
        for &offset in &offsets {
            for len in [1, 8, 16, 64] {
                let prog = load_bytes_program(tc, offset, len);
                let what = format!("tc={tc} offset {offset:#x} len {len}");
                let mut interp = Interp::new(&prog);
                for flen in [80, 96, 150] {
                    let frame = test_frame(flen);
                    if tc {
                        let fd = load_tc(&prog).expect("loads");
                        same_skb(&fd, &mut interp, &frame, false, &what);
                    } else {
                        let fd = load_xdp(&prog);
                        same_xdp(&fd, &mut interp, &frame, &[], &what);
                    }
                }
            }
        }
    }
}

#[test]
fn bpf_loop_matches_the_kernel() {
    if !require_bpf() {
        return;
    }
    for (n, stop, flags) in [
        (0u32, 100u64, 0u64),
        (1, 100, 0),
        (7, 100, 0),
        (7, 3, 0),
        (7, 0, 0),
        (5, 100, 1),
        ((1 << 23) + 1, 0, 0),
    ] {
        // ctx = stack[-8] = 0; r0 = bpf_loop(n, cb, &ctx, flags) + (ctx << 16)
        // cb(i, ctx): *ctx += i + 1; return i == stop
        // The kernel wants BTF for callbacks: build an object.
        use bpf_builder::object::{Object, ProgramType};
        let mut obj = Object::new();
        let mut a = Asm::new();
        a.ldx(Size::DW, R3, R2, 0);
        a.alu64(AluOp::Add, R3, R1);
        a.add64(R3, 1);
        a.stx(Size::DW, R2, 0, R3);
        a.mov64(R0, 0);
        let next = a.new_label();
        a.ld_imm64(R4, stop);
        a.jmp(JmpOp::Ne, R1, R4, next);
        a.mov64(R0, 1);
        a.bind(next);
        a.exit();
        let cb = obj.add_function("cb", a.finish().unwrap()).unwrap();
        let mut a = Asm::new();
        a.st(Size::DW, R10, -8, 0);
        a.mov32(R1, n as i32);
        a.ld_func(R2, cb);
        a.mov64(R3, R10);
        a.add64(R3, -8);
        a.ld_imm64(R4, flags);
        a.call(Helper::Loop);
        a.ldx(Size::DW, R1, R10, -8);
        a.alu64(AluOp::Lsh, R1, 16);
        a.alu64(AluOp::Add, R0, R1);
        a.exit();
        let prog = obj
            .add_program("loop", ProgramType::Xdp, a.finish().unwrap())
            .unwrap();
        let loaded = obj.load().expect("loads");
        let mut interp = Interp::from_object(&obj, prog).unwrap();
        let k = loaded
            .program(prog)
            .test_run(&TestRun::new(&[0u8; 64]))
            .unwrap();
        let i = interp.run_xdp(&[0u8; 64], &[], XdpCtx::test_run()).unwrap();
        assert_eq!(i.retval as u32, k.retval, "n {n} stop {stop} flags {flags}");
    }
}

#[test]
fn redirects_match_the_kernel() {
    if !require_bpf() {
        return;
    }
    let devmap = create_map(bpf_map_type::BPF_MAP_TYPE_DEVMAP, 4, 4, 4);
    let raw = devmap.as_raw_fd();
    let mut map =
        InterpMap::new(bpf_builder::interp::InterpMapKind::RedirectArray, 4, 4, 4).unwrap();
    // Entry 1 -> the loopback device, in both.
    let one = 1u32.to_ne_bytes();
    bpf_builder::sys::bpf::map_update_elem(devmap.as_fd(), &one, &one, 0).expect("devmap update");
    map.update(&one, &one, 0).unwrap();
    for key in [0u64, 1, 3, 9, 1 << 32 | 1] {
        for flags in [0u64, 1, 2, 3, 4, 8, 16, 24, 0x1f, 1 << 40] {
            let mut prog = Insn::ld_map_fd(R1, raw).to_vec();
            prog.extend(Insn::ld_imm64(R2, key));
            prog.extend(Insn::ld_imm64(R3, flags));
            prog.push(Insn::call_helper(Helper::RedirectMap.id()));
            prog.push(Insn::exit());
            let fd = load_xdp(&prog);
            let mut interp = Interp::new(&prog);
            interp.with_map(raw, map.clone());
            same_xdp(
                &fd,
                &mut interp,
                &[0u8; 64],
                &[],
                &format!("key {key} flags {flags:#x}"),
            );
        }
    }
    for flags in [0u64, 1, 2, 8] {
        let mut prog = vec![Insn::mov64(R1, 1)];
        prog.extend(Insn::ld_imm64(R2, flags));
        prog.push(Insn::call_helper(Helper::Redirect.id()));
        prog.push(Insn::exit());
        let fd = load_xdp(&prog);
        let mut interp = Interp::new(&prog);
        same_xdp(
            &fd,
            &mut interp,
            &[0u8; 64],
            &[],
            &format!("xdp redirect {flags}"),
        );
        let fd = load_tc(&prog).expect("loads");
        let mut interp = Interp::new(&prog);
        same_skb(
            &fd,
            &mut interp,
            &test_frame(60),
            false,
            &format!("tc redirect {flags}"),
        );
    }
}

// ---- programs the verifier refuses fail in the interpreter ----

#[test]
fn programs_the_verifier_refuses_fail_when_interpreted() {
    if !require_bpf() {
        return;
    }
    let cases: Vec<(&str, Vec<Insn>)> = vec![
        (
            "packet read without a bounds check",
            vec![
                Insn::ldx(Size::W, R2, R1, 0),
                Insn::ldx(Size::DW, R0, R2, 60),
                Insn::exit(),
            ],
        ),
        (
            "read of an unwritten register",
            vec![Insn::mov64(R0, R2), Insn::exit()],
        ),
        (
            "unknown helper",
            vec![Insn::call_helper(100_000), Insn::exit()],
        ),
        (
            "write to the XDP context",
            vec![
                Insn::mov64(R2, 1),
                Insn::stx(Size::W, R1, 12, R2),
                Insn::mov64(R0, 2),
                Insn::exit(),
            ],
        ),
        (
            "stack access below the frame",
            vec![
                Insn::st(Size::DW, R10, -520, 1),
                Insn::mov64(R0, 2),
                Insn::exit(),
            ],
        ),
        (
            "ld_abs in XDP",
            vec![Insn::mov64(R6, R1), Insn::ld_abs(Size::B, 0), Insn::exit()],
        ),
        (
            "returning a pointer... of the frame",
            vec![Insn::mov64(R0, R10), Insn::exit()],
        ),
    ];
    for (what, prog) in cases {
        let attr = ProgLoadAttr::new(bpf_prog_type::BPF_PROG_TYPE_XDP as u32, &prog, GPL);
        if what.starts_with("returning") {
            // Root may return pointers; the interpreter cannot give an address.
            let mut interp = Interp::new(&prog);
            assert!(
                interp.run_xdp(&[0u8; 20], &[], XdpCtx::test_run()).is_err(),
                "{what}"
            );
            continue;
        }
        assert!(
            prog_load(&attr).is_err(),
            "{what}: the kernel should refuse it"
        );
        let mut interp = Interp::new(&prog);
        let r = interp.run_xdp(&[0u8; 20], &[], XdpCtx::test_run());
        assert!(r.is_err(), "{what}: the interpreter ran it: {r:?}");
    }
}

// ---- whole objects ----

#[test]
fn objects_run_the_same_in_both() {
    if !require_bpf() {
        return;
    }
    use bpf_builder::map::MapSpec;
    use bpf_builder::object::{Object, ProgramType};
    let mut obj = Object::new();
    let counts = obj.add_map(MapSpec::array("counts", 8, 4)).unwrap();
    let bias = obj.add_rodata(".rodata", &7u64.to_ne_bytes()).unwrap();
    let mut a = Asm::new();
    let out = a.new_label();
    // counts[len & 3] += len; return XDP_PASS unless len + rodata > 70.
    a.ldx(Size::W, R2, R1, 0);
    a.ldx(Size::W, R3, R1, 4);
    a.mov64(R6, R3);
    a.alu64(AluOp::Sub, R6, R2);
    a.mov64(R7, R6);
    a.alu64(AluOp::And, R7, 3);
    a.stx(Size::W, R10, -4, R7);
    a.ld_map_fd(R1, counts);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, out);
    a.atomic(AtomicOp::Add, Size::DW, R0, 0, R6);
    a.bind(out);
    a.ld_map_value(R1, bias, 0);
    a.ldx(Size::DW, R1, R1, 0);
    a.alu64(AluOp::Add, R6, R1);
    a.mov64(R0, 2);
    let pass = a.new_label();
    a.jmp(JmpOp::Le, R6, 70, pass);
    a.mov64(R0, 1);
    a.bind(pass);
    a.exit();
    let prog = obj
        .add_program("count", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    let loaded = obj.load().expect("loads");
    let mut interp = Interp::from_object(&obj, prog).expect("interpreter");
    let mut rng = Rng::new(31);
    for n in 0..40 {
        let packet = frame(&mut rng, 14, 90);
        let k = loaded
            .program(prog)
            .test_run(&TestRun::new(&packet))
            .unwrap();
        let i = interp.run_xdp(&packet, &[], XdpCtx::test_run()).unwrap();
        assert_eq!(i.retval as u32, k.retval, "packet {n}");
        assert_eq!(i.packet, k.data, "packet {n}");
    }
    for key in 0u32..4 {
        let k = key.to_ne_bytes();
        let kernel = loaded.map(counts).lookup(&k).unwrap();
        assert_eq!(
            kernel.as_deref(),
            interp.object_map(counts).unwrap().lookup(&k)
        );
    }
}
