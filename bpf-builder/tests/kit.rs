//! The code generators' kit on the real kernel: a raw tracepoint on
//! `sys_enter`, for the `openat` calls of one thread, reads the parent's
//! pid through `current->real_parent->tgid` (offsets from this kernel's
//! BTF), the file name from user memory into a per-CPU scratch buffer
//! larger than the stack, and stores it in a hash map with the thread id
//! as its key on the stack. The kernel's `getppid` and the names the
//! test opened are the oracle.

use bpf_builder::asm::Asm;
use bpf_builder::attach::raw_tracepoint;
use bpf_builder::btf::kernel::{KernelBtf, Kind};
use bpf_builder::ctx::{pt_regs, raw_tracepoint_args};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{JmpOp, Reg, Size};
use bpf_builder::kit::{
    Dest, Frame, Scratch, Space, Value, map_update, probe_read, probe_read_str, read_path,
};
use bpf_builder::map::MapSpec;
use bpf_builder::object::{Object, ProgramType};

/// x86_64's `openat`.
const NR_OPENAT: i32 = 257;
/// Bytes of a file name kept: more than the stack holds.
const NAME: u32 = 4096;

fn gettid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").unwrap();
    link.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

#[test]
fn a_tracepoint_reads_the_parent_pid_and_file_names_through_the_kit() {
    if !testbed::bpf_privileged("tracing with the generators' kit") {
        return;
    }
    let btf = KernelBtf::vmlinux().unwrap();
    let task = btf.type_by_name("task_struct", Kind::Struct).unwrap();
    let tid = gettid();

    let mut obj = Object::new();
    let names = obj.add_map(MapSpec::hash("names", 4, NAME, 16)).unwrap();
    let parents = obj.add_map(MapSpec::hash("parents", 4, 8, 16)).unwrap();
    let scratch = Scratch::new(&mut obj, "scratch", NAME).unwrap();
    let mut frame = Frame::new();
    let key = frame.alloc(4, 4).unwrap();
    let tmp = frame.alloc(8, 8).unwrap();
    let word = frame.alloc(8, 8).unwrap();

    let mut a = Asm::new();
    let out = a.new_label();
    a.mov64(Reg::R6, Reg::R1);
    a.call(Helper::GetCurrentPidTgid);
    a.jmp32(JmpOp::Ne, Reg::R0, tid as i32, out);
    a.ldx(Size::DW, Reg::R1, Reg::R6, raw_tracepoint_args::arg(1));
    a.jmp(JmpOp::Ne, Reg::R1, NR_OPENAT, out);
    a.st(Size::W, Reg::R10, key.off(), tid as i32);

    // parents[tid] = current->real_parent->tgid
    a.call(Helper::GetCurrentTask);
    a.mov64(Reg::R7, Reg::R0);
    read_path(
        &mut a,
        &btf,
        task,
        "real_parent.tgid",
        Reg::R7,
        &tmp,
        Reg::R8,
    )
    .unwrap();
    a.stx(Size::DW, Reg::R10, word.off(), Reg::R8);
    map_update(&mut a, parents, &key, Value::Stack(word), 0);

    // names[tid] = the file name (regs->si), through the scratch buffer.
    a.ldx(Size::DW, Reg::R7, Reg::R6, raw_tracepoint_args::arg(0));
    a.add64(Reg::R7, i32::from(pt_regs::RSI));
    probe_read(&mut a, Space::Kernel, Dest::Stack(tmp), Reg::R7);
    a.ldx(Size::DW, Reg::R7, Reg::R10, tmp.off());
    let scratch_key = frame.alloc(4, 4).unwrap();
    scratch.emit_get(&mut a, Reg::R8, &scratch_key, out);
    probe_read_str(&mut a, Space::User, Dest::At(Reg::R8, NAME), Reg::R7);
    map_update(&mut a, names, &key, Value::At(Reg::R8), 0);

    a.bind(out);
    a.mov64(Reg::R0, 0);
    a.exit();
    let prog = obj
        .add_program(
            "kit_openat",
            ProgramType::RawTracepoint,
            a.finish().unwrap(),
        )
        .unwrap();
    let loaded = obj.load().unwrap();
    let link = raw_tracepoint::attach(loaded.program(prog), "sys_enter").unwrap();

    let path = format!("/nonexistent-kit-{}-{tid}/file", std::process::id());
    // glibc opens with openat(2).
    let e = std::fs::File::open(&path).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    drop(link);

    let got = loaded
        .map(names)
        .lookup(&tid.to_ne_bytes())
        .unwrap()
        .expect("the program saw the openat");
    let end = got.iter().position(|&b| b == 0).unwrap();
    assert_eq!(std::str::from_utf8(&got[..end]).unwrap(), path);
    let parent = loaded
        .map(parents)
        .lookup(&tid.to_ne_bytes())
        .unwrap()
        .unwrap();
    let ppid = u64::from(std::os::unix::process::parent_id());
    assert_eq!(u64::from_ne_bytes(parent[..8].try_into().unwrap()), ppid);
}
