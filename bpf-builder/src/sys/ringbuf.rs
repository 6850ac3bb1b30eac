//! The memory of a `BPF_MAP_TYPE_RINGBUF` map as user space sees it, and
//! the consumer's side of the kernel's protocol over it
//! (`kernel/bpf/ringbuf.c`):
//!
//! - page 0 of the map (mapped read-write): the consumer position, a
//!   `u64` that only user space writes;
//! - page 1 (mapped read-only, as the kernel insists): the producer
//!   position, a `u64` that only the kernel writes;
//! - from page 2: the data area, `size` bytes mapped twice in a row, so a
//!   record that wraps around the end reads as one contiguous slice.
//!
//! Positions only grow; `pos & (size - 1)` is the offset in the data area.
//! Each record starts with an 8-byte header: a `u32` length whose bit 31
//! says the producer is still writing it ([`BUSY_BIT`]) and bit 30 that
//! it was discarded ([`DISCARD_BIT`]), then a `u32` the kernel keeps for
//! itself. Records take `round_up(8 + len, 8)` bytes. The kernel
//! publishes the producer position and each header with release stores;
//! the consumer reads them with acquire loads, and releases the bytes of
//! the records it has read by storing a larger consumer position.
//!
//! [`RingMemory::peek`] hands out the bytes of the record at the consumer
//! position, borrowed from the mapping; [`RingMemory::advance`] (which
//! takes `&mut self`, so no such borrow outlives it) gives them back to
//! the kernel. Between the two the kernel writes none of those bytes, so
//! the shared slice is never written while it is read.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Header bit: the producer has reserved the record and not yet
/// submitted or discarded it.
pub const BUSY_BIT: u32 = 1 << 31;
/// Header bit: the producer discarded the record (skip it).
pub const DISCARD_BIT: u32 = 1 << 30;
/// Bytes of a record's header.
pub const HEADER_SIZE: u64 = 8;

/// One `mmap` of a file descriptor, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of `fd` from `offset`, shared, with `prot`.
    fn new(fd: BorrowedFd<'_>, len: usize, offset: usize, prot: libc::c_int) -> io::Result<Self> {
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "mmap offset too large"))?;
        // SAFETY: a fresh mapping at an address the kernel chooses (NULL
        // hint), of a file descriptor that is open for the call; it
        // aliases no Rust object. The result is checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p.cast::<u8>())
            .ok_or_else(|| io::Error::other("mmap returned a null mapping"))?;
        Ok(Mapping { ptr, len })
    }

    /// The `u64` at byte `off`, which the kernel may change at any time,
    /// as an atomic.
    fn atomic_u64(&self, off: usize) -> &AtomicU64 {
        assert!(
            off.is_multiple_of(8) && off + 8 <= self.len,
            "u64 at {off} of {}",
            self.len
        );
        // SAFETY: the mapping is page-aligned and `off` is a multiple of
        // 8 within it (checked above), so the pointer is valid and aligned
        // for an `AtomicU64` for as long as `self` lives; all accesses to
        // that word, ours and the kernel's, are atomic.
        unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU64>() }
    }

    /// The `u32` at byte `off`, as an atomic.
    fn atomic_u32(&self, off: usize) -> &AtomicU32 {
        assert!(
            off.is_multiple_of(4) && off + 4 <= self.len,
            "u32 at {off} of {}",
            self.len
        );
        // SAFETY: as in `atomic_u64`, for 4 aligned bytes in the mapping.
        unsafe { &*self.ptr.as_ptr().add(off).cast::<AtomicU32>() }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what `mmap` returned, unmapped
        // once; every borrow of the mapping borrows `self`, so none is left.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// SAFETY: the mapping is plain shared memory, not tied to a thread; all
// access goes through `&self` atomics or slices whose bytes nobody writes
// while they are borrowed (see the module documentation).
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only gives atomic access or such slices.
unsafe impl Sync for Mapping {}

/// The size of a page, the unit of the ring buffer's mappings.
pub fn page_size() -> usize {
    // SAFETY: `sysconf` reads a constant of the system; no memory is
    // involved.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// What the consumer finds at its position.
#[derive(Debug, PartialEq, Eq)]
pub enum Peek<'a> {
    /// No record: the consumer has caught up with the producer.
    Empty,
    /// The next record is still being written.
    Busy,
    /// A record: its bytes (empty when discarded), whether the producer
    /// discarded it, and how far the consumer moves past it.
    Record {
        /// The record's bytes, after its header.
        data: &'a [u8],
        /// The producer discarded it: `data` is empty, skip it.
        discarded: bool,
        /// The header and data rounded up to 8 bytes.
        advance: u64,
    },
}

/// The mapped memory of one ring buffer map.
#[derive(Debug)]
pub struct RingMemory {
    consumer: Mapping,
    producer: Mapping,
    /// Size of the data area (the map's `max_entries`, a power of two).
    size: u64,
    page: usize,
}

impl RingMemory {
    /// Maps the ring buffer map `fd` of `size` data bytes (its
    /// `max_entries`: a power of two, a multiple of the page size).
    pub fn map(fd: BorrowedFd<'_>, size: u32) -> io::Result<RingMemory> {
        let page = page_size();
        if !size.is_power_of_two() || (size as usize) < page {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("ring buffer size {size} is not a power of two of at least a page"),
            ));
        }
        let consumer = Mapping::new(fd, page, 0, libc::PROT_READ | libc::PROT_WRITE)?;
        let producer = Mapping::new(fd, page + 2 * size as usize, page, libc::PROT_READ)?;
        Ok(RingMemory {
            consumer,
            producer,
            size: u64::from(size),
            page,
        })
    }

    /// The data area's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The consumer position.
    pub fn consumer_pos(&self) -> u64 {
        self.consumer.atomic_u64(0).load(Ordering::Acquire)
    }

    /// The producer position.
    pub fn producer_pos(&self) -> u64 {
        self.producer.atomic_u64(0).load(Ordering::Acquire)
    }

    /// The record at the consumer position, if the producer has
    /// published one.
    pub fn peek(&self) -> io::Result<Peek<'_>> {
        let cons = self.consumer_pos();
        let prod = self.producer_pos();
        if cons >= prod {
            return Ok(Peek::Empty);
        }
        let off = self.page + (cons & (self.size - 1)) as usize;
        let header = self.producer.atomic_u32(off).load(Ordering::Acquire);
        if header & BUSY_BIT != 0 {
            return Ok(Peek::Busy);
        }
        let len = u64::from(header & !(BUSY_BIT | DISCARD_BIT));
        let advance = (HEADER_SIZE + len).next_multiple_of(8);
        if len > self.size || cons + advance > prod {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "ring buffer record of {len} bytes at {cons} runs past the producer ({prod})"
                ),
            ));
        }
        let discarded = header & DISCARD_BIT != 0;
        let start = off + HEADER_SIZE as usize;
        let data_len = if discarded { 0 } else { len as usize };
        // The data area is mapped twice: `start - page < size` and
        // `len <= size`, so the record ends within the mapping.
        assert!(start + data_len <= self.producer.len);
        // SAFETY: the bytes lie within the producer mapping (checked just
        // above). The kernel wrote them before the release store of the
        // header we read with acquire ordering, and writes them again only
        // after the consumer position moves past them, which needs
        // `advance(&mut self)`: this `&self` borrow rules that out while
        // the slice lives. Nothing in this process writes the read-only
        // mapping.
        let data =
            unsafe { std::slice::from_raw_parts(self.producer.ptr.as_ptr().add(start), data_len) };
        Ok(Peek::Record {
            data,
            discarded,
            advance,
        })
    }

    /// Gives the `by` bytes at the consumer position back to the kernel.
    pub fn advance(&mut self, by: u64) {
        let pos = self.consumer_pos() + by;
        self.consumer.atomic_u64(0).store(pos, Ordering::Release);
    }
}

/// Waits until `fd` is readable (a ring buffer: has data), at most
/// `timeout` (`None`: forever). `false` on timeout; an interrupted wait
/// counts as a timeout.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    let ms = match timeout {
        None => -1,
        // Rounded up: a wait of 0.5 ms must not become a poll.
        Some(t) => {
            libc::c_int::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(libc::c_int::MAX)
        }
    };
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid `pollfd` that lives for the call; the count is 1.
    let n = unsafe { libc::poll(&raw mut pfd, 1, ms) };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(n > 0 && pfd.revents & libc::POLLIN != 0)
}
