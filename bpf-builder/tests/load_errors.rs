//! What a user sees when the verifier refuses generated code.

mod common;

use bpf_builder::asm::{Annotation, Asm};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, JmpOp, Reg::*, Size};
use bpf_builder::load::LoadError;
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgramType};
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
    // Our explanation comes last, beside the kernel's text.
    assert!(
        shown.ends_with(
            "\n  hint: a packet access not proven to lie within data..data_end: compare the \
             pointer plus the access length with data_end first, on every path to this \
             instruction"
        ),
        "{shown}"
    );
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
    assert!(
        e.to_string()
            .contains("\n  hint: a register is read before anything was written to it"),
        "{e}"
    );
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
    assert!(
        e.hint()
            .unwrap()
            .starts_with("no path from the start reaches this instruction"),
        "{e}"
    );

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
    assert!(
        e.hint()
            .unwrap()
            .starts_with("the loop comes back to a state the verifier has seen"),
        "{e}"
    );
}

/// Looks up key 0 of `map` (the key written on the stack first) and
/// leaves the result in r0.
fn lookup_key0(a: &mut Asm, map: MapId) {
    a.st(Size::W, R10, -4, 0);
    a.ld_map_fd(R1, map);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.call(Helper::MapLookupElem);
}

/// Loads r2 = data, r3 = data_end and jumps to `short` unless 8 bytes of
/// packet are there.
fn packet_of_8(a: &mut Asm, short: bpf_builder::asm::Label) {
    a.ldx(Size::W, R2, R1, 0);
    a.ldx(Size::W, R3, R1, 4);
    a.mov64(R4, R2);
    a.add64(R4, 8);
    a.jmp(JmpOp::Gt, R4, R3, short);
}

/// A program the verifier refuses, the kernel's reason verbatim, and the
/// start of the hint we show beside it.
struct Case {
    name: &'static str,
    code: fn(&mut Asm, MapId, MapId),
    reason: &'static str,
    hint: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "no_r0",
        code: |a, _, _| a.exit(),
        reason: "R0 !read_ok",
        hint: "r0 holds no value at this exit: set the return value in r0 on every path",
    },
    Case {
        name: "unbounded",
        code: |a, array, _| {
            let out = a.new_label();
            lookup_key0(a, array);
            a.jmp(JmpOp::Eq, R0, 0, out);
            a.ldx(Size::W, R1, R0, 0);
            a.add64(R0, R1);
            a.ldx(Size::B, R0, R0, 0);
            a.bind(out);
            a.mov64(R0, 2);
            a.exit();
        },
        reason: "R0 unbounded memory access, make sure to bounds check any such access",
        hint: "the verifier cannot bound the offset added to this pointer: mask it",
    },
    Case {
        name: "pkt_min",
        code: |a, _, _| {
            let out = a.new_label();
            packet_of_8(a, out);
            a.ldx(Size::DW, R4, R2, 0);
            a.add64(R2, R4);
            a.bind(out);
            a.mov64(R0, 2);
            a.exit();
        },
        reason: "math between pkt pointer and register with unbounded min value is not allowed",
        hint: "the number added to the pointer may be negative as far as the verifier knows",
    },
    Case {
        name: "scalar",
        code: |a, _, _| {
            a.mov64(R1, 0);
            a.ldx(Size::W, R0, R1, 0);
            a.exit();
        },
        reason: "R1 invalid mem access 'scalar'",
        hint: "a load or store through a register that holds a number, not a pointer",
    },
    Case {
        name: "or_null",
        code: |a, _, hash| {
            lookup_key0(a, hash);
            a.ldx(Size::W, R0, R0, 0);
            a.exit();
        },
        reason: "R0 invalid mem access 'map_value_or_null'",
        hint: "a pointer that may be NULL (a map lookup's result) is used before the check",
    },
    Case {
        name: "ctx_as_key",
        code: |a, array, _| {
            a.mov64(R2, R1);
            a.ld_map_fd(R1, array);
            a.call(Helper::MapLookupElem);
            a.mov64(R0, 2);
            a.exit();
        },
        reason: "R2 type=ctx expected=fp, pkt, pkt_meta, map_key, map_value, mem, \
                 ringbuf_mem, buf, trusted_ptr_",
        hint: "a helper argument of the wrong kind",
    },
    Case {
        name: "too_large",
        code: |a, _, _| {
            let (top, out) = (a.new_label(), a.new_label());
            a.mov64(R0, 0);
            a.bind(top);
            a.add64(R0, 1);
            a.jmp(JmpOp::Ge, R0, 3_000_000, out);
            a.ja(top);
            a.bind(out);
            a.mov64(R0, 2);
            a.exit();
        },
        reason: "BPF program is too large. Processed 1000001 insn",
        hint: "the verifier walked its limit of 1 million instructions over all paths",
    },
    Case {
        name: "moved_ctx",
        code: |a, _, _| {
            a.add64(R1, 4);
            a.ldx(Size::W, R0, R1, 0);
            a.mov64(R0, 2);
            a.exit();
        },
        reason: "dereference of modified ctx ptr R1 off=4 disallowed",
        hint: "context fields are read at constant offsets from the context pointer itself",
    },
    Case {
        name: "bad_ctx",
        code: |a, _, _| {
            a.ldx(Size::W, R0, R1, 100);
            a.mov64(R0, 2);
            a.exit();
        },
        reason: "invalid bpf_context access off=100 size=4",
        hint: "this program type has no context field at that offset and size",
    },
    Case {
        name: "helper",
        code: |a, _, _| {
            a.mov64(R2, 4);
            a.call(Helper::ProbeRead);
            a.mov64(R0, 2);
            a.exit();
        },
        reason: "program of this type cannot use helper bpf_probe_read#4",
        hint: "this program type may not call that helper",
    },
    Case {
        name: "map_oob",
        code: |a, array, _| {
            let out = a.new_label();
            lookup_key0(a, array);
            a.jmp(JmpOp::Eq, R0, 0, out);
            a.ldx(Size::DW, R1, R0, 8);
            a.bind(out);
            a.mov64(R0, 2);
            a.exit();
        },
        reason: "invalid access to map value, value_size=8 off=8 size=8\n\
                 R0 min value is outside of the allowed memory range",
        hint: "the access falls outside the map value",
    },
    Case {
        name: "pkt_end",
        code: |a, _, _| {
            a.ldx(Size::W, R3, R1, 4);
            a.add64(R3, 4);
            a.mov64(R0, 2);
            a.exit();
        },
        reason: "R3 pointer arithmetic on pkt_end prohibited",
        hint: "data_end may only be compared with",
    },
    Case {
        name: "stack_above",
        code: |a, _, _| {
            a.st(Size::DW, R10, 8, 0);
            a.mov64(R0, 2);
            a.exit();
        },
        reason: "invalid write to stack R10 off=8 size=8",
        hint: "the stack is the 512 bytes below r10",
    },
    Case {
        name: "div_ptr",
        code: |a, _, _| {
            a.mov64(R0, 2);
            a.alu64(AluOp::Div, R0, R1);
            a.exit();
        },
        // A message we have no hint for: shown as the kernel wrote it.
        reason: "R0 pointer arithmetic with /= operator prohibited",
        hint: "",
    },
];

#[test]
fn common_verifier_messages_are_explained_beside_the_kernel_text() {
    if !require_bpf() {
        return;
    }
    for case in CASES {
        let mut o = Object::new();
        let array = o.add_map(MapSpec::array("arr", 8, 4)).unwrap();
        let hash = o.add_map(MapSpec::hash("hash", 4, 8, 4)).unwrap();
        let mut a = Asm::new();
        (case.code)(&mut a, array, hash);
        o.add_program(case.name, ProgramType::Xdp, a.finish().unwrap())
            .unwrap();
        let e = verifier_error(&o);
        assert_eq!(e.reason, case.reason, "{}: {e}", case.name);
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!(
                "the kernel rejected program `{}`: {}\n  at instruction",
                case.name, case.reason
            )),
            "{}: {shown}",
            case.name
        );
        if case.hint.is_empty() {
            assert_eq!(e.hint(), None, "{}", case.name);
            assert!(!shown.contains("hint:"), "{shown}");
        } else {
            let hint = e.hint().unwrap_or_else(|| panic!("{}: no hint", case.name));
            assert!(hint.starts_with(case.hint), "{}: {hint}", case.name);
            assert!(shown.ends_with(&format!("\n  hint: {hint}")), "{shown}");
        }
    }
}
