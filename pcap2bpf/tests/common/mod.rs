//! Shared test helpers: the `*.libpcap.test` name tables of libpcap's
//! TESTrun, building small C helpers against the system libpcap, running
//! them with those names in a private /etc, and reading captures.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use pcap2bpf::{LinkType, Tables};

/// The repository's root (the tests of several crates share this file).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|p| p.join("Cargo.lock").exists())
        .expect("the workspace root")
        .to_path_buf()
}

pub const HOSTS: &str = "\
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

pub const ETHERS: &str = "\
aa:00:04:00:14:0e eth-noipv4-noipv6.host123.libpcap.test
aa:00:04:00:14:0e eth-noipv4-ipv6.host123.libpcap.test
aa:00:04:00:14:0e eth-ipv4-noipv6.host123.libpcap.test
aa:00:04:00:14:0e eth-ipv4-ipv6.host123.libpcap.test
aa:00:04:00:01:08 eth-ipv4x4-noipv6.host357.libpcap.test
aa:00:04:00:01:08 eth-noipv4-ipv6x2.host357.libpcap.test
aa:00:04:00:01:08 eth-ipv4x4-ipv6x2.host357.libpcap.test
";

pub const NETWORKS: &str = "\
net-10-0-0-0.libpcap.test 10.0.0.0
net-10-20-0-0.libpcap.test 10.20.0.0
net-10-20-30-0.libpcap.test 10.20.30.0
";

/// `testdata/REL` in the repository (tcpdump's captures in `pcaps/`,
/// libpcap's test expressions in `pcap-filter/`). The data ships with the
/// repository: a missing file fails the test, naming the path.
pub fn testdata(rel: &str) -> PathBuf {
    let root = repo().join("testdata");
    let p = root.join(rel);
    assert!(
        p.exists(),
        "test data {} is missing (testdata/ ships with the repository: restore it from git)",
        p.display()
    );
    p
}

/// The text of `testdata/REL` (see [`testdata`]); fails the test when it
/// is missing or unreadable.
pub fn testdata_text(rel: &str) -> String {
    let p = testdata(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

pub fn system(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

pub fn tables() -> Tables {
    Tables::new()
        .with_hosts(&format!("{}\n{HOSTS}", system("/etc/hosts")))
        .with_ethers(ETHERS)
        .with_networks(&format!("{}\n{NETWORKS}", system("/etc/networks")))
        .with_services(&system("/etc/services"))
        .with_protocols(&system("/etc/protocols"))
}

/// Builds the oracle and a private /etc for it; `None` when impossible.
pub fn build_oracle() -> Option<(PathBuf, PathBuf)> {
    build_helper("oracle")
}

/// Builds `tests/NAME.c` against libpcap, and a private /etc with the
/// test names; `None` when impossible.
pub fn build_helper(name: &str) -> Option<(PathBuf, PathBuf)> {
    // Tests of one binary run in parallel threads: build each helper once,
    // so no test runs a binary that another is still writing.
    type Built = Vec<(String, Option<(PathBuf, PathBuf)>)>;
    static BUILT: std::sync::Mutex<Built> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, r)) = built.iter().find(|(n, _)| n == name) {
        return r.clone();
    }
    let r = build_helper_once(name);
    built.push((name.to_string(), r.clone()));
    r
}

fn build_helper_once(name: &str) -> Option<(PathBuf, PathBuf)> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pcap-oracle");
    let etc = dir.join("etc");
    std::fs::create_dir_all(&etc).ok()?;
    let bin = dir.join(name);
    let src = repo().join(format!("pcap2bpf/tests/{name}.c"));
    if !testbed::build_with_libpcap(&src, &bin) {
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

/// Runs `bin ARGS` with the private /etc bound over /etc, feeding `input`
/// on stdin; returns stdout.
pub fn run_with_etc(bin: &Path, etc: &Path, args: &[&str], input: String) -> Option<String> {
    let mut script = format!(
        "mount --bind '{}' /etc && exec '{}'",
        etc.display(),
        bin.display()
    );
    for a in args {
        script.push_str(&format!(" '{a}'"));
    }
    let mut child = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().ok()?;
    writer.join().ok()?.ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Our own expressions, for Ethernet captures.
pub const OUR_EXPRESSIONS: &[&str] = &[
    "tcp port 80",
    "tcp port 80 or tcp port 443",
    "port 53",
    "udp port 67 or udp port 68",
    "tcp dst port 22 and tcp src port 22",
    "portrange 1-1023",
    "tcp portrange 20-25 or udp portrange 53-53",
    "host 10.0.0.1",
    "src host 192.168.1.1 or dst host 10.0.0.1",
    "net 10.0.0.0/8",
    "not net 192.168.0.0/16",
    "dst net 224.0.0.0/4",
    "ip6 net fe80::/10",
    "ip6 host ff02::5",
    "ip6 and not ip6 host ::1",
    "ether broadcast",
    "ether multicast and not ether broadcast",
    "ip multicast",
    "ip6 multicast",
    "ip broadcast",
    "arp or rarp",
    "vlan",
    "vlan and ip",
    "vlan 10",
    "vlan and vlan",
    "vlan and arp",
    "vlan and tcp port 179",
    "mpls",
    "mpls and ip",
    "mpls 16 and mpls",
    "pppoes and ip",
    "pppoed",
    "icmp",
    "icmp6",
    "igmp",
    "sctp",
    "proto gre",
    "ip proto 47",
    "ip6 proto 58",
    "ip6 protochain 44",
    "ip6 protochain 6",
    "ip6 protochain 17",
    "protochain 58",
    "ip protochain 1",
    "ip[6:2] & 0x3fff != 0",
    "ip[100] = 1",
    "ip[0] & 0xf > 5",
    "tcp[tcpflags] & tcp-syn != 0",
    "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
    "tcp[13] = 18",
    "icmp[icmptype] = icmp-echo",
    "icmp6[icmp6type] = icmp6-echo",
    "ip[2:2] > 576",
    "len > 100",
    "len < 60",
    "less 64",
    "greater 1000",
    "ip[0] / 0 = 1",
    "ip[0] / (ip[1] & 0) = 1",
    "ip[0] % (ip[1] - ip[1]) = 1",
    "tcp[0:2] / 0 > 1 or tcp",
    "ip[8] << 30 = 0",
    "ip[8] << ip[9] > 1",
    "ip[8] >> (ip[9] + 32) = 0",
    "ether[0] & 1 = 1",
    "ether[12:2] = 0x0800",
    "ether[len - 1] = 0",
    "ether[len - 4:4] != 0",
    "ip[ip[0] & 0xf] = 0",
    "tcp[tcp[12] >> 4] = 0",
    "udp[8:4] = 0x12345678 or udp[0:2] = udp[2:2]",
    "ip and ip[1] = 0",
    "-ip[0] = 0",
    "ip[0] * 3 - 1 > ip[2:2] % 7",
    "ip[0] ^ ip[1] | 3 & 1 != 0",
    "ether host ff:ff:ff:ff:ff:ff",
    "ether src 00:00:00:00:00:00 or ether dst 01:00:5e:00:00:05",
    "llc",
    "llc u",
    "llc i",
    "stp",
    "iso",
    "ipx",
    "decnet",
    "atalk",
    "not ip and not ip6 and not arp",
    "(tcp or udp) and not (port 22 or port 53)",
    "ip and (tcp[0:2] > 1024 or udp[0:2] > 1024)",
    "ip6 and (tcp or udp)",
    "not tcp",
    "host 10.0.0.1 and not host 10.0.0.1",
    "tcp and not tcp",
    "ip or ip6",
    "geneve",
    "geneve 0xb",
    "geneve 7 and ip",
    "geneve and ip host 10.0.0.1",
    "geneve and ip host 30.0.0.1",
    "geneve and tcp port 22",
    "geneve and tcp[13] = 18",
    "geneve and icmp",
    "geneve and arp",
    "geneve and ip6",
    "geneve and vlan",
    "geneve and vlan 10 and tcp",
    "geneve and ether host fe:71:d8:83:72:4f",
    "geneve and ether broadcast",
    "geneve and ether multicast",
    "geneve and (ip or not ip)",
    "geneve and ip[0] * 0 = 0",
    "geneve and geneve",
    "not geneve",
    "udp port 53 or geneve",
    "vlan and geneve",
    "",
];

/// The link type of a capture's DLT number, and its name in
/// `accept.tsv`; `None` for link types we do not compile for.
pub fn link_of(dlt: u32) -> Option<(LinkType, &'static str)> {
    Some(match dlt {
        1 => (LinkType::En10mb, "EN10MB"),
        12 | 14 | 101 => (LinkType::Raw, "RAW"),
        113 => (LinkType::LinuxSll, "LINUX_SLL"),
        276 => (LinkType::LinuxSll2, "LINUX_SLL2"),
        0 => (LinkType::Null, "NULL"),
        108 => (LinkType::Loop, "LOOP"),
        _ => return None,
    })
}

/// The capture files the verdict tests run over: tcpdump's captures in
/// `testdata/pcaps/` and our generated samples, sorted.
pub fn capture_files() -> Vec<PathBuf> {
    let samples = repo().join("pcap2bpf/samples");
    let mut v: Vec<PathBuf> = [testdata("pcaps"), samples]
        .iter()
        .flat_map(|dir| {
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        })
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    v.sort();
    v
}

/// Whole packets (captured as long as on the wire) of the Ethernet
/// captures of [`capture_files`], every `step`-th of each file.
pub fn whole_ethernet_packets(step: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for path in capture_files() {
        let reader = pcapfile::PacketReader::open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if link_of(reader.link()).map(|l| l.0) != Some(LinkType::En10mb) {
            continue;
        }
        for p in reader.flatten().step_by(step) {
            if p.data.len() == p.wire_len as usize {
                out.push(p.data);
            }
        }
    }
    out
}

/// A captured packet as the runner takes it.
pub fn frame(p: &pcapfile::Packet) -> pcap2bpf::engine::Frame<'_> {
    pcap2bpf::engine::Frame::new(&p.data, p.wire_len)
}

/// Captured packets as the runner takes them.
pub fn frames(ps: &[pcapfile::Packet]) -> Vec<pcap2bpf::engine::Frame<'_>> {
    ps.iter().map(frame).collect()
}

/// Cut packets by link type name (the whole packet included), each
/// distinct (bytes, wire length) once, with the link type's number.
pub type Cuts = std::collections::BTreeMap<&'static str, (u32, Vec<pcapfile::Packet>)>;

/// The packets of [`capture_files`] by link type, each also cut at every
/// length below `max_cut` (wire length kept).
pub fn cut_packets(max_cut: usize) -> Cuts {
    let mut cut: Cuts = Cuts::new();
    let mut seen = std::collections::HashSet::new();
    for path in capture_files() {
        let cap = pcapfile::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let Some((_, name)) = link_of(cap.link) else {
            continue;
        };
        let packets = &mut cut.entry(name).or_insert((cap.link, Vec::new())).1;
        for p in &cap.packets {
            let lengths = (0..p.data.len().min(max_cut)).chain([p.data.len()]);
            for n in lengths {
                let data = p.data[..n].to_vec();
                if seen.insert((name, data.clone(), p.wire_len)) {
                    packets.push(pcapfile::Packet {
                        ts_sec: 0,
                        ts_nsec: 0,
                        data,
                        wire_len: p.wire_len,
                    });
                }
            }
        }
    }
    cut
}

/// The expressions of `accept.tsv` (its text) for the link type named
/// `name`, with ours on Ethernet, sorted, each once.
pub fn accepted_expressions(tsv: &str, name: &str) -> Vec<String> {
    let mut exprs: Vec<String> = tsv
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(l, _)| *l == name)
        .map(|(_, e)| e.to_string())
        .collect();
    if name == "EN10MB" {
        exprs.extend(OUR_EXPRESSIONS.iter().map(|s| s.to_string()));
    }
    exprs.sort();
    exprs.dedup();
    exprs
}
