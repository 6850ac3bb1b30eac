//! `BPF_PROG_TEST_RUN` at the system-call level. The user-facing API with
//! retries and explained errors is [`crate::run`].

use std::io;
use std::os::fd::AsFd;

use aya_obj::generated::{bpf_attr, bpf_cmd};

use super::{fd_u32, slice_mut_u64, slice_u64, sys_bpf, zeroed};

/// Buffers and parameters of one test run.
#[derive(Debug)]
pub struct TestRunIo<'a> {
    /// Input packet (or other data).
    pub data_in: &'a [u8],
    /// Where the kernel copies the output data; empty: no output wanted.
    pub data_out: &'a mut [u8],
    /// Input context (e.g. `struct xdp_md`), if any.
    pub ctx_in: Option<&'a [u8]>,
    /// Where the kernel copies the output context; empty: none wanted.
    pub ctx_out: &'a mut [u8],
    /// Number of runs (0 and 1 both mean one run).
    pub repeat: u32,
    /// `BPF_F_TEST_*` flags.
    pub flags: u32,
    /// CPU to run on with `BPF_F_TEST_RUN_ON_CPU`.
    pub cpu: u32,
    /// Frames per batch with `BPF_F_TEST_XDP_LIVE_FRAMES` (0: default).
    pub batch_size: u32,
}

/// What the kernel wrote back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TestRunResult {
    /// The program's return value (of the last run).
    pub retval: u32,
    /// Size of the output data; may exceed the buffer (then ENOSPC).
    pub data_size_out: u32,
    /// Size of the output context; may exceed the buffer (then ENOSPC).
    pub ctx_size_out: u32,
    /// Average duration of one run in nanoseconds.
    pub duration: u32,
}

/// A failed test run, with whatever the kernel wrote back (on ENOSPC the
/// sizes it needed).
#[derive(Debug)]
pub struct TestRunFailure {
    /// The kernel's errno.
    pub error: io::Error,
    /// The attr fields after the call.
    pub result: TestRunResult,
}

fn len_u32(what: &str, len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} larger than 4 GiB"),
        )
    })
}

/// `BPF_PROG_TEST_RUN` of `prog`.
pub fn prog_test_run(prog: impl AsFd, io: TestRunIo<'_>) -> Result<TestRunResult, TestRunFailure> {
    let fail = |error| TestRunFailure {
        error,
        result: TestRunResult::default(),
    };
    let ctx_in = io.ctx_in.unwrap_or(&[]);
    let mut a: bpf_attr = zeroed();
    a.test.prog_fd = fd_u32(prog.as_fd());
    a.test.data_size_in = len_u32("data_in", io.data_in.len()).map_err(fail)?;
    a.test.data_in = slice_u64(io.data_in);
    // The kernel writes at most `data_size_out` bytes to `data_out`.
    a.test.data_size_out = len_u32("data_out", io.data_out.len()).map_err(fail)?;
    a.test.data_out = slice_mut_u64(io.data_out);
    a.test.ctx_size_in = len_u32("ctx_in", ctx_in.len()).map_err(fail)?;
    a.test.ctx_in = slice_u64(ctx_in);
    a.test.ctx_size_out = len_u32("ctx_out", io.ctx_out.len()).map_err(fail)?;
    a.test.ctx_out = slice_mut_u64(io.ctx_out);
    a.test.repeat = io.repeat;
    a.test.flags = io.flags;
    a.test.cpu = io.cpu;
    a.test.batch_size = io.batch_size;
    let r = sys_bpf(bpf_cmd::BPF_PROG_TEST_RUN, &mut a);
    // SAFETY: plain integers in the zero-initialised attr union, which the
    // kernel updates on success and on ENOSPC.
    let t = unsafe { a.test };
    let result = TestRunResult {
        retval: t.retval,
        data_size_out: t.data_size_out,
        ctx_size_out: t.ctx_size_out,
        duration: t.duration,
    };
    match r {
        Ok(_) => Ok(result),
        Err(error) => Err(TestRunFailure { error, result }),
    }
}
