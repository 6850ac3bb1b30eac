//! Addresses: IPv4, IPv6 and DECnet parsing (as libpcap's
//! `nametoaddr.c`) and the qualifiers each kind of address allows.

use super::{Atom, Ipv4Proto, R, Side};
use crate::error::CompileError;
use crate::syntax::ast::{Dir, Kind, Proto, Qual, Span};

pub(super) fn shl(v: u32, n: u32) -> u32 {
    v.checked_shl(n).unwrap_or(0)
}

/// `__pcap_atoin`: dotted parts into a left-aligned value and its bit length.
pub(super) fn atoin(s: &str) -> Option<(u32, u32)> {
    let mut addr: u32 = 0;
    let mut len = 0;
    for part in s.split('.') {
        let mut n: u32 = 0;
        for c in part.bytes() {
            if n > 25 {
                return None;
            }
            n = n
                .wrapping_mul(10)
                .wrapping_add(u32::from(c).wrapping_sub(u32::from(b'0')));
        }
        if n > 255 {
            return None;
        }
        addr = (addr << 8) | n;
        len += 8;
    }
    Some((addr, len.min(32)))
}

/// `pcapint_atodn` of libpcap's development branch: `AREA.NODE`, both
/// decimal, the area within 6 bits and the node within 10; `None` for
/// anything else (1.10.3 read `%d.%d`, ignoring what followed and
/// truncating both numbers to their bits).
pub(super) fn atodn(s: &str) -> Option<u16> {
    let (area, node) = s.split_once('.')?;
    let number = |t: &str, max: u32| -> Option<u32> {
        let mut n: u32 = 0;
        for c in t.bytes() {
            let d = char::from(c).to_digit(10)?;
            n = n * 10 + d;
            if n > max {
                return None;
            }
        }
        (!t.is_empty()).then_some(n)
    };
    let area = number(area, DECNET_AREA_MAX)?;
    let node = number(node, DECNET_NODE_MAX)?;
    Some((area << 10 | node) as u16)
}

/// The largest DECnet area (6 bits).
pub(crate) const DECNET_AREA_MAX: u32 = 63;
/// The largest DECnet node number (10 bits).
pub(crate) const DECNET_NODE_MAX: u32 = 1023;

/// `decnet` with a qualifier other than `host` (`gen_dnhost`, `gen_mcode`,
/// `gen_scode`): "'decnet' is not a valid qualifier for 'net'". A newer
/// check where libpcap 1.10.3 compiled the filter (`newer`).
pub(super) fn decnet_qual(kind: Kind, newer: bool, span: Span) -> CompileError {
    let k = match kind {
        Kind::Net => "net",
        Kind::Port => "port",
        Kind::PortRange => "portrange",
        Kind::Gateway => "gateway",
        Kind::Proto => "proto",
        Kind::ProtoChain => "protochain",
        Kind::Default | Kind::Host => "host",
    };
    let m = format!("'decnet' is not a valid qualifier for '{k}'");
    if newer {
        CompileError::newer(m, span)
    } else {
        CompileError::new(m, span)
    }
}

/// A DECnet address written as a number (`decnet host 1025`): libpcap's
/// development branch refuses every such number, 1.10.3 took one as the
/// 16-bit address it fits in (and compared wider ones with 16-bit
/// fields, never matching).
pub(super) fn decnet_number(q: Qual, n: u32, span: Span) -> R<Atom> {
    if !matches!(q.kind, Kind::Default | Kind::Host) {
        return Err(decnet_qual(q.kind, true, span));
    }
    Err(CompileError::newer(
        format!("invalid DECnet address '{n}'"),
        span,
    ))
}

/// A DECnet address written `AREA.NODE` (the scanner's dotted number).
pub(super) fn decnet_dotted(q: Qual, s: &str, span: Span) -> R<Atom> {
    if !matches!(q.kind, Kind::Default | Kind::Host) {
        return Err(decnet_qual(q.kind, true, span));
    }
    let addr = atodn(s)
        .ok_or_else(|| CompileError::newer(format!("invalid DECnet address '{s}'"), span))?;
    decnet(q.dir, addr, span)
}

/// The side of an IP or DECnet address test: no 802.11 qualifiers.
pub(super) fn addr_dir(dir: Dir, span: Span) -> R<Side> {
    Side::of(dir).ok_or_else(|| {
        let m = match dir {
            Dir::Addr(n) => format!(
                "'addr{n}' and 'address{n}' are not valid qualifiers for addresses other than 802.11 MAC addresses"
            ),
            Dir::Ra => {
                "'ra' is not a valid qualifier for addresses other than 802.11 MAC addresses".into()
            }
            // Dir::Ta, the only other direction Side::of refuses.
            _ => {
                "'ta' is not a valid qualifier for addresses other than 802.11 MAC addresses".into()
            }
        };
        CompileError::new(m, span)
    })
}

/// The side of an Ethernet address test: the 802.11 qualifiers need
/// 802.11 headers.
pub(super) fn ether_dir(dir: Dir, span: Span) -> R<Side> {
    Side::of(dir).ok_or_else(|| {
        let m = match dir {
            Dir::Addr(n) => format!(
                "'addr{n}' and 'address{n}' are only supported on 802.11 with 802.11 headers"
            ),
            Dir::Ra => "'ra' is only supported on 802.11 with 802.11 headers".into(),
            // Dir::Ta, the only other direction Side::of refuses.
            _ => "'ta' is only supported on 802.11 with 802.11 headers".into(),
        };
        CompileError::new(m, span)
    })
}

/// A DECnet address test.
fn decnet(dir: Dir, addr: u16, span: Span) -> R<Atom> {
    Ok(Atom::DecnetHost {
        dir: addr_dir(dir, span)?,
        addr,
    })
}

/// `gen_host` for an IPv4 address.
pub(super) fn host4(q: Qual, addr: u32, mask: u32, span: Span) -> R<Atom> {
    use Proto::*;
    let ipv4 = |proto: Option<Ipv4Proto>| {
        Ok(Atom::Ipv4Host {
            proto,
            dir: addr_dir(q.dir, span)?,
            addr: addr & mask,
            mask,
        })
    };
    let what = if q.kind == Kind::Net { "net" } else { "host" };
    let msg = match q.proto {
        None => return ipv4(None),
        Some(Ip) => return ipv4(Some(Ipv4Proto::Ip)),
        Some(Arp) => return ipv4(Some(Ipv4Proto::Arp)),
        Some(Rarp) => return ipv4(Some(Ipv4Proto::Rarp)),
        // The callers send DECnet qualifiers to `decnet_*`.
        Some(Decnet) => return Err(decnet_qual(q.kind, false, span)),
        Some(Link) => format!("link-layer modifier applied to {what}"),
        Some(Ip6) => "'ip6' modifier applied to ip host".into(),
        Some(Atalk) => "AppleTalk host filtering not implemented".into(),
        Some(Lat) => "LAT host filtering not implemented".into(),
        Some(Sca) => "SCA host filtering not implemented".into(),
        Some(Moprc) => "MOPRC host filtering not implemented".into(),
        Some(Mopdl) => "MOPDL host filtering not implemented".into(),
        Some(Aarp) => "AARP host filtering not implemented".into(),
        Some(Iso) => "ISO host filtering not implemented".into(),
        Some(Ipx) => "IPX host filtering not implemented".into(),
        Some(p) => format!("'{}' modifier applied to {what}", p.name()),
    };
    Err(CompileError::new(msg, span))
}

/// `gen_mcode6` and `gen_host6`.
pub(super) fn ipv6(q: Qual, addr: [u8; 16], len: u32, span: Span) -> R<Atom> {
    let err = |m: String| Err(CompileError::new(m, span));
    if len > 128 {
        return err("mask length must be <= 128".into());
    }
    let mut mask = [0u8; 16];
    for (i, m) in mask.iter_mut().enumerate() {
        let bits = len.saturating_sub(8 * i as u32).min(8);
        *m = if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
    }
    if addr.iter().zip(mask).any(|(a, m)| a & !m != 0) {
        let text = std::net::Ipv6Addr::from(addr);
        return err(format!("non-network bits set in \"{text}/{len}\""));
    }
    match q.kind {
        Kind::Default | Kind::Host if len != 128 => {
            return err("Mask syntax for networks only".into());
        }
        Kind::Default | Kind::Host | Kind::Net => {}
        _ => return err("invalid qualifier against IPv6 address".into()),
    }
    let what = if q.kind == Kind::Net { "net" } else { "host" };
    match q.proto {
        None | Some(Proto::Ip6) => {
            let dir = addr_dir(q.dir, span)?;
            Ok(Atom::Ipv6Host { dir, addr, mask })
        }
        Some(Proto::Link) => err(format!("link-layer modifier applied to ip6 {what}")),
        Some(Proto::Atalk) => err(format!("AppleTalk modifier applied to ip6 {what}")),
        Some(p) => err(format!("'{}' modifier applied to ip6 {what}", p.name())),
    }
}
