//! `nft2bpf load` over a loaded ruleset keeps the live contents of the
//! sets whose declaration did not change: elements added and deleted
//! with `add element` / `delete element`, and those the packet path
//! added to a dynamic set, with their expiry and their meter's bucket.
//! A set whose declaration changed starts from the file's elements, and
//! the command says so. Frames sent across a veth between the steps
//! show what the running program holds.
//!
//! Each test has a pin root of its own under /sys/fs/bpf, removed when
//! it ends; the namespace goes with its veths.

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

/// A table with a set and a verdict map on UDP destination ports, the
/// set's declaration `blocked`, and `rules` after the lookups.
fn ruleset(blocked: &str, device: &str, rules: &str) -> String {
    format!(
        "table netdev t {{
	set blocked {{
		type inet_service
{blocked}	}}
	map ports {{
		type inet_service : verdict
		elements = {{ 7 : drop, 1 : accept }}
	}}
	chain c {{
		type filter hook ingress {device} priority 0; policy accept;
		udp dport @blocked drop
		udp dport vmap @ports
{rules}	}}
}}
"
    )
}

const NFB: &str = "device \"nfb\"";

/// The elements of `list set` (or `list map`), without blanks.
fn elements(listing: &str) -> String {
    let all: String = listing.split_whitespace().collect();
    all.split_once("elements=")
        .map_or(String::new(), |(_, e)| e.trim_end_matches("}}").to_string())
}

#[test]
fn elements_changed_live_survive_a_reload_of_an_unchanged_set() {
    let Some(bed) = Bed::new("sets kept across a reload") else {
        return;
    };
    let blocked = "\t\telements = { 5 }\n";
    let file = bed.file("fw.nft", &ruleset(blocked, NFB, ""));
    let load = format!("load {}", file.display());
    let out = ok(&bed, &load);
    assert!(!out.contains("kept"), "{out}");
    assert_eq!(bed.send(&[5, 6, 7, 8]), vec![6, 8]);

    // Live: 6 in and 5 out of the set, 8 into the map.
    ok(&bed, "add element t blocked { 6 }");
    ok(&bed, "delete element t blocked { 5 }");
    ok(&bed, "add element t ports { 8 : drop }");
    assert_eq!(bed.send(&[5, 6, 7, 8]), vec![5]);

    // The same file again: a new program, the same sets' contents.
    let out = ok(&bed, &load);
    assert!(out.starts_with("replaced xdp on nfb: program "), "{out}");
    assert!(out.contains(", 2 sets kept\n"), "{out}");
    assert!(!out.contains("starts from"), "{out}");
    assert_eq!(bed.send(&[5, 6, 7, 8]), vec![5]);
    assert_eq!(elements(&ok(&bed, "list set t blocked")), "{6}");
    assert_eq!(
        elements(&ok(&bed, "list map t ports")),
        "{1:accept,7:drop,8:drop}"
    );

    // Rules changed, sets not: still kept (and the live commands go on
    // working on the kept maps).
    let file2 = bed.file("fw2.nft", &ruleset(blocked, NFB, "\t\tudp dport 99 drop\n"));
    let out = ok(&bed, &format!("load {} -j", file2.display()));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut kept: Vec<&str> = v["programs"][0]["sets_kept"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    kept.sort();
    assert_eq!(kept, ["t blocked", "t ports"], "{out}");
    assert_eq!(v["sets_reset"], serde_json::json!([]), "{out}");
    assert_eq!(bed.send(&[5, 6, 8, 99]), vec![5]);
    ok(&bed, "delete element t blocked { 6 }");
    assert_eq!(bed.send(&[5, 6]), vec![5, 6]);
    ok(&bed, "add element t blocked { 6 }");

    // The set's declaration changed (another element): it starts from
    // the file's elements, and the command says so; the map is kept.
    let changed = "\t\telements = { 5, 9 }\n";
    let file3 = bed.file("fw3.nft", &ruleset(changed, NFB, ""));
    let out = ok(&bed, &format!("load {}", file3.display()));
    assert!(out.contains(", 1 set kept\n"), "{out}");
    assert!(
        out.contains(
            "set netdev t blocked: its declaration changed: it starts from the file's elements\n"
        ),
        "{out}"
    );
    assert_eq!(bed.send(&[5, 6, 8, 9]), vec![6]);
    assert_eq!(elements(&ok(&bed, "list set t blocked")), "{5,9}");

    // Another flag (a size) is a changed declaration too.
    ok(&bed, "add element t blocked { 6 }");
    let sized = "\t\tsize 100\n\t\telements = { 5, 9 }\n";
    let file4 = bed.file("fw4.nft", &ruleset(sized, NFB, ""));
    let out = ok(&bed, &format!("load {}", file4.display()));
    assert!(
        out.contains("set netdev t blocked: its declaration changed"),
        "{out}"
    );
    assert_eq!(bed.send(&[6]), vec![6]);

    // The same declaration, but a rule now adds to the set: its map
    // holds another kind of value, so it starts from the file too, and
    // the command says where.
    ok(&bed, "add element t blocked { 6 }");
    let adding = "		flags dynamic
		size 100
		elements = { 5, 9 }
";
    let file5 = bed.file(
        "fw5.nft",
        &ruleset(adding, NFB, "\t\tudp dport 30 add @blocked { udp dport }\n"),
    );
    let out = ok(&bed, &format!("load {}", file5.display()));
    assert!(
        out.contains(
            "set netdev t blocked: its map on xdp on nfb is of another shape (the rules look it \
             up or add to it otherwise): there it starts from the file's elements\n"
        ),
        "{out}"
    );
    assert_eq!(bed.send(&[6, 9]), vec![6]);
    ok(&bed, "unload");
}

/// A device the old ruleset did not run on gets its copy of an
/// unchanged set filled from the running copy: a live change applies to
/// every copy, so `delete element` of an element added live before the
/// reload finds it in both (it fails when a copy lacks it).
#[test]
fn a_new_device_gets_the_live_contents_of_an_unchanged_set() {
    let Some(bed) = Bed::new("sets kept across a reload onto a new device") else {
        return;
    };
    let blocked = "\t\telements = { 5 }\n";
    let file = bed.file("one.nft", &ruleset(blocked, NFB, ""));
    ok(&bed, &format!("load {}", file.display()));
    ok(&bed, "add element t blocked { 6 }");
    ok(&bed, "delete element t blocked { 5 }");
    let both = bed.file(
        "both.nft",
        &ruleset(blocked, "devices = { \"nfb\", \"nfa\" }", ""),
    );
    let out = ok(&bed, &format!("load {}", both.display()));
    assert!(out.contains("replaced xdp on nfb"), "{out}");
    assert!(out.contains("attached xdp on nfa"), "{out}");
    assert_eq!(out.matches(", 2 sets kept\n").count(), 2, "{out}");
    assert_eq!(bed.send(&[5, 6]), vec![5]);
    // 5 is in no copy, 6 in both.
    let err = fails(&bed, "delete element t blocked { 5 }");
    assert!(err.contains("No such file or directory"), "{err}");
    ok(&bed, "delete element t blocked { 6 }");
    assert_eq!(bed.send(&[5, 6]), vec![5, 6]);
    ok(&bed, "unload");
}

/// Milliseconds of an nft time (`2s950ms`, `1m3s`).
fn ms(text: &str) -> u64 {
    let mut total = 0;
    let mut n = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if let Some(d) = c.to_digit(10) {
            n = n * 10 + u64::from(d);
            continue;
        }
        let unit = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            'd' => 86_400_000,
            'h' => 3_600_000,
            'm' => 60_000,
            's' => 1000,
            _ => break,
        };
        total += n * unit;
        n = 0;
    }
    total
}

/// When element `elem` of `listing` expires, in milliseconds from now.
fn expires(listing: &str, elem: &str) -> u64 {
    let at = listing
        .find(&format!("{elem} expires "))
        .unwrap_or_else(|| panic!("no {elem} expires in {listing}"));
    let rest = &listing[at + elem.len() + " expires ".len()..];
    ms(rest.split([',', ' ', '\n', '}']).next().unwrap())
}

/// Elements the packet path added keep their expiry, and a meter's
/// elements their bucket, across a reload of the same file.
#[test]
fn dynamic_set_elements_keep_their_expiry_and_buckets_across_a_reload() {
    let Some(bed) = Bed::new("dynamic sets kept across a reload") else {
        return;
    };
    let text = "table netdev t {
	set seen {
		type inet_service
		flags dynamic,timeout
		timeout 3s
	}
	set flood {
		type inet_service
		flags dynamic
	}
	chain c {
		type filter hook ingress device \"nfb\" priority 0; policy accept;
		udp dport @seen drop
		udp dport 40-49 add @seen { udp dport } accept
		udp dport 50 add @flood { udp dport limit rate over 1/minute burst 2 packets } drop
	}
}
";
    let file = bed.file("dyn.nft", text);
    let load = format!("load {}", file.display());
    ok(&bed, &load);
    // 40 passes once and is in the set; 50's bucket takes two.
    assert_eq!(bed.send(&[40]), vec![40]);
    assert_eq!(bed.send(&[40, 50, 50]), vec![50, 50]);
    assert_eq!(bed.send(&[50]), Vec::<u16>::new());
    let left = expires(&ok(&bed, "list set t seen"), "40");
    assert!(left <= 3000 && left > 1000, "{left}");

    let out = ok(&bed, &load);
    assert!(out.contains(", 2 sets kept\n"), "{out}");
    // 40 is still in the set, expiring when it did (not 3 s from the
    // reload), and 50's bucket is still empty (a new one would pass 50).
    let after = expires(&ok(&bed, "list set t seen"), "40");
    assert!(
        after <= left,
        "{after} ms left after the reload, {left} before"
    );
    assert_eq!(bed.send(&[40, 50]), Vec::<u16>::new());
    // It expires: the next 40 passes and is added again.
    std::thread::sleep(std::time::Duration::from_millis(after + 200));
    assert_eq!(bed.send(&[40]), vec![40]);
    assert_eq!(bed.send(&[40]), Vec::<u16>::new());
    ok(&bed, "unload");
}

/// Interval sets (an LPM trie: a range is several prefixes) and
/// concatenations keep their live elements too.
#[test]
fn interval_sets_and_concatenations_keep_their_live_elements() {
    let Some(bed) = Bed::new("interval sets kept across a reload") else {
        return;
    };
    let text = "table netdev t {
	set nets {
		type ipv4_addr
		flags interval
	}
	set pairs {
		type ipv4_addr . inet_service
	}
	chain c {
		type filter hook ingress device \"nfb\" priority 0; policy accept;
		ip saddr @nets udp dport 20-29 drop
		ip saddr . udp dport @pairs drop
	}
}
";
    let file = bed.file("nets.nft", text);
    let load = format!("load {}", file.display());
    ok(&bed, &load);
    ok(&bed, "add element t nets { 10.0.0.0-10.0.0.5 }");
    ok(&bed, "add element t pairs { 10.0.0.1 . 5 }");
    assert_eq!(bed.send(&[5, 6, 21]), vec![6]);
    let out = ok(&bed, &load);
    assert!(out.contains(", 2 sets kept\n"), "{out}");
    assert_eq!(bed.send(&[5, 6, 21]), vec![6]);
    assert_eq!(
        elements(&ok(&bed, "list set t nets")),
        "{10.0.0.0-10.0.0.5}"
    );
    // The kept trie takes the same changes as before the reload.
    let err = fails(&bed, "add element t nets { 10.0.0.2 }");
    assert!(err.contains("conflicting intervals specified"), "{err}");
    ok(&bed, "delete element t nets { 10.0.0.0-10.0.0.5 }");
    ok(&bed, "delete element t pairs { 10.0.0.1 . 5 }");
    assert_eq!(bed.send(&[5, 6, 21]), vec![5, 6, 21]);
    ok(&bed, "unload");
}

/// A set that an ingress and an egress chain look up has a copy in each
/// program (XDP, tcx egress): each keeps its own across a reload
/// (`delete element` fails unless every copy has the element).
#[test]
fn every_hooks_copy_of_a_set_is_kept() {
    let Some(bed) = Bed::new("every copy of a set kept across a reload") else {
        return;
    };
    let text = "table netdev t {
	set blocked {
		type inet_service
	}
	chain in {
		type filter hook ingress device \"nfb\" priority 0; policy accept;
		udp dport @blocked drop
	}
	chain out {
		type filter hook egress device \"nfb\" priority 0; policy accept;
		udp sport @blocked drop
	}
}
";
    let file = bed.file("hooks.nft", text);
    let load = format!("load {}", file.display());
    ok(&bed, &load);
    ok(&bed, "add element t blocked { 5, 6 }");
    let out = ok(&bed, &load);
    assert!(out.contains("replaced xdp on nfb"), "{out}");
    assert!(out.contains("replaced tcx-egress on nfb"), "{out}");
    assert_eq!(out.matches(", 1 set kept\n").count(), 2, "{out}");
    assert_eq!(bed.send(&[5, 6, 7]), vec![7]);
    ok(&bed, "delete element t blocked { 5, 6 }");
    assert_eq!(bed.send(&[5, 6, 7]), vec![5, 6, 7]);
    ok(&bed, "unload");
}
