//! Hostile inputs are bounded: expressions nested or chained far past the
//! parser's limits are refused with a caret at the token that crosses
//! the limit, never a stack overflow; expressions at the limits compile.
//! A run of one boolean operator (`a or b or ...`, as tools generate)
//! is a balanced tree, and a chain of `and` and `or` taking turns is
//! walked by loops: any length parses and compiles, in bounded stack.
//!
//! Every test runs on a thread with a fixed stack, so that a pass that
//! recurses deeper than the limits allow crashes the test.

use pcap2bpf::parser::{MAX_HEIGHT, MAX_NESTING, REPARSE_BUDGET, REPARSE_PER_TOKEN};
use pcap2bpf::{CompileOptions, LinkType, Span, Tables, Target, compile, parse};

/// The stack of a main thread (8 MiB on Linux), where the command runs:
/// the limits must fit in it even in a debug build, whose frames are
/// several times larger (the parser takes a few KiB a level there).
/// Inputs nested ten times past the limits would need far more.
const STACK: usize = 8 * 1024 * 1024;

/// Runs `f` on a thread with `stack` bytes of stack.
fn on_stack(stack: usize, f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the test thread panicked");
}

const NESTED: &str = "expression too deeply nested (more than 1000 levels)";
const COMPLEX: &str = "expression too complex (more than 2000 levels of operators; each operator of a chain adds one)";

/// `expr` is refused with `message` on the `len` bytes at `at`.
fn refused(expr: &str, message: &str, at: usize, len: usize) {
    let e = parse(expr, LinkType::En10mb, &Tables::new()).expect_err("refused");
    assert_eq!(e.message, message);
    assert_eq!(e.span, Span::new(at, at + len), "{}", &e.message);
    // The caret line is under the token.
    let rendered = e.render(expr);
    let caret = rendered.lines().nth(2).expect("caret line");
    assert_eq!(caret.find('^'), Some(2 + at));
}

#[test]
fn the_limits_are_the_documented_ones() {
    assert_eq!(MAX_NESTING, 1000);
    assert_eq!(MAX_HEIGHT, 2000);
    assert_eq!((REPARSE_BUDGET, REPARSE_PER_TOKEN), (1_000_000, 16));
}

/// A `(` is read as a boolean expression first, then as arithmetic: deep
/// parentheses around a long arithmetic expression would be read again at
/// every level, in time quadratic in the length. The parser gives up
/// instead, within a budget linear in the length.
#[test]
fn deep_parentheses_around_long_arithmetic_are_refused_in_linear_time() {
    on_stack(STACK, || {
        // 900 levels around 240 sums of 1000 `len` each: 960 KB, within
        // both limits (each sum is in parentheses, a tree 1000 high).
        let sum = format!("({})", vec!["len"; 1000].join("+"));
        let e = format!(
            "{}{}{} > 0",
            "(".repeat(900),
            vec![sum.as_str(); 240].join("+"),
            ")".repeat(900)
        );
        let start = std::time::Instant::now();
        let err = parse(&e, LinkType::En10mb, &Tables::new()).expect_err("refused");
        assert_eq!(
            err.message,
            "expression too complex to parse: parentheses nested too deep around too long an expression"
        );
        // At one of the outer parentheses.
        assert!(err.span.start < 900 && &e[err.span.start..err.span.end] == "(");
        // Quadratic would be minutes in a debug build.
        assert!(start.elapsed().as_secs() < 30, "{:?}", start.elapsed());
        // Shallower, the same expression parses.
        let e = format!(
            "{}{}{} > 0",
            "(".repeat(10),
            vec![sum.as_str(); 24].join("+"),
            ")".repeat(10)
        );
        parse(&e, LinkType::En10mb, &Tables::new()).expect("parses");
    });
}

#[test]
fn ninety_thousand_parentheses_are_refused() {
    on_stack(STACK, || {
        let n = 90_000;
        let e = format!("{}tcp{}", "(".repeat(n), ")".repeat(n));
        // The first parenthesis past the limit.
        refused(&e, NESTED, MAX_NESTING, 1);
        // Unclosed, and around arithmetic (where `(` is tried as both).
        refused(&"(".repeat(n), NESTED, MAX_NESTING, 1);
        let e = format!("{}len{} > 0", "(".repeat(n), ")".repeat(n));
        refused(&e, NESTED, MAX_NESTING, 1);
        // After a qualifier, where `(` opens a list of operands.
        let e = format!("host {}1.2.3.4{}", "(".repeat(n), ")".repeat(n));
        refused(&e, NESTED, 5 + MAX_NESTING, 1);
        let e = format!("host a and {}b{}", "(".repeat(n), ")".repeat(n));
        refused(&e, NESTED, 11 + MAX_NESTING, 1);
        let e = format!("vlan {}1{}", "(".repeat(n), ")".repeat(n));
        refused(&e, NESTED, 5 + MAX_NESTING, 1);
    });
}

#[test]
fn a_hundred_and_twenty_thousand_nots_are_refused() {
    on_stack(STACK, || {
        let e = format!("{}tcp", "not ".repeat(120_000));
        refused(&e, NESTED, 4 * MAX_NESTING, 3);
        let e = format!("{}tcp", "!".repeat(120_000));
        refused(&e, NESTED, MAX_NESTING, 1);
        // `not` before inherited operands: `host a and not not ... b`.
        let e = format!("host a and {}b", "not ".repeat(120_000));
        refused(&e, NESTED, 11 + 4 * MAX_NESTING, 3);
    });
}

/// `first`, then `n` operands joined by `or` and `and` in turn (`or`
/// first).
fn alternating(first: &str, operand: &str, n: usize) -> String {
    let mut e = first.to_string();
    for k in 1..=n {
        let op = if k % 2 == 1 { "or" } else { "and" };
        e.push_str(&format!(" {op} {operand}"));
    }
    e
}

#[test]
fn a_chain_of_a_hundred_and_twenty_thousand_ors_parses() {
    on_stack(STACK, || {
        let t = Tables::new();
        for e in [
            vec!["tcp"; 120_000].join(" or "),
            vec!["tcp"; 120_000].join(" and "),
            format!("host 1.1.1.1{}", " or 1.1.1.1".repeat(120_000)),
            format!("host (1.1.1.1{})", " and 1.1.1.1".repeat(120_000)),
            // Runs of one operator between changes.
            vec![vec!["tcp"; 1000].join(" or "); 120].join(" and "),
            // Operators taking turns: a tree as high as it is long, down
            // its left side, which every pass walks by a loop.
            alternating("tcp", "tcp", 120_000),
            vec!["tcp or udp"; 60_000].join(" and "),
            alternating("host 1.1.1.1", "1.1.1.1", 120_000),
            format!("{})", alternating("host (1.1.1.1", "1.1.1.1", 120_000)),
        ] {
            parse(&e, LinkType::En10mb, &t).expect("parses");
        }
    });
}

#[test]
fn two_hundred_and_thirty_thousand_unary_minus_are_refused() {
    on_stack(STACK, || {
        let e = format!("{}1 = 0", "- ".repeat(230_000));
        refused(&e, NESTED, 2 * MAX_NESTING, 1);
        let e = format!("{}1 = 0", "-".repeat(230_000));
        refused(&e, NESTED, MAX_NESTING, 1);
    });
}

#[test]
fn three_hundred_and_thirty_thousand_terms_are_refused() {
    on_stack(STACK, || {
        // The k-th `+` (at byte 2k - 1) makes a tree k + 1 high.
        let e = format!("{} = 0", vec!["1"; 330_000].join("+"));
        refused(&e, COMPLEX, 2 * MAX_HEIGHT - 1, 1);
        let e = format!("0 = {}", vec!["len"; 330_000].join("*"));
        refused(&e, COMPLEX, 4 + 4 * MAX_HEIGHT - 1, 1);
        // `^` is right-recursive: a chain of it nests.
        let e = format!("{} = 0", vec!["1"; 330_000].join("^"));
        refused(&e, NESTED, 2 * MAX_NESTING + 1, 1);
        // Nested loads.
        let e = format!("{}0{} = 0", "ip[".repeat(100_000), "]".repeat(100_000));
        refused(&e, NESTED, 3 * MAX_NESTING + 2, 1);
    });
}

/// Compiles `expr` for XDP on Ethernet.
fn compiles(expr: &str) {
    let t = Tables::new();
    let opts = CompileOptions::new(LinkType::En10mb, Target::Xdp, &t);
    if let Err(e) = compile(expr, &opts) {
        panic!("{}", e.render(expr));
    }
}

#[test]
fn filters_at_the_limits_compile() {
    on_stack(STACK, || {
        let n = MAX_NESTING;
        compiles(&format!("{}tcp{}", "(".repeat(n), ")".repeat(n)));
        compiles(&format!("{}tcp", "not ".repeat(n)));
        compiles(&format!("{}len = 0", "- ".repeat(n)));
        compiles(&format!("{}len{} > 0", "(".repeat(n), ")".repeat(n)));
        // Every load adds its protocol's checks to the tests.
        compiles(&format!("{}0{} = 0", "tcp[".repeat(n), "]".repeat(n)));
        compiles(&alternating("tcp", "tcp", 120_000));
        compiles(&vec!["tcp or udp"; 60_000].join(" and "));
        compiles(&format!("{} = 0", vec!["len"; MAX_HEIGHT - 1].join("+")));
        // Nesting and chains together.
        compiles(&format!(
            "{}({})",
            "not ".repeat(n - 1),
            alternating("tcp", "tcp", 120_000)
        ));
    });
}

#[test]
fn one_past_the_limits_is_refused() {
    on_stack(STACK, || {
        let n = MAX_NESTING + 1;
        refused(
            &format!("{}tcp{}", "(".repeat(n), ")".repeat(n)),
            NESTED,
            MAX_NESTING,
            1,
        );
        refused(
            &format!("{}tcp", "not ".repeat(n)),
            NESTED,
            4 * MAX_NESTING,
            3,
        );
        // A `not` over arithmetic as high as allowed is one level too
        // many.
        let e = format!("not {} = 0", vec!["len"; MAX_HEIGHT - 1].join("+"));
        refused(&e, COMPLEX, 0, 3);
    });
}
