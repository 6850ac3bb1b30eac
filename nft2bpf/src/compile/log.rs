//! `log`: a record of the packet in a ring buffer, for user space to
//! print with the statement's prefix and level (kept in the log table,
//! by the record's slot).
//!
//! A record is [`RECORD_SIZE`] bytes: a header of native-endian fields
//! (the `log` statement's slot, the packet's length as nft's
//! `skb->len` counts it, the number of packet bytes copied, the
//! interface index, the time from `bpf_ktime_get_ns`), then the first
//! [`CAPTURE`] bytes of the frame, or fewer when the frame is shorter.
//! A full ring buffer drops the record and counts the drop in a per-CPU
//! counter.

use bpf_builder::asm::Asm;
use bpf_builder::ctx::{sk_buff, xdp_md};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AtomicOp, JmpOp, Reg::*, Size};
use bpf_builder::object::MapId;
use pktmatch::Target;
use pktmatch::codegen::{CALLER_SLOT, CONTEXT_SLOT};

use super::actions::KEY_SLOT;

/// Bytes of the frame a record holds at most.
pub const CAPTURE: u32 = 128;
/// Bytes of a record's header.
pub const HEADER: u32 = 24;
/// Bytes of a record (header and capture, whatever the frame's length).
pub const RECORD_SIZE: u32 = HEADER + CAPTURE;

/// Offsets of the header's fields.
const SLOT: i16 = 0;
const LEN: i16 = 4;
const CAPLEN: i16 = 8;
const IFINDEX: i16 = 12;
const TIMESTAMP: i16 = 16;

/// One log record, as read from the ring buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The `log` statement's slot in the log table.
    pub slot: u32,
    /// The packet's length as nft counts it (`skb->len`).
    pub len: u32,
    /// The interface the packet is on.
    pub ifindex: u32,
    /// When it was logged (`bpf_ktime_get_ns`: `CLOCK_MONOTONIC`).
    pub timestamp_ns: u64,
    /// The frame's first bytes (at most [`CAPTURE`]).
    pub packet: Vec<u8>,
}

impl LogRecord {
    /// Reads a record's bytes; `None` if they are not a record.
    pub fn parse(bytes: &[u8]) -> Option<LogRecord> {
        let u32_at = |off: i16| {
            let off = off as usize;
            Some(u32::from_ne_bytes(
                bytes.get(off..off + 4)?.try_into().ok()?,
            ))
        };
        let caplen = u32_at(CAPLEN)?;
        let start = HEADER as usize;
        let ts = TIMESTAMP as usize;
        Some(LogRecord {
            slot: u32_at(SLOT)?,
            len: u32_at(LEN)?,
            ifindex: u32_at(IFINDEX)?,
            timestamp_ns: u64::from_ne_bytes(bytes.get(ts..ts + 8)?.try_into().ok()?),
            packet: bytes
                .get(start..start + caplen.min(CAPTURE) as usize)?
                .to_vec(),
        })
    }
}

/// The maps a `log` writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogMaps {
    /// The ring buffer of records.
    pub ring: MapId,
    /// Per-CPU `u64` at index 0: records dropped because the ring
    /// buffer was full.
    pub drops: MapId,
}

/// Emits a `log` of statement `slot` for `target`; the packet's length
/// is the `u32` at stack offset `len_slot`. Falls through; clobbers
/// r0-r5, the caller's slot and the key slot.
pub fn emit(a: &mut Asm, maps: LogMaps, slot: u32, target: Target, len_slot: i16) {
    let done = a.new_label();
    let reserved = a.new_label();
    a.ld_map_fd(R1, maps.ring);
    a.mov64(R2, RECORD_SIZE as i32);
    a.mov64(R3, 0);
    a.call(Helper::RingbufReserve);
    a.jmp(JmpOp::Ne, R0, 0, reserved);
    count_drop(a, maps.drops, done);
    a.bind(reserved);
    a.stx(Size::DW, R10, CALLER_SLOT, R0);
    a.st(Size::W, R0, SLOT, slot as i32);
    a.ldx(Size::W, R1, R10, len_slot);
    a.stx(Size::W, R0, LEN, R1);
    a.ldx(Size::DW, R2, R10, CONTEXT_SLOT);
    let ifindex = match target {
        Target::Xdp => xdp_md::INGRESS_IFINDEX,
        _ => sk_buff::IFINDEX,
    };
    a.ldx(Size::W, R1, R2, ifindex);
    a.stx(Size::W, R0, IFINDEX, R1);
    a.call(Helper::KtimeGetNs);
    a.ldx(Size::DW, R1, R10, CALLER_SLOT);
    a.stx(Size::DW, R1, TIMESTAMP, R0);
    copy_packet(a, target);
    a.ldx(Size::DW, R1, R10, CALLER_SLOT);
    a.mov64(R2, 0);
    a.call(Helper::RingbufSubmit);
    a.bind(done);
}

/// Copies the frame's first bytes into the record (whose pointer is in
/// the caller's slot) and sets its capture length: 0 if the copy fails.
fn copy_packet(a: &mut Asm, target: Target) {
    let small = a.new_label();
    let copied = a.new_label();
    // The frame's length: all of it, fragments included.
    a.ldx(Size::DW, R1, R10, CONTEXT_SLOT);
    let load_bytes = match target {
        Target::Xdp => {
            a.call(Helper::XdpGetBuffLen);
            a.mov64(R4, R0);
            Helper::XdpLoadBytes
        }
        _ => {
            a.ldx(Size::W, R4, R1, sk_buff::LEN);
            Helper::SkbLoadBytes
        }
    };
    a.jmp(JmpOp::Le, R4, CAPTURE as i32, small);
    a.mov64(R4, CAPTURE as i32);
    a.bind(small);
    a.ldx(Size::DW, R3, R10, CALLER_SLOT);
    a.stx(Size::W, R3, CAPLEN, R4);
    a.jmp(JmpOp::Eq, R4, 0, copied);
    a.add64(R3, HEADER as i32);
    a.ldx(Size::DW, R1, R10, CONTEXT_SLOT);
    a.mov64(R2, 0);
    a.call(load_bytes);
    a.jmp(JmpOp::Eq, R0, 0, copied);
    a.ldx(Size::DW, R1, R10, CALLER_SLOT);
    a.st(Size::W, R1, CAPLEN, 0);
    a.bind(copied);
}

/// Adds 1 to the drop counter; then goes to `done`.
fn count_drop(a: &mut Asm, drops: MapId, done: bpf_builder::asm::Label) {
    a.st(Size::W, R10, KEY_SLOT, 0);
    a.ld_map_fd(R1, drops);
    a.mov64(R2, R10);
    a.add64(R2, i32::from(KEY_SLOT));
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, done);
    a.mov64(R1, 1);
    a.atomic(AtomicOp::Add, Size::DW, R0, 0, R1);
    a.ja(done);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse() {
        let mut bytes = vec![0u8; RECORD_SIZE as usize];
        bytes[0..4].copy_from_slice(&7u32.to_ne_bytes());
        bytes[4..8].copy_from_slice(&46u32.to_ne_bytes());
        bytes[8..12].copy_from_slice(&3u32.to_ne_bytes());
        bytes[12..16].copy_from_slice(&2u32.to_ne_bytes());
        bytes[16..24].copy_from_slice(&99u64.to_ne_bytes());
        bytes[24..27].copy_from_slice(&[1, 2, 3]);
        let r = LogRecord::parse(&bytes).unwrap();
        assert_eq!(
            r,
            LogRecord {
                slot: 7,
                len: 46,
                ifindex: 2,
                timestamp_ns: 99,
                packet: vec![1, 2, 3],
            }
        );
        assert_eq!(LogRecord::parse(&bytes[..20]), None);
    }
}
