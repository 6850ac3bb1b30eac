//! Protocol names and numbers: `proto`, `protochain` and the
//! link-layer protocol names.

use super::link::Link;
use super::mpls::ip_ethertype;
use super::width::Field;
use super::{Atom, Checker, ProtoLayer, R};
use crate::error::CompileError;
use crate::numbers::{
    ETHERMTU, ETHERTYPE_AARP, ETHERTYPE_ARP, ETHERTYPE_ATALK, ETHERTYPE_DN, ETHERTYPE_IP,
    ETHERTYPE_IPV6, ETHERTYPE_LAT, ETHERTYPE_LOOPBACK, ETHERTYPE_MOPDL, ETHERTYPE_MOPRC,
    ETHERTYPE_REVARP, ETHERTYPE_SCA, ISO8473_CLNP, ISO9542_ESIS, ISO10589_ISIS, LLCSAP_8021D,
    LLCSAP_IPX, LLCSAP_ISONS, LLCSAP_NETBEUI,
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
        let atom = |layer: Option<ProtoLayer>, field: Option<Field>| {
            if let Some(f) = field {
                f.check(v, span)?;
            }
            Ok(Atom::Proto { layer, value: v })
        };
        let msg = match q.proto {
            // A number was checked before (`over_mpls_ok`); this is a name.
            Some(Link) if self.after_mpls && !ip_ethertype(v) => {
                "unsupported protocol over mpls".into()
            }
            None => return atom(None, Some(Field::ProtocolNumber)),
            Some(Link) => return atom(Some(ProtoLayer::Link), self.link_type_field(v)),
            Some(Ip) => return atom(Some(ProtoLayer::Ip), Some(Field::ProtocolNumber)),
            Some(Ip6) => return atom(Some(ProtoLayer::Ip6), Some(Field::ProtocolNumber)),
            Some(Iso) => return atom(Some(ProtoLayer::Iso), Some(Field::IsoProtocol)),
            Some(Isis) => return atom(Some(ProtoLayer::Isis), Some(Field::IsisPduType)),
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

    /// The field `link proto V` compares `V` with here (`gen_linktype`):
    /// on Ethernet and Linux cooked v1 an 802.2 DSAP up to 1500, else the
    /// EtherType; Linux cooked v2 has only the EtherType; PPP its
    /// protocol (EtherTypes it knows map to theirs, all narrower); raw IP
    /// and the loopback headers no such field (the test is false).
    fn link_type_field(&self, v: u32) -> Option<Field> {
        match self.link {
            Link::Ether | Link::Sll if v <= ETHERMTU => Some(Field::LlcDsap),
            Link::Ether | Link::Sll | Link::Sll2 => Some(Field::EtherType),
            Link::Ppp => Some(Field::PppProtocol),
            Link::Raw | Link::Null | Link::Loop => None,
        }
    }

    pub(super) fn protochain(&self, q: Qual, v: u32, span: Span) -> R<Atom> {
        if !matches!(q.proto, None | Some(Proto::Ip) | Some(Proto::Ip6)) {
            return Err(CompileError::new(
                "bad protocol applied for 'protochain'",
                span,
            ));
        }
        Field::ProtocolNumber.check(v, span)?;
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
