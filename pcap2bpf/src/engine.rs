//! Running a compiled filter over captured packets: in the kernel through
//! `BPF_PROG_TEST_RUN`, or in the built-in interpreter of the generated
//! code. Both run the same XDP program, compiled in the test-run mode: it
//! reads `{caplen, wirelen}` from the metadata area in front of the frame,
//! so `len` is the wire length and frames shorter than the 14 bytes the
//! kernel insists on are padded without changing the verdict.
//! [`Runner::matches_all`] runs the kernel's packets in batches (see
//! [`crate::batch`]).

use bpf_builder::interp::{Interp, XdpCtx};
use bpf_builder::load::{LoadError, Loaded};
use bpf_builder::object::ProgId;
use bpf_builder::run::TestRun;

use crate::batch::{self, HEADER, Item, MAX_PACKETS};
use crate::capture::Packet;
use crate::codegen::MAX_VAR_OFF;
use crate::{CompileError, CompileOptions, Compiled, LinkType, Resolver, Target, compile};

/// Where filters run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The kernel when this process may load programs, else the interpreter.
    Auto,
    /// `BPF_PROG_TEST_RUN`.
    Kernel,
    /// The built-in interpreter.
    Interp,
}

/// XDP action returned on a match.
const MATCH: i32 = 2;
/// XDP action returned otherwise.
const NO_MATCH: i32 = 1;
/// Bytes of `{caplen, wirelen}` in front of the frame.
const META: usize = 8;
/// The most frame bytes one test run takes linearly (a page less the
/// kernel's headroom and tailroom, rounded down).
pub const LINEAR_LIMIT: usize = 3072;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The filter does not compile.
    #[error("{0}")]
    Compile(#[from] CompileError),
    /// The kernel refused the program (a bug of ours: say so).
    #[error("the kernel refused the compiled filter (please report): {0}")]
    Load(#[from] LoadError),
    /// A test run failed.
    #[error("test run failed: {0}")]
    Run(String),
    /// The kernel engine was asked for and cannot be used.
    #[error("the kernel engine needs CAP_BPF (or root); use --engine interp")]
    NoKernel,
}

/// What [`Runner::new`] needs besides the expression.
#[derive(Clone, Copy)]
pub struct RunOptions<'a> {
    /// Link type of the packets.
    pub link: LinkType,
    /// Where to run.
    pub engine: Engine,
    /// The capture's IPv4 netmask, if known (`ip broadcast` needs it).
    pub netmask: Option<u32>,
    /// Name lookups of the expression.
    pub resolver: &'a dyn Resolver,
}

/// A filter ready to run over packets.
pub struct Runner {
    compiled: Compiled,
    interp: Interp,
    loaded: Option<Loaded>,
    /// The batch program, in the same object as the filter.
    batch: ProgId,
    max_read: Option<u64>,
    engine: Engine,
    interp_fallbacks: u64,
    ir_fallbacks: u64,
}

impl Runner {
    /// Compiles `expr` and prepares the engine.
    pub fn new(expr: &str, opts: &RunOptions<'_>) -> Result<Runner, EngineError> {
        let mut compiled = compile(
            expr,
            &CompileOptions {
                link: opts.link,
                target: Target::Xdp,
                on_match: MATCH,
                on_nomatch: NO_MATCH,
                test_run_meta: true,
                xdp_frags: false,
                netmask: opts.netmask,
                resolver: opts.resolver,
            },
        )?;
        let batch = batch::add_program(&mut compiled.object, &compiled.ir, expr)?;
        let interp = Interp::new(&crate::emit::instructions(&compiled));
        let max_read = compiled.ir.max_read();
        let (loaded, engine) = match opts.engine {
            Engine::Interp => (None, Engine::Interp),
            Engine::Kernel => (
                Some(load(&compiled)?.ok_or(EngineError::NoKernel)?),
                Engine::Kernel,
            ),
            Engine::Auto => match load(&compiled)? {
                Some(l) => (Some(l), Engine::Kernel),
                None => (None, Engine::Interp),
            },
        };
        Ok(Runner {
            compiled,
            interp,
            loaded,
            batch,
            max_read,
            engine,
            interp_fallbacks: 0,
            ir_fallbacks: 0,
        })
    }

    /// The engine in use (`Auto` resolved).
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Warnings of the compilation.
    pub fn warnings(&self) -> &[String] {
        &self.compiled.warnings
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
    fn want(&self, p: &Packet) -> usize {
        let caplen = p.data.len();
        self.max_read.map_or(caplen, |m| {
            caplen.min(usize::try_from(m).unwrap_or(usize::MAX))
        })
    }

    /// Whether the filter matches `p`.
    pub fn matches(&mut self, p: &Packet) -> Result<bool, EngineError> {
        let want = self.want(p);
        if want > MAX_VAR_OFF as usize {
            self.ir_fallbacks += 1;
            return Ok(self.compiled.ir.eval(&p.data, p.wire_len, &|_| None));
        }
        let input = input(p, want.min(LINEAR_LIMIT));
        if let Some(loaded) = &self.loaded
            && want <= LINEAR_LIMIT
        {
            let ctx = xdp_md(META, input.len());
            let out = loaded
                .program(self.compiled.program)
                // Only the verdict is wanted: no copy of the packet or the
                // context back out.
                .test_run(
                    &TestRun::new(&input)
                        .ctx_in(&ctx)
                        .data_out_capacity(0)
                        .ctx_out_capacity(0),
                )
                .map_err(|e| EngineError::Run(e.to_string()))?;
            return Ok(out.retval == MATCH as u32);
        }
        if self.loaded.is_some() {
            self.interp_fallbacks += 1;
        }
        let input = self::input(p, want);
        let (meta, frame) = input.split_at(META);
        let out = self
            .interp
            .run_xdp(frame, meta, XdpCtx::test_run())
            .map_err(|e| EngineError::Run(e.to_string()))?;
        Ok(out.retval == MATCH as u64)
    }

    /// Whether the filter matches each of `packets`, in order: the
    /// verdicts of [`Runner::matches`], with the kernel engine running
    /// up to 32 packets in one test run.
    pub fn matches_all(&mut self, packets: &[Packet]) -> Result<Vec<bool>, EngineError> {
        let mut verdicts = vec![false; packets.len()];
        if self.loaded.is_none() {
            for (v, p) in verdicts.iter_mut().zip(packets) {
                *v = self.matches(p)?;
            }
            return Ok(verdicts);
        }
        // The packets of the batch being filled, and where they are.
        let mut items: Vec<Item<'_>> = Vec::with_capacity(MAX_PACKETS);
        let mut at: Vec<usize> = Vec::with_capacity(MAX_PACKETS);
        let mut size = 0;
        for (i, p) in packets.iter().enumerate() {
            let want = self.want(p);
            if HEADER + want > LINEAR_LIMIT {
                // Too big to share a run: on its own, as `matches` runs it.
                verdicts[i] = self.matches(p)?;
                continue;
            }
            let item = Item {
                caplen: p.data.len() as u32,
                wire_len: p.wire_len,
                bytes: &p.data[..want],
            };
            if items.len() == MAX_PACKETS || size + batch::size_of(&item) > LINEAR_LIMIT {
                self.run_batch(&items, &at, &mut verdicts)?;
                items.clear();
                at.clear();
                size = 0;
            }
            size += batch::size_of(&item);
            items.push(item);
            at.push(i);
        }
        if !items.is_empty() {
            self.run_batch(&items, &at, &mut verdicts)?;
        }
        Ok(verdicts)
    }

    /// Runs one batch; `at[k]` is where `items[k]`'s verdict goes.
    fn run_batch(
        &self,
        items: &[Item<'_>],
        at: &[usize],
        verdicts: &mut [bool],
    ) -> Result<(), EngineError> {
        let loaded = self.loaded.as_ref().expect("the kernel engine");
        let bits = batch::run(loaded, self.batch, items).map_err(EngineError::Run)?;
        for (k, &i) in at.iter().enumerate() {
            verdicts[i] = bits & (1 << k) != 0;
        }
        Ok(())
    }
}

/// Loads the filter, or `None` when this process may not.
fn load(c: &Compiled) -> Result<Option<Loaded>, EngineError> {
    match c.object.load() {
        Ok(l) => Ok(Some(l)),
        Err(LoadError::Program(e))
            if matches!(
                e.error.raw_os_error(),
                Some(libc::EPERM) | Some(libc::EACCES)
            ) && e.log.is_empty() =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// `{caplen, wirelen}`, then the first `take` bytes of the frame, padded
/// to an Ethernet header.
fn input(p: &Packet, take: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(META + take.max(14));
    v.extend_from_slice(&(p.data.len() as u32).to_ne_bytes());
    v.extend_from_slice(&p.wire_len.to_ne_bytes());
    v.extend_from_slice(&p.data[..take]);
    v.resize(v.len().max(META + 14), 0);
    v
}

/// `struct xdp_md` for a test run of `len` bytes whose first `meta` are
/// the metadata area (data starts after them).
pub(crate) fn xdp_md(meta: usize, len: usize) -> Vec<u8> {
    [meta as u32, len as u32, 0, 0, 0, 0]
        .iter()
        .flat_map(|f| f.to_ne_bytes())
        .collect()
}
