//! The eBPF instruction: the kernel's 8-byte `struct bpf_insn`, registers,
//! opcode constants, constructors for every form the kernel accepts, and
//! encoding/decoding.
//!
//! Constructors return plain [`Insn`] values with jump offsets given in
//! instructions; the [`asm`](crate::asm) module adds labels on top. Wide
//! loads (`ld_imm64`) occupy two slots and are returned as `[Insn; 2]`.

use std::fmt;

pub(crate) mod decode;

/// Instruction classes (low 3 bits of the opcode).
pub mod class {
    /// Non-standard loads: `ld_imm64`, legacy packet loads.
    pub const LD: u8 = 0x00;
    /// Register loads from memory.
    pub const LDX: u8 = 0x01;
    /// Stores of an immediate.
    pub const ST: u8 = 0x02;
    /// Stores of a register, atomics.
    pub const STX: u8 = 0x03;
    /// 32-bit arithmetic.
    pub const ALU: u8 = 0x04;
    /// 64-bit jumps, calls, exit.
    pub const JMP: u8 = 0x05;
    /// 32-bit jumps.
    pub const JMP32: u8 = 0x06;
    /// 64-bit arithmetic.
    pub const ALU64: u8 = 0x07;
}

/// Operand source bit of ALU and JMP opcodes.
pub mod src {
    /// Immediate operand.
    pub const K: u8 = 0x00;
    /// Register operand.
    pub const X: u8 = 0x08;
}

/// Memory access sizes (bits 3-4 of load/store opcodes).
pub mod size {
    /// 32-bit word.
    pub const W: u8 = 0x00;
    /// 16-bit half word.
    pub const H: u8 = 0x08;
    /// 8-bit byte.
    pub const B: u8 = 0x10;
    /// 64-bit double word.
    pub const DW: u8 = 0x18;
}

/// Memory access modes (top 3 bits of load/store opcodes).
pub mod mode {
    /// `ld_imm64`.
    pub const IMM: u8 = 0x00;
    /// Legacy absolute packet load (socket filters, tc).
    pub const ABS: u8 = 0x20;
    /// Legacy indirect packet load.
    pub const IND: u8 = 0x40;
    /// Regular memory access.
    pub const MEM: u8 = 0x60;
    /// Sign-extending load (ISA v4).
    pub const MEMSX: u8 = 0x80;
    /// Atomic operation.
    pub const ATOMIC: u8 = 0xc0;
}

/// `src_reg` values of `ld_imm64` that ask the loader for a relocation.
pub mod pseudo {
    /// `imm` is a map fd.
    pub const MAP_FD: u8 = 1;
    /// `imm` is a map fd, the second `imm` an offset into its value.
    pub const MAP_VALUE: u8 = 2;
    /// `imm` is a kernel BTF type id.
    pub const BTF_ID: u8 = 3;
    /// `imm` is a relative instruction offset of a subprogram.
    pub const FUNC: u8 = 4;
    /// `imm` is an index into the `fd_array` of the load.
    pub const MAP_IDX: u8 = 5;
    /// Like `MAP_IDX`, the second `imm` an offset into the value.
    pub const MAP_IDX_VALUE: u8 = 6;
    /// `src_reg` of a call to a subprogram (relative offset in `imm`).
    pub const CALL: u8 = 1;
    /// `src_reg` of a call to a kernel function (BTF id in `imm`).
    pub const KFUNC_CALL: u8 = 2;
}

/// A BPF register. `R10` is the read-only frame pointer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[repr(u8)]
pub enum Reg {
    /// Return value, helper result.
    R0 = 0,
    /// First argument; the context on entry.
    R1,
    /// Second argument.
    R2,
    /// Third argument.
    R3,
    /// Fourth argument.
    R4,
    /// Fifth argument.
    R5,
    /// Callee-saved.
    R6,
    /// Callee-saved.
    R7,
    /// Callee-saved.
    R8,
    /// Callee-saved.
    R9,
    /// Frame pointer (read only).
    R10,
}

impl Reg {
    /// All registers, by number.
    pub const ALL: [Reg; 11] = [
        Reg::R0,
        Reg::R1,
        Reg::R2,
        Reg::R3,
        Reg::R4,
        Reg::R5,
        Reg::R6,
        Reg::R7,
        Reg::R8,
        Reg::R9,
        Reg::R10,
    ];

    /// The register with number `n`, if it exists.
    pub fn from_u8(n: u8) -> Option<Reg> {
        Self::ALL.get(n as usize).copied()
    }

    /// The register number.
    pub fn num(self) -> u8 {
        self as u8
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", *self as u8)
    }
}

/// Arithmetic operations (bits 4-7 of ALU/ALU64 opcodes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum AluOp {
    /// `dst += src`
    Add = 0x00,
    /// `dst -= src`
    Sub = 0x10,
    /// `dst *= src`
    Mul = 0x20,
    /// `dst /= src` (unsigned)
    Div = 0x30,
    /// `dst |= src`
    Or = 0x40,
    /// `dst &= src`
    And = 0x50,
    /// `dst <<= src`
    Lsh = 0x60,
    /// `dst >>= src` (logical)
    Rsh = 0x70,
    /// `dst = -dst` (no source operand)
    Neg = 0x80,
    /// `dst %= src` (unsigned)
    Mod = 0x90,
    /// `dst ^= src`
    Xor = 0xa0,
    /// `dst = src`
    Mov = 0xb0,
    /// `dst >>= src` (arithmetic)
    Arsh = 0xc0,
    /// `dst s/= src` (signed division, ISA v4; encoded as `Div` with `off = 1`)
    SDiv = 0x31,
    /// `dst s%= src` (signed modulo, ISA v4; encoded as `Mod` with `off = 1`)
    SMod = 0x91,
}

impl AluOp {
    /// All arithmetic operations.
    pub const ALL: [AluOp; 15] = [
        AluOp::Add,
        AluOp::Sub,
        AluOp::Mul,
        AluOp::Div,
        AluOp::Or,
        AluOp::And,
        AluOp::Lsh,
        AluOp::Rsh,
        AluOp::Neg,
        AluOp::Mod,
        AluOp::Xor,
        AluOp::Mov,
        AluOp::Arsh,
        AluOp::SDiv,
        AluOp::SMod,
    ];

    /// The opcode bits and the `off` field this operation is encoded with.
    pub fn encoding(self) -> (u8, i16) {
        match self {
            AluOp::SDiv => (0x30, 1),
            AluOp::SMod => (0x90, 1),
            op => (op as u8, 0),
        }
    }

    /// Decodes the opcode bits and `off` field of an ALU instruction.
    pub fn decode(op: u8, off: i16) -> Option<AluOp> {
        Some(match (op, off) {
            (0x00, 0) => AluOp::Add,
            (0x10, 0) => AluOp::Sub,
            (0x20, 0) => AluOp::Mul,
            (0x30, 0) => AluOp::Div,
            (0x30, 1) => AluOp::SDiv,
            (0x40, 0) => AluOp::Or,
            (0x50, 0) => AluOp::And,
            (0x60, 0) => AluOp::Lsh,
            (0x70, 0) => AluOp::Rsh,
            (0x80, 0) => AluOp::Neg,
            (0x90, 0) => AluOp::Mod,
            (0x90, 1) => AluOp::SMod,
            (0xa0, 0) => AluOp::Xor,
            (0xb0, 0) => AluOp::Mov,
            (0xc0, 0) => AluOp::Arsh,
            _ => return None,
        })
    }

    /// The C-like operator used by the disassembler (`+=`, `s/=`, ...).
    pub fn symbol(self) -> &'static str {
        match self {
            AluOp::Add => "+=",
            AluOp::Sub => "-=",
            AluOp::Mul => "*=",
            AluOp::Div => "/=",
            AluOp::Or => "|=",
            AluOp::And => "&=",
            AluOp::Lsh => "<<=",
            AluOp::Rsh => ">>=",
            AluOp::Neg => "= -",
            AluOp::Mod => "%=",
            AluOp::Xor => "^=",
            AluOp::Mov => "=",
            AluOp::Arsh => "s>>=",
            AluOp::SDiv => "s/=",
            AluOp::SMod => "s%=",
        }
    }
}

/// Conditional jump operations (bits 4-7 of JMP/JMP32 opcodes).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
pub enum JmpOp {
    /// `==`
    Eq = 0x10,
    /// `>` unsigned
    Gt = 0x20,
    /// `>=` unsigned
    Ge = 0x30,
    /// `&` (jump if any bit is set)
    Set = 0x40,
    /// `!=`
    Ne = 0x50,
    /// `>` signed
    SGt = 0x60,
    /// `>=` signed
    SGe = 0x70,
    /// `<` unsigned
    Lt = 0xa0,
    /// `<=` unsigned
    Le = 0xb0,
    /// `<` signed
    SLt = 0xc0,
    /// `<=` signed
    SLe = 0xd0,
}

impl JmpOp {
    /// All conditional jump operations.
    pub const ALL: [JmpOp; 11] = [
        JmpOp::Eq,
        JmpOp::Gt,
        JmpOp::Ge,
        JmpOp::Set,
        JmpOp::Ne,
        JmpOp::SGt,
        JmpOp::SGe,
        JmpOp::Lt,
        JmpOp::Le,
        JmpOp::SLt,
        JmpOp::SLe,
    ];

    /// Decodes the opcode bits of a conditional jump.
    pub fn decode(op: u8) -> Option<JmpOp> {
        Self::ALL.into_iter().find(|j| *j as u8 == op)
    }

    /// The condition that holds exactly when `self` does not, if one exists
    /// (`Set` has none).
    pub fn invert(self) -> Option<JmpOp> {
        Some(match self {
            JmpOp::Eq => JmpOp::Ne,
            JmpOp::Ne => JmpOp::Eq,
            JmpOp::Gt => JmpOp::Le,
            JmpOp::Le => JmpOp::Gt,
            JmpOp::Ge => JmpOp::Lt,
            JmpOp::Lt => JmpOp::Ge,
            JmpOp::SGt => JmpOp::SLe,
            JmpOp::SLe => JmpOp::SGt,
            JmpOp::SGe => JmpOp::SLt,
            JmpOp::SLt => JmpOp::SGe,
            JmpOp::Set => return None,
        })
    }

    /// The C-like operator used by the disassembler.
    pub fn symbol(self) -> &'static str {
        match self {
            JmpOp::Eq => "==",
            JmpOp::Gt => ">",
            JmpOp::Ge => ">=",
            JmpOp::Set => "&",
            JmpOp::Ne => "!=",
            JmpOp::SGt => "s>",
            JmpOp::SGe => "s>=",
            JmpOp::Lt => "<",
            JmpOp::Le => "<=",
            JmpOp::SLt => "s<",
            JmpOp::SLe => "s<=",
        }
    }
}

/// Memory access width.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Size {
    /// 1 byte.
    B,
    /// 2 bytes.
    H,
    /// 4 bytes.
    W,
    /// 8 bytes.
    DW,
}

impl Size {
    /// The size bits of a load/store opcode.
    pub fn bits(self) -> u8 {
        match self {
            Size::B => size::B,
            Size::H => size::H,
            Size::W => size::W,
            Size::DW => size::DW,
        }
    }

    /// Decodes the size bits of a load/store opcode.
    pub fn from_bits(code: u8) -> Size {
        match code & 0x18 {
            size::B => Size::B,
            size::H => Size::H,
            size::W => Size::W,
            _ => Size::DW,
        }
    }

    /// Width in bytes.
    pub fn bytes(self) -> usize {
        match self {
            Size::B => 1,
            Size::H => 2,
            Size::W => 4,
            Size::DW => 8,
        }
    }

    /// The access size of `bytes` bytes, if it is 1, 2, 4 or 8.
    pub fn from_bytes(bytes: usize) -> Option<Size> {
        Some(match bytes {
            1 => Size::B,
            2 => Size::H,
            4 => Size::W,
            8 => Size::DW,
            _ => return None,
        })
    }

    /// The C type name used by the disassembler (`u8` ... `u64`).
    pub fn c_type(self) -> &'static str {
        match self {
            Size::B => "u8",
            Size::H => "u16",
            Size::W => "u32",
            Size::DW => "u64",
        }
    }
}

/// Atomic read-modify-write operations (`imm` of `STX | ATOMIC`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AtomicOp {
    /// `*ptr += src`
    Add,
    /// `*ptr |= src`
    Or,
    /// `*ptr &= src`
    And,
    /// `*ptr ^= src`
    Xor,
    /// `src = fetch_add(ptr, src)`
    FetchAdd,
    /// `src = fetch_or(ptr, src)`
    FetchOr,
    /// `src = fetch_and(ptr, src)`
    FetchAnd,
    /// `src = fetch_xor(ptr, src)`
    FetchXor,
    /// `src = xchg(ptr, src)`
    Xchg,
    /// `r0 = cmpxchg(ptr, r0, src)`
    CmpXchg,
    /// `dst = load_acquire(src + off)` (kernel 6.15)
    LoadAcquire,
    /// `store_release(dst + off, src)` (kernel 6.15)
    StoreRelease,
}

impl AtomicOp {
    /// All atomic operations.
    pub const ALL: [AtomicOp; 12] = [
        AtomicOp::Add,
        AtomicOp::Or,
        AtomicOp::And,
        AtomicOp::Xor,
        AtomicOp::FetchAdd,
        AtomicOp::FetchOr,
        AtomicOp::FetchAnd,
        AtomicOp::FetchXor,
        AtomicOp::Xchg,
        AtomicOp::CmpXchg,
        AtomicOp::LoadAcquire,
        AtomicOp::StoreRelease,
    ];

    /// The `imm` value that encodes this operation.
    pub fn imm(self) -> i32 {
        match self {
            AtomicOp::Add => 0x00,
            AtomicOp::Or => 0x40,
            AtomicOp::And => 0x50,
            AtomicOp::Xor => 0xa0,
            AtomicOp::FetchAdd => 0x01,
            AtomicOp::FetchOr => 0x41,
            AtomicOp::FetchAnd => 0x51,
            AtomicOp::FetchXor => 0xa1,
            AtomicOp::Xchg => 0xe1,
            AtomicOp::CmpXchg => 0xf1,
            AtomicOp::LoadAcquire => 0x100,
            AtomicOp::StoreRelease => 0x110,
        }
    }

    /// Decodes the `imm` of an atomic instruction.
    pub fn from_imm(imm: i32) -> Option<AtomicOp> {
        Self::ALL.into_iter().find(|op| op.imm() == imm)
    }
}

/// Byte order conversion of `dst` to the given byte order (`BPF_END`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Endian {
    /// `le16`/`le32`/`le64`: to little endian (truncates on x86).
    Le,
    /// `be16`/`be32`/`be64`: to big endian.
    Be,
    /// `bswap16`/`bswap32`/`bswap64`: unconditional swap (ISA v4).
    Swap,
}

/// Either a register or a 32-bit immediate, the second operand of ALU and
/// jump instructions.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Operand {
    /// A register.
    Reg(Reg),
    /// A sign-extended 32-bit immediate.
    Imm(i32),
}

impl From<Reg> for Operand {
    fn from(r: Reg) -> Self {
        Operand::Reg(r)
    }
}

impl From<i32> for Operand {
    fn from(imm: i32) -> Self {
        Operand::Imm(imm)
    }
}

impl Operand {
    /// The source bit, `src_reg` and `imm` fields of this operand.
    fn fields(self) -> (u8, Reg, i32) {
        match self {
            Operand::Reg(r) => (src::X, r, 0),
            Operand::Imm(i) => (src::K, Reg::R0, i),
        }
    }
}

/// One 8-byte BPF instruction, as the kernel's `struct bpf_insn`.
///
/// The fields are public: this is the wire format, and code generators may
/// patch them. Use the constructors to get valid encodings.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Insn {
    /// Opcode: class, operation, source or size/mode bits.
    pub code: u8,
    /// Destination register number (0-10).
    pub dst: u8,
    /// Source register number (0-10), or a pseudo value for `ld_imm64`/calls.
    pub src: u8,
    /// Signed offset: jump distance in instructions or memory offset.
    pub off: i16,
    /// Signed immediate.
    pub imm: i32,
}

impl fmt::Debug for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Insn {{ code: {:#04x}, dst: {}, src: {}, off: {}, imm: {} }}",
            self.code, self.dst, self.src, self.off, self.imm
        )
    }
}

impl Insn {
    /// Builds an instruction from raw fields.
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// The instruction class (low 3 bits of the opcode).
    pub fn class(&self) -> u8 {
        self.code & 0x07
    }

    /// The destination register, if the number is valid.
    pub fn dst_reg(&self) -> Option<Reg> {
        Reg::from_u8(self.dst)
    }

    /// The source register, if the number is valid.
    pub fn src_reg(&self) -> Option<Reg> {
        Reg::from_u8(self.src)
    }

    /// Whether this is the first half of a 16-byte `ld_imm64`.
    pub fn is_wide(&self) -> bool {
        self.code == class::LD | mode::IMM | size::DW
    }

    /// Whether this is a jump with a relative target (not call/exit).
    pub fn is_jump(&self) -> bool {
        let c = self.class();
        (c == class::JMP || c == class::JMP32) && !matches!(self.code & 0xf0, 0x80 | 0x90)
    }

    /// Whether this is `call` to a bpf-to-bpf subprogram.
    pub fn is_pseudo_call(&self) -> bool {
        self.code == class::JMP | 0x80 && self.src == pseudo::CALL
    }

    /// Encodes to the kernel's little-endian 8-byte layout.
    pub fn to_bytes(&self) -> [u8; 8] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code,
            (self.src << 4) | (self.dst & 0x0f),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// Decodes one instruction from the kernel's 8-byte layout.
    pub fn from_bytes(b: [u8; 8]) -> Insn {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    /// Encodes a sequence of instructions.
    pub fn encode_all(insns: &[Insn]) -> Vec<u8> {
        insns.iter().flat_map(|i| i.to_bytes()).collect()
    }

    /// Decodes a byte buffer whose length is a multiple of 8.
    pub fn decode_all(bytes: &[u8]) -> Option<Vec<Insn>> {
        if !bytes.len().is_multiple_of(8) {
            return None;
        }
        Some(
            bytes
                .chunks_exact(8)
                .map(|c| Insn::from_bytes(c.try_into().expect("chunk of 8")))
                .collect(),
        )
    }

    // ---- arithmetic ----

    /// 64-bit arithmetic `dst op= src`.
    pub fn alu64(op: AluOp, dst: Reg, src: impl Into<Operand>) -> Insn {
        Self::alu(class::ALU64, op, dst, src.into())
    }

    /// 32-bit arithmetic `w_dst op= src` (zero-extends the result).
    pub fn alu32(op: AluOp, dst: Reg, src: impl Into<Operand>) -> Insn {
        Self::alu(class::ALU, op, dst, src.into())
    }

    fn alu(cls: u8, op: AluOp, dst: Reg, src: Operand) -> Insn {
        let (bits, off) = op.encoding();
        let (s, sreg, imm) = if op == AluOp::Neg {
            (src::K, Reg::R0, 0)
        } else {
            src.fields()
        };
        Insn::new(cls | bits | s, dst.num(), sreg.num(), off, imm)
    }

    /// `dst = src` (64-bit).
    pub fn mov64(dst: Reg, src: impl Into<Operand>) -> Insn {
        Self::alu64(AluOp::Mov, dst, src)
    }

    /// `w_dst = w_src` (32-bit, zero-extends).
    pub fn mov32(dst: Reg, src: impl Into<Operand>) -> Insn {
        Self::alu32(AluOp::Mov, dst, src)
    }

    /// Sign-extending move (ISA v4): `dst = (s8|s16|s32) src` with a 64-bit
    /// result, `from` being the source width in bits (8, 16 or 32).
    pub fn movsx64(dst: Reg, src: Reg, from: u8) -> Insn {
        assert!(matches!(from, 8 | 16 | 32), "movsx64 from {from} bits");
        Insn::new(
            class::ALU64 | AluOp::Mov as u8 | src::X,
            dst.num(),
            src.num(),
            from as i16,
            0,
        )
    }

    /// Sign-extending 32-bit move (ISA v4): `w_dst = (s8|s16) w_src`.
    pub fn movsx32(dst: Reg, src: Reg, from: u8) -> Insn {
        assert!(matches!(from, 8 | 16), "movsx32 from {from} bits");
        Insn::new(
            class::ALU | AluOp::Mov as u8 | src::X,
            dst.num(),
            src.num(),
            from as i16,
            0,
        )
    }

    /// `dst = -dst` (64-bit).
    pub fn neg64(dst: Reg) -> Insn {
        Self::alu64(AluOp::Neg, dst, 0)
    }

    /// Byte order conversion of `dst`, `bits` being 16, 32 or 64.
    pub fn endian(kind: Endian, dst: Reg, bits: u8) -> Insn {
        assert!(matches!(bits, 16 | 32 | 64), "byte swap of {bits} bits");
        let code = match kind {
            Endian::Le => class::ALU | 0xd0,
            Endian::Be => class::ALU | 0xd0 | src::X,
            Endian::Swap => class::ALU64 | 0xd0,
        };
        Insn::new(code, dst.num(), 0, 0, bits as i32)
    }

    /// Arena address-space cast (kernel 6.9): `dst = addr_space_cast(src, to, from)`.
    pub fn addr_space_cast(dst: Reg, src: Reg, to_as: u16, from_as: u16) -> Insn {
        Insn::new(
            class::ALU64 | AluOp::Mov as u8 | src::X,
            dst.num(),
            src.num(),
            1,
            ((to_as as i32) << 16) | from_as as i32,
        )
    }

    // ---- 64-bit immediates ----

    /// `dst = imm64`: a 16-byte load of a 64-bit constant.
    pub fn ld_imm64(dst: Reg, imm: u64) -> [Insn; 2] {
        Self::ld_imm64_pseudo(dst, 0, imm as u32 as i32, (imm >> 32) as u32 as i32)
    }

    /// A 16-byte load with a pseudo source (`pseudo::*`) and both halves of
    /// the immediate given.
    pub fn ld_imm64_pseudo(dst: Reg, pseudo: u8, lo: i32, hi: i32) -> [Insn; 2] {
        [
            Insn::new(class::LD | mode::IMM | size::DW, dst.num(), pseudo, 0, lo),
            Insn::new(0, 0, 0, 0, hi),
        ]
    }

    /// `dst = map fd` (patched by the loader).
    pub fn ld_map_fd(dst: Reg, fd: i32) -> [Insn; 2] {
        Self::ld_imm64_pseudo(dst, pseudo::MAP_FD, fd, 0)
    }

    /// `dst = &map value + off` (patched by the loader).
    pub fn ld_map_value(dst: Reg, fd: i32, off: u32) -> [Insn; 2] {
        Self::ld_imm64_pseudo(dst, pseudo::MAP_VALUE, fd, off as i32)
    }

    /// `dst = &kernel object` by BTF id.
    pub fn ld_btf_id(dst: Reg, btf_id: u32) -> [Insn; 2] {
        Self::ld_imm64_pseudo(dst, pseudo::BTF_ID, btf_id as i32, 0)
    }

    /// `dst = &subprogram` at relative instruction offset `rel`.
    pub fn ld_func(dst: Reg, rel: i32) -> [Insn; 2] {
        Self::ld_imm64_pseudo(dst, pseudo::FUNC, rel, 0)
    }

    // ---- memory ----

    /// `dst = *(size *)(src + off)`.
    pub fn ldx(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
        Insn::new(
            class::LDX | mode::MEM | size.bits(),
            dst.num(),
            src.num(),
            off,
            0,
        )
    }

    /// Sign-extending load (ISA v4): `dst = *(s8|s16|s32 *)(src + off)`.
    pub fn ldxsx(size: Size, dst: Reg, src: Reg, off: i16) -> Insn {
        assert!(size != Size::DW, "ldxsx of a double word");
        Insn::new(
            class::LDX | mode::MEMSX | size.bits(),
            dst.num(),
            src.num(),
            off,
            0,
        )
    }

    /// `*(size *)(dst + off) = src`.
    pub fn stx(size: Size, dst: Reg, off: i16, src: Reg) -> Insn {
        Insn::new(
            class::STX | mode::MEM | size.bits(),
            dst.num(),
            src.num(),
            off,
            0,
        )
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn st(size: Size, dst: Reg, off: i16, imm: i32) -> Insn {
        Insn::new(class::ST | mode::MEM | size.bits(), dst.num(), 0, off, imm)
    }

    /// Atomic operation on `*(size *)(dst + off)` with `src` (W or DW;
    /// any size for `LoadAcquire` and `StoreRelease`).
    /// For `LoadAcquire` the roles are `dst = *(src + off)`.
    pub fn atomic(op: AtomicOp, size: Size, dst: Reg, off: i16, src: Reg) -> Insn {
        assert!(
            matches!(size, Size::W | Size::DW)
                || matches!(op, AtomicOp::LoadAcquire | AtomicOp::StoreRelease),
            "atomic {op:?} of size {size:?}"
        );
        Insn::new(
            class::STX | mode::ATOMIC | size.bits(),
            dst.num(),
            src.num(),
            off,
            op.imm(),
        )
    }

    /// Legacy `r0 = ntoh(*(size *)(skb->data + imm))` (socket filter, tc;
    /// B, H or W).
    pub fn ld_abs(size: Size, imm: i32) -> Insn {
        assert!(size != Size::DW, "ld_abs of a double word");
        Insn::new(class::LD | mode::ABS | size.bits(), 0, 0, 0, imm)
    }

    /// Legacy `r0 = ntoh(*(size *)(skb->data + src + imm))` (B, H or W).
    pub fn ld_ind(size: Size, src: Reg, imm: i32) -> Insn {
        assert!(size != Size::DW, "ld_ind of a double word");
        Insn::new(class::LD | mode::IND | size.bits(), 0, src.num(), 0, imm)
    }

    // ---- control flow ----

    /// `if dst op src goto +off` (64-bit compare).
    pub fn jmp(op: JmpOp, dst: Reg, src: impl Into<Operand>, off: i16) -> Insn {
        let (s, sreg, imm) = src.into().fields();
        Insn::new(class::JMP | op as u8 | s, dst.num(), sreg.num(), off, imm)
    }

    /// `if w_dst op w_src goto +off` (32-bit compare).
    pub fn jmp32(op: JmpOp, dst: Reg, src: impl Into<Operand>, off: i16) -> Insn {
        let (s, sreg, imm) = src.into().fields();
        Insn::new(class::JMP32 | op as u8 | s, dst.num(), sreg.num(), off, imm)
    }

    /// `goto +off`.
    pub fn ja(off: i16) -> Insn {
        Insn::new(class::JMP, 0, 0, off, 0)
    }

    /// `gotol +imm` (ISA v4): an unconditional jump with a 32-bit offset.
    pub fn gotol(imm: i32) -> Insn {
        Insn::new(class::JMP32, 0, 0, 0, imm)
    }

    /// `may_goto +off` (kernel 6.9): jump while the loop budget lasts.
    pub fn may_goto(off: i16) -> Insn {
        Insn::new(class::JMP | 0xe0, 0, 0, off, 0)
    }

    /// `call helper#id`.
    pub fn call_helper(id: i32) -> Insn {
        Insn::new(class::JMP | 0x80, 0, 0, 0, id)
    }

    /// `call pc+rel`: a bpf-to-bpf call to a subprogram.
    pub fn call_rel(rel: i32) -> Insn {
        Insn::new(class::JMP | 0x80, 0, pseudo::CALL, 0, rel)
    }

    /// `call kfunc` by BTF id.
    pub fn call_kfunc(btf_id: i32) -> Insn {
        Insn::new(class::JMP | 0x80, 0, pseudo::KFUNC_CALL, 0, btf_id)
    }

    /// `exit`.
    pub fn exit() -> Insn {
        Insn::new(class::JMP | 0x90, 0, 0, 0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_with_negative_fields() {
        let i = Insn::new(0xbf, 3, 10, -8, -123456);
        assert_eq!(Insn::from_bytes(i.to_bytes()), i);
        assert_eq!(
            i.to_bytes(),
            [0xbf, 0xa3, 0xf8, 0xff, 0xc0, 0x1d, 0xfe, 0xff]
        );
    }

    #[test]
    fn ld_imm64_splits_the_constant() {
        let [a, b] = Insn::ld_imm64(Reg::R1, 0x1122_3344_8000_0001);
        assert_eq!(a.imm as u32, 0x8000_0001);
        assert_eq!(b.imm as u32, 0x1122_3344);
        assert!(a.is_wide());
    }

    #[test]
    fn signed_division_uses_off() {
        let i = Insn::alu64(AluOp::SDiv, Reg::R1, 3);
        assert_eq!((i.code, i.off), (0x37, 1));
        let (op, off) = (i.code & 0xf0, i.off);
        assert_eq!(AluOp::decode(op, off), Some(AluOp::SDiv));
    }

    #[test]
    fn inverted_conditions_are_involutions() {
        for op in JmpOp::ALL {
            if let Some(inv) = op.invert() {
                assert_eq!(inv.invert(), Some(op));
            }
        }
    }
}
