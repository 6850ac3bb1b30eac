//! Relations and arithmetic: `expr relop expr` with packet loads
//! (`gen_load`, `gen_arth`, `gen_relation`), `less`, `greater` and
//! `byte`.

use pktmatch::ir::{BinOp, CmpOp, Cond, Val, ValNode};

use super::formula::{P, and, and_opt, not};
use super::offset::Rel;
use super::{Lower, R};
use crate::numbers::IPPROTO_ICMPV6;
use crate::syntax::ast::{Arith, ArithOp, ByteOp, Proto, RelOp};

impl Lower<'_> {
    /// A value and the protocol checks libpcap attaches to it.
    pub(super) fn arith(&mut self, a: &Arith) -> R<(Val, Option<P>)> {
        Ok(match a {
            Arith::Num(n, _) => (self.ir.k(*n), None),
            Arith::Len(_) => (self.ir.val(ValNode::Len), None),
            Arith::Neg(a, _) => {
                let (v, b) = self.arith(a)?;
                (self.ir.val(ValNode::Neg(v)), b)
            }
            Arith::Binary(op, l, r) => {
                let (lv, lb) = self.arith(l)?;
                // libpcap's gen_arth keeps only the left operand's checks.
                let (rv, _) = self.arith(r)?;
                let op = match op {
                    ArithOp::Add => BinOp::Add,
                    ArithOp::Sub => BinOp::Sub,
                    ArithOp::Mul => BinOp::Mul,
                    ArithOp::Div => BinOp::Div,
                    ArithOp::Mod => BinOp::Mod,
                    ArithOp::And => BinOp::And,
                    ArithOp::Or => BinOp::Or,
                    ArithOp::Xor => BinOp::Xor,
                    ArithOp::Shl => BinOp::Shl,
                    ArithOp::Shr => BinOp::Shr,
                };
                (self.ir.bin(op, lv, rv), lb)
            }
            Arith::Load {
                proto, index, size, ..
            } => self.arith_load(*proto, index, *size as u8)?,
        })
    }

    /// A load at `base + idx` (libpcap: X = idx, `ld [x + base.k]`).
    ///
    /// The sum of X and `k` does not wrap in libpcap's filter machine (a
    /// load past the packet rejects it), but its optimiser turns a load
    /// whose X is a known constant into `ld [k + X]`, adding in 32 bits:
    /// `ip[4294967294:1]` reads `ether[12]` on Ethernet. Where libpcap
    /// optimises, a constant index wraps the same way.
    pub(super) fn indexed(&mut self, var: Option<Val>, idx: Val, k: u32, size: u8) -> Val {
        let off = match var {
            Some(v) => self.ir.bin(BinOp::Add, idx, v),
            None => idx,
        };
        match self.ir.node(off) {
            ValNode::Const(c) if self.pcap_optimizes => self.ir.load(None, c.wrapping_add(k), size),
            ValNode::Const(c) if c.checked_add(k).is_some() => self.ir.load(None, c + k, size),
            _ => self.ir.load(Some(off), k, size),
        }
    }

    /// A load at `idx` from the transport header, which starts `x` (the
    /// IPv4 header length) past `k` (libpcap: A = idx + x in 32 bits,
    /// X = A, `ld [x + k]`). Where libpcap optimises, a constant index
    /// moves into `k` instead (a peephole of its optimiser: `tcp[c]`
    /// loads `[x + (k + c)]`, that sum in 32 bits): near the wrap the
    /// two differ, and the peephole decides what libpcap reads.
    fn transport_indexed(&mut self, x: Val, idx: Val, k: u32, size: u8) -> Val {
        match self.ir.node(idx) {
            ValNode::Const(c) if self.pcap_optimizes => {
                self.ir.load(Some(x), k.wrapping_add(c), size)
            }
            _ => {
                let off = self.ir.bin(BinOp::Add, idx, x);
                self.ir.load(Some(off), k, size)
            }
        }
    }

    pub(super) fn arith_load(
        &mut self,
        proto: Proto,
        index: &Arith,
        size: u8,
    ) -> R<(Val, Option<P>)> {
        use Proto::*;
        let (idx, ib) = self.arith(index)?;
        let pl = self.off.linkpl;
        let nlk = pl.k.wrapping_add(self.off.nl);
        Ok(match proto {
            Link => {
                let h = self.off.linkhdr;
                (self.indexed(h.var, idx, h.k, size), ib)
            }
            Ip | Arp | Rarp | Atalk | Decnet | Sca | Lat | Moprc | Mopdl | Ip6 => {
                let v = self.indexed(pl.var, idx, nlk, size);
                let b = self.abbrev(proto)?;
                (v, Some(and_opt(ib, b)))
            }
            Sctp | Tcp | Udp | Icmp | Igmp | Igrp | Pim | Vrrp | Carp => {
                let x = self.iphdrlen();
                let v = self.transport_indexed(x, idx, nlk, size);
                let pb = self.abbrev(proto)?;
                let f = self.ipfrag()?;
                let b = and_opt(ib, and(pb, f));
                let ipb = self.abbrev(Proto::Ip)?;
                (v, Some(and(ipb, b)))
            }
            Icmp6 => {
                let b = self.abbrev(Ip6)?;
                let b = and_opt(ib, b);
                let c = self.cmp(Rel::LinkPl, 6, 1, IPPROTO_ICMPV6)?;
                let b = and(b, c);
                let v = self.indexed(pl.var, idx, nlk.wrapping_add(40), size);
                (v, Some(b))
            }
            // Checker::arith allows exactly the protocols above.
            _ => return Err(self.refused("unsupported index operation")),
        })
    }

    pub(super) fn relation(&mut self, op: RelOp, a: &Arith, b: &Arith) -> R<P> {
        let (av, ab) = self.arith(a)?;
        let (bv, bb) = self.arith(b)?;
        let (cop, rev) = match op {
            RelOp::Gt => (CmpOp::Gt, false),
            RelOp::Ge => (CmpOp::Ge, false),
            RelOp::Eq => (CmpOp::Eq, false),
            RelOp::Le => (CmpOp::Gt, true),
            RelOp::Lt => (CmpOp::Ge, true),
            RelOp::Ne => (CmpOp::Eq, true),
        };
        let mut t = P::Test(
            Cond::Cmp {
                a: av,
                op: cop,
                b: bv,
                relation: true,
            },
            self.span,
        );
        if rev {
            t = not(t);
        }
        let checks = match (ab, bb) {
            (Some(x), Some(y)) => Some(and(x, y)),
            (x, None) => x,
            (None, y) => y,
        };
        Ok(and_opt(checks, t))
    }

    /// `less N`: the wire length is at most N.
    pub(super) fn less(&mut self, n: u32) -> P {
        let l = self.ir.val(ValNode::Len);
        let k = self.ir.k(n);
        not(self.test(l, CmpOp::Gt, k))
    }

    /// `greater N`: the wire length is at least N.
    pub(super) fn greater(&mut self, n: u32) -> P {
        let l = self.ir.val(ValNode::Len);
        let k = self.ir.k(n);
        self.test(l, CmpOp::Ge, k)
    }

    /// `byte IDX OP VAL` (`gen_byteop`).
    pub(super) fn byte(&mut self, idx: u32, op: ByteOp, val: u32) -> R<P> {
        match op {
            ByteOp::Eq => self.cmp(Rel::LinkHdr, idx, 1, val),
            ByteOp::Lt => Ok(not(self.cmp_ge(Rel::LinkHdr, idx, 1, val)?)),
            ByteOp::Gt => self.cmp_gt(Rel::LinkHdr, idx, 1, val),
            // Checker::prim refuses these: libpcap tests a stale register.
            ByteOp::And | ByteOp::Or => Err(self.refused(
                "'byte' with '&' or '|' is not supported: libpcap tests a stale register there",
            )),
        }
    }
}
