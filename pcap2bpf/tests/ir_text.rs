//! The IR of every Ethernet expression of libpcap's test suite
//! (`testdata/pcap-filter/accept.tsv`) satisfies the IR's invariants and
//! survives its text form, as lowered and as optimised.

mod common;

use common::*;
use pcap2bpf::{Ir, LinkType, LowerOptions, Target, lower_ir, parse_with};

/// The EN10MB expressions of `accept.tsv`.
fn ethernet_expressions() -> Vec<String> {
    testdata_text("pcap-filter/accept.tsv")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .filter(|(link, _)| *link == "EN10MB")
        .map(|(_, e)| e.to_string())
        .collect()
}

/// `ir` verifies, and its text parses back to an IR that prints the same
/// text and verifies too.
fn check(expr: &str, stage: &str, ir: &Ir) {
    if let Err(e) = ir.verify() {
        panic!("{expr:?} {stage}: {e}\n{ir}");
    }
    let text = ir.to_string();
    let back = Ir::from_text(&text).unwrap_or_else(|e| panic!("{expr:?} {stage}: {e}\n{text}"));
    assert_eq!(back.to_string(), text, "{expr:?} {stage}");
    assert_eq!(back.verify(), Ok(()), "{expr:?} {stage}");
    assert_eq!(back.blocks, ir.blocks, "{expr:?} {stage}");
    assert_eq!(back.entry, ir.entry, "{expr:?} {stage}");
    assert_eq!(back.val_count(), ir.val_count(), "{expr:?} {stage}");
}

#[test]
fn libpcap_expressions_verify_and_round_trip_through_text() {
    let tables = tables();
    let opts = pcap2bpf::Options::new(LinkType::En10mb, &tables).netmask(Some(0xffff_ff00));
    // Both ways of reading a VLAN tag: in the frame (XDP) and in the
    // metadata (tc, socket filters).
    let lowerings = [Target::Xdp, Target::Tc].map(|target| {
        LowerOptions::live(LinkType::En10mb, target, Some(0xffff_ff00)).fixed_direction(Some(false))
    });
    let exprs = ethernet_expressions();
    let mut checked = 0;
    for expr in &exprs {
        // What the front end refuses has no IR (other tests cover it).
        let Ok(filter) = parse_with(expr, opts) else {
            continue;
        };
        for lopts in &lowerings {
            let Ok(mut ir) = lower_ir(&filter, lopts) else {
                continue;
            };
            check(expr, "lowered", &ir);
            pktmatch::opt::optimize(&mut ir);
            check(expr, "optimised", &ir);
            checked += 1;
        }
    }
    eprintln!("{checked} lowerings of {} expressions", exprs.len());
    // Nine in ten lower both ways (a few need names or features we
    // lack): the test is not vacuous.
    assert!(
        checked * 10 >= 9 * 2 * exprs.len(),
        "{checked} lowerings of {} expressions",
        exprs.len()
    );
}
