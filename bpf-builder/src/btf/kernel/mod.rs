//! Reading BTF: the running kernel's (`/sys/kernel/btf/vmlinux` and the
//! split BTF of its modules) or any raw blob, such as a loaded program's.
//!
//! A [`KernelBtf`] holds every type of a blob, indexed by id, with lookups
//! a generator needs to resolve offsets on the host it runs on: types and
//! functions by name, function prototypes, sizes, and member offsets
//! (bitfields and anonymous members included).
//!
//! ```no_run
//! use bpf_builder::btf::KernelBtf;
//! use bpf_builder::btf::kernel::Kind;
//!
//! let btf = KernelBtf::vmlinux()?;
//! let task = btf.type_by_name("task_struct", Kind::Struct).unwrap();
//! let pid = btf.member_path(task, &["pid"])?;
//! println!("task_struct.pid at byte {}", pid.byte_offset());
//! # Ok::<(), bpf_builder::btf::kernel::KernelBtfError>(())
//! ```

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::{Linkage, TypeId};

mod parse;
#[cfg(test)]
mod tests;

pub use parse::BtfReadError;

/// Where the kernel exposes its BTF.
pub const SYSFS_BTF: &str = "/sys/kernel/btf";

/// How many typedefs and qualifiers [`KernelBtf::resolve`] steps over
/// before it calls the chain a loop.
const MAX_CHAIN: usize = 64;

/// How deep anonymous members nest before a search gives up.
const MAX_NESTING: usize = 32;

/// The hash of a name in the name index.
fn name_hash(name: &str) -> u64 {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    h.finish()
}

/// A name: an offset into the string section of a [`KernelBtf`] (its
/// base's for split BTF); [`KernelBtf::str`] reads it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Name(u32);

impl Name {
    /// The offset in the strings.
    pub fn offset(self) -> u32 {
        self.0
    }
}

/// The kind of a type, named as bpftool names it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[allow(missing_docs)]
pub enum Kind {
    Void,
    Int,
    Ptr,
    Array,
    Struct,
    Union,
    Enum,
    Fwd,
    Typedef,
    Volatile,
    Const,
    Restrict,
    Func,
    FuncProto,
    Var,
    Datasec,
    Float,
    DeclTag,
    TypeTag,
    Enum64,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Kind::Void => "VOID",
            Kind::Int => "INT",
            Kind::Ptr => "PTR",
            Kind::Array => "ARRAY",
            Kind::Struct => "STRUCT",
            Kind::Union => "UNION",
            Kind::Enum => "ENUM",
            Kind::Fwd => "FWD",
            Kind::Typedef => "TYPEDEF",
            Kind::Volatile => "VOLATILE",
            Kind::Const => "CONST",
            Kind::Restrict => "RESTRICT",
            Kind::Func => "FUNC",
            Kind::FuncProto => "FUNC_PROTO",
            Kind::Var => "VAR",
            Kind::Datasec => "DATASEC",
            Kind::Float => "FLOAT",
            Kind::DeclTag => "DECL_TAG",
            Kind::TypeTag => "TYPE_TAG",
            Kind::Enum64 => "ENUM64",
        };
        f.write_str(s)
    }
}

/// A member of a struct or union as the BTF records it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RawMember {
    /// Its name (empty for an anonymous struct or union member).
    pub name: Name,
    /// Its type.
    pub ty: TypeId,
    /// Bits from the start of the enclosing type.
    pub offset_bits: u32,
    /// Width of a bitfield, 0 for an ordinary member.
    pub bitfield_size: u8,
}

/// One value of an `ENUM` or `ENUM64`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Enumerator {
    /// Its name.
    pub name: Name,
    /// Its value: the bits of a signed value sign-extended to 64.
    pub value: u64,
}

/// One variable of a `DATASEC`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VarSecinfo {
    /// The `VAR`'s id.
    pub ty: TypeId,
    /// Its offset in the section.
    pub offset: u32,
    /// Its size.
    pub size: u32,
}

/// A type read from BTF: every kind the kernel defines.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Type {
    /// Id 0.
    Void,
    /// An integer.
    Int {
        /// Its name.
        name: Name,
        /// Its size in bytes.
        size: u32,
        /// `BTF_INT_SIGNED`, `BTF_INT_CHAR`, `BTF_INT_BOOL` bits.
        encoding: u8,
        /// Bit offset (old-style bitfields).
        bit_offset: u8,
        /// Bits used.
        bits: u8,
    },
    /// A pointer to a type.
    Ptr(TypeId),
    /// An array.
    Array {
        /// Element type.
        elem: TypeId,
        /// Index type.
        index: TypeId,
        /// Number of elements.
        len: u32,
    },
    /// A struct.
    Struct {
        /// Its name (empty when anonymous).
        name: Name,
        /// Its size in bytes.
        size: u32,
        /// Its members.
        members: Vec<RawMember>,
    },
    /// A union.
    Union {
        /// Its name (empty when anonymous).
        name: Name,
        /// Its size in bytes.
        size: u32,
        /// Its members.
        members: Vec<RawMember>,
    },
    /// An `ENUM` (`wide` false) or `ENUM64` (`wide` true).
    Enum {
        /// Its name.
        name: Name,
        /// Its size in bytes.
        size: u32,
        /// Whether its values are signed.
        signed: bool,
        /// `ENUM64`.
        wide: bool,
        /// Its values.
        values: Vec<Enumerator>,
    },
    /// A forward declaration.
    Fwd {
        /// Its name.
        name: Name,
        /// Of a union rather than a struct.
        union: bool,
    },
    /// A typedef.
    Typedef {
        /// Its name.
        name: Name,
        /// The type it names.
        ty: TypeId,
    },
    /// `volatile`.
    Volatile(TypeId),
    /// `const`.
    Const(TypeId),
    /// `restrict`.
    Restrict(TypeId),
    /// A function.
    Func {
        /// Its name.
        name: Name,
        /// Its `FUNC_PROTO`.
        proto: TypeId,
        /// Its linkage.
        linkage: Linkage,
    },
    /// A function prototype.
    FuncProto {
        /// Return type (0 for `void`).
        ret: TypeId,
        /// Parameters: name and type (a last `(empty, 0)` marks `...`).
        params: Vec<(Name, TypeId)>,
    },
    /// A variable.
    Var {
        /// Its name.
        name: Name,
        /// Its type.
        ty: TypeId,
        /// 0 static, 1 global, 2 extern.
        linkage: u32,
    },
    /// A data section.
    Datasec {
        /// Its name.
        name: Name,
        /// Its size.
        size: u32,
        /// Its variables.
        vars: Vec<VarSecinfo>,
    },
    /// A floating-point type.
    Float {
        /// Its name.
        name: Name,
        /// Its size in bytes.
        size: u32,
    },
    /// A declaration tag.
    DeclTag {
        /// The tag.
        name: Name,
        /// The tagged type.
        ty: TypeId,
        /// -1 for the type itself, else the member or parameter index.
        component_idx: i32,
    },
    /// A type tag.
    TypeTag {
        /// The tag.
        name: Name,
        /// The tagged type.
        ty: TypeId,
    },
}

/// A member found by name, with its offset from the start of the type it
/// was looked up in (anonymous members' offsets added).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Member {
    /// Bits from the start of the outer type.
    pub offset_bits: u32,
    /// Width of a bitfield, 0 for an ordinary member.
    pub bitfield_size: u8,
    /// Its type (unresolved: a typedef stays a typedef).
    pub ty: TypeId,
}

impl Member {
    /// Bytes from the start of the outer type (rounded down for a
    /// bitfield).
    pub fn byte_offset(&self) -> u32 {
        self.offset_bits / 8
    }
}

/// A function parameter.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Param {
    /// Its name (empty when the BTF has none).
    pub name: String,
    /// Its type.
    pub ty: TypeId,
}

/// A function with its prototype.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Func {
    /// The `FUNC`'s id (what fentry/fexit attach to).
    pub id: TypeId,
    /// Its linkage.
    pub linkage: Linkage,
    /// The `FUNC_PROTO`'s id.
    pub proto: TypeId,
    /// Return type (0 for `void`).
    pub ret: TypeId,
    /// Parameters in order.
    pub params: Vec<Param>,
    /// Whether it takes `...` after the parameters.
    pub variadic: bool,
}

/// What a lookup in a [`KernelBtf`] may run into.
#[derive(Debug, thiserror::Error)]
pub enum KernelBtfError {
    /// The BTF file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The blob does not parse.
    #[error("{}: {source}", path.display())]
    Malformed {
        /// The file (empty for a blob from memory).
        path: PathBuf,
        /// What is wrong.
        source: BtfReadError,
    },
    /// No type of that kind and name.
    #[error("no {kind} named {name:?} in the BTF")]
    NotFound {
        /// The kind asked for.
        kind: Kind,
        /// The name asked for.
        name: String,
    },
    /// A type id beyond the last type.
    #[error("no type with id {0}")]
    NoType(TypeId),
    /// A struct or union has no member of that name.
    #[error("{ty} has no member {member:?}")]
    NoMember {
        /// The type searched (as `STRUCT 'name'`).
        ty: String,
        /// The member asked for.
        member: String,
    },
    /// A member was looked up in a type that is not a struct or union
    /// (a member path does not go through pointers).
    #[error("{ty} is not a struct or union, so it has no member {member:?}")]
    NotComposite {
        /// The type (as `PTR`, `INT 'int'`...).
        ty: String,
        /// The member asked for.
        member: String,
    },
    /// A type that has no size (a function, `void`, a forward
    /// declaration).
    #[error("{0} has no size")]
    NoSize(String),
    /// A chain of typedefs and qualifiers that loops or is too long.
    #[error("type [{0}]: typedefs and qualifiers loop")]
    Loop(TypeId),
}

/// Every type of a BTF blob, indexed by id; for split BTF (a module's),
/// its base's types come first and its ids continue after them.
pub struct KernelBtf {
    base: Option<Arc<KernelBtf>>,
    /// The first id of `types` (1 for a standalone BTF, where `types[0]`
    /// is `void` and ids start at 0).
    first_id: TypeId,
    types: Vec<Type>,
    /// Where this blob's strings start in the joint string space.
    str_start: u32,
    strings: Vec<u8>,
    by_name: OnceLock<Vec<(u64, TypeId)>>,
}

impl fmt::Debug for KernelBtf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelBtf")
            .field("split", &self.base.is_some())
            .field("first_id", &self.first_id)
            .field("types", &self.len())
            .finish_non_exhaustive()
    }
}

impl KernelBtf {
    /// Parses a standalone raw BTF blob (ids start at 1, `void` is 0).
    pub fn parse(raw: &[u8]) -> Result<KernelBtf, BtfReadError> {
        Self::parse_with(raw, None)
    }

    /// Parses split BTF whose ids and strings continue after `base`'s (a
    /// module's BTF over vmlinux's).
    pub fn parse_split(raw: &[u8], base: Arc<KernelBtf>) -> Result<KernelBtf, BtfReadError> {
        Self::parse_with(raw, Some(base))
    }

    fn parse_with(raw: &[u8], base: Option<Arc<KernelBtf>>) -> Result<KernelBtf, BtfReadError> {
        let s = parse::sections(raw)?;
        let (first_id, str_start) = match &base {
            Some(b) => (b.len() as TypeId, b.str_end()),
            None => (0, 0),
        };
        if base.is_none() && s.strings.first() != Some(&0) {
            return parse::bad("the strings do not start with the empty name");
        }
        let str_end = u32::try_from(s.strings.len())
            .ok()
            .and_then(|n| n.checked_add(str_start))
            .map_or_else(|| parse::bad("strings too long"), Ok)?;
        let types_start = if base.is_some() { first_id } else { 1 };
        let mut types = Vec::new();
        if base.is_none() {
            types.push(Type::Void);
        }
        types.extend(parse::types(s.types, types_start, str_end)?);
        let count = first_id as usize + types.len();
        if u32::try_from(count).is_err() {
            return parse::bad("too many types");
        }
        for (i, ty) in types.iter().enumerate() {
            parse::check_refs(first_id as usize + i, ty, count)?;
        }
        Ok(KernelBtf {
            base,
            first_id,
            types,
            str_start,
            strings: s.strings.to_vec(),
            by_name: OnceLock::new(),
        })
    }

    /// Reads and parses a BTF file; `base` for split BTF.
    pub fn from_file(
        path: impl AsRef<Path>,
        base: Option<Arc<KernelBtf>>,
    ) -> Result<KernelBtf, KernelBtfError> {
        let path = path.as_ref();
        let raw = std::fs::read(path).map_err(|source| KernelBtfError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_with(&raw, base).map_err(|source| KernelBtfError::Malformed {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The running kernel's BTF, `/sys/kernel/btf/vmlinux`.
    pub fn vmlinux() -> Result<KernelBtf, KernelBtfError> {
        Self::from_file(Path::new(SYSFS_BTF).join("vmlinux"), None)
    }

    /// The BTF of the loaded module `name` (`/sys/kernel/btf/<name>`),
    /// split over vmlinux's, which it reads too; see
    /// [`module_over`](Self::module_over) to share one vmlinux.
    pub fn module(name: &str) -> Result<KernelBtf, KernelBtfError> {
        Self::module_over(name, Arc::new(Self::vmlinux()?))
    }

    /// The BTF of the loaded module `name` over an already read vmlinux.
    pub fn module_over(name: &str, vmlinux: Arc<KernelBtf>) -> Result<KernelBtf, KernelBtfError> {
        Self::from_file(Path::new(SYSFS_BTF).join(name), Some(vmlinux))
    }

    /// The base of split BTF.
    pub fn base(&self) -> Option<&Arc<KernelBtf>> {
        self.base.as_ref()
    }

    /// One past the last type id (counting `void` and the base's types).
    pub fn len(&self) -> usize {
        self.first_id as usize + self.types.len()
    }

    /// Never true: there is always `void`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The first id of this blob's own types (0 unless split).
    pub fn first_own_id(&self) -> TypeId {
        self.first_id
    }

    fn str_end(&self) -> u32 {
        self.str_start + self.strings.len() as u32
    }

    /// The type with id `id` (the base's too).
    pub fn get(&self, id: TypeId) -> Option<&Type> {
        match id.checked_sub(self.first_id) {
            Some(i) => self.types.get(i as usize),
            None => self.base.as_ref()?.get(id),
        }
    }

    fn ty(&self, id: TypeId) -> Result<&Type, KernelBtfError> {
        self.get(id).ok_or(KernelBtfError::NoType(id))
    }

    /// The string `name` points at ("" if it is not UTF-8).
    pub fn str(&self, name: Name) -> &str {
        match name.0.checked_sub(self.str_start) {
            Some(off) => {
                let rest = self.strings.get(off as usize..).unwrap_or_default();
                let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                std::str::from_utf8(&rest[..end]).unwrap_or_default()
            }
            None => self.base.as_ref().map_or("", |b| b.str(name)),
        }
    }

    /// The name of type `id` ("" for anonymous types and kinds without
    /// names).
    pub fn name_of(&self, id: TypeId) -> &str {
        self.get(id)
            .and_then(Type::name)
            .map_or("", |n| self.str(n))
    }

    /// `KIND 'name'` for messages.
    fn describe(&self, id: TypeId) -> String {
        match self.get(id) {
            Some(t) => match t.name() {
                Some(n) => format!("{} '{}'", t.kind(), self.str(n)),
                None => t.kind().to_string(),
            },
            None => format!("type [{id}]"),
        }
    }

    /// Own named types as (hash of the name, id), sorted: one allocation
    /// for the whole index, built on the first lookup by name.
    fn index(&self) -> &[(u64, TypeId)] {
        self.by_name.get_or_init(|| {
            let mut index: Vec<(u64, TypeId)> = self
                .types
                .iter()
                .enumerate()
                .filter_map(|(i, t)| {
                    let s = self.str(t.name()?);
                    (!s.is_empty()).then(|| (name_hash(s), self.first_id + i as TypeId))
                })
                .collect();
            index.sort_unstable();
            index
        })
    }

    /// Own types named `name`, in id order.
    fn own_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = TypeId> + 'a {
        let h = name_hash(name);
        let index = self.index();
        let from = index.partition_point(|&(k, _)| k < h);
        index[from..]
            .iter()
            .take_while(move |&&(k, _)| k == h)
            .map(|&(_, id)| id)
            .filter(move |&id| self.name_of(id) == name)
    }

    /// Every type named `name` (this blob's first, then the base's), in
    /// id order within each.
    pub fn types_named(&self, name: &str) -> Vec<TypeId> {
        let mut out: Vec<TypeId> = self.own_named(name).collect();
        if let Some(b) = &self.base {
            out.extend(b.types_named(name));
        }
        out
    }

    /// The first type of kind `kind` named `name` (this blob's before the
    /// base's).
    pub fn type_by_name(&self, name: &str, kind: Kind) -> Option<TypeId> {
        let own = self
            .own_named(name)
            .find(|&id| self.get(id).is_some_and(|t| t.kind() == kind));
        own.or_else(|| self.base.as_ref()?.type_by_name(name, kind))
    }

    /// The function `name` with its prototype.
    pub fn func(&self, name: &str) -> Result<Func, KernelBtfError> {
        let not_found = || KernelBtfError::NotFound {
            kind: Kind::Func,
            name: name.to_string(),
        };
        let id = self.type_by_name(name, Kind::Func).ok_or_else(not_found)?;
        let Type::Func { proto, linkage, .. } = *self.ty(id)? else {
            return Err(not_found());
        };
        let Type::FuncProto { ret, params } = self.ty(proto)? else {
            return Err(KernelBtfError::NotFound {
                kind: Kind::FuncProto,
                name: format!("[{proto}], the prototype of {name}"),
            });
        };
        let variadic = params.last().is_some_and(|&(n, t)| t == 0 && n.0 == 0);
        let params = params[..params.len() - usize::from(variadic)]
            .iter()
            .map(|&(n, ty)| Param {
                name: self.str(n).to_string(),
                ty,
            })
            .collect();
        Ok(Func {
            id,
            linkage,
            proto,
            ret: *ret,
            params,
            variadic,
        })
    }

    /// Steps over typedefs, `const`, `volatile`, `restrict` and type tags.
    pub fn resolve(&self, mut id: TypeId) -> Result<TypeId, KernelBtfError> {
        for _ in 0..MAX_CHAIN {
            match self.ty(id)? {
                Type::Typedef { ty, .. }
                | Type::Const(ty)
                | Type::Volatile(ty)
                | Type::Restrict(ty)
                | Type::TypeTag { ty, .. } => id = *ty,
                _ => return Ok(id),
            }
        }
        Err(KernelBtfError::Loop(id))
    }

    /// The size in bytes of type `id` (typedefs and qualifiers resolved;
    /// pointers are 8 bytes, as in BPF).
    pub fn size_of(&self, id: TypeId) -> Result<u32, KernelBtfError> {
        self.size_in(id, 0)
    }

    fn size_in(&self, id: TypeId, depth: usize) -> Result<u32, KernelBtfError> {
        let id = self.resolve(id)?;
        if depth > MAX_CHAIN {
            return Err(KernelBtfError::Loop(id));
        }
        match self.ty(id)? {
            Type::Int { size, .. }
            | Type::Struct { size, .. }
            | Type::Union { size, .. }
            | Type::Enum { size, .. }
            | Type::Datasec { size, .. }
            | Type::Float { size, .. } => Ok(*size),
            Type::Ptr(_) => Ok(8),
            Type::Var { ty, .. } => self.size_in(*ty, depth + 1),
            Type::Array { elem, len, .. } => self
                .size_in(*elem, depth + 1)?
                .checked_mul(*len)
                .ok_or_else(|| KernelBtfError::NoSize(format!("{} (too big)", self.describe(id)))),
            _ => Err(KernelBtfError::NoSize(self.describe(id))),
        }
    }

    /// The member `name` of the struct or union `ty` (typedefs and
    /// qualifiers resolved), searching anonymous struct and union members
    /// as C does; its offset counts from the start of `ty`.
    pub fn member(&self, ty: TypeId, name: &str) -> Result<Member, KernelBtfError> {
        let id = self.resolve(ty)?;
        match self.ty(id)? {
            Type::Struct { .. } | Type::Union { .. } => {}
            _ => {
                return Err(KernelBtfError::NotComposite {
                    ty: self.describe(id),
                    member: name.to_string(),
                });
            }
        }
        self.find_member(id, name, 0)?
            .ok_or_else(|| KernelBtfError::NoMember {
                ty: self.describe(id),
                member: name.to_string(),
            })
    }

    fn find_member(
        &self,
        id: TypeId,
        name: &str,
        depth: usize,
    ) -> Result<Option<Member>, KernelBtfError> {
        if depth > MAX_NESTING {
            return Err(KernelBtfError::Loop(id));
        }
        let (Type::Struct { members, .. } | Type::Union { members, .. }) = self.ty(id)? else {
            return Ok(None);
        };
        for m in members {
            if m.name.0 != 0 && self.str(m.name) == name {
                return Ok(Some(self.member_of(m)?));
            }
        }
        for m in members.iter().filter(|m| self.str(m.name).is_empty()) {
            let inner = self.resolve(m.ty)?;
            if let Some(found) = self.find_member(inner, name, depth + 1)? {
                return Ok(Some(Member {
                    offset_bits: found.offset_bits.saturating_add(m.offset_bits),
                    ..found
                }));
            }
        }
        Ok(None)
    }

    /// A raw member as a [`Member`]: an old-style bitfield (an `INT` whose
    /// bits are fewer than its size, in a struct without the kind flag)
    /// gets its width and offset from the `INT`.
    fn member_of(&self, m: &RawMember) -> Result<Member, KernelBtfError> {
        let mut out = Member {
            offset_bits: m.offset_bits,
            bitfield_size: m.bitfield_size,
            ty: m.ty,
        };
        if m.bitfield_size == 0
            && let Type::Int {
                size,
                bit_offset,
                bits,
                ..
            } = self.ty(self.resolve(m.ty)?)?
            && u32::from(*bits) < size.saturating_mul(8)
        {
            out.bitfield_size = *bits;
            out.offset_bits = out.offset_bits.saturating_add(u32::from(*bit_offset));
        }
        Ok(out)
    }

    /// Walks `path` through nested structs and unions (not through
    /// pointers: a generator reads the pointer and starts a new path at
    /// the type it points to). The result's offset counts from the start
    /// of `ty`; its type is the last member's.
    pub fn member_path(&self, ty: TypeId, path: &[&str]) -> Result<Member, KernelBtfError> {
        let mut at = Member {
            offset_bits: 0,
            bitfield_size: 0,
            ty,
        };
        for name in path {
            let m = self.member(at.ty, name)?;
            at = Member {
                offset_bits: at.offset_bits.saturating_add(m.offset_bits),
                ..m
            };
        }
        Ok(at)
    }

    /// The `FUNC` named `name` in this BTF, with its id and linkage;
    /// `None` when there is none.
    pub fn func_entry(&self, name: &str) -> Option<FuncEntry> {
        let id = self.type_by_name(name, Kind::Func)?;
        match self.get(id)? {
            Type::Func { linkage, .. } => Some(FuncEntry {
                id,
                linkage: *linkage,
            }),
            _ => None,
        }
    }
}

/// A `FUNC` found in raw BTF.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct FuncEntry {
    /// Its type id.
    pub id: TypeId,
    /// Its linkage.
    pub linkage: Linkage,
}

/// Finds the `FUNC` named `name` in the raw BTF blob `raw` (a standalone
/// BTF, as a program's is: ids count from 1). `None` when there is none.
pub fn find_func(raw: &[u8], name: &str) -> Result<Option<FuncEntry>, BtfReadError> {
    Ok(KernelBtf::parse(raw)?.func_entry(name))
}
