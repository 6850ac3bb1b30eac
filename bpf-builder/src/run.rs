//! Running a loaded program on a buffer with `BPF_PROG_TEST_RUN`.
//!
//! ```no_run
//! # use std::os::fd::AsFd;
//! # fn demo(prog: std::os::fd::OwnedFd) -> Result<(), bpf_builder::run::RunError> {
//! use bpf_builder::run::{test_run, TestRun};
//! let packet = [0u8; 64];
//! let out = test_run(prog.as_fd(), &TestRun::new(&packet).repeat(1000))?;
//! println!("verdict {} in {} ns", out.retval, out.duration_ns);
//! # Ok(()) }
//! ```

use std::io;
use std::os::fd::BorrowedFd;

use aya_obj::generated::bpf_prog_type;

use crate::sys::bpf::{ENOTSUPP, TestRunIo, prog_info, prog_test_run};

/// Extra output room beyond the input size: programs may grow the packet
/// (e.g. `bpf_xdp_adjust_head` with a negative delta).
const DEFAULT_OUT_SLACK: usize = 256;

/// Attempts when the output buffers turn out too small.
const ATTEMPTS: usize = 3;

/// Ethernet header length: the kernel's minimum input for packet programs.
const ETH_HLEN: usize = 14;

/// One test run request. Build with [`TestRun::new`] and the setters.
#[derive(Debug, Clone)]
pub struct TestRun<'a> {
    /// Input data (a packet for network programs).
    pub data_in: &'a [u8],
    /// Room for output data (default: input length + 256). Grown
    /// automatically when the kernel says it was too small.
    pub data_out_capacity: usize,
    /// Input context (`struct xdp_md`, `struct __sk_buff`, ...), if any.
    pub ctx_in: Option<&'a [u8]>,
    /// Room for the output context (default: 0, none wanted).
    pub ctx_out_capacity: usize,
    /// Runs in a row (0 and 1 both mean one); the duration is the average.
    pub repeat: u32,
    /// `BPF_F_TEST_*` flags.
    pub flags: u32,
    /// CPU for `BPF_F_TEST_RUN_ON_CPU`.
    pub cpu: u32,
}

impl<'a> TestRun<'a> {
    /// One run on `data_in`, no context, output room of input + 256 bytes.
    pub fn new(data_in: &'a [u8]) -> Self {
        TestRun {
            data_in,
            data_out_capacity: data_in.len() + DEFAULT_OUT_SLACK,
            ctx_in: None,
            ctx_out_capacity: 0,
            repeat: 1,
            flags: 0,
            cpu: 0,
        }
    }

    /// Sets the output data room.
    pub fn data_out_capacity(mut self, n: usize) -> Self {
        self.data_out_capacity = n;
        self
    }

    /// Sets the input context; the output context room defaults to its size.
    pub fn ctx_in(mut self, ctx: &'a [u8]) -> Self {
        self.ctx_in = Some(ctx);
        self.ctx_out_capacity = self.ctx_out_capacity.max(ctx.len());
        self
    }

    /// Sets the output context room.
    pub fn ctx_out_capacity(mut self, n: usize) -> Self {
        self.ctx_out_capacity = n;
        self
    }

    /// Sets the number of runs.
    pub fn repeat(mut self, n: u32) -> Self {
        self.repeat = n;
        self
    }

    /// Sets the `BPF_F_TEST_*` flags.
    pub fn flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    /// Sets the CPU (with `BPF_F_TEST_RUN_ON_CPU`).
    pub fn cpu(mut self, cpu: u32) -> Self {
        self.cpu = cpu;
        self
    }
}

/// What a test run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRunOutput {
    /// The program's return value (e.g. the XDP action).
    pub retval: u32,
    /// Output data (the packet after the program).
    pub data: Vec<u8>,
    /// Output context.
    pub ctx: Vec<u8>,
    /// Average duration of one run in nanoseconds.
    pub duration_ns: u32,
}

/// Why a test run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Packet programs need at least an Ethernet header.
    #[error(
        "the kernel refused the test run (EINVAL): the input is {len} bytes, but {prog_type} \
         programs need at least an Ethernet header ({ETH_HLEN} bytes) of input"
    )]
    InputTooShort {
        /// Input length.
        len: usize,
        /// Program type name.
        prog_type: String,
    },
    /// The kernel refused the arguments, for a reason we cannot pin down.
    #[error(
        "the kernel refused the test run arguments (EINVAL) for a {prog_type} program: \
         check that the input size suits the program type (packets: {ETH_HLEN} bytes up to \
         about a page), that the context has the size and fields the type allows, and that \
         flags, repeat and cpu are supported for it"
    )]
    InvalidArgument {
        /// Program type name.
        prog_type: String,
    },
    /// This program type cannot be test-run.
    #[error("the kernel cannot test-run {prog_type} programs (errno {errno}: not supported)")]
    NotSupported {
        /// Program type name.
        prog_type: String,
        /// The errno (ENOTSUPP 524 or EOPNOTSUPP).
        errno: i32,
    },
    /// Missing privilege.
    #[error("permission denied: BPF_PROG_TEST_RUN needs CAP_BPF or CAP_SYS_ADMIN ({0})")]
    PermissionDenied(#[source] io::Error),
    /// The output kept outgrowing the buffers.
    #[error(
        "the output kept outgrowing its buffer (last asked for {data} data bytes, {ctx} context bytes)"
    )]
    OutputTooLarge {
        /// Data bytes the kernel reported last.
        data: u32,
        /// Context bytes the kernel reported last.
        ctx: u32,
    },
    /// Any other errno.
    #[error("BPF_PROG_TEST_RUN failed: {0}")]
    Io(#[source] io::Error),
}

/// The kernel's name of a program type, for messages.
fn prog_type_name(prog: BorrowedFd<'_>) -> String {
    match prog_info(prog) {
        Ok(info) => type_name(info.prog_type),
        Err(_) => "this".to_string(),
    }
}

fn type_name(t: u32) -> String {
    use bpf_prog_type::*;
    let known = [
        (BPF_PROG_TYPE_SOCKET_FILTER, "socket filter"),
        (BPF_PROG_TYPE_SCHED_CLS, "tc classifier"),
        (BPF_PROG_TYPE_SCHED_ACT, "tc action"),
        (BPF_PROG_TYPE_XDP, "XDP"),
        (BPF_PROG_TYPE_CGROUP_SKB, "cgroup skb"),
        (BPF_PROG_TYPE_LWT_IN, "lwt in"),
        (BPF_PROG_TYPE_LWT_OUT, "lwt out"),
        (BPF_PROG_TYPE_LWT_XMIT, "lwt xmit"),
        (BPF_PROG_TYPE_FLOW_DISSECTOR, "flow dissector"),
        (BPF_PROG_TYPE_KPROBE, "kprobe"),
        (BPF_PROG_TYPE_TRACEPOINT, "tracepoint"),
        (BPF_PROG_TYPE_RAW_TRACEPOINT, "raw tracepoint"),
        (BPF_PROG_TYPE_TRACING, "tracing"),
        (BPF_PROG_TYPE_SK_LOOKUP, "sk_lookup"),
        (BPF_PROG_TYPE_SYSCALL, "syscall"),
    ];
    known
        .iter()
        .find(|(k, _)| *k as u32 == t)
        .map_or_else(|| format!("type {t}"), |(_, n)| (*n).to_string())
}

/// Program types whose test run takes a packet with an Ethernet header.
fn needs_ethernet(t: u32) -> bool {
    use bpf_prog_type::*;
    [
        BPF_PROG_TYPE_SOCKET_FILTER,
        BPF_PROG_TYPE_SCHED_CLS,
        BPF_PROG_TYPE_SCHED_ACT,
        BPF_PROG_TYPE_XDP,
        BPF_PROG_TYPE_CGROUP_SKB,
        BPF_PROG_TYPE_LWT_IN,
        BPF_PROG_TYPE_LWT_OUT,
        BPF_PROG_TYPE_LWT_XMIT,
        BPF_PROG_TYPE_LWT_SEG6LOCAL,
        BPF_PROG_TYPE_FLOW_DISSECTOR,
    ]
    .iter()
    .any(|&k| k as u32 == t)
}

/// Turns an errno into an explained error.
fn explain(prog: BorrowedFd<'_>, run: &TestRun<'_>, e: io::Error) -> RunError {
    match e.raw_os_error() {
        Some(libc::EINVAL) => {
            let info = prog_info(prog).ok();
            let t = info.map_or(0, |i| i.prog_type);
            if needs_ethernet(t) && run.data_in.len() < ETH_HLEN {
                RunError::InputTooShort {
                    len: run.data_in.len(),
                    prog_type: type_name(t),
                }
            } else {
                RunError::InvalidArgument {
                    prog_type: type_name(t),
                }
            }
        }
        Some(errno @ (ENOTSUPP | libc::EOPNOTSUPP)) => RunError::NotSupported {
            prog_type: prog_type_name(prog),
            errno,
        },
        Some(libc::EPERM) => RunError::PermissionDenied(e),
        _ => RunError::Io(e),
    }
}

/// Runs `prog` once (or `repeat` times) on the request's input.
///
/// When the output does not fit, the kernel says so (ENOSPC) with the size
/// it needed; we run again with buffers of that size. The program then
/// runs more than once, so its side effects (map updates) repeat.
pub fn test_run(prog: BorrowedFd<'_>, run: &TestRun<'_>) -> Result<TestRunOutput, RunError> {
    let mut data_cap = run.data_out_capacity;
    let mut ctx_cap = run.ctx_out_capacity;
    let mut last = (0, 0);
    for _ in 0..ATTEMPTS {
        let mut data = vec![0u8; data_cap];
        let mut ctx = vec![0u8; ctx_cap];
        let io = TestRunIo {
            data_in: run.data_in,
            data_out: &mut data,
            ctx_in: run.ctx_in,
            ctx_out: &mut ctx,
            repeat: run.repeat,
            flags: run.flags,
            cpu: run.cpu,
            batch_size: 0,
        };
        match prog_test_run(prog, io) {
            Ok(r) => {
                data.truncate(r.data_size_out as usize);
                ctx.truncate(r.ctx_size_out as usize);
                return Ok(TestRunOutput {
                    retval: r.retval,
                    data,
                    ctx,
                    duration_ns: r.duration,
                });
            }
            Err(f) if f.error.raw_os_error() == Some(libc::ENOSPC) => {
                let r = f.result;
                last = (r.data_size_out, r.ctx_size_out);
                // Grow whichever the kernel reported bigger than our room.
                data_cap = data_cap.max(r.data_size_out as usize);
                ctx_cap = ctx_cap.max(r.ctx_size_out as usize);
                if data_cap == data.len() && ctx_cap == ctx.len() {
                    // Nothing reported bigger: ENOSPC means something else.
                    return Err(RunError::Io(f.error));
                }
            }
            Err(f) => return Err(explain(prog, run, f.error)),
        }
    }
    Err(RunError::OutputTooLarge {
        data: last.0,
        ctx: last.1,
    })
}

/// The most arguments a [`run_once`] passes (`MAX_BPF_FUNC_ARGS`).
pub const MAX_RUN_ONCE_ARGS: usize = 12;

/// Runs a raw tracepoint program once, now, on the calling CPU, with
/// `args` as its arguments ([`raw_tracepoint_args`](crate::ctx::raw_tracepoint_args)),
/// and returns what it returned: how a tool runs its `BEGIN` and `END`
/// programs (bpftrace's special probes), through `BPF_PROG_TEST_RUN`
/// (Linux 5.10+ for raw tracepoints). The program may use maps, ring
/// buffers and helpers as when attached.
pub fn run_once(prog: BorrowedFd<'_>, args: &[u64]) -> Result<u32, RunError> {
    if args.len() > MAX_RUN_ONCE_ARGS {
        return Err(RunError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} arguments: a raw tracepoint program takes at most {MAX_RUN_ONCE_ARGS}",
                args.len()
            ),
        )));
    }
    let ctx: Vec<u8> = args.iter().flat_map(|a| a.to_ne_bytes()).collect();
    let io = TestRunIo {
        data_in: &[],
        data_out: &mut [],
        ctx_in: (!ctx.is_empty()).then_some(&ctx[..]),
        ctx_out: &mut [],
        // The kernel refuses `repeat` for raw tracepoints: one run.
        repeat: 0,
        flags: 0,
        cpu: 0,
        batch_size: 0,
    };
    match prog_test_run(prog, io) {
        Ok(r) => Ok(r.retval),
        Err(f) => Err(explain(prog, &TestRun::new(&[]), f.error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let d = [1u8; 20];
        let r = TestRun::new(&d);
        assert_eq!(r.data_out_capacity, 276);
        assert_eq!(r.ctx_out_capacity, 0);
        assert_eq!(r.repeat, 1);
        let c = [0u8; 24];
        let r = r.ctx_in(&c).repeat(5).data_out_capacity(3);
        assert_eq!(r.ctx_out_capacity, 24);
        assert_eq!(r.repeat, 5);
        assert_eq!(r.data_out_capacity, 3);
    }

    #[test]
    fn short_input_message_explains() {
        let e = RunError::InputTooShort {
            len: 10,
            prog_type: "XDP".into(),
        };
        let m = e.to_string();
        assert!(
            m.contains("10 bytes") && m.contains("Ethernet header (14 bytes)"),
            "{m}"
        );
    }
}
