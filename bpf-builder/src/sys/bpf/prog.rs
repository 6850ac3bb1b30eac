//! Program and BTF loading, with the verifier log policy.
//!
//! Policy (as libbpf): load without a log first, which is the fast path.
//! Only when that fails, load again with `log_level` 1 and a buffer, so the
//! error comes with the verifier's explanation. A caller who wants the log
//! of a successful load (e.g. the statistics of `BPF_LOG_STATS`) sets
//! `log_level` and gets a log on the first attempt.
//!
//! The kernel answers ENOSPC when the log does not fit (even for a program
//! it would otherwise accept). Since 6.4 it also reports the size it needed
//! (`log_true_size`); we retry with that size, or with twice the buffer on
//! older kernels, up to [`LOG_SIZE_MAX`].
//!
//! The verifier starts over (EAGAIN) when a signal arrives. The loading
//! thread holds its signals back while the kernel verifies, except the
//! requests to end the process; the load is retried when those, or a
//! freeze or stop of the process, interrupt it.

use std::ffi::CStr;
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

use aya_obj::generated::{bpf_attr, bpf_cmd};

use super::{
    attr_member, fd_u32, invalid_input, obj_name, ptr_u64, slice_mut_u64, slice_u64, sys_bpf_fd,
    zeroed,
};
use crate::insn::Insn;

/// The largest verifier log buffer we allocate (the kernel's own limit is
/// 1 GiB).
pub const LOG_SIZE_MAX: usize = 256 << 20;

/// The kernel refuses log buffers smaller than this.
const LOG_SIZE_MIN: usize = 128;

/// Default first log buffer for [`prog_load`].
const LOG_SIZE_DEFAULT: usize = 64 << 10;

/// How often to retry a load the kernel interrupted (EAGAIN/EINTR).
const LOAD_ATTEMPTS: usize = 5;

/// A table of fixed-size records (BTF `func_info`, `line_info`).
#[derive(Debug, Clone, Copy)]
pub struct RecordArray<'a> {
    /// The records, back to back.
    pub bytes: &'a [u8],
    /// Size of one record; `bytes.len()` must be a multiple of it.
    pub rec_size: u32,
}

impl RecordArray<'_> {
    /// Number of records, or an error when the table is ragged.
    fn count(&self) -> io::Result<u32> {
        let rs = self.rec_size as usize;
        if rs == 0 || !self.bytes.len().is_multiple_of(rs) {
            return Err(invalid_input(format!(
                "record table of {} bytes is not a whole number of {}-byte records",
                self.bytes.len(),
                self.rec_size
            )));
        }
        u32::try_from(self.bytes.len() / rs).map_err(|_| invalid_input("too many records".into()))
    }
}

/// What to load with `BPF_PROG_LOAD`.
#[derive(Debug, Clone)]
pub struct ProgLoadAttr<'a> {
    /// `bpf_prog_type` value, e.g. `BPF_PROG_TYPE_XDP as u32`.
    pub prog_type: u32,
    /// `bpf_attach_type` value the program is meant for (0 when unused).
    pub expected_attach_type: u32,
    /// The program.
    pub insns: &'a [Insn],
    /// License string; GPL-only helpers need a GPL-compatible one.
    pub license: &'a CStr,
    /// Name shown by `bpftool`; truncated to 15 bytes, characters outside
    /// `[A-Za-z0-9_.]` become `_`.
    pub name: &'a str,
    /// `BPF_F_*` program flags (e.g. `BPF_F_XDP_HAS_FRAGS`).
    pub prog_flags: u32,
    /// Kernel version for old kprobe programs (0 otherwise).
    pub kern_version: u32,
    /// Device for offloaded or device-bound programs (0: none).
    pub prog_ifindex: u32,
    /// Verifier log level to use even when the load succeeds (0: log only
    /// on failure, at level 1). Combine `BPF_LOG_LEVEL1`/`2` with
    /// `BPF_LOG_STATS` for statistics.
    pub log_level: u32,
    /// BTF object the `func_info`/`line_info` refer to.
    pub prog_btf_fd: Option<BorrowedFd<'a>>,
    /// `bpf_func_info` records.
    pub func_info: Option<RecordArray<'a>>,
    /// `bpf_line_info` records.
    pub line_info: Option<RecordArray<'a>>,
    /// Fds that `BPF_PSEUDO_MAP_IDX` / kfunc `off` fields index into.
    pub fd_array: Option<&'a [RawFd]>,
    /// BTF id of the attach target (tracing, `struct_ops`, freplace).
    pub attach_btf_id: Option<u32>,
    /// Program to attach to (freplace, fentry on a BPF program).
    pub attach_prog_fd: Option<BorrowedFd<'a>>,
}

impl<'a> ProgLoadAttr<'a> {
    /// A load of `insns` as `prog_type` with every optional field empty.
    pub fn new(prog_type: u32, insns: &'a [Insn], license: &'a CStr) -> Self {
        ProgLoadAttr {
            prog_type,
            expected_attach_type: 0,
            insns,
            license,
            name: "",
            prog_flags: 0,
            kern_version: 0,
            prog_ifindex: 0,
            log_level: 0,
            prog_btf_fd: None,
            func_info: None,
            line_info: None,
            fd_array: None,
            attach_btf_id: None,
            attach_prog_fd: None,
        }
    }
}

/// A failed load: the kernel's errno and the log it wrote (private; the
/// public functions wrap it in their own error type).
#[derive(Debug)]
struct LoadFailure {
    error: io::Error,
    log: String,
}

/// The kernel refused a program; the verifier log says why.
#[derive(Debug, thiserror::Error)]
#[error("the kernel refused to load the program: {error}{}", log_excerpt(.log))]
pub struct ProgLoadError {
    /// The kernel's errno (EACCES/EINVAL from the verifier, E2BIG, EPERM,
    /// ENOSPC when even a [`LOG_SIZE_MAX`] log did not fit, ...).
    #[source]
    pub error: io::Error,
    /// The full verifier log (empty when the kernel gave none).
    pub log: String,
}

/// The kernel refused a BTF blob; the BTF log says why.
#[derive(Debug, thiserror::Error)]
#[error("the kernel refused to load the BTF: {error}{}", log_excerpt(.log))]
pub struct BtfLoadError {
    /// The kernel's errno.
    #[source]
    pub error: io::Error,
    /// The full BTF verifier log (empty when the kernel gave none).
    pub log: String,
}

/// The last lines of a verifier log, where it says what went wrong.
fn log_excerpt(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(3)..];
    format!("; the log ends with:\n{}", tail.join("\n"))
}

/// The result of one load attempt with a log buffer.
struct Attempt {
    result: io::Result<OwnedFd>,
    /// Bytes the kernel needed for the whole log (0 before 6.4).
    log_true_size: u32,
}

/// Loads with a verifier log, growing the buffer on ENOSPC.
///
/// `attempt(level, buf)` performs one load; a `level` of 0 means no log.
fn load_with_log_policy(
    forced_level: u32,
    initial_size: usize,
    mut attempt: impl FnMut(u32, &mut [u8]) -> Attempt,
) -> Result<(OwnedFd, String), LoadFailure> {
    if forced_level == 0 {
        // Fast path: no log at all.
        if let Ok(fd) = attempt(0, &mut []).result {
            return Ok((fd, String::new()));
        }
    }
    let level = if forced_level == 0 { 1 } else { forced_level };
    let mut size = initial_size.clamp(LOG_SIZE_MIN, LOG_SIZE_MAX);
    loop {
        let mut buf = vec![0u8; size];
        let a = attempt(level, &mut buf);
        let log = log_text(&buf);
        match a.result {
            Ok(fd) => return Ok((fd, log)),
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) && size < LOG_SIZE_MAX => {
                let needed = a.log_true_size as usize;
                size = if needed > size {
                    needed
                } else {
                    size.saturating_mul(2)
                }
                .min(LOG_SIZE_MAX);
            }
            Err(error) => return Err(LoadFailure { error, log }),
        }
    }
}

/// The log up to its NUL terminator.
fn log_text(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Retries an attempt the kernel interrupted (EAGAIN, EINTR).
fn with_retries(mut f: impl FnMut() -> Attempt) -> Attempt {
    let mut last = f();
    for _ in 1..LOAD_ATTEMPTS {
        match &last.result {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => last = f(),
            _ => break,
        }
    }
    last
}

/// The calling thread's signals held back for the length of one
/// `BPF_PROG_LOAD`, and released (and delivered) when dropped.
///
/// The verifier gives up with EAGAIN as soon as a signal is pending, and
/// a big program takes it a second or more: a process that gets signals
/// often (child exits under a tracer, timers, profilers) would never see
/// such a program load. Requests to end the process (SIGINT, SIGTERM,
/// SIGHUP, SIGQUIT) still interrupt it.
struct SignalsHeld {
    previous: libc::sigset_t,
}

impl SignalsHeld {
    fn new() -> SignalsHeld {
        // SAFETY: sigset_t is a plain bit set that sigemptyset and
        // sigfillset initialise; pthread_sigmask only changes the mask of
        // the calling thread and writes the old mask into `previous`.
        unsafe {
            let mut held: libc::sigset_t = std::mem::zeroed();
            let mut previous: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut held);
            for ending in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
                libc::sigdelset(&mut held, ending);
            }
            libc::sigemptyset(&mut previous);
            libc::pthread_sigmask(libc::SIG_BLOCK, &held, &mut previous);
            SignalsHeld { previous }
        }
    }
}

impl Drop for SignalsHeld {
    fn drop(&mut self) {
        // SAFETY: restores the mask this thread had, saved by `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.previous, std::ptr::null_mut()) };
    }
}

/// One `BPF_PROG_LOAD` with the given log level and buffer.
fn prog_load_once(
    attr: &ProgLoadAttr<'_>,
    code: &[u8],
    log_level: u32,
    log: &mut [u8],
) -> io::Result<Attempt> {
    let mut a: bpf_attr = zeroed();
    let p = attr_member!(a, __bindgen_anon_3);
    p.prog_type = attr.prog_type;
    p.expected_attach_type = attr.expected_attach_type;
    p.insn_cnt = u32::try_from(attr.insns.len())
        .map_err(|_| invalid_input("too many instructions".into()))?;
    p.insns = slice_u64(code);
    p.license = ptr_u64(attr.license.as_ptr());
    p.prog_name = obj_name(attr.name);
    p.prog_flags = attr.prog_flags;
    p.kern_version = attr.kern_version;
    p.prog_ifindex = attr.prog_ifindex;
    p.prog_btf_fd = attr.prog_btf_fd.map_or(0, fd_u32);
    if let Some(fi) = &attr.func_info {
        p.func_info_cnt = fi.count()?;
        p.func_info_rec_size = fi.rec_size;
        p.func_info = slice_u64(fi.bytes);
    }
    if let Some(li) = &attr.line_info {
        p.line_info_cnt = li.count()?;
        p.line_info_rec_size = li.rec_size;
        p.line_info = slice_u64(li.bytes);
    }
    if let Some(fds) = attr.fd_array {
        p.fd_array = slice_u64(fds);
    }
    p.attach_btf_id = attr.attach_btf_id.unwrap_or(0);
    if let Some(fd) = attr.attach_prog_fd {
        p.__bindgen_anon_1.attach_prog_fd = fd_u32(fd);
    }
    if log_level != 0 {
        p.log_level = log_level;
        p.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
        p.log_buf = slice_mut_u64(log);
    }
    let result = {
        let _held = SignalsHeld::new();
        sys_bpf_fd(bpf_cmd::BPF_PROG_LOAD, &mut a)
    };
    // SAFETY: plain integer in the zero-initialised attr union; the kernel
    // (6.4+) writes it back, older kernels leave it 0.
    let log_true_size = unsafe { a.__bindgen_anon_3.log_true_size };
    Ok(Attempt {
        result,
        log_true_size,
    })
}

/// `BPF_PROG_LOAD` with the verifier log policy of this module.
///
/// Returns the program and the log (empty when no log was requested and
/// the fast path succeeded), or the errno and the log of the last attempt.
/// `initial_log_size` is the first buffer size (at least 128 bytes).
pub fn prog_load_with_log(
    attr: &ProgLoadAttr<'_>,
    initial_log_size: usize,
) -> Result<(OwnedFd, String), ProgLoadError> {
    let code = Insn::encode_all(attr.insns);
    load_with_log_policy(attr.log_level, initial_log_size, |level, buf| {
        with_retries(|| match prog_load_once(attr, &code, level, buf) {
            Ok(a) => a,
            Err(error) => Attempt {
                result: Err(error),
                log_true_size: 0,
            },
        })
    })
    .map_err(|LoadFailure { error, log }| ProgLoadError { error, log })
}

/// `BPF_PROG_LOAD`: loads the program, returning the verifier log with the
/// error when the kernel refuses it.
pub fn prog_load(attr: &ProgLoadAttr<'_>) -> Result<OwnedFd, ProgLoadError> {
    prog_load_with_log(attr, LOG_SIZE_DEFAULT).map(|(fd, _)| fd)
}

/// One `BPF_BTF_LOAD`.
fn btf_load_once(btf: &[u8], log_level: u32, log: &mut [u8]) -> Attempt {
    let mut a: bpf_attr = zeroed();
    let b = attr_member!(a, __bindgen_anon_7);
    b.btf = slice_u64(btf);
    b.btf_size = match u32::try_from(btf.len()) {
        Ok(n) => n,
        Err(_) => {
            return Attempt {
                result: Err(invalid_input("BTF blob larger than 4 GiB".into())),
                log_true_size: 0,
            };
        }
    };
    if log_level != 0 {
        b.btf_log_level = log_level;
        b.btf_log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
        b.btf_log_buf = slice_mut_u64(log);
    }
    let result = sys_bpf_fd(bpf_cmd::BPF_BTF_LOAD, &mut a);
    // SAFETY: plain integer in the zero-initialised attr union.
    let log_true_size = unsafe { a.__bindgen_anon_7.btf_log_true_size };
    Attempt {
        result,
        log_true_size,
    }
}

/// `BPF_BTF_LOAD` of a raw BTF blob, with the same log policy as programs:
/// `log_level` 0 logs only on failure. Returns the BTF object and the log.
pub fn btf_load(
    btf: &[u8],
    log_level: u32,
    initial_log_size: usize,
) -> Result<(OwnedFd, String), BtfLoadError> {
    load_with_log_policy(log_level, initial_log_size, |level, buf| {
        with_retries(|| btf_load_once(btf, level, buf))
    })
    .map_err(|LoadFailure { error, log }| BtfLoadError { error, log })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_fd() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn log_grows_to_true_size() {
        let mut sizes = Vec::new();
        let r = load_with_log_policy(0, 128, |level, buf| {
            sizes.push((level, buf.len()));
            if level == 0 {
                return Attempt {
                    result: Err(io::Error::from_raw_os_error(libc::EACCES)),
                    log_true_size: 0,
                };
            }
            if buf.len() < 1000 {
                return Attempt {
                    result: Err(io::Error::from_raw_os_error(libc::ENOSPC)),
                    log_true_size: 1000,
                };
            }
            buf[..5].copy_from_slice(b"hello");
            Attempt {
                result: Err(io::Error::from_raw_os_error(libc::EACCES)),
                log_true_size: 6,
            }
        });
        let f = r.unwrap_err();
        assert_eq!(f.error.raw_os_error(), Some(libc::EACCES));
        assert_eq!(f.log, "hello");
        assert_eq!(sizes, vec![(0, 0), (1, 128), (1, 1000)]);
    }

    #[test]
    fn log_doubles_without_true_size_and_stops_at_cap() {
        let mut sizes = Vec::new();
        let r = load_with_log_policy(2, 64 << 20, |level, buf| {
            sizes.push((level, buf.len()));
            Attempt {
                result: Err(io::Error::from_raw_os_error(libc::ENOSPC)),
                log_true_size: 0,
            }
        });
        assert_eq!(r.unwrap_err().error.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(
            sizes,
            vec![(2, 64 << 20), (2, 128 << 20), (2, LOG_SIZE_MAX)]
        );
    }

    #[test]
    fn fast_path_has_no_log() {
        let mut calls = 0;
        let (_, log) = load_with_log_policy(0, 4096, |level, _| {
            calls += 1;
            assert_eq!(level, 0);
            Attempt {
                result: Ok(fake_fd()),
                log_true_size: 0,
            }
        })
        .unwrap();
        assert_eq!(calls, 1);
        assert_eq!(log, "");
    }

    #[test]
    fn eagain_is_retried() {
        let mut calls = 0;
        let a = with_retries(|| {
            calls += 1;
            Attempt {
                result: if calls < 3 {
                    Err(io::Error::from_raw_os_error(libc::EAGAIN))
                } else {
                    Ok(fake_fd())
                },
                log_true_size: 0,
            }
        });
        assert!(a.result.is_ok());
        assert_eq!(calls, 3);
    }

    /// A no-op handler, so SIGUSR1 interrupts instead of killing.
    extern "C" fn ignore_signal(_: libc::c_int) {}

    /// A verifier run of about a million instructions, with a signal sent
    /// to the loading thread every 100 µs, still loads: signals wait
    /// while the kernel verifies instead of making it start over.
    #[test]
    fn signals_do_not_interrupt_the_verifier() {
        use crate::insn::{AluOp, Insn, JmpOp, Reg};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::Duration;

        // SAFETY: installs a handler that does nothing; only this test
        // sends SIGUSR1 in this binary.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = ignore_signal as *const () as usize;
            assert_eq!(
                libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
                0
            );
        }
        // r1 counts to 300,000: the verifier walks every iteration.
        let insns = [
            Insn::mov64(Reg::R1, 0),
            Insn::alu64(AluOp::Add, Reg::R1, 1),
            Insn::jmp(JmpOp::Lt, Reg::R1, 300_000, -2),
            Insn::mov64(Reg::R0, 2),
            Insn::exit(),
        ];
        let attr = ProgLoadAttr::new(
            aya_obj::generated::bpf_prog_type::BPF_PROG_TYPE_XDP as u32,
            &insns,
            c"GPL",
        );
        // SAFETY: pthread_self has no preconditions.
        let loader = unsafe { libc::pthread_self() };
        let done = AtomicBool::new(false);
        let result = std::thread::scope(|s| {
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    // SAFETY: `loader` is the scope's own thread, alive
                    // until this thread has been joined.
                    unsafe { libc::pthread_kill(loader, libc::SIGUSR1) };
                    std::thread::sleep(Duration::from_micros(100));
                }
            });
            let result = prog_load(&attr);
            done.store(true, Ordering::Relaxed);
            result
        });
        match result {
            Ok(_) => {}
            Err(e)
                if e.error.raw_os_error() == Some(libc::EPERM)
                    && std::env::var_os("CI").is_none() =>
            {
                eprintln!("skipped: loading XDP programs needs CAP_BPF ({e})");
            }
            Err(e) => panic!("the load was interrupted: {e}"),
        }
    }

    #[test]
    fn error_message_quotes_log_tail() {
        let e = ProgLoadError {
            error: io::Error::from_raw_os_error(libc::EACCES),
            log: "0: (bf) r0 = r2\nR2 !read_ok\nprocessed 1 insns\n".into(),
        };
        let msg = e.to_string();
        assert!(msg.contains("R2 !read_ok"), "{msg}");
        assert!(msg.contains("Permission denied"), "{msg}");
    }

    #[test]
    fn ragged_records_are_refused() {
        let r = RecordArray {
            bytes: &[0; 10],
            rec_size: 8,
        };
        assert!(r.count().is_err());
        let r = RecordArray {
            bytes: &[0; 16],
            rec_size: 8,
        };
        assert_eq!(r.count().unwrap(), 2);
    }
}
