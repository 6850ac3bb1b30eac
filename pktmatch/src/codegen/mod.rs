//! Code generation: the IR to eBPF for XDP, tc (SCHED_CLS) and socket
//! filters, into a caller's [`Asm`].
//!
//! One generator state (`Gen`) emits a filter; its parts, one concern
//! each:
//! - `frame`: what each register holds, the stack slots, and the pool
//!   value registers come from;
//! - `bounds`: which packet-length checks go where (direct access);
//! - `prologue`: the per-target prologue;
//! - `loads`: reading packet bytes (direct access, `ld_abs`/`ld_ind`,
//!   `bpf_xdp_load_bytes`);
//! - `expr`: values computed into registers;
//! - `protochain`: libpcap's protochain walk;
//! - `blocks`: the walk over the blocks and their tests;
//! - `program`: the prologue, the blocks and the verdicts put together
//!   ([`emit`]), and whole programs ([`add_program`], [`program`]);
//! - `counters`: per-verdict counters of packets matched and seen;
//! - `probe`: the filter as a function over bytes in kernel memory.

mod blocks;
mod bounds;
mod counters;
mod expr;
mod frame;
mod loads;
mod probe;
mod program;
mod prologue;
mod protochain;

use bpf_builder::asm::{Asm, Labels};

use crate::Error;
use crate::ir::{Edge, Ir, Val};
use bounds::Scratch;
use frame::Pool;
use loads::Loads;
use program::VerdictSlots;

pub use counters::{COUNTER_MATCHED, COUNTER_SEEN, counters_map};
pub use frame::{CALLER_SLOT, CONTEXT_SLOT, KEY_SLOT, var_slot};
pub use loads::{MAX_PACKET_OFF, MAX_VAR_OFF};
pub use probe::{FUNCTION_SUFFIX, PROBE_MATCH, add_probe_function};
pub use program::{
    ActionCode, ActionEnd, ProgramOptions, SourceText, VerdictCode, add_program, emit,
    emit_program, no_actions, program, program_type,
};

/// The kind of program to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// XDP: direct access to `xdp_md.data .. data_end`.
    Xdp,
    /// tc / tcx classifier (`BPF_PROG_TYPE_SCHED_CLS`): direct access to
    /// the skb's linear data, after pulling into it the bytes the filter
    /// can read; the outer VLAN tag may be in metadata.
    Tc,
    /// Socket filter: legacy `ld_abs`/`ld_ind` loads.
    SocketFilter,
    /// A function over packet bytes in kernel memory, for tracing
    /// programs (fentry on an XDP program, a tracepoint that sees an skb):
    /// `r1` holds the bytes' address, `r2` how many were captured, `r3`
    /// the packet's length on the wire; it returns 1 on a match, else 0.
    /// Each load checks its bytes against the captured length (past it,
    /// the filter rejects, as libpcap does) and reads them with
    /// `bpf_probe_read_kernel` (a fault rejects too). No metadata:
    /// direction and interface tests are refused as for a capture file.
    /// See [`add_probe_function`].
    Probe,
}

/// Options of [`emit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmitOptions {
    /// The program type.
    pub target: Target,
    /// XDP only: the packet's real lengths come in the metadata area
    /// (`struct { u32 caplen; u32 wirelen; }` at `data_meta`), and the
    /// packet ends at `data + caplen` (see the `run` command).
    pub test_run_meta: bool,
    /// XDP only, for programs loaded with fragment support
    /// (`ProgramSpec::xdp_frags`): a frame may continue past `data_end`
    /// in fragments. `len` is then the whole frame's
    /// (`bpf_xdp_get_buff_len`), and when the filter may read past the
    /// first buffer of a fragmented frame, a second copy of the filter
    /// reads with `bpf_xdp_load_bytes` instead of direct access.
    pub xdp_frags: bool,
    /// Store the context at [`CONTEXT_SLOT`] even when the IR has no
    /// action: the caller's verdict code wants it (a tail call).
    pub keep_context: bool,
    /// Outside the test-run mode: at each block several edges lead to,
    /// read the packet's start and end from the context again. The
    /// verifier then knows nothing of the packet's length there, the same
    /// on every path, instead of what each path checked: one state for a
    /// firewall's next rule, not one per combination of the checks of the
    /// rules before (which made the verifier's work grow with the square
    /// of the rules). Costs two loads a join.
    pub reload_at_joins: bool,
}

impl EmitOptions {
    /// Options for `target`: packets as the hook sees them, no fragments.
    pub fn new(target: Target) -> Self {
        EmitOptions {
            target,
            test_run_meta: false,
            xdp_frags: false,
            keep_context: false,
            reload_at_joins: false,
        }
    }

    /// Sets [`EmitOptions::test_run_meta`].
    pub fn test_run_meta(mut self, on: bool) -> Self {
        self.test_run_meta = on;
        self
    }

    /// Sets [`EmitOptions::xdp_frags`].
    pub fn xdp_frags(mut self, on: bool) -> Self {
        self.xdp_frags = on;
        self
    }

    /// Sets [`EmitOptions::keep_context`].
    pub fn keep_context(mut self, on: bool) -> Self {
        self.keep_context = on;
        self
    }

    /// Sets [`EmitOptions::reload_at_joins`].
    pub fn reload_at_joins(mut self, on: bool) -> Self {
        self.reload_at_joins = on;
        self
    }
}

/// The generator's state while it emits one filter; each part of the
/// module adds the methods of its concern.
struct Gen<'a, 'v> {
    ir: &'a Ir,
    asm: &'a mut Asm,
    opts: EmitOptions,
    /// The verdicts' code, by verdict number.
    verdicts: VerdictSlots,
    /// Where a short read in the block being emitted goes.
    short: Edge,
    /// The blocks' labels in the copy of the filter being emitted.
    block_labels: Labels,
    free: Pool,
    source: program::Sources<'a>,
    /// The caller's verdict code.
    verdict: &'a mut VerdictCode<'v>,
    /// The caller's action code.
    action: &'a mut ActionCode<'v>,
    /// r9 holds `data + val + end` (direct access; socket filters: `val`,
    /// and `end` is 0), and the packet has `end` bytes past `data + val`.
    cache: Option<(Val, u64)>,
    /// r0 holds this value (in network order if the flag is set).
    acc: Option<(Val, bool)>,
    /// What r5 points at after the last bounds check (direct access).
    scratch: Option<Scratch>,
    /// How this copy of the filter reads the packet.
    loads: Loads,
}

/// What the generator's steps return.
type R<T> = Result<T, Error>;

impl Gen<'_, '_> {
    /// Whether this copy of the filter reads the packet directly.
    fn direct(&self) -> bool {
        self.loads == Loads::Direct
    }

    /// Whether the program is an XDP program with fragment support.
    fn frags(&self) -> bool {
        self.opts.xdp_frags && self.opts.target == Target::Xdp
    }

    /// Whether the program is an XDP program in the test-run mode.
    fn test_mode(&self) -> bool {
        self.opts.test_run_meta && self.opts.target == Target::Xdp
    }
}
