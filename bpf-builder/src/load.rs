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
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use cranelift_entity::{PrimaryMap, SecondaryMap};

use crate::asm::Code;
use crate::btf;
use crate::entries::{EntryError, EntryWriter, Shape};
use crate::handle::{Map, MapError, Program};
use crate::insn::pseudo;
use crate::map::{InitValue, MapSpec};
use crate::object::{
    FuncId, MapId, MapSlot, Object, ObjectError, ProgId, ProgSlot, ProgramSpec, ProgramType,
};
use crate::privilege::{Needs, hint, is_denied};
use crate::reloc::Reloc;
use crate::sys::bpf as sys;
use crate::text::hex_bytes;
use crate::verifier::{FailedInsn, VerifierError, parse_log};

mod existing;
mod target;

pub use target::TargetError;

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
    /// An existing map could not be opened.
    #[error("opening existing map `{map}` ({from}) failed: {source}{}", hint(.source, Needs::MAP))]
    OpenMap {
        /// The map, as the object names it.
        map: String,
        /// Where it was to come from.
        from: String,
        /// The errno.
        source: io::Error,
    },
    /// An existing map differs from what the object expects of it.
    #[error("existing map `{map}` ({from}) does not fit: {reason}")]
    MapMismatch {
        /// The map, as the object names it.
        map: String,
        /// Where it came from.
        from: String,
        /// What differs, expected against found.
        reason: String,
    },
    /// Writing a map's initial contents (or freezing it) failed.
    #[error("filling map `{map}` failed: {source}")]
    FillMap {
        /// The map.
        map: String,
        /// The errno.
        source: io::Error,
    },
    /// The kernel refused an initial entry for a reason we can name (an
    /// index past the end, a devmap interface that does not exist...).
    #[error("writing the initial contents failed: {0}")]
    Entry(MapError),
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
    /// The function or tracepoint a tp_btf, fentry or fexit program is
    /// for is not in the kernel's BTF (or the kernel has none).
    #[error(transparent)]
    Target(Box<TargetError>),
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
            LoadError::CreateMap { source, .. }
            | LoadError::OpenMap { source, .. }
            | LoadError::Btf { source, .. }
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

/// A loaded object: handles to its maps and programs, and what it was
/// built from (without map contents, which now live in the kernel), so
/// that programs and functions can be added to it while it runs
/// ([`load_program`](Loaded::load_program)). The ids of the object it was
/// loaded from name its maps and programs here; another object's ids are
/// refused.
#[derive(Debug)]
pub struct Loaded {
    object: Object,
    maps: PrimaryMap<MapSlot, Map>,
    programs: PrimaryMap<ProgSlot, Program>,
    license: CString,
    opts: LoadOptions,
    stats: LoadStats,
}

impl Loaded {
    /// What the object is made of: its maps' shapes, its programs and
    /// functions (the ones added since loading included).
    pub fn object(&self) -> &Object {
        &self.object
    }

    /// The map `id` of the object.
    ///
    /// # Panics
    /// When `id` belongs to another object.
    pub fn map(&self, id: MapId) -> &Map {
        &self.maps[self.object.own(id).slot()]
    }

    /// The map named `name`.
    pub fn map_by_name(&self, name: &str) -> Option<&Map> {
        Some(self.map(self.object.map_by_name(name)?))
    }

    /// The program `id` of the object.
    ///
    /// # Panics
    /// When `id` belongs to another object.
    pub fn program(&self, id: ProgId) -> &Program {
        &self.programs[self.object.own(id).slot()]
    }

    /// The program named `name`.
    pub fn program_by_name(&self, name: &str) -> Option<&Program> {
        Some(self.program(self.object.program_by_name(name)?))
    }

    /// All maps.
    pub fn maps(&self) -> impl Iterator<Item = (MapId, &Map)> {
        self.maps.iter().map(|(s, m)| (self.object.map_id(s), m))
    }

    /// All programs.
    pub fn programs(&self) -> impl Iterator<Item = (ProgId, &Program)> {
        self.programs
            .iter()
            .map(|(s, p)| (self.object.prog_id(s), p))
    }

    /// Where the first load spent its time.
    pub fn stats(&self) -> LoadStats {
        self.stats
    }

    /// Adds a function that programs loaded from now on can call. Like
    /// [`Object::add_function`], it refers to the object's maps and
    /// functions by their ids.
    pub fn add_function(&mut self, name: &str, code: Code) -> Result<FuncId, ObjectError> {
        self.object.add_function(name, code)
    }

    /// Loads one more program into the running object: its code refers to
    /// the object's maps, global data and functions by their ids, is
    /// checked like a program added to an [`Object`], and a verifier error
    /// comes annotated as at the first load. On error nothing is added.
    /// The new program can then go into program arrays
    /// ([`Map::set_program`]), devmap and cpumap entries
    /// ([`set_devmap_entry`](crate::attach::set_devmap_entry)) and
    /// links ([`Link::update`](crate::attach::Link::update)).
    pub fn load_program(&mut self, spec: ProgramSpec) -> Result<ProgId, LoadError> {
        let id = self.object.add_program_spec(spec)?;
        let loaded = self
            .object
            .validate()
            .map_err(LoadError::from)
            .and_then(|()| {
                load_program(
                    &self.object,
                    id,
                    &self.maps,
                    &self.license,
                    &self.opts,
                    &mut LoadStats::default(),
                )
            });
        match loaded {
            Ok(program) => {
                let slot = self.programs.push(program);
                debug_assert_eq!(slot, id.slot());
                Ok(id)
            }
            Err(e) => {
                self.object.remove_last_program(id);
                Err(e)
            }
        }
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

        // 1. Maps (created, or existing ones opened and checked), then the
        //    contents that need no program.
        let t = Instant::now();
        let mut maps: PrimaryMap<MapSlot, Map> = PrimaryMap::with_capacity(self.maps().len());
        for (id, spec) in self.maps() {
            let map = match self.existing_map(id) {
                Some(existing) => existing::open(spec, existing)?,
                None => {
                    let fd = create_map(spec)?;
                    Map::from_fd(fd).map_err(|source| LoadError::CreateMap {
                        map: spec.name.clone(),
                        source,
                    })?
                }
            };
            maps.push(map);
        }
        for (id, spec) in self.maps() {
            fill_map(spec, maps[id.slot()].as_fd(), cpus, |v| match v {
                InitValue::Map(m) => Some(maps[m.slot()].as_fd().as_raw_fd() as u32 as u64),
                _ => None,
            })?;
        }
        stats.maps += t.elapsed();

        // 2. Programs.
        let license = CString::new(self.license()).map_err(|_| ObjectError::BadName {
            name: self.license().to_string(),
            reason: "the license contains a NUL byte",
        })?;
        let mut programs: PrimaryMap<ProgSlot, Program> = PrimaryMap::new();
        for (id, _) in self.programs() {
            programs.push(load_program(self, id, &maps, &license, opts, &mut stats)?);
        }

        // 3. Contents that hold programs (program arrays, devmap and cpumap
        //    entries with programs), then freeze what asked for it.
        let t = Instant::now();
        let mut prog_fd: SecondaryMap<ProgSlot, u32> = SecondaryMap::new();
        for (slot, p) in programs.iter() {
            prog_fd[slot] = p.as_fd().as_raw_fd() as u32;
        }
        for (id, spec) in self.maps() {
            fill_map_programs(spec, maps[id.slot()].as_fd(), &prog_fd)?;
        }
        for (id, spec) in self.maps().filter(|(_, s)| s.freeze) {
            if self.existing_map(id).is_some() {
                continue;
            }
            sys::map_freeze(maps[id.slot()].as_fd()).map_err(|source| LoadError::FillMap {
                map: spec.name.clone(),
                source,
            })?;
        }
        stats.maps += t.elapsed();
        stats.total = started.elapsed();
        Ok(Loaded {
            object: self.without_contents(),
            maps,
            programs,
            license,
            opts: opts.clone(),
            stats,
        })
    }
}

/// Lays out program `id` of `object`, resolves its map references to the
/// fds of `maps` and loads it, adding the time in the kernel to `stats`.
fn load_program(
    object: &Object,
    id: ProgId,
    maps: &PrimaryMap<MapSlot, Map>,
    license: &CString,
    opts: &LoadOptions,
    stats: &mut LoadStats,
) -> Result<Program, LoadError> {
    let spec = object.program(id);
    let mut layout = object.layout(id)?;
    for &(pc, reloc) in &layout.relocs {
        let (map, src, offset) = match reloc {
            Reloc::MapFd(m) => (m, pseudo::MAP_FD, 0),
            Reloc::MapValue { map, offset } => (map, pseudo::MAP_VALUE, offset),
            Reloc::Call(_) | Reloc::FuncPtr(_) => unreachable!("resolved by layout"),
        };
        layout.insns[pc].src = src;
        layout.insns[pc].imm = maps[map.slot()].as_fd().as_raw_fd();
        layout.insns[pc + 1].imm = offset as i32;
    }
    let (prog_type, attach_type) = match &spec.extension {
        // The target's type and attach type decide the context.
        Some(_) => (sys::bpf_prog_type::BPF_PROG_TYPE_EXT as u32, 0),
        None => spec.prog_type.kernel_types(),
    };
    let target = target::resolve(spec).map_err(|e| LoadError::Target(Box::new(e)))?;
    let mut attr = sys::ProgLoadAttr::new(prog_type, &layout.insns, license);
    attr.expected_attach_type = attach_type;
    if let Some(t) = &target {
        attr.attach_btf_id = Some(t.btf_id);
        // The kernel reads a BTF object's fd from the same field.
        attr.attach_prog_fd = t.module_btf.as_ref().map(|fd| fd.as_fd());
    }
    if let Some(traced) = &spec.traced_program {
        attr.attach_prog_fd = Some(traced.target().as_fd());
        attr.attach_btf_id = Some(traced.btf_id());
    }
    if let Some(ext) = &spec.extension {
        attr.attach_prog_fd = Some(ext.target().as_fd());
        attr.attach_btf_id = Some(ext.btf_id());
    }
    attr.name = &spec.name;
    // An extension runs inside its target: fragment support is the
    // target's flag (an XDP dispatcher's), as libxdp loads its members.
    if spec.xdp_frags && spec.extension.is_none() {
        attr.prog_flags |= sys::flags::BPF_F_XDP_HAS_FRAGS;
    }
    attr.log_level = opts.log_level;
    let t = Instant::now();
    let debug = btf::for_program(object, &layout, opts.line_info);
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
        Ok((fd, log)) => Ok(Program::new(fd, spec.name.clone(), spec.prog_type, log)),
        Err(failure) => {
            let mut parsed = parse_log(&failure.log);
            // fentry/fexit refused before the verifier ran: privilege, or
            // a kernel that allows no BPF trampoline.
            if matches!(spec.prog_type, ProgramType::Fentry | ProgramType::Fexit)
                && is_denied(&failure.error)
                && failure.log.is_empty()
            {
                parsed.reason = format!(
                    "{} before the verifier ran: an {} program needs {}, and a kernel that \
                     allows BPF trampolines (some hardened or sandboxed kernels refuse fentry, \
                     fexit, freplace and LSM programs even to root, as they refuse ftrace's \
                     function tracer)",
                    failure.error,
                    spec.prog_type.section_name(),
                    Needs::for_program(spec.prog_type)
                );
            }
            let insn = parsed.insn.map(|index| FailedInsn {
                index,
                text: parsed.insn_text.clone(),
                owner: layout.owner_name(object, index).map(str::to_string),
                source: layout.annotation_at(object, index).cloned(),
            });
            Err(LoadError::Program(Box::new(VerifierError {
                program: spec.name.clone(),
                error: failure.error,
                reason: parsed.reason,
                insn,
                log: failure.log,
                needs: match spec.extension {
                    Some(_) => Needs::TRACING_PROGRAM,
                    None => Needs::for_program(spec.prog_type),
                },
            })))
        }
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
    fd: BorrowedFd<'_>,
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
    fd: BorrowedFd<'_>,
    prog_fd: &SecondaryMap<ProgSlot, u32>,
) -> Result<(), LoadError> {
    let entries = spec.contents.iter().filter(|(_, v)| v.needs_program());
    write_entries(spec, fd, 1, entries, |value| {
        Cow::Owned(match *value {
            InitValue::DevWithProg { ifindex, prog }
            | InitValue::CpuWithProg {
                qsize: ifindex,
                prog,
            } => [ifindex.to_ne_bytes(), prog_fd[prog.slot()].to_ne_bytes()].concat(),
            InitValue::Prog(p) => prog_fd[p.slot()].to_ne_bytes().to_vec(),
            InitValue::Bytes(_) | InitValue::Map(_) => unreachable!("needs no program"),
        })
    })
}

/// Writes `entries` to the map `fd` of `spec`, each value as `bytes`
/// gives it, through one [`EntryWriter`].
fn write_entries<'s>(
    spec: &MapSpec,
    fd: BorrowedFd<'_>,
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
        .try_clone_to_owned()
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
    let failed = |e: EntryError| entry_error(spec, &e.key, &e.value, e.source);
    for (key, value) in entries {
        writer.push(key, &bytes(value)).map_err(failed)?;
    }
    writer.finish().map_err(failed)?;
    Ok(())
}

/// A refused initial entry: [`LoadError::Entry`] when the errno means
/// something specific for this map (see [`MapError`]), else
/// [`LoadError::FillEntry`].
fn entry_error(spec: &MapSpec, key: &[u8], value: &[u8], source: io::Error) -> LoadError {
    let kernel_type = spec.map_type.kernel_type();
    match MapError::update(
        &spec.name,
        kernel_type,
        spec.max_entries,
        key,
        value,
        source,
    ) {
        MapError::Sys { source, .. } => LoadError::FillEntry {
            map: spec.name.clone(),
            key: key.to_vec(),
            source,
        },
        explained => LoadError::Entry(explained),
    }
}
