//! Attaching loaded programs to network devices: XDP (through a BPF link
//! by default, netlink as a guarded fallback), tcx with ordering anchors
//! and expected revisions, links (update, pin, detach) and the per-entry
//! programs of devmaps and cpumaps, and extension programs
//! ([`extension`]) to the functions they replace.
//!
//! Tracing programs attach through one mechanism per module, each giving
//! a [`TraceLink`] that detaches cleanly (dropped, or
//! [`TraceLink::detach`]): [`perf_event`] (kprobes and uprobes through
//! their PMUs with tracefs as the fallback, classic tracepoints, sampling
//! and counting events on every CPU; BPF perf links with a cookie, or
//! `PERF_EVENT_IOC_SET_BPF` on kernels without them), [`kprobe_multi`]
//! (kprobe.multi and uprobe.multi), [`raw_tracepoint`] and [`tracing`]
//! (tp_btf, fentry, fexit). [`tracefs`] reads tracepoint formats;
//! [`symbol_offset`] finds a uprobe's file offset.
//!
//! Interface names and indexes belong to a network namespace: every
//! function here works in the namespace of the calling thread, and an
//! [`Interface`] made in another namespace is refused
//! ([`AttachError::OtherNamespace`]) rather than resolved to whatever
//! device has that name or index here.
//!
//! A failed attach changes nothing: each attach is one kernel operation
//! that either happens or not, and the helpers that read before writing
//! (the tcx ordering helper) write with the revision they read.

mod devmap;
pub mod dispatcher;
mod elf_symbol;
pub mod extension;
pub mod kprobe_multi;
mod link;
mod link_kind;
pub mod perf_event;
pub mod raw_tracepoint;
pub mod tcx;
mod trace_link;
pub mod tracefs;
pub mod tracing;
pub mod xdp;

use std::io;

pub use devmap::{
    CpumapEntry, DevmapEntry, cpumap_entry, devmap_entry, set_cpumap_entry, set_devmap_entry,
};
pub use elf_symbol::symbol_offset;
pub use link::Link;
pub use link_kind::LinkKind;
pub use trace_link::TraceLink;

use crate::handle::MapError;
use crate::kernel_id::KernelLinkId;
use crate::privilege::{Needs, hint, is_denied};
use crate::sys::netlink::NetlinkError;
pub use crate::sys::netns::NetnsId;
use crate::sys::netns::{if_indextoname, if_nametoindex};
use crate::text::escape;

/// A network device, by name or by index, in the network namespace of the
/// thread that made the value. Converts from `&str`, `String` and `u32`.
///
/// Names and indexes mean a device only inside one network namespace:
/// index 5 (or `eth0`) in a container is another device than on the host,
/// or none. An `Interface` therefore remembers the namespace it was made
/// in, and every use of it ([`resolve`](Interface::resolve), and with it
/// each attach, query and devmap entry) fails with
/// [`AttachError::OtherNamespace`] when the calling thread is in another
/// one (`setns(2)` moves a single thread). Make the value on a thread in
/// the namespace the name or index comes from. When `/proc` cannot tell
/// the namespace (not mounted), the check is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    device: Device,
    netns: Option<NetnsId>,
}

/// How an [`Interface`] names its device.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Device {
    Name(String),
    Index(u32),
}

impl From<&str> for Interface {
    fn from(name: &str) -> Interface {
        Interface::named(name)
    }
}

impl From<String> for Interface {
    fn from(name: String) -> Interface {
        Interface::named(name)
    }
}

impl From<&String> for Interface {
    fn from(name: &String) -> Interface {
        Interface::named(name.as_str())
    }
}

impl From<u32> for Interface {
    fn from(index: u32) -> Interface {
        Interface::with_index(index)
    }
}

impl std::fmt::Display for Interface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.device {
            // Escaped: a device name may hold control characters.
            Device::Name(n) => f.write_str(&escape(n)),
            Device::Index(i) => write!(f, "ifindex {i}"),
        }
    }
}

impl Interface {
    /// The device named `name` (`eth0`) in the calling thread's network
    /// namespace.
    pub fn named(name: impl Into<String>) -> Interface {
        Interface {
            device: Device::Name(name.into()),
            netns: NetnsId::current().ok(),
        }
    }

    /// The device with index `index` in the calling thread's network
    /// namespace.
    pub fn with_index(index: u32) -> Interface {
        Interface {
            device: Device::Index(index),
            netns: NetnsId::current().ok(),
        }
    }

    /// The network namespace the value was made in (`None` when `/proc`
    /// could not tell).
    pub fn netns(&self) -> Option<NetnsId> {
        self.netns
    }

    /// The device's `ARPHRD_*` type, which says what XDP and tc programs
    /// find at the start of a packet: an Ethernet header on
    /// `ARPHRD_ETHER` (1) and loopback (772) devices, the IP header on
    /// `ARPHRD_NONE` (65534: tun, WireGuard) and IP tunnels.
    pub fn device_type(&self) -> Result<u16, AttachError> {
        let ifindex = self.resolve()?;
        crate::sys::netlink::get_device_type(ifindex).map_err(|source| AttachError::Netlink {
            op: format!("reading the device type of {self}"),
            source,
        })
    }

    /// The interface index, checking that the calling thread is in the
    /// namespace the value was made in and that the device exists there.
    pub fn resolve(&self) -> Result<u32, AttachError> {
        self.check_netns()?;
        match &self.device {
            Device::Name(name) => if_nametoindex(name).map_err(|e| {
                if matches!(e.raw_os_error(), Some(libc::ENODEV) | Some(libc::ENXIO))
                    || e.kind() == io::ErrorKind::InvalidInput
                {
                    AttachError::UnknownInterface(format!(
                        "no interface named \"{}\"",
                        escape(name)
                    ))
                } else {
                    AttachError::sys(format!("cannot look up interface \"{}\"", escape(name)), e)
                }
            }),
            Device::Index(index) => match if_indextoname(*index) {
                Ok(_) => Ok(*index),
                Err(_) => Err(AttachError::UnknownInterface(format!(
                    "no interface with index {index}"
                ))),
            },
        }
    }

    /// Fails unless the calling thread is in the namespace the value was
    /// made in (or either namespace is unknown).
    fn check_netns(&self) -> Result<(), AttachError> {
        let Some(given_in) = self.netns else {
            return Ok(());
        };
        match NetnsId::current() {
            Ok(current) if current != given_in => Err(AttachError::OtherNamespace {
                iface: self.to_string(),
                given_in,
                current,
            }),
            _ => Ok(()),
        }
    }
}

/// An attach, detach, query or update failed; the system is as it was.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The interface was given on a thread in another network namespace
    /// than the calling thread's: its name or index means another device
    /// here, or none.
    #[error(
        "{iface} was given in network namespace {given_in}, but this thread is in {current}: \
         an interface name or index means a device only in its own namespace (make the \
         Interface on a thread in that namespace)"
    )]
    OtherNamespace {
        /// The interface as given.
        iface: String,
        /// Where it was given.
        given_in: NetnsId,
        /// Where the calling thread is.
        current: NetnsId,
    },
    /// The interface does not exist in this network namespace.
    #[error("{0} in this network namespace")]
    UnknownInterface(String),
    /// A map entry was refused for a reason the map names (an index past
    /// its end, a device or CPU that does not exist).
    #[error(transparent)]
    Map(MapError),
    /// Someone else's program holds the hook.
    #[error("{hook} of {iface} is taken: {detail}")]
    HookTaken {
        /// The hook (`XDP`, `tcx ingress`, ...).
        hook: String,
        /// The device.
        iface: String,
        /// What holds it, as far as we know.
        detail: String,
    },
    /// The program attached is not the one the caller expected to replace.
    #[error(
        "{hook} of {iface}: the attached program is {found}, not the expected {expected}; nothing was changed"
    )]
    ExpectedMismatch {
        /// The hook.
        hook: String,
        /// The device.
        iface: String,
        /// What the caller expected (a program id, or "none").
        expected: String,
        /// What is attached (a program id, or "none").
        found: String,
    },
    /// tcx: the chain changed since the caller read its revision.
    #[error(
        "tcx {hook} chain of {iface} moved: expected revision {expected}, it is now at {current}; \
         nothing was changed (query again and retry)"
    )]
    RevisionMoved {
        /// `ingress` or `egress`.
        hook: String,
        /// The device.
        iface: String,
        /// The revision the caller passed.
        expected: u64,
        /// The revision now.
        current: u64,
    },
    /// tcx: the program or link given as anchor is not in the chain.
    #[error("tcx {hook} of {iface}: anchor {anchor} is not attached there")]
    AnchorNotFound {
        /// `ingress` or `egress`.
        hook: String,
        /// The device.
        iface: String,
        /// The anchor as given.
        anchor: String,
    },
    /// The ordering helper could not resolve its anchor in the chain.
    #[error("tcx {hook} of {iface}: {reason}")]
    Unresolved {
        /// `ingress` or `egress`.
        hook: String,
        /// The device.
        iface: String,
        /// Why (no program of that name, several of them, ...).
        reason: String,
    },
    /// An XDP dispatcher change that cannot be made as asked: the
    /// dispatcher is full, the anchor is not in it, it speaks another
    /// version of libxdp's protocol, a member's pin is missing.
    #[error("XDP dispatcher of {iface}: {reason}")]
    Dispatcher {
        /// The device.
        iface: String,
        /// What is wrong.
        reason: String,
    },
    /// The ordering helper kept seeing the chain change under it.
    #[error("tcx {hook} of {iface}: the chain changed during each of {attempts} attempts")]
    TooManyRetries {
        /// `ingress` or `egress`.
        hook: String,
        /// The device.
        iface: String,
        /// How many times it tried.
        attempts: u32,
    },
    /// [`Link::detach`] closed its handle of a link the kernel cannot
    /// detach on request, and a pin or another fd still holds it: the
    /// program stays attached until those are gone.
    #[error(
        "{kind} link {id} is still attached: the kernel detaches this kind of link only when \
         its last reference goes, and a pin in bpffs or another fd still holds it after this \
         handle was closed (remove the pin, close the other fds)"
    )]
    StillHeld {
        /// The link's kind.
        kind: LinkKind,
        /// The link's kernel id.
        id: KernelLinkId,
    },
    /// The kernel cannot do this for this kind of object.
    #[error("{what}")]
    Unsupported {
        /// What cannot be done, and what to do instead.
        what: String,
        /// The kernel's errno.
        source: io::Error,
    },
    /// The running kernel has no tcx (Linux 6.6+).
    #[error("this kernel does not support tcx (needs Linux 6.6 or later): {source}")]
    NoTcx {
        /// What the kernel said.
        source: io::Error,
    },
    /// The function an extension is to replace cannot be found in its
    /// target (no BTF, no such function, a static one...).
    #[error(transparent)]
    Extension(#[from] crate::extension::ExtensionError),
    /// The program does not fit the hook (wrong type or attach type).
    #[error("program `{program}` cannot go there: {reason}")]
    WrongProgram {
        /// The program's name.
        program: String,
        /// What is expected.
        reason: String,
    },
    /// What a probe, tracepoint or event names does not exist: no such
    /// kernel function, tracepoint, file or symbol.
    #[error("{what}")]
    NotFound {
        /// What is missing, and where it was looked for.
        what: String,
    },
    /// The target exists, but the kernel will not trace it there.
    #[error("{target} is not traceable: {reason}")]
    NotTraceable {
        /// The function, offset or tracepoint.
        target: String,
        /// Why, as far as the kernel's answer tells.
        reason: String,
    },
    /// The running kernel lacks what this attach needs (too old, or
    /// built without it).
    #[error("kernel too old: {what} needs {needs} ({detail})")]
    KernelTooOld {
        /// What was asked.
        what: String,
        /// The kernel version or configuration it needs.
        needs: String,
        /// What the kernel said or lacks.
        detail: String,
    },
    /// The kernel refused for lack of privilege (`EPERM`/`EACCES`).
    #[error("{op}: {source} (needs {needs})")]
    Denied {
        /// What was being done.
        op: String,
        /// The capabilities it needs.
        needs: Needs,
        /// The errno.
        source: io::Error,
    },
    /// The kernel refused for another reason.
    #[error("{op}: {source}")]
    Sys {
        /// What was being done.
        op: String,
        /// The errno.
        source: io::Error,
    },
    /// A netlink request failed for another reason (naming
    /// `CAP_NET_ADMIN` when refused with `EPERM`/`EACCES`).
    #[error("{op}: {source}{}", hint(&.source.source, Needs::NET_DEVICE))]
    Netlink {
        /// What was being done.
        op: String,
        /// The errno and the kernel's message.
        source: NetlinkError,
    },
}

impl AttachError {
    /// A failed operation on a network device: a refusal for lack of
    /// privilege names `CAP_NET_ADMIN`.
    pub(crate) fn sys(op: impl Into<String>, source: io::Error) -> AttachError {
        AttachError::sys_needs(op, source, Needs::NET_DEVICE)
    }

    /// A failed operation that needs `needs` when refused for lack of
    /// privilege.
    pub(crate) fn sys_needs(op: impl Into<String>, source: io::Error, needs: Needs) -> AttachError {
        let op = op.into();
        if is_denied(&source) {
            AttachError::Denied { op, needs, source }
        } else {
            AttachError::Sys { op, source }
        }
    }

    /// The capabilities whose lack made the kernel refuse, if that is why
    /// this failed.
    pub fn missing_privilege(&self) -> Option<Needs> {
        match self {
            AttachError::Denied { needs, .. } => Some(*needs),
            AttachError::Netlink { source, .. } if is_denied(&source.source) => {
                Some(Needs::NET_DEVICE)
            }
            AttachError::Extension(crate::extension::ExtensionError::Kernel {
                needs,
                source,
                ..
            }) if is_denied(source) => Some(*needs),
            _ => None,
        }
    }
}
