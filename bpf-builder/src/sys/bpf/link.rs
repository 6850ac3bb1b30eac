//! Links (`BPF_LINK_*`), the older attach API (`BPF_PROG_ATTACH`/`DETACH`)
//! and `BPF_PROG_QUERY`.
//!
//! tcx (6.6+) orders programs on a device: a new program goes before or
//! after an anchor (`BPF_F_BEFORE`/`BPF_F_AFTER` with a [`Relative`]), and
//! `expected_revision` makes the change fail with ESTALE when someone else
//! changed the list since we queried it. tcx works through links and
//! through the non-link attach API alike.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use aya_obj::generated::{BPF_F_ID, BPF_F_LINK, BPF_F_REPLACE, bpf_attach_type, bpf_attr, bpf_cmd};

use crate::kernel_id::{KernelLinkId, KernelProgId};

use super::{
    attr_member, fd_u32, invalid_input, ptr_u64, slice_mut_u64, sys_bpf, sys_bpf_fd, zeroed,
};

/// What a program attaches to.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A network device (XDP, tcx, netkit).
    Ifindex(u32),
    /// An fd: a cgroup, a network namespace, a map, ...
    Fd(BorrowedFd<'a>),
    /// A global function of a loaded BPF program, which an extension
    /// (`BPF_PROG_TYPE_EXT`, freplace) replaces: the program's fd and the
    /// BTF id of the function's `FUNC` in the program's BTF. Only
    /// [`link_create`] takes it.
    Function {
        /// The program whose function is replaced.
        prog: BorrowedFd<'a>,
        /// The function's `FUNC` id in that program's BTF.
        btf_id: u32,
    },
}

impl Target<'_> {
    fn raw(self) -> u32 {
        match self {
            Target::Ifindex(i) => i,
            Target::Fd(fd) | Target::Function { prog: fd, .. } => fd_u32(fd),
        }
    }

    /// The target of a command that has no BTF id to pass: a
    /// [`Target::Function`] is refused.
    fn plain(self, command: &str) -> io::Result<u32> {
        match self {
            Target::Function { .. } => Err(invalid_input(format!(
                "{command} takes no function target (only BPF_LINK_CREATE does)"
            ))),
            _ => Ok(self.raw()),
        }
    }
}

/// The anchor of a tcx/netkit `BPF_F_BEFORE`/`BPF_F_AFTER` placement.
///
/// The variant sets the `BPF_F_ID`/`BPF_F_LINK` flags that tell the kernel
/// how to read the number; the caller sets `BPF_F_BEFORE` or `BPF_F_AFTER`.
#[derive(Debug, Clone, Copy, Default)]
pub enum Relative<'a> {
    /// No anchor: with BEFORE, the head of the list; with AFTER, the tail.
    #[default]
    None,
    /// The program behind this fd.
    ProgFd(BorrowedFd<'a>),
    /// The program attached by the link behind this fd.
    LinkFd(BorrowedFd<'a>),
    /// The program with this id.
    ProgId(KernelProgId),
    /// The link with this id.
    LinkId(KernelLinkId),
}

impl Relative<'_> {
    /// The union value and the flags that give it its meaning.
    fn raw(self) -> (u32, u32) {
        match self {
            Relative::None => (0, 0),
            Relative::ProgFd(fd) => (fd_u32(fd), 0),
            Relative::LinkFd(fd) => (fd_u32(fd), BPF_F_LINK),
            Relative::ProgId(id) => (id.get(), BPF_F_ID),
            Relative::LinkId(id) => (id.get(), BPF_F_ID | BPF_F_LINK),
        }
    }

    fn is_none(&self) -> bool {
        matches!(self, Relative::None)
    }
}

/// Attach types whose attr carries `relative` and `expected_revision`.
fn is_mprog(attach_type: u32) -> bool {
    use bpf_attach_type::*;
    [
        BPF_TCX_INGRESS,
        BPF_TCX_EGRESS,
        BPF_NETKIT_PRIMARY,
        BPF_NETKIT_PEER,
    ]
    .iter()
    .any(|&t| t as u32 == attach_type)
}

fn check_mprog(attach_type: u32, relative: &Relative<'_>, revision: u64) -> io::Result<()> {
    if !is_mprog(attach_type) && (!relative.is_none() || revision != 0) {
        return Err(invalid_input(format!(
            "attach type {attach_type} takes no relative anchor or expected revision \
             (only tcx and netkit do)"
        )));
    }
    Ok(())
}

/// What to create with `BPF_LINK_CREATE`.
#[derive(Debug, Clone, Copy)]
pub struct LinkCreateAttr<'a> {
    /// The program to attach.
    pub prog_fd: BorrowedFd<'a>,
    /// Where to attach it.
    pub target: Target<'a>,
    /// `bpf_attach_type` value (e.g. `BPF_XDP`, `BPF_TCX_INGRESS`).
    pub attach_type: u32,
    /// Flags: XDP mode flags for XDP, `BPF_F_BEFORE`/`BPF_F_AFTER` for tcx.
    pub flags: u32,
    /// tcx/netkit anchor.
    pub relative: Relative<'a>,
    /// tcx/netkit: fail with ESTALE unless the list is at this revision
    /// (0: any).
    pub expected_revision: u64,
}

/// `BPF_LINK_CREATE`: attaches a program and returns the link; closing
/// the last fd of a link (that is not pinned) detaches the program.
pub fn link_create(attr: &LinkCreateAttr<'_>) -> io::Result<OwnedFd> {
    check_mprog(attr.attach_type, &attr.relative, attr.expected_revision)?;
    let (rel, rel_flags) = attr.relative.raw();
    let mut a: bpf_attr = zeroed();
    let l = attr_member!(a, link_create);
    l.__bindgen_anon_1.prog_fd = fd_u32(attr.prog_fd);
    l.__bindgen_anon_2.target_ifindex = attr.target.raw();
    l.attach_type = attr.attach_type;
    l.flags = attr.flags | rel_flags;
    if is_mprog(attr.attach_type) {
        // `tcx` and `netkit` members have the same layout.
        l.__bindgen_anon_3.tcx.__bindgen_anon_1.relative_fd = rel;
        l.__bindgen_anon_3.tcx.expected_revision = attr.expected_revision;
    }
    if let Target::Function { btf_id, .. } = attr.target {
        l.__bindgen_anon_3.target_btf_id = btf_id;
    }
    sys_bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut a)
}

/// `BPF_LINK_UPDATE`: swaps the program of a link atomically. With
/// `old_prog`, fails (EPERM) unless that is the program currently attached.
pub fn link_update(
    link: impl AsFd,
    new_prog: impl AsFd,
    old_prog: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let mut a: bpf_attr = zeroed();
    let u = attr_member!(a, link_update);
    u.link_fd = fd_u32(link.as_fd());
    u.__bindgen_anon_1.new_prog_fd = fd_u32(new_prog.as_fd());
    if let Some(old) = old_prog {
        u.flags = BPF_F_REPLACE;
        u.__bindgen_anon_2.old_prog_fd = fd_u32(old);
    }
    sys_bpf(bpf_cmd::BPF_LINK_UPDATE, &mut a).map(drop)
}

/// `BPF_RAW_TRACEPOINT_OPEN`: attaches a raw tracepoint program to the
/// tracepoint `name` (`sched_switch`, `xdp_exception`, ...) and returns the
/// link (of type `BPF_LINK_TYPE_RAW_TRACEPOINT`). The kernel has no
/// `BPF_LINK_DETACH` for it: it detaches when its last reference goes.
pub fn raw_tracepoint_open(name: &CStr, prog: impl AsFd) -> io::Result<OwnedFd> {
    let mut a: bpf_attr = zeroed();
    let r = attr_member!(a, raw_tracepoint);
    r.name = ptr_u64(name.as_ptr());
    r.prog_fd = fd_u32(prog.as_fd());
    // `name` is borrowed for the whole call.
    sys_bpf_fd(bpf_cmd::BPF_RAW_TRACEPOINT_OPEN, &mut a)
}

/// `BPF_LINK_DETACH`: detaches the program now; the link fd stays valid
/// but defunct. Only some kinds of links have it (XDP, tcx, netkit,
/// cgroup, netns, netfilter, struct_ops, sockmap); the others (tracing,
/// raw tracepoints, perf events, ...) give `EOPNOTSUPP`.
pub fn link_detach(link: impl AsFd) -> io::Result<()> {
    let mut a: bpf_attr = zeroed();
    a.link_detach.link_fd = fd_u32(link.as_fd());
    sys_bpf(bpf_cmd::BPF_LINK_DETACH, &mut a).map(drop)
}

/// What `BPF_PROG_QUERY` reports for an attach point.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProgQuery {
    /// Revision of the program list (tcx/netkit; 0 elsewhere).
    pub revision: u64,
    /// Attach flags of the attach point (cgroups).
    pub attach_flags: u32,
    /// Attached programs, in execution order.
    pub prog_ids: Vec<KernelProgId>,
    /// For each program, the link that attached it (`None`: attached
    /// without a link). Only tcx/netkit fill it; empty otherwise.
    pub link_ids: Vec<Option<KernelLinkId>>,
}

/// `BPF_PROG_QUERY`: the programs attached at `target` for `attach_type`.
/// Two passes: the count first, then the ids (repeated if the list grew
/// in between).
pub fn prog_query(target: Target<'_>, attach_type: u32, query_flags: u32) -> io::Result<ProgQuery> {
    let mut capacity = 0u32;
    for _ in 0..8 {
        let mut prog_ids = vec![0u32; capacity as usize];
        let mut link_ids = vec![
            0u32;
            if is_mprog(attach_type) {
                prog_ids.len()
            } else {
                0
            }
        ];
        let mut a: bpf_attr = zeroed();
        let q = attr_member!(a, query);
        q.__bindgen_anon_1.target_ifindex = target.plain("BPF_PROG_QUERY")?;
        q.attach_type = attach_type;
        q.query_flags = query_flags;
        q.__bindgen_anon_2.count = capacity;
        q.prog_ids = slice_mut_u64(&mut prog_ids);
        q.link_ids = slice_mut_u64(&mut link_ids);
        let r = sys_bpf(bpf_cmd::BPF_PROG_QUERY, &mut a);
        // SAFETY: plain integers in the zero-initialised attr union, which
        // the kernel updates on success and on ENOSPC.
        let (count, revision, attach_flags) = unsafe {
            (
                a.query.__bindgen_anon_2.count,
                a.query.revision,
                a.query.attach_flags,
            )
        };
        match r {
            Ok(_) if count <= capacity => {
                prog_ids.truncate(count as usize);
                link_ids.truncate(count as usize);
                return Ok(ProgQuery {
                    revision,
                    attach_flags,
                    prog_ids: prog_ids.into_iter().map(KernelProgId::new).collect(),
                    link_ids: link_ids
                        .into_iter()
                        .map(|id| (id != 0).then_some(KernelLinkId::new(id)))
                        .collect(),
                });
            }
            Ok(_) => capacity = count,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => capacity = count.max(capacity + 1),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "BPF_PROG_QUERY: the program list kept changing while we read it",
    ))
}

/// What to attach with `BPF_PROG_ATTACH`.
#[derive(Debug, Clone, Copy)]
pub struct ProgAttachAttr<'a> {
    /// Where to attach.
    pub target: Target<'a>,
    /// The program.
    pub prog_fd: BorrowedFd<'a>,
    /// `bpf_attach_type` value.
    pub attach_type: u32,
    /// `BPF_F_ALLOW_MULTI`, `BPF_F_REPLACE`, `BPF_F_BEFORE`/`BPF_F_AFTER`...
    pub flags: u32,
    /// With `BPF_F_REPLACE` (cgroups): the program to replace.
    pub replace_prog_fd: Option<BorrowedFd<'a>>,
    /// tcx/netkit anchor.
    pub relative: Relative<'a>,
    /// tcx/netkit: fail with ESTALE unless the list is at this revision
    /// (0: any).
    pub expected_revision: u64,
}

/// `BPF_PROG_ATTACH`.
pub fn prog_attach(attr: &ProgAttachAttr<'_>) -> io::Result<()> {
    check_mprog(attr.attach_type, &attr.relative, attr.expected_revision)?;
    let (rel, rel_flags) = attr.relative.raw();
    let mut a: bpf_attr = zeroed();
    let p = attr_member!(a, __bindgen_anon_5);
    p.__bindgen_anon_1.target_ifindex = attr.target.plain("BPF_PROG_ATTACH")?;
    p.attach_bpf_fd = fd_u32(attr.prog_fd);
    p.attach_type = attr.attach_type;
    p.attach_flags = attr.flags | rel_flags;
    p.replace_bpf_fd = attr.replace_prog_fd.map_or(0, fd_u32);
    p.__bindgen_anon_2.relative_fd = rel;
    p.expected_revision = attr.expected_revision;
    sys_bpf(bpf_cmd::BPF_PROG_ATTACH, &mut a).map(drop)
}

/// `BPF_PROG_DETACH` of `prog` (tcx needs it; some cgroup modes allow
/// `None`), with the same anchor and revision rules as attaching.
pub fn prog_detach(
    target: Target<'_>,
    attach_type: u32,
    prog: Option<BorrowedFd<'_>>,
    flags: u32,
    relative: Relative<'_>,
    expected_revision: u64,
) -> io::Result<()> {
    check_mprog(attach_type, &relative, expected_revision)?;
    let (rel, rel_flags) = relative.raw();
    let mut a: bpf_attr = zeroed();
    let p = attr_member!(a, __bindgen_anon_5);
    p.__bindgen_anon_1.target_ifindex = target.plain("BPF_PROG_DETACH")?;
    p.attach_bpf_fd = prog.map_or(0, fd_u32);
    p.attach_type = attach_type;
    p.attach_flags = flags | rel_flags;
    p.__bindgen_anon_2.relative_fd = rel;
    p.expected_revision = expected_revision;
    sys_bpf(bpf_cmd::BPF_PROG_DETACH, &mut a).map(drop)
}
