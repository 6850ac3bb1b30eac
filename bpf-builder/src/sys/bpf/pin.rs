//! Pinning objects in the BPF filesystem, and mounting it.

use std::ffi::{CStr, OsStr};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

use aya_obj::generated::{bpf_attr, bpf_cmd};

use super::{fd_u32, flags, path_cstring, ptr_u64, sys_bpf, sys_bpf_fd, zeroed};

/// `f_type` of a bpf filesystem in `statfs(2)`.
pub const BPF_FS_MAGIC: u32 = 0xcafe_4a11;

/// `BPF_OBJ_PIN`: makes the object behind `fd` outlive this process at
/// `path`, which must be inside a bpf filesystem.
pub fn obj_pin(fd: impl AsFd, path: &Path) -> io::Result<()> {
    let cpath = path_cstring(path)?;
    let mut a: bpf_attr = zeroed();
    a.__bindgen_anon_4.pathname = ptr_u64(cpath.as_ptr());
    a.__bindgen_anon_4.bpf_fd = fd_u32(fd.as_fd());
    sys_bpf(bpf_cmd::BPF_OBJ_PIN, &mut a).map(drop)
}

/// `BPF_OBJ_GET`: opens a pinned object. `flags` may be `BPF_F_RDONLY` or
/// `BPF_F_WRONLY` (maps), or 0.
pub fn obj_get(path: &Path, flags: u32) -> io::Result<OwnedFd> {
    let cpath = path_cstring(path)?;
    let mut a: bpf_attr = zeroed();
    a.__bindgen_anon_4.pathname = ptr_u64(cpath.as_ptr());
    a.__bindgen_anon_4.file_flags = flags;
    sys_bpf_fd(bpf_cmd::BPF_OBJ_GET, &mut a)
}

/// The filesystem type of `path` (`statfs(2)` `f_type`).
fn fs_type(path: &CStr) -> io::Result<u64> {
    let mut st = MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `path` is a NUL-terminated string and `st` points to writable
    // memory of the right size for the whole call.
    let r = unsafe { libc::statfs(path.as_ptr(), st.as_mut_ptr()) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statfs succeeded, so it filled the struct (which was zeroed
    // anyway, and is plain integers).
    let st = unsafe { st.assume_init() };
    // `f_type` is a signed word on some targets; the magic is 32 bits.
    Ok(st.f_type as u64 & 0xffff_ffff)
}

/// Makes sure `path` (usually `/sys/fs/bpf`) is a bpf filesystem: creates
/// the directory if needed and mounts bpffs on it (`mount -t bpf bpf
/// PATH`) unless it already is one.
pub fn ensure_bpffs(path: &Path) -> io::Result<()> {
    std::fs::create_dir_all(path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot create bpffs mount point {}: {e}", path.display()),
        )
    })?;
    let cpath = path_cstring(path)?;
    if fs_type(&cpath)? == u64::from(BPF_FS_MAGIC) {
        return Ok(());
    }
    // SAFETY: all pointers are NUL-terminated strings that live across the
    // call; `data` may be NULL for bpffs (default mode).
    let r = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            cpath.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!(
                "{} is not a bpf filesystem and mounting one there failed: {e} \
                 (mounting needs CAP_SYS_ADMIN in the mount namespace; \
                 run `mount -t bpf bpf {}` as root)",
                path.display(),
                path.display()
            ),
        ));
    }
    Ok(())
}

/// [`obj_pin`] at `name` in the directory `dir` (`BPF_F_PATH_FD`, Linux
/// 6.5+; older kernels fail with `EINVAL`). `name` is one path component.
pub fn obj_pin_at(fd: impl AsFd, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let cname = crate::sys::dir::component(name)?;
    let mut a: bpf_attr = zeroed();
    a.__bindgen_anon_4.pathname = ptr_u64(cname.as_ptr());
    a.__bindgen_anon_4.bpf_fd = fd_u32(fd.as_fd());
    a.__bindgen_anon_4.file_flags = flags::BPF_F_PATH_FD;
    a.__bindgen_anon_4.path_fd = dir.as_raw_fd();
    sys_bpf(bpf_cmd::BPF_OBJ_PIN, &mut a).map(drop)
}

/// [`obj_get`] of `name` in the directory `dir` (`BPF_F_PATH_FD`, Linux
/// 6.5+; older kernels fail with `EINVAL`). `name` is one path component.
pub fn obj_get_at(dir: BorrowedFd<'_>, name: &OsStr, flags: u32) -> io::Result<OwnedFd> {
    let cname = crate::sys::dir::component(name)?;
    let mut a: bpf_attr = zeroed();
    a.__bindgen_anon_4.pathname = ptr_u64(cname.as_ptr());
    a.__bindgen_anon_4.file_flags = flags | self::flags::BPF_F_PATH_FD;
    a.__bindgen_anon_4.path_fd = dir.as_raw_fd();
    sys_bpf_fd(bpf_cmd::BPF_OBJ_GET, &mut a)
}
