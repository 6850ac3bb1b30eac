//! Parsing a raw BTF blob (header, type section, string section) into
//! [`Type`]s. Every offset and every type id is checked here, so lookups
//! on a parsed BTF never index out of range.

use super::{Enumerator, Kind, Name, RawMember, Type, VarSecinfo};
use crate::btf::{Linkage, TypeId};

/// Raw BTF that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed BTF: {0}")]
pub struct BtfReadError(pub(crate) String);

pub(super) fn bad<T>(what: impl Into<String>) -> Result<T, BtfReadError> {
    Err(BtfReadError(what.into()))
}

/// Reads the `u32` at `off` of `bytes` (host byte order, as the kernel
/// keeps BTF).
fn u32_at(bytes: &[u8], off: usize) -> Result<u32, BtfReadError> {
    match off.checked_add(4).and_then(|end| bytes.get(off..end)) {
        Some(b) => Ok(u32::from_ne_bytes([b[0], b[1], b[2], b[3]])),
        None => bad(format!("truncated at byte {off}")),
    }
}

/// The two sections of a blob.
pub(super) struct Sections<'a> {
    pub types: &'a [u8],
    pub strings: &'a [u8],
}

/// Checks the header and cuts the blob into its sections.
pub(super) fn sections(raw: &[u8]) -> Result<Sections<'_>, BtfReadError> {
    let magic = raw.get(..2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    if magic != Some(crate::btf::MAGIC) {
        return bad("no BTF magic (or BTF of the other byte order)");
    }
    match raw.get(2) {
        Some(1) => {}
        Some(v) => return bad(format!("BTF version {v}, not 1")),
        None => return bad("truncated header"),
    }
    let hdr_len = u32_at(raw, 4)? as usize;
    if hdr_len < 24 || hdr_len > raw.len() {
        return bad(format!("header length {hdr_len} out of range"));
    }
    let type_off = u32_at(raw, 8)? as usize;
    let type_len = u32_at(raw, 12)? as usize;
    let str_off = u32_at(raw, 16)? as usize;
    let str_len = u32_at(raw, 20)? as usize;
    let section = |off: usize, len: usize, what: &str| {
        hdr_len
            .checked_add(off)
            .and_then(|s| Some(s..s.checked_add(len)?))
            .and_then(|r| raw.get(r))
            .map_or_else(|| bad(format!("{what} section past the end")), Ok)
    };
    let types = section(type_off, type_len, "type")?;
    let strings = section(str_off, str_len, "string")?;
    if strings.last().is_some_and(|&b| b != 0) {
        return bad("string section does not end with a NUL");
    }
    Ok(Sections { types, strings })
}

/// Parses the type section. Ids start at `first_id`; names are offsets
/// below `str_end` (the end of all strings, the base's included) and
/// referenced ids are checked by the caller once the count is known.
pub(super) fn types(
    section: &[u8],
    first_id: TypeId,
    str_end: u32,
) -> Result<Vec<Type>, BtfReadError> {
    let mut out = Vec::with_capacity(section.len() / 24);
    let mut at = 0;
    while at < section.len() {
        let id = first_id as usize + out.len();
        let word = |i: usize| u32_at(section, at + 4 * i);
        let name_off = word(0)?;
        if name_off >= str_end.max(1) {
            return bad(format!(
                "type [{id}]: name offset {name_off} past the strings ({str_end} bytes)"
            ));
        }
        let name = Name(name_off);
        let info = word(1)?;
        let size_or_type = word(2)?;
        let kind_num = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let kind_flag = info >> 31 == 1;
        at += 12;
        // Reads the `n`th u32 after the common header.
        let extra = |n: usize| u32_at(section, at + 4 * n);
        let name_in = |n: usize, what: &str| -> Result<Name, BtfReadError> {
            let off = extra(n)?;
            if off >= str_end.max(1) {
                return bad(format!(
                    "type [{id}]: {what} name offset {off} past the strings"
                ));
            }
            Ok(Name(off))
        };
        let (ty, extra_len) = match kind_num {
            1 => {
                let e = extra(0)?;
                let ty = Type::Int {
                    name,
                    size: size_or_type,
                    encoding: ((e >> 24) & 0xf) as u8,
                    bit_offset: ((e >> 16) & 0xff) as u8,
                    bits: (e & 0xff) as u8,
                };
                (ty, 4)
            }
            2 => (Type::Ptr(size_or_type), 0),
            3 => (
                Type::Array {
                    elem: extra(0)?,
                    index: extra(1)?,
                    len: extra(2)?,
                },
                12,
            ),
            4 | 5 => {
                let mut members = Vec::with_capacity(vlen);
                for i in 0..vlen {
                    let off = extra(3 * i + 2)?;
                    let (offset_bits, bitfield_size) = if kind_flag {
                        (off & 0xff_ffff, (off >> 24) as u8)
                    } else {
                        (off, 0)
                    };
                    members.push(RawMember {
                        name: name_in(3 * i, "member")?,
                        ty: extra(3 * i + 1)?,
                        offset_bits,
                        bitfield_size,
                    });
                }
                let size = size_or_type;
                let ty = if kind_num == 4 {
                    Type::Struct {
                        name,
                        size,
                        members,
                    }
                } else {
                    Type::Union {
                        name,
                        size,
                        members,
                    }
                };
                (ty, vlen * 12)
            }
            6 | 19 => {
                let wide = kind_num == 19;
                let step = if wide { 3 } else { 2 };
                let mut values = Vec::with_capacity(vlen);
                for i in 0..vlen {
                    let lo = extra(step * i + 1)?;
                    let value = if wide {
                        u64::from(lo) | u64::from(extra(step * i + 2)?) << 32
                    } else if kind_flag {
                        lo as i32 as i64 as u64
                    } else {
                        u64::from(lo)
                    };
                    values.push(Enumerator {
                        name: name_in(step * i, "enumerator")?,
                        value,
                    });
                }
                let ty = Type::Enum {
                    name,
                    size: size_or_type,
                    signed: kind_flag,
                    wide,
                    values,
                };
                (ty, vlen * 4 * step)
            }
            7 => (
                Type::Fwd {
                    name,
                    union: kind_flag,
                },
                0,
            ),
            8 => (
                Type::Typedef {
                    name,
                    ty: size_or_type,
                },
                0,
            ),
            9 => (Type::Volatile(size_or_type), 0),
            10 => (Type::Const(size_or_type), 0),
            11 => (Type::Restrict(size_or_type), 0),
            12 => {
                let linkage = match vlen {
                    0 => Linkage::Static,
                    1 => Linkage::Global,
                    2 => Linkage::Extern,
                    l => return bad(format!("FUNC [{id}] has linkage {l}")),
                };
                let ty = Type::Func {
                    name,
                    proto: size_or_type,
                    linkage,
                };
                (ty, 0)
            }
            13 => {
                let mut params = Vec::with_capacity(vlen);
                for i in 0..vlen {
                    params.push((name_in(2 * i, "parameter")?, extra(2 * i + 1)?));
                }
                let ty = Type::FuncProto {
                    ret: size_or_type,
                    params,
                };
                (ty, vlen * 8)
            }
            14 => (
                Type::Var {
                    name,
                    ty: size_or_type,
                    linkage: extra(0)?,
                },
                4,
            ),
            15 => {
                let mut vars = Vec::with_capacity(vlen);
                for i in 0..vlen {
                    vars.push(VarSecinfo {
                        ty: extra(3 * i)?,
                        offset: extra(3 * i + 1)?,
                        size: extra(3 * i + 2)?,
                    });
                }
                let ty = Type::Datasec {
                    name,
                    size: size_or_type,
                    vars,
                };
                (ty, vlen * 12)
            }
            16 => (
                Type::Float {
                    name,
                    size: size_or_type,
                },
                0,
            ),
            17 => (
                Type::DeclTag {
                    name,
                    ty: size_or_type,
                    component_idx: extra(0)? as i32,
                },
                4,
            ),
            18 => (
                Type::TypeTag {
                    name,
                    ty: size_or_type,
                },
                0,
            ),
            k => return bad(format!("type [{id}]: unknown kind {k}")),
        };
        // The last extra word must be inside the section.
        if extra_len > 0 {
            u32_at(section, at + extra_len - 4)?;
        }
        at += extra_len;
        out.push(ty);
    }
    Ok(out)
}

/// Checks that every type id that `ty` (id `id`) refers to is below
/// `count`.
pub(super) fn check_refs(id: usize, ty: &Type, count: usize) -> Result<(), BtfReadError> {
    let check = |r: TypeId, what: &str| {
        if (r as usize) < count {
            Ok(())
        } else {
            bad(format!(
                "{} [{id}]: {what} type id {r} out of range (there are {count})",
                ty.kind()
            ))
        }
    };
    match ty {
        Type::Ptr(t)
        | Type::Volatile(t)
        | Type::Const(t)
        | Type::Restrict(t)
        | Type::Typedef { ty: t, .. }
        | Type::Var { ty: t, .. }
        | Type::DeclTag { ty: t, .. }
        | Type::TypeTag { ty: t, .. } => check(*t, "referenced"),
        Type::Array { elem, index, .. } => {
            check(*elem, "element")?;
            check(*index, "index")
        }
        Type::Struct { members, .. } | Type::Union { members, .. } => {
            members.iter().try_for_each(|m| check(m.ty, "member"))
        }
        Type::Func { proto, .. } => check(*proto, "prototype"),
        Type::FuncProto { ret, params } => {
            check(*ret, "return")?;
            params.iter().try_for_each(|(_, t)| check(*t, "parameter"))
        }
        Type::Datasec { vars, .. } => vars.iter().try_for_each(|v| check(v.ty, "variable")),
        Type::Void
        | Type::Int { .. }
        | Type::Enum { .. }
        | Type::Fwd { .. }
        | Type::Float { .. } => Ok(()),
    }
}

impl Type {
    /// This type's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Type::Void => Kind::Void,
            Type::Int { .. } => Kind::Int,
            Type::Ptr(_) => Kind::Ptr,
            Type::Array { .. } => Kind::Array,
            Type::Struct { .. } => Kind::Struct,
            Type::Union { .. } => Kind::Union,
            Type::Enum { wide: false, .. } => Kind::Enum,
            Type::Enum { wide: true, .. } => Kind::Enum64,
            Type::Fwd { .. } => Kind::Fwd,
            Type::Typedef { .. } => Kind::Typedef,
            Type::Volatile(_) => Kind::Volatile,
            Type::Const(_) => Kind::Const,
            Type::Restrict(_) => Kind::Restrict,
            Type::Func { .. } => Kind::Func,
            Type::FuncProto { .. } => Kind::FuncProto,
            Type::Var { .. } => Kind::Var,
            Type::Datasec { .. } => Kind::Datasec,
            Type::Float { .. } => Kind::Float,
            Type::DeclTag { .. } => Kind::DeclTag,
            Type::TypeTag { .. } => Kind::TypeTag,
        }
    }

    /// This type's name (`None` for kinds that have none: pointers,
    /// arrays, qualifiers, prototypes, `void`).
    pub fn name(&self) -> Option<Name> {
        match self {
            Type::Int { name, .. }
            | Type::Struct { name, .. }
            | Type::Union { name, .. }
            | Type::Enum { name, .. }
            | Type::Fwd { name, .. }
            | Type::Typedef { name, .. }
            | Type::Func { name, .. }
            | Type::Var { name, .. }
            | Type::Datasec { name, .. }
            | Type::Float { name, .. }
            | Type::DeclTag { name, .. }
            | Type::TypeTag { name, .. } => Some(*name),
            _ => None,
        }
    }
}
