//! Program assembly: [`emit`] puts the prologue, the filter's blocks (two
//! copies with fragment support) and the caller's verdict code together;
//! [`emit_program`], [`add_program`] and [`program`] make whole programs
//! and objects of it, with the return values and counters of
//! [`ProgramOptions`].

use std::sync::Arc;

use bpf_builder::asm::{Annotation, Asm, Code, Label};
use bpf_builder::insn::{Reg, Size};
use bpf_builder::object::{MapId, Object, ProgId, ProgramType};

use super::counters::{COUNTER_MATCHED, COUNTER_SEEN, count};
use super::frame::Pool;
use super::loads::Loads;
use super::{EmitOptions, Gen, Target};
use crate::ir::{Cond, Edge, EntityRef, Ir, OnShort, Verdict};
use crate::{Error, Span, internal};

/// The caller's verdict code: `verdict(asm, v)` emits what the program
/// does when the filter ends with verdict `v` (for a packet filter,
/// [`Verdict::MATCH`] or [`Verdict::NO_MATCH`]); it must not fall through
/// (it ends in `exit` or a jump).
pub type VerdictCode<'v> = dyn FnMut(&mut Asm, Verdict) + 'v;

/// The caller's action code: `action(asm, a, fail)` emits what the
/// program does at a [`Cond::Act`] block with action number `a` (count a
/// rule, write a log record, take a token of a rate limit). It falls
/// through to the block's true edge, or jumps to `fail` (the false edge)
/// when the action fails, and says whether it may. It may call helpers
/// (clobbering r0-r5) and use the stack slots
/// [`CALLER_SLOT`](super::CALLER_SLOT) and the counter key's, but leaves
/// r6-r9 and the rest of the stack alone. It may read the context from
/// [`CONTEXT_SLOT`](super::CONTEXT_SLOT) and the filter's variables from
/// [`var_slot`](super::var_slot). At a [`Cond::Lookup`] the action looks
/// up the key at [`KEY_SLOT`](super::KEY_SLOT) and, on a hit, falls
/// through with r0 pointing at the entry's value.
pub type ActionCode<'a> = dyn FnMut(&mut Asm, u32, Label) -> Result<ActionEnd, Error> + 'a;

/// How an action's code ends (see [`ActionCode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionEnd {
    /// It always falls through to the true edge (a counter).
    Continues,
    /// It may jump to the false edge (a rate limit, a quota).
    MayFail,
}

/// The action code of a filter that takes none: an error should the IR
/// have an action anyway.
pub fn no_actions(_: &mut Asm, action: u32, _: Label) -> Result<ActionEnd, Error> {
    Err(Error::new(
        format!("the filter takes action {action}, but its program has no code for actions"),
        Span::default(),
    ))
}

/// A verdict's code: its label, and whether it is jumped to and placed.
#[derive(Clone, Copy)]
pub(super) struct VerdictSlot {
    pub(super) label: Label,
    pub(super) used: bool,
    pub(super) placed: bool,
}

/// The verdicts' code, by verdict number: a packet filter's two inline
/// (no allocation in a compile that takes microseconds), any others after
/// them.
pub(super) struct VerdictSlots {
    first: [VerdictSlot; 2],
    more: Vec<VerdictSlot>,
}

impl VerdictSlots {
    /// Labels for verdicts 0 to `last` (at least 0 and 1); the packet
    /// filter's two keep the names listings have always shown.
    fn new(asm: &mut Asm, last: u32) -> VerdictSlots {
        let slot = |label| VerdictSlot {
            label,
            used: false,
            placed: false,
        };
        VerdictSlots {
            first: [
                slot(asm.named_label("nomatch")),
                slot(asm.named_label("match")),
            ],
            more: (2..=last)
                .map(|v| slot(asm.named_label(format!("verdict{v}"))))
                .collect(),
        }
    }

    /// How many there are.
    pub(super) fn len(&self) -> usize {
        2 + self.more.len()
    }

    /// All of them, by verdict number.
    fn iter(&self) -> impl Iterator<Item = &VerdictSlot> {
        self.first.iter().chain(&self.more)
    }
}

impl std::ops::Index<Verdict> for VerdictSlots {
    type Output = VerdictSlot;
    fn index(&self, v: Verdict) -> &VerdictSlot {
        match v.0 {
            n @ 0..2 => &self.first[n as usize],
            n => &self.more[n as usize - 2],
        }
    }
}

impl std::ops::IndexMut<Verdict> for VerdictSlots {
    fn index_mut(&mut self, v: Verdict) -> &mut VerdictSlot {
        match v.0 {
            n @ 0..2 => &mut self.first[n as usize],
            n => &mut self.more[n as usize - 2],
        }
    }
}

/// What the code's annotations show for each test: the source it comes
/// from (in listings, and in the verifier's errors).
#[derive(Clone, Copy)]
pub enum SourceText<'s> {
    /// A filter of one line (tcpdump's): `filter:1:COL` and the filter.
    Filter(&'s str),
    /// The front end's annotation of each test's span (a ruleset's file,
    /// line and column, and the line).
    Annotate(&'s dyn Fn(Span) -> Annotation),
}

impl<'s> From<&'s str> for SourceText<'s> {
    fn from(filter: &'s str) -> Self {
        SourceText::Filter(filter)
    }
}

/// [`SourceText`] as the generator keeps it: a filter's text shared by
/// every annotation, not copied into each.
pub(super) enum Sources<'s> {
    Filter(Arc<str>),
    Annotate(&'s dyn Fn(Span) -> Annotation),
}

impl<'s> From<SourceText<'s>> for Sources<'s> {
    fn from(s: SourceText<'s>) -> Self {
        match s {
            SourceText::Filter(text) => Sources::Filter(Arc::from(text)),
            SourceText::Annotate(f) => Sources::Annotate(f),
        }
    }
}

impl Sources<'_> {
    /// The annotation of a test from `span`.
    pub(super) fn annotation(&self, span: Span) -> Annotation {
        match self {
            Sources::Filter(text) => {
                let col = text.get(..span.start).map_or(0, |s| s.chars().count()) as u32 + 1;
                Annotation::at("filter", 1, col, text)
            }
            Sources::Annotate(f) => f(span),
        }
    }
}

/// Emits `ir` into `asm` as a whole program body: expects the context in
/// r1 and ends in the caller's verdict code, placed once for each verdict
/// the filter can reach (the verifier refuses dead code). A verdict goes
/// where a jump to it would otherwise be needed, or else after the
/// filter. `source` names the tests' source, for annotations.
pub fn emit<'s>(
    ir: &Ir,
    asm: &mut Asm,
    opts: &EmitOptions,
    source: impl Into<SourceText<'s>>,
    verdict: &mut VerdictCode<'_>,
    action: &mut ActionCode<'_>,
) -> Result<(), Error> {
    if opts.xdp_frags && (opts.target != Target::Xdp || opts.test_run_meta) {
        return Err(Error::new(
            "fragment support is for XDP programs outside the test-run mode",
            Span::default(),
        ));
    }
    if opts.target == Target::Probe && super::prologue::uses_meta(ir) {
        return Err(Error::new(
            "a probe function reads packet bytes only: it has no metadata (direction, \
             interface, VLAN tag outside the frame)",
            Span::default(),
        ));
    }
    let short_reads = ir.blocks.iter().any(|b| b.short != OnShort::Reject);
    if short_reads && opts.target == Target::SocketFilter {
        return Err(Error::new(
            "socket filters end the program on a load past the packet; a test that is \
             false there needs XDP or tc",
            Span::default(),
        ));
    }
    // A label per verdict the filter can end with.
    let last = ir.max_verdict().map_or(0, |v| v.0);
    let verdicts = VerdictSlots::new(asm, last);
    let no_blocks = asm.new_labels(0);
    let mut g = Gen {
        ir,
        asm,
        opts: *opts,
        verdicts,
        short: Edge::REJECT,
        block_labels: no_blocks,
        free: Pool::default(),
        source: Sources::from(source.into()),
        verdict,
        action,
        cache: None,
        acc: None,
        scratch: None,
        loads: match opts.target {
            Target::SocketFilter => Loads::Legacy,
            Target::Probe => Loads::Probe,
            Target::Xdp | Target::Tc => Loads::Direct,
        },
    };
    g.reset_pool();
    let entry = ir.entry.unwrap_or(Edge::ACCEPT);
    if ir.blocks.is_empty() {
        // A constant verdict reads nothing: its code alone.
        let Edge::Verdict(v) = entry else {
            return Err(Error::new(
                "internal error: the entry block is missing",
                Span::default(),
            ));
        };
        if opts.keep_context {
            g.asm.stx(Size::DW, Reg::R10, super::CONTEXT_SLOT, Reg::R1);
        }
        g.place(v);
        return Ok(());
    }
    let slow = g.prologue();
    // With a second copy after it, the first cannot fall through.
    let mut tail = g.body(entry, slow.is_none())?;
    if let Some(slow) = slow {
        g.asm.bind(slow);
        g.loads = Loads::Helper;
        g.reset_pool();
        tail = g.body(entry, true)?;
    }
    // The verdict the last block falls through to first, then the others
    // from the highest down (a packet filter's match before no match).
    let tail = tail.map(|v| v.0 as usize);
    let rest = (0..g.verdicts.len()).rev().filter(|&v| Some(v) != tail);
    for v in tail.into_iter().chain(rest).map(|v| Verdict(v as u32)) {
        if g.verdicts[v].used && !g.verdicts[v].placed {
            g.place(v);
        }
    }
    g.asm.clear_source();
    Ok(())
}

impl Gen<'_, '_> {
    /// The label of verdict `v`, noting that it is used.
    pub(super) fn verdict_label(&mut self, v: Verdict) -> Label {
        let slot = &mut self.verdicts[v];
        slot.used = true;
        slot.label
    }

    /// Where a short read in the current block goes (see [`OnShort`]),
    /// noting that it is used: a load past the packet, a division by
    /// zero, a protochain walk that gives up.
    pub(super) fn rej(&mut self) -> Label {
        match self.short {
            Edge::Verdict(v) => self.verdict_label(v),
            Edge::Block(j) => self.block_labels.get(j.index()),
        }
    }

    /// Places the verdict's code here (and binds its label).
    fn place(&mut self, v: Verdict) {
        let slot = &mut self.verdicts[v];
        debug_assert!(!slot.placed);
        slot.placed = true;
        slot.used = true;
        let label = slot.label;
        self.asm.bind(label);
        self.asm.set_source(Annotation::new("verdict"));
        (self.verdict)(self.asm, v);
    }

    /// The verdict whose code is not placed yet and whose label is `l`.
    pub(super) fn unplaced(&self, l: Label) -> Option<Verdict> {
        let v = self
            .verdicts
            .iter()
            .position(|s| s.label == l && !s.placed)?;
        Some(Verdict(v as u32))
    }

    /// Jumps to `l`; a verdict not placed yet goes here instead (its
    /// code is needed once anyway, and does not fall through).
    pub(super) fn jump(&mut self, l: Label) {
        match self.unplaced(l) {
            Some(v) => self.place(v),
            None => self.asm.ja(l),
        }
    }
}

/// Emits a whole program for `ir`: the filter, with the caller's
/// `verdict(asm, v)` code, which must not fall through, once for each
/// verdict the filter can reach (the verifier refuses dead code), and
/// its `action(asm, a)` code at each action ([`no_actions`] for a filter
/// that takes none).
pub fn emit_program<'s>(
    ir: &Ir,
    eopts: &EmitOptions,
    source: impl Into<SourceText<'s>>,
    mut verdict: impl FnMut(&mut Asm, Verdict),
    mut action: impl FnMut(&mut Asm, u32, Label) -> Result<ActionEnd, Error>,
) -> Result<Code, Error> {
    // About five instructions a block, forty for a protochain walk: room
    // for them all up front, as growing costs more than the spare room.
    let chains = ir
        .blocks
        .iter()
        .filter(|b| matches!(b.cond, Cond::ProtoChain { .. }))
        .count();
    let mut asm = Asm::with_capacity(6 * ir.blocks.len() + 40 * chains + 12);
    emit(ir, &mut asm, eopts, source, &mut verdict, &mut action)?;
    asm.finish().map_err(internal)
}

/// The program type of a target. A probe function runs in any tracing
/// program; its whole program ([`add_program`]) is a raw tracepoint.
pub fn program_type(target: Target) -> ProgramType {
    match target {
        Target::Xdp => ProgramType::Xdp,
        Target::Tc => ProgramType::SchedCls,
        Target::SocketFilter => ProgramType::SocketFilter,
        Target::Probe => ProgramType::RawTracepoint,
    }
}

/// What a whole filter program returns and counts, and how it is named
/// (see [`add_program`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramOptions<'n> {
    /// How the filter is generated.
    pub emit: EmitOptions,
    /// The program's name.
    pub name: &'n str,
    /// The program's type (by default, [`program_type`] of the target;
    /// tcx hooks want theirs).
    pub program_type: ProgramType,
    /// The return value on a match.
    pub on_match: i32,
    /// The return value otherwise.
    pub on_nomatch: i32,
    /// Per-verdict counters: a per-CPU array made by
    /// [`counters_map`](crate::codegen::counters_map), where each run adds
    /// one to [`COUNTER_SEEN`](crate::codegen::COUNTER_SEEN) and, on a
    /// match, to [`COUNTER_MATCHED`](crate::codegen::COUNTER_MATCHED).
    pub counters: Option<MapId>,
}

impl<'n> ProgramOptions<'n> {
    /// A program named `pcap_filter`, of the target's type, returning
    /// `on_match` or `on_nomatch`, without counters.
    pub fn new(emit: EmitOptions, on_match: i32, on_nomatch: i32) -> Self {
        ProgramOptions {
            emit,
            name: "pcap_filter",
            program_type: program_type(emit.target),
            on_match,
            on_nomatch,
            counters: None,
        }
    }

    /// Sets [`ProgramOptions::name`].
    pub fn name(mut self, name: &'n str) -> Self {
        self.name = name;
        self
    }

    /// Sets [`ProgramOptions::program_type`].
    pub fn program_type(mut self, program_type: ProgramType) -> Self {
        self.program_type = program_type;
        self
    }

    /// Sets [`ProgramOptions::counters`].
    pub fn counters(mut self, map: MapId) -> Self {
        self.counters = Some(map);
        self
    }
}

/// Adds the program for `ir` to `object`: the filter, then on each
/// verdict the counters (if any) and the return value. `source` is the
/// filter text, for annotations.
pub fn add_program(
    object: &mut Object,
    ir: &Ir,
    source: &str,
    opts: &ProgramOptions<'_>,
) -> Result<ProgId, Error> {
    let verdict = |asm: &mut Asm, v: Verdict| {
        let matched = v == Verdict::MATCH;
        if let Some(map) = opts.counters {
            if matched {
                count(asm, map, COUNTER_MATCHED);
            }
            count(asm, map, COUNTER_SEEN);
        }
        asm.mov32(
            Reg::R0,
            if matched {
                opts.on_match
            } else {
                opts.on_nomatch
            },
        );
        asm.exit();
    };
    let code = match opts.emit.target {
        Target::Probe => {
            let name = format!("{}{}", opts.name, super::probe::FUNCTION_SUFFIX);
            let func = super::probe::add_probe_function(object, ir, source, &name)?;
            super::probe::raw_tracepoint_caller(func, verdict)?
        }
        _ => emit_program(ir, &opts.emit, source, verdict, no_actions)?,
    };
    let prog = object
        .add_program(opts.name, opts.program_type, code)
        .map_err(internal)?;
    if opts.emit.xdp_frags {
        object.set_xdp_frags(prog, true).map_err(internal)?;
    }
    Ok(prog)
}

/// Builds a one-program object for `ir`: the program (named
/// `pcap_filter`) returns `on_match` when the filter matches and
/// `on_nomatch` otherwise.
pub fn program(
    ir: &Ir,
    eopts: &EmitOptions,
    source: &str,
    on_match: i32,
    on_nomatch: i32,
) -> Result<(Object, ProgId), Error> {
    let mut object = Object::new();
    let opts = ProgramOptions::new(*eopts, on_match, on_nomatch);
    let prog = add_program(&mut object, ir, source, &opts)?;
    Ok((object, prog))
}
