//! `Object::to_elf` output accepted by bpftool (libbpf 1.1), aya and
//! llvm-objdump, and read back by our own importer.

mod common;
mod elf_common;

#[test]
fn scratch_write() {
    let s = elf_common::build(5, 2);
    let bytes = s.object.to_elf().unwrap();
    std::fs::write("/tmp/elfc/ours.o", bytes).unwrap();
}
