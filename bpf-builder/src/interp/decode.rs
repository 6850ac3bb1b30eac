//! Decoding instructions once into a compact form the interpreter can
//! execute without re-parsing opcodes: the shared decoder
//! ([`crate::insn::decode`]) says what each encoding means, and this module
//! resolves it further: immediates widened, jump targets made absolute.
//! Encodings the kernel does not define, and forms the interpreter does not
//! support, become [`Op::Invalid`], an error only if executed.

use crate::insn::decode::{Decoded, WideLoad, decode};
use crate::insn::{AluOp, AtomicOp, Endian, Insn, JmpOp, Operand, Reg, Size};

/// The second operand of ALU and jump operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Src {
    /// A register.
    Reg(Reg),
    /// The immediate, already widened for the operation's width
    /// (sign-extended for 64-bit operations, zero-extended for 32-bit).
    Imm(u64),
}

/// Byte swap kinds (`BPF_END`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Swap {
    /// To little endian: a truncation on this (little-endian) machine.
    ToLe,
    /// To big endian or unconditional swap: reverse the bytes.
    Reverse,
}

/// One decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    /// `dst op= src` (32-bit when `!wide`), any operation but `Neg`.
    Alu {
        op: AluOp,
        wide: bool,
        dst: Reg,
        src: Src,
    },
    /// `dst = -dst`.
    Neg { wide: bool, dst: Reg },
    /// Sign-extending move from `bits` bits.
    MovSx {
        wide: bool,
        dst: Reg,
        src: Reg,
        bits: u8,
    },
    /// Byte order conversion of `bits` bits.
    End { swap: Swap, dst: Reg, bits: u8 },
    /// `dst = imm64`.
    LdImm64 { dst: Reg, value: u64 },
    /// `dst = map` (pseudo map fd or index).
    LdMap { dst: Reg, fd: i32 },
    /// `dst = &map value + off`.
    LdMapValue { dst: Reg, fd: i32, off: u32 },
    /// `dst = &function at target`.
    LdFunc { dst: Reg, target: usize },
    /// `dst = *(size *)(src + off)`, sign-extending when `sx`.
    Load {
        size: Size,
        sx: bool,
        dst: Reg,
        src: Reg,
        off: i16,
    },
    /// `*(size *)(dst + off) = src` (a register or an immediate).
    Store {
        size: Size,
        dst: Reg,
        off: i16,
        src: Src,
    },
    /// Atomic operation on `*(size *)(dst + off)`.
    Atomic {
        op: AtomicOp,
        size: Size,
        dst: Reg,
        src: Reg,
        off: i16,
    },
    /// Legacy packet load into r0 (`ind`: plus a register).
    LdAbs {
        size: Size,
        ind: Option<Reg>,
        imm: i32,
    },
    /// Unconditional jump.
    Ja { target: usize },
    /// Conditional jump.
    Jcond {
        op: JmpOp,
        wide: bool,
        dst: Reg,
        src: Src,
        target: usize,
    },
    /// `may_goto`: jump when the loop budget is used up.
    MayGoto { target: usize },
    /// Helper call.
    Call { id: i32 },
    /// bpf-to-bpf call.
    CallLocal { target: usize },
    /// Return from the function.
    Exit,
    /// An encoding that cannot run (the reason says why).
    Invalid(&'static str),
}

/// Decodes a whole program. The second slot of an `ld_imm64` decodes to
/// `Invalid`: jumping into the middle of a wide load is an error.
pub(crate) fn decode_program(insns: &[Insn]) -> Vec<Op> {
    let len = insns.len();
    let mut ops = Vec::with_capacity(len);
    let mut pc = 0;
    while pc < len {
        let insn = &insns[pc];
        let next = insns.get(pc + 1);
        ops.push(match decode(insn, next) {
            Ok(decoded) => resolve(decoded, pc, len),
            Err(why) => Op::Invalid(why),
        });
        if insn.is_wide() {
            if next.is_some() {
                ops.push(Op::Invalid("jump into the middle of an ld_imm64"));
            }
            pc += 2;
        } else {
            pc += 1;
        }
    }
    ops
}

/// `make` of the absolute target of a jump by `rel` from `pc` in a
/// `len`-slot program, or `Invalid(outside)` when the target is outside.
fn jump(
    pc: usize,
    rel: i32,
    len: usize,
    outside: &'static str,
    make: impl FnOnce(usize) -> Op,
) -> Op {
    let target = pc as i64 + 1 + i64::from(rel);
    match usize::try_from(target).ok().filter(|&t| t < len) {
        Some(target) => make(target),
        None => Op::Invalid(outside),
    }
}

/// An immediate as a 64-bit operand: sign-extended for 64-bit operations,
/// zero-extended from 32 bits for 32-bit ones.
fn widen(imm: i32, wide: bool) -> u64 {
    if wide {
        imm as i64 as u64
    } else {
        u64::from(imm as u32)
    }
}

/// The second operand of a `wide` or 32-bit operation.
fn operand(src: Operand, wide: bool) -> Src {
    match src {
        Operand::Reg(r) => Src::Reg(r),
        Operand::Imm(imm) => Src::Imm(widen(imm, wide)),
    }
}

/// What the instruction at `pc` of a `len`-slot program executes as.
fn resolve(decoded: Decoded, pc: usize, len: usize) -> Op {
    const JUMP_OUTSIDE: &str = "jump outside the program";
    match decoded {
        Decoded::Alu { op, wide, dst, src } => Op::Alu {
            op,
            wide,
            dst,
            src: operand(src, wide),
        },
        Decoded::Neg { wide, dst } => Op::Neg { wide, dst },
        Decoded::MovSx {
            wide,
            dst,
            src,
            bits,
        } => Op::MovSx {
            wide,
            dst,
            src,
            bits,
        },
        Decoded::AddrSpaceCast { .. } => Op::Invalid("addr_space_cast (arenas) is not supported"),
        Decoded::End { kind, dst, bits } => Op::End {
            swap: match kind {
                Endian::Le => Swap::ToLe,
                Endian::Be | Endian::Swap => Swap::Reverse,
            },
            dst,
            bits,
        },
        Decoded::LdImm64 { dst, value } => match value {
            WideLoad::Imm(value) => Op::LdImm64 { dst, value },
            WideLoad::MapFd(fd) | WideLoad::MapIdx(fd) => Op::LdMap { dst, fd },
            WideLoad::MapValue { fd, off } | WideLoad::MapIdxValue { idx: fd, off } => {
                Op::LdMapValue { dst, fd, off }
            }
            WideLoad::Func { rel } => jump(
                pc,
                rel,
                len,
                "function pointer outside the program",
                |target| Op::LdFunc { dst, target },
            ),
            WideLoad::BtfId { .. } => {
                Op::Invalid("ld_imm64 of a kernel BTF object is not supported")
            }
        },
        Decoded::Load {
            size,
            sx,
            dst,
            src,
            off,
        } => Op::Load {
            size,
            sx,
            dst,
            src,
            off,
        },
        // A stored immediate is sign-extended whatever the access size.
        Decoded::Store {
            size,
            dst,
            off,
            src,
        } => Op::Store {
            size,
            dst,
            off,
            src: operand(src, true),
        },
        Decoded::Atomic {
            op,
            size,
            dst,
            src,
            off,
        } => Op::Atomic {
            op,
            size,
            dst,
            src,
            off,
        },
        Decoded::LdAbs { size, ind, imm } => Op::LdAbs { size, ind, imm },
        Decoded::Ja { rel, .. } => jump(pc, rel, len, JUMP_OUTSIDE, |target| Op::Ja { target }),
        Decoded::Jcond {
            op,
            wide,
            dst,
            src,
            rel,
        } => jump(pc, rel.into(), len, JUMP_OUTSIDE, |target| Op::Jcond {
            op,
            wide,
            dst,
            src: operand(src, wide),
            target,
        }),
        Decoded::MayGoto { rel } => jump(pc, rel.into(), len, JUMP_OUTSIDE, |target| Op::MayGoto {
            target,
        }),
        Decoded::Call { id } => Op::Call { id },
        Decoded::CallLocal { rel } => jump(pc, rel, len, "call outside the program", |target| {
            Op::CallLocal { target }
        }),
        Decoded::CallKfunc { btf: 0, .. } => Op::Invalid("kfunc calls are not supported"),
        // Module kfuncs and calls through a register.
        Decoded::CallKfunc { .. } | Decoded::Callx { .. } => {
            Op::Invalid("malformed or indirect call")
        }
        Decoded::Exit => Op::Exit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::Reg::*;
    use crate::insn::{class, mode};

    #[test]
    fn immediates_widen_by_width() {
        let ops = decode_program(&[
            Insn::alu64(AluOp::Add, R1, -1),
            Insn::alu32(AluOp::Add, R1, -1),
        ]);
        assert_eq!(
            ops[0],
            Op::Alu {
                op: AluOp::Add,
                wide: true,
                dst: R1,
                src: Src::Imm(u64::MAX)
            }
        );
        assert_eq!(
            ops[1],
            Op::Alu {
                op: AluOp::Add,
                wide: false,
                dst: R1,
                src: Src::Imm(0xffff_ffff)
            }
        );
    }

    #[test]
    fn wide_loads_take_two_slots_and_jumps_are_absolute() {
        let [a, b] = Insn::ld_imm64(R2, 0x1_0000_0002);
        let ops = decode_program(&[Insn::ja(2), a, b, Insn::ja(-4), Insn::exit()]);
        assert_eq!(ops[0], Op::Ja { target: 3 });
        assert_eq!(
            ops[1],
            Op::LdImm64 {
                dst: R2,
                value: 0x1_0000_0002
            }
        );
        assert!(matches!(ops[2], Op::Invalid(_)));
        assert_eq!(ops[3], Op::Ja { target: 0 });
        assert_eq!(ops[4], Op::Exit);
    }

    #[test]
    fn bad_encodings_decode_to_invalid() {
        for i in [
            Insn::new(0xff, 0, 0, 0, 0),
            Insn::new(0xbf, 11, 0, 0, 0),
            Insn::ja(5),
            Insn::new(class::LD | mode::ABS | crate::insn::size::DW, 0, 0, 0, 0),
        ] {
            assert!(matches!(decode_program(&[i])[0], Op::Invalid(_)), "{i:?}");
        }
    }
}
