//! The network layer: IPv4, IPv6, ARP/RARP, DECnet and ISO protocols
//! (`gen_proto`, `gen_proto_abbrev`, `gen_host`, `gen_protochain`).

use pktmatch::ir::Cond;

use super::formula::{P, and, not, or};
use super::offset::Rel;
use super::{
    ET_AARP, ET_ARP, ET_ATALK, ET_IP, ET_IPV6, ET_REVARP, Lower, R, SAP_IPX, SAP_ISONS, SAP_NETBEUI,
};
use crate::syntax::ast::{Dir, Proto};

impl Lower<'_> {
    pub(super) fn ipfrag(&mut self) -> R<P> {
        Ok(not(self.set(Rel::LinkPl, 6, 2, 0x1fff)?))
    }

    /// `gen_proto`.
    pub(super) fn proto(&mut self, v: u32, layer: Option<Proto>) -> R<P> {
        match layer {
            None => {
                let a = self.proto(v, Some(Proto::Ip))?;
                let b = self.proto(v, Some(Proto::Ip6))?;
                Ok(or(a, b))
            }
            Some(Proto::Ip) => {
                let b0 = self.linktype(ET_IP)?;
                let b1 = self.cmp(Rel::LinkPl, 9, 1, v)?;
                Ok(and(b0, b1))
            }
            Some(Proto::Ip6) => {
                let b0 = self.linktype(ET_IPV6)?;
                let b2 = self.cmp(Rel::LinkPl, 6, 1, 44)?;
                let b1 = self.cmp(Rel::LinkPl, 40, 1, v)?;
                let b1 = and(b2, b1);
                let b2 = self.cmp(Rel::LinkPl, 6, 1, v)?;
                Ok(and(b0, or(b2, b1)))
            }
            Some(Proto::Link) => self.linktype(v),
            Some(Proto::Iso) => {
                let b0 = self.linktype(SAP_ISONS)?;
                let b1 = self.cmp(Rel::LinkPlNoSnap, 0, 1, v)?;
                Ok(and(b0, b1))
            }
            Some(Proto::Isis) => {
                let b0 = self.proto(0x83, Some(Proto::Iso))?;
                let b1 = self.cmp(Rel::LinkPlNoSnap, 4, 1, v)?;
                Ok(and(b0, b1))
            }
            Some(p) => Err(self.err(format!("'{} proto' is bogus", p.name()))),
        }
    }

    pub(super) fn isis_any(&mut self, types: &[u32]) -> R<P> {
        // libpcap builds `t[n-1] || (... || (t[0] || t[1]))`.
        let mut p = {
            let a = self.proto(types[0], Some(Proto::Isis))?;
            let b = self.proto(types[1], Some(Proto::Isis))?;
            or(a, b)
        };
        for t in &types[2..] {
            let a = self.proto(*t, Some(Proto::Isis))?;
            p = or(a, p);
        }
        Ok(p)
    }

    /// `gen_proto_abbrev`.
    pub(super) fn abbrev(&mut self, p: Proto) -> R<P> {
        use Proto::*;
        match p {
            Sctp => self.proto(132, None),
            Tcp => self.proto(6, None),
            Udp => self.proto(17, None),
            Icmp => self.proto(1, Some(Ip)),
            Igmp => self.proto(2, Some(Ip)),
            Igrp => self.proto(9, Some(Ip)),
            Pim => self.proto(103, None),
            Vrrp | Carp => self.proto(112, Some(Ip)),
            Proto::Ip => self.linktype(ET_IP),
            Arp => self.linktype(ET_ARP),
            Rarp => self.linktype(ET_REVARP),
            Atalk => self.linktype(ET_ATALK),
            Aarp => self.linktype(ET_AARP),
            Decnet => self.linktype(0x6003),
            Sca => self.linktype(0x6007),
            Lat => self.linktype(0x6004),
            Mopdl => self.linktype(0x6001),
            Moprc => self.linktype(0x6002),
            Ip6 => self.linktype(ET_IPV6),
            Icmp6 => self.proto(58, Some(Ip6)),
            Ah => self.proto(51, None),
            Esp => self.proto(50, None),
            Iso => self.linktype(SAP_ISONS),
            Esis => self.proto(0x82, Some(Iso)),
            Isis => self.proto(0x83, Some(Iso)),
            L1 => self.isis_any(&[15, 17, 18, 24, 26]),
            L2 => self.isis_any(&[16, 17, 20, 25, 27]),
            Iih => self.isis_any(&[15, 16, 17]),
            Lsp => self.isis_any(&[18, 20]),
            Snp => self.isis_any(&[24, 25, 26, 27]),
            Csnp => self.isis_any(&[24, 25]),
            Psnp => self.isis_any(&[26, 27]),
            Clnp => self.proto(0x81, Some(Iso)),
            Stp => self.linktype(0x42),
            Ipx => self.linktype(SAP_IPX),
            Netbeui => self.linktype(SAP_NETBEUI),
            Link => Err(self.err("link layer applied in wrong context")),
            Radio => Err(self.err("'radio' is not a valid protocol type")),
        }
    }

    pub(super) fn hostop(
        &mut self,
        addr: u32,
        mask: u32,
        dir: Dir,
        llp: u32,
        so: u32,
        d: u32,
    ) -> R<P> {
        self.dir_pair(dir, &mut |l, src| {
            let b0 = l.linktype(llp)?;
            let b1 = l.mcmp(Rel::LinkPl, if src { so } else { d }, 4, addr, mask)?;
            Ok(and(b0, b1))
        })
    }

    pub(super) fn host4(&mut self, proto: Option<Proto>, dir: Dir, addr: u32, mask: u32) -> R<P> {
        match proto {
            None => {
                let b0 = self.host4(Some(Proto::Ip), dir, addr, mask)?;
                if self.mpls_depth > 0 {
                    return Ok(b0);
                }
                let b1 = self.host4(Some(Proto::Arp), dir, addr, mask)?;
                let b2 = self.host4(Some(Proto::Rarp), dir, addr, mask)?;
                Ok(or(or(b0, b1), b2))
            }
            Some(Proto::Ip) | Some(Proto::Link) => self.hostop(addr, mask, dir, ET_IP, 12, 16),
            Some(Proto::Arp) => self.hostop(addr, mask, dir, ET_ARP, 14, 24),
            Some(Proto::Rarp) => self.hostop(addr, mask, dir, ET_REVARP, 14, 24),
            Some(p) => Err(self.err(format!("'{}' modifier applied to host", p.name()))),
        }
    }

    pub(super) fn host6(&mut self, dir: Dir, addr: &[u8; 16], mask: &[u8; 16]) -> R<P> {
        let w = |b: &[u8; 16], i: usize| {
            u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
        };
        self.dir_pair(dir, &mut |l, src| {
            let off = if src { 8 } else { 24 };
            let mut words = Vec::with_capacity(4);
            for i in 0..4 {
                words.push(l.mcmp(Rel::LinkPl, off + 4 * i as u32, 4, w(addr, i), w(mask, i))?);
            }
            let b0 = l.linktype(ET_IPV6)?;
            let mut it = words.into_iter().rev();
            let mut p = it.next().unwrap_or(P::True);
            for x in it {
                p = and(x, p);
            }
            Ok(and(b0, p))
        })
    }

    pub(super) fn decnet(&mut self, dir: Dir, addr: u16) -> R<P> {
        let a = u32::from(addr.swap_bytes());
        self.dir_pair(dir, &mut |l, src| {
            let (sh, lh) = if src { (3, 15) } else { (1, 7) };
            let b0 = l.linktype(0x6003)?;
            let t = l.mcmp(Rel::LinkPl, 2, 2, 0x8106, 0xff07)?;
            let c = l.cmp(Rel::LinkPl, 2 + 1 + lh, 2, a)?;
            let b1 = and(t, c);
            let t = l.mcmp(Rel::LinkPl, 2, 1, 0x06, 0x7)?;
            let c = l.cmp(Rel::LinkPl, 2 + lh, 2, a)?;
            let b1 = or(and(t, c), b1);
            let t = l.mcmp(Rel::LinkPl, 2, 2, 0x8102, 0xff07)?;
            let c = l.cmp(Rel::LinkPl, 2 + 1 + sh, 2, a)?;
            let b1 = or(and(t, c), b1);
            let t = l.mcmp(Rel::LinkPl, 2, 1, 0x02, 0x7)?;
            let c = l.cmp(Rel::LinkPl, 2 + sh, 2, a)?;
            let b1 = or(and(t, c), b1);
            Ok(and(b0, b1))
        })
    }

    pub(super) fn protochain(&mut self, layer: Option<Proto>, v: u32) -> R<P> {
        match layer {
            None => {
                let a = self.protochain(Some(Proto::Ip), v)?;
                let b = self.protochain(Some(Proto::Ip6), v)?;
                Ok(or(a, b))
            }
            Some(p) => {
                if self.off.linkpl.var.is_some() {
                    return Err(self.err("'protochain' not supported with variable length headers"));
                }
                let ipv6 = p == Proto::Ip6;
                let b0 = self.linktype(if ipv6 { ET_IPV6 } else { ET_IP })?;
                let t = P::Test(
                    Cond::ProtoChain {
                        nl: self.off.linkpl.k.wrapping_add(self.off.nl),
                        ipv6,
                        proto: v,
                    },
                    self.span,
                );
                Ok(and(b0, t))
            }
        }
    }

    /// `ip broadcast`: the host part of the destination is all zeros or
    /// all ones.
    pub(super) fn ip_broadcast(&mut self) -> R<P> {
        let mask = self
            .opts
            .netmask
            .ok_or_else(|| self.err("netmask not known, so 'ip broadcast' not supported"))?;
        let hm = !mask;
        let b0 = self.linktype(ET_IP)?;
        let b1 = self.mcmp(Rel::LinkPl, 16, 4, 0, hm)?;
        let b2 = self.mcmp(Rel::LinkPl, 16, 4, hm, hm)?;
        Ok(and(b0, or(b1, b2)))
    }

    /// `ip multicast`: a class D destination.
    pub(super) fn ip_multicast(&mut self) -> R<P> {
        let b0 = self.linktype(ET_IP)?;
        let b1 = self.cmp_ge(Rel::LinkPl, 16, 1, 224)?;
        Ok(and(b0, b1))
    }

    /// `ip6 multicast`: a destination in ff00::/8.
    pub(super) fn ip6_multicast(&mut self) -> R<P> {
        let b0 = self.linktype(ET_IPV6)?;
        let b1 = self.cmp(Rel::LinkPl, 24, 1, 255)?;
        Ok(and(b0, b1))
    }
}
