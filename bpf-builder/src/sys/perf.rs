//! `perf_event_open(2)` and the perf event `ioctl`s that attach BPF
//! programs (kprobes and uprobes through their PMUs, tracepoints,
//! software and hardware counters), and mounting tracefs.

use std::ffi::CStr;
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use aya_obj::generated::{
    PERF_EVENT_IOC_DISABLE, PERF_EVENT_IOC_ENABLE, PERF_EVENT_IOC_SET_BPF, PERF_FLAG_FD_CLOEXEC,
    perf_event_attr,
};

/// `perf_type_id` and counter values from the kernel uapi.
pub use aya_obj::generated::{perf_hw_id, perf_sw_ids, perf_type_id};

/// `TRACEFS_MAGIC`, tracefs's `statfs` type.
pub const TRACEFS_MAGIC: u32 = 0x7472_6163;

/// How often a sampling event fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// Every `n` events (1 for probes and tracepoints: every hit).
    Period(u64),
    /// About `n` times a second (the kernel adjusts the period).
    Frequency(u64),
}

/// When the kernel wakes a reader of the event's ring (`poll`/`epoll`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wakeup {
    /// After every `n` samples (`wakeup_events`; 0 is the kernel's
    /// default).
    Events(u32),
    /// Once `n` bytes are waiting (`watermark`, `wakeup_watermark`).
    Watermark(u32),
}

/// What to open with [`perf_event_open`].
#[derive(Debug, Clone, Copy)]
pub struct PerfEventAttr<'a> {
    /// `perf_type_id`, or a dynamic PMU's type (`kprobe`, `uprobe`, read
    /// from `/sys/bus/event_source/devices/<pmu>/type`).
    pub type_: u32,
    /// What to count: a counter id, a tracepoint id, or the PMU's
    /// `config` bits (the kprobe and uprobe PMUs' `retprobe` bit).
    pub config: u64,
    /// kprobe PMU: the function; uprobe PMU: the file's path (passed as
    /// `config1`, a pointer).
    pub name: Option<&'a CStr>,
    /// `config2`: the offset in the function (kprobe) or the file
    /// (uprobe).
    pub config2: u64,
    /// How often it fires.
    pub sample: Sample,
    /// Opened disabled ([`enable`] starts it).
    pub disabled: bool,
    /// `PERF_SAMPLE_*` bits: what a sample record holds
    /// (`PERF_SAMPLE_RAW` for `bpf_perf_event_output`'s data).
    pub sample_type: u64,
    /// When a reader of the event's ring wakes.
    pub wakeup: Wakeup,
}

impl<'a> PerfEventAttr<'a> {
    /// An event of `type_` and `config` that fires on every hit and is
    /// enabled from the start.
    pub fn new(type_: u32, config: u64) -> PerfEventAttr<'a> {
        PerfEventAttr {
            type_,
            config,
            name: None,
            config2: 0,
            sample: Sample::Period(1),
            disabled: false,
            sample_type: 0,
            wakeup: Wakeup::Events(0),
        }
    }

    fn raw(&self) -> perf_event_attr {
        // SAFETY: `perf_event_attr` is a bindgen struct of integers,
        // integer unions and a bitfield unit: all-zero bytes are a valid
        // value (the one the kernel wants for every field not set here).
        let mut a: perf_event_attr = unsafe { mem::zeroed() };
        a.type_ = self.type_;
        a.size = mem::size_of::<perf_event_attr>() as u32;
        a.config = self.config;
        if let Some(name) = self.name {
            a.__bindgen_anon_3.config1 = name.as_ptr() as u64;
        }
        a.__bindgen_anon_4.config2 = self.config2;
        match self.sample {
            Sample::Period(n) => a.__bindgen_anon_1.sample_period = n,
            Sample::Frequency(n) => {
                a.__bindgen_anon_1.sample_freq = n;
                a.set_freq(1);
            }
        }
        a.set_disabled(u64::from(self.disabled));
        a.sample_type = self.sample_type;
        match self.wakeup {
            Wakeup::Events(n) => a.__bindgen_anon_2.wakeup_events = n,
            Wakeup::Watermark(n) => {
                a.__bindgen_anon_2.wakeup_watermark = n;
                a.set_watermark(1);
            }
        }
        a
    }
}

/// `perf_event_open(2)`: an event for process `pid` (-1: every process)
/// on CPU `cpu` (-1: every CPU; one of them must be given), close-on-exec.
pub fn perf_event_open(attr: &PerfEventAttr<'_>, pid: i32, cpu: i32) -> io::Result<OwnedFd> {
    let mut raw = attr.raw();
    // SAFETY: `raw` is a valid `perf_event_attr` whose `size` is its
    // size; the C string `config1` may point to is borrowed by `attr`
    // for the whole call. The kernel only writes `size` back (E2BIG).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &mut raw as *mut perf_event_attr,
            pid,
            cpu,
            -1,
            PERF_FLAG_FD_CLOEXEC as libc::c_ulong,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// One perf event `ioctl` with an integer argument.
fn ioctl(fd: impl AsFd, request: u32, arg: libc::c_ulong) -> io::Result<()> {
    // SAFETY: `fd` is a live fd for the call; the requests used here take
    // an integer argument, not a pointer.
    let r = unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), request as libc::Ioctl, arg) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `PERF_EVENT_IOC_SET_BPF`: runs `prog` on each of the event's hits,
/// until the event's fd is closed (the attach for kernels without perf
/// links, before Linux 5.15).
pub fn set_bpf(event: impl AsFd, prog: impl AsFd) -> io::Result<()> {
    ioctl(
        event,
        PERF_EVENT_IOC_SET_BPF,
        prog.as_fd().as_raw_fd() as libc::c_ulong,
    )
}

/// `PERF_EVENT_IOC_ENABLE`.
pub fn enable(event: impl AsFd) -> io::Result<()> {
    ioctl(event, PERF_EVENT_IOC_ENABLE, 0)
}

/// `PERF_EVENT_IOC_DISABLE`.
pub fn disable(event: impl AsFd) -> io::Result<()> {
    ioctl(event, PERF_EVENT_IOC_DISABLE, 0)
}

/// Makes sure `path` (`/sys/kernel/tracing`) is a tracefs: mounts one
/// there unless it already is one (the directory exists wherever the
/// kernel has tracefs).
pub fn ensure_tracefs(path: &Path) -> io::Result<()> {
    let dir = std::fs::File::open(path)?;
    if super::dir::fs_type_fd(dir.as_fd())? == TRACEFS_MAGIC {
        return Ok(());
    }
    drop(dir);
    let cpath = super::bpf::path_cstring(path)?;
    // SAFETY: all pointers are NUL-terminated strings that live across the
    // call; `data` may be NULL for tracefs.
    let r = unsafe {
        libc::mount(
            c"tracefs".as_ptr(),
            cpath.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
