//! Waiting until the BPF programs that are running have finished: after
//! user space changes what programs will do (a map value that selects
//! their code, say), it may need to know that no program still runs on
//! the old value before it reads what the old code left.
//!
//! The kernel has no call for it, but updating a map-in-map from user
//! space waits for an RCU grace period before it returns
//! (`maybe_wait_bpf_programs` in `kernel/bpf/syscall.c`: "so that user
//! space, when we return to it, knows that all non-sleepable programs
//! that could be running use the new map value"), and every program
//! that runs from a hook (XDP, tc, tracing) runs inside an RCU read-side
//! section. The kernel's own selftests wait so. Sleepable programs are
//! not waited for.

use std::os::fd::{AsFd, AsRawFd};

use crate::handle::{MapError, UpdateFlags};
use crate::load::LoadError;
use crate::map::MapSpec;
use crate::object::{Object, ObjectError};

/// Why [`wait_for_running_programs`] failed.
#[derive(Debug, thiserror::Error)]
pub enum GraceError {
    /// The two maps could not be described.
    #[error("{0}")]
    Object(#[from] ObjectError),
    /// The two maps could not be created.
    #[error("{0}")]
    Load(#[from] LoadError),
    /// The update that waits failed.
    #[error("{0}")]
    Update(#[from] MapError),
}

/// Returns once every non-sleepable BPF program that was running when
/// it was called has finished. It creates a one-entry array of maps and
/// an inner array, and puts the second into the first (a few tens of
/// microseconds, plus the grace period: milliseconds).
pub fn wait_for_running_programs() -> Result<(), GraceError> {
    let shape = MapSpec::array("grace_inner", 4, 1);
    let mut o = Object::new();
    let inner = o.add_map(shape.clone())?;
    let outer = o.add_map(MapSpec::array_of_maps("grace", 1, shape))?;
    let loaded = o.load()?;
    // A map-in-map's value, from user space, is the inner map's fd.
    let fd = loaded.map(inner).as_fd().as_raw_fd() as u32;
    loaded
        .map(outer)
        .update(&0u32.to_ne_bytes(), &fd.to_ne_bytes(), UpdateFlags::Any)?;
    Ok(())
}
