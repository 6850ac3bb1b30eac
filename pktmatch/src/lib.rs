//! pktmatch: the packet-match core shared by the filter compilers.
//!
//! A front end (tcpdump's language in `pcap2bpf`, nftables' in `nft2bpf`)
//! lowers its syntax into the [`ir`]: values over the packet and a
//! control-flow graph of tests. [`opt`] optimises it, [`codegen`] turns it
//! into `bpf-builder` instructions for XDP, tc or socket filters, and
//! [`run`] runs a filter over packets, in the kernel
//! (`BPF_PROG_TEST_RUN`, batched) or in the interpreter of the generated
//! code. The crate knows packets, not languages.
//!
//! ```
//! use pktmatch::ir::{CmpOp, Cond, Edge, Ir};
//! use pktmatch::run::{Engine, Frame, Runner};
//! use pktmatch::{EmitOptions, Span, Target};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // `ether[12:2] == 0x0800`: accept IPv4 frames.
//! let mut ir = Ir::new();
//! let ethertype = ir.load(None, 12, 2);
//! let ipv4 = ir.k(0x0800);
//! let test = ir.push(pktmatch::ir::Block {
//!     cond: Cond::Cmp { a: ethertype, op: CmpOp::Eq, b: ipv4, relation: false },
//!     t: Edge::ACCEPT,
//!     f: Edge::REJECT,
//!     short: pktmatch::ir::OnShort::Reject,
//!     span: Span::default(),
//! });
//! ir.entry = Some(test);
//! pktmatch::opt::optimize(&mut ir);
//!
//! // An XDP program: XDP_PASS (2) on a match, XDP_DROP (1) otherwise.
//! let (object, prog) = pktmatch::program(&ir, &EmitOptions::new(Target::Xdp), "ip", 2, 1)?;
//! println!("{}", object.listing(prog)?);
//!
//! // The same filter over a frame, in the interpreter (no privileges).
//! let mut runner = Runner::new(ir, "ip", Engine::Interp)?;
//! let mut frame = [0u8; 60];
//! frame[12..14].copy_from_slice(&[0x08, 0x00]);
//! assert!(runner.matches(Frame::new(&frame, 60))?);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod codegen;
pub mod ir;
pub mod opt;
pub mod run;

use bpf_builder::asm::{Asm, Code};
use bpf_builder::insn::Reg;
use bpf_builder::object::{Object, ProgId, ProgramType};

pub use codegen::{EmitOptions, Target};
pub use ir::Ir;

/// A half-open byte range `start..end` of the source text a test comes
/// from (for annotations and errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// Builds a span.
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// A filter the core cannot turn into code: a limit of the target (too
/// many registers, offsets the verifier cannot track) or an internal
/// fault, with the span of the source it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What is wrong.
    pub message: String,
    /// The bytes of the source the error is about.
    pub span: Span,
}

impl Error {
    /// Builds an error for `span`.
    pub fn new(message: impl Into<String>, span: Span) -> Self {
        Error {
            message: message.into(),
            span,
        }
    }
}

/// An internal fault (a bug of ours), as an [`Error`].
pub(crate) fn internal(e: impl std::fmt::Display) -> Error {
    Error::new(format!("internal error: {e}"), Span::default())
}

/// Emits a whole program for `ir`: the filter, with the caller's
/// `verdict(asm, v)` code, which must not fall through, once for each
/// verdict the filter can reach (the verifier refuses dead code).
pub fn emit_program(
    ir: &Ir,
    eopts: &EmitOptions,
    source: &str,
    mut verdict: impl FnMut(&mut Asm, ir::Verdict),
) -> Result<Code, Error> {
    // About five instructions a block, forty for a protochain walk: room
    // for them all up front, as growing costs more than the spare room.
    let chains = ir
        .blocks
        .iter()
        .filter(|b| matches!(b.cond, ir::Cond::ProtoChain { .. }))
        .count();
    let mut asm = Asm::with_capacity(6 * ir.blocks.len() + 40 * chains + 12);
    codegen::emit(ir, &mut asm, eopts, source, &mut verdict)?;
    asm.finish().map_err(internal)
}

/// The program type of a target.
pub fn program_type(target: Target) -> ProgramType {
    match target {
        Target::Xdp => ProgramType::Xdp,
        Target::Tc => ProgramType::SchedCls,
        Target::SocketFilter => ProgramType::SocketFilter,
    }
}

/// Builds a one-program object for `ir`: the program (named
/// `pcap_filter`) returns `on_match` when the filter matches and
/// `on_nomatch` otherwise.
pub fn program(
    ir: &Ir,
    eopts: &EmitOptions,
    source: &str,
    on_match: i32,
    on_nomatch: i32,
) -> Result<(Object, ProgId), Error> {
    let code = emit_program(ir, eopts, source, |asm, v| {
        let matched = v == ir::Verdict::MATCH;
        asm.mov32(Reg::R0, if matched { on_match } else { on_nomatch });
        asm.exit();
    })?;
    let mut object = Object::new();
    let prog = object
        .add_program("pcap_filter", program_type(eopts.target), code)
        .map_err(internal)?;
    if eopts.xdp_frags {
        object.set_xdp_frags(prog, true).map_err(internal)?;
    }
    Ok((object, prog))
}
