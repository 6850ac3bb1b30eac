//! The BTF type kinds, as `Documentation/bpf/btf.rst` and `uapi/linux/btf.h`
//! define them.

/// A type id (0 is `void`).
pub type TypeId = u32;

/// Linkage of a function or variable.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Linkage {
    /// File-local (`static`).
    Static = 0,
    /// Visible to other objects.
    Global = 1,
    /// Defined elsewhere.
    Extern = 2,
}

/// A member of a struct or union.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Member {
    /// Member name (empty for anonymous members).
    pub name: String,
    /// Member type.
    pub ty: TypeId,
    /// Offset in bits from the start of the struct.
    pub bit_offset: u32,
    /// Width of a bitfield in bits; 0 for an ordinary member.
    pub bitfield_size: u8,
}

impl Member {
    /// An ordinary member at `bit_offset`.
    pub fn new(name: impl Into<String>, ty: TypeId, bit_offset: u32) -> Member {
        Member {
            name: name.into(),
            ty,
            bit_offset,
            bitfield_size: 0,
        }
    }

    /// A bitfield of `bits` bits at `bit_offset` (the struct is then
    /// encoded with `kind_flag`, as the kernel wants for bitfields).
    pub fn bitfield(name: impl Into<String>, ty: TypeId, bit_offset: u32, bits: u8) -> Member {
        Member {
            bitfield_size: bits,
            ..Member::new(name, ty, bit_offset)
        }
    }
}

/// Encoding bits of a `BTF_KIND_INT` (the kernel accepts at most one).
pub mod int_encoding {
    /// Signed.
    pub const SIGNED: u8 = 1 << 0;
    /// A character type (pretty-printing only).
    pub const CHAR: u8 = 1 << 1;
    /// A boolean (pretty-printing only).
    pub const BOOL: u8 = 1 << 2;
}

/// A BTF type.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Type {
    /// An integer of `bits` bits stored in `size` bytes.
    Int {
        /// Name (`u32`, `int`, ...).
        name: String,
        /// Size in bytes.
        size: u32,
        /// Whether it is signed.
        signed: bool,
        /// Number of value bits.
        bits: u8,
    },
    /// An integer with every field of the encoding: `encoding` is a set of
    /// [`int_encoding`] bits, `bit_offset` the offset of the value bits.
    IntEncoded {
        /// Name.
        name: String,
        /// Size in bytes.
        size: u32,
        /// [`int_encoding`] bits.
        encoding: u8,
        /// Offset of the value bits.
        bit_offset: u8,
        /// Number of value bits.
        bits: u8,
    },
    /// A pointer.
    Ptr(TypeId),
    /// An array of `len` elements.
    Array {
        /// Element type.
        elem: TypeId,
        /// Index type (an integer).
        index: TypeId,
        /// Number of elements.
        len: u32,
    },
    /// A struct of `size` bytes.
    Struct {
        /// Name (may be empty).
        name: String,
        /// Size in bytes.
        size: u32,
        /// Members in order.
        members: Vec<Member>,
    },
    /// A union of `size` bytes.
    Union {
        /// Name (may be empty).
        name: String,
        /// Size in bytes.
        size: u32,
        /// Members (offsets 0).
        members: Vec<Member>,
    },
    /// A 4-byte enum.
    Enum {
        /// Name.
        name: String,
        /// Enumerators.
        values: Vec<(String, i32)>,
    },
    /// A forward declaration of a struct (or union, with `union`).
    Fwd {
        /// Name.
        name: String,
        /// A union rather than a struct.
        union: bool,
    },
    /// A typedef.
    Typedef {
        /// Name.
        name: String,
        /// Aliased type.
        ty: TypeId,
    },
    /// `volatile T`.
    Volatile(TypeId),
    /// `const T`.
    Const(TypeId),
    /// `restrict T`.
    Restrict(TypeId),
    /// A function.
    Func {
        /// Name.
        name: String,
        /// Its prototype.
        proto: TypeId,
        /// Linkage.
        linkage: Linkage,
    },
    /// A function prototype.
    FuncProto {
        /// Return type.
        ret: TypeId,
        /// Parameters, named.
        params: Vec<(String, TypeId)>,
    },
    /// A variable (in a data section).
    Var {
        /// Name.
        name: String,
        /// Type.
        ty: TypeId,
        /// Linkage.
        linkage: Linkage,
    },
    /// A data section: variables at offsets.
    Datasec {
        /// Section name (`.rodata`, `.maps`, ...).
        name: String,
        /// Size in bytes.
        size: u32,
        /// `(var, offset, size)`.
        vars: Vec<(TypeId, u32, u32)>,
    },
    /// A floating-point type of `size` bytes (2, 4, 8, 12 or 16).
    Float {
        /// Name.
        name: String,
        /// Size in bytes.
        size: u32,
    },
    /// A tag on a declaration: the type itself (`component` -1) or one of
    /// its members or parameters (0-based index).
    DeclTag {
        /// The tag text.
        name: String,
        /// The tagged struct, union, variable, function or typedef.
        ty: TypeId,
        /// -1, or the member/parameter index.
        component: i32,
    },
    /// A tag on a type (`__attribute__((btf_type_tag("user")))`).
    TypeTag {
        /// The tag text.
        name: String,
        /// The tagged type.
        ty: TypeId,
    },
    /// An enum of 64-bit values (`size` 1, 2, 4 or 8 bytes).
    Enum64 {
        /// Name.
        name: String,
        /// Size in bytes.
        size: u32,
        /// Whether values are signed.
        signed: bool,
        /// Enumerators.
        values: Vec<(String, u64)>,
    },
}

impl Type {
    /// An integer of `size` bytes, all of them value bits (`u32`, `int`).
    pub fn int(name: impl Into<String>, size: u32, signed: bool) -> Type {
        Type::Int {
            name: name.into(),
            size,
            signed,
            bits: (size * 8) as u8,
        }
    }

    /// The kernel's `BTF_KIND_*` number.
    pub fn kind(&self) -> u32 {
        match self {
            Type::Int { .. } | Type::IntEncoded { .. } => 1,
            Type::Ptr(_) => 2,
            Type::Array { .. } => 3,
            Type::Struct { .. } => 4,
            Type::Union { .. } => 5,
            Type::Enum { .. } => 6,
            Type::Fwd { .. } => 7,
            Type::Typedef { .. } => 8,
            Type::Volatile(_) => 9,
            Type::Const(_) => 10,
            Type::Restrict(_) => 11,
            Type::Func { .. } => 12,
            Type::FuncProto { .. } => 13,
            Type::Var { .. } => 14,
            Type::Datasec { .. } => 15,
            Type::Float { .. } => 16,
            Type::DeclTag { .. } => 17,
            Type::TypeTag { .. } => 18,
            Type::Enum64 { .. } => 19,
        }
    }

    /// Every type id this type refers to, for renumbering.
    pub fn refs_mut(&mut self) -> Vec<&mut TypeId> {
        match self {
            Type::Int { .. }
            | Type::IntEncoded { .. }
            | Type::Enum { .. }
            | Type::Fwd { .. }
            | Type::Float { .. }
            | Type::Enum64 { .. } => Vec::new(),
            Type::Ptr(t) | Type::Volatile(t) | Type::Const(t) | Type::Restrict(t) => vec![t],
            Type::Typedef { ty, .. }
            | Type::Var { ty, .. }
            | Type::DeclTag { ty, .. }
            | Type::TypeTag { ty, .. } => vec![ty],
            Type::Array { elem, index, .. } => vec![elem, index],
            Type::Struct { members, .. } | Type::Union { members, .. } => {
                members.iter_mut().map(|m| &mut m.ty).collect()
            }
            Type::Func { proto, .. } => vec![proto],
            Type::FuncProto { ret, params } => std::iter::once(ret)
                .chain(params.iter_mut().map(|(_, t)| t))
                .collect(),
            Type::Datasec { vars, .. } => vars.iter_mut().map(|(v, _, _)| v).collect(),
        }
    }
}
