//! The two opt-in modes libpcap does not have (both off by default):
//! the IPv6 extension-header walk before layer-4 tests
//! ([`super::LowerOptions::ipv6_ext_headers`]) and VLAN tags looked
//! through by every layer-3 and layer-4 primitive
//! ([`super::LowerOptions::vlan_any`]).
//!
//! The walk is libpcap's `protochain` loop unrolled to
//! [`IPV6_WALK_HEADERS`] headers, so that the offset where it stops can
//! be read by the port tests (`protochain` only says which protocol it
//! reached). The offset of each header walked goes into a variable
//! (`Let`), one per depth and per offset of the network layer: each
//! variable always holds the same function of the packet (the offset of
//! the header at that depth), whichever primitive assigns it, so the
//! walks of several primitives share them and the optimiser may relate
//! their tests. A scratch variable per offset carries one step's bytes
//! to the next assignment (no test reads it). Each step reads the next-header and length bytes
//! together (one 2-byte load), as `protochain` reads both before it
//! looks at the next header: a packet cut inside a header rejects
//! exactly where `protochain` rejects.

use pktmatch::ir::{BinOp, CmpOp, MAX_VARS, Val};

use super::formula::{P, and, or};
use super::offset::Off;
use super::{Lower, R};
use crate::check::link::Link;
use crate::check::{Atom, ProtoLayer};
use crate::numbers::IPPROTO_AH;
use crate::syntax::ast::{Arith, Primitive, Proto};

/// How many IPv6 extension headers (and AH headers) the walk of
/// [`super::LowerOptions::ipv6_ext_headers`] follows; a packet with more
/// before the protocol looked for does not match. RFC 8200's recommended
/// order has at most six (hop-by-hop, destination options, routing,
/// fragment, AH, destination options).
pub const IPV6_WALK_HEADERS: u32 = 8;

/// The headers `protochain` walks past on IPv6: hop-by-hop, destination
/// options, routing, fragment, then AH.
const WALKED: [u32; 5] = [0, 60, 43, 44, IPPROTO_AH];

/// The walk's variables for one offset of the network layer.
#[derive(Debug, Clone)]
pub(super) struct WalkVars {
    /// The network layer's offset: variable and constant parts.
    base: (Option<Val>, u32),
    /// Variable `d - 1` holds the offset of header `d` (past the fixed
    /// header, `d` headers walked) from the network layer.
    vars: Vec<Val>,
    /// Their numbers.
    nums: Vec<u32>,
    /// A scratch variable (number and value) for one step of the walk,
    /// assigned and read by the next block only.
    scratch: (u32, Val),
}

impl Lower<'_> {
    fn walk_vars(&mut self, base: (Option<Val>, u32)) -> R<WalkVars> {
        if let Some(w) = self.walk_vars.iter().find(|w| w.base == base) {
            return Ok(w.clone());
        }
        if self.next_var + IPV6_WALK_HEADERS + 1 > MAX_VARS {
            return Err(self.err(format!(
                "too many network-layer offsets for the IPv6 extension-header walk \
                 (each needs {} of the {MAX_VARS} variables)",
                IPV6_WALK_HEADERS + 1
            )));
        }
        let scratch = self.new_var()?;
        let mut w = WalkVars {
            base,
            vars: Vec::new(),
            nums: Vec::new(),
            scratch,
        };
        for _ in 0..IPV6_WALK_HEADERS {
            let (n, v) = self.new_var()?;
            w.nums.push(n);
            w.vars.push(v);
        }
        self.walk_vars.push(w.clone());
        Ok(w)
    }

    /// The IPv6 walk (the caller has tested that the packet is IPv6):
    /// true when it reaches `proto`, within [`IPV6_WALK_HEADERS`] headers,
    /// and `at_end` (given the offset of that header) holds.
    pub(super) fn ip6_walk(
        &mut self,
        proto: u32,
        at_end: &mut dyn FnMut(&mut Self, Off) -> R<P>,
    ) -> R<P> {
        let pl = self.off.linkpl;
        let nlk = pl.k.wrapping_add(self.off.nl);
        let w = self.walk_vars((pl.var, nlk))?;
        let depth = IPV6_WALK_HEADERS as usize;
        // Where header `d` starts, from the start of the packet.
        let hdr = |l: &mut Self, d: usize| -> Off {
            if d == 0 {
                return Off {
                    var: pl.var,
                    k: nlk.wrapping_add(40),
                };
            }
            let x = w.vars[d - 1];
            let var = match pl.var {
                Some(v) => l.ir.bin(BinOp::Add, x, v),
                None => x,
            };
            Off {
                var: Some(var),
                k: nlk,
            }
        };
        // The protocol of header `d`: the next-header field before it.
        let proto_of = |l: &mut Self, d: usize| -> Val {
            if d == 0 {
                l.ir.load(pl.var, nlk.wrapping_add(6), 1)
            } else {
                let o = hdr(l, d - 1);
                l.ir.load(o.var, o.k, 1)
            }
        };
        let found = |l: &mut Self, d: usize, at_end: &mut dyn FnMut(&mut Self, Off) -> R<P>| {
            let a = proto_of(l, d);
            let k = l.ir.k(proto);
            let t = l.test(a, CmpOp::Eq, k);
            let at = hdr(l, d);
            Ok::<P, crate::error::CompileError>(and(t, at_end(l, at)?))
        };
        let mut p = found(self, depth, at_end)?;
        for d in (0..depth).rev() {
            let here = found(self, d, at_end)?;
            let a = proto_of(self, d);
            // One of the walked headers.
            let mut walked = P::False;
            for h in WALKED.iter().rev() {
                let k = self.ir.k(*h);
                let t = self.test(a, CmpOp::Eq, k);
                walked = if matches!(walked, P::False) {
                    t
                } else {
                    or(t, walked)
                };
            }
            let at = hdr(self, d);
            let step = self.walk_step(&w, d, a, at);
            p = or(here, and(walked, and(step, p)));
        }
        Ok(p)
    }

    /// Assigns the offset of header `d + 1`, past header `d` of protocol
    /// `a` at `at`: libpcap's arithmetic, `x + (len + 1) * 8` for an
    /// extension header and `(len + 2) * 4` for AH (libpcap's AH rule,
    /// which does not add the offset of the AH header itself), without a
    /// branch. Two assignments, so that no expression holds a value
    /// across a packet load (socket filters' loads overwrite r0-r5): the
    /// scratch variable gets the next-header and length bytes (one
    /// 2-byte load, as `protochain` reads both) and, above them, whether
    /// header `d` is AH; the offset is computed from it and `x` alone.
    fn walk_step(&mut self, w: &WalkVars, d: usize, a: Val, at: Off) -> P {
        let ir = &mut *self.ir;
        // is_ah = ((a ^ 51) - 1) >> 31: 1 for AH, else 0 (a is a byte).
        let (one, two, three) = (ir.k(1), ir.k(2), ir.k(3));
        let k51 = ir.k(IPPROTO_AH);
        let k31 = ir.k(31);
        let k16 = ir.k(16);
        let xa = ir.bin(BinOp::Xor, a, k51);
        let xa1 = ir.bin(BinOp::Sub, xa, one);
        let is_ah = ir.bin(BinOp::Shr, xa1, k31);
        let flag = ir.bin(BinOp::Shl, is_ah, k16);
        let both = ir.load(at.var, at.k, 2);
        let scratch = ir.bin(BinOp::Add, flag, both);
        let (tn, tv) = w.scratch;
        // x' = x + (len + 1) * 8 - is_ah * (4 * len + x), which is
        // (len + 2) * 4 for AH.
        // Left-deep, the longer operand first: three registers suffice.
        let ff = ir.k(0xff);
        let len = ir.bin(BinOp::And, tv, ff);
        let x = if d == 0 { ir.k(40) } else { w.vars[d - 1] };
        let l8 = ir.bin(BinOp::Shl, len, three);
        let k8 = ir.k(8);
        let ext0 = ir.bin(BinOp::Add, l8, x);
        let ext = ir.bin(BinOp::Add, ext0, k8);
        let l4 = ir.bin(BinOp::Shl, len, two);
        let back = ir.bin(BinOp::Add, l4, x);
        let ah_bit = ir.bin(BinOp::Shr, tv, k16);
        let sel = ir.bin(BinOp::Mul, back, ah_bit);
        let next = ir.bin(BinOp::Sub, ext, sel);
        let a1 = self.assign((tn, tv), scratch);
        let a2 = self.assign((w.nums[d], w.vars[d]), next);
        and(a1, a2)
    }

    /// Whether [`super::LowerOptions::vlan_any`] applies to `a` here: an
    /// Ethernet frame with no `vlan`, `mpls`, `pppoes` or `geneve` before
    /// it in the filter, and a layer-3 or layer-4 primitive.
    pub(super) fn vlan_any_applies(&self, a: &Atom) -> bool {
        let at_start = self.link == Link::Ether
            && self.vlan_depth == 0
            && self.mpls_depth == 0
            && self.geneve.is_none()
            && self.off.linkhdr.var.is_none()
            && self.off.linkhdr.k == 0
            && self.off.linkpl.var.is_none();
        if !at_start {
            return false;
        }
        match a {
            Atom::Ipv4Host { .. }
            | Atom::Ipv6Host { .. }
            | Atom::DecnetHost { .. }
            | Atom::Port { .. } => true,
            Atom::Proto { layer, .. } => *layer != Some(ProtoLayer::Link),
            // `protochain` needs constant offsets: with the tag possibly
            // in metadata (tc, socket filters) it keeps its meaning.
            Atom::ProtoChain { .. } => !self.opts.vlan_meta,
            Atom::EtherHost { .. } | Atom::Direction { .. } | Atom::IfIndex { .. } => false,
            Atom::Prim(p) => match p {
                Primitive::Proto(pr) => !matches!(pr, Proto::Link | Proto::Radio),
                Primitive::Relation(_, x, y) => network_load(x) || network_load(y),
                Primitive::Broadcast(Some(Proto::Ip)) => true,
                Primitive::Multicast(Some(Proto::Ip | Proto::Ip6)) => true,
                _ => false,
            },
        }
    }

    /// `X or (vlan and (X or (vlan and X)))` for the atom `X`, in
    /// libpcap's language (where each `vlan` shifts what follows it): X
    /// untagged, or a tag and X after it, or two tags and X after them.
    /// The shifts end with the atom.
    pub(super) fn atom_vlan_any(&mut self, a: &Atom) -> R<P> {
        let (off, depth) = (self.off, self.vlan_depth);
        let p0 = self.atom(a)?;
        let v1 = self.vlan(None)?;
        let p1 = self.atom(a)?;
        let v2 = self.vlan(None)?;
        let p2 = self.atom(a)?;
        (self.off, self.vlan_depth) = (off, depth);
        Ok(or(p0, and(v1, or(p1, and(v2, p2)))))
    }
}

/// Whether `a` loads from a header above the link layer.
fn network_load(a: &Arith) -> bool {
    match a {
        Arith::Num(..) | Arith::Len(_) => false,
        Arith::Load { proto, index, .. } => *proto != Proto::Link || network_load(index),
        Arith::Binary(_, x, y) => network_load(x) || network_load(y),
        Arith::Neg(x, _) => network_load(x),
    }
}
