//! Helpers shared by the integration tests that need the real kernel:
//! the privilege rule, fd counting, small generated programs, test frames,
//! and the check that nothing of a test is left in the kernel.
#![allow(dead_code)]

use bpf_builder::asm::Asm;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{Insn, Reg};
use bpf_builder::insn::{JmpOp, Reg::*, Size};
use bpf_builder::kernel_id::KernelLinkId;
use bpf_builder::object::MapId;
use bpf_builder::sys::bpf as sys;
use bpf_builder::sys::bpf::bpf_prog_type;
use bpf_builder::sys::bpf::{ProgLoadAttr, prog_load};
use std::ffi::CStr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testbed::{Link, Marker};

/// Whether this process may use bpf(2): the project's privilege rule
/// (fail under `CI`, skip with a reason elsewhere), from the testbed.
pub fn require_bpf() -> bool {
    testbed::bpf_privileged("this test")
}

/// The license every test program uses.
pub const GPL: &CStr = c"GPL";

/// `r0 = action; exit` as an XDP program.
pub fn load_xdp_returning(action: i32, name: &str) -> OwnedFd {
    let insns = [Insn::mov64(Reg::R0, action), Insn::exit()];
    let mut attr = ProgLoadAttr::new(bpf_prog_type::BPF_PROG_TYPE_XDP as u32, &insns, GPL);
    attr.name = name;
    prog_load(&attr).expect("trivial XDP program loads")
}

/// `r0 = value; exit`: a program that returns `value`.
pub fn ret(value: i32) -> bpf_builder::asm::Code {
    let mut a = Asm::new();
    a.mov64(R0, value);
    a.exit();
    a.finish().unwrap()
}

/// Number of open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

/// EtherType of the test frames (IEEE local experimental): programs act
/// only on these, so kernel chatter never disturbs a count.
pub const ETHERTYPE_TEST: u16 = 0x88b5;
/// Receivers wait this long at most; tests never depend on how long
/// anything takes.
pub const TIMEOUT: Duration = Duration::from_secs(3);

pub const XDP_DROP: i32 = 1;
pub const XDP_PASS: i32 = 2;

/// A test frame from `tx` to `rx` carrying `marker`, with `tag` as the
/// first payload byte (programs may read it).
pub fn frame(tx: &Link, rx: &Link, marker: &Marker, tag: u8) -> Vec<u8> {
    let mut payload = vec![tag, 0, 0, 0];
    payload.extend_from_slice(marker.as_bytes());
    payload.resize(46, 0);
    testbed::ethernet_frame(rx.mac, tx.mac, ETHERTYPE_TEST, &payload)
}

/// Jumps to `skip` unless the packet whose data/data_end are in R2/R3 is
/// a test frame (bounds-checked). Clobbers R4.
pub fn require_test_frame(a: &mut Asm, skip: bpf_builder::asm::Label) {
    a.mov64(R4, R2);
    a.add64(R4, 15);
    a.jmp(JmpOp::Gt, R4, R3, skip);
    a.ldx(Size::H, R4, R2, 12);
    // Network order read as little endian.
    a.jmp(JmpOp::Ne, R4, i32::from(ETHERTYPE_TEST.swap_bytes()), skip);
}

/// XDP: returns `action` for test frames and passes the rest; when
/// `counter` is given, adds 1 to its u64 slot `slot` for each test frame.
pub fn xdp_action(action: i32, counter: Option<(MapId, i32)>) -> bpf_builder::asm::Code {
    let mut a = Asm::new();
    let other = a.new_label();
    let done = a.new_label();
    a.ldx(Size::W, R2, R1, 0);
    a.ldx(Size::W, R3, R1, 4);
    require_test_frame(&mut a, other);
    if let Some((map, slot)) = counter {
        count(&mut a, map, slot, done);
    }
    a.bind(done);
    a.mov64(R0, action);
    a.exit();
    a.bind(other);
    a.mov64(R0, XDP_PASS);
    a.exit();
    a.finish().unwrap()
}

/// Ingress XDP: redirects test frames through `map` with the u16 key in
/// the first two payload bytes; passes the rest.
pub fn redirect(map: MapId) -> bpf_builder::asm::Code {
    let mut a = Asm::new();
    let pass = a.new_label();
    a.ldx(Size::W, R2, R1, 0);
    a.ldx(Size::W, R3, R1, 4);
    require_test_frame(&mut a, pass);
    a.mov64(R4, R2);
    a.add64(R4, 16);
    a.jmp(JmpOp::Gt, R4, R3, pass);
    a.ldx(Size::H, R2, R2, 14);
    a.ld_map_fd(R1, map);
    a.mov64(R3, 0);
    a.call(Helper::RedirectMap);
    a.exit();
    a.bind(pass);
    a.mov64(R0, XDP_PASS);
    a.exit();
    a.finish().unwrap()
}

/// Adds 1 to the u64 at array index `slot` of `map`; jumps to `done`.
/// Clobbers R0-R5.
pub fn count(a: &mut Asm, map: MapId, slot: i32, done: bpf_builder::asm::Label) {
    a.st(Size::W, R10, -4, slot);
    a.ld_map_fd(R1, map);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, done);
    a.mov64(R1, 1);
    a.atomic(bpf_builder::insn::AtomicOp::Add, Size::DW, R0, 0, R1);
    a.ja(done);
}

/// Reads the u64 at array index `slot`.
pub fn read_u64(map: &bpf_builder::handle::Map, slot: u32) -> u64 {
    let v = map.lookup(&slot.to_ne_bytes()).unwrap().unwrap();
    u64::from_ne_bytes(v[..8].try_into().unwrap())
}

/// Names of the loaded programs whose name starts with `prefix`.
pub fn programs_named(prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut id = None;
    while let Some(next) = sys::prog_get_next_id(id).unwrap() {
        id = Some(next);
        if let Ok(fd) = sys::prog_get_fd_by_id(next)
            && let Ok(info) = sys::prog_info(&fd)
            && info.name.starts_with(prefix)
        {
            names.push(format!("{} (id {next})", info.name));
        }
    }
    names
}

/// Ids of the links whose program is named with `prefix`.
pub fn links_of(prefix: &str) -> Vec<KernelLinkId> {
    let mut ids = Vec::new();
    let mut id = None;
    while let Some(next) = sys::link_get_next_id(id).unwrap() {
        id = Some(next);
        if let Ok(fd) = sys::link_get_fd_by_id(next)
            && let Ok(info) = sys::link_info(&fd)
            && let Some(prog_id) = info.prog_id
            && let Ok(pfd) = sys::prog_get_fd_by_id(prog_id)
            && let Ok(p) = sys::prog_info(&pfd)
            && p.name.starts_with(prefix)
        {
            ids.push(next);
        }
    }
    ids
}

/// Asserts that no program named with `prefix` and no link of one is
/// left, once everything of the test has been dropped. The kernel frees
/// devices of a deleted namespace and map contents asynchronously, so this
/// waits for that (up to a generous bound) before failing.
pub fn assert_nothing_left(prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let progs = programs_named(prefix);
        let links = links_of(prefix);
        if progs.is_empty() && links.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("left in the kernel: programs {progs:?}, links {links:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (at most 10 s) until `done` holds. Dropping a link handle closes
/// our fd, but the kernel detaches only when the last reference goes: a
/// child that another test thread is forking at that moment holds a copy
/// of every fd until it execs, so a drop is not a synchronous detach
/// (`Link::detach` is).
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "still not the case after 10 s: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `frames` from `tx` and returns how many test frames with
/// `marker` arrived at `rx` (waiting at most [`TIMEOUT`]).
pub fn delivered(tx: &Link, rx: &Link, frames: &[Vec<u8>], marker: &Marker) -> Vec<Vec<u8>> {
    testbed::send_and_collect(tx, rx, frames, marker, TIMEOUT).unwrap()
}

/// A bpffs path removed on drop, so a failing test leaves no pin behind.
pub struct PinPath(pub std::path::PathBuf);

impl PinPath {
    /// `/sys/fs/bpf/bpf_builder_test_{what}_{pid}`.
    pub fn new(what: &str) -> PinPath {
        PinPath(format!("/sys/fs/bpf/bpf_builder_test_{what}_{}", std::process::id()).into())
    }
}

impl Drop for PinPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// An object file and a bpffs directory unique to one test, removed on
/// drop (also when the test fails).
pub struct Scratch {
    pub file: PathBuf,
    pub pins: PathBuf,
}

impl Scratch {
    /// Paths named after the test file (`suite`), the process and `tag`.
    pub fn new(suite: &str, tag: &str) -> Scratch {
        let id = format!("bpfb_{suite}_{}_{tag}", std::process::id());
        Scratch {
            file: std::env::temp_dir().join(format!("{id}.o")),
            pins: Path::new("/sys/fs/bpf").join(id),
        }
    }
}

impl Scratch {
    /// Writes `elf` to the file and has libbpf (through
    /// `bpftool prog loadall`) load it and pin its programs under `pins`.
    pub fn bpftool_loadall(&self, elf: &[u8]) {
        std::fs::write(&self.file, elf).unwrap();
        bpf_builder::sys::bpf::ensure_bpffs(Path::new("/sys/fs/bpf")).unwrap();
        let out = std::process::Command::new("bpftool")
            .args(["prog", "loadall"])
            .arg(&self.file)
            .arg(&self.pins)
            .output()
            .expect("bpftool is installed");
        assert!(
            out.status.success(),
            "bpftool prog loadall failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_dir_all(&self.pins);
    }
}

/// This test binary's mangled symbol for the function `name` of the test
/// crate `krate` (Rust mangles `tracing::traced_add` with a hash):
/// exactly one must match.
pub fn own_symbol(krate: &str, name: &str) -> String {
    use object::{Object as _, ObjectSymbol as _};
    let data = std::fs::read("/proc/self/exe").unwrap();
    let file = object::File::parse(&*data).unwrap();
    let (krate, name) = (
        format!("{}{krate}", krate.len()),
        format!("{}{name}", name.len()),
    );
    let found: Vec<String> = file
        .symbols()
        .filter_map(|s| s.name().ok().map(str::to_string))
        .filter(|s| s.starts_with("_ZN") && s.contains(&krate) && s.contains(&name))
        .collect();
    assert_eq!(found.len(), 1, "symbols for {name}: {found:?}");
    found.into_iter().next().unwrap()
}

/// The stress producers' start: r8 = the value of `state` (an array of
/// one 16-byte entry: the next sequence number, then the records lost),
/// r7 = this record's sequence number, taken with a fetch-add; to `out`
/// when the lookup fails. Clobbers r0-r5.
pub fn next_sequence(a: &mut Asm, state: MapId, out: bpf_builder::asm::Label) {
    a.st(Size::W, R10, -4, 0);
    a.ld_map_fd(R1, state);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, out);
    a.mov64(R8, R0);
    a.mov64(R7, 1);
    a.atomic(bpf_builder::insn::AtomicOp::FetchAdd, Size::DW, R8, 0, R7);
}

/// What a stress producer recorded ([`next_sequence`], [`mark_lost`]):
/// (sequence numbers taken, records counted lost, the lost marks of the
/// first `max_seq` numbers).
pub fn sequence_outcome(
    state: &bpf_builder::handle::Map,
    lost: &bpf_builder::handle::Map,
    max_seq: u32,
) -> (u64, u64, Vec<bool>) {
    let state = state.lookup(&0u32.to_ne_bytes()).unwrap().unwrap();
    let taken = u64::from_ne_bytes(state[..8].try_into().unwrap());
    let refused = u64::from_ne_bytes(state[8..].try_into().unwrap());
    let mut marks = vec![false; max_seq as usize];
    for (key, value) in lost.lookup_batch_all(4096).unwrap() {
        let key = u32::from_ne_bytes(key.try_into().unwrap());
        marks[key as usize] = value[0] != 0;
    }
    (taken, refused, marks)
}

/// The stress producers' end for a record that could not be written:
/// counts it in the state's second u64 and sets byte r7 of `lost` (one
/// byte per sequence number), then falls through to what follows.
/// Clobbers r0-r5.
pub fn mark_lost(a: &mut Asm, lost: MapId, out: bpf_builder::asm::Label) {
    a.mov64(R1, 1);
    a.atomic(bpf_builder::insn::AtomicOp::Add, Size::DW, R8, 8, R1);
    a.stx(Size::W, R10, -8, R7);
    a.ld_map_fd(R1, lost);
    a.mov64(R2, R10);
    a.add64(R2, -8);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, out);
    a.st(Size::B, R0, 0, 1);
}
