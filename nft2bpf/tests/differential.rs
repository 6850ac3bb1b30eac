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

use bpf_builder::load::Loaded;
use bpf_builder::run::TestRun;
use nft2bpf::check::tree::Ruleset;
use nft2bpf::compile::actions::read_counter;
use nft2bpf::compile::program::{Mode, Program, ProgramOptions, build};
use nft2bpf::compile::{Attach, CounterSlot, Device, Lowered, Outcome};
use nft2bpf::syntax::MemLoader;
use nft2bpf::{SourceMap, compile};
use testbed::nft::{Counters, DEVICE, FORWARD_DEVICE, Outcome as NftOutcome};
use testbed::{NftBed, firewall_frames};

/// A ruleset compiled for `veth0` and loaded for test runs.
struct Ours {
    ruleset: Ruleset,
    lowered: Lowered,
    program: Program,
    loaded: Loaded,
}

impl Ours {
    fn new(text: &str, attach: Attach, mac: [u8; 6]) -> Ours {
        let mut map = SourceMap::new();
        let file = map.add("diff.nft", None, text, None);
        let ruleset = nft2bpf::check_ruleset(&mut map, file, &mut MemLoader::new())
            .unwrap_or_else(|e| panic!("{}", e.render(&map)));
        let device = Device::named(DEVICE).with_mac(mac);
        let lowered =
            compile::lower(&ruleset, attach, &device).unwrap_or_else(|e| panic!("{text}: {e}"));
        let program = build(&lowered, &ProgramOptions::new(Mode::TestRun))
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        let loaded = program
            .object
            .load()
            .unwrap_or_else(|e| panic!("{}\n{e}", lowered.ir));
        program
            .initialize(&loaded, &lowered, &ruleset, &|_| None)
            .expect("the maps' first contents");
        Ours {
            ruleset,
            lowered,
            program,
            loaded,
        }
    }

    /// Each frame's fate, as the bed names it.
    fn outcomes(&self, frames: &[Vec<u8>]) -> Vec<NftOutcome> {
        let program = self.loaded.program(self.program.prog);
        frames
            .iter()
            .map(|f| {
                let out = program.test_run(&TestRun::new(f)).expect("a test run");
                if out.retval == 0 {
                    return NftOutcome::NotReached;
                }
                let d = &self.lowered.decisions[out.retval as usize];
                match &d.outcome {
                    Outcome::Accept => NftOutcome::Accept,
                    Outcome::Drop => NftOutcome::Drop,
                    Outcome::Fwd(dev) if dev == FORWARD_DEVICE => {
                        NftOutcome::Forward(FORWARD_DEVICE)
                    }
                    Outcome::Fwd(dev) if dev == DEVICE => NftOutcome::Forward(DEVICE),
                    Outcome::Fwd(_) => NftOutcome::Drop,
                    Outcome::Next(n) => panic!("the tail call to program {n} failed"),
                }
            })
            .collect()
    }

    /// Differences between our counters and nft's.
    fn counter_diffs(&self, theirs: &Counters, what: &str) -> Vec<String> {
        let mut diffs = Vec::new();
        let Some(map) = self.program.maps.counters else {
            return diffs;
        };
        let map = self.loaded.map(map);
        for (slot, c) in self.lowered.slots.counters.iter().enumerate() {
            let ours = read_counter(map, slot as u32).expect("a counter");
            let ours = (ours.packets, ours.bytes);
            let (name, nft) = match *c {
                CounterSlot::Rule { rule, .. } => {
                    let chain = self.ruleset.rules[rule].chain;
                    let chain = &self.ruleset.chains[chain];
                    let pos = chain
                        .rules
                        .iter()
                        .position(|&r| r == rule)
                        .expect("its rule");
                    (
                        format!("{} rule {pos}", chain.name),
                        theirs.rule(&chain.name, pos),
                    )
                }
                CounterSlot::Named(n) => {
                    let name = &self.ruleset.counters[n].name;
                    (format!("counter {name}"), theirs.named(name))
                }
            };
            if nft != Some(ours) {
                diffs.push(format!("{what}: {name}: nft {nft:?}, nft2bpf {ours:?}"));
            }
        }
        diffs
    }
}

/// Compares the fates of `frames` and the counters under `text`; a line
/// per difference.
fn compare(bed: &mut NftBed, text: &str, what: &str, frames: &[Vec<u8>]) -> Vec<String> {
    if let Err(e) = bed.load(text) {
        return vec![format!("{what}: nft refuses it: {e}")];
    }
    let theirs = bed.outcomes(frames).expect("nft's outcomes");
    let their_counters = bed.counters().expect("nft's counters");
    let ours = Ours::new(text, Attach::Xdp, bed.device().mac);
    let mut diffs = Vec::new();
    for (i, (a, b)) in theirs.iter().zip(ours.outcomes(frames)).enumerate() {
        if *a != b {
            diffs.push(format!(
                "{what}: frame {i} ({} bytes): nft {a:?}, nft2bpf {b:?}\n    {}",
                frames[i].len(),
                bpf_builder::text::hex_bytes(&frames[i][..frames[i].len().min(80)])
            ));
        }
    }
    diffs.extend(ours.counter_diffs(&their_counters, what));
    diffs
}

fn diff_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rulesets/diff")
}

/// A chain on `veth0`'s ingress with these rules.
fn chain(rules: &[String], policy: &str) -> String {
    let mut text = format!(
        "table netdev t {{\n\tchain c {{\n\t\ttype filter hook ingress device \"{DEVICE}\" priority 0; policy {policy};\n"
    );
    for r in rules {
        text.push_str(&format!("\t\t{r}\n"));
    }
    text.push_str("\t}\n}\n");
    text
}

fn assert_none(diffs: Vec<String>) {
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
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
            .find(|m| rs.sets[m.set].name.as_deref() == name)
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
    let ours = Ours::new(&text, Attach::Xdp, bed.device().mac);
    assert!(
        ours.lowered.more.len() >= 2,
        "{} rules in {} programs",
        rules.len(),
        1 + ours.lowered.more.len()
    );
    drop(ours);
    assert_none(compare(&mut bed, &text, "rules past one program", &frames));
}
