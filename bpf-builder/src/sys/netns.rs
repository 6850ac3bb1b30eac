//! Interface names and indexes, which belong to a network namespace: the
//! one the calling thread is in (`setns(2)` with `CLONE_NEWNET` moves a
//! single thread, so threads of one process may see different interfaces).
//!
//! A namespace is told apart by its [`NetnsId`]; a tool that records one
//! (where a device was given) can later find the namespace again with
//! [`NetnsFile::find`] and read names there with [`NetnsFile::run`].

use std::ffi::{CStr, CString};
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A network namespace, told apart from others by the device and inode of
/// its nsfs file (what `stat` on `/proc/thread-self/ns/net` gives;
/// `readlink` shows the inode as `net:[4026531840]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NetnsId {
    dev: u64,
    ino: u64,
}

impl NetnsId {
    /// The network namespace of the calling thread (threads of one
    /// process may be in different ones).
    pub fn current() -> io::Result<NetnsId> {
        let meta = std::fs::metadata("/proc/thread-self/ns/net")?;
        Ok(NetnsId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// The namespace with this device and inode number (as [`dev`] and
    /// [`ino`] gave them): for ids written down and read back.
    ///
    /// [`dev`]: NetnsId::dev
    /// [`ino`]: NetnsId::ino
    pub fn from_raw(dev: u64, ino: u64) -> NetnsId {
        NetnsId { dev, ino }
    }

    /// The device number of the namespace file system (nsfs).
    pub fn dev(self) -> u64 {
        self.dev
    }

    /// The inode number, as `net:[INO]` shows it.
    pub fn ino(self) -> u64 {
        self.ino
    }
}

/// As `readlink /proc/self/ns/net` shows it: `net:[4026531840]`.
impl fmt::Display for NetnsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "net:[{}]", self.ino)
    }
}

/// Where [`NetnsFile::find`] looks for namespaces by name: `ip netns
/// add NAME` bind-mounts the namespace on `/run/netns/NAME`.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// `NS_GET_NSTYPE` (linux/nsfs.h): `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// An open network namespace: a file of nsfs (`/proc/PID/ns/net`, or the
/// bind mount `ip netns add` makes under [`NETNS_RUN_DIR`]), which keeps
/// the namespace alive while it is open. Interface names and indexes of
/// the namespace are read with [`run`](NetnsFile::run).
#[derive(Debug)]
pub struct NetnsFile {
    file: File,
    id: NetnsId,
    path: PathBuf,
}

impl NetnsFile {
    /// Opens the network namespace file `path`; fails with `InvalidInput`
    /// when it is another kind of file (or another kind of namespace).
    pub fn open(path: impl AsRef<Path>) -> io::Result<NetnsFile> {
        let path = path.as_ref();
        let file = File::open(path)?;
        // SAFETY: `file` is a live fd for the whole call; NS_GET_NSTYPE
        // takes no argument and writes no memory.
        let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
        if kind != libc::CLONE_NEWNET {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a network namespace", path.display()),
            ));
        }
        let meta = file.metadata()?;
        Ok(NetnsFile {
            file,
            id: NetnsId {
                dev: meta.dev(),
                ino: meta.ino(),
            },
            path: path.to_path_buf(),
        })
    }

    /// Finds the namespace `id` while it lives: first among the names of
    /// `ip netns` ([`NETNS_RUN_DIR`]), then as the namespace of a running
    /// process (`/proc/PID/ns/net`). `None` when neither has it (nothing
    /// but open files keeps it alive, or `/proc` is not mounted).
    pub fn find(id: NetnsId) -> Option<NetnsFile> {
        let candidates = |dir: &str| -> Vec<PathBuf> {
            std::fs::read_dir(dir)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default()
        };
        let named = candidates(NETNS_RUN_DIR);
        let processes = candidates("/proc")
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .map(|p| p.join("ns/net"));
        named.into_iter().chain(processes).find_map(|path| {
            // A cheap look first; then the open file decides (the name
            // may have been replaced meanwhile).
            let meta = std::fs::metadata(&path).ok()?;
            if (meta.dev(), meta.ino()) != (id.dev, id.ino) {
                return None;
            }
            NetnsFile::open(&path).ok().filter(|f| f.id == id)
        })
    }

    /// Its id.
    pub fn id(&self) -> NetnsId {
        self.id
    }

    /// The path it was opened by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its name for `ip netns` (`ip -n NAME`), when it was opened under
    /// [`NETNS_RUN_DIR`].
    pub fn name(&self) -> Option<&str> {
        self.path
            .strip_prefix(NETNS_RUN_DIR)
            .ok()
            .and_then(|p| p.to_str())
            .filter(|n| !n.is_empty() && !n.contains('/'))
    }

    /// Runs `f` on a new thread that has entered the namespace
    /// (`setns(2)`, which needs CAP_SYS_ADMIN), and returns its result:
    /// [`if_indextoname`] and the like in `f` answer for that namespace.
    /// The calling thread stays where it is. A panic in `f` is passed on.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        let fd = self.file.as_fd();
        std::thread::scope(|s| {
            let worker = s.spawn(move || {
                setns_net(fd)?;
                // The thread ends after `f`: nothing runs in the namespace
                // by mistake afterwards.
                Ok(f())
            });
            match worker.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }
}

impl AsFd for NetnsFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Moves the calling thread into the network namespace `fd`.
fn setns_net(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `fd` is live for the whole call; setns reads no memory of
    // ours and moves only the calling thread.
    let r = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The index of interface `name` in the current thread's network namespace.
pub fn if_nametoindex(name: &str) -> io::Result<u32> {
    let cname = CString::new(name).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name contains a NUL byte",
        )
    })?;
    // SAFETY: `cname` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(index)
    }
}

/// The name of interface `index` in the current thread's network namespace.
pub fn if_indextoname(index: u32) -> io::Result<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` has the IF_NAMESIZE bytes the function may write.
    let ptr = unsafe { libc::if_indextoname(index, buf.as_mut_ptr()) };
    if ptr.is_null() {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success the function wrote a NUL-terminated name into `buf`.
    let name = unsafe { CStr::from_ptr(buf.as_ptr()) };
    Ok(name.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_name_and_index_round_trip() {
        // Every network namespace has `lo`, and it is always index 1.
        assert_eq!(if_nametoindex("lo").unwrap(), 1);
        assert_eq!(if_indextoname(1).unwrap(), "lo");
    }

    #[test]
    fn netns_id_is_the_threads_and_shows_like_readlink() {
        let id = NetnsId::current().unwrap();
        assert_eq!(id, NetnsId::current().unwrap());
        let link = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        assert_eq!(id.to_string(), link.to_string_lossy());
    }

    #[test]
    fn the_own_namespace_opens_finds_and_runs() {
        let own = NetnsId::current().unwrap();
        let f = NetnsFile::open("/proc/self/ns/net").unwrap();
        assert_eq!(f.id(), own);
        assert_eq!(f.name(), None);
        assert_eq!(NetnsId::from_raw(own.dev(), own.ino()), own);
        // This process is in it, so /proc finds it.
        assert_eq!(NetnsFile::find(own).unwrap().id(), own);
        // Other files, and namespaces of another kind, are refused.
        let e = NetnsFile::open("/proc/self/ns/uts").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(NetnsFile::open("/proc/self/status").is_err());
        assert!(NetnsFile::find(NetnsId::from_raw(own.dev(), 1)).is_none());
        // Entering the own namespace needs CAP_SYS_ADMIN even so.
        match f.run(|| NetnsId::current().unwrap()) {
            Ok(id) => assert_eq!(id, own),
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
        }
    }

    #[test]
    fn unknown_interface_is_an_error() {
        assert!(if_nametoindex("no-such-if-x").is_err());
        assert!(if_nametoindex("a\0b").is_err());
        assert!(if_indextoname(u32::MAX).is_err());
    }
}
