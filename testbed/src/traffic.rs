//! Sending frames across a link and collecting what arrives, ignoring
//! traffic that is not the test's own.

use std::time::{Duration, Instant};

use crate::link::Link;
use crate::{Error, Result};

/// A random 16-byte token a test puts into its payloads, so that only its
/// own frames are collected and kernel chatter is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker([u8; 16]);

impl Marker {
    /// A fresh random marker.
    pub fn new() -> Result<Marker> {
        Ok(Marker(crate::random::bytes()?))
    }

    /// The token bytes, to put into a payload.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Whether `frame` contains the token anywhere.
    pub fn is_in(&self, frame: &[u8]) -> bool {
        frame.windows(self.0.len()).any(|w| w == self.0)
    }
}

/// Frames a stream sends back to back: well below the per-CPU backlog
/// (`netdev_max_backlog`, 1,000) and a default socket buffer's 512 small
/// frames.
const BURST: usize = 64;

/// Receive-buffer bytes a streamed frame takes at most (a small frame's
/// buffer with the kernel's bookkeeping is well under this).
const STREAM_FRAME_ROOM: usize = 4096;

/// Largest frame collected whole (a veth's MTU is far below it).
const MAX_FRAME: usize = 65536;

/// Sends `frames` out of `tx` and returns the frames carrying `marker` that
/// came in at `rx`, in arrival order.
///
/// The receiving socket is open before the first frame is sent and sees
/// only incoming frames. Collection stops once as many marked frames
/// arrived as marked frames were sent, or after `timeout` (so a test that
/// expects frames to be dropped waits the whole timeout).
pub fn send_and_collect<F: AsRef<[u8]>>(
    tx: &Link,
    rx: &Link,
    frames: &[F],
    marker: &Marker,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>> {
    let rx_sock = incoming(rx)?;
    let tx_sock = tx.socket()?;
    for frame in frames {
        send(&tx_sock, tx, frame.as_ref())?;
    }
    collect(&rx_sock, rx, expected(frames, marker), marker, timeout)
}

/// Like [`send_and_collect`], but as a stream with `during` in the middle
/// of it: a second thread sends the first half of `frames`, runs
/// `during` (a change made while traffic flows, say), then sends the
/// rest, while this thread collects what arrives. Frames still in flight
/// when `during` runs meet whatever it changed. The receiving socket gets
/// a buffer for the whole stream, and the sender pauses briefly after
/// every 64 frames, below the kernel's per-CPU backlog of 1,000; frames
/// the socket itself drops make this an error rather than a loss.
pub fn stream_and_collect<F: AsRef<[u8]> + Sync>(
    tx: &Link,
    rx: &Link,
    frames: &[F],
    marker: &Marker,
    timeout: Duration,
    during: impl FnOnce() + Send,
) -> Result<Vec<Vec<u8>>> {
    let rx_sock = incoming(rx)?;
    // Room for the whole stream: a reader that is not scheduled for a
    // while (a loaded machine) must not lose frames to a full buffer.
    rx_sock
        .set_receive_buffer(frames.len() * STREAM_FRAME_ROOM)
        .map_err(|e| Error::io(format!("cannot grow the receive buffer on {}", rx.name), e))?;
    let tx_sock = tx.socket()?;
    let (first, rest) = frames.split_at(frames.len() / 2);
    std::thread::scope(|s| {
        let sender = s.spawn(|| -> Result<()> {
            let paced = |frames: &[F]| -> Result<()> {
                for burst in frames.chunks(BURST) {
                    for frame in burst {
                        send(&tx_sock, tx, frame.as_ref())?;
                    }
                    std::thread::sleep(Duration::from_micros(500));
                }
                Ok(())
            };
            paced(first)?;
            during();
            paced(rest)
        });
        let got = collect(&rx_sock, rx, expected(frames, marker), marker, timeout);
        // Frames the socket itself dropped are the harness's loss, not the
        // system's under test: say so rather than count them missing.
        let dropped = rx_sock
            .drops()
            .map_err(|e| Error::io(format!("cannot read drops on {}", rx.name), e))?;
        if dropped > 0 {
            return Err(Error::Invalid(format!(
                "the receiving socket on {} dropped {dropped} frames (its buffer was full)",
                rx.name
            )));
        }
        match sender.join() {
            Ok(sent) => sent.and(got),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// A socket on `rx` that sees only frames coming in.
fn incoming(rx: &Link) -> Result<crate::PacketSocket> {
    let mut sock = rx.socket()?;
    sock.set_incoming_only(true)
        .map_err(|e| Error::io(format!("cannot set incoming-only on {}", rx.name), e))?;
    Ok(sock)
}

fn send(sock: &crate::PacketSocket, tx: &Link, frame: &[u8]) -> Result<()> {
    sock.send(frame)
        .map_err(|e| Error::io(format!("cannot send on {}", tx.name), e))
}

/// How many of `frames` carry `marker`.
fn expected<F: AsRef<[u8]>>(frames: &[F], marker: &Marker) -> usize {
    frames.iter().filter(|f| marker.is_in(f.as_ref())).count()
}

/// Receives until `expected` frames carrying `marker` came in, or
/// `timeout` passed.
fn collect(
    sock: &crate::PacketSocket,
    rx: &Link,
    expected: usize,
    marker: &Marker,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>> {
    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    let mut buf = vec![0u8; MAX_FRAME];
    while received.len() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        match sock
            .recv(&mut buf, left)
            .map_err(|e| Error::io(format!("cannot receive on {}", rx.name), e))?
        {
            None => break,
            Some(n) if marker.is_in(&buf[..n]) => received.push(buf[..n].to_vec()),
            Some(_) => {}
        }
    }
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_found_anywhere_and_only_whole() {
        let m = Marker([7; 16]);
        let mut frame = vec![0u8; 40];
        assert!(!m.is_in(&frame));
        frame[20..36].copy_from_slice(&[7; 16]);
        assert!(m.is_in(&frame));
        assert!(!m.is_in(&frame[21..]));
        assert!(!m.is_in(&[7; 15]));
    }

    #[test]
    fn markers_differ() {
        assert_ne!(Marker::new().unwrap(), Marker::new().unwrap());
    }
}
