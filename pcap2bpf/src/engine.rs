//! Running a tcpdump filter over captured packets: the expression is
//! compiled with the meaning it has on a capture file (`len` is the wire
//! length, `inbound` and `ifindex` have no field) and handed to
//! [`pktmatch::run::Runner`], which runs it compiled to closures in this
//! process (the default: [`Engine::Auto`] picks it), in the kernel
//! through `BPF_PROG_TEST_RUN` (batched) or in the interpreter of the
//! generated code.

pub use pktmatch::run::{Engine, Frame, LINEAR_LIMIT, RunError};

use crate::{CompileError, LinkType, Options, Resolver, Warning, build_ir, lower, parse_with};

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The filter does not compile.
    #[error("{0}")]
    Compile(#[from] CompileError),
    /// The filter could not be run.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// What [`Runner::new`] needs besides the expression: made with
/// [`RunOptions::new`], changed with its setters.
#[derive(Clone, Copy)]
pub struct RunOptions<'a> {
    link: LinkType,
    engine: Engine,
    netmask: Option<u32>,
    ipv6_ext_headers: bool,
    vlan_any: bool,
    resolver: &'a dyn Resolver,
}

impl<'a> RunOptions<'a> {
    /// Options for packets of link type `link`, names of the expression
    /// looked up in `resolver`: the engine picked at run time
    /// ([`Engine::Auto`]), no netmask.
    pub fn new(link: LinkType, resolver: &'a dyn Resolver) -> Self {
        RunOptions {
            link,
            engine: Engine::Auto,
            netmask: None,
            ipv6_ext_headers: false,
            vlan_any: false,
            resolver,
        }
    }

    /// Sets where to run.
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// The IPv6 extension-header walk mode
    /// ([`crate::CompileOptions::ipv6_ext_headers`]).
    pub fn ipv6_ext_headers(mut self, on: bool) -> Self {
        self.ipv6_ext_headers = on;
        self
    }

    /// The VLAN look-through mode ([`crate::CompileOptions::vlan_any`]).
    pub fn vlan_any(mut self, on: bool) -> Self {
        self.vlan_any = on;
        self
    }

    /// Sets the capture's IPv4 netmask, if known (`ip broadcast` needs it).
    pub fn netmask(mut self, netmask: Option<u32>) -> Self {
        self.netmask = netmask;
        self
    }
}

/// A tcpdump filter ready to run over packets.
pub struct Runner {
    inner: pktmatch::run::Runner,
    warnings: Vec<Warning>,
}

impl Runner {
    /// Compiles `expr` and prepares the engine.
    pub fn new(expr: &str, opts: &RunOptions<'_>) -> Result<Runner, EngineError> {
        let filter = parse_with(
            expr,
            Options::new(opts.link, opts.resolver).netmask(opts.netmask),
        )?;
        let (ir, warning) = build_ir(
            &filter,
            &lower::LowerOptions::offline(opts.link, opts.netmask)
                .ipv6_ext_headers(opts.ipv6_ext_headers)
                .vlan_any(opts.vlan_any),
        )?;
        let inner = pktmatch::run::Runner::new(ir, expr, opts.engine)?;
        Ok(Runner {
            inner,
            warnings: warning.into_iter().collect(),
        })
    }

    /// The engine in use (`Auto` resolved).
    pub fn engine(&self) -> Engine {
        self.inner.engine()
    }

    /// The filter's IR, as the engines run it.
    pub fn ir(&self) -> &pktmatch::ir::Ir {
        self.inner.ir()
    }

    /// Warnings of the compilation.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// See [`pktmatch::run::Runner::interp_fallbacks`].
    pub fn interp_fallbacks(&self) -> u64 {
        self.inner.interp_fallbacks()
    }

    /// See [`pktmatch::run::Runner::ir_fallbacks`].
    pub fn ir_fallbacks(&self) -> u64 {
        self.inner.ir_fallbacks()
    }

    /// Whether the filter matches `p`.
    pub fn matches(&mut self, p: Frame<'_>) -> Result<bool, EngineError> {
        Ok(self.inner.matches(p)?)
    }

    /// Whether the filter matches each of `packets`, in order (the kernel
    /// engine runs up to 32 packets in one test run).
    pub fn matches_all(&mut self, packets: &[Frame<'_>]) -> Result<Vec<bool>, EngineError> {
        Ok(self.inner.matches_all(packets)?)
    }
}
