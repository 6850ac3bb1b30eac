//! The pin directory of `pcap2bpf attach` (issue 18): concurrent attaches
//! of one name, pin directories that someone else controls, commands
//! killed mid-way (the `PCAP2BPF_PIN_FAULT` hook) and strays, the umask.
//!
//! Every test has a scratch pin directory of its own under /sys/fs/bpf
//! (`PCAP2BPF_PIN_ROOT`) and attaches to `lo` of a network namespace of
//! its own, so it never meets other tests' or users' filters.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Barrier;
use std::sync::atomic::{AtomicU32, Ordering};

use bpf_builder::attach::tcx::{self, Hook};

const BIN: &str = env!("CARGO_BIN_EXE_pcap2bpf");

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

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

    fn attach(&self, name: &str, expr: &str) -> Output {
        self.cli(&[
            "attach",
            "-i",
            "lo",
            "--hook",
            "tcx-ingress",
            "--name",
            name,
            expr,
        ])
    }
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

/// Makes the pin directory what a test wants it to be.
type Setup<'a> = dyn Fn(&Path) + 'a;

/// A pin directory that is a symbolic link, someone else's, or writable
/// by others is refused by every command, with the reason, and nothing
/// it leads to is touched.
#[test]
fn pin_directories_others_control_are_refused() {
    let Some(bed) = Bed::new() else { return };
    let outside = Outside::new("refused");
    let setups: [(&str, &Setup); 3] = [
        ("it is a symbolic link", &|p| {
            std::os::unix::fs::symlink(&outside.0, p).unwrap()
        }),
        ("it is owned by uid 65534", &|p| {
            fs::create_dir(p).unwrap();
            fs::create_dir(p.join("r")).unwrap();
            std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
        }),
        ("it is writable by group or others (mode 0777)", &|p| {
            fs::create_dir(p).unwrap();
            fs::create_dir(p.join("r")).unwrap();
            fs::set_permissions(p, fs::Permissions::from_mode(0o777)).unwrap();
        }),
    ];
    for (reason, setup) in setups {
        setup(&bed.root);
        for args in [
            &[
                "attach",
                "-i",
                "lo",
                "--hook",
                "tcx-ingress",
                "--name",
                "r",
                "udp",
            ][..],
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

/// `kill -9` of an attach at its second pin (the fault hook stops it
/// there) leaves a live filter in a staging directory: `status` still
/// lists the other filters and reports it, as it reports entries that are
/// not filters; `detach --all` detaches and removes it, and leaves the
/// strays alone.
#[test]
fn an_attach_killed_mid_way_is_reported_and_cleaned() {
    let Some(bed) = Bed::new() else { return };
    let outside = Outside::new("stray");
    assert!(bed.attach("a", "udp").status.success());
    let killed = bed.run(
        &[("PCAP2BPF_PIN_FAULT", "pin:2")],
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

    let o = bed.cli(&["status"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.lines().any(|l| l.starts_with("a ")), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("k ")), "{out}");
    let err = stderr(&o);
    assert!(err.contains("k was half made by process"), "{err}");
    assert!(err.contains("holds link, prog"), "{err}");
    assert!(
        err.contains("sym is not one of ours (a symbolic link)"),
        "{err}"
    );
    assert!(err.contains("junk is not one of ours"), "{err}");

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
