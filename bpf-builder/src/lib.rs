//! bpf-builder: build BPF objects in memory, load them and test-run them.

pub mod asm;
pub mod attach;
pub mod btf;
pub mod disasm;
pub mod handle;
pub mod helpers;
pub mod insn;
pub mod layout;
pub mod load;
pub mod map;
pub mod object;
pub mod reloc;
pub mod run;
pub mod sys;
pub mod verifier;
