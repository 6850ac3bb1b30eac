//! The acting statements' code on the real kernel, for XDP and tc: a
//! filter that sets variable 0 to nft's `skb->len` (the frame's length
//! less the Ethernet header) and runs a chain of actions, each going on
//! to the next when it holds, ending in a match; no match when one
//! fails. Every program is loaded (the verifier accepts it) and run with
//! `BPF_PROG_TEST_RUN`; the expected outcomes come from nft's formulas
//! (`net/netfilter/nft_quota.c`, `nft_limit.c`), computed here.

use bpf_builder::asm::Asm;
use bpf_builder::insn::Reg;
use bpf_builder::load::Loaded;
use bpf_builder::object::{Object, ProgId, ProgramType};
use bpf_builder::ringbuf::RingBuf;
use bpf_builder::run::TestRun;
use nft2bpf::check::tree::{Limit, LimitUnit};
use nft2bpf::compile::actions::{
    Action, ActionMaps, ActionOptions, CounterValue, add_actions, log_drops, read_counter,
    read_quota, write_counter,
};
use nft2bpf::compile::log::{CAPTURE, LogRecord};
use pktmatch::ir::{
    BinOp, Block, BlockId, CmpOp, Cond, Edge, EntityRef, Ir, Semantics, ValNode, Verdict,
};
use pktmatch::{EmitOptions, Span, Target};

const TARGETS: [Target; 2] = [Target::Xdp, Target::Tc];

/// The Ethernet header nft's `skb->len` leaves out at the netdev hooks.
const ETH: usize = 14;

/// A filter: frames of an Ethernet header or more (all that test runs
/// take, but the program cannot know), `var0 = len - 14`, then actions
/// 0 to `n - 1`, then a match.
///
/// The length test keeps the no-match verdict reachable: pktmatch counts
/// a `Let`'s (unused) false edge as a use of its verdict and places that
/// verdict's code, which the verifier refuses as unreachable when
/// nothing else can reach it.
fn chain(n: u32) -> Ir {
    let mut ir = Ir::with_semantics(Semantics::Exact);
    let len = ir.val(ValNode::Len);
    let eth = ir.k(ETH as u32);
    let val = ir.bin(BinOp::Sub, len, eth);
    let block = |i: u32| Edge::Block(BlockId::new(i as usize));
    let long_enough = Cond::Cmp {
        a: len,
        op: CmpOp::Ge,
        b: eth,
        relation: false,
    };
    let first = ir.push(Block::new(
        long_enough,
        block(1),
        Edge::REJECT,
        Span::default(),
    ));
    ir.push(Block::new(
        Cond::Let { var: 0, val },
        block(2),
        Edge::REJECT,
        Span::default(),
    ));
    for action in 0..n {
        let next = if action + 1 == n {
            Edge::ACCEPT
        } else {
            block(action + 3)
        };
        ir.push(Block::new(
            Cond::Act { action },
            next,
            Edge::REJECT,
            Span::default(),
        ));
    }
    ir.entry = Some(first);
    ir
}

/// Return values on a match and otherwise.
fn returns(target: Target) -> (i32, i32) {
    match target {
        Target::Xdp => (2, 1), // XDP_PASS, XDP_DROP
        _ => (0, 2),           // TC_ACT_OK, TC_ACT_SHOT
    }
}

/// A loaded program running `actions` in a chain.
struct Rig {
    loaded: Loaded,
    prog: ProgId,
    maps: ActionMaps,
    target: Target,
}

impl Rig {
    fn new(target: Target, actions: &[Action]) -> Rig {
        Self::with(ActionOptions::new(target, 0), actions)
    }

    fn with(opts: ActionOptions, actions: &[Action]) -> Rig {
        let target = opts.target;
        let mut object = Object::new();
        let (maps, code) = add_actions(&mut object, actions, &[], &opts).unwrap();
        let ir = chain(actions.len() as u32);
        let (on_match, on_nomatch) = returns(target);
        let insns = pktmatch::emit_program(
            &ir,
            &EmitOptions::new(target),
            "actions",
            |a: &mut Asm, v| {
                let r = if v == Verdict::MATCH {
                    on_match
                } else {
                    on_nomatch
                };
                a.mov32(Reg::R0, r);
                a.exit();
            },
            |a, n, fail| code.emit(a, n, fail),
        )
        .unwrap();
        let prog_type = match target {
            Target::Xdp => ProgramType::Xdp,
            _ => ProgramType::SchedCls,
        };
        let prog = object.add_program("nft_actions", prog_type, insns).unwrap();
        let loaded = object.load().unwrap_or_else(|e| panic!("{target:?}: {e}"));
        Rig {
            loaded,
            prog,
            maps,
            target,
        }
    }

    /// Runs a frame whose nft length is `len` (`repeat` times): whether
    /// every action held.
    fn run(&self, len: usize, repeat: u32) -> bool {
        let frame = frame(len + ETH);
        let out = self
            .loaded
            .program(self.prog)
            .test_run(&TestRun::new(&frame).repeat(repeat))
            .unwrap();
        let (on_match, on_nomatch) = returns(self.target);
        assert!(
            out.retval == on_match as u32 || out.retval == on_nomatch as u32,
            "{}",
            out.retval
        );
        out.retval == on_match as u32
    }

    /// Runs frames of these nft lengths: which passed.
    fn runs(&self, lens: &[usize]) -> Vec<bool> {
        lens.iter().map(|&l| self.run(l, 1)).collect()
    }

    fn map(&self, id: Option<bpf_builder::object::MapId>) -> &bpf_builder::handle::Map {
        self.loaded.map(id.expect("the map exists"))
    }
}

/// A frame of `size` bytes whose bytes tell their offset and the size.
fn frame(size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(3) ^ size as u8)
        .collect()
}

fn privileged() -> bool {
    testbed::bpf_privileged("loading action programs")
}

#[test]
fn counters_count_packets_and_nft_bytes() {
    if !privileged() {
        return;
    }
    for target in TARGETS {
        let rig = Rig::new(
            target,
            &[Action::Count { slot: 0 }, Action::Count { slot: 1 }],
        );
        let counters = rig.map(rig.maps.counters);
        let initial = CounterValue {
            packets: 10,
            bytes: 1000,
        };
        write_counter(counters, 1, initial).unwrap();
        assert_eq!(read_counter(counters, 1).unwrap(), initial);
        let lens = [46, 50, 0, 114, 186, 1500];
        assert!(rig.runs(&lens).iter().all(|&p| p), "counters always go on");
        assert!(rig.run(86, 3), "and with repeat");
        let bytes = lens.iter().sum::<usize>() as u64 + 3 * 86;
        let packets = lens.len() as u64 + 3;
        assert_eq!(
            read_counter(counters, 0).unwrap(),
            CounterValue { packets, bytes },
            "{target:?}"
        );
        assert_eq!(
            read_counter(counters, 1).unwrap(),
            CounterValue {
                packets: packets + 10,
                bytes: bytes + 1000
            },
            "{target:?}"
        );
    }
}

#[test]
fn a_quota_passes_exactly_its_bytes() {
    if !privileged() {
        return;
    }
    let quota = |over, used| Action::Quota {
        slot: 2,
        over,
        bytes: 300,
        used,
    };
    let lens = [100, 100, 100, 1, 50];
    for target in TARGETS {
        // Consumed after each: 100, 200, 300 (not over: `>`), 301, 351.
        let until = Rig::new(target, &[quota(false, 0)]);
        assert_eq!(
            until.runs(&lens),
            [true, true, true, false, false],
            "{target:?}"
        );
        assert_eq!(read_quota(until.map(until.maps.quotas), 2).unwrap(), 351);

        let over = Rig::new(target, &[quota(true, 0)]);
        assert_eq!(
            over.runs(&lens),
            [false, false, false, true, true],
            "{target:?}"
        );

        // `used 50`: 150, 250, 350 (over).
        let used = Rig::new(target, &[quota(false, 50)]);
        assert_eq!(used.runs(&lens[..3]), [true, true, false], "{target:?}");
        assert_eq!(read_quota(used.map(used.maps.quotas), 2).unwrap(), 350);
    }
}

/// `limit rate [over] RATE/hour burst BURST UNIT`.
fn limit(over: bool, unit: LimitUnit, rate: u64, burst: u64) -> Action {
    Action::Limit {
        slot: 1,
        limit: Limit {
            over,
            unit,
            rate,
            per_seconds: 3600,
            burst,
        },
    }
}

#[test]
fn a_packet_limit_passes_its_burst() {
    if !privileged() {
        return;
    }
    // `limit rate 1/hour` (nft's burst: 5 packets): the bucket holds
    // 5 * 3600 s of tokens and a packet costs 3600 s, so 5 of 20
    // back-to-back packets pass.
    let mut expected = vec![true; 5];
    expected.extend([false; 15]);
    for target in TARGETS {
        let rig = Rig::new(target, &[limit(false, LimitUnit::Packets, 1, 0)]);
        assert_eq!(rig.runs(&[60; 20]), expected, "{target:?}");
        let over = Rig::new(target, &[limit(true, LimitUnit::Packets, 1, 5)]);
        let inverted: Vec<bool> = expected.iter().map(|&p| !p).collect();
        assert_eq!(over.runs(&[60; 20]), inverted, "{target:?}");
        let burst = Rig::new(target, &[limit(false, LimitUnit::Packets, 1, 2)]);
        assert_eq!(
            burst.runs(&[60; 4]),
            [true, true, false, false],
            "{target:?}"
        );
    }
}

#[test]
fn a_byte_limit_charges_each_packets_length() {
    if !privileged() {
        return;
    }
    // `limit rate 1000 bytes/hour burst 500 bytes`, nft's formulas.
    let nsecs: u64 = 3600 * 1_000_000_000;
    let (rate, burst) = (1000u64, 500u64);
    let tokens_max = nsecs * (rate + burst) / rate;
    let cost = |len: u64| nsecs * len / rate;
    let passes = (tokens_max / cost(86)) as usize;
    assert_eq!(passes, 17);
    let left = tokens_max - passes as u64 * cost(86);
    // What is left is far from both a frame of 30 and two (a test runs
    // for much less than the 28 s of tokens between them).
    assert!(left > cost(30) + 10_000_000_000 && left + 10_000_000_000 < 2 * cost(30));
    for target in TARGETS {
        let rig = Rig::new(target, &[limit(false, LimitUnit::Bytes, rate, burst)]);
        let got = rig.runs(&[86; 20]);
        let mut expected = vec![true; passes];
        expected.resize(20, false);
        assert_eq!(got, expected, "{target:?}");
        // A packet over the rate takes no tokens: a smaller one still
        // fits in what is left, a second does not.
        assert_eq!(rig.runs(&[30, 30]), [true, false], "{target:?}");
        let over = Rig::new(target, &[limit(true, LimitUnit::Bytes, rate, burst)]);
        let got = over.runs(&[86; 20]);
        assert_eq!(got.iter().filter(|&&p| p).count(), 20 - passes);
    }
}

#[test]
fn log_records_carry_the_packet() {
    if !privileged() {
        return;
    }
    for target in TARGETS {
        let rig = Rig::new(
            target,
            &[Action::Log { slot: 3 }, Action::Count { slot: 0 }],
        );
        let log = rig.maps.log.expect("log maps");
        let mut ring = RingBuf::new(rig.loaded.map(log.ring)).unwrap();
        let lens = [46, 186, 0, 114];
        assert!(rig.runs(&lens).iter().all(|&p| p), "a log always goes on");
        let mut records = Vec::new();
        ring.drain(|r| records.push(LogRecord::parse(r).expect("a record")))
            .unwrap();
        assert_eq!(records.len(), lens.len(), "{target:?}");
        for (r, &len) in records.iter().zip(&lens) {
            let size = len + ETH;
            assert_eq!(r.slot, 3);
            assert_eq!(r.len as usize, len, "{target:?}");
            assert_eq!(
                r.packet,
                frame(size)[..size.min(CAPTURE as usize)],
                "{target:?}"
            );
            // Test runs are on the loopback device.
            assert_eq!(r.ifindex, 1, "{target:?}");
            assert!(r.timestamp_ns > 0);
        }
        assert!(
            records
                .windows(2)
                .all(|w| w[0].timestamp_ns <= w[1].timestamp_ns)
        );
        assert_eq!(log_drops(rig.loaded.map(log.drops)).unwrap(), 0);
        assert_eq!(
            read_counter(rig.map(rig.maps.counters), 0).unwrap().packets,
            lens.len() as u64
        );
    }
}

#[test]
fn a_full_log_drops_and_counts_records() {
    if !privileged() {
        return;
    }
    for target in TARGETS {
        let opts = ActionOptions::new(target, 0).log_ring_bytes(4096);
        let rig = Rig::with(opts, &[Action::Log { slot: 0 }]);
        let log = rig.maps.log.expect("log maps");
        // Records of 152 bytes and an 8-byte header: 25 fit in 4096.
        assert!(rig.run(100, 30));
        let mut ring = RingBuf::new(rig.loaded.map(log.ring)).unwrap();
        assert_eq!(ring.drain(|_| {}).unwrap(), 25, "{target:?}");
        assert_eq!(log_drops(rig.loaded.map(log.drops)).unwrap(), 5);
        assert!(rig.run(100, 1));
        assert_eq!(ring.drain(|_| {}).unwrap(), 1, "room again");
    }
}

#[test]
fn actions_need_xdp_or_tc() {
    let mut object = Object::new();
    let opts = ActionOptions::new(Target::SocketFilter, 0);
    assert!(add_actions(&mut object, &[Action::Count { slot: 0 }], &[], &opts).is_err());
    // A table without some kind of action has no map for it.
    let opts = ActionOptions::new(Target::Xdp, 0);
    let (maps, _) = add_actions(&mut object, &[Action::Count { slot: 4 }], &[], &opts).unwrap();
    assert!(maps.counters.is_some() && maps.quotas.is_none() && maps.limits.is_none());
    assert!(maps.log.is_none());
    assert_eq!(object.map(maps.counters.unwrap()).max_entries, 5);
}
