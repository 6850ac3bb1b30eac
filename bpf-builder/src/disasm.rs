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
//! one encoding. Which encodings those are is decided by the instruction
//! decoder the interpreter uses too (`insn::decode`, crate-private).

use std::collections::BTreeSet;
use std::fmt::Write;

use crate::helpers::Helper;
use crate::insn::decode::{Decoded, WideLoad, decode};
use crate::insn::{AtomicOp, Endian, Insn, Operand, Reg, Size};

/// Text of one instruction (`next` = the second slot for `ld_imm64`).
///
/// An `ld_imm64` without a valid second slot, and any encoding the kernel
/// does not define, is printed as raw bytes (`.insn ...`).
pub fn format_insn(insn: &Insn, next: Option<&Insn>) -> String {
    match decode(insn, next) {
        Ok(decoded) => text(decoded),
        Err(_) => raw(insn),
    }
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
    match decode(insn, next).ok()? {
        Decoded::LdImm64 { .. } => symbols.wide_load(pc),
        Decoded::Call { id } => symbols
            .call(pc)
            .or_else(|| Helper::from_id(id).map(|h| h.name().to_string())),
        Decoded::CallLocal { .. } | Decoded::CallKfunc { .. } => symbols.call(pc),
        _ => None,
    }
}

/// How many slots the instruction at `pc` covers.
fn width(insns: &[Insn], pc: usize) -> usize {
    match decode(&insns[pc], insns.get(pc + 1)) {
        Ok(Decoded::LdImm64 { .. }) => 2,
        _ => 1,
    }
}

/// The slot that the jump, subprogram call or `func[...]` load at `pc`
/// refers to, if it has one and it lies inside the program.
fn target_of(insns: &[Insn], pc: usize) -> Option<usize> {
    let rel = match decode(&insns[pc], insns.get(pc + 1)).ok()? {
        Decoded::Ja { rel, .. } | Decoded::CallLocal { rel } => rel,
        Decoded::Jcond { rel, .. } | Decoded::MayGoto { rel } => i32::from(rel),
        Decoded::LdImm64 {
            value: WideLoad::Func { rel },
            ..
        } => rel,
        _ => return None,
    };
    let target = pc as i64 + 1 + i64::from(rel);
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

/// The text of a decoded instruction.
fn text(decoded: Decoded) -> String {
    match decoded {
        Decoded::Alu { op, wide, dst, src } => {
            let operand = match src {
                Operand::Reg(s) => reg(s, wide),
                Operand::Imm(imm) => hex(i64::from(imm)),
            };
            format!("{} {} {operand}", reg(dst, wide), op.symbol())
        }
        Decoded::Neg { wide, dst } => {
            let rd = reg(dst, wide);
            format!("{rd} = -{rd}")
        }
        Decoded::MovSx {
            wide,
            dst,
            src,
            bits,
        } => format!("{} = (s{bits}){}", reg(dst, wide), reg(src, wide)),
        Decoded::AddrSpaceCast { dst, src, imm } => {
            let to = (imm as u32) >> 16;
            let from = imm as u32 & 0xffff;
            format!("{dst} = addr_space_cast({src}, {to:#x}, {from:#x})")
        }
        // Byte swaps: always written on the 64-bit register name.
        Decoded::End { kind, dst, bits } => {
            let kind = match kind {
                Endian::Le => "le",
                Endian::Be => "be",
                Endian::Swap => "bswap",
            };
            format!("{dst} = {kind}{bits} {dst}")
        }
        Decoded::LdImm64 { dst, value } => format!("{dst} = {} ll", wide_value(value)),
        Decoded::Load {
            size,
            sx,
            dst,
            src,
            off,
        } => {
            let ty = if sx { signed_type(size) } else { size.c_type() };
            format!("{dst} = *({ty} *)({})", addr(src, off))
        }
        Decoded::Store {
            size,
            dst,
            off,
            src,
        } => {
            let value = match src {
                Operand::Reg(s) => s.to_string(),
                Operand::Imm(imm) => hex(i64::from(imm)),
            };
            format!("*({} *)({}) = {value}", size.c_type(), addr(dst, off))
        }
        Decoded::Atomic {
            op,
            size,
            dst,
            src,
            off,
        } => atomic(op, size, dst, src, off),
        Decoded::LdAbs {
            size,
            ind: None,
            imm,
        } => format!("r0 = *({} *)skb[{}]", size.c_type(), hex(i64::from(imm))),
        Decoded::LdAbs {
            size,
            ind: Some(s),
            imm,
        } => {
            let index = match imm {
                0 => s.to_string(),
                imm if imm < 0 => format!("{s} - {:#x}", imm.unsigned_abs()),
                imm => format!("{s} + {imm:#x}"),
            };
            format!("r0 = *({} *)skb[{index}]", size.c_type())
        }
        Decoded::Ja { long: true, rel: r } => format!("gotol {}", rel(i64::from(r))),
        Decoded::Ja {
            long: false,
            rel: r,
        } => format!("goto {}", rel(i64::from(r))),
        Decoded::Jcond {
            op,
            wide,
            dst,
            src,
            rel: r,
        } => {
            let operand = match src {
                Operand::Reg(s) => reg(s, wide),
                Operand::Imm(imm) => hex(i64::from(imm)),
            };
            format!(
                "if {} {} {operand} goto {}",
                reg(dst, wide),
                op.symbol(),
                rel(i64::from(r))
            )
        }
        Decoded::MayGoto { rel: r } => format!("may_goto {}", rel(i64::from(r))),
        Decoded::Call { id } => format!("call {}", hex(i64::from(id))),
        Decoded::CallLocal { rel: r } => format!("call pc{}", rel(i64::from(r))),
        Decoded::CallKfunc { id, btf: 0 } => format!("call kfunc[id:{}]", id as u32),
        // A kfunc of a module: `btf` indexes the module's BTF fd.
        Decoded::CallKfunc { id, btf } => format!("call kfunc[id:{},btf:{btf}]", id as u32),
        Decoded::Callx { dst } => format!("callx {dst}"),
        Decoded::Exit => "exit".to_string(),
    }
}

/// What an `ld_imm64` loads, as written before ` ll`.
fn wide_value(value: WideLoad) -> String {
    match value {
        WideLoad::Imm(v) => hex(v as i64),
        WideLoad::MapFd(fd) => format!("map[fd:{fd}]"),
        WideLoad::MapValue { fd, off } => format!("map[fd:{fd}]+{off:#x}"),
        WideLoad::BtfId { id, fd: 0 } => format!("btf[id:{id}]"),
        WideLoad::BtfId { id, fd } => format!("btf[id:{id},fd:{fd}]"),
        WideLoad::Func { rel: r } => format!("func[pc{}]", rel(i64::from(r))),
        WideLoad::MapIdx(idx) => format!("map[idx:{idx}]"),
        WideLoad::MapIdxValue { idx, off } => format!("map[idx:{idx}]+{off:#x}"),
    }
}

fn atomic(op: AtomicOp, size: Size, d: Reg, s: Reg, off: i16) -> String {
    let ty = size.c_type();
    let wide = size == Size::DW;
    let at = addr(d, off);
    let rs = reg(s, wide);
    match op {
        AtomicOp::LoadAcquire => format!(
            "{} = load_acquire(({ty} *)({}))",
            reg(d, wide),
            addr(s, off)
        ),
        AtomicOp::StoreRelease => format!("store_release(({ty} *)({at}), {rs})"),
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::{AluOp, JmpOp, Reg::*};

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
