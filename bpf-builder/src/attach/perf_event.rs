//! Attaching through perf events: kprobes and kretprobes, uprobes and
//! uretprobes (through the kernel's `kprobe` and `uprobe` PMUs, or
//! tracefs probe events where the kernel has no PMU), classic
//! tracepoints, and sampling or counting events on every CPU (software
//! counters such as `cpu-clock`, hardware counters).
//!
//! The program runs on each hit through a BPF perf link
//! (`BPF_LINK_CREATE`, Linux 5.15+) carrying a BPF cookie
//! (`bpf_get_attach_cookie`); on kernels without perf links, through
//! `PERF_EVENT_IOC_SET_BPF` (no cookie). Either way the result is a
//! [`TraceLink`], and a failed attach leaves no perf event, link or probe
//! event behind.
//!
//! ```no_run
//! use bpf_builder::asm::Asm;
//! use bpf_builder::attach::perf_event::{self, ProbeOptions};
//! use bpf_builder::insn::Reg::*;
//! use bpf_builder::object::{Object, ProgramType};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut obj = Object::new();
//! let mut a = Asm::new();
//! a.mov64(R0, 0);
//! a.exit();
//! let prog = obj.add_program("on_malloc", ProgramType::Uprobe, a.finish()?)?;
//! let loaded = obj.load()?;
//! let libc = "/lib/x86_64-linux-gnu/libc.so.6";
//! let offset = bpf_builder::attach::symbol_offset(libc, "malloc")?;
//! let link = perf_event::uprobe(loaded.program(prog), libc, offset, &ProbeOptions::new())?;
//! // ... read the program's maps ...
//! link.detach()?;
//! # Ok(())
//! # }
//! ```

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use super::tracefs::{ProbeEvent, ProbeKind, tracepoint_id};
use super::{AttachError, Link, TraceLink};
use crate::handle::Program;
use crate::object::ProgramType;
use crate::privilege::Needs;
use crate::sys::bpf as sys;
use crate::sys::perf::{self, PerfEventAttr, perf_hw_id, perf_sw_ids, perf_type_id};
use crate::text::escape;

pub use crate::sys::perf::Sample;

/// Options of a probe or tracepoint attach. [`ProbeOptions::new`] gives
/// the defaults: cookie 0, every process, the PMU and a perf link where
/// the kernel has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeOptions {
    /// The BPF cookie the program reads with `bpf_get_attach_cookie`
    /// (needs perf links, Linux 5.15+).
    pub cookie: u64,
    /// Uprobes: only this process (default: every process that maps the
    /// file).
    pub pid: Option<u32>,
    /// Make kprobes and uprobes through tracefs probe events even where
    /// the kernel has the PMU (as on kernels before 4.17).
    pub tracefs: bool,
    /// Attach with `PERF_EVENT_IOC_SET_BPF` even where the kernel has
    /// perf links (as on kernels before 5.15; no cookie then).
    pub no_perf_link: bool,
}

impl ProbeOptions {
    /// The defaults.
    pub fn new() -> ProbeOptions {
        ProbeOptions::default()
    }

    /// Sets the BPF cookie.
    pub fn cookie(mut self, cookie: u64) -> ProbeOptions {
        self.cookie = cookie;
        self
    }

    /// Limits a uprobe to process `pid`.
    pub fn pid(mut self, pid: u32) -> ProbeOptions {
        self.pid = Some(pid);
        self
    }

    /// Forces tracefs probe events.
    pub fn tracefs(mut self, tracefs: bool) -> ProbeOptions {
        self.tracefs = tracefs;
        self
    }

    /// Forces `PERF_EVENT_IOC_SET_BPF`.
    pub fn no_perf_link(mut self, no_perf_link: bool) -> ProbeOptions {
        self.no_perf_link = no_perf_link;
        self
    }
}

/// Refuses a program whose type is not one of `types` (a program loaded
/// elsewhere, of unknown type, is left to the kernel).
fn check_type(
    prog: &Program,
    types: &[ProgramType],
    hook: &str,
) -> Result<Option<ProgramType>, AttachError> {
    match prog.prog_type() {
        Some(t) if !types.contains(&t) => Err(AttachError::WrongProgram {
            program: prog.name().to_string(),
            reason: format!(
                "it is a {} program, and {hook} takes {}",
                t.section_name(),
                types
                    .iter()
                    .map(|t| t.section_name())
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        }),
        t => Ok(t),
    }
}

/// A dynamic PMU (`kprobe`, `uprobe`): its type and the `config` bit that
/// makes a return probe.
fn pmu(name: &str) -> Option<(u32, u32)> {
    let dir = Path::new("/sys/bus/event_source/devices").join(name);
    let ty = std::fs::read_to_string(dir.join("type")).ok()?;
    let ty = ty.trim().parse().ok()?;
    // `config:0`
    let bit = std::fs::read_to_string(dir.join("format/retprobe"))
        .ok()
        .and_then(|s| s.trim().strip_prefix("config:")?.parse().ok())
        .unwrap_or(0);
    Some((ty, bit))
}

/// Runs `prog` on `event`: through a perf link unless told otherwise or
/// the kernel has none, else with `PERF_EVENT_IOC_SET_BPF`.
fn attach_event(
    link: &mut TraceLink,
    prog: &Program,
    event: OwnedFd,
    opts: &ProbeOptions,
) -> Result<(), AttachError> {
    let what = link.what().to_string();
    if !opts.no_perf_link {
        match sys::link_create_perf_event(prog.as_fd(), event.as_fd(), opts.cookie) {
            Ok(fd) => {
                link.push_link(Link::from_fd(fd), Some(event));
                return Ok(());
            }
            // No perf links (before 5.15): BPF_PERF_EVENT is unknown.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && opts.cookie == 0 => {}
            Err(e) => return Err(event_attach_error(prog, &what, opts, e)),
        }
    } else if opts.cookie != 0 {
        return Err(AttachError::KernelTooOld {
            what: format!("a BPF cookie on {what}"),
            needs: "perf links (Linux 5.15)".into(),
            detail: "PERF_EVENT_IOC_SET_BPF carries no cookie".into(),
        });
    }
    perf::set_bpf(&event, prog.as_fd()).map_err(|e| event_attach_error(prog, &what, opts, e))?;
    link.push_event(event);
    Ok(())
}

fn event_attach_error(
    prog: &Program,
    what: &str,
    opts: &ProbeOptions,
    e: io::Error,
) -> AttachError {
    match e.raw_os_error() {
        Some(libc::EINVAL) if opts.cookie != 0 => AttachError::KernelTooOld {
            what: format!("a BPF cookie on {what}"),
            needs: "perf links (Linux 5.15)".into(),
            detail: format!("BPF_LINK_CREATE refused BPF_PERF_EVENT: {e}"),
        },
        Some(libc::EINVAL) => AttachError::WrongProgram {
            program: prog.name().to_string(),
            reason: format!("the kernel refused it for {what} ({e}): wrong program type?"),
        },
        Some(libc::EEXIST) => AttachError::HookTaken {
            hook: what.to_string(),
            iface: "this perf event".into(),
            detail: "it already runs a BPF program".into(),
        },
        _ => AttachError::sys_needs(
            format!("attaching `{}` to {what}", prog.name()),
            e,
            Needs::TRACING_PROGRAM,
        ),
    }
}

/// Attaches a kprobe (or, for a [`ProgramType::Kretprobe`] program, a
/// kretprobe) to `function` at `offset` bytes into it (0: its entry;
/// kretprobes take 0 only).
///
/// Errors name what is wrong: [`AttachError::NotFound`] for a function
/// the kernel does not have, [`AttachError::NotTraceable`] for one it
/// refuses to probe (notrace, kprobe blacklist, an offset that is not an
/// instruction), [`AttachError::KernelTooOld`] for a kernel without
/// kprobes, [`AttachError::Denied`] for missing privilege.
pub fn kprobe(
    prog: &Program,
    function: &str,
    offset: u64,
    opts: &ProbeOptions,
) -> Result<TraceLink, AttachError> {
    let t = check_type(
        prog,
        &[ProgramType::Kprobe, ProgramType::Kretprobe],
        "a kprobe",
    )?;
    let retprobe = t == Some(ProgramType::Kretprobe);
    let kind = if retprobe { "kretprobe" } else { "kprobe" };
    let target = if offset == 0 {
        function.to_string()
    } else {
        format!("{function}+{offset}")
    };
    let what = format!("{kind} {}", escape(&target));
    if function.is_empty()
        || !function
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':'))
    {
        return Err(AttachError::NotFound {
            what: format!("no kernel function `{}`", escape(function)),
        });
    }
    let mut link = TraceLink::new(what.clone());
    let event = match pmu("kprobe").filter(|_| !opts.tracefs) {
        Some((ty, bit)) => {
            let name = CString::new(function).expect("checked: no NUL");
            let mut attr = PerfEventAttr::new(ty, if retprobe { 1 << bit } else { 0 });
            attr.name = Some(&name);
            attr.config2 = offset;
            perf::perf_event_open(&attr, -1, 0)
                .map_err(|e| kprobe_error(function, &target, retprobe, e))?
        }
        None => {
            let probe = ProbeEvent::create(ProbeKind::Kprobe, retprobe, &target)?;
            let id = probe.id()?;
            link.set_probe(probe);
            open_tracepoint_event(id, &what)?
        }
    };
    attach_event(&mut link, prog, event, opts)?;
    Ok(link)
}

fn no_kprobes() -> AttachError {
    AttachError::KernelTooOld {
        what: "kprobes".into(),
        needs: "a kernel built with CONFIG_KPROBES and CONFIG_KPROBE_EVENTS".into(),
        detail: "this one has neither the kprobe PMU nor tracefs kprobe_events".into(),
    }
}

/// Explains a refused kprobe perf event.
fn kprobe_error(function: &str, target: &str, retprobe: bool, e: io::Error) -> AttachError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => AttachError::NotFound {
            what: format!("no kernel function `{function}` (not in /proc/kallsyms)"),
        },
        Some(libc::EINVAL) if retprobe && target != function => AttachError::NotTraceable {
            target: target.to_string(),
            reason: "a kretprobe goes on a function's entry only (offset 0)".into(),
        },
        Some(libc::EINVAL | libc::EILSEQ) => AttachError::NotTraceable {
            target: target.to_string(),
            reason: format!(
                "the kernel refuses kprobes there ({e}): a notrace or blacklisted function \
                 (/sys/kernel/debug/kprobes/blacklist), or an offset that is not an instruction"
            ),
        },
        Some(libc::EOPNOTSUPP) => no_kprobes(),
        _ => AttachError::sys_needs(
            format!("opening a kprobe on {target}"),
            e,
            Needs::PERF_EVENT,
        ),
    }
}

/// Opens a `PERF_TYPE_TRACEPOINT` event of tracepoint `id` (for every
/// process, on CPU 0: the program runs for every CPU).
fn open_tracepoint_event(id: u32, what: &str) -> Result<OwnedFd, AttachError> {
    let attr = PerfEventAttr::new(perf_type_id::PERF_TYPE_TRACEPOINT as u32, u64::from(id));
    perf::perf_event_open(&attr, -1, 0).map_err(|e| {
        AttachError::sys_needs(
            format!("opening a perf event for {what}"),
            e,
            Needs::PERF_EVENT,
        )
    })
}

/// Attaches a uprobe (or, for a [`ProgramType::Uretprobe`] program, a
/// uretprobe) to the instruction at file offset `offset` of the ELF file
/// `path` ([`symbol_offset`](super::symbol_offset) finds a function's),
/// in every process that maps it or in [`ProbeOptions::pid`] only.
pub fn uprobe(
    prog: &Program,
    path: impl AsRef<Path>,
    offset: u64,
    opts: &ProbeOptions,
) -> Result<TraceLink, AttachError> {
    let path = path.as_ref();
    let t = check_type(
        prog,
        &[ProgramType::Uprobe, ProgramType::Uretprobe],
        "a uprobe",
    )?;
    let retprobe = t == Some(ProgramType::Uretprobe);
    let kind = if retprobe { "uretprobe" } else { "uprobe" };
    let what = format!("{kind} {}:{offset:#x}", path.display());
    // The kernel resolves a relative path against the caller's directory
    // for the PMU, not for tracefs: use an absolute one for both.
    let abs = std::fs::canonicalize(path).map_err(|e| AttachError::NotFound {
        what: format!("no file {} for the {kind}: {e}", path.display()),
    })?;
    let abs_str = abs.to_str().ok_or_else(|| AttachError::NotFound {
        what: format!("{} is not a UTF-8 path", abs.display()),
    })?;
    let cpath = CString::new(abs_str).map_err(|_| AttachError::NotFound {
        what: format!("{} has a NUL byte", abs.display()),
    })?;
    let pid = opts.pid.map_or(-1, |p| p as i32);
    let mut link = TraceLink::new(what.clone());
    let event = match pmu("uprobe").filter(|_| !opts.tracefs) {
        Some((ty, bit)) => {
            let mut attr = PerfEventAttr::new(ty, if retprobe { 1 << bit } else { 0 });
            attr.name = Some(&cpath);
            attr.config2 = offset;
            // A pid needs any CPU; every process needs one CPU (all run it).
            let cpu = if pid == -1 { 0 } else { -1 };
            perf::perf_event_open(&attr, pid, cpu).map_err(|e| uprobe_error(&what, e))?
        }
        None => {
            if abs_str.contains(char::is_whitespace) {
                return Err(AttachError::NotFound {
                    what: format!(
                        "{}: tracefs uprobe events cannot name a path with spaces",
                        abs.display()
                    ),
                });
            }
            let probe = ProbeEvent::create(
                ProbeKind::Uprobe,
                retprobe,
                &format!("{abs_str}:{offset:#x}"),
            )?;
            let id = probe.id()?;
            link.set_probe(probe);
            let attr = PerfEventAttr::new(perf_type_id::PERF_TYPE_TRACEPOINT as u32, u64::from(id));
            let cpu = if pid == -1 { 0 } else { -1 };
            perf::perf_event_open(&attr, pid, cpu).map_err(|e| uprobe_error(&what, e))?
        }
    };
    attach_event(&mut link, prog, event, opts)?;
    Ok(link)
}

/// Explains a refused uprobe perf event.
fn uprobe_error(what: &str, e: io::Error) -> AttachError {
    match e.raw_os_error() {
        Some(libc::ENOENT) => AttachError::NotFound {
            what: format!("{what}: no such file"),
        },
        Some(libc::ESRCH) => AttachError::NotFound {
            what: format!("{what}: no such process"),
        },
        Some(libc::EINVAL) => AttachError::NotTraceable {
            target: what.to_string(),
            reason: format!(
                "the kernel refused the offset ({e}): past the end of the file, or not in \
                 an executable mapping"
            ),
        },
        _ => AttachError::sys_needs(
            format!("opening a perf event for {what}"),
            e,
            Needs::PERF_EVENT,
        ),
    }
}

/// Attaches a [`ProgramType::Tracepoint`] program to the tracepoint
/// `category:name` (`syscalls:sys_enter_getpid`). A tracepoint that does
/// not exist is an [`AttachError::NotFound`] that names it.
pub fn tracepoint(
    prog: &Program,
    category: &str,
    name: &str,
    opts: &ProbeOptions,
) -> Result<TraceLink, AttachError> {
    check_type(prog, &[ProgramType::Tracepoint], "a tracepoint")?;
    let what = format!("tracepoint {category}:{name}");
    let id = tracepoint_id(category, name)?;
    let mut link = TraceLink::new(what.clone());
    let event = open_tracepoint_event(id, &what)?;
    attach_event(&mut link, prog, event, opts)?;
    Ok(link)
}

/// A software counter of the kernel (`perf list sw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Software {
    /// `cpu-clock`: a timer per CPU (fires when idle too).
    CpuClock,
    /// `task-clock`: time the monitored task runs.
    TaskClock,
    /// `page-faults`.
    PageFaults,
    /// `context-switches`.
    ContextSwitches,
    /// `cpu-migrations`.
    CpuMigrations,
}

/// A hardware counter of the CPU's PMU (`perf list hw`); virtual machines
/// often have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hardware {
    /// `cycles`.
    CpuCycles,
    /// `instructions`.
    Instructions,
    /// `cache-references`.
    CacheReferences,
    /// `cache-misses`.
    CacheMisses,
    /// `branch-instructions`.
    BranchInstructions,
    /// `branch-misses`.
    BranchMisses,
}

/// What a sampling perf event counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Counter {
    /// A software counter.
    Software(Software),
    /// A hardware counter.
    Hardware(Hardware),
}

impl Counter {
    /// perf's name (`cpu-clock`, `cycles`).
    pub fn name(self) -> &'static str {
        match self {
            Counter::Software(s) => match s {
                Software::CpuClock => "cpu-clock",
                Software::TaskClock => "task-clock",
                Software::PageFaults => "page-faults",
                Software::ContextSwitches => "context-switches",
                Software::CpuMigrations => "cpu-migrations",
            },
            Counter::Hardware(h) => match h {
                Hardware::CpuCycles => "cycles",
                Hardware::Instructions => "instructions",
                Hardware::CacheReferences => "cache-references",
                Hardware::CacheMisses => "cache-misses",
                Hardware::BranchInstructions => "branch-instructions",
                Hardware::BranchMisses => "branch-misses",
            },
        }
    }

    /// The perf event type and config.
    fn raw(self) -> (u32, u64) {
        match self {
            Counter::Software(s) => {
                use perf_sw_ids::*;
                let c = match s {
                    Software::CpuClock => PERF_COUNT_SW_CPU_CLOCK,
                    Software::TaskClock => PERF_COUNT_SW_TASK_CLOCK,
                    Software::PageFaults => PERF_COUNT_SW_PAGE_FAULTS,
                    Software::ContextSwitches => PERF_COUNT_SW_CONTEXT_SWITCHES,
                    Software::CpuMigrations => PERF_COUNT_SW_CPU_MIGRATIONS,
                };
                (perf_type_id::PERF_TYPE_SOFTWARE as u32, c as u64)
            }
            Counter::Hardware(h) => {
                use perf_hw_id::*;
                let c = match h {
                    Hardware::CpuCycles => PERF_COUNT_HW_CPU_CYCLES,
                    Hardware::Instructions => PERF_COUNT_HW_INSTRUCTIONS,
                    Hardware::CacheReferences => PERF_COUNT_HW_CACHE_REFERENCES,
                    Hardware::CacheMisses => PERF_COUNT_HW_CACHE_MISSES,
                    Hardware::BranchInstructions => PERF_COUNT_HW_BRANCH_INSTRUCTIONS,
                    Hardware::BranchMisses => PERF_COUNT_HW_BRANCH_MISSES,
                };
                (perf_type_id::PERF_TYPE_HARDWARE as u32, c as u64)
            }
        }
    }
}

/// The online CPUs, from `/sys/devices/system/cpu/online` (`0-3,5`).
pub fn online_cpus() -> io::Result<Vec<u32>> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online")?;
    parse_cpu_list(text.trim()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot read the CPU list {:?}", text.trim()),
        )
    })
}

/// `0-3,5` as `[0, 1, 2, 3, 5]`; `None` when it does not parse.
fn parse_cpu_list(text: &str) -> Option<Vec<u32>> {
    let mut cpus = Vec::new();
    for part in text.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 1 << 16 {
                    return None;
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// Attaches a [`ProgramType::PerfEvent`] program to `counter` on every
/// online CPU (for every process), firing as `sample` says: about `n`
/// times a second per CPU with [`Sample::Frequency`] (profilers' `-F`),
/// or every `n` counts with [`Sample::Period`]. One link per CPU, all in
/// the returned [`TraceLink`]; a failure on any CPU undoes the others.
pub fn sample(
    prog: &Program,
    counter: Counter,
    sample: Sample,
    opts: &ProbeOptions,
) -> Result<TraceLink, AttachError> {
    check_type(prog, &[ProgramType::PerfEvent], "a perf event")?;
    if matches!(sample, Sample::Frequency(0) | Sample::Period(0)) {
        return Err(AttachError::WrongProgram {
            program: prog.name().to_string(),
            reason: format!("a {} event sampling never (0) fires never", counter.name()),
        });
    }
    let cpus = online_cpus()
        .map_err(|e| AttachError::sys_needs("listing the online CPUs", e, Needs::PERF_EVENT))?;
    let mut link = TraceLink::new(format!(
        "perf event {} on {} CPUs",
        counter.name(),
        cpus.len()
    ));
    let (ty, config) = counter.raw();
    for cpu in cpus {
        let mut attr = PerfEventAttr::new(ty, config);
        attr.sample = sample;
        let event = perf::perf_event_open(&attr, -1, cpu as i32).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT | libc::EOPNOTSUPP) => AttachError::KernelTooOld {
                what: format!("the {} counter", counter.name()),
                needs: "a PMU that counts it".into(),
                detail: format!("perf_event_open on CPU {cpu}: {e} (virtual machines often have no hardware counters)"),
            },
            _ => AttachError::sys_needs(
                format!("opening a {} perf event on CPU {cpu}", counter.name()),
                e,
                Needs::PERF_EVENT,
            ),
        })?;
        attach_event(&mut link, prog, event, opts)?;
    }
    Ok(link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("0-3,5"), Some(vec![0, 1, 2, 3, 5]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(parse_cpu_list("0-4294967295"), None);
    }

    #[test]
    fn counters_have_perfs_names_and_types() {
        assert_eq!(Counter::Software(Software::CpuClock).name(), "cpu-clock");
        assert_eq!(Counter::Software(Software::CpuClock).raw(), (1, 0));
        assert_eq!(Counter::Hardware(Hardware::Instructions).raw(), (0, 1));
    }

    #[test]
    fn kprobe_errors_name_the_function() {
        let e = kprobe_error(
            "nope",
            "nope",
            false,
            io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert_eq!(
            e.to_string(),
            "no kernel function `nope` (not in /proc/kallsyms)"
        );
        let e = kprobe_error(
            "f",
            "f+3",
            false,
            io::Error::from_raw_os_error(libc::EILSEQ),
        );
        assert!(e.to_string().starts_with("f+3 is not traceable"), "{e}");
        let e = kprobe_error("f", "f+3", true, io::Error::from_raw_os_error(libc::EINVAL));
        assert!(e.to_string().contains("entry only"), "{e}");
        let e = kprobe_error("f", "f", false, io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(e.missing_privilege(), Some(Needs::PERF_EVENT));
    }
}
