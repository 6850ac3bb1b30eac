//! funclatency's histogram counts exactly the calls this test makes: of
//! libc's getpid through uprobes here (in-process and as a command
//! stopped with Ctrl-C), of the kernel's do_nanosleep through fentry/fexit
//! and kprobes in the VM. Unknown functions and kernels without kprobes
//! or trampolines get errors that say so.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Tool, assert_gone, getpid_times, new_prog_ids, prog_ids, serial};
use examples::require_bpf;
use examples::tools::funclatency::{self, Funclatency, Method, Options, Target, Unit};

const EXE: &str = env!("CARGO_BIN_EXE_funclatency");

/// The C library this process maps (from `/proc/self/maps`).
fn libc() -> PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let path = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("/libc.so"))
        .expect("this process maps libc");
    PathBuf::from(path)
}

/// The counts of a printed bcc histogram, by the low end of each row.
fn table_counts(lines: &[String]) -> Vec<(u64, u64)> {
    lines
        .iter()
        .filter(|l| l.contains(" -> ") && l.contains('|'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // LOW -> HIGH : COUNT |STARS|
            (f[0].parse().unwrap(), f[4].parse().unwrap())
        })
        .collect()
}

#[test]
fn funclatency_counts_each_getpid_call_through_uprobes() {
    if !require_bpf("funclatency_counts_each_getpid_call_through_uprobes") {
        return;
    }
    let _serial = serial();
    let mut opts = Options::new(Target::User {
        path: libc(),
        symbol: "getpid".into(),
    });
    opts.pid = Some(std::process::id());
    let tool = Funclatency::start(&opts).unwrap();
    assert_eq!(tool.method(), Method::Uprobe);
    const N: u64 = 300;
    getpid_times(N);
    let h = tool.histogram().unwrap();
    assert_eq!(h.slots.iter().sum::<u64>(), N, "{h:?}");
    assert_eq!(h.count, N);
    assert_eq!(
        h.slots[0], 0,
        "slot 0 holds nothing (bcc's table starts at 1)"
    );
    // A getpid takes more than a nanosecond and less than a second.
    assert!(h.total_ns >= N && h.total_ns < N * 1_000_000_000, "{h:?}");
}

#[test]
fn funclatency_command_prints_a_bcc_histogram_of_getpid_after_ctrl_c_and_leaves_nothing() {
    if !require_bpf(
        "funclatency_command_prints_a_bcc_histogram_of_getpid_after_ctrl_c_and_leaves_nothing",
    ) {
        return;
    }
    let _serial = serial();
    let before = prog_ids(funclatency::PROGRAM_PREFIX);
    let target = format!("{}:getpid", libc().display());
    let me = std::process::id().to_string();
    let mut tool = Tool::spawn(EXE, &["-p", &me, "-u", &target]);
    let start = format!("Tracing 1 functions for \"{target}\"... Hit Ctrl-C to end.");
    assert!(
        tool.wait_for(Duration::from_secs(30), |l| l == start),
        "no start line: {:?}",
        tool.seen
    );
    let ids = new_prog_ids(funclatency::PROGRAM_PREFIX, &before);
    if let Some(ids) = &ids {
        assert_eq!(ids.len(), 2, "entry and return programs while it runs");
    }
    const N: u64 = 250;
    getpid_times(N);
    let (status, lines) = tool.interrupt();
    assert!(status.success(), "{status:?}: {lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l == "     usecs               : count     distribution"),
        "{lines:?}"
    );
    let rows = table_counts(&lines);
    assert_eq!(rows.first().map(|r| r.0), Some(0), "from 0 -> 1: {lines:?}");
    assert_eq!(rows.iter().map(|r| r.1).sum::<u64>(), N, "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("avg = ") && l.ends_with(&format!(" count: {N}"))),
        "{lines:?}"
    );
    assert_eq!(lines.last().map(String::as_str), Some("Detaching..."));
    assert_gone(&ids.unwrap_or_default());
}

#[test]
fn funclatency_times_a_kernel_function_with_fentry_and_kprobes_here_or_in_vm() {
    if !require_bpf("funclatency_times_a_kernel_function_with_fentry_and_kprobes_here_or_in_vm")
        || !testbed::vm::run_here_or_in_vm(
            "fentry/fexit or kprobes",
            testbed::features::fentry() && testbed::features::kprobes(),
            "funclatency_times_a_kernel_function_with_fentry_and_kprobes_here_or_in_vm",
        )
    {
        return;
    }
    for (kprobe, method) in [(false, Method::Fentry), (true, Method::Kprobe)] {
        let mut opts = Options::new(Target::Kernel("do_nanosleep".into()));
        opts.pid = Some(std::process::id());
        opts.kprobe = kprobe;
        opts.unit = Unit::Usecs;
        let tool = Funclatency::start(&opts).unwrap();
        assert_eq!(tool.method(), method);
        const N: u64 = 20;
        for _ in 0..N {
            std::thread::sleep(Duration::from_millis(2));
        }
        let h = tool.histogram().unwrap();
        assert_eq!(h.count, N, "{method:?}: {h:?}");
        assert_eq!(h.slots.iter().sum::<u64>(), N, "{method:?}: {h:?}");
        // Each sleep lasts at least 2 ms: 2000 us and up, slot 11 or later.
        assert_eq!(h.slots[..11].iter().sum::<u64>(), 0, "{method:?}: {h:?}");
        let mut text = Vec::new();
        funclatency::print(&mut text, &h).unwrap();
        let text = String::from_utf8(text).unwrap();
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        assert_eq!(table_counts(&lines).iter().map(|r| r.1).sum::<u64>(), N);
    }
    let e = Funclatency::start(&Options::new(Target::Kernel(
        "no_such_kernel_function".into(),
    )))
    .unwrap_err();
    assert!(e.to_string().contains("no_such_kernel_function"), "{e}");
}

#[test]
fn funclatency_names_what_it_cannot_trace() {
    if !require_bpf("funclatency_names_what_it_cannot_trace") {
        return;
    }
    for (target, says) in [
        (
            Target::Kernel("no_such_kernel_function".into()),
            "no function `no_such_kernel_function`",
        ),
        (
            Target::User {
                path: "/no/such/file".into(),
                symbol: "f".into(),
            },
            "/no/such/file",
        ),
        (
            Target::User {
                path: libc(),
                symbol: "no_such_symbol".into(),
            },
            "no symbol `no_such_symbol`",
        ),
    ] {
        let e = Funclatency::start(&Options::new(target.clone())).unwrap_err();
        assert!(e.to_string().contains(says), "{target}: {e}");
    }
    if !testbed::features::fentry() && !testbed::features::kprobes() {
        let e =
            Funclatency::start(&Options::new(Target::Kernel("do_nanosleep".into()))).unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("neither BPF trampolines") && e.contains("nor kprobes"),
            "{e}"
        );
    }
}

#[test]
fn funclatency_says_what_is_wrong_with_its_arguments() {
    for (args, says) in [
        (&[][..], "no function given"),
        (&["a", "b"][..], "one function only"),
        (&["-q", "f"][..], "unknown option `-q`"),
        (&["/bin/true:"][..], "no symbol after the `:`"),
    ] {
        let out = std::process::Command::new(EXE).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// bcc's own `print_log2_hist` (Debian's python3-bpfcc) prints `slots`.
fn bcc_table(slots: &[u64], label: &str) -> Option<String> {
    let vals: Vec<String> = slots.iter().map(u64::to_string).collect();
    let script = format!(
        "from bcc.table import _print_log2_hist\n_print_log2_hist([{}], '{label}', None)\n",
        vals.join(",")
    );
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", &script])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap())
}

#[test]
fn funclatency_prints_the_histogram_as_bcc_does() {
    let mut cases: Vec<(Vec<u64>, Unit)> = Vec::new();
    let mut s = vec![0u64; funclatency::SLOTS];
    s[1] = 3;
    s[5] = 124;
    s[6] = 291;
    s[7] = 1;
    s[12] = 2;
    cases.push((s, Unit::Nsecs));
    let mut s = vec![0u64; funclatency::SLOTS];
    s[3] = 7;
    s[40] = 5;
    cases.push((s, Unit::Usecs));
    let mut s = vec![0u64; funclatency::SLOTS];
    s[64] = 1;
    s[1] = 1_000_000;
    cases.push((s, Unit::Msecs));
    cases.push((vec![0u64; funclatency::SLOTS], Unit::Nsecs));
    for (slots, unit) in cases {
        let Some(expected) = bcc_table(&slots, unit.label()) else {
            assert!(
                std::env::var_os("CI").is_none(),
                "bcc's python module (python3-bpfcc) is missing under CI"
            );
            eprintln!("skipped: no bcc python module (python3-bpfcc) to compare with");
            return;
        };
        let h = funclatency::Histogram {
            slots,
            unit,
            total_ns: 0,
            count: 0,
        };
        let mut ours = Vec::new();
        funclatency::print(&mut ours, &h).unwrap();
        assert_eq!(String::from_utf8(ours).unwrap(), expected);
    }
}
