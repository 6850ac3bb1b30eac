//! Qualified primitives: a value (number, address, name) with its
//! qualifiers (`src`, `net`, `tcp`, `port`, ...).

use std::net::IpAddr;

use super::addr::{atoin, decnet_dotted, decnet_number, decnet_qual, ether_dir, host4, ipv6, shl};
use super::port::{kind_name, port_conflict, port_dir, port_proto};
use super::width::Field;
use super::{Atom, Checked, Checker, R};
use crate::check::link::Link;
use crate::error::CompileError;
use crate::syntax::ast::*;

const ETHER_ONLY: &str =
    "ethernet addresses supported only on ethernet/FDDI/token ring/802.11/ATM LANE/Fibre Channel";

impl Checker<'_> {
    pub(super) fn qualified(&mut self, q: Qual, v: &Value, vspan: Span) -> R<Checked> {
        let err = |m: String| CompileError::new(m, vspan);
        let one = |a: Atom| Ok(Checked::Atom(a, vspan));
        match v {
            Value::Name(name) => self.name(q, name, vspan),
            Value::Num(n) => {
                let n = *n;
                match q.kind {
                    Kind::Default | Kind::Host | Kind::Net => match q.proto {
                        Some(Proto::Decnet) => one(decnet_number(q, n, vspan)?),
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
                        Field::PortNumber.check(n, vspan)?;
                        let dir = port_dir(q.dir, q.kind == Kind::PortRange, vspan)?;
                        one(Atom::Port {
                            proto,
                            dir,
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
                    return match q.kind {
                        Kind::Gateway => Err(err("'gateway' requires a name".into())),
                        _ => one(decnet_dotted(q, s, vspan)?),
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
                self.decnet_masked(q, vspan)?;
                let (n, nlen) =
                    atoin(s).ok_or_else(|| err(format!("invalid IPv4 address '{s}'")))?;
                let n = shl(n, 32 - nlen);
                let len = Field::NetmaskLength.check(len.value, len.span)?;
                let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                if n & !m != 0 {
                    return Err(err(format!("non-network bits set in \"{s}/{len}\"")));
                }
                self.masked(q, n, m, vspan)
            }
            Value::Ipv4Mask(s, ms) => {
                self.decnet_masked(q, vspan)?;
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
                    let dir = ether_dir(q.dir, vspan)?;
                    return one(Atom::EtherHost { dir, mac: *mac });
                }
                Err(err("ethernet address used in non-ether expression".into()))
            }
            Value::Arcnet(_) => Err(err("aid supported only on ARCnet".into())),
        }
    }

    /// `gen_mcode` refuses DECnet first: `decnet net A/N` and `decnet
    /// net A mask M` were DECnet address tests in libpcap 1.10.3 (a newer
    /// check), `decnet host A/N` a mask on a host there too.
    fn decnet_masked(&self, q: Qual, span: Span) -> R<()> {
        if q.proto == Some(Proto::Decnet) {
            return Err(decnet_qual(q.kind, q.kind == Kind::Net, span));
        }
        Ok(())
    }

    /// `gen_mcode`: a masked IPv4 network.
    fn masked(&self, q: Qual, n: u32, m: u32, span: Span) -> R<Checked> {
        if q.kind != Kind::Net {
            return Err(CompileError::new("Mask syntax for networks only", span));
        }
        Ok(Checked::Atom(host4(q, n, m, span)?, span))
    }

    pub(super) fn name(&mut self, q: Qual, name: &str, span: Span) -> R<Checked> {
        let err = |m: String| CompileError::new(m, span);
        let one = |a: Atom| Ok(Checked::Atom(a, span));
        match q.kind {
            // `gen_scode`: no DECnet names (`decnet net NAME` looked the
            // network up in libpcap 1.10.3: a newer check).
            Kind::Net | Kind::Default | Kind::Host if q.proto == Some(Proto::Decnet) => {
                Err(decnet_qual(q.kind, q.kind == Kind::Net, span))
            }
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
                    let dir = ether_dir(q.dir, span)?;
                    one(Atom::EtherHost { dir, mac })
                }
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
                let dir = port_dir(q.dir, false, span)?;
                one(Atom::Port {
                    proto,
                    dir,
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
                    let Ok(p) = u32::try_from(p) else {
                        return Err(err(format!("illegal port number {p} < 0")));
                    };
                    Field::PortNumber.check(p, span)?;
                }
                let dir = port_dir(q.dir, true, span)?;
                let (lo, hi) = (p1.min(p2) as u16, p1.max(p2) as u16);
                one(Atom::Port {
                    proto,
                    dir,
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
}
