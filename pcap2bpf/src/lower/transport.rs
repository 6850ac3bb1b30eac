//! The transport layer: TCP, UDP and SCTP ports over IPv4 and IPv6
//! (`gen_port`, `gen_portrange` and their helpers).

use super::formula::{P, and, not, or};
use super::offset::Rel;
use super::{Lower, R};
use crate::check::{Side, Transport};
use crate::numbers::{ETHERTYPE_IP, ETHERTYPE_IPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP};

impl Lower<'_> {
    pub(super) fn portatoms(&mut self, rel: Rel, dir: Side, lo: u32, hi: u32, range: bool) -> R<P> {
        self.dir_pair(dir, &mut |l, src| {
            let off = if src { 0 } else { 2 };
            if range {
                let a = l.cmp_ge(rel, off, 2, lo)?;
                let b = not(l.cmp_gt(rel, off, 2, hi)?);
                Ok(and(a, b))
            } else {
                l.cmp(rel, off, 2, lo)
            }
        })
    }

    pub(super) fn portop(
        &mut self,
        v6: bool,
        proto: u32,
        dir: Side,
        lo: u32,
        hi: u32,
        range: bool,
    ) -> R<P> {
        if v6 && self.opts.ipv6_ext_headers {
            self.ip6_walk(proto, &mut |l, at| {
                l.portatoms(Rel::At(at), dir, lo, hi, range)
            })
        } else if v6 {
            let b0 = self.cmp(Rel::LinkPl, 6, 1, proto)?;
            let b1 = self.portatoms(Rel::TranIpv6, dir, lo, hi, range)?;
            Ok(and(b0, b1))
        } else {
            let t = self.cmp(Rel::LinkPl, 9, 1, proto)?;
            let f = self.ipfrag()?;
            let b0 = and(t, f);
            let b1 = self.portatoms(Rel::TranIpv4, dir, lo, hi, range)?;
            Ok(and(b0, b1))
        }
    }

    pub(super) fn port_family(
        &mut self,
        v6: bool,
        proto: Option<Transport>,
        dir: Side,
        lo: u32,
        hi: u32,
        range: bool,
    ) -> R<P> {
        let b0 = self.linktype(if v6 { ETHERTYPE_IPV6 } else { ETHERTYPE_IP })?;
        let b1 = match proto {
            Some(t) => self.portop(v6, t.ipproto(), dir, lo, hi, range)?,
            None => {
                let t = self.portop(v6, IPPROTO_TCP, dir, lo, hi, range)?;
                let u = self.portop(v6, IPPROTO_UDP, dir, lo, hi, range)?;
                let s = self.portop(v6, IPPROTO_SCTP, dir, lo, hi, range)?;
                or(s, or(t, u))
            }
        };
        Ok(and(b0, b1))
    }
}
