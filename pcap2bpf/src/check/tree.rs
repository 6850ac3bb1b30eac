//! The checked tree: what the checks hand to lowering.
//!
//! Names are resolved, numbers are in range and every qualifier
//! combination is one libpcap accepts for the link type.

use crate::numbers::{IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP};
use crate::syntax::ast::{BoolTree, Dir, Primitive, Proto, Span};
use crate::syntax::chain::drop_left_chain;

/// A primitive with its operands resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Atom {
    /// IPv4 (or ARP/RARP) address match: `addr & mask` against the field.
    Ipv4Host {
        /// `None`: ip, arp and rarp; else one of them.
        proto: Option<Ipv4Proto>,
        /// Which address(es).
        dir: Side,
        /// Network-order value, already masked.
        addr: u32,
        /// Mask.
        mask: u32,
    },
    /// IPv6 address match.
    Ipv6Host {
        /// Which address(es).
        dir: Side,
        /// Address.
        addr: [u8; 16],
        /// Mask.
        mask: [u8; 16],
    },
    /// DECnet address match.
    DecnetHost {
        /// Which address(es).
        dir: Side,
        /// The 16-bit DECnet address.
        addr: u16,
    },
    /// Ethernet address match.
    EtherHost {
        /// Which address(es).
        dir: Side,
        /// The MAC.
        mac: [u8; 6],
    },
    /// Port range match (`port N` is `lo == hi`).
    Port {
        /// `None`: tcp, udp and sctp; else one of them.
        proto: Option<Transport>,
        /// Which port(s).
        dir: Side,
        /// Lowest port.
        lo: u16,
        /// Highest port.
        hi: u16,
        /// Written as `portrange`.
        range: bool,
    },
    /// `[link|ip|ip6|iso|isis] proto N`.
    Proto {
        /// The layer; `None` is ip or ip6.
        layer: Option<ProtoLayer>,
        /// The protocol number.
        value: u32,
    },
    /// `[ip|ip6] protochain N`.
    ProtoChain {
        /// `None` is ip or ip6.
        layer: Option<Proto>,
        /// The protocol number.
        value: u32,
        /// A `vlan` comes before it in the filter (libpcap generates
        /// code in source order): where the tag may be in metadata (tc,
        /// socket filters) the payload offset is then variable, which
        /// `protochain` does not support.
        after_vlan: bool,
    },
    /// `inbound` (`outbound: false`) or `outbound`.
    Direction {
        /// `outbound`.
        outbound: bool,
        /// The link layer here has a direction field (Linux cooked v1
        /// and v2); elsewhere only a live hook knows the direction, and
        /// a capture file does not have it.
        in_header: bool,
        /// The link-layer type here, as libpcap's messages name it.
        dlt: &'static str,
    },
    /// `ifindex N`.
    IfIndex {
        /// The interface index.
        index: u32,
        /// The link layer here has an interface index field (Linux
        /// cooked v2); elsewhere only a live hook knows the interface,
        /// and a capture file does not have it.
        in_header: bool,
        /// The link-layer type here, as libpcap's messages name it.
        dlt: &'static str,
    },
    /// Any other primitive, checked and lowered as written.
    Prim(Primitive),
}

/// A checked expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Both (one box for the two: half the allocations).
    And(Box<(Checked, Checked)>),
    /// Either.
    Or(Box<(Checked, Checked)>),
    /// Negation.
    Not(Box<Checked>),
    /// A test, with its source span.
    Atom(Atom, Span),
}

impl Drop for Checked {
    fn drop(&mut self) {
        drop_left_chain(self);
    }
}

/// `And` and `Or` chains are walked by loops (see [`BoolTree`]).
impl BoolTree for Checked {
    fn operands(&self) -> Option<(bool, &Checked, &Checked)> {
        match self {
            Checked::And(ab) => Some((true, &ab.0, &ab.1)),
            Checked::Or(ab) => Some((false, &ab.0, &ab.1)),
            Checked::Not(..) | Checked::Atom(..) => None,
        }
    }

    fn take_left(&mut self) -> Option<Checked> {
        match self {
            Checked::And(ab) | Checked::Or(ab) => Some(std::mem::replace(
                &mut ab.0,
                Checked::Atom(Atom::Prim(Primitive::Less(0)), Span::default()),
            )),
            Checked::Not(..) | Checked::Atom(..) => None,
        }
    }
}

/// A transport protocol with ports: what `port` and `portrange` match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Transport {
    /// The transport a protocol qualifier names, if it has ports.
    pub fn of(p: Proto) -> Option<Transport> {
        match p {
            Proto::Tcp => Some(Transport::Tcp),
            Proto::Udp => Some(Transport::Udp),
            Proto::Sctp => Some(Transport::Sctp),
            _ => None,
        }
    }

    /// Its name in filters and messages.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
            Transport::Sctp => "sctp",
        }
    }

    /// Its IP protocol number.
    pub fn ipproto(self) -> u32 {
        match self {
            Transport::Tcp => IPPROTO_TCP,
            Transport::Udp => IPPROTO_UDP,
            Transport::Sctp => IPPROTO_SCTP,
        }
    }
}

/// Which address or port of a packet a test is on: a direction
/// qualifier other than the 802.11 ones, which the checks refuse for
/// everything they let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// `src`.
    Src,
    /// `dst`.
    Dst,
    /// `src or dst`, also when no direction is given.
    SrcOrDst,
    /// `src and dst`.
    SrcAndDst,
}

impl Side {
    /// The side `dir` names; `None` for `addr1`..`addr4`, `ra` and `ta`.
    pub fn of(dir: Dir) -> Option<Side> {
        match dir {
            Dir::Src => Some(Side::Src),
            Dir::Dst => Some(Side::Dst),
            Dir::Default | Dir::SrcOrDst => Some(Side::SrcOrDst),
            Dir::SrcAndDst => Some(Side::SrcAndDst),
            Dir::Addr(_) | Dir::Ra | Dir::Ta => None,
        }
    }
}

/// A protocol that carries IPv4 addresses: what `ip host`, `arp host`
/// and `rarp host` match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ipv4Proto {
    /// IPv4.
    Ip,
    /// ARP.
    Arp,
    /// Reverse ARP.
    Rarp,
}

/// The layer whose protocol field `proto N` tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtoLayer {
    /// `link proto`, `ether proto`: the EtherType (or LLC SAP).
    Link,
    /// `ip proto`.
    Ip,
    /// `ip6 proto`: the next header, also after a fragment header.
    Ip6,
    /// `iso proto`: the OSI network layer protocol.
    Iso,
    /// `isis proto`: the IS-IS PDU type.
    Isis,
}
