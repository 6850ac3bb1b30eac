//! The link layer as libpcap's code generator sees it, shared by the
//! checks and lowering.

use crate::LinkType;

/// The link layer at a point of the filter: the capture's link type,
/// or PPP after `pppoes`, or Ethernet inside `geneve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    /// Ethernet (DLT_EN10MB), also the frame inside Geneve.
    Ether,
    /// Raw IPv4/IPv6 (DLT_RAW).
    Raw,
    /// Linux cooked capture v1 (DLT_LINUX_SLL).
    Sll,
    /// Linux cooked capture v2 (DLT_LINUX_SLL2).
    Sll2,
    /// BSD loopback (DLT_NULL).
    Null,
    /// OpenBSD loopback (DLT_LOOP).
    Loop,
    /// PPP, inside a PPPoE session.
    Ppp,
}

impl Link {
    /// The link layer at the start of a filter for `link`.
    pub(crate) fn of(link: LinkType) -> Link {
        match link {
            LinkType::En10mb => Link::Ether,
            LinkType::Raw => Link::Raw,
            LinkType::LinuxSll => Link::Sll,
            LinkType::LinuxSll2 => Link::Sll2,
            LinkType::Null => Link::Null,
            LinkType::Loop => Link::Loop,
        }
    }

    /// The name libpcap's messages use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Link::Ether => "Ethernet",
            Link::Raw => "Raw IP",
            Link::Sll => "Linux cooked v1",
            Link::Sll2 => "Linux cooked v2",
            Link::Null => "BSD loopback",
            Link::Loop => "OpenBSD loopback",
            Link::Ppp => "PPP",
        }
    }

    /// The link-layer type as libpcap's newer messages name it
    /// (`pcapint_datalink_val_to_string`: DLT name and description).
    pub(crate) fn dlt(self) -> &'static str {
        match self {
            Link::Ether => "DLT_EN10MB (Ethernet)",
            Link::Raw => "DLT_RAW (Raw IPv4/IPv6)",
            Link::Sll => "DLT_LINUX_SLL (Linux cooked v1)",
            Link::Sll2 => "DLT_LINUX_SLL2 (Linux cooked v2)",
            Link::Null => "DLT_NULL (BSD loopback)",
            Link::Loop => "DLT_LOOP (OpenBSD loopback)",
            Link::Ppp => "DLT_PPP (Point-to-Point Protocol)",
        }
    }
}

/// Why a capture file cannot have `keyword` (`inbound`, `outbound` or
/// `ifindex`) on `dlt` ([`Link::dlt`]): libpcap's development branch
/// (`require_basic_bpf_extensions`); only a live capture's metadata has
/// the direction or interface where the link-layer header does not.
pub(crate) fn not_live(keyword: &str, dlt: &str) -> String {
    format!("not a live capture, '{keyword}' not supported on {dlt}")
}
