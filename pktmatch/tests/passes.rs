//! The optimiser's passes, stated as IR text before and after
//! `pktmatch::opt::optimize`. Every expected text was worked out by hand
//! from what libpcap's optimiser (optimize.c) does with the same graph:
//! `opt_peep`, `opt_j`/`fold_edge` over the edge dominators of the pass
//! start, `or_pullup`/`and_pullup`, `intern_blocks` after the branch
//! loop, and `opt_root`.
//!
//! The optimiser never changes the value arena, so all the IRs share the
//! values of [`VALS`]; the tests differ in their blocks.

use pktmatch::ir::Ir;
use pktmatch::opt::optimize;

/// The values of every test: an Ethernet frame with an IPv4 header of 20
/// bytes (fixed offsets, to keep the graphs small).
const VALS: &str = "\
v0 = load [12:2]
v1 = const 0x800
v2 = const 0x86dd
v3 = load [23:1]
v4 = const 0x6
v5 = const 0x11
v6 = load [34:2]
v7 = load [36:2]
v8 = const 0x50
v9 = const 0x1bb
v10 = len
v11 = const 0x1
v12 = const 0x400
v13 = const 0x1388
v14 = const 0xff
v15 = load [0:1]
v16 = var 0
v17 = load [v16 + 14:1]
v18 = const 0x64
";

// What the values are, for reading the blocks:
// v0 EtherType, v3 IPv4 protocol, v6 source port, v7 destination port,
// v15 the first byte of the frame, v17 a byte at a variable offset.

/// The text of an IR with entry `entry`, the values [`VALS`] and
/// `blocks`.
fn ir(entry: &str, blocks: &str) -> String {
    format!("entry {entry}\n{VALS}{blocks}")
}

/// The same, for a filter libpcap leaves unoptimised.
fn unoptimized_ir(entry: &str, blocks: &str) -> String {
    format!("pcap_unoptimized\n{}", ir(entry, blocks))
}

/// `text` parsed, checked, optimised, and printed.
fn optimized(text: &str) -> String {
    let mut ir = Ir::from_text(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(ir.verify(), Ok(()), "the input is a valid IR:\n{text}");
    optimize(&mut ir);
    assert_eq!(ir.verify(), Ok(()), "the output is a valid IR:\n{ir}");
    ir.to_string()
}

/// Asserts that optimising `before` gives `after`.
fn assert_pass(before: &str, after: &str) {
    let got = optimized(before);
    assert_eq!(
        got, after,
        "\n--- before\n{before}--- expected\n{after}--- got\n{got}"
    );
}

#[test]
fn a_test_of_two_constants_goes_one_way() {
    // ip and 0x800 == 0x800 and ip proto 6: the constant test goes.
    assert_pass(
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : reject
b1: eq v1, v1 ? b2 : reject
b2: eq v3, v4 ? accept : reject
",
        ),
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : reject
b1: eq v3, v4 ? accept : reject
",
        ),
    );
    // A false constant at the root: evaluation starts at its false edge.
    assert_pass(
        &ir(
            "b0",
            "\
b0: eq v1, v2 ? b1 : b2
b1: eq v0, v1 ? accept : reject
b2: eq v0, v2 ? accept : reject
",
        ),
        &ir("b0", "b0: eq v0, v2 ? accept : reject\n"),
    );
    // A filter of one constant test is its verdict.
    assert_pass(
        &ir("b0", "b0: eq v1, v2 ? accept : reject\n"),
        &ir("reject", ""),
    );
}

#[test]
fn a_test_whose_edges_meet_goes_with_its_loads() {
    let before = "\
b0: eq v0, v1 ? b1 : reject
b1: eq v3, v4 ? b2 : b2
b2: eq v7, v8 ? accept : reject
";
    assert_pass(
        &ir("b0", before),
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : reject
b1: eq v7, v8 ? accept : reject
",
        ),
    );
    // libpcap does not optimise the filter: the test stays for its load
    // of byte 23, which rejects a shorter packet.
    assert_pass(&unoptimized_ir("b0", before), &unoptimized_ir("b0", before));
}

#[test]
fn a_protochain_whose_edges_meet_goes_too() {
    let before = "\
b0: eq v0, v1 ? b1 : reject
b1: protochain ipv4 nl=14 proto=6 ? b2 : b2
b2: eq v7, v8 ? accept : reject
";
    assert_pass(
        &ir("b0", before),
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : reject
b1: eq v7, v8 ? accept : reject
",
        ),
    );
    // Unoptimised, its walk over the headers still rejects a packet it
    // runs out of.
    assert_pass(&unoptimized_ir("b0", before), &unoptimized_ir("b0", before));
}

#[test]
fn unoptimised_a_test_that_rejects_either_way_still_goes() {
    // Skipping a test whose edges both reject changes no verdict; then
    // the root rejects either way too.
    assert_pass(
        &unoptimized_ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : reject
b1: eq v3, v4 ? reject : reject
",
        ),
        &unoptimized_ir("reject", ""),
    );
}

#[test]
fn a_test_implied_by_a_dominating_equal_test_is_skipped() {
    // (ip and tcp) or (ip and udp): after `ip` held and `tcp` failed,
    // `ip` holds again; after `ip` failed, it fails again.
    assert_pass(
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : b2
b1: eq v3, v4 ? accept : b2
b2: eq v0, v1 ? b3 : reject
b3: eq v3, v5 ? accept : reject
",
        ),
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : reject
b1: eq v3, v4 ? accept : b2
b2: eq v3, v5 ? accept : reject
",
        ),
    );
}

#[test]
fn a_value_equal_to_one_constant_differs_from_the_others() {
    // ip and ip6: the second test fails wherever the first held, so no
    // packet matches and nothing is left to test.
    assert_pass(
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : reject
b1: eq v0, v2 ? accept : reject
",
        ),
        &ir("reject", ""),
    );
}

#[test]
fn static_knowledge_never_removes_a_test_that_loads() {
    // A byte is never above 0xff, nor below 0: both tests are decided
    // by the ranges of their values, yet stay, as their loads reject a
    // packet of fewer than 24 bytes.
    let before = ir(
        "b0",
        "\
b0: eq v0, v1 ? b1 : reject
b1: gt v3, v14 ? reject : b2
b2: ge v3, v11 ? accept : reject
",
    );
    assert_pass(&before, &before);
}

#[test]
fn a_relation_is_not_related_to_a_primitive_on_the_same_bytes() {
    // ip and ether[12:2] = 0x800: libpcap loads the relation's bytes
    // through its X register, a value of its own, so the second test is
    // not seen to be implied and stays.
    let before = ir(
        "b0",
        "\
b0: eq v0, v1 ? b1 : reject
b1: eq v0, v1 relation ? accept : reject
",
    );
    assert_pass(&before, &before);
}

#[test]
fn or_pullup_tests_one_value_against_all_its_constants_first() {
    // tcp and (sport 80 or dport 80 or sport 443 or dport 443): the
    // chain of false edges all jumping to accept is reordered so the
    // source port is compared with 80 and 443 before the destination
    // port is loaded. libpcap pulls up from the lowest level: first
    // `dport 443` above `sport 443` (the head's predecessor tests the
    // destination port), then `sport 443` above `dport 80`.
    assert_pass(
        &ir(
            "b0",
            "\
b0: eq v3, v4 ? b1 : reject
b1: eq v6, v8 ? accept : b2
b2: eq v7, v8 ? accept : b3
b3: eq v6, v9 ? accept : b4
b4: eq v7, v9 ? accept : reject
",
        ),
        &ir(
            "b0",
            "\
b0: eq v3, v4 ? b1 : reject
b1: eq v6, v8 ? accept : b2
b2: eq v6, v9 ? accept : b3
b3: eq v7, v8 ? accept : b4
b4: eq v7, v9 ? accept : reject
",
        ),
    );
}

#[test]
fn and_pullup_is_the_same_along_true_edges() {
    // tcp and sport >= 1024 and dport >= 1024 and sport > 5000 and
    // dport > 5000: the chain of true edges whose false edges all
    // reject is reordered the same way.
    assert_pass(
        &ir(
            "b0",
            "\
b0: eq v3, v4 ? b1 : reject
b1: ge v6, v12 ? b2 : reject
b2: ge v7, v12 ? b3 : reject
b3: gt v6, v13 ? b4 : reject
b4: gt v7, v13 ? accept : reject
",
        ),
        &ir(
            "b0",
            "\
b0: eq v3, v4 ? b1 : reject
b1: ge v6, v12 ? b2 : reject
b2: gt v6, v13 ? b3 : reject
b3: ge v7, v12 ? b4 : reject
b4: gt v7, v13 ? accept : reject
",
        ),
    );
}

#[test]
fn no_pullup_when_libpcap_leaves_the_filter_unoptimised() {
    let before = unoptimized_ir(
        "b0",
        "\
b0: eq v3, v4 ? b1 : reject
b1: eq v6, v8 ? accept : b2
b2: eq v7, v8 ? accept : b3
b3: eq v6, v9 ? accept : b4
b4: eq v7, v9 ? accept : reject
",
    );
    assert_pass(&before, &before);
}

#[test]
fn equal_blocks_merge_after_the_branch_loop() {
    // (ip and tcp or ip6) and ether[0] = 1: the two copies of the last
    // test (same test, same edges) become one.
    assert_pass(
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : b2
b1: eq v3, v4 ? b3 : reject
b2: eq v0, v2 ? b4 : reject
b3: eq v15, v11 ? accept : reject
b4: eq v15, v11 ? accept : reject
",
        ),
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : b2
b1: eq v3, v4 ? b3 : reject
b2: eq v0, v2 ? b3 : reject
b3: eq v15, v11 ? accept : reject
",
        ),
    );
    // A test whose edges meet only through the merge stays, loads and
    // all: libpcap's branch loop is over when it merges.
    assert_pass(
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : reject
b1: eq v3, v4 ? b2 : b3
b2: eq v15, v11 ? accept : reject
b3: eq v15, v11 ? accept : reject
",
        ),
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : reject
b1: eq v3, v4 ? b2 : b2
b2: eq v15, v11 ? accept : reject
",
        ),
    );
}

#[test]
fn unreachable_blocks_go() {
    assert_pass(
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b2 : reject
b1: eq v3, v4 ? accept : reject
b2: eq v3, v5 ? accept : reject
",
        ),
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : reject
b1: eq v3, v5 ? accept : reject
",
        ),
    );
    assert_pass(
        &ir("accept", "b0: eq v0, v1 ? accept : reject\n"),
        &ir("accept", ""),
    );
}

#[test]
fn assignments_are_never_skipped() {
    // The test after the assignment repeats the first one: threading
    // goes past it, not past the assignment, whose edges are not a
    // test's.
    assert_pass(
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : reject
b1: let var0 = v6 ? b2 : reject
b2: eq v0, v1 ? b3 : reject
b3: eq v17, v4 ? accept : reject
",
        ),
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : reject
b1: let var0 = v6 ? b2 : reject
b2: eq v17, v4 ? accept : reject
",
        ),
    );
    // An assignment both of whose edges reject stays for its load (of
    // bytes 34 and 35), though nothing reads the variable.
    let before = ir(
        "b0",
        "\
b0: eq v0, v1 ? b1 : reject
b1: let var0 = v6 ? reject : reject
",
    );
    assert_pass(&before, &before);
}

#[test]
fn an_assignment_nothing_reads_goes_when_it_cannot_reject() {
    // `drop_dead_lets`: the wire length is always there, and no block
    // reads variable 1.
    assert_pass(
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : reject
b1: let var1 = v10 ? b2 : reject
b2: eq v3, v4 ? accept : reject
",
        ),
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : reject
b1: eq v3, v4 ? accept : reject
",
        ),
    );
}

#[test]
fn the_first_tests_loads_stay() {
    // (ip or not ip) and dport 80: the root's edges meet once threading
    // decides the second `ip`, so evaluation starts at the port test;
    // libpcap's opt_root keeps the root's load of the EtherType, so a
    // frame of fewer than 14 bytes is still rejected.
    assert_pass(
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b2 : b1  # 0..2
b1: eq v0, v1 ? reject : b2  # 10..12
b2: eq v7, v8 ? accept : reject  # 19..30
",
        ),
        &ir(
            "b0",
            "\
b0: eq v0, v1 ? b1 : b1  # 0..2
b1: eq v7, v8 ? accept : reject  # 19..30
",
        ),
    );
    // The same root already there stays as it is.
    let kept = ir(
        "b0",
        "\
b0: eq v3, v4 ? b1 : b1
b1: eq v0, v1 ? accept : reject
",
    );
    assert_pass(&kept, &kept);
    // A root that cannot reject (the wire length is always there) goes.
    assert_pass(
        &ir(
            "b0",
            "\
b0: ge v10, v18 ? b1 : b1
b1: eq v0, v1 ? accept : reject
",
        ),
        &ir("b0", "b0: eq v0, v1 ? accept : reject\n"),
    );
}

/// The text of an IR with a firewall's meaning of a short read
/// (`semantics exact`).
fn exact_ir(entry: &str, blocks: &str) -> String {
    format!("semantics exact\n{}", ir(entry, blocks))
}

#[test]
fn exact_a_test_whose_edges_and_short_read_meet_goes() {
    // The IPv4 test goes wherever it finds: it goes, and its loads with
    // it (a short read would have gone the same way).
    assert_pass(
        &exact_ir(
            "b0",
            "b0: eq v0, v1 ? b1 : b1 short false\n\
             b1: eq v3, v4 ? accept : reject short false\n",
        ),
        &exact_ir("b0", "b0: eq v3, v4 ? accept : reject short false\n"),
    );
}

#[test]
fn exact_a_test_that_rejects_when_short_stays() {
    // Its edges meet, but a short read ends the filter: the test decides
    // something, so it stays.
    let text = exact_ir(
        "b0",
        "b0: eq v0, v1 ? b1 : b1\n\
         b1: eq v3, v4 ? accept : reject short false\n",
    );
    assert_pass(&text, &text);
}

#[test]
fn exact_a_repeated_test_fails_again_on_a_short_read() {
    // The first EtherType test's false edge is also where a short read
    // goes. The second test repeats it: on that edge it finds the type
    // unequal, or reads past the packet again and goes by its own short
    // edge, which is its false edge too. Either way it goes to b2; so
    // does the first test, whatever it finds. Only b2 is left.
    assert_pass(
        &exact_ir(
            "b0",
            "b0: eq v0, v1 ? b2 : b1 short false\n\
             b1: eq v0, v1 ? accept : b2 short false\n\
             b2: eq v3, v4 ? accept : reject short false\n",
        ),
        &exact_ir("b0", "b0: eq v3, v4 ? accept : reject short false\n"),
    );
}

#[test]
fn exact_a_repeated_test_keeps_a_short_read_that_goes_elsewhere() {
    // The same, but the second test's short read accepts: a packet too
    // short for the EtherType is accepted by it, so it stays.
    let text = exact_ir(
        "b0",
        "b0: eq v0, v1 ? b2 : b1 short false\n\
         b1: eq v0, v1 ? accept : b2 short true\n\
         b2: eq v3, v4 ? accept : reject short false\n",
    );
    assert_pass(&text, &text);
}

#[test]
fn exact_equal_tests_merge_only_with_equal_short_reads() {
    // b1 and b2 test the same with the same edges; b3 differs only in
    // where a short read goes, so it stays apart.
    assert_pass(
        &exact_ir(
            "b0",
            "b0: eq v0, v1 ? b1 : b2 short false\n\
             b1: eq v3, v4 ? b3 : reject short false\n\
             b2: eq v3, v4 ? b3 : reject short false\n\
             b3: eq v7, v8 ? accept : reject short true\n",
        ),
        &exact_ir(
            "b0",
            "b0: eq v0, v1 ? b1 : b1 short false\n\
             b1: eq v3, v4 ? b2 : reject short false\n\
             b2: eq v7, v8 ? accept : reject short true\n",
        ),
    );
}

#[test]
fn exact_an_action_stays_though_its_edges_meet() {
    // A rule that only counts: its action runs whatever follows.
    let text = exact_ir(
        "b0",
        "b0: eq v0, v1 ? b1 : reject short false\n\
         b1: act 0 ? reject : reject\n",
    );
    assert_pass(&text, &text);
}

#[test]
fn exact_knowledge_flows_through_an_action() {
    // The second EtherType test repeats the first: an action never
    // writes the packet, so the first test's outcome still holds after
    // it and the repeat goes. The action stays.
    assert_pass(
        &exact_ir(
            "b0",
            "b0: eq v0, v1 ? b1 : reject short false\n\
             b1: act 0 ? b2 : reject\n\
             b2: eq v0, v1 ? b3 : reject short false\n\
             b3: eq v3, v4 ? accept : reject short false\n",
        ),
        &exact_ir(
            "b0",
            "b0: eq v0, v1 ? b1 : reject short false\n\
             b1: act 0 ? b2 : reject\n\
             b2: eq v3, v4 ? accept : reject short false\n",
        ),
    );
}

/// Three rules over a protocol number held in a variable (as nft2bpf
/// holds `meta l4proto`): `tcp dport 80` gives verdict 2, `tcp dport
/// 443` verdict 3, `udp` verdict 4.
const THREE_RULES: &str = "\
b0: let var0 = v3 ? b1 : reject short false
b1: eq v16, v4 ? b2 : b3
b2: eq v7, v8 ? verdict2 : b3 short false
b3: eq v16, v4 ? b4 : b5
b4: eq v7, v9 ? verdict3 : b5 short false
b5: eq v16, v5 ? verdict4 : reject
";

#[test]
fn exact_a_failed_guard_skips_every_rule_that_needs_it() {
    // Not TCP: the first rule's guard goes straight to the UDP rule.
    // TCP with another port: the second rule's guard is known and goes,
    // and its port test's failure knows the packet is not UDP. The
    // port tests' false edges are where a short read goes: they tell
    // nothing about the port.
    assert_pass(
        &exact_ir("b0", THREE_RULES),
        &exact_ir(
            "b0",
            "b0: let var0 = v3 ? b1 : reject short false\n\
             b1: eq v16, v4 ? b2 : b4\n\
             b2: eq v7, v8 ? verdict2 : b3 short false\n\
             b3: eq v7, v9 ? verdict3 : reject short false\n\
             b4: eq v16, v5 ? verdict4 : reject\n",
        ),
    );
}

#[test]
fn exact_a_later_assignment_keeps_a_variables_tests() {
    // The same rules, but the variable is assigned again after the
    // first rule: what the first rule found says nothing about the
    // second's guard, which stays on both edges. What the second rule's
    // own guard found still holds at the third.
    assert_pass(
        &exact_ir(
            "b0",
            "b0: let var0 = v3 ? b1 : reject short false\n\
             b1: eq v16, v4 ? b2 : b3\n\
             b2: eq v7, v8 ? verdict2 : b3 short false\n\
             b3: let var0 = v15 ? b4 : reject short false\n\
             b4: eq v16, v4 ? b5 : b6\n\
             b5: eq v7, v9 ? verdict3 : b6 short false\n\
             b6: eq v16, v5 ? verdict4 : reject\n",
        ),
        &exact_ir(
            "b0",
            "b0: let var0 = v3 ? b1 : reject short false\n\
             b1: eq v16, v4 ? b2 : b3\n\
             b2: eq v7, v8 ? verdict2 : b3 short false\n\
             b3: let var0 = v15 ? b4 : reject short false\n\
             b4: eq v16, v4 ? b5 : b6\n\
             b5: eq v7, v9 ? verdict3 : reject short false\n\
             b6: eq v16, v5 ? verdict4 : reject\n",
        ),
    );
}

#[test]
fn exact_a_range_decides_the_tests_outside_it() {
    // `dport >= 1000` then `dport > 5000`, the port read on edges no
    // short read takes (it goes to verdict 5). Past 5000, `dport == 80`
    // cannot hold and `dport > 1024` must: verdict 4 at once. Under
    // 1000, `dport == 80` is tested, and when it fails `dport > 1024`
    // cannot hold.
    assert_pass(
        &exact_ir(
            "b0",
            "b0: ge v7, v12 ? b1 : b2 short verdict5\n\
             b1: gt v7, v13 ? b2 : verdict2 short verdict5\n\
             b2: eq v7, v8 ? verdict3 : b3 short verdict5\n\
             b3: gt v7, v12 ? verdict4 : reject short verdict5\n",
        ),
        &exact_ir(
            "b0",
            "b0: ge v7, v12 ? b1 : b2 short verdict5\n\
             b1: gt v7, v13 ? verdict4 : verdict2 short verdict5\n\
             b2: eq v7, v8 ? verdict3 : reject short verdict5\n",
        ),
    );
}

#[test]
fn exact_a_block_only_a_short_read_reaches_stays() {
    // b2 is reached only when b0 reads past the packet; the dead b1 goes
    // and the short edge is numbered again.
    assert_pass(
        &exact_ir(
            "b0",
            "b0: eq v0, v1 ? accept : reject short b2\n\
             b1: eq v3, v4 ? accept : reject short false\n\
             b2: eq v3, v5 ? verdict2 : verdict3 short verdict4\n",
        ),
        &exact_ir(
            "b0",
            "b0: eq v0, v1 ? accept : reject short b1\n\
             b1: eq v3, v5 ? verdict2 : verdict3 short verdict4\n",
        ),
    );
}

#[test]
fn exact_merges_redirect_short_edges() {
    // b2 and b3 are equal: b1's true edge and b0's short edge both go
    // to the one kept; b0 and b1 differ only in where a short read goes.
    assert_pass(
        &exact_ir(
            "b0",
            "b0: eq v0, v1 ? b1 : verdict2 short b2\n\
             b1: eq v3, v4 ? b3 : verdict2 short b3\n\
             b2: eq v7, v8 ? accept : reject short verdict2\n\
             b3: eq v7, v8 ? accept : reject short verdict2\n",
        ),
        &exact_ir(
            "b0",
            "b0: eq v0, v1 ? b1 : verdict2 short b2\n\
             b1: eq v3, v4 ? b2 : verdict2 short b2\n\
             b2: eq v7, v8 ? accept : reject short verdict2\n",
        ),
    );
}

#[test]
fn exact_a_test_whose_short_read_goes_elsewhere_stays() {
    // b0's edges meet but a short read goes to b2: the test decides
    // something, it stays. b1's edges and short edge all meet: it goes,
    // and b0's edges are pointed past it.
    assert_pass(
        &exact_ir(
            "b0",
            "b0: eq v0, v1 ? b1 : b1 short b2\n\
             b1: eq v3, v4 ? b3 : b3 short b3\n\
             b2: eq v6, v8 ? accept : reject short verdict2\n\
             b3: eq v7, v8 ? accept : reject short verdict2\n",
        ),
        &exact_ir(
            "b0",
            "b0: eq v0, v1 ? b2 : b2 short b1\n\
             b1: eq v6, v8 ? accept : reject short verdict2\n\
             b2: eq v7, v8 ? accept : reject short verdict2\n",
        ),
    );
    // A short edge past a test of constants goes where the test goes.
    assert_pass(
        &exact_ir(
            "b0",
            "b0: eq v0, v1 ? accept : reject short b1\n\
             b1: eq v1, v1 ? b2 : reject short false\n\
             b2: eq v7, v8 ? accept : reject short verdict2\n",
        ),
        &exact_ir(
            "b0",
            "b0: eq v0, v1 ? accept : reject short b1\n\
             b1: eq v7, v8 ? accept : reject short verdict2\n",
        ),
    );
}
