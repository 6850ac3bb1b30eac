//! pcap2bpf against its anchors, in one run:
//!
//! 1. compile time per expression: `pcap2bpf::compile` against libpcap's
//!    `pcap_compile` (optimised), interleaved, medians of many runs;
//! 2. instructions: ours against libpcap's optimised classic BPF, for
//!    each target: XDP and tc (direct packet access, bounds checks
//!    included) and socket filters (`ld_abs`/`ld_ind`, which check bounds
//!    themselves, as classic BPF's loads do);
//! 3. nanoseconds per packet through `BPF_PROG_TEST_RUN` (repeat), ours
//!    against a clang -O2 build of equivalent C (`benches/c/`), on a
//!    matching and a non-matching packet.
//! 4. `run` over a capture: nanoseconds per packet through
//!    `engine::Runner::matches_all` (the kernel's batched test runs, and
//!    the interpreter; also one test run per packet, for comparison)
//!    against libpcap's `pcap_offline_filter`, on the
//!    project's Ethernet sample capture repeated to 100,000 packets.
//! 5. a size sweep: filters of 10 to 10,000 terms of four shapes, one
//!    compile each, ours against libpcap's `pcap_compile` (up to 1,000
//!    terms: its optimiser is roughly cubic), with both sizes.
//!
//! Run: `cargo bench -p benches --bench pcap2bpf` (as root for part 3);
//! `cargo bench -p benches --bench pcap2bpf -- sweep` for part 5 alone.

use std::process::Command;
use std::time::Instant;

use benches::{median, ns_per_item};
use bpf_builder::object::Object;
use bpf_builder::run::TestRun;
use pcap2bpf::engine::{Engine, Frame, RunOptions, Runner};
use pcap2bpf::{CompileOptions, LinkType, Tables, Target, compile};

const EXPRESSIONS: &[&str] = &[
    "ip",
    "ip6",
    "arp",
    "tcp",
    "udp",
    "icmp",
    "tcp port 80",
    "port 53",
    "host 10.0.0.1",
    "src host 10.0.0.1 and dst port 443",
    "net 192.168.0.0/16",
    "tcp port 80 or tcp port 443",
    "udp and (port 53 or port 123)",
    "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
    "ip[6:2] & 0x3fff != 0",
    "vlan 10 and ip",
    "portrange 1000-2000",
    "ether host 00:11:22:33:44:55",
    "ether broadcast",
    "not ip and not arp",
    "icmp[icmptype] == icmp-echo",
    "ip6 and tcp port 22",
    "greater 1000",
    "len < 100",
    "ip proto 47",
    "host 10.0.0.1 and not port 22",
    "mpls and ip",
    "ip6 protochain 6",
    "dst net 10.0.0.0/8 and (tcp or udp) and not src port 53",
    "tcp dst port 80 and tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
];

fn options(tables: &Tables) -> CompileOptions<'_> {
    options_for(tables, Target::Xdp)
}

/// The target's usual verdicts (XDP_PASS/XDP_DROP, TC_ACT_OK/TC_ACT_SHOT,
/// 256 KiB/nothing), as [`CompileOptions::new`] sets them.
fn options_for(tables: &Tables, target: Target) -> CompileOptions<'_> {
    CompileOptions::new(LinkType::En10mb, target, tables)
}

/// Median time of `f` over `rounds` rounds of `batch` calls, in ns per call.
fn time(rounds: usize, batch: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    median(&mut samples)
}

/// One expression's compile times (ours, libpcap's; ns per compile,
/// medians of `rounds` interleaved rounds of `batch` compiles), sizes per
/// target and libpcap's classic BPF size.
struct Row {
    ours_ns: f64,
    pcap_ns: f64,
    sizes: [Option<usize>; 3],
    cbpf: usize,
}

const TARGETS: [Target; 3] = [Target::Xdp, Target::Tc, Target::SocketFilter];

fn measure(
    expr: &str,
    tables: &Tables,
    dead: &pcap::Capture<pcap::Dead>,
    rounds: usize,
    batch: usize,
) -> Row {
    let opts = options(tables);
    let sizes = TARGETS.map(|t| {
        let c = compile(expr, &options_for(tables, t)).ok()?;
        Some(c.object.layout(c.program).expect("lays out").insns.len())
    });
    let cbpf = dead
        .compile(expr, true)
        .expect("libpcap compiles")
        .get_instructions()
        .len();
    // Interleave the two so machine noise hits both alike.
    let (mut t_ours, mut t_pcap) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        t_ours.push(time(1, batch, || {
            std::hint::black_box(compile(expr, &opts).expect("compiles"));
        }));
        t_pcap.push(time(1, batch, || {
            std::hint::black_box(dead.compile(expr, true).expect("compiles"));
        }));
    }
    Row {
        ours_ns: median(&mut t_ours),
        pcap_ns: median(&mut t_pcap),
        sizes,
        cbpf,
    }
}

fn print_row(label: &str, r: &Row) {
    let [xdp, tc, sock] = r
        .sizes
        .map(|n| n.map_or("-".to_string(), |n| n.to_string()));
    println!(
        "{:<58} {:>9.0} {:>9.0} {:>6.2} {:>5} {:>5} {:>5} {:>5}",
        label,
        r.ours_ns,
        r.pcap_ns,
        r.ours_ns / r.pcap_ns,
        xdp,
        tc,
        sock,
        r.cbpf
    );
}

fn compile_and_size() {
    let tables = Tables::system();
    let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).expect("pcap_open_dead");
    println!("\n1-2. compile time (EN10MB, XDP; medians of 15 rounds) and size per target:");
    println!(
        "{:<58} {:>9} {:>9} {:>6} {:>5} {:>5} {:>5} {:>5}",
        "expression", "ours ns", "pcap ns", "ratio", "xdp", "tc", "sock", "cbpf"
    );
    let mut time_ratios = Vec::new();
    // Size ratios against classic BPF, per target: XDP, tc, socket.
    let mut size_ratios: [Vec<f64>; 3] = Default::default();
    for expr in EXPRESSIONS {
        let r = measure(expr, &tables, &dead, 15, 200);
        time_ratios.push(r.ours_ns / r.pcap_ns);
        for (ratios, size) in size_ratios.iter_mut().zip(r.sizes) {
            if let Some(n) = size {
                ratios.push(n as f64 / r.cbpf as f64);
            }
        }
        print_row(expr, &r);
    }
    let [xdp, tc, sock] = size_ratios.map(|mut r| median(&mut r));
    println!(
        "median compile-time ratio ours/libpcap: {:.2}; median size ratio ours/libpcap: XDP {:.2}, tc {:.2}, socket filter {:.2}",
        median(&mut time_ratios),
        xdp,
        tc,
        sock
    );

    // How both optimisers scale: long chains (not in the medians).
    println!("\nlarge filters (medians of 5 rounds; not in the medians above):");
    let large = [
        (
            "40 x `host 10.0.0.N` or'ed",
            (1..=40)
                .map(|i| format!("host 10.0.0.{i}"))
                .collect::<Vec<_>>()
                .join(" or "),
        ),
        (
            "40 x `port N` or'ed",
            (1000..1040)
                .map(|i| format!("port {i}"))
                .collect::<Vec<_>>()
                .join(" or "),
        ),
        (
            "20 x `not net 10.N.0.0/16` and'ed, then tcp",
            (0..20)
                .map(|i| format!("not net 10.{i}.0.0/16"))
                .chain(["tcp".to_string()])
                .collect::<Vec<_>>()
                .join(" and "),
        ),
    ];
    for (label, expr) in &large {
        print_row(label, &measure(expr, &tables, &dead, 5, 5));
    }
}

/// The equivalent C programs, compiled with clang -O2.
const C_FILTERS: &[(&str, &str)] = &[
    ("tcp port 80", "tcp_port_80"),
    ("host 10.0.0.1", "host"),
    ("udp and (port 53 or port 123)", "udp_dns_ntp"),
];

fn tcp_packet(dport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 74];
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&60u16.to_be_bytes());
    f[22] = 64;
    f[23] = 6;
    f[26..30].copy_from_slice(&[10, 0, 0, 2]);
    f[30..34].copy_from_slice(&[10, 0, 0, 1]);
    f[34..36].copy_from_slice(&40000u16.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[46] = 0xa0;
    f
}

fn udp_packet(dport: u16) -> Vec<u8> {
    let mut f = tcp_packet(dport);
    f[23] = 17;
    f[26..30].copy_from_slice(&[192, 168, 1, 2]);
    f[30..34].copy_from_slice(&[192, 168, 1, 3]);
    f
}

fn per_packet() {
    if !testbed::bpf_privileged("the per-packet benchmark") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("pcap2bpf-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let c_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/c");
    let tables = Tables::system();
    let opts = options(&tables);
    let packets = [
        ("tcp :80", tcp_packet(80)),
        ("udp :53", udp_packet(53)),
        ("udp :9", udp_packet(9)),
    ];
    println!("\n3. ns per packet, BPF_PROG_TEST_RUN repeat 1e6, median of 7 (ours / clang -O2):");
    print!("{:<32} {:>6} {:>6}", "filter", "ours", "clang");
    for (name, _) in &packets {
        print!(" {name:>17}");
    }
    println!();
    let mut ratios = Vec::new();
    for (expr, file) in C_FILTERS {
        let obj = dir.join(format!("{file}.o"));
        let status = Command::new("clang")
            .args(["-O2", "-g", "-target", "bpf", "-c"])
            .arg(format!("{c_dir}/{file}.c"))
            .arg("-o")
            .arg(&obj)
            .status()
            .expect("clang runs");
        assert!(status.success(), "clang failed on {file}.c");
        let c_obj = Object::from_elf(&std::fs::read(&obj).expect("object")).expect("imports");
        let c_loaded = c_obj.load().expect("clang's program loads");
        let c_prog = c_loaded.programs().next().expect("one program").1;
        let ours = compile(expr, &opts).expect("compiles");
        let ours_insns = ours
            .object
            .layout(ours.program)
            .expect("lays out")
            .insns
            .len();
        let c_insns = c_obj
            .programs()
            .next()
            .map(|(id, _)| c_obj.layout(id).expect("lays out").insns.len())
            .unwrap_or(0);
        let loaded = ours.object.load().expect("ours loads");
        let prog = loaded.program(ours.program);
        print!("{expr:<32} {ours_insns:>6} {c_insns:>6}");
        for (_, pkt) in &packets {
            let run = TestRun::new(pkt).repeat(1_000_000);
            let a = prog.test_run(&run).expect("runs");
            let b = c_prog.test_run(&run).expect("runs");
            assert_eq!(a.retval, b.retval, "{expr}: ours and clang's disagree");
            let (mut to, mut tc) = (Vec::new(), Vec::new());
            for _ in 0..7 {
                to.push(prog.test_run(&run).expect("runs").duration_ns as f64);
                tc.push(c_prog.test_run(&run).expect("runs").duration_ns as f64);
            }
            let (o, c) = (median(&mut to), median(&mut tc));
            ratios.push(o / c.max(1.0));
            print!(" {:>8.1} / {:>6.1}", o, c);
        }
        println!();
    }
    println!(
        "median per-packet ratio ours/clang: {:.2}",
        median(&mut ratios)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Filters for part 4: what the sample capture holds, and more.
const RUN_FILTERS: &[&str] = &[
    "tcp port 80",
    "host 10.0.0.1",
    "udp and (port 53 or port 123)",
    "ip6 and tcp",
    "vlan and ip",
];

fn run_over_capture() {
    if !testbed::bpf_privileged("the run benchmark") {
        return;
    }
    let (_, sample) = testbed::samples::sample_captures()
        .into_iter()
        .find(|(name, _)| *name == "ethernet.pcap")
        .expect("the Ethernet sample");
    let packets: Vec<_> = sample
        .packets
        .iter()
        .cycle()
        .take(100_000)
        .map(|p| Frame::new(&p.data, p.wire_len))
        .collect();
    let tables = Tables::system();
    let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).expect("pcap_open_dead");
    println!(
        "\n4. run over {} packets (the Ethernet sample, repeated): ns per packet, median of 5",
        packets.len()
    );
    println!(
        "{:<32} {:>9} {:>9} {:>9} {:>9} {:>13}",
        "filter", "kernel", "1 by 1", "interp", "libpcap", "kernel/pcap"
    );
    let mut ratios = Vec::new();
    for expr in RUN_FILTERS {
        let runner = |engine| {
            Runner::new(
                expr,
                &RunOptions::new(LinkType::En10mb, &tables).engine(engine),
            )
            .expect("compiles")
        };
        let (mut kernel, mut interp) = (runner(Engine::Kernel), runner(Engine::Interp));
        let cbpf = dead.compile(expr, true).expect("libpcap compiles");
        // The same verdicts first: a fast wrong answer is no answer.
        let want: Vec<bool> = packets.iter().map(|p| cbpf.filter(p.data)).collect();
        assert_eq!(kernel.matches_all(&packets).expect("runs"), want, "{expr}");
        let k = ns_per_item(5, packets.len(), || {
            std::hint::black_box(kernel.matches_all(&packets).expect("runs"));
        });
        // One test run per packet, as `run` did before batches.
        let one = ns_per_item(5, packets.len(), || {
            for p in &packets {
                std::hint::black_box(kernel.matches(*p).expect("runs"));
            }
        });
        let i = ns_per_item(5, packets.len(), || {
            std::hint::black_box(interp.matches_all(&packets).expect("runs"));
        });
        let l = ns_per_item(5, packets.len(), || {
            for p in &packets {
                std::hint::black_box(cbpf.filter(p.data));
            }
        });
        ratios.push(k / l);
        println!(
            "{expr:<32} {k:>9.0} {one:>9.0} {i:>9.0} {l:>9.0} {:>13.2}",
            k / l
        );
    }
    println!(
        "median ratio kernel engine / libpcap: {:.2}",
        median(&mut ratios)
    );
}

/// Term `i` of a long filter.
type Term = fn(usize) -> String;

/// The operator before term `i` (`i > 0`) of a long filter.
type Operator = fn(usize) -> &'static str;

/// `or` between every two terms.
fn or(_: usize) -> &'static str {
    " or "
}

/// Shapes of long filters, as tools generate them (all `or`), and a
/// chain whose operators take turns (`a and b or c and d ...`, a tree as
/// high as it is long).
const SWEEP_SHAPES: &[(&str, Term, Operator)] = &[
    ("tcp port N", |i| format!("tcp port {i}"), or),
    (
        "host A",
        |i| format!("host 10.0.{}.{}", i >> 8, i & 255),
        or,
    ),
    (
        "(tcp port a and host b)",
        |i| {
            format!(
                "(tcp port {} and host 10.1.{}.{})",
                1000 + i,
                i >> 8,
                i & 255
            )
        },
        or,
    ),
    (
        "tcp port a and host b or",
        |i| match i % 2 {
            0 => format!("tcp port {i}"),
            _ => format!("host 10.2.{}.{}", i >> 8, i & 255),
        },
        |i| if i % 2 == 1 { " and " } else { " or " },
    ),
];

/// Terms per filter in the sweep, and the most libpcap gets.
const SWEEP_TERMS: &[usize] = &[10, 100, 1_000, 10_000];
const SWEEP_PCAP_MAX: usize = 1_000;

fn size_sweep() {
    let tables = Tables::system();
    let opts = options(&tables);
    let dead = pcap::Capture::dead(pcap::Linktype::ETHERNET).expect("pcap_open_dead");
    println!(
        "\n5. size sweep (EN10MB, XDP; one compile each; `or` between the terms, but in the last shape):"
    );
    println!(
        "{:<26} {:>6} {:>10} {:>9} {:>10} {:>7} {:>7}",
        "shape", "terms", "ours ms", "pcap ms", "ratio", "xdp", "cbpf"
    );
    for (shape, term, operator) in SWEEP_SHAPES {
        for &n in SWEEP_TERMS {
            let mut expr = String::new();
            for i in 0..n {
                if i > 0 {
                    expr.push_str(operator(i));
                }
                expr.push_str(&term(i));
            }
            let t = Instant::now();
            let c = compile(&expr, &opts).expect("compiles");
            let ours = t.elapsed().as_secs_f64() * 1e3;
            let xdp = c.object.layout(c.program).expect("lays out").insns.len();
            // libpcap's time and size, where it finishes in reasonable time.
            let pcap = (n <= SWEEP_PCAP_MAX).then(|| {
                let t = Instant::now();
                let p = dead.compile(&expr, true).expect("libpcap compiles");
                (t.elapsed().as_secs_f64() * 1e3, p.get_instructions().len())
            });
            let [pcap_ms, ratio, cbpf] = match pcap {
                Some((ms, len)) => [
                    format!("{ms:.1}"),
                    format!("{:.3}", ours / ms),
                    len.to_string(),
                ],
                None => ["-".to_string(), "-".to_string(), "-".to_string()],
            };
            println!("{shape:<26} {n:>6} {ours:>10.1} {pcap_ms:>9} {ratio:>10} {xdp:>7} {cbpf:>7}");
        }
    }
}

fn main() {
    // `cargo bench -p benches --bench pcap2bpf -- sweep`: the size sweep
    // alone.
    if std::env::args().any(|a| a == "sweep") {
        size_sweep();
        return;
    }
    compile_and_size();
    per_packet();
    run_over_capture();
    size_sweep();
}
