//! The clock `bpf_ktime_get_ns` reads, from user space.

use std::io;

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

#[cfg(test)]
mod tests {
    #[test]
    fn the_clock_moves_forward() {
        let a = super::monotonic_ns().unwrap();
        let b = super::monotonic_ns().unwrap();
        assert!(a > 0 && b >= a);
    }
}
