//! `pcap2bpf attach --share` (issue 15): XDP filters that share a device
//! through a dispatcher in libxdp's protocol, with each other and with
//! `xdp-loader`'s programs; `status` shows the chain, `detach` leaves it,
//! and the last one out leaves nothing pinned or attached.
//!
//! Joining a dispatcher loads extension programs (freplace): on kernels
//! that refuse them, the tests that do run again in a VM with Debian's
//! kernel ([`testbed::features::extensions_here_or_in_vm_with`]). Every test has a pin directory of its own
//! (`PCAP2BPF_PIN_ROOT`) and a veth pair `va`/`vb` in a namespace of its
//! own; filters go on `vb`.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{stderr, stdout};

use bpf_builder::attach::dispatcher::{self, Hook};
use bpf_builder::kernel_id::KernelProgId;
use testbed::vm::Vm;
use testbed::xdp_tools::{self, LoadOptions, XdpObjects, XdpTools};
use testbed::{Marker, Netns, VethPair};

const BIN: &str = env!("CARGO_BIN_EXE_pcap2bpf");

/// A namespace with the pair `va`/`vb`, and a pin directory. Dropping it
/// makes whatever is still in `vb`'s dispatcher leave (the dispatcher's
/// pins would otherwise outlive the namespace) and removes the pins.
struct Bed {
    root: PathBuf,
    ns: Netns,
    pair: VethPair,
    /// Dispatchers seen on `vb`: none may keep pins at the end.
    seen: std::cell::RefCell<Vec<KernelProgId>>,
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
        let pair = ns.veth_pair("va", "vb").unwrap();
        Some(Bed {
            root: PathBuf::from(format!("/sys/fs/bpf/p2bshare-{}-{n}", std::process::id())),
            ns,
            pair,
            seen: Default::default(),
        })
    }

    /// Runs pcap2bpf in the namespace, with our pin directory.
    fn cli(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args).env("PCAP2BPF_PIN_ROOT", &self.root);
        self.ns.run(move || cmd.output().expect("runs")).unwrap()
    }

    /// Like [`cli`](Bed::cli), failing the test unless it succeeds.
    fn ok(&self, args: &[&str]) -> Output {
        let o = self.cli(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        o
    }

    /// What `vb`'s XDP hook holds.
    fn hook(&self) -> Hook {
        let hook = self.ns.run(|| dispatcher::query("vb")).unwrap().unwrap();
        if let Hook::Dispatcher(c) = &hook {
            self.seen.borrow_mut().push(c.dispatcher);
        }
        hook
    }

    /// The programs of `vb`'s dispatcher, in run order.
    fn chain(&self) -> Vec<String> {
        match self.hook() {
            Hook::Dispatcher(c) => c.names().into_iter().map(String::from).collect(),
            Hook::Empty => Vec::new(),
            Hook::Foreign(f) => panic!("not a dispatcher: {f}"),
        }
    }

    /// Sends UDP frames to `ports` from `va` to `vb`; the ports of those
    /// that arrived.
    fn send(&self, ports: &[u16]) -> Vec<u16> {
        let marker = Marker::new().unwrap();
        let frames: Vec<Vec<u8>> = ports
            .iter()
            .map(|&port| {
                testbed::udp4_frame(
                    self.pair.a.mac,
                    self.pair.b.mac,
                    Ipv4Addr::new(10, 9, 0, 1),
                    Ipv4Addr::new(10, 9, 0, 2),
                    4000,
                    port,
                    marker.as_bytes(),
                )
                .unwrap()
            })
            .collect();
        let (a, b) = (&self.pair.a, &self.pair.b);
        self.ns
            .run(|| testbed::send_and_collect(a, b, &frames, &marker, Duration::from_secs(2)))
            .unwrap()
            .unwrap()
            .iter()
            .map(|f| u16::from_be_bytes([f[36], f[37]]))
            .collect()
    }

    /// The pin directories of the dispatchers seen on `vb` that are left.
    fn dispatcher_pins(&self) -> Vec<PathBuf> {
        let ifindex = self.pair.b.ifindex;
        self.seen
            .borrow()
            .iter()
            .map(|d| PathBuf::from(format!("/sys/fs/bpf/xdp/dispatch-{ifindex}-{}", d.get())))
            .filter(|p| p.exists())
            .collect()
    }

    /// The entries of our pin directory.
    fn pins(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.root)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        xdp_tools::empty_dispatcher(&self.ns, "vb");
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `status`: the rows of the table, as columns, by filter name.
fn rows(o: &Output) -> Vec<Vec<String>> {
    stdout(o)
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

fn row(o: &Output, name: &str) -> Vec<String> {
    rows(o)
        .into_iter()
        .find(|r| r[0] == name)
        .unwrap_or_else(|| panic!("{name} missing from status:\n{}", stdout(o)))
}

/// `status`: the programs of the dispatcher section, in run order, as
/// (priority, name, owner).
fn dispatcher_rows(o: &Output) -> Vec<(u32, String, String)> {
    let out = stdout(o);
    let Some((_, section)) = out.split_once("XDP dispatcher of ") else {
        return Vec::new();
    };
    section
        .lines()
        .skip(2)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            (c[1].parse().unwrap(), c[3].to_string(), c[4].to_string())
        })
        .collect()
}

/// The bed of a test (`test`, its name) that joins dispatchers: here on
/// a kernel that loads extension programs; otherwise the test runs again
/// in a VM (with the `pcap2bpf` binary and what `setup` adds) and this is
/// `None`.
fn ready(what: &str, test: &str, setup: impl FnOnce(Vm) -> Vm) -> Option<Bed> {
    if !testbed::privileged(what)
        || !testbed::features::extensions_here_or_in_vm_with(test, |vm| {
            setup(vm.file(Path::new(BIN), BIN))
        })
    {
        return None;
    }
    Bed::new(what)
}

/// Three filters share `vb`: the one placed `--before` another runs
/// before it, all three count what reaches them, the dropping one drops;
/// leaving one keeps the others running, and the last `detach --all`
/// leaves no pin, no dispatcher and nothing attached.
#[test]
fn shared_filters_run_in_order_and_the_last_leaves_nothing() {
    let test = "shared_filters_run_in_order_and_the_last_leaves_nothing";
    let Some(bed) = ready("pcap2bpf attach --share", test, |vm| vm) else {
        return;
    };
    let o = bed.ok(&[
        "attach", "-i", "vb", "--share", "--name", "s1", "--action", "count", "udp",
    ]);
    assert!(
        stdout(&o).contains("in the XDP dispatcher") && stdout(&o).contains(": 1 of 1"),
        "{}",
        stdout(&o)
    );
    bed.ok(&[
        "attach", "-i", "vb", "--share", "--name", "s2", "--action", "drop", "udp", "port", "9",
    ]);
    // A place implies sharing.
    let o = bed.ok(&[
        "attach", "-i", "vb", "--before", "s2", "--name", "s3", "--action", "count", "udp", "port",
        "10",
    ]);
    assert!(stdout(&o).contains(": 2 of 3"), "{}", stdout(&o));
    assert_eq!(bed.chain(), ["s1", "s3", "s2"]);

    assert_eq!(bed.send(&[9, 9, 10]), [10], "s2 drops port 9");
    let o = bed.ok(&["status"]);
    for (name, matched) in [("s1", "3"), ("s2", "2"), ("s3", "1")] {
        let r = row(&o, name);
        assert_eq!(
            &r[1..4],
            ["vb", "xdp", if name == "s2" { "drop" } else { "count" }]
        );
        assert_eq!(r[4], matched, "{name} matched: {r:?}");
        assert!(r[5].parse::<u64>().unwrap() >= 3, "{name} seen: {r:?}");
        assert_eq!(r[7], "shared", "no link of its own: {r:?}");
    }
    let chain = dispatcher_rows(&o);
    assert_eq!(
        chain
            .iter()
            .map(|(_, n, owner)| (n.as_str(), owner.as_str()))
            .collect::<Vec<_>>(),
        [
            ("s1", "pcap2bpf:s1"),
            ("s3", "pcap2bpf:s3"),
            ("s2", "pcap2bpf:s2")
        ],
        "{}",
        stdout(&o)
    );
    assert!(
        chain.windows(2).all(|w| w[0].0 < w[1].0),
        "priorities rise: {chain:?}"
    );
    assert_eq!(bed.pins(), ["s1", "s2", "s3"]);
    for name in ["s1", "s2", "s3"] {
        let mut members: Vec<String> = std::fs::read_dir(bed.root.join(name))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        members.sort();
        assert_eq!(members, ["meta", "prog", "stats"], "{name}: no link pin");
    }

    // The dropping one leaves: every frame passes, the others count on.
    bed.ok(&["detach", "s2"]);
    assert_eq!(bed.chain(), ["s1", "s3"]);
    assert_eq!(bed.send(&[9, 9, 10]), [9, 9, 10]);
    let o = bed.ok(&["status"]);
    assert_eq!(row(&o, "s1")[4], "6");
    assert_eq!(row(&o, "s3")[4], "2");
    assert!(rows(&o).iter().all(|r| r[0] != "s2"));

    bed.ok(&["detach", "s3"]);
    assert_eq!(bed.chain(), ["s1"]);
    let o = bed.ok(&["detach", "--all"]);
    assert_eq!(stdout(&o), "detached s1\n");
    assert_eq!(bed.hook(), Hook::Empty, "nothing attached to vb");
    assert!(bed.pins().is_empty(), "{:?}", bed.pins());
    assert!(
        bed.dispatcher_pins().is_empty(),
        "{:?}",
        bed.dispatcher_pins()
    );
    assert!(!bed.seen.borrow().is_empty());
    assert_eq!(
        stdout(&bed.ok(&["status"])),
        "no filters attached by pcap2bpf\n"
    );
}

/// A member that someone else removed from the dispatcher: `status`
/// says so (and runs on), `detach` says so and removes its pins, and the
/// other member keeps running.
#[test]
fn a_member_removed_by_someone_else_is_reported() {
    let test = "a_member_removed_by_someone_else_is_reported";
    let Some(bed) = ready("pcap2bpf status of a removed member", test, |vm| vm) else {
        return;
    };
    bed.ok(&["attach", "-i", "vb", "--share", "--name", "g1", "udp"]);
    bed.ok(&["attach", "-i", "vb", "--share", "--name", "g2", "udp"]);
    let Hook::Dispatcher(chain) = bed.hook() else {
        panic!("no dispatcher on vb")
    };
    let g1 = chain.members[0].id;
    bed.ns
        .run(|| dispatcher::leave("vb", g1, None))
        .unwrap()
        .unwrap();

    let o = bed.ok(&["status"]);
    assert!(
        stderr(&o).contains("g1: no longer in the XDP dispatcher of vb (someone removed it"),
        "{}",
        stderr(&o)
    );
    assert_eq!(&row(&o, "g1")[6..8], ["-", "-"], "no program runs");
    assert_eq!(row(&o, "g2")[7], "shared");
    assert_eq!(
        dispatcher_rows(&o)
            .into_iter()
            .map(|(_, n, _)| n)
            .collect::<Vec<_>>(),
        ["g2"]
    );

    let o = bed.ok(&["detach", "g1"]);
    assert!(
        stderr(&o).contains("g1 was no longer in the XDP dispatcher of vb"),
        "{}",
        stderr(&o)
    );
    assert_eq!(bed.pins(), ["g2"]);
    assert_eq!(bed.chain(), ["g2"]);
    assert_eq!(bed.send(&[1, 2]), [1, 2]);
    assert_eq!(row(&bed.ok(&["status"]), "g2")[4], "2");
    bed.ok(&["detach", "g2"]);
    assert_eq!(bed.hook(), Hook::Empty);
    assert!(bed.pins().is_empty() && bed.dispatcher_pins().is_empty());
}

/// Beside `xdp-loader`: a filter joins its dispatcher without being
/// asked (the device has one), another goes right before its program;
/// both tools list the same chain, and our filters leave it with theirs
/// running on.
#[test]
fn filters_join_xdp_loaders_dispatcher() {
    let what = "pcap2bpf beside xdp-loader";
    if !XdpTools::available(what) {
        return;
    }
    let objects = XdpObjects::new().unwrap();
    let theirs = objects.counter("xdp_theirs", 30).unwrap();
    let test = "filters_join_xdp_loaders_dispatcher";
    let Some(bed) = ready(what, test, |vm| objects.vm_setup(vm)) else {
        return;
    };
    let tools = XdpTools::new(&bed.ns, &bed.pair.b);
    tools.load(&theirs, &LoadOptions::default()).unwrap();

    let o = bed.ok(&["attach", "-i", "vb", "--name", "x1", "udp"]);
    assert!(
        stdout(&o).contains("in the XDP dispatcher"),
        "{}",
        stdout(&o)
    );
    bed.ok(&[
        "attach",
        "-i",
        "vb",
        "--before",
        "xdp_theirs",
        "--name",
        "x2",
        "udp",
    ]);
    let listed: Vec<String> = tools
        .status()
        .unwrap()
        .iter()
        .filter(|e| e.is_component())
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(listed, ["x2", "xdp_theirs", "x1"], "xdp-loader's view");
    let o = bed.ok(&["status"]);
    assert_eq!(
        dispatcher_rows(&o)
            .into_iter()
            .map(|(_, n, owner)| (n, owner))
            .collect::<Vec<_>>(),
        [
            ("x2".to_string(), "pcap2bpf:x2".to_string()),
            ("xdp_theirs".to_string(), "-".to_string()),
            ("x1".to_string(), "pcap2bpf:x1".to_string()),
        ],
        "{}",
        stdout(&o)
    );
    assert_eq!(bed.send(&[5, 6, 7]), [5, 6, 7]);
    let o = bed.ok(&["status"]);
    assert_eq!(row(&o, "x1")[4], "3");
    assert_eq!(row(&o, "x2")[4], "3");

    bed.ok(&["detach", "--all"]);
    assert_eq!(bed.chain(), ["xdp_theirs"], "theirs runs on");
    assert!(bed.pins().is_empty());
    tools.unload_all().unwrap();
    assert_eq!(bed.hook(), Hook::Empty);
    assert!(
        tools.leftover_pins().is_empty(),
        "{:?}",
        tools.leftover_pins()
    );
}

/// Refusals that change nothing, on any kernel: sharing a device that a
/// filter holds alone names that filter; `--share` and `--priority` are
/// for XDP; and where the kernel refuses extension programs, `--share`
/// says so rather than blame privileges.
#[test]
fn refusals_name_the_cause_and_leave_nothing() {
    let Some(bed) = Bed::new("pcap2bpf attach --share refusals") else {
        return;
    };
    bed.ok(&["attach", "-i", "vb", "--name", "a1", "udp"]);
    let o = bed.cli(&["attach", "-i", "vb", "--share", "--name", "s1", "tcp"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("program `a1`") && err.contains("not a dispatcher"),
        "{err}"
    );
    assert!(
        err.contains("it is the pcap2bpf filter \"a1\", attached alone"),
        "{err}"
    );
    assert_eq!(bed.pins(), ["a1"]);
    bed.ok(&["detach", "a1"]);
    assert_eq!(bed.hook(), Hook::Empty);

    for (args, says) in [
        (
            ["--hook", "tcx-ingress", "--share"],
            "--share is for --hook xdp",
        ),
        (
            ["--hook", "tcx-ingress", "--priority=5"],
            "--priority places XDP filters",
        ),
    ] {
        let mut all = vec!["attach", "-i", "vb", "--name", "t1"];
        all.extend(args);
        all.push("udp");
        let o = bed.cli(&all);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }

    if testbed::features::extensions() {
        return;
    }
    let o = bed.cli(&["attach", "-i", "vb", "--share", "--name", "s1", "udp"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("this kernel refuses extension programs"),
        "{err}"
    );
    assert!(err.contains("not for want of privilege"), "{err}");
    assert!(bed.pins().is_empty(), "{:?}", bed.pins());
    assert_eq!(bed.hook(), Hook::Empty);
}

/// The link is optional in a unit (a member has none), but a filter
/// attached alone whose link pin was removed by hand is not taken for a
/// member: `status` says what it lacks, `detach` removes it.
#[test]
fn a_filter_alone_without_its_link_is_reported() {
    let Some(bed) = Bed::new("pcap2bpf status of a unit without its link") else {
        return;
    };
    bed.ok(&["attach", "-i", "vb", "--name", "l1", "udp"]);
    std::fs::remove_file(bed.root.join("l1").join("link")).unwrap();
    let o = bed.ok(&["status"]);
    assert!(
        stderr(&o).contains("l1 is missing link (it holds meta, stats, prog)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "no filters attached by pcap2bpf\n");
    bed.ok(&["detach", "l1"]);
    assert!(bed.pins().is_empty(), "{:?}", bed.pins());
}
