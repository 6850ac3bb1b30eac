//! Differential tests against the system libpcap (1.10.3), the oracle for
//! which expressions are valid. A tiny C helper (tests/oracle.c) is built
//! with `cc -lpcap` and run inside a private mount namespace whose /etc has
//! the `*.libpcap.test` names of libpcap's TESTrun, so that libpcap and our
//! test resolver know the same names.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pcap2bpf::{LinkType, Options, Tables, parse_with};

const HOSTS: &str = "\
10.20.30.40 noeth-ipv4-noipv6.host123.libpcap.test
10.20.30.40 noeth-ipv4-ipv6.host123.libpcap.test
10.20.30.40 eth-ipv4-noipv6.host123.libpcap.test
10.20.30.40 eth-ipv4-ipv6.host123.libpcap.test
fd00:a1b2:c3d4::1020:3040:5060:7080 noeth-noipv4-ipv6.host123.libpcap.test
fd00:a1b2:c3d4::1020:3040:5060:7080 noeth-ipv4-ipv6.host123.libpcap.test
fd00:a1b2:c3d4::1020:3040:5060:7080 eth-noipv4-ipv6.host123.libpcap.test
fd00:a1b2:c3d4::1020:3040:5060:7080 eth-ipv4-ipv6.host123.libpcap.test
192.168.243.1 eth-ipv4x4-noipv6.host357.libpcap.test
192.168.242.4 eth-ipv4x4-noipv6.host357.libpcap.test
192.168.244.2 eth-ipv4x4-noipv6.host357.libpcap.test
192.168.241.3 eth-ipv4x4-noipv6.host357.libpcap.test
192.168.241.3 eth-ipv4x4-ipv6x2.host357.libpcap.test
192.168.244.2 eth-ipv4x4-ipv6x2.host357.libpcap.test
192.168.242.4 eth-ipv4x4-ipv6x2.host357.libpcap.test
192.168.243.1 eth-ipv4x4-ipv6x2.host357.libpcap.test
fd00:a1b2:c3d4::a0b0:c0d0:e0f0:1278 eth-noipv4-ipv6x2.host357.libpcap.test
fd00:a1b2:c3d4::a0b0:c0d0:e0f0:3456 eth-noipv4-ipv6x2.host357.libpcap.test
fd00:a1b2:c3d4::a0b0:c0d0:e0f0:3456 eth-ipv4x4-ipv6x2.host357.libpcap.test
fd00:a1b2:c3d4::a0b0:c0d0:e0f0:1278 eth-ipv4x4-ipv6x2.host357.libpcap.test
";

const ETHERS: &str = "\
aa:00:04:00:14:0e eth-noipv4-noipv6.host123.libpcap.test
aa:00:04:00:14:0e eth-noipv4-ipv6.host123.libpcap.test
aa:00:04:00:14:0e eth-ipv4-noipv6.host123.libpcap.test
aa:00:04:00:14:0e eth-ipv4-ipv6.host123.libpcap.test
aa:00:04:00:01:08 eth-ipv4x4-noipv6.host357.libpcap.test
aa:00:04:00:01:08 eth-noipv4-ipv6x2.host357.libpcap.test
aa:00:04:00:01:08 eth-ipv4x4-ipv6x2.host357.libpcap.test
";

const NETWORKS: &str = "\
net-10-0-0-0.libpcap.test 10.0.0.0
net-10-20-0-0.libpcap.test 10.20.0.0
net-10-20-30-0.libpcap.test 10.20.30.0
";

/// Lines libpcap 1.10.3 accepts that we do not, with the reason.
const UNSUPPORTED: &[(&str, &str)] = &[];

/// Lines libpcap 1.10.3 rejects that we accept, with the reason.
const OVERACCEPTED: &[(&str, &str)] = &[];

fn ci() -> bool {
    std::env::var_os("CI").is_some()
}

fn skip(why: &str) {
    assert!(!ci(), "{why} (CI is set, so this is a failure)");
    eprintln!("skipping: {why}");
}

fn shared(name: &str) -> Option<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/pcap-filter")
        .join(name);
    std::fs::read_to_string(p).ok()
}

fn system(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn tables() -> Tables {
    Tables::new()
        .with_hosts(&format!("{}\n{HOSTS}", system("/etc/hosts")))
        .with_ethers(ETHERS)
        .with_networks(&format!("{}\n{NETWORKS}", system("/etc/networks")))
        .with_services(&system("/etc/services"))
        .with_protocols(&system("/etc/protocols"))
}

/// Builds the oracle and a private /etc for it; `None` when impossible.
fn build_oracle() -> Option<(PathBuf, PathBuf)> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pcap-oracle");
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).ok()?;
    let bin = dir.join("oracle");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle.c");
    let ok = Command::new("cc")
        .arg("-O")
        .arg(&src)
        .arg("-o")
        .arg(&bin)
        .arg("-lpcap")
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    for f in [
        "nsswitch.conf",
        "services",
        "protocols",
        "ld.so.cache",
        "host.conf",
        "resolv.conf",
    ] {
        let _ = std::fs::copy(Path::new("/etc").join(f), etc.join(f));
    }
    std::fs::write(
        etc.join("hosts"),
        format!("{}\n{HOSTS}", system("/etc/hosts")),
    )
    .ok()?;
    std::fs::write(etc.join("ethers"), ETHERS).ok()?;
    std::fs::write(
        etc.join("networks"),
        format!("{}\n{NETWORKS}", system("/etc/networks")),
    )
    .ok()?;
    Some((bin, etc))
}

/// Asks libpcap about each `(dlt, netmask, expr)`: `Ok(())` or its error.
fn oracle(lines: &[(String, Option<u32>, String)]) -> Option<Vec<Result<(), String>>> {
    let (bin, etc) = build_oracle()?;
    let script = format!(
        "mount --bind '{}' /etc && exec '{}'",
        etc.display(),
        bin.display()
    );
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut input = String::new();
    for (dlt, mask, expr) in lines {
        let mask = mask.map_or("-".to_string(), |m| std::net::Ipv4Addr::from(m).to_string());
        input.push_str(&format!("{dlt}\t{mask}\t{expr}\n"));
    }
    let mut stdin = child.stdin.take()?;
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().ok()?;
    writer.join().ok()?.ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
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

fn read_tsv(name: &str) -> Option<Vec<(String, String)>> {
    let text = shared(name)?;
    Some(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('\t'))
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
    )
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
        skip("cannot build or run the libpcap oracle (needs cc, libpcap-dev, unshare as root)");
        return vec![];
    };
    let mut bad = vec![];
    let (mut both_ok, mut both_err) = (0, 0);
    for ((dlt, mask, expr), lib) in ours.iter().zip(&theirs) {
        let Some(lt) = link(dlt) else { continue };
        let res = parse_with(
            expr,
            Options {
                link: lt,
                resolver: &tables,
                netmask: *mask,
            },
        );
        match (&res, lib) {
            (Ok(_), Ok(())) => both_ok += 1,
            (Err(_), Err(_)) => both_err += 1,
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
        "{what}: {both_ok} accepted by both, {both_err} rejected by both, {} disagreements",
        bad.len()
    );
    bad
}

#[test]
fn accept_lines_match_libpcap() {
    let Some(lines) = read_tsv("accept.tsv") else {
        return skip("../shared/pcap-filter/accept.tsv is missing");
    };
    let bad = compare(&lines, "accept.tsv");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn reject_lines_match_libpcap() {
    let Some(lines) = read_tsv("reject.tsv") else {
        return skip("../shared/pcap-filter/reject.tsv is missing");
    };
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
