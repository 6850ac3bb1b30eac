//! The probe target: the filter as a function over packet bytes in kernel
//! memory, read with `bpf_probe_read_kernel`. Each packet is written into
//! an array map's value, whose kernel address a small program reports;
//! the compiled filter's raw tracepoint program (address, captured
//! length, wire length as its arguments) calls the filter's function on
//! it under `BPF_PROG_TEST_RUN`, and its verdicts must be libpcap's
//! (`pcap_offline_filter` through `tests/verdicts.c`): on every packet
//! of the captures, and on packets cut short. The bytes past the
//! captured ones hold a pattern, so a filter that read them would
//! disagree.

mod common;

use std::path::PathBuf;

use bpf_builder::asm::Asm;
use bpf_builder::handle::{Map, UpdateFlags};
use bpf_builder::insn::{Reg, Size};
use bpf_builder::load::Loaded;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{Object, ProgId, ProgramType};
use common::*;
use pcap2bpf::{CompileOptions, LinkType, Target, add_probe_filter, compile};
use pcapfile as capture;

/// Room for the pattern after the longest packet in a buffer.
const PAST_END: usize = 64;

/// What fills the buffer past the captured bytes.
const PATTERN: u8 = 0xa5;

/// Packets are also cut at every length below this (past it, the
/// headers have been read).
const MAX_CUT: usize = 96;

/// A buffer in kernel memory (an array map's value) and its address.
struct KernelBuffer {
    _loaded: Loaded,
    map: Map,
    addr: u64,
    size: usize,
}

impl KernelBuffer {
    /// Makes the buffer, and learns its address from a program that
    /// stores it in a second map (a pointer leak the verifier allows
    /// programs loaded with CAP_BPF and CAP_PERFMON).
    fn new(longest: usize) -> KernelBuffer {
        let size = longest + PAST_END;
        let mut object = Object::new();
        let buf = object
            .add_map(MapSpec::array("probe_buf", size as u32, 1))
            .expect("a map");
        let addr = object
            .add_map(MapSpec::array("probe_addr", 8, 1))
            .expect("a map");
        let mut a = Asm::new();
        a.ld_map_value(Reg::R1, buf, 0);
        a.ld_map_value(Reg::R2, addr, 0);
        a.stx(Size::DW, Reg::R2, 0, Reg::R1);
        a.mov64(Reg::R0, 0);
        a.exit();
        let code = a.finish().expect("assembles");
        let prog = object
            .add_program("leak_addr", ProgramType::RawTracepoint, code)
            .expect("a program");
        let loaded = object.load().unwrap_or_else(|e| panic!("{e}"));
        loaded.program(prog).run_once(&[]).expect("runs");
        let value = loaded
            .map(addr)
            .lookup(&0u32.to_ne_bytes())
            .expect("reads")
            .expect("an entry");
        let addr = u64::from_ne_bytes(value[..8].try_into().expect("8 bytes"));
        assert_ne!(addr, 0, "the program stored the buffer's address");
        let map = loaded.map(buf).try_clone().expect("a map fd");
        KernelBuffer {
            _loaded: loaded,
            map,
            addr,
            size,
        }
    }

    /// Puts `bytes` at the buffer's start, the pattern after them.
    fn fill(&self, bytes: &[u8]) {
        let mut value = vec![PATTERN; self.size];
        value[..bytes.len()].copy_from_slice(bytes);
        self.map
            .update(&0u32.to_ne_bytes(), &value, UpdateFlags::Any)
            .expect("writes the buffer");
    }
}

/// A loaded probe filter: its raw tracepoint program.
struct ProbeFilter {
    loaded: Loaded,
    prog: ProgId,
}

impl ProbeFilter {
    fn matches(&self, addr: u64, caplen: usize, wire_len: u32) -> bool {
        let ret = self
            .loaded
            .program(self.prog)
            .run_once(&[addr, caplen as u64, u64::from(wire_len)])
            .expect("runs");
        assert!(ret <= 1, "a probe filter returns 1 or 0, not {ret}");
        ret == 1
    }
}

fn options(link: LinkType, tables: &pcap2bpf::Tables) -> CompileOptions<'_> {
    CompileOptions::new(link, Target::Probe, tables).netmask(Some(0xffff_ff00))
}

#[test]
fn probe_verdicts_match_libpcap() {
    if !testbed::bpf_privileged("probe filter test") {
        return;
    }
    let Some((bin, etc)) = build_helper("verdicts") else {
        return testbed::skip("cannot build the libpcap verdict helper (needs cc and libpcap-dev)");
    };
    let tsv = testdata_text("pcap-filter/accept.tsv");
    let tables = tables();
    let (mut programs, mut runs, mut cut_runs) = (0, 0, 0);
    let mut bad = Vec::new();
    for (name, (dlt, packets)) in cut_packets(MAX_CUT) {
        let (link, _) = link_of(dlt).expect("known");
        let longest = packets.iter().map(|p| p.data.len()).max().unwrap_or(0);
        let buffer = KernelBuffer::new(longest);
        let exprs = accepted_expressions(&tsv, name);
        let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("probe-{name}.pcap"));
        let out = std::fs::File::create(&file).expect("temp file");
        capture::write_pcap(out, dlt, 262_144, &packets).expect("writes");
        let file_arg = file.to_string_lossy().to_string();
        let Some(out) = run_with_etc(
            &bin,
            &etc,
            &[&file_arg, "255.255.255.0"],
            exprs.join("\n") + "\n",
        ) else {
            return testbed::skip("cannot run the libpcap verdict helper (needs unshare as root)");
        };
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), exprs.len(), "one line per expression");
        // Every filter libpcap accepts, loaded; then each packet written
        // once and run through all of them.
        let mut filters = Vec::new();
        for (expr, line) in exprs.iter().zip(&lines) {
            let Some(want) = line.strip_prefix('V') else {
                continue;
            };
            let c = match compile(expr, &options(link, &tables)) {
                Ok(c) => c,
                // What the probe target refuses and libpcap accepts on a
                // capture file: nothing (it has a capture file's meaning).
                Err(e) => {
                    bad.push(format!("{name}: we refuse {expr:?}: {}", e.render(expr)));
                    continue;
                }
            };
            let loaded = match c.object.load() {
                Ok(l) => l,
                Err(e) => {
                    bad.push(format!("{name}: {expr:?} does not load: {e}"));
                    continue;
                }
            };
            programs += 1;
            let filter = ProbeFilter {
                loaded,
                prog: c.program,
            };
            filters.push((expr, want.as_bytes(), filter));
        }
        for (i, p) in packets.iter().enumerate() {
            buffer.fill(&p.data);
            let cut_short = p.data.len() < p.wire_len as usize;
            for (expr, want, filter) in &filters {
                let want = want[i] == b'1';
                let got = filter.matches(buffer.addr, p.data.len(), p.wire_len);
                runs += 1;
                cut_runs += usize::from(cut_short);
                if got != want && bad.len() < 50 {
                    bad.push(format!(
                        "{name}: {expr:?} on a packet of {} bytes ({} on the wire) {:02x?}: \
                         libpcap {want}, probe function {got}",
                        p.data.len(),
                        p.wire_len,
                        &p.data[..p.data.len().min(64)]
                    ));
                }
            }
        }
    }
    eprintln!("probe filters: {programs} programs, {runs} kernel runs ({cut_runs} cut short)");
    assert!(
        programs > 100,
        "too few programs to mean anything: {programs}"
    );
    assert!(cut_runs > 1000, "too few packets cut short: {cut_runs}");
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// A load past the captured bytes rejects even when the bytes in memory
/// there would match: `tcp port 80` on a SYN to port 80 captured up to
/// the ports' first byte.
#[test]
fn probe_rejects_past_the_captured_bytes() {
    if !testbed::bpf_privileged("probe filter test") {
        return;
    }
    let tables = tables();
    let buffer = KernelBuffer::new(64);
    let c = compile("tcp dst port 80", &options(LinkType::En10mb, &tables)).expect("compiles");
    let loaded = c.object.load().unwrap_or_else(|e| panic!("{e}"));
    let filter = ProbeFilter {
        loaded,
        prog: c.program,
    };
    let mut syn = vec![0u8; 54];
    syn[12..14].copy_from_slice(&[0x08, 0x00]);
    syn[14] = 0x45;
    syn[16..18].copy_from_slice(&40u16.to_be_bytes());
    syn[23] = 6;
    syn[36..38].copy_from_slice(&80u16.to_be_bytes());
    syn[46] = 0x50;
    buffer.fill(&syn);
    assert!(filter.matches(buffer.addr, 54, 54), "the whole SYN matches");
    assert!(!filter.matches(buffer.addr, 37, 54), "cut inside the port");
    assert!(filter.matches(buffer.addr, 38, 54), "cut after the port");
    // An address the kernel cannot read: the probe read fails, no match.
    assert!(!filter.matches(8, 54, 54), "unreadable memory");
}

/// The function form: a program of the caller's calls it, and the
/// target's refusals are libpcap's for a capture file.
#[test]
fn probe_function_is_called_from_a_tracing_program() {
    if !testbed::bpf_privileged("probe filter test") {
        return;
    }
    let tables = tables();
    let opts = options(LinkType::En10mb, &tables);
    let buffer = KernelBuffer::new(64);
    let mut object = Object::new();
    let f = add_probe_filter(&mut object, "udp", &opts, "is_udp").expect("compiles");
    // The caller: r0 = 10 + is_udp(arg0, arg1, arg2).
    let mut a = Asm::new();
    a.ldx(Size::DW, Reg::R2, Reg::R1, 8);
    a.ldx(Size::DW, Reg::R3, Reg::R1, 16);
    a.ldx(Size::DW, Reg::R1, Reg::R1, 0);
    a.call_func(f.function);
    a.add64(Reg::R0, 10);
    a.exit();
    let prog = object
        .add_program(
            "caller",
            ProgramType::RawTracepoint,
            a.finish().expect("assembles"),
        )
        .expect("a program");
    let loaded = object.load().unwrap_or_else(|e| panic!("{e}"));
    let mut udp = vec![0u8; 42];
    udp[12..14].copy_from_slice(&[0x08, 0x00]);
    udp[14] = 0x45;
    udp[23] = 17;
    buffer.fill(&udp);
    let run = |caplen: u64| {
        loaded
            .program(prog)
            .run_once(&[buffer.addr, caplen, 42])
            .expect("runs")
    };
    assert_eq!(run(42), 11);
    assert_eq!(run(23), 10, "the protocol byte not captured");
    let err = add_probe_filter(&mut Object::new(), "inbound and udp", &opts, "f")
        .err()
        .expect("refused");
    assert!(err.to_string().contains("'inbound' not supported"), "{err}");
    let xdp = CompileOptions::new(LinkType::En10mb, Target::Xdp, &tables);
    assert!(add_probe_filter(&mut Object::new(), "udp", &xdp, "f").is_err());
}
