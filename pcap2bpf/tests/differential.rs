//! The differential test: every expression of libpcap's test suite that
//! the system libpcap accepts (plus our own), over every packet of the
//! shared captures, must give libpcap's verdict, packet by packet.
//!
//! libpcap's verdicts come from `tests/verdicts.c` (`pcap_compile` against
//! the capture, optimised like tcpdump, then `pcap_offline_filter`). Ours
//! come from the generated XDP program in the test-run mode, run by the
//! kernel (`BPF_PROG_TEST_RUN`), and from the IR's own evaluator. The
//! interpreter engine plugs in as one more entry of `engines`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bpf_builder::run::TestRun;
use common::*;
use pcap2bpf::{CompileOptions, Compiled, LinkType, Target, compile};

const XDP_PASS: i32 = 2;
const XDP_DROP: i32 = 1;
const NETMASK: &str = "255.255.255.0";

/// Bytes of a frame `BPF_PROG_TEST_RUN` takes in the linear area (about a
/// page less head- and tailroom).
const LINEAR_LIMIT: usize = 3000;

/// Expressions libpcap accepts that we do not compile, with the reason.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "geneve",
        "geneve is not implemented by the code generator yet",
    ),
    (
        "byte",
        "`byte N & M`/`byte N | M`: libpcap 1.10.3 emits no load and tests a stale register",
    ),
];

/// A capture: its path, packets, and libpcap's answer per expression.
type Capture = (PathBuf, Vec<Packet>, BTreeMap<String, String>);

fn link_of(dlt: i32) -> Option<(LinkType, &'static str)> {
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

fn captures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/pcaps");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"));
    v.sort();
    v
}

/// The test-run input for a packet: `{caplen, wirelen}` metadata, then
/// the bytes the filter can read, padded to an Ethernet header.
fn input(p: &Packet, max_read: Option<u64>) -> (Vec<u8>, bool) {
    let caplen = p.data.len();
    let want = max_read.map_or(caplen, |m| caplen.min(m as usize));
    let exact = want <= LINEAR_LIMIT;
    let take = want.min(LINEAR_LIMIT);
    let mut v = Vec::with_capacity(8 + take.max(14));
    v.extend_from_slice(&(caplen as u32).to_ne_bytes());
    v.extend_from_slice(&p.wirelen.to_ne_bytes());
    v.extend_from_slice(&p.data[..take]);
    while v.len() < 8 + 14 {
        v.push(0);
    }
    (v, exact)
}

fn xdp_md(len: usize) -> Vec<u8> {
    let mut ctx = Vec::with_capacity(24);
    for f in [8u32, len as u32, 0, 0, 0, 0] {
        ctx.extend_from_slice(&f.to_ne_bytes());
    }
    ctx
}

struct Stats {
    exprs: usize,
    runs: usize,
    inexact: usize,
    unsupported: BTreeMap<String, String>,
    bad: Vec<String>,
}

fn compile_for(expr: &str, link: LinkType, tables: &pcap2bpf::Tables) -> Result<Compiled, String> {
    compile(
        expr,
        &CompileOptions {
            link,
            target: Target::Xdp,
            on_match: XDP_PASS,
            on_nomatch: XDP_DROP,
            test_run_meta: true,
            netmask: Some(0xffff_ff00),
            resolver: tables,
        },
    )
    .map_err(|e| e.render(expr))
}

#[test]
fn verdicts_match_libpcap() {
    if !Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/pcaps")
        .exists()
    {
        return skip("../shared/pcaps is missing");
    }
    let Some((bin, etc)) = build_helper("verdicts") else {
        return skip("cannot build the libpcap verdict helper (needs cc and libpcap-dev)");
    };
    let tsv = shared("accept.tsv").unwrap_or_default();
    let tables = tables();
    let mut st = Stats {
        exprs: 0,
        runs: 0,
        inexact: 0,
        unsupported: BTreeMap::new(),
        bad: Vec::new(),
    };
    let mut kernel_ok = true;
    // Captures by link type, with libpcap's verdicts for each expression.
    let mut by_link: BTreeMap<&'static str, Vec<Capture>> = BTreeMap::new();
    let mut exprs_of: BTreeMap<&'static str, (LinkType, Vec<String>)> = BTreeMap::new();
    for path in captures() {
        let Some((dlt, packets)) = read_capture(&path) else {
            panic!("cannot read {}", path.display());
        };
        let Some((link, name)) = link_of(dlt) else {
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
            return skip("cannot run the libpcap verdict helper (needs unshare as root)");
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
            let loaded = match c.object.load() {
                Ok(l) => Some(l),
                Err(e) => {
                    let e = e.to_string();
                    if e.contains("ermission") || e.contains("EPERM") {
                        kernel_ok = false;
                    } else {
                        st.bad.push(format!("cannot load {expr:?}: {e}"));
                    }
                    None
                }
            };
            let max_read = c.ir.max_read();
            for (path, packets, verdicts) in caps {
                let Some(want) = verdicts[expr].strip_prefix('V') else {
                    continue;
                };
                for (i, (p, w)) in packets.iter().zip(want.bytes()).enumerate() {
                    let want = w == b'1';
                    let ir_says = c.ir.eval(&p.data, p.wirelen, &|_| None);
                    if ir_says != want {
                        st.bad.push(format!(
                            "{}#{}: IR says {ir_says}, libpcap {want}: {expr:?}",
                            path.display(),
                            i + 1
                        ));
                    }
                    let Some(l) = &loaded else { continue };
                    let (data, exact) = input(p, max_read);
                    if !exact {
                        st.inexact += 1;
                        continue;
                    }
                    let ctx = xdp_md(data.len());
                    let prog = l.program(c.program);
                    let got = match prog.test_run(&TestRun::new(&data).ctx_in(&ctx)) {
                        Ok(o) => o.retval == XDP_PASS as u32,
                        Err(e) => {
                            st.bad.push(format!("test run failed on {expr:?}: {e}"));
                            continue;
                        }
                    };
                    st.runs += 1;
                    if got != want {
                        st.bad.push(format!(
                            "{}#{}: kernel says {got}, libpcap {want}: {expr:?}",
                            path.display(),
                            i + 1
                        ));
                    }
                }
            }
        }
    }
    eprintln!(
        "differential: {} programs (expression x link type), {} (program, packet) kernel runs, all also checked on the IR evaluator, {} packets too long to test exactly, {} unsupported expressions:",
        st.exprs,
        st.runs,
        st.inexact,
        st.unsupported.len()
    );
    for (e, why) in &st.unsupported {
        eprintln!("  unsupported {e:?}: {}", why.lines().next().unwrap_or(""));
    }
    if !kernel_ok {
        skip("no permission to load BPF programs: only the IR was checked");
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
