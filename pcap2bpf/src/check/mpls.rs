//! After `mpls`, only IPv4 and IPv6 can be tested (`gen_mpls_linktype`
//! knows no other payload): the primitives and loads that stay within
//! them.

use crate::numbers::{ETHERTYPE_IP, ETHERTYPE_IPV6};
use crate::syntax::ast::{Arith, Kind, Primitive, Proto, Value};

/// After `mpls` only IPv4 and IPv6 payloads can be tested
/// (`gen_mpls_linktype`); this is whether `p` stays within them.
pub(super) fn over_mpls_ok(p: &Primitive) -> bool {
    use Proto::*;
    let non_ip = |p: Option<Proto>| {
        matches!(
            p,
            Some(
                Arp | Rarp
                    | Atalk
                    | Aarp
                    | Decnet
                    | Sca
                    | Lat
                    | Mopdl
                    | Moprc
                    | Iso
                    | Esis
                    | Isis
                    | L1
                    | L2
                    | Iih
                    | Lsp
                    | Snp
                    | Csnp
                    | Psnp
                    | Clnp
                    | Stp
                    | Ipx
                    | Netbeui
            )
        )
    };
    match p {
        Primitive::Proto(pr) => !non_ip(Some(*pr)),
        Primitive::Qualified { qual, value, .. } => match (qual.kind, value) {
            (Kind::Proto, Value::Num(n)) if qual.proto == Some(Link) => ip_ethertype(*n),
            _ => !non_ip(qual.proto),
        },
        Primitive::Pppoed | Primitive::Pppoes(_) => false,
        _ => true,
    }
}

/// Whether a `link proto` value is IPv4 or IPv6.
pub(super) fn ip_ethertype(v: u32) -> bool {
    v == ETHERTYPE_IP || v == ETHERTYPE_IPV6
}

/// Whether `a` loads from a protocol other than IPv4 and IPv6 (its
/// lowering tests that protocol's EtherType): `arp[0]`, `decnet[2]`, ...
pub(super) fn loads_non_ip(a: &Arith) -> bool {
    use Proto::*;
    match a {
        Arith::Num(..) | Arith::Len(_) => false,
        Arith::Neg(a, _) => loads_non_ip(a),
        Arith::Binary(_, l, r) => loads_non_ip(l) || loads_non_ip(r),
        Arith::Load { proto, index, .. } => {
            matches!(
                proto,
                Arp | Rarp | Atalk | Decnet | Sca | Lat | Moprc | Mopdl
            ) || loads_non_ip(index)
        }
    }
}
