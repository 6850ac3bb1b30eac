//! The perf event array reader against a producer faster than it is: an
//! XDP program run hundreds of thousands of times by `BPF_PROG_TEST_RUN`
//! (on one CPU) numbers each sample it writes with
//! `bpf_perf_event_output` into a one-page ring whose size is no
//! multiple of the 40-byte records, and marks in a map each number the
//! kernel refused. Every number is then read exactly once, in order,
//! intact even when it wrapped around the ring's end, or marked lost; the
//! kernel's `PERF_RECORD_LOST` counts add up to the refusals.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bpf_builder::asm::Asm;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, JmpOp, Reg::*, Size};
use bpf_builder::load::Loaded;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgId, ProgramType};
use bpf_builder::perf_buffer::{PerfBuffer, PerfBufferError, PerfBufferOptions, PerfEvent};
use bpf_builder::run::TestRun;
use common::{XDP_PASS, mark_lost, next_sequence, require_bpf};

const MAX_SEQ: u32 = 1 << 20;
const REPEAT: u32 = 50_000;
const CALLS: u32 = 8;
/// Bytes the program writes: the number, three times it, and it xor a
/// constant.
const PAYLOAD: usize = 24;
const XOR: i32 = 0x5a5a_5a5a;

struct Producer {
    loaded: Loaded,
    prog: ProgId,
    state: MapId,
    lost: MapId,
    events: MapId,
}

fn producer() -> Producer {
    let cpus = bpf_builder::sys::bpf::possible_cpus().unwrap();
    let mut o = Object::new();
    let state = o.add_map(MapSpec::array("perf_state", 16, 1)).unwrap();
    let lost = o.add_map(MapSpec::array("perf_lost", 1, MAX_SEQ)).unwrap();
    let events = o
        .add_map(MapSpec::perf_event_array("perf_events", cpus))
        .unwrap();
    let mut a = Asm::new();
    let out = a.new_label();
    let failed = a.new_label();
    a.mov64(R6, R1);
    next_sequence(&mut a, state, out);
    a.stx(Size::DW, R10, -32, R7);
    a.mov64(R1, R7);
    a.alu64(AluOp::Mul, R1, 3);
    a.stx(Size::DW, R10, -24, R1);
    a.mov64(R1, R7);
    a.alu64(AluOp::Xor, R1, XOR);
    a.stx(Size::DW, R10, -16, R1);
    a.mov64(R1, R6);
    a.ld_map_fd(R2, events);
    // BPF_F_CURRENT_CPU, zero-extended: no packet bytes appended.
    a.mov32(R3, -1);
    a.mov64(R4, R10);
    a.add64(R4, -32);
    a.mov64(R5, PAYLOAD as i32);
    a.call(Helper::PerfEventOutput);
    a.jmp(JmpOp::Ne, R0, 0, failed);
    a.ja(out);
    a.bind(failed);
    mark_lost(&mut a, lost, out);
    a.bind(out);
    a.mov64(R0, XDP_PASS);
    a.exit();
    let prog = o
        .add_program("perf_stress", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    Producer {
        loaded: o.load().unwrap(),
        prog,
        state,
        lost,
        events,
    }
}

impl Producer {
    fn run(&self, times: u32) {
        let frame = [0u8; 64];
        let out = self
            .loaded
            .program(self.prog)
            .test_run(&TestRun::new(&frame).repeat(times))
            .unwrap();
        assert_eq!(out.retval, XDP_PASS as u32);
    }

    /// (numbers taken, refusals counted, refusal marks).
    fn outcome(&self) -> (u64, u64, Vec<bool>) {
        let map = |id| self.loaded.map(id);
        common::sequence_outcome(map(self.state), map(self.lost), MAX_SEQ)
    }
}

/// Pins the calling thread to the CPU it is on; returns that CPU.
fn pin_here() -> u32 {
    use rustix::thread::{CpuSet, sched_getcpu, sched_setaffinity};
    let cpu = sched_getcpu();
    let mut only = CpuSet::new();
    only.set(cpu);
    sched_setaffinity(None, &only).unwrap();
    cpu as u32
}

/// What the program wrote for number `seq`.
fn sample_of(seq: u64) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(seq.to_ne_bytes());
    v.extend(seq.wrapping_mul(3).to_ne_bytes());
    v.extend((seq ^ XOR as i64 as u64).to_ne_bytes());
    v
}

/// What the reader got.
struct Tally {
    cpu: u32,
    read: Vec<u64>,
    lost: u64,
}

impl Tally {
    fn take(&mut self, event: PerfEvent<'_>) {
        match event {
            PerfEvent::Sample { cpu, data } => {
                assert_eq!(cpu, self.cpu);
                let seq = u64::from_ne_bytes(data[..8].try_into().unwrap());
                // The kernel pads the raw size so that it and its u32
                // length fill u64s; the padding's bytes are whatever
                // the ring held.
                assert_eq!(data.len(), PAYLOAD + 4);
                assert_eq!(data[..PAYLOAD], sample_of(seq)[..], "sample {seq} intact");
                self.read.push(seq);
            }
            PerfEvent::Lost { cpu, count } => {
                assert_eq!(cpu, self.cpu);
                self.lost += count;
            }
        }
    }
}

#[test]
fn a_slow_reader_reads_each_sample_once_or_counts_it_lost() {
    if !require_bpf() {
        return;
    }
    let p = Arc::new(producer());
    let mut perf =
        PerfBuffer::new(p.loaded.map(p.events), &PerfBufferOptions::new().pages(1)).unwrap();
    assert_eq!(perf.ring_size(), 4096);
    let done = Arc::new(AtomicBool::new(false));
    let (flush_tx, flush_rx) = mpsc::channel::<()>();
    let (cpu_tx, cpu_rx) = mpsc::channel::<u32>();
    let producer_thread = {
        let (p, done) = (Arc::clone(&p), Arc::clone(&done));
        std::thread::spawn(move || {
            cpu_tx.send(pin_here()).unwrap();
            for _ in 0..CALLS {
                p.run(REPEAT);
            }
            done.store(true, Ordering::Release);
            // One more sample once the reader has emptied the ring: the
            // kernel reports the last refusals before it.
            flush_rx.recv().unwrap();
            p.run(1);
        })
    };
    let producer_cpu = cpu_rx.recv().unwrap();
    let last = u64::from(REPEAT * CALLS);
    let mut t = Tally {
        cpu: producer_cpu,
        read: Vec::new(),
        lost: 0,
    };
    loop {
        let finished = done.load(Ordering::Acquire);
        perf.wait(Some(Duration::from_millis(20))).unwrap();
        perf.drain(|e| t.take(e)).unwrap();
        if finished {
            break;
        }
        // A slow consumer: the producer fills the ring meanwhile.
        std::thread::sleep(Duration::from_micros(200));
    }
    perf.drain(|e| t.take(e)).unwrap();
    flush_tx.send(()).unwrap();
    producer_thread.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.read.last() != Some(&last) && Instant::now() < deadline {
        perf.wait(Some(Duration::from_millis(100))).unwrap();
        perf.drain(|e| t.take(e)).unwrap();
    }
    assert_eq!(t.read.last(), Some(&last), "the flushing sample came");
    let (read, lost_reported) = (t.read, t.lost);

    let (taken, refused, marks) = p.outcome();
    assert_eq!(taken, last + 1);
    for w in read.windows(2) {
        assert!(w[0] < w[1], "{} read after {}", w[1], w[0]);
    }
    let mut seen = vec![false; taken as usize];
    for &s in &read {
        seen[s as usize] = true;
    }
    for s in 0..taken as usize {
        assert!(
            seen[s] != marks[s],
            "number {s}: read {}, refused {}",
            seen[s],
            marks[s]
        );
    }
    assert_eq!(read.len() as u64 + refused, taken, "read + lost = produced");
    assert_eq!(
        lost_reported, refused,
        "PERF_RECORD_LOST counts the refusals"
    );
    assert_eq!(perf.lost(), refused);
    assert!(refused > 0, "the producer outran the reader");
    assert!(perf.wrapped() > 0, "records wrapped around the ring's end");
    eprintln!(
        "perf: {} read, {refused} lost, {} wrapped",
        read.len(),
        perf.wrapped()
    );
}

#[test]
fn only_perf_event_arrays_with_whole_rings_are_read() {
    if !require_bpf() {
        return;
    }
    let mut o = Object::new();
    let array = o.add_map(MapSpec::array("not_perf", 8, 1)).unwrap();
    let events = o.add_map(MapSpec::perf_event_array("perf_ev", 1)).unwrap();
    let loaded = o.load().unwrap();
    let e = PerfBuffer::new(loaded.map(array), &PerfBufferOptions::new()).unwrap_err();
    assert!(
        matches!(e, PerfBufferError::NotAPerfEventArray { .. }),
        "{e}"
    );
    let e = PerfBuffer::new(loaded.map(events), &PerfBufferOptions::new().pages(3)).unwrap_err();
    assert!(matches!(e, PerfBufferError::Options(_)), "{e}");
}
