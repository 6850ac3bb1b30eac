//! The helper functions the interpreter implements, with the kernel's
//! argument rules and return values.

use super::ctx::ProgKind;
use super::error::Fault;
use super::exec::{Exec, Flow, Redirect};
use super::machine::{Area, FrameKind, Kind, Val};
use super::maps::InterpMapKind;
use crate::helpers::Helper;
use crate::insn::Reg;

const EINVAL: i64 = 22;
const EFAULT: i64 = 14;
const E2BIG: i64 = 7;

/// XDP and tc verdicts the redirect helpers return.
const XDP_ABORTED: u64 = 0;
const XDP_REDIRECT: u64 = 4;
const TC_ACT_SHOT: u64 = 2;
const TC_ACT_REDIRECT: u64 = 7;

/// `bpf_redirect_map` flags.
const BPF_F_BROADCAST: u64 = 1 << 3;
const BPF_F_EXCLUDE_INGRESS: u64 = 1 << 4;
/// `bpf_redirect` flag for tc.
const BPF_F_INGRESS: u64 = 1;

/// Most iterations `bpf_loop` accepts.
const BPF_MAX_LOOPS: u64 = 1 << 23;

/// A negative errno as a register value.
fn errno(e: i64) -> Val {
    Val::scalar((-e) as u64)
}

impl Exec<'_> {
    /// Calls helper `id` from instruction `pc`.
    pub(crate) fn call_helper(&mut self, id: i32, pc: usize) -> Result<Flow, Fault> {
        let helper = Helper::from_id(id).ok_or(Fault::UnknownHelper(id))?;
        let prog = self.m.prog;
        let r0 = match helper {
            Helper::MapLookupElem => self.map_lookup(helper)?,
            Helper::MapUpdateElem => self.map_update(helper)?,
            Helper::MapDeleteElem => self.map_delete(helper)?,
            Helper::KtimeGetNs | Helper::KtimeGetBootNs | Helper::KtimeGetCoarseNs => {
                // Monotonic, never zero.
                Val::scalar(self.env.clock.elapsed().as_nanos() as u64 + 1)
            }
            Helper::GetPrandomU32 => {
                // xorshift64*: deterministic per interpreter.
                let mut x = self.env.prandom;
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                self.env.prandom = x;
                Val::scalar(x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32)
            }
            Helper::GetSmpProcessorId => Val::scalar(0),
            Helper::SkbLoadBytes if prog != ProgKind::Xdp => self.load_bytes(helper)?,
            Helper::XdpLoadBytes if prog == ProgKind::Xdp => self.load_bytes(helper)?,
            // Frames here are in one buffer: the whole length is data's.
            Helper::XdpGetBuffLen if prog == ProgKind::Xdp => Val::scalar(self.m.data_len() as u64),
            Helper::RedirectMap if prog == ProgKind::Xdp => self.redirect_map(helper)?,
            Helper::Redirect if prog != ProgKind::Socket => self.redirect()?,
            Helper::Loop => return self.bpf_loop(helper, pc),
            other => return Err(Fault::UnsupportedHelper(other.name())),
        };
        self.m.regs[0] = r0;
        self.m.clobber_args();
        Ok(Flow::Next)
    }

    /// The map in r1.
    fn map_arg(&self, helper: Helper) -> Result<u16, Fault> {
        match self.m.get(Reg::R1)?.kind {
            Kind::Map(i) => Ok(i),
            _ => Err(Fault::HelperArg {
                helper: helper.name(),
                reason: "r1 is not a map",
            }),
        }
    }

    /// Memory of `len` bytes at the pointer in register `r`.
    fn mem_arg(&self, r: Reg, len: usize, write: bool) -> Result<(Area, usize), Fault> {
        let ptr = self.m.get(r)?;
        self.m.resolve(self.maps, ptr, 0, len, write)
    }

    /// Copies `len` bytes at the pointer in `r` to the end of the scratch
    /// buffer.
    fn copy_arg(&mut self, scratch: &mut Vec<u8>, r: Reg, len: usize) -> Result<(), Fault> {
        let (area, at) = self.mem_arg(r, len, false)?;
        scratch.extend_from_slice(self.m.bytes(self.maps, area, at, len)?);
        Ok(())
    }

    fn map_lookup(&mut self, helper: Helper) -> Result<Val, Fault> {
        let map = self.map_arg(helper)?;
        let key_size = self.maps[map as usize].1.key_size() as usize;
        let mut key = std::mem::take(&mut self.m.scratch);
        key.clear();
        let copied = self.copy_arg(&mut key, Reg::R2, key_size);
        let found = copied.map(|()| self.maps[map as usize].1.find(&key));
        self.m.scratch = key;
        Ok(match found? {
            Some(elem) => Val {
                kind: Kind::MapValue { map, elem },
                v: 0,
            },
            None => Val::scalar(0),
        })
    }

    fn map_update(&mut self, helper: Helper) -> Result<Val, Fault> {
        let map = self.map_arg(helper)?;
        let m = &self.maps[map as usize].1;
        if m.is_read_only() {
            return Err(Fault::ReadOnly("map"));
        }
        let (key_size, value_size) = (m.key_size() as usize, m.value_size() as usize);
        let flags = self.m.scalar(Reg::R4, "map update flags")?;
        let mut buf = std::mem::take(&mut self.m.scratch);
        buf.clear();
        let copied = self
            .copy_arg(&mut buf, Reg::R2, key_size)
            .and_then(|()| self.copy_arg(&mut buf, Reg::R3, value_size));
        let result = copied.map(|()| {
            let (key, value) = buf.split_at(key_size);
            self.maps[map as usize].1.update(key, value, flags)
        });
        self.m.scratch = buf;
        Ok(match result? {
            Ok(()) => Val::scalar(0),
            Err(e) => errno(i64::from(e.errno())),
        })
    }

    fn map_delete(&mut self, helper: Helper) -> Result<Val, Fault> {
        let map = self.map_arg(helper)?;
        let m = &self.maps[map as usize].1;
        if m.is_read_only() {
            return Err(Fault::ReadOnly("map"));
        }
        let key_size = m.key_size() as usize;
        let mut key = std::mem::take(&mut self.m.scratch);
        key.clear();
        let copied = self.copy_arg(&mut key, Reg::R2, key_size);
        let result = copied.map(|()| self.maps[map as usize].1.delete(&key));
        self.m.scratch = key;
        Ok(match result? {
            Ok(()) => Val::scalar(0),
            Err(e) => errno(i64::from(e.errno())),
        })
    }

    /// `bpf_skb_load_bytes` / `bpf_xdp_load_bytes(ctx, offset, to, len)`.
    fn load_bytes(&mut self, helper: Helper) -> Result<Val, Fault> {
        if self.m.get(Reg::R1)?.kind != Kind::Ctx {
            return Err(Fault::HelperArg {
                helper: helper.name(),
                reason: "r1 is not the context",
            });
        }
        let offset = self.m.scalar(Reg::R2, "an offset")? as u32;
        let len = self.m.scalar(Reg::R4, "a length")? as u32;
        if len == 0 {
            return Err(Fault::HelperArg {
                helper: helper.name(),
                reason: "the length must be a non-zero constant",
            });
        }
        let (area, at) = self.mem_arg(Reg::R3, len as usize, true)?;
        let data_len = self.m.data_len() as u64;
        let fits = u64::from(offset) + u64::from(len) <= data_len;
        let status = if helper == Helper::XdpLoadBytes {
            if offset > 0xffff || len > 0xffff {
                -EFAULT
            } else if !fits {
                -EINVAL
            } else {
                0
            }
        } else if offset > i32::MAX as u32 || !fits {
            // The kernel clears the buffer before failing.
            self.m.bytes_mut(self.maps, area, at, len as usize).fill(0);
            -EFAULT
        } else {
            0
        };
        if status == 0 {
            let from = self.m.data_start + offset as usize;
            let mut tmp = std::mem::take(&mut self.m.scratch);
            tmp.clear();
            tmp.extend_from_slice(&self.m.buf[from..from + len as usize]);
            self.m
                .bytes_mut(self.maps, area, at, len as usize)
                .copy_from_slice(&tmp);
            self.m.scratch = tmp;
        }
        Ok(Val::scalar(status as u64))
    }

    /// `bpf_redirect_map(map, key, flags)` (XDP).
    fn redirect_map(&mut self, helper: Helper) -> Result<Val, Fault> {
        let map = self.map_arg(helper)?;
        let key = self.m.scalar(Reg::R2, "a key")?;
        let flags = self.m.scalar(Reg::R3, "flags")?;
        let m = &mut self.maps[map as usize].1;
        let allowed = match m.kind() {
            InterpMapKind::RedirectArray | InterpMapKind::RedirectHash => {
                BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS
            }
            _ => {
                return Err(Fault::HelperArg {
                    helper: helper.name(),
                    reason: "the map is not a devmap, cpumap or xskmap",
                });
            }
        };
        if flags & !(3 | allowed) != 0 {
            return Ok(Val::scalar(XDP_ABORTED));
        }
        // The kernel looks the key up as a u32 (redirect maps have 4-byte keys).
        let found = flags & BPF_F_BROADCAST != 0 || m.find(&(key as u32).to_le_bytes()).is_some();
        if !found {
            return Ok(Val::scalar(flags & 3));
        }
        self.env.redirect = Some(Redirect::Map {
            map: self.maps[map as usize].0,
            key,
            flags,
        });
        Ok(Val::scalar(XDP_REDIRECT))
    }

    /// `bpf_redirect(ifindex, flags)` (XDP and tc).
    fn redirect(&mut self) -> Result<Val, Fault> {
        let ifindex = self.m.scalar(Reg::R1, "an ifindex")? as u32;
        let flags = self.m.scalar(Reg::R2, "flags")?;
        let xdp = self.m.prog == ProgKind::Xdp;
        let refused = if xdp {
            flags != 0
        } else {
            flags & !BPF_F_INGRESS != 0
        };
        if refused {
            return Ok(Val::scalar(if xdp { XDP_ABORTED } else { TC_ACT_SHOT }));
        }
        self.env.redirect = Some(Redirect::Ifindex { ifindex, flags });
        Ok(Val::scalar(if xdp {
            XDP_REDIRECT
        } else {
            TC_ACT_REDIRECT
        }))
    }

    /// `bpf_loop(nr_loops, callback, ctx, flags)`: enters the callback's
    /// frame; the exit of that frame runs the next iteration.
    fn bpf_loop(&mut self, helper: Helper, pc: usize) -> Result<Flow, Fault> {
        let n = u64::from(self.m.scalar(Reg::R1, "a loop count")? as u32);
        let Kind::Func(cb) = self.m.get(Reg::R2)?.kind else {
            return Err(Fault::HelperArg {
                helper: helper.name(),
                reason: "r2 is not a function pointer",
            });
        };
        let ctx = self.m.get(Reg::R3)?;
        let flags = self.m.scalar(Reg::R4, "flags")?;
        let early = if flags != 0 {
            Some(errno(EINVAL))
        } else if n > BPF_MAX_LOOPS {
            Some(errno(E2BIG))
        } else if n == 0 {
            Some(Val::scalar(0))
        } else {
            None
        };
        if let Some(r0) = early {
            self.m.regs[0] = r0;
            self.m.clobber_args();
            return Ok(Flow::Next);
        }
        let cb = cb as usize;
        self.push_frame(pc + 1, FrameKind::Loop { i: 0, n, cb, ctx })?;
        self.enter_callback(0, ctx);
        Ok(Flow::Jump(cb))
    }
}
