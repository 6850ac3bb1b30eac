//! nft2bpf against its anchors, in one run (issue 12):
//!
//! 1. compile time per rule: text -> checked ruleset -> lowered IR ->
//!    built program, stage by stage, for base chains of N rules of mixed
//!    shapes (addresses and prefixes, ports single, ranges and anonymous
//!    sets, IPv6 prefixes, `meta l4proto`, `vlan id`, TCP flag masks,
//!    counters, a few jumps to a regular chain, verdict maps); and load
//!    time (the kernel's verifier and JIT) apart;
//! 2. compile time per set element: `ip saddr { ... }` and
//!    `tcp dport { ... }` anonymous sets of M elements, the same stages;
//! 3. nanoseconds per packet through `BPF_PROG_TEST_RUN` (repeat), our XDP
//!    program against the same rules written as a plain chain of tests,
//!    the way bpfilter generates them (generated here with bpf-builder's
//!    assembler: every rule on its own checks the EtherType, reloads each
//!    field with its own bounds check, compares and returns its verdict;
//!    no shared prologue, no pruning), at 10 and 1,000 rules. Both give
//!    the same verdict on every frame before anything is timed;
//! 4. whether both programs load at 5,000 rules of part 3's shapes;
//! 5. named sets of 10 to 1,000,000 elements deployed on a veth (issue
//!    13): reading and checking the file, loading it (lowering, building,
//!    filling the map, the verifier, attaching), and one element added
//!    to the running set, as `nft2bpf add element` adds it; first (5b)
//!    the per-packet cost of reading a deployed set's map from its array
//!    of maps (what lets `nft2bpf apply` swap the set whole), against the
//!    map named directly.
//!
//! 6. classifiers (issue 13): 10 to 100,000 rules `ip saddr A tcp dport
//!    P counter drop|accept`, lowered with runs folded into a map lookup
//!    and as a plain chain of the same rules (our lowering without
//!    classifiers, where its programs still fit): ns per packet for a
//!    frame of the first rule, of the last, and of none (both programs'
//!    verdicts checked first), and the time to be ready: ours (check,
//!    lower, build, the map's contents) and the kernel's load. The same
//!    for tries: rules `ip saddr NET/24`, and `ip saddr A tcp dport
//!    LOW-HIGH` (a range of 41 ports, seven prefixes or fewer); and for
//!    a hash's rules with one prefix rule last (a hash and a rule, not
//!    one trie).
//!
//! When a program does not load (the verifier's limits), the row says
//! why and a bisection finds the largest size that loads.
//!
//! Part 5 gives the read's and the load's wall time and their threads'
//! CPU time, the load's split into ours (user) and the kernel's
//! (system: the map's creation and inserts, the verifier, page faults);
//! `-- deployed-sets M` runs the size M alone (for a profiler).
//!
//! Nothing here asserts a time: the anchors run in the same process and
//! the ratios are printed beside them.
//!
//! Run: `cargo bench -p benches --bench nft2bpf` (part 1's load times
//! and parts 3 to 6 need CAP_BPF); `-- deployed-sets` runs part 5 alone
//! (`-- set-swap-cost`: only 5b, the array of maps' per-packet cost),
//! `-- classifiers` part 6 (`-- classifiers-only`: without the plain
//! chains), `-- per-packet` part 3.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use benches::median;
use bpf_builder::asm::{Asm, Code};
use bpf_builder::ctx::{XdpAction, xdp_md};
use bpf_builder::insn::{AluOp, Endian, JmpOp, Reg, Size};
use bpf_builder::load::Loaded;
use bpf_builder::object::{Object, ProgramType};
use bpf_builder::run::TestRun;
use bpf_builder::sys::clock::ThreadCpu;
use nft2bpf::SourceMap;
use nft2bpf::compile::program::{Mode, Program, ProgramOptions, build};
use nft2bpf::compile::{Attach, Device, LowerOptions, Lowered, Outcome};
use nft2bpf::syntax::MemLoader;
use testbed::frame::{Ipv4, Tcp, arp, ethernet_frame, ipv6, tcp_flags, udp};

const DEVICE: &str = "veth0";
const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const ETHERTYPE_IPV6: u16 = 0x86dd;

fn ms(d: f64) -> String {
    format!("{:.2}", d * 1e3)
}

/// A netdev table with a base chain of `rules` on `veth0`'s ingress
/// (policy accept) and a regular chain `web` for the jumps.
fn ruleset(rules: &[String]) -> String {
    let mut text = String::with_capacity(rules.len() * 48 + 256);
    text.push_str("table netdev t {\n\tchain web {\n");
    text.push_str("\t\ttcp dport 80 accept\n");
    text.push_str("\t\tip saddr 10.0.0.0/8 counter drop\n");
    text.push_str("\t\tip6 saddr fe80::/10 drop\n\t}\n");
    text.push_str(&format!(
        "\tchain c {{\n\t\ttype filter hook ingress device \"{DEVICE}\" priority 0; policy accept;\n"
    ));
    for r in rules {
        text.push_str("\t\t");
        text.push_str(r);
        text.push('\n');
    }
    text.push_str("\t}\n}\n");
    text
}

/// Rule `i` of the mixed chains of part 1: twelve shapes in turn.
fn mixed_rule(i: usize) -> String {
    let (a, b) = ((i >> 8) & 0xff, i & 0xff);
    let port = 1024 + (i * 7) % 60000;
    match i % 12 {
        0 => format!("ip saddr 10.{a}.{b}.0/24 drop"),
        1 => format!("ip daddr 192.168.{a}.{b} counter accept"),
        2 => format!("tcp dport {port} drop"),
        3 => format!("udp dport {port}-{} accept", port + 10),
        4 => format!(
            "tcp dport {{ {port}, {}, {} }} counter drop",
            port + 1,
            port + 2
        ),
        5 => format!("ip6 saddr 2001:db8:{i:x}::/48 drop"),
        6 => format!("meta l4proto {} drop", 143 + i % 100),
        7 => format!("vlan id {} drop", 1 + i % 4000),
        8 => format!("ip saddr 172.16.{a}.{b} tcp flags & (syn | ack) == syn drop"),
        // A few jumps: one in 300 rules.
        9 if (i / 12).is_multiple_of(25) => format!("ip saddr 10.200.{a}.0/24 jump web"),
        9 => format!("ip protocol udp ip daddr 172.17.{a}.{b} accept"),
        10 => format!("tcp dport vmap {{ {port} : accept, {} : drop }}", port + 1),
        _ => format!("ip6 daddr 2001:db8:{i:x}::1 tcp dport {port} counter drop"),
    }
}

/// Time spent in each stage of one compilation.
#[derive(Default, Clone, Copy)]
struct Stages {
    check: f64,
    lower: f64,
    build: f64,
}

impl Stages {
    fn total(&self) -> f64 {
        self.check + self.lower + self.build
    }
}

/// Compiles `text` for XDP in `mode`, timing each stage (seconds).
fn compile(text: &str, mode: Mode) -> Result<(Stages, Lowered, Program), String> {
    compile_with(text, mode, LowerOptions::default())
}

/// [`compile`], lowered with `options`.
fn compile_with(
    text: &str,
    mode: Mode,
    options: LowerOptions,
) -> Result<(Stages, Lowered, Program), String> {
    let t = Instant::now();
    let mut map = SourceMap::new();
    let file = map.add("bench.nft", None, text, None);
    let ruleset = nft2bpf::check_ruleset(&mut map, file, &mut MemLoader::new())
        .map_err(|e| format!("check: {}", e.render(&map)))?;
    let check = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let device = Device::named(DEVICE).with_mac(MAC);
    let lowered = nft2bpf::compile::lower_with(&ruleset, Attach::Xdp, &device, options)
        .map_err(|e| format!("lower: {e}"))?;
    let lower = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let program = build(&lowered, &ProgramOptions::new(mode)).map_err(|e| format!("build: {e}"))?;
    let build = t.elapsed().as_secs_f64();
    Ok((
        Stages {
            check,
            lower,
            build,
        },
        lowered,
        program,
    ))
}

fn insns(object: &Object, prog: bpf_builder::object::ProgId) -> usize {
    object.layout(prog).expect("lays out").insns.len()
}

/// The first line of an error, shortened for a table cell.
fn short(e: &str) -> String {
    let line = e.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    line.chars().take(100).collect()
}

/// Medians of the compile stages over `rounds`, and the load time
/// (total, of which the verifier) over `load_rounds`; one table row.
fn compile_row(
    label: &str,
    count: usize,
    unit: &str,
    text: &dyn Fn(usize) -> String,
    rounds: usize,
    load: bool,
) {
    let mut samples: [Vec<f64>; 3] = Default::default();
    let mut last = None;
    let source = text(count);
    for _ in 0..rounds {
        match compile(&source, Mode::TestRun) {
            Ok((s, l, p)) => {
                samples[0].push(s.check);
                samples[1].push(s.lower);
                samples[2].push(s.build);
                last = Some((l, p));
            }
            Err(e) => {
                println!("{label:<26} {count:>6}  FAILED to compile: {}", short(&e));
                return;
            }
        }
    }
    let [c, l, b] = samples.map(|mut v| median(&mut v));
    let s = Stages {
        check: c,
        lower: l,
        build: b,
    };
    let (_, program) = last.expect("at least one round");
    let n = insns(&program.object, program.prog);
    let per = s.total() * 1e6 / count as f64;
    print!(
        "{label:<26} {count:>6} {:>9} {:>9} {:>9} {:>9} {:>9.2} {unit:<5} {n:>7}",
        ms(s.check),
        ms(s.lower),
        ms(s.build),
        ms(s.total()),
        per,
    );
    if !load {
        println!();
        return;
    }
    let load_rounds = if count >= 1000 { 1 } else { 3 };
    let (mut total, mut verifier) = (Vec::new(), Vec::new());
    for _ in 0..load_rounds {
        match program.object.load() {
            Ok(loaded) => {
                let st = loaded.stats();
                total.push(st.total.as_secs_f64());
                verifier.push(st.verifier.as_secs_f64());
            }
            Err(e) => {
                println!("  LOAD FAILED: {}", short(&e.to_string()));
                load_limit(label, count, unit, text);
                return;
            }
        }
    }
    let (t, v) = (median(&mut total), median(&mut verifier));
    println!(" {:>9} {:>9} {:>9.2}", ms(t), ms(v), t * 1e6 / count as f64);
}

/// Whether `text` compiles and loads, and its size.
fn loads(text: &str) -> (bool, usize) {
    match compile(text, Mode::TestRun) {
        Ok((_, _, p)) => (p.object.load().is_ok(), insns(&p.object, p.prog)),
        Err(_) => (false, 0),
    }
}

/// After a failed load at `count`: the largest count that loads, by
/// bisection from a tenth of it, to 2 % of `count`.
fn load_limit(label: &str, count: usize, unit: &str, text: &dyn Fn(usize) -> String) {
    let (mut lo, mut hi) = (count / 10, count);
    let (ok, mut lo_insns) = loads(&text(lo));
    if !ok {
        println!("{label:<26} {lo:>6}  fails to load as well; no bisection");
        return;
    }
    let mut hi_insns = 0;
    while hi - lo > count / 50 {
        let mid = (lo + hi) / 2;
        match loads(&text(mid)) {
            (true, n) => (lo, lo_insns) = (mid, n),
            (false, n) => (hi, hi_insns) = (mid, n),
        }
    }
    println!(
        "{label:<26} limit: {lo} {unit}s load ({lo_insns} insns), {hi} do not ({})",
        if hi_insns == 0 {
            String::from("the first failure")
        } else {
            format!("{hi_insns} insns")
        }
    );
}

fn compile_header(first: &str) {
    println!(
        "{:<26} {:>6} {:>9} {:>9} {:>9} {:>9} {:>15} {:>7} {:>9} {:>9} {:>9}",
        first,
        "n",
        "check ms",
        "lower ms",
        "build ms",
        "total ms",
        "us per",
        "insns",
        "load ms",
        "verif ms",
        "load us/n"
    );
}

fn compile_times(load: bool) {
    println!(
        "\n1. compile time per rule (mixed shapes; medians; load = BPF_PROG_LOAD, once at >= 1000):"
    );
    compile_header("ruleset");
    let (_, _, empty) = compile(&ruleset(&[]), Mode::TestRun).expect("compiles");
    println!(
        "(fixed part: an empty base chain builds to {} instructions)",
        insns(&empty.object, empty.prog)
    );
    let mixed = |n: usize| ruleset(&(0..n).map(mixed_rule).collect::<Vec<_>>());
    for n in [10, 100, 1000, 5000] {
        let rounds = (2000 / n).clamp(3, 31);
        compile_row("mixed rules", n, "rule", &mixed, rounds, load);
    }

    println!("\n2. compile time per set element (one rule with an anonymous set; medians):");
    compile_header("set");
    // Every other address and every third port: no two elements adjoin,
    // so none merge into a range.
    let hosts = |m: usize| {
        let hosts: Vec<String> = (0..m)
            .map(|k| Ipv4Addr::from(0x0a00_0001u32 + 2 * k as u32).to_string())
            .collect();
        ruleset(&[format!("ip saddr {{ {} }} drop", hosts.join(", "))])
    };
    let ports = |m: usize| {
        let ports: Vec<String> = (0..m).map(|k| (1 + 3 * k).to_string()).collect();
        ruleset(&[format!("tcp dport {{ {} }} drop", ports.join(", "))])
    };
    for m in [10, 100, 1000, 10000] {
        let rounds = (20000 / m).clamp(3, 31);
        compile_row("ip saddr { hosts }", m, "elem", &hosts, rounds, load);
        compile_row("tcp dport { ports }", m, "elem", &ports, rounds, load);
    }
}

/// The network layer of a rule both programs can express.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

/// A rule of part 3: tests on addresses and prefixes, the protocol
/// (`ip protocol`, `ip6 nexthdr`: the first header's field in both), and
/// L4 ports (single or ranges), then drop or accept.
struct PlainRule {
    family: Family,
    saddr: Option<(IpAddr, u8)>,
    daddr: Option<(IpAddr, u8)>,
    proto: Option<u8>,
    sport: Option<(u16, u16)>,
    dport: Option<(u16, u16)>,
    drop: bool,
}

impl PlainRule {
    fn new(family: Family, drop: bool) -> PlainRule {
        PlainRule {
            family,
            saddr: None,
            daddr: None,
            proto: None,
            sport: None,
            dport: None,
            drop,
        }
    }

    /// The rule in nft's language.
    fn nft(&self) -> String {
        let (ip, proto) = match self.family {
            Family::V4 => ("ip", "ip protocol"),
            Family::V6 => ("ip6", "ip6 nexthdr"),
        };
        let mut s = Vec::new();
        for (what, a) in [("saddr", self.saddr), ("daddr", self.daddr)] {
            if let Some((addr, len)) = a {
                s.push(format!("{ip} {what} {addr}/{len}"));
            }
        }
        let l4 = match self.proto {
            Some(6) => "tcp",
            Some(17) => "udp",
            _ => "",
        };
        if let Some(p) = self.proto {
            s.push(format!("{proto} {p}"));
        }
        for (what, p) in [("sport", self.sport), ("dport", self.dport)] {
            match p {
                Some((lo, hi)) if lo == hi => s.push(format!("{l4} {what} {lo}")),
                Some((lo, hi)) => s.push(format!("{l4} {what} {lo}-{hi}")),
                None => {}
            }
        }
        s.push(if self.drop { "drop" } else { "accept" }.to_string());
        s.join(" ")
    }
}

/// Rule `i` of `n` in part 3: six shapes in turn; the last rule drops
/// TCP from 198.51.100.0/24 to port 9999 (the first frame), which no
/// other rule matches.
fn plain_rule(i: usize, n: usize) -> PlainRule {
    let (a, b) = (((i >> 8) & 0xff) as u8, (i & 0xff) as u8);
    let port = (1024 + (i * 7) % 60000) as u16;
    let v6 = |x: u16, y: u16| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, x, 0, 0, 0, 0, y));
    if i + 1 == n {
        let mut r = PlainRule::new(Family::V4, true);
        r.saddr = Some((Ipv4Addr::new(198, 51, 100, 0).into(), 24));
        r.proto = Some(6);
        r.dport = Some((9999, 9999));
        return r;
    }
    match i % 6 {
        0 => PlainRule {
            saddr: Some((Ipv4Addr::new(10, a, b, 0).into(), 24)),
            ..PlainRule::new(Family::V4, true)
        },
        1 => PlainRule {
            daddr: Some((Ipv4Addr::new(192, 168, a, b).into(), 32)),
            proto: Some(6),
            dport: Some((port, port)),
            ..PlainRule::new(Family::V4, true)
        },
        2 => PlainRule {
            proto: Some(17),
            dport: Some((port, port + 100)),
            ..PlainRule::new(Family::V4, false)
        },
        3 => PlainRule {
            saddr: Some((v6(i as u16, 0), 48)),
            ..PlainRule::new(Family::V6, true)
        },
        4 => PlainRule {
            daddr: Some((v6(i as u16, 1), 128)),
            proto: Some(6),
            dport: Some((port, port)),
            ..PlainRule::new(Family::V6, false)
        },
        _ => PlainRule {
            saddr: Some((Ipv4Addr::new(172, 16, a, b).into(), 32)),
            proto: Some(47),
            ..PlainRule::new(Family::V4, true)
        },
    }
}

/// `if (data + end > data_end) goto next`, with `R4` as scratch.
fn bound(a: &mut Asm, base: Reg, end: i32, next: bpf_builder::asm::Label) {
    a.mov64(Reg::R4, base);
    a.add64(Reg::R4, end);
    a.jmp(JmpOp::Gt, Reg::R4, Reg::R3, next);
}

/// The rules as bpfilter lays them out: one after another, each on its
/// own (the frame pointers, the EtherType, every field reloaded and
/// bounds-checked), returning its verdict on a match; XDP_PASS at the end
/// (policy accept).
fn plain_chain(rules: &[PlainRule]) -> Code {
    let mut a = Asm::new();
    for r in rules {
        let next = a.new_label();
        a.ldx(Size::W, Reg::R2, Reg::R1, xdp_md::DATA);
        a.ldx(Size::W, Reg::R3, Reg::R1, xdp_md::DATA_END);
        bound(&mut a, Reg::R2, 14, next);
        a.ldx(Size::H, Reg::R5, Reg::R2, 12);
        let (ethertype, proto_off, saddr_off, daddr_off) = match r.family {
            Family::V4 => (0x0800u16, 23, 26, 30),
            Family::V6 => (ETHERTYPE_IPV6, 20, 22, 38),
        };
        a.jmp32(
            JmpOp::Ne,
            Reg::R5,
            i32::from(u16::from_ne_bytes(ethertype.to_be_bytes())),
            next,
        );
        if let Some(p) = r.proto {
            bound(&mut a, Reg::R2, proto_off + 1, next);
            a.ldx(Size::B, Reg::R5, Reg::R2, proto_off as i16);
            a.jmp32(JmpOp::Ne, Reg::R5, i32::from(p), next);
        }
        for (off, addr) in [(saddr_off, r.saddr), (daddr_off, r.daddr)] {
            let Some((addr, len)) = addr else { continue };
            let bytes = match addr {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            };
            let words = usize::from(len).div_ceil(32);
            bound(&mut a, Reg::R2, off + 4 * words as i32, next);
            for w in 0..words {
                let bits = (u32::from(len) - 32 * w as u32).min(32);
                let mask = if bits == 32 {
                    u32::MAX
                } else {
                    !(u32::MAX >> bits)
                };
                let want = u32::from_be_bytes(bytes[4 * w..4 * w + 4].try_into().expect("4"));
                let mask_ne = u32::from_ne_bytes(mask.to_be_bytes());
                let want_ne = u32::from_ne_bytes((want & mask).to_be_bytes());
                a.ldx(Size::W, Reg::R5, Reg::R2, (off + 4 * w as i32) as i16);
                if bits < 32 {
                    a.alu32(AluOp::And, Reg::R5, mask_ne as i32);
                }
                a.jmp32(JmpOp::Ne, Reg::R5, want_ne as i32, next);
            }
        }
        for (field, ports) in [(0i16, r.sport), (2, r.dport)] {
            let Some((lo, hi)) = ports else { continue };
            // The transport header: after the IPv4 header's length
            // (reloaded here), or right after IPv6's fixed header.
            match r.family {
                Family::V4 => {
                    bound(&mut a, Reg::R2, 15, next);
                    a.ldx(Size::B, Reg::R5, Reg::R2, 14);
                    a.alu32(AluOp::And, Reg::R5, 0x0f);
                    a.alu32(AluOp::Lsh, Reg::R5, 2);
                    a.mov64(Reg::R6, Reg::R2);
                    a.add64(Reg::R6, Reg::R5);
                    a.add64(Reg::R6, 14);
                }
                Family::V6 => {
                    a.mov64(Reg::R6, Reg::R2);
                    a.add64(Reg::R6, 54);
                }
            }
            bound(&mut a, Reg::R6, 4, next);
            a.ldx(Size::H, Reg::R5, Reg::R6, field);
            a.endian(Endian::Be, Reg::R5, 16);
            if lo == hi {
                a.jmp32(JmpOp::Ne, Reg::R5, i32::from(lo), next);
            } else {
                a.jmp32(JmpOp::Lt, Reg::R5, i32::from(lo), next);
                a.jmp32(JmpOp::Gt, Reg::R5, i32::from(hi), next);
            }
        }
        a.mov64(
            Reg::R0,
            if r.drop {
                XdpAction::Drop
            } else {
                XdpAction::Pass
            },
        );
        a.exit();
        a.bind(next);
    }
    a.mov64(Reg::R0, XdpAction::Pass);
    a.exit();
    a.finish().expect("labels are bound")
}

/// The frames of part 3, named.
fn bench_frames() -> Vec<(&'static str, Vec<u8>)> {
    let (src4, dst4) = (
        Ipv4Addr::new(198, 51, 100, 7),
        Ipv4Addr::new(203, 0, 113, 9),
    );
    let src6 = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 1);
    let dst6 = Ipv6Addr::new(0x2001, 0xdb8, 0xfffe, 0, 0, 0, 0, 2);
    let peer = [0x02, 0, 0, 0, 0, 0x02];
    let tcp = Tcp::new(40000, 9999, tcp_flags::SYN);
    let tcp4 = Ipv4::new(src4, dst4, 6).build(&tcp.build(src4.into(), dst4.into(), &[]));
    let udp4 = Ipv4::new(src4, dst4, 17).build(&udp(src4.into(), dst4.into(), 7, 7, &[0; 8]));
    let tcp6 = ipv6(src6, dst6, 6, 64, &tcp.build(src6.into(), dst6.into(), &[]));
    let arp = arp(1, peer, src4, [0; 6], dst4);
    vec![
        ("tcp4 (last rule)", ethernet_frame(MAC, peer, 0x0800, &tcp4)),
        ("udp4 (no rule)", ethernet_frame(MAC, peer, 0x0800, &udp4)),
        (
            "tcp6 (no rule)",
            ethernet_frame(MAC, peer, ETHERTYPE_IPV6, &tcp6),
        ),
        (
            "ip4 cut at 24 B",
            ethernet_frame(MAC, peer, 0x0800, &tcp4[..10]),
        ),
        ("arp", ethernet_frame(MAC, peer, 0x0806, &arp)),
    ]
}

/// Our decision's fate as an XDP action.
fn fate(lowered: &Lowered, retval: u32) -> i32 {
    match lowered.decisions[retval as usize].outcome {
        Outcome::Accept => XdpAction::Pass.value(),
        Outcome::Drop => XdpAction::Drop.value(),
        Outcome::Fwd(_) => XdpAction::Redirect.value(),
        // A test run follows the tail call: never the run's result.
        Outcome::Next(_) => XdpAction::Aborted.value(),
    }
}

const REPEAT: u32 = 100_000;
const ROUNDS: usize = 7;

fn per_packet() {
    if !testbed::bpf_privileged("the per-packet benchmark") {
        return;
    }
    let frames = bench_frames();
    println!(
        "\n3. ns per packet, BPF_PROG_TEST_RUN repeat {REPEAT}, median of {ROUNDS}, interleaved \
         (ours: the hook program; plain: one rule after another, as bpfilter emits them):"
    );
    for n in [10, 1000] {
        let rules: Vec<PlainRule> = (0..n).map(|i| plain_rule(i, n)).collect();
        let text = ruleset(&rules.iter().map(PlainRule::nft).collect::<Vec<_>>());
        let (_, lowered, test) = compile(&text, Mode::TestRun).expect("compiles");
        let (_, _, hook) = compile(&text, Mode::Hook).expect("compiles");
        let mut plain = Object::new();
        let plain_prog = plain
            .add_program("plain_chain", ProgramType::Xdp, plain_chain(&rules))
            .expect("adds");
        let load = |o: &Object, what: &str| -> Loaded {
            o.load()
                .unwrap_or_else(|e| panic!("{what} at {n} rules: {}", short(&e.to_string())))
        };
        let (test_loaded, hook_loaded, plain_loaded) = (
            load(&test.object, "ours (test run)"),
            load(&hook.object, "ours (hook)"),
            load(&plain, "plain chain"),
        );
        // The maps' first contents: sets, and the program array of rules
        // past one program.
        let mut map = SourceMap::new();
        let file = map.add("bench.nft", None, text.as_str(), None);
        let ruleset =
            nft2bpf::check_ruleset(&mut map, file, &mut MemLoader::new()).expect("checks");
        for (p, loaded) in [(&test, &test_loaded), (&hook, &hook_loaded)] {
            p.initialize(loaded, &lowered, &ruleset, &|_| None)
                .expect("the maps' first contents");
        }
        let (test_p, hook_p, plain_p) = (
            test_loaded.program(test.prog),
            hook_loaded.program(hook.prog),
            plain_loaded.program(plain_prog),
        );
        println!(
            "\n{n} rules: instructions: ours {} (test-run build {}), plain chain {}",
            insns(&hook.object, hook.prog),
            insns(&test.object, test.prog),
            insns(&plain, plain_prog),
        );
        println!(
            "{:<20} {:>8} {:>10} {:>10} {:>7}",
            "frame", "verdict", "ours ns", "plain ns", "ratio"
        );
        let mut ratios = Vec::new();
        for (name, frame) in &frames {
            // The same verdicts first: a fast wrong answer is no answer.
            let one = TestRun::new(frame);
            let decided = test_p.test_run(&one).expect("runs").retval;
            let ours = fate(&lowered, decided);
            let at_hook = hook_p.test_run(&one).expect("runs").retval as i32;
            let theirs = plain_p.test_run(&one).expect("runs").retval as i32;
            assert_eq!(
                (ours, at_hook),
                (theirs, theirs),
                "{n} rules, {name}: ours (decision {decided}) and the plain chain disagree"
            );
            let run = TestRun::new(frame).repeat(REPEAT);
            let (mut to, mut tp) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                to.push(hook_p.test_run(&run).expect("runs").duration_ns as f64);
                tp.push(plain_p.test_run(&run).expect("runs").duration_ns as f64);
            }
            let (o, p) = (median(&mut to), median(&mut tp));
            ratios.push(o / p.max(1.0));
            let verdict = XdpAction::from_value(ours).map_or("?", |a| a.name());
            println!(
                "{name:<20} {:>8} {o:>10.1} {p:>10.1} {:>7.2}",
                verdict.trim_start_matches("XDP_"),
                o / p.max(1.0)
            );
        }
        println!(
            "median ratio ours/plain at {n} rules: {:.2}",
            median(&mut ratios)
        );
    }
}

/// Whether both programs of part 3's shapes load at `n` rules, and in
/// what time (the verifier's limits, side by side).
fn load_both(n: usize) {
    let rules: Vec<PlainRule> = (0..n).map(|i| plain_rule(i, n)).collect();
    let text = ruleset(&rules.iter().map(PlainRule::nft).collect::<Vec<_>>());
    let (_, _, ours) = compile(&text, Mode::Hook).expect("compiles");
    let mut plain = Object::new();
    let plain_prog = plain
        .add_program("plain_chain", ProgramType::Xdp, plain_chain(&rules))
        .expect("adds");
    let report = |o: &Object, p| match o.load() {
        Ok(l) => format!(
            "{} insns, loads in {} ms",
            insns(o, p),
            ms(l.stats().total.as_secs_f64())
        ),
        Err(e) => format!(
            "{} insns, LOAD FAILED: {}",
            insns(o, p),
            short(&e.to_string())
        ),
    };
    println!(
        "
{n} rules: ours {}
{n} rules: plain chain {}",
        report(&ours.object, ours.prog),
        report(&plain, plain_prog)
    );
}

/// Part 5's per-packet cost of a deployed set: the program reads the
/// set's map from slot 0 of an array of maps (so that `nft2bpf apply`
/// can swap it), against the same program naming the map directly;
/// BPF_PROG_TEST_RUN of the hook program on a frame in the set and one
/// not in it, interleaved.
fn swappable_set_cost() {
    println!(
        "\n5b. ns per packet of `ip saddr @s counter drop` (M addresses), BPF_PROG_TEST_RUN repeat \
         {REPEAT}, median of {ROUNDS}: the set's map named directly, and read from its array of \
         maps (deployed):"
    );
    println!(
        "{:>9} {:<6} {:>10} {:>10} {:>7}",
        "M", "frame", "direct ns", "swap ns", "ratio"
    );
    for m in [10u32, 1000, 100_000, 1_000_000] {
        let hosts: Vec<String> = (0..m)
            .map(|k| Ipv4Addr::from(0x0a00_0001u32 + 2 * k).to_string())
            .collect();
        let text = format!(
            "table netdev t {{\n\tset s {{ type ipv4_addr; elements = {{ {} }} }}\n\tchain c {{\n\t\ttype filter hook ingress device \"{DEVICE}\" priority 0; policy accept;\n\t\tip saddr @s counter drop\n\t}}\n}}\n",
            hosts.join(", ")
        );
        let mut map = SourceMap::new();
        let file = map.add("bench.nft", None, text.as_str(), None);
        let ruleset =
            nft2bpf::check_ruleset(&mut map, file, &mut MemLoader::new()).expect("checks");
        let device = Device::named(DEVICE).with_mac(MAC);
        let lowered = nft2bpf::compile::lower(&ruleset, Attach::Xdp, &device).expect("lowers");
        let loaded: Vec<(Program, Loaded)> = [false, true]
            .into_iter()
            .map(|swappable| {
                let opts = ProgramOptions::new(Mode::Hook).swappable_sets(swappable);
                let p = build(&lowered, &opts).expect("builds");
                let l = p
                    .with_entries(&lowered, &|_| None)
                    .expect("entries")
                    .load()
                    .expect("loads");
                (p, l)
            })
            .collect();
        let progs: Vec<_> = loaded.iter().map(|(p, l)| l.program(p.prog)).collect();
        let hit = tcp_frame(Ipv4Addr::from(0x0a00_0001u32 + 2 * (m / 2)), 80);
        let miss = tcp_frame(Ipv4Addr::from(0x0a00_0002u32), 80);
        for (name, frame, want) in [
            ("in", &hit, XdpAction::Drop),
            ("not in", &miss, XdpAction::Pass),
        ] {
            for p in &progs {
                let got = p.test_run(&TestRun::new(frame)).expect("runs").retval as i32;
                assert_eq!(got, want.value(), "M {m}, a frame {name} the set");
            }
            let run = TestRun::new(frame).repeat(REPEAT);
            let (mut direct, mut swap) = (Vec::new(), Vec::new());
            for _ in 0..ROUNDS {
                direct.push(progs[0].test_run(&run).expect("runs").duration_ns as f64);
                swap.push(progs[1].test_run(&run).expect("runs").duration_ns as f64);
            }
            let (d, s) = (median(&mut direct), median(&mut swap));
            println!(
                "{m:>9} {name:<6} {d:>10.1} {s:>10.1} {:>7.2}",
                s / d.max(1.0)
            );
        }
    }
}

/// Part 5: a named set of `m` addresses, deployed and changed live.
fn deployed_sets() {
    println!(
        "\n5. a named set of M addresses deployed on a veth (nft2bpf load), one element added live \
         (medians of 21 adds), and the same file loaded again (a reload that keeps the set's map):"
    );
    println!(
        "(read and load ms: wall time; cpu: the reading thread's CPU time; user/sys: the \
         loading thread's CPU time in our code and in the kernel on its behalf: the map's \
         creation and inserts, the verifier, and page faults)"
    );
    println!(
        "{:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>12} {:>10}",
        "M",
        "read ms",
        "read cpu",
        "load ms",
        "user ms",
        "sys ms",
        "us per elem",
        "add elem us",
        "reload ms"
    );
    let ns = testbed::Netns::new().expect("a namespace");
    let _pair = ns.veth_pair(DEVICE, "veth1").expect("a veth pair");
    let dir = std::env::temp_dir().join(format!("nft2bpf-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory");
    // `-- deployed-sets 100000`: that size alone (for a profiler).
    let only: Option<usize> = std::env::args()
        .skip_while(|a| a != "deployed-sets")
        .nth(1)
        .and_then(|a| a.parse().ok());
    for m in [10, 1000, 100_000, 1_000_000] {
        if only.is_some_and(|o| o != m) {
            continue;
        }
        let hosts: Vec<String> = (0..m)
            .map(|k| Ipv4Addr::from(0x0a00_0001u32 + 2 * k as u32).to_string())
            .collect();
        let text = format!(
            "table netdev t {{\n\tset s {{ type ipv4_addr; elements = {{ {} }} }}\n\tchain c {{\n\t\ttype filter hook ingress device \"{DEVICE}\" priority 0; policy accept;\n\t\tip saddr @s counter drop\n\t}}\n}}\n",
            hosts.join(", ")
        );
        let file = dir.join(format!("set{m}.nft"));
        std::fs::write(&file, text).expect("writes");
        let root =
            std::path::PathBuf::from(format!("/sys/fs/bpf/nft2bpf-bench-{}", std::process::id()));
        let row = ns
            .run(|| -> Result<(f64, f64, f64, ThreadCpu, f64, f64), String> {
                let cpu = ThreadCpu::now().map_err(|e| e.to_string())?;
                let t = Instant::now();
                let src = nft2bpf::deploy::Source::read(&file).map_err(|e| e.to_string())?;
                let read = t.elapsed().as_secs_f64();
                let read_cpu = ThreadCpu::now().map_err(|e| e.to_string())?.since(cpu);
                let read_cpu = (read_cpu.user + read_cpu.system).as_secs_f64();
                let mut opts = nft2bpf::deploy::LoadOptions::new();
                opts.pin_root = root.clone();
                let cpu = ThreadCpu::now().map_err(|e| e.to_string())?;
                let t = Instant::now();
                nft2bpf::deploy::load(&src, &opts).map_err(|e| e.to_string())?;
                let load = t.elapsed().as_secs_f64();
                let load_cpu = ThreadCpu::now().map_err(|e| e.to_string())?.since(cpu);
                let mut adds = Vec::new();
                for k in 0..21u32 {
                    let cmd = format!(
                        "add element netdev t s {{ {} }}",
                        Ipv4Addr::from(0x0b00_0000 + k)
                    );
                    let t = Instant::now();
                    nft2bpf::deploy::sets::run(&root, &cmd).map_err(|e| e.to_string())?;
                    adds.push(t.elapsed().as_secs_f64());
                }
                let t = Instant::now();
                let report = nft2bpf::deploy::load(&src, &opts).map_err(|e| e.to_string())?;
                let reload = t.elapsed().as_secs_f64();
                if report.programs.iter().any(|p| p.sets_kept.is_empty()) {
                    return Err("the reload did not keep the set".into());
                }
                nft2bpf::deploy::unload(&root).map_err(|e| e.to_string())?;
                Ok((read, read_cpu, load, load_cpu, median(&mut adds), reload))
            })
            .expect("runs in the namespace");
        match row {
            Ok((read, read_cpu, load, load_cpu, add, reload)) => println!(
                "{m:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12.3} {:>12.1} {:>10}",
                ms(read),
                ms(read_cpu),
                ms(load),
                ms(load_cpu.user.as_secs_f64()),
                ms(load_cpu.system.as_secs_f64()),
                (read + load) * 1e6 / m as f64,
                add * 1e6,
                ms(reload)
            ),
            Err(e) => println!("{m:>9} FAILED: {}", short(&e)),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let t = Instant::now();
    let load = testbed::bpf_privileged("load times");
    // `cargo bench -p benches --bench nft2bpf -- deployed-sets`: part 5
    // alone.
    if std::env::args().any(|a| a == "deployed-sets") {
        if load {
            swappable_set_cost();
            deployed_sets();
        }
        return;
    }
    // `-- set-swap-cost`: part 5b alone.
    if std::env::args().any(|a| a == "set-swap-cost") {
        if load {
            swappable_set_cost();
        }
        return;
    }
    if std::env::args().any(|a| a.starts_with("classifiers")) {
        if load {
            classifiers();
        }
        return;
    }
    if std::env::args().any(|a| a == "per-packet") {
        per_packet();
        return;
    }
    compile_times(load);
    per_packet();
    if load {
        load_both(5000);
        swappable_set_cost();
        deployed_sets();
        classifiers();
    }
    println!(
        "\n(whole run: {:.1} s)",
        Duration::as_secs_f64(&t.elapsed())
    );
}

/// Rule `i` of part 6: its source address, port and verdict.
fn classified_rule(i: usize) -> (Ipv4Addr, u16, bool) {
    let addr = Ipv4Addr::from(0x0a00_0000u32 + i as u32);
    (addr, 1 + (i % 1000) as u16, i.is_multiple_of(2))
}

/// A TCP/IPv4 frame from `src` to port `port`.
fn tcp_frame(src: Ipv4Addr, port: u16) -> Vec<u8> {
    let dst = Ipv4Addr::new(203, 0, 113, 9);
    let tcp = Tcp::new(40000, port, tcp_flags::SYN);
    let ip = Ipv4::new(src, dst, 6).build(&tcp.build(src.into(), dst.into(), &[]));
    ethernet_frame(MAC, [0x02, 0, 0, 0, 0, 0x02], 0x0800, &ip)
}

/// A program of part 6 loaded and filled, and its times (seconds): ours
/// (check, lower, build, the maps' contents) and the kernel's load.
struct Ready {
    lowered: Lowered,
    program: Program,
    loaded: Loaded,
    stages: Stages,
    fill: f64,
    kernel: f64,
}

/// `text` compiled in test-run mode with `options`, loaded and filled.
fn ready(text: &str, options: LowerOptions) -> Result<Ready, String> {
    let (stages, lowered, program) = compile_with(text, Mode::TestRun, options)?;
    let t = Instant::now();
    let loaded = program.object.load().map_err(|e| short(&e.to_string()))?;
    let kernel = t.elapsed().as_secs_f64();
    let mut map = SourceMap::new();
    let file = map.add("bench.nft", None, text, None);
    let ruleset = nft2bpf::check_ruleset(&mut map, file, &mut MemLoader::new())
        .map_err(|e| e.render(&map))?;
    let t = Instant::now();
    program
        .initialize(&loaded, &lowered, &ruleset, &|_| None)
        .map_err(|e| e.to_string())?;
    let fill = t.elapsed().as_secs_f64();
    Ok(Ready {
        lowered,
        program,
        loaded,
        stages,
        fill,
        kernel,
    })
}

impl Ready {
    /// The fate of `frame` (an XDP action) and ns per run over `repeat`.
    fn run(&self, frame: &[u8], repeat: u32) -> (i32, f64) {
        let p = self.loaded.program(self.program.prog);
        let decided = p.test_run(&TestRun::new(frame)).expect("runs").retval;
        let mut t: Vec<f64> = (0..ROUNDS)
            .map(|_| {
                let run = TestRun::new(frame).repeat(repeat);
                p.test_run(&run).expect("runs").duration_ns as f64
            })
            .collect();
        (fate(&self.lowered, decided), median(&mut t))
    }
}

/// Part 6: classifiers against the plain chain of the same rules: hash
/// classifiers (exact fields), then tries (a prefix, a range).
fn classifiers() {
    let hash = |i: usize, _: usize| {
        let (a, p, drop) = classified_rule(i);
        (
            format!("ip saddr {a} tcp dport {p} counter {}", verdict(drop)),
            tcp_frame(a, p),
            drop,
        )
    };
    classifier_rows(
        "N rules `ip saddr A tcp dport P counter drop|accept`",
        &hash,
    );
    // Tries: a /24 per rule; an address and a port range per rule.
    let prefix = |i: usize, _: usize| {
        let net = Ipv4Addr::from(0x0a00_0000u32 + ((i as u32) << 8));
        let drop = i.is_multiple_of(2);
        let rule = format!("ip saddr {net}/24 counter {}", verdict(drop));
        let host = Ipv4Addr::from(u32::from(net) + 9);
        (rule, tcp_frame(host, 80), drop)
    };
    classifier_rows("N rules `ip saddr NET/24 counter drop|accept`", &prefix);
    let range = |i: usize, _: usize| {
        let (a, _, drop) = classified_rule(i);
        let low = 1 + (i % 1000) as u16 * 60;
        let rule = format!(
            "ip saddr {a} tcp dport {low}-{} counter {}",
            low + 40,
            verdict(drop)
        );
        (rule, tcp_frame(a, low + 17), drop)
    };
    classifier_rows(
        "N rules `ip saddr A tcp dport LOW-HIGH counter drop|accept`",
        &range,
    );
    // A hash's rules and one prefix rule last: a hash lookup and a rule,
    // where a trie of the whole run would cost about twice a packet.
    let tail = |i: usize, n: usize| {
        if i + 1 < n {
            return hash(i, n);
        }
        let net = Ipv4Addr::new(198, 51, 100, 0);
        let rule = format!("ip saddr {net}/24 tcp dport 80 counter drop");
        (rule, tcp_frame(Ipv4Addr::new(198, 51, 100, 7), 80), true)
    };
    classifier_rows(
        "N-1 rules `ip saddr A tcp dport P counter drop|accept`, then `ip saddr NET/24 tcp dport 80 counter drop`",
        &tail,
    );
}

/// `drop` or `accept`.
fn verdict(drop: bool) -> &'static str {
    if drop { "drop" } else { "accept" }
}

/// Rule `i` of `n` of a part 6 row set: its text, a frame it decides,
/// and whether it drops.
type ClassifiedRule<'a> = &'a dyn Fn(usize, usize) -> (String, Vec<u8>, bool);

/// Part 6's rows for rules `rule(0..N)`, with classifiers and as a plain
/// chain: ns per packet for a frame of the first rule, of the last,
/// and of none; the time to be ready.
fn classifier_rows(what: &str, rule: ClassifiedRule) {
    println!(
        "\n6. classifiers: {what}, with classifiers \
         and as a plain chain (ours without them); ns per packet (BPF_PROG_TEST_RUN, median of \
         {ROUNDS}); ready = check + lower + build + map contents (ours) and BPF_PROG_LOAD (kernel):"
    );
    println!(
        "{:>7} {:<10} {:>5} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
        "rules",
        "program",
        "progs",
        "first ns",
        "last ns",
        "none ns",
        "ours ms",
        "check",
        "lower",
        "build",
        "fill",
        "kernel ms"
    );
    for n in [10usize, 1000, 10_000, 100_000] {
        let rules: Vec<String> = (0..n).map(|i| rule(i, n).0).collect();
        let text = ruleset(&rules);
        let (first, last) = (rule(0, n), rule(n - 1, n));
        let frames = [first.1, last.1, tcp_frame(Ipv4Addr::new(192, 0, 2, 1), 80)];
        let want = |drop: bool| {
            if drop {
                XdpAction::Drop.value()
            } else {
                XdpAction::Pass.value()
            }
        };
        let wanted = [want(first.2), want(last.2), XdpAction::Pass.value()];
        let repeat = if n >= 10_000 { 2_000 } else { 20_000 };
        let plain_too = std::env::args().all(|a| a != "classifiers-only");
        for (name, classifiers) in [("classifier", true), ("plain", false)] {
            if !classifiers && !plain_too {
                continue;
            }
            let r = match ready(&text, LowerOptions { classifiers }) {
                Ok(r) => r,
                Err(e) => {
                    println!("{n:>7} {name:<10} does not load: {e}");
                    continue;
                }
            };
            let mut ns = Vec::new();
            for (frame, want) in frames.iter().zip(wanted) {
                let (got, t) = r.run(frame, repeat);
                assert_eq!(got, want, "{n} rules, {name}: a wrong verdict");
                ns.push(t);
            }
            println!(
                "{n:>7} {name:<10} {:>5} {:>9.1} {:>9.1} {:>9.1} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9}",
                1 + r.lowered.more.len(),
                ns[0],
                ns[1],
                ns[2],
                ms(r.stages.total() + r.fill),
                ms(r.stages.check),
                ms(r.stages.lower),
                ms(r.stages.build),
                ms(r.fill),
                ms(r.kernel)
            );
        }
    }
}
