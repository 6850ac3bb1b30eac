//! Safe wrappers around the `bpf(2)` system call.
//!
//! One small function per command. Each fills a zeroed `bpf_attr` (the
//! kernel refuses non-zero bytes it does not know about) and calls the
//! single private `sys_bpf`. Kernel objects come back as [`OwnedFd`]
//! (closed on drop); inputs are borrowed ([`std::os::fd::AsFd`] / [`BorrowedFd`]).
//! Errors are the kernel's errno as [`std::io::Error`], except where a
//! command has more to say (program load: the verifier log).
//!
//! The attr layouts are `aya_obj::generated` (bindgen of the kernel uapi).
//! Those bindings already carry the 6.x fields we use (`log_true_size`,
//! `btf_log_true_size`, the tcx `relative_fd`/`expected_revision` members of
//! `link_create` and of `BPF_PROG_ATTACH`, `revision` in `query`), so no
//! hand-written tail layouts are needed.

mod info;
mod link;
mod map;
mod pin;
mod prog;
mod test_run;

use std::ffi::{CString, c_char};
use std::io;
use std::mem;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use aya_obj::generated::{bpf_attr, bpf_cmd, bpf_link_info, bpf_map_info, bpf_prog_info};

/// The kernel's enums for map, program, attach and link types.
pub use aya_obj::generated::{bpf_attach_type, bpf_link_type, bpf_map_type, bpf_prog_type};
pub use info::{
    LinkDetail, LinkInfo, MapInfo, ProgInfo, btf_data, btf_get_fd_by_id, btf_get_next_id, btf_name,
    link_get_fd_by_id, link_get_next_id, link_info, map_get_fd_by_id, map_get_next_id, map_info,
    prog_get_fd_by_id, prog_get_next_id, prog_info, prog_main_func_type_id,
};
pub use link::{
    KprobeMultiAttr, LinkCreateAttr, ProgAttachAttr, ProgQuery, Relative, Target, UprobeMultiAttr,
    link_create, link_create_kprobe_multi, link_create_perf_event, link_create_tracing,
    link_create_uprobe_multi, link_detach, link_update, prog_attach, prog_detach, prog_query,
    raw_tracepoint_open, raw_tracepoint_open_btf,
};
pub use map::{
    Layout, LookupBatch, MapCreateAttr, MapFd, MapRef, UpdateBatchError, map_create,
    map_delete_batch, map_delete_elem, map_freeze, map_get_next_key, map_lookup_and_delete_batch,
    map_lookup_and_delete_elem, map_lookup_batch, map_lookup_elem, map_update_batch,
    map_update_elem, possible_cpus,
};
pub use pin::{BPF_FS_MAGIC, ensure_bpffs, obj_get, obj_get_at, obj_pin, obj_pin_at};
pub use prog::{
    BtfLoadError, LOG_SIZE_MAX, ProgLoadAttr, ProgLoadError, RecordArray, btf_load, prog_load,
    prog_load_with_log,
};
pub use test_run::{TestRunFailure, TestRunIo, TestRunResult, prog_test_run};

/// The kernel-internal "not supported" errno (524) that some `bpf(2)`
/// commands return to user space (a map type without batch operations, a
/// program type without test runs); libc has no name for it.
pub const ENOTSUPP: i32 = 524;

/// Map, program and link flag values from the kernel uapi that callers of
/// this module need, re-exported with their kernel names.
pub mod flags {
    pub use aya_obj::generated::{
        BPF_ANY, BPF_EXIST, BPF_F_AFTER, BPF_F_ALLOW_MULTI, BPF_F_ALLOW_OVERRIDE, BPF_F_BEFORE,
        BPF_F_ID, BPF_F_LINK, BPF_F_LOCK, BPF_F_MMAPABLE, BPF_F_NO_COMMON_LRU, BPF_F_NO_PREALLOC,
        BPF_F_NUMA_NODE, BPF_F_PATH_FD, BPF_F_QUERY_EFFECTIVE, BPF_F_RDONLY, BPF_F_RDONLY_PROG,
        BPF_F_REPLACE, BPF_F_TEST_RUN_ON_CPU, BPF_F_TEST_XDP_LIVE_FRAMES, BPF_F_WRONLY,
        BPF_F_WRONLY_PROG, BPF_F_XDP_HAS_FRAGS, BPF_F_ZERO_SEED, BPF_NOEXIST,
    };

    /// `BPF_LOG_LEVEL1`: log the verifier's work on branches and errors.
    pub const BPF_LOG_LEVEL1: u32 = 1;
    /// `BPF_LOG_LEVEL2`: log the register state at every instruction.
    pub const BPF_LOG_LEVEL2: u32 = 2;
    /// `BPF_LOG_STATS`: print verification statistics ("processed N insns").
    pub const BPF_LOG_STATS: u32 = 4;
    /// `BPF_LOG_FIXED` (6.4+): keep the head of the log instead of the tail
    /// when the buffer is too small.
    pub const BPF_LOG_FIXED: u32 = 8;
}

/// A mutable borrow of one member of a `bpf_attr` union, for filling it
/// field by field.
macro_rules! attr_member {
    ($attr:expr, $member:ident) => {
        // SAFETY: every member of `bpf_attr` is made of plain integers, so
        // any bytes are a valid value of any member; the borrow is unique.
        unsafe { &mut $attr.$member }
    };
}
use attr_member;

/// The one place that enters the kernel.
///
/// `size` is the number of attr bytes the kernel may read; we always pass
/// the whole (zeroed) union.
fn sys_bpf(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<i64> {
    let size = mem::size_of::<bpf_attr>() as libc::c_uint;
    // SAFETY: `attr` is a valid, exclusively borrowed `bpf_attr` of `size`
    // bytes for the whole call. Every pointer stored in it was taken from a
    // live Rust slice or C string by the caller, which keeps those borrows
    // alive across this call and sized them as the kernel expects.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_int,
            attr as *mut bpf_attr,
            size,
        )
    };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Like [`sys_bpf`] for commands that return a new file descriptor.
fn sys_bpf_fd(cmd: bpf_cmd, attr: &mut bpf_attr) -> io::Result<OwnedFd> {
    let ret = sys_bpf(cmd, attr)?;
    let raw = RawFd::try_from(ret).map_err(|_| io::Error::other("bpf(2) returned a bad fd"))?;
    // SAFETY: the command succeeded and returned a file descriptor that the
    // kernel has just installed for us; nothing else in the process owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Plain-old-data uapi structs for which all-zero bytes are a valid value.
///
/// # Safety
/// Implement only for `repr(C)` types made of integers, integer arrays and
/// unions of those (no references, no enums, no niches).
unsafe trait Zeroable: Copy {}

// SAFETY: bindgen union of integer-only structs.
unsafe impl Zeroable for bpf_attr {}
// SAFETY: bindgen struct of integers, integer arrays and a bitfield unit.
unsafe impl Zeroable for bpf_prog_info {}
// SAFETY: bindgen struct of integers and integer arrays.
unsafe impl Zeroable for bpf_map_info {}
// SAFETY: bindgen struct of integers and a union of integer-only structs.
unsafe impl Zeroable for bpf_link_info {}
// SAFETY: bindgen struct of integers.
unsafe impl Zeroable for aya_obj::generated::bpf_btf_info {}

/// An all-zero value of a uapi struct.
fn zeroed<T: Zeroable>() -> T {
    // SAFETY: `Zeroable` guarantees that all-zero bytes are a valid `T`.
    unsafe { mem::zeroed() }
}

/// The kernel's `u64` form of a user pointer.
fn ptr_u64<T>(p: *const T) -> u64 {
    p as usize as u64
}

/// A slice's address for the kernel, or 0 (NULL) when it is empty.
fn slice_u64<T>(s: &[T]) -> u64 {
    if s.is_empty() { 0 } else { ptr_u64(s.as_ptr()) }
}

/// A mutable slice's address for the kernel, or 0 (NULL) when it is empty.
fn slice_mut_u64<T>(s: &mut [T]) -> u64 {
    if s.is_empty() {
        0
    } else {
        ptr_u64(s.as_mut_ptr())
    }
}

/// An fd number as the kernel's `__u32` attr field.
fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    // A live fd is never negative.
    fd.as_raw_fd() as u32
}

/// Encodes an object name as the kernel wants it: at most 15 bytes plus
/// NUL, only `[A-Za-z0-9_.]` (the kernel rejects anything else with
/// EINVAL). Other characters become `_`, longer names are truncated.
fn obj_name(name: &str) -> [c_char; 16] {
    let mut out = [0 as c_char; 16];
    for (slot, b) in out.iter_mut().zip(name.bytes().take(15)) {
        let ok = b.is_ascii_alphanumeric() || b == b'_' || b == b'.';
        *slot = if ok { b } else { b'_' } as c_char;
    }
    out
}

/// Decodes a NUL-padded kernel name.
fn name_from_c(name: &[c_char]) -> String {
    let bytes: Vec<u8> = name
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A path as a C string, refusing interior NUL bytes.
pub(crate) fn path_cstring(path: &Path) -> io::Result<CString> {
    use std::os::unix::ffi::OsStrExt;
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("path {} contains a NUL byte", path.display()),
        )
    })
}

/// An `InvalidInput` error with a message.
fn invalid_input(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obj_name_truncates_and_sanitises() {
        let n = obj_name("a-very/long name.with_stuff");
        let s = name_from_c(&n);
        assert_eq!(s, "a_very_long_nam");
        assert_eq!(n[15], 0);
        assert_eq!(name_from_c(&obj_name("ok_name.1")), "ok_name.1");
        assert_eq!(name_from_c(&obj_name("")), "");
    }

    #[test]
    fn empty_slices_are_null() {
        assert_eq!(slice_u64::<u8>(&[]), 0);
        assert_ne!(slice_u64(&[1u8]), 0);
    }
}
