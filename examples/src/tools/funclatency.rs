//! `funclatency FUNC`: a log2 histogram of how long a function takes, as
//! bcc's `funclatency` prints it. FUNC is a kernel function (fentry and
//! fexit where the kernel has BPF trampolines, a kprobe and kretprobe
//! otherwise) or `/path/to/elf:symbol` (a uprobe and uretprobe).
//!
//! The entry program keeps `bpf_ktime_get_ns()` per thread in a hash map;
//! the return program takes it out and counts the difference into slot
//! `floor(log2(ns)) + 1` of an array (slot 1 also holds 0), with the total
//! and the number of calls beside.
//!
//! ```text
//! funclatency [-p PID] [-u|-m] [-d SECONDS] [--kprobe] FUNC
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use bpf_builder::asm::Asm;
use bpf_builder::attach::perf_event::{self, ProbeOptions};
use bpf_builder::attach::{AttachError, TraceLink, symbol_offset, tracing};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, AtomicOp, JmpOp, Reg::*, Size};
use bpf_builder::load::{LoadError, Loaded};
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgramSpec, ProgramType};
use bpf_builder::sys::signal::Termination;

use super::{Error, pid_tgid, put_by_thread, take_by_thread};

/// How to call it.
pub const USAGE: &str = "usage: funclatency [-p PID] [-u|-m] [-d SECONDS] [--kprobe] FUNC
Times FUNC (a kernel function, or /path/to/elf:symbol) until SECONDS have
passed or Ctrl-C, and prints a log2 histogram of its latency.
  -p PID       only calls by this process
  -u, -m       microseconds, milliseconds (default nanoseconds)
  -d SECONDS   stop after this long
  --kprobe     kprobes even where fentry/fexit load";

/// The programs' names (in `bpftool prog show`).
pub const PROGRAM_PREFIX: &str = "funclat";
/// Histogram slots: 0 and one per bit of a u64.
pub const SLOTS: usize = 65;

/// The unit of the histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unit {
    /// Nanoseconds.
    #[default]
    Nsecs,
    /// Microseconds.
    Usecs,
    /// Milliseconds.
    Msecs,
}

impl Unit {
    /// bcc's label.
    pub fn label(self) -> &'static str {
        match self {
            Unit::Nsecs => "nsecs",
            Unit::Usecs => "usecs",
            Unit::Msecs => "msecs",
        }
    }

    /// Nanoseconds per unit.
    pub fn nanos(self) -> u64 {
        match self {
            Unit::Nsecs => 1,
            Unit::Usecs => 1000,
            Unit::Msecs => 1_000_000,
        }
    }
}

/// What is traced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A kernel function.
    Kernel(String),
    /// A function of an ELF file.
    User {
        /// The file.
        path: PathBuf,
        /// Its symbol.
        symbol: String,
    },
}

impl Target {
    /// `FUNC` or `/path:symbol` (a path has a `/`).
    pub fn parse(s: &str) -> Result<Target, String> {
        match s.rsplit_once(':') {
            Some((path, symbol)) if path.contains('/') => {
                if symbol.is_empty() {
                    return Err(format!("`{s}`: no symbol after the `:`"));
                }
                Ok(Target::User {
                    path: path.into(),
                    symbol: symbol.to_string(),
                })
            }
            _ if s.is_empty() => Err("an empty function name".to_string()),
            _ => Ok(Target::Kernel(s.to_string())),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Kernel(n) => f.write_str(n),
            Target::User { path, symbol } => write!(f, "{}:{symbol}", path.display()),
        }
    }
}

/// What to time and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The function.
    pub target: Target,
    /// Only calls by this process.
    pub pid: Option<u32>,
    /// The histogram's unit.
    pub unit: Unit,
    /// Stop after this long (else at Ctrl-C).
    pub duration: Option<Duration>,
    /// kprobes even where fentry/fexit load.
    pub kprobe: bool,
}

impl Options {
    /// Options for `target` with the defaults.
    pub fn new(target: Target) -> Options {
        Options {
            target,
            pid: None,
            unit: Unit::Nsecs,
            duration: None,
            kprobe: false,
        }
    }

    /// Parses the command line (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut target = None;
        let mut o = Options::new(Target::Kernel(String::new()));
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            match a.as_str() {
                "-p" | "--pid" => o.pid = Some(super::value(&a, args.next())?),
                "-u" | "--microseconds" => o.unit = Unit::Usecs,
                "-m" | "--milliseconds" => o.unit = Unit::Msecs,
                "-d" | "--duration" => o.duration = Some(super::seconds(&a, args.next())?),
                "--kprobe" => o.kprobe = true,
                "-h" | "--help" => return Err(USAGE.to_string()),
                _ if a.starts_with('-') => return Err(format!("unknown option `{a}`\n{USAGE}")),
                _ if target.is_some() => {
                    return Err(format!("one function only (`{a}` is a second)\n{USAGE}"));
                }
                _ => target = Some(Target::parse(&a)?),
            }
        }
        o.target = target.ok_or_else(|| format!("no function given\n{USAGE}"))?;
        Ok(o)
    }
}

/// How the function is traced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// fentry and fexit.
    Fentry,
    /// kprobe and kretprobe.
    Kprobe,
    /// uprobe and uretprobe.
    Uprobe,
}

/// The programs, loaded and attached; dropping it detaches and unloads.
#[derive(Debug)]
pub struct Funclatency {
    // Dropped first: the links, then the programs and maps.
    _links: [TraceLink; 2],
    loaded: Loaded,
    hist: MapId,
    stats: MapId,
    method: Method,
    unit: Unit,
}

/// What was measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    /// Calls per slot: slot `i > 0` holds `2^(i-1) ..= 2^i - 1` units,
    /// slot 1 also 0 (bcc's `bpf_log2l` + 1).
    pub slots: Vec<u64>,
    /// The unit.
    pub unit: Unit,
    /// All the time measured, in nanoseconds.
    pub total_ns: u64,
    /// Calls that returned.
    pub count: u64,
}

/// Emits: adds R1 to the u64 at `slot` (in R3's u32 stack cell) of `map`.
fn add_at(a: &mut Asm, map: MapId, slot_on_stack: i16, value: impl Fn(&mut Asm)) {
    let skip = a.new_label();
    a.ld_map_fd(R1, map);
    a.mov64(R2, R10);
    a.add64(R2, slot_on_stack as i32);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, skip);
    value(a);
    a.atomic(AtomicOp::Add, Size::DW, R0, 0, R1);
    a.bind(skip);
}

/// The object: maps `start`, `hist`, `stats` and the entry and return
/// programs of the given types; returns (object, hist, stats).
pub fn build(
    entry: ProgramType,
    exit: ProgramType,
    attach_to: Option<&str>,
    pid: Option<u32>,
    unit: Unit,
) -> Result<(Object, MapId, MapId), Error> {
    let mut obj = Object::new();
    let start = obj.add_map(MapSpec::hash("start", 4, 8, 10240))?;
    let hist = obj.add_map(MapSpec::array("hist", 8, SLOTS as u32))?;
    let stats = obj.add_map(MapSpec::array("stats", 8, 2))?;

    // Both programs name the same target, if any.
    let add = |obj: &mut Object, name: &str, ty, a: Asm| -> Result<(), Error> {
        let mut spec = ProgramSpec::new(format!("{PROGRAM_PREFIX}_{name}"), ty, a.finish()?);
        if let Some(t) = attach_to {
            spec = spec.with_attach_to(t);
        }
        obj.add_program_spec(spec)?;
        Ok(())
    };

    let mut a = Asm::new();
    let out = a.new_label();
    pid_tgid(&mut a, pid, out);
    a.call(Helper::KtimeGetNs);
    put_by_thread(&mut a, start, R0);
    a.bind(out);
    a.mov64(R0, 0);
    a.exit();
    add(&mut obj, "entry", entry, a)?;

    let mut a = Asm::new();
    let out = a.new_label();
    pid_tgid(&mut a, pid, out);
    take_by_thread(&mut a, start, out);
    a.call(Helper::KtimeGetNs);
    a.alu64(AluOp::Sub, R0, R8);
    a.mov64(R8, R0); // nanoseconds
    // stats[0] += ns, stats[1] += 1
    a.st(Size::W, R10, -8, 0);
    add_at(&mut a, stats, -8, |a| a.mov64(R1, R8));
    a.st(Size::W, R10, -8, 1);
    add_at(&mut a, stats, -8, |a| a.mov64(R1, 1));
    // slot = floor(log2(v)) + 1 (1 for 0), v in the unit
    if unit.nanos() > 1 {
        a.alu64(AluOp::Div, R8, unit.nanos() as i32);
    }
    a.mov64(R9, 0);
    for bits in [32, 16, 8, 4, 2, 1] {
        let smaller = a.new_label();
        a.mov64(R1, R8);
        a.alu64(AluOp::Rsh, R1, bits);
        a.jmp(JmpOp::Eq, R1, 0, smaller);
        a.mov64(R8, R1);
        a.add64(R9, bits);
        a.bind(smaller);
    }
    a.add64(R9, 1);
    a.stx(Size::W, R10, -8, R9);
    add_at(&mut a, hist, -8, |a| a.mov64(R1, 1));
    a.bind(out);
    a.mov64(R0, 0);
    a.exit();
    add(&mut obj, "exit", exit, a)?;
    Ok((obj, hist, stats))
}

fn entry_exit(loaded: &Loaded) -> (&bpf_builder::handle::Program, &bpf_builder::handle::Program) {
    (
        loaded
            .program_by_name(&format!("{PROGRAM_PREFIX}_entry"))
            .expect("built"),
        loaded
            .program_by_name(&format!("{PROGRAM_PREFIX}_exit"))
            .expect("built"),
    )
}

impl Funclatency {
    /// Loads the programs and attaches them: calls are timed when this
    /// returns. Errors name the function the kernel or file lacks, and
    /// what this kernel cannot do.
    pub fn start(opts: &Options) -> Result<Funclatency, Error> {
        let what = |e: AttachError| format!("cannot trace {}: {e}", opts.target);
        match &opts.target {
            Target::User { path, symbol } => {
                let offset = symbol_offset(path, symbol).map_err(what)?;
                let (obj, hist, stats) = build(
                    ProgramType::Uprobe,
                    ProgramType::Uretprobe,
                    None,
                    opts.pid,
                    opts.unit,
                )?;
                let loaded = obj
                    .load()
                    .map_err(|e| super::load_error("the funclatency programs", e))?;
                let mut popts = ProbeOptions::new();
                if let Some(pid) = opts.pid {
                    popts = popts.pid(pid);
                }
                let (entry, exit) = entry_exit(&loaded);
                let links = [
                    perf_event::uprobe(entry, path, offset, &popts).map_err(what)?,
                    perf_event::uprobe(exit, path, offset, &popts).map_err(what)?,
                ];
                Ok(Funclatency::new(
                    links,
                    loaded,
                    hist,
                    stats,
                    Method::Uprobe,
                    opts.unit,
                ))
            }
            Target::Kernel(func) => {
                let fentry_error = if opts.kprobe {
                    None
                } else {
                    let (obj, hist, stats) = build(
                        ProgramType::Fentry,
                        ProgramType::Fexit,
                        Some(func),
                        opts.pid,
                        opts.unit,
                    )?;
                    match obj.load() {
                        Ok(loaded) => {
                            let (entry, exit) = entry_exit(&loaded);
                            let links = [
                                tracing::attach(entry, 0).map_err(what)?,
                                tracing::attach(exit, 0).map_err(what)?,
                            ];
                            return Ok(Funclatency::new(
                                links,
                                loaded,
                                hist,
                                stats,
                                Method::Fentry,
                                opts.unit,
                            ));
                        }
                        // The kernel's BTF has no such function: no probe
                        // will find it either.
                        Err(e @ LoadError::Target(_)) => {
                            return Err(format!("cannot trace {func}: {e}").into());
                        }
                        Err(e) => Some(e),
                    }
                };
                let (obj, hist, stats) = build(
                    ProgramType::Kprobe,
                    ProgramType::Kretprobe,
                    None,
                    opts.pid,
                    opts.unit,
                )?;
                let loaded = obj
                    .load()
                    .map_err(|e| super::load_error("the funclatency programs", e))?;
                let (entry, exit) = entry_exit(&loaded);
                let popts = ProbeOptions::new();
                let kprobe = |p| perf_event::kprobe(p, func, 0, &popts);
                let links = match (kprobe(entry), fentry_error) {
                    (Ok(l), _) => [l, kprobe(exit).map_err(what)?],
                    (Err(e @ AttachError::KernelTooOld { .. }), Some(fe)) => {
                        return Err(format!(
                            "cannot trace {func}: this kernel has neither BPF trampolines \
                             (fentry: {fe}) nor kprobes ({e})"
                        )
                        .into());
                    }
                    (Err(e), _) => return Err(what(e).into()),
                };
                Ok(Funclatency::new(
                    links,
                    loaded,
                    hist,
                    stats,
                    Method::Kprobe,
                    opts.unit,
                ))
            }
        }
    }

    fn new(
        links: [TraceLink; 2],
        loaded: Loaded,
        hist: MapId,
        stats: MapId,
        method: Method,
        unit: Unit,
    ) -> Funclatency {
        Funclatency {
            _links: links,
            loaded,
            hist,
            stats,
            method,
            unit,
        }
    }

    /// How it traces.
    pub fn method(&self) -> Method {
        self.method
    }

    /// What was measured so far.
    pub fn histogram(&self) -> Result<Histogram, Error> {
        let read = |map: MapId, i: u32| -> Result<u64, Error> {
            let v = self.loaded.map(map).lookup(&i.to_ne_bytes())?;
            Ok(v.map_or(0, |v| {
                u64::from_ne_bytes(v[..8].try_into().unwrap_or([0; 8]))
            }))
        };
        let slots = (0..SLOTS as u32)
            .map(|i| read(self.hist, i))
            .collect::<Result<_, _>>()?;
        Ok(Histogram {
            slots,
            unit: self.unit,
            total_ns: read(self.stats, 0)?,
            count: read(self.stats, 1)?,
        })
    }
}

/// bcc's stars: `val` of `val_max` over `width` characters (rounded
/// down).
fn stars(val: u64, val_max: u64, width: usize) -> String {
    let n = if val_max == 0 {
        0
    } else {
        ((width as u128 * val as u128 / val_max as u128) as usize).min(width)
    };
    "*".repeat(n)
}

/// Prints the histogram as bcc's `print_log2_hist` does, then bcc
/// funclatency's average line.
pub fn print(out: &mut impl Write, h: &Histogram) -> std::io::Result<()> {
    let idx_max = h.slots.iter().rposition(|&v| v > 0).unwrap_or(0);
    let val_max = h.slots.iter().copied().max().unwrap_or(0);
    let wide = idx_max > 32;
    let width = if wide { 20 } else { 40 };
    if idx_max > 0 {
        if wide {
            writeln!(
                out,
                "               {:<29} : count     distribution",
                h.unit.label()
            )?;
        } else {
            writeln!(out, "     {:<19} : count     distribution", h.unit.label())?;
        }
    }
    for i in 1..=idx_max {
        let mut low = (1u128 << i) >> 1;
        let high = (1u128 << i) - 1;
        if low == high {
            low -= 1;
        }
        let val = h.slots[i];
        let s = stars(val, val_max, width);
        if wide {
            writeln!(out, "{low:>20} -> {high:<20} : {val:<8} |{s:<width$}|")?;
        } else {
            writeln!(out, "{low:>10} -> {high:<10} : {val:<8} |{s:<width$}|")?;
        }
    }
    let total = h.total_ns / h.unit.nanos();
    if let Some(avg) = total.checked_div(h.count) {
        let label = h.unit.label();
        writeln!(
            out,
            "\navg = {avg} {label}, total: {total} {label}, count: {}\n",
            h.count
        )?;
    }
    Ok(())
}

/// The command: times FUNC until `-d` or Ctrl-C, prints, detaches.
pub fn main(args: Vec<String>) -> Result<(), Error> {
    let opts = Options::parse(args)?;
    let term = Termination::block()?;
    let tool = Funclatency::start(&opts)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Tracing 1 functions for \"{}\"... Hit Ctrl-C to end.",
        opts.target
    )?;
    out.flush()?;
    super::wait_for_end(&term, opts.duration)?;
    writeln!(out)?;
    print(&mut out, &tool.histogram()?)?;
    drop(tool);
    writeln!(out, "Detaching...")?;
    Ok(())
}
