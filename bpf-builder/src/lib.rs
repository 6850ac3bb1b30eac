//! bpf-builder: build BPF objects in memory, load them and test-run them.

pub mod disasm;
pub mod helpers;
pub mod insn;
pub mod sys;
