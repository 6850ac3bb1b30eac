//! The XDP dispatcher (issue 15), in one run:
//!
//! 1. time to add the Nth program, N = 1..10: `dispatcher::join` (a new
//!    dispatcher built, loaded and swapped in, every member linked to it),
//!    beside `xdp-loader load` doing the same for libxdp when xdp-tools is
//!    installed (its time includes starting the process);
//! 2. nanoseconds per packet through `BPF_PROG_TEST_RUN` (repeat) of a
//!    dispatcher with 1, 5 and 10 members that all pass the frame, against
//!    the same programs run alone one after the other (the sum of their
//!    times), interleaved round by round on the same frame.
//!
//! Joining loads extension programs (`BPF_PROG_TYPE_EXT`); on a kernel
//! that refuses them the bench says so and stops.
//!
//! Nothing here asserts a time: ratios are printed beside the anchors.
//!
//! Run: `cargo bench -p benches --bench dispatcher` (needs root).

use std::time::Instant;

use benches::median;
use bpf_builder::asm::Asm;
use bpf_builder::attach::dispatcher::{self, JoinOptions};
use bpf_builder::handle::Program;
use bpf_builder::insn::{AluOp, Reg};
use bpf_builder::kernel_id::KernelProgId;
use bpf_builder::object::{Object, ProgId, ProgramType};
use bpf_builder::run::TestRun;
use bpf_builder::sys::bpf as sys;
use testbed::Netns;
use testbed::xdp_tools::{LoadOptions, XdpObjects, XdpTools, empty_dispatcher};

const REPEAT: u32 = 100_000;
const ROUNDS: usize = 9;
const MAX: usize = dispatcher::MAX_SLOTS;

/// Member `i`: a few instructions of work, then XDP_PASS.
fn member(i: usize) -> (Object, ProgId) {
    let mut a = Asm::new();
    a.ldx(bpf_builder::insn::Size::W, Reg::R2, Reg::R1, 0);
    a.mov64(Reg::R0, i as i32);
    a.alu64(AluOp::Add, Reg::R0, Reg::R2);
    a.mov64(Reg::R0, 2);
    a.exit();
    let mut o = Object::new();
    let p = o
        .add_program(
            &format!("bench_m{i}"),
            ProgramType::Xdp,
            a.finish().unwrap(),
        )
        .unwrap();
    (o, p)
}

fn ns_per_packet(prog: &Program, frame: &[u8]) -> f64 {
    let out = prog.test_run(&TestRun::new(frame).repeat(REPEAT)).unwrap();
    assert_eq!(out.retval, 2, "every member passes");
    out.duration_ns as f64
}

fn by_id(id: KernelProgId) -> Program {
    Program::from_fd(sys::prog_get_fd_by_id(id).unwrap()).unwrap()
}

fn main() {
    if !testbed::privileged("the dispatcher bench")
        || !testbed::features::require_extensions("the dispatcher bench")
    {
        return;
    }
    let ns = Netns::new().unwrap();
    let pair = ns.veth_pair("va", "vb").unwrap();

    println!("1. time to add the Nth program (ms)");
    println!(
        "{:>3} {:>10} {:>12} {:>7}",
        "N", "ours", "xdp-loader", "ratio"
    );
    let theirs_dir = XdpObjects::new().ok();
    let tools =
        XdpTools::available("xdp-loader as the anchor").then(|| XdpTools::new(&ns, &pair.a));
    let mut members = Vec::new();
    for n in 1..=MAX {
        let (o, p) = member(n);
        let t = Instant::now();
        let joined = ns
            .run(|| dispatcher::join("vb", &o, p, &JoinOptions::new()))
            .unwrap()
            .unwrap();
        let ours = t.elapsed().as_secs_f64() * 1e3;
        members.push(joined);
        let theirs = match (&tools, &theirs_dir) {
            (Some(tools), Some(dir)) => {
                let object = dir.counter(&format!("xdp_b{n}"), 50).unwrap();
                let t = Instant::now();
                tools.load(&object, &LoadOptions::default()).unwrap();
                Some(t.elapsed().as_secs_f64() * 1e3)
            }
            _ => None,
        };
        match theirs {
            Some(th) => println!("{n:>3} {ours:>10.2} {th:>12.2} {:>7.2}", ours / th),
            None => println!("{n:>3} {ours:>10.2} {:>12} {:>7}", "-", "-"),
        }
    }
    drop(tools);
    empty_dispatcher(&ns, "vb");
    drop(members);

    println!(
        "\n2. ns per packet, BPF_PROG_TEST_RUN repeat {REPEAT}, median of {ROUNDS}, interleaved"
    );
    println!(
        "{:>3} {:>12} {:>12} {:>7}",
        "N", "dispatcher", "alone (sum)", "ratio"
    );
    let frame = [0u8; 64];
    for n in [1, 5, MAX] {
        // A dispatcher of exactly n members: the first n, joined again.
        let chain: Vec<_> = (0..n).map(member).collect();
        let ns2 = Netns::new().unwrap();
        let _pair2 = ns2.veth_pair("va", "vb").unwrap();
        let mut last = None;
        for (o, p) in &chain {
            last = Some(
                ns2.run(|| dispatcher::join("vb", o, *p, &JoinOptions::new()))
                    .unwrap()
                    .unwrap(),
            );
        }
        let dispatcher = by_id(last.as_ref().unwrap().chain.dispatcher);
        let alone: Vec<Program> = chain
            .iter()
            .map(|(o, p)| {
                let loaded = o.load().unwrap();
                loaded.program(*p).try_clone().unwrap()
            })
            .collect();
        let (mut d, mut s) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            d.push(ns_per_packet(&dispatcher, &frame));
            s.push(alone.iter().map(|p| ns_per_packet(p, &frame)).sum());
        }
        let (d, s) = (median(&mut d), median(&mut s));
        println!("{n:>3} {d:>12.1} {s:>12.1} {:>7.2}", d / s);
        empty_dispatcher(&ns2, "vb");
        drop(last);
    }
}
