//! Attaching raw tracepoint programs (`BPF_RAW_TRACEPOINT_OPEN`): the
//! program gets the tracepoint's arguments as they are passed to the
//! tracepoint, without the record a classic tracepoint builds.

use std::ffi::CString;

use super::{AttachError, Link, TraceLink};
use crate::handle::Program;
use crate::object::ProgramType;
use crate::privilege::Needs;
use crate::sys::bpf as sys;
use crate::text::escape;

/// Attaches the [`ProgramType::RawTracepoint`] program `prog` to the
/// tracepoint `name` (`sys_enter`, `sched_switch`: the name without its
/// category). A tracepoint the kernel does not have is an
/// [`AttachError::NotFound`] naming it.
pub fn attach(prog: &Program, name: &str) -> Result<TraceLink, AttachError> {
    if let Some(t) = prog.prog_type()
        && t != ProgramType::RawTracepoint
    {
        return Err(AttachError::WrongProgram {
            program: prog.name().to_string(),
            reason: format!(
                "it is a {} program, and a raw tracepoint takes a raw_tracepoint program",
                t.section_name()
            ),
        });
    }
    let not_found = || AttachError::NotFound {
        what: format!("no raw tracepoint `{}`", escape(name)),
    };
    let cname = CString::new(name).map_err(|_| not_found())?;
    if name.is_empty() {
        return Err(not_found());
    }
    let fd = sys::raw_tracepoint_open(&cname, prog).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => AttachError::NotFound {
            what: format!(
                "no raw tracepoint `{}` (the kernel has no tracepoint of that name; \
                 give it without its category: `sys_enter`, not `raw_syscalls:sys_enter`)",
                escape(name)
            ),
        },
        _ => AttachError::sys_needs(
            format!(
                "attaching `{}` to raw tracepoint {}",
                prog.name(),
                escape(name)
            ),
            e,
            Needs::TRACING_PROGRAM,
        ),
    })?;
    let mut link = TraceLink::new(format!("raw tracepoint {}", escape(name)));
    link.push_link(Link::from_fd(fd), None);
    Ok(link)
}
