//! `nft2bpf add element`, `delete element`, `flush set`, `list set` on
//! the real kernel: a ruleset with named sets loaded onto a veth of a
//! namespace the test makes (XDP), frames sent across between changes:
//! each change decides the very next frame, with no reload; failed
//! changes (a full set, a bad element, a verdict the program lacks)
//! change nothing.
//!
//! The test has a pin root of its own under /sys/fs/bpf, removed when it
//! ends (also on failure); the namespace goes with its veths.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use testbed::{Marker, Netns, VethPair};

const BIN: &str = env!("CARGO_BIN_EXE_nft2bpf");

/// A namespace with a veth pair (`nfa` sends, `nfb` runs the ruleset) and
/// a pin root.
struct Bed {
    ns: Netns,
    pair: VethPair,
    root: PathBuf,
    dir: PathBuf,
}

impl Bed {
    fn new(what: &str) -> Option<Bed> {
        if !testbed::privileged(what) || !testbed::bpf_privileged(what) {
            return None;
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        bpf_builder::sys::bpf::ensure_bpffs(Path::new("/sys/fs/bpf")).unwrap();
        let ns = Netns::new().unwrap();
        let pair = ns.veth_pair("nfa", "nfb").unwrap();
        let tag = format!("nft2bpf-sets-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        std::fs::create_dir_all(&dir).unwrap();
        Some(Bed {
            ns,
            pair,
            root: PathBuf::from("/sys/fs/bpf").join(tag),
            dir,
        })
    }

    /// Runs nft2bpf in the namespace with our pin root; `args` are split
    /// at spaces.
    fn cli(&self, args: &str) -> Output {
        let mut c = Command::new(BIN);
        c.args(args.split(' '))
            .arg("--pin-root")
            .arg(&self.root)
            .current_dir(&self.dir);
        self.ns.run(move || c.output().expect("runs")).unwrap()
    }

    /// Like [`cli`](Bed::cli), and it must succeed: its stdout.
    fn ok(&self, args: &str) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "nft2bpf {args}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Like [`cli`](Bed::cli), and it must fail: its stderr.
    fn fails(&self, args: &str) -> String {
        let out = self.cli(args);
        assert!(!out.status.success(), "nft2bpf {args} succeeded");
        String::from_utf8(out.stderr).unwrap()
    }

    /// Sends UDP frames from 10.0.0.1 to these ports across the pair: the
    /// ports of those that arrived.
    fn send(&self, ports: &[u16]) -> Vec<u16> {
        let marker = Marker::new().unwrap();
        let (a, b) = (&self.pair.a, &self.pair.b);
        let frames: Vec<Vec<u8>> = ports
            .iter()
            .map(|&p| {
                testbed::udp4_frame(
                    a.mac,
                    b.mac,
                    [10, 0, 0, 1].into(),
                    [10, 0, 0, 2].into(),
                    1000,
                    p,
                    marker.as_bytes(),
                )
                .unwrap()
            })
            .collect();
        let got =
            testbed::send_and_collect(a, b, &frames, &marker, Duration::from_millis(600)).unwrap();
        got.iter()
            .map(|f| u16::from_be_bytes([f[36], f[37]]))
            .collect()
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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
    bed.ok(&format!("load {}", file.display()));
    let prog = bed.ok("list ruleset");
    assert_eq!(bed.send(&[5, 6, 7]), vec![5, 7]);

    // A hash set: add, delete, flush.
    bed.ok("add element netdev t blocked { 10.0.0.1 }");
    assert_eq!(bed.send(&[5]), Vec::<u16>::new());
    let listing = bed.ok("list set netdev t blocked");
    assert_eq!(
        listing,
        "table netdev t {\n\tset blocked {\n\t\ttype ipv4_addr\n\t\telements = { 10.0.0.1 }\n\t}\n}\n"
    );
    bed.ok("delete element t blocked { 10.0.0.1 }");
    assert_eq!(bed.send(&[5]), vec![5]);
    let err = bed.fails("delete element t blocked { 10.0.0.1 }");
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(err.contains("<cmdline>:1:28"), "{err}");
    bed.ok("add element t blocked { 10.0.0.9, 10.0.0.1 }");
    assert_eq!(bed.send(&[5]), Vec::<u16>::new());
    bed.ok("flush set t blocked");
    assert_eq!(bed.send(&[5]), vec![5]);
    assert!(!bed.ok("list set t blocked").contains("elements"));

    // An interval set: a prefix, then a range.
    bed.ok("add element t nets { 10.0.0.0/24 }");
    assert_eq!(bed.send(&[5]), Vec::<u16>::new());
    bed.ok("delete element t nets { 10.0.0.0/24 }");
    assert_eq!(bed.send(&[5]), vec![5]);
    bed.ok("add element t nets { 10.0.0.0-10.0.0.5, 192.168.0.0/16 }");
    assert_eq!(bed.send(&[5]), Vec::<u16>::new());
    let listing = bed.ok("list set t nets");
    assert!(
        listing.contains("elements = { 10.0.0.0-10.0.0.5,\n\t\t\t     192.168.0.0/16 }"),
        "{listing}"
    );
    let err = bed.fails("add element t nets { 10.0.0.2 }");
    assert!(err.contains("conflicting intervals specified"), "{err}");
    bed.ok("flush set t nets");
    assert_eq!(bed.send(&[5]), vec![5]);

    // A concatenation.
    bed.ok("add element t pairs { 10.0.0.1 . 5 }");
    assert_eq!(bed.send(&[5, 11]), vec![11]);
    bed.ok("delete element t pairs { 10.0.0.1 . 5 }");

    // A verdict map: a new element with a verdict the program has.
    bed.ok("add element t ports { 8080 : drop }");
    assert_eq!(bed.send(&[8080, 5]), vec![5]);
    let listing = bed.ok("list map t ports");
    assert!(listing.contains("elements = { 6 : drop,"), "{listing}");
    assert!(listing.contains("8080 : drop"), "{listing}");
    // `jump other`: the program has no code for it.
    let err = bed.fails("add element t ports { 9 : jump other }");
    assert!(
        err.contains(
            "branches only to the verdicts it was built with for map `ports` (accept, drop)"
        ),
        "{err}"
    );
    let err = bed.fails("create element t ports { 8080 : drop }");
    assert!(err.contains("File exists"), "{err}");
    bed.ok("add element t ports { 8080 : drop }");

    // `size 2`: a third element is refused, and the set is unchanged.
    bed.ok("add element t small { 100, 101 }");
    let err = bed.fails("add element t small { 102 }");
    assert!(err.contains("set `small` is full: its size is 2"), "{err}");
    let err = bed.fails("add element t small { 103, 104 }");
    assert!(err.contains("is full"), "{err}");
    assert!(
        bed.ok("list set t small")
            .contains("\t\tsize 2\n\t\telements = { 100,\n\t\t\t     101 }\n"),
    );
    assert_eq!(bed.send(&[100, 102, 103]), vec![102, 103]);

    // A bad element: a caret under it, and nothing changes (not even the
    // good element before it).
    let err = bed.fails("add element t blocked { 10.0.0.1, 10.0.0.1 . 5 }");
    assert!(err.contains("<cmdline>:1:"), "{err}");
    assert!(err.lines().any(|l| l.contains("^~~~")), "{err}");
    let err = bed.fails("add element t small { 10.0.0.1 }");
    assert!(err.contains("<cmdline>:1:23"), "{err}");
    assert!(bed.ok("list set t small").contains("{ 100,"));
    assert!(!bed.ok("list set t blocked").contains("elements"));
    assert_eq!(bed.send(&[5]), vec![5]);
    let err = bed.fails("add element t nosuch { 1 }");
    assert!(err.contains("set `nosuch` has no map"), "{err}");
    let err = bed.fails("add element x blocked { 10.0.0.1 }");
    assert!(err.contains("table `x` does not exist"), "{err}");

    // No reload happened: the same program runs.
    assert_eq!(bed.ok("list ruleset"), prog);
    bed.ok("unload");
}
