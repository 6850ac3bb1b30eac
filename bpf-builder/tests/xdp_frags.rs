//! XDP programs that declare fragment support (`BPF_F_XDP_HAS_FRAGS`):
//! a veth at jumbo MTU refuses XDP programs without it and takes them with
//! it; such a program sees a jumbo frame whole through
//! `bpf_xdp_get_buff_len`, both on the wire and under `BPF_PROG_TEST_RUN`.

mod common;

use bpf_builder::asm::{Asm, Code};
use bpf_builder::attach::AttachError;
use bpf_builder::attach::xdp::{self, XdpMode};
use bpf_builder::handle::Program;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, Reg::*, Size};
use bpf_builder::insn::{JmpOp, Reg};
use bpf_builder::load::{LoadError, Loaded};
use bpf_builder::map::{InitValue, MapSpec, MapType};
use bpf_builder::object::{MapId, Object, ObjectError, ProgramType};
use bpf_builder::run::TestRun;
use common::*;
use std::os::fd::AsFd;
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

/// A namespace with a veth pair `va`-`vb`, both ends at [`JUMBO_MTU`].
fn jumbo_veth() -> (Netns, testbed::VethPair) {
    let ns = Netns::new().unwrap();
    let pair = ns.veth_pair("va", "vb").unwrap();
    for end in ["va", "vb"] {
        ns.ip(&["link", "set", "dev", end, "mtu", JUMBO_MTU])
            .unwrap();
    }
    (ns, pair)
}

/// Asserts that `e` is the attach error of a program without fragment
/// support on a jumbo device.
fn assert_mtu_refusal(e: &AttachError) {
    assert!(
        matches!(e, AttachError::Sys { source, .. } if source.raw_os_error() == Some(libc::ERANGE)),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("without fragment support"),
        "the error says why: {e}"
    );
}

#[test]
fn jumbo_veth_takes_only_programs_with_fragment_support() {
    if !testbed::privileged("XDP fragments test") || !require_bpf() {
        return;
    }
    let prefix = "tfr1_";
    {
        let (ns, pair) = jumbo_veth();
        let loaded = plain_and_frags(prefix);
        let plain = loaded.program_by_name("tfr1_plain").unwrap();
        let frags = loaded.program_by_name("tfr1_frags").unwrap();
        let lens = loaded.map_by_name("lens").unwrap();

        let e = ns
            .run(|| xdp::attach("vb", plain, XdpMode::Driver))
            .unwrap()
            .unwrap_err();
        assert_mtu_refusal(&e);
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

/// Attaching `prog` to the jumbo `vb` of `ns` works exactly when
/// `expect_frags`; `who` names the loader in failure messages.
fn check_on_jumbo(ns: &Netns, prog: &Program, expect_frags: bool, who: &str) {
    let r = ns.run(|| xdp::attach("vb", prog, XdpMode::Driver)).unwrap();
    match (r, expect_frags) {
        (Ok(link), true) => link.detach().unwrap(),
        (Err(e), false) => assert_mtu_refusal(&e),
        (Ok(_), false) => panic!("{who}: a program without fragment support attached"),
        (Err(e), true) => panic!("{who}: the xdp.frags program was refused: {e}"),
    }
}

#[test]
fn libbpf_and_aya_load_our_xdp_frags_sections_with_the_flag() {
    if !testbed::privileged("XDP fragments ELF test") || !require_bpf() {
        return;
    }
    let prefix = "tfr3_";
    {
        let mut obj = Object::new();
        let ret = |v| {
            let mut a = Asm::new();
            a.mov64(R0, v);
            a.exit();
            a.finish().unwrap()
        };
        obj.add_program("tfr3_plain", ProgramType::Xdp, ret(XDP_PASS))
            .unwrap();
        let frags = obj
            .add_program("tfr3_frags", ProgramType::Xdp, ret(XDP_PASS))
            .unwrap();
        obj.set_xdp_frags(frags, true).unwrap();
        let bytes = obj.to_elf().unwrap();
        let (ns, _pair) = jumbo_veth();

        // libbpf, through bpftool.
        let scratch = Scratch::new("frags", "loadall");
        scratch.bpftool_loadall(&bytes);
        for (name, expect_frags) in [("tfr3_plain", false), ("tfr3_frags", true)] {
            let prog = Program::from_pin(scratch.pins.join(name)).unwrap();
            check_on_jumbo(&ns, &prog, expect_frags, &format!("bpftool {name}"));
        }

        // aya.
        let mut ebpf = aya::Ebpf::load(&bytes).expect("aya loads the object");
        for (name, expect_frags) in [("tfr3_plain", false), ("tfr3_frags", true)] {
            let prog: &mut aya::programs::Xdp = ebpf
                .program_mut(name)
                .expect(name)
                .try_into()
                .expect("an XDP program");
            prog.load().expect("aya loads it");
            let fd = prog.fd().unwrap().as_fd().try_clone_to_owned().unwrap();
            let prog = Program::from_fd(fd).unwrap();
            check_on_jumbo(&ns, &prog, expect_frags, &format!("aya {name}"));
        }
    }
    assert_nothing_left(prefix);
}

/// An object whose map (`{prefix}m`) holds `entry` and is used by `main`,
/// loaded.
fn load_holder(
    prefix: &str,
    map: MapSpec,
    main_frags: bool,
    entry_frags: bool,
) -> Result<Loaded, LoadError> {
    let mut o = Object::new();
    let kind = map.map_type;
    let m = o.add_map(map).unwrap();
    let mut a = Asm::new();
    a.ld_map_fd(R1, m);
    a.mov64(R0, XDP_PASS);
    a.exit();
    let main = o
        .add_program(
            &format!("{prefix}main"),
            ProgramType::Xdp,
            a.finish().unwrap(),
        )
        .unwrap();
    let entry_type = match kind {
        MapType::ProgArray => ProgramType::Xdp,
        MapType::CpuMap => ProgramType::XdpCpumap,
        _ => ProgramType::XdpDevmap,
    };
    let mut a = Asm::new();
    a.mov64(R0, XDP_PASS);
    a.exit();
    let entry = o
        .add_program(&format!("{prefix}entry"), entry_type, a.finish().unwrap())
        .unwrap();
    o.set_xdp_frags(main, main_frags).unwrap();
    o.set_xdp_frags(entry, entry_frags).unwrap();
    let value = match kind {
        MapType::ProgArray => InitValue::Prog(entry),
        MapType::CpuMap => InitValue::CpuWithProg {
            qsize: 64,
            prog: entry,
        },
        // Loopback: always there, ifindex 1.
        _ => InitValue::DevWithProg {
            ifindex: 1,
            prog: entry,
        },
    };
    o.add_map_entry(m, 0u32.to_ne_bytes(), value).unwrap();
    o.load()
}

#[test]
fn maps_of_programs_load_when_their_programs_agree_on_fragments() {
    if !require_bpf() {
        return;
    }
    let prefix = "tfr4_";
    {
        for map in [
            MapSpec::prog_array("m", 2),
            MapSpec::devmap("m", 2),
            MapSpec::cpumap("m", 2),
        ] {
            let t = map.map_type;
            let loaded = load_holder(prefix, map.clone(), true, true)
                .unwrap_or_else(|e| panic!("{t:?}, all with fragments: {e}"));
            drop(loaded);
            // Refused before the kernel, with the names.
            match load_holder(prefix, map, true, false) {
                Err(LoadError::Object(ObjectError::MixedFrags { with, without, .. })) => {
                    assert_eq!(
                        (with.as_str(), without.as_str()),
                        ("tfr4_main", "tfr4_entry")
                    );
                }
                other => panic!("{t:?}: expected MixedFrags, got {other:?}"),
            }
        }
        // The kernel lets any program use a devmap-hash; only what it
        // holds must agree. Not refused beyond what the kernel refuses.
        load_holder(prefix, MapSpec::devmap_hash("m", 2), true, false)
            .expect("a frags program may use a devmap-hash of plain programs");
    }
    assert_nothing_left(prefix);
}
