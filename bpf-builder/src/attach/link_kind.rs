//! [`LinkKind`]: what a BPF link attaches, which decides whether the
//! kernel can detach it or swap its program on request.

use std::fmt;

use crate::sys::bpf::bpf_link_type;

/// The kind of a link (the kernel's `bpf_link_type`). Kinds differ in what
/// the kernel can do to them on request: see
/// [`supports_detach`](LinkKind::supports_detach) and
/// [`supports_update`](LinkKind::supports_update).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    /// A raw tracepoint (`BPF_RAW_TRACEPOINT_OPEN`).
    RawTracepoint,
    /// fentry, fexit, fmod_ret, tp_btf, LSM, freplace.
    Tracing,
    /// A cgroup hook.
    Cgroup,
    /// A BPF iterator.
    Iter,
    /// A network namespace hook (flow dissector, sk_lookup).
    Netns,
    /// XDP on a device ([`xdp::attach`](super::xdp::attach)).
    Xdp,
    /// A perf event: kprobe, uprobe, classic tracepoint, software event.
    PerfEvent,
    /// kprobe.multi.
    KprobeMulti,
    /// A struct_ops map.
    StructOps,
    /// A netfilter hook.
    Netfilter,
    /// tcx on a device ([`tcx::attach`](super::tcx::attach)).
    Tcx,
    /// uprobe.multi.
    UprobeMulti,
    /// A netkit device.
    Netkit,
    /// A sockmap or sockhash (Linux 6.10+).
    Sockmap,
    /// A type this crate does not know (the kernel's number).
    Other(u32),
}

/// `BPF_LINK_TYPE_SOCKMAP`, newer than the bindings.
const LINK_TYPE_SOCKMAP: u32 = 14;

impl LinkKind {
    /// The kind of the kernel's `bpf_link_type` value `link_type`.
    pub fn from_kernel_type(link_type: u32) -> LinkKind {
        use bpf_link_type::*;
        const KINDS: [(bpf_link_type, LinkKind); 13] = [
            (BPF_LINK_TYPE_RAW_TRACEPOINT, LinkKind::RawTracepoint),
            (BPF_LINK_TYPE_TRACING, LinkKind::Tracing),
            (BPF_LINK_TYPE_CGROUP, LinkKind::Cgroup),
            (BPF_LINK_TYPE_ITER, LinkKind::Iter),
            (BPF_LINK_TYPE_NETNS, LinkKind::Netns),
            (BPF_LINK_TYPE_XDP, LinkKind::Xdp),
            (BPF_LINK_TYPE_PERF_EVENT, LinkKind::PerfEvent),
            (BPF_LINK_TYPE_KPROBE_MULTI, LinkKind::KprobeMulti),
            (BPF_LINK_TYPE_STRUCT_OPS, LinkKind::StructOps),
            (BPF_LINK_TYPE_NETFILTER, LinkKind::Netfilter),
            (BPF_LINK_TYPE_TCX, LinkKind::Tcx),
            (BPF_LINK_TYPE_UPROBE_MULTI, LinkKind::UprobeMulti),
            (BPF_LINK_TYPE_NETKIT, LinkKind::Netkit),
        ];
        if link_type == LINK_TYPE_SOCKMAP {
            return LinkKind::Sockmap;
        }
        KINDS
            .iter()
            .find(|(t, _)| *t as u32 == link_type)
            .map_or(LinkKind::Other(link_type), |&(_, kind)| kind)
    }

    /// Whether the kernel can detach this kind of link on request
    /// (`BPF_LINK_DETACH`), whatever else holds it: XDP, tcx, netkit,
    /// cgroup, netns, netfilter, struct_ops and sockmap links. The others
    /// (tracing, raw tracepoints, perf events, multi-probes, iterators)
    /// detach only when their last reference (fd or pin) goes; see
    /// [`Link::detach`](super::Link::detach).
    pub fn supports_detach(self) -> bool {
        matches!(
            self,
            LinkKind::Xdp
                | LinkKind::Tcx
                | LinkKind::Netkit
                | LinkKind::Cgroup
                | LinkKind::Netns
                | LinkKind::Netfilter
                | LinkKind::StructOps
                | LinkKind::Sockmap
        )
    }

    /// Whether the kernel can swap this kind of link's program in place
    /// ([`Link::update`](super::Link::update)): XDP, tcx, netkit, cgroup, netns, iterator and
    /// sockmap links. For the others, attach the new program with a new
    /// link and drop or detach the old one.
    pub fn supports_update(self) -> bool {
        matches!(
            self,
            LinkKind::Xdp
                | LinkKind::Tcx
                | LinkKind::Netkit
                | LinkKind::Cgroup
                | LinkKind::Netns
                | LinkKind::Iter
                | LinkKind::Sockmap
        )
    }
}

/// The kind as messages name it (`XDP`, `raw tracepoint`, ...).
impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            LinkKind::RawTracepoint => "raw tracepoint",
            LinkKind::Tracing => "tracing",
            LinkKind::Cgroup => "cgroup",
            LinkKind::Iter => "iterator",
            LinkKind::Netns => "netns",
            LinkKind::Xdp => "XDP",
            LinkKind::PerfEvent => "perf event",
            LinkKind::KprobeMulti => "kprobe.multi",
            LinkKind::StructOps => "struct_ops",
            LinkKind::Netfilter => "netfilter",
            LinkKind::Tcx => "tcx",
            LinkKind::UprobeMulti => "uprobe.multi",
            LinkKind::Netkit => "netkit",
            LinkKind::Sockmap => "sockmap",
            LinkKind::Other(t) => return write!(f, "type-{t}"),
        };
        f.write_str(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_types_map_to_kinds_and_back_to_their_rules() {
        use bpf_link_type::*;
        assert_eq!(
            LinkKind::from_kernel_type(BPF_LINK_TYPE_XDP as u32),
            LinkKind::Xdp
        );
        assert_eq!(
            LinkKind::from_kernel_type(BPF_LINK_TYPE_RAW_TRACEPOINT as u32),
            LinkKind::RawTracepoint
        );
        assert_eq!(LinkKind::from_kernel_type(14), LinkKind::Sockmap);
        assert_eq!(LinkKind::from_kernel_type(99), LinkKind::Other(99));
        assert!(LinkKind::Tcx.supports_detach());
        for kind in [LinkKind::Tracing, LinkKind::PerfEvent, LinkKind::Other(99)] {
            assert!(!kind.supports_detach(), "{kind}");
        }
        assert_eq!(LinkKind::PerfEvent.to_string(), "perf event");
        assert_eq!(LinkKind::Other(99).to_string(), "type-99");
    }
}
