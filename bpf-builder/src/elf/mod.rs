//! Relocatable ELF objects (`.o`) in the layout clang emits for
//! `-target bpf`, so libbpf, bpftool and aya load what we build; and the
//! way back, a clang-built object read (through `aya-obj`) into an
//! [`Object`](crate::object::Object) that code can extend.
//!
//! What the format cannot say is refused with [`ElfError::Unsupported`]
//! rather than dropped: initial contents of ordinary maps, frozen ordinary
//! maps, map-fd references to global data, and local bpf-to-bpf calls
//! inside one code block (libbpf only calls functions in `.text`).

mod btf_ext;
mod maps;
mod read;
mod write;

use crate::object::ObjectError;

/// Why an object cannot be written to ELF or read from it.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// Something of the object that a BPF ELF file cannot express.
    #[error("cannot express in ELF: {0}")]
    Unsupported(String),
    /// The `object` crate refused to write the file.
    #[error("writing ELF: {0}")]
    Write(String),
    /// The file is not a BPF object we can read.
    #[error("reading ELF: {0}")]
    Read(String),
    /// The objects read from the file do not make a valid object.
    #[error(transparent)]
    Object(#[from] ObjectError),
}
