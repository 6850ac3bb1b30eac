//! The interpreter never panics, whatever the program and input: random
//! instruction streams (mostly well-formed, some raw bytes) run as every
//! program type end in a result or an error. No kernel needed.

use bpf_builder::insn::{AluOp, AtomicOp, Insn, JmpOp, Reg, Size};
use bpf_builder::interp::{Interp, InterpMap, SkbCtx, XdpCtx};
use testbed::Rng;

/// A well-formed instruction on small registers and offsets, or (one time in
/// four) one with a random opcode and fields.
fn plausible(rng: &mut Rng) -> Insn {
    const REGS: [Reg; 11] = Reg::ALL;
    const SIZES: [Size; 4] = [Size::B, Size::H, Size::W, Size::DW];
    let r = |rng: &mut Rng| REGS[rng.below(11) as usize];
    let size = SIZES[rng.below(4) as usize];
    let off = rng.below(80) as i16 - 40;
    let imm = rng.pick(&[0, 1, -1, i32::MIN, i32::MAX, 16, 32, 64, 0x100, 0x110]);
    match rng.below(12) {
        0..=2 => {
            let op = AluOp::ALL[rng.below(15) as usize];
            let (d, s) = (r(rng), r(rng));
            match rng.below(4) {
                0 => Insn::alu64(op, d, s),
                1 => Insn::alu32(op, d, s),
                2 => Insn::alu64(op, d, imm),
                _ => Insn::alu32(op, d, imm),
            }
        }
        3 => Insn::ldx(size, r(rng), r(rng), off),
        4 => Insn::stx(size, r(rng), off, r(rng)),
        5 => Insn::st(size, r(rng), off, imm),
        6 => {
            let op = JmpOp::ALL[rng.below(11) as usize];
            let jump = rng.below(6) as i16 - 2;
            if rng.below(2) == 0 {
                Insn::jmp(op, r(rng), r(rng), jump)
            } else {
                Insn::jmp32(op, r(rng), imm, jump)
            }
        }
        7 => Insn::call_helper(rng.below(215) as i32),
        8 => {
            let op = AtomicOp::ALL[rng.below(12) as usize];
            let size = if rng.below(2) == 0 { Size::W } else { Size::DW };
            Insn::atomic(op, size, r(rng), off & !7, r(rng))
        }
        _ => Insn::new(
            rng.next_u64() as u8,
            rng.below(12) as u8,
            rng.below(12) as u8,
            rng.next_u64() as i16,
            rng.next_u64() as i32,
        ),
    }
}

#[test]
fn random_programs_never_panic() {
    let mut rng = Rng::new(0xdead_beef_0bad_cafe);
    let mut outcomes = [0usize; 2];
    for n in 0..20_000 {
        let len = 1 + rng.below(24) as usize;
        let mut prog: Vec<Insn> = (0..len).map(|_| plausible(&mut rng)).collect();
        if n % 5 == 0 {
            // Raw bytes now and then.
            let bytes: Vec<u8> = (0..len * 8).map(|_| rng.next_u64() as u8).collect();
            prog = Insn::decode_all(&bytes).unwrap();
        }
        // Start with useful pointers so memory paths get exercised.
        let mut full = vec![
            Insn::ldx(Size::W, Reg::R2, Reg::R1, 0),
            Insn::ldx(Size::W, Reg::R3, Reg::R1, 4),
            Insn::mov64(Reg::R6, Reg::R1),
        ];
        full.extend(prog);
        full.push(Insn::mov64(Reg::R0, 0));
        full.push(Insn::exit());
        let mut interp = Interp::new(&full);
        interp.set_insn_limit(5_000);
        interp.with_map(0, InterpMap::array(8, 4).unwrap());
        interp.with_map(1, InterpMap::hash(4, 8, 4).unwrap());
        let packet: Vec<u8> = (0..rng.below(100)).map(|_| rng.next_u64() as u8).collect();
        let r = match n % 3 {
            0 => interp.run_xdp(&packet, &[], XdpCtx::test_run()),
            1 => interp.run_skb(&packet, &[0; 8], &SkbCtx::test_run_tc(&packet)),
            _ => {
                let skb = SkbCtx {
                    data_offset: packet.len().min(14),
                    ..SkbCtx::test_run_tc(&packet)
                };
                interp.run_socket_filter(&packet, &skb)
            }
        };
        outcomes[r.is_ok() as usize] += 1;
    }
    // Both outcomes happen: the generator is not trivially rejected.
    assert!(outcomes[0] > 0 && outcomes[1] > 0, "{outcomes:?}");
}

#[test]
fn runaway_loops_stop_at_the_budget() {
    let prog = [Insn::ja(-1)];
    let mut interp = Interp::new(&prog);
    interp.set_insn_limit(1000);
    let e = interp
        .run_xdp(&[0; 14], &[], XdpCtx::test_run())
        .unwrap_err();
    assert_eq!(e.pc, Some(0));
    assert!(e.to_string().contains("budget of 1000"), "{e}");
}
