//! Per-program BTF for loading: a `FUNC` per subprogram and `line_info`
//! from the source annotations.

use super::{Btf, LineInfo, Linkage, Type, encode_func_info, encode_line_info};

/// The BTF of one laid-out program: a `FUNC` per subprogram and line info
/// from the source annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramBtf {
    /// The BTF blob to load with `BPF_BTF_LOAD`.
    pub btf: Vec<u8>,
    /// `bpf_func_info` records.
    pub func_info: Vec<u8>,
    /// `bpf_line_info` records.
    pub line_info: Vec<u8>,
}

/// Makes `name` a valid C identifier, as the kernel requires of `FUNC` names.
pub(crate) fn c_identifier(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Subprogram starts of a laid-out program: 0 and every target of a
/// bpf-to-bpf call or function pointer.
pub fn subprogram_starts(insns: &[crate::insn::Insn]) -> Vec<usize> {
    use crate::insn::pseudo;
    let mut starts = vec![0usize];
    for (pc, insn) in insns.iter().enumerate() {
        let is_func_ptr = insn.is_wide() && insn.src == pseudo::FUNC;
        if insn.is_pseudo_call() || is_func_ptr {
            let target = pc as i64 + insn.imm as i64 + 1;
            if (0..insns.len() as i64).contains(&target) {
                starts.push(target as usize);
            }
        }
    }
    starts.sort_unstable();
    starts.dedup();
    starts
}

/// Builds the BTF of `layout` (a program of `object`), or `None` when it
/// needs none: no subprograms, not an extension and (with `line_info`
/// off, or no annotations) nothing to show.
///
/// Each subprogram has a `FUNC`: static, of prototype `int (void)`,
/// except global functions ([`FunctionSpec::global`]) and the main
/// function of an extension ([`ProgramSpec::extension`]), which are
/// global with the prototype `int (struct <ctx> *ctx)` (`<ctx>` the
/// context struct of the program's type), as the kernel wants them, and
/// the main function of a program whose type has a context struct,
/// static with that prototype (fentry and fexit on the program find
/// their arguments there).
///
/// [`FunctionSpec::global`]: crate::object::FunctionSpec::global
/// [`ProgramSpec::extension`]: crate::object::ProgramSpec::extension
pub fn for_program(
    object: &crate::object::Object,
    layout: &crate::layout::Layout,
    line_info: bool,
) -> Option<ProgramBtf> {
    use crate::layout::Owner;
    let code_of = |owner: Owner| match owner {
        Owner::Program(p) => Some(&object.program(p).code),
        Owner::Function(f) => object.function(f).code.as_ref(),
    };
    let starts = subprogram_starts(&layout.insns);
    let program = match layout.segments.first().map(|s| s.owner) {
        Some(Owner::Program(p)) => Some(object.program(p)),
        _ => None,
    };
    let is_extension = program.is_some_and(|p| p.extension.is_some());
    // Whether the subprogram starting at `pc` is global.
    let is_global = |pc: usize| match layout.segment_at(pc) {
        Some(s) if s.start == pc => match s.owner {
            Owner::Program(_) => is_extension,
            Owner::Function(f) => object.function(f).global,
        },
        _ => false,
    };
    let annotated = line_info
        && layout
            .segments
            .iter()
            .filter_map(|s| code_of(s.owner))
            .any(|c| c.sources.iter().any(|(_, a)| a.is_some()));
    if starts.len() == 1 && !annotated && !is_extension {
        return None;
    }

    let mut btf = Btf::new();
    let int = btf.add(Type::int("int", 4, true));
    let proto = btf.add(Type::FuncProto {
        ret: int,
        params: Vec::new(),
    });
    // `int (struct <ctx> *ctx)`: the prototype of global functions, and
    // of the program's main function where its type has a context struct
    // (as clang writes it): fentry and fexit on the program read its
    // arguments from there, the kernel's own struct in place of the
    // context's (`xdp_buff` for `xdp_md`).
    let main_has_ctx = program.is_some_and(|p| !super::context_name(p.prog_type).is_empty());
    let ctx_proto = match program {
        Some(p) if main_has_ctx || starts.iter().any(|&pc| is_global(pc)) => {
            let ctx = super::add_context_struct(&mut btf, p.prog_type);
            let ptr = btf.add(Type::Ptr(ctx));
            Some(btf.add(Type::FuncProto {
                ret: int,
                params: vec![("ctx".into(), ptr)],
            }))
        }
        _ => None,
    };
    let mut func_info = Vec::with_capacity(starts.len());
    for &pc in &starts {
        let seg = layout.segment_at(pc);
        let name = match seg {
            Some(s) if s.start == pc => layout.owner_name(object, pc).map(str::to_string),
            Some(s) => code_of(s.owner).and_then(|c| {
                c.labels
                    .iter()
                    .find(|(at, _)| *at == pc - s.start)
                    .map(|(_, n)| n.to_string())
            }),
            None => None,
        }
        .unwrap_or_else(|| format!("sub_{pc}"));
        let (proto, linkage) = match ctx_proto {
            Some(ctx_proto) if is_global(pc) => (ctx_proto, Linkage::Global),
            Some(ctx_proto) if pc == 0 && main_has_ctx => (ctx_proto, Linkage::Static),
            _ => (proto, Linkage::Static),
        };
        let func = btf.add(Type::Func {
            name: c_identifier(&name),
            proto,
            linkage,
        });
        func_info.push((pc as u32, func));
    }

    // Line info: a record wherever the annotation changes, and at every
    // subprogram start (the kernel requires one there).
    let mut lines: Vec<LineInfo> = Vec::new();
    let mut push = |btf: &mut Btf, pc: usize, a: Option<&crate::asm::Annotation>| {
        let rec = LineInfo {
            insn: pc as u32,
            file: btf.string(a.and_then(|a| a.file.as_deref()).unwrap_or("")),
            line_text: btf.string(a.map_or("", |a| &a.text)),
            line: a.map_or(0, |a| a.line),
            column: a.map_or(0, |a| a.column),
        };
        match lines.last_mut() {
            Some(last) if last.insn == rec.insn => *last = rec,
            _ => lines.push(rec),
        }
    };
    if annotated {
        let mut next_start = starts.iter().peekable();
        for seg in &layout.segments {
            let Some(code) = code_of(seg.owner) else {
                continue;
            };
            let mut changes = code.sources.iter().peekable();
            for local in 0..seg.len {
                let pc = seg.start + local;
                let mut changed = false;
                while changes.peek().is_some_and(|(at, _)| *at == local) {
                    changes.next();
                    changed = true;
                }
                let at_start = next_start.peek().is_some_and(|s| **s == pc);
                if at_start {
                    next_start.next();
                }
                if changed || at_start || pc == 0 {
                    push(&mut btf, pc, code.source_at(local));
                }
            }
        }
    }
    let mut line_info = Vec::new();
    if !lines.is_empty() {
        line_info = encode_line_info(&lines);
    }
    Some(ProgramBtf {
        btf: btf.to_bytes(),
        func_info: encode_func_info(&func_info),
        line_info,
    })
}
