//! XDP attachment on real veth traffic, in namespaces the tests create:
//! links, netlink with the expected-program guard, query, update, pinning.

mod common;

use bpf_builder::attach::xdp::{self, Expect, XdpMode};
use bpf_builder::attach::{AttachError, Interface, Link, NetnsId, tcx};
use bpf_builder::map::MapSpec;
use bpf_builder::object::{Object, ProgramType};
use bpf_builder::sys::bpf::LinkDetail;
use common::*;
use testbed::{Marker, Netns};

/// An object with a counter array and two XDP programs, `{prefix}drop`
/// (counts in slot 0, drops) and `{prefix}pass` (counts in slot 1, passes),
/// plus `{prefix}other` (passes, no count).
fn drop_and_pass(prefix: &str) -> bpf_builder::load::Loaded {
    let mut obj = Object::new();
    let counts = obj.add_map(MapSpec::array("counts", 8, 2)).unwrap();
    obj.add_program(
        &format!("{prefix}drop"),
        ProgramType::Xdp,
        xdp_action(XDP_DROP, Some((counts, 0))),
    )
    .unwrap();
    obj.add_program(
        &format!("{prefix}pass"),
        ProgramType::Xdp,
        xdp_action(XDP_PASS, Some((counts, 1))),
    )
    .unwrap();
    obj.add_program(
        &format!("{prefix}other"),
        ProgramType::Xdp,
        xdp_action(XDP_PASS, None),
    )
    .unwrap();
    obj.load().unwrap()
}

#[test]
fn link_attached_drop_then_pass_is_seen_on_the_peer() {
    if !testbed::privileged("XDP link test") {
        return;
    }
    let prefix = "tx1_";
    {
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("va", "vb").unwrap();
        let loaded = drop_and_pass(prefix);
        let drop_p = loaded.program_by_name("tx1_drop").unwrap();
        let pass_p = loaded.program_by_name("tx1_pass").unwrap();
        let counts = loaded.map_by_name("counts").unwrap();
        let marker = Marker::new().unwrap();
        let frames: Vec<Vec<u8>> = (0..5)
            .map(|i| frame(&pair.a, &pair.b, &marker, i))
            .collect();

        // Nothing attached: everything arrives.
        assert!(ns.run(|| xdp::query("vb")).unwrap().unwrap().is_empty());
        assert_eq!(delivered(&pair.a, &pair.b, &frames, &marker).len(), 5);

        let link = ns
            .run(|| xdp::attach("vb", drop_p, XdpMode::Auto))
            .unwrap()
            .unwrap();
        let q = ns.run(|| xdp::query("vb")).unwrap().unwrap();
        assert_eq!(q.program(XdpMode::Auto), Some(drop_p.info().unwrap().id));
        assert!(delivered(&pair.a, &pair.b, &frames, &marker).is_empty());
        assert_eq!(read_u64(counts, 0), 5, "the drop program saw every frame");

        link.update(pass_p).unwrap();
        assert_eq!(link.program_id().unwrap(), Some(pass_p.info().unwrap().id));
        assert_eq!(delivered(&pair.a, &pair.b, &frames, &marker), frames);
        assert_eq!(read_u64(counts, 1), 5);

        // Dropping the handle detaches (nothing pinned it).
        drop(link);
        wait_for("XDP detached after the link handle dropped", || {
            ns.run(|| xdp::query("vb")).unwrap().unwrap().is_empty()
        });

        // Generic mode explicitly, and by ifindex.
        let ifindex = pair.b.ifindex;
        let link = ns
            .run(|| xdp::attach(ifindex, drop_p, XdpMode::Generic))
            .unwrap()
            .unwrap();
        let q = ns.run(|| xdp::query(ifindex)).unwrap().unwrap();
        assert_eq!(q.generic, Some(drop_p.info().unwrap().id));
        assert_eq!(q.driver, None);
        assert!(delivered(&pair.a, &pair.b, &frames, &marker).is_empty());
        assert_eq!(read_u64(counts, 0), 10);
        link.detach().unwrap();
        assert_eq!(delivered(&pair.a, &pair.b, &frames, &marker).len(), 5);
    }
    assert_nothing_left(prefix);
}

#[test]
fn link_attached_program_cannot_be_replaced_through_netlink() {
    if !testbed::privileged("XDP link vs netlink test") {
        return;
    }
    let prefix = "tx2_";
    {
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("va", "vb").unwrap();
        let loaded = drop_and_pass(prefix);
        let drop_p = loaded.program_by_name("tx2_drop").unwrap();
        let pass_p = loaded.program_by_name("tx2_pass").unwrap();
        let marker = Marker::new().unwrap();
        let frames = vec![frame(&pair.a, &pair.b, &marker, 0)];

        let _link = ns
            .run(|| xdp::attach("vb", drop_p, XdpMode::Auto))
            .unwrap()
            .unwrap();
        for expect in [Expect::Anything, Expect::Program(drop_p), Expect::Nothing] {
            let e = ns
                .run(|| xdp::attach_netlink("vb", pass_p, XdpMode::Auto, expect))
                .unwrap()
                .unwrap_err();
            assert!(
                matches!(e, AttachError::HookTaken { .. }),
                "{expect:?}: {e}"
            );
        }
        let e = ns
            .run(|| xdp::detach_netlink("vb", XdpMode::Auto, Expect::Anything))
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, AttachError::HookTaken { .. }), "{e}");
        // A second link neither.
        let e = ns
            .run(|| xdp::attach("vb", pass_p, XdpMode::Auto))
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, AttachError::HookTaken { .. }), "{e}");
        assert!(e.to_string().contains("vb"), "{e}");

        // Still the link's program, still dropping.
        let q = ns.run(|| xdp::query("vb")).unwrap().unwrap();
        assert_eq!(q.program(XdpMode::Auto), Some(drop_p.info().unwrap().id));
        assert!(delivered(&pair.a, &pair.b, &frames, &marker).is_empty());
    }
    assert_nothing_left(prefix);
}

#[test]
fn netlink_replacement_is_guarded_by_the_expected_program() {
    if !testbed::privileged("XDP netlink test") {
        return;
    }
    let prefix = "tx3_";
    {
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("va", "vb").unwrap();
        let loaded = drop_and_pass(prefix);
        let drop_p = loaded.program_by_name("tx3_drop").unwrap();
        let pass_p = loaded.program_by_name("tx3_pass").unwrap();
        let other = loaded.program_by_name("tx3_other").unwrap();
        let marker = Marker::new().unwrap();
        let frames = vec![frame(&pair.a, &pair.b, &marker, 0)];
        let mode = XdpMode::Generic;
        let id = |p: &bpf_builder::handle::Program| p.info().unwrap().id;

        ns.run(|| xdp::attach_netlink("vb", drop_p, mode, Expect::Nothing))
            .unwrap()
            .unwrap();
        assert!(delivered(&pair.a, &pair.b, &frames, &marker).is_empty());

        // Expecting nothing, but something is there.
        let e = ns
            .run(|| xdp::attach_netlink("vb", pass_p, mode, Expect::Nothing))
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, AttachError::HookTaken { .. }), "{e}");
        // A stale expectation: `other` was never attached.
        let e = ns
            .run(|| xdp::attach_netlink("vb", pass_p, mode, Expect::Program(other)))
            .unwrap()
            .unwrap_err();
        match &e {
            AttachError::ExpectedMismatch {
                expected, found, ..
            } => {
                assert_eq!(expected, &format!("program {}", id(other)));
                assert_eq!(found, &format!("program {}", id(drop_p)));
            }
            _ => panic!("expected a mismatch, got {e}"),
        }
        // Nothing changed.
        assert_eq!(
            ns.run(|| xdp::query("vb")).unwrap().unwrap().generic,
            Some(id(drop_p))
        );
        assert!(delivered(&pair.a, &pair.b, &frames, &marker).is_empty());
        // A link cannot take a netlink-held hook either.
        let e = ns
            .run(|| xdp::attach("vb", pass_p, mode))
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, AttachError::HookTaken { .. }), "{e}");

        // The right expectation replaces.
        ns.run(|| xdp::attach_netlink("vb", pass_p, mode, Expect::Program(drop_p)))
            .unwrap()
            .unwrap();
        assert_eq!(
            ns.run(|| xdp::query("vb")).unwrap().unwrap().generic,
            Some(id(pass_p))
        );
        assert_eq!(delivered(&pair.a, &pair.b, &frames, &marker), frames);

        // Detach is guarded the same way.
        let e = ns
            .run(|| xdp::detach_netlink("vb", XdpMode::Auto, Expect::Program(drop_p)))
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, AttachError::ExpectedMismatch { .. }), "{e}");
        ns.run(|| xdp::detach_netlink("vb", XdpMode::Auto, Expect::Program(pass_p)))
            .unwrap()
            .unwrap();
        assert!(ns.run(|| xdp::query("vb")).unwrap().unwrap().is_empty());
    }
    assert_nothing_left(prefix);
}

#[test]
fn unknown_interfaces_are_named_in_the_error() {
    if !testbed::privileged("XDP unknown interface test") {
        return;
    }
    let prefix = "tx4_";
    {
        let ns = Netns::new().unwrap();
        let loaded = drop_and_pass(prefix);
        let p = loaded.program_by_name("tx4_pass").unwrap();
        let e = ns
            .run(|| xdp::attach("nosuch0", p, XdpMode::Auto))
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, AttachError::UnknownInterface(_)), "{e}");
        assert_eq!(
            e.to_string(),
            "no interface named \"nosuch0\" in this network namespace"
        );
        let e = ns
            .run(|| Interface::from(4_000_000).resolve())
            .unwrap()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "no interface with index 4000000 in this network namespace"
        );
        let e = ns
            .run(|| xdp::attach_netlink("nosuch0", p, XdpMode::Auto, Expect::Nothing))
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, AttachError::UnknownInterface(_)), "{e}");
    }
    assert_nothing_left(prefix);
}

#[test]
fn pinned_link_outlives_its_handle_until_detached() {
    if !testbed::privileged("XDP link pinning test") {
        return;
    }
    let prefix = "tx5_";
    {
        let pin_guard = PinPath::new("xdp");
        let pin = &pin_guard.0;
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("va", "vb").unwrap();
        let loaded = drop_and_pass(prefix);
        let drop_p = loaded.program_by_name("tx5_drop").unwrap();
        let marker = Marker::new().unwrap();
        let frames = vec![frame(&pair.a, &pair.b, &marker, 0)];

        let link = ns
            .run(|| xdp::attach("vb", drop_p, XdpMode::Auto))
            .unwrap()
            .unwrap();
        let link_id = link.id().unwrap();
        link.pin(pin).unwrap();
        drop(link);
        // Still attached: the pin holds it.
        assert!(!ns.run(|| xdp::query("vb")).unwrap().unwrap().is_empty());
        assert!(delivered(&pair.a, &pair.b, &frames, &marker).is_empty());

        let link = Link::from_pin(pin).unwrap();
        let info = link.info().unwrap();
        assert_eq!(info.id, link_id);
        assert_eq!(info.prog_id, Some(drop_p.info().unwrap().id));
        assert_eq!(
            info.detail,
            LinkDetail::Xdp {
                ifindex: pair.b.ifindex
            }
        );
        std::fs::remove_file(pin).unwrap();
        link.detach().unwrap();
        assert!(ns.run(|| xdp::query("vb")).unwrap().unwrap().is_empty());
        assert_eq!(delivered(&pair.a, &pair.b, &frames, &marker), frames);
        // A pinned program is not a link.
        drop_p.pin(pin).unwrap();
        assert!(Link::from_pin(pin).is_err());
        std::fs::remove_file(pin).unwrap();
    }
    assert_nothing_left(prefix);
}

#[test]
fn an_interface_from_another_namespace_is_refused() {
    if !testbed::privileged("XDP interface namespace test") {
        return;
    }
    let prefix = "tx6_";
    {
        let ns_a = Netns::new().unwrap();
        let ns_b = Netns::new().unwrap();
        let in_a = ns_a.veth_pair("va", "vb").unwrap();
        // B has devices too: an index of A may well name one of them.
        let _in_b = ns_b.veth_pair("va", "vb").unwrap();
        let loaded = drop_and_pass(prefix);
        let p = loaded.program_by_name("tx6_pass").unwrap();
        let ifindex = in_a.b.ifindex;
        let (a, by_index, by_name) = ns_a
            .run(|| {
                (
                    NetnsId::current().unwrap(),
                    Interface::from(ifindex),
                    Interface::from("vb"),
                )
            })
            .unwrap();
        let b = ns_b.run(|| NetnsId::current().unwrap()).unwrap();
        assert_ne!(a, b);
        assert_eq!(by_index.netns(), Some(a));
        // Made in B, the same index resolves to B's own device.
        assert!(
            ns_b.run(|| Interface::from(ifindex).resolve())
                .unwrap()
                .is_ok()
        );

        // Used in B, A's interface is refused, by index or by name, for
        // every use.
        let e = ns_b
            .run(|| xdp::attach(by_index.clone(), p, XdpMode::Generic))
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, AttachError::OtherNamespace { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "ifindex {ifindex} was given in network namespace {a}, but this thread is in \
                 {b}: an interface name or index means a device only in its own namespace \
                 (make the Interface on a thread in that namespace)"
            )
        );
        let e = ns_b
            .run(|| xdp::attach(by_name.clone(), p, XdpMode::Generic))
            .unwrap()
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("vb was given in network namespace {a}")),
            "{e}"
        );
        for e in [
            ns_b.run(|| xdp::query(by_index.clone()).map(drop)),
            ns_b.run(|| by_name.device_type().map(drop)),
            ns_b.run(|| tcx::query(by_index.clone(), tcx::Hook::Ingress).map(drop)),
        ] {
            let e = e.unwrap().unwrap_err();
            assert!(matches!(e, AttachError::OtherNamespace { .. }), "{e}");
        }
        assert!(ns_b.run(|| xdp::query("vb")).unwrap().unwrap().is_empty());

        // In A, where it was made, it attaches.
        let link = ns_a
            .run(|| xdp::attach(by_index.clone(), p, XdpMode::Generic))
            .unwrap()
            .unwrap();
        let q = ns_a.run(|| xdp::query(by_name.clone())).unwrap().unwrap();
        assert_eq!(q.mode_of(p.id().unwrap()), Some(XdpMode::Generic));
        link.detach().unwrap();
    }
    assert_nothing_left(prefix);
}

/// A namespace recorded by its id is found again (by its `ip netns`
/// name, or through a process in it) and names its own devices, whatever
/// device has that index in the caller's; a namespace that nothing but an
/// open file keeps alive is not found.
#[test]
fn a_recorded_namespace_is_found_and_names_its_devices() {
    use bpf_builder::sys::netns::{NetnsFile, if_indextoname};
    if !testbed::privileged("network namespace lookup test") {
        return;
    }
    let ns_a = Netns::new().unwrap();
    let ns_b = Netns::new().unwrap();
    // The same index names different devices in A and B.
    for (ns, name, peer) in [(&ns_a, "nsfa", "nsfa2"), (&ns_b, "nsfb", "nsfb2")] {
        ns.ip(&[
            "link", "add", "name", name, "index", "40", "type", "veth", "peer", "name", peer,
        ])
        .unwrap();
    }
    let a = ns_a.run(|| NetnsId::current().unwrap()).unwrap();
    assert_ne!(a, NetnsId::current().unwrap());

    let found = NetnsFile::find(a).expect("found under /run/netns");
    assert_eq!(found.id(), a);
    assert_eq!(found.name(), Some(ns_a.name()));
    assert_eq!(found.run(|| if_indextoname(40).unwrap()).unwrap(), "nsfa");
    // The caller's thread stayed where it was; from B, A is found too.
    assert_ne!(NetnsId::current().unwrap(), a);
    let from_b = ns_b
        .run(|| {
            let f = NetnsFile::find(a).unwrap();
            (
                if_indextoname(40).unwrap(),
                f.run(|| if_indextoname(40).unwrap()).unwrap(),
            )
        })
        .unwrap();
    assert_eq!(from_b, ("nsfb".to_string(), "nsfa".to_string()));

    // Only a process in it: found through /proc, without a name.
    let sleeper = Killed(
        std::process::Command::new("unshare")
            .args(["--net", "sleep", "60"])
            .spawn()
            .unwrap(),
    );
    let path = format!("/proc/{}/ns/net", sleeper.0.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let c = loop {
        // unshare has made the namespace once its file differs from ours.
        let c = NetnsFile::open(&path).unwrap().id();
        if c != NetnsId::current().unwrap() || std::time::Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert_ne!(c, NetnsId::current().unwrap());
    let found = NetnsFile::find(c).expect("found through the process");
    assert_eq!(found.name(), None);
    assert_eq!(found.run(|| if_indextoname(1).unwrap()).unwrap(), "lo");
    drop((found, sleeper));

    // Kept alive only by an open file: not found.
    let held = NetnsFile::open(format!("/run/netns/{}", ns_b.name())).unwrap();
    let b = held.id();
    testbed_ip(&["netns", "del", ns_b.name()]);
    assert!(NetnsFile::find(b).is_none());
    assert_eq!(held.run(|| if_indextoname(40).unwrap()).unwrap(), "nsfb");
}

/// A child process, killed and reaped when dropped (also when the test
/// fails).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `ip args...`, which must succeed.
fn testbed_ip(args: &[&str]) {
    let o = std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
