//! Text of instructions in LLVM's BPF assembly syntax, as `llvm-objdump -d
//! --mcpu=v4` prints it and `llvm-mc -triple bpfel -mcpu=v4` parses it:
//! `r1 = *(u32 *)(r2 + 0x4)`, `if w1 s< 0x5 goto +0x3`, `call 0x1`.
//!
//! Numbers are printed as llvm-objdump prints them: signed hexadecimal
//! immediates and offsets, jump distances with an explicit sign.
//!
//! A few forms have no LLVM syntax, because LLVM leaves them to the loader's
//! relocations. They are printed in a bpftool-like notation that llvm-mc
//! rejects (rather than silently assembling into something else):
//! - `ld_imm64` with a pseudo source: `r1 = map[fd:5] ll`,
//!   `r1 = map[fd:5]+0x8 ll`, `r1 = map[idx:2] ll`, `r1 = map[idx:2]+0x8 ll`,
//!   `r1 = btf[id:123] ll`, `r1 = func[pc+0x3] ll`;
//! - calls to subprograms and kernel functions: `call pc+0x3`,
//!   `call kfunc[id:123]`;
//! - legacy indirect packet loads with an offset: `r0 = *(u8 *)skb[r1 + 0x4]`.
//!
//! Encodings the kernel does not define (or that carry non-zero bits in
//! fields the instruction does not use) are printed as their raw bytes,
//! `.insn 8f 01 00 00 00 00 00 00`, so that every other text names exactly
//! one encoding.

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::helpers::Helper;
use crate::insn::{AluOp, AtomicOp, Insn, JmpOp, Reg, Size, class, mode, pseudo};

/// Text of one instruction (`next` = the second slot for `ld_imm64`).
///
/// An `ld_imm64` without a valid second slot, and any encoding the kernel
/// does not define, is printed as raw bytes (`.insn ...`).
pub fn format_insn(insn: &Insn, next: Option<&Insn>) -> String {
    text(insn, next).unwrap_or_else(|| raw(insn))
}

/// What a listing may know beyond raw instructions (all default to `None`).
pub trait Symbols {
    /// Name of a label bound at `pc`.
    fn label(&self, _pc: usize) -> Option<String> {
        None
    }
    /// What the `ld_imm64` at `pc` loads, e.g. `map counters`,
    /// `map .rodata + 8`, `func cb`.
    fn wide_load(&self, _pc: usize) -> Option<String> {
        None
    }
    /// What the call at `pc` calls, e.g. `bpf_map_lookup_elem`,
    /// `subprog parse`. Helper calls default to the helper's name.
    fn call(&self, _pc: usize) -> Option<String> {
        None
    }
    /// Source annotation of the instruction at `pc`.
    fn annotation(&self, _pc: usize) -> Option<String> {
        None
    }
}

/// [`Symbols`] that know nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSymbols;

impl Symbols for NoSymbols {}

/// Column at which trailing `; <...>` comments start (after `pc: `).
const COMMENT_COLUMN: usize = 40;

/// A whole listing, one line per instruction, laid out like this:
///
/// ```text
/// ; annotation of the following run of instructions
///     0: r1 = map[fd:0] ll                       ; <map counters>
///     2: if r1 == 0x0 goto +0x1 <out>
///     3: call 0x1                                ; <bpf_map_lookup_elem>
/// out:
///     4: exit
/// ```
///
/// - `pc: text`, pc right-aligned to 5 columns, counted in 8-byte slots
///   (an `ld_imm64` takes two, as in llvm-objdump);
/// - a line `name:` before every instruction that a jump, call or
///   `func[...]` load targets, or that [`Symbols::label`] names; generated
///   names are `LBB_<pc>`; targets are repeated after the jump as `<name>`;
/// - `; annotation` lines (one per line of the annotation) before the first
///   instruction of each run of instructions with the same annotation;
/// - `; <what>` trailing comments on `ld_imm64` ([`Symbols::wide_load`]) and
///   calls ([`Symbols::call`], else the helper's name), aligned to a fixed
///   column.
pub fn listing(insns: &[Insn], symbols: &dyn Symbols) -> String {
    // First pass: where instructions start (ld_imm64 covers two slots).
    let mut starts = Vec::new();
    let mut pc = 0;
    while pc < insns.len() {
        starts.push(pc);
        pc += width(insns, pc);
    }
    let start_set: BTreeSet<usize> = starts.iter().copied().collect();
    let targets: BTreeSet<usize> = starts
        .iter()
        .filter_map(|&pc| target_of(insns, pc))
        .filter(|t| start_set.contains(t))
        .collect();
    let label_of =
        |pc: usize| -> String { symbols.label(pc).unwrap_or_else(|| format!("LBB_{pc}")) };

    let mut out = String::new();
    let mut last_annotation: Option<String> = None;
    for &pc in &starts {
        if targets.contains(&pc) || symbols.label(pc).is_some() {
            let _ = writeln!(out, "{}:", label_of(pc));
        }
        let annotation = symbols.annotation(pc);
        if annotation.is_some() && annotation != last_annotation {
            for line in annotation.iter().flat_map(|a| a.lines()) {
                let _ = writeln!(out, "; {line}");
            }
        }
        last_annotation = annotation;

        let insn = &insns[pc];
        let next = insns.get(pc + 1);
        let mut line = format_insn(insn, next);
        if let Some(t) = target_of(insns, pc).filter(|t| targets.contains(t)) {
            let _ = write!(line, " <{}>", label_of(t));
        }
        if let Some(comment) = comment(insn, pc, next, symbols) {
            line = format!("{line:<COMMENT_COLUMN$} ; <{comment}>");
        }
        let _ = writeln!(out, "{pc:>5}: {line}");
    }
    out
}

/// The trailing comment of the instruction at `pc`, if any.
fn comment(insn: &Insn, pc: usize, next: Option<&Insn>, symbols: &dyn Symbols) -> Option<String> {
    text(insn, next)?;
    if insn.is_wide() {
        return symbols.wide_load(pc);
    }
    if insn.code == class::JMP | 0x80 {
        if let Some(what) = symbols.call(pc) {
            return Some(what);
        }
        if insn.src == 0 {
            return Helper::from_id(insn.imm).map(|h| h.name().to_string());
        }
    }
    None
}

/// How many slots the instruction at `pc` covers.
fn width(insns: &[Insn], pc: usize) -> usize {
    let insn = &insns[pc];
    if insn.is_wide() && text(insn, insns.get(pc + 1)).is_some() {
        2
    } else {
        1
    }
}

/// The slot that the jump, subprogram call or `func[...]` load at `pc`
/// refers to, if it has one and it lies inside the program.
fn target_of(insns: &[Insn], pc: usize) -> Option<usize> {
    let insn = &insns[pc];
    text(insn, insns.get(pc + 1))?;
    let rel = if insn.is_jump() {
        if insn.class() == class::JMP32 && insn.code & 0xf0 == 0 {
            i64::from(insn.imm) // gotol
        } else {
            i64::from(insn.off)
        }
    } else if insn.is_pseudo_call() || (insn.is_wide() && insn.src == pseudo::FUNC) {
        i64::from(insn.imm)
    } else {
        return None;
    };
    let target = pc as i64 + 1 + rel;
    usize::try_from(target).ok().filter(|&t| t < insns.len())
}

/// `.insn` followed by the 8 raw bytes.
fn raw(insn: &Insn) -> String {
    let mut s = String::from(".insn");
    for b in insn.to_bytes() {
        let _ = write!(s, " {b:02x}");
    }
    s
}

/// Signed hexadecimal, as llvm-objdump prints immediates: `0x5`, `-0x5`.
fn hex(v: i64) -> String {
    if v < 0 {
        format!("-{:#x}", v.unsigned_abs())
    } else {
        format!("{v:#x}")
    }
}

/// A jump distance with its sign: `+0x3`, `-0x3`, `+0x0`.
fn rel(v: i64) -> String {
    if v < 0 {
        hex(v)
    } else {
        format!("+{}", hex(v))
    }
}

/// A memory operand without parentheses: `r1 + 0x4`, `r10 - 0x8`.
fn addr(base: Reg, off: i16) -> String {
    if off < 0 {
        format!("{base} - {:#x}", off.unsigned_abs())
    } else {
        format!("{base} + {off:#x}")
    }
}

/// A register name: `r1` for 64-bit operands, `w1` for 32-bit ones.
fn reg(r: Reg, wide: bool) -> String {
    if wide {
        format!("r{}", r.num())
    } else {
        format!("w{}", r.num())
    }
}

/// The C type of a signed access (`s8` ... `s64`).
fn signed_type(size: Size) -> &'static str {
    match size {
        Size::B => "s8",
        Size::H => "s16",
        Size::W => "s32",
        Size::DW => "s64",
    }
}

/// The text of a valid instruction, `None` for encodings the kernel does
/// not define.
fn text(insn: &Insn, next: Option<&Insn>) -> Option<String> {
    match insn.class() {
        class::ALU | class::ALU64 => alu(insn),
        class::LD => ld(insn, next),
        class::LDX => ldx(insn),
        class::ST => st(insn),
        class::STX => stx(insn),
        _ => jmp(insn),
    }
}

/// Both register fields, which must name registers.
fn regs(insn: &Insn) -> Option<(Reg, Reg)> {
    Some((insn.dst_reg()?, insn.src_reg()?))
}

fn alu(i: &Insn) -> Option<String> {
    let wide = i.class() == class::ALU64;
    let (d, s) = regs(i)?;
    let rd = reg(d, wide);
    let x = i.code & 0x08 != 0;
    let bits = i.code & 0xf0;
    if bits == 0xd0 {
        // Byte swaps: always written on the 64-bit register name.
        if i.src != 0 || i.off != 0 || !matches!(i.imm, 16 | 32 | 64) {
            return None;
        }
        let kind = match (wide, x) {
            (false, false) => "le",
            (false, true) => "be",
            (true, false) => "bswap",
            (true, true) => return None,
        };
        return Some(format!("{d} = {kind}{} {d}", i.imm));
    }
    if bits == AluOp::Mov as u8 && x && i.off != 0 {
        if wide && i.off == 1 {
            let to = (i.imm as u32) >> 16;
            let from = i.imm as u32 & 0xffff;
            return Some(format!("{d} = addr_space_cast({s}, {to:#x}, {from:#x})"));
        }
        let ok = if wide {
            matches!(i.off, 8 | 16 | 32)
        } else {
            matches!(i.off, 8 | 16)
        };
        if !ok || i.imm != 0 {
            return None;
        }
        return Some(format!("{rd} = (s{}){}", i.off, reg(s, wide)));
    }
    let op = AluOp::decode(bits, i.off)?;
    if op == AluOp::Neg {
        if x || i.src != 0 || i.imm != 0 {
            return None;
        }
        return Some(format!("{rd} = -{rd}"));
    }
    let operand = if x {
        if i.imm != 0 {
            return None;
        }
        reg(s, wide)
    } else {
        if i.src != 0 {
            return None;
        }
        hex(i64::from(i.imm))
    };
    Some(format!("{rd} {} {operand}", op.symbol()))
}

fn ld(i: &Insn, next: Option<&Insn>) -> Option<String> {
    let size = Size::from_bits(i.code);
    match (i.code & 0xe0, size) {
        (mode::IMM, Size::DW) => wide(i, next?),
        (mode::ABS, Size::B | Size::H | Size::W) => {
            if i.dst != 0 || i.src != 0 || i.off != 0 {
                return None;
            }
            Some(format!(
                "r0 = *({} *)skb[{}]",
                size.c_type(),
                hex(i64::from(i.imm))
            ))
        }
        (mode::IND, Size::B | Size::H | Size::W) => {
            let s = i.src_reg()?;
            if i.dst != 0 || i.off != 0 {
                return None;
            }
            let index = match i.imm {
                0 => s.to_string(),
                imm if imm < 0 => format!("{s} - {:#x}", imm.unsigned_abs()),
                imm => format!("{s} + {imm:#x}"),
            };
            Some(format!("r0 = *({} *)skb[{index}]", size.c_type()))
        }
        _ => None,
    }
}

/// The 16-byte `ld_imm64`, given its second slot.
fn wide(i: &Insn, n: &Insn) -> Option<String> {
    let d = i.dst_reg()?;
    if i.off != 0 || n.code != 0 || n.dst != 0 || n.src != 0 || n.off != 0 {
        return None;
    }
    let value = match (i.src, n.imm) {
        (0, hi) => hex((i64::from(hi) << 32) | i64::from(i.imm as u32)),
        (pseudo::MAP_FD, 0) => format!("map[fd:{}]", i.imm),
        (pseudo::MAP_VALUE, off) => format!("map[fd:{}]+{:#x}", i.imm, off as u32),
        (pseudo::BTF_ID, 0) => format!("btf[id:{}]", i.imm as u32),
        (pseudo::BTF_ID, fd) => format!("btf[id:{},fd:{fd}]", i.imm as u32),
        (pseudo::FUNC, 0) => format!("func[pc{}]", rel(i64::from(i.imm))),
        (pseudo::MAP_IDX, 0) => format!("map[idx:{}]", i.imm),
        (pseudo::MAP_IDX_VALUE, off) => format!("map[idx:{}]+{:#x}", i.imm, off as u32),
        _ => return None,
    };
    Some(format!("{d} = {value} ll"))
}

fn ldx(i: &Insn) -> Option<String> {
    let (d, s) = regs(i)?;
    let size = Size::from_bits(i.code);
    if i.imm != 0 {
        return None;
    }
    let ty = match (i.code & 0xe0, size) {
        (mode::MEM, _) => size.c_type(),
        (mode::MEMSX, Size::B | Size::H | Size::W) => signed_type(size),
        _ => return None,
    };
    Some(format!("{d} = *({ty} *)({})", addr(s, i.off)))
}

fn st(i: &Insn) -> Option<String> {
    let d = i.dst_reg()?;
    if i.code & 0xe0 != mode::MEM || i.src != 0 {
        return None;
    }
    let ty = Size::from_bits(i.code).c_type();
    Some(format!(
        "*({ty} *)({}) = {}",
        addr(d, i.off),
        hex(i64::from(i.imm))
    ))
}

fn stx(i: &Insn) -> Option<String> {
    let (d, s) = regs(i)?;
    let size = Size::from_bits(i.code);
    let ty = size.c_type();
    match i.code & 0xe0 {
        mode::MEM if i.imm == 0 => Some(format!("*({ty} *)({}) = {s}", addr(d, i.off))),
        mode::ATOMIC => atomic(i, d, s, size),
        _ => None,
    }
}

fn atomic(i: &Insn, d: Reg, s: Reg, size: Size) -> Option<String> {
    let op = AtomicOp::from_imm(i.imm)?;
    let ty = size.c_type();
    let wide = size == Size::DW;
    let at = addr(d, i.off);
    match op {
        AtomicOp::LoadAcquire => {
            return Some(format!(
                "{} = load_acquire(({ty} *)({}))",
                reg(d, wide),
                addr(s, i.off)
            ));
        }
        AtomicOp::StoreRelease => {
            return Some(format!("store_release(({ty} *)({at}), {})", reg(s, wide)));
        }
        _ => {}
    }
    // Read-modify-write operations exist for words and double words only.
    if !matches!(size, Size::W | Size::DW) {
        return None;
    }
    let rs = reg(s, wide);
    Some(match op {
        AtomicOp::Add => format!("lock *({ty} *)({at}) += {rs}"),
        AtomicOp::Or => format!("lock *({ty} *)({at}) |= {rs}"),
        AtomicOp::And => format!("lock *({ty} *)({at}) &= {rs}"),
        AtomicOp::Xor => format!("lock *({ty} *)({at}) ^= {rs}"),
        AtomicOp::FetchAdd => format!("{rs} = atomic_fetch_add(({ty} *)({at}), {rs})"),
        AtomicOp::FetchOr => format!("{rs} = atomic_fetch_or(({ty} *)({at}), {rs})"),
        AtomicOp::FetchAnd => format!("{rs} = atomic_fetch_and(({ty} *)({at}), {rs})"),
        AtomicOp::FetchXor => format!("{rs} = atomic_fetch_xor(({ty} *)({at}), {rs})"),
        AtomicOp::Xchg if wide => format!("{rs} = xchg_64({at}, {rs})"),
        AtomicOp::Xchg => format!("{rs} = xchg32_32({at}, {rs})"),
        AtomicOp::CmpXchg if wide => format!("r0 = cmpxchg_64({at}, r0, {rs})"),
        AtomicOp::CmpXchg => format!("w0 = cmpxchg32_32({at}, w0, {rs})"),
        AtomicOp::LoadAcquire | AtomicOp::StoreRelease => return None,
    })
}

fn jmp(i: &Insn) -> Option<String> {
    let (d, s) = regs(i)?;
    let j32 = i.class() == class::JMP32;
    let x = i.code & 0x08 != 0;
    let no_regs = i.dst == 0 && i.src == 0;
    match i.code & 0xf0 {
        0x00 => {
            if x || !no_regs {
                None
            } else if j32 {
                (i.off == 0).then(|| format!("gotol {}", rel(i64::from(i.imm))))
            } else {
                (i.imm == 0).then(|| format!("goto {}", rel(i64::from(i.off))))
            }
        }
        0x80 => call(i, j32, x),
        0x90 => (!j32 && !x && no_regs && i.off == 0 && i.imm == 0).then(|| "exit".to_string()),
        0xe0 => (!j32 && !x && no_regs && i.imm == 0)
            .then(|| format!("may_goto {}", rel(i64::from(i.off)))),
        bits => {
            let op = JmpOp::decode(bits)?;
            let operand = if x {
                if i.imm != 0 {
                    return None;
                }
                reg(s, !j32)
            } else {
                if i.src != 0 {
                    return None;
                }
                hex(i64::from(i.imm))
            };
            Some(format!(
                "if {} {} {operand} goto {}",
                reg(d, !j32),
                op.symbol(),
                rel(i64::from(i.off))
            ))
        }
    }
}

fn call(i: &Insn, j32: bool, x: bool) -> Option<String> {
    if j32 {
        return None;
    }
    if x {
        // `callx`: LLVM puts the register in the dst field.
        let d = i.dst_reg()?;
        let ok = i.src == 0 && i.off == 0 && i.imm == 0;
        return ok.then(|| format!("callx {d}"));
    }
    if i.dst != 0 {
        return None;
    }
    match (i.src, i.off) {
        (0, 0) => Some(format!("call {}", hex(i64::from(i.imm)))),
        (pseudo::CALL, 0) => Some(format!("call pc{}", rel(i64::from(i.imm)))),
        (pseudo::KFUNC_CALL, 0) => Some(format!("call kfunc[id:{}]", i.imm as u32)),
        // A kfunc of a module: `off` indexes the module's BTF fd.
        (pseudo::KFUNC_CALL, btf) => Some(format!("call kfunc[id:{},btf:{btf}]", i.imm as u32)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::{Endian, Reg::*};

    fn one(i: Insn) -> String {
        format_insn(&i, None)
    }

    #[test]
    fn formats_like_llvm_objdump() {
        assert_eq!(
            one(Insn::ldx(Size::W, R1, R2, 4)),
            "r1 = *(u32 *)(r2 + 0x4)"
        );
        assert_eq!(
            one(Insn::ldx(Size::B, R1, R10, -32768)),
            "r1 = *(u8 *)(r10 - 0x8000)"
        );
        assert_eq!(one(Insn::alu32(AluOp::Add, R1, 5)), "w1 += 0x5");
        assert_eq!(one(Insn::alu64(AluOp::Add, R1, -1)), "r1 += -0x1");
        assert_eq!(
            one(Insn::alu64(AluOp::Mov, R1, i32::MIN)),
            "r1 = -0x80000000"
        );
        assert_eq!(one(Insn::jmp(JmpOp::Gt, R1, 5, 3)), "if r1 > 0x5 goto +0x3");
        assert_eq!(
            one(Insn::jmp32(JmpOp::SLe, R1, R2, -3)),
            "if w1 s<= w2 goto -0x3"
        );
        assert_eq!(
            one(Insn::atomic(AtomicOp::FetchAdd, Size::DW, R1, 0, R0)),
            "r0 = atomic_fetch_add((u64 *)(r1 + 0x0), r0)"
        );
        assert_eq!(
            one(Insn::atomic(AtomicOp::CmpXchg, Size::W, R1, -8, R2)),
            "w0 = cmpxchg32_32(r1 - 0x8, w0, w2)"
        );
        let [a, b] = Insn::ld_imm64(R1, 0x1122_3344_5566_7788);
        assert_eq!(format_insn(&a, Some(&b)), "r1 = 0x1122334455667788 ll");
        let [a, b] = Insn::ld_imm64(R1, u64::MAX);
        assert_eq!(format_insn(&a, Some(&b)), "r1 = -0x1 ll");
        assert_eq!(one(Insn::call_helper(1)), "call 0x1");
        assert_eq!(one(Insn::exit()), "exit");
        assert_eq!(one(Insn::endian(Endian::Swap, R1, 16)), "r1 = bswap16 r1");
        assert_eq!(one(Insn::endian(Endian::Be, R1, 16)), "r1 = be16 r1");
        assert_eq!(one(Insn::alu64(AluOp::SDiv, R1, R2)), "r1 s/= r2");
        assert_eq!(one(Insn::movsx64(R1, R2, 8)), "r1 = (s8)r2");
        assert_eq!(one(Insn::movsx32(R1, R2, 16)), "w1 = (s16)w2");
        assert_eq!(
            one(Insn::ldxsx(Size::B, R1, R2, 0)),
            "r1 = *(s8 *)(r2 + 0x0)"
        );
        assert_eq!(one(Insn::gotol(70000)), "gotol +0x11170");
        assert_eq!(one(Insn::ja(-1)), "goto -0x1");
        assert_eq!(one(Insn::may_goto(0)), "may_goto +0x0");
        assert_eq!(one(Insn::alu32(AluOp::Neg, R3, 0)), "w3 = -w3");
    }

    #[test]
    fn pseudo_forms_use_bracket_notation() {
        let f = |[a, b]: [Insn; 2]| format_insn(&a, Some(&b));
        assert_eq!(f(Insn::ld_map_fd(R1, 5)), "r1 = map[fd:5] ll");
        assert_eq!(f(Insn::ld_map_value(R2, 5, 8)), "r2 = map[fd:5]+0x8 ll");
        assert_eq!(f(Insn::ld_btf_id(R3, 77)), "r3 = btf[id:77] ll");
        assert_eq!(f(Insn::ld_func(R4, -3)), "r4 = func[pc-0x3] ll");
        assert_eq!(one(Insn::call_rel(3)), "call pc+0x3");
        assert_eq!(one(Insn::call_kfunc(1234)), "call kfunc[id:1234]");
        assert_eq!(one(Insn::ld_ind(Size::H, R1, 0)), "r0 = *(u16 *)skb[r1]");
        assert_eq!(
            one(Insn::ld_ind(Size::H, R1, -4)),
            "r0 = *(u16 *)skb[r1 - 0x4]"
        );
    }

    #[test]
    fn invalid_encodings_print_raw_bytes() {
        // Unused src field set on an immediate add.
        let i = Insn::new(0x07, 1, 2, 0, 5);
        assert_eq!(one(i), ".insn 07 21 00 00 05 00 00 00");
        // Opcode 0xff does not exist.
        assert_eq!(
            one(Insn::new(0xff, 0, 0, 0, 0)),
            ".insn ff 00 00 00 00 00 00 00"
        );
        // A lone first half of ld_imm64.
        let [a, _] = Insn::ld_imm64(R1, 7);
        assert_eq!(format_insn(&a, None), ".insn 18 01 00 00 07 00 00 00");
        // Register 11 does not exist.
        assert_eq!(
            one(Insn::new(0xbf, 11, 1, 0, 0)),
            ".insn bf 1b 00 00 00 00 00 00"
        );
        // Read-modify-write atomics of a byte do not exist.
        let i = Insn::new(0xd3, 1, 2, 0, 0); // STX | ATOMIC | B, add
        assert_eq!(one(i), ".insn d3 21 00 00 00 00 00 00");
    }

    /// A tiny deterministic generator (xorshift64), enough to scatter
    /// field values; no dependency needed.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let interesting_imm = [0, 1, 8, 16, 32, 64, 0x100, 0x110, -1, i32::MIN, i32::MAX];
        let interesting_off = [0, 1, 8, 16, 32, -1, i16::MIN, i16::MAX];
        for code in 0..=255u8 {
            for regs in 0..=255u8 {
                for k in 0..8 {
                    let r = rng.next();
                    let imm = if k < 4 {
                        interesting_imm[(r % interesting_imm.len() as u64) as usize]
                    } else {
                        (r >> 32) as i32
                    };
                    let off = if k % 2 == 0 {
                        interesting_off[((r >> 8) % interesting_off.len() as u64) as usize]
                    } else {
                        (r >> 16) as i16
                    };
                    let mut bytes = [0u8; 8];
                    bytes[0] = code;
                    bytes[1] = regs;
                    bytes[2..4].copy_from_slice(&off.to_le_bytes());
                    bytes[4..].copy_from_slice(&imm.to_le_bytes());
                    let insn = Insn::from_bytes(bytes);
                    let next = Insn::from_bytes(rng.next().to_le_bytes());
                    let zero_next = Insn::new(0, 0, 0, 0, imm);
                    for n in [None, Some(&next), Some(&zero_next)] {
                        let s = format_insn(&insn, n);
                        assert!(!s.is_empty());
                    }
                }
            }
        }
        // Whole listings of random byte streams, including jumps everywhere.
        for _ in 0..200 {
            let insns: Vec<Insn> = (0..64)
                .map(|_| Insn::from_bytes(rng.next().to_le_bytes()))
                .collect();
            let text = listing(&insns, &NoSymbols);
            assert!(text.lines().count() >= 32);
        }
    }

    struct Names;

    impl Symbols for Names {
        fn label(&self, pc: usize) -> Option<String> {
            (pc == 6).then(|| "out".to_string())
        }
        fn wide_load(&self, pc: usize) -> Option<String> {
            (pc == 1).then(|| "map counters".to_string())
        }
        fn annotation(&self, pc: usize) -> Option<String> {
            match pc {
                0..=3 => Some("look up the counter".to_string()),
                4 | 5 => Some("count\nand loop".to_string()),
                _ => None,
            }
        }
    }

    #[test]
    fn listing_shows_labels_comments_and_annotations() {
        let [ld0, ld1] = Insn::ld_map_fd(R1, 0);
        let insns = [
            Insn::mov64(R6, R1),                // 0
            ld0,                                // 1
            ld1,                                // 2
            Insn::call_helper(1),               // 3
            Insn::jmp(JmpOp::Eq, R0, 0, 1),     // 4 -> 6 (out)
            Insn::jmp32(JmpOp::Lt, R6, 10, -6), // 5 -> 0 (LBB_0)
            Insn::mov64(R0, 0),                 // 6
            Insn::ja(-2),                       // 7 -> 6 (out)
            Insn::exit(),                       // 8
        ];
        let expected = "\
LBB_0:
; look up the counter
    0: r6 = r1
    1: r1 = map[fd:0] ll                        ; <map counters>
    3: call 0x1                                 ; <bpf_map_lookup_elem>
; count
; and loop
    4: if r0 == 0x0 goto +0x1 <out>
    5: if w6 < 0xa goto -0x6 <LBB_0>
out:
    6: r0 = 0x0
    7: goto -0x2 <out>
    8: exit
";
        assert_eq!(listing(&insns, &Names), expected);
    }

    #[test]
    fn listing_without_symbols_names_targets_by_pc() {
        let insns = [
            Insn::call_rel(2),  // 0 -> 3
            Insn::exit(),       // 1
            Insn::ja(5),        // 2 -> 8: outside, no label
            Insn::mov64(R0, 1), // 3
            Insn::exit(),       // 4
        ];
        let expected = "    0: call pc+0x2 <LBB_3>
    1: exit
    2: goto +0x5
LBB_3:
    3: r0 = 0x1
    4: exit
";
        assert_eq!(listing(&insns, &NoSymbols), expected);
    }
}
