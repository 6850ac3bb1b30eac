//! Our XDP dispatcher beside Debian's xdp-tools (libxdp 1.3): our programs
//! and `xdp-loader`'s on one interface, both ways round, listed in the
//! same order by `xdp-loader status` and by our query, frames through
//! both, and either side's program removed without disturbing the other.

mod common;

use bpf_builder::asm::Asm;
use bpf_builder::attach::dispatcher::{self, Anchor, Hook, JoinOptions, Joined, Placement};
use bpf_builder::handle::{Map, Program};
use bpf_builder::insn::Reg::*;
use bpf_builder::kernel_id::KernelProgId;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{Object, ProgramType};
use bpf_builder::sys::bpf as sys;
use common::*;
use testbed::xdp_tools::{LoadOptions, StatusEntry, XdpObjects, XdpTools};
use testbed::{Marker, Netns, VethPair};

/// Our member: counts test frames into `counts[0]`, passes everything.
fn ours(name: &str) -> (Object, bpf_builder::object::ProgId, Map) {
    let mut counter = Object::new();
    counter.add_map(MapSpec::array("counts", 8, 1)).unwrap();
    let counts = counter
        .load()
        .unwrap()
        .map_by_name("counts")
        .unwrap()
        .clone();
    let mut o = Object::new();
    let map = o.share_map("counts", &counts).unwrap();
    let mut a = Asm::new();
    let pass = a.new_label();
    a.ldx(bpf_builder::insn::Size::W, R2, R1, 0);
    a.ldx(bpf_builder::insn::Size::W, R3, R1, 4);
    require_test_frame(&mut a, pass);
    count(&mut a, map, 0, pass);
    a.bind(pass);
    a.mov64(R0, XDP_PASS);
    a.exit();
    let prog = o
        .add_program(name, ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    (o, prog, counts)
}

/// Frames of the test EtherType their program counts: `[0]` of its
/// counter map, read through the program's map.
fn their_count(id: u32) -> u64 {
    let prog = Program::from_fd(sys::prog_get_fd_by_id(KernelProgId::new(id)).unwrap()).unwrap();
    let info = prog.info().unwrap();
    let map = Map::from_fd(sys::map_get_fd_by_id(info.map_ids[0]).unwrap()).unwrap();
    read_u64(&map, 0)
}

fn send(pair: &VethPair, n: u8) {
    let marker = Marker::new().unwrap();
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|i| frame(&pair.a, &pair.b, &marker, i))
        .collect();
    assert_eq!(
        delivered(&pair.a, &pair.b, &frames, &marker).len(),
        frames.len()
    );
}

/// The components `xdp-loader status` lists, in run order.
fn their_listing(tools: &XdpTools<'_>) -> Vec<(String, u32)> {
    tools
        .status()
        .unwrap()
        .iter()
        .filter(|e| e.is_component())
        .map(|e: &StatusEntry| (e.name.clone(), e.id))
        .collect()
}

fn our_listing(ns: &Netns) -> Vec<(String, u32)> {
    match ns.run(|| dispatcher::query("vb")).unwrap().unwrap() {
        Hook::Dispatcher(c) => c
            .members
            .iter()
            .map(|m| (m.name.clone(), m.id.get()))
            .collect(),
        Hook::Empty => Vec::new(),
        Hook::Foreign(f) => panic!("not a dispatcher: {f}"),
    }
}

fn join(
    ns: &Netns,
    object: &Object,
    prog: bpf_builder::object::ProgId,
    opts: JoinOptions,
) -> Joined {
    ns.run(|| dispatcher::join("vb", object, prog, &opts))
        .unwrap()
        .unwrap_or_else(|e| panic!("join: {e}"))
}

/// Extension programs here, or in a VM given `objects` (which must hold
/// every object the test loads: there is no compiler in the VM).
fn here(test: &str, objects: &XdpObjects) -> bool {
    testbed::features::extensions_here_or_in_vm_with(test, |vm| objects.vm_setup(vm))
}

#[test]
fn xdp_loader_joins_our_dispatcher_and_we_keep_its_program() {
    if !XdpTools::available("xdp_loader_joins_our_dispatcher_and_we_keep_its_program") {
        return;
    }
    let objects = XdpObjects::new().unwrap();
    let theirs = objects.counter("xdp_theirs", 10).unwrap();
    if !here(
        "xdp_loader_joins_our_dispatcher_and_we_keep_its_program",
        &objects,
    ) {
        return;
    }
    {
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("va", "vb").unwrap();
        let tools = XdpTools::new(&ns, &pair.b);
        let (o, p, counts) = ours("dxt_ours");
        let mine = join(
            &ns,
            &o,
            p,
            JoinOptions::new().placement(Placement::Priority(20)),
        );

        // xdp-loader adds theirs (priority 10) to our dispatcher: both
        // tools list the same two programs in the same order.
        tools.load(&theirs, &LoadOptions::default()).unwrap();
        let listed = their_listing(&tools);
        assert_eq!(
            listed.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["xdp_theirs", "dxt_ours"]
        );
        assert_eq!(
            our_listing(&ns),
            listed,
            "our query agrees with xdp-loader status"
        );
        assert_eq!(listed[1].1, mine.id.get(), "xdp-loader kept our program");

        send(&pair, 5);
        assert_eq!(read_u64(&counts, 0), 5, "through ours");
        assert_eq!(their_count(listed[0].1), 5, "through theirs");

        // Theirs removed with xdp-loader: ours runs on alone.
        tools.unload(listed[0].1).unwrap();
        assert_eq!(our_listing(&ns), [("dxt_ours".to_string(), mine.id.get())]);
        send(&pair, 3);
        assert_eq!(read_u64(&counts, 0), 8);

        ns.run(|| dispatcher::leave("vb", mine.id, None))
            .unwrap()
            .unwrap();
        assert!(tools.status().unwrap().is_empty());
        assert!(
            tools.leftover_pins().is_empty(),
            "{:?}",
            tools.leftover_pins()
        );
    }
    assert_nothing_left("dxt_");
}

#[test]
fn we_join_xdp_loaders_dispatcher_and_it_keeps_ours() {
    if !XdpTools::available("we_join_xdp_loaders_dispatcher_and_it_keeps_ours") {
        return;
    }
    let objects = XdpObjects::new().unwrap();
    let theirs = objects.counter("xdp_theirs", 30).unwrap();
    if !here("we_join_xdp_loaders_dispatcher_and_it_keeps_ours", &objects) {
        return;
    }
    {
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("va", "vb").unwrap();
        let tools = XdpTools::new(&ns, &pair.b);
        tools.load(&theirs, &LoadOptions::default()).unwrap();
        let their_id = their_listing(&tools)[0].1;

        // Ours right before theirs, in their dispatcher's place.
        let (o, p, counts) = ours("dxu_ours");
        let anchor = Anchor::Name("xdp_theirs".into());
        let mine = join(
            &ns,
            &o,
            p,
            JoinOptions::new().placement(Placement::Before(anchor)),
        );
        let listed = their_listing(&tools);
        assert_eq!(
            listed,
            [
                ("dxu_ours".to_string(), mine.id.get()),
                ("xdp_theirs".to_string(), their_id)
            ],
            "xdp-loader lists ours first and kept its own program"
        );
        assert_eq!(our_listing(&ns), listed);
        send(&pair, 4);
        assert_eq!(read_u64(&counts, 0), 4);
        assert_eq!(their_count(their_id), 4);

        // Ours leaves: theirs keeps running, and xdp-loader still owns it.
        ns.run(|| dispatcher::leave("vb", mine.id, None))
            .unwrap()
            .unwrap();
        assert_eq!(
            their_listing(&tools),
            [("xdp_theirs".to_string(), their_id)]
        );
        send(&pair, 2);
        assert_eq!(their_count(their_id), 6);
        tools.unload_all().unwrap();
        assert!(
            tools.leftover_pins().is_empty(),
            "{:?}",
            tools.leftover_pins()
        );
    }
    assert_nothing_left("dxu_");
}
