//! The kernel's ids of loaded programs, maps and links: system-wide
//! numbers the kernel gives each object (what `bpftool prog show` lists),
//! unlike the object-local [`object::ProgId`](crate::object::ProgId) and
//! [`object::MapId`](crate::object::MapId) of an [`Object`](crate::object::Object)
//! not yet loaded. Each kind has its own type, so a program id cannot be
//! passed where a link id is meant; the raw `u32` appears only where the
//! system calls in [`sys`](crate::sys) read or write it.

use std::fmt;

macro_rules! kernel_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(u32);

        impl $name {
            /// The id the kernel (or a tool such as bpftool) reports as
            /// `id`.
            pub const fn new(id: u32) -> Self {
                $name(id)
            }

            /// The number itself.
            pub const fn get(self) -> u32 {
                self.0
            }
        }

        /// The number, as bpftool shows it.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

kernel_id!(
    /// The kernel's id of a loaded program.
    KernelProgId
);
kernel_id!(
    /// The kernel's id of a map.
    KernelMapId
);
kernel_id!(
    /// The kernel's id of a link.
    KernelLinkId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_get_give_the_number() {
        let id = KernelProgId::new(42);
        assert_eq!(id.get(), 42);
        assert_eq!(id.to_string(), "42");
        assert_eq!(format!("{:>4}", KernelLinkId::new(7)), "   7");
    }
}
