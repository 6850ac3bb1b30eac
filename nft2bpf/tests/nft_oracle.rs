//! nft itself is the oracle for what the language accepts: every ruleset
//! of `tests/rulesets` is loaded with `nft -f` (Debian's nftables 1.0.6)
//! in a network namespace that has a veth pair `veth0`-`veth1`, and nft
//! must accept or reject it as the file's first line says (`# nft:
//! accepts` or `# nft: rejects`). Where nft accepts what nft2bpf refuses,
//! the first line says why we refuse. A real load, not `nft -c`: the kernel's checks of jumps
//! (loops, depth) run only when a ruleset is committed.

mod common;

use std::path::Path;
use std::process::Command;

use common::{NftVerdict, nft_files, nft_verdict, rulesets};

/// Whether `nft` runs here.
fn have_nft() -> bool {
    Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Loads `path` into the namespace's nftables (emptied first), from the
/// file's directory (for `include "./..."`); nft's output on failure.
fn nft_load(ns: &testbed::Netns, path: &Path) -> Result<(), String> {
    let exec = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", ns.name(), "nft"])
            .args(args)
            .current_dir(path.parent().unwrap())
            .output()
            .expect("ip netns exec runs")
    };
    let flushed = exec(&["flush", "ruleset"]);
    assert!(
        flushed.status.success(),
        "nft flush ruleset: {}",
        String::from_utf8_lossy(&flushed.stderr)
    );
    let out = exec(&["-f", path.file_name().unwrap().to_str().unwrap()]);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn nft_accepts_and_rejects_the_rulesets_as_they_say() {
    if !testbed::privileged("loading rulesets into nft") {
        return;
    }
    if !have_nft() {
        testbed::skip("nft (Debian's nftables) is not installed");
        return;
    }
    let ns = testbed::Netns::new().expect("a namespace");
    ns.veth_pair("veth0", "veth1").expect("a veth pair");
    let mut files = vec![rulesets("every_feature.nft")];
    files.extend(nft_files(&rulesets("good")));
    files.extend(nft_files(&rulesets("bad")));
    let mut wrong = Vec::new();
    for path in &files {
        match (nft_verdict(path), nft_load(&ns, path)) {
            (NftVerdict::Accepts, Err(e)) => {
                wrong.push(format!("{}: nft rejects it: {e}", path.display()))
            }
            (NftVerdict::Rejects, Ok(())) => {
                wrong.push(format!("{}: nft accepts it", path.display()))
            }
            _ => {}
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
