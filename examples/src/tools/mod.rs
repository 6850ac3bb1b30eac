//! Tracing tools in the manner of bcc's, built on `bpf-builder` alone:
//! [`syscount`] (system calls per process), [`opensnoop`] (every open
//! with its process, result and path) and [`funclatency`] (a log2
//! histogram of a function's latency); and [`xdpdump`] (the packets an
//! XDP program sees, with a tcpdump filter compiled by `pcap2bpf`). Each module has the tool's
//! options, a handle that loads and attaches its programs, what it
//! reports, and `main`, which the binaries in `src/bin` call.

pub mod funclatency;
pub mod opensnoop;
pub mod syscount;
pub mod xdpdump;

use std::io;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bpf_builder::asm::{Asm, Label};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, JmpOp, Reg::*, Size};
use bpf_builder::object::MapId;
use bpf_builder::sys::signal::Termination;

/// What a tool reports when it cannot go on (printed, exit status 1).
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The text of a NUL-padded command name (`bpf_get_current_comm`).
pub(crate) fn comm(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The value of option `flag`, parsed.
pub(crate) fn value<T: FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    v.parse()
        .map_err(|_| format!("{flag}: `{v}` is not a valid value"))
}

/// Seconds as a duration, for `-d`.
pub(crate) fn seconds(flag: &str, v: Option<String>) -> Result<Duration, String> {
    let s: u64 = value(flag, v)?;
    if s == 0 {
        return Err(format!("{flag} needs a positive number of seconds"));
    }
    Ok(Duration::from_secs(s))
}

/// Waits for `duration` (`None`: for ever) or SIGINT/SIGTERM, whichever
/// comes first.
pub(crate) fn wait_for_end(term: &Termination, duration: Option<Duration>) -> io::Result<()> {
    term.wait(duration).map(|_| ())
}

/// `HH:MM:SS` of the wall clock (UTC), as bcc stamps its reports.
pub(crate) fn clock() -> String {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        % 86400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Runs a tool's `main`: its error goes to stderr and exit status 1,
/// `--help` output to stdout.
pub fn run(name: &str, main: fn(Vec<String>) -> Result<(), Error>) -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match main(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// An error that says to run it as root when the kernel said no for lack
/// of privilege.
pub(crate) fn load_error(what: &str, e: bpf_builder::load::LoadError) -> Error {
    let hint = if e.missing_privilege().is_some() {
        "; run it as root"
    } else {
        ""
    };
    format!("cannot load {what}: {e}{hint}").into()
}

/// Emits: r7 = `bpf_get_current_pid_tgid()`; to `out` unless the process
/// is `pid` (when one is given).
pub(crate) fn pid_tgid(a: &mut Asm, pid: Option<u32>, out: Label) {
    a.call(Helper::GetCurrentPidTgid);
    a.mov64(R7, R0);
    if let Some(pid) = pid {
        a.mov64(R1, R7);
        a.alu64(AluOp::Rsh, R1, 32);
        a.ld_imm64(R2, pid.into());
        a.jmp(JmpOp::Ne, R1, R2, out);
    }
}

/// Emits: `map[this thread's id] = value` (the thread id from the low
/// half of r7, from [`pid_tgid`]), what the exit side takes back with
/// [`take_by_thread`]. Clobbers r0-r5 and the stack's bytes at -4 and
/// -16.
pub(crate) fn put_by_thread(a: &mut Asm, map: MapId, value: bpf_builder::insn::Reg) {
    a.stx(Size::DW, R10, -16, value);
    a.stx(Size::W, R10, -4, R7);
    a.ld_map_fd(R1, map);
    a.mov64(R2, R10);
    a.add64(R2, -4);
    a.mov64(R3, R10);
    a.add64(R3, -16);
    a.mov64(R4, 0);
    a.call(Helper::MapUpdateElem);
}

/// Emits: r8 = the u64 that the entry side stored in `map` under this
/// thread's id (the low half of r7, from [`pid_tgid`]), which is then
/// deleted; to `out` when there is none. Clobbers r0-r5 and the stack's
/// 4 bytes at -4.
pub(crate) fn take_by_thread(a: &mut Asm, map: MapId, out: Label) {
    let key = |a: &mut Asm| {
        a.ld_map_fd(R1, map);
        a.mov64(R2, R10);
        a.add64(R2, -4);
    };
    a.stx(Size::W, R10, -4, R7);
    key(a);
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, out);
    a.ldx(Size::DW, R8, R0, 0);
    key(a);
    a.call(Helper::MapDeleteElem);
}
