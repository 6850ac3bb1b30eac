//! Map creation and element operations (single and batched).
//!
//! The kernel copies exactly `key_size` and value bytes between itself and
//! the buffers we pass, so every element operation checks the buffer
//! lengths against the map's layout. That keeps these functions safe for
//! any input. A bare fd asks the kernel for the layout on each operation
//! (one more `BPF_OBJ_GET_INFO_BY_FD`); a [`MapFd`] reads it once.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use aya_obj::generated::{BPF_F_NUMA_NODE, bpf_attr, bpf_cmd, bpf_map_type};

use super::{
    attr_member, fd_u32, info::map_info_raw, invalid_input, obj_name, slice_mut_u64, slice_u64,
    sys_bpf, sys_bpf_fd, zeroed,
};

/// What to create with `BPF_MAP_CREATE`.
#[derive(Debug, Clone, Default)]
pub struct MapCreateAttr<'a> {
    /// `bpf_map_type` value, e.g. `BPF_MAP_TYPE_HASH as u32`.
    pub map_type: u32,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU for per-CPU maps).
    pub value_size: u32,
    /// Capacity.
    pub max_entries: u32,
    /// `BPF_F_*` map flags.
    pub map_flags: u32,
    /// Name shown by `bpftool`; truncated to 15 bytes, characters outside
    /// `[A-Za-z0-9_.]` become `_`.
    pub name: &'a str,
    /// Template map for array-of-maps and hash-of-maps.
    pub inner_map_fd: Option<BorrowedFd<'a>>,
    /// Type-specific extra (bloom filter hash count, arena address).
    pub map_extra: u64,
    /// BTF object describing key and value types.
    pub btf_fd: Option<BorrowedFd<'a>>,
    /// BTF type id of the key (with `btf_fd`).
    pub btf_key_type_id: u32,
    /// BTF type id of the value (with `btf_fd`).
    pub btf_value_type_id: u32,
    /// NUMA node to allocate on; sets `BPF_F_NUMA_NODE`.
    pub numa_node: Option<u32>,
    /// Device to offload the map to (0: none).
    pub map_ifindex: u32,
}

/// `BPF_MAP_CREATE`.
pub fn map_create(attr: &MapCreateAttr<'_>) -> io::Result<OwnedFd> {
    let mut a: bpf_attr = zeroed();
    let m = attr_member!(a, __bindgen_anon_1);
    m.map_type = attr.map_type;
    m.key_size = attr.key_size;
    m.value_size = attr.value_size;
    m.max_entries = attr.max_entries;
    m.map_flags = attr.map_flags;
    m.map_name = obj_name(attr.name);
    m.inner_map_fd = attr.inner_map_fd.map_or(0, fd_u32);
    m.map_extra = attr.map_extra;
    m.btf_fd = attr.btf_fd.map_or(0, fd_u32);
    m.btf_key_type_id = attr.btf_key_type_id;
    m.btf_value_type_id = attr.btf_value_type_id;
    m.map_ifindex = attr.map_ifindex;
    if let Some(node) = attr.numa_node {
        m.map_flags |= BPF_F_NUMA_NODE;
        m.numa_node = node;
    }
    sys_bpf_fd(bpf_cmd::BPF_MAP_CREATE, &mut a)
}

/// Number of possible CPUs (`/sys/devices/system/cpu/possible`): the
/// number of slots in a per-CPU map value.
pub fn possible_cpus() -> io::Result<u32> {
    static CPUS: OnceLock<u32> = OnceLock::new();
    if let Some(&n) = CPUS.get() {
        return Ok(n);
    }
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    let n = parse_cpu_list(text.trim()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot parse possible CPU list {text:?}"),
        )
    })?;
    Ok(*CPUS.get_or_init(|| n))
}

/// Parses "0-3,5,7-8" into the number of CPUs listed (the kernel sizes
/// per-CPU values by `num_possible_cpus()`, the population count).
fn parse_cpu_list(s: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in s.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((lo, hi)) => (
                lo.trim().parse::<u32>().ok()?,
                hi.trim().parse::<u32>().ok()?,
            ),
            None => {
                let c = part.trim().parse::<u32>().ok()?;
                (c, c)
            }
        };
        n = n.checked_add(hi.checked_sub(lo)?.checked_add(1)?)?;
    }
    Some(n)
}

/// Key and value sizes as seen from user space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    key_size: usize,
    /// For per-CPU maps: `round_up(value_size, 8) * possible_cpus`.
    value_size: usize,
}

/// A map that element operations run on: its fd and its layout.
pub trait MapRef {
    /// The map's fd.
    fn map_fd(&self) -> BorrowedFd<'_>;
    /// Its key and value sizes.
    fn map_layout(&self) -> io::Result<Layout>;
}

impl MapRef for BorrowedFd<'_> {
    fn map_fd(&self) -> BorrowedFd<'_> {
        *self
    }
    fn map_layout(&self) -> io::Result<Layout> {
        layout(*self)
    }
}

impl MapRef for OwnedFd {
    fn map_fd(&self) -> BorrowedFd<'_> {
        self.as_fd()
    }
    fn map_layout(&self) -> io::Result<Layout> {
        layout(self.as_fd())
    }
}

impl<T: MapRef + ?Sized> MapRef for &T {
    fn map_fd(&self) -> BorrowedFd<'_> {
        (**self).map_fd()
    }
    fn map_layout(&self) -> io::Result<Layout> {
        (**self).map_layout()
    }
}

/// A map fd with its layout read once, so element operations cost one
/// system call each.
#[derive(Debug)]
pub struct MapFd {
    fd: OwnedFd,
    layout: Layout,
}

impl MapFd {
    /// Reads the layout of `fd` from the kernel.
    pub fn new(fd: OwnedFd) -> io::Result<MapFd> {
        let layout = layout(fd.as_fd())?;
        Ok(MapFd { fd, layout })
    }

    /// Uses `info`, which the caller read from `fd`, instead of asking
    /// the kernel again.
    pub fn with_info(fd: OwnedFd, info: &super::MapInfo) -> io::Result<MapFd> {
        let layout = layout_of(info.map_type, info.key_size, info.value_size)?;
        Ok(MapFd { fd, layout })
    }

    /// Its key and value sizes.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// A second fd for the same map.
    pub fn try_clone(&self) -> io::Result<MapFd> {
        Ok(MapFd {
            fd: self.fd.try_clone()?,
            layout: self.layout,
        })
    }
}

impl AsFd for MapFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl MapRef for MapFd {
    fn map_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
    fn map_layout(&self) -> io::Result<Layout> {
        Ok(self.layout)
    }
}

fn layout(fd: BorrowedFd<'_>) -> io::Result<Layout> {
    let info = map_info_raw(fd)?;
    layout_of(info.type_, info.key_size, info.value_size)
}

/// The user-space layout of a map of `map_type` with these sizes.
fn layout_of(map_type: u32, key_size: u32, value_size: u32) -> io::Result<Layout> {
    let per_cpu = [
        bpf_map_type::BPF_MAP_TYPE_PERCPU_HASH,
        bpf_map_type::BPF_MAP_TYPE_PERCPU_ARRAY,
        bpf_map_type::BPF_MAP_TYPE_LRU_PERCPU_HASH,
        bpf_map_type::BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
    ]
    .iter()
    .any(|&t| t as u32 == map_type);
    let value_size = if per_cpu {
        (value_size as usize).next_multiple_of(8) * possible_cpus()? as usize
    } else {
        value_size as usize
    };
    Ok(Layout {
        key_size: key_size as usize,
        value_size,
    })
}

fn check_len(what: &str, got: usize, want: usize) -> io::Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(invalid_input(format!(
            "{what} is {got} bytes but the map needs {want}"
        )))
    }
}

/// Maps ENOENT to `Ok(false)`: "no such element" is an answer, not a failure.
fn found(r: io::Result<i64>) -> io::Result<bool> {
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Fills the `BPF_MAP_*_ELEM` part of an attr.
fn elem_attr(fd: BorrowedFd<'_>, key: u64, value: u64, flags: u64) -> bpf_attr {
    let mut a: bpf_attr = zeroed();
    let e = attr_member!(a, __bindgen_anon_2);
    e.map_fd = fd_u32(fd);
    e.key = key;
    e.__bindgen_anon_1.value = value;
    e.flags = flags;
    a
}

/// `BPF_MAP_LOOKUP_ELEM`: copies the value of `key` into `value`.
/// Returns `false` when the key is absent. For per-CPU maps `value` holds
/// one 8-byte-aligned slot per possible CPU.
pub fn map_lookup_elem(
    map: impl MapRef,
    key: &[u8],
    value: &mut [u8],
    flags: u64,
) -> io::Result<bool> {
    let fd = map.map_fd();
    let l = map.map_layout()?;
    check_len("key", key.len(), l.key_size)?;
    check_len("value buffer", value.len(), l.value_size)?;
    let mut a = elem_attr(fd, slice_u64(key), slice_mut_u64(value), flags);
    found(sys_bpf(bpf_cmd::BPF_MAP_LOOKUP_ELEM, &mut a))
}

/// `BPF_MAP_UPDATE_ELEM` with `BPF_ANY`, `BPF_NOEXIST`, `BPF_EXIST` and
/// optionally `BPF_F_LOCK` in `flags`.
pub fn map_update_elem(map: impl MapRef, key: &[u8], value: &[u8], flags: u64) -> io::Result<()> {
    let fd = map.map_fd();
    let l = map.map_layout()?;
    check_len("key", key.len(), l.key_size)?;
    check_len("value", value.len(), l.value_size)?;
    let mut a = elem_attr(fd, slice_u64(key), slice_u64(value), flags);
    sys_bpf(bpf_cmd::BPF_MAP_UPDATE_ELEM, &mut a).map(drop)
}

/// `BPF_MAP_DELETE_ELEM`. Returns `false` when the key was absent.
pub fn map_delete_elem(map: impl MapRef, key: &[u8]) -> io::Result<bool> {
    let fd = map.map_fd();
    let l = map.map_layout()?;
    check_len("key", key.len(), l.key_size)?;
    let mut a = elem_attr(fd, slice_u64(key), 0, 0);
    found(sys_bpf(bpf_cmd::BPF_MAP_DELETE_ELEM, &mut a))
}

/// `BPF_MAP_GET_NEXT_KEY`: the key after `key` (or the first key when
/// `None`) goes into `next`. Returns `false` after the last key.
pub fn map_get_next_key(map: impl MapRef, key: Option<&[u8]>, next: &mut [u8]) -> io::Result<bool> {
    let fd = map.map_fd();
    let l = map.map_layout()?;
    if let Some(k) = key {
        check_len("key", k.len(), l.key_size)?;
    }
    check_len("next key buffer", next.len(), l.key_size)?;
    let mut a = elem_attr(fd, key.map_or(0, slice_u64), 0, 0);
    a.__bindgen_anon_2.__bindgen_anon_1.next_key = slice_mut_u64(next);
    found(sys_bpf(bpf_cmd::BPF_MAP_GET_NEXT_KEY, &mut a))
}

/// `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: pops `key` (empty for queue and stack
/// maps) into `value`. Returns `false` when there was nothing to pop.
pub fn map_lookup_and_delete_elem(
    map: impl MapRef,
    key: &[u8],
    value: &mut [u8],
    flags: u64,
) -> io::Result<bool> {
    let fd = map.map_fd();
    let l = map.map_layout()?;
    check_len("key", key.len(), l.key_size)?;
    check_len("value buffer", value.len(), l.value_size)?;
    let mut a = elem_attr(fd, slice_u64(key), slice_mut_u64(value), flags);
    found(sys_bpf(bpf_cmd::BPF_MAP_LOOKUP_AND_DELETE_ELEM, &mut a))
}

/// `BPF_MAP_FREEZE`: make the map read-only for system calls (programs
/// may still write unless the map is `BPF_F_RDONLY_PROG`).
pub fn map_freeze(fd: impl AsFd) -> io::Result<()> {
    let mut a: bpf_attr = zeroed();
    a.__bindgen_anon_2.map_fd = fd_u32(fd.as_fd());
    sys_bpf(bpf_cmd::BPF_MAP_FREEZE, &mut a).map(drop)
}

/// The result of one lookup batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupBatch {
    /// Elements copied into the key and value buffers.
    pub count: u32,
    /// The map has no more elements after these (the kernel said ENOENT);
    /// do not call again with the returned token.
    pub done: bool,
}

/// Batch tokens are opaque: a `u32` bucket for hash maps, a key for
/// arrays. A buffer of this many bytes fits both.
fn token_size(l: &Layout) -> usize {
    l.key_size.max(4)
}

fn batch_attr(fd: BorrowedFd<'_>, count: u32, elem_flags: u64, flags: u64) -> bpf_attr {
    let mut a: bpf_attr = zeroed();
    a.batch.map_fd = fd_u32(fd);
    a.batch.count = count;
    a.batch.elem_flags = elem_flags;
    a.batch.flags = flags;
    a
}

/// Elements that fit the caller's buffers: `min(keys, values)` by size.
fn batch_capacity(l: &Layout, keys: usize, values: usize) -> io::Result<u32> {
    let by_keys = keys.checked_div(l.key_size).unwrap_or(0);
    let by_values = values.checked_div(l.value_size).unwrap_or(0);
    let n = by_keys.min(by_values);
    if n == 0 {
        return Err(invalid_input(format!(
            "batch buffers hold no element (keys {keys} bytes, values {values} bytes, \
             element {}+{} bytes)",
            l.key_size, l.value_size
        )));
    }
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

fn lookup_batch(
    cmd: bpf_cmd,
    map: impl MapRef,
    in_batch: Option<&[u8]>,
    out_batch: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
    elem_flags: u64,
) -> io::Result<LookupBatch> {
    let fd = map.map_fd();
    let l = map.map_layout()?;
    if let Some(t) = in_batch {
        check_len("in_batch token", t.len(), token_size(&l))?;
    }
    check_len("out_batch token", out_batch.len(), token_size(&l))?;
    let count = batch_capacity(&l, keys.len(), values.len())?;
    let mut a = batch_attr(fd, count, elem_flags, 0);
    a.batch.in_batch = in_batch.map_or(0, slice_u64);
    a.batch.out_batch = slice_mut_u64(out_batch);
    a.batch.keys = slice_mut_u64(keys);
    a.batch.values = slice_mut_u64(values);
    let r = sys_bpf(cmd, &mut a);
    // SAFETY: reading a plain integer of the zero-initialised attr union,
    // which the kernel updates on success and on ENOENT.
    let count = unsafe { a.batch.count };
    match r {
        Ok(_) => Ok(LookupBatch { count, done: false }),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(LookupBatch { count, done: true }),
        Err(e) => Err(e),
    }
}

/// `BPF_MAP_LOOKUP_BATCH`: copies up to as many elements as fit `keys` and
/// `values` (each `key_size` / per-CPU value size long), starting after
/// `in_batch` (`None`: from the start), and leaves the resume token in
/// `out_batch` (at least 4 bytes and at least `key_size`; exactly
/// `max(key_size, 4)`). Reaching the end is `done: true`, not an error.
pub fn map_lookup_batch(
    map: impl MapRef,
    in_batch: Option<&[u8]>,
    out_batch: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
    elem_flags: u64,
) -> io::Result<LookupBatch> {
    lookup_batch(
        bpf_cmd::BPF_MAP_LOOKUP_BATCH,
        map,
        in_batch,
        out_batch,
        keys,
        values,
        elem_flags,
    )
}

/// `BPF_MAP_LOOKUP_AND_DELETE_BATCH`: as [`map_lookup_batch`], deleting
/// what it returns.
pub fn map_lookup_and_delete_batch(
    map: impl MapRef,
    in_batch: Option<&[u8]>,
    out_batch: &mut [u8],
    keys: &mut [u8],
    values: &mut [u8],
    elem_flags: u64,
) -> io::Result<LookupBatch> {
    lookup_batch(
        bpf_cmd::BPF_MAP_LOOKUP_AND_DELETE_BATCH,
        map,
        in_batch,
        out_batch,
        keys,
        values,
        elem_flags,
    )
}

/// A [`map_update_batch`] that stopped: the elements before `done` were
/// written, element `done` failed with `error` (or nothing was written
/// when the buffers were refused before the call).
#[derive(Debug, thiserror::Error)]
#[error("batch update stopped after {done} elements: {error}")]
pub struct UpdateBatchError {
    /// Elements written before the failure (the kernel writes in order).
    pub done: u32,
    /// Why element `done` (or the whole call) failed.
    pub error: io::Error,
}

impl From<io::Error> for UpdateBatchError {
    fn from(error: io::Error) -> Self {
        UpdateBatchError { done: 0, error }
    }
}

/// `BPF_MAP_UPDATE_BATCH`: writes `keys.len() / key_size` elements, in
/// order. Returns how many were written; on error the kernel stops at the
/// first failing element, and the error says how many were written
/// before it and why it failed. `elem_flags` takes only `BPF_F_LOCK`:
/// batches always create or replace (`BPF_ANY`).
pub fn map_update_batch(
    map: impl MapRef,
    keys: &[u8],
    values: &[u8],
    elem_flags: u64,
) -> Result<u32, UpdateBatchError> {
    let fd = map.map_fd();
    let l = map.map_layout()?;
    let n = elements(keys.len(), l.key_size)?;
    check_len("values", values.len(), n * l.value_size)?;
    let mut a = batch_attr(fd, n as u32, elem_flags, 0);
    a.batch.keys = slice_u64(keys);
    a.batch.values = slice_u64(values);
    let r = sys_bpf(bpf_cmd::BPF_MAP_UPDATE_BATCH, &mut a);
    // SAFETY: plain integer in the zero-initialised attr union, which the
    // kernel sets to the elements written once it starts writing.
    let count = unsafe { a.batch.count };
    match r {
        Ok(_) => Ok(count),
        // Refused before the first element (flags, map type without batch
        // operations, permissions): the kernel left our count as it was.
        // Once writing, it stops at a failing element, so it never
        // reports all `n` written with an error.
        Err(error) if count as usize >= n => Err(UpdateBatchError { done: 0, error }),
        Err(error) => Err(UpdateBatchError { done: count, error }),
    }
}

/// `BPF_MAP_DELETE_BATCH`: deletes `keys.len() / key_size` keys. Returns
/// how many were deleted; a missing key stops the batch with ENOENT.
pub fn map_delete_batch(map: impl MapRef, keys: &[u8], elem_flags: u64) -> io::Result<u32> {
    let fd = map.map_fd();
    let l = map.map_layout()?;
    let n = elements(keys.len(), l.key_size)?;
    let mut a = batch_attr(fd, n as u32, elem_flags, 0);
    a.batch.keys = slice_u64(keys);
    sys_bpf(bpf_cmd::BPF_MAP_DELETE_BATCH, &mut a)?;
    // SAFETY: plain integer in the zero-initialised attr union.
    Ok(unsafe { a.batch.count })
}

/// Number of whole keys in a buffer, refusing ragged or oversized input.
fn elements(len: usize, key_size: usize) -> io::Result<usize> {
    if key_size == 0 || !len.is_multiple_of(key_size) || len / key_size > u32::MAX as usize {
        return Err(invalid_input(format!(
            "keys buffer of {len} bytes is not a whole number of {key_size}-byte keys"
        )));
    }
    Ok(len / key_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_list() {
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-3"), Some(4));
        assert_eq!(parse_cpu_list("0-1,4,6-7"), Some(5));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn whole_keys() {
        assert_eq!(elements(12, 4).unwrap(), 3);
        assert!(elements(10, 4).is_err());
        assert!(elements(4, 0).is_err());
    }
}
