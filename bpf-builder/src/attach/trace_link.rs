//! [`TraceLink`]: what a tracing attach holds, detached as a whole.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::tracefs::ProbeEvent;
use super::{AttachError, Link};
use crate::kernel_id::KernelLinkId;

/// One attachment of a [`TraceLink`].
#[derive(Debug)]
enum Part {
    /// A BPF link, and the perf event it runs the program on (if any).
    Link { link: Link, event: Option<OwnedFd> },
    /// A perf event whose program was set with `PERF_EVENT_IOC_SET_BPF`
    /// (kernels without perf links): closing it detaches.
    Event(OwnedFd),
}

/// A tracing program's attachment: one or more BPF links (one per CPU
/// for a sampling event), or perf events that run the program on kernels
/// without perf links, and the tracefs probe event a kprobe or uprobe
/// made when the kernel has no PMU for it.
///
/// **Dropping it detaches**: the links and perf events are closed, then
/// the probe event is removed from tracefs. [`detach`](TraceLink::detach)
/// does the same and says whether anything stayed (a pinned link or an fd
/// held elsewhere, a probe event still in use).
#[derive(Debug)]
pub struct TraceLink {
    // Dropped in this order: the attachments, then the probe event
    // (which the kernel keeps while a perf event uses it).
    parts: Vec<Part>,
    probe: Option<ProbeEvent>,
    what: String,
}

impl TraceLink {
    /// An empty attachment of `what` (`kprobe do_nanosleep`).
    pub(crate) fn new(what: String) -> TraceLink {
        TraceLink {
            parts: Vec::new(),
            probe: None,
            what,
        }
    }

    pub(crate) fn push_link(&mut self, link: Link, event: Option<OwnedFd>) {
        self.parts.push(Part::Link { link, event });
    }

    pub(crate) fn push_event(&mut self, event: OwnedFd) {
        self.parts.push(Part::Event(event));
    }

    pub(crate) fn set_probe(&mut self, probe: ProbeEvent) {
        self.probe = Some(probe);
    }

    /// What is attached (`kprobe do_nanosleep`, `tracepoint
    /// syscalls:sys_enter_getpid`, `perf event cpu-clock on 4 CPUs`).
    pub fn what(&self) -> &str {
        &self.what
    }

    /// The BPF links (none where the kernel has no perf links and the
    /// program runs from perf events set with `PERF_EVENT_IOC_SET_BPF`).
    pub fn links(&self) -> impl Iterator<Item = &Link> {
        self.parts.iter().filter_map(|p| match p {
            Part::Link { link, .. } => Some(link),
            Part::Event(_) => None,
        })
    }

    /// The kernel ids of the BPF links.
    pub fn link_ids(&self) -> Result<Vec<KernelLinkId>, AttachError> {
        self.links().map(Link::id).collect()
    }

    /// The perf events the program runs on (kprobes, uprobes,
    /// tracepoints and counters; none for raw tracepoints, fentry...).
    pub fn perf_events(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.parts.iter().filter_map(|p| match p {
            Part::Link { event, .. } => event.as_ref().map(|e| e.as_fd()),
            Part::Event(e) => Some(e.as_fd()),
        })
    }

    /// The name of the tracefs probe event (in group `bpf_builder`) when
    /// the probe went through tracefs.
    pub fn probe_event(&self) -> Option<&str> {
        self.probe.as_ref().map(ProbeEvent::name)
    }

    /// Detaches everything, returning `Ok` only once the program runs
    /// nowhere: each link is detached as [`Link::detach`] does (so a
    /// link pinned or held by another fd makes this fail with
    /// [`AttachError::StillHeld`]), the perf events are closed and the
    /// probe event removed from tracefs. Everything is released even
    /// when a step fails; the first failure is returned.
    pub fn detach(self) -> Result<(), AttachError> {
        let TraceLink { parts, probe, .. } = self;
        let mut first = None;
        for part in parts {
            if let Part::Link { link, event } = part {
                if let Err(e) = link.detach() {
                    first.get_or_insert(e);
                }
                drop(event);
            }
        }
        if let Some(probe) = probe
            && let Err(e) = probe.remove()
        {
            first.get_or_insert(e);
        }
        first.map_or(Ok(()), Err)
    }
}
