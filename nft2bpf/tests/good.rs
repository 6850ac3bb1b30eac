//! Good rulesets: `tests/rulesets/every_feature.nft` and every file of
//! `tests/rulesets/good/` are accepted; the checked tree, printed
//! (`check::Ruleset`'s `Display`), is the one of the `.expected` file
//! beside each; and each prints back (`syntax::print`) to text that
//! parses to the same tree.

mod common;

use std::path::Path;

use common::{check_file, compare_expected, nft_files, rulesets};
use nft2bpf::SourceMap;
use nft2bpf::syntax::{FsLoader, parse};

/// The good ruleset files.
fn good_files() -> Vec<std::path::PathBuf> {
    let mut files = nft_files(&rulesets("good"));
    files.push(rulesets("every_feature.nft"));
    files
}

#[test]
fn good_rulesets_check_to_their_expected_trees() {
    let mut failures = Vec::new();
    for path in good_files() {
        let (map, result) = check_file(&path);
        match result {
            Ok(ruleset) => failures.extend(compare_expected(&path, &ruleset.to_string())),
            Err(e) => failures.push(format!("{}: refused\n{}", path.display(), e.render(&map))),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Parses `text` as if it were the file at `path` (for its includes).
fn print_parsed(path: &Path, text: &str) -> String {
    let mut map = SourceMap::new();
    let file = map.add(path.display().to_string(), Some(path), text, None);
    match parse(&mut map, file, &mut FsLoader) {
        Ok(ast) => ast.to_string(),
        Err(e) => panic!("{}:\n{}\n{text}", path.display(), e.render(&map)),
    }
}

#[test]
fn good_rulesets_print_back_to_the_same_tree() {
    for path in good_files() {
        let name = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let once = print_parsed(name, &text);
        let twice = print_parsed(name, &once);
        assert_eq!(once, twice, "{}", path.display());
    }
}

#[test]
fn every_feature_uses_every_feature() {
    let text = std::fs::read_to_string(rulesets("every_feature.nft")).unwrap()
        + &std::fs::read_to_string(rulesets("every_feature_sets.nft")).unwrap();
    // The language of issue 12, word by word.
    for needle in [
        "flush ruleset",
        "define ",
        "include ",
        "table netdev",
        "hook ingress",
        "hook egress",
        "policy",
        "jump ",
        "goto ",
        "return",
        "continue",
        "ether saddr",
        "ether daddr",
        "ether type",
        "vlan id",
        "vlan pcp",
        "vlan type",
        "ip saddr",
        "ip daddr",
        "ip protocol",
        "ip ttl",
        "ip length",
        "ip dscp",
        "ip6 saddr",
        "ip6 daddr",
        "ip6 nexthdr",
        "ip6 hoplimit",
        "tcp sport",
        "tcp dport",
        "tcp flags",
        "udp sport",
        "udp dport",
        "th dport",
        "icmp type",
        "icmp code",
        "icmpv6 type",
        "icmpv6 code",
        "meta l4proto",
        "meta protocol",
        "meta length",
        "meta pkttype",
        " != ",
        " < ",
        " > ",
        "-65535",
        "/24",
        " & (",
        "{ ",
        "@blocked_v4",
        "typeof ",
        "flags interval",
        " . tcp dport @",
        "vmap {",
        "vmap @",
        "counter name",
        "counter\n",
        "limit rate over",
        "burst",
        "mbytes/second",
        "quota name",
        "quota over",
        "log prefix",
        "fwd to",
        "accept",
        "drop",
        "comment \"",
    ] {
        assert!(text.contains(needle), "every_feature.nft lacks `{needle}`");
    }
}
