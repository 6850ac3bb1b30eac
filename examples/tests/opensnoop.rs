//! opensnoop reports this test's opens of uniquely named files (pid,
//! thread, command, file descriptor or errno, path), through the
//! tracepoints here and through fexit in the VM, and as a command stopped
//! with Ctrl-C that leaves nothing loaded.

mod common;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Tool, assert_gone, comm_of, gettid, new_prog_ids, prog_ids};
use examples::require_bpf;
use examples::tools::opensnoop::{self, Event, HEADER, Method, Opensnoop, Options};

const EXE: &str = env!("CARGO_BIN_EXE_opensnoop");

/// A path no other process opens.
fn unique(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!("opensnoop-{tag}-{}-{nanos}", std::process::id()))
}

/// Makes a file at `path` without opening `path` itself (writing opens
/// it too: that would be one more event).
fn create(path: &PathBuf) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, b"x").unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Opens an existing unique file `n` times and a missing one `m` times,
/// and checks that `tool` reports each open, and nothing else for them.
fn check_reports(tool: &mut Opensnoop, n: usize, m: usize) {
    let there = unique("there");
    let missing = unique("missing");
    create(&there);
    let mut fds = Vec::new();
    for _ in 0..n {
        let f = File::open(&there).unwrap();
        fds.push(f.as_raw_fd() as i64);
    }
    for _ in 0..m {
        let e = File::open(&missing).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(2));
    }
    let (there_s, missing_s) = (there.to_str().unwrap(), missing.to_str().unwrap());
    let mut seen: Vec<Event> = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while seen.len() < n + m && Instant::now() < end {
        tool.poll(Duration::from_millis(100), |e| {
            if e.path == there_s || e.path == missing_s {
                seen.push(e);
            }
        })
        .unwrap();
    }
    // A little longer: nothing more may come.
    tool.poll(Duration::from_millis(200), |e| {
        if e.path == there_s || e.path == missing_s {
            seen.push(e);
        }
    })
    .unwrap();
    std::fs::remove_file(&there).unwrap();
    let comm = comm_of("/proc/thread-self/comm");
    let (pid, tid) = (std::process::id(), gettid());
    let got_there: Vec<i64> = seen
        .iter()
        .filter(|e| e.path == there_s)
        .map(|e| e.ret)
        .collect();
    assert_eq!(got_there, fds, "one event per open, with its fd, in order");
    let got_missing: Vec<i64> = seen
        .iter()
        .filter(|e| e.path == missing_s)
        .map(|e| e.ret)
        .collect();
    assert_eq!(got_missing, vec![-2; m], "ENOENT");
    for e in &seen {
        assert_eq!(
            (e.pid, e.tid, e.comm.as_str()),
            (pid, tid, comm.as_str()),
            "{e:?}"
        );
    }
}

#[test]
fn opensnoop_reports_each_open_through_the_tracepoints() {
    if !require_bpf("opensnoop_reports_each_open_through_the_tracepoints") {
        return;
    }
    let opts = Options {
        tracepoint: true,
        ..Options::default()
    };
    let mut tool = Opensnoop::start(&opts).unwrap();
    assert_eq!(tool.method(), Method::Tracepoints);
    check_reports(&mut tool, 5, 3);
}

#[test]
fn opensnoop_filters_by_pid_in_the_kernel() {
    if !require_bpf("opensnoop_filters_by_pid_in_the_kernel") {
        return;
    }
    let opts = Options {
        pid: Some(std::process::id()),
        tracepoint: true,
        ..Options::default()
    };
    let mut tool = Opensnoop::start(&opts).unwrap();
    // `cat` opens its file in another process: not reported.
    let other = unique("other");
    create(&other);
    let out = std::process::Command::new("cat")
        .arg(&other)
        .output()
        .unwrap();
    assert!(out.status.success());
    std::fs::remove_file(&other).unwrap();
    let mut others = Vec::new();
    tool.poll(Duration::from_millis(300), |e| {
        if e.pid != std::process::id() {
            others.push(e)
        }
    })
    .unwrap();
    assert_eq!(others, Vec::new());
    check_reports(&mut tool, 2, 1);
}

#[test]
fn opensnoop_uses_fexit_where_the_kernel_has_trampolines_here_or_in_vm() {
    if !require_bpf("opensnoop_uses_fexit_where_the_kernel_has_trampolines_here_or_in_vm")
        || !testbed::vm::run_here_or_in_vm(
            "fexit programs (BPF trampolines)",
            testbed::features::fentry(),
            "opensnoop_uses_fexit_where_the_kernel_has_trampolines_here_or_in_vm",
        )
    {
        return;
    }
    let mut tool = Opensnoop::start(&Options::default()).unwrap();
    assert_eq!(tool.method(), Method::Fexit);
    check_reports(&mut tool, 4, 2);
}

#[test]
fn opensnoop_without_trampolines_falls_back_to_the_tracepoints() {
    if !require_bpf("opensnoop_without_trampolines_falls_back_to_the_tracepoints") {
        return;
    }
    if testbed::features::fentry() {
        eprintln!("skipped: this kernel loads fexit programs");
        return;
    }
    let mut tool = Opensnoop::start(&Options::default()).unwrap();
    assert_eq!(tool.method(), Method::Tracepoints);
    check_reports(&mut tool, 1, 1);
}

#[test]
fn opensnoop_command_prints_this_process_opens_until_ctrl_c_and_leaves_nothing() {
    if !require_bpf("opensnoop_command_prints_this_process_opens_until_ctrl_c_and_leaves_nothing") {
        return;
    }
    let before = prog_ids(opensnoop::PROGRAM_PREFIX);
    let me = std::process::id().to_string();
    let mut tool = Tool::spawn(EXE, &["-p", &me]);
    assert!(
        tool.wait_for(Duration::from_secs(30), |l| l == HEADER),
        "no header: {:?}",
        tool.seen
    );
    let ids = new_prog_ids(opensnoop::PROGRAM_PREFIX, &before);
    if let Some(ids) = &ids {
        assert!(!ids.is_empty(), "its programs are loaded while it runs");
    }
    let path = unique("cmd");
    create(&path);
    const N: usize = 3;
    let mut fds = Vec::new();
    for _ in 0..N {
        fds.push(File::open(&path).unwrap().as_raw_fd());
    }
    let p = path.to_str().unwrap().to_string();
    let mut found = 0;
    assert!(
        tool.wait_for(Duration::from_secs(10), |l| {
            found += l.ends_with(&format!(" {p}")) as usize;
            found == N
        }),
        "{N} lines for {p}: {:?}",
        tool.seen
    );
    std::fs::remove_file(&path).unwrap();
    let (status, lines) = tool.interrupt();
    assert!(status.success(), "{status:?}: {lines:?}");
    let comm = comm_of("/proc/thread-self/comm");
    let ours: Vec<&String> = lines
        .iter()
        .filter(|l| l.ends_with(&format!(" {p}")))
        .collect();
    assert_eq!(ours.len(), N, "{lines:?}");
    for (line, fd) in ours.iter().zip(fds) {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            (f[0], f[1], f[2], f[3]),
            (me.as_str(), comm.as_str(), fd.to_string().as_str(), "0"),
            "{line}"
        );
        assert_eq!(
            **line,
            format!("{me:<6} {comm:<16} {fd:>4} {:>3} {p}", 0),
            "bcc's columns"
        );
    }
    assert_gone(&ids.unwrap_or_default());
}

#[test]
fn opensnoop_says_what_is_wrong_with_its_arguments() {
    for (args, says) in [
        (&["--bogus"][..], "unknown argument `--bogus`"),
        (&["-p"][..], "-p needs a value"),
        (&["-d", "x"][..], "`x` is not a valid value"),
    ] {
        let out = std::process::Command::new(EXE).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
