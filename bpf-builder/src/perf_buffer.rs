//! A reader of perf event arrays (`BPF_MAP_TYPE_PERF_EVENT_ARRAY`): the
//! samples programs write with `bpf_perf_event_output`, one ring per
//! CPU, and the counts of those the kernel had no room for.
//!
//! [`PerfBuffer::new`] opens a `PERF_COUNT_SW_BPF_OUTPUT` perf event on
//! every online CPU (sampling `PERF_SAMPLE_RAW`), maps its ring, puts its
//! fd in the map's slot for that CPU and waits on all of them with one
//! epoll fd. [`PerfBuffer::drain`] hands out each sample's bytes in
//! place, or copied once when the sample wraps around the end of its
//! ring, and reports `PERF_RECORD_LOST` records as counts: a sample is
//! either delivered once or counted lost.
//!
//! ```no_run
//! use std::time::Duration;
//! use bpf_builder::perf_buffer::{PerfBuffer, PerfBufferOptions, PerfEvent};
//! # fn f(map: &bpf_builder::handle::Map) -> Result<(), bpf_builder::perf_buffer::PerfBufferError> {
//! let mut perf = PerfBuffer::new(map, &PerfBufferOptions::new().pages(8))?;
//! while perf.wait(Some(Duration::from_secs(1)))? {
//!     perf.drain(|event| match event {
//!         PerfEvent::Sample { cpu, data } => println!("CPU {cpu}: {data:?}"),
//!         PerfEvent::Lost { cpu, count } => println!("CPU {cpu}: {count} lost"),
//!     })?;
//! }
//! # Ok(()) }
//! ```
//!
//! A sample's data is as long as the kernel's raw record: the program's
//! bytes followed by up to 7 bytes of padding (the kernel rounds the raw
//! size plus its u32 length up to 8 bytes) whose values are whatever the
//! ring held there before: programs that need the exact length write it
//! into their data.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use aya_obj::generated::perf_event_type;

use crate::attach::perf_event::online_cpus;
use crate::handle::{Map, MapError, UpdateFlags};
use crate::map::MapType;
use crate::sys::epoll::Epoll;
pub use crate::sys::perf::Wakeup;
use crate::sys::perf::{PerfEventAttr, perf_event_open, perf_sw_ids, perf_type_id};
use crate::sys::perf_ring::PerfRing;

/// `PERF_SAMPLE_RAW`.
const SAMPLE_RAW: u64 = 1 << 10;

/// Why a perf event array cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PerfBufferError {
    /// The map is not a perf event array.
    #[error("map `{map}` is not a perf event array (kernel map type {kernel_type})")]
    NotAPerfEventArray {
        /// The map's name.
        map: String,
        /// Its kernel map type.
        kernel_type: u32,
    },
    /// The options make no ring.
    #[error("perf buffer options: {0}")]
    Options(String),
    /// Listing the online CPUs, opening an event or mapping its ring
    /// failed.
    #[error("perf buffer of map `{map}`, CPU {cpu}: {source}")]
    Cpu {
        /// The map's name.
        map: String,
        /// The CPU (`u32::MAX` when listing them failed).
        cpu: u32,
        /// The system's error.
        source: io::Error,
    },
    /// The map has no slot for a CPU, or the slot cannot be written.
    #[error("perf buffer of map `{map}`, CPU {cpu}: {source}")]
    Slot {
        /// The map's name.
        map: String,
        /// The CPU.
        cpu: u32,
        /// What the map said.
        source: MapError,
    },
    /// Waiting with epoll failed.
    #[error("cannot wait for perf buffer `{map}`: {source}")]
    Poll {
        /// The map's name.
        map: String,
        /// The system's error.
        source: io::Error,
    },
    /// A record makes no sense (the memory is not what the kernel
    /// writes).
    #[error("perf buffer `{map}`, CPU {cpu}: {source}")]
    Corrupt {
        /// The map's name.
        map: String,
        /// The CPU.
        cpu: u32,
        /// What is wrong.
        source: io::Error,
    },
}

/// How the rings are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfBufferOptions {
    pages: usize,
    wakeup: Wakeup,
}

impl Default for PerfBufferOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl PerfBufferOptions {
    /// 8 data pages per CPU, a wakeup for every sample.
    pub fn new() -> Self {
        PerfBufferOptions {
            pages: 8,
            wakeup: Wakeup::Events(1),
        }
    }

    /// Data pages per CPU ring: a power of two.
    pub fn pages(mut self, pages: usize) -> Self {
        self.pages = pages;
        self
    }

    /// When a waiting reader wakes.
    pub fn wakeup(mut self, wakeup: Wakeup) -> Self {
        self.wakeup = wakeup;
        self
    }
}

/// What a ring holds.
#[derive(Debug, PartialEq, Eq)]
pub enum PerfEvent<'a> {
    /// A sample's raw data (see the module documentation for padding).
    Sample {
        /// The CPU whose ring it was in.
        cpu: u32,
        /// Its bytes, borrowed from the ring (or a copy if it wrapped).
        data: &'a [u8],
    },
    /// Samples the kernel had no room for in `cpu`'s ring since the
    /// last such report.
    Lost {
        /// The CPU.
        cpu: u32,
        /// How many.
        count: u64,
    },
}

/// One CPU's event and ring.
#[derive(Debug)]
struct CpuRing {
    cpu: u32,
    ring: PerfRing,
    event: OwnedFd,
}

/// The reader of one perf event array's rings, on every online CPU.
#[derive(Debug)]
pub struct PerfBuffer {
    map: Map,
    rings: Vec<CpuRing>,
    epoll: Epoll,
    tokens: Vec<u64>,
    scratch: Vec<u8>,
    lost: u64,
    wrapped: u64,
}

impl PerfBuffer {
    /// Opens a ring on every online CPU and puts them in `map`, a perf
    /// event array with a slot for each (a reader of its own holds the
    /// map; dropping it empties the slots).
    pub fn new(map: &Map, options: &PerfBufferOptions) -> Result<PerfBuffer, PerfBufferError> {
        let name = map.name().to_string();
        if MapType::from_kernel_type(map.kernel_type()) != Some(MapType::PerfEventArray) {
            return Err(PerfBufferError::NotAPerfEventArray {
                map: name,
                kernel_type: map.kernel_type(),
            });
        }
        if !options.pages.is_power_of_two() {
            return Err(PerfBufferError::Options(format!(
                "{} data pages: a power of two is needed",
                options.pages
            )));
        }
        let cpu_err = |cpu: u32| {
            let name = name.clone();
            move |source| PerfBufferError::Cpu {
                map: name,
                cpu,
                source,
            }
        };
        let poll_err = |source| PerfBufferError::Poll {
            map: name.clone(),
            source,
        };
        let mut reader = PerfBuffer {
            map: map.try_clone().map_err(cpu_err(u32::MAX))?,
            rings: Vec::new(),
            epoll: Epoll::new().map_err(poll_err)?,
            tokens: Vec::new(),
            scratch: Vec::new(),
            lost: 0,
            wrapped: 0,
        };
        let mut attr = PerfEventAttr::new(
            perf_type_id::PERF_TYPE_SOFTWARE as u32,
            perf_sw_ids::PERF_COUNT_SW_BPF_OUTPUT as u64,
        );
        attr.sample_type = SAMPLE_RAW;
        attr.wakeup = options.wakeup;
        for cpu in online_cpus().map_err(cpu_err(u32::MAX))? {
            let cpu_i32 = i32::try_from(cpu).map_err(|_| {
                cpu_err(cpu)(io::Error::new(io::ErrorKind::InvalidData, "CPU number"))
            })?;
            let event = perf_event_open(&attr, -1, cpu_i32).map_err(cpu_err(cpu))?;
            let ring = PerfRing::map(event.as_fd(), options.pages).map_err(cpu_err(cpu))?;
            let fd = u32::try_from(event.as_raw_fd()).unwrap_or(u32::MAX);
            // Pushed first, so that dropping the reader on an error below
            // empties the slots written so far.
            reader.rings.push(CpuRing { cpu, ring, event });
            reader
                .map
                .update(&cpu.to_ne_bytes(), &fd.to_ne_bytes(), UpdateFlags::Any)
                .map_err(|source| PerfBufferError::Slot {
                    map: name.clone(),
                    cpu,
                    source,
                })?;
            let index = reader.rings.len() as u64 - 1;
            let event = &reader.rings[index as usize].event;
            reader
                .epoll
                .add(event.as_fd(), index)
                .map_err(|source| PerfBufferError::Poll {
                    map: name.clone(),
                    source,
                })?;
        }
        Ok(reader)
    }

    /// The CPUs read, in order.
    pub fn cpus(&self) -> impl Iterator<Item = u32> + '_ {
        self.rings.iter().map(|r| r.cpu)
    }

    /// The size of each CPU's ring in bytes.
    pub fn ring_size(&self) -> u64 {
        self.rings.first().map_or(0, |r| r.ring.data_size())
    }

    /// The samples reported lost so far (the sum of the counts of every
    /// [`PerfEvent::Lost`] handed out).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// The records so far that wrapped around the end of their ring and
    /// were copied.
    pub fn wrapped(&self) -> u64 {
        self.wrapped
    }

    /// Waits until a ring has records not yet read, at most `timeout`
    /// (`None`: as long as it takes); `false` on timeout. Records handed
    /// out before go back to the kernel first. The kernel wakes the wait
    /// as [`PerfBufferOptions::wakeup`] says.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, PerfBufferError> {
        for r in &mut self.rings {
            r.ring.commit();
        }
        if self.rings.iter().any(|r| r.ring.available() > 0) {
            return Ok(true);
        }
        self.epoll
            .wait(&mut self.tokens, self.rings.len(), timeout)
            .map_err(|source| PerfBufferError::Poll {
                map: self.map.name().to_string(),
                source,
            })?;
        Ok(!self.tokens.is_empty())
    }

    /// Calls `f` with every record of every ring, without waiting; each
    /// goes back to the kernel as soon as `f` returns. Returns how many
    /// samples there were.
    pub fn drain(&mut self, mut f: impl FnMut(PerfEvent<'_>)) -> Result<usize, PerfBufferError> {
        let mut samples = 0;
        let PerfBuffer {
            map,
            rings,
            scratch,
            lost,
            wrapped,
            ..
        } = self;
        for r in rings.iter_mut() {
            let cpu = r.cpu;
            let corrupt = |source| PerfBufferError::Corrupt {
                map: map.name().to_string(),
                cpu,
                source,
            };
            loop {
                r.ring.commit();
                let Some(record) = r.ring.next(scratch).map_err(corrupt)? else {
                    break;
                };
                *wrapped += u64::from(record.wrapped);
                if let Some(event) = decode(cpu, record.type_, record.body).map_err(corrupt)? {
                    match event {
                        PerfEvent::Sample { .. } => samples += 1,
                        PerfEvent::Lost { count, .. } => *lost += count,
                    }
                    f(event);
                }
            }
        }
        Ok(samples)
    }
}

/// The event a record of `type_` with `body` says, if it is a sample or
/// a lost count (other records are skipped).
fn decode(cpu: u32, type_: u32, body: &[u8]) -> io::Result<Option<PerfEvent<'_>>> {
    let short = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "perf record of type {type_} is too short ({} bytes)",
                body.len()
            ),
        )
    };
    let u64_at = |off: usize| -> io::Result<u64> {
        let b = body.get(off..off + 8).ok_or_else(short)?;
        Ok(u64::from_ne_bytes(b.try_into().map_err(|_| short())?))
    };
    if type_ == perf_event_type::PERF_RECORD_SAMPLE as u32 {
        let size = body.get(..4).ok_or_else(short)?;
        let size = u32::from_ne_bytes(size.try_into().map_err(|_| short())?) as usize;
        let data = body.get(4..4 + size).ok_or_else(short)?;
        Ok(Some(PerfEvent::Sample { cpu, data }))
    } else if type_ == perf_event_type::PERF_RECORD_LOST as u32 {
        // u64 id, u64 lost.
        Ok(Some(PerfEvent::Lost {
            cpu,
            count: u64_at(8)?,
        }))
    } else {
        Ok(None)
    }
}

impl Drop for PerfBuffer {
    fn drop(&mut self) {
        for r in &self.rings {
            // The slot may already hold another reader's event; a
            // failure leaves nothing to undo.
            let _ = self.map.delete(&r.cpu.to_ne_bytes());
        }
    }
}
