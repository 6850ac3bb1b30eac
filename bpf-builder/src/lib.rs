//! bpf-builder: build BPF objects in memory — maps, programs, functions,
//! global data and the references between them — then load them into the
//! kernel, test-run them and read their maps. No ELF, no clang, no libbpf.
//!
//! The layers, bottom up: [`insn`] (the instruction set), [`asm`] (labels,
//! jumps, symbolic references, source annotations), [`kit`] (stack
//! slots, probe reads, kernel pointer paths from BTF, per-CPU scratch
//! buffers, map calls with stack keys), [`object`] / [`map`] /
//! [`reloc`] (the in-memory object), [`layout`] (programs with the
//! functions they call), [`load`] (into the kernel, all or nothing),
//! [`handle`] (maps and programs in the kernel, [`kernel_id`] their
//! kernel ids, [`typed_map`] their entries as [`pod`] types), [`ctx`]
//! (actions, context layouts of network and tracing programs, helper
//! return values), [`run`] (`BPF_PROG_TEST_RUN`, and tracing programs run
//! once as `BEGIN`/`END` probes), [`ringbuf`] (ring buffer records),
//! [`interp`] (running programs without the kernel), [`attach`] (XDP,
//! tcx, links, devmap/cpumap entries; kprobes, uprobes, tracepoints, raw
//! and BTF tracepoints, fentry/fexit, multi-probes and perf events),
//! [`pins`] (pinned state as units that exist whole or not at all),
//! [`disasm`] / [`listing`] (text), [`btf`] (types, func and line info),
//! [`elf`] (relocatable objects out for libbpf/bpftool/aya, and clang's
//! objects in), [`verifier`] (errors mapped to the source),
//! [`privilege`] (the capabilities errors name), [`text`] (names
//! escaped for terminals) and [`sys`]
//! (the system calls, the only `unsafe` code).
//!
//! XDP programs can declare fragment support
//! ([`Object::set_xdp_frags`](object::Object::set_xdp_frags), libbpf's
//! `xdp.frags`), which devices with a jumbo MTU require.
//!
//! A complete program: count packets in a per-CPU array and pass them.
//!
//! ```no_run
//! use bpf_builder::asm::{Annotation, Asm};
//! use bpf_builder::ctx::XdpAction;
//! use bpf_builder::helpers::Helper;
//! use bpf_builder::insn::{AtomicOp, JmpOp, Reg::*, Size};
//! use bpf_builder::map::MapSpec;
//! use bpf_builder::object::{Object, ProgramType};
//! use bpf_builder::run::TestRun;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut obj = Object::new();
//! let packets = obj.add_map(MapSpec::per_cpu_array("packets", 8, 1))?;
//!
//! let mut a = Asm::new();
//! let pass = a.named_label("pass");
//! a.set_source(Annotation::new("packets[0] += 1"));
//! a.st(Size::W, R10, -4, 0); // key = 0
//! a.ld_map_fd(R1, packets);
//! a.mov64(R2, R10);
//! a.add64(R2, -4);
//! a.call(Helper::MapLookupElem);
//! a.jmp(JmpOp::Eq, R0, 0, pass);
//! a.mov64(R1, 1);
//! a.atomic(AtomicOp::Add, Size::DW, R0, 0, R1);
//! a.bind(pass);
//! a.set_source(Annotation::new("return XDP_PASS"));
//! a.mov64(R0, XdpAction::Pass);
//! a.exit();
//! let prog = obj.add_program("count", ProgramType::Xdp, a.finish()?)?;
//! println!("{}", obj.listing(prog)?);
//!
//! // Needs CAP_BPF from here on.
//! let loaded = obj.load()?; // a verifier error shows the annotated instruction
//! let out = loaded.program(prog).test_run(&TestRun::new(&[0u8; 64]).repeat(3))?;
//! assert_eq!(out.retval, 2);
//! assert_eq!(loaded.map(packets).sum_u64(&0u32.to_ne_bytes(), 0)?, 3);
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

pub mod asm;
pub mod attach;
pub mod bpffs;
pub mod btf;
pub mod ctx;
pub mod disasm;
pub mod elf;
mod entries;
pub mod extension;
pub mod grace;
pub mod handle;
pub mod helpers;
pub mod insn;
pub mod interp;
pub mod kernel_id;
pub mod kit;
pub mod layout;
pub mod listing;
pub mod load;
pub mod map;
pub mod object;
pub mod perf_buffer;
pub mod pins;
pub mod pod;
pub mod privilege;
pub mod reloc;
pub mod ringbuf;
pub mod run;
pub mod stack_trace;
pub mod symbolize;
pub mod sys;
pub mod text;
pub mod traced_program;
pub mod typed_map;
pub mod verifier;
