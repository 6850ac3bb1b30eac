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
//!    (no reading): ns per packet of the compiled engine, the IR's own
//!    evaluator (`Ir::run`, the tree walk the compiled engine replaces),
//!    the interpreter, the kernel's batched test runs and libpcap's
//!    `pcap_offline_filter`.
//!
//! Run: `cargo bench -p benches --bench pcap_run` (as root for the
//! kernel engine). The `pcap2bpf` binary is built by `cargo build
//! --release -p pcap2bpf-cli`; without tcpdump, part 2 is skipped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use pcap2bpf::engine::{Engine, Frame, RunOptions, Runner};
use pcap2bpf::{LinkType, Tables};
use pcapfile::{LINKTYPE_EN10MB, Packet, PcapWriter};
use testbed::frame::{Ipv4, Tcp, ethernet, ipv6, tcp_flags, udp};

/// Packets in the capture.
const PACKETS: usize = 1_000_000;
/// Timed runs of each command.
const REPS: usize = 5;
/// Packets of the in-process measurement (the capture's first).
const IN_PROCESS: usize = 200_000;

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

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
        "\n3. the filter alone, in this process, over {} packets in memory: ns per packet, median of 5",
        packets.len()
    );
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "filter", "compiled", "IR eval", "interp", "kernel", "libpcap"
    );
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
        let cbpf = dead.compile(expr, true).expect("libpcap compiles");
        let want: Vec<bool> = packets.iter().map(|p| cbpf.filter(p.data)).collect();
        let got: Vec<bool> = packets
            .iter()
            .map(|p| compiled.matches(*p).expect("runs"))
            .collect();
        assert_eq!(got, want, "{expr:?}: the compiled engine vs libpcap");
        let per_packet = |f: &mut dyn FnMut()| {
            let mut v: Vec<f64> = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    f();
                    t.elapsed().as_nanos() as f64 / packets.len() as f64
                })
                .collect();
            median(&mut v)
        };
        let c = per_packet(&mut || {
            for p in &packets {
                std::hint::black_box(compiled.matches(*p).expect("runs"));
            }
        });
        let e = per_packet(&mut || {
            for p in &packets {
                std::hint::black_box(ir.run(p.data, p.wire_len, &|_| None));
            }
        });
        let i = per_packet(&mut || {
            for p in &packets {
                std::hint::black_box(interp.matches(*p).expect("runs"));
            }
        });
        let k = kernel.as_mut().map_or(f64::NAN, |k| {
            per_packet(&mut || {
                std::hint::black_box(k.matches_all(&packets).expect("runs"));
            })
        });
        let l = per_packet(&mut || {
            for p in &packets {
                std::hint::black_box(cbpf.filter(p.data));
            }
        });
        println!(
            "{:<40} {c:>9.1} {e:>9.1} {i:>9.1} {k:>9.1} {l:>9.1}",
            format!("{expr:?}")
        );
    }
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
    let has_tcpdump = Command::new("tcpdump")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if has_tcpdump {
        let bin = pcap2bpf_binary();
        against_tcpdump(&bin, &cap);
    } else {
        println!("\n2. skipped: tcpdump is not installed");
    }
    in_process(&cap);
    let _ = std::fs::remove_dir_all(&dir);
}
