//! `Object::from_elf`: a BPF ELF object (clang's or ours) read into an
//! [`Object`] that code can extend before loading.
//!
//! `aya-obj` parses the file: map definitions (BTF-defined `.maps`, legacy
//! `maps`, global data), programs and their section types, functions and
//! their instructions, license, line info. It keeps relocations and
//! symbols to itself, so those come from the `object` crate's reader. Each
//! relocation becomes a symbolic [`Reloc`]; line info becomes annotations.

use std::collections::HashMap;
use std::sync::Arc;

use aya_obj::Map as AyaMap;
use aya_obj::obj::{Function, ProgramSection};
use aya_obj::programs::XdpAttachType;
use object::{Object as _, ObjectSection, ObjectSymbol, RelocationTarget, SectionIndex};

use crate::asm::{Annotation, Code, Text};
use crate::insn::{Insn, pseudo};
use crate::map::{MapSpec, MapType};
use crate::object::{FuncId, MapId, Object, ProgramType};
use crate::reloc::Reloc;

use super::ElfError;

/// A relocation: the symbol's section, address and name.
#[derive(Clone, Debug)]
struct Rel {
    section: Option<SectionIndex>,
    address: u64,
    name: String,
    is_section: bool,
}

/// What the reader knows about the file beyond aya-obj's view.
struct Elf {
    /// `(section, byte offset)` -> relocation.
    relocs: HashMap<(usize, u64), Rel>,
    /// Section names by index.
    section_names: HashMap<usize, String>,
    /// `.BTF` string table.
    btf_strings: Vec<u8>,
}

fn read_err(e: impl std::fmt::Display) -> ElfError {
    ElfError::Read(e.to_string())
}

impl Elf {
    fn parse(bytes: &[u8]) -> Result<Elf, ElfError> {
        let file = object::File::parse(bytes).map_err(read_err)?;
        let mut relocs = HashMap::new();
        let mut section_names = HashMap::new();
        let mut btf_strings = Vec::new();
        for section in file.sections() {
            let name = section.name().map_err(read_err)?.to_string();
            if name == ".BTF" {
                btf_strings = btf_string_table(section.data().map_err(read_err)?)?;
            }
            section_names.insert(section.index().0, name);
            for (offset, r) in section.relocations() {
                let RelocationTarget::Symbol(sym) = r.target() else {
                    continue;
                };
                let sym = file.symbol_by_index(sym).map_err(read_err)?;
                relocs.insert(
                    (section.index().0, offset),
                    Rel {
                        section: sym.section_index(),
                        address: sym.address(),
                        name: sym.name().map_err(read_err)?.to_string(),
                        is_section: sym.kind() == object::SymbolKind::Section,
                    },
                );
            }
        }
        Ok(Elf {
            relocs,
            section_names,
            btf_strings,
        })
    }

    fn string(&self, off: u32) -> &str {
        let rest = self.btf_strings.get(off as usize..).unwrap_or_default();
        let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }
}

/// The string section of a `.BTF` blob.
fn btf_string_table(btf: &[u8]) -> Result<Vec<u8>, ElfError> {
    let u32_at = |at: usize| -> Result<u32, ElfError> {
        btf.get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
            .ok_or_else(|| ElfError::Read(".BTF is truncated".into()))
    };
    let hdr_len = u32_at(4)? as usize;
    let (str_off, str_len) = (u32_at(16)? as usize, u32_at(20)? as usize);
    let start = hdr_len + str_off;
    btf.get(start..start + str_len)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| ElfError::Read(".BTF strings are out of bounds".into()))
}

fn map_type(kernel: u32, name: &str) -> Result<MapType, ElfError> {
    MapType::from_kernel_type(kernel)
        .ok_or_else(|| ElfError::Unsupported(format!("map `{name}` has map type {kernel}")))
}

fn map_spec(name: &str, m: &AyaMap) -> Result<MapSpec, ElfError> {
    let mut spec = MapSpec::new(
        name,
        map_type(m.map_type(), name)?,
        m.key_size(),
        m.value_size(),
        m.max_entries(),
    );
    spec.flags = m.map_flags();
    if let Some(inner) = m.inner() {
        spec.inner = Some(Box::new(map_spec(&format!("{name}.inner"), &inner)?));
        // The template's name is never shown; keep it within 15 bytes.
        if let Some(i) = spec.inner.as_mut() {
            i.name = "inner".into();
        }
    }
    Ok(spec)
}

fn program_type(name: &str, section: &ProgramSection) -> Result<ProgramType, ElfError> {
    Ok(match section {
        ProgramSection::Xdp { attach_type, .. } => match attach_type {
            XdpAttachType::Interface => ProgramType::Xdp,
            XdpAttachType::DevMap => ProgramType::XdpDevmap,
            XdpAttachType::CpuMap => ProgramType::XdpCpumap,
        },
        ProgramSection::SchedClassifier => ProgramType::SchedCls,
        ProgramSection::SocketFilter => ProgramType::SocketFilter,
        other => {
            return Err(ElfError::Unsupported(format!(
                "program `{name}` of section type {other:?}"
            )));
        }
    })
}

/// Maps and functions by what relocations name them by.
struct Names {
    /// Map symbol or data section name -> map.
    maps: HashMap<String, MapId>,
    /// `(section, address)` -> function.
    funcs: HashMap<(usize, u64), FuncId>,
}

impl Object {
    /// Reads a BPF ELF object (as clang or [`Object::to_elf`] writes it):
    /// maps, global data, programs of the types [`ProgramType`] knows, and
    /// the functions in `.text`, with every relocation made symbolic again
    /// and line info turned into source annotations.
    pub fn from_elf(bytes: &[u8]) -> Result<Object, ElfError> {
        let parsed = aya_obj::Object::parse(bytes).map_err(read_err)?;
        let elf = Elf::parse(bytes)?;
        let mut object = Object::new();
        object.set_license(parsed.license.to_string_lossy().into_owned());

        // Maps in file order, so ids do not depend on hashing.
        let mut maps: Vec<(&String, &AyaMap)> = parsed.maps.iter().collect();
        maps.sort_by_key(|(_, m)| (m.section_index(), m.symbol_index()));
        let mut names = Names {
            maps: HashMap::new(),
            funcs: HashMap::new(),
        };
        for (name, m) in maps {
            let id = match m.section_kind() {
                aya_obj::EbpfSectionKind::Rodata => object.add_rodata(name, m.data())?,
                aya_obj::EbpfSectionKind::Data | aya_obj::EbpfSectionKind::Bss => {
                    object.add_data(name, m.data())?
                }
                _ => object.add_map(map_spec(name, m)?)?,
            };
            names.maps.insert(name.clone(), id);
        }

        // Functions that are not programs: declared first, so that calls
        // between them resolve whatever their order.
        let program_keys: Vec<(usize, u64)> =
            parsed.programs.values().map(|p| p.function_key()).collect();
        let mut functions: Vec<&Function> = parsed
            .functions
            .iter()
            .filter(|(k, _)| !program_keys.contains(k))
            .map(|(_, f)| f)
            .collect();
        functions.sort_by_key(|f| (f.section_index.0, f.address));
        for f in &functions {
            let id = object.declare_function(&f.name)?;
            names.funcs.insert((f.section_index.0, f.address), id);
        }
        for f in &functions {
            let code = convert(&elf, &names, &object, f, true)?;
            object.define_function(names.funcs[&(f.section_index.0, f.address)], code)?;
        }

        let mut programs: Vec<(&String, &aya_obj::Program)> = parsed.programs.iter().collect();
        programs.sort_by_key(|(_, p)| p.function_key());
        for (name, p) in programs {
            let f = &parsed.functions[&p.function_key()];
            let code = convert(&elf, &names, &object, f, false)?;
            let id = object.add_program(name, program_type(name, &p.section)?, code)?;
            if let ProgramSection::Xdp { frags: true, .. } = p.section {
                object.set_xdp_frags(id, true)?;
            }
        }
        Ok(object)
    }
}

/// Turns one ELF function into [`Code`]: relocations become [`Reloc`]s and
/// the instructions take the form the assembler emits.
fn convert(
    elf: &Elf,
    names: &Names,
    object: &Object,
    f: &Function,
    in_text: bool,
) -> Result<Code, ElfError> {
    let sec = f.section_index.0;
    let mut insns: Vec<Insn> = f
        .instructions
        .iter()
        .map(|i| Insn::new(i.code, i.dst_reg(), i.src_reg(), i.off, i.imm))
        .collect();
    let bad = |pc: usize, what: String| {
        ElfError::Unsupported(format!("`{}` instruction {pc}: {what}", f.name))
    };
    let func_at = |section: usize, address: u64, pc: usize| {
        names
            .funcs
            .get(&(section, address))
            .copied()
            .ok_or_else(|| {
                bad(
                    pc,
                    format!("no function at {address:#x} of section {section}"),
                )
            })
    };
    let mut relocs = Vec::new();
    for pc in 0..insns.len() {
        let at = (f.section_offset + pc * 8) as u64;
        let insn = insns[pc];
        let call = insn.is_pseudo_call();
        let wide = insn.is_wide() && pc + 1 < insns.len();
        let reloc = match elf.relocs.get(&(sec, at)) {
            Some(rel) => {
                let target_sec = rel.section.map(|s| s.0);
                let sec_name = target_sec
                    .and_then(|s| elf.section_names.get(&s))
                    .map_or("", String::as_str);
                if call || (wide && names.funcs.keys().any(|(s, _)| Some(*s) == target_sec)) {
                    let s = target_sec.expect("function symbols have a section");
                    let address = match (rel.is_section, call) {
                        (true, true) => rel.address as i64 + (insn.imm as i64 + 1) * 8,
                        (true, false) => rel.address as i64 + insn.imm as i64,
                        (false, _) => rel.address as i64,
                    };
                    let func = func_at(s, address as u64, pc)?;
                    Some(if call {
                        Reloc::Call(func)
                    } else {
                        Reloc::FuncPtr(func)
                    })
                } else if !wide {
                    return Err(bad(pc, format!("relocation against `{}`", rel.name)));
                } else if let Some(&map) = names.maps.get(sec_name) {
                    // Global data: the section names the map.
                    let offset = rel.address as i64 + insn.imm as i64;
                    Some(Reloc::MapValue {
                        map,
                        offset: offset as u32,
                    })
                } else if let Some(&map) = names.maps.get(&rel.name) {
                    Some(Reloc::MapFd(map))
                } else {
                    return Err(bad(
                        pc,
                        format!("relocation against unknown `{}`", rel.name),
                    ));
                }
            }
            // Same-section calls and function pointers are pc-relative.
            None if call || (wide && insn.src == pseudo::FUNC) => {
                let address = f.section_offset as i64 + (pc as i64 + insn.imm as i64 + 1) * 8;
                if !in_text && address >= f.section_offset as i64 {
                    return Err(bad(pc, "a call inside the program's own section".into()));
                }
                let func = func_at(sec, address as u64, pc)?;
                Some(if call {
                    Reloc::Call(func)
                } else {
                    Reloc::FuncPtr(func)
                })
            }
            None => None,
        };
        let Some(reloc) = reloc else { continue };
        // The assembler's form: pseudo source, zero immediates.
        let src = match reloc {
            Reloc::Call(_) => pseudo::CALL,
            Reloc::FuncPtr(_) => pseudo::FUNC,
            Reloc::MapFd(_) => pseudo::MAP_FD,
            Reloc::MapValue { .. } => pseudo::MAP_VALUE,
        };
        insns[pc].src = src;
        insns[pc].imm = 0;
        if !call {
            insns[pc + 1].imm = 0;
        }
        if let Reloc::MapValue { map, offset } = reloc
            && offset >= object.map(map).value_size
        {
            return Err(bad(pc, format!("offset {offset} past global data")));
        }
        relocs.push((pc, reloc));
    }
    Ok(Code {
        insns,
        relocs,
        sources: sources(elf, f, in_text),
        labels: Vec::new(),
    })
}

/// Line info as annotations, each from its instruction to the next record.
fn sources(elf: &Elf, f: &Function, in_text: bool) -> Vec<(usize, Option<Annotation>)> {
    // aya-obj rebases program records to 0; `.text` ones stay section-relative.
    let base = if in_text { f.section_offset / 8 } else { 0 };
    let mut out: Vec<(usize, Option<Annotation>)> = Vec::new();
    for l in &f.line_info.line_info {
        let Some(pc) = (l.insn_off as usize).checked_sub(base) else {
            continue;
        };
        if pc >= f.instructions.len() {
            continue;
        }
        let text = elf.string(l.line_off);
        let file = elf.string(l.file_name_off);
        let annotation = (!text.is_empty()).then(|| Annotation {
            text: Text::Shared(Arc::from(text.trim())),
            file: (!file.is_empty()).then(|| Text::Shared(Arc::from(file))),
            line: l.line_col >> 10,
            column: l.line_col & 0x3ff,
        });
        match out.last_mut() {
            Some((at, a)) if *at == pc => *a = annotation,
            Some((_, a)) if *a == annotation => {}
            _ => out.push((pc, annotation)),
        }
    }
    if out.first().is_some_and(|(_, a)| a.is_none()) {
        out.remove(0);
    }
    out
}
