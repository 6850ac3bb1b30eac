//! A corpus of frames for firewall tests: the shapes that make a
//! firewall's header parsing go wrong, deterministic from a seed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::Rng;
use crate::frame::{
    self, Ipv4, Mac, Tcp, ah, arp, esp, ethernet, gre, icmp4, icmp6, ieee8023_llc, igmp,
    ip6_fragment, ip6_options, ip6_routing, ipv6_flow, mpls, pad60, ppp, pppoe, sctp,
    tcp_flags as f, udp,
};

/// EtherTypes.
const IPV4: u16 = 0x0800;
const IPV6: u16 = 0x86dd;
const ARP: u16 = 0x0806;
const VLAN: u16 = 0x8100;
const QINQ: u16 = 0x88a8;

/// IP protocol numbers.
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const ICMPV6: u8 = 58;

/// Source and destination MACs the corpus uses (destination first).
const SRC_MACS: [Mac; 4] = [
    [2, 0, 0, 0, 0, 1],
    [2, 0, 0, 0, 0, 3],
    [2, 0, 0, 0, 0, 4],
    [0x0a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f],
];
const DST_MACS: [Mac; 4] = [
    [2, 0, 0, 0, 0, 2],
    [0xff; 6],
    [0x01, 0x00, 0x5e, 0, 0, 1],
    [0x33, 0x33, 0, 0, 0, 1],
];

/// IPv4 addresses from the documentation ranges and the private ones the
/// example rulesets name.
pub const V4: [[u8; 4]; 14] = [
    [10, 0, 0, 1],
    [10, 0, 0, 2],
    [10, 0, 0, 3],
    [10, 0, 0, 4],
    [10, 10, 1, 1],
    [10, 20, 0, 5],
    [192, 0, 2, 1],
    [192, 0, 2, 200],
    [198, 51, 100, 1],
    [198, 51, 100, 2],
    [198, 51, 100, 7],
    [203, 0, 113, 15],
    [224, 0, 0, 1],
    [255, 255, 255, 255],
];

/// IPv6 addresses: documentation, link-local, multicast, loopback, mapped.
pub const V6: [&str; 8] = [
    "2001:db8::1",
    "2001:db8:1::2",
    "2001:db8::dead",
    "fe80::1",
    "ff02::1",
    "::1",
    "::ffff:10.0.0.1",
    "2001:db8:ffff::7",
];

/// Ports firewall rules name, and a few around their edges.
pub const PORTS: [u16; 18] = [
    0, 22, 23, 25, 53, 67, 80, 123, 443, 1000, 1023, 1024, 2000, 2222, 5000, 5100, 8080, 9999,
];

/// TCP flag combinations, from the usual to the scanners'.
const FLAGS: [u16; 14] = [
    f::SYN,
    f::SYN | f::ACK,
    f::ACK,
    f::PSH | f::ACK,
    f::FIN | f::ACK,
    f::RST,
    f::RST | f::ACK,
    0,
    f::FIN | f::PSH | f::URG,
    f::SYN | f::FIN,
    f::SYN | f::ECE | f::CWR,
    0xff,
    f::AE | f::ACK,
    f::URG | f::ACK,
];

/// A few hundred frames for comparing firewalls, the same for the same
/// `seed`.
///
/// Untagged, 802.1Q-tagged and QinQ (802.1ad outside 802.1Q) frames
/// carrying: IPv4 with and without options, with unusual TTLs and DSCPs,
/// fragments (first, middle and last); IPv6 with hop-by-hop, routing,
/// fragment, destination-options and authentication headers, and first
/// and later fragments; TCP with many flag combinations and the ports
/// rules name (22, 80, 443, the 1000-2000 range, ...), with and without
/// options; UDP; ICMP and ICMPv6 (echo, errors, neighbour discovery);
/// IGMP, GRE, SCTP, ESP; ARP; odd EtherTypes (MPLS, PPPoE, an 802.3
/// length, 0x9100, local experimental); malformed IP headers (a wrong
/// version, a header length below 5, a total length shorter than the
/// header or padded up to 60 bytes); frames cut short inside the IP
/// header, inside extension headers and inside the TCP or UDP header;
/// and random frames.
///
/// Every frame can be sent through a veth: 14 bytes or more, within the
/// MTU of 1,500 (one 802.1Q tag may add 4 bytes), and a frame with an
/// outer 802.1Q or 802.1ad tag has at least 20 bytes, since Linux frees
/// shorter ones before any ingress hook sees them.
pub fn firewall_frames(seed: u64) -> Vec<Vec<u8>> {
    let mut g = Gen {
        rng: Rng::new(seed),
        frames: Vec::new(),
    };
    g.tcp4();
    g.ipv4_shapes();
    g.udp_and_icmp4();
    g.ipv6();
    g.link_layer();
    g.truncated();
    g.random();
    g.frames
}

struct Gen {
    rng: Rng,
    frames: Vec<Vec<u8>>,
}

fn v4(a: [u8; 4]) -> Ipv4Addr {
    a.into()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().expect("a valid address")
}

impl Gen {
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        self.rng.pick(items)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.below(100) < percent
    }

    fn port(&mut self) -> u16 {
        match self.rng.below(4) {
            0 => 1000 + self.rng.below(1001) as u16,
            1 => 1 + self.rng.below(65535) as u16,
            _ => self.pick(&PORTS),
        }
    }

    fn src_v4(&mut self) -> Ipv4Addr {
        v4(self.pick(&V4[..12]))
    }

    fn dst_v4(&mut self) -> Ipv4Addr {
        v4(self.pick(&V4))
    }

    fn payload(&mut self, max: u64) -> Vec<u8> {
        let n = match self.rng.below(4) {
            0 => 0,
            1 => self.rng.below(16),
            2 => self.rng.below(max + 1),
            _ => max,
        };
        self.rng.bytes(n as usize)
    }

    /// Tags for a frame: none (most), one 802.1Q tag, or 802.1ad + 802.1Q.
    fn tags(&mut self) -> Vec<(u16, u16)> {
        let vid = |g: &mut Gen| match g.rng.below(4) {
            0 => 10,
            1 => 20,
            2 => 30,
            _ => 1 + g.rng.below(4094) as u16,
        };
        let tci = |g: &mut Gen| {
            let pcp = g.rng.below(8) as u16;
            let dei = u16::from(g.chance(20));
            (pcp << 13) | (dei << 12) | vid(g)
        };
        match self.rng.below(10) {
            0..=5 => vec![],
            6..=8 => vec![(VLAN, tci(self))],
            _ => vec![(QINQ, tci(self)), (VLAN, tci(self))],
        }
    }

    /// Adds `l3` as a frame of `ethertype` with random MACs and tags.
    fn push(&mut self, ethertype: u16, l3: &[u8]) {
        let tags = self.tags();
        self.push_tagged(&tags, ethertype, l3);
    }

    fn push_tagged(&mut self, tags: &[(u16, u16)], ethertype: u16, l3: &[u8]) {
        let dst = self.pick(&DST_MACS);
        let src = self.pick(&SRC_MACS);
        let mut frame = ethernet(dst, src, tags, ethertype, l3);
        if self.chance(30) {
            frame = pad60(frame);
        }
        self.frames.push(frame);
    }

    /// IPv4 + TCP: the combinations rules name, then random ones.
    fn tcp4(&mut self) {
        for src in &V4[..4] {
            for dport in [22, 80, 443] {
                let sport = self.port();
                let seg = Tcp::new(sport, dport, f::SYN).build(
                    IpAddr::V4(v4(*src)),
                    IpAddr::V4(v4([10, 0, 0, 9])),
                    &[],
                );
                let ip = Ipv4::new(v4(*src), v4([10, 0, 0, 9]), TCP).build(&seg);
                self.push(IPV4, &ip);
            }
        }
        for i in 0..90 {
            let (src, dst) = (self.src_v4(), self.dst_v4());
            let flags = FLAGS[i % FLAGS.len()];
            let mut tcp = Tcp::new(self.port(), self.port(), flags);
            if self.chance(30) {
                tcp.options = frame::tcp_syn_options();
            }
            // At most 1,380 bytes: with 40 bytes of IP options, 20 of TCP
            // options and two tags the frame stays within the MTU.
            let payload = self.payload(1380);
            let seg = tcp.build(src.into(), dst.into(), &payload);
            let mut ip = Ipv4::new(src, dst, TCP);
            ip.ttl = self.pick(&[1, 2, 63, 64, 128, 255]);
            ip.tos = self.pick(&[0, 0, 0xb8, 0xc0, 0x28, 0x01, 0x03]);
            if self.chance(15) {
                ip.options = self.ipv4_options();
            }
            self.push(IPV4, &ip.build(&seg));
        }
    }

    fn ipv4_options(&mut self) -> Vec<u8> {
        match self.rng.below(4) {
            // Router alert.
            0 => vec![0x94, 4, 0, 0],
            // NOP, NOP, record route with room for two addresses.
            1 => vec![1, 1, 7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0],
            // Timestamp, room for three.
            2 => {
                let mut o = vec![0x44, 16, 5, 0];
                o.resize(16, 0);
                o
            }
            // The longest: 40 bytes of NOPs and an end.
            _ => {
                let mut o = vec![1; 39];
                o.push(0);
                o
            }
        }
    }

    /// Fragments, other protocols and malformed IPv4 headers.
    fn ipv4_shapes(&mut self) {
        // Fragments of a TCP segment to port 22 and of a UDP datagram:
        // first (with the transport header), middle and last.
        for proto in [TCP, UDP] {
            let (src, dst) = (self.src_v4(), v4([10, 0, 0, 9]));
            let body = match proto {
                TCP => Tcp::new(40000, 22, f::PSH | f::ACK).build(src.into(), dst.into(), &[7; 64]),
                _ => udp(src.into(), dst.into(), 40000, 53, &[7; 64]),
            };
            for (frag, part) in [
                (0x2000, &body[..24]),
                (0x2000 | 3, &body[24..48]),
                (6, &body[48..]),
            ] {
                let mut ip = Ipv4::new(src, dst, proto);
                ip.frag = frag;
                self.push(IPV4, &ip.build(part));
            }
            // A later fragment whose bytes look like a header to port 22.
            let mut ip = Ipv4::new(src, dst, proto);
            ip.frag = 0x2000 | 100;
            self.push(IPV4, &ip.build(&body[..24]));
        }
        // Other protocols.
        let (src, dst) = (self.src_v4(), self.dst_v4());
        let others: Vec<(u8, Vec<u8>)> = vec![
            (2, igmp(0x16, 0, v4([224, 0, 0, 5]))),
            (47, gre(0x0800, &[0x45, 0, 0, 20])),
            (132, sctp(5000, 80, 1, 1, &[0; 16])),
            (50, esp(0x100, 1, &[9; 32])),
            (
                51,
                ah(
                    TCP,
                    0x200,
                    1,
                    &Tcp::new(1234, 22, f::SYN).build(src.into(), dst.into(), &[]),
                ),
            ),
            (253, vec![1, 2, 3, 4]),
            (TCP, vec![]),
            (UDP, vec![0, 53]),
        ];
        for (proto, body) in others {
            self.push(IPV4, &Ipv4::new(src, dst, proto).build(&body));
        }
        // Malformed headers.
        let good = Ipv4::new(v4([10, 0, 0, 1]), v4([10, 0, 0, 9]), TCP).build(
            &Tcp::new(1234, 22, f::SYN).build(
                IpAddr::V4(v4([10, 0, 0, 1])),
                IpAddr::V4(v4([10, 0, 0, 9])),
                &[],
            ),
        );
        let mut version6 = good.clone();
        version6[0] = 0x65;
        let mut short_ihl = good.clone();
        short_ihl[0] = 0x44;
        let mut tot_below_header = good.clone();
        tot_below_header[2..4].copy_from_slice(&16u16.to_be_bytes());
        let mut tot_header_only = good.clone();
        tot_header_only[2..4].copy_from_slice(&20u16.to_be_bytes());
        let mut tot_beyond_frame = good.clone();
        tot_beyond_frame[2..4].copy_from_slice(&200u16.to_be_bytes());
        for bad in [
            version6,
            short_ihl,
            tot_below_header,
            tot_header_only,
            tot_beyond_frame,
        ] {
            self.push_tagged(&[], IPV4, &bad);
        }
        // IPv6 bytes under the IPv4 EtherType and the other way round.
        let six = frame::ipv6(v6("2001:db8::1"), v6("2001:db8::2"), 59, 64, &[]);
        self.push_tagged(&[], IPV4, &six);
        self.push_tagged(&[], IPV6, &good);
    }

    fn udp_and_icmp4(&mut self) {
        for _ in 0..30 {
            let (src, dst) = (self.src_v4(), self.dst_v4());
            let (sport, dport) = match self.rng.below(4) {
                0 => (self.port(), 53),
                1 => (123, 123),
                2 => (self.port(), 5000 + self.rng.below(102) as u16),
                _ => (self.port(), self.port()),
            };
            let payload = self.payload(1200);
            let mut ip = Ipv4::new(src, dst, UDP);
            ip.ttl = self.pick(&[1, 64, 255]);
            if self.chance(10) {
                ip.options = self.ipv4_options();
            }
            self.push(
                IPV4,
                &ip.build(&udp(src.into(), dst.into(), sport, dport, &payload)),
            );
        }
        let icmps: [(u8, u8); 8] = [
            (8, 0),
            (0, 0),
            (3, 3),
            (3, 1),
            (11, 0),
            (5, 1),
            (13, 0),
            (3, 4),
        ];
        for (kind, code) in icmps {
            for _ in 0..2 {
                let (src, dst) = (self.src_v4(), self.dst_v4());
                let data = self.payload(100);
                let msg = icmp4(kind, code, [0x12, 0x34, 0, 1], &data);
                let mut ip = Ipv4::new(src, dst, ICMP);
                ip.tos = self.pick(&[0, 0xb8, 0xc0]);
                self.push(IPV4, &ip.build(&msg));
            }
        }
    }

    /// IPv6, with extension headers and ICMPv6.
    fn ipv6(&mut self) {
        for i in 0..60 {
            let src = v6(self.pick(&V6));
            let dst = v6(self.pick(&V6));
            let (next, l4) = match self.rng.below(4) {
                0 | 1 => {
                    let tcp = Tcp::new(self.port(), self.port(), FLAGS[i % FLAGS.len()]);
                    let payload = self.payload(1000);
                    (TCP, tcp.build(src.into(), dst.into(), &payload))
                }
                2 => {
                    let (sport, dport) = (self.port(), self.port());
                    let payload = self.payload(1000);
                    (UDP, udp(src.into(), dst.into(), sport, dport, &payload))
                }
                _ => {
                    let (kind, code, body) = self.icmp6_message(dst);
                    (ICMPV6, icmp6(src, dst, kind, code, &body))
                }
            };
            let (next, payload) = self.extension_headers(next, l4);
            let hop = self.pick(&[1, 64, 255]);
            let class = self.pick(&[0, 0xb8, 0xc0]);
            self.push(
                IPV6,
                &ipv6_flow(src, dst, next, hop, class, 0x12345, &payload),
            );
        }
        // Fragments: the first carries the TCP header, a later one data
        // shaped like a header; and a packet that ends with "no next
        // header".
        let (src, dst) = (v6("2001:db8::1"), v6("2001:db8::2"));
        let seg = Tcp::new(40000, 22, f::SYN).build(src.into(), dst.into(), &[5; 40]);
        let first = ip6_fragment(TCP, 0, true, 0xabcd, &seg[..32]);
        let later = ip6_fragment(TCP, 4, false, 0xabcd, &seg[..28]);
        for body in [first, later] {
            self.push(IPV6, &frame::ipv6(src, dst, 44, 64, &body));
        }
        self.push(IPV6, &frame::ipv6(src, dst, 59, 64, &[]));
        self.push(
            IPV6,
            &frame::ipv6(src, dst, 0, 64, &ip6_options(59, &[], &[])),
        );
    }

    fn icmp6_message(&mut self, dst: Ipv6Addr) -> (u8, u8, Vec<u8>) {
        let target = dst.octets();
        match self.rng.below(8) {
            0 => (128, 0, vec![0, 1, 0, 1, 0xaa, 0xbb]),
            1 => (129, 0, vec![0, 1, 0, 1]),
            2 => (135, 0, [&[0u8; 4][..], &target].concat()),
            3 => (136, 0, [&[0x60u8, 0, 0, 0][..], &target].concat()),
            4 => (133, 0, vec![0; 4]),
            5 => (134, 0, vec![64, 0, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0]),
            6 => (1, 4, vec![0; 4 + 48]),
            _ => (128, 1, vec![0, 2, 0, 2]),
        }
    }

    /// Wraps `l4` (protocol `next`) in 0 to 3 extension headers.
    fn extension_headers(&mut self, mut next: u8, mut body: Vec<u8>) -> (u8, Vec<u8>) {
        let count = match self.rng.below(10) {
            0..=4 => 0,
            5..=7 => 1,
            _ => 2 + self.rng.below(2),
        };
        for _ in 0..count {
            let (kind, wrapped) = match self.rng.below(5) {
                0 => (0, ip6_options(next, &[5, 2, 0, 0], &body)),
                1 => (60, ip6_options(next, &[], &body)),
                2 => {
                    let left = self.pick(&[0, 1]);
                    let addr = v6("2001:db8::99");
                    (43, ip6_routing(next, 0, left, &[addr], &body))
                }
                3 => (44, ip6_fragment(next, 0, false, 0x77, &body)),
                _ => (51, ah(next, 0x300, 9, &body)),
            };
            next = kind;
            body = wrapped;
        }
        (next, body)
    }

    /// ARP, odd EtherTypes and link-layer oddities.
    fn link_layer(&mut self) {
        let (src_mac, ip) = (SRC_MACS[0], v4([10, 0, 0, 1]));
        self.push(ARP, &arp(1, src_mac, ip, [0; 6], v4([10, 0, 0, 2])));
        self.push(ARP, &arp(2, src_mac, ip, DST_MACS[0], v4([10, 0, 0, 2])));
        self.push(0x8035, &arp(3, src_mac, ip, src_mac, ip));
        let inner = Ipv4::new(ip, v4([10, 0, 0, 9]), UDP).build(&udp(
            IpAddr::V4(ip),
            IpAddr::V4(v4([10, 0, 0, 9])),
            1,
            53,
            &[],
        ));
        self.push(0x8847, &mpls(&[100, 200], 64, &inner));
        self.push(0x8864, &pppoe(0, 1, &ppp(0x0021, &inner)));
        self.push(0x8863, &pppoe(0x09, 0, &[1, 1, 0, 0]));
        self.push(0x88b5, b"local experimental");
        self.push(0x88cc, &[2, 7, 4, 2, 0, 0, 0, 0, 1]);
        self.push(0x9100, &[0, 10, 8, 0, 0x45, 0]);
        self.push(0xffff, &[0; 8]);
        self.push(0x0000, &[0; 8]);
        self.frames.push(ieee8023_llc(
            [1, 0x80, 0xc2, 0, 0, 0],
            SRC_MACS[1],
            0x42,
            0x42,
            3,
            &[0; 35],
        ));
        // The Ethernet header alone.
        for ethertype in [IPV4, IPV6, ARP] {
            self.frames
                .push(ethernet(DST_MACS[0], SRC_MACS[0], &[], ethertype, &[]));
        }
        // Tags with little or nothing after them (20 bytes is the least
        // that reaches the hooks).
        self.frames.push(ethernet(
            DST_MACS[0],
            SRC_MACS[0],
            &[(VLAN, 10)],
            IPV4,
            &[0x45, 0],
        ));
        self.frames.push(ethernet(
            DST_MACS[0],
            SRC_MACS[0],
            &[(QINQ, 10)],
            VLAN,
            &[0, 20],
        ));
        self.frames.push(ethernet(
            DST_MACS[0],
            SRC_MACS[0],
            &[(QINQ, 10), (VLAN, 20)],
            IPV4,
            &[],
        ));
        // A priority tag (VLAN 0).
        let tcp =
            Tcp::new(1234, 80, f::SYN).build(IpAddr::V4(ip), IpAddr::V4(v4([10, 0, 0, 9])), &[]);
        let packet = Ipv4::new(ip, v4([10, 0, 0, 9]), TCP).build(&tcp);
        self.push_tagged(&[(VLAN, 3 << 13)], IPV4, &packet);
    }

    /// Whole frames cut inside a header.
    fn truncated(&mut self) {
        for _ in 0..40 {
            let tags = self.tags();
            let (src, dst) = (self.src_v4(), self.dst_v4());
            let l2 = 14 + 4 * tags.len();
            let (ethertype, packet, l4_at, l4_len) = match self.rng.below(3) {
                0 => {
                    let mut ip = Ipv4::new(src, dst, TCP);
                    if self.chance(30) {
                        ip.options = self.ipv4_options();
                    }
                    let hl = 20 + ip.options.len().next_multiple_of(4);
                    let seg = Tcp::new(self.port(), self.pick(&[22, 80, 443]), f::SYN).build(
                        src.into(),
                        dst.into(),
                        &[1; 8],
                    );
                    (IPV4, ip.build(&seg), hl, 20)
                }
                1 => {
                    let (s, d) = (v6(self.pick(&V6)), v6(self.pick(&V6)));
                    let seg = Tcp::new(self.port(), 22, f::SYN).build(s.into(), d.into(), &[]);
                    let (next, body) = self.extension_headers(TCP, seg);
                    let headers = body.len() - 20;
                    (IPV6, frame::ipv6(s, d, next, 64, &body), 40 + headers, 20)
                }
                _ => {
                    let d = udp(src.into(), dst.into(), self.port(), 53, &[3; 12]);
                    (IPV4, Ipv4::new(src, dst, UDP).build(&d), 20, 8)
                }
            };
            // Inside the network header(s) or inside the transport header.
            let cut = if self.chance(50) {
                1 + self.rng.below(l4_at as u64 - 1) as usize
            } else {
                l4_at + 1 + self.rng.below(l4_len as u64 - 1) as usize
            };
            let dst_mac = self.pick(&DST_MACS);
            let src_mac = self.pick(&SRC_MACS);
            let mut frame = ethernet(dst_mac, src_mac, &tags, ethertype, &packet);
            frame.truncate((l2 + cut).max(if tags.is_empty() { 14 } else { 20 }));
            self.frames.push(frame);
        }
    }

    /// Random bytes behind plausible and implausible EtherTypes.
    fn random(&mut self) {
        for _ in 0..30 {
            let ethertype = self.pick(&[IPV4, IPV6, ARP, VLAN, QINQ, 0x1234]);
            let len = self.rng.below(200) as usize;
            let mut body = self.rng.bytes(len);
            if ethertype == IPV4 && !body.is_empty() && self.chance(50) {
                body[0] = 0x45;
            }
            if ethertype == IPV6 && !body.is_empty() && self.chance(50) {
                body[0] = 0x60;
            }
            let min = if matches!(ethertype, VLAN | QINQ) {
                6
            } else {
                0
            };
            if body.len() < min {
                body.resize(min, 0);
            }
            let mut frame = self.rng.bytes(12);
            frame.extend_from_slice(&ethertype.to_be_bytes());
            frame.extend_from_slice(&body);
            self.frames.push(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_frames() {
        assert_eq!(firewall_frames(7), firewall_frames(7));
        assert_ne!(firewall_frames(7), firewall_frames(8));
    }

    #[test]
    fn every_frame_can_be_sent_and_reaches_the_hooks() {
        for seed in 0..20 {
            for frame in firewall_frames(seed) {
                let outer = u16::from_be_bytes([frame[12], frame[13]]);
                let tagged = matches!(outer, VLAN | QINQ);
                let max = if outer == VLAN { 1518 } else { 1514 };
                assert!(frame.len() >= 14 && frame.len() <= max, "{frame:02x?}");
                assert!(!tagged || frame.len() >= 20, "{frame:02x?}");
            }
        }
    }

    #[test]
    fn the_corpus_has_every_shape() {
        let frames = firewall_frames(1);
        assert!((300..700).contains(&frames.len()), "{}", frames.len());
        let ethertype = |f: &[u8], at: usize| u16::from_be_bytes([f[at], f[at + 1]]);
        let count = |p: &dyn Fn(&[u8]) -> bool| frames.iter().filter(|f| p(f)).count();
        // Untagged, 802.1Q, QinQ.
        assert!(count(&|f| ethertype(f, 12) == IPV4) > 100);
        assert!(count(&|f| ethertype(f, 12) == VLAN) > 30);
        assert!(count(&|f| ethertype(f, 12) == QINQ && ethertype(f, 16) == VLAN) > 5);
        // IPv4 with options, IPv4 fragments after the first.
        let v4 = |f: &[u8]| ethertype(f, 12) == IPV4 && f.len() >= 34;
        assert!(count(&|f| v4(f) && f[14] > 0x45 && f[14] <= 0x4f) > 5);
        assert!(count(&|f| v4(f) && ethertype(f, 20) & 0x1fff != 0) >= 3);
        // IPv6 with each extension header right after the fixed header.
        for next in [0, 43, 44, 60, 51] {
            let n = count(&|f| ethertype(f, 12) == IPV6 && f.len() > 20 && f[20] == next);
            assert!(n >= 1, "no IPv6 frame with next header {next}");
        }
        // TCP to port 22, whole.
        assert!(count(&|f| v4(f) && f[23] == TCP && f.len() >= 38 && ethertype(f, 36) == 22) > 4);
        // Frames cut short: the IPv4 total length says more than is there.
        assert!(count(&|f| v4(f) && usize::from(ethertype(f, 16)) > f.len() - 14) > 10);
        // ARP and an 802.3 length.
        assert!(count(&|f| ethertype(f, 12) == ARP) >= 3);
        assert!(count(&|f| ethertype(f, 12) < 0x600) >= 1);
    }
}
