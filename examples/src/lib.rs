//! Example programs built with `bpf-builder`. The binaries in `bin/` load
//! and run them; `tests/` asserts what they do on the real kernel.

pub mod loop_globals;
pub mod net_progs;
pub mod xdp_counter;

/// Whether this process may load BPF programs. Tests use it: without the
/// privilege they fail under `CI` and are skipped (with a reason) elsewhere.
pub fn require_bpf(test: &str) -> bool {
    // CAP_BPF is bit 39 and CAP_SYS_ADMIN bit 21 of the effective set.
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("CapEff:"))
                .and_then(|l| u64::from_str_radix(l[7..].trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 39) != 0 || caps & (1 << 21) != 0);
    if root {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{test}: needs CAP_BPF (or CAP_SYS_ADMIN), and CI is set");
    }
    eprintln!("skipping {test}: needs CAP_BPF (or CAP_SYS_ADMIN)");
    false
}
