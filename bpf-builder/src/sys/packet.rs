//! Raw Ethernet frames on one interface through an `AF_PACKET` socket.
//!
//! The socket lives in the network namespace of the thread that created it
//! (see [`super::netns`]) and can be used from any thread afterwards.

use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// An `AF_PACKET`/`SOCK_RAW` socket bound to one interface, seeing every
/// protocol (`ETH_P_ALL`). Frames are sent and received whole, Ethernet
/// header included. Closed on drop.
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: u32,
    incoming_only: bool,
}

impl PacketSocket {
    /// Opens a packet socket on interface `ifindex` of the current thread's
    /// network namespace. It receives only frames that pass that interface
    /// after this call (the socket is created with protocol 0, which
    /// receives nothing, and only `bind` turns on `ETH_P_ALL`).
    pub fn bind(ifindex: u32) -> io::Result<PacketSocket> {
        let ifindex_c = i32::try_from(ifindex)
            .ok()
            .filter(|&i| i > 0)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("invalid interface index {ifindex}"),
                )
            })?;
        // SAFETY: plain socket(2) call; it takes no pointers.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor socket(2) just returned; nobody else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        // SAFETY: sockaddr_ll is a plain C struct for which all zeroes is valid.
        let mut addr: libc::sockaddr_ll = unsafe { mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = ifindex_c;
        // SAFETY: `addr` is a valid sockaddr_ll and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(PacketSocket {
            fd,
            ifindex,
            incoming_only: false,
        })
    }

    /// The interface this socket is bound to.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// With `on`, [`recv`](Self::recv) returns only frames that arrived on
    /// the interface, not those sent from it (by this or any other socket or
    /// the kernel), so a test sees what came in rather than its own traffic.
    ///
    /// Sets `PACKET_IGNORE_OUTGOING` (Linux 4.20+) so outgoing frames are not
    /// even queued, and also filters on the packet type when receiving, so
    /// the behaviour holds on kernels without that option.
    pub fn set_incoming_only(&mut self, on: bool) -> io::Result<()> {
        let value: libc::c_int = on.into();
        // SAFETY: `value` is a c_int that lives across the call and the
        // length passed is its size.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_IGNORE_OUTGOING,
                (&raw const value).cast::<libc::c_void>(),
                mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            let err = io::Error::last_os_error();
            // Older kernels lack the option; the filter in `recv` suffices.
            if err.raw_os_error() != Some(libc::ENOPROTOOPT) {
                return Err(err);
            }
        }
        self.incoming_only = on;
        Ok(())
    }

    /// Sets the receive buffer to `bytes` (`SO_RCVBUFFORCE`, past the
    /// system's `rmem_max`; needs `CAP_NET_ADMIN`), so a burst of frames
    /// waits in the socket while the reader is not scheduled.
    pub fn set_receive_buffer(&self, bytes: usize) -> io::Result<()> {
        let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        // SAFETY: `value` is a c_int that lives across the call and the
        // length passed is its size.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const value).cast::<libc::c_void>(),
                mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Frames the kernel dropped for this socket since the last call (its
    /// buffer was full): `PACKET_STATISTICS`' `tp_drops`.
    pub fn drops(&self) -> io::Result<u32> {
        let mut stats = libc::tpacket_stats {
            tp_packets: 0,
            tp_drops: 0,
        };
        let mut len = mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
        // SAFETY: `stats` is a writable tpacket_stats that lives across the
        // call, and `len` holds its size.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&raw mut stats).cast::<libc::c_void>(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stats.tp_drops)
    }

    /// Sends one whole frame (Ethernet header first) out of the interface.
    /// Other packet sockets on the interface see it as outgoing; this one
    /// does not see it at all.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: `frame` is valid for reads of `frame.len()` bytes.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast::<libc::c_void>(),
                frame.len(),
                0,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != frame.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("sent {n} of {} bytes", frame.len()),
            ));
        }
        Ok(())
    }

    /// Waits up to `timeout` for one frame and copies it into `buf`.
    ///
    /// Returns the number of bytes copied (a frame longer than `buf` is
    /// truncated), or `None` when nothing arrived in time.
    pub fn recv(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if !self.wait_readable(remaining)? {
                return Ok(None);
            }
            match self.recv_now(buf)? {
                Some((_, pkttype)) if self.incoming_only && pkttype == libc::PACKET_OUTGOING => {}
                Some((n, _)) => return Ok(Some(n)),
                // Filtered out or gone: wait again. Once the deadline has
                // passed, poll(0) still drains what is queued, then says
                // "not readable" and we return `None`.
                None => {}
            }
        }
    }

    /// poll(2) for input; `None` waits forever. Returns whether readable.
    fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<bool> {
        // Round up so a short timeout still waits instead of spinning.
        let ms = match timeout {
            None => -1,
            Some(t) => {
                let ms = t.as_nanos().div_ceil(1_000_000);
                libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
            }
        };
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            // SAFETY: `pfd` is one valid pollfd and we pass a count of 1.
            let rc = unsafe { libc::poll(&raw mut pfd, 1, ms) };
            if rc >= 0 {
                return Ok(rc > 0);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// One non-blocking recvfrom(2): the byte count and the packet type
    /// (`PACKET_HOST`, `PACKET_OUTGOING`, ...), or `None` if nothing is queued.
    fn recv_now(&self, buf: &mut [u8]) -> io::Result<Option<(usize, u8)>> {
        // SAFETY: sockaddr_ll is a plain C struct for which all zeroes is valid.
        let mut from: libc::sockaddr_ll = unsafe { mem::zeroed() };
        let mut from_len = mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes; `from` and
        // `from_len` are valid and `from_len` holds the size of `from`.
        let n = unsafe {
            libc::recvfrom(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr().cast::<libc::c_void>(),
                buf.len(),
                libc::MSG_DONTWAIT,
                (&raw mut from).cast::<libc::sockaddr>(),
                &raw mut from_len,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(err),
            };
        }
        Ok(Some((n as usize, from.sll_pkttype)))
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_zero_is_rejected_before_any_system_call() {
        let err = PacketSocket::bind(0).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
