//! Loads at offsets near 2^32, compared with the system libpcap packet by
//! packet: libpcap's optimiser folds a constant index into the load's
//! offset in 32-bit arithmetic (`ip[4294967294:1]` is `ether[12]` on
//! Ethernet), a peephole moves the constant of `tcp[c]` into the offset
//! (also in 32 bits), while an index computed from the packet is added
//! without wrapping (a load past the end rejects the packet), and
//! filters with `protochain` or `geneve` are not optimised at all.
//!
//! Random expressions over those cases (fixed seed), on every capture of
//! a link type we compile for; our verdicts from the IR evaluator, the
//! compiled engine, the interpreter and the kernel (XDP test runs, in the batches `run` uses).

mod common;

use std::collections::BTreeMap;

use common::*;
use pcap2bpf::engine::{Engine, EngineError, RunError, RunOptions, Runner};
use pcap2bpf::{CompileOptions, LinkType, Target, compile};
use pcapfile as capture;

/// A small deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        let x = &mut self.0;
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        (*x % n as u64) as usize
    }

    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

/// An index near the wrap: a constant, constant arithmetic libpcap
/// folds, or a value from the packet that it cannot fold.
fn index(r: &mut Rng) -> String {
    let near = |r: &mut Rng| (1u64 << 32) - 1 - r.below(200) as u64;
    match r.below(8) {
        0 => format!("{}", r.below(64)),
        1 => format!("{} + {}", near(r) - 100, 100 + r.below(100)),
        2 => format!("-{}", 1 + r.below(120)),
        3 => format!("0 - {}", 1 + r.below(120)),
        4 => format!("{:#x}", near(r)),
        5 => format!("ip[0] * 0 + {}", near(r)),
        6 => format!("len + {}", near(r)),
        _ => format!("{}", near(r)),
    }
}

fn expression(r: &mut Rng) -> String {
    let proto = r.pick(&[
        "ether", "link", "ip", "ip", "ip6", "arp", "tcp", "tcp", "udp", "icmp", "icmp6", "igmp",
        "sctp", "decnet",
    ]);
    let size = r.pick(&["", ":1", ":2", ":4"]);
    let load = format!("{proto}[{}{size}]", index(r));
    let test = match r.below(4) {
        0 => format!("{load} = {}", r.below(16)),
        1 => format!("{load} != 0"),
        2 => format!("{load} > {}", r.below(256)),
        _ => format!("{load} & {} = 0", 1 << r.below(8)),
    };
    // Filters libpcap does not optimise.
    match r.below(6) {
        0 => format!("{test} or ip6 protochain 250"),
        1 => format!("{test} or geneve 77"),
        2 => format!("not {test}"),
        _ => test,
    }
}

/// A capture: its name, packets and libpcap's answer per expression.
type Capture = (String, Vec<capture::Packet>, Vec<String>);

#[test]
fn offsets_near_the_wrap_match_libpcap() {
    let Some((bin, etc)) = build_helper("verdicts") else {
        return testbed::skip("cannot build the libpcap verdict helper (needs cc and libpcap-dev)");
    };
    let tables = tables();
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut exprs: Vec<String> = vec![
        "ip[4294967294:1] = 8".into(),
        "ip[4294967294:2] = 0x0800".into(),
        "tcp[4294967290:2] != 0".into(),
        "ip[4294967294:1] = 8 or ip6 protochain 250".into(),
    ];
    exprs.extend((0..400).map(|_| expression(&mut r)));
    let (mut runs, mut matched, mut bad, mut compared) = (0usize, 0usize, Vec::new(), 0usize);
    let mut kernel_ok = true;
    // libpcap's verdicts, per capture, grouped by link type.
    let mut by_link: BTreeMap<&str, (LinkType, Vec<Capture>)> = BTreeMap::new();
    for path in capture_files() {
        let cap = capture::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let Some((link, name)) = link_of(cap.link) else {
            continue;
        };
        let file = path.to_string_lossy().to_string();
        let out =
            run_with_etc(&bin, &etc, &[&file, "-"], exprs.join("\n") + "\n").unwrap_or_default();
        let verdicts: Vec<String> = out.lines().map(str::to_string).collect();
        if verdicts.len() != exprs.len() {
            return testbed::skip("cannot run the libpcap verdict helper (needs unshare as root)");
        }
        let e = by_link.entry(name).or_insert((link, Vec::new()));
        e.1.push((path.display().to_string(), cap.packets, verdicts));
    }
    for (link, caps) in by_link.values() {
        let link = *link;
        for (n, expr) in exprs.iter().enumerate() {
            let opts = CompileOptions::new(link, Target::Xdp, &tables).test_run_meta(true);
            let ours = compile(expr, &opts);
            let theirs: Vec<&str> = caps.iter().map(|c| c.2[n].as_str()).collect();
            let c = match ours {
                Ok(c) if theirs.iter().all(|v| v.starts_with('V')) => c,
                Err(_) if theirs.iter().all(|v| !v.starts_with('V')) => continue,
                Ok(_) => {
                    bad.push(format!("{link:?}: libpcap refuses {expr:?}: {theirs:?}"));
                    continue;
                }
                Err(e) => {
                    bad.push(format!("{link:?}: we refuse {expr:?}: {}", e.render(expr)));
                    continue;
                }
            };
            let run = |engine| Runner::new(expr, &RunOptions::new(link, &tables).engine(engine));
            let mut interp = run(Engine::Interp).expect("compiles as above");
            let mut compiled = run(Engine::Compiled).expect("compiles as above");
            let mut kernel = match run(Engine::Kernel) {
                Ok(k) => Some(k),
                Err(EngineError::Run(RunError::NoKernel(_))) => {
                    kernel_ok = false;
                    None
                }
                Err(e) => {
                    bad.push(format!("cannot load {expr:?}: {e}"));
                    None
                }
            };
            for ((path, packets, _), want) in caps.iter().zip(&theirs) {
                compared += 1;
                let want = &want[1..];
                let batched = kernel
                    .as_mut()
                    .map(|k| k.matches_all(&frames(packets)).map_err(|e| e.to_string()));
                for (i, (p, w)) in packets.iter().zip(want.bytes()).enumerate() {
                    let want = w == b'1';
                    matched += usize::from(want);
                    let mut got = vec![
                        ("the IR", Ok(c.ir.eval(&p.data, p.wire_len, &|_| None))),
                        (
                            "the interpreter",
                            interp.matches(frame(p)).map_err(|e| e.to_string()),
                        ),
                        (
                            "the compiled engine",
                            compiled.matches(frame(p)).map_err(|e| e.to_string()),
                        ),
                    ];
                    if let Some(b) = &batched {
                        got.push(("the kernel", b.clone().map(|v| v[i])));
                    }
                    runs += got.len();
                    for (who, v) in got {
                        match v {
                            Ok(v) if v == want => {}
                            Ok(v) => bad.push(format!(
                                "{path}#{}: {who} says {v}, libpcap {want}: {expr:?}",
                                i + 1
                            )),
                            Err(e) => bad.push(format!("{who} failed on {expr:?}: {e}")),
                        }
                    }
                }
            }
        }
    }
    eprintln!(
        "offset wrap: {} expressions, {compared} (expression, capture) pairs compared, \
         {runs} verdicts, {matched} packets libpcap matches",
        exprs.len()
    );
    if !kernel_ok {
        testbed::skip("no permission to load BPF programs: the kernel was not checked");
    }
    // The wrap must be exercised: matches at wrapped offsets.
    assert!(matched > 100, "{matched}");
    let shown: Vec<_> = bad.iter().take(40).cloned().collect();
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        shown.join("\n")
    );
}
