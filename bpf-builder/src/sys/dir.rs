//! Directory-relative file system calls (`openat`, `mkdirat`, `unlinkat`,
//! `renameat2`, `fstatat`, ...) for [`crate::pins`]: every name is one
//! path component resolved against an open directory, and none of them
//! follows a symbolic link, so a name cannot lead out of the directory.
//! Also `fstatfs`, a directory's entries, and the effective uid.
//!
//! std has no `*at` calls; these are their thin safe wrappers.

use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// One path component as a C string: refuses empty names, `.`, `..`, and
/// names with `/` or NUL (which would leave the directory or be cut).
pub fn component(name: &OsStr) -> io::Result<CString> {
    let b = name.as_bytes();
    if b.is_empty() || b == b"." || b == b".." || b.contains(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a single file name"),
        ));
    }
    CString::new(b).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} contains a NUL byte"),
        )
    })
}

/// `-1` to an `io::Error` from errno.
fn check(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Opens the directory `name` in `dir` (`O_DIRECTORY | O_NOFOLLOW`): a
/// symbolic link fails with `ELOOP`, anything else than a directory
/// with `ENOTDIR`.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    let c = component(name)?;
    open_raw(dir, &c)
}

fn open_raw(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `dir` is a live fd for the whole call and `name` a
    // NUL-terminated string; openat does not keep either.
    let fd = check(unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) })?;
    // SAFETY: openat succeeded and returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Creates the directory `name` in `dir` with `mode` (less the umask:
/// set the mode afterwards when it matters).
pub fn mkdir_at(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    let c = component(name)?;
    // SAFETY: `dir` is live and `c` NUL-terminated for the whole call.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), mode as libc::mode_t) }).map(drop)
}

/// Removes the file (or pin, or symbolic link itself) `name` in `dir`.
pub fn unlink_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let c = component(name)?;
    // SAFETY: `dir` is live and `c` NUL-terminated for the whole call.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) }).map(drop)
}

/// Removes the empty directory `name` in `dir`.
pub fn rmdir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let c = component(name)?;
    // SAFETY: `dir` is live and `c` NUL-terminated for the whole call.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), libc::AT_REMOVEDIR) }).map(drop)
}

/// Renames `from` to `to`, both in `dir`, refusing with `EEXIST` when
/// `to` exists (`renameat2(RENAME_NOREPLACE)`): atomic, and never
/// replaces anything.
pub fn rename_noreplace_at(dir: BorrowedFd<'_>, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let (f, t) = (component(from)?, component(to)?);
    // SAFETY: `dir` is live and both names NUL-terminated for the whole
    // call; renameat2 takes plain integers otherwise.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            dir.as_raw_fd(),
            f.as_ptr(),
            dir.as_raw_fd(),
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Sets the permission bits of `name` in `dir`. Follows a symbolic link
/// (Linux has no `AT_SYMLINK_NOFOLLOW` for `fchmodat` before 6.6): use it
/// only on names this process just created in a directory that only it
/// can write.
pub fn chmod_at(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    let c = component(name)?;
    // SAFETY: `dir` is live and `c` NUL-terminated for the whole call.
    check(unsafe { libc::fchmodat(dir.as_raw_fd(), c.as_ptr(), mode as libc::mode_t, 0) }).map(drop)
}

/// What `fstatat` says of a directory entry (not following links).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryStat {
    /// Its kind.
    pub kind: EntryKind,
    /// The owner's uid.
    pub uid: u32,
    /// The permission bits (`0o7777`).
    pub mode: u32,
}

/// The kind of a directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory.
    Dir,
    /// A regular file (in bpffs: a pinned object).
    File,
    /// A symbolic link.
    Symlink,
    /// Anything else (device, fifo, socket).
    Other,
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
pub fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<EntryStat> {
    let c = component(name)?;
    let mut st = MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: `dir` is live, `c` NUL-terminated and `st` writable memory of
    // the right size for the whole call.
    check(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: fstatat succeeded and filled the (zeroed, plain-integer)
    // struct.
    let st = unsafe { st.assume_init() };
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => EntryKind::Dir,
        libc::S_IFREG => EntryKind::File,
        libc::S_IFLNK => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    Ok(EntryStat {
        kind,
        uid: st.st_uid,
        mode: st.st_mode & 0o7777,
    })
}

/// The filesystem type (`statfs(2)` `f_type`, 32 bits) of the file open
/// as `fd`.
pub fn fs_type_fd(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut st = MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `fd` is live and `st` writable memory of the right size for
    // the whole call.
    check(unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstatfs succeeded and filled the (zeroed, plain-integer)
    // struct.
    let st = unsafe { st.assume_init() };
    // `f_type` is a signed word on some targets; the magics are 32 bits.
    Ok((st.f_type as u64 & 0xffff_ffff) as u32)
}

/// The names in the directory `dir`, without `.` and `..`, in no order.
pub fn read_dir_names(dir: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    // A new open file description, so that reading does not move `dir`'s
    // offset (a dup would share it).
    let own = open_raw(dir, c".")?;
    let raw = std::os::fd::IntoRawFd::into_raw_fd(own);
    // SAFETY: `raw` is an fd we own; on success the DIR stream owns it
    // (closedir closes it), on failure it is still ours and closed here.
    let stream = unsafe { libc::fdopendir(raw) };
    if stream.is_null() {
        let e = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `raw` is still ours to close.
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
        return Err(e);
    }
    let mut names = Vec::new();
    let result = loop {
        // readdir reports errors only through errno.
        // SAFETY: errno is thread-local; writing it is always allowed.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `stream` is a live DIR stream used by this thread only.
        let ent = unsafe { libc::readdir(stream) };
        if ent.is_null() {
            let e = io::Error::last_os_error();
            break if e.raw_os_error() == Some(0) {
                Ok(())
            } else {
                Err(e)
            };
        }
        // SAFETY: readdir returned an entry valid until the next call on
        // `stream`; `d_name` is NUL-terminated within it. It is copied out
        // at once.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        let b = name.to_bytes();
        if b != b"." && b != b".." {
            names.push(OsString::from_vec(b.to_vec()));
        }
    };
    // SAFETY: `stream` is live and not used after this; closedir closes its
    // fd.
    unsafe { libc::closedir(stream) };
    result.map(|()| names)
}

/// The effective uid of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}
