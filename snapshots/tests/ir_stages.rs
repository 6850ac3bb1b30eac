//! Pins the IR of about thirty filters at each stage, as text: as
//! lowered from tcpdump's language, and as the optimiser leaves it (the
//! eBPF generated from it is pinned by `pcap_filters.rs`). A changed
//! snapshot is reviewed like code: the commit says why the new IR is
//! right.

use pcap2bpf::{
    CompileError, CompileOptions, LinkType, Options, Tables, Target, build_ir, lower_ir,
    lower_options, parse_with,
};
use snapshots::{snapshot_name, tables};

/// The filters, with the link type and the target they are lowered for
/// (the target decides where a VLAN tag is read and what `inbound`
/// means).
const FILTERS: &[(LinkType, Target, &str)] = &[
    (LinkType::En10mb, Target::Xdp, ""),
    (LinkType::En10mb, Target::Xdp, "ip"),
    (LinkType::En10mb, Target::Xdp, "ip6"),
    (LinkType::En10mb, Target::Xdp, "arp or rarp"),
    (LinkType::En10mb, Target::Xdp, "not ip"),
    (
        LinkType::En10mb,
        Target::Xdp,
        "ether host 00:11:22:33:44:55",
    ),
    (LinkType::En10mb, Target::Xdp, "ether broadcast"),
    (LinkType::En10mb, Target::Xdp, "host 10.0.0.1"),
    (LinkType::En10mb, Target::Xdp, "src net 10.0.0.0/8"),
    (LinkType::En10mb, Target::Xdp, "ip6 host 2001:db8::1"),
    (LinkType::En10mb, Target::Xdp, "ip broadcast"),
    (LinkType::En10mb, Target::Xdp, "tcp"),
    (LinkType::En10mb, Target::Xdp, "tcp port 80"),
    (LinkType::En10mb, Target::Xdp, "tcp port 80 or tcp port 443"),
    (LinkType::En10mb, Target::Xdp, "port 53"),
    (LinkType::En10mb, Target::Xdp, "udp dst portrange 8000-8080"),
    (
        LinkType::En10mb,
        Target::Xdp,
        "not (tcp port 22 or port 53)",
    ),
    (LinkType::En10mb, Target::Xdp, "ip proto 47"),
    (LinkType::En10mb, Target::Xdp, "ip protochain 6"),
    (LinkType::En10mb, Target::Xdp, "ip6 protochain 44"),
    (
        LinkType::En10mb,
        Target::Xdp,
        "tcp[tcpflags] & tcp-syn != 0",
    ),
    (
        LinkType::En10mb,
        Target::Xdp,
        "ip[2:2] - 20 > (ip[0] & 0xf) * 4",
    ),
    (LinkType::En10mb, Target::Xdp, "tcp[tcp[12] >> 4] = 0"),
    (LinkType::En10mb, Target::Xdp, "ip[0] / ip[1] = 1"),
    (LinkType::En10mb, Target::Xdp, "-ip[0] = 0"),
    (LinkType::En10mb, Target::Xdp, "ether[len - 1] = 0"),
    (LinkType::En10mb, Target::Xdp, "len > 100"),
    (LinkType::En10mb, Target::Xdp, "less 64"),
    (
        LinkType::En10mb,
        Target::Xdp,
        "ip and (tcp[0:2] > 1024 or udp[0:2] > 1024)",
    ),
    (LinkType::En10mb, Target::Xdp, "tcp and not tcp"),
    (LinkType::En10mb, Target::Xdp, "vlan 10 and ip"),
    (LinkType::En10mb, Target::Tc, "vlan 10 and ip"),
    (LinkType::En10mb, Target::Xdp, "mpls 100 and ip"),
    (LinkType::En10mb, Target::Xdp, "geneve"),
    (LinkType::En10mb, Target::Xdp, "geneve and tcp port 22"),
    (LinkType::En10mb, Target::Tc, "inbound and ifindex 3"),
    (LinkType::Raw, Target::Xdp, "ip6 and udp"),
    (LinkType::LinuxSll, Target::Xdp, "arp"),
];

/// The snapshot text of `expr`: the IR as lowered and as optimised.
fn stages(
    link: LinkType,
    target: Target,
    expr: &str,
    tables: &Tables,
) -> Result<String, CompileError> {
    let opts = CompileOptions::new(link, target, tables).netmask(Some(0xffff_ff00));
    let filter = parse_with(expr, Options::new(link, tables).netmask(Some(0xffff_ff00)))?;
    let lopts = lower_options(&opts);
    let lowered = lower_ir(&filter, &lopts)?;
    let (optimised, warning) = build_ir(&filter, &lopts)?;
    let mut text = format!("filter: {expr}\nlink: {link:?}, target: {target:?}\n");
    if let Some(w) = warning {
        text.push_str(&format!("warning: {w}\n"));
    }
    text.push_str(&format!(
        "\n--- lowered\n{lowered}\n--- optimised\n{optimised}"
    ));
    Ok(text)
}

#[test]
fn ir_stages() {
    let tables = tables();
    let mut seen = std::collections::HashSet::new();
    for &(link, target, expr) in FILTERS {
        let n = snapshot_name(&format!("{link:?}_{target:?}").to_lowercase(), expr);
        assert!(seen.insert(n.clone()), "two filters named {n}");
        let text =
            stages(link, target, expr, &tables).unwrap_or_else(|e| panic!("{}", e.render(expr)));
        insta::assert_snapshot!(n, text);
    }
}
