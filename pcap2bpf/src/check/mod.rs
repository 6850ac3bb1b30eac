//! The semantic checks of libpcap's gencode.c, applied in parse order.
//!
//! libpcap generates code left to right and some primitives change the
//! context of everything after them (`mpls` forbids a later `vlan`,
//! `pppoes` makes the link PPP, `geneve` makes offsets variable), so the
//! checker walks the tree in source order with that state. Every error a
//! user can cause is raised here: lowering gets only valid filters.
//!
//! [`Checker`] walks the tree and checks the unqualified primitives;
//! `qualified` checks a value with its qualifiers, with the help of
//! `addr` (addresses), `port` (ports and services) and `proto`
//! (protocol names and numbers); [`resolve`] holds the name tables.
//! [`check_target`] checks the checked tree against where it runs
//! (capture file or live hook, VLAN tag in metadata, netmask).

mod addr;
pub(crate) mod link;
mod mpls;
mod port;
mod proto;
mod qualified;
pub mod resolve;
mod target;
mod tree;
pub(crate) mod width;

pub use target::{TargetFacts, check_target};
pub use tree::{Atom, Checked, Ipv4Proto, ProtoLayer, Side, Transport};

use crate::LinkType;
use crate::error::CompileError;
use crate::syntax::ast::*;
use link::Link;
use mpls::{loads_non_ip, over_mpls_ok};
use resolve::Resolver;
use width::Field;

/// Walks the syntax tree in source order.
pub struct Checker<'a> {
    link: Link,
    resolver: &'a dyn Resolver,
    netmask: Option<u32>,
    after_mpls: bool,
    /// A `vlan` came before (in source order).
    after_vlan: bool,
    variable_offsets: bool,
}

type R<T> = Result<T, CompileError>;

impl<'a> Checker<'a> {
    /// A checker for `link`; `netmask` is needed only by `ip broadcast`.
    pub fn new(link: LinkType, resolver: &'a dyn Resolver, netmask: Option<u32>) -> Self {
        Checker {
            link: Link::of(link),
            resolver,
            netmask,
            after_mpls: false,
            after_vlan: false,
            variable_offsets: false,
        }
    }

    /// Checks `e`, returning the resolved tree.
    pub fn check(&mut self, e: &Expr) -> R<Checked> {
        // In source order (`mpls` and `vlan` change what follows), down
        // the chain of operators by a loop (see `syntax::chain`).
        let (first, links) = e.left_chain();
        let mut tree = self.check_operand(first)?;
        for (and, right) in links {
            let both = Box::new((tree, self.check(right)?));
            tree = if and {
                Checked::And(both)
            } else {
                Checked::Or(both)
            };
        }
        Ok(tree)
    }

    /// Checks `e`, a `not` or a primitive.
    fn check_operand(&mut self, e: &Expr) -> R<Checked> {
        Ok(match e {
            Expr::And(_) | Expr::Or(_) => self.check(e)?,
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
                if self.after_mpls && (loads_non_ip(a) || loads_non_ip(b)) {
                    return Err(err("unsupported protocol over mpls".into()));
                }
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
                if let Some(n) = n {
                    Field::VlanTag.check(n.value, n.span)?;
                }
                if self.after_mpls {
                    return Err(err("no VLAN match after MPLS".into()));
                }
                if self.link != Link::Ether {
                    return Err(err(format!("no VLAN support for {}", self.link.name())));
                }
                self.after_vlan = true;
                atom(Atom::Prim(p.clone()))
            }
            Primitive::Mpls(n) => {
                if !self.after_mpls && !matches!(self.link, Link::Ether | Link::Ppp) {
                    return Err(err(format!("no MPLS support for {}", self.link.name())));
                }
                if let Some(n) = n {
                    Field::MplsLabel.check(n.value, n.span)?;
                }
                self.after_mpls = true;
                atom(Atom::Prim(p.clone()))
            }
            Primitive::Pppoes(n) => {
                if let Some(n) = n {
                    Field::PppoeSession.check(n.value, n.span)?;
                }
                self.link = Link::Ppp;
                atom(Atom::Prim(p.clone()))
            }
            Primitive::Geneve(n) => {
                if let Some(n) = n {
                    Field::GeneveVni.check(n.value, n.span)?;
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
            // Whether the link layer here has the field decides, with the
            // target, whether these can be read (`check_target`).
            Primitive::Inbound | Primitive::Outbound => atom(Atom::Direction {
                outbound: matches!(p, Primitive::Outbound),
                in_header: matches!(self.link, Link::Sll | Link::Sll2),
                dlt: self.link.dlt(),
            }),
            Primitive::IfIndex(n) => atom(Atom::IfIndex {
                index: *n,
                in_header: self.link == Link::Sll2,
                dlt: self.link.dlt(),
            }),
            Primitive::Byte(_, op, val) => {
                Field::ByteArgument.check(val.value, val.span)?;
                // libpcap 1.10.3 emits no load for these: the test is on
                // whatever the accumulator held, which has no meaning.
                if matches!(op, ByteOp::And | ByteOp::Or) {
                    return Err(err("'byte' with '&' or '|' is not supported: libpcap tests a stale register there".into()));
                }
                atom(Atom::Prim(p.clone()))
            }
            Primitive::Less(_) | Primitive::Greater(_) | Primitive::Pppoed => {
                atom(Atom::Prim(p.clone()))
            }
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
}

#[cfg(test)]
mod tests {
    use crate::{LinkType, Tables, parse};

    /// The message of the check error for `expr` on Ethernet.
    fn refused(expr: &str) -> String {
        match parse(expr, LinkType::En10mb, &Tables::new()) {
            Ok(_) => panic!("{expr}: accepted"),
            Err(e) => e.message,
        }
    }

    #[test]
    fn only_ip_is_tested_after_mpls() {
        for e in [
            "mpls and ether proto \\arp",
            "mpls and link proto \\decnet",
            "mpls and arp[0] = 1",
            "mpls and ip[0] = decnet[2]",
            "mpls and 1 = 1 + lat[ip[0]]",
        ] {
            assert_eq!(refused(e), "unsupported protocol over mpls", "{e}");
        }
        for e in [
            "mpls and ether proto \\ip6",
            "mpls and ip[0] = 1",
            "mpls and tcp[0] = icmp6[1]",
            "arp[0] = 1 and mpls",
        ] {
            assert!(parse(e, LinkType::En10mb, &Tables::new()).is_ok(), "{e}");
        }
    }

    #[test]
    fn byte_with_and_or_is_refused() {
        for e in ["byte 1 & 2", "byte 1 | 2"] {
            assert!(refused(e).contains("stale register"), "{e}");
        }
        assert!(parse("byte 1 = 2", LinkType::En10mb, &Tables::new()).is_ok());
    }
}
