//! Per-verdict counters: a per-CPU array of two `u64`s, packets matched
//! and packets seen, that the verdict code adds to (see
//! `ProgramOptions::counters`).

use bpf_builder::asm::Asm;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AtomicOp, JmpOp, Reg, Size};
use bpf_builder::map::MapSpec;
use bpf_builder::object::MapId;

use super::frame::COUNTER_KEY_SLOT;

/// Index of the packets-matched counter.
pub const COUNTER_MATCHED: u32 = 0;

/// Index of the packets-seen counter.
pub const COUNTER_SEEN: u32 = 1;

/// The counters' map, named `name`: a per-CPU array of two `u64`s,
/// [`COUNTER_MATCHED`] and [`COUNTER_SEEN`].
pub fn counters_map(name: &str) -> MapSpec {
    MapSpec::per_cpu_array(name, 8, 2)
}

/// `map[index] += 1` on this CPU; clobbers r0-r5.
pub(super) fn count(a: &mut Asm, map: MapId, index: u32) {
    let skip = a.new_label();
    a.st(Size::W, Reg::R10, COUNTER_KEY_SLOT, index as i32);
    a.ld_map_fd(Reg::R1, map);
    a.mov64(Reg::R2, Reg::R10);
    a.add64(Reg::R2, i32::from(COUNTER_KEY_SLOT));
    a.call(Helper::MapLookupElem);
    // A per-CPU array has every index below its size: never taken, but
    // the verifier wants the check.
    a.jmp(JmpOp::Eq, Reg::R0, 0, skip);
    a.mov64(Reg::R1, 1);
    a.atomic(AtomicOp::Add, Size::DW, Reg::R0, 0, Reg::R1);
    a.bind(skip);
}
