//! pcap2bpf: tcpdump filter expressions (pcap-filter(7)) compiled to eBPF
//! with libpcap's exact meaning.
//!
//! Pipeline, one folder a stage: scanner and parser ([`syntax`]), name
//! resolution and libpcap's checks ([`check`]), lowering to the
//! packet-match IR ([`lower`]); the shared core, [`pktmatch`], optimises
//! the IR and generates code for XDP, tc and socket filters. [`compile`]
//! runs all of it; [`engine::Runner`] runs a filter over packets, in the
//! kernel or in the built-in interpreter of the generated code. The
//! `pcap2bpf` command (crate `pcap2bpf-cli`) reads captures and attaches
//! filters.
//!
//! ```
//! use pcap2bpf::engine::{Engine, Frame, RunOptions, Runner};
//! use pcap2bpf::{CompileOptions, LinkType, Tables, Target, compile};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Names come from tables: Tables::system() reads /etc/hosts and friends.
//! let names = Tables::new();
//! // XDP code for `tcp port 80`: XDP_PASS (2) on a match, else XDP_DROP (1).
//! let opts = CompileOptions::new(LinkType::En10mb, Target::Xdp, &names);
//! let filter = compile("tcp port 80", &opts)?;
//! println!("{}", filter.object.listing(filter.program)?);
//! // filter.object.load() loads it (CAP_BPF); bpf_builder::attach attaches it.
//!
//! // The same filter over a packet, in the interpreter (no privileges).
//! let run = RunOptions::new(LinkType::En10mb, &names).engine(Engine::Interp);
//! let mut runner = Runner::new("tcp port 80", &run)?;
//! let mut syn = vec![0u8; 54];
//! syn[12..14].copy_from_slice(&[0x08, 0x00]); // EtherType IPv4
//! syn[14] = 0x45; // IPv4, 20-byte header
//! syn[16..18].copy_from_slice(&40u16.to_be_bytes()); // total length
//! syn[23] = 6; // TCP
//! syn[36..38].copy_from_slice(&80u16.to_be_bytes()); // destination port
//! syn[46] = 0x50; // TCP header length: 20 bytes
//! assert!(runner.matches(Frame::new(&syn, 54))?);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod check;
pub mod engine;
pub mod error;
pub mod lower;
mod numbers;
pub mod syntax;
pub mod warning;

pub use bpf_builder::text;
pub use check::resolve;
pub use syntax::{ast, lexer, parser};

use bpf_builder::ctx::{TcAction, XdpAction};
use bpf_builder::object::{FuncId, Object, ProgId};

pub use lower::{IPV6_WALK_HEADERS, LowerOptions};
pub use pktmatch::{EmitOptions, Ir, Target, ir};

pub use ast::{Expr, Span};
pub use check::{Atom, Checked};
pub use error::CompileError;
pub use resolve::{Resolver, Tables};
pub use warning::Warning;

/// Link-layer types the compiler targets (libpcap DLT names in comments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// DLT_EN10MB: Ethernet.
    En10mb,
    /// DLT_RAW: raw IPv4/IPv6.
    Raw,
    /// DLT_LINUX_SLL: Linux cooked capture v1.
    LinuxSll,
    /// DLT_LINUX_SLL2: Linux cooked capture v2.
    LinuxSll2,
    /// DLT_NULL: BSD loopback (host-order address family).
    Null,
    /// DLT_LOOP: OpenBSD loopback (network-order address family).
    Loop,
}

impl LinkType {
    /// The link type a capture file's LINKTYPE_* value stands for, as libpcap
    /// reads it: besides 101, raw IP also appears as the raw DLT_RAW values 12
    /// and 14 in old files. `None` for link types we do not compile for.
    pub fn from_linktype(value: u32) -> Option<LinkType> {
        match value {
            0 => Some(LinkType::Null),
            1 => Some(LinkType::En10mb),
            101 | 12 | 14 => Some(LinkType::Raw),
            108 => Some(LinkType::Loop),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            _ => None,
        }
    }

    /// The LINKTYPE_* value written in capture files for this link type.
    pub fn linktype(self) -> u32 {
        match self {
            LinkType::Null => 0,
            LinkType::En10mb => 1,
            LinkType::Raw => 101,
            LinkType::Loop => 108,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
        }
    }
}

/// A parsed and checked filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The link type it was checked for.
    pub link: LinkType,
    /// The syntax tree; `None` for the empty expression (accept all).
    pub ast: Option<Expr>,
    /// The checked tree with names resolved; `None` accepts all.
    pub checked: Option<Checked>,
}

/// Options of [`parse_with`]: the link type, where names are looked up,
/// and the IPv4 netmask of the capture interface.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    link: LinkType,
    resolver: &'a dyn Resolver,
    netmask: Option<u32>,
}

impl<'a> Options<'a> {
    /// Options for `link`, names looked up in `resolver`, no netmask.
    pub fn new(link: LinkType, resolver: &'a dyn Resolver) -> Self {
        Options {
            link,
            resolver,
            netmask: None,
        }
    }

    /// Sets the IPv4 netmask of the capture interface (`ip broadcast`
    /// needs it).
    pub fn netmask(mut self, netmask: Option<u32>) -> Self {
        self.netmask = netmask;
        self
    }
}

/// Parses and checks `expr` for `link`, resolving names with `resolver`.
pub fn parse(expr: &str, link: LinkType, resolver: &dyn Resolver) -> Result<Filter, CompileError> {
    parse_with(expr, Options::new(link, resolver))
}

/// Parses and checks `expr` with the names of this machine's `/etc` files.
pub fn parse_system(expr: &str, link: LinkType) -> Result<Filter, CompileError> {
    parse(expr, link, &Tables::system())
}

/// Like [`parse`], with all options.
pub fn parse_with(expr: &str, opts: Options<'_>) -> Result<Filter, CompileError> {
    let ast = parser::parse_expr(expr)?;
    let checked = match &ast {
        Some(e) => Some(check::Checker::new(opts.link, opts.resolver, opts.netmask).check(e)?),
        None => None,
    };
    Ok(Filter {
        link: opts.link,
        ast,
        checked,
    })
}

/// Options of [`compile`]: made with [`CompileOptions::new`], changed
/// with its setters.
#[derive(Clone, Copy)]
pub struct CompileOptions<'a> {
    link: LinkType,
    target: Target,
    on_match: i32,
    on_nomatch: i32,
    test_run_meta: bool,
    xdp_frags: bool,
    netmask: Option<u32>,
    ipv6_ext_headers: bool,
    vlan_any: bool,
    resolver: &'a dyn Resolver,
}

impl<'a> CompileOptions<'a> {
    /// Options for `link` and `target`, names looked up in `resolver`:
    /// the target's usual verdicts (XDP: `XDP_PASS`/`XDP_DROP`; tc:
    /// `TC_ACT_OK`/`TC_ACT_SHOT`; socket: keep 256 KiB / nothing; probe:
    /// 1 / 0), packets
    /// as the hook sees them, no fragments, no netmask.
    pub fn new(link: LinkType, target: Target, resolver: &'a dyn Resolver) -> Self {
        let (on_match, on_nomatch) = match target {
            Target::Xdp => (XdpAction::Pass.value(), XdpAction::Drop.value()),
            Target::Tc => (TcAction::Ok.value(), TcAction::Shot.value()),
            Target::SocketFilter => (0x40000, 0),
            Target::Probe => (pktmatch::codegen::PROBE_MATCH, 0),
        };
        CompileOptions {
            link,
            target,
            on_match,
            on_nomatch,
            test_run_meta: false,
            xdp_frags: false,
            netmask: None,
            ipv6_ext_headers: false,
            vlan_any: false,
            resolver,
        }
    }

    /// Opt-in mode, off by default (libpcap has no such mode): layer-4
    /// tests on IPv6 (`tcp`, `udp`, `sctp`, `icmp6`, `[ip6] proto N`,
    /// `port`, `portrange`, `tcp port`...) walk the IPv6 extension
    /// headers first, as `ip6 protochain` does, and read ports where the
    /// walk stopped. See [`LowerOptions::ipv6_ext_headers`] for the exact
    /// walk.
    pub fn ipv6_ext_headers(mut self, on: bool) -> Self {
        self.ipv6_ext_headers = on;
        self
    }

    /// Opt-in mode, off by default: each layer-3 or layer-4 primitive `X`
    /// means libpcap's `X or (vlan and (X or (vlan and X)))` (X, or one
    /// tag and X after it, or two tags and X after them), so that
    /// `tcp port 80` also matches singly and doubly tagged frames; the
    /// tags shift the offsets of `X` only.
    /// See [`LowerOptions::vlan_any`] for which primitives and where.
    pub fn vlan_any(mut self, on: bool) -> Self {
        self.vlan_any = on;
        self
    }

    /// Sets the return values on a match and otherwise (XDP: an action
    /// such as `XDP_PASS` = 2 and `XDP_DROP` = 1; socket filters: the
    /// number of bytes to keep).
    pub fn verdicts(mut self, on_match: i32, on_nomatch: i32) -> Self {
        self.on_match = on_match;
        self.on_nomatch = on_nomatch;
        self
    }

    /// XDP only: read the captured and wire lengths from the metadata area
    /// (for running captures through `BPF_PROG_TEST_RUN`; see
    /// [`EmitOptions::test_run_meta`]). Also gives `inbound`/`ifindex`
    /// their capture-file meaning (errors where libpcap has no field).
    pub fn test_run_meta(mut self, on: bool) -> Self {
        self.test_run_meta = on;
        self
    }

    /// XDP only: the program declares fragment support and reads frames
    /// spread over several buffers, as devices at a jumbo MTU need (see
    /// [`EmitOptions::xdp_frags`]).
    pub fn xdp_frags(mut self, on: bool) -> Self {
        self.xdp_frags = on;
        self
    }

    /// Sets the IPv4 netmask (for `ip broadcast`).
    pub fn netmask(mut self, netmask: Option<u32>) -> Self {
        self.netmask = netmask;
        self
    }
}

/// A compiled filter.
pub struct Compiled {
    /// The object holding the program.
    pub object: Object,
    /// The program.
    pub program: ProgId,
    /// Warnings (e.g. [`Warning::RejectsAll`]).
    pub warnings: Vec<Warning>,
    /// Number of IR blocks after optimisation.
    pub ir_blocks: usize,
    /// The optimised IR (e.g. for its [`Ir::max_read`]).
    pub ir: Ir,
}

/// The lowering options a target implies.
pub fn lower_options(opts: &CompileOptions<'_>) -> LowerOptions {
    let l = if opts.test_run_meta {
        LowerOptions::offline(opts.link, opts.netmask)
    } else {
        LowerOptions::live(opts.link, opts.target, opts.netmask)
    };
    l.ipv6_ext_headers(opts.ipv6_ext_headers)
        .vlan_any(opts.vlan_any)
}

/// Checks a checked filter against where it runs
/// ([`check::check_target`]), then lowers it, without optimising it
/// (what [`build_ir`] optimises).
pub fn lower_ir(filter: &Filter, opts: &LowerOptions) -> Result<Ir, CompileError> {
    if let Some(c) = &filter.checked {
        check::check_target(c, &opts.facts())?;
    }
    // Room for the values of a few primitives: growing costs more.
    let mut ir = Ir::with_capacity(32);
    lower::lower(filter.checked.as_ref(), opts, &mut ir)?;
    debug_assert_eq!(ir.verify(), Ok(()), "after lowering");
    Ok(ir)
}

/// Lowers and optimises a checked filter. The second value is
/// [`Warning::RejectsAll`] when no packet can match (the IR then rejects
/// everything).
pub fn build_ir(
    filter: &Filter,
    opts: &LowerOptions,
) -> Result<(Ir, Option<Warning>), CompileError> {
    let mut ir = lower_ir(filter, opts)?;
    pktmatch::opt::optimize(&mut ir);
    if !ir.can_accept() {
        ir.blocks.clear();
        ir.entry = Some(ir::Edge::REJECT);
        return Ok((ir, Some(Warning::RejectsAll)));
    }
    Ok((ir, None))
}

/// Parses and checks `expr` as [`compile`] does.
fn parse_for(expr: &str, opts: &CompileOptions<'_>) -> Result<Filter, CompileError> {
    parse_with(
        expr,
        Options::new(opts.link, opts.resolver).netmask(opts.netmask),
    )
}

/// The IR of `expr` as lowered for `opts`, before optimisation (what
/// `pcap2bpf compile --emit ir-lowered` prints).
pub fn lowered(expr: &str, opts: &CompileOptions<'_>) -> Result<Ir, CompileError> {
    lower_ir(&parse_for(expr, opts)?, &lower_options(opts))
}

/// A filter added to an object as a probe function ([`add_probe_filter`]).
pub struct ProbeFilter {
    /// The function.
    pub function: FuncId,
    /// Warnings (e.g. [`Warning::RejectsAll`]).
    pub warnings: Vec<Warning>,
    /// The optimised IR (e.g. for its [`Ir::max_read`]).
    pub ir: Ir,
}

/// Compiles `expr` into a function named `name` of `object`, over packet
/// bytes in kernel memory ([`Target::Probe`]), for the object's tracing
/// programs to call: r1 holds the bytes' address, r2 the captured length,
/// r3 the wire length; r0 is 1 on a match, else 0 (see
/// [`pktmatch::codegen::add_probe_function`]). Bytes past the captured
/// length make the filter reject, as in libpcap. `opts`' target must be
/// [`Target::Probe`]; `inbound`, `outbound` and `ifindex` are refused
/// where the link-layer header has no field for them, as for a capture
/// file.
pub fn add_probe_filter(
    object: &mut Object,
    expr: &str,
    opts: &CompileOptions<'_>,
    name: &str,
) -> Result<ProbeFilter, CompileError> {
    if opts.target != Target::Probe {
        return Err(CompileError::new(
            format!(
                "a probe function needs the probe target, not {:?}",
                opts.target
            ),
            Span::default(),
        ));
    }
    let filter = parse_for(expr, opts)?;
    let (ir, warning) = build_ir(&filter, &lower_options(opts))?;
    let function = pktmatch::codegen::add_probe_function(object, &ir, expr, name)?;
    Ok(ProbeFilter {
        function,
        warnings: warning.into_iter().collect(),
        ir,
    })
}

/// Compiles `expr` into a one-program object. With [`Target::Probe`] the
/// program is a raw tracepoint calling the filter's function with its
/// first three arguments (address, captured length, wire length): the
/// shape `BPF_PROG_TEST_RUN` runs; tracing tools call the function from
/// their own programs ([`add_probe_filter`]).
pub fn compile(expr: &str, opts: &CompileOptions<'_>) -> Result<Compiled, CompileError> {
    let filter = parse_for(expr, opts)?;
    let (ir, warning) = build_ir(&filter, &lower_options(opts))?;
    let eopts = EmitOptions::new(opts.target)
        .test_run_meta(opts.test_run_meta)
        .xdp_frags(opts.xdp_frags);
    let (object, program) = pktmatch::program(&ir, &eopts, expr, opts.on_match, opts.on_nomatch)?;
    Ok(Compiled {
        object,
        program,
        warnings: warning.into_iter().collect(),
        ir_blocks: ir.blocks.len(),
        ir,
    })
}
