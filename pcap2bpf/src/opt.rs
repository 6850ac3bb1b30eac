//! The optimiser: jump threading, folding of constant tests, removal of
//! tests whose edges meet, and dead block removal.
//!
//! Soundness with truncated packets: a test may be skipped when its
//! outcome is implied by an earlier test *on the same value* along the
//! path (that value was loaded successfully there, so loading it again
//! cannot reject). Static knowledge alone (e.g. a byte is at most 255)
//! never removes a test, since the test's loads could reject the packet.
//! Tests whose two edges go to the same place are removed with their
//! loads, as libpcap's optimiser does (not when libpcap leaves the filter
//! unoptimised, see [`Ir::pcap_unoptimized`]). `Let` blocks (variable
//! assignments) are never skipped: what follows may read the variable.

use std::collections::HashMap;

use crate::ir::{BinOp, CmpOp, Cond, Edge, Ir, Val, ValNode};

/// What a taken edge says about a value: `val op k` is `holds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fact {
    val: Val,
    op: CmpOp,
    k: u32,
    holds: bool,
}

/// Optimises `ir` in place.
pub fn optimize(ir: &mut Ir) {
    drop_dead_lets(ir);
    for _ in 0..4 {
        let before = ir.blocks.clone();
        let before_entry = ir.entry;
        skip_trivial(ir);
        thread(ir);
        merge_duplicates(ir);
        compact(ir);
        if ir.blocks == before && ir.entry == before_entry {
            break;
        }
    }
}

fn fact_of(ir: &Ir, cond: Cond, holds: bool) -> Option<Fact> {
    match cond {
        Cond::Cmp { a, op, b } => ir.const_of(b).map(|k| Fact {
            val: a,
            op,
            k,
            holds,
        }),
        Cond::ProtoChain { .. } | Cond::Let { .. } => None,
    }
}

/// The outcome of `cond` when `facts` hold, if they decide it.
fn decide(ir: &Ir, facts: &[Fact], cond: Cond) -> Option<bool> {
    let Cond::Cmp { a, op, b } = cond else {
        return None;
    };
    if let (Some(x), Some(y)) = (ir.const_of(a), ir.const_of(b)) {
        return Some(op.eval(x, y));
    }
    let k = ir.const_of(b)?;
    let mut any = false;
    let (slo, shi) = ir.range(a);
    let (mut lo, mut hi) = (slo, shi);
    let mut exact = None;
    let mut clear = 0u32;
    let mut set_masks = Vec::new();
    for f in facts.iter().filter(|f| f.val == a) {
        any = true;
        if f.op == op && f.k == k {
            return Some(f.holds);
        }
        let fk = u64::from(f.k);
        match (f.op, f.holds) {
            (CmpOp::Eq, true) => exact = Some(f.k),
            (CmpOp::Eq, false) => {
                if op == CmpOp::Eq && f.k == k {
                    return Some(false);
                }
            }
            (CmpOp::Gt, true) => lo = lo.max(fk + 1),
            (CmpOp::Gt, false) => hi = hi.min(fk),
            (CmpOp::Ge, true) => lo = lo.max(fk),
            (CmpOp::Ge, false) if fk > 0 => hi = hi.min(fk - 1),
            (CmpOp::Ge, false) => {}
            (CmpOp::Set, true) => set_masks.push(f.k),
            (CmpOp::Set, false) => clear |= f.k,
        }
    }
    if !any {
        return None;
    }
    if let Some(x) = exact {
        return Some(op.eval(x, k));
    }
    let k64 = u64::from(k);
    match op {
        CmpOp::Eq => {
            if k64 < lo || k64 > hi || k & clear != 0 {
                Some(false)
            } else {
                None
            }
        }
        CmpOp::Gt => {
            if lo > k64 {
                Some(true)
            } else if hi <= k64 {
                Some(false)
            } else {
                None
            }
        }
        CmpOp::Ge => {
            if lo >= k64 {
                Some(true)
            } else if hi < k64 {
                Some(false)
            } else {
                None
            }
        }
        CmpOp::Set => {
            if k & !clear == 0 {
                Some(false)
            } else if set_masks.iter().any(|m| m & !k == 0) {
                Some(true)
            } else {
                None
            }
        }
    }
}

/// Resolves edges through tests that are constant or whose edges meet.
fn skip_trivial(ir: &mut Ir) {
    let n = ir.blocks.len();
    let mut alias: Vec<Option<Edge>> = vec![None; n];
    let res = |e: Edge, alias: &[Option<Edge>]| match e {
        Edge::Block(i) => alias[i as usize].unwrap_or(e),
        e => e,
    };
    for i in (0..n).rev() {
        let mut b = ir.blocks[i];
        b.t = res(b.t, &alias);
        b.f = res(b.f, &alias);
        ir.blocks[i] = b;
        // Unoptimised, libpcap runs every test's loads, and a load out of
        // the packet rejects: only tests that lead to REJECT either way
        // may go then.
        if b.t == b.f && (b.t == Edge::Reject || !ir.pcap_unoptimized) {
            alias[i] = Some(b.t);
        } else if let Some(r) = decide(ir, &[], b.cond) {
            alias[i] = Some(if r { b.t } else { b.f });
        }
    }
    if let Some(e) = ir.entry {
        ir.entry = Some(res(e, &alias));
    }
}

/// Whether evaluating `v` can reject the packet (a load, a division).
fn can_reject(ir: &Ir, v: Val) -> bool {
    match ir.node(v) {
        ValNode::Load { .. } => true,
        ValNode::Bin(op, a, b) => {
            matches!(op, BinOp::Div | BinOp::Mod) || can_reject(ir, a) || can_reject(ir, b)
        }
        ValNode::Neg(a) => can_reject(ir, a),
        _ => false,
    }
}

/// The variables `v` reads, as a bit set.
fn reads(ir: &Ir, v: Val) -> u64 {
    match ir.node(v) {
        ValNode::Var(n) => 1u64.checked_shl(n).unwrap_or(0),
        ValNode::Load { off: Some(o), .. } | ValNode::Neg(o) => reads(ir, o),
        ValNode::Bin(_, a, b) => reads(ir, a) | reads(ir, b),
        _ => 0,
    }
}

/// Skips assignments to variables nothing reads, when computing the value
/// cannot reject (e.g. the inner offsets after a trailing `geneve`).
fn drop_dead_lets(ir: &mut Ir) {
    let read = ir.blocks.iter().fold(0u64, |acc, b| {
        acc | match b.cond {
            Cond::Cmp { a, b, .. } => reads(ir, a) | reads(ir, b),
            Cond::Let { val, .. } => reads(ir, val),
            Cond::ProtoChain { .. } => 0,
        }
    });
    let n = ir.blocks.len();
    let mut alias: Vec<Option<Edge>> = vec![None; n];
    let res = |e: Edge, alias: &[Option<Edge>]| match e {
        Edge::Block(i) => alias[i as usize].unwrap_or(e),
        e => e,
    };
    for i in (0..n).rev() {
        let mut b = ir.blocks[i];
        b.t = res(b.t, &alias);
        b.f = res(b.f, &alias);
        ir.blocks[i] = b;
        if let Cond::Let { var, val } = b.cond
            && read & 1u64.checked_shl(var).unwrap_or(0) == 0
            && !can_reject(ir, val)
        {
            alias[i] = Some(b.t);
        }
    }
    if let Some(e) = ir.entry {
        ir.entry = Some(res(e, &alias));
    }
}

/// Redirects each edge past the tests its path already decides.
fn thread(ir: &mut Ir) {
    let n = ir.blocks.len();
    let mut known: Vec<Option<Vec<Fact>>> = vec![None; n];
    if let Some(Edge::Block(i)) = ir.entry {
        known[i as usize] = Some(Vec::new());
    }
    for i in 0..n {
        let Some(facts_in) = known[i].take() else {
            continue;
        };
        let b = ir.blocks[i];
        let mut out = [b.t, b.f];
        for (slot, holds) in out.iter_mut().zip([true, false]) {
            let mut facts = facts_in.clone();
            facts.extend(fact_of(ir, b.cond, holds));
            let mut target = *slot;
            while let Edge::Block(j) = target {
                let nb = ir.blocks[j as usize];
                let Some(r) = decide(ir, &facts, nb.cond) else {
                    break;
                };
                facts.extend(fact_of(ir, nb.cond, r));
                target = if r { nb.t } else { nb.f };
            }
            *slot = target;
            if let Edge::Block(j) = target {
                let j = j as usize;
                known[j] = Some(match known[j].take() {
                    None => facts,
                    Some(prev) => prev.into_iter().filter(|f| facts.contains(f)).collect(),
                });
            }
        }
        ir.blocks[i].t = out[0];
        ir.blocks[i].f = out[1];
        known[i] = Some(facts_in);
    }
}

/// Merges blocks that make the same test with the same successors (the
/// port tests that `port 53` repeats for tcp, udp and sctp, over IPv4
/// and IPv6): they behave alike on every path, so one serves all.
/// Blocks only jump forward, so scanning backwards sees successors merged
/// before their predecessors, and the kept (later) copy stays after every
/// block that now jumps to it.
fn merge_duplicates(ir: &mut Ir) {
    let n = ir.blocks.len();
    let mut alias: Vec<Option<Edge>> = vec![None; n];
    let mut seen: HashMap<(Cond, Edge, Edge), u32> = HashMap::with_capacity(n);
    let res = |e: Edge, alias: &[Option<Edge>]| match e {
        Edge::Block(i) => alias[i as usize].unwrap_or(e),
        e => e,
    };
    for i in (0..n).rev() {
        let mut b = ir.blocks[i];
        b.t = res(b.t, &alias);
        b.f = res(b.f, &alias);
        ir.blocks[i] = b;
        match seen.entry((b.cond, b.t, b.f)) {
            std::collections::hash_map::Entry::Occupied(kept) => {
                alias[i] = Some(Edge::Block(*kept.get()));
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(i as u32);
            }
        }
    }
    if let Some(e) = ir.entry {
        ir.entry = Some(res(e, &alias));
    }
}

/// Drops unreachable blocks, keeping the order.
fn compact(ir: &mut Ir) {
    let n = ir.blocks.len();
    let mut live = vec![false; n];
    if let Some(Edge::Block(i)) = ir.entry {
        live[i as usize] = true;
    }
    for i in 0..n {
        if live[i] {
            for e in [ir.blocks[i].t, ir.blocks[i].f] {
                if let Edge::Block(j) = e {
                    live[j as usize] = true;
                }
            }
        }
    }
    let mut new_index = vec![0u32; n];
    let mut next = 0u32;
    for i in 0..n {
        if live[i] {
            new_index[i] = next;
            next += 1;
        }
    }
    let map = |e: Edge| match e {
        Edge::Block(i) => Edge::Block(new_index[i as usize]),
        e => e,
    };
    let blocks = std::mem::take(&mut ir.blocks);
    ir.blocks = blocks
        .into_iter()
        .enumerate()
        .filter(|(i, _)| live[*i])
        .map(|(_, mut b)| {
            b.t = map(b.t);
            b.f = map(b.f);
            b
        })
        .collect();
    ir.entry = ir.entry.map(map);
}

#[cfg(test)]
mod tests {
    use crate::ir::{Edge, Ir, ValNode};
    use crate::{LinkType, LowerOptions, Tables, build_ir, parse};

    fn ir(expr: &str) -> Ir {
        let t = Tables::new();
        let f = parse(expr, LinkType::En10mb, &t).unwrap();
        let o = LowerOptions {
            link: LinkType::En10mb,
            vlan_meta: false,
            offline: false,
            fixed_direction: Some(false),
            netmask: None,
        };
        build_ir(&f, &o).unwrap().0
    }

    /// Blocks that compare the EtherType with `v`.
    fn ethertype_tests(ir: &Ir, v: u32) -> usize {
        ir.blocks
            .iter()
            .filter(|b| match b.cond {
                crate::ir::Cond::Cmp { a, b, .. } => {
                    ir.node(a)
                        == (ValNode::Load {
                            off: None,
                            k: 12,
                            size: 2,
                        })
                        && ir.const_of(b) == Some(v)
                }
                _ => false,
            })
            .count()
    }

    /// Blocks that compare any value with the constant `k`.
    fn tests_against(ir: &Ir, k: u32) -> usize {
        ir.blocks
            .iter()
            .filter(
                |b| matches!(b.cond, crate::ir::Cond::Cmp { b, .. } if ir.const_of(b) == Some(k)),
            )
            .count()
    }

    #[test]
    fn identical_port_tests_are_merged() {
        // `port 53` tests the source and destination port after tcp, udp
        // and sctp, over IPv4 (offset from the header length) and IPv6
        // (fixed offset): 12 tests, of which 4 differ.
        assert_eq!(tests_against(&ir("port 53"), 53), 4);
    }

    #[test]
    fn shared_header_checks_are_tested_once_per_path() {
        // Unoptimised there are two IPv4 and two IPv6 EtherType tests.
        let ir = ir("tcp port 80 or tcp port 443");
        assert_eq!(ethertype_tests(&ir, 0x0800), 1);
        assert_eq!(ethertype_tests(&ir, 0x86dd), 1);
    }

    #[test]
    fn contradictions_reject_all() {
        let ir = ir("ip and not ip");
        assert!(ir.blocks.is_empty());
        assert_eq!(ir.entry, Some(Edge::Reject));
    }

    #[test]
    fn tests_with_meeting_edges_go() {
        let ir = ir("ip or not ip");
        assert_eq!(ir.entry, Some(Edge::Accept));
    }
}
