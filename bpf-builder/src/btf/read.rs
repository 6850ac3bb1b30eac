//! A small reader of raw BTF (as the kernel hands it back for a loaded
//! program): enough to find a function's `FUNC` by name, with its id and
//! linkage. Types are walked only to step over them.

use super::{Linkage, TypeId};

/// `BTF_KIND_FUNC`.
const KIND_FUNC: u32 = 12;

/// A `FUNC` found in raw BTF.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FuncEntry {
    /// Its type id.
    pub id: TypeId,
    /// Its linkage.
    pub linkage: Linkage,
}

/// Raw BTF that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed BTF: {0}")]
pub struct BtfReadError(String);

fn bad<T>(what: impl Into<String>) -> Result<T, BtfReadError> {
    Err(BtfReadError(what.into()))
}

/// Reads the `u32` at `off` of `bytes` (host byte order, as the kernel
/// keeps BTF).
fn u32_at(bytes: &[u8], off: usize) -> Result<u32, BtfReadError> {
    match bytes.get(off..off + 4) {
        Some(b) => Ok(u32::from_ne_bytes(b.try_into().expect("4 bytes"))),
        None => bad(format!("truncated at byte {off}")),
    }
}

/// Bytes that follow the 12-byte common header of a type of `kind` with
/// `vlen` entries.
fn extra_size(kind: u32, vlen: usize) -> Result<usize, BtfReadError> {
    Ok(match kind {
        1 => 4,                    // INT
        3 => 12,                   // ARRAY
        4 | 5 => vlen * 12,        // STRUCT, UNION
        6 => vlen * 8,             // ENUM
        13 => vlen * 8,            // FUNC_PROTO
        14 => 4,                   // VAR
        15 => vlen * 12,           // DATASEC
        17 => 4,                   // DECL_TAG
        19 => vlen * 12,           // ENUM64
        2 | 7..=12 | 16 | 18 => 0, // PTR, FWD, TYPEDEF, qualifiers, FUNC, FLOAT, TYPE_TAG
        k => return bad(format!("unknown kind {k}")),
    })
}

/// Finds the `FUNC` named `name` in the raw BTF blob `raw` (a standalone
/// BTF, as a program's is: ids count from 1). `None` when there is none.
pub fn find_func(raw: &[u8], name: &str) -> Result<Option<FuncEntry>, BtfReadError> {
    let magic = raw.get(..2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    if magic != Some(super::MAGIC) {
        return bad("no BTF magic (or BTF of the other byte order)");
    }
    let hdr_len = u32_at(raw, 4)? as usize;
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
    let name_at = |off: u32| -> Result<&[u8], BtfReadError> {
        let rest = strings
            .get(off as usize..)
            .map_or_else(|| bad(format!("name offset {off} past the strings")), Ok)?;
        Ok(&rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())])
    };
    let mut at = 0;
    let mut id: TypeId = 1;
    while at < types.len() {
        let name_off = u32_at(types, at)?;
        let info = u32_at(types, at + 4)?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        if kind == KIND_FUNC && name_at(name_off)? == name.as_bytes() {
            let linkage = match vlen {
                0 => Linkage::Static,
                1 => Linkage::Global,
                2 => Linkage::Extern,
                l => return bad(format!("FUNC {name} has linkage {l}")),
            };
            return Ok(Some(FuncEntry { id, linkage }));
        }
        at += 12 + extra_size(kind, vlen)?;
        id += 1;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::super::{Btf, Type};
    use super::*;

    #[test]
    fn finds_functions_by_name_with_their_linkage() {
        let mut b = Btf::new();
        let int = b.add(Type::int("int", 4, true));
        let s = b.add(Type::Struct {
            name: "xdp_md".into(),
            size: 4,
            members: vec![super::super::Member::new("data", int, 0)],
        });
        let ptr = b.add(Type::Ptr(s));
        let proto = b.add(Type::FuncProto {
            ret: int,
            params: vec![("ctx".into(), ptr)],
        });
        let main = b.add(Type::Func {
            name: "main".into(),
            proto,
            linkage: Linkage::Static,
        });
        let slot = b.add(Type::Func {
            name: "slot".into(),
            proto,
            linkage: Linkage::Global,
        });
        let raw = b.to_bytes();
        assert_eq!(
            find_func(&raw, "slot"),
            Ok(Some(FuncEntry {
                id: slot,
                linkage: Linkage::Global
            }))
        );
        assert_eq!(
            find_func(&raw, "main"),
            Ok(Some(FuncEntry {
                id: main,
                linkage: Linkage::Static
            }))
        );
        assert_eq!(find_func(&raw, "xdp_md"), Ok(None), "a STRUCT, not a FUNC");
        assert_eq!(find_func(&raw, "nope"), Ok(None));
        assert!(find_func(&raw[..raw.len() - 8], "slot").is_err());
        assert!(find_func(b"junk", "slot").is_err());
    }
}
