//! `nft2bpf load --shared`: the firewall as a member of the interface's
//! XDP dispatcher (libxdp's protocol), beside another member that counts
//! the frames it sees. Drops end the chain, accepted frames reach the
//! other member; `list`, the counters and live sets work as for a lone
//! load; a reload keeps the place; `unload` leaves the other member
//! running and nothing of ours in bpffs.
//!
//! Joining a dispatcher loads the firewall as an extension program
//! (`BPF_PROG_TYPE_EXT`), which the development machines' kernel refuses:
//! those tests run in a VM with Debian's kernel
//! ([`testbed::features::extensions_here_or_in_vm_with`]). Refusals that
//! come before any extension (a tcx hook, a program that holds the hook
//! alone) run here.

mod common;

use std::path::Path;

use bpf_builder::asm::Asm;
use bpf_builder::attach::Link;
use bpf_builder::attach::dispatcher::{self, Hook, JoinOptions, Joined};
use bpf_builder::attach::xdp;
use bpf_builder::handle::Map;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AtomicOp, JmpOp, Reg::*, Size};
use bpf_builder::load::Loaded;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{Object, ProgramType};
use common::{BIN, Bed};

const XDP_PASS: i32 = 2;

fn chain(head: &str, rules: &str) -> String {
    format!(
        "table netdev t {{\n{head}\tchain c {{\n\t\ttype filter hook ingress device \"nfb\" priority 0; policy accept;\n{rules}\t}}\n}}\n"
    )
}

/// The VM gets the command the tests run.
fn vm_here_or_there(test: &str) -> bool {
    testbed::features::extensions_here_or_in_vm_with(test, |vm| vm.file(Path::new(BIN), BIN))
}

/// A program named `seen` that counts, per UDP destination port below
/// 16, the IPv4 frames it sees (`counts[port]`), and passes every frame.
fn counter_member() -> (Object, bpf_builder::object::ProgId) {
    let mut o = Object::new();
    let counts = o.add_map(MapSpec::array("counts", 8, 16)).unwrap();
    let mut a = Asm::new();
    let pass = a.new_label();
    a.ldx(Size::W, R2, R1, 0);
    a.ldx(Size::W, R3, R1, 4);
    a.mov64(R4, R2);
    a.add64(R4, 38);
    a.jmp(JmpOp::Gt, R4, R3, pass);
    // IPv4 (0x0800), UDP (17), destination port 0..15.
    a.ldx(Size::B, R4, R2, 12);
    a.jmp(JmpOp::Ne, R4, 0x08, pass);
    a.ldx(Size::B, R4, R2, 13);
    a.jmp(JmpOp::Ne, R4, 0x00, pass);
    a.ldx(Size::B, R4, R2, 23);
    a.jmp(JmpOp::Ne, R4, 17, pass);
    a.ldx(Size::B, R4, R2, 36);
    a.jmp(JmpOp::Ne, R4, 0, pass);
    a.ldx(Size::B, R4, R2, 37);
    a.jmp(JmpOp::Ge, R4, 16, pass);
    a.stx(Size::W, R10, -4, R4);
    a.ld_map_fd(R1, counts);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, pass);
    a.mov64(R1, 1);
    a.atomic(AtomicOp::Add, Size::DW, R0, 0, R1);
    a.bind(pass);
    a.mov64(R0, XDP_PASS);
    a.exit();
    let prog = o
        .add_program("seen", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    (o, prog)
}

/// What `counts` says for `port`.
fn seen(counts: &Map, port: u32) -> u64 {
    let v = counts.lookup(&port.to_ne_bytes()).unwrap().unwrap();
    u64::from_ne_bytes(v[..8].try_into().unwrap())
}

/// The member names of `nfb`'s dispatcher, in run order.
fn members(bed: &Bed) -> Vec<String> {
    match bed.ns.run(|| dispatcher::query("nfb")).unwrap().unwrap() {
        Hook::Dispatcher(c) => c.names().into_iter().map(String::from).collect(),
        Hook::Empty => Vec::new(),
        Hook::Foreign(f) => panic!("not a dispatcher: {f}"),
    }
}

/// Every entry under `/sys/fs/bpf/xdp` (where dispatchers pin their
/// members), sorted, without the dispatchers' ids (a change makes a new
/// dispatcher): `dispatch-IFINDEX/progN-prog`.
fn xdp_pins() -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/sys/fs/bpf/xdp").into_iter().flatten() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let dir = match name.strip_prefix("dispatch-") {
            Some(rest) => format!("dispatch-{}", rest.split('-').next().unwrap()),
            None => name,
        };
        out.push(dir.clone());
        for f in std::fs::read_dir(e.path()).into_iter().flatten() {
            out.push(format!(
                "{dir}/{}",
                f.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    out.sort();
    out
}

/// A program named `loner` that passes every frame, attached alone
/// (by an XDP link) to `dev`.
fn lone_program(bed: &Bed, dev: &'static str) -> (Loaded, Link) {
    let mut o = Object::new();
    let mut a = Asm::new();
    a.mov64(R0, XDP_PASS);
    a.exit();
    let p = o
        .add_program("loner", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    let loaded = o.load().unwrap();
    let link = bed
        .ns
        .run(|| xdp::attach(dev, loaded.program(p), xdp::XdpMode::Auto))
        .unwrap()
        .unwrap();
    (loaded, link)
}

/// Takes the other member out of the dispatcher when dropped (also when
/// the test fails).
struct Other<'a> {
    bed: &'a Bed,
    joined: Joined,
}

impl Other<'_> {
    fn counts(&self) -> &Map {
        self.joined.loaded.map_by_name("counts").unwrap()
    }
}

impl Drop for Other<'_> {
    fn drop(&mut self) {
        let id = self.joined.id;
        let _ = self.bed.ns.run(|| dispatcher::leave("nfb", id, None));
    }
}

fn join_other(bed: &Bed) -> Other<'_> {
    let (o, p) = counter_member();
    let joined = bed
        .ns
        .run(|| dispatcher::join("nfb", &o, p, &JoinOptions::new()))
        .unwrap()
        .unwrap_or_else(|e| panic!("joining the counting member: {e}"));
    Other { bed, joined }
}

#[test]
fn shared_firewall_runs_beside_another_member() {
    if !testbed::privileged("a shared XDP firewall")
        || !vm_here_or_there("shared_firewall_runs_beside_another_member")
    {
        return;
    }
    let Some(bed) = Bed::new("a shared XDP firewall") else {
        return;
    };
    let other = join_other(&bed);
    assert_eq!(members(&bed), ["seen"]);
    let before = xdp_pins();

    let set = "\tset blocked {\n\t\ttype inet_service\n\t\telements = { 5 }\n\t}\n";
    let first = bed.file(
        "first.nft",
        &chain(
            set,
            "\t\tudp dport 9 counter drop\n\t\tudp dport @blocked drop\n\t\tudp dport 7 counter accept\n",
        ),
    );
    let first = first.to_str().unwrap();

    // A place that does not exist: refused, nothing changes.
    let err = bed.fails(&["load", first, "--shared", "--before", "nosuch"]);
    assert!(err.contains("nosuch"), "{err}");
    assert_eq!(members(&bed), ["seen"]);
    assert_eq!(xdp_pins(), before, "no dispatcher pins left behind");
    assert!(
        bed.pins().iter().all(|p| !p.contains("xdp-nfb")),
        "{:?}",
        bed.pins()
    );

    // A second device that a lone program holds: nfb's member, joined
    // first, leaves again when nfa's join fails.
    let (lone, link) = lone_program(&bed, "nfa");
    let both = bed.file(
        "both.nft",
        &chain(set, "\t\tudp dport 9 drop\n")
            .replace("device \"nfb\"", "devices = { \"nfb\", \"nfa\" }"),
    );
    let err = bed.fails(&["load", both.to_str().unwrap(), "--shared"]);
    assert!(
        err.contains("xdp on nfa") && err.contains("`loner`"),
        "{err}"
    );
    assert_eq!(members(&bed), ["seen"]);
    assert_eq!(xdp_pins(), before, "no dispatcher pins left behind");
    assert!(
        bed.pins().iter().all(|p| !p.contains("xdp-nf")),
        "{:?}",
        bed.pins()
    );
    drop((link, lone));

    // Ours first: what it drops never reaches `seen`.
    let out = bed.ok(&["load", first, "--shared", "--first"]);
    assert!(out.starts_with("joined xdp on nfb: program "), "{out}");
    assert!(out.contains("(run order: nft_xdp, seen)"), "{out}");
    assert_eq!(members(&bed), ["nft_xdp", "seen"]);
    assert_eq!(bed.send(&[9, 7, 9, 7, 7, 1, 5]), vec![7, 7, 7, 1]);
    assert_eq!(
        [9, 7, 1, 5].map(|p| seen(other.counts(), p)),
        [0, 3, 1, 0],
        "accepted frames go on to the next member, dropped ones do not"
    );

    // `list`, counters and live sets as for a lone load.
    assert_eq!(
        bed.counters(),
        vec![
            ("c".into(), 0, "udp dport 9 counter drop".into(), 2),
            ("c".into(), 2, "udp dport 7 counter accept".into(), 3),
        ]
    );
    let listing = bed.ok(&["list", "ruleset"]);
    assert!(
        listing.contains("\t\tudp dport 9 counter packets 2 bytes 88 drop\n"),
        "{listing}"
    );
    bed.ok(&["add", "element", "netdev", "t", "blocked", "{ 6 }"]);
    assert_eq!(bed.send(&[6, 5, 1]), vec![1]);
    let set_listing = bed.ok(&["list", "set", "netdev", "t", "blocked"]);
    let elements: String = set_listing.split_whitespace().collect();
    assert!(elements.contains("elements={5,6}"), "{set_listing}");

    // A reload of the same file keeps the set's live contents: the new
    // member looks 6 up in the old member's map.
    let out = bed.ok(&["load", first, "--shared"]);
    assert!(out.starts_with("replaced xdp on nfb: program "), "{out}");
    assert!(out.contains(", 1 set kept\n"), "{out}");
    assert_eq!(members(&bed), ["nft_xdp", "seen"]);
    assert_eq!(bed.send(&[6, 5, 1]), vec![1]);

    // A reload: the new program takes the old one's place, the counter
    // of the rule that stayed carries over.
    let second = bed.file(
        "second.nft",
        &chain(
            "",
            "\t\tudp dport 1 counter drop\n\t\tudp dport 9 counter drop\n",
        ),
    );
    let out = bed.ok(&["load", second.to_str().unwrap(), "--shared"]);
    assert!(out.starts_with("replaced xdp on nfb: program "), "{out}");
    assert!(out.contains("1 counters carried over"), "{out}");
    assert_eq!(members(&bed), ["nft_xdp", "seen"]);
    let seen_1 = seen(other.counts(), 1);
    assert_eq!(bed.send(&[1, 9, 5, 7]), vec![5, 7]);
    assert_eq!(seen(other.counts(), 1), seen_1, "1 is dropped now");
    assert_eq!(
        bed.counters(),
        vec![
            ("c".into(), 0, "udp dport 1 counter drop".into(), 1),
            ("c".into(), 1, "udp dport 9 counter drop".into(), 3),
        ]
    );
    // Alone and shared do not swap on a reload.
    let err = bed.fails(&["load", second.to_str().unwrap()]);
    assert!(err.contains("--shared"), "{err}");
    assert_eq!(members(&bed), ["nft_xdp", "seen"]);

    // Unload: the other member runs on, nothing of ours stays.
    let out = bed.ok(&["unload"]);
    assert_eq!(out, "detached xdp-nfb\n");
    assert!(!bed.root.exists(), "{:?}", bed.pins());
    assert_eq!(members(&bed), ["seen"]);
    assert_eq!(xdp_pins(), before, "the other member's pins only");
    let before_9 = seen(other.counts(), 9);
    assert_eq!(bed.send(&[9, 7]), vec![9, 7]);
    assert_eq!(seen(other.counts(), 9), before_9 + 1);
}

/// A ruleset that takes several programs: refused, saying why, before
/// anything joins. (The kernel refuses tail calls from a member, an
/// extension program, into the XDP programs of a program array: on
/// Debian's 6.1, filling the array failed with `EINVAL` once the member
/// had loaded, as the program array then belongs to extension programs.)
#[test]
fn shared_firewall_of_several_programs_is_refused() {
    let Some(bed) = Bed::new("a shared XDP firewall of several programs") else {
        return;
    };
    // More named sets than one program uses: the rules after the cut
    // would run in a tail-called program.
    let sets: String = (0..60)
        .map(|i| {
            format!(
                "\tset s{i} {{\n\t\ttype inet_service\n\t\telements = {{ {} }}\n\t}}\n",
                3000 + i
            )
        })
        .collect();
    let mut rules = String::from("\t\tudp dport 9 counter drop\n");
    for i in 0..60 {
        rules.push_str(&format!("\t\tudp dport @s{i} counter\n"));
    }
    rules.push_str("\t\tudp dport 7 counter drop\n");
    let f = bed.file("big.nft", &chain(&sets, &rules));
    let err = bed.fails(&["load", f.to_str().unwrap(), "--shared"]);
    eprintln!("{err}");
    assert!(
        err.contains("xdp on nfb: --shared takes rules that fit one program"),
        "{err}"
    );
    assert!(err.contains("tail calls"), "{err}");
    assert_eq!(bed.xdp_prog("nfb"), None, "nothing attached");
    assert!(
        bed.pins().iter().all(|p| !p.contains("xdp-nfb")),
        "{:?}",
        bed.pins()
    );
    // Alone, the same ruleset loads.
    bed.ok(&["load", f.to_str().unwrap()]);
    assert_eq!(bed.send(&[9, 7, 1]), vec![1]);
    bed.ok(&["unload"]);
}

/// `--shared` with a tcx hook: refused, saying why, before anything.
#[test]
fn shared_with_tcx_is_refused() {
    let out = std::process::Command::new(BIN)
        .args([
            "load",
            "/nonexistent.nft",
            "--shared",
            "--hook",
            "tcx-ingress",
            "--pin-root",
            "/nonexistent/root",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{err}");
    assert!(
        err.contains("--shared is for XDP") && err.contains("tcx-ingress"),
        "{err}"
    );
}

/// A program that holds the XDP hook alone (not a dispatcher): `load
/// --shared` fails naming it, and leaves nothing behind.
#[test]
fn shared_beside_a_lone_program_fails_naming_it() {
    let Some(bed) = Bed::new("a shared load beside a lone XDP program") else {
        return;
    };
    let (loaded, _link) = lone_program(&bed, "nfb");
    let prog = loaded.program_by_name("loner").unwrap();
    let f = bed.file("fw.nft", &chain("", "\t\tudp dport 9 drop\n"));
    let err = bed.fails(&["load", f.to_str().unwrap(), "--shared"]);
    eprintln!("{err}");
    assert!(err.contains("`loner`"), "{err}");
    assert!(err.contains("xdp on nfb"), "{err}");
    assert_eq!(bed.xdp_prog("nfb"), prog.id().ok().map(|i| i.get()));
    assert!(!bed.root.exists(), "{:?}", bed.pins());
}

/// Where the kernel refuses extension programs (as the development
/// machines' does), `load --shared` says so and leaves nothing: no
/// dispatcher, no pin root.
#[test]
fn shared_where_extensions_are_refused_says_so() {
    let Some(bed) = Bed::new("a shared load where extensions are refused") else {
        return;
    };
    if testbed::features::extensions() {
        eprintln!("skipped: this kernel loads extension programs");
        return;
    }
    let f = bed.file("fw.nft", &chain("", "\t\tudp dport 9 drop\n"));
    let err = bed.fails(&["load", f.to_str().unwrap(), "--shared"]);
    assert!(
        err.contains("xdp on nfb") && err.contains("BPF_PROG_TYPE_EXT"),
        "{err}"
    );
    assert_eq!(bed.xdp_prog("nfb"), None);
    assert!(!bed.root.exists(), "{:?}", bed.pins());
}
