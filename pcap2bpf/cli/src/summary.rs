//! One-line packet summaries in the style of `tcpdump -nn`, simpler but
//! recognisable: `12:34:56.000001 IP 10.0.0.1.80 > 10.0.0.2.1234: Flags [S.],
//! seq 1, ack 2, win 512, length 0`. Cut packets end in a `[|proto]` marker.
//! Any bytes are accepted: every read is bounds-checked.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use pcap2bpf::LinkType;
use pcapfile::PacketRef;

/// How deep tunnels (Geneve, VXLAN, GRE, IP-in-IP, MPLS) are followed.
const MAX_DEPTH: u8 = 4;

/// A tcpdump-like line for `pkt` captured on `link` (UTC timestamp first).
pub fn summary(link: LinkType, pkt: PacketRef<'_>) -> String {
    let secs = pkt.ts_sec % 86_400;
    let mut out = format!(
        "{:02}:{:02}:{:02}.{:06} ",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        pkt.ts_nsec / 1000
    );
    let d = pkt.data;
    let wire = pkt.wire_len as usize;
    match link {
        LinkType::En10mb => ether(d, wire, &mut out, 0),
        LinkType::Raw => raw_ip(d, &mut out, 0),
        LinkType::LinuxSll => sll(d, wire, &mut out),
        LinkType::LinuxSll2 => sll2(d, wire, &mut out),
        LinkType::Null | LinkType::Loop => null(link, d, wire, &mut out),
    }
    out
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn be32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

fn v4addr(d: &[u8], at: usize) -> Option<Ipv4Addr> {
    let b: [u8; 4] = d.get(at..at + 4)?.try_into().ok()?;
    Some(Ipv4Addr::from(b))
}

fn v6addr(d: &[u8], at: usize) -> Option<Ipv6Addr> {
    let b: [u8; 16] = d.get(at..at + 16)?.try_into().ok()?;
    Some(Ipv6Addr::from(b))
}

fn mac(d: &[u8], at: usize) -> Option<String> {
    let m = d.get(at..at + 6)?;
    Some(
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
    )
}

/// Ethernet: VLAN tags, then the ethertype (or 802.3 length and LLC).
fn ether(d: &[u8], wire: usize, out: &mut String, depth: u8) {
    if d.len() < 14 {
        out.push_str("[|ether]");
        return;
    }
    let mut at = 12;
    loop {
        let Some(ethertype) = be16(d, at) else {
            out.push_str("[|vlan]");
            return;
        };
        if matches!(ethertype, 0x8100 | 0x88a8 | 0x9100) {
            let Some(tci) = be16(d, at + 2) else {
                out.push_str("[|vlan]");
                return;
            };
            let _ = write!(out, "vlan {}, ", tci & 0x0fff);
            at += 4;
            continue;
        }
        let payload = d.get(at + 2..).unwrap_or(&[]);
        if ethertype < 0x0600 {
            llc(payload, wire, out);
        } else {
            ethertype_payload(ethertype, payload, wire, out, depth);
        }
        return;
    }
}

/// What follows an ethertype (Ethernet, SLL, SLL2, PPPoE-less).
fn ethertype_payload(ethertype: u16, d: &[u8], frame_wire: usize, out: &mut String, depth: u8) {
    match ethertype {
        0x0800 => ip4(d, out, depth),
        0x86dd => ip6(d, out, depth),
        0x0806 => arp(d, "ARP", out),
        0x8035 => arp(d, "RARP", out),
        0x8847 | 0x8848 => mpls(d, out, depth),
        0x8863 => pppoe_discovery(d, out),
        0x8864 => pppoe_session(d, out, depth),
        _ => {
            let _ = write!(out, "ethertype 0x{ethertype:04x}, length {frame_wire}");
        }
    }
}

fn llc(d: &[u8], wire: usize, out: &mut String) {
    let (Some(&dsap), Some(&ssap)) = (d.first(), d.get(1)) else {
        out.push_str("802.3 [|llc]");
        return;
    };
    if dsap == 0x42 && ssap == 0x42 {
        let _ = write!(out, "STP, length {wire}");
    } else if dsap == 0xaa && ssap == 0xaa {
        match (d.get(3..6), be16(d, 6)) {
            (Some(oui), Some(pid)) => {
                let _ = write!(
                    out,
                    "SNAP, oui 0x{:02x}{:02x}{:02x}, pid 0x{pid:04x}, length {wire}",
                    oui[0], oui[1], oui[2]
                );
            }
            _ => out.push_str("SNAP [|snap]"),
        }
    } else {
        let _ = write!(
            out,
            "LLC, dsap 0x{dsap:02x}, ssap 0x{ssap:02x}, length {wire}"
        );
    }
}

fn arp(d: &[u8], name: &str, out: &mut String) {
    let _ = write!(out, "{name}, ");
    let ok = be16(d, 0) == Some(1)
        && be16(d, 2) == Some(0x0800)
        && d.get(4) == Some(&6)
        && d.get(5) == Some(&4);
    let (Some(op), Some(sha), Some(spa), Some(tha), Some(tpa), true) = (
        be16(d, 6),
        mac(d, 8),
        v4addr(d, 14),
        mac(d, 18),
        v4addr(d, 24),
        ok,
    ) else {
        out.push_str("[|arp]");
        return;
    };
    let _ = match op {
        1 => write!(out, "Request who-has {tpa} tell {spa}, length 28"),
        2 => write!(out, "Reply {spa} is-at {sha}, length 28"),
        3 => write!(out, "Request who-is {tha} tell {sha}, length 28"),
        4 => write!(out, "Reply {tha} at {tpa}, length 28"),
        _ => write!(out, "op {op}, length 28"),
    };
}

fn mpls(d: &[u8], out: &mut String, depth: u8) {
    out.push_str("MPLS");
    let mut at = 0;
    loop {
        let Some(word) = be32(d, at) else {
            out.push_str(" [|mpls]");
            return;
        };
        let bos = word & 0x100 != 0;
        let _ = write!(
            out,
            " (label {}{})",
            word >> 12,
            if bos { ", S" } else { "" }
        );
        at += 4;
        if bos {
            break;
        }
    }
    out.push(' ');
    let rest = d.get(at..).unwrap_or(&[]);
    match rest.first().map(|b| b >> 4) {
        _ if depth >= MAX_DEPTH => out.push_str("[|mpls]"),
        Some(4) => ip4(rest, out, depth + 1),
        Some(6) => ip6(rest, out, depth + 1),
        Some(_) => out.push_str("unknown payload"),
        None => out.push_str("[|mpls]"),
    }
}

fn pppoe_discovery(d: &[u8], out: &mut String) {
    let name = match d.get(1) {
        None => {
            out.push_str("PPPoE [|pppoe]");
            return;
        }
        Some(0x09) => "PADI",
        Some(0x07) => "PADO",
        Some(0x19) => "PADR",
        Some(0x65) => "PADS",
        Some(0xa7) => "PADT",
        Some(_) => "discovery",
    };
    let _ = write!(out, "PPPoE {name}");
}

fn pppoe_session(d: &[u8], out: &mut String, depth: u8) {
    let Some(session) = be16(d, 2) else {
        out.push_str("PPPoE [|pppoe]");
        return;
    };
    let _ = write!(out, "PPPoE [ses 0x{session:x}] ");
    let Some(proto) = be16(d, 6) else {
        out.push_str("[|ppp]");
        return;
    };
    let rest = d.get(8..).unwrap_or(&[]);
    match proto {
        0x0021 => ip4(rest, out, depth),
        0x0057 => ip6(rest, out, depth),
        0x0281 if depth < MAX_DEPTH => mpls(rest, out, depth + 1),
        0xc021 => out.push_str("LCP"),
        _ => {
            let _ = write!(out, "PPP proto 0x{proto:04x}");
        }
    }
}

/// Raw IP: the version nibble decides.
fn raw_ip(d: &[u8], out: &mut String, depth: u8) {
    match d.first().map(|b| b >> 4) {
        Some(6) => ip6(d, out, depth),
        Some(4) => ip4(d, out, depth),
        Some(v) => {
            let _ = write!(out, "IP version {v}");
        }
        None => out.push_str("[|ip]"),
    }
}

fn ip4(d: &[u8], out: &mut String, depth: u8) {
    let (Some(src), Some(dst)) = (v4addr(d, 12), v4addr(d, 16)) else {
        out.push_str("IP [|ip]");
        return;
    };
    let ihl = usize::from(d[0] & 0x0f) * 4;
    let total = usize::from(be16(d, 2).unwrap_or(0));
    let proto = d[9];
    let frag = be16(d, 6).unwrap_or(0);
    if ihl < 20 {
        let _ = write!(out, "IP {src} > {dst}: bad header length {ihl}");
        return;
    }
    if d.len() < ihl {
        let _ = write!(out, "IP {src} > {dst}: [|ip]");
        return;
    }
    let payload_len = total.saturating_sub(ihl);
    let l4 = &d[ihl..];
    if frag & 0x1fff != 0 {
        let _ = write!(
            out,
            "IP {src} > {dst}: fragment, proto {proto}, offset {}, length {payload_len}",
            (frag & 0x1fff) * 8
        );
        return;
    }
    transport(
        "IP",
        &src.to_string(),
        &dst.to_string(),
        proto,
        l4,
        payload_len,
        out,
        depth,
    );
}

fn ip6(d: &[u8], out: &mut String, depth: u8) {
    let (Some(src), Some(dst)) = (v6addr(d, 8), v6addr(d, 24)) else {
        out.push_str("IP6 [|ip6]");
        return;
    };
    let mut next = d[6];
    let mut len = usize::from(be16(d, 4).unwrap_or(0));
    let mut at = 40;
    let mut exts = String::new();
    loop {
        let name = match next {
            0 => "HBH",
            43 => "RT6",
            44 => "frag",
            60 => "DSTOPT",
            51 => "AH",
            _ => break,
        };
        let (Some(&nh), Some(&hlen)) = (d.get(at), d.get(at + 1)) else {
            let _ = write!(out, "IP6 {src} > {dst}: {exts}[|ip6ext]");
            return;
        };
        let size = match next {
            44 => 8,
            51 => (usize::from(hlen) + 2) * 4,
            _ => (usize::from(hlen) + 1) * 8,
        };
        let _ = write!(exts, "{name} ");
        if next == 44 {
            let Some(off) = be16(d, at + 2) else {
                let _ = write!(out, "IP6 {src} > {dst}: {exts}[|ip6ext]");
                return;
            };
            if off >> 3 != 0 {
                let _ = write!(
                    out,
                    "IP6 {src} > {dst}: {exts}offset {}, next-header {nh}, length {}",
                    (off >> 3) * 8,
                    len.saturating_sub(size)
                );
                return;
            }
        }
        next = nh;
        at += size;
        len = len.saturating_sub(size);
    }
    let l4 = d.get(at..).unwrap_or(&[]);
    let mut head = String::from("IP6");
    if !exts.is_empty() {
        head.push(' ');
        head.push_str(exts.trim_end());
    }
    transport(
        &head,
        &src.to_string(),
        &dst.to_string(),
        next,
        l4,
        len,
        out,
        depth,
    );
}

/// The transport layer: `len` is the payload length the IP header claims.
#[allow(clippy::too_many_arguments)]
fn transport(
    head: &str,
    src: &str,
    dst: &str,
    proto: u8,
    d: &[u8],
    len: usize,
    out: &mut String,
    depth: u8,
) {
    let ports = match (be16(d, 0), be16(d, 2)) {
        (Some(s), Some(p)) => Some((s, p)),
        _ => None,
    };
    let has_ports = matches!(proto, 6 | 17 | 132);
    let _ = match (has_ports, ports) {
        (true, Some((sp, dp))) => write!(out, "{head} {src}.{sp} > {dst}.{dp}: "),
        _ => write!(out, "{head} {src} > {dst}: "),
    };
    match proto {
        6 => tcp(d, len, out),
        17 => udp(d, out, depth),
        132 if ports.is_some() => {
            let _ = write!(out, "SCTP, length {}", len.saturating_sub(12));
        }
        132 => out.push_str("[|sctp]"),
        1 => icmp(d, len, out),
        58 => icmp6(d, len, out),
        2 => {
            let _ = match d.first() {
                Some(t) => write!(out, "IGMP type 0x{t:02x}, length {len}"),
                None => write!(out, "[|igmp]"),
            };
        }
        47 => gre(d, len, out, depth),
        50 => {
            let _ = match (be32(d, 0), be32(d, 4)) {
                (Some(spi), Some(seq)) => {
                    write!(out, "ESP(spi=0x{spi:08x},seq=0x{seq:x}), length {len}")
                }
                _ => write!(out, "[|esp]"),
            };
        }
        51 => {
            let _ = match (d.first(), be32(d, 4), be32(d, 8)) {
                (Some(nh), Some(spi), Some(seq)) => {
                    write!(
                        out,
                        "AH(spi=0x{spi:08x},seq=0x{seq:x}), next-header {nh}, length {len}"
                    )
                }
                _ => write!(out, "[|ah]"),
            };
        }
        4 | 41 if depth < MAX_DEPTH => {
            let inner = if proto == 4 { "IP-in-IP" } else { "IPv6-in-IP" };
            let _ = write!(out, "{inner}: ");
            raw_ip(d, out, depth + 1);
        }
        112 => {
            let _ = write!(out, "VRRP, length {len}");
        }
        103 => {
            let _ = write!(out, "PIM, length {len}");
        }
        59 => out.push_str("no next header"),
        _ => {
            let _ = write!(out, "ip-proto-{proto}, length {len}");
        }
    }
}

fn tcp(d: &[u8], len: usize, out: &mut String) {
    let (Some(seq), Some(ack), Some(off_flags), Some(win)) =
        (be32(d, 4), be32(d, 8), be16(d, 12), be16(d, 14))
    else {
        out.push_str("[|tcp]");
        return;
    };
    let flags = off_flags & 0x1ff;
    let doff = usize::from(off_flags >> 12) * 4;
    let mut letters = String::new();
    // tcpdump's order: F S R P . U E W (and AE last).
    for (bit, c) in [
        (0x01, 'F'),
        (0x02, 'S'),
        (0x04, 'R'),
        (0x08, 'P'),
        (0x10, '.'),
        (0x20, 'U'),
        (0x40, 'E'),
        (0x80, 'W'),
    ] {
        if flags & bit != 0 {
            letters.push(c);
        }
    }
    if flags & 0x100 != 0 {
        letters.push('e');
    }
    if letters.is_empty() {
        letters.push_str("none");
    }
    let _ = write!(out, "Flags [{letters}], seq {seq}");
    if flags & 0x10 != 0 {
        let _ = write!(out, ", ack {ack}");
    }
    let _ = write!(out, ", win {win}, length {}", len.saturating_sub(doff));
}

fn udp(d: &[u8], out: &mut String, depth: u8) {
    let (Some(dport), Some(ulen)) = (be16(d, 2), be16(d, 4)) else {
        out.push_str("[|udp]");
        return;
    };
    let _ = write!(out, "UDP, length {}", usize::from(ulen).saturating_sub(8));
    let tunnel = match dport {
        6081 => "Geneve",
        4789 => "VXLAN",
        _ => return,
    };
    let (Some(vni), Some(inner)) = (be32(d, 12), d.get(16..)) else {
        let _ = write!(out, ", {tunnel} [|{}]", tunnel.to_lowercase());
        return;
    };
    let _ = write!(out, ", {tunnel} vni {}: ", vni >> 8);
    if depth >= MAX_DEPTH {
        out.push_str("[|ether]");
    } else {
        ether(inner, inner.len(), out, depth + 1);
    }
}

fn icmp(d: &[u8], len: usize, out: &mut String) {
    let (Some(&t), Some(&code)) = (d.first(), d.get(1)) else {
        out.push_str("[|icmp]");
        return;
    };
    let echo = |out: &mut String, what: &str| {
        let _ = match (be16(d, 4), be16(d, 6)) {
            (Some(id), Some(seq)) => write!(out, "ICMP {what}, id {id}, seq {seq}, length {len}"),
            _ => write!(out, "ICMP {what} [|icmp]"),
        };
    };
    match t {
        8 => echo(out, "echo request"),
        0 => echo(out, "echo reply"),
        3 => {
            let _ = write!(out, "ICMP unreachable, code {code}, length {len}");
        }
        11 => {
            let _ = write!(out, "ICMP time exceeded, length {len}");
        }
        _ => {
            let _ = write!(out, "ICMP type {t}, code {code}, length {len}");
        }
    }
}

fn icmp6(d: &[u8], len: usize, out: &mut String) {
    let Some(&t) = d.first() else {
        out.push_str("[|icmp6]");
        return;
    };
    out.push_str("ICMP6, ");
    let _ = match t {
        128 | 129 => {
            let what = if t == 128 {
                "echo request"
            } else {
                "echo reply"
            };
            match (be16(d, 4), be16(d, 6)) {
                (Some(id), Some(seq)) => write!(out, "{what}, id {id}, seq {seq}, length {len}"),
                _ => write!(out, "{what} [|icmp6]"),
            }
        }
        135 => match v6addr(d, 8) {
            Some(a) => write!(out, "neighbor solicitation, who has {a}, length {len}"),
            None => write!(out, "neighbor solicitation [|icmp6]"),
        },
        136 => match v6addr(d, 8) {
            Some(a) => write!(out, "neighbor advertisement, tgt is {a}, length {len}"),
            None => write!(out, "neighbor advertisement [|icmp6]"),
        },
        133 => write!(out, "router solicitation, length {len}"),
        134 => write!(out, "router advertisement, length {len}"),
        143 => write!(out, "multicast listener report v2, length {len}"),
        1 => write!(out, "destination unreachable, length {len}"),
        _ => write!(out, "type {t}, length {len}"),
    };
}

fn gre(d: &[u8], len: usize, out: &mut String, depth: u8) {
    let (Some(flags), Some(proto)) = (be16(d, 0), be16(d, 2)) else {
        out.push_str("[|gre]");
        return;
    };
    let _ = write!(out, "GREv{}, proto 0x{proto:04x}, length {len}", flags & 7);
    // Only the plain header (no checksum, key or sequence) is followed.
    if flags & 0xb000 == 0 && depth < MAX_DEPTH {
        let inner = d.get(4..).unwrap_or(&[]);
        match proto {
            0x0800 | 0x86dd => {
                out.push_str(": ");
                raw_ip(inner, out, depth + 1);
            }
            0x6558 => {
                out.push_str(": ");
                ether(inner, inner.len(), out, depth + 1);
            }
            _ => {}
        }
    }
}

fn sll_direction(ptype: u16) -> &'static str {
    match ptype {
        0 => "In",
        1 => "B",
        2 => "M",
        3 => "P",
        4 => "Out",
        _ => "?",
    }
}

/// Linux cooked v1: packet type, ARPHRD type, address, protocol.
fn sll(d: &[u8], wire: usize, out: &mut String) {
    let (Some(ptype), Some(proto)) = (be16(d, 0), be16(d, 14)) else {
        out.push_str("[|sll]");
        return;
    };
    let _ = write!(out, "{} ", sll_direction(ptype));
    cooked_payload(proto, d.get(16..).unwrap_or(&[]), wire, out);
}

/// Linux cooked v2: protocol, interface index, ARPHRD type, packet type.
fn sll2(d: &[u8], wire: usize, out: &mut String) {
    let (Some(proto), Some(ifindex), Some(&ptype)) = (be16(d, 0), be32(d, 4), d.get(10)) else {
        out.push_str("[|sll2]");
        return;
    };
    if d.len() < 20 {
        out.push_str("[|sll2]");
        return;
    }
    let _ = write!(
        out,
        "ifindex {ifindex} {} ",
        sll_direction(u16::from(ptype))
    );
    cooked_payload(proto, &d[20..], wire, out);
}

fn cooked_payload(proto: u16, d: &[u8], wire: usize, out: &mut String) {
    match proto {
        0x0004 => llc(d, wire, out),
        0x8100 => match (be16(d, 0), be16(d, 2)) {
            (Some(tci), Some(inner)) => {
                let _ = write!(out, "vlan {}, ", tci & 0x0fff);
                ethertype_payload(inner, d.get(4..).unwrap_or(&[]), wire, out, 0);
            }
            _ => out.push_str("[|vlan]"),
        },
        _ => ethertype_payload(proto, d, wire, out, 0),
    }
}

/// BSD loopback: a 4-byte address family, host order (NULL) or network order (LOOP).
fn null(link: LinkType, d: &[u8], wire: usize, out: &mut String) {
    let Some(b) = d.get(..4) else {
        out.push_str("[|null]");
        return;
    };
    let bytes = [b[0], b[1], b[2], b[3]];
    let family = if link == LinkType::Loop {
        u32::from_be_bytes(bytes)
    } else {
        // Host order of the capturing machine: whichever reading is small.
        let le = u32::from_le_bytes(bytes);
        if le < 0x1_0000 {
            le
        } else {
            u32::from_be_bytes(bytes)
        }
    };
    let rest = &d[4..];
    match family {
        2 => ip4(rest, out, 0),
        10 | 24 | 28 | 30 => ip6(rest, out, 0),
        _ => {
            let _ = write!(out, "AF {family}, length {wire}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcapfile::Packet;

    /// [`super::summary`] of an owned packet.
    fn summary(link: LinkType, p: &Packet) -> String {
        super::summary(link, p.borrowed())
    }

    fn pkt(data: &[u8], wire_len: usize) -> Packet {
        Packet {
            ts_sec: 1_700_000_000 + 3_600 + 62,
            ts_nsec: 1_000,
            data: data.to_vec(),
            wire_len: wire_len as u32,
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const ETH: &str = "66778899aabb 001122334455";
    // IPv4 10.0.0.1 -> 10.0.0.2, TCP 80 -> 1234, SYN|ACK, written by hand.
    const IP_TCP: &str = "4500 0028 0000 4000 4006 0000 0a000001 0a000002
        0050 04d2 00000001 00000002 5012 0200 0000 0000";

    #[test]
    fn tcp_over_ethernet() {
        let f = hex(&format!("{ETH} 0800 {IP_TCP}"));
        assert_eq!(
            summary(LinkType::En10mb, &pkt(&f, f.len())),
            "23:14:22.000001 IP 10.0.0.1.80 > 10.0.0.2.1234: Flags [S.], seq 1, ack 2, win 512, length 0"
        );
    }

    #[test]
    fn vlan_prefix_and_truncation_markers() {
        let f = hex(&format!("{ETH} 8100 000a 0800 {IP_TCP}"));
        let line = |n: usize| summary(LinkType::En10mb, &pkt(&f[..n], f.len()));
        assert_eq!(
            line(f.len()),
            "23:14:22.000001 vlan 10, IP 10.0.0.1.80 > 10.0.0.2.1234: Flags [S.], seq 1, ack 2, win 512, length 0"
        );
        assert_eq!(line(10), "23:14:22.000001 [|ether]");
        assert_eq!(line(15), "23:14:22.000001 [|vlan]");
        assert_eq!(line(16), "23:14:22.000001 vlan 10, [|vlan]");
        assert_eq!(line(30), "23:14:22.000001 vlan 10, IP [|ip]");
        assert_eq!(
            line(40),
            "23:14:22.000001 vlan 10, IP 10.0.0.1 > 10.0.0.2: [|tcp]"
        );
        assert_eq!(
            line(50),
            "23:14:22.000001 vlan 10, IP 10.0.0.1.80 > 10.0.0.2.1234: [|tcp]"
        );
    }

    #[test]
    fn udp_icmp_arp_and_other_ethertypes() {
        let udp = hex(&format!(
            "{ETH} 0800 4500 0021 0000 0000 4011 0000 0a000001 0a000002 d431 0035 000d 0000 0102030405"
        ));
        assert_eq!(
            summary(LinkType::En10mb, &pkt(&udp, udp.len())),
            "23:14:22.000001 IP 10.0.0.1.54321 > 10.0.0.2.53: UDP, length 5"
        );
        let icmp = hex("4500 001c 0000 0000 4001 0000 01020304 0a000001 0800 0000 1234 0001");
        assert_eq!(
            summary(LinkType::Raw, &pkt(&icmp, icmp.len())),
            "23:14:22.000001 IP 1.2.3.4 > 10.0.0.1: ICMP echo request, id 4660, seq 1, length 8"
        );
        let arp = hex(
            "ffffffffffff 001122334455 0806 0001 0800 06 04 0001 001122334455 c0a80104 000000000000 c0a80101",
        );
        assert_eq!(
            summary(LinkType::En10mb, &pkt(&arp, 60)),
            "23:14:22.000001 ARP, Request who-has 192.168.1.1 tell 192.168.1.4, length 28"
        );
        let lldp = hex(&format!("{ETH} 88cc 0000"));
        assert_eq!(
            summary(LinkType::En10mb, &pkt(&lldp, 64)),
            "23:14:22.000001 ethertype 0x88cc, length 64"
        );
    }

    #[test]
    fn ipv6_extension_headers_and_flags() {
        // 2001:db8::1 -> 2001:db8::2, hop-by-hop then TCP 443 -> 80 FIN|PSH|ACK|ECE|CWR.
        let src = "20010db8000000000000000000000001";
        let dst = "20010db8000000000000000000000002";
        let f = hex(&format!(
            "60000000 001c 00 40 {src} {dst} 06 00 0104 00000000
             01bb 0050 0000000a 0000000b 50d9 0100 0000 0000"
        ));
        assert_eq!(
            summary(LinkType::Raw, &pkt(&f, f.len())),
            "23:14:22.000001 IP6 HBH 2001:db8::1.443 > 2001:db8::2.80: Flags [FP.EW], seq 10, ack 11, win 256, length 0"
        );
        assert_eq!(
            summary(LinkType::Raw, &pkt(&f[..41], f.len())),
            "23:14:22.000001 IP6 2001:db8::1 > 2001:db8::2: [|ip6ext]"
        );
    }

    #[test]
    fn cooked_headers() {
        let f = hex(&format!("0004 0001 0006 001122334455 0000 0800 {IP_TCP}"));
        assert_eq!(
            summary(LinkType::LinuxSll, &pkt(&f, f.len())),
            "23:14:22.000001 Out IP 10.0.0.1.80 > 10.0.0.2.1234: Flags [S.], seq 1, ack 2, win 512, length 0"
        );
        let f2 = hex(&format!(
            "0800 0000 00000003 0001 00 06 001122334455 0000 {IP_TCP}"
        ));
        assert_eq!(
            summary(LinkType::LinuxSll2, &pkt(&f2, f2.len())),
            "23:14:22.000001 ifindex 3 In IP 10.0.0.1.80 > 10.0.0.2.1234: Flags [S.], seq 1, ack 2, win 512, length 0"
        );
        let n = hex(&format!("02000000 {IP_TCP}"));
        assert_eq!(
            summary(LinkType::Null, &pkt(&n, n.len())),
            "23:14:22.000001 IP 10.0.0.1.80 > 10.0.0.2.1234: Flags [S.], seq 1, ack 2, win 512, length 0"
        );
    }

    #[test]
    fn never_panics_on_arbitrary_bytes() {
        let mut x: u32 = 12345;
        let links = [
            LinkType::En10mb,
            LinkType::Raw,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
            LinkType::Null,
            LinkType::Loop,
        ];
        for round in 0..20_000 {
            let len = round % 120;
            let mut data: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8
                })
                .collect();
            // Steer some inputs into the deeper decoders.
            if round % 3 == 0 && len > 14 {
                data[12..14].copy_from_slice(
                    &[[0x08, 0x00], [0x86, 0xdd], [0x81, 0x00], [0x88, 0x47]][round % 4],
                );
                data[14] = [0x45, 0x60, 0x4f, 0x46][round % 4];
            }
            for link in links {
                let line = summary(link, &pkt(&data, len + 3));
                assert!(line.starts_with("23:14:22.000001 "), "{line}");
            }
        }
    }
}
