//! Threading known tests with a firewall's meaning ([`Semantics::Exact`],
//! the optimiser's `known` pass) keeps every verdict and every action on
//! every packet, short ones included: random rule chains whose tests
//! repeat (guards in variables, the same few loads against the same few
//! constants, ranges, a variable assigned again in the middle, short
//! reads going every way, actions that fail now and then) give the same
//! verdict and the same actions, in the same order, before and after
//! optimisation, on random packets cut at every length.

use pktmatch::ir::{
    Block, BlockId, CmpOp, Cond, Edge, EntityRef, Ir, OnShort, Semantics, Val, Verdict,
};
use pktmatch::{Span, opt};
use testbed::Rng;

/// The packet length the chains run on, cut at every length below it.
const FRAME: usize = 12;

/// Packets per chain.
const PACKETS: usize = 8;

/// Chains compared.
const CHAINS: usize = 3000;

/// The values the tests read: two variables (assigned from loads at the
/// start, as nft2bpf's packet facts are) and a few loads.
struct Values {
    vars: [Val; 2],
    loads: [Val; 3],
}

impl Values {
    fn new(ir: &mut Ir) -> Values {
        let vars = [
            ir.val(pktmatch::ir::ValNode::Var(0)),
            ir.val(pktmatch::ir::ValNode::Var(1)),
        ];
        let loads = [
            ir.load(None, 2, 1),
            ir.load(None, 4, 2),
            ir.load(None, 9, 1),
        ];
        Values { vars, loads }
    }

    fn pick(&self, rng: &mut Rng) -> Val {
        match rng.below(5) as usize {
            i @ 0..2 => self.vars[i],
            i => self.loads[i - 2],
        }
    }
}

/// A test of a value with a small constant, so that tests repeat and
/// decide each other.
fn random_cond(ir: &mut Ir, values: &Values, rng: &mut Rng) -> Cond {
    let a = values.pick(rng);
    let op = [CmpOp::Eq, CmpOp::Eq, CmpOp::Gt, CmpOp::Ge, CmpOp::Set][rng.below(5) as usize];
    let b = ir.k(rng.below(4) as u32);
    Cond::Cmp {
        a,
        op,
        b,
        relation: false,
    }
}

/// A chain of up to `rules` rules, each a conjunction of tests ending in
/// a verdict or an action; the variables are assigned first, and now
/// and then again before a rule.
fn random_chain(rng: &mut Rng, rules: u64) -> Ir {
    let mut ir = Ir::with_semantics(Semantics::Exact);
    let values = Values::new(&mut ir);
    // Built from the end, then numbered so that blocks jump forward.
    let mut rev: Vec<Block> = Vec::new();
    let mut next_rule = Edge::Verdict(Verdict(rng.below(4) as u32));
    let mut push = |rev: &mut Vec<Block>, b: Block| {
        rev.push(b);
        Edge::Block(BlockId::new(rev.len() - 1))
    };
    for rule in 0..1 + rng.below(rules) {
        let mut then = Edge::Verdict(Verdict(rng.below(4) as u32));
        if rng.below(3) == 0 {
            let action = rule as u32;
            let fail = if rng.below(2) == 0 {
                next_rule
            } else {
                Edge::REJECT
            };
            let keep_going = if rng.below(2) == 0 { next_rule } else { then };
            then = push(
                &mut rev,
                Block::new(Cond::Act { action }, keep_going, fail, Span::default()),
            );
        }
        for _ in 0..1 + rng.below(3) {
            let cond = random_cond(&mut ir, &values, rng);
            let block = Block::new(cond, then, next_rule, Span::default());
            let block = match rng.below(4) {
                // A negated test: its short read is its true edge.
                0 => Block {
                    t: block.f,
                    f: block.t,
                    ..block
                }
                .on_short(OnShort::True),
                1 => {
                    let to = match rng.below(rev.len() as u64 + 1) {
                        0 => Edge::Verdict(Verdict(rng.below(4) as u32)),
                        j => Edge::Block(BlockId::new(j as usize - 1)),
                    };
                    block.on_short(OnShort::To(to))
                }
                _ => block.on_short(OnShort::False),
            };
            then = push(&mut rev, block);
        }
        next_rule = then;
        if rng.below(6) == 0 {
            next_rule = assign(&mut rev, &values, rng, next_rule, &mut push);
        }
    }
    next_rule = assign(&mut rev, &values, rng, next_rule, &mut push);
    let n = rev.len();
    let renumber = |e: Edge| match e {
        Edge::Block(i) => Edge::Block(BlockId::new(n - 1 - i.index())),
        e => e,
    };
    for mut b in rev.into_iter().rev() {
        b.map_edges(renumber);
        ir.push(b);
    }
    ir.entry = Some(renumber(next_rule));
    ir
}

/// Both variables assigned from loads, before `next`.
fn assign(
    rev: &mut Vec<Block>,
    values: &Values,
    rng: &mut Rng,
    mut next: Edge,
    push: &mut impl FnMut(&mut Vec<Block>, Block) -> Edge,
) -> Edge {
    for var in 0..2 {
        let val = values.loads[rng.below(3) as usize];
        let short = if rng.below(2) == 0 {
            OnShort::True
        } else {
            OnShort::Reject
        };
        let block = Block::new(Cond::Let { var, val }, next, Edge::REJECT, Span::default());
        next = push(rev, block.on_short(short));
    }
    next
}

/// The verdict and the actions taken, in order; action `a` fails when
/// the packet's first byte has bit `a % 8` set.
fn outcome(ir: &Ir, data: &[u8]) -> (Verdict, Vec<u32>) {
    let mut taken = Vec::new();
    let first = data.first().copied().unwrap_or(0);
    let verdict = ir.run_acting(
        data,
        FRAME as u32,
        &|_| None,
        &mut |a| {
            taken.push(a);
            first & (1 << (a % 8)) == 0
        },
        &mut |_, _| None,
    );
    (verdict, taken)
}

#[test]
fn threading_known_tests_keeps_every_verdict_and_action() {
    let mut rng = Rng::new(0x6b6e_6f77);
    let (mut compared, mut shorter) = (0usize, 0usize);
    for chain in 0..CHAINS {
        let before = random_chain(&mut rng, 6);
        assert_eq!(
            before.verify(),
            Ok(()),
            "chain {chain}: a valid IR\n{before}"
        );
        let mut after = before.clone();
        opt::optimize(&mut after);
        assert_eq!(
            after.verify(),
            Ok(()),
            "chain {chain}: still valid\n{after}"
        );
        shorter += usize::from(after.blocks.len() < before.blocks.len());
        for _ in 0..PACKETS {
            let frame: Vec<u8> = (0..FRAME).map(|_| rng.below(5) as u8).collect();
            for cut in 0..=FRAME {
                let data = &frame[..cut];
                assert_eq!(
                    outcome(&after, data),
                    outcome(&before, data),
                    "chain {chain}, packet {data:?}\n--- before\n{before}--- after\n{after}"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, CHAINS * PACKETS * (FRAME + 1));
    // Most chains repeat a test the path has decided.
    assert!(
        shorter > CHAINS / 3,
        "optimisation shortened only {shorter} of {CHAINS} chains"
    );
}
