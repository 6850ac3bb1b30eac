//! Listings with names: the disassembler fed with what the builder knows
//! (label names, maps, functions, source annotations).

use crate::asm::{Annotation, Code};
use crate::disasm::{Symbols, listing};
use crate::layout::{Layout, Owner};
use crate::object::{Object, ObjectError, ProgId};
use crate::reloc::Reloc;

/// An annotation as listing comment lines: a one-line source with a
/// column gets a caret under that column; anything else is shown as is.
fn render(a: &Annotation) -> String {
    if a.column == 0 || a.text.contains('\n') {
        return a.to_string();
    }
    let pad = a.text.chars().take(a.column as usize - 1).count();
    format!("{}\n{}^", a.text, " ".repeat(pad))
}

/// Symbols of a laid-out program of an object.
struct ProgramSymbols<'a> {
    object: &'a Object,
    layout: &'a Layout,
}

impl ProgramSymbols<'_> {
    fn code(&self, owner: Owner) -> Option<&Code> {
        match owner {
            Owner::Program(p) => Some(&self.object.program(p).code),
            Owner::Function(f) => self.object.function(f).code.as_ref(),
        }
    }

    fn owner_name(&self, owner: Owner) -> &str {
        match owner {
            Owner::Program(p) => &self.object.program(p).name,
            Owner::Function(f) => &self.object.function(f).name,
        }
    }

    /// The symbolic reference at `pc`, looked up in its owner's code (calls
    /// and function pointers are resolved in the layout, not lost there).
    fn reloc(&self, pc: usize) -> Option<Reloc> {
        let seg = self.layout.segment_at(pc)?;
        self.code(seg.owner)?.reloc_at(pc - seg.start).copied()
    }
}

impl Symbols for ProgramSymbols<'_> {
    fn label(&self, pc: usize) -> Option<String> {
        let seg = self.layout.segment_at(pc)?;
        if seg.start == pc {
            return Some(self.owner_name(seg.owner).to_string());
        }
        self.code(seg.owner)?
            .labels
            .iter()
            .find(|(at, _)| *at == pc - seg.start)
            .map(|(_, name)| name.to_string())
    }

    fn wide_load(&self, pc: usize) -> Option<String> {
        Some(match self.reloc(pc)? {
            Reloc::MapFd(m) => format!("map {}", self.object.map(m).name),
            Reloc::MapValue { map, offset: 0 } => {
                format!("map {} value", self.object.map(map).name)
            }
            Reloc::MapValue { map, offset } => {
                format!("map {} value + {offset}", self.object.map(map).name)
            }
            Reloc::FuncPtr(f) => format!("func {}", self.object.function(f).name),
            Reloc::Call(_) => return None,
        })
    }

    // Calls to functions need no comment: their target label is the
    // function's name.

    fn annotation(&self, pc: usize) -> Option<String> {
        self.layout.annotation_at(self.object, pc).map(render)
    }
}

/// Symbols of a lone code block (labels and annotations; references by id).
struct CodeSymbols<'a>(&'a Code);

impl Symbols for CodeSymbols<'_> {
    fn label(&self, pc: usize) -> Option<String> {
        self.0
            .labels
            .iter()
            .find(|(at, _)| *at == pc)
            .map(|(_, n)| n.to_string())
    }

    fn wide_load(&self, pc: usize) -> Option<String> {
        Some(match self.0.reloc_at(pc)? {
            Reloc::MapFd(m) => format!("{m}"),
            Reloc::MapValue { map, offset } => format!("{map} value + {offset}"),
            Reloc::FuncPtr(f) => format!("{f}"),
            Reloc::Call(_) => return None,
        })
    }

    fn call(&self, pc: usize) -> Option<String> {
        match self.0.reloc_at(pc)? {
            Reloc::Call(f) => Some(format!("call {f}")),
            _ => None,
        }
    }

    fn annotation(&self, pc: usize) -> Option<String> {
        self.0.source_at(pc).map(render)
    }
}

impl Code {
    /// The disassembly of this block, with its labels and annotations.
    pub fn listing(&self) -> String {
        listing(&self.insns, &CodeSymbols(self))
    }
}

impl Object {
    /// The disassembly of program `prog` as it will be loaded (its
    /// functions appended), with map, function and label names and the
    /// source annotations.
    pub fn listing(&self, prog: ProgId) -> Result<String, ObjectError> {
        let layout = self.layout(prog)?;
        Ok(listing(
            &layout.insns,
            &ProgramSymbols {
                object: self,
                layout: &layout,
            },
        ))
    }
}
