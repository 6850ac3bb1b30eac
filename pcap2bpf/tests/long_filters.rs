//! Filters of 10,000 terms, as tools generate them (issue 17): they
//! compile (the optimiser follows libpcap's pass for pass, without its
//! cubic walks, though still quadratic on long chains: 10 to 50 s in a
//! release build; `truncated.rs` checks its verdicts against libpcap's on
//! cut packets up to 400 terms, where libpcap finishes quickly), and
//! the kernel's answer is recorded: 10,000 alternatives in a row are
//! more pending branches than the verifier keeps (8192 on one path), so
//! it refuses the XDP program, and the error says why and what to do.
//!
//! About a minute in a test build (pktmatch is optimised there, see the
//! workspace's Cargo.toml): the compile time itself is measured by
//! `cargo bench -p benches --bench pcap2bpf`.

mod common;

use bpf_builder::load::LoadError;
use common::*;
use pcap2bpf::{CompileOptions, LinkType, Target, compile};

/// Terms of each filter.
const TERMS: usize = 10_000;

/// Term `i` of a filter.
type Term = fn(usize) -> String;

#[test]
fn ten_thousand_terms_compile_and_the_verifier_says_why_it_refuses_them() {
    let tables = tables();
    let opts = CompileOptions::new(LinkType::En10mb, Target::Xdp, &tables);
    let privileged = testbed::bpf_privileged("loading the programs");
    let shapes: [(&str, Term); 2] = [
        ("tcp port", |i| format!("tcp port {i}")),
        ("host", |i| format!("host 10.0.{}.{}", i >> 8, i & 255)),
    ];
    for (shape, term) in shapes {
        let expr = (0..TERMS).map(term).collect::<Vec<_>>().join(" or ");
        let t = std::time::Instant::now();
        let c = compile(&expr, &opts).unwrap_or_else(|e| panic!("{shape}: {}", e.message));
        let insns = c.object.layout(c.program).expect("lays out").insns.len();
        eprintln!(
            "{TERMS} x `{shape}`: {insns} instructions, compiled in {:?}",
            t.elapsed()
        );
        if !privileged {
            continue;
        }
        let Err(LoadError::Program(e)) = c.object.load() else {
            panic!("{TERMS} x `{shape}`: the kernel now loads it: update this test");
        };
        eprintln!("{TERMS} x `{shape}`: {e}");
        assert!(
            e.reason.contains("jumps is too complex"),
            "{shape}: {}",
            e.reason
        );
        let hint = e.hint().expect("a hint for the reason");
        assert!(hint.contains("8192"), "{hint}");
        // Pointed: the instruction and its term, a line of the filter
        // cut around it rather than all of it.
        let source = e.insn.as_ref().and_then(|i| i.source.as_ref());
        assert!(source.is_some_and(|s| s.column > 1), "{e}");
        assert!(e.to_string().len() < 1000, "{e}");
    }
}
