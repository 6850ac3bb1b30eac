//! `xdpdump`: the packets an XDP program sees, with a tcpdump filter, in
//! the manner of xdp-tools' `xdpdump` (and with the filter its users
//! have asked for since 2023, xdp-tools#455).
//!
//! An fentry program on the XDP program attached to the interface sees
//! each packet before the program runs, an fexit program after it (with
//! the action it returned). Each runs the filter, compiled by `pcap2bpf`
//! into a function over the packet's bytes in kernel memory (the probe
//! target: probe reads within the packet, libpcap's meaning), and sends
//! the packets that match, cut to the snapshot length, through a ring
//! buffer; they are written to a pcap file that tcpdump reads, or
//! listed.
//!
//! ```text
//! xdpdump (-i IFACE | --prog-id ID) [-w FILE] [-s SNAPLEN] [-c COUNT]
//!         [-d SECONDS] [--rx-capture entry,exit] [FILTER...]
//! ```
//!
//! Frames in several buffers (XDP fragments): only the first buffer is
//! seen, as its length.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bpf_builder::asm::Asm;
use bpf_builder::attach::xdp;
use bpf_builder::attach::{Interface, TraceLink, tracing};
use bpf_builder::btf::KernelBtf;
use bpf_builder::btf::kernel::Kind;
use bpf_builder::ctx::tracing_args;
use bpf_builder::handle::Program;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, AtomicOp, JmpOp, Reg::*, Size};
use bpf_builder::kernel_id::KernelProgId;
use bpf_builder::kit::{Frame, read_path};
use bpf_builder::load::Loaded;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{FuncId, MapId, Object, ProgramSpec, ProgramType};
use bpf_builder::ringbuf::RingBuf;
use bpf_builder::sys::bpf as sys;
use bpf_builder::sys::clock::monotonic_ns;
use bpf_builder::sys::signal::Termination;
use pcap2bpf::{CompileOptions, LinkType, Tables, Target, add_probe_filter};
use pcapfile::{PacketRef, PcapWriter};

use super::Error;

/// How to call it.
pub const USAGE: &str = "usage: xdpdump (-i IFACE | --prog-id ID) [-w FILE] [-s SNAPLEN] [-c COUNT]
               [-d SECONDS] [--rx-capture entry,exit] [FILTER...]
Captures the packets the XDP program on IFACE (or program ID) sees that
match FILTER (tcpdump's language), until COUNT packets, SECONDS or Ctrl-C.
  -i IFACE        the XDP program attached to this interface
  --prog-id ID    this XDP program
  -w FILE         write a pcap file (`-` for stdout) instead of a listing
  -s SNAPLEN      bytes kept of each packet (default 4096)
  -c COUNT        stop after COUNT packets
  -d SECONDS      stop after this long
  --rx-capture P  where to capture: entry, exit or entry,exit (default entry)";

/// Default bytes kept of each packet.
pub const DEFAULT_SNAPLEN: u32 = 4096;
/// Largest snapshot length (a ring buffer record holds one packet).
pub const MAX_SNAPLEN: u32 = 65535;
/// The programs' names (in `bpftool prog show`).
pub const PROGRAM_PREFIX: &str = "xdpdump";
/// The filter function's name.
const FILTER_FUNCTION: &str = "xdpdump_filter";

/// A record: timestamp u64, captured length u32, wire length u32, point
/// u32 (0: entry, 1: exit), action u32, then the bytes.
const R_TIME: i16 = 0;
const R_CAPLEN: i16 = 8;
const R_WIRELEN: i16 = 12;
const R_POINT: i16 = 16;
const R_ACTION: i16 = 20;
const R_DATA: i16 = 24;

/// Where a packet is captured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Point {
    /// Before the XDP program runs (fentry).
    Entry,
    /// After it ran (fexit), with the action it returned.
    Exit,
}

/// What to trace: the program on an interface, or a program by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The XDP program attached to this interface.
    Interface(String),
    /// This XDP program.
    ProgId(u32),
}

/// What to capture and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The XDP program.
    pub source: Source,
    /// Write a pcap file here (`-`: stdout) instead of a listing.
    pub write: Option<String>,
    /// Bytes kept of each packet.
    pub snaplen: u32,
    /// Stop after this many packets.
    pub count: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Where to capture.
    pub points: Vec<Point>,
    /// The filter (empty: every packet).
    pub filter: String,
}

impl Options {
    /// Options for `source`: every packet at entry, listed.
    pub fn new(source: Source) -> Options {
        Options {
            source,
            write: None,
            snaplen: DEFAULT_SNAPLEN,
            count: None,
            duration: None,
            points: vec![Point::Entry],
            filter: String::new(),
        }
    }

    /// Parses the command line (without the program name).
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
        let mut source = None;
        let mut o = Options::new(Source::ProgId(0));
        let mut filter = Vec::new();
        let mut args = args.into_iter();
        while let Some(a) = args.next() {
            match a.as_str() {
                "-i" | "--interface" => {
                    source = Some(Source::Interface(super::value(&a, args.next())?))
                }
                "--prog-id" => source = Some(Source::ProgId(super::value(&a, args.next())?)),
                "-w" | "--write" => o.write = Some(super::value(&a, args.next())?),
                "-s" | "--snapshot-length" => {
                    o.snaplen = super::value(&a, args.next())?;
                    if !(1..=MAX_SNAPLEN).contains(&o.snaplen) {
                        return Err(format!("{a}: the snapshot length is 1 to {MAX_SNAPLEN}"));
                    }
                }
                "-c" | "--count" => o.count = Some(super::value(&a, args.next())?),
                "-d" | "--duration" => o.duration = Some(super::seconds(&a, args.next())?),
                "--rx-capture" => {
                    let v: String = super::value(&a, args.next())?;
                    o.points = parse_points(&v)
                        .ok_or_else(|| format!("{a}: `{v}` is not entry, exit or entry,exit"))?;
                }
                "-h" | "--help" => return Err(USAGE.to_string()),
                s if s.starts_with('-') && filter.is_empty() => {
                    return Err(format!("unknown argument `{a}`\n{USAGE}"));
                }
                _ => filter.push(a),
            }
        }
        o.source = source.ok_or_else(|| format!("-i IFACE or --prog-id ID is needed\n{USAGE}"))?;
        o.filter = filter.join(" ");
        Ok(o)
    }
}

/// `entry`, `exit` or both, comma-separated.
fn parse_points(v: &str) -> Option<Vec<Point>> {
    let mut points = Vec::new();
    for p in v.split(',') {
        let p = match p {
            "entry" => Point::Entry,
            "exit" => Point::Exit,
            _ => return None,
        };
        if !points.contains(&p) {
            points.push(p);
        }
    }
    Some(points)
}

/// One packet captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Nanoseconds since the Unix epoch.
    pub time_ns: u64,
    /// Where it was captured.
    pub point: Point,
    /// The XDP action the program returned (at exit).
    pub action: Option<u32>,
    /// The packet's length.
    pub wire_len: u32,
    /// Its first bytes, up to the snapshot length.
    pub data: Vec<u8>,
}

/// The XDP program `source` names, and its kernel id.
pub fn xdp_program(source: &Source) -> Result<(Program, KernelProgId), Error> {
    let id = match source {
        Source::ProgId(id) => KernelProgId::new(*id),
        Source::Interface(name) => {
            let q = xdp::query(Interface::from(name.as_str()))
                .map_err(|e| format!("cannot query the XDP programs of {name}: {e}"))?;
            q.program(xdp::XdpMode::Auto)
                .ok_or_else(|| format!("{name} has no XDP program attached"))?
        }
    };
    let fd = sys::prog_get_fd_by_id(id)
        .map_err(|e| format!("no BPF program with id {}: {e}", id.get()))?;
    let prog = Program::from_fd(fd)?;
    let info = prog.info()?;
    if info.prog_type != sys::bpf_prog_type::BPF_PROG_TYPE_XDP as u32 {
        return Err(format!(
            "program {} (`{}`) is not an XDP program",
            id.get(),
            info.name
        )
        .into());
    }
    Ok((prog, id))
}

/// Offsets of `xdp_buff.data` and `data_end` read by [`read_path`].
struct XdpBuff {
    btf: KernelBtf,
    ty: bpf_builder::btf::TypeId,
}

impl XdpBuff {
    fn new() -> Result<XdpBuff, Error> {
        let btf = KernelBtf::vmlinux()?;
        let ty = btf
            .type_by_name("xdp_buff", Kind::Struct)
            .ok_or("the kernel's BTF has no struct xdp_buff")?;
        Ok(XdpBuff { btf, ty })
    }
}

/// The program of one capture point: reads the packet's bounds from the
/// `xdp_buff`, runs the filter, and sends a match (and the action, at
/// exit) through `events`, counting in `lost` what the full ring buffer
/// refused.
fn capture_program(
    buff: &XdpBuff,
    filter: FuncId,
    events: MapId,
    lost: MapId,
    point: Point,
    snaplen: u32,
) -> Result<bpf_builder::asm::Code, Error> {
    let mut frame = Frame::new();
    let tmp = frame.alloc(8, 8)?;
    let action = frame.alloc(8, 8)?;
    let key = frame.alloc(4, 4)?;
    let mut a = Asm::new();
    let out = a.new_label();
    a.mov64(R6, R1);
    if point == Point::Exit {
        // The XDP program has one argument; its result follows it.
        a.ldx(Size::DW, R1, R6, tracing_args::ret(1));
        a.stx(Size::DW, R10, action.off(), R1);
    }
    // r8 = xdp->data, r9 = xdp->data_end - xdp->data.
    a.ldx(Size::DW, R9, R6, tracing_args::arg(0));
    read_path(&mut a, &buff.btf, buff.ty, "data", R9, &tmp, R8)?;
    a.ldx(Size::DW, R9, R6, tracing_args::arg(0));
    read_path(&mut a, &buff.btf, buff.ty, "data_end", R9, &tmp, R9)?;
    a.jmp(JmpOp::Eq, R8, 0, out);
    a.jmp(JmpOp::Le, R9, R8, out);
    a.alu64(AluOp::Sub, R9, R8);
    a.jmp(JmpOp::Gt, R9, i32::MAX, out);
    a.mov64(R1, R8);
    a.mov64(R2, R9);
    a.mov64(R3, R9);
    a.call_func(filter);
    a.jmp(JmpOp::Eq, R0, 0, out);
    // The record.
    let reserved = a.new_label();
    a.ld_map_fd(R1, events);
    a.mov64(R2, R_DATA as i32 + snaplen as i32);
    a.mov64(R3, 0);
    a.call(Helper::RingbufReserve);
    a.jmp(JmpOp::Ne, R0, 0, reserved);
    // Full: count it.
    a.st(Size::W, R10, key.off(), 0);
    a.ld_map_fd(R1, lost);
    a.mov64(R2, R10);
    a.add64(R2, i32::from(key.off()));
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, out);
    a.mov64(R1, 1);
    a.atomic(AtomicOp::Add, Size::DW, R0, 0, R1);
    a.ja(out);
    a.bind(reserved);
    a.mov64(R7, R0);
    a.call(Helper::KtimeGetNs);
    a.stx(Size::DW, R7, R_TIME, R0);
    a.stx(Size::W, R7, R_WIRELEN, R9);
    a.st(Size::W, R7, R_POINT, i32::from(point == Point::Exit));
    if point == Point::Exit {
        a.ldx(Size::DW, R1, R10, action.off());
    } else {
        a.mov64(R1, 0);
    }
    a.stx(Size::W, R7, R_ACTION, R1);
    let short = a.new_label();
    a.mov64(R2, R9);
    a.jmp(JmpOp::Le, R2, snaplen as i32, short);
    a.mov64(R2, snaplen as i32);
    a.bind(short);
    a.stx(Size::W, R7, R_CAPLEN, R2);
    a.mov64(R1, R7);
    a.add64(R1, i32::from(R_DATA));
    a.mov64(R3, R8);
    a.call(Helper::ProbeReadKernel);
    // A failed read zeroes the bytes: say none were captured.
    let copied = a.new_label();
    a.jmp(JmpOp::Eq, R0, 0, copied);
    a.st(Size::W, R7, R_CAPLEN, 0);
    a.bind(copied);
    a.mov64(R1, R7);
    a.mov64(R2, 0);
    a.call(Helper::RingbufSubmit);
    a.bind(out);
    a.mov64(R0, 0);
    a.exit();
    Ok(a.finish()?)
}

/// The object: the filter's function and one tracing program per point,
/// against `target`.
pub fn build(opts: &Options, target: &Program) -> Result<Object, Error> {
    let buff = XdpBuff::new()?;
    let tables = Tables::system();
    let mut obj = Object::new();
    let copts = CompileOptions::new(LinkType::En10mb, Target::Probe, &tables);
    let filter = add_probe_filter(&mut obj, &opts.filter, &copts, FILTER_FUNCTION)
        .map_err(|e| format!("filter: {}", e.render(&opts.filter)))?;
    let events = obj.add_map(MapSpec::ring_buf("events", 1 << 22))?;
    let lost = obj.add_map(MapSpec::array("lost", 8, 1))?;
    for &point in &opts.points {
        let code = capture_program(&buff, filter.function, events, lost, point, opts.snaplen)?;
        let (name, ty) = match point {
            Point::Entry => (format!("{PROGRAM_PREFIX}_in"), ProgramType::Fentry),
            Point::Exit => (format!("{PROGRAM_PREFIX}_out"), ProgramType::Fexit),
        };
        obj.add_program_spec(ProgramSpec::new(name, ty, code).with_traced_program(target)?)?;
    }
    Ok(obj)
}

/// The programs, loaded and attached, and the reader of their ring
/// buffer; dropping it detaches and unloads everything.
#[derive(Debug)]
pub struct Xdpdump {
    // Dropped first: the links, then the reader, programs and maps.
    _links: Vec<TraceLink>,
    ring: RingBuf,
    loaded: Loaded,
    /// Realtime minus monotonic nanoseconds, for the timestamps.
    epoch_offset: u64,
}

impl Xdpdump {
    /// Loads the programs against the XDP program and attaches them:
    /// packets are captured when this returns.
    pub fn start(opts: &Options) -> Result<Xdpdump, Error> {
        let (target, id) = xdp_program(&opts.source)?;
        if opts.points.is_empty() {
            return Err("no capture point".into());
        }
        let obj = build(opts, &target)?;
        let loaded = obj
            .load()
            .map_err(|e| super::load_error("the xdpdump programs", e))?;
        let mut links = Vec::new();
        for (_, prog) in loaded.programs() {
            let link = tracing::attach(prog, 0).map_err(|e| {
                format!(
                    "cannot attach {} to XDP program {}: {e}",
                    prog.name(),
                    id.get()
                )
            })?;
            links.push(link);
        }
        let events = loaded.map_by_name("events").ok_or("no events map")?;
        let ring = RingBuf::new(events)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos() as u64;
        Ok(Xdpdump {
            _links: links,
            ring,
            loaded,
            epoch_offset: now.saturating_sub(monotonic_ns()?),
        })
    }

    /// Hands `f` every packet captured so far, waiting up to `timeout`
    /// for the first; returns how many.
    pub fn poll(&mut self, timeout: Duration, mut f: impl FnMut(Captured)) -> Result<usize, Error> {
        let deadline = Instant::now() + timeout;
        let offset = self.epoch_offset;
        let mut n = 0;
        loop {
            n += self.ring.drain(|r| {
                if let Some(c) = parse(r, offset) {
                    f(c);
                }
            })?;
            let left = deadline.saturating_duration_since(Instant::now());
            if n > 0 || left.is_zero() {
                return Ok(n);
            }
            self.ring.wait(Some(left))?;
        }
    }

    /// Packets that matched but found the ring buffer full.
    pub fn lost(&self) -> Result<u64, Error> {
        let map = self.loaded.map_by_name("lost").ok_or("no lost map")?;
        let v = map.lookup(&0u32.to_ne_bytes())?.unwrap_or_default();
        Ok(v.get(..8)
            .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes"))))
    }
}

/// A record as a [`Captured`]; `offset` turns its monotonic time into
/// the wall clock's.
fn parse(r: &[u8], offset: u64) -> Option<Captured> {
    let u32_at = |o: i16| {
        Some(u32::from_ne_bytes(
            r.get(o as usize..o as usize + 4)?.try_into().ok()?,
        ))
    };
    let time = u64::from_ne_bytes(r.get(..8)?.try_into().ok()?);
    let caplen = u32_at(R_CAPLEN)? as usize;
    let point = if u32_at(R_POINT)? == 1 {
        Point::Exit
    } else {
        Point::Entry
    };
    Some(Captured {
        time_ns: time + offset,
        point,
        action: (point == Point::Exit).then(|| u32_at(R_ACTION)).flatten(),
        wire_len: u32_at(R_WIRELEN)?,
        data: r.get(R_DATA as usize..R_DATA as usize + caplen)?.to_vec(),
    })
}

/// The name of an XDP action.
pub fn action_name(action: u32) -> String {
    match action {
        0 => "XDP_ABORTED".into(),
        1 => "XDP_DROP".into(),
        2 => "XDP_PASS".into(),
        3 => "XDP_TX".into(),
        4 => "XDP_REDIRECT".into(),
        n => format!("action {n}"),
    }
}

/// One line of the listing: time, point (and action), lengths.
pub fn line(c: &Captured) -> String {
    let s = c.time_ns / 1_000_000_000 % 86400;
    let point = match (c.point, c.action) {
        (Point::Exit, Some(a)) => format!("exit[{}]", action_name(a)),
        (Point::Exit, None) => "exit".into(),
        (Point::Entry, _) => "entry".into(),
    };
    format!(
        "{:02}:{:02}:{:02}.{:06} {point}: packet size {} bytes, captured {} bytes",
        s / 3600,
        s / 60 % 60,
        s % 60,
        c.time_ns % 1_000_000_000 / 1000,
        c.wire_len,
        c.data.len()
    )
}

/// Where the packets go.
enum Output {
    Listing(std::io::StdoutLock<'static>),
    Pcap(PcapWriter<BufWriter<Box<dyn Write>>>),
}

impl Output {
    fn open(opts: &Options) -> Result<Output, Error> {
        Ok(match opts.write.as_deref() {
            None => Output::Listing(std::io::stdout().lock()),
            Some(path) => {
                let w: Box<dyn Write> = if path == "-" {
                    Box::new(std::io::stdout().lock())
                } else {
                    Box::new(File::create(path).map_err(|e| format!("{path}: {e}"))?)
                };
                Output::Pcap(PcapWriter::new(BufWriter::new(w), 1, opts.snaplen)?)
            }
        })
    }

    fn write(&mut self, c: &Captured) -> std::io::Result<()> {
        match self {
            Output::Listing(out) => writeln!(out, "{}", line(c)),
            Output::Pcap(w) => w.write_ref(PacketRef {
                ts_sec: c.time_ns / 1_000_000_000,
                ts_nsec: (c.time_ns % 1_000_000_000) as u32,
                data: &c.data,
                wire_len: c.wire_len,
            }),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Listing(out) => out.flush(),
            Output::Pcap(_) => Ok(()),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Output::Listing(mut out) => out.flush(),
            Output::Pcap(w) => w.finish(),
        }
    }
}

/// The command: captures until `-c`, `-d` or Ctrl-C, then detaches and
/// says how many packets it captured (and lost) on stderr.
pub fn main(args: Vec<String>) -> Result<(), Error> {
    let opts = Options::parse(args)?;
    let term = Termination::block()?;
    let mut tool = Xdpdump::start(&opts)?;
    let mut output = Output::open(&opts)?;
    eprintln!(
        "xdpdump: capturing {} (filter `{}`)",
        match &opts.source {
            Source::Interface(i) => format!("the XDP program on {i}"),
            Source::ProgId(id) => format!("XDP program {id}"),
        },
        opts.filter
    );
    let end = opts.duration.map(|d| Instant::now() + d);
    let mut captured = 0u64;
    let full = |n: u64| opts.count.is_some_and(|c| n >= c);
    loop {
        let mut failed = None;
        tool.poll(Duration::from_millis(100), |c| {
            if full(captured) {
                return;
            }
            match output.write(&c) {
                Ok(()) => captured += 1,
                Err(e) => failed = Some(e),
            }
        })?;
        if let Some(e) = failed {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
        output.flush()?;
        if full(captured) || term.requested()? || end.is_some_and(|t| Instant::now() >= t) {
            break;
        }
    }
    output.finish()?;
    eprintln!(
        "xdpdump: {captured} packets captured, {} lost",
        tool.lost()?
    );
    Ok(())
}
