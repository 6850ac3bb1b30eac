//! What can go wrong while interpreting a program.

use std::fmt;

/// Why the interpreter stopped. Most of these are programs the kernel's
/// verifier would refuse; the interpreter finds them at run time instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// An encoding that cannot run.
    #[error("invalid instruction: {0}")]
    Invalid(&'static str),
    /// A register read before anything was written to it (or after a call
    /// clobbered it).
    #[error("r{0} is read before it is written (or after a call clobbered it)")]
    Uninit(u8),
    /// A write to the frame pointer.
    #[error("r10 is read only")]
    FramePointerWrite,
    /// An access outside the region a pointer points into.
    #[error("{size}-byte access at offset {off} of the {region} ({len} bytes)")]
    OutOfBounds {
        /// Region name.
        region: &'static str,
        /// Offset of the access from the region's start.
        off: i64,
        /// Access size.
        size: usize,
        /// Region length.
        len: usize,
    },
    /// A memory access through something that is not a pointer to memory.
    #[error("memory access through a {0}, which is not a pointer to readable memory")]
    NotMemory(&'static str),
    /// An operation on pointers that the kernel refuses or whose result
    /// depends on real kernel addresses.
    #[error("{op} on a {kind} cannot be emulated (the result depends on kernel addresses)")]
    Pointer {
        /// The operation.
        op: &'static str,
        /// What the operand was.
        kind: &'static str,
    },
    /// A context access the program type does not allow.
    #[error("the context refuses a {size}-byte {} at offset {off}", if *.write { "write" } else { "read" })]
    Ctx {
        /// Offset in the context structure.
        off: i64,
        /// Access size.
        size: usize,
        /// Whether it was a write.
        write: bool,
    },
    /// A misaligned atomic access.
    #[error("misaligned {size}-byte atomic access")]
    Misaligned {
        /// Access size.
        size: usize,
    },
    /// A write to read-only memory.
    #[error("write into read-only {0}")]
    ReadOnly(&'static str),
    /// A helper id the kernel does not have.
    #[error("unknown helper #{0}")]
    UnknownHelper(i32),
    /// A helper the interpreter does not implement, or that this program
    /// type may not call.
    #[error("helper {0} is not supported for this program type by the interpreter")]
    UnsupportedHelper(&'static str),
    /// A helper argument of the wrong kind.
    #[error("{helper}: {reason}")]
    HelperArg {
        /// The helper's name.
        helper: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// An `ld_imm64` names a map the interpreter was not given.
    #[error("no map with fd/index {0} was given to the interpreter")]
    UnknownMap(i32),
    /// A map value reference past the value.
    #[error("map value offset {off} is past the {size}-byte value")]
    MapValueOffset {
        /// The offset.
        off: u32,
        /// Value size.
        size: u32,
    },
    /// The instruction budget ran out.
    #[error("the budget of {0} executed instructions ran out (a runaway loop?)")]
    InsnLimit(u64),
    /// Too many nested calls.
    #[error("more than {0} nested call frames")]
    CallDepth(usize),
    /// Execution ran past the last instruction.
    #[error("execution fell off the end of the program")]
    FellOff,
    /// An instruction this program type may not use.
    #[error("{0} is not allowed for this program type")]
    NotAllowed(&'static str),
    /// The program returned something that is not a number.
    #[error("the program returns a {0}, not a number")]
    ReturnPointer(&'static str),
    /// A partial access to a pointer spilled on the stack.
    #[error("partial access to a pointer spilled on the stack")]
    SpilledPointer,
    /// The input cannot be given to this program type.
    #[error("bad input: {0}")]
    Input(&'static str),
}

/// An interpreter error: the fault and the instruction that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpError {
    /// Index of the instruction (in 8-byte slots), if one was running.
    pub pc: Option<usize>,
    /// What went wrong.
    pub fault: Fault,
}

impl fmt::Display for InterpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pc {
            Some(pc) => write!(f, "instruction {pc}: {}", self.fault),
            None => write!(f, "{}", self.fault),
        }
    }
}

impl std::error::Error for InterpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.fault)
    }
}

impl InterpError {
    /// A fault at instruction `pc`.
    pub(crate) fn at(pc: usize, fault: Fault) -> InterpError {
        InterpError {
            pc: Some(pc),
            fault,
        }
    }

    /// A fault before the program started.
    pub(crate) fn input(what: &'static str) -> InterpError {
        InterpError {
            pc: None,
            fault: Fault::Input(what),
        }
    }
}
