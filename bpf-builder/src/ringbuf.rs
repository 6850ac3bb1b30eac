//! A reader of ring buffer maps (`BPF_MAP_TYPE_RINGBUF`): the records
//! that programs write with `bpf_ringbuf_output` or
//! `bpf_ringbuf_reserve` and `bpf_ringbuf_submit`, in the order they were
//! reserved, without copying them out of the shared memory.
//!
//! ```no_run
//! use std::time::Duration;
//! use bpf_builder::ringbuf::RingBuf;
//! # fn f(map: &bpf_builder::handle::Map) -> Result<(), bpf_builder::ringbuf::RingBufError> {
//! let mut ring = RingBuf::new(map)?;
//! // What is there now.
//! let n = ring.drain(|record| println!("{} bytes", record.len()))?;
//! // The same, as an iterator of borrowed records.
//! for record in ring.iter() {
//!     println!("{:?}", record?);
//! }
//! // The next record, waiting for it at most a second.
//! if let Some(record) = ring.next_record_timeout(Duration::from_secs(1))? {
//!     println!("{record:?}");
//! }
//! # Ok(()) }
//! ```
//!
//! [`RingBufSet`] waits on several ring buffers with one epoll file
//! descriptor. Memory ordering and the kernel's protocol are described in
//! [`crate::sys::ringbuf`].
//!
//! Records the producer discarded (`bpf_ringbuf_discard`) are skipped. A
//! record still being written stops the reader until it is submitted, as
//! it does in libbpf: records are read in order.

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

mod set;

pub use set::RingBufSet;

use crate::handle::Map;
use crate::map::MapType;
use crate::sys::ringbuf::{Peek, RingMemory, wait_readable};

/// Why a ring buffer cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum RingBufError {
    /// The map is not a ring buffer.
    #[error("map `{map}` is not a ring buffer (kernel map type {kernel_type})")]
    NotARingBuf {
        /// The map's name.
        map: String,
        /// Its kernel map type.
        kernel_type: u32,
    },
    /// Mapping its memory failed.
    #[error("cannot map the memory of ring buffer `{map}`: {source}")]
    Map {
        /// The map's name.
        map: String,
        /// The system's error.
        source: io::Error,
    },
    /// The epoll instance of a [`RingBufSet`] failed.
    #[error("cannot wait for ring buffers: {source}")]
    Poll {
        /// The system's error.
        source: io::Error,
    },
    /// Waiting for data failed.
    #[error("cannot wait for ring buffer `{map}`: {source}")]
    Wait {
        /// The map's name.
        map: String,
        /// The system's error.
        source: io::Error,
    },
    /// A record header makes no sense (the memory is not what the kernel
    /// writes).
    #[error("ring buffer `{map}`: {source}")]
    Corrupt {
        /// The map's name.
        map: String,
        /// What is wrong.
        source: io::Error,
    },
}

/// The consumer of one ring buffer map.
#[derive(Debug)]
pub struct RingBuf {
    map: Map,
    mem: RingMemory,
}

impl RingBuf {
    /// A reader of `map`, which must be a ring buffer. It holds a handle
    /// of its own to the map. Several readers of one map would consume
    /// each other's records: use one.
    pub fn new(map: &Map) -> Result<RingBuf, RingBufError> {
        if MapType::from_kernel_type(map.kernel_type()) != Some(MapType::RingBuf) {
            return Err(RingBufError::NotARingBuf {
                map: map.name().to_string(),
                kernel_type: map.kernel_type(),
            });
        }
        let map_err = |source| RingBufError::Map {
            map: map.name().to_string(),
            source,
        };
        let map = map.try_clone().map_err(map_err)?;
        let mem = RingMemory::map(map.as_fd(), map.max_entries()).map_err(map_err)?;
        Ok(RingBuf { map, mem })
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        self.map.name()
    }

    /// The size of the data area in bytes.
    pub fn size(&self) -> u64 {
        self.mem.size()
    }

    /// Bytes written by the producer and not yet read (headers, padding,
    /// discarded records and records still being written included).
    pub fn available(&self) -> u64 {
        self.mem.producer_pos().saturating_sub(self.mem.read_pos())
    }

    fn corrupt(&self, source: io::Error) -> RingBufError {
        RingBufError::Corrupt {
            map: self.map.name().to_string(),
            source,
        }
    }

    /// The next record, if one is ready, without waiting. Its bytes stay
    /// in the ring buffer until the next call (or until the reader is
    /// dropped), and the producer cannot overwrite them meanwhile.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, RingBufError> {
        self.mem.commit();
        next_in(&self.mem).map_err(|e| self.corrupt(e))
    }

    /// The records that are ready, without waiting, borrowed in place:
    /// the ring buffer gives them all back to the kernel when the reader
    /// is next used (or dropped), since each stays borrowed until then.
    /// To give them back while handling them (and leave the producer
    /// more room), use [`RingBuf::drain`].
    pub fn iter(&mut self) -> Records<'_> {
        self.mem.commit();
        Records {
            ring: self,
            failed: false,
        }
    }

    /// Calls `f` with every record that is ready, without waiting,
    /// borrowed in place (no copy). Records go back to the kernel as
    /// the drain goes, a few KiB at a time (libbpf gives back each one),
    /// and all of them by the time it returns. Returns how many there
    /// were.
    pub fn drain(&mut self, f: impl FnMut(&[u8])) -> Result<usize, RingBufError> {
        self.mem.consume(f).map_err(|e| self.corrupt(e))
    }

    /// Waits until the producer has written something not yet read, at
    /// most `timeout` (`None`: as long as it takes). `false` on timeout.
    /// A record still being written counts as something: the wait
    /// returns at once while one is at the head.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, RingBufError> {
        self.mem.commit();
        self.mem.before_sleep();
        if self.available() > 0 {
            return Ok(true);
        }
        wait_readable(self.map.as_fd(), timeout).map_err(|source| RingBufError::Wait {
            map: self.map.name().to_string(),
            source,
        })
    }

    /// The next record, waiting for one at most `timeout`: `None` when
    /// none came in time.
    pub fn next_record_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<&[u8]>, RingBufError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.mem.commit();
            if self.has_record().map_err(|e| self.corrupt(e))? {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            if self.available() > 0 {
                // A record is being written: the kernel does not wake us
                // for its submission if data was there already.
                std::thread::sleep(left.min(Duration::from_micros(50)));
            } else {
                self.wait(Some(left))?;
            }
        }
        self.next_record()
    }

    /// Whether a record is ready at the read position (skipping the
    /// discarded ones before it).
    fn has_record(&self) -> io::Result<bool> {
        loop {
            match self.mem.peek()? {
                Peek::Record {
                    discarded: true, ..
                } => {
                    self.mem.next()?;
                }
                Peek::Record { .. } => return Ok(true),
                Peek::Empty | Peek::Busy => return Ok(false),
            }
        }
    }
}

/// The next record of `mem` that is not discarded, if one is ready.
#[inline]
fn next_in(mem: &RingMemory) -> io::Result<Option<&[u8]>> {
    loop {
        match mem.next()? {
            Peek::Record {
                discarded: true, ..
            } => {}
            Peek::Record { data, .. } => return Ok(Some(data)),
            Peek::Empty | Peek::Busy => return Ok(None),
        }
    }
}

/// The records of a [`RingBuf`] that are ready, from [`RingBuf::iter`].
#[derive(Debug)]
pub struct Records<'a> {
    ring: &'a RingBuf,
    failed: bool,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<&'a [u8], RingBufError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match next_in(&self.ring.mem) {
            Ok(record) => record.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(self.ring.corrupt(e)))
            }
        }
    }
}

impl Drop for RingBuf {
    fn drop(&mut self) {
        self.mem.commit();
    }
}
