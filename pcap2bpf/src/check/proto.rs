//! Protocol names and numbers: `proto`, `protochain` and the
//! link-layer protocol names.

use super::mpls::ip_ethertype;
use super::{Atom, Checker, ProtoLayer, R};
use crate::error::CompileError;
use crate::numbers::{
    ETHERTYPE_AARP, ETHERTYPE_ARP, ETHERTYPE_ATALK, ETHERTYPE_DN, ETHERTYPE_IP, ETHERTYPE_IPV6,
    ETHERTYPE_LAT, ETHERTYPE_LOOPBACK, ETHERTYPE_MOPDL, ETHERTYPE_MOPRC, ETHERTYPE_REVARP,
    ETHERTYPE_SCA, ISO8473_CLNP, ISO9542_ESIS, ISO10589_ISIS, LLCSAP_8021D, LLCSAP_IPX,
    LLCSAP_ISONS, LLCSAP_NETBEUI,
};
use crate::syntax::ast::{Proto, Qual, Span};

impl Checker<'_> {
    pub(super) fn lookup_proto(&self, proto: Option<Proto>, name: &str, span: Span) -> R<u32> {
        let err = |m: String| Err(CompileError::new(m, span));
        match proto {
            None | Some(Proto::Ip) | Some(Proto::Ip6) => match self.resolver.protocol(name) {
                Some(v) => Ok(v.into()),
                None => err(format!("unknown ip proto '{name}'")),
            },
            Some(Proto::Link) => match ether_proto(name) {
                Some(v) => Ok(v),
                None => err(format!("unknown ether proto '{name}'")),
            },
            Some(Proto::Iso) => match name {
                "esis" => Ok(ISO9542_ESIS),
                "isis" => Ok(ISO10589_ISIS),
                "clnp" => Ok(ISO8473_CLNP),
                _ => err(format!("unknown osi proto '{name}'")),
            },
            _ => err(format!("unknown protocol: {name}")),
        }
    }

    pub(super) fn proto(&self, q: Qual, v: u32, span: Span) -> R<Atom> {
        use Proto::*;
        let atom = |layer: Option<ProtoLayer>| Ok(Atom::Proto { layer, value: v });
        let msg = match q.proto {
            // A number was checked before (`over_mpls_ok`); this is a name.
            Some(Link) if self.after_mpls && !ip_ethertype(v) => {
                "unsupported protocol over mpls".into()
            }
            None => return atom(None),
            Some(Link) => return atom(Some(ProtoLayer::Link)),
            Some(Ip) => return atom(Some(ProtoLayer::Ip)),
            Some(Ip6) => return atom(Some(ProtoLayer::Ip6)),
            Some(Iso) => return atom(Some(ProtoLayer::Iso)),
            Some(Isis) => return atom(Some(ProtoLayer::Isis)),
            Some(Arp) => "arp does not encapsulate another protocol".into(),
            Some(Rarp) => "rarp does not encapsulate another protocol".into(),
            Some(Atalk) => "AppleTalk encapsulation is not specifiable".into(),
            Some(Decnet) => "DECNET encapsulation is not specifiable".into(),
            Some(Lat) => "LAT does not encapsulate another protocol".into(),
            Some(Sca) => "SCA does not encapsulate another protocol".into(),
            Some(Moprc) => "MOPRC does not encapsulate another protocol".into(),
            Some(Mopdl) => "MOPDL does not encapsulate another protocol".into(),
            Some(Clnp) => "'clnp proto' is not supported".into(),
            Some(p) => format!("'{} proto' is bogus", p.name()),
        };
        Err(CompileError::new(msg, span))
    }

    pub(super) fn protochain(&self, q: Qual, v: u32, span: Span) -> R<Atom> {
        if !matches!(q.proto, None | Some(Proto::Ip) | Some(Proto::Ip6)) {
            return Err(CompileError::new(
                "bad protocol applied for 'protochain'",
                span,
            ));
        }
        if self.variable_offsets {
            return Err(CompileError::new(
                "'protochain' not supported with variable length headers",
                span,
            ));
        }
        Ok(Atom::ProtoChain {
            layer: q.proto,
            value: v,
            after_vlan: self.after_vlan,
        })
    }
}

/// The link-layer protocol names of `proto`, `ether proto \\NAME`.
fn ether_proto(name: &str) -> Option<u32> {
    Some(match name {
        "aarp" => ETHERTYPE_AARP,
        "arp" => ETHERTYPE_ARP,
        "atalk" => ETHERTYPE_ATALK,
        "decnet" => ETHERTYPE_DN,
        "ip" => ETHERTYPE_IP,
        "ip6" => ETHERTYPE_IPV6,
        "lat" => ETHERTYPE_LAT,
        "loopback" => ETHERTYPE_LOOPBACK,
        "mopdl" => ETHERTYPE_MOPDL,
        "moprc" => ETHERTYPE_MOPRC,
        "rarp" => ETHERTYPE_REVARP,
        "sca" => ETHERTYPE_SCA,
        "iso" => LLCSAP_ISONS,
        "stp" => LLCSAP_8021D,
        "ipx" => LLCSAP_IPX,
        "netbeui" => LLCSAP_NETBEUI,
        _ => return None,
    })
}
