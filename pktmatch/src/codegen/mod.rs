//! Code generation: the IR to eBPF for XDP, tc (SCHED_CLS) and socket
//! filters, into a caller's [`Asm`].
//!
//! Registers: r6 holds the context (in the test-run mode: the captured
//! length), r7 the packet start and r8 the packet end (direct access
//! only); values are computed in r0-r4; r9 holds `data + offset` for
//! loads at a variable offset; r5 is scratch for bounds checks.
//!
//! Socket filters load with `ld_abs`/`ld_ind`, which check the bounds
//! themselves, leave their value in r0 and clobber r0-r5: values are
//! computed in r0 and kept in r7/r8 only while another load runs; r9
//! holds the variable offset (like classic BPF's X register).
//!
//! XDP with fragment support (`EmitOptions::xdp_frags`) emits the filter
//! twice: with direct access, for frames whose first buffer holds all the
//! filter can read, and then with `bpf_xdp_load_bytes`, which clobbers
//! r0-r5 as `ld_abs` does, so that copy has a socket filter's shape.
//!
//! After a bounds check, r5 holds the end it checked, so the next check
//! from the same base moves r5 by the difference (two instructions
//! rather than three). For loads at a variable offset, r9 itself moves
//! to the end it checked, and those loads reach back from it.
//!
//! Bounds checks: before a block, one check covers the largest constant
//! offset that *every* path from that block to a verdict other than no
//! match reads (with libpcap's meaning: paths that end with no match
//! anyway do not count, ending earlier is the same verdict; with
//! [`Semantics::Exact`], the block's own reads, and a failed check takes
//! the block's short edge), and only when the checks on every path into
//! the block do not already cover it. Loads at variable offsets are
//! checked one by one. Offsets beyond 64 KiB count as outside the packet
//! (XDP and tc see at most that much linear data).

use std::sync::Arc;

use bpf_builder::asm::{Annotation, Asm, Label};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, Endian, Insn, JmpOp, Operand, Reg, Size};

use crate::ir::{
    BinOp, Block, CmpOp, Cond, Edge, Ir, MAX_VARS, Meta, OnShort, PROTOCHAIN_STEPS, Semantics, Val,
    ValNode, Verdict,
};
use crate::{Error, Span};

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
}

impl EmitOptions {
    /// Options for `target`: packets as the hook sees them, no fragments.
    pub fn new(target: Target) -> Self {
        EmitOptions {
            target,
            test_run_meta: false,
            xdp_frags: false,
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
}

/// Largest packet offset the generated code can read at a constant
/// offset (the verifier's limit).
pub const MAX_PACKET_OFF: u32 = 0xffff;

/// Largest variable part of an offset (so that, with the constant part,
/// it stays within what the verifier tracks).
pub const MAX_VAR_OFF: u32 = 0x7fff;

/// Socket filters: largest packet offset `ld_abs`/`ld_ind` can read
/// (their offsets are signed; negative ones address special areas).
const SOCKET_MAX_OFF: u32 = 0x7fff_ffff;

/// Socket filters: largest variable part of an offset (with a constant
/// part of at most 64 KiB the sum stays below [`SOCKET_MAX_OFF`]).
const SOCKET_MAX_VAR_OFF: u32 = 0x7ffe_0000;

const CTX: Reg = Reg::R6;
const DATA: Reg = Reg::R7;
const END: Reg = Reg::R8;
const SCRATCH: Reg = Reg::R5;
/// Ethernet header length.
const ETH_HLEN: u32 = 14;
/// Stack slot of the wire length in the test-run mode.
const WIRELEN_SLOT: i16 = -8;

/// Socket filters' protochain walk: the next header, below the IR
/// variables.
const PROTOCHAIN_SLOT: i16 = -16 - 8 * MAX_VARS as i16;

/// Where `bpf_xdp_load_bytes` puts the bytes it loads.
const LOAD_SLOT: i16 = PROTOCHAIN_SLOT - 8;

/// An 8-byte stack slot (offset from r10) that the generated code never
/// touches: the caller's code around it may keep a value there.
pub const CALLER_SLOT: i16 = LOAD_SLOT - 8;

/// How the generated code reads packet bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loads {
    /// Directly between `data` and `data_end`, after bounds checks the
    /// verifier sees.
    Direct,
    /// `ld_abs`/`ld_ind` (socket filters): they check the bounds and end
    /// the program, returning 0, past them.
    Legacy,
    /// `bpf_xdp_load_bytes` into a stack slot (XDP frames in fragments);
    /// a load that fails rejects. Like `ld_abs`, a call clobbers r0-r5,
    /// so the code has the shape of a socket filter's.
    Helper,
}

/// `r0 = packet[index + k ..][..size]` in host order, by `ld_abs`/`ld_ind`
/// or by `bpf_xdp_load_bytes` (the context in r6); clobbers r0-r5.
fn packet_load(a: &mut Asm, loads: Loads, size: u8, index: Option<Reg>, k: u32, reject: Label) {
    let sz = size_of(size);
    match loads {
        Loads::Direct => unreachable!("direct loads do not go through the helpers"),
        Loads::Legacy => a.emit(match index {
            None => Insn::ld_abs(sz, k as i32),
            Some(x) => Insn::ld_ind(sz, x, k as i32),
        }),
        Loads::Helper => {
            a.mov64(Reg::R1, CTX);
            match index {
                None => a.mov32(Reg::R2, k as i32),
                Some(x) => {
                    a.mov32(Reg::R2, x);
                    if k != 0 {
                        a.alu32(AluOp::Add, Reg::R2, k as i32);
                    }
                }
            }
            a.mov64(Reg::R3, Reg::R10);
            a.add64(Reg::R3, i32::from(LOAD_SLOT));
            a.mov32(Reg::R4, i32::from(size));
            a.call(Helper::XdpLoadBytes);
            a.jmp32(JmpOp::Ne, Reg::R0, 0, reject);
            a.ldx(sz, Reg::R0, Reg::R10, LOAD_SLOT);
            if size > 1 {
                a.endian(Endian::Be, Reg::R0, 8 * size);
            }
        }
    }
}

/// Stack slot of IR variable `n` (below the wire length).
fn var_slot(n: u32) -> i16 {
    debug_assert!(n < MAX_VARS);
    -16 - 8 * n.min(MAX_VARS) as i16
}

/// The caller's verdict code: `verdict(asm, v)` emits what the program
/// does when the filter ends with verdict `v` (for a packet filter,
/// [`Verdict::MATCH`] or [`Verdict::NO_MATCH`]); it must not fall through
/// (it ends in `exit` or a jump).
pub type VerdictCode<'v> = dyn FnMut(&mut Asm, Verdict) + 'v;

/// A verdict's code: its label, and whether it is jumped to and placed.
#[derive(Clone, Copy)]
struct VerdictSlot {
    label: Label,
    used: bool,
    placed: bool,
}

/// Emits `ir` into `asm` as a whole program body: expects the context in
/// r1 and ends in the caller's verdict code, placed once for each verdict
/// the filter can reach (the verifier refuses dead code). A verdict goes
/// where a jump to it would otherwise be needed, or else after the
/// filter. `source` is the filter text, for annotations.
pub fn emit(
    ir: &Ir,
    asm: &mut Asm,
    opts: &EmitOptions,
    source: &str,
    verdict: &mut VerdictCode<'_>,
) -> Result<(), Error> {
    if opts.xdp_frags && (opts.target != Target::Xdp || opts.test_run_meta) {
        return Err(Error::new(
            "fragment support is for XDP programs outside the test-run mode",
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
    // A label per verdict the filter can end with (the packet filter's
    // two keep the names listings have always shown).
    let last = ir
        .blocks
        .iter()
        .flat_map(|b| [b.t, b.f])
        .chain(ir.entry)
        .filter_map(|e| match e {
            Edge::Verdict(v) => Some(v.0),
            Edge::Block(_) => None,
        })
        .max()
        .unwrap_or(0)
        .max(Verdict::MATCH.0);
    let verdicts = (0..=last)
        .map(|v| VerdictSlot {
            label: match Verdict(v) {
                Verdict::MATCH => asm.named_label("match"),
                Verdict::NO_MATCH => asm.named_label("nomatch"),
                _ => asm.named_label(format!("verdict{v}")),
            },
            used: false,
            placed: false,
        })
        .collect();
    let mut g = Gen {
        ir,
        asm,
        opts: *opts,
        verdicts,
        short: Edge::REJECT,
        block_labels: Vec::new(),
        free: Pool::default(),
        source: Arc::from(source),
        verdict,
        cache: None,
        acc: None,
        scratch: None,
        loads: match opts.target {
            Target::SocketFilter => Loads::Legacy,
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
    for v in tail.into_iter().chain(rest) {
        if g.verdicts[v].used && !g.verdicts[v].placed {
            g.place(Verdict(v as u32));
        }
    }
    g.asm.clear_source();
    Ok(())
}

/// Register-cache state on entry to a block: the meet over the jumps
/// into it (all emitted before it: jumps between blocks go forward; only
/// jumps to a verdict's code, placed earlier, go back).
type State = (Option<(Val, u64)>, Option<(Val, bool)>, Option<Scratch>);

/// What code generation keeps per block.
#[derive(Clone, Copy, Default)]
struct Slot {
    /// Bytes the block's check covers: with libpcap's meaning, what every
    /// path from the block to a verdict other than no match reads (None:
    /// every path ends with no match); otherwise what the block reads.
    need: Option<u64>,
    /// Bytes already checked on every path into the block.
    known: Option<u64>,
    /// The bounds check the block starts with.
    check: Check,
    /// The register caches on entry, once a jump into it is emitted.
    state: Option<State>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Check {
    #[default]
    None,
    /// The packet must have at least this many bytes.
    Len(u32),
    /// Every path from here rejects.
    Fail,
}

/// Whether any test reads packet metadata (from the context).
fn uses_meta(ir: &Ir) -> bool {
    fn val(ir: &Ir, v: Val) -> bool {
        match ir.node(v) {
            ValNode::Meta(_) => true,
            ValNode::Load { off: Some(o), .. } | ValNode::Neg(o) => val(ir, o),
            ValNode::Bin(_, a, b) => val(ir, a) || val(ir, b),
            _ => false,
        }
    }
    ir.blocks.iter().any(|b| match b.cond {
        Cond::Cmp { a, b, .. } => val(ir, a) || val(ir, b),
        Cond::ProtoChain { .. } => false,
        Cond::Let { val: v, .. } => val(ir, v),
    })
}

/// Constant-offset bytes every path from `v`'s evaluation reads.
fn val_need(ir: &Ir, v: Val) -> u64 {
    match ir.node(v) {
        ValNode::Load { off: None, k, size } => u64::from(k) + u64::from(size),
        ValNode::Load { off: Some(o), .. } => val_need(ir, o),
        ValNode::Bin(_, a, b) => val_need(ir, a).max(val_need(ir, b)),
        ValNode::Neg(a) => val_need(ir, a),
        _ => 0,
    }
}

fn cond_need(ir: &Ir, c: Cond) -> u64 {
    match c {
        Cond::Cmp { a, b, .. } => val_need(ir, a).max(val_need(ir, b)),
        Cond::ProtoChain { nl, ipv6, .. } => u64::from(nl) + if ipv6 { 7 } else { 10 },
        Cond::Let { val, .. } => val_need(ir, val),
    }
}

/// Where to check the packet length, and for how much (into
/// `slots[i].check`).
///
/// With libpcap's meaning, a check covers what every path to a verdict
/// other than no match reads: a packet too short for it ends with no
/// match whichever test reads past its end. Otherwise a short read can lead anywhere, so each
/// block checks what it reads itself, and a failed check takes the
/// block's short edge.
fn plan_checks(ir: &Ir, entry: Edge, slots: &mut [Slot]) {
    let n = ir.blocks.len();
    let hoist = ir.semantics == Semantics::Libpcap;
    for i in (0..n).rev() {
        let b = ir.blocks[i];
        if !hoist {
            slots[i].need = Some(cond_need(ir, b.cond));
            continue;
        }
        let succ = |e: Edge| match e {
            Edge::REJECT => None,
            Edge::Verdict(_) => Some(0),
            Edge::Block(j) => slots[j as usize].need,
        };
        let after = match (succ(b.t), succ(b.f)) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, None) => x,
            (None, y) => y,
        };
        slots[i].need = after.map(|a| a.max(cond_need(ir, b.cond)));
    }
    if let Edge::Block(i) = entry {
        slots[i as usize].known = Some(0);
    }
    for i in 0..n {
        let k = slots[i].known.unwrap_or(0);
        let after = match slots[i].need {
            None => {
                slots[i].check = Check::Fail;
                continue;
            }
            Some(nd) if nd > u64::from(MAX_PACKET_OFF) => {
                slots[i].check = Check::Fail;
                continue;
            }
            Some(nd) if nd > k => {
                slots[i].check = Check::Len(nd as u32);
                nd
            }
            Some(_) => k,
        };
        let b = ir.blocks[i];
        // A short read reaches the short edge with only what was known.
        let short = match b.short {
            OnShort::Reject => None,
            OnShort::True | OnShort::False => Some((b.short_edge(), k)),
        };
        for (e, known) in [(b.t, after), (b.f, after)].into_iter().chain(short) {
            if let Edge::Block(j) = e {
                let j = j as usize;
                slots[j].known = Some(slots[j].known.map_or(known, |x| x.min(known)));
            }
        }
    }
}

struct Gen<'a, 'v> {
    ir: &'a Ir,
    asm: &'a mut Asm,
    opts: EmitOptions,
    /// The verdicts' code, by verdict number.
    verdicts: Vec<VerdictSlot>,
    /// Where a short read in the block being emitted goes.
    short: Edge,
    /// The blocks' labels in the copy of the filter being emitted.
    block_labels: Vec<Label>,
    free: Pool,
    source: Arc<str>,
    /// The caller's verdict code.
    verdict: &'a mut VerdictCode<'v>,
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

/// r5 after a bounds check on a constant offset: `data + n`, so the next
/// check adds the difference instead of starting from `data` again.
type Scratch = u64;

/// The free value registers: a stack of at most six (five value
/// registers and, while an offset is computed, the pointer register),
/// kept inline (a vector would cost an allocation per compile).
#[derive(Clone, Copy, Default)]
struct Pool {
    regs: [Option<Reg>; 6],
    len: usize,
}

impl Pool {
    fn new(regs: &[Reg]) -> Pool {
        let mut p = Pool::default();
        for &r in regs {
            p.push(r);
        }
        p
    }

    fn pop(&mut self) -> Option<Reg> {
        self.len = self.len.checked_sub(1)?;
        self.regs[self.len]
    }

    fn push(&mut self, r: Reg) {
        self.regs[self.len] = Some(r);
        self.len += 1;
    }

    fn last(&self) -> Option<&Reg> {
        self.regs[..self.len].last()?.as_ref()
    }

    /// Takes `r` out of the stack, if it is there.
    fn remove(&mut self, r: Reg) {
        if let Some(i) = self.regs[..self.len].iter().position(|&x| x == Some(r)) {
            self.regs.copy_within(i + 1..self.len, i);
            self.len -= 1;
        }
    }

    /// Moves r0, if free, to the top of the stack.
    fn raise_r0(&mut self) {
        if let Some(i) = self.regs[..self.len]
            .iter()
            .position(|&r| r == Some(Reg::R0))
        {
            self.regs.swap(i, self.len - 1);
        }
    }
}

/// The pointer cache register (direct access).
const PTR: Reg = Reg::R9;

type R<T> = Result<T, Error>;

/// Byte-swaps the low `size` bytes of `k` (network to host order on a
/// little-endian machine).
fn swap(k: u32, size: u8) -> u32 {
    if cfg!(target_endian = "big") {
        return k;
    }
    match size {
        2 => u32::from((k as u16).swap_bytes()),
        4 => k.swap_bytes(),
        _ => k,
    }
}

fn size_of(n: u8) -> Size {
    match n {
        1 => Size::B,
        2 => Size::H,
        _ => Size::W,
    }
}

impl Gen<'_, '_> {
    /// The label of verdict `v`, noting that it is used.
    fn verdict_label(&mut self, v: Verdict) -> Label {
        let slot = &mut self.verdicts[v.0 as usize];
        slot.used = true;
        slot.label
    }

    /// Where a short read in the current block goes (see [`OnShort`]),
    /// noting that it is used: a load past the packet, a division by
    /// zero, a protochain walk that gives up.
    fn rej(&mut self) -> Label {
        match self.short {
            Edge::Verdict(v) => self.verdict_label(v),
            Edge::Block(j) => self.block_labels[j as usize],
        }
    }

    /// Places the verdict's code here (and binds its label).
    fn place(&mut self, v: Verdict) {
        let slot = &mut self.verdicts[v.0 as usize];
        debug_assert!(!slot.placed);
        slot.placed = true;
        slot.used = true;
        let label = slot.label;
        self.asm.bind(label);
        self.asm.set_source(Annotation::new("verdict"));
        (self.verdict)(self.asm, v);
    }

    /// The verdict whose code is not placed yet and whose label is `l`.
    fn unplaced(&self, l: Label) -> Option<Verdict> {
        let v = self
            .verdicts
            .iter()
            .position(|s| s.label == l && !s.placed)?;
        Some(Verdict(v as u32))
    }

    /// Jumps to `l`; a verdict not placed yet goes here instead (its
    /// code is needed once anyway, and does not fall through).
    fn jump(&mut self, l: Label) {
        match self.unplaced(l) {
            Some(v) => self.place(v),
            None => self.asm.ja(l),
        }
    }

    fn direct(&self) -> bool {
        self.loads == Loads::Direct
    }

    fn frags(&self) -> bool {
        self.opts.xdp_frags && self.opts.target == Target::Xdp
    }

    fn test_mode(&self) -> bool {
        self.opts.test_run_meta && self.opts.target == Target::Xdp
    }

    fn reset_pool(&mut self) {
        self.free = if self.direct() {
            Pool::new(&[Reg::R4, Reg::R3, Reg::R2, Reg::R1, Reg::R0])
        } else {
            // r0 first: `ld_abs` leaves its value there. A value that must
            // survive another load moves to r7/r8 (see `keep_across_loads`).
            Pool::new(&[Reg::R8, Reg::R7, Reg::R0])
        };
    }

    /// A free register; r0 is about to change, so it no longer holds
    /// the accumulated value.
    fn alloc(&mut self) -> R<Reg> {
        let r = self
            .free
            .pop()
            .ok_or_else(|| Error::new("expression too deep for the registers", Span::default()))?;
        if r == Reg::R0 {
            self.acc = None;
        }
        Ok(r)
    }

    /// Returns `r` to the pool, keeping r0 on top when it is free: values
    /// land in r0 first (where loads and `acc` want them).
    fn release(&mut self, r: Reg) {
        self.free.push(r);
        self.free.raise_r0();
    }

    /// Emits one copy of the filter's blocks, reading as `self.loads`
    /// says, from the entry to the verdict labels.
    /// With `last`, nothing follows but verdicts: returns the verdict
    /// the last block falls through to, to be placed first.
    fn body(&mut self, entry: Edge, last: bool) -> R<Option<Verdict>> {
        let ir = self.ir;
        let labels = self.asm.new_labels(ir.blocks.len());
        self.block_labels = (0..ir.blocks.len()).map(|i| labels.get(i)).collect();
        let target = |e: Edge, g: &mut Gen<'_, '_>| match e {
            Edge::Verdict(v) => g.verdict_label(v),
            Edge::Block(i) => labels.get(i as usize),
        };
        (self.cache, self.acc, self.scratch) = (None, None, None);
        if entry != Edge::Block(0) {
            let l = target(entry, self);
            self.jump(l);
        }
        // One allocation for all the per-block state.
        let mut slots = vec![Slot::default(); ir.blocks.len()];
        let mut tail = None;
        if self.direct() {
            plan_checks(ir, entry, &mut slots);
        }
        for (i, b) in ir.blocks.iter().enumerate() {
            self.asm.bind(labels.get(i));
            self.annotate(b.span);
            (self.cache, self.acc, self.scratch) = slots[i].state.unwrap_or((None, None, None));
            self.short = b.short_edge();
            match slots[i].check {
                Check::None => {}
                // The block's code stays, dead, so that what follows it
                // stays statically reachable for the verifier.
                Check::Fail => self.always_reject(),
                Check::Len(n) => self.check_len(n),
            }
            let mut next = Edge::Block(i as u32 + 1);
            if i + 1 == ir.blocks.len() && last {
                // Fall through to a verdict whose code is not placed yet
                // (the higher one, a match, when both edges have one).
                let open = |e: Edge| match e {
                    Edge::Verdict(v) if !self.verdicts[v.0 as usize].placed => Some(v),
                    _ => None,
                };
                if let Some(v) = open(b.t).max(open(b.f)) {
                    next = Edge::Verdict(v);
                    tail = Some(v);
                }
            }
            let (t, f) = (target(b.t, self), target(b.f, self));
            self.block(b, t, f, b.t == next, b.f == next)?;
            // A short read may leave mid-block, with other registers than
            // at its end: the block it goes to assumes nothing.
            if b.short != OnShort::Reject
                && let Edge::Block(j) = b.short_edge()
            {
                slots[j as usize].state = Some((None, None, None));
            }
            for e in [b.t, b.f] {
                if let Edge::Block(j) = e {
                    let j = j as usize;
                    slots[j].state = Some(match slots[j].state {
                        None => (self.cache, self.acc, self.scratch),
                        Some((pc, pa, ps)) => (
                            match (pc, self.cache) {
                                // r9 must hold the same on every path in.
                                (Some((v, x)), Some((w, y))) if v == w && x == y => Some((v, x)),
                                _ => None,
                            },
                            if pa == self.acc { pa } else { None },
                            if ps == self.scratch { ps } else { None },
                        ),
                    });
                }
            }
        }
        Ok(tail)
    }

    /// Annotates what follows with the whole expression and the column of
    /// `span` in it: BTF line info then shows the filter with the place
    /// this code comes from, as a C compiler shows the source line.
    fn annotate(&mut self, span: Span) {
        let col = self
            .source
            .get(..span.start)
            .map_or(0, |s| s.chars().count()) as u32
            + 1;
        self.asm
            .set_source(Annotation::at("filter", 1, col, &self.source));
    }

    /// The prologue; with fragment support, it also decides which copy of
    /// the filter runs and returns the label of the second (helper loads),
    /// if there is one.
    fn prologue(&mut self) -> Option<Label> {
        self.asm.set_source(Annotation::new("prologue"));
        if self.frags() {
            self.asm.mov64(CTX, Reg::R1);
            return self.frags_prologue();
        }
        let needs_ctx = self.opts.target != Target::Xdp || uses_meta(self.ir);
        let a = &mut *self.asm;
        if needs_ctx {
            a.mov64(CTX, Reg::R1);
        }
        match self.opts.target {
            Target::Xdp => {
                a.ldx(Size::W, DATA, Reg::R1, 0);
                a.ldx(Size::W, END, Reg::R1, 4);
                if self.opts.test_run_meta {
                    // struct { u32 caplen, wirelen; } just before data.
                    a.ldx(Size::W, Reg::R2, Reg::R1, 8);
                    a.mov64(Reg::R3, Reg::R2);
                    a.add64(Reg::R3, 8);
                    // No metadata: the test run's input is not ours.
                    let nomatch = self.verdicts[Verdict::NO_MATCH.0 as usize].label;
                    self.verdicts[Verdict::NO_MATCH.0 as usize].used = true;
                    let a = &mut *self.asm;
                    a.jmp(JmpOp::Gt, Reg::R3, DATA, nomatch);
                    a.ldx(Size::W, CTX, Reg::R2, 0);
                    a.ldx(Size::W, Reg::R4, Reg::R2, 4);
                    a.stx(Size::W, Reg::R10, WIRELEN_SLOT, Reg::R4);
                }
            }
            Target::Tc => {
                a.ldx(Size::W, DATA, Reg::R1, 76);
                a.ldx(Size::W, END, Reg::R1, 80);
                self.pull_what_is_read();
            }
            Target::SocketFilter => {}
        }
        None
    }

    /// How many bytes of a packet the filter can read, at most
    /// [`MAX_PACKET_OFF`] (also when unbounded).
    fn readable(&self) -> u32 {
        self.ir
            .max_read()
            .map_or(MAX_PACKET_OFF, |n| n.min(u64::from(MAX_PACKET_OFF)) as u32)
    }

    /// XDP with fragment support: `data .. data_end` is only the frame's
    /// first buffer. The whole length goes to the stack (for `len`); when
    /// the frame is in one buffer, or its first buffer holds all the
    /// filter can read, the direct-access copy runs; else the copy with
    /// helper loads, whose label this returns (none when the filter reads
    /// no packet byte).
    fn frags_prologue(&mut self) -> Option<Label> {
        let need = self.readable();
        let a = &mut *self.asm;
        a.call(Helper::XdpGetBuffLen);
        a.stx(Size::W, Reg::R10, WIRELEN_SLOT, Reg::R0);
        a.ldx(Size::W, DATA, CTX, 0);
        a.ldx(Size::W, END, CTX, 4);
        if need == 0 {
            return None;
        }
        let (direct, helper) = (a.new_label(), a.new_label());
        let first = Reg::R2;
        a.mov64(first, END);
        a.alu64(AluOp::Sub, first, DATA);
        a.jmp(JmpOp::Ge, first, Reg::R0, direct);
        a.jmp(JmpOp::Ge, first, need as i32, direct);
        a.ja(helper);
        a.bind(direct);
        Some(helper)
    }

    /// tc: direct access sees only the skb's linear data, and the rest of
    /// a packet (TCP payload, for one) often sits in page fragments. When
    /// the linear part is shorter than both the packet and what the filter
    /// can read, `bpf_skb_pull_data` makes that much linear, so the filter
    /// reads what libpcap reads. (If the pull fails, loads past the
    /// linear part reject, as for a packet cut short.) Part of the
    /// prologue: r1 still holds the context.
    fn pull_what_is_read(&mut self) {
        let need = self.readable();
        // The first 14 bytes are linear: Ethernet drivers pull the header
        // for `eth_type_trans`, and raw-IP devices (tun, wireguard) hand
        // over at least a linear IP header.
        if need <= ETH_HLEN {
            return;
        }
        let a = &mut *self.asm;
        let linear = a.new_label();
        let (len, head) = (Reg::R2, Reg::R3);
        a.mov64(head, END);
        a.alu64(AluOp::Sub, head, DATA);
        a.jmp(JmpOp::Ge, head, need as i32, linear);
        a.ldx(Size::W, len, CTX, 0);
        a.jmp(JmpOp::Ge, head, len, linear);
        let pull = a.new_label();
        a.jmp32(JmpOp::Le, len, need as i32, pull);
        a.mov32(len, need as i32);
        // r1 still holds the context.
        a.bind(pull);
        a.call(Helper::SkbPullData);
        a.ldx(Size::W, DATA, CTX, 76);
        a.ldx(Size::W, END, CTX, 80);
        a.bind(linear);
    }

    /// Rejects, with a conditional jump so that the code after it stays
    /// statically reachable (the verifier refuses unreachable code).
    fn always_reject(&mut self) {
        self.scratch = None;
        self.asm.mov32(SCRATCH, 0);
        let reject = self.rej();
        self.asm.jmp32(JmpOp::Eq, SCRATCH, 0, reject);
    }

    /// Rejects unless the packet has `n` bytes.
    fn check_len(&mut self, n: u32) {
        let reject = self.rej();
        self.point_scratch(u64::from(n));
        let a = &mut *self.asm;
        a.jmp(JmpOp::Gt, SCRATCH, END, reject);
        if self.opts.test_run_meta && self.opts.target == Target::Xdp {
            a.jmp(JmpOp::Lt, CTX, n as i32, reject);
        }
    }

    /// Makes r5 `data + n`, from what r5 already holds when it can.
    fn point_scratch(&mut self, n: u64) {
        match self.scratch {
            Some(m) => {
                if n != m {
                    self.asm.add64(SCRATCH, (n as i64 - m as i64) as i32);
                }
            }
            None => {
                self.asm.mov64(SCRATCH, DATA);
                self.asm.add64(SCRATCH, n as i32);
            }
        }
        self.scratch = Some(n);
    }

    fn block(&mut self, b: &Block, t: Label, f: Label, t_next: bool, f_next: bool) -> R<()> {
        match b.cond {
            Cond::Cmp { a, op, b: rhs, .. } => self.cmp(a, op, rhs, t, f, t_next, f_next),
            Cond::ProtoChain { nl, ipv6, proto } => {
                self.acc = None;
                let ra = self.protochain(nl, ipv6, proto)?;
                self.branch(
                    ra,
                    JmpOp::Eq,
                    Operand::Imm(proto as i32),
                    t,
                    f,
                    t_next,
                    f_next,
                );
                self.release(ra);
                Ok(())
            }
            Cond::Let { var, val } => {
                let r = self.eval(val, false)?;
                self.asm.stx(Size::W, Reg::R10, var_slot(var), r);
                self.release(r);
                // r0 now holds the variable: what follows reads that.
                let v = self.ir.find(ValNode::Var(var)).unwrap_or(val);
                self.acc = (r == Reg::R0).then_some((v, false));
                if !t_next {
                    self.jump(t);
                }
                Ok(())
            }
        }
    }

    /// Emits `if a op b goto t else goto f`, falling through where it can.
    #[allow(clippy::too_many_arguments)]
    fn branch(
        &mut self,
        a: Reg,
        op: JmpOp,
        b: Operand,
        t: Label,
        f: Label,
        t_next: bool,
        f_next: bool,
    ) {
        // A test kept only for its loads (libpcap unoptimised).
        if t == f {
            if !t_next {
                self.jump(t);
            }
            return;
        }
        // Falling through to `t`, or placing its verdict code here, wants
        // the inverted test.
        if (t_next || (!f_next && self.unplaced(t).is_some()))
            && let Some(inv) = op.invert()
        {
            self.asm.jmp32(inv, a, b, f);
            if !t_next {
                self.jump(t);
            }
            return;
        }
        self.asm.jmp32(op, a, b, t);
        if !f_next {
            self.jump(f);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn cmp(
        &mut self,
        a: Val,
        op: CmpOp,
        b: Val,
        t: Label,
        f: Label,
        t_next: bool,
        f_next: bool,
    ) -> R<()> {
        let jop = match op {
            CmpOp::Eq => JmpOp::Eq,
            CmpOp::Gt => JmpOp::Gt,
            CmpOp::Ge => JmpOp::Ge,
            CmpOp::Set => JmpOp::Set,
        };
        let k = self.ir.const_of(b);
        // Compare in network order when that saves the byte swap.
        let raw_size = match (op, k) {
            (CmpOp::Eq | CmpOp::Set, Some(k)) if self.direct() => self
                .raw_size(a)
                .filter(|s| op == CmpOp::Set || u64::from(k) < (1u64 << (8 * u32::from(*s)))),
            _ => None,
        };
        let raw = raw_size.is_some();
        let mut ra = self.eval(a, raw)?;
        let rhs = match k {
            Some(k) => Operand::Imm(raw_size.map_or(k, |s| swap(k, s)) as i32),
            None => {
                ra = self.keep_across_loads(ra, b)?;
                Operand::Reg(self.eval(b, false)?)
            }
        };
        self.branch(ra, jop, rhs, t, f, t_next, f_next);
        if let Operand::Reg(r) = rhs {
            self.release(r);
        }
        self.release(ra);
        self.acc = (ra == Reg::R0).then_some((a, raw));
        Ok(())
    }

    /// The load size if `v` can be computed in network byte order: a load
    /// of 2 or 4 bytes, possibly masked by a constant.
    fn raw_size(&self, v: Val) -> Option<u8> {
        match self.ir.node(v) {
            ValNode::Load { size, .. } if size > 1 => Some(size),
            ValNode::Bin(BinOp::And, x, m) if self.ir.const_of(m).is_some() => self.raw_size(x),
            _ => None,
        }
    }

    /// Computes `v` into a fresh register (`raw`: in network byte order,
    /// see [`Gen::raw_size`]).
    fn eval(&mut self, v: Val, raw: bool) -> R<Reg> {
        if self.acc == Some((v, raw)) && self.free.last() == Some(&Reg::R0) {
            return self.alloc();
        }
        match self.ir.node(v) {
            ValNode::Const(k) => {
                let r = self.alloc()?;
                self.asm.mov32(r, k as i32);
                Ok(r)
            }
            ValNode::Len => {
                let r = self.alloc()?;
                match self.opts.target {
                    // The prologue put the whole length there.
                    Target::Xdp if self.test_mode() || self.frags() => {
                        self.asm.ldx(Size::W, r, Reg::R10, WIRELEN_SLOT)
                    }
                    Target::Xdp => {
                        self.asm.mov64(r, END);
                        self.asm.alu64(AluOp::Sub, r, DATA);
                    }
                    Target::Tc | Target::SocketFilter => self.asm.ldx(Size::W, r, CTX, 0),
                }
                Ok(r)
            }
            ValNode::Meta(m) => {
                let r = self.alloc()?;
                self.meta(m, r);
                Ok(r)
            }
            ValNode::Var(n) => {
                let r = self.alloc()?;
                self.asm.ldx(Size::W, r, Reg::R10, var_slot(n));
                Ok(r)
            }
            ValNode::Load { off, k, size } => {
                let r = match off {
                    None => {
                        let r = self.alloc()?;
                        self.load_abs(r, k, size, raw);
                        r
                    }
                    Some(o) => {
                        self.point_at(o)?;
                        let r = self.alloc()?;
                        self.load_cached(r, k, size, raw);
                        r
                    }
                };
                Ok(r)
            }
            ValNode::Neg(a) => {
                let r = self.eval(a, false)?;
                self.asm.alu32(AluOp::Neg, r, 0);
                Ok(r)
            }
            ValNode::Bin(op, a, b) => {
                let size = if raw { self.raw_size(a) } else { None };
                let mut ra = self.eval(a, raw)?;
                if let Some(k) = self.ir.const_of(b) {
                    let k = match size {
                        Some(s) if op == BinOp::And => swap(k, s),
                        _ => k,
                    };
                    self.bin_imm(op, ra, k);
                } else {
                    ra = self.keep_across_loads(ra, b)?;
                    let rb = self.eval(b, false)?;
                    self.bin_reg(op, ra, rb);
                    self.release(rb);
                }
                Ok(ra)
            }
        }
    }

    fn meta(&mut self, m: Meta, r: Reg) {
        let off = match (self.opts.target, m) {
            (Target::Xdp, Meta::IfIndex) => 12,
            (Target::Xdp, _) => {
                // No metadata tag and no direction in XDP: tags are in the
                // frame and every packet is incoming.
                self.asm.mov32(r, 0);
                return;
            }
            (_, Meta::VlanPresent) => 20,
            (_, Meta::VlanTci) => 24,
            (_, Meta::IfIndex) => 40,
            (_, Meta::PktType) => 4,
        };
        self.asm.ldx(Size::W, r, CTX, off);
    }

    fn bin_imm(&mut self, op: BinOp, r: Reg, k: u32) {
        let a = &mut *self.asm;
        let alu = match op {
            BinOp::Add => AluOp::Add,
            BinOp::Sub => AluOp::Sub,
            BinOp::Mul => AluOp::Mul,
            BinOp::Div | BinOp::Mod if k == 0 => {
                self.always_reject();
                return;
            }
            BinOp::Div => AluOp::Div,
            BinOp::Mod => AluOp::Mod,
            BinOp::And => AluOp::And,
            BinOp::Or => AluOp::Or,
            BinOp::Xor => AluOp::Xor,
            BinOp::Shl | BinOp::Shr if k >= 32 => {
                a.mov32(r, 0);
                return;
            }
            BinOp::Shl => AluOp::Lsh,
            BinOp::Shr => AluOp::Rsh,
        };
        a.alu32(alu, r, k as i32);
    }

    fn bin_reg(&mut self, op: BinOp, r: Reg, b: Reg) {
        let reject = self.rej();
        let alu = match op {
            BinOp::Add => AluOp::Add,
            BinOp::Sub => AluOp::Sub,
            BinOp::Mul => AluOp::Mul,
            BinOp::Div | BinOp::Mod => {
                self.asm.jmp32(JmpOp::Eq, b, 0, reject);
                if op == BinOp::Div {
                    AluOp::Div
                } else {
                    AluOp::Mod
                }
            }
            BinOp::And => AluOp::And,
            BinOp::Or => AluOp::Or,
            BinOp::Xor => AluOp::Xor,
            BinOp::Shl | BinOp::Shr => {
                let (small, done) = (self.asm.new_label(), self.asm.new_label());
                self.asm.jmp32(JmpOp::Lt, b, 32, small);
                self.asm.mov32(r, 0);
                self.asm.ja(done);
                self.asm.bind(small);
                let alu = if op == BinOp::Shl {
                    AluOp::Lsh
                } else {
                    AluOp::Rsh
                };
                self.asm.alu32(alu, r, b);
                self.asm.bind(done);
                return;
            }
        };
        self.asm.alu32(alu, r, b);
    }

    /// `r = packet[k .. k + size]` (already bounds-checked for direct access).
    fn load_abs(&mut self, r: Reg, k: u32, size: u8, raw: bool) {
        let sz = size_of(size);
        if !self.direct() {
            if u64::from(k) + u64::from(size) > u64::from(SOCKET_MAX_OFF) {
                self.always_reject();
                self.asm.mov32(r, 0);
                return;
            }
            let reject = self.rej();
            packet_load(self.asm, self.loads, size, None, k, reject);
            self.acc = None;
            if r != Reg::R0 {
                self.asm.mov64(r, Reg::R0);
            }
            return;
        }
        if k <= i16::MAX as u32 {
            self.asm.ldx(sz, r, DATA, k as i16);
        } else {
            self.asm.mov64(r, DATA);
            self.asm.add64(r, k as i32);
            self.asm.ldx(sz, r, r, 0);
        }
        if !raw && size > 1 {
            self.asm.endian(Endian::Be, r, 8 * size);
        }
    }

    /// Socket filters: moves `r` out of r0 when evaluating `next` loads
    /// from the packet (`ld_abs`/`ld_ind` overwrite r0). Returns where
    /// the value is now.
    fn keep_across_loads(&mut self, r: Reg, next: Val) -> R<Reg> {
        if self.direct() || r != Reg::R0 || !self.reads_packet(next) {
            return Ok(r);
        }
        let kept = self.alloc()?;
        self.asm.mov64(kept, r);
        self.release(r);
        Ok(kept)
    }

    /// Whether evaluating `v` loads packet bytes at a variable offset.
    fn loads_at_var_off(&self, v: Val) -> bool {
        match self.ir.node(v) {
            ValNode::Load { off, .. } => off.is_some(),
            ValNode::Bin(_, a, b) => self.loads_at_var_off(a) || self.loads_at_var_off(b),
            ValNode::Neg(a) => self.loads_at_var_off(a),
            ValNode::Const(_) | ValNode::Len | ValNode::Meta(_) | ValNode::Var(_) => false,
        }
    }

    /// Whether evaluating `v` loads packet bytes.
    fn reads_packet(&self, v: Val) -> bool {
        match self.ir.node(v) {
            ValNode::Load { .. } => true,
            ValNode::Bin(_, a, b) => self.reads_packet(a) || self.reads_packet(b),
            ValNode::Neg(a) => self.reads_packet(a),
            ValNode::Const(_) | ValNode::Len | ValNode::Meta(_) | ValNode::Var(_) => false,
        }
    }

    /// Loads at a variable offset: the largest variable part and the
    /// largest constant part (plus size) they can read; past them, the
    /// load counts as outside the packet.
    fn offset_limits(&self) -> (u32, u32) {
        if self.direct() {
            (MAX_VAR_OFF, MAX_PACKET_OFF - MAX_VAR_OFF)
        } else {
            (SOCKET_MAX_VAR_OFF, SOCKET_MAX_OFF - SOCKET_MAX_VAR_OFF)
        }
    }

    /// Makes r9 point at `data + off` (socket filters: hold `off`, the
    /// index of `ld_ind`), unless it already does.
    fn point_at(&mut self, off: Val) -> R<()> {
        if self.cache.is_some_and(|(v, _)| v == off) {
            return Ok(());
        }
        // With direct access the offset is computed in the pointer
        // register itself (saving a move), unless computing it reads at
        // a variable offset, which needs that register.
        let into_ptr = self.direct() && !self.loads_at_var_off(off);
        if into_ptr {
            self.free.push(PTR);
        }
        let r = self.eval(off, false)?;
        // With direct access the verifier must see the bound too; socket
        // filters only keep `ld_ind` away from its negative, special
        // offsets.
        let (max_var, _) = self.offset_limits();
        let hi = if self.direct() {
            self.ir.proven_range(off).1
        } else {
            self.ir.range(off).1
        };
        if hi > u64::from(max_var) {
            let reject = self.rej();
            self.asm.jmp32(JmpOp::Gt, r, max_var as i32, reject);
        }
        // The leftmost leaf's register is the first taken from the pool,
        // so with the pointer register on top the value lands there.
        debug_assert!(!into_ptr || r == PTR);
        if r != PTR {
            self.asm.mov64(PTR, r);
            self.release(r);
            if into_ptr {
                self.free.remove(PTR);
            }
        }
        if self.direct() {
            self.asm.add64(PTR, DATA);
        }
        self.cache = Some((off, 0));
        Ok(())
    }

    /// `dst = packet[r9 + k ..][..size]`, checking bounds unless the
    /// cached pointer is known to have them.
    fn load_cached(&mut self, dst: Reg, k: u32, size: u8, raw: bool) {
        let end = u64::from(k) + u64::from(size);
        if end > u64::from(self.offset_limits().1) {
            self.always_reject();
            self.asm.mov32(dst, 0);
            return;
        }
        if !self.direct() {
            // `ld_ind` checks the bounds itself (and ends the program,
            // returning 0, past them).
            let reject = self.rej();
            packet_load(self.asm, self.loads, size, Some(PTR), k, reject);
            self.acc = None;
            if dst != Reg::R0 {
                self.asm.mov64(dst, Reg::R0);
            }
            return;
        }
        let Some((v, mut checked)) = self.cache else {
            return;
        };
        if end > checked {
            // r9 itself moves to the new end: no copy to check.
            let reject = self.rej();
            let a = &mut *self.asm;
            a.add64(PTR, (end - checked) as i32);
            a.jmp(JmpOp::Gt, PTR, END, reject);
            if self.opts.test_run_meta && self.opts.target == Target::Xdp {
                a.mov64(SCRATCH, PTR);
                a.alu64(AluOp::Sub, SCRATCH, DATA);
                a.jmp(JmpOp::Gt, SCRATCH, CTX, reject);
                self.scratch = None;
            }
            checked = end;
            self.cache = Some((v, end));
        }
        // r9 is `end` bytes past the load's base; `k` < 32 KiB and
        // `checked` <= 32 KiB, so the difference fits the offset field.
        let back = i64::from(k) - checked as i64;
        debug_assert!(i16::try_from(back).is_ok());
        self.asm.ldx(size_of(size), dst, PTR, back as i16);
        if !raw && size > 1 {
            self.asm.endian(Endian::Be, dst, 8 * size);
        }
    }

    /// `dst = packet[off + k .. off + k + size]` with its own bounds check;
    /// `off` holds a 32-bit value and may be `dst`.
    fn load_ind(&mut self, dst: Reg, off: Reg, k: u32, size: u8, raw: bool) {
        let reject = self.rej();
        let sz = size_of(size);
        let end = u64::from(k) + u64::from(size);
        if end > u64::from(MAX_PACKET_OFF - MAX_VAR_OFF) {
            self.always_reject();
            self.asm.mov32(dst, 0);
            return;
        }
        let direct = self.direct();
        let test_mode = self.test_mode();
        self.scratch = None;
        let a = &mut *self.asm;
        a.jmp32(JmpOp::Gt, off, MAX_VAR_OFF as i32, reject);
        debug_assert!(direct, "protochain alone uses this, with direct access");
        if test_mode {
            a.mov32(SCRATCH, off);
            a.add64(SCRATCH, end as i32);
            a.jmp(JmpOp::Gt, SCRATCH, CTX, reject);
        }
        if dst != off {
            a.mov64(dst, off);
        }
        a.add64(dst, DATA);
        let k = if k > i16::MAX as u32 - 4 {
            a.add64(dst, k as i32);
            0
        } else {
            k
        };
        a.mov64(SCRATCH, dst);
        a.add64(SCRATCH, (k + u32::from(size)) as i32);
        a.jmp(JmpOp::Gt, SCRATCH, END, reject);
        a.ldx(sz, dst, dst, k as i16);
        if !raw && size > 1 {
            a.endian(Endian::Be, dst, 8 * size);
        }
    }

    /// [`Gen::protochain`] for socket filters: the same walk with
    /// `ld_ind`, which overwrites r0-r5, so the protocol, the offset and
    /// the step count live in r7, r8 and r9, and the next header waits on
    /// the stack while the length loads.
    fn socket_protochain(&mut self, nl: u32, ipv6: bool, proto: u32) -> R<Reg> {
        let reject = self.rej();
        // The pool hands out r0 first; the walk wants r7 and r8.
        let r0 = self.alloc()?;
        let (ra, rx) = (self.alloc()?, self.alloc()?);
        self.release(r0);
        let rc = PTR;
        self.cache = None;
        let loads = self.loads;
        let a = &mut *self.asm;
        if ipv6 {
            packet_load(a, loads, 1, None, nl + 6, reject);
            a.mov64(ra, Reg::R0);
            a.mov32(rx, 40);
        } else {
            packet_load(a, loads, 1, None, nl + 9, reject);
            a.mov64(ra, Reg::R0);
            packet_load(a, loads, 1, None, nl, reject);
            a.alu32(AluOp::And, Reg::R0, 0xf);
            a.alu32(AluOp::Lsh, Reg::R0, 2);
            a.mov64(rx, Reg::R0);
        }
        a.mov32(rc, 0);
        let (again, adv, end) = (a.new_label(), a.new_label(), a.new_label());
        a.bind(again);
        a.jmp32(JmpOp::Eq, ra, proto as i32, end);
        a.jmp32(JmpOp::Eq, ra, 59, end);
        a.jmp32(JmpOp::Ge, rc, PROTOCHAIN_STEPS as i32, reject);
        a.alu32(AluOp::Add, rc, 1);
        if ipv6 {
            for h in [0, 60, 43, 44] {
                a.jmp32(JmpOp::Eq, ra, h, adv);
            }
        }
        a.jmp32(JmpOp::Eq, ra, 51, adv);
        a.ja(end);
        a.bind(adv);
        // The next header, kept on the stack; then the length byte.
        packet_load(a, loads, 1, Some(rx), nl, reject);
        a.stx(Size::DW, Reg::R10, PROTOCHAIN_SLOT, Reg::R0);
        packet_load(a, loads, 1, Some(rx), nl + 1, reject);
        // AH (libpcap's arithmetic): x = (len + 2) * 4, in r1.
        a.mov32(Reg::R1, Reg::R0);
        a.alu32(AluOp::Add, Reg::R1, 2);
        a.alu32(AluOp::Mul, Reg::R1, 4);
        if ipv6 {
            // Extension header: r2 = x + (len + 1) * 8; then, with r3 =
            // (a == 51) as 0/1, x = r2 + r3 * (r1 - r2).
            a.mov32(Reg::R2, Reg::R0);
            a.alu32(AluOp::Add, Reg::R2, 1);
            a.alu32(AluOp::Mul, Reg::R2, 8);
            a.alu32(AluOp::Add, Reg::R2, rx);
            a.mov64(Reg::R3, ra);
            a.alu64(AluOp::Xor, Reg::R3, 51);
            a.alu64(AluOp::Sub, Reg::R3, 1);
            a.alu64(AluOp::Rsh, Reg::R3, 63);
            a.alu32(AluOp::Sub, Reg::R1, Reg::R2);
            a.alu32(AluOp::Mul, Reg::R1, Reg::R3);
            a.alu32(AluOp::Add, Reg::R1, Reg::R2);
        }
        a.mov32(rx, Reg::R1);
        a.ldx(Size::DW, ra, Reg::R10, PROTOCHAIN_SLOT);
        a.ja(again);
        a.bind(end);
        self.acc = None;
        self.release(rx);
        Ok(ra)
    }

    /// libpcap's protochain loop; returns the register holding the
    /// protocol it stopped at. The header advance is computed without
    /// branches (extension header and AH alike) so that the verifier sees
    /// one path per iteration.
    fn protochain(&mut self, nl: u32, ipv6: bool, proto: u32) -> R<Reg> {
        if !self.direct() {
            return self.socket_protochain(nl, ipv6, proto);
        }
        let reject = self.rej();
        let ra = self.alloc()?;
        let rx = self.alloc()?;
        let rc = self.alloc()?;
        let t1 = self.alloc()?;
        let t2 = self.alloc()?;
        // r9 (the pointer cache) serves as the sixth register.
        let t3 = PTR;
        self.cache = None;
        self.scratch = None;
        if ipv6 {
            self.load_abs(ra, nl + 6, 1, false);
            self.asm.mov32(rx, 40);
        } else {
            self.load_abs(ra, nl + 9, 1, false);
            self.load_abs(rx, nl, 1, false);
            self.asm.alu32(AluOp::And, rx, 0xf);
            self.asm.alu32(AluOp::Lsh, rx, 2);
        }
        self.asm.mov32(rc, 0);
        let (again, adv, end) = (
            self.asm.new_label(),
            self.asm.new_label(),
            self.asm.new_label(),
        );
        self.asm.bind(again);
        self.asm.jmp32(JmpOp::Eq, ra, proto as i32, end);
        self.asm.jmp32(JmpOp::Eq, ra, 59, end);
        self.asm
            .jmp32(JmpOp::Ge, rc, PROTOCHAIN_STEPS as i32, reject);
        self.asm.alu32(AluOp::Add, rc, 1);
        if ipv6 {
            for h in [0, 60, 43, 44] {
                self.asm.jmp32(JmpOp::Eq, ra, h, adv);
            }
        }
        self.asm.jmp32(JmpOp::Eq, ra, 51, adv);
        self.asm.ja(end);
        self.asm.bind(adv);
        // t1 = next header, t2 = length byte.
        self.load_ind(t1, rx, nl, 1, false);
        self.load_ind(t2, rx, nl + 1, 1, false);
        // AH (libpcap's arithmetic): x = (len + 2) * 4.
        self.asm.mov32(t3, t2);
        self.asm.alu32(AluOp::Add, t3, 2);
        self.asm.alu32(AluOp::Mul, t3, 4);
        if ipv6 {
            // Extension header: x += (len + 1) * 8.
            self.asm.alu32(AluOp::Add, t2, 1);
            self.asm.alu32(AluOp::Mul, t2, 8);
            self.asm.alu32(AluOp::Add, t2, rx);
            // is_ah = (a == 51) as 0/1, then x = ext + is_ah * (ah - ext).
            self.asm.alu64(AluOp::Xor, ra, 51);
            self.asm.alu64(AluOp::Sub, ra, 1);
            self.asm.alu64(AluOp::Rsh, ra, 63);
            self.asm.alu32(AluOp::Sub, t3, t2);
            self.asm.alu32(AluOp::Mul, t3, ra);
            self.asm.alu32(AluOp::Add, t2, t3);
            self.asm.mov32(rx, t2);
        } else {
            self.asm.mov32(rx, t3);
        }
        self.asm.mov32(ra, t1);
        self.asm.ja(again);
        self.asm.bind(end);
        // Loop iterations moved r5.
        self.scratch = None;
        for r in [t2, t1, rc, rx] {
            self.release(r);
        }
        Ok(ra)
    }
}
