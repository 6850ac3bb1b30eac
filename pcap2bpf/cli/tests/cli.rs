//! The `pcap2bpf` command: compile output formats, errors with carets,
//! runs over captures (every engine, against tcpdump), and attach /
//! status / detach on a veth pair in a namespace of the test's own.

mod common;

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{PinCleanup, stderr, stdout};

const BIN: &str = env!("CARGO_BIN_EXE_pcap2bpf");

fn sample(name: &str) -> String {
    format!("{}/pcap2bpf/samples/{name}", common::repo().display())
}

fn pcap2bpf(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("pcap2bpf runs")
}

/// Writes `source` to `dir/f.c` and asserts that `cc -c` compiles it.
fn assert_cc_compiles(dir: &Path, source: &str) {
    std::fs::write(dir.join("f.c"), source).unwrap();
    let cc = Command::new("cc")
        .arg("-c")
        .arg(dir.join("f.c"))
        .arg("-o")
        .arg(dir.join("f.o"))
        .output()
        .expect("cc runs");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
}

/// Runs pcap2bpf in the network namespace `ns`: a child spawned from a
/// thread inside the namespace is in it too (the mount namespace, and so
/// bpffs, is the host's).
fn pcap2bpf_in(ns: &testbed::Netns, args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    ns.run(move || Command::new(BIN).args(&args).output().expect("runs"))
        .unwrap()
}

/// The line of `pcap2bpf status` output `o` about filter `name`.
fn status_line(o: &Output, name: &str) -> String {
    stdout(o)
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{name} missing from status:\n{}", stdout(o)))
        .to_string()
}

/// Runs the shell `script` (`$BIN` is pcap2bpf) in mount and network
/// namespaces of its own, with a fresh bpffs on /sys/fs/bpf: what it
/// attaches and pins does not meet other tests' filters. Fails the test if
/// the script fails.
fn in_own_namespaces(script: &str) -> Output {
    let script = format!("set -e\nmount -t bpf bpf /sys/fs/bpf\n{script}");
    let o = Command::new("unshare")
        .args([
            "--mount",
            "--net",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ])
        .env("BIN", BIN)
        .output()
        .expect("unshare runs");
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    o
}

#[test]
fn compile_errors_point_at_the_fault_and_exit_1() {
    let o = pcap2bpf(&["compile", "tcp", "port", "70000"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("tcp port 70000\n"), "{err}");
    assert!(
        err.contains("\npcap2bpf:            ^^^^^"),
        "caret under 70000:\n{err}"
    );
    assert!(stdout(&o).is_empty());
    // libpcap rejects it too: a syntax error, not a panic.
    let o = pcap2bpf(&["compile", "host", "and"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("syntax error"), "{}", stderr(&o));
}

#[test]
fn compile_emits_every_format() {
    let expr = ["tcp", "port", "80"];
    let run = |fmt: &str| {
        let mut args = vec!["compile", "--emit", fmt];
        args.extend(expr);
        let o = pcap2bpf(&args);
        assert!(o.status.success(), "{fmt}: {}", stderr(&o));
        o.stdout
    };
    let bytes = run("bytes");
    assert!(!bytes.is_empty() && bytes.len() % 8 == 0);
    let asm = String::from_utf8(run("asm")).unwrap();
    assert!(asm.starts_with("pcap_filter:\n"), "{asm}");
    assert_eq!(
        asm.lines()
            .filter(|l| l.contains(": ") && l.trim_start().starts_with(char::is_numeric))
            .count()
            + asm.matches(" ll").count(),
        bytes.len() / 8,
        "one listing line per slot (16-byte loads count twice)"
    );
    let json = String::from_utf8(run("json")).unwrap();
    assert!(json.starts_with("{\"expression\":\"tcp port 80\",\"insns\":[{\"code\":"));
    assert_eq!(json.matches("\"code\":").count(), bytes.len() / 8);
    let c = String::from_utf8(run("c")).unwrap();
    assert!(
        c.contains(&format!("struct bpf_insn pcap_filter[{}]", bytes.len() / 8)),
        "{c}"
    );
    let rust = String::from_utf8(run("rust")).unwrap();
    assert!(
        rust.contains(&format!("[[u8; 8]; {}]", bytes.len() / 8)),
        "{rust}"
    );
    let elf = run("elf");
    assert_eq!(&elf[..4], b"\x7fELF");
    // C and Rust arrays compile in their languages.
    let dir = std::env::temp_dir().join(format!("pcap2bpf-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert_cc_compiles(
        &dir,
        &format!("{c}\nint main(void) {{ return pcap_filter[0].code == 0; }}\n"),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--xdp-frags` builds the XDP program with fragment support: the whole
/// length from `bpf_xdp_get_buff_len`, and libbpf's section name in ELF.
#[test]
fn compile_with_fragment_support() {
    let o = pcap2bpf(&["compile", "--xdp-frags", "tcp", "port", "80"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("bpf_xdp_get_buff_len"),
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).contains("bpf_xdp_load_bytes"), "{}", stdout(&o));
    let elf = pcap2bpf(&["compile", "--xdp-frags", "--emit", "elf", "tcp"]).stdout;
    let has = |name: &[u8]| elf.windows(name.len()).any(|w| w == name);
    assert!(has(b"xdp.frags\0"), "section xdp.frags");
    let plain = pcap2bpf(&["compile", "--emit", "elf", "tcp"]).stdout;
    assert!(!plain.windows(9).any(|w| w == b"xdp.frags"));
    // Raw instructions say that their loader must pass the flag.
    let json = pcap2bpf(&["compile", "--xdp-frags", "--emit", "json", "tcp"]);
    assert!(
        stdout(&json).contains("\"xdp_frags\":true"),
        "{}",
        stdout(&json)
    );
    let json = pcap2bpf(&["compile", "--emit", "json", "tcp"]);
    assert!(
        stdout(&json).contains("\"xdp_frags\":false"),
        "{}",
        stdout(&json)
    );
    for format in ["c", "rust"] {
        let o = pcap2bpf(&["compile", "--xdp-frags", "--emit", format, "tcp"]);
        assert!(stdout(&o).contains("BPF_F_XDP_HAS_FRAGS"), "{}", stdout(&o));
    }
    let o = pcap2bpf(&["compile", "--xdp-frags", "--target", "tc", "tcp"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("--xdp-frags is for --target xdp"),
        "{}",
        stderr(&o)
    );
}

/// `--target probe`: the filter as a function over bytes in kernel
/// memory (probe reads), called by a raw tracepoint program; no
/// metadata, as for a capture file.
#[test]
fn compile_for_the_probe_target() {
    let o = pcap2bpf(&["compile", "--target", "probe", "udp"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listing = stdout(&o);
    for says in [
        "pcap_filter:",
        "call",
        "pcap_filter_fn:",
        "<bpf_probe_read_kernel>",
    ] {
        assert!(listing.contains(says), "{says}: {listing}");
    }
    let o = pcap2bpf(&["compile", "--target", "probe", "inbound"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("'inbound' not supported"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn compile_stats_is_one_json_line() {
    let o = pcap2bpf(&["compile", "--stats", "--repeat", "5", "udp", "port", "53"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.lines().count(), 1, "{out}");
    for key in ["\"insns\":", "\"compile_ns\":", "\"repeat\":5"] {
        assert!(out.contains(key), "{key} missing: {out}");
    }
}

/// As with tcpdump, options may follow the expression's words; `-` and
/// negative numbers stay words, and after `--` everything is.
#[test]
fn options_may_follow_the_expression() {
    let before = pcap2bpf(&[
        "compile", "--target", "socket", "--stats", "tcp", "port", "80",
    ]);
    let after = pcap2bpf(&[
        "compile", "tcp", "port", "80", "--target", "socket", "--stats",
    ]);
    assert!(after.status.success(), "{}", stderr(&after));
    let insns = |o: &Output| {
        let out = stdout(o);
        let at = out.find("\"insns\":").expect("insns") + 8;
        out[at..].split(',').next().unwrap().to_string()
    };
    assert_eq!(insns(&before), insns(&after));
    assert!(stdout(&after).contains("\"expression\":\"tcp port 80\""));

    let o = pcap2bpf(&["compile", "--stats", "ip[0]", "-", "1", ">", "-1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"expression\":\"ip[0] - 1 > -1\""));

    // After `--`, an option's spelling is a word of the expression (and
    // a syntax error here).
    let o = pcap2bpf(&["compile", "--stats", "--", "ip", "--stats"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("ip --stats"), "{}", stderr(&o));
}
#[test]
fn expression_from_a_file() {
    let dir = std::env::temp_dir().join(format!("pcap2bpf-cli-f-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("filter");
    std::fs::write(&f, "tcp\n  and port 80\n").unwrap();
    let o = pcap2bpf(&[
        "run",
        "-r",
        &sample("ethernet.pcap"),
        "--count",
        "-F",
        f.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o2 = pcap2bpf(&[
        "run",
        "-r",
        &sample("ethernet.pcap"),
        "--count",
        "tcp",
        "and",
        "port",
        "80",
    ]);
    assert_eq!(stdout(&o), stdout(&o2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// tcpdump's count for `expr` on `file` (`--count` prints "N packets";
/// lines of output are no count: some packets take several), or `None`
/// when libpcap refuses the expression.
fn tcpdump_count(file: &str, expr: &str) -> Option<usize> {
    let o = Command::new("tcpdump")
        .args(["--count", "-r", file, expr])
        .output()
        .ok()?;
    let out = String::from_utf8_lossy(&o.stdout);
    o.status
        .success()
        .then(|| out.split_whitespace().next()?.parse().ok())
        .flatten()
}

#[test]
fn run_counts_agree_with_tcpdump_on_every_engine() {
    if Command::new("tcpdump").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tcpdump is needed under CI"
        );
        eprintln!("skipping: no tcpdump");
        return;
    }
    let engines: &[&str] = if testbed::bpf_privileged("the kernel engine") {
        &["compiled", "kernel", "interp"]
    } else {
        &["compiled", "interp"]
    };
    for file in ["ethernet.pcap", "raw.pcap", "linux-sll.pcap"] {
        let file = sample(file);
        for expr in [
            "tcp port 80",
            "ip6",
            "udp and not port 53",
            "vlan",
            "ip[6:2] & 0x3fff != 0",
            "greater 100",
        ] {
            let want = tcpdump_count(&file, expr);
            let mut verdicts = Vec::new();
            for engine in engines {
                let o = pcap2bpf(&["run", "--engine", engine, "-r", &file, "--verdicts", expr]);
                if !o.status.success() {
                    // Only where libpcap refuses it too (e.g. vlan on RAW).
                    assert_eq!(want, None, "{expr} on {file}: {}", stderr(&o));
                    continue;
                }
                let v = stdout(&o);
                assert!(v.lines().all(|l| l == "0" || l == "1"), "{v}");
                assert_eq!(
                    Some(v.matches('1').count()),
                    want,
                    "{engine}: {expr} on {file}"
                );
                verdicts.push(v);
            }
            verdicts.dedup();
            assert!(
                verdicts.len() <= 1,
                "the engines disagree on {expr} over {file}"
            );
        }
    }
}

/// `-r -` reads the capture from standard input, as tcpdump does; a
/// capture cut inside a record is reported after the packets before the
/// cut, and the run fails.
/// `--vlan-any` and `--ipv6-ext-headers` count what tcpdump counts for
/// the equivalent expressions (see the README), and change the counts of
/// our samples (tagged frames, IPv6 extension headers).
#[test]
fn run_modes_count_like_tcpdump_with_the_equivalent_expression() {
    if Command::new("tcpdump").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "tcpdump is needed under CI"
        );
        eprintln!("skipping: no tcpdump");
        return;
    }
    let file = sample("ethernet.pcap");
    let count = |flags: &[&str], expr: &str| -> usize {
        let mut args = vec!["run", "--count", "--engine", "interp", "-r", &file];
        args.extend_from_slice(flags);
        args.push(expr);
        let o = pcap2bpf(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).trim().parse().expect("a count")
    };
    for (flags, expr, equivalent) in [
        (
            &["--vlan-any"][..],
            "tcp",
            "tcp or (vlan and (tcp or (vlan and tcp)))",
        ),
        (
            &["--vlan-any"],
            "host 10.0.0.1",
            "host 10.0.0.1 or (vlan and (host 10.0.0.1 or (vlan and host 10.0.0.1)))",
        ),
        (
            &["--ipv6-ext-headers"],
            "udp",
            "ip proto 17 or ip6 protochain 17",
        ),
        (&["--ipv6-ext-headers"], "icmp6", "ip6 protochain 58"),
    ] {
        let want = tcpdump_count(&file, equivalent).expect("tcpdump counts");
        assert_eq!(
            count(flags, expr),
            want,
            "{flags:?} {expr:?} ~ {equivalent:?}"
        );
        assert_ne!(
            count(&[], expr),
            want,
            "{expr:?}: the sample shows the mode"
        );
    }
}

#[test]
fn run_reads_standard_input_and_reports_a_cut_capture_after_its_packets() {
    use std::io::Write;
    let whole = std::fs::read(sample("ethernet.pcap")).expect("sample");
    // The pcap header, then records of 16 bytes + caplen.
    let mut ends = Vec::new();
    let mut at = 24;
    while at + 16 <= whole.len() {
        let caplen = u32::from_le_bytes(whole[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
        ends.push(at);
    }
    assert_eq!(ends.last(), Some(&whole.len()), "the sample parses");
    let run_with = |input: &[u8], output: &str| {
        let mut child = Command::new(BIN)
            .args(["run", "--engine", "interp", output, "-r", "-", "ip"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("runs");
        // A run that fails early stops reading: the asserts below say why.
        let _ = child.stdin.take().unwrap().write_all(input);
        child.wait_with_output().unwrap()
    };
    let run = |input: &[u8]| run_with(input, "--verdicts");
    let o = run(&whole);
    assert!(o.status.success(), "{}", stderr(&o));
    let file = pcap2bpf(&[
        "run",
        "--engine",
        "interp",
        "--verdicts",
        "-r",
        &sample("ethernet.pcap"),
        "ip",
    ]);
    assert_eq!(stdout(&o), stdout(&file));
    assert_eq!(stdout(&o).lines().count(), ends.len());

    // Cut 10 bytes into the eleventh record.
    let o = run(&whole[..ends[9] + 10]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stdout(&o),
        stdout(&file)
            .lines()
            .take(10)
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );
    assert!(
        stderr(&o).contains("standard input: truncated file"),
        "{}",
        stderr(&o)
    );
    // The count of those ten, as tcpdump --count prints it before the error.
    let o = run_with(&whole[..ends[9] + 10], "--count");
    assert_eq!(o.status.code(), Some(1));
    let want = stdout(&file).lines().take(10).filter(|l| *l == "1").count();
    assert_eq!(stdout(&o), format!("{want}\n"));
}

#[test]
fn run_prints_a_line_per_match() {
    let o = pcap2bpf(&[
        "run",
        "--engine",
        "interp",
        "-r",
        &sample("ethernet.pcap"),
        "arp",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.is_empty());
    assert!(
        out.lines()
            .all(|l| l.contains(" ARP, ") || l.contains("RARP")),
        "{out}"
    );
}

#[test]
fn attach_status_detach_on_a_veth() {
    if !testbed::privileged("attach test") || !testbed::bpf_privileged("attach test") {
        return;
    }
    let ns = testbed::Netns::new().unwrap();
    let pair = ns.veth_pair("c2a", "c2b").unwrap();
    let name = format!("t{}", std::process::id() % 100_000_000);
    let cli = |args: &[&str]| pcap2bpf_in(&ns, args);
    let _cleanup = PinCleanup(name.clone());

    // A failed attach leaves nothing behind.
    let o = cli(&["attach", "-i", "nosuchdev0", "--name", &name, "udp"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nosuchdev0"), "{}", stderr(&o));
    assert!(!Path::new("/sys/fs/bpf/pcap2bpf").join(&name).exists());

    let o = cli(&[
        "attach", "-i", "c2b", "--name", &name, "--action", "drop", "udp", "port", "9",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The same name again is refused, and changes nothing.
    let o = cli(&["attach", "-i", "c2b", "--name", &name, "udp"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already attached"), "{}", stderr(&o));

    let marker = testbed::Marker::new().unwrap();
    let frame = |port: u16| {
        testbed::udp4_frame(
            pair.a.mac,
            pair.b.mac,
            Ipv4Addr::new(10, 9, 0, 1),
            Ipv4Addr::new(10, 9, 0, 2),
            4000,
            port,
            marker.as_bytes(),
        )
        .unwrap()
    };
    let frames = vec![frame(9), frame(9), frame(10)];
    let got = ns
        .run(|| {
            testbed::send_and_collect(&pair.a, &pair.b, &frames, &marker, Duration::from_secs(2))
        })
        .unwrap()
        .unwrap();
    // XDP on c2b drops what it matches before the packet socket sees it.
    assert_eq!(got.len(), 1, "only the port-10 frame passes");
    assert_eq!(&got[0][36..38], &10u16.to_be_bytes());

    let line = status_line(&cli(&["status"]), &name);
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&cols[1..4], &["c2b", "xdp", "drop"], "{line}");
    assert_eq!(cols[4], "2", "matched: {line}");
    assert!(cols[5].parse::<u64>().unwrap() >= 3, "seen: {line}");
    assert!(line.ends_with("udp port 9"), "{line}");

    let o = cli(&["detach", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!Path::new("/sys/fs/bpf/pcap2bpf").join(&name).exists());
    let got = ns
        .run(|| {
            testbed::send_and_collect(&pair.a, &pair.b, &frames, &marker, Duration::from_secs(2))
        })
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 3, "after detach every frame passes");
    let o = cli(&["detach", &name]);
    assert_eq!(o.status.code(), Some(1), "detaching twice is an error");
}

/// On a device without a link layer (tun, WireGuard) XDP and tc see the IP
/// header first, as libpcap's raw-IP captures do: `attach` compiles for
/// that. Packets written into a tun device are received on it.
#[test]
fn filters_on_an_ip_only_device_start_at_the_ip_header() {
    if !testbed::privileged("tun test") || !testbed::bpf_privileged("tun test") {
        return;
    }
    let ns = testbed::Netns::new().unwrap();
    let tun = ns
        .run(|| testbed::TunDevice::create("p2btun0"))
        .unwrap()
        .expect("creates a tun device");
    ns.ip(&["link", "set", "p2btun0", "up"]).unwrap();
    let id = std::process::id() % 10_000_000;
    // Names of their own: the attach test names its filter t{pid}.
    let (xdp, tcx) = (format!("tunx{id}"), format!("tunt{id}"));
    let _cleanup = (PinCleanup(xdp.clone()), PinCleanup(tcx.clone()));
    let cli = |args: &[&str]| pcap2bpf_in(&ns, args);
    for (name, hook, expr) in [
        (&xdp, "xdp", "udp and dst host 10.7.0.2"),
        (&tcx, "tcx-ingress", "ip[9] = 17 and dst port 9"),
    ] {
        let o = cli(&[
            "attach", "-i", "p2btun0", "--hook", hook, "--action", "count", "--name", name, expr,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let packet = |dst: [u8; 4], port: u16| {
        let frame = testbed::udp4_frame(
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            Ipv4Addr::new(10, 7, 0, 1),
            Ipv4Addr::from(dst),
            4000,
            port,
            b"pcap2bpf",
        )
        .unwrap();
        frame[14..].to_vec()
    };
    for p in [
        packet([10, 7, 0, 2], 9),
        packet([10, 7, 0, 2], 10),
        packet([10, 7, 0, 3], 9),
    ] {
        tun.send(&p).expect("the tun device takes the packet");
    }
    // tc runs when the backlog is processed, soon after the write.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let counts = loop {
        let o = cli(&["status"]);
        let counts: Vec<(String, String)> = [&xdp, &tcx]
            .iter()
            .map(|n| {
                let line = status_line(&o, n);
                let cols: Vec<&str> = line.split_whitespace().collect();
                (cols[4].to_string(), cols[5].to_string())
            })
            .collect();
        if counts.iter().all(|(_, seen)| seen == "3") || std::time::Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let pair = |m: &str, s: &str| (m.to_string(), s.to_string());
    assert_eq!(
        counts,
        [pair("2", "3"), pair("2", "3")],
        "(matched, seen) of xdp, tcx"
    );
    for name in [&xdp, &tcx] {
        assert!(cli(&["detach", name]).status.success());
    }
}

/// Attaching and detaching leave no pin behind: the last detach leaves
/// pcap2bpf's own directory empty (it is kept, root's and 0700, so that
/// nobody else can take the name meanwhile). The commands run in mount and network
/// namespaces of their own (a fresh bpffs, only `lo`), so the check does not
/// depend on what other tests or users have pinned.
#[test]
fn detaching_the_last_filter_leaves_no_pins() {
    if !testbed::privileged("pin test") || !testbed::bpf_privileged("pin test") {
        return;
    }
    let o = in_own_namespaces(
        r#"
        ip link set lo up
        "$BIN" attach -i lo --name a udp
        "$BIN" attach -i lo --hook tcx-ingress --name b tcp
        if "$BIN" attach -i lo --hook tcx-ingress --before nothere --name c icmp; then
            exit 3
        fi
        echo "pinned: $(ls /sys/fs/bpf/pcap2bpf | tr '\n' ' ')"
        "$BIN" detach a
        echo "left: $(ls /sys/fs/bpf/pcap2bpf | tr '\n' ' ')"
        "$BIN" detach b
        echo "root after the last detach: $(ls -A /sys/fs/bpf/pcap2bpf | wc -l) entries, mode $(stat -c %a /sys/fs/bpf/pcap2bpf)"
        if "$BIN" attach -i nosuchdev0 --name d udp; then
            exit 4
        fi
        echo "root after a failed attach: $(ls -A /sys/fs/bpf/pcap2bpf | wc -l) entries, mode $(stat -c %a /sys/fs/bpf/pcap2bpf)"
        # A filter whose device is deleted says so, and detaches cleanly.
        ip link add v0 type veth peer name v1
        "$BIN" attach -i v0 --hook tcx-ingress --name e udp
        ip link del v0
        echo "status: $("$BIN" status | grep '^e ' | awk '{print $2}')"
        "$BIN" detach e
        echo "root after detaching it: $(ls -A /sys/fs/bpf/pcap2bpf | wc -l) entries, mode $(stat -c %a /sys/fs/bpf/pcap2bpf)"
    "#,
    );
    let out = stdout(&o);
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with("attached") && !l.starts_with("detached"))
        .collect();
    assert_eq!(
        lines,
        [
            "pinned: a b ",
            "left: b ",
            "root after the last detach: 0 entries, mode 700",
            "root after a failed attach: 0 entries, mode 700",
            "status: v0(gone)",
            "root after detaching it: 0 entries, mode 700",
        ],
        "{out}"
    );
}

/// At a jumbo MTU a veth refuses XDP programs that do not read fragments:
/// `attach` then loads the filter with fragment support, and it reads
/// whole 8000-byte frames, past their first buffer, on real traffic.
#[test]
fn xdp_at_a_jumbo_mtu_reads_whole_frames() {
    if !testbed::privileged("jumbo MTU test") || !testbed::bpf_privileged("jumbo MTU test") {
        return;
    }
    let ns = testbed::Netns::new().unwrap();
    let pair = ns.veth_pair("j2a", "j2b").unwrap();
    for dev in ["j2a", "j2b"] {
        ns.ip(&["link", "set", "dev", dev, "mtu", "9000"]).unwrap();
    }
    let name = format!("jumbo{}", std::process::id() % 10_000_000);
    let _cleanup = PinCleanup(name.clone());
    let cli = |args: &[&str]| pcap2bpf_in(&ns, args);
    let o = cli(&[
        "attach",
        "-i",
        "j2b",
        "--action",
        "count",
        "--name",
        &name,
        "udp",
        "and",
        "ether[7000]",
        "=",
        "0x42",
        "and",
        "len",
        ">",
        "7999",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let marker = testbed::Marker::new().unwrap();
    // Ethernet, IPv4 and UDP headers take 42 bytes; byte 7000 of the frame
    // is byte 6958 of the payload.
    let frame = |len: usize, mark: u8| {
        let mut payload = marker.as_bytes().to_vec();
        payload.resize(len - 42, 0);
        if len > 7000 {
            payload[7000 - 42] = mark;
        }
        testbed::udp4_frame(
            pair.a.mac,
            pair.b.mac,
            Ipv4Addr::new(10, 9, 0, 1),
            Ipv4Addr::new(10, 9, 0, 2),
            4000,
            9,
            &payload,
        )
        .unwrap()
    };
    let frames = vec![
        frame(8000, 0x42),
        frame(8000, 0),
        frame(8000, 0x42),
        frame(7500, 0x42),
        frame(100, 0),
    ];
    let got = ns
        .run(|| {
            testbed::send_and_collect(&pair.a, &pair.b, &frames, &marker, Duration::from_secs(2))
        })
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), 5, "the count action passes every frame");
    let line = status_line(&cli(&["status"]), &name);
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[4], "2", "matched: {line}");
    assert!(cols[5].parse::<u64>().unwrap() >= 5, "seen: {line}");
    assert!(cli(&["detach", &name]).status.success());
}

/// TCP puts its payload in page fragments, so at tcx ingress the skb's
/// linear data ends with the TCP header. A filter on the payload must
/// still see it, as tcpdump does on the same interface.
#[test]
fn tcx_filter_reads_payload_past_the_linear_head() {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    if !testbed::privileged("tcx payload test") || !testbed::bpf_privileged("tcx payload test") {
        return;
    }
    let client = testbed::Netns::new().unwrap();
    let server = testbed::Netns::new().unwrap();
    client.veth_pair_to("pl0", &server, "pl1").unwrap();
    client
        .ip(&["addr", "add", "10.11.0.1/24", "dev", "pl0"])
        .unwrap();
    server
        .ip(&["addr", "add", "10.11.0.2/24", "dev", "pl1"])
        .unwrap();
    let name = format!("p{}", std::process::id() % 100_000_000);
    let _cleanup = PinCleanup(name.clone());
    let cli = |args: &[&str]| -> Output {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        server
            .run(move || Command::new(BIN).args(&args).output().expect("runs"))
            .unwrap()
    };
    // HTTP GET requests: the first 4 bytes of the TCP payload.
    let o = cli(&[
        "attach",
        "-i",
        "pl1",
        "--name",
        &name,
        "--hook",
        "tcx-ingress",
        "--action",
        "count",
        "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listener = server
        .run(|| TcpListener::bind("10.11.0.2:8080"))
        .unwrap()
        .unwrap();
    let request = b"GET / HTTP/1.0\r\n\r\n";
    client
        .run(|| {
            let mut s = TcpStream::connect("10.11.0.2:8080")?;
            s.write_all(request)
        })
        .unwrap()
        .unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = vec![0u8; request.len()];
    conn.read_exact(&mut got).unwrap();
    assert_eq!(&got, request);

    let line = status_line(&cli(&["status"]), &name);
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&cols[1..4], &["pl1", "tcx-ingress", "count"], "{line}");
    assert_eq!(cols[4], "1", "the one request segment matches: {line}");
    let o = cli(&["detach", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn compile_emits_the_ir_as_text_before_and_after_optimisation() {
    let ir_of = |emit: &str, expr: &str| {
        let o = pcap2bpf(&["compile", "--emit", emit, expr]);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = stdout(&o);
        let ir = pktmatch::ir::Ir::from_text(&text)
            .unwrap_or_else(|e| panic!("--emit {emit} {expr:?}: {e}\n{text}"));
        assert_eq!(ir.verify(), Ok(()), "--emit {emit} {expr:?}");
        (text, ir)
    };
    // `ip`: one test of the EtherType (bytes 12 and 13) against IPv4,
    // from the two bytes of the expression; nothing to optimise.
    let ip = "\
entry b0
v0 = load [12:2]
v1 = const 0x800
b0: eq v0, v1 ? accept : reject  # 0..2
";
    assert_eq!(ir_of("ir-lowered", "ip").0, ip);
    assert_eq!(ir_of("ir", "ip").0, ip);
    // `ip or not ip`: lowered, two tests of the EtherType; optimised,
    // none (the values stay, as the optimiser leaves the arena alone).
    let (_, lowered) = ir_of("ir-lowered", "ip or not ip");
    assert_eq!(lowered.blocks.len(), 2);
    assert_eq!(lowered.blocks[0].cond, lowered.blocks[1].cond);
    assert_eq!(
        ir_of("ir", "ip or not ip").0,
        "entry accept\nv0 = load [12:2]\nv1 = const 0x800\n"
    );
}

/// Every line of an error, and of a caret rendering, starts with
/// `pcap2bpf: `; control characters of the expression and of device
/// names are printed as escapes, the caret under the escaped fault.
#[test]
fn names_from_outside_are_printed_escaped() {
    let o = pcap2bpf(&["compile", "host \x1b[2J\nfoo port 99999"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(!err.contains('\x1b'), "{err:?}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines.iter().all(|l| l.starts_with("pcap2bpf: ")), "{err}");
    let echo = lines
        .iter()
        .position(|l| l.contains("\\x1b[2J"))
        .unwrap_or_else(|| panic!("no escaped echo: {err}"));
    let caret = lines[echo + 1].find('^').expect("a caret line");
    assert!(lines[echo][caret..].starts_with("\\x1b"), "{err}");

    // A device name that cannot exist: said escaped, newline included.
    let o = pcap2bpf(&["attach", "-i", "e\x1b[2J\nx", "--name", "esc0", "tcp"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("e\\x1b[2J\\x0ax"), "{err:?}");
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.starts_with("pcap2bpf: "), "{err:?}");
}

/// A device whose name holds an escape sequence (the kernel allows any
/// byte but `/`, `:` and white space): `attach`, its refusal of a taken
/// hook, and `status` print it escaped.
#[test]
fn attach_and_status_escape_device_names() {
    if !testbed::privileged("escape test") || !testbed::bpf_privileged("escape test") {
        return;
    }
    let o = in_own_namespaces(
        r#"
        dev="$(printf 'v\033[2J')"
        ip link add "$dev" type veth peer name vesc1
        "$BIN" attach -i "$dev" --name esc udp
        if "$BIN" attach -i "$dev" --name esc2 tcp; then
            exit 5
        fi
        "$BIN" status
        "$BIN" detach esc
        "#,
    );
    let out = stdout(&o);
    assert!(!out.contains('\x1b'), "{out:?}");
    // The refusal of a taken XDP hook names the device escaped too.
    let err = stderr(&o);
    assert!(!err.contains('\x1b'), "{err:?}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("pcap2bpf: XDP of v\\x1b[2J is taken: program ")),
        "{err}"
    );
    assert!(
        out.contains("attached esc to v\\x1b[2J xdp"),
        "{out}\n{}",
        stderr(&o)
    );
    let line = status_line(&o, "esc ");
    assert_eq!(line.split_whitespace().nth(1), Some("v\\x1b[2J"), "{line}");
}

/// The file `name` of `dir`, copied from `from` with `mode`.
fn copy_with_mode(from: &Path, dir: &Path, name: &str, mode: u32) -> String {
    use std::os::unix::fs::PermissionsExt;
    let to = dir.join(name);
    std::fs::copy(from, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode)).unwrap();
    to.display().to_string()
}

/// Without privileges (a user the test creates, with no capabilities):
/// `run` (its default engine, compiled, needs none) and `run --engine
/// interp` count what root counts, `--engine kernel` and `attach` fail
/// naming CAP_BPF, and nothing is left pinned. With CAP_BPF alone the
/// kernel creates the maps but refuses the XDP program: `run` counts all
/// the same, and the errors name
/// CAP_NET_ADMIN; with CAP_NET_ADMIN too, the verifier refuses the tc
/// program's pointer arithmetic, and the error names CAP_PERFMON.
#[test]
fn unprivileged_runs_fall_back_and_errors_name_the_capability() {
    use std::os::unix::fs::PermissionsExt;
    if !testbed::privileged("unprivileged test") || !testbed::bpf_privileged("unprivileged test") {
        return;
    }
    // The binary and the capture where the user may read them.
    let dir = std::env::temp_dir().join(format!("pcap2bpf-nobody-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let _remove = RemoveDir(dir.clone());
    let bin = copy_with_mode(Path::new(BIN), &dir, "pcap2bpf", 0o755);
    let capture = copy_with_mode(Path::new(&sample("ethernet.pcap")), &dir, "e.pcap", 0o644);
    let ns = testbed::Netns::new().unwrap();
    let user = testbed::User::new().unwrap();
    let as_user = |caps: &[&str], args: &[&str]| {
        let mut cmd = user.command_with_caps(caps, &bin);
        cmd.args(args);
        ns.run(move || cmd.output().expect("setpriv runs")).unwrap()
    };
    let root = pcap2bpf(&["run", "-r", &capture, "--count", "tcp"]);
    assert!(root.status.success(), "{}", stderr(&root));
    assert!(stdout(&root).trim().parse::<u64>().unwrap() > 0);
    let name = format!("u{}", std::process::id() % 100_000_000);
    let _cleanup = PinCleanup(name.clone());

    for (caps, needs) in [
        (&[][..], "(needs CAP_BPF"),
        (&["bpf"], "(needs CAP_BPF and CAP_NET_ADMIN)"),
    ] {
        for engine in ["auto", "interp"] {
            let o = as_user(
                caps,
                &["run", "-r", &capture, "--count", "--engine", engine, "tcp"],
            );
            assert!(o.status.success(), "{caps:?} {engine}: {}", stderr(&o));
            assert_eq!(stdout(&o), stdout(&root), "{caps:?} {engine}");
        }

        let o = as_user(
            caps,
            &[
                "run", "-r", &capture, "--count", "--engine", "kernel", "tcp",
            ],
        );
        assert_eq!(o.status.code(), Some(1), "{caps:?}");
        let err = stderr(&o);
        assert!(err.starts_with("pcap2bpf: "), "{err}");
        assert!(err.contains(needs), "{caps:?}: {err}");
        assert!(!err.contains("please report"), "{err}");

        let o = as_user(caps, &["attach", "-i", "lo", "--name", &name, "tcp"]);
        assert_eq!(o.status.code(), Some(1), "{caps:?}");
        let err = stderr(&o);
        assert!(err.starts_with("pcap2bpf: "), "{err}");
        assert!(err.contains(needs), "{caps:?}: {err}");
    }
    let o = as_user(
        &["bpf", "net_admin"],
        &[
            "attach",
            "-i",
            "lo",
            "--hook",
            "tcx-ingress",
            "--name",
            &name,
            "tcp",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("pointer -= pointer prohibited"), "{err}");
    assert!(
        err.contains("hint: only a loader with CAP_PERFMON (besides CAP_BPF)"),
        "{err}"
    );
    assert!(
        ns.run(|| bpf_builder::attach::tcx::query("lo", bpf_builder::attach::tcx::Hook::Ingress))
            .unwrap()
            .unwrap()
            .entries
            .is_empty()
    );
    assert!(!Path::new("/sys/fs/bpf/pcap2bpf").join(&name).exists());
}

/// Removes a directory when dropped (also when the test fails).
struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `-F` reads at most 1 MiB: `-F /dev/zero` ends within a second, in an
/// address space of 32 MiB (binary included), and a longer file is
/// refused with its name.
#[test]
fn filter_files_over_a_mebibyte_are_refused() {
    let start = std::time::Instant::now();
    let o = Command::new("sh")
        .args([
            "-c",
            "ulimit -v 32768 && exec \"$0\" compile -F /dev/zero",
            BIN,
        ])
        .output()
        .expect("sh runs");
    let took = start.elapsed();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "pcap2bpf: /dev/zero: more than 1 MiB; a filter file this long is refused\n"
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
    let dir = std::env::temp_dir().join(format!("pcap2bpf-cli-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("filter");
    // Exactly 1 MiB is read (and parsed: `tcp` and spaces); one byte more
    // is refused.
    let mut text = "tcp".to_string();
    text.push_str(&" ".repeat(1024 * 1024 - text.len()));
    std::fs::write(&f, &text).unwrap();
    let o = pcap2bpf(&["compile", "-F", f.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    text.push(' ');
    std::fs::write(&f, &text).unwrap();
    let o = pcap2bpf(&["compile", "-F", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("more than 1 MiB"), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Filter files hold comments as tcpdump's do (its `read_infile`): from
/// `#` to the end of the line; carets still point into the text.
#[test]
fn filter_files_hold_comments() {
    let dir = std::env::temp_dir().join(format!("pcap2bpf-cli-comments-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("filter");
    std::fs::write(
        &f,
        "# web traffic\ntcp # not udp (nor this parenthesis\n  and port 80#http\n# the end\n",
    )
    .unwrap();
    let file = f.to_str().unwrap();
    let capture = sample("ethernet.pcap");
    let o = pcap2bpf(&["run", "-r", &capture, "--count", "-F", file]);
    assert!(o.status.success(), "{}", stderr(&o));
    let words = ["tcp", "and", "port", "80"];
    let mut args = vec!["run", "-r", &capture, "--count"];
    args.extend(words);
    let o2 = pcap2bpf(&args);
    assert_eq!(stdout(&o), stdout(&o2));
    if let Some(n) = tcpdump_file_count(&capture, file) {
        assert_eq!(stdout(&o).trim(), n.to_string());
    }
    // An error after a comment: the caret under the fault.
    std::fs::write(&f, "tcp # port 1\nand port 99999\n").unwrap();
    let o = pcap2bpf(&["compile", "-F", file]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().collect();
    let col = lines[1].find("99999").expect(&err);
    assert_eq!(lines[2].find('^'), Some(col), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// tcpdump's count with the filter file `filter` (`None` without tcpdump).
fn tcpdump_file_count(file: &str, filter: &str) -> Option<usize> {
    let o = Command::new("tcpdump")
        .args(["--count", "-r", file, "-F", filter])
        .output()
        .ok()?;
    let out = String::from_utf8_lossy(&o.stdout);
    out.split_whitespace().next()?.parse().ok()
}

/// `--emit rust` with a filter file of several lines keeps every line in
/// the doc comment: the output is still Rust.
#[test]
fn multi_line_filter_files_stay_in_the_comments() {
    let dir = std::env::temp_dir().join(format!("pcap2bpf-cli-lines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("filter");
    std::fs::write(&f, "tcp # comment\n  and port 80\n\n  and len > 0\n").unwrap();
    let file = f.to_str().unwrap();
    let o = pcap2bpf(&["compile", "--emit", "rust", "-F", file]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rust = stdout(&o);
    let head: Vec<&str> = rust.lines().take_while(|l| l.starts_with("///")).collect();
    assert_eq!(
        head,
        [
            "/// pcap2bpf:",
            "///",
            "/// ```text",
            "/// tcp",
            "///   and port 80",
            "///",
            "///   and len > 0",
            "/// ```",
        ],
        "{rust}"
    );
    assert!(rust[head.join("\n").len()..].starts_with("\npub const PCAP_FILTER"));
    // It compiles, as does the C array.
    std::fs::write(dir.join("f.rs"), &rust).unwrap();
    let rustc = Command::new("rustc")
        .args(["--crate-type", "lib", "--emit", "metadata", "--out-dir"])
        .arg(&dir)
        .arg(dir.join("f.rs"))
        .output();
    if let Ok(r) = rustc {
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    let o = pcap2bpf(&["compile", "--emit", "c", "-F", file]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_cc_compiles(&dir, &stdout(&o));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The link type and snapshot length of a pcap file's header.
fn pcap_header(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    let field = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    (field(20), field(16))
}

#[test]
fn run_writes_the_matching_packets_for_tcpdump_to_read() {
    let dir = std::env::temp_dir().join(format!("pcap2bpf-w-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    let input = sample("ethernet.pcap");
    let out = dir.join("tcp.pcap");
    let out_str = out.to_str().unwrap();
    for engine in ["auto", "interp"] {
        let o = pcap2bpf(&[
            "run", "--engine", engine, "-n", "-r", &input, "-w", out_str, "tcp",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            o.stdout.is_empty(),
            "-w prints no summaries: {}",
            stdout(&o)
        );
        // tcpdump reads it back: as many packets as match, all of them tcp.
        let count = stdout(&pcap2bpf(&["run", "-r", &input, "--count", "tcp"]));
        let want: usize = count.trim().parse().unwrap();
        assert!(want > 10, "the sample has tcp packets");
        let Ok(read) = Command::new("tcpdump").args(["-n", "-r", out_str]).output() else {
            testbed::skip("tcpdump (the reference) is not installed");
            return;
        };
        assert!(
            read.status.success(),
            "{}",
            String::from_utf8_lossy(&read.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&read.stdout).lines().count(), want);
        let not_tcp = Command::new("tcpdump")
            .args(["-n", "-r", out_str, "not", "tcp"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&not_tcp.stdout).lines().count(), 0);
        // The capture's link type and snapshot length are kept.
        assert_eq!(pcap_header(&out), pcap_header(Path::new(&input)));
    }
}

#[test]
fn run_stops_after_the_count_of_matches_it_is_given() {
    let input = sample("ethernet.pcap");
    let all = stdout(&pcap2bpf(&["run", "-r", &input, "udp"]));
    let first: Vec<&str> = all.lines().take(3).collect();
    assert_eq!(first.len(), 3, "the sample has udp packets");
    let three = pcap2bpf(&["run", "-c", "3", "-r", &input, "udp"]);
    assert!(three.status.success(), "{}", stderr(&three));
    assert_eq!(stdout(&three).lines().collect::<Vec<_>>(), first);
    let counted = pcap2bpf(&["run", "-c", "3", "--count", "-r", &input, "udp"]);
    assert_eq!(stdout(&counted), "3\n");
    let clash = pcap2bpf(&["run", "--count", "-w", "-", "-r", &input, "udp"]);
    assert!(!clash.status.success());
    assert!(
        stderr(&clash).contains("would both write to standard output"),
        "{}",
        stderr(&clash)
    );
}
