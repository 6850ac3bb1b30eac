//! tcx (Linux 6.6+): ordered chains of tc programs on a device's ingress
//! and egress.
//!
//! Each program says where it goes ([`Anchor`]): at the head, at the tail,
//! or before/after a program or link given by handle or id. A change may
//! carry the chain revision the caller read with [`query`]; if the chain
//! moved since, the kernel refuses (`ESTALE`, reported as
//! [`AttachError::RevisionMoved`]) and nothing changes. [`attach_placed`]
//! and [`attach_with`] build race-safe ordering on that: read the chain,
//! resolve the anchor, attach at the revision read, and start over when
//! someone else got there first.
//!
//! Programs in a chain return `TCX_NEXT` (-1) to let the next one run,
//! `TCX_PASS` (0) to accept the packet now, `TCX_DROP` (2) to drop it.

use std::io;
use std::os::fd::AsFd;

use aya_obj::generated::bpf_attach_type;

use super::{AttachError, Interface, Link};
use crate::handle::Program;
use crate::kernel_id::{KernelLinkId, KernelProgId};
use crate::object::ProgramType;
use crate::sys::bpf::{
    self as sys, LinkCreateAttr, ProgAttachAttr, Relative, Target, flags as bpf_flags,
};

/// `TCX_NEXT`: run the next program of the chain.
pub const TCX_NEXT: i32 = -1;
/// `TCX_PASS`: accept the packet, skip the rest of the chain.
pub const TCX_PASS: i32 = 0;
/// `TCX_DROP`: drop the packet.
pub const TCX_DROP: i32 = 2;

/// Which chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// Packets coming in.
    Ingress,
    /// Packets going out.
    Egress,
}

impl Hook {
    fn attach_type(self) -> u32 {
        (match self {
            Hook::Ingress => bpf_attach_type::BPF_TCX_INGRESS,
            Hook::Egress => bpf_attach_type::BPF_TCX_EGRESS,
        }) as u32
    }

    fn name(self) -> &'static str {
        match self {
            Hook::Ingress => "ingress",
            Hook::Egress => "egress",
        }
    }
}

/// A program already in a chain, as an anchor.
#[derive(Debug, Clone, Copy)]
pub enum Ref<'a> {
    /// This program (by its fd).
    Program(&'a Program),
    /// The program attached by this link (by its fd).
    Link(&'a Link),
    /// The program with this kernel id.
    ProgramId(KernelProgId),
    /// The program attached by the link with this kernel id.
    LinkId(KernelLinkId),
}

impl<'a> Ref<'a> {
    fn relative(self) -> Relative<'a> {
        match self {
            Ref::Program(p) => Relative::ProgFd(p.as_fd()),
            Ref::Link(l) => Relative::LinkFd(l.as_fd()),
            Ref::ProgramId(id) => Relative::ProgId(id),
            Ref::LinkId(id) => Relative::LinkId(id),
        }
    }

    fn describe(self) -> String {
        match self {
            Ref::Program(p) => format!("program `{}`", p.name()),
            Ref::Link(l) => l
                .id()
                .map_or_else(|_| "link (fd)".into(), |id| format!("link {id}")),
            Ref::ProgramId(id) => format!("program id {id}"),
            Ref::LinkId(id) => format!("link id {id}"),
        }
    }
}

/// Where a program goes in the chain.
#[derive(Debug, Clone, Copy)]
pub enum Anchor<'a> {
    /// First: runs before every program attached now.
    Head,
    /// Last: runs after every program attached now.
    Tail,
    /// Right before this program.
    Before(Ref<'a>),
    /// Right after this program.
    After(Ref<'a>),
}

impl<'a> Anchor<'a> {
    fn raw(self) -> (u32, Relative<'a>) {
        match self {
            Anchor::Head => (bpf_flags::BPF_F_BEFORE, Relative::None),
            Anchor::Tail => (bpf_flags::BPF_F_AFTER, Relative::None),
            Anchor::Before(r) => (bpf_flags::BPF_F_BEFORE, r.relative()),
            Anchor::After(r) => (bpf_flags::BPF_F_AFTER, r.relative()),
        }
    }

    fn describe(self) -> String {
        match self {
            Anchor::Head => "head".into(),
            Anchor::Tail => "tail".into(),
            Anchor::Before(r) => format!("before {}", r.describe()),
            Anchor::After(r) => format!("after {}", r.describe()),
        }
    }
}

/// Where [`attach`] and [`attach_unlinked`] put a program and what chain
/// they expect: made with [`TcxOptions::new`], changed with its setters.
#[derive(Debug, Clone, Copy)]
pub struct TcxOptions<'a> {
    anchor: Anchor<'a>,
    expected_revision: Option<u64>,
}

impl<'a> TcxOptions<'a> {
    /// At the tail of the chain, whatever its revision.
    pub fn new() -> Self {
        TcxOptions {
            anchor: Anchor::Tail,
            expected_revision: None,
        }
    }

    /// Sets where the program goes.
    pub fn anchor(mut self, anchor: Anchor<'a>) -> Self {
        self.anchor = anchor;
        self
    }

    /// Changes the chain only if it is still at `revision` (as read with
    /// [`query`]); [`AttachError::RevisionMoved`] otherwise.
    pub fn expected_revision(mut self, revision: u64) -> Self {
        self.expected_revision = Some(revision);
        self
    }
}

impl Default for TcxOptions<'_> {
    fn default() -> Self {
        TcxOptions::new()
    }
}

/// One program of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The program's kernel id.
    pub prog_id: KernelProgId,
    /// The link that attached it (`None`: attached without a link).
    pub link_id: Option<KernelLinkId>,
    /// The program's name (empty if it went away while we read the chain).
    pub name: String,
}

/// A chain as [`query`] read it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chain {
    /// The chain's revision: pass it as the expected revision to change
    /// the chain only if it is still this one.
    pub revision: u64,
    /// The programs in the order they run.
    pub entries: Vec<Entry>,
}

impl Chain {
    /// The program ids in order.
    pub fn prog_ids(&self) -> Vec<KernelProgId> {
        self.entries.iter().map(|e| e.prog_id).collect()
    }

    /// The program names in order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }
}

/// The error for a tcx operation that failed with `e`.
fn tcx_error(
    e: io::Error,
    iface: &Interface,
    ifindex: u32,
    hook: Hook,
    anchor: Option<Anchor<'_>>,
    expected_revision: Option<u64>,
    prog: &Program,
) -> AttachError {
    let hook_name = hook.name().to_string();
    match e.raw_os_error() {
        Some(libc::ESTALE) => AttachError::RevisionMoved {
            hook: hook_name,
            iface: iface.to_string(),
            expected: expected_revision.unwrap_or(0),
            current: query_index(ifindex, hook).map_or(0, |c| c.revision),
        },
        Some(libc::ENOENT) if anchor.is_some() => AttachError::AnchorNotFound {
            hook: hook_name,
            iface: iface.to_string(),
            anchor: anchor.map(Anchor::describe).unwrap_or_default(),
        },
        Some(libc::EEXIST) => AttachError::HookTaken {
            hook: format!("tcx {hook_name}"),
            iface: iface.to_string(),
            detail: format!("program `{}` is already in this chain", prog.name()),
        },
        Some(libc::ERANGE) => AttachError::HookTaken {
            hook: format!("tcx {hook_name}"),
            iface: iface.to_string(),
            detail: "the chain is full".into(),
        },
        Some(libc::ENODEV) => AttachError::UnknownInterface(format!("no interface {iface}")),
        Some(libc::EINVAL) if !tcx_supported(ifindex) => AttachError::NoTcx { source: e },
        _ => AttachError::sys(
            format!(
                "tcx {hook_name} of {iface}, {}",
                anchor.map_or("replace".into(), Anchor::describe)
            ),
            e,
        ),
    }
}

/// Whether the kernel knows tcx: a query of a tcx chain works.
fn tcx_supported(ifindex: u32) -> bool {
    sys::prog_query(Target::Ifindex(ifindex), Hook::Ingress.attach_type(), 0).is_ok()
}

fn check_type(prog: &Program, hook: Hook) -> Result<(), AttachError> {
    match prog.prog_type() {
        None
        | Some(ProgramType::SchedCls)
        | Some(ProgramType::TcxIngress)
        | Some(ProgramType::TcxEgress) => Ok(()),
        Some(other) => Err(AttachError::WrongProgram {
            program: prog.name().to_string(),
            reason: format!(
                "tcx {} needs a tc program (TcxIngress, TcxEgress or SchedCls), this one is {other:?}",
                hook.name()
            ),
        }),
    }
}

/// Attaches `prog` to the `hook` chain of `iface` through a link, where
/// `opts` says; with an expected revision, only if the chain is still at
/// it ([`AttachError::RevisionMoved`] otherwise).
pub fn attach(
    iface: impl Into<Interface>,
    hook: Hook,
    prog: &Program,
    opts: &TcxOptions<'_>,
) -> Result<Link, AttachError> {
    let TcxOptions {
        anchor,
        expected_revision,
    } = *opts;
    let iface = iface.into();
    check_type(prog, hook)?;
    let ifindex = iface.resolve()?;
    let (flags, relative) = anchor.raw();
    let attr = LinkCreateAttr {
        prog_fd: prog.as_fd(),
        target: Target::Ifindex(ifindex),
        attach_type: hook.attach_type(),
        flags,
        relative,
        expected_revision: expected_revision.unwrap_or(0),
    };
    sys::link_create(&attr).map(Link::from_fd).map_err(|e| {
        tcx_error(
            e,
            &iface,
            ifindex,
            hook,
            Some(anchor),
            expected_revision,
            prog,
        )
    })
}

/// The `hook` chain of `iface`: revision, programs in order with their
/// link ids and names.
pub fn query(iface: impl Into<Interface>, hook: Hook) -> Result<Chain, AttachError> {
    let iface = iface.into();
    let ifindex = iface.resolve()?;
    query_index(ifindex, hook).map_err(|e| match e.raw_os_error() {
        Some(libc::EINVAL) => AttachError::NoTcx { source: e },
        _ => AttachError::sys(format!("query tcx {} of {iface}", hook.name()), e),
    })
}

fn query_index(ifindex: u32, hook: Hook) -> io::Result<Chain> {
    let q = sys::prog_query(Target::Ifindex(ifindex), hook.attach_type(), 0)?;
    let entries = q
        .prog_ids
        .iter()
        .enumerate()
        .map(|(i, &prog_id)| Entry {
            prog_id,
            link_id: q.link_ids.get(i).copied().flatten(),
            name: sys::prog_get_fd_by_id(prog_id)
                .and_then(sys::prog_info)
                .map(|info| info.name)
                .unwrap_or_default(),
        })
        .collect();
    Ok(Chain {
        revision: q.revision,
        entries,
    })
}

/// Where [`attach_placed`] puts a program, resolved against the chain it
/// reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// First.
    Head,
    /// Last.
    Tail,
    /// Right before the program so named (exactly one must be attached).
    BeforeName(String),
    /// Right after the program so named (exactly one must be attached).
    AfterName(String),
}

/// How many times [`attach_placed`] reads the chain before giving up.
pub const MAX_ATTEMPTS: u32 = 64;

/// The ordering helper: reads the chain, resolves `place` in it, attaches
/// at the revision it read, and starts over when the chain moved in
/// between. Several processes or threads can place their programs this
/// way at once, without a coordinator, and each gets the position it asked
/// for relative to what it named.
pub fn attach_placed(
    iface: impl Into<Interface>,
    hook: Hook,
    prog: &Program,
    place: &Place,
) -> Result<Link, AttachError> {
    let iface = iface.into();
    let label = iface.to_string();
    attach_with(iface, hook, prog, MAX_ATTEMPTS, |chain| {
        let by_name = |name: &str| {
            let found: Vec<&Entry> = chain.entries.iter().filter(|e| e.name == name).collect();
            match found.as_slice() {
                [one] => Ok(one.prog_id),
                [] => Err(AttachError::Unresolved {
                    hook: hook.name().into(),
                    iface: label.clone(),
                    reason: format!(
                        "no program named `{}` in the chain {:?}",
                        crate::text::escape(name),
                        chain.names()
                    ),
                }),
                _ => Err(AttachError::Unresolved {
                    hook: hook.name().into(),
                    iface: label.clone(),
                    reason: format!(
                        "{} programs are named `{}`",
                        found.len(),
                        crate::text::escape(name)
                    ),
                }),
            }
        };
        Ok(match place {
            Place::Head => Anchor::Head,
            Place::Tail => Anchor::Tail,
            Place::BeforeName(n) => Anchor::Before(Ref::ProgramId(by_name(n)?)),
            Place::AfterName(n) => Anchor::After(Ref::ProgramId(by_name(n)?)),
        })
    })
}

/// The general ordering helper: `resolve` picks the anchor from the chain
/// just read; the attach carries that chain's revision. On
/// [`AttachError::RevisionMoved`] it reads again, up to `max_attempts`
/// times. An error from `resolve` stops it.
pub fn attach_with(
    iface: impl Into<Interface>,
    hook: Hook,
    prog: &Program,
    max_attempts: u32,
    mut resolve: impl FnMut(&Chain) -> Result<Anchor<'static>, AttachError>,
) -> Result<Link, AttachError> {
    let iface = iface.into();
    for _ in 0..max_attempts {
        let chain = query(iface.clone(), hook)?;
        let anchor = resolve(&chain)?;
        let opts = TcxOptions::new()
            .anchor(anchor)
            .expected_revision(chain.revision);
        match attach(iface.clone(), hook, prog, &opts) {
            Err(AttachError::RevisionMoved { .. }) => continue,
            // The anchor went away after we read the chain, which moved it.
            Err(AttachError::AnchorNotFound { .. })
                if query(iface.clone(), hook)?.revision != chain.revision =>
            {
                continue;
            }
            other => return other,
        }
    }
    Err(AttachError::TooManyRetries {
        hook: hook.name().into(),
        iface: iface.to_string(),
        attempts: max_attempts,
    })
}

/// Attaches without a link (`BPF_PROG_ATTACH`), where `opts` says: the
/// program stays until [`detach_unlinked`] or the device goes away; no
/// handle owns it.
pub fn attach_unlinked(
    iface: impl Into<Interface>,
    hook: Hook,
    prog: &Program,
    opts: &TcxOptions<'_>,
) -> Result<(), AttachError> {
    let TcxOptions {
        anchor,
        expected_revision,
    } = *opts;
    let iface = iface.into();
    check_type(prog, hook)?;
    let ifindex = iface.resolve()?;
    let (flags, relative) = anchor.raw();
    sys::prog_attach(&ProgAttachAttr {
        target: Target::Ifindex(ifindex),
        prog_fd: prog.as_fd(),
        attach_type: hook.attach_type(),
        flags,
        replace_prog_fd: None,
        relative,
        expected_revision: expected_revision.unwrap_or(0),
    })
    .map_err(|e| {
        tcx_error(
            e,
            &iface,
            ifindex,
            hook,
            Some(anchor),
            expected_revision,
            prog,
        )
    })
}

/// Replaces the link-less program `old` by `new` in place
/// (`BPF_F_REPLACE`); with `expected_revision`, only at that revision.
/// (Programs attached by a link are replaced with [`Link::update`].)
pub fn replace_unlinked(
    iface: impl Into<Interface>,
    hook: Hook,
    old: &Program,
    new: &Program,
    expected_revision: Option<u64>,
) -> Result<(), AttachError> {
    let iface = iface.into();
    check_type(new, hook)?;
    let ifindex = iface.resolve()?;
    sys::prog_attach(&ProgAttachAttr {
        target: Target::Ifindex(ifindex),
        prog_fd: new.as_fd(),
        attach_type: hook.attach_type(),
        flags: bpf_flags::BPF_F_REPLACE,
        replace_prog_fd: Some(old.as_fd()),
        relative: Relative::None,
        expected_revision: expected_revision.unwrap_or(0),
    })
    .map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => AttachError::AnchorNotFound {
            hook: hook.name().into(),
            iface: iface.to_string(),
            anchor: format!("program `{}` (to replace)", old.name()),
        },
        _ => tcx_error(e, &iface, ifindex, hook, None, expected_revision, new),
    })
}

/// Detaches the link-less program `prog`; with `expected_revision`, only
/// at that revision.
pub fn detach_unlinked(
    iface: impl Into<Interface>,
    hook: Hook,
    prog: &Program,
    expected_revision: Option<u64>,
) -> Result<(), AttachError> {
    let iface = iface.into();
    let ifindex = iface.resolve()?;
    sys::prog_detach(
        Target::Ifindex(ifindex),
        hook.attach_type(),
        Some(prog.as_fd()),
        0,
        Relative::None,
        expected_revision.unwrap_or(0),
    )
    .map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => AttachError::AnchorNotFound {
            hook: hook.name().into(),
            iface: iface.to_string(),
            anchor: format!("program `{}` (to detach)", prog.name()),
        },
        _ => tcx_error(e, &iface, ifindex, hook, None, expected_revision, prog),
    })
}
