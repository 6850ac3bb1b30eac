//! The pre-checked form of an XDP program: at decode time, a pass over
//! the program finds what each register holds before each instruction
//! (a number, the context, a pointer into the packet, the metadata or the
//! stack, `data_end`). When every reachable instruction is one whose
//! checked run could only fault by an out-of-bounds access or the
//! instruction budget, the program is translated to [`FastOp`]s that run
//! on untagged registers ([`super::fast`]).
//!
//! The form is only for programs without side effects before their exit:
//! no helper or function calls, no maps, no stores outside the stack, no
//! pointer spills. A run that would fault is abandoned and run again,
//! from the start, by the checked interpreter, which finds the fault (the
//! stack the abandoned run wrote is cleared as any run's is).

use super::ctx::{CtxRead, XdpCtx, xdp_read};
use super::decode::{Op, Src, Swap};
use super::exec::BASE;
use crate::insn::{AluOp, JmpOp, Reg, Size};

/// What a register holds before an instruction, for every path to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    /// Never written on some path (a read is the checked run's fault).
    Uninit,
    /// Different kinds on different paths.
    Mixed,
    Scalar,
    /// The context, unmoved.
    Ctx,
    Pkt,
    Meta,
    PktEnd,
    /// Into the stack of the program's only frame.
    Stack,
}

impl Ty {
    /// A pointer into the packet buffer (pointers that compare and
    /// subtract by offset).
    fn packet(self) -> bool {
        matches!(self, Ty::Pkt | Ty::Meta | Ty::PktEnd)
    }

    /// A pointer a number may move (the context is not tracked moved).
    fn movable(self) -> bool {
        matches!(self, Ty::Pkt | Ty::Meta | Ty::Stack)
    }

    /// What a path from `self` and a path from `other` leave.
    fn join(self, other: Ty) -> Ty {
        if self == other { self } else { Ty::Mixed }
    }
}

/// The registers' kinds before an instruction.
type State = [Ty; 11];

/// The second operand of a typed operation: a register or an immediate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Arg {
    Reg(Reg),
    Imm(u64),
}

/// One instruction of the pre-checked form. Registers are untagged: a
/// pointer is its offset, as in [`super::machine::Val`]. The common
/// operations of filters have their own variants (one dispatch each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FastOp {
    /// `dst = imm` (already widened).
    MovImm {
        dst: Reg,
        imm: u64,
    },
    /// `dst = src` (64-bit).
    Mov {
        dst: Reg,
        src: Reg,
    },
    /// `dst = (u32)src`.
    Mov32 {
        dst: Reg,
        src: Reg,
    },
    /// `dst += imm` on 64 bits (a number, or a pointer moved: the same
    /// arithmetic on offsets).
    AddImm64 {
        dst: Reg,
        imm: u64,
    },
    /// `dst += src` on 64 bits.
    Add64 {
        dst: Reg,
        src: Reg,
    },
    /// `dst -= src` on 64 bits (numbers, a pointer moved, or the distance
    /// between two pointers).
    Sub64 {
        dst: Reg,
        src: Arg,
    },
    /// `dst &= src` on 32 bits.
    And32 {
        dst: Reg,
        src: Arg,
    },
    /// `dst op= src` on 64 bits, any other operation.
    Alu64 {
        op: AluOp,
        dst: Reg,
        src: Arg,
    },
    /// `dst = (u32)dst << shift` (a header length in words made bytes).
    Lsh32Imm {
        dst: Reg,
        shift: u32,
    },
    /// `dst op= src` on 32 bits (numbers).
    Alu32 {
        op: AluOp,
        dst: Reg,
        src: Arg,
    },
    Neg {
        wide: bool,
        dst: Reg,
    },
    MovSx {
        wide: bool,
        dst: Reg,
        src: Reg,
        bits: u8,
    },
    End {
        swap: Swap,
        dst: Reg,
        bits: u8,
    },
    /// `dst = imm64`, then skip the second slot.
    LdImm64 {
        dst: Reg,
        value: u64,
    },
    /// A byte, a half word or a word from the packet data.
    LoadPkt1 {
        dst: Reg,
        src: Reg,
        off: i16,
    },
    LoadPkt2 {
        dst: Reg,
        src: Reg,
        off: i16,
    },
    LoadPkt4 {
        dst: Reg,
        src: Reg,
        off: i16,
    },
    /// A number from the packet data, any size.
    LoadPkt {
        size: u8,
        sx: bool,
        dst: Reg,
        src: Reg,
        off: i16,
    },
    /// A load of 1, 2 or 4 packet bytes into `dst` fused with the test of
    /// the next instruction: `if (u32)dst == imm` (`!=` when `ne`).
    LoadPkt1Test(LoadTest),
    LoadPkt2Test(LoadTest),
    LoadPkt4Test(LoadTest),
    /// `dst += imm` fused with the next instruction's bounds check
    /// `if dst + bias > src + bias goto target`.
    AddImmJGt {
        dst: Reg,
        imm: u64,
        src: Reg,
        bias: u64,
        target: usize,
    },
    /// `dst = from` and the [`FastOp::AddImmJGt`] of the next two
    /// instructions.
    MovAddImmJGt {
        dst: Reg,
        from: Reg,
        imm: u64,
        src: Reg,
        bias: u64,
        target: usize,
    },
    /// `dst -= sub` fused with the next instruction's check
    /// `if dst + bias > src + bias goto target` (a variable offset
    /// against the captured length).
    SubJGt {
        dst: Reg,
        sub: Reg,
        src: Reg,
        bias: u64,
        target: usize,
    },
    /// `dst = from` and the [`FastOp::SubJGt`] of the next two
    /// instructions.
    MovSubJGt {
        dst: Reg,
        from: Reg,
        sub: Reg,
        src: Reg,
        bias: u64,
        target: usize,
    },
    /// `r0 = imm` and the final exit.
    ExitImm {
        imm: u64,
    },
    /// A word from the metadata.
    LoadMeta4 {
        dst: Reg,
        src: Reg,
        off: i16,
    },
    /// A number from the metadata.
    LoadMeta {
        size: u8,
        sx: bool,
        dst: Reg,
        src: Reg,
        off: i16,
    },
    /// A number from the stack.
    LoadStack {
        size: u8,
        sx: bool,
        dst: Reg,
        src: Reg,
        off: i16,
    },
    /// `dst = ctx->data` (and `data_end`, `data_meta`, another field).
    CtxData {
        dst: Reg,
    },
    CtxDataEnd {
        dst: Reg,
    },
    CtxDataMeta {
        dst: Reg,
    },
    CtxField {
        dst: Reg,
        off: i16,
    },
    /// A word of a register into the stack (what filters store).
    StoreStack4 {
        dst: Reg,
        off: i16,
        src: Reg,
    },
    /// A number into the stack.
    StoreStack {
        size: u8,
        dst: Reg,
        off: i16,
        src: Arg,
    },
    Ja {
        target: usize,
    },
    /// `if (u32)dst == imm goto target` (protocol tests).
    JEqImm32 {
        dst: Reg,
        imm: u32,
        target: usize,
    },
    /// `if (u32)dst != imm goto target`.
    JNeImm32 {
        dst: Reg,
        imm: u32,
        target: usize,
    },
    /// `if (u32)dst & imm goto target` (flag and fragment tests).
    JSetImm32 {
        dst: Reg,
        imm: u32,
        target: usize,
    },
    /// `if dst < imm goto target` (length tests).
    JLtImm64 {
        dst: Reg,
        imm: u64,
        target: usize,
    },
    /// `if dst + bias > src + bias goto target` (bounds checks: `bias`
    /// makes packet pointers kernel addresses).
    JGtReg64 {
        dst: Reg,
        src: Reg,
        bias: u64,
        target: usize,
    },
    /// The unsigned conditional jumps, on prepared operands.
    JEq(Jump),
    JNe(Jump),
    JGt(Jump),
    JGe(Jump),
    JLt(Jump),
    JLe(Jump),
    JSet(Jump),
    /// Any comparison of numbers at the operation's width.
    Jcond {
        op: JmpOp,
        wide: bool,
        dst: Reg,
        src: Arg,
        target: usize,
    },
    /// Any comparison of two packet pointers (as kernel addresses).
    JcondPkt {
        op: JmpOp,
        dst: Reg,
        src: Reg,
        target: usize,
    },
    /// The final exit with a number in r0.
    Exit,
    /// No path reaches it.
    Unreached,
}

/// r0 at the exit when the program is moves of immediates from its first
/// instruction to its exit.
fn constant(ops: &[FastOp]) -> Option<u64> {
    let mut r0 = None;
    for op in ops {
        match *op {
            FastOp::MovImm { dst: Reg::R0, imm } => r0 = Some(imm),
            FastOp::MovImm { .. } => {}
            FastOp::Exit => return r0,
            _ => return None,
        }
    }
    None
}

/// A packet load and the test of the loaded value that follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LoadTest {
    pub(crate) dst: Reg,
    pub(crate) src: Reg,
    pub(crate) off: i16,
    pub(crate) imm: u32,
    pub(crate) ne: bool,
    pub(crate) target: usize,
}

/// Fuses the pairs of instructions filters are made of (a load and a
/// test of what it loaded, a pointer moved and its bounds check) into
/// the first of them, one dispatch for both. The second stays as it is
/// for the jumps that land on it.
fn fuse(ops: &mut [FastOp]) {
    // From the end, so that a fused pair can take the instruction before
    // it too (a copy of the pointer it then moves and checks).
    for pc in (1..ops.len()).rev() {
        let fused = match (ops[pc - 1], ops[pc]) {
            (
                FastOp::LoadPkt1 { dst, src, off }
                | FastOp::LoadPkt2 { dst, src, off }
                | FastOp::LoadPkt4 { dst, src, off },
                FastOp::JEqImm32 {
                    dst: d,
                    imm,
                    target,
                }
                | FastOp::JNeImm32 {
                    dst: d,
                    imm,
                    target,
                },
            ) if d == dst => {
                let t = LoadTest {
                    dst,
                    src,
                    off,
                    imm,
                    ne: matches!(ops[pc], FastOp::JNeImm32 { .. }),
                    target,
                };
                match ops[pc - 1] {
                    FastOp::LoadPkt1 { .. } => FastOp::LoadPkt1Test(t),
                    FastOp::LoadPkt2 { .. } => FastOp::LoadPkt2Test(t),
                    _ => FastOp::LoadPkt4Test(t),
                }
            }
            (
                FastOp::AddImm64 { dst, imm },
                FastOp::JGtReg64 {
                    dst: d,
                    src,
                    bias,
                    target,
                },
            ) if d == dst => FastOp::AddImmJGt {
                dst,
                imm,
                src,
                bias,
                target,
            },
            (
                FastOp::Sub64 {
                    dst,
                    src: Arg::Reg(sub),
                },
                FastOp::JGtReg64 {
                    dst: d,
                    src,
                    bias,
                    target,
                },
            ) if d == dst => FastOp::SubJGt {
                dst,
                sub,
                src,
                bias,
                target,
            },
            (
                FastOp::Mov { dst, src: from },
                FastOp::SubJGt {
                    dst: d,
                    sub,
                    src,
                    bias,
                    target,
                },
            ) if d == dst => FastOp::MovSubJGt {
                dst,
                from,
                sub,
                src,
                bias,
                target,
            },
            (FastOp::MovImm { dst: Reg::R0, imm }, FastOp::Exit) => FastOp::ExitImm { imm },
            (
                FastOp::Mov { dst, src: from },
                FastOp::AddImmJGt {
                    dst: d,
                    imm,
                    src,
                    bias,
                    target,
                },
            ) if d == dst => FastOp::MovAddImmJGt {
                dst,
                from,
                imm,
                src,
                bias,
                target,
            },
            _ => continue,
        };
        ops[pc - 1] = fused;
    }
}

/// An unsigned conditional jump: it compares `(dst + bias) & mask` with
/// `(src + bias) & mask` (the low 32 bits of numbers for a 32-bit
/// comparison; packet pointers as the kernel addresses the checked run
/// compares).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Jump {
    pub(crate) dst: Reg,
    pub(crate) src: Arg,
    pub(crate) mask: u64,
    pub(crate) bias: u64,
    pub(crate) target: usize,
}

/// The typed form of a conditional jump (`pointers`: of two packet
/// pointers, `wide`).
fn jump(op: JmpOp, wide: bool, pointers: bool, dst: Reg, src: Arg, target: usize) -> FastOp {
    let j = Jump {
        dst,
        src,
        mask: if wide { u64::MAX } else { 0xffff_ffff },
        bias: if pointers { BASE } else { 0 },
        target,
    };
    match (op, src) {
        (JmpOp::Eq, Arg::Imm(imm)) if !wide => FastOp::JEqImm32 {
            dst,
            imm: imm as u32,
            target,
        },
        (JmpOp::Ne, Arg::Imm(imm)) if !wide => FastOp::JNeImm32 {
            dst,
            imm: imm as u32,
            target,
        },
        (JmpOp::Set, Arg::Imm(imm)) if !wide => FastOp::JSetImm32 {
            dst,
            imm: imm as u32,
            target,
        },
        (JmpOp::Lt, Arg::Imm(imm)) if wide && !pointers => FastOp::JLtImm64 { dst, imm, target },
        (JmpOp::Gt, Arg::Reg(src)) if wide => FastOp::JGtReg64 {
            dst,
            src,
            bias: j.bias,
            target,
        },
        (JmpOp::Eq, _) => FastOp::JEq(j),
        (JmpOp::Ne, _) => FastOp::JNe(j),
        (JmpOp::Gt, _) => FastOp::JGt(j),
        (JmpOp::Ge, _) => FastOp::JGe(j),
        (JmpOp::Lt, _) => FastOp::JLt(j),
        (JmpOp::Le, _) => FastOp::JLe(j),
        (JmpOp::Set, _) => FastOp::JSet(j),
        (_, Arg::Reg(src)) if pointers => FastOp::JcondPkt {
            op,
            dst,
            src,
            target,
        },
        _ => FastOp::Jcond {
            op,
            wide,
            dst,
            src,
            target,
        },
    }
}

/// The typed form of `dst op= src` on numbers (or offsets).
fn alu(op: AluOp, wide: bool, dst: Reg, src: Arg) -> FastOp {
    match (op, wide) {
        (AluOp::Add, true) => match src {
            Arg::Imm(imm) => FastOp::AddImm64 { dst, imm },
            Arg::Reg(src) => FastOp::Add64 { dst, src },
        },
        (AluOp::Sub, true) => FastOp::Sub64 { dst, src },
        (AluOp::And, false) => FastOp::And32 { dst, src },
        (AluOp::Lsh, false) if let Arg::Imm(imm) = src => FastOp::Lsh32Imm {
            dst,
            // As the checked run shifts.
            shift: imm as u32 & 31,
        },
        (_, true) => FastOp::Alu64 { op, dst, src },
        (_, false) => FastOp::Alu32 { op, dst, src },
    }
}

/// A program in its pre-checked form.
#[derive(Debug)]
pub(crate) struct Prechecked {
    /// One operation per instruction slot.
    pub(crate) ops: Vec<FastOp>,
    /// The pointers its first instructions load, loaded by a run's
    /// set-up instead.
    pub(crate) entry: EntryLoads,
    /// What the program returns when that is all it does: moves of
    /// immediates from its start to its exit (the empty filter).
    pub(crate) constant: Option<u64>,
    /// Whether any instruction loads from the stack (else what earlier
    /// runs left there cannot matter to a run).
    pub(crate) reads_stack: bool,
}

/// The pre-checked form of `ops` when the whole program types cleanly
/// as an XDP program, else `None` (it then always runs checked).
pub(crate) fn translate(ops: &[Op]) -> Option<Prechecked> {
    if ops.is_empty() {
        return None;
    }
    let mut states: Vec<Option<State>> = vec![None; ops.len()];
    let mut entry = [Ty::Uninit; 11];
    entry[1] = Ty::Ctx;
    entry[10] = Ty::Stack;
    states[0] = Some(entry);
    let mut work = vec![0];
    // Kinds only ever widen to `Mixed`, so this ends; and a use that
    // fails typing fails for any wider state too, so giving up early is
    // the final answer.
    while let Some(pc) = work.pop() {
        let state = states[pc]?;
        let (_, after, next) = type_op(ops[pc], pc, &state)?;
        for target in next.into_iter().flatten() {
            let slot = states.get_mut(target)?;
            let joined = match slot {
                None => after,
                Some(old) => std::array::from_fn(|r| old[r].join(after[r])),
            };
            if *slot != Some(joined) {
                *slot = Some(joined);
                work.push(target);
            }
        }
    }
    let ops = ops
        .iter()
        .zip(&states)
        .enumerate()
        .map(|(pc, (op, state))| match state {
            None => Some(FastOp::Unreached),
            Some(state) => type_op(*op, pc, state).map(|(fast, _, _)| fast),
        })
        .collect::<Option<Vec<FastOp>>>()?;
    let constant = constant(&ops);
    let reads_stack = ops.iter().any(|op| matches!(op, FastOp::LoadStack { .. }));
    let entry = entry_loads(&ops);
    let mut ops = ops;
    fuse(&mut ops);
    Some(Prechecked {
        ops,
        entry,
        constant,
        reads_stack,
    })
}

/// The context's packet pointers that a program's first instructions
/// load into registers (what every filter starts with): a run's set-up
/// loads them, and the run starts after those instructions. They stay in
/// the program: a jump that lands on one runs it again, as it should.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct EntryLoads {
    /// The register that gets `ctx->data`, if one does.
    pub(crate) data: Option<Reg>,
    /// The register that gets `ctx->data_end`.
    pub(crate) data_end: Option<Reg>,
    /// The register that gets `ctx->data_meta`.
    pub(crate) data_meta: Option<Reg>,
    /// The first instruction after them.
    pub(crate) start: usize,
}

/// The leading loads of `ops` that [`EntryLoads`] can take: each of a
/// different pointer into a different register (so that the order the
/// set-up loads them in cannot matter).
fn entry_loads(ops: &[FastOp]) -> EntryLoads {
    let mut entry = EntryLoads::default();
    let mut written = Vec::new();
    for (pc, op) in ops.iter().enumerate() {
        let (slot, dst) = match *op {
            FastOp::CtxData { dst } => (&mut entry.data, dst),
            FastOp::CtxDataEnd { dst } => (&mut entry.data_end, dst),
            FastOp::CtxDataMeta { dst } => (&mut entry.data_meta, dst),
            _ => break,
        };
        if slot.is_some() || written.contains(&dst) {
            break;
        }
        *slot = Some(dst);
        written.push(dst);
        entry.start = pc + 1;
    }
    entry
}

/// The typed form of `op` at `pc` in `state`, the state after it and
/// where it may go; `None` when it does not type cleanly.
fn type_op(op: Op, pc: usize, state: &State) -> Option<(FastOp, State, [Option<usize>; 2])> {
    let ty = |r: Reg| state[r as usize];
    let arg = |src: Src| match src {
        Src::Reg(r) => (Arg::Reg(r), ty(r)),
        Src::Imm(i) => (Arg::Imm(i), Ty::Scalar),
    };
    let mut after = *state;
    let mut write = |dst: Reg, t: Ty| (dst != Reg::R10).then(|| after[dst as usize] = t);
    let next = [Some(pc + 1), None];
    let fast = match op {
        Op::Alu { op, wide, dst, src } => {
            let (src, b) = arg(src);
            let a = ty(dst);
            let (fast, t) = match (op, wide) {
                (AluOp::Mov, _) => match src {
                    // A 32-bit immediate is already zero-extended.
                    Arg::Imm(imm) => (FastOp::MovImm { dst, imm }, Ty::Scalar),
                    Arg::Reg(src) if wide && !matches!(b, Ty::Uninit | Ty::Mixed) => {
                        (FastOp::Mov { dst, src }, b)
                    }
                    Arg::Reg(src) if !wide && b == Ty::Scalar => {
                        (FastOp::Mov32 { dst, src }, Ty::Scalar)
                    }
                    Arg::Reg(_) => return None,
                },
                _ if a == Ty::Scalar && b == Ty::Scalar => (alu(op, wide, dst, src), Ty::Scalar),
                (AluOp::Add | AluOp::Sub, true) if a.movable() && b == Ty::Scalar => {
                    (alu(op, wide, dst, src), a)
                }
                (AluOp::Add, true) if a == Ty::Scalar && b.movable() => {
                    (alu(op, wide, dst, src), b)
                }
                (AluOp::Sub, true)
                    if (a.packet() && b.packet()) || (a == Ty::Stack && b == Ty::Stack) =>
                {
                    (alu(op, wide, dst, src), Ty::Scalar)
                }
                _ => return None,
            };
            write(dst, t)?;
            fast
        }
        Op::Neg { wide, dst } if ty(dst) == Ty::Scalar => {
            write(dst, Ty::Scalar)?;
            FastOp::Neg { wide, dst }
        }
        Op::MovSx {
            wide,
            dst,
            src,
            bits,
        } if ty(src) == Ty::Scalar => {
            write(dst, Ty::Scalar)?;
            FastOp::MovSx {
                wide,
                dst,
                src,
                bits,
            }
        }
        Op::End { swap, dst, bits } if ty(dst) == Ty::Scalar => {
            write(dst, Ty::Scalar)?;
            FastOp::End { swap, dst, bits }
        }
        Op::LdImm64 { dst, value } => {
            write(dst, Ty::Scalar)?;
            return Some((FastOp::LdImm64 { dst, value }, after, [Some(pc + 2), None]));
        }
        Op::Load {
            size,
            sx,
            dst,
            src,
            off,
        } => {
            let n = size_bytes(size);
            let (fast, t) = match ty(src) {
                Ty::Ctx if !sx => {
                    // Which field depends only on the offset and size.
                    match xdp_read(&XdpCtx::default(), off.into(), n.into()).ok()? {
                        CtxRead::Data => (FastOp::CtxData { dst }, Ty::Pkt),
                        CtxRead::DataEnd => (FastOp::CtxDataEnd { dst }, Ty::PktEnd),
                        CtxRead::DataMeta => (FastOp::CtxDataMeta { dst }, Ty::Meta),
                        CtxRead::Scalar(_) => (FastOp::CtxField { dst, off }, Ty::Scalar),
                    }
                }
                Ty::Pkt => {
                    let fast = match (n, sx) {
                        (1, false) => FastOp::LoadPkt1 { dst, src, off },
                        (2, false) => FastOp::LoadPkt2 { dst, src, off },
                        (4, false) => FastOp::LoadPkt4 { dst, src, off },
                        _ => FastOp::LoadPkt {
                            size: n,
                            sx,
                            dst,
                            src,
                            off,
                        },
                    };
                    (fast, Ty::Scalar)
                }
                Ty::Meta if n == 4 && !sx => (FastOp::LoadMeta4 { dst, src, off }, Ty::Scalar),
                Ty::Meta => (
                    FastOp::LoadMeta {
                        size: n,
                        sx,
                        dst,
                        src,
                        off,
                    },
                    Ty::Scalar,
                ),
                Ty::Stack => (
                    FastOp::LoadStack {
                        size: n,
                        sx,
                        dst,
                        src,
                        off,
                    },
                    Ty::Scalar,
                ),
                _ => return None,
            };
            write(dst, t)?;
            fast
        }
        Op::Store {
            size,
            dst,
            off,
            src,
        } => {
            let (src, v) = arg(src);
            if ty(dst) != Ty::Stack || v != Ty::Scalar {
                return None;
            }
            match (size, src) {
                (Size::W, Arg::Reg(src)) => FastOp::StoreStack4 { dst, off, src },
                _ => FastOp::StoreStack {
                    size: size_bytes(size),
                    dst,
                    off,
                    src,
                },
            }
        }
        Op::Ja { target } => return Some((FastOp::Ja { target }, after, [Some(target), None])),
        Op::Jcond {
            op,
            wide,
            dst,
            src,
            target,
        } => {
            let (src, b) = arg(src);
            let a = ty(dst);
            let fast = match src {
                _ if a == Ty::Scalar && b == Ty::Scalar => jump(op, wide, false, dst, src, target),
                Arg::Reg(_) if wide && a.packet() && b.packet() => {
                    jump(op, wide, true, dst, src, target)
                }
                _ => return None,
            };
            return Some((fast, after, [Some(pc + 1), Some(target)]));
        }
        Op::Exit if ty(Reg::R0) == Ty::Scalar => return Some((FastOp::Exit, after, [None, None])),
        _ => return None,
    };
    Some((fast, after, next))
}

/// Bytes of an access size.
fn size_bytes(size: Size) -> u8 {
    size.bytes() as u8
}
