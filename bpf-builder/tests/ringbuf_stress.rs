//! Ring buffer readers against a producer faster than they are: a
//! program run millions of times by `BPF_PROG_TEST_RUN` numbers every
//! record it tries to write, and marks in a map each number it could not
//! reserve room for. Every number is then either read exactly once, in
//! order, or marked lost by the kernel side: none is dropped silently or
//! read twice. One test reads two ring buffers through a [`RingBufSet`]
//! with the zero-copy callback, the other one buffer with the iterator.
//! A last test checks that the set's wait names exactly the buffers that
//! have data.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bpf_builder::asm::Asm;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, JmpOp, Reg::*, Size};
use bpf_builder::load::Loaded;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgId, ProgramType};
use bpf_builder::ringbuf::{RingBuf, RingBufSet};
use bpf_builder::run::TestRun;
use common::{XDP_PASS, mark_lost, next_sequence, require_bpf};

/// Sequence numbers the lost map can mark.
const MAX_SEQ: u32 = 1 << 20;
/// Runs of the producer per `BPF_PROG_TEST_RUN`, and how many calls.
const REPEAT: u32 = 50_000;
const CALLS: u32 = 8;

/// The producer's maps: `state` (u64 next sequence number, u64 records
/// it could not reserve), `lost` (one byte per sequence number, set when
/// that one could not be reserved) and the ring buffers.
struct Producer {
    loaded: Loaded,
    prog: ProgId,
    state: MapId,
    lost: MapId,
    rings: Vec<MapId>,
}

/// An XDP program that takes the next sequence number and writes a
/// `record_len`-byte record starting with it into ring buffer
/// `seq % rings.len()` (one or two), or counts and marks it lost.
fn producer(record_len: i32, ring_count: usize) -> Producer {
    let mut o = Object::new();
    let state = o.add_map(MapSpec::array("stress_state", 16, 1)).unwrap();
    let lost = o
        .add_map(MapSpec::array("stress_lost", 1, MAX_SEQ))
        .unwrap();
    let rings: Vec<MapId> = (0..ring_count)
        .map(|i| {
            o.add_map(MapSpec::ring_buf(format!("stress_rb{i}"), 4096))
                .unwrap()
        })
        .collect();
    let mut a = Asm::new();
    let out = a.new_label();
    let failed = a.new_label();
    let reserve = a.new_label();
    next_sequence(&mut a, state, out);
    // R7: this record's sequence number. R1: its ring buffer.
    a.ld_map_fd(R1, rings[0]);
    if let Some(&second) = rings.get(1) {
        a.mov64(R2, R7);
        a.alu64(AluOp::And, R2, 1);
        a.jmp(JmpOp::Eq, R2, 0, reserve);
        a.ld_map_fd(R1, second);
    }
    a.bind(reserve);
    a.mov64(R2, record_len);
    a.mov64(R3, 0);
    a.call(Helper::RingbufReserve);
    a.jmp(JmpOp::Eq, R0, 0, failed);
    a.stx(Size::DW, R0, 0, R7);
    a.mov64(R1, R0);
    a.mov64(R2, 0);
    a.call(Helper::RingbufSubmit);
    a.ja(out);
    a.bind(failed);
    mark_lost(&mut a, lost, out);
    a.bind(out);
    a.mov64(R0, XDP_PASS);
    a.exit();
    let prog = o
        .add_program("rb_stress", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    Producer {
        loaded: o.load().unwrap(),
        prog,
        state,
        lost,
        rings,
    }
}

impl Producer {
    /// Runs the program `REPEAT * CALLS` times, then sets `done`.
    fn run(&self, done: &AtomicBool) {
        let frame = [0u8; 64];
        let prog = self.loaded.program(self.prog);
        for _ in 0..CALLS {
            let out = prog.test_run(&TestRun::new(&frame).repeat(REPEAT)).unwrap();
            assert_eq!(out.retval, XDP_PASS as u32);
        }
        done.store(true, Ordering::Release);
    }

    /// (sequence numbers taken, records counted lost, lost marks).
    fn outcome(&self) -> (u64, u64, Vec<bool>) {
        let map = |id| self.loaded.map(id);
        common::sequence_outcome(map(self.state), map(self.lost), MAX_SEQ)
    }
}

/// Checks what the readers got against what the producer says: per
/// ring, strictly increasing numbers (in order, none twice); over all,
/// each number taken is read or marked lost, never both, never neither.
fn check(p: &Producer, read: &[Vec<u64>]) -> (u64, u64) {
    let (taken, lost, marks) = p.outcome();
    assert_eq!(taken, u64::from(REPEAT * CALLS), "every run took a number");
    assert!(taken <= u64::from(MAX_SEQ));
    let mut seen = vec![false; taken as usize];
    for (ring, seqs) in read.iter().enumerate() {
        for w in seqs.windows(2) {
            assert!(w[0] < w[1], "ring {ring}: {} read after {}", w[1], w[0]);
        }
        for &s in seqs {
            assert!(s < taken, "ring {ring}: number {s} never taken");
            assert_eq!(s as usize % read.len(), ring, "number {s} in ring {ring}");
            assert!(!seen[s as usize], "number {s} read twice");
            seen[s as usize] = true;
        }
    }
    let n_read: u64 = read.iter().map(|r| r.len() as u64).sum();
    for s in 0..taken as usize {
        assert!(
            seen[s] != marks[s],
            "number {s}: read {}, marked lost {}",
            seen[s],
            marks[s]
        );
    }
    assert_eq!(n_read + lost, taken, "read + lost = produced");
    assert!(lost > 0, "the producer outran the reader ({n_read} read)");
    assert!(n_read > 0);
    (n_read, lost)
}

/// The first u64 of a record: its sequence number.
fn seq_of(record: &[u8]) -> u64 {
    u64::from_ne_bytes(record[..8].try_into().unwrap())
}

#[test]
fn two_ring_buffers_through_a_set_lose_nothing_silently() {
    if !require_bpf() {
        return;
    }
    let p = Arc::new(producer(8, 2));
    let mut set = RingBufSet::new().unwrap();
    for &ring in &p.rings {
        set.add(RingBuf::new(p.loaded.map(ring)).unwrap()).unwrap();
    }
    let done = Arc::new(AtomicBool::new(false));
    let producer_thread = {
        let (p, done) = (Arc::clone(&p), Arc::clone(&done));
        std::thread::spawn(move || p.run(&done))
    };
    let mut read = vec![Vec::new(), Vec::new()];
    let mut woken_for = [0u32; 2];
    loop {
        let finished = done.load(Ordering::Acquire);
        for &i in set.wait(Some(Duration::from_millis(20))).unwrap() {
            woken_for[i] += 1;
        }
        set.drain(|i, r| read[i].push(seq_of(r))).unwrap();
        if finished && set.wait(Some(Duration::ZERO)).unwrap().is_empty() {
            break;
        }
        // A slow consumer: the producer fills the buffers meanwhile.
        std::thread::sleep(Duration::from_micros(200));
    }
    producer_thread.join().unwrap();
    assert!(
        woken_for.iter().all(|&n| n > 0),
        "woken for each: {woken_for:?}"
    );
    let (n_read, lost) = check(&p, &read);
    eprintln!("set: {n_read} read, {lost} lost, wakeups {woken_for:?}");
}

#[test]
fn one_ring_buffer_through_the_iterator_loses_nothing_silently() {
    if !require_bpf() {
        return;
    }
    let p = Arc::new(producer(128, 1));
    let mut ring = RingBuf::new(p.loaded.map(p.rings[0])).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let producer_thread = {
        let (p, done) = (Arc::clone(&p), Arc::clone(&done));
        std::thread::spawn(move || p.run(&done))
    };
    let mut read = vec![Vec::new()];
    loop {
        let finished = done.load(Ordering::Acquire);
        ring.wait(Some(Duration::from_millis(20))).unwrap();
        for record in ring.iter() {
            let record = record.unwrap();
            assert_eq!(record.len(), 128);
            read[0].push(seq_of(record));
        }
        if finished && ring.available() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    producer_thread.join().unwrap();
    let (n_read, lost) = check(&p, &read);
    eprintln!("iterator: {n_read} read, {lost} lost");
}

#[test]
fn a_set_says_which_buffers_have_data() {
    if !require_bpf() {
        return;
    }
    // Even numbers go to buffer 0, odd ones to buffer 1.
    let p = producer(8, 2);
    let mut set = RingBufSet::new().unwrap();
    for &ring in &p.rings {
        set.add(RingBuf::new(p.loaded.map(ring)).unwrap()).unwrap();
    }
    assert_eq!(set.len(), 2);
    let once = || {
        let prog = p.loaded.program(p.prog);
        prog.test_run(&TestRun::new(&[0u8; 64])).unwrap();
    };
    let short = Some(Duration::from_millis(20));
    assert_eq!(set.wait(short).unwrap(), &[] as &[usize], "nothing yet");
    once();
    assert_eq!(set.wait(short).unwrap(), &[0]);
    let mut got = Vec::new();
    assert_eq!(set.drain(|i, r| got.push((i, seq_of(r)))).unwrap(), 1);
    assert_eq!(set.wait(short).unwrap(), &[] as &[usize], "drained");
    once();
    assert_eq!(set.wait(short).unwrap(), &[1]);
    once();
    once();
    assert_eq!(set.wait(short).unwrap(), &[0, 1]);
    set.drain(|i, r| got.push((i, seq_of(r)))).unwrap();
    assert_eq!(got, [(0, 0), (0, 2), (1, 1), (1, 3)]);
    // A writer in another thread wakes the blocked wait.
    let prog = p.loaded.program(p.prog).try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        prog.test_run(&TestRun::new(&[0u8; 64])).unwrap();
    });
    let t = std::time::Instant::now();
    assert_eq!(set.wait(Some(Duration::from_secs(10))).unwrap(), &[0]);
    assert!(t.elapsed() < Duration::from_secs(5), "woken by the record");
    writer.join().unwrap();
}
