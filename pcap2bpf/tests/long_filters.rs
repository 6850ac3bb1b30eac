//! Filters of 10,000 terms, as tools generate them (issue 17): they
//! compile (the optimiser follows libpcap's pass for pass, without its
//! cubic and quadratic walks: 0.5 to 2 s each in a release build;
//! `truncated.rs` checks its verdicts against libpcap's on cut packets
//! up to 400 terms, where libpcap finishes quickly), and the kernel's
//! answer is recorded: 10,000 alternatives in a row are more pending
//! branches than the verifier keeps (8192 on one path), so it refuses
//! the XDP program, and the error says why and what to do. A chain of
//! 10,000 terms whose operators take turns (`a and b or c and d ...`, a
//! tree as high as it is long) compiles too, in bounded stack, and is
//! refused the same way.
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

/// The filter of `TERMS` terms made by `term`, joined by `or`.
fn or_chain(term: Term) -> String {
    (0..TERMS).map(term).collect::<Vec<_>>().join(" or ")
}

#[test]
fn ten_thousand_terms_compile_and_the_verifier_says_why_it_refuses_them() {
    let tables = tables();
    let opts = CompileOptions::new(LinkType::En10mb, Target::Xdp, &tables);
    let shapes: [(&str, Term); 2] = [
        ("tcp port", |i| format!("tcp port {i}")),
        ("host", |i| format!("host 10.0.{}.{}", i >> 8, i & 255)),
    ];
    for (shape, term) in shapes {
        let expr = or_chain(term);
        let t = std::time::Instant::now();
        let c = compile(&expr, &opts).unwrap_or_else(|e| panic!("{shape}: {}", e.message));
        let insns = c.object.layout(c.program).expect("lays out").insns.len();
        eprintln!(
            "{TERMS} x `{shape}`: {insns} instructions, compiled in {:?}",
            t.elapsed()
        );
        verifier_refuses(shape, &c);
    }
}

/// The kernel refuses the program of `c` (a filter of `TERMS` terms of
/// `shape`) for its pending branches, and the error says so, pointed at
/// a term.
fn verifier_refuses(shape: &str, c: &pcap2bpf::Compiled) {
    if !testbed::bpf_privileged("loading the programs") {
        return;
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
    // Pointed: the instruction and its term, a line of the filter cut
    // around it rather than all of it.
    let source = e.insn.as_ref().and_then(|i| i.source.as_ref());
    assert!(source.is_some_and(|s| s.column > 1), "{e}");
    assert!(e.to_string().len() < 1000, "{e}");
}

#[test]
fn ten_thousand_terms_whose_operators_take_turns_compile_and_the_verifier_refuses_them() {
    // On a thread with a main thread's stack: every pass loops down the
    // chain, none recurses along it.
    let c = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(|| {
            let tables = tables();
            let opts = CompileOptions::new(LinkType::En10mb, Target::Xdp, &tables);
            // `tcp port 0 and host 10.2.0.1 or tcp port 2 and ...`.
            let mut expr = String::new();
            for i in 0..TERMS {
                if i > 0 {
                    expr.push_str(if i % 2 == 1 { " and " } else { " or " });
                }
                expr.push_str(&match i % 2 {
                    0 => format!("tcp port {i}"),
                    _ => format!("host 10.2.{}.{}", i >> 8, i & 255),
                });
            }
            let t = std::time::Instant::now();
            let c = compile(&expr, &opts).unwrap_or_else(|e| panic!("{}", e.message));
            eprintln!("{TERMS} alternating terms compiled in {:?}", t.elapsed());
            c
        })
        .expect("spawn")
        .join()
        .expect("compiles without overflowing the stack");
    let insns = c.object.layout(c.program).expect("lays out").insns.len();
    eprintln!("{TERMS} alternating terms: {insns} instructions");
    // As many pending branches as the `or` chains.
    verifier_refuses("tcp port a and host b or", &c);
}
