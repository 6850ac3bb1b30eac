//! `nft2bpf list ruleset` against nft's own `nft list ruleset`: the same
//! ruleset file loaded into nftables and into our XDP program on the
//! same veth, the same frames through both, and the listings equal to
//! the byte: named counters and quotas with their values, sets and maps
//! with their elements (nft's order and line breaks), chains with their
//! hooks as nft spells the priority, rules with their counters' values
//! and their quotas' bytes used, and again after an element was added
//! live to both.
//!
//! The rules are printed as they are written (nft prints them from its
//! bytecode), so the ruleset is written the way nft lists it.

mod common;

use std::process::Command;

use common::Bed;
use serde_json::Value;

/// Every object, set and map kind `list ruleset` prints, and rules that
/// count, use quotas and limits and look up sets, none of which drops:
/// both firewalls see every frame.
const RULESET: &str = r#"table netdev t {
	quota q1 {
		over 1000 bytes used 100 bytes
	}

	counter c1 {
		packets 0 bytes 0
	}

	quota q2 {
		5 kbytes
	}

	quota unused {
		2 mbytes used 1 kbytes
	}

	set s4 {
		type ipv4_addr
		elements = { 10.0.0.1, 10.0.0.2,
			     10.0.0.3 }
	}

	set nets {
		type ipv4_addr
		flags interval
		elements = { 10.0.0.0/8, 192.168.1.1-192.168.1.9 }
	}

	map vm {
		type inet_service : verdict
		elements = { 22 : accept, 80 : continue }
	}

	set pairs {
		type ipv4_addr . inet_service
		elements = { 10.0.0.1 . 9,
			     10.0.0.2 . 80 }
	}

	set six {
		type ipv6_addr
		flags interval
		elements = { ::1,
			     2001:db8::/32 }
	}

	set ports {
		type inet_service
		elements = { 1, 2, 3, 4, 5,
			     6, 7 }
	}

	set empty {
		type ipv6_addr
		size 100
	}

	chain c {
		type filter hook ingress device "nfb" priority filter - 5; policy accept;
		ip saddr @s4 counter name "c1"
		ip saddr @nets quota name "q1"
		udp dport 9 quota over 100 bytes used 60 bytes counter packets 0 bytes 0
		udp dport { 1, 2, 3, 4, 5, 6 } counter packets 0 bytes 0 comment "six ports"
		udp dport vmap @vm
		ip saddr . udp dport @pairs counter packets 0 bytes 0
		ip6 saddr @six counter packets 0 bytes 0
		udp dport @ports counter packets 0 bytes 0
		limit rate 10/second
		jump d
	}

	chain d {
		udp sport 1-1024 counter packets 0 bytes 0 return
		ether type 8021q counter packets 0 bytes 0
	}

	chain e {
		type filter hook ingress device "nfb" priority filter + 10; policy accept;
		meta l4proto udp counter packets 0 bytes 0 quota name "q2"
		udp dport 7 quota 2 kbytes counter packets 0 bytes 0
	}

	chain f {
		type filter hook ingress device "nfb" priority 100; policy accept;
	}
}
"#;

/// Runs `nft ARGS` in the bed's namespace: its stdout.
fn nft(bed: &Bed, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let out = bed
        .ns
        .run(move || {
            Command::new(testbed::nft::nft_program())
                .args(&args)
                .output()
                .expect("nft runs")
        })
        .unwrap();
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn list_ruleset_prints_what_nft_lists() {
    let what = "listing a ruleset beside nft";
    if !testbed::nft::NftBed::available(what) {
        return;
    }
    let Some(bed) = Bed::new(what) else {
        return;
    };
    let file = bed.file("t.nft", RULESET);
    nft(&bed, &["-f", file.to_str().unwrap()]);
    bed.ok(&["load", file.to_str().unwrap()]);
    // Loaded, before any frame: nft lists the file as it is written.
    assert_eq!(nft(&bed, &["list", "ruleset"]), RULESET);
    assert_eq!(bed.ok(&["list", "ruleset"]), RULESET);

    // The same frames through both (from 10.0.0.1, port 1000), all
    // accepted: counters and quotas move alike.
    let sent = [9, 9, 7, 53, 80, 3, 22, 7];
    assert_eq!(bed.send(&sent), sent);
    let theirs = nft(&bed, &["list", "ruleset"]);
    assert_ne!(theirs, RULESET, "the frames were counted");
    assert_eq!(bed.ok(&["list", "ruleset"]), theirs);

    // An element added live to both shows in both listings.
    nft(
        &bed,
        &["add", "element", "netdev", "t", "s4", "{ 10.0.0.9 }"],
    );
    bed.ok(&["add", "element", "netdev", "t", "s4", "{ 10.0.0.9 }"]);
    let theirs = nft(&bed, &["list", "ruleset"]);
    assert!(theirs.contains("10.0.0.9"), "{theirs}");
    assert_eq!(bed.ok(&["list", "ruleset"]), theirs);

    // `-j`: the named quotas' bytes used, and the set's elements, as nft
    // reports them in its JSON.
    let theirs: Value = serde_json::from_str(&nft(&bed, &["-j", "list", "ruleset"])).unwrap();
    let ours: Value = serde_json::from_str(&bed.ok(&["list", "ruleset", "-j"])).unwrap();
    let their_quotas: Vec<(String, u64)> = theirs["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| {
            let q = o.get("quota")?;
            Some((q["name"].as_str()?.to_string(), q["used"].as_u64()?))
        })
        .collect();
    let our_quotas: Vec<(String, u64)> = ours["quotas"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|q| Some((q["name"].as_str()?.to_string(), q["used"].as_u64()?)))
        .collect();
    for q in &our_quotas {
        assert!(their_quotas.contains(q), "{q:?} in {their_quotas:?}");
    }
    assert_eq!(
        our_quotas.len(),
        2,
        "q1 and q2 are used by rules: {our_quotas:?}"
    );
    let s4 = ours["tables"][0]["sets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "s4")
        .unwrap();
    assert_eq!(
        s4["elements"],
        serde_json::json!(["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.9"])
    );
    bed.ok(&["unload"]);
}
