//! Filters the CLI attaches: compiled for a hook, attached, and pinned
//! under `/sys/fs/bpf/pcap2bpf/<name>/` (a description, a match counter,
//! the program and the link, pinned in that order) so they outlive the
//! command.
//!
//! Each filter is a unit of [`bpf_builder::pins`]: attaching and
//! detaching run under the pin directory's lock, a filter's pins appear
//! whole (pinned under a staging name, then renamed into place) and go
//! away whole, and a concurrent `attach` of the same name fails cleanly.
//! If any step after the attachment fails, the pins made so far are
//! removed and the link is dropped, which detaches the program again. What
//! a killed command left behind is reported by [`list`] and removed by
//! [`detach`] and [`detach_all`]; entries that are not filters are
//! reported and left alone. The pin directory is refused unless only its
//! owner (root) controls it. The link is pinned last: an `attach` killed
//! before that leaves no filter running (the link goes with the process),
//! and one killed after it leaves a filter that [`list`] reports with its
//! link and device.
//!
//! A device is named by its index only within a network namespace: the
//! description records the namespace the filter was attached in, and
//! [`list`] names the device as that namespace does, entering it when it
//! is not the caller's ([`NetnsFile::find`]), or says that it cannot
//! ([`DeviceNetns`]).
//!
//! An XDP filter may share its device with other XDP programs through a
//! dispatcher in libxdp's protocol ([`bpf_builder::attach::dispatcher`]):
//! [`attach`] joins the device's dispatcher when it has one (ours or
//! libxdp's, `xdp-loader`'s), or when asked to ([`Request::share`]),
//! and otherwise attaches the filter alone with a link of its own. A
//! member's link is the dispatcher's (pinned by it in libxdp's layout,
//! under `/sys/fs/bpf/xdp/dispatch-IFINDEX-ID/`), so its unit has no
//! `link`: its description records that it is a member, and of which
//! device, and [`list`] reads the dispatcher for its place in the chain.
//! A member that someone else removed from the dispatcher (or whose
//! device went away) is reported as such ([`Membership::Gone`]), and
//! [`detach`] then removes its pins; otherwise [`detach`] makes it leave
//! the dispatcher first (which goes away with its last member). A
//! member's program is pinned first, then the description: an `attach`
//! that fails after joining leaves the dispatcher again, and one killed
//! after joining leaves a staging unit that [`detach`] and
//! [`detach_all`] make leave once it holds both (killed between the join
//! and those two pins, the member stays in the dispatcher, named as the
//! filter, for `xdp-loader unload` to remove).
//!
//! Two environment variables are for tests: `PCAP2BPF_PIN_ROOT` replaces
//! [`PIN_ROOT`], and `PCAP2BPF_PIN_FAULT` (`pin:N` or `unlink:N`) stops
//! the command after the Nth pin made or removed, as `kill -9` would.

use std::path::PathBuf;

use bpf_builder::attach::dispatcher::{
    self, Anchor, Chain, DispatcherError, JoinOptions, Joined, Placement,
};
use bpf_builder::attach::tcx::{self, Place};
use bpf_builder::attach::xdp::{self, XdpMode};
use bpf_builder::attach::{AttachError, Interface, Link};
use bpf_builder::bpffs::{self, BPFFS};
use bpf_builder::ctx::{TcxAction, XdpAction};
use bpf_builder::kernel_id::{KernelLinkId, KernelProgId};
use bpf_builder::load::{LoadError, Loaded};
use bpf_builder::map::MapSpec;
use bpf_builder::object::{MapId, Object, ProgId, ProgramType};
use bpf_builder::pins::{Fault, Locked, PinError, PinRoot, Unit};
use bpf_builder::sys::bpf::LinkDetail;
use bpf_builder::sys::netns::{NetnsFile, NetnsId, if_indextoname};

use pcap2bpf::{
    CompileError, CompileOptions, EmitOptions, LinkType, Options, Resolver, Target, build_ir,
    lower_options, parse_with,
};
use pktmatch::{COUNTER_MATCHED, COUNTER_SEEN, ProgramOptions, add_program, counters_map};

/// Where attached filters are pinned.
pub const PIN_ROOT: &str = "/sys/fs/bpf/pcap2bpf";

/// The pins of a filter, in its directory, in the order `attach` pins
/// them: the link last, so that a filter runs beyond the command only
/// once everything else is pinned. A filter in an XDP dispatcher has no
/// link of its own (see the module docs).
const MEMBERS: &[&str] = &["meta", "stats", "prog", "link"];

/// The members a filter in an XDP dispatcher lacks.
const OPTIONAL: &[&str] = &["link"];

/// What the sixth line of a member's description starts with (the
/// device's index follows).
const MEMBER_MARK: &str = "xdp-dispatcher-member";

/// Where attached filters are pinned: [`PIN_ROOT`], or
/// `$PCAP2BPF_PIN_ROOT` (for tests).
pub fn pin_root() -> PathBuf {
    std::env::var_os("PCAP2BPF_PIN_ROOT")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(PIN_ROOT), PathBuf::from)
}

/// Opens the pin directory (creating it when `create`), with the test
/// hook of `$PCAP2BPF_PIN_FAULT`; `None` when there is none.
fn open_root(create: bool) -> Result<Option<PinRoot>, DeployError> {
    let path = pin_root();
    let mut root = if create {
        // A bpffs mounted in a mount namespace of the command's own goes
        // away with it, and the filter with its pins.
        bpffs::lasting_bpffs(&path)?;
        Some(PinRoot::create(&path, MEMBERS)?)
    } else {
        PinRoot::open(&path, MEMBERS)?
    };
    if let Some(root) = &mut root {
        root.set_optional(OPTIONAL)?;
        let fault = std::env::var("PCAP2BPF_PIN_FAULT").ok();
        root.set_fault(fault.as_deref().and_then(Fault::parse));
    }
    Ok(root)
}

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
        // tcx: NEXT lets the rest of the chain decide.
        let (pass, drop) = match hook {
            Hook::Xdp => (XdpAction::Pass.value(), XdpAction::Drop.value()),
            Hook::TcxIngress | Hook::TcxEgress => {
                (TcxAction::Next.value(), TcxAction::Drop.value())
            }
        };
        match self {
            Action::Drop => (drop, pass),
            Action::Pass => (pass, drop),
            Action::Count => (pass, pass),
        }
    }
}

/// Where a filter goes in a tcx chain, or in an XDP dispatcher.
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
    /// XDP dispatchers only: by run priority, as libxdp places programs
    /// (after every program of a lower or equal priority).
    Priority(u32),
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
    /// Placement in a tcx chain or an XDP dispatcher.
    pub position: Position,
    /// XDP: join the device's dispatcher, creating one when the device
    /// has no XDP program (without it, a filter joins only a dispatcher
    /// that is there, and otherwise attaches alone).
    pub share: bool,
    /// Name of the filter: its pin directory and program name.
    pub name: &'a str,
    /// Name lookups of the expression.
    pub resolver: &'a dyn Resolver,
    /// The IPv6 extension-header walk mode
    /// ([`CompileOptions::ipv6_ext_headers`]).
    pub ipv6_ext_headers: bool,
    /// The VLAN look-through mode ([`CompileOptions::vlan_any`]).
    pub vlan_any: bool,
}

/// Which network namespace a filter's device is in, seen from the one
/// the caller runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceNetns {
    /// The caller's.
    Here,
    /// Another one, entered to read the device's name there; `name` is
    /// its name for `ip netns`, if it has one.
    Other {
        /// The namespace.
        id: NetnsId,
        /// Its `ip netns` name.
        name: Option<String>,
    },
    /// Another one, which the caller cannot enter: no `ip netns` name and
    /// no process is in it, or entering failed (`why`). The device is
    /// `ifindex` there; [`Attached::iface`] is the name it was attached
    /// by.
    Unreachable {
        /// The namespace.
        id: NetnsId,
        /// The device's index there.
        ifindex: u32,
        /// Why it cannot be entered.
        why: String,
    },
    /// Not recorded (pinned by an older pcap2bpf): the device was looked
    /// up in the caller's namespace.
    Unknown,
}

/// An attached filter, as `status` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    /// Its name.
    pub name: String,
    /// The device, by name in its namespace when it still exists (else
    /// the name it was attached by).
    pub iface: String,
    /// The namespace of the device.
    pub netns: DeviceNetns,
    /// The device is gone, and the filter with it (the kernel detached
    /// the link); `detach` removes what is left.
    pub device_gone: bool,
    /// The hook.
    pub hook: String,
    /// What it does with matches.
    pub action: String,
    /// The filter expression.
    pub expr: String,
    /// The kernel's program id (`None` when the link is gone or detached,
    /// or the filter is no longer in its dispatcher).
    pub prog_id: Option<KernelProgId>,
    /// The kernel's link id (`None` when the link is gone, and for a
    /// member of a dispatcher, which has no link of its own).
    pub link_id: Option<KernelLinkId>,
    /// For a filter that shares XDP through a dispatcher: how it stands
    /// there.
    pub member: Option<Membership>,
    /// Packets matched.
    pub matched: u64,
    /// Packets seen.
    pub seen: u64,
}

/// How a filter that joined an XDP dispatcher stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Membership {
    /// It runs in the dispatcher: the dispatcher's chain, in run order.
    Running(Chain),
    /// It is no longer in its device's dispatcher (someone removed it,
    /// or the device is gone): why, as a phrase. `detach` removes its
    /// pins.
    Gone(String),
    /// Its device's hook cannot be read (its network namespace cannot be
    /// entered, a dispatcher of another protocol version): why.
    Unknown(String),
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
    /// Joining the device's XDP dispatcher failed.
    #[error(transparent)]
    Dispatcher(DispatcherError),
    /// The kernel refuses extension programs (`BPF_PROG_TYPE_EXT`), which
    /// a member of a dispatcher is, although it loaded the same filter
    /// as an XDP program.
    #[error(
        "{0}\nnot for want of privilege, though: the same filter loaded as a plain XDP \
         program; this kernel refuses extension programs (BPF_PROG_TYPE_EXT, freplace), \
         which sharing XDP through a dispatcher needs: attach it without --share (alone on \
         the device), or on tcx (--hook tcx-ingress), whose chains are shared as they are"
    )]
    NoExtensions(LoadError),
    /// A filter's dispatcher membership cannot be read or changed.
    #[error("filter {name:?}: {why}")]
    Member {
        /// The filter.
        name: String,
        /// What went wrong.
        why: String,
    },
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
        source: std::io::Error,
    },
    /// bpffs is not mounted, and a mount made here would not outlive the
    /// command; or mounting it failed.
    #[error(transparent)]
    Bpffs(#[from] bpffs::BpffsError),
    /// The pin directory is refused, or one of its entries is not a
    /// filter, or pinning failed.
    #[error(transparent)]
    Pins(PinError),
}

impl From<PinError> for DeployError {
    fn from(e: PinError) -> DeployError {
        match e {
            PinError::Exists { name, .. } => DeployError::Exists(name),
            PinError::NotFound { name, .. } => DeployError::NotFound(name),
            e => DeployError::Pins(e),
        }
    }
}

impl From<DispatcherError> for DeployError {
    fn from(e: DispatcherError) -> DeployError {
        match e {
            DispatcherError::Load(e) => DeployError::Load(e),
            DispatcherError::Attach(e) => DeployError::Attach(e),
            e => DeployError::Dispatcher(e),
        }
    }
}

fn pin_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DeployError {
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
/// `member_of`: the index of the device whose XDP dispatcher it joins,
/// for the description.
fn build(
    req: &Request<'_>,
    frags: bool,
    member_of: Option<u32>,
) -> Result<(Object, ProgId, MapId, MapId), DeployError> {
    let (target, prog_type) = match req.hook {
        Hook::Xdp => (Target::Xdp, ProgramType::Xdp),
        Hook::TcxIngress => (Target::Tc, ProgramType::TcxIngress),
        Hook::TcxEgress => (Target::Tc, ProgramType::TcxEgress),
    };
    let (on_match, on_nomatch) = req.action.verdicts(req.hook);
    let link = link_of_device(req.iface)?;
    let opts = CompileOptions::new(link, target, req.resolver)
        .verdicts(on_match, on_nomatch)
        .xdp_frags(frags)
        .ipv6_ext_headers(req.ipv6_ext_headers)
        .vlan_any(req.vlan_any);
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
    // The namespace the device's name and index belong to: `status`
    // resolves the link's ifindex there. The expression's words are
    // joined by single spaces, so it stays one line.
    let netns = NetnsId::current().map_or_else(|_| String::new(), record_netns);
    let mut description = format!(
        "{}\n{}\n{}\n{}\n{}",
        req.iface,
        req.hook.name(),
        req.action.name(),
        req.expr.split_whitespace().collect::<Vec<_>>().join(" "),
        netns
    );
    if let Some(ifindex) = member_of {
        description += &format!("\n{MEMBER_MARK} {ifindex}");
    }
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
    let prog = add_program(&mut object, &ir, req.expr, &program).map_err(CompileError::from)?;
    Ok((object, prog, stats, meta))
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
fn load(req: &Request<'_>, frags: bool) -> Result<(Loaded, MapId, MapId), DeployError> {
    let (object, _, stats, meta) = build(req, frags, None)?;
    Ok((object.load()?, stats, meta))
}

/// Whether an attach error is the device refusing an XDP program without
/// fragment support at its MTU.
fn is_mtu_refusal(e: &AttachError) -> bool {
    matches!(e, AttachError::Sys { source, .. } if source.raw_os_error() == Some(libc::ERANGE))
}

/// Attaches the loaded filter where `req` says.
fn attach_loaded(req: &Request<'_>, loaded: &Loaded) -> Result<Link, DeployError> {
    let prog = loaded
        .program_by_name(req.name)
        .expect("the object has this program");
    let link = match req.hook {
        Hook::Xdp => xdp::attach(req.iface, prog, XdpMode::Auto).map_err(|e| {
            if is_mtu_refusal(&e) {
                DeployError::XdpMtu(e)
            } else {
                e.into()
            }
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
                Position::Priority(_) => {
                    return Err(DeployError::Member {
                        name: req.name.to_string(),
                        why: "a run priority places XDP filters in a dispatcher; tcx \
                              chains are ordered by --first, --before and --after"
                            .into(),
                    });
                }
            };
            tcx::attach_placed(req.iface, hook, prog, &place)?
        }
    };
    Ok(link)
}

/// Compiles, loads, attaches and pins a filter.
pub fn attach(req: &Request<'_>) -> Result<Attached, DeployError> {
    check_name(req.name)?;
    // Loading changes nothing outside this process: done first, so that a
    // user without the privilege hears which capability is missing.
    let (mut loaded, mut stats, mut meta) = load(req, false)?;
    let mut root = open_root(true)?.expect("created");
    // Held until the filter is pinned whole (or not at all): another
    // `attach` of the name waits, then finds it.
    let locked = root.lock()?;
    if locked.exists(req.name)? {
        return Err(DeployError::Exists(req.name.to_string()));
    }
    if req.hook == Hook::Xdp && joins_dispatcher(req)? {
        drop(loaded);
        return attach_member(req, &locked);
    }
    // XDP first without fragment support (one program, no helper call per
    // frame); a device whose MTU needs it refuses that, and gets the
    // filter with it.
    let link = match attach_loaded(req, &loaded) {
        Err(DeployError::XdpMtu(_)) => {
            (loaded, stats, meta) = load(req, true)?;
            attach_loaded(req, &loaded)?
        }
        r => r?,
    };
    let prog = loaded
        .program_by_name(req.name)
        .expect("the object has this program");
    // From here on a failure removes the staged pins (dropping the
    // staging), and dropping `link` detaches. The link is pinned last
    // (see the module docs).
    let mut unit = locked.stage(req.name)?;
    unit.pin("meta", loaded.map(meta))?;
    unit.pin("stats", loaded.map(stats))?;
    unit.pin("prog", prog)?;
    unit.pin("link", &link)?;
    unit.commit()?;
    describe(&locked.unit(req.name)?)
}

/// Whether the XDP filter `req` joins its device's dispatcher: when
/// asked to, or when the device has one.
fn joins_dispatcher(req: &Request<'_>) -> Result<bool, DeployError> {
    if req.share {
        return Ok(true);
    }
    match dispatcher::query(req.iface)? {
        dispatcher::Hook::Dispatcher(_) => Ok(true),
        dispatcher::Hook::Empty | dispatcher::Hook::Foreign(_) => Ok(false),
    }
}

/// Where `position` puts a program in a dispatcher.
fn placement(position: &Position) -> Placement {
    match position {
        Position::Last => Placement::Last,
        Position::First => Placement::First,
        Position::Before(n) => Placement::Before(Anchor::Name(n.clone())),
        Position::After(n) => Placement::After(Anchor::Name(n.clone())),
        Position::Priority(p) => Placement::Priority(*p),
    }
}

/// Joins the XDP filter `req` to its device's dispatcher and pins it
/// (its program, its description, its counters: no link). A failure
/// after the join leaves the dispatcher again.
fn attach_member(req: &Request<'_>, locked: &Locked<'_>) -> Result<Attached, DeployError> {
    let ifindex = Interface::from(req.iface).resolve()?;
    let opts = JoinOptions::new().placement(placement(&req.position));
    let join = |frags: bool| -> Result<(Joined, MapId, MapId), DeployError> {
        let (object, prog, stats, meta) = build(req, frags, Some(ifindex))?;
        let joined = dispatcher::join(req.iface, &object, prog, &opts).map_err(|e| match e {
            // The caller loaded the filter as XDP: privileges are not
            // what is missing.
            DispatcherError::Load(e) if e.missing_privilege().is_some() => {
                DeployError::NoExtensions(e)
            }
            DispatcherError::Attach(e @ AttachError::HookTaken { .. }) => {
                taken_by_ours(locked, req.iface, req.name, e)
            }
            e => e.into(),
        })?;
        Ok((joined, stats, meta))
    };
    // As alone: first without fragment support (see `attach`).
    let (joined, stats, meta) = match join(false) {
        Err(DeployError::Attach(e)) if is_mtu_refusal(&e) => join(true).map_err(|e| match e {
            DeployError::Attach(e) if is_mtu_refusal(&e) => DeployError::XdpMtu(e),
            e => e,
        })?,
        r => r?,
    };
    let pinned = (|| -> Result<(), DeployError> {
        let prog = joined
            .loaded
            .program_by_name(req.name)
            .expect("the object has this program");
        let mut unit = locked.stage(req.name)?;
        // The program first: with it and the description pinned, a
        // killed command's staging unit says what to make leave.
        unit.pin("prog", prog)?;
        unit.pin("meta", joined.loaded.map(meta))?;
        unit.pin("stats", joined.loaded.map(stats))?;
        unit.commit()?;
        Ok(())
    })();
    if let Err(e) = pinned {
        return Err(match dispatcher::leave(req.iface, joined.id, None) {
            Ok(_) => e,
            Err(left) => DeployError::Member {
                name: req.name.to_string(),
                why: format!(
                    "{e}; and leaving the dispatcher of {} again failed ({left}): its \
                     program {} stays there",
                    pcap2bpf::text::escape(req.iface),
                    joined.id
                ),
            },
        });
    }
    describe(&locked.unit(req.name)?)
}

/// The error of the join of filter `joining`, refused because a program
/// that is not a dispatcher holds the device, saying so when it is one of
/// our filters attached alone.
fn taken_by_ours(locked: &Locked<'_>, iface: &str, joining: &str, e: AttachError) -> DeployError {
    let Ok(dispatcher::Hook::Foreign(f)) = dispatcher::query(iface) else {
        return e.into();
    };
    let ours = locked.scan().ok().and_then(|scan| {
        scan.units
            .into_iter()
            .find(|n| locked.unit(n).ok().and_then(|u| prog_id(&u)) == Some(f.id))
    });
    match ours {
        Some(name) => DeployError::Member {
            name: joining.to_string(),
            why: format!(
                "{e}\nit is the pcap2bpf filter {name:?}, attached alone: detach it and attach \
                 it again with --share to share the device"
            ),
        },
        None => e.into(),
    }
}

/// What [`list`] found: the filters, and notes on what else is in the pin
/// directory (filters half made or half removed by a command that was
/// killed, entries that are not filters).
#[derive(Debug, Default)]
pub struct Listing {
    /// Every attached filter, in name order.
    pub attached: Vec<Attached>,
    /// One line per thing that is not a whole filter.
    pub notes: Vec<String>,
}

/// Every filter attached by `attach`, in name order.
pub fn status() -> Result<Vec<Attached>, DeployError> {
    list().map(|l| l.attached)
}

/// Every filter attached by `attach`, with notes on the rest (see
/// [`Listing`]). Changes nothing.
pub fn list() -> Result<Listing, DeployError> {
    let Some(mut root) = open_root(false)? else {
        let mut listing = Listing::default();
        if bpffs::hides_system_pins(&pin_root()) {
            listing.notes.push(format!(
                "{BPFFS} is not a bpf filesystem here (as under `ip netns exec`): filters \
                 pinned in the system's bpffs are not visible"
            ));
        }
        return Ok(listing);
    };
    let locked = root.lock()?;
    let scan = locked.scan()?;
    let mut listing = Listing::default();
    for name in &scan.units {
        let unit = locked.unit(name)?;
        match lacks_its_link(&unit) {
            Some(note) => listing.notes.push(note),
            None => listing.attached.push(describe(&unit)?),
        }
    }
    for half in &scan.half_made {
        let running = locked
            .open_half(half)
            .map_or_else(|e| format!("cannot tell what runs ({e})"), |u| running(&u));
        let remove = if check_name(&half.name).is_ok() {
            format!("`pcap2bpf detach {}` or `detach --all`", half.name)
        } else {
            "`pcap2bpf detach --all`".to_string()
        };
        listing
            .notes
            .push(format!("{half}: {running}; {remove} removes it"));
    }
    for stray in &scan.strays {
        listing
            .notes
            .push(format!("{}/{stray}", locked.root().path().display()));
    }
    Ok(listing)
}

/// A note on a filter attached alone whose link pin is gone (removed by
/// hand: `attach` pins it before the unit appears), as on a half-made
/// one; `None` for any other filter.
fn lacks_its_link(unit: &Unit<'_>) -> Option<String> {
    if description(unit).is_ok_and(|d| d.member_of.is_some()) {
        return None;
    }
    match unit.get("link", 0) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        _ => return None,
    }
    Some(format!(
        "{} is missing link (it holds meta, stats, prog): no link of it is attached; \
         `pcap2bpf detach {}` or `detach --all` removes it",
        pcap2bpf::text::escape(unit.name()),
        pcap2bpf::text::escape(unit.name())
    ))
}

/// How the description records a namespace: `DEV:INO` of its nsfs file.
fn record_netns(n: NetnsId) -> String {
    format!("{}:{}", n.dev(), n.ino())
}

/// Reads back what [`record_netns`] wrote.
fn parse_netns(s: &str) -> Option<NetnsId> {
    let (dev, ino) = s.split_once(':')?;
    Some(NetnsId::from_raw(dev.parse().ok()?, ino.parse().ok()?))
}

/// What the `meta` pin of a unit says: device, hook, action, expression,
/// the namespace of the device, and for a member of an XDP dispatcher
/// the device's index (empty strings and `None` for what it lacks).
struct Description {
    iface: String,
    hook: String,
    action: String,
    expr: String,
    netns: Option<NetnsId>,
    member_of: Option<u32>,
}

fn description(unit: &Unit<'_>) -> Result<Description, DeployError> {
    // The name of a pin directory is anyone's who may write there.
    let meta = unit.map("meta").map_err(pin_err(format!(
        "opening {}",
        pcap2bpf::text::escape(&unit.path().display().to_string())
    )))?;
    let text = meta
        .lookup(&0u32.to_ne_bytes())
        .ok()
        .flatten()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_default();
    let mut lines = text.splitn(6, '\n');
    let mut next = || lines.next().unwrap_or("").to_string();
    Ok(Description {
        iface: next(),
        hook: next(),
        action: next(),
        expr: next(),
        netns: parse_netns(&next()),
        member_of: next()
            .strip_prefix(MEMBER_MARK)
            .and_then(|i| i.trim().parse().ok()),
    })
}

/// The device of a link: its name in the namespace `recorded` (where the
/// filter was attached), that namespace as seen from here, and whether
/// the device is gone. `given` is the name it was attached by, said when
/// nothing better is known.
fn device(ifindex: u32, recorded: Option<NetnsId>, given: &str) -> (String, DeviceNetns, bool) {
    let here = NetnsId::current().ok();
    // A link whose device went away reports ifindex 0.
    if ifindex == 0 {
        let netns = match recorded {
            None => DeviceNetns::Unknown,
            Some(id) if Some(id) == here => DeviceNetns::Here,
            Some(id) => DeviceNetns::Other {
                id,
                name: NetnsFile::find(id).and_then(|ns| ns.name().map(str::to_string)),
            },
        };
        return (given.to_string(), netns, true);
    }
    let name_here = || if_indextoname(ifindex).ok();
    match recorded {
        None => match name_here() {
            Some(name) => (name, DeviceNetns::Unknown, false),
            None => (given.to_string(), DeviceNetns::Unknown, true),
        },
        Some(id) if Some(id) == here => match name_here() {
            Some(name) => (name, DeviceNetns::Here, false),
            None => (given.to_string(), DeviceNetns::Here, true),
        },
        Some(id) => {
            let unreachable = |why: String| {
                (
                    given.to_string(),
                    DeviceNetns::Unreachable { id, ifindex, why },
                    false,
                )
            };
            let Some(ns) = NetnsFile::find(id) else {
                return unreachable(
                    "it has no `ip netns` name and no process is in it".to_string(),
                );
            };
            match ns.run(|| if_indextoname(ifindex)) {
                Ok(Ok(name)) => (
                    name,
                    DeviceNetns::Other {
                        id,
                        name: ns.name().map(str::to_string),
                    },
                    false,
                ),
                Ok(Err(_)) => (
                    given.to_string(),
                    DeviceNetns::Other {
                        id,
                        name: ns.name().map(str::to_string),
                    },
                    true,
                ),
                Err(e) => unreachable(format!("cannot enter it: {e}")),
            }
        }
    }
}

/// The device's name with where it is, as the notes of [`list`] say it.
pub fn device_text(iface: &str, netns: &DeviceNetns) -> String {
    let iface = pcap2bpf::text::escape(iface);
    match netns {
        DeviceNetns::Here | DeviceNetns::Unknown => iface.into_owned(),
        DeviceNetns::Other { name: Some(n), .. } => {
            format!("{iface} in network namespace {}", pcap2bpf::text::escape(n))
        }
        DeviceNetns::Other { id, name: None } => format!("{iface} in network namespace {id}"),
        DeviceNetns::Unreachable { id, ifindex, why } => format!(
            "(ifindex {ifindex} in network namespace {id}, not this one; {why}; it was \
             attached as {iface})"
        ),
    }
}

/// What of a half-made filter runs: its link, if it holds one, and where;
/// for a member of a dispatcher, whether its program is there.
fn running(unit: &Unit<'_>) -> String {
    if let Ok(d) = description(unit)
        && let Some(ifindex) = d.member_of
    {
        let Some(prog) = prog_id(unit) else {
            return "its program is not pinned: what runs cannot be told".to_string();
        };
        let (iface, netns, _) = device(ifindex, d.netns, &d.iface);
        return match membership(&d, ifindex, prog) {
            Membership::Running(c) => format!(
                "its program {prog} runs in the XDP dispatcher (program {}) of {}",
                c.dispatcher,
                device_text(&iface, &netns)
            ),
            Membership::Gone(why) => format!("its program {prog} is in no dispatcher ({why})"),
            Membership::Unknown(why) => {
                format!("cannot tell whether its program {prog} runs ({why})")
            }
        };
    }
    let Ok(info) = unit.link("link").and_then(|l| l.info()) else {
        return "no link of it is attached".to_string();
    };
    let ifindex = match info.detail {
        LinkDetail::Xdp { ifindex } | LinkDetail::Tcx { ifindex, .. } => ifindex,
        _ => 0,
    };
    if ifindex == 0 {
        return format!("its link {} is detached", info.id);
    }
    let d = description(unit).ok();
    let given = d.as_ref().map_or("", |d| d.iface.as_str());
    let (iface, netns, gone) = device(ifindex, d.as_ref().and_then(|d| d.netns), given);
    let hook = d
        .as_ref()
        .map(|d| format!(" ({})", pcap2bpf::text::escape(&d.hook)))
        .unwrap_or_default();
    if gone {
        return format!("its link {} is attached to a device that is gone", info.id);
    }
    format!(
        "its link {} (program {}) is attached to {}{hook}",
        info.id,
        info.prog_id
            .map_or_else(|| "-".to_string(), |p| p.to_string()),
        device_text(&iface, &netns)
    )
}

/// The id of the program a unit pins.
fn prog_id(unit: &Unit<'_>) -> Option<KernelProgId> {
    unit.program("prog").and_then(|p| p.id()).ok()
}

/// Runs `f` in the network namespace `recorded` (on a thread that enters
/// it, unless it is the caller's or unknown); `Err` says why it cannot.
fn in_netns<T: Send>(recorded: Option<NetnsId>, f: impl FnOnce() -> T + Send) -> Result<T, String> {
    let Some(id) = recorded.filter(|&id| NetnsId::current().ok() != Some(id)) else {
        return Ok(f());
    };
    let ns = NetnsFile::find(id).ok_or_else(|| {
        format!("its network namespace {id} has no `ip netns` name and no process is in it")
    })?;
    ns.run(f)
        .map_err(|e| format!("cannot enter its network namespace {id}: {e}"))
}

/// How the member `prog` of the dispatcher of device `ifindex` (in the
/// namespace `d` records) stands.
fn membership(d: &Description, ifindex: u32, prog: KernelProgId) -> Membership {
    match in_netns(d.netns, || dispatcher::query(ifindex)) {
        Err(why) => Membership::Unknown(why),
        Ok(Err(AttachError::UnknownInterface(_))) => Membership::Gone("the device is gone".into()),
        Ok(Err(e)) => Membership::Unknown(format!("reading the XDP hook: {e}")),
        Ok(Ok(dispatcher::Hook::Dispatcher(c))) if c.members.iter().any(|m| m.id == prog) => {
            Membership::Running(c)
        }
        Ok(Ok(dispatcher::Hook::Dispatcher(c))) => Membership::Gone(format!(
            "someone removed it: the device's dispatcher (program {}) runs {}",
            c.dispatcher,
            c.names()
                .iter()
                .map(|n| pcap2bpf::text::escape(n).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Ok(Ok(dispatcher::Hook::Empty)) => {
            Membership::Gone("someone removed it: the device has no XDP program".into())
        }
        Ok(Ok(dispatcher::Hook::Foreign(f))) => {
            Membership::Gone(format!("someone removed it: the device runs {f}"))
        }
    }
}

/// Reads a filter's pins.
fn describe(unit: &Unit<'_>) -> Result<Attached, DeployError> {
    let name = unit.name().to_string();
    let d = description(unit)?;
    if let Some(ifindex) = d.member_of {
        return describe_member(unit, d, ifindex);
    }
    let Description {
        iface,
        hook,
        action,
        expr,
        netns: recorded,
        member_of: _,
    } = d;
    let (matched, seen) = counters(unit)?;
    let (link_id, prog_id, iface, netns, device_gone) =
        match unit.link("link").and_then(|l| l.info()) {
            Ok(info) => {
                let ifindex = match info.detail {
                    LinkDetail::Xdp { ifindex } | LinkDetail::Tcx { ifindex, .. } => ifindex,
                    _ => 0,
                };
                let (iface, netns, gone) = device(ifindex, recorded, &iface);
                (Some(info.id), info.prog_id, iface, netns, gone)
            }
            Err(_) => (None, None, iface, DeviceNetns::Here, true),
        };
    Ok(Attached {
        name,
        iface,
        netns,
        device_gone,
        hook: Hook::from_name(&hook).map_or(hook, |h| h.name().to_string()),
        action,
        expr,
        prog_id,
        link_id,
        matched,
        seen,
        member: None,
    })
}

/// The counters of a unit: (matched, seen).
fn counters(unit: &Unit<'_>) -> Result<(u64, u64), DeployError> {
    let stats = unit.map("stats").map_err(pin_err("opening the counters"))?;
    let matched = stats
        .sum_u64(&COUNTER_MATCHED.to_ne_bytes(), 0)
        .unwrap_or(0);
    let seen = stats.sum_u64(&COUNTER_SEEN.to_ne_bytes(), 0).unwrap_or(0);
    Ok((matched, seen))
}

/// Reads the pins of a filter in the dispatcher of device `ifindex`, and
/// the dispatcher.
fn describe_member(unit: &Unit<'_>, d: Description, ifindex: u32) -> Result<Attached, DeployError> {
    let (matched, seen) = counters(unit)?;
    let (iface, netns, device_gone) = device(ifindex, d.netns, &d.iface);
    let member = match prog_id(unit) {
        None => Membership::Unknown("its program pin cannot be read".into()),
        Some(_) if device_gone => Membership::Gone("the device is gone".into()),
        Some(prog) => membership(&d, ifindex, prog),
    };
    let prog_id = match &member {
        Membership::Running(_) => prog_id(unit),
        _ => None,
    };
    Ok(Attached {
        name: unit.name().to_string(),
        iface,
        netns,
        device_gone,
        hook: Hook::from_name(&d.hook).map_or(d.hook, |h| h.name().to_string()),
        action: d.action,
        expr: d.expr,
        prog_id,
        link_id: None,
        matched,
        seen,
        member: Some(member),
    })
}

/// Makes the filter of `unit` leave its XDP dispatcher, if it is a member
/// of one: `Ok(Some(note))` when it was no longer there.
fn leave_dispatcher(unit: &Unit<'_>) -> Result<Option<String>, DeployError> {
    let d = description(unit)?;
    let Some(ifindex) = d.member_of else {
        return Ok(None);
    };
    let fail = |why: String| DeployError::Member {
        name: unit.name().to_string(),
        why,
    };
    let Some(prog) = prog_id(unit) else {
        return Err(fail(
            "its program pin cannot be read, so whether it runs cannot be told".into(),
        ));
    };
    let (iface, netns, gone) = device(ifindex, d.netns, &d.iface);
    let gone_note = |why: &str| {
        format!(
            "{} was no longer in the XDP dispatcher of {} ({why}): its pins are removed",
            pcap2bpf::text::escape(unit.name()),
            device_text(&iface, &netns)
        )
    };
    if gone {
        return Ok(Some(gone_note("the device is gone")));
    }
    match membership(&d, ifindex, prog) {
        Membership::Gone(why) => return Ok(Some(gone_note(&why))),
        Membership::Unknown(why) => return Err(fail(why)),
        Membership::Running(_) => {}
    }
    match in_netns(d.netns, || dispatcher::leave(ifindex, prog, None)) {
        Ok(Ok(_)) => Ok(None),
        Ok(Err(e)) => match membership(&d, ifindex, prog) {
            // Removed by someone else meanwhile.
            Membership::Gone(why) => Ok(Some(gone_note(&why))),
            _ => Err(fail(format!(
                "leaving the XDP dispatcher of {} failed: {e}",
                device_text(&iface, &netns)
            ))),
        },
        Err(why) => Err(fail(why)),
    }
}

/// Detaches the filter `name` and removes its pins: the link is detached
/// first, so the program stops even if someone else still holds the link.
/// What a killed `attach` or `detach` left of a filter of that name is
/// removed too; the notes say what.
pub fn detach(name: &str) -> Result<Vec<String>, DeployError> {
    check_name(name)?;
    let Some(mut root) = open_root(false)? else {
        return Err(DeployError::NotFound(name.to_string()));
    };
    let locked = root.lock()?;
    let mut notes = discard_half_made(&locked, Some(name))?;
    // Not a whole unit (removed as half made, or not a filter): `remove`
    // says which.
    if let Ok(unit) = locked.unit(name) {
        notes.extend(leave_dispatcher(&unit)?);
    }
    match locked.remove(name) {
        Err(PinError::NotFound { .. }) if !notes.is_empty() => Ok(notes),
        r => r.map(|()| notes).map_err(Into::into),
    }
}

/// Detaches every filter, and removes what killed commands left; returns
/// the names detached and notes on the rest.
pub fn detach_all() -> Result<(Vec<String>, Vec<String>), DeployError> {
    let Some(mut root) = open_root(false)? else {
        return Ok(Default::default());
    };
    let locked = root.lock()?;
    let mut notes = discard_half_made(&locked, None)?;
    let scan = locked.scan()?;
    for name in &scan.units {
        notes.extend(leave_dispatcher(&locked.unit(name)?)?);
        locked.remove(name)?;
    }
    for stray in &scan.strays {
        notes.push(format!("{}/{stray}", locked.root().path().display()));
    }
    Ok((scan.units, notes))
}

/// Removes the half-made filters (of `only` that name), saying which.
fn discard_half_made(locked: &Locked<'_>, only: Option<&str>) -> Result<Vec<String>, DeployError> {
    let mut notes = Vec::new();
    for half in locked.scan()?.half_made {
        if only.is_some_and(|n| n != half.name) {
            continue;
        }
        // A member's program stays in its dispatcher without our pins:
        // it leaves first.
        if let Ok(unit) = locked.open_half(&half)
            && description(&unit).is_ok_and(|d| d.member_of.is_some())
            && let Some(note) = leave_dispatcher(&unit)?
        {
            notes.push(note);
        }
        locked.discard(&half)?;
        notes.push(format!("removed what was left of {}: {half}", half.name));
    }
    Ok(notes)
}
