//! Real traffic: our programs attached to `veth0` (XDP in generic mode,
//! and tcx ingress) in testbed's `NftBed`, the same frames sent as to
//! nft, the same fates. Here tcx sees tagged frames as the kernel hands
//! them over, with the outer tag in the skb's metadata.
//!
//! The bed's verdicts come from netfilter, after both hooks: with nft's
//! ruleset empty, a frame our program drops never reaches it
//! ([`Outcome::NotReached`]), one it passes is accepted, one it forwards
//! arrives at the target's peer. The bed's sentinel frames (EtherType
//! [`SENTINEL_TYPE`]) pass through our program too, so each base chain
//! we compile gets a first rule accepting them (nft never sees them).
//!
//! Every statement on real traffic: `fwd to` (frames arrive on the
//! target), `limit rate` (nft's count on the same burst), `quota` (stops
//! at its byte count), `log` (records with the prefix), `counter`.

mod common;

use std::path::Path;

use bpf_builder::attach::tcx::{self, TcxOptions};
use bpf_builder::attach::xdp::{self, XdpMode};
use bpf_builder::attach::{Link, tcx::Hook};
use bpf_builder::ringbuf::RingBuf;
use common::{Compiled, assert_none};
use nft2bpf::compile::log::LogRecord;
use nft2bpf::compile::program::Mode;
use nft2bpf::compile::{Attach, Device};
use testbed::nft::{DEVICE, Outcome, SENTINEL_TYPE};
use testbed::{NftBed, firewall_frames};

/// Our ruleset attached to the bed's device.
struct Attached {
    compiled: Compiled,
    _link: Link,
}

/// `text` with a first rule in every base chain that accepts the bed's
/// sentinels.
fn with_sentinels(text: &str) -> String {
    let accept = format!("\n\t\tether type 0x{SENTINEL_TYPE:04x} accept\n");
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(line);
        if line.contains("type filter hook") {
            out.push_str(&accept);
        } else {
            out.push('\n');
        }
    }
    out
}

fn attach(bed: &NftBed, text: &str, attach: Attach) -> Attached {
    let device = Device::named(DEVICE).with_mac(bed.device().mac);
    let compiled = Compiled::new(&with_sentinels(text), attach, &device, Mode::Hook);
    let link = bed
        .netns()
        .run(|| {
            let ifindex = |d: &str| bpf_builder::attach::Interface::named(d).resolve().ok();
            compiled.initialize(&ifindex);
            let prog = compiled.prog();
            match attach {
                Attach::Xdp => xdp::attach(DEVICE, prog, XdpMode::Generic),
                _ => tcx::attach(DEVICE, Hook::Ingress, prog, &TcxOptions::default()),
            }
        })
        .expect("in the namespace")
        .expect("attached");
    Attached {
        compiled,
        _link: link,
    }
}

/// Our fates, as the bed names nft's: what we drop never reaches
/// netfilter.
fn ours_as_nft(o: Outcome) -> Outcome {
    match o {
        Outcome::NotReached => Outcome::Drop,
        o => o,
    }
}

/// nft's fates and counters for `text`, then ours for each hook; a line
/// per difference.
fn compare(bed: &mut NftBed, text: &str, what: &str, frames: &[Vec<u8>]) -> Vec<String> {
    bed.load(text)
        .unwrap_or_else(|e| panic!("{what}: nft refuses it: {e}"));
    let theirs = bed.outcomes(frames).expect("nft's outcomes");
    let counters = bed.counters().expect("nft's counters");
    bed.load("").expect("an empty ruleset");
    let mut diffs = Vec::new();
    for hook in [Attach::Xdp, Attach::TcxIngress] {
        let ours = attach(bed, text, hook);
        bed.program_in_front(true);
        let fates = bed.outcomes(frames).expect("our outcomes");
        bed.program_in_front(false);
        for (i, (a, b)) in theirs.iter().zip(fates).enumerate() {
            // Frames the kernel frees before any hook: not ours to judge.
            if *a == Outcome::NotReached {
                continue;
            }
            if *a != ours_as_nft(b) {
                diffs.push(format!(
                    "{what} ({}): frame {i} ({} bytes): nft {a:?}, nft2bpf {b:?}\n    {}",
                    hook.name(),
                    frames[i].len(),
                    common::hex(&frames[i])
                ));
            }
        }
        // Our chains' first rule is the sentinels'.
        let what = format!("{what} ({})", hook.name());
        diffs.extend(ours.compiled.counter_diffs(&counters, 1, &what));
    }
    diffs
}

fn diff_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/rulesets/diff")
        .join(name);
    std::fs::read_to_string(path).expect("a ruleset")
}

/// Tagged and untagged frames, chains, verdict maps, fwd and counters,
/// in XDP and tcx, against nft.
#[test]
fn xdp_and_tcx_decide_and_count_as_nft_does() {
    if !NftBed::available("comparing with nft on real traffic") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frames = firewall_frames(4);
    let mut diffs = Vec::new();
    for f in [
        "chains.nft",
        "vmap.nft",
        "base_chains.nft",
        "fwd.nft",
        "counters.nft",
        "sets.nft",
    ] {
        diffs.extend(compare(&mut bed, &diff_file(f), f, &frames));
    }
    assert_none(diffs);
}

/// Runs of prefixes and ranges as tries (`common::prefix_runs`), their
/// maps filled as a hook's are, on real traffic in XDP and tcx, with
/// frames cut inside the addresses: fates and counters as nft's.
#[test]
fn trie_classifiers_decide_and_count_as_nft_does() {
    if !NftBed::available("comparing trie classifiers with nft on real traffic") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frames = common::frames_with_cut_addresses(4);
    let text = common::chain(&common::prefix_runs(2_500), "accept");
    assert_none(compare(&mut bed, &text, "prefix runs", &frames));
}

/// A UDP frame with `payload` bytes of payload.
fn udp(payload: usize) -> Vec<u8> {
    testbed::udp4_frame(
        [2, 0, 0, 0, 0, 2],
        [2, 0, 0, 0, 0, 1],
        "10.0.0.1".parse().expect("an address"),
        "10.0.0.2".parse().expect("an address"),
        1000,
        53,
        &vec![0u8; payload],
    )
    .expect("a frame")
}

/// The frame without its outer VLAN tag, as tcx sees it.
fn untagged(f: &[u8]) -> Vec<u8> {
    match f.get(12..14) {
        Some([0x81, 0x00] | [0x88, 0xa8]) if f.len() >= 18 => [&f[..12], &f[16..]].concat(),
        _ => f.to_vec(),
    }
}

/// Every match of the list as a counting rule of one chain, on real
/// traffic: tcx sees tagged frames as the kernel hands them over.
#[test]
fn every_match_counts_as_nft_does_in_xdp_and_tcx() {
    if !NftBed::available("comparing counters with nft on real traffic") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frames = firewall_frames(6);
    let rules: Vec<String> = common::diff_matches()
        .iter()
        .map(|m| format!("{m} counter"))
        .collect();
    let text = chain(&rules.join("\n\t\t"), "accept");
    assert_none(compare(&mut bed, &text, "counting rules", &frames));
}

/// A ruleset of one chain on the bed's device.
fn chain(rules: &str, policy: &str) -> String {
    format!(
        "table netdev t {{\n\tchain c {{\n\t\ttype filter hook ingress device \"{DEVICE}\" priority 0; policy {policy};\n\t\t{rules}\n\t}}\n}}\n"
    )
}

/// The same burst of frames (faster than the rate refills) through nft's
/// token bucket and ours: the same frames pass.
#[test]
fn limit_passes_what_nft_passes_of_a_burst() {
    if !NftBed::available("comparing rate limits with nft") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frame = udp(64);
    let burst: Vec<Vec<u8>> = vec![frame; 30];
    let mut diffs = Vec::new();
    for (rule, policy) in [
        ("limit rate 2/minute accept", "drop"),
        ("limit rate 1/hour burst 3 packets accept", "drop"),
        ("limit rate over 2/minute burst 10 packets drop", "accept"),
        ("limit rate 1 kbytes/hour burst 500 bytes accept", "drop"),
    ] {
        let text = chain(rule, policy);
        let accepted = |o: &Vec<Outcome>| o.iter().filter(|&&o| o == Outcome::Accept).count();
        bed.load(&text).expect("nft loads it");
        let theirs = bed.outcomes(&burst).expect("nft's outcomes");
        bed.load("").expect("an empty ruleset");
        for hook in [Attach::Xdp, Attach::TcxIngress] {
            let _ours = attach(&bed, &text, hook);
            let ours = bed.outcomes(&burst).expect("our outcomes");
            if accepted(&theirs) != accepted(&ours) {
                diffs.push(format!(
                    "{rule} ({}): nft accepts {} of {}, nft2bpf {}",
                    hook.name(),
                    accepted(&theirs),
                    burst.len(),
                    accepted(&ours)
                ));
            }
        }
        assert!(
            accepted(&theirs) > 0 && accepted(&theirs) < burst.len(),
            "{rule}: {theirs:?}"
        );
    }
    assert_none(diffs);
}

/// A quota passes frames until its bytes are used (nft's `skb->len`, 14
/// bytes less than the frame), as nft's does, frame by frame.
#[test]
fn quota_stops_at_its_byte_count() {
    if !NftBed::available("comparing quotas with nft") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frames: Vec<Vec<u8>> = (0..12).map(|i| udp(50 + 30 * i)).collect();
    let mut diffs = Vec::new();
    for rule in ["quota until 900 bytes accept", "quota over 600 bytes drop"] {
        diffs.extend(compare(&mut bed, &chain(rule, "drop"), rule, &frames));
    }
    // A named quota that two rules share, started at some bytes used.
    let shared = format!(
        "table netdev t {{\n\tquota q {{\n\t\tuntil 1500 bytes used 200 bytes\n\t}}\n\
         \tchain c {{\n\t\ttype filter hook ingress device \"{DEVICE}\" priority 0; policy drop;\n\
         \t\tudp dport 53 meta length < 150 quota name \"q\" counter accept\n\
         \t\tudp dport 53 quota name \"q\" counter accept\n\t}}\n}}\n"
    );
    diffs.extend(compare(&mut bed, &shared, "a named quota", &frames));
    assert_none(diffs);
}

/// `log prefix`: a record for each frame the rule sees, with the
/// statement's prefix and the frame's bytes.
#[test]
fn log_records_arrive_with_the_prefix() {
    if !NftBed::available("logging on real traffic") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frames = firewall_frames(5);
    let text = chain("meta l4proto udp log prefix \"udp: \" accept", "accept");
    bed.load(&text).expect("nft loads it");
    let logged_by_nft: usize = {
        // What nft's rule matches: frames it sees with L4 protocol UDP.
        let counted = chain("meta l4proto udp counter", "accept");
        bed.load(&counted).expect("nft loads it");
        bed.outcomes(&frames).expect("nft's outcomes");
        bed.counters()
            .expect("counters")
            .rule("c", 0)
            .expect("a counter")
            .0 as usize
    };
    bed.load("").expect("an empty ruleset");
    for hook in [Attach::Xdp, Attach::TcxIngress] {
        // Kept whole: dropping the link detaches the program.
        let attached = attach(&bed, &text, hook);
        let ours = &attached.compiled;
        let ring = ours.program.maps.log.expect("a log").ring;
        let mut reader = RingBuf::new(ours.loaded.map(ring)).expect("a reader");
        bed.outcomes(&frames).expect("our outcomes");
        let mut records = Vec::new();
        reader
            .drain(|bytes| records.push(LogRecord::parse(bytes).expect("a record")))
            .expect("the records");
        assert_eq!(records.len(), logged_by_nft, "{}", hook.name());
        for r in &records {
            let entry = &ours.lowered.slots.logs[r.slot as usize].2;
            assert_eq!(entry.prefix.as_deref(), Some("udp: "));
            // The frame as the hook sees it, its first bytes.
            let seen = |f: &Vec<u8>| match hook {
                Attach::Xdp => f.clone(),
                _ => untagged(f),
            };
            assert!(
                frames
                    .iter()
                    .map(seen)
                    .any(|f| f[..f.len().min(128)] == r.packet[..]),
                "{}: a record of no frame sent: {}",
                hook.name(),
                bpf_builder::text::hex_bytes(&r.packet)
            );
        }
    }
}

/// Egress: an nft egress chain and our tcx egress program on a device
/// of the bed's namespace, frames sent out of it by a packet socket
/// (which goes through both hooks): the same frames leave, and the
/// counters count the same (at egress `skb->len` is the whole frame).
#[test]
fn tcx_egress_decides_and_counts_as_nft_does() {
    if !NftBed::available("comparing egress with nft") {
        return;
    }
    let bed = NftBed::new().expect("an nft test bed");
    let pair = bed.netns().veth_pair("eg0", "eg0p").expect("a veth pair");
    let marker = testbed::Marker::new().expect("a marker");
    // Each frame carries the marker and its number after its own bytes
    // (trailing bytes every header ignores).
    let frames: Vec<Vec<u8>> = firewall_frames(8)
        .into_iter()
        .filter(|f| f.len() + 20 <= 1514)
        .enumerate()
        .map(|(i, mut f)| {
            f.extend_from_slice(marker.as_bytes());
            f.extend_from_slice(&(i as u32).to_be_bytes());
            f
        })
        .collect();
    let left = |got: Vec<Vec<u8>>| -> Vec<u32> {
        let mut n: Vec<u32> = got
            .iter()
            .map(|f| u32::from_be_bytes(f[f.len() - 4..].try_into().expect("4 bytes")))
            .collect();
        n.sort();
        n
    };
    // A drop at egress fails the send (ENOBUFS): what left is what
    // arrives at the peer.
    let send = || {
        let mut rx = pair.b.socket().expect("a socket");
        rx.set_incoming_only(true).expect("incoming only");
        rx.set_receive_buffer(frames.len() * 4096)
            .expect("a receive buffer for every frame");
        let tx = pair.a.socket().expect("a socket");
        for f in &frames {
            match tx.send(f) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(105) => {}
                Err(e) => panic!("cannot send: {e}"),
            }
        }
        let mut got = Vec::new();
        let mut buf = vec![0u8; 65536];
        while let Some(n) = rx
            .recv(&mut buf, std::time::Duration::from_millis(300))
            .expect("a receive")
        {
            if marker.is_in(&buf[..n]) {
                got.push(buf[..n].to_vec());
            }
        }
        assert_eq!(rx.drops().expect("the socket's drops"), 0, "frames lost");
        got
    };
    let mut diffs = Vec::new();
    for rules in [
        "ip protocol tcp counter drop\n\t\tmeta protocol ip6 counter\n\t\tudp dport 53 counter accept\n\t\tvlan id 10 counter drop",
        "meta length < 100 counter drop\n\t\tether type 8021q counter\n\t\tip6 nexthdr { 0, 43, 44, 60 } counter drop\n\t\ttcp flags & (syn | ack) == syn counter",
    ] {
        let text = format!(
            "table netdev t {{\n\tchain out {{\n\t\ttype filter hook egress device \"eg0\" priority 0; policy accept;\n\t\t{rules}\n\t}}\n}}\n"
        );
        bed.load(&text)
            .unwrap_or_else(|e| panic!("nft refuses it: {e}"));
        let theirs = left(send());
        let counters = bed.counters().expect("nft's counters");
        bed.load("").expect("an empty ruleset");
        let ours = Compiled::new(&text, Attach::TcxEgress, &Device::named("eg0"), Mode::Hook);
        let prog = ours.prog();
        let link = bed
            .netns()
            .run(|| tcx::attach("eg0", Hook::Egress, prog, &TcxOptions::default()))
            .expect("in the namespace")
            .expect("attached");
        let left_ours = left(send());
        drop(link);
        if theirs != left_ours {
            let only = |a: &[u32], b: &[u32]| -> Vec<u32> {
                a.iter().filter(|x| !b.contains(x)).copied().collect()
            };
            diffs.push(format!(
                "{rules}: nft passes alone {:?}, nft2bpf alone {:?}",
                only(&theirs, &left_ours),
                only(&left_ours, &theirs)
            ));
        }
        diffs.extend(ours.counter_diffs(&counters, 0, rules));
    }
    assert_none(diffs);
}

/// A UDP frame from `src` to port `dport`.
fn udp_from(src: [u8; 4], dport: u16) -> Vec<u8> {
    testbed::udp4_frame(
        [2, 0, 0, 0, 0, 2],
        [2, 0, 0, 0, 0, 1],
        std::net::Ipv4Addr::from(src),
        "10.0.0.200".parse().expect("an address"),
        1000,
        dport,
        &[0u8; 64],
    )
    .expect("a frame")
}

/// A table `t` with `sets` and a chain of `rules` on the bed's device.
fn with_sets(sets: &str, rules: &str, policy: &str) -> String {
    format!(
        "table netdev t {{\n\t{sets}\n\tchain c {{\n\t\ttype filter hook ingress device \"{DEVICE}\" priority 0; policy {policy};\n\t\t{rules}\n\t}}\n}}\n"
    )
}

/// Per-source meters (`add @set { ip saddr limit ... }`): each source of
/// one burst gets its own bucket, passing what nft's passes frame by
/// frame, while the others pass; the set's elements are looked up by a
/// later rule; the counters count the same. The rates refill far slower
/// than a burst lasts (a token every 30 s at most), so nft's timing
/// cannot change which frames pass.
#[test]
fn meters_limit_each_source_as_nft_does() {
    if !NftBed::available("comparing per-source meters with nft") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    // Four sources, eight frames each, interleaved.
    let frames: Vec<Vec<u8>> = (0..8)
        .flat_map(|_| (1..=4).map(|s| udp_from([10, 0, 0, s], 53)))
        .collect();
    let sets = "set flood { type ipv4_addr; flags dynamic; size 16; }";
    let mut diffs = Vec::new();
    for (rules, policy) in [
        (
            "udp dport 53 add @flood { ip saddr limit rate over 2/minute burst 3 packets } counter drop\n\t\tip saddr @flood counter",
            "accept",
        ),
        (
            "update @flood { ip saddr limit rate 1/hour burst 2 packets } counter accept",
            "drop",
        ),
        (
            "add @flood { ip saddr limit rate over 1 kbytes/hour burst 300 bytes } counter drop\n\t\tcounter",
            "accept",
        ),
        // Two statements, two limits: an element keeps the limit of the
        // statement that made it.
        (
            "ip saddr 10.0.0.1 add @flood { ip saddr limit rate over 2/minute burst 1 packets } counter drop\n\t\tadd @flood { ip saddr limit rate over 2/minute burst 4 packets } counter drop",
            "accept",
        ),
    ] {
        let text = with_sets(sets, rules, policy);
        diffs.extend(compare(&mut bed, &text, rules, &frames));
    }
    assert_none(diffs);
}

/// A dynamic set full to its `size`: nft adds no element and the rule
/// ends (the statement breaks); nothing is evicted. Ours: a hash map of
/// `size` entries, whose insert fails when full.
#[test]
fn a_full_dynamic_set_adds_nothing_as_in_nft() {
    if !NftBed::available("comparing a full dynamic set with nft") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let frames: Vec<Vec<u8>> = (0..3)
        .flat_map(|_| (1..=5).map(|s| udp_from([10, 0, 0, s], 53)))
        .collect();
    let sets = "set few { type ipv4_addr; flags dynamic; size 2; }";
    let mut diffs = Vec::new();
    for (rules, policy) in [
        ("add @few { ip saddr } counter accept", "drop"),
        (
            "add @few { ip saddr limit rate over 2/minute burst 1 packets } counter drop\n\t\tip saddr @few counter",
            "accept",
        ),
    ] {
        let text = with_sets(sets, rules, policy);
        diffs.extend(compare(&mut bed, &text, rules, &frames));
    }
    assert_none(diffs);
}

/// Element timeouts: the set's, an element's own, those of elements
/// added from the packet path; `update` restarts a timeout, `add` does
/// not. Steps of frames a few tenths of a second apart (at least 0.3 s
/// from any expiry, far above both clocks' grain), through nft and
/// through each of our hooks, each timed from its own load.
#[test]
fn timeouts_expire_as_in_nft() {
    if !NftBed::available("comparing element timeouts with nft") {
        return;
    }
    let mut bed = NftBed::new().expect("an nft test bed");
    let sets = "set allow { type ipv4_addr; flags timeout; timeout 1s; elements = { 10.0.0.1, 10.0.0.2 timeout 3s } }\n\
                \tset seen { type ipv4_addr; flags dynamic,timeout; timeout 1s; }";
    let rules = "udp dport 54 update @seen { ip saddr } accept\n\
                 \t\tudp dport 55 add @seen { ip saddr } accept\n\
                 \t\tip saddr @allow accept\n\
                 \t\tip saddr @seen accept";
    let text = with_sets(sets, rules, "drop");
    let f = |s: u8, port: u16| udp_from([10, 0, 0, s], port);
    // (seconds to wait first, frames)
    let steps: Vec<(f64, Vec<Vec<u8>>)> = vec![
        (
            0.0,
            vec![f(1, 53), f(2, 53), f(3, 53), f(3, 55), f(3, 53), f(4, 54)],
        ),
        (0.6, vec![f(4, 54), f(3, 55)]),
        (0.7, vec![f(1, 53), f(2, 53), f(3, 53), f(4, 53)]),
        (0.7, vec![f(4, 53)]),
        (1.3, vec![f(2, 53)]),
    ];
    let run = |bed: &mut NftBed| -> Vec<Outcome> {
        let mut out = Vec::new();
        for (wait, frames) in &steps {
            std::thread::sleep(std::time::Duration::from_secs_f64(*wait));
            out.extend(bed.outcomes(frames).expect("outcomes"));
        }
        out
    };
    bed.load(&text).expect("nft loads it");
    let theirs = run(&mut bed);
    bed.load("").expect("an empty ruleset");
    // What the steps mean, as nft decides them.
    use Outcome::{Accept as A, Drop as D};
    assert_eq!(
        theirs,
        vec![A, A, D, A, A, A, A, A, D, A, D, A, D, D],
        "nft's own fates"
    );
    let mut diffs = Vec::new();
    for hook in [Attach::Xdp, Attach::TcxIngress] {
        let _ours = attach(&bed, &text, hook);
        bed.program_in_front(true);
        let ours: Vec<Outcome> = run(&mut bed).into_iter().map(ours_as_nft).collect();
        bed.program_in_front(false);
        if ours != theirs {
            diffs.push(format!(
                "{}: nft {theirs:?}\n nft2bpf {ours:?}",
                hook.name()
            ));
        }
    }
    assert_none(diffs);
}
