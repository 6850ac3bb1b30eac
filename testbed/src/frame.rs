//! Packet builders for the tests and the sample captures: each returns
//! the bytes of one header plus its payload, with lengths and checksums
//! filled in as a real stack would, so the receiving kernel (and programs
//! under test) treat them as real traffic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{Error, Result};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;

/// IP protocol number of UDP.
const IPPROTO_UDP: u8 = 17;

/// An Ethernet MAC address.
pub type Mac = [u8; 6];

/// TCP flag bits (the 8 bits of byte 13; `AE` is bit 8 of the 16-bit field).
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u16 = 0x01;
    /// SYN.
    pub const SYN: u16 = 0x02;
    /// RST.
    pub const RST: u16 = 0x04;
    /// PSH.
    pub const PSH: u16 = 0x08;
    /// ACK.
    pub const ACK: u16 = 0x10;
    /// URG.
    pub const URG: u16 = 0x20;
    /// ECE.
    pub const ECE: u16 = 0x40;
    /// CWR.
    pub const CWR: u16 = 0x80;
    /// AE (formerly NS), in the data-offset byte.
    pub const AE: u16 = 0x100;
}

/// The RFC 1071 checksum of `data`: the ones' complement of the ones'
/// complement sum of its 16-bit big-endian words (an odd last byte is
/// padded with zero). Over a header whose checksum field is filled in, the
/// result is 0 when the checksum is right.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// CRC-32C (Castagnoli), as SCTP uses it.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            p.extend_from_slice(&v6_bytes(src));
            p.extend_from_slice(&v6_bytes(dst));
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
        }
    }
    p
}

fn v6_bytes(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The checksum of a transport `segment` (its checksum field zero) over
/// the pseudo header of `src` -> `dst`. UDP sends a computed 0 as 0xffff,
/// since 0 means "no checksum" (RFC 768).
fn l4_checksum(segment: &[u8], src: IpAddr, dst: IpAddr, proto: u8) -> u16 {
    let mut all = pseudo_header(src, dst, proto, segment.len());
    all.extend_from_slice(segment);
    let sum = internet_checksum(&all);
    if proto == IPPROTO_UDP && sum == 0 {
        0xffff
    } else {
        sum
    }
}

/// Fills the 16-bit checksum at `at` over the pseudo header and `segment`.
fn fill_l4_checksum(segment: &mut [u8], at: usize, src: IpAddr, dst: IpAddr, proto: u8) {
    let sum = l4_checksum(segment, src, dst, proto);
    segment[at..at + 2].copy_from_slice(&sum.to_be_bytes());
}

/// The UDP checksum of `segment` (UDP header with a zero checksum field,
/// then the payload) sent from `src` to `dst`, over the IPv4 pseudo-header.
pub fn udp4_checksum(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> u16 {
    l4_checksum(segment, src.into(), dst.into(), IPPROTO_UDP)
}

/// An Ethernet II frame, with 802.1Q/802.1ad tags `(tpid, tci)` outermost first.
pub fn ethernet(
    dst: Mac,
    src: Mac,
    tags: &[(u16, u16)],
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * tags.len() + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for &(tpid, tci) in tags {
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&tci.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An untagged Ethernet II frame: destination, source, EtherType, payload.
/// No padding to 60 bytes and no FCS (the kernel neither needs nor adds
/// them on veth).
pub fn ethernet_frame(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    ethernet(dst, src, &[], ethertype, payload)
}

/// An Ethernet + IPv4 + UDP frame from `src_mac`/`src_ip`/`sport` to
/// `dst_mac`/`dst_ip`/`dport` (note: source first everywhere, unlike
/// [`ethernet_frame`], which follows the wire order).
///
/// The IPv4 header has no options, ID 0, Don't Fragment, TTL 64; both the
/// header checksum and the UDP checksum are filled in. Fails if the payload
/// does not fit in one IPv4 packet.
pub fn udp4_frame(
    src_mac: Mac,
    dst_mac: Mac,
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Result<Vec<u8>> {
    // The IPv4 total length (header, UDP header, payload) is 16 bits.
    if 20 + 8 + payload.len() > usize::from(u16::MAX) {
        return Err(Error::Invalid(format!(
            "UDP payload of {} bytes does not fit in an IPv4 packet",
            payload.len()
        )));
    }
    let datagram = udp(src_ip.into(), dst_ip.into(), sport, dport, payload);
    let ip = Ipv4 {
        id: 0,
        ..Ipv4::new(src_ip, dst_ip, IPPROTO_UDP)
    };
    Ok(ethernet_frame(
        dst_mac,
        src_mac,
        ETHERTYPE_IPV4,
        &ip.build(&datagram),
    ))
}

/// An IEEE 802.3 frame (length field) carrying an LLC header and `payload`.
pub fn ieee8023_llc(dst: Mac, src: Mac, dsap: u8, ssap: u8, ctrl: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&((payload.len() + 3) as u16).to_be_bytes());
    f.extend_from_slice(&[dsap, ssap, ctrl]);
    f.extend_from_slice(payload);
    f
}

/// A SNAP header (after LLC AA AA 03): OUI and protocol id, then `payload`.
pub fn snap(oui: [u8; 3], pid: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = oui.to_vec();
    s.extend_from_slice(&pid.to_be_bytes());
    s.extend_from_slice(payload);
    s
}

/// Pads a frame with zeros to Ethernet's 60-byte minimum (without FCS).
pub fn pad60(mut frame: Vec<u8>) -> Vec<u8> {
    if frame.len() < 60 {
        frame.resize(60, 0);
    }
    frame
}

/// An IPv4 header's settings; [`Ipv4::build`] adds the payload.
#[derive(Debug, Clone)]
pub struct Ipv4 {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol number.
    pub proto: u8,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub id: u16,
    /// Type of service byte.
    pub tos: u8,
    /// Flags (DF 0x4000, MF 0x2000) and fragment offset in 8-byte units.
    pub frag: u16,
    /// Options, padded to a multiple of 4 bytes with EOL.
    pub options: Vec<u8>,
}

impl Ipv4 {
    /// Defaults: TTL 64, DF, no options.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, proto: u8) -> Ipv4 {
        Ipv4 {
            src,
            dst,
            proto,
            ttl: 64,
            id: 0x1234,
            tos: 0,
            frag: 0x4000,
            options: Vec::new(),
        }
    }

    /// The header with `payload` after it; total length and checksum filled.
    pub fn build(&self, payload: &[u8]) -> Vec<u8> {
        let mut options = self.options.clone();
        while !options.len().is_multiple_of(4) {
            options.push(0);
        }
        let hlen = 20 + options.len();
        let mut h = vec![0x40 | (hlen / 4) as u8, self.tos];
        h.extend_from_slice(&((hlen + payload.len()) as u16).to_be_bytes());
        h.extend_from_slice(&self.id.to_be_bytes());
        h.extend_from_slice(&self.frag.to_be_bytes());
        h.extend_from_slice(&[self.ttl, self.proto, 0, 0]);
        h.extend_from_slice(&self.src.octets());
        h.extend_from_slice(&self.dst.octets());
        h.extend_from_slice(&options);
        let sum = internet_checksum(&h);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }
}

/// An IPv6 header with `payload` (extension headers included) after it.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hop_limit: u8, payload: &[u8]) -> Vec<u8> {
    ipv6_flow(src, dst, next, hop_limit, 0, 0, payload)
}

/// [`ipv6`] with a traffic class and flow label.
pub fn ipv6_flow(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    hop_limit: u8,
    class: u8,
    flow: u32,
    payload: &[u8],
) -> Vec<u8> {
    let first = (6u32 << 28) | (u32::from(class) << 20) | (flow & 0xf_ffff);
    let mut h = first.to_be_bytes().to_vec();
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, hop_limit]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h.extend_from_slice(payload);
    h
}

/// A hop-by-hop or destination options header: `options` padded with PadN
/// to a multiple of 8 bytes, then `rest`.
pub fn ip6_options(next: u8, options: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(options);
    let pad = (8 - h.len() % 8) % 8;
    match pad {
        0 => {}
        1 => h.push(0), // Pad1
        n => {
            h.extend_from_slice(&[1, (n - 2) as u8]);
            h.resize(h.len() + n - 2, 0);
        }
    }
    h[1] = (h.len() / 8 - 1) as u8;
    h.extend_from_slice(rest);
    h
}

/// A routing header of type `kind` with `segments_left` and `addresses`.
pub fn ip6_routing(
    next: u8,
    kind: u8,
    segments_left: u8,
    addresses: &[Ipv6Addr],
    rest: &[u8],
) -> Vec<u8> {
    let mut h = vec![
        next,
        (addresses.len() * 2) as u8,
        kind,
        segments_left,
        0,
        0,
        0,
        0,
    ];
    for a in addresses {
        h.extend_from_slice(&a.octets());
    }
    h.extend_from_slice(rest);
    h
}

/// A fragment header: offset in 8-byte units, more-fragments flag, id.
pub fn ip6_fragment(next: u8, offset: u16, more: bool, id: u32, rest: &[u8]) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(&((offset << 3) | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(rest);
    h
}

/// An authentication header with a 12-byte ICV (for IPv4 or IPv6).
pub fn ah(next: u8, spi: u32, seq: u32, rest: &[u8]) -> Vec<u8> {
    let mut h = vec![next, 4, 0, 0]; // (24 bytes / 4) - 2
    h.extend_from_slice(&spi.to_be_bytes());
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(&[0xa5; 12]);
    h.extend_from_slice(rest);
    h
}

/// An ESP packet (opaque encrypted payload).
pub fn esp(spi: u32, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut h = spi.to_be_bytes().to_vec();
    h.extend_from_slice(&seq.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// A TCP segment's settings; [`Tcp::build`] adds the payload and checksum.
#[derive(Debug, Clone)]
pub struct Tcp {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags, see [`tcp_flags`].
    pub flags: u16,
    /// Window.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Options, padded with NOPs... at the front, to a multiple of 4.
    pub options: Vec<u8>,
}

impl Tcp {
    /// A segment with the given ports and flags, window 64240, no options.
    pub fn new(sport: u16, dport: u16, flags: u16) -> Tcp {
        Tcp {
            sport,
            dport,
            seq: 0x1000_0000 ^ (u32::from(sport) << 8) ^ u32::from(dport),
            ack: if flags & tcp_flags::ACK != 0 {
                0x2000_0001
            } else {
                0
            },
            flags,
            window: 64240,
            urgent: 0,
            options: Vec::new(),
        }
    }

    /// The segment with `payload`, checksummed for `src` -> `dst`.
    pub fn build(&self, src: IpAddr, dst: IpAddr, payload: &[u8]) -> Vec<u8> {
        let mut options = self.options.clone();
        while !options.len().is_multiple_of(4) {
            options.insert(0, 1); // NOP
        }
        let doff = (20 + options.len()) / 4;
        let mut s = Vec::new();
        s.extend_from_slice(&self.sport.to_be_bytes());
        s.extend_from_slice(&self.dport.to_be_bytes());
        s.extend_from_slice(&self.seq.to_be_bytes());
        s.extend_from_slice(&self.ack.to_be_bytes());
        s.push(((doff as u8) << 4) | ((self.flags >> 8) as u8 & 1));
        s.push(self.flags as u8);
        s.extend_from_slice(&self.window.to_be_bytes());
        s.extend_from_slice(&[0, 0]);
        s.extend_from_slice(&self.urgent.to_be_bytes());
        s.extend_from_slice(&options);
        s.extend_from_slice(payload);
        fill_l4_checksum(&mut s, 16, src, dst, 6);
        s
    }
}

/// Common TCP options: MSS 1460, SACK permitted, timestamps, window scale 7.
pub fn tcp_syn_options() -> Vec<u8> {
    let mut o = vec![2, 4, 0x05, 0xb4, 4, 2, 8, 10];
    o.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    o.extend_from_slice(&0u32.to_be_bytes());
    o.extend_from_slice(&[1, 3, 3, 7]);
    o
}

/// A UDP datagram checksummed for `src` -> `dst`.
pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(payload);
    fill_l4_checksum(&mut s, 6, src, dst, 17);
    s
}

/// An ICMP (IPv4) message: type, code, the 4 bytes after the checksum, data.
pub fn icmp4(kind: u8, code: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(&rest);
    m.extend_from_slice(data);
    let sum = internet_checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

/// An ICMPv6 message checksummed for `src` -> `dst`.
pub fn icmp6(src: Ipv6Addr, dst: Ipv6Addr, kind: u8, code: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![kind, code, 0, 0];
    m.extend_from_slice(body);
    fill_l4_checksum(&mut m, 2, IpAddr::V6(src), IpAddr::V6(dst), 58);
    m
}

/// An IGMPv1/v2 message.
pub fn igmp(kind: u8, max_resp: u8, group: Ipv4Addr) -> Vec<u8> {
    let mut m = vec![kind, max_resp, 0, 0];
    m.extend_from_slice(&group.octets());
    let sum = internet_checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

/// An SCTP packet with one chunk, CRC32c filled.
pub fn sctp(sport: u16, dport: u16, vtag: u32, chunk_type: u8, chunk_body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&sport.to_be_bytes());
    m.extend_from_slice(&dport.to_be_bytes());
    m.extend_from_slice(&vtag.to_be_bytes());
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&[chunk_type, 0]);
    m.extend_from_slice(&((4 + chunk_body.len()) as u16).to_be_bytes());
    m.extend_from_slice(chunk_body);
    while !m.len().is_multiple_of(4) {
        m.push(0);
    }
    let crc = crc32c(&m);
    m[8..12].copy_from_slice(&crc.to_le_bytes());
    m
}

/// A PIMv2 message of `kind` with `body`.
pub fn pim(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0x20 | kind, 0, 0, 0];
    m.extend_from_slice(body);
    let sum = internet_checksum(&m);
    m[2..4].copy_from_slice(&sum.to_be_bytes());
    m
}

/// A VRRPv2 advertisement for `vrid` with `priority` and virtual addresses.
pub fn vrrp2(vrid: u8, priority: u8, addrs: &[Ipv4Addr]) -> Vec<u8> {
    let mut m = vec![0x21, vrid, priority, addrs.len() as u8, 0, 1, 0, 0];
    for a in addrs {
        m.extend_from_slice(&a.octets());
    }
    m.extend_from_slice(&[0; 8]); // authentication data
    let sum = internet_checksum(&m);
    m[6..8].copy_from_slice(&sum.to_be_bytes());
    m
}

/// A VRRPv3 advertisement (RFC 5798) for IPv6, checksummed for `src` -> `dst`.
pub fn vrrp3_v6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    vrid: u8,
    priority: u8,
    addrs: &[Ipv6Addr],
) -> Vec<u8> {
    let mut m = vec![0x31, vrid, priority, addrs.len() as u8, 0, 100, 0, 0];
    for a in addrs {
        m.extend_from_slice(&a.octets());
    }
    fill_l4_checksum(&mut m, 6, IpAddr::V6(src), IpAddr::V6(dst), 112);
    m
}

/// A GRE packet (no checksum, key or sequence) carrying `proto`.
pub fn gre(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 0];
    m.extend_from_slice(&proto.to_be_bytes());
    m.extend_from_slice(payload);
    m
}

/// An ARP/RARP packet for Ethernet and IPv4.
pub fn arp(op: u16, sha: Mac, spa: Ipv4Addr, tha: Mac, tpa: Ipv4Addr) -> Vec<u8> {
    let mut m = vec![0, 1, 8, 0, 6, 4];
    m.extend_from_slice(&op.to_be_bytes());
    m.extend_from_slice(&sha);
    m.extend_from_slice(&spa.octets());
    m.extend_from_slice(&tha);
    m.extend_from_slice(&tpa.octets());
    m
}

/// An MPLS label stack (bottom-of-stack bit on the last) before `payload`.
pub fn mpls(labels: &[u32], ttl: u8, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    for (i, &label) in labels.iter().enumerate() {
        let bos = u32::from(i + 1 == labels.len());
        let word = (label << 12) | (bos << 8) | u32::from(ttl);
        m.extend_from_slice(&word.to_be_bytes());
    }
    m.extend_from_slice(payload);
    m
}

/// A PPPoE header (version/type 1/1) with `code`, `session` and `payload`.
pub fn pppoe(code: u8, session: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![0x11, code];
    m.extend_from_slice(&session.to_be_bytes());
    m.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    m.extend_from_slice(payload);
    m
}

/// A PPP frame body: protocol and payload (as carried in PPPoE sessions).
pub fn ppp(proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = proto.to_be_bytes().to_vec();
    m.extend_from_slice(payload);
    m
}

/// A Geneve header (no options) for an inner Ethernet frame.
pub fn geneve(vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 0, 0x65, 0x58];
    m.extend_from_slice(&(vni << 8).to_be_bytes());
    m.extend_from_slice(inner);
    m
}

/// A VXLAN header (I flag set) for an inner Ethernet frame.
pub fn vxlan(vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut m = vec![0x08, 0, 0, 0];
    m.extend_from_slice(&(vni << 8).to_be_bytes());
    m.extend_from_slice(inner);
    m
}

/// A Linux cooked (SLL v1) header before `payload`.
pub fn sll(pkttype: u16, hatype: u16, addr: &[u8], proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = pkttype.to_be_bytes().to_vec();
    m.extend_from_slice(&hatype.to_be_bytes());
    m.extend_from_slice(&(addr.len() as u16).to_be_bytes());
    let mut a = [0u8; 8];
    let n = addr.len().min(8);
    a[..n].copy_from_slice(&addr[..n]);
    m.extend_from_slice(&a);
    m.extend_from_slice(&proto.to_be_bytes());
    m.extend_from_slice(payload);
    m
}

/// A Linux cooked v2 (SLL2) header before `payload`.
pub fn sll2(
    proto: u16,
    ifindex: u32,
    hatype: u16,
    pkttype: u8,
    addr: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut m = proto.to_be_bytes().to_vec();
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&ifindex.to_be_bytes());
    m.extend_from_slice(&hatype.to_be_bytes());
    m.push(pkttype);
    m.push(addr.len() as u8);
    let mut a = [0u8; 8];
    let n = addr.len().min(8);
    a[..n].copy_from_slice(&addr[..n]);
    m.extend_from_slice(&a);
    m.extend_from_slice(payload);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internet_checksum_of_a_known_header() {
        // The IPv4 header example from Wikipedia's "IPv4 header checksum".
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&h), 0xb861);
        let mut ok = h;
        ok[10..12].copy_from_slice(&[0xb8, 0x61]);
        assert_eq!(internet_checksum(&ok), 0);
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn ipv4_header_fields() {
        let mut ip = Ipv4::new(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2), 6);
        ip.options = vec![0x94, 4, 0, 0];
        let p = ip.build(&[1, 2, 3]);
        assert_eq!(p[0], 0x46);
        assert_eq!(&p[2..4], &[0, 27]);
        assert_eq!(&p[6..8], &[0x40, 0]);
        assert_eq!(internet_checksum(&p[..24]), 0);
    }

    #[test]
    fn mpls_bottom_of_stack_only_on_the_last_label() {
        let m = mpls(&[16, 17], 64, &[]);
        assert_eq!(m, vec![0, 1, 0, 64, 0, 1, 0x11, 64]);
    }

    #[test]
    fn ip6_options_pad_to_eight() {
        let h = ip6_options(6, &[5, 2, 0, 0], &[]); // router alert
        assert_eq!(h, vec![6, 0, 5, 2, 0, 0, 1, 0]);
        let h = ip6_options(17, &[], &[]);
        assert_eq!(h, vec![17, 0, 1, 4, 0, 0, 0, 0]);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    // The expected frames below were built by scapy 2.5.0 (Debian's
    // python3-scapy), not by this code, e.g.:
    //   bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    //     / IP(src="192.0.2.1", dst="198.51.100.7", id=0, flags="DF", ttl=64)
    //     / UDP(sport=40000, dport=53) / Raw(b"testbed checksum")).hex()

    #[test]
    fn udp4_frame_matches_scapy() {
        let frame = udp4_frame(
            SRC_MAC,
            DST_MAC,
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(198, 51, 100, 7),
            40000,
            53,
            b"testbed checksum",
        )
        .unwrap();
        assert_eq!(
            frame,
            hex(concat!(
                "020000000002020000000001080045",
                "00002c0000400040114e85c0000201c63364079c40003500181f00",
                "7465737462656420636865636b73756d"
            ))
        );
    }

    #[test]
    fn udp4_frame_with_odd_payload_matches_scapy() {
        // An odd-length payload exercises the zero padding of the last byte.
        let frame = udp4_frame(
            SRC_MAC,
            DST_MAC,
            Ipv4Addr::new(10, 1, 2, 3),
            Ipv4Addr::new(10, 3, 2, 1),
            1,
            2,
            b"odd",
        )
        .unwrap();
        assert_eq!(
            frame,
            hex(concat!(
                "020000000002020000000001080045",
                "00001f00004000401122c70a0102030a03020100010002000b1469",
                "6f6464"
            ))
        );
    }

    #[test]
    fn udp_checksum_of_zero_is_sent_as_ffff() {
        // Payload 0xebc7 makes the ones' complement sum 0xffff, i.e. a
        // computed checksum of 0; scapy sends 0xffff for it.
        let frame = udp4_frame(
            SRC_MAC,
            DST_MAC,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            7,
            9,
            &[0xeb, 0xc7],
        )
        .unwrap();
        assert_eq!(
            frame,
            hex(concat!(
                "020000000002020000000001080045",
                "00001e00004000401126cd0a0000010a00000200070009000affff",
                "ebc7"
            ))
        );
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2,
        // so the checksum is its complement 220d.
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn filled_in_ipv4_header_verifies_to_zero() {
        let frame = udp4_frame(
            SRC_MAC,
            DST_MAC,
            Ipv4Addr::new(172, 16, 254, 1),
            Ipv4Addr::new(172, 16, 0, 99),
            5000,
            6000,
            &[0xa5; 301],
        )
        .unwrap();
        assert_eq!(internet_checksum(&frame[14..34]), 0);
    }

    #[test]
    fn ethernet_frame_layout() {
        let f = ethernet_frame(DST_MAC, SRC_MAC, 0x88b5, b"xy");
        assert_eq!(
            f,
            [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5, b'x', b'y']
        );
    }

    #[test]
    fn oversized_payload_is_an_error() {
        let payload = vec![0u8; 65536 - 28];
        let err = udp4_frame(
            SRC_MAC,
            DST_MAC,
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::LOCALHOST,
            1,
            1,
            &payload,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        // One byte less is the largest that fits.
        assert!(
            udp4_frame(
                SRC_MAC,
                DST_MAC,
                Ipv4Addr::LOCALHOST,
                Ipv4Addr::LOCALHOST,
                1,
                1,
                &payload[1..]
            )
            .is_ok()
        );
    }
}
