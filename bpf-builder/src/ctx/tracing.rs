//! The contexts of tracing programs: `struct pt_regs` (kprobes, uprobes,
//! and inside `struct bpf_perf_event_data`), the `u64` argument arrays of
//! raw tracepoints, BTF tracepoints, fentry and fexit. Classic
//! tracepoints take the event's record, whose layout the tracepoint's
//! format file gives
//! ([`TracepointFormat`](crate::attach::tracefs::TracepointFormat)).

/// Offsets in `struct pt_regs` on x86_64 (`arch/x86/include/asm/ptrace.h`,
/// the uapi's `bpf_user_pt_regs_t`): the registers of the probed code at
/// the probe (R1 at entry of a kprobe or uprobe program). 64-bit fields,
/// read with `ldx(Size::DW, dst, R1, offset)`.
///
/// Function arguments follow the System V calling convention
/// ([`arg`](pt_regs::arg)): `rdi`, `rsi`, `rdx`, `rcx`, `r8`, `r9`; the return value
/// (kretprobes, uretprobes) is in `rax` ([`RC`](pt_regs::RC)). A kprobe on a
/// syscall's `__x64_sys_*` wrapper sees one argument: a pointer to the
/// user's `pt_regs`, which hold the syscall's arguments.
pub mod pt_regs {
    /// `r15`.
    pub const R15: i16 = 0;
    /// `r14`.
    pub const R14: i16 = 8;
    /// `r13`.
    pub const R13: i16 = 16;
    /// `r12`.
    pub const R12: i16 = 24;
    /// `rbp`.
    pub const RBP: i16 = 32;
    /// `rbx`.
    pub const RBX: i16 = 40;
    /// `r11`.
    pub const R11: i16 = 48;
    /// `r10`.
    pub const R10: i16 = 56;
    /// `r9`: sixth argument.
    pub const R9: i16 = 64;
    /// `r8`: fifth argument.
    pub const R8: i16 = 72;
    /// `rax`: the return value.
    pub const RAX: i16 = 80;
    /// `rcx`: fourth argument.
    pub const RCX: i16 = 88;
    /// `rdx`: third argument.
    pub const RDX: i16 = 96;
    /// `rsi`: second argument.
    pub const RSI: i16 = 104;
    /// `rdi`: first argument.
    pub const RDI: i16 = 112;
    /// `orig_rax`: the syscall number on syscall entry.
    pub const ORIG_RAX: i16 = 120;
    /// `rip`: the instruction pointer.
    pub const RIP: i16 = 128;
    /// `cs`.
    pub const CS: i16 = 136;
    /// `eflags`.
    pub const EFLAGS: i16 = 144;
    /// `rsp`: the stack pointer.
    pub const RSP: i16 = 152;
    /// `ss`.
    pub const SS: i16 = 160;
    /// The struct's size.
    pub const SIZE: usize = 168;

    /// The return value of the probed function (kretprobes, uretprobes).
    pub const RC: i16 = RAX;
    /// The instruction pointer.
    pub const IP: i16 = RIP;
    /// The stack pointer.
    pub const SP: i16 = RSP;

    /// Where argument `n` (from 0) of a function is, for the first six
    /// integer or pointer arguments (`None` from the seventh, which is on
    /// the stack).
    pub const fn arg(n: usize) -> Option<i16> {
        match n {
            0 => Some(RDI),
            1 => Some(RSI),
            2 => Some(RDX),
            3 => Some(RCX),
            4 => Some(R8),
            5 => Some(R9),
            _ => None,
        }
    }
}

/// `struct bpf_raw_tracepoint_args`, the context of raw tracepoint
/// programs: the tracepoint's arguments as an array of `u64`
/// (`TP_PROTO`'s parameters in order). Also the context of a
/// [`run_once`](crate::run::run_once) test run, whose arguments the caller
/// gives.
pub mod raw_tracepoint_args {
    /// Where argument `n` (from 0) is.
    pub const fn arg(n: usize) -> i16 {
        (n * 8) as i16
    }
}

/// The context of BTF tracepoints (tp_btf), fentry and fexit programs: the
/// traced function's (or tracepoint's) arguments, each widened to a
/// `u64`, then, for fexit, the return value. The verifier knows their
/// types from BTF (a pointer argument is a typed pointer it lets the
/// program dereference).
pub mod tracing_args {
    /// Where argument `n` (from 0) is.
    pub const fn arg(n: usize) -> i16 {
        (n * 8) as i16
    }

    /// Where an fexit program finds the return value of a function of
    /// `nargs` arguments (see
    /// [`Func::params`](crate::btf::kernel::Func::params)).
    pub const fn ret(nargs: usize) -> i16 {
        (nargs * 8) as i16
    }
}

/// `struct bpf_perf_event_data`, the context of perf event programs: the
/// registers when the event fired, the sampling period and the address
/// (for events that have one).
pub mod perf_event_data {
    /// `regs`: a `struct pt_regs` ([`super::pt_regs`] offsets from here).
    pub const REGS: i16 = 0;
    /// `sample_period` (`u64`).
    pub const SAMPLE_PERIOD: i16 = 168;
    /// `addr` (`u64`).
    pub const ADDR: i16 = 176;
    /// The struct's size.
    pub const SIZE: usize = 184;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_registers_follow_the_calling_convention() {
        assert_eq!(pt_regs::arg(0), Some(pt_regs::RDI));
        assert_eq!(pt_regs::arg(5), Some(pt_regs::R9));
        assert_eq!(pt_regs::arg(6), None);
        assert_eq!(pt_regs::SS as usize + 8, pt_regs::SIZE);
        assert_eq!(
            perf_event_data::SAMPLE_PERIOD as usize,
            pt_regs::SIZE,
            "sample_period follows the registers"
        );
        assert_eq!(tracing_args::ret(3), 24);
        assert_eq!(raw_tracepoint_args::arg(2), 16);
    }
}
