//! Linking extension programs (`BPF_PROG_TYPE_EXT`, freplace) to the
//! function they replace: see [`crate::extension`].

use std::os::fd::AsFd;

use super::{AttachError, Link};
use crate::handle::Program;
use crate::privilege::Needs;
use crate::sys::bpf::{self as sys, LinkCreateAttr, Relative, Target};

/// Makes the extension `ext` replace the global function `function` of
/// `target` from now on, through a BPF link (`BPF_LINK_CREATE` with the
/// target's fd and the function's BTF id); the function runs again when
/// the link is dropped (unless pinned) or detached.
///
/// `target` may be the program `ext` was loaded against or any other
/// with a compatible function (same prototype, same program type; Linux
/// 5.10+): this is how libxdp moves its components into a new dispatcher.
/// One extension may be linked to several targets at once.
pub fn attach(ext: &Program, target: &Program, function: &str) -> Result<Link, AttachError> {
    let btf_id = target.function_btf_id(function)?;
    let attr = LinkCreateAttr {
        prog_fd: ext.as_fd(),
        target: Target::Function {
            prog: target.as_fd(),
            btf_id,
        },
        attach_type: 0,
        flags: 0,
        relative: Relative::None,
        expected_revision: 0,
    };
    sys::link_create(&attr).map(Link::from_fd).map_err(|e| {
        let op = format!(
            "linking extension `{}` to `{function}` of `{}`",
            ext.name(),
            target.name()
        );
        match e.raw_os_error() {
            Some(libc::EBUSY) => AttachError::HookTaken {
                hook: format!("function `{function}`"),
                iface: format!("program `{}`", target.name()),
                detail: "an extension already replaces it (the kernel lets one extension \
                         replace a function at a time)"
                    .into(),
            },
            // The kernel's own checks: not an extension, prototypes or
            // program types that differ, a target that is itself an
            // extension, a function already replaced by this program...
            Some(libc::EINVAL) => AttachError::WrongProgram {
                program: ext.name().to_string(),
                reason: format!(
                    "{op}: the kernel refused it ({e}); it wants an extension program, a \
                     global function of the same prototype in a program of the extension's \
                     program type, and a target that is not itself an extension"
                ),
            },
            _ => AttachError::sys_needs(op, e, Needs::TRACING_PROGRAM),
        }
    })
}
