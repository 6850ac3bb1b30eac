//! Tracing programs in the real kernel: every program type and attach
//! method counts exactly what it should (calls of a function of this test
//! binary, getpid calls of one thread), and detaching leaves no program,
//! link or probe event behind (checked with bpftool where it is installed,
//! by id otherwise, and in tracefs). kprobes, fentry and fexit run in the
//! test VM when this kernel lacks them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bpf_builder::asm::{Asm, Label};
use bpf_builder::attach::kprobe_multi::{self, Functions};
use bpf_builder::attach::perf_event::{self, Counter, ProbeOptions, Sample, Software};
use bpf_builder::attach::tracefs::TracepointFormat;
use bpf_builder::attach::{AttachError, TraceLink, raw_tracepoint, symbol_offset, tracing};
use bpf_builder::btf::KernelBtf;
use bpf_builder::ctx::{pt_regs, raw_tracepoint_args, tracing_args};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AtomicOp, JmpOp, Reg::*, Size};
use bpf_builder::load::{LoadError, Loaded};
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgId, ProgramSpec, ProgramType};
use common::{assert_nothing_left, own_symbol, read_u64, require_bpf};

/// `__NR_getpid` on x86_64.
const NR_GETPID: i32 = 39;

/// Map slots of the counting programs.
const HITS: u32 = 0;
const SUM: u32 = 1;
const COOKIE: u32 = 2;

/// A function of this test binary for uprobes: never inlined, called
/// through `black_box`.
#[inline(never)]
fn traced_add(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_add(1000)
}

/// A second one, for uprobe.multi.
#[inline(never)]
fn traced_other(x: u64) -> u64 {
    std::hint::black_box(x).wrapping_mul(3)
}

/// The calling thread's id (`/proc/thread-self` links to `PID/task/TID`).
fn gettid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

/// Calls getpid(2) `n` times (glibc does not cache it).
fn getpid_times(n: u64) {
    for _ in 0..n {
        std::hint::black_box(std::process::id());
    }
}

fn exe() -> PathBuf {
    std::fs::canonicalize("/proc/self/exe").unwrap()
}

/// What a counting program checks before it counts.
#[derive(Clone, Copy)]
enum Filter {
    /// `bpf_get_current_pid_tgid()`'s thread id is `tid`.
    Tid(u32),
    /// The thread is `tid` and the context field of this size at this
    /// offset (a syscall number) is getpid's.
    TidAndSyscall(u32, i16, Size),
}

/// What else the program adds up, into slot [`SUM`].
#[derive(Clone, Copy)]
enum Extra {
    None,
    /// The u64 context field at this offset.
    CtxField(i16),
    /// `bpf_get_attach_cookie`, stored into slot [`COOKIE`].
    Cookie,
}

/// Adds R7 to the u64 at array index `slot` of `map`. Clobbers R0-R5.
fn add_r7(a: &mut Asm, map: MapId, slot: u32) {
    let skip = a.new_label();
    a.st(Size::W, R10, -4, slot as i32);
    a.ld_map_fd(R1, map);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, skip);
    a.atomic(AtomicOp::Add, Size::DW, R0, 0, R7);
    a.bind(skip);
}

/// A program of `spec`'s type that counts its runs that pass `filter`
/// (slot [`HITS`]) and adds up `extra`, in an array of three u64.
fn counter(
    prog_type: ProgramType,
    attach_to: Option<&str>,
    filter: Filter,
    extra: Extra,
) -> (Loaded, ProgId, MapId) {
    let mut obj = Object::new();
    let map = obj.add_map(MapSpec::array("hits", 8, 3)).unwrap();
    let mut a = Asm::new();
    let out: Label = a.new_label();
    a.mov64(R6, R1);
    let tid_is = |a: &mut Asm, tid: u32| {
        a.call(Helper::GetCurrentPidTgid);
        a.mov32(R0, R0);
        a.jmp(JmpOp::Ne, R0, tid as i32, out);
    };
    match filter {
        Filter::Tid(tid) => tid_is(&mut a, tid),
        Filter::TidAndSyscall(tid, off, size) => {
            tid_is(&mut a, tid);
            a.ldx(size, R1, R6, off);
            a.jmp(JmpOp::Ne, R1, NR_GETPID, out);
        }
    }
    a.mov64(R7, 1);
    add_r7(&mut a, map, HITS);
    match extra {
        Extra::None => {}
        Extra::CtxField(off) => {
            a.ldx(Size::DW, R7, R6, off);
            add_r7(&mut a, map, SUM);
        }
        Extra::Cookie => {
            a.mov64(R1, R6);
            a.call(Helper::GetAttachCookie);
            a.mov64(R7, R0);
            add_r7(&mut a, map, COOKIE);
        }
    }
    a.bind(out);
    a.mov64(R0, 0);
    a.exit();
    let mut spec = ProgramSpec::new("trace_count", prog_type, a.finish().unwrap());
    if let Some(t) = attach_to {
        spec = spec.with_attach_to(t);
    }
    let prog = obj.add_program_spec(spec).unwrap();
    let loaded = obj
        .load()
        .unwrap_or_else(|e| panic!("{prog_type:?} loads: {e}"));
    (loaded, prog, map)
}

/// A perf_event program that counts every run in slot [`HITS`] of a map
/// made from `map` (an array or a per-CPU array of three u64).
fn perf_counter(map: MapSpec) -> (Loaded, ProgId, MapId) {
    let mut obj = Object::new();
    let map = obj.add_map(map).unwrap();
    let mut a = Asm::new();
    a.mov64(R7, 1);
    add_r7(&mut a, map, HITS);
    a.mov64(R0, 0);
    a.exit();
    let prog = obj
        .add_program("trace_count", ProgramType::PerfEvent, a.finish().unwrap())
        .unwrap();
    (obj.load().unwrap(), prog, map)
}

/// Held by the tests that make tracefs probe events or check that none
/// is left (tests run in parallel threads of one process).
static PROBE_EVENTS: Mutex<()> = Mutex::new(());

fn lock_probe_events() -> MutexGuard<'static, ()> {
    PROBE_EVENTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The lines of tracefs' probe events files that this crate made.
fn our_probe_events() -> Vec<String> {
    let root = Path::new("/sys/kernel/tracing");
    ["kprobe_events", "uprobe_events"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(root.join(f)).ok())
        .flat_map(|t| t.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| l.contains("bpf_builder/"))
        .collect()
}

/// `bpftool prog show` / `link show` output, when bpftool is installed.
fn bpftool(what: &str) -> Option<String> {
    let out = Command::new("bpftool").args([what, "show"]).output().ok()?;
    assert!(out.status.success(), "bpftool {what} show: {out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Detaches `link` and checks that nothing of it is left: no link in
/// `bpftool link show` (or by id), no probe event in tracefs; then drops
/// the object and checks that its program is gone from `bpftool prog
/// show` (or by id).
fn detach_and_check(link: TraceLink, loaded: Loaded, prog: ProgId) {
    let prog_id = loaded.program(prog).id().unwrap();
    let link_ids = link.link_ids().unwrap();
    let event = link.probe_event().map(str::to_string);
    link.detach().unwrap();
    for id in &link_ids {
        assert!(
            bpf_builder::sys::bpf::link_get_fd_by_id(*id).is_err(),
            "link {id} still there"
        );
    }
    if let Some(links) = bpftool("link") {
        assert!(
            !links
                .lines()
                .any(|l| l.contains(&format!("prog {prog_id}"))),
            "bpftool link show still lists a link of program {prog_id}:\n{links}"
        );
    }
    if let Some(event) = event {
        let left: Vec<String> = our_probe_events()
            .into_iter()
            .filter(|l| l.contains(&format!("/{event} ")))
            .collect();
        assert_eq!(left, Vec::<String>::new(), "probe event {event} left");
    }
    drop(loaded);
    assert_nothing_left("trace_count");
    if let Some(progs) = bpftool("prog") {
        assert!(
            !progs
                .lines()
                .any(|l| l.starts_with(&format!("{prog_id}: "))),
            "bpftool prog show still lists program {prog_id}:\n{progs}"
        );
    }
}

#[test]
fn uprobe_counts_each_call_of_a_function_and_reads_its_argument() {
    if !require_bpf() {
        return;
    }
    let tid = gettid();
    let (loaded, prog, map) = counter(
        ProgramType::Uprobe,
        None,
        Filter::Tid(tid),
        Extra::CtxField(pt_regs::arg(0).unwrap()),
    );
    let offset = symbol_offset(exe(), &own_symbol("tracing", "traced_add")).unwrap();
    let opts = ProbeOptions::new().pid(std::process::id());
    let link = perf_event::uprobe(loaded.program(prog), exe(), offset, &opts).unwrap();
    assert_eq!(link.link_ids().unwrap().len(), 1, "one perf link");
    assert_eq!(link.probe_event(), None, "through the uprobe PMU");
    const N: u64 = 500;
    for i in 0..N {
        traced_add(i);
    }
    let m = loaded.map(map);
    assert_eq!(read_u64(m, HITS), N);
    assert_eq!(
        read_u64(m, SUM),
        N * (N - 1) / 2,
        "the first argument, from rdi"
    );
    detach_and_check(link, loaded, prog);
    traced_add(1);
}

#[test]
fn uretprobe_reads_the_return_value() {
    if !require_bpf() {
        return;
    }
    let tid = gettid();
    let (loaded, prog, map) = counter(
        ProgramType::Uretprobe,
        None,
        Filter::Tid(tid),
        Extra::CtxField(pt_regs::RC),
    );
    let offset = symbol_offset(exe(), &own_symbol("tracing", "traced_add")).unwrap();
    let opts = ProbeOptions::new().pid(std::process::id());
    let link = perf_event::uprobe(loaded.program(prog), exe(), offset, &opts).unwrap();
    const N: u64 = 100;
    for i in 0..N {
        traced_add(i);
    }
    let m = loaded.map(map);
    assert_eq!(read_u64(m, HITS), N);
    assert_eq!(
        read_u64(m, SUM),
        N * (N - 1) / 2 + 1000 * N,
        "x + 1000, from rax"
    );
    detach_and_check(link, loaded, prog);
}

#[test]
fn uprobe_through_tracefs_and_the_ioctl_counts_and_removes_its_event() {
    if !require_bpf() {
        return;
    }
    let tid = gettid();
    let _events = lock_probe_events();
    let (loaded, prog, map) = counter(ProgramType::Uprobe, None, Filter::Tid(tid), Extra::None);
    let offset = symbol_offset(exe(), &own_symbol("tracing", "traced_add")).unwrap();
    let opts = ProbeOptions::new()
        .pid(std::process::id())
        .tracefs(true)
        .no_perf_link(true);
    let link = perf_event::uprobe(loaded.program(prog), exe(), offset, &opts).unwrap();
    let event = link
        .probe_event()
        .expect("a tracefs probe event")
        .to_string();
    assert!(
        our_probe_events().iter().any(|l| l.contains(&event)),
        "uprobe_events lists {event}: {:?}",
        our_probe_events()
    );
    assert_eq!(
        link.links().count(),
        0,
        "no BPF link: PERF_EVENT_IOC_SET_BPF"
    );
    // A cookie needs a perf link.
    let e = perf_event::uprobe(loaded.program(prog), exe(), offset, &opts.clone().cookie(7))
        .unwrap_err();
    assert!(matches!(e, AttachError::KernelTooOld { .. }), "{e}");
    assert_eq!(
        our_probe_events().len(),
        1,
        "the failed attach left no event"
    );
    const N: u64 = 77;
    for i in 0..N {
        traced_add(i);
    }
    assert_eq!(read_u64(loaded.map(map), HITS), N);
    // Dropping detaches too: the perf event closes, the event goes.
    drop(link);
    assert!(
        !our_probe_events().iter().any(|l| l.contains(&event)),
        "{event} removed on drop: {:?}",
        our_probe_events()
    );
    traced_add(1);
    assert_eq!(
        read_u64(loaded.map(map), HITS),
        N,
        "not counted once dropped"
    );
    let link = perf_event::uprobe(loaded.program(prog), exe(), offset, &opts).unwrap();
    detach_and_check(link, loaded, prog);
}

#[test]
fn a_perf_link_carries_its_cookie() {
    if !require_bpf() {
        return;
    }
    let tid = gettid();
    let (loaded, prog, map) = counter(ProgramType::Uprobe, None, Filter::Tid(tid), Extra::Cookie);
    let offset = symbol_offset(exe(), &own_symbol("tracing", "traced_add")).unwrap();
    let opts = ProbeOptions::new().pid(std::process::id()).cookie(0xc0de);
    let link = perf_event::uprobe(loaded.program(prog), exe(), offset, &opts).unwrap();
    traced_add(1);
    traced_add(2);
    assert_eq!(read_u64(loaded.map(map), HITS), 2);
    assert_eq!(read_u64(loaded.map(map), COOKIE), 2 * 0xc0de);
    detach_and_check(link, loaded, prog);
}

#[test]
fn uprobe_multi_counts_the_calls_of_two_functions_through_one_link() {
    if !require_bpf() {
        return;
    }
    let tid = gettid();
    let (loaded, prog, map) = counter(
        ProgramType::UprobeMulti,
        None,
        Filter::Tid(tid),
        Extra::Cookie,
    );
    let offsets = [
        symbol_offset(exe(), &own_symbol("tracing", "traced_add")).unwrap(),
        symbol_offset(exe(), &own_symbol("tracing", "traced_other")).unwrap(),
    ];
    let link = kprobe_multi::attach_uprobes(
        loaded.program(prog),
        exe(),
        &offsets,
        &[1, 100],
        Some(std::process::id()),
    )
    .unwrap();
    assert_eq!(link.link_ids().unwrap().len(), 1);
    for i in 0..10 {
        traced_add(i);
    }
    for i in 0..3 {
        traced_other(i);
    }
    assert_eq!(read_u64(loaded.map(map), HITS), 13);
    assert_eq!(
        read_u64(loaded.map(map), COOKIE),
        10 + 300,
        "each offset's cookie"
    );
    detach_and_check(link, loaded, prog);
}

#[test]
fn tracepoint_counts_the_getpid_calls_of_one_thread() {
    if !require_bpf() {
        return;
    }
    let format = TracepointFormat::read("syscalls", "sys_enter_getpid").unwrap();
    // The kernel keeps the common fields (the first 8 bytes) from
    // programs: the thread comes from the helper, the syscall number from
    // the record.
    let nr = format.field("__syscall_nr").unwrap();
    assert_eq!((nr.size, nr.signed), (4, true));
    let tid = gettid();
    let (loaded, prog, map) = counter(
        ProgramType::Tracepoint,
        None,
        Filter::TidAndSyscall(tid, nr.byte_offset() as i16, Size::W),
        Extra::None,
    );
    let link = perf_event::tracepoint(
        loaded.program(prog),
        "syscalls",
        "sys_enter_getpid",
        &ProbeOptions::new(),
    )
    .unwrap();
    const N: u64 = 1000;
    getpid_times(N);
    assert_eq!(read_u64(loaded.map(map), HITS), N);
    detach_and_check(link, loaded, prog);
}

#[test]
fn raw_tracepoint_counts_the_getpid_calls_of_one_thread() {
    if !require_bpf() {
        return;
    }
    let tid = gettid();
    // sys_enter(struct pt_regs *regs, long id)
    let (loaded, prog, map) = counter(
        ProgramType::RawTracepoint,
        None,
        Filter::TidAndSyscall(tid, raw_tracepoint_args::arg(1), Size::DW),
        Extra::None,
    );
    let link = raw_tracepoint::attach(loaded.program(prog), "sys_enter").unwrap();
    const N: u64 = 321;
    getpid_times(N);
    assert_eq!(read_u64(loaded.map(map), HITS), N);
    detach_and_check(link, loaded, prog);
}

#[test]
fn tp_btf_counts_the_getpid_calls_of_one_thread() {
    if !require_bpf() {
        return;
    }
    let tid = gettid();
    let (loaded, prog, map) = counter(
        ProgramType::TpBtf,
        Some("sys_enter"),
        Filter::TidAndSyscall(tid, tracing_args::arg(1), Size::DW),
        Extra::None,
    );
    let link = tracing::attach(loaded.program(prog), 0).unwrap();
    const N: u64 = 123;
    getpid_times(N);
    assert_eq!(read_u64(loaded.map(map), HITS), N);
    detach_and_check(link, loaded, prog);
}

#[test]
fn perf_event_cpu_clock_fires_on_every_cpu() {
    if !require_bpf() {
        return;
    }
    let (loaded, prog, map) = perf_counter(MapSpec::per_cpu_array("hits", 8, 3));
    let cpus = perf_event::online_cpus().unwrap();
    let link = perf_event::sample(
        loaded.program(prog),
        Counter::Software(Software::CpuClock),
        Sample::Frequency(1000),
        &ProbeOptions::new(),
    )
    .unwrap();
    assert_eq!(
        link.link_ids().unwrap().len(),
        cpus.len(),
        "one link per CPU"
    );
    // cpu-clock is a timer on each CPU: every online CPU counts, busy or
    // idle.
    let per_cpu = || -> Vec<u64> {
        let values = loaded
            .map(map)
            .lookup_per_cpu(&HITS.to_ne_bytes())
            .unwrap()
            .unwrap();
        cpus.iter()
            .map(|&c| u64::from_ne_bytes(values[c as usize][..8].try_into().unwrap()))
            .collect()
    };
    let started = Instant::now();
    while per_cpu().iter().any(|&n| n < 5) && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let counts = per_cpu();
    assert!(
        counts.iter().all(|&n| n >= 5),
        "cpu-clock at 1000 Hz fired {counts:?} times on CPUs {cpus:?}"
    );
    detach_and_check(link, loaded, prog);
}

#[test]
fn begin_and_end_programs_run_once_through_test_run() {
    if !require_bpf() {
        return;
    }
    // BEGIN adds its first argument to SUM and counts; END counts and
    // returns 7.
    let mut obj = Object::new();
    let map = obj.add_map(MapSpec::array("hits", 8, 3)).unwrap();
    let mut a = Asm::new();
    a.ldx(Size::DW, R7, R1, raw_tracepoint_args::arg(0));
    add_r7(&mut a, map, SUM);
    a.mov64(R7, 1);
    add_r7(&mut a, map, HITS);
    a.mov64(R0, 0);
    a.exit();
    let begin = obj
        .add_program(
            "trace_count",
            ProgramType::RawTracepoint,
            a.finish().unwrap(),
        )
        .unwrap();
    let mut a = Asm::new();
    a.mov64(R7, 1);
    add_r7(&mut a, map, HITS);
    a.mov64(R0, 7);
    a.exit();
    let end = obj
        .add_program(
            "trace_count_end",
            ProgramType::RawTracepoint,
            a.finish().unwrap(),
        )
        .unwrap();
    let loaded = obj.load().unwrap();
    assert_eq!(loaded.program(begin).run_once(&[42]).unwrap(), 0);
    assert_eq!(read_u64(loaded.map(map), HITS), 1, "BEGIN ran once");
    assert_eq!(read_u64(loaded.map(map), SUM), 42);
    assert_eq!(loaded.program(end).run_once(&[]).unwrap(), 7);
    assert_eq!(read_u64(loaded.map(map), HITS), 2, "END ran once");
    assert!(
        loaded.program(end).run_once(&[0; 13]).is_err(),
        "13 arguments"
    );
    drop(loaded);
    assert_nothing_left("trace_count");
}

#[test]
fn missing_functions_and_tracepoints_are_named() {
    if !require_bpf() {
        return;
    }
    let (loaded, prog, _) = counter(ProgramType::Tracepoint, None, Filter::Tid(0), Extra::None);
    let p = loaded.program(prog);
    let opts = ProbeOptions::new();
    let e = perf_event::tracepoint(p, "syscalls", "sys_enter_nope", &opts).unwrap_err();
    assert!(matches!(e, AttachError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("`syscalls:sys_enter_nope`"), "{e}");
    let e = perf_event::tracepoint(p, "nocategory", "x", &opts).unwrap_err();
    assert!(e.to_string().contains("no category `nocategory`"), "{e}");
    // A program of the wrong type is refused before anything is made.
    let e = raw_tracepoint::attach(p, "sys_enter").unwrap_err();
    assert!(matches!(e, AttachError::WrongProgram { .. }), "{e}");
    drop(loaded);

    let (loaded, prog, _) = counter(
        ProgramType::RawTracepoint,
        None,
        Filter::Tid(0),
        Extra::None,
    );
    let e = raw_tracepoint::attach(loaded.program(prog), "no_such_tracepoint").unwrap_err();
    assert!(
        e.to_string()
            .contains("no raw tracepoint `no_such_tracepoint`"),
        "{e}"
    );
    drop(loaded);

    let e = symbol_offset(exe(), "no_such_function_here").unwrap_err();
    assert!(
        e.to_string().contains("no symbol `no_such_function_here`"),
        "{e}"
    );
    let (loaded, prog, _) = counter(ProgramType::Uprobe, None, Filter::Tid(0), Extra::None);
    let e = perf_event::uprobe(loaded.program(prog), "/no/such/file", 0, &opts).unwrap_err();
    assert!(e.to_string().contains("/no/such/file"), "{e}");
    drop(loaded);

    // tp_btf, fentry, fexit: resolved in the kernel's BTF at load.
    for (t, target, what) in [
        (ProgramType::Fentry, "no_such_kernel_function", "function"),
        (ProgramType::Fexit, "nomod:do_nanosleep", "function"),
        (ProgramType::TpBtf, "no_such_tracepoint", "tracepoint"),
    ] {
        let mut obj = Object::new();
        let mut a = Asm::new();
        a.mov64(R0, 0);
        a.exit();
        let spec = ProgramSpec::new("trace_count", t, a.finish().unwrap()).with_attach_to(target);
        obj.add_program_spec(spec).unwrap();
        let e = obj.load().unwrap_err();
        assert!(matches!(e, LoadError::Target(_)), "{e}");
        assert!(
            e.to_string().contains(&format!("no {what} `{target}`")),
            "{e}"
        );
    }
    // And an fentry program without a target is refused when built.
    let mut obj = Object::new();
    let e = obj
        .add_program("trace_count", ProgramType::Fentry, common::ret(0))
        .unwrap_err();
    assert!(e.to_string().contains("needs the kernel function"), "{e}");
    let _events = lock_probe_events();
    assert_eq!(our_probe_events(), Vec::<String>::new());
    assert_nothing_left("trace_count");
}

#[test]
fn kprobe_multi_gets_a_clear_answer_from_this_kernel() {
    if !require_bpf() {
        return;
    }
    let (loaded, prog, map) = counter(
        ProgramType::KprobeMulti,
        None,
        Filter::Tid(gettid()),
        Extra::None,
    );
    match kprobe_multi::attach(
        loaded.program(prog),
        Functions::Names(&["do_nanosleep"]),
        &[],
    ) {
        Ok(link) => {
            for _ in 0..5 {
                std::thread::sleep(Duration::from_micros(1));
            }
            assert_eq!(read_u64(loaded.map(map), HITS), 5);
            detach_and_check(link, loaded, prog);
        }
        Err(e @ AttachError::KernelTooOld { .. }) => {
            eprintln!("skipped counting with kprobe.multi: {e}");
            assert!(e.to_string().contains("CONFIG_FPROBE"), "{e}");
            drop(loaded);
            assert_nothing_left("trace_count");
        }
        Err(e) => panic!("{e}"),
    }
}

/// Sleeps `n` times (each goes through `do_nanosleep`).
fn sleep_times(n: u64) {
    for _ in 0..n {
        std::thread::sleep(Duration::from_micros(1));
    }
}

#[test]
fn kprobe_and_kretprobe_count_calls_here_or_in_vm() {
    if !require_bpf()
        || !testbed::vm::run_here_or_in_vm(
            "kprobes (CONFIG_KPROBES)",
            testbed::features::kprobes(),
            "kprobe_and_kretprobe_count_calls_here_or_in_vm",
        )
    {
        return;
    }
    let tid = gettid();
    let _events = lock_probe_events();
    for (t, tracefs) in [
        (ProgramType::Kprobe, false),
        (ProgramType::Kretprobe, false),
        (ProgramType::Kprobe, true),
    ] {
        let (loaded, prog, map) = counter(t, None, Filter::Tid(tid), Extra::CtxField(pt_regs::RC));
        let opts = ProbeOptions::new().tracefs(tracefs);
        let link = perf_event::kprobe(loaded.program(prog), "do_nanosleep", 0, &opts).unwrap();
        assert_eq!(link.probe_event().is_some(), tracefs);
        sleep_times(20);
        assert_eq!(
            read_u64(loaded.map(map), HITS),
            20,
            "{t:?}, tracefs {tracefs}"
        );
        if t == ProgramType::Kretprobe {
            assert_eq!(read_u64(loaded.map(map), SUM), 0, "do_nanosleep returned 0");
        }
        detach_and_check(link, loaded, prog);
    }
    let (loaded, prog, _) = counter(ProgramType::Kprobe, None, Filter::Tid(tid), Extra::None);
    let e = perf_event::kprobe(
        loaded.program(prog),
        "no_such_kernel_function",
        0,
        &ProbeOptions::new(),
    )
    .unwrap_err();
    assert!(matches!(e, AttachError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("no_such_kernel_function"), "{e}");
    let e = perf_event::kprobe(
        loaded.program(prog),
        "no_such_kernel_function",
        0,
        &ProbeOptions::new().tracefs(true),
    )
    .unwrap_err();
    assert!(e.to_string().contains("no_such_kernel_function"), "{e}");
    // A function of the kprobe blacklist exists but is not traceable.
    if let Some(listed) = std::fs::read_to_string("/sys/kernel/debug/kprobes/blacklist")
        .ok()
        .and_then(|t| {
            t.lines()
                .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
                .next()
        })
    {
        let e =
            perf_event::kprobe(loaded.program(prog), &listed, 0, &ProbeOptions::new()).unwrap_err();
        assert!(
            matches!(e, AttachError::NotTraceable { .. }),
            "{listed}: {e}"
        );
        assert!(e.to_string().contains(&listed), "{e}");
    } else {
        assert!(
            !testbed::vm::in_vm(),
            "the VM mounts debugfs and has a kprobe blacklist"
        );
    }
    assert_eq!(
        our_probe_events(),
        Vec::<String>::new(),
        "a failed attach leaves no event"
    );
    drop(loaded);
    assert_nothing_left("trace_count");
}

#[test]
fn fentry_and_fexit_count_calls_here_or_in_vm() {
    if !require_bpf()
        || !testbed::vm::run_here_or_in_vm(
            "fentry/fexit programs (BPF trampolines)",
            testbed::features::fentry(),
            "fentry_and_fexit_count_calls_here_or_in_vm",
        )
    {
        return;
    }
    assert!(!tracing::kernel_refuses_trampolines());
    let tid = gettid();
    // fexit finds the return value after the arguments: as many as the
    // kernel's BTF says do_nanosleep takes (2 in 6.1).
    let nargs = KernelBtf::vmlinux()
        .unwrap()
        .func("do_nanosleep")
        .unwrap()
        .params
        .len();
    for (t, extra) in [
        (ProgramType::Fentry, Extra::None),
        (
            ProgramType::Fexit,
            Extra::CtxField(tracing_args::ret(nargs)),
        ),
    ] {
        let (loaded, prog, map) = counter(t, Some("do_nanosleep"), Filter::Tid(tid), extra);
        let link = tracing::attach(loaded.program(prog), 0).unwrap();
        sleep_times(20);
        assert_eq!(read_u64(loaded.map(map), HITS), 20, "{t:?}");
        assert_eq!(read_u64(loaded.map(map), SUM), 0, "do_nanosleep returned 0");
        detach_and_check(link, loaded, prog);
    }
    // A module's function (the VM loads veth), found in the module's BTF
    // with or without the module named; the kernel takes it only with the
    // module's BTF object.
    if testbed::vm::in_vm() || Path::new("/sys/kernel/btf/veth").exists() {
        for target in ["veth_xmit", "veth:veth_xmit"] {
            let (loaded, prog, _) = counter(
                ProgramType::Fentry,
                Some(target),
                Filter::Tid(tid),
                Extra::None,
            );
            let link = tracing::attach(loaded.program(prog), 0).unwrap();
            detach_and_check(link, loaded, prog);
        }
    } else {
        eprintln!("skipped fentry on a module's function: no module BTF for veth here");
    }
}

#[test]
fn a_kernel_that_refuses_fentry_gets_an_error_that_says_so() {
    if !require_bpf() {
        return;
    }
    if testbed::features::fentry() {
        eprintln!("skipped: this kernel loads fentry programs (the VM test counts with them)");
        return;
    }
    assert!(tracing::kernel_refuses_trampolines());
    let mut obj = Object::new();
    let spec = ProgramSpec::new("trace_count", ProgramType::Fentry, common::ret(0))
        .with_attach_to("do_nanosleep");
    obj.add_program_spec(spec).unwrap();
    let e = obj.load().unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("before the verifier ran") && text.contains("BPF trampolines"),
        "{text}"
    );
    assert!(e.missing_privilege().is_some(), "{text}");
    assert_nothing_left("trace_count");
}

#[test]
fn without_kprobes_a_kprobe_says_the_kernel_lacks_them() {
    if !require_bpf() {
        return;
    }
    if testbed::features::kprobes() {
        eprintln!("skipped: this kernel has kprobes (the kprobe test counts with them)");
        return;
    }
    let (loaded, prog, _) = counter(ProgramType::Kprobe, None, Filter::Tid(0), Extra::None);
    for tracefs in [false, true] {
        let opts = ProbeOptions::new().tracefs(tracefs);
        let e = perf_event::kprobe(loaded.program(prog), "do_nanosleep", 0, &opts).unwrap_err();
        assert!(matches!(e, AttachError::KernelTooOld { .. }), "{e}");
        assert!(e.to_string().contains("CONFIG_KPROBE_EVENTS"), "{e}");
    }
    drop(loaded);
    assert_nothing_left("trace_count");
}

#[test]
fn a_hardware_counter_fires_or_the_machine_has_none() {
    if !require_bpf() {
        return;
    }
    let (loaded, prog, map) = perf_counter(MapSpec::array("hits", 8, 3));
    let counter = Counter::Hardware(perf_event::Hardware::Instructions);
    match perf_event::sample(
        loaded.program(prog),
        counter,
        Sample::Period(1_000_000),
        &ProbeOptions::new(),
    ) {
        Ok(link) => {
            let started = Instant::now();
            while read_u64(loaded.map(map), HITS) < 5 && started.elapsed() < Duration::from_secs(5)
            {
                std::hint::black_box(traced_add(1));
            }
            assert!(
                read_u64(loaded.map(map), HITS) >= 5,
                "every 10^6 instructions"
            );
            detach_and_check(link, loaded, prog);
        }
        Err(e @ AttachError::KernelTooOld { .. }) => {
            eprintln!("skipped counting instructions: {e}");
            assert!(e.to_string().contains("instructions"), "{e}");
            drop(loaded);
            assert_nothing_left("trace_count");
        }
        Err(e) => panic!("{e}"),
    }
}
