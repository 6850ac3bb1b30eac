//! xdpdump captures, at the entry and exit of an XDP program on a veth,
//! exactly the frames its filter matches (bytes, lengths, the action at
//! exit), and as a command writes a pcap file that tcpdump reads. fentry
//! and fexit need BPF trampolines, which the development machines'
//! kernel refuses: there these tests run in a VM.

use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use bpf_builder::asm::{Annotation, Asm};
use bpf_builder::attach::xdp::{self, XdpMode};
use bpf_builder::insn::Reg::*;
use bpf_builder::load::Loaded;
use bpf_builder::object::{Object, ProgId, ProgramType};
use bpf_builder::sys::bpf as sys;
use examples::require_bpf;
use examples::tools::xdpdump::{self, Captured, Options, Point, Source, Xdpdump};
use testbed::{Netns, VethPair};

const EXE: &str = env!("CARGO_BIN_EXE_xdpdump");
const TCPDUMP: &str = "/usr/bin/tcpdump";
const XDP_PASS: u32 = 2;

/// An XDP program that passes every frame, with BTF (its source line):
/// fentry and fexit find its function there.
fn xdp_pass() -> (Loaded, ProgId) {
    let mut obj = Object::new();
    let mut a = Asm::new();
    a.set_source(Annotation::new("return XDP_PASS;"));
    a.mov32(R0, XDP_PASS as i32);
    a.exit();
    let prog = obj
        .add_program("xdp_pass", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    (obj.load().unwrap_or_else(|e| panic!("{e}")), prog)
}

/// An XDP program without BTF: nothing for fentry to find its function by.
fn xdp_pass_without_btf() -> (Loaded, ProgId) {
    let mut obj = Object::new();
    let mut a = Asm::new();
    a.mov32(R0, XDP_PASS as i32);
    a.exit();
    let prog = obj
        .add_program("xdp_nobtf", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    (obj.load().unwrap_or_else(|e| panic!("{e}")), prog)
}

/// A namespace with a veth pair `xda`-`xdb` and [`xdp_pass`] attached
/// to `xdb` (generic mode), with what keeps it attached.
struct Bed {
    ns: Netns,
    pair: VethPair,
    _link: bpf_builder::attach::Link,
    loaded: Loaded,
    prog: ProgId,
}

impl Bed {
    fn new() -> Bed {
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("xda", "xdb").unwrap();
        let (loaded, prog) = xdp_pass();
        let link = ns
            .run(|| xdp::attach("xdb", loaded.program(prog), XdpMode::Generic))
            .unwrap()
            .unwrap();
        Bed {
            ns,
            pair,
            _link: link,
            loaded,
            prog,
        }
    }
}

/// UDP frames from the pair's first end to its second, to ports
/// `1000..1010`, with 100 bytes of payload each.
fn frames(pair: &VethPair) -> Vec<(u16, Vec<u8>)> {
    (1000..1010)
        .map(|port| {
            let payload: Vec<u8> = (0..100).map(|i| (i + port) as u8).collect();
            let f = testbed::udp4_frame(
                pair.a.mac,
                pair.b.mac,
                Ipv4Addr::new(10, 0, 0, 1),
                Ipv4Addr::new(10, 0, 0, 2),
                4000,
                port,
                &payload,
            )
            .unwrap();
            (port, f)
        })
        .collect()
}

fn send_all(pair: &VethPair, frames: &[(u16, Vec<u8>)]) {
    let socket = pair.a.socket().unwrap();
    for (_, f) in frames {
        socket.send(f).unwrap();
    }
}

/// The ids of loaded programs whose names start with `prefix`.
fn programs_named(prefix: &str) -> Vec<u32> {
    let mut ids = Vec::new();
    let mut at = None;
    while let Some(id) = sys::prog_get_next_id(at).unwrap() {
        at = Some(id);
        let Ok(fd) = sys::prog_get_fd_by_id(id) else {
            continue;
        };
        if sys::prog_info(&fd).is_ok_and(|i| i.name.starts_with(prefix)) {
            ids.push(id.get());
        }
    }
    ids
}

/// The VM gets the tool and tcpdump (with the users it drops to).
fn vm_files(vm: testbed::vm::Vm) -> testbed::vm::Vm {
    let mut vm = vm.file(Path::new(EXE), EXE);
    for f in [TCPDUMP, "/etc/passwd", "/etc/group"] {
        if Path::new(f).exists() {
            vm = vm.file(Path::new(f), f);
        }
    }
    vm
}

#[test]
fn xdpdump_captures_the_matching_frames_at_entry_and_exit_here_or_in_vm() {
    const NAME: &str = "xdpdump_captures_the_matching_frames_at_entry_and_exit_here_or_in_vm";
    if !require_bpf(NAME)
        || !testbed::vm::run_here_or_in_vm_with(
            "fentry and fexit on an XDP program (BPF trampolines)",
            testbed::features::fentry(),
            NAME,
            vm_files,
        )
    {
        return;
    }
    let bed = Bed::new();
    let id = bed.loaded.program(bed.prog).id().unwrap().get();
    let mut opts = Options::new(Source::ProgId(id));
    opts.points = vec![Point::Entry, Point::Exit];
    opts.filter = "udp dst port 1003 or udp dst port 1007".into();
    let mut tool = Xdpdump::start(&opts).unwrap();
    assert_eq!(programs_named(xdpdump::PROGRAM_PREFIX).len(), 2);
    let frames = frames(&bed.pair);
    send_all(&bed.pair, &frames);
    let mut seen: Vec<Captured> = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while seen.len() < 4 && Instant::now() < end {
        tool.poll(Duration::from_millis(100), |c| seen.push(c))
            .unwrap();
    }
    // A little longer: nothing more may come.
    tool.poll(Duration::from_millis(300), |c| seen.push(c))
        .unwrap();
    let want: Vec<&Vec<u8>> = frames
        .iter()
        .filter(|(port, _)| [1003, 1007].contains(port))
        .map(|(_, f)| f)
        .collect();
    for point in [Point::Entry, Point::Exit] {
        let at: Vec<&Captured> = seen.iter().filter(|c| c.point == point).collect();
        let data: Vec<&Vec<u8>> = at.iter().map(|c| &c.data).collect();
        assert_eq!(
            data, want,
            "{point:?}: the two matching frames, whole, in order"
        );
        for c in at {
            assert_eq!(c.wire_len as usize, c.data.len());
            let action = (point == Point::Exit).then_some(XDP_PASS);
            assert_eq!(c.action, action, "{point:?}");
        }
    }
    assert_eq!(tool.lost().unwrap(), 0);
    drop(tool);
    assert_eq!(
        programs_named(xdpdump::PROGRAM_PREFIX),
        Vec::<u32>::new(),
        "dropping the tool unloads its programs"
    );
}

#[test]
fn xdpdump_command_writes_a_pcap_file_that_tcpdump_reads_here_or_in_vm() {
    const NAME: &str = "xdpdump_command_writes_a_pcap_file_that_tcpdump_reads_here_or_in_vm";
    if !require_bpf(NAME)
        || !testbed::vm::run_here_or_in_vm_with(
            "fentry on an XDP program (BPF trampolines)",
            testbed::features::fentry(),
            NAME,
            vm_files,
        )
    {
        return;
    }
    let bed = Bed::new();
    let file = std::env::temp_dir().join(format!("xdpdump-{}.pcap", std::process::id()));
    let file_s = file.to_str().unwrap();
    // The tool finds the program by the interface, in the namespace.
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            bed.ns.name(),
            EXE,
            "-i",
            "xdb",
            "-w",
            file_s,
        ])
        .args([
            "-c",
            "2",
            "-s",
            "64",
            "udp dst port 1005 or udp dst port 1008",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut stderr = Vec::new();
    let started = loop {
        match lines.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => {
                let capturing = l.starts_with("xdpdump: capturing");
                stderr.push(l);
                if capturing {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    assert!(started, "xdpdump did not start: {stderr:?}");
    let frames = frames(&bed.pair);
    send_all(&bed.pair, &frames);
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > end {
            let _ = child.kill();
            panic!("xdpdump did not stop after 2 packets: {stderr:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    stderr.extend(lines.try_iter());
    assert!(status.success(), "{status:?}: {stderr:?}");
    assert!(
        stderr
            .iter()
            .any(|l| l == "xdpdump: 2 packets captured, 0 lost"),
        "{stderr:?}"
    );
    let cap = pcapfile::read(&file).unwrap();
    assert_eq!(cap.link, 1, "Ethernet");
    let want: Vec<(usize, Vec<u8>)> = frames
        .iter()
        .filter(|(port, _)| [1005, 1008].contains(port))
        .map(|(_, f)| (f.len(), f[..64].to_vec()))
        .collect();
    let got: Vec<(usize, Vec<u8>)> = cap
        .packets
        .iter()
        .map(|p| (p.wire_len as usize, p.data.clone()))
        .collect();
    assert_eq!(got, want, "the two frames, cut to the snapshot length");
    check_with_tcpdump(&file);
    std::fs::remove_file(&file).unwrap();
}

/// tcpdump reads the file: two UDP packets, to ports 1005 and 1008.
fn check_with_tcpdump(file: &PathBuf) {
    if !Path::new(TCPDUMP).exists() {
        return testbed::skip("tcpdump is not installed: the pcap file is not read by it");
    }
    let out = Command::new(TCPDUMP)
        .args(["-Z", "root", "-nn", "-r"])
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tcpdump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("tcpdump -r {}:\n{text}", file.display());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for (line, port) in lines.iter().zip([1005, 1008]) {
        assert!(
            line.contains(&format!(
                "IP 10.0.0.1.4000 > 10.0.0.2.{port}: UDP, length 100"
            )),
            "{line}"
        );
    }
}

#[test]
fn xdpdump_says_what_is_wrong() {
    for (args, says) in [
        (&["--bogus"][..], "unknown argument `--bogus`"),
        (&["udp"][..], "-i IFACE or --prog-id ID is needed"),
        (
            &["-i", "lo", "-s", "0"][..],
            "the snapshot length is 1 to 65535",
        ),
        (
            &["-i", "lo", "--rx-capture", "middle"][..],
            "`middle` is not entry",
        ),
    ] {
        let out = Command::new(EXE).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn xdpdump_refuses_an_interface_without_xdp_and_a_bad_filter() {
    if !require_bpf("xdpdump_refuses_an_interface_without_xdp_and_a_bad_filter") {
        return;
    }
    let ns = Netns::new().unwrap();
    ns.veth_pair("xda", "xdb").unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", ns.name(), EXE, "-i", "xdb", "udp"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("xdb has no XDP program attached"), "{err}");
    // With a program there, a filter libpcap refuses is refused, pointing
    // at the problem, before anything is loaded.
    let (loaded, prog) = xdp_pass();
    let _link = ns
        .run(|| xdp::attach("xdb", loaded.program(prog), XdpMode::Generic))
        .unwrap()
        .unwrap();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            EXE,
            "-i",
            "xdb",
            "tcp",
            "port",
            "http2x",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("filter:") && err.contains("http2x"), "{err}");
    assert_eq!(programs_named(xdpdump::PROGRAM_PREFIX), Vec::<u32>::new());
}

#[test]
fn xdpdump_refuses_a_program_without_btf_or_of_another_type() {
    if !require_bpf("xdpdump_refuses_a_program_without_btf_or_of_another_type") {
        return;
    }
    let (loaded, prog) = xdp_pass_without_btf();
    let id = loaded.program(prog).id().unwrap().get();
    let err = Xdpdump::start(&Options::new(Source::ProgId(id)))
        .expect_err("no BTF")
        .to_string();
    assert!(
        err.contains("`xdp_nobtf` has no BTF function information"),
        "{err}"
    );
    // A program that is no XDP program.
    let mut obj = Object::new();
    let mut a = Asm::new();
    a.mov32(R0, 0);
    a.exit();
    let other = obj
        .add_program("not_xdp", ProgramType::SocketFilter, a.finish().unwrap())
        .unwrap();
    let loaded = obj.load().unwrap();
    let id = loaded.program(other).id().unwrap().get();
    let err = Xdpdump::start(&Options::new(Source::ProgId(id)))
        .expect_err("not XDP")
        .to_string();
    assert!(err.contains("(`not_xdp`) is not an XDP program"), "{err}");
}

#[test]
fn xdpdump_lists_a_packet_with_its_point_action_and_lengths() {
    let c = Captured {
        time_ns: 3_600_000_000_000 + 61_000_123_456,
        point: Point::Exit,
        action: Some(1),
        wire_len: 1514,
        data: vec![0; 64],
    };
    assert_eq!(
        xdpdump::line(&c),
        "01:01:01.000123 exit[XDP_DROP]: packet size 1514 bytes, captured 64 bytes"
    );
    let entry = Captured {
        point: Point::Entry,
        action: None,
        ..c
    };
    assert!(xdpdump::line(&entry).contains(" entry: "));
}
