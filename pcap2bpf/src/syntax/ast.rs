//! The syntax tree of a pcap-filter(7) expression, with byte spans.
//!
//! Qualifier inheritance (`host a or b`) is resolved by the parser: every
//! [`Primitive::Qualified`] carries the full qualifier it applies with.

pub use pktmatch::Span;

pub use super::chain::BoolTree;
use super::chain::drop_left_chain;

/// A boolean filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `a and b` (also `&&`). One box holds both operands: half the
    /// allocations of two.
    And(Box<(Expr, Expr)>),
    /// `a or b` (also `||`).
    Or(Box<(Expr, Expr)>),
    /// `not a` (also `!`); the span covers the operator and its operand.
    Not(Box<Expr>, Span),
    /// A primitive test.
    Prim(Primitive, Span),
}

impl Expr {
    /// The bytes this expression covers: from its leftmost operand to
    /// its rightmost (found by loops: a chain of operators is a tree as
    /// high as it is long).
    pub fn span(&self) -> Span {
        let edge = |mut e: &Expr, left: bool| loop {
            match e {
                Expr::And(ab) | Expr::Or(ab) => e = if left { &ab.0 } else { &ab.1 },
                Expr::Not(_, s) | Expr::Prim(_, s) => break *s,
            }
        };
        edge(self, true).to(edge(self, false))
    }
}

impl Drop for Expr {
    fn drop(&mut self) {
        drop_left_chain(self);
    }
}

/// `and` and `or` chains are walked by loops (see [`BoolTree`]).
impl BoolTree for Expr {
    fn operands(&self) -> Option<(bool, &Expr, &Expr)> {
        match self {
            Expr::And(ab) => Some((true, &ab.0, &ab.1)),
            Expr::Or(ab) => Some((false, &ab.0, &ab.1)),
            Expr::Not(..) | Expr::Prim(..) => None,
        }
    }

    fn take_left(&mut self) -> Option<Expr> {
        match self {
            Expr::And(ab) | Expr::Or(ab) => Some(std::mem::replace(
                &mut ab.0,
                Expr::Prim(Primitive::Less(0), Span::default()),
            )),
            Expr::Not(..) | Expr::Prim(..) => None,
        }
    }
}

/// Protocol qualifiers (`pname` in libpcap's grammar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Proto {
    /// `link`, `ether`, `ppp`, `slip`, `fddi`, `tr`, `wlan`.
    Link,
    Ip,
    Arp,
    Rarp,
    Sctp,
    Tcp,
    Udp,
    Icmp,
    Igmp,
    Igrp,
    Pim,
    Vrrp,
    Carp,
    Radio,
    Ip6,
    Icmp6,
    Ah,
    Esp,
    Atalk,
    Aarp,
    Decnet,
    Lat,
    Sca,
    Moprc,
    Mopdl,
    Iso,
    Esis,
    Isis,
    L1,
    L2,
    Iih,
    Lsp,
    Snp,
    Csnp,
    Psnp,
    Clnp,
    Stp,
    Ipx,
    Netbeui,
}

impl Proto {
    /// The keyword libpcap uses in its messages.
    pub fn name(self) -> &'static str {
        use Proto::*;
        match self {
            Link => "link",
            Ip => "ip",
            Arp => "arp",
            Rarp => "rarp",
            Sctp => "sctp",
            Tcp => "tcp",
            Udp => "udp",
            Icmp => "icmp",
            Igmp => "igmp",
            Igrp => "igrp",
            Pim => "pim",
            Vrrp => "vrrp",
            Carp => "carp",
            Radio => "radio",
            Ip6 => "ip6",
            Icmp6 => "icmp6",
            Ah => "ah",
            Esp => "esp",
            Atalk => "atalk",
            Aarp => "aarp",
            Decnet => "decnet",
            Lat => "lat",
            Sca => "sca",
            Moprc => "moprc",
            Mopdl => "mopdl",
            Iso => "iso",
            Esis => "esis",
            Isis => "isis",
            L1 => "l1",
            L2 => "l2",
            Iih => "iih",
            Lsp => "lsp",
            Snp => "snp",
            Csnp => "csnp",
            Psnp => "psnp",
            Clnp => "clnp",
            Stp => "stp",
            Ipx => "ipx",
            Netbeui => "netbeui",
        }
    }
}

/// Direction qualifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dir {
    /// No direction given: like `src or dst`.
    #[default]
    Default,
    /// `src`.
    Src,
    /// `dst`.
    Dst,
    /// `src or dst` / `dst or src`.
    SrcOrDst,
    /// `src and dst` / `dst and src`.
    SrcAndDst,
    /// `addr1` .. `addr4` (802.11 only).
    Addr(u8),
    /// `ra` (802.11 only).
    Ra,
    /// `ta` (802.11 only).
    Ta,
}

/// Address type qualifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Kind {
    /// None given: like `host` for addresses.
    #[default]
    Default,
    /// `host`.
    Host,
    /// `net`.
    Net,
    /// `port`.
    Port,
    /// `portrange`.
    PortRange,
    /// `gateway`.
    Gateway,
    /// `proto`.
    Proto,
    /// `protochain`.
    ProtoChain,
}

/// A complete qualifier: `[proto] [dir] [kind]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Qual {
    /// Protocol qualifier, `None` when absent.
    pub proto: Option<Proto>,
    /// Direction qualifier.
    pub dir: Dir,
    /// Address type qualifier.
    pub kind: Kind,
}

/// The operand of a qualified primitive, as the scanner classified it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A name (`ID`; a leading backslash already removed).
    Name(String),
    /// A number (`NUM`).
    Num(u32),
    /// A dotted number with 2..4 parts (`HID`), kept as text as libpcap does.
    Ipv4(String),
    /// `HID/NUM`: the prefix length with its span (the checks point at it).
    Ipv4Prefix(String, Number),
    /// `HID mask HID`.
    Ipv4Mask(String, String),
    /// An IPv6 address (`HID6`).
    Ipv6(std::net::Ipv6Addr),
    /// `HID6/NUM`.
    Ipv6Prefix(std::net::Ipv6Addr, u32),
    /// A MAC address (`EID`).
    Mac([u8; 6]),
    /// An ARCnet address `$xx` (`AID`).
    Arcnet(String),
}

/// A number operand of a primitive with where it is written: the checks
/// of a field's width point at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Number {
    /// The value.
    pub value: u32,
    /// The bytes of the number (with its parentheses, if any).
    pub span: Span,
}

/// Arithmetic operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    And,
    Or,
    Xor,
    Shl,
    Shr,
}

/// An arithmetic expression (`arth`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arith {
    /// A constant.
    Num(u32, Span),
    /// `len` / `length`: the packet length.
    Len(Span),
    /// `proto[index]` or `proto[index:size]`.
    Load {
        /// The header the index is relative to.
        proto: Proto,
        /// Byte offset into that header.
        index: Box<Arith>,
        /// 1, 2 or 4 after checking.
        size: u32,
        /// The whole accessor.
        span: Span,
    },
    /// A binary operation.
    Binary(ArithOp, Box<Arith>, Box<Arith>),
    /// Unary minus.
    Neg(Box<Arith>, Span),
}

impl Arith {
    /// The bytes this expression covers.
    pub fn span(&self) -> Span {
        match self {
            Arith::Num(_, s) | Arith::Len(s) | Arith::Neg(_, s) => *s,
            Arith::Load { span, .. } => *span,
            Arith::Binary(_, a, b) => a.span().to(b.span()),
        }
    }
}

/// Relational operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum RelOp {
    Gt,
    Ge,
    Eq,
    Le,
    Lt,
    Ne,
}

/// The operators of `byte N op M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum ByteOp {
    And,
    Or,
    Lt,
    Gt,
    Eq,
}

/// `llc` variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Llc {
    /// `llc`: any LLC frame.
    Any,
    /// `llc i`.
    I,
    /// `llc s`.
    S,
    /// `llc u`.
    U,
    /// `llc rr|rnr|rej`: an S-frame subtype (the control value).
    SSubtype(u8),
    /// `llc ui|ua|disc|dm|sabme|test|xid|frmr`: a U-frame subtype.
    USubtype(u8),
}

/// A primitive test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Primitive {
    /// `[proto] [dir] [kind] value`, qualifiers inherited already applied.
    Qualified {
        /// The qualifier in force.
        qual: Qual,
        /// The operand.
        value: Value,
        /// Span of the operand alone.
        value_span: Span,
    },
    /// A bare protocol name: `tcp`, `ip6`, `arp`...
    Proto(Proto),
    /// `arth relop arth`.
    Relation(RelOp, Arith, Arith),
    /// `[proto] broadcast`.
    Broadcast(Option<Proto>),
    /// `[proto] multicast`.
    Multicast(Option<Proto>),
    /// `less N`: length <= N.
    Less(u32),
    /// `greater N`: length >= N.
    Greater(u32),
    /// `byte IDX op VAL`.
    Byte(u32, ByteOp, Number),
    /// `inbound`.
    Inbound,
    /// `outbound`.
    Outbound,
    /// `ifindex N`.
    IfIndex(u32),
    /// `vlan [N]`.
    Vlan(Option<Number>),
    /// `mpls [N]`.
    Mpls(Option<Number>),
    /// `pppoed`.
    Pppoed,
    /// `pppoes [N]`.
    Pppoes(Option<Number>),
    /// `geneve [N]`.
    Geneve(Option<Number>),
    /// `llc [type]`.
    Llc(Llc),
    /// Primitives that exist only on other link types (pflog, 802.11
    /// `type`/`subtype`/`dir`, ATM, MTP2/MTP3): the keyword is kept for
    /// the error message.
    OtherLink(&'static str),
}
