//! nft's data types and the symbolic constants it knows for them.
//!
//! Names and descriptions are nft's (`src/datatype.c`, `src/proto.c`,
//! `src/meta.c`), so errors read as nft's do: "datatype mismatch, expected
//! IPv4 address, expression has type Internet protocol".
//!
//! Where nft asks the system (`/etc/protocols` for protocol names through
//! `getprotobyname`, `/etc/services` for ports through `getaddrinfo`, DNS
//! for host names), we use the fixed tables below, so a ruleset means the
//! same on every host: [`PROTOCOLS`] and [`SERVICES`]. Host names are not
//! resolved at all.

use std::fmt;

/// A data type, as nft names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// `integer`: fields without a more precise type (`ip ttl`, `vlan
    /// id`, `meta length`).
    Integer,
    /// `ether_addr`.
    EtherAddr,
    /// `ipv4_addr`.
    Ipv4Addr,
    /// `ipv6_addr`.
    Ipv6Addr,
    /// `inet_proto`: an IP protocol number.
    InetProto,
    /// `inet_service`: a port.
    InetService,
    /// `ether_type`.
    EtherType,
    /// `icmp_type`.
    IcmpType,
    /// `icmp_code`.
    IcmpCode,
    /// `icmpv6_type`.
    Icmpv6Type,
    /// `icmpv6_code`.
    Icmpv6Code,
    /// `tcp_flag`: a bit mask.
    TcpFlag,
    /// `pkt_type`.
    PktType,
    /// `dscp`.
    Dscp,
    /// `ecn`.
    Ecn,
    /// `ifname`: a device name, 16 bytes with zeros after the name.
    IfName,
    /// `iface_type`: an `ARPHRD_*` number.
    IfaceType,
    /// `mark`.
    Mark,
    /// `verdict`: the data of a verdict map.
    Verdict,
}

impl Type {
    /// Every type, for lookups by name.
    pub const ALL: [Type; 19] = [
        Type::Integer,
        Type::EtherAddr,
        Type::Ipv4Addr,
        Type::Ipv6Addr,
        Type::InetProto,
        Type::InetService,
        Type::EtherType,
        Type::IcmpType,
        Type::IcmpCode,
        Type::Icmpv6Type,
        Type::Icmpv6Code,
        Type::TcpFlag,
        Type::PktType,
        Type::Dscp,
        Type::Ecn,
        Type::IfName,
        Type::IfaceType,
        Type::Mark,
        Type::Verdict,
    ];

    /// nft's name, as `type` declarations write it.
    pub fn name(self) -> &'static str {
        match self {
            Type::Integer => "integer",
            Type::EtherAddr => "ether_addr",
            Type::Ipv4Addr => "ipv4_addr",
            Type::Ipv6Addr => "ipv6_addr",
            Type::InetProto => "inet_proto",
            Type::InetService => "inet_service",
            Type::EtherType => "ether_type",
            Type::IcmpType => "icmp_type",
            Type::IcmpCode => "icmp_code",
            Type::Icmpv6Type => "icmpv6_type",
            Type::Icmpv6Code => "icmpv6_code",
            Type::TcpFlag => "tcp_flag",
            Type::PktType => "pkt_type",
            Type::Dscp => "dscp",
            Type::Ecn => "ecn",
            Type::IfName => "ifname",
            Type::IfaceType => "iface_type",
            Type::Mark => "mark",
            Type::Verdict => "verdict",
        }
    }

    /// nft's description, as its errors write it.
    pub fn desc(self) -> &'static str {
        match self {
            Type::Integer => "integer",
            Type::EtherAddr => "Ethernet address",
            Type::Ipv4Addr => "IPv4 address",
            Type::Ipv6Addr => "IPv6 address",
            Type::InetProto => "Internet protocol",
            Type::InetService => "internet network service",
            Type::EtherType => "Ethernet protocol",
            Type::IcmpType => "ICMP type",
            Type::IcmpCode => "icmp code",
            Type::Icmpv6Type => "ICMPv6 type",
            Type::Icmpv6Code => "icmpv6 code",
            Type::TcpFlag => "TCP flag",
            Type::PktType => "packet type",
            Type::Dscp => "Differentiated Services Code Point",
            Type::Ecn => "Explicit Congestion Notification",
            Type::IfName => "network interface name",
            Type::IfaceType => "network interface type",
            Type::Mark => "packet mark",
            Type::Verdict => "netfilter verdict",
        }
    }

    /// The type a `type NAME` declaration names, with its width in bits;
    /// `integer` and unknown names give `None` (nft: "unknown datatype").
    pub fn declared(name: &str) -> Option<(Type, u32)> {
        let ty = Type::ALL.into_iter().find(|t| t.name() == name)?;
        let bits = match ty {
            Type::Integer | Type::Verdict => return None,
            Type::EtherAddr => 48,
            Type::Ipv4Addr => 32,
            Type::Ipv6Addr | Type::IfName => 128,
            Type::InetService | Type::EtherType | Type::IfaceType => 16,
            Type::Mark => 32,
            Type::Dscp => 6,
            Type::Ecn => 2,
            Type::InetProto
            | Type::IcmpType
            | Type::IcmpCode
            | Type::Icmpv6Type
            | Type::Icmpv6Code
            | Type::TcpFlag
            | Type::PktType => 8,
        };
        Some((ty, bits))
    }

    /// Whether values combine as bits (`syn | ack`; `tcp flags syn` means
    /// "syn is set").
    pub fn is_bitmask(self) -> bool {
        self == Type::TcpFlag
    }

    /// Whether the type is an address (a prefix makes sense, a number is
    /// the address read as one big-endian integer).
    pub fn is_address(self) -> bool {
        matches!(self, Type::EtherAddr | Type::Ipv4Addr | Type::Ipv6Addr)
    }

    /// The value of a symbolic constant of this type.
    pub fn symbol(self, word: &str) -> Option<u128> {
        let table: &[(&str, u128)] = match self {
            Type::EtherType => &ETHER_TYPES,
            Type::InetProto => &PROTOCOLS,
            Type::InetService => &SERVICES,
            Type::IcmpType => &ICMP_TYPES,
            Type::IcmpCode => &ICMP_CODES,
            Type::Icmpv6Type => &ICMPV6_TYPES,
            Type::Icmpv6Code => &ICMPV6_CODES,
            Type::TcpFlag => &TCP_FLAGS,
            Type::PktType => &PKT_TYPES,
            Type::Dscp => &DSCP,
            Type::Ecn => &ECN,
            Type::IfaceType => &IFACE_TYPES,
            _ => return None,
        };
        table
            .iter()
            .find(|(name, _)| *name == word)
            .map(|&(_, v)| v)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The keywords nft's scanner turns into constants of type `inet_proto`
/// whatever they stand against (so `ip saddr tcp` is a type mismatch, not
/// a host name), and `redirect`, an `icmp_type`.
pub fn keyword_constant(word: &str) -> Option<(Type, u128)> {
    let proto = match word {
        "tcp" => 6,
        "udp" => 17,
        "udplite" => 136,
        "esp" => 50,
        "ah" => 51,
        "icmp" => 1,
        "igmp" => 2,
        "icmpv6" => 58,
        "comp" => 108,
        "dccp" => 33,
        "sctp" => 132,
        "redirect" => return Some((Type::IcmpType, 5)),
        _ => return None,
    };
    Some((Type::InetProto, proto))
}

/// Ethernet protocols (nft's `ethertype_tbl`).
pub const ETHER_TYPES: [(&str, u128); 6] = [
    ("ip", 0x0800),
    ("arp", 0x0806),
    ("ip6", 0x86dd),
    ("8021q", 0x8100),
    ("8021ad", 0x88a8),
    ("vlan", 0x8100),
];

/// IP protocol names: nft's keywords and the common names of Debian's
/// `/etc/protocols` (nft resolves any name there; we know these).
pub const PROTOCOLS: [(&str, u128); 26] = [
    ("ip", 0),
    ("hopopt", 0),
    ("icmp", 1),
    ("igmp", 2),
    ("ipencap", 4),
    ("tcp", 6),
    ("egp", 8),
    ("udp", 17),
    ("dccp", 33),
    ("ipv6", 41),
    ("ipv6-route", 43),
    ("ipv6-frag", 44),
    ("rsvp", 46),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("icmpv6", 58),
    ("ipv6-icmp", 58),
    ("ipv6-nonxt", 59),
    ("ipv6-opts", 60),
    ("ospf", 89),
    ("pim", 103),
    ("comp", 108),
    ("vrrp", 112),
    ("sctp", 132),
    ("udplite", 136),
];

/// Port names (nft resolves any name of `/etc/services`; we know these
/// common ones, numbered as Debian 12's file numbers them).
pub const SERVICES: [(&str, u128); 39] = [
    ("ftp-data", 20),
    ("ftp", 21),
    ("ssh", 22),
    ("telnet", 23),
    ("smtp", 25),
    ("domain", 53),
    ("bootps", 67),
    ("bootpc", 68),
    ("tftp", 69),
    ("http", 80),
    ("kerberos", 88),
    ("pop3", 110),
    ("sunrpc", 111),
    ("auth", 113),
    ("ntp", 123),
    ("netbios-ns", 137),
    ("netbios-dgm", 138),
    ("netbios-ssn", 139),
    ("imap2", 143),
    ("snmp", 161),
    ("snmp-trap", 162),
    ("bgp", 179),
    ("ldap", 389),
    ("https", 443),
    ("microsoft-ds", 445),
    ("isakmp", 500),
    ("syslog", 514),
    ("submission", 587),
    ("ldaps", 636),
    ("rsync", 873),
    ("imaps", 993),
    ("pop3s", 995),
    ("openvpn", 1194),
    ("ms-sql-s", 1433),
    ("mysql", 3306),
    ("ms-wbt-server", 3389),
    ("ipsec-nat-t", 4500),
    ("postgresql", 5432),
    ("http-alt", 8080),
];

/// ICMP types (nft's `icmp_type_tbl`).
pub const ICMP_TYPES: [(&str, u128); 15] = [
    ("echo-reply", 0),
    ("destination-unreachable", 3),
    ("source-quench", 4),
    ("redirect", 5),
    ("echo-request", 8),
    ("router-advertisement", 9),
    ("router-solicitation", 10),
    ("time-exceeded", 11),
    ("parameter-problem", 12),
    ("timestamp-request", 13),
    ("timestamp-reply", 14),
    ("info-request", 15),
    ("info-reply", 16),
    ("address-mask-request", 17),
    ("address-mask-reply", 18),
];

/// ICMP codes (nft's `icmp_code_tbl`).
pub const ICMP_CODES: [(&str, u128); 8] = [
    ("net-unreachable", 0),
    ("host-unreachable", 1),
    ("prot-unreachable", 2),
    ("port-unreachable", 3),
    ("frag-needed", 4),
    ("net-prohibited", 9),
    ("host-prohibited", 10),
    ("admin-prohibited", 13),
];

/// ICMPv6 types (nft's `icmp6_type_tbl`).
pub const ICMPV6_TYPES: [(&str, u128); 19] = [
    ("destination-unreachable", 1),
    ("packet-too-big", 2),
    ("time-exceeded", 3),
    ("parameter-problem", 4),
    ("echo-request", 128),
    ("echo-reply", 129),
    ("mld-listener-query", 130),
    ("mld-listener-report", 131),
    ("mld-listener-done", 132),
    ("mld-listener-reduction", 132),
    ("nd-router-solicit", 133),
    ("nd-router-advert", 134),
    ("nd-neighbor-solicit", 135),
    ("nd-neighbor-advert", 136),
    ("nd-redirect", 137),
    ("router-renumbering", 138),
    ("ind-neighbor-solicit", 141),
    ("ind-neighbor-advert", 142),
    ("mld2-listener-report", 143),
];

/// ICMPv6 codes (nft's `icmpv6_code_tbl`).
pub const ICMPV6_CODES: [(&str, u128); 6] = [
    ("no-route", 0),
    ("admin-prohibited", 1),
    ("addr-unreachable", 3),
    ("port-unreachable", 4),
    ("policy-fail", 5),
    ("reject-route", 6),
];

/// TCP flags (nft's `tcp_flag_tbl`).
pub const TCP_FLAGS: [(&str, u128); 8] = [
    ("fin", 0x01),
    ("syn", 0x02),
    ("rst", 0x04),
    ("psh", 0x08),
    ("ack", 0x10),
    ("urg", 0x20),
    ("ecn", 0x40),
    ("cwr", 0x80),
];

/// Packet types (nft's `pkttype_type_tbl`: the kernel's `PACKET_*`).
pub const PKT_TYPES: [(&str, u128); 5] = [
    ("host", 0),
    ("unicast", 0),
    ("broadcast", 1),
    ("multicast", 2),
    ("other", 3),
];

/// DSCP names (nft's `dscp_type_tbl`).
pub const DSCP: [(&str, u128); 22] = [
    ("cs0", 0x00),
    ("cs1", 0x08),
    ("cs2", 0x10),
    ("cs3", 0x18),
    ("cs4", 0x20),
    ("cs5", 0x28),
    ("cs6", 0x30),
    ("cs7", 0x38),
    ("be", 0x00),
    ("af11", 0x0a),
    ("af12", 0x0c),
    ("af13", 0x0e),
    ("af21", 0x12),
    ("af22", 0x14),
    ("af23", 0x16),
    ("af31", 0x1a),
    ("af32", 0x1c),
    ("af33", 0x1e),
    ("af41", 0x22),
    ("af42", 0x24),
    ("af43", 0x26),
    ("ef", 0x2e),
];

/// ECN code points (nft's `ecn_type_tbl`).
pub const ECN: [(&str, u128); 4] = [("not-ect", 0), ("ect1", 1), ("ect0", 2), ("ce", 3)];

/// Interface types (nft's `arphrd_tbl`, the ones a netdev hook meets).
pub const IFACE_TYPES: [(&str, u128); 3] = [("ether", 1), ("loopback", 772), ("ppp", 512)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_symbols() {
        assert_eq!(Type::declared("ipv4_addr"), Some((Type::Ipv4Addr, 32)));
        assert_eq!(Type::declared("integer"), None);
        assert_eq!(Type::declared("foo"), None);
        assert_eq!(Type::Dscp.symbol("ef"), Some(46));
        assert_eq!(Type::TcpFlag.symbol("ack"), Some(0x10));
        assert_eq!(Type::InetService.symbol("https"), Some(443));
        assert_eq!(Type::Ipv4Addr.symbol("tcp"), None);
        assert_eq!(keyword_constant("tcp"), Some((Type::InetProto, 6)));
    }
}
