//! `pcap "EXPR"`: a tcpdump filter as a match, with libpcap's meaning.
//!
//! `pcap2bpf` lowers and optimises the filter for the same hook (XDP
//! sees the outer VLAN tag in the frame, tcx in the skb's metadata) into
//! an IR of its own, with libpcap's meaning: its ACCEPT is a match, its
//! REJECT none, and a load past the packet anywhere in it rejects the
//! whole filter (which loads run, and so the verdict on a packet cut
//! short, is what libpcap's optimiser leaves: `pcap2bpf` reproduces it).
//! That IR is copied into the rule's: its values re-interned in nft's
//! arena (its variables renumbered above nft's own), its blocks pushed
//! onto the backward-built graph from its last to its first, ACCEPT
//! becoming the rule's next statement, REJECT the next rule, and each
//! block's short read ([`OnShort::Reject`] in the filter) an
//! [`OnShort::To`] the next rule: the copy means on every packet what
//! the filter means, with the match's true and false continuations in
//! place of its verdicts.

use pcap2bpf::{LinkType, LowerOptions, Options, Tables};
use pktmatch::ir::{Cond, Edge, EntityRef, Ir, MAX_VARS, OnShort, Val, ValNode, Verdict};

use super::{Lower, pktinfo};
use crate::check::tree::PcapMatch;
use crate::compile::Attach;
use crate::error::Error;

/// The first variable a filter's own variables (those of `geneve`) get:
/// nft's facts and verdict maps use the ones below.
const FIRST_VAR: u32 = pktinfo::var::VMAP + 1;

impl Lower<'_> {
    /// `pcap "EXPR"`: `t` when the filter matches the frame, `f` when it
    /// does not, or when it reads past the packet.
    pub(super) fn pcap(&mut self, p: &PcapMatch, t: Edge, f: Edge) -> Result<Edge, Error> {
        let filter = self.pcap_ir(p)?;
        self.splice(&filter, p, t, f)
    }

    /// The filter's IR, optimised with libpcap's meaning for this hook.
    fn pcap_ir(&mut self, p: &PcapMatch) -> Result<Ir, Error> {
        let err = |e: pcap2bpf::CompileError| p.error(&e);
        let names = self.pcap_names.get_or_insert_with(Tables::system);
        let filter =
            pcap2bpf::parse_with(&p.filter, Options::new(LinkType::En10mb, names)).map_err(err)?;
        let opts = LowerOptions::live(LinkType::En10mb, self.hook.target(), None).fixed_direction(
            match self.hook {
                Attach::Xdp | Attach::TcxIngress => Some(false),
                Attach::TcxEgress => Some(true),
            },
        );
        // A filter that matches nothing comes back as a plain REJECT.
        let (ir, _rejects_all) = pcap2bpf::build_ir(&filter, &opts).map_err(err)?;
        Ok(ir)
    }

    /// Copies `filter` into the rule's graph: its entry edge.
    fn splice(&mut self, filter: &Ir, p: &PcapMatch, t: Edge, f: Edge) -> Result<Edge, Error> {
        let vals = self.copy_vals(filter, p)?;
        let val = |v: Val| vals[v.index()];
        // The filter's blocks jump forward: from its last block to its
        // first, every successor is in the graph before the block.
        let n = filter.blocks.len();
        let mut at = vec![f; n];
        let map = |e: Edge, at: &[Edge]| -> Result<Edge, Error> {
            match e {
                Edge::Block(j) => at.get(j.index()).copied().ok_or_else(|| internal(p)),
                Edge::Verdict(Verdict::MATCH) => Ok(t),
                Edge::Verdict(Verdict::NO_MATCH) => Ok(f),
                Edge::Verdict(_) => Err(internal(p)),
            }
        };
        for i in (0..n).rev() {
            let b = filter.blocks[i];
            let cond = match b.cond {
                Cond::Cmp { a, op, b, relation } => Cond::Cmp {
                    a: val(a),
                    op,
                    b: val(b),
                    relation,
                },
                Cond::ProtoChain { .. } => b.cond,
                Cond::Let { var, val: v } => Cond::Let {
                    var: renumber(var, p)?,
                    val: val(v),
                },
                // A filter neither acts nor looks keys up.
                Cond::Act { .. } | Cond::Lookup { .. } => return Err(internal(p)),
            };
            let short = match b.short {
                OnShort::Reject => OnShort::To(f),
                _ => return Err(internal(p)),
            };
            let mut copy = b;
            copy.cond = cond;
            copy.t = map(b.t, &at)?;
            // An assignment never takes its false edge, REJECT as the
            // IR wants it.
            copy.f = match cond {
                Cond::Let { .. } => Edge::REJECT,
                _ => map(b.f, &at)?,
            };
            copy.short = short;
            // The rule's statement, for what points back to the source.
            copy.span = p.span;
            at[i] = self.cfg.block(copy);
        }
        match filter.entry {
            Some(e) => map(e, &at),
            // No entry: the filter accepts everything.
            None => Ok(t),
        }
    }

    /// The filter's values, interned in nft's arena in arena order (an
    /// operand before what uses it), variables renumbered: the new value
    /// of each.
    fn copy_vals(&mut self, filter: &Ir, p: &PcapMatch) -> Result<Vec<Val>, Error> {
        let mut out: Vec<Val> = Vec::with_capacity(filter.val_count());
        for i in 0..filter.val_count() {
            let get = |v: Val, out: &[Val]| out.get(v.index()).copied().ok_or_else(|| internal(p));
            let node = match filter.node(Val::new(i)) {
                ValNode::Load { off, k, size } => ValNode::Load {
                    off: match off {
                        Some(o) => Some(get(o, &out)?),
                        None => None,
                    },
                    k,
                    size,
                },
                ValNode::Bin(op, a, b) => ValNode::Bin(op, get(a, &out)?, get(b, &out)?),
                ValNode::Neg(a) => ValNode::Neg(get(a, &out)?),
                ValNode::Var(n) => ValNode::Var(renumber(n, p)?),
                n @ (ValNode::Const(_) | ValNode::Len | ValNode::Meta(_)) => n,
            };
            // Interning folds only operations on two constants, as it
            // did in the filter's arena: the node stays as it was.
            out.push(self.ir.val(node));
        }
        Ok(out)
    }
}

/// The number in nft's program of the filter's variable `n`.
fn renumber(n: u32, p: &PcapMatch) -> Result<u32, Error> {
    match n.checked_add(FIRST_VAR) {
        Some(var) if var < MAX_VARS => Ok(var),
        _ => Err(Error::new(
            format!(
                "in `pcap \"{}\"`: too many `geneve` for one rule (the filter's \
                 variables and nft's make more than {MAX_VARS})",
                p.filter
            ),
            p.span,
        )),
    }
}

/// The IR `pcap2bpf` hands back is not one of a filter.
fn internal(p: &PcapMatch) -> Error {
    Error::new(
        format!(
            "internal error: `pcap \"{}\"` lowered to an IR that is not a filter's",
            p.filter
        ),
        p.span,
    )
}
