//! Map specifications: what to create at load time.

use aya_obj::generated::bpf_map_type as kt;

use std::path::PathBuf;

use crate::btf::{Btf, TypeId};
use crate::handle::Map;
use crate::kernel_id::KernelMapId;
use crate::object::{MapId, ProgId};
use crate::pod::Pod;

/// Map flag: allocate hash elements on demand (required for LPM tries).
pub const F_NO_PREALLOC: u32 = 1 << 0;
/// Map flag: programs may only read the map (global read-only data).
pub const F_RDONLY_PROG: u32 = 1 << 7;
/// Map flag: user space may mmap the map (array maps).
pub const F_MMAPABLE: u32 = 1 << 10;

/// The kinds of maps the builder creates.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MapType {
    /// `BPF_MAP_TYPE_ARRAY`: u32 index to value.
    Array,
    /// `BPF_MAP_TYPE_PERCPU_ARRAY`: an array with one value per CPU.
    PerCpuArray,
    /// `BPF_MAP_TYPE_HASH`.
    Hash,
    /// `BPF_MAP_TYPE_PERCPU_HASH`.
    PerCpuHash,
    /// `BPF_MAP_TYPE_LRU_HASH`: evicts the least recently used entry when full.
    LruHash,
    /// `BPF_MAP_TYPE_LRU_PERCPU_HASH`.
    LruPerCpuHash,
    /// `BPF_MAP_TYPE_LPM_TRIE`: longest-prefix match; keys start with a u32
    /// prefix length in bits.
    LpmTrie,
    /// `BPF_MAP_TYPE_RINGBUF`: a ring buffer of `max_entries` bytes.
    RingBuf,
    /// `BPF_MAP_TYPE_PROG_ARRAY`: tail-call targets.
    ProgArray,
    /// `BPF_MAP_TYPE_DEVMAP`: redirect targets by index.
    DevMap,
    /// `BPF_MAP_TYPE_DEVMAP_HASH`: redirect targets by key (e.g. ifindex).
    DevMapHash,
    /// `BPF_MAP_TYPE_CPUMAP`: redirect to CPUs.
    CpuMap,
    /// `BPF_MAP_TYPE_ARRAY_OF_MAPS`.
    ArrayOfMaps,
    /// `BPF_MAP_TYPE_HASH_OF_MAPS`.
    HashOfMaps,
    /// `BPF_MAP_TYPE_PERF_EVENT_ARRAY`: u32 CPU index to a perf event fd,
    /// the rings `bpf_perf_event_output` writes to (read them with
    /// [`crate::perf_buffer::PerfBuffer`]).
    PerfEventArray,
    /// `BPF_MAP_TYPE_STACK_TRACE`: u32 stack id (from `bpf_get_stackid`)
    /// to an array of u64 instruction addresses (see
    /// [`crate::stack_trace`]).
    StackTrace,
}

impl MapType {
    /// Every map type the builder creates.
    pub const ALL: [MapType; 16] = [
        MapType::Array,
        MapType::PerCpuArray,
        MapType::Hash,
        MapType::PerCpuHash,
        MapType::LruHash,
        MapType::LruPerCpuHash,
        MapType::LpmTrie,
        MapType::RingBuf,
        MapType::ProgArray,
        MapType::DevMap,
        MapType::DevMapHash,
        MapType::CpuMap,
        MapType::ArrayOfMaps,
        MapType::HashOfMaps,
        MapType::PerfEventArray,
        MapType::StackTrace,
    ];

    /// The map type with the kernel's `enum bpf_map_type` value `kernel`,
    /// if the builder knows it.
    pub fn from_kernel_type(kernel: u32) -> Option<MapType> {
        Self::ALL.into_iter().find(|t| t.kernel_type() == kernel)
    }

    /// The kernel's `enum bpf_map_type` value.
    pub fn kernel_type(self) -> u32 {
        (match self {
            MapType::Array => kt::BPF_MAP_TYPE_ARRAY,
            MapType::PerCpuArray => kt::BPF_MAP_TYPE_PERCPU_ARRAY,
            MapType::Hash => kt::BPF_MAP_TYPE_HASH,
            MapType::PerCpuHash => kt::BPF_MAP_TYPE_PERCPU_HASH,
            MapType::LruHash => kt::BPF_MAP_TYPE_LRU_HASH,
            MapType::LruPerCpuHash => kt::BPF_MAP_TYPE_LRU_PERCPU_HASH,
            MapType::LpmTrie => kt::BPF_MAP_TYPE_LPM_TRIE,
            MapType::RingBuf => kt::BPF_MAP_TYPE_RINGBUF,
            MapType::ProgArray => kt::BPF_MAP_TYPE_PROG_ARRAY,
            MapType::DevMap => kt::BPF_MAP_TYPE_DEVMAP,
            MapType::DevMapHash => kt::BPF_MAP_TYPE_DEVMAP_HASH,
            MapType::CpuMap => kt::BPF_MAP_TYPE_CPUMAP,
            MapType::ArrayOfMaps => kt::BPF_MAP_TYPE_ARRAY_OF_MAPS,
            MapType::HashOfMaps => kt::BPF_MAP_TYPE_HASH_OF_MAPS,
            MapType::PerfEventArray => kt::BPF_MAP_TYPE_PERF_EVENT_ARRAY,
            MapType::StackTrace => kt::BPF_MAP_TYPE_STACK_TRACE,
        }) as u32
    }

    /// Whether values are stored once per possible CPU.
    pub fn is_per_cpu(self) -> bool {
        matches!(
            self,
            MapType::PerCpuArray | MapType::PerCpuHash | MapType::LruPerCpuHash
        )
    }

    /// Whether keys are u32 indexes below `max_entries`.
    pub fn is_array_like(self) -> bool {
        matches!(
            self,
            MapType::Array
                | MapType::PerCpuArray
                | MapType::ProgArray
                | MapType::DevMap
                | MapType::CpuMap
                | MapType::ArrayOfMaps
                | MapType::PerfEventArray
        )
    }

    /// Whether the kernel writes this map type in batches
    /// (`BPF_MAP_UPDATE_BATCH`): hashes, arrays, LPM tries and maps of
    /// maps do on Linux 6.18; program arrays, devmaps and cpumaps answer
    /// `ENOTSUPP`, and their entries are written one at a time.
    /// (`tests/map_contents.rs` checks this list against the running
    /// kernel.) Older kernels have batches for fewer types (hashes and
    /// arrays since 5.6, LPM tries much later); where a batch is refused
    /// as not supported, the builder writes one entry at a time instead.
    pub fn has_batch_update(self) -> bool {
        use MapType::*;
        match self {
            Array | PerCpuArray | Hash | PerCpuHash | LruHash | LruPerCpuHash => true,
            LpmTrie | ArrayOfMaps | HashOfMaps => true,
            RingBuf | ProgArray | DevMap | DevMapHash | CpuMap => false,
            PerfEventArray | StackTrace => false,
        }
    }

    /// The name used in messages and the disassembler.
    pub fn name(self) -> &'static str {
        match self {
            MapType::Array => "array",
            MapType::PerCpuArray => "percpu_array",
            MapType::Hash => "hash",
            MapType::PerCpuHash => "percpu_hash",
            MapType::LruHash => "lru_hash",
            MapType::LruPerCpuHash => "lru_percpu_hash",
            MapType::LpmTrie => "lpm_trie",
            MapType::RingBuf => "ringbuf",
            MapType::ProgArray => "prog_array",
            MapType::DevMap => "devmap",
            MapType::DevMapHash => "devmap_hash",
            MapType::CpuMap => "cpumap",
            MapType::ArrayOfMaps => "array_of_maps",
            MapType::HashOfMaps => "hash_of_maps",
            MapType::PerfEventArray => "perf_event_array",
            MapType::StackTrace => "stack_trace",
        }
    }
}

/// An initial value of a map entry.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum InitValue {
    /// Raw bytes, `value_size` long (for per-CPU maps: copied to every CPU).
    Bytes(Vec<u8>),
    /// A program of the same object (program arrays).
    Prog(ProgId),
    /// A map of the same object (maps of maps).
    Map(MapId),
    /// A devmap/devmap-hash entry `{ifindex, program}`: the program runs on
    /// egress of that device (`ProgramType::XdpDevmap`).
    DevWithProg {
        /// Target interface index.
        ifindex: u32,
        /// Egress program, loaded for the XDP-devmap attach type.
        prog: ProgId,
    },
    /// A cpumap entry `{queue size, program}` (`ProgramType::XdpCpumap`).
    CpuWithProg {
        /// Queue size of the CPU's ring.
        qsize: u32,
        /// Program run on that CPU.
        prog: ProgId,
    },
}

impl InitValue {
    /// Whether this value needs a loaded program, so it is written after
    /// programs are loaded.
    pub fn needs_program(&self) -> bool {
        matches!(
            self,
            InitValue::Prog(_) | InitValue::DevWithProg { .. } | InitValue::CpuWithProg { .. }
        )
    }

    /// The program this value holds, if any.
    pub fn program(&self) -> Option<ProgId> {
        match *self {
            InitValue::Prog(p)
            | InitValue::DevWithProg { prog: p, .. }
            | InitValue::CpuWithProg { prog: p, .. } => Some(p),
            InitValue::Bytes(_) | InitValue::Map(_) => None,
        }
    }
}

/// A map that is already in the kernel, for an object to use instead of
/// creating one ([`Object::add_existing_map`](crate::object::Object::add_existing_map)).
#[derive(Clone, Debug)]
pub enum ExistingMap {
    /// A map this process holds a handle to (of another loaded object,
    /// say). The object keeps the handle, so the map lives at least as
    /// long as the object.
    Handle(Map),
    /// A map pinned in bpffs, opened at load.
    Pinned(PathBuf),
    /// A map by its kernel id, opened at load (needs `CAP_SYS_ADMIN`).
    Id(KernelMapId),
}

impl std::fmt::Display for ExistingMap {
    /// Where the map comes from, for messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExistingMap::Handle(m) => write!(f, "the handle of map `{}`", m.name()),
            ExistingMap::Pinned(path) => write!(f, "pinned at {}", path.display()),
            ExistingMap::Id(id) => write!(f, "kernel map id {id}"),
        }
    }
}

/// BTF types of a map's key and value, passed at map creation so that
/// `bpftool map dump` prints typed entries and the ELF writer can describe
/// the map with `key`/`value` types.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MapBtf {
    /// The types (loaded with `BPF_BTF_LOAD` when the map is created).
    pub btf: Btf,
    /// Id of the key type in `btf` (0: none, for maps without keys).
    pub key: TypeId,
    /// Id of the value type in `btf`.
    pub value: TypeId,
}

/// A map to create at load time.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MapSpec {
    /// Name (the kernel keeps the first 15 bytes).
    pub name: String,
    /// Kind of map.
    pub map_type: MapType,
    /// Key size in bytes.
    pub key_size: u32,
    /// Value size in bytes (per CPU for per-CPU maps).
    pub value_size: u32,
    /// Capacity (bytes for ring buffers).
    pub max_entries: u32,
    /// `BPF_F_*` flags.
    pub flags: u32,
    /// Template of the inner maps, for maps of maps.
    pub inner: Option<Box<MapSpec>>,
    /// Entries written after creation, in order.
    pub contents: Vec<(Vec<u8>, InitValue)>,
    /// Freeze after writing the contents: user space can no longer write.
    pub freeze: bool,
    /// Key and value types, if any.
    pub btf: Option<MapBtf>,
}

/// Why a map specification is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("map `{map}`: {reason}")]
pub struct MapSpecError {
    /// The map's name.
    pub map: String,
    /// What is wrong.
    pub reason: String,
}

impl MapSpec {
    /// A map of `map_type` with the given sizes and no contents.
    pub fn new(
        name: impl Into<String>,
        map_type: MapType,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> MapSpec {
        let flags = if map_type == MapType::LpmTrie {
            F_NO_PREALLOC
        } else {
            0
        };
        MapSpec {
            name: name.into(),
            map_type,
            key_size,
            value_size,
            max_entries,
            flags,
            inner: None,
            contents: Vec::new(),
            freeze: false,
            btf: None,
        }
    }

    /// The shape of a loaded map, named `name`: its type, sizes, entries
    /// and flags, with no contents. Maps of maps are refused (their inner
    /// shape is not in what the kernel reports), as are map types the
    /// builder does not know.
    pub fn like(name: impl Into<String>, map: &Map) -> Result<MapSpec, MapSpecError> {
        let name = name.into();
        let map_type = MapType::from_kernel_type(map.kernel_type())
            .filter(|t| !matches!(t, MapType::ArrayOfMaps | MapType::HashOfMaps))
            .ok_or_else(|| MapSpecError {
                map: name.clone(),
                reason: format!(
                    "`{}` is a map of kernel type {}: describe it with a MapSpec \
                     (maps of maps need their inner shape)",
                    map.name(),
                    map.kernel_type()
                ),
            })?;
        let mut spec = MapSpec::new(
            name,
            map_type,
            map.key_size() as u32,
            map.value_size() as u32,
            map.max_entries(),
        );
        spec.flags = map.flags();
        Ok(spec)
    }

    /// The same map without its initial contents (not copied).
    pub(crate) fn without_contents(&self) -> MapSpec {
        MapSpec {
            name: self.name.clone(),
            map_type: self.map_type,
            key_size: self.key_size,
            value_size: self.value_size,
            max_entries: self.max_entries,
            flags: self.flags,
            inner: self.inner.clone(),
            contents: Vec::new(),
            freeze: self.freeze,
            btf: self.btf.clone(),
        }
    }

    /// An array of `max_entries` values.
    pub fn array(name: impl Into<String>, value_size: u32, max_entries: u32) -> MapSpec {
        Self::new(name, MapType::Array, 4, value_size, max_entries)
    }

    /// A per-CPU array.
    pub fn per_cpu_array(name: impl Into<String>, value_size: u32, max_entries: u32) -> MapSpec {
        Self::new(name, MapType::PerCpuArray, 4, value_size, max_entries)
    }

    /// A hash map.
    pub fn hash(name: impl Into<String>, key_size: u32, value_size: u32, max: u32) -> MapSpec {
        Self::new(name, MapType::Hash, key_size, value_size, max)
    }

    /// An LPM trie whose keys hold `data_size` bytes after the prefix length.
    pub fn lpm_trie(name: impl Into<String>, data_size: u32, value_size: u32, max: u32) -> MapSpec {
        Self::new(name, MapType::LpmTrie, 4 + data_size, value_size, max)
    }

    /// A perf event array with a slot for each of `cpus` CPUs (the
    /// number of possible CPUs: [`crate::sys::bpf::possible_cpus`]).
    pub fn perf_event_array(name: impl Into<String>, cpus: u32) -> MapSpec {
        Self::new(name, MapType::PerfEventArray, 4, 4, cpus)
    }

    /// A stack trace map of `max_entries` stacks of up to `depth`
    /// addresses each (the kernel allows 127 by default).
    pub fn stack_trace(name: impl Into<String>, depth: u32, max_entries: u32) -> MapSpec {
        Self::new(
            name,
            MapType::StackTrace,
            4,
            depth.saturating_mul(8),
            max_entries,
        )
    }

    /// A ring buffer of `size` bytes (a power of two, multiple of the page size).
    pub fn ring_buf(name: impl Into<String>, size: u32) -> MapSpec {
        Self::new(name, MapType::RingBuf, 0, 0, size)
    }

    /// A program array for tail calls.
    pub fn prog_array(name: impl Into<String>, max_entries: u32) -> MapSpec {
        Self::new(name, MapType::ProgArray, 4, 4, max_entries)
    }

    /// A devmap whose entries are `{ifindex, program fd}` (8-byte values).
    pub fn devmap(name: impl Into<String>, max_entries: u32) -> MapSpec {
        Self::new(name, MapType::DevMap, 4, 8, max_entries)
    }

    /// A devmap-hash keyed by u32 whose entries are `{ifindex, program fd}`.
    pub fn devmap_hash(name: impl Into<String>, max_entries: u32) -> MapSpec {
        Self::new(name, MapType::DevMapHash, 4, 8, max_entries)
    }

    /// A cpumap whose entries are `{queue size, program fd}`.
    pub fn cpumap(name: impl Into<String>, max_entries: u32) -> MapSpec {
        Self::new(name, MapType::CpuMap, 4, 8, max_entries)
    }

    /// An array of maps shaped like `inner`.
    pub fn array_of_maps(name: impl Into<String>, max_entries: u32, inner: MapSpec) -> MapSpec {
        let mut m = Self::new(name, MapType::ArrayOfMaps, 4, 4, max_entries);
        m.inner = Some(Box::new(inner));
        m
    }

    /// A hash of maps shaped like `inner`.
    pub fn hash_of_maps(
        name: impl Into<String>,
        key_size: u32,
        max_entries: u32,
        inner: MapSpec,
    ) -> MapSpec {
        let mut m = Self::new(name, MapType::HashOfMaps, key_size, 4, max_entries);
        m.inner = Some(Box::new(inner));
        m
    }

    /// Adds `flags` to the map flags.
    pub fn with_flags(mut self, flags: u32) -> MapSpec {
        self.flags |= flags;
        self
    }

    /// Adds an initial entry.
    pub fn with_entry(mut self, key: impl Into<Vec<u8>>, value: InitValue) -> MapSpec {
        self.contents.push((key.into(), value));
        self
    }

    /// Adds an initial entry of raw bytes.
    pub fn with_bytes(self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> MapSpec {
        self.with_entry(key, InitValue::Bytes(value.into()))
    }

    /// Adds an initial entry from a typed key and value (see [`Pod`]).
    pub fn with_typed_entry<K: Pod, V: Pod>(self, key: K, value: V) -> MapSpec {
        self.with_bytes(key.to_bytes(), value.to_bytes())
    }

    /// Describes keys and values with BTF types: `key` and `value` are ids
    /// in `btf` (`key` 0 for no key type).
    pub fn with_btf(mut self, btf: Btf, key: TypeId, value: TypeId) -> MapSpec {
        self.btf = Some(MapBtf { btf, key, value });
        self
    }

    /// Freezes the map after its contents are written.
    pub fn frozen(mut self) -> MapSpec {
        self.freeze = true;
        self
    }

    fn error(&self, reason: impl Into<String>) -> MapSpecError {
        MapSpecError {
            map: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// Checks sizes, flags and contents against what the kernel accepts
    /// for the map type, so mistakes are reported before any syscall.
    pub fn validate(&self) -> Result<(), MapSpecError> {
        use MapType::*;
        // The kernel truncates longer names silently; we refuse, so names
        // stay unique and recognisable in bpftool.
        if self.name.len() > 15 {
            return Err(self.error("name is longer than 15 bytes"));
        }
        if let Some(c) = self
            .name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.'))
        {
            return Err(self.error(format!("name contains {c:?}; use [A-Za-z0-9_.]")));
        }
        let t = self.map_type;
        let need = |ok: bool, what: &str| if ok { Ok(()) } else { Err(self.error(what)) };
        if t != RingBuf {
            need(self.max_entries > 0, "max_entries must be at least 1")?;
        }
        match t {
            Array | PerCpuArray => {
                need(self.key_size == 4, "array keys are 4 bytes")?;
                need(self.value_size > 0, "value size must be at least 1")?;
            }
            Hash | PerCpuHash | LruHash | LruPerCpuHash => {
                need(self.key_size > 0, "key size must be at least 1")?;
                need(self.value_size > 0, "value size must be at least 1")?;
            }
            LpmTrie => {
                need(
                    (5..=4 + 256).contains(&self.key_size),
                    "LPM trie keys are a u32 prefix length and 1 to 256 data bytes",
                )?;
                need(self.value_size > 0, "value size must be at least 1")?;
                need(
                    self.flags & F_NO_PREALLOC != 0,
                    "LPM tries need the NO_PREALLOC flag",
                )?;
            }
            RingBuf => {
                need(
                    self.key_size == 0 && self.value_size == 0,
                    "ring buffers have no keys or values",
                )?;
                need(
                    self.max_entries.is_power_of_two() && self.max_entries >= 4096,
                    "ring buffer size must be a power of two and at least a page (4096)",
                )?;
            }
            ProgArray => need(
                self.key_size == 4 && self.value_size == 4,
                "program arrays have 4-byte keys and values",
            )?,
            DevMap | DevMapHash => need(
                self.key_size == 4 && matches!(self.value_size, 4 | 8),
                "devmap keys are 4 bytes, values 4 (ifindex) or 8 (ifindex, program)",
            )?,
            CpuMap => need(
                self.key_size == 4 && matches!(self.value_size, 4 | 8),
                "cpumap keys are 4 bytes, values 4 (queue size) or 8 (queue size, program)",
            )?,
            ArrayOfMaps | HashOfMaps => {
                need(
                    self.value_size == 4,
                    "maps of maps have 4-byte values (map fds)",
                )?;
                need(
                    t == HashOfMaps || self.key_size == 4,
                    "array keys are 4 bytes",
                )?;
                need(self.key_size > 0, "key size must be at least 1")?;
                let inner = self
                    .inner
                    .as_ref()
                    .ok_or_else(|| self.error("maps of maps need an inner map template"))?;
                need(
                    !matches!(inner.map_type, ArrayOfMaps | HashOfMaps),
                    "inner maps cannot be maps of maps",
                )?;
                inner.validate()?;
            }
            PerfEventArray => need(
                self.key_size == 4 && self.value_size == 4,
                "perf event arrays have 4-byte keys (CPUs) and values (perf event fds)",
            )?,
            StackTrace => need(
                self.key_size == 4 && self.value_size > 0 && self.value_size.is_multiple_of(8),
                "stack trace maps have 4-byte keys and values of u64 addresses",
            )?,
        }
        if let Some(b) = &self.btf {
            if b.key != 0 {
                need(
                    b.btf.size_of(b.key) == Some(self.key_size),
                    "the BTF key type's size differs from key_size",
                )?;
            }
            need(
                b.btf.size_of(b.value) == Some(self.value_size),
                "the BTF value type's size differs from value_size",
            )?;
        }
        if !matches!(t, ArrayOfMaps | HashOfMaps) && self.inner.is_some() {
            return Err(self.error("only maps of maps have an inner map"));
        }
        for (key, value) in &self.contents {
            self.check_entry(key, value)?;
        }
        Ok(())
    }

    /// Checks one initial entry against the map's type and sizes (the
    /// per-entry part of [`validate`](MapSpec::validate)), so entries can
    /// be added one at a time in constant time each. References to
    /// programs and maps are checked with the whole object.
    pub fn check_entry(&self, key: &[u8], value: &InitValue) -> Result<(), MapSpecError> {
        use MapType::*;
        let t = self.map_type;
        if t == RingBuf {
            return Err(self.error("ring buffers have no initial contents"));
        }
        if key.len() != self.key_size as usize {
            return Err(self.error(format!(
                "initial key of {} bytes, the map's keys are {}",
                key.len(),
                self.key_size
            )));
        }
        if t.is_array_like() {
            let index = u32::from_ne_bytes(key[..4].try_into().expect("4-byte key"));
            if index >= self.max_entries {
                return Err(self.error(format!(
                    "initial entry at index {index}, past max_entries {}",
                    self.max_entries
                )));
            }
        }
        let fits = match value {
            InitValue::Bytes(b) => {
                b.len() == self.value_size as usize
                    && !matches!(t, ProgArray | ArrayOfMaps | HashOfMaps)
            }
            InitValue::Prog(_) => t == ProgArray,
            InitValue::Map(_) => matches!(t, ArrayOfMaps | HashOfMaps),
            InitValue::DevWithProg { .. } => {
                matches!(t, DevMap | DevMapHash) && self.value_size == 8
            }
            InitValue::CpuWithProg { .. } => t == CpuMap && self.value_size == 8,
        };
        if !fits {
            return Err(self.error(format!(
                "initial value {value:?} does not fit a {} map with {}-byte values",
                t.name(),
                self.value_size
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_checked_per_type() {
        assert!(MapSpec::array("a", 8, 1).validate().is_ok());
        assert!(
            MapSpec::new("a", MapType::Array, 8, 8, 1)
                .validate()
                .is_err()
        );
        assert!(MapSpec::lpm_trie("t", 4, 4, 16).validate().is_ok());
        assert!(
            MapSpec::lpm_trie("t", 4, 4, 16)
                .with_flags(0)
                .validate()
                .is_ok(),
            "with_flags only adds"
        );
        let mut no_prealloc_missing = MapSpec::lpm_trie("t", 4, 4, 16);
        no_prealloc_missing.flags = 0;
        assert!(no_prealloc_missing.validate().is_err());
        assert!(MapSpec::ring_buf("rb", 4096).validate().is_ok());
        assert!(MapSpec::ring_buf("rb", 5000).validate().is_err());
        assert!(
            MapSpec::new("d", MapType::DevMap, 4, 12, 4)
                .validate()
                .is_err()
        );
    }

    #[test]
    fn contents_must_fit() {
        let e = MapSpec::array("a", 4, 2)
            .with_bytes(5u32.to_ne_bytes(), [0u8; 4])
            .validate()
            .unwrap_err();
        assert!(e.reason.contains("past max_entries"), "{e}");
        assert!(
            MapSpec::array("a", 4, 2)
                .with_bytes(1u32.to_ne_bytes(), [0u8; 3])
                .validate()
                .is_err()
        );
        assert!(
            MapSpec::prog_array("p", 2)
                .with_bytes(0u32.to_ne_bytes(), [0u8; 4])
                .validate()
                .is_err(),
            "program arrays hold programs, not bytes"
        );
    }

    #[test]
    fn maps_of_maps_need_a_template() {
        let mut m = MapSpec::array_of_maps("o", 4, MapSpec::array("i", 4, 1));
        assert!(m.validate().is_ok());
        m.inner = None;
        assert!(m.validate().is_err());
    }

    #[test]
    fn names_are_checked() {
        assert!(MapSpec::array("bad name", 4, 1).validate().is_err());
        assert!(
            MapSpec::array("a_very_long_name_x", 4, 1)
                .validate()
                .is_err()
        );
        assert!(MapSpec::array(".rodata", 4, 1).validate().is_ok());
    }
}
