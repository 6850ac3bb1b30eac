//! nft's protocol context: which protocols a rule has established so far,
//! the matches nft adds before a field so that the field exists (its
//! dependencies), and the conflicts it refuses.
//!
//! The rules, as nft 1.0.6 applies them at a netdev hook (checked with
//! `nft --debug=netlink`):
//!
//! - `ether` and `vlan` fields: `meta iiftype ether` first, once a rule;
//!   `vlan` fields then `ether type 8021q`, unless the rule has
//!   established a VLAN tag after the Ethernet header (`ether type vlan`,
//!   `ether type 8021ad`, an earlier `vlan` field); once it has
//!   established a network protocol instead (`meta protocol` of any
//!   value, `ether type ip`, an `ip` field), a `vlan` field is an error
//!   ("conflicting protocols specified: ether vs. vlan").
//! - `ip` and `ip6` fields: `vlan type ip` once the rule has read a VLAN
//!   tag, else `ether type ip` once it has read the Ethernet header, else
//!   `meta protocol ip`; nothing once the rule has established the
//!   network protocol, an error ("conflicting protocols specified: ip6
//!   vs. ip") if it established another.
//! - `tcp` and `udp` fields: `meta l4proto tcp`; nothing once the rule
//!   established the transport protocol (`ip protocol tcp`, `ip6 nexthdr
//!   tcp`, `meta l4proto tcp`, an earlier `tcp` field), an error if it
//!   established another.
//! - `icmp` (`icmpv6`) fields: the network dependency for `ip` (`ip6`)
//!   when no network protocol is established (but no conflict if another
//!   is), then `meta l4proto icmp` (`icmpv6`) as above.
//! - `th` fields, raw payloads (`@th,16,16`) and metadata: nothing.
//!
//! A match establishes a protocol when it tests a protocol field (`meta
//! iiftype`, `ether type`, `vlan type`, `meta protocol`, `ip protocol`,
//! `ip6 nexthdr`, `meta l4proto`) for equality, with a value or a set. nft's handling of
//! sets differs between layers, and we follow it: for the network
//! protocol the set's last element counts (`meta protocol { ip6, ip } ip
//! saddr 1.2.3.4` adds no dependency; `{ ip, ip6 }` is a conflict), for
//! the transport protocol every element must be the one a later field
//! needs (`meta l4proto { tcp, udp } tcp dport 22` is a conflict).

use pktmatch::Span;

use crate::check::fields::{Field, Header, MetaKey, field};
use crate::error::Error;

/// The EtherType of an 802.1Q tag.
const ETH_P_8021Q: u16 = 0x8100;
/// The EtherType of an 802.1ad tag.
const ETH_P_8021AD: u16 = 0x88a8;
/// IPv4.
const ETH_P_IP: u16 = 0x0800;
/// IPv6.
const ETH_P_IPV6: u16 = 0x86dd;
/// ARP.
const ETH_P_ARP: u16 = 0x0806;
/// `ARPHRD_ETHER`.
const ARPHRD_ETHER: u128 = 1;

/// A match nft adds before a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dep {
    /// `meta KEY == VALUE`.
    Meta(MetaKey, u128),
    /// `FIELD == VALUE` (`ether type`, `vlan type`).
    Field(&'static Field, u128),
}

/// What a rule has established so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProtoCtx {
    /// `meta iiftype ether` has been tested: the frame has an Ethernet
    /// header.
    link_ether: bool,
    /// The Ethernet header's type says a VLAN tag follows.
    vlan: bool,
    /// The network protocol (an EtherType; `meta protocol` sets any
    /// value, `ether type` and `vlan type` only those nft knows).
    network: Option<u16>,
    /// The transport protocols the rule allows (one, or a set's).
    transport: Option<Vec<u8>>,
    /// Headers whose type guard (ICMP echo messages, for `id` and
    /// `sequence`) the rule has tested.
    guarded: Vec<Header>,
}

impl ProtoCtx {
    /// The dependencies nft adds before reading `field`, in order, and
    /// what they establish; `at` is the field's span, for conflicts.
    pub(crate) fn dependencies(&mut self, field: &Field, at: Span) -> Result<Vec<Dep>, Error> {
        let mut deps = Vec::new();
        match field.header {
            Header::Ether => self.link(&mut deps),
            Header::Vlan => {
                self.link(&mut deps);
                if !self.vlan {
                    if self.network.is_some() {
                        return Err(conflict("ether", "vlan", at));
                    }
                    deps.push(Dep::Field(ether_type(), u128::from(ETH_P_8021Q)));
                    self.vlan = true;
                }
            }
            Header::Ip => self.network(ETH_P_IP, true, at, &mut deps)?,
            Header::Ip6 => self.network(ETH_P_IPV6, true, at, &mut deps)?,
            Header::Tcp => self.transport(6, at, &mut deps)?,
            Header::Udp => self.transport(17, at, &mut deps)?,
            Header::Icmp => {
                self.network(ETH_P_IP, false, at, &mut deps)?;
                self.transport(1, at, &mut deps)?;
            }
            Header::Icmpv6 => {
                self.network(ETH_P_IPV6, false, at, &mut deps)?;
                self.transport(58, at, &mut deps)?;
            }
            Header::Th => {}
        }
        Ok(deps)
    }

    /// Whether a guarded field of `header` needs its guard (the first
    /// time in a rule), recording that it has it.
    pub(crate) fn needs_guard(&mut self, header: Header) -> bool {
        if self.guarded.contains(&header) {
            return false;
        }
        self.guarded.push(header);
        true
    }

    /// `meta iiftype ether`, once.
    fn link(&mut self, deps: &mut Vec<Dep>) {
        if !self.link_ether {
            deps.push(Dep::Meta(MetaKey::IifType, ARPHRD_ETHER));
            self.link_ether = true;
        }
    }

    /// The network dependency; with `strict`, another established network
    /// protocol is a conflict (for `ip`/`ip6` fields, not for ICMP's).
    fn network(
        &mut self,
        proto: u16,
        strict: bool,
        at: Span,
        deps: &mut Vec<Dep>,
    ) -> Result<(), Error> {
        match self.network {
            Some(p) if p == proto => return Ok(()),
            Some(p) if strict => return Err(conflict(network_name(p), network_name(proto), at)),
            Some(_) => return Ok(()),
            None => {}
        }
        let value = u128::from(proto);
        let dep = if self.vlan {
            Dep::Field(vlan_type(), value)
        } else if self.link_ether {
            Dep::Field(ether_type(), value)
        } else {
            Dep::Meta(MetaKey::Protocol, value)
        };
        deps.push(dep);
        self.network = Some(proto);
        Ok(())
    }

    /// The transport dependency.
    fn transport(&mut self, proto: u8, at: Span, deps: &mut Vec<Dep>) -> Result<(), Error> {
        match &self.transport {
            Some(allowed) => match allowed.iter().find(|p| **p != proto) {
                Some(other) => Err(conflict(
                    &transport_name(*other),
                    &transport_name(proto),
                    at,
                )),
                None => Ok(()),
            },
            None => {
                deps.push(Dep::Meta(MetaKey::L4Proto, u128::from(proto)));
                self.transport = Some(vec![proto]);
                Ok(())
            }
        }
    }

    /// Learns from a match the rule writes: `key == values[0]` (one value)
    /// or `key` in a set of `values`.
    pub(crate) fn learn_field(&mut self, field: &Field, values: &[u128]) {
        let Some(&last) = values.last() else { return };
        let Ok(last16) = u16::try_from(last) else {
            return;
        };
        match (field.header, field.name) {
            (Header::Ether, "type") if matches!(last16, ETH_P_8021Q | ETH_P_8021AD) => {
                self.vlan = true
            }
            (Header::Ether | Header::Vlan, "type")
                if matches!(last16, ETH_P_IP | ETH_P_IPV6 | ETH_P_ARP) =>
            {
                self.network = Some(last16);
            }
            (Header::Ip, "protocol") | (Header::Ip6, "nexthdr") => self.learn_transport(values),
            _ => {}
        }
    }

    /// Learns from a metadata match, as [`ProtoCtx::learn_field`].
    pub(crate) fn learn_meta(&mut self, key: MetaKey, values: &[u128]) {
        match (key, values.last().map(|v| u16::try_from(*v))) {
            (MetaKey::Protocol, Some(Ok(t))) => self.network = Some(t),
            // `meta iiftype ether`: nft then reads the Ethernet header's
            // type for the network protocol.
            (MetaKey::IifType, Some(Ok(1))) => self.link_ether = true,
            (MetaKey::L4Proto, Some(_)) => self.learn_transport(values),
            _ => {}
        }
    }

    /// Transport protocols nft has descriptions of.
    fn learn_transport(&mut self, values: &[u128]) {
        let known: Vec<u8> = values
            .iter()
            .filter_map(|v| u8::try_from(*v).ok())
            .filter(|p| matches!(p, 1 | 2 | 6 | 17 | 33 | 50 | 51 | 58 | 108 | 132 | 136))
            .collect();
        if !known.is_empty() {
            self.transport = Some(known);
        }
    }
}

/// "conflicting protocols specified: OLD vs. NEW".
fn conflict(old: &str, new: &str, at: Span) -> Error {
    Error::new(
        format!("conflicting protocols specified: {old} vs. {new}"),
        at,
    )
}

/// nft's name of a network protocol.
fn network_name(t: u16) -> &'static str {
    match t {
        ETH_P_IP => "ip",
        ETH_P_IPV6 => "ip6",
        ETH_P_ARP => "arp",
        ETH_P_8021Q | ETH_P_8021AD => "vlan",
        _ => "unknown",
    }
}

/// nft's name of a transport protocol.
fn transport_name(p: u8) -> String {
    match p {
        1 => "icmp",
        2 => "igmp",
        6 => "tcp",
        17 => "udp",
        33 => "dccp",
        50 => "esp",
        51 => "ah",
        58 => "icmpv6",
        108 => "comp",
        132 => "sctp",
        136 => "udplite",
        other => return other.to_string(),
    }
    .to_string()
}

/// `ether type`.
fn ether_type() -> &'static Field {
    field(Header::Ether, "type").expect("in the table").0
}

/// `vlan type`.
fn vlan_type() -> &'static Field {
    field(Header::Vlan, "type").expect("in the table").0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(h: Header, n: &str) -> &'static Field {
        field(h, n).unwrap().0
    }

    fn at() -> Span {
        Span::new(0, 1)
    }

    #[test]
    fn ip_then_tcp() {
        let mut c = ProtoCtx::default();
        assert_eq!(
            c.dependencies(f(Header::Ip, "saddr"), at()).unwrap(),
            vec![Dep::Meta(MetaKey::Protocol, 0x0800)]
        );
        assert_eq!(
            c.dependencies(f(Header::Ip, "daddr"), at()).unwrap(),
            vec![]
        );
        assert_eq!(
            c.dependencies(f(Header::Tcp, "dport"), at()).unwrap(),
            vec![Dep::Meta(MetaKey::L4Proto, 6)]
        );
        let e = c.dependencies(f(Header::Udp, "dport"), at()).unwrap_err();
        assert_eq!(e.message, "conflicting protocols specified: tcp vs. udp");
        let e = c.dependencies(f(Header::Ip6, "saddr"), at()).unwrap_err();
        assert_eq!(e.message, "conflicting protocols specified: ip vs. ip6");
    }

    #[test]
    fn the_link_layer_decides_the_network_dependency() {
        let mut c = ProtoCtx::default();
        assert_eq!(
            c.dependencies(f(Header::Ether, "saddr"), at()).unwrap(),
            vec![Dep::Meta(MetaKey::IifType, 1)]
        );
        assert_eq!(
            c.dependencies(f(Header::Ip, "saddr"), at()).unwrap(),
            vec![Dep::Field(ether_type(), 0x0800)]
        );
        let mut c = ProtoCtx::default();
        assert_eq!(
            c.dependencies(f(Header::Vlan, "id"), at()).unwrap(),
            vec![
                Dep::Meta(MetaKey::IifType, 1),
                Dep::Field(ether_type(), 0x8100)
            ]
        );
        assert_eq!(
            c.dependencies(f(Header::Vlan, "pcp"), at()).unwrap(),
            vec![]
        );
        assert_eq!(
            c.dependencies(f(Header::Ip6, "saddr"), at()).unwrap(),
            vec![Dep::Field(vlan_type(), 0x86dd)]
        );
    }

    #[test]
    fn vlan_fields_conflict_with_an_established_network() {
        let mut c = ProtoCtx::default();
        c.learn_meta(MetaKey::Protocol, &[0x0800]);
        let e = c.dependencies(f(Header::Vlan, "id"), at()).unwrap_err();
        assert_eq!(e.message, "conflicting protocols specified: ether vs. vlan");
        // Once the tag is established, a network protocol after it is fine.
        let mut c = ProtoCtx::default();
        c.dependencies(f(Header::Vlan, "id"), at()).unwrap();
        c.dependencies(f(Header::Ip, "saddr"), at()).unwrap();
        assert_eq!(
            c.dependencies(f(Header::Vlan, "pcp"), at()).unwrap(),
            vec![]
        );
        // Any `meta protocol` establishes a network protocol.
        let mut c = ProtoCtx::default();
        c.learn_meta(MetaKey::Protocol, &[0x1234]);
        let e = c.dependencies(f(Header::Ip, "saddr"), at()).unwrap_err();
        assert_eq!(e.message, "conflicting protocols specified: unknown vs. ip");
        // An unknown `ether type` establishes nothing.
        let mut c = ProtoCtx::default();
        c.dependencies(f(Header::Ether, "type"), at()).unwrap();
        c.learn_field(f(Header::Ether, "type"), &[0x1234]);
        assert_eq!(
            c.dependencies(f(Header::Ip, "saddr"), at()).unwrap(),
            vec![Dep::Field(ether_type(), 0x0800)]
        );
    }

    #[test]
    fn learning_from_sets_follows_nft() {
        let mut c = ProtoCtx::default();
        c.learn_meta(MetaKey::Protocol, &[0x86dd, 0x0800]);
        assert_eq!(
            c.dependencies(f(Header::Ip, "saddr"), at()).unwrap(),
            vec![]
        );
        let mut c = ProtoCtx::default();
        c.learn_meta(MetaKey::L4Proto, &[6, 17, 1]);
        let e = c.dependencies(f(Header::Tcp, "dport"), at()).unwrap_err();
        assert_eq!(e.message, "conflicting protocols specified: udp vs. tcp");
        let mut c = ProtoCtx::default();
        c.learn_meta(MetaKey::Protocol, &[0x86dd]);
        assert_eq!(
            c.dependencies(f(Header::Icmp, "type"), at()).unwrap(),
            vec![Dep::Meta(MetaKey::L4Proto, 1)]
        );
    }
}
