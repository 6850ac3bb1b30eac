//! Decoding instructions once into a compact form the interpreter can
//! execute without re-parsing opcodes: operations resolved, immediates
//! widened, jump targets made absolute. Encodings the kernel does not
//! define become [`Op::Invalid`], an error only if executed.

use crate::insn::{AluOp, AtomicOp, Insn, JmpOp, Size, class, mode, pseudo};

/// The second operand of ALU and jump operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Src {
    /// A register number.
    Reg(u8),
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
        dst: u8,
        src: Src,
    },
    /// `dst = -dst`.
    Neg { wide: bool, dst: u8 },
    /// Sign-extending move from `bits` bits.
    MovSx {
        wide: bool,
        dst: u8,
        src: u8,
        bits: u8,
    },
    /// Byte order conversion of `bits` bits.
    End { swap: Swap, dst: u8, bits: u8 },
    /// `dst = imm64`.
    LdImm64 { dst: u8, value: u64 },
    /// `dst = map` (pseudo map fd or index).
    LdMap { dst: u8, fd: i32 },
    /// `dst = &map value + off`.
    LdMapValue { dst: u8, fd: i32, off: u32 },
    /// `dst = &function at target`.
    LdFunc { dst: u8, target: usize },
    /// `dst = *(size *)(src + off)`, sign-extending when `sx`.
    Load {
        size: Size,
        sx: bool,
        dst: u8,
        src: u8,
        off: i16,
    },
    /// `*(size *)(dst + off) = src` (a register or an immediate).
    Store {
        size: Size,
        dst: u8,
        off: i16,
        src: Src,
    },
    /// Atomic operation on `*(size *)(dst + off)`.
    Atomic {
        op: AtomicOp,
        size: Size,
        dst: u8,
        src: u8,
        off: i16,
    },
    /// Legacy packet load into r0 (`ind`: plus a register).
    LdAbs {
        size: Size,
        ind: Option<u8>,
        imm: i32,
    },
    /// Unconditional jump.
    Ja { target: usize },
    /// Conditional jump.
    Jcond {
        op: JmpOp,
        wide: bool,
        dst: u8,
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
        if insn.is_wide() {
            let op = match insns.get(pc + 1) {
                Some(next) => decode_wide(insn, next, pc, len),
                None => Op::Invalid("ld_imm64 without its second half"),
            };
            ops.push(op);
            if pc + 1 < len {
                ops.push(Op::Invalid("jump into the middle of an ld_imm64"));
            }
            pc += 2;
        } else {
            ops.push(decode_one(insn, pc, len));
            pc += 1;
        }
    }
    ops
}

/// A register number, if it names r0-r10.
fn reg(n: u8) -> Option<u8> {
    (n <= 10).then_some(n)
}

/// The absolute target of a relative jump, if inside the program.
fn target(pc: usize, rel: i64, len: usize) -> Option<usize> {
    let t = pc as i64 + 1 + rel;
    usize::try_from(t).ok().filter(|&t| t < len)
}

fn decode_wide(i: &Insn, n: &Insn, pc: usize, len: usize) -> Op {
    let Some(dst) = reg(i.dst) else {
        return Op::Invalid("bad register");
    };
    if i.off != 0 || n.code != 0 || n.dst != 0 || n.src != 0 || n.off != 0 {
        return Op::Invalid("malformed ld_imm64");
    }
    match i.src {
        0 => Op::LdImm64 {
            dst,
            value: (u64::from(n.imm as u32) << 32) | u64::from(i.imm as u32),
        },
        pseudo::MAP_FD | pseudo::MAP_IDX if n.imm == 0 => Op::LdMap { dst, fd: i.imm },
        pseudo::MAP_VALUE | pseudo::MAP_IDX_VALUE => Op::LdMapValue {
            dst,
            fd: i.imm,
            off: n.imm as u32,
        },
        pseudo::FUNC if n.imm == 0 => match target(pc, i64::from(i.imm), len) {
            Some(target) => Op::LdFunc { dst, target },
            None => Op::Invalid("function pointer outside the program"),
        },
        pseudo::BTF_ID => Op::Invalid("ld_imm64 of a kernel BTF object is not supported"),
        _ => Op::Invalid("malformed ld_imm64"),
    }
}

fn decode_one(i: &Insn, pc: usize, len: usize) -> Op {
    let (Some(dst), Some(src)) = (reg(i.dst), reg(i.src)) else {
        return Op::Invalid("bad register");
    };
    match i.class() {
        class::ALU | class::ALU64 => decode_alu(i, dst, src),
        class::LDX => {
            let size = Size::from_bits(i.code);
            let sx = match i.code & 0xe0 {
                mode::MEM => false,
                mode::MEMSX if size != Size::DW => true,
                _ => return Op::Invalid("unknown load mode"),
            };
            if i.imm != 0 {
                return Op::Invalid("load with a non-zero imm");
            }
            Op::Load {
                size,
                sx,
                dst,
                src,
                off: i.off,
            }
        }
        class::ST => {
            if i.code & 0xe0 != mode::MEM || i.src != 0 {
                return Op::Invalid("unknown store mode");
            }
            Op::Store {
                size: Size::from_bits(i.code),
                dst,
                off: i.off,
                src: Src::Imm(i.imm as i64 as u64),
            }
        }
        class::STX => {
            let size = Size::from_bits(i.code);
            match i.code & 0xe0 {
                mode::MEM if i.imm == 0 => Op::Store {
                    size,
                    dst,
                    off: i.off,
                    src: Src::Reg(src),
                },
                mode::ATOMIC => match AtomicOp::from_imm(i.imm) {
                    Some(op @ (AtomicOp::LoadAcquire | AtomicOp::StoreRelease)) => Op::Atomic {
                        op,
                        size,
                        dst,
                        src,
                        off: i.off,
                    },
                    Some(op) if matches!(size, Size::W | Size::DW) => Op::Atomic {
                        op,
                        size,
                        dst,
                        src,
                        off: i.off,
                    },
                    _ => Op::Invalid("unknown atomic operation"),
                },
                _ => Op::Invalid("unknown store mode"),
            }
        }
        class::LD => {
            let size = Size::from_bits(i.code);
            if size == Size::DW || i.dst != 0 || i.off != 0 {
                return Op::Invalid("unknown ld instruction");
            }
            match i.code & 0xe0 {
                mode::ABS if i.src == 0 => Op::LdAbs {
                    size,
                    ind: None,
                    imm: i.imm,
                },
                mode::IND => Op::LdAbs {
                    size,
                    ind: Some(src),
                    imm: i.imm,
                },
                _ => Op::Invalid("unknown ld instruction"),
            }
        }
        _ => decode_jmp(i, pc, len),
    }
}

fn decode_alu(i: &Insn, dst: u8, src: u8) -> Op {
    let wide = i.class() == class::ALU64;
    let x = i.code & 0x08 != 0;
    let bits = i.code & 0xf0;
    if bits == 0xd0 {
        if i.src != 0 || i.off != 0 || !matches!(i.imm, 16 | 32 | 64) {
            return Op::Invalid("malformed byte swap");
        }
        let swap = match (wide, x) {
            (false, false) => Swap::ToLe,
            (false, true) | (true, false) => Swap::Reverse,
            (true, true) => return Op::Invalid("malformed byte swap"),
        };
        return Op::End {
            swap,
            dst,
            bits: i.imm as u8,
        };
    }
    if bits == AluOp::Mov as u8 && x && i.off != 0 {
        let ok = if wide {
            matches!(i.off, 8 | 16 | 32)
        } else {
            matches!(i.off, 8 | 16)
        };
        if wide && i.off == 1 {
            return Op::Invalid("addr_space_cast (arenas) is not supported");
        }
        if !ok || i.imm != 0 {
            return Op::Invalid("malformed sign-extending move");
        }
        return Op::MovSx {
            wide,
            dst,
            src,
            bits: i.off as u8,
        };
    }
    let Some(op) = AluOp::decode(bits, i.off) else {
        return Op::Invalid("unknown ALU operation");
    };
    if op == AluOp::Neg {
        if x || i.src != 0 || i.imm != 0 {
            return Op::Invalid("malformed neg");
        }
        return Op::Neg { wide, dst };
    }
    let src = if x {
        if i.imm != 0 {
            return Op::Invalid("ALU register operation with a non-zero imm");
        }
        Src::Reg(src)
    } else {
        if i.src != 0 {
            return Op::Invalid("ALU immediate operation with a source register");
        }
        Src::Imm(widen(i.imm, wide))
    };
    Op::Alu { op, wide, dst, src }
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

fn decode_jmp(i: &Insn, pc: usize, len: usize) -> Op {
    let j32 = i.class() == class::JMP32;
    let x = i.code & 0x08 != 0;
    let no_regs = i.dst == 0 && i.src == 0;
    let jump = |rel: i64| match target(pc, rel, len) {
        Some(target) => Op::Ja { target },
        None => Op::Invalid("jump outside the program"),
    };
    match i.code & 0xf0 {
        0x00 if x || !no_regs => Op::Invalid("malformed goto"),
        0x00 if j32 => {
            if i.off != 0 {
                return Op::Invalid("malformed gotol");
            }
            jump(i64::from(i.imm))
        }
        0x00 => {
            if i.imm != 0 {
                return Op::Invalid("malformed goto");
            }
            jump(i64::from(i.off))
        }
        0x80 => {
            if j32 || x || i.dst != 0 || i.off != 0 {
                return Op::Invalid("malformed or indirect call");
            }
            match i.src {
                0 => Op::Call { id: i.imm },
                pseudo::CALL => match target(pc, i64::from(i.imm), len) {
                    Some(target) => Op::CallLocal { target },
                    None => Op::Invalid("call outside the program"),
                },
                pseudo::KFUNC_CALL => Op::Invalid("kfunc calls are not supported"),
                _ => Op::Invalid("malformed call"),
            }
        }
        0x90 if !j32 && !x && no_regs && i.off == 0 && i.imm == 0 => Op::Exit,
        0xe0 if !j32 && !x && no_regs && i.imm == 0 => match target(pc, i64::from(i.off), len) {
            Some(target) => Op::MayGoto { target },
            None => Op::Invalid("jump outside the program"),
        },
        bits => {
            let Some(op) = JmpOp::decode(bits) else {
                return Op::Invalid("unknown jump operation");
            };
            let (Some(dst), Some(src_reg)) = (reg(i.dst), reg(i.src)) else {
                return Op::Invalid("bad register");
            };
            let src = if x {
                if i.imm != 0 {
                    return Op::Invalid("jump on a register with a non-zero imm");
                }
                Src::Reg(src_reg)
            } else {
                if i.src != 0 {
                    return Op::Invalid("jump on an immediate with a source register");
                }
                Src::Imm(widen(i.imm, !j32))
            };
            match target(pc, i64::from(i.off), len) {
                Some(target) => Op::Jcond {
                    op,
                    wide: !j32,
                    dst,
                    src,
                    target,
                },
                None => Op::Invalid("jump outside the program"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::Reg::*;

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
                dst: 1,
                src: Src::Imm(u64::MAX)
            }
        );
        assert_eq!(
            ops[1],
            Op::Alu {
                op: AluOp::Add,
                wide: false,
                dst: 1,
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
                dst: 2,
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
