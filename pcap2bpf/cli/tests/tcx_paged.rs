//! tcx filters on real traffic whose skbs hold almost all of each frame in
//! page fragments: a packet socket sends frames longer than a page with
//! only the Ethernet header linear, and a veth hands them over as they
//! are. Every filter (libpcap's test expressions and reads deep into the
//! frame) is attached as `attach` does it and counts the frames it
//! matches; the count must be the IR's (which the differential test holds
//! to libpcap's). The tc prologue pulls what the filter can read into the
//! linear part; this is where that is checked on many filters.

mod common;

use std::time::{Duration, Instant};

use common::*;
use pcap2bpf::{CompileOptions, LinkType, Target, compile};
use pcap2bpf_cli::deploy::{self, Action, Hook, Position, Request};

/// Frames are made this long (more than a page) with [`pad`] bytes.
const FRAME_LEN: usize = 5000;

/// The padding byte at frame offset `i`.
fn pad(i: usize) -> u8 {
    (i * 29 + 3) as u8
}

/// Whole Ethernet frames of the captures (every 16th), without VLAN tags
/// (the kernel moves an outer tag into the skb's metadata before tc, and
/// the IR evaluator here has none), made [`FRAME_LEN`] bytes long.
fn frames() -> Vec<Vec<u8>> {
    whole_ethernet_packets(16)
        .into_iter()
        .filter(|f| f.len() <= FRAME_LEN)
        .filter(|f| f.len() < 14 || !matches!(f[12..14], [0x81, 0] | [0x88, 0xa8]))
        .map(|mut f| {
            f.extend((f.len()..FRAME_LEN).map(pad));
            f
        })
        .collect()
}

#[test]
fn tcx_filters_on_paged_frames_count_what_the_ir_matches() {
    if !testbed::privileged("paged tcx test") || !testbed::bpf_privileged("paged tcx test") {
        return;
    }
    let tsv = testdata_text("pcap-filter/accept.tsv");
    let tables = tables();
    let mut exprs: Vec<String> = vec![
        format!("ether[4500] = {}", pad(4500)),
        format!("ether[len - 1] = {}", pad(FRAME_LEN - 1)),
        "len > 4000".into(),
        "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420".into(),
        "ip6 protochain 6".into(),
    ];
    exprs.extend(
        tsv.lines()
            .filter_map(|l| l.strip_prefix("EN10MB\t"))
            // Direction and interface: fixed or unknown to the evaluator.
            .filter(|e| {
                !["inbound", "outbound", "ifindex", "ifname", "vlan"]
                    .iter()
                    .any(|w| e.contains(w))
            })
            .map(str::to_string),
    );
    let frames = frames();
    assert!(frames.len() > 20, "too few frames: {}", frames.len());

    let ns = testbed::Netns::new().unwrap();
    let pair = ns.veth_pair("pg0a", "pg0b").unwrap();
    for dev in ["pg0a", "pg0b"] {
        ns.ip(&["link", "set", "dev", dev, "mtu", "9000"]).unwrap();
    }
    let sock = ns.run(|| pair.a.socket()).unwrap().unwrap();
    let opts = CompileOptions::new(LinkType::En10mb, Target::Tc, &tables)
        .verdicts(0, 2)
        .netmask(Some(0xffff_ff00));
    let (mut filters, mut matches) = (0, 0);
    let mut bad = Vec::new();
    for (i, expr) in exprs.iter().enumerate() {
        let Ok(c) = compile(expr, &opts) else {
            continue;
        };
        let want = frames
            .iter()
            .filter(|f| c.ir.eval(f, f.len() as u32, &|_| None))
            .count() as u64;
        let name = format!("pg{}_{i}", std::process::id() % 1_000_000);
        let _cleanup = PinCleanup(name.clone());
        // Attached from a thread in the namespace (its own name tables:
        // a resolver is not shared between threads).
        ns.run(|| {
            let tables = common::tables();
            deploy::attach(&Request {
                iface: "pg0b",
                expr,
                hook: Hook::TcxIngress,
                action: Action::Count,
                position: Position::Last,
                share: false,
                name: &name,
                resolver: &tables,
                ipv6_ext_headers: false,
                vlan_any: false,
            })
        })
        .unwrap()
        .unwrap_or_else(|e| panic!("{expr:?}: {e}"));
        for f in &frames {
            sock.send(f).expect("sends");
        }
        // tc runs when the receiver's backlog is processed.
        let deadline = Instant::now() + Duration::from_secs(2);
        let (matched, seen) = loop {
            let s = deploy::status().unwrap();
            let a = s.iter().find(|a| a.name == name).expect("listed");
            if a.seen >= frames.len() as u64 || Instant::now() > deadline {
                break (a.matched, a.seen);
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        deploy::detach(&name).unwrap();
        assert_eq!(seen, frames.len() as u64, "{expr:?}: frames seen");
        if matched != want && bad.len() < 10 {
            bad.push(format!(
                "{expr:?}: counted {matched}, the IR matches {want}"
            ));
        }
        filters += 1;
        matches += want;
    }
    eprintln!(
        "paged tcx: {filters} filters x {} frames of {FRAME_LEN} bytes, {matches} matches",
        frames.len()
    );
    assert!(bad.is_empty(), "disagreements:\n{}", bad.join("\n"));
    assert!(filters > 250, "too few filters: {filters}");
    assert!(matches > 500, "too few matches to tell: {matches}");
}
