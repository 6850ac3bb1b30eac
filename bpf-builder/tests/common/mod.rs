//! Helpers shared by the integration tests that need the real kernel.

#![allow(dead_code)]

use std::ffi::CStr;
use std::os::fd::OwnedFd;

use bpf_builder::insn::{Insn, Reg};
use bpf_builder::sys::bpf::bpf_prog_type;
use bpf_builder::sys::bpf::{ProgLoadAttr, prog_load};

/// CAP_SYS_ADMIN and CAP_BPF bit numbers in the capability sets.
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// Whether this process may use bpf(2) for maps and programs. Without the
/// privilege: panics when `CI` is set (CI must run these tests), otherwise
/// prints why and returns false so the caller can skip.
pub fn require_bpf() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let ok = cap_eff & (1 << CAP_BPF) != 0 || cap_eff & (1 << CAP_SYS_ADMIN) != 0;
    if ok {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but this process lacks CAP_BPF/CAP_SYS_ADMIN: these tests must run");
    }
    eprintln!("skipping: needs CAP_BPF or CAP_SYS_ADMIN (run as root)");
    false
}

/// The license every test program uses.
pub const GPL: &CStr = c"GPL";

/// `r0 = action; exit` as an XDP program.
pub fn load_xdp_returning(action: i32, name: &str) -> OwnedFd {
    let insns = [Insn::mov64(Reg::R0, action), Insn::exit()];
    let mut attr = ProgLoadAttr::new(bpf_prog_type::BPF_PROG_TYPE_XDP as u32, &insns, GPL);
    attr.name = name;
    prog_load(&attr).expect("trivial XDP program loads")
}

/// Number of open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}
