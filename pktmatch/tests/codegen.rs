//! Code generation, by behaviour: small IRs built with the public API,
//! generated for each target, run in the interpreter on packets long
//! enough and one byte too short for what the filter reads, with the
//! verdict checked against `Ir::eval` (libpcap's meaning: a load past the
//! end of the packet rejects). Also the shape of the bounds checks, the
//! register limit, the counters, and the kernel verifier's word on a few
//! of the programs.

use bpf_builder::insn::{Insn, JmpOp, Reg};
use bpf_builder::interp::{Interp, SkbCtx, XdpCtx};
use bpf_builder::object::{Object, ProgId};
use pktmatch::ir::{BinOp, Block, BlockId, CmpOp, Cond, Edge, EntityRef, Ir, Val};
use pktmatch::{COUNTER_MATCHED, COUNTER_SEEN, EmitOptions, ProgramOptions, Span, Target};

/// Return value on a match (and, below, the one otherwise).
const MATCH: i32 = 2;
const NO_MATCH: i32 = 1;

/// Bytes of the Ethernet header that socket filters do not see.
const ETH_HLEN: usize = 14;

/// A test block: `a op b`, then `t` or `f`.
fn test(a: Val, op: CmpOp, b: Val, t: Edge, f: Edge) -> Block {
    let cond = Cond::Cmp {
        a,
        op,
        b,
        relation: false,
    };
    Block::new(cond, t, f, Span::default())
}

/// `ether[12:2] == 0x0800 and ether[23] == 6 and ether[36:2] == 80`:
/// three constant-offset loads on one path, the furthest ending at 38.
fn constant_run() -> Ir {
    let mut ir = Ir::new();
    let ethertype = ir.load(None, 12, 2);
    let proto = ir.load(None, 23, 1);
    let dport = ir.load(None, 36, 2);
    let (ipv4, tcp, http) = (ir.k(0x0800), ir.k(6), ir.k(80));
    // Blocks jump forward only: the last test goes in first.
    ir.blocks = vec![
        test(
            ethertype,
            CmpOp::Eq,
            ipv4,
            Edge::Block(BlockId::new(1)),
            Edge::REJECT,
        ),
        test(
            proto,
            CmpOp::Eq,
            tcp,
            Edge::Block(BlockId::new(2)),
            Edge::REJECT,
        ),
        test(dport, CmpOp::Eq, http, Edge::ACCEPT, Edge::REJECT),
    ];
    ir.entry = Some(Edge::Block(BlockId::new(0)));
    ir
}

/// A frame `constant_run` accepts, 64 bytes long.
fn constant_run_frame() -> Vec<u8> {
    let mut frame = vec![0u8; 64];
    frame[12..14].copy_from_slice(&[0x08, 0x00]);
    frame[23] = 6;
    frame[36..38].copy_from_slice(&80u16.to_be_bytes());
    frame
}

/// `ether[12:2] == 0x0800 or ether[40] == 1`: the first test accepts
/// with 14 bytes, so the second's 41 bytes need a check of their own.
fn accept_early() -> Ir {
    let mut ir = Ir::new();
    let ethertype = ir.load(None, 12, 2);
    let byte = ir.load(None, 40, 1);
    let (ipv4, one) = (ir.k(0x0800), ir.k(1));
    ir.blocks = vec![
        test(
            ethertype,
            CmpOp::Eq,
            ipv4,
            Edge::ACCEPT,
            Edge::Block(BlockId::new(1)),
        ),
        test(byte, CmpOp::Eq, one, Edge::ACCEPT, Edge::REJECT),
    ];
    ir.entry = Some(Edge::Block(BlockId::new(0)));
    ir
}

/// TCP ports behind an IPv4 header of variable length:
/// `x = (ether[14] & 0xf) << 2; ether[x + 14:2] == 1234 and
/// ether[x + 16:2] == 80`.
fn variable_offsets() -> Ir {
    let mut ir = Ir::new();
    let ihl_byte = ir.load(None, 14, 1);
    let mask = ir.k(0xf);
    let ihl = ir.bin(BinOp::And, ihl_byte, mask);
    let two = ir.k(2);
    let x = ir.bin(BinOp::Shl, ihl, two);
    let sport = ir.load(Some(x), 14, 2);
    let dport = ir.load(Some(x), 16, 2);
    let (src, dst) = (ir.k(1234), ir.k(80));
    ir.blocks = vec![
        test(
            sport,
            CmpOp::Eq,
            src,
            Edge::Block(BlockId::new(1)),
            Edge::REJECT,
        ),
        test(dport, CmpOp::Eq, dst, Edge::ACCEPT, Edge::REJECT),
    ];
    ir.entry = Some(Edge::Block(BlockId::new(0)));
    ir
}

/// A frame `variable_offsets` accepts: a 20-byte IPv4 header, so the
/// ports are at 34 and 36 (the filter reads up to 38).
fn variable_offsets_frame() -> Vec<u8> {
    let mut frame = vec![0u8; 64];
    frame[14] = 0x45;
    frame[34..36].copy_from_slice(&1234u16.to_be_bytes());
    frame[36..38].copy_from_slice(&80u16.to_be_bytes());
    frame
}

/// `ether[0] + (ether[1] + (ether[2] + ...)) == sum` over `depth` bytes:
/// each leaf waits in a register for the sum to its right, so evaluation
/// needs `depth` registers.
fn nested_sum(depth: u32) -> Ir {
    let mut ir = Ir::new();
    let mut sum = ir.load(None, depth - 1, 1);
    for k in (0..depth - 1).rev() {
        let byte = ir.load(None, k, 1);
        sum = ir.bin(BinOp::Add, byte, sum);
    }
    let expected = ir.k((1..=depth).sum());
    ir.blocks = vec![test(sum, CmpOp::Eq, expected, Edge::ACCEPT, Edge::REJECT)];
    ir.entry = Some(Edge::Block(BlockId::new(0)));
    ir
}

/// A frame `nested_sum(depth)` accepts: bytes 1, 2, 3, ...
fn nested_sum_frame(depth: u32) -> Vec<u8> {
    (1..=depth as u8)
        .chain(std::iter::repeat_n(0, 20))
        .collect()
}

/// The one-program object for `ir` as `pktmatch::program` builds it.
fn build(ir: &Ir, opts: EmitOptions) -> (Object, ProgId) {
    pktmatch::program(ir, &opts, "test", MATCH, NO_MATCH).expect("the filter compiles")
}

/// How a target's program sees a frame.
#[derive(Clone, Copy, Debug)]
enum Hook {
    /// XDP: the packet is the frame.
    Xdp,
    /// XDP in the test-run mode: the whole frame is there, but the packet
    /// ends at `caplen` (given in the metadata).
    XdpTestRun,
    /// tc: the frame is the skb's linear data.
    Tc,
    /// Socket filter: the skb data starts after the Ethernet header.
    Socket,
}

impl Hook {
    fn options(self) -> EmitOptions {
        match self {
            Hook::Xdp => EmitOptions::new(Target::Xdp),
            Hook::XdpTestRun => EmitOptions::new(Target::Xdp).test_run_meta(true),
            Hook::Tc => EmitOptions::new(Target::Tc),
            Hook::Socket => EmitOptions::new(Target::SocketFilter),
        }
    }
}

/// The generated program's verdict on the first `len` bytes of `frame`.
fn run(interp: &mut Interp, hook: Hook, frame: &[u8], len: usize) -> bool {
    let out = match hook {
        Hook::Xdp => interp.run_xdp(&frame[..len], &[], XdpCtx::test_run()),
        Hook::XdpTestRun => {
            let caplen = (len as u32).to_ne_bytes();
            let meta = [caplen, caplen].concat();
            interp.run_xdp(frame, &meta, XdpCtx::test_run())
        }
        Hook::Tc => interp.run_skb(&frame[..len], &[], &SkbCtx::test_run_tc(&frame[..len])),
        Hook::Socket => {
            let skb = &frame[..ETH_HLEN + len];
            interp.run_socket_filter(skb, &SkbCtx::test_run_socket_filter(skb))
        }
    }
    .expect("the program runs");
    match (hook, out.retval as i32) {
        (_, MATCH) => true,
        (_, NO_MATCH) => false,
        // `ld_abs`/`ld_ind` past the end end the program, returning 0.
        (Hook::Socket, 0) => false,
        (_, other) => panic!("unexpected return value {other}"),
    }
}

/// Runs `ir`'s program for `hook` on every prefix of `frame` and checks
/// each verdict against `Ir::eval`; returns the verdicts by length.
fn check_against_eval(ir: &Ir, hook: Hook, frame: &[u8]) -> Vec<bool> {
    let (object, prog) = build(ir, hook.options());
    let mut interp = Interp::from_object(&object, prog).expect("an interpreter");
    // Socket filters see the frame from its network header on.
    let packet = match hook {
        Hook::Socket => &frame[ETH_HLEN..],
        _ => frame,
    };
    (0..=packet.len())
        .map(|len| {
            let want = ir.eval(&packet[..len], len as u32, &|_| None);
            let got = run(&mut interp, hook, frame, len);
            assert_eq!(got, want, "{hook:?}, packet of {len} bytes");
            got
        })
        .collect()
}

const HOOKS: [Hook; 4] = [Hook::Xdp, Hook::XdpTestRun, Hook::Tc, Hook::Socket];

#[test]
fn constant_offsets_need_every_byte_read() {
    let ir = constant_run();
    for hook in [Hook::Xdp, Hook::XdpTestRun, Hook::Tc] {
        let verdicts = check_against_eval(&ir, hook, &constant_run_frame());
        // ether[36:2] ends at 38: one byte less rejects.
        assert!(verdicts[38], "{hook:?}");
        assert!(!verdicts[37], "{hook:?}");
    }
}

#[test]
fn socket_filters_read_from_the_network_header() {
    // As a socket filter, the offsets count from the IP header: the
    // frame's bytes 14 + 12.., 14 + 23, 14 + 36.. are read.
    let mut frame = vec![0u8; ETH_HLEN];
    frame.extend(constant_run_frame());
    let verdicts = check_against_eval(&constant_run(), Hook::Socket, &frame);
    assert!(verdicts[38]);
    assert!(!verdicts[37]);
}

#[test]
fn a_path_that_accepts_early_is_not_held_to_a_later_bound() {
    let ir = accept_early();
    let mut ipv4 = vec![0u8; 48];
    ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
    let mut other = vec![0u8; 48];
    other[40] = 1;
    for hook in [Hook::Xdp, Hook::XdpTestRun, Hook::Tc] {
        let verdicts = check_against_eval(&ir, hook, &ipv4);
        // Accepted as soon as the ethertype is there.
        assert!(verdicts[14] && !verdicts[13], "{hook:?}");
        let verdicts = check_against_eval(&ir, hook, &other);
        assert!(verdicts[41] && !verdicts[40], "{hook:?}");
    }
    let mut frame = vec![0u8; ETH_HLEN];
    frame.extend(&ipv4);
    check_against_eval(&ir, Hook::Socket, &frame);
}

#[test]
fn variable_offsets_need_every_byte_read() {
    let ir = variable_offsets();
    let frame = variable_offsets_frame();
    for hook in [Hook::Xdp, Hook::XdpTestRun, Hook::Tc] {
        let verdicts = check_against_eval(&ir, hook, &frame);
        assert!(verdicts[38] && !verdicts[37], "{hook:?}");
        // A longer IP header moves the ports, and the bound with them.
        let mut options = vec![0u8; 64];
        options[14] = 0x47;
        options[42..44].copy_from_slice(&1234u16.to_be_bytes());
        options[44..46].copy_from_slice(&80u16.to_be_bytes());
        let verdicts = check_against_eval(&ir, hook, &options);
        assert!(verdicts[46] && !verdicts[45], "{hook:?}");
    }
    let mut socket = vec![0u8; ETH_HLEN];
    socket.extend(&frame);
    let verdicts = check_against_eval(&ir, Hook::Socket, &socket);
    assert!(verdicts[38] && !verdicts[37]);
}

#[test]
fn every_target_agrees_with_eval_on_wrong_bytes() {
    // Nothing matches: the verdict is the same whatever the length.
    let frame = vec![0xffu8; 80];
    for ir in [constant_run(), accept_early(), variable_offsets()] {
        for hook in HOOKS {
            check_against_eval(&ir, hook, &frame);
        }
    }
}

/// How many times the program compares `r` with the packet end (r8): the
/// bounds checks on pointer `r` (r5 for constant offsets, r9 for
/// variable ones).
fn bounds_checks(object: &Object, prog: ProgId, r: Reg) -> usize {
    let check = Insn::jmp(JmpOp::Gt, r, Reg::R8, 0);
    object
        .program(prog)
        .code
        .insns
        .iter()
        .filter(|i| (i.code, i.dst, i.src) == (check.code, check.dst, check.src))
        .count()
}

#[test]
fn one_bounds_check_covers_a_run_of_constant_offsets() {
    for target in [Target::Xdp, Target::Tc] {
        let (object, prog) = build(&constant_run(), EmitOptions::new(target));
        assert_eq!(bounds_checks(&object, prog, Reg::R5), 1, "{target:?}");
        assert_eq!(bounds_checks(&object, prog, Reg::R9), 0, "{target:?}");
    }
    // The early accept needs 14 bytes; the test after it 41: two checks.
    let (object, prog) = build(&accept_early(), EmitOptions::new(Target::Xdp));
    assert_eq!(bounds_checks(&object, prog, Reg::R5), 2);
}

#[test]
fn variable_offset_loads_are_checked_one_by_one() {
    for target in [Target::Xdp, Target::Tc] {
        let (object, prog) = build(&variable_offsets(), EmitOptions::new(target));
        // ether[14] is a constant offset: one check. Each port load at
        // `x + k` moves r9 to its own end and checks it.
        assert_eq!(bounds_checks(&object, prog, Reg::R5), 1, "{target:?}");
        assert_eq!(bounds_checks(&object, prog, Reg::R9), 2, "{target:?}");
    }
}

#[test]
fn socket_filters_leave_the_bounds_to_ld_abs() {
    for ir in [constant_run(), variable_offsets()] {
        let (object, prog) = build(&ir, EmitOptions::new(Target::SocketFilter));
        assert_eq!(bounds_checks(&object, prog, Reg::R5), 0);
        assert_eq!(bounds_checks(&object, prog, Reg::R9), 0);
    }
}

#[test]
fn an_expression_as_deep_as_the_registers_compiles() {
    // Direct access has five value registers (r0-r4).
    let ir = nested_sum(5);
    for hook in [Hook::Xdp, Hook::XdpTestRun, Hook::Tc] {
        let verdicts = check_against_eval(&ir, hook, &nested_sum_frame(5));
        assert!(verdicts[5] && !verdicts[4], "{hook:?}");
    }
    // Socket filters have three (r0, r7, r8).
    let mut frame = vec![0u8; ETH_HLEN];
    frame.extend(nested_sum_frame(3));
    let verdicts = check_against_eval(&nested_sum(3), Hook::Socket, &frame);
    assert!(verdicts[3] && !verdicts[2]);
}

#[test]
fn an_expression_deeper_than_the_registers_is_an_error() {
    let ir = nested_sum(6);
    for target in [Target::Xdp, Target::Tc, Target::SocketFilter] {
        let err = pktmatch::program(&ir, &EmitOptions::new(target), "test", MATCH, NO_MATCH)
            .expect_err("six registers are one too many");
        assert_eq!(err.message, "expression too deep for the registers");
    }
    // Socket filters have three (r0, r7, r8): `ld_abs` clobbers the rest.
    let ir = nested_sum(4);
    let err = pktmatch::program(
        &ir,
        &EmitOptions::new(Target::SocketFilter),
        "test",
        MATCH,
        NO_MATCH,
    )
    .expect_err("four registers are one too many for a socket filter");
    assert_eq!(err.message, "expression too deep for the registers");
}

/// The `[matched, seen]` counters of an interpreter run.
fn counters(interp: &Interp, map: bpf_builder::object::MapId) -> [u64; 2] {
    let map = interp.object_map(map).expect("the counters map");
    [COUNTER_MATCHED, COUNTER_SEEN].map(|index| {
        let value = map.lookup(&index.to_ne_bytes()).expect("an array entry");
        u64::from_ne_bytes(value.try_into().expect("a u64"))
    })
}

#[test]
fn counters_count_matches_and_packets() {
    let ir = constant_run();
    let mut object = Object::new();
    let stats = object
        .add_map(pktmatch::counters_map("stats"))
        .expect("a map");
    let opts = ProgramOptions::new(EmitOptions::new(Target::Xdp), MATCH, NO_MATCH)
        .name("counted")
        .counters(stats);
    let prog = pktmatch::add_program(&mut object, &ir, "test", &opts).expect("the filter compiles");
    assert_eq!(object.program(prog).name, "counted");
    let mut interp = Interp::from_object(&object, prog).expect("an interpreter");
    let frame = constant_run_frame();
    // Two matches, one packet cut short, one of another protocol.
    let mut other = frame.clone();
    other[23] = 17;
    for (packet, matched) in [
        (&frame[..], true),
        (&frame[..38], true),
        (&frame[..37], false),
        (&other[..], false),
    ] {
        let out = interp
            .run_xdp(packet, &[], XdpCtx::test_run())
            .expect("the program runs");
        assert_eq!(out.retval as i32 == MATCH, matched);
    }
    assert_eq!(counters(&interp, stats), [2, 4]);
}

#[test]
fn the_kernel_verifier_accepts_the_programs() {
    if !testbed::bpf_privileged("loading generated programs") {
        return;
    }
    let irs = [
        ("constant offsets", constant_run()),
        ("early accept", accept_early()),
        ("variable offsets", variable_offsets()),
        ("five registers", nested_sum(5)),
    ];
    let targets = [
        EmitOptions::new(Target::Xdp),
        EmitOptions::new(Target::Xdp).test_run_meta(true),
        EmitOptions::new(Target::Xdp).xdp_frags(true),
        EmitOptions::new(Target::Tc),
        EmitOptions::new(Target::SocketFilter),
    ];
    for (name, ir) in &irs {
        for opts in targets {
            // Socket filters, and the copy with helper loads that
            // fragment support adds, have three value registers.
            let three_registers = opts.target == Target::SocketFilter || opts.xdp_frags;
            if *name == "five registers" && three_registers {
                continue;
            }
            let (object, _) = build(ir, opts);
            if let Err(e) = object.load() {
                panic!("{name}, {opts:?}: the kernel refused the program: {e}");
            }
        }
    }
    // With counters too.
    let mut object = Object::new();
    let stats = object
        .add_map(pktmatch::counters_map("stats"))
        .expect("a map");
    let opts = ProgramOptions::new(EmitOptions::new(Target::Tc), -1, 2).counters(stats);
    pktmatch::add_program(&mut object, &constant_run(), "test", &opts)
        .expect("the filter compiles");
    if let Err(e) = object.load() {
        panic!("counters: the kernel refused the program: {e}");
    }
}

/// An assignment's false edge is never taken: when no other edge names
/// its verdict, that verdict has no code (the verifier refuses code no
/// path reaches).
#[test]
fn an_assignment_does_not_place_the_verdict_of_its_false_edge() {
    if !testbed::bpf_privileged("loading generated programs") {
        return;
    }
    let mut ir = Ir::with_semantics(pktmatch::ir::Semantics::Exact);
    let len = ir.val(pktmatch::ir::ValNode::Len);
    let var = ir.val(pktmatch::ir::ValNode::Var(0));
    let ten = ir.k(10);
    let set = Block::new(
        Cond::Let { var: 0, val: len },
        Edge::Block(BlockId::new(1)),
        Edge::REJECT,
        Span::default(),
    );
    let other = Edge::Verdict(pktmatch::ir::Verdict(2));
    ir.push(set);
    ir.push(test(var, CmpOp::Gt, ten, Edge::ACCEPT, other));
    ir.entry = Some(Edge::Block(BlockId::new(0)));
    for target in [Target::Xdp, Target::Tc] {
        let code = pktmatch::emit_program(
            &ir,
            &EmitOptions::new(target),
            "test",
            |a, v| {
                a.mov32(Reg::R0, v.0 as i32);
                a.exit();
            },
            pktmatch::codegen::no_actions,
        )
        .expect("the filter compiles");
        let mut object = Object::new();
        object
            .add_program("t", pktmatch::program_type(target), code)
            .expect("a program");
        if let Err(e) = object.load() {
            panic!("{target:?}: the kernel refused the program: {e}");
        }
    }
}

/// A lookup writes its key as the interpreter reads it (network order,
/// host order, a part at an unaligned offset) and gives the entry's
/// value to a variable: the kernel finds the entry the test put in.
#[test]
fn a_lookup_finds_its_key_in_a_kernel_map() {
    if !testbed::bpf_privileged("loading generated programs") {
        return;
    }
    use bpf_builder::handle::UpdateFlags;
    use bpf_builder::helpers::Helper;
    use bpf_builder::map::MapSpec;
    use pktmatch::codegen::{ActionEnd, KEY_SLOT};
    use pktmatch::ir::{Key, KeyPart, ValNode, VarNo, Verdict};
    // 0x20 in host order (4 bytes, at 0), ip saddr (4, at 4), udp dport
    // (2, at 8), ip protocol (1, at 10), the length (4, at 11: unaligned,
    // written byte by byte).
    let mut ir = Ir::with_semantics(pktmatch::ir::Semantics::Exact);
    let prefix = ir.k(0x20);
    let saddr = ir.load(None, 26, 4);
    let dport = ir.load(None, 36, 2);
    let proto = ir.load(None, 23, 1);
    let sum = ir.val(ValNode::Len);
    let key = ir.key(Key {
        parts: vec![
            KeyPart::host(prefix, 4),
            KeyPart::network(saddr, 4),
            KeyPart::network(dport, 2),
            KeyPart::network(proto, 1),
            KeyPart::network(sum, 4),
        ],
    });
    let var = ir.val(ValNode::Var(3));
    let seven = ir.k(7);
    let lookup = Block::new(
        Cond::Lookup {
            key,
            action: 0,
            result: Some(VarNo::new(3)).into(),
        },
        Edge::Block(BlockId::new(1)),
        Edge::REJECT,
        Span::default(),
    )
    .on_short(pktmatch::ir::OnShort::False);
    ir.push(lookup);
    ir.push(test(
        var,
        CmpOp::Eq,
        seven,
        Edge::ACCEPT,
        Edge::Verdict(Verdict(2)),
    ));
    ir.entry = Some(Edge::Block(BlockId::new(0)));
    assert_eq!(ir.verify(), Ok(()));
    let mut frame = vec![0u8; 60];
    frame[23] = 17;
    frame[26..30].copy_from_slice(&[10, 0, 0, 1]);
    frame[36..38].copy_from_slice(&53u16.to_be_bytes());
    let mut want = 32u32.to_ne_bytes().to_vec();
    want.extend_from_slice(&[10, 0, 0, 1, 0, 53, 17]);
    want.extend_from_slice(&60u32.to_be_bytes());
    for target in [Target::Xdp, Target::Tc] {
        let mut object = Object::new();
        let table = object
            .add_map(MapSpec::hash("keys", 15, 4, 4))
            .expect("a map");
        let code = pktmatch::emit_program(
            &ir,
            &EmitOptions::new(target),
            "test",
            |a, v| {
                a.mov32(Reg::R0, v.0 as i32);
                a.exit();
            },
            |a, _, miss| {
                a.ld_map_fd(Reg::R1, table);
                a.mov64(Reg::R2, Reg::R10);
                a.add64(Reg::R2, i32::from(KEY_SLOT));
                a.call(Helper::MapLookupElem);
                a.jmp(JmpOp::Eq, Reg::R0, 0, miss);
                Ok(ActionEnd::MayFail)
            },
        )
        .expect("the filter compiles");
        let prog = object
            .add_program("t", pktmatch::program_type(target), code)
            .expect("a program");
        let loaded = object
            .load()
            .unwrap_or_else(|e| panic!("{target:?}: the kernel refused the program: {e}"));
        let run = |f: &[u8]| {
            loaded
                .program(prog)
                .test_run(&bpf_builder::run::TestRun::new(f))
                .expect("a test run")
                .retval
        };
        // A miss.
        assert_eq!(run(&frame), 0, "{target:?}");
        // A hit, with the entry's value.
        let map = loaded.map(table);
        map.update(&want, &7u32.to_ne_bytes(), UpdateFlags::Any)
            .expect("an entry");
        assert_eq!(run(&frame), 1, "{target:?}");
        map.update(&want, &8u32.to_ne_bytes(), UpdateFlags::Any)
            .expect("an entry");
        assert_eq!(run(&frame), 2, "{target:?}");
        // The key does not fit in the packet: the false edge.
        assert_eq!(run(&frame[..37]), 0, "{target:?}");
    }
}

/// The probe target: a function over bytes in kernel memory has no
/// metadata to read, so an IR that reads some is refused, with why.
#[test]
fn a_probe_function_refuses_metadata() {
    let mut ir = Ir::new();
    let ifindex = ir.val(pktmatch::ir::ValNode::Meta(pktmatch::ir::Meta::IfIndex));
    let two = ir.k(2);
    ir.push(test(ifindex, CmpOp::Eq, two, Edge::ACCEPT, Edge::REJECT));
    ir.entry = Some(Edge::Block(BlockId::new(0)));
    let mut object = Object::new();
    let err = pktmatch::codegen::add_probe_function(&mut object, &ir, "ifindex 2", "f")
        .expect_err("refused");
    assert!(err.to_string().contains("no metadata"), "{err}");
    // Without the metadata it is a function of the object.
    let f = pktmatch::codegen::add_probe_function(&mut object, &constant_run(), "run", "run");
    assert!(f.is_ok(), "{:?}", f.err());
    assert_eq!(object.functions().len(), 1);
}
