//! Stack traces on the real kernel: programs record, with
//! `bpf_get_stackid`, the user and kernel stacks of a chain of this
//! test's functions that ends in getpid(2). A uprobe's user stack names
//! the probed function (this binary's ELF symbols through
//! /proc/self/maps); a tracepoint's names libc's getpid and the test
//! harness above it, and its kernel stack names the kernel's system call
//! entry (from /proc/kallsyms).

mod common;

use bpf_builder::asm::Asm;
use bpf_builder::attach::perf_event::{self, ProbeOptions};
use bpf_builder::attach::symbol_offset;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{JmpOp, Reg::*, Size};
use bpf_builder::load::Loaded;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgId, ProgramType};
use bpf_builder::stack_trace::{self, StackTraceError, USER_STACK};
use bpf_builder::symbolize::{KernelSymbols, ProcessSymbols, Symbol};
use common::{own_symbol, read_u64, require_bpf};

/// The calling thread's id.
fn gettid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

#[inline(never)]
fn stack_outer() -> i32 {
    std::hint::black_box(stack_middle()) + 1
}

#[inline(never)]
fn stack_middle() -> i32 {
    std::hint::black_box(stack_inner()) + 1
}

/// getpid(2) through std, which calls libc's `getpid`.
#[inline(never)]
fn stack_inner() -> i32 {
    std::hint::black_box(std::process::id()) as i32
}

/// A program of `prog_type` that records, for thread `tid`, its user
/// stack id into slot 0 and its kernel stack id into slot 1 of an array
/// (negative: `bpf_get_stackid`'s error).
fn recorder(prog_type: ProgramType, tid: u32) -> (Loaded, ProgId, MapId, MapId) {
    let mut o = Object::new();
    let stacks = o.add_map(MapSpec::stack_trace("stacks", 127, 64)).unwrap();
    let ids = o.add_map(MapSpec::array("stack_ids", 8, 2)).unwrap();
    let mut a = Asm::new();
    let out = a.new_label();
    a.mov64(R6, R1);
    a.call(Helper::GetCurrentPidTgid);
    a.mov32(R0, R0);
    a.jmp(JmpOp::Ne, R0, tid as i32, out);
    for (slot, flags) in [(0, USER_STACK as i32), (1, 0)] {
        let skip = a.new_label();
        a.mov64(R1, R6);
        a.ld_map_fd(R2, stacks);
        a.mov64(R3, flags);
        a.call(Helper::GetStackid);
        a.mov64(R7, R0);
        a.st(Size::W, R10, -4, slot);
        a.ld_map_fd(R1, ids);
        a.mov64(R2, R10);
        a.add64(R2, -4);
        a.call(Helper::MapLookupElem);
        a.jmp(JmpOp::Eq, R0, 0, skip);
        a.stx(Size::DW, R0, 0, R7);
        a.bind(skip);
    }
    a.bind(out);
    a.mov64(R0, 0);
    a.exit();
    let prog = o
        .add_program("stack_rec", prog_type, a.finish().unwrap())
        .unwrap();
    (o.load().unwrap(), prog, stacks, ids)
}

/// The stack recorded in `slot` (0 user, 1 kernel).
fn recorded(loaded: &Loaded, stacks: MapId, ids: MapId, slot: u32) -> Vec<u64> {
    let id = read_u64(loaded.map(ids), slot) as i64;
    assert!(id >= 0, "bpf_get_stackid (slot {slot}) returned {id}");
    stack_trace::read(loaded.map(stacks), id as u32)
        .unwrap()
        .expect("the stack is in the map")
}

fn exe() -> String {
    std::fs::canonicalize("/proc/self/exe")
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn a_uprobe_user_stack_names_the_probed_function_of_this_binary() {
    if !require_bpf() {
        return;
    }
    let (loaded, prog, stacks, ids) = recorder(ProgramType::Uprobe, gettid());
    let symbol = own_symbol("stack_trace", "stack_inner");
    let offset = symbol_offset(exe(), &symbol).unwrap();
    let opts = ProbeOptions::new().pid(std::process::id());
    let link = perf_event::uprobe(loaded.program(prog), exe(), offset, &opts).unwrap();
    assert!(stack_outer() > 0);
    drop(link);
    let user = recorded(&loaded, stacks, ids, 0);
    let mut process = ProcessSymbols::new(std::process::id()).unwrap();
    let first = process
        .resolve(user[0])
        .expect("the probed address is named");
    assert_eq!(
        first,
        Symbol {
            name: symbol,
            offset: 0,
            module: Some(exe()),
        },
        "the uprobe hits the function's first instruction"
    );
}

#[test]
fn a_tracepoint_names_libc_getpid_and_the_kernel_syscall_entry() {
    if !require_bpf() {
        return;
    }
    let (loaded, prog, stacks, ids) = recorder(ProgramType::Tracepoint, gettid());
    let link = perf_event::tracepoint(
        loaded.program(prog),
        "syscalls",
        "sys_enter_getpid",
        &ProbeOptions::new(),
    )
    .unwrap();
    assert!(stack_outer() > 0);
    drop(link);

    let user = recorded(&loaded, stacks, ids, 0);
    let mut process = ProcessSymbols::new(std::process::id()).unwrap();
    let user: Vec<Option<Symbol>> = user.iter().map(|&a| process.resolve(a)).collect();
    eprintln!("user stack: {user:?}");
    // The kernel walks user stacks by frame pointers, which this test
    // binary's own functions do not keep (no -Cforce-frame-pointers):
    // the walk goes from getpid to the nearest caller that keeps them,
    // in the test harness (std is built with frame pointers).
    let getpid = user[0].as_ref().expect("the syscall's caller is named");
    assert_eq!(getpid.name, "getpid");
    assert!(
        getpid
            .module
            .as_deref()
            .is_some_and(|m| m.contains("libc.so")),
        "{getpid:?}"
    );
    assert!(
        user.iter()
            .flatten()
            .any(|s| s.name.contains("run_test") && s.module.as_deref() == Some(&*exe())),
        "the test harness, from this binary's symbols: {user:?}"
    );

    let kernel = recorded(&loaded, stacks, ids, 1);
    let ksyms = match KernelSymbols::load() {
        Ok(k) => k,
        Err(e) => panic!("{e} (run as root, or set kernel.kptr_restrict=0)"),
    };
    let knames: Vec<String> = kernel
        .iter()
        .map(|&a| ksyms.resolve(a).map_or("?".into(), |s| s.name))
        .collect();
    eprintln!("kernel stack: {knames:?}");
    assert!(
        knames.iter().any(|n| n == "do_syscall_64"),
        "the system call entry in {knames:?}"
    );
    assert!(
        knames.iter().all(|n| n != "?"),
        "every frame named: {knames:?}"
    );
}

#[test]
fn only_stack_trace_maps_hold_stacks() {
    if !require_bpf() {
        return;
    }
    let mut o = Object::new();
    let array = o.add_map(MapSpec::array("not_stacks", 8, 1)).unwrap();
    let stacks = o
        .add_map(MapSpec::stack_trace("empty_stacks", 16, 4))
        .unwrap();
    let loaded = o.load().unwrap();
    let e = stack_trace::read(loaded.map(array), 0).unwrap_err();
    assert!(
        matches!(e, StackTraceError::NotAStackTraceMap { .. }),
        "{e}"
    );
    assert_eq!(stack_trace::read(loaded.map(stacks), 3).unwrap(), None);
}
