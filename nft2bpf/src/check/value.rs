//! Constants: a value expression read as a number of the type and width
//! it is compared with, with nft's errors.
//!
//! Numbers stand for any type but device names and IPv6 addresses;
//! words and quoted strings are symbols of the type (`tcp`, `ssh`,
//! `echo-request`, `ef`), except nft's protocol keywords, which are
//! `inet_proto` constants wherever they stand; addresses must be of the
//! address type; `|`, `&`, `^`, `<<` and `>>` between constants are
//! folded.

use crate::check::tree::{ElemKey, KeyType};
use crate::check::types::{Type, keyword_constant};
use crate::error::Error;
use crate::syntax::ast::{AddrLit, BinOp, Expr, ExprKind};

/// The longest device name (the kernel's `IFNAMSIZ` less the final
/// zero).
pub const MAX_IFNAME: usize = 15;

/// All bits of a value `bits` wide.
pub(crate) fn all_ones(bits: u32) -> u128 {
    if bits >= 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    }
}

/// The mask of a prefix of `len` bits in a value `bits` wide.
pub(crate) fn prefix_mask(len: u32, bits: u32) -> u128 {
    all_ones(bits) & !all_ones(bits - len)
}

/// "datatype mismatch, expected X, expression has type Y".
pub(crate) fn mismatch(expected: &str, got: &str, e: &Expr) -> Error {
    Error::new(
        format!("datatype mismatch, expected {expected}, expression has type {got}"),
        e.span,
    )
}

/// `e` as a constant of type `want`.
pub(crate) fn constant(e: &Expr, want: KeyType) -> Result<u128, Error> {
    let ty = want.ty;
    match &e.kind {
        ExprKind::Number(n) => number(u128::from(*n), e, want),
        ExprKind::Word(w) => {
            // nft's protocol keywords are typed wherever they stand (so
            // `ip saddr tcp` is a mismatch); other words are symbols of
            // the type they meet (`ether type ip`).
            if ty != Type::IfName
                && let Some((kty, _)) = keyword_constant(w)
                && kty != ty
            {
                return Err(mismatch(ty.desc(), kty.desc(), e));
            }
            symbol(w, e, want)
        }
        ExprKind::Quoted(s) => symbol(s, e, want),
        ExprKind::Addr(a) => address(a, e, want),
        ExprKind::Binary { op, left, right } => {
            let l = constant(left, want)?;
            let r = match op {
                BinOp::Shl | BinOp::Shr => shift_amount(right)?,
                _ => constant(right, want)?,
            };
            let v = match op {
                BinOp::And => l & r,
                BinOp::Or => l | r,
                BinOp::Xor => l ^ r,
                BinOp::Shl => l.checked_shl(r as u32).unwrap_or(0),
                BinOp::Shr => l.checked_shr(r as u32).unwrap_or(0),
            };
            if v > all_ones(want.bits) {
                return Err(Error::new(
                    format!("Value {v} exceeds valid range 0-{}", all_ones(want.bits)),
                    e.span,
                ));
            }
            Ok(v)
        }
        ExprKind::Negative(n) => Err(Error::new(
            format!("negative value -{n}: {} values are unsigned", ty.desc()),
            e.span,
        )),
        ExprKind::Set(_) | ExprKind::SetRef(_) => Err(Error::new(
            format!("expected a value of type {}, not a set", ty.desc()),
            e.span,
        )),
        ExprKind::Range { .. } | ExprKind::Prefix { .. } => Err(Error::new(
            format!("expected a single value of type {}, not a range", ty.desc()),
            e.span,
        )),
        ExprKind::Concat(_) => Err(Error::new(
            "Use concatenations with sets and maps, not singleton values",
            e.span,
        )),
        ExprKind::List(_) => Err(Error::new(
            format!("expected a single value of type {}, not a list", ty.desc()),
            e.span,
        )),
        ExprKind::Verdict(_) => Err(mismatch(ty.desc(), Type::Verdict.desc(), e)),
        ExprKind::Payload { .. }
        | ExprKind::Raw { .. }
        | ExprKind::Meta { .. }
        | ExprKind::Unsupported(_) => Err(Error::new(
            "Right hand side of relational expression must be constant",
            e.span,
        )),
        ExprKind::Variable(name) => Err(Error::new(format!("unknown identifier '{name}'"), e.span)),
    }
}

/// A shift amount: a plain number.
fn shift_amount(e: &Expr) -> Result<u128, Error> {
    match e.kind {
        ExprKind::Number(n) if n < 128 => Ok(u128::from(n)),
        _ => Err(Error::new(
            "shift amount must be a number below 128",
            e.span,
        )),
    }
}

/// A number as a value of `want`.
fn number(n: u128, e: &Expr, want: KeyType) -> Result<u128, Error> {
    match want.ty {
        Type::IfName | Type::Ipv6Addr | Type::Verdict => {
            return Err(mismatch(want.ty.desc(), Type::Integer.desc(), e));
        }
        _ => {}
    }
    if n > all_ones(want.bits) {
        let message = match want.ty {
            Type::InetService => "Service out of range".to_string(),
            Type::InetProto => "Protocol out of range".to_string(),
            _ => format!("Value {n} exceeds valid range 0-{}", all_ones(want.bits)),
        };
        return Err(Error::new(message, e.span));
    }
    Ok(n)
}

/// A word or string as a symbol of `want`.
fn symbol(w: &str, e: &Expr, want: KeyType) -> Result<u128, Error> {
    if let Some(v) = want.ty.symbol(w) {
        return number(v, e, want);
    }
    let message = match want.ty {
        Type::IfName => return ifname(w, e).map(|(v, _)| v),
        Type::Ipv4Addr | Type::Ipv6Addr | Type::EtherAddr => format!(
            "Could not resolve hostname `{w}`: nft2bpf does not resolve host names; write the address"
        ),
        Type::InetService => format!(
            "Could not resolve service `{w}`: nft2bpf knows only common service names (numbered as in Debian's /etc/services); write the port number"
        ),
        Type::InetProto => format!("Could not resolve protocol name `{w}`"),
        ty => format!("Could not parse {}", ty.desc()),
    };
    Err(Error::new(message, e.span))
}

/// An address literal as a value of `want`.
fn address(a: &AddrLit, e: &Expr, want: KeyType) -> Result<u128, Error> {
    match (a, want.ty) {
        (AddrLit::Ipv4(v4), Type::Ipv4Addr) => Ok(u128::from(u32::from(*v4))),
        (AddrLit::Ipv6(v6), Type::Ipv6Addr) => Ok(u128::from(*v6)),
        (AddrLit::Mac(m), Type::EtherAddr) => {
            Ok(m.iter().fold(0u128, |acc, b| (acc << 8) | u128::from(*b)))
        }
        (a, ty) => {
            let got = match a {
                AddrLit::Ipv4(_) => Type::Ipv4Addr,
                AddrLit::Ipv6(_) => Type::Ipv6Addr,
                AddrLit::Mac(_) => Type::EtherAddr,
            };
            Err(mismatch(ty.desc(), got.desc(), e))
        }
    }
}

/// A device name: its 16 bytes (zero-padded) as a big-endian number, and
/// for a name that ends in `*` (nft's wildcard: any device whose name
/// starts so) the mask of the bytes before it.
pub(crate) fn ifname(name: &str, e: &Expr) -> Result<(u128, Option<u128>), Error> {
    let (stem, wildcard) = match name.strip_suffix('*') {
        Some(stem) => (stem, true),
        None => (name, false),
    };
    if stem.len() > MAX_IFNAME || stem.contains('\0') {
        return Err(Error::new(
            format!("device name `{name}` is longer than {MAX_IFNAME} bytes"),
            e.span,
        ));
    }
    let mut bytes = [0u8; 16];
    bytes[..stem.len()].copy_from_slice(stem.as_bytes());
    let value = u128::from_be_bytes(bytes);
    let mask = wildcard.then(|| prefix_mask(8 * stem.len() as u32, 128));
    Ok((value, mask))
}

/// A value, range or prefix as one part of a set element; the second
/// result names its shape for nft's "flags interval" errors.
pub(crate) fn elem_part(e: &Expr, want: KeyType) -> Result<(ElemKey, Shape), Error> {
    match &e.kind {
        ExprKind::Range { low, high } => {
            let (l, h) = range(e, low, high, want)?;
            Ok((ElemKey::Range(l, h), Shape::Range))
        }
        ExprKind::Prefix { value, len } => {
            let (v, mask) = prefix(value, len.value, e, want)?;
            Ok((
                ElemKey::Range(v, v | (!mask & all_ones(want.bits))),
                Shape::Prefix,
            ))
        }
        _ => Ok((ElemKey::Value(constant(e, want)?), Shape::Value)),
    }
}

/// What an element part was written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A value.
    Value,
    /// `low-high`.
    Range,
    /// `value/len`.
    Prefix,
}

/// `low-high`: both ends, low not above high.
pub(crate) fn range(
    e: &Expr,
    low: &Expr,
    high: &Expr,
    want: KeyType,
) -> Result<(u128, u128), Error> {
    let l = constant(low, want)?;
    let h = constant(high, want)?;
    if l > h {
        return Err(Error::new("Range has zero or negative size", e.span));
    }
    Ok((l, h))
}

/// `value/len`: the value with its host bits cleared, and the mask.
pub(crate) fn prefix(
    value: &Expr,
    len: u64,
    e: &Expr,
    want: KeyType,
) -> Result<(u128, u128), Error> {
    let v = constant(value, want)?;
    if len > u64::from(want.bits) {
        return Err(Error::new(
            format!(
                "Prefix length {len} is invalid for type of {} bits width",
                want.bits
            ),
            e.span,
        ));
    }
    let mask = prefix_mask(len as u32, want.bits);
    Ok((v & mask, mask))
}

/// Flags: one value or a list of them, ORed (`syn,ack`); only for bit
/// mask types.
pub(crate) fn flags(e: &Expr, want: KeyType) -> Result<u128, Error> {
    match &e.kind {
        ExprKind::List(items) => {
            let mut v = 0;
            for it in items {
                if !want.ty.is_bitmask() {
                    return Err(Error::new(
                        format!("Basetype of type {} is not bitmask", want.ty.desc()),
                        it.span,
                    ));
                }
                v |= constant(it, want)?;
            }
            Ok(v)
        }
        _ => constant(e, want),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syntax::ast::Span;

    fn e(kind: ExprKind) -> Expr {
        Expr::new(kind, Span::new(0, 1))
    }

    fn kt(ty: Type, bits: u32) -> KeyType {
        KeyType { ty, bits }
    }

    #[test]
    fn symbols_numbers_and_addresses() {
        let word = |w: &str| e(ExprKind::Word(w.into()));
        assert_eq!(constant(&word("ssh"), kt(Type::InetService, 16)), Ok(22));
        assert_eq!(constant(&word("ip6"), kt(Type::EtherType, 16)), Ok(0x86dd));
        let err = constant(&word("tcp"), kt(Type::Ipv4Addr, 32)).unwrap_err();
        assert_eq!(
            err.message,
            "datatype mismatch, expected IPv4 address, expression has type Internet protocol"
        );
        let err = constant(&e(ExprKind::Number(64)), kt(Type::Dscp, 6)).unwrap_err();
        assert_eq!(err.message, "Value 64 exceeds valid range 0-63");
        let err = constant(&e(ExprKind::Number(70000)), kt(Type::InetService, 16)).unwrap_err();
        assert_eq!(err.message, "Service out of range");
        let v4 = e(ExprKind::Addr(AddrLit::Ipv4("10.0.0.1".parse().unwrap())));
        assert_eq!(constant(&v4, kt(Type::Ipv4Addr, 32)), Ok(0x0a00_0001));
        let mac = e(ExprKind::Addr(AddrLit::Mac([
            0, 0x11, 0x22, 0x33, 0x44, 0x55,
        ])));
        assert_eq!(
            constant(&mac, kt(Type::EtherAddr, 48)),
            Ok(0x0011_2233_4455)
        );
        let or = e(ExprKind::Binary {
            op: BinOp::Or,
            left: Box::new(word("syn")),
            right: Box::new(word("ack")),
        });
        assert_eq!(constant(&or, kt(Type::TcpFlag, 8)), Ok(0x12));
    }

    #[test]
    fn prefixes_ranges_and_names() {
        let v4 = e(ExprKind::Addr(AddrLit::Ipv4("10.1.0.0".parse().unwrap())));
        assert_eq!(
            prefix(&v4, 8, &v4, kt(Type::Ipv4Addr, 32)),
            Ok((0x0a00_0000, 0xff00_0000))
        );
        let err = prefix(&v4, 33, &v4, kt(Type::Ipv4Addr, 32)).unwrap_err();
        assert_eq!(
            err.message,
            "Prefix length 33 is invalid for type of 32 bits width"
        );
        let n = |v| e(ExprKind::Number(v));
        let err = range(&n(0), &n(5), &n(4), kt(Type::Integer, 8)).unwrap_err();
        assert_eq!(err.message, "Range has zero or negative size");
        let (v, m) = ifname("eth*", &n(0)).unwrap();
        assert_eq!(v >> 104, u128::from(u32::from_be_bytes(*b"eth\0")) >> 8);
        assert_eq!(m, Some(0xffffff << 104));
        assert!(ifname("averyveryverylongname", &n(0)).is_err());
    }
}
