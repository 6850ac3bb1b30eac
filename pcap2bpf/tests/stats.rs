//! Measurements for the report (not assertions): instruction counts
//! against libpcap's optimised classic BPF, and compile times against
//! `pcap_compile`, over the EN10MB expressions. Run with
//! `cargo test --release -p pcap2bpf --test stats -- --ignored --nocapture`.

mod common;

use std::time::Instant;

use common::*;
use pcap2bpf::{CompileOptions, LinkType, Target, compile};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

#[test]
#[ignore = "measurement, run by hand in release mode"]
fn instruction_counts_and_compile_times() {
    let Some((bin, etc)) = build_helper("insns") else {
        return testbed::skip("cannot build the libpcap measurement helper");
    };
    let mut exprs: Vec<String> = testdata_text("pcap-filter/accept.tsv")
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(l, _)| *l == "EN10MB")
        .map(|(_, e)| e.to_string())
        .collect();
    exprs.extend(OUR_EXPRESSIONS.iter().map(|s| s.to_string()));
    exprs.retain(|e| !e.is_empty());
    exprs.sort();
    exprs.dedup();
    let out = run_with_etc(&bin, &etc, &[], exprs.join("\n") + "\n").unwrap_or_default();
    let tables = tables();
    let opts = CompileOptions::new(LinkType::En10mb, Target::Xdp, &tables)
        .verdicts(2, 1)
        .netmask(Some(0xffff_ff00));
    let (mut ours, mut theirs, mut ratio) = (vec![], vec![], vec![]);
    let (mut our_ns, mut their_ns) = (vec![], vec![]);
    let (mut more, mut total) = (0, 0);
    for (e, line) in exprs.iter().zip(out.lines()) {
        let Some((len, ns)) = line.split_once(' ') else {
            continue;
        };
        let (len, ns): (f64, f64) = (len.parse().unwrap(), ns.parse().unwrap());
        let Ok(c) = compile(e, &opts) else { continue };
        let n = c.object.program(c.program).code.len() as f64;
        let mut times = Vec::new();
        for _ in 0..101 {
            let t = Instant::now();
            let c = compile(e, &opts).unwrap();
            times.push(t.elapsed().as_nanos() as f64);
            std::hint::black_box(c);
        }
        total += 1;
        if n > len {
            more += 1;
            eprintln!("more insns than libpcap: {n} vs {len}: {e}");
        }
        ours.push(n);
        theirs.push(len);
        ratio.push(n / len);
        our_ns.push(median(times));
        their_ns.push(ns);
    }
    eprintln!(
        "{total} expressions: median insns ours {} libpcap {}; median ratio {:.2}; {more} with more insns than libpcap",
        median(ours),
        median(theirs),
        median(ratio)
    );
    eprintln!(
        "median compile time: ours {:.0} ns, libpcap pcap_compile {:.0} ns",
        median(our_ns),
        median(their_ns)
    );
}
