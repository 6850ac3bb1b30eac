//! The text form of the IR (`Display`, `Ir::from_text`) and
//! `Ir::verify`.

use pktmatch::Span;
use pktmatch::ir::{
    BinOp, Block, BlockId, CmpOp, Cond, Edge, Ir, MAX_VARS, Meta, OnShort, ParseError, Semantics,
    Val, ValNode, Verdict, VerifyError,
};

/// Value `vN`.
fn val(n: u32) -> Val {
    Val::from_u32(n)
}

/// Block `bN`.
fn block(n: u32) -> BlockId {
    BlockId::from_u32(n)
}

/// Every kind of value and test, built through the API.
fn every_kind() -> Ir {
    let mut ir = Ir::new();
    let ethertype = ir.load(None, 12, 2);
    let ipv4 = ir.k(0x800);
    let vhl = ir.load(None, 14, 1);
    let mask = ir.k(0xf);
    let ihl = ir.bin(BinOp::And, vhl, mask);
    let port = ir.load(Some(ihl), 16, 2);
    let len = ir.val(ValNode::Len);
    let tci = ir.val(ValNode::Meta(Meta::VlanTci));
    let sum = ir.bin(BinOp::Add, len, tci);
    let neg = ir.val(ValNode::Neg(port));
    let var = ir.val(ValNode::Var(0));
    let at_var = ir.load(Some(var), 0, 4);
    let b0 = Block {
        cond: Cond::Cmp {
            a: ethertype,
            op: CmpOp::Eq,
            b: ipv4,
            relation: false,
        },
        t: Edge::Block(block(1)),
        f: Edge::REJECT,
        short: OnShort::Reject,

        span: Span::new(0, 2),
    };
    let b1 = Block {
        cond: Cond::Let { var: 0, val: ihl },
        t: Edge::Block(block(2)),
        f: Edge::REJECT,
        short: OnShort::Reject,

        span: Span::default(),
    };
    let b2 = Block {
        cond: Cond::Cmp {
            a: sum,
            op: CmpOp::Gt,
            b: neg,
            relation: true,
        },
        t: Edge::Block(block(3)),
        f: Edge::Block(block(4)),
        short: OnShort::Reject,

        span: Span::new(7, 19),
    };
    let b3 = Block {
        cond: Cond::ProtoChain {
            nl: 14,
            ipv6: true,
            proto: 6,
        },
        t: Edge::ACCEPT,
        f: Edge::Block(block(4)),
        short: OnShort::Reject,

        span: Span::new(23, 37),
    };
    let b4 = Block {
        cond: Cond::Cmp {
            a: at_var,
            op: CmpOp::Set,
            b: mask,
            relation: false,
        },
        t: Edge::ACCEPT,
        f: Edge::REJECT,
        short: OnShort::Reject,

        span: Span::default(),
    };
    for b in [b0, b1, b2, b3, b4] {
        ir.push(b);
    }
    ir.entry = Some(Edge::Block(block(0)));
    ir
}

const EVERY_KIND: &str = "\
entry b0
v0 = load [12:2]
v1 = const 0x800
v2 = load [14:1]
v3 = const 0xf
v4 = and v2, v3
v5 = load [v4 + 16:2]
v6 = len
v7 = meta vlan_tci
v8 = add v6, v7
v9 = neg v5
v10 = var 0
v11 = load [v10 + 0:4]
b0: eq v0, v1 ? b1 : reject  # 0..2
b1: let var0 = v4 ? b2 : reject
b2: gt v8, v9 relation ? b3 : b4  # 7..19
b3: protochain ipv6 nl=14 proto=6 ? accept : b4  # 23..37
b4: set v11, v3 ? accept : reject
";

#[test]
fn every_kind_of_value_and_test_prints() {
    let ir = every_kind();
    assert_eq!(ir.to_string(), EVERY_KIND);
    assert_eq!(ir.verify(), Ok(()));
}

#[test]
fn the_text_parses_back_value_for_value() {
    let ir = Ir::from_text(EVERY_KIND).unwrap();
    let built = every_kind();
    assert_eq!(ir.blocks, built.blocks);
    assert_eq!(ir.entry, built.entry);
    assert_eq!(ir.val_count(), 12);
    for i in 0..12 {
        assert_eq!(ir.node(val(i)), built.node(val(i)), "v{i}");
    }
    assert_eq!(ir.to_string(), EVERY_KIND);
}

#[test]
fn parsing_neither_folds_nor_interns() {
    // `Ir::val` would fold `add v0, v1` into a constant and find the
    // repeated `len`; the text keeps the arena as written.
    let text = "\
entry b0
v0 = const 0x1
v1 = const 0x2
v2 = add v0, v1
v3 = len
v4 = len
b0: eq v3, v2 ? accept : reject
";
    let ir = Ir::from_text(text).unwrap();
    assert_eq!(ir.node(val(2)), ValNode::Bin(BinOp::Add, val(0), val(1)));
    assert_eq!(ir.node(val(4)), ValNode::Len);
    assert_eq!(ir.to_string(), text);
    // ... and `verify` refuses the repeated value.
    assert_eq!(
        ir.verify(),
        Err(VerifyError::Duplicate {
            val: val(4),
            first: val(3)
        })
    );
}

#[test]
fn the_unoptimized_flag_and_missing_entries_print() {
    let mut ir = Ir::new();
    ir.pcap_unoptimized = true;
    assert_eq!(ir.to_string(), "pcap_unoptimized\nentry none\n");
    ir.entry = Some(Edge::ACCEPT);
    let back = Ir::from_text(&ir.to_string()).unwrap();
    assert!(back.pcap_unoptimized);
    assert_eq!(back.entry, Some(Edge::ACCEPT));
    assert_eq!(Ir::from_text("entry none").unwrap().entry, None);
}

#[test]
fn comments_blank_lines_and_other_spellings_are_read() {
    let text = "
# a comment line
entry   b0   # the comment of a line that is not a block

v0 = load [12 : 2]
v1 = const 2048
v2 = load [v0:1]
b0: eq v0, v1 ? b1 : reject   #   3..5
b1: eq v2, v1 ? accept : reject  # not a span
";
    let ir = Ir::from_text(text).unwrap();
    assert_eq!(
        ir.to_string(),
        "\
entry b0
v0 = load [12:2]
v1 = const 0x800
v2 = load [v0 + 0:1]
b0: eq v0, v1 ? b1 : reject  # 3..5
b1: eq v2, v1 ? accept : reject
"
    );
}

/// The error of parsing `text`.
fn error(text: &str) -> ParseError {
    match Ir::from_text(text) {
        Ok(ir) => panic!("parsed:\n{ir}"),
        Err(e) => e,
    }
}

/// The position of an error, and whether its message contains `words`.
fn at(e: &ParseError, words: &str) -> (usize, usize, bool) {
    (e.line, e.col, e.message.contains(words))
}

#[test]
fn errors_give_the_line_and_column() {
    let e = error("entry b0\nv0 = load [12:2]\nv1 = cnst 0x800\n");
    assert_eq!(at(&e, "unknown value `cnst`"), (3, 6, true));
    assert_eq!(e.to_string(), "3:6: unknown value `cnst`");
    let e = error("entry b0\nv0 = len\nb0: eq v0, v3 ? accept : reject\n");
    assert_eq!(at(&e, "v3 is not defined"), (3, 12, true));
    let e = error("entry b0\nv0 = len\nb0: eq v0, v0 ? b4 : reject\n");
    assert_eq!(at(&e, "b4 is not defined"), (3, 17, true));
    let e = error("entry b0\nv1 = len\n");
    assert_eq!(at(&e, "expected v0"), (2, 1, true));
    let e = error("entry b1\nv0 = len\nb1: eq v0, v0 ? accept : reject\n");
    assert_eq!(at(&e, "expected b0"), (3, 1, true));
    let e = error("v0 = len\n");
    assert_eq!(at(&e, "no `entry` line"), (2, 1, true));
    let e = error("entry b0\nentry b0\n");
    assert_eq!(at(&e, "twice"), (2, 1, true));
    let e = error("entry b0\nv0 = len\nb0: eq v0, v0 ? accept\n");
    assert_eq!(at(&e, "expected `:`"), (3, 23, true));
    let e = error("entry b0\nv0 = len; v1 = len\n");
    assert_eq!(at(&e, "unexpected character `;`"), (2, 9, true));
    let e = error("entry b0\nv0 = load [12:300]\n");
    assert_eq!(at(&e, "300 bytes"), (2, 15, true));
    let e = error("entry b0\nv0 = const 0x100000000\n");
    assert_eq!(at(&e, "32-bit number"), (2, 12, true));
    let e = error("entry b0\nv0 = meta mark\n");
    assert_eq!(at(&e, "unknown metadata field `mark`"), (2, 11, true));
    let e = error("entry b0\nv0 = len\nb0: lt v0, v0 ? accept : reject\n");
    assert_eq!(at(&e, "unknown test `lt`"), (3, 5, true));
    let e = error("entry b0\nv0 = len\nb0: let x = v0 ? accept : reject\n");
    assert_eq!(at(&e, "`varN`"), (3, 9, true));
    let e = error("entry b0\nb0: protochain ip6 nl=14 proto=6 ? accept : reject\n");
    assert_eq!(at(&e, "`ipv4` or `ipv6`"), (2, 16, true));
    let e = error("entry b0\nv0 = len extra\n");
    assert_eq!(at(&e, "end of the line"), (2, 10, true));
}

/// `text` parses, and `verify` says `err`.
fn verifies_as(text: &str, err: Result<(), VerifyError>) {
    let ir = Ir::from_text(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(ir.verify(), err, "{text}");
}

#[test]
fn verify_checks_edges_go_forward() {
    verifies_as(
        "entry b0\nv0 = len\nb0: eq v0, v0 ? b1 : reject\nb1: eq v0, v0 ? b0 : reject\n",
        Err(VerifyError::Edge {
            block: block(1),
            to: block(0),
        }),
    );
    verifies_as(
        "entry b0\nv0 = len\nb0: eq v0, v0 ? accept : b0\n",
        Err(VerifyError::Edge {
            block: block(0),
            to: block(0),
        }),
    );
    // The entry may be any block; blocks before it are unreachable.
    verifies_as(
        "entry b1\nv0 = len\nb0: eq v0, v0 ? b1 : reject\nb1: eq v0, v0 ? accept : reject\n",
        Ok(()),
    );
    // Through the API, edges can name blocks that do not exist.
    let mut ir = Ir::from_text("entry b0\nv0 = len\nb0: eq v0, v0 ? accept : reject\n").unwrap();
    ir.blocks[0].f = Edge::Block(block(1));
    assert_eq!(
        ir.verify(),
        Err(VerifyError::Edge {
            block: block(0),
            to: block(1)
        })
    );
    ir.blocks[0].f = Edge::REJECT;
    ir.entry = Some(Edge::Block(block(3)));
    assert_eq!(ir.verify(), Err(VerifyError::MissingEntry { to: block(3) }));
}

#[test]
fn verify_checks_operands_come_first() {
    verifies_as(
        "entry accept\nv0 = add v1, v1\nv1 = len\n",
        Err(VerifyError::Operand {
            val: val(0),
            operand: val(1),
        }),
    );
    verifies_as(
        "entry accept\nv0 = load [v0 + 1:1]\n",
        Err(VerifyError::Operand {
            val: val(0),
            operand: val(0),
        }),
    );
    verifies_as(
        "entry accept\nv0 = len\nv1 = neg v2\nv2 = const 0x0\n",
        Err(VerifyError::Operand {
            val: val(1),
            operand: val(2),
        }),
    );
    let mut ir = Ir::from_text("entry b0\nv0 = len\nb0: eq v0, v0 ? accept : reject\n").unwrap();
    ir.blocks[0].cond = Cond::Let {
        var: 0,
        val: val(5),
    };
    assert_eq!(
        ir.verify(),
        Err(VerifyError::MissingValue {
            block: block(0),
            val: val(5)
        })
    );
}

#[test]
fn verify_checks_load_sizes_and_variable_numbers() {
    verifies_as(
        "entry accept\nv0 = load [0:3]\n",
        Err(VerifyError::LoadSize {
            val: val(0),
            size: 3,
        }),
    );
    verifies_as("entry accept\nv0 = load [0:4]\nv1 = load [0:1]\n", Ok(()));
    let var = MAX_VARS;
    verifies_as(
        &format!("entry accept\nv0 = var {var}\n"),
        Err(VerifyError::ValueVar { val: val(0), var }),
    );
    verifies_as(
        &format!("entry b0\nv0 = len\nb0: let var{var} = v0 ? accept : reject\n"),
        Err(VerifyError::LetVar {
            block: block(0),
            var,
        }),
    );
}

#[test]
fn verify_checks_let_false_edges_are_reject() {
    verifies_as(
        "entry b0\nv0 = len\nb0: let var0 = v0 ? accept : accept\n",
        Err(VerifyError::LetFalseEdge { block: block(0) }),
    );
}

#[test]
fn verify_checks_variables_are_set_on_every_path() {
    // Set on one branch only: the join reads it unset.
    let one_branch = "\
entry b0
v0 = load [14:1]
v1 = const 0x4
v2 = var 0
v3 = load [v2 + 0:1]
b0: eq v0, v1 ? b1 : b2
b1: let var0 = v0 ? b2 : reject
b2: eq v3, v1 ? accept : reject
";
    verifies_as(
        one_branch,
        Err(VerifyError::UnsetVar {
            block: block(2),
            var: 0,
        }),
    );
    // Set on both branches: fine.
    let both = "\
entry b0
v0 = load [14:1]
v1 = const 0x4
v2 = var 0
v3 = load [v2 + 0:1]
b0: eq v0, v1 ? b1 : b2
b1: let var0 = v0 ? b3 : reject
b2: let var0 = v1 ? b3 : reject
b3: eq v3, v1 ? accept : reject
";
    verifies_as(both, Ok(()));
    // A `let` reading the variable it sets, before any other set it.
    verifies_as(
        "entry b0\nv0 = var 1\nb0: let var1 = v0 ? accept : reject\n",
        Err(VerifyError::UnsetVar {
            block: block(0),
            var: 1,
        }),
    );
    // Unreachable blocks read what they like.
    verifies_as(
        "entry b1\nv0 = var 0\nb0: eq v0, v0 ? b1 : reject\nb1: eq v0, v0 ? accept : accept\n",
        Err(VerifyError::UnsetVar {
            block: block(1),
            var: 0,
        }),
    );
    verifies_as(
        "entry b1\nv0 = var 0\nv1 = len\nb0: eq v0, v0 ? b1 : reject\nb1: eq v1, v1 ? accept : accept\n",
        Ok(()),
    );
}

/// A firewall's IR: its own meaning of a short read, several verdicts.
const FIREWALL: &str = "\
semantics exact
entry b0
v0 = load [20:1]
v1 = const 0x1
v2 = load [2:1]
v3 = const 0x7
b0: eq v0, v1 ? accept : b1 short false
b1: eq v2, v3 ? verdict2 : verdict3 short true
";

#[test]
fn semantics_short_edges_and_verdicts_round_trip() {
    let ir = Ir::from_text(FIREWALL).unwrap();
    assert_eq!(ir.semantics, Semantics::Exact);
    assert_eq!(ir.blocks[0].short, OnShort::False);
    assert_eq!(ir.blocks[1].short, OnShort::True);
    assert_eq!(ir.blocks[1].t, Edge::Verdict(Verdict(2)));
    assert_eq!(ir.blocks[1].f, Edge::Verdict(Verdict(3)));
    assert_eq!(ir.verify(), Ok(()));
    assert_eq!(ir.to_string(), FIREWALL);
    // With libpcap's meaning no block goes on after a short read.
    let libpcap = Ir::from_text(&FIREWALL.replace("semantics exact\n", "")).unwrap();
    assert_eq!(
        libpcap.verify(),
        Err(VerifyError::ShortEdge { block: block(0) })
    );
    let bad = Ir::from_text("entry b0\nv0 = len\nb0: eq v0, v0 ? accept : reject short maybe\n");
    assert_eq!(
        bad.unwrap_err().to_string(),
        "3:39: expected `true`, `false` or an edge (`accept`, `reject`, `verdictN`, `bN`), \
         not `maybe`"
    );
}

/// A firewall's IR with a filter spliced in: short reads of the filter's
/// blocks go to the next rule, an edge of neither block.
const SPLICED: &str = "\
semantics exact
entry b0
v0 = load [20:1]
v1 = const 0x1
v2 = load [2:1]
v3 = const 0x7
b0: eq v0, v1 ? b1 : b2 short b2
b1: eq v2, v3 ? verdict2 : b2 short b3
b2: eq v2, v1 ? verdict3 : verdict4 short verdict5
b3: eq v0, v3 ? accept : reject short reject
";

#[test]
fn short_edges_to_other_edges_round_trip() {
    let ir = Ir::from_text(SPLICED).unwrap();
    assert_eq!(ir.blocks[0].short, OnShort::To(Edge::Block(block(2))));
    assert_eq!(ir.blocks[1].short, OnShort::To(Edge::Block(block(3))));
    assert_eq!(ir.blocks[2].short, OnShort::To(Edge::Verdict(Verdict(5))));
    assert_eq!(ir.blocks[3].short, OnShort::To(Edge::REJECT));
    assert_eq!(ir.blocks[1].short_edge(), Edge::Block(block(3)));
    assert_eq!(
        ir.blocks[1].successors().collect::<Vec<_>>(),
        [
            Edge::Verdict(Verdict(2)),
            Edge::Block(block(2)),
            Edge::Block(block(3))
        ]
    );
    assert_eq!(ir.verify(), Ok(()));
    assert_eq!(ir.to_string(), SPLICED);
    // The evaluator follows them: a frame of 10 bytes reads byte 2 but
    // not byte 20.
    let mut p = [0u8; 21];
    p[2] = 1;
    assert_eq!(ir.run(&p[..10], 21, &|_| None), Verdict(3));
    assert_eq!(ir.run(&p[..1], 21, &|_| None), Verdict(5));
    // b1's short edge reaches b3 alone: it is live.
    assert!(ir.max_read().is_some());
    // libpcap's meaning has no such edge.
    let libpcap = Ir::from_text(&SPLICED.replace("semantics exact\n", "")).unwrap();
    assert_eq!(
        libpcap.verify(),
        Err(VerifyError::ShortEdge { block: block(0) })
    );
}

#[test]
fn verify_checks_short_edges_go_forward() {
    let text = "semantics exact\nentry b0\nv0 = load [20:1]\n\
                b0: eq v0, v0 ? b1 : reject\n\
                b1: eq v0, v0 ? accept : reject short b0\n";
    verifies_as(
        text,
        Err(VerifyError::Edge {
            block: block(1),
            to: block(0),
        }),
    );
    // Through the API, one can name a block that does not exist.
    let mut ir = Ir::from_text(&text.replace(" short b0", "")).unwrap();
    ir.blocks[1].short = OnShort::To(Edge::Block(block(2)));
    assert_eq!(
        ir.verify(),
        Err(VerifyError::Edge {
            block: block(1),
            to: block(2),
        })
    );
    // A variable set by a block is not set on its short edge.
    verifies_as(
        "semantics exact\nentry b0\nv0 = load [20:1]\nv1 = var 0\n\
         b0: let var0 = v0 ? b1 : reject short b1\n\
         b1: eq v1, v1 ? accept : reject\n",
        Err(VerifyError::UnsetVar {
            block: block(1),
            var: 0,
        }),
    );
}

#[test]
fn actions_print_and_parse() {
    let text = "semantics exact\nentry b0\nv0 = load [12:2]\nv1 = const 0x800\n\
                b0: eq v0, v1 ? b1 : b2 short false\n\
                b1: act 3 ? b2 : reject\n\
                b2: act 0 ? accept : reject\n";
    let ir = Ir::from_text(text).unwrap();
    assert_eq!(ir.blocks[1].cond, Cond::Act { action: 3 });
    assert_eq!(ir.to_string(), text);
    assert_eq!(ir.verify(), Ok(()));
    // The evaluator takes each action on its path, in order.
    let mut taken = Vec::new();
    let ipv4 = [0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0];
    let mut take = |a| {
        taken.push(a);
        true
    };
    let v = ir.run_acting(&ipv4, 14, &|_| None, &mut take, &mut |_, _| None);
    assert_eq!((v, taken.as_slice()), (Verdict::MATCH, &[3, 0][..]));
    taken.clear();
    let mut take = |a| {
        taken.push(a);
        true
    };
    let v = ir.run_acting(&ipv4[..10], 14, &|_| None, &mut take, &mut |_, _| None);
    assert_eq!((v, taken.as_slice()), (Verdict::MATCH, &[0][..]));
}

#[test]
fn an_action_that_fails_takes_its_false_edge() {
    // A rate limit: under it the rule accepts, over it the next rule runs.
    let ir = Ir::from_text("entry b0\nb0: act 1 ? accept : verdict2\n").unwrap();
    assert_eq!(ir.verify(), Ok(()));
    assert_eq!(
        ir.run_acting(&[], 0, &|_| None, &mut |_| true, &mut |_, _| None),
        Verdict::MATCH
    );
    assert_eq!(
        ir.run_acting(&[], 0, &|_| None, &mut |_| false, &mut |_, _| None),
        Verdict(2)
    );
}

#[test]
fn a_lookup_reads_back_and_looks_its_key_up() {
    // `ip saddr . udp dport` in a table: a hit gives the entry's value.
    let text = "semantics exact\n\
                entry b0\n\
                v0 = load [26:4]\n\
                v1 = load [36:2]\n\
                v2 = const 0x20\n\
                v3 = var 4\n\
                v4 = const 0x7\n\
                b0: lookup [host v2:4 v0:4 v1:2] act 5 into var4 ? b1 : reject short false\n\
                b1: eq v3, v4 ? accept : verdict2\n";
    let ir = Ir::from_text(text).unwrap();
    assert_eq!(ir.to_string(), text);
    assert_eq!(ir.verify(), Ok(()));
    let mut frame = [0u8; 40];
    frame[26..30].copy_from_slice(&[10, 0, 0, 1]);
    frame[36..38].copy_from_slice(&53u16.to_be_bytes());
    let mut want = 32u32.to_ne_bytes().to_vec();
    want.extend_from_slice(&[10, 0, 0, 1, 0, 53]);
    let mut seen = Vec::new();
    let mut table = |action: u32, key: &[u8]| {
        seen.push((action, key.to_vec()));
        (key == want.as_slice()).then_some(7)
    };
    let v = ir.run_acting(&frame, 40, &|_| None, &mut |_| true, &mut table);
    assert_eq!(v, Verdict::MATCH);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, 5);
    // A miss, and a key past the packet: the false edge.
    let v = ir.run_acting(&frame, 40, &|_| None, &mut |_| true, &mut |_, _| None);
    assert_eq!(v, Verdict::NO_MATCH);
    let v = ir.run_acting(&frame[..37], 37, &|_| None, &mut |_| true, &mut |_, _| {
        Some(7)
    });
    assert_eq!(v, Verdict::NO_MATCH);
    // A lookup that sets a variable sets it on its true edge only.
    let bad = "semantics exact\nentry b0\nv0 = const 0x1\nv1 = var 4\n\
               b0: lookup [v0:1] act 0 into var4 ? b2 : b1\n\
               b1: eq v1, v0 ? accept : reject\n\
               b2: eq v0, v0 ? accept : reject\n";
    assert!(Ir::from_text(bad).unwrap().verify().is_err());
}
