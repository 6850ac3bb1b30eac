//! BTF: a writer (types, strings, and the `func_info`/`line_info` records
//! that let the verifier and `bpftool prog dump xlated linum` show the
//! builder's source annotations beside the instructions) and, in
//! [`kernel`], a reader of raw BTF such as the running kernel's.
//!
//! The kernel needs BTF for programs with callbacks (`bpf_loop` and
//! friends): every subprogram must then have a `func_info` record.

use std::collections::HashMap;

mod context;
pub mod kernel;
mod program;
mod types;

pub use context::{add_context_struct, context_name};
pub use kernel::{BtfReadError, FuncEntry, KernelBtf, find_func};
pub(crate) use program::c_identifier;
pub use program::{ProgramBtf, for_program, subprogram_starts};
pub use types::{Linkage, Member, Type, TypeId, int_encoding};

/// BTF header magic.
const MAGIC: u16 = 0xeb9f;

/// Builds a BTF blob.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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

    /// All types, id 1 first.
    pub fn types(&self) -> &[Type] {
        &self.types
    }

    /// Number of types (not counting `void`).
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether only `void` is there.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Appends every type of `other`, renumbered; returns what to add to an
    /// id of `other` to get its id here (`void` stays 0).
    pub fn append(&mut self, other: &Btf) -> TypeId {
        let shift = self.types.len() as TypeId;
        for t in &other.types {
            let mut t = t.clone();
            for r in t.refs_mut() {
                if *r != 0 {
                    *r += shift;
                }
            }
            self.types.push(t);
        }
        shift
    }

    /// The size in bytes of a value of type `id`, following typedefs and
    /// qualifiers; `None` for `void`, functions, forward declarations and
    /// unknown ids.
    pub fn size_of(&self, id: TypeId) -> Option<u32> {
        let mut id = id;
        // A chain of typedefs/qualifiers is at most as long as the table.
        for _ in 0..=self.types.len() {
            match self.get(id)? {
                Type::Int { size, .. }
                | Type::IntEncoded { size, .. }
                | Type::Struct { size, .. }
                | Type::Union { size, .. }
                | Type::Datasec { size, .. }
                | Type::Float { size, .. }
                | Type::Enum64 { size, .. } => return Some(*size),
                Type::Enum { .. } => return Some(4),
                Type::Ptr(_) => return Some(8),
                Type::Array { elem, len, .. } => return self.size_of(*elem)?.checked_mul(*len),
                Type::Typedef { ty, .. }
                | Type::Volatile(ty)
                | Type::Const(ty)
                | Type::Restrict(ty)
                | Type::TypeTag { ty, .. }
                | Type::Var { ty, .. } => id = *ty,
                Type::Fwd { .. } | Type::Func { .. } | Type::FuncProto { .. } => return None,
                Type::DeclTag { .. } => return None,
            }
        }
        None
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
        let info = |vlen: usize, flag: bool| {
            (t.kind() << 24) | (vlen as u32 & 0xffff) | ((flag as u32) << 31)
        };
        match t {
            Type::Int {
                name,
                size,
                signed,
                bits,
            } => {
                w(self.string(name));
                w(info(0, false));
                w(*size);
                w(((*signed as u32) << 24) | *bits as u32);
            }
            Type::IntEncoded {
                name,
                size,
                encoding,
                bit_offset,
                bits,
            } => {
                w(self.string(name));
                w(info(0, false));
                w(*size);
                w(((*encoding as u32) << 24) | ((*bit_offset as u32) << 16) | *bits as u32);
            }
            Type::Ptr(ty) | Type::Volatile(ty) | Type::Const(ty) | Type::Restrict(ty) => {
                w(0);
                w(info(0, false));
                w(*ty);
            }
            Type::Array { elem, index, len } => {
                w(0);
                w(info(0, false));
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
                // kind_flag: member offsets carry the bitfield size in the
                // top 8 bits. Needed as soon as one member is a bitfield.
                let bitfields = members.iter().any(|m| m.bitfield_size > 0);
                let name = self.string(name);
                let members: Vec<(u32, u32, u32)> = members
                    .iter()
                    .map(|m| {
                        let off = if bitfields {
                            ((m.bitfield_size as u32) << 24) | (m.bit_offset & 0xff_ffff)
                        } else {
                            m.bit_offset
                        };
                        (self.string(&m.name), m.ty, off)
                    })
                    .collect();
                w(name);
                w(info(members.len(), bitfields));
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
                // kind_flag marks a signed enum (kernel 6.0+).
                let signed = values.iter().any(|(_, v)| *v < 0);
                w(name);
                w(info(values.len(), signed));
                w(4);
                for (n, v) in values {
                    w(n);
                    w(v as u32);
                }
            }
            Type::Fwd { name, union } => {
                w(self.string(name));
                w(info(0, *union));
                w(0);
            }
            Type::Typedef { name, ty } | Type::TypeTag { name, ty } => {
                w(self.string(name));
                w(info(0, false));
                w(*ty);
            }
            Type::Func {
                name,
                proto,
                linkage,
            } => {
                w(self.string(name));
                w(info(*linkage as usize, false));
                w(*proto);
            }
            Type::FuncProto { ret, params } => {
                let params: Vec<(u32, u32)> =
                    params.iter().map(|(n, t)| (self.string(n), *t)).collect();
                w(0);
                w(info(params.len(), false));
                w(*ret);
                for (n, t) in params {
                    w(n);
                    w(t);
                }
            }
            Type::Var { name, ty, linkage } => {
                w(self.string(name));
                w(info(0, false));
                w(*ty);
                w(*linkage as u32);
            }
            Type::Datasec { name, size, vars } => {
                w(self.string(name));
                w(info(vars.len(), false));
                w(*size);
                for (v, off, sz) in vars {
                    w(*v);
                    w(*off);
                    w(*sz);
                }
            }
            Type::Float { name, size } => {
                w(self.string(name));
                w(info(0, false));
                w(*size);
            }
            Type::DeclTag {
                name,
                ty,
                component,
            } => {
                w(self.string(name));
                w(info(0, false));
                w(*ty);
                w(*component as u32);
            }
            Type::Enum64 {
                name,
                size,
                signed,
                values,
            } => {
                let name = self.string(name);
                let values: Vec<(u32, u64)> =
                    values.iter().map(|(n, v)| (self.string(n), *v)).collect();
                w(name);
                w(info(values.len(), *signed));
                w(*size);
                for (n, v) in values {
                    w(n);
                    w(v as u32);
                    w((v >> 32) as u32);
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
        let int = b.add(Type::int("int", 4, true));
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
