//! The tracing tools run without privilege: a clear error that names
//! what is missing, exit status 1, no panic.

use std::process::Command;

#[test]
fn the_tools_without_privilege_say_what_they_need() {
    if !examples::require_bpf("the_tools_without_privilege_say_what_they_need") {
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "setpriv (util-linux) is missing under CI"
        );
        eprintln!("skipped: no setpriv to drop privilege with");
        return;
    }
    let libc_getpid = "/lib/x86_64-linux-gnu/libc.so.6:getpid";
    for (exe, args) in [
        (env!("CARGO_BIN_EXE_syscount"), &[][..]),
        (env!("CARGO_BIN_EXE_opensnoop"), &[][..]),
        (env!("CARGO_BIN_EXE_funclatency"), &["do_nanosleep"][..]),
        (env!("CARGO_BIN_EXE_funclatency"), &[libc_getpid][..]),
    ] {
        // nobody, without capabilities.
        let out = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(exe)
            .args(args)
            .current_dir("/")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{exe} {args:?}: {err}");
        assert!(err.contains("(needs CAP_"), "{exe} {args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(out.stdout.is_empty(), "nothing printed as if tracing");
    }
}
