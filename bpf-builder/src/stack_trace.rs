//! Stack trace maps (`BPF_MAP_TYPE_STACK_TRACE`): the stacks programs
//! record with `bpf_get_stackid`, read back as instruction addresses,
//! innermost first. Name them with [`crate::symbolize`].
//!
//! ```no_run
//! use bpf_builder::stack_trace;
//! use bpf_builder::symbolize::KernelSymbols;
//! # fn f(map: &bpf_builder::handle::Map, id: u32) -> Result<(), Box<dyn std::error::Error>> {
//! let kernel = KernelSymbols::load()?;
//! for addr in stack_trace::read(map, id)?.unwrap_or_default() {
//!     println!("{addr:#x} {:?}", kernel.resolve(addr));
//! }
//! # Ok(()) }
//! ```

use crate::handle::{Map, MapError};
use crate::map::MapType;

/// `BPF_F_USER_STACK`: `bpf_get_stackid` records the user stack.
pub const USER_STACK: u64 = 1 << 8;
/// `BPF_F_FAST_STACK_CMP`: compare stacks by hash only.
pub const FAST_STACK_CMP: u64 = 1 << 9;
/// `BPF_F_REUSE_STACKID`: a new stack whose hash collides replaces the
/// old one.
pub const REUSE_STACKID: u64 = 1 << 10;
/// The low 8 bits of the flags: frames to skip.
pub const SKIP_FIELD_MASK: u64 = 0xff;

/// Why a stack cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StackTraceError {
    /// The map is not a stack trace map.
    #[error("map `{map}` is not a stack trace map (kernel map type {kernel_type})")]
    NotAStackTraceMap {
        /// The map's name.
        map: String,
        /// Its kernel map type.
        kernel_type: u32,
    },
    /// The lookup failed.
    #[error(transparent)]
    Map(#[from] MapError),
}

/// The stack `stack_id` (a value `bpf_get_stackid` returned) of `map`:
/// its addresses, innermost first; `None` when the map has no such
/// stack.
pub fn read(map: &Map, stack_id: u32) -> Result<Option<Vec<u64>>, StackTraceError> {
    if MapType::from_kernel_type(map.kernel_type()) != Some(MapType::StackTrace) {
        return Err(StackTraceError::NotAStackTraceMap {
            map: map.name().to_string(),
            kernel_type: map.kernel_type(),
        });
    }
    let Some(value) = map.lookup(&stack_id.to_ne_bytes())? else {
        return Ok(None);
    };
    Ok(Some(
        value
            .chunks_exact(8)
            .map(|c| u64::from_ne_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .take_while(|&a| a != 0)
            .collect(),
    ))
}
