//! `nft2bpf load`, `list`, `log`, `unload` on the real kernel: a ruleset
//! loaded onto a veth of a namespace the test makes, frames sent across,
//! counters read back, reloads (good ones keep their rules' counters, bad
//! ones leave the running firewall and its pins as they were), and no
//! leftovers after `unload`.
//!
//! Every test has a pin root of its own under /sys/fs/bpf, removed when
//! it ends (also on failure), and the namespace goes with its veths and
//! whatever is still attached to them.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::Bed;
use testbed::Marker;

fn chain(rules: &str) -> String {
    format!(
        "table netdev t {{\n\tchain c {{\n\t\ttype filter hook ingress device \"nfb\" priority 0; policy accept;\n{rules}\t}}\n}}\n"
    )
}

const FIRST: &str = "\t\tudp dport 9 counter drop\n\t\tudp dport 7 counter accept\n";
const SECOND: &str =
    "\t\tudp dport 5 counter drop\n\t\tudp dport 9 counter drop\n\t\tudp dport 8 counter accept\n";

#[test]
fn load_filters_counts_reloads_and_unloads() {
    let Some(bed) = Bed::new("loading a ruleset onto a veth") else {
        return;
    };
    let first = bed.file("first.nft", &chain(FIRST));
    let out = bed.ok(&["load", first.to_str().unwrap()]);
    assert!(out.starts_with("attached xdp on nfb: program "), "{out}");

    // Dropped frames do not arrive, accepted ones do.
    assert_eq!(bed.send(&[9, 7, 9, 7, 7, 1]), vec![7, 7, 7, 1]);
    let counters = bed.counters();
    assert_eq!(
        counters,
        vec![
            ("c".into(), 0, "udp dport 9 counter drop".into(), 2),
            ("c".into(), 1, "udp dport 7 counter accept".into(), 3),
        ]
    );
    let listing = bed.ok(&["list", "ruleset"]);
    assert!(
        listing.contains("\t\tudp dport 9 counter packets 2 bytes 88 drop\n"),
        "{listing}"
    );
    assert!(
        listing.contains("type filter hook ingress device \"nfb\" priority filter; policy accept;"),
        "{listing}"
    );

    // A changed ruleset: the unchanged rule keeps its count (now the
    // second rule), the new ones start at zero; dport 7 now passes by
    // the policy.
    let attached = bed.xdp_prog("nfb");
    let prog = bed.rules_prog("xdp-nfb");
    let second = bed.file("second.nft", &chain(SECOND));
    let out = bed.ok(&["load", second.to_str().unwrap()]);
    assert!(out.starts_with("replaced xdp on nfb"), "{out}");
    assert!(out.contains("1 counters carried over"), "{out}");
    assert_ne!(
        bed.rules_prog("xdp-nfb"),
        prog,
        "the rules' program was replaced"
    );
    assert_eq!(
        bed.xdp_prog("nfb"),
        attached,
        "behind the same attachment (the generation switch)"
    );
    assert_eq!(bed.send(&[9, 5, 7, 8]), vec![7, 8]);
    assert_eq!(
        bed.counters(),
        vec![
            ("c".into(), 0, "udp dport 5 counter drop".into(), 1),
            ("c".into(), 1, "udp dport 9 counter drop".into(), 3),
            ("c".into(), 2, "udp dport 8 counter accept".into(), 1),
        ]
    );

    // Bad reloads change nothing: a syntax error, said with its place...
    let pins = bed.pins();
    let prog = bed.rules_prog("xdp-nfb");
    let bad = bed.file(
        "bad.nft",
        "table netdev t {\n\tchain c {\n\t\tudp dport 9 drip\n\t}\n}\n",
    );
    let out = bed.cli(&["load", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.nft:3:"), "{err}");
    assert!(err.contains(": error: "), "{err}");
    assert!(
        err.lines()
            .any(|l| l.trim_start_matches("nft2bpf: ").trim().starts_with('^')),
        "{err}"
    );
    // ... a device that does not exist ...
    let nodev = bed.file(
        "nodev.nft",
        &chain(FIRST).replace("\"nfb\"", "\"nfnodev0\""),
    );
    let out = bed.cli(&["load", nodev.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nfnodev0"), "{err}");
    // ... and a hook that is taken (by a ruleset under another pin
    // root), found only after the new programs were loaded and staged.
    let other_root = PathBuf::from(format!("{}-other", bed.root.display()));
    let other = bed.file(
        "other.nft",
        "table netdev o {\n\tchain c {\n\t\ttype filter hook ingress device \"nfa\" priority 0;\n\t}\n}\n",
    );
    let out = bed.cli(&[
        "load",
        other.to_str().unwrap(),
        "--pin-root",
        other_root.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let both = bed.file(
        "both.nft",
        &chain(SECOND).replace("device \"nfb\"", "devices = { \"nfb\", \"nfa\" }"),
    );
    let out = bed.cli(&["load", both.to_str().unwrap()]);
    let _ = bed.cli(&["unload", "--pin-root", other_root.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&other_root);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nfa"), "{err}");
    assert_eq!(bed.pins(), pins, "the pins are as they were");
    assert_eq!(bed.rules_prog("xdp-nfb"), prog, "the same program runs");
    assert_eq!(bed.xdp_prog("nfb"), attached, "behind the same attachment");
    assert_eq!(bed.send(&[9, 7]), vec![7], "the old firewall still works");

    // Unload: no pins, no programs.
    let out = bed.ok(&["unload"]);
    assert_eq!(out, "detached xdp-nfb\n");
    assert!(!bed.root.exists(), "{:?}", bed.pins());
    assert_eq!(bed.xdp_prog("nfb"), None);
    assert_eq!(bed.send(&[9, 7]), vec![9, 7]);
    // Nothing to unload is no error.
    assert_eq!(bed.ok(&["unload"]), "");
}

#[test]
fn log_prints_records_with_their_prefix() {
    let Some(bed) = Bed::new("following log records") else {
        return;
    };
    let fw = bed.file(
        "log.nft",
        &chain("\t\tudp dport 9 log prefix \"nft-test: \" drop\n"),
    );
    // XDP: the packet socket that collects frames sees them after XDP
    // but before tc ingress.
    bed.ok(&["load", fw.to_str().unwrap()]);
    let mut cmd = bed.cmd(&["log", "--count", "2", "--timeout", "10"]);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = bed.ns.run(move || cmd.spawn().expect("spawns")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(bed.send(&[9, 7, 9]), vec![7]);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for l in lines {
        assert!(l.starts_with("nft-test: IN=nfb OUT= MAC="), "{l}");
        assert!(l.contains("SRC=10.0.0.1 DST=10.0.0.2"), "{l}");
        assert!(l.contains("PROTO=UDP SPT=1000 DPT=9"), "{l}");
        assert!(
            l.ends_with("[t/c rule 0: udp dport 9 log prefix \"nft-test: \" drop]"),
            "{l}"
        );
    }
    bed.ok(&["unload"]);
}

/// A reload moves every hook of the ruleset at one instant (its
/// generation switch), as nft's commit does. Frames flow all through the
/// reload (the load runs as another process); each crosses the egress
/// hook of `nfa`, then the ingress hook of `nfb`, and both rulesets log
/// there which rules it met. No frame meets the new rules at egress and
/// then the old ones at ingress; at each hook the frames meet the old
/// rules, then the new ones; every frame is logged at both hooks, once.
/// The log rings are read as the frames go, the old ones held open
/// across the reload so that none of their records is lost. The counter
/// both rulesets have counts every frame, those the old rules met after
/// its value was carried included.
#[test]
fn a_reload_switches_every_hook_at_once() {
    use bpf_builder::ringbuf::RingBuf;
    use nft2bpf::compile::log::LogRecord;
    use nft2bpf::deploy::{Running, describe_log, running};

    let Some(bed) = Bed::new("reloading two hooks while frames flow") else {
        return;
    };
    let ruleset = |rules: &str| {
        format!(
            "table netdev t {{\n\
             \tchain out {{\n\
             \t\ttype filter hook egress device \"nfa\" priority 0; policy accept;\n\
             \t\tudp dport 9 log prefix \"{rules}-out \"\n\
             \t}}\n\
             \tchain in {{\n\
             \t\ttype filter hook ingress device \"nfb\" priority 0; policy accept;\n\
             \t\tudp dport 9 counter\n\
             \t\tudp dport 9 log prefix \"{rules}-in \"\n\
             \t}}\n\
             }}\n"
        )
    };
    let old = bed.file("old.nft", &ruleset("old"));
    let new = bed.file("new.nft", &ruleset("new"));
    bed.ok(&["load", old.to_str().unwrap()]);

    // Each frame's number follows the marker in its payload.
    const NUMBER_AT: usize = 14 + 20 + 8 + 16;
    let marker = Marker::new().unwrap();
    let (a, b) = (&bed.pair.a, &bed.pair.b);
    let frame = |n: u32| {
        let mut payload = marker.as_bytes().to_vec();
        payload.extend_from_slice(&n.to_be_bytes());
        let (src, dst) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        testbed::udp4_frame(a.mac, b.mac, src, dst, 1000, 9, &payload).unwrap()
    };
    // (egress rules, ingress rules) each frame met.
    let mut met: Vec<[Option<String>; 2]> = Vec::new();
    let mut drain = |rings: &mut Vec<(RingBuf, Running)>| {
        for (ring, r) in rings.iter_mut() {
            let meta = r.meta.as_ref().unwrap();
            while let Some(bytes) = ring.next_record().unwrap() {
                let rec = LogRecord::parse(bytes).unwrap();
                let line = describe_log(meta, &rec);
                let (rules, hook) = line.prefix.trim_end().split_once('-').unwrap();
                let n = &rec.packet[NUMBER_AT..NUMBER_AT + 4];
                let n = u32::from_be_bytes(n.try_into().unwrap()) as usize;
                if met.len() <= n {
                    met.resize(n + 1, [None, None]);
                }
                let at = &mut met[n][usize::from(hook == "in")];
                assert!(at.is_none(), "frame {n} logged twice at {hook}");
                *at = Some(rules.to_string());
            }
        }
    };
    let open_rings = || {
        running(&bed.root)
            .unwrap()
            .into_iter()
            .map(|r| (RingBuf::new(r.log.as_ref().unwrap()).unwrap(), r))
            .collect::<Vec<_>>()
    };
    let mut rings = open_rings();
    assert_eq!(rings.len(), 2, "two hooks");

    let sock = a.socket().unwrap();
    let sent = std::cell::Cell::new(0u32);
    // Sends `frames`, waits a little, reads the rings.
    let mut send_burst = |rings: &mut Vec<(RingBuf, Running)>, frames: u32| {
        for _ in 0..frames {
            sock.send(&frame(sent.get())).unwrap();
            sent.set(sent.get() + 1);
        }
        std::thread::sleep(Duration::from_millis(1));
        drain(rings);
    };
    for _ in 0..10 {
        send_burst(&mut rings, 32);
    }
    let mut load = bed.cmd(&["load", new.to_str().unwrap()]);
    load.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = bed.ns.run(move || load.spawn().expect("spawns")).unwrap();
    let child = std::sync::Mutex::new(child);
    while child.lock().unwrap().try_wait().unwrap().is_none() {
        send_burst(&mut rings, 32);
        assert!(sent.get() < 1 << 20, "the load took too long");
    }
    let out = child.into_inner().unwrap().wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rings.extend(open_rings());
    for _ in 0..10 {
        send_burst(&mut rings, 32);
    }
    std::thread::sleep(Duration::from_millis(100));
    send_burst(&mut rings, 0);
    let sent = sent.get();

    let gens: Vec<[&str; 2]> = (0..sent as usize)
        .map(|n| match met.get(n) {
            Some([Some(o), Some(i)]) => [o.as_str(), i.as_str()],
            m => panic!("frame {n} of {sent} was not logged at both hooks: {m:?}"),
        })
        .collect();
    for (n, g) in gens.iter().enumerate() {
        assert_ne!(
            *g,
            ["new", "old"],
            "frame {n} met the new rules, then the old"
        );
    }
    let in_flight = gens.iter().filter(|g| **g == ["old", "new"]).count();
    eprintln!("{sent} frames, {in_flight} crossed the switch between the two hooks");
    for hook in 0..2 {
        let first_new = gens.iter().position(|g| g[hook] == "new").unwrap();
        eprintln!("hook {hook}: the new rules from frame {first_new}");
        assert!(first_new >= 320, "the old rules ran at hook {hook}");
        assert!(
            gens[first_new..].iter().all(|g| g[hook] == "new"),
            "at hook {hook}, every frame from {first_new} on met the new rules"
        );
    }
    let counted = bed
        .counters()
        .into_iter()
        .find(|c| c.2 == "udp dport 9 counter")
        .unwrap();
    assert_eq!(counted.3, u64::from(sent), "{counted:?}");
    bed.ok(&["unload"]);
}

/// `load --hook tcx-ingress`: the ingress chain runs in tcx ingress on
/// `nfb`, the egress chain in tcx egress on `nfa`. What the egress
/// program drops never leaves `nfa`; the ingress program's counters say
/// what it saw (a packet socket sees frames before tc ingress, so the
/// counters, not arrivals, tell what it dropped). `--before` puts ours
/// before another tool's program; `unload` takes ours away, leaving it.
#[test]
fn tcx_hooks_load_filter_and_unload() {
    use bpf_builder::attach::tcx::{self, Hook};
    let Some(bed) = Bed::new("deploying to tcx") else {
        return;
    };
    let text = "table netdev t {\n\
                \tchain in {\n\
                \t\ttype filter hook ingress device \"nfb\" priority 0; policy accept;\n\
                \t\tudp dport 9 counter drop\n\
                \t\tcounter\n\
                \t}\n\
                \tchain out {\n\
                \t\ttype filter hook egress device \"nfa\" priority 0; policy accept;\n\
                \t\tudp dport 7 counter drop\n\
                \t}\n\
                }\n";
    let f = bed.file("tcx.nft", text);
    let f = f.to_str().unwrap();
    // Another tool's program on both chains: ours go before it (in
    // every chain they go to, the program named must be there).
    let mut other = bpf_builder::object::Object::new();
    let mut pass = bpf_builder::asm::Asm::new();
    pass.mov32(bpf_builder::insn::Reg::R0, -1);
    pass.exit();
    let id = other
        .add_program(
            "other",
            bpf_builder::object::ProgramType::SchedCls,
            pass.finish().unwrap(),
        )
        .unwrap();
    let other = other.load().unwrap();
    let prog = other.program(id);
    let _other_links = bed
        .ns
        .run(|| {
            let opts = tcx::TcxOptions::default();
            let ingress = tcx::attach("nfb", Hook::Ingress, prog, &opts).unwrap();
            let egress = tcx::attach("nfa", Hook::Egress, prog, &opts).unwrap();
            (ingress, egress)
        })
        .unwrap();
    let out = bed.ok(&["load", f, "--hook", "tcx-ingress", "--before", "other"]);
    assert!(
        out.contains("tcx-ingress on nfb") && out.contains("tcx-egress on nfa"),
        "{out}"
    );
    let names = |dev: &'static str, hook: Hook| -> Vec<String> {
        bed.ns
            .run(move || {
                let chain = tcx::query(dev, hook).unwrap();
                chain.names().iter().map(|n| n.to_string()).collect()
            })
            .unwrap()
    };
    // Each hook runs the ruleset's generation switch.
    assert_eq!(names("nfb", Hook::Ingress), ["nft_sw_tcx_in", "other"]);
    assert_eq!(names("nfa", Hook::Egress), ["nft_sw_tcx_eg", "other"]);
    // Sent from nfa, a drop at its egress fails the send (ENOBUFS).
    let marker = Marker::new().unwrap();
    let (a, b) = (&bed.pair.a, &bed.pair.b);
    let mut rx = b.socket().unwrap();
    rx.set_incoming_only(true).unwrap();
    let tx = a.socket().unwrap();
    for port in [7u16, 8, 9] {
        let frame = bed.frame(port, &marker);
        match tx.send(&frame) {
            Ok(()) => {}
            Err(e) => assert_eq!((port, e.raw_os_error()), (7, Some(105)), "{e}"),
        }
    }
    let mut arrived = Vec::new();
    let mut buf = vec![0u8; 2048];
    while let Some(n) = rx.recv(&mut buf, Duration::from_millis(300)).unwrap() {
        if marker.is_in(&buf[..n]) {
            arrived.push(u16::from_be_bytes([buf[36], buf[37]]));
        }
    }
    arrived.sort();
    assert_eq!(arrived, [8, 9]);
    let counts: Vec<(String, u64, u64)> = bed
        .counters()
        .into_iter()
        .map(|(chain, rule, _, packets)| (chain, rule, packets))
        .collect();
    for want in [
        ("in".to_string(), 0, 1),
        ("in".into(), 1, 1),
        ("out".into(), 0, 1),
    ] {
        assert!(counts.contains(&want), "{want:?} in {counts:?}");
    }
    bed.ok(&["unload"]);
    assert_eq!(names("nfb", Hook::Ingress), ["other"]);
    assert_eq!(names("nfa", Hook::Egress), ["other"]);
    assert!(bed.pins().is_empty(), "{:?}", bed.pins());
}

/// Under `ip netns exec` (a mount namespace of the command's own, with a
/// /sys without bpffs) `load` would mount a bpffs that goes away with the
/// command, and the firewall with its pins: it refuses, says why, and
/// attaches nothing. The commands that read the pins say that they cannot
/// see them, rather than that nothing is loaded.
#[test]
fn load_under_ip_netns_exec_is_refused_rather_than_lost() {
    let Some(bed) = Bed::new("loading under ip netns exec") else {
        return;
    };
    let file = bed.file("first.nft", &chain(FIRST));
    let exec = |args: &[&str]| {
        std::process::Command::new("ip")
            .args(["netns", "exec", bed.ns.name(), common::BIN])
            .args(args)
            .args(["--pin-root", bed.root.to_str().unwrap()])
            .current_dir(&bed.dir)
            .output()
            .expect("ip runs")
    };
    let out = exec(&["load", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("/sys/fs/bpf is not a bpf filesystem here")
            && err.contains("nsenter --net=/run/netns/NAME"),
        "{err}"
    );
    assert_eq!(bed.xdp_prog("nfb"), None, "nothing attached");
    assert!(bed.pins().is_empty(), "{:?}", bed.pins());

    // Loaded from the system's mount namespace, it is there, and the
    // commands under `ip netns exec` say that they cannot see it.
    bed.ok(&["load", file.to_str().unwrap()]);
    for args in [&["list", "ruleset"][..], &["unload"]] {
        let out = exec(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("what is pinned in the system's bpffs is not visible"),
            "{args:?}: {err}"
        );
    }
    assert!(bed.xdp_prog("nfb").is_some(), "still attached");
    bed.ok(&["unload"]);
}

/// A reload while a stream of frames flows (issue 13): no frame is lost,
/// each meets the old rules or the new ones whole, the old before the
/// new, and the counter of the rule both rulesets have goes on. The
/// source port is the frame's number; the old rules drop the odd ones,
/// the new ones the multiples of three, so each frame's fate says which
/// rules it met.
#[test]
fn a_reload_under_a_stream_loses_nothing_and_switches_between_two_frames() {
    let Some(bed) = Bed::new("reloading while frames flow") else {
        return;
    };
    const FRAMES: u16 = 2000;
    let set = |keep: &dyn Fn(u16) -> bool| {
        let ports: Vec<String> = (0..FRAMES)
            .filter(|&n| !keep(n))
            .map(|n| (1000 + n).to_string())
            .collect();
        chain(&format!(
            "\t\tudp dport 9 counter\n\t\tudp sport {{ {} }} drop\n",
            ports.join(", ")
        ))
    };
    let old_keeps = |n: u16| n.is_multiple_of(2);
    let new_keeps = |n: u16| !n.is_multiple_of(3);
    let old = bed.file("old.nft", &set(&old_keeps));
    let new = bed.file("new.nft", &set(&new_keeps));
    bed.ok(&["load", old.to_str().unwrap()]);

    let marker = Marker::new().unwrap();
    let (a, b) = (&bed.pair.a, &bed.pair.b);
    let frames: Vec<Vec<u8>> = (0..FRAMES)
        .map(|n| {
            testbed::udp4_frame(
                a.mac,
                b.mac,
                [10, 0, 0, 1].into(),
                [10, 0, 0, 2].into(),
                1000 + n,
                9,
                marker.as_bytes(),
            )
            .unwrap()
        })
        .collect();
    let reload = || {
        let out = bed.ok(&["load", new.to_str().unwrap()]);
        assert!(out.contains("1 counters carried over"), "{out}");
    };
    let got = testbed::stream_and_collect(a, b, &frames, &marker, Duration::from_secs(3), reload)
        .unwrap();
    let arrived: Vec<u16> = got
        .iter()
        .map(|f| u16::from_be_bytes([f[34], f[35]]) - 1000)
        .collect();
    // In order, each once.
    assert!(arrived.windows(2).all(|w| w[0] < w[1]), "{arrived:?}");
    let came = |n: u16| arrived.binary_search(&n).is_ok();
    // The switch: frames before it met the old rules, from it on the new.
    let switch = (0..=FRAMES)
        .find(|&k| (k..FRAMES).all(|n| came(n) == new_keeps(n)))
        .unwrap();
    assert!(
        (0..switch).all(|n| came(n) == old_keeps(n)),
        "every frame before the switch at {switch} met the old rules whole"
    );
    assert!(switch > 0, "the old rules ran");
    assert!(
        switch <= FRAMES / 2,
        "the frames sent after the reload met the new rules: switch at {switch}"
    );
    // The rule both rulesets have counted every frame, across the reload.
    let counters = bed.counters();
    assert_eq!(
        counters[0],
        (
            "c".into(),
            0,
            "udp dport 9 counter".into(),
            u64::from(FRAMES)
        ),
        "{counters:?}"
    );
    bed.ok(&["unload"]);
}
