//! An interpreter of eBPF packet programs (XDP, tc, socket filters), for
//! users without `CAP_BPF` and machines without BPF. It gives what the
//! kernel gives: the same return value and output packet.
//!
//! Values are tagged: a register holds a number or a pointer into a
//! region (context, packet, metadata, stack frame, map value), never a
//! real address. An access outside its region, a pointer operation whose
//! result would depend on kernel addresses, a register read before it is
//! written: these are [`InterpError`]s naming the instruction. The
//! verifier would have refused such programs; the interpreter finds them
//! when they run (it does not re-implement the verifier).
//!
//! An XDP program whose registers' kinds a pass at decode time can tell
//! before every instruction, and which has no effect before its exit but
//! on its stack (no calls, maps, packet stores: a generated filter), also
//! gets a pre-checked form: [`Interp::run_xdp_retval`] runs it on untagged
//! registers over the caller's bytes, checking only the bounds of each
//! access, and hands a run that would fault to the checked interpreter,
//! which runs it again from the start and reports the fault. Values and
//! errors are the same either way ([`Interp::prechecked`]).
//!
//! ```
//! use bpf_builder::ctx::{XdpAction, xdp_md};
//! use bpf_builder::insn::{Insn, JmpOp, Reg::*, Size};
//! use bpf_builder::interp::{Interp, XdpCtx};
//!
//! // Drop frames shorter than 60 bytes, pass the others.
//! let prog = [
//!     Insn::ldx(Size::W, R2, R1, xdp_md::DATA),
//!     Insn::ldx(Size::W, R3, R1, xdp_md::DATA_END),
//!     Insn::mov64(R0, XdpAction::Drop),
//!     Insn::alu64(bpf_builder::insn::AluOp::Add, R2, 60),
//!     Insn::jmp(JmpOp::Gt, R2, R3, 1),   // data + 60 > data_end
//!     Insn::mov64(R0, XdpAction::Pass),
//!     Insn::exit(),
//! ];
//! let mut interp = Interp::new(&prog);
//! let out = interp.run_xdp(&[0u8; 64], &[], XdpCtx::test_run()).unwrap();
//! assert_eq!(out.retval, 2);
//! let out = interp.run_xdp(&[0u8; 20], &[], XdpCtx::test_run()).unwrap();
//! assert_eq!(out.retval, 1);
//! ```
//!
//! What is emulated: every instruction of the ISA up to v4 (no arenas,
//! kfuncs or indirect calls), bpf-to-bpf calls (8 frames of 512 bytes),
//! the contexts of XDP, tc and socket filters with the kernel's access
//! rules, legacy `ld_abs`/`ld_ind` loads, and the helpers
//! `bpf_map_lookup_elem`/`update`/`delete` (array, hash, LRU hash, LPM trie and
//! redirect maps, one CPU), `bpf_ktime_get_ns`, `bpf_get_prandom_u32`,
//! `bpf_get_smp_processor_id`, `bpf_skb_load_bytes`, `bpf_xdp_load_bytes`,
//! `bpf_loop`, `bpf_redirect` and `bpf_redirect_map`.

mod calls;
mod ctx;
mod decode;
mod error;
mod exec;
mod fast;
mod machine;
mod maps;
mod typed;

use std::time::Instant;

pub use ctx::{SkbCtx, XdpCtx, pkt_type};
pub use error::{Fault, InterpError};
pub use exec::Redirect;
pub use maps::{InterpMap, InterpMapError, InterpMapKind, MapOpError, update};

use crate::insn::{Insn, pseudo};
use crate::object::{MapId, Object, ObjectError, ProgId};
use crate::reloc::Reloc;
use ctx::ProgKind;
use decode::Op;
use exec::{Env, Exec};
use machine::{Context, FRAME_SIZE, Machine};
use typed::Prechecked;

/// Default budget of executed instructions per run.
pub const DEFAULT_INSN_LIMIT: u64 = 1_000_000;

/// `XDP_PACKET_HEADROOM`: room before the packet (metadata lives there).
const XDP_HEADROOM: usize = 256;
/// Room before an skb's MAC header (`NET_SKB_PAD`); metadata lives there.
const SKB_HEADROOM: usize = 64;
/// Most metadata XDP allows.
const XDP_MAX_META: usize = 32;

/// What one run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunResult {
    /// r0 at the final exit (the kernel reports its low 32 bits).
    pub retval: u64,
    /// The packet after the program: XDP data, or the whole skb frame
    /// (from the MAC header, including bytes before `skb->data`).
    pub packet: Vec<u8>,
    /// The metadata after the program.
    pub meta: Vec<u8>,
    /// Instructions executed.
    pub insns_executed: u64,
    /// The redirect the program asked for, if any.
    pub redirect: Option<Redirect>,
    /// The socket buffer fields after the program (tc, socket filters).
    pub skb: Option<SkbCtx>,
}

/// Why an interpreter cannot be built for a program of an object.
#[derive(Debug, thiserror::Error)]
pub enum InterpBuildError {
    /// The program cannot be laid out.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// One of its maps cannot be created in the interpreter.
    #[error(transparent)]
    Map(#[from] InterpMapError),
}

/// An interpreter for one program and its maps. Maps keep their contents
/// from run to run.
#[derive(Debug)]
pub struct Interp {
    ops: Vec<Op>,
    /// The pre-checked form, when the program types cleanly as XDP.
    fast: Option<Prechecked>,
    maps: Vec<(i32, InterpMap)>,
    machine: Machine,
    env: Env,
    limit: u64,
}

impl Interp {
    /// An interpreter for `insns`, decoded once here. Map references
    /// (`ld_imm64` with a map fd or index) need [`Interp::with_map`].
    pub fn new(insns: &[Insn]) -> Interp {
        let ops = decode::decode_program(insns);
        Interp {
            fast: typed::translate(&ops),
            ops,
            maps: Vec::new(),
            machine: Machine::new(),
            env: Env {
                clock: Instant::now(),
                prandom: 0x9e37_79b9_7f4a_7c15,
                redirect: None,
            },
            limit: DEFAULT_INSN_LIMIT,
        }
    }

    /// An interpreter for program `prog` of `obj`, with the functions it
    /// calls and the maps it refers to (initial contents included). Map
    /// `id` is given as fd `id.index()`; see [`Interp::object_map`].
    pub fn from_object(obj: &Object, prog: ProgId) -> Result<Interp, InterpBuildError> {
        let layout = obj.layout(prog)?;
        let mut insns = layout.insns;
        let mut used: Vec<MapId> = Vec::new();
        for &(pc, reloc) in &layout.relocs {
            let (map, pseudo, hi) = match reloc {
                Reloc::MapFd(m) => (m, pseudo::MAP_FD, 0),
                Reloc::MapValue { map, offset } => (map, pseudo::MAP_VALUE, offset as i32),
                Reloc::Call(_) | Reloc::FuncPtr(_) => continue,
            };
            if pc + 1 >= insns.len() {
                continue;
            }
            insns[pc].src = pseudo;
            insns[pc].imm = map.index() as i32;
            insns[pc + 1].imm = hi;
            if !used.contains(&map) {
                used.push(map);
            }
        }
        let mut interp = Interp::new(&insns);
        for id in used {
            let map = InterpMap::from_spec(obj.map(id))?;
            interp.with_map(id.index() as i32, map);
        }
        Ok(interp)
    }

    /// Gives the map that `ld_imm64` instructions name by `fd_or_index`
    /// (pseudo map fd and map index forms alike); replaces an earlier one.
    pub fn with_map(&mut self, fd_or_index: i32, map: InterpMap) -> &mut Self {
        match self.maps.iter_mut().find(|(f, _)| *f == fd_or_index) {
            Some(slot) => slot.1 = map,
            None => self.maps.push((fd_or_index, map)),
        }
        self
    }

    /// The map given as `fd_or_index`.
    pub fn map(&self, fd_or_index: i32) -> Option<&InterpMap> {
        self.maps
            .iter()
            .find(|(f, _)| *f == fd_or_index)
            .map(|(_, m)| m)
    }

    /// The map given as `fd_or_index`, to change.
    pub fn map_mut(&mut self, fd_or_index: i32) -> Option<&mut InterpMap> {
        self.maps
            .iter_mut()
            .find(|(f, _)| *f == fd_or_index)
            .map(|(_, m)| m)
    }

    /// The map `id` of the object this interpreter was built from.
    pub fn object_map(&self, id: MapId) -> Option<&InterpMap> {
        self.map(id.index() as i32)
    }

    /// Sets the budget of executed instructions per run.
    pub fn set_insn_limit(&mut self, limit: u64) -> &mut Self {
        self.limit = limit;
        self
    }

    /// Runs the program as XDP on `packet` with `meta` before it (a multiple
    /// of 4 bytes, at most 32, as the kernel allows).
    pub fn run_xdp(
        &mut self,
        packet: &[u8],
        meta: &[u8],
        ctx: XdpCtx,
    ) -> Result<RunResult, InterpError> {
        self.prepare_xdp(packet, meta, ctx)?;
        self.execute()
    }

    /// [`Interp::run_xdp`] when only the return value is wanted: nothing
    /// is copied out and nothing allocated (a filter run per packet).
    #[inline]
    pub fn run_xdp_retval(
        &mut self,
        packet: &[u8],
        meta: &[u8],
        ctx: XdpCtx,
    ) -> Result<u64, InterpError> {
        check_xdp_meta(meta)?;
        if let Some(r0) = self.run_fast(packet, meta, ctx) {
            return Ok(r0);
        }
        self.run_xdp_checked(packet, meta, ctx)
    }

    /// [`Interp::run_xdp_retval`] by the checked interpreter (out of line:
    /// the pre-checked run stays small).
    #[inline(never)]
    fn run_xdp_checked(
        &mut self,
        packet: &[u8],
        meta: &[u8],
        ctx: XdpCtx,
    ) -> Result<u64, InterpError> {
        self.prepare_xdp(packet, meta, ctx)?;
        self.run_machine()
    }

    /// Whether [`Interp::run_xdp_retval`] runs the program in its
    /// pre-checked form: at decode time, every instruction of it typed
    /// cleanly (registers' kinds known, no calls, maps or stores outside
    /// the stack), so that a run needs no tags and no copy of the packet.
    /// A run that would fault is run again by the checked interpreter,
    /// which reports the fault: results and errors are the same.
    pub fn prechecked(&self) -> bool {
        self.fast.is_some()
    }

    /// An XDP run in the pre-checked form over the caller's bytes: r0,
    /// or `None` when there is no such form or the run would fault.
    fn run_fast(&mut self, packet: &[u8], meta: &[u8], ctx: XdpCtx) -> Option<u64> {
        let form = self.fast.as_ref()?;
        if let Some(r0) = form.constant {
            // Nothing to run: within any budget of its length.
            self.env.redirect = None;
            return (form.ops.len() as u64 <= self.limit).then_some(r0);
        }
        let m = &mut self.machine;
        if form.reads_stack {
            m.clear_frame0_bytes();
        }
        let layout = fast::Layout {
            meta,
            packet,
            meta_start: XDP_HEADROOM - meta.len(),
            data_start: XDP_HEADROOM,
            data_end: XDP_HEADROOM + packet.len(),
        };
        let stack = fast::Stack {
            bytes: &mut m.stack[..FRAME_SIZE],
            dirty_from: &mut m.stack_dirty_from,
        };
        // `m.executed` is left alone: only full results report it.
        let r0 = fast::run(form, &layout, &ctx, stack, self.limit)?;
        self.env.redirect = None;
        Some(r0)
    }

    /// Lays out the packet buffer and context of an XDP run.
    fn prepare_xdp(&mut self, packet: &[u8], meta: &[u8], ctx: XdpCtx) -> Result<(), InterpError> {
        check_xdp_meta(meta)?;
        let m = &mut self.machine;
        // The headroom before the metadata is outside every region a
        // program can reach: what an earlier run left there stays.
        m.buf.truncate(XDP_HEADROOM - meta.len());
        m.buf.resize(XDP_HEADROOM - meta.len(), 0);
        m.buf.extend_from_slice(meta);
        m.buf.extend_from_slice(packet);
        m.meta_start = XDP_HEADROOM - meta.len();
        m.data_start = XDP_HEADROOM;
        m.data_end = m.buf.len();
        m.mac_start = XDP_HEADROOM;
        m.net_start = XDP_HEADROOM;
        m.prog = ProgKind::Xdp;
        // In place when it is already an XDP context (no drop of the old).
        match &mut m.ctx {
            Context::Xdp(x) => *x = ctx,
            other => *other = Context::Xdp(ctx),
        }
        Ok(())
    }

    /// Runs the program as a tc classifier on `frame` (from the MAC
    /// header) with `meta` before it.
    pub fn run_skb(
        &mut self,
        frame: &[u8],
        meta: &[u8],
        skb: &SkbCtx,
    ) -> Result<RunResult, InterpError> {
        self.run_on_skb(ProgKind::Tc, frame, meta, skb)
    }

    /// Runs the program as a socket filter on `frame` (from the MAC
    /// header; `skb.data_offset` says where `skb->data` starts).
    pub fn run_socket_filter(
        &mut self,
        frame: &[u8],
        skb: &SkbCtx,
    ) -> Result<RunResult, InterpError> {
        self.run_on_skb(ProgKind::Socket, frame, &[], skb)
    }

    fn run_on_skb(
        &mut self,
        kind: ProgKind,
        frame: &[u8],
        meta: &[u8],
        skb: &SkbCtx,
    ) -> Result<RunResult, InterpError> {
        if skb.data_offset > frame.len() {
            return Err(InterpError::input(
                "skb data offset past the end of the frame",
            ));
        }
        if meta.len() > SKB_HEADROOM || (!meta.is_empty() && skb.data_offset != 0) {
            return Err(InterpError::input(
                "skb metadata must be at most 64 bytes, just before skb->data",
            ));
        }
        let m = &mut self.machine;
        m.buf.clear();
        m.buf.resize(SKB_HEADROOM - meta.len(), 0);
        m.buf.extend_from_slice(meta);
        m.buf.extend_from_slice(frame);
        m.meta_start = SKB_HEADROOM - meta.len();
        m.mac_start = SKB_HEADROOM;
        m.data_start = SKB_HEADROOM + skb.data_offset;
        m.net_start = SKB_HEADROOM.saturating_add(skb.network_offset);
        m.data_end = m.buf.len();
        m.prog = kind;
        m.ctx = Context::Skb(skb.clone());
        self.execute()
    }

    /// Runs the prepared machine: the return value.
    fn run_machine(&mut self) -> Result<u64, InterpError> {
        self.machine.reset();
        self.env.redirect = None;
        Exec {
            ops: &self.ops,
            m: &mut self.machine,
            maps: &mut self.maps,
            env: &mut self.env,
            limit: self.limit,
        }
        .run()
    }

    /// Runs the prepared machine and collects the result.
    fn execute(&mut self) -> Result<RunResult, InterpError> {
        let retval = self.run_machine()?;
        let m = &self.machine;
        Ok(RunResult {
            retval,
            packet: m.buf[m.mac_start.min(m.data_start)..m.data_end].to_vec(),
            meta: m.buf[m.meta_start..m.mac_start.min(m.data_start)].to_vec(),
            insns_executed: m.executed,
            redirect: self.env.redirect,
            skb: match &m.ctx {
                Context::Skb(s) => Some(s.clone()),
                Context::Xdp(_) => None,
            },
        })
    }
}

/// Refuses XDP metadata the kernel would not allow.
fn check_xdp_meta(meta: &[u8]) -> Result<(), InterpError> {
    if !meta.len().is_multiple_of(4) || meta.len() > XDP_MAX_META {
        return Err(InterpError::input(
            "XDP metadata must be a multiple of 4 bytes, at most 32",
        ));
    }
    Ok(())
}
