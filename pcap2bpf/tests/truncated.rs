//! Truncated packets: every packet of the shared captures and our samples,
//! cut at every length up to 128 bytes (wire length kept), against
//! libpcap's verdict. Which loads a filter runs, and in what order, decides
//! its verdict on a packet cut short (a load past the captured bytes
//! rejects), so this pins the order of tests that libpcap's optimiser
//! leaves, not only what they test.
//!
//! Checked: the IR's evaluator on every cut packet (the differential test
//! shows the generated code agrees with it), and the interpreter running
//! the generated XDP code on every 16th.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use common::*;
use pcap2bpf::capture::{self, Packet};
use pcap2bpf::engine::{Engine, RunOptions, Runner};
use pcap2bpf::{CompileOptions, LinkType, Target, compile};

/// Longest cut: past it, headers have been read and the differential test
/// covers the whole packets.
const MAX_CUT: usize = 128;

fn link_of(dlt: u32) -> Option<(LinkType, &'static str)> {
    Some(match dlt {
        1 => (LinkType::En10mb, "EN10MB"),
        12 | 14 | 101 => (LinkType::Raw, "RAW"),
        113 => (LinkType::LinuxSll, "LINUX_SLL"),
        276 => (LinkType::LinuxSll2, "LINUX_SLL2"),
        _ => return None,
    })
}

fn captures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v: Vec<PathBuf> = [root.join("../../shared/pcaps"), root.join("samples")]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|d| d.filter_map(|e| e.ok().map(|e| e.path())))
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    v.sort();
    v
}

#[test]
fn cut_packets_match_libpcap() {
    if !Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/pcaps")
        .exists()
    {
        return skip("../shared/pcaps is missing");
    }
    let Some((bin, etc)) = build_helper("verdicts") else {
        return skip("cannot build the libpcap verdict helper (needs cc and libpcap-dev)");
    };
    let tsv = shared("accept.tsv").unwrap_or_default();
    let tables = tables();
    // Cut packets by link type, each distinct (bytes, wire length) once.
    let mut cut: BTreeMap<&'static str, (u32, Vec<Packet>)> = BTreeMap::new();
    let mut seen = HashSet::new();
    for path in captures() {
        let cap = capture::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let Some((_, name)) = link_of(cap.link) else {
            continue;
        };
        let packets = &mut cut.entry(name).or_insert((cap.link, Vec::new())).1;
        for p in &cap.packets {
            for n in 0..p.data.len().min(MAX_CUT) {
                let data = p.data[..n].to_vec();
                if seen.insert((name, data.clone(), p.wire_len)) {
                    packets.push(Packet {
                        ts_sec: 0,
                        ts_nsec: 0,
                        data,
                        wire_len: p.wire_len,
                    });
                }
            }
        }
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let (mut programs, mut checked, mut interp_runs) = (0usize, 0usize, 0usize);
    let mut bad = Vec::new();
    for (name, (dlt, packets)) in &cut {
        let (link, _) = link_of(*dlt).expect("known");
        let file = dir.join(format!("cut-{name}.pcap"));
        let out = std::fs::File::create(&file).expect("temp file");
        capture::write_pcap(out, *dlt, 65535, packets).expect("writes");
        let mut exprs: Vec<String> = tsv
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .filter(|(l, _)| l == name)
            .map(|(_, e)| e.to_string())
            .collect();
        if link == LinkType::En10mb {
            exprs.extend(OUR_EXPRESSIONS.iter().map(|s| s.to_string()));
        }
        exprs.sort();
        exprs.dedup();
        let file_arg = file.to_string_lossy().to_string();
        let out = run_with_etc(
            &bin,
            &etc,
            &[&file_arg, "255.255.255.0"],
            exprs.join("\n") + "\n",
        )
        .unwrap_or_default();
        let lines: Vec<&str> = out.lines().collect();
        if lines.len() != exprs.len() {
            return skip("cannot run the libpcap verdict helper (needs unshare as root)");
        }
        for (expr, line) in exprs.iter().zip(lines) {
            let Some(want) = line.strip_prefix('V') else {
                continue;
            };
            let opts = CompileOptions {
                link,
                target: Target::Xdp,
                on_match: 2,
                on_nomatch: 1,
                test_run_meta: true,
                netmask: Some(0xffff_ff00),
                resolver: &tables,
            };
            // What we do not compile is listed by the differential test.
            let Ok(c) = compile(expr, &opts) else {
                continue;
            };
            programs += 1;
            let mut interp = Runner::new(
                expr,
                &RunOptions {
                    link,
                    engine: Engine::Interp,
                    netmask: Some(0xffff_ff00),
                    resolver: &tables,
                },
            )
            .expect("compiles as above");
            let mut wrong = 0;
            for (i, (p, w)) in packets.iter().zip(want.bytes()).enumerate() {
                let want = w == b'1';
                let ir = c.ir.eval(&p.data, p.wire_len, &|_| None);
                checked += 1;
                let mut verdicts = vec![("the IR", Ok(ir))];
                if i % 16 == 0 {
                    verdicts.push((
                        "the interpreter",
                        interp.matches(p).map_err(|e| e.to_string()),
                    ));
                    interp_runs += 1;
                }
                for (who, got) in verdicts {
                    if got.as_ref().ok() != Some(&want) {
                        wrong += 1;
                        if wrong <= 3 {
                            bad.push(format!(
                                "{name} {expr:?}: {who} says {got:?}, libpcap {want} on {} of {} bytes: {:02x?}",
                                p.data.len(),
                                p.wire_len,
                                p.data
                            ));
                        }
                    }
                }
            }
            if wrong > 3 {
                bad.push(format!("{name} {expr:?}: {wrong} disagreements in all"));
            }
        }
    }
    eprintln!(
        "truncated: {} cut packets, {programs} programs, {checked} IR verdicts, {interp_runs} interpreter runs",
        cut.values().map(|(_, p)| p.len()).sum::<usize>()
    );
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.join("\n")
    );
}
