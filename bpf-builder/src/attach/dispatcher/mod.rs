//! XDP programs that share an interface through a dispatcher, in the
//! protocol of libxdp (xdp-tools 1.3, dispatcher version 2), so that our
//! programs and those of `xdp-loader`, `xdp-filter` or `xdpdump` run on one
//! interface, each tool seeing and keeping the others' programs.
//!
//! The dispatcher is an XDP program named `xdp_dispatcher` that calls the
//! global functions `prog0`, `prog1`, ... in turn; each is replaced by a
//! member program loaded as an extension (`BPF_PROG_TYPE_EXT`). After a
//! member returns, the packet goes on to the next member when the action is
//! in that member's chain-call set, and otherwise gets the action. The
//! dispatcher's one map, read-only and frozen, holds the slot count and per
//! slot the chain-call set, run priority and flags; members are pinned in
//! bpffs at `xdp/dispatch-IFINDEX-DISPATCHERID/progN-{prog,link}`.
//!
//! A change builds a whole new dispatcher with the new member list, links
//! every member to it, pins it and swaps it in with one netlink replace
//! that expects the old dispatcher (libxdp attaches dispatchers with
//! netlink, so a link would lock it out); no packet meets a half-built
//! chain. The `flock` libxdp takes on `<bpffs>/xdp` is held for the whole
//! change, and a change that finds the interface changed under it starts
//! over (unless the caller gave the revision it expects).
//!
//! ```no_run
//! use bpf_builder::asm::Asm;
//! use bpf_builder::attach::dispatcher::{self, JoinOptions, Placement};
//! use bpf_builder::attach::Interface;
//! use bpf_builder::insn::Reg;
//! use bpf_builder::object::{Object, ProgramType};
//!
//! let mut a = Asm::new();
//! a.mov64(Reg::R0, 2); // XDP_PASS: the next member runs
//! a.exit();
//! let mut object = Object::new();
//! let prog = object.add_program("counter", ProgramType::Xdp, a.finish()?)?;
//! let joined = dispatcher::join(
//!     Interface::named("eth0"),
//!     &object,
//!     prog,
//!     &JoinOptions::new().placement(Placement::First),
//! )?;
//! println!("{} runs first: {:?}", joined.id, joined.chain.names());
//! dispatcher::leave(Interface::named("eth0"), joined.id, None)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod order;
mod pins;
mod program;

use std::fmt;
use std::path::Path;

pub use config::{DEFAULT_PRIORITY, MAX_SLOTS};
pub use order::{Anchor, Placement};

use super::xdp::{self, Expect, XdpMode};
use super::{AttachError, Interface, Link};
use crate::extension::ExtensionError;
use crate::handle::{Map, Program};
use crate::kernel_id::{KernelLinkId, KernelProgId};
use crate::load::{LoadError, Loaded};
use crate::map::F_RDONLY_PROG;
use crate::object::{Object, ProgId};
use crate::sys::bpf as sys;
use config::Config;
use order::Ranked;
use pins::Lock;

/// How many times [`join`] and [`leave`] read the interface again when it
/// changed between their read and their swap.
const ATTEMPTS: u32 = 8;

/// The XDP actions after which the next member runs: bit `a` stands for
/// action `a` (`XDP_ABORTED` 0, `XDP_DROP` 1, `XDP_PASS` 2, `XDP_TX` 3,
/// `XDP_REDIRECT` 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainActions(u32);

impl ChainActions {
    /// Only `XDP_PASS` goes on: libxdp's default.
    pub const PASS: ChainActions = ChainActions(1 << 2);

    /// The set of `actions`; actions past 30 are ignored (bit 31 is the
    /// dispatcher's own).
    pub fn of(actions: &[u32]) -> ChainActions {
        ChainActions(
            actions
                .iter()
                .filter(|&&a| a < config::SLOT_RETVAL)
                .fold(0, |m, &a| m | 1 << a),
        )
    }

    /// The set as bits.
    pub fn bits(self) -> u32 {
        self.0
    }

    /// Whether `action` goes on to the next member.
    pub fn contains(self, action: u32) -> bool {
        action < 32 && self.0 & (1 << action) != 0
    }

    fn from_config(bits: u32) -> ChainActions {
        ChainActions(bits & !(1 << config::SLOT_RETVAL))
    }
}

impl Default for ChainActions {
    fn default() -> Self {
        ChainActions::PASS
    }
}

/// One member of a dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member program's kernel id.
    pub id: KernelProgId,
    /// Its name.
    pub name: String,
    /// Its run priority (libxdp runs lower priorities first).
    pub priority: u32,
    /// The actions after which the next member runs.
    pub chain_actions: ChainActions,
    /// Whether it handles multi-buffer frames (`BPF_F_XDP_HAS_FRAGS`).
    pub frags: bool,
}

/// A dispatcher and its members in run order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The interface.
    pub ifindex: u32,
    /// The dispatcher program's id: the chain's revision.
    pub dispatcher: KernelProgId,
    /// The mode the dispatcher is attached in.
    pub mode: XdpMode,
    /// The members, in the order they run.
    pub members: Vec<Member>,
}

impl Chain {
    /// The member ids in run order.
    pub fn ids(&self) -> Vec<KernelProgId> {
        self.members.iter().map(|m| m.id).collect()
    }

    /// The member names in run order.
    pub fn names(&self) -> Vec<&str> {
        self.members.iter().map(|m| m.name.as_str()).collect()
    }
}

/// What holds an interface's XDP hook that is not a dispatcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Foreign {
    /// The program's id.
    pub id: KernelProgId,
    /// Its name.
    pub name: String,
    /// The mode it runs in.
    pub mode: XdpMode,
    /// The XDP link that holds it (`None`: attached with netlink).
    pub link: Option<KernelLinkId>,
}

impl fmt::Display for Foreign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "program `{}` (id {}) ", self.name, self.id)?;
        match self.link {
            Some(link) => write!(f, "attached by XDP link {link}"),
            None => write!(f, "attached with netlink in {} mode", self.mode.name()),
        }
    }
}

/// What an interface's XDP hook holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    /// Nothing.
    Empty,
    /// A dispatcher (ours or libxdp's).
    Dispatcher(Chain),
    /// A program that is not a dispatcher.
    Foreign(Foreign),
}

impl Hook {
    /// The revision to pass as [`JoinOptions::expected_revision`].
    pub fn revision(&self) -> Revision {
        match self {
            Hook::Empty => Revision(None),
            Hook::Dispatcher(c) => Revision(Some(c.dispatcher)),
            Hook::Foreign(f) => Revision(Some(f.id)),
        }
    }

    /// The dispatcher's chain, if a dispatcher holds the hook.
    pub fn chain(&self) -> Option<&Chain> {
        match self {
            Hook::Dispatcher(c) => Some(c),
            _ => None,
        }
    }
}

/// The program an interface's hook held when read: a change made with it
/// as expected revision fails if the hook holds something else by then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revision(Option<KernelProgId>);

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, "program {id}"),
            None => f.write_str("nothing"),
        }
    }
}

/// How [`join`] adds a program: made with [`JoinOptions::new`], changed
/// with its setters.
#[derive(Debug, Clone, Default)]
pub struct JoinOptions {
    placement: Placement,
    chain_actions: ChainActions,
    mode: XdpMode,
    expected: Option<Revision>,
    replace_foreign: bool,
}

impl JoinOptions {
    /// Last in the chain, going on after `XDP_PASS`, in the mode the
    /// kernel picks (for a new dispatcher), at whatever revision, never
    /// replacing a program that is not a dispatcher.
    pub fn new() -> JoinOptions {
        JoinOptions::default()
    }

    /// Where the program goes.
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// The actions after which the next member runs.
    pub fn chain_actions(mut self, actions: ChainActions) -> Self {
        self.chain_actions = actions;
        self
    }

    /// The mode of a new dispatcher (an existing one keeps its own).
    pub fn mode(mut self, mode: XdpMode) -> Self {
        self.mode = mode;
        self
    }

    /// Changes the interface only if its hook still holds what it held at
    /// `revision` (as read with [`query`]); otherwise
    /// [`AttachError::ExpectedMismatch`] and nothing changes.
    pub fn expected_revision(mut self, revision: Revision) -> Self {
        self.expected = Some(revision);
        self
    }

    /// Whether a program that is not a dispatcher may be replaced (it is
    /// then gone from the interface). Without this, joining an interface
    /// such a program holds fails with an error naming it.
    pub fn replace_foreign(mut self, replace: bool) -> Self {
        self.replace_foreign = replace;
        self
    }
}

/// A program that joined a dispatcher.
#[derive(Debug)]
pub struct Joined {
    /// The program's object as loaded (its maps, its programs).
    pub loaded: Loaded,
    /// The member's kernel id.
    pub id: KernelProgId,
    /// The chain after the change.
    pub chain: Chain,
}

/// A dispatcher change failed; the interface is as it was.
#[derive(Debug, thiserror::Error)]
pub enum DispatcherError {
    /// Loading the new dispatcher or the joining program failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Reading, linking, pinning or swapping failed.
    #[error(transparent)]
    Attach(#[from] AttachError),
    /// The joining program cannot replace a dispatcher slot.
    #[error(transparent)]
    Extension(#[from] ExtensionError),
}

/// What `iface`'s XDP hook holds; for a dispatcher, its members in order.
pub fn query(iface: impl Into<Interface>) -> Result<Hook, AttachError> {
    let iface = iface.into();
    let _lock = lock()?;
    Ok(read(&iface)?.hook)
}

/// Loads `prog` of `object` as a member of `iface`'s dispatcher, placed as
/// `opts` says: creates the dispatcher when the hook is empty, and builds
/// a new one with the program added otherwise. Fails, naming the program,
/// when a program that is not a dispatcher holds the hook (unless
/// [`JoinOptions::replace_foreign`]).
pub fn join(
    iface: impl Into<Interface>,
    object: &Object,
    prog: ProgId,
    opts: &JoinOptions,
) -> Result<Joined, DispatcherError> {
    let iface = iface.into();
    retrying(opts.expected, || join_once(&iface, object, prog, opts))
}

/// Removes member `id` from `iface`'s dispatcher: a new dispatcher without
/// it replaces the old one, or, when it was the last member, the hook is
/// emptied. Returns what the hook holds afterwards.
pub fn leave(
    iface: impl Into<Interface>,
    id: KernelProgId,
    expected: Option<Revision>,
) -> Result<Hook, DispatcherError> {
    let iface = iface.into();
    retrying(expected, || leave_once(&iface, id, expected))
}

/// Runs `attempt` again while the hook changes between its read and its
/// swap, unless the caller pinned a revision.
fn retrying<T>(
    expected: Option<Revision>,
    mut attempt: impl FnMut() -> Result<T, DispatcherError>,
) -> Result<T, DispatcherError> {
    let mut left = if expected.is_some() { 1 } else { ATTEMPTS };
    loop {
        left -= 1;
        match attempt() {
            Err(DispatcherError::Attach(AttachError::ExpectedMismatch { .. })) if left > 0 => {}
            other => return other,
        }
    }
}

/// The hook as read, with handles on the programs it is made of.
struct Current {
    hook: Hook,
    /// The dispatcher or foreign program.
    program: Option<Program>,
    /// The dispatcher's members, in run order.
    members: Vec<Program>,
}

/// What the dispatcher's record keeps of one slot.
#[derive(Clone, Copy)]
struct Settings {
    priority: u32,
    chain_actions: ChainActions,
    frags: bool,
}

impl Settings {
    fn of(m: &Member) -> Settings {
        Settings {
            priority: m.priority,
            chain_actions: m.chain_actions,
            frags: m.frags,
        }
    }
}

/// The record of a dispatcher whose slots have `settings`, in run order:
/// every chain-call set holds the empty slot's value, and the dispatcher
/// handles fragments when every member does.
fn config_of(settings: &[Settings]) -> Config {
    let mut config = Config {
        slots: settings.len() as u8,
        frags: settings.iter().all(|s| s.frags),
        ..Config::default()
    };
    for (i, s) in settings.iter().enumerate() {
        config.chain_actions[i] = s.chain_actions.bits() | 1 << config::SLOT_RETVAL;
        config.priorities[i] = s.priority;
        config.flags[i] = if s.frags { config::FLAG_FRAGS } else { 0 };
    }
    config
}

/// A member of the dispatcher being built: its program and settings.
struct Slot<'a> {
    program: &'a Program,
    settings: Settings,
}

fn join_once(
    iface: &Interface,
    object: &Object,
    prog: ProgId,
    opts: &JoinOptions,
) -> Result<Joined, DispatcherError> {
    let _lock = lock()?;
    let current = read(iface)?;
    check_expected(iface, &current.hook, opts.expected)?;
    let (chain, expect, mode) = match &current.hook {
        Hook::Empty => (Vec::new(), Expect::Nothing, opts.mode),
        Hook::Dispatcher(c) => (c.members.clone(), expect_current(&current), c.mode),
        Hook::Foreign(f) if opts.replace_foreign && f.link.is_none() => {
            (Vec::new(), expect_current(&current), f.mode)
        }
        Hook::Foreign(f) => {
            let what = if f.link.is_some() {
                "a program held by a link cannot be replaced; detach it first"
            } else {
                "replacing it needs an explicit choice (replace_foreign)"
            };
            return Err(AttachError::HookTaken {
                hook: "XDP".into(),
                iface: iface.to_string(),
                detail: format!("{f}, which is not a dispatcher: {what}"),
            }
            .into());
        }
    };
    if chain.len() >= MAX_SLOTS {
        return Err(dispatcher_error(
            iface,
            format!("the dispatcher is full: it holds {MAX_SLOTS} programs, libxdp's most"),
        )
        .into());
    }
    let mut ranked: Vec<Ranked> = chain
        .iter()
        .map(|m| Ranked {
            id: Some(m.id),
            name: m.name.clone(),
            priority: m.priority,
        })
        .collect();
    let at = order::index(&ranked, &opts.placement).map_err(|r| dispatcher_error(iface, r))?;
    let wanted = match opts.placement {
        Placement::Priority(p) => Some(p),
        _ => None,
    };
    let joining = Ranked {
        id: None,
        name: object.program(prog).name.clone(),
        priority: 0,
    };
    order::insert(&mut ranked, at, joining, wanted);

    // The dispatcher first: the joining program is loaded against it.
    let mut members = chain.iter();
    let settings: Vec<Settings> = ranked
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (chain_actions, frags) = if i == at {
                (opts.chain_actions, object.program(prog).xdp_frags)
            } else {
                let m = members.next().expect("one member per ranked slot");
                (m.chain_actions, m.frags)
            };
            Settings {
                priority: r.priority,
                chain_actions,
                frags,
            }
        })
        .collect();
    let (dispatcher_object, dispatcher_prog) =
        program::build(&config_of(&settings)).map_err(LoadError::from)?;
    let dispatcher = dispatcher_object.load()?;
    let dispatcher = dispatcher.program(dispatcher_prog);

    let mut joining = object.clone();
    joining.set_extension(prog, dispatcher, &program::slot_function(at))?;
    let loaded = joining.load()?;
    let joined = loaded.program(prog);

    let mut old = current.members.iter();
    let slots: Vec<Slot<'_>> = settings
        .iter()
        .enumerate()
        .map(|(i, &settings)| Slot {
            program: if i == at {
                joined
            } else {
                old.next().expect("one program per member")
            },
            settings,
        })
        .collect();
    let chain = swap_in(iface, &current, dispatcher, &slots, mode, expect)?;
    let id = joined
        .id()
        .map_err(|e| AttachError::sys("read the joined program's id", e))?;
    Ok(Joined { loaded, id, chain })
}

fn leave_once(
    iface: &Interface,
    id: KernelProgId,
    expected: Option<Revision>,
) -> Result<Hook, DispatcherError> {
    let _lock = lock()?;
    let current = read(iface)?;
    check_expected(iface, &current.hook, expected)?;
    let Hook::Dispatcher(chain) = &current.hook else {
        return Err(
            dispatcher_error(iface, format!("program {id} is not in a dispatcher there")).into(),
        );
    };
    let Some(at) = chain.members.iter().position(|m| m.id == id) else {
        return Err(
            dispatcher_error(iface, format!("program {id} is not in the dispatcher")).into(),
        );
    };
    let expect = expect_current(&current);
    if chain.members.len() == 1 {
        xdp::detach_netlink(iface.clone(), chain.mode, expect)?;
        let dir = pins::dispatcher_dir(chain.ifindex, chain.dispatcher);
        remove_old_pins(&dir, "the dispatcher is detached")?;
        return Ok(Hook::Empty);
    }
    let slots: Vec<Slot<'_>> = (0..chain.members.len())
        .filter(|&i| i != at)
        .map(|i| Slot {
            program: &current.members[i],
            settings: Settings::of(&chain.members[i]),
        })
        .collect();
    let settings: Vec<Settings> = slots.iter().map(|s| s.settings).collect();
    let (dispatcher_object, dispatcher_prog) =
        program::build(&config_of(&settings)).map_err(LoadError::from)?;
    let dispatcher = dispatcher_object.load()?;
    let chain = swap_in(
        iface,
        &current,
        dispatcher.program(dispatcher_prog),
        &slots,
        chain.mode,
        expect,
    )?;
    Ok(Hook::Dispatcher(chain))
}

/// Links every slot's program to `dispatcher`, pins the lot in libxdp's
/// layout, and swaps the dispatcher in for what `current` read (`expect`).
/// On success the old dispatcher's pins go; on failure the new ones.
fn swap_in(
    iface: &Interface,
    current: &Current,
    dispatcher: &Program,
    slots: &[Slot<'_>],
    mode: XdpMode,
    expect: Expect<'_>,
) -> Result<Chain, AttachError> {
    let ifindex = iface.resolve()?;
    let mut links: Vec<Link> = Vec::with_capacity(slots.len());
    for (i, s) in slots.iter().enumerate() {
        links.push(super::extension::attach(
            s.program,
            dispatcher,
            &program::slot_function(i),
        )?);
    }
    let dispatcher_id = dispatcher
        .id()
        .map_err(|e| AttachError::sys("read the dispatcher's id", e))?;
    let dir = pins::dispatcher_dir(ifindex, dispatcher_id);
    let pinned = pin_slots(&dir, slots, &links);
    if let Err(e) = pinned {
        let _ = pins::remove_dispatcher_dir(&dir);
        return Err(e);
    }
    if let Err(e) = xdp::attach_netlink(iface.clone(), dispatcher, mode, expect) {
        let _ = pins::remove_dispatcher_dir(&dir);
        return Err(e);
    }
    if let Hook::Dispatcher(old) = &current.hook {
        let dir = pins::dispatcher_dir(old.ifindex, old.dispatcher);
        remove_old_pins(&dir, "the new dispatcher is attached")?;
    }
    let mode = match mode {
        XdpMode::Auto => xdp::query(iface.clone())?
            .mode_of(dispatcher_id)
            .unwrap_or(mode),
        m => m,
    };
    let mut members = Vec::with_capacity(slots.len());
    for s in slots {
        members.push(Member {
            id: s
                .program
                .id()
                .map_err(|e| AttachError::sys("read a member's id", e))?,
            name: s.program.name().to_string(),
            priority: s.settings.priority,
            chain_actions: s.settings.chain_actions,
            frags: s.settings.frags,
        });
    }
    Ok(Chain {
        ifindex,
        dispatcher: dispatcher_id,
        mode,
        members,
    })
}

fn pin_slots(dir: &Path, slots: &[Slot<'_>], links: &[Link]) -> Result<(), AttachError> {
    std::fs::create_dir(dir).map_err(|e| pin_error(dir, e))?;
    for (i, (s, link)) in slots.iter().zip(links).enumerate() {
        let (prog_pin, link_pin) = pins::slot_pins(dir, i);
        link.pin(&link_pin)?;
        s.program
            .pin(&prog_pin)
            .map_err(|e| pin_error(&prog_pin, e))?;
    }
    Ok(())
}

/// Removes the pins of a dispatcher that is no longer attached; `done`
/// says what has happened already, for the error.
fn remove_old_pins(dir: &Path, done: &str) -> Result<(), AttachError> {
    pins::remove_dispatcher_dir(dir).map_err(|source| AttachError::Sys {
        op: format!(
            "{done}, but removing the old pins in {} failed",
            dir.display()
        ),
        source,
    })
}

fn pin_error(path: &Path, source: std::io::Error) -> AttachError {
    AttachError::Sys {
        op: format!("pin {}", path.display()),
        source,
    }
}

fn lock() -> Result<Lock, AttachError> {
    Lock::acquire().map_err(|source| AttachError::Sys {
        op: format!("lock {}", pins::xdp_dir().display()),
        source,
    })
}

fn check_expected(
    iface: &Interface,
    hook: &Hook,
    expected: Option<Revision>,
) -> Result<(), AttachError> {
    match expected {
        Some(e) if e != hook.revision() => Err(AttachError::ExpectedMismatch {
            hook: "XDP".into(),
            iface: iface.to_string(),
            expected: e.to_string(),
            found: hook.revision().to_string(),
        }),
        _ => Ok(()),
    }
}

/// The netlink guard for replacing what `current` read.
fn expect_current(current: &Current) -> Expect<'_> {
    match &current.program {
        Some(p) => Expect::Program(p),
        None => Expect::Nothing,
    }
}

fn dispatcher_error(iface: &Interface, reason: String) -> AttachError {
    AttachError::Dispatcher {
        iface: iface.to_string(),
        reason,
    }
}

/// Reads the hook of `iface` (the caller holds the lock).
fn read(iface: &Interface) -> Result<Current, AttachError> {
    let ifindex = iface.resolve()?;
    let q = xdp::query(iface.clone())?;
    let Some((id, mode)) = q
        .driver
        .map(|id| (id, XdpMode::Driver))
        .or(q.generic.map(|id| (id, XdpMode::Generic)))
    else {
        return Ok(Current {
            hook: Hook::Empty,
            program: None,
            members: Vec::new(),
        });
    };
    let program = sys::prog_get_fd_by_id(id)
        .and_then(Program::from_fd)
        .map_err(|e| AttachError::sys(format!("open XDP program {id} of {iface}"), e))?;
    let info = program
        .info()
        .map_err(|e| AttachError::sys(format!("read XDP program {id} of {iface}"), e))?;
    let Some(config) = dispatcher_config(iface, &info)? else {
        let foreign = Foreign {
            id,
            name: info.name,
            mode,
            link: xdp_link_of(ifindex, id),
        };
        return Ok(Current {
            hook: Hook::Foreign(foreign),
            program: Some(program),
            members: Vec::new(),
        });
    };
    let dir = pins::dispatcher_dir(ifindex, id);
    let mut members = Vec::new();
    let mut programs = Vec::new();
    for i in 0..usize::from(config.slots) {
        let (prog_pin, _) = pins::slot_pins(&dir, i);
        let p = Program::from_pin(&prog_pin).map_err(|e| {
            dispatcher_error(
                iface,
                format!(
                    "dispatcher {id} has no program pinned for slot {i} at {}: {e}",
                    prog_pin.display()
                ),
            )
        })?;
        let pinfo = p
            .info()
            .map_err(|e| AttachError::sys(format!("read member {i} of dispatcher {id}"), e))?;
        members.push(Member {
            id: pinfo.id,
            name: pinfo.name,
            priority: config.priorities[i],
            chain_actions: ChainActions::from_config(config.chain_actions[i]),
            frags: config.flags[i] & config::FLAG_FRAGS != 0,
        });
        programs.push(p);
    }
    Ok(Current {
        hook: Hook::Dispatcher(Chain {
            ifindex,
            dispatcher: id,
            mode,
            members,
        }),
        program: Some(program),
        members: programs,
    })
}

/// The configuration of a dispatcher, as libxdp recognises one: named
/// `xdp_dispatcher`, with BTF, and with one read-only one-entry map that
/// holds a version 2 record. `None` for any other program; an error for a
/// dispatcher of another protocol version.
fn dispatcher_config(
    iface: &Interface,
    info: &sys::ProgInfo,
) -> Result<Option<Config>, AttachError> {
    if info.name != program::NAME || info.btf_id == 0 || info.map_ids.len() != 1 {
        return Ok(None);
    }
    let map = sys::map_get_fd_by_id(info.map_ids[0])
        .and_then(Map::from_fd)
        .map_err(|e| {
            AttachError::sys(
                format!("open the configuration of dispatcher {}", info.id),
                e,
            )
        })?;
    if map.key_size() != 4
        || map.max_entries() != 1
        || map.value_size() < 2
        || map.flags() & F_RDONLY_PROG == 0
    {
        return Ok(None);
    }
    let value = map
        .lookup(&0u32.to_ne_bytes())
        .map_err(AttachError::Map)?
        .unwrap_or_default();
    match Config::from_bytes(&value) {
        Some(c) => Ok(Some(c)),
        None => {
            let version =
                Config::version_of(&value).map_or_else(|| "1".to_string(), |v| v.to_string());
            Err(dispatcher_error(
                iface,
                format!(
                    "dispatcher {} speaks version {version} of libxdp's protocol, this library \
                     version {}: unload its programs with the tool that loaded them first",
                    info.id,
                    config::VERSION
                ),
            ))
        }
    }
}

/// The XDP link that holds program `prog` on `ifindex`, if one does.
fn xdp_link_of(ifindex: u32, prog: KernelProgId) -> Option<KernelLinkId> {
    let mut after = None;
    while let Ok(Some(id)) = sys::link_get_next_id(after) {
        after = Some(id);
        let Ok(info) = sys::link_get_fd_by_id(id).and_then(sys::link_info) else {
            continue;
        };
        if info.prog_id == Some(prog) && info.detail == (sys::LinkDetail::Xdp { ifindex }) {
            return Some(id);
        }
    }
    None
}
