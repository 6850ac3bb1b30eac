//! The ring of one perf event as user space reads it (`mmap` of the
//! event's fd, `include/uapi/linux/perf_event.h`): a metadata page
//! (`struct perf_event_mmap_page`) and then `2^n` pages of data.
//!
//! The kernel writes records at `data_head` and publishes them by
//! storing `data_head` after a write barrier; the reader loads
//! `data_head` with acquire ordering, reads the records from `data_tail`
//! to it, and gives their room back by storing `data_tail` with release
//! ordering (the mapping is writable, so the kernel never overwrites
//! records the reader has not given back: it counts them lost instead
//! and says so in a `PERF_RECORD_LOST` record). Positions only grow;
//! `pos % data_size` is the offset in the data area. Each record starts
//! with a `struct perf_event_header` (u32 type, u16 misc, u16 size) and
//! is a multiple of 8 bytes, so a header never straddles the end of the
//! data area, while its body may: such a record is copied into a buffer
//! of the reader's; the others are borrowed in place.

use std::cell::Cell;
use std::io;
use std::mem::offset_of;
use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;

use aya_obj::generated::perf_event_mmap_page;

use super::mmap::{Mapping, page_size};

/// Bytes of a record's header.
pub const HEADER_SIZE: usize = 8;

/// One record, its header's fields and its body.
#[derive(Debug, PartialEq, Eq)]
pub struct RawRecord<'a> {
    /// `PERF_RECORD_*`.
    pub type_: u32,
    /// `misc` bits.
    pub misc: u16,
    /// The bytes after the header.
    pub body: &'a [u8],
    /// The record wrapped around the end of the data area: `body` is a
    /// copy.
    pub wrapped: bool,
}

/// The mapped ring of one perf event.
#[derive(Debug)]
pub struct PerfRing {
    mem: Mapping,
    /// Where the data area starts in the mapping (one page in).
    data_offset: usize,
    /// Its size: a power of two number of pages.
    data_size: u64,
    /// Past the records [`PerfRing::next`] returned, at or past
    /// `data_tail`.
    read: Cell<u64>,
}

impl PerfRing {
    /// Maps the ring of perf event `fd`, with `pages` data pages (a
    /// power of two).
    pub fn map(fd: BorrowedFd<'_>, pages: usize) -> io::Result<PerfRing> {
        if !pages.is_power_of_two() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{pages} data pages: a perf ring needs a power of two"),
            ));
        }
        let page = page_size();
        let mem = Mapping::new(
            fd,
            (pages + 1) * page,
            0,
            libc::PROT_READ | libc::PROT_WRITE,
        )?;
        let read = Cell::new(mem.atomic_u64(TAIL).load(Ordering::Acquire));
        Ok(PerfRing {
            mem,
            data_offset: page,
            data_size: (pages * page) as u64,
            read,
        })
    }

    /// The data area's size in bytes.
    pub fn data_size(&self) -> u64 {
        self.data_size
    }

    /// `data_head`: where the kernel writes next.
    pub fn head(&self) -> u64 {
        self.mem.atomic_u64(HEAD).load(Ordering::Acquire)
    }

    /// Bytes written and not yet read.
    pub fn available(&self) -> u64 {
        self.head().saturating_sub(self.read.get())
    }

    /// The next record, if there is one, and the read position moves
    /// past it. A record that wraps around the end of the data area is
    /// copied into `scratch`; the others are borrowed from the ring, whose
    /// bytes stay in place until [`PerfRing::commit`].
    pub fn next<'a>(&'a self, scratch: &'a mut Vec<u8>) -> io::Result<Option<RawRecord<'a>>> {
        let tail = self.read.get();
        let head = self.head();
        if tail >= head {
            return Ok(None);
        }
        let corrupt = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        if head - tail > self.data_size || !tail.is_multiple_of(8) {
            return Err(corrupt(format!(
                "perf ring positions make no sense: tail {tail}, head {head}"
            )));
        }
        let off = (tail % self.data_size) as usize;
        // SAFETY: `off` is 8-aligned and below `data_size`, a multiple of
        // 8, so the header's 8 bytes lie in the data area (`bytes` checks
        // the mapping's bounds). The kernel wrote them before its store
        // of `data_head`, which we loaded with acquire ordering, and
        // writes there again only after `data_tail` passes them, which
        // needs `commit(&mut self)`: impossible while `&self` is borrowed.
        let header = unsafe { self.mem.bytes(self.data_offset + off, HEADER_SIZE) };
        let type_ = u32::from_ne_bytes([header[0], header[1], header[2], header[3]]);
        let misc = u16::from_ne_bytes([header[4], header[5]]);
        let size = usize::from(u16::from_ne_bytes([header[6], header[7]]));
        if size < HEADER_SIZE || !size.is_multiple_of(8) || (size as u64) > head - tail {
            return Err(corrupt(format!(
                "perf record of {size} bytes at {tail} (head {head})"
            )));
        }
        let body_len = size - HEADER_SIZE;
        let body_off = (off + HEADER_SIZE) % self.data_size as usize;
        let first = body_len.min(self.data_size as usize - body_off);
        // SAFETY: as for the header: the body's bytes, up to the end of
        // the data area, were published before `data_head` and stay put
        // until `commit`.
        let front = unsafe { self.mem.bytes(self.data_offset + body_off, first) };
        let body = if first == body_len {
            front
        } else {
            // SAFETY: the rest, from the start of the data area (it wraps
            // around); same reasoning.
            let back = unsafe { self.mem.bytes(self.data_offset, body_len - first) };
            scratch.clear();
            scratch.extend_from_slice(front);
            scratch.extend_from_slice(back);
            &scratch[..]
        };
        self.read.set(tail + size as u64);
        Ok(Some(RawRecord {
            type_,
            misc,
            body,
            wrapped: first != body_len,
        }))
    }

    /// Gives the records read so far back to the kernel: `data_tail`
    /// moves to the read position.
    pub fn commit(&mut self) {
        let pos = self.read.get();
        let tail = self.mem.atomic_u64(TAIL);
        if tail.load(Ordering::Relaxed) != pos {
            tail.store(pos, Ordering::Release);
        }
    }
}

/// Offsets of `data_head` and `data_tail` in the metadata page.
const HEAD: usize = offset_of!(perf_event_mmap_page, data_head);
const TAIL: usize = offset_of!(perf_event_mmap_page, data_tail);
