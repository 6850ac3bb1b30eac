//! Pins what nft2bpf generates for the example ruleset
//! `examples/nft/firewall.nft` (every construct it compiles): the IR of
//! the ingress chains at XDP and at tcx ingress and of the egress chain,
//! and the XDP program's instructions. A changed snapshot is reviewed
//! like code: the commit says why the new code is right.

use examples::nft_firewall::{self, WAN_MAC};
use nft2bpf::compile::Attach;
use nft2bpf::compile::program::Mode;

/// The IR and the program of `attach`, as the hook runs it.
fn compiled(attach: Attach) -> (String, String) {
    let src = nft_firewall::check().unwrap_or_else(|e| panic!("{e}"));
    let (lowered, program) = nft_firewall::compile(&src, attach, WAN_MAC, Mode::Hook)
        .unwrap_or_else(|e| panic!("{}", e.render(&src.map)));
    let mut ir = String::new();
    for (n, d) in lowered.decisions.iter().enumerate() {
        let by = match (d.chain, d.rule) {
            (Some(c), Some(r)) => {
                let chain = &src.ruleset.chains[c];
                let pos = chain.rules.iter().position(|&x| x == r).unwrap();
                format!("{} rule {pos}", chain.name)
            }
            (Some(c), None) => format!("{} policy", src.ruleset.chains[c].name),
            _ => "-".into(),
        };
        ir.push_str(&format!("decision {n}: {:?} ({by})\n", d.outcome));
    }
    ir.push_str(&format!("\n{}", lowered.ir));
    let listing = program.object.listing(program.prog).unwrap();
    (ir, listing)
}

#[test]
fn firewall_xdp() {
    let (ir, listing) = compiled(Attach::Xdp);
    insta::assert_snapshot!("firewall_xdp_ir", ir);
    insta::assert_snapshot!("firewall_xdp_listing", listing);
}

#[test]
fn firewall_tcx_ingress_ir() {
    insta::assert_snapshot!(compiled(Attach::TcxIngress).0);
}

#[test]
fn firewall_tcx_egress_ir() {
    insta::assert_snapshot!(compiled(Attach::TcxEgress).0);
}
