//! The pin directory of `pcap2bpf attach` (issue 18): concurrent attaches
//! of one name, pin directories that someone else controls (made by a
//! user the test creates), commands killed at every step (the
//! `PCAP2BPF_PIN_FAULT` hook) and strays, the umask, and devices named in
//! the network namespace they were attached in.
//!
//! Every test has a scratch pin directory of its own under /sys/fs/bpf
//! (`PCAP2BPF_PIN_ROOT`) and attaches to `lo` of a network namespace of
//! its own, so it never meets other tests' or users' filters.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Barrier;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::{stderr, stdout};

use bpf_builder::attach::tcx::{self, Hook};
use bpf_builder::kernel_id::{KernelLinkId, KernelProgId};
use bpf_builder::sys::bpf::{self as sys, LinkDetail};

const BIN: &str = env!("CARGO_BIN_EXE_pcap2bpf");

/// A scratch pin directory path, and a namespace with `lo` to attach to.
/// Dropping it removes the directory (whatever it became) and with the
/// namespace every filter left.
struct Bed {
    root: PathBuf,
    ns: testbed::Netns,
}

impl Bed {
    fn new() -> Option<Bed> {
        if !testbed::privileged("pin test") || !testbed::bpf_privileged("pin test") {
            return None;
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        bpf_builder::sys::bpf::ensure_bpffs(Path::new("/sys/fs/bpf")).unwrap();
        Some(Bed {
            root: PathBuf::from(format!("/sys/fs/bpf/p2bpins-{}-{n}", std::process::id())),
            ns: testbed::Netns::new().unwrap(),
        })
    }

    /// Runs pcap2bpf with our pin directory, in the namespace; `umask_000`
    /// runs it under umask 000.
    fn run(&self, env: &[(&str, &str)], args: &[&str], umask_000: bool) -> Output {
        let mut cmd = if umask_000 {
            let mut c = Command::new("sh");
            c.args(["-c", "umask 000; exec \"$0\" \"$@\"", BIN]);
            c
        } else {
            Command::new(BIN)
        };
        cmd.args(args).env("PCAP2BPF_PIN_ROOT", &self.root);
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.ns.run(move || cmd.output().expect("runs")).unwrap()
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.run(&[], args, false)
    }

    /// Names of the programs on `lo`'s tcx ingress chain.
    fn chain(&self) -> Vec<String> {
        self.ns
            .run(|| tcx::query("lo", Hook::Ingress).unwrap())
            .unwrap()
            .names()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Links of `lo`'s tcx ingress chain, sorted.
    fn chain_links(&self) -> Vec<KernelLinkId> {
        let chain = self
            .ns
            .run(|| tcx::query("lo", Hook::Ingress).unwrap())
            .unwrap();
        let mut v: Vec<KernelLinkId> = chain.entries.iter().filter_map(|e| e.link_id).collect();
        v.sort();
        v
    }

    fn attach(&self, name: &str, expr: &str) -> Output {
        self.cli(&attach_args(name, expr))
    }
}

/// `attach` of `expr` as `name` to tcx ingress of `lo`.
fn attach_args<'a>(name: &'a str, expr: &'a str) -> [&'a str; 8] {
    [
        "attach",
        "-i",
        "lo",
        "--hook",
        "tcx-ingress",
        "--name",
        name,
        expr,
    ]
}

impl Drop for Bed {
    fn drop(&mut self) {
        match fs::symlink_metadata(&self.root) {
            Ok(m) if m.is_dir() => {
                let _ = fs::remove_dir_all(&self.root);
            }
            Ok(_) => {
                let _ = fs::remove_file(&self.root);
            }
            Err(_) => {}
        }
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A directory outside bpffs that looks like a pin directory with a
/// filter `r`: refusals and recovery must leave it as it is.
struct Outside(PathBuf);

impl Outside {
    fn new(tag: &str) -> Outside {
        let p = std::env::temp_dir().join(format!("p2bpins-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(p.join("r")).unwrap();
        fs::write(p.join("r").join("link"), b"precious").unwrap();
        Outside(p)
    }

    fn assert_intact(&self) {
        assert_eq!(entries(&self.0), ["r"]);
        assert_eq!(entries(&self.0.join("r")), ["link"]);
        assert_eq!(
            fs::read(self.0.join("r").join("link")).unwrap(),
            b"precious"
        );
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The reported race: two attaches of one name at once. One wins, the
/// other says the name is taken, and the winner's filter stays whole.
#[test]
fn concurrent_attaches_of_one_name_leave_one_filter() {
    let Some(bed) = Bed::new() else { return };
    for round in 0..30 {
        let barrier = Barrier::new(2);
        let outs: Vec<(Output, &str)> = std::thread::scope(|s| {
            let handles: Vec<_> = ["udp", "tcp"]
                .into_iter()
                .map(|expr| {
                    let (bed, barrier) = (&bed, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        (bed.attach("r", expr), expr)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let won: Vec<&(Output, &str)> = outs.iter().filter(|(o, _)| o.status.success()).collect();
        let lost: Vec<&(Output, &str)> = outs.iter().filter(|(o, _)| !o.status.success()).collect();
        assert_eq!(
            (won.len(), lost.len()),
            (1, 1),
            "round {round}: {:?}",
            outs.iter().map(|(o, _)| stderr(o)).collect::<Vec<_>>()
        );
        let (lost, winner_expr) = (&lost[0].0, won[0].1);
        assert_eq!(lost.status.code(), Some(1));
        let err = stderr(lost);
        assert!(
            err.contains("already attached") && err.lines().count() == 1,
            "round {round}: {err}"
        );
        let status = bed.cli(&["status"]);
        assert!(
            status.status.success() && stderr(&status).is_empty(),
            "{}",
            stderr(&status)
        );
        let lines: Vec<String> = stdout(&status)
            .lines()
            .filter(|l| l.starts_with("r "))
            .map(str::to_string)
            .collect();
        assert_eq!(lines.len(), 1, "round {round}: {}", stdout(&status));
        assert!(lines[0].ends_with(winner_expr), "{}", lines[0]);
        assert_eq!(bed.chain(), ["r"], "round {round}: one program attached");
        assert_eq!(entries(&bed.root), ["r"]);
        assert_eq!(
            entries(&bed.root.join("r")),
            ["link", "meta", "prog", "stats"]
        );
        assert!(bed.cli(&["detach", "r"]).status.success());
        assert!(bed.chain().is_empty());
    }
}

/// Runs `program args` as `user`, which must succeed.
fn as_user(user: &testbed::User, program: &str, args: &[&str]) {
    let o = user.command(program).args(args).output().unwrap();
    assert!(o.status.success(), "{program} {args:?}: {}", stderr(&o));
}

/// A pin directory that an unprivileged user (made by the test) squats
/// with a symbolic link to root's files or with a directory of its own,
/// or that is writable by others and holds the user's entries, is refused
/// by every command, with the reason, and nothing it leads to is touched.
#[test]
fn pin_directories_others_control_are_refused() {
    let Some(bed) = Bed::new() else { return };
    let user = testbed::User::new().unwrap();
    let outside = Outside::new("refused");
    let root = bed.root.to_str().unwrap();
    let r = bed.root.join("r");
    let r = r.to_str().unwrap();
    // /sys/fs/bpf is 1777: anyone may make entries in it.
    let setups: [(String, &dyn Fn()); 3] = [
        ("it is a symbolic link".into(), &|| {
            as_user(&user, "ln", &["-s", outside.0.to_str().unwrap(), root])
        }),
        (format!("it is owned by uid {}", user.uid()), &|| {
            as_user(&user, "mkdir", &[root, r])
        }),
        (
            "it is writable by group or others (mode 0777)".into(),
            &|| {
                fs::create_dir(&bed.root).unwrap();
                fs::set_permissions(&bed.root, fs::Permissions::from_mode(0o777)).unwrap();
                as_user(&user, "mkdir", &[r]);
            },
        ),
    ];
    for (reason, setup) in setups {
        setup();
        for args in [
            &attach_args("r", "udp")[..],
            &["status"],
            &["detach", "r"],
            &["detach", "--all"],
        ] {
            let o = bed.cli(args);
            assert_eq!(o.status.code(), Some(1), "{args:?} with {reason}");
            let err = stderr(&o);
            assert!(
                err.contains(&format!(
                    "refusing {} as a pin directory: {reason}",
                    bed.root.display()
                )),
                "{args:?}: {err}"
            );
        }
        assert!(bed.chain().is_empty(), "nothing attached");
        outside.assert_intact();
        if fs::symlink_metadata(&bed.root).unwrap().is_dir() {
            assert_eq!(entries(&bed.root), ["r"], "{reason}");
            fs::remove_dir_all(&bed.root).unwrap();
        } else {
            fs::remove_file(&bed.root).unwrap();
        }
    }
}

/// A copy of pcap2bpf that any user may run (the build directory may be
/// closed to others), removed when dropped.
struct SharedBin(PathBuf);

impl SharedBin {
    fn new() -> SharedBin {
        let dir = std::env::temp_dir().join(format!("p2bpins-bin-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.join("pcap2bpf");
        fs::copy(BIN, &bin).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        SharedBin(dir)
    }

    fn path(&self) -> PathBuf {
        self.0.join("pcap2bpf")
    }
}

impl Drop for SharedBin {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A filter root attached under umask 000 cannot be removed, hidden,
/// renamed or read by an unprivileged user (made by the test), neither
/// with file commands nor with pcap2bpf (refused, saying whose the
/// directory is); and when the last filter goes, the directory stays
/// root's, so the user cannot take its name.
#[test]
fn another_user_cannot_remove_hide_or_take_roots_filters() {
    let Some(bed) = Bed::new() else { return };
    let user = testbed::User::new().unwrap();
    let bin = SharedBin::new();
    let o = bed.run(&[], &attach_args("m", "udp"), true);
    assert!(o.status.success(), "{}", stderr(&o));
    let root = bed.root.to_str().unwrap().to_string();
    let p = |rel: &str| format!("{root}/{rel}");
    let fails = |program: &str, args: &[&str]| {
        let o = user.command(program).args(args).output().unwrap();
        assert!(
            !o.status.success(),
            "{} {program} {args:?} worked",
            user.name()
        );
    };
    let attempts = |fails: &dyn Fn(&str, &[&str])| {
        fails("rm", &["-f", &p("m/link")]);
        fails("rm", &["-rf", &p("m")]);
        fails("mv", &[&p("m"), &p("hidden")]);
        fails("mv", &[&root, &format!("{root}-moved")]);
        fails("rmdir", &[&root]);
        fails("ln", &["-s", "/tmp", &p("x")]);
        fails("mkdir", &[&p("x")]);
        fails("ls", &[&root]);
    };
    attempts(&fails);
    let refusal = format!(
        "pcap2bpf: refusing {root} as a pin directory: it is owned by uid 0 (mode 0700), not by \
         uid {} (this user)\n",
        user.uid()
    );
    for args in [
        &["status"][..],
        &["detach", "m"],
        &["detach", "--all"],
        &attach_args("m", "tcp"),
    ] {
        // With what loading and attaching a tc program takes, so that
        // attach gets as far as the pin directory.
        let o = bed
            .ns
            .run(|| {
                user.command_with_caps(&["bpf", "net_admin", "perfmon"], bin.path())
                    .args(args)
                    .env("PCAP2BPF_PIN_ROOT", &root)
                    .output()
                    .unwrap()
            })
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr(&o), refusal, "{args:?}");
    }
    // Nothing changed: the filter runs, whole.
    assert_eq!(bed.chain(), ["m"]);
    assert_eq!(
        entries(&bed.root.join("m")),
        ["link", "meta", "prog", "stats"]
    );
    let o = bed.cli(&["status"]);
    assert_eq!(rows(&stdout(&o)).len(), 1, "{}", stdout(&o));

    // The last detach keeps the directory, root's and 0700.
    assert!(bed.cli(&["detach", "m"]).status.success());
    let m = fs::symlink_metadata(&bed.root).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o7777), (0, 0o700));
    attempts(&|program, args| {
        if !args.iter().any(|a| a.contains("/m")) {
            fails(program, args)
        }
    });
    assert!(entries(&bed.root).is_empty());
}

/// `kill -9` of an attach at its last pin, the link's (the fault hook
/// stops it there), leaves a live filter in a staging directory: `status`
/// still lists the other filters and reports it with its link and device,
/// as it reports entries that are not filters; `detach --all` detaches
/// and removes it, and leaves the strays alone.
#[test]
fn an_attach_killed_mid_way_is_reported_and_cleaned() {
    let Some(bed) = Bed::new() else { return };
    let outside = Outside::new("stray");
    assert!(bed.attach("a", "udp").status.success());
    let killed = bed.run(
        &[("PCAP2BPF_PIN_FAULT", "pin:4")],
        &[
            "attach",
            "-i",
            "lo",
            "--hook",
            "tcx-ingress",
            "--name",
            "k",
            "tcp",
        ],
        false,
    );
    assert_eq!(killed.status.code(), None, "stopped by a signal");
    assert_eq!(bed.chain(), ["a", "k"], "the half-made filter runs");
    // Strays: a symbolic link out of bpffs, a directory of other contents.
    std::os::unix::fs::symlink(&outside.0, bed.root.join("sym")).unwrap();
    fs::create_dir_all(bed.root.join("junk").join("sub")).unwrap();
    // An empty directory with a name that moves the terminal: an empty
    // unit, said escaped.
    fs::create_dir(bed.root.join("e\x1b[2J\nx")).unwrap();

    let o = bed.cli(&["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.lines().any(|l| l.starts_with("a ")), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("k ")), "{out}");
    let err = stderr(&o);
    assert!(err.contains("k was half made by process"), "{err}");
    assert!(err.contains("holds meta, stats, prog, link)"), "{err}");
    assert!(
        err.contains("(program ") && err.contains(") is attached to lo (tcx-ingress)"),
        "{err}"
    );
    assert!(
        err.contains("sym is not one of ours (a symbolic link)"),
        "{err}"
    );
    assert!(err.contains("junk is not one of ours"), "{err}");
    assert!(!err.contains('\x1b'), "{err:?}");
    // (The link is optional: a filter in an XDP dispatcher has none.)
    assert!(
        err.lines().any(|l| l.starts_with("pcap2bpf: e\\x1b[2J\\x0ax is missing meta, stats, prog (it holds nothing): no link of it is attached; `pcap2bpf detach --all` removes it")),
        "{err}"
    );

    let o = bed.cli(&["detach", "--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "detached a\n");
    assert!(
        stderr(&o).contains("removed what was left of k"),
        "{}",
        stderr(&o)
    );
    assert!(bed.chain().is_empty(), "both filters detached");
    assert_eq!(entries(&bed.root), ["junk", "sym"]);
    outside.assert_intact();
    let o = bed.cli(&["status"]);
    assert!(o.status.success());
    assert_eq!(stdout(&o), "no filters attached by pcap2bpf\n");
}

/// `kill -9` of a detach after its first unlink: the filter's name is
/// already gone and its link detached; `status` reports the rest and
/// `detach NAME` finishes the removal.
#[test]
fn a_detach_killed_mid_way_is_reported_and_finished() {
    let Some(bed) = Bed::new() else { return };
    assert!(bed.attach("d", "udp").status.success());
    let killed = bed.run(
        &[("PCAP2BPF_PIN_FAULT", "unlink:1")],
        &["detach", "d"],
        false,
    );
    assert_eq!(killed.status.code(), None, "stopped by a signal");
    assert!(bed.chain().is_empty(), "the link was detached first");
    let o = bed.cli(&["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "no filters attached by pcap2bpf\n");
    assert!(stderr(&o).contains("d was half removed"), "{}", stderr(&o));
    // The name is free again meanwhile.
    assert!(bed.attach("d", "tcp").status.success());
    let o = bed.cli(&["detach", "d"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("removed what was left of d"),
        "{}",
        stderr(&o)
    );
    assert!(entries(&bed.root).is_empty());
    assert!(bed.chain().is_empty());
}

/// Under umask 000 the pin directory is 0700, a filter's directory 0700
/// and its pins 0600.
#[test]
fn modes_do_not_depend_on_the_umask() {
    let Some(bed) = Bed::new() else { return };
    let o = bed.run(
        &[],
        &[
            "attach",
            "-i",
            "lo",
            "--hook",
            "tcx-ingress",
            "--name",
            "m",
            "udp",
        ],
        true,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&bed.root), 0o700);
    assert_eq!(mode(&bed.root.join("m")), 0o700);
    for pin in ["link", "prog", "stats", "meta"] {
        assert_eq!(mode(&bed.root.join("m").join(pin)), 0o600, "{pin}");
    }
    assert!(bed.cli(&["detach", "m"]).status.success());
}

/// Under `ip netns exec` (a mount namespace of the command's own, with a
/// /sys without bpffs) `attach` would mount a bpffs that goes away with
/// it, and the filter with its pins: it refuses, says why, and attaches
/// nothing; `status` says that it cannot see the system's bpffs.
#[test]
fn attach_under_ip_netns_exec_is_refused_rather_than_lost() {
    let Some(bed) = Bed::new() else { return };
    let exec = |args: &[&str]| {
        Command::new("ip")
            .args(["netns", "exec", bed.ns.name(), BIN])
            .args(args)
            .env_remove("PCAP2BPF_PIN_ROOT")
            .output()
            .expect("ip runs")
    };
    let o = exec(&[
        "attach",
        "-i",
        "lo",
        "--hook",
        "tcx-ingress",
        "--name",
        "x",
        "udp",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("/sys/fs/bpf is not a bpf filesystem here")
            && stderr(&o).contains("nsenter --net=/run/netns/NAME"),
        "{}",
        stderr(&o)
    );
    assert!(bed.chain().is_empty(), "nothing attached");
    let o = exec(&["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("filters pinned in the system's bpffs are not visible"),
        "{}",
        stderr(&o)
    );
}

/// A link the kernel has whose program is one of a test's filters.
#[derive(Debug)]
struct KernelLink {
    id: KernelLinkId,
    prog: String,
    /// 0 once detached.
    ifindex: u32,
}

/// The name of the kernel's program `id`, while it exists.
fn prog_name(id: KernelProgId) -> Option<String> {
    let fd = sys::prog_get_fd_by_id(id).ok()?;
    sys::prog_info(&fd).ok().map(|i| i.name)
}

/// Every link in the kernel whose program is named one of `names` (what
/// `bpftool link show` lists, by program name): attached or detached,
/// pinned anywhere or held by any process.
fn kernel_links(names: &[String]) -> Vec<KernelLink> {
    let mut links = Vec::new();
    let mut id = None;
    while let Some(next) = sys::link_get_next_id(id).unwrap() {
        id = Some(next);
        let Ok(fd) = sys::link_get_fd_by_id(next) else {
            continue; // freed meanwhile
        };
        let Ok(info) = sys::link_info(&fd) else {
            continue;
        };
        let Some(prog) = info.prog_id.and_then(prog_name) else {
            continue;
        };
        if names.contains(&prog) {
            let ifindex = match info.detail {
                LinkDetail::Xdp { ifindex } | LinkDetail::Tcx { ifindex, .. } => ifindex,
                LinkDetail::Other => 0,
            };
            links.push(KernelLink {
                id: info.id,
                prog,
                ifindex,
            });
        }
    }
    links
}

/// Every program in the kernel named one of `names`.
fn kernel_progs(names: &[String]) -> Vec<KernelProgId> {
    let mut progs = Vec::new();
    let mut id = None;
    while let Some(next) = sys::prog_get_next_id(id).unwrap() {
        id = Some(next);
        if prog_name(next).is_some_and(|n| names.contains(&n)) {
            progs.push(next);
        }
    }
    progs
}

/// The kernel frees a link or program after its last reference goes, not
/// at once: waits (up to 5 s) until it has none of `names`.
fn assert_gone_from_kernel(names: &[String], ctx: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (links, progs) = (kernel_links(names), kernel_progs(names));
        if links.is_empty() && progs.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{ctx}: still in the kernel: links {links:?}, programs {progs:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A row of the `status` table.
#[derive(Debug)]
struct Row {
    name: String,
    device: String,
    link: String,
    netns: String,
}

/// The rows of `status` output.
fn rows(out: &str) -> Vec<Row> {
    out.lines()
        .skip_while(|l| !l.starts_with("name "))
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            Row {
                name: c[0].into(),
                device: c[1].into(),
                link: c[7].into(),
                netns: c[8].into(),
            }
        })
        .collect()
}

/// Runs `status`, which must work, and checks that no filter is
/// invisible: every link of `names` that the kernel has attached (its
/// own enumeration of links, which agrees with `lo`'s tcx chain) is in
/// the table, or in a note on a half-made filter that names the link and
/// where it runs; and the table shows only links that run. Returns
/// stdout and stderr.
fn assert_all_visible(bed: &Bed, names: &[String], ctx: &str) -> (String, String) {
    let o = bed.cli(&["status"]);
    assert!(o.status.success(), "{ctx}: status fails: {}", stderr(&o));
    let (out, err) = (stdout(&o), stderr(&o));
    let table = rows(&out);
    let live: Vec<KernelLink> = kernel_links(names)
        .into_iter()
        .filter(|l| l.ifindex != 0)
        .collect();
    let mut live_ids: Vec<KernelLinkId> = live.iter().map(|l| l.id).collect();
    live_ids.sort();
    assert_eq!(live_ids, bed.chain_links(), "{ctx}: {live:?}");
    for l in &live {
        let shown = table
            .iter()
            .any(|r| r.name == l.prog && r.link == l.id.to_string() && r.device == "lo");
        let reported = err.lines().any(|line| {
            line.contains(&format!("{} was half", l.prog))
                && line.contains(&format!(
                    "its link {} (program {}) is attached to lo (tcx-ingress)",
                    l.id,
                    kernel_prog_of(l.id)
                ))
        });
        assert!(
            shown || reported,
            "{ctx}: link {} of {} runs, and status does not show it:\n{out}\n{err}",
            l.id,
            l.prog
        );
    }
    for r in &table {
        assert!(
            live.iter()
                .any(|l| l.prog == r.name && l.id.to_string() == r.link),
            "{ctx}: status shows {r:?}, which does not run: {live:?}"
        );
    }
    (out, err)
}

/// The program of link `id`.
fn kernel_prog_of(id: KernelLinkId) -> String {
    let fd = sys::link_get_fd_by_id(id).unwrap();
    sys::link_info(&fd).unwrap().prog_id.unwrap().to_string()
}

/// `o` ended by the fault hook's abort, as `kill -9` would end it: no exit
/// code, a signal.
fn assert_killed(o: &Output, ctx: &str) {
    assert_eq!(
        (o.status.code(), o.status.signal()),
        (None, Some(libc::SIGABRT)),
        "{ctx}: {}",
        stderr(o)
    );
}

/// `detach --all` works after a killed command: it detaches the whole
/// filters `whole`, removes what is left of `half`, and leaves nothing of
/// `names` in the pin directory or the kernel; `status` is clean after.
fn assert_detach_all_cleans(bed: &Bed, names: &[String], whole: &[&str], half: &str, ctx: &str) {
    let o = bed.cli(&["detach", "--all"]);
    assert!(o.status.success(), "{ctx}: detach --all: {}", stderr(&o));
    let detached: String = whole.iter().map(|n| format!("detached {n}\n")).collect();
    assert_eq!(stdout(&o), detached, "{ctx}");
    assert!(
        stderr(&o).contains(&format!("removed what was left of {half}")),
        "{ctx}: {}",
        stderr(&o)
    );
    assert!(bed.chain().is_empty(), "{ctx}: {:?}", bed.chain());
    assert!(
        entries(&bed.root).is_empty(),
        "{ctx}: {:?}",
        entries(&bed.root)
    );
    assert_gone_from_kernel(names, ctx);
    let o = bed.cli(&["status"]);
    assert_eq!(
        (stdout(&o).as_str(), stderr(&o).as_str()),
        ("no filters attached by pcap2bpf\n", ""),
        "{ctx}"
    );
}

/// The pins of a filter, in the order `attach` makes them (deploy.rs):
/// an attach has one pin step per member, a detach one unlink step.
const PINS: [&str; 4] = ["meta", "stats", "prog", "link"];

/// `kill -9` at every pin step of `attach` and every unlink step of
/// `detach NAME` and `detach --all` (the fault hook aborts the command
/// right after step N; step N + 1 of each is checked not to exist, so
/// no step is missed): `status` still works, lists the other filter,
/// reports the half-made one, and shows every link of the test's filters
/// that the kernel runs; `detach --all` then removes everything, from
/// the pin directory and the kernel.
#[test]
fn every_pin_and_unlink_step_killed_leaves_status_and_detach_working() {
    let Some(bed) = Bed::new() else { return };
    let pid = std::process::id();
    // Names of this test's only: the kernel's links are searched by them.
    let (by, victim) = (format!("sb{pid}"), format!("sv{pid}"));
    let names = [by.clone(), victim.clone()];
    let steps = PINS.len() as u32;
    let faulty = |fault: String, args: &[&str]| {
        bed.run(&[("PCAP2BPF_PIN_FAULT", fault.as_str())], args, false)
    };
    let attach_ok = |name: &str| {
        let o = bed.attach(name, "udp");
        assert!(o.status.success(), "{}", stderr(&o));
    };

    // attach, killed after its pin N.
    attach_ok(&by);
    for n in 1..=steps + 1 {
        let ctx = format!("attach killed after pin {n}");
        let o = faulty(format!("pin:{n}"), &attach_args(&victim, "tcp"));
        if n == steps + 1 {
            assert!(o.status.success(), "{ctx}: {} pin steps?", stderr(&o));
            let (out, _) = assert_all_visible(&bed, &names, &ctx);
            assert_eq!(rows(&out).len(), 2, "{out}");
            assert!(bed.cli(&["detach", &victim]).status.success());
            continue;
        }
        assert_killed(&o, &ctx);
        let (out, err) = assert_all_visible(&bed, &names, &ctx);
        let listed: Vec<String> = rows(&out).into_iter().map(|r| r.name).collect();
        assert_eq!(listed, [by.as_str()], "{ctx}: {out}");
        let holds = PINS[..n as usize].join(", ");
        assert!(
            err.contains(&format!("{victim} was half made by process"))
                && err.contains(&format!("holds {holds})")),
            "{ctx}: {err}"
        );
        // Until the link is pinned, the filter dies with the command.
        if n < steps {
            assert!(err.contains("no link of it is attached"), "{ctx}: {err}");
            assert_eq!(bed.chain(), [by.as_str()], "{ctx}");
        } else {
            assert_eq!(bed.chain(), [by.clone(), victim.clone()], "{ctx}");
        }
        assert_detach_all_cleans(&bed, &names, &[&by], &victim, &ctx);
        attach_ok(&by);
    }

    // detach NAME, killed after its unlink N.
    for n in 1..=steps + 1 {
        let ctx = format!("detach killed after unlink {n}");
        attach_ok(&victim);
        let o = faulty(format!("unlink:{n}"), &["detach", &victim]);
        if n == steps + 1 {
            assert!(o.status.success(), "{ctx}: {} unlink steps?", stderr(&o));
            assert_all_visible(&bed, &names, &ctx);
            continue;
        }
        assert_killed(&o, &ctx);
        let (out, err) = assert_all_visible(&bed, &names, &ctx);
        let listed: Vec<String> = rows(&out).into_iter().map(|r| r.name).collect();
        assert_eq!(listed, [by.as_str()], "{ctx}: {out}");
        assert!(
            err.contains(&format!("{victim} was half removed by process")),
            "{ctx}: {err}"
        );
        // The link is detached before anything is unlinked.
        assert_eq!(bed.chain(), [by.as_str()], "{ctx}");
        assert_detach_all_cleans(&bed, &names, &[&by], &victim, &ctx);
        attach_ok(&by);
    }

    // detach --all of two filters (in name order: `by` first), killed
    // after its unlink N.
    for n in 1..=2 * steps + 1 {
        let ctx = format!("detach --all killed after unlink {n}");
        attach_ok(&victim);
        let o = faulty(format!("unlink:{n}"), &["detach", "--all"]);
        if n == 2 * steps + 1 {
            assert!(o.status.success(), "{ctx}: {} unlink steps?", stderr(&o));
            assert_eq!(stdout(&o), format!("detached {by}\ndetached {victim}\n"));
            assert_gone_from_kernel(&names, &ctx);
            continue;
        }
        assert_killed(&o, &ctx);
        let (out, err) = assert_all_visible(&bed, &names, &ctx);
        let listed: Vec<String> = rows(&out).into_iter().map(|r| r.name).collect();
        let (half, whole): (&str, Vec<&str>) = if n <= steps {
            (&by, vec![&victim])
        } else {
            (&victim, vec![])
        };
        assert_eq!(listed, whole, "{ctx}: {out}");
        assert_eq!(bed.chain(), whole, "{ctx}");
        assert!(
            err.contains(&format!("{half} was half removed by process")),
            "{ctx}: {err}"
        );
        assert_detach_all_cleans(&bed, &names, &whole, half, &ctx);
        attach_ok(&by);
    }
    assert!(bed.cli(&["detach", "--all"]).status.success());
    assert_gone_from_kernel(&names, "the end");
}

/// pcap2bpf with `args`, our pin directory, in the network namespace
/// `ns` (`nsenter --net`: the mount namespace, and bpffs, stay the
/// system's, as a user would run it; `ip netns exec` is refused).
fn nsenter(bed: &Bed, ns: &str, args: &[&str]) -> Output {
    Command::new("nsenter")
        .arg(format!("--net=/run/netns/{ns}"))
        .arg(BIN)
        .args(args)
        .env("PCAP2BPF_PIN_ROOT", &bed.root)
        .output()
        .expect("nsenter runs")
}

/// `status` names a filter's device as the network namespace it was
/// attached in names it, whichever namespace `status` runs in, and says
/// which namespace that is; when it cannot enter that namespace it says
/// so and names no device (the index means another device here). Two
/// namespaces have a device of index 40 each, under different names.
#[test]
fn status_names_devices_in_the_namespace_they_were_attached_in() {
    let Some(bed) = Bed::new() else { return };
    let a = testbed::Netns::new().unwrap();
    for (ns, dev, peer) in [(&a, "nsda", "nsda2"), (&bed.ns, "nsdb", "nsdb2")] {
        ns.ip(&[
            "link", "add", "name", dev, "index", "40", "type", "veth", "peer", "name", peer,
        ])
        .unwrap();
    }
    let name = format!("ns{}", std::process::id());
    let mut args = attach_args(&name, "udp");
    args[2] = "nsda";
    let o = nsenter(&bed, a.name(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with(&format!("attached {name} to nsda tcx-ingress")),
        "{}",
        stdout(&o)
    );
    let row = |o: &Output, ctx: &str| -> Row {
        assert!(o.status.success(), "{ctx}: {}", stderr(o));
        let mut r = rows(&stdout(o));
        assert_eq!(r.len(), 1, "{ctx}: {}", stdout(o));
        r.remove(0)
    };
    let host = || {
        Command::new(BIN)
            .arg("status")
            .env("PCAP2BPF_PIN_ROOT", &bed.root)
            .output()
            .unwrap()
    };

    // From this process's namespace, from the other one, and from A.
    for (ctx, o, netns) in [
        ("from the host", host(), a.name()),
        (
            "from B",
            nsenter(&bed, bed.ns.name(), &["status"]),
            a.name(),
        ),
        ("from A", nsenter(&bed, a.name(), &["status"]), "-"),
    ] {
        let r = row(&o, ctx);
        assert_eq!(
            (r.device.as_str(), r.netns.as_str()),
            ("nsda", netns),
            "{ctx}"
        );
        assert_eq!(stderr(&o), "", "{ctx}");
    }

    // A, kept alive by our open file only: no `ip netns` name, no
    // process in it. Not entered, and its index not named elsewhere.
    let ino = fs::metadata(format!("/run/netns/{}", a.name()))
        .unwrap()
        .ino();
    let del = Command::new("ip")
        .args(["netns", "del", a.name()])
        .output()
        .unwrap();
    assert!(del.status.success(), "{}", stderr(&del));
    let ours = bpf_builder::sys::netns::NetnsFile::open("/proc/self/ns/net").unwrap();
    assert_ne!(ours.id().ino(), ino);
    for (ctx, o) in [
        ("A unnamed, from the host", host()),
        (
            "A unnamed, from B",
            nsenter(&bed, bed.ns.name(), &["status"]),
        ),
    ] {
        let r = row(&o, ctx);
        let id = format!("net:[{ino}]");
        assert_eq!(
            (r.device.as_str(), r.netns.as_str()),
            ("ifindex:40", id.as_str()),
            "{ctx}"
        );
        assert_eq!(
            stderr(&o),
            format!(
                "pcap2bpf: {name}: (ifindex 40 in network namespace {id}, not this one; it has \
                 no `ip netns` name and no process is in it; it was attached as nsda)\n"
            ),
            "{ctx}"
        );
        assert!(!stdout(&o).contains("nsdb"), "{ctx}: {}", stdout(&o));
    }
    // Detaching needs no namespace: the link is detached by its pin.
    let o = nsenter(&bed, bed.ns.name(), &["detach", &name]);
    assert!(o.status.success(), "{}", stderr(&o));
    let chain = a
        .run(|| tcx::query("nsda", Hook::Ingress).unwrap())
        .unwrap();
    assert!(chain.entries.is_empty(), "{chain:?}");
    assert!(entries(&bed.root).is_empty());
}
