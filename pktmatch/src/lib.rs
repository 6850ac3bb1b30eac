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
//! use pktmatch::ir::{Block, CmpOp, Cond, Edge, Ir};
//! use pktmatch::run::{Engine, Frame, Runner};
//! use pktmatch::{EmitOptions, Span, Target};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // `ether[12:2] == 0x0800`: accept IPv4 frames.
//! let mut ir = Ir::new();
//! let ethertype = ir.load(None, 12, 2);
//! let ipv4 = ir.k(0x0800);
//! let cond = Cond::Cmp { a: ethertype, op: CmpOp::Eq, b: ipv4, relation: false };
//! let test = ir.push(Block::new(cond, Edge::ACCEPT, Edge::REJECT, Span::default()));
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

pub use codegen::{
    COUNTER_MATCHED, COUNTER_SEEN, EmitOptions, ProgramOptions, Target, add_program, counters_map,
    emit_program, program, program_type,
};
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
