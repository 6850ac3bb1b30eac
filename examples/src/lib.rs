//! Example programs built with `bpf-builder`, and an nftables ruleset
//! compiled by `nft2bpf` (`nft/`). The binaries in `examples/` load and
//! run them; `src/bin` has tracing tools in the manner of bcc's
//! ([`tools`]); `tests/` asserts what they do on the real kernel.

pub mod loop_globals;
pub mod net_progs;
pub mod nft_firewall;
pub mod tools;
pub mod xdp_counter;

/// Whether this process may load BPF programs: the project's privilege
/// rule (fail under `CI`, skip with a reason elsewhere).
pub fn require_bpf(test: &str) -> bool {
    testbed::bpf_privileged(test)
}
