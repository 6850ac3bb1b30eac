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
//! // The next record, waiting for it at most a second.
//! if let Some(record) = ring.next_record_timeout(Duration::from_secs(1))? {
//!     println!("{record:?}");
//! }
//! # Ok(()) }
//! ```
//!
//! Records the producer discarded (`bpf_ringbuf_discard`) are skipped. A
//! record still being written stops the reader until it is submitted, as
//! it does in libbpf: records are read in order.

use std::io;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

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
    /// Bytes of the record last returned, given back to the kernel on the
    /// next read (the record's slice borrows the reader until then).
    pending: u64,
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
        Ok(RingBuf {
            map,
            mem,
            pending: 0,
        })
    }

    /// The size of the data area in bytes.
    pub fn size(&self) -> u64 {
        self.mem.size()
    }

    /// Bytes written by the producer and not yet consumed (headers,
    /// padding and discarded records included).
    pub fn available(&self) -> u64 {
        self.mem
            .producer_pos()
            .saturating_sub(self.mem.consumer_pos() + self.pending)
    }

    fn corrupt(&self, source: io::Error) -> RingBufError {
        RingBufError::Corrupt {
            map: self.map.name().to_string(),
            source,
        }
    }

    /// Gives the record last returned back to the kernel.
    fn release(&mut self) {
        if self.pending != 0 {
            self.mem.advance(self.pending);
            self.pending = 0;
        }
    }

    /// The next record, if one is ready, without waiting. Its bytes stay
    /// in the ring buffer until the next call (or until the reader is
    /// dropped), and the producer cannot overwrite them meanwhile.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, RingBufError> {
        self.release();
        while let Peek::Record {
            discarded: true,
            advance,
            ..
        } = self.mem.peek().map_err(|e| self.corrupt(e))?
        {
            self.mem.advance(advance);
        }
        match self.mem.peek() {
            Ok(Peek::Record {
                data,
                discarded: false,
                advance,
            }) => {
                self.pending = advance;
                Ok(Some(data))
            }
            // Discarded just now: the next call skips it.
            Ok(_) => Ok(None),
            Err(e) => Err(RingBufError::Corrupt {
                map: self.map.name().to_string(),
                source: e,
            }),
        }
    }

    /// Calls `f` with every record that is ready, without waiting;
    /// returns how many there were.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> Result<usize, RingBufError> {
        let mut n = 0;
        while let Some(record) = self.next_record()? {
            f(record);
            n += 1;
        }
        Ok(n)
    }

    /// Waits until the producer has written something not yet consumed,
    /// at most `timeout` (`None`: as long as it takes). `false` on
    /// timeout.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, RingBufError> {
        self.release();
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
            if self.next_record()?.is_some() {
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
        // Read again: the borrow of the record cannot leave the loop.
        self.pending = 0;
        self.next_record()
    }
}

impl Drop for RingBuf {
    fn drop(&mut self) {
        self.release();
    }
}
