//! The BTF ids that tp_btf, fentry and fexit programs are loaded against
//! ([`ProgramSpec::attach_to`]): a function or a tracepoint's
//! `btf_trace_*` typedef, in vmlinux or in a loaded module's BTF.

use std::io;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::btf::KernelBtf;
use crate::btf::kernel::{KernelBtfError, Kind, SYSFS_BTF};
use crate::object::{ProgramSpec, ProgramType};
use crate::sys::bpf as sys;

/// Why the target of a tp_btf, fentry or fexit program cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The kernel exposes no BTF.
    #[error(
        "program `{program}` ({kind} of `{target}`): this kernel has no BTF to find it in \
         ({source}); tp_btf, fentry and fexit need a kernel built with CONFIG_DEBUG_INFO_BTF \
         (Linux 5.5 or later)"
    )]
    NoKernelBtf {
        /// The program.
        program: String,
        /// `fentry`, `fexit` or `tp_btf`.
        kind: &'static str,
        /// What it is for.
        target: String,
        /// Reading `/sys/kernel/btf/vmlinux`.
        source: KernelBtfError,
    },
    /// No such function or tracepoint.
    #[error("program `{program}` ({kind}): no {what} `{target}` in the kernel's BTF ({searched})")]
    NotFound {
        /// The program.
        program: String,
        /// `fentry`, `fexit` or `tp_btf`.
        kind: &'static str,
        /// `function` or `tracepoint`.
        what: &'static str,
        /// The name asked for.
        target: String,
        /// Where it was looked for.
        searched: String,
    },
    /// A module's BTF could not be read or opened.
    #[error("program `{program}`: the BTF of module `{module}`: {reason}")]
    Module {
        /// The program.
        program: String,
        /// The module.
        module: String,
        /// What went wrong.
        reason: String,
    },
}

/// A resolved target: the BTF id, and the module's BTF object when the
/// id is a module's (passed to the kernel as `attach_btf_obj_fd`).
#[derive(Debug)]
pub(crate) struct Resolved {
    pub btf_id: u32,
    pub module_btf: Option<OwnedFd>,
}

/// vmlinux's BTF, read once per process (it does not change while the
/// kernel runs).
fn vmlinux() -> Result<Arc<KernelBtf>, KernelBtfError> {
    static VMLINUX: Mutex<Option<Arc<KernelBtf>>> = Mutex::new(None);
    let mut cached = VMLINUX.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(btf) = &*cached {
        return Ok(btf.clone());
    }
    let btf = Arc::new(KernelBtf::vmlinux()?);
    *cached = Some(btf.clone());
    Ok(btf)
}

/// The loaded modules that have BTF, sorted.
fn modules_with_btf() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(SYSFS_BTF)
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n != "vmlinux")
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The kernel's BTF object of module `module` (by id, then name).
fn module_btf_fd(module: &str) -> io::Result<Option<OwnedFd>> {
    let mut id = 0;
    while let Some(next) = sys::btf_get_next_id(id)? {
        id = next;
        let fd = match sys::btf_get_fd_by_id(id) {
            Ok(fd) => fd,
            // Gone in between.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => return Err(e),
        };
        let (name, kernel) = sys::btf_name(&fd)?;
        if kernel && name == module {
            return Ok(Some(fd));
        }
    }
    Ok(None)
}

/// The target of `spec` (tp_btf, fentry, fexit), or `None` for types that
/// have none.
pub(crate) fn resolve(spec: &ProgramSpec) -> Result<Option<Resolved>, TargetError> {
    let Some(target) = &spec.attach_to else {
        return Ok(None);
    };
    let kind = spec.prog_type.section_name();
    let (module, name) = match target.split_once(':') {
        Some((m, n)) => (Some(m), n),
        None => (None, target.as_str()),
    };
    let (what, btf_kind, btf_name) = match spec.prog_type {
        ProgramType::TpBtf => ("tracepoint", Kind::Typedef, format!("btf_trace_{name}")),
        _ => ("function", Kind::Func, name.to_string()),
    };
    let vmlinux = vmlinux().map_err(|source| TargetError::NoKernelBtf {
        program: spec.name.clone(),
        kind,
        target: target.clone(),
        source,
    })?;
    if module.is_none()
        && let Some(id) = vmlinux.type_by_name(&btf_name, btf_kind)
    {
        return Ok(Some(Resolved {
            btf_id: id,
            module_btf: None,
        }));
    }
    let modules = match module {
        Some(m) => vec![m.to_string()],
        None => modules_with_btf(),
    };
    let module_error = |module: &str, reason: String| TargetError::Module {
        program: spec.name.clone(),
        module: module.to_string(),
        reason,
    };
    for m in &modules {
        if module.is_some() && !Path::new(SYSFS_BTF).join(m).exists() {
            break;
        }
        let btf = KernelBtf::module_over(m, vmlinux.clone())
            .map_err(|e| module_error(m, e.to_string()))?;
        let Some(id) = btf
            .type_by_name(&btf_name, btf_kind)
            .filter(|&id| id >= btf.first_own_id())
        else {
            continue;
        };
        let fd = module_btf_fd(m)
            .map_err(|e| module_error(m, format!("cannot open its BTF object: {e}")))?
            .ok_or_else(|| module_error(m, "the kernel lists no BTF object of that name".into()))?;
        return Ok(Some(Resolved {
            btf_id: id,
            module_btf: Some(fd),
        }));
    }
    Err(TargetError::NotFound {
        program: spec.name.clone(),
        kind,
        what,
        target: target.clone(),
        searched: match module {
            Some(m) if !Path::new(SYSFS_BTF).join(m).exists() => {
                format!("no module `{m}` with BTF is loaded")
            }
            Some(m) => format!("searched module `{m}`"),
            None => format!("searched vmlinux and {} loaded modules", modules.len()),
        },
    })
}
