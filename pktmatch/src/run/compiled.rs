//! The compiled engine: the IR turned once into a tree of specialised
//! Rust closures, one per block test and one per value, run in this
//! process with no allocation per packet. It gives [`Ir::run`]'s verdict
//! on every packet (with no metadata: a capture file has none): short
//! reads follow each block's [`OnShort`](crate::ir::OnShort), variables
//! are set by [`Cond::Let`] and read only once set, `protochain` walks
//! with [`protochain`], loads may reach any offset a `u32` names.
//!
//! [`Cond::Act`] and [`Cond::Lookup`] (a front end's actions and tables)
//! are refused: they need the front end's code.

use crate::ir::{
    BinOp, CmpOp, Cond, Edge, EntityRef, Ir, MAX_VARS, Val, ValNode, Verdict, protochain,
};

/// What values are computed from: the packet, and the variables set so
/// far on the path.
struct State<'a> {
    data: &'a [u8],
    wire_len: u32,
    vars: [u32; MAX_VARS as usize],
    /// Bit `n` is set when variable `n` is.
    set: u32,
}

/// A value: `None` when its evaluation rejects (a load past the packet,
/// a division by zero, a variable not set).
type ValFn = Box<dyn Fn(&State<'_>) -> Option<u32> + Send + Sync>;
/// A block's test: which edge, `None` for the short edge.
type TestFn = Box<dyn Fn(&mut State<'_>) -> Option<bool> + Send + Sync>;

/// Where an edge goes: a block's index, or the end.
#[derive(Clone, Copy)]
enum Next {
    Block(u32),
    Done(Verdict),
}

impl From<Edge> for Next {
    fn from(e: Edge) -> Next {
        match e {
            Edge::Block(b) => Next::Block(b.index() as u32),
            Edge::Verdict(v) => Next::Done(v),
        }
    }
}

struct Block {
    test: TestFn,
    t: Next,
    f: Next,
    short: Next,
}

/// A filter compiled to closures; see the module's documentation.
pub struct Compiled {
    blocks: Vec<Block>,
    entry: Next,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Compiled({} blocks)", self.blocks.len())
    }
}

/// Why an IR cannot be compiled to closures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the compiled engine cannot run {0}")]
pub struct Unsupported(pub &'static str);

impl Compiled {
    /// Compiles `ir`.
    pub fn new(ir: &Ir) -> Result<Compiled, Unsupported> {
        let blocks = ir
            .blocks
            .iter()
            .map(|b| {
                Ok(Block {
                    test: test(ir, b.cond)?,
                    t: b.t.into(),
                    f: b.f.into(),
                    short: b.short_edge().into(),
                })
            })
            .collect::<Result<Vec<_>, Unsupported>>()?;
        Ok(Compiled {
            blocks,
            entry: ir.entry.map_or(Next::Done(Verdict::MATCH), Next::from),
        })
    }

    /// The verdict on a packet whose captured bytes are `data` and whose
    /// length on the wire is `wire_len`.
    pub fn verdict(&self, data: &[u8], wire_len: u32) -> Verdict {
        let mut state = State {
            data,
            wire_len,
            vars: [0; MAX_VARS as usize],
            set: 0,
        };
        let mut at = self.entry;
        loop {
            let i = match at {
                Next::Done(v) => return v,
                Next::Block(i) => i,
            };
            let b = &self.blocks[i as usize];
            at = match (b.test)(&mut state) {
                Some(true) => b.t,
                Some(false) => b.f,
                None => b.short,
            };
        }
    }
}

/// The test of a block.
fn test(ir: &Ir, cond: Cond) -> Result<TestFn, Unsupported> {
    Ok(match cond {
        Cond::Cmp { a, op, b, .. } => cmp(ir, a, op, b),
        Cond::ProtoChain { nl, ipv6, proto } => {
            Box::new(move |s| protochain(s.data, nl, ipv6, proto))
        }
        Cond::Let { var, val } => {
            if var >= MAX_VARS {
                return Err(Unsupported("a variable beyond the 32 a filter may use"));
            }
            let val = value(ir, val);
            Box::new(move |s| {
                s.vars[var as usize] = val(s)?;
                s.set |= 1 << var;
                Some(true)
            })
        }
        Cond::Act { .. } => return Err(Unsupported("a front end's actions")),
        Cond::Lookup { .. } => return Err(Unsupported("a front end's table lookups")),
    })
}

/// A comparison; the common `load == constant` and friends in one
/// closure each.
fn cmp(ir: &Ir, a: Val, op: CmpOp, b: Val) -> TestFn {
    macro_rules! with_const {
        ($a:expr, $k:expr) => {{
            let (a, k) = ($a, $k);
            match op {
                CmpOp::Eq => Box::new(move |s| Some(a(s)? == k)),
                CmpOp::Gt => Box::new(move |s| Some(a(s)? > k)),
                CmpOp::Ge => Box::new(move |s| Some(a(s)? >= k)),
                CmpOp::Set => Box::new(move |s| Some(a(s)? & k != 0)),
            }
        }};
    }
    if let Some(k) = ir.const_of(b) {
        if let ValNode::Load {
            off: None,
            k: at,
            size,
        } = ir.node(a)
        {
            match size {
                1 => return with_const!(move |s: &State<'_>| load1(s.data, at), k),
                2 => return with_const!(move |s: &State<'_>| load2(s.data, at), k),
                4 => return with_const!(move |s: &State<'_>| load4(s.data, at), k),
                _ => {}
            }
        }
        return with_const!(value(ir, a), k);
    }
    let (a, b) = (value(ir, a), value(ir, b));
    Box::new(move |s| {
        let x = a(s)?;
        Some(op.eval(x, b(s)?))
    })
}

/// `data[at]`.
#[inline(always)]
fn load1(data: &[u8], at: u32) -> Option<u32> {
    data.get(at as usize).map(|b| u32::from(*b))
}

/// Two bytes at `at`, big endian.
#[inline(always)]
fn load2(data: &[u8], at: u32) -> Option<u32> {
    let at = at as usize;
    let b = data.get(at..at.checked_add(2)?)?;
    Some(u32::from(u16::from_be_bytes([b[0], b[1]])))
}

/// Four bytes at `at`, big endian.
#[inline(always)]
fn load4(data: &[u8], at: u32) -> Option<u32> {
    let at = at as usize;
    let b = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// `size` bytes at `at` (a 64-bit sum: no wrap), big endian.
fn load_any(data: &[u8], at: u64, size: u8) -> Option<u32> {
    let start = usize::try_from(at).ok()?;
    let end = start.checked_add(usize::from(size))?;
    Some(
        data.get(start..end)?
            .iter()
            .fold(0u32, |acc, b| (acc << 8) | u32::from(*b)),
    )
}

/// A value.
fn value(ir: &Ir, v: Val) -> ValFn {
    match ir.node(v) {
        ValNode::Const(k) => Box::new(move |_| Some(k)),
        ValNode::Len => Box::new(|s| Some(s.wire_len)),
        // A capture has no metadata: as `Ir::run` with none.
        ValNode::Meta(_) => Box::new(|_| None),
        ValNode::Var(n) => {
            if n >= MAX_VARS {
                return Box::new(|_| None);
            }
            Box::new(move |s| (s.set & (1 << n) != 0).then(|| s.vars[n as usize]))
        }
        ValNode::Load { off: None, k, size } => match size {
            1 => Box::new(move |s| load1(s.data, k)),
            2 => Box::new(move |s| load2(s.data, k)),
            4 => Box::new(move |s| load4(s.data, k)),
            _ => Box::new(move |s| load_any(s.data, u64::from(k), size)),
        },
        ValNode::Load {
            off: Some(o),
            k,
            size,
        } => {
            let o = value(ir, o);
            let k = u64::from(k);
            Box::new(move |s| load_any(s.data, u64::from(o(s)?) + k, size))
        }
        ValNode::Bin(op, a, b) => {
            let a = value(ir, a);
            match ir.const_of(b) {
                Some(c) => bin_const(op, a, c),
                None => {
                    let b = value(ir, b);
                    Box::new(move |s| {
                        let x = a(s)?;
                        op.eval(x, b(s)?)
                    })
                }
            }
        }
        ValNode::Neg(a) => {
            let a = value(ir, a);
            Box::new(move |s| Some(a(s)?.wrapping_neg()))
        }
    }
}

/// `a op c` for a constant `c`: the operator chosen once.
fn bin_const(op: BinOp, a: ValFn, c: u32) -> ValFn {
    match op {
        BinOp::Add => Box::new(move |s| Some(a(s)?.wrapping_add(c))),
        BinOp::Sub => Box::new(move |s| Some(a(s)?.wrapping_sub(c))),
        BinOp::And => Box::new(move |s| Some(a(s)? & c)),
        BinOp::Mul => Box::new(move |s| Some(a(s)?.wrapping_mul(c))),
        BinOp::Shl => Box::new(move |s| Some(a(s)?.checked_shl(c).unwrap_or(0))),
        BinOp::Shr => Box::new(move |s| Some(a(s)?.checked_shr(c).unwrap_or(0))),
        _ => Box::new(move |s| op.eval(a(s)?, c)),
    }
}
