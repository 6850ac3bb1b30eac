//! `nft2bpf compile --emit` (every format reads back) and `run -r` over
//! a capture the test writes: the verdicts nft's semantics give, in the
//! kernel (`BPF_PROG_TEST_RUN`) and in the interpreter.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pcapfile::Packet;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_nft2bpf");

fn nft2bpf(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("runs")
}

fn ok(args: &[&str]) -> Vec<u8> {
    let out = nft2bpf(args);
    assert!(
        out.status.success(),
        "nft2bpf {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A scratch directory, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("nft2bpf-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p.display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const RULESET: &str = "table netdev t {
	chain c {
		type filter hook ingress device \"eth9\" priority 0; policy drop;
		ether type arp accept
		udp dport 7 counter accept
		udp dport 9 drop
		tcp dport 22 jump ssh
	}
	chain ssh {
		ip saddr 10.0.0.1 accept
	}
}
";

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn udp(dport: u16) -> Vec<u8> {
    testbed::udp4_frame(
        MAC_A,
        MAC_B,
        [10, 0, 0, 1].into(),
        [10, 0, 0, 2].into(),
        1000,
        dport,
        b"x",
    )
    .unwrap()
}

fn tcp(src: [u8; 4], dport: u16) -> Vec<u8> {
    use testbed::frame::{Ipv4, Tcp};
    let seg = Tcp::new(4000, dport, 0x02).build(src.into(), [10, 0, 0, 2].into(), b"");
    let ip = Ipv4::new(src.into(), [10, 0, 0, 2].into(), 6).build(&seg);
    testbed::ethernet_frame(MAC_B, MAC_A, 0x0800, &ip)
}

/// The frames and what nft does with them (1 accept, 0 drop).
fn frames() -> Vec<(Vec<u8>, u8)> {
    let arp = testbed::frame::arp(1, MAC_A, [10, 0, 0, 1].into(), [0; 6], [10, 0, 0, 2].into());
    vec![
        (udp(7), 1),                                              // rule 1
        (udp(9), 0),                                              // rule 2
        (udp(53), 0),                                             // policy
        (tcp([10, 0, 0, 1], 22), 1),                              // ssh rule 0
        (tcp([10, 0, 0, 3], 22), 0),                              // ssh returns; policy
        (testbed::ethernet_frame(MAC_B, MAC_A, 0x0806, &arp), 1), // rule 0
        (vec![0xff; 10], 1),                                      // too short for the hook
    ]
}

fn capture(dir: &Scratch) -> String {
    capture_of(dir, frames().into_iter().map(|(data, _)| data).collect())
}

/// A capture of `frames` in `dir`.
fn capture_of(dir: &Scratch, frames: Vec<Vec<u8>>) -> String {
    let packets: Vec<Packet> = frames
        .into_iter()
        .map(|data| Packet {
            ts_sec: 1,
            ts_nsec: 0,
            wire_len: data.len() as u32,
            data,
        })
        .collect();
    let mut bytes = Vec::new();
    pcapfile::write_pcap(&mut bytes, 1, 65535, &packets).unwrap();
    dir.file("frames.pcap", &bytes)
}

#[test]
fn run_gives_the_verdicts_of_nft() {
    let dir = Scratch::new("run");
    let fw = dir.file("fw.nft", RULESET.as_bytes());
    let cap = capture(&dir);
    let want: String = frames().iter().map(|(_, v)| format!("{v}\n")).collect();
    // The kernel when this process may load programs (else the command
    // falls back to the interpreter, and says so), and the interpreter.
    let kernel = nft2bpf(&["run", "-r", &cap, &fw, "--verdicts"]);
    assert!(
        kernel.status.success(),
        "{}",
        String::from_utf8_lossy(&kernel.stderr)
    );
    assert_eq!(String::from_utf8(kernel.stdout).unwrap(), want);
    let interp = ok(&["run", "-r", &cap, &fw, "--verdicts", "--interpreter"]);
    assert_eq!(String::from_utf8(interp).unwrap(), want);
    // tcx sees the same.
    let tcx = ok(&[
        "run",
        "-r",
        &cap,
        &fw,
        "--verdicts",
        "--hook",
        "tcx-ingress",
    ]);
    assert_eq!(String::from_utf8(tcx).unwrap(), want);

    // Which rule decided.
    let text = String::from_utf8(ok(&["run", "-r", &cap, &fw])).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "1: accept (t/c rule 1: udp dport 7 counter accept)"
    );
    assert_eq!(lines[1], "2: drop (t/c rule 2: udp dport 9 drop)");
    assert_eq!(lines[2], "3: drop (t/c policy)");
    assert_eq!(
        lines[3],
        "4: accept (t/ssh rule 0: ip saddr 10.0.0.1 accept)"
    );
    assert_eq!(lines[6], "7: accept (the hook never sees it)");
    let json = String::from_utf8(ok(&["run", "-r", &cap, &fw, "-j"])).unwrap();
    let first: Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["verdict"], "accept");
    assert_eq!(first["chain"], "c");
    assert_eq!(first["rule"], 1);
}

/// A run of rules of one shape is one classifier lookup: `run` still
/// names the rule that decided, in the kernel and in the interpreter,
/// the first of two with the same key.
#[test]
fn run_names_the_rule_a_classifier_found() {
    let dir = Scratch::new("classified");
    let mut rules: Vec<String> = (1..=20u32)
        .map(|i| {
            let v = if i.is_multiple_of(2) {
                "drop"
            } else {
                "accept"
            };
            format!("ip saddr 10.0.0.{i} tcp dport 22 counter {v}")
        })
        .collect();
    // The same key again, the other verdict: never decides.
    rules.push("ip saddr 10.0.0.3 tcp dport 22 counter drop".into());
    rules.insert(0, "ether type arp drop".into());
    let frames = vec![
        tcp([10, 0, 0, 3], 22),
        tcp([10, 0, 0, 12], 22),
        tcp([10, 0, 0, 12], 23),
    ];
    let want = "1: accept (t/c rule 3: ip saddr 10.0.0.3 tcp dport 22 counter accept)\n\
                2: drop (t/c rule 12: ip saddr 10.0.0.12 tcp dport 22 counter drop)\n\
                3: accept (t/c policy)\n";
    run_in_both_engines(&dir, &rules, frames, want);
}

/// `run -r` of `frames` through a chain of `rules` (on eth9, policy
/// accept) prints `want`, in the kernel and in the interpreter.
fn run_in_both_engines(dir: &Scratch, rules: &[impl AsRef<str>], frames: Vec<Vec<u8>>, want: &str) {
    let rules: Vec<&str> = rules.iter().map(AsRef::as_ref).collect();
    let fw = format!(
        "table netdev t {{\n\tchain c {{\n\t\ttype filter hook ingress device \"eth9\" \
         priority 0; policy accept;\n\t\t{}\n\t}}\n}}\n",
        rules.join("\n\t\t")
    );
    let fw = dir.file("fw.nft", fw.as_bytes());
    let cap = capture_of(dir, frames);
    for extra in [None, Some("--interpreter")] {
        let mut args = vec!["run", "-r", &cap, &fw];
        args.extend(extra);
        let text = String::from_utf8(ok(&args)).unwrap();
        assert_eq!(text, want, "{extra:?}");
    }
}

/// A run of prefix rules is one trie lookup: `run` names the first rule
/// that matches (a /8 before a /32 of the same address), not the
/// longest prefix, in the kernel and in the interpreter.
#[test]
fn run_names_the_first_rule_a_trie_classifier_found() {
    let dir = Scratch::new("trie");
    let rules = [
        "ip saddr 192.168.0.0/16 counter accept",
        "ip saddr 10.0.0.0/8 counter drop",
        "ip saddr 10.0.0.1 counter accept",
        "ip saddr 1.0.0.0/8 counter drop",
        "ip saddr 10.0.0.0/24 counter accept",
        "ip saddr 172.16.0.0/12 counter drop",
        "ip saddr 10.0.0.12 counter accept",
        "ip saddr 11.0.0.0/8 counter accept",
    ];
    let frames = vec![
        tcp([10, 0, 0, 1], 22),
        tcp([11, 0, 0, 12], 22),
        tcp([12, 0, 0, 12], 23),
    ];
    let want = "1: drop (t/c rule 1: ip saddr 10.0.0.0/8 counter drop)\n\
                2: accept (t/c rule 7: ip saddr 11.0.0.0/8 counter accept)\n\
                3: accept (t/c policy)\n";
    run_in_both_engines(&dir, &rules, frames, want);
}

#[test]
fn run_refuses_what_it_cannot_run() {
    let dir = Scratch::new("run-bad");
    let fw = dir.file("fw.nft", RULESET.as_bytes());
    let mut raw = Vec::new();
    pcapfile::write_pcap(&mut raw, 101, 65535, &[]).unwrap();
    let raw = dir.file("raw.pcap", &raw);
    let out = nft2bpf(&["run", "-r", &raw, &fw]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only Ethernet captures"));
    let out = nft2bpf(&["run", "-r", "/nonexistent.pcap", &fw]);
    assert_eq!(out.status.code(), Some(1));
    let bad = dir.file(
        "bad.nft",
        b"table netdev t {\n\tchain c {\n\t\tudp dport 7 acept\n\t}\n}\n",
    );
    let out = nft2bpf(&["run", "-r", &raw, &bad]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.nft:3:"));
}

#[test]
fn compile_emits_every_format() {
    let dir = Scratch::new("compile");
    let fw = dir.file("fw.nft", RULESET.as_bytes());
    let ir = String::from_utf8(ok(&["compile", &fw, "--emit", "ir"])).unwrap();
    pktmatch::ir::Ir::from_text(&ir).unwrap_or_else(|e| panic!("{e}\n{ir}"));
    let json: Value = serde_json::from_slice(&ok(&["compile", &fw, "--emit", "json"])).unwrap();
    assert_eq!(json["hook"], "xdp");
    assert_eq!(json["device"], "eth9");
    assert!(json["insns"].as_array().unwrap().len() > 10);
    assert_eq!(json["decisions"][0]["outcome"], "accept");
    assert_eq!(json["counters"][0]["pos"]["rule"], 1);
    let asm = String::from_utf8(ok(&[
        "compile",
        &fw,
        "--emit",
        "asm",
        "--hook",
        "tcx-ingress",
    ]))
    .unwrap();
    assert!(asm.contains("exit"), "{asm}");
    let elf = dir.0.join("fw.o");
    ok(&["compile", &fw, "--emit", "elf", "-o", elf.to_str().unwrap()]);
    assert!(std::fs::read(&elf).unwrap().starts_with(b"\x7fELF"));
    // No egress chain, no program.
    let out = nft2bpf(&["compile", &fw, "--emit", "ir", "--hook", "tcx-egress"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no egress chain"));
}

#[test]
fn check_says_the_program_sizes() {
    let dir = Scratch::new("check");
    let fw = dir.file("fw.nft", RULESET.as_bytes());
    let out = String::from_utf8(ok(&["check", &fw])).unwrap();
    let line = out
        .lines()
        .find(|l| l.starts_with("program xdp on eth9: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.ends_with(" maps"), "{line}");
    assert!(
        out.ends_with("1 tables, 2 chains (1 base), 5 rules, 0 named sets\n"),
        "{out}"
    );
    let _ = Path::new(&fw);
}
