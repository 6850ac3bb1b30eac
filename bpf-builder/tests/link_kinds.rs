//! `Link` per kind on the real kernel: XDP and tcx links detach on
//! request even when pinned or held by other fds; a raw tracepoint link
//! (which the kernel cannot detach on request) detaches when its last
//! reference goes, and `Link::detach` says when a pin still holds it.

mod common;

use bpf_builder::attach::tcx::{self, Hook, TcxOptions};
use bpf_builder::attach::xdp::{self, XdpMode};
use bpf_builder::attach::{AttachError, Link, LinkKind};
use bpf_builder::insn::{Insn, Reg};
use bpf_builder::object::{Object, ProgramType};
use bpf_builder::sys::bpf::{self as sys, LinkDetail, ProgLoadAttr, bpf_prog_type};
use common::*;
use testbed::Netns;

#[test]
fn xdp_and_tcx_links_detach_now_even_when_pinned_and_shared() {
    if !testbed::privileged("link detach test") {
        return;
    }
    let prefix = "tk1_";
    {
        let pins = [PinPath::new("tk1_xdp"), PinPath::new("tk1_tcx")];
        let ns = Netns::new().unwrap();
        ns.veth_pair("va", "vb").unwrap();
        let mut obj = Object::new();
        let x = obj
            .add_program("tk1_xdp", ProgramType::Xdp, ret(XDP_PASS))
            .unwrap();
        let t = obj
            .add_program("tk1_tcx", ProgramType::TcxIngress, ret(0))
            .unwrap();
        let loaded = obj.load().unwrap();
        let links = ns
            .run(|| -> Result<_, AttachError> {
                Ok([
                    xdp::attach("vb", loaded.program(x), XdpMode::Generic)?,
                    tcx::attach("vb", Hook::Ingress, loaded.program(t), &TcxOptions::new())?,
                ])
            })
            .unwrap()
            .unwrap();
        for ((link, kind), pin) in links
            .into_iter()
            .zip([LinkKind::Xdp, LinkKind::Tcx])
            .zip(&pins)
        {
            assert_eq!(link.kind().unwrap(), kind);
            assert!(kind.supports_detach() && kind.supports_update(), "{kind}");
            // Held by a pin and a second fd, and detached all the same.
            link.pin(&pin.0).unwrap();
            let other = link.try_clone().unwrap();
            link.detach().unwrap();
            // Defunct: no device any more (the program id stays).
            let pinned = Link::from_pin(&pin.0).unwrap();
            for l in [&other, &pinned] {
                match l.info().unwrap().detail {
                    LinkDetail::Xdp { ifindex } | LinkDetail::Tcx { ifindex, .. } => {
                        assert_eq!(ifindex, 0, "{kind}")
                    }
                    LinkDetail::Other => panic!("{kind}: no device detail"),
                }
            }
        }
        assert!(ns.run(|| xdp::query("vb")).unwrap().unwrap().is_empty());
        let chain = ns.run(|| tcx::query("vb", Hook::Ingress)).unwrap().unwrap();
        assert!(chain.entries.is_empty(), "{chain:?}");
    }
    assert_nothing_left(prefix);
}

/// A raw tracepoint program (`r0 = 0; exit`) named `name`, attached to
/// `xdp_exception`, which nothing in the tests fires.
fn raw_tracepoint_link(name: &str) -> (std::os::fd::OwnedFd, Link) {
    let insns = [Insn::mov64(Reg::R0, 0), Insn::exit()];
    let mut attr = ProgLoadAttr::new(
        bpf_prog_type::BPF_PROG_TYPE_RAW_TRACEPOINT as u32,
        &insns,
        GPL,
    );
    attr.name = name;
    let prog = sys::prog_load(&attr).unwrap();
    let link = sys::raw_tracepoint_open(c"xdp_exception", &prog).unwrap();
    (prog, Link::from_fd(link))
}

#[test]
fn a_raw_tracepoint_link_detaches_when_its_last_reference_goes() {
    // Root: the check that the link is gone looks it up by id.
    if !testbed::privileged("raw tracepoint link test") {
        return;
    }
    let prefix = "tk2_";
    {
        let pin = PinPath::new("tk2_rawtp");
        let (prog, link) = raw_tracepoint_link("tk2_rawtp");
        let kind = link.kind().unwrap();
        assert_eq!(kind, LinkKind::RawTracepoint);
        assert!(!kind.supports_detach() && !kind.supports_update());
        // The kernel fact behind it: no BPF_LINK_DETACH for this kind.
        let e = sys::link_detach(&link).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP), "{e}");
        // Nor a program swap.
        let same = bpf_builder::handle::Program::from_fd(prog.try_clone().unwrap()).unwrap();
        let e = link.update(&same).unwrap_err();
        assert!(matches!(e, AttachError::Unsupported { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "a raw tracepoint link cannot swap its program: attach `tk2_rawtp` with a new link \
             and detach this one"
        );

        // Only this handle: detach closes it and the link is gone.
        let id = link.id().unwrap();
        link.detach().unwrap();
        assert_eq!(
            sys::link_get_fd_by_id(id).unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );

        // Pinned: detach closes this handle but cannot detach; it says so.
        let (_prog, link) = raw_tracepoint_link("tk2_rawtp");
        let id = link.id().unwrap();
        link.pin(&pin.0).unwrap();
        let e = link.detach().unwrap_err();
        assert!(
            matches!(e, AttachError::StillHeld { kind: LinkKind::RawTracepoint, id: i } if i == id),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            format!(
                "raw tracepoint link {id} is still attached: the kernel detaches this kind of \
                 link only when its last reference goes, and a pin in bpffs or another fd still \
                 holds it after this handle was closed (remove the pin, close the other fds)"
            )
        );
        assert!(links_of(prefix).contains(&id), "still attached");
        // Removing the pin drops the last reference (the kernel frees the
        // link from a work queue, shortly after).
        std::fs::remove_file(&pin.0).unwrap();
        wait_for("the unpinned link is gone", || {
            sys::link_get_fd_by_id(id).is_err()
        });
    }
    assert_nothing_left(prefix);
}
