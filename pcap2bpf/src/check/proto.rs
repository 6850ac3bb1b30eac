//! Protocol names and numbers: `proto`, `protochain` and the
//! link-layer protocol names.

use super::{Atom, Checker, R};
use crate::error::CompileError;
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
                "esis" => Ok(0x82),
                "isis" => Ok(0x83),
                "clnp" => Ok(0x81),
                _ => err(format!("unknown osi proto '{name}'")),
            },
            _ => err(format!("unknown protocol: {name}")),
        }
    }

    pub(super) fn proto(&self, q: Qual, v: u32, span: Span) -> R<Atom> {
        use Proto::*;
        let msg = match q.proto {
            None | Some(Link) | Some(Ip) | Some(Ip6) | Some(Iso) | Some(Isis) => {
                return Ok(Atom::Proto {
                    layer: q.proto,
                    value: v,
                });
            }
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
        })
    }
}

fn ether_proto(name: &str) -> Option<u32> {
    Some(match name {
        "aarp" => 0x80f3,
        "arp" => 0x0806,
        "atalk" => 0x809b,
        "decnet" => 0x6003,
        "ip" => 0x0800,
        "ip6" => 0x86dd,
        "lat" => 0x6004,
        "loopback" => 0x9000,
        "mopdl" => 0x6001,
        "moprc" => 0x6002,
        "rarp" => 0x8035,
        "sca" => 0x6007,
        "iso" => 0xfe,
        "stp" => 0x42,
        "ipx" => 0xe0,
        "netbeui" => 0xf0,
        _ => return None,
    })
}
