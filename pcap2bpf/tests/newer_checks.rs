//! libpcap's newer checks, by class: the lines of
//! `testdata/pcap-filter/reject.tsv` that libpcap's development branch
//! refuses for a number too wide for its field, a DECnet address, or a
//! direction or interface keyword a capture file cannot have; for each
//! class found there, its siblings (other fields, values, qualifiers and
//! link types of the same class) must be refused too, with libpcap's
//! message and the caret under the value. Siblings the system libpcap
//! (1.10.3) still compiles must carry [`CompileError::newer_check`], the
//! others must not.

mod common;

use std::collections::BTreeMap;

use common::*;
use pcap2bpf::ast::{Dir, Expr, Kind, Primitive, Proto, Value};
use pcap2bpf::{CompileError, LinkType, LowerOptions, Options, lower_ir, parse_with, parser};

/// The classes of checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    /// `proto`/`protochain` numbers past 8 bits, `iso proto`, `isis proto`.
    ProtocolNumber,
    /// `link proto` past the DSAP, EtherType or PPP protocol field.
    LinkProto,
    /// Port numbers past 16 bits.
    Port,
    /// `vlan`, `mpls`, `pppoes`, `geneve` identifiers.
    Encapsulation,
    /// `byte N op V` with V past a byte.
    Byte,
    /// Netmask lengths past 32.
    Netmask,
    /// DECnet addresses.
    Decnet,
    /// `inbound`, `outbound`, `ifindex` in a capture file.
    Direction,
}

const LINKS: [(LinkType, &str); 6] = [
    (LinkType::En10mb, "EN10MB"),
    (LinkType::Raw, "RAW"),
    (LinkType::LinuxSll, "LINUX_SLL"),
    (LinkType::LinuxSll2, "LINUX_SLL2"),
    (LinkType::Null, "NULL"),
    (LinkType::Loop, "LOOP"),
];

/// The class of a primitive, if it is one we check.
fn class_of_prim(p: &Primitive) -> Option<Class> {
    Some(match p {
        Primitive::Qualified { qual, value, .. } => match (qual.kind, value, qual.proto) {
            (_, Value::Num(_) | Value::Ipv4(_), Some(Proto::Decnet)) => Class::Decnet,
            (_, Value::Ipv4Prefix(..) | Value::Ipv4Mask(..), Some(Proto::Decnet)) => Class::Decnet,
            (Kind::Proto, Value::Num(n), Some(Proto::Link)) if *n > 255 => Class::LinkProto,
            (Kind::Proto, Value::Num(n), Some(Proto::Isis)) if *n > 31 => Class::ProtocolNumber,
            (Kind::Proto | Kind::ProtoChain, Value::Num(n), _) if *n > 255 => Class::ProtocolNumber,
            (Kind::Port | Kind::PortRange, Value::Num(n), _) if *n > 65535 => Class::Port,
            (_, Value::Ipv4Prefix(_, len), _) if len.value > 32 => Class::Netmask,
            _ => return None,
        },
        Primitive::Vlan(Some(n)) if n.value > 4095 => Class::Encapsulation,
        Primitive::Mpls(Some(n)) if n.value > 0xfffff => Class::Encapsulation,
        Primitive::Pppoes(Some(n)) if n.value > 0xffff => Class::Encapsulation,
        Primitive::Geneve(Some(n)) if n.value > 0xffffff => Class::Encapsulation,
        Primitive::Byte(_, _, v) if v.value > 255 => Class::Byte,
        Primitive::Inbound | Primitive::Outbound | Primitive::IfIndex(_) => Class::Direction,
        _ => return None,
    })
}

fn class_of(e: &Expr) -> Option<Class> {
    match e {
        Expr::And(ab) | Expr::Or(ab) => class_of(&ab.0).or_else(|| class_of(&ab.1)),
        Expr::Not(a, _) => class_of(a),
        Expr::Prim(p, _) => class_of_prim(p),
    }
}

/// A sibling: where, what, the message and the text the caret is under.
struct Sibling {
    link: LinkType,
    expr: String,
    message: String,
    at: String,
}

fn sib(link: LinkType, expr: String, message: String, at: &str) -> Sibling {
    Sibling {
        link,
        expr,
        message,
        at: at.to_string(),
    }
}

fn over(name: &str, v: &str, n: u64, max: u32) -> String {
    let _ = v;
    format!("{name} {n} greater than maximum {max}")
}

/// Values past `max`, as written and as numbers.
fn past(max: u32) -> Vec<(String, u64)> {
    let m = u64::from(max);
    vec![
        ((m + 1).to_string(), m + 1),
        (format!("{:#x}", m + 1), m + 1),
        (format!("0{:o}", m + 7), m + 7),
        (u32::MAX.to_string(), u64::from(u32::MAX)),
    ]
}

fn siblings(class: Class) -> Vec<Sibling> {
    let mut v = Vec::new();
    match class {
        Class::ProtocolNumber => {
            for (link, _) in LINKS {
                for q in ["", "ip ", "ip6 "] {
                    for k in ["proto", "protochain"] {
                        for (t, n) in past(255) {
                            let e = format!("{q}{k} {t}");
                            v.push(sib(link, e, over("protocol number", &t, n, 255), &t));
                            let e = format!("tcp or {q}{k} ({t}) and udp");
                            let m = over("protocol number", &t, n, 255);
                            v.push(sib(link, e, m, &format!("({t})")));
                        }
                    }
                }
                for (t, n) in past(255) {
                    let e = format!("iso proto {t}");
                    v.push(sib(link, e, over("ISO protocol", &t, n, 255), &t));
                }
                for (t, n) in past(31).into_iter().chain(past(255)) {
                    let e = format!("isis proto {t}");
                    v.push(sib(link, e, over("IS-IS PDU type", &t, n, 31), &t));
                }
            }
        }
        Class::LinkProto => {
            for (link, q) in [
                (LinkType::En10mb, "ether"),
                (LinkType::En10mb, "link"),
                (LinkType::LinuxSll, "link"),
                (LinkType::LinuxSll, "ether"),
            ] {
                for (t, n) in [
                    ("256", 256),
                    ("1500", 1500),
                    ("0x5dc", 1500),
                    ("1000", 1000),
                ] {
                    let e = format!("{q} proto {t}");
                    v.push(sib(link, e, over("LLC DSAP", t, n, 255), t));
                }
            }
            for (link, q) in [
                (LinkType::En10mb, "ether"),
                (LinkType::LinuxSll, "link"),
                (LinkType::LinuxSll2, "link"),
                (LinkType::LinuxSll2, "ether"),
            ] {
                for (t, n) in past(0xffff) {
                    let e = format!("{q} proto {t}");
                    v.push(sib(link, e, over("EtherType", &t, n, 0xffff), &t));
                }
            }
            // Inside a PPPoE session the field is PPP's; inside Geneve
            // the encapsulated frame's EtherType.
            for (t, n) in past(0xffff) {
                let e = format!("pppoes and link proto {t}");
                v.push(sib(
                    LinkType::En10mb,
                    e,
                    over("PPP protocol", &t, n, 0xffff),
                    &t,
                ));
                let e = format!("geneve and ether proto {t}");
                let m = over("EtherType", &t, n, 0xffff);
                v.push(sib(LinkType::LinuxSll2, e, m, &t));
            }
        }
        Class::Port => {
            for (link, _) in LINKS {
                for p in ["", "tcp ", "udp ", "sctp "] {
                    for d in ["", "src ", "dst ", "src or dst "] {
                        for k in ["port", "portrange"] {
                            for (t, n) in past(0xffff) {
                                let e = format!("{p}{d}{k} {t}");
                                v.push(sib(link, e, over("port number", &t, n, 0xffff), &t));
                            }
                        }
                    }
                }
                for r in ["1-70000", "70000-1", "65535-65536"] {
                    let n = if r.starts_with("655") { 65536 } else { 70000 };
                    let e = format!("tcp portrange {r}");
                    let m = format!("port number {n} greater than maximum 65535");
                    v.push(sib(link, e, m, r));
                }
            }
        }
        Class::Encapsulation => {
            let en = LinkType::En10mb;
            for (kw, name, max) in [
                ("vlan", "VLAN tag", 4095),
                ("mpls", "MPLS label", 0xfffff),
                ("pppoes", "PPPoE session number", 0xffff),
                ("geneve", "Geneve VNI", 0xffffff),
            ] {
                for (t, n) in past(max) {
                    v.push(sib(en, format!("{kw} {t}"), over(name, &t, n, max), &t));
                    let e = format!("ip or {kw} ({t})");
                    v.push(sib(en, e, over(name, &t, n, max), &format!("({t})")));
                }
            }
        }
        Class::Byte => {
            for (link, _) in LINKS {
                for op in ["=", "<", ">", "&", "|"] {
                    for (t, n) in past(255) {
                        let e = format!("byte 1 {op} {t}");
                        v.push(sib(link, e, over("byte argument", &t, n, 255), &t));
                    }
                }
            }
        }
        Class::Netmask => {
            for (link, _) in LINKS {
                for q in ["net", "src net", "ip dst net", "arp net"] {
                    for len in ["33", "64", "0x21", "4294967295"] {
                        let n: u64 = if let Some(h) = len.strip_prefix("0x") {
                            u64::from_str_radix(h, 16).unwrap()
                        } else {
                            len.parse().unwrap()
                        };
                        let e = format!("{q} 10.0.0.0/{len}");
                        v.push(sib(link, e, over("netmask length", len, n, 32), len));
                    }
                }
            }
        }
        Class::Decnet => {
            let en = LinkType::En10mb;
            let bad = |a: &str| format!("invalid DECnet address '{a}'");
            for d in ["host ", "src ", "dst ", "src host ", "dst or src host "] {
                for a in [
                    "64.1", "64.120", "99.1023", "1.1024", "63.5000", "1.2.3", "1.2.3.4", "0.0.1",
                ] {
                    v.push(sib(en, format!("decnet {d}{a}"), bad(a), a));
                    v.push(sib(en, format!("ip or decnet {d}1.2 or {a}"), bad(a), a));
                }
                // libpcap prints the number in decimal.
                for (t, n) in [
                    ("1", "1"),
                    ("1025", "1025"),
                    ("0x400", "1024"),
                    ("65535", "65535"),
                    ("(65536)", "65536"),
                    ("0xffffffff", "4294967295"),
                ] {
                    v.push(sib(en, format!("decnet {d}{t}"), bad(n), t));
                }
            }
            let qual = |k: &str| format!("'decnet' is not a valid qualifier for '{k}'");
            for a in [
                "1.2",
                "1.2.3.4",
                "5",
                "10.0.0.0/8",
                "1.2.3.0 mask 255.255.255.0",
            ] {
                for d in ["", "src ", "dst "] {
                    v.push(sib(en, format!("decnet {d}net {a}"), qual("net"), a));
                }
            }
            for a in ["10.0.0.0/8", "1.2.3.0 mask 255.255.255.0"] {
                v.push(sib(en, format!("decnet host {a}"), qual("host"), a));
                v.push(sib(en, format!("decnet src {a}"), qual("host"), a));
            }
        }
        Class::Direction => {
            let live =
                |kw: &str, dlt: &str| format!("not a live capture, '{kw}' not supported on {dlt}");
            for (link, dlt) in [
                (LinkType::En10mb, "DLT_EN10MB (Ethernet)"),
                (LinkType::Raw, "DLT_RAW (Raw IPv4/IPv6)"),
                (LinkType::Null, "DLT_NULL (BSD loopback)"),
                (LinkType::Loop, "DLT_LOOP (OpenBSD loopback)"),
                (LinkType::LinuxSll, "DLT_LINUX_SLL (Linux cooked v1)"),
            ] {
                for kw in ["inbound", "outbound", "ifindex 1", "ifindex 4294967295"] {
                    let k = kw.split(' ').next().unwrap();
                    if link == LinkType::LinuxSll && k != "ifindex" {
                        continue;
                    }
                    v.push(sib(link, kw.to_string(), live(k, dlt), kw));
                    v.push(sib(link, format!("ip and not {kw}"), live(k, dlt), kw));
                }
            }
            // After `pppoes` the link layer is PPP's, without the field.
            let ppp = "DLT_PPP (Point-to-Point Protocol)";
            for (link, kw) in [
                (LinkType::LinuxSll, "inbound"),
                (LinkType::LinuxSll2, "outbound"),
                (LinkType::LinuxSll2, "ifindex"),
            ] {
                let e = format!("pppoes and {kw}{}", if kw == "ifindex" { " 2" } else { "" });
                let at = if kw == "ifindex" { "ifindex 2" } else { kw };
                v.push(sib(link, e, live(kw, ppp), at));
            }
        }
    }
    v
}

/// The error of `expr` on `link` as a capture file is filtered.
fn error_of(link: LinkType, expr: &str) -> Option<CompileError> {
    let t = tables();
    let f = match parse_with(expr, Options::new(link, &t).netmask(Some(0xffff_ff00))) {
        Ok(f) => f,
        Err(e) => return Some(e),
    };
    lower_ir(&f, &LowerOptions::offline(link, Some(0xffff_ff00))).err()
}

/// libpcap 1.10.3's verdict (`Ok` if it compiles) on each line.
fn libpcap(lines: &[(&str, String)]) -> Option<Vec<bool>> {
    let (bin, etc) = build_oracle()?;
    let input: String = lines
        .iter()
        .map(|(dlt, e)| format!("{dlt}\t255.255.255.0\t{e}\n"))
        .collect();
    let out = run_with_etc(&bin, &etc, &[], input)?;
    let v: Vec<bool> = out.lines().map(|l| l == "OK").collect();
    (v.len() == lines.len()).then_some(v)
}

#[test]
fn every_sibling_of_a_refused_line_is_refused_with_libpcaps_message() {
    let tsv = testdata_text("pcap-filter/reject.tsv");
    let mut found: BTreeMap<Class, Vec<String>> = BTreeMap::new();
    let mut bad = Vec::new();
    for line in tsv.lines().filter(|l| !l.starts_with('#')) {
        let Some((dlt, expr)) = line.split_once('\t') else {
            continue;
        };
        let Ok(Some(ast)) = parser::parse_expr(expr) else {
            continue;
        };
        let Some(class) = class_of(&ast) else {
            continue;
        };
        // The line itself, on its link type (DLT_IPV4/IPV6: raw IP's
        // checks are the same for these classes).
        let link = match dlt {
            "IPV4" | "IPV6" => Some(LinkType::Raw),
            _ => LINKS.iter().find(|(_, n)| *n == dlt).map(|(l, _)| *l),
        };
        if let Some(link) = link
            && error_of(link, expr).is_none()
        {
            bad.push(format!("{dlt} {expr:?} ({class:?}): accepted"));
        }
        found.entry(class).or_default().push(line.to_string());
    }
    // The file has these classes; the direction keywords are in none of
    // its lines, but are one class of the newer checks all the same.
    for c in [
        Class::ProtocolNumber,
        Class::LinkProto,
        Class::Port,
        Class::Encapsulation,
        Class::Byte,
        Class::Netmask,
        Class::Decnet,
    ] {
        assert!(
            found.contains_key(&c),
            "no line of class {c:?} in reject.tsv"
        );
    }
    found.entry(Class::Direction).or_default();
    let mut all = Vec::new();
    for (class, lines) in &found {
        let sibs = siblings(*class);
        eprintln!(
            "{class:?}: {} lines of reject.tsv, {} siblings",
            lines.len(),
            sibs.len()
        );
        for s in sibs {
            match error_of(s.link, &s.expr) {
                None => bad.push(format!("{:?} {:?}: accepted", s.link, s.expr)),
                Some(e) => {
                    let at = s.expr.get(e.span.start..e.span.end).unwrap_or("");
                    if e.message != s.message || at != s.at {
                        bad.push(format!(
                            "{:?} {:?}: {:?} under {at:?}, want {:?} under {:?}",
                            s.link, s.expr, e.message, s.message, s.at
                        ));
                    }
                    all.push((s, e));
                }
            }
        }
    }
    // Whether the system libpcap compiles each sibling decides whether
    // ours is a newer check. Not for the direction keywords: libpcap
    // 1.10.3 refuses them when reading a capture file (where we do) and
    // compiles them for the handle the oracle opens (`pcap_open_dead`,
    // reading nothing), which its development branch refuses.
    all.retain(|(s, _)| {
        !["inbound", "outbound", "ifindex"]
            .iter()
            .any(|k| s.expr.contains(k))
    });
    let name = |l: LinkType| {
        LINKS
            .iter()
            .find(|(x, _)| *x == l)
            .map(|(_, n)| *n)
            .unwrap()
    };
    let lines: Vec<(&str, String)> = all
        .iter()
        .map(|(s, _)| (name(s.link), s.expr.clone()))
        .collect();
    match libpcap(&lines) {
        None => testbed::skip("cannot build or run the libpcap oracle: newer_check not compared"),
        Some(old) => {
            for ((s, e), accepted) in all.iter().zip(old) {
                if e.newer_check != accepted {
                    bad.push(format!(
                        "{:?} {:?}: newer_check is {} but libpcap 1.10.3 {}",
                        s.link,
                        s.expr,
                        e.newer_check,
                        if accepted {
                            "compiles it"
                        } else {
                            "refuses it"
                        }
                    ));
                }
            }
        }
    }
    let shown: Vec<_> = bad.iter().take(40).cloned().collect();
    assert!(
        bad.is_empty(),
        "{} problems:\n{}",
        bad.len(),
        shown.join("\n")
    );
}

#[test]
fn accepted_neighbours_stay_accepted() {
    // The largest value of each field, and link types without the field.
    let ok = [
        (
            LinkType::Raw,
            "proto 255 or ip6 protochain 255 or isis proto 31 or iso proto 255",
        ),
        (
            LinkType::En10mb,
            "ether proto 255 or ether proto 1501 or ether proto 65535",
        ),
        (LinkType::LinuxSll2, "link proto 1500 or link proto 65535"),
        (LinkType::Raw, "link proto 65536 or link proto 1000"),
        (LinkType::Null, "link proto 4294967295"),
        (LinkType::Loop, "link proto 70000"),
        (LinkType::En10mb, "pppoes 65535 and link proto 65535"),
        (
            LinkType::En10mb,
            "port 65535 or portrange 0-65535 or vlan 4095 or mpls 1048575",
        ),
        (
            LinkType::En10mb,
            "byte 3 = 255 or net 0.0.0.0/32 or geneve 16777215",
        ),
        (
            LinkType::En10mb,
            "decnet host 63.1023 or decnet src 0.0 or decnet dst 1.1",
        ),
        (LinkType::LinuxSll, "inbound or outbound"),
        (LinkType::LinuxSll2, "inbound or ifindex 4294967295"),
    ];
    for (link, e) in ok {
        assert!(
            error_of(link, e).is_none(),
            "{link:?} {e}: {:?}",
            error_of(link, e)
        );
    }
    let _ = Dir::Default;
}
