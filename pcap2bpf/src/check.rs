//! The semantic checks of libpcap's gencode.c, applied in parse order.
//!
//! libpcap generates code left to right and some primitives change the
//! context of everything after them (`mpls` forbids a later `vlan`,
//! `pppoes` makes the link PPP, `geneve` makes offsets variable), so the
//! checker walks the tree in source order with that state.

use std::net::IpAddr;

use crate::LinkType;
use crate::ast::*;
use crate::error::CompileError;
use crate::resolve::Resolver;

/// A primitive with its operands resolved and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Atom {
    /// IPv4 (or ARP/RARP) address match: `addr & mask` against the field.
    Ipv4Host {
        /// `None` (ip, arp and rarp), `Ip`, `Arp` or `Rarp`.
        proto: Option<Proto>,
        /// Which address(es).
        dir: Dir,
        /// Network-order value, already masked.
        addr: u32,
        /// Mask.
        mask: u32,
    },
    /// IPv6 address match.
    Ipv6Host {
        /// Which address(es).
        dir: Dir,
        /// Address.
        addr: [u8; 16],
        /// Mask.
        mask: [u8; 16],
    },
    /// DECnet address match.
    DecnetHost {
        /// Which address(es).
        dir: Dir,
        /// The 16-bit DECnet address.
        addr: u16,
    },
    /// Ethernet address match.
    EtherHost {
        /// Which address(es).
        dir: Dir,
        /// The MAC.
        mac: [u8; 6],
    },
    /// Port range match (`port N` is `lo == hi`).
    Port {
        /// `None`: tcp, udp and sctp; else one of them.
        proto: Option<Proto>,
        /// Which port(s).
        dir: Dir,
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
        layer: Option<Proto>,
        /// The protocol number.
        value: u32,
    },
    /// `[ip|ip6] protochain N`.
    ProtoChain {
        /// `None` is ip or ip6.
        layer: Option<Proto>,
        /// The protocol number.
        value: u32,
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

/// The link layer as libpcap's code generator sees it at a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Ether,
    Raw,
    Sll,
    Sll2,
    Null,
    Loop,
    Ppp,
}

impl Link {
    fn name(self) -> &'static str {
        match self {
            Link::Ether => "Ethernet",
            Link::Raw => "Raw IP",
            Link::Sll => "Linux cooked v1",
            Link::Sll2 => "Linux cooked v2",
            Link::Null => "BSD loopback",
            Link::Loop => "OpenBSD loopback",
            Link::Ppp => "PPP",
        }
    }
}

/// Walks the syntax tree in source order.
pub struct Checker<'a> {
    link: Link,
    resolver: &'a dyn Resolver,
    netmask: Option<u32>,
    after_mpls: bool,
    variable_offsets: bool,
}

type R<T> = Result<T, CompileError>;

const ETHER_ONLY: &str =
    "ethernet addresses supported only on ethernet/FDDI/token ring/802.11/ATM LANE/Fibre Channel";

impl<'a> Checker<'a> {
    /// A checker for `link`; `netmask` is needed only by `ip broadcast`.
    pub fn new(link: LinkType, resolver: &'a dyn Resolver, netmask: Option<u32>) -> Self {
        let link = match link {
            LinkType::En10mb => Link::Ether,
            LinkType::Raw => Link::Raw,
            LinkType::LinuxSll => Link::Sll,
            LinkType::LinuxSll2 => Link::Sll2,
            LinkType::Null => Link::Null,
            LinkType::Loop => Link::Loop,
        };
        Checker {
            link,
            resolver,
            netmask,
            after_mpls: false,
            variable_offsets: false,
        }
    }

    /// Checks `e`, returning the resolved tree.
    pub fn check(&mut self, e: &Expr) -> R<Checked> {
        Ok(match e {
            Expr::And(ab) => Checked::And(Box::new((self.check(&ab.0)?, self.check(&ab.1)?))),
            Expr::Or(ab) => Checked::Or(Box::new((self.check(&ab.0)?, self.check(&ab.1)?))),
            Expr::Not(a, _) => Checked::Not(Box::new(self.check(a)?)),
            Expr::Prim(p, span) => {
                if self.after_mpls && !over_mpls_ok(p) {
                    return Err(CompileError::new("unsupported protocol over mpls", *span));
                }
                self.prim(p, *span)?
            }
        })
    }

    fn prim(&mut self, p: &Primitive, span: Span) -> R<Checked> {
        let err = |m: String| CompileError::new(m, span);
        let atom = |a: Atom| Ok(Checked::Atom(a, span));
        match p {
            Primitive::Qualified {
                qual,
                value,
                value_span,
            } => self.qualified(*qual, value, *value_span),
            Primitive::Proto(pr) => match pr {
                Proto::Link => Err(err("link layer applied in wrong context".into())),
                Proto::Radio => Err(err("'radio' is not a valid protocol type".into())),
                _ => atom(Atom::Prim(p.clone())),
            },
            Primitive::Relation(_, a, b) => {
                self.arith(a)?;
                self.arith(b)?;
                atom(Atom::Prim(p.clone()))
            }
            Primitive::Broadcast(pr) => match pr {
                None | Some(Proto::Link) if self.link == Link::Ether => atom(Atom::Prim(p.clone())),
                None | Some(Proto::Link) => Err(err("not a broadcast link".into())),
                Some(Proto::Ip) if self.netmask.is_none() => Err(err(
                    "netmask not known, so 'ip broadcast' not supported".into(),
                )),
                Some(Proto::Ip) => atom(Atom::Prim(p.clone())),
                _ => Err(err("only link-layer/IP broadcast filters supported".into())),
            },
            Primitive::Multicast(pr) => match pr {
                None | Some(Proto::Link) if self.link == Link::Ether => atom(Atom::Prim(p.clone())),
                None | Some(Proto::Link) => Err(err("link-layer multicast filters supported only on ethernet/FDDI/token ring/ARCNET/802.11/ATM LANE/Fibre Channel".into())),
                Some(Proto::Ip | Proto::Ip6) => atom(Atom::Prim(p.clone())),
                _ => Err(err("only IP multicast filters supported on ethernet/FDDI/token ring/ARCNET/802.11/ATM LANE/Fibre Channel".into())),
            },
            Primitive::Vlan(n) => {
                if let Some(n) = n.filter(|n| *n > 4095) {
                    return Err(err(format!("VLAN tag {n} greater than maximum 4095")));
                }
                if self.after_mpls {
                    return Err(err("no VLAN match after MPLS".into()));
                }
                if self.link != Link::Ether {
                    return Err(err(format!("no VLAN support for {}", self.link.name())));
                }
                atom(Atom::Prim(p.clone()))
            }
            Primitive::Mpls(n) => {
                if !self.after_mpls && !matches!(self.link, Link::Ether | Link::Ppp) {
                    return Err(err(format!("no MPLS support for {}", self.link.name())));
                }
                if let Some(n) = n.filter(|n| *n > 0xfffff) {
                    return Err(err(format!("MPLS label {n} greater than maximum 1048575")));
                }
                self.after_mpls = true;
                atom(Atom::Prim(p.clone()))
            }
            Primitive::Pppoes(n) => {
                if let Some(n) = n.filter(|n| *n > 0xffff) {
                    return Err(err(format!(
                        "PPPoE session number {n} greater than maximum 65535"
                    )));
                }
                self.link = Link::Ppp;
                atom(Atom::Prim(p.clone()))
            }
            Primitive::Geneve(n) => {
                if let Some(n) = n.filter(|n| *n > 0xffffff) {
                    return Err(err(format!("Geneve VNI {n} greater than maximum 16777215")));
                }
                // What follows is about the encapsulated Ethernet frame.
                self.variable_offsets = true;
                self.link = Link::Ether;
                atom(Atom::Prim(p.clone()))
            }
            Primitive::Llc(_) => {
                if self.link != Link::Ether {
                    return Err(err(format!("'llc' not supported for {}", self.link.name())));
                }
                atom(Atom::Prim(p.clone()))
            }
            Primitive::OtherLink(k) => Err(err(match *k {
                "type" | "subtype" => "802.11 link-layer types supported only on 802.11".into(),
                "dir" => "frame direction supported only with 802.11 headers".into(),
                "ifname" | "rset" | "rnr" | "srnr" | "reason" | "action" => {
                    format!("{k} supported only on PF linktype")
                }
                "fisu" | "lssu" | "msu" | "hfisu" | "hlssu" | "hmsu" => {
                    format!("'{k}' supported only on MTP2")
                }
                "sio" | "opc" | "dpc" | "sls" | "hsio" | "hopc" | "hdpc" | "hsls" => {
                    format!("'{k}' supported only on SS7")
                }
                _ => format!("'{k}' supported only on raw ATM"),
            })),
            Primitive::Less(_)
            | Primitive::Greater(_)
            | Primitive::Byte(..)
            | Primitive::Inbound
            | Primitive::Outbound
            | Primitive::IfIndex(_)
            | Primitive::Pppoed => atom(Atom::Prim(p.clone())),
        }
    }

    fn arith(&self, a: &Arith) -> R<()> {
        match a {
            Arith::Num(..) | Arith::Len(_) => Ok(()),
            Arith::Neg(a, _) => self.arith(a),
            Arith::Binary(op, l, r) => {
                self.arith(l)?;
                self.arith(r)?;
                match (op, &**r) {
                    (ArithOp::Div, Arith::Num(0, s)) => {
                        Err(CompileError::new("division by zero", *s))
                    }
                    (ArithOp::Mod, Arith::Num(0, s)) => {
                        Err(CompileError::new("modulus by zero", *s))
                    }
                    (ArithOp::Shl | ArithOp::Shr, Arith::Num(n, s)) if *n > 31 => {
                        Err(CompileError::new("shift by more than 31 bits", *s))
                    }
                    _ => Ok(()),
                }
            }
            Arith::Load {
                proto,
                index,
                size,
                span,
            } => {
                self.arith(index)?;
                if !matches!(size, 1 | 2 | 4) {
                    return Err(CompileError::new("data size must be 1, 2, or 4", *span));
                }
                use Proto::*;
                match proto {
                    Radio => Err(CompileError::new(
                        "radio information not present in capture",
                        *span,
                    )),
                    Link | Ip | Arp | Rarp | Atalk | Decnet | Sca | Lat | Moprc | Mopdl | Ip6
                    | Sctp | Tcp | Udp | Icmp | Igmp | Igrp | Pim | Vrrp | Carp | Icmp6 => Ok(()),
                    _ => Err(CompileError::new("unsupported index operation", *span)),
                }
            }
        }
    }

    fn qualified(&mut self, q: Qual, v: &Value, vspan: Span) -> R<Checked> {
        let err = |m: String| CompileError::new(m, vspan);
        let one = |a: Atom| Ok(Checked::Atom(a, vspan));
        match v {
            Value::Name(name) => self.name(q, name, vspan),
            Value::Num(n) => {
                let n = *n;
                match q.kind {
                    Kind::Default | Kind::Host | Kind::Net => match q.proto {
                        Some(Proto::Decnet) => one(self.decnet(q.dir, n, vspan)?),
                        Some(Proto::Link) => Err(err("illegal link layer address".into())),
                        _ => {
                            let (mut addr, mut mask) = (n, u32::MAX);
                            if q.kind == Kind::Net {
                                while addr != 0 && addr & 0xff00_0000 == 0 {
                                    addr <<= 8;
                                    mask <<= 8;
                                }
                            }
                            one(host4(q, addr, mask, vspan)?)
                        }
                    },
                    Kind::Port | Kind::PortRange => {
                        let proto = port_proto(q).ok_or_else(|| {
                            err(format!("illegal qualifier of '{}'", kind_name(q.kind)))
                        })?;
                        if n > 65535 {
                            return Err(err(format!("illegal port number {n} > 65535")));
                        }
                        port_dir(q.dir, q.kind == Kind::PortRange, vspan)?;
                        one(Atom::Port {
                            proto,
                            dir: q.dir,
                            lo: n as u16,
                            hi: n as u16,
                            range: q.kind == Kind::PortRange,
                        })
                    }
                    Kind::Gateway => Err(err("'gateway' requires a name".into())),
                    Kind::Proto => one(self.proto(q, n, vspan)?),
                    Kind::ProtoChain => one(self.protochain(q, n, vspan)?),
                }
            }
            Value::Ipv4(s) => {
                if let Some(k) = match q.kind {
                    Kind::Port => Some("port"),
                    Kind::PortRange => Some("portrange"),
                    Kind::Proto => Some("proto"),
                    Kind::ProtoChain => Some("protochain"),
                    _ => None,
                } {
                    return Err(err(format!("'{k}' modifier applied to ip host")));
                }
                if q.proto == Some(Proto::Decnet) {
                    let a =
                        atodn(s).ok_or_else(|| err(format!("malformed decnet address '{s}'")))?;
                    return match q.kind {
                        Kind::Gateway => Err(err("'gateway' requires a name".into())),
                        _ => one(self.decnet(q.dir, a, vspan)?),
                    };
                }
                let (v, len) =
                    atoin(s).ok_or_else(|| err(format!("invalid IPv4 address '{s}'")))?;
                match q.kind {
                    Kind::Gateway => Err(err("'gateway' requires a name".into())),
                    _ if q.proto == Some(Proto::Link) => {
                        Err(err("illegal link layer address".into()))
                    }
                    _ => one(host4(q, shl(v, 32 - len), shl(u32::MAX, 32 - len), vspan)?),
                }
            }
            Value::Ipv4Prefix(s, len) => {
                let (n, nlen) =
                    atoin(s).ok_or_else(|| err(format!("invalid IPv4 address '{s}'")))?;
                let n = shl(n, 32 - nlen);
                if *len > 32 {
                    return Err(err("mask length must be <= 32".into()));
                }
                let m = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
                if n & !m != 0 {
                    return Err(err(format!("non-network bits set in \"{s}/{len}\"")));
                }
                self.masked(q, n, m, vspan)
            }
            Value::Ipv4Mask(s, ms) => {
                let (n, nlen) =
                    atoin(s).ok_or_else(|| err(format!("invalid IPv4 address '{s}'")))?;
                let (m, mlen) =
                    atoin(ms).ok_or_else(|| err(format!("invalid IPv4 address '{ms}'")))?;
                let (n, m) = (shl(n, 32 - nlen), shl(m, 32 - mlen));
                if n & !m != 0 {
                    return Err(err(format!("non-network bits set in \"{s} mask {ms}\"")));
                }
                self.masked(q, n, m, vspan)
            }
            Value::Ipv6(a) => one(ipv6(q, a.octets(), 128, vspan)?),
            Value::Ipv6Prefix(a, len) => one(ipv6(q, a.octets(), *len, vspan)?),
            Value::Mac(mac) => {
                if matches!(q.kind, Kind::Host | Kind::Default) && q.proto == Some(Proto::Link) {
                    if self.link != Link::Ether {
                        return Err(err(ETHER_ONLY.into()));
                    }
                    ether_dir(q.dir, vspan)?;
                    return one(Atom::EtherHost {
                        dir: q.dir,
                        mac: *mac,
                    });
                }
                Err(err("ethernet address used in non-ether expression".into()))
            }
            Value::Arcnet(_) => Err(err("aid supported only on ARCnet".into())),
        }
    }

    /// `gen_mcode`: a masked IPv4 network.
    fn masked(&self, q: Qual, n: u32, m: u32, span: Span) -> R<Checked> {
        if q.kind != Kind::Net {
            return Err(CompileError::new("Mask syntax for networks only", span));
        }
        if q.proto == Some(Proto::Decnet) {
            return Ok(Checked::Atom(self.decnet(q.dir, n, span)?, span));
        }
        Ok(Checked::Atom(host4(q, n, m, span)?, span))
    }

    fn decnet(&self, dir: Dir, addr: u32, span: Span) -> R<Atom> {
        addr_dir(dir, span)?;
        Ok(Atom::DecnetHost {
            dir,
            addr: addr as u16,
        })
    }

    fn name(&mut self, q: Qual, name: &str, span: Span) -> R<Checked> {
        let err = |m: String| CompileError::new(m, span);
        let one = |a: Atom| Ok(Checked::Atom(a, span));
        match q.kind {
            Kind::Net => {
                let mut addr = self
                    .resolver
                    .network(name)
                    .filter(|a| *a != 0)
                    .ok_or_else(|| err(format!("unknown network '{name}'")))?;
                let mut mask = u32::MAX;
                while addr != 0 && addr & 0xff00_0000 == 0 {
                    addr <<= 8;
                    mask <<= 8;
                }
                if q.proto == Some(Proto::Decnet) {
                    return one(self.decnet(q.dir, addr, span)?);
                }
                one(host4(q, addr, mask, span)?)
            }
            Kind::Default | Kind::Host => match q.proto {
                Some(Proto::Link) => {
                    if self.link != Link::Ether {
                        return Err(err("only ethernet/FDDI/token ring/802.11/ATM LANE/Fibre Channel supports link-level host name".into()));
                    }
                    let mac = self
                        .resolver
                        .ether(name)
                        .ok_or_else(|| err(format!("unknown ether host '{name}'")))?;
                    ether_dir(q.dir, span)?;
                    one(Atom::EtherHost { dir: q.dir, mac })
                }
                Some(Proto::Decnet) => Err(err(format!(
                    "decnet name support not included, '{name}' cannot be translated"
                ))),
                _ => {
                    let addrs = self.resolver.host(name);
                    if addrs.is_empty() {
                        return Err(err(format!("unknown host '{name}'")));
                    }
                    let mut out: Option<Checked> = None;
                    for a in addrs {
                        let atom = match a {
                            IpAddr::V4(_) if q.proto == Some(Proto::Ip6) => continue,
                            IpAddr::V6(_) if q.proto == Some(Proto::Ip) => continue,
                            IpAddr::V4(v4) => host4(q, u32::from(v4), u32::MAX, span)?,
                            IpAddr::V6(v6) => ipv6(q, v6.octets(), 128, span)?,
                        };
                        let c = Checked::Atom(atom, span);
                        out = Some(match out {
                            None => c,
                            Some(prev) => Checked::Or(Box::new((prev, c))),
                        });
                    }
                    out.ok_or_else(|| {
                        let fam = if q.proto.is_none() {
                            ""
                        } else {
                            " for specified address family"
                        };
                        err(format!("unknown host '{name}'{fam}"))
                    })
                }
            },
            Kind::Port => {
                let proto =
                    port_proto(q).ok_or_else(|| err("illegal qualifier of 'port'".into()))?;
                let (port, real) = self
                    .nametoport(name)
                    .ok_or_else(|| err(format!("unknown port '{name}'")))?;
                let proto = port_conflict(proto, real, |p| format!("port '{name}' is {p}"), span)?;
                port_dir(q.dir, false, span)?;
                one(Atom::Port {
                    proto,
                    dir: q.dir,
                    lo: port,
                    hi: port,
                    range: false,
                })
            }
            Kind::PortRange => {
                let proto =
                    port_proto(q).ok_or_else(|| err("illegal qualifier of 'portrange'".into()))?;
                let (p1, p2, real) = self
                    .nametoportrange(name)
                    .ok_or_else(|| err(format!("unknown port in range '{name}'")))?;
                let proto = port_conflict(
                    proto,
                    real,
                    |p| format!("port in range '{name}' is {p}"),
                    span,
                )?;
                for p in [p1, p2] {
                    if p < 0 {
                        return Err(err(format!("illegal port number {p} < 0")));
                    }
                    if p > 65535 {
                        return Err(err(format!("illegal port number {p} > 65535")));
                    }
                }
                port_dir(q.dir, true, span)?;
                let (lo, hi) = (p1.min(p2) as u16, p1.max(p2) as u16);
                one(Atom::Port {
                    proto,
                    dir: q.dir,
                    lo,
                    hi,
                    range: true,
                })
            }
            Kind::Gateway => Err(err("'gateway' not supported in this configuration".into())),
            Kind::Proto | Kind::ProtoChain => {
                let v = self.lookup_proto(q.proto, name, span)?;
                if q.kind == Kind::Proto {
                    one(self.proto(q, v, span)?)
                } else {
                    one(self.protochain(q, v, span)?)
                }
            }
        }
    }

    /// `pcap_nametoport`: the port and which transport it is known for
    /// (`None`: both, or the same number for tcp and udp).
    fn nametoport(&self, name: &str) -> Option<(u16, Option<Proto>)> {
        let tcp = self.resolver.service(name, "tcp");
        let udp = self.resolver.service(name, "udp");
        match (tcp, udp) {
            (Some(t), Some(u)) if t == u => Some((t, None)),
            (Some(t), _) => Some((t, Some(Proto::Tcp))),
            (None, Some(u)) => Some((u, Some(Proto::Udp))),
            (None, None) => None,
        }
    }

    /// `pcap_nametoportrange`: `N-M` numerically (as sscanf "%d-%d"),
    /// else two names split at the first '-'.
    fn nametoportrange(&self, name: &str) -> Option<(i64, i64, Option<Proto>)> {
        if let Some((a, rest)) = scan_int(name)
            && let Some(rest) = rest.strip_prefix('-')
            && let Some((b, _)) = scan_int(rest)
        {
            return Some((a, b, None));
        }
        let (a, b) = name.split_once('-')?;
        let (p1, r1) = self.nametoport(a)?;
        let (p2, r2) = self.nametoport(b)?;
        let real = if r1 == r2 { r2 } else { None };
        Some((p1.into(), p2.into(), real))
    }

    fn lookup_proto(&self, proto: Option<Proto>, name: &str, span: Span) -> R<u32> {
        let err = |m: String| Err(CompileError::new(m, span));
        match proto {
            None | Some(Proto::Ip) | Some(Proto::Ip6) => match self.resolver.protocol(name) {
                Some(v) => Ok(v.into()),
                None => err(format!("unknown ip proto '{name}'")),
            },
            Some(Proto::Link) => match ether_proto(name) {
                Some(v) => Ok(v),
                None => err(format!("unknown ether proto '{name}'")),
            },
            Some(Proto::Iso) => match name {
                "esis" => Ok(0x82),
                "isis" => Ok(0x83),
                "clnp" => Ok(0x81),
                _ => err(format!("unknown osi proto '{name}'")),
            },
            _ => err(format!("unknown protocol: {name}")),
        }
    }

    fn proto(&self, q: Qual, v: u32, span: Span) -> R<Atom> {
        use Proto::*;
        let msg = match q.proto {
            None | Some(Link) | Some(Ip) | Some(Ip6) | Some(Iso) | Some(Isis) => {
                return Ok(Atom::Proto {
                    layer: q.proto,
                    value: v,
                });
            }
            Some(Arp) => "arp does not encapsulate another protocol".into(),
            Some(Rarp) => "rarp does not encapsulate another protocol".into(),
            Some(Atalk) => "AppleTalk encapsulation is not specifiable".into(),
            Some(Decnet) => "DECNET encapsulation is not specifiable".into(),
            Some(Lat) => "LAT does not encapsulate another protocol".into(),
            Some(Sca) => "SCA does not encapsulate another protocol".into(),
            Some(Moprc) => "MOPRC does not encapsulate another protocol".into(),
            Some(Mopdl) => "MOPDL does not encapsulate another protocol".into(),
            Some(Clnp) => "'clnp proto' is not supported".into(),
            Some(p) => format!("'{} proto' is bogus", p.name()),
        };
        Err(CompileError::new(msg, span))
    }

    fn protochain(&self, q: Qual, v: u32, span: Span) -> R<Atom> {
        if !matches!(q.proto, None | Some(Proto::Ip) | Some(Proto::Ip6)) {
            return Err(CompileError::new(
                "bad protocol applied for 'protochain'",
                span,
            ));
        }
        if self.variable_offsets {
            return Err(CompileError::new(
                "'protochain' not supported with variable length headers",
                span,
            ));
        }
        Ok(Atom::ProtoChain {
            layer: q.proto,
            value: v,
        })
    }
}

/// After `mpls` only IPv4 and IPv6 payloads can be tested
/// (`gen_mpls_linktype`); this is whether `p` stays within them.
fn over_mpls_ok(p: &Primitive) -> bool {
    use Proto::*;
    let non_ip = |p: Option<Proto>| {
        matches!(
            p,
            Some(
                Arp | Rarp
                    | Atalk
                    | Aarp
                    | Decnet
                    | Sca
                    | Lat
                    | Mopdl
                    | Moprc
                    | Iso
                    | Esis
                    | Isis
                    | L1
                    | L2
                    | Iih
                    | Lsp
                    | Snp
                    | Csnp
                    | Psnp
                    | Clnp
                    | Stp
                    | Ipx
                    | Netbeui
            )
        )
    };
    match p {
        Primitive::Proto(pr) => !non_ip(Some(*pr)),
        Primitive::Qualified { qual, value, .. } => match (qual.kind, value) {
            (Kind::Proto, Value::Num(n)) if qual.proto == Some(Link) => {
                *n == 0x0800 || *n == 0x86dd
            }
            _ => !non_ip(qual.proto),
        },
        Primitive::Pppoed | Primitive::Pppoes(_) => false,
        _ => true,
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::PortRange => "portrange",
        _ => "port",
    }
}

/// The transport a port qualifier allows: `Some(None)` for any.
fn port_proto(q: Qual) -> Option<Option<Proto>> {
    match q.proto {
        None => Some(None),
        Some(p @ (Proto::Tcp | Proto::Udp | Proto::Sctp)) => Some(Some(p)),
        _ => None,
    }
}

fn port_conflict(
    want: Option<Proto>,
    real: Option<Proto>,
    msg: impl Fn(&str) -> String,
    span: Span,
) -> R<Option<Proto>> {
    match (want, real) {
        (Some(w), Some(r)) if w != r => Err(CompileError::new(msg(r.name()), span)),
        (Some(w), _) => Ok(Some(w)),
        (None, r) => Ok(r),
    }
}

/// sscanf("%d"): optional blanks and sign, then digits.
fn scan_int(s: &str) -> Option<(i64, &str)> {
    let t = s.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = t.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    // Saturate like a value that no port can be.
    let v: i64 = t[..n].parse().unwrap_or(i64::MAX / 2);
    let v = i64::from(v as i32);
    Some((if neg { -v } else { v }, &t[n..]))
}

fn ether_proto(name: &str) -> Option<u32> {
    Some(match name {
        "aarp" => 0x80f3,
        "arp" => 0x0806,
        "atalk" => 0x809b,
        "decnet" => 0x6003,
        "ip" => 0x0800,
        "ip6" => 0x86dd,
        "lat" => 0x6004,
        "loopback" => 0x9000,
        "mopdl" => 0x6001,
        "moprc" => 0x6002,
        "rarp" => 0x8035,
        "sca" => 0x6007,
        "iso" => 0xfe,
        "stp" => 0x42,
        "ipx" => 0xe0,
        "netbeui" => 0xf0,
        _ => return None,
    })
}

fn shl(v: u32, n: u32) -> u32 {
    v.checked_shl(n).unwrap_or(0)
}

/// `__pcap_atoin`: dotted parts into a left-aligned value and its bit length.
fn atoin(s: &str) -> Option<(u32, u32)> {
    let mut addr: u32 = 0;
    let mut len = 0;
    for part in s.split('.') {
        let mut n: u32 = 0;
        for c in part.bytes() {
            if n > 25 {
                return None;
            }
            n = n
                .wrapping_mul(10)
                .wrapping_add(u32::from(c).wrapping_sub(u32::from(b'0')));
        }
        if n > 255 {
            return None;
        }
        addr = (addr << 8) | n;
        len += 8;
    }
    Some((addr, len.min(32)))
}

/// `__pcap_atodn`: `area.node` into a DECnet address.
fn atodn(s: &str) -> Option<u32> {
    let (area, rest) = scan_int(s)?;
    let (node, _) = scan_int(rest.strip_prefix('.')?)?;
    Some((((area as u32) << 10) & 0o176000) | (node as u32 & 0o1777))
}

fn addr_dir(dir: Dir, span: Span) -> R<()> {
    let m = match dir {
        Dir::Addr(n) => format!(
            "'addr{n}' and 'address{n}' are not valid qualifiers for addresses other than 802.11 MAC addresses"
        ),
        Dir::Ra => {
            "'ra' is not a valid qualifier for addresses other than 802.11 MAC addresses".into()
        }
        Dir::Ta => {
            "'ta' is not a valid qualifier for addresses other than 802.11 MAC addresses".into()
        }
        _ => return Ok(()),
    };
    Err(CompileError::new(m, span))
}

/// Ports have no 802.11 address qualifiers (`gen_portop`).
fn port_dir(dir: Dir, range: bool, span: Span) -> R<()> {
    let what = if range { "port ranges" } else { "ports" };
    let m = match dir {
        Dir::Addr(n) => {
            format!("'addr{n}' and 'address{n}' are not valid qualifiers for {what}")
        }
        Dir::Ra => format!("'ra' is not a valid qualifier for {what}"),
        Dir::Ta => format!("'ta' is not a valid qualifier for {what}"),
        _ => return Ok(()),
    };
    Err(CompileError::new(m, span))
}

fn ether_dir(dir: Dir, span: Span) -> R<()> {
    let m = match dir {
        Dir::Addr(n) => {
            format!("'addr{n}' and 'address{n}' are only supported on 802.11 with 802.11 headers")
        }
        Dir::Ra => "'ra' is only supported on 802.11 with 802.11 headers".into(),
        Dir::Ta => "'ta' is only supported on 802.11 with 802.11 headers".into(),
        _ => return Ok(()),
    };
    Err(CompileError::new(m, span))
}

/// `gen_host` for an IPv4 address.
fn host4(q: Qual, addr: u32, mask: u32, span: Span) -> R<Atom> {
    use Proto::*;
    let what = if q.kind == Kind::Net { "net" } else { "host" };
    let msg = match q.proto {
        None | Some(Ip) | Some(Arp) | Some(Rarp) | Some(Decnet) => {
            addr_dir(q.dir, span)?;
            if q.proto == Some(Decnet) {
                return Ok(Atom::DecnetHost {
                    dir: q.dir,
                    addr: addr as u16,
                });
            }
            return Ok(Atom::Ipv4Host {
                proto: q.proto,
                dir: q.dir,
                addr: addr & mask,
                mask,
            });
        }
        Some(Link) => format!("link-layer modifier applied to {what}"),
        Some(Ip6) => "'ip6' modifier applied to ip host".into(),
        Some(Atalk) => "AppleTalk host filtering not implemented".into(),
        Some(Lat) => "LAT host filtering not implemented".into(),
        Some(Sca) => "SCA host filtering not implemented".into(),
        Some(Moprc) => "MOPRC host filtering not implemented".into(),
        Some(Mopdl) => "MOPDL host filtering not implemented".into(),
        Some(Aarp) => "AARP host filtering not implemented".into(),
        Some(Iso) => "ISO host filtering not implemented".into(),
        Some(Ipx) => "IPX host filtering not implemented".into(),
        Some(p) => format!("'{}' modifier applied to {what}", p.name()),
    };
    Err(CompileError::new(msg, span))
}

/// `gen_mcode6` and `gen_host6`.
fn ipv6(q: Qual, addr: [u8; 16], len: u32, span: Span) -> R<Atom> {
    let err = |m: String| Err(CompileError::new(m, span));
    if len > 128 {
        return err("mask length must be <= 128".into());
    }
    let mut mask = [0u8; 16];
    for (i, m) in mask.iter_mut().enumerate() {
        let bits = len.saturating_sub(8 * i as u32).min(8);
        *m = if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
    }
    if addr.iter().zip(mask).any(|(a, m)| a & !m != 0) {
        let text = std::net::Ipv6Addr::from(addr);
        return err(format!("non-network bits set in \"{text}/{len}\""));
    }
    match q.kind {
        Kind::Default | Kind::Host if len != 128 => {
            return err("Mask syntax for networks only".into());
        }
        Kind::Default | Kind::Host | Kind::Net => {}
        _ => return err("invalid qualifier against IPv6 address".into()),
    }
    let what = if q.kind == Kind::Net { "net" } else { "host" };
    match q.proto {
        None | Some(Proto::Ip6) => {
            addr_dir(q.dir, span)?;
            Ok(Atom::Ipv6Host {
                dir: q.dir,
                addr,
                mask,
            })
        }
        Some(Proto::Link) => err(format!("link-layer modifier applied to ip6 {what}")),
        Some(Proto::Atalk) => err(format!("AppleTalk modifier applied to ip6 {what}")),
        Some(p) => err(format!("'{}' modifier applied to ip6 {what}", p.name())),
    }
}
