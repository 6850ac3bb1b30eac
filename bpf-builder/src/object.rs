//! The in-memory BPF object: maps, programs, functions shared between
//! programs, and global data. Nothing touches the kernel until
//! [`Object::load`](crate::load).

use aya_obj::generated::{bpf_attach_type as at, bpf_prog_type as pt};
use cranelift_entity::{PrimaryMap, SecondaryMap};
use std::borrow::Cow;
use std::fmt;

use crate::asm::Code;
use crate::extension::{Extension, ExtensionError};
use crate::handle::Program;
use crate::map::{ExistingMap, F_RDONLY_PROG, InitValue, MapSpec, MapSpecError, MapType};
use crate::pod::Pod;
use crate::reloc::Reloc;
use crate::traced_program::{TracedProgram, TracedProgramError};

mod ids;
pub use ids::{FuncId, MapId, ObjectKey, ProgId};
pub(crate) use ids::{FuncSlot, MapSlot, ProgSlot};

/// What a program is for: its kernel program type and expected attach type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum ProgramType {
    /// XDP on a device's receive path.
    Xdp,
    /// XDP run by a devmap entry on egress (`BPF_XDP_DEVMAP`).
    XdpDevmap,
    /// XDP run by a cpumap entry on the target CPU (`BPF_XDP_CPUMAP`).
    XdpCpumap,
    /// tc classifier (`BPF_PROG_TYPE_SCHED_CLS`), for cls_bpf or tcx.
    SchedCls,
    /// tc classifier for tcx ingress (`BPF_TCX_INGRESS`).
    TcxIngress,
    /// tc classifier for tcx egress (`BPF_TCX_EGRESS`).
    TcxEgress,
    /// Socket filter (`SO_ATTACH_BPF`).
    SocketFilter,
    /// A kprobe on a kernel function's entry or an instruction in it
    /// (`BPF_PROG_TYPE_KPROBE`); context: `struct pt_regs`
    /// ([`ctx::pt_regs`](crate::ctx::pt_regs)). Attached by
    /// [`perf_event::kprobe`](crate::attach::perf_event::kprobe).
    Kprobe,
    /// A kretprobe on a kernel function's return (`BPF_PROG_TYPE_KPROBE`);
    /// context: `struct pt_regs`, the return value in `rax`.
    Kretprobe,
    /// A uprobe on an instruction of an ELF file (`BPF_PROG_TYPE_KPROBE`);
    /// context: the user registers as `struct pt_regs`. Attached by
    /// [`perf_event::uprobe`](crate::attach::perf_event::uprobe).
    Uprobe,
    /// A uretprobe on a user function's return.
    Uretprobe,
    /// A kprobe on many kernel functions through one link
    /// (`BPF_TRACE_KPROBE_MULTI`, Linux 5.18+ with `CONFIG_FPROBE`).
    /// Attached by [`kprobe_multi::attach`](crate::attach::kprobe_multi::attach).
    KprobeMulti,
    /// A kretprobe on many kernel functions through one link.
    KretprobeMulti,
    /// A uprobe on many offsets of one file through one link
    /// (`BPF_TRACE_UPROBE_MULTI`, Linux 6.6+). Attached by
    /// [`kprobe_multi::attach_uprobes`](crate::attach::kprobe_multi::attach_uprobes).
    UprobeMulti,
    /// A uretprobe on many offsets of one file through one link.
    UretprobeMulti,
    /// A classic tracepoint (`BPF_PROG_TYPE_TRACEPOINT`); context: the
    /// event's record as the tracepoint's format file describes it
    /// ([`tracefs::TracepointFormat`](crate::attach::tracefs::TracepointFormat)).
    Tracepoint,
    /// A raw tracepoint (`BPF_PROG_TYPE_RAW_TRACEPOINT`); context: the
    /// tracepoint's arguments as an array of `u64`
    /// ([`ctx::raw_tracepoint_args`](crate::ctx::raw_tracepoint_args)).
    /// Also what runs once through `BPF_PROG_TEST_RUN`
    /// ([`run::run_once`](crate::run::run_once)), as bpftrace's `BEGIN`
    /// and `END`.
    RawTracepoint,
    /// A BTF tracepoint (`BPF_PROG_TYPE_TRACING`, `BPF_TRACE_RAW_TP`,
    /// libbpf's `tp_btf`): a raw tracepoint whose arguments the verifier
    /// knows by type. Needs [`ProgramSpec::attach_to`] (the tracepoint,
    /// `sched_switch`); context: `u64` arguments
    /// ([`ctx::tracing_args`](crate::ctx::tracing_args)).
    TpBtf,
    /// fentry (`BPF_TRACE_FENTRY`): runs at the entry of the kernel
    /// function [`ProgramSpec::attach_to`] names, through a BPF
    /// trampoline; context: the function's arguments as `u64`s.
    Fentry,
    /// fexit (`BPF_TRACE_FEXIT`): runs at the return of the kernel
    /// function; context: the arguments, then the return value.
    Fexit,
    /// A perf event's overflow handler (`BPF_PROG_TYPE_PERF_EVENT`):
    /// sampling at a frequency, software and hardware counters; context:
    /// `struct bpf_perf_event_data`
    /// ([`ctx::perf_event_data`](crate::ctx::perf_event_data)).
    PerfEvent,
}

impl ProgramType {
    /// The kernel's `bpf_prog_type` and `expected_attach_type`.
    pub fn kernel_types(self) -> (u32, u32) {
        let (p, a) = match self {
            ProgramType::Xdp => (pt::BPF_PROG_TYPE_XDP, at::BPF_XDP),
            ProgramType::XdpDevmap => (pt::BPF_PROG_TYPE_XDP, at::BPF_XDP_DEVMAP),
            ProgramType::XdpCpumap => (pt::BPF_PROG_TYPE_XDP, at::BPF_XDP_CPUMAP),
            // Expected attach type 0: cls_bpf and netlink attachment take any.
            ProgramType::SchedCls => (pt::BPF_PROG_TYPE_SCHED_CLS, at::BPF_CGROUP_INET_INGRESS),
            ProgramType::TcxIngress => (pt::BPF_PROG_TYPE_SCHED_CLS, at::BPF_TCX_INGRESS),
            ProgramType::TcxEgress => (pt::BPF_PROG_TYPE_SCHED_CLS, at::BPF_TCX_EGRESS),
            ProgramType::SocketFilter => {
                (pt::BPF_PROG_TYPE_SOCKET_FILTER, at::BPF_CGROUP_INET_INGRESS)
            }
            // Expected attach type 0 (`BPF_CGROUP_INET_INGRESS`): perf
            // event attachments take any.
            ProgramType::Kprobe
            | ProgramType::Kretprobe
            | ProgramType::Uprobe
            | ProgramType::Uretprobe => (pt::BPF_PROG_TYPE_KPROBE, at::BPF_CGROUP_INET_INGRESS),
            ProgramType::KprobeMulti | ProgramType::KretprobeMulti => {
                (pt::BPF_PROG_TYPE_KPROBE, at::BPF_TRACE_KPROBE_MULTI)
            }
            ProgramType::UprobeMulti | ProgramType::UretprobeMulti => {
                (pt::BPF_PROG_TYPE_KPROBE, at::BPF_TRACE_UPROBE_MULTI)
            }
            ProgramType::Tracepoint => (pt::BPF_PROG_TYPE_TRACEPOINT, at::BPF_CGROUP_INET_INGRESS),
            ProgramType::RawTracepoint => (
                pt::BPF_PROG_TYPE_RAW_TRACEPOINT,
                at::BPF_CGROUP_INET_INGRESS,
            ),
            ProgramType::TpBtf => (pt::BPF_PROG_TYPE_TRACING, at::BPF_TRACE_RAW_TP),
            ProgramType::Fentry => (pt::BPF_PROG_TYPE_TRACING, at::BPF_TRACE_FENTRY),
            ProgramType::Fexit => (pt::BPF_PROG_TYPE_TRACING, at::BPF_TRACE_FEXIT),
            ProgramType::PerfEvent => (pt::BPF_PROG_TYPE_PERF_EVENT, at::BPF_CGROUP_INET_INGRESS),
        };
        (p as u32, a as u32)
    }

    /// Whether this is one of the XDP types (interface, devmap, cpumap).
    pub fn is_xdp(self) -> bool {
        matches!(
            self,
            ProgramType::Xdp | ProgramType::XdpDevmap | ProgramType::XdpCpumap
        )
    }

    /// Whether this is a tracing type (kprobes, uprobes, tracepoints,
    /// fentry/fexit, perf events): not a network hook.
    pub fn is_tracing(self) -> bool {
        !self.is_xdp()
            && !matches!(
                self,
                ProgramType::SchedCls
                    | ProgramType::TcxIngress
                    | ProgramType::TcxEgress
                    | ProgramType::SocketFilter
            )
    }

    /// Whether the kernel loads this type against a target named by BTF
    /// ([`ProgramSpec::attach_to`]): tp_btf, fentry and fexit.
    pub fn needs_attach_target(self) -> bool {
        matches!(
            self,
            ProgramType::TpBtf | ProgramType::Fentry | ProgramType::Fexit
        )
    }

    /// The ELF section name libbpf uses for this type (without fragment
    /// support; see [`ProgramSpec::section_name`]).
    pub fn section_name(self) -> &'static str {
        match self {
            ProgramType::Xdp => "xdp",
            ProgramType::XdpDevmap => "xdp/devmap",
            ProgramType::XdpCpumap => "xdp/cpumap",
            ProgramType::SchedCls => "tc",
            ProgramType::TcxIngress => "tcx/ingress",
            ProgramType::TcxEgress => "tcx/egress",
            ProgramType::SocketFilter => "socket",
            ProgramType::Kprobe => "kprobe",
            ProgramType::Kretprobe => "kretprobe",
            ProgramType::Uprobe => "uprobe",
            ProgramType::Uretprobe => "uretprobe",
            ProgramType::KprobeMulti => "kprobe.multi",
            ProgramType::KretprobeMulti => "kretprobe.multi",
            ProgramType::UprobeMulti => "uprobe.multi",
            ProgramType::UretprobeMulti => "uretprobe.multi",
            ProgramType::Tracepoint => "tracepoint",
            ProgramType::RawTracepoint => "raw_tracepoint",
            ProgramType::TpBtf => "tp_btf",
            ProgramType::Fentry => "fentry",
            ProgramType::Fexit => "fexit",
            ProgramType::PerfEvent => "perf_event",
        }
    }
}

/// A program: its type and code.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramSpec {
    /// Name (at most 15 bytes, shown by bpftool).
    pub name: String,
    /// Program type.
    pub prog_type: ProgramType,
    /// Instructions, with references still symbolic.
    pub code: Code,
    /// XDP only: the program declares that it handles frames spread over
    /// several buffers (fragments), so it is loaded with
    /// `BPF_F_XDP_HAS_FRAGS`. Devices whose MTU needs several buffers per
    /// frame (a veth or most NICs at jumbo MTU) refuse XDP programs
    /// without it. Such a program sees only the first buffer between
    /// `data` and `data_end`; `bpf_xdp_get_buff_len` gives the whole
    /// length and `bpf_xdp_load_bytes` reads past the first buffer.
    /// libbpf's section `xdp.frags`, aya's `#[xdp(frags)]`. Set with
    /// [`Object::set_xdp_frags`].
    pub xdp_frags: bool,
    /// Loaded as an extension (`BPF_PROG_TYPE_EXT`) that replaces a
    /// global function of another program: see [`crate::extension`].
    /// The program keeps its [`ProgramType`] for everything else (its
    /// context, its helpers); the kernel checks it in its target's
    /// context. Set with [`Object::set_extension`].
    pub extension: Option<Extension>,
    /// tp_btf, fentry and fexit only: what the program is loaded for, as
    /// the kernel's BTF names it: a kernel function (`do_nanosleep`, or
    /// `module:function` for a module's) for fentry and fexit, a
    /// tracepoint (`sched_switch`) for tp_btf. Resolved to its BTF id
    /// (in vmlinux, else in a loaded module) when the object is loaded.
    /// Set with [`ProgramSpec::with_attach_to`] or
    /// [`Object::set_attach_to`].
    pub attach_to: Option<String>,
    /// fentry and fexit only, in place of [`attach_to`](ProgramSpec::attach_to):
    /// the BPF program traced (see [`crate::traced_program`]). Set with
    /// [`ProgramSpec::with_traced_program`].
    pub traced_program: Option<TracedProgram>,
}

impl ProgramSpec {
    /// A program of `prog_type` named `name` (at most 15 bytes, shown by
    /// bpftool), without fragment support.
    pub fn new(name: impl Into<String>, prog_type: ProgramType, code: Code) -> ProgramSpec {
        ProgramSpec {
            name: name.into(),
            prog_type,
            code,
            xdp_frags: false,
            extension: None,
            attach_to: None,
            traced_program: None,
        }
    }

    /// Names what a tp_btf, fentry or fexit program is loaded for: see
    /// [`attach_to`](ProgramSpec::attach_to).
    pub fn with_attach_to(mut self, target: impl Into<String>) -> ProgramSpec {
        self.attach_to = Some(target.into());
        self
    }

    /// Makes this fentry or fexit program trace the BPF program `target`
    /// (its main function) in place of a kernel function (see
    /// [`crate::traced_program`]). Reads `target`'s function information
    /// now, so a program without BTF fails here; the spec keeps a handle
    /// of `target`.
    pub fn with_traced_program(
        mut self,
        target: &Program,
    ) -> Result<ProgramSpec, TracedProgramError> {
        self.traced_program = Some(TracedProgram::resolve(target)?);
        Ok(self)
    }

    /// Declares (or withdraws) XDP fragment support: see
    /// [`xdp_frags`](ProgramSpec::xdp_frags).
    pub fn with_xdp_frags(mut self, frags: bool) -> ProgramSpec {
        self.xdp_frags = frags;
        self
    }

    /// The ELF section name libbpf uses for this program: its type's,
    /// with `xdp.frags` in place of `xdp` when it declares fragment
    /// support.
    pub fn section_name(&self) -> &'static str {
        match (self.prog_type, self.xdp_frags) {
            (ProgramType::Xdp, true) => "xdp.frags",
            (ProgramType::XdpDevmap, true) => "xdp.frags/devmap",
            (ProgramType::XdpCpumap, true) => "xdp.frags/cpumap",
            (t, _) => t.section_name(),
        }
    }
}

/// A function that programs call or pass as a callback. The loader appends
/// each function a program reaches after the program's own code.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionSpec {
    /// Name.
    pub name: String,
    /// Body; `None` while only declared.
    pub code: Option<Code>,
    /// A global function: verified by the kernel on its own rather than
    /// in the context of each call, and replaceable by an extension
    /// program. Its prototype is `int name(struct <ctx> *ctx)`, `<ctx>`
    /// being the context struct of the program it is laid out in
    /// (`xdp_md`, `__sk_buff`): it takes the context in R1 and returns a
    /// scalar in R0. Calls to it are ordinary bpf-to-bpf calls. Made by
    /// [`Object::add_global_function`].
    pub global: bool,
}

/// A named thing of an object.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Symbol {
    /// A map (global data included).
    Map(MapId),
    /// A program.
    Prog(ProgId),
    /// A function.
    Func(FuncId),
}

impl Symbol {
    /// The object it belongs to.
    pub fn object(self) -> ObjectKey {
        match self {
            Symbol::Map(m) => m.object(),
            Symbol::Prog(p) => p.object(),
            Symbol::Func(f) => f.object(),
        }
    }
}

/// `map3`, `prog0`, `func1`.
impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Symbol::Map(m) => m.fmt(f),
            Symbol::Prog(p) => p.fmt(f),
            Symbol::Func(x) => x.fmt(f),
        }
    }
}

impl From<MapId> for Symbol {
    fn from(id: MapId) -> Self {
        Symbol::Map(id)
    }
}

impl From<ProgId> for Symbol {
    fn from(id: ProgId) -> Self {
        Symbol::Prog(id)
    }
}

impl From<FuncId> for Symbol {
    fn from(id: FuncId) -> Self {
        Symbol::Func(id)
    }
}

/// Why the object refuses an addition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectError {
    /// The map specification is invalid.
    #[error(transparent)]
    Map(#[from] MapSpecError),
    /// Two things have the same name.
    #[error("the name `{0}` is already used in this object")]
    DuplicateName(String),
    /// A name the kernel would not keep.
    #[error("invalid name `{name}`: {reason}")]
    BadName {
        /// The name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Code refers to something this object does not have, or uses it wrongly.
    #[error("`{owner}` instruction {insn}: {reason}")]
    BadReference {
        /// The program or function.
        owner: String,
        /// Instruction index.
        insn: usize,
        /// What is wrong.
        reason: String,
    },
    /// A function was declared but its body never given.
    #[error("function `{0}` is declared but never defined")]
    Undefined(String),
    /// A setting that the program's type does not have.
    #[error("program `{program}`: {reason}")]
    WrongProgramType {
        /// The program.
        program: String,
        /// What is wrong.
        reason: String,
    },
    /// Programs stored in or using one program array, devmap or cpumap
    /// disagree on XDP fragment support, which the kernel refuses.
    #[error(
        "map `{map}`: program `{with}` declares XDP fragment support and `{without}` does not; \
         the kernel needs the programs a map holds (and, for program arrays, devmaps and \
         cpumaps, those that use it) to agree"
    )]
    MixedFrags {
        /// The map.
        map: String,
        /// A program with fragment support.
        with: String,
        /// A program without.
        without: String,
    },
    /// An id of another object: ids cannot cross objects.
    #[error(
        "{id} belongs to {}, not to this object ({this}); ids cannot cross objects",
        .id.object()
    )]
    ForeignId {
        /// The id given.
        id: Symbol,
        /// The object that received it.
        this: ObjectKey,
    },
    /// A map that already exists keeps its own contents.
    #[error(
        "map `{0}` is an existing map: it keeps the contents it has, so it takes no initial entries"
    )]
    ExistingWithContents(String),
    /// A map's initial contents refer to something the object does not have.
    #[error("map `{map}` initial contents refer to a missing {what}")]
    BadContents {
        /// The map.
        map: String,
        /// Program or map.
        what: &'static str,
    },
}

/// A BPF object built in memory: maps, programs, functions and global
/// data, with references between them kept symbolic until load.
///
/// ```
/// use bpf_builder::asm::Asm;
/// use bpf_builder::ctx::XdpAction;
/// use bpf_builder::insn::Reg::*;
/// use bpf_builder::map::MapSpec;
/// use bpf_builder::object::{Object, ProgramType};
///
/// let mut obj = Object::new();
/// let counts = obj.add_map(MapSpec::per_cpu_array("counts", 8, 1)).unwrap();
/// let mut a = Asm::new();
/// a.ld_map_fd(R1, counts);
/// a.mov64(R0, XdpAction::Pass);
/// a.exit();
/// let prog = obj.add_program("pass", ProgramType::Xdp, a.finish().unwrap()).unwrap();
/// assert_eq!(obj.program(prog).name, "pass");
/// ```
#[derive(Clone, Debug)]
pub struct Object {
    key: ObjectKey,
    maps: PrimaryMap<MapSlot, MapSpec>,
    /// Maps used rather than created, by slot.
    existing: SecondaryMap<MapSlot, Option<ExistingMap>>,
    programs: PrimaryMap<ProgSlot, ProgramSpec>,
    functions: PrimaryMap<FuncSlot, FunctionSpec>,
    license: Cow<'static, str>,
}

impl Default for Object {
    fn default() -> Self {
        Object::new()
    }
}

/// Checks that a program has an attach target exactly when its type
/// takes one, and that the target is a plausible name.
fn check_attach_to(spec: &ProgramSpec) -> Result<(), ObjectError> {
    let wrong = |reason: String| {
        Err(ObjectError::WrongProgramType {
            program: spec.name.clone(),
            reason,
        })
    };
    if spec.traced_program.is_some() {
        return match (&spec.attach_to, spec.prog_type) {
            (None, ProgramType::Fentry | ProgramType::Fexit) => Ok(()),
            (Some(_), ProgramType::Fentry | ProgramType::Fexit) => wrong(
                "traces a BPF program and names a kernel function too: one target only".into(),
            ),
            (_, t) => wrong(format!(
                "a {} program cannot trace a BPF program; fentry and fexit do",
                t.section_name()
            )),
        };
    }
    match (&spec.attach_to, spec.prog_type.needs_attach_target()) {
        (None, true) => wrong(format!(
            "a {} program needs the kernel function or tracepoint it is for \
             (ProgramSpec::with_attach_to)",
            spec.prog_type.section_name()
        )),
        (Some(t), false) => wrong(format!(
            "a {} program takes no BTF attach target (`{}`); only tp_btf, fentry and fexit do",
            spec.prog_type.section_name(),
            crate::text::escape(t)
        )),
        (Some(t), true)
            if t.is_empty()
                || t.split(':').count() > 2
                || !t
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':')) =>
        {
            wrong(format!(
                "`{}` is not a kernel function or tracepoint name ([A-Za-z0-9_.], \
                 `module:function` for a module's)",
                crate::text::escape(t)
            ))
        }
        _ => Ok(()),
    }
}

/// Checks a map or program name against what the kernel stores.
pub(crate) fn check_name(name: &str) -> Result<(), ObjectError> {
    let bad = |reason| {
        Err(ObjectError::BadName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 15 {
        return bad("longer than 15 bytes (the kernel keeps 15)");
    }
    if !name
        .bytes()
        .all(|c| matches!(c, b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.'))
    {
        return bad("only [A-Za-z0-9_.] are allowed");
    }
    Ok(())
}

impl Object {
    /// An empty object with license "GPL" (needed by most helpers).
    pub fn new() -> Object {
        Object {
            key: ObjectKey::fresh(),
            maps: PrimaryMap::new(),
            existing: SecondaryMap::new(),
            programs: PrimaryMap::new(),
            functions: PrimaryMap::new(),
            license: Cow::Borrowed("GPL"),
        }
    }

    /// Which object this is: every id it hands out carries this key.
    pub fn key(&self) -> ObjectKey {
        self.key
    }

    /// Refuses an id of another object.
    pub fn check_id(&self, id: impl Into<Symbol>) -> Result<(), ObjectError> {
        let id = id.into();
        if id.object() == self.key {
            Ok(())
        } else {
            Err(ObjectError::ForeignId { id, this: self.key })
        }
    }

    /// `id`, once checked to be this object's: another object's id panics
    /// (for the accessors that cannot fail, as indexing a slice out of
    /// range does).
    pub(crate) fn own<T: Into<Symbol> + Copy>(&self, id: T) -> T {
        if let Err(e) = self.check_id(id) {
            panic!("{e}");
        }
        id
    }

    pub(crate) fn map_id(&self, slot: MapSlot) -> MapId {
        MapId::new(self.key, slot)
    }

    pub(crate) fn prog_id(&self, slot: ProgSlot) -> ProgId {
        ProgId::new(self.key, slot)
    }

    pub(crate) fn func_id(&self, slot: FuncSlot) -> FuncId {
        FuncId::new(self.key, slot)
    }

    /// Sets the license string passed to the kernel.
    pub fn set_license(&mut self, license: impl Into<String>) {
        self.license = Cow::Owned(license.into());
    }

    /// The license string.
    pub fn license(&self) -> &str {
        &self.license
    }

    /// Refuses `name` when a map, program or function already has it.
    fn claim_name(&self, name: &str) -> Result<(), ObjectError> {
        match self.symbol(name) {
            Some(_) => Err(ObjectError::DuplicateName(name.to_string())),
            None => Ok(()),
        }
    }

    /// Adds a map after checking its specification.
    pub fn add_map(&mut self, spec: MapSpec) -> Result<MapId, ObjectError> {
        check_name(&spec.name)?;
        spec.validate()?;
        for (_, value) in &spec.contents {
            self.check_value(value)?;
        }
        self.claim_name(&spec.name)?;
        let slot = self.maps.push(spec);
        Ok(self.map_id(slot))
    }

    /// Declares a map that already exists in the kernel: loading uses it
    /// instead of creating one, after checking that it has the shape
    /// `spec` describes (type, key and value sizes, entries, flags, and
    /// for maps of maps the inner shape when the map holds an inner map to
    /// read it from). Programs refer to it by the returned id like to any
    /// other map. It keeps its contents (so `spec` has none) and is not
    /// frozen again.
    ///
    /// This is how a second object shares the first one's maps (a
    /// handle, [`ExistingMap::Handle`]), a tool reuses a pinned map
    /// ([`ExistingMap::Pinned`]) or one found by id ([`ExistingMap::Id`]).
    pub fn add_existing_map(
        &mut self,
        spec: MapSpec,
        map: ExistingMap,
    ) -> Result<MapId, ObjectError> {
        if !spec.contents.is_empty() {
            return Err(ObjectError::ExistingWithContents(spec.name));
        }
        let id = self.add_map(spec)?;
        self.existing[id.slot()] = Some(map);
        Ok(id)
    }

    /// Shares a loaded map under `name`: an existing map
    /// ([`add_existing_map`](Object::add_existing_map)) whose expected
    /// shape is the handle's own. Maps of maps need the inner shape, so
    /// they go through `add_existing_map` with a spec.
    pub fn share_map(
        &mut self,
        name: &str,
        map: &crate::handle::Map,
    ) -> Result<MapId, ObjectError> {
        let spec = MapSpec::like(name, map)?;
        self.add_existing_map(spec, ExistingMap::Handle(map.clone()))
    }

    /// The kernel map `id` uses instead of creating one, if it was added
    /// with [`add_existing_map`](Object::add_existing_map).
    pub fn existing_map(&self, id: MapId) -> Option<&ExistingMap> {
        self.existing[self.own(id).slot()].as_ref()
    }

    /// Adds read-only global data: a frozen one-entry array map that
    /// programs read through [`Asm::ld_map_value`](crate::asm::Asm::ld_map_value)
    /// and the verifier treats as constants.
    pub fn add_rodata(&mut self, name: &str, bytes: &[u8]) -> Result<MapId, ObjectError> {
        let spec = MapSpec::array(name, bytes.len().max(1) as u32, 1)
            .with_flags(F_RDONLY_PROG)
            .with_bytes(0u32.to_ne_bytes(), padded(bytes))
            .frozen();
        self.add_map(spec)
    }

    /// Adds writable global data: a one-entry array map initialised to `bytes`.
    pub fn add_data(&mut self, name: &str, bytes: &[u8]) -> Result<MapId, ObjectError> {
        let spec = MapSpec::array(name, bytes.len().max(1) as u32, 1)
            .with_bytes(0u32.to_ne_bytes(), padded(bytes));
        self.add_map(spec)
    }

    /// Adds a program after checking its references.
    pub fn add_program(
        &mut self,
        name: &str,
        prog_type: ProgramType,
        code: Code,
    ) -> Result<ProgId, ObjectError> {
        self.add_program_spec(ProgramSpec::new(name, prog_type, code))
    }

    /// Adds a program given whole (with its fragment support, say).
    pub fn add_program_spec(&mut self, spec: ProgramSpec) -> Result<ProgId, ObjectError> {
        check_name(&spec.name)?;
        check_attach_to(&spec)?;
        self.check_code(&spec.name, &spec.code)?;
        self.claim_name(&spec.name)?;
        let slot = self.programs.push(spec);
        Ok(self.prog_id(slot))
    }

    /// Takes back the program added last, `prog` (a load that failed).
    pub(crate) fn remove_last_program(&mut self, prog: ProgId) {
        let mut all: Vec<ProgramSpec> = std::mem::take(&mut self.programs).into();
        debug_assert_eq!(prog.index() + 1, all.len(), "only the last program");
        all.truncate(prog.index());
        self.programs = all.into();
    }

    /// Declares (or withdraws) fragment support of an XDP program: see
    /// [`ProgramSpec::xdp_frags`]. Refuses programs that are not XDP.
    pub fn set_xdp_frags(&mut self, prog: ProgId, frags: bool) -> Result<(), ObjectError> {
        self.check_id(prog)?;
        let spec = &mut self.programs[prog.slot()];
        if !spec.prog_type.is_xdp() {
            return Err(ObjectError::WrongProgramType {
                program: spec.name.clone(),
                reason: format!(
                    "only XDP programs declare fragment support, this one is {:?}",
                    spec.prog_type
                ),
            });
        }
        spec.xdp_frags = frags;
        Ok(())
    }

    /// Names what the tp_btf, fentry or fexit program `prog` is loaded
    /// for (see [`ProgramSpec::attach_to`]); refused for other types.
    pub fn set_attach_to(&mut self, prog: ProgId, target: &str) -> Result<(), ObjectError> {
        self.check_id(prog)?;
        let spec = &mut self.programs[prog.slot()];
        let old = spec.attach_to.replace(target.to_string());
        if let Err(e) = check_attach_to(spec) {
            spec.attach_to = old;
            return Err(e);
        }
        Ok(())
    }

    /// Declares a function whose body comes later (for calls made before
    /// the callee is built, or recursion between functions).
    pub fn declare_function(&mut self, name: &str) -> Result<FuncId, ObjectError> {
        self.claim_name(name)?;
        let slot = self.functions.push(FunctionSpec {
            name: name.to_string(),
            code: None,
            global: false,
        });
        Ok(self.func_id(slot))
    }

    /// Gives a declared function its body.
    pub fn define_function(&mut self, func: FuncId, code: Code) -> Result<(), ObjectError> {
        self.check_id(func)?;
        let name = self.functions[func.slot()].name.clone();
        self.check_code(&name, &code)?;
        self.functions[func.slot()].code = Some(code);
        Ok(())
    }

    /// Adds a function with its body.
    pub fn add_function(&mut self, name: &str, code: Code) -> Result<FuncId, ObjectError> {
        self.check_code(name, &code)?;
        let id = self.declare_function(name)?;
        self.functions[id.slot()].code = Some(code);
        Ok(id)
    }

    /// Adds a global function with its body: a function that takes the
    /// program's context in R1 and returns a scalar in R0, which the
    /// kernel verifies on its own (whatever its callers pass and expect)
    /// and which an extension program can replace (see
    /// [`crate::extension`] and [`FunctionSpec::global`]). Programs call
    /// it as any function ([`Asm::call_func`](crate::asm::Asm::call_func)),
    /// with the context in R1.
    pub fn add_global_function(&mut self, name: &str, code: Code) -> Result<FuncId, ObjectError> {
        let id = self.add_function(name, code)?;
        self.functions[id.slot()].global = true;
        Ok(id)
    }

    /// Makes `prog` an extension of `target`, replacing its global
    /// function `function`: `prog` is then loaded as `BPF_PROG_TYPE_EXT`
    /// against `target` (see [`crate::extension`]). Reads `target`'s BTF
    /// now to find the function, so an unknown or static function fails
    /// here; keeps a handle of `target` until the object is dropped. The
    /// program's own type must be the target's (an XDP program for an
    /// XDP target).
    pub fn set_extension(
        &mut self,
        prog: ProgId,
        target: &Program,
        function: &str,
    ) -> Result<(), ExtensionError> {
        self.check_id(prog)?;
        let extension = Extension::resolve(target, function)?;
        let spec = &mut self.programs[prog.slot()];
        let (own_type, _) = spec.prog_type.kernel_types();
        if own_type != extension.target_type() {
            return Err(ExtensionError::WrongTarget {
                extension: spec.name.clone(),
                extension_type: own_type,
                target: target.name().to_string(),
                target_type: extension.target_type(),
            });
        }
        spec.extension = Some(extension);
        Ok(())
    }

    /// Checks that every reference of `code` names something of this object
    /// and sits on an instruction of the right form.
    fn check_code(&self, owner: &str, code: &Code) -> Result<(), ObjectError> {
        let bad = |insn: usize, reason: String| ObjectError::BadReference {
            owner: owner.to_string(),
            insn,
            reason,
        };
        for &(pc, reloc) in &code.relocs {
            let insn = code
                .insns
                .get(pc)
                .ok_or_else(|| bad(pc, "reference past the end of the code".into()))?;
            let wide = insn.is_wide() && pc + 1 < code.insns.len();
            match reloc {
                Reloc::MapFd(m) | Reloc::MapValue { map: m, .. } => {
                    self.check_id(m)?;
                    let spec = self
                        .maps
                        .get(m.slot())
                        .ok_or_else(|| bad(pc, format!("unknown {m}")))?;
                    if !wide {
                        return Err(bad(pc, "map reference on a non-ld_imm64".into()));
                    }
                    if let Reloc::MapValue { offset, .. } = reloc {
                        if spec.map_type != MapType::Array {
                            return Err(bad(
                                pc,
                                format!("map value of `{}`, which is not an array", spec.name),
                            ));
                        }
                        if offset >= spec.value_size {
                            return Err(bad(
                                pc,
                                format!(
                                    "offset {offset} past the {}-byte value of `{}`",
                                    spec.value_size, spec.name
                                ),
                            ));
                        }
                    }
                }
                Reloc::Call(f) | Reloc::FuncPtr(f) => {
                    self.check_id(f)?;
                    if self.functions.get(f.slot()).is_none() {
                        return Err(bad(pc, format!("unknown {f}")));
                    }
                    let ok = match reloc {
                        Reloc::Call(_) => insn.is_pseudo_call(),
                        _ => wide,
                    };
                    if !ok {
                        return Err(bad(
                            pc,
                            "function reference on the wrong instruction".into(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Refuses the ids of another object in an initial value of map
    /// `map`. The maps and programs it names may be added before or after
    /// it: [`validate`](Object::validate) checks them when the object is
    /// complete.
    fn check_value(&self, value: &InitValue) -> Result<(), ObjectError> {
        if let Some(prog) = value.program() {
            self.check_id(prog)?;
        }
        if let InitValue::Map(m) = value {
            self.check_id(*m)?;
        }
        Ok(())
    }

    /// Adds an entry to a map's initial contents. Only the new entry is
    /// checked (its size, index and kind of value), so adding `n` entries
    /// takes time in proportion to `n`. The programs and maps it refers
    /// to may be added before or after it: [`validate`](Object::validate)
    /// checks them when the object is complete (at load or ELF export).
    pub fn add_map_entry(
        &mut self,
        map: MapId,
        key: impl Into<Vec<u8>>,
        value: InitValue,
    ) -> Result<(), ObjectError> {
        self.check_id(map)?;
        if self.existing[map.slot()].is_some() {
            return Err(ObjectError::ExistingWithContents(
                self.maps[map.slot()].name.clone(),
            ));
        }
        self.check_value(&value)?;
        let key = key.into();
        let spec = &mut self.maps[map.slot()];
        spec.check_entry(&key, &value)?;
        spec.contents.push((key, value));
        Ok(())
    }

    /// Adds an entry of typed bytes to a map's initial contents: `key`
    /// and `value` as [`Pod::write`] lays them out (the byte form is
    /// [`add_map_entry`](Object::add_map_entry) with
    /// [`InitValue::Bytes`]).
    ///
    /// ```
    /// use std::net::Ipv4Addr;
    /// use bpf_builder::map::MapSpec;
    /// use bpf_builder::object::Object;
    /// use bpf_builder::pod::{Ipv4Prefix, Pod};
    ///
    /// let mut obj = Object::new();
    /// let routes = obj.add_map(MapSpec::lpm_trie("routes", 4, 4, 1024)).unwrap();
    /// let net = Ipv4Prefix::new(Ipv4Addr::new(192, 168, 0, 0), 16);
    /// obj.add_typed_entry(routes, net, 7u32).unwrap();
    /// assert_eq!(obj.map(routes).contents[0].0, net.to_bytes());
    /// ```
    pub fn add_typed_entry<K: Pod, V: Pod>(
        &mut self,
        map: MapId,
        key: K,
        value: V,
    ) -> Result<(), ObjectError> {
        self.add_map_entry(map, key.to_bytes(), InitValue::Bytes(value.to_bytes()))
    }

    /// The map `id`.
    ///
    /// # Panics
    /// When `id` belongs to another object.
    pub fn map(&self, id: MapId) -> &MapSpec {
        &self.maps[self.own(id).slot()]
    }

    /// The program `id`.
    ///
    /// # Panics
    /// When `id` belongs to another object.
    pub fn program(&self, id: ProgId) -> &ProgramSpec {
        &self.programs[self.own(id).slot()]
    }

    /// The function `id`.
    ///
    /// # Panics
    /// When `id` belongs to another object.
    pub fn function(&self, id: FuncId) -> &FunctionSpec {
        &self.functions[self.own(id).slot()]
    }

    /// All maps, in the order added.
    pub fn maps(&self) -> impl ExactSizeIterator<Item = (MapId, &MapSpec)> {
        self.maps.iter().map(|(s, m)| (self.map_id(s), m))
    }

    /// All programs, in the order added.
    pub fn programs(&self) -> impl ExactSizeIterator<Item = (ProgId, &ProgramSpec)> {
        self.programs.iter().map(|(s, p)| (self.prog_id(s), p))
    }

    /// All functions, in the order declared.
    pub fn functions(&self) -> impl ExactSizeIterator<Item = (FuncId, &FunctionSpec)> {
        self.functions.iter().map(|(s, f)| (self.func_id(s), f))
    }

    /// The object without its maps' initial contents (they live in the
    /// kernel once loaded): what a loaded object keeps of its
    /// specification. The contents are not copied on the way.
    pub(crate) fn without_contents(&self) -> Object {
        Object {
            key: self.key,
            maps: self.maps.values().map(MapSpec::without_contents).collect(),
            existing: self.existing.clone(),
            programs: self.programs.clone(),
            functions: self.functions.clone(),
            license: self.license.clone(),
        }
    }

    /// Looks a name up. A scan: objects have a handful of names, and
    /// a scan costs less than hashing them (no table to build either).
    pub fn symbol(&self, name: &str) -> Option<Symbol> {
        if let Some((id, _)) = self.maps().find(|(_, m)| m.name == name) {
            return Some(Symbol::Map(id));
        }
        if let Some((id, _)) = self.programs().find(|(_, p)| p.name == name) {
            return Some(Symbol::Prog(id));
        }
        self.functions()
            .find(|(_, f)| f.name == name)
            .map(|(id, _)| Symbol::Func(id))
    }

    /// The map named `name`.
    pub fn map_by_name(&self, name: &str) -> Option<MapId> {
        match self.symbol(name)? {
            Symbol::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The program named `name`.
    pub fn program_by_name(&self, name: &str) -> Option<ProgId> {
        match self.symbol(name)? {
            Symbol::Prog(p) => Some(p),
            _ => None,
        }
    }

    /// Checks what can only be checked once the object is complete:
    /// declared functions have bodies, initial contents name existing
    /// programs and maps.
    pub fn validate(&self) -> Result<(), ObjectError> {
        if let Some((_, f)) = self.functions.iter().find(|(_, f)| f.code.is_none()) {
            return Err(ObjectError::Undefined(f.name.clone()));
        }
        for (_, spec) in self.maps.iter() {
            for (_, value) in &spec.contents {
                let missing = match *value {
                    InitValue::Map(m) if self.maps.get(m.slot()).is_none() => "map",
                    _ => match value.program() {
                        Some(p) if self.programs.get(p.slot()).is_none() => "program",
                        _ => continue,
                    },
                };
                return Err(ObjectError::BadContents {
                    map: spec.name.clone(),
                    what: missing,
                });
            }
        }
        self.check_frags_agree()
    }

    /// The kernel keeps, per program array, devmap and cpumap, whether its
    /// programs declare XDP fragment support, and refuses a program that
    /// differs, whether stored in the map or using it (devmap-hash: only
    /// stored). Finding it here gives a clear error instead of an
    /// `EINVAL` (`ENOMEM` for cpumaps) when the map is filled.
    fn check_frags_agree(&self) -> Result<(), ObjectError> {
        if !self.programs.values().any(|p| p.xdp_frags) {
            return Ok(());
        }
        let mut used: Option<SecondaryMap<ProgSlot, Vec<MapId>>> = None;
        for (map, spec) in self.maps() {
            let users_count = match spec.map_type {
                MapType::ProgArray | MapType::DevMap | MapType::CpuMap => true,
                MapType::DevMapHash => false,
                _ => continue,
            };
            let mut progs: Vec<ProgId> = spec
                .contents
                .iter()
                .filter_map(|(_, v)| v.program())
                .collect();
            if users_count {
                let used = match &mut used {
                    Some(u) => u,
                    None => used.insert(self.maps_used()?),
                };
                progs.extend(
                    self.programs
                        .keys()
                        .filter(|&p| used[p].contains(&map))
                        .map(|p| self.prog_id(p)),
                );
            }
            let with = progs.iter().find(|&&p| self.program(p).xdp_frags);
            let without = progs.iter().find(|&&p| !self.program(p).xdp_frags);
            if let (Some(&with), Some(&without)) = (with, without) {
                return Err(ObjectError::MixedFrags {
                    map: spec.name.clone(),
                    with: self.program(with).name.clone(),
                    without: self.program(without).name.clone(),
                });
            }
        }
        Ok(())
    }

    /// The maps each program refers to, with the functions it calls.
    fn maps_used(&self) -> Result<SecondaryMap<ProgSlot, Vec<MapId>>, ObjectError> {
        let mut used = SecondaryMap::new();
        for (prog, _) in self.programs() {
            used[prog.slot()] = self
                .layout(prog)?
                .relocs
                .iter()
                .filter_map(|&(_, r)| match r {
                    Reloc::MapFd(m) | Reloc::MapValue { map: m, .. } => Some(m),
                    Reloc::Call(_) | Reloc::FuncPtr(_) => None,
                })
                .collect();
        }
        Ok(used)
    }
}

/// Global data of zero bytes still needs a one-byte value.
fn padded(bytes: &[u8]) -> Vec<u8> {
    if bytes.is_empty() {
        vec![0]
    } else {
        bytes.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::Asm;
    use crate::insn::Reg::*;

    fn ret(v: i32) -> Code {
        let mut a = Asm::new();
        a.mov64(R0, v);
        a.exit();
        a.finish().unwrap()
    }

    #[test]
    fn names_are_unique_across_kinds() {
        let mut o = Object::new();
        o.add_map(MapSpec::array("x", 4, 1)).unwrap();
        assert_eq!(
            o.add_program("x", ProgramType::Xdp, ret(2)),
            Err(ObjectError::DuplicateName("x".into()))
        );
    }

    #[test]
    fn references_are_checked() {
        let mut o = Object::new();
        let ro = o.add_rodata(".rodata", &[1, 2, 3, 4]).unwrap();
        let h = o.add_map(MapSpec::hash("h", 4, 4, 8)).unwrap();
        let mut a = Asm::new();
        a.ld_map_value(R1, ro, 4);
        a.exit();
        let e = o
            .add_program("p", ProgramType::Xdp, a.finish().unwrap())
            .unwrap_err();
        assert!(
            e.to_string().contains("offset 4 past the 4-byte value"),
            "{e}"
        );

        let mut a = Asm::new();
        a.ld_map_value(R1, h, 0);
        a.exit();
        let e = o
            .add_program("p", ProgramType::Xdp, a.finish().unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("not an array"), "{e}");

        let mut a = Asm::new();
        a.ld_map_fd(R1, o.map_id(MapSlot::from_u32(9)));
        a.exit();
        let e = o
            .add_program("p", ProgramType::Xdp, a.finish().unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("unknown map9"), "{e}");
    }

    #[test]
    fn only_xdp_programs_declare_fragment_support() {
        let mut o = Object::new();
        let x = o.add_program("x", ProgramType::Xdp, ret(2)).unwrap();
        let d = o.add_program("d", ProgramType::XdpDevmap, ret(2)).unwrap();
        let c = o.add_program("c", ProgramType::XdpCpumap, ret(2)).unwrap();
        let t = o.add_program("t", ProgramType::TcxIngress, ret(0)).unwrap();
        assert!(!o.program(x).xdp_frags, "off unless asked for");
        assert_eq!(o.program(x).section_name(), "xdp");
        for (id, section) in [
            (x, "xdp.frags"),
            (d, "xdp.frags/devmap"),
            (c, "xdp.frags/cpumap"),
        ] {
            o.set_xdp_frags(id, true).unwrap();
            assert!(o.program(id).xdp_frags);
            assert_eq!(o.program(id).section_name(), section);
        }
        o.set_xdp_frags(x, false).unwrap();
        assert_eq!(o.program(x).section_name(), "xdp");

        let e = o.set_xdp_frags(t, true).unwrap_err();
        assert!(
            matches!(&e, ObjectError::WrongProgramType { program, .. } if program == "t"),
            "{e:?}"
        );
        assert!(e.to_string().contains("TcxIngress"), "{e}");
        assert!(!o.program(t).xdp_frags);
        assert_eq!(o.program(t).section_name(), "tcx/ingress");
    }

    /// An object with a map `m` holding `entry` (XDP devmap/cpumap or
    /// plain XDP for program arrays) and an XDP program `main` that uses
    /// `m` from a function it calls.
    fn holder(map: MapSpec, main_frags: bool, entry_frags: bool) -> Result<(), ObjectError> {
        let mut o = Object::new();
        let m = o.add_map(map).unwrap();
        let (entry_type, value): (_, fn(ProgId) -> InitValue) = match o.map(m).map_type {
            MapType::ProgArray => (ProgramType::Xdp, InitValue::Prog),
            MapType::CpuMap => (ProgramType::XdpCpumap, |prog| InitValue::CpuWithProg {
                qsize: 64,
                prog,
            }),
            _ => (ProgramType::XdpDevmap, |prog| InitValue::DevWithProg {
                ifindex: 1,
                prog,
            }),
        };
        let mut a = Asm::new();
        a.ld_map_fd(R1, m);
        a.mov64(R0, 0);
        a.exit();
        let f = o.add_function("uses_m", a.finish().unwrap()).unwrap();
        let mut a = Asm::new();
        a.call_func(f);
        a.mov64(R0, 2);
        a.exit();
        let main = o
            .add_program("main", ProgramType::Xdp, a.finish().unwrap())
            .unwrap();
        let entry = o.add_program("entry", entry_type, ret(2)).unwrap();
        o.set_xdp_frags(main, main_frags).unwrap();
        o.set_xdp_frags(entry, entry_frags).unwrap();
        o.add_map_entry(m, 0u32.to_ne_bytes(), value(entry))
            .unwrap();
        o.validate()
    }

    #[test]
    fn programs_of_one_map_agree_on_fragment_support() {
        for map in [
            MapSpec::prog_array("m", 2),
            MapSpec::devmap("m", 2),
            MapSpec::cpumap("m", 2),
        ] {
            let t = map.map_type;
            assert_eq!(holder(map.clone(), false, false), Ok(()), "{t:?}");
            assert_eq!(holder(map.clone(), true, true), Ok(()), "{t:?}");
            for (main, entry) in [(true, false), (false, true)] {
                let e = holder(map.clone(), main, entry).unwrap_err();
                let (with, without) = if main {
                    ("main", "entry")
                } else {
                    ("entry", "main")
                };
                assert_eq!(
                    e,
                    ObjectError::MixedFrags {
                        map: "m".into(),
                        with: with.into(),
                        without: without.into(),
                    },
                    "{t:?}"
                );
            }
        }
        // A devmap-hash binds only the programs it holds.
        assert_eq!(holder(MapSpec::devmap_hash("m", 2), true, false), Ok(()));
        let mut o = Object::new();
        let m = o.add_map(MapSpec::devmap_hash("m", 4)).unwrap();
        for (i, (name, frags)) in [("a", true), ("b", false)].into_iter().enumerate() {
            let p = o.add_program(name, ProgramType::XdpDevmap, ret(2)).unwrap();
            o.set_xdp_frags(p, frags).unwrap();
            let value = InitValue::DevWithProg {
                ifindex: 1,
                prog: p,
            };
            o.add_map_entry(m, (i as u32).to_ne_bytes(), value).unwrap();
        }
        let e = o.validate().unwrap_err();
        assert!(
            matches!(&e, ObjectError::MixedFrags { with, without, .. } if with == "a" && without == "b"),
            "{e:?}"
        );
        assert!(e.to_string().contains("map `m`"), "{e}");
    }

    #[test]
    fn entries_may_come_before_the_programs_they_hold() {
        let mut o = Object::new();
        let jumps = o.add_map(MapSpec::prog_array("jumps", 4)).unwrap();
        // The first program, not added yet.
        let target = o.prog_id(ProgSlot::from_u32(0));
        o.add_map_entry(jumps, 1u32.to_ne_bytes(), InitValue::Prog(target))
            .unwrap();
        let missing = ObjectError::BadContents {
            map: "jumps".into(),
            what: "program",
        };
        assert_eq!(o.validate(), Err(missing));
        assert_eq!(o.add_program("t", ProgramType::Xdp, ret(1)), Ok(target));
        assert_eq!(o.validate(), Ok(()));
    }

    #[test]
    fn a_refused_entry_leaves_the_contents_as_they_were() {
        let mut o = Object::new();
        let a = o.add_map(MapSpec::array("a", 8, 4)).unwrap();
        o.add_typed_entry(a, 3u32, 7u64).unwrap();
        let e = o.add_typed_entry(a, 4u32, 7u64).unwrap_err();
        assert!(e.to_string().contains("past max_entries 4"), "{e}");
        let e = o.add_typed_entry(a, 0u32, 7u32).unwrap_err();
        assert!(e.to_string().contains("does not fit"), "{e}");
        let e = o
            .add_map_entry(a, 0u16.to_ne_bytes(), InitValue::Bytes(vec![0; 8]))
            .unwrap_err();
        assert!(e.to_string().contains("initial key of 2 bytes"), "{e}");
        let contents = &o.map(a).contents;
        assert_eq!(
            contents,
            &[(
                3u32.to_ne_bytes().to_vec(),
                InitValue::Bytes(7u64.to_ne_bytes().to_vec())
            )]
        );
    }

    #[test]
    fn map_references_in_contents_are_checked_with_the_object() {
        let mut o = Object::new();
        let inner = MapSpec::array("i", 4, 1);
        let outer = o
            .add_map(MapSpec::array_of_maps("outer", 2, inner))
            .unwrap();
        let later = o.map_id(MapSlot::from_u32(1));
        o.add_map_entry(outer, 0u32.to_ne_bytes(), InitValue::Map(later))
            .unwrap();
        let missing = ObjectError::BadContents {
            map: "outer".into(),
            what: "map",
        };
        assert_eq!(o.validate(), Err(missing));
        assert_eq!(o.add_map(MapSpec::array("inner", 4, 1)), Ok(later));
        assert_eq!(o.validate(), Ok(()));
    }

    #[test]
    fn declared_functions_must_be_defined() {
        let mut o = Object::new();
        let f = o.declare_function("f").unwrap();
        assert_eq!(o.validate(), Err(ObjectError::Undefined("f".into())));
        o.define_function(f, ret(0)).unwrap();
        assert_eq!(o.validate(), Ok(()));
    }
}
