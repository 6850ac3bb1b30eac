//! The pre-checked form of XDP programs (`Interp::run_xdp_retval` on a
//! program that types cleanly) gives exactly what the checked interpreter
//! gives (`Interp::run_xdp`): the same return values and the same errors,
//! naming the same instruction. No kernel needed.

use bpf_builder::insn::{AluOp, Insn, JmpOp, Reg, Size};
use bpf_builder::interp::{Fault, Interp, InterpMap, XdpCtx};
use testbed::Rng;

use Reg::*;

/// What `run_xdp_retval` and `run_xdp` give on `packet` and `meta`, from
/// two interpreters of `prog`, in step, over `inputs` (the stack one run
/// leaves must not leak into the next in either).
fn both(prog: &[Insn], limit: u64, inputs: &[(Vec<u8>, Vec<u8>)]) -> (bool, Vec<[String; 2]>) {
    let mut fast = Interp::new(prog);
    let mut checked = Interp::new(prog);
    fast.set_insn_limit(limit);
    checked.set_insn_limit(limit);
    let ctx = XdpCtx {
        ingress_ifindex: 3,
        rx_queue_index: 5,
        egress_ifindex: 0,
    };
    let outs = inputs
        .iter()
        .map(|(packet, meta)| {
            let a = fast.run_xdp_retval(packet, meta, ctx);
            let b = checked.run_xdp(packet, meta, ctx).map(|r| r.retval);
            [format!("{a:?}"), format!("{b:?}")]
        })
        .collect();
    (fast.prechecked(), outs)
}

/// The start every generated program shares: the packet pointers, a
/// context field and numbers in the registers the body uses.
fn prologue() -> Vec<Insn> {
    vec![
        Insn::ldx(Size::W, R2, R1, 0),  // data
        Insn::ldx(Size::W, R3, R1, 4),  // data_end
        Insn::ldx(Size::W, R4, R1, 8),  // data_meta
        Insn::ldx(Size::W, R6, R1, 12), // ingress_ifindex
        Insn::mov64(R0, 0),
        Insn::mov64(R5, 7),
        Insn::mov64(R7, 0),
        Insn::mov64(R8, R2),
        Insn::mov64(R9, 1),
    ]
}

/// An instruction a clean program is made of, mostly: arithmetic on the
/// numbers in r0, r5-r7, r9, packet pointers moved and compared, loads
/// from the packet, metadata and stack, stores to the stack, at offsets
/// that are sometimes out of bounds; now and then one that does not type
/// (a 32-bit move of a pointer, a packet store, a kind that depends on
/// the path).
fn plausible(rng: &mut Rng) -> Insn {
    const NUMS: [Reg; 5] = [R0, R5, R6, R7, R9];
    const PTRS: [Reg; 3] = [R2, R4, R8];
    const SIZES: [Size; 4] = [Size::B, Size::H, Size::W, Size::DW];
    let num = |rng: &mut Rng| NUMS[rng.below(5) as usize];
    let size = SIZES[rng.below(4) as usize];
    let imm = rng.pick(&[0, 1, -1, 2, 14, 20, 31, 64, i32::MIN, 0x0800]);
    let jump = rng.below(5) as i16;
    match rng.below(20) {
        0..=4 => {
            let op = AluOp::ALL[rng.below(15) as usize];
            let d = num(rng);
            match rng.below(4) {
                0 => Insn::alu64(op, d, num(rng)),
                1 => Insn::alu32(op, d, num(rng)),
                2 => Insn::alu64(op, d, imm),
                _ => Insn::alu32(op, d, imm),
            }
        }
        5 => Insn::alu64(AluOp::Add, R8, rng.below(24) as i32 - 4),
        6 => Insn::mov64(R8, PTRS[rng.below(3) as usize]),
        7..=9 => Insn::ldx(
            size,
            num(rng),
            PTRS[rng.below(3) as usize],
            rng.below(48) as i16 - 4,
        ),
        10 => Insn::ldx(size, num(rng), R10, -(rng.below(520) as i16)),
        11 => Insn::stx(size, R10, -(rng.below(520) as i16), num(rng)),
        12 => Insn::st(size, R10, -(rng.below(40) as i16), imm),
        13 => Insn::jmp(
            JmpOp::ALL[rng.below(11) as usize],
            R8,
            if rng.below(2) == 0 { R3 } else { R2 },
            jump,
        ),
        14..=15 => Insn::jmp32(JmpOp::ALL[rng.below(11) as usize], num(rng), imm, jump),
        16 => Insn::jmp(JmpOp::ALL[rng.below(11) as usize], num(rng), num(rng), jump),
        17 => Insn::alu64(AluOp::Sub, num(rng), R7), // numbers
        18 => match rng.below(4) {
            0 => Insn::mov32(R9, R2),
            1 => Insn::stx(Size::B, R2, 0, R5),
            2 => Insn::mov64(R9, R2), // a pointer in r9 on some paths
            _ => Insn::ldx(Size::W, R5, R1, 13),
        },
        // A backward jump now and then: loops meet the budget.
        _ => Insn::jmp32(JmpOp::Ne, num(rng), imm, -(rng.below(4) as i16)),
    }
}

/// A run of instructions filters are made of: a packet load and a test
/// of the loaded value, a packet pointer (or a copy) moved and its bounds
/// check, a copy of a pointer less another checked against a length; the
/// jump may go backward (onto or before the run's last instruction).
fn pair(rng: &mut Rng) -> Vec<Insn> {
    const SIZES: [Size; 3] = [Size::B, Size::H, Size::W];
    let jump = rng.below(7) as i16 - 3;
    match rng.below(4) {
        0 => {
            // r5 stays a number: the distance between two packet pointers
            // (or 0, when the copy less itself).
            let sub = if rng.below(3) == 0 { R5 } else { R2 };
            vec![
                Insn::mov64(R5, R8),
                Insn::alu64(AluOp::Sub, R5, sub),
                Insn::jmp(JmpOp::Gt, R5, num_reg(rng), jump),
            ]
        }
        1 => vec![
            Insn::mov64(R4, R8),
            Insn::alu64(AluOp::Add, R4, rng.below(30) as i32 - 2),
            Insn::jmp(JmpOp::Gt, R4, R3, jump),
        ],
        2 => {
            let dst = if rng.below(4) == 0 { R8 } else { R0 };
            let test = if rng.below(2) == 0 {
                JmpOp::Eq
            } else {
                JmpOp::Ne
            };
            vec![
                Insn::ldx(SIZES[rng.below(3) as usize], dst, R8, rng.below(40) as i16),
                Insn::jmp32(test, dst, rng.pick(&[0, 8, 0x0008, 0x45, 6, -1]), jump),
            ]
        }
        _ => vec![
            Insn::alu64(AluOp::Add, R8, rng.below(30) as i32 - 2),
            Insn::jmp(JmpOp::Gt, R8, R3, jump),
        ],
    }
}

/// One of the registers the generated programs keep numbers in.
fn num_reg(rng: &mut Rng) -> Reg {
    [R0, R6, R7, R9][rng.below(4) as usize]
}

#[test]
fn random_clean_programs_give_what_the_checked_run_gives() {
    let mut rng = Rng::new(0x0bad_f00d_1234_5678);
    let (mut prechecked, mut faults, mut oks) = (0, 0, 0);
    for _ in 0..4_000 {
        let mut prog = prologue();
        let len = 1 + rng.below(20) as usize;
        for _ in 0..len {
            if rng.below(4) == 0 {
                prog.extend(pair(&mut rng));
            } else {
                prog.push(plausible(&mut rng));
            }
        }
        prog.push(Insn::exit());
        let inputs: Vec<(Vec<u8>, Vec<u8>)> = (0..4)
            .map(|_| {
                let packet = (0..rng.below(64)).map(|_| rng.next_u64() as u8).collect();
                let meta = (0..rng.below(3) * 4)
                    .map(|_| rng.next_u64() as u8)
                    .collect();
                (packet, meta)
            })
            .collect();
        let (clean, outs) = both(&prog, 300, &inputs);
        for [fast, checked] in &outs {
            assert_eq!(fast, checked, "{prog:?}");
            if clean {
                if fast.starts_with("Ok") {
                    oks += 1;
                } else {
                    faults += 1;
                }
            }
        }
        prechecked += usize::from(clean);
    }
    // The pre-checked form ran often, to exits and to faults alike, and
    // some programs did not type (they ran checked).
    assert!(
        prechecked > 800 && prechecked < 3_900 && oks > 500 && faults > 500,
        "{prechecked} {oks} {faults}"
    );
}

#[test]
fn a_clean_program_that_reads_past_the_packet_reports_the_checked_fault() {
    // No bounds check of its own: the verifier would refuse it; the
    // interpreter finds the fault when it runs.
    let prog = [
        Insn::ldx(Size::W, R2, R1, 0),
        Insn::mov64(R0, 1),
        Insn::ldx(Size::H, R0, R2, 12),
        Insn::exit(),
    ];
    let mut interp = Interp::new(&prog);
    assert!(interp.prechecked());
    let ok = interp
        .run_xdp_retval(
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00],
            &[],
            XdpCtx::test_run(),
        )
        .unwrap();
    assert_eq!(ok, 0x0008);
    let e = interp
        .run_xdp_retval(&[0; 13], &[], XdpCtx::test_run())
        .unwrap_err();
    assert_eq!(e.pc, Some(2));
    assert!(
        matches!(
            e.fault,
            Fault::OutOfBounds {
                region: "packet",
                off: 12,
                size: 2,
                len: 13
            }
        ),
        "{e}"
    );
}

#[test]
fn a_clean_loop_stops_at_the_budget_at_the_same_instruction() {
    let prog = [
        Insn::mov64(R0, 0),
        Insn::alu64(AluOp::Add, R0, 1),
        Insn::jmp(JmpOp::Ne, R0, 1000, -2),
        Insn::exit(),
    ];
    let mut interp = Interp::new(&prog);
    assert!(interp.prechecked());
    interp.set_insn_limit(100);
    let e = interp
        .run_xdp_retval(&[0; 14], &[], XdpCtx::test_run())
        .unwrap_err();
    // 1 + 2 * 49 instructions, then pc 1; the 101st would be pc 2.
    assert_eq!(e.pc, Some(2), "{e}");
    assert!(e.to_string().contains("budget of 100"), "{e}");
    // 2,001 instructions fit a budget of 2,100: the run that cannot
    // prove it stays within it (it counts loops by the program's length)
    // is run again checked.
    interp.set_insn_limit(2_100);
    assert_eq!(
        interp.run_xdp_retval(&[0; 14], &[], XdpCtx::test_run()),
        Ok(1000)
    );
    interp.set_insn_limit(2_000);
    assert!(
        interp
            .run_xdp_retval(&[0; 14], &[], XdpCtx::test_run())
            .is_err()
    );
    interp.set_insn_limit(10_000);
    assert_eq!(
        interp.run_xdp_retval(&[0; 14], &[], XdpCtx::test_run()),
        Ok(1000)
    );
}

#[test]
fn programs_that_do_not_type_run_checked() {
    let [m0, m1] = Insn::ld_map_fd(R1, 0);
    let not_clean: [Vec<Insn>; 4] = [
        // A helper call.
        vec![Insn::call_helper(5), Insn::mov64(R0, 2), Insn::exit()],
        // A map.
        vec![m0, m1, Insn::mov64(R0, 2), Insn::exit()],
        // r0 a pointer on one path, a number on the other.
        vec![
            Insn::ldx(Size::W, R2, R1, 0),
            Insn::mov64(R0, 2),
            Insn::jmp(JmpOp::Eq, R2, R2, 1),
            Insn::mov64(R0, R2),
            Insn::exit(),
        ],
        // A store into the packet.
        vec![
            Insn::ldx(Size::W, R2, R1, 0),
            Insn::st(Size::B, R2, 0, 1),
            Insn::mov64(R0, 2),
            Insn::exit(),
        ],
    ];
    for prog in &not_clean {
        let mut interp = Interp::new(prog);
        interp.with_map(0, InterpMap::array(4, 1).unwrap());
        assert!(!interp.prechecked(), "{prog:?}");
        let r = interp.run_xdp_retval(&[0; 14], &[], XdpCtx::test_run());
        assert_eq!(r, Ok(2), "{prog:?}");
    }
}

#[test]
fn the_stack_a_run_wrote_is_clear_for_the_next() {
    // Writes the stack only when the first byte is 1; reads it always.
    let prog = [
        Insn::ldx(Size::W, R2, R1, 0),
        Insn::ldx(Size::B, R3, R2, 0),
        Insn::jmp(JmpOp::Ne, R3, 1, 1),
        Insn::st(Size::DW, R10, -8, 0x55),
        Insn::ldx(Size::DW, R0, R10, -8),
        Insn::exit(),
    ];
    let mut interp = Interp::new(&prog);
    assert!(interp.prechecked());
    let run = |i: &mut Interp, b: u8| i.run_xdp_retval(&[b; 14], &[], XdpCtx::test_run());
    assert_eq!(run(&mut interp, 1), Ok(0x55));
    assert_eq!(run(&mut interp, 0), Ok(0));
}

#[test]
fn a_fused_pair_jumping_onto_its_own_test_meets_the_budget() {
    // Each second instruction (4, then 2) jumps to itself while its
    // test holds.
    let progs = [
        (
            4,
            vec![
                Insn::ldx(Size::W, R2, R1, 0),
                Insn::ldx(Size::W, R3, R1, 4),
                Insn::mov64(R8, R2),
                Insn::alu64(AluOp::Add, R8, 100),
                Insn::jmp(JmpOp::Gt, R8, R3, -1),
                Insn::mov64(R0, 1),
                Insn::exit(),
            ],
        ),
        (
            2,
            vec![
                Insn::ldx(Size::W, R2, R1, 0),
                Insn::ldx(Size::B, R0, R2, 0),
                Insn::jmp32(JmpOp::Eq, R0, 0, -1),
                Insn::exit(),
            ],
        ),
    ];
    for (looping, prog) in progs {
        let mut interp = Interp::new(&prog);
        assert!(interp.prechecked());
        interp.set_insn_limit(1_000);
        let e = interp
            .run_xdp_retval(&[0; 14], &[], XdpCtx::test_run())
            .unwrap_err();
        assert_eq!(e.pc, Some(looping), "{e}");
        assert!(e.to_string().contains("budget of 1000"), "{e}");
    }
}

#[test]
fn a_constant_program_returns_its_constant_within_the_budget() {
    let prog = [Insn::mov64(R2, 9), Insn::mov32(R0, 7), Insn::exit()];
    let mut interp = Interp::new(&prog);
    assert!(interp.prechecked());
    assert_eq!(
        interp.run_xdp_retval(&[0; 14], &[], XdpCtx::test_run()),
        Ok(7)
    );
    // Three instructions do not fit a budget of two: the exit is the
    // third.
    interp.set_insn_limit(2);
    let e = interp
        .run_xdp_retval(&[0; 14], &[], XdpCtx::test_run())
        .unwrap_err();
    assert_eq!(e.pc, Some(2), "{e}");
}

/// The context's packet pointer at `off` loaded into `dst`.
fn pointer_load(dst: Reg, off: i16) -> Insn {
    Insn::ldx(Size::W, dst, R1, off)
}

#[test]
fn leading_pointer_loads_in_any_order_give_what_the_checked_run_gives() {
    // Every sequence of up to four loads of `data`, `data_end` and
    // `data_meta` into r2-r4 (repeats of either included), then a body
    // whose result tells which pointer each register holds. The run's
    // set-up takes the leading loads it can; the rest run as they are.
    let loads: Vec<Insn> = [R2, R3, R4]
        .into_iter()
        .flat_map(|r| [0, 4, 8].map(|off| pointer_load(r, off)))
        .collect();
    let body = [
        Insn::mov64(R0, R3),
        Insn::alu64(AluOp::Sub, R0, R2),
        Insn::alu64(AluOp::Lsh, R0, 8),
        Insn::mov64(R5, R2),
        Insn::alu64(AluOp::Sub, R5, R4),
        Insn::alu64(AluOp::Add, R0, R5),
        Insn::exit(),
    ];
    let inputs = [(vec![1; 14], vec![]), (vec![2; 40], vec![3; 8])];
    let mut sequences: Vec<Vec<Insn>> = vec![vec![]];
    let mut prechecked = 0;
    for _ in 0..4 {
        let longer: Vec<Vec<Insn>> = sequences
            .iter()
            .flat_map(|s| loads.iter().map(move |l| [&s[..], &[*l]].concat()))
            .collect();
        for prefix in &longer {
            let prog = [&prefix[..], &body[..]].concat();
            let (clean, outs) = both(&prog, 100, &inputs);
            for [fast, checked] in &outs {
                assert_eq!(fast, checked, "{prog:?}");
            }
            prechecked += usize::from(clean);
        }
        sequences = longer;
    }
    // The body types whenever r2-r4 all hold pointers: 3^3 choices, each
    // made by many sequences.
    assert!(prechecked > 1_000, "{prechecked}");
}

#[test]
fn a_jump_onto_a_leading_pointer_load_runs_it_again() {
    // r2 walks the packet; each round reloads data_end and data_meta
    // (pc 1 and 2, which the run's set-up loaded the first time).
    let prog = [
        pointer_load(R2, 0),
        pointer_load(R3, 4),
        pointer_load(R4, 8),
        Insn::alu64(AluOp::Add, R2, 1),
        Insn::jmp(JmpOp::Gt, R2, R3, 1),
        Insn::ja(-5),
        Insn::mov64(R0, R3),
        Insn::alu64(AluOp::Sub, R0, R4),
        Insn::exit(),
    ];
    let inputs: Vec<(Vec<u8>, Vec<u8>)> = [0, 3, 14, 40]
        .into_iter()
        .flat_map(|n| [(vec![0; n], vec![]), (vec![0; n], vec![0; 8])])
        .collect();
    for limit in [10, 40, 100, 1_000] {
        let (clean, outs) = both(&prog, limit, &inputs);
        assert!(clean);
        for ([fast, checked], (packet, meta)) in outs.iter().zip(&inputs) {
            assert_eq!(fast, checked, "limit {limit}, {} bytes", packet.len());
            // The loads, one round of pcs 3-5, 1-2 a byte and the last
            // round's 3-4, then 3 to the exit.
            let executed = 5 * packet.len() as u64 + 8;
            if executed <= limit {
                let want = (packet.len() + meta.len()) as u64;
                assert_eq!(fast, &format!("{:?}", Ok::<u64, ()>(want)));
            }
        }
    }
}
