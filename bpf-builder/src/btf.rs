//! A BTF writer: types, strings, and the `func_info`/`line_info` records
//! that let the verifier (and `bpftool prog dump xlated linum`) show the
//! builder's source annotations beside the instructions.
//!
//! The kernel needs BTF for programs with callbacks (`bpf_loop` and
//! friends): every subprogram must then have a `func_info` record.

use std::collections::HashMap;

/// BTF header magic.
const MAGIC: u16 = 0xeb9f;

/// A type id (0 is `void`).
pub type TypeId = u32;

/// Linkage of a function or variable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Linkage {
    /// File-local (`static`).
    Static = 0,
    /// Visible to other objects.
    Global = 1,
    /// Defined elsewhere.
    Extern = 2,
}

/// A member of a struct or union.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Member {
    /// Member name.
    pub name: String,
    /// Member type.
    pub ty: TypeId,
    /// Offset in bits.
    pub bit_offset: u32,
}

/// A BTF type.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Type {
    /// An integer of `bits` bits stored in `size` bytes.
    Int {
        /// Name (`u32`, `int`, ...).
        name: String,
        /// Size in bytes.
        size: u32,
        /// Whether it is signed.
        signed: bool,
        /// Number of value bits.
        bits: u8,
    },
    /// A pointer.
    Ptr(TypeId),
    /// An array of `len` elements.
    Array {
        /// Element type.
        elem: TypeId,
        /// Index type (an integer).
        index: TypeId,
        /// Number of elements.
        len: u32,
    },
    /// A struct of `size` bytes.
    Struct {
        /// Name (may be empty).
        name: String,
        /// Size in bytes.
        size: u32,
        /// Members in order.
        members: Vec<Member>,
    },
    /// A union of `size` bytes.
    Union {
        /// Name (may be empty).
        name: String,
        /// Size in bytes.
        size: u32,
        /// Members (offsets 0).
        members: Vec<Member>,
    },
    /// A 4-byte enum.
    Enum {
        /// Name.
        name: String,
        /// Enumerators.
        values: Vec<(String, i32)>,
    },
    /// A typedef.
    Typedef {
        /// Name.
        name: String,
        /// Aliased type.
        ty: TypeId,
    },
    /// `const T`.
    Const(TypeId),
    /// `volatile T`.
    Volatile(TypeId),
    /// A function prototype.
    FuncProto {
        /// Return type.
        ret: TypeId,
        /// Parameters, named.
        params: Vec<(String, TypeId)>,
    },
    /// A function.
    Func {
        /// Name.
        name: String,
        /// Its prototype.
        proto: TypeId,
        /// Linkage.
        linkage: Linkage,
    },
    /// A variable (in a data section).
    Var {
        /// Name.
        name: String,
        /// Type.
        ty: TypeId,
        /// Linkage.
        linkage: Linkage,
    },
    /// A data section: variables at offsets.
    Datasec {
        /// Section name (`.rodata`, `.maps`, ...).
        name: String,
        /// Size in bytes.
        size: u32,
        /// `(var, offset, size)`.
        vars: Vec<(TypeId, u32, u32)>,
    },
}

/// Builds a BTF blob.
#[derive(Clone, Debug, Default)]
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
    string_ids: HashMap<String, u32>,
}

impl Btf {
    /// An empty BTF (only `void`).
    pub fn new() -> Btf {
        let mut b = Btf::default();
        b.strings.push(0);
        b.string_ids.insert(String::new(), 0);
        b
    }

    /// Adds a type and returns its id.
    pub fn add(&mut self, ty: Type) -> TypeId {
        self.types.push(ty);
        self.types.len() as TypeId
    }

    /// The type with id `id`.
    pub fn get(&self, id: TypeId) -> Option<&Type> {
        id.checked_sub(1).and_then(|i| self.types.get(i as usize))
    }

    /// Number of types (not counting `void`).
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether only `void` is there.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Offset of `s` in the string table, adding it once.
    pub fn string(&mut self, s: &str) -> u32 {
        if let Some(&off) = self.string_ids.get(s) {
            return off;
        }
        let off = self.strings.len() as u32;
        // The kernel reads C strings: a NUL would cut the text short.
        self.strings
            .extend(s.bytes().map(|b| if b == 0 { b' ' } else { b }));
        self.strings.push(0);
        self.string_ids.insert(s.to_string(), off);
        off
    }

    /// The encoded blob (header, types, strings).
    pub fn to_bytes(&mut self) -> Vec<u8> {
        let mut types = Vec::new();
        let tys = std::mem::take(&mut self.types);
        for t in &tys {
            self.encode(t, &mut types);
        }
        self.types = tys;
        let mut out = Vec::with_capacity(24 + types.len() + self.strings.len());
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.push(1); // version
        out.push(0); // flags
        for v in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            self.strings.len() as u32,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(&self.strings);
        out
    }

    fn encode(&mut self, t: &Type, out: &mut Vec<u8>) {
        let mut w = |v: u32| out.extend_from_slice(&v.to_le_bytes());
        let info =
            |kind: u32, vlen: usize, flag: bool| (kind << 24) | vlen as u32 | ((flag as u32) << 31);
        match t {
            Type::Int {
                name,
                size,
                signed,
                bits,
            } => {
                let name = self.string(name);
                w(name);
                w(info(1, 0, false));
                w(*size);
                w(((*signed as u32) << 24) | *bits as u32);
            }
            Type::Ptr(ty) => {
                w(0);
                w(info(2, 0, false));
                w(*ty);
            }
            Type::Array { elem, index, len } => {
                w(0);
                w(info(3, 0, false));
                w(0);
                w(*elem);
                w(*index);
                w(*len);
            }
            Type::Struct {
                name,
                size,
                members,
            }
            | Type::Union {
                name,
                size,
                members,
            } => {
                let kind = if matches!(t, Type::Struct { .. }) {
                    4
                } else {
                    5
                };
                let name = self.string(name);
                let members: Vec<(u32, u32, u32)> = members
                    .iter()
                    .map(|m| (self.string(&m.name), m.ty, m.bit_offset))
                    .collect();
                w(name);
                w(info(kind, members.len(), false));
                w(*size);
                for (n, ty, off) in members {
                    w(n);
                    w(ty);
                    w(off);
                }
            }
            Type::Enum { name, values } => {
                let name = self.string(name);
                let values: Vec<(u32, i32)> =
                    values.iter().map(|(n, v)| (self.string(n), *v)).collect();
                w(name);
                w(info(6, values.len(), false));
                w(4);
                for (n, v) in values {
                    w(n);
                    w(v as u32);
                }
            }
            Type::Typedef { name, ty } => {
                let name = self.string(name);
                w(name);
                w(info(8, 0, false));
                w(*ty);
            }
            Type::Volatile(ty) => {
                w(0);
                w(info(9, 0, false));
                w(*ty);
            }
            Type::Const(ty) => {
                w(0);
                w(info(10, 0, false));
                w(*ty);
            }
            Type::Func {
                name,
                proto,
                linkage,
            } => {
                let name = self.string(name);
                w(name);
                w(info(12, *linkage as usize, false));
                w(*proto);
            }
            Type::FuncProto { ret, params } => {
                let params: Vec<(u32, u32)> =
                    params.iter().map(|(n, t)| (self.string(n), *t)).collect();
                w(0);
                w(info(13, params.len(), false));
                w(*ret);
                for (n, t) in params {
                    w(n);
                    w(t);
                }
            }
            Type::Var { name, ty, linkage } => {
                let name = self.string(name);
                w(name);
                w(info(14, 0, false));
                w(*ty);
                w(*linkage as u32);
            }
            Type::Datasec { name, size, vars } => {
                let name = self.string(name);
                w(name);
                w(info(15, vars.len(), false));
                w(*size);
                for (v, off, sz) in vars {
                    w(*v);
                    w(*off);
                    w(*sz);
                }
            }
        }
    }
}

/// `struct bpf_func_info` (8 bytes).
pub const FUNC_INFO_SIZE: u32 = 8;
/// `struct bpf_line_info` (16 bytes).
pub const LINE_INFO_SIZE: u32 = 16;

/// One `line_info` record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LineInfo {
    /// Instruction index.
    pub insn: u32,
    /// String offset of the file name.
    pub file: u32,
    /// String offset of the source line.
    pub line_text: u32,
    /// Line number.
    pub line: u32,
    /// Column.
    pub column: u32,
}

/// Encodes `(insn, func type id)` records.
pub fn encode_func_info(records: &[(u32, TypeId)]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|(insn, ty)| [insn.to_le_bytes(), ty.to_le_bytes()].concat())
        .collect()
}

/// Encodes `line_info` records.
pub fn encode_line_info(records: &[LineInfo]) -> Vec<u8> {
    records
        .iter()
        .flat_map(|l| {
            // line_col: line number in the top 22 bits, column in the low 10.
            let col = (l.line << 10) | l.column.min(0x3ff);
            [l.insn, l.file, l.line_text, col]
                .into_iter()
                .flat_map(u32::to_le_bytes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_string_dedup() {
        let mut b = Btf::new();
        let int = b.add(Type::Int {
            name: "int".into(),
            size: 4,
            signed: true,
            bits: 32,
        });
        assert_eq!(int, 1);
        assert_eq!(b.string("int"), b.string("int"));
        let bytes = b.to_bytes();
        assert_eq!(&bytes[..4], &[0x9f, 0xeb, 1, 0]);
        // One INT: 16 bytes of type data; strings "\0int\0".
        assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()), 16);
        assert_eq!(&bytes[24 + 16..], b"\0int\0");
        // info: kind 1 (INT) in bits 24..28.
        assert_eq!(
            u32::from_le_bytes(bytes[28..32].try_into().unwrap()),
            1 << 24
        );
        // encoding: signed (bit 24), 32 bits.
        assert_eq!(
            u32::from_le_bytes(bytes[36..40].try_into().unwrap()),
            (1 << 24) | 32
        );
    }

    #[test]
    fn line_col_packs_line_and_column() {
        let rec = encode_line_info(&[LineInfo {
            insn: 3,
            file: 1,
            line_text: 5,
            line: 7,
            column: 2,
        }]);
        assert_eq!(rec.len(), 16);
        assert_eq!(
            u32::from_le_bytes(rec[12..16].try_into().unwrap()),
            (7 << 10) | 2
        );
    }
}

/// The BTF of one laid-out program: a `FUNC` per subprogram and line info
/// from the source annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramBtf {
    /// The BTF blob to load with `BPF_BTF_LOAD`.
    pub btf: Vec<u8>,
    /// `bpf_func_info` records.
    pub func_info: Vec<u8>,
    /// `bpf_line_info` records.
    pub line_info: Vec<u8>,
}

/// Makes `name` a valid C identifier, as the kernel requires of `FUNC` names.
fn c_identifier(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Subprogram starts of a laid-out program: 0 and every target of a
/// bpf-to-bpf call or function pointer.
pub fn subprogram_starts(insns: &[crate::insn::Insn]) -> Vec<usize> {
    use crate::insn::pseudo;
    let mut starts = vec![0usize];
    for (pc, insn) in insns.iter().enumerate() {
        let is_func_ptr = insn.is_wide() && insn.src == pseudo::FUNC;
        if insn.is_pseudo_call() || is_func_ptr {
            let target = pc as i64 + insn.imm as i64 + 1;
            if (0..insns.len() as i64).contains(&target) {
                starts.push(target as usize);
            }
        }
    }
    starts.sort_unstable();
    starts.dedup();
    starts
}

/// Builds the BTF of `layout` (a program of `object`), or `None` when it
/// needs none: no subprograms and (with `line_info` off, or no
/// annotations) nothing to show.
pub fn for_program(
    object: &crate::object::Object,
    layout: &crate::layout::Layout,
    line_info: bool,
) -> Option<ProgramBtf> {
    use crate::layout::Owner;
    let code_of = |owner: Owner| match owner {
        Owner::Program(p) => Some(&object.program(p).code),
        Owner::Function(f) => object.function(f).code.as_ref(),
    };
    let starts = subprogram_starts(&layout.insns);
    let annotated = line_info
        && layout
            .segments
            .iter()
            .filter_map(|s| code_of(s.owner))
            .any(|c| c.sources.iter().any(|(_, a)| a.is_some()));
    if starts.len() == 1 && !annotated {
        return None;
    }

    let mut btf = Btf::new();
    let int = btf.add(Type::Int {
        name: "int".into(),
        size: 4,
        signed: true,
        bits: 32,
    });
    let proto = btf.add(Type::FuncProto {
        ret: int,
        params: Vec::new(),
    });
    let mut func_info = Vec::with_capacity(starts.len());
    for &pc in &starts {
        let seg = layout.segment_at(pc);
        let name = match seg {
            Some(s) if s.start == pc => layout.owner_name(object, pc).map(str::to_string),
            Some(s) => code_of(s.owner).and_then(|c| {
                c.labels
                    .iter()
                    .find(|(at, _)| *at == pc - s.start)
                    .map(|(_, n)| n.to_string())
            }),
            None => None,
        }
        .unwrap_or_else(|| format!("sub_{pc}"));
        let func = btf.add(Type::Func {
            name: c_identifier(&name),
            proto,
            linkage: Linkage::Static,
        });
        func_info.push((pc as u32, func));
    }

    // Line info: a record wherever the annotation changes, and at every
    // subprogram start (the kernel requires one there).
    let mut lines: Vec<LineInfo> = Vec::new();
    let mut push = |btf: &mut Btf, pc: usize, a: Option<&crate::asm::Annotation>| {
        let rec = LineInfo {
            insn: pc as u32,
            file: btf.string(a.and_then(|a| a.file.as_deref()).unwrap_or("")),
            line_text: btf.string(a.map_or("", |a| &a.text)),
            line: a.map_or(0, |a| a.line),
            column: a.map_or(0, |a| a.column),
        };
        match lines.last_mut() {
            Some(last) if last.insn == rec.insn => *last = rec,
            _ => lines.push(rec),
        }
    };
    if annotated {
        let mut next_start = starts.iter().peekable();
        for seg in &layout.segments {
            let Some(code) = code_of(seg.owner) else {
                continue;
            };
            let mut changes = code.sources.iter().peekable();
            for local in 0..seg.len {
                let pc = seg.start + local;
                let mut changed = false;
                while changes.peek().is_some_and(|(at, _)| *at == local) {
                    changes.next();
                    changed = true;
                }
                let at_start = next_start.peek().is_some_and(|s| **s == pc);
                if at_start {
                    next_start.next();
                }
                if changed || at_start || pc == 0 {
                    push(&mut btf, pc, code.source_at(local));
                }
            }
        }
    }
    let mut line_info = Vec::new();
    if !lines.is_empty() {
        line_info = encode_line_info(&lines);
    }
    Some(ProgramBtf {
        btf: btf.to_bytes(),
        func_info: encode_func_info(&func_info),
        line_info,
    })
}
