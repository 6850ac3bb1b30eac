//! Debian's `xdp-tools` (libxdp 1.3.1) as a reference: `xdp-loader` loads,
//! lists and unloads XDP programs through libxdp's multi-program
//! dispatcher, so tests of a dispatcher of our own can check that theirs
//! and ours share an interface.
//!
//! [`XdpTools`] drives `xdp-loader` on one interface of a test namespace;
//! [`XdpObjects`] compiles the C programs it loads ([`COUNTER_SOURCE`]
//! counts frames of EtherType 0x88b5). Dropping an [`XdpTools`] unloads
//! what is still attached and removes what libxdp left pinned for the
//! dispatchers it listed.
//!
//! ```no_run
//! # fn main() -> testbed::Result<()> {
//! use testbed::xdp_tools::{LoadOptions, Mode, XdpObjects, XdpTools};
//! if !XdpTools::available("xdp-tools example") { return Ok(()); }
//! let ns = testbed::Netns::new()?;
//! let pair = ns.veth_pair("va", "vb")?;
//! let objects = XdpObjects::new()?;
//! let first = objects.counter("xdp_first", 10)?;
//! let tools = XdpTools::new(&ns, &pair.a);
//! tools.load(&first, &LoadOptions { mode: Mode::Skb, ..Default::default() })?;
//! for entry in tools.status()? {
//!     println!("{} {} {:?}", entry.name, entry.id, entry.priority());
//! }
//! tools.unload_all()?;
//! # Ok(()) }
//! ```
//!
//! # How xdp-loader behaves (measured on Linux 6.18, xdp-tools 1.3.1)
//!
//! - It must run with the test's *network* namespace only: the commands
//!   run on a thread that entered it (as `nft` does in [`crate::nft`]).
//!   `ip netns exec` also remounts `/sys`, which hides bpffs: libxdp then
//!   says "No bpffs found at /sys/fs/bpf" and silently loads a lone
//!   program without its dispatcher.
//! - libxdp's state lives in the host's bpffs, shared by every namespace:
//!   `/sys/fs/bpf/xdp/dispatch-IFINDEX-DISPATCHERID/progN-{prog,link}`,
//!   under the lock `flock(/sys/fs/bpf/xdp, LOCK_EX)`. The interface index
//!   is the namespace's own, so two namespaces may both have an interface
//!   3; only the dispatcher's program id (unique on the host) tells their
//!   directories apart. `xdp-loader clean` removes every
//!   `dispatch-IFINDEX-*` whose id is not attached to IFINDEX *in the
//!   caller's namespace*, other namespaces' included: this module never
//!   runs it.
//! - When the kernel refuses freplace programs (libxdp's "compatibility
//!   check" loads one), libxdp loads a single program alone, as a plain XDP
//!   program ("legacy" mode): `status` lists it without a priority, and
//!   loading a second one fails with EBUSY ("Existing program is not using
//!   a dispatcher, can't replace; unload first"). Tests of libxdp's
//!   dispatcher run in a VM there ([`XdpObjects::vm_setup`]).
//! - `status` has no machine-readable form; [`parse_status`] reads its
//!   table. Exit status is libxdp's negative errno modulo 256 (240 for
//!   EBUSY, 254 for ENOENT), or 1.
//! - Only one xdp-loader runs at a time on the host: each run takes the
//!   lock file `/run/xdp-loader.lck` and fails at once if it is taken;
//!   [`XdpTools`] waits its turn.
//! - `unload --all` on an interface without a program fails ("No XDP
//!   program loaded on IFACE"), and so does `unload --id` of an id that is
//!   not attached there.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::cmd;
use crate::{Error, Link, Netns, Result};

/// The C source of a component program: counts frames of EtherType 0x88b5
/// in slot 0 of its array map `counts` and all others in slot 1, and
/// returns `XDP_PASS`. Its program name and run priority are set at
/// compile time (see [`XdpObjects::counter`]).
pub const COUNTER_SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/xdp/count_88b5.c");

/// Where libxdp keeps its pins (with the default `LIBXDP_BPFFS`).
pub const LIBXDP_DIR: &str = "/sys/fs/bpf/xdp";

/// Every xdp-loader run, whatever the command, takes the host-wide lock
/// file `/run/xdp-loader.lck` (created with `O_EXCL`, holding its pid) and
/// exits at once with one of these messages if another one holds it. Runs
/// of this process take turns on [`LOADER`]; those of other processes are
/// waited for, up to [`LOCK_PATIENCE`].
const PROG_LOCK_ERRORS: [&str; 2] = [
    "Unable to get program lock",
    "Unable to read PID from lockfile",
];

/// How long to wait for other processes' xdp-loader runs: far longer than
/// one takes (a few ms), short enough to report a lock file left by a
/// killed xdp-loader (which stays until removed by hand).
const LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// Taken around each xdp-loader run of this process.
static LOADER: Mutex<()> = Mutex::new(());

/// The name libxdp's dispatcher program has in listings.
pub const DISPATCHER_NAME: &str = "xdp_dispatcher";

/// `xdp-loader`, from /usr/sbin (where Debian puts it) or the `PATH`.
fn loader_program() -> &'static str {
    if Path::new("/usr/sbin/xdp-loader").exists() {
        "/usr/sbin/xdp-loader"
    } else {
        "xdp-loader"
    }
}

/// XDP attach mode (`xdp-loader load -m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// In the driver (`native`), xdp-loader's default; veth supports it.
    #[default]
    Native,
    /// Generic XDP (`skb`).
    Skb,
}

impl Mode {
    /// The word `xdp-loader` uses, on its command line and in `status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Skb => "skb",
        }
    }
}

/// Options of [`XdpTools::load`]; `Default` leaves everything to
/// xdp-loader (native mode, the object's first program, its own run
/// config).
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-m`.
    pub mode: Mode,
    /// `--prio`: overrides the object's run priority.
    pub priority: Option<u32>,
    /// `-n`: which program of the object (by function name).
    pub prog_name: Option<String>,
    /// `-s`: which program of the object (by ELF section).
    pub section: Option<String>,
    /// `-A`: chain call actions such as `["XDP_PASS", "XDP_DROP"]`,
    /// overriding the object's.
    pub chain_call_actions: Option<Vec<String>>,
    /// `-p`: where libbpf pins the object's maps that ask for pinning.
    pub pin_path: Option<PathBuf>,
}

/// One program line of `xdp-loader status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEntry {
    /// The interface it is listed under.
    pub interface: String,
    /// Program name (`xdp_dispatcher` for libxdp's dispatcher).
    pub name: String,
    /// Program id.
    pub id: u32,
    /// Program tag, 16 hex digits.
    pub tag: String,
    /// Attached to the interface, or a component of the dispatcher.
    pub role: Role,
}

/// Where a [`StatusEntry`] sits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Attached to the interface itself: libxdp's dispatcher, or a program
    /// alone (also one libxdp did not load).
    Attached {
        /// `native`, `skb` or `hw`.
        mode: String,
    },
    /// A component program of the dispatcher listed before it (`=>`
    /// lines), in run order.
    Component {
        /// Its run priority.
        priority: u32,
        /// Its chain call actions, e.g. `["XDP_PASS"]`.
        chain_call_actions: Vec<String>,
    },
}

impl StatusEntry {
    /// The run priority of a component, `None` for an attached program.
    pub fn priority(&self) -> Option<u32> {
        match self.role {
            Role::Component { priority, .. } => Some(priority),
            Role::Attached { .. } => None,
        }
    }

    /// Whether this is a component of a dispatcher.
    pub fn is_component(&self) -> bool {
        matches!(self.role, Role::Component { .. })
    }

    /// Whether this is libxdp's dispatcher attached to the interface.
    pub fn is_dispatcher(&self) -> bool {
        matches!(self.role, Role::Attached { .. }) && self.name == DISPATCHER_NAME
    }
}

/// Parses what `xdp-loader status [IFACE]` prints (xdp-tools 1.3.1,
/// `lib/util/util.c`): after the header and a line of dashes, for each
/// interface either `IFACE <No XDP program loaded!>` or a line
/// `IFACE NAME MODE ID TAG` for the attached program, followed by one line
/// ` => PRIO NAME ID TAG ACTIONS` per dispatcher component in run order.
pub fn parse_status(text: &str) -> Result<Vec<StatusEntry>, String> {
    let mut lines = text.lines();
    if !lines.any(|l| !l.is_empty() && l.bytes().all(|b| b == b'-')) {
        return Err("no line of dashes after the header".to_string());
    }
    let mut entries = Vec::new();
    let mut interface: Option<String> = None;
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let bad = |why: &str| format!("{why} in line {line:?}");
        let words: Vec<&str> = line.split_whitespace().collect();
        let id = |w: &str| w.parse::<u32>().map_err(|_| bad("bad program id"));
        if words[0] == "=>" {
            let iface = interface
                .clone()
                .ok_or_else(|| bad("component without a dispatcher"))?;
            let [priority, name, id_text, tag, rest @ ..] = &words[1..] else {
                return Err(bad("too few fields"));
            };
            let chain_call_actions = match rest {
                [] => Vec::new(),
                [actions] => actions.split(',').map(str::to_string).collect(),
                _ => return Err(bad("too many fields")),
            };
            entries.push(StatusEntry {
                interface: iface,
                name: name.to_string(),
                id: id(id_text)?,
                tag: tag.to_string(),
                role: Role::Component {
                    priority: priority.parse().map_err(|_| bad("bad priority"))?,
                    chain_call_actions,
                },
            });
        } else if words.get(1) == Some(&"<No") {
            interface = None;
        } else {
            let [iface, name, mode, id_text, tag] = words[..] else {
                return Err(bad("not 5 fields"));
            };
            interface = Some(iface.to_string());
            entries.push(StatusEntry {
                interface: iface.to_string(),
                name: name.to_string(),
                id: id(id_text)?,
                tag: tag.to_string(),
                role: Role::Attached {
                    mode: mode.to_string(),
                },
            });
        }
    }
    Ok(entries)
}

/// `xdp-loader` on one interface of a test namespace.
///
/// Dropping it (also while a test panics) runs `xdp-loader unload --all`
/// if a program is still attached, then removes the pin directories
/// `dispatch-IFINDEX-ID` left for the dispatchers that [`XdpTools::status`]
/// (Self::status) listed, and only those: other namespaces may have an
/// interface with the same index. Drop it before the namespace (it
/// borrows it, so it is).
#[derive(Debug)]
pub struct XdpTools<'a> {
    ns: &'a Netns,
    iface: String,
    ifindex: u32,
    /// Dispatcher ids seen attached here, whose pins drop removes.
    dispatchers: RefCell<BTreeSet<u32>>,
}

impl<'a> XdpTools<'a> {
    /// Whether xdp-tools tests can run here: the privileges of
    /// [`crate::privileged`] and [`crate::bpf_privileged`] and an
    /// `xdp-loader` that runs. When they cannot, fails under CI and
    /// otherwise prints why `what` is skipped (as [`crate::skip`] does) and
    /// returns `false`.
    pub fn available(what: &str) -> bool {
        if !crate::privileged(what) || !crate::bpf_privileged(what) {
            return false;
        }
        // `--version` prints the version and exits with status 1.
        let version = std::process::Command::new(loader_program())
            .args(["status", "--version"])
            .output();
        match version {
            Ok(out) if String::from_utf8_lossy(&out.stdout).starts_with("xdp-loader version") => {
                true
            }
            other => {
                crate::skip(&format!(
                    "{what} needs xdp-loader (Debian's xdp-tools): {other:?}"
                ));
                false
            }
        }
    }

    /// xdp-loader on `link`, an interface of `ns`.
    pub fn new(ns: &'a Netns, link: &Link) -> XdpTools<'a> {
        XdpTools {
            ns,
            iface: link.name.clone(),
            ifindex: link.ifindex,
            dispatchers: RefCell::new(BTreeSet::new()),
        }
    }

    /// `xdp-loader load [options] IFACE OBJECT`.
    pub fn load(&self, object: &Path, options: &LoadOptions) -> Result<()> {
        let object = path_str(object)?;
        let priority = options.priority.map(|p| p.to_string());
        let actions = options.chain_call_actions.as_ref().map(|a| a.join(","));
        let pin_path = options.pin_path.as_deref().map(path_str).transpose()?;
        let mut args = vec!["load", "-m", options.mode.as_str()];
        let optional = [
            ("--prio", priority.as_deref()),
            ("-n", options.prog_name.as_deref()),
            ("-s", options.section.as_deref()),
            ("-A", actions.as_deref()),
            ("-p", pin_path),
        ];
        for (flag, value) in optional {
            if let Some(value) = value {
                args.extend([flag, value]);
            }
        }
        args.extend([self.iface.as_str(), object]);
        self.loader(&args)?;
        // Learn the dispatcher's id now, so that drop finds its pins even
        // if the test never asks for the status.
        self.status()?;
        Ok(())
    }

    /// `xdp-loader status IFACE`, parsed: the attached program (if any),
    /// then the dispatcher's components in run order.
    pub fn status(&self) -> Result<Vec<StatusEntry>> {
        let out = self.loader(&["status", &self.iface])?;
        let entries = parse_status(&out).map_err(|detail| Error::Parse {
            command: format!("xdp-loader status {}", self.iface),
            detail,
        })?;
        let mut seen = self.dispatchers.borrow_mut();
        seen.extend(entries.iter().filter(|e| e.is_dispatcher()).map(|e| e.id));
        Ok(entries)
    }

    /// `xdp-loader unload IFACE --id ID`: removes one component (libxdp
    /// builds a new dispatcher without it), or the program attached alone.
    pub fn unload(&self, id: u32) -> Result<()> {
        // Listing first lets drop clean up after the dispatcher replaced.
        self.status()?;
        self.loader(&["unload", &self.iface, "--id", &id.to_string()])?;
        self.status()?;
        Ok(())
    }

    /// `xdp-loader unload IFACE --all`; an error when nothing is attached.
    pub fn unload_all(&self) -> Result<()> {
        self.status()?;
        self.loader(&["unload", &self.iface, "--all"])?;
        Ok(())
    }

    /// The interface's index in its namespace.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The pin directory libxdp uses for dispatcher `dispatcher_id` on
    /// this interface.
    pub fn pin_dir(&self, dispatcher_id: u32) -> PathBuf {
        Path::new(LIBXDP_DIR).join(format!("dispatch-{}-{dispatcher_id}", self.ifindex))
    }

    /// The pin directories that still exist of every dispatcher listed on
    /// this interface so far: empty once libxdp has cleaned up after them.
    pub fn leftover_pins(&self) -> Vec<PathBuf> {
        self.dispatchers
            .borrow()
            .iter()
            .map(|&id| self.pin_dir(id))
            .filter(|dir| dir.exists())
            .collect()
    }

    /// Runs xdp-loader in the namespace, one at a time (see [`LOADER`]).
    fn loader(&self, args: &[&str]) -> Result<String> {
        let _one_at_a_time = LOADER.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + LOCK_PATIENCE;
        loop {
            match self
                .ns
                .run(|| cmd::run(loader_program(), args, None, None))?
            {
                Err(Error::Command { stderr, .. })
                    if PROG_LOCK_ERRORS.iter().any(|m| stderr.contains(m))
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                result => return result,
            }
        }
    }
}

impl Drop for XdpTools<'_> {
    fn drop(&mut self) {
        match self.status() {
            Ok(entries) if entries.is_empty() => {}
            Ok(_) => {
                if let Err(e) = self.loader(&["unload", &self.iface, "--all"]) {
                    eprintln!("testbed: xdp-loader unload --all {}: {e}", self.iface);
                }
            }
            Err(e) => eprintln!("testbed: xdp-loader status {}: {e}", self.iface),
        }
        for dir in self.leftover_pins() {
            if let Err(e) = remove_pin_dir(&dir) {
                eprintln!("testbed: cannot remove {}: {e}", dir.display());
            }
        }
    }
}

/// Removes a `dispatch-*` directory and the pins in it, as libxdp's
/// `remove_pin_dir` does.
fn remove_pin_dir(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        std::fs::remove_file(entry?.path())?;
    }
    std::fs::remove_dir(dir)
}

/// A path as a `&str` for a command line.
fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| Error::Invalid(format!("path {} is not UTF-8", path.display())))
}

/// Takes every member off the XDP dispatcher of `iface` in `ns` (ours or
/// libxdp's; with the last one the dispatcher leaves the interface and
/// its pins bpffs), for a test's cleanup: a dispatcher's pins would keep
/// its programs alive past the namespace. Best effort: stops at the first
/// member that cannot leave.
pub fn empty_dispatcher(ns: &Netns, iface: &str) {
    use bpf_builder::attach::dispatcher::{self, Hook};
    let _ = ns.run(|| {
        while let Ok(Hook::Dispatcher(c)) = dispatcher::query(iface) {
            if dispatcher::leave(iface, c.members[0].id, None).is_err() {
                break;
            }
        }
    });
}

/// Where a test VM finds the objects the host compiled for it.
const VM_OBJECTS: &str = "/testbed-xdp-objects";

/// libxdp's own BPF objects (`xdp-dispatcher.o`), which xdp-loader loads.
const LIBXDP_OBJECTS: &str = "/usr/lib/x86_64-linux-gnu/bpf";

/// Tells build directories of one process apart.
static BUILD_COUNTER: AtomicU32 = AtomicU32::new(0);

/// A temporary directory of BPF objects compiled with clang
/// (`clang -O2 -g -target bpf`, so they carry the BTF libxdp reads),
/// removed on drop.
#[derive(Debug)]
pub struct XdpObjects {
    dir: PathBuf,
}

impl XdpObjects {
    /// Creates the directory (under the system's temporary directory).
    pub fn new() -> Result<XdpObjects> {
        if crate::vm::in_vm() {
            return Ok(XdpObjects {
                dir: PathBuf::from(VM_OBJECTS),
            });
        }
        let n = BUILD_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("testbed-xdp-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        Ok(XdpObjects { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Compiles `source` to `NAME.o` in the directory with `-D` for each
    /// of `defines` (`("NAME", "xdp_a")` is `-DNAME=xdp_a`); its path.
    pub fn compile(&self, source: &Path, name: &str, defines: &[(&str, &str)]) -> Result<PathBuf> {
        let out = self.dir.join(format!("{name}.o"));
        // Inside a test VM there is no clang: the host compiled the
        // objects beforehand (see [`XdpObjects::vm_setup`]).
        if crate::vm::in_vm() {
            return Ok(out);
        }
        let flags: Vec<String> = defines.iter().map(|(k, v)| format!("-D{k}={v}")).collect();
        let mut args = vec!["-O2", "-g", "-target", "bpf", "-c"];
        args.extend(flags.iter().map(String::as_str));
        args.extend([path_str(source)?, "-o", path_str(&out)?]);
        cmd::run("clang", &args, None, None)?;
        Ok(out)
    }

    /// [`COUNTER_SOURCE`] compiled with program name `prog_name` (also the
    /// file's name) and run priority `priority` in its run config.
    pub fn counter(&self, prog_name: &str, priority: u32) -> Result<PathBuf> {
        let priority = priority.to_string();
        self.compile(
            Path::new(COUNTER_SOURCE),
            prog_name,
            &[("NAME", prog_name), ("PRIORITY", &priority)],
        )
    }
}

impl XdpObjects {
    /// `vm` set up to run xdp-loader on these objects: the tool (with its
    /// libraries), libxdp's own objects (its dispatcher), and these
    /// objects where [`XdpObjects`] finds them inside the VM. Compile
    /// every object the test needs before it goes to the VM.
    pub fn vm_setup(&self, vm: crate::vm::Vm) -> crate::vm::Vm {
        vm.file(Path::new(loader_program()), loader_program())
            .file(Path::new(LIBXDP_OBJECTS), LIBXDP_OBJECTS)
            .file(&self.dir, VM_OBJECTS)
    }
}

impl Drop for XdpObjects {
    fn drop(&mut self) {
        if crate::vm::in_vm() {
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("testbed: cannot remove {}: {e}", self.dir.display());
        }
    }
}

/// The two counters of a [`COUNTER_SOURCE`] program with id `prog_id`
/// (as `status` lists it): frames of EtherType 0x88b5, and all others.
/// Read from the program's only map (an array of two `u64`).
pub fn counts(prog_id: u32) -> Result<[u64; 2]> {
    use bpf_builder::handle::{Map, Program};
    use bpf_builder::kernel_id::KernelProgId;
    use bpf_builder::sys::bpf as sys;
    let io = |what: String| move |e| Error::io(what, e);
    let prog = sys::prog_get_fd_by_id(KernelProgId::new(prog_id))
        .and_then(Program::from_fd)
        .map_err(io(format!("cannot open program {prog_id}")))?;
    let info = prog
        .info()
        .map_err(io(format!("cannot read program {prog_id}")))?;
    let [map_id] = info.map_ids[..] else {
        return Err(Error::Invalid(format!(
            "program {prog_id} has {} maps, not the counter's one",
            info.map_ids.len()
        )));
    };
    let map = sys::map_get_fd_by_id(map_id)
        .and_then(Map::from_fd)
        .map_err(io(format!("cannot open map {map_id}")))?;
    let mut counts = [0u64; 2];
    for (key, count) in counts.iter_mut().enumerate() {
        let value = map
            .lookup(&(key as u32).to_ne_bytes())
            .map_err(|e| Error::Invalid(format!("map {map_id}: {e}")))?
            .unwrap_or_default();
        *count = value
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_ne_bytes)
            .ok_or_else(|| {
                Error::Invalid(format!("map {map_id}: value of {} bytes", value.len()))
            })?;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Printed by `xdp-loader status va` (xdp-tools 1.3.1, Linux 6.18) for
    /// libxdp's own dispatcher with two components. As that kernel refuses
    /// freplace programs, the dispatcher (`xdp-dispatcher.o` with a config
    /// of two programs, priorities 10 and 20, XDP_PASS) was attached by
    /// hand and two plain XDP programs pinned as its `prog0-prog` and
    /// `prog1-prog`; xdp-loader reads exactly these. The trailing space
    /// after the dispatcher's tag is xdp-loader's.
    const TWO: &str = "CURRENT XDP PROGRAM STATUS:

Interface        Prio  Program name      Mode     ID   Tag               Chain actions
--------------------------------------------------------------------------------------
va                     xdp_dispatcher    skb      288776 36f4647d2e298650 
 =>              10     xdp_count                 288779 394dfaef67a0cd95  XDP_PASS
 =>              20     xdp_second                288781 394dfaef67a0cd95  XDP_PASS

";

    /// Captured: one program loaded without a dispatcher.
    const ONE: &str = "CURRENT XDP PROGRAM STATUS:

Interface        Prio  Program name      Mode     ID   Tag               Chain actions
--------------------------------------------------------------------------------------
va                     xdp_count         skb      282915 394dfaef67a0cd95 

";

    /// Captured: `xdp-loader status` of a namespace (all interfaces).
    const NONE: &str = "CURRENT XDP PROGRAM STATUS:

Interface        Prio  Program name      Mode     ID   Tag               Chain actions
--------------------------------------------------------------------------------------
lo                     <No XDP program loaded!>
vb                     <No XDP program loaded!>
va                     <No XDP program loaded!>

";

    #[test]
    fn parses_a_dispatcher_with_two_components() {
        let entries = parse_status(TWO).unwrap();
        assert_eq!(entries.len(), 3);
        assert!(entries[0].is_dispatcher());
        assert_eq!(entries[0].id, 288776);
        assert_eq!(entries[0].tag, "36f4647d2e298650");
        assert_eq!(
            entries[0].role,
            Role::Attached {
                mode: "skb".to_string()
            }
        );
        let names: Vec<(&str, Option<u32>, u32)> = entries[1..]
            .iter()
            .map(|e| (e.name.as_str(), e.priority(), e.id))
            .collect();
        assert_eq!(
            names,
            [
                ("xdp_count", Some(10), 288779),
                ("xdp_second", Some(20), 288781)
            ]
        );
        assert!(entries.iter().all(|e| e.interface == "va"));
        assert_eq!(
            entries[2].role,
            Role::Component {
                priority: 20,
                chain_call_actions: vec!["XDP_PASS".to_string()]
            }
        );
    }

    #[test]
    fn parses_a_lone_program_and_empty_interfaces() {
        let entries = parse_status(ONE).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].name, "xdp_count");
        assert!(!entries[0].is_dispatcher() && !entries[0].is_component());
        assert_eq!(entries[0].priority(), None);
        assert_eq!(parse_status(NONE).unwrap(), []);
    }

    #[test]
    fn parses_several_chain_call_actions_and_none() {
        let text = TWO.replace(
            "xdp_count                 288779 394dfaef67a0cd95  XDP_PASS",
            "xdp_count                 288779 394dfaef67a0cd95  XDP_DROP,XDP_PASS",
        );
        let text = text.replace("394dfaef67a0cd95  XDP_PASS\n", "394dfaef67a0cd95  \n");
        let entries = parse_status(&text).unwrap();
        let actions = |e: &StatusEntry| match &e.role {
            Role::Component {
                chain_call_actions, ..
            } => chain_call_actions.clone(),
            Role::Attached { .. } => panic!("not a component"),
        };
        assert_eq!(actions(&entries[1]), ["XDP_DROP", "XDP_PASS"]);
        assert!(actions(&entries[2]).is_empty());
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(parse_status("").is_err());
        let header = NONE.split("lo ").next().unwrap();
        assert!(parse_status(&format!("{header} =>  10  x  1  ab  XDP_PASS\n")).is_err());
        assert!(parse_status(&format!("{header}va  x  skb  notanid  ab\n")).is_err());
        assert!(parse_status(&format!("{header}va  x  skb  1\n")).is_err());
    }
}
