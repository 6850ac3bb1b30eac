//! The VM runner against a real qemu and kernel image (see `testbed::vm`;
//! skipped without them, a failure under CI).

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use testbed::vm::{self, Vm};
use testbed::{Marker, Netns, send_and_collect, udp4_frame};

/// A shell script runs in the VM: its output, its exit status, the
/// environment and files the caller put there (one under /tmp, which is
/// a tmpfs in the VM) come back.
#[test]
fn a_program_runs_in_the_vm_and_its_status_comes_back() {
    let Some(vm) = Vm::find("VM runner test") else {
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let script = dir.join("vm-hello.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\n\
         echo \"hello from $(uname -r), in-vm=$TESTBED_IN_VM, args=$#:$1|$2\"\n\
         cat /etc/greeting\n\
         grep -q ' /tmp tmpfs ' /proc/mounts && cat /tmp/from-host/greeting\n\
         ip -V\n\
         ip -o link show lo\n\
         test -d /sys/fs/bpf/ && grep -q ' /sys/fs/bpf bpf ' /proc/mounts && echo bpffs mounted\n\
         grep -q '^veth ' /proc/modules && echo veth loaded\n\
         exit 3\n",
    )
    .unwrap();
    let status = std::process::Command::new("chmod")
        .args(["755"])
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success());
    let greeting = dir.join("vm-greeting");
    std::fs::write(&greeting, "greetings from the host\n").unwrap();

    let out = vm
        .run(
            &script,
            &["one word", "it's"],
            &[
                (&greeting, "/etc/greeting"),
                (&greeting, "/tmp/from-host/greeting"),
            ],
        )
        .unwrap();
    println!(
        "boot {:?}, all {:?}; console:\n{}",
        out.boot, out.elapsed, out.console
    );
    assert_eq!(out.status, Some(3), "{}", out.console);
    assert!(!out.timed_out);
    let output = out.output();
    let release = vm.release();
    assert!(
        output.contains(&format!(
            "hello from {release}, in-vm=1, args=2:one word|it's\n"
        )),
        "{output}"
    );
    // Once from /etc, once from /tmp (copied onto its tmpfs).
    assert_eq!(
        output.matches("greetings from the host\n").count(),
        2,
        "{output}"
    );
    // iproute2's ip (not busybox's applet), and lo is up.
    assert!(output.contains("ip utility, iproute2-"), "{output}");
    assert!(output.contains("lo: <LOOPBACK,UP,LOWER_UP>"), "{output}");
    assert!(output.contains("bpffs mounted\n"), "{output}");
    assert!(output.contains("veth loaded\n"), "{output}");
}

/// The whole path of a test that needs what the host lacks: this test
/// says the host lacks "a VM" (true everywhere but in the VM), so it runs
/// itself in the VM, where it makes a namespace with a veth pair and
/// sends frames across.
#[test]
fn frames_cross_a_veth_pair_in_the_vm() {
    if !vm::run_here_or_in_vm("a VM", vm::in_vm(), "frames_cross_a_veth_pair_in_the_vm") {
        return;
    }
    assert!(vm::in_vm());
    if !testbed::privileged("veth traffic test in the VM") {
        return;
    }
    let ns = Netns::new().unwrap();
    let pair = ns.veth_pair("vma", "vmb").unwrap();
    let marker = Marker::new().unwrap();
    let frame = udp4_frame(
        pair.a.mac,
        pair.b.mac,
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(10, 0, 0, 2),
        1234,
        5678,
        marker.as_bytes(),
    )
    .unwrap();
    let got =
        send_and_collect(&pair.a, &pair.b, &[&frame], &marker, Duration::from_secs(5)).unwrap();
    assert_eq!(got, vec![frame]);
    println!(
        "a frame crossed {}-{} in {} on {}",
        pair.a.name,
        pair.b.name,
        ns.name(),
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap()
            .trim()
    );
}

/// Fails when run in the VM (and passes on the host): the test below
/// checks that such a failure comes back as one.
#[test]
fn fails_in_the_vm_on_purpose() {
    assert!(!vm::in_vm(), "this test fails in the VM on purpose");
}

/// A test that fails in the VM is reported as failed, with its message.
#[test]
fn a_failure_in_the_vm_comes_back() {
    let Some(vm) = Vm::find("VM runner test") else {
        return;
    };
    let out = vm.run_test("fails_in_the_vm_on_purpose").unwrap();
    assert_eq!(out.status, Some(101), "{}", out.console);
    assert!(!out.passed_one_test());
    assert!(
        out.output()
            .contains("this test fails in the VM on purpose"),
        "{}",
        out.output()
    );
}
