//! Lowering: the checked tree to the IR, with libpcap's meaning.
//!
//! This follows libpcap 1.10.3's `gencode.c` closely: each primitive
//! becomes the same tests, on the same bytes, in the same order (the order
//! matters: a load past the captured bytes rejects the whole packet, so
//! `a or b` must not look at `b`'s bytes when `a` holds). `vlan`, `mpls`
//! and `pppoes` shift the offsets of everything lowered after them, as
//! libpcap's `off_linkpl`/`off_linktype`/`off_nl` do; `geneve` computes
//! the offsets of the encapsulated frame at run time into variables
//! (libpcap's scratch registers) and everything after it uses those.

use crate::LinkType;
use crate::ast::{Arith, ArithOp, ByteOp, Dir, Llc, Primitive, Proto, RelOp, Span};
use crate::check::{Atom, Checked};
use crate::error::CompileError;
use pktmatch::Target;
use pktmatch::ir::{
    BinOp, Block, BlockId, CmpOp, Cond, Edge, EntityRef, Ir, MAX_VARS, Meta, Val, ValNode,
};

/// What the lowering needs to know about where the filter runs: made with
/// [`LowerOptions::offline`] or [`LowerOptions::live`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowerOptions {
    /// The link type of the packets.
    link: LinkType,
    /// The outer VLAN tag may be in metadata (tc, socket filters): lower
    /// `vlan` the way libpcap does with Linux BPF extensions.
    vlan_meta: bool,
    /// Filtering a capture file: `inbound`, `outbound` and `ifindex` on
    /// links without a direction field are errors, as in libpcap.
    offline: bool,
    /// `inbound`/`outbound` are known at compile time (XDP: always
    /// inbound): `Some(outgoing)`.
    fixed_direction: Option<bool>,
    /// The IPv4 netmask for `ip broadcast`.
    netmask: Option<u32>,
}

impl LowerOptions {
    /// For packets of a capture file, run through the test-run XDP
    /// program: the tag is in the frame, `inbound`/`ifindex` have
    /// libpcap's capture-file meaning.
    pub fn offline(link: LinkType, netmask: Option<u32>) -> Self {
        LowerOptions {
            link,
            vlan_meta: false,
            offline: true,
            fixed_direction: Some(false),
            netmask,
        }
    }

    /// For packets of a live hook of `target`: XDP sees the frame with
    /// its tag and only inbound packets; tc and socket filters may find
    /// the outer VLAN tag in metadata and read the direction at run time.
    pub fn live(link: LinkType, target: Target, netmask: Option<u32>) -> Self {
        let xdp = target == Target::Xdp;
        LowerOptions {
            link,
            vlan_meta: !xdp,
            offline: false,
            fixed_direction: xdp.then_some(false),
            netmask,
        }
    }

    /// Sets whether `inbound`/`outbound` are known at compile time:
    /// `Some(outgoing)` when every packet goes the same way (tc egress:
    /// `Some(true)`), `None` to read the direction from the packet's
    /// metadata.
    pub fn fixed_direction(mut self, outgoing: Option<bool>) -> Self {
        self.fixed_direction = outgoing;
        self
    }
}

/// A boolean formula of tests, in evaluation order.
#[derive(Debug, Clone)]
enum P {
    True,
    False,
    Test(Cond, Span),
    /// The test, negated.
    NotTest(Cond, Span),
    // One box for both operands: half the allocations of two.
    And(Box<(P, P)>),
    Or(Box<(P, P)>),
}

impl P {
    /// Number of tests (each becomes one block).
    fn tests(&self) -> usize {
        match self {
            P::True | P::False => 0,
            P::Test(..) | P::NotTest(..) => 1,
            P::And(ab) | P::Or(ab) => ab.0.tests() + ab.1.tests(),
        }
    }
}

fn and(a: P, b: P) -> P {
    P::And(Box::new((a, b)))
}
fn or(a: P, b: P) -> P {
    P::Or(Box::new((a, b)))
}
/// `a` negated down to its tests (De Morgan): the blocks are those a
/// negation node would give (its edges swapped), without allocating one.
fn not(a: P) -> P {
    match a {
        P::True => P::False,
        P::False => P::True,
        P::Test(c, s) => P::NotTest(c, s),
        P::NotTest(c, s) => P::Test(c, s),
        P::And(mut ab) => {
            let (x, y) = std::mem::replace(&mut *ab, (P::True, P::True));
            *ab = (not(x), not(y));
            P::Or(ab)
        }
        P::Or(mut ab) => {
            let (x, y) = std::mem::replace(&mut *ab, (P::True, P::True));
            *ab = (not(x), not(y));
            P::And(ab)
        }
    }
}
fn and_opt(a: Option<P>, b: P) -> P {
    match a {
        Some(a) => and(a, b),
        None => b,
    }
}

/// An offset: a variable part (a value) plus a constant.
#[derive(Debug, Clone, Copy)]
struct Off {
    var: Option<Val>,
    k: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Ether,
    Raw,
    Sll,
    Sll2,
    Null,
    Loop,
    Ppp,
}

/// libpcap's `e_offrel`: what an offset is relative to.
#[derive(Debug, Clone, Copy)]
enum Rel {
    LinkHdr,
    Llc,
    LinkPl,
    LinkPlNoSnap,
    LinkType,
    PrevMpls,
    TranIpv4,
    TranIpv6,
}

const ETHERMTU: u32 = 1500;
const ET_IP: u32 = 0x0800;
const ET_IPV6: u32 = 0x86dd;
const ET_ARP: u32 = 0x0806;
const ET_REVARP: u32 = 0x8035;
const ET_ATALK: u32 = 0x809b;
const ET_AARP: u32 = 0x80f3;
const ET_IPX: u32 = 0x8137;
const SAP_ISONS: u32 = 0xfe;
const SAP_IP: u32 = 0x06;
const SAP_NETBEUI: u32 = 0xf0;
const SAP_IPX: u32 = 0xe0;
const GENEVE_PORT: u32 = 6081;
/// Geneve's protocol type for an Ethernet payload.
const ET_TEB: u32 = 0x6558;

/// Lowers `c` into `ir`, setting its entry.
pub fn lower(c: Option<&Checked>, opts: &LowerOptions, ir: &mut Ir) -> Result<(), CompileError> {
    let Some(c) = c else {
        ir.entry = Some(Edge::ACCEPT);
        return Ok(());
    };
    // libpcap turns its optimiser off for filters with `geneve`.
    ir.pcap_unoptimized = has_geneve(c);
    let mut l = Lower::new(opts, ir);
    let p = l.node(c)?;
    let made_vars = l.next_var > 0;
    // Build the CFG backwards so that every jump goes forward: the block
    // evaluated first gets the lowest index after the reversal below.
    // One block per test, allocated once at its exact size.
    let mut b = CfgBuilder {
        blocks: Vec::with_capacity(p.tests()),
    };
    let entry = b.emit(&p, Edge::ACCEPT, Edge::REJECT);
    let n = b.blocks.len();
    let flip = |e: Edge| match e {
        Edge::Block(i) => Edge::Block(BlockId::new(n - 1 - i.index())),
        e => e,
    };
    b.blocks.reverse();
    for blk in &mut b.blocks {
        blk.t = flip(blk.t);
        blk.f = flip(blk.f);
    }
    ir.blocks = b.blocks;
    ir.entry = Some(flip(entry));
    // Without variables (only `geneve` makes them) nothing reads one.
    if made_vars {
        check_vars_set(ir)
    } else {
        Ok(())
    }
}

fn has_geneve(c: &Checked) -> bool {
    match c {
        Checked::And(ab) | Checked::Or(ab) => has_geneve(&ab.0) || has_geneve(&ab.1),
        Checked::Not(a) => has_geneve(a),
        Checked::Atom(Atom::Prim(Primitive::Geneve(_)), _) => true,
        Checked::Atom(..) => false,
    }
}

/// The variables `v` reads, as a bit set.
fn vars_read(ir: &Ir, v: Val) -> u64 {
    match ir.node(v) {
        ValNode::Var(n) => 1 << n,
        ValNode::Load { off: Some(o), .. } | ValNode::Neg(o) => vars_read(ir, o),
        ValNode::Bin(_, a, b) => vars_read(ir, a) | vars_read(ir, b),
        _ => 0,
    }
}

/// Refuses filters that read a variable on a path that did not set it:
/// tests after `geneve` that also run when `geneve` did not match (`not
/// geneve and tcp`, `geneve or udp`). libpcap reads scratch memory it
/// never wrote there (the kernel's classic BPF checker refuses such
/// programs), so those tests have no meaning to reproduce.
fn check_vars_set(ir: &Ir) -> Result<(), CompileError> {
    let n = ir.blocks.len();
    // set[i]: variables set on every path into block i.
    let mut set: Vec<Option<u64>> = vec![None; n];
    if let Some(Edge::Block(i)) = ir.entry {
        set[i.index()] = Some(0);
    }
    for i in 0..n {
        let Some(have) = set[i] else { continue };
        let b = ir.blocks[i];
        let (reads, sets) = match b.cond {
            Cond::Cmp { a, b, .. } => (vars_read(ir, a) | vars_read(ir, b), 0),
            Cond::ProtoChain { .. } => (0, 0),
            Cond::Let { var, val } => (vars_read(ir, val), 1u64 << var),
        };
        if reads & !have != 0 {
            return Err(CompileError::new(
                "this test also runs on packets where the 'geneve' before it did not match; \
                 libpcap then reads offsets it never computed (uninitialised scratch memory), \
                 so it has no defined meaning: put the test under 'geneve and ...' or before 'geneve'",
                b.span,
            ));
        }
        for (e, out) in [(b.t, have | sets), (b.f, have)] {
            if let Edge::Block(j) = e {
                let j = j.index();
                set[j] = Some(set[j].map_or(out, |x| x & out));
            }
        }
    }
    Ok(())
}

/// Turns a formula into blocks with short-circuit evaluation.
struct CfgBuilder {
    blocks: Vec<Block>,
}

impl CfgBuilder {
    /// Emits `p` so that it continues at `t` when true and `f` when false;
    /// returns its entry. Blocks are pushed last-evaluated first.
    fn emit(&mut self, p: &P, t: Edge, f: Edge) -> Edge {
        match p {
            P::True => t,
            P::False => f,
            P::Test(cond, span) => self.emit_test(*cond, *span, t, f),
            P::And(ab) => {
                let eb = self.emit(&ab.1, t, f);
                self.emit(&ab.0, eb, f)
            }
            P::Or(ab) => {
                let eb = self.emit(&ab.1, t, f);
                self.emit(&ab.0, t, eb)
            }
            P::NotTest(cond, span) => self.emit_test(*cond, *span, f, t),
        }
    }

    /// One block testing `cond`.
    fn emit_test(&mut self, cond: Cond, span: Span, t: Edge, f: Edge) -> Edge {
        // An assignment always holds; its false edge is unused.
        let f = if matches!(cond, Cond::Let { .. }) {
            Edge::REJECT
        } else {
            f
        };
        self.blocks.push(Block::new(cond, t, f, span));
        Edge::Block(BlockId::new(self.blocks.len() - 1))
    }
}

struct Lower<'a> {
    ir: &'a mut Ir,
    opts: LowerOptions,
    link: Link,
    linkhdr: Off,
    linktype: Option<Off>,
    linkpl: Off,
    nl: u32,
    nl_nosnap: u32,
    mpls_depth: u32,
    vlan_depth: u32,
    /// libpcap's `is_geneve`: after `geneve` (until `pppoes`), link-layer
    /// address tests first check that the encapsulated frame has an
    /// Ethernet header; these are the variables of its start and of its
    /// payload, which differ exactly then.
    geneve: Option<(Val, Val)>,
    /// The next free variable.
    next_var: u32,
    span: Span,
}

type R<T> = Result<T, CompileError>;

impl<'a> Lower<'a> {
    fn new(opts: &LowerOptions, ir: &'a mut Ir) -> Self {
        let (link, linktype, linkpl) = match opts.link {
            LinkType::En10mb => (Link::Ether, Some(12), 14),
            LinkType::Raw => (Link::Raw, None, 0),
            LinkType::LinuxSll => (Link::Sll, Some(14), 16),
            LinkType::LinuxSll2 => (Link::Sll2, Some(0), 20),
            LinkType::Null => (Link::Null, Some(0), 4),
            LinkType::Loop => (Link::Loop, Some(0), 4),
        };
        Lower {
            ir,
            opts: *opts,
            link,
            linkhdr: Off { var: None, k: 0 },
            linktype: linktype.map(|k| Off { var: None, k }),
            linkpl: Off {
                var: None,
                k: linkpl,
            },
            nl: 0,
            nl_nosnap: if link == Link::Ether { 3 } else { 0 },
            mpls_depth: 0,
            vlan_depth: 0,
            geneve: None,
            next_var: 0,
            span: Span::default(),
        }
    }

    fn err(&self, m: impl Into<String>) -> CompileError {
        CompileError::new(m, self.span)
    }

    fn node(&mut self, c: &Checked) -> R<P> {
        Ok(match c {
            Checked::And(ab) => {
                let a = self.node(&ab.0)?;
                and(a, self.node(&ab.1)?)
            }
            Checked::Or(ab) => {
                let a = self.node(&ab.0)?;
                or(a, self.node(&ab.1)?)
            }
            Checked::Not(a) => not(self.node(a)?),
            Checked::Atom(a, span) => {
                self.span = *span;
                self.atom(a)?
            }
        })
    }

    // ---- loads and comparisons (gen_load_a, gen_cmp, ...) ----

    fn off_of(&mut self, rel: Rel) -> R<Off> {
        let pl = self.linkpl;
        Ok(match rel {
            Rel::LinkHdr => self.linkhdr,
            Rel::Llc => pl,
            Rel::LinkPl => Off {
                var: pl.var,
                k: pl.k.wrapping_add(self.nl),
            },
            Rel::LinkPlNoSnap => Off {
                var: pl.var,
                k: pl.k.wrapping_add(self.nl_nosnap),
            },
            Rel::PrevMpls => Off {
                var: pl.var,
                k: pl.k.wrapping_add(self.nl).wrapping_sub(4),
            },
            Rel::LinkType => self
                .linktype
                .ok_or_else(|| self.err("link-layer type filtering not implemented"))?,
            Rel::TranIpv4 => Off {
                var: Some(self.iphdrlen()),
                k: pl.k.wrapping_add(self.nl),
            },
            Rel::TranIpv6 => Off {
                var: pl.var,
                k: pl.k.wrapping_add(self.nl).wrapping_add(40),
            },
        })
    }

    /// `gen_loadx_iphdrlen`: the IPv4 header length (plus the variable
    /// part of the link-layer payload offset).
    fn iphdrlen(&mut self) -> Val {
        let pl = self.linkpl;
        let b = self.ir.load(pl.var, pl.k.wrapping_add(self.nl), 1);
        let m = self.ir.k(0xf);
        let two = self.ir.k(2);
        let low = self.ir.bin(BinOp::And, b, m);
        let hl = self.ir.bin(BinOp::Shl, low, two);
        match pl.var {
            Some(v) => self.ir.bin(BinOp::Add, hl, v),
            None => hl,
        }
    }

    fn load(&mut self, rel: Rel, offset: u32, size: u8) -> R<Val> {
        let o = self.off_of(rel)?;
        Ok(self.ir.load(o.var, o.k.wrapping_add(offset), size))
    }

    fn test(&mut self, a: Val, op: CmpOp, b: Val) -> P {
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

    fn ncmp(&mut self, rel: Rel, offset: u32, size: u8, mask: u32, op: CmpOp, v: u32) -> R<P> {
        let mut a = self.load(rel, offset, size)?;
        if mask != u32::MAX {
            let m = self.ir.k(mask);
            a = self.ir.bin(BinOp::And, a, m);
        }
        let b = self.ir.k(v);
        Ok(self.test(a, op, b))
    }

    fn cmp(&mut self, rel: Rel, offset: u32, size: u8, v: u32) -> R<P> {
        self.ncmp(rel, offset, size, u32::MAX, CmpOp::Eq, v)
    }

    fn mcmp(&mut self, rel: Rel, offset: u32, size: u8, v: u32, mask: u32) -> R<P> {
        self.ncmp(rel, offset, size, mask, CmpOp::Eq, v)
    }

    fn cmp_gt(&mut self, rel: Rel, offset: u32, size: u8, v: u32) -> R<P> {
        self.ncmp(rel, offset, size, u32::MAX, CmpOp::Gt, v)
    }

    fn cmp_ge(&mut self, rel: Rel, offset: u32, size: u8, v: u32) -> R<P> {
        self.ncmp(rel, offset, size, u32::MAX, CmpOp::Ge, v)
    }

    fn set(&mut self, rel: Rel, offset: u32, size: u8, mask: u32) -> R<P> {
        let a = self.load(rel, offset, size)?;
        let b = self.ir.k(mask);
        Ok(self.test(a, CmpOp::Set, b))
    }

    /// `gen_bcmp`: compares bytes, last word first.
    fn bcmp(&mut self, rel: Rel, offset: u32, v: &[u8]) -> R<P> {
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

    // ---- link types (gen_linktype and friends) ----

    fn linktype(&mut self, llp: u32) -> R<P> {
        if self.mpls_depth > 0 {
            let ver = match llp {
                ET_IP => 0x40,
                ET_IPV6 => 0x60,
                _ => return Err(self.err("unsupported protocol over mpls")),
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
                ET_IP => self.mcmp(Rel::LinkHdr, 0, 1, 0x40, 0xf0),
                ET_IPV6 => self.mcmp(Rel::LinkHdr, 0, 1, 0x60, 0xf0),
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
                    ET_IP => self.cmp(Rel::LinkHdr, 0, 4, fix(2)),
                    ET_IPV6 => {
                        let b0 = self.cmp(Rel::LinkHdr, 0, 4, fix(30))?;
                        let b1 = self.cmp(Rel::LinkHdr, 0, 4, fix(24))?;
                        let b2 = self.cmp(Rel::LinkHdr, 0, 4, fix(28))?;
                        Ok(or(b0, or(b1, b2)))
                    }
                    _ => Ok(P::False),
                }
            }
            Link::Ppp => {
                let t = match llp {
                    ET_IP => 0x21,
                    ET_IPV6 => 0x57,
                    0x6003 => 0x27,
                    ET_ATALK => 0x29,
                    0x0600 => 0x3f,
                    SAP_ISONS => 0x23,
                    0x42 => 0x31,
                    SAP_IPX => 0x2b,
                    v => v,
                };
                self.cmp(Rel::LinkType, 0, 2, t)
            }
        }
    }

    fn not_gt_mtu(&mut self) -> R<P> {
        Ok(not(self.cmp_gt(Rel::LinkType, 0, 2, ETHERMTU)?))
    }

    fn snap(&mut self, org: u32, ptype: u32) -> R<P> {
        let v = [
            0xaa,
            0xaa,
            0x03,
            (org >> 16) as u8,
            (org >> 8) as u8,
            org as u8,
            (ptype >> 8) as u8,
            ptype as u8,
        ];
        self.bcmp(Rel::Llc, 0, &v)
    }

    fn ether_linktype(&mut self, llp: u32) -> R<P> {
        match llp {
            SAP_ISONS | SAP_IP | SAP_NETBEUI => {
                let b0 = self.not_gt_mtu()?;
                let b1 = self.cmp(Rel::Llc, 0, 2, (llp << 8) | llp)?;
                Ok(and(b0, b1))
            }
            SAP_IPX => {
                let a = self.cmp(Rel::Llc, 0, 1, SAP_IPX)?;
                let b = self.cmp(Rel::Llc, 0, 2, 0xffff)?;
                let b1 = or(a, b);
                let s = self.snap(0, ET_IPX)?;
                let b1 = or(s, b1);
                let b0 = self.not_gt_mtu()?;
                let b1 = and(b0, b1);
                let e = self.cmp(Rel::LinkType, 0, 2, ET_IPX)?;
                Ok(or(e, b1))
            }
            ET_ATALK | ET_AARP => {
                let b0 = self.not_gt_mtu()?;
                let s = if llp == ET_ATALK {
                    self.snap(0x080007, ET_ATALK)?
                } else {
                    self.snap(0, ET_AARP)?
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

    fn sll_linktype(&mut self, llp: u32) -> R<P> {
        const P_802_2: u32 = 4;
        const P_802_3: u32 = 1;
        match llp {
            SAP_ISONS | SAP_IP | SAP_NETBEUI => {
                let b0 = self.cmp(Rel::LinkType, 0, 2, P_802_2)?;
                let b1 = self.cmp(Rel::Llc, 0, 2, (llp << 8) | llp)?;
                Ok(and(b0, b1))
            }
            SAP_IPX => {
                let a = self.cmp(Rel::Llc, 0, 1, SAP_IPX)?;
                let s = self.snap(0, ET_IPX)?;
                let b1 = or(a, s);
                let b0 = self.cmp(Rel::LinkType, 0, 2, P_802_2)?;
                let b1 = and(b0, b1);
                let b0 = self.cmp(Rel::LinkType, 0, 2, P_802_3)?;
                let b1 = or(b0, b1);
                let b0 = self.cmp(Rel::LinkType, 0, 2, ET_IPX)?;
                Ok(or(b0, b1))
            }
            ET_ATALK | ET_AARP => {
                let b0 = self.cmp(Rel::LinkType, 0, 2, P_802_2)?;
                let s = if llp == ET_ATALK {
                    self.snap(0x080007, ET_ATALK)?
                } else {
                    self.snap(0, ET_AARP)?
                };
                let b1 = and(b0, s);
                let b0 = self.cmp(Rel::LinkType, 0, 2, llp)?;
                Ok(or(b0, b1))
            }
            _ if llp <= ETHERMTU => {
                let b0 = self.cmp(Rel::LinkType, 0, 2, P_802_2)?;
                let k = self.linkpl.k;
                let b1 = self.cmp(Rel::LinkHdr, k, 1, llp)?;
                Ok(and(b0, b1))
            }
            _ => self.cmp(Rel::LinkType, 0, 2, llp),
        }
    }

    // ---- protocols ----

    fn ipfrag(&mut self) -> R<P> {
        Ok(not(self.set(Rel::LinkPl, 6, 2, 0x1fff)?))
    }

    /// `gen_proto`.
    fn proto(&mut self, v: u32, layer: Option<Proto>) -> R<P> {
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

    fn isis_any(&mut self, types: &[u32]) -> R<P> {
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
    fn abbrev(&mut self, p: Proto) -> R<P> {
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

    // ---- hosts ----

    fn dir_pair(&mut self, dir: Dir, f: &mut dyn FnMut(&mut Self, bool) -> R<P>) -> R<P> {
        match dir {
            Dir::Src => f(self, true),
            Dir::Dst => f(self, false),
            Dir::SrcAndDst => {
                let a = f(self, true)?;
                Ok(and(a, f(self, false)?))
            }
            Dir::Default | Dir::SrcOrDst => {
                let a = f(self, true)?;
                Ok(or(a, f(self, false)?))
            }
            _ => Err(self.err("invalid direction qualifier")),
        }
    }

    fn hostop(&mut self, addr: u32, mask: u32, dir: Dir, llp: u32, so: u32, d: u32) -> R<P> {
        self.dir_pair(dir, &mut |l, src| {
            let b0 = l.linktype(llp)?;
            let b1 = l.mcmp(Rel::LinkPl, if src { so } else { d }, 4, addr, mask)?;
            Ok(and(b0, b1))
        })
    }

    fn host4(&mut self, proto: Option<Proto>, dir: Dir, addr: u32, mask: u32) -> R<P> {
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

    fn host6(&mut self, dir: Dir, addr: &[u8; 16], mask: &[u8; 16]) -> R<P> {
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

    fn decnet(&mut self, dir: Dir, addr: u16) -> R<P> {
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

    fn ehost(&mut self, dir: Dir, mac: &[u8; 6]) -> R<P> {
        let b = self.dir_pair(dir, &mut |l, src| {
            l.bcmp(Rel::LinkHdr, if src { 6 } else { 0 }, mac)
        })?;
        Ok(self.with_ll_check(b))
    }

    /// `gen_prevlinkhdr_check` before a link-layer address test: after
    /// `geneve`, the encapsulated frame must have an Ethernet header (its
    /// start and its payload differ).
    fn with_ll_check(&mut self, b: P) -> P {
        match self.geneve {
            Some((hdr, pl)) => {
                let same = self.test(hdr, CmpOp::Eq, pl);
                and(not(same), b)
            }
            None => b,
        }
    }

    // ---- ports ----

    fn portatoms(&mut self, rel: Rel, dir: Dir, lo: u32, hi: u32, range: bool) -> R<P> {
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

    fn portop(&mut self, v6: bool, proto: u32, dir: Dir, lo: u32, hi: u32, range: bool) -> R<P> {
        if v6 {
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

    fn port_family(
        &mut self,
        v6: bool,
        proto: Option<Proto>,
        dir: Dir,
        lo: u32,
        hi: u32,
        range: bool,
    ) -> R<P> {
        let b0 = self.linktype(if v6 { ET_IPV6 } else { ET_IP })?;
        let b1 = match proto {
            Some(Proto::Tcp) => self.portop(v6, 6, dir, lo, hi, range)?,
            Some(Proto::Udp) => self.portop(v6, 17, dir, lo, hi, range)?,
            Some(Proto::Sctp) => self.portop(v6, 132, dir, lo, hi, range)?,
            None => {
                let t = self.portop(v6, 6, dir, lo, hi, range)?;
                let u = self.portop(v6, 17, dir, lo, hi, range)?;
                let s = self.portop(v6, 132, dir, lo, hi, range)?;
                or(s, or(t, u))
            }
            Some(p) => return Err(self.err(format!("illegal qualifier of 'port': {}", p.name()))),
        };
        Ok(and(b0, b1))
    }

    // ---- arithmetic (gen_load, gen_arth, gen_relation) ----

    /// A value and the protocol checks libpcap attaches to it.
    fn arith(&mut self, a: &Arith) -> R<(Val, Option<P>)> {
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
    fn indexed(&mut self, var: Option<Val>, idx: Val, k: u32, size: u8) -> Val {
        let off = match var {
            Some(v) => self.ir.bin(BinOp::Add, idx, v),
            None => idx,
        };
        match self.ir.node(off) {
            ValNode::Const(c) if c.checked_add(k).is_some() => self.ir.load(None, c + k, size),
            _ => self.ir.load(Some(off), k, size),
        }
    }

    fn arith_load(&mut self, proto: Proto, index: &Arith, size: u8) -> R<(Val, Option<P>)> {
        use Proto::*;
        let (idx, ib) = self.arith(index)?;
        let pl = self.linkpl;
        let nlk = pl.k.wrapping_add(self.nl);
        Ok(match proto {
            Link => {
                let h = self.linkhdr;
                (self.indexed(h.var, idx, h.k, size), ib)
            }
            Ip | Arp | Rarp | Atalk | Decnet | Sca | Lat | Moprc | Mopdl | Ip6 => {
                let v = self.indexed(pl.var, idx, nlk, size);
                let b = self.abbrev(proto)?;
                (v, Some(and_opt(ib, b)))
            }
            Sctp | Tcp | Udp | Icmp | Igmp | Igrp | Pim | Vrrp | Carp => {
                let x = self.iphdrlen();
                let off = self.ir.bin(BinOp::Add, idx, x);
                let v = self.ir.load(Some(off), nlk, size);
                let pb = self.abbrev(proto)?;
                let f = self.ipfrag()?;
                let b = and_opt(ib, and(pb, f));
                let ipb = self.abbrev(Proto::Ip)?;
                (v, Some(and(ipb, b)))
            }
            Icmp6 => {
                let b = self.abbrev(Ip6)?;
                let b = and_opt(ib, b);
                let c = self.cmp(Rel::LinkPl, 6, 1, 58)?;
                let b = and(b, c);
                let v = self.indexed(pl.var, idx, nlk.wrapping_add(40), size);
                (v, Some(b))
            }
            _ => return Err(self.err("unsupported index operation")),
        })
    }

    fn relation(&mut self, op: RelOp, a: &Arith, b: &Arith) -> R<P> {
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

    // ---- primitives ----

    fn atom(&mut self, a: &Atom) -> R<P> {
        match a {
            Atom::Ipv4Host {
                proto,
                dir,
                addr,
                mask,
            } => self.host4(*proto, *dir, *addr, *mask),
            Atom::Ipv6Host { dir, addr, mask } => self.host6(*dir, addr, mask),
            Atom::DecnetHost { dir, addr } => self.decnet(*dir, *addr),
            Atom::EtherHost { dir, mac } => self.ehost(*dir, mac),
            Atom::Port {
                proto,
                dir,
                lo,
                hi,
                range,
            } => {
                let (lo, hi) = (u32::from(*lo), u32::from(*hi));
                let b6 = self.port_family(true, *proto, *dir, lo, hi, *range)?;
                let b4 = self.port_family(false, *proto, *dir, lo, hi, *range)?;
                Ok(or(b6, b4))
            }
            Atom::Proto { layer, value } => self.proto(*value, *layer),
            Atom::ProtoChain { layer, value } => self.protochain(*layer, *value),
            Atom::Prim(p) => self.prim(p),
        }
    }

    fn protochain(&mut self, layer: Option<Proto>, v: u32) -> R<P> {
        match layer {
            None => {
                let a = self.protochain(Some(Proto::Ip), v)?;
                let b = self.protochain(Some(Proto::Ip6), v)?;
                Ok(or(a, b))
            }
            Some(p) => {
                if self.linkpl.var.is_some() {
                    return Err(self.err("'protochain' not supported with variable length headers"));
                }
                let ipv6 = p == Proto::Ip6;
                let b0 = self.linktype(if ipv6 { ET_IPV6 } else { ET_IP })?;
                let t = P::Test(
                    Cond::ProtoChain {
                        nl: self.linkpl.k.wrapping_add(self.nl),
                        ipv6,
                        proto: v,
                    },
                    self.span,
                );
                Ok(and(b0, t))
            }
        }
    }

    fn meta_test(&mut self, m: Meta, v: u32) -> P {
        let a = self.ir.val(ValNode::Meta(m));
        let b = self.ir.k(v);
        self.test(a, CmpOp::Eq, b)
    }

    fn prim(&mut self, p: &Primitive) -> R<P> {
        match p {
            Primitive::Proto(pr) => self.abbrev(*pr),
            Primitive::Relation(op, a, b) => self.relation(*op, a, b),
            Primitive::Broadcast(pr) => match pr {
                Some(Proto::Ip) => {
                    let mask = self.opts.netmask.ok_or_else(|| {
                        self.err("netmask not known, so 'ip broadcast' not supported")
                    })?;
                    let hm = !mask;
                    let b0 = self.linktype(ET_IP)?;
                    let b1 = self.mcmp(Rel::LinkPl, 16, 4, 0, hm)?;
                    let b2 = self.mcmp(Rel::LinkPl, 16, 4, hm, hm)?;
                    Ok(and(b0, or(b1, b2)))
                }
                _ if self.link == Link::Ether => {
                    let b = self.bcmp(Rel::LinkHdr, 0, &[0xff; 6])?;
                    Ok(self.with_ll_check(b))
                }
                _ => Err(self.err("not a broadcast link")),
            },
            Primitive::Multicast(pr) => match pr {
                Some(Proto::Ip) => {
                    let b0 = self.linktype(ET_IP)?;
                    let b1 = self.cmp_ge(Rel::LinkPl, 16, 1, 224)?;
                    Ok(and(b0, b1))
                }
                Some(Proto::Ip6) => {
                    let b0 = self.linktype(ET_IPV6)?;
                    let b1 = self.cmp(Rel::LinkPl, 24, 1, 255)?;
                    Ok(and(b0, b1))
                }
                _ if self.link == Link::Ether => {
                    let b = self.set(Rel::LinkHdr, 0, 1, 1)?;
                    Ok(self.with_ll_check(b))
                }
                _ => Err(self.err("link-layer multicast filters not supported on this link")),
            },
            Primitive::Less(n) => {
                let l = self.ir.val(ValNode::Len);
                let k = self.ir.k(*n);
                Ok(not(self.test(l, CmpOp::Gt, k)))
            }
            Primitive::Greater(n) => {
                let l = self.ir.val(ValNode::Len);
                let k = self.ir.k(*n);
                Ok(self.test(l, CmpOp::Ge, k))
            }
            Primitive::Byte(idx, op, val) => match op {
                ByteOp::Eq => self.cmp(Rel::LinkHdr, *idx, 1, *val),
                ByteOp::Lt => Ok(not(self.cmp_ge(Rel::LinkHdr, *idx, 1, *val)?)),
                ByteOp::Gt => self.cmp_gt(Rel::LinkHdr, *idx, 1, *val),
                // libpcap 1.10.3 emits no load for these: the test is on
                // whatever the accumulator held, which has no meaning.
                ByteOp::And | ByteOp::Or => Err(self.err(
                    "'byte' with '&' or '|' is not supported: libpcap tests a stale register there",
                )),
            },
            Primitive::Inbound | Primitive::Outbound => {
                let out = matches!(p, Primitive::Outbound);
                let b = match self.link {
                    Link::Sll => self.cmp(Rel::LinkHdr, 0, 2, 4)?,
                    Link::Sll2 => self.cmp(Rel::LinkHdr, 10, 1, 4)?,
                    _ if self.opts.offline => {
                        return Err(self.err(
                            "inbound/outbound not supported on this link type when reading a capture file",
                        ));
                    }
                    _ => match self.opts.fixed_direction {
                        Some(outgoing) => {
                            return Ok(if outgoing == out { P::True } else { P::False });
                        }
                        None => self.meta_test(Meta::PktType, 4),
                    },
                };
                Ok(if out { b } else { not(b) })
            }
            Primitive::IfIndex(n) => match self.link {
                Link::Sll2 => self.cmp(Rel::LinkHdr, 4, 4, *n),
                _ if self.opts.offline => {
                    Err(self
                        .err("ifindex not supported on this link type when reading a capture file"))
                }
                _ => Ok(self.meta_test(Meta::IfIndex, *n)),
            },
            Primitive::Vlan(n) => self.vlan(*n),
            Primitive::Mpls(n) => {
                let b0 = if self.mpls_depth > 0 {
                    self.mcmp(Rel::PrevMpls, 2, 1, 0, 1)?
                } else {
                    match self.link {
                        Link::Ether => self.linktype(0x8847)?,
                        Link::Ppp => self.linktype(0x0281)?,
                        _ => return Err(self.err("no MPLS support for this link type")),
                    }
                };
                let b = match n {
                    Some(n) => {
                        let b1 = self.mcmp(Rel::LinkPl, 0, 4, n << 12, 0xffff_f000)?;
                        and(b0, b1)
                    }
                    None => b0,
                };
                self.nl_nosnap = self.nl_nosnap.wrapping_add(4);
                self.nl = self.nl.wrapping_add(4);
                self.mpls_depth += 1;
                Ok(b)
            }
            Primitive::Pppoed => self.linktype(0x8863),
            Primitive::Pppoes(n) => {
                let b0 = self.linktype(0x8864)?;
                let b = match n {
                    Some(n) => {
                        let b1 = self.mcmp(Rel::LinkPl, 0, 4, *n, 0xffff)?;
                        and(b0, b1)
                    }
                    None => b0,
                };
                let pl = self.linkpl;
                self.linkhdr = Off {
                    var: pl.var,
                    k: pl.k.wrapping_add(self.nl).wrapping_add(6),
                };
                self.link = Link::Ppp;
                self.geneve = None;
                self.linktype = Some(self.linkhdr);
                self.linkpl = Off {
                    var: self.linkhdr.var,
                    k: self.linkhdr.k.wrapping_add(2),
                };
                self.nl = 0;
                self.nl_nosnap = 0;
                Ok(b)
            }
            Primitive::Geneve(vni) => self.geneve(*vni),
            Primitive::Llc(kind) => {
                if self.link != Link::Ether {
                    return Err(self.err("'llc' not supported for this link type"));
                }
                let b0 = self.not_gt_mtu()?;
                let b1 = not(self.cmp(Rel::Llc, 0, 2, 0xffff)?);
                let base = and(b0, b1);
                Ok(match kind {
                    Llc::Any => base,
                    Llc::I => and(base, not(self.set(Rel::Llc, 2, 1, 1)?)),
                    Llc::S => and(base, self.mcmp(Rel::Llc, 2, 1, 1, 3)?),
                    Llc::U => and(base, self.mcmp(Rel::Llc, 2, 1, 3, 3)?),
                    Llc::SSubtype(st) => {
                        and(base, self.mcmp(Rel::Llc, 2, 1, u32::from(*st), 0x0f)?)
                    }
                    Llc::USubtype(st) => {
                        and(base, self.mcmp(Rel::Llc, 2, 1, u32::from(*st), 0xef)?)
                    }
                })
            }
            Primitive::Qualified { .. } | Primitive::OtherLink(_) => {
                Err(self.err("primitive not supported on this link type"))
            }
        }
    }

    /// `gen_vlan`: without extensions the tag is in the frame; with them
    /// (tc, socket filters) the outer tag may be in metadata instead.
    fn vlan(&mut self, n: Option<u32>) -> R<P> {
        if self.mpls_depth > 0 {
            return Err(self.err("no VLAN match after MPLS"));
        }
        if self.link != Link::Ether {
            return Err(self.err("no VLAN support for this link type"));
        }
        let outer = self.vlan_depth == 0 && self.linkhdr.var.is_none() && self.linkhdr.k == 0;
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
            self.linkpl.var = add(self.ir, self.linkpl.var);
            if let Some(lt) = self.linktype.as_mut() {
                lt.var = add(self.ir, lt.var);
            }
            p
        } else {
            let mut p = self.tpid()?;
            if let Some(n) = n {
                let b1 = self.mcmp(Rel::LinkPl, 0, 2, n, 0x0fff)?;
                p = and(p, b1);
            }
            self.linkpl.k = self.linkpl.k.wrapping_add(4);
            if let Some(lt) = self.linktype.as_mut() {
                lt.k = lt.k.wrapping_add(4);
            }
            p
        };
        self.vlan_depth += 1;
        Ok(p)
    }

    /// A fresh variable: its number and the value reading it.
    fn new_var(&mut self) -> R<(u32, Val)> {
        if self.next_var >= MAX_VARS {
            return Err(self.err(format!(
                "too many 'geneve' in one filter (at most {})",
                MAX_VARS / 4
            )));
        }
        let n = self.next_var;
        self.next_var += 1;
        Ok((n, self.ir.val(ValNode::Var(n))))
    }

    fn assign(&mut self, var: (u32, Val), val: Val) -> P {
        P::Test(Cond::Let { var: var.0, val }, self.span)
    }

    fn add_k(&mut self, v: Val, k: u32) -> Val {
        let k = self.ir.k(k);
        self.ir.bin(BinOp::Add, v, k)
    }

    /// `gen_geneve_check`: UDP to port 6081 over IPv4 or IPv6, Geneve
    /// version 0 and, if given, the VNI.
    fn geneve_check(&mut self, v6: bool, vni: Option<u32>) -> R<P> {
        let port = GENEVE_PORT;
        let b0 = self.port_family(v6, Some(Proto::Udp), Dir::Dst, port, port, false)?;
        let rel = if v6 { Rel::TranIpv6 } else { Rel::TranIpv4 };
        let b1 = self.mcmp(rel, 8, 1, 0, 0xc0)?;
        let mut b = and(b0, b1);
        if let Some(vni) = vni {
            let b2 = self.mcmp(rel, 12, 4, vni << 8, 0xffff_ff00)?;
            b = and(b, b2);
        }
        Ok(b)
    }

    /// `gen_geneve`: matches Geneve and moves every later offset into the
    /// encapsulated frame. As in libpcap, its start is computed when the
    /// match succeeds: `g` (the Geneve header: after the UDP header over
    /// IPv4 or IPv6), `hdr` (after the Geneve header and its options, the
    /// link-layer header), then, if the protocol type is Ethernet
    /// (0x6558), the EtherType and payload of that frame; otherwise the
    /// protocol type serves as the EtherType and the payload starts at
    /// `hdr`.
    fn geneve(&mut self, vni: Option<u32>) -> R<P> {
        let g = self.new_var()?;
        let hdr = self.new_var()?;
        let lt = self.new_var()?;
        let pl_var = self.new_var()?;
        let pl = self.linkpl;
        let udp_end = pl.k.wrapping_add(self.nl).wrapping_add(8);
        let b4 = self.geneve_check(false, vni)?;
        let ihl = self.iphdrlen();
        let g4 = self.add_k(ihl, udp_end);
        let set4 = self.assign(g, g4);
        let b6 = self.geneve_check(true, vni)?;
        let g6 = match pl.var {
            Some(v) => self.add_k(v, udp_end.wrapping_add(40)),
            None => self.ir.k(udp_end.wrapping_add(40)),
        };
        let set6 = self.assign(g, g6);
        let matched = or(and(b4, set4), and(b6, set6));
        // hdr = g + 8 + 4 * (option length, the low 6 bits of byte 0).
        let optlen = {
            let b = self.ir.load(Some(g.1), 0, 1);
            let m = self.ir.k(0x3f);
            let four = self.ir.k(4);
            let o = self.ir.bin(BinOp::And, b, m);
            self.ir.bin(BinOp::Mul, o, four)
        };
        let hlen = self.add_k(optlen, 8);
        let h = self.ir.bin(BinOp::Add, hlen, g.1);
        let set_hdr = self.assign(hdr, h);
        let proto = self.ir.load(Some(g.1), 2, 2);
        let teb = self.ir.k(ET_TEB);
        let is_teb = self.test(proto, CmpOp::Eq, teb);
        let (h12, h14, g2) = (
            self.add_k(hdr.1, 12),
            self.add_k(hdr.1, 14),
            self.add_k(g.1, 2),
        );
        // The EtherType offset last: r0 then holds it for the next test.
        let ether = and(is_teb, and(self.assign(pl_var, h14), self.assign(lt, h12)));
        let other = and(self.assign(pl_var, hdr.1), self.assign(lt, g2));
        let offsets = and(set_hdr, or(ether, other));
        self.link = Link::Ether;
        self.linkhdr = Off {
            var: Some(hdr.1),
            k: 0,
        };
        self.linktype = Some(Off {
            var: Some(lt.1),
            k: 0,
        });
        self.linkpl = Off {
            var: Some(pl_var.1),
            k: 0,
        };
        // libpcap leaves off_nl_nosnap as it was.
        self.nl = 0;
        self.geneve = Some((hdr.1, pl_var.1));
        Ok(and(matched, offsets))
    }

    fn tpid(&mut self) -> R<P> {
        let a = self.linktype(0x8100)?;
        let b = self.linktype(0x88a8)?;
        let c = self.linktype(0x9100)?;
        Ok(or(or(a, b), c))
    }
}

#[cfg(test)]
mod tests {
    use crate::{LinkType, LowerOptions, Tables, build_ir, parse};

    fn build(expr: &str) -> Result<crate::Ir, crate::CompileError> {
        let t = Tables::new();
        let f = parse(expr, LinkType::En10mb, &t)?;
        let o = LowerOptions::offline(LinkType::En10mb, None).fixed_direction(None);
        Ok(build_ir(&f, &o)?.0)
    }

    fn matches(expr: &str, p: &[u8]) -> bool {
        build(expr).unwrap().eval(p, p.len() as u32, &|_| None)
    }

    /// Ethernet + IPv4 (20 bytes) + UDP to 6081 + Geneve with `opt_words`
    /// 4-byte option words, protocol `proto`, VNI 0x0abcde, then `inner`.
    fn geneve_frame(opt_words: u8, proto: u16, inner: &[u8]) -> Vec<u8> {
        let mut p = vec![0u8; 12];
        p.extend_from_slice(&[0x08, 0x00]);
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
        ];
        ip[2..4].copy_from_slice(
            &((20 + 8 + 8 + 4 * opt_words as usize + inner.len()) as u16).to_be_bytes(),
        );
        p.extend_from_slice(&ip);
        p.extend_from_slice(&[0xc3, 0x50, 0x17, 0xc1, 0, 0, 0, 0]);
        p.extend_from_slice(&[opt_words, 0]);
        p.extend_from_slice(&proto.to_be_bytes());
        p.extend_from_slice(&[0x0a, 0xbc, 0xde, 0]);
        p.extend(std::iter::repeat_n(0xee, 4 * opt_words as usize));
        p.extend_from_slice(inner);
        p
    }

    /// An IPv4 header from 10.0.0.1 to 10.0.0.2 carrying TCP.
    fn inner_ip() -> Vec<u8> {
        vec![
            0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0, 22, 0x30, 0x39,
        ]
    }

    #[test]
    fn geneve_follows_options_to_the_inner_frame() {
        let mut inner = vec![0u8; 12];
        inner.extend_from_slice(&[0x08, 0x00]);
        inner.extend(inner_ip());
        for words in [0, 2, 5] {
            let p = geneve_frame(words, 0x6558, &inner);
            assert!(matches("geneve", &p));
            assert!(matches("geneve 0x0abcde", &p));
            assert!(!matches("geneve 0x0abcdf", &p));
            assert!(matches("geneve and ip src 10.0.0.1", &p));
            assert!(matches("geneve and tcp src port 22", &p));
            assert!(!matches("geneve and tcp dst port 22", &p));
        }
    }

    #[test]
    fn geneve_without_ethernet_takes_its_protocol_as_the_ethertype() {
        // libpcap: the linktype is the protocol field (Geneve + 2) and the
        // payload starts right after the Geneve header; no Ethernet
        // header, so link-layer address tests fail.
        let p = geneve_frame(1, 0x0800, &inner_ip());
        assert!(matches("geneve and ip dst 10.0.0.2", &p));
        assert!(matches("geneve and tcp port 22", &p));
        assert!(!matches("geneve and ip6", &p));
        assert!(!matches("geneve and ether multicast", &p));
        // The same bytes as Ethernet payload do not parse as IPv4.
        let q = geneve_frame(1, 0x6558, &inner_ip());
        assert!(!matches("geneve and ip dst 10.0.0.2", &q));
    }

    #[test]
    fn geneve_needs_the_protocol_field_in_the_capture() {
        let p = geneve_frame(0, 0x6558, &[]);
        // Cut inside the Geneve protocol type: libpcap loads it to compute
        // the offsets, so even a bare `geneve` rejects.
        let cut = &p[..14 + 20 + 8 + 3];
        assert!(!matches("geneve", cut));
        assert!(matches("geneve", &p[..14 + 20 + 8 + 4]));
    }

    #[test]
    fn filters_with_geneve_are_not_optimised_like_libpcap() {
        // Unoptimised, libpcap loads ip[0] for `ip[0] * 0` and runs the
        // EtherType test of `ip or not ip`: a frame cut before the inner
        // EtherType is rejected.
        let p = geneve_frame(0, 0x6558, &[0u8; 12]);
        assert!(!matches("geneve and (ip or not ip)", &p));
        let ir = build("geneve and ip[0] * 0 = 0").unwrap();
        assert!(ir.pcap_unoptimized);
        // Without geneve, the optimiser's folding stands.
        assert_eq!(
            build("ip or not ip").unwrap().entry,
            Some(pktmatch::ir::Edge::ACCEPT)
        );
    }

    #[test]
    fn tests_reading_unset_geneve_offsets_are_refused() {
        for e in [
            "geneve or udp port 53",
            "not geneve and tcp",
            "(geneve or geneve) and ip",
        ] {
            let err = build(e).unwrap_err();
            assert!(
                err.message.contains("did not match"),
                "{e}: {}",
                err.message
            );
        }
        for e in [
            "udp port 53 or geneve",
            "not geneve",
            "geneve and (tcp or udp)",
        ] {
            assert!(build(e).is_ok(), "{e}");
        }
    }
}
