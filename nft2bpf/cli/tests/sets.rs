//! `nft2bpf add element`, `delete element`, `flush set`, `list set` on
//! the real kernel: a ruleset with named sets loaded onto a veth of a
//! namespace the test makes (XDP), frames sent across between changes:
//! each change decides the very next frame, with no reload; failed
//! changes (a full set, a bad element, a verdict the program lacks)
//! change nothing.
//!
//! The test has a pin root of its own under /sys/fs/bpf, removed when it
//! ends (also on failure); the namespace goes with its veths.

mod common;

use common::Bed;

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
		type ipv4_addr
	}
	set nets {
		type ipv4_addr
		flags interval
	}
	set pairs {
		type ipv4_addr . inet_service
	}
	set small {
		type inet_service
		size 2
	}
	map ports {
		type inet_service : verdict
		elements = { 7 : accept, 6 : drop }
	}
	chain other {
		counter
	}
	chain c {
		type filter hook ingress device \"nfb\" priority 0; policy accept;
		ip saddr @blocked drop
		ip saddr @nets drop
		ip saddr . udp dport @pairs drop
		udp dport vmap @ports
		udp dport @small drop
	}
}
";

#[test]
fn sets_change_on_the_next_packet_without_a_reload() {
    let Some(bed) = Bed::new("changing the sets of a loaded ruleset") else {
        return;
    };
    let file = bed.dir.join("sets.nft");
    std::fs::write(&file, RULESET).unwrap();
    ok(&bed, &format!("load {}", file.display()));
    let prog = bed.rules_prog("xdp-nfb");
    assert!(prog.is_some());
    assert_eq!(bed.send(&[5, 6, 7]), vec![5, 7]);

    // A hash set: add, delete, flush.
    ok(&bed, "add element netdev t blocked { 10.0.0.1 }");
    assert_eq!(bed.send(&[5]), Vec::<u16>::new());
    let listing = ok(&bed, "list set netdev t blocked");
    assert_eq!(
        listing,
        "table netdev t {\n\tset blocked {\n\t\ttype ipv4_addr\n\t\telements = { 10.0.0.1 }\n\t}\n}\n"
    );
    ok(&bed, "delete element t blocked { 10.0.0.1 }");
    assert_eq!(bed.send(&[5]), vec![5]);
    let err = fails(&bed, "delete element t blocked { 10.0.0.1 }");
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(err.contains("<cmdline>:1:28"), "{err}");
    ok(&bed, "add element t blocked { 10.0.0.9, 10.0.0.1 }");
    assert_eq!(bed.send(&[5]), Vec::<u16>::new());
    ok(&bed, "flush set t blocked");
    assert_eq!(bed.send(&[5]), vec![5]);
    assert!(!ok(&bed, "list set t blocked").contains("elements"));

    // An interval set: a prefix, then a range.
    ok(&bed, "add element t nets { 10.0.0.0/24 }");
    assert_eq!(bed.send(&[5]), Vec::<u16>::new());
    ok(&bed, "delete element t nets { 10.0.0.0/24 }");
    assert_eq!(bed.send(&[5]), vec![5]);
    ok(
        &bed,
        "add element t nets { 10.0.0.0-10.0.0.5, 192.168.0.0/16 }",
    );
    assert_eq!(bed.send(&[5]), Vec::<u16>::new());
    let listing = ok(&bed, "list set t nets");
    assert!(
        // Two IPv4 elements to a line, as nft lists them.
        listing.contains("elements = { 10.0.0.0-10.0.0.5, 192.168.0.0/16 }"),
        "{listing}"
    );
    let err = fails(&bed, "add element t nets { 10.0.0.2 }");
    assert!(err.contains("conflicting intervals specified"), "{err}");
    ok(&bed, "flush set t nets");
    assert_eq!(bed.send(&[5]), vec![5]);

    // A concatenation.
    ok(&bed, "add element t pairs { 10.0.0.1 . 5 }");
    assert_eq!(bed.send(&[5, 11]), vec![11]);
    ok(&bed, "delete element t pairs { 10.0.0.1 . 5 }");

    // A verdict map: a new element with a verdict the program has.
    ok(&bed, "add element t ports { 8080 : drop }");
    assert_eq!(bed.send(&[8080, 5]), vec![5]);
    let listing = ok(&bed, "list map t ports");
    assert!(listing.contains("elements = { 6 : drop,"), "{listing}");
    assert!(listing.contains("8080 : drop"), "{listing}");
    // `jump other`: the program has no code for it.
    let err = fails(&bed, "add element t ports { 9 : jump other }");
    assert!(
        err.contains(
            "branches only to the verdicts it was built with for map `ports` (accept, drop)"
        ),
        "{err}"
    );
    let err = fails(&bed, "create element t ports { 8080 : drop }");
    assert!(err.contains("File exists"), "{err}");
    ok(&bed, "add element t ports { 8080 : drop }");

    // `size 2`: a third element is refused, and the set is unchanged.
    ok(&bed, "add element t small { 100, 101 }");
    let err = fails(&bed, "add element t small { 102 }");
    assert!(err.contains("set `small` is full: its size is 2"), "{err}");
    let err = fails(&bed, "add element t small { 103, 104 }");
    assert!(err.contains("is full"), "{err}");
    assert!(ok(&bed, "list set t small").contains("\t\tsize 2\n\t\telements = { 100, 101 }\n"),);
    assert_eq!(bed.send(&[100, 102, 103]), vec![102, 103]);

    // A bad element: a caret under it, and nothing changes (not even the
    // good element before it).
    let err = fails(&bed, "add element t blocked { 10.0.0.1, 10.0.0.1 . 5 }");
    assert!(err.contains("<cmdline>:1:"), "{err}");
    assert!(err.lines().any(|l| l.contains("^~~~")), "{err}");
    let err = fails(&bed, "add element t small { 10.0.0.1 }");
    assert!(err.contains("<cmdline>:1:23"), "{err}");
    assert!(ok(&bed, "list set t small").contains("{ 100,"));
    assert!(!ok(&bed, "list set t blocked").contains("elements"));
    assert_eq!(bed.send(&[5]), vec![5]);
    let err = fails(&bed, "add element t nosuch { 1 }");
    assert!(err.contains("set `nosuch` has no map"), "{err}");
    let err = fails(&bed, "add element x blocked { 10.0.0.1 }");
    assert!(err.contains("table `x` does not exist"), "{err}");

    // No reload happened: the same program runs, and the ruleset lists
    // the sets' elements now.
    assert_eq!(bed.rules_prog("xdp-nfb"), prog);
    let listing = ok(&bed, "list ruleset");
    assert!(
        listing.contains("\t\telements = { 6 : drop, 7 : accept, 8080 : drop }\n"),
        "{listing}"
    );
    ok(&bed, "unload");
}

/// Element timeouts: the ruleset's elements expire, elements added live
/// with `timeout` expire, and one added again with a timeout starts it
/// again (as nft does: an element added again without one keeps its
/// expiry). `list set` shows when each expires.
#[test]
fn timeouts_expire_and_restart_live() {
    let Some(bed) = Bed::new("element timeouts of a loaded ruleset") else {
        return;
    };
    let text = "table netdev t {
	set blocked {
		type inet_service
		flags timeout
		elements = { 5 timeout 1s, 9 }
	}
	set plain {
		type inet_service
	}
	chain c {
		type filter hook ingress device \"nfb\" priority 0; policy accept;
		udp dport @blocked drop
		udp dport @plain drop
	}
}
";
    let file = bed.file("timeouts.nft", text);
    ok(&bed, &format!("load {}", file.display()));
    assert_eq!(bed.send(&[5, 6, 9]), vec![6]);
    ok(&bed, "add element t blocked { 6 timeout 1s, 7 timeout 1s }");
    let listing = ok(&bed, "list set t blocked");
    assert!(listing.contains("\t\tflags timeout\n"), "{listing}");
    assert!(listing.contains("6 expires "), "{listing}");
    assert!(
        listing.contains("9,") || listing.contains("9 }"),
        "{listing}"
    );
    assert_eq!(bed.send(&[6, 7]), Vec::<u16>::new());
    std::thread::sleep(std::time::Duration::from_millis(600));
    // 7 starts again: 2 s from now.
    ok(&bed, "add element t blocked { 7 timeout 2s }");
    std::thread::sleep(std::time::Duration::from_millis(700));
    // 5 and 6 expired; 9 has no timeout; 7 was restarted.
    assert_eq!(bed.send(&[5, 6, 7, 9]), vec![5, 6]);
    let listing = ok(&bed, "list set t blocked");
    assert!(listing.contains("elements = { 7 expires "), "{listing}");
    // An expired element is absent: deleting it is an error, adding it
    // is not.
    let err = fails(&bed, "delete element t blocked { 6 }");
    assert!(err.contains("No such file or directory"), "{err}");
    ok(&bed, "add element t blocked { 6 }");
    assert_eq!(bed.send(&[6]), Vec::<u16>::new());
    // A set without `flags timeout` takes no element timeout.
    let err = fails(&bed, "add element t plain { 5 timeout 1s }");
    assert!(err.contains("flags timeout"), "{err}");
}
