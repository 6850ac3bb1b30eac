//! `Object::to_elf` output accepted by bpftool (libbpf 1.1), aya and
//! llvm-objdump, and read back by our own importer to the same object.

mod common;
mod elf_common;

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;

use bpf_builder::asm::Asm;
use bpf_builder::elf::ElfError;
use bpf_builder::handle::Program;
use bpf_builder::insn::Reg::*;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{Object, ProgramType};
use bpf_builder::reloc::Reloc;
use bpf_builder::run::TestRun;
use common::{Scratch, require_bpf};
use elf_common::{build, expected_total};

fn sample_elf() -> (elf_common::Sample, Vec<u8>) {
    let s = build(5, 2);
    let bytes = s.object.to_elf().expect("the sample is expressible");
    (s, bytes)
}

#[test]
fn bpftool_loadall_accepts_it() {
    if !require_bpf() {
        return;
    }
    let (_, bytes) = sample_elf();
    let scratch = Scratch::new("elf", "loadall");
    scratch.bpftool_loadall(&bytes);
    let mut pinned: Vec<String> = std::fs::read_dir(&scratch.pins)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pinned.sort();
    assert_eq!(
        pinned,
        [
            "dev_jumbo",
            "drop_all",
            "jumbo",
            "main",
            "on_devmap",
            "sock_all",
            "tc_ok"
        ],
        "every program, and no function, is a program for libbpf"
    );
    // The pinned main program runs as we built it.
    let main = Program::from_pin(scratch.pins.join("main")).unwrap();
    let out = main.test_run(&TestRun::new(&[0u8; 64])).unwrap();
    assert_eq!(out.retval, 2);
}

#[test]
fn aya_loads_and_runs_it() {
    if !require_bpf() {
        return;
    }
    let (_, bytes) = sample_elf();
    let mut ebpf = aya::Ebpf::load(&bytes).expect("aya loads the object");
    let prog: &mut aya::programs::Xdp = ebpf
        .program_mut("main")
        .expect("main")
        .try_into()
        .expect("an XDP program");
    prog.load()
        .expect("the verifier accepts main as aya relocated it");
    let fd = prog.fd().unwrap().as_fd().try_clone_to_owned().unwrap();
    let ours = Program::from_fd(fd).unwrap();
    let out = ours.test_run(&TestRun::new(&[0u8; 64]).repeat(3)).unwrap();
    assert_eq!(out.retval, 2);

    let data: aya::maps::Array<_, [u8; 16]> =
        aya::maps::Array::try_from(ebpf.map(".data").expect(".data")).unwrap();
    let data = data.get(&0, 0).unwrap();
    let total = u64::from_ne_bytes(data[..8].try_into().unwrap());
    let runs = u64::from_ne_bytes(data[8..].try_into().unwrap());
    assert_eq!(total, expected_total(5, 2));
    assert_eq!(runs, 3);
}

/// llvm-objdump from the newest `/usr/lib/llvm-*/bin` (what `.ci/setup`
/// installs), else the one on `PATH`.
fn llvm_objdump() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("llvm-"))
        .map(|e| e.path().join("bin/llvm-objdump"))
        .filter(|p| p.exists())
        .collect();
    found.sort_by_key(|p| {
        let v = p
            .to_string_lossy()
            .split("llvm-")
            .nth(1)
            .unwrap_or("")
            .to_string();
        v.split('/')
            .next()
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| PathBuf::from("llvm-objdump"))
}

#[test]
fn llvm_objdump_disassembles_it() {
    let (_, bytes) = sample_elf();
    let scratch = Scratch::new("elf", "objdump");
    std::fs::write(&scratch.file, &bytes).unwrap();
    let out = Command::new(llvm_objdump())
        .args(["-d", "-r"])
        .arg(&scratch.file)
        .output()
        .expect("llvm-objdump is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for part in [
        "file format elf64-bpf",
        "<mix>:",
        "<add_step>:",
        "<main>:",
        "<drop_all>:",
        "Disassembly of section xdp.frags:",
        "Disassembly of section xdp.frags/devmap:",
        "R_BPF_64_32\t.text",
        "R_BPF_64_64\t.text",
        "R_BPF_64_64\t.rodata",
        "R_BPF_64_64\thits",
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
    // bpf_loop, in decimal (llvm 14) or hex (llvm 19).
    assert!(
        text.contains("call 181") || text.contains("call 0xb5"),
        "{text}"
    );
}

#[test]
fn our_reader_gets_the_same_object_back() {
    let (s, bytes) = sample_elf();
    let back = Object::from_elf(&bytes).expect("we read what we write");
    let a = &s.object;
    assert_eq!(back.license(), a.license());
    assert_eq!(back.maps().len(), a.maps().len());
    for (_, m) in a.maps() {
        let id = back
            .map_by_name(&m.name)
            .unwrap_or_else(|| panic!("{}", m.name));
        let n = back.map(id);
        assert_eq!(
            (n.map_type, n.key_size, n.value_size, n.max_entries, n.flags),
            (m.map_type, m.key_size, m.value_size, m.max_entries, m.flags),
            "{}",
            m.name
        );
        assert_eq!(
            n.inner
                .as_ref()
                .map(|i| (i.map_type, i.key_size, i.value_size, i.max_entries)),
            m.inner
                .as_ref()
                .map(|i| (i.map_type, i.key_size, i.value_size, i.max_entries)),
            "{}",
            m.name
        );
        if m.name.starts_with('.') {
            assert_eq!(n.contents, m.contents, "{}", m.name);
        }
    }
    let names = |o: &Object| {
        let mut v: Vec<String> = o.functions().map(|(_, f)| f.name.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(names(&back), names(a));
    assert_eq!(back.programs().len(), a.programs().len());
    for (id, p) in a.programs() {
        let bid = back.program_by_name(&p.name).unwrap();
        assert_eq!(back.program(bid).prog_type, p.prog_type);
        assert_eq!(back.program(bid).xdp_frags, p.xdp_frags, "{}", p.name);
        let (la, lb) = (a.layout(id).unwrap(), back.layout(bid).unwrap());
        assert_eq!(
            la.insns, lb.insns,
            "{}: same instructions after layout",
            p.name
        );
        let map_name = |o: &Object, r: &Reloc| match *r {
            Reloc::MapFd(m) => format!("fd {}", o.map(m).name),
            Reloc::MapValue { map, offset } => format!("value {}+{offset}", o.map(map).name),
            other => format!("{other:?}"),
        };
        let ra: Vec<_> = la
            .relocs
            .iter()
            .map(|(pc, r)| (*pc, map_name(a, r)))
            .collect();
        let rb: Vec<_> = lb
            .relocs
            .iter()
            .map(|(pc, r)| (*pc, map_name(&back, r)))
            .collect();
        assert_eq!(ra, rb, "{}", p.name);
        for pc in 0..la.insns.len() {
            assert_eq!(
                la.annotation_at(a, pc),
                lb.annotation_at(&back, pc),
                "{} instruction {pc}",
                p.name
            );
        }
    }
    // What we read loads and computes the same.
    if !require_bpf() {
        return;
    }
    let loaded = back.load().unwrap();
    let main = back.program_by_name("main").unwrap();
    loaded
        .program(main)
        .test_run(&TestRun::new(&[0u8; 64]))
        .unwrap();
    let data = loaded.map_by_name(".data").unwrap();
    let value = data.lookup(&0u32.to_ne_bytes()).unwrap().unwrap();
    assert_eq!(
        u64::from_ne_bytes(value[..8].try_into().unwrap()),
        expected_total(5, 2)
    );
    let frags: Vec<&str> = back
        .programs()
        .filter(|(_, p)| p.xdp_frags)
        .map(|(_, p)| p.name.as_str())
        .collect();
    assert_eq!(frags, ["jumbo", "dev_jumbo"]);
    let _ = s.main;
    let _ = (s.data, s.hits);
}

fn unsupported(o: &Object) -> String {
    match o.to_elf() {
        Err(ElfError::Unsupported(why)) => why,
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[test]
fn what_elf_cannot_say_is_refused() {
    // A local subprogram: libbpf only calls into .text.
    let mut o = Object::new();
    let mut a = Asm::new();
    let sub = a.new_label();
    a.call_label(sub);
    a.exit();
    a.bind(sub);
    a.mov64(R0, 2);
    a.exit();
    o.add_program("local", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    assert!(unsupported(&o).contains("local subprogram"));

    // A value pointer into a map that is not global data.
    let mut o = Object::new();
    let m = o.add_map(MapSpec::array("cfg", 8, 1)).unwrap();
    let mut a = Asm::new();
    a.ld_map_value(R1, m, 0);
    a.mov64(R0, 2);
    a.exit();
    o.add_program("p", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    assert!(unsupported(&o).contains("not global data"));

    // Initial contents of an ordinary map.
    let mut o = Object::new();
    o.add_map(MapSpec::array("cfg", 8, 1).with_bytes(0u32.to_ne_bytes(), [1u8; 8]))
        .unwrap();
    assert!(unsupported(&o).contains("initial contents"));
}
