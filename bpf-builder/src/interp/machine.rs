//! The state of one run: tagged registers, call frames, the stack, the
//! packet buffer and the context, and memory access through pointers.
//!
//! A pointer is a region and an offset, never a real address: the packet
//! regions (metadata, data, `data_end`) share one buffer so that their
//! pointers compare and subtract by offset; each call frame has 512 bytes
//! of stack; a map value pointer names its map and element.

use super::ctx::{ProgKind, SkbCtx, XdpCtx};
use super::error::Fault;
use super::maps::InterpMap;
use crate::insn::Reg;

/// Stack bytes per call frame.
pub(crate) const FRAME_SIZE: usize = 512;
/// The kernel's limit of nested frames (`MAX_CALL_FRAMES`).
pub(crate) const MAX_FRAMES: usize = 8;

/// What a register (or a spilled stack slot) holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Never written (or clobbered by a call).
    Uninit,
    /// A number.
    Scalar,
    /// The context (offset 0 when unmodified).
    Ctx,
    /// Into the packet data (offset in the packet buffer).
    Pkt,
    /// Into the metadata (offset in the packet buffer).
    Meta,
    /// `data_end` (offset in the packet buffer).
    PktEnd,
    /// Into the stack of frame `n` (offset in the whole stack).
    Stack(u8),
    /// Into a map value.
    MapValue {
        /// Index of the map in the interpreter.
        map: u16,
        /// Element (array index or hash slot).
        elem: u32,
    },
    /// A map itself.
    Map(u16),
    /// A function, by instruction index.
    Func(u32),
}

impl Kind {
    /// Name for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Uninit => "uninitialised register",
            Kind::Scalar => "scalar",
            Kind::Ctx => "context pointer",
            Kind::Pkt => "packet pointer",
            Kind::Meta => "packet metadata pointer",
            Kind::PktEnd => "packet end pointer",
            Kind::Stack(_) => "stack pointer",
            Kind::MapValue { .. } => "map value pointer",
            Kind::Map(_) => "map pointer",
            Kind::Func(_) => "function pointer",
        }
    }

    /// Whether two pointers point into the same space, so that their
    /// offsets compare and subtract as their addresses would.
    pub(crate) fn same_space(self, other: Kind) -> bool {
        let packet = |k| matches!(k, Kind::Pkt | Kind::Meta | Kind::PktEnd);
        (packet(self) && packet(other))
            || (self == other && !matches!(self, Kind::Scalar | Kind::Uninit))
    }

    /// Whether adding to or subtracting from this pointer is allowed.
    pub(crate) fn movable(self) -> bool {
        matches!(
            self,
            Kind::Ctx | Kind::Pkt | Kind::Meta | Kind::Stack(_) | Kind::MapValue { .. }
        )
    }
}

/// A register: what it holds and its bits (the offset for pointers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Val {
    pub(crate) kind: Kind,
    pub(crate) v: u64,
}

impl Val {
    pub(crate) const UNINIT: Val = Val {
        kind: Kind::Uninit,
        v: 0,
    };

    pub(crate) fn scalar(v: u64) -> Val {
        Val {
            kind: Kind::Scalar,
            v,
        }
    }
}

/// Why a frame was entered.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FrameKind {
    /// A bpf-to-bpf call.
    Call,
    /// A `bpf_loop` callback: iteration `i` of `n`.
    Loop { i: u64, n: u64, cb: usize, ctx: Val },
}

/// A call frame: where to return and the caller's callee-saved registers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    pub(crate) ret_pc: usize,
    pub(crate) saved: [Val; 4],
    pub(crate) saved_fp: Val,
    pub(crate) kind: FrameKind,
}

/// The context of the run.
#[derive(Clone, Debug)]
pub(crate) enum Context {
    Xdp(XdpCtx),
    Skb(SkbCtx),
}

/// Where a resolved access lands.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Area {
    Stack,
    Buf,
    MapValue { map: u16, elem: u32 },
}

/// The state of one run, kept between runs to reuse its buffers.
#[derive(Debug)]
pub(crate) struct Machine {
    pub(crate) regs: [Val; 11],
    pub(crate) frames: Vec<Frame>,
    pub(crate) stack: Vec<u8>,
    /// What each 8-byte stack slot holds: `Scalar` for plain bytes, or the
    /// kind of a spilled pointer (whose offset the bytes hold).
    pub(crate) slot_kinds: Vec<Kind>,
    /// Packet buffer: headroom, metadata, frame.
    pub(crate) buf: Vec<u8>,
    pub(crate) meta_start: usize,
    pub(crate) data_start: usize,
    pub(crate) data_end: usize,
    /// Start of the MAC header and network header in `buf` (skb loads).
    pub(crate) mac_start: usize,
    pub(crate) net_start: usize,
    pub(crate) prog: ProgKind,
    pub(crate) ctx: Context,
    pub(crate) executed: u64,
    pub(crate) may_goto_budget: u64,
    pub(crate) scratch: Vec<u8>,
    /// The lowest stack offset written since frame 0 was last cleared
    /// (`FRAME_SIZE` when clean): a run clears only what the one before
    /// wrote, usually a few slots below the frame pointer. Deeper frames
    /// are cleared when entered.
    pub(crate) stack_dirty_from: usize,
}

/// `at` when `[at, at + size)` lies in `[lo, hi)`.
#[inline(always)]
pub(crate) fn span(at: u64, size: usize, lo: usize, hi: usize) -> Option<usize> {
    let end = at.checked_add(size as u64)?;
    (at >= lo as u64 && end <= hi as u64).then_some(at as usize)
}

/// Checks that `[at, at + size)` lies in `[lo, hi)`; returns `at`.
#[inline]
fn within(
    region: &'static str,
    at: u64,
    size: usize,
    lo: usize,
    hi: usize,
) -> Result<usize, Fault> {
    span(at, size, lo, hi).ok_or_else(|| Fault::OutOfBounds {
        region,
        off: at.wrapping_sub(lo as u64) as i64,
        size,
        len: hi - lo,
    })
}

/// Little-endian value of up to 8 bytes (the access sizes without a
/// copy of variable length).
#[inline]
pub(crate) fn read_le(bytes: &[u8]) -> u64 {
    match *bytes {
        [a] => u64::from(a),
        [a, b] => u64::from(u16::from_le_bytes([a, b])),
        [a, b, c, d] => u64::from(u32::from_le_bytes([a, b, c, d])),
        [a, b, c, d, e, f, g, h] => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
        _ => {
            let mut v = [0u8; 8];
            v[..bytes.len()].copy_from_slice(bytes);
            u64::from_le_bytes(v)
        }
    }
}

/// Writes the low `bytes.len()` bytes of `v`, little-endian (the access
/// sizes without a copy of variable length).
#[inline(always)]
pub(crate) fn write_le(bytes: &mut [u8], v: u64) {
    // Constant ranges, so that each size is one store (a length from
    // the match alone left a call to memcpy).
    let le = v.to_le_bytes();
    match bytes.len() {
        1 => bytes[0] = le[0],
        2 => bytes[..2].copy_from_slice(&le[..2]),
        4 => bytes[..4].copy_from_slice(&le[..4]),
        8 => bytes[..8].copy_from_slice(&le),
        n => bytes.copy_from_slice(&le[..n]),
    }
}

impl Machine {
    pub(crate) fn new() -> Machine {
        Machine {
            regs: [Val::UNINIT; 11],
            frames: Vec::with_capacity(MAX_FRAMES),
            stack: vec![0; FRAME_SIZE * MAX_FRAMES],
            slot_kinds: vec![Kind::Scalar; FRAME_SIZE * MAX_FRAMES / 8],
            buf: Vec::new(),
            meta_start: 0,
            data_start: 0,
            data_end: 0,
            mac_start: 0,
            net_start: 0,
            prog: ProgKind::Xdp,
            ctx: Context::Xdp(XdpCtx::default()),
            executed: 0,
            may_goto_budget: 0,
            scratch: Vec::new(),
            stack_dirty_from: 0,
        }
    }

    /// Resets registers, frames and stack for a new run; the caller has
    /// filled the packet buffer and context.
    pub(crate) fn reset(&mut self) {
        self.regs = [Val::UNINIT; 11];
        self.regs[1] = Val {
            kind: Kind::Ctx,
            v: 0,
        };
        self.regs[10] = Self::frame_pointer(0);
        self.frames.clear();
        self.clear_frame0();
        self.executed = 0;
        // BPF_MAX_LOOPS: the kernel's may_goto budget.
        self.may_goto_budget = 8 * 1024 * 1024;
    }

    /// Clears what the last run wrote of frame 0's stack (other frames
    /// are cleared when entered).
    pub(crate) fn clear_frame0(&mut self) {
        let dirty = self.stack_dirty_from;
        if dirty < FRAME_SIZE {
            self.slot_kinds[dirty / 8..FRAME_SIZE / 8].fill(Kind::Scalar);
        }
        self.clear_frame0_bytes();
    }

    /// [`Machine::clear_frame0`] for a program that never spills a
    /// pointer (a pre-checked one): its slots always hold plain bytes,
    /// only the bytes need clearing.
    pub(crate) fn clear_frame0_bytes(&mut self) {
        let dirty = self.stack_dirty_from;
        if dirty < FRAME_SIZE {
            self.stack[dirty..FRAME_SIZE].fill(0);
            self.stack_dirty_from = FRAME_SIZE;
        }
    }

    /// r10 of frame `depth`.
    pub(crate) fn frame_pointer(depth: usize) -> Val {
        Val {
            kind: Kind::Stack(depth as u8),
            v: ((depth + 1) * FRAME_SIZE) as u64,
        }
    }

    /// Register `r`, which must have been written.
    #[inline]
    pub(crate) fn get(&self, r: Reg) -> Result<Val, Fault> {
        let v = self.regs[r as usize];
        if v.kind == Kind::Uninit {
            return Err(Fault::Uninit(r.num()));
        }
        Ok(v)
    }

    /// Register `r` as a number.
    #[inline]
    pub(crate) fn scalar(&self, r: Reg, op: &'static str) -> Result<u64, Fault> {
        let v = self.get(r)?;
        if v.kind != Kind::Scalar {
            return Err(Fault::Pointer {
                op,
                kind: v.kind.name(),
            });
        }
        Ok(v.v)
    }

    /// Writes register `r` (never r10).
    #[inline]
    pub(crate) fn set(&mut self, r: Reg, v: Val) -> Result<(), Fault> {
        if r == Reg::R10 {
            return Err(Fault::FramePointerWrite);
        }
        self.regs[r as usize] = v;
        Ok(())
    }

    /// Marks r1-r5 clobbered, as after any call.
    pub(crate) fn clobber_args(&mut self) {
        for r in &mut self.regs[1..=5] {
            *r = Val::UNINIT;
        }
    }

    /// Length of the skb data (`skb->len`).
    pub(crate) fn data_len(&self) -> usize {
        self.data_end - self.data_start
    }

    /// Resolves an access of `size` bytes at `ptr + off` to memory.
    pub(crate) fn resolve(
        &self,
        maps: &[(i32, InterpMap)],
        ptr: Val,
        off: i64,
        size: usize,
        write: bool,
    ) -> Result<(Area, usize), Fault> {
        let at = ptr.v.wrapping_add(off as u64);
        match ptr.kind {
            Kind::Pkt => {
                let i = within("packet", at, size, self.data_start, self.data_end)?;
                if write && self.prog == ProgKind::Socket {
                    return Err(Fault::ReadOnly("packet"));
                }
                Ok((Area::Buf, i))
            }
            Kind::Meta => Ok((
                Area::Buf,
                within(
                    "packet metadata",
                    at,
                    size,
                    self.meta_start,
                    self.data_start,
                )?,
            )),
            Kind::Stack(f) => {
                let lo = f as usize * FRAME_SIZE;
                Ok((Area::Stack, within("stack", at, size, lo, lo + FRAME_SIZE)?))
            }
            Kind::MapValue { map, elem } => {
                let m = &maps[map as usize].1;
                if !m.has_elem(elem) {
                    return Err(Fault::NotMemory("deleted map element"));
                }
                if write && m.is_read_only() {
                    return Err(Fault::ReadOnly("map"));
                }
                let i = within("map value", at, size, 0, m.value_size() as usize)?;
                Ok((Area::MapValue { map, elem }, i))
            }
            other => Err(Fault::NotMemory(other.name())),
        }
    }

    /// The bytes of a resolved area.
    pub(crate) fn bytes<'a>(
        &'a self,
        maps: &'a [(i32, InterpMap)],
        area: Area,
        at: usize,
        size: usize,
    ) -> Result<&'a [u8], Fault> {
        Ok(match area {
            Area::Stack => {
                self.check_slots_plain(at, size)?;
                &self.stack[at..at + size]
            }
            Area::Buf => &self.buf[at..at + size],
            Area::MapValue { map, elem } => &maps[map as usize].1.elem(elem)[at..at + size],
        })
    }

    /// The bytes of a resolved area, to write (spilled pointers under them
    /// become plain bytes).
    pub(crate) fn bytes_mut<'a>(
        &'a mut self,
        maps: &'a mut [(i32, InterpMap)],
        area: Area,
        at: usize,
        size: usize,
    ) -> &'a mut [u8] {
        match area {
            Area::Stack => {
                self.stack_dirty_from = self.stack_dirty_from.min(at);
                if size > 0 {
                    for k in &mut self.slot_kinds[at / 8..=(at + size - 1) / 8] {
                        *k = Kind::Scalar;
                    }
                }
                &mut self.stack[at..at + size]
            }
            Area::Buf => &mut self.buf[at..at + size],
            Area::MapValue { map, elem } => &mut maps[map as usize].1.elem_mut(elem)[at..at + size],
        }
    }

    /// Fails if a spilled pointer lies under `[at, at + size)` of the stack.
    fn check_slots_plain(&self, at: usize, size: usize) -> Result<(), Fault> {
        if size == 0 {
            return Ok(());
        }
        let spilled = self.slot_kinds[at / 8..=(at + size - 1) / 8]
            .iter()
            .any(|k| *k != Kind::Scalar);
        if spilled {
            Err(Fault::SpilledPointer)
        } else {
            Ok(())
        }
    }

    /// Whether the stack bytes `[at, at + size)` (size 1 to 8) are plain
    /// bytes, no spilled pointer under them.
    #[inline(always)]
    fn slots_plain(&self, at: usize, size: usize) -> bool {
        self.slot_kinds[at / 8..=(at + size - 1) / 8]
            .iter()
            .all(|k| matches!(k, Kind::Scalar))
    }

    /// The common case of [`Machine::load`]: a number from the packet,
    /// the metadata or plain stack bytes, in bounds. `None` for `load` to
    /// do the rest (and find the fault), so that a value here is the one
    /// `load` gives.
    #[inline(always)]
    pub(crate) fn load_fast(&self, ptr: Val, off: i64, size: usize) -> Option<u64> {
        let at = ptr.v.wrapping_add(off as u64);
        // The packet first: most loads of a filter.
        if ptr.kind == Kind::Pkt {
            let i = span(at, size, self.data_start, self.data_end)?;
            return Some(read_le(&self.buf[i..i + size]));
        }
        let i = match ptr.kind {
            Kind::Meta => span(at, size, self.meta_start, self.data_start)?,
            Kind::Stack(f) => {
                let lo = f as usize * FRAME_SIZE;
                let i = span(at, size, lo, lo + FRAME_SIZE)?;
                return self
                    .slots_plain(i, size)
                    .then(|| read_le(&self.stack[i..i + size]));
            }
            _ => return None,
        };
        Some(read_le(&self.buf[i..i + size]))
    }

    /// The common case of [`Machine::store`]: a number into the packet,
    /// the metadata or the stack, in bounds and writable. `None` (nothing
    /// written) for `store` to do the rest.
    #[inline(always)]
    pub(crate) fn store_fast(&mut self, ptr: Val, off: i64, size: usize, v: u64) -> Option<()> {
        let at = ptr.v.wrapping_add(off as u64);
        let i = match ptr.kind {
            Kind::Pkt if self.prog != ProgKind::Socket => {
                span(at, size, self.data_start, self.data_end)?
            }
            Kind::Meta => span(at, size, self.meta_start, self.data_start)?,
            Kind::Stack(f) => {
                let lo = f as usize * FRAME_SIZE;
                let i = span(at, size, lo, lo + FRAME_SIZE)?;
                self.stack_dirty_from = self.stack_dirty_from.min(i);
                self.slot_kinds[i / 8..=(i + size - 1) / 8].fill(Kind::Scalar);
                write_le(&mut self.stack[i..i + size], v);
                return Some(());
            }
            _ => return None,
        };
        write_le(&mut self.buf[i..i + size], v);
        Some(())
    }

    /// Loads `size` bytes at `ptr + off` from memory other than the
    /// context: a number, or a pointer filled back from the stack.
    #[inline]
    pub(crate) fn load(
        &self,
        maps: &[(i32, InterpMap)],
        ptr: Val,
        off: i64,
        size: usize,
    ) -> Result<Val, Fault> {
        let (area, at) = self.resolve(maps, ptr, off, size, false)?;
        if let Area::Stack = area {
            let kind = self.slot_kinds[at / 8];
            if kind != Kind::Scalar && size == 8 && at % 8 == 0 {
                return Ok(Val {
                    kind,
                    v: read_le(&self.stack[at..at + 8]),
                });
            }
        }
        Ok(Val::scalar(read_le(self.bytes(maps, area, at, size)?)))
    }

    /// Stores `size` bytes of `v` at `ptr + off`; pointers may only be
    /// spilled whole to 8-byte aligned stack slots.
    pub(crate) fn store(
        &mut self,
        maps: &mut [(i32, InterpMap)],
        ptr: Val,
        off: i64,
        size: usize,
        v: Val,
    ) -> Result<(), Fault> {
        let (area, at) = self.resolve(maps, ptr, off, size, true)?;
        let bytes = v.v.to_le_bytes();
        if v.kind != Kind::Scalar {
            let spill = matches!(area, Area::Stack) && size == 8 && at % 8 == 0;
            if !spill {
                return Err(Fault::Pointer {
                    op: "storing other than as a whole stack slot",
                    kind: v.kind.name(),
                });
            }
            self.stack_dirty_from = self.stack_dirty_from.min(at);
            self.stack[at..at + 8].copy_from_slice(&bytes);
            self.slot_kinds[at / 8] = v.kind;
            return Ok(());
        }
        self.bytes_mut(maps, area, at, size)
            .copy_from_slice(&bytes[..size]);
        Ok(())
    }
}
