//! The walk over the blocks: one copy of the filter, each block its
//! bounds check and its test, falling through to the next block where it
//! can. The register caches (r9, r0, r5) follow the walk from a block to
//! the blocks it jumps to.

use bpf_builder::asm::Label;
use bpf_builder::ctx::{sk_buff, xdp_md};
use bpf_builder::insn::{AluOp, Endian, JmpOp, Operand, Reg, Size};

use super::bounds::{Check, Scratch, plan_checks};
use super::expr::swap;
use super::frame::{CTX, DATA, END, KEY_SLOT, SCRATCH, var_slot};
use super::program::ActionEnd;
use super::{Gen, R, Target};
use crate::Span;
use crate::ir::{
    Block, BlockId, ByteOrder, CmpOp, Cond, Edge, EntityRef, KeyId, OnShort, Val, ValNode, Verdict,
};

/// What the register caches hold (the generator's `cache`, `acc` and
/// `scratch`: r9, r0 and r5). On entry to a block: the meet over the
/// jumps into it (all emitted before it: jumps between blocks go forward;
/// only jumps to a verdict's code, placed earlier, go back).
#[derive(Clone, Copy, Default)]
pub(super) struct Regs {
    /// r9's packet pointer and the bytes known past it.
    cache: Option<(Val, u64)>,
    /// r0's value (in network order if the flag is set).
    acc: Option<(Val, bool)>,
    /// What r5 points at after the last bounds check.
    scratch: Option<Scratch>,
}

impl Regs {
    /// What holds on a path with `self` and on one with `other`.
    fn meet(self, other: Regs) -> Regs {
        Regs {
            cache: match (self.cache, other.cache) {
                // r9 must hold the same on every path in.
                (Some((v, x)), Some((w, y))) if v == w && x == y => Some((v, x)),
                _ => None,
            },
            acc: if self.acc == other.acc {
                self.acc
            } else {
                None
            },
            scratch: if self.scratch == other.scratch {
                self.scratch
            } else {
                None
            },
        }
    }
}

/// What code generation keeps per block.
#[derive(Clone, Copy, Default)]
pub(super) struct Slot {
    /// Bytes every accepting path from the block reads (None: no path
    /// accepts).
    pub(super) need: Option<u64>,
    /// Bytes already checked on every path into the block.
    pub(super) known: Option<u64>,
    /// The bounds check the block starts with.
    pub(super) check: Check,
    /// The register caches on entry, once a jump into it is emitted.
    pub(super) state: Option<Regs>,
    /// The block reads the packet pointers again first
    /// (`EmitOptions::reload_at_joins`).
    pub(super) reload: bool,
}

impl Gen<'_, '_> {
    /// Emits one copy of the filter's blocks, reading as `self.loads`
    /// says, from the entry to the verdict labels.
    /// With `last`, nothing follows but verdicts: returns the verdict
    /// the last block falls through to, to be placed first.
    pub(super) fn body(&mut self, entry: Edge, last: bool) -> R<Option<Verdict>> {
        let ir = self.ir;
        let labels = self.asm.new_labels(ir.blocks.len());
        self.block_labels = labels;
        let target = |e: Edge, g: &mut Gen<'_, '_>| match e {
            Edge::Verdict(v) => g.verdict_label(v),
            Edge::Block(i) => labels.get(i.index()),
        };
        self.set_regs(Regs::default());
        if entry != Edge::Block(BlockId::new(0)) {
            let l = target(entry, self);
            self.jump(l);
        }
        // One allocation for all the per-block state.
        let mut slots = vec![Slot::default(); ir.blocks.len()];
        let mut tail = None;
        if self.direct() {
            let reload = self.opts.reload_at_joins && !self.test_mode();
            plan_checks(ir, entry, reload, &mut slots);
        }
        for (i, b) in ir.blocks.iter().enumerate() {
            self.asm.bind(labels.get(i));
            self.annotate(b.span);
            self.set_regs(slots[i].state.unwrap_or_default());
            if slots[i].reload {
                self.reload_packet();
            }
            self.short = b.short_edge();
            match slots[i].check {
                Check::None => {}
                // The block's code stays, dead, so that what follows it
                // stays statically reachable for the verifier.
                Check::Fail => self.always_reject(),
                Check::Len(n) => self.check_len(n),
            }
            let mut next = Edge::Block(BlockId::new(i + 1));
            if i + 1 == ir.blocks.len() && last {
                // Fall through to a verdict whose code is not placed yet
                // (the higher one, a match, when both edges have one).
                let open = |e: Edge| match e {
                    Edge::Verdict(v) if !self.verdicts[v].placed => Some(v),
                    _ => None,
                };
                // An action's false edge is taken only if the action
                // jumps there, an assignment's never: fall through to
                // the true edge alone.
                let f_open = match b.cond {
                    Cond::Act { .. } | Cond::Let { .. } | Cond::Lookup { .. } => None,
                    _ => open(b.f),
                };
                if let Some(v) = open(b.t).max(f_open) {
                    next = Edge::Verdict(v);
                    tail = Some(v);
                }
            }
            // An action's false edge counts as used only if the action
            // can fail (see the `Act` arm of `block`); an assignment's is
            // never taken (a short read goes by `rej`, which notes it).
            let f = match b.cond {
                Cond::Act { .. } | Cond::Let { .. } | Cond::Lookup { .. } => self.edge_label(b.f),
                _ => target(b.f, self),
            };
            let t = target(b.t, self);
            self.block(b, t, f, b.t == next, b.f == next)?;
            // A short read may leave mid-block, with other registers than
            // at its end: the block it goes to assumes nothing.
            if b.short != OnShort::Reject
                && let Edge::Block(j) = b.short_edge()
            {
                slots[j.index()].state = Some(Regs::default());
            }
            for e in [b.t, b.f] {
                if let Edge::Block(j) = e {
                    let j = j.index();
                    let here = self.regs();
                    slots[j].state = Some(match slots[j].state {
                        None => here,
                        Some(before) => before.meet(here),
                    });
                }
            }
        }
        Ok(tail)
    }

    /// Reads the packet's start and end from the context again (see
    /// `EmitOptions::reload_at_joins`); nothing points into the packet.
    fn reload_packet(&mut self) {
        let (data, end) = match self.opts.target {
            Target::Xdp => (xdp_md::DATA, xdp_md::DATA_END),
            _ => (sk_buff::DATA, sk_buff::DATA_END),
        };
        self.asm.ldx(Size::W, DATA, CTX, data);
        self.asm.ldx(Size::W, END, CTX, end);
        self.cache = None;
        self.scratch = None;
    }

    /// The label of edge `e` in this copy of the filter, without noting a
    /// verdict as used.
    fn edge_label(&self, e: Edge) -> Label {
        match e {
            Edge::Verdict(v) => self.verdicts[v].label,
            Edge::Block(i) => self.block_labels.get(i.index()),
        }
    }

    /// Writes the bytes of `key` at [`KEY_SLOT`]: each part in network
    /// order (loads of its size as they are in the packet) or the host's.
    fn key(&mut self, key: KeyId) -> R<()> {
        let mut at = KEY_SLOT;
        for i in 0..self.ir.key_parts(key).len() {
            let p = self.ir.key_parts(key)[i];
            let n = i16::from(p.bytes);
            let raw = p.order == ByteOrder::Network && self.raw_size(p.val) == Some(p.bytes);
            let r = self.eval(p.val, raw)?;
            if p.order == ByteOrder::Network && !raw && p.bytes > 1 {
                self.asm.endian(Endian::Be, r, 8 * p.bytes);
            }
            let size = match p.bytes {
                1 => Size::B,
                2 => Size::H,
                _ => Size::W,
            };
            if at % n == 0 {
                self.asm.stx(size, Reg::R10, at, r);
            } else {
                // The stack wants aligned stores: byte by byte, in the
                // order a store of the whole would put them.
                self.asm.mov64(SCRATCH, r);
                for j in 0..n {
                    self.asm.stx(Size::B, Reg::R10, at + j, SCRATCH);
                    if j + 1 < n {
                        self.asm.alu64(AluOp::Rsh, SCRATCH, 8);
                    }
                }
                self.scratch = None;
            }
            self.release(r);
            self.acc = None;
            at += n;
        }
        Ok(())
    }

    /// What the register caches hold now.
    fn regs(&self) -> Regs {
        Regs {
            cache: self.cache,
            acc: self.acc,
            scratch: self.scratch,
        }
    }

    /// Sets what the register caches hold.
    fn set_regs(&mut self, r: Regs) {
        (self.cache, self.acc, self.scratch) = (r.cache, r.acc, r.scratch);
    }

    /// Annotates what follows with the whole expression and the column of
    /// `span` in it: BTF line info then shows the filter with the place
    /// this code comes from, as a C compiler shows the source line.
    fn annotate(&mut self, span: Span) {
        let a = self.source.annotation(span);
        self.asm.set_source(a);
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
            Cond::Act { action } => {
                if (self.action)(self.asm, action, f)? == ActionEnd::MayFail
                    && let Edge::Verdict(v) = b.f
                {
                    self.verdict_label(v);
                }
                // The action may call helpers: r0-r5 hold nothing now.
                self.set_regs(Regs::default());
                if !t_next {
                    self.jump(t);
                }
                Ok(())
            }
            Cond::Lookup {
                key,
                action,
                result,
            } => {
                self.key(key)?;
                if (self.action)(self.asm, action, f)? == ActionEnd::MayFail
                    && let Edge::Verdict(v) = b.f
                {
                    self.verdict_label(v);
                }
                // A hit: r0 points at the entry's value.
                if let Some(var) = result.expand() {
                    self.asm.ldx(Size::W, Reg::R1, Reg::R0, 0);
                    self.asm
                        .stx(Size::W, Reg::R10, var_slot(var.index() as u32), Reg::R1);
                }
                // The lookup called helpers: r0-r5 hold nothing now.
                self.set_regs(Regs::default());
                if !t_next {
                    self.jump(t);
                }
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
}
