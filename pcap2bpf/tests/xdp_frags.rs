//! XDP programs with fragment support (`CompileOptions::xdp_frags`, what
//! `attach` loads on devices whose MTU needs it): on frames whose bytes
//! continue past the first buffer, every filter gives the IR's verdict,
//! which the differential test holds to libpcap's. `BPF_PROG_TEST_RUN`
//! hands the program an input longer than a page in fragments, so long
//! frames take both copies of the filter: the direct one when the first
//! buffer holds all the filter can read, the one with helper loads when
//! not. The interpreter, whose frames are in one buffer, runs them too.

mod common;

use bpf_builder::interp::{Interp, XdpCtx};
use bpf_builder::load::Loaded;
use bpf_builder::run::TestRun;
use common::*;
use pcap2bpf::{CompileOptions, Compiled, LinkType, Target, compile};

const XDP_PASS: i32 = 2;
const XDP_DROP: i32 = 1;

/// The padding byte at frame offset `i`: frames are made long with these.
fn pad(i: usize) -> u8 {
    (i * 31 + 7) as u8
}

/// Beyond libpcap's test expressions: reads past any first buffer, the
/// whole length, variable offsets, and walks.
fn own_expressions() -> Vec<String> {
    vec![
        "len > 4000".into(),
        "greater 8000".into(),
        "less 300".into(),
        format!("ether[4500] = {}", pad(4500)),
        format!("ether[8999] = {}", pad(8999)),
        format!("ether[len - 1] = {}", pad(4999)),
        format!(
            "udp and ether[6000:2] = {}",
            u16::from_be_bytes([pad(6000), pad(6001)])
        ),
        "tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420".into(),
        "ip6 protochain 6".into(),
        "ip protochain 17 or ether[7000] = 1".into(),
        "tcp port 80 or udp port 53".into(),
        "vlan and ip".into(),
        "ip[2:2] > 1000 and not ether[3999] = 0".into(),
    ]
}

/// The filter compiled for XDP with fragment support, as `attach` builds
/// it on a device that needs it.
fn frags_program(expr: &str, tables: &pcap2bpf::Tables) -> Option<Compiled> {
    let opts = CompileOptions::new(LinkType::En10mb, Target::Xdp, tables)
        .verdicts(XDP_PASS, XDP_DROP)
        .xdp_frags(true)
        .netmask(Some(0xffff_ff00));
    compile(expr, &opts).ok()
}

/// Whole Ethernet frames of the captures (every 8th), each as it is and
/// made 5000 and 9000 bytes long with [`pad`] bytes.
fn frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for p in whole_ethernet_packets(8)
        .into_iter()
        .filter(|p| p.len() <= 4000)
    {
        for len in [p.len(), 5000, 9000] {
            let mut f = p.clone();
            f.extend((f.len()..len).map(pad));
            out.push(f);
        }
    }
    out
}

#[test]
fn fragmented_frames_get_the_verdicts_of_the_ir() {
    if !testbed::bpf_privileged("XDP fragment test runs") {
        return;
    }
    let tables = tables();
    let own = own_expressions();
    let mut exprs = own.clone();
    exprs.extend(
        testdata_text("pcap-filter/accept.tsv")
            .lines()
            .filter_map(|l| l.strip_prefix("EN10MB\t"))
            // The IR evaluator has no interface or direction.
            .filter(|e| !e.contains("ifindex") && !e.contains("ifname"))
            .map(str::to_string),
    );
    let frames = frames();
    assert!(frames.len() > 300, "too few frames: {}", frames.len());
    let (mut programs, mut runs, mut long_matches) = (0, 0, 0);
    let mut bad = Vec::new();
    for expr in &exprs {
        let Some(Compiled {
            object,
            program: prog,
            ir,
            ..
        }) = frags_program(expr, &tables)
        else {
            continue;
        };
        assert!(object.program(prog).xdp_frags, "{expr:?}: declares it");
        let loaded: Loaded = object
            .load()
            .unwrap_or_else(|e| panic!("{expr:?}: the verifier refuses it: {e}"));
        let handle = loaded.program(prog);
        // The interpreter's frames are in one buffer: the direct copy.
        let mut interp = Interp::new(&object.layout(prog).expect("lays out").insns);
        programs += 1;
        for f in &frames {
            let want = ir.eval(f, f.len() as u32, &|_| None);
            let out = handle
                .test_run(&TestRun::new(f).data_out_capacity(0))
                .unwrap_or_else(|e| panic!("{expr:?} on {} bytes: {e}", f.len()));
            runs += 1;
            let interp_says = interp
                .run_xdp(f, &[], XdpCtx::test_run())
                .unwrap_or_else(|e| panic!("{expr:?} on {} bytes: interpreter: {e}", f.len()))
                .retval
                == XDP_PASS as u64;
            if interp_says != want && bad.len() < 10 {
                bad.push(format!(
                    "{expr:?} on {} bytes: interpreter {interp_says}, IR {want}",
                    f.len()
                ));
            }
            let got = out.retval == XDP_PASS as u32;
            if got != want && bad.len() < 10 {
                bad.push(format!(
                    "{expr:?} on {} bytes: ours {got}, IR {want}",
                    f.len()
                ));
            }
            if got && f.len() > 4096 && own.contains(expr) {
                long_matches += 1;
            }
        }
    }
    eprintln!("xdp frags: {programs} programs, {runs} test runs");
    assert!(bad.is_empty(), "disagreements:\n{}", bad.join("\n"));
    assert!(programs > 250, "too few programs: {programs}");
    // Filters reading past the first buffer (and `len`) did match long
    // frames: the helper-load copy and the whole length are in use.
    assert!(long_matches > 100, "long frames matched: {long_matches}");
}
