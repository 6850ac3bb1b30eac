//! Objects with every kind of map and initial contents load, and their
//! programs use them as specified.

mod common;

use bpf_builder::asm::Asm;
use bpf_builder::handle::{Map, Program, UpdateFlags};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{JmpOp, Reg::*, Size};
use bpf_builder::map::{InitValue, MapSpec};
use bpf_builder::object::{Object, ProgramType};
use bpf_builder::run::TestRun;
use common::{require_bpf, ret};

#[test]
fn tail_call_through_a_filled_program_array() {
    if !require_bpf() {
        return;
    }
    let mut o = Object::new();
    let jumps = o.add_map(MapSpec::prog_array("jumps", 4)).unwrap();
    let target = o.add_program("target", ProgramType::Xdp, ret(1)).unwrap(); // XDP_DROP
    o.add_map_entry(jumps, 2u32.to_ne_bytes(), InitValue::Prog(target))
        .unwrap();
    let mut a = Asm::new();
    // bpf_tail_call(ctx, &jumps, index); falls through when the slot is empty.
    a.ld_map_fd(R2, jumps);
    a.mov64(R3, 2);
    a.call(Helper::TailCall);
    a.mov64(R0, 2); // XDP_PASS when the tail call did not happen
    a.exit();
    let entry = o
        .add_program("entry", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    let loaded = o.load().unwrap();
    let out = loaded
        .program(entry)
        .test_run(&TestRun::new(&[0u8; 64]))
        .unwrap();
    assert_eq!(out.retval, 1, "the tail call ran `target`");
    // Emptying the slot makes the entry program fall through.
    assert!(loaded.map(jumps).delete(&2u32.to_ne_bytes()).unwrap());
    let out = loaded
        .program(entry)
        .test_run(&TestRun::new(&[0u8; 64]))
        .unwrap();
    assert_eq!(out.retval, 2);
}

/// The kernel follows 33 tail calls in a row (`MAX_TAIL_CALL_CNT`) and
/// refuses the 34th: a chain of programs, each tail-calling the next,
/// ends in the 34th program when the chain is longer. Tools that chain
/// programs (nft2bpf's generation switch, then up to 33 programs of
/// rules) count on exactly this.
#[test]
fn the_kernel_follows_thirty_three_tail_calls() {
    if !require_bpf() {
        return;
    }
    const PROGRAMS: u32 = 40;
    let mut o = Object::new();
    let chain = o.add_map(MapSpec::prog_array("chain", PROGRAMS)).unwrap();
    let mut progs = Vec::new();
    for i in 0..PROGRAMS {
        // Tail-calls program i + 1; returns i when that fails.
        let mut a = Asm::new();
        a.ld_map_fd(R2, chain);
        a.mov64(R3, i as i32 + 1);
        a.call(Helper::TailCall);
        a.mov64(R0, i as i32);
        a.exit();
        let id = o
            .add_program(&format!("link{i}"), ProgramType::Xdp, a.finish().unwrap())
            .unwrap();
        o.add_map_entry(chain, i.to_ne_bytes(), InitValue::Prog(id))
            .unwrap();
        progs.push(id);
    }
    let loaded = o.load().unwrap();
    let out = loaded
        .program(progs[0])
        .test_run(&TestRun::new(&[0u8; 64]))
        .unwrap();
    assert_eq!(out.retval, 33, "33 tail calls ran, the 34th was refused");
}

#[test]
fn map_of_maps_with_initial_inner_map() {
    if !require_bpf() {
        return;
    }
    let mut o = Object::new();
    let inner_shape = MapSpec::array("inner", 4, 1);
    let inner = o
        .add_map(MapSpec::array("inner0", 4, 1).with_bytes(0u32.to_ne_bytes(), 42u32.to_ne_bytes()))
        .unwrap();
    let outer = o
        .add_map(
            MapSpec::array_of_maps("outer", 2, inner_shape)
                .with_entry(1u32.to_ne_bytes(), InitValue::Map(inner)),
        )
        .unwrap();
    // r0 = outer[1][0], or 0.
    let mut a = Asm::new();
    let miss = a.new_label();
    a.st(Size::W, R10, -4, 1);
    a.ld_map_fd(R1, outer);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, miss);
    a.st(Size::W, R10, -8, 0);
    a.mov64(R1, R0);
    a.mov64(R2, R10);
    a.add64(R2, -8);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, miss);
    a.ldx(Size::W, R0, R0, 0);
    a.exit();
    a.bind(miss);
    a.mov64(R0, 0);
    a.exit();
    let p = o
        .add_program("nested", ProgramType::SchedCls, a.finish().unwrap())
        .unwrap();
    let loaded = o.load().unwrap();
    let out = loaded
        .program(p)
        .test_run(&TestRun::new(&[0u8; 64]))
        .unwrap();
    assert_eq!(out.retval, 42);
    // From user space: slot 1 holds the inner map, slot 0 none.
    let outer = loaded.map(outer);
    let held = outer
        .inner(&1u32.to_ne_bytes())
        .unwrap()
        .expect("slot 1 holds a map");
    assert_eq!(held.name(), "inner0");
    assert_eq!(
        held.lookup(&0u32.to_ne_bytes()).unwrap(),
        Some(42u32.to_ne_bytes().to_vec())
    );
    assert!(outer.inner(&0u32.to_ne_bytes()).unwrap().is_none());
}

#[test]
fn every_map_kind_loads_through_an_object() {
    if !require_bpf() {
        return;
    }
    let mut o = Object::new();
    let specs = [
        MapSpec::array("array", 8, 4),
        MapSpec::per_cpu_array("pcpu_array", 8, 4),
        MapSpec::hash("hash", 4, 8, 16),
        MapSpec::new("pcpu_hash", bpf_builder::map::MapType::PerCpuHash, 4, 8, 16),
        MapSpec::new("lru", bpf_builder::map::MapType::LruHash, 4, 8, 16),
        MapSpec::new(
            "lru_pcpu",
            bpf_builder::map::MapType::LruPerCpuHash,
            4,
            8,
            16,
        ),
        MapSpec::lpm_trie("lpm", 4, 4, 16)
            .with_bytes([24, 0, 0, 0, 10, 1, 2, 0], 7u32.to_ne_bytes()),
        MapSpec::ring_buf("ring", 4096),
        MapSpec::prog_array("progs", 4),
        MapSpec::devmap("devs", 4),
        MapSpec::devmap_hash("devs_hash", 4),
        MapSpec::cpumap("cpus", 1),
        MapSpec::array_of_maps("aom", 2, MapSpec::array("x", 4, 1)),
        MapSpec::hash_of_maps("hom", 4, 2, MapSpec::hash("y", 4, 4, 4)),
    ];
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    for s in specs {
        o.add_map(s).unwrap();
    }
    o.add_program("noop", ProgramType::Xdp, ret(2)).unwrap();
    let loaded = o.load().unwrap();
    for (name, (_, map)) in names.iter().zip(loaded.maps()) {
        assert_eq!(map.name(), name);
    }
    // The LPM trie's initial entry answers a longest-prefix lookup.
    let lpm = loaded.map_by_name("lpm").unwrap();
    let hit = lpm.lookup(&[32, 0, 0, 0, 10, 1, 2, 3]).unwrap();
    assert_eq!(hit, Some(7u32.to_ne_bytes().to_vec()));
    assert_eq!(lpm.lookup(&[32, 0, 0, 0, 10, 1, 3, 3]).unwrap(), None);
}

#[test]
fn map_handles_read_and_write_from_user_space() {
    if !require_bpf() {
        return;
    }
    let mut o = Object::new();
    o.add_map(MapSpec::hash("h", 4, 8, 64)).unwrap();
    o.add_map(MapSpec::per_cpu_array("pc", 8, 2)).unwrap();
    let loaded = o.load().unwrap();
    let h = loaded.map_by_name("h").unwrap();
    for k in 0u32..10 {
        h.update(
            &k.to_ne_bytes(),
            &(k as u64 * 3).to_ne_bytes(),
            UpdateFlags::NoExist,
        )
        .unwrap();
    }
    assert!(
        h.update(&1u32.to_ne_bytes(), &[0; 8], UpdateFlags::NoExist)
            .is_err(),
        "NoExist refuses an existing key"
    );
    let mut keys: Vec<u32> = h
        .keys()
        .map(|k| u32::from_ne_bytes(k.unwrap().try_into().unwrap()))
        .collect();
    keys.sort();
    assert_eq!(keys, (0..10).collect::<Vec<_>>());
    let mut batch = h.lookup_batch_all(3).unwrap();
    batch.sort();
    assert_eq!(batch.len(), 10);
    assert_eq!(batch[4].1, 12u64.to_ne_bytes().to_vec());
    assert_eq!(
        h.delete_batch(&[1u32.to_ne_bytes(), 2u32.to_ne_bytes()].concat())
            .unwrap(),
        2
    );
    assert_eq!(h.iter().count(), 8);
    assert!(
        h.update(&[0; 3], &[0; 8], UpdateFlags::Any).is_err(),
        "key size checked"
    );

    let pc = loaded.map_by_name("pc").unwrap();
    let cpus = bpf_builder::sys::bpf::possible_cpus().unwrap() as u64;
    let values: Vec<[u8; 8]> = (0..cpus).map(|c| (c + 1).to_ne_bytes()).collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
    pc.update_per_cpu(&1u32.to_ne_bytes(), &refs, UpdateFlags::Any)
        .unwrap();
    let back = pc.lookup_per_cpu(&1u32.to_ne_bytes()).unwrap().unwrap();
    assert_eq!(back.len() as u64, cpus);
    assert_eq!(
        pc.sum_u64(&1u32.to_ne_bytes(), 0).unwrap(),
        cpus * (cpus + 1) / 2
    );
}

#[test]
fn pinned_maps_and_programs_reopen() {
    if !require_bpf() {
        return;
    }
    let dir = std::path::PathBuf::from(format!("/sys/fs/bpf/bpfb-test-{}", std::process::id()));
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(dir.clone());
    bpf_builder::sys::bpf::ensure_bpffs(std::path::Path::new("/sys/fs/bpf")).unwrap();
    std::fs::create_dir_all(&dir).unwrap();

    let mut o = Object::new();
    let m = o
        .add_map(MapSpec::array("pinme", 4, 1).with_bytes(0u32.to_ne_bytes(), 9u32.to_ne_bytes()))
        .unwrap();
    let p = o.add_program("pinned", ProgramType::Xdp, ret(3)).unwrap();
    let loaded = o.load().unwrap();
    loaded.map(m).pin(dir.join("map")).unwrap();
    loaded.program(p).pin(dir.join("prog")).unwrap();
    drop(loaded);

    let map = Map::from_pin(dir.join("map")).unwrap();
    assert_eq!(map.name(), "pinme");
    assert_eq!(
        map.lookup(&0u32.to_ne_bytes()).unwrap(),
        Some(9u32.to_ne_bytes().to_vec())
    );
    let prog = Program::from_pin(dir.join("prog")).unwrap();
    assert_eq!(prog.name(), "pinned");
    assert_eq!(prog.test_run(&TestRun::new(&[0u8; 64])).unwrap().retval, 3);
}
