//! The kernel is the judge of our BTF: every kind loads, a broken blob is
//! refused with a log, typed maps show their types in bpftool, and line
//! info shows the annotations in `bpftool prog dump xlated linum`.

mod common;

use std::process::Command;

use bpf_builder::asm::{Annotation, Asm};
use bpf_builder::btf::{Btf, Linkage, Member, Type, int_encoding};
use bpf_builder::insn::Reg::*;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{Object, ProgramType};
use bpf_builder::sys::bpf as sys;
use common::require_bpf;

fn int(b: &mut Btf, name: &str, size: u32, signed: bool) -> u32 {
    b.add(Type::int(name, size, signed))
}

/// A BTF with one type of every kind the kernel knows.
fn every_kind() -> Btf {
    let mut b = Btf::new();
    let u32_ = int(&mut b, "unsigned int", 4, false);
    let char_ = b.add(Type::IntEncoded {
        name: "char".into(),
        size: 1,
        encoding: int_encoding::CHAR, // the kernel takes one encoding bit at most
        bit_offset: 0,
        bits: 8,
    });
    let ptr = b.add(Type::Ptr(u32_));
    let arr = b.add(Type::Array {
        elem: char_,
        index: u32_,
        len: 16,
    });
    let st = b.add(Type::Struct {
        name: "flags".into(),
        size: 8,
        members: vec![
            Member::bitfield("a", u32_, 0, 3),
            Member::bitfield("b", u32_, 3, 5),
            Member::new("c", u32_, 32),
        ],
    });
    let un = b.add(Type::Union {
        name: "either".into(),
        size: 16,
        members: vec![Member::new("p", ptr, 0), Member::new("s", arr, 0)],
    });
    b.add(Type::Enum {
        name: "colour".into(),
        values: vec![("RED".into(), 0), ("MINUS".into(), -1)],
    });
    b.add(Type::Fwd {
        name: "later".into(),
        union: true,
    });
    let td = b.add(Type::Typedef {
        name: "flags_t".into(),
        ty: st,
    });
    let vol = b.add(Type::Volatile(u32_));
    let cst = b.add(Type::Const(vol));
    let rst = b.add(Type::Restrict(ptr));
    let proto = b.add(Type::FuncProto {
        ret: u32_,
        params: vec![("x".into(), rst), ("y".into(), td)],
    });
    let func = b.add(Type::Func {
        name: "f".into(),
        proto,
        linkage: Linkage::Global,
    });
    let var = b.add(Type::Var {
        name: "limit".into(),
        ty: cst,
        linkage: Linkage::Global,
    });
    b.add(Type::Datasec {
        name: ".rodata".into(),
        size: 4,
        vars: vec![(var, 0, 4)],
    });
    b.add(Type::Float {
        name: "double".into(),
        size: 8,
    });
    b.add(Type::DeclTag {
        name: "x_tag".into(),
        ty: func,
        component: 0,
    });
    b.add(Type::DeclTag {
        name: "st_tag".into(),
        ty: st,
        component: -1,
    });
    let tag = b.add(Type::TypeTag {
        name: "user".into(),
        ty: u32_,
    });
    b.add(Type::Ptr(tag));
    b.add(Type::Enum64 {
        name: "big".into(),
        size: 8,
        signed: false,
        values: vec![("HUGE".into(), 1 << 40), ("SMALL".into(), 1)],
    });
    b.add(Type::Ptr(un));
    b
}

#[test]
fn every_kind_loads() {
    if !require_bpf() {
        return;
    }
    let mut b = every_kind();
    let kinds: std::collections::BTreeSet<u32> = b.types().iter().map(Type::kind).collect();
    assert_eq!(
        kinds,
        (1..=19).collect(),
        "every BTF_KIND_* from INT to ENUM64"
    );
    let blob = b.to_bytes();
    let loaded = sys::btf_load(&blob, 0, 64 * 1024);
    if let Err(e) = loaded {
        panic!("kernel refused: {}\n{}", e.error, e.log);
    }
}

#[test]
fn broken_btf_is_refused_with_a_log() {
    if !require_bpf() {
        return;
    }
    let mut b = Btf::new();
    b.add(Type::Ptr(42)); // no type 42
    let e = sys::btf_load(&b.to_bytes(), 0, 64 * 1024).expect_err("dangling id");
    assert_eq!(e.error.raw_os_error(), Some(libc::EINVAL));
    assert!(e.log.contains("Invalid type_id"), "{}", e.log);

    // A bitfield member in a struct without room for it.
    let mut b = Btf::new();
    let u8_ = int(&mut b, "u8", 1, false);
    b.add(Type::Struct {
        name: "s".into(),
        size: 1,
        members: vec![Member::bitfield("wide", u8_, 4, 8)],
    });
    let e = sys::btf_load(&b.to_bytes(), 0, 64 * 1024).expect_err("overflowing bitfield");
    assert!(!e.log.is_empty(), "a log explains the refusal");
}

fn bpftool(args: &[&str]) -> String {
    let out = Command::new("bpftool")
        .args(args)
        .output()
        .expect("bpftool is installed");
    assert!(
        out.status.success(),
        "bpftool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn typed_map_dumps_with_member_names() {
    if !require_bpf() {
        return;
    }
    let mut b = Btf::new();
    let u32_ = int(&mut b, "__u32", 4, false);
    let u64_ = int(&mut b, "__u64", 8, false);
    let value = b.add(Type::Struct {
        name: "stats".into(),
        size: 16,
        members: vec![
            Member::new("packets", u64_, 0),
            Member::new("bytes", u64_, 64),
        ],
    });
    let spec = MapSpec::array("typed", 16, 2)
        .with_btf(b, u32_, value)
        .with_bytes(
            1u32.to_ne_bytes(),
            [7u64.to_ne_bytes(), 1500u64.to_ne_bytes()].concat(),
        );
    let mut o = Object::new();
    let m = o.add_map(spec).unwrap();
    let loaded = o.load().unwrap();
    let id = loaded.map(m).id().unwrap().to_string();
    let dump = bpftool(&["map", "dump", "id", &id]);
    assert!(dump.contains("\"packets\": 7"), "{dump}");
    assert!(dump.contains("\"bytes\": 1500"), "{dump}");

    // Without BTF the same map dumps raw bytes only.
    let mut o = Object::new();
    let m = o.add_map(MapSpec::array("raw", 16, 2)).unwrap();
    let loaded = o.load().unwrap();
    let id = loaded.map(m).id().unwrap().to_string();
    let dump = bpftool(&["map", "dump", "id", &id]);
    assert!(!dump.contains("packets"), "{dump}");
}

#[test]
fn map_btf_sizes_are_checked() {
    let mut b = Btf::new();
    let u32_ = int(&mut b, "__u32", 4, false);
    let e = MapSpec::array("bad", 8, 1)
        .with_btf(b, u32_, u32_)
        .validate()
        .unwrap_err();
    assert!(e.reason.contains("value type's size"), "{e}");
}

#[test]
fn xlated_linum_shows_annotations() {
    if !require_bpf() {
        return;
    }
    let mut o = Object::new();
    let mut a = Asm::new();
    a.set_source(Annotation::at("rules.fw", 3, 1, "tcp dst port 22"));
    a.mov64(R0, 1);
    a.set_source(Annotation::at("rules.fw", 4, 5, "accept"));
    a.mov64(R0, 2);
    a.exit();
    let p = o
        .add_program("linum", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    let loaded = o.load().unwrap();
    let id = loaded.program(p).info().unwrap().id.to_string();
    let dump = bpftool(&["prog", "dump", "xlated", "id", &id, "linum"]);
    let lines: Vec<&str> = dump.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} missing from:\n{dump}"))
    };
    let first = at("; tcp dst port 22 [file:rules.fw line_num:3 line_col:1]");
    let second = at("; accept [file:rules.fw line_num:4 line_col:5]");
    assert!(first < second);
    assert!(lines[first + 1].contains("r0 = 1"), "{dump}");
    assert!(lines[second + 1].contains("r0 = 2"), "{dump}");
}
