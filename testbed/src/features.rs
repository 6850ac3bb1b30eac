//! Kernel features some tests need and some kernels lack, probed once.

use std::sync::OnceLock;

use bpf_builder::insn::{Insn, Reg};
use bpf_builder::sys::bpf::{ProgLoadAttr, bpf_prog_type, prog_load};

/// Whether this kernel loads extension programs (`BPF_PROG_TYPE_EXT`,
/// freplace) at all. A bare extension (no target) reaches the verifier,
/// which refuses it with `EINVAL`; some hardened or sandbox kernels (this
/// project's CI machines among them) refuse EXT, LSM and fentry programs
/// with `EPERM` before the verifier runs, even to root with every
/// capability. Probed once per process; call it after the privilege check.
pub fn extensions() -> bool {
    static LOADS: OnceLock<bool> = OnceLock::new();
    *LOADS.get_or_init(|| {
        let insns = [Insn::mov64(Reg::R0, 0), Insn::exit()];
        let attr = ProgLoadAttr::new(bpf_prog_type::BPF_PROG_TYPE_EXT as u32, &insns, c"GPL");
        !matches!(prog_load(&attr), Err(e) if e.error.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()))
    })
}

/// [`extensions`], saying on stderr that `what` is skipped and why when
/// the kernel refuses them.
pub fn require_extensions(what: &str) -> bool {
    let loads = extensions();
    if !loads {
        eprintln!(
            "skipped {what}: this kernel refuses BPF_PROG_TYPE_EXT (freplace) programs with \
             EPERM before verifying them, although it loads other types"
        );
    }
    loads
}

/// Whether a test that loads extension programs runs its body here: when
/// this kernel loads them, or inside the test VM. Otherwise the test
/// `test_name` (its path in the test binary) runs in a [`crate::vm::Vm`]
/// with Debian's kernel, which has them, and this is `false`.
pub fn extensions_here_or_in_vm(test_name: &str) -> bool {
    extensions_here_or_in_vm_with(test_name, |vm| vm)
}

/// [`extensions_here_or_in_vm`] with a VM set up by `setup` (more files,
/// modules).
pub fn extensions_here_or_in_vm_with(
    test_name: &str,
    setup: impl FnOnce(crate::vm::Vm) -> crate::vm::Vm,
) -> bool {
    crate::vm::run_here_or_in_vm_with(
        "extension programs (BPF_PROG_TYPE_EXT)",
        crate::vm::in_vm() || extensions(),
        test_name,
        setup,
    )
}

/// Whether this kernel loads programs that run from a BPF trampoline
/// (fentry, fexit): a bare fentry program (no target) reaches the
/// verifier, which refuses it with `EINVAL`. Probed once per process.
///
/// The development and CI machines (a 6.18 guest kernel) refuse with
/// `EPERM` and no verifier log every program that needs a trampoline or
/// ftrace's function hooks (fentry, fexit, fmod_ret, freplace, LSM), even
/// with a bogus or zero target id, while tp_btf and iterators of the
/// same program type reach the verifier; root has every capability, no
/// seccomp filter and no BPF LSM program is loaded, and lockdown is in
/// integrity mode (which guards none of this upstream). The same kernel
/// refuses ftrace's function tracer (`current_tracer`) and reading
/// `available_filter_functions` with `EPERM`: the guest kernel does not
/// let anyone patch kernel text at run time.
pub fn fentry() -> bool {
    static LOADS: OnceLock<bool> = OnceLock::new();
    *LOADS.get_or_init(|| {
        use bpf_builder::sys::bpf::bpf_attach_type;
        let insns = [Insn::mov64(Reg::R0, 0), Insn::exit()];
        let mut attr =
            ProgLoadAttr::new(bpf_prog_type::BPF_PROG_TYPE_TRACING as u32, &insns, c"GPL");
        attr.expected_attach_type = bpf_attach_type::BPF_TRACE_FENTRY as u32;
        !matches!(prog_load(&attr), Err(e) if e.error.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error()))
    })
}

/// Whether this kernel has kprobes (the kprobe PMU or tracefs
/// `kprobe_events`; `CONFIG_KPROBES`).
pub fn kprobes() -> bool {
    std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists()
}
