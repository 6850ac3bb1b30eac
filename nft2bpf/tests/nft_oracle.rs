//! nft itself is the oracle for what the language accepts: every ruleset
//! of `tests/rulesets` is loaded with `nft -f` (Debian's nftables 1.0.6)
//! in a network namespace that has a device `veth0` (testbed's
//! `NftBed`), and nft
//! must accept or reject it as the file's first line says (`# nft:
//! accepts` or `# nft: rejects`). Where nft accepts what nft2bpf refuses,
//! the first line says why we refuse. A real load, not `nft -c`: the kernel's checks of jumps
//! (loops, depth) run only when a ruleset is committed.

mod common;

use common::{NftVerdict, nft_files, nft_verdict, rulesets};
use testbed::NftBed;

#[test]
fn nft_accepts_and_rejects_the_rulesets_as_they_say() {
    if !NftBed::available("loading rulesets into nft") {
        return;
    }
    // A namespace with `veth0`, the device the rulesets name.
    let bed = NftBed::new().expect("an nft test bed");
    let mut files = vec![rulesets("every_feature.nft")];
    files.extend(nft_files(&rulesets("good")));
    files.extend(nft_files(&rulesets("bad")));
    let mut wrong = Vec::new();
    for path in &files {
        match (nft_verdict(path), bed.load_file(path)) {
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
