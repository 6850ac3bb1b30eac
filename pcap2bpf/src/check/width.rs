//! The widths of the fields numbers go into: one table for every number
//! a filter compares with a packet field (`ip proto 256`, `vlan 4096`,
//! `port 70000`, ...).
//!
//! libpcap 1.10.3 truncates or ignores most values too wide for their
//! field (`ip proto 256` compares a byte with 256 and never matches);
//! its development branch refuses them with `assert_maxval`'s "NAME
//! VALUE greater than maximum MAX". We refuse them the same way, the
//! caret under the value. The few that 1.10.3 already refused (VLAN,
//! MPLS, PPPoE, Geneve, ports, netmask lengths) take the same wording.

use super::R;
use crate::error::CompileError;
use crate::syntax::ast::Span;

/// A field a filter's number is compared with or stored into, named as
/// libpcap's messages name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    /// The IPv4 protocol / IPv6 next header (`proto`, `protochain`).
    ProtocolNumber,
    /// The OSI network layer protocol (`iso proto`).
    IsoProtocol,
    /// The IS-IS PDU type, 5 bits (`isis proto`).
    IsisPduType,
    /// An EtherType (`link proto` above 1500).
    EtherType,
    /// An 802.2 DSAP (`link proto` up to 1500 where 802.2 frames are).
    LlcDsap,
    /// A PPP protocol (`link proto` inside a PPPoE session).
    PppProtocol,
    /// A TCP, UDP or SCTP port.
    PortNumber,
    /// The 12-bit VLAN identifier.
    VlanTag,
    /// The 20-bit MPLS label.
    MplsLabel,
    /// The PPPoE session identifier.
    PppoeSession,
    /// The 24-bit Geneve VNI.
    GeneveVni,
    /// The byte `byte IDX OP VAL` compares (`VAL`).
    ByteArgument,
    /// The length of an IPv4 netmask (`net A/LEN`).
    NetmaskLength,
}

impl Field {
    /// The name libpcap's message gives the field.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Field::ProtocolNumber => "protocol number",
            Field::IsoProtocol => "ISO protocol",
            Field::IsisPduType => "IS-IS PDU type",
            Field::EtherType => "EtherType",
            Field::LlcDsap => "LLC DSAP",
            Field::PppProtocol => "PPP protocol",
            Field::PortNumber => "port number",
            Field::VlanTag => "VLAN tag",
            Field::MplsLabel => "MPLS label",
            Field::PppoeSession => "PPPoE session number",
            Field::GeneveVni => "Geneve VNI",
            Field::ByteArgument => "byte argument",
            Field::NetmaskLength => "netmask length",
        }
    }

    /// The largest value the field holds.
    pub(crate) fn max(self) -> u32 {
        match self {
            Field::ProtocolNumber | Field::IsoProtocol | Field::LlcDsap | Field::ByteArgument => {
                0xff
            }
            Field::IsisPduType => 0x1f,
            Field::EtherType | Field::PppProtocol | Field::PortNumber | Field::PppoeSession => {
                0xffff
            }
            Field::VlanTag => 0x0fff,
            Field::MplsLabel => 0x000f_ffff,
            Field::GeneveVni => 0x00ff_ffff,
            Field::NetmaskLength => 32,
        }
    }

    /// Whether libpcap 1.10.3 refused values past the field already
    /// (the others are [newer checks](CompileError::newer_check)).
    fn checked_by_1_10(self) -> bool {
        matches!(
            self,
            Field::PortNumber
                | Field::VlanTag
                | Field::MplsLabel
                | Field::PppoeSession
                | Field::GeneveVni
                | Field::NetmaskLength
        )
    }

    /// `value`, if the field holds it; else libpcap's error at `span`.
    pub(crate) fn check(self, value: u32, span: Span) -> R<u32> {
        if value <= self.max() {
            return Ok(value);
        }
        let message = format!(
            "{} {value} greater than maximum {}",
            self.name(),
            self.max()
        );
        Err(if self.checked_by_1_10() {
            CompileError::new(message, span)
        } else {
            CompileError::newer(message, span)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Field;
    use crate::syntax::ast::Span;

    #[test]
    fn the_largest_value_passes_and_the_next_is_refused() {
        let all = [
            Field::ProtocolNumber,
            Field::IsoProtocol,
            Field::IsisPduType,
            Field::EtherType,
            Field::LlcDsap,
            Field::PppProtocol,
            Field::PortNumber,
            Field::VlanTag,
            Field::MplsLabel,
            Field::PppoeSession,
            Field::GeneveVni,
            Field::ByteArgument,
            Field::NetmaskLength,
        ];
        let at = Span::new(3, 7);
        for f in all {
            assert_eq!(f.check(f.max(), at), Ok(f.max()));
            assert_eq!(f.check(0, at), Ok(0));
            let e = f.check(f.max() + 1, at).unwrap_err();
            assert_eq!(
                e.message,
                format!(
                    "{} {} greater than maximum {}",
                    f.name(),
                    f.max() + 1,
                    f.max()
                )
            );
            assert_eq!(e.span, at);
            assert_eq!(e.newer_check, !f.checked_by_1_10(), "{f:?}");
        }
        assert_eq!(
            Field::ProtocolNumber
                .check(u32::MAX, at)
                .unwrap_err()
                .message,
            "protocol number 4294967295 greater than maximum 255"
        );
    }
}
