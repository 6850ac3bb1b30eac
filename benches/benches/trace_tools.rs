//! Start-up of the tracing tools against bpftrace running the same
//! one-liners: the time from starting the process to its probe being
//! live, and the process's peak resident memory, in one run with the
//! ratios side by side.
//!
//! - syscount: until the line a tool prints once attached (ours:
//!   "Tracing syscalls, ..."; bpftrace: "Attaching 1 probe...", which it
//!   prints just before attaching: this favours bpftrace by its attach
//!   time). bpftrace runs
//!   `tracepoint:raw_syscalls:sys_enter { @[pid, comm] = count(); }`.
//! - opensnoop: until the tool prints an open that this bench makes (it
//!   opens a unique missing path every millisecond from the start), so
//!   both are timed to a live probe. bpftrace runs
//!   `tracepoint:syscalls:sys_enter_openat { printf("%d %s %s\n", pid,
//!   comm, str(args->filename)); }`.
//!
//! Our tools run as this executable re-run with `--run-tool NAME` (the
//! same code as `examples/src/bin`, built with the bench profile). Runs
//! alternate between the two; the table shows medians. Peak memory is
//! the process's `VmHWM` just before it is stopped with SIGINT.
//!
//! Needs root; skips (with a reason) without bpftrace. `cargo bench -p
//! benches --bench trace_tools [-- RUNS]` (default 7).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use benches::median;
use examples::tools;

const SYSCOUNT_BT: &str = "tracepoint:raw_syscalls:sys_enter { @[pid, comm] = count(); }";
const OPENSNOOP_BT: &str = "tracepoint:syscalls:sys_enter_openat { printf(\"%d %s %s\\n\", pid, comm, str(args->filename)); }";

/// One start: time to live and peak RSS in KiB.
#[derive(Clone, Copy)]
struct Sample {
    live: Duration,
    rss_kib: u64,
}

/// How to know a tool is live.
enum Live {
    /// A line starting with this.
    Line(&'static str),
    /// A line containing the path this bench keeps opening.
    Opens,
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts `cmd`, waits until it is live, measures, stops it.
fn measure(mut cmd: Command, live: &Live, tag: &str) -> Sample {
    let opener = Arc::new(AtomicBool::new(true));
    let path = format!("/tmp/trace-tools-bench-{tag}-{}", std::process::id());
    if let Live::Opens = live {
        let (go, path) = (opener.clone(), path.clone());
        std::thread::spawn(move || {
            while go.load(Ordering::Relaxed) {
                let _ = std::fs::File::open(&path);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
    }
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start the tool");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let live_at = loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok((at, line)) => {
                let hit = match live {
                    Live::Line(prefix) => line.starts_with(prefix),
                    Live::Opens => line.contains(&path),
                };
                if hit {
                    break at;
                }
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                opener.store(false, Ordering::Relaxed);
                panic!("{cmd:?} never got live");
            }
        }
    };
    opener.store(false, Ordering::Relaxed);
    let rss_kib = peak_rss_kib(child.id());
    stop(child);
    // Keep draining so the reader thread ends.
    while rx.recv_timeout(Duration::from_millis(50)).is_ok() {}
    Sample {
        live: live_at - started,
        rss_kib,
    }
}

fn ours(tool: &str) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--run-tool", tool]);
    c
}

fn bpftrace(program: &str) -> Command {
    let mut c = Command::new("bpftrace");
    c.args(["-e", program]);
    c
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--run-tool") {
        let rest = args[3..].to_vec();
        let main = match args[2].as_str() {
            "syscount" => tools::syscount::main,
            "opensnoop" => tools::opensnoop::main,
            other => panic!("no tool {other}"),
        };
        if let Err(e) = main(rest) {
            eprintln!("{}: {e}", args[2]);
            std::process::exit(1);
        }
        return;
    }
    let runs: usize = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(7);
    if !testbed::bpf_privileged("trace_tools bench") {
        return;
    }
    if Command::new("bpftrace").arg("--version").output().is_err() {
        println!("skipped: bpftrace is not installed (Debian package bpftrace, see .ci/setup)");
        return;
    }
    let cases: [(&str, Command, Command, Live, Live); 2] = [
        (
            "syscount",
            ours("syscount"),
            bpftrace(SYSCOUNT_BT),
            Live::Line("Tracing syscalls"),
            Live::Line("Attaching 1 probe"),
        ),
        (
            "opensnoop",
            ours("opensnoop"),
            bpftrace(OPENSNOOP_BT),
            Live::Opens,
            Live::Opens,
        ),
    ];
    println!("trace tools: start to live, median of {runs} alternating runs; peak RSS");
    println!(
        "{:<10} {:>10} {:>14} {:>9} {:>10} {:>14} {:>9}",
        "tool", "ours ms", "bpftrace ms", "ratio", "ours MiB", "bpftrace MiB", "ratio"
    );
    for (name, a, b, la, lb) in cases {
        let (mut ta, mut tb, mut ra, mut rb) = (vec![], vec![], vec![], vec![]);
        // One of each first, not counted: page cache and kernel BTF warm.
        measure(fresh(&a), &la, "warm");
        measure(fresh(&b), &lb, "warm");
        for i in 0..runs {
            let sa = measure(fresh(&a), &la, &format!("o{i}"));
            let sb = measure(fresh(&b), &lb, &format!("b{i}"));
            ta.push(sa.live.as_secs_f64() * 1e3);
            tb.push(sb.live.as_secs_f64() * 1e3);
            ra.push(sa.rss_kib as f64 / 1024.0);
            rb.push(sb.rss_kib as f64 / 1024.0);
        }
        let (ta, tb, ra, rb) = (
            median(&mut ta),
            median(&mut tb),
            median(&mut ra),
            median(&mut rb),
        );
        println!(
            "{name:<10} {ta:>10.1} {tb:>14.1} {:>9} {ra:>10.1} {rb:>14.1} {:>9}",
            format!("1/{:.0}", tb / ta),
            format!("1/{:.1}", rb / ra),
        );
    }
}

/// A fresh copy of `c` (a `Command` runs once per spawn here).
fn fresh(c: &Command) -> Command {
    let mut n = Command::new(c.get_program());
    n.args(c.get_args());
    n
}
