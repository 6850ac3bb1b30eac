//! syscount counts the system calls this test makes, in-process and as a
//! command stopped with Ctrl-C, and leaves nothing loaded.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Tool, assert_gone, comm_of, getpid_times, new_prog_ids, prog_ids, serial};
use examples::require_bpf;
use examples::tools::syscount::{Options, PROGRAM, Syscount};

const EXE: &str = env!("CARGO_BIN_EXE_syscount");
/// `__NR_getpid` on x86_64.
const NR_GETPID: u32 = 39;

#[test]
fn syscount_counts_exactly_the_getpid_calls_of_this_process() {
    if !require_bpf("syscount_counts_exactly_the_getpid_calls_of_this_process") {
        return;
    }
    let _serial = serial();
    let me = std::process::id();
    let opts = Options {
        pid: Some(me),
        syscall: Some(NR_GETPID),
        top: 10,
        ..Options::default()
    };
    let tool = Syscount::start(&opts).unwrap();
    const N: u64 = 1234;
    getpid_times(N);
    let rows = tool.rows().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].pid, rows[0].count), (me, N));
    assert_eq!(rows[0].comm, comm_of("/proc/self/comm"));
    getpid_times(10);
    assert_eq!(tool.rows().unwrap()[0].count, N + 10, "still counting");
}

#[test]
fn syscount_command_reports_this_process_after_ctrl_c_and_leaves_nothing() {
    if !require_bpf("syscount_command_reports_this_process_after_ctrl_c_and_leaves_nothing") {
        return;
    }
    let _serial = serial();
    let me = std::process::id();
    // Programs of other tests that the kernel has not freed yet.
    let before = prog_ids(PROGRAM);
    let mut tool = Tool::spawn(EXE, &["-T", "100000"]);
    assert!(
        tool.wait_for(Duration::from_secs(30), |l| l
            .starts_with("Tracing syscalls")),
        "no start line: {:?}",
        tool.seen
    );
    let ids = new_prog_ids(PROGRAM, &before);
    if let Some(ids) = &ids {
        assert_eq!(ids.len(), 1, "one syscount program while it runs");
    }
    const N: u64 = 5000;
    getpid_times(N);
    let (status, lines) = tool.interrupt();
    assert!(status.success(), "{status:?}: {lines:?}");
    let header = lines
        .iter()
        .position(|l| l.starts_with("PID    COMM"))
        .unwrap();
    assert_eq!(
        lines[header],
        format!("{:<22} {:>8}", "PID    COMM", "COUNT")
    );
    let ours: Vec<&String> = lines[header + 1..]
        .iter()
        .filter(|l| l.split_whitespace().next() == Some(&me.to_string()))
        .collect();
    assert_eq!(ours.len(), 1, "{lines:?}");
    let fields: Vec<&str> = ours[0].split_whitespace().collect();
    assert_eq!(fields[1], comm_of("/proc/self/comm"), "{}", ours[0]);
    let count: u64 = fields.last().unwrap().parse().unwrap();
    assert!(count >= N, "{count} < {N}: {}", ours[0]);
    assert_eq!(lines.last().map(String::as_str), Some("Detaching..."));
    assert_gone(&ids.unwrap_or_default());
}

#[test]
fn syscount_says_what_is_wrong_with_its_arguments() {
    for (args, says) in [
        (&["-x"][..], "unknown argument `-x`"),
        (&["-d"][..], "-d needs a value"),
        (&["-d", "0"][..], "positive number of seconds"),
        (&["-p", "abc"][..], "`abc` is not a valid value"),
    ] {
        let out = Command::new(EXE).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}
