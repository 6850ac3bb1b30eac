//! What nft accepts in a netdev table that nft2bpf refuses, and why.
//!
//! XDP runs before the kernel builds a socket buffer; tcx runs where the
//! netdev hooks run, but the same file must mean the same at both. So
//! what needs the stack (connection tracking, routing, sockets), what
//! needs netfilter's own machinery (queues, nflog, iptables extensions,
//! flowtables), and what nft2bpf does not implement yet is refused by
//! name, each with one line of why:
//!
//! | construct | why |
//! |---|---|
//! | `ct ...`, `notrack`, `ct ... set`, `ct helper`/`timeout`/`expectation` objects | connection tracking runs in the stack, after XDP and tc (and nft itself refuses `ct` at netdev hooks: the kernel answers EPROTO) |
//! | `snat`, `dnat`, `masquerade`, `redirect` | NAT needs connection tracking |
//! | `synproxy` (statement and object) | SYN proxying needs connection tracking |
//! | `fib ...` | a FIB lookup is the stack's routing decision |
//! | `rt ...` | route data exists only after the routing decision |
//! | `socket ...`, `tproxy`, `meta skuid`/`skgid`/`cgroup` | sockets belong to the stack |
//! | `ipsec ...`, `meta ipsec` | IPsec state comes from the stack's xfrm lookup |
//! | `osf ...` | OS fingerprinting needs the kernel's `nfnetlink_osf` table |
//! | `queue` | queueing to user space is netfilter's (`nfnetlink_queue`) |
//! | `log group`, `snaplen`, `queue-threshold`; `log level audit` | records go to nft2bpf's ring buffer, not to nflog or the audit log |
//! | `dup` | XDP cannot clone a packet |
//! | `reject` | answering with a TCP reset or an ICMP error is not implemented |
//! | `fwd ip|ip6 to ADDR` | neighbour resolution is the stack's |
//! | `meta mark`, `mark`, `meta priority` | the mark and priority belong to the socket buffer, which XDP does not have |
//! | `meta nftrace`, `meta rtclassid`, `meta secmark` | netfilter's tracing, routing realms and LSM labels do not exist here |
//! | `meta iif`, `meta oif` | nft turns the name into an index when it loads the rule; match `iifname`/`oifname` |
//! | `meta ibrname`, `obrname`, `ibriport`, `obriport` | bridge ports exist only in the bridge family |
//! | `meta cpu`, `meta random`, `numgen` | the CPU or the random number nft would use is not the one XDP sees |
//! | `meta time`, `day`, `hour` | not implemented |
//! | `meta iifgroup`, `oifgroup`, `oiftype`, `nfproto`, `sdif`, ... | not implemented |
//! | `jhash`, `symhash` | not implemented |
//! | `ip option`, `tcp option`, IPv6 extension headers (`exthdr`, `hbh`, `rt0`, `rt2`, `srh`, `frag`, `dst`, `mh`) | not implemented |
//! | `arp`, `sctp`, `dccp`, `udplite`, `igmp`, `ah`, `esp`, `comp` headers | not implemented (nft2bpf matches `ether`, `vlan`, `ip`, `ip6`, `tcp`, `udp`, `th`, `icmp`, `icmpv6`) |
//! | `X set V` (`meta mark set`, `ip ttl set`, ...) | changing packets or their metadata is not implemented |
//! | `delete @set`, `reset`, `meter` | deleting from sets on the packet path, and meters by their old syntax, are not implemented (`add @set` and `update @set` are, with a `limit`: [`crate::compile::dynset`]) |
//! | counters and quotas per element (`add @set { KEY counter }`), maps changed from the packet path, timeouts in interval sets | not implemented |
//! | maps with data other than `verdict` | their only users are statements nft2bpf refuses (NAT, marks) |
//! | `flow add @ft`, `flowtable` objects | flowtables are the stack's fast path, not a filter |
//! | `limit NAME { }` objects, `limit name` | not implemented (anonymous limits are) |
//! | `xt ...` | iptables extensions run only inside netfilter |
//! | chain flags (`offload`) | hardware offload is netfilter's |
//! | families other than `netdev`, hooks other than `ingress` and `egress` | XDP and tcx see frames at a device |

/// Why nft2bpf refuses a construct, by the name the parser gives it
/// (`ct state`, `reject`, `meta mark`, ...): the whole name first, then
/// its first word.
pub fn why(what: &str) -> Option<&'static str> {
    let first = what.split(' ').next().unwrap_or(what);
    REFUSED
        .iter()
        .find(|(name, _)| *name == what)
        .or_else(|| REFUSED.iter().find(|(name, _)| *name == first))
        .map(|(_, why)| *why)
}

/// The message for a refused construct: "`WHAT`: WHY".
pub fn message(what: &str) -> String {
    match why(what) {
        Some(why) => format!("`{what}`: {why}"),
        None => format!("`{what}`: not supported by nft2bpf"),
    }
}

const CONNTRACK: &str = "connection tracking does not exist before the stack, at XDP and tc hooks";
const NOT_YET: &str = "not implemented in nft2bpf";
const NO_SKB: &str = "it belongs to the socket buffer, which XDP does not have";
const HEADERS: &str = "not implemented in nft2bpf, which matches ether, vlan, ip, ip6, tcp, udp, th, icmp and icmpv6 headers";
const SOCKETS: &str = "sockets belong to the stack, which runs after XDP and tc";
const SETS_CHANGED: &str = "this way of changing sets from the packet path is not implemented in nft2bpf (`add @set { KEY }` and `update @set { KEY }` are)";

/// The refused constructs and why (see the module's table).
static REFUSED: &[(&str, &str)] = &[
    ("ct", CONNTRACK),
    ("notrack", CONNTRACK),
    ("ct helper", CONNTRACK),
    ("ct timeout", CONNTRACK),
    ("ct expectation", CONNTRACK),
    (
        "snat",
        "NAT needs connection tracking, which does not exist before the stack",
    ),
    (
        "dnat",
        "NAT needs connection tracking, which does not exist before the stack",
    ),
    (
        "masquerade",
        "NAT needs connection tracking, which does not exist before the stack",
    ),
    (
        "redirect",
        "NAT needs connection tracking, which does not exist before the stack",
    ),
    (
        "synproxy",
        "SYN proxying needs connection tracking, which does not exist before the stack",
    ),
    (
        "fib",
        "a FIB lookup is the stack's routing decision, which comes after XDP and tc ingress",
    ),
    (
        "rt",
        "route data exists only after the stack's routing decision",
    ),
    ("socket", SOCKETS),
    ("tproxy", SOCKETS),
    ("meta skuid", SOCKETS),
    ("meta skgid", SOCKETS),
    ("meta cgroup", SOCKETS),
    ("ipsec", "IPsec state comes from the stack's xfrm lookup"),
    (
        "meta ipsec",
        "IPsec state comes from the stack's xfrm lookup",
    ),
    (
        "osf",
        "OS fingerprinting needs the kernel's nfnetlink_osf table",
    ),
    (
        "queue",
        "queueing packets to user space is netfilter's (nfnetlink_queue)",
    ),
    (
        "log group",
        "log records go to nft2bpf's ring buffer, not to nflog",
    ),
    (
        "log snaplen",
        "log records go to nft2bpf's ring buffer, not to nflog",
    ),
    (
        "log queue-threshold",
        "log records go to nft2bpf's ring buffer, not to nflog",
    ),
    (
        "log level audit",
        "log records go to nft2bpf's ring buffer, not to the audit log",
    ),
    ("dup", "XDP cannot clone a packet"),
    (
        "reject",
        "answering with a TCP reset or an ICMP error is not implemented in nft2bpf",
    ),
    (
        "fwd ip",
        "forwarding to a neighbour needs the stack's neighbour table",
    ),
    (
        "fwd ip6",
        "forwarding to a neighbour needs the stack's neighbour table",
    ),
    ("meta mark", NO_SKB),
    ("meta priority", NO_SKB),
    (
        "meta nftrace",
        "netfilter's tracing does not exist at XDP and tc hooks",
    ),
    (
        "meta rtclassid",
        "route realms exist only after the stack's routing decision",
    ),
    (
        "meta secmark",
        "LSM labels are set by netfilter, not before it",
    ),
    (
        "meta iif",
        "nft turns the name into an index when it loads the rule; match `meta iifname`",
    ),
    (
        "meta oif",
        "nft turns the name into an index when it loads the rule; match `meta oifname`",
    ),
    (
        "meta ibrname",
        "bridge ports exist only in the bridge family",
    ),
    (
        "meta obrname",
        "bridge ports exist only in the bridge family",
    ),
    (
        "meta ibriport",
        "bridge ports exist only in the bridge family",
    ),
    (
        "meta obriport",
        "bridge ports exist only in the bridge family",
    ),
    (
        "meta cpu",
        "the CPU nft would see is not always the one that runs XDP (RPS moves packets)",
    ),
    (
        "meta random",
        "a random number per packet cannot give nft's verdict on the same packet",
    ),
    (
        "numgen",
        "a number generated per packet cannot give nft's verdict on the same packet",
    ),
    ("jhash", NOT_YET),
    ("symhash", NOT_YET),
    (
        "ip option",
        "IPv4 option matches are not implemented in nft2bpf",
    ),
    (
        "tcp option",
        "TCP option matches are not implemented in nft2bpf",
    ),
    (
        "exthdr",
        "IPv6 extension header matches are not implemented in nft2bpf",
    ),
    (
        "hbh",
        "IPv6 extension header matches are not implemented in nft2bpf",
    ),
    (
        "rt0",
        "IPv6 extension header matches are not implemented in nft2bpf",
    ),
    (
        "rt2",
        "IPv6 extension header matches are not implemented in nft2bpf",
    ),
    (
        "srh",
        "IPv6 extension header matches are not implemented in nft2bpf",
    ),
    (
        "frag",
        "IPv6 extension header matches are not implemented in nft2bpf",
    ),
    (
        "dst",
        "IPv6 extension header matches are not implemented in nft2bpf",
    ),
    (
        "mh",
        "IPv6 extension header matches are not implemented in nft2bpf",
    ),
    ("arp", HEADERS),
    ("sctp", HEADERS),
    ("dccp", HEADERS),
    ("udplite", HEADERS),
    ("igmp", HEADERS),
    ("ah", HEADERS),
    ("esp", HEADERS),
    ("comp", HEADERS),
    (
        "set",
        "changing packets or their metadata is not implemented in nft2bpf",
    ),
    ("add", SETS_CHANGED),
    ("update", SETS_CHANGED),
    ("delete", SETS_CHANGED),
    ("reset", SETS_CHANGED),
    ("meter", SETS_CHANGED),
    (
        "map data",
        "maps whose data is not a verdict serve statements nft2bpf refuses (NAT, marks)",
    ),
    ("flow", "flowtables are the stack's fast path, not a filter"),
    (
        "flowtable",
        "flowtables are the stack's fast path, not a filter",
    ),
    (
        "limit",
        "named limits are not implemented in nft2bpf (anonymous `limit rate` is)",
    ),
    ("xt", "iptables extensions run only inside netfilter"),
    ("secmark", "LSM labels are set by netfilter, not before it"),
    ("chain flags", "hardware offload is netfilter's"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_find_their_reason() {
        assert_eq!(
            message("ct state"),
            "`ct state`: connection tracking does not exist before the stack, at XDP and tc hooks"
        );
        assert!(message("meta mark").contains("XDP does not have"));
        assert!(message("meta iif").contains("iifname"));
        assert_eq!(message("wibble"), "`wibble`: not supported by nft2bpf");
    }
}
