//! The execution loop: one decoded operation at a time, with the kernel's
//! ALU, jump, memory, call and exit semantics.

use std::time::Instant;

use super::ctx::{self, CtxRead, ProgKind};
use super::decode::{Op, Src, Swap};
use super::error::{Fault, InterpError};
use super::machine::{Context, Frame, FrameKind, Kind, MAX_FRAMES, Machine, Val, read_le};
use super::maps::InterpMap;
use crate::insn::{AluOp, AtomicOp, JmpOp, Reg, Size};

/// Where pointers would live in the kernel's address space: comparisons of
/// two pointers into the same region compare `BASE + offset`, so that
/// offsets below the region's start order as addresses do.
pub(crate) const BASE: u64 = 0xffff_8880_0000_0000;

/// What the interpreter records of a redirect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redirect {
    /// `bpf_redirect_map(map, key, flags)` that found its target.
    Map {
        /// The fd or index the map was given with.
        map: i32,
        /// The key.
        key: u64,
        /// The flags.
        flags: u64,
    },
    /// `bpf_redirect(ifindex, flags)`.
    Ifindex {
        /// Target device.
        ifindex: u32,
        /// The flags.
        flags: u64,
    },
}

/// State outside the machine that helpers use.
#[derive(Debug)]
pub(crate) struct Env {
    pub(crate) clock: Instant,
    pub(crate) prandom: u64,
    pub(crate) redirect: Option<Redirect>,
}

/// What one step leads to.
pub(crate) enum Flow {
    Next,
    Jump(usize),
    Done(u64),
}

/// One run in progress.
pub(crate) struct Exec<'a> {
    pub(crate) ops: &'a [Op],
    pub(crate) m: &'a mut Machine,
    pub(crate) maps: &'a mut Vec<(i32, InterpMap)>,
    pub(crate) env: &'a mut Env,
    pub(crate) limit: u64,
}

impl Exec<'_> {
    /// Runs from instruction 0 to the final exit; returns r0.
    pub(crate) fn run(&mut self) -> Result<u64, InterpError> {
        let (ops, limit) = (self.ops, self.limit);
        let mut pc = 0usize;
        // Counted here, where it stays in a register; stored at the end.
        let mut executed = 0u64;
        let result = loop {
            if executed >= limit {
                break Err(InterpError::at(pc, Fault::InsnLimit(limit)));
            }
            executed += 1;
            let Some(op) = ops.get(pc) else {
                break Err(InterpError::at(pc, Fault::FellOff));
            };
            match self.fast_step(op, pc).map_or_else(|| self.step(op, pc), Ok) {
                Ok(Flow::Next) => pc += 1,
                Ok(Flow::Jump(t)) => pc = t,
                Ok(Flow::Done(r0)) => break Ok(r0),
                Err(f) => break Err(InterpError::at(pc, f)),
            }
        };
        self.m.executed = executed;
        result
    }

    /// The common cases of the hot operations (numbers, packet pointers
    /// moved and compared, loads and stores of numbers in bounds, context
    /// reads, the final exit): the flow after it, or `None` for
    /// [`Exec::step`] to do the operation (and find any fault), so that
    /// each result here is the one `step` gives.
    #[inline(always)]
    fn fast_step(&mut self, op: &Op, pc: usize) -> Option<Flow> {
        let regs = &mut self.m.regs;
        let operand = |regs: &[Val; 11], src| match src {
            Src::Reg(r) => regs[r as usize],
            Src::Imm(i) => Val::scalar(i),
        };
        match *op {
            Op::Alu { op, wide, dst, src } => {
                if dst == Reg::R10 {
                    return None;
                }
                let b = operand(regs, src);
                let a = regs[dst as usize];
                let r = match (op, a.kind, b.kind) {
                    (AluOp::Mov, _, Kind::Scalar) if !wide => Val::scalar(b.v & 0xffff_ffff),
                    (AluOp::Mov, _, Kind::Uninit) => return None,
                    (AluOp::Mov, _, _) if wide => b,
                    (AluOp::Mov, _, _) => return None,
                    (_, Kind::Scalar, Kind::Scalar) if wide => Val::scalar(alu64(op, a.v, b.v)),
                    (_, Kind::Scalar, Kind::Scalar) => {
                        Val::scalar(u64::from(alu32(op, a.v as u32, b.v as u32)))
                    }
                    (AluOp::Add, kind, Kind::Scalar) if wide && kind.movable() => Val {
                        kind,
                        v: a.v.wrapping_add(b.v),
                    },
                    (AluOp::Sub, kind, Kind::Scalar) if wide && kind.movable() => Val {
                        kind,
                        v: a.v.wrapping_sub(b.v),
                    },
                    (AluOp::Add, Kind::Scalar, kind) if wide && kind.movable() => Val {
                        kind,
                        v: a.v.wrapping_add(b.v),
                    },
                    _ => return None,
                };
                regs[dst as usize] = r;
                Some(Flow::Next)
            }
            Op::Jcond {
                op,
                wide,
                dst,
                src,
                target,
            } => {
                let a = regs[dst as usize];
                let b = operand(regs, src);
                let taken = match (a.kind, b.kind) {
                    (Kind::Scalar, Kind::Scalar) => cond(op, wide, a.v, b.v),
                    (
                        Kind::Pkt | Kind::Meta | Kind::PktEnd,
                        Kind::Pkt | Kind::Meta | Kind::PktEnd,
                    ) if wide => cond(op, true, BASE.wrapping_add(a.v), BASE.wrapping_add(b.v)),
                    _ => return None,
                };
                Some(if taken {
                    Flow::Jump(target)
                } else {
                    Flow::Next
                })
            }
            Op::Load {
                size,
                sx,
                dst,
                src,
                off,
            } => {
                let base = regs[src as usize];
                if dst == Reg::R10 {
                    return None;
                }
                let n = size.bytes();
                let v = match (base.kind, &self.m.ctx) {
                    (Kind::Ctx, Context::Xdp(x)) if !sx && base.v == 0 => {
                        self.ctx_val(ctx::xdp_read(x, off.into(), n).ok()?)
                    }
                    (Kind::Ctx, _) => return None,
                    _ => {
                        let v = self.m.load_fast(base, off.into(), n)?;
                        Val::scalar(if sx { sign_extend(v, (n * 8) as u8) } else { v })
                    }
                };
                self.m.regs[dst as usize] = v;
                Some(Flow::Next)
            }
            Op::Store {
                size,
                dst,
                off,
                src,
            } => {
                let base = regs[dst as usize];
                let v = match operand(regs, src) {
                    Val {
                        kind: Kind::Scalar,
                        v,
                    } => v,
                    _ => return None,
                };
                if base.kind == Kind::Ctx {
                    return None;
                }
                self.m.store_fast(base, off.into(), size.bytes(), v)?;
                Some(Flow::Next)
            }
            Op::LdImm64 { dst, value } if dst != Reg::R10 => {
                regs[dst as usize] = Val::scalar(value);
                Some(Flow::Jump(pc + 2))
            }
            Op::Ja { target } => Some(Flow::Jump(target)),
            Op::Exit if self.m.frames.is_empty() => match regs[0] {
                Val {
                    kind: Kind::Scalar,
                    v,
                } => Some(Flow::Done(v)),
                _ => None,
            },
            _ => None,
        }
    }

    /// One operation, any case: the flow after it, or its fault.
    #[inline(never)]
    fn step(&mut self, op: &Op, pc: usize) -> Result<Flow, Fault> {
        match *op {
            Op::Alu { op, wide, dst, src } => self.alu(op, wide, dst, src)?,
            Op::Neg { wide, dst } => {
                let a = self.m.scalar(dst, "negation")?;
                self.m.set(dst, Val::scalar(neg(wide, a)))?;
            }
            Op::MovSx {
                wide,
                dst,
                src,
                bits,
            } => {
                let a = self.m.scalar(src, "sign-extending move")?;
                self.m.set(dst, Val::scalar(mov_sx(wide, a, bits)))?;
            }
            Op::End { swap, dst, bits } => {
                let a = self.m.scalar(dst, "byte swap")?;
                self.m.set(dst, Val::scalar(byte_swap(swap, bits, a)))?;
            }
            Op::LdImm64 { dst, value } => {
                self.m.set(dst, Val::scalar(value))?;
                return Ok(Flow::Jump(pc + 2));
            }
            Op::LdMap { dst, fd } => {
                let map = self.map_index(fd)?;
                self.m.set(
                    dst,
                    Val {
                        kind: Kind::Map(map),
                        v: 0,
                    },
                )?;
                return Ok(Flow::Jump(pc + 2));
            }
            Op::LdMapValue { dst, fd, off } => {
                let map = self.map_index(fd)?;
                let m = &self.maps[map as usize].1;
                if !m.kind_is_array() {
                    return Err(Fault::NotAllowed("a map value reference to a non-array"));
                }
                if off >= m.value_size() {
                    return Err(Fault::MapValueOffset {
                        off,
                        size: m.value_size(),
                    });
                }
                self.m.set(
                    dst,
                    Val {
                        kind: Kind::MapValue { map, elem: 0 },
                        v: u64::from(off),
                    },
                )?;
                return Ok(Flow::Jump(pc + 2));
            }
            Op::LdFunc { dst, target } => {
                let f = Val {
                    kind: Kind::Func(target as u32),
                    v: 0,
                };
                self.m.set(dst, f)?;
                return Ok(Flow::Jump(pc + 2));
            }
            Op::Load {
                size,
                sx,
                dst,
                src,
                off,
            } => {
                let base = self.m.get(src)?;
                let n = size.bytes();
                let v = if base.kind == Kind::Ctx {
                    if sx {
                        return Err(Fault::NotAllowed("a sign-extending context load"));
                    }
                    self.ctx_load(base, i64::from(off), n)?
                } else {
                    self.m.load(self.maps, base, i64::from(off), n)?
                };
                let v = if sx {
                    Val::scalar(sign_extend(v.v, (n * 8) as u8))
                } else {
                    v
                };
                self.m.set(dst, v)?;
            }
            Op::Store {
                size,
                dst,
                off,
                src,
            } => {
                let base = self.m.get(dst)?;
                let v = match src {
                    Src::Reg(r) => self.m.get(r)?,
                    Src::Imm(i) => Val::scalar(i),
                };
                if base.kind == Kind::Ctx {
                    if let Src::Imm(_) = src {
                        return Err(Fault::NotAllowed(
                            "a store of an immediate into the context",
                        ));
                    }
                    self.ctx_store(base, i64::from(off), size.bytes(), v)?;
                } else {
                    self.m
                        .store(self.maps, base, i64::from(off), size.bytes(), v)?;
                }
            }
            Op::Atomic {
                op,
                size,
                dst,
                src,
                off,
            } => self.atomic(op, size, dst, src, off)?,
            Op::LdAbs { size, ind, imm } => {
                if let Some(r0) = self.ld_abs(size, ind, imm)? {
                    self.m.regs[0] = Val::scalar(r0);
                    self.m.clobber_args();
                } else {
                    // The kernel's rewrite returns 0 from the program.
                    return Ok(Flow::Done(0));
                }
            }
            Op::Ja { target } => return Ok(Flow::Jump(target)),
            Op::Jcond {
                op,
                wide,
                dst,
                src,
                target,
            } => {
                let a = self.m.get(dst)?;
                let b = match src {
                    Src::Reg(r) => self.m.get(r)?,
                    Src::Imm(i) => Val::scalar(i),
                };
                if compare(op, wide, a, b)? {
                    return Ok(Flow::Jump(target));
                }
            }
            Op::MayGoto { target } => {
                if self.m.may_goto_budget == 0 {
                    return Ok(Flow::Jump(target));
                }
                self.m.may_goto_budget -= 1;
            }
            Op::Call { id } => return self.call_helper(id, pc),
            Op::CallLocal { target } => {
                self.push_frame(pc + 1, FrameKind::Call)?;
                return Ok(Flow::Jump(target));
            }
            Op::Exit => return self.exit(),
            Op::Invalid(why) => return Err(Fault::Invalid(why)),
        }
        Ok(Flow::Next)
    }

    /// The interpreter's index of the map given as `fd`.
    fn map_index(&self, fd: i32) -> Result<u16, Fault> {
        self.maps
            .iter()
            .position(|(f, _)| *f == fd)
            .map(|i| i as u16)
            .ok_or(Fault::UnknownMap(fd))
    }

    fn alu(&mut self, op: AluOp, wide: bool, dst: Reg, src: Src) -> Result<(), Fault> {
        let b = match src {
            Src::Reg(r) => self.m.get(r)?,
            Src::Imm(i) => Val::scalar(i),
        };
        if op == AluOp::Mov {
            let v = if wide {
                b
            } else if b.kind == Kind::Scalar {
                Val::scalar(b.v & 0xffff_ffff)
            } else {
                return Err(Fault::Pointer {
                    op: "a 32-bit move",
                    kind: b.kind.name(),
                });
            };
            return self.m.set(dst, v);
        }
        let a = self.m.get(dst)?;
        let r = if a.kind == Kind::Scalar && b.kind == Kind::Scalar {
            if wide {
                Val::scalar(alu64(op, a.v, b.v))
            } else {
                Val::scalar(u64::from(alu32(op, a.v as u32, b.v as u32)))
            }
        } else {
            pointer_alu(op, wide, a, b)?
        };
        self.m.set(dst, r)
    }

    fn ctx_load(&self, base: Val, off: i64, size: usize) -> Result<Val, Fault> {
        if base.v != 0 {
            return Err(Fault::NotAllowed(
                "access through a modified context pointer",
            ));
        }
        let read = match &self.m.ctx {
            Context::Xdp(x) => ctx::xdp_read(x, off, size)?,
            Context::Skb(s) => ctx::skb_read(self.m.prog, s, self.m.data_len() as u32, off, size)?,
        };
        Ok(self.ctx_val(read))
    }

    /// The register value of a context read.
    #[inline(always)]
    fn ctx_val(&self, read: CtxRead) -> Val {
        let at = |kind, v: usize| Val { kind, v: v as u64 };
        match read {
            CtxRead::Scalar(v) => Val::scalar(v),
            CtxRead::Data => at(Kind::Pkt, self.m.data_start),
            CtxRead::DataEnd => at(Kind::PktEnd, self.m.data_end),
            CtxRead::DataMeta => at(Kind::Meta, self.m.meta_start),
        }
    }

    fn ctx_store(&mut self, base: Val, off: i64, size: usize, v: Val) -> Result<(), Fault> {
        if base.v != 0 {
            return Err(Fault::NotAllowed(
                "access through a modified context pointer",
            ));
        }
        if v.kind != Kind::Scalar {
            return Err(Fault::Pointer {
                op: "a store into the context",
                kind: v.kind.name(),
            });
        }
        match &mut self.m.ctx {
            Context::Xdp(_) => Err(Fault::Ctx {
                off,
                size,
                write: true,
            }),
            Context::Skb(s) => ctx::skb_write(self.m.prog, s, off, size, v.v),
        }
    }

    fn atomic(
        &mut self,
        op: AtomicOp,
        size: Size,
        dst: Reg,
        src: Reg,
        off: i16,
    ) -> Result<(), Fault> {
        let n = size.bytes();
        let off = i64::from(off);
        match op {
            AtomicOp::LoadAcquire => {
                let base = self.m.get(src)?;
                check_atomic_base(base)?;
                let v = self.m.load(self.maps, base, off, n)?;
                return self.m.set(dst, v);
            }
            AtomicOp::StoreRelease => {
                let base = self.m.get(dst)?;
                check_atomic_base(base)?;
                let v = self.m.get(src)?;
                return self.m.store(self.maps, base, off, n, v);
            }
            _ => {}
        }
        let base = self.m.get(dst)?;
        check_atomic_base(base)?;
        let (area, at) = self.m.resolve(self.maps, base, off, n, true)?;
        if at % n != 0 {
            return Err(Fault::Misaligned { size: n });
        }
        let s = self.m.scalar(src, "an atomic operation")?;
        let old = read_le(self.m.bytes(self.maps, area, at, n)?);
        let mask = if n == 8 { u64::MAX } else { 0xffff_ffff };
        let (new, fetch) = match op {
            AtomicOp::Add => (old.wrapping_add(s), false),
            AtomicOp::Or => (old | s, false),
            AtomicOp::And => (old & s, false),
            AtomicOp::Xor => (old ^ s, false),
            AtomicOp::FetchAdd => (old.wrapping_add(s), true),
            AtomicOp::FetchOr => (old | s, true),
            AtomicOp::FetchAnd => (old & s, true),
            AtomicOp::FetchXor => (old ^ s, true),
            AtomicOp::Xchg => (s, true),
            AtomicOp::CmpXchg => {
                let expected = self.m.scalar(Reg::R0, "cmpxchg")?;
                let new = if expected & mask == old { s } else { old };
                self.m.regs[0] = Val::scalar(old);
                (new, false)
            }
            AtomicOp::LoadAcquire | AtomicOp::StoreRelease => {
                return Err(Fault::Invalid("atomic load/store handled above"));
            }
        };
        let bytes = (new & mask).to_le_bytes();
        self.m
            .bytes_mut(self.maps, area, at, n)
            .copy_from_slice(&bytes[..n]);
        if fetch {
            self.m.set(src, Val::scalar(old))?;
        }
        Ok(())
    }

    /// A legacy packet load: `Some(value)`, or `None` when out of bounds
    /// (the program then returns 0).
    fn ld_abs(&mut self, size: Size, ind: Option<Reg>, imm: i32) -> Result<Option<u64>, Fault> {
        if self.m.prog == ProgKind::Xdp {
            return Err(Fault::NotAllowed("ld_abs/ld_ind"));
        }
        if self.m.get(Reg::R6)?.kind != Kind::Ctx {
            return Err(Fault::NotAllowed("ld_abs/ld_ind without the context in r6"));
        }
        // The kernel computes the offset in 64 bits, then passes it as int.
        let k = match ind {
            None => imm,
            Some(r) => {
                let x = self.m.scalar(r, "an indirect packet load")?;
                x.wrapping_add(imm as i64 as u64) as u32 as i32
            }
        };
        let n = size.bytes();
        Ok(self.skb_bytes_at(k, n).map(|b| {
            let mut v = 0u64;
            for &byte in b {
                v = (v << 8) | u64::from(byte);
            }
            v
        }))
    }

    /// The `n` bytes the kernel's `bpf_skb_load_helper_*` reads at offset
    /// `k` (negative: `SKF_NET_OFF`/`SKF_LL_OFF` relative).
    fn skb_bytes_at(&self, k: i32, n: usize) -> Option<&[u8]> {
        const SKF_NET_OFF: i64 = -0x10_0000;
        const SKF_LL_OFF: i64 = -0x20_0000;
        let k = i64::from(k);
        let start = if k >= 0 {
            let at = self.m.data_start as i64 + k;
            return (at + n as i64 <= self.m.data_end as i64)
                .then(|| &self.m.buf[at as usize..at as usize + n]);
        } else if k >= SKF_NET_OFF {
            self.m.net_start as i64 + (k - SKF_NET_OFF)
        } else if k >= SKF_LL_OFF {
            self.m.mac_start as i64 + (k - SKF_LL_OFF)
        } else {
            return None;
        };
        (start >= 0 && start + n as i64 <= self.m.data_end as i64)
            .then(|| &self.m.buf[start as usize..start as usize + n])
    }

    /// Enters a new frame returning to `ret_pc`.
    pub(crate) fn push_frame(&mut self, ret_pc: usize, kind: FrameKind) -> Result<(), Fault> {
        if self.m.frames.len() + 1 >= MAX_FRAMES {
            return Err(Fault::CallDepth(MAX_FRAMES));
        }
        let r = &self.m.regs;
        self.m.frames.push(Frame {
            ret_pc,
            saved: [r[6], r[7], r[8], r[9]],
            saved_fp: r[10],
            kind,
        });
        let depth = self.m.frames.len();
        let lo = depth * super::machine::FRAME_SIZE;
        self.m.stack[lo..lo + super::machine::FRAME_SIZE].fill(0);
        let slots = lo / 8..(lo + super::machine::FRAME_SIZE) / 8;
        self.m.slot_kinds[slots].fill(Kind::Scalar);
        self.m.regs[0] = Val::UNINIT;
        for r in 6..=9 {
            self.m.regs[r] = Val::UNINIT;
        }
        self.m.regs[10] = Machine::frame_pointer(depth);
        Ok(())
    }

    /// `exit`: from the program, a subprogram or a loop callback.
    fn exit(&mut self) -> Result<Flow, Fault> {
        let r0 = self.m.get(Reg::R0)?;
        let Some(frame) = self.m.frames.pop() else {
            if r0.kind != Kind::Scalar {
                return Err(Fault::ReturnPointer(r0.kind.name()));
            }
            return Ok(Flow::Done(r0.v));
        };
        let result = match frame.kind {
            FrameKind::Call => r0,
            FrameKind::Loop { i, n, cb, ctx } => {
                if r0.kind != Kind::Scalar {
                    return Err(Fault::ReturnPointer(r0.kind.name()));
                }
                // 0: continue, 1: stop (the verifier allows only these).
                if r0.v == 0 && i + 1 < n {
                    self.m.frames.push(Frame {
                        kind: FrameKind::Loop {
                            i: i + 1,
                            n,
                            cb,
                            ctx,
                        },
                        ..frame
                    });
                    self.enter_callback(i + 1, ctx);
                    return Ok(Flow::Jump(cb));
                }
                Val::scalar(if r0.v != 0 { i + 1 } else { n })
            }
        };
        let [r6, r7, r8, r9] = frame.saved;
        self.m.regs[6] = r6;
        self.m.regs[7] = r7;
        self.m.regs[8] = r8;
        self.m.regs[9] = r9;
        self.m.regs[10] = frame.saved_fp;
        self.m.regs[0] = result;
        self.m.clobber_args();
        Ok(Flow::Jump(frame.ret_pc))
    }

    /// Sets the registers of a `bpf_loop` callback's iteration `i` in the
    /// frame just pushed.
    pub(crate) fn enter_callback(&mut self, i: u64, ctx: Val) {
        let depth = self.m.frames.len();
        self.m.regs = [Val::UNINIT; 11];
        self.m.regs[1] = Val::scalar(i);
        self.m.regs[2] = ctx;
        self.m.regs[10] = Machine::frame_pointer(depth);
    }
}

/// Atomics work on the stack and map values only.
fn check_atomic_base(base: Val) -> Result<(), Fault> {
    match base.kind {
        Kind::Stack(_) | Kind::MapValue { .. } => Ok(()),
        other => Err(Fault::NotMemory(match other {
            Kind::Ctx | Kind::Pkt | Kind::Meta => {
                "context or packet (atomics are not allowed there)"
            }
            other => other.name(),
        })),
    }
}

/// `-a` on 64 bits (`wide`) or the low 32.
#[inline(always)]
pub(crate) fn neg(wide: bool, a: u64) -> u64 {
    if wide {
        a.wrapping_neg()
    } else {
        u64::from((a as u32).wrapping_neg())
    }
}

/// A sign-extending move of `a`'s low `bits` bits, to 64 bits (`wide`)
/// or 32.
#[inline(always)]
pub(crate) fn mov_sx(wide: bool, a: u64, bits: u8) -> u64 {
    let r = sign_extend(a, bits);
    if wide { r } else { r & 0xffff_ffff }
}

/// The byte order conversion `swap` of `a`'s low `bits` bits.
#[inline(always)]
pub(crate) fn byte_swap(swap: Swap, bits: u8, a: u64) -> u64 {
    match (swap, bits) {
        (Swap::ToLe, 16) => a & 0xffff,
        (Swap::ToLe, 32) => a & 0xffff_ffff,
        (Swap::ToLe, _) => a,
        (Swap::Reverse, 16) => u64::from((a as u16).swap_bytes()),
        (Swap::Reverse, 32) => u64::from((a as u32).swap_bytes()),
        (Swap::Reverse, _) => a.swap_bytes(),
    }
}

/// `v` sign-extended from its low `bits` bits.
#[inline(always)]
pub(crate) fn sign_extend(v: u64, bits: u8) -> u64 {
    match bits {
        8 => v as u8 as i8 as i64 as u64,
        16 => v as u16 as i16 as i64 as u64,
        32 => v as u32 as i32 as i64 as u64,
        _ => v,
    }
}

/// 64-bit arithmetic as the kernel defines it.
#[inline(always)]
pub(crate) fn alu64(op: AluOp, a: u64, b: u64) -> u64 {
    match op {
        AluOp::Add => a.wrapping_add(b),
        AluOp::Sub => a.wrapping_sub(b),
        AluOp::Mul => a.wrapping_mul(b),
        AluOp::Div => a.checked_div(b).unwrap_or(0),
        AluOp::SDiv if b == 0 => 0,
        AluOp::SDiv => (a as i64).wrapping_div(b as i64) as u64,
        AluOp::Mod => a.checked_rem(b).unwrap_or(a),
        AluOp::SMod if b == 0 => a,
        AluOp::SMod => (a as i64).wrapping_rem(b as i64) as u64,
        AluOp::Or => a | b,
        AluOp::And => a & b,
        AluOp::Xor => a ^ b,
        AluOp::Lsh => a << (b & 63),
        AluOp::Rsh => a >> (b & 63),
        AluOp::Arsh => ((a as i64) >> (b & 63)) as u64,
        AluOp::Mov => b,
        AluOp::Neg => a.wrapping_neg(),
    }
}

/// 32-bit arithmetic as the kernel defines it.
#[inline(always)]
pub(crate) fn alu32(op: AluOp, a: u32, b: u32) -> u32 {
    match op {
        AluOp::Add => a.wrapping_add(b),
        AluOp::Sub => a.wrapping_sub(b),
        AluOp::Mul => a.wrapping_mul(b),
        AluOp::Div => a.checked_div(b).unwrap_or(0),
        AluOp::SDiv if b == 0 => 0,
        AluOp::SDiv => (a as i32).wrapping_div(b as i32) as u32,
        AluOp::Mod => a.checked_rem(b).unwrap_or(a),
        AluOp::SMod if b == 0 => a,
        AluOp::SMod => (a as i32).wrapping_rem(b as i32) as u32,
        AluOp::Or => a | b,
        AluOp::And => a & b,
        AluOp::Xor => a ^ b,
        AluOp::Lsh => a << (b & 31),
        AluOp::Rsh => a >> (b & 31),
        AluOp::Arsh => ((a as i32) >> (b & 31)) as u32,
        AluOp::Mov => b,
        AluOp::Neg => a.wrapping_neg(),
    }
}

/// Arithmetic with a pointer operand: moving a pointer by a number, or the
/// distance between two pointers into the same region.
fn pointer_alu(op: AluOp, wide: bool, a: Val, b: Val) -> Result<Val, Fault> {
    let refuse = |kind: Kind| Fault::Pointer {
        op: "this arithmetic",
        kind: kind.name(),
    };
    let ptr = if a.kind == Kind::Scalar {
        b.kind
    } else {
        a.kind
    };
    if !wide {
        return Err(Fault::Pointer {
            op: "32-bit arithmetic",
            kind: ptr.name(),
        });
    }
    match (op, a.kind == Kind::Scalar, b.kind == Kind::Scalar) {
        (AluOp::Add, false, true) | (AluOp::Sub, false, true) if a.kind.movable() => Ok(Val {
            kind: a.kind,
            v: alu64(op, a.v, b.v),
        }),
        (AluOp::Add, true, false) if b.kind.movable() => Ok(Val {
            kind: b.kind,
            v: a.v.wrapping_add(b.v),
        }),
        (AluOp::Sub, false, false) if a.kind.same_space(b.kind) => {
            Ok(Val::scalar(a.v.wrapping_sub(b.v)))
        }
        _ => Err(refuse(ptr)),
    }
}

/// Whether a conditional jump is taken.
fn compare(op: JmpOp, wide: bool, a: Val, b: Val) -> Result<bool, Fault> {
    if a.kind == Kind::Scalar && b.kind == Kind::Scalar {
        return Ok(cond(op, wide, a.v, b.v));
    }
    let ptr = if a.kind == Kind::Scalar { b } else { a };
    if wide && a.kind.same_space(b.kind) {
        return Ok(cond(
            op,
            true,
            BASE.wrapping_add(a.v),
            BASE.wrapping_add(b.v),
        ));
    }
    // A pointer is never NULL.
    let other = if a.kind == Kind::Scalar { a } else { b };
    if wide && other.kind == Kind::Scalar && other.v == 0 {
        match op {
            JmpOp::Eq => return Ok(false),
            JmpOp::Ne => return Ok(true),
            _ => {}
        }
    }
    Err(Fault::Pointer {
        op: "this comparison",
        kind: ptr.kind.name(),
    })
}

// The outcomes of a comparison (and of the bit test) that can make a
// conditional jump jump, one bit each.
/// `a < b`.
const LT: u8 = 1;
/// `a == b`.
const EQ: u8 = 2;
/// `a > b`.
const GT: u8 = 4;
/// `a & b != 0`.
const SET: u8 = 8;

/// The outcomes under which `op` jumps, and whether it compares signed.
#[inline(always)]
fn outcomes(op: JmpOp) -> (u8, bool) {
    match op {
        JmpOp::Eq => (EQ, false),
        JmpOp::Ne => (LT | GT, false),
        JmpOp::Gt => (GT, false),
        JmpOp::Ge => (GT | EQ, false),
        JmpOp::Lt => (LT, false),
        JmpOp::Le => (LT | EQ, false),
        JmpOp::Set => (SET, false),
        JmpOp::SGt => (GT, true),
        JmpOp::SGe => (GT | EQ, true),
        JmpOp::SLt => (LT, true),
        JmpOp::SLe => (LT | EQ, true),
    }
}

/// Whether `a op b` holds, on all 64 bits (`wide`) or the low 32. Without
/// a branch on `op`: the low 32 bits shifted to the top compare as the
/// 32-bit values do, and flipping the sign bit turns a signed comparison
/// into an unsigned one.
#[inline(always)]
pub(crate) fn cond(op: JmpOp, wide: bool, a: u64, b: u64) -> bool {
    let (jumps, signed) = outcomes(op);
    let shift = if wide { 0 } else { 32 };
    let flip = if signed { 1 << 63 } else { 0 };
    let (x, y) = ((a << shift) ^ flip, (b << shift) ^ flip);
    let holds = (u8::from(x < y) * LT)
        | (u8::from(x == y) * EQ)
        | (u8::from(x > y) * GT)
        | (u8::from((a << shift) & (b << shift) != 0) * SET);
    jumps & holds != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn division_edge_cases_follow_the_kernel() {
        assert_eq!(alu64(AluOp::Div, 7, 0), 0);
        assert_eq!(alu64(AluOp::Mod, 7, 0), 7);
        assert_eq!(
            alu64(AluOp::SDiv, i64::MIN as u64, u64::MAX),
            i64::MIN as u64
        );
        assert_eq!(alu64(AluOp::SMod, i64::MIN as u64, u64::MAX), 0);
        assert_eq!(alu64(AluOp::SMod, (-7i64) as u64, 2), (-1i64) as u64);
        assert_eq!(
            alu32(AluOp::SDiv, i32::MIN as u32, u32::MAX),
            i32::MIN as u32
        );
        assert_eq!(alu32(AluOp::Lsh, 1, 33), 2);
        assert_eq!(alu64(AluOp::Arsh, 1 << 63, 63), u64::MAX);
    }

    /// The conditions as the ISA defines them, one by one, on the
    /// operands' unsigned and signed values at the operation's width.
    fn reference(op: JmpOp, wide: bool, a: u64, b: u64) -> bool {
        let (ua, ub, sa, sb) = if wide {
            (a, b, a as i64, b as i64)
        } else {
            let signed = |v: u64| i64::from(v as u32 as i32);
            (a & 0xffff_ffff, b & 0xffff_ffff, signed(a), signed(b))
        };
        match op {
            JmpOp::Eq => ua == ub,
            JmpOp::Ne => ua != ub,
            JmpOp::Gt => ua > ub,
            JmpOp::Ge => ua >= ub,
            JmpOp::Lt => ua < ub,
            JmpOp::Le => ua <= ub,
            JmpOp::Set => ua & ub != 0,
            JmpOp::SGt => sa > sb,
            JmpOp::SGe => sa >= sb,
            JmpOp::SLt => sa < sb,
            JmpOp::SLe => sa <= sb,
        }
    }

    #[test]
    fn conditions_follow_the_isa_at_both_widths() {
        // Values around zero, the 32-bit sign bit and the 64-bit one, with
        // upper halves that must not matter at 32 bits.
        let mut values = Vec::new();
        for low in [
            0u64,
            1,
            2,
            0x7fff_ffff,
            0x8000_0000,
            0xffff_fffe,
            0xffff_ffff,
        ] {
            for high in [0u64, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff] {
                values.push(high << 32 | low);
            }
        }
        for op in JmpOp::ALL {
            for wide in [true, false] {
                for &a in &values {
                    for &b in &values {
                        assert_eq!(
                            cond(op, wide, a, b),
                            reference(op, wide, a, b),
                            "{op:?} wide={wide} {a:#x} {b:#x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn packet_pointers_compare_by_offset_and_never_equal_null() {
        let p = |kind, v| Val { kind, v };
        let data = p(Kind::Pkt, 256);
        let end = p(Kind::PktEnd, 300);
        assert!(compare(JmpOp::Gt, true, end, data).unwrap());
        assert!(!compare(JmpOp::SGt, true, data, end).unwrap());
        assert!(compare(JmpOp::Ne, true, data, Val::scalar(0)).unwrap());
        assert!(compare(JmpOp::Gt, true, data, Val::scalar(5)).is_err());
        assert!(compare(JmpOp::Eq, false, data, end).is_err());
        let d = pointer_alu(AluOp::Sub, true, end, data).unwrap();
        assert_eq!(d, Val::scalar(44));
    }
}
