//! The differential test: every expression of libpcap's test suite that
//! the system libpcap accepts (plus our own), over every packet of the
//! captures, must give libpcap's verdict, packet by packet.
//!
//! libpcap's verdicts come from `tests/verdicts.c` (`pcap_compile` against
//! the capture, optimised like tcpdump, then `pcap_offline_filter`). Ours
//! come from the generated XDP program in the test-run mode, run by the
//! kernel (`BPF_PROG_TEST_RUN`, packet by packet and in the batches `run`
//! uses) and by the interpreter, all through the same `engine::Runner` the
//! `run` command uses, from the compiled engine (the IR as closures, the
//! default of `run`), and from the IR's own evaluator. The captures are
//! tcpdump's (`testdata/pcaps/`) and the project's own generated samples
//! (`pcap2bpf/samples/`, truncated frames included).

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use bpf_builder::interp::{Interp, SkbCtx};
use bpf_builder::run::{RunError, TestRun};
use common::*;
use pcap2bpf::engine::{Engine, EngineError, RunOptions, Runner};
use pcap2bpf::{CompileOptions, Compiled, LinkType, Target, compile};
use pcapfile::{self as capture, Packet};

const XDP_PASS: i32 = 2;
const XDP_DROP: i32 = 1;
const NETMASK: &str = "255.255.255.0";

/// Expressions libpcap accepts that we do not compile, with the reason.
const UNSUPPORTED: &[(&str, &str)] = &[(
    "byte",
    "`byte N & M`/`byte N | M`: libpcap 1.10.3 emits no load and tests a stale register",
)];

/// A capture: its path, packets, and libpcap's answer per expression.
type Capture = (PathBuf, Vec<Packet>, BTreeMap<String, String>);

struct Stats {
    exprs: usize,
    runs: usize,
    batched_runs: usize,
    interp_runs: usize,
    tc_runs: usize,
    tc_refused: usize,
    socket_interp_runs: usize,
    socket_kernel_runs: usize,
    inexact: usize,
    ir_only: usize,
    unsupported: BTreeMap<String, String>,
    bad: Vec<String>,
}

const TC_ACT_OK: i32 = 0;
const TC_ACT_SHOT: i32 = 2;

/// `expr` for tc on Ethernet (no test-run metadata: the frame is whole).
fn compile_tc(expr: &str, tables: &pcap2bpf::Tables) -> Compiled {
    compile(
        expr,
        &CompileOptions::new(LinkType::En10mb, Target::Tc, tables)
            .verdicts(TC_ACT_OK, TC_ACT_SHOT)
            .netmask(Some(0xffff_ff00)),
    )
    .unwrap_or_else(|e| panic!("compiles for XDP but not tc: {}", e.render(expr)))
}

/// `expr` as a socket filter (`ld_abs`/`ld_ind` loads).
fn compile_socket(expr: &str, link: LinkType, tables: &pcap2bpf::Tables) -> Compiled {
    compile(
        expr,
        &CompileOptions::new(link, Target::SocketFilter, tables)
            .verdicts(0x40000, 0)
            .netmask(Some(0xffff_ff00)),
    )
    .unwrap_or_else(|e| {
        panic!(
            "compiles for XDP but not as a socket filter: {}",
            e.render(expr)
        )
    })
}

/// The frame a socket-filter test run needs for a raw IP packet: the
/// kernel pulls an Ethernet header, so the program sees the packet.
fn raw_in_ethernet(packet: &[u8]) -> Vec<u8> {
    let ethertype: u16 = if packet.first().is_some_and(|b| b >> 4 == 6) {
        0x86dd
    } else {
        0x0800
    };
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(packet);
    f
}

fn compile_for(expr: &str, link: LinkType, tables: &pcap2bpf::Tables) -> Result<Compiled, String> {
    compile(
        expr,
        &CompileOptions::new(link, Target::Xdp, tables)
            .verdicts(XDP_PASS, XDP_DROP)
            .test_run_meta(true)
            .netmask(Some(0xffff_ff00)),
    )
    .map_err(|e| e.render(expr))
}

#[test]
fn verdicts_match_libpcap() {
    let Some((bin, etc)) = build_helper("verdicts") else {
        return testbed::skip("cannot build the libpcap verdict helper (needs cc and libpcap-dev)");
    };
    let tsv = testdata_text("pcap-filter/accept.tsv");
    let tables = tables();
    let mut st = Stats {
        exprs: 0,
        runs: 0,
        batched_runs: 0,
        interp_runs: 0,
        tc_runs: 0,
        tc_refused: 0,
        socket_interp_runs: 0,
        socket_kernel_runs: 0,
        inexact: 0,
        ir_only: 0,
        unsupported: BTreeMap::new(),
        bad: Vec::new(),
    };
    let mut kernel_ok = true;
    // Captures by link type, with libpcap's verdicts for each expression.
    let mut by_link: BTreeMap<&'static str, Vec<Capture>> = BTreeMap::new();
    let mut exprs_of: BTreeMap<&'static str, (LinkType, Vec<String>)> = BTreeMap::new();
    for path in capture_files() {
        let cap = capture::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let packets = cap.packets;
        let Some((link, name)) = link_of(cap.link) else {
            continue;
        };
        let exprs = &exprs_of
            .entry(name)
            .or_insert_with(|| {
                let mut v: Vec<String> = tsv
                    .lines()
                    .filter_map(|l| l.split_once('\t'))
                    .filter(|(l, _)| *l == name)
                    .map(|(_, e)| e.to_string())
                    .collect();
                if link == LinkType::En10mb {
                    v.extend(OUR_EXPRESSIONS.iter().map(|s| s.to_string()));
                }
                v.sort();
                v.dedup();
                (link, v)
            })
            .1;
        let file = path.to_string_lossy().to_string();
        let out = run_with_etc(&bin, &etc, &[&file, NETMASK], exprs.join("\n") + "\n")
            .unwrap_or_default();
        let lines: Vec<&str> = out.lines().collect();
        if lines.len() != exprs.len() {
            return testbed::skip("cannot run the libpcap verdict helper (needs unshare as root)");
        }
        let verdicts = exprs
            .iter()
            .zip(lines)
            .map(|(e, l)| (e.clone(), l.to_string()))
            .collect();
        by_link
            .entry(name)
            .or_default()
            .push((path, packets, verdicts));
    }
    for (name, caps) in &by_link {
        let (link, exprs) = &exprs_of[name];
        for expr in exprs {
            // Expressions libpcap rejects for every capture are skipped.
            if !caps.iter().any(|(_, _, v)| v[expr].starts_with('V')) {
                continue;
            }
            let c = match compile_for(expr, *link, &tables) {
                Ok(c) => c,
                Err(e) => {
                    let known = UNSUPPORTED.iter().any(|(w, _)| expr.contains(w));
                    if !known {
                        st.bad.push(format!("{name}: we reject {expr:?}: {e}"));
                    }
                    st.unsupported.insert(expr.clone(), e);
                    continue;
                }
            };
            st.exprs += 1;
            let runner = |engine| {
                Runner::new(
                    expr,
                    &RunOptions::new(*link, &tables)
                        .engine(engine)
                        .netmask(Some(0xffff_ff00)),
                )
            };
            let mut interp = runner(Engine::Interp).expect("compiles as above");
            let mut compiled = runner(Engine::Compiled).expect("compiles as above");
            // The tc target too, on Ethernet captures: its own code path
            // (skb data, the VLAN metadata branch), run where a test run
            // can carry the whole frame (untruncated, 14 bytes or more).
            // Direction primitives read skb metadata a test run invents.
            let tc = (*link == LinkType::En10mb
                && !["inbound", "outbound", "ifindex"]
                    .iter()
                    .any(|w| expr.contains(w)))
            .then(|| compile_tc(expr, &tables))
            .and_then(|c| Some((c.object.load().ok()?, c.program)));
            // And as a socket filter: by the interpreter on whole frames as
            // a packet socket sees them (data at the link-layer header),
            // and by the kernel on raw IP packets (its test run puts data
            // at the network header).
            let metadata = ["inbound", "outbound", "ifindex"]
                .iter()
                .any(|w| expr.contains(w));
            let socket = (!metadata).then(|| compile_socket(expr, *link, &tables));
            let mut socket_interp = socket.as_ref().map(|c| {
                Interp::from_object(&c.object, c.program).expect("the interpreter takes it")
            });
            let socket_kernel = socket
                .as_ref()
                .filter(|_| *link == LinkType::Raw)
                .and_then(|c| Some((c.object.load().ok()?, c.program)));
            let mut kernel = match runner(Engine::Kernel) {
                Ok(r) => Some(r),
                Err(EngineError::Run(pcap2bpf::engine::RunError::NoKernel(_))) => {
                    kernel_ok = false;
                    None
                }
                Err(e) => {
                    st.bad.push(format!("cannot load {expr:?}: {e}"));
                    None
                }
            };
            for (path, packets, verdicts) in caps {
                let Some(want) = verdicts[expr].strip_prefix('V') else {
                    continue;
                };
                // The kernel again, the whole capture in batches (as `run`
                // runs it).
                let batched = kernel
                    .as_mut()
                    .map(|k| k.matches_all(&frames(packets)).map_err(|e| e.to_string()));
                if batched.is_some() {
                    st.batched_runs += packets.len();
                }
                for (i, (p, w)) in packets.iter().zip(want.bytes()).enumerate() {
                    let want = w == b'1';
                    let mut got: Vec<(&str, Result<bool, String>)> =
                        vec![("the IR", Ok(c.ir.eval(&p.data, p.wire_len, &|_| None)))];
                    got.push((
                        "the interpreter",
                        interp.matches(frame(p)).map_err(|e| e.to_string()),
                    ));
                    st.interp_runs += 1;
                    got.push((
                        "the compiled engine",
                        compiled.matches(frame(p)).map_err(|e| e.to_string()),
                    ));
                    if let Some(k) = &mut kernel {
                        got.push(("the kernel", k.matches(frame(p)).map_err(|e| e.to_string())));
                        st.runs += 1;
                    }
                    if let Some(b) = &batched {
                        got.push(("the kernel in batches", b.clone().map(|v| v[i])));
                    }
                    let whole = p.data.len() == p.wire_len as usize;
                    if let Some((loaded, prog)) = tc.as_ref().filter(|_| whole)
                        && (14..=3000).contains(&p.data.len())
                    {
                        match loaded.program(*prog).test_run(&TestRun::new(&p.data)) {
                            Ok(o) => {
                                got.push(("tc", Ok(o.retval == TC_ACT_OK as u32)));
                                st.tc_runs += 1;
                            }
                            // The skb test run refuses some short frames.
                            Err(RunError::InvalidArgument { .. }) => st.tc_refused += 1,
                            Err(e) => got.push(("tc", Err(e.to_string()))),
                        }
                    }
                    if let Some(si) = socket_interp.as_mut().filter(|_| whole) {
                        let skb = SkbCtx {
                            data_offset: 0,
                            wire_len: p.wire_len,
                            ..SkbCtx::default()
                        };
                        got.push((
                            "the socket filter (interpreter)",
                            si.run_socket_filter(&p.data, &skb)
                                .map(|r| r.retval != 0)
                                .map_err(|e| e.to_string()),
                        ));
                        st.socket_interp_runs += 1;
                    }
                    if let Some((loaded, prog)) = socket_kernel.as_ref().filter(|_| whole) {
                        let frame = raw_in_ethernet(&p.data);
                        if (14..=3000).contains(&frame.len()) {
                            match loaded.program(*prog).test_run(&TestRun::new(&frame)) {
                                Ok(o) => {
                                    got.push(("the socket filter (kernel)", Ok(o.retval != 0)));
                                    st.socket_kernel_runs += 1;
                                }
                                Err(e) => {
                                    got.push(("the socket filter (kernel)", Err(e.to_string())))
                                }
                            }
                        }
                    }
                    for (who, verdict) in got {
                        match verdict {
                            Ok(v) if v == want => {}
                            Ok(v) => st.bad.push(format!(
                                "{}#{}: {who} says {v}, libpcap {want}: {expr:?}",
                                path.display(),
                                i + 1
                            )),
                            Err(e) => st.bad.push(format!("{who} failed on {expr:?}: {e}")),
                        }
                    }
                }
            }
            if let Some(k) = &kernel {
                st.inexact += k.interp_fallbacks() as usize;
            }
            st.ir_only += interp.ir_fallbacks() as usize;
        }
    }
    eprintln!(
        "differential: {} programs (expression x link type), {} (program, packet) kernel runs ({} of them handed to the interpreter: longer than one test run takes), the same {} in batches, {} interpreter runs ({} decided by the IR alone: reads past 32 KiB), {} tc program runs on whole Ethernet frames ({} frames the skb test run refused), socket filters: {} interpreter runs on whole frames and {} kernel runs on raw IP packets, all also checked on the IR evaluator, {} unsupported expressions:",
        st.exprs,
        st.runs,
        st.inexact,
        st.batched_runs,
        st.interp_runs,
        st.ir_only,
        st.tc_runs,
        st.tc_refused,
        st.socket_interp_runs,
        st.socket_kernel_runs,
        st.unsupported.len()
    );
    for (e, why) in &st.unsupported {
        eprintln!("  unsupported {e:?}: {}", why.lines().next().unwrap_or(""));
    }
    if !kernel_ok {
        testbed::skip("no permission to load BPF programs: only the IR was checked");
    }
    let report = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("differential-report.txt");
    let _ = std::fs::write(&report, st.bad.join("\n"));
    let shown: Vec<_> = st.bad.iter().take(60).cloned().collect();
    assert!(
        st.bad.is_empty(),
        "{} disagreements:\n{}",
        st.bad.len(),
        shown.join("\n")
    );
}
