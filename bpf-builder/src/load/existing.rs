//! Maps an object uses rather than creates: opened from a handle, a pin
//! or a kernel id, and checked against the shape the object expects, so a
//! program never runs against a map of another shape.

use crate::handle::Map;
use crate::map::{ExistingMap, MapSpec, MapType};
use crate::sys::bpf as sys;

use super::LoadError;

/// `BPF_F_INNER_MAP`: inner maps of other sizes may replace this one.
const F_INNER_MAP: u32 = 1 << 12;

/// Opens `existing` and checks it against `spec`.
pub(super) fn open(spec: &MapSpec, existing: &ExistingMap) -> Result<Map, LoadError> {
    let opened = match existing {
        ExistingMap::Handle(map) => Ok(map.clone()),
        ExistingMap::Pinned(path) => Map::from_pin(path),
        ExistingMap::Id(id) => sys::map_get_fd_by_id(*id).and_then(Map::from_fd),
    };
    let map = opened.map_err(|source| LoadError::OpenMap {
        map: spec.name.clone(),
        from: existing.to_string(),
        source,
    })?;
    let mismatch = |reason: String| LoadError::MapMismatch {
        map: spec.name.clone(),
        from: existing.to_string(),
        reason,
    };
    if let Some(reason) = difference(spec, &map, false) {
        return Err(mismatch(reason));
    }
    if let Some(inner_spec) = &spec.inner
        && let Some(inner) = first_inner(&map).map_err(|source| LoadError::OpenMap {
            map: spec.name.clone(),
            from: existing.to_string(),
            source,
        })?
        && let Some(reason) = difference(inner_spec, &inner, true)
    {
        return Err(mismatch(format!("its inner maps: {reason}")));
    }
    Ok(map)
}

/// What differs between the shape `spec` describes and `map`, if
/// anything. An inner map template with `BPF_F_INNER_MAP` lets inner
/// maps of any size in.
fn difference(spec: &MapSpec, map: &Map, inner: bool) -> Option<String> {
    let found_type = MapType::from_kernel_type(map.kernel_type());
    if found_type != Some(spec.map_type) {
        let found = found_type.map_or_else(
            || format!("type {}", map.kernel_type()),
            |t| t.name().to_string(),
        );
        return Some(format!(
            "expected a {} map, found {found}",
            spec.map_type.name()
        ));
    }
    let sizes_free = inner && spec.flags & F_INNER_MAP != 0;
    let fields = [
        ("key size", spec.key_size, map.key_size() as u32),
        ("value size", spec.value_size, map.value_size() as u32),
        ("max_entries", spec.max_entries, map.max_entries()),
    ];
    for (what, expected, found) in fields {
        if expected != found && !(sizes_free && what == "max_entries") {
            return Some(format!("expected {what} {expected}, found {found}"));
        }
    }
    if spec.flags != map.flags() {
        return Some(format!(
            "expected flags {:#x}, found {:#x}",
            spec.flags,
            map.flags()
        ));
    }
    None
}

/// The map held by the first entry of a map of maps (`None` when it is
/// empty, so there is nothing to check the inner shape against).
fn first_inner(map: &Map) -> std::io::Result<Option<Map>> {
    let Some(key) = map.keys().next() else {
        return Ok(None);
    };
    map.inner(&key.map_err(std::io::Error::other)?)
}
