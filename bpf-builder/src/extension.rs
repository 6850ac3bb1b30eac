//! Extension programs (`BPF_PROG_TYPE_EXT`, libbpf's `freplace`): a
//! program loaded to replace a global function of a program already in
//! the kernel, as libxdp's dispatcher has its `prog0`..`prog9` replaced by
//! the component programs.
//!
//! The target's function is global
//! ([`Object::add_global_function`](crate::object::Object::add_global_function))
//! and named in the target's BTF; the extension is declared with
//! [`Object::set_extension`](crate::object::Object::set_extension), which
//! reads the target's BTF from the kernel to find the function. Loading
//! then uses `BPF_PROG_TYPE_EXT` with the target as `attach_prog_fd` and
//! the function's BTF id as `attach_btf_id`; the verifier checks the
//! extension in the target's context. Nothing runs until the extension is
//! linked ([`attach::extension::attach`](crate::attach::extension::attach)),
//! to the target it was loaded against or to any other program with a
//! compatible global function (Linux 5.10+).

use std::io;
use std::sync::Arc;

use crate::btf::{BtfReadError, Linkage, find_func};
use crate::handle::Program;
use crate::kernel_id::KernelProgId;
use crate::object::ObjectError;
use crate::privilege::{Needs, hint};
use crate::sys::bpf as sys;

/// Why a program cannot be an extension of a target, or a target's
/// function cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum ExtensionError {
    /// The object refuses the setting (an id of another object, ...).
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The target program has no BTF.
    #[error(
        "program `{program}` has no BTF: the kernel finds the function an extension replaces \
         through its target's BTF (a program built here has BTF when it has subprograms or \
         line info)"
    )]
    NoBtf {
        /// The target.
        program: String,
    },
    /// The target has no function of that name.
    #[error("program `{program}` has no function `{function}` in its BTF")]
    NoSuchFunction {
        /// The target.
        program: String,
        /// The function asked for.
        function: String,
    },
    /// The target's function is not global.
    #[error(
        "function `{function}` of program `{program}` is static: the kernel replaces only global \
         functions (build it with `Object::add_global_function`)"
    )]
    NotGlobal {
        /// The target.
        program: String,
        /// The function.
        function: String,
    },
    /// The extension and its target are of different kernel program
    /// types (an extension runs in its target's context).
    #[error(
        "extension `{extension}` is of kernel program type {extension_type}, its target \
         `{target}` of type {target_type}: an extension runs in its target's context, so they \
         must agree (and an extension cannot be the target of another)"
    )]
    WrongTarget {
        /// The extension.
        extension: String,
        /// Its kernel program type (`bpf_prog_type`).
        extension_type: u32,
        /// The target.
        target: String,
        /// The target's kernel program type.
        target_type: u32,
    },
    /// Reading the target's information or BTF from the kernel failed.
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
    /// The target's BTF does not parse.
    #[error("the BTF of program `{program}`: {source}")]
    BadBtf {
        /// The target.
        program: String,
        /// What is wrong.
        source: BtfReadError,
    },
}

impl Program {
    /// The BTF id of the global function `name` in this program's BTF:
    /// the `attach_btf_id` of an extension loaded against this program
    /// and the `target_btf_id` of a link that makes an extension replace
    /// it. Reads the BTF from the kernel (`BPF_BTF_GET_FD_BY_ID`, which
    /// needs `CAP_SYS_ADMIN`).
    pub fn function_btf_id(&self, name: &str) -> Result<u32, ExtensionError> {
        let program = || self.name().to_string();
        let kernel = |op, needs, source| ExtensionError::Kernel {
            program: program(),
            op,
            needs,
            source,
        };
        let info = self
            .info()
            .map_err(|e| kernel("reading the information", Needs::MAP, e))?;
        if info.btf_id == 0 {
            return Err(ExtensionError::NoBtf { program: program() });
        }
        let raw = sys::btf_get_fd_by_id(info.btf_id)
            .and_then(sys::btf_data)
            .map_err(|e| kernel("reading the BTF", Needs::BY_ID, e))?;
        let func = find_func(&raw, name).map_err(|source| ExtensionError::BadBtf {
            program: program(),
            source,
        })?;
        match func {
            None => Err(ExtensionError::NoSuchFunction {
                program: program(),
                function: name.to_string(),
            }),
            Some(f) if f.linkage != Linkage::Global => Err(ExtensionError::NotGlobal {
                program: program(),
                function: name.to_string(),
            }),
            Some(f) => Ok(f.id),
        }
    }
}

/// What makes a program an extension: the program it is loaded against
/// and the function of that program it replaces. Made by
/// [`Object::set_extension`](crate::object::Object::set_extension).
#[derive(Clone, Debug)]
pub struct Extension {
    target: Arc<Program>,
    target_id: KernelProgId,
    target_type: u32,
    function: String,
    btf_id: u32,
}

impl Extension {
    /// Finds `function` in `target`, keeping a handle of `target` (the
    /// load needs it, and it keeps the target in the kernel until then).
    pub(crate) fn resolve(target: &Program, function: &str) -> Result<Extension, ExtensionError> {
        let btf_id = target.function_btf_id(function)?;
        let info = target.info().map_err(|source| ExtensionError::Kernel {
            program: target.name().to_string(),
            op: "reading the information",
            needs: Needs::MAP,
            source,
        })?;
        let target = target
            .try_clone()
            .map_err(|source| ExtensionError::Kernel {
                program: target.name().to_string(),
                op: "duplicating the fd",
                needs: Needs::MAP,
                source,
            })?;
        Ok(Extension {
            target: Arc::new(target),
            target_id: info.id,
            target_type: info.prog_type,
            function: function.to_string(),
            btf_id,
        })
    }

    /// The program it is loaded against.
    pub fn target(&self) -> &Program {
        &self.target
    }

    /// The kernel's id of the target.
    pub fn target_id(&self) -> KernelProgId {
        self.target_id
    }

    /// The target's kernel program type (`bpf_prog_type`).
    pub fn target_type(&self) -> u32 {
        self.target_type
    }

    /// The function of the target it replaces.
    pub fn function(&self) -> &str {
        &self.function
    }

    /// The function's id in the target's BTF (`attach_btf_id`).
    pub fn btf_id(&self) -> u32 {
        self.btf_id
    }
}

/// The same target (by kernel id) and function.
impl PartialEq for Extension {
    fn eq(&self, other: &Extension) -> bool {
        (self.target_id, &self.function, self.btf_id)
            == (other.target_id, &other.function, other.btf_id)
    }
}
