//! The dispatcher program: `xdp_dispatcher` calls the global functions
//! `prog0`, `prog1`, ... in turn, each replaced by a member program (an
//! extension), and goes on to the next while the action returned is in
//! that slot's chain-call set. The set is read from the configuration map,
//! frozen and read-only, so the verifier sees constants, as in libxdp's.

use crate::asm::{Asm, Code};
use crate::insn::{AluOp, JmpOp, Reg, Size};
use crate::object::{Object, ObjectError, ProgId, ProgramSpec, ProgramType};

use super::config::{self, Config};

/// The name libxdp recognises a dispatcher by.
pub const NAME: &str = "xdp_dispatcher";
/// The name of the configuration map (libbpf names libxdp's alike).
const CONFIG_MAP: &str = "xdp_disp.rodata";
/// `XDP_PASS`: what a packet gets once every slot has let it through.
const XDP_PASS: i32 = 2;

/// The name of slot `i`'s function.
pub fn slot_function(i: usize) -> String {
    format!("prog{i}")
}

/// Builds the dispatcher of `config` (its `slots` first slots in use): an
/// object with the configuration map and the program, whose id it returns.
pub fn build(config: &Config) -> Result<(Object, ProgId), ObjectError> {
    let mut object = Object::new();
    let map = object.add_rodata(CONFIG_MAP, &config.to_bytes())?;
    let slots = usize::from(config.slots);
    let mut functions = Vec::with_capacity(slots);
    for i in 0..slots {
        functions.push(object.add_global_function(&slot_function(i), stub())?);
    }

    let mut a = Asm::new();
    let ret = a.new_label();
    a.mov64(Reg::R6, Reg::R1);
    for (i, f) in functions.into_iter().enumerate() {
        a.mov64(Reg::R1, Reg::R6);
        a.call_func(f);
        // Go on when bit r0 of the slot's chain-call set is set.
        a.ld_map_value(Reg::R1, map, config::chain_actions_offset(i));
        a.ldx(Size::W, Reg::R1, Reg::R1, 0);
        a.mov32(Reg::R2, 1);
        a.alu32(AluOp::Lsh, Reg::R2, Reg::R0);
        a.alu32(AluOp::And, Reg::R2, Reg::R1);
        a.jmp32(JmpOp::Eq, Reg::R2, 0, ret);
    }
    a.mov64(Reg::R0, XDP_PASS);
    a.bind(ret);
    a.exit();
    // Every label above is bound: the code always assembles.
    let code = a.finish().expect("the dispatcher assembles");
    let mut spec = ProgramSpec::new(NAME, ProgramType::Xdp, code);
    spec.xdp_frags = config.frags;
    let prog = object.add_program_spec(spec)?;
    Ok((object, prog))
}

/// An empty slot: returns [`config::SLOT_RETVAL`], which every slot's
/// chain-call set holds.
fn stub() -> Code {
    let mut a = Asm::new();
    a.mov64(Reg::R0, config::SLOT_RETVAL as i32);
    a.exit();
    a.finish().expect("two instructions assemble")
}
