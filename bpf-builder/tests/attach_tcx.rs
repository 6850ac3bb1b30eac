//! tcx on real veth traffic: every anchor kind, expected revisions, the
//! ordering helper (also under concurrency), link-less replace.
//!
//! Each program `k` appends the digit `k` to a u64 in a map when a test
//! frame passes (value = value * 16 + k) and returns TCX_NEXT, so after one
//! frame the map spells the order the programs ran in.

mod common;

use std::sync::Barrier;

use bpf_builder::asm::Asm;
use bpf_builder::attach::tcx::{self, Anchor, Hook, Place, Ref, TcxOptions};
use bpf_builder::attach::{AttachError, Link};
use bpf_builder::handle::Program;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, JmpOp, Reg::*, Size};
use bpf_builder::kernel_id::{KernelLinkId, KernelProgId};
use bpf_builder::load::Loaded;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgramType};
use common::*;
use testbed::{Marker, Netns, VethPair};

/// Program `k`: trace = trace * 16 + k for test frames; TCX_NEXT.
fn tracer(trace: MapId, k: i32) -> bpf_builder::asm::Code {
    let mut a = Asm::new();
    let next = a.new_label();
    a.ldx(Size::W, R2, R1, 76); // __sk_buff.data
    a.ldx(Size::W, R3, R1, 80); // __sk_buff.data_end
    require_test_frame(&mut a, next);
    a.st(Size::W, R10, -4, 0);
    a.ld_map_fd(R1, trace);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, next);
    a.ldx(Size::DW, R1, R0, 0);
    a.alu64(AluOp::Lsh, R1, 4);
    a.alu64(AluOp::Or, R1, k);
    a.stx(Size::DW, R0, 0, R1);
    a.bind(next);
    a.mov64(R0, tcx::TCX_NEXT);
    a.exit();
    a.finish().unwrap()
}

/// `n` tracers `{prefix}1`..`{prefix}n` (digits 1..n) sharing map `trace`.
fn tracers(prefix: &str, n: i32, ty: ProgramType) -> Loaded {
    let mut obj = Object::new();
    let trace = obj.add_map(MapSpec::array("trace", 8, 1)).unwrap();
    for k in 1..=n {
        obj.add_program(&format!("{prefix}{k}"), ty, tracer(trace, k))
            .unwrap();
    }
    obj.load().unwrap()
}

fn prog<'a>(l: &'a Loaded, name: &str) -> &'a Program {
    l.program_by_name(name).unwrap()
}

fn id(p: &Program) -> KernelProgId {
    p.info().unwrap().id
}

/// Sends one test frame over `pair` (a to b) and returns the trace,
/// clearing it.
fn trace_of(pair: &VethPair, loaded: &Loaded) -> u64 {
    let map = loaded.map_by_name("trace").unwrap();
    map.update(&0u32.to_ne_bytes(), &0u64.to_ne_bytes(), Default::default())
        .unwrap();
    let marker = Marker::new().unwrap();
    let f = frame(&pair.a, &pair.b, &marker, 0);
    // tc ingress runs after the packet taps, so the frame is collected
    // whatever the programs do; collecting it means they have run.
    assert_eq!(delivered(&pair.a, &pair.b, &[f], &marker).len(), 1);
    read_u64(map, 0)
}

#[test]
fn every_anchor_kind_places_the_program_where_query_and_traffic_say() {
    if !testbed::privileged("tcx anchor test") {
        return;
    }
    let prefix = "tt1_";
    {
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("va", "vb").unwrap();
        let l = tracers(prefix, 6, ProgramType::TcxIngress);
        let [a, b, c, d, e, f] = [1, 2, 3, 4, 5, 6].map(|k| prog(&l, &format!("tt1_{k}")));
        let at = |p: &Program, anchor: Anchor<'_>| -> Link {
            ns.run(|| tcx::attach("vb", Hook::Ingress, p, &TcxOptions::new().anchor(anchor)))
                .unwrap()
                .unwrap()
        };
        let la = at(a, Anchor::Tail); // [a]
        let lb = at(b, Anchor::Head); // [b a]
        let lc = at(c, Anchor::After(Ref::Program(b))); // [b c a]
        let ld = at(d, Anchor::Before(Ref::LinkId(la.id().unwrap()))); // [b c d a]
        let le = at(e, Anchor::After(Ref::Link(&lc))); // [b c e d a]
        let lf = at(f, Anchor::Before(Ref::ProgramId(id(b)))); // [f b c e d a]

        let chain = ns.run(|| tcx::query("vb", Hook::Ingress)).unwrap().unwrap();
        assert_eq!(
            chain.prog_ids(),
            [f, b, c, e, d, a].map(id).to_vec(),
            "query order"
        );
        let links: Vec<Option<KernelLinkId>> = [&lf, &lb, &lc, &le, &ld, &la]
            .iter()
            .map(|l| Some(l.id().unwrap()))
            .collect();
        assert_eq!(
            chain.entries.iter().map(|e| e.link_id).collect::<Vec<_>>(),
            links
        );
        assert_eq!(
            chain.names(),
            ["tt1_6", "tt1_2", "tt1_3", "tt1_5", "tt1_4", "tt1_1"]
        );
        assert_eq!(trace_of(&pair, &l), 0x623541, "traffic order");

        // Dropping a link takes its program out of the chain.
        drop(lc);
        wait_for("c out of the chain after its link dropped", || {
            let chain = ns.run(|| tcx::query("vb", Hook::Ingress)).unwrap().unwrap();
            !chain.prog_ids().contains(&id(c))
        });
        assert_eq!(trace_of(&pair, &l), 0x62541);
        // Link update swaps in place: c where e was.
        le.update(c).unwrap();
        assert_eq!(trace_of(&pair, &l), 0x62341);
        // Egress: traffic from va runs va's egress chain.
        let g = at(e, Anchor::Tail);
        drop(g);
        let eg1 = ns
            .run(|| {
                tcx::attach(
                    "va",
                    Hook::Egress,
                    e,
                    &TcxOptions::new().anchor(Anchor::Tail),
                )
            })
            .unwrap()
            .unwrap();
        drop((la, lb, ld, le, lf));
        // Dropping a link's last fd detaches it, but a child another test
        // thread is forking holds a copy until it execs: wait for it.
        let ns = &ns;
        let empty = |dev: &'static str, hook: Hook| {
            move || {
                ns.run(|| tcx::query(dev, hook))
                    .unwrap()
                    .unwrap()
                    .prog_ids()
                    .is_empty()
            }
        };
        wait_for("vb's ingress chain empty", empty("vb", Hook::Ingress));
        assert_eq!(trace_of(&pair, &l), 0x5);
        let eg2 = ns
            .run(|| {
                tcx::attach(
                    "va",
                    Hook::Egress,
                    a,
                    &TcxOptions::new().anchor(Anchor::Head),
                )
            })
            .unwrap()
            .unwrap();
        assert_eq!(trace_of(&pair, &l), 0x15);
        let chain = ns.run(|| tcx::query("va", Hook::Egress)).unwrap().unwrap();
        assert_eq!(chain.prog_ids(), vec![id(a), id(e)]);
        drop((eg1, eg2));
        wait_for("va's egress chain empty", empty("va", Hook::Egress));
        assert_eq!(trace_of(&pair, &l), 0);
    }
    assert_nothing_left(prefix);
}

#[test]
fn stale_revision_and_bad_anchors_fail_clearly_and_change_nothing() {
    if !testbed::privileged("tcx revision test") {
        return;
    }
    let prefix = "tt2_";
    {
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("va", "vb").unwrap();
        let l = tracers(prefix, 4, ProgramType::TcxIngress);
        let [a, b, c, d] = [1, 2, 3, 4].map(|k| prog(&l, &format!("tt2_{k}")));
        let q = || ns.run(|| tcx::query("vb", Hook::Ingress)).unwrap().unwrap();

        let before = q();
        assert!(before.entries.is_empty());
        let _la = ns
            .run(|| {
                tcx::attach(
                    "vb",
                    Hook::Ingress,
                    a,
                    &TcxOptions::new()
                        .anchor(Anchor::Tail)
                        .expected_revision(before.revision),
                )
            })
            .unwrap()
            .unwrap();
        let after = q();
        assert_ne!(after.revision, before.revision);

        let err = ns
            .run(|| {
                tcx::attach(
                    "vb",
                    Hook::Ingress,
                    b,
                    &TcxOptions::new()
                        .anchor(Anchor::Head)
                        .expected_revision(before.revision),
                )
            })
            .unwrap()
            .unwrap_err();
        match &err {
            AttachError::RevisionMoved {
                expected, current, ..
            } => {
                assert_eq!(*expected, before.revision);
                assert_eq!(*current, after.revision);
            }
            _ => panic!("expected RevisionMoved, got {err}"),
        }
        assert!(err.to_string().contains("moved"), "{err}");
        assert_eq!(q(), after, "a failed attach leaves the chain as it was");

        // An anchor that is not in the chain.
        let err = ns
            .run(|| {
                tcx::attach(
                    "vb",
                    Hook::Ingress,
                    b,
                    &TcxOptions::new().anchor(Anchor::Before(Ref::Program(c))),
                )
            })
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, AttachError::AnchorNotFound { .. }), "{err}");
        // The same program twice.
        let err = ns
            .run(|| {
                tcx::attach(
                    "vb",
                    Hook::Ingress,
                    a,
                    &TcxOptions::new().anchor(Anchor::Head),
                )
            })
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, AttachError::HookTaken { .. }), "{err}");
        // An unknown device.
        let err = ns
            .run(|| {
                tcx::attach(
                    "nosuch0",
                    Hook::Ingress,
                    b,
                    &TcxOptions::new().anchor(Anchor::Head),
                )
            })
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, AttachError::UnknownInterface(_)), "{err}");
        // A program of the wrong type.
        let mut obj = Object::new();
        obj.add_program("tt2_xdp", ProgramType::Xdp, xdp_action(XDP_PASS, None))
            .unwrap();
        let xdp = obj.load().unwrap();
        let err = ns
            .run(|| {
                tcx::attach(
                    "vb",
                    Hook::Ingress,
                    prog(&xdp, "tt2_xdp"),
                    &TcxOptions::new().anchor(Anchor::Head),
                )
            })
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, AttachError::WrongProgram { .. }), "{err}");
        assert_eq!(q(), after, "failed attaches leave the chain as it was");
        assert_eq!(trace_of(&pair, &l), 0x1);

        // Link-less attach, replace in place, detach; with revisions.
        let rev = q().revision;
        ns.run(|| {
            tcx::attach_unlinked(
                "vb",
                Hook::Ingress,
                c,
                &TcxOptions::new()
                    .anchor(Anchor::Head)
                    .expected_revision(rev),
            )
        })
        .unwrap()
        .unwrap();
        let chain = q();
        assert_eq!(chain.prog_ids(), vec![id(c), id(a)]);
        assert_eq!(chain.entries[0].link_id, None);
        let err = ns
            .run(|| tcx::replace_unlinked("vb", Hook::Ingress, c, d, Some(rev)))
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, AttachError::RevisionMoved { .. }), "{err}");
        ns.run(|| tcx::replace_unlinked("vb", Hook::Ingress, c, d, Some(chain.revision)))
            .unwrap()
            .unwrap();
        assert_eq!(q().prog_ids(), vec![id(d), id(a)]);
        assert_eq!(trace_of(&pair, &l), 0x41);
        ns.run(|| tcx::detach_unlinked("vb", Hook::Ingress, d, None))
            .unwrap()
            .unwrap();
        assert_eq!(q().prog_ids(), vec![id(a)]);
    }
    assert_nothing_left(prefix);
}

#[test]
fn ordering_helper_retries_when_the_chain_moves_under_it() {
    if !testbed::privileged("tcx ordering helper test") {
        return;
    }
    let prefix = "tt3_";
    {
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("va", "vb").unwrap();
        let l = tracers(prefix, 3, ProgramType::TcxIngress);
        let [a, b, c] = [1, 2, 3].map(|k| prog(&l, &format!("tt3_{k}")));
        let _la = ns
            .run(|| {
                tcx::attach(
                    "vb",
                    Hook::Ingress,
                    a,
                    &TcxOptions::new().anchor(Anchor::Tail),
                )
            })
            .unwrap()
            .unwrap();

        // The first resolution is made stale by an attach in between: the
        // helper must see ESTALE, read again, and resolve against `b`.
        let mut calls = 0;
        let mut intruder = None;
        let lc = ns
            .run(|| {
                tcx::attach_with("vb", Hook::Ingress, c, 8, |chain| {
                    calls += 1;
                    if calls == 1 {
                        intruder = Some(
                            tcx::attach(
                                "vb",
                                Hook::Ingress,
                                b,
                                &TcxOptions::new().anchor(Anchor::Head),
                            )
                            .unwrap(),
                        );
                    }
                    // "Right before the first program", whatever it is now.
                    Ok(Anchor::Before(Ref::ProgramId(chain.entries[0].prog_id)))
                })
            })
            .unwrap()
            .unwrap();
        assert_eq!(calls, 2);
        let chain = ns.run(|| tcx::query("vb", Hook::Ingress)).unwrap().unwrap();
        assert_eq!(chain.prog_ids(), vec![id(c), id(b), id(a)]);
        assert_eq!(trace_of(&pair, &l), 0x321);
        drop(lc);
        wait_for("c out of the chain after its link dropped", || {
            let chain = ns.run(|| tcx::query("vb", Hook::Ingress)).unwrap().unwrap();
            !chain.prog_ids().contains(&id(c))
        });

        // By name.
        let lc = ns
            .run(|| tcx::attach_placed("vb", Hook::Ingress, c, &Place::AfterName("tt3_2".into())))
            .unwrap()
            .unwrap();
        assert_eq!(trace_of(&pair, &l), 0x231);
        drop(lc);
        wait_for("c out of the chain after its link dropped", || {
            let chain = ns.run(|| tcx::query("vb", Hook::Ingress)).unwrap().unwrap();
            !chain.prog_ids().contains(&id(c))
        });
        let err = ns
            .run(|| tcx::attach_placed("vb", Hook::Ingress, c, &Place::BeforeName("nope".into())))
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, AttachError::Unresolved { .. }), "{err}");
        assert!(err.to_string().contains("no program named `nope`"), "{err}");
        drop(intruder);
    }
    assert_nothing_left(prefix);
}

#[test]
fn two_threads_placing_programs_at_once_get_the_order_both_asked_for() {
    if !testbed::privileged("tcx concurrent ordering test") {
        return;
    }
    let prefix = "tt4_";
    {
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("va", "vb").unwrap();
        // 1: the base; 2..=7 thread A (after base, each after the
        // previous); 8..=13 thread B (before base, each before the previous).
        let l = tracers(prefix, 13, ProgramType::TcxIngress);
        let name = |k: i32| format!("tt4_{k}");
        let base = ns
            .run(|| {
                tcx::attach(
                    "vb",
                    Hook::Ingress,
                    prog(&l, &name(1)),
                    &TcxOptions::new().anchor(Anchor::Tail),
                )
            })
            .unwrap()
            .unwrap();
        let barrier = Barrier::new(2);
        let place_all = |ks: Vec<i32>, after: bool| -> Vec<Link> {
            ns.run(|| {
                barrier.wait();
                let mut prev = name(1);
                let mut links = Vec::new();
                for k in ks {
                    let place = if after {
                        Place::AfterName(prev.clone())
                    } else {
                        Place::BeforeName(prev.clone())
                    };
                    links.push(
                        tcx::attach_placed("vb", Hook::Ingress, prog(&l, &name(k)), &place)
                            .unwrap(),
                    );
                    prev = name(k);
                }
                links
            })
            .unwrap()
        };
        let (links_a, links_b) = std::thread::scope(|s| {
            let ta = s.spawn(|| place_all((2..=7).collect(), true));
            let tb = s.spawn(|| place_all((8..=13).collect(), false));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let chain = ns.run(|| tcx::query("vb", Hook::Ingress)).unwrap().unwrap();
        let want: Vec<String> = [13, 12, 11, 10, 9, 8, 1, 2, 3, 4, 5, 6, 7]
            .iter()
            .map(|&k| name(k))
            .collect();
        assert_eq!(chain.names(), want);
        // 13 digits: 0xDCBA98 1 234567.
        assert_eq!(trace_of(&pair, &l), 0xdcba981234567);
        drop((links_a, links_b, base));
    }
    assert_nothing_left(prefix);
}
