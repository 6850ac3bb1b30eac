//! Headers between the link layer and the network layer: VLAN tags,
//! MPLS labels and PPPoE sessions. Each moves the offsets of what follows.

use pktmatch::ir::{BinOp, CmpOp, Ir, Meta, Val, ValNode};

use super::formula::{P, and, or};
use super::offset::{Off, Rel};
use super::{Lower, R};
use crate::check::link::Link;
use crate::numbers::{
    ETHERTYPE_8021AD, ETHERTYPE_8021Q, ETHERTYPE_8021QINQ, ETHERTYPE_MPLS, ETHERTYPE_PPPOES,
    PPP_MPLS_UCAST,
};

impl Lower<'_> {
    /// `gen_vlan`: without extensions the tag is in the frame; with them
    /// (tc, socket filters) the outer tag may be in metadata instead.
    pub(super) fn vlan(&mut self, n: Option<u32>) -> R<P> {
        // Checker::prim refuses both, with the same link-layer state.
        if self.mpls_depth > 0 {
            return Err(self.refused("no VLAN match after MPLS"));
        }
        if self.link != Link::Ether {
            return Err(self.refused("no VLAN support for this link type"));
        }
        let outer =
            self.vlan_depth == 0 && self.off.linkhdr.var.is_none() && self.off.linkhdr.k == 0;
        let p = if self.opts.vlan_meta && outer {
            // Metadata first; when the tag is not there, it is in the
            // frame and every later offset moves 4 bytes on.
            let present = self.ir.val(ValNode::Meta(Meta::VlanPresent));
            let one = self.ir.k(1);
            let b0 = self.test(present, CmpOp::Eq, one);
            let tpid = self.tpid()?;
            let mut p = or(b0, tpid);
            if let Some(n) = n {
                // VID from metadata if present, else from the frame.
                let tci = self.ir.val(ValNode::Meta(Meta::VlanTci));
                let m = self.ir.k(0x0fff);
                let vid = self.ir.bin(BinOp::And, tci, m);
                let k = self.ir.k(n);
                let from_meta = self.test(vid, CmpOp::Eq, k);
                let b0 = self.test(present, CmpOp::Eq, one);
                let from_frame = self.mcmp(Rel::LinkPl, 0, 2, n, 0x0fff)?;
                p = and(p, or(and(b0, from_meta), from_frame));
            }
            // shift = 4 * (1 - vlan_present), added to the variable parts.
            let shift = {
                let inv = self.ir.bin(BinOp::Xor, present, one);
                let two = self.ir.k(2);
                self.ir.bin(BinOp::Shl, inv, two)
            };
            let add = |ir: &mut Ir, o: Option<Val>| {
                Some(match o {
                    Some(v) => ir.bin(BinOp::Add, v, shift),
                    None => shift,
                })
            };
            self.off.linkpl.var = add(self.ir, self.off.linkpl.var);
            if let Some(lt) = self.off.linktype.as_mut() {
                lt.var = add(self.ir, lt.var);
            }
            p
        } else {
            let mut p = self.tpid()?;
            if let Some(n) = n {
                let b1 = self.mcmp(Rel::LinkPl, 0, 2, n, 0x0fff)?;
                p = and(p, b1);
            }
            self.off.linkpl.k = self.off.linkpl.k.wrapping_add(4);
            if let Some(lt) = self.off.linktype.as_mut() {
                lt.k = lt.k.wrapping_add(4);
            }
            p
        };
        self.vlan_depth += 1;
        Ok(p)
    }

    pub(super) fn tpid(&mut self) -> R<P> {
        let a = self.linktype(ETHERTYPE_8021Q)?;
        let b = self.linktype(ETHERTYPE_8021AD)?;
        let c = self.linktype(ETHERTYPE_8021QINQ)?;
        Ok(or(or(a, b), c))
    }

    /// `mpls [label]`: an MPLS label stack entry; what follows is after it.
    pub(super) fn mpls(&mut self, label: Option<u32>) -> R<P> {
        let b0 = if self.mpls_depth > 0 {
            self.mcmp(Rel::PrevMpls, 2, 1, 0, 1)?
        } else {
            match self.link {
                Link::Ether => self.linktype(ETHERTYPE_MPLS)?,
                Link::Ppp => self.linktype(PPP_MPLS_UCAST)?,
                // Checker::prim refuses other links.
                _ => return Err(self.refused("no MPLS support for this link type")),
            }
        };
        let b = match label {
            Some(n) => {
                let b1 = self.mcmp(Rel::LinkPl, 0, 4, n << 12, 0xffff_f000)?;
                and(b0, b1)
            }
            None => b0,
        };
        self.off.nl_nosnap = self.off.nl_nosnap.wrapping_add(4);
        self.off.nl = self.off.nl.wrapping_add(4);
        self.mpls_depth += 1;
        Ok(b)
    }

    /// `pppoes [session]`: a PPPoE session; what follows is in its PPP
    /// frame.
    pub(super) fn pppoes(&mut self, session: Option<u32>) -> R<P> {
        let b0 = self.linktype(ETHERTYPE_PPPOES)?;
        let b = match session {
            Some(n) => {
                let b1 = self.mcmp(Rel::LinkPl, 0, 4, n, 0xffff)?;
                and(b0, b1)
            }
            None => b0,
        };
        let pl = self.off.linkpl;
        self.off.linkhdr = Off {
            var: pl.var,
            k: pl.k.wrapping_add(self.off.nl).wrapping_add(6),
        };
        self.link = Link::Ppp;
        self.geneve = None;
        self.off.linktype = Some(self.off.linkhdr);
        self.off.linkpl = Off {
            var: self.off.linkhdr.var,
            k: self.off.linkhdr.k.wrapping_add(2),
        };
        self.off.nl = 0;
        self.off.nl_nosnap = 0;
        Ok(b)
    }
}
