//! XDP: one program per device and mode.
//!
//! [`attach`] goes through a BPF link: nobody can replace it silently
//! (netlink requests get `EBUSY`), [`Link::update`] swaps its program
//! atomically, and dropping the link detaches it. [`attach_netlink`] is the
//! fallback for kernels or tools that need `IFLA_XDP`; it always states
//! what it expects to find attached ([`Expect`]), so it never replaces
//! someone else's program by accident.

use std::os::fd::AsFd;

use aya_obj::generated::bpf_attach_type;

use super::{AttachError, Interface, Link};
use crate::handle::Program;
use crate::kernel_id::KernelProgId;
use crate::object::ProgramType;
use crate::sys::bpf::{self as sys, LinkCreateAttr, Relative, Target};
use crate::sys::netlink::{self, NetlinkError, xdp_flags};

/// Where on the device the program runs.
///
/// The mode matters beyond speed when a program redirects frames
/// (`XDP_REDIRECT` through `bpf_redirect` or a devmap) out of a veth: in
/// driver mode the frames are handed to the target veth's peer as XDP
/// frames, and a peer without an XDP program of its own drops them
/// silently; with a program on the peer (one returning `XDP_PASS` is
/// enough) they arrive. In generic mode they leave as ordinary packets and
/// arrive either way. The test `xdp_modes` in this crate shows all three
/// cases on the running kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// The kernel decides: driver mode when the device's driver supports
    /// XDP (veth, virtio_net and most NICs do), generic mode otherwise. On
    /// a veth that is driver mode, with the redirect caveat above; use
    /// [`XdpMode::Generic`] there, or give the target's peer a program.
    /// [`XdpQuery::mode_of`] tells which mode the kernel chose.
    #[default]
    Auto,
    /// Generic (skb) mode: any device, after the skb is built. Slower;
    /// redirected frames arrive whatever the target's peer runs.
    Generic,
    /// Driver (native) mode: in the driver, before the skb (veth has it).
    /// Fails when the driver has no XDP support.
    Driver,
    /// Offloaded to the NIC.
    Offload,
}

impl XdpMode {
    /// The mode in words: `generic`, `driver`, `offload`, or `some` for
    /// [`XdpMode::Auto`] (whichever the kernel picks).
    pub fn name(self) -> &'static str {
        match self {
            XdpMode::Auto => "some",
            XdpMode::Generic => "generic",
            XdpMode::Driver => "driver",
            XdpMode::Offload => "offload",
        }
    }

    fn flags(self) -> u32 {
        match self {
            XdpMode::Auto => 0,
            XdpMode::Generic => xdp_flags::SKB_MODE,
            XdpMode::Driver => xdp_flags::DRV_MODE,
            XdpMode::Offload => xdp_flags::HW_MODE,
        }
    }
}

/// What a netlink attach or detach expects to find on the hook.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// No program: fail if one is attached (`XDP_FLAGS_UPDATE_IF_NOEXIST`).
    Nothing,
    /// Exactly this program (`XDP_FLAGS_REPLACE` + `IFLA_XDP_EXPECTED_FD`).
    Program(&'a Program),
    /// Whatever is there: replace it unconditionally. Use only when the
    /// caller owns the device.
    Anything,
}

/// The XDP programs of a device, by mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct XdpQuery {
    /// The generic-mode program id.
    pub generic: Option<KernelProgId>,
    /// The driver-mode program id.
    pub driver: Option<KernelProgId>,
    /// The offloaded program id.
    pub offload: Option<KernelProgId>,
}

impl XdpQuery {
    /// Whether no program is attached in any mode.
    pub fn is_empty(&self) -> bool {
        self.generic.is_none() && self.driver.is_none() && self.offload.is_none()
    }

    /// The mode program `id` runs in here, if it is attached: after an
    /// attach with [`XdpMode::Auto`], the mode the kernel chose.
    pub fn mode_of(&self, id: KernelProgId) -> Option<XdpMode> {
        [
            (XdpMode::Driver, self.driver),
            (XdpMode::Generic, self.generic),
            (XdpMode::Offload, self.offload),
        ]
        .into_iter()
        .find(|&(_, attached)| attached == Some(id))
        .map(|(mode, _)| mode)
    }

    /// The program attached in `mode` (for `Auto`: the only one attached).
    pub fn program(&self, mode: XdpMode) -> Option<KernelProgId> {
        match mode {
            XdpMode::Generic => self.generic,
            XdpMode::Driver => self.driver,
            XdpMode::Offload => self.offload,
            XdpMode::Auto => self.driver.or(self.generic).or(self.offload),
        }
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (mode, id) in [
            (XdpMode::Generic, self.generic),
            (XdpMode::Driver, self.driver),
            (XdpMode::Offload, self.offload),
        ] {
            if let Some(id) = id {
                parts.push(format!("program {id} in {} mode", mode.name()));
            }
        }
        if parts.is_empty() {
            "nothing attached".into()
        } else {
            parts.join(", ")
        }
    }
}

fn check_type(prog: &Program) -> Result<(), AttachError> {
    match prog.prog_type() {
        None | Some(ProgramType::Xdp) => Ok(()),
        Some(other) => Err(AttachError::WrongProgram {
            program: prog.name().to_string(),
            reason: format!("an XDP hook needs a ProgramType::Xdp program, this one is {other:?}"),
        }),
    }
}

/// Attaches `prog` to `iface` through a BPF link. Fails with
/// [`AttachError::HookTaken`] when a program is already attached there (by
/// link or netlink); nothing is replaced. See [`XdpMode`] for what the
/// mode changes (on a veth, [`XdpMode::Auto`] is driver mode, where frames
/// redirected to a peer without an XDP program are dropped).
pub fn attach(
    iface: impl Into<Interface>,
    prog: &Program,
    mode: XdpMode,
) -> Result<Link, AttachError> {
    let iface = iface.into();
    check_type(prog)?;
    let ifindex = iface.resolve()?;
    let attr = LinkCreateAttr {
        prog_fd: prog.as_fd(),
        target: Target::Ifindex(ifindex),
        attach_type: bpf_attach_type::BPF_XDP as u32,
        flags: mode.flags(),
        relative: Relative::None,
        expected_revision: 0,
    };
    match sys::link_create(&attr) {
        Ok(fd) => Ok(Link::from_fd(fd)),
        Err(e) => Err(match e.raw_os_error() {
            Some(libc::EBUSY) | Some(libc::EEXIST) => AttachError::HookTaken {
                hook: "XDP".into(),
                iface: iface.to_string(),
                detail: query_index(ifindex).map_or_else(|_| e.to_string(), |q| q.describe()),
            },
            Some(libc::ENODEV) => AttachError::UnknownInterface(format!("no interface {iface}")),
            Some(libc::EOPNOTSUPP) => AttachError::sys(
                format!("XDP link on {iface}: {mode:?} mode is not supported by this device"),
                e,
            ),
            // veth, virtio_net and others: frames at this MTU may span
            // several buffers, which the program has not declared it reads.
            Some(libc::ERANGE) => AttachError::sys(
                format!(
                    "XDP link on {iface}: the device's MTU is too large for an XDP program \
                     without fragment support (see `Object::set_xdp_frags`)"
                ),
                e,
            ),
            _ => AttachError::sys(format!("XDP link on {iface}"), e),
        }),
    }
}

/// What XDP programs `iface` has (`RTM_GETLINK`).
pub fn query(iface: impl Into<Interface>) -> Result<XdpQuery, AttachError> {
    query_index(iface.into().resolve()?)
}

fn query_index(ifindex: u32) -> Result<XdpQuery, AttachError> {
    let s = netlink::get_xdp(ifindex).map_err(|source| AttachError::Netlink {
        op: format!("query XDP of ifindex {ifindex}"),
        source,
    })?;
    let some = |id: u32| (id != 0).then_some(KernelProgId::new(id));
    let mut q = XdpQuery {
        generic: some(s.skb_prog_id),
        driver: some(s.drv_prog_id),
        offload: some(s.hw_prog_id),
    };
    // Older kernels report only IFLA_XDP_PROG_ID with the mode in ATTACHED.
    if q.is_empty() && s.prog_id != 0 {
        match s.attached {
            1 => q.driver = some(s.prog_id),
            2 => q.generic = some(s.prog_id),
            3 => q.offload = some(s.prog_id),
            _ => {}
        }
    }
    Ok(q)
}

/// Attaches `prog` to `iface` with netlink (`IFLA_XDP`), guarded by
/// `expect`. The program stays attached until [`detach_netlink`] (or the
/// device goes away); no handle owns it.
pub fn attach_netlink(
    iface: impl Into<Interface>,
    prog: &Program,
    mode: XdpMode,
    expect: Expect<'_>,
) -> Result<(), AttachError> {
    check_type(prog)?;
    set_netlink(&iface.into(), Some(prog), mode, expect, "attach")
}

/// Removes the netlink-attached XDP program of `iface`, guarded by
/// `expect` (`Expect::Program(p)`: only if `p` is the one attached). With
/// `XdpMode::Auto`, the mode the program is attached in.
pub fn detach_netlink(
    iface: impl Into<Interface>,
    mode: XdpMode,
    expect: Expect<'_>,
) -> Result<(), AttachError> {
    let iface = iface.into();
    let mode = match mode {
        XdpMode::Auto => {
            let q = query(iface.clone())?;
            if q.driver.is_some() {
                XdpMode::Driver
            } else if q.generic.is_some() {
                XdpMode::Generic
            } else if q.offload.is_some() {
                XdpMode::Offload
            } else {
                XdpMode::Auto
            }
        }
        m => m,
    };
    set_netlink(&iface, None, mode, expect, "detach")
}

fn set_netlink(
    iface: &Interface,
    prog: Option<&Program>,
    mode: XdpMode,
    expect: Expect<'_>,
    what: &str,
) -> Result<(), AttachError> {
    let ifindex = iface.resolve()?;
    let (guard, expected_fd) = match expect {
        Expect::Nothing => (xdp_flags::UPDATE_IF_NOEXIST, None),
        Expect::Program(p) => (xdp_flags::REPLACE, Some(p.as_fd())),
        Expect::Anything => (0, None),
    };
    let flags = mode.flags() | guard;
    let r = netlink::set_xdp(ifindex, prog.map(|p| p.as_fd()), flags, expected_fd);
    let Err(source) = r else { return Ok(()) };
    let errno = source.source.raw_os_error();
    let now = query_index(ifindex).ok();
    let found = now
        .and_then(|q| q.program(mode))
        .map_or_else(|| "none".to_string(), |id| format!("program {id}"));
    Err(match (errno, expect) {
        (Some(libc::EEXIST), Expect::Program(p)) => {
            let expected = p.info().map(|i| i.id).ok();
            if expected.is_none() || now.and_then(|q| q.program(mode)) != expected {
                AttachError::ExpectedMismatch {
                    hook: "XDP".into(),
                    iface: iface.to_string(),
                    expected: expected.map_or_else(|| "?".into(), |id| format!("program {id}")),
                    found,
                }
            } else {
                hook_taken(iface, &source, now)
            }
        }
        (Some(libc::EBUSY) | Some(libc::EEXIST), _) => hook_taken(iface, &source, now),
        (Some(libc::ENODEV), _) => AttachError::UnknownInterface(format!("no interface {iface}")),
        _ => AttachError::Netlink {
            op: format!("XDP {what} on {iface} with netlink"),
            source,
        },
    })
}

fn hook_taken(iface: &Interface, source: &NetlinkError, now: Option<XdpQuery>) -> AttachError {
    let mut detail = source.to_string();
    if let Some(q) = now {
        detail = format!("{}: {detail}", q.describe());
    }
    AttachError::HookTaken {
        hook: "XDP".into(),
        iface: iface.to_string(),
        detail,
    }
}
