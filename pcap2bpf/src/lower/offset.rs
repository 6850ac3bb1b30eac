//! The offset model: where the link-layer header, its type field, its
//! payload and the network layer start (libpcap's `off_linkhdr`,
//! `off_linktype`, `off_linkpl`, `off_nl`), and the IPv4 header length.
//! `vlan`, `mpls`, `pppoes` and `geneve` move them for what follows.

use pktmatch::ir::{BinOp, Val};

use super::{Lower, R};
use crate::LinkType;

/// An offset: a variable part (a value) plus a constant.
#[derive(Debug, Clone, Copy)]
pub(super) struct Off {
    pub(super) var: Option<Val>,
    pub(super) k: u32,
}

impl Off {
    /// A constant offset.
    pub(super) fn k(k: u32) -> Off {
        Off { var: None, k }
    }
}

/// The offsets at a point of the filter.
#[derive(Debug, Clone, Copy)]
pub(super) struct Offsets {
    /// The link-layer header.
    pub(super) linkhdr: Off,
    /// The link-layer type field; `None` where there is none (raw IP).
    pub(super) linktype: Option<Off>,
    /// The link-layer payload.
    pub(super) linkpl: Off,
    /// The network layer, from the link-layer payload (past MPLS labels).
    pub(super) nl: u32,
    /// The same, with an LLC header that has no SNAP header.
    pub(super) nl_nosnap: u32,
}

impl Offsets {
    /// The offsets at the start of a filter for `link`.
    pub(super) fn at_start(link: LinkType) -> Offsets {
        let (linktype, linkpl) = match link {
            LinkType::En10mb => (Some(12), 14),
            LinkType::Raw => (None, 0),
            LinkType::LinuxSll => (Some(14), 16),
            LinkType::LinuxSll2 => (Some(0), 20),
            LinkType::Null | LinkType::Loop => (Some(0), 4),
        };
        Offsets {
            linkhdr: Off::k(0),
            linktype: linktype.map(Off::k),
            linkpl: Off::k(linkpl),
            nl: 0,
            // The LLC header (3 bytes) before a network layer without SNAP.
            nl_nosnap: if link == LinkType::En10mb { 3 } else { 0 },
        }
    }
}

/// libpcap's `e_offrel`: what an offset is relative to.
#[derive(Debug, Clone, Copy)]
pub(super) enum Rel {
    LinkHdr,
    Llc,
    LinkPl,
    LinkPlNoSnap,
    LinkType,
    PrevMpls,
    TranIpv4,
    TranIpv6,
    /// An offset computed elsewhere (where the IPv6 extension-header walk
    /// of [`super::LowerOptions::ipv6_ext_headers`] stopped).
    At(Off),
}

impl Lower<'_> {
    pub(super) fn off_of(&mut self, rel: Rel) -> R<Off> {
        let pl = self.off.linkpl;
        Ok(match rel {
            Rel::LinkHdr => self.off.linkhdr,
            Rel::Llc => pl,
            Rel::LinkPl => Off {
                var: pl.var,
                k: pl.k.wrapping_add(self.off.nl),
            },
            Rel::LinkPlNoSnap => Off {
                var: pl.var,
                k: pl.k.wrapping_add(self.off.nl_nosnap),
            },
            Rel::PrevMpls => Off {
                var: pl.var,
                k: pl.k.wrapping_add(self.off.nl).wrapping_sub(4),
            },
            Rel::LinkType => self
                .off
                .linktype
                // Only raw IP has no type field, and nothing tests it there.
                .ok_or_else(|| self.refused("link-layer type filtering not implemented"))?,
            Rel::TranIpv4 => Off {
                var: Some(self.iphdrlen()),
                k: pl.k.wrapping_add(self.off.nl),
            },
            Rel::At(o) => o,
            Rel::TranIpv6 => Off {
                var: pl.var,
                k: pl.k.wrapping_add(self.off.nl).wrapping_add(40),
            },
        })
    }

    /// `gen_loadx_iphdrlen`: the IPv4 header length (plus the variable
    /// part of the link-layer payload offset).
    pub(super) fn iphdrlen(&mut self) -> Val {
        let pl = self.off.linkpl;
        let b = self.ir.load(pl.var, pl.k.wrapping_add(self.off.nl), 1);
        let m = self.ir.k(0xf);
        let two = self.ir.k(2);
        let low = self.ir.bin(BinOp::And, b, m);
        let hl = self.ir.bin(BinOp::Shl, low, two);
        match pl.var {
            Some(v) => self.ir.bin(BinOp::Add, hl, v),
            None => hl,
        }
    }
}
