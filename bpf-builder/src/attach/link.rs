//! [`Link`]: an owned BPF link (an attachment the kernel holds as an
//! object); what the kernel can do to it depends on its [`LinkKind`].

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use super::{AttachError, LinkKind};
use crate::handle::Program;
use crate::kernel_id::{KernelLinkId, KernelProgId};
use crate::privilege::Needs;
use crate::sys::bpf::{self as sys, LinkInfo};

/// How long [`Link::detach`] waits for a link without a kernel detach to
/// go after closing its handle: a child process another thread is forking
/// holds a copy of every fd until it execs, which takes milliseconds.
const RELEASE_WAIT: Duration = Duration::from_millis(100);

/// A BPF link: an attachment the kernel holds as an object. The SDK makes
/// XDP ([`xdp::attach`](super::xdp::attach)) and tcx
/// ([`tcx::attach`](super::tcx::attach)) links; any other link comes in
/// through [`Link::from_fd`], [`Link::from_pin`] or [`Link::from_id`].
/// What the kernel can do to a link depends on its [`LinkKind`]
/// ([`Link::kind`]).
///
/// **Dropping a `Link` releases this handle's reference.** The kernel
/// detaches the program when the last reference goes: with no pin in bpffs
/// and no other fd (a clone, another process), dropping the handle
/// detaches. A pinned link stays attached after the handle is dropped and
/// after the process exits, until the pin is removed (`std::fs::remove_file`)
/// and every fd is closed, or until [`Link::detach`].
///
/// The drop is therefore not a synchronous detach: a child that another
/// thread is spawning at that moment holds a copy of every fd until it
/// execs, and the detach waits for it. Use [`Link::detach`] when the
/// program must be gone when the call returns: it returns `Ok` only then.
///
/// A link cannot be replaced behind its owner's back: netlink and other
/// links get `EBUSY` on an XDP hook held by a link. For the kinds that
/// support it ([`LinkKind::supports_update`]), its program can be swapped
/// atomically with [`Link::update`].
#[derive(Debug)]
pub struct Link {
    fd: OwnedFd,
}

impl Link {
    /// Wraps a link fd.
    pub fn from_fd(fd: OwnedFd) -> Link {
        Link { fd }
    }

    /// Opens a link pinned in bpffs (by this or another process).
    pub fn from_pin(path: impl AsRef<Path>) -> Result<Link, AttachError> {
        let path = path.as_ref();
        let fd = sys::obj_get(path, 0).map_err(|e| {
            AttachError::sys_needs(
                format!("open pinned link {}", path.display()),
                e,
                Needs::PIN,
            )
        })?;
        // Refuse a pinned program or map now rather than at first use.
        sys::link_info(fd.as_fd())
            .map_err(|e| AttachError::sys(format!("{} is not a pinned link", path.display()), e))?;
        let link = Link { fd };
        Ok(link)
    }

    /// Opens the link with kernel id `id`.
    pub fn from_id(id: KernelLinkId) -> Result<Link, AttachError> {
        sys::link_get_fd_by_id(id)
            .map(Link::from_fd)
            .map_err(|e| AttachError::sys_needs(format!("open link id {id}"), e, Needs::BY_ID))
    }

    /// What the kernel reports: id, type, program id, device.
    pub fn info(&self) -> Result<LinkInfo, AttachError> {
        sys::link_info(self.fd.as_fd()).map_err(|e| AttachError::sys("link info", e))
    }

    /// What the link attaches, which decides whether it can be detached
    /// and updated on request.
    pub fn kind(&self) -> Result<LinkKind, AttachError> {
        Ok(LinkKind::from_kernel_type(self.info()?.link_type))
    }

    /// The link's kernel id.
    pub fn id(&self) -> Result<KernelLinkId, AttachError> {
        Ok(self.info()?.id)
    }

    /// The id of the link's program. The kernel keeps reporting it after a
    /// detach (the device in an XDP or tcx link's [`info`](Link::info) is
    /// 0 then).
    pub fn program_id(&self) -> Result<Option<KernelProgId>, AttachError> {
        Ok(self.info()?.prog_id)
    }

    /// Swaps the attached program for `new` atomically (`BPF_LINK_UPDATE`):
    /// every packet runs either the old or the new program. Only for the
    /// kinds that support it ([`LinkKind::supports_update`]); others fail
    /// with [`AttachError::Unsupported`].
    pub fn update(&self, new: &Program) -> Result<(), AttachError> {
        sys::link_update(self.fd.as_fd(), new.as_fd(), None)
            .map_err(|e| self.update_error(new, None, e))
    }

    /// Like [`update`](Link::update), but only if `old` is the program
    /// attached now; otherwise fails with [`AttachError::ExpectedMismatch`]
    /// and changes nothing.
    pub fn update_expecting(&self, new: &Program, old: &Program) -> Result<(), AttachError> {
        sys::link_update(self.fd.as_fd(), new.as_fd(), Some(old.as_fd()))
            .map_err(|e| self.update_error(new, Some(old), e))
    }

    fn update_error(&self, new: &Program, old: Option<&Program>, e: io::Error) -> AttachError {
        match (e.raw_os_error(), old) {
            (Some(libc::EPERM), Some(old)) => AttachError::ExpectedMismatch {
                hook: "link".into(),
                iface: self
                    .info()
                    .map_or_else(|_| "?".into(), |i| format!("link {}", i.id)),
                expected: old
                    .info()
                    .map_or_else(|_| "?".into(), |i| format!("program {}", i.id)),
                found: match self.program_id() {
                    Ok(Some(id)) => format!("program {id}"),
                    Ok(None) => "none".into(),
                    Err(_) => "?".into(),
                },
            },
            (Some(libc::EINVAL | libc::EOPNOTSUPP), _)
                if self.kind().is_ok_and(|k| !k.supports_update()) =>
            {
                AttachError::Unsupported {
                    what: format!(
                        "a {} link cannot swap its program: attach `{}` with a new link and \
                         detach this one",
                        self.kind().expect("checked above"),
                        new.name()
                    ),
                    source: e,
                }
            }
            (Some(libc::EINVAL), _) => AttachError::WrongProgram {
                program: new.name().to_string(),
                reason: format!(
                    "the kernel refused it for this link ({e}); it must have the type and \
                     attach type of the program it replaces"
                ),
            },
            (Some(libc::ENOLINK), _) => AttachError::sys("update a detached link", e),
            _ => AttachError::sys("update link", e),
        }
    }

    /// Pins the link in bpffs (mounting bpffs at /sys/fs/bpf if needed), so
    /// the attachment outlives this handle and this process.
    pub fn pin(&self, path: impl AsRef<Path>) -> Result<(), AttachError> {
        let path = path.as_ref();
        let root = Path::new("/sys/fs/bpf");
        if path.starts_with(root) {
            sys::ensure_bpffs(root)
                .map_err(|e| AttachError::sys_needs("mount bpffs", e, Needs::MOUNT))?;
        }
        sys::obj_pin(self.fd.as_fd(), path)
            .map_err(|e| AttachError::sys_needs("pin link", e, Needs::PIN))
    }

    /// Detaches the program, returning `Ok` only once it is detached.
    ///
    /// For the kinds the kernel can detach on request
    /// ([`LinkKind::supports_detach`]: XDP, tcx and others) this is
    /// `BPF_LINK_DETACH`: the program is detached now, even if the link is
    /// pinned or has other fds; those stay valid but defunct. Remove a pin
    /// file with `std::fs::remove_file`.
    ///
    /// The other kinds (tracing, raw tracepoints, perf events, ...) detach
    /// only when their last reference goes (the kernel answers
    /// `BPF_LINK_DETACH` with `EOPNOTSUPP`). For them this closes this
    /// handle and checks that the link is gone; if a pin in bpffs or
    /// another fd still holds it, the program stays attached and this
    /// fails with [`AttachError::StillHeld`]. The check looks the link up
    /// by id, which needs `CAP_SYS_ADMIN`.
    pub fn detach(self) -> Result<(), AttachError> {
        let info = self.info()?;
        let kind = LinkKind::from_kernel_type(info.link_type);
        match sys::link_detach(self.fd.as_fd()) {
            Ok(()) => return Ok(()),
            Err(e) if e.raw_os_error() != Some(libc::EOPNOTSUPP) => {
                return Err(AttachError::sys(
                    format!("detach {kind} link {}", info.id),
                    e,
                ));
            }
            // No detach for this kind: dropping the references detaches.
            Err(_) => drop(self),
        }
        let started = std::time::Instant::now();
        loop {
            match sys::link_get_fd_by_id(info.id) {
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                Ok(other) if started.elapsed() < RELEASE_WAIT => {
                    drop(other);
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(_) => return Err(AttachError::StillHeld { kind, id: info.id }),
                Err(e) => {
                    return Err(AttachError::sys_needs(
                        format!(
                            "{kind} link {}: this handle was closed, but whether anything \
                             else still holds the link cannot be checked",
                            info.id
                        ),
                        e,
                        Needs::BY_ID,
                    ));
                }
            }
        }
    }

    /// A second handle to the same link.
    pub fn try_clone(&self) -> Result<Link, AttachError> {
        self.fd
            .try_clone()
            .map(Link::from_fd)
            .map_err(|e| AttachError::sys("duplicate link fd", e))
    }
}

impl AsFd for Link {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
