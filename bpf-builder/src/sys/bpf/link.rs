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

/// `BPF_LINK_CREATE` of a perf event link (`BPF_PERF_EVENT`, Linux
/// 5.15+): runs `prog` on each hit of the perf event `event` (a kprobe,
/// uprobe, tracepoint or counter) with `cookie` as its BPF cookie
/// (`bpf_get_attach_cookie`). Closing the link detaches it; the event's fd
/// may be closed before.
pub fn link_create_perf_event(
    prog: impl AsFd,
    event: impl AsFd,
    cookie: u64,
) -> io::Result<OwnedFd> {
    let mut a: bpf_attr = zeroed();
    let l = attr_member!(a, link_create);
    l.__bindgen_anon_1.prog_fd = fd_u32(prog.as_fd());
    l.__bindgen_anon_2.target_fd = fd_u32(event.as_fd());
    l.attach_type = bpf_attach_type::BPF_PERF_EVENT as u32;
    l.__bindgen_anon_3.perf_event.bpf_cookie = cookie;
    sys_bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut a)
}

/// `BPF_LINK_CREATE` of a tracing link: attaches a tp_btf, fentry or
/// fexit program to the target it was loaded against, with `cookie` as
/// its BPF cookie (cookies need Linux 6.0+; 0 on older kernels).
/// `attach_type` is the program's expected attach type.
pub fn link_create_tracing(prog: impl AsFd, attach_type: u32, cookie: u64) -> io::Result<OwnedFd> {
    let mut a: bpf_attr = zeroed();
    let l = attr_member!(a, link_create);
    l.__bindgen_anon_1.prog_fd = fd_u32(prog.as_fd());
    l.attach_type = attach_type;
    if cookie != 0 {
        l.__bindgen_anon_3.tracing.cookie = cookie;
    }
    sys_bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut a)
}

/// What to attach with [`link_create_kprobe_multi`].
#[derive(Debug, Clone, Copy)]
pub struct KprobeMultiAttr<'a> {
    /// The functions, by name (`available_filter_functions`' names).
    pub symbols: &'a [&'a CStr],
    /// One cookie per function, or none.
    pub cookies: &'a [u64],
    /// Return probes (`BPF_F_KPROBE_MULTI_RETURN`).
    pub retprobe: bool,
}

/// `BPF_F_KPROBE_MULTI_RETURN` and `BPF_F_UPROBE_MULTI_RETURN`.
const MULTI_RETURN: u32 = 1;

/// `BPF_LINK_CREATE` of a kprobe.multi link (Linux 5.18+ with
/// `CONFIG_FPROBE`): one program on many kernel functions at once. The
/// program must have been loaded with `BPF_TRACE_KPROBE_MULTI`.
pub fn link_create_kprobe_multi(
    prog: impl AsFd,
    attr: &KprobeMultiAttr<'_>,
) -> io::Result<OwnedFd> {
    if !attr.cookies.is_empty() && attr.cookies.len() != attr.symbols.len() {
        return Err(invalid_input(format!(
            "{} cookies for {} functions: give one per function or none",
            attr.cookies.len(),
            attr.symbols.len()
        )));
    }
    let count = u32::try_from(attr.symbols.len())
        .map_err(|_| invalid_input("too many functions".into()))?;
    let syms: Vec<u64> = attr.symbols.iter().map(|s| ptr_u64(s.as_ptr())).collect();
    let mut a: bpf_attr = zeroed();
    let l = attr_member!(a, link_create);
    l.__bindgen_anon_1.prog_fd = fd_u32(prog.as_fd());
    l.attach_type = bpf_attach_type::BPF_TRACE_KPROBE_MULTI as u32;
    let k = attr_member!(l.__bindgen_anon_3, kprobe_multi);
    k.flags = if attr.retprobe { MULTI_RETURN } else { 0 };
    k.cnt = count;
    k.syms = ptr_u64(syms.as_ptr());
    if !attr.cookies.is_empty() {
        k.cookies = ptr_u64(attr.cookies.as_ptr());
    }
    // `syms`, the strings it points to and `cookies` live across the call.
    sys_bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut a)
}

/// What to attach with [`link_create_uprobe_multi`].
#[derive(Debug, Clone, Copy)]
pub struct UprobeMultiAttr<'a> {
    /// The ELF file.
    pub path: &'a CStr,
    /// File offsets of the probed instructions.
    pub offsets: &'a [u64],
    /// One cookie per offset, or none.
    pub cookies: &'a [u64],
    /// Return probes (`BPF_F_UPROBE_MULTI_RETURN`).
    pub retprobe: bool,
    /// Only this process (0: every process that maps the file).
    pub pid: u32,
}

/// `BPF_LINK_CREATE` of a uprobe.multi link (Linux 6.6+): one program on
/// many offsets of one file. The program must have been loaded with
/// `BPF_TRACE_UPROBE_MULTI`.
pub fn link_create_uprobe_multi(
    prog: impl AsFd,
    attr: &UprobeMultiAttr<'_>,
) -> io::Result<OwnedFd> {
    if !attr.cookies.is_empty() && attr.cookies.len() != attr.offsets.len() {
        return Err(invalid_input(format!(
            "{} cookies for {} offsets: give one per offset or none",
            attr.cookies.len(),
            attr.offsets.len()
        )));
    }
    let count =
        u32::try_from(attr.offsets.len()).map_err(|_| invalid_input("too many offsets".into()))?;
    let mut a: bpf_attr = zeroed();
    let l = attr_member!(a, link_create);
    l.__bindgen_anon_1.prog_fd = fd_u32(prog.as_fd());
    l.attach_type = bpf_attach_type::BPF_TRACE_UPROBE_MULTI as u32;
    let u = attr_member!(l.__bindgen_anon_3, uprobe_multi);
    u.path = ptr_u64(attr.path.as_ptr());
    u.offsets = ptr_u64(attr.offsets.as_ptr());
    if !attr.cookies.is_empty() {
        u.cookies = ptr_u64(attr.cookies.as_ptr());
    }
    u.cnt = count;
    u.flags = if attr.retprobe { MULTI_RETURN } else { 0 };
    u.pid = attr.pid;
    // `path`, `offsets` and `cookies` are borrowed for the whole call.
    sys_bpf_fd(bpf_cmd::BPF_LINK_CREATE, &mut a)
}

/// `BPF_RAW_TRACEPOINT_OPEN` without a name: attaches a tp_btf, fentry or
/// fexit program to the target it was loaded against (the attach of
/// kernels older than tracing links, Linux 5.5 to 5.10).
pub fn raw_tracepoint_open_btf(prog: impl AsFd) -> io::Result<OwnedFd> {
    let mut a: bpf_attr = zeroed();
    let r = attr_member!(a, raw_tracepoint);
    r.prog_fd = fd_u32(prog.as_fd());
    sys_bpf_fd(bpf_cmd::BPF_RAW_TRACEPOINT_OPEN, &mut a)
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
