//! The network layer: IPv4, IPv6, ARP/RARP, DECnet and ISO protocols
//! (`gen_proto`, `gen_proto_abbrev`, `gen_host`, `gen_protochain`).

use pktmatch::ir::Cond;

use super::formula::{P, and, not, or};
use super::offset::Rel;
use super::{Lower, R};
use crate::check::{Ipv4Proto, ProtoLayer, Side};
use crate::numbers::{
    ETHERTYPE_AARP, ETHERTYPE_ARP, ETHERTYPE_ATALK, ETHERTYPE_DN, ETHERTYPE_IP, ETHERTYPE_IPV6,
    ETHERTYPE_LAT, ETHERTYPE_MOPDL, ETHERTYPE_MOPRC, ETHERTYPE_REVARP, ETHERTYPE_SCA, IPPROTO_AH,
    IPPROTO_ESP, IPPROTO_FRAGMENT, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_IGMP, IPPROTO_IGRP,
    IPPROTO_PIM, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_VRRP, ISIS_L1_CSNP,
    ISIS_L1_LAN_IIH, ISIS_L1_LSP, ISIS_L1_PSNP, ISIS_L2_CSNP, ISIS_L2_LAN_IIH, ISIS_L2_LSP,
    ISIS_L2_PSNP, ISIS_PTP_IIH, ISO8473_CLNP, ISO9542_ESIS, ISO10589_ISIS, LLCSAP_8021D,
    LLCSAP_IPX, LLCSAP_ISONS, LLCSAP_NETBEUI,
};
use crate::syntax::ast::Proto;

impl Lower<'_> {
    pub(super) fn ipfrag(&mut self) -> R<P> {
        Ok(not(self.set(Rel::LinkPl, 6, 2, 0x1fff)?))
    }

    /// `gen_proto`.
    pub(super) fn proto(&mut self, v: u32, layer: Option<ProtoLayer>) -> R<P> {
        match layer {
            None => {
                let a = self.proto(v, Some(ProtoLayer::Ip))?;
                let b = self.proto(v, Some(ProtoLayer::Ip6))?;
                Ok(or(a, b))
            }
            Some(ProtoLayer::Ip) => {
                let b0 = self.linktype(ETHERTYPE_IP)?;
                let b1 = self.cmp(Rel::LinkPl, 9, 1, v)?;
                Ok(and(b0, b1))
            }
            Some(ProtoLayer::Ip6) if self.opts.ipv6_ext_headers => {
                let b0 = self.linktype(ETHERTYPE_IPV6)?;
                let b1 = self.ip6_walk(v, &mut |_, _| Ok(P::True))?;
                Ok(and(b0, b1))
            }
            Some(ProtoLayer::Ip6) => {
                let b0 = self.linktype(ETHERTYPE_IPV6)?;
                let b2 = self.cmp(Rel::LinkPl, 6, 1, IPPROTO_FRAGMENT)?;
                let b1 = self.cmp(Rel::LinkPl, 40, 1, v)?;
                let b1 = and(b2, b1);
                let b2 = self.cmp(Rel::LinkPl, 6, 1, v)?;
                Ok(and(b0, or(b2, b1)))
            }
            Some(ProtoLayer::Link) => self.linktype(v),
            Some(ProtoLayer::Iso) => {
                let b0 = self.linktype(LLCSAP_ISONS)?;
                let b1 = self.cmp(Rel::LinkPlNoSnap, 0, 1, v)?;
                Ok(and(b0, b1))
            }
            Some(ProtoLayer::Isis) => {
                let b0 = self.proto(ISO10589_ISIS, Some(ProtoLayer::Iso))?;
                let b1 = self.cmp(Rel::LinkPlNoSnap, 4, 1, v)?;
                Ok(and(b0, b1))
            }
        }
    }

    pub(super) fn isis_any(&mut self, types: &[u32]) -> R<P> {
        // libpcap builds `t[n-1] || (... || (t[0] || t[1]))`.
        let mut p = {
            let a = self.proto(types[0], Some(ProtoLayer::Isis))?;
            let b = self.proto(types[1], Some(ProtoLayer::Isis))?;
            or(a, b)
        };
        for t in &types[2..] {
            let a = self.proto(*t, Some(ProtoLayer::Isis))?;
            p = or(a, p);
        }
        Ok(p)
    }

    /// `gen_proto_abbrev`.
    pub(super) fn abbrev(&mut self, p: Proto) -> R<P> {
        use Proto::*;
        match p {
            Sctp => self.proto(IPPROTO_SCTP, None),
            Tcp => self.proto(IPPROTO_TCP, None),
            Udp => self.proto(IPPROTO_UDP, None),
            Icmp => self.proto(IPPROTO_ICMP, Some(ProtoLayer::Ip)),
            Igmp => self.proto(IPPROTO_IGMP, Some(ProtoLayer::Ip)),
            Igrp => self.proto(IPPROTO_IGRP, Some(ProtoLayer::Ip)),
            Pim => self.proto(IPPROTO_PIM, None),
            Vrrp | Carp => self.proto(IPPROTO_VRRP, Some(ProtoLayer::Ip)),
            Proto::Ip => self.linktype(ETHERTYPE_IP),
            Arp => self.linktype(ETHERTYPE_ARP),
            Rarp => self.linktype(ETHERTYPE_REVARP),
            Atalk => self.linktype(ETHERTYPE_ATALK),
            Aarp => self.linktype(ETHERTYPE_AARP),
            Decnet => self.linktype(ETHERTYPE_DN),
            Sca => self.linktype(ETHERTYPE_SCA),
            Lat => self.linktype(ETHERTYPE_LAT),
            Mopdl => self.linktype(ETHERTYPE_MOPDL),
            Moprc => self.linktype(ETHERTYPE_MOPRC),
            Ip6 => self.linktype(ETHERTYPE_IPV6),
            Icmp6 => self.proto(IPPROTO_ICMPV6, Some(ProtoLayer::Ip6)),
            Ah => self.proto(IPPROTO_AH, None),
            Esp => self.proto(IPPROTO_ESP, None),
            Iso => self.linktype(LLCSAP_ISONS),
            Esis => self.proto(ISO9542_ESIS, Some(ProtoLayer::Iso)),
            Isis => self.proto(ISO10589_ISIS, Some(ProtoLayer::Iso)),
            L1 => self.isis_any(&[
                ISIS_L1_LAN_IIH,
                ISIS_PTP_IIH,
                ISIS_L1_LSP,
                ISIS_L1_CSNP,
                ISIS_L1_PSNP,
            ]),
            L2 => self.isis_any(&[
                ISIS_L2_LAN_IIH,
                ISIS_PTP_IIH,
                ISIS_L2_LSP,
                ISIS_L2_CSNP,
                ISIS_L2_PSNP,
            ]),
            Iih => self.isis_any(&[ISIS_L1_LAN_IIH, ISIS_L2_LAN_IIH, ISIS_PTP_IIH]),
            Lsp => self.isis_any(&[ISIS_L1_LSP, ISIS_L2_LSP]),
            Snp => self.isis_any(&[ISIS_L1_CSNP, ISIS_L2_CSNP, ISIS_L1_PSNP, ISIS_L2_PSNP]),
            Csnp => self.isis_any(&[ISIS_L1_CSNP, ISIS_L2_CSNP]),
            Psnp => self.isis_any(&[ISIS_L1_PSNP, ISIS_L2_PSNP]),
            Clnp => self.proto(ISO8473_CLNP, Some(ProtoLayer::Iso)),
            Stp => self.linktype(LLCSAP_8021D),
            Ipx => self.linktype(LLCSAP_IPX),
            Netbeui => self.linktype(LLCSAP_NETBEUI),
            // Checker::prim refuses both.
            Link => Err(self.refused("link layer applied in wrong context")),
            Radio => Err(self.refused("'radio' is not a valid protocol type")),
        }
    }

    pub(super) fn hostop(
        &mut self,
        addr: u32,
        mask: u32,
        dir: Side,
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

    pub(super) fn host4(
        &mut self,
        proto: Option<Ipv4Proto>,
        dir: Side,
        addr: u32,
        mask: u32,
    ) -> R<P> {
        match proto {
            None => {
                let b0 = self.host4(Some(Ipv4Proto::Ip), dir, addr, mask)?;
                if self.mpls_depth > 0 {
                    return Ok(b0);
                }
                let b1 = self.host4(Some(Ipv4Proto::Arp), dir, addr, mask)?;
                let b2 = self.host4(Some(Ipv4Proto::Rarp), dir, addr, mask)?;
                Ok(or(or(b0, b1), b2))
            }
            Some(Ipv4Proto::Ip) => self.hostop(addr, mask, dir, ETHERTYPE_IP, 12, 16),
            Some(Ipv4Proto::Arp) => self.hostop(addr, mask, dir, ETHERTYPE_ARP, 14, 24),
            Some(Ipv4Proto::Rarp) => self.hostop(addr, mask, dir, ETHERTYPE_REVARP, 14, 24),
        }
    }

    pub(super) fn host6(&mut self, dir: Side, addr: &[u8; 16], mask: &[u8; 16]) -> R<P> {
        let w = |b: &[u8; 16], i: usize| {
            u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
        };
        self.dir_pair(dir, &mut |l, src| {
            let off = if src { 8 } else { 24 };
            let mut words = Vec::with_capacity(4);
            for i in 0..4 {
                words.push(l.mcmp(Rel::LinkPl, off + 4 * i as u32, 4, w(addr, i), w(mask, i))?);
            }
            let b0 = l.linktype(ETHERTYPE_IPV6)?;
            let mut it = words.into_iter().rev();
            let mut p = it.next().unwrap_or(P::True);
            for x in it {
                p = and(x, p);
            }
            Ok(and(b0, p))
        })
    }

    pub(super) fn decnet(&mut self, dir: Side, addr: u16) -> R<P> {
        let a = u32::from(addr.swap_bytes());
        self.dir_pair(dir, &mut |l, src| {
            let (sh, lh) = if src { (3, 15) } else { (1, 7) };
            let b0 = l.linktype(ETHERTYPE_DN)?;
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
                // The checks refuse it after `geneve`; check_target after
                // `vlan` with `vlan_meta` (`Atom::ProtoChain::after_vlan`),
                // where the payload offset is variable too.
                if self.off.linkpl.var.is_some() {
                    return Err(
                        self.refused("'protochain' not supported with variable length headers")
                    );
                }
                let ipv6 = p == Proto::Ip6;
                let b0 = self.linktype(if ipv6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IP })?;
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
        // check_target refuses it without the netmask lowering was given.
        let mask = self
            .opts
            .netmask
            .ok_or_else(|| self.refused("netmask not known, so 'ip broadcast' not supported"))?;
        let hm = !mask;
        let b0 = self.linktype(ETHERTYPE_IP)?;
        let b1 = self.mcmp(Rel::LinkPl, 16, 4, 0, hm)?;
        let b2 = self.mcmp(Rel::LinkPl, 16, 4, hm, hm)?;
        Ok(and(b0, or(b1, b2)))
    }

    /// `ip multicast`: a class D destination.
    pub(super) fn ip_multicast(&mut self) -> R<P> {
        let b0 = self.linktype(ETHERTYPE_IP)?;
        let b1 = self.cmp_ge(Rel::LinkPl, 16, 1, 224)?;
        Ok(and(b0, b1))
    }

    /// `ip6 multicast`: a destination in ff00::/8.
    pub(super) fn ip6_multicast(&mut self) -> R<P> {
        let b0 = self.linktype(ETHERTYPE_IPV6)?;
        let b1 = self.cmp(Rel::LinkPl, 24, 1, 255)?;
        Ok(and(b0, b1))
    }
}
