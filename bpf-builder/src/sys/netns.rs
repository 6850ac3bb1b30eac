//! Interface names and indexes, which belong to a network namespace: the
//! one the calling thread is in (`setns(2)` with `CLONE_NEWNET` moves a
//! single thread, so threads of one process may see different interfaces).

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::os::unix::fs::MetadataExt;

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
}

/// As `readlink /proc/self/ns/net` shows it: `net:[4026531840]`.
impl fmt::Display for NetnsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "net:[{}]", self.ino)
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
    fn unknown_interface_is_an_error() {
        assert!(if_nametoindex("no-such-if-x").is_err());
        assert!(if_nametoindex("a\0b").is_err());
        assert!(if_indextoname(u32::MAX).is_err());
    }
}
