//! Throw-away network namespaces, deleted on drop.

use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};

use crate::cmd;
use crate::link::{self, VethPair};
use crate::{Error, Result};

/// Where `ip netns` keeps its named namespaces.
const NETNS_DIR: &str = "/run/netns";
/// Prefix of every namespace this crate creates.
const PREFIX: &str = "tb-";

/// Tells namespaces of one process apart.
static COUNTER: AtomicU32 = AtomicU32::new(0);
/// The first `Netns::new` of a process sweeps leftovers of killed runs.
static SWEEP: Once = Once::new();

/// A named network namespace (`ip netns add tb-<pid>-<counter>-<random>`)
/// with `lo` up and IPv6 disabled, so veths in it are quiet: no router
/// solicitations, no duplicate address detection.
///
/// Dropping it runs `ip netns del`, which (once sockets opened inside are
/// closed too) destroys the namespace and every interface in it. Drop runs
/// during unwinding as well, so a failing test cleans up.
#[derive(Debug)]
pub struct Netns {
    name: String,
    fd: OwnedFd,
}

impl Netns {
    /// Creates a fresh namespace. The name holds the process id, so
    /// parallel test processes never collide and [`sweep_stale`] can tell
    /// leftovers of dead processes.
    pub fn new() -> Result<Netns> {
        SWEEP.call_once(|| {
            if let Err(e) = sweep_stale() {
                eprintln!("testbed: cannot sweep stale namespaces: {e}");
            }
        });
        let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
        let random = u32::from_ne_bytes(crate::random::bytes()?);
        let name = format!("{PREFIX}{}-{counter}-{random:08x}", std::process::id());
        cmd::ip(&["netns", "add", &name], None)?;
        let fd = match File::open(Path::new(NETNS_DIR).join(&name)) {
            Ok(f) => OwnedFd::from(f),
            Err(e) => {
                delete(&name);
                return Err(Error::io(format!("cannot open {NETNS_DIR}/{name}"), e));
            }
        };
        // From here on, dropping `ns` deletes it if a later step fails.
        let ns = Netns { name, fd };
        ns.ip(&["link", "set", "lo", "up"])?;
        ns.run(disable_ipv6)??;
        Ok(ns)
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `f` on a new thread that has entered this namespace and returns
    /// its result; sockets `f` creates stay in this namespace. A panic in
    /// `f` is passed on to the caller.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        run_in(self.fd.as_fd(), &self.name, f)
    }

    /// Runs `ip -n NAME args...` and returns its stdout; the error carries
    /// its stderr.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        cmd::ip(&full, None)
    }

    /// Runs `ip -n NAME -batch -` with `commands` (one `ip` command per line,
    /// without the leading `ip`) in one process.
    pub fn ip_batch(&self, commands: &str) -> Result<String> {
        cmd::ip(&["-n", &self.name, "-batch", "-"], Some(commands))
    }

    /// Creates a veth pair `a`–`b` with both ends in this namespace and up.
    /// Names are 1 to 15 characters from `[A-Za-z0-9_.-]`.
    pub fn veth_pair(&self, a: &str, b: &str) -> Result<VethPair> {
        let mut pairs = link::create_veths(self, &[(a.to_string(), b.to_string())], None)?;
        Ok(pairs.remove(0))
    }

    /// Creates a veth pair with `a` in this namespace and `b` in `peer`,
    /// both up.
    pub fn veth_pair_to(&self, a: &str, peer: &Netns, b: &str) -> Result<VethPair> {
        let mut pairs = link::create_veths(self, &[(a.to_string(), b.to_string())], Some(peer))?;
        Ok(pairs.remove(0))
    }

    /// Creates `n` veth pairs `{prefix}{i}a`–`{prefix}{i}b` (i from 0) in
    /// this namespace, all up, with two `ip` processes in all (one batch to
    /// create, one listing to read indexes and MACs back).
    pub fn veth_pairs(&self, n: usize, prefix: &str) -> Result<Vec<VethPair>> {
        let names: Vec<(String, String)> = (0..n)
            .map(|i| (format!("{prefix}{i}a"), format!("{prefix}{i}b")))
            .collect();
        link::create_veths(self, &names, None)
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        delete(&self.name);
    }
}

/// Moves the current thread into the network namespace `fd` refers to
/// (`setns(2)` with `CLONE_NEWNET`, which moves only the calling thread).
fn setns(fd: BorrowedFd<'_>) -> io::Result<()> {
    move_into_link_name_space(fd, Some(LinkNameSpaceType::Network))?;
    Ok(())
}

/// Opens the network namespace of the current thread (not of the process:
/// threads may differ after [`setns`]).
fn current_netns() -> io::Result<OwnedFd> {
    Ok(File::open("/proc/thread-self/ns/net")?.into())
}

/// The current thread is inside another network namespace while this lives;
/// dropping it returns the thread to the namespace it was in before.
///
/// Not `Send`: the namespace belongs to the thread that entered it.
#[derive(Debug)]
struct NetnsGuard {
    previous: Option<OwnedFd>,
    _not_send: PhantomData<*const ()>,
}

impl NetnsGuard {
    /// Enters the namespace `ns` on the current thread, remembering the
    /// current one.
    fn enter(ns: BorrowedFd<'_>) -> io::Result<NetnsGuard> {
        let previous = current_netns()?;
        setns(ns)?;
        Ok(NetnsGuard {
            previous: Some(previous),
            _not_send: PhantomData,
        })
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Some(fd) = self.previous.take()
            && let Err(e) = setns(fd.as_fd())
        {
            // Carrying on would run later code in the wrong namespace,
            // possibly against the host's interfaces; stop instead.
            eprintln!("NetnsGuard: cannot return to the previous network namespace: {e}");
            std::process::abort();
        }
    }
}

/// Runs `f` on a scoped thread inside the namespace `fd` (named `name` for
/// error messages).
fn run_in<T: Send>(fd: BorrowedFd<'_>, name: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            let guard = NetnsGuard::enter(fd)
                .map_err(|e| Error::io(format!("cannot enter network namespace {name}"), e))?;
            let value = f();
            drop(guard);
            Ok(value)
        });
        match worker.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Runs `f` inside the namespace called `name` (as `ip netns` knows it).
pub(crate) fn run_in_named<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> Result<T> {
    let path = Path::new(NETNS_DIR).join(name);
    let file =
        File::open(&path).map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    run_in(file.as_fd(), name, f)
}

/// Turns IPv6 off for the current thread's namespace: `default` covers
/// interfaces created later, `all` those already there.
fn disable_ipv6() -> Result<()> {
    for which in ["all", "default"] {
        let path = format!("/proc/sys/net/ipv6/conf/{which}/disable_ipv6");
        match std::fs::write(&path, "1") {
            Ok(()) => {}
            // A kernel without IPv6 makes no IPv6 noise either.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("cannot write {path}"), e)),
        }
    }
    Ok(())
}

/// `ip netns del NAME`, reporting (not panicking on) failure: it runs in drop.
fn delete(name: &str) {
    if let Err(e) = cmd::ip(&["netns", "del", name], None)
        && Path::new(NETNS_DIR).join(name).exists()
    {
        eprintln!("testbed: cannot delete network namespace {name}: {e}");
    }
}

/// Deletes the `tb-<pid>-...` namespaces whose process no longer exists
/// (left by a killed test run) and returns their names.
///
/// A namespace of a dead process whose pid was reused survives until that
/// process ends too; namespaces of live processes are never touched.
pub fn sweep_stale() -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot list {NETNS_DIR}"), e)),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(format!("cannot list {NETNS_DIR}"), e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        match cmd::ip(&["netns", "del", &name], None) {
            Ok(_) => removed.push(name),
            // Another process may have swept it first.
            Err(_) if !entry.path().exists() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// The pid in a name `tb-<pid>-<counter>-<random>`, if it is one of ours.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let mut parts = rest.split('-');
    let pid = parts.next()?.parse().ok()?;
    let counter_ok = parts.next()?.parse::<u32>().is_ok();
    let random_ok = parts
        .next()
        .is_some_and(|r| r.len() == 8 && r.bytes().all(|b| b.is_ascii_hexdigit()));
    (counter_ok && random_ok && parts.next().is_none()).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_into_the_current_namespace_keeps_it() {
        use std::os::unix::fs::MetadataExt;
        let ino = || std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
        let before = ino();
        let fd = current_netns().unwrap();
        let guard = match NetnsGuard::enter(fd.as_fd()) {
            Err(e)
                if e.kind() == io::ErrorKind::PermissionDenied
                    && std::env::var_os("CI").is_none() =>
            {
                eprintln!("skipping: setns needs CAP_SYS_ADMIN: {e}");
                return;
            }
            r => r.unwrap(),
        };
        assert_eq!(ino(), before);
        drop(guard);
        assert_eq!(ino(), before);
    }

    #[test]
    fn owner_pid_accepts_only_our_names() {
        assert_eq!(owner_pid("tb-1234-0-0badf00d"), Some(1234));
        assert_eq!(owner_pid("tb-1234-17-ffffffff"), Some(1234));
        assert_eq!(owner_pid("tb-1234-0"), None);
        assert_eq!(owner_pid("tb-x-0-0badf00d"), None);
        assert_eq!(owner_pid("tb-1234-0-0badf00d-x"), None);
        assert_eq!(owner_pid("tb-1234-0-nothex!!"), None);
        assert_eq!(owner_pid("other-1234-0-0badf00d"), None);
    }
}
