//! Reading a BPF ELF object into an [`Object`](crate::object::Object).

/// How to read an object.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {}
