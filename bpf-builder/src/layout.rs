//! Lays out one program for loading: its own code followed by every
//! function it reaches, with calls and function pointers resolved. Map
//! references stay symbolic; the loader (or ELF writer) resolves them.

use cranelift_entity::SecondaryMap;

use crate::asm::Annotation;
use crate::insn::Insn;
use crate::object::{FuncId, FuncSlot, Object, ObjectError, ProgId};
use crate::reloc::Reloc;

/// Whose code a range of a laid-out program is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Owner {
    /// The program's own code.
    Program(ProgId),
    /// A function appended after it.
    Function(FuncId),
}

/// A contiguous range of a laid-out program.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Segment {
    /// First instruction index.
    pub start: usize,
    /// Number of instruction slots.
    pub len: usize,
    /// Whose code it is.
    pub owner: Owner,
}

/// A program ready for loading, apart from map references.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    /// All instructions: the program, then its functions.
    pub insns: Vec<Insn>,
    /// Remaining map references, by instruction index.
    pub relocs: Vec<(usize, Reloc)>,
    /// The program's code first, then one segment per function.
    pub segments: Vec<Segment>,
}

impl Layout {
    /// The segment containing instruction `pc`.
    pub fn segment_at(&self, pc: usize) -> Option<&Segment> {
        let i = self.segments.partition_point(|s| s.start <= pc);
        i.checked_sub(1)
            .map(|i| &self.segments[i])
            .filter(|s| pc < s.start + s.len)
    }

    /// The source annotation of instruction `pc`.
    pub fn annotation_at<'o>(&self, object: &'o Object, pc: usize) -> Option<&'o Annotation> {
        let seg = self.segment_at(pc)?;
        let code = match seg.owner {
            Owner::Program(p) => &object.program(p).code,
            Owner::Function(f) => object.function(f).code.as_ref()?,
        };
        code.source_at(pc - seg.start)
    }

    /// The name of the program or function that instruction `pc` belongs to.
    pub fn owner_name<'o>(&self, object: &'o Object, pc: usize) -> Option<&'o str> {
        Some(match self.segment_at(pc)?.owner {
            Owner::Program(p) => &object.program(p).name,
            Owner::Function(f) => &object.function(f).name,
        })
    }
}

impl Object {
    /// Lays out `prog` with the functions it reaches, in the order first
    /// referenced (breadth first), each once.
    pub fn layout(&self, prog: ProgId) -> Result<Layout, ObjectError> {
        let main = &self.program(prog).code;
        let mut order: Vec<FuncId> = Vec::new();
        let mut placed: SecondaryMap<FuncSlot, bool> = SecondaryMap::new();
        let mut queue_pos = 0;
        let mut visit = |code: &crate::asm::Code, order: &mut Vec<FuncId>| {
            for (_, r) in &code.relocs {
                if let Reloc::Call(f) | Reloc::FuncPtr(f) = *r
                    && !placed[f.slot()]
                {
                    placed[f.slot()] = true;
                    order.push(f);
                }
            }
        };
        visit(main, &mut order);
        while queue_pos < order.len() {
            let f = order[queue_pos];
            queue_pos += 1;
            let code = self
                .function(f)
                .code
                .as_ref()
                .ok_or_else(|| ObjectError::Undefined(self.function(f).name.clone()))?;
            visit(code, &mut order);
        }

        let mut segments = vec![Segment {
            start: 0,
            len: main.insns.len(),
            owner: Owner::Program(prog),
        }];
        let mut start: SecondaryMap<FuncSlot, usize> = SecondaryMap::new();
        let mut total = main.insns.len();
        for &f in &order {
            let len = self.function(f).code.as_ref().map_or(0, |c| c.insns.len());
            start[f.slot()] = total;
            segments.push(Segment {
                start: total,
                len,
                owner: Owner::Function(f),
            });
            total += len;
        }

        let mut insns = Vec::with_capacity(total);
        let mut relocs = Vec::new();
        for seg in &segments {
            let code = match seg.owner {
                Owner::Program(_) => main,
                Owner::Function(f) => self.function(f).code.as_ref().expect("checked above"),
            };
            insns.extend_from_slice(&code.insns);
            for &(pc, r) in &code.relocs {
                let at = seg.start + pc;
                match r {
                    Reloc::Call(f) | Reloc::FuncPtr(f) => {
                        insns[at].imm = (start[f.slot()] as i64 - (at as i64 + 1)) as i32;
                    }
                    Reloc::MapFd(_) | Reloc::MapValue { .. } => relocs.push((at, r)),
                }
            }
        }
        Ok(Layout {
            insns,
            relocs,
            segments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::Asm;
    use crate::insn::Reg::*;
    use crate::map::MapSpec;
    use crate::object::ProgramType;

    #[test]
    fn functions_are_appended_once_and_calls_patched() {
        let mut o = Object::new();
        let m = o.add_map(MapSpec::array("m", 4, 1)).unwrap();
        let leaf = o.declare_function("leaf").unwrap();
        let mut a = Asm::new();
        a.ld_map_fd(R1, m);
        a.mov64(R0, 1);
        a.exit();
        o.define_function(leaf, a.finish().unwrap()).unwrap();
        let mut a = Asm::new();
        a.call_func(leaf);
        a.exit();
        let mid = o.add_function("mid", a.finish().unwrap()).unwrap();
        let mut a = Asm::new();
        a.call_func(mid);
        a.ld_func(R2, leaf);
        a.exit();
        let p = o
            .add_program("p", ProgramType::Xdp, a.finish().unwrap())
            .unwrap();

        let l = o.layout(p).unwrap();
        // p: call(0) ld_func(1,2) exit(3) | mid: call(4) exit(5) | leaf: 6..
        let owners: Vec<_> = l.segments.iter().map(|s| (s.start, s.owner)).collect();
        assert_eq!(
            owners,
            vec![
                (0, Owner::Program(p)),
                (4, Owner::Function(mid)),
                (6, Owner::Function(leaf))
            ]
        );
        assert_eq!(l.insns[0].imm, 3, "call mid: 0 + 1 + 3 = 4");
        assert_eq!(l.insns[1].imm, 4, "&leaf: 1 + 1 + 4 = 6");
        assert_eq!(l.insns[4].imm, 1, "mid calls leaf: 4 + 1 + 1 = 6");
        assert_eq!(l.relocs, vec![(6, Reloc::MapFd(m))]);
        assert_eq!(l.owner_name(&o, 7), Some("leaf"));
    }
}
