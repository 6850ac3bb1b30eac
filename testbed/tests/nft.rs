//! The nft oracle against the real nftables (Debian's nft 1.0.6 and the
//! running kernel's netdev ingress hook). Needs root and nft; see
//! `testbed::NftBed::available` for what happens without them.
//!
//! Where an expectation needs to know what nft does with a frame, it is
//! written here from the kernel's source (net/netfilter/nf_tables_*,
//! include/net/netfilter/nf_tables_ipv{4,6}.h, ipv6_find_hdr), so a
//! disagreement shows up as a failure of either the harness or of that
//! reading, never silently.

use std::time::Instant;

use testbed::frame::{Ipv4, Tcp, ethernet, tcp_flags, udp};
use testbed::nft::Counters;
use testbed::{Error, NftBed, Outcome, Rng, firewall_frames};

const SRC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const DST: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// A base chain on veth0's ingress with `policy` and `rules`.
fn ruleset(policy: &str, rules: &str) -> String {
    format!(
        "table netdev filter {{\n\
         \tchain ingress {{\n\
         \t\ttype filter hook ingress device \"veth0\" priority 0; policy {policy};\n\
         {rules}\n\
         \t}}\n\
         }}\n"
    )
}

fn bed(what: &str) -> Option<NftBed> {
    NftBed::available(what).then(|| NftBed::new().expect("an nft bed"))
}

/// An IPv4/UDP frame from `src` with `tags` and `payload` bytes of data.
fn udp4(src: [u8; 4], tags: &[(u16, u16)], payload: usize) -> Vec<u8> {
    let (s, d) = (src.into(), [10, 0, 0, 9].into());
    let datagram = udp(
        std::net::IpAddr::V4(s),
        std::net::IpAddr::V4(d),
        1000,
        2000,
        &vec![0x5a; payload],
    );
    ethernet(
        DST,
        SRC,
        tags,
        0x0800,
        &Ipv4::new(s, d, 17).build(&datagram),
    )
}

/// How nft's netdev ingress sees a frame: `skb->protocol` and where the
/// network header starts. The receive path moves one outer 802.1Q or
/// 802.1ad tag into metadata, and frees tagged frames shorter than 20
/// bytes (`None`).
struct View {
    protocol: u16,
    nh: usize,
}

fn view(frame: &[u8]) -> Option<View> {
    let word = |at: usize| u16::from_be_bytes([frame[at], frame[at + 1]]);
    match word(12) {
        0x8100 | 0x88a8 if frame.len() < 20 => None,
        0x8100 | 0x88a8 => Some(View {
            protocol: word(16),
            nh: 18,
        }),
        protocol => Some(View { protocol, nh: 14 }),
    }
}

/// nft's transport view (`nft_set_pktinfo_ipv{4,6}_validate`): the
/// protocol, the offset in the frame that transport loads start from and
/// the fragment offset, or `None` when the network header does not
/// validate.
fn transport(frame: &[u8]) -> Option<(u8, usize, u16)> {
    let v = view(frame)?;
    let ip = &frame[v.nh..];
    let word = |at: usize| u16::from_be_bytes([ip[at], ip[at + 1]]);
    let ext = |n: u8| matches!(n, 0 | 43 | 44 | 51 | 59 | 60);
    match v.protocol {
        0x0800 => {
            if ip.len() < 20 || ip[0] >> 4 != 4 || ip[0] & 15 < 5 {
                return None;
            }
            let (len, thoff) = (usize::from(word(2)), usize::from(ip[0] & 15) * 4);
            if ip.len() < len || len < thoff {
                return None;
            }
            Some((ip[9], v.nh + thoff, word(6) & 0x1fff))
        }
        0x86dd => {
            if ip.len() < 40 || ip[0] >> 4 != 6 || usize::from(word(4)) + 40 > ip.len() {
                return None;
            }
            // ipv6_find_hdr(skb, &thoff, -1, &fragoff, NULL), thoff 0.
            let (mut next, mut at) = (ip[6], 40);
            loop {
                if !ext(next) || next == 59 {
                    return Some((next, v.nh + at, 0));
                }
                let hdr = ip.get(at..at + 2)?;
                let len = match next {
                    44 => {
                        let off = u16::from_be_bytes([*ip.get(at + 2)?, *ip.get(at + 3)?]) & !7;
                        if off != 0 {
                            // A later fragment: the protocol after the
                            // fragment header, and the offset left at 0,
                            // the start of the IPv6 header.
                            return (!ext(hdr[0]) || hdr[0] == 59).then_some((hdr[0], v.nh, off));
                        }
                        8
                    }
                    51 => (usize::from(hdr[1]) + 2) * 4,
                    _ => (usize::from(hdr[1]) + 1) * 8,
                };
                next = hdr[0];
                at += len;
            }
        }
        _ => None,
    }
}

/// Whether `tcp dport 22` matches: `meta l4proto tcp`, then 2 bytes at
/// transport offset 2. That load is 2 bytes aligned to 2, so the kernel
/// runs it on its fast path (`nft_payload_fast_eval`), which does not
/// look at the fragment offset: later fragments match on their data.
fn tcp_dport_22(frame: &[u8]) -> bool {
    match transport(frame) {
        Some((6, th, _)) => frame.get(th + 2..th + 4) == Some(&[0, 22]),
        _ => false,
    }
}

#[test]
fn without_a_ruleset_every_corpus_frame_comes_back_accepted() {
    let Some(mut bed) = bed("nft oracle") else {
        return;
    };
    let frames = firewall_frames(1);
    let start = Instant::now();
    let outcomes = bed.outcomes(&frames).unwrap();
    eprintln!("{} frames in {:?}", frames.len(), start.elapsed());
    assert_eq!(outcomes, vec![Outcome::Accept; frames.len()]);
}

#[test]
fn tcp_dport_22_accepts_exactly_the_frames_whose_port_nft_reads_as_22() {
    let Some(mut bed) = bed("nft oracle") else {
        return;
    };
    bed.load(&ruleset("drop", "tcp dport 22 accept")).unwrap();
    for seed in [1, 2, 3] {
        let frames = firewall_frames(seed);
        let start = Instant::now();
        let verdicts = bed.verdicts(&frames).unwrap();
        eprintln!(
            "seed {seed}: {} frames in {:?}",
            frames.len(),
            start.elapsed()
        );
        let expected: Vec<bool> = frames.iter().map(|f| tcp_dport_22(f)).collect();
        let wrong: Vec<String> = (0..frames.len())
            .filter(|&i| verdicts[i] != expected[i])
            .map(|i| format!("frame {i} ({}): nft says {}", hex(&frames[i]), verdicts[i]))
            .collect();
        assert!(wrong.is_empty(), "seed {seed}:\n{}", wrong.join("\n"));
        // The corpus has such frames, and frames that only look like them.
        assert!(expected.iter().filter(|&&e| e).count() >= 5);
    }
}

#[test]
fn a_counter_counts_the_frames_it_matches_and_their_length_past_the_link_header() {
    let Some(mut bed) = bed("nft oracle") else {
        return;
    };
    bed.load(&ruleset("accept", "ip saddr 10.0.0.1 counter"))
        .unwrap();
    let frames = firewall_frames(4);
    bed.verdicts(&frames).unwrap();
    // `ip saddr` is `meta protocol ip` and 4 bytes at network header + 12.
    let matching: Vec<usize> = frames
        .iter()
        .filter_map(|f| {
            let v = view(f)?;
            (v.protocol == 0x0800 && f.get(v.nh + 12..v.nh + 16) == Some(&[10, 0, 0, 1]))
                .then_some(f.len() - v.nh)
        })
        .collect();
    assert!(matching.len() >= 10);
    let counters = bed.counters().unwrap();
    assert_eq!(
        counters.rule("ingress", 0),
        Some((matching.len() as u64, matching.iter().sum::<usize>() as u64))
    );
}

#[test]
fn bytes_and_meta_length_leave_out_the_ethernet_header_and_the_outer_tag() {
    let Some(mut bed) = bed("nft oracle") else {
        return;
    };
    bed.load(&ruleset(
        "accept",
        "ether type ip counter\n\
         ether type 8021q counter\n\
         ether type 8021ad counter\n\
         meta length 128 counter",
    ))
    .unwrap();
    // 128 bytes of IPv4 (20 + 8 + 100) behind each link header.
    let untagged = udp4([10, 0, 0, 1], &[], 100);
    let tagged = udp4([10, 0, 0, 1], &[(0x8100, 10)], 100);
    let qinq = udp4([10, 0, 0, 1], &[(0x88a8, 10), (0x8100, 20)], 100);
    assert_eq!((untagged.len(), tagged.len(), qinq.len()), (142, 146, 150));
    let frames = [
        untagged.clone(),
        tagged.clone(),
        tagged,
        qinq.clone(),
        qinq.clone(),
        qinq,
    ];
    assert_eq!(bed.verdicts(&frames).unwrap(), vec![true; 6]);
    let c = bed.counters().unwrap();
    assert_eq!(c.rule("ingress", 0), Some((1, 128)));
    assert_eq!(c.rule("ingress", 1), Some((2, 2 * 128)));
    // QinQ: only the outer tag leaves the data; the inner one counts.
    assert_eq!(c.rule("ingress", 2), Some((3, 3 * 132)));
    assert_eq!(c.rule("ingress", 3), Some((3, 3 * 128)));
}

#[test]
fn vlan_matches_see_one_tag_as_nft_documents() {
    let Some(mut bed) = bed("nft oracle") else {
        return;
    };
    bed.load(&ruleset(
        "accept",
        "vlan id 10 counter\n\
         meta protocol ip counter\n\
         meta protocol 8021q counter\n\
         ip saddr 10.0.0.1 counter",
    ))
    .unwrap();
    let frames = [
        udp4([10, 0, 0, 1], &[], 10),
        udp4([10, 0, 0, 1], &[(0x8100, 10)], 10),
        udp4([10, 0, 0, 1], &[(0x88a8, 10), (0x8100, 20)], 10),
    ];
    bed.verdicts(&frames).unwrap();
    let c = bed.counters().unwrap();
    let packets = |position| c.rule("ingress", position).unwrap().0;
    // `vlan id` implies `ether type 8021q`: not an 802.1ad outer tag.
    assert_eq!(packets(0), 1);
    // `meta protocol` is what follows the outer tag.
    assert_eq!(packets(1), 2);
    assert_eq!(packets(2), 1);
    assert_eq!(packets(3), 2);
}

#[test]
fn each_frame_gets_its_own_outcome_whatever_the_pattern() {
    let Some(mut bed) = bed("nft oracle") else {
        return;
    };
    // 300 frames told apart only by their source MAC; a random third is
    // accepted, a few forwarded either way, the rest dropped.
    let mut rng = Rng::new(99);
    let mac = |i: usize| format!("02:00:00:00:{:02x}:{:02x}", i >> 8, i & 0xff);
    let mut expected = Vec::new();
    let (mut accept, mut out1, mut back) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..300 {
        let outcome = match rng.below(10) {
            0..=2 => Outcome::Accept,
            3 => Outcome::Forward("veth1"),
            4 => Outcome::Forward("veth0"),
            _ => Outcome::Drop,
        };
        match outcome {
            Outcome::Accept => accept.push(mac(i)),
            Outcome::Forward("veth1") => out1.push(mac(i)),
            Outcome::Forward(_) => back.push(mac(i)),
            _ => {}
        }
        expected.push(outcome);
    }
    bed.load(&ruleset(
        "drop",
        &format!(
            "ether saddr {{ {} }} accept\n\
             ether saddr {{ {} }} fwd to \"veth1\"\n\
             ether saddr {{ {} }} fwd to \"veth0\"",
            accept.join(", "),
            out1.join(", "),
            back.join(", ")
        ),
    ))
    .unwrap();
    let frames: Vec<Vec<u8>> = (0..300)
        .map(|i| {
            let src = [2, 0, 0, 0, (i >> 8) as u8, i as u8];
            ethernet(DST, src, &[], 0x88b6, &[0; 46])
        })
        .collect();
    assert_eq!(bed.outcomes(&frames).unwrap(), expected);
    // Again: the second exchange is told apart from the first.
    assert_eq!(bed.outcomes(&frames).unwrap(), expected);
}

#[test]
fn identical_frames_meet_a_quota_in_the_order_sent() {
    let Some(mut bed) = bed("nft oracle") else {
        return;
    };
    bed.load(
        "table netdev filter {\n\
         \tquota q { until 84 bytes }\n\
         \tchain ingress {\n\
         \t\ttype filter hook ingress device \"veth0\" priority 0; policy drop;\n\
         \t\tquota name \"q\" accept\n\
         \t}\n\
         }\n",
    )
    .unwrap();
    // 28 bytes each at this hook (42 - 14).
    let frame = udp4([10, 0, 0, 1], &[], 0);
    assert_eq!(frame.len(), 42);
    let verdicts = bed.verdicts(&vec![frame; 6]).unwrap();
    // The kernel (nft_overquota) passes while consumed bytes, this frame
    // included, are not above the quota: 28, 56 and 84 pass.
    assert_eq!(verdicts, [true, true, true, false, false, false]);
    let c = bed.counters().unwrap();
    let q = c.quota("q").unwrap();
    // The kernel lists what was used capped at the limit.
    assert_eq!((q.limit, q.used, q.over), (84, 84, false));
}

#[test]
fn tagged_frames_too_short_for_their_tag_never_reach_the_hook() {
    let Some(mut bed) = bed("nft oracle") else {
        return;
    };
    bed.load(&ruleset("accept", "counter")).unwrap();
    let base = ethernet(DST, SRC, &[(0x8100, 10)], 0x0800, &[0x45, 0, 0, 0]);
    let frames: Vec<Vec<u8>> = (16..=22).map(|n| base[..n].to_vec()).collect();
    let outcomes = bed.outcomes(&frames).unwrap();
    let reached = |n: usize| {
        if n >= 20 {
            Outcome::Accept
        } else {
            Outcome::NotReached
        }
    };
    assert_eq!(outcomes, (16..=22).map(reached).collect::<Vec<_>>());
    // nft counted only those it saw: 20, 21 and 22 bytes less 18.
    assert_eq!(
        bed.counters().unwrap().rule("ingress", 0),
        Some((3, 2 + 3 + 4))
    );
}

#[test]
fn counters_name_rules_by_chain_and_position() {
    let Some(mut bed) = bed("nft oracle") else {
        return;
    };
    bed.load(
        "table netdev filter {\n\
         \tcounter hits { }\n\
         \tchain web {\n\
         \t\tudp dport 2000 counter name \"hits\"\n\
         \t\tcounter accept\n\
         \t}\n\
         \tchain ingress {\n\
         \t\ttype filter hook ingress device \"veth0\" priority 0; policy accept;\n\
         \t\tip saddr 10.0.0.2 drop\n\
         \t\tcounter\n\
         \t\tip saddr 10.0.0.1 jump web\n\
         \t\tcounter counter\n\
         \t}\n\
         }\n",
    )
    .unwrap();
    let frames = [
        udp4([10, 0, 0, 1], &[], 10),
        udp4([10, 0, 0, 2], &[], 10),
        udp4([10, 0, 0, 3], &[], 10),
    ];
    assert_eq!(bed.verdicts(&frames).unwrap(), [true, false, true]);
    let c: Counters = bed.counters().unwrap();
    let at = |chain: &str, position| {
        c.rules
            .iter()
            .filter(|r| r.chain == chain && r.position == position)
            .map(|r| (r.packets, r.bytes))
            .collect::<Vec<_>>()
    };
    assert_eq!(at("ingress", 1), [(2, 2 * 38)]);
    assert_eq!(at("ingress", 3), [(1, 38), (1, 38)]);
    assert_eq!(at("web", 1), [(1, 38)]);
    assert_eq!(c.named("hits"), Some((1, 38)));
    // Nothing of the oracle's own table.
    assert!(c.rules.iter().all(|r| r.table == "filter"));
    assert_eq!(c.rules.len(), 4);
}

#[test]
fn rulesets_that_break_the_oracle_are_refused_and_the_bed_stays_usable() {
    let Some(mut bed) = bed("nft oracle") else {
        return;
    };
    let frame = [udp4([10, 0, 0, 1], &[], 10)];
    // nft's own error, with its position.
    match bed.load(&ruleset("drop", "tcp dport 22 acept")) {
        Err(Error::Command { stderr, .. }) => {
            assert!(
                stderr.contains("Error:") && stderr.contains(":4:"),
                "{stderr}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(bed.verdicts(&frame).unwrap(), [true]);
    let first = "table netdev early {\n\
                 \tchain c {\n\
                 \t\ttype filter hook ingress device \"veth0\" priority -2147483648; policy drop;\n\
                 \t}\n\
                 }\n";
    assert!(matches!(bed.load(first), Err(Error::Invalid(_))));
    assert!(matches!(
        bed.load(&ruleset("accept", "fwd to \"veth0p\"")),
        Err(Error::Invalid(_))
    ));
    let last = first.replace("-2147483648", "2147483647");
    assert!(matches!(bed.load(&last), Err(Error::Invalid(_))));
    assert_eq!(bed.verdicts(&frame).unwrap(), [true]);
    // One step inside is fine.
    bed.load(&first.replace("-2147483648", "-2147483647"))
        .unwrap();
    assert_eq!(bed.verdicts(&frame).unwrap(), [false]);
    bed.load(&first.replace("-2147483648", "2147483646"))
        .unwrap();
    assert_eq!(bed.verdicts(&frame).unwrap(), [false]);
    // Frames nothing can send.
    assert!(matches!(bed.verdicts(&[[0u8; 13]]), Err(Error::Invalid(_))));
    assert!(matches!(
        bed.verdicts(&[vec![0u8; 1515]]),
        Err(Error::Invalid(_))
    ));
}

#[test]
fn files_load_from_their_directory() {
    let Some(mut bed) = bed("nft oracle") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("testbed-nft-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("part.nft"), "define port = 22\n").unwrap();
    std::fs::write(
        dir.join("main.nft"),
        format!(
            "flush ruleset\ninclude \"./part.nft\"\n{}",
            ruleset("drop", "tcp dport $port accept")
        ),
    )
    .unwrap();
    let loaded = bed.load_file(&dir.join("main.nft"));
    std::fs::remove_dir_all(&dir).unwrap();
    loaded.unwrap();
    let syn = |dport| {
        let (s, d) = ([10, 0, 0, 1].into(), [10, 0, 0, 9].into());
        let seg = Tcp::new(4000, dport, tcp_flags::SYN).build(
            std::net::IpAddr::V4(s),
            std::net::IpAddr::V4(d),
            &[],
        );
        ethernet(DST, SRC, &[], 0x0800, &Ipv4::new(s, d, 6).build(&seg))
    };
    assert_eq!(bed.verdicts(&[syn(22), syn(23)]).unwrap(), [true, false]);
}

#[test]
fn dropping_the_bed_deletes_its_namespace() {
    let Some(bed) = bed("nft oracle") else {
        return;
    };
    let path = std::path::Path::new("/run/netns").join(bed.netns().name());
    assert!(path.exists());
    drop(bed);
    assert!(!path.exists());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn forwarded_frames_pass_the_egress_chains_and_the_oracles_own_frames_do_not() {
    let Some(mut bed) = bed("nft oracle") else {
        return;
    };
    bed.load(
        "table netdev filter {\n\
         \tchain ingress {\n\
         \t\ttype filter hook ingress device \"veth0\" priority 0; policy accept;\n\
         \t\tip saddr 10.0.0.2 fwd to \"veth1\"\n\
         \t\tip saddr 10.0.0.3 fwd to \"veth0\"\n\
         \t}\n\
         \tchain out0 {\n\
         \t\ttype filter hook egress device \"veth0\" priority 0; policy accept;\n\
         \t\tcounter\n\
         \t}\n\
         \tchain out1 {\n\
         \t\ttype filter hook egress device \"veth1\" priority 0; policy accept;\n\
         \t\tcounter\n\
         \t\tip saddr 10.0.0.2 drop\n\
         \t}\n\
         }\n",
    )
    .unwrap();
    let frames: Vec<Vec<u8>> = [1, 2, 3, 1, 3]
        .into_iter()
        .map(|host| udp4([10, 0, 0, host], &[], 10))
        .collect();
    let outcomes = bed.outcomes(&frames).unwrap();
    let back = Outcome::Forward("veth0");
    // veth1's egress chain drops what the ingress chain forwarded to it.
    assert_eq!(
        outcomes,
        [Outcome::Accept, Outcome::Drop, back, Outcome::Accept, back]
    );
    let c = bed.counters().unwrap();
    assert_eq!(c.rule("out0", 0), Some((2, 2 * 52)));
    assert_eq!(c.rule("out1", 0), Some((1, 52)));
}

#[test]
fn later_fragments_match_transport_loads_of_the_fast_path() {
    let Some(mut bed) = bed("nft oracle") else {
        return;
    };
    bed.load(&ruleset(
        "accept",
        "meta l4proto tcp counter\n\
         tcp dport 22 counter\n\
         @th,8,24 0x400016 counter\n\
         @th,16,16 0x2345 counter",
    ))
    .unwrap();
    // Bytes shaped like a TCP header from port 0x9c40 to 22.
    let data = [
        0x9c, 0x40, 0, 22, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 2, 0xfa, 0xf0, 0, 0, 0, 0,
    ];
    let (s, d) = ([10, 0, 0, 1].into(), [10, 0, 0, 9].into());
    let v4 = |frag: u16| {
        let mut ip = Ipv4::new(s, d, 6);
        ip.frag = frag;
        ethernet(DST, SRC, &[], 0x0800, &ip.build(&data))
    };
    let (s6, d6) = (
        "2001:db8::1".parse().unwrap(),
        "2001:db8::2".parse().unwrap(),
    );
    let v6 = |offset: u16| {
        let body = testbed::frame::ip6_fragment(6, offset, false, 7, &data);
        let ip = testbed::frame::ipv6_flow(s6, d6, 44, 64, 0, 0x12345, &body);
        ethernet(DST, SRC, &[], 0x86dd, &ip)
    };
    let mut seen = Vec::new();
    for frame in [v4(0x2000), v4(0x2000 | 100), v6(0), v6(4)] {
        let before = bed.counters().unwrap();
        bed.verdicts(&[frame]).unwrap();
        let after = bed.counters().unwrap();
        let hits: Vec<u64> = (0..4)
            .map(|p| after.rule("ingress", p).unwrap().0 - before.rule("ingress", p).unwrap().0)
            .collect();
        seen.push(hits);
    }
    assert_eq!(
        seen,
        [
            // A first IPv4 fragment: all of it.
            [1, 1, 1, 0],
            // A later one: `tcp dport` (2 bytes at offset 2, the fast
            // path) reads its data; the 3-byte load (the slow path,
            // which checks the fragment offset) does not match.
            [1, 1, 0, 0],
            // A first IPv6 fragment: as IPv4.
            [1, 1, 1, 0],
            // A later one: transport loads start at the IPv6 header
            // (ipv6_find_hdr leaves the offset at 0): bytes 2-3 are the
            // flow label's low 16 bits, 0x2345.
            [1, 0, 0, 1],
        ]
    );
}
