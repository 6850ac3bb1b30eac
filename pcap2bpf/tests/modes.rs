//! The two opt-in modes (`CompileOptions::ipv6_ext_headers` and
//! `CompileOptions::vlan_any`) against libpcap, through equivalent
//! expressions libpcap compiles, on every packet: the Ethernet packets
//! of the shared captures and of our samples, packets built here (IPv6
//! extension-header chains, VLAN tags, one and two), and all of those
//! cut short. Our verdicts come from the IR's evaluator, the interpreter
//! and the kernel (`BPF_PROG_TEST_RUN` of the XDP program).
//!
//! The equivalences (also in the README's pcap2bpf section):
//! - `vlan_any`: a layer-3/4 primitive `X` means libpcap's
//!   `X or (vlan and (X or (vlan and X)))`: in libpcap's language each
//!   `vlan` shifts everything after it, so this is X untagged, or one tag
//!   and X after it, or two tags and X after them. (The textual
//!   `X or (vlan and X) or (vlan and vlan and X)` is not that in libpcap:
//!   its third term would look for a third tag, the first `vlan`'s shift
//!   still in force.)
//! - `ipv6_ext_headers`, protocol tests: `tcp` means libpcap's
//!   `ip proto 6 or ip6 protochain 6` (`udp`, `sctp` likewise;
//!   `icmp6` is `ip6 protochain 58`), on packets whose walk ends within
//!   `IPV6_WALK_HEADERS` headers; on longer chains the mode does not
//!   match.
//! - `ipv6_ext_headers`, port tests: libpcap cannot say "the port where
//!   protochain stopped", but its relations can compute that offset with
//!   arithmetic, one walked header at a time: `ip6_walk_expr` writes the
//!   walk unrolled to 3 headers (the text doubles with each level), and
//!   `tcp port 80` means `(ip6 protochain 6 and WALK) or (ip and tcp
//!   port 80)` on packets whose walk ends within 3 headers. For longer
//!   chains the reference is `reference_walk` below, a transcription of
//!   libpcap's `gen_protochain` loop, bounded like the mode.

mod common;

use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;

use bpf_builder::interp::{Interp, SkbCtx};
use bpf_builder::run::TestRun;
use common::*;
use pcap2bpf::engine::{Engine, EngineError, RunOptions, Runner};
use pcap2bpf::{CompileOptions, IPV6_WALK_HEADERS, LinkType, Target, compile};
use pcapfile::{self as capture, Packet};
use testbed::frame;

const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const MAC_A: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [0x02, 0, 0, 0, 0, 2];

/// The headers the walk skips.
const WALKED: [u8; 5] = [0, 60, 43, 44, 51];

fn packet(data: Vec<u8>) -> Packet {
    let wire_len = data.len() as u32;
    Packet {
        ts_sec: 0,
        ts_nsec: 0,
        data,
        wire_len,
    }
}

/// The layer-4 part for protocol `last`.
fn layer4(last: u8) -> Vec<u8> {
    let (s, d) = (IpAddr::V6(SRC6), IpAddr::V6(DST6));
    match last {
        6 => frame::Tcp::new(1234, 80, 0x02).build(s, d, b"hello"),
        17 => frame::udp(s, d, 80, 5353, b"hello"),
        58 => frame::icmp6(SRC6, DST6, 128, 0, &[0, 1, 0, 1]),
        132 => frame::sctp(80, 80, 7, 1, &[0; 16]),
        _ => vec![0x50, 0x50, 0x00, 0x50, 1, 2, 3, 4],
    }
}

/// An IPv6 packet in Ethernet with extension headers `chain` (their
/// types, in order), then `last`.
fn chain_packet(chain: &[u8], last: u8, tags: &[(u16, u16)]) -> Vec<u8> {
    let mut rest = layer4(last);
    let mut next = last;
    for (i, h) in chain.iter().enumerate().rev() {
        rest = match h {
            0 | 60 => frame::ip6_options(next, &[1, 4 * (i as u8 % 2), 0, 0, 0, 0], &rest),
            43 => frame::ip6_routing(next, 0, 1, &[DST6], &rest),
            44 => frame::ip6_fragment(next, 0, false, 77, &rest),
            _ => frame::ah(next, 0x100, 1, &rest),
        };
        next = *h;
    }
    frame::ethernet(
        MAC_B,
        MAC_A,
        tags,
        0x86dd,
        &frame::ipv6(SRC6, DST6, next, 64, &rest),
    )
}

/// Every chain of walked headers up to `depth` long.
fn chains(depth: usize) -> Vec<Vec<u8>> {
    let mut all = vec![vec![]];
    let mut level = vec![vec![]];
    for _ in 0..depth {
        let mut next = Vec::new();
        for c in &level {
            for h in WALKED {
                let mut c2: Vec<u8> = c.clone();
                c2.push(h);
                next.push(c2);
            }
        }
        all.extend(next.iter().cloned());
        level = next;
    }
    all
}

/// Packets built here: IPv6 chains (to depth 3, every order; longer
/// ones of options headers past the bound), untagged and tagged, whole
/// and the short ones cut at every length.
fn built_packets() -> Vec<Packet> {
    let mut out = Vec::new();
    let tags: [&[(u16, u16)]; 3] = [&[], &[(0x8100, 5)], &[(0x88a8, 10), (0x8100, 20)]];
    for (ti, t) in tags.iter().enumerate() {
        for c in chains(3) {
            for last in [6, 17, 58, 132, 59] {
                // Fewer of the tagged ones: the tag only shifts them.
                if ti > 0 && (c.len() > 2 || last == 132) {
                    continue;
                }
                let p = chain_packet(&c, last, t);
                if c.len() <= 1 || (c.len() == 2 && last == 6 && ti == 0) {
                    for n in 0..p.len() {
                        let mut q = packet(p[..n].to_vec());
                        q.wire_len = p.len() as u32;
                        out.push(q);
                    }
                }
                out.push(packet(p));
            }
        }
        for n in 4..=IPV6_WALK_HEADERS as usize + 2 {
            let c: Vec<u8> = (0..n).map(|i| if i == 0 { 0 } else { 60 }).collect();
            for last in [6, 17] {
                out.push(packet(chain_packet(&c, last, t)));
            }
        }
    }
    // Tags of each kind libpcap's `vlan` knows, over the captures' kinds
    // of packets (see `tagged`), and a tag with nothing after it.
    out.push(packet(frame::ethernet(
        MAC_B,
        MAC_A,
        &[(0x8100, 1)],
        0x0800,
        &[],
    )));
    out
}

/// `p`, an Ethernet frame, with `tags` inserted after the addresses.
fn tagged(p: &Packet, tags: &[(u16, u16)]) -> Option<Packet> {
    if p.data.len() < 14 {
        return None;
    }
    let mut d = p.data[..12].to_vec();
    for (tpid, tci) in tags {
        d.extend_from_slice(&tpid.to_be_bytes());
        d.extend_from_slice(&tci.to_be_bytes());
    }
    d.extend_from_slice(&p.data[12..]);
    let extra = 4 * tags.len() as u32;
    Some(Packet {
        ts_sec: 0,
        ts_nsec: 0,
        data: d,
        wire_len: p.wire_len + extra,
    })
}

/// The Ethernet packets of the captures, whole as captured, plus every
/// `step`-th tagged once and twice (and the tagged ones cut short).
fn capture_packets(step: usize) -> Vec<Packet> {
    let mut out = Vec::new();
    for path in capture_files() {
        let cap = capture::read(&path).unwrap_or_else(|e| panic!("{e}"));
        if link_of(cap.link).map(|l| l.0) != Some(LinkType::En10mb) {
            continue;
        }
        for (i, p) in cap.packets.iter().enumerate() {
            out.push(p.clone());
            if i % step != 0 {
                continue;
            }
            for tags in [
                &[(0x8100u16, 7u16)][..],
                &[(0x9100, 3), (0x8100, 4)],
                &[(0x88a8, 3), (0x8100, 4)],
            ] {
                if let Some(t) = tagged(p, tags) {
                    if i % (4 * step) == 0 {
                        for n in (0..t.data.len().min(80)).step_by(3) {
                            out.push(Packet {
                                data: t.data[..n].to_vec(),
                                ..t.clone()
                            });
                        }
                    }
                    out.push(t);
                }
            }
        }
    }
    out
}

/// libpcap's verdicts on `packets` (Ethernet) for each of `exprs`.
fn libpcap(tag: &str, packets: &[Packet], exprs: &[String]) -> Option<Vec<Vec<bool>>> {
    let (bin, etc) = build_helper("verdicts")?;
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("modes-{tag}.pcap"));
    let out = std::fs::File::create(&file).expect("temp file");
    capture::write_pcap(out, 1, 262_144, packets).expect("writes");
    let file_arg = file.to_string_lossy().to_string();
    let out = run_with_etc(
        &bin,
        &etc,
        &[&file_arg, "255.255.255.0"],
        exprs.join("\n") + "\n",
    )?;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), exprs.len(), "one answer per expression");
    Some(
        lines
            .iter()
            .zip(exprs)
            .map(|(l, e)| {
                let v = l
                    .strip_prefix('V')
                    .unwrap_or_else(|| panic!("libpcap refuses {e:?}: {l}"));
                v.bytes().map(|b| b == b'1').collect()
            })
            .collect(),
    )
}

/// Our verdicts for `expr` in the modes, by engine: `None` where that
/// engine does not run the packet.
type Ours = Vec<(&'static str, Vec<Option<bool>>)>;

const TC_ACT_OK: i32 = 0;
const TC_ACT_SHOT: i32 = 2;

/// `p` with its outer VLAN tag moved into the socket buffer's metadata,
/// as the kernel hands a tagged frame to tc and to packet sockets when
/// the device strips tags; `None` when it has none.
fn outer_tag_in_meta(p: &[u8]) -> Option<(Vec<u8>, SkbCtx)> {
    let tpid = u16::from_be_bytes([*p.get(12)?, *p.get(13)?]);
    if ![0x8100, 0x88a8, 0x9100].contains(&tpid) || p.len() < 18 {
        return None;
    }
    let tci = u16::from_be_bytes([p[14], p[15]]);
    let mut d = p[..12].to_vec();
    d.extend_from_slice(&p[16..]);
    let skb = SkbCtx {
        data_offset: 0,
        wire_len: d.len() as u32,
        vlan_tci: tci,
        vlan_proto: tpid,
        ..SkbCtx::default()
    };
    Some((d, skb))
}

/// Our verdicts on `packets`: the IR's evaluator, the interpreter, the
/// compiled engine and the kernel (the XDP test-run program, as `run` uses it) on every
/// packet; the tc program in the kernel and the socket filter in the
/// interpreter on whole frames, and the socket filter again with the
/// outer tag in metadata.
fn ours(expr: &str, v6: bool, vlan: bool, packets: &[Packet]) -> Ours {
    let tables = tables();
    let with_modes = |target| {
        CompileOptions::new(LinkType::En10mb, target, &tables)
            .netmask(Some(0xffff_ff00))
            .ipv6_ext_headers(v6)
            .vlan_any(vlan)
    };
    let compiled = |opts: &CompileOptions<'_>| {
        compile(expr, opts).unwrap_or_else(|e| panic!("{expr:?}: {}", e.render(expr)))
    };
    let c = compiled(&with_modes(Target::Xdp).verdicts(2, 1).test_run_meta(true));
    let ir = packets
        .iter()
        .map(|p| Some(c.ir.eval(&p.data, p.wire_len, &|_| None)))
        .collect();
    let runner = |engine| {
        Runner::new(
            expr,
            &RunOptions::new(LinkType::En10mb, &tables)
                .engine(engine)
                .netmask(Some(0xffff_ff00))
                .ipv6_ext_headers(v6)
                .vlan_any(vlan),
        )
    };
    let all = |engine, who| {
        runner(engine)
            .expect("compiles")
            .matches_all(&frames(packets))
            .unwrap_or_else(|e| panic!("{who} fails on {expr:?}: {e}"))
            .into_iter()
            .map(Some)
            .collect()
    };
    let mut out = vec![
        ("the IR", ir),
        ("the interpreter", all(Engine::Interp, "the interpreter")),
        (
            "the compiled engine",
            all(Engine::Compiled, "the compiled engine"),
        ),
    ];
    match runner(Engine::Kernel) {
        Ok(mut k) => out.push((
            "the kernel",
            k.matches_all(&frames(packets))
                .unwrap_or_else(|e| panic!("{expr:?} in the kernel: {e}"))
                .into_iter()
                .map(Some)
                .collect(),
        )),
        Err(EngineError::Run(pcap2bpf::engine::RunError::NoKernel(e))) => {
            testbed::skip(&format!("no kernel runs of {expr:?}: {e}"));
        }
        Err(e) => panic!("cannot load {expr:?}: {e}"),
    }
    let whole = |p: &Packet| p.data.len() == p.wire_len as usize && p.data.len() >= 14;
    // tc, in the kernel.
    let tc = compiled(&with_modes(Target::Tc).verdicts(TC_ACT_OK, TC_ACT_SHOT));
    if let Ok(loaded) = tc.object.load() {
        let prog = loaded.program(tc.program);
        let v = packets
            .iter()
            .map(|p| {
                // Frames the skb test run refuses (as in the differential
                // test: some short or odd frames) are left to the others.
                let o = prog.test_run(&TestRun::new(&p.data)).ok();
                o.filter(|_| whole(p) && p.data.len() <= 3000)
                    .map(|o| o.retval == TC_ACT_OK as u32)
            })
            .collect();
        out.push(("tc (kernel)", v));
    }
    // Socket filters, in the interpreter: the frame as it is, and with
    // its outer tag in metadata.
    let sf = compiled(&with_modes(Target::SocketFilter));
    let mut si = Interp::from_object(&sf.object, sf.program).expect("the interpreter takes it");
    let mut as_is = Vec::new();
    let mut meta = Vec::new();
    for p in packets {
        if !whole(p) {
            as_is.push(None);
            meta.push(None);
            continue;
        }
        let skb = SkbCtx {
            data_offset: 0,
            wire_len: p.wire_len,
            ..SkbCtx::default()
        };
        let run = |si: &mut Interp, d: &[u8], skb: &SkbCtx| {
            si.run_socket_filter(d, skb)
                .unwrap_or_else(|e| panic!("{expr:?}: socket filter: {e}"))
                .retval
                != 0
        };
        as_is.push(Some(run(&mut si, &p.data, &skb)));
        // Only where the mode makes the filter look through tags: else a
        // tag in metadata is invisible, as to libpcap on a live socket.
        meta.push(
            outer_tag_in_meta(&p.data)
                .filter(|_| vlan)
                .map(|(d, skb)| run(&mut si, &d, &skb)),
        );
    }
    out.push(("the socket filter", as_is));
    out.push(("the socket filter, tag in metadata", meta));
    // `protochain` needs the tag in the frame where it may be in metadata
    // (tc, socket filters): there the VLAN mode leaves it as it is.
    if vlan && expr.contains("protochain") {
        out.truncate(3);
    }
    out
}

/// Compares ours with `want` where `applies`; returns the differences.
fn diff(
    what: &str,
    ours: &Ours,
    want: &[bool],
    packets: &[Packet],
    applies: &dyn Fn(&Packet) -> bool,
) -> Vec<String> {
    let mut bad = Vec::new();
    for (i, p) in packets.iter().enumerate() {
        if !applies(p) {
            continue;
        }
        for (who, v) in ours {
            let Some(g) = v[i] else { continue };
            if g != want[i] && bad.len() < 3 {
                bad.push(format!(
                    "{what}: {who} says {g}, the reference {} on {} of {} bytes: {:02x?}",
                    want[i],
                    p.data.len(),
                    p.wire_len,
                    p.data
                ));
            }
        }
    }
    bad
}

#[test]
fn vlan_any_is_x_or_vlan_and_x_or_vlan_and_x() {
    let mut packets = built_packets();
    packets.extend(capture_packets(7));
    let exprs = [
        "tcp port 80",
        "udp",
        "ip",
        "ip6",
        "arp",
        "host 10.0.0.1",
        "net 192.168.0.0/16",
        "ip6 host 2001:db8::2",
        "port 53",
        "tcp portrange 20-90",
        "icmp6",
        "icmp",
        "ip proto 17",
        "ip6 protochain 6",
        "ip[9] = 6",
        "tcp[13] & 2 != 0",
        "ip multicast",
        "ip6 multicast",
        "ip broadcast",
        "stp",
        "not tcp",
        "ether host 02:00:00:00:00:01",
        "vlan 5 and udp",
        "less 100",
    ];
    // Primitives the mode leaves alone are their own equivalent; after
    // `vlan` nothing changes either.
    let unchanged = ["ether host 02:00:00:00:00:01", "vlan 5 and udp", "less 100"];
    let oracle: Vec<String> = exprs
        .iter()
        .map(|e| {
            if unchanged.contains(e) {
                e.to_string()
            } else if let Some(x) = e.strip_prefix("not ") {
                format!("not ({x} or (vlan and ({x} or (vlan and {x}))))")
            } else {
                format!("{e} or (vlan and ({e} or (vlan and {e})))")
            }
        })
        .collect();
    let Some(want) = libpcap("vlan", &packets, &oracle) else {
        return testbed::skip("cannot build or run the libpcap verdict helper");
    };
    let mut bad = Vec::new();
    for ((e, o), w) in exprs.iter().zip(&oracle).zip(&want) {
        let mut got = ours(e, false, true, &packets);
        if unchanged.contains(e) {
            // Link-layer tests see the frame as it is: `less` counts the
            // tag, `ether host` finds its bytes wherever the tag is.
            got.retain(|(who, _)| !who.contains("metadata"));
        }
        bad.extend(diff(&format!("{e:?} ~ {o:?}"), &got, w, &packets, &|_| {
            true
        }));
        // Both modes together: on packets without IPv6 extension headers
        // the walk changes nothing.
        let mut both = ours(e, true, true, &packets);
        if unchanged.contains(e) {
            both.retain(|(who, _)| !who.contains("metadata"));
        }
        bad.extend(diff(
            &format!("{e:?} (both modes) ~ {o:?}"),
            &both,
            w,
            &packets,
            &|p| !has_ext_headers(p),
        ));
    }
    eprintln!(
        "vlan_any: {} packets, {} expressions",
        packets.len(),
        exprs.len()
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Whether `p` is IPv6 with an extension header (or AH) after no, one
/// or two tags.
fn has_ext_headers(p: &Packet) -> bool {
    [0, 4, 8].iter().any(|s| {
        p.data.get(12 + s..14 + s) == Some(&[0x86, 0xdd][..])
            && p.data.get(20 + s).is_some_and(|a| WALKED.contains(a))
    })
}

/// libpcap's `gen_protochain` loop on the IPv6 packet in Ethernet frame
/// `p` (untagged), bounded like the mode: `None` when the packet is not
/// IPv6; else `Some(Err(()))` when a load is past the end (libpcap
/// rejects), `Some(Ok(None))` when the walk needs more than the bound or
/// stops elsewhere, `Some(Ok(Some((proto, offset))))` where it stops at
/// a header it does not walk past, with its offset from the IPv6 header.
#[allow(clippy::type_complexity)]
fn reference_walk(p: &[u8], proto: u32) -> Option<Result<Option<(u32, usize)>, ()>> {
    if p.len() < 14 || p[12..14] != [0x86, 0xdd] {
        return None;
    }
    let nl = 14;
    let byte = |at: usize| p.get(at).map(|b| u32::from(*b)).ok_or(());
    let walk = || -> Result<Option<(u32, usize)>, ()> {
        let mut a = byte(nl + 6)?;
        let mut x: u32 = 40;
        for _ in 0..IPV6_WALK_HEADERS {
            if a == proto {
                return Ok(Some((a, x as usize)));
            }
            if !WALKED.contains(&(a as u8)) {
                return Ok(Some((a, x as usize)));
            }
            let next = byte(nl + x as usize)?;
            let len = byte(nl + x as usize + 1)?;
            x = if a == 51 {
                (len + 2) * 4
            } else {
                x + (len + 1) * 8
            };
            a = next;
        }
        if a == proto || !WALKED.contains(&(a as u8)) {
            return Ok(Some((a, x as usize)));
        }
        Ok(None)
    };
    Some(walk())
}

/// How many walked headers the walk to `proto` meets on `p` (untagged
/// IPv6; 0 for anything else), counting the one it could not read past
/// on a packet cut short; `None` for a walk that goes round in circles
/// (libpcap's loop never ends on those).
fn walk_len(p: &Packet, proto: u32) -> Option<usize> {
    let d = &p.data;
    if d.len() < 21 || d[12..14] != [0x86, 0xdd] {
        return Some(0);
    }
    let (mut a, mut x, mut n) = (d[20], 40usize, 0);
    while u32::from(a) != proto && WALKED.contains(&a) {
        n += 1;
        if n > 64 {
            return None;
        }
        let (Some(&next), Some(&len)) = (d.get(14 + x), d.get(15 + x)) else {
            return Some(n);
        };
        x = if a == 51 {
            (usize::from(len) + 2) * 4
        } else {
            x + (usize::from(len) + 1) * 8
        };
        a = next;
    }
    Some(n)
}

/// libpcap text for the walk to protocol `proto` unrolled to `depth`
/// headers, with `at_end(X)` (X: the text of the offset from the IPv6
/// header) where it stops; each step reads the next-header and length
/// bytes together, as `protochain` does.
fn ip6_walk_expr(proto: u32, depth: usize, at_end: &dyn Fn(&str) -> String) -> String {
    fn level(
        d: usize,
        depth: usize,
        proto: u32,
        a: &str,
        x: &str,
        at_end: &dyn Fn(&str) -> String,
    ) -> String {
        let found = format!("({a} = {proto} and {})", at_end(x));
        if d == depth {
            return found;
        }
        let next_a = format!("(ip6[{x}:2] >> 8)");
        let ext_x = format!("({x} + (ip6[{x} + 1] + 1) * 8)");
        let ah_x = format!("((ip6[{x} + 1] + 2) * 4)");
        let ext = level(d + 1, depth, proto, &next_a, &ext_x, at_end);
        let ah = level(d + 1, depth, proto, &next_a, &ah_x, at_end);
        format!(
            "({found} or (({a} = 0 or {a} = 60 or {a} = 43 or {a} = 44) and {ext}) or ({a} = 51 and {ah}))"
        )
    }
    level(0, depth, proto, "ip6[6]", "40", at_end)
}

/// A port test on a packet at the transport header's offset; `None`
/// where it reads past the end.
type PortTest = dyn Fn(&[u8], usize) -> Option<bool>;

#[test]
fn ipv6_ext_headers_walk_like_protochain() {
    let mut packets = built_packets();
    packets.extend(capture_packets(13));
    // Protocol tests: `ip6 protochain`, where the chain is within bounds.
    let protos = [
        ("tcp", "ip proto 6 or ip6 protochain 6", 6),
        ("udp", "ip proto 17 or ip6 protochain 17", 17),
        ("sctp", "ip proto 132 or ip6 protochain 132", 132),
        ("icmp6", "ip6 protochain 58", 58),
        ("ip6 proto 44", "ip6 protochain 44", 44),
        ("not udp", "not (ip proto 17 or ip6 protochain 17)", 17),
    ];
    // Port tests: the walk written out in libpcap's arithmetic.
    let port = |p: u32| move |x: &str| format!("(ip6[{x}:2] = {p} or ip6[{x} + 2:2] = {p})");
    let dst = |p: u32| move |x: &str| format!("ip6[{x} + 2:2] = {p}");
    // 20 <= port <= 90, one load a port (as ours), in fewer bytes.
    let range = |x: &str| format!("(ip6[{x}:2] - 20 <= 70 or ip6[{x} + 2:2] - 20 <= 70)");
    let walk3 = |proto, f: &dyn Fn(&str) -> String| ip6_walk_expr(proto, 3, f);
    let ports: Vec<(&str, String, u32)> = vec![
        (
            "tcp port 80",
            format!(
                "(ip6 protochain 6 and {}) or (ip and tcp port 80)",
                walk3(6, &port(80))
            ),
            6,
        ),
        (
            "udp dst port 5353",
            format!(
                "(ip6 protochain 17 and {}) or (ip and udp dst port 5353)",
                walk3(17, &dst(5353))
            ),
            17,
        ),
        (
            "tcp portrange 20-90",
            format!(
                "(ip6 protochain 6 and {}) or (ip and tcp portrange 20-90)",
                walk3(6, &range)
            ),
            6,
        ),
        (
            "sctp port 80",
            format!(
                "(ip6 protochain 132 and {}) or (ip and sctp port 80)",
                walk3(132, &port(80))
            ),
            132,
        ),
    ];
    let mut exprs: Vec<String> = protos.iter().map(|(_, o, _)| o.to_string()).collect();
    exprs.extend(ports.iter().map(|(_, o, _)| o.clone()));
    // The plain expressions too, for packets that are not IPv6.
    exprs.extend(ports.iter().map(|(e, _, _)| e.to_string()));
    for e in &exprs {
        assert!(
            e.len() < 8000,
            "the helper reads lines of 8 KiB: {}",
            e.len()
        );
    }
    let Some(want) = libpcap("v6", &packets, &exprs) else {
        return testbed::skip("cannot build or run the libpcap verdict helper");
    };
    let mut bad = Vec::new();
    let mut compared = 0usize;
    for (i, (e, o, proto)) in protos.iter().enumerate() {
        let got = ours(e, true, false, &packets);
        // Within the bound (and a walk libpcap ends), protochain's verdict.
        let within =
            |p: &Packet| walk_len(p, *proto).is_some_and(|n| n <= IPV6_WALK_HEADERS as usize);
        compared += packets.iter().filter(|p| within(p)).count();
        bad.extend(diff(
            &format!("{e:?} ~ {o:?}"),
            &got,
            &want[i],
            &packets,
            &within,
        ));
        // Past it, no match (`not udp`: a match).
        let past = |p: &Packet| !within(p) && walk_len(p, *proto).is_some();
        let none: Vec<bool> = vec![e.starts_with("not "); packets.len()];
        bad.extend(diff(
            &format!("{e:?} past the bound"),
            &got,
            &none,
            &packets,
            &past,
        ));
    }
    for (j, (e, o, proto)) in ports.iter().enumerate() {
        let got = ours(e, true, false, &packets);
        let oracle = &want[protos.len() + j];
        let plain = &want[protos.len() + ports.len() + j];
        // libpcap's unrolled walk where the chain has at most 3 headers.
        let short = |p: &Packet| walk_len(p, *proto).is_some_and(|n| n <= 3);
        bad.extend(diff(
            &format!("{e:?} ~ {o:?}"),
            &got,
            oracle,
            &packets,
            &short,
        ));
        // Everywhere: the reference walk on IPv6, libpcap's plain
        // expression elsewhere.
        let port_test: Box<PortTest> = match *e {
            "tcp port 80" | "sctp port 80" => Box::new(|d: &[u8], t: usize| {
                let w = |o: usize| Some(u16::from_be_bytes([*d.get(o)?, *d.get(o + 1)?]));
                Some(w(t)? == 80 || w(t + 2)? == 80)
            }),
            "udp dst port 5353" => Box::new(|d: &[u8], t: usize| {
                Some(u16::from_be_bytes([*d.get(t + 2)?, *d.get(t + 3)?]) == 5353)
            }),
            _ => Box::new(|d: &[u8], t: usize| {
                let w = |o: usize| Some(u16::from_be_bytes([*d.get(o)?, *d.get(o + 1)?]));
                let s = w(t)?;
                if (20..=90).contains(&s) {
                    return Some(true);
                }
                let d2 = w(t + 2)?;
                Some((20..=90).contains(&d2))
            }),
        };
        let reference: Vec<bool> = packets
            .iter()
            .enumerate()
            .map(|(i, p)| match reference_walk(&p.data, *proto) {
                None => plain[i],
                Some(Err(())) | Some(Ok(None)) => false,
                Some(Ok(Some((a, x)))) => a == *proto && port_test(&p.data, 14 + x) == Some(true),
            })
            .collect();
        let ends = |p: &Packet| walk_len(p, *proto).is_some();
        compared += packets.len();
        bad.extend(diff(
            &format!("{e:?} ~ the reference walk"),
            &got,
            &reference,
            &packets,
            &ends,
        ));
    }
    eprintln!(
        "ipv6_ext_headers: {} packets, {} verdicts compared",
        packets.len(),
        compared
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// `p` without the tags libpcap's `vlan` knows (at most two).
fn untagged(p: &Packet) -> Packet {
    let mut q = p.clone();
    for _ in 0..2 {
        let tag = q.data.get(12..14).map(|t| u16::from_be_bytes([t[0], t[1]]));
        if !matches!(tag, Some(0x8100 | 0x88a8 | 0x9100)) || q.data.len() < 18 {
            break;
        }
        q.data.drain(12..16);
        q.wire_len -= 4;
    }
    q
}

/// Both modes at once: `tcp port 80` is the IPv6 walk's equivalent
/// (written out to 2 headers: the text of three levels, three times, is
/// longer than the helper's lines) looked for behind no, one or two
/// tags, on packets whose walk (under their tags) ends within 2 headers.
#[test]
fn both_modes_at_once() {
    let mut packets = built_packets();
    packets.extend(capture_packets(7));
    let port = |x: &str| format!("(ip6[{x}:2] = 80 or ip6[{x} + 2:2] = 80)");
    let t = format!(
        "((ip6 protochain 6 and {}) or (ip and tcp port 80))",
        ip6_walk_expr(6, 2, &port)
    );
    let both = format!("{t} or (vlan and ({t} or (vlan and {t})))");
    let u = "((ip proto 17 or ip6 protochain 17))";
    let udp = format!("{u} or (vlan and ({u} or (vlan and {u})))");
    let exprs = vec![both.clone(), udp.clone()];
    assert!(both.len() < 8000, "the helper reads lines of 8 KiB");
    let Some(want) = libpcap("both", &packets, &exprs) else {
        return testbed::skip("cannot build or run the libpcap verdict helper");
    };
    let mut bad = Vec::new();
    for ((e, limit), w) in [("tcp port 80", 2), ("udp", IPV6_WALK_HEADERS as usize)]
        .iter()
        .zip(&want)
    {
        let got = ours(e, true, true, &packets);
        let proto = if *e == "udp" { 17 } else { 6 };
        let within = |p: &Packet| walk_len(&untagged(p), proto).is_some_and(|n| n <= *limit);
        bad.extend(diff(
            &format!("{e:?} (both modes)"),
            &got,
            w,
            &packets,
            &within,
        ));
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn modes_are_off_by_default() {
    let tables = tables();
    for e in ["tcp port 80", "udp", "icmp6", "host 10.0.0.1", "port 53"] {
        let base = CompileOptions::new(LinkType::En10mb, Target::Xdp, &tables);
        let a = compile(e, &base).expect("compiles");
        let b = compile(e, &base.ipv6_ext_headers(false).vlan_any(false)).expect("compiles");
        assert_eq!(format!("{:?}", a.ir), format!("{:?}", b.ir), "{e}");
        let on = compile(e, &base.ipv6_ext_headers(true).vlan_any(true)).expect("compiles");
        assert_ne!(format!("{:?}", a.ir), format!("{:?}", on.ir), "{e}");
    }
}

#[test]
fn the_modes_find_what_libpcap_leaves() {
    let tables = tables();
    let behind_options = chain_packet(&[0], 6, &[]);
    let behind_routing_and_fragment = chain_packet(&[43, 44], 6, &[]);
    let tagged_once = chain_packet(&[], 6, &[(0x8100, 5)]);
    let tagged_twice = chain_packet(&[], 6, &[(0x88a8, 10), (0x8100, 20)]);
    let tagged_with_options = chain_packet(&[60], 6, &[(0x8100, 5)]);
    let cases: [(&[u8], bool, bool); 5] = [
        (&behind_options, true, false),
        (&behind_routing_and_fragment, true, false),
        (&tagged_once, false, true),
        (&tagged_twice, false, true),
        (&tagged_with_options, true, true),
    ];
    for (i, (p, v6, vlan)) in cases.iter().enumerate() {
        let base = CompileOptions::new(LinkType::En10mb, Target::Xdp, &tables).test_run_meta(true);
        let len = p.len() as u32;
        let plain = compile("tcp port 80", &base).expect("compiles");
        assert!(
            !plain.ir.eval(p, len, &|_| None),
            "case {i}: libpcap's meaning"
        );
        let on =
            compile("tcp port 80", &base.ipv6_ext_headers(*v6).vlan_any(*vlan)).expect("compiles");
        assert!(on.ir.eval(p, len, &|_| None), "case {i}: in the mode");
        // The destination port only: the walk ended at the right offset.
        let other = compile(
            "tcp dst port 81",
            &base.ipv6_ext_headers(*v6).vlan_any(*vlan),
        )
        .expect("compiles");
        assert!(!other.ir.eval(p, len, &|_| None), "case {i}: another port");
    }
}

/// Every target takes the modes' programs (the verifier loads them): tc
/// and socket filters read the outer tag from metadata too.
#[test]
fn the_modes_load_for_every_target() {
    if !testbed::bpf_privileged("loading the modes' programs") {
        return;
    }
    let tables = tables();
    for e in [
        "tcp port 80",
        "port 53 or udp portrange 1-100",
        "icmp6 or host 10.0.0.1",
        "ip6 protochain 6 and tcp[13] & 2 != 0",
        "vlan 5 and tcp port 80",
        "not (sctp or ip6 proto 44)",
    ] {
        for target in [Target::Xdp, Target::Tc, Target::SocketFilter] {
            for (v6, vlan) in [(true, false), (false, true), (true, true)] {
                let opts = CompileOptions::new(LinkType::En10mb, target, &tables)
                    .ipv6_ext_headers(v6)
                    .vlan_any(vlan);
                let c = match compile(e, &opts) {
                    Ok(c) => c,
                    Err(err) => panic!("{e:?} {target:?} ({v6}, {vlan}): {}", err.render(e)),
                };
                if let Err(err) = c.object.load() {
                    panic!("{e:?} {target:?} ({v6}, {vlan}): the kernel refuses it: {err}");
                }
            }
        }
    }
}
