//! pcap2bpf: tcpdump filter expressions (pcap-filter(7)) compiled to eBPF
//! with libpcap's exact meaning.
//!
//! Pipeline: scanner and parser ([`parser`]), name resolution and
//! libpcap's checks ([`check`]), lowering to the packet-match IR
//! ([`lower`], [`ir`]), optimisation ([`opt`]) and code generation for
//! XDP, tc and socket filters ([`codegen`]). [`compile`] runs all of it;
//! [`engine::Runner`] runs a filter over packets, in the kernel or in the
//! built-in interpreter of the generated code; [`deploy`] attaches one.
//!
//! ```
//! use pcap2bpf::capture::Packet;
//! use pcap2bpf::engine::{Engine, RunOptions, Runner};
//! use pcap2bpf::{CompileOptions, LinkType, Tables, Target, compile};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Names come from tables: Tables::system() reads /etc/hosts and friends.
//! let names = Tables::new();
//! // XDP code for `tcp port 80`: XDP_PASS (2) on a match, else XDP_DROP (1).
//! let opts = CompileOptions {
//!     link: LinkType::En10mb,
//!     target: Target::Xdp,
//!     on_match: 2,
//!     on_nomatch: 1,
//!     test_run_meta: false,
//!     xdp_frags: false,
//!     netmask: None,
//!     resolver: &names,
//! };
//! let filter = compile("tcp port 80", &opts)?;
//! println!("{}", filter.object.listing(filter.program)?);
//! // filter.object.load() loads it (CAP_BPF); bpf_builder::attach attaches it.
//!
//! // The same filter over a packet, in the interpreter (no privileges).
//! let run = RunOptions {
//!     link: LinkType::En10mb,
//!     engine: Engine::Interp,
//!     netmask: None,
//!     resolver: &names,
//! };
//! let mut runner = Runner::new("tcp port 80", &run)?;
//! let mut syn = vec![0u8; 54];
//! syn[12..14].copy_from_slice(&[0x08, 0x00]); // EtherType IPv4
//! syn[14] = 0x45; // IPv4, 20-byte header
//! syn[16..18].copy_from_slice(&40u16.to_be_bytes()); // total length
//! syn[23] = 6; // TCP
//! syn[36..38].copy_from_slice(&80u16.to_be_bytes()); // destination port
//! syn[46] = 0x50; // TCP header length: 20 bytes
//! let packet = Packet { ts_sec: 0, ts_nsec: 0, wire_len: 54, data: syn };
//! assert!(runner.matches(&packet)?);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod ast;
pub mod batch;
pub mod capture;
pub mod check;
pub mod codegen;
pub mod deploy;
pub mod emit;
pub mod engine;
pub mod error;
pub mod ir;
mod jumps;
pub mod lexer;
pub mod lower;
pub mod opt;
pub mod parser;
mod pullup;
pub mod resolve;
pub mod samples;
pub mod summary;

use bpf_builder::asm::{Asm, Code};
use bpf_builder::insn::Reg;
use bpf_builder::object::{Object, ProgId, ProgramType};

pub use codegen::{EmitOptions, Target};
pub use ir::Ir;
pub use lower::LowerOptions;

pub use ast::{Expr, Span};
pub use check::{Atom, Checked};
pub use error::CompileError;
pub use resolve::{Resolver, Tables};

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

/// Options beyond the link type.
#[derive(Clone, Copy)]
pub struct Options<'a> {
    /// The link type.
    pub link: LinkType,
    /// Where names are looked up.
    pub resolver: &'a dyn Resolver,
    /// The IPv4 netmask of the capture interface (`ip broadcast` needs it).
    pub netmask: Option<u32>,
}

/// Parses and checks `expr` for `link`, resolving names with `resolver`.
pub fn parse(expr: &str, link: LinkType, resolver: &dyn Resolver) -> Result<Filter, CompileError> {
    parse_with(
        expr,
        Options {
            link,
            resolver,
            netmask: None,
        },
    )
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

/// Options of [`compile`].
#[derive(Clone, Copy)]
pub struct CompileOptions<'a> {
    /// The link type of the packets.
    pub link: LinkType,
    /// The program type.
    pub target: Target,
    /// Return value on a match (XDP: an action such as `XDP_PASS` = 2;
    /// socket filters: the number of bytes to keep).
    pub on_match: i32,
    /// Return value otherwise (XDP: e.g. `XDP_DROP` = 1; socket: 0).
    pub on_nomatch: i32,
    /// XDP only: read the captured and wire lengths from the metadata area
    /// (for running captures through `BPF_PROG_TEST_RUN`; see
    /// [`EmitOptions::test_run_meta`]). Also gives `inbound`/`ifindex`
    /// their capture-file meaning (errors where libpcap has no field).
    pub test_run_meta: bool,
    /// XDP only: the program declares fragment support and reads frames
    /// spread over several buffers, as devices at a jumbo MTU need (see
    /// [`EmitOptions::xdp_frags`]).
    pub xdp_frags: bool,
    /// The IPv4 netmask (for `ip broadcast`).
    pub netmask: Option<u32>,
    /// Where names are looked up.
    pub resolver: &'a dyn Resolver,
}

/// A compiled filter.
pub struct Compiled {
    /// The object holding the program.
    pub object: Object,
    /// The program.
    pub program: ProgId,
    /// Warnings (e.g. "expression rejects all packets").
    pub warnings: Vec<String>,
    /// Number of IR blocks after optimisation.
    pub ir_blocks: usize,
    /// The optimised IR (e.g. for its [`Ir::max_read`]).
    pub ir: Ir,
}

/// The lowering options a target implies.
pub fn lower_options(opts: &CompileOptions<'_>) -> LowerOptions {
    LowerOptions {
        link: opts.link,
        vlan_meta: opts.target != Target::Xdp && !opts.test_run_meta,
        offline: opts.test_run_meta,
        fixed_direction: (opts.target == Target::Xdp).then_some(false),
        netmask: opts.netmask,
    }
}

/// Lowers and optimises a checked filter. The second value is a warning
/// when no packet can match (the IR then rejects everything).
pub fn build_ir(
    filter: &Filter,
    opts: &LowerOptions,
) -> Result<(Ir, Option<String>), CompileError> {
    // Room for the values of a few primitives: growing costs more.
    let mut ir = Ir::with_capacity(32);
    lower::lower(filter.checked.as_ref(), opts, &mut ir)?;
    opt::optimize(&mut ir);
    if !ir.can_accept() {
        ir.blocks.clear();
        ir.entry = Some(ir::Edge::Reject);
        return Ok((ir, Some("expression rejects all packets".to_string())));
    }
    Ok((ir, None))
}

fn internal(e: impl std::fmt::Display) -> CompileError {
    CompileError::new(format!("internal error: {e}"), ast::Span::default())
}

/// Compiles `expr` into a one-program object.
pub fn compile(expr: &str, opts: &CompileOptions<'_>) -> Result<Compiled, CompileError> {
    let filter = parse_with(
        expr,
        Options {
            link: opts.link,
            resolver: opts.resolver,
            netmask: opts.netmask,
        },
    )?;
    let (ir, warning) = build_ir(&filter, &lower_options(opts))?;
    let eopts = EmitOptions {
        target: opts.target,
        test_run_meta: opts.test_run_meta,
        xdp_frags: opts.xdp_frags,
    };
    let code = emit_program(&ir, &eopts, expr, |asm, matched| {
        asm.mov32(
            Reg::R0,
            if matched {
                opts.on_match
            } else {
                opts.on_nomatch
            },
        );
        asm.exit();
    })?;
    let mut object = Object::new();
    let prog_type = match opts.target {
        Target::Xdp => ProgramType::Xdp,
        Target::Tc => ProgramType::SchedCls,
        Target::SocketFilter => ProgramType::SocketFilter,
    };
    let program = object
        .add_program("pcap_filter", prog_type, code)
        .map_err(internal)?;
    if opts.xdp_frags {
        object.set_xdp_frags(program, true).map_err(internal)?;
    }
    Ok(Compiled {
        object,
        program,
        warnings: warning.into_iter().collect(),
        ir_blocks: ir.blocks.len(),
        ir,
    })
}

/// Emits a whole program for `ir`: the filter, with the caller's
/// `verdict(asm, matched)` code, which must not fall through, once for each
/// verdict the filter can reach (the verifier refuses dead code).
pub fn emit_program(
    ir: &Ir,
    eopts: &EmitOptions,
    source: &str,
    mut verdict: impl FnMut(&mut Asm, bool),
) -> Result<Code, CompileError> {
    // About five instructions a block, forty for a protochain walk: room
    // for them all up front, as growing costs more than the spare room.
    let chains = ir
        .blocks
        .iter()
        .filter(|b| matches!(b.cond, ir::Cond::ProtoChain { .. }))
        .count();
    let mut asm = Asm::with_capacity(6 * ir.blocks.len() + 40 * chains + 12);
    codegen::emit(ir, &mut asm, eopts, source, &mut verdict)?;
    asm.finish().map_err(internal)
}
