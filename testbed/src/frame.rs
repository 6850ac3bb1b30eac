//! Building Ethernet, IPv4 and UDP frames with correct checksums, so the
//! receiving kernel (and programs under test) treat them as real traffic.

use std::net::Ipv4Addr;

use crate::{Error, Result};

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;

const IPPROTO_UDP: u8 = 17;
const IPV4_HEADER_LEN: usize = 20;
const UDP_HEADER_LEN: usize = 8;

/// An Ethernet II frame: destination, source, EtherType, payload. No
/// padding to 60 bytes and no FCS (the kernel neither needs nor adds them
/// on veth).
pub fn ethernet_frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(14 + payload.len());
    frame.extend_from_slice(&dst);
    frame.extend_from_slice(&src);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An Ethernet + IPv4 + UDP frame from `src_mac`/`src_ip`/`sport` to
/// `dst_mac`/`dst_ip`/`dport` (note: source first everywhere, unlike
/// [`ethernet_frame`], which follows the wire order).
///
/// The IPv4 header has no options, ID 0, Don't Fragment, TTL 64; both the
/// header checksum and the UDP checksum are filled in. Fails if the payload
/// does not fit in one IPv4 packet.
pub fn udp4_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    sport: u16,
    dport: u16,
    payload: &[u8],
) -> Result<Vec<u8>> {
    let too_big = || {
        Error::Invalid(format!(
            "UDP payload of {} bytes does not fit in an IPv4 packet",
            payload.len()
        ))
    };
    let udp_len = u16::try_from(UDP_HEADER_LEN + payload.len()).map_err(|_| too_big())?;
    let total_len = u16::try_from(IPV4_HEADER_LEN + usize::from(udp_len)).map_err(|_| too_big())?;

    let mut udp = Vec::with_capacity(usize::from(udp_len));
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&udp_len.to_be_bytes());
    udp.extend_from_slice(&[0, 0]); // checksum, filled in below
    udp.extend_from_slice(payload);
    let sum = udp4_checksum(src_ip, dst_ip, &udp);
    udp[6..8].copy_from_slice(&sum.to_be_bytes());

    let mut ip = Vec::with_capacity(usize::from(total_len));
    ip.push(0x45); // version 4, header length 5 words
    ip.push(0); // DSCP/ECN
    ip.extend_from_slice(&total_len.to_be_bytes());
    ip.extend_from_slice(&[0, 0]); // identification
    ip.extend_from_slice(&0x4000u16.to_be_bytes()); // Don't Fragment, offset 0
    ip.push(64); // TTL
    ip.push(IPPROTO_UDP);
    ip.extend_from_slice(&[0, 0]); // header checksum, filled in below
    ip.extend_from_slice(&src_ip.octets());
    ip.extend_from_slice(&dst_ip.octets());
    let sum = internet_checksum(&ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    ip.extend_from_slice(&udp);

    Ok(ethernet_frame(dst_mac, src_mac, ETHERTYPE_IPV4, &ip))
}

/// The RFC 1071 checksum of `data`: the ones' complement of the ones'
/// complement sum of its 16-bit big-endian words (an odd last byte is
/// padded with zero). Over a header whose checksum field is filled in, the
/// result is 0 when the checksum is right.
pub fn internet_checksum(data: &[u8]) -> u16 {
    !fold(sum_words(data, 0))
}

/// The UDP checksum of `segment` (UDP header with a zero checksum field,
/// then the payload) sent from `src` to `dst`, over the IPv4 pseudo-header.
/// A computed 0 is sent as 0xffff, since 0 means "no checksum" (RFC 768).
pub fn udp4_checksum(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> u16 {
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = IPPROTO_UDP;
    // The pseudo-header length is 16 bits; longer segments cannot be sent
    // anyway, so truncating here only matters for nonsense input.
    pseudo[10..12].copy_from_slice(&(segment.len() as u16).to_be_bytes());
    let sum = !fold(sum_words(segment, sum_words(&pseudo, 0)));
    if sum == 0 { 0xffff } else { sum }
}

/// Adds the 16-bit big-endian words of `data` to `acc` (no folding yet; a
/// u64 cannot overflow for any slice that fits in memory).
fn sum_words(data: &[u8], acc: u64) -> u64 {
    let mut chunks = data.chunks_exact(2);
    let mut sum = acc;
    for w in &mut chunks {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds the carries of a ones' complement sum into 16 bits.
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

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
