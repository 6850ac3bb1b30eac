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
//! Memory ordering, checked against `kernel/bpf/ringbuf.c` (Linux 6.18):
//! the producer advances `producer_pos` with `smp_store_release` when it
//! reserves, and publishes a record by clearing the busy bit with `xchg`
//! (a full barrier), then reads `consumer_pos` with `smp_load_acquire`
//! and wakes waiters only if the consumer had caught up with that record.
//! The consumer therefore needs acquire loads of `producer_pos` and of
//! each header (so the record's bytes are visible once its busy bit reads
//! clear) and a release store of `consumer_pos` (so the kernel reuses the
//! bytes only after they were read). The bug libbpf carried until 2023
//! (the "fix ringbuf synchronization" series) was a store-load reordering:
//! the consumer's store of `consumer_pos` could pass its next load of a
//! header, so consumer and producer each saw the other's stale value, the
//! producer sent no wakeup and an edge-triggered wait slept on a ready
//! record. This reader waits level-triggered (`poll`/`epoll` report
//! readable while `producer_pos != consumer_pos`, busy records included),
//! which cannot lose that wakeup, and still puts a sequentially
//! consistent fence between its last store of `consumer_pos` and the
//! loads that decide to sleep ([`RingMemory::before_sleep`]).
//!
//! [`RingMemory::next`] hands out the bytes of the record at the read
//! position, borrowed from the mapping, and moves the read position past
//! it; [`RingMemory::commit`] (which takes `&mut self`, so no such borrow
//! outlives it) gives every record read so far back to the kernel.
//! Between the two the kernel writes none of those bytes, so the shared
//! slice is never written while it is read. [`RingMemory::consume`] is
//! the fast loop: it stores the consumer position once per few KiB
//! rather than per record (see there).
//!
//! Speed: reading a record is a chain of dependent loads (each header
//! says where the next one is), so the loop stalls on every cache line
//! the hardware has not fetched yet. It asks for the line
//! `PREFETCH_AHEAD` bytes ahead as it reads each header, which keeps
//! the chain in the first-level cache; and it checks a record's bounds
//! once, on its position and length (`DataArea::record`), not on each
//! access.

use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::Duration;

use super::mmap::Mapping;
pub use super::mmap::page_size;

/// Header bit: the producer has reserved the record and not yet
/// submitted or discarded it.
pub const BUSY_BIT: u32 = 1 << 31;
/// Header bit: the producer discarded the record (skip it).
pub const DISCARD_BIT: u32 = 1 << 30;
/// Bytes of a record's header.
pub const HEADER_SIZE: u64 = 8;
/// Bytes [`RingMemory::consume`] reads before it stores the consumer
/// position again (at most a quarter of the ring): see there.
const RELEASE_CHUNK: u64 = 4096;

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
    /// The read position (see [`RingMemory::read_pos`]).
    read: Cell<u64>,
    /// The producer position loaded last: records before it are
    /// published or busy, so it is loaded again only once the reader
    /// reaches it.
    prod: Cell<u64>,
    /// The consumer position stored last.
    committed: Cell<u64>,
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
        let cons = consumer.atomic_u64(0).load(Ordering::Acquire);
        if !cons.is_multiple_of(8) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("ring buffer consumer position {cons} is not a multiple of 8"),
            ));
        }
        Ok(RingMemory {
            consumer,
            producer,
            size: u64::from(size),
            read: Cell::new(cons),
            prod: Cell::new(cons),
            committed: Cell::new(cons),
            page,
        })
    }

    /// The data area's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The consumer position the kernel sees.
    pub fn consumer_pos(&self) -> u64 {
        self.consumer.atomic_u64(0).load(Ordering::Acquire)
    }

    /// The producer position.
    #[inline]
    pub fn producer_pos(&self) -> u64 {
        self.producer.atomic_u64(0).load(Ordering::Acquire)
    }

    /// The read position: past the records [`RingMemory::next`] returned,
    /// at or past the consumer position.
    pub fn read_pos(&self) -> u64 {
        self.read.get()
    }

    /// The record at the read position, if the producer has published
    /// one; the read position moves past it (a discarded one too). Its
    /// bytes stay in place until [`RingMemory::commit`].
    #[inline]
    pub fn next(&self) -> io::Result<Peek<'_>> {
        let peek = self.peek()?;
        if let Peek::Record { advance, .. } = peek {
            self.read.set(self.read.get() + advance);
        }
        Ok(peek)
    }

    /// The record at the read position, if the producer has published
    /// one, leaving the read position where it is.
    #[inline]
    pub fn peek(&self) -> io::Result<Peek<'_>> {
        let cons = self.read.get();
        let mut prod = self.prod.get();
        if cons >= prod {
            prod = self.producer_pos();
            self.prod.set(prod);
            if cons >= prod {
                return Ok(Peek::Empty);
            }
        }
        self.data_area().record(cons, prod)
    }

    /// Calls `f` with each record that is ready, from the read position,
    /// and gives the records back to the kernel as it goes (records read
    /// before are given back first). Returns how many records `f` saw.
    ///
    /// The consumer position is stored once per `RELEASE_CHUNK` bytes
    /// read (a quarter of the ring if that is less) and when the drain
    /// stops, rather than after each record as libbpf does. Storing it
    /// later is safe: the producer reuses only the bytes behind it, so
    /// it only sees free space a little later (at most a chunk and a
    /// record), and when `consume` returns it sees all of it. In return
    /// the loop makes one store per chunk, not per record, to a cache
    /// line the producer reads on each reservation. The chunk's end is
    /// folded into the loop's bound (`stop`), so records pay nothing
    /// for it. The positions and the data area stay in registers.
    #[inline]
    pub fn consume(&mut self, mut f: impl FnMut(&[u8])) -> io::Result<usize> {
        self.commit();
        let area = self.data_area();
        let consumer = self.consumer.atomic_u64(0);
        let producer = self.producer.atomic_u64(0);
        let chunk = RELEASE_CHUNK.min(self.size / 4);
        let mut at = Cursor::new(self);
        // Records are read up to `stop`: the producer position loaded
        // last, or the chunk's end if that comes first.
        let mut stop = at.prod.min(at.released + chunk);
        let mut n = 0;
        loop {
            if at.cons >= stop {
                if at.cons != at.released {
                    consumer.store(at.cons, Ordering::Release);
                    at.released = at.cons;
                }
                if at.cons >= at.prod {
                    at.prod = producer.load(Ordering::Acquire);
                    if at.cons >= at.prod {
                        return Ok(n);
                    }
                }
                stop = at.prod.min(at.cons + chunk);
            }
            match area.record(at.cons, at.prod)? {
                Peek::Record {
                    data,
                    discarded,
                    advance,
                } => {
                    // Past the record before `f` sees it: if `f`
                    // panics, the record is not read again.
                    at.cons += advance;
                    if !discarded {
                        f(data);
                        n += 1;
                    }
                }
                Peek::Empty | Peek::Busy => return Ok(n),
            }
        }
    }

    /// The data area, for reading records.
    #[inline]
    fn data_area(&self) -> DataArea<'_> {
        DataArea::new(&self.producer, self.page, self.size)
    }

    /// Gives the bytes of the records read so far back to the kernel:
    /// the consumer position moves to the read position.
    #[inline]
    pub fn commit(&mut self) {
        let pos = self.read.get();
        if self.committed.get() != pos {
            self.consumer.atomic_u64(0).store(pos, Ordering::Release);
            self.committed.set(pos);
        }
    }

    /// Orders the consumer position stored last before the loads that
    /// decide whether to sleep (see the module documentation).
    pub fn before_sleep(&self) {
        fence(Ordering::SeqCst);
    }
}

/// The positions of [`RingMemory::consume`]'s loop, in registers while
/// it runs; when it ends (a panic of the caller's function included),
/// the records read are given back and the read position moves past
/// them, so none is read twice.
struct Cursor<'a> {
    mem: &'a RingMemory,
    /// The position of the next record.
    cons: u64,
    /// The consumer position stored last.
    released: u64,
    /// The producer position loaded last.
    prod: u64,
}

impl<'a> Cursor<'a> {
    fn new(mem: &'a RingMemory) -> Cursor<'a> {
        Cursor {
            mem,
            cons: mem.read.get(),
            released: mem.committed.get(),
            prod: mem.prod.get(),
        }
    }
}

impl Drop for Cursor<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.cons != self.released {
            self.mem
                .consumer
                .atomic_u64(0)
                .store(self.cons, Ordering::Release);
        }
        self.mem.read.set(self.cons);
        self.mem.prod.set(self.prod);
        self.mem.committed.set(self.cons);
    }
}

/// The data area of a mapped ring as the reading loop sees it: its start
/// and size, which stay in registers. A record's bounds follow from the
/// checks of its position and length in [`DataArea::record`], so the
/// bytes are read with no check of their own.
#[derive(Clone, Copy)]
struct DataArea<'a> {
    /// The first byte of the data area (page-aligned).
    start: NonNull<u8>,
    /// Its size: a power of two, mapped twice from `start`.
    size: u64,
    mapping: PhantomData<&'a Mapping>,
}

impl<'a> DataArea<'a> {
    /// The data area of `producer`, mapped as [`RingMemory::map`] does:
    /// the producer page (`page` bytes), then `size` bytes twice.
    #[inline]
    fn new(producer: &'a Mapping, page: usize, size: u64) -> DataArea<'a> {
        assert!(
            size.is_power_of_two() && producer.len() >= page + 2 * size as usize,
            "data area of {size} bytes at {page} in a mapping of {}",
            producer.len()
        );
        // SAFETY: `page` is within the mapping (checked above).
        let start = unsafe { producer.start().add(page) };
        DataArea {
            start,
            size,
            mapping: PhantomData,
        }
    }

    /// The record at position `cons`, below the producer position `prod`
    /// loaded before. Callers pass the read position or a cursor that,
    /// like it, starts at the consumer position and only ever moves by
    /// the lengths of published headers: a record's start, at or past
    /// the consumer position.
    #[inline(always)]
    fn record(self, cons: u64, prod: u64) -> io::Result<Peek<'a>> {
        // Positions are multiples of 8 (`RingMemory::map` checks the
        // first, records take multiples of 8); clearing the low bits
        // keeps the header aligned whatever the memory says.
        let off = (cons & (self.size - 1) & !7) as usize;
        // SAFETY: `off` is a multiple of 8 below `size`, so the 4 bytes
        // are in the data area's first copy and aligned (`start` is
        // page-aligned); the mapping lives for 'a; the kernel and this
        // reader access a header only atomically.
        let header = unsafe { AtomicU32::from_ptr(self.start.as_ptr().add(off).cast()) };
        let header = header.load(Ordering::Acquire);
        prefetch(self.start.as_ptr().wrapping_add(off + PREFETCH_AHEAD));
        if header & BUSY_BIT != 0 {
            return Ok(Peek::Busy);
        }
        let len = header & !(BUSY_BIT | DISCARD_BIT);
        let advance = (HEADER_SIZE + u64::from(len) + 7) & !7;
        // The kernel keeps `prod - cons` below `size`; a header or a
        // producer position that says otherwise is not the kernel's.
        if advance > prod.wrapping_sub(cons).min(self.size) {
            return Err(past_producer(len, cons, prod));
        }
        let discarded = header & DISCARD_BIT != 0;
        let data_len = if discarded { 0 } else { len as usize };
        // SAFETY: the bytes run from `off + 8` to at most `off + advance
        // <= off + size < 2 * size` (checked above): within the data
        // area mapped twice. The kernel wrote them before the release
        // store of the header read above with acquire ordering, and
        // writes them again only after the consumer position moves past
        // them: `RingMemory::commit` and `RingMemory::consume` move it,
        // and both take `&mut self`, which the borrow 'a of the mapping
        // rules out while the slice lives (`consume` moves it only after
        // `f`, whose borrow of the slice ends with the call). Nothing in
        // this process writes the read-only mapping.
        let data =
            unsafe { std::slice::from_raw_parts(self.start.as_ptr().add(off + 8), data_len) };
        Ok(Peek::Record {
            data,
            discarded,
            advance,
        })
    }
}

/// How far ahead of the record it reads the loop asks for the data
/// area's bytes: a 4 KiB page, which also brings the next page's address
/// translation in before the chain of headers reaches it (1 and 2 KiB
/// were slower in the ringbuf bench, 8 KiB no faster). Within the
/// mapping: the data area is at least a page, mapped twice.
const PREFETCH_AHEAD: usize = 4096;

/// Asks the CPU to bring the cache line at `p` in (a hint: never faults).
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and never
    // faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// The error for a record header whose length runs past the producer
/// (out of line: the reading loop keeps its registers).
#[cold]
#[inline(never)]
fn past_producer(len: u32, cons: u64, prod: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("ring buffer record of {len} bytes at {cons} runs past the producer ({prod})"),
    )
}

/// Waits until `fd` is readable (a ring buffer: has data), at most
/// `timeout` (`None`: forever). `false` on timeout; an interrupted wait
/// counts as a timeout.
pub fn wait_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    let ms = super::epoll::timeout_ms(timeout);
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
