//! Unit tests of the reader on blobs the writer makes (the kernel's own
//! BTF is tested in `tests/btf_read.rs`).

use super::*;
use crate::btf::{Btf, Type as W};
use std::sync::Arc;

#[test]
fn finds_functions_by_name_with_their_linkage() {
    let mut b = Btf::new();
    let int = b.add(W::int("int", 4, true));
    let s = b.add(W::Struct {
        name: "xdp_md".into(),
        size: 4,
        members: vec![crate::btf::Member::new("data", int, 0)],
    });
    let ptr = b.add(W::Ptr(s));
    let proto = b.add(W::FuncProto {
        ret: int,
        params: vec![("ctx".into(), ptr)],
    });
    let main = b.add(W::Func {
        name: "main".into(),
        proto,
        linkage: Linkage::Static,
    });
    let slot = b.add(W::Func {
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

/// A raw blob of `types` (u32 words) and `strings`.
fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
    let tl = (types.len() * 4) as u32;
    let mut out = Vec::new();
    out.extend_from_slice(&crate::btf::MAGIC.to_ne_bytes());
    out.extend_from_slice(&[1, 0]);
    for w in [24, 0, tl, tl, strings.len() as u32] {
        out.extend_from_slice(&w.to_ne_bytes());
    }
    for w in types {
        out.extend_from_slice(&w.to_ne_bytes());
    }
    out.extend_from_slice(strings);
    out
}

const INT: u32 = 1 << 24;
const PTR: u32 = 2 << 24;
const STRUCT: u32 = 4 << 24;
const KIND_FLAG: u32 = 1 << 31;

#[test]
fn malformed_blobs_are_errors() {
    // [1] INT 'int' size 4, [2] PTR -> 1
    let good = blob(&[1, INT, 4, 32, 0, PTR, 1], b"\0int\0");
    let btf = KernelBtf::parse(&good).unwrap();
    assert_eq!(btf.len(), 3);
    assert_eq!(btf.name_of(1), "int");
    assert_eq!(btf.size_of(2).unwrap(), 8);
    let mut bad_magic = good.clone();
    bad_magic[0] ^= 0xff;
    assert!(KernelBtf::parse(&bad_magic).is_err());
    let name_out = blob(&[99, INT, 4, 32, 0, PTR, 1], b"\0int\0");
    let e = KernelBtf::parse(&name_out).unwrap_err();
    assert!(e.to_string().contains("name offset 99"), "{e}");
    let id_out = blob(&[1, INT, 4, 32, 0, PTR, 3], b"\0int\0");
    let e = KernelBtf::parse(&id_out).unwrap_err();
    assert!(e.to_string().contains("type id 3 out of range"), "{e}");
    let unknown = blob(&[0, 25 << 24, 0], b"\0");
    assert!(KernelBtf::parse(&unknown).is_err());
    let no_nul = blob(&[1, INT, 4, 32], b"\0int");
    assert!(KernelBtf::parse(&no_nul).is_err());
    for cut in 0..good.len() {
        assert!(KernelBtf::parse(&good[..cut]).is_err(), "cut at {cut}");
    }
    // A typedef loop parses (ids are in range) but resolving it is an error.
    let looped = blob(&[1, 8 << 24, 2, 1, 8 << 24, 1], b"\0t\0");
    let btf = KernelBtf::parse(&looped).unwrap();
    assert!(matches!(btf.resolve(1), Err(KernelBtfError::Loop(_))));
    assert!(btf.size_of(2).is_err());
}

#[test]
fn split_btf_continues_ids_and_strings() {
    // base: [1] INT 'int', [2] STRUCT 's' { int a:3 @0; int b:5 @3; } (kind flag)
    let base = blob(
        &[
            1,
            INT,
            4,
            32,
            5,
            STRUCT | KIND_FLAG | 2,
            4,
            7,
            1,
            3 << 24,
            9,
            1,
            5 << 24 | 3,
        ],
        b"\0int\0s\0a\0b\0",
    );
    let base = Arc::new(KernelBtf::parse(&base).unwrap());
    assert_eq!(base.len(), 3);
    let b = base.member(2, "b").unwrap();
    assert_eq!((b.offset_bits, b.bitfield_size, b.ty), (3, 5, 1));
    // split: [3] PTR -> 2, [4] STRUCT 'm' { struct s inner @32; anon @64 }
    // [5] STRUCT (anon) { ptr p @0 }; strings continue at 11 (base's 11 bytes)
    let split = blob(
        &[
            0,
            PTR,
            2,
            12,
            STRUCT | 2,
            16,
            14,
            2,
            32,
            0,
            5,
            64,
            0,
            STRUCT | 1,
            8,
            20,
            3,
            0,
        ],
        b"\0m\0inner\0p\0",
    );
    let m = KernelBtf::parse_split(&split, base.clone()).unwrap();
    assert_eq!(m.len(), 6);
    assert_eq!(m.first_own_id(), 3);
    assert_eq!(
        m.name_of(1),
        "int",
        "the base's types through the split BTF"
    );
    assert_eq!(m.name_of(4), "m");
    assert_eq!(m.type_by_name("m", Kind::Struct), Some(4));
    assert_eq!(m.type_by_name("s", Kind::Struct), Some(2));
    let path = m.member_path(4, &["inner", "b"]).unwrap();
    assert_eq!((path.offset_bits, path.bitfield_size, path.ty), (35, 5, 1));
    let p = m.member(4, "p").unwrap();
    assert_eq!(
        (p.byte_offset(), p.ty),
        (8, 3),
        "found in the anonymous member"
    );
    let through_ptr = m.member_path(4, &["p", "a"]).unwrap_err();
    assert!(matches!(through_ptr, KernelBtfError::NotComposite { .. }));
    assert!(matches!(
        m.member(4, "nope"),
        Err(KernelBtfError::NoMember { .. })
    ));
    // The split blob's ids may not reach past its own types.
    let mut bad = split.clone();
    bad[24 + 8..24 + 12].copy_from_slice(&6u32.to_ne_bytes());
    assert!(KernelBtf::parse_split(&bad, base.clone()).is_err());
    // Alone (without its base) it does not parse.
    assert!(KernelBtf::parse(&split).is_err());
}
