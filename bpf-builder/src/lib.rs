//! bpf-builder: build BPF objects in memory, load them and test-run them.

pub mod insn;
pub mod run;
pub mod sys;
