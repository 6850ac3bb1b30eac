//! Attaching tp_btf, fentry and fexit programs (`BPF_PROG_TYPE_TRACING`)
//! to what they were loaded for ([`ProgramSpec::attach_to`]): a tracing
//! link (`BPF_LINK_CREATE`, with a BPF cookie on Linux 6.0+), or
//! `BPF_RAW_TRACEPOINT_OPEN` on kernels before tracing links.
//!
//! ```no_run
//! use bpf_builder::asm::Asm;
//! use bpf_builder::attach::tracing;
//! use bpf_builder::insn::Reg::*;
//! use bpf_builder::object::{Object, ProgramSpec, ProgramType};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut obj = Object::new();
//! let mut a = Asm::new();
//! a.mov64(R0, 0);
//! a.exit();
//! let spec = ProgramSpec::new("on_switch", ProgramType::TpBtf, a.finish()?)
//!     .with_attach_to("sched_switch");
//! let prog = obj.add_program_spec(spec)?;
//! let loaded = obj.load()?; // resolves sched_switch in the kernel's BTF
//! let link = tracing::attach(loaded.program(prog), 0)?;
//! link.detach()?;
//! # Ok(())
//! # }
//! ```
//!
//! [`ProgramSpec::attach_to`]: crate::object::ProgramSpec::attach_to

use std::os::fd::AsFd;

use super::{AttachError, Link, TraceLink};
use crate::handle::Program;
use crate::object::ProgramType;
use crate::privilege::Needs;
use crate::sys::bpf as sys;

/// Whether this kernel refuses BPF trampolines (fentry, fexit, fmod_ret,
/// freplace and LSM programs) before the verifier runs: a bare fentry
/// program with no target, which a kernel that allows trampolines refuses
/// with `EINVAL` (no target), gets `EPERM` here even as root (some
/// hardened or sandboxed kernels). One cheap `BPF_PROG_LOAD` without the
/// kernel's BTF, so a tool can pick a tracepoint at once instead of
/// reading the BTF for a trial load of fentry; probed once per process.
/// `false` does not promise that an fentry program loads and attaches
/// (its target may be missing, or not traceable): fall back on errors too.
/// Without CAP_BPF and CAP_PERFMON the answer is `true` as well.
pub fn kernel_refuses_trampolines() -> bool {
    static REFUSES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *REFUSES.get_or_init(|| {
        use crate::insn::{Insn, Reg};
        let insns = [Insn::mov64(Reg::R0, 0), Insn::exit()];
        let mut attr = sys::ProgLoadAttr::new(
            sys::bpf_prog_type::BPF_PROG_TYPE_TRACING as u32,
            &insns,
            c"GPL",
        );
        attr.expected_attach_type = sys::bpf_attach_type::BPF_TRACE_FENTRY as u32;
        matches!(sys::prog_load(&attr), Err(e) if e.error.raw_os_error() == Some(libc::EPERM))
    })
}

/// Attaches the tp_btf, fentry or fexit program `prog` to the function or
/// tracepoint it was loaded for, with `cookie` as its BPF cookie (0: none;
/// other values need Linux 6.0+).
pub fn attach(prog: &Program, cookie: u64) -> Result<TraceLink, AttachError> {
    let t = match prog.prog_type() {
        Some(t @ (ProgramType::TpBtf | ProgramType::Fentry | ProgramType::Fexit)) => t,
        other => {
            return Err(AttachError::WrongProgram {
                program: prog.name().to_string(),
                reason: format!(
                    "{}; tracing::attach takes the tp_btf, fentry and fexit programs \
                     loaded by the builder",
                    match other {
                        Some(t) => format!("it is a {} program", t.section_name()),
                        None => "its type is unknown (loaded elsewhere)".into(),
                    }
                ),
            });
        }
    };
    let what = format!("{} program `{}`", t.section_name(), prog.name());
    let (_, attach_type) = t.kernel_types();
    let fd = match sys::link_create_tracing(prog.as_fd(), attach_type, cookie) {
        Ok(fd) => fd,
        // No tracing links (before 5.10 for fentry, 5.11 for tp_btf).
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && cookie == 0 => {
            sys::raw_tracepoint_open_btf(prog.as_fd()).map_err(|e| {
                AttachError::sys_needs(format!("attaching {what}"), e, Needs::TRACING_PROGRAM)
            })?
        }
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            return Err(AttachError::KernelTooOld {
                what: format!("a BPF cookie on {what}"),
                needs: "Linux 6.0".into(),
                detail: format!("BPF_LINK_CREATE refused it: {e}"),
            });
        }
        Err(e) if matches!(e.raw_os_error(), Some(sys::ENOTSUPP | libc::EOPNOTSUPP)) => {
            return Err(AttachError::KernelTooOld {
                what,
                needs: "BPF trampolines (x86_64 or arm64 with the BPF JIT)".into(),
                detail: format!("the kernel cannot attach it: {e}"),
            });
        }
        Err(e) => {
            return Err(AttachError::sys_needs(
                format!("attaching {what}"),
                e,
                Needs::TRACING_PROGRAM,
            ));
        }
    };
    let mut link = TraceLink::new(what);
    link.push_link(Link::from_fd(fd), None);
    Ok(link)
}
