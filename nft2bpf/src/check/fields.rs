//! The one table of header fields nft2bpf matches, and the packet
//! metadata it reads.
//!
//! Offsets and widths are nft's protocol templates (`src/proto.c`), in
//! bits from the start of the field's header, counting from the most
//! significant bit of the first byte (network order), and were checked
//! against the bytecode nft 1.0.6 generates (`nft --debug=netlink`): for
//! example `ip dscp ef` loads byte 1 of the network header, masks `0xfc`
//! and compares with `0xb8`; `ip6 flowlabel 5` loads bytes 1-3 and masks
//! `0x0fffff`; `vlan id 10` loads bytes 14-15 of the link layer and masks
//! `0x0fff`.
//!
//! | header | where it starts | field | bit offset | bits | type |
//! |---|---|---|---|---|---|
//! | `ether` | link layer + 0 | `daddr` | 0 | 48 | `ether_addr` |
//! | | | `saddr` | 48 | 48 | `ether_addr` |
//! | | | `type` | 96 | 16 | `ether_type` |
//! | `vlan` | link layer + 14 (the tag after the MAC addresses; nft's `struct vlan_hdr`: TCI, then type) | `pcp` | 0 | 3 | `integer` |
//! | | | `dei`, `cfi` | 3 | 1 | `integer` |
//! | | | `id` | 4 | 12 | `integer` |
//! | | | `type` | 16 | 16 | `ether_type` |
//! | `ip` | network header | `version` | 0 | 4 | `integer` |
//! | | | `hdrlength` | 4 | 4 | `integer` (32-bit words) |
//! | | | `dscp` | 8 | 6 | `dscp` |
//! | | | `ecn` | 14 | 2 | `ecn` |
//! | | | `length` | 16 | 16 | `integer` (total length) |
//! | | | `id` | 32 | 16 | `integer` |
//! | | | `frag-off` | 48 | 16 | `integer` (flags and offset) |
//! | | | `ttl` | 64 | 8 | `integer` |
//! | | | `protocol` | 72 | 8 | `inet_proto` |
//! | | | `checksum` | 80 | 16 | `integer` |
//! | | | `saddr` | 96 | 32 | `ipv4_addr` |
//! | | | `daddr` | 128 | 32 | `ipv4_addr` |
//! | `ip6` | network header | `version` | 0 | 4 | `integer` |
//! | | | `dscp` | 4 | 6 | `dscp` |
//! | | | `ecn` | 10 | 2 | `ecn` |
//! | | | `flowlabel` | 12 | 20 | `integer` |
//! | | | `length` | 32 | 16 | `integer` (payload length) |
//! | | | `nexthdr` | 48 | 8 | `inet_proto` |
//! | | | `hoplimit` | 56 | 8 | `integer` |
//! | | | `saddr` | 64 | 128 | `ipv6_addr` |
//! | | | `daddr` | 192 | 128 | `ipv6_addr` |
//! | `tcp` | transport header | `sport` | 0 | 16 | `inet_service` |
//! | | | `dport` | 16 | 16 | `inet_service` |
//! | | | `sequence` | 32 | 32 | `integer` |
//! | | | `ackseq` | 64 | 32 | `integer` |
//! | | | `doff` | 96 | 4 | `integer` |
//! | | | `reserved` | 100 | 4 | `integer` |
//! | | | `flags` | 104 | 8 | `tcp_flag` |
//! | | | `window` | 112 | 16 | `integer` |
//! | | | `checksum` | 128 | 16 | `integer` |
//! | | | `urgptr` | 144 | 16 | `integer` |
//! | `udp` | transport header | `sport` | 0 | 16 | `inet_service` |
//! | | | `dport` | 16 | 16 | `inet_service` |
//! | | | `length` | 32 | 16 | `integer` |
//! | | | `checksum` | 48 | 16 | `integer` |
//! | `th` | transport header | `sport` | 0 | 16 | `inet_service` |
//! | | | `dport` | 16 | 16 | `inet_service` |
//! | `icmp` | transport header | `type` | 0 | 8 | `icmp_type` |
//! | | | `code` | 8 | 8 | `icmp_code` |
//! | | | `checksum` | 16 | 16 | `integer` |
//! | | | `id` | 32 | 16 | `integer` (nft adds `icmp type { echo-request, echo-reply }`) |
//! | | | `sequence` | 48 | 16 | `integer` (likewise) |
//! | `icmpv6` | transport header | `type` | 0 | 8 | `icmpv6_type` |
//! | | | `code` | 8 | 8 | `icmpv6_code` |
//! | | | `checksum` | 16 | 16 | `integer` |
//! | | | `id` | 32 | 16 | `integer` (nft adds `icmpv6 type { echo-request, echo-reply }`) |
//! | | | `sequence` | 48 | 16 | `integer` (likewise) |
//!
//! Every field is big-endian in the packet. Where the headers are is the
//! kernel's business at a netdev hook (the link layer where the frame
//! starts; the network header after the Ethernet header and, on a tagged
//! frame, after the VLAN tag the driver or the stack took off; the
//! transport header after the IPv4 header's `hdrlength` words or after
//! IPv6's extension headers, never on a fragment but the first) and the
//! lowering's business in XDP and tcx.

use crate::check::types::Type;

/// Where a header's offsets count from: nft's payload bases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Base {
    /// The start of the frame (nft's `@ll`).
    Link,
    /// The network header (nft's `@nh`).
    Network,
    /// The transport header (nft's `@th`).
    Transport,
}

impl Base {
    /// nft's name for the base in raw payload expressions.
    pub fn name(self) -> &'static str {
        match self {
            Base::Link => "ll",
            Base::Network => "nh",
            Base::Transport => "th",
        }
    }
}

/// The headers of the field table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Header {
    /// Ethernet.
    Ether,
    /// The (first) 802.1Q tag.
    Vlan,
    /// IPv4.
    Ip,
    /// IPv6.
    Ip6,
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// Any transport header with ports (`th`): TCP, UDP, UDP-Lite, SCTP,
    /// DCCP.
    Th,
    /// ICMP.
    Icmp,
    /// ICMPv6.
    Icmpv6,
}

impl Header {
    /// The header's keyword.
    pub fn name(self) -> &'static str {
        match self {
            Header::Ether => "ether",
            Header::Vlan => "vlan",
            Header::Ip => "ip",
            Header::Ip6 => "ip6",
            Header::Tcp => "tcp",
            Header::Udp => "udp",
            Header::Th => "th",
            Header::Icmp => "icmp",
            Header::Icmpv6 => "icmpv6",
        }
    }

    /// The header of a keyword.
    pub fn from_name(name: &str) -> Option<Header> {
        Some(match name {
            "ether" => Header::Ether,
            "vlan" => Header::Vlan,
            "ip" => Header::Ip,
            "ip6" => Header::Ip6,
            "tcp" => Header::Tcp,
            "udp" => Header::Udp,
            "th" => Header::Th,
            "icmp" => Header::Icmp,
            "icmpv6" => Header::Icmpv6,
            _ => return None,
        })
    }

    /// The base the header's offsets count from.
    pub fn base(self) -> Base {
        match self {
            Header::Ether | Header::Vlan => Base::Link,
            Header::Ip | Header::Ip6 => Base::Network,
            Header::Tcp | Header::Udp | Header::Th | Header::Icmp | Header::Icmpv6 => {
                Base::Transport
            }
        }
    }

    /// Where the header starts, in bytes from its base: 14 for the VLAN
    /// tag (after the two MAC addresses and the TPID), 0 for the others.
    pub fn base_offset(self) -> u32 {
        match self {
            Header::Vlan => 14,
            _ => 0,
        }
    }
}

/// A field of a header.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Field {
    /// Its header.
    pub header: Header,
    /// Its name after the header's (`saddr`).
    pub name: &'static str,
    /// Offset in bits from the start of the header, from the most
    /// significant bit of the first byte.
    pub offset: u32,
    /// Width in bits.
    pub bits: u32,
    /// nft's type of the field.
    pub ty: Type,
}

/// How to read a field: load `len` bytes at byte `offset` from the base,
/// read them as a big-endian number, shift right by `shift`, keep the low
/// `bits` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Where the field's header counts from.
    pub base: Base,
    /// First byte, from the base.
    pub offset: u32,
    /// Bytes to load (1 to 16).
    pub len: u32,
    /// Right shift after the load.
    pub shift: u32,
    /// Width of the value in bits.
    pub bits: u32,
}

impl Load {
    /// The load of `bits` bits at bit `offset` from `base`.
    pub fn new(base: Base, offset: u32, bits: u32) -> Load {
        let first = offset / 8;
        let end = (offset + bits).div_ceil(8);
        Load {
            base,
            offset: first,
            len: end - first,
            shift: end * 8 - (offset + bits),
            bits,
        }
    }
}

impl Field {
    /// `ip saddr`.
    pub fn full_name(&self) -> String {
        format!("{} {}", self.header.name(), self.name)
    }

    /// The bytes to load and how to get the field from them.
    pub fn load(&self) -> Load {
        Load::new(
            self.header.base(),
            self.header.base_offset() * 8 + self.offset,
            self.bits,
        )
    }
}

/// Builds the table.
const fn f(header: Header, name: &'static str, offset: u32, bits: u32, ty: Type) -> Field {
    Field {
        header,
        name,
        offset,
        bits,
        ty,
    }
}

use Header::*;
use Type::*;

/// Every field nft2bpf knows (see the table in the module's docs).
pub static FIELDS: [Field; 51] = [
    f(Ether, "daddr", 0, 48, EtherAddr),
    f(Ether, "saddr", 48, 48, EtherAddr),
    f(Ether, "type", 96, 16, EtherType),
    f(Vlan, "pcp", 0, 3, Integer),
    f(Vlan, "dei", 3, 1, Integer),
    f(Vlan, "cfi", 3, 1, Integer),
    f(Vlan, "id", 4, 12, Integer),
    f(Vlan, "type", 16, 16, EtherType),
    f(Ip, "version", 0, 4, Integer),
    f(Ip, "hdrlength", 4, 4, Integer),
    f(Ip, "dscp", 8, 6, Dscp),
    f(Ip, "ecn", 14, 2, Ecn),
    f(Ip, "length", 16, 16, Integer),
    f(Ip, "id", 32, 16, Integer),
    f(Ip, "frag-off", 48, 16, Integer),
    f(Ip, "ttl", 64, 8, Integer),
    f(Ip, "protocol", 72, 8, InetProto),
    f(Ip, "checksum", 80, 16, Integer),
    f(Ip, "saddr", 96, 32, Ipv4Addr),
    f(Ip, "daddr", 128, 32, Ipv4Addr),
    f(Ip6, "version", 0, 4, Integer),
    f(Ip6, "dscp", 4, 6, Dscp),
    f(Ip6, "ecn", 10, 2, Ecn),
    f(Ip6, "flowlabel", 12, 20, Integer),
    f(Ip6, "length", 32, 16, Integer),
    f(Ip6, "nexthdr", 48, 8, InetProto),
    f(Ip6, "hoplimit", 56, 8, Integer),
    f(Ip6, "saddr", 64, 128, Ipv6Addr),
    f(Ip6, "daddr", 192, 128, Ipv6Addr),
    f(Tcp, "sport", 0, 16, InetService),
    f(Tcp, "dport", 16, 16, InetService),
    f(Tcp, "sequence", 32, 32, Integer),
    f(Tcp, "ackseq", 64, 32, Integer),
    f(Tcp, "doff", 96, 4, Integer),
    f(Tcp, "reserved", 100, 4, Integer),
    f(Tcp, "flags", 104, 8, TcpFlag),
    f(Tcp, "window", 112, 16, Integer),
    f(Tcp, "checksum", 128, 16, Integer),
    f(Tcp, "urgptr", 144, 16, Integer),
    f(Udp, "sport", 0, 16, InetService),
    f(Udp, "dport", 16, 16, InetService),
    f(Udp, "length", 32, 16, Integer),
    f(Udp, "checksum", 48, 16, Integer),
    f(Th, "sport", 0, 16, InetService),
    f(Th, "dport", 16, 16, InetService),
    f(Icmp, "type", 0, 8, IcmpType),
    f(Icmp, "code", 8, 8, IcmpCode),
    f(Icmp, "checksum", 16, 16, Integer),
    f(Icmpv6, "type", 0, 8, Icmpv6Type),
    f(Icmpv6, "code", 8, 8, Icmpv6Code),
    f(Icmpv6, "checksum", 16, 16, Integer),
];

/// Fields that nft guards with a test of another field of their header
/// (ICMP's echo identifier and sequence number exist only in echo
/// messages), and the values that test accepts.
pub static GUARDED_FIELDS: [(Field, &[u128]); 4] = [
    (f(Icmp, "id", 32, 16, Integer), &[8, 0]),
    (f(Icmp, "sequence", 48, 16, Integer), &[8, 0]),
    (f(Icmpv6, "id", 32, 16, Integer), &[128, 129]),
    (f(Icmpv6, "sequence", 48, 16, Integer), &[128, 129]),
];

/// A field by header and name, and the type values nft's guard on the
/// header's type field accepts (empty: no guard).
pub fn field(header: Header, name: &str) -> Option<(&'static Field, &'static [u128])> {
    if let Some(f) = FIELDS.iter().find(|f| f.header == header && f.name == name) {
        return Some((f, &[]));
    }
    GUARDED_FIELDS
        .iter()
        .find(|(f, _)| f.header == header && f.name == name)
        .map(|(f, guard)| (f, *guard))
}

/// The field names of a header, for errors.
pub fn field_names(header: Header) -> Vec<&'static str> {
    FIELDS
        .iter()
        .chain(GUARDED_FIELDS.iter().map(|(f, _)| f))
        .filter(|f| f.header == header)
        .map(|f| f.name)
        .collect()
}

/// Packet metadata (`meta KEY`) that nft2bpf reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetaKey {
    /// `meta l4proto`: the transport protocol the kernel found (after
    /// IPv6 extension headers), 8 bits.
    L4Proto,
    /// `meta protocol`: the frame's EtherType as the kernel sees it
    /// (`skb->protocol`: the inner type of a frame whose VLAN tag was
    /// taken off), 16 bits, big-endian.
    Protocol,
    /// `meta length`: the packet's length in bytes (`skb->len`), 32 bits.
    Length,
    /// `meta pkttype`: host, broadcast, multicast or other, from the
    /// destination MAC address, 8 bits.
    PktType,
    /// `meta iifname`: the input device's name, 16 bytes zero-padded. In
    /// an ingress chain, the device the chain is attached to; in an egress
    /// chain nft has no input device and reads an empty name.
    IifName,
    /// `meta oifname`: the output device's name: in an egress chain the
    /// chain's device, in an ingress chain empty.
    OifName,
    /// `meta iiftype`: the input device's `ARPHRD_*` type, 16 bits. nft
    /// tests it (`== ether`) before every `ether` and `vlan` field.
    IifType,
}

impl MetaKey {
    /// The key's name after `meta`.
    pub fn name(self) -> &'static str {
        match self {
            MetaKey::L4Proto => "l4proto",
            MetaKey::Protocol => "protocol",
            MetaKey::Length => "length",
            MetaKey::PktType => "pkttype",
            MetaKey::IifName => "iifname",
            MetaKey::OifName => "oifname",
            MetaKey::IifType => "iiftype",
        }
    }

    /// The key of a name.
    pub fn from_name(name: &str) -> Option<MetaKey> {
        [
            MetaKey::L4Proto,
            MetaKey::Protocol,
            MetaKey::Length,
            MetaKey::PktType,
            MetaKey::IifName,
            MetaKey::OifName,
            MetaKey::IifType,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }

    /// nft's type of the key.
    pub fn ty(self) -> Type {
        match self {
            MetaKey::L4Proto => Type::InetProto,
            MetaKey::Protocol => Type::EtherType,
            MetaKey::Length => Type::Integer,
            MetaKey::PktType => Type::PktType,
            MetaKey::IifName | MetaKey::OifName => Type::IfName,
            MetaKey::IifType => Type::IfaceType,
        }
    }

    /// Width in bits.
    pub fn bits(self) -> u32 {
        match self {
            MetaKey::L4Proto | MetaKey::PktType => 8,
            MetaKey::Protocol | MetaKey::IifType => 16,
            MetaKey::Length => 32,
            MetaKey::IifName | MetaKey::OifName => 128,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each field's load, as nft's bytecode shows it (`nft --debug=netlink`
    /// of nft 1.0.6): base, byte offset, length, and the mask nft applies
    /// (in the loaded bytes' order).
    #[test]
    fn loads_match_nft_bytecode() {
        let load = |h, n| field(h, n).unwrap().0.load();
        let mask = |l: Load| ((1u128 << l.bits) - 1) << l.shift;
        // [ payload load 2b @ link header + 14 ] [ bitwise & 0x0fff ]
        let l = load(Vlan, "id");
        assert_eq!(
            (l.base, l.offset, l.len, mask(l)),
            (Base::Link, 14, 2, 0x0fff)
        );
        // vlan pcp: 1b @ link + 14, & 0xe0; dei: & 0x10.
        let l = load(Vlan, "pcp");
        assert_eq!((l.offset, l.len, mask(l)), (14, 1, 0xe0));
        assert_eq!(mask(load(Vlan, "dei")), 0x10);
        assert_eq!(load(Vlan, "type").offset, 16);
        // ip dscp: 1b @ network + 1, & 0xfc.
        let l = load(Ip, "dscp");
        assert_eq!(
            (l.base, l.offset, l.len, mask(l)),
            (Base::Network, 1, 1, 0xfc)
        );
        // ip6 dscp: 2b @ network + 0, & 0x0fc0; flowlabel: 3b @ + 1, & 0x0fffff.
        let l = load(Ip6, "dscp");
        assert_eq!((l.offset, l.len, mask(l)), (0, 2, 0x0fc0));
        let l = load(Ip6, "flowlabel");
        assert_eq!((l.offset, l.len, mask(l)), (1, 3, 0x0fffff));
        // ip hdrlength: & 0x0f; version: & 0xf0.
        assert_eq!(mask(load(Ip, "hdrlength")), 0x0f);
        assert_eq!(mask(load(Ip, "version")), 0xf0);
        // Whole bytes: offsets and lengths.
        let at = |h, n| {
            let l = load(h, n);
            (l.offset, l.len, l.shift)
        };
        assert_eq!(at(Ether, "saddr"), (6, 6, 0));
        assert_eq!(at(Ether, "type"), (12, 2, 0));
        assert_eq!(at(Ip, "saddr"), (12, 4, 0));
        assert_eq!(at(Ip, "daddr"), (16, 4, 0));
        assert_eq!(at(Ip, "protocol"), (9, 1, 0));
        assert_eq!(at(Ip, "ttl"), (8, 1, 0));
        assert_eq!(at(Ip, "length"), (2, 2, 0));
        assert_eq!(at(Ip, "frag-off"), (6, 2, 0));
        assert_eq!(at(Ip6, "nexthdr"), (6, 1, 0));
        assert_eq!(at(Ip6, "hoplimit"), (7, 1, 0));
        assert_eq!(at(Ip6, "saddr"), (8, 16, 0));
        assert_eq!(at(Ip6, "daddr"), (24, 16, 0));
        assert_eq!(at(Tcp, "dport"), (2, 2, 0));
        assert_eq!(at(Tcp, "flags"), (13, 1, 0));
        assert_eq!(at(Udp, "sport"), (0, 2, 0));
        assert_eq!(at(Th, "dport"), (2, 2, 0));
        assert_eq!(at(Icmp, "type"), (0, 1, 0));
        assert_eq!(at(Icmp, "code"), (1, 1, 0));
        assert_eq!(at(Icmp, "id"), (4, 2, 0));
        assert_eq!(at(Icmp, "sequence"), (6, 2, 0));
        assert_eq!(at(Icmpv6, "id"), (4, 2, 0));
    }

    #[test]
    fn guards_and_names() {
        assert_eq!(field(Icmp, "id").unwrap().1, &[8, 0]);
        assert!(field(Ip, "saddr").unwrap().1.is_empty());
        assert!(field(Ip, "nope").is_none());
        assert!(field_names(Vlan).contains(&"cfi"));
    }
}
