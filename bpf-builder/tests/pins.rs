//! `bpf_builder::pins` on the real bpffs: units appear whole under
//! concurrent makers, only roots their owner controls are accepted,
//! strays are left alone, a process stopped mid-way (fault hook, in a
//! child process) leaves a half-made unit that is reported and removed,
//! and the umask does not decide modes.
//!
//! Every test uses a scratch root `/sys/fs/bpf/bbpins-PID-N` of its own.

mod common;

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU32, Ordering};

use bpf_builder::handle::Program;
use bpf_builder::pins::{Fault, HalfState, PinError, PinRoot};
use bpf_builder::sys::bpf::{self as sys, LinkDetail, MapCreateAttr, bpf_map_type};
use common::*;

const MEMBERS: &[&str] = &["link", "prog", "map"];

/// A scratch root path under /sys/fs/bpf, removed (whatever it became)
/// when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        sys::ensure_bpffs(Path::new("/sys/fs/bpf")).unwrap();
        let n = N.fetch_add(1, Ordering::Relaxed);
        Scratch(PathBuf::from(format!(
            "/sys/fs/bpf/bbpins-{}-{n}",
            std::process::id()
        )))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        match fs::symlink_metadata(&self.0) {
            Ok(m) if m.is_dir() => {
                let _ = fs::remove_dir_all(&self.0);
            }
            Ok(_) => {
                let _ = fs::remove_file(&self.0);
            }
            Err(_) => {}
        }
    }
}

/// A small array map to pin.
fn map() -> OwnedFd {
    sys::map_create(&MapCreateAttr {
        map_type: bpf_map_type::BPF_MAP_TYPE_ARRAY as u32,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        name: "pins_test",
        ..Default::default()
    })
    .expect("array map")
}

/// Makes the unit `name` of maps in `root`.
fn make(root: &mut PinRoot, name: &str) -> Result<(), PinError> {
    let locked = root.lock()?;
    let mut unit = locked.stage(name)?;
    for m in MEMBERS {
        unit.pin(m, map())?;
    }
    unit.commit()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Runs this test binary's `child_entry` with `env`, in the current
/// network namespace.
fn child(env: &[(&str, &str)], umask_000: bool) -> std::process::ExitStatus {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = if umask_000 {
        let mut c = Command::new("sh");
        c.arg("-c").arg("umask 000; exec \"$0\" \"$@\"").arg(exe);
        c
    } else {
        Command::new(exe)
    };
    cmd.args(["child_entry", "--exact", "--nocapture", "--test-threads=1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.status().expect("the test binary runs")
}

/// The child side of the fault and umask tests (does nothing unless
/// `PINS_CHILD` is set).
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var("PINS_CHILD") else {
        return;
    };
    let root_path = std::env::var("PINS_ROOT").unwrap();
    let name = std::env::var("PINS_NAME").unwrap();
    let mut root = PinRoot::create(&root_path, MEMBERS).unwrap();
    root.set_fault(
        std::env::var("PINS_FAULT")
            .ok()
            .and_then(|f| Fault::parse(&f)),
    );
    match mode.as_str() {
        // An XDP link on lo (of the namespace the parent runs us in),
        // then its program and a map.
        "stage-link" => {
            let prog = Program::from_fd(load_xdp_returning(2, "pins_t")).unwrap();
            let link = bpf_builder::attach::xdp::attach(
                "lo",
                &prog,
                bpf_builder::attach::xdp::XdpMode::Auto,
            )
            .unwrap();
            let locked = root.lock().unwrap();
            let mut unit = locked.stage(&name).unwrap();
            unit.pin("link", &link).unwrap();
            unit.pin("prog", &prog).unwrap();
            unit.pin("map", map()).unwrap();
            unit.commit().unwrap();
        }
        "stage" => make(&mut root, &name).unwrap(),
        "remove" => root.lock().unwrap().remove(&name).unwrap(),
        other => panic!("unknown child mode {other}"),
    }
}

#[test]
fn units_appear_whole_under_concurrent_stages() {
    if !require_bpf() {
        return;
    }
    let scratch = Scratch::new();
    for round in 0..30 {
        let name = format!("r{round}");
        let barrier = Barrier::new(2);
        let results: Vec<Result<(), PinError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        // Each its own root handle, as two processes have.
                        let mut root = PinRoot::create(&scratch.0, MEMBERS).unwrap();
                        barrier.wait();
                        make(&mut root, &name)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let exists = results
            .iter()
            .filter(|r| matches!(r, Err(PinError::Exists { name: n, .. }) if *n == name))
            .count();
        assert_eq!((ok, exists), (1, 1), "round {round}: {results:?}");
        let mut root = PinRoot::open(&scratch.0, MEMBERS).unwrap().unwrap();
        let locked = root.lock().unwrap();
        let scan = locked.scan().unwrap();
        assert_eq!(scan.units, std::slice::from_ref(&name), "round {round}");
        assert!(
            scan.half_made.is_empty() && scan.strays.is_empty(),
            "{scan:?}"
        );
        assert_eq!(entries(&scratch.0.join(&name)), ["link", "map", "prog"]);
        locked.remove(&name).unwrap();
        assert!(entries(&scratch.0).is_empty());
    }
}

#[test]
fn roots_only_their_owner_controls_are_accepted() {
    if !require_bpf() {
        return;
    }
    // Outside bpffs: a directory with a unit-like tree, which the
    // refusals must leave as it is.
    let outside = std::env::temp_dir().join(format!("bbpins-outside-{}", std::process::id()));
    let _ = fs::remove_dir_all(&outside);
    fs::create_dir_all(outside.join("u")).unwrap();
    fs::write(outside.join("u").join("link"), b"precious").unwrap();
    let refused = |path: &Path, reason: &str| {
        for r in [
            PinRoot::create(path, MEMBERS).map(|_| ()),
            PinRoot::open(path, MEMBERS).map(|_| ()),
        ] {
            match r {
                Err(PinError::Refused { reason: got, .. }) => {
                    assert!(got.contains(reason), "{}: {got}", path.display())
                }
                other => panic!("{}: {other:?}", path.display()),
            }
        }
    };

    let link = Scratch::new();
    std::os::unix::fs::symlink(&outside, &link.0).unwrap();
    refused(&link.0, "symbolic link");

    let foreign = Scratch::new();
    fs::create_dir(&foreign.0).unwrap();
    std::os::unix::fs::chown(&foreign.0, Some(65534), Some(65534)).unwrap();
    refused(&foreign.0, "owned by uid 65534");

    let open = Scratch::new();
    fs::create_dir(&open.0).unwrap();
    fs::set_permissions(&open.0, fs::Permissions::from_mode(0o777)).unwrap();
    refused(&open.0, "writable by group or others");

    refused(&outside, "not on a bpf filesystem");

    assert_eq!(
        fs::read(outside.join("u").join("link")).unwrap(),
        b"precious"
    );
    assert_eq!(entries(&outside), ["u"]);
    fs::remove_dir_all(&outside).unwrap();

    // A new root is 0700, ours.
    let fresh = Scratch::new();
    PinRoot::create(&fresh.0, MEMBERS).unwrap();
    let m = fs::symlink_metadata(&fresh.0).unwrap();
    assert_eq!((m.mode() & 0o7777, m.uid()), (0o700, 0));
}

#[test]
fn strays_are_listed_and_left_alone() {
    if !require_bpf() {
        return;
    }
    let scratch = Scratch::new();
    let mut root = PinRoot::create(&scratch.0, MEMBERS).unwrap();
    make(&mut root, "good").unwrap();
    let outside = std::env::temp_dir().join(format!("bbpins-stray-{}", std::process::id()));
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("link"), b"x").unwrap();
    std::os::unix::fs::symlink(&outside, scratch.0.join("sym")).unwrap();
    fs::create_dir(scratch.0.join("theirs")).unwrap();
    std::os::unix::fs::chown(scratch.0.join("theirs"), Some(65534), None).unwrap();
    fs::create_dir_all(scratch.0.join("mixed").join("sub")).unwrap();
    sys::obj_pin(map(), &scratch.0.join("loose")).unwrap();
    // A unit-shaped directory whose member is a symbolic link out of
    // bpffs: not followed, not a unit.
    fs::create_dir(scratch.0.join("linked")).unwrap();
    std::os::unix::fs::symlink(outside.join("link"), scratch.0.join("linked").join("map")).unwrap();

    let locked = root.lock().unwrap();
    let scan = locked.scan().unwrap();
    assert_eq!(scan.units, ["good"]);
    assert!(scan.half_made.is_empty(), "{scan:?}");
    let strays: Vec<&str> = scan.strays.iter().map(|s| s.entry.as_str()).collect();
    assert_eq!(
        strays,
        ["linked", "loose", "mixed", "sym", "theirs"],
        "{scan:?}"
    );
    for s in &strays {
        assert!(matches!(locked.remove(s), Err(PinError::NotAUnit { .. })));
    }
    assert!(matches!(locked.unit("sym"), Err(PinError::NotAUnit { .. })));
    assert!(matches!(
        locked.unit("linked"),
        Err(PinError::NotAUnit { .. })
    ));
    // The whole unit still reads and removes.
    assert!(locked.unit("good").unwrap().map("map").is_ok());
    locked.remove("good").unwrap();
    assert_eq!(
        entries(&scratch.0),
        ["linked", "loose", "mixed", "sym", "theirs"]
    );
    assert_eq!(entries(&outside), ["link"]);
    fs::remove_dir_all(&outside).unwrap();
}

#[test]
fn an_interrupted_stage_is_reported_and_discarded() {
    if !require_bpf() || !testbed::privileged("pins fault test") {
        return;
    }
    let scratch = Scratch::new();
    let root_path = scratch.0.to_str().unwrap().to_string();
    let ns = testbed::Netns::new().unwrap();
    // Stops after pinning the link and the program, before the map.
    let status = ns
        .run(|| {
            child(
                &[
                    ("PINS_CHILD", "stage-link"),
                    ("PINS_ROOT", &root_path),
                    ("PINS_NAME", "f"),
                    ("PINS_FAULT", "pin:2"),
                ],
                false,
            )
        })
        .unwrap();
    assert!(!status.success(), "the child aborted");

    let mut root = PinRoot::open(&scratch.0, MEMBERS).unwrap().unwrap();
    let locked = root.lock().unwrap();
    let scan = locked.scan().unwrap();
    assert!(scan.units.is_empty(), "{scan:?}");
    assert_eq!(scan.half_made.len(), 1, "{scan:?}");
    let half = &scan.half_made[0];
    assert_eq!(half.name, "f");
    assert!(matches!(half.state, HalfState::Staging { .. }), "{half:?}");
    assert_eq!(half.present, ["link", "prog"]);
    assert!(half.to_string().contains("half made"), "{half}");
    // The filter is live: the pin holds the link on lo.
    let link = sys::obj_get(&scratch.0.join(&half.entry).join("link"), 0).unwrap();
    let ifindex = |fd: &OwnedFd| match sys::link_info(fd.as_fd()).unwrap().detail {
        LinkDetail::Xdp { ifindex } => ifindex,
        other => panic!("{other:?}"),
    };
    assert_eq!(ifindex(&link), 1, "attached to lo");
    // The name is free for a new unit meanwhile.
    assert!(!locked.exists("f").unwrap());

    locked.discard(half).unwrap();
    assert_eq!(ifindex(&link), 0, "detached, though we hold an fd");
    assert!(entries(&scratch.0).is_empty());
    let scan = locked.scan().unwrap();
    assert!(scan.half_made.is_empty() && scan.units.is_empty());
}

#[test]
fn an_interrupted_remove_is_reported_and_finished() {
    if !require_bpf() {
        return;
    }
    let scratch = Scratch::new();
    let root_path = scratch.0.to_str().unwrap().to_string();
    let mut root = PinRoot::create(&scratch.0, MEMBERS).unwrap();
    make(&mut root, "g").unwrap();
    make(&mut root, "h").unwrap();
    let status = child(
        &[
            ("PINS_CHILD", "remove"),
            ("PINS_ROOT", &root_path),
            ("PINS_NAME", "g"),
            ("PINS_FAULT", "unlink:1"),
        ],
        false,
    );
    assert!(!status.success(), "the child aborted");
    let locked = root.lock().unwrap();
    let scan = locked.scan().unwrap();
    assert_eq!(scan.units, ["h"]);
    assert_eq!(scan.half_made.len(), 1, "{scan:?}");
    let half = &scan.half_made[0];
    assert_eq!(half.name, "g");
    assert!(matches!(half.state, HalfState::Removing { .. }), "{half:?}");
    assert_eq!(half.present.len(), 2, "one of three pins removed");
    locked.discard(half).unwrap();
    assert_eq!(entries(&scratch.0), ["h"]);

    // A unit missing a member (made by hand) is half made too, and
    // removing it works.
    fs::remove_file(scratch.0.join("h").join("map")).unwrap();
    let scan = locked.scan().unwrap();
    assert!(scan.units.is_empty());
    assert_eq!(
        scan.half_made[0].state,
        HalfState::Incomplete {
            missing: vec!["map".into()]
        }
    );
    assert!(matches!(locked.unit("h"), Err(PinError::Incomplete { .. })));
    locked.discard(&scan.half_made[0]).unwrap();
    assert!(entries(&scratch.0).is_empty());
}

#[test]
fn modes_do_not_depend_on_the_umask() {
    if !require_bpf() {
        return;
    }
    let scratch = Scratch::new();
    let root_path = scratch.0.to_str().unwrap().to_string();
    let status = child(
        &[
            ("PINS_CHILD", "stage"),
            ("PINS_ROOT", &root_path),
            ("PINS_NAME", "u"),
        ],
        true,
    );
    assert!(status.success());
    let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&scratch.0), 0o700);
    assert_eq!(mode(&scratch.0.join("u")), 0o700);
    for m in MEMBERS {
        assert_eq!(mode(&scratch.0.join("u").join(m)), 0o600, "{m}");
    }
}

/// A unit without its optional members is whole: it commits, lists,
/// opens and goes away as any other; one without a required member is
/// still refused.
#[test]
fn optional_members_may_be_left_out() {
    if !require_bpf() {
        return;
    }
    let scratch = Scratch::new();
    let mut root = PinRoot::create(&scratch.0, MEMBERS).unwrap();
    assert!(matches!(
        root.set_optional(&["nothere"]),
        Err(PinError::BadName(_))
    ));
    root.set_optional(&["link"]).unwrap();
    let locked = root.lock().unwrap();
    let mut unit = locked.stage("nolink").unwrap();
    unit.pin("prog", map()).unwrap();
    unit.pin("map", map()).unwrap();
    unit.commit().unwrap();
    let mut unit = locked.stage("noprog").unwrap();
    unit.pin("link", map()).unwrap();
    unit.pin("map", map()).unwrap();
    assert!(
        matches!(unit.commit(), Err(PinError::Incomplete { missing, .. }) if missing == ["prog"])
    );
    let scan = locked.scan().unwrap();
    assert_eq!(scan.units, ["nolink"]);
    assert!(scan.half_made.is_empty(), "{scan:?}");
    assert_eq!(entries(&scratch.0.join("nolink")), ["map", "prog"]);
    locked.unit("nolink").unwrap().map("map").unwrap();
    locked.remove("nolink").unwrap();
    assert!(entries(&scratch.0).is_empty());
}
