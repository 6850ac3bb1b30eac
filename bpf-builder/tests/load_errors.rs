//! What a user sees when the verifier refuses generated code.

mod common;

use bpf_builder::asm::{Annotation, Asm};
use bpf_builder::insn::{JmpOp, Reg::*, Size};
use bpf_builder::load::LoadError;
use bpf_builder::object::{Object, ProgramType};
use bpf_builder::verifier::VerifierError;
use common::require_bpf;

fn verifier_error(object: &Object) -> Box<VerifierError> {
    match object.load() {
        Err(LoadError::Program(e)) => e,
        other => panic!("expected a verifier error, got {other:?}"),
    }
}

#[test]
fn unchecked_packet_read_shows_reason_instruction_and_source() {
    if !require_bpf() {
        return;
    }
    let mut o = Object::new();
    let mut a = Asm::new();
    a.set_source(Annotation::at("filter", 1, 1, "data = ctx->data"));
    a.ldx(Size::W, R2, R1, 0);
    a.set_source(Annotation::at(
        "filter",
        2,
        5,
        "first = data[0]  // no bounds check",
    ));
    a.ldx(Size::B, R0, R2, 0);
    a.clear_source();
    a.exit();
    o.add_program("unchecked", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();

    let e = verifier_error(&o);
    assert_eq!(e.program, "unchecked");
    assert!(
        e.reason.contains("invalid access to packet"),
        "{}",
        e.reason
    );
    let insn = e.insn.as_ref().expect("the failing instruction");
    assert_eq!(insn.index, 1);
    assert_eq!(insn.text.as_deref(), Some("r0 = *(u8 *)(r2 +0)"));
    assert_eq!(
        insn.source.as_ref().map(|s| s.text.as_ref()),
        Some("first = data[0]  // no bounds check")
    );
    let shown = e.to_string();
    for part in [
        "the kernel rejected program `unchecked`: invalid access to packet",
        "at instruction 1: r0 = *(u8 *)(r2 +0)",
        "source: filter:2:5: first = data[0]  // no bounds check",
    ] {
        assert!(shown.contains(part), "{part:?} missing from:\n{shown}");
    }
    // With BTF line info, the kernel's own log shows the source line too.
    assert!(e.log.contains("; first = data[0]"), "{}", e.log);
}

#[test]
fn failure_inside_a_function_names_the_function() {
    if !require_bpf() {
        return;
    }
    let mut o = Object::new();
    let mut a = Asm::new();
    a.set_source(Annotation::new("helper reads r3, which nobody set"));
    a.mov64(R0, R3);
    a.exit();
    let f = o.add_function("reads_r3", a.finish().unwrap()).unwrap();
    let mut a = Asm::new();
    let skip = a.new_label();
    a.mov64(R0, 0);
    a.jmp(JmpOp::Eq, R0, 1, skip);
    a.call_func(f);
    a.bind(skip);
    a.mov64(R0, 2);
    a.exit();
    o.add_program("caller", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();

    let e = verifier_error(&o);
    assert!(e.reason.contains("R3 !read_ok"), "{}", e.reason);
    let insn = e.insn.as_ref().unwrap();
    assert_eq!(insn.index, 5, "first instruction of the appended function");
    assert_eq!(insn.owner.as_deref(), Some("reads_r3"));
    assert!(e.to_string().contains("(in function `reads_r3`)"), "{e}");
    assert!(e.to_string().contains("source: helper reads r3"), "{e}");
}

#[test]
fn structural_errors_name_the_instruction() {
    if !require_bpf() {
        return;
    }
    // `exit` after an unconditional backward jump is never reached.
    let mut o = Object::new();
    let mut a = Asm::new();
    let top = a.new_label();
    a.mov64(R0, 0);
    a.bind(top);
    a.add64(R0, 1);
    a.set_source(Annotation::new("loop forever"));
    a.ja(top);
    a.set_source(Annotation::new("never reached"));
    a.exit();
    o.add_program("unreach", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    let e = verifier_error(&o);
    assert_eq!(e.reason, "unreachable insn 3");
    let insn = e.insn.as_ref().unwrap();
    assert_eq!(insn.index, 3);
    assert_eq!(insn.source.as_ref().unwrap().text.as_ref(), "never reached");

    // A loop with an exit the CFG can reach, but that never ends.
    let mut o = Object::new();
    let mut a = Asm::new();
    let (top, out) = (a.new_label(), a.new_label());
    a.mov64(R0, 2);
    a.jmp(JmpOp::Eq, R1, 0, out);
    a.bind(top);
    a.set_source(Annotation::new("spin"));
    a.ja(top);
    a.bind(out);
    a.clear_source();
    a.exit();
    o.add_program("spin", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    let e = verifier_error(&o);
    assert!(
        e.reason.contains("infinite loop detected at insn 2"),
        "{}",
        e.reason
    );
    let insn = e.insn.as_ref().unwrap();
    assert_eq!(insn.index, 2);
    assert_eq!(insn.source.as_ref().unwrap().text.as_ref(), "spin");
}
