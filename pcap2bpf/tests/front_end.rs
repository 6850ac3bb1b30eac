//! Unit-level tests of the front end: inheritance, precedence, address
//! forms, caret rendering, and no panics on arbitrary input.

use pcap2bpf::ast::{Arith, ArithOp, Dir, Expr, Kind, Primitive, Proto, Value};
use pcap2bpf::{LinkType, Tables, parse};

fn tables() -> Tables {
    Tables::new()
        .with_hosts("10.0.0.9 a\n10.0.0.8 b\n")
        .with_services("smtp 25/tcp\ndomain 53/tcp\ndomain 53/udp\n")
        .with_protocols("tcp 6 TCP\nudp 17 UDP\n")
}

fn ast(e: &str) -> Expr {
    parse(e, LinkType::En10mb, &tables())
        .unwrap_or_else(|err| panic!("{e}: {}", err.render(e)))
        .ast
        .expect("non-empty")
}

fn err(e: &str) -> pcap2bpf::CompileError {
    parse(e, LinkType::En10mb, &tables()).expect_err(e)
}

fn qual_of(e: &Expr) -> (Option<Proto>, Dir, Kind, Value) {
    match e {
        Expr::Prim(Primitive::Qualified { qual, value, .. }, _) => {
            (qual.proto, qual.dir, qual.kind, value.clone())
        }
        other => panic!("not qualified: {other:?}"),
    }
}

#[test]
fn bare_operands_inherit_the_previous_qualifier() {
    let tree = ast("tcp dst port 80 or 443");
    let Expr::Or(ab) = &tree else { panic!() };
    let (a, b) = &**ab;
    assert_eq!(
        qual_of(a),
        (Some(Proto::Tcp), Dir::Dst, Kind::Port, Value::Num(80))
    );
    assert_eq!(
        qual_of(b),
        (Some(Proto::Tcp), Dir::Dst, Kind::Port, Value::Num(443))
    );
    // `not host a and b` is `(not host a) and host b`.
    let tree = ast("not host a and b");
    let Expr::And(ab) = &tree else { panic!() };
    let (a, b) = &**ab;
    assert!(matches!(a, Expr::Not(..)));
    assert_eq!(qual_of(b).2, Kind::Host);
    assert_eq!(qual_of(b).3, Value::Name("b".into()));
    // Inside parentheses all bare operands share the qualifier.
    let tree = ast("host a or (b and 10.0.0.1)");
    let Expr::Or(ab) = &tree else { panic!() };
    let Expr::And(xy) = &ab.1 else { panic!() };
    let (x, y) = &**xy;
    assert_eq!(qual_of(x).2, Kind::Host);
    assert_eq!(qual_of(y).3, Value::Ipv4("10.0.0.1".into()));
    // After a parenthesised term the qualifier in force before it returns:
    // at the start that is none, so a bare operand is an error.
    err("(host a) and b");
    err("tcp and 5");
}

#[test]
fn and_or_have_equal_precedence_and_associate_left() {
    // a or b and c == (a or b) and c
    let tree = ast("tcp or udp and icmp");
    let Expr::And(lr) = &tree else { panic!() };
    assert!(matches!(lr.0, Expr::Or(..)));
    let tree = ast("tcp and udp or icmp");
    let Expr::Or(lr) = &tree else { panic!() };
    assert!(matches!(lr.0, Expr::And(..)));
    // `not` binds tighter than both.
    let tree = ast("not tcp and udp");
    let Expr::And(lr) = &tree else { panic!() };
    assert!(matches!(lr.0, Expr::Not(..)));
}

#[test]
fn arithmetic_precedence() {
    let tree = ast("1 + 2 * 3 = 7");
    let Expr::Prim(Primitive::Relation(_, lhs, _), _) = &tree else {
        panic!()
    };
    let Arith::Binary(ArithOp::Add, _, r) = lhs else {
        panic!("{lhs:?}")
    };
    assert!(matches!(**r, Arith::Binary(ArithOp::Mul, ..)));
    // `|` is lowest, `&` above it.
    let tree = ast("1 | 2 & 3 = 3");
    let Expr::Prim(Primitive::Relation(_, lhs, _), _) = &tree else {
        panic!()
    };
    assert!(matches!(lhs, Arith::Binary(ArithOp::Or, ..)));
    // `^` has no precedence in libpcap: it takes everything to its right.
    let tree = ast("ip[1] ^ 2 + 3 = 5");
    let Expr::Prim(Primitive::Relation(_, lhs, _), _) = &tree else {
        panic!()
    };
    let Arith::Binary(ArithOp::Xor, _, r) = lhs else {
        panic!()
    };
    assert!(matches!(**r, Arith::Binary(ArithOp::Add, ..)));
}

#[test]
fn address_forms() {
    let v = |e: &str| qual_of(&ast(e)).3;
    assert_eq!(v("host 10"), Value::Num(10));
    assert_eq!(v("net 10.1"), Value::Ipv4("10.1".into()));
    assert_eq!(v("net 10.1.2"), Value::Ipv4("10.1.2".into()));
    let Value::Ipv4Prefix(a, len) = v("net 10.0.0.0/8") else {
        panic!()
    };
    assert_eq!((a.as_str(), len.value, len.span.start), ("10.0.0.0", 8, 13));
    assert_eq!(
        v("net 10.0.0.0 mask 255.0.0.0"),
        Value::Ipv4Mask("10.0.0.0".into(), "255.0.0.0".into())
    );
    assert_eq!(v("host ::1"), Value::Ipv6("::1".parse().unwrap()));
    assert_eq!(
        v("net 2000::/3"),
        Value::Ipv6Prefix("2000::".parse().unwrap(), 3)
    );
    assert_eq!(
        v("host ::ffff:1.2.3.4"),
        Value::Ipv6("::ffff:1.2.3.4".parse().unwrap())
    );
    let mac = Value::Mac([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
    for m in [
        "aa:bb:cc:dd:ee:ff",
        "aa-bb-cc-dd-ee-ff",
        "aa.bb.cc.dd.ee.ff",
        "aabb.ccdd.eeff",
        "aabbccddeeff",
    ] {
        assert_eq!(v(&format!("ether host {m}")), mac, "{m}");
    }
    assert_eq!(
        v("ether host a:b:c:d:e:f"),
        Value::Mac([10, 11, 12, 13, 14, 15])
    );
    // Numbers: hex and octal as libpcap's scanner reads them.
    assert_eq!(v("host 0x0a000001"), Value::Num(0x0a00_0001));
    assert_eq!(v("host 01200000001"), Value::Num(0o1200000001));
    assert!(err("host 09").message.contains("non-octal"));
    assert!(err("host 4294967296").message.contains("overflows"));
}

#[test]
fn semantic_checks() {
    assert!(
        err("ip6 host 1.2.3.4")
            .message
            .contains("'ip6' modifier applied to ip host")
    );
    assert!(err("net 10.0.0.1/8").message.contains("non-network bits"));
    assert!(err("tcp port 70000").message.contains("65535"));
    assert!(
        err("icmp port 80")
            .message
            .contains("illegal qualifier of 'port'")
    );
    assert!(err("udp port smtp").message.contains("is tcp"));
    assert!(err("vlan 4096").message.contains("4095"));
    assert!(err("mpls and vlan").message.contains("after MPLS"));
    assert!(err("ip[0:3] = 1").message.contains("1, 2, or 4"));
    assert!(
        err("host nosuchname")
            .message
            .contains("unknown host 'nosuchname'")
    );
    assert!(parse("vlan", LinkType::Raw, &tables()).is_err());
    assert!(parse("ether host 1:2:3:4:5:6", LinkType::LinuxSll, &tables()).is_err());
    // Accepted even though nothing can match: later stages warn.
    assert!(parse("ip and ip6", LinkType::En10mb, &tables()).is_ok());
    assert!(
        parse("", LinkType::En10mb, &tables())
            .unwrap()
            .checked
            .is_none()
    );
}

#[test]
fn carets_point_at_the_error() {
    let e = "tcp port 70000";
    let r = err(e).render(e);
    assert_eq!(
        r,
        "error: port number 70000 greater than maximum 65535\n  tcp port 70000\n           ^^^^^"
    );
    let e = "host a and and";
    let r = err(e).render(e);
    assert!(r.ends_with("\n  host a and and\n             ^^^"), "{r}");
    let e = "port 1 or @";
    assert!(err(e).render(e).ends_with("          ^"));
}

/// A syntax error says what it found: a token it did not expect, the end
/// of the expression, or (when closing them would make it whole) open
/// parentheses.
#[test]
fn syntax_errors_say_what_they_found() {
    for (e, message, at) in [
        ("tcp prt 80", "syntax error: unexpected 'prt'", 4),
        ("tcp[0] & 0xzz", "syntax error: unexpected '0xzz'", 9),
        ("port 80 80", "syntax error: unexpected '80'", 8),
        ("ip and )", "syntax error: unexpected ')'", 7),
        (
            "tcp port 80 and",
            "syntax error: the expression ends too soon",
            15,
        ),
        ("less", "syntax error: the expression ends too soon", 4),
        ("(tcp", "syntax error: missing ')'", 4),
        ("((ip or arp", "syntax error: missing ')'", 11),
        // Closing the parenthesis would not help: the operand is missing.
        (
            "tcp and (port 80 or",
            "syntax error: the expression ends too soon",
            19,
        ),
        ("(ip[0", "syntax error: the expression ends too soon", 5),
    ] {
        let got = err(e);
        assert_eq!((got.message.as_str(), got.span.start), (message, at), "{e}");
    }
}

#[test]
fn no_panic_on_random_input_or_prefixes() {
    let valid = [
        "tcp dst port 80 or 443 and not host 10.0.0.1",
        "ether[12:2] = 0x800 and (ip[9] + 1) * 2 > len",
        "ip6 net fe80::/10 or ether host aa:bb:cc:dd:ee:ff",
        "vlan 5 and mpls 3 and pppoes 7 and tcp portrange 1-1023",
        "icmp6[icmp6type] == icmp6-echoreply || ! arp src net 10.1 mask 255.255",
    ];
    let t = tables();
    for v in valid {
        for (i, _) in v.char_indices() {
            let _ = parse(&v[..i], LinkType::En10mb, &t);
            let _ = parse(&v[i..], LinkType::Raw, &t);
        }
    }
    // A small xorshift generator: deterministic, no dependency.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let alphabet = b" ()[]:!&|^<>=+-*/%.0123456789abcdefx\\$\t\nhostportnetandornotip6";
    for _ in 0..20000 {
        let mut s = Vec::new();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % 24) as usize;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly grammar characters, sometimes any byte.
            if x.is_multiple_of(11) {
                s.push((x >> 8) as u8);
            } else {
                s.push(alphabet[(x >> 8) as usize % alphabet.len()]);
            }
        }
        let text = String::from_utf8_lossy(&s);
        if let Err(e) = parse(&text, LinkType::En10mb, &t) {
            let _ = e.render(&text);
        }
    }
}

/// A test after `geneve` that also runs where `geneve` did not match
/// reads offsets nobody computed: refused, the caret under that test.
#[test]
fn tests_that_read_geneves_offsets_where_it_did_not_match_are_refused() {
    let t = tables();
    let opts = pcap2bpf::CompileOptions::new(LinkType::En10mb, pcap2bpf::Target::Xdp, &t);
    for (e, at) in [("not geneve and tcp", 15), ("geneve or udp", 10)] {
        let got = match pcap2bpf::compile(e, &opts) {
            Ok(_) => panic!("{e}: compiled"),
            Err(err) => err,
        };
        assert!(
            got.message.contains("'geneve' before it did not match"),
            "{e}: {}",
            got.message
        );
        assert_eq!(got.span.start, at, "{e}");
    }
    assert!(pcap2bpf::compile("geneve and tcp", &opts).is_ok());
}
