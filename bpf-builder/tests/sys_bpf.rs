//! The bpf(2) layer against the running kernel: maps, element and batch
//! operations, program loading with verifier logs, pinning, object info,
//! ids, test runs, BTF loading, and (in a private network namespace)
//! links, tcx ordering and queries.

mod common;

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use bpf_builder::insn::{Insn, Reg};
use bpf_builder::kernel_id::KernelProgId;
use bpf_builder::run::{RunError, TestRun, test_run};
use bpf_builder::sys::bpf::flags::*;
use bpf_builder::sys::bpf::*;
use common::{GPL, load_xdp_returning, require_bpf};

fn create(map_type: bpf_map_type, key: u32, value: u32, max: u32, flags: u32) -> OwnedFd {
    map_create(&MapCreateAttr {
        map_type: map_type as u32,
        key_size: key,
        value_size: value,
        max_entries: max,
        map_flags: flags,
        name: "t",
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("create {map_type:?}: {e}"))
}

fn errno(e: &io::Error) -> Option<i32> {
    e.raw_os_error()
}

#[test]
fn every_map_kind_is_created_as_asked() {
    if !require_bpf() {
        return;
    }
    use bpf_map_type::*;
    let inner = create(BPF_MAP_TYPE_ARRAY, 4, 8, 1, 0);
    // (type, key, value, max_entries, flags, inner map); devmaps come back
    // with BPF_F_RDONLY_PROG: the kernel forces it (programs must not write).
    let cases: &[(bpf_map_type, u32, u32, u32, u32, bool)] = &[
        (BPF_MAP_TYPE_ARRAY, 4, 16, 8, 0, false),
        (BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8, 4, 0, false),
        (BPF_MAP_TYPE_HASH, 8, 4, 64, 0, false),
        (BPF_MAP_TYPE_PERCPU_HASH, 4, 12, 16, 0, false),
        (BPF_MAP_TYPE_LRU_HASH, 4, 4, 32, 0, false),
        (BPF_MAP_TYPE_LPM_TRIE, 8, 8, 16, BPF_F_NO_PREALLOC, false),
        (BPF_MAP_TYPE_RINGBUF, 0, 0, 4096, 0, false),
        (BPF_MAP_TYPE_PROG_ARRAY, 4, 4, 4, 0, false),
        (BPF_MAP_TYPE_DEVMAP, 4, 4, 4, 0, false),
        (BPF_MAP_TYPE_DEVMAP_HASH, 4, 8, 4, 0, false),
        (BPF_MAP_TYPE_CPUMAP, 4, 4, 1, 0, false),
        (BPF_MAP_TYPE_ARRAY_OF_MAPS, 4, 4, 2, 0, true),
        (BPF_MAP_TYPE_HASH_OF_MAPS, 4, 4, 2, 0, true),
    ];
    for &(t, key, value, max, flags, needs_inner) in cases {
        let name = format!("m{}", t as u32);
        let fd = map_create(&MapCreateAttr {
            map_type: t as u32,
            key_size: key,
            value_size: value,
            max_entries: max,
            map_flags: flags,
            name: &name,
            inner_map_fd: needs_inner.then(|| inner.as_fd()),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("create {t:?}: {e}"));
        let info = map_info(&fd).unwrap();
        assert_eq!(info.map_type, t as u32, "{t:?}");
        assert_eq!(info.key_size, key, "{t:?}");
        assert_eq!(info.value_size, value, "{t:?}");
        assert_eq!(info.max_entries, max, "{t:?}");
        let forced = if matches!(t, BPF_MAP_TYPE_DEVMAP | BPF_MAP_TYPE_DEVMAP_HASH) {
            BPF_F_RDONLY_PROG
        } else {
            0
        };
        assert_eq!(info.map_flags, flags | forced, "{t:?}");
        assert_eq!(info.name, name, "{t:?}");
        assert_ne!(info.id.get(), 0);
    }
}

#[test]
fn map_name_is_sanitised_for_the_kernel() {
    if !require_bpf() {
        return;
    }
    let fd = map_create(&MapCreateAttr {
        map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
        key_size: 4,
        value_size: 4,
        max_entries: 1,
        name: "my-map:with a long name",
        ..Default::default()
    })
    .unwrap();
    assert_eq!(map_info(&fd).unwrap().name, "my_map_with_a_l");
}

#[test]
fn hash_elements_update_lookup_delete_iterate() {
    if !require_bpf() {
        return;
    }
    let m = create(bpf_map_type::BPF_MAP_TYPE_HASH, 4, 8, 16, 0);
    let mut v = [0u8; 8];
    assert!(!map_lookup_elem(&m, &7u32.to_ne_bytes(), &mut v, 0).unwrap());
    for k in [3u32, 5, 9] {
        map_update_elem(&m, &k.to_ne_bytes(), &(k as u64 * 100).to_ne_bytes(), 0).unwrap();
    }
    assert!(map_lookup_elem(&m, &5u32.to_ne_bytes(), &mut v, 0).unwrap());
    assert_eq!(u64::from_ne_bytes(v), 500);

    let e = map_update_elem(&m, &5u32.to_ne_bytes(), &[0; 8], BPF_NOEXIST as u64).unwrap_err();
    assert_eq!(errno(&e), Some(libc::EEXIST));
    let e = map_update_elem(&m, &6u32.to_ne_bytes(), &[0; 8], BPF_EXIST as u64).unwrap_err();
    assert_eq!(errno(&e), Some(libc::ENOENT));

    // Iterate: every key exactly once.
    let mut seen = Vec::new();
    let mut key: Option<[u8; 4]> = None;
    let mut next = [0u8; 4];
    while map_get_next_key(&m, key.as_ref().map(|k| &k[..]), &mut next).unwrap() {
        seen.push(u32::from_ne_bytes(next));
        key = Some(next);
    }
    seen.sort();
    assert_eq!(seen, vec![3, 5, 9]);

    assert!(map_delete_elem(&m, &5u32.to_ne_bytes()).unwrap());
    assert!(!map_delete_elem(&m, &5u32.to_ne_bytes()).unwrap());
    assert!(!map_lookup_elem(&m, &5u32.to_ne_bytes(), &mut v, 0).unwrap());

    let mut popped = [0u8; 8];
    assert!(map_lookup_and_delete_elem(&m, &9u32.to_ne_bytes(), &mut popped, 0).unwrap());
    assert_eq!(u64::from_ne_bytes(popped), 900);
    assert!(!map_lookup_elem(&m, &9u32.to_ne_bytes(), &mut v, 0).unwrap());
}

#[test]
fn wrong_buffer_sizes_are_refused_before_the_kernel_sees_them() {
    if !require_bpf() {
        return;
    }
    let m = create(bpf_map_type::BPF_MAP_TYPE_HASH, 4, 8, 4, 0);
    let mut small = [0u8; 4];
    let e = map_lookup_elem(&m, &1u32.to_ne_bytes(), &mut small, 0).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    let e = map_update_elem(&m, &[1, 2], &[0; 8], 0).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);

    // Per-CPU values are one 8-byte slot per possible CPU.
    let pc = create(bpf_map_type::BPF_MAP_TYPE_PERCPU_ARRAY, 4, 4, 1, 0);
    let cpus = possible_cpus().unwrap() as usize;
    let mut one = [0u8; 4];
    assert!(map_lookup_elem(&pc, &0u32.to_ne_bytes(), &mut one, 0).is_err());
    let mut all = vec![0xffu8; 8 * cpus];
    assert!(map_lookup_elem(&pc, &0u32.to_ne_bytes(), &mut all, 0).unwrap());
    assert!(all.iter().all(|&b| b == 0), "fresh per-CPU array is zero");
}

#[test]
fn queue_pops_with_an_empty_key() {
    if !require_bpf() {
        return;
    }
    let q = create(bpf_map_type::BPF_MAP_TYPE_QUEUE, 0, 4, 4, 0);
    map_update_elem(&q, &[], &11u32.to_ne_bytes(), 0).unwrap();
    map_update_elem(&q, &[], &22u32.to_ne_bytes(), 0).unwrap();
    let mut v = [0u8; 4];
    assert!(map_lookup_and_delete_elem(&q, &[], &mut v, 0).unwrap());
    assert_eq!(u32::from_ne_bytes(v), 11);
    assert!(map_lookup_and_delete_elem(&q, &[], &mut v, 0).unwrap());
    assert_eq!(u32::from_ne_bytes(v), 22);
    assert!(!map_lookup_and_delete_elem(&q, &[], &mut v, 0).unwrap());
}

#[test]
fn batch_operations_on_a_hash() {
    if !require_bpf() {
        return;
    }
    let m = create(bpf_map_type::BPF_MAP_TYPE_HASH, 4, 8, 256, 0);
    let n = 100u32;
    let keys: Vec<u8> = (0..n).flat_map(|k| (k * 3).to_ne_bytes()).collect();
    let values: Vec<u8> = (0..n)
        .flat_map(|k| (u64::from(k) << 20).to_ne_bytes())
        .collect();
    assert_eq!(map_update_batch(&m, &keys, &values, 0).unwrap(), n);

    // Read back in chunks of 7 until the kernel says the end.
    let mut got = BTreeMap::new();
    let mut token: Option<Vec<u8>> = None;
    loop {
        let mut out = vec![0u8; 4];
        let mut kb = vec![0u8; 7 * 4];
        let mut vb = vec![0u8; 7 * 8];
        let r = map_lookup_batch(&m, token.as_deref(), &mut out, &mut kb, &mut vb, 0).unwrap();
        assert!(r.count <= 7);
        for i in 0..r.count as usize {
            let k = u32::from_ne_bytes(kb[i * 4..i * 4 + 4].try_into().unwrap());
            let v = u64::from_ne_bytes(vb[i * 8..i * 8 + 8].try_into().unwrap());
            assert!(got.insert(k, v).is_none(), "key {k} returned twice");
        }
        if r.done {
            break;
        }
        token = Some(out);
    }
    assert_eq!(got.len(), n as usize);
    for k in 0..n {
        assert_eq!(got[&(k * 3)], u64::from(k) << 20);
    }

    // Delete the first half in one batch.
    let half = &keys[..(n as usize / 2) * 4];
    assert_eq!(map_delete_batch(&m, half, 0).unwrap(), n / 2);
    let mut v = [0u8; 8];
    assert!(!map_lookup_elem(&m, &0u32.to_ne_bytes(), &mut v, 0).unwrap());
    assert!(map_lookup_elem(&m, &((n - 1) * 3).to_ne_bytes(), &mut v, 0).unwrap());

    // Lookup-and-delete the rest in one big batch: the map ends empty.
    let mut out = vec![0u8; 4];
    let mut kb = vec![0u8; 256 * 4];
    let mut vb = vec![0u8; 256 * 8];
    let r = map_lookup_and_delete_batch(&m, None, &mut out, &mut kb, &mut vb, 0).unwrap();
    assert_eq!(r.count, n - n / 2);
    assert!(r.done);
    let mut next = [0u8; 4];
    assert!(!map_get_next_key(&m, None, &mut next).unwrap());
}

#[test]
fn frozen_map_refuses_updates_with_eperm() {
    if !require_bpf() {
        return;
    }
    let m = create(bpf_map_type::BPF_MAP_TYPE_ARRAY, 4, 4, 2, 0);
    map_update_elem(&m, &0u32.to_ne_bytes(), &42u32.to_ne_bytes(), 0).unwrap();
    map_freeze(&m).unwrap();
    let e = map_update_elem(&m, &1u32.to_ne_bytes(), &1u32.to_ne_bytes(), 0).unwrap_err();
    assert_eq!(errno(&e), Some(libc::EPERM));
    let mut v = [0u8; 4];
    assert!(map_lookup_elem(&m, &0u32.to_ne_bytes(), &mut v, 0).unwrap());
    assert_eq!(u32::from_ne_bytes(v), 42);
}

#[test]
fn trivial_xdp_program_loads_and_test_runs() {
    if !require_bpf() {
        return;
    }
    let prog = load_xdp_returning(2, "xdp_pass");
    let packet: Vec<u8> = (0..60u8).collect();
    let out = test_run(prog.as_fd(), &TestRun::new(&packet)).unwrap();
    assert_eq!(out.retval, 2);
    assert_eq!(out.data, packet);

    let out = test_run(prog.as_fd(), &TestRun::new(&packet).repeat(100)).unwrap();
    assert_eq!(out.retval, 2);

    let info = prog_info(&prog).unwrap();
    assert_eq!(info.name, "xdp_pass");
    assert_eq!(info.prog_type, bpf_prog_type::BPF_PROG_TYPE_XDP as u32);
    assert_eq!(info.xlated_len, 16, "two instructions of 8 bytes");
    assert!(info.jited_len > 0);
    assert!(info.map_ids.is_empty());
    assert_eq!(info.verified_insns, 2);
    assert_ne!(info.tag, [0; 8]);
}

#[test]
fn test_run_grows_a_too_small_output_buffer() {
    if !require_bpf() {
        return;
    }
    let prog = load_xdp_returning(2, "xdp_pass");
    let packet = [0xabu8; 100];
    let out = test_run(prog.as_fd(), &TestRun::new(&packet).data_out_capacity(10)).unwrap();
    assert_eq!(out.data, packet);
}

#[test]
fn xdp_test_run_on_ten_bytes_is_explained() {
    if !require_bpf() {
        return;
    }
    let prog = load_xdp_returning(2, "xdp_pass");
    let err = test_run(prog.as_fd(), &TestRun::new(&[0u8; 10])).unwrap_err();
    match &err {
        RunError::InputTooShort { len, prog_type } => {
            assert_eq!(*len, 10);
            assert_eq!(prog_type, "XDP");
        }
        other => panic!("expected InputTooShort, got {other:?}"),
    }
    assert!(err.to_string().contains("Ethernet header (14 bytes)"));
}

#[test]
fn program_info_lists_its_maps() {
    if !require_bpf() {
        return;
    }
    let m = create(bpf_map_type::BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0);
    let map_id = map_info(&m).unwrap().id;
    let [lo, hi] = Insn::ld_map_fd(Reg::R1, std::os::fd::AsRawFd::as_raw_fd(&m));
    let insns = [lo, hi, Insn::mov64(Reg::R0, 2), Insn::exit()];
    let attr = ProgLoadAttr::new(bpf_prog_type::BPF_PROG_TYPE_XDP as u32, &insns, GPL);
    let prog = prog_load(&attr).unwrap();
    assert_eq!(prog_info(&prog).unwrap().map_ids, vec![map_id]);
}

fn read_uninit_r2() -> [Insn; 2] {
    [Insn::mov64(Reg::R0, Reg::R2), Insn::exit()]
}

#[test]
fn invalid_program_error_carries_the_verifier_log() {
    if !require_bpf() {
        return;
    }
    let insns = read_uninit_r2();
    let attr = ProgLoadAttr::new(bpf_prog_type::BPF_PROG_TYPE_XDP as u32, &insns, GPL);
    let err = prog_load(&attr).unwrap_err();
    assert_eq!(err.error.raw_os_error(), Some(libc::EACCES));
    assert!(err.log.contains("R2 !read_ok"), "log: {}", err.log);
    assert!(err.to_string().contains("R2 !read_ok"), "{err}");

    let Err(ProgLoadError { error, log }) = prog_load_with_log(&attr, 4096) else {
        panic!("invalid program loaded");
    };
    assert_eq!(error.raw_os_error(), Some(libc::EACCES));
    assert!(log.contains("R2 !read_ok"));
}

/// A program whose level-2 log is many kilobytes: 400 moves.
fn long_program() -> Vec<Insn> {
    let mut insns: Vec<Insn> = (0..400).map(|i| Insn::mov64(Reg::R0, i)).collect();
    insns.push(Insn::mov64(Reg::R0, 2));
    insns.push(Insn::exit());
    insns
}

#[test]
fn verifier_log_grows_until_complete() {
    if !require_bpf() {
        return;
    }
    let insns = long_program();
    let mut attr = ProgLoadAttr::new(bpf_prog_type::BPF_PROG_TYPE_XDP as u32, &insns, GPL);
    attr.log_level = BPF_LOG_LEVEL2;
    let (_p1, grown) = prog_load_with_log(&attr, 128).unwrap();
    let (_p2, roomy) = prog_load_with_log(&attr, 16 << 20).unwrap();
    assert!(grown.len() > 10_000, "log is {} bytes", grown.len());
    // Complete: it has the first instruction and the final summary, and
    // is identical to the log from a buffer that never overflowed.
    assert!(
        grown.contains("0: (b7) r0 = 0"),
        "head missing: {}",
        &grown[..200]
    );
    assert!(grown.contains("399: (b7) r0 = 399"));
    let last = grown.lines().last().unwrap();
    assert!(last.starts_with("processed 402 insns"), "last line: {last}");
    assert_eq!(grown, roomy);
}

#[test]
fn forced_log_on_success_reports_statistics() {
    if !require_bpf() {
        return;
    }
    let insns = [Insn::mov64(Reg::R0, 2), Insn::exit()];
    let mut attr = ProgLoadAttr::new(bpf_prog_type::BPF_PROG_TYPE_XDP as u32, &insns, GPL);
    attr.log_level = BPF_LOG_LEVEL1 | BPF_LOG_STATS;
    let (_prog, log) = prog_load_with_log(&attr, 1024).unwrap();
    assert!(log.contains("processed 2 insns"), "log: {log}");

    attr.log_level = 0;
    let (_prog, log) = prog_load_with_log(&attr, 1024).unwrap();
    assert_eq!(log, "", "no log on the fast path");
}

/// A fresh directory in bpffs, removed (with its pins) on drop.
struct PinDir(PathBuf);

impl PinDir {
    fn new(tag: &str) -> PinDir {
        ensure_bpffs(Path::new("/sys/fs/bpf")).expect("bpffs at /sys/fs/bpf");
        let p = PathBuf::from(format!(
            "/sys/fs/bpf/bpf-builder-test-{}-{tag}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir(&p).unwrap();
        PinDir(p)
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn pin_and_get_back() {
    if !require_bpf() {
        return;
    }
    let dir = PinDir::new("pin");
    let m = create(bpf_map_type::BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0);
    map_update_elem(&m, &0u32.to_ne_bytes(), &77u32.to_ne_bytes(), 0).unwrap();
    let prog = load_xdp_returning(1, "pinned");

    let mpath = dir.0.join("map");
    let ppath = dir.0.join("prog");
    obj_pin(&m, &mpath).unwrap();
    obj_pin(&prog, &ppath).unwrap();
    let e = obj_pin(&m, &mpath).unwrap_err();
    assert_eq!(errno(&e), Some(libc::EEXIST));

    let m2 = obj_get(&mpath, 0).unwrap();
    assert_eq!(map_info(&m2).unwrap().id, map_info(&m).unwrap().id);
    let mut v = [0u8; 4];
    assert!(map_lookup_elem(&m2, &0u32.to_ne_bytes(), &mut v, 0).unwrap());
    assert_eq!(u32::from_ne_bytes(v), 77);
    let p2 = obj_get(&ppath, 0).unwrap();
    assert_eq!(prog_info(&p2).unwrap().id, prog_info(&prog).unwrap().id);

    assert!(obj_get(&dir.0.join("nothing"), 0).is_err());
    // ensure_bpffs on something that already is bpffs is a no-op.
    ensure_bpffs(&dir.0).unwrap();
}

#[test]
fn ids_find_our_objects() {
    if !require_bpf() {
        return;
    }
    let prog = load_xdp_returning(2, "by_id");
    let id = prog_info(&prog).unwrap().id;
    let mut ids = Vec::new();
    let mut cur = None;
    while let Some(next) = prog_get_next_id(cur).unwrap() {
        ids.push(next);
        cur = Some(next);
    }
    assert!(ids.contains(&id));
    let again = prog_get_fd_by_id(id).unwrap();
    assert_eq!(prog_info(&again).unwrap().name, "by_id");

    let m = create(bpf_map_type::BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0);
    let mid = map_info(&m).unwrap().id;
    let mut found = false;
    let mut cur = None;
    while let Some(next) = map_get_next_id(cur).unwrap() {
        found |= next == mid;
        cur = Some(next);
    }
    assert!(found);
    assert_eq!(map_info(map_get_fd_by_id(mid).unwrap()).unwrap().id, mid);

    // Ids of freed objects go away.
    drop(again);
    drop(prog);
    let mut gone = false;
    for _ in 0..100 {
        if let Err(e) = prog_get_fd_by_id(id) {
            assert_eq!(errno(&e), Some(libc::ENOENT));
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(gone, "program id {id} still alive after its fds closed");
    // Walking link ids works too (there may be none).
    let mut cur = None;
    while let Some(next) = link_get_next_id(cur).unwrap() {
        assert!(Some(next) > cur);
        cur = Some(next);
    }
}

/// A minimal BTF blob: one 32-bit signed int type named "int".
fn btf_int(bits: u32) -> Vec<u8> {
    let types: Vec<u32> = vec![1, 1 << 24, 4, (1 << 24) | bits]; // name_off, INT, size, encoding
    let strings = b"\0int\0";
    let type_len = (types.len() * 4) as u32;
    let mut b = Vec::new();
    b.extend_from_slice(&0xeb9fu16.to_ne_bytes());
    b.push(1); // version
    b.push(0); // flags
    for v in [24u32, 0, type_len, type_len, strings.len() as u32] {
        b.extend_from_slice(&v.to_ne_bytes());
    }
    for t in types {
        b.extend_from_slice(&t.to_ne_bytes());
    }
    b.extend_from_slice(strings);
    b
}

#[test]
fn btf_load_accepts_good_and_explains_bad() {
    if !require_bpf() {
        return;
    }
    let (fd, log) = btf_load(&btf_int(32), 0, 4096).unwrap();
    assert_eq!(log, "");
    drop(fd);
    // 64 bits do not fit a 4-byte int: the log says what is wrong.
    let f = btf_load(&btf_int(64), 0, 4096).unwrap_err();
    assert_eq!(f.error.raw_os_error(), Some(libc::EINVAL));
    assert!(f.log.contains("nr_bits"), "log: {}", f.log);
}

// ---- links and tcx, in a private network namespace ----

/// Runs `inner` (an ignored test of this binary) in new network and mount
/// namespaces, where it may attach to `lo` and mount filesystems without
/// touching the host.
fn run_isolated(inner: &str) {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private"])
        .arg("--")
        .arg(exe)
        .args([
            inner,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("BPF_BUILDER_IN_NETNS", "1")
        .output()
        .expect("run unshare");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{inner} failed in its netns:\n{text}");
    assert!(text.contains("1 passed"), "{inner} did not run:\n{text}");
}

const LO: u32 = 1;

#[test]
fn links_and_mounts_in_private_namespaces() {
    if !require_bpf() {
        return;
    }
    run_isolated("netns_xdp_link");
    run_isolated("netns_tcx");
    run_isolated("netns_mount_bpffs");
}

/// The mounts of type bpf at `dir` in this mount namespace.
fn bpf_mounts_at(dir: &Path) -> usize {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = dir.to_str().unwrap();
    mountinfo
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|&x| x == "-").unwrap();
            f[4] == dir && f[sep + 1] == "bpf"
        })
        .count()
}

#[test]
#[ignore = "run by links_and_mounts_in_private_namespaces inside a new mount namespace"]
fn netns_mount_bpffs() {
    assert!(
        std::env::var_os("BPF_BUILDER_IN_NETNS").is_some(),
        "only in a private mount ns"
    );
    let dir = PathBuf::from(format!("/tmp/bpf-builder-bpffs-{}", std::process::id()));
    ensure_bpffs(&dir).unwrap();
    assert_eq!(bpf_mounts_at(&dir), 1);
    // Already bpffs: nothing more is mounted.
    ensure_bpffs(&dir).unwrap();
    assert_eq!(bpf_mounts_at(&dir), 1);
    let m = create(bpf_map_type::BPF_MAP_TYPE_ARRAY, 4, 4, 1, 0);
    obj_pin(&m, &dir.join("m")).unwrap();
    assert_eq!(
        map_info(obj_get(&dir.join("m"), 0).unwrap()).unwrap().id,
        map_info(&m).unwrap().id
    );
    let status = std::process::Command::new("umount")
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_dir(&dir).unwrap();
}

#[test]
#[ignore = "run by links_and_mounts_in_private_namespaces inside a new network namespace"]
fn netns_xdp_link() {
    assert!(
        std::env::var_os("BPF_BUILDER_IN_NETNS").is_some(),
        "only in a private netns"
    );
    let p1 = load_xdp_returning(2, "xdp_a");
    let p2 = load_xdp_returning(1, "xdp_b");
    let link = link_create(&LinkCreateAttr {
        prog_fd: p1.as_fd(),
        target: Target::Ifindex(LO),
        attach_type: bpf_attach_type::BPF_XDP as u32,
        flags: 0,
        relative: Relative::None,
        expected_revision: 0,
    })
    .unwrap();
    let info = link_info(&link).unwrap();
    assert_eq!(info.link_type, bpf_link_type::BPF_LINK_TYPE_XDP as u32);
    assert_eq!(info.detail, LinkDetail::Xdp { ifindex: LO });
    assert_eq!(info.prog_id, Some(prog_info(&p1).unwrap().id));
    assert_eq!(
        link_info(link_get_fd_by_id(info.id).unwrap()).unwrap().id,
        info.id
    );

    // Replace, guarded by the old program; a wrong guard fails.
    let e = link_update(&link, &p1, Some(p2.as_fd())).unwrap_err();
    assert_eq!(errno(&e), Some(libc::EPERM));
    link_update(&link, &p2, Some(p1.as_fd())).unwrap();
    assert_eq!(
        link_info(&link).unwrap().prog_id,
        Some(prog_info(&p2).unwrap().id)
    );

    // A relative anchor makes no sense for XDP.
    let e = link_create(&LinkCreateAttr {
        prog_fd: p1.as_fd(),
        target: Target::Ifindex(LO),
        attach_type: bpf_attach_type::BPF_XDP as u32,
        flags: 0,
        relative: Relative::ProgId(KernelProgId::new(1)),
        expected_revision: 0,
    })
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);

    link_detach(&link).unwrap();
    assert_eq!(
        link_info(&link).unwrap().detail,
        LinkDetail::Xdp { ifindex: 0 }
    );
}

fn load_tc(name: &str) -> OwnedFd {
    // TCX_NEXT (-1): let the next program decide.
    let insns = [Insn::mov64(Reg::R0, -1), Insn::exit()];
    let mut attr = ProgLoadAttr::new(bpf_prog_type::BPF_PROG_TYPE_SCHED_CLS as u32, &insns, GPL);
    attr.name = name;
    attr.expected_attach_type = bpf_attach_type::BPF_TCX_INGRESS as u32;
    prog_load(&attr).unwrap()
}

#[test]
#[ignore = "run by links_and_mounts_in_private_namespaces inside a new network namespace"]
fn netns_tcx() {
    assert!(
        std::env::var_os("BPF_BUILDER_IN_NETNS").is_some(),
        "only in a private netns"
    );
    let ingress = bpf_attach_type::BPF_TCX_INGRESS as u32;
    let (a, b, c) = (load_tc("a"), load_tc("b"), load_tc("c"));
    let id = |p: &OwnedFd| prog_info(p).unwrap().id;

    let empty = prog_query(Target::Ifindex(LO), ingress, 0).unwrap();
    assert!(empty.prog_ids.is_empty());

    let la = link_create(&LinkCreateAttr {
        prog_fd: a.as_fd(),
        target: Target::Ifindex(LO),
        attach_type: ingress,
        flags: 0,
        relative: Relative::None,
        expected_revision: 0,
    })
    .unwrap();
    let q1 = prog_query(Target::Ifindex(LO), ingress, 0).unwrap();
    assert_eq!(q1.prog_ids, vec![id(&a)]);
    let la_info = link_info(&la).unwrap();
    assert_eq!(q1.link_ids, vec![Some(la_info.id)]);
    assert_eq!(
        la_info.detail,
        LinkDetail::Tcx {
            ifindex: LO,
            attach_type: ingress
        }
    );

    // b goes before a's link, at the revision we just read.
    let lb = link_create(&LinkCreateAttr {
        prog_fd: b.as_fd(),
        target: Target::Ifindex(LO),
        attach_type: ingress,
        flags: BPF_F_BEFORE,
        relative: Relative::LinkFd(la.as_fd()),
        expected_revision: q1.revision,
    })
    .unwrap();
    let q2 = prog_query(Target::Ifindex(LO), ingress, 0).unwrap();
    assert_eq!(q2.prog_ids, vec![id(&b), id(&a)]);
    assert!(q2.revision > q1.revision);

    // A stale revision is refused.
    let e = prog_attach(&ProgAttachAttr {
        target: Target::Ifindex(LO),
        prog_fd: c.as_fd(),
        attach_type: ingress,
        flags: BPF_F_AFTER,
        replace_prog_fd: None,
        relative: Relative::ProgId(id(&a)),
        expected_revision: q1.revision,
    })
    .unwrap_err();
    assert_eq!(errno(&e), Some(libc::ESTALE));

    // c without a link, after a (by program id).
    prog_attach(&ProgAttachAttr {
        target: Target::Ifindex(LO),
        prog_fd: c.as_fd(),
        attach_type: ingress,
        flags: BPF_F_AFTER,
        replace_prog_fd: None,
        relative: Relative::ProgId(id(&a)),
        expected_revision: q2.revision,
    })
    .unwrap();
    let q3 = prog_query(Target::Ifindex(LO), ingress, 0).unwrap();
    assert_eq!(q3.prog_ids, vec![id(&b), id(&a), id(&c)]);
    assert_eq!(q3.link_ids[2], None, "c has no link");

    prog_detach(
        Target::Ifindex(LO),
        ingress,
        Some(c.as_fd()),
        0,
        Relative::None,
        0,
    )
    .unwrap();
    drop(lb);
    let q4 = prog_query(Target::Ifindex(LO), ingress, 0).unwrap();
    assert_eq!(q4.prog_ids, vec![id(&a)], "closing b's link detached it");
    link_detach(&la).unwrap();
    assert!(
        prog_query(Target::Ifindex(LO), ingress, 0)
            .unwrap()
            .prog_ids
            .is_empty()
    );
}

#[test]
fn test_run_of_a_type_without_test_run_is_explained() {
    if !require_bpf() {
        return;
    }
    let insns = [Insn::mov64(Reg::R0, 0), Insn::exit()];
    let attr = ProgLoadAttr::new(bpf_prog_type::BPF_PROG_TYPE_KPROBE as u32, &insns, GPL);
    let prog = prog_load(&attr).unwrap();
    let err = test_run(prog.as_fd(), &TestRun::new(&[0u8; 64])).unwrap_err();
    assert!(
        matches!(err, RunError::NotSupported { .. }),
        "expected NotSupported, got {err:?}"
    );
    assert!(err.to_string().contains("cannot test-run kprobe"), "{err}");
}
