//! The example ruleset `nft/firewall.nft`: it uses every construct
//! nft2bpf compiles, nft loads it, every program it makes passes the
//! verifier, and nft and nft2bpf do with the example's frames what the
//! example says.

use bpf_builder::run::TestRun;
use examples::nft_firewall::{self, MIRROR, WAN, WAN_MAC};
use examples::require_bpf;
use nft2bpf::compile::Attach;
use nft2bpf::compile::program::Mode;
use nft2bpf::deploy::{self, IngressHook};
use testbed::NftBed;
use testbed::nft::Outcome as NftOutcome;

#[test]
fn the_example_uses_every_feature() {
    let dir = nft_firewall::ruleset_path();
    let dir = dir.parent().unwrap();
    let text = std::fs::read_to_string(dir.join("firewall.nft")).unwrap()
        + &std::fs::read_to_string(dir.join("firewall_sets.nft")).unwrap();
    for needle in [
        "flush ruleset",
        "define ",
        "include \"./firewall_sets.nft\"",
        "# ",
        "table netdev",
        "hook ingress",
        "hook egress",
        "policy accept",
        "jump ",
        "goto ",
        "return",
        "ether saddr",
        "ether type",
        "vlan id",
        "vlan pcp",
        "vlan dei",
        "vlan type",
        "ip saddr",
        "ip daddr",
        "ip protocol",
        "ip ttl",
        "ip length",
        "ip dscp",
        "ip frag-off",
        "ip6 saddr",
        "ip6 daddr",
        "ip6 nexthdr",
        "ip6 hoplimit",
        "tcp sport",
        "tcp dport",
        "tcp flags",
        "udp sport",
        "udp dport",
        "udp length",
        "th dport",
        "icmp type",
        "icmp code",
        "icmpv6 type",
        "icmpv6 code",
        "meta l4proto",
        "meta protocol",
        "meta length",
        "meta pkttype",
        "meta oifname",
        " != ",
        " < ",
        " > ",
        " 20-64 ",
        "/8 ",
        " & 0x1fff",
        " & (syn | ack) == syn",
        "syn / syn,ack,rst,fin",
        "{ 135, 137, 138, 139, 445 }",
        "type ipv4_addr",
        "typeof ip saddr . tcp dport",
        "flags interval",
        " . tcp dport @",
        ": verdict",
        "vmap {",
        "vmap @",
        "counter name",
        "counter drop",
        "counter packets 0 bytes 0",
        "quota dns_monthly",
        "quota name",
        "quota over",
        "limit rate 10/second burst 20 packets",
        "limit rate over",
        "mbytes/second",
        "log prefix",
        "level warn",
        "fwd to",
        "accept",
        "drop",
        "comment \"",
    ] {
        assert!(text.contains(needle), "firewall.nft lacks `{needle}`");
    }
    let mut rules = text.lines().filter(|l| !l.trim_start().starts_with('#'));
    assert!(
        !rules.any(|l| l.contains("pcap \"")),
        "nft has no `pcap` statement: the example must load into nft"
    );
}

#[test]
fn every_program_of_the_example_passes_the_verifier() {
    if !require_bpf("every_program_of_the_example_passes_the_verifier") {
        return;
    }
    let src = nft_firewall::check().unwrap_or_else(|e| panic!("{e}"));
    let wan = (Attach::Xdp, WAN.to_string());
    assert_eq!(
        deploy::targets(&src.ruleset, IngressHook::Xdp),
        [wan, (Attach::TcxEgress, WAN.into())]
    );
    assert_eq!(
        deploy::targets(&src.ruleset, IngressHook::Tcx),
        [
            (Attach::TcxIngress, WAN.into()),
            (Attach::TcxEgress, WAN.into())
        ]
    );
    for attach in [Attach::Xdp, Attach::TcxIngress, Attach::TcxEgress] {
        for mode in [Mode::Hook, Mode::TestRun] {
            let what = format!("{} ({mode:?})", attach.name());
            let (lowered, program) = nft_firewall::compile(&src, attach, WAN_MAC, mode)
                .unwrap_or_else(|e| panic!("{what}: {}", e.render(&src.map)));
            let loaded = program
                .object
                .load()
                .unwrap_or_else(|e| panic!("{what}: the kernel refuses it: {e}"));
            program
                .initialize(&loaded, &lowered, &src.ruleset, &|_| None)
                .unwrap_or_else(|e| panic!("{what}: the maps' contents: {e}"));
            // The maps: the named sets' (and the anonymous set's of five
            // elements) on ingress, the blocklist's on egress, and those
            // of counters, quotas, limits and the log.
            assert!(program.object.maps().len() >= 2, "{what}");
            assert_eq!(
                program.fwd.is_some(),
                mode == Mode::Hook && attach != Attach::TcxEgress
            );
        }
    }
}

/// What the program of `attach` decides for each of the example's
/// frames, as text (`accept`, `drop`, `fwd to DEV`).
fn nft2bpf_outcomes(attach: Attach, mac: [u8; 6]) -> Vec<String> {
    let src = nft_firewall::check().unwrap_or_else(|e| panic!("{e}"));
    let (lowered, program) = nft_firewall::compile(&src, attach, mac, Mode::TestRun)
        .unwrap_or_else(|e| panic!("{}", e.render(&src.map)));
    let loaded = program.object.load().unwrap();
    program
        .initialize(&loaded, &lowered, &src.ruleset, &|_| None)
        .unwrap();
    let prog = loaded.program(program.prog);
    nft_firewall::frames(mac)
        .iter()
        .map(|(_, _, f)| {
            let n = prog.test_run(&TestRun::new(f)).unwrap().retval as usize;
            lowered.decisions[n].outcome.to_string()
        })
        .collect()
}

#[test]
fn the_example_decides_as_it_says_at_xdp_and_tcx() {
    if !require_bpf("the_example_decides_as_it_says_at_xdp_and_tcx") {
        return;
    }
    let expected: Vec<_> = nft_firewall::frames(WAN_MAC)
        .into_iter()
        .map(|(what, outcome, _)| format!("{what}: {outcome}"))
        .collect();
    for attach in [Attach::Xdp, Attach::TcxIngress] {
        let got: Vec<_> = nft_firewall::frames(WAN_MAC)
            .into_iter()
            .zip(nft2bpf_outcomes(attach, WAN_MAC))
            .map(|((what, _, _), outcome)| format!("{what}: {outcome}"))
            .collect();
        assert_eq!(got, expected, "{}", attach.name());
    }
}

#[test]
fn nft_loads_the_example_and_decides_as_it_says() {
    if !NftBed::available("loading the example ruleset into nft") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    assert_eq!(bed.device().name, WAN);
    bed.load_file(&nft_firewall::ruleset_path())
        .unwrap_or_else(|e| panic!("nft refuses the example: {e}"));
    let mac = bed.device().mac;
    let frames = nft_firewall::frames(mac);
    let sent: Vec<&Vec<u8>> = frames.iter().map(|(_, _, f)| f).collect();
    let outcomes = bed.outcomes(&sent).expect("nft's outcomes");
    let got: Vec<String> = frames
        .iter()
        .zip(outcomes)
        .map(|((what, _, _), o)| {
            let o = match o {
                NftOutcome::Accept => "accept".to_string(),
                NftOutcome::Drop => "drop".to_string(),
                NftOutcome::Forward(dev) => format!("fwd to {dev}"),
                NftOutcome::NotReached => "not reached".to_string(),
            };
            format!("{what}: {o}")
        })
        .collect();
    let expected: Vec<String> = frames
        .iter()
        .map(|(what, outcome, _)| format!("{what}: {outcome}"))
        .collect();
    assert_eq!(got, expected, "nft");
    assert!(
        expected
            .iter()
            .any(|e| e.ends_with(&format!("fwd to {MIRROR}")))
    );
    // nft2bpf, built for the bed's device, agrees.
    if require_bpf("nft_loads_the_example_and_decides_as_it_says") {
        let ours: Vec<String> = frames
            .iter()
            .zip(nft2bpf_outcomes(Attach::Xdp, mac))
            .map(|((what, _, _), o)| format!("{what}: {o}"))
            .collect();
        assert_eq!(ours, expected, "nft2bpf");
    }
}
