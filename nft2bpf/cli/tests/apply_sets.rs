//! `nft2bpf apply FILE` on the real kernel: a file of set commands
//! applied as one transaction to a ruleset loaded onto a veth of a
//! namespace the test makes (XDP). Each set the file touches is replaced
//! whole, by one update of the array of maps the program reads the set's
//! map from: a stream of frames crossing while it happens never sees the
//! set half changed (the same commands run one by one, in place, let
//! frames through); a file with an error changes nothing and leaves no
//! map behind.
//!
//! The test has a pin root of its own under /sys/fs/bpf, removed when it
//! ends (also on failure); the namespace goes with its veths.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bpf_builder::handle::Map;
use bpf_builder::kernel_id::KernelMapId;
use bpf_builder::sys::bpf::{map_get_fd_by_id, map_get_next_id};
use common::Bed;
use testbed::Marker;

/// Runs a command line (split at spaces) that must succeed: its stdout.
fn ok(bed: &Bed, line: &str) -> String {
    bed.ok(&line.split(' ').collect::<Vec<_>>())
}

/// Runs a command line (split at spaces) that must fail: its stderr.
fn fails(bed: &Bed, line: &str) -> String {
    bed.fails(&line.split(' ').collect::<Vec<_>>())
}

const RULESET: &str = "table netdev t {
	set blocked {
		type inet_service
		elements = { 5, 9 }
	}
	set small {
		type inet_service
		size 2
	}
	set other {
		type inet_service
	}
	set nets {
		type ipv4_addr
		flags interval
	}
	chain c {
		type filter hook ingress device \"nfb\" priority 0; policy accept;
		udp dport @blocked drop
		udp dport @small drop
		udp dport @other drop
		ip saddr @nets drop
	}
}
";

/// The kernel ids, names and sizes of the maps that exist now.
fn maps_now() -> Vec<(u32, String, u32)> {
    let mut out = Vec::new();
    let mut at = None;
    while let Some(id) = map_get_next_id(at).unwrap() {
        at = Some(id);
        if let Ok(map) = map_get_fd_by_id(id).and_then(Map::from_fd) {
            out.push((id.get(), map.name().to_string(), map.max_entries()));
        }
    }
    out
}

/// The kernel id of the map in slot 0 of the pinned array of maps of
/// set `name` of the running `xdp-nfb` program.
fn set_map_id(bed: &Bed, name: &str) -> u32 {
    let running = nft2bpf::deploy::running(&bed.root).unwrap();
    let r = running.iter().find(|r| r.key == "xdp-nfb").unwrap();
    let (_, map) = r
        .sets
        .iter()
        .find(|(s, _)| s.name == name)
        .expect("the set is pinned");
    map.id().unwrap().get()
}

/// Sends a stream of frames to UDP port `port` from `nfa` to `nfb` while
/// `change` runs: (frames sent, frames that came through).
fn stream_during(bed: &Bed, port: u16, change: impl FnOnce()) -> (usize, usize) {
    let marker = Marker::new().unwrap();
    let (a, b) = (&bed.pair.a, &bed.pair.b);
    let frame = bed.frame(port, &marker);
    let mut rx = b.socket().unwrap();
    rx.set_incoming_only(true).unwrap();
    rx.set_receive_buffer(64 << 20).unwrap();
    let tx = a.socket().unwrap();
    let stop = AtomicBool::new(false);
    let (sent, came) = std::thread::scope(|s| {
        let sender = s.spawn(|| {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..16 {
                    tx.send(&frame).unwrap();
                    sent += 1;
                }
                // Below the kernel's per-CPU backlog of 1,000 frames.
                std::thread::sleep(Duration::from_micros(100));
            }
            sent
        });
        let receiver = s.spawn(|| {
            let mut came = 0;
            let mut buf = vec![0u8; 2048];
            loop {
                match rx.recv(&mut buf, Duration::from_millis(200)).unwrap() {
                    Some(n) if marker.is_in(&buf[..n]) => came += 1,
                    Some(_) => {}
                    None if stop.load(Ordering::Relaxed) => return came,
                    None => {}
                }
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        // The stream stops also when `change` fails.
        let changed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(change));
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        let counts = (sender.join().unwrap(), receiver.join().unwrap());
        if let Err(panic) = changed {
            std::panic::resume_unwind(panic);
        }
        counts
    });
    assert_eq!(
        rx.drops().unwrap(),
        0,
        "the receiving socket dropped frames"
    );
    (sent, came)
}

/// A set replaced by `flush set` and `add element` in one `apply` while
/// frames to a port both old and new contents hold cross: none gets
/// through. The same two commands run one by one (in place) let some
/// through: the test tells the two apart.
#[test]
fn a_set_replaced_by_apply_never_misses_a_packet() {
    let Some(bed) = Bed::new("replacing a set of a loaded ruleset at once") else {
        return;
    };
    let file = bed.file("sets.nft", RULESET);
    ok(&bed, &format!("load {}", file.display()));
    assert_eq!(bed.send(&[5, 7, 9]), vec![7]);

    let batch = bed.file(
        "swap.nft",
        "# the whole set, new\nflush set netdev t blocked\nadd element netdev t blocked { 5, 7 }\n",
    );
    let (sent, came) = stream_during(&bed, 5, || {
        ok(&bed, &format!("apply {}", batch.display()));
    });
    assert!(sent > 100, "{sent} frames sent");
    assert_eq!(
        came, 0,
        "{came} of {sent} frames missed the set during apply"
    );
    // The next frames see the new contents.
    assert_eq!(bed.send(&[5, 7, 9]), vec![9]);
    let listing = ok(&bed, "list set t blocked");
    assert!(listing.contains("elements = { 5, 7 }"), "{listing}");

    // In place: between the flush and the add, frames miss the set.
    let (sent, came) = stream_during(&bed, 5, || {
        ok(&bed, "flush set t blocked");
        ok(&bed, "add element t blocked { 5, 9 }");
    });
    assert!(
        came > 0,
        "no frame of {sent} came through between in-place changes"
    );
    assert_eq!(bed.send(&[5, 7, 9]), vec![7]);

    // Several commands on several sets, some between `;`: each
    // set ends as the commands leave it, in order.
    let batch = bed.file(
        "more.nft",
        "add element t other { 20, 21 }; delete element t other { 20 }\n\
         flush set t blocked; add element t blocked { 30 }\n\
         create element t small { 40 }\n",
    );
    ok(&bed, &format!("apply {}", batch.display()));
    assert_eq!(bed.send(&[5, 20, 21, 30, 40]), vec![5, 20]);

    // An interval set (an LPM trie): the frames come from 10.0.0.1.
    let batch = bed.file(
        "nets.nft",
        "add element t nets { 10.0.0.0/24, 10.1.0.0-10.1.0.9 }
",
    );
    ok(&bed, &format!("apply {}", batch.display()));
    assert_eq!(bed.send(&[5]), Vec::<u16>::new());
    let batch = bed.file(
        "nets.nft",
        "flush set t nets
add element t nets { 10.0.1.0/24 }
add element t nets { 10.0.1.7 }
",
    );
    let err = fails(&bed, &format!("apply {}", batch.display()));
    assert!(
        err.contains("nets.nft:3:22: error: conflicting intervals specified"),
        "{err}"
    );
    assert_eq!(bed.send(&[5]), Vec::<u16>::new());
    let batch = bed.file(
        "nets.nft",
        "flush set t nets; add element t nets { 10.0.1.0/24 }
",
    );
    ok(&bed, &format!("apply {}", batch.display()));
    assert_eq!(bed.send(&[5]), vec![5]);
    let listing = ok(&bed, "list set t nets");
    assert!(listing.contains("elements = { 10.0.1.0/24 }"), "{listing}");
    ok(&bed, "unload");
}

/// An `apply` with an error anywhere, its last line included, changes
/// nothing, says where (FILE:LINE:COL and a caret), and leaves no map
/// behind; a set full to its `size` is an error; `list set` and a reload
/// see the swapped contents.
#[test]
fn a_failed_apply_changes_nothing_and_a_reload_keeps_what_one_swapped() {
    let Some(bed) = Bed::new("failed set transactions") else {
        return;
    };
    // A size no other test's set has: the maps an apply makes for
    // `blocked` are told apart by it.
    let ruleset = RULESET.replace("elements = { 5, 9 }", "size 4093; elements = { 5, 9 }");
    let file = bed.file("sets.nft", &ruleset);
    ok(&bed, &format!("load {}", file.display()));
    let before = set_map_id(&bed, "blocked");
    let first_new = maps_now().iter().map(|m| m.0).max().unwrap_or(0);

    // The error in the last line: the flush and add before it are not made.
    let batch = bed.file(
        "bad.nft",
        "flush set t blocked\nadd element t blocked { 100 }\nadd element t blocked { 10.0.0.1 }\n",
    );
    let err = fails(&bed, &format!("apply {}", batch.display()));
    assert!(err.contains("bad.nft:3:25"), "{err}");
    assert!(err.lines().any(|l| l.contains('^')), "{err}");
    assert_eq!(bed.send(&[5, 9, 100]), vec![100]);
    assert_eq!(set_map_id(&bed, "blocked"), before);
    // A syntax error, an unknown set, and `list` (which changes nothing).
    for (text, want) in [
        (
            "add element t blocked { 1 }\nadd elemnt t blocked { 2 }\n",
            ":2:1",
        ),
        (
            "add element t blocked { 1 }; add element t nosuch { 2 }",
            "has no map",
        ),
        ("list set t blocked\n", "`list set` changes nothing"),
    ] {
        let batch = bed.file("bad.nft", text);
        let err = fails(&bed, &format!("apply {}", batch.display()));
        assert!(err.contains(want), "{text}: {err}");
    }
    // `size 2`: three elements do not fit, whatever came before; a
    // flush makes room.
    ok(&bed, "add element t small { 1 }");
    let batch = bed.file(
        "full.nft",
        "add element t small { 2 }\nadd element t small { 3 }\n",
    );
    let err = fails(&bed, &format!("apply {}", batch.display()));
    assert!(err.contains("set `small` is full: its size is 2"), "{err}");
    assert!(err.contains("full.nft:2:"), "{err}");
    assert_eq!(bed.send(&[1, 2, 3]), vec![2, 3]);
    // No map made by the failed applies is left.
    let left: Vec<_> = maps_now()
        .into_iter()
        .filter(|(id, name, max)| *id > first_new && name.ends_with("_in") && *max == 4093)
        .collect();
    assert_eq!(left, Vec::new(), "maps left by failed applies");
    let batch = bed.file(
        "ok.nft",
        "flush set t small\nadd element t small { 2, 3 }\nadd element t blocked { 11 }\n",
    );
    ok(&bed, &format!("apply {}", batch.display()));
    assert_eq!(bed.send(&[1, 2, 3, 11]), vec![1]);
    // The old map is gone once its array of maps let it go; the new one
    // is in the slot.
    let after = set_map_id(&bed, "blocked");
    assert_ne!(after, before);
    let mut gone = false;
    for _ in 0..50 {
        if map_get_fd_by_id(KernelMapId::new(before)).is_err() {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone, "the replaced map {before} still exists");
    let listing = ok(&bed, "list set t small");
    assert!(listing.contains("elements = { 2, 3 }"), "{listing}");
    let listing = ok(&bed, "list ruleset");
    assert!(listing.contains("elements = { 5, 9, 11 }"), "{listing}");

    // A reload of the same file keeps the swapped contents (the sets'
    // declarations did not change).
    ok(&bed, &format!("load {}", file.display()));
    assert_eq!(bed.send(&[1, 2, 3, 11, 12]), vec![1, 12]);
    let listing = ok(&bed, "list set t blocked");
    assert!(listing.contains("elements = { 5, 9, 11 }"), "{listing}");
    assert_eq!(set_map_id(&bed, "blocked"), after);
    ok(&bed, "unload");
}

/// A set with timeouts replaced whole: the elements' timeouts stay, and
/// the new elements get theirs.
#[test]
fn apply_keeps_timeouts() {
    let Some(bed) = Bed::new("replacing a set with timeouts") else {
        return;
    };
    let text = "table netdev t {
	set blocked {
		type inet_service
		flags timeout
		elements = { 5 timeout 1s, 9 }
	}
	chain c {
		type filter hook ingress device \"nfb\" priority 0; policy accept;
		udp dport @blocked drop
	}
}
";
    let file = bed.file("timeouts.nft", text);
    ok(&bed, &format!("load {}", file.display()));
    let batch = bed.file(
        "batch.nft",
        "delete element t blocked { 9 }\nadd element t blocked { 6 timeout 1s, 7 }\n",
    );
    ok(&bed, &format!("apply {}", batch.display()));
    let listing = ok(&bed, "list set t blocked");
    assert!(listing.contains("5 expires "), "{listing}");
    assert!(listing.contains("6 expires "), "{listing}");
    // 9 is gone: 7 comes last.
    assert!(listing.contains(", 7 }"), "{listing}");
    assert_eq!(bed.send(&[5, 6, 7, 9]), vec![9]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(bed.send(&[5, 6, 7, 9]), vec![5, 6, 9]);
}

/// A set the packet path adds to (`add @seen`), replaced whole from
/// standard input (`apply -`) while frames that add an element cross:
/// the element is in the new set (read before the swap, or carried over
/// after it), and frames after the swap add theirs to the new map.
#[test]
fn a_dynamic_set_swapped_keeps_what_packets_add() {
    let Some(bed) = Bed::new("replacing a set that packets add to") else {
        return;
    };
    let text = "table netdev t {
	set seen {
		type inet_service
		flags dynamic
	}
	chain c {
		type filter hook ingress device \"nfb\" priority 0; policy accept;
		udp dport @seen drop
		udp dport 40-49 add @seen { udp dport } accept
	}
}
";
    let file = bed.file("dyn.nft", text);
    ok(&bed, &format!("load {}", file.display()));
    assert_eq!(bed.send(&[40]), vec![40]);
    // Port 41 streams while the set is replaced: the first frame adds 41,
    // the rest are dropped by it (in the old set or the new).
    let (sent, came) = stream_during(&bed, 41, || {
        let mut c = bed.cmd(&["apply", "-"]);
        c.stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        std::io::Write::write_all(
            &mut child.stdin.take().unwrap(),
            b"flush set t seen\nadd element t seen { 100 }\n",
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    assert!(sent > 100, "{sent} frames sent");
    let listing = ok(&bed, "list set t seen");
    // 40 went with the flush; 41 was added by the stream (before the
    // swap, the flush took it too, and the stream added it again).
    assert!(listing.contains("elements = { 41, 100 }"), "{listing}");
    assert!(came >= 1, "{came}");
    // After the swap the packet path adds to the new map.
    assert_eq!(bed.send(&[42, 42, 100]), vec![42]);
    let listing = ok(&bed, "list set t seen");
    assert!(listing.contains("elements = { 41, 42, 100 }"), "{listing}");
}
