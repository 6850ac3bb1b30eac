//! Deploying a ruleset: compiled for each hook and device its base
//! chains name, loaded, attached through BPF links and pinned so that it
//! outlives the command; reloaded in place; read back (counters, the
//! ruleset with their values, log records); removed.
//!
//! A ruleset runs as one program per (hook, device): ingress chains at
//! XDP or at tcx ingress ([`IngressHook`]), egress chains at tcx egress.
//! Under the pin root (default [`PIN_ROOT`]) three directories of
//! [`bpf_builder::pins`] units hold it:
//!
//! * `links/HOOK-DEVICE`: the hook's link (member `link`), which runs
//!   the ruleset's generation switch (`switch`, with its two `slots`
//!   and the ruleset's `generation` map, the same in every link unit:
//!   [`crate::compile::switch`]);
//! * `members/HOOK-DEVICE-GEN`: for an XDP program that runs as a member
//!   of its device's XDP dispatcher ([`LoadOptions::shared`], libxdp's
//!   protocol through [`bpf_builder::attach::dispatcher`]), the member
//!   program (`prog`): it has no link of its own, the dispatcher pins it
//!   in libxdp's layout under `/sys/fs/bpf/xdp`;
//! * `progs/HOOK-DEVICE-GEN`: the program (`prog`), its maps (`counters`,
//!   `quotas`, `limits`, `log`, `drops`, `fwd`, `progs`, the counts
//!   carried into its counters over reloads as `carried` ([`carry`]),
//!   and the sets' maps as `set0`..`set63` ([`SET_MEMBERS`]); a one-entry
//!   placeholder map named
//!   [`PLACEHOLDER`] stands for those it lacks) and its description
//!   (`meta`: a frozen map holding [`Meta`] as JSON, with what it takes
//!   to change the named sets' maps while they run: [`sets`]).
//!
//! A unit's members are a fixed list, so the set maps, whose number
//! varies, take a fixed range of members: as many as a program can use
//! maps at all. The set maps then live and go with their program's unit,
//! committed and removed with it in one rename, which a separate root
//! of per-set units would not give.
//!
//! [`load`] compiles and loads every program first; then, under the pin
//! root's lock, it stages the new units, puts each hook's new program in
//! the next generation's slot of its switch (attaching a switch to the
//! hooks that had none: it lets packets through until the switch), and
//! writes the generation once: every hook of the ruleset moves to the
//! new rules at that instant, as nft's commit moves all of its hooks
//! (each packet meets one generation's rules at a hook; one that crosses
//! two hooks as the generation changes meets the old rules at the first
//! and the new at the second, never the reverse). Only then are the new
//! units committed, the old generation's slots emptied and the old units
//! removed. Anything that fails before that point undoes what was done
//! (the generation written back, the slots emptied, new links dropped,
//! staged pins removed): the old firewall keeps running, and nothing new
//! stays pinned or attached. A pin root whose links were made by an
//! nft2bpf without the switch is refused (unload it first). Rule
//! counters carry over: a counter whose rule has the same
//! table, chain and text (and occurrence among rules of that text) starts
//! the new program with the old one's value, as do named counters; what
//! the old program counted after that value was read, up to the switch,
//! is added once the old programs have finished (the `carried` member,
//! [`carry`]): no packet goes uncounted.
//!
//! Sets that did not change keep their live contents: elements added
//! and deleted with [`sets`]' commands, and those the packet path added
//! to dynamic sets, with their expiry and meter buckets. A named set is
//! unchanged when the running programs have it (same table and name)
//! with the same declaration ([`set_declaration`]: key types and
//! widths, `flags interval`, `constant`, `timeout`, the `timeout`,
//! `size`, map or set, and the declared elements with their verdicts and
//! timeouts, in any order). Each of its maps in a new program is then
//! the running map of the program it replaces (same hook and device)
//! when that is of the same shape: the new program is built and loaded
//! with that map itself (`Object::add_existing_map`, which checks the
//! kernel map's type, sizes and flags), so nothing is copied and no
//! element changed up to the switch is missing after it. A map the
//! replaced program lacks (a new device, a lookup with another key
//! alignment) is filled from another running copy of the same shape just
//! before the switch. Otherwise (a changed declaration; a map of another
//! shape, as when rules start adding to a set) the set starts from the
//! file's elements, and [`Report::sets_reset`] says so. Programs are
//! therefore built and loaded under the pin root's lock, after the
//! running ones are read; only lowering comes before.
//!
//! A shared XDP program joins its dispatcher (a new dispatcher with it
//! among the members replaces the old one in one swap), loaded with its
//! maps' first contents in the object, so it runs complete from its first
//! packet but for counters' initial values, written right after. On a
//! reload the new member joins right after the old one, which leaves once
//! the new units are committed: packets meanwhile meet both (the old
//! rules, then the new), never neither (the kept sets' maps are the
//! same for both then: a packet the old member accepts meets the new
//! one's `add @set` and meters on the same elements, once more). A load
//! that fails takes the
//! members it added out again (and a pin root it made goes too). Where
//! the kernel refuses extension programs, joining fails saying so. A
//! program runs alone or shared; a reload does not switch between the
//! two (unload first).
//!
//! [`unload`] detaches and removes everything, the pin root included
//! (members leave their dispatchers, whose other members run on).

pub mod batch;
pub mod carry;
mod meta;
mod pins;
pub mod sets;
mod state;
mod swap;
mod switch;

use std::path::{Path, PathBuf};

use bpf_builder::attach::{AttachError, Interface};
use bpf_builder::load::{LoadError, Loaded};
use bpf_builder::pins::PinError;

pub use meta::{
    ChainMeta, CounterMeta, DecisionMeta, LogMeta, Meta, ObjectMeta, QuotaMeta, RuleMeta, RulePos,
    SetDeclMeta, SetHead, SetMeta, SetPartMeta, TableMeta, rule_pos, set_declaration, tables,
};
pub use pins::{Deployed, LoadOptions, PLACEHOLDER, Report, SET_MEMBERS, load, unload};
pub use state::{
    CounterRow, LogLine, QuotaRow, Running, counters, describe_log, listing, quotas, ruleset_text,
    running, set_elements, summary,
};

use crate::check::tree::{Hook, Ruleset};
use crate::compile::program::{Mode, Program, ProgramOptions, build};
use crate::compile::{Attach, Device, Lowered, lower};
use crate::source::{FileId, SourceMap};
use crate::syntax::{self, FsLoader, Loader, MemLoader};

/// Where rulesets are pinned by default.
pub const PIN_ROOT: &str = "/sys/fs/bpf/nft2bpf";

/// Why deploying (or reading back) failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The ruleset does not read or check: the errors, rendered with
    /// `FILE:LINE:COL` and a caret.
    #[error("{0}")]
    Ruleset(String),
    /// A program could not be built.
    #[error("{target}: {message}")]
    Compile {
        /// `HOOK on DEVICE`.
        target: String,
        /// What went wrong (rendered, with a place when it has one).
        message: String,
    },
    /// The kernel refused a program or map.
    #[error("{target}: {source}")]
    Load {
        /// `HOOK on DEVICE`.
        target: String,
        /// The refusal.
        #[source]
        source: LoadError,
    },
    /// A device, attachment or link update failed.
    #[error("{0}")]
    Attach(#[from] AttachError),
    /// The pin root or a unit.
    #[error("{0}")]
    Pins(#[from] PinError),
    /// bpffs is not mounted, and a mount made here would not outlive the
    /// command (as under `ip netns exec`); or mounting it failed.
    #[error(transparent)]
    Bpffs(#[from] bpf_builder::bpffs::BpffsError),
    /// Something else of the system.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Anything else, said in words.
    #[error("{0}")]
    Other(String),
}

impl DeployError {
    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DeployError {
        let what = what.into();
        move |source| DeployError::Io { what, source }
    }

    /// Whether the error is the kernel refusing for lack of privilege
    /// (then [`BPF_PROG_TEST_RUN`](bpf_builder::run) is out of reach too).
    pub fn missing_privilege(&self) -> bool {
        matches!(self, DeployError::Load { source, .. } if source.missing_privilege().is_some())
    }
}

/// Where ingress chains run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IngressHook {
    /// XDP (the default).
    #[default]
    Xdp,
    /// tcx ingress.
    Tcx,
}

/// A ruleset file read and checked, with the text it was read from.
#[derive(Debug)]
pub struct Source {
    /// The files: the ruleset's and those it includes.
    pub map: SourceMap,
    /// The ruleset's file.
    pub file: FileId,
    /// The syntax tree.
    pub ast: syntax::ast::Ruleset,
    /// The checked ruleset.
    pub ruleset: Ruleset,
}

impl Source {
    /// Reads and checks the ruleset file `path` (includes from disk).
    pub fn read(path: &Path) -> Result<Source, DeployError> {
        let (_, text) = FsLoader.load(path).map_err(|e| {
            DeployError::Ruleset(format!(
                "cannot read {}: {e}",
                bpf_builder::text::escape(&path.display().to_string())
            ))
        })?;
        let mut map = SourceMap::new();
        let file = map.add(path.display().to_string(), Some(path), text, None);
        Source::check(map, file, &mut FsLoader)
    }

    /// Checks `text` as the file `name` (includes from `loader`).
    pub fn from_text(
        name: &str,
        text: &str,
        loader: &mut MemLoader,
    ) -> Result<Source, DeployError> {
        let mut map = SourceMap::new();
        let file = map.add(name, None, text, None);
        Source::check(map, file, loader)
    }

    fn check(
        mut map: SourceMap,
        file: FileId,
        loader: &mut dyn Loader,
    ) -> Result<Source, DeployError> {
        let ast = syntax::parse(&mut map, file, loader)
            .map_err(|e| DeployError::Ruleset(crate::Errors::from(e).render(&map)))?;
        let ruleset =
            crate::check::check(&ast).map_err(|e| DeployError::Ruleset(e.render(&map)))?;
        Ok(Source {
            map,
            file,
            ast,
            ruleset,
        })
    }

    /// The ruleset file's name, as given.
    pub fn name(&self) -> &str {
        &self.map.file(self.file).name
    }

    /// An error of compilation rendered against these files.
    fn render(&self, e: crate::Error) -> String {
        e.render(&self.map).trim_end().to_string()
    }
}

/// The ruleset with every base chain on `devices` instead of its own
/// (`-i`): the same chains, run on other devices.
pub fn on_devices(ruleset: &Ruleset, devices: &[String]) -> Ruleset {
    let mut rs = ruleset.clone();
    for c in rs.chains.values_mut() {
        if let Some(b) = &mut c.base {
            b.devices = devices.to_vec();
        }
    }
    rs
}

/// The programs a ruleset makes, in order: each (hook, device) that a
/// base chain of a table that is not dormant names.
pub fn targets(ruleset: &Ruleset, ingress: IngressHook) -> Vec<(Attach, String)> {
    let mut out: Vec<(Attach, String)> = Vec::new();
    for (_, c, b) in ruleset.base_chains() {
        if ruleset.tables[c.table].dormant {
            continue;
        }
        let attach = match (b.hook, ingress) {
            (Hook::Ingress, IngressHook::Xdp) => Attach::Xdp,
            (Hook::Ingress, IngressHook::Tcx) => Attach::TcxIngress,
            (Hook::Egress, _) => Attach::TcxEgress,
        };
        for d in &b.devices {
            if !out.iter().any(|(a, x)| *a == attach && x == d) {
                out.push((attach, d.clone()));
            }
        }
    }
    out
}

/// `HOOK on DEVICE`, for messages.
pub fn target_name(attach: Attach, device: &str) -> String {
    format!("{} on {}", attach.name(), bpf_builder::text::escape(device))
}

/// The device `name` as the program needs it: with its MAC address when
/// it exists here and has one.
pub fn device(name: &str) -> Device {
    let d = Device::named(name);
    let Ok(index) = Interface::named(name).resolve() else {
        return d;
    };
    match bpf_builder::sys::netlink::get_address(index) {
        Ok(Some(mac)) if mac.len() == 6 => {
            let mut m = [0u8; 6];
            m.copy_from_slice(&mac);
            d.with_mac(m)
        }
        _ => d,
    }
}

/// One program of a ruleset, built.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// Its IR and what the IR's verdicts and actions mean.
    pub lowered: Lowered,
    /// The program and its maps.
    pub program: Program,
}

impl Compiled {
    /// The number of instructions of the program (subprograms included).
    pub fn insns(&self) -> usize {
        pktmatch::run::instructions(&self.program.object, self.program.prog).len()
    }

    /// The number of maps.
    pub fn maps(&self) -> usize {
        self.program.object.maps().len()
    }

    /// Loads it with the maps' first contents (sets' elements, `fwd`
    /// targets by their index in this namespace), which the loader
    /// writes in batches, then writes the counters' initial values.
    pub fn load(&self, src_ruleset: &Ruleset) -> Result<Loaded, DeployError> {
        let target = target_name(self.lowered.attach, &self.lowered.device.name);
        let compile_error = |e: crate::Error| DeployError::Compile {
            target: target.clone(),
            message: e.message,
        };
        let object = self
            .program
            .with_entries(&self.lowered, &|dev| Interface::named(dev).resolve().ok())
            .map_err(compile_error)?;
        let loaded = object.load().map_err(|source| DeployError::Load {
            target: target.clone(),
            source,
        })?;
        self.program
            .initialize_counters(&loaded, &self.lowered, src_ruleset)
            .map_err(compile_error)?;
        Ok(loaded)
    }
}

/// Lowers and builds the program of `ruleset` (checked from `src`) for
/// `attach` on `device`.
pub fn compile(
    src: &Source,
    ruleset: &Ruleset,
    attach: Attach,
    device: &Device,
    mode: Mode,
) -> Result<Compiled, DeployError> {
    let lowered = lower_for(src, ruleset, attach, device)?;
    build_for(src, lowered, mode, &[], false)
}

/// Lowers the program of `ruleset` (checked from `src`) for `attach` on
/// `device`: the first half of [`compile`].
pub fn lower_for(
    src: &Source,
    ruleset: &Ruleset,
    attach: Attach,
    device: &Device,
) -> Result<Lowered, DeployError> {
    lower(ruleset, attach, device).map_err(|e| DeployError::Compile {
        target: target_name(attach, &device.name),
        message: src.render(e),
    })
}

/// Builds the program `lowered` (the second half of [`compile`]), with
/// the sets' maps `existing_sets` gives (by map number) used instead of
/// new ones ([`ProgramOptions::existing_sets`]); `swappable_sets` for a
/// program that is deployed ([`ProgramOptions::swappable_sets`]).
pub fn build_for(
    src: &Source,
    lowered: Lowered,
    mode: Mode,
    existing_sets: &[Option<bpf_builder::map::ExistingMap>],
    swappable_sets: bool,
) -> Result<Compiled, DeployError> {
    let opts = ProgramOptions::new(mode)
        .source(&src.map)
        .existing_sets(existing_sets)
        .swappable_sets(swappable_sets);
    let program = build(&lowered, &opts).map_err(|e| DeployError::Compile {
        target: target_name(lowered.attach, &lowered.device.name),
        message: src.render(e),
    })?;
    Ok(Compiled { lowered, program })
}

/// Where the pins go by default: [`PIN_ROOT`].
pub fn default_pin_root() -> PathBuf {
    PathBuf::from(PIN_ROOT)
}
