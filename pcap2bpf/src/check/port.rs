//! Ports: service names, ranges and the qualifiers ports allow.

use super::{Checker, R, Side, Transport};
use crate::error::CompileError;
use crate::syntax::ast::{Dir, Kind, Qual, Span};

impl Checker<'_> {
    /// `pcap_nametoport`: the port and which transport it is known for
    /// (`None`: both, or the same number for tcp and udp).
    pub(super) fn nametoport(&self, name: &str) -> Option<(u16, Option<Transport>)> {
        let tcp = self.resolver.service(name, "tcp");
        let udp = self.resolver.service(name, "udp");
        match (tcp, udp) {
            (Some(t), Some(u)) if t == u => Some((t, None)),
            (Some(t), _) => Some((t, Some(Transport::Tcp))),
            (None, Some(u)) => Some((u, Some(Transport::Udp))),
            (None, None) => None,
        }
    }

    /// `pcap_nametoportrange`: `N-M` numerically (as sscanf "%d-%d"),
    /// else two names split at the first '-'.
    pub(super) fn nametoportrange(&self, name: &str) -> Option<(i64, i64, Option<Transport>)> {
        if let Some((a, rest)) = scan_int(name)
            && let Some(rest) = rest.strip_prefix('-')
            && let Some((b, _)) = scan_int(rest)
        {
            return Some((a, b, None));
        }
        let (a, b) = name.split_once('-')?;
        let (p1, r1) = self.nametoport(a)?;
        let (p2, r2) = self.nametoport(b)?;
        let real = if r1 == r2 { r2 } else { None };
        Some((p1.into(), p2.into(), real))
    }
}

pub(super) fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::PortRange => "portrange",
        _ => "port",
    }
}

/// The transport a port qualifier allows: `Some(None)` for any.
pub(super) fn port_proto(q: Qual) -> Option<Option<Transport>> {
    match q.proto {
        None => Some(None),
        Some(p) => Transport::of(p).map(Some),
    }
}

pub(super) fn port_conflict(
    want: Option<Transport>,
    real: Option<Transport>,
    msg: impl Fn(&str) -> String,
    span: Span,
) -> R<Option<Transport>> {
    match (want, real) {
        (Some(w), Some(r)) if w != r => Err(CompileError::new(msg(r.name()), span)),
        (Some(w), _) => Ok(Some(w)),
        (None, r) => Ok(r),
    }
}

/// sscanf("%d"): optional blanks and sign, then digits.
pub(super) fn scan_int(s: &str) -> Option<(i64, &str)> {
    let t = s.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let n = t.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    // Saturate like a value that no port can be.
    let v: i64 = t[..n].parse().unwrap_or(i64::MAX / 2);
    let v = i64::from(v as i32);
    Some((if neg { -v } else { v }, &t[n..]))
}

/// Ports have no 802.11 address qualifiers (`gen_portop`).
pub(super) fn port_dir(dir: Dir, range: bool, span: Span) -> R<Side> {
    Side::of(dir).ok_or_else(|| {
        let what = if range { "port ranges" } else { "ports" };
        let m = match dir {
            Dir::Addr(n) => {
                format!("'addr{n}' and 'address{n}' are not valid qualifiers for {what}")
            }
            Dir::Ra => format!("'ra' is not a valid qualifier for {what}"),
            // Dir::Ta, the only other direction Side::of refuses.
            _ => format!("'ta' is not a valid qualifier for {what}"),
        };
        CompileError::new(m, span)
    })
}
