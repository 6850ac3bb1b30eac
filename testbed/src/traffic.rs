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
    let mut rx_sock = rx.socket()?;
    rx_sock
        .set_incoming_only(true)
        .map_err(|e| Error::io(format!("cannot set incoming-only on {}", rx.name), e))?;
    let tx_sock = tx.socket()?;
    let expected = frames.iter().filter(|f| marker.is_in(f.as_ref())).count();
    for frame in frames {
        tx_sock
            .send(frame.as_ref())
            .map_err(|e| Error::io(format!("cannot send on {}", tx.name), e))?;
    }

    let deadline = Instant::now() + timeout;
    let mut received = Vec::new();
    let mut buf = vec![0u8; MAX_FRAME];
    while received.len() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx_sock
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
