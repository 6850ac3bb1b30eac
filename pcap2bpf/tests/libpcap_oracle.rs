//! Differential tests against the system libpcap (1.10.3), the oracle for
//! which expressions are valid. A tiny C helper (tests/oracle.c) is built
//! with `cc -lpcap` and run inside a private mount namespace whose /etc has
//! the `*.libpcap.test` names of libpcap's TESTrun, so that libpcap and our
//! test resolver know the same names.

use pcap2bpf::{LinkType, Options, parse_with};

mod common;
use common::*;

/// Lines libpcap 1.10.3 accepts that we do not, with the reason.
const UNSUPPORTED: &[(&str, &str)] = &[];

/// Lines libpcap 1.10.3 rejects that we accept, with the reason.
const OVERACCEPTED: &[(&str, &str)] = &[];

/// Asks libpcap about each `(dlt, netmask, expr)`: `Ok(())` or its error.
fn oracle(lines: &[(String, Option<u32>, String)]) -> Option<Vec<Result<(), String>>> {
    let (bin, etc) = build_oracle()?;
    let mut input = String::new();
    for (dlt, mask, expr) in lines {
        let mask = mask.map_or("-".to_string(), |m| std::net::Ipv4Addr::from(m).to_string());
        input.push_str(&format!("{dlt}\t{mask}\t{expr}\n"));
    }
    let text = run_with_etc(&bin, &etc, &[], input)?;
    let res: Vec<_> = text
        .lines()
        .map(|l| {
            if l == "OK" {
                Ok(())
            } else {
                Err(l.to_string())
            }
        })
        .collect();
    (res.len() == lines.len()).then_some(res)
}

fn link(name: &str) -> Option<LinkType> {
    Some(match name {
        "EN10MB" => LinkType::En10mb,
        "RAW" => LinkType::Raw,
        "LINUX_SLL" => LinkType::LinuxSll,
        "LINUX_SLL2" => LinkType::LinuxSll2,
        "NULL" => LinkType::Null,
        "LOOP" => LinkType::Loop,
        _ => return None,
    })
}

fn read_tsv(name: &str) -> Vec<(String, String)> {
    testdata_text(&format!("pcap-filter/{name}"))
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// Compares us with libpcap on every (line, netmask) pair and returns the
/// disagreements not listed as known.
fn compare(lines: &[(String, String)], what: &str) -> Vec<String> {
    let tables = tables();
    let ours: Vec<_> = lines
        .iter()
        .filter(|(dlt, _)| link(dlt).is_some())
        .flat_map(|(dlt, e)| [None, Some(0xffff_ff00u32)].map(|m| (dlt.clone(), m, e.clone())))
        .collect();
    let Some(theirs) = oracle(&ours) else {
        testbed::skip(
            "cannot build or run the libpcap oracle (needs cc, libpcap-dev, unshare as root)",
        );
        return vec![];
    };
    let mut bad = vec![];
    let (mut both_ok, mut both_err, mut newer) = (0, 0, 0);
    for ((dlt, mask, expr), lib) in ours.iter().zip(&theirs) {
        let Some(lt) = link(dlt) else { continue };
        let res = parse_with(expr, Options::new(lt, &tables).netmask(*mask));
        match (&res, lib) {
            (Ok(_), Ok(())) => both_ok += 1,
            // Whether a newer check is one 1.10.3 lacks is checked on
            // single primitives (tests/newer_checks.rs): here 1.10.3 may
            // refuse a later primitive of the same filter.
            (Err(_), Err(_)) => both_err += 1,
            // A check of libpcap's development branch (`ip proto 256`).
            (Err(e), Ok(())) if e.newer_check => newer += 1,
            (Err(e), Ok(())) if !UNSUPPORTED.iter().any(|(x, _)| x == expr) => bad.push(format!(
                "{what}: libpcap accepts, we reject: {dlt} {mask:?} {expr:?}: {}",
                e.message
            )),
            (Ok(_), Err(l)) if !OVERACCEPTED.iter().any(|(x, _)| x == expr) => bad.push(format!(
                "{what}: libpcap rejects ({l}), we accept: {dlt} {mask:?} {expr:?}"
            )),
            _ => {}
        }
    }
    eprintln!(
        "{what}: {both_ok} accepted by both, {both_err} rejected by both, {newer} refused by \
         the newer checks only, {} disagreements",
        bad.len()
    );
    bad
}

#[test]
fn accept_lines_match_libpcap() {
    let lines = read_tsv("accept.tsv");
    let bad = compare(&lines, "accept.tsv");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn reject_lines_match_libpcap() {
    let lines = read_tsv("reject.tsv");
    let bad = compare(&lines, "reject.tsv");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Random word salads from the filter vocabulary: libpcap and we must agree
/// on accept/reject for every one (this is what finds grammar corners).
#[test]
fn random_expressions_match_libpcap() {
    let words = [
        "host",
        "net",
        "port",
        "portrange",
        "src",
        "dst",
        "or",
        "and",
        "not",
        "!",
        "(",
        ")",
        "tcp",
        "udp",
        "ip",
        "ip6",
        "ether",
        "arp",
        "proto",
        "protochain",
        "10.0.0.1",
        "10.1",
        "::1",
        "fe80::/10",
        "1.2.3.4/8",
        "mask",
        "255.0.0.0",
        "80",
        "0x10",
        "a:b:c:d:e:f",
        "smtp",
        "domain",
        "1-1023",
        "len",
        "=",
        ">",
        "<=",
        "!=",
        "+",
        "*",
        "^",
        "&",
        "|",
        "-",
        "[",
        "]",
        ":",
        "2",
        "4",
        "vlan",
        "mpls",
        "pppoes",
        "geneve",
        "broadcast",
        "multicast",
        "gateway",
        "less",
        "greater",
        "llc",
        "icmp",
        "tcp-syn",
        "tcpflags",
        "decnet",
        "1.2",
        "localhost",
        "\\tcp",
        "byte",
        "inbound",
        "ifindex",
        "sctp",
        "iso",
        "isis",
        "l1",
    ];
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    let mut lines = Vec::new();
    for _ in 0..4000 {
        let n = 1 + next(6);
        let e: Vec<&str> = (0..n).map(|_| words[next(words.len())]).collect();
        let link = ["EN10MB", "RAW", "LINUX_SLL2"][next(3)];
        lines.push((link.to_string(), e.join(" ")));
    }
    // Structured: primitives and bare operands joined by boolean operators.
    let prims = [
        "host 10.0.0.1",
        "tcp port 80",
        "src net 10.1",
        "ip6 host ::1",
        "ether src a:b:c:d:e:f",
        "udp portrange 1-1023",
        "ip proto 6",
        "ip6 protochain 6",
        "vlan 3",
        "mpls",
        "pppoes 1",
        "geneve",
        "tcp[13] & 2 != 0",
        "len > 10",
        "arp",
        "ip broadcast",
        "multicast",
        "dst host localhost",
        "net 10.0.0.0/8",
        "tcp dst port smtp",
        "icmp",
        "llc",
        "gateway localhost",
        "ether proto \\ip",
        "decnet src 1.2",
        "port domain",
    ];
    let bare = [
        "10.0.0.2",
        "443",
        "(5)",
        "::2",
        "smtp",
        "localhost",
        "a:b:c:d:e:1",
        "1.2",
    ];
    for _ in 0..4000 {
        let mut e = String::new();
        let n = 1 + next(4);
        for i in 0..n {
            if i > 0 {
                e.push_str([" and ", " or ", " && ", " || "][next(4)]);
            }
            if next(4) == 0 {
                e.push_str("not ");
            }
            let operand = if i > 0 && next(2) == 0 {
                bare[next(bare.len())]
            } else {
                prims[next(prims.len())]
            };
            if next(5) == 0 {
                e.push_str(&format!("({operand})"));
            } else {
                e.push_str(operand);
            }
        }
        let link = ["EN10MB", "RAW", "LINUX_SLL2"][next(3)];
        lines.push((link.to_string(), e));
    }
    let bad = compare(&lines, "random");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
