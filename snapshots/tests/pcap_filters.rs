//! Pins the XDP code pcap2bpf generates for about a hundred filters, and
//! the socket-filter code (`ld_abs`/`ld_ind`) for a selection. A changed
//! snapshot is reviewed like code: the commit says why the new code is
//! better.

use pcap2bpf::{CompileOptions, LinkType, Target, compile};
use snapshots::{snapshot_name, tables};

const FILTERS: &[&str] = &[
    "",
    "ip",
    "ip6",
    "arp",
    "rarp",
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "igmp",
    "sctp",
    "pim",
    "vrrp",
    "ah",
    "esp",
    "ip or ip6",
    "not ip",
    "tcp or udp",
    "host 10.0.0.1",
    "src host 10.0.0.1",
    "dst host 10.0.0.1",
    "src and dst host 10.0.0.1",
    "ip host 10.0.0.1",
    "arp host 10.0.0.1",
    "host 10.0.0.1 or 10.0.0.2",
    "net 10.0.0.0/8",
    "src net 192.168.0.0 mask 255.255.0.0",
    "dst net 172.16",
    "ip6 host 2001:db8::1",
    "ip6 net 2001:db8::/32",
    "src net fe80::/10",
    "ether host 00:11:22:33:44:55",
    "ether src 00:11:22:33:44:55",
    "ether dst ff:ff:ff:ff:ff:ff",
    "ether broadcast",
    "ether multicast",
    "ip multicast",
    "ip6 multicast",
    "ip broadcast",
    "port 53",
    "tcp port 80",
    "tcp port 80 or tcp port 443",
    "tcp port 80 or 443",
    "udp dst port 53",
    "tcp src port 1024",
    "sctp port 2905",
    "portrange 1-1023",
    "tcp dst portrange 8000-8080",
    "tcp port http",
    "udp port domain",
    "ip proto 47",
    "ip6 proto 58",
    "proto 17",
    "ether proto 0x88cc",
    "ether proto \\arp",
    "ip protochain 6",
    "ip6 protochain 44",
    "protochain 17",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "tcp[13] = 2",
    "icmp[icmptype] = icmp-echo",
    "icmp6[icmp6type] = icmp6-echo",
    "ip[6:2] & 0x3fff != 0",
    "ip[2:2] > 1500",
    "ip[0] & 0xf > 5",
    "ip[8] < 10",
    "udp[4:2] < 8",
    "tcp[tcp[12] >> 4] = 0",
    "ip[0] / (ip[1] - ip[1]) = 1",
    "ip[0] / ip[1] = 1",
    "ip[0] % 3 = 1",
    "ip[1] << ip[2] = 4",
    "-ip[0] = 0",
    "ether[0] & 1 != 0",
    "ether[12:2] = 0x0800",
    "ether[len - 1] = 0",
    "link[0:4] & 0xffffff00 = 0x01005e00",
    "len > 100",
    "len <= 60",
    "less 64",
    "greater 1000",
    "vlan",
    "vlan 10",
    "vlan and ip",
    "vlan and tcp port 80",
    "vlan 10 and vlan 20",
    "mpls",
    "mpls 100",
    "mpls and ip",
    "mpls 100 and mpls 200 and ip6",
    "pppoed",
    "pppoes",
    "pppoes 7 and ip",
    "geneve",
    "geneve and tcp port 22",
    "llc",
    "llc i",
    "llc s",
    "llc u",
    "llc ui",
    "stp",
    "iso",
    "isis",
    "l1",
    "clnp",
    "ipx",
    "atalk",
    "decnet",
    "decnet host 1.2",
    "inbound",
    "outbound",
    "ifindex 3",
    "tcp and not tcp",
    "not (tcp port 22 or port 53)",
    "ip and (tcp[0:2] > 1024 or udp[0:2] > 1024)",
];

/// Filters pinned as socket filters: each kind of load (constant,
/// variable offset, nested, arithmetic on two loads), metadata and the
/// header walks.
const SOCKET_FILTERS: &[&str] = &[
    "ip",
    "tcp",
    "tcp port 80",
    "port 53",
    "host 10.0.0.1",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcp[12] >> 4] = 0",
    "ip[0] / ip[1] = 1",
    "ip[1] << ip[2] = 4",
    "ether[len - 1] = 0",
    "len > 100",
    "vlan and ip",
    "mpls and ip",
    "pppoes 7 and ip",
    "geneve and tcp port 22",
    "ip protochain 6",
    "ip6 protochain 44",
    "inbound",
    "not (tcp port 22 or port 53)",
    "ip and (tcp[0:2] > 1024 or udp[0:2] > 1024)",
];

/// XDP with fragment support (what `attach` loads on a device at a jumbo
/// MTU): the direct-access copy, then the one that loads with
/// `bpf_xdp_load_bytes`.
const XDP_FRAGS_FILTERS: &[&str] = &[
    "tcp port 80",
    "len > 1000",
    "ether[len - 1] = 0",
    "ip6 protochain 6",
];

/// Filters whose probe functions (loads through `bpf_probe_read_kernel`
/// within the captured length) the snapshots pin.
const PROBE_FILTERS: &[&str] = &[
    "tcp port 80",
    "len > 1000",
    "tcp[tcp[12] >> 4] = 0",
    "ip6 protochain 6",
];

#[test]
fn probe_listings() {
    listings(Target::Probe, false, "probe", PROBE_FILTERS, (1, 0));
}

#[test]
fn xdp_listings() {
    listings(Target::Xdp, false, "xdp", FILTERS, (2, 1));
}

#[test]
fn xdp_frags_listings() {
    listings(Target::Xdp, true, "xdp_frags", XDP_FRAGS_FILTERS, (2, 1));
}

#[test]
fn socket_filter_listings() {
    listings(
        Target::SocketFilter,
        false,
        "socket",
        SOCKET_FILTERS,
        (0x40000, 0),
    );
}

/// Snapshots of `filters` for `target` (`xdp_frags`: with fragment
/// support), returning `verdicts` (on a match, otherwise).
fn listings(target: Target, xdp_frags: bool, prefix: &str, filters: &[&str], verdicts: (i32, i32)) {
    let tables = tables();
    let opts = CompileOptions::new(LinkType::En10mb, target, &tables)
        .verdicts(verdicts.0, verdicts.1)
        .xdp_frags(xdp_frags)
        .netmask(Some(0xffff_ff00));
    let mut seen = std::collections::HashSet::new();
    for expr in filters {
        let n = snapshot_name(prefix, expr);
        assert!(seen.insert(n.clone()), "two filters named {n}");
        let c = compile(expr, &opts).unwrap_or_else(|e| panic!("{}", e.render(expr)));
        let mut text = format!("filter: {expr}\n");
        for w in &c.warnings {
            text.push_str(&format!("warning: {w}\n"));
        }
        text.push_str(&c.object.listing(c.program).unwrap());
        insta::assert_snapshot!(n, text);
    }
}
