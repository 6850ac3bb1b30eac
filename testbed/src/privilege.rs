//! The privilege rule for tests: fail under CI, skip elsewhere.

/// Capability bits (linux/capability.h) the harness needs.
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_NET_RAW: u32 = 13;

/// Whether this process may create namespaces, veths and packet sockets
/// (effective CAP_SYS_ADMIN, CAP_NET_ADMIN and CAP_NET_RAW).
///
/// When it may not: panics if the `CI` environment variable is set (a CI
/// run must not pass by skipping), otherwise prints why `what` is skipped
/// and returns `false`. Use it at the top of a test:
/// `if !testbed::privileged("veth test") { return; }`.
pub fn privileged(what: &str) -> bool {
    let missing = missing_capabilities();
    if missing.is_empty() {
        return true;
    }
    let reason = format!("{what} needs {}", missing.join(", "));
    if std::env::var_os("CI").is_some() {
        panic!("{reason} (CI is set, so this is a failure, not a skip)");
    }
    eprintln!("skipping: {reason}");
    false
}

/// Names of the needed capabilities that are not effective.
fn missing_capabilities() -> Vec<&'static str> {
    let effective = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    [
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
        (CAP_NET_RAW, "CAP_NET_RAW"),
    ]
    .into_iter()
    .filter(|(bit, _)| effective & (1 << bit) == 0)
    .map(|(_, name)| name)
    .collect()
}
