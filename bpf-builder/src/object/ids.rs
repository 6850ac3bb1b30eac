//! Ids of an object's maps, programs and functions. Each id remembers
//! which object made it, so an id of one object given to another is an
//! error at the call that receives it, never a silent binding to the other
//! object's map of the same number.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};

use cranelift_entity::entity_impl;

/// Which [`Object`](super::Object) an id belongs to: a number unique in
/// the process. A clone of an object keeps its key, so ids made before the
/// clone mean the same thing in both.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct ObjectKey(NonZeroU32);

impl ObjectKey {
    /// A key no object of this process had before.
    pub(crate) fn fresh() -> ObjectKey {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        ObjectKey(NonZeroU32::new(n).expect("fewer than 2^32 objects in one process"))
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "object #{}", self.0)
    }
}

/// Slots of an object's tables; the public ids pair them with the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct MapSlot(u32);
entity_impl!(MapSlot, "map");

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ProgSlot(u32);
entity_impl!(ProgSlot, "prog");

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct FuncSlot(u32);
entity_impl!(FuncSlot, "func");

macro_rules! object_id {
    ($(#[$doc:meta])* $name:ident, $slot:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name {
            object: ObjectKey,
            slot: $slot,
        }

        impl $name {
            pub(crate) fn new(object: ObjectKey, slot: $slot) -> Self {
                $name { object, slot }
            }

            pub(crate) fn slot(self) -> $slot {
                self.slot
            }

            /// The object this id belongs to.
            pub fn object(self) -> ObjectKey {
                self.object
            }

            /// Its position among the object's items of its kind, in the
            /// order added (the map index that ELF files and the
            /// interpreter use).
            pub fn index(self) -> usize {
                cranelift_entity::EntityRef::index(self.slot)
            }
        }

        /// `map3`, `prog0`, `func1`: the kind and the index.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.index())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{} of {}"), self.index(), self.object)
            }
        }
    };
}

object_id!(
    /// A map of an [`Object`](super::Object).
    MapId,
    MapSlot,
    "map"
);
object_id!(
    /// A program of an [`Object`](super::Object).
    ProgId,
    ProgSlot,
    "prog"
);
object_id!(
    /// A function of an [`Object`](super::Object), callable from its
    /// programs and functions (bpf-to-bpf calls) or passed as a callback.
    FuncId,
    FuncSlot,
    "func"
);
