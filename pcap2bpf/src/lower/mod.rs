//! Lowering: the checked tree to the IR, with libpcap's meaning.
//!
//! This follows libpcap 1.10.3's `gencode.c` closely: each primitive
//! becomes the same tests, on the same bytes, in the same order (the order
//! matters: a load past the captured bytes rejects the whole packet, so
//! `a or b` must not look at `b`'s bytes when `a` holds). `vlan`, `mpls`
//! and `pppoes` shift the offsets of everything lowered after them, as
//! libpcap's `off_linkpl`/`off_linktype`/`off_nl` do; `geneve` computes
//! the offsets of the encapsulated frame at run time into variables
//! (libpcap's scratch registers) and everything after it uses those.
//!
//! One module a job, in the order a packet is read: `formula` (tests
//! combined with and/or/not, then blocks), `offset` (where each layer
//! starts) and `cmp` (loads and comparisons there), then `link` (link
//! layer), `encap` (VLAN, MPLS, PPPoE), `network` (IPv4, IPv6, ARP,
//! DECnet, ISO), `transport` (ports), `tunnel` (Geneve) and `arith`
//! (relations and arithmetic); `modes` holds the two opt-in modes
//! libpcap lacks (the IPv6 extension-header walk, VLAN tags looked
//! through), which change the meaning only when asked for. The checks have already refused the
//! filters a user can get wrong, [`crate::check::check_target`] those
//! the target cannot run: lowering fails only on its own limits (the
//! number of `geneve`) and on tests that read the Geneve offsets on a
//! path where `geneve` did not match (`tunnel::check_vars_set`, a flow
//! analysis over the emitted blocks, which needs to know which tests
//! read those offsets: a fact of lowering).

mod arith;
mod cmp;
mod encap;
mod formula;
mod link;
mod modes;
mod network;
mod offset;
mod transport;
mod tunnel;

use pktmatch::Target;
use pktmatch::ir::{Edge, Ir, Val};

use crate::LinkType;
use crate::check::link::Link;
use crate::check::{Atom, Checked, TargetFacts};
use crate::error::CompileError;
use crate::numbers::ETHERTYPE_PPPOED;
use crate::syntax::ast::{BoolTree, Primitive, Proto, Span};
use formula::{P, and, not, or, to_blocks};
use offset::Offsets;
use tunnel::{check_vars_set, has_geneve, pcap_optimizes};

pub use modes::IPV6_WALK_HEADERS;

/// What the lowering needs to know about where the filter runs: made with
/// [`LowerOptions::offline`] or [`LowerOptions::live`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LowerOptions {
    /// The link type of the packets.
    link: LinkType,
    /// The outer VLAN tag may be in metadata (tc, socket filters): lower
    /// `vlan` the way libpcap does with Linux BPF extensions.
    vlan_meta: bool,
    /// Filtering a capture file: `inbound`, `outbound` and `ifindex` on
    /// links without a direction field are errors, as in libpcap
    /// ([`crate::check::check_target`] raises them).
    offline: bool,
    /// `inbound`/`outbound` are known at compile time (XDP: always
    /// inbound): `Some(outgoing)`.
    fixed_direction: Option<bool>,
    /// The IPv4 netmask for `ip broadcast`.
    netmask: Option<u32>,
    /// Opt-in mode: layer-4 tests on IPv6 walk the extension headers
    /// first ([`LowerOptions::ipv6_ext_headers`]).
    ipv6_ext_headers: bool,
    /// Opt-in mode: layer-3 and layer-4 primitives also look through one
    /// or two VLAN tags ([`LowerOptions::vlan_any`]).
    vlan_any: bool,
}

impl LowerOptions {
    /// For packets of a capture file, run through the test-run XDP
    /// program: the tag is in the frame, `inbound`/`ifindex` have
    /// libpcap's capture-file meaning.
    pub fn offline(link: LinkType, netmask: Option<u32>) -> Self {
        LowerOptions {
            link,
            vlan_meta: false,
            offline: true,
            fixed_direction: Some(false),
            netmask,
            ipv6_ext_headers: false,
            vlan_any: false,
        }
    }

    /// For packets of a live hook of `target`: XDP sees the frame with
    /// its tag and only inbound packets; tc and socket filters may find
    /// the outer VLAN tag in metadata and read the direction at run time;
    /// a probe function sees bytes only, as a capture file's reader does
    /// ([`LowerOptions::offline`]).
    pub fn live(link: LinkType, target: Target, netmask: Option<u32>) -> Self {
        if target == Target::Probe {
            return LowerOptions::offline(link, netmask);
        }
        let xdp = target == Target::Xdp;
        LowerOptions {
            link,
            vlan_meta: !xdp,
            offline: false,
            fixed_direction: xdp.then_some(false),
            netmask,
            ipv6_ext_headers: false,
            vlan_any: false,
        }
    }

    /// Sets whether `inbound`/`outbound` are known at compile time:
    /// `Some(outgoing)` when every packet goes the same way (tc egress:
    /// `Some(true)`), `None` to read the direction from the packet's
    /// metadata.
    pub fn fixed_direction(mut self, outgoing: Option<bool>) -> Self {
        self.fixed_direction = outgoing;
        self
    }

    /// Opt-in mode (off by default): on IPv6, `tcp`, `udp`, `sctp`,
    /// `icmp6`, `[ip6] proto N` and the other protocol tests, and the
    /// port tests (`port`, `portrange`, `tcp port` ...), walk the IPv6
    /// extension headers first, as libpcap's `ip6 protochain` does:
    /// hop-by-hop (0), destination options (60), routing (43) and
    /// fragment (44) headers are skipped by `(length + 1) * 8` bytes, AH
    /// (51) with libpcap's rule (the offset becomes `(length + 2) * 4`
    /// from the IPv6 header), the walk stops at the protocol looked for,
    /// at `no next header` (59) or at any other header, and follows at
    /// most [`IPV6_WALK_HEADERS`] headers (a longer chain does not
    /// match). Ports are read where the walk stopped, fragment or not
    /// (as `ip6 protochain`, the walk passes a fragment header whatever
    /// its offset: a later fragment's payload is read as if it were the
    /// transport header). IPv4 keeps libpcap's meaning, and so do
    /// `ip6 protochain` and relations (`tcp[13]`, `ip6[40]` read at
    /// libpcap's offsets).
    pub fn ipv6_ext_headers(mut self, on: bool) -> Self {
        self.ipv6_ext_headers = on;
        self
    }

    /// Opt-in mode (off by default): every layer-3 or layer-4 primitive
    /// `X` (hosts, `net`, ports, `ip`, `ip6`, `arp`, `tcp`, `proto`,
    /// `protochain`, `ip multicast`/`broadcast`, relations that read a
    /// network or transport header...) also looks through one or two
    /// VLAN tags: it means libpcap's `X or (vlan and (X or (vlan and X)))`
    /// (in libpcap's language, where `vlan` shifts everything after it:
    /// X on the frame as it is, or a tag and X after it, or two tags and
    /// X after them), with the shifts ending with `X`: the rest of the
    /// filter reads the offsets it reads without the mode. A tag is what
    /// libpcap's `vlan` takes: TPID 0x8100 (802.1Q), 0x88a8 (802.1ad) or
    /// 0x9100, in the frame, or (tc, socket filters) the outer one in the
    /// packet's metadata. Only on Ethernet, and only for primitives
    /// before which the filter has no `vlan`, `mpls`, `pppoes` or
    /// `geneve` (those keep libpcap's meaning; `protochain` too where
    /// the tag may be in metadata). Link-layer primitives (`ether ...`,
    /// `ether[...]`, `less`, `greater`, `vlan`, `mpls`, `llc`,
    /// `inbound`...) are unchanged.
    pub fn vlan_any(mut self, on: bool) -> Self {
        self.vlan_any = on;
        self
    }

    /// What [`crate::check::check_target`] needs to know of these
    /// options.
    pub fn facts(&self) -> TargetFacts {
        TargetFacts {
            capture_file: self.offline,
            vlan_meta: self.vlan_meta,
            netmask: self.netmask.is_some(),
        }
    }
}

/// Lowers `c` into `ir`, setting its entry. `c` must have passed
/// [`crate::check::check_target`] for `opts` (as [`crate::lower_ir`]
/// does): what it refuses is an internal error here.
pub fn lower(c: Option<&Checked>, opts: &LowerOptions, ir: &mut Ir) -> Result<(), CompileError> {
    let Some(c) = c else {
        ir.entry = Some(Edge::ACCEPT);
        return Ok(());
    };
    // libpcap turns its optimiser off for filters with `geneve`.
    ir.pcap_unoptimized = has_geneve(c);
    let mut l = Lower::new(opts, ir);
    l.pcap_optimizes = pcap_optimizes(c);
    let p = l.node(c)?;
    let made_vars = l.next_var > 0;
    let (blocks, entry) = to_blocks(&p);
    ir.blocks = blocks;
    ir.entry = Some(entry);
    // Without variables (only `geneve` makes them) nothing reads one.
    if made_vars {
        check_vars_set(ir)
    } else {
        Ok(())
    }
}

/// The lowering of one filter: the IR being built and the state
/// earlier primitives leave for later ones.
struct Lower<'a> {
    ir: &'a mut Ir,
    opts: LowerOptions,
    /// The link layer at this point of the filter.
    link: Link,
    /// Where the layers start at this point of the filter.
    off: Offsets,
    mpls_depth: u32,
    vlan_depth: u32,
    /// libpcap's `is_geneve`: after `geneve` (until `pppoes`), link-layer
    /// address tests first check that the encapsulated frame has an
    /// Ethernet header; these are the variables of its start and of its
    /// payload, which differ exactly then.
    geneve: Option<(Val, Val)>,
    /// The next free variable.
    next_var: u32,
    /// libpcap optimises this filter ([`tunnel::pcap_optimizes`]): its
    /// optimiser folds a constant index into the offset of a load, and
    /// that sum wraps around 32 bits (`arith::Lower::indexed`).
    pcap_optimizes: bool,
    /// The variables of the IPv6 extension-header walk
    /// ([`LowerOptions::ipv6_ext_headers`]), one set per offset of the
    /// network layer: each always holds the same function of the packet.
    walk_vars: Vec<modes::WalkVars>,
    span: Span,
}

type R<T> = Result<T, CompileError>;

impl<'a> Lower<'a> {
    fn new(opts: &LowerOptions, ir: &'a mut Ir) -> Self {
        Lower {
            ir,
            opts: *opts,
            link: Link::of(opts.link),
            off: Offsets::at_start(opts.link),
            mpls_depth: 0,
            vlan_depth: 0,
            geneve: None,
            next_var: 0,
            pcap_optimizes: true,
            walk_vars: Vec::new(),
            span: Span::default(),
        }
    }

    /// An error lowering owns: a limit of the IR (variables).
    fn err(&self, m: impl Into<String>) -> CompileError {
        CompileError::new(m, self.span)
    }

    /// A filter the checks refuse (the comment at each use says where:
    /// [`crate::check::Checker`] or [`crate::check::check_target`]), so
    /// never reached from [`crate::parse`] and [`crate::lower_ir`]: the
    /// message stays libpcap's so that a gap in the checks is an error,
    /// never a wrong program.
    fn refused(&self, m: impl Into<String>) -> CompileError {
        CompileError::new(m, self.span)
    }

    fn node(&mut self, c: &Checked) -> R<P> {
        // In source order, down the chain of operators by a loop (see
        // `syntax::chain`).
        let (first, links) = c.left_chain();
        let mut p = self.operand(first)?;
        for (is_and, right) in links {
            let q = self.node(right)?;
            p = if is_and { and(p, q) } else { or(p, q) };
        }
        Ok(p)
    }

    /// The formula of `c`, a `Not` or an atom.
    fn operand(&mut self, c: &Checked) -> R<P> {
        Ok(match c {
            Checked::And(_) | Checked::Or(_) => self.node(c)?,
            Checked::Not(a) => not(self.node(a)?),
            Checked::Atom(a, span) => {
                self.span = *span;
                if self.opts.vlan_any && self.vlan_any_applies(a) {
                    self.atom_vlan_any(a)?
                } else {
                    self.atom(a)?
                }
            }
        })
    }

    // ---- primitives ----

    fn atom(&mut self, a: &Atom) -> R<P> {
        match a {
            Atom::Ipv4Host {
                proto,
                dir,
                addr,
                mask,
            } => self.host4(*proto, *dir, *addr, *mask),
            Atom::Ipv6Host { dir, addr, mask } => self.host6(*dir, addr, mask),
            Atom::DecnetHost { dir, addr } => self.decnet(*dir, *addr),
            Atom::EtherHost { dir, mac } => self.ehost(*dir, mac),
            Atom::Port {
                proto,
                dir,
                lo,
                hi,
                range,
            } => {
                let (lo, hi) = (u32::from(*lo), u32::from(*hi));
                let b6 = self.port_family(true, *proto, *dir, lo, hi, *range)?;
                let b4 = self.port_family(false, *proto, *dir, lo, hi, *range)?;
                Ok(or(b6, b4))
            }
            Atom::Proto { layer, value } => self.proto(*value, *layer),
            Atom::ProtoChain { layer, value, .. } => self.protochain(*layer, *value),
            Atom::Direction { outbound, .. } => self.direction(*outbound),
            Atom::IfIndex { index, .. } => self.ifindex(*index),
            Atom::Prim(p) => self.prim(p),
        }
    }

    fn prim(&mut self, p: &Primitive) -> R<P> {
        match p {
            Primitive::Proto(pr) => self.abbrev(*pr),
            Primitive::Relation(op, a, b) => self.relation(*op, a, b),
            Primitive::Broadcast(Some(Proto::Ip)) => self.ip_broadcast(),
            Primitive::Broadcast(_) => self.link_broadcast(),
            Primitive::Multicast(Some(Proto::Ip)) => self.ip_multicast(),
            Primitive::Multicast(Some(Proto::Ip6)) => self.ip6_multicast(),
            Primitive::Multicast(_) => self.link_multicast(),
            Primitive::Less(n) => Ok(self.less(*n)),
            Primitive::Greater(n) => Ok(self.greater(*n)),
            Primitive::Byte(idx, op, val) => self.byte(*idx, *op, val.value),
            Primitive::Vlan(n) => self.vlan(n.map(|n| n.value)),
            Primitive::Mpls(n) => self.mpls(n.map(|n| n.value)),
            Primitive::Pppoed => self.linktype(ETHERTYPE_PPPOED),
            Primitive::Pppoes(n) => self.pppoes(n.map(|n| n.value)),
            Primitive::Geneve(vni) => self.geneve(vni.map(|n| n.value)),
            Primitive::Llc(kind) => self.llc(*kind),
            Primitive::Qualified { .. }
            | Primitive::OtherLink(_)
            | Primitive::Inbound
            | Primitive::Outbound
            | Primitive::IfIndex(_) => {
                // check::Checker::prim turns these into atoms or errors.
                Err(self.refused("primitive not supported on this link type"))
            }
        }
    }
}
