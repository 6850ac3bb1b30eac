//! Objects that live and change (issue 16): a second object built on the
//! first one's maps (by handle, pin and kernel id), programs and functions
//! added to a loaded object and swapped into a program array and, while
//! frames flow, into a devmap entry; ids of one object refused by another.

mod common;

use bpf_builder::asm::{Asm, Code};
use bpf_builder::attach::xdp::{self, XdpMode};
use bpf_builder::attach::{self, AttachError};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{JmpOp, Reg::*, Size};
use bpf_builder::load::LoadError;
use bpf_builder::map::{ExistingMap, InitValue, MapSpec};
use bpf_builder::object::{MapId, Object, ObjectError, ProgramSpec, ProgramType, Symbol};
use bpf_builder::run::TestRun;
use common::*;
use testbed::{Marker, Netns};

/// XDP: adds 1 to slot 0 of `counter` and returns `action`.
fn bump(counter: MapId, action: i32) -> Code {
    let mut a = Asm::new();
    let done = a.new_label();
    count(&mut a, counter, 0, done);
    a.bind(done);
    a.mov64(R0, action);
    a.exit();
    a.finish().unwrap()
}

fn run(loaded: &bpf_builder::load::Loaded, prog: bpf_builder::object::ProgId) -> u32 {
    loaded
        .program(prog)
        .test_run(&TestRun::new(&[0u8; 64]))
        .unwrap()
        .retval
}

#[test]
fn a_second_object_shares_the_first_ones_map_after_it_is_dropped() {
    if !require_bpf() {
        return;
    }
    let mut first = Object::new();
    let hits = first.add_map(MapSpec::array("hits", 8, 1)).unwrap();
    let p = first
        .add_program("lvsh_first", ProgramType::Xdp, bump(hits, XDP_PASS))
        .unwrap();
    let loaded = first.load().unwrap();
    run(&loaded, p);
    // A handle outlives the object that created the map.
    let handle = loaded.map(hits).clone();
    drop(loaded);
    drop(first);

    let mut second = Object::new();
    let shared = second.share_map("hits", &handle).unwrap();
    let q = second
        .add_program("lvsh_second", ProgramType::Xdp, bump(shared, XDP_DROP))
        .unwrap();
    let loaded = second.load().unwrap();
    assert_eq!(run(&loaded, q), XDP_DROP as u32);
    run(&loaded, q);
    assert_eq!(
        read_u64(&handle, 0),
        3,
        "one map: 1 run of the first, 2 of the second"
    );
    assert_eq!(read_u64(loaded.map(shared), 0), 3);
    assert_eq!(
        loaded.map(shared).id().unwrap(),
        handle.id().unwrap(),
        "the same kernel map, not a copy"
    );
    // The second object's changes are seen through the first one's
    // handle, and the other way round.
    handle
        .update(
            &0u32.to_ne_bytes(),
            &40u64.to_ne_bytes(),
            Default::default(),
        )
        .unwrap();
    run(&loaded, q);
    assert_eq!(read_u64(loaded.map(shared), 0), 41);
    drop(loaded);
    assert_nothing_left("lvsh_");
}

#[test]
fn pinned_and_kernel_id_maps_join_an_object_when_their_shape_fits() {
    if !require_bpf() {
        return;
    }
    let pin = PinPath::new("lvpin_pinned");
    bpf_builder::sys::bpf::ensure_bpffs(std::path::Path::new("/sys/fs/bpf")).unwrap();
    let spec = MapSpec::array("shared", 8, 4);
    let mut first = Object::new();
    let m = first.add_map(spec.clone()).unwrap();
    let first = first.load().unwrap();
    first.map(m).pin(&pin.0).unwrap();
    let kernel_id = first.map(m).id().unwrap();

    for existing in [
        ExistingMap::Pinned(pin.0.clone()),
        ExistingMap::Id(kernel_id),
    ] {
        let mut second = Object::new();
        let shared = second.add_existing_map(spec.clone(), existing).unwrap();
        let p = second
            .add_program("lvpin_pinned", ProgramType::Xdp, bump(shared, XDP_PASS))
            .unwrap();
        let loaded = second.load().unwrap();
        run(&loaded, p);
    }
    assert_eq!(
        read_u64(first.map(m), 0),
        2,
        "both objects counted in the first one's map"
    );

    // Shapes that differ are refused at load, saying what differs.
    let cases = [
        (
            MapSpec::array("shared", 4, 4),
            "expected value size 4, found 8",
        ),
        (
            MapSpec::array("shared", 8, 8),
            "expected max_entries 8, found 4",
        ),
        (
            MapSpec::hash("shared", 4, 8, 4),
            "expected a hash map, found array",
        ),
        (
            MapSpec::array("shared", 8, 4).with_flags(bpf_builder::map::F_MMAPABLE),
            "expected flags 0x400, found 0x0",
        ),
    ];
    for (spec, why) in cases {
        let mut other = Object::new();
        other
            .add_existing_map(spec, ExistingMap::Pinned(pin.0.clone()))
            .unwrap();
        let e = other.load().unwrap_err();
        assert!(matches!(e, LoadError::MapMismatch { .. }), "{e:?}");
        let text = e.to_string();
        assert!(text.contains(why), "{text}");
        assert!(
            text.starts_with("existing map `shared` (pinned at /sys/fs/bpf/"),
            "{text}"
        );
    }
    // A pin that is not there.
    let mut other = Object::new();
    other
        .add_existing_map(
            spec.clone(),
            ExistingMap::Pinned("/sys/fs/bpf/live_no_such_pin".into()),
        )
        .unwrap();
    let e = other.load().unwrap_err().to_string();
    assert!(
        e.starts_with("opening existing map `shared` (pinned at /sys/fs/bpf/live_no_such_pin) failed: No such file"),
        "{e}"
    );
    // An existing map keeps its contents.
    let mut other = Object::new();
    let e = other
        .add_existing_map(
            spec.clone()
                .with_bytes(0u32.to_ne_bytes(), 1u64.to_ne_bytes()),
            ExistingMap::Id(kernel_id),
        )
        .unwrap_err();
    assert_eq!(e, ObjectError::ExistingWithContents("shared".into()));
    let id = other
        .add_existing_map(spec, ExistingMap::Id(kernel_id))
        .unwrap();
    let e = other
        .add_map_entry(id, 0u32.to_ne_bytes(), InitValue::Bytes(vec![0; 8]))
        .unwrap_err();
    assert_eq!(e, ObjectError::ExistingWithContents("shared".into()));
    drop(first);
    assert_nothing_left("lvpin_pinned");
}

#[test]
fn maps_of_maps_are_checked_against_the_inner_map_they_hold() {
    if !require_bpf() {
        return;
    }
    let inner = MapSpec::array("inner", 8, 2);
    let mut first = Object::new();
    let i = first.add_map(inner.clone()).unwrap();
    let outer = first
        .add_map(
            MapSpec::array_of_maps("outer", 2, inner.clone())
                .with_entry(0u32.to_ne_bytes(), InitValue::Map(i)),
        )
        .unwrap();
    let first = first.load().unwrap();
    let handle = first.map(outer).clone();

    let mut fits = Object::new();
    fits.add_existing_map(
        MapSpec::array_of_maps("outer", 2, inner),
        ExistingMap::Handle(handle.clone()),
    )
    .unwrap();
    fits.load().unwrap();

    let mut differs = Object::new();
    differs
        .add_existing_map(
            MapSpec::array_of_maps("outer", 2, MapSpec::array("inner", 16, 2)),
            ExistingMap::Handle(handle.clone()),
        )
        .unwrap();
    let e = differs.load().unwrap_err().to_string();
    assert!(
        e.contains("does not fit: its inner maps: expected value size 16, found 8"),
        "{e}"
    );
    // Without an inner shape to compare, share_map refuses maps of maps.
    let e = Object::new().share_map("outer", &handle).unwrap_err();
    assert!(
        e.to_string()
            .contains("maps of maps need their inner shape"),
        "{e}"
    );
}

#[test]
fn programs_and_functions_added_to_a_loaded_object_use_its_maps() {
    if !require_bpf() {
        return;
    }
    let mut obj = Object::new();
    let hits = obj.add_map(MapSpec::array("hits", 8, 1)).unwrap();
    let tails = obj.add_map(MapSpec::prog_array("tails", 2)).unwrap();
    let old = obj
        .add_program("lvadd_old", ProgramType::Xdp, ret(XDP_PASS))
        .unwrap();
    obj.add_map_entry(tails, 0u32.to_ne_bytes(), InitValue::Prog(old))
        .unwrap();
    // main: tail-call slot 0, else abort (0).
    let mut a = Asm::new();
    a.ld_map_fd(R2, tails);
    a.mov64(R3, 0);
    a.call(Helper::TailCall);
    a.mov64(R0, 0);
    a.exit();
    let main = obj
        .add_program("lvadd_main", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    let mut loaded = obj.load().unwrap();
    assert_eq!(run(&loaded, main), XDP_PASS as u32);
    // The loaded object keeps the shapes, not the contents (they are in
    // the kernel now).
    assert_eq!(obj.map(tails).contents.len(), 1);
    assert!(loaded.object().map(tails).contents.is_empty());

    // A function added after loading, called by a program added after
    // loading, counting in the object's map.
    let mut f = Asm::new();
    let done = f.new_label();
    count(&mut f, hits, 0, done);
    f.bind(done);
    f.mov64(R0, 0);
    f.exit();
    let counter = loaded
        .add_function("count_hit", f.finish().unwrap())
        .unwrap();
    let mut a = Asm::new();
    a.call_func(counter);
    a.mov64(R0, XDP_DROP);
    a.exit();
    let new = loaded
        .load_program(ProgramSpec::new(
            "lvadd_new",
            ProgramType::Xdp,
            a.finish().unwrap(),
        ))
        .unwrap();
    assert_eq!(loaded.object().program(new).name, "lvadd_new");
    assert_eq!(
        loaded.program_by_name("lvadd_new").unwrap().name(),
        "lvadd_new"
    );

    // Swapped into the program array: main now runs the new program.
    loaded
        .map(tails)
        .set_program(0, Some(loaded.program(new)))
        .unwrap();
    assert_eq!(run(&loaded, main), XDP_DROP as u32);
    assert_eq!(read_u64(loaded.map(hits), 0), 1);
    loaded.map(tails).set_program(0, None).unwrap();
    assert_eq!(
        run(&loaded, main),
        0,
        "empty slot: the tail call falls through"
    );
    let e = loaded.map(hits).set_program(0, None).unwrap_err();
    assert!(e.to_string().contains("not a program array"), "{e}");

    // A program the verifier refuses: annotated like at the first load,
    // and nothing is added, so the name stays free.
    let mut a = Asm::new();
    a.set_source(bpf_builder::asm::Annotation::new("return r0, never set"));
    a.exit();
    let before = loaded.programs().count();
    let e = loaded
        .load_program(ProgramSpec::new(
            "lvadd_bad",
            ProgramType::Xdp,
            a.finish().unwrap(),
        ))
        .unwrap_err();
    let LoadError::Program(v) = &e else {
        panic!("{e:?}")
    };
    assert_eq!(v.program, "lvadd_bad");
    let at = v.insn.as_ref().expect("failing instruction");
    assert_eq!(
        at.source.as_ref().unwrap().text.as_ref(),
        "return r0, never set"
    );
    assert_eq!(loaded.programs().count(), before);
    assert!(loaded.object().program_by_name("lvadd_bad").is_none());
    // Another object's id is refused here too.
    let other = Object::new().add_map(MapSpec::array("hits", 8, 1)).unwrap();
    let loaded_ref = &loaded;
    let panic = std::panic::catch_unwind(|| loaded_ref.map(other).name().to_string());
    assert!(
        panic.is_err(),
        "a foreign id never binds to this object's map0"
    );
    loaded
        .load_program(ProgramSpec::new(
            "lvadd_bad",
            ProgramType::Xdp,
            ret(XDP_PASS),
        ))
        .unwrap();
    drop(loaded);
    assert_nothing_left("lvadd_");
}

#[test]
fn ids_of_one_object_are_refused_by_another() {
    let mut a = Object::new();
    let a_map = a.add_map(MapSpec::array("m", 8, 1)).unwrap();
    let a_prog = a.add_program("p", ProgramType::Xdp, ret(XDP_PASS)).unwrap();
    let mut b = Object::new();
    let b_map = b.add_map(MapSpec::array("m", 8, 1)).unwrap();
    assert_eq!(
        a_map.index(),
        b_map.index(),
        "same position, different objects"
    );
    assert_ne!(a_map, b_map);

    let e = b
        .add_program("q", ProgramType::Xdp, bump(a_map, XDP_PASS))
        .unwrap_err();
    assert_eq!(
        e,
        ObjectError::ForeignId {
            id: Symbol::Map(a_map),
            this: b.key()
        }
    );
    assert_eq!(
        e.to_string(),
        format!(
            "map0 belongs to {}, not to this object ({}); ids cannot cross objects",
            a.key(),
            b.key()
        )
    );
    assert!(b.set_xdp_frags(a_prog, true).is_err());
    let pa = b.add_map(MapSpec::prog_array("pa", 1)).unwrap();
    assert!(matches!(
        b.add_map_entry(pa, 0u32.to_ne_bytes(), InitValue::Prog(a_prog)),
        Err(ObjectError::ForeignId { .. })
    ));
    assert!(matches!(
        b.add_map_entry(a_map, 0u32.to_ne_bytes(), InitValue::Bytes(vec![0; 8])),
        Err(ObjectError::ForeignId { .. })
    ));
    // Accessors that cannot return an error panic rather than guess.
    let panic = std::panic::catch_unwind(|| b.map(a_map).name.clone()).unwrap_err();
    let text = panic.downcast_ref::<String>().unwrap();
    assert!(text.ends_with("ids cannot cross objects"), "{text}");
    // A clone is the same object: its ids stay valid.
    let c = a.clone();
    assert_eq!(c.map(a_map).name, "m");
}

/// Egress: the frame's first payload byte := `tag`; passes.
fn tag_payload(tag: u8) -> Code {
    let mut a = Asm::new();
    let out = a.new_label();
    a.ldx(Size::W, R2, R1, 0);
    a.ldx(Size::W, R3, R1, 4);
    a.mov64(R4, R2);
    a.add64(R4, 15);
    a.jmp(JmpOp::Gt, R4, R3, out);
    a.st(Size::B, R2, 14, i32::from(tag));
    a.bind(out);
    a.mov64(R0, XDP_PASS);
    a.exit();
    a.finish().unwrap()
}

#[test]
fn a_devmap_entry_program_is_replaced_while_frames_flow_and_none_is_lost() {
    if !require_bpf() {
        return;
    }
    const FRAMES: usize = 2000;
    {
        let ns = Netns::new().unwrap();
        let ing = ns.veth_pair("lia", "lib").unwrap();
        let out = ns.veth_pair("loa", "lob").unwrap();

        let mut obj = Object::new();
        let ports = obj.add_map(MapSpec::devmap("ports", 1)).unwrap();
        let input = obj
            .add_program("lvdev_in", ProgramType::Xdp, redirect(ports))
            .unwrap();
        let old = obj
            .add_program("lvdev_old", ProgramType::XdpDevmap, tag_payload(1))
            .unwrap();
        let mut loaded = obj.load().unwrap();
        ns.run(|| attach::set_devmap_entry(loaded.map(ports), 0, "loa", Some(loaded.program(old))))
            .unwrap()
            .unwrap();
        // Generic mode: in driver mode a veth drops frames redirected to
        // a peer without an XDP program.
        let _in = ns
            .run(|| xdp::attach("lib", loaded.program(input), XdpMode::Generic))
            .unwrap()
            .unwrap();

        let new = loaded
            .load_program(ProgramSpec::new(
                "lvdev_new",
                ProgramType::XdpDevmap,
                tag_payload(2),
            ))
            .unwrap();
        let marker = Marker::new().unwrap();
        let frames: Vec<Vec<u8>> = (0..FRAMES)
            .map(|_| frame(&ing.a, &ing.b, &marker, 0))
            .collect();
        let loaded = &loaded;
        let swap = || {
            ns.run(|| -> Result<(), AttachError> {
                attach::set_devmap_entry(loaded.map(ports), 0, "loa", Some(loaded.program(new)))
            })
            .unwrap()
            .unwrap()
        };
        let got =
            testbed::stream_and_collect(&ing.a, &out.b, &frames, &marker, TIMEOUT, swap).unwrap();
        let tags: Vec<u8> = got.iter().map(|f| f[14]).collect();
        assert_eq!(tags.len(), FRAMES, "every frame arrived");
        let switched = tags
            .iter()
            .position(|&t| t == 2)
            .expect("the new program ran");
        assert!(
            tags[..switched].iter().all(|&t| t == 1) && tags[switched..].iter().all(|&t| t == 2),
            "each frame met the old program or the new one, in order: {tags:?}"
        );
        assert!(switched > 0, "the old program ran before the swap");
        assert!(
            switched <= FRAMES / 2,
            "frames sent after the swap met the new program: {switched}"
        );
    }
    assert_nothing_left("lvdev_");
}
