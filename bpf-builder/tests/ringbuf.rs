//! The ring buffer reader on the real kernel: records written by a
//! program (with `bpf_ringbuf_reserve`/`submit`, `discard` and
//! `bpf_ringbuf_output`) read back in order and byte for byte, over many
//! passes of a one-page buffer (so records wrap around its end), a full
//! buffer refusing records until the reader frees room, and the blocking
//! wait with its timeout.

mod common;

use std::time::{Duration, Instant};

use bpf_builder::asm::Asm;
use bpf_builder::ctx::xdp_md;
use bpf_builder::handle::Program;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{JmpOp, Reg::*, Size};
use bpf_builder::load::Loaded;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgramType};
use bpf_builder::ringbuf::{RingBuf, RingBufError};
use bpf_builder::run::TestRun;
use common::{XDP_DROP, XDP_PASS, require_bpf};

/// The ring's size: one page.
const RING: u32 = 4096;
/// Frames the program reads: mode, sequence number, then payload.
const FRAME: usize = 128;
/// Mode byte: reserve a 40-byte record holding the sequence number in
/// each of its five u64s, and submit it.
const SUBMIT: u8 = 1;
/// Mode byte: reserve such a record and discard it.
const DISCARD: u8 = 2;
/// Mode byte: copy the frame's first [`OUTPUT_LEN`] bytes with
/// `bpf_ringbuf_output`.
const OUTPUT: u8 = 3;
const OUTPUT_LEN: i32 = 100;

/// XDP: writes a record as the frame's mode byte says; returns XDP_PASS
/// when the record went in (or was discarded), XDP_DROP when the ring
/// buffer was full.
fn writer(ring: MapId) -> bpf_builder::asm::Code {
    let mut a = Asm::new();
    let pass = a.new_label();
    let full = a.new_label();
    let output = a.new_label();
    let discard = a.new_label();
    a.mov64(R6, R1);
    a.ldx(Size::W, R2, R6, xdp_md::DATA);
    a.ldx(Size::W, R3, R6, xdp_md::DATA_END);
    a.mov64(R4, R2);
    a.add64(R4, FRAME as i32);
    a.jmp(JmpOp::Gt, R4, R3, pass);
    a.ldx(Size::B, R7, R2, 0);
    a.ldx(Size::B, R8, R2, 1);
    a.jmp(JmpOp::Eq, R7, i32::from(OUTPUT), output);
    a.ld_map_fd(R1, ring);
    a.mov64(R2, 40);
    a.mov64(R3, 0);
    a.call(Helper::RingbufReserve);
    a.jmp(JmpOp::Eq, R0, 0, full);
    for off in (0..40).step_by(8) {
        a.stx(Size::DW, R0, off, R8);
    }
    a.mov64(R1, R0);
    a.mov64(R2, 0);
    a.jmp(JmpOp::Eq, R7, i32::from(DISCARD), discard);
    a.call(Helper::RingbufSubmit);
    a.ja(pass);
    a.bind(discard);
    a.call(Helper::RingbufDiscard);
    a.ja(pass);
    // `bpf_ringbuf_output` takes no packet pointer: copy the bytes to
    // the stack first.
    a.bind(output);
    a.mov64(R1, R6);
    a.mov64(R2, 0);
    a.mov64(R3, R10);
    a.add64(R3, -104);
    a.mov64(R4, OUTPUT_LEN);
    a.call(Helper::XdpLoadBytes);
    a.jmp(JmpOp::Ne, R0, 0, full);
    a.ld_map_fd(R1, ring);
    a.mov64(R2, R10);
    a.add64(R2, -104);
    a.mov64(R3, OUTPUT_LEN);
    a.mov64(R4, 0);
    a.call(Helper::RingbufOutput);
    a.jmp(JmpOp::Ne, R0, 0, full);
    a.bind(pass);
    a.mov64(R0, XDP_PASS);
    a.exit();
    a.bind(full);
    a.mov64(R0, XDP_DROP);
    a.exit();
    a.finish().unwrap()
}

/// The writer with a one-page ring buffer, loaded.
fn load() -> (Loaded, MapId, bpf_builder::object::ProgId) {
    let mut o = Object::new();
    let ring = o.add_map(MapSpec::ring_buf("rb_test", RING)).unwrap();
    let prog = o
        .add_program("rb_writer", ProgramType::Xdp, writer(ring))
        .unwrap();
    (o.load().unwrap(), ring, prog)
}

/// The writer loaded, and a reader of its ring buffer.
fn load_with_reader() -> (Loaded, bpf_builder::object::ProgId, RingBuf) {
    let (loaded, ring, prog) = load();
    let reader = RingBuf::new(loaded.map(ring)).unwrap();
    (loaded, prog, reader)
}

/// Submits records numbered 0, 1, ... until the ring refuses them (at
/// most 100): how many went in.
fn fill(prog: &Program) -> usize {
    (0..100u8).filter(|&s| write(prog, SUBMIT, s)).count()
}

/// A frame of `mode` with sequence number `seq`; the payload depends on
/// both, so a record copied from the wrong frame shows.
fn frame(mode: u8, seq: u8) -> Vec<u8> {
    let mut f: Vec<u8> = (0..FRAME)
        .map(|i| (i as u8).wrapping_mul(7) ^ seq)
        .collect();
    f[0] = mode;
    f[1] = seq;
    f
}

/// Runs the writer on one frame: whether the record went in.
fn write(prog: &Program, mode: u8, seq: u8) -> bool {
    let out = prog.test_run(&TestRun::new(&frame(mode, seq))).unwrap();
    out.retval == XDP_PASS as u32
}

/// What a submitted record of sequence number `seq` holds.
fn reserved_record(seq: u8) -> Vec<u8> {
    (0..5).flat_map(|_| u64::from(seq).to_ne_bytes()).collect()
}

#[test]
fn records_come_back_in_order_across_many_wraps() {
    if !require_bpf() {
        return;
    }
    let (loaded, prog, mut reader) = load_with_reader();
    let prog = loaded.program(prog);
    assert_eq!(reader.size(), u64::from(RING));
    assert_eq!(
        reader.next_record().unwrap(),
        None,
        "a new ring buffer is empty"
    );
    let mut seq = 0u8;
    let mut written = 0u64;
    // 30 passes of 30 records of 48 or 108 bytes (a third of them
    // discarded): about 60 KiB through a 4 KiB ring, so records straddle
    // its end in every position mod 8.
    for pass in 0..30 {
        let mut expected = Vec::new();
        for i in 0..30 {
            let mode = match (pass + i) % 3 {
                0 => SUBMIT,
                1 => OUTPUT,
                _ => DISCARD,
            };
            assert!(write(prog, mode, seq), "room for pass {pass}, record {i}");
            written += if mode == OUTPUT { 108 } else { 48 };
            match mode {
                SUBMIT => expected.push(reserved_record(seq)),
                OUTPUT => expected.push(frame(OUTPUT, seq)[..OUTPUT_LEN as usize].to_vec()),
                _ => {}
            }
            seq = seq.wrapping_add(1);
        }
        let mut got = Vec::new();
        let n = reader.drain(|r| got.push(r.to_vec())).unwrap();
        assert_eq!(n, expected.len(), "pass {pass}");
        assert_eq!(got, expected, "pass {pass}");
        assert_eq!(reader.next_record().unwrap(), None);
        assert_eq!(reader.available(), 0);
    }
    assert!(
        written > 14 * u64::from(RING),
        "{written} bytes wrap the ring"
    );
}

#[test]
fn a_full_ring_refuses_records_until_read() {
    if !require_bpf() {
        return;
    }
    let (loaded, prog, mut reader) = load_with_reader();
    let prog = loaded.program(prog);
    // 48-byte records: 85 fit in 4096 bytes (85 * 48 = 4080).
    assert_eq!(fill(prog), 85);
    // A discarded record still takes room until the reader passes it.
    assert!(!write(prog, DISCARD, 0));
    // Reading one record frees nothing until the next read gives it back.
    assert_eq!(reader.next_record().unwrap(), Some(&reserved_record(0)[..]));
    assert!(!write(prog, SUBMIT, 200));
    assert_eq!(reader.next_record().unwrap(), Some(&reserved_record(1)[..]));
    assert!(write(prog, SUBMIT, 200), "the first record's room is free");
    let mut rest = Vec::new();
    reader.drain(|r| rest.push(r[0])).unwrap();
    let mut expected: Vec<u8> = (2..85).collect();
    expected.push(200);
    assert_eq!(rest, expected);
}

#[test]
fn a_drain_gives_room_back_as_it_goes_and_all_of_it_when_it_returns() {
    if !require_bpf() {
        return;
    }
    let (loaded, prog, mut reader) = load_with_reader();
    let prog = loaded.program(prog);
    // A full ring: 85 records of 48 bytes (4080 of 4096 bytes).
    assert_eq!(fill(prog), 85);
    // Inside the drain, once 30 records (1440 bytes) are read, the
    // producer has room again: the drain does not hold it all back
    // until it returns. The record written then comes in the same drain.
    let mut got = Vec::new();
    let mut room_during_drain = false;
    let n = reader
        .drain(|r| {
            got.push(r[0]);
            if got.len() == 31 {
                room_during_drain = write(prog, SUBMIT, 200);
            }
        })
        .unwrap();
    assert!(room_during_drain, "room given back during the drain");
    let mut expected: Vec<u8> = (0..85).collect();
    expected.push(200);
    assert_eq!(got, expected, "each record once, in order");
    assert_eq!(n, 86);
    // Once the drain returns, the whole ring is free again.
    assert_eq!(fill(prog), 85, "the drain gave every record's room back");
}

#[test]
fn a_handler_that_panics_loses_its_record_and_no_other() {
    if !require_bpf() {
        return;
    }
    let (loaded, prog, mut reader) = load_with_reader();
    let prog = loaded.program(prog);
    for seq in 0..10 {
        assert!(write(prog, SUBMIT, seq));
    }
    let mut first = Vec::new();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        reader.drain(|r| {
            assert_ne!(r[0], 4, "the handler gives up on record 4");
            first.push(r[0]);
        })
    }));
    assert!(panicked.is_err());
    assert_eq!(first, [0, 1, 2, 3]);
    let mut rest = Vec::new();
    reader.drain(|r| rest.push(r[0])).unwrap();
    assert_eq!(rest, [5, 6, 7, 8, 9], "records after the panic, none twice");
    // Their room is free: 85 records fit again.
    assert_eq!(fill(prog), 85);
}

#[test]
fn a_reader_waits_for_records_and_times_out() {
    if !require_bpf() {
        return;
    }
    let (loaded, ring, prog) = load();
    let mut reader = RingBuf::new(loaded.map(ring)).unwrap();
    let t = Instant::now();
    assert_eq!(
        reader
            .next_record_timeout(Duration::from_millis(100))
            .unwrap(),
        None
    );
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert!(!reader.wait(Some(Duration::from_millis(10))).unwrap());

    let prog = loaded.program(prog).try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        assert!(write(&prog, SUBMIT, 42));
    });
    let t = Instant::now();
    let record = reader.next_record_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(record, Some(&reserved_record(42)[..]));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "woken by the record, not the timeout"
    );
    writer.join().unwrap();
    assert_eq!(reader.next_record().unwrap(), None);
}

#[test]
fn only_ring_buffers_are_read() {
    if !require_bpf() {
        return;
    }
    let mut o = Object::new();
    let id = o.add_map(MapSpec::array("not_rb", 8, 1)).unwrap();
    let loaded = o.load().unwrap();
    let e = RingBuf::new(loaded.map(id)).unwrap_err();
    assert!(matches!(e, RingBufError::NotARingBuf { .. }), "{e}");
}
