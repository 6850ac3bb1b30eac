//! The generation switch: one small program per hook that a deployed
//! ruleset attaches in place of its rules, so that one map write moves
//! every hook of the ruleset to new rules at once.
//!
//! Each hook's switch program reads the ruleset's generation (entry 0 of
//! a one-entry array shared by every hook, [`GENERATION_MAP`]) and
//! tail-calls slot `generation` of its own two-slot program array
//! ([`SLOTS_MAP`]), which holds that generation's rules. A reload puts
//! the new rules in the other slot of every hook, then writes the
//! generation once: each packet reads it once per hook, so every hook
//! runs the old rules before that write and the new ones after it, as
//! nft's generation cursor flips every hook of a transaction at once.
//! An empty slot (a hook new in this reload, before the write) lets the
//! packet through, as a hook with no rules does.

use bpf_builder::asm::Asm;
use bpf_builder::ctx::{TcxAction, XdpAction};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{Reg, Size};
use bpf_builder::map::{ExistingMap, MapSpec};
use bpf_builder::object::{MapId, Object, ProgId, ProgramType};
use pktmatch::Span;

use super::Attach;
use super::actions::array_lookup;
use crate::error::Error;

/// The generation map: one `u32`, the slot every hook runs (0 or 1).
pub const GENERATION_MAP: &str = "nft_generation";

/// A hook's program array of two slots, one a generation.
pub const SLOTS_MAP: &str = "nft_slots";

/// The slots of a switch: the running generation's and the next one's.
pub const SLOTS: u32 = 2;

/// The generation map's specification.
pub fn generation_spec() -> MapSpec {
    MapSpec::array(GENERATION_MAP, 4, 1)
}

/// A hook's switch program in its object.
#[derive(Debug, Clone)]
pub struct Switch {
    /// The object: the program, the generation map (existing when the
    /// ruleset has one already) and the hook's slots.
    pub object: Object,
    /// The switch program.
    pub prog: ProgId,
    /// The generation map.
    pub generation: MapId,
    /// The hook's program array.
    pub slots: MapId,
}

/// The switch program's name, within the kernel's 15 bytes.
pub fn switch_name(attach: Attach) -> &'static str {
    match attach {
        Attach::Xdp => "nft_sw_xdp",
        Attach::TcxIngress => "nft_sw_tcx_in",
        Attach::TcxEgress => "nft_sw_tcx_eg",
    }
}

/// Builds the switch of a hook `attach`, reading `generation` (the
/// ruleset's map, or a new one when `None`).
pub fn build_switch(attach: Attach, generation: Option<ExistingMap>) -> Result<Switch, Error> {
    let internal = |e: &dyn std::fmt::Display| Error::new(e.to_string(), Span::default());
    let mut object = Object::new();
    let gen_map = match generation {
        Some(existing) => object.add_existing_map(generation_spec(), existing),
        None => object.add_map(generation_spec()),
    }
    .map_err(|e| internal(&e))?;
    let slots = object
        .add_map(MapSpec::prog_array(SLOTS_MAP, SLOTS))
        .map_err(|e| internal(&e))?;
    let (pass, ptype) = match attach {
        Attach::Xdp => (XdpAction::Pass.value(), ProgramType::Xdp),
        _ => (TcxAction::Next.value(), ProgramType::SchedCls),
    };
    let mut a = Asm::new();
    let empty = a.new_label();
    a.mov64(Reg::R6, Reg::R1);
    array_lookup(&mut a, gen_map, 0, empty);
    a.ldx(Size::W, Reg::R3, Reg::R0, 0);
    a.mov64(Reg::R1, Reg::R6);
    a.ld_map_fd(Reg::R2, slots);
    a.call(Helper::TailCall);
    // The slot is empty: no rules yet (or any more) on this hook.
    a.bind(empty);
    a.mov32(Reg::R0, pass);
    a.exit();
    let code = a.finish().map_err(|e| internal(&e))?;
    let prog = object
        .add_program(switch_name(attach), ptype, code)
        .map_err(|e| internal(&e))?;
    Ok(Switch {
        object,
        prog,
        generation: gen_map,
        slots,
    })
}
