//! The encoding oracle: every instruction our constructors produce is
//! printed with `format_insn`, assembled by LLVM's `llvm-mc`, and the bytes
//! LLVM chose must equal our `to_bytes()`. This checks the encoder and the
//! disassembler's syntax at once.
//!
//! Forms LLVM cannot write (pseudo `ld_imm64` sources, kfunc calls, ...)
//! are listed in `hand_checked` with the reason and the bytes written by
//! hand from the kernel's Documentation/bpf/standardization/instruction-set.rst.
//! Calls to subprograms and long `gotol`s need labels: they are assembled to
//! an object file and compared with its `.text`.
//!
//! llvm-mc is taken from `LLVM_MC`, else the newest `/usr/lib/llvm-*/bin`
//! one that knows ISA v4. Without one the test fails when `CI` is set and
//! is skipped otherwise.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bpf_builder::disasm::format_insn;
use bpf_builder::insn::{AluOp, AtomicOp, Endian, Insn, JmpOp, Reg, Reg::*, Size};

/// One instruction (one or two slots) and what made it.
#[derive(Clone, Debug)]
struct Case {
    what: String,
    insns: Vec<Insn>,
}

impl Case {
    fn new(what: impl Into<String>, insn: Insn) -> Case {
        Case {
            what: what.into(),
            insns: vec![insn],
        }
    }

    fn wide(what: impl Into<String>, insns: [Insn; 2]) -> Case {
        Case {
            what: what.into(),
            insns: insns.to_vec(),
        }
    }

    fn text(&self) -> String {
        format_insn(&self.insns[0], self.insns.get(1))
    }

    fn bytes(&self) -> Vec<u8> {
        Insn::encode_all(&self.insns)
    }
}

const SIZES: [Size; 4] = [Size::B, Size::H, Size::W, Size::DW];

/// Every constructor output that llvm-mc can assemble from our text, with
/// edge values in the immediate and offset fields.
fn llvm_checked() -> Vec<Case> {
    let mut v = Vec::new();
    for op in AluOp::ALL {
        for imm in [5, -1, i32::MIN, i32::MAX] {
            v.push(Case::new(
                format!("alu64 {op:?} imm {imm}"),
                Insn::alu64(op, R1, imm),
            ));
            v.push(Case::new(
                format!("alu32 {op:?} imm {imm}"),
                Insn::alu32(op, R9, imm),
            ));
        }
        v.push(Case::new(
            format!("alu64 {op:?} reg"),
            Insn::alu64(op, R0, R10),
        ));
        v.push(Case::new(
            format!("alu32 {op:?} reg"),
            Insn::alu32(op, R3, R4),
        ));
    }
    // Every register number in both fields.
    for (i, r) in Reg::ALL.into_iter().enumerate() {
        let other = Reg::ALL[10 - i];
        v.push(Case::new(
            format!("add {r} {other}"),
            Insn::alu64(AluOp::Add, r, other),
        ));
    }
    v.push(Case::new("mov64 imm", Insn::mov64(R2, 7)));
    v.push(Case::new("mov64 reg", Insn::mov64(R6, R1)));
    v.push(Case::new("mov32 imm", Insn::mov32(R2, -7)));
    v.push(Case::new("mov32 reg", Insn::mov32(R6, R1)));
    v.push(Case::new("neg64", Insn::neg64(R5)));
    for from in [8, 16, 32] {
        v.push(Case::new(
            format!("movsx64 {from}"),
            Insn::movsx64(R1, R2, from),
        ));
    }
    for from in [8, 16] {
        v.push(Case::new(
            format!("movsx32 {from}"),
            Insn::movsx32(R3, R4, from),
        ));
    }
    for kind in [Endian::Le, Endian::Be, Endian::Swap] {
        for bits in [16, 32, 64] {
            v.push(Case::new(
                format!("endian {kind:?} {bits}"),
                Insn::endian(kind, R7, bits),
            ));
        }
    }
    v.push(Case::new(
        "addr_space_cast 1 <- 0",
        Insn::addr_space_cast(R1, R2, 1, 0),
    ));
    v.push(Case::new(
        "addr_space_cast 0 <- 1",
        Insn::addr_space_cast(R3, R4, 0, 1),
    ));
    for imm in [
        0,
        1,
        0x8000_0000,
        0x1122_3344_5566_7788,
        1 << 63,
        u64::MAX,
        0xffff_ffff,
    ] {
        v.push(Case::wide(
            format!("ld_imm64 {imm:#x}"),
            Insn::ld_imm64(R1, imm),
        ));
    }
    for size in SIZES {
        for off in [0, 4, -8, i16::MIN, i16::MAX] {
            v.push(Case::new(
                format!("ldx {size:?} {off}"),
                Insn::ldx(size, R1, R2, off),
            ));
            v.push(Case::new(
                format!("stx {size:?} {off}"),
                Insn::stx(size, R10, off, R3),
            ));
            v.push(Case::new(
                format!("st {size:?} {off}"),
                Insn::st(size, R10, off, -1),
            ));
            if size != Size::DW {
                v.push(Case::new(
                    format!("ldxsx {size:?} {off}"),
                    Insn::ldxsx(size, R4, R5, off),
                ));
            }
        }
        v.push(Case::new(
            format!("st {size:?} imm max"),
            Insn::st(size, R1, 2, i32::MAX),
        ));
    }
    for op in AtomicOp::ALL {
        if matches!(op, AtomicOp::LoadAcquire | AtomicOp::StoreRelease) {
            continue; // llvm-19 predates them: see hand_checked
        }
        for size in [Size::W, Size::DW] {
            v.push(Case::new(
                format!("atomic {op:?} {size:?}"),
                Insn::atomic(op, size, R1, -16, R2),
            ));
        }
    }
    for op in JmpOp::ALL {
        for off in [3, -3] {
            v.push(Case::new(
                format!("jmp {op:?} imm {off}"),
                Insn::jmp(op, R1, -5, off),
            ));
            v.push(Case::new(
                format!("jmp {op:?} reg {off}"),
                Insn::jmp(op, R1, R2, off),
            ));
            v.push(Case::new(
                format!("jmp32 {op:?} imm {off}"),
                Insn::jmp32(op, R3, 0x7fff_ffff, off),
            ));
            v.push(Case::new(
                format!("jmp32 {op:?} reg {off}"),
                Insn::jmp32(op, R3, R4, off),
            ));
        }
    }
    for off in [0, 3, -1, i16::MIN, i16::MAX] {
        v.push(Case::new(format!("ja {off}"), Insn::ja(off)));
    }
    // llvm-19 only takes a 16-bit number after `gotol`; longer ones go
    // through a label in `label_forms`.
    for imm in [3, -5, i32::from(i16::MIN), i32::from(i16::MAX)] {
        v.push(Case::new(format!("gotol {imm}"), Insn::gotol(imm)));
    }
    v.push(Case::new("may_goto", Insn::may_goto(3)));
    v.push(Case::new("may_goto back", Insn::may_goto(-2)));
    v.push(Case::new("call helper 1", Insn::call_helper(1)));
    v.push(Case::new("call helper 211", Insn::call_helper(211)));
    v.push(Case::new("exit", Insn::exit()));
    for size in [Size::B, Size::H, Size::W] {
        v.push(Case::new(format!("ld_abs {size:?}"), Insn::ld_abs(size, 4)));
        v.push(Case::new(
            format!("ld_abs {size:?} negative"),
            Insn::ld_abs(size, -4),
        ));
        v.push(Case::new(
            format!("ld_ind {size:?}"),
            Insn::ld_ind(size, R1, 0),
        ));
    }
    v
}

/// Constructor outputs LLVM cannot write, the reason, and the bytes the
/// kernel's instruction-set.rst gives for them (written out by hand).
fn hand_checked() -> Vec<(Case, &'static str, Vec<u8>)> {
    const NEW: &str =
        "load-acquire/store-release (opcode STX|ATOMIC|size, imm 0x100/0x110) need llvm 21";
    const PSEUDO: &str =
        "LLVM leaves pseudo ld_imm64 sources to relocations; src_reg selects the pseudo";
    vec![
        (
            Case::new(
                "load_acquire B",
                Insn::atomic(AtomicOp::LoadAcquire, Size::B, R0, 0, R1),
            ),
            NEW,
            vec![0xd3, 0x10, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00],
        ),
        (
            Case::new(
                "load_acquire H",
                Insn::atomic(AtomicOp::LoadAcquire, Size::H, R0, -2, R1),
            ),
            NEW,
            vec![0xcb, 0x10, 0xfe, 0xff, 0x00, 0x01, 0x00, 0x00],
        ),
        (
            Case::new(
                "load_acquire W",
                Insn::atomic(AtomicOp::LoadAcquire, Size::W, R2, 4, R3),
            ),
            NEW,
            vec![0xc3, 0x32, 0x04, 0x00, 0x00, 0x01, 0x00, 0x00],
        ),
        (
            Case::new(
                "load_acquire DW",
                Insn::atomic(AtomicOp::LoadAcquire, Size::DW, R0, 8, R10),
            ),
            NEW,
            vec![0xdb, 0xa0, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00],
        ),
        (
            Case::new(
                "store_release B",
                Insn::atomic(AtomicOp::StoreRelease, Size::B, R1, 0, R2),
            ),
            NEW,
            vec![0xd3, 0x21, 0x00, 0x00, 0x10, 0x01, 0x00, 0x00],
        ),
        (
            Case::new(
                "store_release H",
                Insn::atomic(AtomicOp::StoreRelease, Size::H, R1, 2, R2),
            ),
            NEW,
            vec![0xcb, 0x21, 0x02, 0x00, 0x10, 0x01, 0x00, 0x00],
        ),
        (
            Case::new(
                "store_release W",
                Insn::atomic(AtomicOp::StoreRelease, Size::W, R1, -4, R2),
            ),
            NEW,
            vec![0xc3, 0x21, 0xfc, 0xff, 0x10, 0x01, 0x00, 0x00],
        ),
        (
            Case::new(
                "store_release DW",
                Insn::atomic(AtomicOp::StoreRelease, Size::DW, R10, -8, R9),
            ),
            NEW,
            vec![0xdb, 0x9a, 0xf8, 0xff, 0x10, 0x01, 0x00, 0x00],
        ),
        (
            Case::wide("ld_map_fd", Insn::ld_map_fd(R1, 5)),
            PSEUDO,
            vec![
                0x18, 0x11, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, //
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            ],
        ),
        (
            Case::wide("ld_map_value", Insn::ld_map_value(R2, 7, 0x10)),
            PSEUDO,
            vec![
                0x18, 0x22, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, //
                0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,
            ],
        ),
        (
            Case::wide("ld_btf_id", Insn::ld_btf_id(R3, 0x1234)),
            PSEUDO,
            vec![
                0x18, 0x33, 0x00, 0x00, 0x34, 0x12, 0x00, 0x00, //
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            ],
        ),
        (
            Case::wide("ld_func", Insn::ld_func(R4, -3)),
            PSEUDO,
            vec![
                0x18, 0x44, 0x00, 0x00, 0xfd, 0xff, 0xff, 0xff, //
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            ],
        ),
        (
            Case::wide(
                "ld_imm64_pseudo map_idx_value",
                Insn::ld_imm64_pseudo(R5, 6, 2, 8),
            ),
            PSEUDO,
            vec![
                0x18, 0x65, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, //
                0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00,
            ],
        ),
        (
            Case::new("call_kfunc", Insn::call_kfunc(0x1234)),
            "LLVM writes kfunc calls as relocated calls; libbpf sets src_reg 2 (BPF_PSEUDO_KFUNC_CALL)",
            vec![0x85, 0x20, 0x00, 0x00, 0x34, 0x12, 0x00, 0x00],
        ),
        (
            Case::new("ld_ind with offset", Insn::ld_ind(Size::W, R6, 14)),
            "LLVM's skb[reg] syntax has no offset",
            vec![0x40, 0x60, 0x00, 0x00, 0x0e, 0x00, 0x00, 0x00],
        ),
    ]
}

/// Constructor outputs whose LLVM text needs labels: an assembly source
/// (labels and instructions), the cases in the order they are emitted,
/// and how many bytes the object's `.text` holds in all.
fn label_forms() -> (String, Vec<Case>, usize) {
    let src = "\
L0:
    call L2
    exit
L2:
    call L0
    gotol Lfar
    gotol L0
    .skip 559992
Lfar:
    exit
";
    let cases = vec![
        Case::new("call_rel forward", Insn::call_rel(1)),
        Case::new("exit", Insn::exit()),
        Case::new("call_rel backward", Insn::call_rel(-3)),
        // Lfar is 70000 slots after the slot following `gotol Lfar`:
        // `gotol L0` plus 559992 / 8 = 69999 skipped slots.
        Case::new("gotol far forward", Insn::gotol(70000)),
        Case::new("gotol back", Insn::gotol(-5)),
    ];
    (src.to_string(), cases, 5 * 8 + 559992 + 8)
}

/// The opcodes the kernel defines (instruction-set.rst, plus `may_goto`
/// from the kernel's BPF_JCOND), written out by hand. `callx` (0x8d) is
/// left out: the kernel does not accept it and we have no constructor.
fn kernel_opcodes() -> BTreeSet<u8> {
    let mut set = BTreeSet::new();
    // ALU (0x04) and ALU64 (0x07), K and X forms.
    for class in [0x04u8, 0x07] {
        for op in [
            0x00u8, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x90, 0xa0, 0xb0, 0xc0,
        ] {
            set.insert(class | op);
            set.insert(class | op | 0x08);
        }
        set.insert(class | 0x80); // neg
    }
    set.extend([0xd4, 0xdc, 0xd7]); // le, be, bswap
    // JMP (0x05) and JMP32 (0x06) conditional jumps, K and X forms.
    for class in [0x05u8, 0x06] {
        for op in [
            0x10u8, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0,
        ] {
            set.insert(class | op);
            set.insert(class | op | 0x08);
        }
    }
    set.extend([0x05, 0x06, 0x85, 0x95, 0xe5]); // ja, gotol, call, exit, may_goto
    set.insert(0x18); // ld_imm64
    set.extend([0x20, 0x28, 0x30, 0x40, 0x48, 0x50]); // ld_abs, ld_ind W/H/B
    set.extend([0x61, 0x69, 0x71, 0x79]); // ldx W/H/B/DW
    set.extend([0x81, 0x89, 0x91]); // ldxsx W/H/B
    set.extend([0x62, 0x6a, 0x72, 0x7a]); // st
    set.extend([0x63, 0x6b, 0x73, 0x7b]); // stx
    set.extend([0xc3, 0xcb, 0xd3, 0xdb]); // atomics W/H/B/DW
    set
}

/// The llvm-mc to use, or `None` (after saying why) when the test should be
/// skipped.
fn llvm_mc() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LLVM_MC") {
        return Some(PathBuf::from(p));
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let version = name.strip_prefix("llvm-")?.parse().ok()?;
            Some((version, e.path().join("bin/llvm-mc")))
        })
        .collect();
    candidates.sort();
    let found = candidates
        .into_iter()
        .rev()
        .map(|(_, p)| p)
        .find(|p| knows_isa_v4(p));
    if found.is_none() {
        let why = "no llvm-mc with ISA v4 found (set LLVM_MC or install llvm-19)";
        if std::env::var_os("CI").is_some() {
            panic!("{why}");
        }
        eprintln!("skipping: {why}");
    }
    found
}

/// Whether this llvm-mc assembles an ISA v4 instruction without complaint.
fn knows_isa_v4(path: &Path) -> bool {
    match assemble(path, "r1 = bswap16 r1\n", &["-show-encoding"]) {
        Ok((out, err)) => err.is_empty() && String::from_utf8_lossy(&out).contains("0xd7"),
        Err(_) => false,
    }
}

/// Runs llvm-mc on `src`, returning stdout and stderr.
fn assemble(path: &Path, src: &str, args: &[&str]) -> std::io::Result<(Vec<u8>, String)> {
    let mut child = Command::new(path)
        .args(["-triple", "bpfel", "-mcpu=v4"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(src.as_bytes())?;
    let out = child.wait_with_output()?;
    Ok((
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The bytes of every `# encoding: [0x..,...]` comment, in order.
fn encodings(listing: &str) -> Vec<Vec<u8>> {
    listing
        .lines()
        .filter_map(|l| l.split_once("encoding: [").map(|(_, rest)| rest))
        .map(|rest| {
            let list = rest.split(']').next().unwrap_or("");
            list.split(',')
                .map(|b| {
                    let hex = b.trim().trim_start_matches("0x");
                    u8::from_str_radix(hex, 16)
                        .unwrap_or_else(|_| panic!("unexpected encoding byte {b:?} in {rest}"))
                })
                .collect()
        })
        .collect()
}

/// The contents of section `.text` of a little-endian ELF64 object.
fn elf_text(elf: &[u8]) -> Vec<u8> {
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(elf[o..o + 4].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(&elf[..6], b"\x7fELF\x02\x01", "not a little-endian ELF64");
    let shoff = u64_at(0x28);
    let shentsize = u16_at(0x3a);
    let shnum = u16_at(0x3c);
    let shstrndx = u16_at(0x3e);
    let section = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(section(shstrndx) + 0x18);
    for i in 0..shnum {
        let sh = section(i);
        let name_start = strtab + u32_at(sh);
        let name_end = name_start + elf[name_start..].iter().position(|&b| b == 0).unwrap();
        if &elf[name_start..name_end] == b".text" {
            let (off, size) = (u64_at(sh + 0x18), u64_at(sh + 0x20));
            return elf[off..off + size].to_vec();
        }
    }
    panic!("no .text section");
}

#[test]
fn llvm_mc_encodes_our_text_into_our_bytes() {
    let Some(mc) = llvm_mc() else { return };
    let cases = llvm_checked();
    let src: String = cases.iter().map(|c| c.text() + "\n").collect();
    let (out, err) = assemble(&mc, &src, &["-show-encoding"]).expect("run llvm-mc");
    assert!(
        err.is_empty(),
        "llvm-mc rejected some of our text (line numbers count cases from 1):\n{err}"
    );
    let got = encodings(&String::from_utf8_lossy(&out));
    assert_eq!(got.len(), cases.len(), "one encoding per instruction");
    let mut bad = Vec::new();
    for (case, llvm) in cases.iter().zip(&got) {
        if *llvm != case.bytes() {
            bad.push(format!(
                "{}: `{}`\n  ours: {:02x?}\n  llvm: {:02x?}",
                case.what,
                case.text(),
                case.bytes(),
                llvm
            ));
        }
    }
    assert!(bad.is_empty(), "encodings differ:\n{}", bad.join("\n"));
}

#[test]
fn llvm_mc_agrees_on_calls_and_long_jumps_through_labels() {
    let Some(mc) = llvm_mc() else { return };
    let (src, cases, total) = label_forms();
    let dir = std::env::temp_dir().join(format!("bpf-builder-llvm-mc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let obj = dir.join("labels.o");
    let obj_arg = obj.to_str().expect("utf-8 temp path");
    let (_, err) = assemble(&mc, &src, &["-filetype=obj", "-o", obj_arg]).expect("run llvm-mc");
    assert!(err.is_empty(), "llvm-mc failed:\n{err}");
    let elf = std::fs::read(&obj).expect("read object");
    let _ = std::fs::remove_dir_all(&dir);
    let text = elf_text(&elf);
    assert_eq!(text.len(), total);
    let ours: Vec<u8> = cases.iter().flat_map(|c| c.bytes()).collect();
    assert_eq!(
        &text[..ours.len()],
        &ours[..],
        "cases: {:?}",
        cases.iter().map(|c| &c.what).collect::<Vec<_>>()
    );
}

#[test]
fn hand_checked_forms_match_the_kernel_documentation() {
    for (case, reason, bytes) in hand_checked() {
        assert_eq!(case.bytes(), bytes, "{} ({reason})", case.what);
    }
}

#[test]
fn every_kernel_opcode_is_produced_and_checked() {
    let (_, labelled, _) = label_forms();
    let checked: BTreeSet<u8> = llvm_checked()
        .iter()
        .chain(hand_checked().iter().map(|(c, _, _)| c))
        .chain(labelled.iter())
        .map(|c| c.insns[0].code)
        .collect();
    let kernel = kernel_opcodes();
    let unchecked: Vec<String> = kernel
        .difference(&checked)
        .map(|c| format!("{c:#04x}"))
        .collect();
    assert!(
        unchecked.is_empty(),
        "kernel opcodes no checked constructor output has: {unchecked:?}"
    );
    let unknown: Vec<String> = checked
        .difference(&kernel)
        .map(|c| format!("{c:#04x}"))
        .collect();
    assert!(
        unknown.is_empty(),
        "checked outputs with opcodes the kernel does not define: {unknown:?}"
    );
}

#[test]
fn decode_of_encode_round_trips_and_prints_the_same() {
    let (_, labelled, _) = label_forms();
    let all: Vec<Case> = llvm_checked()
        .into_iter()
        .chain(hand_checked().into_iter().map(|(c, _, _)| c))
        .chain(labelled)
        .collect();
    for case in all {
        let decoded = Insn::decode_all(&case.bytes()).expect("whole instructions");
        assert_eq!(decoded, case.insns, "{}", case.what);
        let text = format_insn(&decoded[0], decoded.get(1));
        assert_eq!(text, case.text(), "{}", case.what);
        assert!(
            !text.starts_with(".insn"),
            "{} prints as raw bytes: {text}",
            case.what
        );
    }
}

/// A tiny deterministic generator (xorshift64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// The disassembler prints a non-raw text only for an encoding that text
/// names exactly: for arbitrary field values (biased towards the values
/// that matter), whatever llvm-mc can parse must assemble back to the same
/// bytes, and llvm-mc must be able to parse every text except our
/// documented extensions.
#[test]
fn random_encodings_print_text_llvm_assembles_back() {
    let Some(mc) = llvm_mc() else { return };
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let imms = [
        0,
        1,
        8,
        16,
        32,
        64,
        0x100,
        0x110,
        0xe1,
        0xf1,
        0x41,
        -1,
        i32::MIN,
    ];
    let offs = [0, 1, 8, 16, 32, -1, i16::MIN, i16::MAX];
    let mut insns = Vec::new();
    while insns.len() < 6000 {
        // Unused fields must be zero, so zero is likely in every field.
        let code = (rng.next() & 0xff) as u8;
        let dst = (rng.next() % 11) as u8;
        let src = match rng.next() % 2 {
            0 => 0,
            _ => (rng.next() % 11) as u8,
        };
        let off = match rng.next() % 3 {
            0 => 0,
            1 => rng.pick(&offs),
            _ => rng.next() as i16,
        };
        let imm = match rng.next() % 3 {
            0 => 0,
            1 => rng.pick(&imms),
            _ => rng.next() as i32,
        };
        let insn = Insn::new(code, dst, src, off, imm);
        let text = format_insn(&insn, None);
        // Our extensions and what llvm-19 does not know.
        let extension = text.starts_with(".insn")
            || text.contains('[')
            || text.contains("load_acquire")
            || text.contains("store_release")
            || text.starts_with("callx")
            // llvm-19 parses only 16-bit gotol distances.
            || (text.starts_with("gotol") && i16::try_from(insn.imm).is_err());
        if !extension {
            insns.push((insn, text));
        }
    }
    let src: String = insns.iter().map(|(_, t)| format!("{t}\n")).collect();
    let (out, err) = assemble(&mc, &src, &["-show-encoding"]).expect("run llvm-mc");
    assert!(err.is_empty(), "llvm-mc rejected some of our text:\n{err}");
    let got = encodings(&String::from_utf8_lossy(&out));
    assert_eq!(got.len(), insns.len());
    let bad: Vec<String> = insns
        .iter()
        .zip(&got)
        .filter(|((insn, _), llvm)| insn.to_bytes()[..] != llvm[..])
        .map(|((insn, text), llvm)| {
            format!("`{text}`: ours {:02x?}, llvm {llvm:02x?}", insn.to_bytes())
        })
        .collect();
    assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
}
