//! nft decides: the same rulesets go into nft (testbed's `NftBed`, a
//! netdev ingress chain on `veth0` in a namespace) and into our XDP
//! program, the same frames (testbed's `firewall_frames`: tagged and
//! untagged, IPv4 with options, IPv6 with extension headers, fragments,
//! short and malformed frames) go through both, and every frame's fate
//! and every counter must be the same.
//!
//! Our programs run in `BPF_PROG_TEST_RUN` (the program returns the
//! number of its decision; counters and quotas run as at the hook).
//!
//! What nft and we cannot both run, and why:
//! - tagged frames, in tcx: `BPF_PROG_TEST_RUN` hands a tc program the
//!   frame with its tag in the data, where the kernel's receive path
//!   takes the outer tag off before tc and netfilter; tcx is compared
//!   on untagged frames here, and on tagged ones over real traffic in
//!   `tcx_traffic.rs`.

mod common;

use std::path::{Path, PathBuf};

use common::{Compiled, assert_none, chain};
use nft2bpf::compile::program::Mode;
use nft2bpf::compile::{Attach, Device, Outcome};
use nft2bpf::syntax::MemLoader;
use nft2bpf::{SourceMap, compile};
use testbed::nft::{DEVICE, FORWARD_DEVICE, Outcome as NftOutcome};
use testbed::{NftBed, firewall_frames};

/// Each frame's fate under our program, as the bed names nft's.
fn outcomes(ours: &Compiled, frames: &[Vec<u8>]) -> Vec<NftOutcome> {
    frames
        .iter()
        .map(|f| match ours.decide(f).map(|d| &d.outcome) {
            None => NftOutcome::NotReached,
            Some(Outcome::Accept) => NftOutcome::Accept,
            Some(Outcome::Drop) => NftOutcome::Drop,
            Some(Outcome::Fwd(dev)) if dev == FORWARD_DEVICE => NftOutcome::Forward(FORWARD_DEVICE),
            Some(Outcome::Fwd(dev)) if dev == DEVICE => NftOutcome::Forward(DEVICE),
            Some(Outcome::Fwd(_)) => NftOutcome::Drop,
            Some(Outcome::Next(n)) => panic!("the tail call to program {n} failed"),
        })
        .collect()
}

/// Our XDP program of `text` on the bed's device, for test runs.
fn ours(bed: &NftBed, text: &str) -> Compiled {
    let device = Device::named(DEVICE).with_mac(bed.device().mac);
    Compiled::new(text, Attach::Xdp, &device, Mode::TestRun)
}

/// Compares the fates of `frames` and the counters under `text`; a line
/// per difference.
fn compare(bed: &mut NftBed, text: &str, what: &str, frames: &[Vec<u8>]) -> Vec<String> {
    if let Err(e) = bed.load(text) {
        return vec![format!("{what}: nft refuses it: {e}")];
    }
    let theirs = bed.outcomes(frames).expect("nft's outcomes");
    let their_counters = bed.counters().expect("nft's counters");
    let ours = ours(bed, text);
    let mut diffs = Vec::new();
    for (i, (a, b)) in theirs.iter().zip(outcomes(&ours, frames)).enumerate() {
        if *a != b {
            diffs.push(format!(
                "{what}: frame {i} ({} bytes): nft {a:?}, nft2bpf {b:?}\n    {}",
                frames[i].len(),
                common::hex(&frames[i])
            ));
        }
    }
    diffs.extend(ours.counter_diffs(&their_counters, 0, what));
    diffs
}

fn diff_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rulesets/diff")
}

#[test]
fn every_match_decides_as_nft_does() {
    if !NftBed::available("comparing verdicts with nft") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frames = firewall_frames(1);
    let list = common::diff_matches();
    assert!(list.len() > 100, "only {} matches", list.len());
    let mut diffs = Vec::new();
    for m in &list {
        diffs.extend(compare(
            &mut bed,
            &chain(&[format!("{m} drop")], "accept"),
            m,
            &frames,
        ));
    }
    assert_none(diffs);
}

/// Every match of the list as a counting rule of one chain: every rule
/// sees every frame, and each counter must count what nft's counts,
/// packets and bytes.
#[test]
fn every_match_counts_as_nft_does() {
    if !NftBed::available("comparing counters with nft") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frames = firewall_frames(2);
    let rules: Vec<String> = common::diff_matches()
        .iter()
        .map(|m| format!("{m} counter"))
        .collect();
    assert_none(compare(
        &mut bed,
        &chain(&rules, "accept"),
        "counting rules",
        &frames,
    ));
}

/// The ruleset files of `tests/rulesets/diff`: chains, verdict maps,
/// several base chains, `fwd`, counters and quotas.
#[test]
fn every_ruleset_decides_as_nft_does() {
    if !NftBed::available("comparing verdicts with nft") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frames = firewall_frames(3);
    let mut files: Vec<PathBuf> = std::fs::read_dir(diff_dir())
        .expect("the rulesets")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "nft"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "only {} rulesets", files.len());
    let mut diffs = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("a ruleset");
        let name = f
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        diffs.extend(compare(&mut bed, &text, &name, &frames));
    }
    assert_none(diffs);
}

/// The sets of `sets.nft` are maps of the kind their elements need (the
/// comparisons above then test the maps' lookups against nft).
#[test]
fn named_and_large_sets_are_maps() {
    use nft2bpf::compile::sets::SetKind;
    let text = std::fs::read_to_string(diff_dir().join("sets.nft")).expect("a ruleset");
    let mut map = SourceMap::new();
    let file = map.add("sets.nft", None, text.as_str(), None);
    let rs = nft2bpf::check_ruleset(&mut map, file, &mut MemLoader::new())
        .unwrap_or_else(|e| panic!("{}", e.render(&map)));
    let l = compile::lower(&rs, Attach::Xdp, &Device::named(DEVICE)).expect("lowered");
    let kind = |name: Option<&str>| {
        let m = l
            .set_maps
            .iter()
            .find(|m| m.set.is_some_and(|s| rs.sets[s].name.as_deref() == name))
            .unwrap_or_else(|| panic!("no map for {name:?}"));
        (m.kind, m.entries.len())
    };
    assert_eq!(kind(Some("blocked")), (SetKind::Lpm, 3));
    assert_eq!(kind(Some("ssh_from")), (SetKind::Hash, 2));
    assert_eq!(kind(Some("v6_nets")), (SetKind::Lpm, 2));
    assert_eq!(kind(Some("empty")), (SetKind::Hash, 0));
    // 1000-2000 is cut into the prefixes that cover it.
    let (k, n) = kind(Some("by_port"));
    assert_eq!(k, SetKind::Lpm);
    assert_eq!(
        n,
        5 + nft2bpf::compile::sets::prefixes(1000, 2000, 16).len()
    );
    assert_eq!(kind(None), (SetKind::Hash, 6));
    let lookups =
        l.ir.blocks
            .iter()
            .filter(|b| matches!(b.cond, pktmatch::ir::Cond::Lookup { .. }))
            .count();
    assert!(lookups >= 7, "{lookups} lookups:\n{}", l.ir);
}

/// Ten thousand rules whose shapes mix (issue 13): the 144 matches of the
/// list with counters, accepts and a few drops, among addresses,
/// prefixes, port ranges, anonymous sets, verdict maps, VLAN ids and TCP
/// flag masks that the corpus's frames mostly miss. Every frame's fate
/// and every counter as nft's, through all the programs the rules take.
#[test]
fn ten_thousand_rules_of_mixed_shapes_decide_and_count_as_nft_does() {
    if !NftBed::available("comparing ten thousand rules with nft") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frames = firewall_frames(11);
    let list = common::diff_matches();
    let rules: Vec<String> = (0..10_000)
        .map(|i| {
            let m = &list[i % list.len()];
            match i % 10 {
                // The matches of the list: counted, and now and then the
                // end of some frames' walk.
                0 | 3 | 6 => format!("{m} counter"),
                9 if i % 1000 == 999 => format!("{m} counter drop"),
                9 if i % 700 == 699 => format!("{m} counter accept"),
                _ => other_shape(i),
            }
        })
        .collect();
    let text = chain(&rules, "accept");
    let ours = ours(&bed, &text);
    assert!(
        ours.lowered.more.len() >= 3,
        "{} rules in {} programs",
        rules.len(),
        1 + ours.lowered.more.len()
    );
    drop(ours);
    assert_none(compare(&mut bed, &text, "ten thousand rules", &frames));
}

/// Ten thousand rules in runs of one shape (`common::runs_of_shapes`:
/// runs of 1 to 300 rules of eight shapes, keys repeated with the other
/// verdict, rules of other shapes between), most of them folded into
/// classifiers: every frame's fate and every counter as nft's.
#[test]
fn ten_thousand_rules_in_runs_of_shapes_decide_and_count_as_nft_does() {
    if !NftBed::available("comparing classifiers with nft") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frames = firewall_frames(13);
    let rules = common::runs_of_shapes(10_000);
    let text = chain(&rules, "accept");
    let ours = ours(&bed, &text);
    let classifiers = ours
        .lowered
        .set_maps
        .iter()
        .filter(|m| m.set.is_none())
        .count();
    // More runs than a hook takes classifiers: the earliest stay rules.
    assert_eq!(classifiers, nft2bpf::compile::MAX_CLASSIFIERS);
    drop(ours);
    assert_none(compare(&mut bed, &text, "runs of shapes", &frames));
}

/// 2,500 rules in runs for tries (`common::prefix_runs`: nested IPv4 and
/// IPv6 prefixes in both orders, overlapping port ranges, exact fields
/// with them, mixed verdicts), every run long enough a classifier (with
/// more, the first runs stay rules and decide most frames), with frames
/// cut inside the addresses they test: every frame's fate and every
/// counter as nft's.
#[test]
fn runs_of_prefixes_and_ranges_decide_and_count_as_nft_does() {
    if !NftBed::available("comparing trie classifiers with nft") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frames = common::frames_with_cut_addresses(17);
    let rules = common::prefix_runs(2_500);
    let text = chain(&rules, "accept");
    let ours = ours(&bed, &text);
    let tries = ours
        .lowered
        .set_maps
        .iter()
        .filter(|m| m.set.is_none() && m.kind == nft2bpf::compile::sets::SetKind::Lpm)
        .count();
    assert!(tries >= 10, "{tries} tries");
    drop(ours);
    assert_none(compare(&mut bed, &text, "prefix runs", &frames));
}

/// Rule `i` of the shapes `ten_thousand_rules...` mixes in.
fn other_shape(i: usize) -> String {
    let (a, b) = ((i >> 8) & 0xff, i & 0xff);
    let port = 1024 + (i * 7) % 60000;
    match i % 8 {
        0 => format!("ip saddr 10.{a}.{b}.0/24 counter"),
        1 => format!("ip daddr 192.168.{a}.{b} counter accept"),
        2 => format!("udp dport {port}-{} counter", port + 10),
        3 => format!("tcp dport {{ {port}, {}, {} }} counter", port + 1, port + 2),
        4 => format!("ip6 saddr 2001:db8:{i:x}::/48 counter drop"),
        5 => format!("vlan id {} counter", 1 + i % 4000),
        6 => format!("ip saddr 172.16.{a}.{b} tcp flags & (syn | ack) == syn counter drop"),
        _ => format!("tcp dport vmap {{ {port} : accept, {} : drop }}", port + 1),
    }
}

/// More rules than one program holds: the rules go to several programs
/// chained by tail calls, and still count as nft's do.
#[test]
fn rules_past_one_program_count_as_nft_does() {
    if !NftBed::available("comparing counters with nft") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frames = firewall_frames(7);
    let list = common::diff_matches();
    // Every match of the list 25 times (3,600 counting rules for 144
    // matches), then a verdict map and a drop, past the programs' cuts.
    let mut rules: Vec<String> = (0..25)
        .flat_map(|_| list.iter().map(|m| format!("{m} counter")))
        .collect();
    rules.push("tcp dport vmap { 22 : drop, 80 : accept }".into());
    rules.push("udp dport 53 counter drop".into());
    let text = chain(&rules, "accept");
    let ours = ours(&bed, &text);
    assert!(
        ours.lowered.more.len() >= 2,
        "{} rules in {} programs",
        rules.len(),
        1 + ours.lowered.more.len()
    );
    drop(ours);
    assert_none(compare(&mut bed, &text, "rules past one program", &frames));
}
