//! Loads and comparisons at offsets of the model (libpcap's
//! `gen_load_a`, `gen_cmp`, `gen_mcmp`, `gen_bcmp`, ...), and tests of
//! both directions of an address or port.

use pktmatch::ir::{BinOp, CmpOp, Cond, Meta, Val, ValNode};

use super::formula::{P, and, and_opt, or};
use super::offset::Rel;
use super::{Lower, R};
use crate::check::Side;

impl Lower<'_> {
    pub(super) fn load(&mut self, rel: Rel, offset: u32, size: u8) -> R<Val> {
        let o = self.off_of(rel)?;
        Ok(self.ir.load(o.var, o.k.wrapping_add(offset), size))
    }

    pub(super) fn test(&mut self, a: Val, op: CmpOp, b: Val) -> P {
        P::Test(
            Cond::Cmp {
                a,
                op,
                b,
                relation: false,
            },
            self.span,
        )
    }

    pub(super) fn ncmp(
        &mut self,
        rel: Rel,
        offset: u32,
        size: u8,
        mask: u32,
        op: CmpOp,
        v: u32,
    ) -> R<P> {
        let mut a = self.load(rel, offset, size)?;
        if mask != u32::MAX {
            let m = self.ir.k(mask);
            a = self.ir.bin(BinOp::And, a, m);
        }
        let b = self.ir.k(v);
        Ok(self.test(a, op, b))
    }

    pub(super) fn cmp(&mut self, rel: Rel, offset: u32, size: u8, v: u32) -> R<P> {
        self.ncmp(rel, offset, size, u32::MAX, CmpOp::Eq, v)
    }

    pub(super) fn mcmp(&mut self, rel: Rel, offset: u32, size: u8, v: u32, mask: u32) -> R<P> {
        self.ncmp(rel, offset, size, mask, CmpOp::Eq, v)
    }

    pub(super) fn cmp_gt(&mut self, rel: Rel, offset: u32, size: u8, v: u32) -> R<P> {
        self.ncmp(rel, offset, size, u32::MAX, CmpOp::Gt, v)
    }

    pub(super) fn cmp_ge(&mut self, rel: Rel, offset: u32, size: u8, v: u32) -> R<P> {
        self.ncmp(rel, offset, size, u32::MAX, CmpOp::Ge, v)
    }

    pub(super) fn set(&mut self, rel: Rel, offset: u32, size: u8, mask: u32) -> R<P> {
        let a = self.load(rel, offset, size)?;
        let b = self.ir.k(mask);
        Ok(self.test(a, CmpOp::Set, b))
    }

    /// `gen_bcmp`: compares bytes, last word first.
    pub(super) fn bcmp(&mut self, rel: Rel, offset: u32, v: &[u8]) -> R<P> {
        let mut size = v.len();
        let mut b: Option<P> = None;
        while size >= 4 {
            let w = u32::from_be_bytes([v[size - 4], v[size - 3], v[size - 2], v[size - 1]]);
            let t = self.cmp(rel, offset + size as u32 - 4, 4, w)?;
            b = Some(and_opt(b, t));
            size -= 4;
        }
        while size >= 2 {
            let h = u32::from(u16::from_be_bytes([v[size - 2], v[size - 1]]));
            let t = self.cmp(rel, offset + size as u32 - 2, 2, h)?;
            b = Some(and_opt(b, t));
            size -= 2;
        }
        if size > 0 {
            let t = self.cmp(rel, offset, 1, u32::from(v[0]))?;
            b = Some(and_opt(b, t));
        }
        Ok(b.unwrap_or(P::True))
    }

    pub(super) fn meta_test(&mut self, m: Meta, v: u32) -> P {
        let a = self.ir.val(ValNode::Meta(m));
        let b = self.ir.k(v);
        self.test(a, CmpOp::Eq, b)
    }

    /// Source, destination or both (`f` gets whether it is the source).
    pub(super) fn dir_pair(
        &mut self,
        dir: Side,
        f: &mut dyn FnMut(&mut Self, bool) -> R<P>,
    ) -> R<P> {
        match dir {
            Side::Src => f(self, true),
            Side::Dst => f(self, false),
            Side::SrcAndDst => {
                let a = f(self, true)?;
                Ok(and(a, f(self, false)?))
            }
            Side::SrcOrDst => {
                let a = f(self, true)?;
                Ok(or(a, f(self, false)?))
            }
        }
    }
}
