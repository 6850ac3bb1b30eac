//! A short read's meaning chosen per block ([`Semantics::Exact`]): a test
//! that reads past the packet's end takes the edge its block names, and
//! evaluation goes on, as a firewall means its rules. The XDP code
//! generated for random rule chains (constant and variable offsets,
//! negated tests, protochain, several verdicts) must give the verdict of
//! the IR's evaluator on random packets cut at every length, in the
//! interpreter, in the kernel and in the compiled engine (for chains
//! without actions, which it refuses); and libpcap's meaning must stay what it
//! was when the same blocks reject on a short read. With the firewall's
//! meaning, rules also take actions (`Cond::Act`, counting the rule in a
//! map here) and some only count and let the next rule run: the counts
//! must be the evaluator's too.

use bpf_builder::asm::Asm;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, JmpOp, Reg, Size};
use bpf_builder::interp::{Interp, XdpCtx};
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgId, ProgramType};
use bpf_builder::run::TestRun;
use pktmatch::codegen::ActionEnd;
use pktmatch::ir::{
    BinOp, Block, BlockId, CmpOp, Cond, Edge, EntityRef, Ir, OnShort, Semantics, Val, Verdict,
};
use pktmatch::run::compiled::Compiled;
use pktmatch::{EmitOptions, Span, Target};
use testbed::Rng;

/// The packet length the filters run on, cut at every length below it.
const FRAME: usize = 48;

/// Packets per rule chain.
const PACKETS: usize = 6;

/// A value the tests read: a constant-offset load, or one behind a
/// variable offset (an IPv4-style header length at byte 14).
fn random_load(ir: &mut Ir, rng: &mut Rng) -> Val {
    let size = [1u8, 2, 4][rng.below(3) as usize];
    let k = rng.below((FRAME + 4) as u64) as u32;
    if rng.below(4) == 0 {
        let ihl = ir.load(None, 14, 1);
        let mask = ir.k(0x0f);
        let words = ir.bin(BinOp::And, ihl, mask);
        let four = ir.k(4);
        let off = ir.bin(BinOp::Mul, words, four);
        ir.load(Some(off), k % 24, size)
    } else {
        ir.load(None, k, size)
    }
}

/// A random test: mostly a comparison of a load with a small constant,
/// now and then a protochain walk.
fn random_cond(ir: &mut Ir, rng: &mut Rng) -> Cond {
    if rng.below(8) == 0 {
        return Cond::ProtoChain {
            nl: 14,
            ipv6: rng.below(2) == 0,
            proto: 6,
        };
    }
    let a = random_load(ir, rng);
    let op = [CmpOp::Eq, CmpOp::Gt, CmpOp::Ge, CmpOp::Set][rng.below(4) as usize];
    let b = ir.k(rng.below(3) as u32);
    Cond::Cmp {
        a,
        op,
        b,
        relation: false,
    }
}

/// Rules per chain at most, and so actions.
const RULES: usize = 4;

/// A chain of rules, each a conjunction of tests ending in a verdict
/// (0 to 3, XDP's actions), then a default verdict. A rule's test that
/// cannot read its bytes makes the rule not match; a negated test
/// (`!=`) swaps its edges, so its short edge is the true one. With
/// libpcap's meaning every block rejects on a short read instead. With
/// the firewall's, a matching rule often takes its action (its number)
/// first, and now and then only that: the next rule runs after it.
fn random_rules(rng: &mut Rng, semantics: Semantics) -> Ir {
    let mut ir = Ir::with_semantics(semantics);
    // Built from the end, then numbered so that blocks jump forward.
    let mut rev: Vec<Block> = Vec::new();
    let mut next_rule = Edge::Verdict(Verdict(rng.below(4) as u32));
    for rule in 0..1 + rng.below(RULES as u64) {
        let mut then = Edge::Verdict(Verdict(rng.below(4) as u32));
        if semantics == Semantics::Exact && rng.below(2) == 0 {
            if rng.below(3) == 0 {
                then = next_rule;
            }
            let action = rule as u32;
            // Odd actions fail now and then (see `program`), and the rule
            // then does not fire, as when a rate limit is over its rate.
            let fail = if action % 2 == 1 {
                next_rule
            } else {
                Edge::REJECT
            };
            let act = Cond::Act { action };
            rev.push(Block::new(act, then, fail, Span::default()));
            then = Edge::Block(BlockId::new(rev.len() - 1));
        }
        for _ in 0..1 + rng.below(3) {
            let cond = random_cond(&mut ir, rng);
            let block = Block::new(cond, then, next_rule, Span::default());
            let block = match semantics {
                Semantics::Libpcap => block,
                Semantics::Exact if rng.below(3) == 0 => Block {
                    t: block.f,
                    f: block.t,
                    ..block
                }
                .on_short(OnShort::True),
                // Now and then a short read goes to a block (or verdict)
                // that is neither edge: to a later rule, as a filter
                // spliced into a rule sends it to the next rule.
                Semantics::Exact if rng.below(4) == 0 => {
                    let to = match rng.below(rev.len() as u64 + 1) {
                        0 => Edge::Verdict(Verdict(rng.below(4) as u32)),
                        j => Edge::Block(BlockId::new(j as usize - 1)),
                    };
                    block.on_short(OnShort::To(to))
                }
                Semantics::Exact => block.on_short(OnShort::False),
            };
            rev.push(block);
            then = Edge::Block(BlockId::new(rev.len() - 1));
        }
        next_rule = then;
    }
    let n = rev.len();
    let renumber = |e: Edge| match e {
        Edge::Block(i) => Edge::Block(BlockId::new(n - 1 - i.index())),
        e => e,
    };
    for mut b in rev.into_iter().rev() {
        b.map_edges(renumber);
        ir.push(b);
    }
    ir.entry = Some(renumber(next_rule));
    ir
}

/// The filter as an XDP program in the test-run mode, returning its
/// verdict's number; action `a` adds 1 to the u64 at index `a` of the
/// array it also returns, and an odd action fails when the count was odd
/// before (what [`outcome`] says).
fn program(ir: &Ir) -> (Object, ProgId, MapId) {
    let mut object = Object::new();
    let acts = object
        .add_map(MapSpec::array("acts", 8, RULES as u32))
        .expect("adds");
    let opts = EmitOptions::new(Target::Xdp).test_run_meta(true);
    let code = pktmatch::emit_program(
        ir,
        &opts,
        "rules",
        |a: &mut Asm, v| {
            a.mov32(Reg::R0, v.0 as i32);
            a.exit();
        },
        |a: &mut Asm, action, fail| {
            use Reg::*;
            let done = a.new_label();
            a.st(Size::W, R10, -4, action as i32);
            a.ld_map_fd(R1, acts);
            a.mov64(R2, R10);
            a.add64(R2, -4);
            a.call(Helper::MapLookupElem);
            a.jmp(JmpOp::Eq, R0, 0, done);
            a.ldx(Size::DW, R1, R0, 0);
            a.mov64(R2, R1);
            a.add64(R2, 1);
            a.stx(Size::DW, R0, 0, R2);
            if action % 2 == 0 {
                a.bind(done);
                return Ok(ActionEnd::Continues);
            }
            a.alu64(AluOp::And, R1, 1);
            a.jmp(JmpOp::Ne, R1, 0, fail);
            a.bind(done);
            Ok(ActionEnd::MayFail)
        },
    )
    .expect("generates");
    let prog = object
        .add_program("rules", ProgramType::Xdp, code)
        .expect("adds");
    (object, prog, acts)
}

/// Counts action `a` in `counts` and says whether it succeeds: an odd
/// action fails when its count was odd before.
fn outcome(counts: &mut [u64; RULES], a: u32) -> bool {
    let before = counts[a as usize];
    counts[a as usize] += 1;
    a.is_multiple_of(2) || before.is_multiple_of(2)
}

/// The counts of each action in an `acts` map's values.
fn counts(values: impl Fn(u32) -> Option<Vec<u8>>) -> [u64; RULES] {
    std::array::from_fn(|i| {
        values(i as u32).map_or(0, |v| u64::from_ne_bytes(v[..8].try_into().unwrap()))
    })
}

/// `{caplen, wirelen}` and the packet, padded to an Ethernet header, and
/// the `xdp_md` that puts the first 8 bytes in the metadata area.
fn test_input(data: &[u8], wire_len: u32) -> (Vec<u8>, Vec<u8>) {
    let mut input = Vec::with_capacity(8 + FRAME);
    input.extend_from_slice(&(data.len() as u32).to_ne_bytes());
    input.extend_from_slice(&wire_len.to_ne_bytes());
    input.extend_from_slice(data);
    input.resize(input.len().max(8 + 14), 0);
    let ctx = [8u32, input.len() as u32, 0, 0, 0, 0]
        .iter()
        .flat_map(|f| f.to_ne_bytes())
        .collect();
    (input, ctx)
}

/// Runs `rounds` random rule chains over random packets at every cut,
/// comparing the IR's verdicts and actions with the interpreter's and the
/// kernel's; returns how many verdicts were compared, how many rule
/// chains the kernel loaded and how many actions were taken.
fn compare(semantics: Semantics, seed: u64, rounds: usize) -> (usize, usize, u64) {
    let mut rng = Rng::new(seed);
    let kernel = testbed::bpf_privileged("loading the generated programs");
    let (mut compared, mut loaded_count, mut actions) = (0, 0, 0);
    for round in 0..rounds {
        let mut ir = random_rules(&mut rng, semantics);
        pktmatch::opt::optimize(&mut ir);
        let (object, prog, acts) = program(&ir);
        let mut interp = Interp::from_object(&object, prog).expect("the interpreter takes it");
        let has_actions = ir.blocks.iter().any(|b| matches!(b.cond, Cond::Act { .. }));
        let compiled = Compiled::new(&ir);
        assert_eq!(
            compiled.is_err(),
            has_actions,
            "round {round}: the compiled engine refuses exactly the chains with actions"
        );
        let loaded = kernel.then(|| {
            object
                .load()
                .unwrap_or_else(|e| panic!("round {round}: the verifier refused it: {e}\n{ir:?}"))
        });
        loaded_count += usize::from(loaded.is_some());
        let mut want_acts = [0u64; RULES];
        for _ in 0..PACKETS {
            let mut frame: Vec<u8> = (0..FRAME).map(|_| rng.below(256) as u8).collect();
            // Headers the tests look for, now and then.
            if rng.below(2) == 0 {
                frame[14] = 0x45;
                frame[23] = 6;
            }
            for cut in 0..=FRAME {
                let data = &frame[..cut];
                let want = ir.run_acting(
                    data,
                    FRAME as u32,
                    &|_| None,
                    &mut |a| outcome(&mut want_acts, a),
                    &mut |_, _| None,
                );
                let (input, ctx) = test_input(data, FRAME as u32);
                let (meta, packet) = input.split_at(8);
                let got = interp
                    .run_xdp(packet, meta, XdpCtx::test_run())
                    .expect("the interpreter runs it")
                    .retval;
                assert_eq!(
                    got,
                    u64::from(want.0),
                    "round {round}, cut {cut}: interpreter vs IR\n{ir:?}\n{frame:?}"
                );
                if let Some(loaded) = &loaded {
                    let out = loaded
                        .program(prog)
                        .test_run(&TestRun::new(&input).ctx_in(&ctx))
                        .expect("test run");
                    assert_eq!(
                        out.retval, want.0,
                        "round {round}, cut {cut}: kernel vs IR\n{ir:?}\n{frame:?}"
                    );
                }
                if let Ok(c) = &compiled {
                    assert_eq!(
                        c.verdict(data, FRAME as u32),
                        want,
                        "round {round}, cut {cut}: compiled engine vs IR (and kernel)\n{ir:?}\n{frame:?}"
                    );
                }
                compared += 1;
            }
        }
        // The interpreter has the map once code refers to it.
        let from_interp = counts(|i| {
            let map = interp.object_map(acts)?;
            map.lookup(&i.to_ne_bytes()).map(<[u8]>::to_vec)
        });
        assert_eq!(
            from_interp, want_acts,
            "round {round}: interpreter's actions\n{ir:?}"
        );
        if let Some(loaded) = &loaded {
            let from_kernel = counts(|i| loaded.map(acts).lookup(&i.to_ne_bytes()).unwrap());
            assert_eq!(
                from_kernel, want_acts,
                "round {round}: kernel's actions\n{ir:?}"
            );
        }
        actions += want_acts.iter().sum::<u64>();
    }
    (compared, loaded_count, actions)
}

#[test]
fn a_short_read_takes_the_blocks_short_edge() {
    let (n, loaded, actions) = compare(Semantics::Exact, 0x5eed_0001, 150);
    assert_eq!(n, 150 * PACKETS * (FRAME + 1));
    assert!(actions > 1000, "rules took actions: {actions}");
    println!("{n} verdicts and {actions} actions compared, {loaded} programs loaded");
}

#[test]
fn a_short_read_rejects_the_whole_filter_with_libpcaps_meaning() {
    let (n, loaded, _) = compare(Semantics::Libpcap, 0x5eed_0002, 100);
    assert_eq!(n, 100 * PACKETS * (FRAME + 1));
    println!("{n} verdicts compared, {loaded} programs loaded");
}

fn eq(a: Val, b: Val) -> Cond {
    Cond::Cmp {
        a,
        op: CmpOp::Eq,
        b,
        relation: false,
    }
}

#[test]
fn the_evaluator_follows_each_blocks_short_edge() {
    // `ether[20] == 1`, false on a short read; then `ether[2] != 7`
    // (edges swapped), which a short read also fails.
    let mut ir = Ir::with_semantics(Semantics::Exact);
    let (b20, b2, one, seven) = (ir.load(None, 20, 1), ir.load(None, 2, 1), ir.k(1), ir.k(7));
    let first = Block::new(
        eq(b20, one),
        Edge::ACCEPT,
        Edge::Block(BlockId::new(1)),
        Span::default(),
    )
    .on_short(OnShort::False);
    let second = Block::new(
        eq(b2, seven),
        Edge::Verdict(Verdict(2)),
        Edge::Verdict(Verdict(3)),
        Span::default(),
    )
    .on_short(OnShort::True);
    ir.push(first);
    ir.push(second);
    ir.entry = Some(Edge::Block(BlockId::new(0)));
    let mut p = [0u8; 21];
    p[20] = 1;
    assert_eq!(ir.run(&p, 21, &|_| None), Verdict::MATCH);
    // Too short for byte 20: the first rule does not match.
    assert_eq!(ir.run(&p[..10], 21, &|_| None), Verdict(3));
    // Too short for byte 2 as well: `!=` does not match either.
    assert_eq!(ir.run(&p[..2], 21, &|_| None), Verdict(2));
    // libpcap's meaning: the same blocks reject the whole filter.
    for b in &mut ir.blocks {
        b.short = OnShort::Reject;
    }
    assert_eq!(ir.run(&p[..10], 21, &|_| None), Verdict::NO_MATCH);
}

#[test]
fn a_short_read_jumps_to_a_third_block_in_the_kernel() {
    // b0 tests byte 20; a frame too short for it goes to b2, past b1 (a
    // test of byte 30 that would reject such a frame), which tests byte
    // 2 and itself goes to verdict 5 when even that is missing.
    let text = "semantics exact\nentry b0\n\
                v0 = load [20:1]\nv1 = const 0x1\nv2 = load [30:1]\nv3 = load [2:1]\n\
                b0: eq v0, v1 ? b1 : verdict3 short b2\n\
                b1: eq v2, v1 ? accept : reject\n\
                b2: eq v3, v1 ? verdict2 : verdict4 short verdict5\n";
    let mut ir = Ir::from_text(text).expect("parses");
    assert_eq!(ir.verify(), Ok(()));
    pktmatch::opt::optimize(&mut ir);
    assert_eq!(ir.to_string(), text, "nothing to optimise");
    let (object, prog, _) = program(&ir);
    let mut interp = Interp::from_object(&object, prog).expect("the interpreter takes it");
    let kernel = testbed::bpf_privileged("loading the generated program");
    let loaded = kernel.then(|| object.load().expect("the verifier takes it"));
    let mut frame = [0u8; 31];
    frame[30] = 1;
    let mut seen = std::collections::BTreeSet::new();
    for (byte2, byte20) in [(0u8, 1u8), (1, 1), (1, 0)] {
        frame[2] = byte2;
        frame[20] = byte20;
        for cut in 0..=frame.len() {
            let data = &frame[..cut];
            let want = ir.run(data, 31, &|_| None);
            let expected = match cut {
                0..=2 => Verdict(5),
                3..=20 if byte2 == 1 => Verdict(2),
                3..=20 => Verdict(4),
                _ if byte20 == 0 => Verdict(3),
                21..=30 => Verdict::NO_MATCH,
                _ => Verdict::MATCH,
            };
            assert_eq!(want, expected, "cut {cut}, frame {frame:?}");
            seen.insert(want.0);
            let (input, ctx) = test_input(data, 31);
            let (meta, packet) = input.split_at(8);
            let got = interp
                .run_xdp(packet, meta, XdpCtx::test_run())
                .expect("the interpreter runs it")
                .retval;
            assert_eq!(got, u64::from(want.0), "cut {cut}: interpreter");
            if let Some(loaded) = &loaded {
                let out = loaded
                    .program(prog)
                    .test_run(&TestRun::new(&input).ctx_in(&ctx))
                    .expect("test run");
                assert_eq!(out.retval, want.0, "cut {cut}: kernel");
            }
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
}

#[test]
fn socket_filters_cannot_go_on_after_a_short_read() {
    let mut ir = Ir::with_semantics(Semantics::Exact);
    let (a, b) = (ir.load(None, 20, 1), ir.k(1));
    let block = Block::new(eq(a, b), Edge::ACCEPT, Edge::REJECT, Span::default());
    ir.push(block.on_short(OnShort::False));
    ir.entry = Some(Edge::Block(BlockId::new(0)));
    let err = pktmatch::program(&ir, &EmitOptions::new(Target::SocketFilter), "x", 1, 0)
        .map(|_| ())
        .unwrap_err();
    assert!(err.message.contains("needs XDP or tc"), "{err}");
}
