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
/// pointer is its offset, as in [`super::machine::Val`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FastOp {
    /// `dst = src` (64-bit, or an immediate already widened).
    Mov {
        dst: Reg,
        src: Arg,
    },
    /// `dst = (u32)src`.
    Mov32 {
        dst: Reg,
        src: Reg,
    },
    /// `dst op= src` on 64 bits (numbers, or a pointer moved or two
    /// pointers subtracted: the same arithmetic on offsets).
    Alu64 {
        op: AluOp,
        dst: Reg,
        src: Arg,
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
    /// A number from the packet data.
    LoadPkt {
        size: u8,
        sx: bool,
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
    /// A comparison of numbers at the operation's width.
    Jcond {
        op: JmpOp,
        wide: bool,
        dst: Reg,
        src: Arg,
        target: usize,
    },
    /// A comparison of two packet pointers (as kernel addresses).
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

/// The pre-checked form of `ops` when the whole program types cleanly
/// as an XDP program, else `None` (it then always runs checked).
pub(crate) fn translate(ops: &[Op]) -> Option<Vec<FastOp>> {
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
    ops.iter()
        .zip(&states)
        .enumerate()
        .map(|(pc, (op, state))| match state {
            None => Some(FastOp::Unreached),
            Some(state) => type_op(*op, pc, state).map(|(fast, _, _)| fast),
        })
        .collect()
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
                (AluOp::Mov, true) if !matches!(b, Ty::Uninit | Ty::Mixed) => {
                    (FastOp::Mov { dst, src }, b)
                }
                (AluOp::Mov, false) if b == Ty::Scalar => match src {
                    Arg::Reg(src) => (FastOp::Mov32 { dst, src }, b),
                    // A 32-bit immediate is already zero-extended.
                    Arg::Imm(_) => (FastOp::Mov { dst, src }, b),
                },
                (AluOp::Mov, _) => return None,
                _ if a == Ty::Scalar && b == Ty::Scalar => {
                    let fast = if wide {
                        FastOp::Alu64 { op, dst, src }
                    } else {
                        FastOp::Alu32 { op, dst, src }
                    };
                    (fast, Ty::Scalar)
                }
                (AluOp::Add | AluOp::Sub, true) if a.movable() && b == Ty::Scalar => {
                    (FastOp::Alu64 { op, dst, src }, a)
                }
                (AluOp::Add, true) if a == Ty::Scalar && b.movable() => {
                    (FastOp::Alu64 { op, dst, src }, b)
                }
                (AluOp::Sub, true)
                    if (a.packet() && b.packet()) || (a == Ty::Stack && b == Ty::Stack) =>
                {
                    (FastOp::Alu64 { op, dst, src }, Ty::Scalar)
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
                Ty::Pkt => (
                    FastOp::LoadPkt {
                        size: n,
                        sx,
                        dst,
                        src,
                        off,
                    },
                    Ty::Scalar,
                ),
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
            FastOp::StoreStack {
                size: size_bytes(size),
                dst,
                off,
                src,
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
                _ if a == Ty::Scalar && b == Ty::Scalar => FastOp::Jcond {
                    op,
                    wide,
                    dst,
                    src,
                    target,
                },
                Arg::Reg(src) if wide && a.packet() && b.packet() => FastOp::JcondPkt {
                    op,
                    dst,
                    src,
                    target,
                },
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
