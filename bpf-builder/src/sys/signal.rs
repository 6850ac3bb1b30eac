//! Ending requests (SIGINT, SIGTERM) taken as data instead of killing the
//! process, so a tracing tool can stop its loop on Ctrl-C, print what it
//! gathered and drop its programs, links and probe events.

use std::io;
use std::time::Duration;

/// The signals that ask a tool to end.
const ENDING: [libc::c_int; 2] = [libc::SIGINT, libc::SIGTERM];

/// SIGINT and SIGTERM blocked in the thread that made it (and in the
/// threads it starts afterwards), so they stay pending until
/// [`Termination::wait`] or [`Termination::requested`] takes them.
/// Make it in `main` before starting other threads: a thread that does
/// not block them would still be killed by them. Dropping it unblocks them.
#[derive(Debug)]
pub struct Termination {
    previous: libc::sigset_t,
}

fn ending_set() -> libc::sigset_t {
    // SAFETY: sigset_t is a plain bit set that sigemptyset initialises.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in ENDING {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

impl Termination {
    /// Blocks SIGINT and SIGTERM in the calling thread.
    pub fn block() -> io::Result<Termination> {
        let set = ending_set();
        // SAFETY: pthread_sigmask changes the calling thread's mask only
        // and writes the old mask into `previous`.
        unsafe {
            let mut previous: libc::sigset_t = std::mem::zeroed();
            let r = libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut previous);
            if r != 0 {
                return Err(io::Error::from_raw_os_error(r));
            }
            Ok(Termination { previous })
        }
    }

    /// Waits at most `timeout` (`None`: for ever) for SIGINT or SIGTERM
    /// and takes it: its number, or `None` when the time ran out.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<Option<i32>> {
        let set = ending_set();
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        loop {
            let ptr = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `set` and `ts` live across the call; no siginfo is
            // asked for.
            let r = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), ptr) };
            if r >= 0 {
                return Ok(Some(r));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(None),
                // Another signal's handler ran: an unbounded wait goes on;
                // a bounded one returns early, which callers treat as a
                // timeout.
                Some(libc::EINTR) if timeout.is_none() => continue,
                Some(libc::EINTR) => return Ok(None),
                _ => return Err(e),
            }
        }
    }

    /// Whether SIGINT or SIGTERM arrived, without waiting (it is taken).
    pub fn requested(&self) -> io::Result<bool> {
        Ok(self.wait(Some(Duration::ZERO))?.is_some())
    }
}

impl Drop for Termination {
    fn drop(&mut self) {
        // SAFETY: restores the mask this thread had, saved by `block`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blocked_sigint_is_taken_not_fatal() {
        // Runs on its own thread: the mask is per thread, and the signal
        // is sent to this thread only.
        std::thread::spawn(|| {
            let t = Termination::block().unwrap();
            assert_eq!(t.wait(Some(Duration::from_millis(1))).unwrap(), None);
            assert!(!t.requested().unwrap());
            // SAFETY: raise(3) sends SIGINT to the calling thread, which
            // has it blocked: it stays pending.
            assert_eq!(unsafe { libc::raise(libc::SIGINT) }, 0);
            assert!(t.requested().unwrap());
            assert!(!t.requested().unwrap(), "taken once");
        })
        .join()
        .unwrap();
    }
}
