//! Raw Ethernet frames on one interface, through libpcap (an `AF_PACKET`
//! socket underneath).
//!
//! The socket lives in the network namespace of the thread that opened it
//! (see [`crate::Netns::run`]) and can be used from any thread afterwards.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bpf_builder::sys::netns::if_indextoname;
use pcap::{Active, Capture, Direction};
use rustix::event::{PollFd, PollFlags, Timespec, poll};

/// Frames are captured whole up to this length, libpcap's largest snap
/// length (libpcap sizes its ring by the interface's MTU, not by this).
const SNAPLEN: i32 = 262_144;

/// How long libpcap's receive ring holds a block of frames before handing
/// it over, in milliseconds: the delay a received frame may see. The ring
/// packs frames into blocks, so its default 2 MiB holds thousands of small
/// frames. Immediate mode would give every frame a slot of more than
/// 64 KiB on an interface with offloads (a veth), a few dozen in all, and
/// a stream of frames would overflow it.
const BLOCK_TIMEOUT_MS: i32 = 1;

/// An `AF_PACKET`/`SOCK_RAW` socket bound to one interface, seeing every
/// protocol (`ETH_P_ALL`). Frames are sent and received whole, Ethernet
/// header included. Closed on drop.
pub struct PacketSocket {
    /// The libpcap handle, non-blocking; the lock makes the socket usable
    /// from several threads (libpcap's handle is not).
    capture: Mutex<Capture<Active>>,
    /// A second descriptor of the same socket, polled without the lock so
    /// that a waiting receiver does not hold up a sender.
    poll_fd: OwnedFd,
    ifindex: u32,
}

impl PacketSocket {
    /// Opens a packet socket on interface `ifindex` of the current thread's
    /// network namespace. It receives only frames that pass that interface
    /// after this call (libpcap creates the socket with protocol 0, which
    /// receives nothing, and only binding it turns on `ETH_P_ALL`).
    pub fn bind(ifindex: u32) -> io::Result<PacketSocket> {
        if ifindex == 0 || i32::try_from(ifindex).is_err() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid interface index {ifindex}"),
            ));
        }
        let name = if_indextoname(ifindex)?;
        let capture = Capture::from_device(name.as_str())
            .and_then(|c| c.snaplen(SNAPLEN).timeout(BLOCK_TIMEOUT_MS).open())
            .and_then(|c| c.setnonblock())
            .map_err(|e| pcap_error(&format!("cannot open a capture on {name}"), e))?;
        let poll_fd = capture.as_fd().try_clone_to_owned()?;
        Ok(PacketSocket {
            capture: Mutex::new(capture),
            poll_fd,
            ifindex,
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
    /// libpcap's capture direction: frames whose packet type is
    /// `PACKET_OUTGOING` are dropped as they are read.
    pub fn set_incoming_only(&mut self, on: bool) -> io::Result<()> {
        let direction = if on { Direction::In } else { Direction::InOut };
        self.lock()
            .direction(direction)
            .map_err(|e| pcap_error("cannot set the capture direction", e))
    }

    /// Sends one whole frame (Ethernet header first) out of the interface.
    /// Other packet sockets on the interface see it as outgoing; this one
    /// does not see it at all.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.lock()
            .sendpacket(frame)
            .map_err(|e| pcap_error(&format!("cannot send {} bytes", frame.len()), e))
    }

    /// Waits up to `timeout` for one frame and copies it into `buf`.
    ///
    /// Returns the number of bytes copied (a frame longer than `buf` is
    /// truncated), or `None` when nothing arrived in time.
    pub fn recv(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            // Once the deadline has passed this still drains what is
            // queued, then returns `None`.
            if let Some(n) = self.recv_now(buf)? {
                return Ok(Some(n));
            }
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining == Some(Duration::ZERO) {
                return Ok(None);
            }
            // Readable or timed out, the next round tells which. Filtered
            // frames (outgoing ones, when incoming only) wake it up too.
            self.wait_readable(remaining)?;
        }
    }

    /// The libpcap handle; a panic of another thread holding it left
    /// nothing half-done that matters here.
    fn lock(&self) -> MutexGuard<'_, Capture<Active>> {
        self.capture.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// poll(2) for input, `None` waiting forever.
    fn wait_readable(&self, timeout: Option<Duration>) -> io::Result<()> {
        // A timeout beyond Timespec's range waits forever.
        let timeout = timeout.and_then(|t| Timespec::try_from(t).ok());
        let mut fds = [PollFd::new(&self.poll_fd, PollFlags::IN)];
        match poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// One non-blocking read: the byte count, or `None` if nothing is
    /// queued (or only frames the direction filters out).
    fn recv_now(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut capture = self.lock();
        match capture.next_packet() {
            Ok(packet) => {
                let n = packet.data.len().min(buf.len());
                buf[..n].copy_from_slice(&packet.data[..n]);
                Ok(Some(n))
            }
            Err(pcap::Error::TimeoutExpired) => Ok(None),
            Err(e) => Err(pcap_error("cannot receive", e)),
        }
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.poll_fd.as_fd()
    }
}

impl fmt::Debug for PacketSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacketSocket")
            .field("ifindex", &self.ifindex)
            .field("fd", &self.poll_fd)
            .finish_non_exhaustive()
    }
}

/// A libpcap error as an I/O error saying what was being done.
fn pcap_error(context: &str, error: pcap::Error) -> io::Error {
    let kind = match error {
        pcap::Error::IoError(kind) => kind,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, format!("{context}: {error}"))
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
