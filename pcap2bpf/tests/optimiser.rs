//! The optimiser on lowered tcpdump filters: shared header checks and
//! equal tests merged, contradictions and tautologies folded.
use pcap2bpf::ir::{Cond, Edge, Ir, ValNode};
use pcap2bpf::{LinkType, LowerOptions, Tables, Target, build_ir, parse};

fn ir(expr: &str) -> Ir {
    let t = Tables::new();
    let f = parse(expr, LinkType::En10mb, &t).unwrap();
    // What XDP sees: the tag in the frame, packets inbound.
    let o = LowerOptions::live(LinkType::En10mb, Target::Xdp, None);
    build_ir(&f, &o).unwrap().0
}

/// Blocks that compare the EtherType with `v`.
fn ethertype_tests(ir: &Ir, v: u32) -> usize {
    ir.blocks
        .iter()
        .filter(|b| match b.cond {
            Cond::Cmp { a, b, .. } => {
                ir.node(a)
                    == (ValNode::Load {
                        off: None,
                        k: 12,
                        size: 2,
                    })
                    && ir.const_of(b) == Some(v)
            }
            _ => false,
        })
        .count()
}

/// Blocks that compare any value with the constant `k`.
fn tests_against(ir: &Ir, k: u32) -> usize {
    ir.blocks
        .iter()
        .filter(|b| matches!(b.cond, Cond::Cmp { b, .. } if ir.const_of(b) == Some(k)))
        .count()
}

#[test]
fn identical_port_tests_are_merged() {
    // `port 53` tests the source and destination port after tcp, udp
    // and sctp, over IPv4 (offset from the header length) and IPv6
    // (fixed offset): 12 tests, of which 4 differ.
    assert_eq!(tests_against(&ir("port 53"), 53), 4);
}

#[test]
fn identical_port_tests_are_merged_in_large_graphs() {
    // Over `SCAN_MAX` blocks, duplicates are found by hashing.
    let big = ir("port 53 or port 54 or port 55 or port 56");
    assert!(big.blocks.len() > 20);
    for k in 53..=56 {
        assert_eq!(tests_against(&big, k), 4, "port {k}");
    }
}

#[test]
fn shared_header_checks_are_tested_once_per_path() {
    // Unoptimised there are two IPv4 and two IPv6 EtherType tests.
    let ir = ir("tcp port 80 or tcp port 443");
    assert_eq!(ethertype_tests(&ir, 0x0800), 1);
    assert_eq!(ethertype_tests(&ir, 0x86dd), 1);
}

#[test]
fn contradictions_reject_all() {
    let ir = ir("ip and not ip");
    assert!(ir.blocks.is_empty());
    assert_eq!(ir.entry, Some(Edge::REJECT));
}

#[test]
fn tests_with_meeting_edges_go() {
    let ir = ir("ip or not ip");
    assert_eq!(ir.entry, Some(Edge::ACCEPT));
}
