//! What nft's netdev hook knows about a packet before the first rule
//! runs (`nft_do_chain_netdev` and `nft_set_pktinfo_*`), computed at the
//! start of the program into IR variables:
//!
//! - where the network header starts (after the Ethernet header and, on
//!   a tagged frame, the outer VLAN tag, which the kernel takes off
//!   before the hook) and the EtherType after it (`meta protocol`);
//! - `skb->len`, what counters, quotas and `meta length` count: from the
//!   network header at ingress, from the Ethernet header at egress;
//! - for IPv4 and IPv6 packets the kernel accepts as such, the transport
//!   protocol (`meta l4proto`), the transport header's offset and the
//!   fragment offset: IPv4 after `__nft_set_pktinfo_ipv4_validate`
//!   (version, `ihl >= 5`, the total length against `skb->len`), IPv6
//!   after `__nft_set_pktinfo_ipv6_validate` and `ipv6_find_hdr`, which
//!   walks the extension headers (hop-by-hop, routing, destination
//!   options, fragment) and stops at AH. Otherwise nothing: transport
//!   matches and `meta l4proto` do not match.
//!
//! Offsets are from the start of the frame as the program sees it. XDP
//! sees the outer tag in the frame; tcx sees the frame without it (the
//! tag is in the skb's metadata), as netfilter does.

use pktmatch::Span;
use pktmatch::ir::{BinOp, CmpOp, Cond, Edge, Val, ValNode};

use super::Lower;
use super::cfg::Short;

/// The variables of the packet's facts.
pub(super) mod var {
    /// nft's `skb->len`.
    pub const LEN: u32 = 0;
    /// Offset of the network header.
    pub const NH: u32 = 1;
    /// `meta protocol`: the EtherType after the outer tag.
    pub const PROTO: u32 = 2;
    /// 1 when the kernel found a transport header (`NFT_PKTINFO_L4PROTO`).
    pub const L4: u32 = 3;
    /// `meta l4proto`.
    pub const L4PROTO: u32 = 4;
    /// Offset of the transport header.
    pub const THOFF: u32 = 5;
    /// The fragment offset (0: not a fragment, or the first).
    pub const FRAGOFF: u32 = 6;
    /// `meta pkttype`, computed from the destination address (XDP).
    pub const PKTTYPE: u32 = 7;
    /// The offsets of the IPv6 extension headers walked, one a step.
    pub const WALK: u32 = 8;
    /// The number of a verdict map's verdict, after its lookup (set
    /// again by each verdict map on the path).
    pub const VMAP: u32 = WALK + super::IPV6_EXT_HEADERS;
    /// The value a classifier's lookup found: the rule's index in its
    /// run, shifted left by one, and its verdict in the low bit.
    pub const CLASSIFIED: u32 = VMAP + 1;
}

/// How many IPv6 extension headers the walk goes through before it gives
/// up (the kernel's walk has no limit; a packet with more has, for the
/// program, no transport header).
pub const IPV6_EXT_HEADERS: u32 = 8;

/// `ipv6_ext_hdr()` minus `NEXTHDR_NONE`: the headers `ipv6_find_hdr`
/// walks over (AH is one, but the netdev hook stops at it).
const HOP: u32 = 0;
const ROUTING: u32 = 43;
const FRAGMENT: u32 = 44;
const AUTH: u32 = 51;
const NONE: u32 = 59;
const DEST: u32 = 60;

const ETH_HLEN: u32 = 14;
const VLAN_HLEN: u32 = 4;
const ETH_P_IP: u32 = 0x0800;
const ETH_P_IPV6: u32 = 0x86dd;
const ETH_P_8021Q: u32 = 0x8100;
const ETH_P_8021AD: u32 = 0x88a8;

/// Where a value comes from at each step of the IPv6 walk.
#[derive(Clone, Copy)]
struct Step {
    /// The header type found.
    next: Val,
    /// Its offset.
    at: Val,
}

impl Lower<'_> {
    /// A variable's value.
    pub(super) fn var(&mut self, n: u32) -> Val {
        self.ir.val(ValNode::Var(n))
    }

    /// A constant.
    pub(super) fn k(&mut self, k: u32) -> Val {
        self.ir.k(k)
    }

    /// `a op b`.
    pub(super) fn bin(&mut self, op: BinOp, a: Val, b: Val) -> Val {
        self.ir.bin(op, a, b)
    }

    /// `a + k`.
    fn add_k(&mut self, a: Val, k: u32) -> Val {
        let k = self.k(k);
        self.bin(BinOp::Add, a, k)
    }

    /// A test block whose loads always fit (the prologue checks lengths
    /// first).
    fn cmp(&mut self, a: Val, op: CmpOp, b: Val, t: Edge, f: Edge) -> Edge {
        let cond = Cond::Cmp {
            a,
            op,
            b,
            relation: false,
        };
        self.cfg.test(cond, t, f, Short::False, Span::default())
    }

    /// `a op k`.
    fn cmp_k(&mut self, a: Val, op: CmpOp, k: u32, t: Edge, f: Edge) -> Edge {
        let b = self.k(k);
        self.cmp(a, op, b, t, f)
    }

    /// `var = val`, then `next`.
    fn set(&mut self, var: u32, val: Val, next: Edge) -> Edge {
        self.cfg.test(
            Cond::Let { var, val },
            next,
            Edge::REJECT,
            Short::True,
            Span::default(),
        )
    }

    /// Sets several variables, in order, then goes to `next`.
    fn set_all(&mut self, vars: &[(u32, Val)], next: Edge) -> Edge {
        vars.iter()
            .rev()
            .fold(next, |e, &(var, val)| self.set(var, val, e))
    }

    /// The packet's length as the program sees it.
    fn len(&mut self) -> Val {
        self.ir.val(ValNode::Len)
    }

    /// Whether the packet has `n` bytes from `at`: `len >= at + n`.
    fn has(&mut self, at: Val, n: u32, t: Edge, f: Edge) -> Edge {
        let len = self.len();
        let end = self.add_k(at, n);
        self.cmp(len, CmpOp::Ge, end, t, f)
    }

    /// A byte, 16 or 32 bits at `at + k`.
    fn load_at(&mut self, at: Val, k: u32, size: u8) -> Val {
        self.ir.load(Some(at), k, size)
    }

    /// The prologue: the packet's facts into their variables, then
    /// `body`. Frames the hook never sees (shorter than an Ethernet
    /// header, or tagged and too short for the kernel to take the tag
    /// off) go to `unseen`.
    pub(super) fn prologue(&mut self, body: Edge, unseen: Edge) -> Edge {
        let body = if self.uses_pkttype && self.hook.target() == pktmatch::Target::Xdp {
            self.pkttype(body)
        } else {
            body
        };
        let net = self.network(body);
        let len = self.len();
        let ethertype = self.ir.load(None, 12, 2);
        match self.hook {
            super::super::Attach::Xdp => {
                // The tag is in the frame: the network header is after it.
                let tagged_proto = self.ir.load(None, 16, 2);
                let tagged_len = self.sub_k(len, ETH_HLEN + VLAN_HLEN);
                let nh18 = self.k(ETH_HLEN + VLAN_HLEN);
                let tagged = self.set_all(
                    &[
                        (var::NH, nh18),
                        (var::PROTO, tagged_proto),
                        (var::LEN, tagged_len),
                    ],
                    net,
                );
                // `skb_vlan_untag` needs the tag and the type after it.
                let tagged = self.cmp_k(len, CmpOp::Ge, ETH_HLEN + VLAN_HLEN + 2, tagged, unseen);
                let plain_len = self.sub_k(len, ETH_HLEN);
                let nh14 = self.k(ETH_HLEN);
                let plain = self.set_all(
                    &[
                        (var::NH, nh14),
                        (var::PROTO, ethertype),
                        (var::LEN, plain_len),
                    ],
                    net,
                );
                let ad = self.cmp_k(ethertype, CmpOp::Eq, ETH_P_8021AD, tagged, plain);
                let q = self.cmp_k(ethertype, CmpOp::Eq, ETH_P_8021Q, tagged, ad);
                self.cmp_k(len, CmpOp::Ge, ETH_HLEN, q, unseen)
            }
            super::super::Attach::TcxIngress | super::super::Attach::TcxEgress => {
                // The outer tag is in the skb's metadata; at ingress
                // `skb->len` starts at the network header, at egress at
                // the Ethernet header.
                let egress = self.hook == super::super::Attach::TcxEgress;
                let skb_len = if egress {
                    len
                } else {
                    self.sub_k(len, ETH_HLEN)
                };
                let nh14 = self.k(ETH_HLEN);
                self.set_all(
                    &[
                        (var::NH, nh14),
                        (var::PROTO, ethertype),
                        (var::LEN, skb_len),
                    ],
                    net,
                )
            }
        }
    }

    /// `a - k`.
    fn sub_k(&mut self, a: Val, k: u32) -> Val {
        let k = self.k(k);
        self.bin(BinOp::Sub, a, k)
    }

    /// Where the kernel's `skb->data` is, as an offset in the frame: the
    /// network header at ingress, the frame's start at egress. Offsets
    /// the kernel keeps (the transport header's) count from there.
    fn data_offset(&mut self) -> Val {
        if self.hook == super::super::Attach::TcxEgress {
            self.k(0)
        } else {
            self.var(var::NH)
        }
    }

    /// The network layer: IPv4 and IPv6 facts, or none.
    fn network(&mut self, body: Edge) -> Edge {
        let zero = self.k(0);
        let unspec = self.set_all(
            &[
                (var::L4, zero),
                (var::L4PROTO, zero),
                (var::THOFF, zero),
                (var::FRAGOFF, zero),
            ],
            body,
        );
        let v4 = self.ipv4(body, unspec);
        let v6 = self.ipv6(body, unspec);
        let proto = self.var(var::PROTO);
        let is6 = self.cmp_k(proto, CmpOp::Eq, ETH_P_IPV6, v6, unspec);
        self.cmp_k(proto, CmpOp::Eq, ETH_P_IP, v4, is6)
    }

    /// The transport facts, then `body`.
    fn found(&mut self, proto: Val, thoff: Val, fragoff: Val, body: Edge) -> Edge {
        let one = self.k(1);
        self.set_all(
            &[
                (var::L4, one),
                (var::L4PROTO, proto),
                (var::THOFF, thoff),
                (var::FRAGOFF, fragoff),
            ],
            body,
        )
    }

    /// `__nft_set_pktinfo_ipv4_validate`.
    fn ipv4(&mut self, body: Edge, unspec: Edge) -> Edge {
        let nh = self.var(var::NH);
        let b0 = self.load_at(nh, 0, 1);
        let fifteen = self.k(0xf);
        let ihl = self.bin(BinOp::And, b0, fifteen);
        let four = self.k(4);
        let hlen = self.bin(BinOp::Mul, ihl, four);
        let thoff = self.bin(BinOp::Add, nh, hlen);
        let proto = self.load_at(nh, 9, 1);
        let frag = self.load_at(nh, 6, 2);
        let mask = self.k(0x1fff);
        let fragoff = self.bin(BinOp::And, frag, mask);
        let found = self.found(proto, thoff, fragoff, body);
        // `len < thoff`, with thoff counted from skb->data.
        let data = self.data_offset();
        let rel = self.bin(BinOp::Sub, thoff, data);
        let tot_len = self.load_at(nh, 2, 2);
        let covers = self.cmp(tot_len, CmpOp::Ge, rel, found, unspec);
        let skb_len = self.var(var::LEN);
        let fits = self.cmp(skb_len, CmpOp::Ge, tot_len, covers, unspec);
        let ihl5 = self.cmp_k(ihl, CmpOp::Ge, 5, fits, unspec);
        let f0 = self.k(0xf0);
        let version = self.bin(BinOp::And, b0, f0);
        let v4 = self.cmp_k(version, CmpOp::Eq, 0x40, ihl5, unspec);
        self.has(nh, 20, v4, unspec)
    }

    /// `__nft_set_pktinfo_ipv6_validate` and `ipv6_find_hdr`.
    fn ipv6(&mut self, body: Edge, unspec: Edge) -> Edge {
        let nh = self.var(var::NH);
        let first = Step {
            next: self.load_at(nh, 6, 1),
            at: self.add_k(nh, 40),
        };
        let walk = self.walk(first, 0, body, unspec);
        // `payload_len + 40 > skb->len - skb_network_offset`.
        let payload = self.load_at(nh, 4, 2);
        let whole = self.add_k(payload, 40);
        let skb_len = self.var(var::LEN);
        let data = self.data_offset();
        let before = self.bin(BinOp::Sub, nh, data);
        let from_nh = self.bin(BinOp::Sub, skb_len, before);
        let fits = self.cmp(from_nh, CmpOp::Ge, whole, walk, unspec);
        let b0 = self.load_at(nh, 0, 1);
        let f0 = self.k(0xf0);
        let version = self.bin(BinOp::And, b0, f0);
        let v6 = self.cmp_k(version, CmpOp::Eq, 0x60, fits, unspec);
        self.has(nh, 40, v6, unspec)
    }

    /// One step (number `i`) of `ipv6_find_hdr(skb, &thoff, -1, &fragoff,
    /// IP6_FH_F_AUTH)`, at the header `s`.
    fn walk(&mut self, s: Step, i: u32, body: Edge, unspec: Edge) -> Edge {
        let zero = self.k(0);
        // Not an extension header, or NONE: the transport header.
        let done = self.found(s.next, s.at, zero, body);
        let (options, first_fragment) = if i < IPV6_EXT_HEADERS {
            // The next step reads the type this header names and starts
            // where it ends.
            let slot = var::WALK + i;
            let next = Step {
                next: self.load_at(s.at, 0, 1),
                at: self.var(slot),
            };
            let rest = self.walk(next, i + 1, body, unspec);
            // Hop-by-hop, routing, destination options: (hdrlen + 1) * 8
            // bytes.
            let hdrlen = self.load_at(s.at, 1, 1);
            let one = self.k(1);
            let words = self.bin(BinOp::Add, hdrlen, one);
            let eight = self.k(8);
            let bytes = self.bin(BinOp::Mul, words, eight);
            let end = self.bin(BinOp::Add, s.at, bytes);
            let options = self.set(slot, end, rest);
            // A fragment header: 8 bytes.
            let end8 = self.add_k(s.at, 8);
            (options, self.set(slot, end8, rest))
        } else {
            // Past the walk's limit: no transport header.
            (unspec, unspec)
        };
        let fragment = self.fragment(s, first_fragment, body, unspec);
        let routing = self.has(s.at, 4, options, unspec);
        // AH ends the walk at the netdev hook (IP6_FH_F_AUTH).
        let auth = self.cmp_k(s.next, CmpOp::Eq, AUTH, done, options);
        let frag = self.cmp_k(s.next, CmpOp::Eq, FRAGMENT, fragment, auth);
        let by_type = self.cmp_k(s.next, CmpOp::Eq, ROUTING, routing, frag);
        // Every extension header needs its first two bytes.
        let in_packet = self.has(s.at, 2, by_type, unspec);
        self.ext_dispatch(s.next, in_packet, done)
    }

    /// `is_ext ? ext : done` for the header type `next`.
    fn ext_dispatch(&mut self, next: Val, ext: Edge, done: Edge) -> Edge {
        [HOP, ROUTING, FRAGMENT, AUTH, DEST]
            .into_iter()
            .rev()
            .fold(done, |e, t| self.cmp_k(next, CmpOp::Eq, t, ext, e))
    }

    /// A fragment header at `s`: a first fragment goes on to `first`; a
    /// later one ends the walk with the fragment offset and the transport
    /// offset left at 0 (from `skb->data`), if the header after it is not
    /// an extension header; else the kernel gives up.
    fn fragment(&mut self, s: Step, first: Edge, body: Edge, unspec: Edge) -> Edge {
        let raw = self.load_at(s.at, 2, 2);
        let mask = self.k(0xfff8);
        let fragoff = self.bin(BinOp::And, raw, mask);
        let inner = self.load_at(s.at, 0, 1);
        let data = self.data_offset();
        let later = self.found(inner, data, fragoff, body);
        let none = self.cmp_k(inner, CmpOp::Eq, NONE, later, unspec);
        let later = self.ext_dispatch(inner, none, later);
        let is_first = self.cmp_k(fragoff, CmpOp::Eq, 0, first, later);
        self.has(s.at, 4, is_first, unspec)
    }

    /// `meta pkttype` from the destination address, as `eth_type_trans`
    /// sets it (XDP has no skb): broadcast 1, multicast 2, the device's
    /// own address 0, another host's 3.
    fn pkttype(&mut self, body: Edge) -> Edge {
        let set = |l: &mut Self, n: u32| {
            let v = l.k(n);
            l.set(var::PKTTYPE, v, body)
        };
        let host = set(self, 0);
        let broadcast = set(self, 1);
        let multicast = set(self, 2);
        let other = set(self, 3);
        let hi = self.ir.load(None, 0, 4);
        let lo = self.ir.load(None, 4, 2);
        let mac = self.device_mac.unwrap_or_default();
        let mac_hi = u32::from_be_bytes([mac[0], mac[1], mac[2], mac[3]]);
        let mac_lo = u32::from(u16::from_be_bytes([mac[4], mac[5]]));
        let mine_lo = self.cmp_k(lo, CmpOp::Eq, mac_lo, host, other);
        let mine = self.cmp_k(hi, CmpOp::Eq, mac_hi, mine_lo, other);
        let all_lo = self.cmp_k(lo, CmpOp::Eq, 0xffff, broadcast, multicast);
        let all = self.cmp_k(hi, CmpOp::Eq, 0xffff_ffff, all_lo, multicast);
        let first = self.ir.load(None, 0, 1);
        self.cmp_k(first, CmpOp::Set, 1, all, mine)
    }
}
