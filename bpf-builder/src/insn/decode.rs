//! What an encoding means: the one instruction decoder, shared by the
//! disassembler (which prints it) and the interpreter (which resolves it
//! further into what it executes).
//!
//! Decoding checks every field: an encoding the kernel does not define, or
//! that carries non-zero bits in a field the instruction does not use, is
//! an error saying why. Forms the kernel defines but the interpreter cannot
//! run (`addr_space_cast`, kfunc calls, `callx`, kernel BTF objects) decode
//! like any other; it is up to the interpreter to refuse them. Operands are
//! left as encoded: immediates as the 32-bit field, jump and call targets
//! relative to the next slot.

use super::{AluOp, AtomicOp, Endian, Insn, JmpOp, Operand, Reg, Size, class, mode, pseudo};

/// One decoded instruction; an `ld_imm64` covers two slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// `dst op= src` (32-bit when `!wide`), any operation but `Neg`.
    Alu {
        op: AluOp,
        wide: bool,
        dst: Reg,
        src: Operand,
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
    /// Arena address space cast: the address spaces are in `imm` (to in
    /// the high 16 bits, from in the low 16).
    AddrSpaceCast { dst: Reg, src: Reg, imm: i32 },
    /// Byte order conversion of `bits` bits.
    End { kind: Endian, dst: Reg, bits: u8 },
    /// The 16-byte `ld_imm64`.
    LdImm64 { dst: Reg, value: WideLoad },
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
        src: Operand,
    },
    /// Atomic operation on `*(size *)(dst + off)`.
    Atomic {
        op: AtomicOp,
        size: Size,
        dst: Reg,
        src: Reg,
        off: i16,
    },
    /// Legacy packet load into r0 from `imm` (`ind`: plus a register).
    LdAbs {
        size: Size,
        ind: Option<Reg>,
        imm: i32,
    },
    /// Unconditional jump: `goto` (16-bit distance) or `gotol` (32-bit,
    /// `long`).
    Ja { long: bool, rel: i32 },
    /// Conditional jump (32-bit comparison when `!wide`).
    Jcond {
        op: JmpOp,
        wide: bool,
        dst: Reg,
        src: Operand,
        rel: i16,
    },
    /// `may_goto`: jump when the loop budget is used up.
    MayGoto { rel: i16 },
    /// Helper call.
    Call { id: i32 },
    /// bpf-to-bpf call.
    CallLocal { rel: i32 },
    /// Kernel function call; `btf` indexes a module's BTF fd, 0 for
    /// vmlinux.
    CallKfunc { id: i32, btf: i16 },
    /// Indirect call through a register (LLVM puts it in the dst field).
    Callx { dst: Reg },
    /// Return from the function.
    Exit,
}

/// What an `ld_imm64` loads, by its pseudo source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WideLoad {
    /// A 64-bit constant.
    Imm(u64),
    /// A map, by fd.
    MapFd(i32),
    /// The address of a map's value plus `off`, map by fd.
    MapValue { fd: i32, off: u32 },
    /// A map, by index into the fd array.
    MapIdx(i32),
    /// The address of a map's value plus `off`, map by index.
    MapIdxValue { idx: i32, off: u32 },
    /// A kernel BTF object (`fd`: of a module's BTF, 0 for vmlinux).
    BtfId { id: u32, fd: i32 },
    /// The address of the function at `rel` slots after the next one.
    Func { rel: i32 },
}

/// Decodes `insn`; `next` is the slot after it, which only `ld_imm64`
/// reads.
pub(crate) fn decode(insn: &Insn, next: Option<&Insn>) -> Result<Decoded, &'static str> {
    if insn.is_wide() {
        let next = next.ok_or("ld_imm64 without its second half")?;
        return wide(insn, next);
    }
    let (Some(dst), Some(src)) = (insn.dst_reg(), insn.src_reg()) else {
        return Err("bad register");
    };
    match insn.class() {
        class::ALU | class::ALU64 => alu(insn, dst, src),
        class::LDX => ldx(insn, dst, src),
        class::ST => st(insn, dst),
        class::STX => stx(insn, dst, src),
        class::LD => ld(insn, src),
        _ => jmp(insn, dst, src),
    }
}

fn wide(i: &Insn, n: &Insn) -> Result<Decoded, &'static str> {
    let dst = i.dst_reg().ok_or("bad register")?;
    if i.off != 0 || n.code != 0 || n.dst != 0 || n.src != 0 || n.off != 0 {
        return Err("malformed ld_imm64");
    }
    let value = match (i.src, n.imm) {
        (0, hi) => WideLoad::Imm((u64::from(hi as u32) << 32) | u64::from(i.imm as u32)),
        (pseudo::MAP_FD, 0) => WideLoad::MapFd(i.imm),
        (pseudo::MAP_VALUE, off) => WideLoad::MapValue {
            fd: i.imm,
            off: off as u32,
        },
        (pseudo::BTF_ID, fd) => WideLoad::BtfId {
            id: i.imm as u32,
            fd,
        },
        (pseudo::FUNC, 0) => WideLoad::Func { rel: i.imm },
        (pseudo::MAP_IDX, 0) => WideLoad::MapIdx(i.imm),
        (pseudo::MAP_IDX_VALUE, off) => WideLoad::MapIdxValue {
            idx: i.imm,
            off: off as u32,
        },
        _ => return Err("malformed ld_imm64"),
    };
    Ok(Decoded::LdImm64 { dst, value })
}

fn alu(i: &Insn, dst: Reg, src: Reg) -> Result<Decoded, &'static str> {
    let wide = i.class() == class::ALU64;
    let x = i.code & 0x08 != 0;
    let bits = i.code & 0xf0;
    if bits == 0xd0 {
        if i.src != 0 || i.off != 0 || !matches!(i.imm, 16 | 32 | 64) {
            return Err("malformed byte swap");
        }
        let kind = match (wide, x) {
            (false, false) => Endian::Le,
            (false, true) => Endian::Be,
            (true, false) => Endian::Swap,
            (true, true) => return Err("malformed byte swap"),
        };
        return Ok(Decoded::End {
            kind,
            dst,
            bits: i.imm as u8,
        });
    }
    if bits == AluOp::Mov as u8 && x && i.off != 0 {
        if wide && i.off == 1 {
            return Ok(Decoded::AddrSpaceCast {
                dst,
                src,
                imm: i.imm,
            });
        }
        let ok = if wide {
            matches!(i.off, 8 | 16 | 32)
        } else {
            matches!(i.off, 8 | 16)
        };
        if !ok || i.imm != 0 {
            return Err("malformed sign-extending move");
        }
        return Ok(Decoded::MovSx {
            wide,
            dst,
            src,
            bits: i.off as u8,
        });
    }
    let op = AluOp::decode(bits, i.off).ok_or("unknown ALU operation")?;
    if op == AluOp::Neg {
        if x || i.src != 0 || i.imm != 0 {
            return Err("malformed neg");
        }
        return Ok(Decoded::Neg { wide, dst });
    }
    let src = if x {
        if i.imm != 0 {
            return Err("ALU register operation with a non-zero imm");
        }
        Operand::Reg(src)
    } else {
        if i.src != 0 {
            return Err("ALU immediate operation with a source register");
        }
        Operand::Imm(i.imm)
    };
    Ok(Decoded::Alu { op, wide, dst, src })
}

fn ldx(i: &Insn, dst: Reg, src: Reg) -> Result<Decoded, &'static str> {
    let size = Size::from_bits(i.code);
    let sx = match i.code & 0xe0 {
        mode::MEM => false,
        mode::MEMSX if size != Size::DW => true,
        _ => return Err("unknown load mode"),
    };
    if i.imm != 0 {
        return Err("load with a non-zero imm");
    }
    Ok(Decoded::Load {
        size,
        sx,
        dst,
        src,
        off: i.off,
    })
}

fn st(i: &Insn, dst: Reg) -> Result<Decoded, &'static str> {
    if i.code & 0xe0 != mode::MEM || i.src != 0 {
        return Err("unknown store mode");
    }
    Ok(Decoded::Store {
        size: Size::from_bits(i.code),
        dst,
        off: i.off,
        src: Operand::Imm(i.imm),
    })
}

fn stx(i: &Insn, dst: Reg, src: Reg) -> Result<Decoded, &'static str> {
    let size = Size::from_bits(i.code);
    match i.code & 0xe0 {
        mode::MEM if i.imm == 0 => Ok(Decoded::Store {
            size,
            dst,
            off: i.off,
            src: Operand::Reg(src),
        }),
        mode::ATOMIC => {
            let op = AtomicOp::from_imm(i.imm).ok_or("unknown atomic operation")?;
            // Read-modify-write operations exist for words and double
            // words only; acquire loads and release stores for all sizes.
            let any_size = matches!(op, AtomicOp::LoadAcquire | AtomicOp::StoreRelease);
            if !any_size && !matches!(size, Size::W | Size::DW) {
                return Err("unknown atomic operation");
            }
            Ok(Decoded::Atomic {
                op,
                size,
                dst,
                src,
                off: i.off,
            })
        }
        _ => Err("unknown store mode"),
    }
}

/// The legacy packet loads (`ld_imm64` is decoded apart).
fn ld(i: &Insn, src: Reg) -> Result<Decoded, &'static str> {
    let size = Size::from_bits(i.code);
    if size == Size::DW || i.dst != 0 || i.off != 0 {
        return Err("unknown ld instruction");
    }
    let ind = match i.code & 0xe0 {
        mode::ABS if i.src == 0 => None,
        mode::IND => Some(src),
        _ => return Err("unknown ld instruction"),
    };
    Ok(Decoded::LdAbs {
        size,
        ind,
        imm: i.imm,
    })
}

fn jmp(i: &Insn, dst: Reg, src: Reg) -> Result<Decoded, &'static str> {
    let j32 = i.class() == class::JMP32;
    let x = i.code & 0x08 != 0;
    let no_regs = i.dst == 0 && i.src == 0;
    match i.code & 0xf0 {
        0x00 if x || !no_regs => Err("malformed goto"),
        0x00 if j32 => {
            if i.off != 0 {
                return Err("malformed gotol");
            }
            Ok(Decoded::Ja {
                long: true,
                rel: i.imm,
            })
        }
        0x00 => {
            if i.imm != 0 {
                return Err("malformed goto");
            }
            Ok(Decoded::Ja {
                long: false,
                rel: i32::from(i.off),
            })
        }
        0x80 => call(i, dst, j32, x),
        0x90 if !j32 && !x && no_regs && i.off == 0 && i.imm == 0 => Ok(Decoded::Exit),
        0xe0 if !j32 && !x && no_regs && i.imm == 0 => Ok(Decoded::MayGoto { rel: i.off }),
        bits => {
            let op = JmpOp::decode(bits).ok_or("unknown jump operation")?;
            let src = if x {
                if i.imm != 0 {
                    return Err("jump on a register with a non-zero imm");
                }
                Operand::Reg(src)
            } else {
                if i.src != 0 {
                    return Err("jump on an immediate with a source register");
                }
                Operand::Imm(i.imm)
            };
            Ok(Decoded::Jcond {
                op,
                wide: !j32,
                dst,
                src,
                rel: i.off,
            })
        }
    }
}

fn call(i: &Insn, dst: Reg, j32: bool, x: bool) -> Result<Decoded, &'static str> {
    const MALFORMED: &str = "malformed or indirect call";
    if j32 {
        return Err(MALFORMED);
    }
    if x {
        let ok = i.src == 0 && i.off == 0 && i.imm == 0;
        return if ok {
            Ok(Decoded::Callx { dst })
        } else {
            Err(MALFORMED)
        };
    }
    if i.dst != 0 {
        return Err(MALFORMED);
    }
    match (i.src, i.off) {
        (0, 0) => Ok(Decoded::Call { id: i.imm }),
        (pseudo::CALL, 0) => Ok(Decoded::CallLocal { rel: i.imm }),
        (pseudo::KFUNC_CALL, btf) => Ok(Decoded::CallKfunc { id: i.imm, btf }),
        (_, 0) => Err("malformed call"),
        _ => Err(MALFORMED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::Reg::*;

    #[test]
    fn operands_stay_as_encoded() {
        assert_eq!(
            decode(&Insn::alu32(AluOp::Add, R1, -1), None),
            Ok(Decoded::Alu {
                op: AluOp::Add,
                wide: false,
                dst: R1,
                src: Operand::Imm(-1)
            })
        );
        assert_eq!(
            decode(&Insn::jmp32(JmpOp::SLe, R1, R2, -3), None),
            Ok(Decoded::Jcond {
                op: JmpOp::SLe,
                wide: false,
                dst: R1,
                src: Operand::Reg(R2),
                rel: -3
            })
        );
        assert_eq!(
            decode(&Insn::gotol(70000), None),
            Ok(Decoded::Ja {
                long: true,
                rel: 70000
            })
        );
    }

    #[test]
    fn wide_loads_need_their_second_slot() {
        let [a, b] = Insn::ld_imm64(R2, 0x1_0000_0002);
        assert_eq!(
            decode(&a, Some(&b)),
            Ok(Decoded::LdImm64 {
                dst: R2,
                value: WideLoad::Imm(0x1_0000_0002)
            })
        );
        assert_eq!(decode(&a, None), Err("ld_imm64 without its second half"));
        let [a, b] = Insn::ld_map_value(R1, 5, 8);
        assert_eq!(
            decode(&a, Some(&b)),
            Ok(Decoded::LdImm64 {
                dst: R1,
                value: WideLoad::MapValue { fd: 5, off: 8 }
            })
        );
        let mut b = b;
        b.src = 1;
        assert_eq!(decode(&a, Some(&b)), Err("malformed ld_imm64"));
    }

    #[test]
    fn forms_the_interpreter_refuses_still_decode() {
        assert_eq!(
            decode(&Insn::call_kfunc(1234), None),
            Ok(Decoded::CallKfunc { id: 1234, btf: 0 })
        );
        assert_eq!(
            decode(&Insn::addr_space_cast(R1, R2, 1, 0), None),
            Ok(Decoded::AddrSpaceCast {
                dst: R1,
                src: R2,
                imm: 1 << 16
            })
        );
    }

    #[test]
    fn unused_fields_must_be_zero() {
        // An immediate add with a source register.
        assert_eq!(
            decode(&Insn::new(0x07, 1, 2, 0, 5), None),
            Err("ALU immediate operation with a source register")
        );
        // Register 11 does not exist.
        assert_eq!(
            decode(&Insn::new(0xbf, 11, 1, 0, 0), None),
            Err("bad register")
        );
        // Read-modify-write atomics of a byte do not exist.
        assert_eq!(
            decode(&Insn::new(0xd3, 1, 2, 0, 0), None),
            Err("unknown atomic operation")
        );
        // `exit` with an offset is no jump either.
        assert_eq!(
            decode(&Insn::new(0x95, 0, 0, 1, 0), None),
            Err("unknown jump operation")
        );
    }
}
