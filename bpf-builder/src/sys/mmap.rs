//! Shared memory mappings of file descriptors (ring buffer maps, perf
//! event rings): `mmap` and `munmap`, atomic access to the words the
//! kernel and user space hand each other, and borrowed views of bytes
//! that the protocol over the mapping keeps still.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;

/// One `mmap` of a file descriptor, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    /// Maps `len` bytes of `fd` from `offset`, shared, with `prot`.
    pub(crate) fn new(
        fd: BorrowedFd<'_>,
        len: usize,
        offset: usize,
        prot: libc::c_int,
    ) -> io::Result<Self> {
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

    /// The start of the mapping (page-aligned), valid for
    /// [`Mapping::len`] bytes as long as `self` lives.
    #[inline]
    pub(crate) fn start(&self) -> NonNull<u8> {
        self.ptr
    }

    /// The length of the mapping in bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The `u64` at byte `off`, which the kernel may change at any time,
    /// as an atomic.
    #[inline]
    pub(crate) fn atomic_u64(&self, off: usize) -> &AtomicU64 {
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

    /// The `len` bytes at `off`, borrowed from the mapping.
    ///
    /// # Safety
    ///
    /// Nobody (the kernel included) may write these bytes while the
    /// slice lives, and their writer's stores must be visible to this
    /// thread (an acquire load of the word that published them).
    #[inline]
    pub(crate) unsafe fn bytes(&self, off: usize, len: usize) -> &[u8] {
        assert!(
            off.checked_add(len).is_some_and(|end| end <= self.len),
            "{len} bytes at {off} of {}",
            self.len
        );
        // SAFETY: within the mapping (checked above), which lives as long
        // as `self`; the caller promises nobody writes the bytes while
        // they are borrowed.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(off), len) }
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
// while they are borrowed.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` only gives atomic access or such slices.
unsafe impl Sync for Mapping {}

/// The size of a page, the unit of these mappings.
pub fn page_size() -> usize {
    // SAFETY: `sysconf` reads a constant of the system; no memory is
    // involved.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}
