//! Ring buffer readers (issue 14, item 3): records per second drained by
//! `bpf_builder::ringbuf::RingBuf::drain` and by a C reader on libbpf's
//! `ring_buffer__poll` (Debian's libbpf-dev, `benches/c/ringbuf_reader.c`,
//! built here with `cc -O2 -lbpf`), for 8-byte and 128-byte records.
//!
//! One producer for both: an XDP program run with `BPF_PROG_TEST_RUN`
//! (repeat) fills a 64 MiB ring buffer with numbered records, then its
//! reader drains it while the clock runs. Each reader is a process of
//! its own (ours is this bench binary started again) with a copy of the
//! producer and its ring, mapped once for all rounds; they take turns,
//! round by round, after a first round that is not counted. Each reader
//! gets the map by id and reports its own time (process start-up and
//! pipes are not counted); both read each record's first u64, and their
//! sums must agree.
//!
//! Nothing here asserts a time: the ratio is printed beside the anchors.
//! Without root, or without libbpf-dev, the bench says so and stops.
//!
//! Run: `cargo bench -p benches --bench ringbuf` (needs root).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use benches::median;
use bpf_builder::asm::Asm;
use bpf_builder::handle::Map;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AtomicOp, JmpOp, Reg::*, Size};
use bpf_builder::kernel_id::KernelMapId;
use bpf_builder::load::Loaded;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgId, ProgramType};
use bpf_builder::ringbuf::RingBuf;
use bpf_builder::run::TestRun;

const RING: u32 = 64 << 20;
const ROUNDS: usize = 11;
const XDP_PASS: i32 = 2;
const XDP_DROP: i32 = 1;

/// An XDP program that reserves a `len`-byte record, writes the next
/// number into its first u64 and submits it; XDP_DROP when full.
fn producer(len: i32) -> (Loaded, ProgId, MapId) {
    let mut o = Object::new();
    let seq = o.add_map(MapSpec::array("bench_seq", 8, 1)).unwrap();
    let ring = o.add_map(MapSpec::ring_buf("bench_rb", RING)).unwrap();
    let mut a = Asm::new();
    let full = a.new_label();
    a.st(Size::W, R10, -4, 0);
    a.ld_map_fd(R1, seq);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, full);
    a.mov64(R7, 1);
    a.atomic(AtomicOp::FetchAdd, Size::DW, R0, 0, R7);
    a.ld_map_fd(R1, ring);
    a.mov64(R2, len);
    a.mov64(R3, 0);
    a.call(Helper::RingbufReserve);
    a.jmp(JmpOp::Eq, R0, 0, full);
    a.stx(Size::DW, R0, 0, R7);
    a.mov64(R1, R0);
    a.mov64(R2, 0);
    a.call(Helper::RingbufSubmit);
    a.mov64(R0, XDP_PASS);
    a.exit();
    a.bind(full);
    a.mov64(R0, XDP_DROP);
    a.exit();
    let prog = o
        .add_program("bench_rb_fill", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    (o.load().expect("the producer loads"), prog, ring)
}

/// Fills the ring with `n` records (it must be empty and hold them).
fn fill(loaded: &Loaded, prog: ProgId, n: u32) {
    let out = loaded
        .program(prog)
        .test_run(&TestRun::new(&[0u8; 64]).repeat(n))
        .unwrap();
    assert_eq!(out.retval, XDP_PASS as u32, "the last record had room");
}

/// Set (to a map id) in the child process that runs our reader.
const READER_ENV: &str = "RINGBUF_BENCH_READER";

/// Our reader, in a process of its own like the C one: for each count
/// on stdin, drains that many records of ring buffer map `map_id` and
/// prints the nanoseconds and the sum of the records' first u64s.
fn our_reader_process(map_id: u32) {
    let fd = bpf_builder::sys::bpf::map_get_fd_by_id(KernelMapId::new(map_id)).unwrap();
    let map = Map::from_fd(fd).unwrap();
    let mut rb = RingBuf::new(&map).unwrap();
    println!("ready");
    for line in std::io::stdin().lines() {
        let n: u64 = line.unwrap().trim().parse().unwrap();
        let (mut count, mut sum) = (0u64, 0u64);
        let t = Instant::now();
        while count < n {
            rb.wait(Some(Duration::from_secs(1))).unwrap();
            rb.drain(|r| {
                sum = sum.wrapping_add(u64::from_ne_bytes(r[..8].try_into().unwrap()));
                count += 1;
            })
            .unwrap();
        }
        println!("{} {sum}", t.elapsed().as_nanos());
    }
}

/// A reader process (ours or the C one), started on the map.
struct Reader {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Reader {
    fn start(mut command: Command) -> Reader {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the reader starts");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the reader opened the ring");
        Reader {
            child,
            stdin,
            stdout,
        }
    }

    fn drain(&mut self, n: u64) -> (Duration, u64) {
        writeln!(self.stdin, "{n}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let mut fields = line.split_whitespace().map(|f| f.parse::<u64>().unwrap());
        let ns = fields.next().expect("a time");
        let sum = fields.next().expect("a sum");
        (Duration::from_nanos(ns), sum)
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds the C reader; `None` (with the reason printed) when libbpf-dev
/// or a C compiler is missing.
fn build_c_reader() -> Option<PathBuf> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("c/ringbuf_reader.c");
    let exe =
        std::env::temp_dir().join(format!("bpf-builder-ringbuf-reader-{}", std::process::id()));
    match Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg("-lbpf")
        .output()
    {
        Ok(out) if out.status.success() => Some(exe),
        Ok(out) => {
            println!(
                "skipped: cannot build the libbpf reader (is libbpf-dev installed?):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            None
        }
        Err(e) => {
            println!("skipped: no C compiler (cc: {e})");
            None
        }
    }
}

fn best(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

fn main() {
    if let Ok(id) = std::env::var(READER_ENV) {
        our_reader_process(id.parse().expect("a map id"));
        return;
    }
    if !testbed::bpf_privileged("the ring buffer reader benchmark") {
        return;
    }
    let Some(c_exe) = build_c_reader() else {
        return;
    };
    println!(
        "records per second drained from a pre-filled ring, median and best of {ROUNDS} \
         rounds (ours = RingBuf::drain, libbpf = ring_buffer__poll):"
    );
    println!(
        "{:>8} {:>9} {:>6} {:>14} {:>14} {:>12}",
        "record", "records", "", "ours", "libbpf", "ours/libbpf"
    );
    for (len, n) in [(8, 2_000_000u32), (128, 400_000)] {
        // The same producer twice, each with a ring of its own: one for
        // each reader, which keeps its mapping across the rounds.
        let (c_obj, c_prog, c_ring) = producer(len);
        let (ours_obj, ours_prog, ours_ring) = producer(len);
        let mut c_command = Command::new(&c_exe);
        c_command.arg(c_obj.map(c_ring).id().unwrap().get().to_string());
        let mut c = Reader::start(c_command);
        let mut ours_command = Command::new(std::env::current_exe().unwrap());
        ours_command.env(
            READER_ENV,
            ours_obj.map(ours_ring).id().unwrap().get().to_string(),
        );
        let mut ours = Reader::start(ours_command);
        let (mut ours_rates, mut c_rates) = (Vec::new(), Vec::new());
        // Round 0 faults the mappings' pages in and is not counted; the
        // readers then take turns, round by round.
        for round in 0..=ROUNDS {
            let mut run_c = || {
                fill(&c_obj, c_prog, n);
                c.drain(u64::from(n))
            };
            let mut run_ours = || {
                fill(&ours_obj, ours_prog, n);
                ours.drain(u64::from(n))
            };
            // Who goes first alternates (ABBA), so neither always runs
            // right after the other.
            let ((t_ours, ours_sum), (t_c, c_sum)) = if round % 2 == 0 {
                let o = run_ours();
                (o, run_c())
            } else {
                let c = run_c();
                (run_ours(), c)
            };
            assert_eq!(ours_sum, c_sum, "both read every record");
            if round > 0 {
                ours_rates.push(f64::from(n) / t_ours.as_secs_f64());
                c_rates.push(f64::from(n) / t_c.as_secs_f64());
            }
        }
        for (what, o, l) in [
            (
                "median",
                median(&mut ours_rates.clone()),
                median(&mut c_rates.clone()),
            ),
            ("best", best(&ours_rates), best(&c_rates)),
        ] {
            println!(
                "{:>7}B {n:>9} {what:>6} {:>12.2}M/s {:>12.2}M/s {:>12.2}",
                len,
                o / 1e6,
                l / 1e6,
                o / l
            );
        }
    }
    let _ = std::fs::remove_file(&c_exe);
}
