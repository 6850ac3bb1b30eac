//! The XDP dispatcher on real veth traffic, in namespaces the tests
//! create: placement by anchor, the order the traffic proves, revisions,
//! foreign programs, changes while frames flow, attachers at once.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;

use bpf_builder::asm::Asm;
use bpf_builder::attach::AttachError;
use bpf_builder::attach::dispatcher::{
    self, Anchor, ChainActions, Hook, JoinOptions, Joined, Placement,
};
use bpf_builder::attach::xdp::{self, Expect, XdpMode};
use bpf_builder::handle::Map;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AtomicOp, JmpOp, Reg::*, Size};
use bpf_builder::map::MapSpec;
use bpf_builder::object::{Object, ProgramType};
use common::*;
use testbed::{Marker, Netns, VethPair};

/// The maps members share: `clock` (one u64 every member bumps) and
/// `order` (per member slot: the clock value it saw last, plus one).
struct Shared {
    clock: Map,
    order: Map,
}

impl Shared {
    fn new() -> Shared {
        let mut o = Object::new();
        o.add_map(MapSpec::array("clock", 8, 1)).unwrap();
        o.add_map(MapSpec::array("order", 8, 8)).unwrap();
        let loaded = o.load().unwrap();
        Shared {
            clock: loaded.map_by_name("clock").unwrap().clone(),
            order: loaded.map_by_name("order").unwrap().clone(),
        }
    }

    /// The slot each member wrote to, ordered by when it ran last.
    fn run_order(&self, slots: u32) -> Vec<u32> {
        let mut seen: Vec<(u64, u32)> = (0..slots)
            .map(|s| (read_u64(&self.order, s), s))
            .filter(|&(t, _)| t != 0)
            .collect();
        seen.sort();
        seen.into_iter().map(|(_, s)| s).collect()
    }
}

/// A member named `name`: for test frames, takes a tick of the shared
/// clock into `order[slot]` and returns `action`; passes other frames.
fn member(
    name: &str,
    shared: &Shared,
    slot: i32,
    action: i32,
) -> (Object, bpf_builder::object::ProgId) {
    let mut o = Object::new();
    let clock = o.share_map("clock", &shared.clock).unwrap();
    let order = o.share_map("order", &shared.order).unwrap();
    let mut a = Asm::new();
    let other = a.new_label();
    let done = a.new_label();
    a.ldx(Size::W, R2, R1, 0);
    a.ldx(Size::W, R3, R1, 4);
    require_test_frame(&mut a, other);
    a.ld_map_value(R6, clock, 0);
    a.mov64(R7, 1);
    a.atomic(AtomicOp::FetchAdd, Size::DW, R6, 0, R7);
    a.add64(R7, 1);
    a.st(Size::W, R10, -4, slot);
    a.ld_map_fd(R1, order);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, done);
    a.stx(Size::DW, R0, 0, R7);
    a.bind(done);
    a.mov64(R0, action);
    a.exit();
    a.bind(other);
    a.mov64(R0, XDP_PASS);
    a.exit();
    let prog = o
        .add_program(name, ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    (o, prog)
}

fn join(ns: &Netns, name: &str, shared: &Shared, slot: i32, opts: JoinOptions) -> Joined {
    let (o, p) = member(name, shared, slot, XDP_PASS);
    ns.run(|| dispatcher::join("vb", &o, p, &opts))
        .unwrap()
        .unwrap_or_else(|e| panic!("join {name}: {e}"))
}

fn hook(ns: &Netns) -> Hook {
    ns.run(|| dispatcher::query("vb")).unwrap().unwrap()
}

fn names(ns: &Netns) -> Vec<String> {
    match hook(ns) {
        Hook::Dispatcher(c) => c.names().into_iter().map(String::from).collect(),
        Hook::Empty => Vec::new(),
        Hook::Foreign(f) => panic!("a foreign program holds the hook: {f}"),
    }
}

/// A namespace with the pair `va`/`vb` and the members' shared maps;
/// dropping it empties `vb`'s dispatcher, so a failing test leaves no
/// pins (which would keep its programs alive) behind.
struct Bed {
    ns: Netns,
    pair: VethPair,
    shared: Shared,
}

impl Bed {
    fn new() -> Bed {
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("va", "vb").unwrap();
        Bed {
            ns,
            pair,
            shared: Shared::new(),
        }
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        testbed::xdp_tools::empty_dispatcher(&self.ns, "vb");
    }
}

/// Whether the test `test` (which loads extension programs) runs here;
/// otherwise it ran in a VM, or is skipped without privileges.
fn here(test: &str) -> bool {
    testbed::privileged("XDP dispatcher test") && testbed::features::extensions_here_or_in_vm(test)
}

fn dispatch_dirs(ifindex: u32) -> Vec<String> {
    let prefix = format!("dispatch-{ifindex}-");
    std::fs::read_dir("/sys/fs/bpf/xdp")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn anchors_order_the_chain_and_traffic_follows_it() {
    if !here("anchors_order_the_chain_and_traffic_follows_it") {
        return;
    }
    {
        let bed = Bed::new();
        let (ns, pair, shared) = (&bed.ns, &bed.pair, &bed.shared);
        let marker = Marker::new().unwrap();

        let b = join(ns, "dsa_b", shared, 1, JoinOptions::new());
        assert_eq!(b.chain.names(), ["dsa_b"]);
        assert_eq!(b.chain.members[0].priority, dispatcher::DEFAULT_PRIORITY);
        let a = join(
            ns,
            "dsa_a",
            shared,
            0,
            JoinOptions::new().placement(Placement::First),
        );
        let c = join(
            ns,
            "dsa_c",
            shared,
            2,
            JoinOptions::new().placement(Placement::After(Anchor::Name("dsa_a".into()))),
        );
        assert_eq!(c.chain.names(), ["dsa_a", "dsa_c", "dsa_b"]);
        assert_eq!(names(ns), ["dsa_a", "dsa_c", "dsa_b"], "the query agrees");
        let prios: Vec<u32> = c.chain.members.iter().map(|m| m.priority).collect();
        assert!(
            prios.windows(2).all(|w| w[0] < w[1]),
            "libxdp sorts by priority: {prios:?}"
        );

        // One frame visits all three, in the query's order.
        let frames = vec![frame(&pair.a, &pair.b, &marker, 0)];
        assert_eq!(delivered(&pair.a, &pair.b, &frames, &marker).len(), 1);
        assert_eq!(shared.run_order(3), [0, 2, 1], "a, c, b");

        // Leaving the middle keeps the others in order and working.
        let left = ns
            .run(|| dispatcher::leave("vb", c.id, None))
            .unwrap()
            .unwrap();
        assert_eq!(left.chain().unwrap().names(), ["dsa_a", "dsa_b"]);
        let ifindex = left.chain().unwrap().ifindex;
        assert_eq!(dispatch_dirs(ifindex).len(), 1, "one dispatcher's pins");
        assert_eq!(delivered(&pair.a, &pair.b, &frames, &marker).len(), 1);
        assert_eq!(shared.run_order(3), [2, 0, 1], "c stale, then a, b");

        for id in [a.id, b.id] {
            ns.run(|| dispatcher::leave("vb", id, None))
                .unwrap()
                .unwrap();
        }
        assert_eq!(hook(ns), Hook::Empty);
        assert!(ns.run(|| xdp::query("vb")).unwrap().unwrap().is_empty());
        assert!(dispatch_dirs(ifindex).is_empty(), "no pins left");
        drop((a, b, c));
    }
    assert_nothing_left("dsa_");
}

#[test]
fn chain_actions_decide_who_goes_on() {
    if !here("chain_actions_decide_who_goes_on") {
        return;
    }
    {
        let bed = Bed::new();
        let (ns, pair, shared) = (&bed.ns, &bed.pair, &bed.shared);
        let marker = Marker::new().unwrap();
        let frames = vec![frame(&pair.a, &pair.b, &marker, 0)];

        // A dropper that chains only on PASS ends the chain: the frame is
        // dropped and the member after it never runs.
        let (o, p) = member("dsc_drop", shared, 0, XDP_DROP);
        let drop_member = ns
            .run(|| dispatcher::join("vb", &o, p, &JoinOptions::new()))
            .unwrap()
            .unwrap();
        let after = join(ns, "dsc_after", shared, 1, JoinOptions::new());
        assert!(delivered(&pair.a, &pair.b, &frames, &marker).is_empty());
        assert_eq!(shared.run_order(2), [0]);

        // The same dropper chaining on DROP too: the next member runs and
        // passes the frame.
        ns.run(|| dispatcher::leave("vb", drop_member.id, None))
            .unwrap()
            .unwrap();
        let drop_member = ns
            .run(|| {
                dispatcher::join(
                    "vb",
                    &o,
                    p,
                    &JoinOptions::new()
                        .placement(Placement::First)
                        .chain_actions(ChainActions::of(&[1, 2])),
                )
            })
            .unwrap()
            .unwrap();
        assert!(drop_member.chain.members[0].chain_actions.contains(1));
        assert_eq!(delivered(&pair.a, &pair.b, &frames, &marker).len(), 1);
        assert_eq!(shared.run_order(2), [0, 1]);
        drop((drop_member, after));
    }
    assert_nothing_left("dsc_");
}

/// A plain XDP program named `name` that passes every frame.
fn passing(name: &str) -> bpf_builder::load::Loaded {
    let mut o = Object::new();
    o.add_program(name, ProgramType::Xdp, ret(XDP_PASS))
        .unwrap();
    o.load().unwrap()
}

#[test]
fn a_foreign_program_is_never_replaced_unless_asked() {
    if !testbed::privileged("XDP dispatcher test") {
        return;
    }
    {
        let bed = Bed::new();
        let (ns, shared) = (&bed.ns, &bed.shared);
        let loaded = passing("dsf_foreign");
        let foreign = loaded.program_by_name("dsf_foreign").unwrap();
        let foreign_id = foreign.id().unwrap();

        // Attached with netlink: named in the error, and left in place.
        ns.run(|| xdp::attach_netlink("vb", foreign, XdpMode::Generic, Expect::Nothing))
            .unwrap()
            .unwrap();
        let (m, p) = member("dsf_member", shared, 0, XDP_PASS);
        let e = ns
            .run(|| dispatcher::join("vb", &m, p, &JoinOptions::new()))
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("`dsf_foreign`") && e.contains(&foreign_id.to_string()),
            "{e}"
        );
        assert!(
            e.contains("netlink") && e.contains("not a dispatcher"),
            "{e}"
        );
        assert_eq!(
            ns.run(|| xdp::query("vb")).unwrap().unwrap().generic,
            Some(foreign_id)
        );

        // Asked to, a netlink-attached program is replaced too... unless a
        // link holds it: then never, and the error says why.
        ns.run(|| xdp::detach_netlink("vb", XdpMode::Generic, Expect::Program(foreign)))
            .unwrap()
            .unwrap();
        let link = ns
            .run(|| xdp::attach("vb", foreign, XdpMode::Generic))
            .unwrap()
            .unwrap();
        let e = ns
            .run(|| dispatcher::join("vb", &m, p, &JoinOptions::new().replace_foreign(true)))
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains("XDP link") && e.contains("`dsf_foreign`"), "{e}");
        link.detach().unwrap();

        drop(m);
    }
    assert_nothing_left("dsf_");
}

#[test]
fn a_foreign_program_is_replaced_when_asked() {
    if !here("a_foreign_program_is_replaced_when_asked") {
        return;
    }
    {
        let bed = Bed::new();
        let (ns, shared) = (&bed.ns, &bed.shared);
        let loaded = passing("dsg_foreign");
        let foreign = loaded.program_by_name("dsg_foreign").unwrap();
        ns.run(|| xdp::attach_netlink("vb", foreign, XdpMode::Generic, Expect::Nothing))
            .unwrap()
            .unwrap();
        let (m, p) = member("dsg_member", shared, 0, XDP_PASS);
        let options = JoinOptions::new().replace_foreign(true);
        let joined = ns
            .run(|| dispatcher::join("vb", &m, p, &options))
            .unwrap()
            .unwrap();
        assert_eq!(
            joined.chain.mode,
            XdpMode::Generic,
            "the foreign program's mode"
        );
        assert_eq!(names(ns), ["dsg_member"]);
        ns.run(|| dispatcher::leave("vb", joined.id, None))
            .unwrap()
            .unwrap();
        assert!(ns.run(|| xdp::query("vb")).unwrap().unwrap().is_empty());
    }
    assert_nothing_left("dsg_");
}

#[test]
fn a_stale_revision_changes_nothing() {
    if !here("a_stale_revision_changes_nothing") {
        return;
    }
    {
        let bed = Bed::new();
        let (ns, shared) = (&bed.ns, &bed.shared);
        let seen = hook(ns).revision();
        let first = join(
            ns,
            "dsr_first",
            shared,
            0,
            JoinOptions::new().expected_revision(seen),
        );
        // Still expecting the empty hook: refused, the chain unchanged.
        let (o, p) = member("dsr_late", shared, 1, XDP_PASS);
        let e = ns
            .run(|| dispatcher::join("vb", &o, p, &JoinOptions::new().expected_revision(seen)))
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(
                e,
                dispatcher::DispatcherError::Attach(AttachError::ExpectedMismatch { .. })
            ),
            "{e}"
        );
        assert_eq!(names(ns), ["dsr_first"]);
        let now = hook(ns).revision();
        let e = ns
            .run(|| dispatcher::leave("vb", first.id, Some(seen)))
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("expected nothing"), "{e}");
        ns.run(|| dispatcher::leave("vb", first.id, Some(now)))
            .unwrap()
            .unwrap();
        assert_eq!(hook(ns), Hook::Empty);
        drop(first);
    }
    assert_nothing_left("dsr_");
}

#[test]
fn attachers_at_once_end_in_the_order_both_asked_for() {
    if !here("attachers_at_once_end_in_the_order_both_asked_for") {
        return;
    }
    {
        let bed = Bed::new();
        let (ns, shared) = (&bed.ns, &bed.shared);
        let middle = join(ns, "dsx_middle", shared, 0, JoinOptions::new());
        let anchor = || Anchor::Name("dsx_middle".into());
        let joined: Vec<Joined> = thread::scope(|s| {
            let handles: Vec<_> = [
                ("dsx_before", Placement::Before(anchor())),
                ("dsx_after", Placement::After(anchor())),
                ("dsx_first", Placement::First),
                ("dsx_last", Placement::Last),
            ]
            .into_iter()
            .enumerate()
            .map(|(i, (name, place))| {
                let ns = &ns;
                let shared = &shared;
                s.spawn(move || {
                    join(
                        ns,
                        name,
                        shared,
                        i as i32 + 1,
                        JoinOptions::new().placement(place),
                    )
                })
            })
            .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let order = names(ns);
        let at = |n: &str| order.iter().position(|o| o == n).unwrap();
        assert_eq!(order.len(), 5, "{order:?}");
        assert!(
            at("dsx_before") < at("dsx_middle") && at("dsx_middle") < at("dsx_after"),
            "{order:?}"
        );
        assert!(at("dsx_first") < at("dsx_before"), "{order:?}");
        assert!(at("dsx_last") > at("dsx_after"), "{order:?}");
        drop((middle, joined));
    }
    assert_nothing_left("dsx_");
}

#[test]
fn changes_while_frames_flow_lose_nothing() {
    if !here("changes_while_frames_flow_lose_nothing") {
        return;
    }
    {
        let bed = Bed::new();
        let (ns, pair, shared) = (&bed.ns, &bed.pair, &bed.shared);
        let marker = Marker::new().unwrap();
        let keep = join(ns, "dsw_keep", shared, 0, JoinOptions::new());
        let batch: Vec<Vec<u8>> = (0..25)
            .map(|i| frame(&pair.a, &pair.b, &marker, i as u8))
            .collect();
        let done = AtomicBool::new(false);
        let changes = AtomicUsize::new(0);
        let (sent, got) = thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    let place = JoinOptions::new().placement(Placement::First);
                    let j = join(ns, "dsw_churn", shared, 1, place);
                    ns.run(|| dispatcher::leave("vb", j.id, None))
                        .unwrap()
                        .unwrap();
                    changes.fetch_add(1, Ordering::Relaxed);
                }
            });
            // Batches until at least 2,000 frames went and the chain changed
            // a few times meanwhile (bounded, should the changer stall).
            let (mut sent, mut got) = (0, 0);
            for _ in 0..500 {
                if sent >= 2000 && changes.load(Ordering::Relaxed) >= 3 {
                    break;
                }
                got += delivered(&pair.a, &pair.b, &batch, &marker).len();
                sent += batch.len();
            }
            done.store(true, Ordering::Relaxed);
            (sent, got)
        });
        assert_eq!(
            got,
            sent,
            "every frame arrives while the chain changes; the devices say:\n{}",
            ns.ip(&["-s", "-s", "link", "show"]).unwrap_or_default()
        );
        let changes = changes.into_inner();
        assert!(changes > 0, "the chain changed while frames flowed");
        assert_eq!(names(ns), ["dsw_keep"]);
        drop(keep);
    }
    assert_nothing_left("dsw_");
}

#[test]
fn a_full_dispatcher_refuses_the_eleventh_program() {
    if !here("a_full_dispatcher_refuses_the_eleventh_program") {
        return;
    }
    {
        let bed = Bed::new();
        let (ns, shared) = (&bed.ns, &bed.shared);
        let members: Vec<Joined> = (0..dispatcher::MAX_SLOTS)
            .map(|i| join(ns, &format!("dsn_{i}"), shared, 0, JoinOptions::new()))
            .collect();
        let (o, p) = member("dsn_late", shared, 0, XDP_PASS);
        let e = ns
            .run(|| dispatcher::join("vb", &o, p, &JoinOptions::new()))
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains("the dispatcher is full"), "{e}");
        assert_eq!(names(ns).len(), dispatcher::MAX_SLOTS, "nothing changed");
        drop(members);
    }
    assert_nothing_left("dsn_");
}
