//! `syscount`: system calls per process, as bcc's `syscount -P` prints
//! them. One raw tracepoint program on `sys_enter` counts into a hash map
//! keyed by process id, with the command name of the thread that made the
//! process's first counted call.
//!
//! ```text
//! syscount [-p PID] [--syscall NR] [-d SECONDS] [-T TOP]
//! ```

use std::io::Write;
use std::time::Duration;

use bpf_builder::asm::Asm;
use bpf_builder::attach::{TraceLink, raw_tracepoint};
use bpf_builder::ctx::raw_tracepoint_args;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, AtomicOp, JmpOp, Reg::*, Size};
use bpf_builder::load::Loaded;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgramType};
use bpf_builder::sys::signal::Termination;

use super::Error;

/// How to call it.
pub const USAGE: &str = "usage: syscount [-p PID] [--syscall NR] [-d SECONDS] [-T TOP]
Counts system calls per process until SECONDS have passed or Ctrl-C.
  -p PID         count the calls of this process only
  --syscall NR   count this system call (its number) only
  -d SECONDS     stop after this long
  -T TOP         print this many processes (default 10)";

/// The program's name (in `bpftool prog show`).
pub const PROGRAM: &str = "syscount";
/// Bytes of a map value: the count (u64) and the command name.
const VALUE_SIZE: u32 = 8 + 16;
/// Processes the map holds.
const MAX_PROCESSES: u32 = 10240;

/// What to count and for how long.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Only this process (thread group id).
    pub pid: Option<u32>,
    /// Only this system call number.
    pub syscall: Option<u32>,
    /// Stop after this long (else at Ctrl-C).
    pub duration: Option<Duration>,
    /// How many processes to print, most calls first.
    pub top: usize,
}

impl Options {
    /// Parses the command line (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut o = Options {
            top: 10,
            ..Options::default()
        };
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            match a.as_str() {
                "-p" | "--pid" => o.pid = Some(super::value(&a, args.next())?),
                "--syscall" => o.syscall = Some(super::value(&a, args.next())?),
                "-d" | "--duration" => o.duration = Some(super::seconds(&a, args.next())?),
                "-T" | "--top" => o.top = super::value(&a, args.next())?,
                // bcc's per-process switch: this tool always counts so.
                "-P" | "--process" => {}
                "-h" | "--help" => return Err(USAGE.to_string()),
                _ => return Err(format!("unknown argument `{a}`\n{USAGE}")),
            }
        }
        Ok(o)
    }
}

/// One process's count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Its process id.
    pub pid: u32,
    /// Its command name: `/proc/PID/comm`, or the name its thread had at
    /// its first counted call if it has ended.
    pub comm: String,
    /// System calls it made.
    pub count: u64,
}

/// The counting program, loaded and attached; dropping it detaches and
/// unloads everything.
#[derive(Debug)]
pub struct Syscount {
    // Dropped first: the link, then the program and map.
    _link: TraceLink,
    loaded: Loaded,
    counts: MapId,
}

/// The object: the `counts` map and the `syscount` raw tracepoint program.
pub fn build(opts: &Options) -> Result<(Object, MapId), Error> {
    let mut obj = Object::new();
    let counts = obj.add_map(MapSpec::hash("counts", 4, VALUE_SIZE, MAX_PROCESSES))?;
    let mut a = Asm::new();
    let out = a.new_label();
    let new = a.new_label();
    a.mov64(R6, R1);
    if let Some(nr) = opts.syscall {
        // sys_enter(struct pt_regs *regs, long id)
        a.ldx(Size::DW, R1, R6, raw_tracepoint_args::arg(1));
        a.ld_imm64(R2, nr.into());
        a.jmp(JmpOp::Ne, R1, R2, out);
    }
    a.call(Helper::GetCurrentPidTgid);
    a.alu64(AluOp::Rsh, R0, 32);
    if let Some(pid) = opts.pid {
        a.ld_imm64(R1, pid.into());
        a.jmp(JmpOp::Ne, R0, R1, out);
    }
    a.stx(Size::W, R10, -4, R0);
    let add_one = |a: &mut Asm| {
        a.mov64(R1, 1);
        a.atomic(AtomicOp::Add, Size::DW, R0, 0, R1);
    };
    let lookup = |a: &mut Asm| {
        a.ld_map_fd(R1, counts);
        a.mov64(R2, R10);
        a.add64(R2, -4);
        a.call(Helper::MapLookupElem);
    };
    lookup(&mut a);
    a.jmp(JmpOp::Eq, R0, 0, new);
    add_one(&mut a);
    a.ja(out);
    // First call of this process: {1, comm}.
    a.bind(new);
    a.st(Size::DW, R10, -32, 1);
    a.mov64(R1, R10);
    a.add64(R1, -24);
    a.mov64(R2, 16);
    a.call(Helper::GetCurrentComm);
    a.ld_map_fd(R1, counts);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.mov64(R3, R10);
    a.add64(R3, -32);
    a.mov64(R4, 1); // BPF_NOEXIST
    a.call(Helper::MapUpdateElem);
    a.jmp(JmpOp::Eq, R0, 0, out);
    // Another CPU made it first: count there.
    lookup(&mut a);
    a.jmp(JmpOp::Eq, R0, 0, out);
    add_one(&mut a);
    a.bind(out);
    a.mov64(R0, 0);
    a.exit();
    obj.add_program(PROGRAM, ProgramType::RawTracepoint, a.finish()?)?;
    Ok((obj, counts))
}

impl Syscount {
    /// Loads the program and attaches it to the `sys_enter` raw
    /// tracepoint: counting starts when this returns.
    pub fn start(opts: &Options) -> Result<Syscount, Error> {
        let (obj, counts) = build(opts)?;
        let prog = obj.program_by_name(PROGRAM).expect("built above");
        let loaded = obj
            .load()
            .map_err(|e| super::load_error("the syscount program", e))?;
        let link = raw_tracepoint::attach(loaded.program(prog), "sys_enter")
            .map_err(|e| format!("cannot attach to raw tracepoint sys_enter: {e}"))?;
        Ok(Syscount {
            _link: link,
            loaded,
            counts,
        })
    }

    /// The counts so far, most calls first (then by process id).
    pub fn rows(&self) -> Result<Vec<Row>, Error> {
        let mut rows = Vec::new();
        for entry in self.loaded.map(self.counts).iter() {
            let (k, v) = entry?;
            let pid = u32::from_ne_bytes(k[..4].try_into()?);
            let count = u64::from_ne_bytes(v[..8].try_into()?);
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim_end_matches('\n').to_string())
                .unwrap_or_else(|_| super::comm(&v[8..]));
            rows.push(Row { pid, comm, count });
        }
        rows.sort_by(|a, b| b.count.cmp(&a.count).then(a.pid.cmp(&b.pid)));
        Ok(rows)
    }
}

/// Prints `rows` (the first `top`) as bcc's `syscount -P` does.
pub fn print(out: &mut impl Write, rows: &[Row], top: usize) -> std::io::Result<()> {
    writeln!(out, "[{}]", super::clock())?;
    writeln!(out, "{:<22} {:>8}", "PID    COMM", "COUNT")?;
    for r in rows.iter().take(top) {
        let who = format!("{:<6} {:<15}", r.pid, r.comm);
        writeln!(out, "{who:<22} {:>8}", r.count)?;
    }
    Ok(())
}

/// The command: counts until `-d` or Ctrl-C, prints, detaches.
pub fn main(args: Vec<String>) -> Result<(), Error> {
    let opts = Options::parse(args)?;
    let term = Termination::block()?;
    let tool = Syscount::start(&opts)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Tracing syscalls, printing top {}... Ctrl+C to quit.",
        opts.top
    )?;
    out.flush()?;
    super::wait_for_end(&term, opts.duration)?;
    print(&mut out, &tool.rows()?, opts.top)?;
    drop(tool);
    writeln!(out, "Detaching...")?;
    Ok(())
}
