//! libxdp's layout in bpffs: `<bpffs>/xdp/dispatch-IFINDEX-DISPATCHERID/`
//! holds `progN-prog` and `progN-link` for every slot N, and a `flock` on
//! `<bpffs>/xdp` guards changes to it. `LIBXDP_BPFFS` moves `<bpffs>`, as
//! it does for libxdp.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::kernel_id::KernelProgId;

/// The bpffs mount libxdp uses unless `LIBXDP_BPFFS` says otherwise.
const DEFAULT_BPFFS: &str = "/sys/fs/bpf";

/// `<bpffs>/xdp`, the directory of every dispatcher's pins.
pub fn xdp_dir() -> PathBuf {
    let root = std::env::var_os("LIBXDP_BPFFS")
        .map_or_else(|| PathBuf::from(DEFAULT_BPFFS), PathBuf::from);
    root.join("xdp")
}

/// The pin directory of dispatcher `dispatcher` on `ifindex`.
pub fn dispatcher_dir(ifindex: u32, dispatcher: KernelProgId) -> PathBuf {
    xdp_dir().join(format!("dispatch-{ifindex}-{}", dispatcher.get()))
}

/// The pins of slot `slot` in `dir`: the program and its link.
pub fn slot_pins(dir: &Path, slot: usize) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("prog{slot}-prog")),
        dir.join(format!("prog{slot}-link")),
    )
}

/// The exclusive lock on `<bpffs>/xdp` that libxdp takes around changes
/// to the pins; released when dropped.
pub struct Lock {
    dir: File,
}

impl Lock {
    /// Creates `<bpffs>/xdp` when missing (mounting bpffs at /sys/fs/bpf
    /// first if needed) and waits for its lock.
    pub fn acquire() -> io::Result<Lock> {
        let dir = xdp_dir();
        if let Some(root) = dir.parent()
            && root == Path::new(DEFAULT_BPFFS)
        {
            crate::sys::bpf::ensure_bpffs(root)?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
        })?;
        let file = File::open(&dir)?;
        file.lock()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot lock {}: {e}", dir.display())))?;
        Ok(Lock { dir: file })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Closing the file releases the lock as well; unlock says so.
        let _ = self.dir.unlock();
    }
}

/// Removes a dispatcher's pin directory and what it holds (the links
/// pinned there detach from that dispatcher once nothing else holds them).
pub fn remove_dispatcher_dir(dir: &Path) -> io::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            for e in entries {
                std::fs::remove_file(e?.path())?;
            }
            std::fs::remove_dir(dir)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
