//! Instruction addresses to symbol names: kernel addresses against
//! `/proc/kallsyms` ([`KernelSymbols`]), a process's addresses against
//! its `/proc/PID/maps` and the ELF symbols of the files mapped there
//! ([`ProcessSymbols`]). Each answer is the nearest symbol at or below
//! the address, with the offset into it, and the module or file that
//! holds it. Names are as the symbol tables spell them (Rust and C++
//! names stay mangled).
//!
//! ```no_run
//! use bpf_builder::symbolize::{KernelSymbols, ProcessSymbols};
//! # fn f(kernel_stack: &[u64], user_stack: &[u64], pid: u32) -> Result<(), bpf_builder::symbolize::SymbolizeError> {
//! let kernel = KernelSymbols::load()?;
//! for &addr in kernel_stack {
//!     match kernel.resolve(addr) {
//!         Some(s) => println!("{addr:#x} {s}"),
//!         None => println!("{addr:#x} ?"),
//!     }
//! }
//! let mut process = ProcessSymbols::new(pid)?;
//! for &addr in user_stack {
//!     println!("{addr:#x} {:?}", process.resolve(addr));
//! }
//! # Ok(()) }
//! ```

mod kernel;
mod table;
mod user;

use std::fmt;
use std::io;
use std::path::PathBuf;

pub use kernel::KernelSymbols;
pub use user::ProcessSymbols;

/// Why symbols cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SymbolizeError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: io::Error,
    },
    /// `/proc/kallsyms` shows every address as 0: `kernel.kptr_restrict`
    /// hides them from this process (it needs CAP_SYSLOG with
    /// `kptr_restrict` 1, or `kptr_restrict` 0).
    #[error("/proc/kallsyms hides kernel addresses (kernel.kptr_restrict; needs CAP_SYSLOG)")]
    Restricted,
}

/// Where an address is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// The symbol's name.
    pub name: String,
    /// The address's offset from the symbol's start.
    pub offset: u64,
    /// The kernel module (`None`: the kernel itself) or the mapped file
    /// that holds it.
    pub module: Option<String>,
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{:#x}", self.name, self.offset)?;
        if let Some(m) = &self.module {
            write!(f, " [{m}]")?;
        }
        Ok(())
    }
}
