//! XDP programs that declare fragment support (`BPF_F_XDP_HAS_FRAGS`):
//! a veth at jumbo MTU refuses XDP programs without it and takes them with
//! it; such a program sees a jumbo frame whole through
//! `bpf_xdp_get_buff_len`, both on the wire and under `BPF_PROG_TEST_RUN`.

mod common;

use bpf_builder::asm::{Asm, Code};
use bpf_builder::attach::AttachError;
use bpf_builder::attach::xdp::{self, XdpMode};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, Reg::*, Size};
use bpf_builder::insn::{JmpOp, Reg};
use bpf_builder::load::Loaded;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgramType};
use bpf_builder::run::TestRun;
use common::*;
use testbed::{Marker, Netns};

/// MTU that needs several buffers per frame on a veth with XDP.
const JUMBO_MTU: &str = "9000";

/// `lens` slot of the whole frame length (`bpf_xdp_get_buff_len`).
const SLOT_WHOLE: u32 = 0;
/// `lens` slot of the first buffer's length (`data_end - data`).
const SLOT_LINEAR: u32 = 1;

/// Stores `value` into the u64 at array index `slot` of `map`; jumps to
/// `skip` if the lookup fails. Clobbers R0-R5.
fn store(a: &mut Asm, map: MapId, slot: u32, value: Reg, skip: bpf_builder::asm::Label) {
    a.st(Size::W, R10, -4, slot as i32);
    a.ld_map_fd(R1, map);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, skip);
    a.stx(Size::DW, R0, 0, value);
}

/// For test frames: stores the whole length and the first buffer's
/// length into `lens`; passes everything.
fn measure(lens: MapId) -> Code {
    let mut a = Asm::new();
    let pass = a.new_label();
    a.mov64(R6, R1);
    a.ldx(Size::W, R2, R1, 0);
    a.ldx(Size::W, R3, R1, 4);
    require_test_frame(&mut a, pass);
    a.mov64(R7, R3);
    a.alu64(AluOp::Sub, R7, R2);
    a.mov64(R1, R6);
    a.call(Helper::XdpGetBuffLen);
    a.mov64(R8, R0);
    store(&mut a, lens, SLOT_WHOLE, R8, pass);
    store(&mut a, lens, SLOT_LINEAR, R7, pass);
    a.bind(pass);
    a.mov64(R0, XDP_PASS);
    a.exit();
    a.finish().unwrap()
}

/// Loads `{prefix}plain` (no fragment support) and `{prefix}frags` (with
/// it), the same code, sharing the `lens` array.
fn plain_and_frags(prefix: &str) -> Loaded {
    let mut obj = Object::new();
    let lens = obj.add_map(MapSpec::array("lens", 8, 2)).unwrap();
    obj.add_program(&format!("{prefix}plain"), ProgramType::Xdp, measure(lens))
        .unwrap();
    let frags = obj
        .add_program(&format!("{prefix}frags"), ProgramType::Xdp, measure(lens))
        .unwrap();
    obj.set_xdp_frags(frags, true).unwrap();
    obj.load().unwrap()
}

/// A test frame of `len` bytes from `src` to `dst`, carrying `marker`.
fn jumbo_frame(dst: [u8; 6], src: [u8; 6], marker: &Marker, len: usize) -> Vec<u8> {
    let mut payload = marker.as_bytes().to_vec();
    // A pattern, so that a frame put back together wrongly differs.
    payload.extend((0..len - 14 - 16).map(|i| (i % 251) as u8));
    testbed::ethernet_frame(dst, src, ETHERTYPE_TEST, &payload)
}

#[test]
fn jumbo_veth_takes_only_programs_with_fragment_support() {
    if !testbed::privileged("XDP fragments test") || !require_bpf() {
        return;
    }
    let prefix = "tfr1_";
    {
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("va", "vb").unwrap();
        for end in ["va", "vb"] {
            ns.ip(&["link", "set", "dev", end, "mtu", JUMBO_MTU])
                .unwrap();
        }
        let loaded = plain_and_frags(prefix);
        let plain = loaded.program_by_name("tfr1_plain").unwrap();
        let frags = loaded.program_by_name("tfr1_frags").unwrap();
        let lens = loaded.map_by_name("lens").unwrap();

        let e = ns
            .run(|| xdp::attach("vb", plain, XdpMode::Driver))
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(&e, AttachError::Sys { source, .. } if source.raw_os_error() == Some(libc::ERANGE)),
            "{e:?}"
        );
        assert!(
            e.to_string().contains("without fragment support"),
            "the error says why: {e}"
        );
        assert!(ns.run(|| xdp::query("vb")).unwrap().unwrap().is_empty());

        let link = ns
            .run(|| xdp::attach("vb", frags, XdpMode::Driver))
            .unwrap()
            .unwrap();
        let q = ns.run(|| xdp::query("vb")).unwrap().unwrap();
        assert_eq!(q.driver, Some(frags.info().unwrap().id));

        // An 8000-byte frame arrives whole, and the program saw all of it
        // although its first buffer held only part.
        let marker = Marker::new().unwrap();
        let frame = jumbo_frame(pair.b.mac, pair.a.mac, &marker, 8000);
        let got = delivered(&pair.a, &pair.b, std::slice::from_ref(&frame), &marker);
        assert_eq!(got, [frame], "the frame passed whole");
        assert_eq!(read_u64(lens, SLOT_WHOLE), 8000);
        let linear = read_u64(lens, SLOT_LINEAR);
        assert!(
            (14..8000).contains(&linear),
            "the first buffer holds {linear} bytes: a multi-buffer frame"
        );
        link.detach().unwrap();
    }
    assert_nothing_left(prefix);
}

#[test]
fn test_run_of_a_frags_program_sees_the_whole_input() {
    if !require_bpf() {
        return;
    }
    let prefix = "tfr2_";
    {
        let loaded = plain_and_frags(prefix);
        let frags = loaded.program_by_name("tfr2_frags").unwrap();
        let lens = loaded.map_by_name("lens").unwrap();
        let marker = Marker::new().unwrap();
        let input = jumbo_frame([2; 6], [4; 6], &marker, 6000);

        let out = frags.test_run(&TestRun::new(&input)).unwrap();
        assert_eq!(out.retval, XDP_PASS as u32);
        assert_eq!(out.data, input, "the fragments come back in order");
        assert_eq!(read_u64(lens, SLOT_WHOLE), 6000);
        let linear = read_u64(lens, SLOT_LINEAR);
        assert!(
            (14..6000).contains(&linear),
            "the kernel split the input: first buffer of {linear} bytes"
        );
    }
    assert_nothing_left(prefix);
}
