//! Global functions and extension programs (`BPF_PROG_TYPE_EXT`,
//! freplace) in the real kernel: the pieces of a libxdp-style dispatcher.

mod common;

use bpf_builder::asm::{Asm, Code};
use bpf_builder::attach::{self, AttachError};
use bpf_builder::ctx::{sk_buff, xdp_md};
use bpf_builder::extension::ExtensionError;
use bpf_builder::handle::Program;
use bpf_builder::insn::{JmpOp, Reg::*, Size};
use bpf_builder::load::{LoadError, Loaded};
use bpf_builder::object::{Object, ProgramType};
use bpf_builder::run::TestRun;
use common::{XDP_DROP, XDP_PASS, require_bpf, ret};

const XDP_TX: i32 = 3;

/// An XDP "dispatcher": `main` calls the global function `slot(ctx)`,
/// which returns XDP_PASS, and returns what it returned. `extra` makes
/// the code of `main` differ between two dispatchers.
fn dispatcher(extra: bool) -> (Loaded, bpf_builder::object::ProgId) {
    let mut o = Object::new();
    let slot = o.add_global_function("slot", ret(XDP_PASS)).unwrap();
    let mut a = Asm::new();
    if extra {
        a.mov64(R6, R1);
        a.mov64(R1, R6);
    }
    a.call_func(slot);
    a.exit();
    let main = o
        .add_program("dispatcher", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    let loaded = o.load().expect("the dispatcher loads");
    (loaded, main)
}

/// Loads `code` as an XDP extension of `target` replacing `function`.
fn load_extension(target: &Program, function: &str, code: Code) -> Loaded {
    let mut o = Object::new();
    let p = o.add_program("ext", ProgramType::Xdp, code).unwrap();
    o.set_extension(p, target, function).unwrap();
    o.load().expect("the extension loads")
}

fn run(prog: &Program, packet: &[u8]) -> u32 {
    prog.test_run(&TestRun::new(packet)).unwrap().retval
}

#[test]
fn an_extension_replaces_a_global_function_while_linked() {
    if !require_bpf()
        || !testbed::features::extensions_here_or_in_vm(
            "an_extension_replaces_a_global_function_while_linked",
        )
    {
        return;
    }
    let (loaded, main) = dispatcher(false);
    let disp = loaded.program(main);
    let packet = [0u8; 64];
    assert_eq!(run(disp, &packet), XDP_PASS as u32, "the slot's own code");

    let ext = load_extension(disp, "slot", ret(XDP_DROP));
    let ext = ext.program_by_name("ext").unwrap();
    assert_eq!(
        run(disp, &packet),
        XDP_PASS as u32,
        "loading alone replaces nothing"
    );
    let link = attach::extension::attach(ext, disp, "slot").unwrap();
    assert_eq!(run(disp, &packet), XDP_DROP as u32, "linked: the extension");
    // One extension per function at a time (EBUSY), whatever program.
    let e = attach::extension::attach(ext, disp, "slot").unwrap_err();
    assert!(matches!(e, AttachError::HookTaken { .. }), "{e}");
    // Extensions do not run on their own.
    assert!(ext.test_run(&TestRun::new(&packet)).is_err());
    drop(link);
    assert_eq!(
        run(disp, &packet),
        XDP_PASS as u32,
        "unlinked: the slot again"
    );
}

#[test]
fn one_extension_links_to_a_second_target_as_well() {
    if !require_bpf()
        || !testbed::features::extensions_here_or_in_vm(
            "one_extension_links_to_a_second_target_as_well",
        )
    {
        return;
    }
    let (first, a) = dispatcher(false);
    let (second, b) = dispatcher(true);
    let (first, second) = (first.program(a), second.program(b));
    assert_ne!(first.info().unwrap().tag, second.info().unwrap().tag);
    let packet = [0u8; 64];

    let ext = load_extension(first, "slot", ret(XDP_TX));
    let ext = ext.program_by_name("ext").unwrap();
    // Linked to the second target only (libxdp's move to a new
    // dispatcher), then to both at once.
    let to_second = attach::extension::attach(ext, second, "slot").unwrap();
    assert_eq!(run(second, &packet), XDP_TX as u32);
    assert_eq!(run(first, &packet), XDP_PASS as u32);
    let to_first = attach::extension::attach(ext, first, "slot").unwrap();
    assert_eq!(run(first, &packet), XDP_TX as u32);
    assert_eq!(run(second, &packet), XDP_TX as u32);
    drop(to_second);
    assert_eq!(run(second, &packet), XDP_PASS as u32);
    assert_eq!(run(first, &packet), XDP_TX as u32);
    drop(to_first);
    assert_eq!(run(first, &packet), XDP_PASS as u32);
}

#[test]
fn an_extension_reads_the_packet_directly() {
    if !require_bpf()
        || !testbed::features::extensions_here_or_in_vm("an_extension_reads_the_packet_directly")
    {
        return;
    }
    let (loaded, main) = dispatcher(false);
    let disp = loaded.program(main);
    // Drops frames whose byte 12 is 0x88, passes the rest (and frames
    // too short to have it).
    let mut a = Asm::new();
    let pass = a.new_label();
    a.ldx(Size::W, R2, R1, xdp_md::DATA);
    a.ldx(Size::W, R3, R1, xdp_md::DATA_END);
    a.mov64(R4, R2);
    a.add64(R4, 14);
    a.jmp(JmpOp::Gt, R4, R3, pass);
    a.ldx(Size::B, R4, R2, 12);
    a.jmp(JmpOp::Ne, R4, 0x88, pass);
    a.mov64(R0, XDP_DROP);
    a.exit();
    a.bind(pass);
    a.mov64(R0, XDP_PASS);
    a.exit();
    let ext = load_extension(disp, "slot", a.finish().unwrap());
    let ext = ext.program_by_name("ext").unwrap();
    let _link = attach::extension::attach(ext, disp, "slot").unwrap();
    let mut packet = [0u8; 64];
    assert_eq!(run(disp, &packet), XDP_PASS as u32);
    packet[12] = 0x88;
    assert_eq!(run(disp, &packet), XDP_DROP as u32);
}

#[test]
fn a_tc_program_calls_a_global_function_on_its_context() {
    if !require_bpf() {
        return;
    }
    // The global function reads `skb->len` (verified on its own, with R1
    // typed as `struct __sk_buff *` by its BTF).
    let mut o = Object::new();
    let mut a = Asm::new();
    a.ldx(Size::W, R0, R1, sk_buff::LEN);
    a.exit();
    let len = o
        .add_global_function("skb_len", a.finish().unwrap())
        .unwrap();
    let mut a = Asm::new();
    a.call_func(len);
    a.exit();
    let p = o
        .add_program("tc", ProgramType::SchedCls, a.finish().unwrap())
        .unwrap();
    let loaded = o.load().expect("loads");
    assert_eq!(run(loaded.program(p), &[0u8; 60]), 60);
    assert!(loaded.program(p).function_btf_id("skb_len").is_ok());
}

#[test]
fn a_global_function_is_verified_without_its_caller() {
    if !require_bpf() {
        return;
    }
    // Reading R2, which the caller set, is refused: a global function
    // sees only its declared argument.
    let mut o = Object::new();
    let mut a = Asm::new();
    a.mov64(R0, R2);
    a.exit();
    let f = o
        .add_global_function("uses_r2", a.finish().unwrap())
        .unwrap();
    let mut a = Asm::new();
    a.mov64(R2, XDP_PASS);
    a.call_func(f);
    a.exit();
    o.add_program("caller", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    let e = o.load().unwrap_err();
    assert!(
        matches!(&e, LoadError::Program(v) if v.log.contains("R2 !read_ok")),
        "{e}"
    );
}

#[test]
fn targets_that_cannot_be_extended_are_named() {
    if !require_bpf() {
        return;
    }
    let (loaded, main) = dispatcher(false);
    let disp = loaded.program(main);

    let mut o = Object::new();
    let ext = o
        .add_program("ext", ProgramType::Xdp, ret(XDP_DROP))
        .unwrap();
    let e = o.set_extension(ext, disp, "nope").unwrap_err();
    assert!(
        matches!(&e, ExtensionError::NoSuchFunction { function, .. } if function == "nope"),
        "{e}"
    );
    let e = disp.function_btf_id("nope").unwrap_err();
    assert!(matches!(e, ExtensionError::NoSuchFunction { .. }), "{e}");

    // A static function: what `add_function` makes.
    let mut t = Object::new();
    let helper = t.add_function("helper", ret(XDP_PASS)).unwrap();
    let mut a = Asm::new();
    a.call_func(helper);
    a.exit();
    let tp = t
        .add_program("static_target", ProgramType::Xdp, a.finish().unwrap())
        .unwrap();
    let tl = t.load().unwrap();
    let e = o.set_extension(ext, tl.program(tp), "helper").unwrap_err();
    assert!(matches!(e, ExtensionError::NotGlobal { .. }), "{e}");
    assert!(e.to_string().contains("only global functions"), "{e}");
    // The main function is static too.
    let e = o
        .set_extension(ext, tl.program(tp), "static_target")
        .unwrap_err();
    assert!(matches!(e, ExtensionError::NotGlobal { .. }), "{e}");

    // A program without BTF (no subprograms, no line info).
    let mut n = Object::new();
    let np = n
        .add_program("no_btf", ProgramType::Xdp, ret(XDP_PASS))
        .unwrap();
    let nl = n.load().unwrap();
    assert_eq!(nl.program(np).info().unwrap().btf_id, 0);
    let e = o.set_extension(ext, nl.program(np), "slot").unwrap_err();
    assert!(matches!(e, ExtensionError::NoBtf { .. }), "{e}");

    // A tc extension of an XDP target.
    let tc = o
        .add_program("tc_ext", ProgramType::SchedCls, ret(0))
        .unwrap();
    let e = o.set_extension(tc, disp, "slot").unwrap_err();
    assert!(matches!(e, ExtensionError::WrongTarget { .. }), "{e}");

    // Nothing was set: the program loads as plain XDP.
    assert!(o.program(ext).extension.is_none());

    // Linking names the same errors.
    if !testbed::features::extensions_here_or_in_vm("targets_that_cannot_be_extended_are_named") {
        return;
    }
    let (other, other_main) = dispatcher(false);
    let ext = load_extension(other.program(other_main), "slot", ret(XDP_DROP));
    let ext = ext.program_by_name("ext").unwrap();
    let e = attach::extension::attach(ext, disp, "nope").unwrap_err();
    assert!(
        matches!(
            e,
            AttachError::Extension(ExtensionError::NoSuchFunction { .. })
        ),
        "{e}"
    );
    let e = attach::extension::attach(ext, nl.program(np), "slot").unwrap_err();
    assert!(
        matches!(e, AttachError::Extension(ExtensionError::NoBtf { .. })),
        "{e}"
    );
    // A program that is not an extension cannot be linked to a function.
    let e = attach::extension::attach(nl.program(np), disp, "slot").unwrap_err();
    assert!(matches!(e, AttachError::WrongProgram { .. }), "{e}");
}
