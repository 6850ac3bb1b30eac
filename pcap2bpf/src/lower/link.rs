//! The link layer: which protocol a frame carries on each link type
//! (`gen_linktype` and friends), link-layer addresses, LLC, and the
//! packet's direction and interface.

use pktmatch::ir::{CmpOp, Meta};

use super::formula::{P, and, not, or};
use super::offset::Rel;
use super::{Lower, R};
use crate::check::Side;
use crate::check::link::{Link, not_live};
use crate::numbers::{
    BSD_AFNUM_INET, BSD_AFNUM_INET6_BSD, BSD_AFNUM_INET6_DARWIN, BSD_AFNUM_INET6_FREEBSD, ETHERMTU,
    ETHERTYPE_AARP, ETHERTYPE_ATALK, ETHERTYPE_DN, ETHERTYPE_IP, ETHERTYPE_IPV6, ETHERTYPE_IPX,
    ETHERTYPE_NS, LINUX_SLL_P_802_2, LINUX_SLL_P_802_3, LLC_UI, LLCSAP_8021D, LLCSAP_IP,
    LLCSAP_IPX, LLCSAP_ISONS, LLCSAP_NETBEUI, LLCSAP_SNAP, OUI_APPLETALK, OUI_ENCAP_ETHER,
    PACKET_OUTGOING, PPP_APPLE, PPP_BRPDU, PPP_DECNET, PPP_IP, PPP_IPV6, PPP_IPX, PPP_NS, PPP_OSI,
};
use crate::syntax::ast::Llc;

impl Lower<'_> {
    pub(super) fn linktype(&mut self, llp: u32) -> R<P> {
        if self.mpls_depth > 0 {
            let ver = match llp {
                ETHERTYPE_IP => 0x40,
                ETHERTYPE_IPV6 => 0x60,
                // check/mpls.rs refuses every primitive that gets here.
                _ => return Err(self.refused("unsupported protocol over mpls")),
            };
            let b0 = self.mcmp(Rel::LinkPl, (-2i32) as u32, 1, 1, 1)?;
            let b1 = self.mcmp(Rel::LinkPl, 0, 1, ver, 0xf0)?;
            return Ok(and(b0, b1));
        }
        match self.link {
            Link::Ether => self.ether_linktype(llp),
            Link::Sll => self.sll_linktype(llp),
            Link::Sll2 => self.cmp(Rel::LinkType, 0, 2, llp),
            Link::Raw => match llp {
                ETHERTYPE_IP => self.mcmp(Rel::LinkHdr, 0, 1, 0x40, 0xf0),
                ETHERTYPE_IPV6 => self.mcmp(Rel::LinkHdr, 0, 1, 0x60, 0xf0),
                _ => Ok(P::False),
            },
            Link::Null | Link::Loop => {
                // Capture files: IPv6 has three BSD values; DLT_NULL is in
                // the writer's byte order (assumed little endian here).
                let null = self.link == Link::Null;
                let fix = |af: u32| {
                    if null { af.swap_bytes() } else { af }
                };
                match llp {
                    ETHERTYPE_IP => self.cmp(Rel::LinkHdr, 0, 4, fix(BSD_AFNUM_INET)),
                    ETHERTYPE_IPV6 => {
                        let b0 = self.cmp(Rel::LinkHdr, 0, 4, fix(BSD_AFNUM_INET6_DARWIN))?;
                        let b1 = self.cmp(Rel::LinkHdr, 0, 4, fix(BSD_AFNUM_INET6_BSD))?;
                        let b2 = self.cmp(Rel::LinkHdr, 0, 4, fix(BSD_AFNUM_INET6_FREEBSD))?;
                        Ok(or(b0, or(b1, b2)))
                    }
                    _ => Ok(P::False),
                }
            }
            Link::Ppp => {
                let t = match llp {
                    ETHERTYPE_IP => PPP_IP,
                    ETHERTYPE_IPV6 => PPP_IPV6,
                    ETHERTYPE_DN => PPP_DECNET,
                    ETHERTYPE_ATALK => PPP_APPLE,
                    ETHERTYPE_NS => PPP_NS,
                    LLCSAP_ISONS => PPP_OSI,
                    LLCSAP_8021D => PPP_BRPDU,
                    LLCSAP_IPX => PPP_IPX,
                    v => v,
                };
                self.cmp(Rel::LinkType, 0, 2, t)
            }
        }
    }

    pub(super) fn not_gt_mtu(&mut self) -> R<P> {
        Ok(not(self.cmp_gt(Rel::LinkType, 0, 2, ETHERMTU)?))
    }

    pub(super) fn snap(&mut self, org: u32, ptype: u32) -> R<P> {
        let v = [
            LLCSAP_SNAP,
            LLCSAP_SNAP,
            LLC_UI,
            (org >> 16) as u8,
            (org >> 8) as u8,
            org as u8,
            (ptype >> 8) as u8,
            ptype as u8,
        ];
        self.bcmp(Rel::Llc, 0, &v)
    }

    pub(super) fn ether_linktype(&mut self, llp: u32) -> R<P> {
        match llp {
            LLCSAP_ISONS | LLCSAP_IP | LLCSAP_NETBEUI => {
                let b0 = self.not_gt_mtu()?;
                let b1 = self.cmp(Rel::Llc, 0, 2, (llp << 8) | llp)?;
                Ok(and(b0, b1))
            }
            LLCSAP_IPX => {
                let a = self.cmp(Rel::Llc, 0, 1, LLCSAP_IPX)?;
                let b = self.cmp(Rel::Llc, 0, 2, 0xffff)?;
                let b1 = or(a, b);
                let s = self.snap(OUI_ENCAP_ETHER, ETHERTYPE_IPX)?;
                let b1 = or(s, b1);
                let b0 = self.not_gt_mtu()?;
                let b1 = and(b0, b1);
                let e = self.cmp(Rel::LinkType, 0, 2, ETHERTYPE_IPX)?;
                Ok(or(e, b1))
            }
            ETHERTYPE_ATALK | ETHERTYPE_AARP => {
                let b0 = self.not_gt_mtu()?;
                let s = if llp == ETHERTYPE_ATALK {
                    self.snap(OUI_APPLETALK, ETHERTYPE_ATALK)?
                } else {
                    self.snap(OUI_ENCAP_ETHER, ETHERTYPE_AARP)?
                };
                let b1 = and(b0, s);
                let e = self.cmp(Rel::LinkType, 0, 2, llp)?;
                Ok(or(e, b1))
            }
            _ if llp <= ETHERMTU => {
                let b0 = self.not_gt_mtu()?;
                let b1 = self.cmp(Rel::LinkType, 2, 1, llp)?;
                Ok(and(b0, b1))
            }
            _ => self.cmp(Rel::LinkType, 0, 2, llp),
        }
    }

    pub(super) fn sll_linktype(&mut self, llp: u32) -> R<P> {
        match llp {
            LLCSAP_ISONS | LLCSAP_IP | LLCSAP_NETBEUI => {
                let b0 = self.cmp(Rel::LinkType, 0, 2, LINUX_SLL_P_802_2)?;
                let b1 = self.cmp(Rel::Llc, 0, 2, (llp << 8) | llp)?;
                Ok(and(b0, b1))
            }
            LLCSAP_IPX => {
                let a = self.cmp(Rel::Llc, 0, 1, LLCSAP_IPX)?;
                let s = self.snap(OUI_ENCAP_ETHER, ETHERTYPE_IPX)?;
                let b1 = or(a, s);
                let b0 = self.cmp(Rel::LinkType, 0, 2, LINUX_SLL_P_802_2)?;
                let b1 = and(b0, b1);
                let b0 = self.cmp(Rel::LinkType, 0, 2, LINUX_SLL_P_802_3)?;
                let b1 = or(b0, b1);
                let b0 = self.cmp(Rel::LinkType, 0, 2, ETHERTYPE_IPX)?;
                Ok(or(b0, b1))
            }
            ETHERTYPE_ATALK | ETHERTYPE_AARP => {
                let b0 = self.cmp(Rel::LinkType, 0, 2, LINUX_SLL_P_802_2)?;
                let s = if llp == ETHERTYPE_ATALK {
                    self.snap(OUI_APPLETALK, ETHERTYPE_ATALK)?
                } else {
                    self.snap(OUI_ENCAP_ETHER, ETHERTYPE_AARP)?
                };
                let b1 = and(b0, s);
                let b0 = self.cmp(Rel::LinkType, 0, 2, llp)?;
                Ok(or(b0, b1))
            }
            _ if llp <= ETHERMTU => {
                let b0 = self.cmp(Rel::LinkType, 0, 2, LINUX_SLL_P_802_2)?;
                let k = self.off.linkpl.k;
                let b1 = self.cmp(Rel::LinkHdr, k, 1, llp)?;
                Ok(and(b0, b1))
            }
            _ => self.cmp(Rel::LinkType, 0, 2, llp),
        }
    }

    pub(super) fn ehost(&mut self, dir: Side, mac: &[u8; 6]) -> R<P> {
        let b = self.dir_pair(dir, &mut |l, src| {
            l.bcmp(Rel::LinkHdr, if src { 6 } else { 0 }, mac)
        })?;
        Ok(self.with_ll_check(b))
    }

    /// `gen_prevlinkhdr_check` before a link-layer address test: after
    /// `geneve`, the encapsulated frame must have an Ethernet header (its
    /// start and its payload differ).
    pub(super) fn with_ll_check(&mut self, b: P) -> P {
        match self.geneve {
            Some((hdr, pl)) => {
                let same = self.test(hdr, CmpOp::Eq, pl);
                and(not(same), b)
            }
            None => b,
        }
    }

    /// `ether broadcast`: the destination is all ones.
    pub(super) fn link_broadcast(&mut self) -> R<P> {
        // Checker::prim refuses other links (the same link-layer state).
        if self.link != Link::Ether {
            return Err(self.refused("not a broadcast link"));
        }
        let b = self.bcmp(Rel::LinkHdr, 0, &[0xff; 6])?;
        Ok(self.with_ll_check(b))
    }

    /// `ether multicast`: the group bit of the destination.
    pub(super) fn link_multicast(&mut self) -> R<P> {
        // Checker::prim refuses other links.
        if self.link != Link::Ether {
            return Err(self.refused("link-layer multicast filters not supported on this link"));
        }
        let b = self.set(Rel::LinkHdr, 0, 1, 1)?;
        Ok(self.with_ll_check(b))
    }

    /// `inbound` and `outbound`: the packet type of the cooked header,
    /// else the direction the hook knows.
    pub(super) fn direction(&mut self, out: bool) -> R<P> {
        let b = match self.link {
            Link::Sll => self.cmp(Rel::LinkHdr, 0, 2, PACKET_OUTGOING)?,
            Link::Sll2 => self.cmp(Rel::LinkHdr, 10, 1, PACKET_OUTGOING)?,
            // check_target refuses it (`Atom::Direction::in_header`).
            _ if self.opts.offline => {
                let kw = if out { "outbound" } else { "inbound" };
                return Err(self.refused(not_live(kw, self.link.dlt())));
            }
            _ => match self.opts.fixed_direction {
                Some(outgoing) => {
                    return Ok(if outgoing == out { P::True } else { P::False });
                }
                None => self.meta_test(Meta::PktType, PACKET_OUTGOING),
            },
        };
        Ok(if out { b } else { not(b) })
    }

    /// `ifindex N`: the SLL2 header's field, else the hook's interface.
    pub(super) fn ifindex(&mut self, n: u32) -> R<P> {
        match self.link {
            Link::Sll2 => self.cmp(Rel::LinkHdr, 4, 4, n),
            // check_target refuses it (`Atom::IfIndex::in_header`).
            _ if self.opts.offline => Err(self.refused(not_live("ifindex", self.link.dlt()))),
            _ => Ok(self.meta_test(Meta::IfIndex, n)),
        }
    }

    /// `llc` and its frame types (`gen_llc` and friends).
    pub(super) fn llc(&mut self, kind: Llc) -> R<P> {
        // Checker::prim refuses other links.
        if self.link != Link::Ether {
            return Err(self.refused("'llc' not supported for this link type"));
        }
        let b0 = self.not_gt_mtu()?;
        let b1 = not(self.cmp(Rel::Llc, 0, 2, 0xffff)?);
        let base = and(b0, b1);
        Ok(match kind {
            Llc::Any => base,
            Llc::I => and(base, not(self.set(Rel::Llc, 2, 1, 1)?)),
            Llc::S => and(base, self.mcmp(Rel::Llc, 2, 1, 1, 3)?),
            Llc::U => and(base, self.mcmp(Rel::Llc, 2, 1, 3, 3)?),
            Llc::SSubtype(st) => and(base, self.mcmp(Rel::Llc, 2, 1, u32::from(st), 0x0f)?),
            Llc::USubtype(st) => and(base, self.mcmp(Rel::Llc, 2, 1, u32::from(st), 0xef)?),
        })
    }
}
