//! The kernel engine's batches: one `BPF_PROG_TEST_RUN` runs the filter
//! over up to [`MAX_PACKETS`] packets. A run costs more than a microsecond
//! of syscall, copies and set-up in the kernel; the filter itself takes
//! nanoseconds, so one run per packet spent nearly all its time on runs.
//!
//! The frame of a batch run holds the packets one after another, each
//! behind a [`HEADER`]: `{caplen, wirelen, next, bits, index}`, u32s in
//! host order. When the run starts, the first header is the metadata area
//! (`data_meta .. data`) and `data` is the first packet.
//!
//! The batch program is the filter compiled in the test-run mode (it reads
//! `{caplen, wirelen}` at `data_meta`, and every load checks `caplen` as
//! well as `data_end`, so the packets after the current one change
//! nothing), followed by one piece of code both verdicts jump to:
//! - the verdict becomes bit `index` of `bits`;
//! - for the last packet (`next` is 0), `bits` goes back into its header,
//!   which the kernel copies out first (the output frame starts at
//!   `data_meta`), and the program returns `XDP_PASS`;
//! - else `data` moves by `next` to the next packet: the metadata area is
//!   emptied first (`bpf_xdp_adjust_head` would carry it along) and put
//!   back over the next header, where `bits` and `index + 1` go, and the
//!   program tail-calls itself.
//!
//! Anything unexpected (a helper refusing, a failed tail call) returns
//! `XDP_ABORTED`; the caller checks the return value and the last index.

use bpf_builder::asm::{Annotation, Asm, Label};
use bpf_builder::ctx::XdpAction;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, JmpOp, Operand, Reg, Size};
use bpf_builder::load::Loaded;
use bpf_builder::map::{InitValue, MapSpec};
use bpf_builder::object::{Object, ProgId, ProgramType};
use bpf_builder::run::TestRun;

use super::xdp_md;
use crate::codegen::{self, CALLER_SLOT, EmitOptions, Target};
use crate::ir::{Ir, Verdict};
use crate::{Error, internal};

/// Packets in one batch at most: one bit each in `bits` (and a run may
/// follow at most 33 tail calls).
pub const MAX_PACKETS: usize = 32;

/// Bytes of the header in front of each packet.
pub const HEADER: usize = 20;

/// Offsets of the header's fields.
const NEXT: i16 = 8;
const BITS: i16 = 12;
const INDEX: i16 = 16;

/// The shortest frame a test run takes (an Ethernet header); shorter
/// packets are padded, their `caplen` keeping the verdict.
const MIN_FRAME: usize = 14;

/// Adds the batch program for `ir` (and the program array it tail-calls
/// itself through) to `object`.
pub fn add_program(object: &mut Object, ir: &Ir, source: &str) -> Result<ProgId, Error> {
    use Reg::*;
    let itself = object
        .add_map(MapSpec::prog_array("pcap_batch_self", 1))
        .map_err(internal)?;
    let mut a = Asm::new();
    a.set_source(Annotation::new("batch: keep the context"));
    a.stx(Size::DW, R10, CALLER_SLOT, R1);
    let verdict = a.new_label();
    let opts = EmitOptions::new(Target::Xdp).test_run_meta(true);
    codegen::emit(
        ir,
        &mut a,
        &opts,
        source,
        &mut |a: &mut Asm, v| {
            a.mov32(R7, i32::from(v == Verdict::MATCH));
            a.ja(verdict);
        },
        &mut codegen::no_actions,
    )?;

    let (abort, last) = (a.new_label(), a.new_label());
    a.bind(verdict);
    a.set_source(Annotation::new(
        "batch: record the verdict, go to the next packet",
    ));
    a.ldx(Size::DW, R6, R10, CALLER_SLOT);
    header(&mut a, abort);
    a.ldx(Size::W, R8, R2, BITS);
    a.ldx(Size::W, R9, R2, INDEX);
    a.alu32(AluOp::And, R9, (MAX_PACKETS - 1) as i32);
    a.alu64(AluOp::Lsh, R7, R9);
    a.alu32(AluOp::Or, R8, R7);
    a.ldx(Size::W, R7, R2, NEXT);
    a.jmp(JmpOp::Eq, R7, 0, last);
    // Empty the metadata area, move to the next packet, put the area back
    // over its header.
    for (helper, arg) in [
        (Helper::XdpAdjustMeta, Operand::Imm(HEADER as i32)),
        (Helper::XdpAdjustHead, Operand::Reg(R7)),
        (Helper::XdpAdjustMeta, Operand::Imm(-(HEADER as i32))),
    ] {
        a.mov64(R1, R6);
        a.mov32(R2, arg);
        a.call(helper);
        a.jmp32(JmpOp::Ne, R0, 0, abort);
    }
    header(&mut a, abort);
    a.stx(Size::W, R2, BITS, R8);
    a.alu32(AluOp::Add, R9, 1);
    a.stx(Size::W, R2, INDEX, R9);
    a.mov64(R1, R6);
    a.ld_map_fd(R2, itself);
    a.mov32(R3, 0);
    a.call(Helper::TailCall);
    a.bind(abort);
    a.mov32(R0, XdpAction::Aborted);
    a.exit();
    a.bind(last);
    a.stx(Size::W, R2, BITS, R8);
    a.mov32(R0, XdpAction::Pass);
    a.exit();

    let code = a.finish().map_err(internal)?;
    let prog = object
        .add_program("pcap_batch", ProgramType::Xdp, code)
        .map_err(internal)?;
    object
        .add_map_entry(itself, 0u32.to_ne_bytes(), InitValue::Prog(prog))
        .map_err(internal)?;
    Ok(prog)
}

/// r2 = `data_meta` (from the context in r6), checked to hold a header.
fn header(a: &mut Asm, abort: Label) {
    use Reg::*;
    a.ldx(Size::W, R2, R6, 8);
    a.ldx(Size::W, R3, R6, 0);
    a.mov64(R4, R2);
    a.add64(R4, HEADER as i32);
    a.jmp(JmpOp::Gt, R4, R3, abort);
}

/// One packet of a batch: its lengths and the bytes the filter may read.
#[derive(Clone, Copy)]
pub struct Item<'p> {
    /// Captured length.
    pub caplen: u32,
    /// Length on the wire.
    pub wire_len: u32,
    /// The first bytes of the packet: all the filter can read.
    pub bytes: &'p [u8],
}

/// Bytes `item` takes in a batch frame.
pub fn size_of(item: &Item<'_>) -> usize {
    HEADER + item.bytes.len().max(MIN_FRAME)
}

/// Runs the batch program over `items` (at most [`MAX_PACKETS`], whose
/// sizes add up to what one test run takes); returns the verdicts as
/// bits, the first packet's in bit 0.
pub fn run(loaded: &Loaded, prog: ProgId, items: &[Item<'_>]) -> Result<u32, String> {
    assert!(!items.is_empty() && items.len() <= MAX_PACKETS);
    let mut frame = Vec::with_capacity(items.iter().map(size_of).sum());
    for (i, item) in items.iter().enumerate() {
        let next = if i + 1 == items.len() {
            0
        } else {
            size_of(item)
        };
        for field in [item.caplen, item.wire_len, next as u32, 0, i as u32] {
            frame.extend_from_slice(&field.to_ne_bytes());
        }
        let start = frame.len();
        frame.extend_from_slice(item.bytes);
        frame.resize(start + item.bytes.len().max(MIN_FRAME), 0);
    }
    // The first header is the metadata area.
    let ctx = xdp_md(HEADER, frame.len());
    let last = items.last().map_or(0, size_of);
    let out = loaded
        .program(prog)
        .test_run(
            &TestRun::new(&frame)
                .ctx_in(&ctx)
                .data_out_capacity(last)
                .ctx_out_capacity(0),
        )
        .map_err(|e| e.to_string())?;
    let field = |at: i16| {
        out.data
            .get(at as usize..at as usize + 4)
            .map(|b| u32::from_ne_bytes(b.try_into().expect("four bytes")))
    };
    match (out.retval, field(INDEX), field(BITS)) {
        (r, Some(index), Some(bits))
            if r == XdpAction::Pass.value() as u32 && index as usize + 1 == items.len() =>
        {
            Ok(bits)
        }
        (r, index, _) => Err(format!(
            "the batch run stopped early (returned {r}, at packet {index:?} of {})",
            items.len()
        )),
    }
}
