//! What the XDP mode changes for frames redirected out of a veth, shown on
//! real traffic: in driver mode (what `XdpMode::Auto` picks on a veth) the
//! target's peer drops them silently unless it has an XDP program of its
//! own; in generic mode they arrive either way. The documentation of
//! `XdpMode` rests on this test.

mod common;

use bpf_builder::asm::{Asm, Code};
use bpf_builder::attach::xdp::{self, XdpMode};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::Reg::*;
use bpf_builder::insn::Size;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgramType};
use common::*;
use testbed::{Marker, Netns};

/// XDP: counts test frames in slot 0 of `counts` and redirects them out
/// of `ifindex` (`bpf_redirect`); passes the rest.
fn redirect_to(ifindex: u32, counts: MapId) -> Code {
    let mut a = Asm::new();
    let (other, send) = (a.new_label(), a.new_label());
    a.ldx(Size::W, R2, R1, 0);
    a.ldx(Size::W, R3, R1, 4);
    require_test_frame(&mut a, other);
    count(&mut a, counts, 0, send);
    a.bind(send);
    a.mov64(R1, ifindex as i32);
    a.mov64(R2, 0);
    a.call(Helper::Redirect);
    a.exit();
    a.bind(other);
    a.mov64(R0, XDP_PASS);
    a.exit();
    a.finish().unwrap()
}

#[test]
fn driver_mode_redirect_to_a_veth_arrives_only_with_a_program_on_its_peer() {
    if !testbed::privileged("XDP mode redirect test") {
        return;
    }
    let prefix = "tm1_";
    {
        let ns = Netns::new().unwrap();
        // Frames enter at `ib`, whose program sends them out of `oa`;
        // `ob`, the peer of `oa`, is where they should arrive.
        let ing = ns.veth_pair("ia", "ib").unwrap();
        let out = ns.veth_pair("oa", "ob").unwrap();

        let mut obj = Object::new();
        let counts = obj.add_map(MapSpec::array("counts", 8, 2)).unwrap();
        let redirect = obj
            .add_program(
                "tm1_redirect",
                ProgramType::Xdp,
                redirect_to(out.a.ifindex, counts),
            )
            .unwrap();
        let peer = obj
            .add_program(
                "tm1_peer",
                ProgramType::Xdp,
                xdp_action(XDP_PASS, Some((counts, 1))),
            )
            .unwrap();
        let loaded = obj.load().unwrap();
        let (redirect, peer) = (loaded.program(redirect), loaded.program(peer));
        let counts = loaded.map(counts);
        let marker = Marker::new().unwrap();
        let frames: Vec<Vec<u8>> = (0..3).map(|i| frame(&ing.a, &ing.b, &marker, i)).collect();

        // Auto: the kernel picks driver mode on a veth.
        let link = ns
            .run(|| xdp::attach("ib", redirect, XdpMode::Auto))
            .unwrap()
            .unwrap();
        let q = ns.run(|| xdp::query("ib")).unwrap().unwrap();
        assert_eq!(q.mode_of(redirect.id().unwrap()), Some(XdpMode::Driver));
        assert_eq!(q.mode_of(peer.id().unwrap()), None);

        // No program on `ob`: redirected, then dropped without a word.
        assert!(delivered(&ing.a, &out.b, &frames, &marker).is_empty());
        assert_eq!(read_u64(counts, 0), 3, "the program redirected them");

        // A program on `ob` (passing everything): they arrive, through it.
        let peer_link = ns
            .run(|| xdp::attach("ob", peer, XdpMode::Driver))
            .unwrap()
            .unwrap();
        assert_eq!(delivered(&ing.a, &out.b, &frames, &marker), frames);
        assert_eq!(read_u64(counts, 0), 6);
        assert_eq!(read_u64(counts, 1), 3, "the peer's program saw them");
        peer_link.detach().unwrap();
        link.detach().unwrap();

        // Generic mode: they arrive without a program on `ob`.
        let link = ns
            .run(|| xdp::attach("ib", redirect, XdpMode::Generic))
            .unwrap()
            .unwrap();
        let q = ns.run(|| xdp::query("ib")).unwrap().unwrap();
        assert_eq!(q.mode_of(redirect.id().unwrap()), Some(XdpMode::Generic));
        assert_eq!(delivered(&ing.a, &out.b, &frames, &marker), frames);
        assert_eq!(read_u64(counts, 0), 9);
        assert_eq!(read_u64(counts, 1), 3, "no program ran on the peer");
        link.detach().unwrap();
    }
    assert_nothing_left(prefix);
}
