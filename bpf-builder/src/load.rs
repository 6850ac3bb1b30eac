//! Loading an [`Object`] into the kernel: maps are created and filled,
//! programs laid out, their map references patched with fds, and loaded
//! through the verifier.
//!
//! Loading is all or nothing: every kernel object is an owned fd held by
//! the loader until the whole object is in, so a failure at any step
//! closes everything created before it and leaves nothing behind.

use std::borrow::Cow;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use cranelift_entity::{PrimaryMap, SecondaryMap};

use crate::btf;
use crate::entries::{EntryError, EntryWriter, Shape};
use crate::handle::{Map, Program};
use crate::insn::pseudo;
use crate::map::{InitValue, MapSpec};
use crate::object::{MapId, Object, ObjectError, ProgId};
use crate::privilege::{Needs, hint, is_denied};
use crate::reloc::Reloc;
use crate::sys::bpf as sys;
use crate::text::hex_bytes;
use crate::verifier::{FailedInsn, VerifierError, parse_log};

/// How to load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Verifier log level to request even when loading succeeds (0: a log
    /// only on failure). 1 = decisions, 2 = every state; add 4 for stats.
    pub log_level: u32,
    /// First size of the log buffer; it grows when the kernel needs more.
    pub log_size: usize,
    /// Pass source annotations to the kernel as BTF line info, so verifier
    /// logs and `bpftool prog dump xlated linum` show them.
    pub line_info: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            log_level: 0,
            log_size: 64 * 1024,
            line_info: true,
        }
    }
}

/// Loading failed; nothing of the object stays in the kernel.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The object is incomplete or inconsistent.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// The kernel refused to create a map.
    #[error("creating map `{map}` failed: {source}{}", hint(.source, Needs::MAP))]
    CreateMap {
        /// The map.
        map: String,
        /// The errno.
        source: io::Error,
    },
    /// Writing a map's initial contents (or freezing it) failed.
    #[error("filling map `{map}` failed: {source}")]
    FillMap {
        /// The map.
        map: String,
        /// The errno.
        source: io::Error,
    },
    /// The kernel refused one of a map's initial entries.
    #[error("filling map `{map}` failed at key {}: {source}", hex_bytes(.key))]
    FillEntry {
        /// The map.
        map: String,
        /// The entry's key.
        key: Vec<u8>,
        /// The errno.
        source: io::Error,
    },
    /// The verifier (or the kernel) refused a program.
    #[error(transparent)]
    Program(Box<VerifierError>),
    /// The kernel refused the key/value BTF of a map.
    #[error(transparent)]
    MapBtf(Box<MapBtfError>),
    /// The kernel refused the BTF generated for a program.
    #[error(
        "loading the BTF of program `{program}` failed: {source}{}\n{log}",
        hint(.source, Needs::MAP)
    )]
    Btf {
        /// The program.
        program: String,
        /// The errno.
        source: io::Error,
        /// The kernel's BTF log.
        log: String,
    },
}

impl LoadError {
    /// What the kernel refused for lack of privilege, if that is why the
    /// load failed: a map, BTF or program refused with `EPERM` or `EACCES`
    /// (a program only when the verifier wrote no log, else the verifier
    /// rejected it). Callers that can do without the kernel (an
    /// interpreter) fall back on `Some`.
    pub fn missing_privilege(&self) -> Option<Needs> {
        match self {
            LoadError::CreateMap { source, .. } | LoadError::Btf { source, .. }
                if is_denied(source) =>
            {
                Some(Needs::MAP)
            }
            LoadError::MapBtf(e) if is_denied(&e.source) => Some(Needs::MAP),
            LoadError::Program(e) if is_denied(&e.error) && e.log.is_empty() => Some(e.needs),
            _ => None,
        }
    }
}

/// Why a map's BTF failed.
#[derive(Debug, thiserror::Error)]
#[error(
    "loading the BTF of map `{map}` failed: {source}{}\n{log}",
    hint(.source, Needs::MAP)
)]
pub struct MapBtfError {
    /// The map.
    pub map: String,
    /// The errno.
    pub source: io::Error,
    /// The kernel's BTF log.
    pub log: String,
}

/// Time spent loading, split between the kernel and the builder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Inside `BPF_PROG_LOAD` (the verifier and JIT).
    pub verifier: Duration,
    /// Inside map creation and updates.
    pub maps: Duration,
    /// Everything, including layout and relocation.
    pub total: Duration,
}

/// A loaded object: handles to its maps and programs.
#[derive(Debug)]
pub struct Loaded {
    maps: PrimaryMap<MapId, Map>,
    programs: PrimaryMap<ProgId, Program>,
    stats: LoadStats,
}

impl Loaded {
    /// The map `id` of the object.
    pub fn map(&self, id: MapId) -> &Map {
        &self.maps[id]
    }

    /// The map named `name`.
    pub fn map_by_name(&self, name: &str) -> Option<&Map> {
        self.maps.values().find(|m| m.name() == name)
    }

    /// The program `id` of the object.
    pub fn program(&self, id: ProgId) -> &Program {
        &self.programs[id]
    }

    /// The program named `name`.
    pub fn program_by_name(&self, name: &str) -> Option<&Program> {
        self.programs.values().find(|p| p.name() == name)
    }

    /// All maps.
    pub fn maps(&self) -> impl Iterator<Item = (MapId, &Map)> {
        self.maps.iter()
    }

    /// All programs.
    pub fn programs(&self) -> impl Iterator<Item = (ProgId, &Program)> {
        self.programs.iter()
    }

    /// Where the load spent its time.
    pub fn stats(&self) -> LoadStats {
        self.stats
    }

    /// Takes the handles apart (for instance to keep one program and drop
    /// the rest).
    pub fn into_parts(self) -> (PrimaryMap<MapId, Map>, PrimaryMap<ProgId, Program>) {
        (self.maps, self.programs)
    }
}

impl Object {
    /// Loads every map and program with default options.
    pub fn load(&self) -> Result<Loaded, LoadError> {
        self.load_with(&LoadOptions::default())
    }

    /// Loads every map and program.
    pub fn load_with(&self, opts: &LoadOptions) -> Result<Loaded, LoadError> {
        let started = Instant::now();
        self.validate()?;
        let mut stats = LoadStats::default();
        let cpus = sys::possible_cpus().map_err(|source| LoadError::CreateMap {
            map: "(per-CPU sizing)".into(),
            source,
        })? as usize;

        // 1. Maps, then their contents that need no program.
        let t = Instant::now();
        let mut fds: PrimaryMap<MapId, OwnedFd> = PrimaryMap::with_capacity(self.maps().len());
        for (_, spec) in self.maps() {
            fds.push(create_map(spec)?);
        }
        for (id, spec) in self.maps() {
            fill_map(spec, &fds[id], cpus, |v| match v {
                InitValue::Map(m) => Some(fds[*m].as_raw_fd() as u32 as u64),
                _ => None,
            })?;
        }
        stats.maps += t.elapsed();

        // 2. Programs.
        let mut programs: PrimaryMap<ProgId, Program> = PrimaryMap::new();
        let license = CString::new(self.license()).map_err(|_| ObjectError::BadName {
            name: self.license().to_string(),
            reason: "the license contains a NUL byte",
        })?;
        for (id, spec) in self.programs() {
            let mut layout = self.layout(id)?;
            for &(pc, reloc) in &layout.relocs {
                let (map, src, offset) = match reloc {
                    Reloc::MapFd(m) => (m, pseudo::MAP_FD, 0),
                    Reloc::MapValue { map, offset } => (map, pseudo::MAP_VALUE, offset),
                    Reloc::Call(_) | Reloc::FuncPtr(_) => unreachable!("resolved by layout"),
                };
                layout.insns[pc].src = src;
                layout.insns[pc].imm = fds[map].as_raw_fd();
                layout.insns[pc + 1].imm = offset as i32;
            }
            let (prog_type, attach_type) = spec.prog_type.kernel_types();
            let mut attr = sys::ProgLoadAttr::new(prog_type, &layout.insns, &license);
            attr.expected_attach_type = attach_type;
            attr.name = &spec.name;
            if spec.xdp_frags {
                attr.prog_flags |= sys::flags::BPF_F_XDP_HAS_FRAGS;
            }
            attr.log_level = opts.log_level;
            let t = Instant::now();
            let debug = btf::for_program(self, &layout, opts.line_info);
            let btf_fd = match &debug {
                Some(d) => Some(sys::btf_load(&d.btf, 0, 4096).map_err(|f| LoadError::Btf {
                    program: spec.name.clone(),
                    source: f.error,
                    log: f.log,
                })?),
                None => None,
            };
            if let (Some(d), Some(fd)) = (&debug, &btf_fd) {
                attr.prog_btf_fd = Some(fd.0.as_fd());
                attr.func_info = Some(sys::RecordArray {
                    bytes: &d.func_info,
                    rec_size: btf::FUNC_INFO_SIZE,
                });
                if !d.line_info.is_empty() {
                    attr.line_info = Some(sys::RecordArray {
                        bytes: &d.line_info,
                        rec_size: btf::LINE_INFO_SIZE,
                    });
                }
            }
            let loaded = sys::prog_load_with_log(&attr, opts.log_size);
            stats.verifier += t.elapsed();
            match loaded {
                Ok((fd, log)) => {
                    programs.push(Program::new(fd, spec.name.clone(), spec.prog_type, log));
                }
                Err(failure) => {
                    let parsed = parse_log(&failure.log);
                    let insn = parsed.insn.map(|index| FailedInsn {
                        index,
                        text: parsed.insn_text.clone(),
                        owner: layout.owner_name(self, index).map(str::to_string),
                        source: layout.annotation_at(self, index).cloned(),
                    });
                    return Err(LoadError::Program(Box::new(VerifierError {
                        program: spec.name.clone(),
                        error: failure.error,
                        reason: parsed.reason,
                        insn,
                        log: failure.log,
                        needs: Needs::for_program(spec.prog_type),
                    })));
                }
            }
        }

        // 3. Contents that hold programs (program arrays, devmap and cpumap
        //    entries with programs), then freeze what asked for it.
        let t = Instant::now();
        let mut prog_fd: SecondaryMap<ProgId, u32> = SecondaryMap::new();
        for (id, p) in programs.iter() {
            prog_fd[id] = p.as_fd().as_raw_fd() as u32;
        }
        for (id, spec) in self.maps() {
            fill_map_programs(spec, &fds[id], &prog_fd)?;
        }
        for (id, spec) in self.maps().filter(|(_, s)| s.freeze) {
            sys::map_freeze(fds[id].as_fd()).map_err(|source| LoadError::FillMap {
                map: spec.name.clone(),
                source,
            })?;
        }
        stats.maps += t.elapsed();

        let mut maps = PrimaryMap::with_capacity(fds.len());
        for (id, fd) in fds.into_iter() {
            let map = Map::from_fd(fd).map_err(|source| LoadError::CreateMap {
                map: self.map(id).name.clone(),
                source,
            })?;
            maps.push(map);
        }
        stats.total = started.elapsed();
        Ok(Loaded {
            maps,
            programs,
            stats,
        })
    }
}

/// Creates one map (and, for maps of maps, a throwaway inner map that
/// gives the kernel the inner shape).
fn create_map(spec: &MapSpec) -> Result<OwnedFd, LoadError> {
    let err = |source| LoadError::CreateMap {
        map: spec.name.clone(),
        source,
    };
    let inner = match &spec.inner {
        Some(inner) => Some(create_map(inner)?),
        None => None,
    };
    // The map keeps its own reference to the BTF; ours closes on return.
    let btf = match &spec.btf {
        Some(b) => Some(
            sys::btf_load(&b.btf.clone().to_bytes(), 0, 4096).map_err(|f| {
                LoadError::MapBtf(Box::new(MapBtfError {
                    map: spec.name.clone(),
                    source: f.error,
                    log: f.log,
                }))
            })?,
        ),
        None => None,
    };
    let attr = sys::MapCreateAttr {
        map_type: spec.map_type.kernel_type(),
        key_size: spec.key_size,
        value_size: spec.value_size,
        max_entries: spec.max_entries,
        map_flags: spec.flags,
        name: &spec.name,
        inner_map_fd: inner.as_ref().map(|fd| fd.as_fd()),
        btf_fd: btf.as_ref().map(|(fd, _)| fd.as_fd()),
        btf_key_type_id: spec.btf.as_ref().map_or(0, |b| b.key),
        btf_value_type_id: spec.btf.as_ref().map_or(0, |b| b.value),
        ..Default::default()
    };
    sys::map_create(&attr).map_err(err)
}

/// Writes the contents that need no program, batched where the map type
/// allows. `fd_of` gives the fd value of map references.
fn fill_map(
    spec: &MapSpec,
    fd: &OwnedFd,
    cpus: usize,
    fd_of: impl Fn(&InitValue) -> Option<u64>,
) -> Result<(), LoadError> {
    let entries = spec.contents.iter().filter(|(_, v)| !v.needs_program());
    write_entries(spec, fd, cpus, entries, |value| match value {
        InitValue::Bytes(b) => Cow::Borrowed(b.as_slice()),
        other => Cow::Owned(
            (fd_of(other).expect("map reference") as u32)
                .to_ne_bytes()
                .to_vec(),
        ),
    })
}

/// Writes the contents that refer to loaded programs.
fn fill_map_programs(
    spec: &MapSpec,
    fd: &OwnedFd,
    prog_fd: &SecondaryMap<ProgId, u32>,
) -> Result<(), LoadError> {
    let entries = spec.contents.iter().filter(|(_, v)| v.needs_program());
    write_entries(spec, fd, 1, entries, |value| {
        Cow::Owned(match *value {
            InitValue::DevWithProg { ifindex, prog }
            | InitValue::CpuWithProg {
                qsize: ifindex,
                prog,
            } => [ifindex.to_ne_bytes(), prog_fd[prog].to_ne_bytes()].concat(),
            InitValue::Prog(p) => prog_fd[p].to_ne_bytes().to_vec(),
            InitValue::Bytes(_) | InitValue::Map(_) => unreachable!("needs no program"),
        })
    })
}

/// Writes `entries` to the map `fd` of `spec`, each value as `bytes`
/// gives it, through one [`EntryWriter`].
fn write_entries<'s>(
    spec: &MapSpec,
    fd: &OwnedFd,
    cpus: usize,
    entries: impl Iterator<Item = &'s (Vec<u8>, InitValue)>,
    bytes: impl Fn(&'s InitValue) -> Cow<'s, [u8]>,
) -> Result<(), LoadError> {
    let mut entries = entries.peekable();
    if entries.peek().is_none() {
        return Ok(());
    }
    // A handle that knows the map's layout, so each write is one system
    // call.
    let map = fd
        .try_clone()
        .and_then(sys::MapFd::new)
        .map_err(|source| LoadError::FillMap {
            map: spec.name.clone(),
            source,
        })?;
    let mut writer = EntryWriter::new(
        &map,
        Shape {
            key_size: spec.key_size as usize,
            value_size: spec.value_size as usize,
            per_cpu: spec.map_type.is_per_cpu().then_some(cpus),
            batch: spec.map_type.has_batch_update(),
        },
    );
    let failed = |e: EntryError| LoadError::FillEntry {
        map: spec.name.clone(),
        key: e.key,
        source: e.source,
    };
    for (key, value) in entries {
        writer.push(key, &bytes(value)).map_err(failed)?;
    }
    writer.finish().map_err(failed)?;
    Ok(())
}
