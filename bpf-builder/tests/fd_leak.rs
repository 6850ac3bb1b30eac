//! Failed loads must not leak file descriptors. This is the only test in
//! its binary so that no other test opens or closes fds while it counts.

mod common;

use bpf_builder::asm::{Annotation, Asm};
use bpf_builder::insn::{Insn, Reg};
use bpf_builder::load::LoadError;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{Object, ProgramType};
use bpf_builder::sys::bpf::{
    MapCreateAttr, ProgLoadAttr, bpf_map_type, bpf_prog_type, btf_load, map_create, prog_load,
};
use common::{GPL, open_fds, require_bpf};

#[test]
fn failed_loads_leak_no_fds() {
    if !require_bpf() {
        return;
    }
    let bad = [Insn::mov64(Reg::R0, Reg::R2), Insn::exit()];
    let attr = ProgLoadAttr::new(bpf_prog_type::BPF_PROG_TYPE_XDP as u32, &bad, GPL);
    // Warm up lazily opened fds (none expected, but be fair to the count).
    assert!(prog_load(&attr).is_err());
    let before = open_fds();
    for _ in 0..200 {
        let e = prog_load(&attr).unwrap_err();
        assert!(e.log.contains("R2 !read_ok"));
        assert!(btf_load(b"not btf", 0, 1024).is_err());
        let bad_map = MapCreateAttr {
            map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
            key_size: 3, // arrays need 4-byte keys
            value_size: 4,
            max_entries: 1,
            ..Default::default()
        };
        assert!(map_create(&bad_map).is_err());
    }
    assert_eq!(open_fds(), before, "fds leaked across 200 failed loads");

    // And successful objects are closed on drop.
    for _ in 0..200 {
        let ok = [Insn::mov64(Reg::R0, 2), Insn::exit()];
        let attr = ProgLoadAttr::new(bpf_prog_type::BPF_PROG_TYPE_XDP as u32, &ok, GPL);
        let fd = prog_load(&attr).unwrap();
        assert_eq!(open_fds(), before + 1);
        drop(fd);
    }
    assert_eq!(open_fds(), before);

    // A whole object whose second program fails: the maps, the BTF and the
    // first program created before the failure are all closed again.
    let object = object_failing_late();
    assert!(object.load().is_err());
    let before = open_fds();
    for _ in 0..50 {
        match object.load() {
            Err(LoadError::Program(e)) => assert_eq!(e.program, "bad"),
            other => panic!("expected the verifier to refuse `bad`, got {other:?}"),
        }
    }
    assert_eq!(
        open_fds(),
        before,
        "fds leaked across 50 failed object loads"
    );
    let loaded = object_loading_fine().load().unwrap();
    assert_eq!(
        open_fds(),
        before + 3,
        "two maps and a program; the BTF fd is not kept"
    );
    drop(loaded);
    assert_eq!(open_fds(), before);
}

/// Two maps, an annotated program with a subprogram (so BTF is loaded),
/// then a program the verifier refuses.
fn object_failing_late() -> Object {
    let mut o = object_loading_fine();
    let mut a = Asm::new();
    a.mov64(Reg::R0, Reg::R2);
    a.exit();
    o.add_program("bad", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    o
}

fn object_loading_fine() -> Object {
    let mut o = Object::new();
    let m = o.add_map(MapSpec::hash("h", 4, 8, 16)).unwrap();
    o.add_rodata(".rodata", &[1, 2, 3, 4]).unwrap();
    let mut a = Asm::new();
    a.mov64(Reg::R0, 1);
    a.exit();
    let f = o.add_function("one", a.finish().unwrap()).unwrap();
    let mut a = Asm::new();
    a.set_source(Annotation::new("good program"));
    a.ld_map_fd(Reg::R1, m);
    a.call_func(f);
    a.mov64(Reg::R0, 2);
    a.exit();
    o.add_program("good", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    o
}
