//! Running a filter over captured packets: compiled to closures in this
//! process (see [`compiled`]), in the kernel through `BPF_PROG_TEST_RUN`,
//! or in the built-in interpreter of the generated code. The last two
//! run the same XDP program, compiled in the test-run mode: it
//! reads `{caplen, wirelen}` from the metadata area in front of the frame,
//! so `len` is the wire length and frames shorter than the 14 bytes the
//! kernel insists on are padded without changing the verdict. A frame
//! captured whole has nothing to say in metadata (its `len` is its
//! length): the interpreter runs it through the program as `attach`
//! loads it, which skips the metadata's instructions.
//! [`Runner::matches_all`] runs the kernel's packets in batches (see
//! [`batch`]).

pub mod batch;
pub mod compiled;

use bpf_builder::asm::Code;
use bpf_builder::ctx::XdpMd;
use bpf_builder::insn::Insn;
use bpf_builder::interp::{Interp, InterpError, XdpCtx};
use bpf_builder::load::{LoadError, Loaded};
use bpf_builder::object::{Object, ProgId};
use bpf_builder::pod::Pod;
use bpf_builder::run::TestRun;

use crate::codegen::MAX_VAR_OFF;
use crate::ir::Verdict;
use crate::{EmitOptions, Error, Ir, Target};
use batch::{HEADER, Item, MAX_PACKETS};
use compiled::{Compiled, Unsupported};

/// Where filters run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The compiled engine when it can run the filter (it has no front
    /// end's actions or tables), else the kernel when this process may
    /// load the filter's object (its maps, BTF and programs), else the
    /// interpreter.
    Auto,
    /// The IR compiled to closures, run in this process ([`compiled`]):
    /// the fastest, and it needs no privilege.
    Compiled,
    /// `BPF_PROG_TEST_RUN`.
    Kernel,
    /// The built-in interpreter.
    Interp,
}

/// Bytes of `{caplen, wirelen}` in front of the frame.
const META: usize = 8;
/// The shortest frame a test run takes (an Ethernet header).
const MIN_FRAME: usize = 14;
/// The most frame bytes one test run takes linearly (a page less the
/// kernel's headroom and tailroom, rounded down).
pub const LINEAR_LIMIT: usize = 3072;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The filter cannot be turned into code.
    #[error("{0}")]
    Codegen(#[from] Error),
    /// The kernel refused the program (a bug of ours: say so).
    #[error("the kernel refused the compiled filter (please report): {0}")]
    Load(#[from] LoadError),
    /// A test run failed.
    #[error("test run failed: {0}")]
    Run(String),
    /// The kernel engine was asked for and cannot be used: the kernel
    /// refused part of the filter's object for lack of privilege (the
    /// error names the capability).
    #[error("the kernel engine cannot be used: {0}; use --engine interp")]
    NoKernel(LoadError),
    /// The compiled engine was asked for and cannot run this filter.
    #[error("{0}; use --engine interp or --engine kernel")]
    NotCompiled(#[from] Unsupported),
}

/// A captured packet as a filter sees it: the captured bytes and the
/// length it had on the wire (`len`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The captured bytes.
    pub data: &'a [u8],
    /// The length on the wire (at least `data.len()` in a sane capture).
    pub wire_len: u32,
}

impl<'a> Frame<'a> {
    /// A frame of `data` that was `wire_len` bytes on the wire.
    pub fn new(data: &'a [u8], wire_len: u32) -> Self {
        Frame { data, wire_len }
    }
}

/// A filter ready to run over packets.
pub struct Runner {
    ir: Ir,
    object: Object,
    /// The filter program, in the test-run mode.
    program: ProgId,
    /// The interpreter of `program`.
    interp: Interp,
    /// The interpreter of the filter as `attach` loads it (no test-run
    /// metadata), for frames captured whole: `len` is then the frame's
    /// length, so the metadata area and the captured-length checks that
    /// `program` needs are instructions a packet need not run. `None`
    /// with the compiled engine (it never interprets).
    whole: Option<Interp>,
    /// The compiled engine, when in use.
    compiled: Option<Compiled>,
    loaded: Option<Loaded>,
    /// The batch program, in the same object as the filter, for a packet
    /// filter (verdicts MATCH and NO_MATCH only: a batch keeps one bit a
    /// packet).
    batch: Option<ProgId>,
    max_read: Option<u64>,
    engine: Engine,
    /// Single test runs' input, reused.
    scratch: Vec<u8>,
    interp_fallbacks: u64,
    ir_fallbacks: u64,
}

impl Runner {
    /// Generates the test-run programs for `ir` (whose source text is
    /// `source`, for annotations) and prepares the engine.
    pub fn new(ir: Ir, source: &str, engine: Engine) -> Result<Runner, RunError> {
        let code = filter_program(&ir, source, true)?;
        let mut object = Object::new();
        let program = object
            .add_program("pcap_filter", crate::program_type(Target::Xdp), code)
            .map_err(crate::internal)?;
        let batch = match ir.max_verdict() {
            Some(v) if v > Verdict::MATCH => None,
            _ => Some(batch::add_program(&mut object, &ir, source)?),
        };
        let interp = Interp::new(&instructions(&object, program));
        let max_read = ir.max_read();
        let (compiled, loaded, engine) = match engine {
            Engine::Compiled => (Some(Compiled::new(&ir)?), None, Engine::Compiled),
            Engine::Interp => (None, None, Engine::Interp),
            Engine::Kernel => (
                None,
                Some(load(&object)?.map_err(RunError::NoKernel)?),
                Engine::Kernel,
            ),
            Engine::Auto => match Compiled::new(&ir) {
                Ok(c) => (Some(c), None, Engine::Compiled),
                Err(_) => match load(&object)? {
                    Ok(l) => (None, Some(l), Engine::Kernel),
                    Err(_) => (None, None, Engine::Interp),
                },
            },
        };
        // The compiled engine never falls back to the interpreter.
        let whole = match engine {
            Engine::Compiled => None,
            _ => Some(whole_frames(&ir, source)?),
        };
        Ok(Runner {
            ir,
            object,
            program,
            interp,
            whole,
            compiled,
            loaded,
            batch,
            max_read,
            engine,
            scratch: Vec::new(),
            interp_fallbacks: 0,
            ir_fallbacks: 0,
        })
    }

    /// The engine in use (`Auto` resolved).
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The filter's IR.
    pub fn ir(&self) -> &Ir {
        &self.ir
    }

    /// The object holding the test-run programs.
    pub fn object(&self) -> &Object {
        &self.object
    }

    /// Packets the kernel engine handed to the interpreter because the
    /// filter may read more of them than one test run takes.
    pub fn interp_fallbacks(&self) -> u64 {
        self.interp_fallbacks
    }

    /// Packets decided by the IR's evaluator because the filter may read
    /// beyond the 32 KiB that generated code can address with a variable
    /// offset (no XDP or tc program sees such frames in linear data; only
    /// captures have them).
    pub fn ir_fallbacks(&self) -> u64 {
        self.ir_fallbacks
    }

    /// How many of `p`'s bytes the filter may read.
    fn want(&self, p: Frame<'_>) -> usize {
        let caplen = p.data.len();
        self.max_read.map_or(caplen, |m| {
            caplen.min(usize::try_from(m).unwrap_or(usize::MAX))
        })
    }

    /// Whether the filter matches `p` (its verdict is [`Verdict::MATCH`]).
    pub fn matches(&mut self, p: Frame<'_>) -> Result<bool, RunError> {
        Ok(self.verdict(p)? == Verdict::MATCH)
    }

    /// The verdict the filter ends with on `p`.
    pub fn verdict(&mut self, p: Frame<'_>) -> Result<Verdict, RunError> {
        if let Some(c) = &self.compiled {
            return Ok(c.verdict(p.data, p.wire_len));
        }
        // The interpreter's common case on its shortest path: a frame
        // captured whole, no kernel engine to take it.
        if let (Some(whole), None) = (&mut self.whole, &self.loaded)
            && whole_frame(p)
        {
            return whole_verdict(whole, p);
        }
        self.other_verdict(p)
    }

    /// [`Runner::verdict`] by the kernel, the interpreter of the test-run
    /// program or the IR (out of line: the common path stays small).
    #[inline(never)]
    fn other_verdict(&mut self, p: Frame<'_>) -> Result<Verdict, RunError> {
        let want = self.want(p);
        if want > MAX_VAR_OFF as usize {
            self.ir_fallbacks += 1;
            return Ok(self.ir.run(p.data, p.wire_len, &|_| None));
        }
        if self.loaded.is_some() && want <= LINEAR_LIMIT {
            return self.kernel_verdict(p, want);
        }
        if self.loaded.is_some() {
            self.interp_fallbacks += 1;
        }
        if let Some(whole) = &mut self.whole
            && whole_frame(p)
        {
            return whole_verdict(whole, p);
        }
        // The frame as it is, unless shorter than an Ethernet header (then
        // padded, as a test run pads it).
        let meta = input_meta(p);
        let mut padded = [0; MIN_FRAME];
        let frame = if want >= MIN_FRAME {
            &p.data[..want]
        } else {
            padded[..want].copy_from_slice(&p.data[..want]);
            &padded
        };
        interp_result(self.interp.run_xdp_retval(frame, &meta, XdpCtx::test_run()))
    }

    /// The verdict of one test run on the first `want` bytes of `p` (out
    /// of line: the interpreter's path stays small).
    #[inline(never)]
    fn kernel_verdict(&mut self, p: Frame<'_>, want: usize) -> Result<Verdict, RunError> {
        let loaded = self.loaded.as_ref().expect("the kernel engine");
        input(&mut self.scratch, p, want);
        let ctx = xdp_md(META, self.scratch.len());
        let out = loaded
            .program(self.program)
            // Only the verdict is wanted: no copy of the packet or the
            // context back out.
            .test_run(
                &TestRun::new(&self.scratch)
                    .ctx_in(&ctx)
                    .data_out_capacity(0)
                    .ctx_out_capacity(0),
            )
            .map_err(|e| RunError::Run(e.to_string()))?;
        Ok(Verdict(out.retval))
    }

    /// Whether the filter matches each of `packets`, in order: the
    /// verdicts of [`Runner::matches`], with the kernel engine running
    /// up to 32 packets in one test run.
    pub fn matches_all(&mut self, packets: &[Frame<'_>]) -> Result<Vec<bool>, RunError> {
        let verdicts = self.verdicts_all(packets)?;
        Ok(verdicts.into_iter().map(|v| v == Verdict::MATCH).collect())
    }

    /// The verdict on each of `packets`, in order: those of
    /// [`Runner::verdict`], with the kernel engine running up to 32
    /// packets of a packet filter (two verdicts) in one test run.
    pub fn verdicts_all(&mut self, packets: &[Frame<'_>]) -> Result<Vec<Verdict>, RunError> {
        let mut verdicts = vec![Verdict::NO_MATCH; packets.len()];
        let (Some(batch), true) = (self.batch, self.loaded.is_some()) else {
            for (v, p) in verdicts.iter_mut().zip(packets) {
                *v = self.verdict(*p)?;
            }
            return Ok(verdicts);
        };
        // The packets of the batch being filled, and where they are.
        let mut items: Vec<Item<'_>> = Vec::with_capacity(MAX_PACKETS);
        let mut at: Vec<usize> = Vec::with_capacity(MAX_PACKETS);
        let mut size = 0;
        for (i, p) in packets.iter().enumerate() {
            let want = self.want(*p);
            if HEADER + want > LINEAR_LIMIT {
                // Too big to share a run: on its own, as `verdict` runs it.
                verdicts[i] = self.verdict(*p)?;
                continue;
            }
            let item = Item {
                caplen: p.data.len() as u32,
                wire_len: p.wire_len,
                bytes: &p.data[..want],
            };
            if items.len() == MAX_PACKETS || size + batch::size_of(&item) > LINEAR_LIMIT {
                self.run_batch(batch, &items, &at, &mut verdicts)?;
                items.clear();
                at.clear();
                size = 0;
            }
            size += batch::size_of(&item);
            items.push(item);
            at.push(i);
        }
        if !items.is_empty() {
            self.run_batch(batch, &items, &at, &mut verdicts)?;
        }
        Ok(verdicts)
    }

    /// Runs one batch; `at[k]` is where `items[k]`'s verdict goes.
    fn run_batch(
        &self,
        batch: ProgId,
        items: &[Item<'_>],
        at: &[usize],
        verdicts: &mut [Verdict],
    ) -> Result<(), RunError> {
        let loaded = self.loaded.as_ref().expect("the kernel engine");
        let bits = batch::run(loaded, batch, items).map_err(RunError::Run)?;
        for (k, &i) in at.iter().enumerate() {
            verdicts[i] = Verdict(bits >> k & 1);
        }
        Ok(())
    }
}

/// Whether the program as `attach` loads it decides `p` as the test-run
/// program would: captured whole (its `len` is its length), at least as
/// long as a test run takes, and short enough that every offset the
/// filter reads is within generated code's reach.
fn whole_frame(p: Frame<'_>) -> bool {
    let len = p.data.len();
    len == p.wire_len as usize && (MIN_FRAME..=MAX_VAR_OFF as usize).contains(&len)
}

/// The verdict of `whole` (the interpreter of the program as `attach`
/// loads it) on `p`, a [`whole_frame`]. Always inlined: out of line,
/// the call and the copy of its result cost 16 instructions a packet,
/// a sixth of the empty filter's whole cost.
#[inline(always)]
fn whole_verdict(whole: &mut Interp, p: Frame<'_>) -> Result<Verdict, RunError> {
    interp_result(whole.run_xdp_retval(p.data, &[], XdpCtx::test_run()))
}

/// An interpreter run's return value as a verdict.
fn interp_result(run: Result<u64, InterpError>) -> Result<Verdict, RunError> {
    match run {
        Ok(retval) => Ok(Verdict(retval as u32)),
        Err(e) => Err(RunError::Run(e.to_string())),
    }
}

/// The filter as an XDP program returning its verdict's number: in the
/// test-run mode (`{caplen, wirelen}` read from the metadata area) when
/// `test_run`, else as `attach` loads it.
fn filter_program(ir: &Ir, source: &str, test_run: bool) -> Result<Code, RunError> {
    let eopts = EmitOptions::new(Target::Xdp).test_run_meta(test_run);
    Ok(crate::emit_program(
        ir,
        &eopts,
        source,
        |a, v| {
            a.mov32(bpf_builder::insn::Reg::R0, v.0 as i32);
            a.exit();
        },
        crate::codegen::no_actions,
    )?)
}

/// The interpreter of the filter as `attach` loads it, for frames
/// captured whole.
fn whole_frames(ir: &Ir, source: &str) -> Result<Interp, RunError> {
    let mut object = Object::new();
    let prog = object
        .add_program(
            "pcap_filter",
            crate::program_type(Target::Xdp),
            filter_program(ir, source, false)?,
        )
        .map_err(crate::internal)?;
    Ok(Interp::new(&instructions(&object, prog)))
}

/// The laid-out instructions of `prog` (functions and wide loads
/// resolved), as the interpreter and the output formats take them.
pub fn instructions(object: &Object, prog: ProgId) -> Vec<Insn> {
    object
        .layout(prog)
        .map(|l| l.insns)
        .unwrap_or_else(|_| object.program(prog).code.insns.clone())
}

/// Loads the filter's object. The inner error: the kernel refused any of
/// it (a map, BTF, a program) for lack of privilege, so this process may
/// not use the kernel engine (see [`LoadError::missing_privilege`]); any
/// other refusal is ours to fix.
fn load(object: &Object) -> Result<Result<Loaded, LoadError>, RunError> {
    match object.load() {
        Ok(l) => Ok(Ok(l)),
        Err(e) if e.missing_privilege().is_some() => Ok(Err(e)),
        Err(e) => Err(e.into()),
    }
}

/// The metadata of a test run: `{caplen, wirelen}`.
fn input_meta(p: Frame<'_>) -> [u8; META] {
    let mut m = [0; META];
    m[..4].copy_from_slice(&(p.data.len() as u32).to_ne_bytes());
    m[4..].copy_from_slice(&p.wire_len.to_ne_bytes());
    m
}

/// Fills `v` with the metadata, then the first `take` bytes of the
/// frame, padded to an Ethernet header.
fn input(v: &mut Vec<u8>, p: Frame<'_>, take: usize) {
    v.clear();
    v.extend_from_slice(&input_meta(p));
    v.extend_from_slice(&p.data[..take]);
    v.resize(v.len().max(META + MIN_FRAME), 0);
}

/// `struct xdp_md` for a test run of `len` bytes whose first `meta` are
/// the metadata area (data starts after them).
pub(crate) fn xdp_md(meta: usize, len: usize) -> Vec<u8> {
    XdpMd {
        data: meta as u32,
        data_end: len as u32,
        ..XdpMd::default()
    }
    .to_bytes()
}
