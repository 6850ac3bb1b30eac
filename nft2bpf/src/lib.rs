//! nft2bpf: nftables' ruleset language for the netdev family, read and
//! checked as `nft -f` reads and checks it, for compilation to XDP and tcx.
//!
//! Pipeline, one folder a stage: [`syntax`] (scanner and parser, with
//! `include` and `define`), [`check`] (nft's semantic checks, the
//! refusal of what cannot run before the stack, and the resolution of
//! every match to header bytes and typed constants). Errors carry spans;
//! a [`SourceMap`] turns them into `FILE:LINE:COL` with the source line
//! and a caret.

#![warn(missing_docs)]

pub mod check;
pub mod error;
pub mod source;
pub mod syntax;

pub use error::{Error, Errors};
pub use source::SourceMap;
