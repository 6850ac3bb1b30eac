//! The checked ruleset: what lowering reads.
//!
//! Everything is resolved: variables are substituted, names are ids,
//! every value is a number of the width of what it is compared with, and
//! every match says which bytes to read. Lowering needs no type knowledge
//! and no name tables.
//!
//! # Reading a rule
//!
//! A [`Rule`] is its statements in order. A packet goes through them as
//! nft's kernel code does: a [`Stmt::Match`] that fails ends the rule
//! (the next rule runs); the other statements act and go on; a
//! [`Stmt::Verdict`] ends the rule with its verdict. A match reads a
//! [`Key`] (one [`Selector`], or several concatenated) and applies a
//! [`Test`] to it.
//!
//! The matches nft adds itself come first, marked [`Match::implied`]:
//! before `tcp dport 22` nft tests `meta l4proto tcp`, before `ip saddr
//! ...` `meta protocol ip` (or `ether type ip` once the rule has read the
//! Ethernet header, or `vlan type ip` once it has read the VLAN tag),
//! before any `ether` or `vlan` field `meta iiftype ether`, before `vlan`
//! fields `ether type 8021q`. They are computed as nft computes them
//! (its protocol context, `src/proto.c` and `src/payload.c`): a match
//! `ip protocol tcp` or `meta l4proto tcp` makes the next `tcp` match
//! need none, `th` fields need none at all. So the rules mean what they
//! mean in nft, and lowering only has to follow them.
//!
//! A load that does not fit in the packet, or a header that is not there
//! (a transport header of a non-first fragment, an IPv4 header shorter
//! than 20 bytes), makes the match fail: nft's meaning, not libpcap's.
//!
//! # Values
//!
//! A value is a `u128`: the field's bits read as a big-endian unsigned
//! number (`ip saddr 10.0.0.1` is `0x0a000001`, `vlan id 10` is `10`,
//! `ip dscp ef` is `0x2e`, `ether saddr 00:11:22:33:44:55` is
//! `0x001122334455`). Metadata values are numbers too: `meta l4proto tcp`
//! is 6, `meta protocol ip` is `0x0800`, and a device name
//! (`meta iifname "eth0"`) is its 16 bytes, zero-padded, read as a
//! big-endian number.

use cranelift_entity::{PrimaryMap, entity_impl};
use pktmatch::Span;

use crate::check::fields::{Field, Load, MetaKey};
use crate::check::types::Type;

/// A table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId(u32);
entity_impl!(TableId, "table");

/// A chain.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChainId(u32);
entity_impl!(ChainId, "chain");

/// A rule.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(u32);
entity_impl!(RuleId, "rule");

/// A set or map, named or anonymous.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetId(u32);
entity_impl!(SetId, "set");

/// A named counter.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CounterId(u32);
entity_impl!(CounterId, "counter");

/// A named quota.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QuotaId(u32);
entity_impl!(QuotaId, "quota");

/// The whole checked ruleset: every table of family `netdev` the file
/// leaves after its last `flush ruleset`, with their contents.
#[derive(Debug, Clone, Default)]
pub struct Ruleset {
    /// The tables, in the order the file first names them.
    pub tables: PrimaryMap<TableId, Table>,
    /// Every chain of every table.
    pub chains: PrimaryMap<ChainId, Chain>,
    /// Every rule of every chain.
    pub rules: PrimaryMap<RuleId, Rule>,
    /// Every set and map: named ones, and the anonymous ones of the
    /// rules (`tcp dport { 22, 80 }`, `vmap { ... }`).
    pub sets: PrimaryMap<SetId, Set>,
    /// Named counters.
    pub counters: PrimaryMap<CounterId, NamedCounter>,
    /// Named quotas.
    pub quotas: PrimaryMap<QuotaId, NamedQuota>,
}

impl Ruleset {
    /// The base chains (the ones attached to a hook), in order.
    pub fn base_chains(&self) -> impl Iterator<Item = (ChainId, &Chain, &BaseChain)> {
        self.chains
            .iter()
            .filter_map(|(id, c)| c.base.as_ref().map(|b| (id, c, b)))
    }
}

/// A table.
#[derive(Debug, Clone)]
pub struct Table {
    /// Its name.
    pub name: String,
    /// Where it is first declared.
    pub span: Span,
    /// Its chains, in declaration order.
    pub chains: Vec<ChainId>,
    /// Its named sets and maps, in declaration order.
    pub sets: Vec<SetId>,
    /// Its named counters.
    pub counters: Vec<CounterId>,
    /// Its named quotas.
    pub quotas: Vec<QuotaId>,
    /// `flags dormant`: the table is loaded but its chains do not run.
    pub dormant: bool,
}

/// A chain.
#[derive(Debug, Clone)]
pub struct Chain {
    /// Its table.
    pub table: TableId,
    /// Its name.
    pub name: String,
    /// Where it is first declared.
    pub span: Span,
    /// The hook, for a base chain.
    pub base: Option<BaseChain>,
    /// Its rules, in order.
    pub rules: Vec<RuleId>,
}

/// What makes a chain a base chain: `type filter hook H device D priority
/// P; policy V;`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseChain {
    /// The hook.
    pub hook: Hook,
    /// The devices it is attached to (one or more).
    pub devices: Vec<String>,
    /// Its priority: lower runs first.
    pub priority: i32,
    /// The verdict when no rule decides (`accept` by default).
    pub policy: Policy,
    /// The hook spec.
    pub span: Span,
}

/// The netdev hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    /// `ingress`: frames as they arrive (XDP, or tcx ingress).
    Ingress,
    /// `egress`: frames as they leave (tcx egress).
    Egress,
}

/// A base chain's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Let the packet through.
    Accept,
    /// Drop it.
    Drop,
}

/// A rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Its chain.
    pub chain: ChainId,
    /// Its text.
    pub span: Span,
    /// `comment "..."`.
    pub comment: Option<String>,
    /// Its statements, in order (the matches nft adds among them).
    pub stmts: Vec<Stmt>,
}

/// A statement of a checked rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stmt {
    /// A match: the rule goes on if it holds, else it ends.
    Match(Match),
    /// Count the packet and its bytes.
    Counter(Counter),
    /// A rate limit: a match that holds while the rate is under (or, with
    /// `over`, over) the limit.
    Limit(Limit),
    /// A byte quota: a match that holds until (or, with `over`, once) the
    /// quota is used up; every packet it sees counts.
    Quota(Quota),
    /// Log the packet.
    Log(Log),
    /// Send the packet out of another device; it goes no further here
    /// (a terminal statement, as `accept`).
    Fwd(Fwd),
    /// A verdict: ends the rule.
    Verdict(Verdict),
    /// Look the key up in a verdict map: a hit is that verdict, a miss
    /// goes on with the next statement.
    VerdictMap(VerdictMap),
    /// `add @set { KEY ... }` or `update @set { KEY ... }`: the packet's
    /// key into a set from the packet path, then the element's limit.
    DynSet(DynSet),
    /// nft2bpf's extension (nft has no such statement): a tcpdump filter
    /// expression as a match, compiled with libpcap's meaning by
    /// `pcap2bpf` over the frame from its link-layer header.
    Pcap(PcapMatch),
}

/// `add @set { KEY [timeout T] [limit ...] }` or `update @set { ... }`,
/// as the kernel's `nft_dynset_eval` runs it: the element of the key
/// (an expired one counts as absent) is found, or made (with the
/// statement's limit, its bucket full, and its timeout) when the set has
/// room; `update` also restarts a found element's timeout when it has
/// one. Then the element's own limit (the one it was made with) runs:
/// the statement holds when it passes (or, with no limit, always). A
/// full set makes the statement fail: the rule ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynSet {
    /// The set.
    pub set: SetId,
    /// The key added.
    pub key: Key,
    /// `update` rather than `add`.
    pub update: bool,
    /// The timeout a new element gets (and `update` gives a found one)
    /// in milliseconds: the statement's `timeout`, else the set's; `None`:
    /// elements made here never expire.
    pub timeout: Option<u64>,
    /// The limit a new element gets.
    pub limit: Option<Limit>,
    /// The statement's text.
    pub span: Span,
}

/// `pcap "EXPR"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcapMatch {
    /// The filter expression.
    pub filter: String,
    /// The statement's text.
    pub span: Span,
}

impl PcapMatch {
    /// The error of the statement for an error `pcap2bpf` found in its
    /// filter.
    pub fn error(&self, e: &pcap2bpf::CompileError) -> crate::error::Error {
        crate::error::Error::new(
            format!(
                "in `pcap \"{}\"`: {} (bytes {}..{} of the filter)",
                self.filter, e.message, e.span.start, e.span.end
            ),
            self.span,
        )
    }
}

/// A match: read the key, test it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// What is read.
    pub key: Key,
    /// The test.
    pub test: Test,
    /// Whether nft added this match itself (a protocol dependency);
    /// its span is the match it guards.
    pub implied: bool,
    /// The match's text.
    pub span: Span,
}

/// What a match reads: one selector, or several concatenated (tested
/// together against a set of tuples).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The parts, in order; at least one.
    pub parts: Vec<Selector>,
}

impl Key {
    /// A key of one selector.
    pub fn single(s: Selector) -> Key {
        Key { parts: vec![s] }
    }
}

/// One value read from the packet or its metadata, with a mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    /// Where the value comes from.
    pub source: Source,
    /// `& MASK` applied before the test (`tcp flags & (syn|ack)`, or the
    /// mask of a prefix, `ip saddr 10.0.0.0/8`); `None`: all bits.
    pub mask: Option<u128>,
    /// Its text.
    pub span: Span,
}

impl Selector {
    /// Width in bits.
    pub fn bits(&self) -> u32 {
        self.source.bits()
    }
}

/// Where a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A header field of [`crate::check::fields::FIELDS`].
    Field(&'static Field),
    /// A raw payload expression (`@nh,72,8`): bits at an offset from a
    /// base, nft adds no dependency.
    Raw(Load),
    /// Packet metadata.
    Meta(MetaKey),
}

impl Source {
    /// Width in bits.
    pub fn bits(&self) -> u32 {
        match self {
            Source::Field(f) => f.bits,
            Source::Raw(l) => l.bits,
            Source::Meta(m) => m.bits(),
        }
    }

    /// nft's type of the value.
    pub fn ty(&self) -> Type {
        match self {
            Source::Field(f) => f.ty,
            Source::Raw(_) => Type::Integer,
            Source::Meta(m) => m.ty(),
        }
    }

    /// The packet bytes to load, for a payload source.
    pub fn load(&self) -> Option<Load> {
        match self {
            Source::Field(f) => Some(f.load()),
            Source::Raw(l) => Some(*l),
            Source::Meta(_) => None,
        }
    }

    /// How nft names it: `ip saddr`, `@nh,72,8`, `meta l4proto`.
    pub fn name(&self) -> String {
        match self {
            Source::Field(f) => f.full_name(),
            Source::Raw(l) => {
                let bit = l.offset * 8 + (l.len * 8 - l.shift - l.bits);
                format!("@{},{},{}", l.base.name(), bit, l.bits)
            }
            Source::Meta(m) => format!("meta {}", m.name()),
        }
    }
}

/// A test of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// Compare the (masked) value with a constant, as unsigned numbers.
    Cmp {
        /// The comparison.
        op: CmpOp,
        /// The constant, compared with the selector's value after its
        /// mask (`tcp flags & (syn|ack) == syn` compares `flags & 0x12`
        /// with `0x02`; a prefix's value has its host bits cleared).
        value: u128,
    },
    /// `low <= value <= high` (or, negated, not).
    Range {
        /// Low end, included.
        low: u128,
        /// High end, included.
        high: u128,
        /// `!= low-high`.
        negated: bool,
    },
    /// `ip saddr 10.0.0.0/8`: the top `len` bits of the (masked) value
    /// are those of `value` (whose other bits are clear). Not a masked
    /// comparison, because nft loads only the prefix's bytes when it
    /// ends on a byte boundary: a packet that ends after them matches.
    Prefix {
        /// The prefix, host bits clear.
        value: u128,
        /// Its length in bits (at least 1, less than the width).
        len: u32,
        /// `!= 10.0.0.0/8`.
        negated: bool,
    },
    /// The key is (or, negated, is not) an element of the set.
    InSet {
        /// The set.
        set: SetId,
        /// `!= @set`, `!= { ... }`.
        negated: bool,
    },
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `>`.
    Gt,
    /// `<=`.
    Le,
    /// `>=`.
    Ge,
}

/// A counter statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// `counter [packets N bytes M]`: the rule's own counter and its
    /// initial values.
    Anonymous {
        /// Initial packets.
        packets: u64,
        /// Initial bytes.
        bytes: u64,
    },
    /// `counter name NAME`.
    Named(CounterId),
}

/// `limit rate [over] N/UNIT [burst M]`: a token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    /// Holds when over the rate (else when under it).
    pub over: bool,
    /// Whether it counts packets or bytes.
    pub unit: LimitUnit,
    /// Packets or bytes per period.
    pub rate: u64,
    /// The period in seconds (1, 60, 3600, 86400, 604800).
    pub per_seconds: u64,
    /// The burst, in packets or bytes (nft's defaults: 5 packets, 0
    /// bytes).
    pub burst: u64,
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitUnit {
    /// Packets.
    Packets,
    /// Bytes.
    Bytes,
}

/// A quota statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// `quota [over|until] N UNIT [used M UNIT]`: the rule's own quota.
    Anonymous(QuotaSpec),
    /// `quota name NAME`.
    Named(QuotaId),
}

/// A quota's parameters, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuotaSpec {
    /// Holds once the quota is used up (else until it is).
    pub over: bool,
    /// The quota.
    pub bytes: u64,
    /// Already used.
    pub used: u64,
}

/// `log [prefix "..."] [level L]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// The prefix (at most 127 bytes).
    pub prefix: Option<String>,
    /// The syslog level: 0 (emerg) to 7 (debug); nft's default is 4
    /// (warn). `audit` is refused.
    pub level: u8,
}

/// `fwd to DEVICE`. The kernel takes it in ingress and egress chains
/// (`nft_fwd_validate` allows both hooks since Linux 5.16; nft 1.0.6 on
/// Linux 6.18 loads it in an egress chain), and so does nft2bpf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fwd {
    /// The device the packet leaves by.
    pub device: String,
}

/// A verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Accept the packet (it leaves this hook's chains).
    Accept,
    /// Drop it.
    Drop,
    /// Go on with the next rule.
    Continue,
    /// Back to the rule after the `jump` that led here (in a base chain:
    /// the policy).
    Return,
    /// Run the chain, then come back to the next rule.
    Jump(ChainId),
    /// Run the chain instead, not coming back.
    Goto(ChainId),
}

/// `KEY vmap MAP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerdictMap {
    /// What is looked up.
    pub key: Key,
    /// The map: a [`Set`] whose elements have [`Element::verdict`]s.
    pub map: SetId,
    /// The statement's text.
    pub span: Span,
}

/// A set or a verdict map.
#[derive(Debug, Clone)]
pub struct Set {
    /// Its table.
    pub table: TableId,
    /// Its name (`None`: anonymous, from a rule).
    pub name: Option<String>,
    /// Where it is declared (for an anonymous set: its braces).
    pub span: Span,
    /// The key's parts: types and widths.
    pub key: Vec<KeyType>,
    /// `flags interval` (anonymous sets with ranges or prefixes have it
    /// too): elements may be ranges.
    pub interval: bool,
    /// Whether it is a verdict map.
    pub is_map: bool,
    /// `size N` (N > 0): its map holds at most N entries (an element of
    /// a hash map is one entry; a range in an LPM trie one per prefix it
    /// is cut into). `None`: no size, or `size 0` (no limit, in nft).
    pub size: Option<u32>,
    /// Elements added from the packet path, and timeouts.
    pub state: SetState,
    /// `flags constant`: no element may be added while it runs (nft
    /// refuses `add @set` on it: EBUSY).
    pub constant: bool,
    /// The elements. For a one-part interval set they are sorted and do
    /// not overlap (an anonymous set's overlapping elements are merged,
    /// as nft merges them; a named set's are an error, as in nft).
    pub elements: Vec<Element>,
}

/// What makes a set's elements change on their own: `add @set` and
/// `update @set` statements, and timeouts. A set with any of it keeps a
/// state per element in its map
/// ([`ElemValue`](crate::compile::dynset::ElemValue)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetState {
    /// Some rule adds to it (`add @set`, `update @set`; nft's `flags
    /// dynamic`).
    pub dynamic: bool,
    /// `flags timeout` (or a `timeout`): elements may expire.
    pub timeouts: bool,
    /// `timeout T`: the elements' timeout in milliseconds, when they
    /// give none.
    pub timeout: Option<u64>,
}

impl SetState {
    /// Whether the set keeps a state per element.
    pub fn stateful(&self) -> bool {
        self.dynamic || self.timeouts
    }
}

/// The type of one part of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyType {
    /// nft's type.
    pub ty: Type,
    /// Width in bits.
    pub bits: u32,
}

/// An element of a set or map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// One part per part of the set's key.
    pub key: Vec<ElemKey>,
    /// For a verdict map, the verdict.
    pub verdict: Option<Verdict>,
    /// Its own `timeout`, in milliseconds.
    pub timeout: Option<u64>,
    /// Its text.
    pub span: Span,
}

/// One part of an element's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ElemKey {
    /// Exactly this value.
    Value(u128),
    /// Any value from `low` to `high`, both included (ranges, and
    /// prefixes: `10.0.0.0/8` is `10.0.0.0-10.255.255.255`).
    Range(u128, u128),
}

impl ElemKey {
    /// The lowest and highest value it takes in.
    pub fn bounds(self) -> (u128, u128) {
        match self {
            ElemKey::Value(v) => (v, v),
            ElemKey::Range(l, h) => (l, h),
        }
    }
}

/// `counter NAME { packets N bytes M }`.
#[derive(Debug, Clone)]
pub struct NamedCounter {
    /// Its table.
    pub table: TableId,
    /// Its name.
    pub name: String,
    /// Initial packets.
    pub packets: u64,
    /// Initial bytes.
    pub bytes: u64,
    /// Its declaration.
    pub span: Span,
}

/// `quota NAME { ... }`.
#[derive(Debug, Clone)]
pub struct NamedQuota {
    /// Its table.
    pub table: TableId,
    /// Its name.
    pub name: String,
    /// Its parameters.
    pub quota: QuotaSpec,
    /// Its declaration.
    pub span: Span,
}
