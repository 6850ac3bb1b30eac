//! The assembler: emit instructions with [`Label`]s, symbolic references to
//! maps and functions, and source annotations; [`Asm::finish`] resolves
//! jumps into a [`Code`] block.
//!
//! Jumps are emitted short (16-bit offset). When a target ends up out of
//! range, `finish` relaxes the jump: `goto` becomes `gotol` (32-bit offset,
//! ISA v4) and a conditional jump becomes the inverted condition skipping a
//! `gotol`. With relaxation turned off ([`Asm::set_long_jumps`]), an
//! out-of-range jump is an error. Offsets never wrap silently.

use std::fmt;
use std::sync::Arc;

use cranelift_entity::{PrimaryMap, entity_impl};

use crate::helpers::Helper;
use crate::insn::{AluOp, AtomicOp, Endian, Insn, JmpOp, Operand, Reg, Size};
use crate::object::{FuncId, MapId};
use crate::reloc::Reloc;

/// A position in the code that jumps, calls and function pointers can
/// refer to before it is bound.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label(u32);
entity_impl!(Label, "label");

/// Text attached to code (annotations, label names): a literal, or text
/// shared by reference count. Cloning never copies the text, and literals
/// cost no allocation at all.
#[derive(Clone)]
pub enum Text {
    /// A literal.
    Static(&'static str),
    /// Shared text.
    Shared(Arc<str>),
}

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        match self {
            Text::Static(s) => s,
            Text::Shared(s) => s,
        }
    }

    /// Whether both refer to the same storage (then they are equal
    /// without comparing bytes).
    fn same_storage(&self, other: &Text) -> bool {
        match (self, other) {
            (Text::Static(a), Text::Static(b)) => std::ptr::eq(*a, *b),
            (Text::Shared(a), Text::Shared(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.same_storage(other) || self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_str().hash(h)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&'static str> for Text {
    fn from(s: &'static str) -> Text {
        Text::Static(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Text {
        Text::Shared(s.into())
    }
}

impl From<Arc<str>> for Text {
    fn from(s: Arc<str>) -> Text {
        Text::Shared(s)
    }
}

impl From<&Arc<str>> for Text {
    fn from(s: &Arc<str>) -> Text {
        Text::Shared(s.clone())
    }
}

/// Where an instruction came from: shown by the disassembler and in
/// verifier errors, and (with BTF) as line info.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Annotation {
    /// The source text: a filter expression, a rule, a line of a file.
    pub text: Text,
    /// The file or origin name, if any.
    pub file: Option<Text>,
    /// 1-based line number (0 if not applicable).
    pub line: u32,
    /// 1-based column of the construct in `text` (0 if not applicable).
    pub column: u32,
}

impl Annotation {
    /// An annotation that is just text.
    pub fn new(text: impl Into<Text>) -> Annotation {
        Annotation {
            text: text.into(),
            file: None,
            line: 0,
            column: 0,
        }
    }

    /// An annotation pointing at `line:column` of `file`, whose source line is `text`.
    pub fn at(file: impl Into<Text>, line: u32, column: u32, text: impl Into<Text>) -> Annotation {
        Annotation {
            text: text.into(),
            file: Some(file.into()),
            line,
            column,
        }
    }
}

impl fmt::Display for Annotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}:{}:{}: ", self.line, self.column)?;
        } else if self.line > 0 {
            write!(f, "{}:{}: ", self.line, self.column)?;
        }
        f.write_str(&self.text)
    }
}

/// Errors found when resolving labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmError {
    /// A jump or call names a label that was never bound.
    #[error("instruction {insn} refers to {label}, which is never bound")]
    UnboundLabel {
        /// The label's name.
        label: String,
        /// Index of the referring instruction (before relaxation).
        insn: usize,
    },
    /// A label was bound twice.
    #[error("{label} is bound twice")]
    Rebound {
        /// The label's name.
        label: String,
    },
    /// A label is bound after the last instruction, so nothing can run there.
    #[error("{label} is bound after the last instruction")]
    LabelAtEnd {
        /// The label's name.
        label: String,
    },
    /// A jump does not fit its offset field and cannot be relaxed.
    #[error("jump at instruction {insn} to {label} needs offset {offset}, outside {min}..={max}")]
    JumpOutOfRange {
        /// Index of the jump (after relaxation of other jumps).
        insn: usize,
        /// The target label's name.
        label: String,
        /// The offset that would be needed.
        offset: i64,
        /// Smallest encodable offset.
        min: i64,
        /// Largest encodable offset.
        max: i64,
    },
    /// The code is longer than the 32-bit offsets of `gotol` and calls reach.
    #[error("code of {0} instructions is too long")]
    TooLong(usize),
}

/// What an emitted instruction still needs resolved.
#[derive(Clone, Copy, Debug)]
enum Fixup {
    None,
    /// Conditional jump or `goto` to a label (16-bit offset, relaxable).
    Jump(Label),
    /// `may_goto` to a label (16-bit offset, not relaxable).
    MayGoto(Label),
    /// bpf-to-bpf call, or `ld_imm64` function pointer, to a label (32-bit).
    Imm32(Label),
}

/// An emitted instruction. Rare parts (second slots, references, source
/// annotations) live in side vectors of [`Asm`], so that items stay small.
#[derive(Clone, Debug)]
struct Item {
    insn: Insn,
    fixup: Fixup,
    /// A 16-byte load: its second slot is the next of `Asm::his`.
    wide: bool,
}

/// A finished block of instructions: jumps resolved, references to maps and
/// functions still symbolic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Code {
    /// The instructions (16-byte loads take two slots).
    pub insns: Vec<Insn>,
    /// Symbolic references, by instruction index, in increasing order.
    pub relocs: Vec<(usize, Reloc)>,
    /// Source annotations: each applies from its index to the next entry's.
    /// `None` ends an annotated run.
    pub sources: Vec<(usize, Option<Annotation>)>,
    /// Names of labels, by the instruction index they are bound to.
    pub labels: Vec<(usize, Text)>,
}

impl Code {
    /// The annotation of instruction `pc`, if any.
    pub fn source_at(&self, pc: usize) -> Option<&Annotation> {
        let i = self.sources.partition_point(|(at, _)| *at <= pc);
        i.checked_sub(1).and_then(|i| self.sources[i].1.as_ref())
    }

    /// The symbolic reference at instruction `pc`, if any.
    pub fn reloc_at(&self, pc: usize) -> Option<&Reloc> {
        self.relocs
            .binary_search_by_key(&pc, |(at, _)| *at)
            .ok()
            .map(|i| &self.relocs[i].1)
    }

    /// Number of instruction slots.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    /// Whether there are no instructions.
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }
}

/// The assembler. Emit instructions in order, bind labels where they should
/// point, then call [`finish`](Asm::finish).
///
/// ```
/// use bpf_builder::asm::Asm;
/// use bpf_builder::insn::{JmpOp, Reg::*};
///
/// let mut a = Asm::new();
/// let done = a.new_label();
/// a.mov64(R0, 0);
/// a.jmp(JmpOp::Eq, R1, 0, done);
/// a.mov64(R0, 1);
/// a.bind(done);
/// a.exit();
/// let code = a.finish().unwrap();
/// assert_eq!(code.insns[1].off, 1);
/// ```
#[derive(Clone, Debug)]
pub struct Asm {
    items: Vec<Item>,
    /// Second slots of the 16-byte loads, in order.
    his: Vec<Insn>,
    /// Symbolic references, by item index, in order.
    relocs: Vec<(usize, Reloc)>,
    labels: PrimaryMap<Label, LabelSlot>,
    /// Number of labels with a name.
    named: usize,
    /// Annotated runs as [`Code::sources`] has them, by item index: `finish`
    /// hands them over without copying.
    sources: Vec<(usize, Option<Annotation>)>,
    /// A change of annotation that the next instruction starts a run with.
    pending_source: Option<Option<Annotation>>,
    long_jumps: bool,
    errors: Vec<AsmError>,
}

/// A label's state.
#[derive(Clone, Debug, Default)]
struct LabelSlot {
    /// Where it is bound: the index of the item that follows it.
    at: Option<usize>,
    /// The name the disassembler shows.
    name: Option<Text>,
}

/// Labels made together by [`Asm::new_labels`].
#[derive(Clone, Copy, Debug)]
pub struct Labels {
    first: u32,
    len: u32,
}

impl Labels {
    /// The `i`-th of them.
    pub fn get(&self, i: usize) -> Label {
        assert!(i < self.len as usize, "label {i} of {}", self.len);
        Label::from_u32(self.first + i as u32)
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Asm {
    fn default() -> Self {
        Self::new()
    }
}

impl Asm {
    /// An empty assembler with jump relaxation on.
    pub fn new() -> Asm {
        Asm {
            items: Vec::new(),
            his: Vec::new(),
            relocs: Vec::new(),
            labels: PrimaryMap::new(),
            named: 0,
            sources: Vec::new(),
            pending_source: None,
            long_jumps: true,
            errors: Vec::new(),
        }
    }

    /// An empty assembler with room for `n` instructions (and labels
    /// for about a quarter of them).
    pub fn with_capacity(n: usize) -> Asm {
        let mut a = Asm::new();
        a.items.reserve(n);
        a.labels.reserve(n / 4);
        a
    }

    /// Whether out-of-range jumps may be relaxed to `gotol` (ISA v4,
    /// kernel 6.6). When off, they are an error.
    pub fn set_long_jumps(&mut self, on: bool) {
        self.long_jumps = on;
    }

    /// Number of instructions emitted so far (16-byte loads count once).
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing has been emitted.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    // ---- labels and annotations ----

    /// A new unbound label.
    pub fn new_label(&mut self) -> Label {
        self.labels.push(LabelSlot::default())
    }

    /// `n` new unbound labels (for e.g. one per block, without a vector
    /// of them).
    pub fn new_labels(&mut self, n: usize) -> Labels {
        self.labels.reserve(n);
        let first = self.labels.next_key().as_u32();
        for _ in 0..n {
            self.new_label();
        }
        Labels {
            first,
            len: n as u32,
        }
    }

    /// A new unbound label with a name shown by the disassembler.
    pub fn named_label(&mut self, name: impl Into<Text>) -> Label {
        self.named += 1;
        self.labels.push(LabelSlot {
            at: None,
            name: Some(name.into()),
        })
    }

    /// Binds `label` to the next instruction emitted.
    pub fn bind(&mut self, label: Label) {
        if self.labels[label].at.is_some() {
            let name = self.label_name(label);
            self.errors.push(AsmError::Rebound { label: name });
        } else {
            self.labels[label].at = Some(self.items.len());
        }
    }

    /// Whether `label` has been bound.
    pub fn is_bound(&self, label: Label) -> bool {
        self.labels[label].at.is_some()
    }

    fn label_name(&self, label: Label) -> String {
        match &self.labels[label].name {
            Some(n) => n.to_string(),
            None => label.to_string(),
        }
    }

    /// The annotation of the next instruction.
    fn current_source(&self) -> Option<&Annotation> {
        match &self.pending_source {
            Some(next) => next.as_ref(),
            None => self.sources.last().and_then(|(_, a)| a.as_ref()),
        }
    }

    /// Annotates every following instruction with `source`, until changed.
    pub fn set_source(&mut self, source: Annotation) {
        if self.current_source() != Some(&source) {
            self.pending_source = Some(Some(source));
        }
    }

    /// Stops annotating the following instructions.
    pub fn clear_source(&mut self) {
        let annotated = matches!(self.sources.last(), Some((_, Some(_))));
        self.pending_source = annotated.then_some(None);
    }

    // ---- raw emission ----

    fn push(&mut self, insn: Insn, hi: Option<Insn>, fixup: Fixup, reloc: Option<Reloc>) {
        if let Some(r) = reloc {
            self.relocs.push((self.items.len(), r));
        }
        if let Some(h) = hi {
            self.his.push(h);
        }
        if let Some(next) = self.pending_source.take() {
            self.sources.push((self.items.len(), next));
        }
        self.items.push(Item {
            insn,
            fixup,
            wide: hi.is_some(),
        });
    }

    /// Emits one instruction as is.
    pub fn emit(&mut self, insn: Insn) {
        self.push(insn, None, Fixup::None, None);
    }

    /// Emits a 16-byte load as is.
    pub fn emit_wide(&mut self, [lo, hi]: [Insn; 2]) {
        self.push(lo, Some(hi), Fixup::None, None);
    }

    /// Emits a 16-byte load carrying a symbolic reference for the loader.
    pub fn emit_reloc(&mut self, [lo, hi]: [Insn; 2], reloc: Reloc) {
        self.push(lo, Some(hi), Fixup::None, Some(reloc));
    }

    // ---- arithmetic ----

    /// `dst op= src`, 64-bit.
    pub fn alu64(&mut self, op: AluOp, dst: Reg, src: impl Into<Operand>) {
        self.emit(Insn::alu64(op, dst, src));
    }

    /// `w_dst op= src`, 32-bit.
    pub fn alu32(&mut self, op: AluOp, dst: Reg, src: impl Into<Operand>) {
        self.emit(Insn::alu32(op, dst, src));
    }

    /// `dst = src`, 64-bit.
    pub fn mov64(&mut self, dst: Reg, src: impl Into<Operand>) {
        self.emit(Insn::mov64(dst, src));
    }

    /// `w_dst = src`, 32-bit (zero-extends).
    pub fn mov32(&mut self, dst: Reg, src: impl Into<Operand>) {
        self.emit(Insn::mov32(dst, src));
    }

    /// `dst += src`, 64-bit.
    pub fn add64(&mut self, dst: Reg, src: impl Into<Operand>) {
        self.alu64(AluOp::Add, dst, src);
    }

    /// Byte order conversion of `dst` (`bits` = 16, 32 or 64).
    pub fn endian(&mut self, kind: Endian, dst: Reg, bits: u8) {
        self.emit(Insn::endian(kind, dst, bits));
    }

    /// `dst = imm` as a 16-byte load of a 64-bit constant.
    pub fn ld_imm64(&mut self, dst: Reg, imm: u64) {
        self.emit_wide(Insn::ld_imm64(dst, imm));
    }

    // ---- memory ----

    /// `dst = *(size *)(src + off)`.
    pub fn ldx(&mut self, size: Size, dst: Reg, src: Reg, off: i16) {
        self.emit(Insn::ldx(size, dst, src, off));
    }

    /// `*(size *)(dst + off) = src`.
    pub fn stx(&mut self, size: Size, dst: Reg, off: i16, src: Reg) {
        self.emit(Insn::stx(size, dst, off, src));
    }

    /// `*(size *)(dst + off) = imm`.
    pub fn st(&mut self, size: Size, dst: Reg, off: i16, imm: i32) {
        self.emit(Insn::st(size, dst, off, imm));
    }

    /// Atomic `op` on `*(size *)(dst + off)` with `src`.
    pub fn atomic(&mut self, op: AtomicOp, size: Size, dst: Reg, off: i16, src: Reg) {
        self.emit(Insn::atomic(op, size, dst, off, src));
    }

    /// `dst = map` (the loader patches in the map's fd).
    pub fn ld_map_fd(&mut self, dst: Reg, map: MapId) {
        self.emit_reloc(Insn::ld_map_fd(dst, 0), Reloc::MapFd(map));
    }

    /// `dst = &value of map + offset` (array maps and global data).
    pub fn ld_map_value(&mut self, dst: Reg, map: MapId, offset: u32) {
        self.emit_reloc(
            Insn::ld_map_value(dst, 0, 0),
            Reloc::MapValue { map, offset },
        );
    }

    // ---- control flow ----

    /// `if dst op src goto label` (64-bit compare).
    pub fn jmp(&mut self, op: JmpOp, dst: Reg, src: impl Into<Operand>, label: Label) {
        self.push(Insn::jmp(op, dst, src, 0), None, Fixup::Jump(label), None);
    }

    /// `if w_dst op w_src goto label` (32-bit compare).
    pub fn jmp32(&mut self, op: JmpOp, dst: Reg, src: impl Into<Operand>, label: Label) {
        self.push(Insn::jmp32(op, dst, src, 0), None, Fixup::Jump(label), None);
    }

    /// `goto label`.
    pub fn ja(&mut self, label: Label) {
        self.push(Insn::ja(0), None, Fixup::Jump(label), None);
    }

    /// `may_goto label` (bounded loops, kernel 6.9).
    pub fn may_goto(&mut self, label: Label) {
        self.push(Insn::may_goto(0), None, Fixup::MayGoto(label), None);
    }

    /// Calls a kernel helper.
    pub fn call(&mut self, helper: Helper) {
        self.emit(Insn::call_helper(helper.id()));
    }

    /// Calls a kernel helper by number.
    pub fn call_helper_id(&mut self, id: i32) {
        self.emit(Insn::call_helper(id));
    }

    /// Calls a subprogram bound at `label` in this same code block.
    pub fn call_label(&mut self, label: Label) {
        self.push(Insn::call_rel(0), None, Fixup::Imm32(label), None);
    }

    /// Calls an object-level function (linked in by the loader).
    pub fn call_func(&mut self, func: FuncId) {
        self.push(
            Insn::call_rel(0),
            None,
            Fixup::None,
            Some(Reloc::Call(func)),
        );
    }

    /// `dst = &function` for callbacks (`bpf_loop`, `bpf_for_each_map_elem`, ...).
    pub fn ld_func(&mut self, dst: Reg, func: FuncId) {
        self.emit_reloc(Insn::ld_func(dst, 0), Reloc::FuncPtr(func));
    }

    /// `dst = &subprogram at label` in this same code block.
    pub fn ld_func_label(&mut self, dst: Reg, label: Label) {
        let [lo, hi] = Insn::ld_func(dst, 0);
        self.push(lo, Some(hi), Fixup::Imm32(label), None);
    }

    /// `exit`.
    pub fn exit(&mut self) {
        self.emit(Insn::exit());
    }

    // ---- resolution ----

    /// Resolves labels and relaxes out-of-range jumps.
    pub fn finish(mut self) -> Result<Code, AsmError> {
        if let Some(e) = self.errors.first() {
            return Err(e.clone());
        }
        let mut sources = std::mem::take(&mut self.sources);
        let target = |label: Label, insn: usize| -> Result<usize, AsmError> {
            match self.labels[label].at {
                Some(t) if t < self.items.len() => Ok(t),
                Some(_) => Err(AsmError::LabelAtEnd {
                    label: self.label_name(label),
                }),
                None => Err(AsmError::UnboundLabel {
                    label: self.label_name(label),
                    insn,
                }),
            }
        };
        // Check every reference first, so errors name the label, not an offset.
        let wide = !self.his.is_empty();
        for (i, item) in self.items.iter().enumerate() {
            if let Fixup::Jump(l) | Fixup::MayGoto(l) | Fixup::Imm32(l) = item.fixup {
                target(l, i)?;
            }
        }

        // Relaxation: grow jumps until every offset fits. Jumps only grow,
        // so this reaches a fixed point.
        // `long[i]`: item `i` is a relaxed jump; empty until one is.
        let mut long: Vec<bool> = Vec::new();
        let is_long = |long: &[bool], i: usize| long.get(i).copied().unwrap_or(false);
        // `pcs[i]`: the slot of item `i` (`pcs[n]`: the total); empty
        // while every item takes one slot (item `i` is then at slot `i`).
        let mut pcs: Vec<usize> = Vec::new();
        let n = self.items.len();
        loop {
            if wide || !long.is_empty() {
                pcs.resize(n + 1, 0);
                for (i, item) in self.items.iter().enumerate() {
                    pcs[i + 1] = pcs[i] + slots(item, is_long(&long, i));
                }
            }
            if pc_of(&pcs, n) > i32::MAX as usize {
                return Err(AsmError::TooLong(pc_of(&pcs, n)));
            }
            let mut changed = false;
            for (i, item) in self.items.iter().enumerate() {
                if let Fixup::Jump(l) = item.fixup
                    && !is_long(&long, i)
                {
                    let off = pc_of(&pcs, target(l, i)?) as i64 - (pc_of(&pcs, i) as i64 + 1);
                    if i16::try_from(off).is_err() {
                        if !self.long_jumps {
                            return Err(AsmError::JumpOutOfRange {
                                insn: pc_of(&pcs, i),
                                label: self.label_name(l),
                                offset: off,
                                min: i16::MIN as i64,
                                max: i16::MAX as i64,
                            });
                        }
                        long.resize(n, false);
                        long[i] = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }

        let total = pc_of(&pcs, n);
        // The runs start at items: move them to their slots.
        if !pcs.is_empty() {
            for (at, _) in &mut sources {
                *at = pcs[*at];
            }
        }
        let mut code = Code {
            insns: Vec::with_capacity(total),
            sources,
            labels: Vec::with_capacity(self.named),
            relocs: Vec::with_capacity(self.relocs.len()),
        };
        let mut his = self.his.iter();
        let mut next_reloc = 0;
        for (i, item) in self.items.iter().enumerate() {
            let pc = pc_of(&pcs, i);
            if let Some(&(at, r)) = self.relocs.get(next_reloc)
                && at == i
            {
                code.relocs.push((pc, r));
                next_reloc += 1;
            }
            let mut insn = item.insn;
            match item.fixup {
                Fixup::None => code.insns.push(insn),
                Fixup::Imm32(l) => {
                    insn.imm = (pc_of(&pcs, target(l, i)?) as i64 - (pc as i64 + 1)) as i32;
                    code.insns.push(insn);
                }
                Fixup::MayGoto(l) => {
                    let off = pc_of(&pcs, target(l, i)?) as i64 - (pc as i64 + 1);
                    insn.off = i16::try_from(off).map_err(|_| AsmError::JumpOutOfRange {
                        insn: pc,
                        label: self.label_name(l),
                        offset: off,
                        min: i16::MIN as i64,
                        max: i16::MAX as i64,
                    })?;
                    code.insns.push(insn);
                }
                Fixup::Jump(l) => {
                    let dest = pc_of(&pcs, target(l, i)?) as i64;
                    if !is_long(&long, i) {
                        insn.off = (dest - (pc as i64 + 1)) as i16;
                        code.insns.push(insn);
                    } else {
                        push_long_jump(&mut code.insns, insn, dest, pc as i64);
                    }
                }
            }
            if item.wide
                && let Some(hi) = his.next()
            {
                code.insns.push(*hi);
            }
        }
        debug_assert_eq!(code.insns.len(), total);
        // Label names for the disassembler, at their resolved positions.
        if self.named > 0 {
            for slot in self.labels.values() {
                if let (Some(at), Some(name)) = (slot.at, &slot.name) {
                    code.labels.push((pc_of(&pcs, at), name.clone()));
                }
            }
        }
        code.labels.sort_by_key(|(pc, _)| *pc);
        Ok(code)
    }
}

/// The slot of item `i`, given the slots of all items (empty when each
/// takes one slot).
fn pc_of(pcs: &[usize], i: usize) -> usize {
    pcs.get(i).copied().unwrap_or(i)
}

/// Instruction slots an item takes, short or relaxed.
fn slots(item: &Item, long: bool) -> usize {
    let base = 1 + item.wide as usize;
    if !long {
        return base;
    }
    // A relaxed jump: `goto` becomes `gotol`; a condition becomes
    // `if !cond goto +1; gotol`; `jset` (no inverse) becomes
    // `if set goto +1; goto +1; gotol`.
    if item.insn.code & 0xf0 == 0 {
        1
    } else if JmpOp::decode(item.insn.code & 0xf0)
        .and_then(JmpOp::invert)
        .is_some()
    {
        2
    } else {
        3
    }
}

/// Emits the relaxed form of jump `insn` at `pc` to absolute `dest`.
fn push_long_jump(out: &mut Vec<Insn>, insn: Insn, dest: i64, pc: i64) {
    let op = insn.code & 0xf0;
    if op == 0 {
        out.push(Insn::gotol((dest - (pc + 1)) as i32));
        return;
    }
    let cond = JmpOp::decode(op).expect("conditional jump");
    let mut first = insn;
    match cond.invert() {
        Some(inv) => {
            first.code = (insn.code & 0x0f) | inv as u8;
            first.off = 1;
            out.push(first);
            out.push(Insn::gotol((dest - (pc + 2)) as i32));
        }
        None => {
            first.off = 1;
            out.push(first);
            out.push(Insn::ja(1));
            out.push(Insn::gotol((dest - (pc + 3)) as i32));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::Reg::*;

    #[test]
    fn forward_and_backward_jumps() {
        let mut a = Asm::new();
        let top = a.new_label();
        let out = a.new_label();
        a.mov64(R0, 0);
        a.bind(top);
        a.add64(R0, 1);
        a.jmp(JmpOp::Ge, R0, 10, out);
        a.ja(top);
        a.bind(out);
        a.exit();
        let c = a.finish().unwrap();
        assert_eq!(c.insns[2].off, 1, "forward over the goto");
        assert_eq!(c.insns[3].off, -3, "back to the add");
    }

    #[test]
    fn unbound_label_is_an_error() {
        let mut a = Asm::new();
        let l = a.named_label("nowhere");
        a.ja(l);
        a.exit();
        assert_eq!(
            a.finish(),
            Err(AsmError::UnboundLabel {
                label: "nowhere".into(),
                insn: 0
            })
        );
    }

    #[test]
    fn label_at_end_and_rebinding_are_errors() {
        let mut a = Asm::new();
        let l = a.new_label();
        a.ja(l);
        a.bind(l);
        assert!(matches!(a.finish(), Err(AsmError::LabelAtEnd { .. })));

        let mut a = Asm::new();
        let l = a.new_label();
        a.bind(l);
        a.bind(l);
        a.exit();
        assert!(matches!(a.finish(), Err(AsmError::Rebound { .. })));
    }

    /// A jump over `n` filler instructions, optionally with a 16-byte load
    /// to shift the distance by one.
    fn jump_over(n: usize, op: Option<JmpOp>, long: bool) -> Result<Code, AsmError> {
        let mut a = Asm::with_capacity(n + 3);
        a.set_long_jumps(long);
        let l = a.new_label();
        match op {
            Some(op) => a.jmp(op, R1, 0, l),
            None => a.ja(l),
        }
        for _ in 0..n {
            a.mov64(R0, 0);
        }
        a.bind(l);
        a.exit();
        a.finish()
    }

    #[test]
    fn offset_at_the_16_bit_limit_stays_short() {
        let c = jump_over(i16::MAX as usize, Some(JmpOp::Eq), false).unwrap();
        assert_eq!(c.insns[0].off, i16::MAX);
        assert_eq!(c.insns.len(), i16::MAX as usize + 2);
    }

    #[test]
    fn one_past_the_limit_is_an_error_without_relaxation() {
        let err = jump_over(i16::MAX as usize + 1, Some(JmpOp::Eq), false).unwrap_err();
        assert_eq!(
            err,
            AsmError::JumpOutOfRange {
                insn: 0,
                label: "label0".into(),
                offset: 32768,
                min: -32768,
                max: 32767
            }
        );
    }

    #[test]
    fn one_past_the_limit_relaxes_to_gotol() {
        let n = i16::MAX as usize + 1;
        // Conditional: inverted test skipping a gotol.
        let c = jump_over(n, Some(JmpOp::Gt), true).unwrap();
        assert_eq!(c.insns[0].code, 0x05 | JmpOp::Le as u8);
        assert_eq!(c.insns[0].off, 1);
        assert_eq!(c.insns[1], Insn::gotol(n as i32));
        assert_eq!(c.insns.len(), n + 3);
        // goto: becomes a single gotol.
        let c = jump_over(n, None, true).unwrap();
        assert_eq!(c.insns[0], Insn::gotol(n as i32));
        // jset has no inverse: set -> +1 -> gotol, else skip it.
        let c = jump_over(n, Some(JmpOp::Set), true).unwrap();
        assert_eq!(c.insns[0].off, 1);
        assert_eq!(c.insns[1], Insn::ja(1));
        assert_eq!(c.insns[2], Insn::gotol(n as i32));
    }

    #[test]
    fn backward_jump_at_the_negative_limit() {
        // goto -32768 lands 32767 instructions before the goto.
        let mut a = Asm::new();
        a.set_long_jumps(false);
        let top = a.new_label();
        a.bind(top);
        for _ in 0..i16::MAX {
            a.mov64(R0, 0);
        }
        a.ja(top);
        a.exit();
        let c = a.finish().unwrap();
        assert_eq!(c.insns[i16::MAX as usize].off, i16::MIN);
    }

    #[test]
    fn relaxation_shifts_other_jumps() {
        // A short jump that spans a relaxed one grows by one slot.
        let n = i16::MAX as usize + 1;
        let mut a = Asm::new();
        let end = a.new_label();
        let far = a.new_label();
        a.jmp(JmpOp::Eq, R1, 1, end);
        a.jmp(JmpOp::Eq, R1, 2, far);
        a.bind(end);
        a.mov64(R0, 1);
        a.exit();
        for _ in 0..n {
            a.mov64(R0, 0);
        }
        a.bind(far);
        a.exit();
        let c = a.finish().unwrap();
        assert_eq!(c.insns[0].off, 2, "over the two-slot relaxed jump");
        assert_eq!(c.insns[3], Insn::mov64(R0, 1));
    }

    #[test]
    fn relocs_and_sources_follow_relaxation() {
        let mut o = crate::object::Object::new();
        let map = o.add_map(crate::map::MapSpec::array("m", 4, 1)).unwrap();
        let mut a = Asm::new();
        let l = a.new_label();
        a.set_source(Annotation::new("first"));
        a.jmp(JmpOp::Eq, R1, 0, l);
        a.ld_map_fd(R1, map);
        a.clear_source();
        for _ in 0..40_000 {
            a.mov64(R0, 0);
        }
        a.bind(l);
        a.set_source(Annotation::new("second"));
        a.exit();
        let c = a.finish().unwrap();
        assert_eq!(c.relocs, vec![(2, Reloc::MapFd(map))]);
        assert_eq!(c.source_at(0).unwrap().text.as_ref(), "first");
        assert_eq!(c.source_at(3).unwrap().text.as_ref(), "first");
        assert_eq!(c.source_at(4), None);
        assert_eq!(c.source_at(40_004).unwrap().text.as_ref(), "second");
    }

    #[test]
    fn labels_made_together_are_distinct() {
        let mut a = Asm::new();
        let named = a.named_label("first");
        let ls = a.new_labels(3);
        assert_eq!(ls.len(), 3);
        a.jmp(JmpOp::Eq, R1, 0, ls.get(2));
        a.jmp(JmpOp::Eq, R1, 1, ls.get(1));
        a.bind(ls.get(0));
        a.bind(named);
        a.mov64(R0, 0);
        a.bind(ls.get(1));
        a.mov64(R0, 1);
        a.bind(ls.get(2));
        a.exit();
        let c = a.finish().unwrap();
        assert_eq!(c.insns[0].off, 3, "to the exit");
        assert_eq!(c.insns[1].off, 1, "to the second mov");
        assert_eq!(c.labels, vec![(2, Text::from("first"))]);
    }

    #[test]
    fn calls_to_labels_use_32_bit_immediates() {
        let mut a = Asm::new();
        let sub = a.named_label("sub");
        a.call_label(sub);
        a.exit();
        a.bind(sub);
        a.mov64(R0, 7);
        a.exit();
        let c = a.finish().unwrap();
        assert_eq!(c.insns[0].imm, 1);
        assert!(c.insns[0].is_pseudo_call());
        assert_eq!(c.labels, vec![(2, Text::from("sub"))]);
    }
}
