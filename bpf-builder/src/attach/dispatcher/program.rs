//! The dispatcher program: `xdp_dispatcher` calls the global functions
//! `prog0`, `prog1`, ... in turn, each replaced by a member program (an
//! extension), and goes on to the next while the action returned is in
//! that slot's chain-call set. The set is read from the configuration map,
//! frozen and read-only, so the verifier sees constants, as in libxdp's.

use crate::asm::{Asm, Code};
use crate::helpers::Helper;
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
/// chain-call set holds. It moves the frame's tail by nothing, as
/// libxdp's slots do: kernels from 6.13 let an extension change packet
/// data only in place of a function that may change it too.
fn stub() -> Code {
    let mut a = Asm::new();
    a.mov64(Reg::R2, 0);
    a.call(Helper::XdpAdjustTail);
    a.mov64(Reg::R0, config::SLOT_RETVAL as i32);
    a.exit();
    a.finish().expect("two instructions assemble")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::TestRun;

    /// The dispatcher alone loads, and with every slot empty passes the
    /// frame: each stub returns the value every chain-call set holds.
    #[test]
    fn an_empty_dispatcher_verifies_and_passes() {
        let mut config = Config {
            slots: 3,
            ..Config::default()
        };
        for i in 0..3 {
            config.chain_actions[i] = 1 << config::SLOT_RETVAL;
        }
        let (object, prog) = build(&config).unwrap();
        let loaded = match object.load() {
            Ok(l) => l,
            Err(e) if e.missing_privilege().is_some() && std::env::var_os("CI").is_none() => {
                eprintln!("skipped: loading needs privileges ({e})");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let frame = [0u8; 64];
        let out = loaded
            .program(prog)
            .test_run(&TestRun::new(&frame))
            .unwrap();
        assert_eq!(out.retval, XDP_PASS as u32);
        let info = loaded.program(prog).info().unwrap();
        assert_eq!(info.name, NAME);
        assert_eq!(info.map_ids.len(), 1, "libxdp expects exactly one map");
        assert_ne!(info.btf_id, 0, "libxdp expects BTF");
    }
}
