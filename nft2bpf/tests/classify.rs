//! Classifiers against the plain chain: the same ruleset lowered with
//! runs of one shape folded into map lookups and without
//! ([`LowerOptions::classifiers`]), both loaded by the kernel, give
//! every frame the same fate and every counter the same value, on the
//! corpus's frames and every Ethernet packet of `testdata/pcaps`.

mod common;

use std::path::Path;

use common::{
    Compiled, assert_none, chain, hex, ports, prefix_runs, runs_of_shapes, v4, v4_prefix, v6,
};
use nft2bpf::compile::program::Mode;
use nft2bpf::compile::sets::SetKind;
use nft2bpf::compile::{Attach, Device, LowerOptions, MIN_RUN};
use testbed::firewall_frames;

/// The frames: the corpus's for a few seeds, and the whole Ethernet
/// packets of the captures that a test run takes (14 to 1,514 bytes).
fn frames() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = (1..=3).flat_map(firewall_frames).collect();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/pcaps");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    for path in files {
        let reader = pcapfile::PacketReader::open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if reader.link() != 1 {
            continue;
        }
        out.extend(
            reader
                .flatten()
                .filter(|p| p.data.len() == p.wire_len as usize)
                .map(|p| p.data)
                .filter(|d| (14..=1514).contains(&d.len())),
        );
    }
    out
}

/// `text` lowered with and without classifiers for test runs.
fn both(text: &str, attach: Attach) -> (Compiled, Compiled) {
    let device = Device::named("veth0").with_mac([2, 0, 0, 0, 0, 1]);
    let build = |classifiers| {
        Compiled::lowered_with(
            text,
            attach,
            &device,
            Mode::TestRun,
            LowerOptions { classifiers },
        )
    };
    (build(true), build(false))
}

/// The number of classifier maps (maps of no set).
fn classifiers(c: &Compiled) -> usize {
    c.lowered
        .set_maps
        .iter()
        .filter(|m| m.set.is_none())
        .count()
}

/// Every counter's value, by what it counts, sorted.
fn counters(c: &Compiled) -> Vec<String> {
    let mut v: Vec<String> = c
        .counters()
        .into_iter()
        .map(|(what, n)| format!("{what:?} {n:?}"))
        .collect();
    v.sort();
    v
}

/// Runs `frames` through both programs of `text`: a line per frame whose
/// fate differs, and per counter that differs.
fn compare(text: &str, attach: Attach, frames: &[Vec<u8>], min_classifiers: usize) -> Vec<String> {
    let (classified, plain) = both(text, attach);
    assert!(
        classifiers(&classified) >= min_classifiers,
        "{} classifiers, wanted {min_classifiers}",
        classifiers(&classified)
    );
    assert_eq!(classifiers(&plain), 0);
    let mut diffs = Vec::new();
    let mut decided = 0;
    // The frames a test run takes: a tc program's refuses IP headers cut
    // short (the kernel checks them before the program runs), whatever
    // the program: asked of an empty chain's, which counts nothing.
    let device = Device::named("veth0").with_mac([2, 0, 0, 0, 0, 1]);
    let empty = Compiled::new(
        &chain::<&str>(&[], "accept"),
        attach,
        &device,
        Mode::TestRun,
    );
    let runs = |f: &&Vec<u8>| {
        let run = bpf_builder::run::TestRun::new(f);
        empty.prog().test_run(&run).is_ok()
    };
    for (i, f) in frames.iter().filter(runs).enumerate() {
        let a = classified.decide(f).map(|d| d.outcome.clone());
        let b = plain.decide(f).map(|d| d.outcome.clone());
        if a != b {
            diffs.push(format!(
                "frame {i} ({} bytes): classifier {a:?}, chain {b:?}\n    {}",
                f.len(),
                hex(f)
            ));
        }
        decided += usize::from(b == Some(nft2bpf::compile::Outcome::Drop));
    }
    // The rulesets drop some frames: the test would pass on a chain that
    // decides nothing otherwise.
    assert!(decided > 0, "no frame dropped");
    let (a, b) = (counters(&classified), counters(&plain));
    assert!(
        b.iter().any(|c| !c.ends_with("(0, 0)")),
        "no counter counted"
    );
    for (x, y) in a.iter().zip(&b) {
        if x != y {
            diffs.push(format!("counter: classifier {x}, chain {y}"));
        }
    }
    if a.len() != b.len() {
        diffs.push(format!("{} counters, chain {}", a.len(), b.len()));
    }
    diffs
}

/// Runs of eight shapes, up to 300 rules long, among rules of other
/// shapes: addresses and ports the frames carry, keys repeated with the
/// other verdict (the first must win), counters and rules without,
/// IPv4 and IPv6 fields, shifted and masked fields (`ip dscp`, `vlan
/// id`), short frames; at XDP and at tcx ingress.
#[test]
fn runs_of_one_shape_decide_and_count_as_the_chain_does() {
    let text = chain(&runs_of_shapes(3000), "accept");
    at_xdp_and_tcx(&text);
}

/// [`compare`] of `text` on [`frames`] at XDP (at least 10 classifiers)
/// and at tcx ingress (at least 3): the same rules (the plain chain
/// takes several programs), untagged frames (a test run hands tc the
/// tag in the data).
fn at_xdp_and_tcx(text: &str) {
    let frames = frames();
    assert_none(compare(text, Attach::Xdp, &frames, 10));
    let untagged: Vec<Vec<u8>> = frames
        .into_iter()
        .filter(|f| !matches!(f.get(12..14), Some([0x81, 0x00] | [0x88, 0xa8])))
        .collect();
    assert_none(compare(text, Attach::TcxIngress, &untagged, 3));
}

/// Runs for tries (`common::prefix_runs`: nested IPv4 and IPv6
/// prefixes, a shorter one first and a longer one first, overlapping
/// port ranges, exact fields with them, mixed verdicts) decide and
/// count as the chain does: the first matching rule, not the longest
/// prefix; at XDP and at tcx ingress.
#[test]
fn runs_of_prefixes_and_ranges_decide_and_count_as_the_chain_does() {
    at_xdp_and_tcx(&chain(&prefix_runs(3000), "accept"));
}

/// In a trie the longest prefix holding a key is found, but the first
/// rule decides: a shorter prefix before a longer one wins for the
/// longer one's addresses; after it, only for the others. The rules'
/// verdicts alternate, so a classifier that took the longest match's
/// own rule would give the other fate.
#[test]
fn a_shorter_prefix_first_decides_for_the_longer_ones() {
    let lens = [8, 16, 24, 32, 28, 20, 12, 8];
    let mut rules = Vec::new();
    for a in v4() {
        for (i, &l) in lens.iter().enumerate() {
            let v = ["accept", "drop"][i % 2];
            rules.push(format!("ip saddr {} counter {v}", v4_prefix(&a, l)));
        }
        // The same the other way round: the longest first.
        for (i, &l) in lens.iter().rev().enumerate() {
            let v = ["drop", "accept"][i % 2];
            rules.push(format!("ip daddr {} counter {v}", v4_prefix(&a, l)));
        }
    }
    let (saddr, daddr): (Vec<String>, Vec<String>) =
        rules.into_iter().partition(|r| r.starts_with("ip saddr"));
    let text = chain(&[saddr, daddr].concat(), "accept");
    let frames = frames();
    assert_none(compare(&text, Attach::Xdp, &frames, 2));
}

/// A run of `vlan id` rules folds: the checker puts `meta iiftype ether`
/// before `vlan` fields, a value the compiler knows, which leaves the
/// key. It decides and counts as the chain does on the corpus's tagged
/// frames. The same ids behind another device type (`meta iiftype
/// loopback`), before them, make a run whose rules never match, in the
/// classifier as in the chain.
#[test]
fn a_run_of_vlan_ids_folds_and_decides_as_the_chain_does() {
    let frames = frames();
    // The ids of the corpus's 802.1Q frames, and three no frame carries.
    let mut ids: Vec<u16> = frames
        .iter()
        .filter(|f| f.get(12..14) == Some(&[0x81, 0x00]))
        .filter_map(|f| Some(u16::from_be_bytes(f.get(14..16)?.try_into().ok()?) & 0xfff))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.extend([4001, 4002, 4003]);
    assert!(ids.len() > MIN_RUN, "{ids:?}");
    let verdict = |i: usize| ["drop", "accept"][i % 2];
    // First, so that a classifier that let them match would drop what
    // the chain's later rules decide.
    let mut rules: Vec<String> = ids
        .iter()
        .map(|id| format!("meta iiftype loopback vlan id {id} counter drop"))
        .collect();
    rules.extend(
        ids.iter()
            .enumerate()
            .map(|(i, id)| format!("vlan id {id} counter {}", verdict(i))),
    );
    let text = chain(&rules, "accept");
    assert_none(compare(&text, Attach::Xdp, &frames, 2));
}

/// A long run of exact rules followed by a few prefix rules stays a
/// hash lookup (a trie costs about twice as much a packet), the prefix
/// rules left as rules; a trie takes the run when the exact rules are
/// too few to be a run, or when it holds [`MIN_RUN`] rules more. Each
/// decides and counts as the chain does.
#[test]
fn a_trie_takes_a_run_only_for_enough_more_rules_than_a_hash() {
    let addrs = v4();
    let verdict = |i: usize| ["drop", "accept"][i % 2];
    let exact = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| {
                let (a, p) = (&addrs[i % addrs.len()], [22, 80, 443][i / addrs.len() % 3]);
                format!("ip saddr {a} tcp dport {p} counter {}", verdict(i))
            })
            .collect()
    };
    let prefixes = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| {
                let net = v4_prefix(&addrs[i % addrs.len()], [24, 16, 8][i % 3]);
                format!("ip saddr {net} tcp dport 80 counter {}", verdict(i + 1))
            })
            .collect()
    };
    let between = vec!["udp sport 7 counter drop".to_string()];
    let rules = [
        exact(40),
        prefixes(2), // a hash of 40, then 2 rules
        between.clone(),
        exact(5),
        prefixes(4), // one trie of 9
        between,
        exact(10),
        prefixes(MIN_RUN), // one trie of 18
    ]
    .concat();
    let text = chain(&rules, "accept");
    let (classified, _) = both(&text, Attach::Xdp);
    let mut runs: Vec<usize> = classified
        .lowered
        .classifiers
        .iter()
        .map(Vec::len)
        .collect();
    runs.sort_unstable();
    assert_eq!(runs, [9, 18, 40]);
    // The run of 40 is the one hash (a trie of byte prefixes has a
    // second map, for frames cut inside the address).
    let hashes: Vec<usize> = classified
        .lowered
        .set_maps
        .iter()
        .filter(|m| m.set.is_none() && m.kind == SetKind::Hash)
        .map(|m| m.entries.len())
        .collect();
    assert_eq!(hashes, [40]);
    assert_none(compare(&text, Attach::Xdp, &frames(), 3));
}

/// nft reads only a prefix's bytes when it ends on a byte boundary, so
/// `ip saddr 10.0.0.0/8` matches a frame that ends inside the address,
/// after its first byte: frames cut after each byte of an IPv4 source
/// and an IPv6 destination address meet runs of their prefixes (and
/// prefixes not of whole bytes, which read the whole field) as they
/// meet the chain.
#[test]
fn frames_cut_inside_the_field_match_prefixes_as_nft_reads_them() {
    let a4 = "10.1.2.3";
    let a6 = "2001:db8:1:2:3:4:5:6";
    let lens4 = [24, 8, 20, 16, 32, 12, 8, 28];
    let lens6 = [64, 16, 48, 128, 32, 40, 8, 56, 44];
    let verdict = |i: usize| ["drop", "accept"][i % 2];
    let mut rules: Vec<String> = lens4
        .iter()
        .enumerate()
        .map(|(i, &l)| format!("ip saddr {} counter {}", v4_prefix(a4, l), verdict(i)))
        .collect();
    rules.extend(lens6.iter().enumerate().map(|(i, &l)| {
        let p = common::v6_prefix(a6, l);
        format!("ip6 daddr {p} counter {}", verdict(i))
    }));
    let text = chain(&rules, "accept");
    let frames = common::cut_address_frames(
        &[a4, "10.1.3.3", "10.200.2.3", "11.1.2.3"],
        &[a6, "2001:db8:1:2:ff::1", "2001:db8:1:ff::1", "2001:db9::1"],
    );
    assert_none(compare(&text, Attach::Xdp, &frames, 2));
}

/// A run in a regular chain jumped to from two places (lowered once for
/// each: the second copy counts into the same slots), in the first of
/// two base chains (an accept goes on to the second, whose policy
/// drops), and runs exactly [`MIN_RUN`] long and one shorter.
#[test]
fn runs_in_jumped_chains_and_several_base_chains() {
    let mut sub = Vec::new();
    for (i, a) in v4().iter().enumerate() {
        let v = if i.is_multiple_of(2) {
            "accept"
        } else {
            "drop"
        };
        sub.push(format!("ip saddr {a} counter {v}"));
    }
    let exact: Vec<String> = ports()[..MIN_RUN]
        .iter()
        .map(|p| format!("udp sport {p} counter drop"))
        .collect();
    let short: Vec<String> = ports()[..MIN_RUN - 1]
        .iter()
        .map(|p| format!("udp dport {p} counter drop"))
        .collect();
    let v6: Vec<String> = v6()
        .iter()
        .enumerate()
        .map(|(i, a)| format!("ip6 daddr {a} counter {}", ["accept", "drop"][i % 2]))
        .collect();
    let text = format!(
        "table netdev t {{
	chain sub {{
		{}
	}}
	chain first {{
		type filter hook ingress device \"veth0\" priority 0; policy accept;
		ip protocol tcp jump sub
		ip protocol icmp counter
		ip protocol udp jump sub
		{}
		{}
	}}
	chain second {{
		type filter hook ingress device \"veth0\" priority 1; policy drop;
		{}
		ip version 4 counter accept
	}}
}}
",
        sub.join("\n\t\t"),
        exact.join("\n\t\t"),
        short.join("\n\t\t"),
        v6.join("\n\t\t"),
    );
    let frames = frames();
    assert_none(compare(&text, Attach::Xdp, &frames, 4));
}

/// 100,000 rules of one shape fit one program, load, and decide as a
/// chain of the same rules would, the chain being what nft runs: the
/// first rule whose address and port are the frame's (the test reads
/// them from the frames it builds).
#[test]
fn a_hundred_thousand_rules_of_one_shape_load_and_decide() {
    let rule = |i: usize| {
        let addr = format!("10.{}.{}.{}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
        let port = 1 + i % 1000;
        let v = if i.is_multiple_of(2) {
            "drop"
        } else {
            "accept"
        };
        (addr, port, v)
    };
    let rules: Vec<String> = (0..100_000)
        .map(|i| {
            let (a, p, v) = rule(i);
            format!("ip saddr {a} tcp dport {p} counter {v}")
        })
        .collect();
    let text = chain(&rules, "drop");
    let device = Device::named("veth0");
    let c = Compiled::new(&text, Attach::Xdp, &device, Mode::TestRun);
    assert!(c.lowered.more.is_empty(), "one program");
    assert_eq!(classifiers(&c), 1);
    // Frames from rules 0, 1, 99,999 and a few between; one whose port is
    // another rule's; one with no rule.
    let tcp = |addr: &str, port: u16| {
        let ip = testbed::frame::Ipv4::new(addr.parse().unwrap(), "192.0.2.1".parse().unwrap(), 6);
        let mut seg = vec![0u8; 20];
        seg[0..2].copy_from_slice(&4000u16.to_be_bytes());
        seg[2..4].copy_from_slice(&port.to_be_bytes());
        seg[12] = 0x50;
        testbed::frame::ethernet_frame(
            [2, 0, 0, 0, 0, 2],
            [2, 0, 0, 0, 0, 1],
            0x0800,
            &ip.build(&seg),
        )
    };
    let mut expect = Vec::new();
    for i in [0usize, 1, 2, 777, 65_536, 99_998, 99_999] {
        let (a, p, v) = rule(i);
        expect.push((tcp(&a, p as u16), v));
    }
    let (a, p, _) = rule(5);
    expect.push((tcp(&a, p as u16 + 1), "drop"));
    expect.push((tcp("10.200.0.0", 80), "drop"));
    for (f, v) in &expect {
        let d = c.decide(f).expect("a decision");
        assert_eq!(d.outcome.to_string(), *v, "{}", hex(f));
    }
    // The rules' counters: the frames of rules 0 and 99,999 counted once.
    let counted: Vec<(common::Counted, (u64, u64))> =
        c.counters().into_iter().filter(|(_, n)| n.0 != 0).collect();
    assert_eq!(counted.len(), 7, "{counted:?}");
    assert!(counted.iter().all(|(_, n)| n.0 == 1));
    assert!(counted.contains(&(
        common::Counted::Rule {
            chain: "c".into(),
            position: 99_999
        },
        (1, expect[6].0.len() as u64 - 14)
    )));
}
