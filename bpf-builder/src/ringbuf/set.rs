//! Several ring buffers waited on at once, with one epoll file
//! descriptor: the wait says which buffers have data.

use std::os::fd::AsFd;
use std::time::Duration;

use super::{RingBuf, RingBufError};
use crate::sys::epoll::Epoll;

/// Ring buffer readers waited on together.
///
/// ```no_run
/// use std::time::Duration;
/// use bpf_builder::ringbuf::{RingBuf, RingBufSet};
/// # fn f(a: &bpf_builder::handle::Map, b: &bpf_builder::handle::Map) -> Result<(), bpf_builder::ringbuf::RingBufError> {
/// let mut set = RingBufSet::new()?;
/// let first = set.add(RingBuf::new(a)?)?;
/// set.add(RingBuf::new(b)?)?;
/// for i in set.wait(Some(Duration::from_secs(1)))?.to_vec() {
///     let ring = set.ring(i).expect("an index the set gave");
///     ring.drain(|record| println!("buffer {i} (first: {}): {record:?}", i == first))?;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RingBufSet {
    rings: Vec<RingBuf>,
    epoll: Epoll,
    tokens: Vec<u64>,
    ready: Vec<usize>,
}

impl RingBufSet {
    /// An empty set.
    pub fn new() -> Result<RingBufSet, RingBufError> {
        let epoll = Epoll::new().map_err(|source| RingBufError::Poll { source })?;
        Ok(RingBufSet {
            rings: Vec::new(),
            epoll,
            tokens: Vec::new(),
            ready: Vec::new(),
        })
    }

    /// Adds `ring` to the set; returns its index.
    pub fn add(&mut self, ring: RingBuf) -> Result<usize, RingBufError> {
        let index = self.rings.len();
        self.epoll
            .add(ring.map.as_fd(), index as u64)
            .map_err(|source| RingBufError::Wait {
                map: ring.name().to_string(),
                source,
            })?;
        self.rings.push(ring);
        Ok(index)
    }

    /// How many ring buffers the set holds.
    pub fn len(&self) -> usize {
        self.rings.len()
    }

    /// Whether the set holds none.
    pub fn is_empty(&self) -> bool {
        self.rings.is_empty()
    }

    /// The reader of index `index`.
    pub fn ring(&mut self, index: usize) -> Option<&mut RingBuf> {
        self.rings.get_mut(index)
    }

    /// Waits until at least one ring buffer has data not yet read, at
    /// most `timeout` (`None`: as long as it takes), and returns the
    /// indexes of those that have (empty on timeout). Records already
    /// returned by the readers go back to the kernel first. As with
    /// [`RingBuf::wait`], a buffer whose next record is still being
    /// written counts as having data.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<&[usize], RingBufError> {
        self.ready.clear();
        for (i, ring) in self.rings.iter_mut().enumerate() {
            ring.mem.commit();
            ring.mem.before_sleep();
            if ring.available() > 0 {
                self.ready.push(i);
            }
        }
        if self.ready.is_empty() {
            self.epoll
                .wait(&mut self.tokens, self.rings.len(), timeout)
                .map_err(|source| RingBufError::Poll { source })?;
            self.ready.extend(self.tokens.iter().map(|&t| t as usize));
            self.ready.sort_unstable();
        }
        Ok(&self.ready)
    }

    /// Calls `f` with the index of the ring buffer and every record that
    /// is ready in any of them, without waiting, as [`RingBuf::drain`]
    /// does for one; returns how many records there were.
    pub fn drain(&mut self, mut f: impl FnMut(usize, &[u8])) -> Result<usize, RingBufError> {
        let mut n = 0;
        for (i, ring) in self.rings.iter_mut().enumerate() {
            n += ring.drain(|record| f(i, record))?;
        }
        Ok(n)
    }
}
