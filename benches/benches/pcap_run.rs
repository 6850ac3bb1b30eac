//! `pcap2bpf run` against `tcpdump -r`, on filter-only work, in one run:
//!
//! 1. a deterministic capture of 1,000,000 Ethernet packets is written to
//!    a temporary directory: the firewall corpus (`testbed::firewall_frames`),
//!    the project's Ethernet sample capture and a few frames built here
//!    (TCP port 80 in both directions, tagged TCP, IPv6 UDP, the hosts and
//!    nets the expressions name), repeated;
//! 2. for each expression, the commands timed alternately, several times,
//!    medians: `tcpdump -r F --count EXPR` against `pcap2bpf run -r F
//!    --count EXPR` with the default engine, `--engine interp` and
//!    `--engine kernel`; then printing, `tcpdump -n -r F EXPR` against
//!    `pcap2bpf run -r F EXPR`, both to /dev/null. Every count must be
//!    tcpdump's (a fast wrong answer is no answer);
//! 3. each engine's filter alone, in this process over packets in memory
//!    (no reading): ns per packet of the compiled engine (closures), the
//!    other candidate for it (a flat pre-decoded op program, [`flat`],
//!    built here only to be measured), the IR's own evaluator (`Ir::run`,
//!    the tree walk both replace), the interpreter, the kernel's batched
//!    test runs and libpcap's `pcap_offline_filter`, taking turns round
//!    after round; the interpreter's ratio to libpcap is the median of
//!    the rounds' ratios (target: at most 2).
//!
//! Run: `cargo bench -p benches --bench pcap_run` (as root for the
//! kernel engine); `-- in-process` runs part 3 alone. The `pcap2bpf`
//! binary is built by `cargo build --release -p pcap2bpf-cli`; without
//! tcpdump, part 2 is skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use benches::{median, ns_per_item};
use pcap2bpf::engine::{Engine, Frame, RunOptions, Runner};
use pcap2bpf::{LinkType, Tables};
use pcapfile::{LINKTYPE_EN10MB, Packet, PcapWriter};
use testbed::frame::{Ipv4, Tcp, ethernet, ipv6, tcp_flags, udp};

/// The candidate the compiled engine was measured against: the IR as a
/// flat program of pre-decoded operations, each block a run of value
/// operations into slots (one per value of the arena) and a test, run
/// by one `match` loop. It gives `Ir::run`'s verdict (no metadata, no
/// actions or lookups).
mod flat {
    use pktmatch::ir::{
        BinOp, CmpOp, Cond, Edge, EntityRef, Ir, MAX_VARS, Val, ValNode, Verdict, protochain,
    };

    #[derive(Clone, Copy)]
    enum Op {
        Const(u32, u32),
        Len(u32),
        Load {
            dst: u32,
            k: u32,
            size: u8,
        },
        LoadInd {
            dst: u32,
            off: u32,
            k: u32,
            size: u8,
        },
        Bin {
            dst: u32,
            op: BinOp,
            a: u32,
            b: u32,
        },
        Neg(u32, u32),
        Var(u32, u32),
        Fail,
    }

    #[derive(Clone, Copy)]
    enum Test {
        Cmp(u32, CmpOp, u32),
        ProtoChain { nl: u32, ipv6: bool, proto: u32 },
        Let(u32, u32),
    }

    struct Block {
        ops: std::ops::Range<usize>,
        test: Test,
        t: Edge,
        f: Edge,
        short: Edge,
    }

    /// A filter as a flat program.
    pub struct Flat {
        ops: Vec<Op>,
        blocks: Vec<Block>,
        entry: Edge,
        slots: usize,
    }

    impl Flat {
        /// `None` for IRs with actions or lookups.
        pub fn new(ir: &Ir) -> Option<Flat> {
            let mut ops = Vec::new();
            let mut blocks = Vec::new();
            for b in &ir.blocks {
                let start = ops.len();
                let (roots, test) = match b.cond {
                    Cond::Cmp { a, op, b: rhs, .. } => {
                        (vec![a, rhs], Test::Cmp(slot(a), op, slot(rhs)))
                    }
                    Cond::ProtoChain { nl, ipv6, proto } => {
                        (vec![], Test::ProtoChain { nl, ipv6, proto })
                    }
                    Cond::Let { var, val } if var < MAX_VARS => {
                        (vec![val], Test::Let(var, slot(val)))
                    }
                    _ => return None,
                };
                // The values the test reads, each once, in arena order
                // (operands come first).
                let mut need = vec![false; ir.val_count()];
                let mut stack = roots;
                while let Some(v) = stack.pop() {
                    if std::mem::replace(&mut need[v.index()], true) {
                        continue;
                    }
                    match ir.node(v) {
                        ValNode::Load { off: Some(o), .. } | ValNode::Neg(o) => stack.push(o),
                        ValNode::Bin(_, a, b) => stack.extend([a, b]),
                        _ => {}
                    }
                }
                for (i, _) in need.iter().enumerate().filter(|(_, n)| **n) {
                    let v = Val::new(i);
                    let dst = slot(v);
                    ops.push(match ir.node(v) {
                        ValNode::Const(k) => Op::Const(dst, k),
                        ValNode::Len => Op::Len(dst),
                        ValNode::Meta(_) => Op::Fail,
                        ValNode::Var(n) if n < MAX_VARS => Op::Var(dst, n),
                        ValNode::Var(_) => Op::Fail,
                        ValNode::Load { off: None, k, size } => Op::Load { dst, k, size },
                        ValNode::Load {
                            off: Some(o),
                            k,
                            size,
                        } => Op::LoadInd {
                            dst,
                            off: slot(o),
                            k,
                            size,
                        },
                        ValNode::Bin(op, a, b) => Op::Bin {
                            dst,
                            op,
                            a: slot(a),
                            b: slot(b),
                        },
                        ValNode::Neg(a) => Op::Neg(dst, slot(a)),
                    });
                }
                blocks.push(Block {
                    ops: start..ops.len(),
                    test,
                    t: b.t,
                    f: b.f,
                    short: b.short_edge(),
                });
            }
            Some(Flat {
                ops,
                blocks,
                entry: ir.entry.unwrap_or(Edge::ACCEPT),
                slots: ir.val_count(),
            })
        }

        /// The verdict on a packet; `slots` is scratch of any size.
        pub fn verdict(&self, data: &[u8], wire_len: u32, slots: &mut Vec<u32>) -> Verdict {
            slots.resize(self.slots, 0);
            let (mut vars, mut set) = ([0u32; MAX_VARS as usize], 0u32);
            let mut at = self.entry;
            loop {
                let b = match at {
                    Edge::Verdict(v) => return v,
                    Edge::Block(i) => &self.blocks[i.index()],
                };
                let r = self.block(b, data, wire_len, slots, &mut vars, &mut set);
                at = match r {
                    Some(true) => b.t,
                    Some(false) => b.f,
                    None => b.short,
                };
            }
        }

        fn block(
            &self,
            b: &Block,
            data: &[u8],
            wire_len: u32,
            s: &mut [u32],
            vars: &mut [u32; MAX_VARS as usize],
            set: &mut u32,
        ) -> Option<bool> {
            let load = |at: u64, size: u8| -> Option<u32> {
                let start = usize::try_from(at).ok()?;
                let bytes = data.get(start..start.checked_add(usize::from(size))?)?;
                Some(bytes.iter().fold(0, |acc, b| (acc << 8) | u32::from(*b)))
            };
            for op in &self.ops[b.ops.clone()] {
                match *op {
                    Op::Const(d, k) => s[d as usize] = k,
                    Op::Len(d) => s[d as usize] = wire_len,
                    Op::Load { dst, k, size } => s[dst as usize] = load(u64::from(k), size)?,
                    Op::LoadInd { dst, off, k, size } => {
                        s[dst as usize] = load(u64::from(s[off as usize]) + u64::from(k), size)?
                    }
                    Op::Bin { dst, op, a, b } => {
                        s[dst as usize] = op.eval(s[a as usize], s[b as usize])?
                    }
                    Op::Neg(d, a) => s[d as usize] = s[a as usize].wrapping_neg(),
                    Op::Var(d, n) => {
                        if *set & (1 << n) == 0 {
                            return None;
                        }
                        s[d as usize] = vars[n as usize];
                    }
                    Op::Fail => return None,
                }
            }
            Some(match b.test {
                Test::Cmp(a, op, c) => op.eval(s[a as usize], s[c as usize]),
                Test::ProtoChain { nl, ipv6, proto } => protochain(data, nl, ipv6, proto)?,
                Test::Let(var, v) => {
                    vars[var as usize] = s[v as usize];
                    *set |= 1 << var;
                    true
                }
            })
        }
    }

    fn slot(v: Val) -> u32 {
        v.index() as u32
    }
}

/// Packets in the capture.
const PACKETS: usize = 1_000_000;
/// Timed runs of each command.
const REPS: usize = 5;
/// Packets of the in-process measurement (the capture's first).
const IN_PROCESS: usize = 200_000;
/// Rounds of the in-process measurement.
const IN_PROCESS_ROUNDS: usize = 11;

const EXPRESSIONS: &[&str] = &[
    "tcp port 80",
    "",
    "ip6 and udp",
    "host 10.0.0.1 or net 192.168.0.0/16",
    "vlan and tcp",
    "dst net 10.0.0.0/8 and (tcp or udp) and not src port 53 and len > 60",
];

/// Frames built here, so that each expression matches some packets.
fn built_frames() -> Vec<Vec<u8>> {
    let (a, b) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let v4 = |s: [u8; 4], d: [u8; 4], proto, l4: &[u8]| {
        ethernet(
            b,
            a,
            &[],
            0x0800,
            &Ipv4::new(s.into(), d.into(), proto).build(l4),
        )
    };
    let tcp = |s: [u8; 4], d: [u8; 4], sport, dport| {
        let seg = Tcp::new(sport, dport, tcp_flags::ACK).build(
            std::net::Ipv4Addr::from(s).into(),
            std::net::Ipv4Addr::from(d).into(),
            &[0x47; 100],
        );
        v4(s, d, 6, &seg)
    };
    let mut frames = vec![
        tcp([10, 0, 0, 1], [10, 0, 0, 2], 49152, 80),
        tcp([10, 0, 0, 2], [10, 0, 0, 1], 80, 49152),
        tcp([192, 168, 1, 7], [172, 16, 0, 1], 40000, 443),
        tcp([172, 16, 0, 9], [10, 1, 2, 3], 53, 5353),
    ];
    let tagged = ethernet(b, a, &[(0x8100, 10)], 0x0800, &frames[0][14..]);
    frames.push(tagged);
    let (s6, d6) = (
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
    );
    let dgram = udp(
        std::net::IpAddr::V6(s6),
        std::net::IpAddr::V6(d6),
        5353,
        53,
        &[0; 40],
    );
    frames.push(ethernet(b, a, &[], 0x86dd, &ipv6(s6, d6, 17, 64, &dgram)));
    frames
}

/// Writes the capture: the frames, in turn, until `PACKETS`.
fn write_capture(path: &Path) {
    let mut frames = testbed::firewall_frames(0x5eed_2024);
    let (_, sample) = testbed::samples::sample_captures()
        .into_iter()
        .find(|(name, _)| *name == "ethernet.pcap")
        .expect("the Ethernet sample");
    frames.extend(sample.packets.into_iter().map(|p| p.data));
    frames.extend(built_frames());
    let file = std::fs::File::create(path).expect("create the capture");
    let mut w = PcapWriter::new(file, LINKTYPE_EN10MB, 262_144).expect("write");
    for (i, data) in frames.iter().cycle().take(PACKETS).enumerate() {
        let p = Packet {
            ts_sec: 1_700_000_000 + (i / 1000) as u64,
            ts_nsec: (i % 1000) as u32 * 1000,
            wire_len: data.len() as u32,
            data: data.clone(),
        };
        w.write(&p).expect("write");
    }
    w.finish().expect("write");
}

/// The release `pcap2bpf` binary, built by cargo.
fn pcap2bpf_binary() -> PathBuf {
    let out = Command::new(env!("CARGO"))
        .args([
            "build",
            "--release",
            "-p",
            "pcap2bpf-cli",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo build failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let key = "\"executable\":\"";
    text.lines()
        .filter(|l| l.contains("\"name\":\"pcap2bpf\""))
        .find_map(|l| {
            let at = l.find(key)? + key.len();
            let end = l[at..].find('"')?;
            Some(PathBuf::from(&l[at..at + end]))
        })
        .expect("cargo names the pcap2bpf executable")
}

/// One timed run: seconds, and the last line it printed.
fn timed(cmd: &mut Command) -> (f64, String) {
    let t = Instant::now();
    let out = cmd
        .stderr(Stdio::null())
        .output()
        .expect("the command runs");
    let secs = t.elapsed().as_secs_f64();
    assert!(out.status.success(), "{cmd:?} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    (secs, text.lines().last().unwrap_or("").to_string())
}

/// Part 2: the commands, alternately; the table of medians and ratios.
fn against_tcpdump(bin: &Path, cap: &Path) {
    println!(
        "\n2. whole runs over {PACKETS} packets: seconds, median of {REPS} alternating runs; ratio ours / tcpdump"
    );
    println!(
        "{:<40} {:>8} {:>8} {:>6} {:>8} {:>6} {:>8} {:>6} | {:>8} {:>8} {:>6}",
        "filter (--count | printing)",
        "tcpdump",
        "default",
        "x",
        "interp",
        "x",
        "kernel",
        "x",
        "tcpdump",
        "default",
        "x"
    );
    let mut worst = (0f64, 0f64, 0f64);
    for expr in EXPRESSIONS {
        let tcpdump_count = || {
            let mut c = Command::new("tcpdump");
            c.arg("-r").arg(cap).arg("--count").arg(expr);
            c
        };
        let ours = |engine: Option<&str>, count: bool| {
            let mut c = Command::new(bin);
            c.arg("run").arg("-r").arg(cap);
            if count {
                c.arg("--count");
            }
            if let Some(e) = engine {
                c.args(["--engine", e]);
            }
            c.arg("--").arg(expr);
            c
        };
        let tcpdump_print = || {
            let mut c = Command::new("tcpdump");
            c.arg("-n").arg("-r").arg(cap).arg(expr);
            c
        };
        let mut times: [Vec<f64>; 6] = Default::default();
        for _ in 0..REPS {
            let (t, out) = timed(&mut tcpdump_count());
            let want = out.split_whitespace().next().unwrap_or("").to_string();
            times[0].push(t);
            for (k, engine) in [(1, None), (2, Some("interp")), (3, Some("kernel"))] {
                let (t, got) = timed(&mut ours(engine, true));
                assert_eq!(got, want, "{expr:?} ({engine:?}): our count vs tcpdump's");
                times[k].push(t);
            }
            // Printed to /dev/null (tcpdump's printers are not ours: what
            // they print is not compared).
            times[4].push(timed(tcpdump_print().stdout(Stdio::null())).0);
            times[5].push(timed(ours(None, false).stdout(Stdio::null())).0);
        }
        let m: Vec<f64> = times.iter_mut().map(|v| median(v)).collect();
        let (d, i, p) = (m[1] / m[0], m[2] / m[0], m[5] / m[4]);
        worst = (worst.0.max(d), worst.1.max(i), worst.2.max(p));
        println!(
            "{:<40} {:>8.3} {:>8.3} {:>6.2} {:>8.3} {:>6.2} {:>8.3} {:>6.2} | {:>8.3} {:>8.3} {:>6.2}",
            format!("{expr:?}"),
            m[0],
            m[1],
            d,
            m[2],
            i,
            m[3],
            m[3] / m[0],
            m[4],
            m[5],
            p
        );
    }
    println!(
        "worst ratios: default engine {:.2} (target <= 1.0), interp {:.2} (target <= 2.0), printing {:.2}",
        worst.0, worst.1, worst.2
    );
}

/// Part 3: each engine's filter alone, in this process.
fn in_process(cap: &Path) {
    let capture = pcapfile::read(cap).expect("read the capture");
    let packets: Vec<Frame<'_>> = capture
        .packets
        .iter()
        .take(IN_PROCESS)
        .map(|p| Frame::new(&p.data, p.wire_len))
        .collect();
    let tables = Tables::system();
    let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).expect("pcap_open_dead");
    println!(
        "\n3. the filter alone, in this process, over {} packets in memory: ns per packet, median of {IN_PROCESS_ROUNDS} rounds in which the engines take turns",
        packets.len()
    );
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "filter", "compiled", "flat ops", "IR eval", "interp", "kernel", "libpcap", "interp/l"
    );
    let mut worst: f64 = 0.0;
    for expr in EXPRESSIONS {
        let runner = |engine| {
            Runner::new(
                expr,
                &RunOptions::new(LinkType::En10mb, &tables).engine(engine),
            )
            .expect("compiles")
        };
        let (mut compiled, mut interp) = (runner(Engine::Compiled), runner(Engine::Interp));
        let ir = compiled.ir().clone();
        let mut kernel = Runner::new(
            expr,
            &RunOptions::new(LinkType::En10mb, &tables).engine(Engine::Kernel),
        )
        .ok();
        let kernel_runs = kernel.is_some();
        let cbpf = dead.compile(expr, true).expect("libpcap compiles");
        let want: Vec<bool> = packets.iter().map(|p| cbpf.filter(p.data)).collect();
        let got: Vec<bool> = packets
            .iter()
            .map(|p| compiled.matches(*p).expect("runs"))
            .collect();
        assert_eq!(got, want, "{expr:?}: the compiled engine vs libpcap");
        let flat = flat::Flat::new(&ir).expect("a packet filter");
        let mut slots = Vec::new();
        let got: Vec<bool> = packets
            .iter()
            .map(|p| flat.verdict(p.data, p.wire_len, &mut slots) == pktmatch::ir::Verdict::MATCH)
            .collect();
        assert_eq!(got, want, "{expr:?}: the flat program vs libpcap");
        // The engines take turns, round after round, so that drift in
        // the machine's speed falls on all of them alike; each column is
        // a median over the rounds, and so is the interpreter's ratio to
        // libpcap (the ratio of each round's pair).
        let n = packets.len();
        let mut passes: Vec<Box<dyn FnMut() + '_>> = vec![
            Box::new(|| {
                for p in &packets {
                    std::hint::black_box(compiled.matches(*p).expect("runs"));
                }
            }),
            Box::new(|| {
                for p in &packets {
                    std::hint::black_box(flat.verdict(p.data, p.wire_len, &mut slots));
                }
            }),
            Box::new(|| {
                for p in &packets {
                    std::hint::black_box(ir.run(p.data, p.wire_len, &|_| None));
                }
            }),
            Box::new(|| {
                for p in &packets {
                    std::hint::black_box(interp.matches(*p).expect("runs"));
                }
            }),
            Box::new(|| {
                if let Some(k) = kernel.as_mut() {
                    std::hint::black_box(k.matches_all(&packets).expect("runs"));
                }
            }),
            Box::new(|| {
                for p in &packets {
                    std::hint::black_box(cbpf.filter(p.data));
                }
            }),
        ];
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); passes.len()];
        for _ in 0..IN_PROCESS_ROUNDS {
            for (pass, t) in passes.iter_mut().zip(&mut times) {
                t.push(ns_per_item(1, n, pass));
            }
        }
        // Where the interpreter's and libpcap's passes are, as printed.
        let (interp_at, libpcap_at) = (3, 5);
        let mut ratios: Vec<f64> = times[interp_at]
            .iter()
            .zip(&times[libpcap_at])
            .map(|(i, l)| i / l)
            .collect();
        let ratio = median(&mut ratios);
        worst = worst.max(ratio);
        let [c, f, e, i, k, l] = [0, 1, 2, 3, 4, 5].map(|at| median(&mut times[at]));
        let k = if kernel_runs { k } else { f64::NAN };
        println!(
            "{:<40} {c:>9.1} {f:>9.1} {e:>9.1} {i:>9.1} {k:>9.1} {l:>9.1} {ratio:>9.2}",
            format!("{expr:?}")
        );
    }
    println!("worst interp / libpcap: {worst:.2} (target <= 2.0)");
}

fn main() {
    let dir = std::env::temp_dir().join(format!("pcap_run_bench.{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let cap = dir.join("mixed.pcap");
    let t = Instant::now();
    write_capture(&cap);
    let size = std::fs::metadata(&cap).map_or(0, |m| m.len());
    println!(
        "1. capture: {PACKETS} packets, {:.0} MB, written in {:.2} s ({})",
        size as f64 / 1e6,
        t.elapsed().as_secs_f64(),
        cap.display()
    );
    // `-- in-process` runs part 3 alone (the interpreter's figures).
    let all_parts = std::env::args().all(|a| a != "in-process");
    let has_tcpdump = all_parts
        && Command::new("tcpdump")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
    if has_tcpdump {
        let bin = pcap2bpf_binary();
        against_tcpdump(&bin, &cap);
    } else if all_parts {
        println!("\n2. skipped: tcpdump is not installed");
    }
    in_process(&cap);
    let _ = std::fs::remove_dir_all(&dir);
}
