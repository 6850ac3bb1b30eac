//! Symbolic references inside instructions. They stay symbolic in
//! [`Code`](crate::asm::Code) and [`Object`](crate::object::Object); only
//! loading (or ELF export) turns them into file descriptors and offsets.

use crate::object::{FuncId, MapId};

/// What an instruction refers to, resolved at load time.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Reloc {
    /// `ld_imm64 dst, map` (`BPF_PSEUDO_MAP_FD`): the map itself, for helpers
    /// such as `bpf_map_lookup_elem`.
    MapFd(MapId),
    /// `ld_imm64 dst, &value + offset` (`BPF_PSEUDO_MAP_VALUE`): a pointer into
    /// the single value of an array map (global data).
    MapValue {
        /// The array map.
        map: MapId,
        /// Byte offset into its value.
        offset: u32,
    },
    /// `call` to an object-level function (bpf-to-bpf call).
    Call(FuncId),
    /// `ld_imm64 dst, &function` (`BPF_PSEUDO_FUNC`), for callbacks.
    FuncPtr(FuncId),
}
