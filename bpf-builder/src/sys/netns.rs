//! Network namespaces and interface names, per thread.
//!
//! `setns(2)` with `CLONE_NEWNET` moves only the calling thread, so code
//! that wants to work inside a namespace either owns a dedicated thread or
//! uses [`NetnsGuard`] to enter and leave around a scope. Sockets keep the
//! namespace they were created in, whichever thread uses them later.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// Moves the current thread into the network namespace `fd` refers to
/// (a file such as `/run/netns/NAME` or `/proc/PID/ns/net`).
pub fn setns(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: `fd` is a valid open descriptor for the borrow's duration;
    // setns only reads it and changes the calling thread's namespace.
    let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens the network namespace of the current thread (not of the process:
/// threads may differ after [`setns`]).
pub fn current_netns() -> io::Result<OwnedFd> {
    Ok(File::open("/proc/thread-self/ns/net")?.into())
}

/// The current thread is inside another network namespace while this lives;
/// dropping it returns the thread to the namespace it was in before.
///
/// Not `Send`: the namespace belongs to the thread that entered it.
#[derive(Debug)]
pub struct NetnsGuard {
    previous: Option<OwnedFd>,
    _not_send: PhantomData<*const ()>,
}

impl NetnsGuard {
    /// Enters the namespace `ns` on the current thread, remembering the
    /// current one.
    pub fn enter(ns: BorrowedFd<'_>) -> io::Result<NetnsGuard> {
        let previous = current_netns()?;
        setns(ns)?;
        Ok(NetnsGuard {
            previous: Some(previous),
            _not_send: PhantomData,
        })
    }

    /// Returns to the previous namespace now, reporting failure instead of
    /// aborting as `drop` must.
    pub fn leave(mut self) -> io::Result<()> {
        match self.previous.take() {
            Some(fd) => setns(std::os::fd::AsFd::as_fd(&fd)),
            None => Ok(()),
        }
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Some(fd) = self.previous.take()
            && let Err(e) = setns(std::os::fd::AsFd::as_fd(&fd))
        {
            // Carrying on would run later code in the wrong namespace,
            // possibly against the host's interfaces; stop instead.
            eprintln!("NetnsGuard: cannot return to the previous network namespace: {e}");
            std::process::abort();
        }
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
    fn unknown_interface_is_an_error() {
        assert!(if_nametoindex("no-such-if-x").is_err());
        assert!(if_nametoindex("a\0b").is_err());
        assert!(if_indextoname(u32::MAX).is_err());
    }

    #[test]
    fn guard_into_the_current_namespace_keeps_it() {
        use std::os::unix::fs::MetadataExt;
        let ino = || std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino();
        let before = ino();
        let fd = current_netns().unwrap();
        let guard = match NetnsGuard::enter(std::os::fd::AsFd::as_fd(&fd)) {
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
        guard.leave().unwrap();
        assert_eq!(ino(), before);
    }
}
