//! Handles to loaded kernel objects: [`Map`] (user-space access to its
//! entries) and [`Program`] (test runs, pinning, info). Each owns its file
//! descriptor; dropping the handle closes it, and the kernel frees the
//! object once nothing else (a pin, a link, a map entry) holds it.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;

use crate::entries::{EntryWriter, Shape};
use crate::kernel_id::{KernelMapId, KernelProgId};
use crate::map::MapType;
use crate::object::ProgramType;
use crate::pod::Pod;
use crate::run::{RunError, TestRun, TestRunOutput};
use crate::sys::bpf as sys;
use crate::text::hex_bytes;
use crate::typed_map::TypedMap;

/// How an update treats an existing key.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum UpdateFlags {
    /// Create or replace.
    #[default]
    Any,
    /// Only create; fail if the key exists.
    NoExist,
    /// Only replace; fail if the key is absent.
    Exist,
}

impl UpdateFlags {
    fn bits(self) -> u64 {
        match self {
            UpdateFlags::Any => 0,
            UpdateFlags::NoExist => 1,
            UpdateFlags::Exist => 2,
        }
    }
}

/// A map operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// A key or value of the wrong size.
    #[error("map `{map}`: {what} is {got} bytes, expected {expected}")]
    Size {
        /// The map.
        map: String,
        /// Key or value.
        what: &'static str,
        /// Bytes given.
        got: usize,
        /// Bytes the map uses.
        expected: usize,
    },
    /// An index at or past the end of an array-like map (array, devmap,
    /// cpumap, program array...): the kernel's `E2BIG`.
    #[error(
        "map `{map}`: index {index} is past the end: the map has {max_entries} entries \
         (indexes 0 to {})",
        .max_entries.saturating_sub(1)
    )]
    IndexOutOfRange {
        /// The map.
        map: String,
        /// The index written.
        index: u32,
        /// The map's size.
        max_entries: u32,
        /// The errno.
        source: io::Error,
    },
    /// A hash-like map has no room for another key (`E2BIG`, `ENOSPC` for
    /// LPM tries).
    #[error(
        "map `{map}` is full: it holds at most {max_entries} entries (delete one, or write \
         a key it already has)"
    )]
    Full {
        /// The map.
        map: String,
        /// The map's size.
        max_entries: u32,
        /// The errno.
        source: io::Error,
    },
    /// A devmap (or devmap-hash) entry names an interface index that no
    /// device has in the calling thread's network namespace (the kernel
    /// said `EINVAL` or `ENODEV`, and the index is indeed unknown).
    #[error(
        "map `{map}` entry {key}: no interface has index {ifindex} in the calling thread's \
         network namespace (the kernel looks a devmap entry's ifindex up there when the \
         entry is written)"
    )]
    NoSuchInterface {
        /// The map.
        map: String,
        /// The entry's key.
        key: u32,
        /// The index given.
        ifindex: u32,
        /// The errno.
        source: io::Error,
    },
    /// A cpumap key that is not a possible CPU of this machine (`ENODEV`).
    #[error("map `{map}` entry {cpu}: CPU {cpu} is not a possible CPU of this machine")]
    NoSuchCpu {
        /// The map.
        map: String,
        /// The key: a CPU number.
        cpu: u32,
        /// The errno.
        source: io::Error,
    },
    /// The kernel refused.
    #[error("map `{map}`: {op} failed: {source}")]
    Sys {
        /// The map.
        map: String,
        /// The operation.
        op: &'static str,
        /// The errno.
        source: io::Error,
    },
    /// One entry of many failed; those before it were written, none after.
    #[error("map `{map}`: {op} failed at entry {index} (key {}): {source}", hex_bytes(.key))]
    Entry {
        /// The map.
        map: String,
        /// The operation.
        op: &'static str,
        /// Position of the entry: how many were written before it.
        index: usize,
        /// Its key.
        key: Vec<u8>,
        /// The errno.
        source: io::Error,
    },
}

impl MapError {
    /// A failed write of `key` with `value` (as passed to the kernel) into
    /// the map `map` of kernel type `kernel_type`: in our words when the
    /// errno means something specific for that kind of map, else
    /// [`MapError::Sys`].
    pub(crate) fn update(
        map: &str,
        kernel_type: u32,
        max_entries: u32,
        key: &[u8],
        value: &[u8],
        source: io::Error,
    ) -> MapError {
        use MapType::*;
        let map = map.to_string();
        let map_type = MapType::from_kernel_type(kernel_type);
        let key = first_u32(key);
        match (source.raw_os_error(), map_type, key) {
            (Some(libc::E2BIG), Some(t), Some(index)) if t.is_array_like() => {
                MapError::IndexOutOfRange {
                    map,
                    index,
                    max_entries,
                    source,
                }
            }
            (Some(libc::E2BIG), Some(Hash | PerCpuHash | DevMapHash | HashOfMaps), _)
            | (Some(libc::ENOSPC), Some(LpmTrie), _) => MapError::Full {
                map,
                max_entries,
                source,
            },
            (Some(libc::EINVAL | libc::ENODEV), Some(DevMap | DevMapHash), Some(key))
                if first_u32(value).is_some_and(interface_missing) =>
            {
                MapError::NoSuchInterface {
                    map,
                    key,
                    ifindex: first_u32(value).expect("checked above"),
                    source,
                }
            }
            (Some(libc::ENODEV), Some(CpuMap), Some(cpu)) => {
                MapError::NoSuchCpu { map, cpu, source }
            }
            _ => MapError::Sys {
                map,
                op: "update",
                source,
            },
        }
    }
}

/// The native-endian u32 at the start of `bytes`, if it has 4 or more.
fn first_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(..4)?.try_into().ok()?))
}

/// Whether no device has index `ifindex` in the calling thread's network
/// namespace (0 means "no device" in a devmap value, not a missing one).
fn interface_missing(ifindex: u32) -> bool {
    ifindex != 0
        && matches!(
            crate::sys::netns::if_indextoname(ifindex).map_err(|e| e.raw_os_error()),
            Err(Some(libc::ENXIO | libc::ENODEV))
        )
}

/// A key and its value, as bytes.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A loaded map. Clones share one file descriptor (closed with the last
/// clone); [`try_clone`](Map::try_clone) makes a second one.
#[derive(Debug, Clone)]
pub struct Map {
    fd: Arc<sys::MapFd>,
    name: String,
    kernel_type: u32,
    key_size: usize,
    value_size: usize,
    max_entries: u32,
    flags: u32,
    /// Slots per value in user space: possible CPUs for per-CPU maps, else 1.
    cpus: usize,
}

fn per_cpu(kernel_type: u32) -> bool {
    MapType::from_kernel_type(kernel_type).is_some_and(MapType::is_per_cpu)
}

impl Map {
    /// Wraps a map fd, reading its shape from the kernel.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Map> {
        let info = sys::map_info(fd.as_fd())?;
        let cpus = if per_cpu(info.map_type) {
            sys::possible_cpus()? as usize
        } else {
            1
        };
        Ok(Map {
            fd: Arc::new(sys::MapFd::with_info(fd, &info)?),
            name: info.name,
            kernel_type: info.map_type,
            key_size: info.key_size as usize,
            value_size: info.value_size as usize,
            max_entries: info.max_entries,
            flags: info.map_flags,
            cpus,
        })
    }

    /// Opens a map pinned in bpffs.
    pub fn from_pin(path: impl AsRef<Path>) -> io::Result<Map> {
        Map::from_fd(sys::obj_get(path.as_ref(), 0)?)
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The kernel's `bpf_map_type`.
    pub fn kernel_type(&self) -> u32 {
        self.kernel_type
    }

    /// Key size in bytes.
    pub fn key_size(&self) -> usize {
        self.key_size
    }

    /// Value size in bytes (of one CPU's value for per-CPU maps).
    pub fn value_size(&self) -> usize {
        self.value_size
    }

    /// Capacity.
    pub fn max_entries(&self) -> u32 {
        self.max_entries
    }

    /// The `BPF_F_*` flags it was created with.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// Whether values are per CPU.
    pub fn is_per_cpu(&self) -> bool {
        per_cpu(self.kernel_type)
    }

    /// The kernel's id of the map.
    pub fn id(&self) -> io::Result<KernelMapId> {
        Ok(sys::map_info(self.fd.as_fd())?.id)
    }

    fn sys_err(&self, op: &'static str) -> impl FnOnce(io::Error) -> MapError + '_ {
        move |source| MapError::Sys {
            map: self.name.clone(),
            op,
            source,
        }
    }

    fn check(&self, what: &'static str, got: usize, expected: usize) -> Result<(), MapError> {
        if got == expected {
            Ok(())
        } else {
            Err(MapError::Size {
                map: self.name.clone(),
                what,
                got,
                expected,
            })
        }
    }

    /// Bytes of one user-space value: per-CPU values are 8-byte aligned slots.
    fn slot(&self) -> usize {
        if self.is_per_cpu() {
            self.value_size.next_multiple_of(8)
        } else {
            self.value_size
        }
    }

    fn lookup_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        self.check("key", key.len(), self.key_size)?;
        let mut value = vec![0u8; self.slot() * self.cpus];
        let found =
            sys::map_lookup_elem(&*self.fd, key, &mut value, 0).map_err(self.sys_err("lookup"))?;
        Ok(found.then_some(value))
    }

    /// The value of `key` (for per-CPU maps: the first CPU's; see
    /// [`lookup_per_cpu`](Map::lookup_per_cpu)).
    pub fn lookup(&self, key: &[u8]) -> Result<Option<Vec<u8>>, MapError> {
        Ok(self.lookup_raw(key)?.map(|mut v| {
            v.truncate(self.value_size);
            v
        }))
    }

    /// The map a map of maps holds at `key`, or `None` when it holds
    /// none there. User space reads the inner map's kernel id where a
    /// program sees the map; this opens the map by that id.
    pub fn inner(&self, key: &[u8]) -> io::Result<Option<Map>> {
        let Some(value) = self.lookup(key).map_err(io::Error::other)? else {
            return Ok(None);
        };
        let id = value
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_ne_bytes)
            .ok_or_else(|| io::Error::other("a map of maps' value is a 4-byte map id"))?;
        sys::map_get_fd_by_id(KernelMapId::new(id))
            .and_then(Map::from_fd)
            .map(Some)
    }

    /// The values of `key` on every possible CPU.
    pub fn lookup_per_cpu(&self, key: &[u8]) -> Result<Option<Vec<Vec<u8>>>, MapError> {
        let slot = self.slot();
        Ok(self.lookup_raw(key)?.map(|v| {
            v.chunks(slot)
                .map(|c| c[..self.value_size].to_vec())
                .collect()
        }))
    }

    /// The sum over CPUs of a native-endian u64 counter at `offset`
    /// in the value of `key` (0 when absent).
    pub fn sum_u64(&self, key: &[u8], offset: usize) -> Result<u64, MapError> {
        if offset + 8 > self.value_size {
            return Err(MapError::Size {
                map: self.name.clone(),
                what: "counter offset + 8",
                got: offset + 8,
                expected: self.value_size,
            });
        }
        let values = self.lookup_per_cpu(key)?.unwrap_or_default();
        Ok(values
            .iter()
            .map(|v| u64::from_ne_bytes(v[offset..offset + 8].try_into().expect("8 bytes")))
            .fold(0u64, u64::wrapping_add))
    }

    /// Sets `key` to `value` (for per-CPU maps: on every CPU).
    ///
    /// The kernel's errnos that mean something specific for the map come
    /// back in its words: an index past the end of an array-like map
    /// ([`MapError::IndexOutOfRange`]), a full hash
    /// ([`MapError::Full`]), a devmap entry naming a device the calling
    /// thread's network namespace lacks ([`MapError::NoSuchInterface`]),
    /// a cpumap key that is no possible CPU ([`MapError::NoSuchCpu`]).
    pub fn update(&self, key: &[u8], value: &[u8], flags: UpdateFlags) -> Result<(), MapError> {
        self.check("value", value.len(), self.value_size)?;
        let values: Vec<&[u8]> = vec![value; self.cpus];
        self.update_per_cpu(key, &values, flags)
    }

    /// Sets `key` to one value per possible CPU.
    pub fn update_per_cpu(
        &self,
        key: &[u8],
        values: &[&[u8]],
        flags: UpdateFlags,
    ) -> Result<(), MapError> {
        self.check("key", key.len(), self.key_size)?;
        self.check("number of per-CPU values", values.len(), self.cpus)?;
        let slot = self.slot();
        let mut buf = vec![0u8; slot * self.cpus];
        for (chunk, v) in buf.chunks_mut(slot).zip(values) {
            self.check("value", v.len(), self.value_size)?;
            chunk[..v.len()].copy_from_slice(v);
        }
        sys::map_update_elem(&*self.fd, key, &buf, flags.bits()).map_err(|source| {
            MapError::update(
                &self.name,
                self.kernel_type,
                self.max_entries,
                key,
                &buf,
                source,
            )
        })
    }

    /// Puts `prog` at `index` of a program array (tail-call targets), or
    /// empties the slot for `None`: a program loaded later (see
    /// [`Loaded::load_program`](crate::load::Loaded::load_program)) takes
    /// over from the next tail call on.
    pub fn set_program(&self, index: u32, prog: Option<&Program>) -> Result<(), MapError> {
        if MapType::from_kernel_type(self.kernel_type) != Some(MapType::ProgArray) {
            return Err(MapError::Sys {
                map: self.name.clone(),
                op: "set program",
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a program array"),
            });
        }
        match prog {
            Some(p) => {
                let fd = p.as_fd().as_raw_fd() as u32;
                self.update(&index.to_ne_bytes(), &fd.to_ne_bytes(), UpdateFlags::Any)
            }
            None => self.delete(&index.to_ne_bytes()).map(|_| ()),
        }
    }

    /// Deletes `key`; `false` if it was absent.
    pub fn delete(&self, key: &[u8]) -> Result<bool, MapError> {
        self.check("key", key.len(), self.key_size)?;
        sys::map_delete_elem(&*self.fd, key).map_err(self.sys_err("delete"))
    }

    /// All keys, in the kernel's order.
    pub fn keys(&self) -> Keys<'_> {
        Keys {
            map: self,
            prev: None,
            done: false,
        }
    }

    /// All entries (first CPU's value for per-CPU maps). An entry deleted
    /// during the walk is skipped.
    pub fn iter(&self) -> impl Iterator<Item = Result<Entry, MapError>> + '_ {
        self.keys().filter_map(move |k| match k {
            Ok(k) => match self.lookup(&k) {
                Ok(Some(v)) => Some(Ok((k, v))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            },
            Err(e) => Some(Err(e)),
        })
    }

    /// Looks up entries in batches (`BPF_MAP_LOOKUP_BATCH`) of up to
    /// `batch` entries: one system call per batch instead of two per entry.
    /// Values are the raw per-CPU slots for per-CPU maps.
    pub fn lookup_batch_all(&self, batch: u32) -> Result<Vec<Entry>, MapError> {
        let vlen = self.slot() * self.cpus;
        let n = batch.max(1) as usize;
        let mut keys = vec![0u8; n * self.key_size];
        let mut values = vec![0u8; n * vlen];
        let mut token_in: Option<Vec<u8>> = None;
        let mut token_out = vec![0u8; self.key_size.max(4)];
        let mut out = Vec::new();
        loop {
            let r = sys::map_lookup_batch(
                &*self.fd,
                token_in.as_deref(),
                &mut token_out,
                &mut keys,
                &mut values,
                0,
            )
            .map_err(self.sys_err("lookup batch"))?;
            for i in 0..r.count as usize {
                out.push((
                    keys[i * self.key_size..(i + 1) * self.key_size].to_vec(),
                    values[i * vlen..(i + 1) * vlen].to_vec(),
                ));
            }
            if r.done {
                return Ok(out);
            }
            token_in = Some(token_out.clone());
        }
    }

    /// Writes many entries in one system call (`BPF_MAP_UPDATE_BATCH`);
    /// `keys` and `values` are back to back (values as the kernel lays
    /// them out: for per-CPU maps, one 8-byte aligned slot per possible
    /// CPU). Returns how many were written. The map type must have batch
    /// updates ([`MapType::has_batch_update`]); typed maps batch where
    /// they can and write one by one elsewhere
    /// ([`TypedMap::insert_batch`]).
    pub fn update_batch(&self, keys: &[u8], values: &[u8]) -> Result<u32, MapError> {
        let n = keys.len() / self.key_size.max(1);
        self.check("keys", keys.len(), n * self.key_size)?;
        self.check("values", values.len(), n * self.slot() * self.cpus)?;
        sys::map_update_batch(&*self.fd, keys, values, 0).map_err(|e| {
            let index = e.done as usize;
            MapError::Entry {
                map: self.name.clone(),
                op: "update batch",
                index,
                key: keys
                    .get(index * self.key_size..(index + 1) * self.key_size)
                    .unwrap_or_default()
                    .to_vec(),
                source: e.error,
            }
        })
    }

    /// A typed view of the map: keys of type `K` and values of type `V`,
    /// whose sizes must be the map's key and value sizes (one CPU's value
    /// for per-CPU maps).
    ///
    /// ```no_run
    /// use std::net::Ipv4Addr;
    /// use bpf_builder::map::MapSpec;
    /// use bpf_builder::object::Object;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut obj = Object::new();
    /// let id = obj.add_map(MapSpec::hash("blocked", 4, 8, 100_000))?;
    /// let loaded = obj.load()?;
    /// let blocked = loaded.map(id).typed::<Ipv4Addr, u64>()?;
    /// blocked.insert_batch((0..50_000u32).map(|i| (Ipv4Addr::from(0x0a00_0000 + i), 0)))?;
    /// assert_eq!(blocked.get(&Ipv4Addr::new(10, 0, 0, 7))?, Some(0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn typed<K: Pod, V: Pod>(&self) -> Result<TypedMap<'_, K, V>, MapError> {
        self.check("typed key", K::SIZE, self.key_size)?;
        self.check("typed value", V::SIZE, self.value_size)?;
        Ok(TypedMap::new(self))
    }

    /// Creates or replaces every entry of `entries` (keys and values as
    /// bytes), in order: the byte-level [`TypedMap::insert_batch`], one
    /// `BPF_MAP_UPDATE_BATCH` per chunk of entries where the kernel has
    /// batch updates for the map type, one update per entry elsewhere.
    /// Returns how many were written. On failure, [`MapError::Entry`]
    /// names the entry that failed; those before it were written, none
    /// after.
    pub fn update_all<'e>(
        &self,
        entries: impl IntoIterator<Item = (&'e [u8], &'e [u8])>,
    ) -> Result<usize, MapError> {
        let mut writer = self.writer();
        for (key, value) in entries {
            writer
                .push(key, value)
                .map_err(|e| self.entry_error("update all", e))?;
        }
        writer
            .finish()
            .map_err(|e| self.entry_error("update all", e))
    }

    /// The error of entry writes `op` that stopped at `e`.
    pub(crate) fn entry_error(&self, op: &'static str, e: crate::entries::EntryError) -> MapError {
        MapError::Entry {
            map: self.name.clone(),
            op,
            index: e.index,
            key: e.key,
            source: e.source,
        }
    }

    /// A writer of many entries to this map, batched where the kernel
    /// has batch updates for its type.
    pub(crate) fn writer(&self) -> EntryWriter<&sys::MapFd> {
        let batch =
            MapType::from_kernel_type(self.kernel_type).is_some_and(MapType::has_batch_update);
        EntryWriter::new(
            &*self.fd,
            Shape {
                key_size: self.key_size,
                value_size: self.value_size,
                per_cpu: self.is_per_cpu().then_some(self.cpus),
                batch,
            },
        )
    }

    /// Deletes many keys in one system call. Returns how many were deleted.
    pub fn delete_batch(&self, keys: &[u8]) -> Result<u32, MapError> {
        let n = keys.len() / self.key_size.max(1);
        self.check("keys", keys.len(), n * self.key_size)?;
        sys::map_delete_batch(&*self.fd, keys, 0).map_err(self.sys_err("delete batch"))
    }

    /// Makes the map read-only for system calls.
    pub fn freeze(&self) -> Result<(), MapError> {
        sys::map_freeze(self.fd.as_fd()).map_err(self.sys_err("freeze"))
    }

    /// Pins the map in bpffs (mounting bpffs at /sys/fs/bpf if needed).
    pub fn pin(&self, path: impl AsRef<Path>) -> io::Result<()> {
        pin(self.fd.as_fd(), path.as_ref())
    }

    /// A second handle to the same map, with a file descriptor of its own.
    pub fn try_clone(&self) -> io::Result<Map> {
        Ok(Map {
            fd: Arc::new(self.fd.try_clone()?),
            ..self.clone()
        })
    }
}

impl AsFd for Map {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Iterator over the keys of a [`Map`].
pub struct Keys<'m> {
    map: &'m Map,
    prev: Option<Vec<u8>>,
    done: bool,
}

impl Iterator for Keys<'_> {
    type Item = Result<Vec<u8>, MapError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let mut next = vec![0u8; self.map.key_size];
        match sys::map_get_next_key(&*self.map.fd, self.prev.as_deref(), &mut next) {
            Ok(true) => {
                self.prev = Some(next.clone());
                Some(Ok(next))
            }
            Ok(false) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err((self.map.sys_err("next key"))(e)))
            }
        }
    }
}

/// A loaded program.
#[derive(Debug)]
pub struct Program {
    fd: OwnedFd,
    name: String,
    prog_type: Option<ProgramType>,
    log: String,
}

impl Program {
    pub(crate) fn new(fd: OwnedFd, name: String, prog_type: ProgramType, log: String) -> Self {
        Program {
            fd,
            name,
            prog_type: Some(prog_type),
            log,
        }
    }

    /// Wraps a program fd (its type is then unknown to the builder).
    pub fn from_fd(fd: OwnedFd) -> io::Result<Program> {
        let info = sys::prog_info(fd.as_fd())?;
        Ok(Program {
            fd,
            name: info.name,
            prog_type: None,
            log: String::new(),
        })
    }

    /// Opens a program pinned in bpffs.
    pub fn from_pin(path: impl AsRef<Path>) -> io::Result<Program> {
        Program::from_fd(sys::obj_get(path.as_ref(), 0)?)
    }

    /// The program's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The type it was built as, if loaded by the builder.
    pub fn prog_type(&self) -> Option<ProgramType> {
        self.prog_type
    }

    /// The verifier log of a load with logging requested (empty otherwise).
    pub fn verifier_log(&self) -> &str {
        &self.log
    }

    /// What the kernel reports about the program (id, tag, sizes, maps).
    pub fn info(&self) -> io::Result<sys::ProgInfo> {
        sys::prog_info(self.fd.as_fd())
    }

    /// The kernel's id of the program.
    pub fn id(&self) -> io::Result<KernelProgId> {
        Ok(self.info()?.id)
    }

    /// Runs the program once or `repeat` times on test input.
    pub fn test_run(&self, run: &TestRun<'_>) -> Result<TestRunOutput, RunError> {
        crate::run::test_run(self.fd.as_fd(), run)
    }

    /// Runs a raw tracepoint program once with `args`, as a `BEGIN` or
    /// `END` probe: see [`run_once`](crate::run::run_once).
    pub fn run_once(&self, args: &[u64]) -> Result<u32, RunError> {
        crate::run::run_once(self.fd.as_fd(), args)
    }

    /// Pins the program in bpffs (mounting bpffs at /sys/fs/bpf if needed).
    pub fn pin(&self, path: impl AsRef<Path>) -> io::Result<()> {
        pin(self.fd.as_fd(), path.as_ref())
    }

    /// A second handle to the same program.
    pub fn try_clone(&self) -> io::Result<Program> {
        Ok(Program {
            fd: self.fd.try_clone()?,
            name: self.name.clone(),
            prog_type: self.prog_type,
            log: self.log.clone(),
        })
    }
}

impl AsFd for Program {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Pins `fd` at `path`, mounting bpffs on /sys/fs/bpf first when the path
/// is under it and it is not mounted.
fn pin(fd: BorrowedFd<'_>, path: &Path) -> io::Result<()> {
    let root = Path::new("/sys/fs/bpf");
    if path.starts_with(root) {
        sys::ensure_bpffs(root)?;
    }
    sys::obj_pin(fd, path)
}
