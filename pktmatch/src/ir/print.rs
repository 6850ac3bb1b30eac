//! The text form of an [`Ir`] (its `Display`): the syntax is described
//! in the module documentation of [`crate::ir`]. [`super::parse`] reads
//! it back.
//!
//! Every value of the arena is printed, in arena order, including values
//! no block uses any more: the numbering is then the arena's (what the
//! optimiser compares), the text parses back to the same arena, and the
//! optimiser, which never changes the arena, leaves the value lines of a
//! filter as they were, so the text before and after optimisation
//! differs only in its blocks.

use std::fmt;

use super::{
    BinOp, Block, BlockId, ByteOrder, CmpOp, Cond, Edge, EntityRef, Ir, Meta, OnShort, Semantics,
    ValNode,
};

impl fmt::Display for Ir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.semantics == Semantics::Exact {
            writeln!(f, "semantics exact")?;
        }
        if self.pcap_unoptimized {
            writeln!(f, "pcap_unoptimized")?;
        }
        match self.entry {
            Some(e) => writeln!(f, "entry {}", EdgeText(e))?,
            None => writeln!(f, "entry none")?,
        }
        for (v, node) in self.vals.iter() {
            writeln!(f, "{v} = {}", NodeText(*node))?;
        }
        for (i, b) in self.blocks.iter().enumerate() {
            writeln!(f, "{}: {}", BlockId::new(i), BlockText(self, b))?;
        }
        Ok(())
    }
}

/// An edge: `b3`, `accept`, `reject` or `verdict2`.
struct EdgeText(Edge);

impl fmt::Display for EdgeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Edge::Block(i) => write!(f, "{i}"),
            Edge::ACCEPT => f.write_str("accept"),
            Edge::REJECT => f.write_str("reject"),
            Edge::Verdict(v) => write!(f, "verdict{}", v.0),
        }
    }
}

/// The right-hand side of a value line.
struct NodeText(ValNode);

impl fmt::Display for NodeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ValNode::Const(k) => write!(f, "const {k:#x}"),
            ValNode::Load { off: None, k, size } => write!(f, "load [{k}:{size}]"),
            ValNode::Load {
                off: Some(o),
                k,
                size,
            } => write!(f, "load [{o} + {k}:{size}]"),
            ValNode::Len => f.write_str("len"),
            ValNode::Meta(m) => write!(f, "meta {}", meta_name(m)),
            ValNode::Bin(op, a, b) => write!(f, "{} {a}, {b}", bin_name(op)),
            ValNode::Neg(a) => write!(f, "neg {a}"),
            ValNode::Var(n) => write!(f, "var {n}"),
        }
    }
}

/// The rest of a block line, after `bN: `.
struct BlockText<'a>(&'a Ir, &'a Block);

impl fmt::Display for BlockText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.1;
        match b.cond {
            Cond::Cmp { a, op, b, relation } => {
                write!(f, "{} {a}, {b}", cmp_name(op))?;
                if relation {
                    f.write_str(" relation")?;
                }
            }
            Cond::ProtoChain { nl, ipv6, proto } => {
                let family = if ipv6 { "ipv6" } else { "ipv4" };
                write!(f, "protochain {family} nl={nl} proto={proto}")?;
            }
            Cond::Let { var, val } => write!(f, "let var{var} = {val}")?,
            Cond::Act { action } => write!(f, "act {action}")?,
            Cond::Lookup {
                key,
                action,
                result,
            } => {
                f.write_str("lookup [")?;
                for (i, p) in self.0.key_parts(key).iter().enumerate() {
                    let sep = if i == 0 { "" } else { " " };
                    let host = match p.order {
                        ByteOrder::Network => "",
                        ByteOrder::Host => "host ",
                    };
                    write!(f, "{sep}{host}{}:{}", p.val, p.bytes)?;
                }
                write!(f, "] act {action}")?;
                if let Some(var) = result.expand() {
                    write!(f, " into var{}", var.index())?;
                }
            }
        }
        write!(f, " ? {} : {}", EdgeText(b.t), EdgeText(b.f))?;
        match b.short {
            OnShort::Reject => {}
            OnShort::True => f.write_str(" short true")?,
            OnShort::False => f.write_str(" short false")?,
            OnShort::To(e) => write!(f, " short {}", EdgeText(e))?,
        }
        if b.span != crate::Span::default() {
            write!(f, "  # {}..{}", b.span.start, b.span.end)?;
        }
        Ok(())
    }
}

/// The text name of a binary operator.
pub(super) fn bin_name(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "add",
        BinOp::Sub => "sub",
        BinOp::Mul => "mul",
        BinOp::Div => "div",
        BinOp::Mod => "mod",
        BinOp::And => "and",
        BinOp::Or => "or",
        BinOp::Xor => "xor",
        BinOp::Shl => "shl",
        BinOp::Shr => "shr",
    }
}

/// Every binary operator, for the parser.
pub(super) const BIN_OPS: [BinOp; 10] = [
    BinOp::Add,
    BinOp::Sub,
    BinOp::Mul,
    BinOp::Div,
    BinOp::Mod,
    BinOp::And,
    BinOp::Or,
    BinOp::Xor,
    BinOp::Shl,
    BinOp::Shr,
];

/// The text name of a comparison.
pub(super) fn cmp_name(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "eq",
        CmpOp::Gt => "gt",
        CmpOp::Ge => "ge",
        CmpOp::Set => "set",
    }
}

/// Every comparison, for the parser.
pub(super) const CMP_OPS: [CmpOp; 4] = [CmpOp::Eq, CmpOp::Gt, CmpOp::Ge, CmpOp::Set];

/// The text name of a metadata field.
pub(super) fn meta_name(m: Meta) -> &'static str {
    match m {
        Meta::VlanPresent => "vlan_present",
        Meta::VlanTci => "vlan_tci",
        Meta::IfIndex => "ifindex",
        Meta::PktType => "pkttype",
        Meta::VlanProto => "vlan_proto",
    }
}

/// Every metadata field, for the parser.
pub(super) const METAS: [Meta; 5] = [
    Meta::VlanPresent,
    Meta::VlanTci,
    Meta::IfIndex,
    Meta::PktType,
    Meta::VlanProto,
];
