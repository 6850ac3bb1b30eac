//! `Object::to_elf`: a relocatable EM_BPF object laid out as clang does it.
//!
//! - one section per program type (`ProgramSpec::section_name`, so
//!   `xdp.frags` for XDP with fragment support, but `classifier` for tc), each
//!   program a global `FUNC` symbol with its size;
//! - the object's functions in `.text` as static `FUNC` symbols; calls from
//!   a program section are `R_BPF_64_32` against the `.text` section
//!   symbol with `imm` = target index - 1, calls inside `.text` are plain
//!   pc-relative; function pointers are `R_BPF_64_64` against `.text` with
//!   the byte offset in `imm`;
//! - ordinary maps in `.maps` (BTF-defined), referenced by `R_BPF_64_64`
//!   against their symbols; global data in `.rodata*`/`.data*`/`.bss*`,
//!   referenced against the section symbol with the offset in `imm`;
//! - `license`, `.BTF` and `.BTF.ext` (func and line info per section).

use indexmap::IndexMap;
use object::write::{Object as Elf, Relocation, SectionId, Symbol, SymbolId, SymbolSection};
use object::{
    Architecture, BinaryFormat, Endianness, RelocationFlags, SectionKind, SymbolFlags, SymbolKind,
    SymbolScope, elf,
};

use crate::asm::{Annotation, Code};
use crate::btf::{Btf, LineInfo, Linkage, Type, TypeId, c_identifier};
use crate::insn::{Insn, pseudo};
use crate::map::MapSpec;
use crate::object::{FuncId, MapId, Object, ProgramSpec, ProgramType};
use crate::reloc::Reloc;

use super::ElfError;
use super::btf_ext::{self, SectionInfo};
use super::maps::{DataKind, DefTypes, data_bytes, data_kind, map_def};

/// What a relocation points at.
#[derive(Clone, Copy)]
enum Target {
    /// The `.text` section symbol.
    Text,
    /// A map's symbol in `.maps`.
    Map(MapId),
    /// A global-data section symbol.
    Data(MapId),
}

/// One code section being assembled.
#[derive(Default)]
struct CodeSection {
    insns: Vec<Insn>,
    /// `(instruction index, target, R_BPF_* type)`.
    relocs: Vec<(usize, Target, u32)>,
    /// `(name, start, length, global)`.
    symbols: Vec<(String, usize, usize, bool)>,
    info: SectionInfo,
}

impl Object {
    /// Writes the object as a relocatable BPF ELF file (little endian) that
    /// `bpftool prog loadall`, libbpf, aya and `llvm-objdump` accept.
    pub fn to_elf(&self) -> Result<Vec<u8>, ElfError> {
        self.validate()?;
        let mut btf = Btf::new();
        let defs = DefTypes::new(&mut btf);
        let proto = btf.add(Type::FuncProto {
            ret: defs.int,
            params: Vec::new(),
        });
        let annotated = self.programs().any(|(_, p)| has_sources(&p.code))
            || self
                .functions()
                .any(|(_, f)| f.code.as_ref().is_some_and(has_sources));

        // .text: every function, in declaration order.
        let mut text = CodeSection::default();
        let mut text_start: IndexMap<FuncId, usize> = IndexMap::new();
        let mut at = 0;
        for (id, f) in self.functions() {
            text_start.insert(id, at);
            at += f.code.as_ref().map_or(0, |c| c.insns.len());
        }
        for (id, f) in self.functions() {
            let code = f.code.as_ref().expect("validated: functions are defined");
            let func = btf.add(Type::Func {
                name: c_identifier(&f.name),
                proto,
                linkage: Linkage::Static,
            });
            let ctx = Ctx {
                object: self,
                text_start: &text_start,
                owner: &f.name,
                in_text: true,
            };
            ctx.append(&mut text, code, func, &mut btf, annotated)?;
            text.symbols
                .push((f.name.clone(), text_start[&id], code.insns.len(), false));
        }

        // Program sections, in order of first use.
        let mut sections: IndexMap<String, CodeSection> = IndexMap::new();
        for (_, p) in self.programs() {
            let sec = sections.entry(section_name(p)).or_default();
            let func = btf.add(Type::Func {
                name: c_identifier(&p.name),
                proto,
                linkage: Linkage::Global,
            });
            let start = sec.insns.len();
            let ctx = Ctx {
                object: self,
                text_start: &text_start,
                owner: &p.name,
                in_text: false,
            };
            ctx.append(sec, &p.code, func, &mut btf, annotated)?;
            sec.symbols
                .push((p.name.clone(), start, p.code.insns.len(), true));
        }

        let mut elf = Elf::new(BinaryFormat::Elf, Architecture::Bpf, Endianness::Little);
        let mut code_ids: Vec<(SectionId, CodeSection)> = Vec::new();
        let mut text_symbol = None;
        if !text.insns.is_empty() {
            let id = elf.add_section(Vec::new(), b".text".to_vec(), SectionKind::Text);
            text_symbol = Some(elf.section_symbol(id));
            code_ids.push((id, text));
        }
        for (name, sec) in sections {
            let id = elf.add_section(Vec::new(), name.as_bytes().to_vec(), SectionKind::Text);
            code_ids.push((id, sec));
        }

        // Maps: global data sections, then `.maps`.
        let mut map_symbol: IndexMap<MapId, SymbolId> = IndexMap::new();
        let mut data_symbol: IndexMap<MapId, SymbolId> = IndexMap::new();
        let mut maps_vars: Vec<(TypeId, u32, u32)> = Vec::new();
        let mut maps_section = None;
        for (id, spec) in self.maps() {
            match data_kind(spec) {
                Some(kind) => {
                    let sec = add_data_section(&mut elf, spec, kind)?;
                    data_symbol.insert(id, elf.section_symbol(sec));
                }
                None => {
                    check_identifier(&spec.name)?;
                    let (def, size) = map_def(&mut btf, &defs, spec, "")?;
                    let var = btf.add(Type::Var {
                        name: spec.name.clone(),
                        ty: def,
                        linkage: Linkage::Global,
                    });
                    let sec = *maps_section.get_or_insert_with(|| {
                        elf.add_section(Vec::new(), b".maps".to_vec(), SectionKind::Data)
                    });
                    let offset = elf.append_section_data(sec, &vec![0u8; size as usize], 8);
                    maps_vars.push((var, offset as u32, size));
                    let sym = elf.add_symbol(Symbol {
                        name: spec.name.as_bytes().to_vec(),
                        value: offset,
                        size: size as u64,
                        kind: SymbolKind::Data,
                        scope: SymbolScope::Dynamic,
                        weak: false,
                        section: SymbolSection::Section(sec),
                        flags: SymbolFlags::None,
                    });
                    map_symbol.insert(id, sym);
                }
            }
        }
        if let Some(sec) = maps_section {
            let size = elf.section(sec).data().len() as u32;
            btf.add(Type::Datasec {
                name: ".maps".into(),
                size,
                vars: maps_vars,
            });
        }

        // Code, symbols and relocations.
        let mut ext = Vec::new();
        for (sec_id, mut sec) in code_ids {
            let name = elf.section(sec_id).name().unwrap_or_default().to_string();
            elf.set_section_data(sec_id, Insn::encode_all(&sec.insns), 8);
            for (sym_name, start, len, global) in &sec.symbols {
                elf.add_symbol(Symbol {
                    name: sym_name.as_bytes().to_vec(),
                    value: (*start * 8) as u64,
                    size: (*len * 8) as u64,
                    kind: SymbolKind::Text,
                    scope: if *global {
                        SymbolScope::Dynamic
                    } else {
                        SymbolScope::Compilation
                    },
                    weak: false,
                    section: SymbolSection::Section(sec_id),
                    flags: SymbolFlags::None,
                });
            }
            for &(pc, target, r_type) in &sec.relocs {
                let symbol = match target {
                    Target::Text => text_symbol.expect("calls imply a .text section"),
                    Target::Map(m) => map_symbol[&m],
                    Target::Data(m) => data_symbol[&m],
                };
                elf.add_relocation(
                    sec_id,
                    Relocation {
                        offset: (pc * 8) as u64,
                        symbol,
                        addend: 0,
                        flags: RelocationFlags::Elf { r_type },
                    },
                )
                .map_err(|e| ElfError::Write(e.to_string()))?;
            }
            sec.info.name_off = btf.string(&name);
            ext.push(sec.info);
        }

        let license = elf.add_section(Vec::new(), b"license".to_vec(), SectionKind::Data);
        let mut lic = self.license().as_bytes().to_vec();
        lic.push(0);
        let lic_len = lic.len();
        elf.set_section_data(license, lic, 1);
        elf.add_symbol(Symbol {
            name: b"LICENSE".to_vec(),
            value: 0,
            size: lic_len as u64,
            kind: SymbolKind::Data,
            scope: SymbolScope::Dynamic,
            weak: false,
            section: SymbolSection::Section(license),
            flags: SymbolFlags::None,
        });

        let btf_sec = elf.add_section(Vec::new(), b".BTF".to_vec(), SectionKind::Other);
        let ext_sec = elf.add_section(Vec::new(), b".BTF.ext".to_vec(), SectionKind::Other);
        let ext_bytes = btf_ext::encode(&ext);
        elf.set_section_data(btf_sec, btf.to_bytes(), 4);
        elf.set_section_data(ext_sec, ext_bytes, 4);
        elf.write().map_err(|e| ElfError::Write(e.to_string()))
    }
}

/// The section of a program: libbpf's name, except tc classifiers, which
/// go to `classifier` (libbpf 1.1 reads it too, aya reads only it); a
/// tp_btf, fentry or fexit program's names its target
/// (`fentry/do_nanosleep`), which libbpf needs to load it.
fn section_name(p: &ProgramSpec) -> String {
    match (p.prog_type, &p.attach_to) {
        (ProgramType::SchedCls, _) => "classifier".into(),
        (_, Some(target)) => format!("{}/{target}", p.section_name()),
        _ => p.section_name().into(),
    }
}

/// What `append` needs to resolve references.
struct Ctx<'a> {
    object: &'a Object,
    text_start: &'a IndexMap<FuncId, usize>,
    owner: &'a str,
    in_text: bool,
}

impl Ctx<'_> {
    fn unsupported(&self, pc: usize, what: &str) -> ElfError {
        ElfError::Unsupported(format!("`{}` instruction {pc}: {what}", self.owner))
    }

    /// Appends `code` to `sec` with its relocations, FUNC and line records.
    fn append(
        &self,
        sec: &mut CodeSection,
        code: &Code,
        func: TypeId,
        btf: &mut Btf,
        annotated: bool,
    ) -> Result<(), ElfError> {
        let base = sec.insns.len();
        let mut insns = code.insns.clone();
        // Local subprograms (call_label, ld_func_label) have no place in
        // ELF: libbpf takes subprograms from .text symbols only.
        let relocated: Vec<usize> = code.relocs.iter().map(|(pc, _)| *pc).collect();
        for (pc, insn) in insns.iter().enumerate() {
            let local = insn.is_pseudo_call() || (insn.is_wide() && insn.src == pseudo::FUNC);
            if local && !relocated.contains(&pc) {
                return Err(self.unsupported(
                    pc,
                    "a local subprogram (call_label/ld_func_label); use an object function",
                ));
            }
        }
        for &(pc, reloc) in &code.relocs {
            let at = base + pc;
            match reloc {
                Reloc::Call(f) => {
                    let target = self.text_start[&f] as i64;
                    if self.in_text {
                        insns[pc].imm = (target - (at as i64 + 1)) as i32;
                    } else {
                        insns[pc].imm = (target - 1) as i32;
                        sec.relocs.push((at, Target::Text, elf::R_BPF_64_32));
                    }
                }
                Reloc::FuncPtr(f) => {
                    insns[pc].src = 0;
                    insns[pc].imm = (self.text_start[&f] * 8) as i32;
                    insns[pc + 1].imm = 0;
                    sec.relocs.push((at, Target::Text, elf::R_BPF_64_64));
                }
                Reloc::MapFd(m) => {
                    if data_kind(self.object.map(m)).is_some() {
                        return Err(self.unsupported(
                            pc,
                            "a map-fd reference to global data (loaders only give its value address)",
                        ));
                    }
                    insns[pc].src = 0;
                    insns[pc].imm = 0;
                    insns[pc + 1].imm = 0;
                    sec.relocs.push((at, Target::Map(m), elf::R_BPF_64_64));
                }
                Reloc::MapValue { map, offset } => {
                    if data_kind(self.object.map(map)).is_none() {
                        return Err(self.unsupported(
                            pc,
                            &format!(
                                "a value reference into `{}`, which is not global data \
                                 (name it .rodata*/.data*/.bss*)",
                                self.object.map(map).name
                            ),
                        ));
                    }
                    insns[pc].src = 0;
                    insns[pc].imm = offset as i32;
                    insns[pc + 1].imm = 0;
                    sec.relocs.push((at, Target::Data(map), elf::R_BPF_64_64));
                }
            }
        }
        sec.insns.extend_from_slice(&insns);
        sec.info.funcs.push((base as u32, func));
        if annotated {
            push_lines(&mut sec.info.lines, btf, code, base);
        }
        Ok(())
    }
}

/// Line records for `code` at `base`: one at its start (the kernel wants
/// one at every function start) and one wherever the annotation changes.
fn push_lines(lines: &mut Vec<LineInfo>, btf: &mut Btf, code: &Code, base: usize) {
    let mut record = |pc: usize, a: Option<&Annotation>| LineInfo {
        insn: (base + pc) as u32,
        file: btf.string(a.and_then(|a| a.file.as_deref()).unwrap_or("")),
        line_text: btf.string(a.map_or("", |a| &a.text)),
        line: a.map_or(0, |a| a.line),
        column: a.map_or(0, |a| a.column),
    };
    lines.push(record(0, code.source_at(0)));
    for (pc, a) in &code.sources {
        if *pc == 0 || *pc >= code.insns.len() {
            continue;
        }
        let rec = record(*pc, a.as_ref());
        match lines.last_mut() {
            Some(last) if last.insn == rec.insn => *last = rec,
            _ => lines.push(rec),
        }
    }
}

fn has_sources(code: &Code) -> bool {
    code.sources.iter().any(|(_, a)| a.is_some())
}

/// `.maps` names are BTF variable names: the kernel wants C identifiers.
fn check_identifier(name: &str) -> Result<(), ElfError> {
    let ok = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ElfError::Unsupported(format!(
            "map name `{name}` is not a C identifier (it becomes a BTF variable)"
        )))
    }
}

/// Adds the section of a global-data map with its contents.
fn add_data_section(elf: &mut Elf, spec: &MapSpec, kind: DataKind) -> Result<SectionId, ElfError> {
    let bytes = data_bytes(spec)?;
    let (section_kind, nobits) = match kind {
        DataKind::Rodata => (SectionKind::ReadOnlyData, false),
        DataKind::Data => (SectionKind::Data, false),
        DataKind::Bss => (SectionKind::UninitializedData, true),
    };
    let sec = elf.add_section(Vec::new(), spec.name.as_bytes().to_vec(), section_kind);
    if nobits {
        if bytes.iter().any(|b| *b != 0) {
            return Err(ElfError::Unsupported(format!(
                "`{}` is .bss but has non-zero contents",
                spec.name
            )));
        }
        elf.append_section_bss(sec, bytes.len() as u64, 8);
    } else {
        elf.set_section_data(sec, bytes, 8);
    }
    Ok(sec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::Asm;
    use crate::insn::Reg::R0;
    use object::{Object as _, ObjectSection};

    #[test]
    fn tracing_programs_go_to_libbpf_sections_with_their_target() {
        let mut obj = Object::new();
        for (name, t, target) in [
            ("on_sleep", ProgramType::Fentry, Some("do_nanosleep")),
            ("on_switch", ProgramType::TpBtf, Some("sched_switch")),
            ("on_kprobe", ProgramType::Kprobe, None),
        ] {
            let mut a = Asm::new();
            a.mov64(R0, 0);
            a.exit();
            let mut spec = ProgramSpec::new(name, t, a.finish().unwrap());
            if let Some(target) = target {
                spec = spec.with_attach_to(target);
            }
            obj.add_program_spec(spec).unwrap();
        }
        let elf = obj.to_elf().unwrap();
        let file = object::File::parse(&*elf).unwrap();
        let names: Vec<&str> = file.sections().filter_map(|s| s.name().ok()).collect();
        for want in ["fentry/do_nanosleep", "tp_btf/sched_switch", "kprobe"] {
            assert!(names.contains(&want), "{want} in {names:?}");
        }
    }
}
