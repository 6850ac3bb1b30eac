//! A deployed set's map and its replacement. A deployed program finds
//! each set's map in slot 0 of a one-entry array of maps, pinned as the
//! unit's `setN` member ([`crate::compile::sets::SetMap::swappable_spec`]);
//! the code reads the slot on every packet, so a map put in the slot
//! with one update replaces the whole set for the next packet.

use std::os::fd::{AsFd, AsRawFd};

use bpf_builder::handle::{Map, UpdateFlags};
use bpf_builder::map::{MapSpec, MapType};
use bpf_builder::object::Object;

use super::DeployError;
use super::meta::SetMeta;

/// Whether `map` is an array of maps (a set's pinned map, deployed by a
/// build that swaps sets), not the set's map itself (an earlier build's).
pub(super) fn is_swappable(map: &Map) -> bool {
    MapType::from_kernel_type(map.kernel_type()) == Some(MapType::ArrayOfMaps)
}

/// The map holding the set whose pinned map is `pinned` (called `name`
/// in errors): the map in slot 0 of an array of maps, or `pinned` itself.
pub(super) fn contents(name: &str, pinned: &Map) -> Result<Map, DeployError> {
    if !is_swappable(pinned) {
        return pinned
            .try_clone()
            .map_err(DeployError::io(format!("opening {name}")));
    }
    pinned
        .inner(&0u32.to_ne_bytes())
        .map_err(DeployError::io(format!("opening the set map of {name}")))?
        .ok_or_else(|| DeployError::Other(format!("{name}: holds no set map")))
}

/// A new, empty map of the shape of `like` (the set `set`'s map), that
/// can replace it in its array of maps.
pub(super) fn new_contents(set: &SetMeta, like: &Map) -> Result<Map, DeployError> {
    let err = |e: &dyn std::fmt::Display| {
        DeployError::Other(format!("making a new map for set `{}`: {e}", set.name))
    };
    let name = like.name().to_string();
    let spec = if set.stateful {
        // Its values hold a lock: the kernel needs their type.
        crate::compile::dynset::map(&name, like.key_size() as u32, like.max_entries())
    } else {
        MapSpec::like(name, like).map_err(|e| err(&e))?
    };
    let mut o = Object::new();
    let id = o.add_map(spec).map_err(|e| err(&e))?;
    let loaded = o.load().map_err(|e| err(&e))?;
    loaded.map(id).try_clone().map_err(|e| err(&e))
}

/// Puts `new` in slot 0 of `pinned` (called `name` in errors), in place
/// of the set's map: one update, which the next packet sees whole.
pub(super) fn swap(name: &str, pinned: &Map, new: &Map) -> Result<(), DeployError> {
    let fd = new.as_fd().as_raw_fd() as u32;
    pinned
        .update(&0u32.to_ne_bytes(), &fd.to_ne_bytes(), UpdateFlags::Any)
        .map_err(|e| DeployError::Other(format!("swapping {name}: {e}")))
}
