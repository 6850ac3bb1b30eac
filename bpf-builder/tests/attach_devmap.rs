//! devmap/devmap-hash entries with their own egress programs, cpumap
//! entries with a program, and 500 veth pairs each with its own generated
//! egress program in one devmap, on real traffic.

mod common;

use bpf_builder::asm::{Asm, Code};
use bpf_builder::attach::xdp::{self, XdpMode};
use bpf_builder::attach::{self, AttachError, CpumapEntry, DevmapEntry};
use bpf_builder::handle::{MapError, UpdateFlags};
use bpf_builder::insn::{JmpOp, Reg::*, Size};
use bpf_builder::load::LoadError;
use bpf_builder::map::{InitValue, MapSpec};
use bpf_builder::object::{Object, ProgramType};
use common::*;
use testbed::{Link, Marker, Netns};

/// The source MAC the rewriting egress programs write, but for the last
/// two bytes, which hold the program's number (big endian).
const REWRITTEN: [u8; 4] = [0x02, 0x00, 0x00, 0x00];

/// Egress program `n`: source MAC := 02:00:00:00:nn:nn; passes.
fn rewrite_src(n: u16) -> Code {
    let mut a = Asm::new();
    let out = a.new_label();
    a.ldx(Size::W, R2, R1, 0);
    a.ldx(Size::W, R3, R1, 4);
    a.mov64(R4, R2);
    a.add64(R4, 14);
    a.jmp(JmpOp::Gt, R4, R3, out);
    a.st(Size::W, R2, 6, i32::from_le_bytes(REWRITTEN));
    a.st(
        Size::H,
        R2,
        10,
        i32::from(u16::from_le_bytes(n.to_be_bytes())),
    );
    a.bind(out);
    a.mov64(R0, XDP_PASS);
    a.exit();
    a.finish().unwrap()
}

/// A test frame whose payload starts with the u16 redirect key.
fn keyed_frame(tx: &Link, rx: &Link, marker: &Marker, key: u16) -> Vec<u8> {
    let mut payload = key.to_ne_bytes().to_vec();
    payload.extend_from_slice(marker.as_bytes());
    payload.resize(46, 0);
    testbed::ethernet_frame(rx.mac, tx.mac, ETHERTYPE_TEST, &payload)
}

fn devmap_egress(hash: bool, prefix: &str) {
    {
        let ns = Netns::new().unwrap();
        let ing = ns.veth_pair("ia", "ib").unwrap();
        let out1 = ns.veth_pair("o1a", "o1b").unwrap();
        let out2 = ns.veth_pair("o2a", "o2b").unwrap();

        let mut obj = Object::new();
        let spec = if hash {
            MapSpec::devmap_hash("ports", 8)
        } else {
            MapSpec::devmap("ports", 8)
        };
        let ports = obj.add_map(spec).unwrap();
        let counts = obj.add_map(MapSpec::array("counts", 8, 1)).unwrap();
        let n = |s: &str| format!("{prefix}{s}");
        obj.add_program(&n("in"), ProgramType::Xdp, redirect(ports))
            .unwrap();
        obj.add_program(&n("rewrite"), ProgramType::XdpDevmap, rewrite_src(0x0101))
            .unwrap();
        obj.add_program(
            &n("drop"),
            ProgramType::XdpDevmap,
            xdp_action(XDP_DROP, Some((counts, 0))),
        )
        .unwrap();
        let loaded = obj.load().unwrap();
        let p = |s: &str| loaded.program_by_name(&n(s)).unwrap();
        let ports = loaded.map(ports);

        ns.run(|| -> Result<(), AttachError> {
            attach::set_devmap_entry(ports, 0, "o1a", Some(p("rewrite")))?;
            attach::set_devmap_entry(ports, 1, "o2a", Some(p("drop")))?;
            attach::set_devmap_entry(ports, 2, "o1a", None)?;
            Ok(())
        })
        .unwrap()
        .unwrap();
        // Read back: the program's id where its fd was written.
        let id = |s: &str| Some(p(s).info().unwrap().id);
        assert_eq!(
            attach::devmap_entry(ports, 0).unwrap(),
            Some(DevmapEntry {
                ifindex: out1.a.ifindex,
                prog_id: id("rewrite")
            })
        );
        assert_eq!(
            attach::devmap_entry(ports, 1).unwrap(),
            Some(DevmapEntry {
                ifindex: out2.a.ifindex,
                prog_id: id("drop")
            })
        );
        assert_eq!(
            attach::devmap_entry(ports, 2).unwrap(),
            Some(DevmapEntry {
                ifindex: out1.a.ifindex,
                prog_id: None
            })
        );
        assert_eq!(attach::devmap_entry(ports, 3).unwrap(), None);
        // An ingress-type program is refused as an entry program, and an
        // unknown device as a target; both before the kernel is asked.
        let err = ns
            .run(|| attach::set_devmap_entry(ports, 3, "o1a", Some(p("in"))))
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, AttachError::WrongProgram { .. }), "{err}");
        let err = ns
            .run(|| attach::set_devmap_entry(ports, 3, "nosuch0", None))
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, AttachError::UnknownInterface(_)), "{err}");
        assert_eq!(attach::devmap_entry(ports, 3).unwrap(), None);

        let _in = ns
            .run(|| xdp::attach("ib", p("in"), XdpMode::Generic))
            .unwrap()
            .unwrap();
        let marker = Marker::new().unwrap();
        // Key 0: out of o1a, source MAC rewritten by the entry's program.
        let f0: Vec<Vec<u8>> = (0..3)
            .map(|_| keyed_frame(&ing.a, &ing.b, &marker, 0))
            .collect();
        let got = testbed::send_and_collect(&ing.a, &out1.b, &f0, &marker, TIMEOUT).unwrap();
        assert_eq!(got.len(), 3);
        for g in &got {
            assert_eq!(g[6..12], [2, 0, 0, 0, 1, 1], "source MAC rewritten");
            assert_eq!(g[12..], f0[0][12..], "the rest unchanged");
        }
        // Key 1: the entry's program drops what would go out of o2a.
        let f1: Vec<Vec<u8>> = (0..3)
            .map(|_| keyed_frame(&ing.a, &ing.b, &marker, 1))
            .collect();
        let got = testbed::send_and_collect(&ing.a, &out2.b, &f1, &marker, TIMEOUT).unwrap();
        assert!(got.is_empty(), "dropped on egress: {got:?}");
        assert_eq!(read_u64(loaded.map(counts), 0), 3);
        // Key 2: same device, no program: unchanged.
        let f2 = vec![keyed_frame(&ing.a, &ing.b, &marker, 2)];
        let got = testbed::send_and_collect(&ing.a, &out1.b, &f2, &marker, TIMEOUT).unwrap();
        assert_eq!(got, f2);
    }
    assert_nothing_left(prefix);
}

#[test]
fn devmap_entries_run_their_own_egress_programs() {
    if !testbed::privileged("devmap egress test") {
        return;
    }
    devmap_egress(false, "td1_");
}

#[test]
fn devmap_hash_entries_run_their_own_egress_programs() {
    if !testbed::privileged("devmap-hash egress test") {
        return;
    }
    devmap_egress(true, "td2_");
}

#[test]
fn cpumap_entry_program_runs() {
    if !testbed::privileged("cpumap test") {
        return;
    }
    let prefix = "td4_";
    {
        let ns = Netns::new().unwrap();
        let ing = ns.veth_pair("ia", "ib").unwrap();
        let mut obj = Object::new();
        let cpus = obj.add_map(MapSpec::cpumap("cpus", 1)).unwrap();
        let counts = obj.add_map(MapSpec::array("counts", 8, 1)).unwrap();
        obj.add_program("td4_in", ProgramType::Xdp, redirect(cpus))
            .unwrap();
        obj.add_program(
            "td4_oncpu",
            ProgramType::XdpCpumap,
            xdp_action(XDP_PASS, Some((counts, 0))),
        )
        .unwrap();
        let loaded = obj.load().unwrap();
        let oncpu = loaded.program_by_name("td4_oncpu").unwrap();
        let cpus = loaded.map(cpus);
        attach::set_cpumap_entry(cpus, 0, 256, Some(oncpu)).unwrap();
        assert_eq!(
            attach::cpumap_entry(cpus, 0).unwrap(),
            Some(CpumapEntry {
                qsize: 256,
                prog_id: Some(oncpu.info().unwrap().id)
            })
        );
        // Driver mode: cpumap turns the frames into skbs on CPU 0, which
        // enter the stack of `ib` (and its packet taps) without XDP again.
        let _in = ns
            .run(|| {
                xdp::attach(
                    "ib",
                    loaded.program_by_name("td4_in").unwrap(),
                    XdpMode::Driver,
                )
            })
            .unwrap()
            .unwrap();
        let marker = Marker::new().unwrap();
        let frames: Vec<Vec<u8>> = (0..4)
            .map(|_| keyed_frame(&ing.a, &ing.b, &marker, 0))
            .collect();
        let got = testbed::send_and_collect(&ing.a, &ing.b, &frames, &marker, TIMEOUT).unwrap();
        assert_eq!(got, frames);
        assert_eq!(read_u64(loaded.map(counts), 0), 4, "the cpumap program ran");
    }
    assert_nothing_left(prefix);
}

/// As many veth pairs as the issue asks for.
const PAIRS: usize = 500;

#[test]
fn five_hundred_pairs_each_with_its_own_egress_program_in_one_devmap() {
    if !testbed::privileged("devmap scale test") {
        return;
    }
    let prefix = "td3_";
    {
        let ns = Netns::new().unwrap();
        let ing = ns.veth_pair("ia", "ib").unwrap();
        let pairs = ns.veth_pairs(PAIRS, "s").unwrap();

        let mut obj = Object::new();
        let mut ports_spec = MapSpec::devmap("ports", PAIRS as u32);
        let mut progs = Vec::new();
        for i in 0..PAIRS {
            progs.push(
                obj.add_program(
                    &format!("td3_e{i}"),
                    ProgramType::XdpDevmap,
                    rewrite_src(i as u16),
                )
                .unwrap(),
            );
        }
        for (i, (pair, prog)) in pairs.iter().zip(&progs).enumerate() {
            ports_spec = ports_spec.with_entry(
                (i as u32).to_ne_bytes(),
                InitValue::DevWithProg {
                    ifindex: pair.a.ifindex,
                    prog: *prog,
                },
            );
        }
        let ports = obj.add_map(ports_spec).unwrap();
        obj.add_program("td3_in", ProgramType::Xdp, redirect(ports))
            .unwrap();
        // Devmap entries resolve their ifindex in the loader's namespace.
        let loaded = ns.run(|| obj.load()).unwrap().unwrap();
        let stats = loaded.stats();
        eprintln!(
            "{PAIRS} egress programs: load {:?} (verifier {:?}, maps incl. {PAIRS} devmap inserts {:?})",
            stats.total, stats.verifier, stats.maps
        );

        let ports = loaded.map(ports);
        for (i, (pair, prog)) in pairs.iter().zip(&progs).enumerate() {
            assert_eq!(
                attach::devmap_entry(ports, i as u32).unwrap(),
                Some(DevmapEntry {
                    ifindex: pair.a.ifindex,
                    prog_id: Some(loaded.program(*prog).info().unwrap().id)
                }),
                "entry {i}"
            );
        }
        let _in = ns
            .run(|| {
                xdp::attach(
                    "ib",
                    loaded.program_by_name("td3_in").unwrap(),
                    XdpMode::Generic,
                )
            })
            .unwrap()
            .unwrap();
        let marker = Marker::new().unwrap();
        for i in [0, 1, 97, 250, 333, 498, PAIRS - 1] {
            let f = vec![keyed_frame(&ing.a, &ing.b, &marker, i as u16)];
            let got = testbed::send_and_collect(&ing.a, &pairs[i].b, &f, &marker, TIMEOUT).unwrap();
            assert_eq!(got.len(), 1, "pair {i}");
            let [hi, lo] = (i as u16).to_be_bytes();
            assert_eq!(got[0][6..12], [2, 0, 0, 0, hi, lo], "pair {i}");
        }
    }
    assert_nothing_left(prefix);
}

#[test]
fn refused_entries_name_the_map_its_size_and_the_entry() {
    if !testbed::privileged("devmap/cpumap entry errors test") {
        return;
    }
    let prefix = "td5_";
    {
        let ns = Netns::new().unwrap();
        let other = Netns::new().unwrap();
        let out = ns.veth_pair("o1a", "o1b").unwrap();
        let ifindex = out.a.ifindex;

        let mut obj = Object::new();
        let ports = obj.add_map(MapSpec::devmap("ports", 4)).unwrap();
        let possible = bpf_builder::sys::bpf::possible_cpus().unwrap();
        let cpus = obj.add_map(MapSpec::cpumap("cpus", possible + 1)).unwrap();
        let counts = obj.add_map(MapSpec::array("counts", 8, 4)).unwrap();
        let small = obj.add_map(MapSpec::hash("small", 4, 8, 2)).unwrap();
        obj.add_program("td5_eg", ProgramType::XdpDevmap, xdp_action(XDP_PASS, None))
            .unwrap();
        let loaded = obj.load().unwrap();
        let (ports, cpus, counts) = (loaded.map(ports), loaded.map(cpus), loaded.map(counts));

        // An index past the end (the kernel's E2BIG), through the entry
        // helpers and through the plain map API.
        let e = ns
            .run(|| attach::set_devmap_entry(ports, 9, "o1a", None))
            .unwrap()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "map `ports`: index 9 is past the end: the map has 4 entries (indexes 0 to 3)"
        );
        assert!(matches!(
            e,
            AttachError::Map(MapError::IndexOutOfRange {
                index: 9,
                max_entries: 4,
                ..
            })
        ));
        let e = counts
            .update(&4u32.to_ne_bytes(), &[0; 8], UpdateFlags::Any)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "map `counts`: index 4 is past the end: the map has 4 entries (indexes 0 to 3)"
        );
        // A full hash (E2BIG too).
        let small = loaded.map(small);
        for k in 0..2u32 {
            small
                .update(&k.to_ne_bytes(), &[0; 8], UpdateFlags::Any)
                .unwrap();
        }
        let e = small
            .update(&2u32.to_ne_bytes(), &[0; 8], UpdateFlags::Any)
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "map `small` is full: it holds at most 2 entries (delete one, or write a key it \
             already has)"
        );
        let last = possible + 1;
        let e = attach::set_cpumap_entry(cpus, last, 256, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "map `cpus`: index {last} is past the end: the map has {last} entries \
                 (indexes 0 to {possible})"
            )
        );
        // Inside the map but not a possible CPU (the kernel's ENODEV).
        let e = attach::set_cpumap_entry(cpus, possible, 256, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "map `cpus` entry {possible}: CPU {possible} is not a possible CPU of this machine"
            )
        );

        // A device index of `ns` used where no device has it: refused
        // before the kernel is asked when given as an interface...
        let e = other
            .run(|| attach::set_devmap_entry(ports, 2, ifindex, None))
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, AttachError::UnknownInterface(_)), "{e}");
        assert_eq!(
            e.to_string(),
            format!(
                "devmap `ports` entry 2: no interface with index {ifindex} in this network \
                 namespace"
            )
        );
        // ... and named after the kernel's EINVAL when written as bytes.
        let value = [ifindex.to_ne_bytes(), 0u32.to_ne_bytes()].concat();
        let no_device = format!(
            "map `ports` entry 2: no interface has index {ifindex} in the calling thread's \
             network namespace (the kernel looks a devmap entry's ifindex up there when the \
             entry is written)"
        );
        let e = other
            .run(|| ports.update(&2u32.to_ne_bytes(), &value, UpdateFlags::Any))
            .unwrap()
            .unwrap_err();
        assert!(matches!(e, MapError::NoSuchInterface { key: 2, .. }), "{e}");
        assert_eq!(e.to_string(), no_device);
        // In its own namespace the same write succeeds.
        ns.run(|| ports.update(&2u32.to_ne_bytes(), &value, UpdateFlags::Any))
            .unwrap()
            .unwrap();

        // The same at load time, for an initial entry with and without a
        // program: the object is loaded in the namespace without it.
        for with_prog in [false, true] {
            let mut obj = Object::new();
            let eg = obj
                .add_program(
                    "td5_eg2",
                    ProgramType::XdpDevmap,
                    xdp_action(XDP_PASS, None),
                )
                .unwrap();
            let entry = if with_prog {
                InitValue::DevWithProg { ifindex, prog: eg }
            } else {
                InitValue::Bytes(value.clone())
            };
            let spec = MapSpec::devmap("ports", 4).with_entry(2u32.to_ne_bytes(), entry);
            obj.add_map(spec).unwrap();
            let e = other.run(|| obj.load()).unwrap().unwrap_err();
            assert!(
                matches!(e, LoadError::Entry(MapError::NoSuchInterface { .. })),
                "{e}"
            );
            assert_eq!(
                e.to_string(),
                format!("writing the initial contents failed: {no_device}")
            );
            ns.run(|| obj.load()).unwrap().unwrap();
        }
    }
    assert_nothing_left(prefix);
}
