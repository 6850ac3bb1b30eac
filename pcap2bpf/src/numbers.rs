//! Protocol numbers: the one table the checks and lowering read, named
//! as in libpcap and the system headers (`ethertype.h`, `llc.h`,
//! `ppp.h`, `netinet/in.h`, ...).

// ---- EtherTypes ----

/// The largest 802.3 length field; larger values are EtherTypes.
pub(crate) const ETHERMTU: u32 = 1500;
/// Xerox NS.
pub(crate) const ETHERTYPE_NS: u32 = 0x0600;
/// IPv4.
pub(crate) const ETHERTYPE_IP: u32 = 0x0800;
/// ARP.
pub(crate) const ETHERTYPE_ARP: u32 = 0x0806;
/// DEC MOP dump/load.
pub(crate) const ETHERTYPE_MOPDL: u32 = 0x6001;
/// DEC MOP remote console.
pub(crate) const ETHERTYPE_MOPRC: u32 = 0x6002;
/// DECnet Phase IV.
pub(crate) const ETHERTYPE_DN: u32 = 0x6003;
/// DEC LAT.
pub(crate) const ETHERTYPE_LAT: u32 = 0x6004;
/// DEC SCA.
pub(crate) const ETHERTYPE_SCA: u32 = 0x6007;
/// Transparent Ethernet bridging: Geneve's protocol type for Ethernet.
pub(crate) const ETHERTYPE_TEB: u32 = 0x6558;
/// Reverse ARP.
pub(crate) const ETHERTYPE_REVARP: u32 = 0x8035;
/// AppleTalk.
pub(crate) const ETHERTYPE_ATALK: u32 = 0x809b;
/// AppleTalk ARP.
pub(crate) const ETHERTYPE_AARP: u32 = 0x80f3;
/// 802.1Q VLAN tag.
pub(crate) const ETHERTYPE_8021Q: u32 = 0x8100;
/// Novell IPX.
pub(crate) const ETHERTYPE_IPX: u32 = 0x8137;
/// IPv6.
pub(crate) const ETHERTYPE_IPV6: u32 = 0x86dd;
/// MPLS unicast.
pub(crate) const ETHERTYPE_MPLS: u32 = 0x8847;
/// PPPoE discovery.
pub(crate) const ETHERTYPE_PPPOED: u32 = 0x8863;
/// PPPoE session.
pub(crate) const ETHERTYPE_PPPOES: u32 = 0x8864;
/// 802.1ad service VLAN tag.
pub(crate) const ETHERTYPE_8021AD: u32 = 0x88a8;
/// Loopback (configuration testing).
pub(crate) const ETHERTYPE_LOOPBACK: u32 = 0x9000;
/// Pre-802.1ad QinQ tag.
pub(crate) const ETHERTYPE_8021QINQ: u32 = 0x9100;

// ---- 802.2 LLC ----

/// IP over 802.2.
pub(crate) const LLCSAP_IP: u32 = 0x06;
/// Spanning tree (802.1D).
pub(crate) const LLCSAP_8021D: u32 = 0x42;
/// SNAP: an OUI and an EtherType follow.
pub(crate) const LLCSAP_SNAP: u8 = 0xaa;
/// Novell IPX.
pub(crate) const LLCSAP_IPX: u32 = 0xe0;
/// NetBEUI.
pub(crate) const LLCSAP_NETBEUI: u32 = 0xf0;
/// ISO network layer.
pub(crate) const LLCSAP_ISONS: u32 = 0xfe;
/// Unnumbered information, the control field of a SNAP frame.
pub(crate) const LLC_UI: u8 = 0x03;
/// SNAP OUI: the EtherType is an Ethernet protocol.
pub(crate) const OUI_ENCAP_ETHER: u32 = 0x000000;
/// SNAP OUI of AppleTalk.
pub(crate) const OUI_APPLETALK: u32 = 0x080007;

// ---- PPP protocols ----

/// IPv4.
pub(crate) const PPP_IP: u32 = 0x21;
/// ISO network layer.
pub(crate) const PPP_OSI: u32 = 0x23;
/// DECnet.
pub(crate) const PPP_DECNET: u32 = 0x27;
/// AppleTalk.
pub(crate) const PPP_APPLE: u32 = 0x29;
/// Novell IPX.
pub(crate) const PPP_IPX: u32 = 0x2b;
/// Bridging PDU (spanning tree).
pub(crate) const PPP_BRPDU: u32 = 0x31;
/// Xerox NS.
pub(crate) const PPP_NS: u32 = 0x3f;
/// IPv6.
pub(crate) const PPP_IPV6: u32 = 0x57;
/// MPLS unicast.
pub(crate) const PPP_MPLS_UCAST: u32 = 0x0281;

// ---- IP protocol numbers ----

/// ICMP.
pub(crate) const IPPROTO_ICMP: u32 = 1;
/// IGMP.
pub(crate) const IPPROTO_IGMP: u32 = 2;
/// TCP.
pub(crate) const IPPROTO_TCP: u32 = 6;
/// Cisco IGRP.
pub(crate) const IPPROTO_IGRP: u32 = 9;
/// UDP.
pub(crate) const IPPROTO_UDP: u32 = 17;
/// IPv6 fragment header.
pub(crate) const IPPROTO_FRAGMENT: u32 = 44;
/// IPsec ESP.
pub(crate) const IPPROTO_ESP: u32 = 50;
/// IPsec AH.
pub(crate) const IPPROTO_AH: u32 = 51;
/// ICMPv6.
pub(crate) const IPPROTO_ICMPV6: u32 = 58;
/// PIM.
pub(crate) const IPPROTO_PIM: u32 = 103;
/// VRRP (CARP uses the same number).
pub(crate) const IPPROTO_VRRP: u32 = 112;
/// SCTP.
pub(crate) const IPPROTO_SCTP: u32 = 132;

// ---- ISO (OSI) network layer protocols and IS-IS PDU types ----

/// CLNP.
pub(crate) const ISO8473_CLNP: u32 = 0x81;
/// ES-IS.
pub(crate) const ISO9542_ESIS: u32 = 0x82;
/// IS-IS.
pub(crate) const ISO10589_ISIS: u32 = 0x83;
/// IS-IS level 1 LAN hello.
pub(crate) const ISIS_L1_LAN_IIH: u32 = 15;
/// IS-IS level 2 LAN hello.
pub(crate) const ISIS_L2_LAN_IIH: u32 = 16;
/// IS-IS point-to-point hello.
pub(crate) const ISIS_PTP_IIH: u32 = 17;
/// IS-IS level 1 link state PDU.
pub(crate) const ISIS_L1_LSP: u32 = 18;
/// IS-IS level 2 link state PDU.
pub(crate) const ISIS_L2_LSP: u32 = 20;
/// IS-IS level 1 complete sequence numbers PDU.
pub(crate) const ISIS_L1_CSNP: u32 = 24;
/// IS-IS level 2 complete sequence numbers PDU.
pub(crate) const ISIS_L2_CSNP: u32 = 25;
/// IS-IS level 1 partial sequence numbers PDU.
pub(crate) const ISIS_L1_PSNP: u32 = 26;
/// IS-IS level 2 partial sequence numbers PDU.
pub(crate) const ISIS_L2_PSNP: u32 = 27;

// ---- Link-layer header fields ----

/// Linux cooked capture protocol: 802.3 frames without 802.2 LLC (IPX).
pub(crate) const LINUX_SLL_P_802_3: u32 = 1;
/// Linux cooked capture protocol: 802.2 LLC frames.
pub(crate) const LINUX_SLL_P_802_2: u32 = 4;
/// Linux packet type (`linux/if_packet.h`) of a packet this host sent.
pub(crate) const PACKET_OUTGOING: u32 = 4;
/// BSD loopback address family: IPv4.
pub(crate) const BSD_AFNUM_INET: u32 = 2;
/// BSD loopback address family: IPv6 on NetBSD, OpenBSD, BSD/OS.
pub(crate) const BSD_AFNUM_INET6_BSD: u32 = 24;
/// BSD loopback address family: IPv6 on FreeBSD.
pub(crate) const BSD_AFNUM_INET6_FREEBSD: u32 = 28;
/// BSD loopback address family: IPv6 on Darwin.
pub(crate) const BSD_AFNUM_INET6_DARWIN: u32 = 30;

// ---- Ports ----

/// Geneve's UDP port.
pub(crate) const GENEVE_PORT: u32 = 6081;
