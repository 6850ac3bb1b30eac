//! Running a test in a virtual machine with another kernel, for kernel
//! features the host's kernel refuses (freplace, LSM and fentry programs
//! on the development and CI machines), in the manner of libbpf's
//! vmtest.
//!
//! [`Vm::find`] picks a kernel image (`$TESTBED_VM_KERNEL`, or the newest
//! `/boot/vmlinuz-*` that is not the running kernel) and
//! `qemu-system-x86_64`. [`Vm::run`] boots it with a fresh initramfs
//! holding the executable, the shared libraries it needs, busybox (the
//! init script and a shell), iproute2's `ip`, the kernel modules the
//! tests need (veth, tun), and any files the caller names, runs the
//! command as root, and returns the console output and exit status. The
//! VM has no network card and no disk: the initramfs is all there is.
//!
//! The usual way in is [`run_here_or_in_vm`], at the top of a test:
//!
//! ```no_run
//! # fn host_kernel_allows_freplace() -> bool { false }
//! #[test]
//! fn an_extension_replaces_a_global_function() {
//!     if !testbed::vm::run_here_or_in_vm(
//!         "freplace programs",
//!         host_kernel_allows_freplace(),
//!         "an_extension_replaces_a_global_function",
//!     ) {
//!         return; // it ran (and passed) in the VM, or was skipped
//!     }
//!     // the test body, on a kernel that has the feature
//! }
//! ```
//!
//! Without KVM, qemu emulates the CPU (TCG): Debian's kernel boots and
//! runs a small command in about 2.5 seconds (more on a busy machine),
//! and code runs several times slower than on the host. `TESTBED_VM_ACCEL=kvm` asks for KVM where it works (on the
//! development machines `/dev/kvm` exists but a guest hangs at boot).

mod cpio;
mod initramfs;
mod kernel;

use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use initramfs::Tree;

use crate::{Error, Result};

/// Set (to `1`) in the environment of every command a VM runs.
pub const IN_VM_ENV: &str = "TESTBED_IN_VM";
/// The kernel image to boot, instead of the newest one in `/boot`.
pub const KERNEL_ENV: &str = "TESTBED_VM_KERNEL";
/// qemu's accelerator: `tcg` (emulation, the default) or `kvm`.
pub const ACCEL_ENV: &str = "TESTBED_VM_ACCEL";

/// The qemu binary.
const QEMU: &str = "qemu-system-x86_64";
/// Modules every VM loads: veth pairs and tun devices for the network
/// tests (with what they depend on).
const DEFAULT_MODULES: &[&str] = &["veth", "tun"];
/// Guest memory; the initramfs (executables included) lives in it.
const MEMORY: &str = "1G";
/// How long a run may take by default, boot included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// The init script, without its `#!` line (busybox's path comes first).
const INIT: &str = include_str!("init.sh");
/// Where the init script finds the modules to load and the run script.
const MODULE_LIST: &str = "/etc/testbed/modules";
const RUN_SCRIPT: &str = "/etc/testbed/run";

/// Tells apart the initramfs files of one process's runs.
static RUNS: AtomicU32 = AtomicU32::new(0);

/// Whether this process runs inside a testbed VM.
pub fn in_vm() -> bool {
    std::env::var_os(IN_VM_ENV).is_some()
}

/// A kernel and qemu to run commands in; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Vm {
    kernel: PathBuf,
    /// What qemu boots: the kernel unpacked, or the image itself.
    boot_image: PathBuf,
    release: String,
    qemu: PathBuf,
    busybox: PathBuf,
    ip: PathBuf,
    accel: String,
    modules: Vec<String>,
    files: Vec<(PathBuf, String)>,
    timeout: Duration,
}

/// What a run in a [`Vm`] gave.
#[derive(Debug, Clone)]
pub struct VmOutput {
    /// Everything on the serial console (firmware, kernel, init and the
    /// command), with `\r` removed.
    pub console: String,
    /// The command's exit status (128 + the signal number if a signal
    /// ended it), or `None` if it did not finish: the VM timed out,
    /// panicked or the init script failed.
    pub status: Option<i32>,
    /// Whether the run was stopped at the timeout.
    pub timed_out: bool,
    /// From starting qemu to the command starting, if it did.
    pub boot: Option<Duration>,
    /// From starting qemu to qemu's exit.
    pub elapsed: Duration,
    /// The command's part of `console`.
    output: std::ops::Range<usize>,
}

impl VmOutput {
    /// What the command printed (stdout and stderr, interleaved as on a
    /// terminal), with kernel messages printed meanwhile.
    pub fn output(&self) -> &str {
        &self.console[self.output.clone()]
    }

    /// Whether the command ran and exited with status 0.
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }

    /// Whether the command was a Rust test binary that ran exactly one
    /// test, which passed. (A test filter that matches nothing also
    /// exits with 0.)
    pub fn passed_one_test(&self) -> bool {
        self.success()
            && self
                .output()
                .contains("test result: ok. 1 passed; 0 failed")
    }

    /// Reads the output of a run whose markers carry `nonce`.
    fn parse(
        console: String,
        nonce: &str,
        timed_out: bool,
        boot: Option<Duration>,
        elapsed: Duration,
    ) -> VmOutput {
        let start_marker = format!("{}\n", start_marker(nonce));
        let exit_marker = exit_marker(nonce);
        let start = console
            .find(&start_marker)
            .map_or(console.len(), |i| i + start_marker.len());
        let end = console[start..]
            .rfind(&exit_marker)
            .map_or(console.len(), |i| start + i);
        let status = console[end..]
            .strip_prefix(&exit_marker)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|digits| digits.parse().ok());
        VmOutput {
            status,
            timed_out,
            boot,
            elapsed,
            output: start..end,
            console,
        }
    }
}

impl Vm {
    /// A kernel and qemu to run tests in, or `None` after printing why
    /// `why` is skipped; with `CI` set, a missing piece is a failure (this
    /// panics), as with [`crate::privileged`]. Inside a VM there is no
    /// VM to start: `None` (even under CI).
    pub fn find(why: &str) -> Option<Vm> {
        if in_vm() {
            eprintln!("skipping: {why}: already inside a testbed VM");
            return None;
        }
        match Vm::locate() {
            Ok(vm) => Some(vm),
            Err(reason) => {
                crate::skip(&format!("{why}: {reason}"));
                None
            }
        }
    }

    /// A kernel and qemu to run tests in, or why there are none.
    pub fn locate() -> Result<Vm, String> {
        let kernel = kernel::find()?;
        let release = kernel::release(&kernel)
            .map_err(|e| format!("cannot read the kernel image {}: {e}", kernel.display()))?;
        let tool = |name: &str, package: &str| {
            which(name).ok_or_else(|| format!("no {name} command (Debian package {package})"))
        };
        Ok(Vm {
            qemu: tool(QEMU, "qemu-system-x86")?,
            busybox: tool("busybox", "busybox-static")?,
            ip: tool("ip", "iproute2")?,
            boot_image: kernel::unpacked(&kernel, &cache_dir()).unwrap_or_else(|| kernel.clone()),
            kernel,
            release,
            accel: std::env::var(ACCEL_ENV).unwrap_or_else(|_| "tcg".to_string()),
            modules: DEFAULT_MODULES.iter().map(|m| m.to_string()).collect(),
            files: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Also loads the kernel modules `names` (and what they depend on)
    /// at boot, e.g. `sch_ingress` and `cls_bpf` for tc tests.
    pub fn modules(mut self, names: &[&str]) -> Vm {
        self.modules.extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// Puts the host file or directory `host` at `guest` in every run
    /// (see [`Vm::run`]).
    pub fn file(mut self, host: &Path, guest: &str) -> Vm {
        self.files.push((host.to_path_buf(), guest.to_string()));
        self
    }

    /// Stops a run after `timeout` (boot included; 300 s by default).
    pub fn timeout(mut self, timeout: Duration) -> Vm {
        self.timeout = timeout;
        self
    }

    /// The kernel image this VM boots.
    pub fn kernel(&self) -> &Path {
        &self.kernel
    }

    /// The release (`uname -r`) of that kernel.
    pub fn release(&self) -> &str {
        &self.release
    }

    /// Boots the VM, runs `exe args...` in it as root and returns what
    /// happened. `exe` lands at its host path, with the shared libraries
    /// it needs; each `(host, guest)` of `files` (and of [`Vm::file`])
    /// puts a host file or directory at `guest`, executables with their
    /// libraries. The command runs in a directory of the host's current
    /// directory's name (empty) with `TESTBED_IN_VM=1`, and `CI` and
    /// `RUST_BACKTRACE` as the caller has them; proc, sysfs, devtmpfs,
    /// bpffs (`/sys/fs/bpf`), tracefs and tmpfs on `/tmp` and `/run`
    /// (with what the initramfs put there copied in) are mounted and `lo`
    /// is up.
    ///
    /// A command that fails or never finishes is no error: see
    /// [`VmOutput::status`]. Errors are about preparing and starting the VM.
    pub fn run(&self, exe: &Path, args: &[&str], files: &[(&Path, &str)]) -> Result<VmOutput> {
        let nonce = format!("{:016x}", u64::from_ne_bytes(crate::random::bytes()?));
        let tree = self.initramfs(exe, args, files, &nonce)?;
        let archive = TempFile(std::env::temp_dir().join(format!(
            "testbed-vm-{}-{}-{nonce}.cpio",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        )));
        let out = fs::File::create(&archive.0)
            .map_err(|e| Error::io(format!("cannot create {}", archive.0.display()), e))?;
        tree.write(BufWriter::new(out))?;
        self.boot(&archive.0, &nonce)
    }

    /// Runs the test `test_name` of the current test executable in the VM
    /// (`--exact test_name --test-threads=1 --nocapture`), with the files
    /// of [`Vm::file`]. [`VmOutput::passed_one_test`] tells whether it
    /// passed.
    pub fn run_test(&self, test_name: &str) -> Result<VmOutput> {
        let exe = std::env::current_exe()
            .map_err(|e| Error::io("cannot find the current executable", e))?;
        self.run(
            &exe,
            &["--exact", test_name, "--test-threads=1", "--nocapture"],
            &[],
        )
    }

    /// The initramfs of one run.
    fn initramfs(
        &self,
        exe: &Path,
        args: &[&str],
        files: &[(&Path, &str)],
        nonce: &str,
    ) -> Result<Tree> {
        let mut t = Tree::new();
        // The host's merged-/usr links first, so what comes later through
        // /bin or /lib lands under /usr as on the host.
        for dir in ["/bin", "/sbin", "/lib", "/lib64"] {
            if let Ok(target) = fs::read_link(dir) {
                t.symlink(dir, &target.to_string_lossy())?;
            }
        }
        for dir in [
            "/proc",
            "/sys",
            "/dev",
            "/tmp",
            "/run",
            "/root",
            "/etc/testbed",
        ] {
            t.dir(dir)?;
        }
        t.symlink("/var/run", "/run")?;
        // The kernel opens it as init's stdin, stdout and stderr before
        // init mounts devtmpfs.
        t.char_dev("/dev/console", 5, 1)?;
        t.mirror(&self.busybox)?;
        t.mirror(&self.ip)?;
        // The host's /bin/sh (dash on Debian) for the commands' scripts:
        // busybox's own sh runs its applets before anything on PATH, so
        // `ip` in a script would be busybox's, not iproute2's.
        if Path::new("/bin/sh").exists() {
            t.mirror(Path::new("/bin/sh"))?;
        }
        t.mirror(exe)?;
        for (host, guest) in self
            .files
            .iter()
            .map(|(h, g)| (h.as_path(), g.as_str()))
            .chain(files.iter().copied())
        {
            t.copy(host, guest)?;
        }
        // busybox's applets where nothing else is (`ip` stays iproute2's).
        let busybox = self.busybox.to_string_lossy();
        let applets = crate::cmd::run(&busybox, &["--list-full"], None, None)?;
        for applet in applets.lines().filter(|a| !a.is_empty()) {
            let path = format!("/{applet}");
            if !t.contains(&path) {
                t.symlink(&path, &busybox)?;
            }
        }
        let modules = t.modules(&self.release, &self.modules)?;
        let mut list = modules.join("\n");
        list.push('\n');
        t.data(MODULE_LIST, list.into_bytes(), 0o644)?;
        // Run by busybox's sh itself, whatever /bin/sh is.
        let init = format!("#!{busybox} sh\n{INIT}");
        t.data("/init", init.into_bytes(), 0o755)?;
        t.data(RUN_SCRIPT, run_script(exe, args, nonce).into_bytes(), 0o644)?;
        Ok(t)
    }

    /// Boots with `initramfs` and collects the console until qemu exits
    /// or the timeout.
    fn boot(&self, initramfs: &Path, nonce: &str) -> Result<VmOutput> {
        let mut cmd = Command::new(&self.qemu);
        cmd.args(["-accel", &self.accel]);
        if self.accel == "kvm" {
            cmd.args(["-cpu", "host"]);
        }
        cmd.args([
            "-m",
            MEMORY,
            "-smp",
            "1",
            "-nographic",
            "-no-reboot",
            "-nic",
            "none",
        ])
        .arg("-kernel")
        .arg(&self.boot_image)
        .arg("-initrd")
        .arg(initramfs)
        .args(["-append", "console=ttyS0 panic=-1 quiet"]);
        let command = format!("{cmd:?}");
        let (mut reader, writer) =
            std::io::pipe().map_err(|e| Error::io("cannot make a pipe", e))?;
        let writer2 = writer
            .try_clone()
            .map_err(|e| Error::io("cannot make a pipe", e))?;
        cmd.stdin(Stdio::null()).stdout(writer).stderr(writer2);
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .map_err(|e| Error::io(format!("cannot run {command}"), e))?;
        // Our copies of the pipe's write end must go, or reading never ends.
        drop(cmd);
        let start_marker = start_marker(nonce).into_bytes();
        let collector = std::thread::spawn(move || {
            let mut console = Vec::new();
            let mut boot = None;
            let mut buf = [0u8; 65536];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                console.extend_from_slice(&buf[..n]);
                if boot.is_none() {
                    let from = console.len().saturating_sub(n + start_marker.len());
                    if console[from..]
                        .windows(start_marker.len())
                        .any(|w| w == start_marker)
                    {
                        boot = Some(started.elapsed());
                    }
                }
            }
            (console, boot)
        });
        let mut timed_out = false;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if started.elapsed() > self.timeout => {
                    timed_out = true;
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(Error::io(format!("cannot wait for {command}"), e)),
            }
        }
        let elapsed = started.elapsed();
        let (console, boot) = collector.join().expect("the console reader panicked");
        let console = String::from_utf8_lossy(&console).replace('\r', "");
        Ok(VmOutput::parse(console, nonce, timed_out, boot, elapsed))
    }
}

/// A test that needs `feature` of the kernel: whether to run its body
/// here.
///
/// When `host_has_it`, or inside a VM already, `true`: the body runs here
/// (in the VM, a missing feature makes the body fail, as it should).
/// Otherwise the test `test_name` (its full path in the test binary, as
/// `cargo test` lists it) of the current test executable runs in a
/// [`Vm`], this panics unless it passed, and the answer is `false`: the
/// caller returns. Without a VM (no qemu or kernel image) the test is
/// skipped as [`Vm::find`] says (a failure under CI).
pub fn run_here_or_in_vm(feature: &str, host_has_it: bool, test_name: &str) -> bool {
    run_here_or_in_vm_with(feature, host_has_it, test_name, |vm| vm)
}

/// [`run_here_or_in_vm`] with a VM set up by `setup`: more modules, files,
/// a longer timeout.
pub fn run_here_or_in_vm_with(
    feature: &str,
    host_has_it: bool,
    test_name: &str,
    setup: impl FnOnce(Vm) -> Vm,
) -> bool {
    if host_has_it || in_vm() {
        return true;
    }
    check_test_name(test_name);
    let why = format!("{test_name} needs {feature}, which this kernel lacks");
    let Some(vm) = Vm::find(&why) else {
        return false;
    };
    let vm = setup(vm);
    println!("{why}: running it in a VM with kernel {}", vm.release());
    let out = vm
        .run_test(test_name)
        .unwrap_or_else(|e| panic!("cannot run {test_name} in a VM: {e}"));
    assert!(
        out.passed_one_test(),
        "{test_name} failed in the VM (kernel {}, status {:?}{}); its console:\n{}",
        vm.release(),
        out.status,
        if out.timed_out { ", timed out" } else { "" },
        out.console
    );
    println!(
        "{}\n{test_name} passed in the VM (boot {:.1?}, all {:.1?})",
        out.output(),
        out.boot.unwrap_or_default(),
        out.elapsed
    );
    false
}

/// libtest names a test's thread after the test: a `test_name` that is
/// not this thread's name would run some other test, or none, in the VM.
fn check_test_name(test_name: &str) {
    let thread = std::thread::current();
    if let Some(name) = thread.name()
        && name != "main"
        && name != test_name
    {
        panic!("run_here_or_in_vm got the test name {test_name:?}, but this test is {name:?}");
    }
}

/// The line the run script prints before the command.
fn start_marker(nonce: &str) -> String {
    format!("testbed-vm-start:{nonce}")
}

/// What the run script prints after the command, before its status.
fn exit_marker(nonce: &str) -> String {
    format!("testbed-vm-exit:{nonce}:")
}

/// The shell script that runs the command, between the markers.
fn run_script(exe: &Path, args: &[&str], nonce: &str) -> String {
    let mut s = String::new();
    writeln!(s, "export {IN_VM_ENV}=1").unwrap();
    for var in ["CI", "RUST_BACKTRACE"] {
        if let Some(value) = std::env::var_os(var) {
            writeln!(s, "export {var}={}", quote(&value.to_string_lossy())).unwrap();
        }
    }
    if let Ok(dir) = std::env::current_dir() {
        let dir = quote(&dir.to_string_lossy());
        writeln!(s, "mkdir -p {dir} && cd {dir}").unwrap();
    }
    writeln!(s, "echo {}", start_marker(nonce)).unwrap();
    let mut line = quote(&exe.to_string_lossy());
    for arg in args {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    writeln!(s, "{line}").unwrap();
    // After a newline, in case the command's output did not end with one.
    writeln!(s, "status=$?; echo; echo \"{}$status\"", exit_marker(nonce)).unwrap();
    s
}

/// `s` as one word for sh.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `name`'s path: on `PATH`, or in the sbin directories a non-root `PATH`
/// lacks.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Where runs keep what they share: `testbed-vm` next to the test
/// executable's `deps` directory (in the cargo target directory), or in
/// the temporary directory.
fn cache_dir() -> PathBuf {
    let exe = std::env::current_exe().ok();
    let profile = exe
        .as_deref()
        .and_then(Path::parent)
        .filter(|dir| dir.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent);
    match profile {
        Some(dir) => dir.join("testbed-vm"),
        None => std::env::temp_dir().join("testbed-vm"),
    }
}

/// A file removed on drop.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_and_status_come_from_between_the_markers() {
        let console = "SeaBIOS\n[ 1.0] kernel\ntestbed-vm-start:ab\nrunning 1 test\ntest result: ok. 1 passed; 0 failed; 0 ignored\n\ntestbed-vm-exit:ab:0\n[ 2.0] reboot: Power down\n";
        let out = VmOutput::parse(console.to_string(), "ab", false, None, Duration::ZERO);
        assert_eq!(out.status, Some(0));
        assert_eq!(
            out.output(),
            "running 1 test\ntest result: ok. 1 passed; 0 failed; 0 ignored\n\n"
        );
        assert!(out.passed_one_test());
        // A filter that matched no test exits with 0 too.
        let none = console.replace("ok. 1 passed", "ok. 0 passed");
        let out = VmOutput::parse(none, "ab", false, None, Duration::ZERO);
        assert!(out.success() && !out.passed_one_test());
        // A marker of another run (or printed by the command) is no exit.
        let out = VmOutput::parse(
            console.replace("exit:ab", "exit:cd"),
            "ab",
            false,
            None,
            Duration::ZERO,
        );
        assert_eq!(out.status, None);
        // No start marker: no output, no status.
        let out = VmOutput::parse(
            "[ 1.0] Kernel panic\n".to_string(),
            "ab",
            true,
            None,
            Duration::ZERO,
        );
        assert_eq!((out.status, out.output()), (None, ""));
    }

    #[test]
    fn the_test_name_is_checked_against_the_thread() {
        check_test_name("vm::tests::the_test_name_is_checked_against_the_thread");
        let wrong = std::panic::catch_unwind(|| check_test_name("the_test_name_is_checked"));
        assert!(wrong.is_err());
    }

    #[test]
    fn the_run_script_quotes_its_words() {
        let s = run_script(Path::new("/t/x y"), &["it's", "--exact"], "n1");
        assert!(
            s.contains("\necho testbed-vm-start:n1\n'/t/x y' 'it'\\''s' '--exact'\n"),
            "{s}"
        );
        assert!(s.starts_with("export TESTBED_IN_VM=1\n"), "{s}");
    }
}
