//! `pcap "EXPR"` means what pcap2bpf's filter means for the same hook.
//! pcap2bpf compiles tcpdump filters with libpcap's meaning (its own
//! tests check it against libpcap); here each filter runs twice in the
//! kernel, through `BPF_PROG_TEST_RUN`, on testbed's `firewall_frames`
//! and on the same frames cut at several lengths (a filter that reads
//! past a cut frame does not match, wherever the read is): as pcap2bpf's
//! own program, and as a rule `pcap "EXPR" drop` of an nft2bpf program.
//! The rule must drop exactly the frames the filter matches: in XDP,
//! and in tcx on untagged frames (a test run hands a tc program a tagged
//! frame with its tag in the data, where the receive path takes it out).
//! With nft's matches in the same rule, the rule drops what both match.

mod common;

use bpf_builder::load::Loaded;
use bpf_builder::object::ProgId;
use bpf_builder::run::TestRun;
use common::{Compiled, assert_none};
use nft2bpf::compile::program::{Mode, ProgramOptions, build};
use nft2bpf::compile::{Attach, Device, Outcome};
use nft2bpf::syntax::MemLoader;
use nft2bpf::{SourceMap, compile};
use pcap2bpf::{CompileOptions, LinkType, Tables, Target};

/// The filters: every layer libpcap reads, short reads deep in the
/// packet, variable offsets, protochain, division, `geneve`'s variables.
const FILTERS: &[&str] = &[
    "tcp port 22",
    "tcp dst port 80 or udp src port 53",
    "vlan 10 and ip",
    "vlan and tcp",
    "ip6 protochain 6",
    "ip protochain 17",
    "greater 100",
    "less 60",
    "ether broadcast",
    "ether multicast",
    "ether src 02:00:00:00:00:01 or ether dst 02:00:00:00:00:02",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "icmp",
    "icmp6",
    "portrange 1000-2000",
    "net 10.0.0.0/8",
    "host 192.168.1.1 or host 10.0.0.1",
    "src net 198.51.100.0/24 and udp",
    "ip6 and dst port 53 or ip and udp dst port 53",
    "ip6 src net 2001:db8::/32",
    "ip[6:2] & 0x1fff != 0",
    "ip[0] & 0xf > 5",
    "ip[8] < 64",
    "arp",
    "not ip",
    "ip and len >= 60",
    "tcp[13] = 2 or udp[6:2] != 0 and udp[8] = 7",
    "tcp[0] % (tcp[1] & 1) = 0",
    "ip multicast",
    "ether[12:2] = 0x806 or mpls",
    "geneve and ip",
    "udp port 53 or geneve",
    "udp and not geneve",
];

/// Cut lengths: the Ethernet header, a tag, the IPv4 and IPv6 headers,
/// the transport headers, and a byte short of each.
const CUTS: &[usize] = &[
    14, 17, 18, 20, 24, 30, 33, 34, 36, 38, 42, 46, 53, 54, 58, 62, 66,
];

/// The frames, and each cut at [`CUTS`] when longer.
fn frames() -> Vec<Vec<u8>> {
    let whole = testbed::firewall_frames(7);
    let mut out = whole.clone();
    for f in &whole {
        out.extend(
            CUTS.iter()
                .filter(|&&c| c < f.len())
                .map(|&c| f[..c].to_vec()),
        );
    }
    out
}

/// Whether the frame has an outer 802.1Q or 802.1ad tag.
fn tagged(f: &[u8]) -> bool {
    matches!(f.get(12..14), Some([0x81, 0x00] | [0x88, 0xa8]))
}

/// pcap2bpf's own program for `expr`, loaded.
fn pcap_program(expr: &str, target: Target) -> (Loaded, ProgId) {
    let names = Tables::system();
    let c = pcap2bpf::compile(expr, &CompileOptions::new(LinkType::En10mb, target, &names))
        .unwrap_or_else(|e| panic!("{expr}: {e}"));
    let loaded = c.object.load().unwrap_or_else(|e| panic!("{expr}: {e}"));
    (loaded, c.program)
}

/// Whether pcap2bpf's filter matches each frame.
fn pcap_matches(expr: &str, target: Target, frames: &[Vec<u8>]) -> Vec<bool> {
    let (loaded, prog) = pcap_program(expr, target);
    let on_match = match target {
        Target::Xdp => 2,
        _ => 0,
    };
    frames
        .iter()
        .map(|f| {
            let out = loaded
                .program(prog)
                .test_run(&TestRun::new(f))
                .unwrap_or_else(|e| panic!("{expr}: test run of {} bytes: {e}", f.len()));
            out.retval == on_match
        })
        .collect()
}

/// A ruleset compiled by nft2bpf for `veth0` in the test-run mode, loaded.
fn compiled(text: &str, attach: Attach) -> Compiled {
    let device = Device::named("veth0").with_mac([2, 0, 0, 0, 0, 9]);
    Compiled::new(text, attach, &device, Mode::TestRun)
}

/// Whether each frame is dropped; `None` for one the hook never sees.
fn drops(ours: &Compiled, frames: &[Vec<u8>]) -> Vec<Option<bool>> {
    frames
        .iter()
        .map(|f| ours.decide(f).map(|d| d.outcome == Outcome::Drop))
        .collect()
}

/// The packets the first counter counted.
fn counted(ours: &Compiled) -> u64 {
    ours.counters().first().expect("a counter").1.0
}

/// A chain on `veth0`'s ingress with these rules, policy accept.
fn chain(rules: &[String]) -> String {
    common::chain(rules, "accept")
}

/// Differences between what the rules drop and `want`. The hook sees
/// every frame but tagged ones too short for the kernel to take the tag
/// off (under 20 bytes), which Linux frees before any hook.
fn diffs(
    what: &str,
    frames: &[Vec<u8>],
    got: &[Option<bool>],
    want: &[bool],
    out: &mut Vec<String>,
) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let Some(g) = g else {
            if !(tagged(&frames[i]) && frames[i].len() < 20) {
                out.push(format!(
                    "{what}: frame {i} ({} bytes) does not reach the rules",
                    frames[i].len()
                ));
            }
            continue;
        };
        if g != w {
            out.push(format!(
                "{what}: frame {i} ({} bytes): pcap2bpf matches: {w}, the rule drops: {g}\n    {}",
                frames[i].len(),
                bpf_builder::text::hex_bytes(&frames[i][..frames[i].len().min(80)])
            ));
        }
    }
}

#[test]
fn pcap_rules_drop_what_the_filter_matches_in_xdp() {
    if !testbed::bpf_privileged("running XDP programs") {
        return;
    }
    let frames = frames();
    let mut out = Vec::new();
    for expr in FILTERS {
        let want = pcap_matches(expr, Target::Xdp, &frames);
        let ours = compiled(&chain(&[format!("pcap \"{expr}\" drop")]), Attach::Xdp);
        diffs(expr, &frames, &drops(&ours, &frames), &want, &mut out);
        let matched = want.iter().filter(|&&m| m).count();
        println!("{expr}: {matched} of {} frames match", frames.len());
    }
    assert_none(out);
}

#[test]
fn pcap_rules_drop_what_the_filter_matches_in_tcx() {
    if !testbed::bpf_privileged("running tc programs") {
        return;
    }
    // A test run of a tc program takes more than an Ethernet header,
    // and an IPv4 or IPv6 frame with the whole network header.
    let (loaded, prog) = pcap_program("", Target::Tc);
    let runs = |f: &Vec<u8>| loaded.program(prog).test_run(&TestRun::new(f)).is_ok();
    let all = frames();
    let frames: Vec<Vec<u8>> = all
        .iter()
        .filter(|f| !tagged(f) && runs(f))
        .cloned()
        .collect();
    println!("{} of {} frames untagged and run", frames.len(), all.len());
    assert!(frames.len() > 1000, "only {} frames", frames.len());
    let mut out = Vec::new();
    for expr in FILTERS {
        let want = pcap_matches(expr, Target::Tc, &frames);
        let ours = compiled(
            &chain(&[format!("pcap \"{expr}\" drop")]),
            Attach::TcxIngress,
        );
        diffs(expr, &frames, &drops(&ours, &frames), &want, &mut out);
    }
    assert_none(out);
}

#[test]
fn pcap_and_nft_matches_in_one_rule_both_decide() {
    if !testbed::bpf_privileged("running XDP programs") {
        return;
    }
    let frames = frames();
    let mut out = Vec::new();
    let nft_matches = ["meta l4proto tcp", "ip saddr 10.0.0.0/8", "ether type ip6"];
    let filters = [
        "port 22",
        "tcp[tcpflags] & tcp-syn != 0",
        "greater 100",
        "vlan",
        "ip6 protochain 6",
    ];
    for m in nft_matches {
        // What nft's match drops alone.
        let alone = drops(
            &compiled(&chain(&[format!("{m} drop")]), Attach::Xdp),
            &frames,
        );
        for expr in filters {
            let pcap = pcap_matches(expr, Target::Xdp, &frames);
            let want: Vec<bool> = alone
                .iter()
                .zip(&pcap)
                .map(|(a, p)| a.unwrap_or(false) && *p)
                .collect();
            // Before and after nft's match, with a counter between.
            for rule in [
                format!("{m} pcap \"{expr}\" counter drop"),
                format!("pcap \"{expr}\" counter {m} drop"),
            ] {
                let ours = compiled(&chain(std::slice::from_ref(&rule)), Attach::Xdp);
                diffs(&rule, &frames, &drops(&ours, &frames), &want, &mut out);
                if rule.starts_with("pcap") {
                    let n = pcap
                        .iter()
                        .zip(&alone)
                        .filter(|(p, a)| **p && a.is_some())
                        .count() as u64;
                    assert_eq!(counted(&ours), n, "{rule}: the counter");
                }
            }
        }
    }
    // Two filters in one rule; a filter's rule that does not match lets
    // the next rule run.
    let (a, b) = ("tcp", "port 22 or port 80");
    let (pa, pb) = (
        pcap_matches(a, Target::Xdp, &frames),
        pcap_matches(b, Target::Xdp, &frames),
    );
    let both: Vec<bool> = pa.iter().zip(&pb).map(|(x, y)| *x && *y).collect();
    let rule = format!("pcap \"{a}\" pcap \"{b}\" drop");
    let ours = compiled(&chain(std::slice::from_ref(&rule)), Attach::Xdp);
    diffs(&rule, &frames, &drops(&ours, &frames), &both, &mut out);
    let rules = [format!("pcap \"{a}\" accept"), format!("pcap \"{b}\" drop")];
    let b_not_a: Vec<bool> = pa.iter().zip(&pb).map(|(x, y)| !*x && *y).collect();
    let ours = compiled(&chain(&rules), Attach::Xdp);
    diffs(
        "two rules",
        &frames,
        &drops(&ours, &frames),
        &b_not_a,
        &mut out,
    );
    assert_none(out);
}

#[test]
fn bad_filters_are_errors_on_the_statement() {
    // The checks find what is wrong with the filter itself.
    let text = chain(&["pcap \"tcp port 70000\" drop".to_string()]);
    let mut map = SourceMap::new();
    let file = map.add("pcap.nft", None, text.as_str(), None);
    let err = nft2bpf::check_ruleset(&mut map, file, &mut MemLoader::new())
        .map(|_| ())
        .unwrap_err();
    let rendered = err.render(&map);
    assert!(
        rendered.contains("in `pcap \"tcp port 70000\"`: "),
        "{rendered}"
    );
    assert!(
        rendered.contains("(bytes 9..14 of the filter)"),
        "{rendered}"
    );
    // `ip broadcast` needs a netmask, which a rule has not.
    let text = chain(&["pcap \"ip broadcast\" drop".to_string()]);
    let mut map = SourceMap::new();
    let file = map.add("pcap.nft", None, text.as_str(), None);
    let err = nft2bpf::check_ruleset(&mut map, file, &mut MemLoader::new())
        .map(|_| ())
        .unwrap_err();
    let rendered = err.render(&map);
    assert!(rendered.contains("netmask not known"), "{rendered}");
    assert!(
        rendered.contains("pcap \"ip broadcast\" drop\n"),
        "{rendered}"
    );
}

/// `tests/rulesets/good/extension_pcap.nft` compiles for every hook its
/// chain can run at, and the kernel loads it.
#[test]
fn the_extension_ruleset_compiles_and_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rulesets/good/extension_pcap.nft");
    let text = std::fs::read_to_string(&path).expect("the ruleset");
    let kernel = testbed::bpf_privileged("loading the compiled ruleset");
    let mut map = SourceMap::new();
    let file = map.add("extension_pcap.nft", None, text.as_str(), None);
    let ruleset = nft2bpf::check_ruleset(&mut map, file, &mut MemLoader::new())
        .unwrap_or_else(|e| panic!("{}", e.render(&map)));
    for attach in [Attach::Xdp, Attach::TcxIngress] {
        let lowered = compile::lower(&ruleset, attach, &Device::named("veth0"))
            .unwrap_or_else(|e| panic!("{}: {e}", attach.name()));
        assert_eq!(lowered.ir.verify(), Ok(()));
        assert!(
            lowered
                .ir
                .blocks
                .iter()
                .any(|b| matches!(b.short, pktmatch::ir::OnShort::To(_))),
            "the filter is in the program"
        );
        for mode in [Mode::Hook, Mode::TestRun] {
            let program = build(&lowered, &ProgramOptions::new(mode))
                .unwrap_or_else(|e| panic!("{}: {e}", attach.name()));
            if kernel {
                program
                    .object
                    .load()
                    .unwrap_or_else(|e| panic!("{}: {e}", attach.name()));
            }
        }
    }
}
