//! The privilege rule for tests: fail under CI, skip elsewhere.

/// Capability bits (linux/capability.h).
const CAP_NET_ADMIN: u32 = 12;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_BPF: u32 = 39;

/// Whether this process may create namespaces, veths and packet sockets
/// (effective CAP_SYS_ADMIN, CAP_NET_ADMIN and CAP_NET_RAW).
///
/// When it may not: panics if the `CI` environment variable is set (a CI
/// run must not pass by skipping), otherwise prints why `what` is skipped
/// and returns `false`. Use it at the top of a test:
/// `if !testbed::privileged("veth test") { return; }`.
pub fn privileged(what: &str) -> bool {
    let effective = effective_capabilities();
    let missing: Vec<&str> = [
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
        (CAP_NET_RAW, "CAP_NET_RAW"),
    ]
    .into_iter()
    .filter(|(bit, _)| effective & (1 << bit) == 0)
    .map(|(_, name)| name)
    .collect();
    decide(what, &missing.join(", "), missing.is_empty())
}

/// Whether this process may load BPF programs and create maps (effective
/// CAP_BPF or CAP_SYS_ADMIN), with the same rule as [`privileged`].
pub fn bpf_privileged(what: &str) -> bool {
    let effective = effective_capabilities();
    let ok = effective & (1 << CAP_BPF) != 0 || effective & (1 << CAP_SYS_ADMIN) != 0;
    decide(what, "CAP_BPF or CAP_SYS_ADMIN", ok)
}

/// Applies the rule: fine, or fail under CI, or skip with a reason.
fn decide(what: &str, needs: &str, ok: bool) -> bool {
    if !ok {
        skip(&format!("{what} needs {needs}"));
    }
    ok
}

/// A test cannot run here, for `reason`: under CI (`CI` set) that is a
/// failure (this panics); elsewhere the reason is printed and the caller
/// returns.
pub fn skip(reason: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{reason} (CI is set, so this is a failure, not a skip)");
    }
    eprintln!("skipping: {reason}");
}

/// The effective capability set of this process.
fn effective_capabilities() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0)
}
