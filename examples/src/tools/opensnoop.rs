//! `opensnoop`: every open with its process, command, result and path, as
//! bcc's `opensnoop` prints it, through a ring buffer.
//!
//! Where the kernel has BPF trampolines, one fexit program on
//! `do_sys_openat2` (which open, openat and openat2 all reach) sees the
//! path and the result at once. Elsewhere the `syscalls:sys_enter_open`
//! and `sys_enter_openat` tracepoints keep each thread's path pointer in
//! a hash map and `sys_exit_open`/`sys_exit_openat` emit the record with
//! the result; field offsets come from the tracepoints' format files.
//!
//! ```text
//! opensnoop [-p PID] [-n NAME] [-x] [-d SECONDS] [--tracepoint]
//! ```

use std::io::Write;
use std::time::{Duration, Instant};

use bpf_builder::asm::Asm;
use bpf_builder::attach::tracefs::TracepointFormat;
use bpf_builder::attach::{TraceLink, perf_event, tracing};
use bpf_builder::btf::KernelBtf;
use bpf_builder::ctx::tracing_args;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, JmpOp, Reg::*, Size};
use bpf_builder::load::Loaded;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{Object, ProgramSpec, ProgramType};
use bpf_builder::ringbuf::RingBuf;
use bpf_builder::sys::signal::Termination;

use super::{Error, pid_tgid, put_by_thread, take_by_thread};

/// How to call it.
pub const USAGE: &str = "usage: opensnoop [-p PID] [-n NAME] [-x] [-d SECONDS] [--tracepoint]
Prints every open (open, openat) until SECONDS have passed or Ctrl-C.
  -p PID         only this process
  -n NAME        only commands whose name contains NAME
  -x             only failed opens
  -d SECONDS     stop after this long
  --tracepoint   use the syscall tracepoints even where fexit works";

/// The kernel function the fexit program traces.
pub const FEXIT_TARGET: &str = "do_sys_openat2";
/// Bytes of the path a record carries (with its NUL).
const PATH_MAX: u32 = 256;
/// A record: pid u32, tid u32, result i64, comm[16], path.
const RECORD: u32 = 32 + PATH_MAX;
/// Offsets in a record.
const R_PID: i16 = 0;
const R_TID: i16 = 4;
const R_RET: i16 = 8;
const R_COMM: i16 = 16;
const R_PATH: i16 = 32;
/// The programs' names (in `bpftool prog show`).
pub const PROGRAM_PREFIX: &str = "opensnoop";

/// What to print and for how long.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// Only this process (thread group id), filtered in the kernel.
    pub pid: Option<u32>,
    /// Only commands whose name contains this.
    pub name: Option<String>,
    /// Only failed opens.
    pub failed: bool,
    /// Stop after this long (else at Ctrl-C).
    pub duration: Option<Duration>,
    /// The tracepoints even where fexit would load.
    pub tracepoint: bool,
}

impl Options {
    /// Parses the command line (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut o = Options::default();
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            match a.as_str() {
                "-p" | "--pid" => o.pid = Some(super::value(&a, args.next())?),
                "-n" | "--name" => o.name = Some(super::value(&a, args.next())?),
                "-x" | "--failed" => o.failed = true,
                "-d" | "--duration" => o.duration = Some(super::seconds(&a, args.next())?),
                "--tracepoint" => o.tracepoint = true,
                "-h" | "--help" => return Err(USAGE.to_string()),
                _ => return Err(format!("unknown argument `{a}`\n{USAGE}")),
            }
        }
        Ok(o)
    }
}

/// How the opens are traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// One fexit program on [`FEXIT_TARGET`].
    Fexit,
    /// The open/openat enter and exit tracepoints.
    Tracepoints,
}

/// One open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The process id.
    pub pid: u32,
    /// The thread id.
    pub tid: u32,
    /// The thread's command name.
    pub comm: String,
    /// The file descriptor, or minus the errno.
    pub ret: i64,
    /// The path as the caller passed it (at most 255 bytes).
    pub path: String,
}

impl Event {
    fn parse(r: &[u8]) -> Option<Event> {
        let u32_at = |o: i16| u32::from_ne_bytes(r[o as usize..o as usize + 4].try_into().unwrap());
        if r.len() < RECORD as usize {
            return None;
        }
        Some(Event {
            pid: u32_at(R_PID),
            tid: u32_at(R_TID),
            ret: i64::from_ne_bytes(r[R_RET as usize..R_RET as usize + 8].try_into().unwrap()),
            comm: super::comm(&r[R_COMM as usize..R_PATH as usize]),
            path: super::comm(&r[R_PATH as usize..]),
        })
    }

    /// Whether `opts` (name, failed) lets it through.
    pub fn wanted(&self, opts: &Options) -> bool {
        (!opts.failed || self.ret < 0) && opts.name.as_ref().is_none_or(|n| self.comm.contains(n))
    }
}

/// The programs, loaded and attached, and the reader of their ring
/// buffer; dropping it detaches and unloads everything.
#[derive(Debug)]
pub struct Opensnoop {
    // Dropped first: the links, then the reader, programs and maps.
    _links: Vec<TraceLink>,
    ring: RingBuf,
    _loaded: Loaded,
    method: Method,
}

/// Emits the record: reserve, pid/tid from R7, result from `ret` (a u64
/// at that offset of R6), comm, path from the user pointer in R8, submit.
fn emit_record(
    a: &mut Asm,
    events: bpf_builder::object::MapId,
    ret: i16,
    out: bpf_builder::asm::Label,
) {
    a.ld_map_fd(R1, events);
    a.mov64(R2, RECORD as i32);
    a.mov64(R3, 0);
    a.call(Helper::RingbufReserve);
    a.jmp(JmpOp::Eq, R0, 0, out);
    a.mov64(R9, R0);
    a.stx(Size::W, R9, R_TID, R7);
    a.mov64(R1, R7);
    a.alu64(AluOp::Rsh, R1, 32);
    a.stx(Size::W, R9, R_PID, R1);
    a.ldx(Size::DW, R1, R6, ret);
    a.stx(Size::DW, R9, R_RET, R1);
    a.mov64(R1, R9);
    a.add64(R1, R_COMM as i32);
    a.mov64(R2, 16);
    a.call(Helper::GetCurrentComm);
    a.mov64(R1, R9);
    a.add64(R1, R_PATH as i32);
    a.mov64(R2, PATH_MAX as i32);
    a.mov64(R3, R8);
    a.call(Helper::ProbeReadUserStr);
    a.mov64(R1, R9);
    a.mov64(R2, 0);
    a.call(Helper::RingbufSubmit);
}

/// The fexit object: one program on [`FEXIT_TARGET`]; its number of
/// arguments comes from the kernel's BTF.
pub fn build_fexit(pid: Option<u32>) -> Result<Object, Error> {
    let nargs = KernelBtf::vmlinux()?.func(FEXIT_TARGET)?.params.len();
    let mut obj = Object::new();
    let events = obj.add_map(MapSpec::ring_buf("events", 1 << 20))?;
    let mut a = Asm::new();
    let out = a.new_label();
    a.mov64(R6, R1);
    pid_tgid(&mut a, pid, out);
    // do_sys_openat2(int dfd, const char __user *filename, struct open_how *how)
    a.ldx(Size::DW, R8, R6, tracing_args::arg(1));
    emit_record(&mut a, events, tracing_args::ret(nargs), out);
    a.bind(out);
    a.mov64(R0, 0);
    a.exit();
    let spec = ProgramSpec::new(
        format!("{PROGRAM_PREFIX}_fexit"),
        ProgramType::Fexit,
        a.finish()?,
    )
    .with_attach_to(FEXIT_TARGET);
    obj.add_program_spec(spec)?;
    Ok(obj)
}

/// The tracepoints the tracepoint method attaches to, (enter, exit), with
/// the enter tracepoint's format: openat always, open where the kernel has
/// it (x86_64 does; newer architectures only have openat).
fn syscalls() -> Result<Vec<(&'static str, &'static str, TracepointFormat)>, Error> {
    let openat = TracepointFormat::read("syscalls", "sys_enter_openat")
        .map_err(|e| format!("cannot read the tracepoint syscalls:sys_enter_openat: {e}"))?;
    let mut list = vec![("sys_enter_openat", "sys_exit_openat", openat)];
    if let Ok(open) = TracepointFormat::read("syscalls", "sys_enter_open") {
        list.push(("sys_enter_open", "sys_exit_open", open));
    }
    Ok(list)
}

/// The tracepoint object: an enter program per syscall (the path's
/// offset differs) and one exit program; returns the programs' names as
/// (tracepoint, program) pairs.
pub fn build_tracepoints(pid: Option<u32>) -> Result<(Object, Vec<(String, String)>), Error> {
    let mut obj = Object::new();
    let events = obj.add_map(MapSpec::ring_buf("events", 1 << 20))?;
    let paths = obj.add_map(MapSpec::hash("paths", 4, 8, 10240))?;
    let mut attach = Vec::new();
    let list = syscalls()?;
    for (i, (enter, _, format)) in list.iter().enumerate() {
        let filename = format.field("filename")?.byte_offset();
        let mut a = Asm::new();
        let out = a.new_label();
        a.mov64(R6, R1);
        pid_tgid(&mut a, pid, out);
        a.ldx(Size::DW, R1, R6, filename as i16);
        put_by_thread(&mut a, paths, R1);
        a.bind(out);
        a.mov64(R0, 0);
        a.exit();
        let name = format!("{PROGRAM_PREFIX}_e{i}");
        obj.add_program(&name, ProgramType::Tracepoint, a.finish()?)?;
        attach.push((enter.to_string(), name));
    }
    // Every exit tracepoint's `ret` is at the same place; take the first's.
    let ret = TracepointFormat::read("syscalls", list[0].1)?
        .field("ret")?
        .byte_offset();
    let mut a = Asm::new();
    let out = a.new_label();
    a.mov64(R6, R1);
    pid_tgid(&mut a, pid, out);
    take_by_thread(&mut a, paths, out);
    emit_record(&mut a, events, ret as i16, out);
    a.bind(out);
    a.mov64(R0, 0);
    a.exit();
    let exit_name = format!("{PROGRAM_PREFIX}_x");
    obj.add_program(&exit_name, ProgramType::Tracepoint, a.finish()?)?;
    for (_, exit, _) in &list {
        attach.push((exit.to_string(), exit_name.clone()));
    }
    Ok((obj, attach))
}

impl Opensnoop {
    /// Loads the programs (fexit where the kernel loads it, unless
    /// `opts.tracepoint`) and attaches them: opens are seen when this
    /// returns.
    pub fn start(opts: &Options) -> Result<Opensnoop, Error> {
        let fexit = if opts.tracepoint || tracing::kernel_refuses_trampolines() {
            None
        } else {
            // A trial load: the function may be missing or untraceable.
            build_fexit(opts.pid).ok().and_then(|o| o.load().ok())
        };
        let (loaded, links, method) = match fexit {
            Some(loaded) => {
                let prog = loaded.program_by_name(&format!("{PROGRAM_PREFIX}_fexit"));
                let link = tracing::attach(prog.ok_or("no fexit program")?, 0)
                    .map_err(|e| format!("cannot attach fexit to {FEXIT_TARGET}: {e}"))?;
                (loaded, vec![link], Method::Fexit)
            }
            None => {
                let (obj, attach) = build_tracepoints(opts.pid)?;
                let loaded = obj
                    .load()
                    .map_err(|e| super::load_error("the opensnoop programs", e))?;
                let mut links = Vec::new();
                for (tp, prog) in &attach {
                    let prog = loaded.program_by_name(prog).ok_or("no such program")?;
                    let link = perf_event::tracepoint(
                        prog,
                        "syscalls",
                        tp,
                        &perf_event::ProbeOptions::new(),
                    )
                    .map_err(|e| format!("cannot attach to syscalls:{tp}: {e}"))?;
                    links.push(link);
                }
                (loaded, links, Method::Tracepoints)
            }
        };
        let events = loaded.map_by_name("events").ok_or("no events map")?;
        let ring = RingBuf::new(events)?;
        Ok(Opensnoop {
            _links: links,
            ring,
            _loaded: loaded,
            method,
        })
    }

    /// How it traces.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Hands `f` every open recorded so far, waiting up to `timeout` for
    /// the first; returns how many.
    pub fn poll(&mut self, timeout: Duration, mut f: impl FnMut(Event)) -> Result<usize, Error> {
        let deadline = Instant::now() + timeout;
        let mut n = 0;
        loop {
            n += self.ring.drain(|r| {
                if let Some(e) = Event::parse(r) {
                    f(e);
                }
            })?;
            let left = deadline.saturating_duration_since(Instant::now());
            if n > 0 || left.is_zero() {
                return Ok(n);
            }
            self.ring.wait(Some(left))?;
        }
    }
}

/// bcc's header line.
pub const HEADER: &str = "PID    COMM               FD ERR PATH";

/// One line as bcc prints it: `PID COMM FD ERR PATH`.
pub fn line(e: &Event) -> String {
    let (fd, err) = if e.ret < 0 { (-1, -e.ret) } else { (e.ret, 0) };
    format!("{:<6} {:<16} {fd:>4} {err:>3} {}", e.pid, e.comm, e.path)
}

/// The command: prints opens until `-d` or Ctrl-C, then detaches.
pub fn main(args: Vec<String>) -> Result<(), Error> {
    let opts = Options::parse(args)?;
    let term = Termination::block()?;
    let mut tool = Opensnoop::start(&opts)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{HEADER}")?;
    out.flush()?;
    let end = opts.duration.map(|d| Instant::now() + d);
    loop {
        let mut failed = None;
        tool.poll(Duration::from_millis(100), |e| {
            if e.wanted(&opts)
                && let Err(err) = writeln!(out, "{}", line(&e))
            {
                failed = Some(err);
            }
        })?;
        if let Some(e) = failed {
            // A closed pipe ends the tool quietly, as bcc's does.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
        out.flush()?;
        if term.requested()? || end.is_some_and(|t| Instant::now() >= t) {
            return Ok(());
        }
    }
}
