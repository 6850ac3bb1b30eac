//! The sample captures the project ships (`pcap2bpf/samples/`), generated
//! deterministically by this code: no randomness, no clock. They cover what
//! filters test, with addresses and ports from libpcap's test expressions so
//! that filters both match and miss, and truncated variants of many frames.
//!
//! Regenerate with `cargo run -p testbed --example gen-samples`; a test
//! checks the shipped files are byte-identical to what this code makes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use crate::frame::tcp_flags::*;
use crate::frame::*;

use pcapfile::{
    Capture, LINKTYPE_EN10MB, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, Packet,
    write_pcap,
};

/// The snapshot length written in the sample files.
pub const SNAPLEN: u32 = 262_144;
/// The first packet's timestamp (2023-11-14 22:13:20 UTC).
const BASE_TS: u64 = 1_700_000_000;

const MAC_A: Mac = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
const MAC_B: Mac = [0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb];
const MAC_C: Mac = [0xab, 0xcd, 0xef, 0x00, 0x00, 0x01];
const MAC_D: Mac = [0xab, 0xcd, 0xef, 0x00, 0x00, 0x02];
const MAC_ROUTER: Mac = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x0a];
const BROADCAST: Mac = [0xff; 6];
const STP_MAC: Mac = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x00];
const LLDP_MAC: Mac = [0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e];
const CDP_MAC: Mac = [0x01, 0x00, 0x0c, 0xcc, 0xcc, 0xcc];

const H1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const H2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const LAN4: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 4);
const LAN_SERVER: Ipv4Addr = Ipv4Addr::new(192, 168, 170, 211);
const PUB4: Ipv4Addr = Ipv4Addr::new(1, 2, 3, 4);
const DOCKER: Ipv4Addr = Ipv4Addr::new(172, 17, 89, 30);
const GW1: Ipv4Addr = Ipv4Addr::new(192, 1, 2, 23);
const GW2: Ipv4Addr = Ipv4Addr::new(192, 1, 2, 254);
const NET10_1: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 7);
const COMCAST: Ipv4Addr = Ipv4Addr::new(68, 85, 102, 9);
const AABBCC: Ipv4Addr = Ipv4Addr::new(170, 187, 204, 221);
const BCAST4: Ipv4Addr = Ipv4Addr::BROADCAST;
const DIRECTED: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 255);
const ZERO4: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

const LL_A: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x1122, 0x33ff, 0xfe44, 0x5566);
const LL_B: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x7788, 0x99ff, 0xfeaa, 0xbbcc);
const LL_C: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0xd6ca, 0x6dff, 0xfe66, 0xcf60);
const DOC1: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const DOC2: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const ABCD: Ipv6Addr = Ipv6Addr::new(
    0xabcd, 0xe0e1, 0xe3e4, 0xe5e6, 0xe7e8, 0xe9ea, 0xc7c8, 0x0005,
);
const LOOP6: Ipv6Addr = Ipv6Addr::LOCALHOST;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
const VRRP6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
const MLDV2: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);
const SOLICITED_A: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff44, 0x5566);
const ODD_MCAST: Ipv6Addr = Ipv6Addr::new(
    0xff11, 0x2233, 0x4455, 0x6677, 0x8899, 0xaabb, 0xccdd, 0xee01,
);
const DNS6: Ipv6Addr = Ipv6Addr::new(0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888);

/// The sample captures: `(file name, capture)`.
pub fn sample_captures() -> Vec<(&'static str, Capture)> {
    vec![
        ("ethernet.pcap", capture(LINKTYPE_EN10MB, ethernet_frames())),
        ("raw.pcap", capture(LINKTYPE_RAW, raw_packets())),
        (
            "linux-sll.pcap",
            capture(LINKTYPE_LINUX_SLL, sll_packets(false)),
        ),
        (
            "linux-sll2.pcap",
            capture(LINKTYPE_LINUX_SLL2, sll_packets(true)),
        ),
    ]
}

/// The bytes of a sample capture file as shipped (microsecond pcap).
pub fn file_bytes(cap: &Capture) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    write_pcap(&mut out, cap.link, SNAPLEN, &cap.packets)?;
    Ok(out)
}

/// Writes every sample capture into `dir`.
pub fn write_samples(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, cap) in sample_captures() {
        std::fs::write(dir.join(name), file_bytes(&cap)?)?;
    }
    Ok(())
}

/// One frame: captured bytes and wire length.
struct Frame {
    data: Vec<u8>,
    wire_len: u32,
}

fn whole(data: Vec<u8>) -> Frame {
    let wire_len = data.len() as u32;
    Frame { data, wire_len }
}

/// `data` captured only up to `caplen` bytes.
fn cut(data: &[u8], caplen: usize) -> Frame {
    Frame {
        data: data[..caplen.min(data.len())].to_vec(),
        wire_len: data.len() as u32,
    }
}

fn capture(link: u32, frames: Vec<Frame>) -> Capture {
    let packets = frames
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            // 1.25 ms apart: microsecond timestamps that survive pcap exactly.
            let micros = i as u64 * 1250;
            Packet {
                ts_sec: BASE_TS + micros / 1_000_000,
                ts_nsec: (micros % 1_000_000) as u32 * 1000,
                data: f.data,
                wire_len: f.wire_len,
            }
        })
        .collect();
    Capture { link, packets }
}

fn v4(a: Ipv4Addr) -> IpAddr {
    IpAddr::V4(a)
}

fn v6(a: Ipv6Addr) -> IpAddr {
    IpAddr::V6(a)
}

/// Deterministic filler bytes (a fixed linear congruential sequence).
fn filler(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m
}

fn dns_response(id: u16, name: &str, addr: Ipv4Addr) -> Vec<u8> {
    let mut m = dns_query(id, name);
    m[2] = 0x81;
    m[3] = 0x80;
    m[7] = 1; // ancount
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
    m.extend_from_slice(&addr.octets());
    m
}

fn dhcp(op: u8, msg_type: u8, client: Mac, yiaddr: Ipv4Addr) -> Vec<u8> {
    let mut m = vec![op, 1, 6, 0];
    m.extend_from_slice(&0x3903_f326u32.to_be_bytes());
    m.extend_from_slice(&[0; 4]); // secs, flags
    m.extend_from_slice(&[0; 4]); // ciaddr
    m.extend_from_slice(&yiaddr.octets());
    m.extend_from_slice(&[0; 8]); // siaddr, giaddr
    m.extend_from_slice(&client);
    m.resize(236, 0);
    m.extend_from_slice(&[0x63, 0x82, 0x53, 0x63, 53, 1, msg_type, 255]);
    m
}

fn ntp(mode: u8) -> Vec<u8> {
    let mut m = vec![0x20 | mode, 2, 6, 0xe9];
    m.resize(48, 0);
    m[40..44].copy_from_slice(&0xe8fd_a6d0u32.to_be_bytes());
    m
}

/// Multicast MAC for an IPv4/IPv6 destination, else the given unicast MAC.
fn dst_mac_v4(dst: Ipv4Addr, unicast: Mac) -> Mac {
    let o = dst.octets();
    if dst == BCAST4 || dst == DIRECTED {
        BROADCAST
    } else if dst.is_multicast() {
        [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
    } else {
        unicast
    }
}

fn dst_mac_v6(dst: Ipv6Addr, unicast: Mac) -> Mac {
    let o = dst.octets();
    if dst.is_multicast() {
        [0x33, 0x33, o[12], o[13], o[14], o[15]]
    } else {
        unicast
    }
}

/// A TCP/IPv4 packet.
fn tcp4(src: Ipv4Addr, dst: Ipv4Addr, t: &Tcp, payload: &[u8]) -> Vec<u8> {
    Ipv4::new(src, dst, 6).build(&t.build(v4(src), v4(dst), payload))
}

fn udp4(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    Ipv4::new(src, dst, 17).build(&udp(v4(src), v4(dst), sport, dport, payload))
}

fn tcp6(src: Ipv6Addr, dst: Ipv6Addr, t: &Tcp, payload: &[u8]) -> Vec<u8> {
    ipv6(src, dst, 6, 64, &t.build(v6(src), v6(dst), payload))
}

fn udp6(src: Ipv6Addr, dst: Ipv6Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    ipv6(
        src,
        dst,
        17,
        64,
        &udp(v6(src), v6(dst), sport, dport, payload),
    )
}

fn with_options(mut t: Tcp, options: Vec<u8>) -> Tcp {
    t.options = options;
    t
}

/// IPv4 packets: every protocol, flag class and address kind.
fn ipv4_catalog() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // TCP flag classes on well-known ports.
    let syn = with_options(Tcp::new(49152, 80, SYN), tcp_syn_options());
    out.push(tcp4(H1, H2, &syn, &[]));
    let synack = with_options(Tcp::new(80, 49152, SYN | ACK), tcp_syn_options());
    out.push(tcp4(H2, H1, &synack, &[]));
    out.push(tcp4(H1, H2, &Tcp::new(49152, 80, ACK), &[]));
    out.push(tcp4(
        H1,
        H2,
        &Tcp::new(49152, 80, PSH | ACK),
        b"GET / HTTP/1.1\r\nHost: 10.0.0.2\r\n\r\n",
    ));
    out.push(tcp4(H2, H1, &Tcp::new(80, 49152, FIN | ACK), &[]));
    out.push(tcp4(LAN4, PUB4, &Tcp::new(50000, 443, RST), &[]));
    out.push(tcp4(PUB4, LAN4, &Tcp::new(443, 50000, RST | ACK), &[]));
    let mut urg = Tcp::new(1023, 22, URG | PSH | ACK);
    urg.urgent = 1;
    out.push(tcp4(LAN4, LAN_SERVER, &urg, b"!"));
    out.push(tcp4(
        LAN4,
        PUB4,
        &with_options(Tcp::new(50001, 443, SYN | ECE | CWR), tcp_syn_options()),
        &[],
    ));
    out.push(tcp4(
        PUB4,
        LAN4,
        &Tcp::new(443, 50001, SYN | ACK | ECE),
        &[],
    ));
    out.push(tcp4(H1, DOCKER, &Tcp::new(40000, 5672, 0xff | AE), &[]));
    out.push(tcp4(H1, DOCKER, &Tcp::new(40001, 5672, 0), &[]));
    out.push(tcp4(
        GW1,
        GW2,
        &Tcp::new(20, 1024, PSH | ACK),
        &filler(1, 64),
    ));
    out.push(tcp4(
        GW2,
        GW1,
        &Tcp::new(179, 33000, PSH | ACK),
        &filler(2, 19),
    ));
    out.push(tcp4(COMCAST, H2, &Tcp::new(25, 2525, ACK), &[]));
    // UDP services.
    out.push(udp4(
        LAN4,
        PUB4,
        33333,
        53,
        &dns_query(0x1a2b, "example.com"),
    ));
    out.push(udp4(
        PUB4,
        LAN4,
        53,
        33333,
        &dns_response(0x1a2b, "example.com", AABBCC),
    ));
    out.push(udp4(ZERO4, BCAST4, 68, 67, &dhcp(1, 1, MAC_A, ZERO4)));
    out.push(udp4(LAN_SERVER, BCAST4, 67, 68, &dhcp(2, 2, MAC_A, LAN4)));
    out.push(udp4(H1, NET10_1, 123, 123, &ntp(3)));
    out.push(udp4(NET10_1, H1, 123, 123, &ntp(4)));
    out.push(udp4(H2, DIRECTED, 137, 137, &filler(3, 50)));
    out.push(udp4(H1, H2, 7, 7, b"echo"));
    out.push(udp4(
        LAN4,
        Ipv4Addr::new(239, 255, 255, 250),
        50123,
        1900,
        b"M-SEARCH * HTTP/1.1\r\n\r\n",
    ));
    out.push(udp4(
        LAN4,
        Ipv4Addr::new(224, 0, 0, 251),
        5353,
        5353,
        &dns_query(0, "printer.local"),
    ));
    out.push(udp4(H1, H2, 61000, 62000, &filler(4, 32)));
    out.push(udp4(LAN4, PUB4, 4500, 4500, &filler(5, 40)));
    // ICMP.
    out.push(Ipv4::new(H1, H2, 1).build(&icmp4(8, 0, [0x12, 0x34, 0, 1], &filler(6, 32))));
    out.push(Ipv4::new(H2, H1, 1).build(&icmp4(0, 0, [0x12, 0x34, 0, 1], &filler(6, 32))));
    let quoted = udp4(H1, PUB4, 40000, 33434, &[]);
    out.push(Ipv4::new(PUB4, H1, 1).build(&icmp4(3, 3, [0; 4], &quoted[..28])));
    out.push(Ipv4::new(GW2, H1, 1).build(&icmp4(11, 0, [0; 4], &quoted[..28])));
    // IGMP (with Router Alert: IHL 6), PIM, VRRP, GRE, ESP, AH, SCTP.
    let mut igmp_ip = Ipv4::new(LAN4, Ipv4Addr::new(224, 1, 2, 3), 2);
    igmp_ip.ttl = 1;
    igmp_ip.options = vec![0x94, 4, 0, 0];
    out.push(igmp_ip.build(&igmp(0x16, 0, Ipv4Addr::new(224, 1, 2, 3))));
    let mut query = Ipv4::new(GW2, Ipv4Addr::new(224, 0, 0, 1), 2);
    query.ttl = 1;
    query.options = vec![0x94, 4, 0, 0];
    out.push(query.build(&igmp(0x11, 100, ZERO4)));
    let mut pim_ip = Ipv4::new(GW1, Ipv4Addr::new(224, 0, 0, 13), 103);
    pim_ip.ttl = 1;
    out.push(pim_ip.build(&pim(0, &[0, 1, 0, 2, 0, 105])));
    let mut vrrp_ip = Ipv4::new(GW1, Ipv4Addr::new(224, 0, 0, 18), 112);
    vrrp_ip.ttl = 255;
    out.push(vrrp_ip.build(&vrrp2(10, 100, &[Ipv4Addr::new(192, 1, 2, 1)])));
    let inner = Ipv4::new(LAN4, PUB4, 1).build(&icmp4(8, 0, [0, 7, 0, 1], &filler(7, 16)));
    out.push(Ipv4::new(GW1, GW2, 47).build(&gre(0x0800, &inner)));
    out.push(Ipv4::new(GW1, GW2, 50).build(&esp(0x1000, 1, &filler(8, 48))));
    let ah_tcp = Tcp::new(33001, 22, ACK).build(v4(GW1), v4(GW2), &[]);
    out.push(Ipv4::new(GW1, GW2, 51).build(&ah(6, 0x2000, 1, &ah_tcp)));
    out.push(Ipv4::new(H1, H2, 132).build(&sctp(5000, 80, 0, 1, &filler(9, 16))));
    out.push(Ipv4::new(H2, H1, 132).build(&sctp(2905, 2905, 0xdead_beef, 0, &filler(10, 20))));
    // Tunnels in IPv4: IP-in-IP and IPv6-in-IPv4.
    out.push(Ipv4::new(GW1, GW2, 4).build(&tcp4(LAN4, PUB4, &Tcp::new(50002, 80, SYN), &[])));
    out.push(Ipv4::new(GW1, GW2, 41).build(&tcp6(DOC1, DOC2, &Tcp::new(50003, 443, SYN), &[])));
    // Options (IHL > 5) before TCP/UDP: record route (IHL 15), timestamp.
    let mut rr = Ipv4::new(H1, H2, 6);
    rr.options = vec![7, 39, 4];
    rr.options.resize(39, 0);
    out.push(rr.build(&Tcp::new(49153, 80, SYN).build(v4(H1), v4(H2), &[])));
    let mut ts = Ipv4::new(LAN4, PUB4, 17);
    ts.options = vec![68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    out.push(ts.build(&udp(
        v4(LAN4),
        v4(PUB4),
        40000,
        53,
        &dns_query(7, "a.example"),
    )));
    // Fragments: a UDP datagram to port 53 and a TCP segment to port 80,
    // each as first fragment (with ports) and non-first (without).
    for (proto, l4) in [
        (17u8, udp(v4(H1), v4(H2), 40001, 53, &filler(11, 64))),
        (
            6u8,
            Tcp::new(40002, 80, PSH | ACK).build(v4(H1), v4(H2), &filler(12, 56)),
        ),
    ] {
        let mut first = Ipv4::new(H1, H2, proto);
        first.frag = 0x2000; // MF
        first.id = 0x4242 + u16::from(proto);
        out.push(first.build(&l4[..40]));
        let mut rest = first.clone();
        rest.frag = 5; // offset 40 bytes, last fragment
        out.push(rest.build(&l4[40..]));
    }
    // A non-first fragment that would look like port 80 if read as ports.
    let mut middle = Ipv4::new(H2, H1, 17);
    middle.frag = 0x2000 | 100;
    out.push(middle.build(&[0, 80, 0, 80, 0, 8, 0, 0]));
    out.push(Ipv4::new(H1, H2, 253).build(&filler(13, 8)));
    out
}

/// IPv6 packets: ICMPv6 and ND, extension-header chains before TCP/UDP/ICMPv6.
fn ipv6_catalog() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let syn = with_options(Tcp::new(49200, 22, SYN), tcp_syn_options());
    out.push(tcp6(LL_A, LL_B, &syn, &[]));
    out.push(tcp6(
        LL_B,
        LL_A,
        &with_options(Tcp::new(22, 49200, SYN | ACK), tcp_syn_options()),
        &[],
    ));
    out.push(tcp6(
        DOC1,
        DOC2,
        &Tcp::new(50100, 80, PSH | ACK),
        b"GET / HTTP/1.1\r\n\r\n",
    ));
    out.push(tcp6(DOC2, DOC1, &Tcp::new(80, 50100, FIN | ACK), &[]));
    out.push(tcp6(LOOP6, LOOP6, &Tcp::new(50101, 443, RST | ACK), &[]));
    out.push(tcp6(ABCD, DOC2, &Tcp::new(20, 50102, ACK), &filler(20, 30)));
    out.push(udp6(DOC1, DNS6, 40100, 53, &dns_query(0x33, "example.org")));
    out.push(udp6(
        DNS6,
        DOC1,
        53,
        40100,
        &dns_response(0x33, "example.org", PUB4),
    ));
    let dhcp6 = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
    out.push(udp6(LL_A, dhcp6, 546, 547, &[1, 0, 0, 1]));
    out.push(udp6(
        LL_C,
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xfb),
        5353,
        5353,
        &dns_query(0, "host.local"),
    ));
    out.push(udp6(DOC1, ODD_MCAST, 9999, 9999, &filler(22, 12)));
    out.push(ipv6_flow(
        DOC1,
        DOC2,
        17,
        64,
        0xb8,
        0xabcde,
        &udp(v6(DOC1), v6(DOC2), 5004, 5004, &filler(23, 20)),
    ));
    // ICMPv6: echo, neighbor discovery.
    let echo = |id: u16| [(id >> 8) as u8, id as u8, 0, 1];
    out.push(ipv6(
        DOC1,
        DOC2,
        58,
        64,
        &icmp6(
            DOC1,
            DOC2,
            128,
            0,
            &[&echo(7)[..], &filler(24, 16)].concat(),
        ),
    ));
    out.push(ipv6(
        DOC2,
        DOC1,
        58,
        64,
        &icmp6(
            DOC2,
            DOC1,
            129,
            0,
            &[&echo(7)[..], &filler(24, 16)].concat(),
        ),
    ));
    let mut ns = vec![0; 4];
    ns.extend_from_slice(&LL_A.octets());
    ns.extend_from_slice(&[1, 1]);
    ns.extend_from_slice(&MAC_B);
    out.push(ipv6(
        LL_B,
        SOLICITED_A,
        58,
        255,
        &icmp6(LL_B, SOLICITED_A, 135, 0, &ns),
    ));
    let mut na = vec![0x60, 0, 0, 0];
    na.extend_from_slice(&LL_A.octets());
    na.extend_from_slice(&[2, 1]);
    na.extend_from_slice(&MAC_A);
    out.push(ipv6(LL_A, LL_B, 58, 255, &icmp6(LL_A, LL_B, 136, 0, &na)));
    out.push(ipv6(
        LL_A,
        ALL_ROUTERS,
        58,
        255,
        &icmp6(LL_A, ALL_ROUTERS, 133, 0, &[0; 4]),
    ));
    out.push(ipv6(
        LL_C,
        ALL_NODES,
        58,
        255,
        &icmp6(
            LL_C,
            ALL_NODES,
            134,
            0,
            &[64, 0, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0],
        ),
    ));
    // Extension chains: hop-by-hop (router alert) before MLDv2 and UDP.
    let mld = icmp6(
        LL_A,
        MLDV2,
        143,
        0,
        &[
            0, 0, 0, 1, 4, 0, 0, 0, 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3,
        ],
    );
    out.push(ipv6(
        LL_A,
        MLDV2,
        0,
        1,
        &ip6_options(58, &[5, 2, 0, 0], &mld),
    ));
    let u = udp(v6(DOC1), v6(DOC2), 40200, 53, &dns_query(9, "hbh.example"));
    out.push(ipv6(DOC1, DOC2, 0, 64, &ip6_options(17, &[5, 2, 0, 0], &u)));
    let t = Tcp::new(40201, 80, SYN).build(v6(DOC1), v6(DOC2), &[]);
    out.push(ipv6(DOC1, DOC2, 60, 64, &ip6_options(6, &[], &t)));
    // Routing header (type 2, segments left 0 as received at the final hop).
    let t = Tcp::new(40202, 443, SYN).build(v6(DOC1), v6(DOC2), &[]);
    out.push(ipv6(DOC1, DOC2, 43, 64, &ip6_routing(6, 2, 0, &[DOC2], &t)));
    // Fragments: first (with UDP ports) and non-first; an atomic ICMPv6 one.
    let u = udp(v6(DOC1), v6(DOC2), 40203, 53, &filler(25, 72));
    out.push(ipv6(
        DOC1,
        DOC2,
        44,
        64,
        &ip6_fragment(17, 0, true, 0x77, &u[..48]),
    ));
    out.push(ipv6(
        DOC1,
        DOC2,
        44,
        64,
        &ip6_fragment(17, 6, false, 0x77, &u[48..]),
    ));
    let e = icmp6(LL_A, LL_B, 128, 0, &echo(8));
    out.push(ipv6(
        LL_A,
        LL_B,
        44,
        64,
        &ip6_fragment(58, 0, false, 0x78, &e),
    ));
    // A long chain: hop-by-hop, destination options, routing, fragment, TCP.
    let t = Tcp::new(40204, 22, SYN).build(v6(ABCD), v6(DOC2), &[]);
    let chain = ip6_options(
        60,
        &[],
        &ip6_options(
            43,
            &[],
            &ip6_routing(44, 0, 0, &[DOC1], &ip6_fragment(6, 0, false, 0x79, &t)),
        ),
    );
    out.push(ipv6(ABCD, DOC2, 0, 64, &chain));
    // AH before TCP and UDP; ESP; no next header; PIM; VRRPv3-like.
    let t = Tcp::new(40205, 179, ACK).build(v6(DOC1), v6(DOC2), &[]);
    out.push(ipv6(DOC1, DOC2, 51, 64, &ah(6, 0x3000, 1, &t)));
    let u = udp(v6(DOC2), v6(DOC1), 500, 500, &filler(26, 24));
    out.push(ipv6(DOC2, DOC1, 51, 64, &ah(17, 0x3001, 2, &u)));
    out.push(ipv6(DOC1, DOC2, 50, 64, &esp(0x3002, 3, &filler(27, 40))));
    out.push(ipv6(LL_A, LL_B, 59, 64, &[]));
    out.push(ipv6(
        LL_C,
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0xd),
        103,
        1,
        &filler(28, 12),
    ));
    out.push(ipv6(
        LL_B,
        VRRP6,
        112,
        255,
        &vrrp3_v6(LL_B, VRRP6, 10, 100, &[LL_A]),
    ));
    out.push(ipv6(
        DOC1,
        DOC2,
        132,
        64,
        &sctp(5001, 80, 0, 1, &filler(29, 16)),
    ));
    out
}

/// Wraps an IP packet in Ethernet to the right MAC (multicast/broadcast).
fn eth_ip(ip: &[u8], tags: &[(u16, u16)]) -> Vec<u8> {
    let (dst, ethertype) = if ip[0] >> 4 == 4 {
        let d = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
        (dst_mac_v4(d, MAC_B), 0x0800)
    } else {
        let mut o = [0u8; 16];
        o.copy_from_slice(&ip[24..40]);
        (dst_mac_v6(Ipv6Addr::from(o), MAC_B), 0x86dd)
    };
    pad60(ethernet(dst, MAC_A, tags, ethertype, ip))
}

fn stp_bpdu() -> Vec<u8> {
    let mut b = vec![0, 0, 0, 0, 0x01, 0x80, 0x00];
    b.extend_from_slice(&MAC_C);
    b.extend_from_slice(&[0, 0, 0, 4, 0x80, 0x00]);
    b.extend_from_slice(&MAC_D);
    b.extend_from_slice(&[0x80, 0x01, 0, 0, 0x14, 0, 0x02, 0, 0x0f, 0]);
    b
}

/// The Ethernet capture.
fn ethernet_frames() -> Vec<Frame> {
    let v4s = ipv4_catalog();
    let v6s = ipv6_catalog();
    let mut out: Vec<Frame> = Vec::new();
    for ip in v4s.iter().chain(&v6s) {
        out.push(whole(eth_ip(ip, &[])));
    }

    // Link-layer frames: 802.3 LLC (STP, NetBEUI), SNAP (CDP, IPv4), LLDP,
    // broadcast and multicast of unknown ethertypes.
    out.push(whole(pad60(ieee8023_llc(
        STP_MAC,
        MAC_C,
        0x42,
        0x42,
        0x03,
        &stp_bpdu(),
    ))));
    out.push(whole(pad60(ieee8023_llc(
        BROADCAST,
        MAC_D,
        0xf0,
        0xf0,
        0x03,
        &filler(30, 20),
    ))));
    let mut cdp = vec![2, 180, 0, 0, 0, 1, 0, 7, b's', b'w', b'1'];
    let sum = internet_checksum(&cdp);
    cdp[2..4].copy_from_slice(&sum.to_be_bytes());
    out.push(whole(pad60(ieee8023_llc(
        CDP_MAC,
        MAC_C,
        0xaa,
        0xaa,
        0x03,
        &snap([0, 0, 0x0c], 0x2000, &cdp),
    ))));
    let snap_ip = udp4(H1, H2, 40300, 53, &dns_query(3, "snap.example"));
    out.push(whole(pad60(ieee8023_llc(
        MAC_B,
        MAC_A,
        0xaa,
        0xaa,
        0x03,
        &snap([0, 0, 0], 0x0800, &snap_ip),
    ))));
    out.push(whole(pad60(ethernet(
        LLDP_MAC,
        MAC_C,
        &[],
        0x88cc,
        &filler(32, 40),
    ))));
    out.push(whole(pad60(ethernet(
        BROADCAST,
        MAC_D,
        &[],
        0x88b5,
        &filler(33, 10),
    ))));
    out.push(whole(pad60(ethernet(
        [0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa],
        MAC_C,
        &[],
        0x88b6,
        &filler(34, 10),
    ))));
    out.push(whole(pad60(ethernet(
        MAC_C,
        MAC_D,
        &[],
        0x9000,
        &[0, 0, 1, 0, 0, 0, 0, 0],
    )))); // loopback reply

    // ARP and RARP.
    let arp_req = arp(1, MAC_A, LAN4, [0; 6], Ipv4Addr::new(192, 168, 1, 1));
    out.push(whole(pad60(ethernet(
        BROADCAST,
        MAC_A,
        &[],
        0x0806,
        &arp_req,
    ))));
    let arp_rep = arp(2, MAC_ROUTER, Ipv4Addr::new(192, 168, 1, 1), MAC_A, LAN4);
    out.push(whole(pad60(ethernet(
        MAC_A,
        MAC_ROUTER,
        &[],
        0x0806,
        &arp_rep,
    ))));
    let garp = arp(1, MAC_B, PUB4, BROADCAST, PUB4);
    out.push(whole(pad60(ethernet(BROADCAST, MAC_B, &[], 0x0806, &garp))));
    let rarp_req = arp(3, MAC_C, ZERO4, MAC_C, ZERO4);
    out.push(whole(pad60(ethernet(
        BROADCAST,
        MAC_C,
        &[],
        0x8035,
        &rarp_req,
    ))));
    let rarp_rep = arp(4, MAC_D, PUB4, MAC_C, Ipv4Addr::new(192, 168, 0, 77));
    out.push(whole(pad60(ethernet(MAC_C, MAC_D, &[], 0x8035, &rarp_rep))));

    // VLAN tags: single 802.1Q with several ids (priority bits on some),
    // and double tags with each outer TPID.
    let tcp_v4 = &v4s[0];
    let udp_v4 = &v4s[15];
    let tcp_v6 = &v6s[0];
    for (i, vid) in [0u16, 1, 10, 100, 4095].into_iter().enumerate() {
        let tci = vid | ((i as u16 % 2) << 13);
        out.push(whole(eth_ip(tcp_v4, &[(0x8100, tci)])));
        out.push(whole(eth_ip(udp_v4, &[(0x8100, tci)])));
        out.push(whole(eth_ip(tcp_v6, &[(0x8100, tci)])));
        out.push(whole(pad60(ethernet(
            BROADCAST,
            MAC_A,
            &[(0x8100, tci)],
            0x0806,
            &arp_req,
        ))));
    }
    for outer in [0x88a8u16, 0x9100, 0x8100] {
        out.push(whole(eth_ip(tcp_v4, &[(outer, 100), (0x8100, 10)])));
        out.push(whole(eth_ip(tcp_v6, &[(outer, 100), (0x8100, 10)])));
        out.push(whole(pad60(ethernet(
            BROADCAST,
            MAC_A,
            &[(outer, 1), (0x8100, 4095)],
            0x0806,
            &arp_req,
        ))));
    }

    // MPLS: 1-3 labels over IPv4 and IPv6 (labels 100 and 123 as in tests).
    for labels in [&[100u32][..], &[123, 100], &[16, 123, 1048575]] {
        out.push(whole(pad60(ethernet(
            MAC_B,
            MAC_A,
            &[],
            0x8847,
            &mpls(labels, 64, tcp_v4),
        ))));
        out.push(whole(pad60(ethernet(
            MAC_B,
            MAC_A,
            &[],
            0x8847,
            &mpls(labels, 64, tcp_v6),
        ))));
    }
    out.push(whole(pad60(ethernet(
        MAC_B,
        MAC_A,
        &[(0x8100, 10)],
        0x8847,
        &mpls(&[100], 64, udp_v4),
    ))));
    out.push(whole(pad60(ethernet(
        BROADCAST,
        MAC_A,
        &[],
        0x8848,
        &mpls(&[200], 1, udp_v4),
    ))));

    // PPPoE: discovery (PADI, PADO) and sessions carrying IPv4/IPv6 and LCP.
    let service_tag = [0x01, 0x01, 0, 0];
    out.push(whole(pad60(ethernet(
        BROADCAST,
        MAC_A,
        &[],
        0x8863,
        &pppoe(0x09, 0, &service_tag),
    ))));
    out.push(whole(pad60(ethernet(
        MAC_A,
        MAC_B,
        &[],
        0x8863,
        &pppoe(0x07, 0, &service_tag),
    ))));
    out.push(whole(pad60(ethernet(
        MAC_B,
        MAC_A,
        &[],
        0x8864,
        &pppoe(0, 0x0011, &ppp(0x0021, tcp_v4)),
    ))));
    out.push(whole(pad60(ethernet(
        MAC_B,
        MAC_A,
        &[],
        0x8864,
        &pppoe(0, 0x0011, &ppp(0x0021, udp_v4)),
    ))));
    out.push(whole(pad60(ethernet(
        MAC_B,
        MAC_A,
        &[],
        0x8864,
        &pppoe(0, 0x0011, &ppp(0x0057, tcp_v6)),
    ))));
    out.push(whole(pad60(ethernet(
        MAC_B,
        MAC_A,
        &[],
        0x8864,
        &pppoe(0, 0x0011, &ppp(0xc021, &[1, 1, 0, 4])),
    )))); // LCP
    out.push(whole(pad60(ethernet(
        MAC_B,
        MAC_A,
        &[],
        0x8864,
        &pppoe(0, 0x0011, &ppp(0x0281, &mpls(&[123], 64, tcp_v4))),
    ))));

    // Geneve and VXLAN with inner Ethernet frames (IPv4 TCP, ARP, IPv6).
    let inners = [
        eth_ip(&v4s[3], &[]),
        pad60(ethernet(BROADCAST, MAC_C, &[], 0x0806, &arp_req)),
        eth_ip(&v6s[2], &[]),
        eth_ip(tcp_v4, &[(0x8100, 10)]),
    ];
    for (i, inner) in inners.iter().enumerate() {
        let vni = 100 + i as u32;
        out.push(whole(eth_ip(
            &udp4(GW1, GW2, 50000 + i as u16, 6081, &geneve(vni, inner)),
            &[],
        )));
        out.push(whole(eth_ip(
            &udp4(GW2, GW1, 50100 + i as u16, 4789, &vxlan(vni, inner)),
            &[],
        )));
    }
    out.push(whole(eth_ip(
        &udp6(DOC1, DOC2, 50200, 6081, &geneve(7, &inners[0])),
        &[],
    )));

    // Truncated frames (caplen < wire length) at the points filters load:
    // inside the Ethernet header, the VLAN tag, the IP header, the ports,
    // the TCP flags; then runts, whose wire length is short too.
    let tcp4_frame = eth_ip(tcp_v4, &[]);
    for caplen in [
        1, 6, 12, 13, 14, 15, 23, 24, 26, 30, 33, 34, 35, 36, 37, 38, 46, 47, 48,
    ] {
        out.push(cut(&tcp4_frame, caplen));
    }
    let rr_frame = eth_ip(&v4s[42], &[]); // IHL 15: ports at 74
    for caplen in [34, 54, 74, 76, 78] {
        out.push(cut(&rr_frame, caplen));
    }
    let udp4_frame = eth_ip(udp_v4, &[]);
    for caplen in [34, 36, 38, 42] {
        out.push(cut(&udp4_frame, caplen));
    }
    let tcp6_frame = eth_ip(tcp_v6, &[]);
    for caplen in [14, 19, 20, 21, 22, 30, 38, 53, 54, 55, 56, 58, 67, 68] {
        out.push(cut(&tcp6_frame, caplen));
    }
    let hbh_frame = eth_ip(&v6s[19], &[]); // hop-by-hop before UDP
    for caplen in [54, 55, 56, 62, 64, 66] {
        out.push(cut(&hbh_frame, caplen));
    }
    let vlan_frame = eth_ip(tcp_v4, &[(0x8100, 10)]);
    for caplen in [13, 14, 15, 16, 17, 18, 27, 38, 40, 42] {
        out.push(cut(&vlan_frame, caplen));
    }
    let qinq_frame = eth_ip(tcp_v4, &[(0x88a8, 100), (0x8100, 10)]);
    for caplen in [18, 20, 21, 22, 46] {
        out.push(cut(&qinq_frame, caplen));
    }
    let mpls_frame = ethernet(MAC_B, MAC_A, &[], 0x8847, &mpls(&[16, 123], 64, tcp_v4));
    for caplen in [15, 18, 20, 22, 40] {
        out.push(cut(&mpls_frame, caplen));
    }
    let arp_frame = pad60(ethernet(BROADCAST, MAC_A, &[], 0x0806, &arp_req));
    for caplen in [20, 28, 38] {
        out.push(cut(&arp_frame, caplen));
    }
    let pppoe_frame = ethernet(
        MAC_B,
        MAC_A,
        &[],
        0x8864,
        &pppoe(0, 0x0011, &ppp(0x0021, tcp_v4)),
    );
    for caplen in [18, 21, 30] {
        out.push(cut(&pppoe_frame, caplen));
    }
    let geneve_frame = eth_ip(&udp4(GW1, GW2, 50000, 6081, &geneve(100, &inners[0])), &[]);
    for caplen in [44, 50, 64, 78] {
        out.push(cut(&geneve_frame, caplen));
    }
    for runt in [
        vec![0xff; 6],
        tcp4_frame[..13].to_vec(),
        tcp4_frame[..14].to_vec(),
        tcp4_frame[..30].to_vec(),
        vlan_frame[..16].to_vec(),
    ] {
        out.push(whole(runt));
    }
    out
}

/// The raw-IP capture: every catalog packet, then truncated ones.
fn raw_packets() -> Vec<Frame> {
    let v4s = ipv4_catalog();
    let v6s = ipv6_catalog();
    let mut out: Vec<Frame> = v4s.iter().chain(&v6s).map(|p| whole(p.clone())).collect();
    for caplen in [1, 9, 10, 19, 20, 21, 22, 23, 24, 33, 34] {
        out.push(cut(&v4s[0], caplen));
    }
    for caplen in [6, 7, 24, 39, 40, 42, 44, 53, 54] {
        out.push(cut(&v6s[0], caplen));
    }
    for caplen in [40, 42, 48] {
        out.push(cut(&v6s[19], caplen));
    }
    out
}

/// (packet type, ARPHRD type, link address, protocol, payload, ifindex)
type CookedItem = (u16, u16, Vec<u8>, u16, Vec<u8>, u32);

/// The Linux cooked captures: directions, packet types, ARP, loopback.
fn sll_packets(v2: bool) -> Vec<Frame> {
    let v4s = ipv4_catalog();
    let v6s = ipv6_catalog();
    let arp_req = arp(1, MAC_A, LAN4, [0; 6], Ipv4Addr::new(192, 168, 1, 1));
    let mut items: Vec<CookedItem> = Vec::new();
    let ip_picks = [0usize, 1, 3, 4, 5, 15, 16, 17, 19, 27, 28, 31, 36, 44, 46];
    for (n, &i) in ip_picks.iter().enumerate() {
        let ptype = [0u16, 4, 1, 2, 3][n % 5];
        items.push((ptype, 1, MAC_A.to_vec(), 0x0800, v4s[i].clone(), 2));
    }
    for (n, &i) in [0usize, 2, 6, 12, 14, 17, 19, 22, 25, 28]
        .iter()
        .enumerate()
    {
        let ptype = [4u16, 0, 2][n % 3];
        items.push((ptype, 1, MAC_B.to_vec(), 0x86dd, v6s[i].clone(), 3));
    }
    items.push((1, 1, MAC_A.to_vec(), 0x0806, arp_req.clone(), 2));
    items.push((
        4,
        1,
        MAC_ROUTER.to_vec(),
        0x0806,
        arp(2, MAC_ROUTER, Ipv4Addr::new(192, 168, 1, 1), MAC_A, LAN4),
        2,
    ));
    // Loopback: ARPHRD_LOOPBACK, no address, both directions.
    let lo = tcp4(
        Ipv4Addr::LOCALHOST,
        Ipv4Addr::LOCALHOST,
        &Tcp::new(45000, 8080, SYN),
        &[],
    );
    items.push((4, 772, Vec::new(), 0x0800, lo.clone(), 1));
    items.push((0, 772, Vec::new(), 0x0800, lo, 1));
    items.push((0, 772, Vec::new(), 0x86dd, v6s[4].clone(), 1));
    // 802.2 LLC (protocol 4) carrying STP, and a VLAN-tagged frame's payload.
    let mut llc = vec![0x42, 0x42, 0x03];
    llc.extend_from_slice(&stp_bpdu());
    items.push((2, 1, MAC_C.to_vec(), 0x0004, llc, 4));
    let mut tagged = 10u16.to_be_bytes().to_vec();
    tagged.extend_from_slice(&0x0800u16.to_be_bytes());
    tagged.extend_from_slice(&v4s[0]);
    items.push((0, 1, MAC_A.to_vec(), 0x8100, tagged, 5));

    let mut out: Vec<Frame> = items
        .iter()
        .map(|(ptype, hatype, addr, proto, payload, ifindex)| {
            whole(cooked(v2, *ptype, *hatype, addr, *proto, payload, *ifindex))
        })
        .collect();
    // Truncated: inside the cooked header, the IP header, the ports.
    let hdr = if v2 { 20 } else { 16 };
    let tcp = cooked(v2, 0, 1, &MAC_A, 0x0800, &v4s[0], 2);
    for caplen in [
        4,
        hdr - 2,
        hdr - 1,
        hdr,
        hdr + 9,
        hdr + 20,
        hdr + 22,
        hdr + 24,
        hdr + 33,
    ] {
        out.push(cut(&tcp, caplen));
    }
    let tcp6 = cooked(v2, 4, 1, &MAC_B, 0x86dd, &v6s[0], 3);
    for caplen in [hdr + 6, hdr + 40, hdr + 42] {
        out.push(cut(&tcp6, caplen));
    }
    out
}

fn cooked(
    v2: bool,
    ptype: u16,
    hatype: u16,
    addr: &[u8],
    proto: u16,
    payload: &[u8],
    ifindex: u32,
) -> Vec<u8> {
    if v2 {
        sll2(proto, ifindex, hatype, ptype as u8, addr, payload)
    } else {
        sll(ptype, hatype, addr, proto, payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_sized_as_promised() {
        let a = sample_captures();
        let b = sample_captures();
        assert_eq!(a, b);
        let names: Vec<_> = a.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "ethernet.pcap",
                "raw.pcap",
                "linux-sll.pcap",
                "linux-sll2.pcap"
            ]
        );
        let count = |i: usize| a[i].1.packets.len();
        assert!(count(0) >= 200, "ethernet: {}", count(0));
        assert!(count(1) >= 50, "raw: {}", count(1));
        assert!((24..=60).contains(&count(2)), "sll: {}", count(2));
        assert_eq!(count(2), count(3));
        let total: usize = a.iter().map(|(_, c)| file_bytes(c).unwrap().len()).sum();
        assert!(total < 200 * 1024, "{total} bytes");
        for (name, cap) in &a {
            assert!(
                cap.packets
                    .iter()
                    .any(|p| p.data.len() < p.wire_len as usize),
                "{name} has truncated packets"
            );
            assert!(
                cap.packets
                    .iter()
                    .all(|p| p.data.len() <= p.wire_len as usize),
                "{name}"
            );
        }
    }

    #[test]
    fn catalog_indices_used_above_point_where_the_comments_say() {
        let v4s = ipv4_catalog();
        let v6s = ipv6_catalog();
        assert_eq!(v4s[0][9], 6); // TCP SYN to port 80
        assert_eq!(&v4s[0][22..24], &[0, 80]);
        assert_eq!(v4s[15][9], 17); // UDP to port 53
        assert_eq!(&v4s[15][22..24], &[0, 53]);
        assert_eq!(v4s[42][0], 0x4f); // record route: IHL 15
        assert_eq!(v6s[19][6], 0); // hop-by-hop...
        assert_eq!(v6s[19][40], 17); // ...then UDP
        assert_eq!(v6s[0][6], 6);
    }

    /// Every IPv4 header checksum, and TCP/UDP checksums of unfragmented
    /// packets, verify to zero.
    #[test]
    fn checksums_verify() {
        for (i, p) in ipv4_catalog().iter().enumerate() {
            let ihl = usize::from(p[0] & 0x0f) * 4;
            assert_eq!(internet_checksum(&p[..ihl]), 0, "packet {i}");
            let frag = u16::from_be_bytes([p[6], p[7]]) & 0x3fff;
            if frag == 0 && (p[9] == 6 || p[9] == 17) {
                let seg = &p[ihl..];
                let mut all = p[12..20].to_vec();
                all.extend_from_slice(&[0, p[9]]);
                all.extend_from_slice(&(seg.len() as u16).to_be_bytes());
                all.extend_from_slice(seg);
                assert_eq!(internet_checksum(&all), 0, "packet {i}");
            }
        }
    }
}
