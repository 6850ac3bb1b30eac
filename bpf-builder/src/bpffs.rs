//! The bpf filesystem that pins live in, and whether a pin made there
//! outlives the command that made it.
//!
//! A tool that attaches something and exits keeps it running through
//! pins in bpffs, usually under [`BPFFS`]. When this process runs in a
//! mount namespace of its own (as `ip netns exec` and `unshare --mount`
//! make them, each with a `/sys` of its own), a bpffs it mounts there
//! goes away when the command ends, and everything pinned in it is
//! released: the tool would report success and leave nothing running.
//! [`lasting_bpffs`] refuses that case, and mounts bpffs only where the
//! mount stays.
//!
//! ```no_run
//! use std::path::Path;
//! # fn main() -> Result<(), bpf_builder::bpffs::BpffsError> {
//! bpf_builder::bpffs::lasting_bpffs(Path::new("/sys/fs/bpf/mytool"))?;
//! // Pins under /sys/fs/bpf/mytool now outlive this process.
//! # Ok(())
//! # }
//! ```

use std::fs::OpenOptions;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::sys::bpf as sys;

/// Where the system mounts the bpf filesystem.
pub const BPFFS: &str = "/sys/fs/bpf";

/// Why pins under a path would not outlive the command.
#[derive(Debug, thiserror::Error)]
pub enum BpffsError {
    /// bpffs is not mounted at the mount point, and a mount made here
    /// would go away with this process's mount namespace.
    #[error(
        "{0} is not a bpf filesystem here, and this mount namespace is not known to be \
         the system's (`ip netns exec` makes one, with a /sys of its own): a bpffs \
         mounted here would go away when the command ends, and what it pinned with it; \
         run the command in the system's mount namespace (`nsenter \
         --net=/run/netns/NAME COMMAND ...` enters only the network namespace), or \
         mount bpffs on {0} where it stays"
    )]
    Private(PathBuf),
    /// bpffs is not mounted at the mount point here, so what the system
    /// pinned there cannot be seen.
    #[error(
        "{0} is not a bpf filesystem here (as under `ip netns exec`): what is pinned \
         in the system's bpffs is not visible; run the command in the system's mount \
         namespace (`nsenter --net=/run/netns/NAME COMMAND ...` enters only the network \
         namespace)"
    )]
    Hidden(PathBuf),
    /// Mounting bpffs failed.
    #[error("mounting bpffs on {path}: {source}")]
    Mount {
        /// The mount point.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// Makes sure that pins under `path` outlive this process: when `path`
/// is under [`BPFFS`] and no bpffs is mounted there, mounts one, but
/// only in the system's mount namespace
/// ([`in_init_mount_namespace`]); elsewhere refuses with
/// [`BpffsError::Private`]. Other paths are the caller's: they must be
/// on a bpffs that stays (pinning says so when they are not bpffs).
pub fn lasting_bpffs(path: &Path) -> Result<(), BpffsError> {
    let mount = Path::new(BPFFS);
    if !path.starts_with(mount) || is_bpffs(mount) {
        return Ok(());
    }
    if !in_init_mount_namespace() {
        return Err(BpffsError::Private(mount.into()));
    }
    sys::ensure_bpffs(mount).map_err(|source| BpffsError::Mount {
        path: mount.into(),
        source,
    })
}

/// Whether pins under `path` cannot be seen from here: `path` is under
/// [`BPFFS`] and no bpffs is mounted there (as under `ip netns exec`),
/// so the system's pins, if any, are hidden. A tool that lists what it
/// pinned says so rather than reporting nothing.
pub fn hides_system_pins(path: &Path) -> bool {
    path.starts_with(BPFFS) && !is_bpffs(Path::new(BPFFS))
}

/// Whether `path` is a directory on a bpf filesystem.
pub fn is_bpffs(path: &Path) -> bool {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(path)
        .and_then(|d| crate::sys::dir::fs_type_fd(d.as_fd()))
        .is_ok_and(|t| t == sys::BPF_FS_MAGIC)
}

/// Whether this process shares the mount namespace of process 1, where a
/// mount outlives the command. When that cannot be read, no: then bpffs
/// must be mounted beforehand, rather than something reported attached
/// that goes away with the command.
pub fn in_init_mount_namespace() -> bool {
    let id = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino()));
    match (id("/proc/self/ns/mnt"), id("/proc/1/ns/mnt")) {
        (Ok(me), Ok(init)) => me == init,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_system_mount_point_are_left_to_the_caller() {
        // Nothing is mounted or refused for them, whatever the namespace.
        assert!(lasting_bpffs(Path::new("/tmp/not-bpffs")).is_ok());
        assert!(!hides_system_pins(Path::new("/tmp/not-bpffs")));
    }

    #[test]
    fn a_plain_directory_is_not_bpffs() {
        assert!(!is_bpffs(Path::new("/tmp")));
        assert!(!is_bpffs(Path::new("/nonexistent-dir")));
    }
}
