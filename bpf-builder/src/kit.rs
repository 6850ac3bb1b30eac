//! Code that generators of tracing programs would otherwise write by
//! hand, as functions over an [`Asm`]: a stack-slot allocator within the
//! 512-byte frame ([`Frame`]), reads of kernel and user memory
//! ([`probe_read`], [`probe_read_str`]), a chain of kernel pointers
//! followed with offsets from the running kernel's BTF ([`read_path`]:
//! `task->real_parent->tgid`, resolved on the host that generates the
//! program), per-CPU scratch buffers for records larger than the stack
//! ([`Scratch`]), and map calls whose key and value are on the stack
//! ([`map_lookup`], [`map_update`]).
//!
//! Each function says which registers it clobbers; like a helper call,
//! most clobber r0-r5.
//!
//! ```
//! use bpf_builder::asm::Asm;
//! use bpf_builder::insn::Reg;
//! use bpf_builder::kit::{Dest, Frame, Space, probe_read_str};
//!
//! let mut a = Asm::new();
//! let mut frame = Frame::new();
//! let name = frame.alloc(64, 8).unwrap();
//! // r6 holds a user pointer to a string: copy it to the stack.
//! probe_read_str(&mut a, Space::User, Dest::Stack(name), Reg::R6);
//! // 448 bytes are left.
//! assert_eq!(frame.used(), 64);
//! assert!(frame.alloc(449, 1).is_err());
//! ```

use crate::asm::{Asm, Label};
use crate::btf::TypeId;
use crate::btf::kernel::{KernelBtf, KernelBtfError, Type};
use crate::helpers::Helper;
use crate::insn::{JmpOp, Reg, Size};
use crate::map::MapSpec;
use crate::object::{MapId, Object, ObjectError};

/// The bytes of stack a BPF function has.
pub const STACK_SIZE: u32 = 512;

/// Why a piece of code cannot be generated.
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    /// The frame has no room for the slot.
    #[error(
        "no room for {size} bytes (aligned to {align}) on the stack: {used} of its {STACK_SIZE} bytes are taken; put large records in a per-CPU scratch buffer"
    )]
    StackFull {
        /// The slot's size.
        size: u32,
        /// Its alignment.
        align: u32,
        /// Bytes taken before it.
        used: u32,
    },
    /// A slot was asked with an alignment that is not a power of two up
    /// to 8, or a size of 0.
    #[error(
        "a stack slot of {size} bytes aligned to {align}: sizes start at 1, alignments are 1, 2, 4 or 8"
    )]
    BadSlot {
        /// The size asked.
        size: u32,
        /// The alignment asked.
        align: u32,
    },
    /// The kernel's BTF does not have what the path names.
    #[error(transparent)]
    Btf(#[from] KernelBtfError),
    /// A path goes on after a member that is not a pointer to a struct
    /// or union, or ends at one that cannot be read into a register.
    #[error("`{path}`: {why}")]
    Path {
        /// The path, up to the member at fault.
        path: String,
        /// What is wrong there.
        why: String,
    },
}

/// A slot of the stack: `size` bytes at `off` from r10 (negative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    off: i16,
    size: u32,
}

impl Slot {
    /// Its offset from r10 (the frame pointer).
    pub fn off(&self) -> i16 {
        self.off
    }

    /// Its size in bytes.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The offset from r10 of its byte `byte`; `None` past its end.
    pub fn at(&self, byte: u32) -> Option<i16> {
        (byte < self.size).then(|| self.off + byte as i16)
    }
}

/// A point of a [`Frame`]'s allocation, to go back to with
/// [`Frame::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark(u32);

/// The stack slots of one BPF function: allocated downwards from r10,
/// each aligned, never past [`STACK_SIZE`] bytes; released in the order
/// opposite to their allocation (a [`Mark`] and everything after it).
#[derive(Debug, Clone, Default)]
pub struct Frame {
    used: u32,
}

impl Frame {
    /// An empty frame.
    pub fn new() -> Frame {
        Frame::default()
    }

    /// A slot of `size` bytes aligned to `align` (1, 2, 4 or 8).
    pub fn alloc(&mut self, size: u32, align: u32) -> Result<Slot, KitError> {
        if size == 0 || !matches!(align, 1 | 2 | 4 | 8) {
            return Err(KitError::BadSlot { size, align });
        }
        let end = self
            .used
            .checked_add(size)
            .map(|e| e.next_multiple_of(align))
            .filter(|&e| e <= STACK_SIZE)
            .ok_or(KitError::StackFull {
                size,
                align,
                used: self.used,
            })?;
        self.used = end;
        Ok(Slot {
            off: -(end as i16),
            size,
        })
    }

    /// Bytes taken, alignment included.
    pub fn used(&self) -> u32 {
        self.used
    }

    /// The present point of the allocation.
    pub fn mark(&self) -> Mark {
        Mark(self.used)
    }

    /// Releases the slots allocated since `mark`.
    pub fn release(&mut self, mark: Mark) {
        self.used = self.used.min(mark.0);
    }
}

/// Whose memory a read reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// The kernel's (`bpf_probe_read_kernel`).
    Kernel,
    /// The current process's (`bpf_probe_read_user`).
    User,
}

/// `r1 = r10 + off`, the address of a stack slot, into `reg`.
fn stack_address(a: &mut Asm, reg: Reg, off: i16) {
    a.mov64(reg, Reg::R10);
    a.add64(reg, i32::from(off));
}

/// Where a read writes to.
#[derive(Debug, Clone, Copy)]
pub enum Dest {
    /// A stack slot, all of it.
    Stack(Slot),
    /// `size` bytes at the address in a register (a map value, such as a
    /// [`Scratch`] buffer); not r2 or r3, which carry the call's other
    /// arguments.
    At(Reg, u32),
}

impl Dest {
    /// Emits `r1 = the destination's address, r2 = its size`, after
    /// `r3 = src` (so that `src` may be any register).
    fn args(self, a: &mut Asm, src: Reg) {
        a.mov64(Reg::R3, src);
        match self {
            Dest::Stack(s) => {
                stack_address(a, Reg::R1, s.off);
                a.mov64(Reg::R2, s.size as i32);
            }
            Dest::At(r, size) => {
                if r != Reg::R1 {
                    a.mov64(Reg::R1, r);
                }
                a.mov64(Reg::R2, size as i32);
            }
        }
    }
}

/// Copies the destination's size in bytes from the address in `src` to
/// `dst`: `bpf_probe_read_kernel` or `_user`. r0 is 0, or a negative
/// error (the destination is then zeroed). Clobbers r0-r5.
pub fn probe_read(a: &mut Asm, space: Space, dst: Dest, src: Reg) {
    dst.args(a, src);
    a.call(match space {
        Space::Kernel => Helper::ProbeReadKernel,
        Space::User => Helper::ProbeReadUser,
    });
}

/// Copies the NUL-terminated string at the address in `src` to `dst`,
/// at most the destination's size with the NUL:
/// `bpf_probe_read_kernel_str` or `_user_str`. r0 is the length copied,
/// NUL included, or a negative error. Clobbers r0-r5.
pub fn probe_read_str(a: &mut Asm, space: Space, dst: Dest, src: Reg) {
    dst.args(a, src);
    a.call(match space {
        Space::Kernel => Helper::ProbeReadKernelStr,
        Space::User => Helper::ProbeReadUserStr,
    });
}

/// Reads `path` from the kernel object of type `ty` whose address is in
/// `base` into `dst`, following pointers: `read_path(a, btf, task,
/// "real_parent.tgid", ...)` reads `task->real_parent->tgid`. Members
/// are found in `btf` as C finds them (through anonymous members), their
/// offsets fixed now, from the kernel this runs on. A member that is a
/// pointer and has members after it is read, and the path goes on in
/// the struct it points to; the last member, an integer, enum or
/// pointer of 1, 2, 4 or 8 bytes, is read into `dst` (zero-extended).
///
/// `tmp` is an 8-byte slot the reads go through. A read that fails (a
/// NULL pointer on the way) leaves `dst` 0. Clobbers r0-r5 and `base`.
pub fn read_path(
    a: &mut Asm,
    btf: &KernelBtf,
    ty: TypeId,
    path: &str,
    base: Reg,
    tmp: &Slot,
    dst: Reg,
) -> Result<(), KitError> {
    if tmp.size < 8 {
        return Err(KitError::BadSlot {
            size: tmp.size,
            align: 8,
        });
    }
    let names: Vec<&str> = path.split('.').collect();
    let mut at = ty;
    // Bytes from `base` to the struct the next member is in.
    let mut offset = 0u32;
    for (i, name) in names.iter().enumerate() {
        let so_far = || names[..=i].join(".");
        let m = btf.member(at, name)?;
        if m.bitfield_size != 0 {
            return Err(KitError::Path {
                path: so_far(),
                why: "a bitfield cannot be read with a probe read of whole bytes".into(),
            });
        }
        offset += m.byte_offset();
        let member_ty = btf.resolve(m.ty)?;
        let last = i + 1 == names.len();
        if last {
            let size = btf.size_of(member_ty)?;
            let width = match (btf.get(member_ty), size) {
                (Some(Type::Int { .. } | Type::Enum { .. } | Type::Ptr(_)), 1 | 2 | 4 | 8) => size,
                _ => {
                    return Err(KitError::Path {
                        path: so_far(),
                        why: format!(
                            "{} of {size} bytes does not fit a register",
                            btf.name_of(member_ty)
                        ),
                    });
                }
            };
            read_into(a, base, offset, tmp, width, dst);
            return Ok(());
        }
        let Some(Type::Ptr(pointee)) = btf.get(member_ty) else {
            return Err(KitError::Path {
                path: so_far(),
                why: "members follow one that is not a pointer (write them as one path through \
                      nested structs)"
                    .into(),
            });
        };
        // Through the pointer: its value becomes the new base.
        read_into(a, base, offset, tmp, 8, base);
        at = btf.resolve(*pointee)?;
        offset = 0;
    }
    Ok(())
}

/// `dst = *(width bytes *)(base + offset)` through a probe read into
/// `tmp` (zeroed by the helper when the read fails).
fn read_into(a: &mut Asm, base: Reg, offset: u32, tmp: &Slot, width: u32, dst: Reg) {
    a.mov64(Reg::R3, base);
    a.add64(Reg::R3, offset as i32);
    stack_address(a, Reg::R1, tmp.off);
    a.mov64(Reg::R2, width as i32);
    a.call(Helper::ProbeReadKernel);
    let size = match width {
        1 => Size::B,
        2 => Size::H,
        4 => Size::W,
        _ => Size::DW,
    };
    a.ldx(size, dst, Reg::R10, tmp.off);
}

/// A per-CPU scratch buffer of `size` bytes: one entry of a per-CPU
/// array, for records larger than the 512-byte stack. A program gets its
/// CPU's buffer with [`Scratch::emit_get`]; a program runs on one CPU
/// until it exits, so the buffer is its own while it runs (a program
/// that may interrupt another of the same object, such as a perf event
/// in a tracepoint, needs a buffer of its own).
#[derive(Debug, Clone, Copy)]
pub struct Scratch {
    map: MapId,
    size: u32,
}

impl Scratch {
    /// Adds the buffer's map, `name`, to `object`.
    pub fn new(object: &mut Object, name: &str, size: u32) -> Result<Scratch, ObjectError> {
        let map = object.add_map(MapSpec::per_cpu_array(name, size, 1))?;
        Ok(Scratch { map, size })
    }

    /// The buffer's map.
    pub fn map(&self) -> MapId {
        self.map
    }

    /// Its size in bytes.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Emits `dst = this CPU's buffer` (r0 too), going to `fail` when the
    /// lookup fails (it does not, for index 0; the verifier needs the
    /// test). `key` is a 4-byte stack slot. Clobbers r0-r5.
    pub fn emit_get(&self, a: &mut Asm, dst: Reg, key: &Slot, fail: Label) {
        a.st(Size::W, Reg::R10, key.off, 0);
        map_lookup(a, self.map, key, fail);
        if dst != Reg::R0 {
            a.mov64(dst, Reg::R0);
        }
    }
}

/// Emits `r0 = bpf_map_lookup_elem(map, &key)` with the key in the stack
/// slot `key`, going to `miss` when there is no such element. Clobbers
/// r0-r5.
pub fn map_lookup(a: &mut Asm, map: MapId, key: &Slot, miss: Label) {
    a.ld_map_fd(Reg::R1, map);
    stack_address(a, Reg::R2, key.off);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, Reg::R0, 0, miss);
}

/// Where [`map_update`] takes the value from.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    /// A stack slot.
    Stack(Slot),
    /// The memory a register points to (a map value, such as a
    /// [`Scratch`] buffer).
    At(Reg),
}

/// Emits `r0 = bpf_map_update_elem(map, &key, value, flags)` with the key
/// in the stack slot `key` (`flags`: 0 any, 1 only new, 2 only
/// existing); r0 is 0 or a negative error. Clobbers r0-r5.
pub fn map_update(a: &mut Asm, map: MapId, key: &Slot, value: Value, flags: i32) {
    if let Value::At(r) = value {
        // First: the value's register may be one the key's address
        // takes.
        a.mov64(Reg::R3, r);
    }
    a.ld_map_fd(Reg::R1, map);
    stack_address(a, Reg::R2, key.off);
    if let Value::Stack(s) = value {
        stack_address(a, Reg::R3, s.off);
    }
    a.mov64(Reg::R4, flags);
    a.call(Helper::MapUpdateElem);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_aligned_below_the_frame_pointer_and_stop_at_512_bytes() {
        let mut f = Frame::new();
        let a = f.alloc(3, 1).unwrap();
        let b = f.alloc(8, 8).unwrap();
        assert_eq!((a.off(), a.size()), (-3, 3));
        // 3 bytes taken, then 8 aligned to 8: it ends at 16.
        assert_eq!((b.off(), b.size()), (-16, 8));
        assert_eq!(b.off() % 8, 0);
        let mark = f.mark();
        let big = f.alloc(496, 8).unwrap();
        assert_eq!(big.off(), -512);
        assert!(matches!(
            f.alloc(1, 1),
            Err(KitError::StackFull { used: 512, .. })
        ));
        f.release(mark);
        assert_eq!(f.used(), 16);
        assert_eq!(f.alloc(8, 8).unwrap().off(), -24);
        assert!(matches!(f.alloc(0, 1), Err(KitError::BadSlot { .. })));
        assert!(matches!(f.alloc(4, 3), Err(KitError::BadSlot { .. })));
    }
}
