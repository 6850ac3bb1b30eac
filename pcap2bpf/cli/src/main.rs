//! `pcap2bpf`: compile tcpdump filter expressions to eBPF, run them over
//! captures, and attach them to network devices.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};

use pcap2bpf::engine::{Engine, Frame, RunOptions, Runner};
use pcap2bpf::{CompileOptions, LinkType, Tables, Target, compile, text};
use pcap2bpf_cli::deploy::{self, Action, DeviceNetns, Hook, Membership, Position, Request};
use pcap2bpf_cli::emit::{self, Format};
use pcap2bpf_cli::summary;
use pcapfile::{self as capture, PacketReader};

#[derive(Parser)]
#[command(
    name = "pcap2bpf",
    version,
    about = "tcpdump filter expressions to eBPF, with libpcap's meaning"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compile an expression and print or write the program.
    Compile(CompileArgs),
    /// Run an expression over every packet of a pcap or pcapng file.
    Run(RunArgs),
    /// Attach an expression to a device (pinned: it outlives the command).
    Attach(AttachArgs),
    /// List the filters `attach` attached, with their counters.
    Status,
    /// Detach filters attached by `attach`.
    Detach(DetachArgs),
}

/// The expression: words joined by spaces as tcpdump joins them, or a file.
#[derive(Args)]
struct ExprArgs {
    /// Read the expression from FILE (the words are then not allowed): at
    /// most 1 MiB; `#` starts a comment to the end of the line, as with
    /// tcpdump.
    #[arg(short = 'F', value_name = "FILE")]
    file: Option<std::path::PathBuf>,
    /// The filter expression (an empty expression matches every packet).
    /// Options may come before or after its words, as with tcpdump; after
    /// `--`, every word is the expression's.
    #[arg(value_name = "EXPRESSION", allow_negative_numbers = true)]
    words: Vec<String>,
}

impl ExprArgs {
    fn text(&self) -> Result<String, String> {
        match &self.file {
            Some(_) if !self.words.is_empty() => {
                Err("give the expression either with -F or as words, not both".into())
            }
            Some(f) => read_filter_file(f),
            None => Ok(self.words.join(" ")),
        }
    }
}

/// The longest filter file `-F` reads: far more than any filter needs,
/// and a bound on what a hostile or mistaken file (`-F /dev/zero`) costs.
const FILTER_FILE_LIMIT: u64 = 1024 * 1024;

/// The expression in the filter file `f`, as tcpdump reads it (its
/// `read_infile`): every comment, from `#` to the end of its line, becomes
/// spaces (so that carets still point into the file's text), and the
/// lines are the words of one expression. At most [`FILTER_FILE_LIMIT`]
/// bytes are read.
fn read_filter_file(f: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let fail = |e: &dyn std::fmt::Display| format!("{}: {e}", f.display());
    let mut bytes = Vec::new();
    std::fs::File::open(f)
        .and_then(|file| file.take(FILTER_FILE_LIMIT + 1).read_to_end(&mut bytes))
        .map_err(|e| fail(&e))?;
    if bytes.len() as u64 > FILTER_FILE_LIMIT {
        return Err(fail(&"more than 1 MiB; a filter file this long is refused"));
    }
    let text = String::from_utf8(bytes).map_err(|_| fail(&"not UTF-8 text"))?;
    Ok(strip_comments(&text).trim_end().to_string())
}

/// `text` with every comment (`#` to the end of its line) turned into as
/// many spaces, as tcpdump's `read_infile` does.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match line.find('#') {
            Some(at) => {
                out.push_str(&line[..at]);
                out.extend(std::iter::repeat_n(' ', line[at..].chars().count()));
            }
            None => out.push_str(line),
        }
    }
    out
}

#[derive(Clone, Copy, ValueEnum)]
enum TargetArg {
    Xdp,
    Tc,
    Socket,
    /// A function over packet bytes in kernel memory, for tracing
    /// programs (its program: a raw tracepoint passing it its first three
    /// arguments: address, captured length, wire length).
    Probe,
}

#[derive(Clone, Copy, ValueEnum)]
enum LinkArg {
    En10mb,
    Raw,
    LinuxSll,
    LinuxSll2,
}

#[derive(Clone, Copy, ValueEnum)]
enum EmitArg {
    Asm,
    Json,
    Bytes,
    C,
    Rust,
    Elf,
    // The text of the IR, optimised or as lowered.
    Ir,
    IrLowered,
}

#[derive(Args)]
struct CompileArgs {
    /// Program type.
    #[arg(long, value_enum, default_value = "xdp")]
    target: TargetArg,
    /// Link type of the packets.
    #[arg(long, value_enum, default_value = "en10mb")]
    linktype: LinkArg,
    /// Output format.
    #[arg(long, value_enum, default_value = "asm")]
    emit: EmitArg,
    /// XDP: declare fragment support (`xdp.frags`), for devices whose MTU
    /// needs several buffers per frame.
    #[arg(long)]
    xdp_frags: bool,
    /// Write the output to FILE instead of standard output.
    #[arg(short = 'o', value_name = "FILE")]
    output: Option<std::path::PathBuf>,
    /// Print one JSON line of statistics (`insns`, `compile_ns`, ...) on
    /// standard output instead of the program (still written with -o).
    #[arg(long)]
    stats: bool,
    /// Compile N times; `compile_ns` is then the median.
    #[arg(long, value_name = "N", default_value_t = 1)]
    repeat: u32,
    #[command(flatten)]
    modes: ModeArgs,
    #[command(flatten)]
    expr: ExprArgs,
}

/// The opt-in modes libpcap lacks (both off by default).
#[derive(Args, Clone, Copy)]
struct ModeArgs {
    /// On IPv6, walk the extension headers (hop-by-hop, destination
    /// options, routing, fragment, AH) before `tcp`, `udp`, `sctp`,
    /// `icmp6`, `proto N` and port tests, as `ip6 protochain` does (at
    /// most 8 headers), and read ports where the walk stopped. Without
    /// it, libpcap's meaning: the next header must be the protocol.
    #[arg(long)]
    ipv6_ext_headers: bool,
    /// Look through one or two VLAN tags (802.1Q, 802.1ad, 0x9100) for
    /// every layer-3 and layer-4 primitive: `X` means libpcap's
    /// `X or (vlan and (X or (vlan and X)))` (X untagged, after one tag or
    /// after two), the tags shifting `X` only. Ethernet only; primitives
    /// after `vlan`, `mpls`, `pppoes` or `geneve` keep libpcap's meaning.
    #[arg(long)]
    vlan_any: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum EngineArg {
    Auto,
    Compiled,
    Kernel,
    Interp,
}

#[derive(Args)]
struct RunArgs {
    /// The capture to read (pcap or pcapng); `-` reads standard input.
    #[arg(short = 'r', value_name = "FILE")]
    read: std::path::PathBuf,
    /// Print only the number of matching packets.
    #[arg(long)]
    count: bool,
    /// Print `1` or `0` for every packet, in order, and nothing else.
    #[arg(long, conflicts_with = "count")]
    verdicts: bool,
    /// Write the matching packets to FILE as a pcap file (`-` for
    /// standard output) instead of printing them, as `tcpdump -w` does:
    /// the capture's link type and snapshot length kept.
    #[arg(short = 'w', value_name = "FILE", conflicts_with = "verdicts")]
    write: Option<std::path::PathBuf>,
    /// Stop after N matching packets, as `tcpdump -c N` does.
    #[arg(short = 'c', value_name = "N")]
    max_matches: Option<u64>,
    /// Accepted for tcpdump's habits: addresses and ports always print as
    /// numbers.
    #[arg(short = 'n')]
    numeric: bool,
    /// Where the filter runs: compiled (the filter's IR turned into Rust
    /// closures once, run in this process: the fastest, exact, no
    /// privilege needed), kernel (the generated eBPF, BPF_PROG_TEST_RUN in batches
    /// of 32) or interp (the generated eBPF in the built-in checking
    /// interpreter); auto is compiled.
    #[arg(long, value_enum, default_value = "auto")]
    engine: EngineArg,
    #[command(flatten)]
    modes: ModeArgs,
    #[command(flatten)]
    expr: ExprArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum HookArg {
    Xdp,
    TcxIngress,
    TcxEgress,
}

#[derive(Clone, Copy, ValueEnum)]
enum ActionArg {
    Drop,
    Pass,
    Count,
}

#[derive(Args)]
struct AttachArgs {
    /// The device.
    #[arg(short = 'i', value_name = "IFACE")]
    iface: String,
    /// The hook.
    #[arg(long, value_enum, default_value = "xdp")]
    hook: HookArg,
    /// What to do with matching packets.
    #[arg(long, value_enum, default_value = "count")]
    action: ActionArg,
    /// Name of the filter (default: derived from the device and hook).
    #[arg(long)]
    name: Option<String>,
    /// XDP: share the device with other XDP programs through a dispatcher
    /// in libxdp's protocol (xdp-loader's): join the device's dispatcher,
    /// creating one when the device has no XDP program. Without it, an
    /// XDP filter joins a dispatcher the device has, and otherwise
    /// attaches alone. The kernel must load extension programs
    /// (freplace).
    #[arg(long)]
    share: bool,
    /// Put the filter first in the tcx chain or XDP dispatcher (XDP:
    /// implies --share).
    #[arg(long, conflicts_with_all = ["before", "after", "priority"])]
    first: bool,
    /// Put the filter right before the filter (or program) NAME in the tcx
    /// chain or XDP dispatcher (XDP: implies --share).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["after", "priority"])]
    before: Option<String>,
    /// Put the filter right after the filter (or program) NAME in the tcx
    /// chain or XDP dispatcher (XDP: implies --share).
    #[arg(long, value_name = "NAME", conflicts_with = "priority")]
    after: Option<String>,
    /// XDP: place the filter in the dispatcher by run priority N, as
    /// libxdp does (lower runs first; libxdp's default is 50). Implies
    /// --share.
    #[arg(long, value_name = "N")]
    priority: Option<u32>,
    #[command(flatten)]
    modes: ModeArgs,
    #[command(flatten)]
    expr: ExprArgs,
}

#[derive(Args)]
struct DetachArgs {
    /// Names of the filters to detach.
    names: Vec<String>,
    /// Detach every filter `attach` attached.
    #[arg(long, conflicts_with = "names")]
    all: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Compile(a) => cmd_compile(a),
        Command::Run(a) => cmd_run(a),
        Command::Attach(a) => cmd_attach(a),
        Command::Status => cmd_status(),
        Command::Detach(a) => cmd_detach(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            report(&msg);
            ExitCode::FAILURE
        }
    }
}

/// Prints an error or warning: every line prefixed with `pcap2bpf: ` (the
/// one place that adds it) and escaped (see [`text::escape`]), since
/// messages quote names from outside.
fn report(msg: &str) {
    let mut err = std::io::stderr().lock();
    for line in msg.trim_end().lines() {
        let _ = writeln!(err, "pcap2bpf: {}", text::escape(line));
    }
}

/// Renders a compile error with the expression and a caret.
fn compile_error(e: &pcap2bpf::CompileError, expr: &str) -> String {
    e.render(expr)
}

fn cmd_compile(a: CompileArgs) -> Result<(), String> {
    let expr = a.expr.text()?;
    let tables = Tables::system();
    let target = match a.target {
        TargetArg::Xdp => Target::Xdp,
        TargetArg::Tc => Target::Tc,
        TargetArg::Socket => Target::SocketFilter,
        TargetArg::Probe => Target::Probe,
    };
    let link = match a.linktype {
        LinkArg::En10mb => LinkType::En10mb,
        LinkArg::Raw => LinkType::Raw,
        LinkArg::LinuxSll => LinkType::LinuxSll,
        LinkArg::LinuxSll2 => LinkType::LinuxSll2,
    };
    // The target's usual verdicts: XDP_PASS/XDP_DROP, TC_ACT_OK/TC_ACT_SHOT,
    // 256 KiB/nothing for socket filters, 1/0 for the probe target.
    let opts = CompileOptions::new(link, target, &tables)
        .xdp_frags(a.xdp_frags)
        .ipv6_ext_headers(a.modes.ipv6_ext_headers)
        .vlan_any(a.modes.vlan_any);
    if a.xdp_frags && target != Target::Xdp {
        return Err("--xdp-frags is for --target xdp".into());
    }
    let mut times = Vec::with_capacity(a.repeat.max(1) as usize);
    let mut compiled = None;
    for _ in 0..a.repeat.max(1) {
        let t = Instant::now();
        let c = compile(&expr, &opts).map_err(|e| compile_error(&e, &expr))?;
        times.push(t.elapsed().as_nanos() as u64);
        compiled = Some(c);
    }
    let compiled = compiled.expect("compiled at least once");
    for w in &compiled.warnings {
        report(&format!("warning: {w}"));
    }
    let format = match a.emit {
        EmitArg::Asm => Format::Asm,
        EmitArg::Json => Format::Json,
        EmitArg::Bytes => Format::Bytes,
        EmitArg::C => Format::C,
        EmitArg::Rust => Format::Rust,
        EmitArg::Elf => Format::Elf,
        EmitArg::Ir | EmitArg::IrLowered => Format::Ir,
    };
    // `--stats` without `-o` prints no program: none is rendered.
    if a.output.is_some() || !a.stats {
        let out = match a.emit {
            EmitArg::IrLowered => emit::lowered_ir(&expr, &opts)
                .map_err(|e| compile_error(&e, &expr))?
                .into_bytes(),
            _ => emit::render(&compiled, &expr, format)?,
        };
        match &a.output {
            Some(path) => {
                std::fs::write(path, &out).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => std::io::stdout()
                .write_all(&out)
                .map_err(|e| e.to_string())?,
        }
    }
    if a.stats {
        times.sort_unstable();
        let insns = emit::instructions(&compiled).len();
        println!(
            "{{\"expression\":{},\"insns\":{insns},\"compile_ns\":{},\"repeat\":{},\"ir_blocks\":{}}}",
            emit::json_string(&expr),
            times[times.len() / 2],
            times.len(),
            compiled.ir_blocks
        );
    }
    Ok(())
}

/// Packets `run` hands to the kernel engine at once (it runs them in
/// batches of test runs).
const RUN_CHUNK: usize = 1024;

/// What `run` does with each packet and its verdict, in order.
struct Sink<'a> {
    link: LinkType,
    count: bool,
    verdicts: bool,
    max_matches: Option<u64>,
    matches: u64,
    dump: Option<capture::PcapWriter<Box<dyn Write>>>,
    out: std::io::BufWriter<std::io::StdoutLock<'a>>,
}

impl Sink<'_> {
    /// Handles `p`; `false` when no more packets are wanted (`-c`
    /// reached, as tcpdump stops right after its last match).
    fn packet(&mut self, p: capture::PacketRef<'_>, hit: bool) -> Result<bool, String> {
        self.matches += u64::from(hit);
        if let (true, Some(w)) = (hit, &mut self.dump) {
            w.write_ref(p)
                .map_err(|e| format!("writing the matching packets: {e}"))?;
        } else if self.verdicts {
            writeln!(self.out, "{}", u8::from(hit)).map_err(|e| e.to_string())?;
        } else if hit && !self.count {
            writeln!(self.out, "{}", summary::summary(self.link, p)).map_err(|e| e.to_string())?;
        }
        Ok(self.max_matches != Some(self.matches))
    }
}

/// Packets copied out of the reader's buffer for the kernel engine,
/// which takes them a chunk at a time: one arena of bytes, reused.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    /// Each packet's `(start, end)` in `bytes`, timestamp and wire length.
    packets: Vec<(usize, usize, u64, u32, u32)>,
}

impl Chunk {
    /// Fills the chunk with up to [`RUN_CHUNK`] packets; the read error
    /// that ended it early, if any.
    fn fill(&mut self, reader: &mut PacketReader<'_>) -> Option<String> {
        self.bytes.clear();
        self.packets.clear();
        while self.packets.len() < RUN_CHUNK {
            match reader.next_ref()? {
                Ok(p) => {
                    let start = self.bytes.len();
                    self.bytes.extend_from_slice(p.data);
                    let end = self.bytes.len();
                    self.packets
                        .push((start, end, p.ts_sec, p.ts_nsec, p.wire_len));
                }
                Err(e) => return Some(e.to_string()),
            }
        }
        None
    }

    fn packet(&self, i: usize) -> capture::PacketRef<'_> {
        let (start, end, ts_sec, ts_nsec, wire_len) = self.packets[i];
        capture::PacketRef {
            ts_sec,
            ts_nsec,
            data: &self.bytes[start..end],
            wire_len,
        }
    }
}

fn cmd_run(a: RunArgs) -> Result<(), String> {
    let expr = a.expr.text()?;
    let mut reader = if a.read.as_os_str() == "-" {
        PacketReader::new(std::io::stdin().lock(), "standard input")
    } else {
        PacketReader::open(&a.read)
    }
    .map_err(|e| e.to_string())?;
    let link_value = reader.link();
    let link = LinkType::from_linktype(link_value).ok_or_else(|| {
        format!(
            "{}: unsupported link type {} ({})",
            a.read.display(),
            link_value,
            capture::linktype_name(link_value)
        )
    })?;
    let engine = match a.engine {
        EngineArg::Auto => Engine::Auto,
        EngineArg::Compiled => Engine::Compiled,
        EngineArg::Kernel => Engine::Kernel,
        EngineArg::Interp => Engine::Interp,
    };
    let tables = Tables::system();
    let opts = RunOptions::new(link, &tables)
        .engine(engine)
        .ipv6_ext_headers(a.modes.ipv6_ext_headers)
        .vlan_any(a.modes.vlan_any);
    let mut runner = Runner::new(&expr, &opts).map_err(|e| match e {
        pcap2bpf::engine::EngineError::Compile(c) => compile_error(&c, &expr),
        other => other.to_string(),
    })?;
    for w in runner.warnings() {
        report(&format!("warning: {w}"));
    }
    // `-n` changes nothing: numbers are all `run` prints.
    let _ = a.numeric;
    if a.count && a.write.as_ref().is_some_and(|w| w.as_os_str() == "-") {
        return Err("--count and `-w -` would both write to standard output".into());
    }
    let dump = match &a.write {
        None => None,
        Some(path) => {
            let file: Box<dyn Write> = if path.as_os_str() == "-" {
                Box::new(std::io::stdout())
            } else {
                Box::new(
                    std::fs::File::create(path)
                        .map_err(|e| format!("cannot create {}: {e}", path.display()))?,
                )
            };
            let w = capture::PcapWriter::new(file, link_value, reader.snaplen());
            Some(w.map_err(|e| format!("cannot write {}: {e}", path.display()))?)
        }
    };
    let stdout = std::io::stdout();
    let mut sink = Sink {
        link,
        count: a.count,
        verdicts: a.verdicts,
        max_matches: a.max_matches,
        matches: 0,
        dump,
        out: std::io::BufWriter::new(stdout.lock()),
    };
    // A capture cut short (a copy still being written) ends the run as
    // tcpdump ends it: what was read is reported, then the error.
    let mut read_error = None;
    let mut more = sink.max_matches != Some(0);
    if runner.engine() == Engine::Kernel {
        let mut chunk = Chunk::default();
        while more && read_error.is_none() {
            read_error = chunk.fill(&mut reader);
            if chunk.packets.is_empty() {
                break;
            }
            let frames: Vec<Frame<'_>> = (0..chunk.packets.len())
                .map(|i| {
                    let p = chunk.packet(i);
                    Frame::new(p.data, p.wire_len)
                })
                .collect();
            let hits = runner.matches_all(&frames).map_err(|e| e.to_string())?;
            for (i, &hit) in hits.iter().enumerate() {
                more = sink.packet(chunk.packet(i), hit)?;
                if !more {
                    break;
                }
            }
        }
    } else {
        // One packet at a time, lent by the reader: no copy, no
        // allocation.
        while more {
            let p = match reader.next_ref() {
                None => break,
                Some(Ok(p)) => p,
                Some(Err(e)) => {
                    read_error = Some(e.to_string());
                    break;
                }
            };
            let hit = runner
                .matches(Frame::new(p.data, p.wire_len))
                .map_err(|e| e.to_string())?;
            more = sink.packet(p, hit)?;
        }
    }
    let Sink {
        dump,
        mut out,
        matches,
        ..
    } = sink;
    if let Some(w) = dump {
        w.finish()
            .map_err(|e| format!("writing the matching packets: {e}"))?;
    }
    if a.count {
        writeln!(out, "{matches}").map_err(|e| e.to_string())?;
    }
    out.flush().map_err(|e| e.to_string())?;
    // What libpcap reads without a word but looks wrong (records cut to
    // the snapshot length, a first section header's bad trailer).
    for w in reader.warnings() {
        report(&format!("warning: {w}"));
    }
    if runner.interp_fallbacks() > 0 {
        report(&format!(
            "{} packets longer than one kernel test run takes were run by the interpreter",
            runner.interp_fallbacks()
        ));
    }
    read_error.map_or(Ok(()), Err)
}

fn cmd_attach(a: AttachArgs) -> Result<(), String> {
    let expr = a.expr.text()?;
    let hook = match a.hook {
        HookArg::Xdp => Hook::Xdp,
        HookArg::TcxIngress => Hook::TcxIngress,
        HookArg::TcxEgress => Hook::TcxEgress,
    };
    let position = match (a.first, a.before, a.after, a.priority) {
        (true, ..) => Position::First,
        (_, Some(n), ..) => Position::Before(n),
        (_, _, Some(n), _) => Position::After(n),
        (.., Some(p)) => Position::Priority(p),
        _ => Position::Last,
    };
    if hook != Hook::Xdp && a.share {
        return Err("--share is for --hook xdp: tcx chains are shared as they are".into());
    }
    if hook != Hook::Xdp && a.priority.is_some() {
        return Err(
            "--priority places XDP filters in a dispatcher; tcx chains are ordered by \
             --first, --before and --after"
                .into(),
        );
    }
    // Only a dispatcher orders XDP programs: asking for a place asks to
    // share.
    let share = hook == Hook::Xdp && (a.share || position != Position::Last);
    let name = a.name.unwrap_or_else(|| default_name(&a.iface, hook));
    let tables = Tables::system();
    let req = Request {
        iface: &a.iface,
        expr: &expr,
        hook,
        action: match a.action {
            ActionArg::Drop => Action::Drop,
            ActionArg::Pass => Action::Pass,
            ActionArg::Count => Action::Count,
        },
        position,
        share,
        name: &name,
        resolver: &tables,
        ipv6_ext_headers: a.modes.ipv6_ext_headers,
        vlan_any: a.modes.vlan_any,
    };
    let attached = deploy::attach(&req).map_err(|e| match e {
        deploy::DeployError::Compile(c) => compile_error(&c, &expr),
        other => other.to_string(),
    })?;
    let pinned = format!(
        "{}/{}",
        text::escape(&deploy::pin_root().display().to_string()),
        text::escape(&attached.name)
    );
    if let Some(Membership::Running(chain)) = &attached.member {
        let at = chain
            .members
            .iter()
            .position(|m| Some(m.id) == attached.prog_id)
            .unwrap_or(0);
        println!(
            "attached {} to {} {} (program {}) in the XDP dispatcher (program {}): {} of {}, \
             priority {}; pinned under {pinned}",
            text::escape(&attached.name),
            text::escape(&attached.iface),
            text::escape(&attached.hook),
            id_or_dash(attached.prog_id),
            chain.dispatcher,
            at + 1,
            chain.members.len(),
            chain.members.get(at).map_or(0, |m| m.priority),
        );
        return Ok(());
    }
    println!(
        "attached {} to {} {} (program {}, link {}), pinned under {pinned}",
        text::escape(&attached.name),
        text::escape(&attached.iface),
        text::escape(&attached.hook),
        id_or_dash(attached.prog_id),
        id_or_dash(attached.link_id),
    );
    Ok(())
}

/// `eth0_xdp`-style names, cut to the 15 bytes the kernel keeps.
fn default_name(iface: &str, hook: Hook) -> String {
    let hook = match hook {
        Hook::Xdp => "xdp",
        Hook::TcxIngress => "in",
        Hook::TcxEgress => "out",
    };
    let base: String = iface
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(15 - hook.len() - 1)
        .collect();
    format!("{base}_{hook}")
}

/// A kernel id as `status` and `attach` print it: `-` when there is none
/// (the link or its program is gone).
fn id_or_dash(id: Option<impl std::fmt::Display>) -> String {
    id.map_or_else(|| "-".to_string(), |id| id.to_string())
}

fn cmd_status() -> Result<(), String> {
    let listing = deploy::list().map_err(|e| e.to_string())?;
    for note in &listing.notes {
        report(&note.to_string());
    }
    let filters = listing.attached;
    if filters.is_empty() {
        println!("no filters attached by pcap2bpf");
        return Ok(());
    }
    println!(
        "{:<15} {:<12} {:<11} {:<6} {:>10} {:>10} {:>7} {:>7} {:<12}  expression",
        "name", "device", "hook", "action", "matched", "seen", "prog", "link", "netns"
    );
    // Every field read from the pins is escaped: anyone who may pin there
    // chooses them.
    for f in &filters {
        // Where the device is: `-` for this network namespace, else its
        // `ip netns` name or its id. A device in a namespace that cannot
        // be entered is not named: its index means another device here.
        let (device, netns) = match &f.netns {
            DeviceNetns::Here => (text::escape(&f.iface).into_owned(), "-".to_string()),
            DeviceNetns::Unknown => (text::escape(&f.iface).into_owned(), "?".to_string()),
            DeviceNetns::Other { id, name } => (
                text::escape(&f.iface).into_owned(),
                name.as_deref()
                    .map_or_else(|| id.to_string(), |n| text::escape(n).into_owned()),
            ),
            DeviceNetns::Unreachable { id, ifindex, .. } => {
                report(&format!(
                    "{}: {}",
                    text::escape(&f.name),
                    deploy::device_text(&f.iface, &f.netns)
                ));
                (format!("ifindex:{ifindex}"), id.to_string())
            }
        };
        let device = if f.device_gone {
            format!("{device}(gone)")
        } else {
            device
        };
        // A member of a dispatcher has no link of its own.
        let link = match &f.member {
            None => id_or_dash(f.link_id),
            Some(Membership::Running(_)) => "shared".to_string(),
            Some(Membership::Gone(why)) => {
                report(&format!(
                    "{}: no longer in the XDP dispatcher of {} ({why}); `pcap2bpf detach {}` \
                     removes its pins",
                    text::escape(&f.name),
                    deploy::device_text(&f.iface, &f.netns),
                    text::escape(&f.name)
                ));
                "-".to_string()
            }
            Some(Membership::Unknown(why)) => {
                report(&format!(
                    "{}: whether it runs in the XDP dispatcher of {} cannot be told: {why}",
                    text::escape(&f.name),
                    deploy::device_text(&f.iface, &f.netns)
                ));
                "?".to_string()
            }
        };
        println!(
            "{:<15} {:<12} {:<11} {:<6} {:>10} {:>10} {:>7} {:>7} {:<12}  {}",
            text::escape(&f.name),
            device,
            text::escape(&f.hook),
            text::escape(&f.action),
            f.matched,
            f.seen,
            id_or_dash(f.prog_id),
            link,
            netns,
            text::escape(&f.expr)
        );
    }
    print_dispatchers(&filters);
    Ok(())
}

/// The XDP dispatchers our filters are members of, each once: its
/// programs in run order, with their run priorities, ours marked.
fn print_dispatchers(filters: &[deploy::Attached]) {
    let mut shown = Vec::new();
    for f in filters {
        let Some(Membership::Running(chain)) = &f.member else {
            continue;
        };
        if shown.contains(&chain.dispatcher) {
            continue;
        }
        shown.push(chain.dispatcher);
        println!();
        println!(
            "XDP dispatcher of {} (program {}, {} mode), in run order:",
            deploy::device_text(&f.iface, &f.netns),
            chain.dispatcher,
            chain.mode.name()
        );
        println!(
            "  {:>2} {:>8} {:>7}  {:<15}  owner",
            "#", "priority", "prog", "name"
        );
        for (i, m) in chain.members.iter().enumerate() {
            // Ours: a filter whose program this is.
            let owner = filters
                .iter()
                .find(|g| g.prog_id == Some(m.id))
                .map_or_else(
                    || "-".to_string(),
                    |g| format!("pcap2bpf:{}", text::escape(&g.name)),
                );
            println!(
                "  {:>2} {:>8} {:>7}  {:<15}  {owner}",
                i + 1,
                m.priority,
                m.id,
                text::escape(&m.name)
            );
        }
    }
}

fn cmd_detach(a: DetachArgs) -> Result<(), String> {
    if a.all {
        let (names, notes) = deploy::detach_all().map_err(|e| e.to_string())?;
        for note in notes {
            report(&note.to_string());
        }
        for n in names {
            println!("detached {}", text::escape(&n));
        }
        return Ok(());
    }
    if a.names.is_empty() {
        return Err("name the filters to detach, or give --all".into());
    }
    for n in a.names {
        for note in deploy::detach(&n).map_err(|e| e.to_string())? {
            report(&note.to_string());
        }
        println!("detached {}", text::escape(&n));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn default_names_fit_the_kernel() {
        let n = super::default_name("a-very-long-interface", super::Hook::TcxEgress);
        assert!(n.len() <= 15, "{n}");
        assert_eq!(super::default_name("eth0", super::Hook::Xdp), "eth0_xdp");
    }
}
