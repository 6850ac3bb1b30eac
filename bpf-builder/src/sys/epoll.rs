//! `epoll(7)`: one file descriptor that waits on many (ring buffer maps,
//! perf event rings), each registered with a token that the wait hands
//! back when it is readable.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// An epoll instance, closed on drop.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

/// A timeout in whole milliseconds for `poll`-like calls, rounded up (a
/// wait of 0.5 ms must not become a poll); `None` is forever (-1).
pub fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(t) => {
            libc::c_int::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX)
        }
    }
}

impl Epoll {
    /// A new epoll instance, close-on-exec.
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: no pointers; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a new fd that nothing else owns.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Waits (level-triggered) for `fd` to be readable, reporting it as
    /// `token`. The caller keeps `fd` open while it is registered;
    /// closing it removes it.
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: both fds are open for the call; `ev` is a valid
        // `epoll_event` that the kernel only reads.
        let r = unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &raw mut ev,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits until a registered fd is readable, at most `timeout`
    /// (`None`: as long as it takes), and replaces `ready` with the
    /// tokens of those that are (at most `max` of them; empty on timeout
    /// or when a signal interrupted the wait).
    pub fn wait(
        &self,
        ready: &mut Vec<u64>,
        max: usize,
        timeout: Option<Duration>,
    ) -> io::Result<()> {
        ready.clear();
        let max = max.clamp(1, 1024);
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; max];
        // SAFETY: `events` holds `max` writable entries for the call, and
        // `max` fits a c_int (at most 1024).
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.as_mut_ptr(),
                max as libc::c_int,
                timeout_ms(timeout),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(e);
        }
        ready.extend(events[..n as usize].iter().map(|e| e.u64));
        Ok(())
    }
}
