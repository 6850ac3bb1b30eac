//! fentry and fexit on a BPF program already in the kernel (an XDP
//! program attached to a device, as xdpdump traces one): the tracing
//! program is loaded with the target as `attach_prog_fd` and the BTF id
//! of the target's main function (its first `func_info` record) as
//! `attach_btf_id`; its arguments are the target's (an XDP program's
//! first is its `struct xdp_buff *`). Set with
//! [`ProgramSpec::with_traced_program`](crate::object::ProgramSpec::with_traced_program);
//! attached with [`attach::tracing::attach`](crate::attach::tracing::attach).

use std::io;
use std::sync::Arc;

use crate::handle::Program;
use crate::kernel_id::KernelProgId;
use crate::privilege::{Needs, hint};
use crate::sys::bpf as sys;

/// Why a program cannot be traced with fentry or fexit.
#[derive(Debug, thiserror::Error)]
pub enum TracedProgramError {
    /// The target has no BTF function information.
    #[error(
        "program `{program}` has no BTF function information: fentry and fexit find a \
         program's function through it (programs built by clang with -g, by libbpf or by this \
         builder with line info have it)"
    )]
    NoBtf {
        /// The target.
        program: String,
    },
    /// Reading the target's information from the kernel failed.
    #[error("{op} of program `{program}` failed: {source}{}", hint(.source, *.needs))]
    Kernel {
        /// The target.
        program: String,
        /// What was being read.
        op: &'static str,
        /// What it needs when refused for lack of privilege.
        needs: Needs,
        /// The errno.
        source: io::Error,
    },
}

/// What fentry or fexit traces when it traces a BPF program: the program
/// and its main function's BTF id.
#[derive(Clone, Debug)]
pub struct TracedProgram {
    target: Arc<Program>,
    target_id: KernelProgId,
    btf_id: u32,
}

impl TracedProgram {
    /// The main function of `target`, keeping a handle of `target` (the
    /// load needs it).
    pub(crate) fn resolve(target: &Program) -> Result<TracedProgram, TracedProgramError> {
        let kernel = |op, source| TracedProgramError::Kernel {
            program: target.name().to_string(),
            op,
            needs: Needs::MAP,
            source,
        };
        let info = target
            .info()
            .map_err(|e| kernel("reading the information", e))?;
        let btf_id = sys::prog_main_func_type_id(target)
            .map_err(|e| kernel("reading the function information", e))?
            .ok_or_else(|| TracedProgramError::NoBtf {
                program: target.name().to_string(),
            })?;
        let target = target
            .try_clone()
            .map_err(|e| kernel("duplicating the fd", e))?;
        Ok(TracedProgram {
            target: Arc::new(target),
            target_id: info.id,
            btf_id,
        })
    }

    /// The program traced.
    pub fn target(&self) -> &Program {
        &self.target
    }

    /// The kernel's id of the program traced.
    pub fn target_id(&self) -> KernelProgId {
        self.target_id
    }

    /// The main function's id in the target's BTF (`attach_btf_id`).
    pub fn btf_id(&self) -> u32 {
        self.btf_id
    }
}

/// The same program (by kernel id) and function.
impl PartialEq for TracedProgram {
    fn eq(&self, other: &TracedProgram) -> bool {
        (self.target_id, self.btf_id) == (other.target_id, other.btf_id)
    }
}
