//! Runs the pre-checked form ([`super::typed`]) of an XDP program over the
//! caller's packet and metadata, in place (the form never writes them):
//! untagged registers, a bounds check on each memory access. A run that
//! would fault (an access out of bounds, the instruction budget used up)
//! is abandoned: `None`, for the checked interpreter to run it again.

use super::ctx::{CtxRead, XdpCtx, xdp_read};
use super::exec::{alu32, alu64, byte_swap, cond, mov_sx, neg, sign_extend};
use super::machine::{FRAME_SIZE, read_le, span, write_le};
use super::typed::{Arg, FastOp, Jump, Prechecked};
use crate::insn::Reg;

/// Where the regions of an XDP run lie in the checked interpreter's
/// packet buffer: pointers hold these offsets, so that they compare and
/// subtract as the checked run's do.
pub(crate) struct Layout<'a> {
    pub(crate) meta: &'a [u8],
    pub(crate) packet: &'a [u8],
    pub(crate) meta_start: usize,
    pub(crate) data_start: usize,
    pub(crate) data_end: usize,
}

/// The frame-0 stack of the machine and the lowest offset written since
/// it was last cleared (as [`super::machine::Machine`] keeps them).
pub(crate) struct Stack<'a> {
    pub(crate) bytes: &'a mut [u8],
    pub(crate) dirty_from: &'a mut usize,
}

/// Runs `form` from the start: r0 at the exit, or `None` when the checked
/// run would fault.
///
/// The budget of executed instructions is not counted one by one: the
/// run starts with the budget less the program's length, and each
/// backward jump taken uses up the program's length again. Between two
/// backward jumps a run executes each instruction at most once, so a run
/// that goes on stays within the checked run's budget; one that cannot
/// show it is abandoned (maybe early: the checked run then decides), and
/// a program longer than the budget always runs checked.
pub(crate) fn run(
    form: &Prechecked,
    at: &Layout<'_>,
    ctx: &XdpCtx,
    stack: Stack<'_>,
    limit: u64,
) -> Option<u64> {
    let ops = &form.ops[..];
    let len = ops.len() as u64;
    let mut budget = limit.checked_sub(len)?;
    let Stack {
        bytes: stack,
        dirty_from,
    } = stack;
    let mut regs = [0u64; 11];
    regs[Reg::R10 as usize] = FRAME_SIZE as u64;
    let entry = &form.entry;
    for (reg, offset) in [
        (entry.data, at.data_start),
        (entry.data_end, at.data_end),
        (entry.data_meta, at.meta_start),
    ] {
        if let Some(r) = reg {
            regs[r as usize] = offset as u64;
        }
    }
    let arg = |regs: &[u64; 11], a: Arg| match a {
        Arg::Reg(r) => regs[r as usize],
        Arg::Imm(i) => i,
    };
    let extend = |v: u64, sx: bool, size: u8| if sx { sign_extend(v, size * 8) } else { v };
    let mut pc = entry.start;
    // Continues at `target`, from the instruction at `from` (`pc`, or the
    // second of a fused pair), using up the budget of a backward jump.
    macro_rules! goto {
        ($target:expr) => {
            goto!($target, pc)
        };
        ($target:expr, $from:expr) => {{
            let target: usize = $target;
            if target <= $from {
                budget = budget.checked_sub(len)?;
            }
            pc = target;
            continue;
        }};
    }
    // Jumps to the target when the prepared operands satisfy `holds`.
    macro_rules! jump {
        ($j:expr, $holds:expr) => {{
            let j: Jump = $j;
            let holds: fn(u64, u64) -> bool = $holds;
            let x = regs[j.dst as usize].wrapping_add(j.bias) & j.mask;
            let y = arg(&regs, j.src).wrapping_add(j.bias) & j.mask;
            if holds(x, y) {
                goto!(j.target);
            }
        }};
    }
    loop {
        match ops[pc] {
            FastOp::MovImm { dst, imm } => regs[dst as usize] = imm,
            FastOp::Mov { dst, src } => regs[dst as usize] = regs[src as usize],
            FastOp::Mov32 { dst, src } => regs[dst as usize] = regs[src as usize] & 0xffff_ffff,
            FastOp::AddImm64 { dst, imm } => {
                regs[dst as usize] = regs[dst as usize].wrapping_add(imm);
            }
            FastOp::Add64 { dst, src } => {
                regs[dst as usize] = regs[dst as usize].wrapping_add(regs[src as usize]);
            }
            FastOp::Sub64 { dst, src } => {
                regs[dst as usize] = regs[dst as usize].wrapping_sub(arg(&regs, src));
            }
            FastOp::And32 { dst, src } => {
                regs[dst as usize] &= arg(&regs, src) & 0xffff_ffff;
            }
            FastOp::Alu64 { op, dst, src } => {
                regs[dst as usize] = alu64(op, regs[dst as usize], arg(&regs, src));
            }
            FastOp::Lsh32Imm { dst, shift } => {
                regs[dst as usize] = u64::from((regs[dst as usize] as u32) << shift);
            }
            FastOp::Alu32 { op, dst, src } => {
                let b = arg(&regs, src) as u32;
                regs[dst as usize] = u64::from(alu32(op, regs[dst as usize] as u32, b));
            }
            FastOp::Neg { wide, dst } => regs[dst as usize] = neg(wide, regs[dst as usize]),
            FastOp::MovSx {
                wide,
                dst,
                src,
                bits,
            } => regs[dst as usize] = mov_sx(wide, regs[src as usize], bits),
            FastOp::End { swap, dst, bits } => {
                regs[dst as usize] = byte_swap(swap, bits, regs[dst as usize]);
            }
            FastOp::LdImm64 { dst, value } => {
                regs[dst as usize] = value;
                pc += 2;
                continue;
            }
            FastOp::LoadPkt1 { dst, src, off } => {
                let [b] = packet_bytes(at, regs[src as usize], off)?;
                regs[dst as usize] = u64::from(b);
            }
            FastOp::LoadPkt2 { dst, src, off } => {
                let b = packet_bytes(at, regs[src as usize], off)?;
                regs[dst as usize] = u64::from(u16::from_le_bytes(b));
            }
            FastOp::LoadPkt4 { dst, src, off } => {
                let b = packet_bytes(at, regs[src as usize], off)?;
                regs[dst as usize] = u64::from(u32::from_le_bytes(b));
            }
            FastOp::LoadPkt1Test(t) => {
                let [b] = packet_bytes(at, regs[t.src as usize], t.off)?;
                regs[t.dst as usize] = u64::from(b);
                if (u32::from(b) == t.imm) != t.ne {
                    goto!(t.target, pc + 1);
                }
                pc += 2;
                continue;
            }
            FastOp::LoadPkt2Test(t) => {
                let b = packet_bytes(at, regs[t.src as usize], t.off)?;
                let v = u16::from_le_bytes(b);
                regs[t.dst as usize] = u64::from(v);
                if (u32::from(v) == t.imm) != t.ne {
                    goto!(t.target, pc + 1);
                }
                pc += 2;
                continue;
            }
            FastOp::LoadPkt4Test(t) => {
                let b = packet_bytes(at, regs[t.src as usize], t.off)?;
                let v = u32::from_le_bytes(b);
                regs[t.dst as usize] = u64::from(v);
                if (v == t.imm) != t.ne {
                    goto!(t.target, pc + 1);
                }
                pc += 2;
                continue;
            }
            FastOp::LoadMeta4 { dst, src, off } => {
                let i = address(regs[src as usize], off).wrapping_sub(at.meta_start as u64);
                let i = usize::try_from(i).ok()?;
                let b: [u8; 4] = at.meta.get(i..i.wrapping_add(4))?.try_into().ok()?;
                regs[dst as usize] = u64::from(u32::from_le_bytes(b));
            }
            FastOp::AddImmJGt {
                dst,
                imm,
                src,
                bias,
                target,
            } => {
                let x = regs[dst as usize].wrapping_add(imm);
                regs[dst as usize] = x;
                if x.wrapping_add(bias) > regs[src as usize].wrapping_add(bias) {
                    goto!(target, pc + 1);
                }
                pc += 2;
                continue;
            }
            FastOp::MovAddImmJGt {
                dst,
                from,
                imm,
                src,
                bias,
                target,
            } => {
                let x = regs[from as usize].wrapping_add(imm);
                regs[dst as usize] = x;
                if x.wrapping_add(bias) > regs[src as usize].wrapping_add(bias) {
                    goto!(target, pc + 2);
                }
                pc += 3;
                continue;
            }
            FastOp::SubJGt {
                dst,
                sub,
                src,
                bias,
                target,
            } => {
                let x = regs[dst as usize].wrapping_sub(regs[sub as usize]);
                regs[dst as usize] = x;
                if x.wrapping_add(bias) > regs[src as usize].wrapping_add(bias) {
                    goto!(target, pc + 1);
                }
                pc += 2;
                continue;
            }
            FastOp::MovSubJGt {
                dst,
                from,
                sub,
                src,
                bias,
                target,
            } => {
                // In order: `sub` may be `dst`.
                regs[dst as usize] = regs[from as usize];
                let x = regs[dst as usize].wrapping_sub(regs[sub as usize]);
                regs[dst as usize] = x;
                if x.wrapping_add(bias) > regs[src as usize].wrapping_add(bias) {
                    goto!(target, pc + 2);
                }
                pc += 3;
                continue;
            }
            FastOp::LoadPkt {
                size,
                sx,
                dst,
                src,
                off,
            } => {
                let addr = address(regs[src as usize], off);
                let region = (at.packet, at.data_start, at.data_end);
                regs[dst as usize] = extend(load(region, addr, size)?, sx, size);
            }
            FastOp::LoadMeta {
                size,
                sx,
                dst,
                src,
                off,
            } => {
                let addr = address(regs[src as usize], off);
                let region = (at.meta, at.meta_start, at.data_start);
                regs[dst as usize] = extend(load(region, addr, size)?, sx, size);
            }
            FastOp::LoadStack {
                size,
                sx,
                dst,
                src,
                off,
            } => {
                let addr = address(regs[src as usize], off);
                let region = (&stack[..], 0, FRAME_SIZE);
                regs[dst as usize] = extend(load(region, addr, size)?, sx, size);
            }
            FastOp::CtxData { dst } => regs[dst as usize] = at.data_start as u64,
            FastOp::CtxDataEnd { dst } => regs[dst as usize] = at.data_end as u64,
            FastOp::CtxDataMeta { dst } => regs[dst as usize] = at.meta_start as u64,
            FastOp::CtxField { dst, off } => match xdp_read(ctx, off.into(), 4) {
                Ok(CtxRead::Scalar(v)) => regs[dst as usize] = v,
                _ => return None,
            },
            FastOp::StoreStack4 { dst, off, src } => {
                let i = span(address(regs[dst as usize], off), 4, 0, FRAME_SIZE)?;
                *dirty_from = (*dirty_from).min(i);
                let word = (regs[src as usize] as u32).to_le_bytes();
                stack.get_mut(i..i + 4)?.copy_from_slice(&word);
            }
            FastOp::StoreStack {
                size,
                dst,
                off,
                src,
            } => {
                let n = usize::from(size);
                let i = span(address(regs[dst as usize], off), n, 0, FRAME_SIZE)?;
                *dirty_from = (*dirty_from).min(i);
                write_le(&mut stack[i..i + n], arg(&regs, src));
            }
            FastOp::Ja { target } => goto!(target),
            FastOp::JEqImm32 { dst, imm, target } => {
                if regs[dst as usize] as u32 == imm {
                    goto!(target);
                }
            }
            FastOp::JNeImm32 { dst, imm, target } => {
                if regs[dst as usize] as u32 != imm {
                    goto!(target);
                }
            }
            FastOp::JSetImm32 { dst, imm, target } => {
                if regs[dst as usize] as u32 & imm != 0 {
                    goto!(target);
                }
            }
            FastOp::JLtImm64 { dst, imm, target } => {
                if regs[dst as usize] < imm {
                    goto!(target);
                }
            }
            FastOp::JGtReg64 {
                dst,
                src,
                bias,
                target,
            } => {
                let x = regs[dst as usize].wrapping_add(bias);
                if x > regs[src as usize].wrapping_add(bias) {
                    goto!(target);
                }
            }
            FastOp::JEq(j) => jump!(j, |x, y| x == y),
            FastOp::JNe(j) => jump!(j, |x, y| x != y),
            FastOp::JGt(j) => jump!(j, |x, y| x > y),
            FastOp::JGe(j) => jump!(j, |x, y| x >= y),
            FastOp::JLt(j) => jump!(j, |x, y| x < y),
            FastOp::JLe(j) => jump!(j, |x, y| x <= y),
            FastOp::JSet(j) => jump!(j, |x, y| x & y != 0),
            FastOp::Jcond {
                op,
                wide,
                dst,
                src,
                target,
            } => {
                if cond(op, wide, regs[dst as usize], arg(&regs, src)) {
                    goto!(target);
                }
            }
            FastOp::JcondPkt {
                op,
                dst,
                src,
                target,
            } => {
                let base = |v: u64| super::exec::BASE.wrapping_add(v);
                if cond(op, true, base(regs[dst as usize]), base(regs[src as usize])) {
                    goto!(target);
                }
            }
            FastOp::Exit => return Some(regs[0]),
            FastOp::ExitImm { imm } => return Some(imm),
            FastOp::Unreached => return None,
        }
        pc += 1;
    }
}

/// The `N` packet bytes at `base + off`, or `None` when any is outside
/// the packet (the checked run's fault).
#[inline(always)]
fn packet_bytes<const N: usize>(at: &Layout<'_>, base: u64, off: i16) -> Option<[u8; N]> {
    // Wraps to a huge index below the packet's start.
    let i = usize::try_from(address(base, off).wrapping_sub(at.data_start as u64)).ok()?;
    let bytes = at.packet.get(i..i.wrapping_add(N))?;
    bytes.try_into().ok()
}

/// The `size` bytes at `addr` of a region (its bytes, and the offsets
/// where it starts and ends), little endian, or `None` when any is
/// outside it (the checked run's fault).
#[inline(always)]
fn load((bytes, start, end): (&[u8], usize, usize), addr: u64, size: u8) -> Option<u64> {
    let n = usize::from(size);
    let i = span(addr, n, start, end)?;
    Some(read_le(&bytes[i - start..][..n]))
}

/// `base + off` as the checked run computes an access's offset.
#[inline(always)]
fn address(base: u64, off: i16) -> u64 {
    base.wrapping_add(i64::from(off) as u64)
}
