//! How maps appear in an ELF object: global data as `.rodata`/`.data`/`.bss`
//! sections, every other map as a BTF-defined entry of `.maps`.

use crate::btf::{Btf, Member, Type, TypeId};
use crate::map::{InitValue, MapSpec, MapType};

use super::ElfError;

/// The kind of a global-data section.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum DataKind {
    /// `.rodata*`: read-only for programs, frozen.
    Rodata,
    /// `.data*`: initialised, writable.
    Data,
    /// `.bss*`: zero-filled, writable.
    Bss,
}

/// Whether `spec` is global data that libbpf and aya recognise by its
/// section name: a one-entry array named `.rodata*`, `.data*` or `.bss*`.
pub(crate) fn data_kind(spec: &MapSpec) -> Option<DataKind> {
    if spec.map_type != MapType::Array || spec.max_entries != 1 || spec.key_size != 4 {
        return None;
    }
    let n = spec.name.as_str();
    if n.starts_with(".rodata") {
        Some(DataKind::Rodata)
    } else if n.starts_with(".data") {
        Some(DataKind::Data)
    } else if n.starts_with(".bss") {
        Some(DataKind::Bss)
    } else {
        None
    }
}

/// The bytes of a global-data map (its value at index 0, zeros if unset).
pub(crate) fn data_bytes(spec: &MapSpec) -> Result<Vec<u8>, ElfError> {
    let mut bytes = vec![0u8; spec.value_size as usize];
    for (key, value) in &spec.contents {
        match value {
            InitValue::Bytes(b) if key.as_slice() == 0u32.to_ne_bytes() => {
                bytes.copy_from_slice(b);
            }
            _ => {
                return Err(ElfError::Unsupported(format!(
                    "global data `{}` has an entry other than index 0",
                    spec.name
                )));
            }
        }
    }
    Ok(bytes)
}

/// The shared `int` and array-index types of map definitions.
pub(crate) struct DefTypes {
    /// `int`.
    pub int: TypeId,
    /// `__ARRAY_SIZE_TYPE__`, as clang names it.
    pub index: TypeId,
}

impl DefTypes {
    /// Adds the two types to `btf`.
    pub fn new(btf: &mut Btf) -> DefTypes {
        let int = btf.add(Type::int("int", 4, true));
        let index = btf.add(Type::int("__ARRAY_SIZE_TYPE__", 4, false));
        DefTypes { int, index }
    }

    /// `int (*)[n]`: how `__uint(name, n)` encodes a number in a type.
    fn number(&self, btf: &mut Btf, n: u32) -> TypeId {
        let arr = btf.add(Type::Array {
            elem: self.int,
            index: self.index,
            len: n,
        });
        btf.add(Type::Ptr(arr))
    }
}

/// Adds the BTF struct that defines `spec` in `.maps` (as libbpf's
/// `__uint`/`__type`/`__array` macros would) and returns its id and size.
pub(crate) fn map_def(
    btf: &mut Btf,
    t: &DefTypes,
    spec: &MapSpec,
    name: &str,
) -> Result<(TypeId, u32), ElfError> {
    if !spec.contents.is_empty() {
        return Err(ElfError::Unsupported(format!(
            "initial contents of map `{}` (only global data carries contents in ELF)",
            spec.name
        )));
    }
    if spec.freeze {
        return Err(ElfError::Unsupported(format!(
            "frozen map `{}` (only .rodata is frozen by loaders)",
            spec.name
        )));
    }
    let mut members: Vec<(&str, TypeId)> = Vec::new();
    members.push(("type", t.number(btf, spec.map_type.kernel_type())));
    let typed = spec.btf.as_ref().map(|b| {
        let shift = btf.append(&b.btf);
        let shifted = |id: TypeId| if id == 0 { 0 } else { id + shift };
        (shifted(b.key), shifted(b.value))
    });
    match typed {
        Some((key, _)) if key != 0 => members.push(("key", btf.add(Type::Ptr(key)))),
        _ if spec.key_size > 0 => members.push(("key_size", t.number(btf, spec.key_size))),
        _ => {}
    }
    let values = match &spec.inner {
        Some(inner) => {
            let (def, _) = map_def(btf, t, inner, "")?;
            let ptr = btf.add(Type::Ptr(def));
            Some(btf.add(Type::Array {
                elem: ptr,
                index: t.index,
                len: 0,
            }))
        }
        None => {
            match typed {
                Some((_, value)) => members.push(("value", btf.add(Type::Ptr(value)))),
                None if spec.value_size > 0 => {
                    members.push(("value_size", t.number(btf, spec.value_size)))
                }
                None => {}
            }
            None
        }
    };
    members.push(("max_entries", t.number(btf, spec.max_entries)));
    if spec.flags != 0 {
        members.push(("map_flags", t.number(btf, spec.flags)));
    }
    // libbpf wants `values` last.
    if let Some(values) = values {
        members.push(("values", values));
    }
    let size = 8 * members.len() as u32;
    let id = btf.add(Type::Struct {
        name: name.to_string(),
        size,
        members: members
            .iter()
            .enumerate()
            .map(|(i, (n, ty))| Member::new(*n, *ty, 64 * i as u32))
            .collect(),
    });
    Ok((id, size))
}
