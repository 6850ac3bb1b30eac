//! The packet-match IR: values over the packet (loads, the wire length,
//! metadata, 32-bit arithmetic) and a control-flow graph of tests with
//! true and false edges to blocks or to verdicts ([`Verdict`]: a packet
//! filter has ACCEPT and REJECT, a firewall more).
//!
//! Meaning (libpcap's classic BPF, `bpf_filter.c`, for what a short read
//! does with [`Semantics::Libpcap`]):
//! - every value is a `u32`; arithmetic wraps;
//! - a load of `size` bytes at `off + k` is in bounds iff
//!   `off + k + size <= caplen` (computed without wrapping); a load out of
//!   bounds makes the whole filter reject, at the moment it is evaluated
//!   (with [`Semantics::Exact`], the block goes where its [`OnShort`]
//!   says instead);
//! - division or modulo by a zero value rejects (likewise); shifts by 32
//!   or more give 0;
//! - a block evaluates both operands of its test (all their loads), then
//!   follows the true or false edge;
//! - variables are libpcap's scratch memory (`M[k]`): a [`Cond::Let`] block
//!   sets one, a [`ValNode::Var`] reads it. Lowering sets each variable at
//!   most once on a path and reads it only where every path set it (the
//!   variable offsets after `geneve`).
//!
//! Values are interned: the same expression is the same [`Val`], which is
//! what lets the optimiser see that two tests look at the same bytes.
//! [`Ir::verify`] checks these invariants.
//!
//! A [`Val`] and a [`BlockId`] are typed indices (`cranelift-entity`
//! keys, converted with [`EntityRef`]): into the value arena, and into
//! [`Ir::blocks`]. They print as the text form names them, `v3` and `b2`.
//!
//! # Text form
//!
//! An [`Ir`] prints (`Display`) as lines that [`Ir::from_text`] reads
//! back, so that passes can be tested and reviewed on their own. tcpdump's
//! `ip proto 6` on Ethernet (its tests come from the `6`, bytes 9..10):
//!
//! ```text
//! entry b0
//! v0 = load [12:2]
//! v1 = const 0x800
//! v2 = load [23:1]
//! v3 = const 0x6
//! b0: eq v0, v1 ? b1 : reject  # 9..10
//! b1: eq v2, v3 ? accept : reject  # 9..10
//! ```
//!
//! - `semantics exact` on a line of its own for [`Semantics::Exact`];
//!   `pcap_unoptimized` on a line of its own when [`Ir::pcap_unoptimized`]
//!   is set; then `entry` and the entry edge (`b3`, `accept`, `reject`,
//!   `verdict2` for another [`Verdict`], or `none` when there is none);
//! - every value of the arena, in arena order, `vN = NODE`: `const 0x800`
//!   (constants in hexadecimal), `load [12:2]` or `load [v2 + 14:1]`
//!   (`[offset:size]` in decimal, after the variable part if any), `len`,
//!   `meta vlan_present|vlan_tci|vlan_proto|ifindex|pkttype`, an operator and two
//!   values (`add`, `sub`, `mul`, `div`, `mod`, `and`, `or`, `xor`,
//!   `shl`, `shr`: `add v5, v1`), `neg v3`, `var 0`;
//! - every block, `bN: TEST ? TRUE : FALSE`, then `short true` or
//!   `short false` when a short read takes that edge, `short EDGE`
//!   (`short b5`, `short verdict3`, `short accept`, `short reject`) when
//!   it goes to another edge ([`OnShort`]; none when it rejects the
//!   filter), then the span of its source
//!   as a comment `# START..END` unless it is empty (`0..0`). The tests:
//!   `eq|gt|ge|set vA, vB`, followed by `relation` when
//!   [`Cond::Cmp::relation`] is set; `protochain ipv4|ipv6 nl=14
//!   proto=6`; `let var0 = v3`; `act 2` (an action, [`Cond::Act`]).
//!
//! The parser also takes decimal constants and `load [v2:1]` for an
//! offset of 0, skips blank lines and `#` comments (the comment of a
//! block line is its span when it reads `START..END`), and requires
//! values and blocks numbered in order, so the numbering of the text is
//! the arena's.

mod parse;
mod print;
mod verify;

pub use parse::ParseError;
pub use verify::VerifyError;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The trait of [`Val`] and [`BlockId`] that converts them to and from
/// indices (`BlockId::new(2)`, `b.index()`), re-exported so that users
/// of the IR need not depend on `cranelift-entity`.
pub use cranelift_entity::EntityRef;
use cranelift_entity::packed_option::PackedOption;
use cranelift_entity::{PrimaryMap, entity_impl};

/// A small multiplicative hasher for interning (the keys are a few
/// integers; SipHash's DoS resistance buys nothing here).
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

/// Builds [`FxHasher`]s, for the compiler's own maps.
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

use crate::Span;

/// What values are evaluated against.
struct Env<'a> {
    data: &'a [u8],
    wirelen: u32,
    meta: &'a dyn Fn(Meta) -> Option<u32>,
    /// Variables set so far on the path (`None`: not set).
    vars: &'a [Option<u32>],
}

/// A value in the arena of an [`Ir`]: its index there. It prints (as
/// `Display` and `Debug`) as the text form names it, `v3`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Val(u32);
entity_impl!(Val, "v");

/// A block of an [`Ir`]: its index in [`Ir::blocks`]. It prints (as
/// `Display` and `Debug`) as the text form names it, `b2`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockId(u32);
entity_impl!(BlockId, "b");

/// A key of [`Cond::Lookup`] blocks: its index in the IR's keys. It
/// prints as `k2`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(u32);
entity_impl!(KeyId, "k");

/// The most bytes a lookup key has.
pub const MAX_KEY_BYTES: u32 = 64;

/// The bytes a [`Cond::Lookup`] looks up: its parts' bytes, one after
/// the other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Key {
    /// The parts, in order.
    pub parts: Vec<KeyPart>,
}

impl Key {
    /// The key's length in bytes.
    pub fn len(&self) -> u32 {
        self.parts.iter().map(|p| u32::from(p.bytes)).sum()
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

/// Part of a key: the low `bytes` (1, 2 or 4) bytes of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyPart {
    /// The value.
    pub val: Val,
    /// How many of its low bytes.
    pub bytes: u8,
    /// In which order they go into the key.
    pub order: ByteOrder,
}

impl KeyPart {
    /// The low `bytes` bytes of `val`, most significant first (network
    /// order, as packet fields are).
    pub fn network(val: Val, bytes: u8) -> KeyPart {
        KeyPart {
            val,
            bytes,
            order: ByteOrder::Network,
        }
    }

    /// The low `bytes` bytes of `val` in the host's order (a number the
    /// kernel reads as such: an LPM trie key's prefix length).
    pub fn host(val: Val, bytes: u8) -> KeyPart {
        KeyPart {
            val,
            bytes,
            order: ByteOrder::Host,
        }
    }
}

/// The order of a key part's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ByteOrder {
    /// Most significant first.
    Network,
    /// The host's.
    Host,
}

/// Binary operators with libpcap's semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    /// Rejects the packet when the divisor is 0.
    Div,
    /// Rejects the packet when the divisor is 0.
    Mod,
    And,
    Or,
    Xor,
    /// 0 when the shift is 32 or more.
    Shl,
    /// 0 when the shift is 32 or more.
    Shr,
}

impl BinOp {
    /// Applies the operator; `None` when the packet is rejected.
    #[inline]
    pub fn eval(self, a: u32, b: u32) -> Option<u32> {
        Some(match self {
            BinOp::Add => a.wrapping_add(b),
            BinOp::Sub => a.wrapping_sub(b),
            BinOp::Mul => a.wrapping_mul(b),
            BinOp::Div => a.checked_div(b)?,
            BinOp::Mod => a.checked_rem(b)?,
            BinOp::And => a & b,
            BinOp::Or => a | b,
            BinOp::Xor => a ^ b,
            BinOp::Shl => a.checked_shl(b).unwrap_or(0),
            BinOp::Shr => a.checked_shr(b).unwrap_or(0),
        })
    }
}

/// Facts about the packet that are not in its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Meta {
    /// 1 when the outer VLAN tag was moved out of the frame (tc, socket).
    VlanPresent,
    /// The TCI of that tag.
    VlanTci,
    /// The interface index the packet arrived on / leaves by.
    IfIndex,
    /// The skb's packet type (`PACKET_OUTGOING` is 4).
    PktType,
    /// The EtherType of that tag (`0x8100` or `0x88a8`), as a number.
    VlanProto,
}

/// A value expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValNode {
    /// A constant.
    Const(u32),
    /// `size` (1, 2 or 4) bytes, big endian, at `off + k` from the start
    /// of the packet; `off` is `None` for an absolute offset.
    Load {
        /// Variable part of the offset.
        off: Option<Val>,
        /// Constant part.
        k: u32,
        /// Bytes.
        size: u8,
    },
    /// The packet's length on the wire.
    Len,
    /// Packet metadata.
    Meta(Meta),
    /// `a op b`.
    Bin(BinOp, Val, Val),
    /// `-a` (two's complement).
    Neg(Val),
    /// The value of a variable, set by a [`Cond::Let`] block earlier on
    /// every path here (libpcap's `M[k]`).
    Var(u32),
}

/// How many variables a filter may use (each takes a stack slot).
pub const MAX_VARS: u32 = 32;

/// Comparison operators of tests (libpcap's jumps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CmpOp {
    /// `a == b`.
    Eq,
    /// `a > b`, unsigned.
    Gt,
    /// `a >= b`, unsigned.
    Ge,
    /// `a & b != 0`.
    Set,
}

impl CmpOp {
    /// Evaluates the comparison.
    #[inline]
    pub fn eval(self, a: u32, b: u32) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Set => a & b != 0,
        }
    }
}

/// What a block tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cond {
    /// `a op b`.
    Cmp {
        /// Left operand.
        a: Val,
        /// Operator.
        op: CmpOp,
        /// Right operand.
        b: Val,
        /// The test comes from a relation (`expr relop expr`). libpcap
        /// loads a relation's packet bytes through its X register, so
        /// its jump threading never relates such a test to one of a
        /// primitive on the same bytes (see `jumps::read_test`).
        relation: bool,
    },
    /// libpcap's `protochain`: walks the IPv6 extension headers (or the
    /// IPv4 header) from the network header at constant offset `nl`,
    /// skipping hop-by-hop, destination, routing, fragment and AH headers
    /// (with libpcap's exact arithmetic, including its AH length quirk),
    /// and compares the protocol reached with `proto`.
    ProtoChain {
        /// Offset of the network header from the packet start.
        nl: u32,
        /// IPv6 (else IPv4).
        ipv6: bool,
        /// The protocol number looked for.
        proto: u32,
    },
    /// Sets variable `var` to `val` (evaluating its loads, which may
    /// reject) and always takes the true edge; the false edge is unused
    /// and is REJECT (as lowering builds it, so that equal assignments
    /// merge; [`Ir::verify`] checks it).
    Let {
        /// The variable.
        var: u32,
        /// Its new value.
        val: Val,
    },
    /// Runs the front end's action number `action` (code generation emits
    /// the front end's code for it) and takes the true edge, or the false
    /// edge when the action fails: a rule's counter always goes on, a
    /// rate limit over its rate or a used-up quota does not. Optimisation
    /// never drops or moves an action, even when both its edges meet.
    /// An action never writes the packet or the filter's variables: what
    /// the tests before it found still holds after it.
    Act {
        /// The front end's action number.
        action: u32,
    },
    /// Looks a key up in one of the front end's tables: code generation
    /// writes the key's bytes at [`KEY_SLOT`](crate::codegen::KEY_SLOT)
    /// on the stack and emits the front end's code for action `action`,
    /// which looks it up (a map lookup) and falls through, with r0
    /// pointing at the entry's value, when it is there. The true edge is
    /// a hit: with `result`, the value's first 4 bytes (a `u32`) go into
    /// that variable, set on the true edge only. The false edge is a
    /// miss. A key's load past the packet takes the short edge.
    Lookup {
        /// The key.
        key: KeyId,
        /// The front end's action that looks it up.
        action: u32,
        /// The variable that gets the entry's value on a hit.
        result: PackedOption<VarNo>,
    },
}

/// A variable's number, for [`Cond::Lookup::result`] (a `u32` that fits
/// [`PackedOption`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VarNo(u32);
entity_impl!(VarNo, "var");

impl Cond {
    /// Whether the block does something besides testing ([`Cond::Let`],
    /// [`Cond::Act`]): it stays even when both its edges meet.
    pub fn has_effect(&self) -> bool {
        matches!(self, Cond::Let { .. } | Cond::Act { .. })
    }
}

/// Where evaluation of a filter ends. A front end gives verdicts their
/// meaning (a return value, an action, a rule whose counters to bump);
/// code generation emits the front end's code for each verdict reached.
/// A packet filter has two: [`Verdict::MATCH`] and [`Verdict::NO_MATCH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Verdict(pub u32);

impl Verdict {
    /// The filter does not match (libpcap's `ret #0`).
    pub const NO_MATCH: Verdict = Verdict(0);
    /// The filter matches.
    pub const MATCH: Verdict = Verdict(1);
}

/// Where an edge goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Edge {
    /// Another block.
    Block(BlockId),
    /// The end of evaluation, with this verdict.
    Verdict(Verdict),
}

impl Edge {
    /// The filter matches.
    pub const ACCEPT: Edge = Edge::Verdict(Verdict::MATCH);
    /// The filter does not match.
    pub const REJECT: Edge = Edge::Verdict(Verdict::NO_MATCH);
}

/// What a block does when its test cannot be evaluated: a load past the
/// end of the packet, a division by zero, a `protochain` walk that gives
/// up. The front end chooses the meaning (see [`Semantics`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnShort {
    /// The whole filter ends at once with [`Verdict::NO_MATCH`]
    /// (libpcap's meaning).
    #[default]
    Reject,
    /// The block takes its true edge.
    True,
    /// The block takes its false edge: the match is false and evaluation
    /// goes on (a firewall's meaning: nftables' `ip saddr 10.0.0.1` on a
    /// frame too short for it does not match, and the next rule runs).
    False,
    /// The block goes to this edge, which need be neither of its own: a
    /// front end that embeds a filter with libpcap's meaning in a larger
    /// program (nft2bpf's `pcap "EXPR"` match) sends every short read of
    /// the filter where the whole filter's "no match" goes. An edge to a
    /// block goes forward, as the other edges do.
    To(Edge),
}

/// How a front end means its filter, for the passes that must keep that
/// meaning exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Semantics {
    /// libpcap's: a load past the captured bytes ends the filter with
    /// no match (every block is [`OnShort::Reject`]), and because libpcap
    /// loads lazily, which loads run decides the verdict on a packet cut
    /// short. The optimiser then follows libpcap's own passes (its value
    /// folds, jump threading and pull-ups), and code generation may hoist
    /// a bounds check over bytes every accepting path reads.
    #[default]
    Libpcap,
    /// Each block says what a short read means ([`Block::short`]); no
    /// fold drops a load, the optimiser runs only passes that keep every
    /// verdict on every packet (merging equal blocks, removing tests
    /// whose edges meet and unreachable blocks), and every bounds check
    /// covers the block's own reads, failing to the block's short edge.
    Exact,
}

/// One test with its two successors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// The test.
    pub cond: Cond,
    /// Where to go when it holds.
    pub t: Edge,
    /// Where to go when it does not.
    pub f: Edge,
    /// What a short read means here.
    pub short: OnShort,
    /// The source of the primitive this test comes from.
    pub span: Span,
}

impl Block {
    /// A block testing `cond`, going to `t` or `f`, with libpcap's
    /// meaning of a short read ([`OnShort::Reject`]).
    #[inline]
    pub fn new(cond: Cond, t: Edge, f: Edge, span: Span) -> Block {
        Block {
            cond,
            t,
            f,
            short: OnShort::Reject,
            span,
        }
    }

    /// The same block with `short` as its meaning of a short read.
    #[inline]
    pub fn on_short(mut self, short: OnShort) -> Block {
        self.short = short;
        self
    }

    /// Where the block goes when its test cannot be evaluated.
    #[inline]
    pub fn short_edge(&self) -> Edge {
        match self.short {
            OnShort::Reject => Edge::REJECT,
            OnShort::True => self.t,
            OnShort::False => self.f,
            OnShort::To(e) => e,
        }
    }

    /// Where the block may go: its true and false edges, and the edge of
    /// [`OnShort::To`] (the others name one of the two, or REJECT).
    #[inline]
    pub fn successors(&self) -> impl Iterator<Item = Edge> + use<> {
        let short = match self.short {
            OnShort::To(e) => Some(e),
            _ => None,
        };
        [self.t, self.f].into_iter().chain(short)
    }

    /// Points every edge of the block (true, false, and the edge of
    /// [`OnShort::To`]) where `f` says: what a pass that renumbers or
    /// redirects edges calls.
    #[inline]
    pub fn map_edges(&mut self, mut f: impl FnMut(Edge) -> Edge) {
        self.t = f(self.t);
        self.f = f(self.f);
        if let OnShort::To(e) = self.short {
            self.short = OnShort::To(f(e));
        }
    }
}

/// Up to this many values, interning finds a value by scanning.
const SCAN_VALS: usize = 32;

/// The IR of a filter: a value arena and a CFG. Blocks only jump forward
/// (to higher indices), so the graph is acyclic and block order is a
/// topological order.
#[derive(Debug, Clone, Default)]
pub struct Ir {
    vals: PrimaryMap<Val, ValNode>,
    /// The index of `vals`, built once there are more than
    /// [`SCAN_VALS`] (fewer are found faster by a scan, without hashing
    /// or allocating).
    interned: HashMap<ValNode, Val, FxBuild>,
    /// The keys of lookups, each once.
    keys: PrimaryMap<KeyId, Key>,
    /// The blocks, in topological order; see [`Ir::entry`]. Block
    /// [`BlockId`] `b` is `blocks[b.index()]`: a block's id is its
    /// position, which passes renumber as they drop, insert and reorder
    /// blocks (hence a `Vec`, not a map of ids).
    pub blocks: Vec<Block>,
    /// Where evaluation starts.
    pub entry: Option<Edge>,
    /// What a short read means, for the passes; see [`Semantics`]. Set
    /// before any value is interned.
    pub semantics: Semantics,
    /// libpcap does not optimise this filter (it has `geneve`, whose code
    /// libpcap's optimiser cannot handle): loads its optimiser would drop
    /// (`x * 0`, tests whose edges meet) stay, and their bounds still
    /// reject. Set before any value is interned.
    pub pcap_unoptimized: bool,
}

// The small accessors below are `#[inline]`: front ends in other crates
// call them per value and per test, and without it no call across the
// crate boundary is inlined (the split into crates cost a tenth of the
// compile time of a small filter).
impl Ir {
    /// An empty IR.
    pub fn new() -> Ir {
        Ir::default()
    }

    /// An empty IR with `semantics` (see [`Semantics`]).
    pub fn with_semantics(semantics: Semantics) -> Ir {
        Ir {
            semantics,
            ..Ir::default()
        }
    }

    /// Whether value folds may drop loads as libpcap's optimiser does.
    fn folds_like_libpcap(&self) -> bool {
        self.semantics == Semantics::Libpcap && !self.pcap_unoptimized
    }

    /// An empty IR with room for `vals` values before it grows.
    pub fn with_capacity(vals: usize) -> Ir {
        Ir {
            vals: PrimaryMap::with_capacity(vals),
            ..Ir::default()
        }
    }

    /// Interns a value, folding operations on constants.
    #[inline]
    pub fn val(&mut self, node: ValNode) -> Val {
        let node = match node {
            ValNode::Bin(op, a, b) => match (self.node(a), self.node(b)) {
                (ValNode::Const(x), ValNode::Const(y)) => match op.eval(x, y) {
                    Some(v) => ValNode::Const(v),
                    None => node,
                },
                // libpcap's optimiser (opt_stmt) makes these constant 0 and
                // then drops the loads of the other operand, so a packet
                // too short for those loads still passes: mirror it.
                (_, ValNode::Const(0))
                    if self.folds_like_libpcap() && matches!(op, BinOp::Mul | BinOp::And) =>
                {
                    ValNode::Const(0)
                }
                (ValNode::Const(0), _)
                    if self.folds_like_libpcap()
                        && matches!(
                            op,
                            BinOp::Mul
                                | BinOp::Div
                                | BinOp::Mod
                                | BinOp::And
                                | BinOp::Shl
                                | BinOp::Shr
                        ) =>
                {
                    ValNode::Const(0)
                }
                _ => node,
            },
            ValNode::Neg(a) => match self.node(a) {
                ValNode::Const(x) => ValNode::Const(x.wrapping_neg()),
                _ => node,
            },
            n => n,
        };
        if let Some(v) = self.find(node) {
            return v;
        }
        self.push_node(node)
    }

    /// Appends `node` to the arena as it is: no folding, no interning
    /// (the parser of the text form rebuilds an arena this way, value
    /// for value).
    fn push_node(&mut self, node: ValNode) -> Val {
        let v = self.vals.push(node);
        if self.vals.len() > SCAN_VALS {
            if self.interned.is_empty() {
                // Room for a few times as many: rehashing costs more.
                self.interned.reserve(4 * SCAN_VALS);
                let all = self.vals.iter().map(|(v, n)| (*n, v));
                self.interned.extend(all);
            } else {
                self.interned.insert(node, v);
            }
        }
        v
    }

    /// The value of `node` if it was interned (without folding).
    #[inline]
    pub fn find(&self, node: ValNode) -> Option<Val> {
        if self.vals.len() <= SCAN_VALS {
            // From the newest: a value recurs mostly soon after.
            let i = self.vals.values().rposition(|n| *n == node)?;
            return Some(Val::new(i));
        }
        self.interned.get(&node).copied()
    }

    /// A constant.
    #[inline]
    pub fn k(&mut self, k: u32) -> Val {
        self.val(ValNode::Const(k))
    }

    /// A load. A constant added to the offset moves into `k` (classic
    /// BPF's `[x + k]`, one index register fewer to compute) when the sum
    /// is small enough that neither form can wrap or reach the limits
    /// code generation puts on offsets.
    #[inline]
    pub fn load(&mut self, off: Option<Val>, k: u32, size: u8) -> Val {
        const SMALL: u64 = 0x7fff;
        if let Some(o) = off
            && let ValNode::Bin(BinOp::Add, a, b) = self.node(o)
        {
            let split = match (self.const_of(a), self.const_of(b)) {
                (_, Some(c)) => Some((a, c)),
                (Some(c), None) => Some((b, c)),
                _ => None,
            };
            if let Some((x, c)) = split
                && self.range(x).1 + u64::from(c) <= SMALL
                && u64::from(k) + u64::from(c) <= SMALL
            {
                return self.val(ValNode::Load {
                    off: Some(x),
                    k: k + c,
                    size,
                });
            }
        }
        self.val(ValNode::Load { off, k, size })
    }

    /// `a op b`.
    #[inline]
    pub fn bin(&mut self, op: BinOp, a: Val, b: Val) -> Val {
        self.val(ValNode::Bin(op, a, b))
    }

    /// The node of a value.
    #[inline]
    pub fn node(&self, v: Val) -> ValNode {
        self.vals[v]
    }

    /// The constant of a value, if it is one.
    #[inline]
    pub fn const_of(&self, v: Val) -> Option<u32> {
        match self.node(v) {
            ValNode::Const(k) => Some(k),
            _ => None,
        }
    }

    /// Interns a lookup key.
    pub fn key(&mut self, key: Key) -> KeyId {
        match self.keys.iter().find(|(_, k)| **k == key) {
            Some((id, _)) => id,
            None => self.keys.push(key),
        }
    }

    /// A lookup key's parts.
    #[inline]
    pub fn key_parts(&self, key: KeyId) -> &[KeyPart] {
        &self.keys[key].parts
    }

    /// Whether `key` names a key of this IR.
    pub fn has_key(&self, key: KeyId) -> bool {
        self.keys.is_valid(key)
    }

    /// Number of values in the arena.
    #[inline]
    pub fn val_count(&self) -> usize {
        self.vals.len()
    }

    /// Appends a block and returns its edge.
    #[inline]
    pub fn push(&mut self, block: Block) -> Edge {
        self.blocks.push(block);
        Edge::Block(BlockId::new(self.blocks.len() - 1))
    }

    /// Evaluates a value on a packet (`data` is the captured bytes);
    /// `None` when evaluation rejects. Used by tests and the interpreter
    /// of last resort; `meta` supplies metadata. Variables read as unset
    /// (rejecting); [`Ir::eval`] runs whole filters with them.
    pub fn eval_val(
        &self,
        v: Val,
        data: &[u8],
        wirelen: u32,
        meta: &dyn Fn(Meta) -> Option<u32>,
    ) -> Option<u32> {
        let env = Env {
            data,
            wirelen,
            meta,
            vars: &[],
        };
        self.eval_in(v, &env)
    }

    fn eval_in(&self, v: Val, env: &Env<'_>) -> Option<u32> {
        Some(match self.node(v) {
            ValNode::Const(k) => k,
            ValNode::Len => env.wirelen,
            ValNode::Meta(m) => (env.meta)(m)?,
            ValNode::Var(n) => (*env.vars.get(n as usize)?)?,
            ValNode::Load { off, k, size } => {
                let base = match off {
                    Some(o) => u64::from(self.eval_in(o, env)?),
                    None => 0,
                };
                let start = base + u64::from(k);
                let end = start + u64::from(size);
                if end > env.data.len() as u64 {
                    return None;
                }
                env.data[start as usize..end as usize]
                    .iter()
                    .fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
            }
            ValNode::Bin(op, a, b) => {
                let a = self.eval_in(a, env)?;
                let b = self.eval_in(b, env)?;
                op.eval(a, b)?
            }
            ValNode::Neg(a) => self.eval_in(a, env)?.wrapping_neg(),
        })
    }

    /// Runs the filter on a packet: whether it matches (libpcap's verdict
    /// for a packet filter).
    pub fn eval(&self, data: &[u8], wirelen: u32, meta: &dyn Fn(Meta) -> Option<u32>) -> bool {
        self.run(data, wirelen, meta) == Verdict::MATCH
    }

    /// Runs the filter on a packet (`data` is the captured bytes): the
    /// verdict it ends with. A test that cannot be evaluated goes where
    /// its block's [`OnShort`] says.
    pub fn run(&self, data: &[u8], wirelen: u32, meta: &dyn Fn(Meta) -> Option<u32>) -> Verdict {
        self.run_acting(data, wirelen, meta, &mut |_| true, &mut |_, _| None)
    }

    /// [`Ir::run`], calling `act` with the number of each [`Cond::Act`]
    /// block passed, in order (its answer is the action's outcome: the
    /// edge taken), and `lookup` with the action and the key's bytes of
    /// each [`Cond::Lookup`] (its answer: the entry's `u32` value on a
    /// hit, `None` on a miss).
    pub fn run_acting(
        &self,
        data: &[u8],
        wirelen: u32,
        meta: &dyn Fn(Meta) -> Option<u32>,
        act: &mut dyn FnMut(u32) -> bool,
        lookup: &mut dyn FnMut(u32, &[u8]) -> Option<u32>,
    ) -> Verdict {
        let mut at = match self.entry {
            Some(e) => e,
            None => return Verdict::MATCH,
        };
        let mut vars: Vec<Option<u32>> = Vec::new();
        loop {
            let b = match at {
                Edge::Verdict(v) => return v,
                Edge::Block(i) => &self.blocks[i.index()],
            };
            let env = Env {
                data,
                wirelen,
                meta,
                vars: &vars,
            };
            let r = match b.cond {
                Cond::Cmp { a, op, b: rhs, .. } => self
                    .eval_in(a, &env)
                    .and_then(|x| Some(op.eval(x, self.eval_in(rhs, &env)?))),
                Cond::ProtoChain { nl, ipv6, proto } => protochain(data, nl, ipv6, proto),
                Cond::Let { var, val } => self.eval_in(val, &env).map(|x| {
                    let i = var as usize;
                    if vars.len() <= i {
                        vars.resize(i + 1, None);
                    }
                    vars[i] = Some(x);
                    true
                }),
                Cond::Act { action } => Some(act(action)),
                Cond::Lookup {
                    key,
                    action,
                    result,
                } => self.key_bytes(key, &env).map(|bytes| {
                    let hit = lookup(action, &bytes);
                    if let (Some(v), Some(var)) = (hit, result.expand()) {
                        let i = var.index();
                        if vars.len() <= i {
                            vars.resize(i + 1, None);
                        }
                        vars[i] = Some(v);
                    }
                    hit.is_some()
                }),
            };
            at = match r {
                Some(true) => b.t,
                Some(false) => b.f,
                None => b.short_edge(),
            };
        }
    }

    /// The bytes of a lookup key; `None` when a load does not fit.
    fn key_bytes(&self, key: KeyId, env: &Env<'_>) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(self.keys[key].len() as usize);
        for p in &self.keys[key].parts {
            let v = self.eval_in(p.val, env)?;
            let n = usize::from(p.bytes);
            match p.order {
                ByteOrder::Network => out.extend_from_slice(&v.to_be_bytes()[4 - n..]),
                ByteOrder::Host => match n {
                    1 => out.push(v as u8),
                    2 => out.extend_from_slice(&(v as u16).to_ne_bytes()),
                    _ => out.extend_from_slice(&v.to_ne_bytes()),
                },
            }
        }
        Some(out)
    }

    /// The highest verdict an edge (or the entry) names, if any.
    pub fn max_verdict(&self) -> Option<Verdict> {
        self.blocks
            .iter()
            .flat_map(|b| b.successors())
            .chain(self.entry)
            .filter_map(|e| match e {
                Edge::Verdict(v) => Some(v),
                Edge::Block(_) => None,
            })
            .max()
    }

    /// Whether some path from the entry reaches ACCEPT.
    pub fn can_accept(&self) -> bool {
        let Some(entry) = self.entry else { return true };
        // Blocks only jump forward: one pass in order marks what the entry
        // reaches. Small graphs (most filters) mark on the stack.
        let (mut small, mut big) = ([false; 64], Vec::new());
        let reach: &mut [bool] = match small.get_mut(..self.blocks.len()) {
            Some(r) => r,
            None => {
                big.resize(self.blocks.len(), false);
                &mut big
            }
        };
        let mut accept = false;
        let mut mark = |e: Edge, reach: &mut [bool]| match e {
            Edge::ACCEPT => accept = true,
            Edge::Block(i) => reach[i.index()] = true,
            Edge::Verdict(_) => {}
        };
        mark(entry, reach);
        for i in 0..self.blocks.len() {
            if reach[i] {
                for e in self.blocks[i].successors() {
                    mark(e, reach);
                }
            }
        }
        accept
    }

    /// The largest end offset (exclusive) of any load, when bounded:
    /// how much of a packet the filter can read.
    pub fn max_read(&self) -> Option<u64> {
        let mut max = 0u64;
        let Some(entry) = self.entry else {
            return Some(0);
        };
        let live = self.live_blocks(entry);
        for (i, b) in self.blocks.iter().enumerate() {
            if !live[i] {
                continue;
            }
            match b.cond {
                Cond::Cmp { a, b, .. } => {
                    max = max.max(self.max_read_val(a)?).max(self.max_read_val(b)?);
                }
                Cond::ProtoChain { .. } => return None,
                Cond::Let { val, .. } => max = max.max(self.max_read_val(val)?),
                Cond::Lookup { key, .. } => {
                    for p in &self.keys[key].parts {
                        max = max.max(self.max_read_val(p.val)?);
                    }
                }
                Cond::Act { .. } => {}
            }
        }
        Some(max)
    }

    fn live_blocks(&self, entry: Edge) -> Vec<bool> {
        let mut live = vec![false; self.blocks.len()];
        if let Edge::Block(i) = entry {
            live[i.index()] = true;
        }
        for i in 0..self.blocks.len() {
            if live[i] {
                for e in self.blocks[i].successors() {
                    if let Edge::Block(j) = e {
                        live[j.index()] = true;
                    }
                }
            }
        }
        live
    }

    fn max_read_val(&self, v: Val) -> Option<u64> {
        Some(match self.node(v) {
            ValNode::Load { off, k, size } => {
                let o = match off {
                    Some(o) => self.range(o).1.max(self.max_read_val(o)?),
                    None => 0,
                };
                let here = match off {
                    Some(o) => self.range(o).1,
                    None => 0,
                } + u64::from(k)
                    + u64::from(size);
                if here > u64::from(u32::MAX) {
                    return None;
                }
                here.max(o)
            }
            ValNode::Bin(_, a, b) => self.max_read_val(a)?.max(self.max_read_val(b)?),
            ValNode::Neg(a) => self.max_read_val(a)?,
            _ => 0,
        })
    }

    /// An interval `[lo, hi]` containing every value `v` can take.
    pub fn range(&self, v: Val) -> (u64, u64) {
        self.range_knowing(v, true)
    }

    /// Like [`Ir::range`], but for a reader who takes packet metadata
    /// for any 32-bit value, as the kernel's verifier does (a context
    /// field is a plain `u32` load to it).
    pub fn proven_range(&self, v: Val) -> (u64, u64) {
        self.range_knowing(v, false)
    }

    fn range_knowing(&self, v: Val, meta: bool) -> (u64, u64) {
        const FULL: (u64, u64) = (0, u32::MAX as u64);
        match self.node(v) {
            ValNode::Const(k) => (u64::from(k), u64::from(k)),
            ValNode::Load { size, .. } => (0, (1u64 << (8 * u32::from(size))) - 1),
            ValNode::Meta(Meta::VlanPresent) if meta => (0, 1),
            ValNode::Meta(Meta::VlanTci | Meta::VlanProto) if meta => (0, 0xffff),
            ValNode::Bin(op, a, b) => {
                let (alo, ahi) = self.range_knowing(a, meta);
                let (blo, bhi) = self.range_knowing(b, meta);
                let r = match op {
                    BinOp::Add => (alo + blo, ahi + bhi),
                    BinOp::Mul => (alo * blo, ahi.saturating_mul(bhi)),
                    BinOp::And => (0, ahi.min(bhi)),
                    // No bit above the highest of either operand.
                    BinOp::Or | BinOp::Xor => (0, (ahi.max(bhi) + 1).next_power_of_two() - 1),
                    BinOp::Shl if bhi < 32 => {
                        (alo << blo, ahi.checked_shl(bhi as u32).unwrap_or(u64::MAX))
                    }
                    BinOp::Shr => (0, ahi >> blo.min(63)),
                    BinOp::Div => (0, ahi),
                    BinOp::Mod => (0, ahi.min(bhi.saturating_sub(1))),
                    _ => FULL,
                };
                if r.1 > u64::from(u32::MAX) { FULL } else { r }
            }
            _ => FULL,
        }
    }
}

/// How many headers `protochain` skips before it gives up and rejects.
/// libpcap has no limit (and loops forever on some AH chains); every
/// header moves at least 8 bytes on, so this covers packets of 1 KiB of
/// extension headers.
pub const PROTOCHAIN_STEPS: u32 = 128;

/// libpcap's protochain walk on `data` (see [`Cond::ProtoChain`]);
/// `None` when a load falls outside the packet.
pub fn protochain(data: &[u8], nl: u32, ipv6: bool, proto: u32) -> Option<bool> {
    let byte =
        |at: u64| -> Option<u32> { data.get(usize::try_from(at).ok()?).map(|b| u32::from(*b)) };
    let nl = u64::from(nl);
    let (mut a, mut x): (u32, u32) = if ipv6 {
        (byte(nl + 6)?, 40)
    } else {
        (byte(nl + 9)?, (byte(nl)? & 0xf) * 4)
    };
    for _ in 0..PROTOCHAIN_STEPS {
        if a == proto || a == 59 {
            return Some(a == proto);
        }
        if ipv6 && matches!(a, 0 | 60 | 43 | 44) {
            let next = byte(u64::from(x) + nl)?;
            let len = byte(u64::from(x) + nl + 1)?;
            x = (len.wrapping_add(1)).wrapping_mul(8).wrapping_add(x);
            a = next;
            continue;
        }
        if a == 51 {
            let next = byte(u64::from(x) + nl)?;
            let len = byte(u64::from(x.wrapping_add(1)) + nl)?;
            x = len.wrapping_add(2).wrapping_mul(4);
            a = next;
            continue;
        }
        return Some(a == proto);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_follows_bpf_filter() {
        assert_eq!(BinOp::Div.eval(7, 0), None);
        assert_eq!(BinOp::Mod.eval(7, 0), None);
        assert_eq!(BinOp::Shl.eval(1, 32), Some(0));
        assert_eq!(BinOp::Shr.eval(u32::MAX, 40), Some(0));
        assert_eq!(BinOp::Sub.eval(0, 1), Some(u32::MAX));
        assert_eq!(BinOp::Mul.eval(0x8000_0000, 2), Some(0));
    }

    #[test]
    fn loads_beyond_the_capture_reject() {
        let mut ir = Ir::new();
        let v = ir.load(None, 2, 2);
        let data = [1, 2, 3, 4];
        assert_eq!(ir.eval_val(v, &data, 4, &|_| None), Some(0x0304));
        assert_eq!(ir.eval_val(v, &data[..3], 4, &|_| None), None);
        // Variable offsets do not wrap: off + k + size must fit.
        let off = ir.k(u32::MAX);
        let w = ir.load(Some(off), 1, 1);
        assert_eq!(ir.eval_val(w, &data, 4, &|_| None), None);
    }

    #[test]
    fn protochain_walks_ipv6_extension_headers() {
        // IPv6 header (next: hop-by-hop 0), hop-by-hop (next: TCP 6, len 0).
        let mut p = vec![0u8; 40 + 8];
        p[6] = 0;
        p[40] = 6;
        assert_eq!(protochain(&p, 0, true, 6), Some(true));
        assert_eq!(protochain(&p, 0, true, 17), Some(false));
        // Hop-by-hop itself is found without walking past it.
        assert_eq!(protochain(&p, 0, true, 0), Some(true));
        // A truncated extension header rejects.
        assert_eq!(protochain(&p[..40], 0, true, 6), None);
    }
}
