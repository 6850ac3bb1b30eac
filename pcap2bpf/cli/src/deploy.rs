//! Filters the CLI attaches: compiled for a hook, attached, and pinned
//! under `/sys/fs/bpf/pcap2bpf/<name>/` (the link, the program, a match
//! counter and a description) so they outlive the command.
//!
//! Attaching is all or nothing: if any step after the attachment fails,
//! the pins made so far are removed and the link is dropped, which
//! detaches the program again.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use bpf_builder::attach::tcx::{self, Place};
use bpf_builder::attach::xdp::{self, XdpMode};
use bpf_builder::attach::{AttachError, Interface, Link};
use bpf_builder::handle::Map;
use bpf_builder::kernel_id::{KernelLinkId, KernelProgId};
use bpf_builder::load::{LoadError, Loaded};
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgramType};
use bpf_builder::sys::bpf::LinkDetail;
use bpf_builder::sys::netns::if_indextoname;

use pcap2bpf::{
    CompileError, CompileOptions, EmitOptions, LinkType, Options, Resolver, Target, build_ir,
    lower_options, parse_with,
};
use pktmatch::{COUNTER_MATCHED, COUNTER_SEEN, ProgramOptions, add_program, counters_map};

/// Where attached filters are pinned.
pub const PIN_ROOT: &str = "/sys/fs/bpf/pcap2bpf";

/// The hook a filter runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// XDP on the device's receive path.
    Xdp,
    /// tcx ingress.
    TcxIngress,
    /// tcx egress.
    TcxEgress,
}

impl Hook {
    /// The name used on the command line and in `status`.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Xdp => "xdp",
            Hook::TcxIngress => "tcx-ingress",
            Hook::TcxEgress => "tcx-egress",
        }
    }

    fn from_name(s: &str) -> Option<Hook> {
        [Hook::Xdp, Hook::TcxIngress, Hook::TcxEgress]
            .into_iter()
            .find(|h| h.name() == s)
    }
}

/// What a filter does with the packets it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Drop matching packets, let the rest through.
    Drop,
    /// Let only matching packets through.
    Pass,
    /// Let everything through; only count matches.
    Count,
}

impl Action {
    /// The name used on the command line and in `status`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Drop => "drop",
            Action::Pass => "pass",
            Action::Count => "count",
        }
    }

    /// Return values on match and otherwise, for `hook`.
    fn verdicts(self, hook: Hook) -> (i32, i32) {
        // XDP: DROP = 1, PASS = 2. tcx: SHOT = 2, NEXT = -1 (let the rest
        // of the chain decide).
        let (pass, drop) = match hook {
            Hook::Xdp => (2, 1),
            Hook::TcxIngress | Hook::TcxEgress => (-1, 2),
        };
        match self {
            Action::Drop => (drop, pass),
            Action::Pass => (pass, drop),
            Action::Count => (pass, pass),
        }
    }
}

/// Where a tcx filter goes in the chain (XDP has one program per device).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// At the end.
    Last,
    /// At the head.
    First,
    /// Right before the filter (program) so named.
    Before(String),
    /// Right after the filter (program) so named.
    After(String),
}

/// A request to attach a filter.
pub struct Request<'a> {
    /// The device.
    pub iface: &'a str,
    /// The filter expression.
    pub expr: &'a str,
    /// The hook.
    pub hook: Hook,
    /// What to do with matches.
    pub action: Action,
    /// tcx placement.
    pub position: Position,
    /// Name of the filter: its pin directory and program name.
    pub name: &'a str,
    /// Name lookups of the expression.
    pub resolver: &'a dyn Resolver,
}

/// An attached filter, as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    /// Its name.
    pub name: String,
    /// The device, by name when it still exists.
    pub iface: String,
    /// The device is gone, and the filter with it (the kernel detached
    /// the link); `detach` removes what is left.
    pub device_gone: bool,
    /// The hook.
    pub hook: String,
    /// What it does with matches.
    pub action: String,
    /// The filter expression.
    pub expr: String,
    /// The kernel's program id (`None` when the link is gone or detached).
    pub prog_id: Option<KernelProgId>,
    /// The kernel's link id (`None` when the link is gone).
    pub link_id: Option<KernelLinkId>,
    /// Packets matched.
    pub matched: u64,
    /// Packets seen.
    pub seen: u64,
}

/// Why attaching, listing or detaching failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The expression does not compile.
    #[error("{0}")]
    Compile(#[from] CompileError),
    /// The kernel refused the program.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The attachment failed.
    #[error(transparent)]
    Attach(#[from] AttachError),
    /// The device refuses the XDP program at its MTU (`attach` then tries
    /// again with fragment support; this is what the last try said).
    #[error("{0}; the tcx-ingress hook (--hook tcx-ingress) takes frames of any size")]
    XdpMtu(AttachError),
    /// The device's packets start with a header we do not compile for.
    #[error(
        "{iface} has device type {device_type} (ARPHRD_*): only Ethernet, loopback and \
         IP-only devices (tun, WireGuard, IP tunnels) are supported"
    )]
    UnsupportedDevice {
        /// The device.
        iface: String,
        /// Its `ARPHRD_*` type.
        device_type: u16,
    },
    /// A name that cannot be a program name and a directory.
    #[error("invalid filter name {0:?}: use 1 to 15 characters of [A-Za-z0-9_]")]
    BadName(String),
    /// A filter of that name exists.
    #[error("a filter named {0:?} is already attached (see `pcap2bpf status`)")]
    Exists(String),
    /// No filter of that name.
    #[error("no filter named {0:?} is attached (see `pcap2bpf status`)")]
    NotFound(String),
    /// bpffs or pinning failed.
    #[error("{what}: {source}")]
    Pin {
        /// What was being done.
        what: String,
        /// The error.
        source: io::Error,
    },
}

fn pin_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> DeployError {
    let what = what.into();
    move |source| DeployError::Pin { what, source }
}

/// Checks a filter name.
pub fn check_name(name: &str) -> Result<(), DeployError> {
    let ok = (1..=15).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(DeployError::BadName(name.to_string()))
    }
}

/// Builds the filter program: the compiled expression, then a per-CPU
/// counter of `[matched, seen]`, then the verdict. `frags`: an XDP
/// program with fragment support (see [`EmitOptions::xdp_frags`]).
fn build(req: &Request<'_>, frags: bool) -> Result<(Object, MapId, MapId), DeployError> {
    let (target, prog_type) = match req.hook {
        Hook::Xdp => (Target::Xdp, ProgramType::Xdp),
        Hook::TcxIngress => (Target::Tc, ProgramType::TcxIngress),
        Hook::TcxEgress => (Target::Tc, ProgramType::TcxEgress),
    };
    let (on_match, on_nomatch) = req.action.verdicts(req.hook);
    let link = link_of_device(req.iface)?;
    let opts = CompileOptions::new(link, target, req.resolver)
        .verdicts(on_match, on_nomatch)
        .xdp_frags(frags);
    let filter = parse_with(req.expr, Options::new(link, req.resolver))?;
    let lower = lower_options(&opts).fixed_direction(match req.hook {
        Hook::Xdp | Hook::TcxIngress => Some(false),
        Hook::TcxEgress => Some(true),
    });
    let (ir, _) = build_ir(&filter, &lower)?;

    let mut object = Object::new();
    let stats = object
        .add_map(counters_map("stats"))
        .map_err(|e| CompileError::new(e.to_string(), Default::default()))?;
    let description = format!(
        "{}\n{}\n{}\n{}",
        req.iface,
        req.hook.name(),
        req.action.name(),
        req.expr.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    let meta = object
        .add_map(
            MapSpec::array("meta", description.len().max(1) as u32, 1)
                .with_bytes(0u32.to_ne_bytes(), description.into_bytes())
                .frozen(),
        )
        .map_err(|e| CompileError::new(e.to_string(), Default::default()))?;

    let program = ProgramOptions::new(
        EmitOptions::new(target).xdp_frags(frags),
        on_match,
        on_nomatch,
    )
    .name(req.name)
    .program_type(prog_type)
    .counters(stats);
    add_program(&mut object, &ir, req.expr, &program).map_err(CompileError::from)?;
    Ok((object, stats, meta))
}

/// What packets start with on `iface`, from its device type: XDP and tc
/// see the Ethernet header on Ethernet and loopback devices, and the IP
/// header on devices without a link layer (tun, WireGuard, IP tunnels),
/// which libpcap captures as raw IP.
fn link_of_device(iface: &str) -> Result<LinkType, DeployError> {
    match Interface::from(iface).device_type()? {
        libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => Ok(LinkType::En10mb),
        libc::ARPHRD_NONE | libc::ARPHRD_TUNNEL | libc::ARPHRD_TUNNEL6 | libc::ARPHRD_SIT => {
            Ok(LinkType::Raw)
        }
        other => Err(DeployError::UnsupportedDevice {
            iface: iface.to_string(),
            device_type: other,
        }),
    }
}

/// Builds and loads the filter, and attaches it to its hook.
fn load_and_attach(
    req: &Request<'_>,
    frags: bool,
) -> Result<(Loaded, Link, MapId, MapId), DeployError> {
    let (object, stats, meta) = build(req, frags)?;
    let loaded = object.load()?;
    let prog = loaded
        .program_by_name(req.name)
        .expect("the object has this program");
    let link = match req.hook {
        Hook::Xdp => xdp::attach(req.iface, prog, XdpMode::Auto).map_err(|e| match &e {
            AttachError::Sys { source, .. } if source.raw_os_error() == Some(libc::ERANGE) => {
                DeployError::XdpMtu(e)
            }
            _ => e.into(),
        })?,
        Hook::TcxIngress | Hook::TcxEgress => {
            let hook = if req.hook == Hook::TcxIngress {
                tcx::Hook::Ingress
            } else {
                tcx::Hook::Egress
            };
            let place = match &req.position {
                Position::Last => Place::Tail,
                Position::First => Place::Head,
                Position::Before(n) => Place::BeforeName(n.clone()),
                Position::After(n) => Place::AfterName(n.clone()),
            };
            tcx::attach_placed(req.iface, hook, prog, &place)?
        }
    };
    Ok((loaded, link, stats, meta))
}

/// Compiles, loads, attaches and pins a filter.
pub fn attach(req: &Request<'_>) -> Result<Attached, DeployError> {
    check_name(req.name)?;
    let dir = Path::new(PIN_ROOT).join(req.name);
    bpf_builder::sys::bpf::ensure_bpffs(Path::new("/sys/fs/bpf"))
        .map_err(pin_err("mounting bpffs on /sys/fs/bpf"))?;
    if dir.exists() {
        return Err(DeployError::Exists(req.name.to_string()));
    }
    // XDP first without fragment support (one program, no helper call per
    // frame); a device whose MTU needs it refuses that, and gets the
    // filter with it.
    let (loaded, link, stats, meta) = match load_and_attach(req, false) {
        Err(DeployError::XdpMtu(_)) => load_and_attach(req, true)?,
        r => r?,
    };
    let prog = loaded
        .program_by_name(req.name)
        .expect("the object has this program");
    // From here on a failure removes the pins; dropping `link` detaches.
    let pinned = (|| -> Result<(), DeployError> {
        fs::create_dir_all(&dir).map_err(pin_err(format!("creating {}", dir.display())))?;
        link.pin(dir.join("link"))?;
        prog.pin(dir.join("prog"))
            .map_err(pin_err("pinning the program"))?;
        loaded
            .map(stats)
            .pin(dir.join("stats"))
            .map_err(pin_err("pinning the counters"))?;
        loaded
            .map(meta)
            .pin(dir.join("meta"))
            .map_err(pin_err("pinning the description"))?;
        Ok(())
    })();
    if let Err(e) = pinned {
        let _ = remove_pins(&dir);
        return Err(e);
    }
    describe(&dir)
}

/// Every filter attached by `attach`, in name order.
pub fn status() -> Result<Vec<Attached>, DeployError> {
    let root = Path::new(PIN_ROOT);
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(pin_err(format!("reading {PIN_ROOT}"))(e)),
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    dirs.sort();
    let mut attached = Vec::with_capacity(dirs.len());
    for dir in &dirs {
        match describe(dir) {
            Ok(a) => attached.push(a),
            // Detached by another command while we listed: not an error.
            Err(_) if !dir.exists() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(attached)
}

/// Reads a filter's pins.
fn describe(dir: &Path) -> Result<Attached, DeployError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let meta = Map::from_pin(dir.join("meta")).map_err(pin_err(format!(
        // The name of a pin directory is anyone's who may write there.
        "opening {}",
        pcap2bpf::text::escape(&dir.display().to_string())
    )))?;
    let text = meta
        .lookup(&0u32.to_ne_bytes())
        .ok()
        .flatten()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default();
    let mut lines = text.splitn(4, '\n');
    let mut next = || lines.next().unwrap_or("").to_string();
    let (iface, hook, action, expr) = (next(), next(), next(), next());
    let stats = Map::from_pin(dir.join("stats")).map_err(pin_err("opening the counters"))?;
    let matched = stats
        .sum_u64(&COUNTER_MATCHED.to_ne_bytes(), 0)
        .unwrap_or(0);
    let seen = stats.sum_u64(&COUNTER_SEEN.to_ne_bytes(), 0).unwrap_or(0);
    let (link_id, prog_id, iface, device_gone) =
        match Link::from_pin(dir.join("link")).and_then(|l| l.info()) {
            Ok(info) => {
                // A link whose device went away reports ifindex 0.
                let ifindex = match info.detail {
                    LinkDetail::Xdp { ifindex } | LinkDetail::Tcx { ifindex, .. } => ifindex,
                    _ => 0,
                };
                match if_indextoname(ifindex) {
                    Ok(name) => (Some(info.id), info.prog_id, name, false),
                    Err(_) => (Some(info.id), info.prog_id, iface, true),
                }
            }
            Err(_) => (None, None, iface, true),
        };
    Ok(Attached {
        name,
        iface,
        device_gone,
        hook: Hook::from_name(&hook).map_or(hook, |h| h.name().to_string()),
        action,
        expr,
        prog_id,
        link_id,
        matched,
        seen,
    })
}

/// Detaches the filter `name` and removes its pins.
pub fn detach(name: &str) -> Result<(), DeployError> {
    check_name(name)?;
    let dir = Path::new(PIN_ROOT).join(name);
    if !dir.exists() {
        return Err(DeployError::NotFound(name.to_string()));
    }
    // Detach explicitly, so the program stops even if someone else still
    // holds the link; then drop the pins.
    if let Ok(link) = Link::from_pin(dir.join("link")) {
        link.detach()?;
    }
    remove_pins(&dir).map_err(pin_err(format!("removing {}", dir.display())))
}

/// Removes a filter's pin directory, and [`PIN_ROOT`] too when that was
/// the last filter, so that nothing of ours stays behind.
fn remove_pins(dir: &Path) -> io::Result<()> {
    fs::remove_dir_all(dir)?;
    // Fails (and is meant to) while other filters are pinned there.
    let _ = fs::remove_dir(PIN_ROOT);
    Ok(())
}
