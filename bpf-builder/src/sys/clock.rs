//! The clock `bpf_ktime_get_ns` reads, from user space, and the CPU
//! time a thread has spent.

use std::io;
use std::time::Duration;

/// Nanoseconds of `CLOCK_MONOTONIC`: the clock a program's
/// `bpf_ktime_get_ns` reads (the kernel's `ktime_get_mono_fast_ns`), so
/// user space can stamp map values a program compares with it (an
/// expiry time, a token bucket's last refill).
pub fn monotonic_ns() -> io::Result<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
}

/// The CPU time the calling thread has spent: in user space, and in the
/// kernel on its behalf (system calls: a map update's inserts, the
/// verifier). `getrusage(RUSAGE_THREAD)`, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThreadCpu {
    /// Time in user space.
    pub user: Duration,
    /// Time in the kernel.
    pub system: Duration,
}

impl ThreadCpu {
    /// The calling thread's CPU time so far.
    pub fn now() -> io::Result<ThreadCpu> {
        // SAFETY: an all-zero `rusage` is a valid value (integers only).
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable rusage for the call.
        let r = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        Ok(ThreadCpu {
            user: time(usage.ru_utime),
            system: time(usage.ru_stime),
        })
    }

    /// The time spent from `earlier` to `self`.
    pub fn since(self, earlier: ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_clock_moves_forward() {
        let a = super::monotonic_ns().unwrap();
        let b = super::monotonic_ns().unwrap();
        assert!(a > 0 && b >= a);
    }

    #[test]
    fn a_busy_thread_spends_user_time() {
        let start = super::ThreadCpu::now().unwrap();
        let mut x = 1u64;
        let t = std::time::Instant::now();
        while t.elapsed() < std::time::Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
        let spent = super::ThreadCpu::now().unwrap().since(start);
        assert!(
            spent.user + spent.system >= std::time::Duration::from_millis(20),
            "{spent:?}"
        );
    }
}
