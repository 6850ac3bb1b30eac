//! The pin root's layout, [`load`] and [`unload`] (see the
//! [module docs](super)).

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bpf_builder::attach::dispatcher::{
    self, Anchor, DispatcherError, Hook, JoinOptions, Placement,
};
use bpf_builder::attach::tcx;
use bpf_builder::attach::xdp::{self, XdpMode};
use bpf_builder::attach::{Interface, Link};
use bpf_builder::handle::{Map, Program};
use bpf_builder::kernel_id::KernelProgId;
use bpf_builder::load::Loaded;
use bpf_builder::map::{ExistingMap, MapSpec};
use bpf_builder::object::{MapId, Object};
use bpf_builder::pins::{PinRoot, Staging};

use super::carry::{Carry, OldCounters, carried_map, wait_for_switch};
use super::meta::{Meta, SetMeta};
use super::state;
use super::switch::{Flip, NewSwitch};
use super::{
    Compiled, DeployError, IngressHook, Source, build_for, device, lower_for, on_devices,
    target_name, targets,
};
use crate::compile::Attach;
use crate::compile::program::Mode;

/// The name of the map pinned in place of a map a program lacks.
pub const PLACEHOLDER: &str = "nft_none";

/// The members of a link unit: the link, the generation switch it runs,
/// the switch's slots and the ruleset's generation map
/// ([`crate::compile::switch`]).
const LINK_MEMBERS: &[&str] = &["link", "switch", "slots", "generation"];
/// The members of a link unit that an nft2bpf without the switch did not
/// pin: such a unit is whole, and a reload refuses it.
const SWITCH_MEMBERS: &[&str] = &["switch", "slots", "generation"];
/// The members of a member unit (`members/HOOK-DEVICE-GEN`): the program
/// that runs in the device's XDP dispatcher (`load --shared`), which has
/// no link of its own.
const MEMBER_MEMBERS: &[&str] = &["prog"];
/// The members of a program unit, in the order they are pinned, but the
/// set maps' ([`set_members`]).
pub(super) const PROG_MEMBERS: &[&str] = &[
    "meta", "prog", "counters", "quotas", "limits", "log", "drops", "fwd", "progs", "carried",
];
/// The member of a program unit that an nft2bpf without it did not pin
/// (the counts carried into the program: [`super::carry`]).
const CARRIED_MEMBERS: &[&str] = &["carried"];

/// How many set maps a program unit pins (`set0` to `set63`): the
/// kernel lets a program use at most 64 maps (`MAX_USED_MAPS`), so one
/// that runs in one program never has more. Units have a fixed list of
/// members, so each program unit pins all 64, [`PLACEHOLDER`] for those
/// its program lacks.
pub const SET_MEMBERS: usize = 64;

/// The set maps' members of a program unit: `set0`..`set63`, the
/// program's maps `nft_set0`..`nft_set63`.
pub(super) fn set_members() -> Vec<String> {
    (0..SET_MEMBERS).map(|i| format!("set{i}")).collect()
}

/// Every member of a program unit.
fn prog_members() -> Vec<String> {
    PROG_MEMBERS
        .iter()
        .map(|m| m.to_string())
        .chain(set_members())
        .collect()
}

/// How [`load`] deploys.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The pin root.
    pub pin_root: PathBuf,
    /// Where ingress chains run.
    pub ingress: IngressHook,
    /// Devices to run every base chain on instead of the chains' own.
    pub devices: Option<Vec<String>>,
    /// Where a new tcx program goes in its device's tcx chain, among the
    /// programs other tools attached (last by default). A program that
    /// replaces our own keeps its place.
    pub tcx_place: tcx::Place,
    /// XDP programs join their device's XDP dispatcher (libxdp's
    /// protocol), placed so, instead of attaching alone: they run beside
    /// the programs of `xdp-loader`, `xdp-filter` and other sharing tools.
    /// An accepted packet goes on to the next program of the dispatcher,
    /// a dropped one goes no further. A program that replaces our own
    /// member goes right after it (then the old one leaves): the place is
    /// kept. Only for XDP: an error with `ingress` [`IngressHook::Tcx`],
    /// and for rules that fit one program (a member is an extension
    /// program, and the kernel refuses tail calls from it into the XDP
    /// programs of a program array).
    pub shared: Option<Placement>,
}

impl LoadOptions {
    /// Defaults: [`super::PIN_ROOT`], XDP, the chains' devices.
    pub fn new() -> LoadOptions {
        LoadOptions {
            pin_root: super::default_pin_root(),
            ingress: IngressHook::Xdp,
            devices: None,
            tcx_place: tcx::Place::Tail,
            shared: None,
        }
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions::new()
    }
}

/// One program [`load`] deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// The hook.
    pub attach: Attach,
    /// The device.
    pub device: String,
    /// Its instructions.
    pub insns: usize,
    /// Its maps.
    pub maps: usize,
    /// The kernel's id of the program.
    pub prog_id: u32,
    /// The kernel's id of its link.
    pub link_id: u32,
    /// Whether it replaced a running program (else it was attached anew).
    pub replaced: bool,
    /// Counters whose values it took over from the program it replaced.
    pub carried: usize,
    /// The sets (`TABLE SET`) whose live contents it kept: their maps
    /// are those of the program it replaced (or, for a copy that program
    /// had not, filled from another program's).
    pub sets_kept: Vec<String>,
    /// For a member of the device's XDP dispatcher (`link_id` is then 0):
    /// the dispatcher's program id and its members' names in run order,
    /// after the load.
    pub dispatcher: Option<(u32, Vec<String>)>,
}

/// What [`load`] did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The programs now running.
    pub programs: Vec<Deployed>,
    /// Programs of the old ruleset that were detached (`HOOK on DEV`).
    pub detached: Vec<String>,
    /// Things worth saying: leftovers of killed commands removed, and
    /// what could not be cleaned up after the new ruleset took over.
    pub notes: Vec<String>,
    /// Sets of the old ruleset that start again from the file's
    /// elements, and why: `set netdev TABLE SET: ...`.
    pub sets_reset: Vec<String>,
}

/// The unit name of a program's hook and device: `HOOK-DEVICE`, the
/// device's bytes other than letters, digits and `_` as `%XX`.
pub(super) fn key(attach: Attach, device: &str) -> String {
    let mut k = format!("{}-", attach.name());
    for b in device.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' {
            k.push(b as char);
        } else {
            k.push_str(&format!("%{b:02x}"));
        }
    }
    k
}

/// The pin root and its unit directories.
pub(super) struct Roots {
    pub outer: PinRoot,
    pub links: PinRoot,
    pub members: PinRoot,
    pub progs: PinRoot,
}

/// Opens the pin root (creating it, and mounting bpffs on
/// `/sys/fs/bpf` when it is not there and the mount stays, when
/// `create`); `None` when there is none.
pub(super) fn open_roots(path: &Path, create: bool) -> Result<Option<Roots>, DeployError> {
    if create {
        // A bpffs mounted in a mount namespace of the command's own goes
        // away with it, and the firewall with its pins.
        bpf_builder::bpffs::lasting_bpffs(path)?;
    }
    let outer = if create {
        PinRoot::create(path, &[])?
    } else {
        match PinRoot::open(path, &[])? {
            Some(r) => r,
            // Under `ip netns exec` the system's bpffs is hidden: saying
            // that nothing is loaded would be wrong.
            None if bpf_builder::bpffs::hides_system_pins(path) => {
                return Err(bpf_builder::bpffs::BpffsError::Hidden(
                    bpf_builder::bpffs::BPFFS.into(),
                )
                .into());
            }
            None => return Ok(None),
        }
    };
    let sub = |name: &str, members: &[&str]| -> Result<PinRoot, DeployError> {
        let p = path.join(name);
        if create {
            return Ok(PinRoot::create(&p, members)?);
        }
        PinRoot::open(&p, members)?.ok_or_else(|| {
            DeployError::Other(format!(
                "{} is not a pin root of nft2bpf (it has no {name}/)",
                path.display()
            ))
        })
    };
    let prog_members = prog_members();
    let prog_members: Vec<&str> = prog_members.iter().map(String::as_str).collect();
    // `members/` came later than the others: a root made before it has
    // none, which is no shared program.
    let members = path.join("members");
    let members = if create || !members.exists() {
        PinRoot::create(&members, MEMBER_MEMBERS)?
    } else {
        sub("members", MEMBER_MEMBERS)?
    };
    let mut links = sub("links", LINK_MEMBERS)?;
    links.set_optional(SWITCH_MEMBERS)?;
    let mut progs = sub("progs", &prog_members)?;
    progs.set_optional(CARRIED_MEMBERS)?;
    Ok(Some(Roots {
        links,
        members,
        progs,
        outer,
    }))
}

/// The tables of `rs` ([`super::meta::tables`]), with the elements of
/// the named sets that none of the programs `lowered` keeps in a map:
/// nothing can change them, and the listing has no map to read them
/// from.
fn tables_listed<'a>(
    rs: &crate::check::tree::Ruleset,
    ast: &crate::syntax::ast::Ruleset,
    lowered: impl Iterator<Item = &'a crate::compile::Lowered>,
) -> Vec<super::meta::TableMeta> {
    let in_maps: std::collections::HashSet<_> = lowered
        .flat_map(|l| l.set_maps.iter().filter_map(|m| m.set))
        .collect();
    let mut tables = super::meta::tables(rs, ast);
    for (id, set) in rs.sets.iter() {
        let Some(name) = &set.name else { continue };
        if in_maps.contains(&id) {
            continue;
        }
        let table = &rs.tables[set.table].name;
        let decl = tables
            .iter_mut()
            .filter(|t| &t.name == table)
            .flat_map(|t| t.sets.iter_mut())
            .find(|d| &d.head.name == name);
        if let Some(d) = decl {
            d.elements = Some(super::sets::declared_elements(rs, id));
        }
    }
    tables
}

/// A program lowered and described, before the pin root's lock.
struct Planned {
    attach: Attach,
    device: String,
    key: String,
    lowered: crate::compile::Lowered,
    shared: bool,
    meta: Meta,
    meta_obj: Loaded,
    meta_map: MapId,
}

/// A program built and loaded, waiting to be pinned and attached.
struct Prepared {
    attach: Attach,
    device: String,
    key: String,
    compiled: Compiled,
    /// The loaded object; for a member of a dispatcher, loaded when it
    /// joins (under the pin root's lock).
    loaded: Option<Loaded>,
    /// Whether it joins the device's XDP dispatcher.
    shared: bool,
    /// After it joined: the dispatcher's id and members' names.
    chain: Option<(u32, Vec<String>)>,
    meta: Meta,
    /// The object holding the `meta` map.
    meta_obj: Loaded,
    meta_map: MapId,
    /// The object holding the `carried` map.
    carried_obj: Loaded,
    carried_map: MapId,
    /// The sets whose live contents it keeps (`TABLE SET`).
    sets_kept: Vec<String>,
    /// Its set maps (by number) to fill from a running copy.
    fill: Vec<(usize, Map)>,
}

impl Prepared {
    fn loaded(&self) -> &Loaded {
        self.loaded
            .as_ref()
            .expect("a member of a dispatcher is loaded when it joins, before its pins")
    }

    fn prog(&self) -> &Program {
        self.loaded().program(self.compiled.program.prog)
    }

    /// The map pinned as `member`, if the program has it.
    fn map(&self, member: &str) -> Option<&Map> {
        let m = &self.compiled.program.maps;
        let id = match member {
            "counters" => m.counters,
            "quotas" => m.quotas,
            "limits" => m.limits,
            "log" => m.log.map(|l| l.ring),
            "drops" => m.log.map(|l| l.drops),
            "fwd" => self.compiled.program.fwd,
            // The kernel empties a program array when its last file
            // closes: pinned, the tail calls keep their programs.
            "progs" => self.compiled.program.progs,
            "carried" => return Some(self.carried_obj.map(self.carried_map)),
            set => {
                let i: usize = set.strip_prefix("set")?.parse().ok()?;
                self.compiled.program.maps.sets.get(i).copied()
            }
        }?;
        Some(self.loaded().map(id))
    }
}

/// A frozen one-entry array holding `bytes`.
fn blob_map(name: &str, bytes: &[u8]) -> Result<(Loaded, MapId), DeployError> {
    let mut o = Object::new();
    let spec = MapSpec::array(name, bytes.len().max(1) as u32, 1)
        .with_bytes(0u32.to_ne_bytes(), bytes.to_vec())
        .frozen();
    let id = o
        .add_map(spec)
        .map_err(|e| DeployError::Other(e.to_string()))?;
    let loaded = o.load().map_err(|source| DeployError::Load {
        target: format!("the {name} map"),
        source,
    })?;
    Ok((loaded, id))
}

/// Compiles, loads, attaches and pins the ruleset of `src`, replacing
/// the one running under the pin root (see the [module docs](super)).
pub fn load(src: &Source, opts: &LoadOptions) -> Result<Report, DeployError> {
    let existed = opts.pin_root.exists();
    let result = load_in_root(src, opts);
    if result.is_err() && !existed {
        // The pin root this failed load made, empty: gone again.
        let _ = unload(&opts.pin_root);
    }
    result
}

fn load_in_root(src: &Source, opts: &LoadOptions) -> Result<Report, DeployError> {
    // The source's own ruleset unless the devices change: a copy of a
    // million-element set costs a tenth of a second.
    let rs: Cow<'_, crate::check::tree::Ruleset> = match &opts.devices {
        Some(d) => Cow::Owned(on_devices(&src.ruleset, d)),
        None => Cow::Borrowed(&src.ruleset),
    };
    let targets = targets(&rs, opts.ingress);
    if targets.is_empty() {
        return Err(DeployError::Other(
            "the ruleset has no base chain to attach (none, or only in dormant tables)".into(),
        ));
    }
    if opts.shared.is_some() {
        if opts.ingress == IngressHook::Tcx {
            return Err(DeployError::Other(
                "--shared is for XDP: it joins the interface's XDP dispatcher, and tcx has no \
                 dispatcher (tcx programs share a hook anyway; place them with --first, \
                 --before or --after)"
                    .into(),
            ));
        }
        if !targets.iter().any(|(a, _)| *a == Attach::Xdp) {
            return Err(DeployError::Other(
                "--shared is for XDP, and the ruleset has no ingress chain (egress chains run \
                 at tcx egress)"
                    .into(),
            ));
        }
    }
    for (_, d) in &targets {
        Interface::named(d.as_str()).resolve()?;
    }
    // Everything that can fail without the pins is done first: the
    // programs lowered and described. They are built and loaded under
    // the pin root's lock, with the maps of the sets they keep.
    let mut lowerings = Vec::new();
    for (attach, dev) in &targets {
        lowerings.push((*attach, dev, lower_for(src, &rs, *attach, &device(dev))?));
    }
    let tables = tables_listed(&rs, &src.ast, lowerings.iter().map(|l| &l.2));
    let mut planned = Vec::new();
    for (attach, dev, lowered) in lowerings {
        if lowered.set_maps.len() > SET_MEMBERS {
            return Err(DeployError::Compile {
                target: target_name(attach, dev),
                message: format!(
                    "{} set maps: a program unit pins at most {SET_MEMBERS}",
                    lowered.set_maps.len()
                ),
            });
        }
        let shared = opts.shared.is_some() && attach == Attach::Xdp;
        if shared && !lowered.more.is_empty() {
            return Err(DeployError::Compile {
                target: target_name(attach, dev),
                message: format!(
                    "--shared takes rules that fit one program, and these take {} chained by \
                     tail calls: a member of an XDP dispatcher is an extension program, and \
                     the kernel refuses tail calls from it into XDP programs (a program array \
                     takes programs of one type; Linux 6.1 refuses to fill it). Put values in \
                     sets instead of rules, or load without --shared",
                    1 + lowered.more.len()
                ),
            });
        }
        let meta = Meta::new(src.name(), &rs, tables.clone(), &lowered);
        let (meta_obj, meta_map) = blob_map("nft_meta", meta.to_json().as_bytes())?;
        planned.push(Planned {
            attach,
            device: dev.clone(),
            key: key(attach, dev),
            lowered,
            shared,
            meta,
            meta_obj,
            meta_map,
        });
    }
    let (placeholder_obj, placeholder) = blob_map(PLACEHOLDER, &[0])?;
    let placeholder = placeholder_obj.map(placeholder);

    let mut roots = open_roots(&opts.pin_root, true)?
        .ok_or_else(|| DeployError::Other(format!("cannot create {}", opts.pin_root.display())))?;
    let _outer = roots.outer.lock()?;
    let links = roots.links.lock()?;
    let members = roots.members.lock()?;
    let progs = roots.progs.lock()?;
    let mut report = Report {
        notes: state::discard_half_made(&[&links, &members, &progs])?,
        ..Report::default()
    };
    let scan = state::scan(&links, &members, &progs)?;
    let generation = scan.max_gen + 1;
    // A program runs alone or in a dispatcher; a reload keeps that.
    for p in &planned {
        let Some(old) = scan.current.iter().find(|c| c.key == p.key) else {
            continue;
        };
        let target = target_name(p.attach, &p.device);
        match (old.member.is_some(), p.shared) {
            (true, false) => {
                return Err(DeployError::Other(format!(
                    "{target} runs in the device's XDP dispatcher (loaded with --shared): load \
                     with --shared again to replace it, or unload first"
                )));
            }
            (false, true) => {
                return Err(DeployError::Other(format!(
                    "{target} runs alone (loaded without --shared): load without --shared to \
                     replace it, or unload first"
                )));
            }
            _ => {}
        }
    }
    // The sets that did not change keep their maps: built and loaded
    // with them (see [`plan_sets`]).
    let mut prepared = Vec::new();
    for pl in planned {
        let target = target_name(pl.attach, &pl.device);
        let plan = plan_sets(&scan, &progs, &pl.key, &target, &pl.meta)?;
        for r in &plan.reset {
            if !report.sets_reset.contains(r) {
                report.sets_reset.push(r.clone());
            }
        }
        let compiled = build_for(src, pl.lowered, Mode::Hook, &plan.existing, true)?;
        let loaded = if pl.shared {
            None
        } else {
            Some(compiled.load(&rs)?)
        };
        let (carried_obj, carried_map) = carried_map(pl.meta.counters.len())?;
        prepared.push(Prepared {
            attach: pl.attach,
            device: pl.device,
            key: pl.key,
            compiled,
            loaded,
            shared: pl.shared,
            chain: None,
            meta: pl.meta,
            meta_obj: pl.meta_obj,
            meta_map: pl.meta_map,
            carried_obj,
            carried_map,
            sets_kept: plan.kept,
            fill: plan.fill,
        });
    }
    // Members join their dispatchers: their load is their attachment.
    // Until the commit, `joins` takes them out again on any failure.
    let mut joins = Joins::default();
    for p in prepared.iter_mut().filter(|p| p.shared) {
        let old = scan
            .current
            .iter()
            .find(|c| c.key == p.key)
            .and_then(|c| c.member.as_ref())
            .and_then(|m| m.id().ok());
        join_member(p, &rs, old, opts, &mut joins)?;
    }
    // Copies of unchanged sets that had no map of their shape in the
    // program they replace (a new device, say): filled from another
    // copy, before the switch.
    for p in &prepared {
        for (i, old) in &p.fill {
            let maps = &p.compiled.program.maps;
            let new = match maps.set_contents.get(*i).copied().flatten() {
                Some(inner) => p.loaded().map(inner),
                None => p.loaded().map(maps.sets[*i]),
            };
            fill_from(new, old).map_err(|e| {
                DeployError::Other(format!(
                    "{}: filling set map nft_set{i} from the running one: {e}",
                    target_name(p.attach, &p.device)
                ))
            })?;
        }
    }

    // Stage the program units.
    let mut staged: Vec<(String, Staging<'_, '_>)> = Vec::new();
    for p in &prepared {
        let name = format!("{}-{generation}", p.key);
        let mut st = progs.stage(&name)?;
        st.pin("meta", p.meta_obj.map(p.meta_map))?;
        st.pin("prog", p.prog())?;
        for member in PROG_MEMBERS[2..]
            .iter()
            .map(|m| m.to_string())
            .chain(set_members())
        {
            st.pin(&member, p.map(&member).unwrap_or(placeholder))?;
        }
        staged.push((name, st));
    }
    // Members, pinned in staged member units.
    let mut new_members: Vec<(String, Staging<'_, '_>)> = Vec::new();
    for p in prepared.iter().filter(|p| p.shared) {
        let name = format!("{}-{generation}", p.key);
        let mut st = members.stage(&name)?;
        st.pin("prog", p.prog())?;
        new_members.push((name, st));
    }
    // The next generation's rules in every switch; switches attached to
    // the hooks that had none, pinned in staged link units. Until the
    // flip every hook runs the old rules (a new hook none).
    let mut flip = Flip::new(&scan)?;
    let mut new_links: Vec<(String, Staging<'_, '_>, NewSwitch)> = Vec::new();
    for p in prepared.iter().filter(|p| !p.shared) {
        let target = target_name(p.attach, &p.device);
        if let Some(switch) = scan
            .current
            .iter()
            .find(|c| c.key == p.key)
            .and_then(|c| c.switch.as_ref())
        {
            flip.fill(&switch.slots, p.prog(), &target)?;
            continue;
        }
        let new = flip.attach(p.attach, &p.device, p.prog(), &opts.tcx_place)?;
        let mut st = links.stage(&p.key)?;
        st.pin("link", &new.link)?;
        st.pin("switch", new.prog())?;
        st.pin("slots", new.slots())?;
        st.pin("generation", new.generation())?;
        new_links.push((p.key.clone(), st, new));
    }
    // Counters, just before the switch.
    let mut carries = Vec::new();
    for (i, p) in prepared.iter().enumerate() {
        let Some(old) = scan.current.iter().find(|c| c.key == p.key) else {
            continue;
        };
        let (Some(meta), Some(counters), Some(new_counters)) =
            (&old.meta, &old.counters, p.map("counters"))
        else {
            continue;
        };
        let old = OldCounters {
            meta,
            counters,
            carried: old.carried.as_ref(),
        };
        let carry = Carry::before_switch(old, &p.meta, new_counters).map_err(|e| {
            DeployError::Other(format!(
                "{}: carrying the counters: {e}",
                target_name(p.attach, &p.device)
            ))
        })?;
        carries.push((i, carry));
    }
    // The switch: one write moves every hook to the new rules.
    flip.flip()?;
    // What the old rules counted up to the switch. Not for members of a
    // dispatcher, which the switch does not move: the old member runs
    // on beside the new one until the commit, and both count the
    // packets that cross them meanwhile.
    let switched = |i: usize| !prepared[i].shared;
    if carries.iter().any(|(i, _)| switched(*i)) {
        wait_for_switch()?;
    }
    for (i, carry) in carries.iter().filter(|(i, _)| switched(*i)) {
        let p = &prepared[*i];
        carry
            .after_switch(p.carried_obj.map(p.carried_map))
            .map_err(|e| {
                DeployError::Other(format!(
                    "{}: carrying the counters: {e}",
                    target_name(p.attach, &p.device)
                ))
            })?;
    }
    let mut carried = vec![0; prepared.len()];
    for (i, carry) in &carries {
        carried[*i] = carry.len();
    }
    // Commit: the new units take their names.
    let mut committed_progs = Vec::new();
    let mut committed_links = Vec::new();
    let mut committed_members = Vec::new();
    let mut failure = None;
    for (name, st) in staged {
        match st.commit() {
            Ok(()) => committed_progs.push(name),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if failure.is_none() {
        for (name, st) in new_members.drain(..) {
            match st.commit() {
                Ok(()) => committed_members.push(name),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
    }
    if failure.is_none() {
        for (name, st, _link) in new_links.drain(..) {
            match st.commit() {
                Ok(()) => committed_links.push(name),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
    }
    if let Some(e) = failure {
        // `flip`, dropped, switches back.
        for n in &committed_links {
            let _ = links.remove(n);
        }
        for n in &committed_members {
            let _ = members.remove(n);
        }
        for n in &committed_progs {
            let _ = progs.remove(n);
        }
        // `joins`, dropped, takes the new members out of the dispatchers.
        return Err(e.into());
    }
    joins.commit();
    drop(new_links);
    report.notes.extend(flip.commit());
    // The old ruleset's leftovers: programs replaced, devices no longer
    // named.
    for name in scan
        .current
        .iter()
        .filter_map(|c| c.unit.as_ref())
        .chain(&scan.stale)
    {
        if let Err(e) = progs.remove(name) {
            report
                .notes
                .push(format!("cannot remove old program unit {name}: {e}"));
        }
    }
    for old in &scan.current {
        let replaced = prepared.iter().any(|p| p.key == old.key);
        if let (Some(member), Some(unit)) = (&old.member, &old.member_unit) {
            // A member replaced or no longer wanted leaves its dispatcher.
            match leave_member(&old.key, member, &members, unit) {
                Ok(()) if !replaced => report.detached.push(old.key.clone()),
                Ok(()) => {}
                Err(e) => report.notes.push(format!(
                    "cannot take the old program {} out of its dispatcher: {e}",
                    old.key
                )),
            }
            continue;
        }
        if replaced {
            continue;
        }
        match links.remove(&old.key) {
            Ok(()) => report.detached.push(old.key.clone()),
            Err(e) => report
                .notes
                .push(format!("cannot detach the old program {}: {e}", old.key)),
        }
    }
    for stale in &scan.stale_members {
        let key = stale.unit.rsplit_once('-').map_or("", |k| k.0);
        if let Err(e) = leave_member(key, &stale.member, &members, &stale.unit) {
            report.notes.push(format!(
                "cannot remove the stale member unit {}: {e}",
                stale.unit
            ));
        }
    }
    for (p, carried) in prepared.iter().zip(carried) {
        let link_id = links
            .unit(&p.key)
            .ok()
            .and_then(|u| u.link("link").ok())
            .and_then(|l| l.id().ok())
            .map_or(0, |id| id.get());
        report.programs.push(Deployed {
            attach: p.attach,
            device: p.device.clone(),
            insns: p.compiled.insns(),
            maps: p.compiled.maps(),
            prog_id: p.prog().id().map_or(0, |id| id.get()),
            link_id,
            replaced: scan.current.iter().any(|c| c.key == p.key),
            carried,
            sets_kept: p.sets_kept.clone(),
            dispatcher: p.chain.clone(),
        });
    }
    Ok(report)
}

/// The members that joined a dispatcher in this load: dropped before
/// [`Joins::commit`], it takes them out again.
#[derive(Default)]
struct Joins {
    joined: Vec<(String, KernelProgId)>,
}

impl Joins {
    /// They stay.
    fn commit(&mut self) {
        self.joined.clear();
    }
}

impl Drop for Joins {
    fn drop(&mut self) {
        for (dev, id) in self.joined.drain(..).rev() {
            let _ = dispatcher::leave(Interface::named(dev.as_str()), id, None);
        }
    }
}

/// Loads `p` into its device's XDP dispatcher: with its maps' contents
/// as initial contents (so it runs complete from its first packet) but
/// for the counters' initial values, written right after. It goes right
/// after `old` (the member it replaces) when that is still in the
/// dispatcher, else where `opts` places it.
fn join_member(
    p: &mut Prepared,
    rs: &crate::check::tree::Ruleset,
    old: Option<KernelProgId>,
    opts: &LoadOptions,
    joins: &mut Joins,
) -> Result<(), DeployError> {
    let target = target_name(p.attach, &p.device);
    let ifindex = |dev: &str| Interface::named(dev).resolve().ok();
    let program = &p.compiled.program;
    let object = program
        .with_entries(&p.compiled.lowered, &ifindex)
        .map_err(|e| DeployError::Compile {
            target: target.clone(),
            message: e.message,
        })?;
    let iface = Interface::named(p.device.as_str());
    let in_chain = |id| matches!(dispatcher::query(iface.clone()), Ok(Hook::Dispatcher(c)) if c.ids().contains(&id));
    let placement = match old {
        Some(id) if in_chain(id) => Placement::After(Anchor::Id(id)),
        _ => opts.shared.clone().unwrap_or_default(),
    };
    let joined = dispatcher::join(
        iface,
        &object,
        program.prog,
        &JoinOptions::new().placement(placement),
    )
    .map_err(|e| match e {
        DispatcherError::Load(source) if source.missing_privilege().is_some() => {
            DeployError::Other(format!(
                "{target}: joining the XDP dispatcher loads the firewall as an extension \
                 program (BPF_PROG_TYPE_EXT), which some kernels refuse even to root: {source}"
            ))
        }
        DispatcherError::Load(source) => DeployError::Load {
            target: target.clone(),
            source,
        },
        e => DeployError::Other(format!("{target}: joining the XDP dispatcher: {e}")),
    })?;
    joins.joined.push((p.device.clone(), joined.id));
    program
        .initialize_counters(&joined.loaded, &p.compiled.lowered, rs)
        .map_err(|e| DeployError::Compile {
            target,
            message: e.message,
        })?;
    p.chain = Some((
        joined.chain.dispatcher.get(),
        joined.chain.names().iter().map(|n| n.to_string()).collect(),
    ));
    p.loaded = Some(joined.loaded);
    Ok(())
}

/// Takes `member` out of the dispatcher of the device of `key` (when it
/// is still there) and removes its unit.
fn leave_member(
    key: &str,
    member: &Program,
    members: &bpf_builder::pins::Locked<'_>,
    unit: &str,
) -> Result<(), DeployError> {
    let id = member
        .id()
        .map_err(DeployError::io(format!("reading the id of members/{unit}")))?;
    let dev = device_of_key(key);
    let iface = Interface::named(dev.as_str());
    if let Ok(Hook::Dispatcher(c)) = dispatcher::query(iface.clone())
        && c.ids().contains(&id)
    {
        dispatcher::leave(iface, id, None).map_err(|e| {
            DeployError::Other(format!(
                "taking program {id} out of the XDP dispatcher of {dev}: {e}"
            ))
        })?;
    }
    members.remove(unit)?;
    Ok(())
}

/// The device of a unit key ([`key`] undone).
fn device_of_key(key: &str) -> String {
    let dev = key.split_once('-').map_or(key, |k| k.1);
    let dev = dev
        .strip_prefix("ingress-")
        .or_else(|| dev.strip_prefix("egress-"))
        .unwrap_or(dev);
    let bytes = dev.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = dev
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Attaches `prog` where `attach` says on `device`.
pub(super) fn attach_link(
    attach: Attach,
    device: &str,
    prog: &Program,
    place: &tcx::Place,
) -> Result<Link, DeployError> {
    Ok(match attach {
        Attach::Xdp => xdp::attach(device, prog, XdpMode::Auto)?,
        Attach::TcxIngress => tcx::attach_placed(device, tcx::Hook::Ingress, prog, place)?,
        Attach::TcxEgress => tcx::attach_placed(device, tcx::Hook::Egress, prog, place)?,
    })
}

/// What a reload does with the set maps of one new program.
struct SetPlan {
    /// By set map number: the running map it uses instead of a new one.
    existing: Vec<Option<ExistingMap>>,
    /// Set maps (by number) to fill from a running copy once loaded.
    fill: Vec<(usize, Map)>,
    /// The sets kept (`TABLE SET`).
    kept: Vec<String>,
    /// Sets that start from the file's elements, and why.
    reset: Vec<String>,
}

/// Whether the running map `old` describes can stand for the new map
/// `new` describes: the same set, declared the same, in a map of the
/// same kind, key layout, verdicts (a verdict map's values index them),
/// room and values. The kernel checks the map's own shape again when the
/// new program is loaded with it.
fn same_map(old: &SetMeta, new: &SetMeta) -> bool {
    let mut old = old.clone();
    old.member.clone_from(&new.member);
    !old.decl.is_empty() && old == *new
}

/// Which set maps of the new program `meta` describes (for `key`,
/// `target` in messages) keep the running ruleset's contents.
///
/// A named set is unchanged when a running program has a copy of it
/// (the same table and name) whose declaration is the same
/// ([`super::meta::set_declaration`]: key types, flags, size, timeout,
/// declared elements). Each map of an unchanged set is then the running
/// map of the program it replaces (same hook and device), when that one
/// is of the same shape ([`same_map`]): used again, not copied, so an
/// element added or deleted live, or added by the packet path with its
/// expiry and limit state, is there from the first packet the new
/// program sees. A map that program lacks (a new device; a set looked up
/// with another key alignment) is filled from another running copy of
/// the same shape, before the switch; with none, it starts from the
/// file's elements, and so does a set whose declaration changed: both
/// said in [`SetPlan::reset`].
fn plan_sets(
    scan: &state::Scanned,
    progs: &bpf_builder::pins::Locked<'_>,
    key: &str,
    target: &str,
    meta: &Meta,
) -> Result<SetPlan, DeployError> {
    let mut plan = SetPlan {
        existing: vec![None; SET_MEMBERS],
        fill: Vec::new(),
        kept: Vec::new(),
        reset: Vec::new(),
    };
    let running: Vec<(&state::Current, &SetMeta)> = scan
        .current
        .iter()
        .filter_map(|c| Some((c, c.meta.as_ref()?)))
        .flat_map(|(c, m)| m.sets.iter().map(move |s| (c, s)))
        .collect();
    let open = |c: &state::Current, s: &SetMeta| -> Result<Option<Map>, DeployError> {
        let Some(unit) = &c.unit else {
            return Ok(None);
        };
        let map = progs
            .unit(unit)?
            .map(&s.member)
            .map_err(DeployError::io(format!("opening {}/{}", c.key, s.member)))?;
        Ok((map.name() != PLACEHOLDER).then_some(map))
    };
    for new in &meta.sets {
        let Some(i) = new
            .member
            .strip_prefix("set")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&i| i < SET_MEMBERS)
        else {
            continue;
        };
        let name = format!("{} {}", new.table, new.name);
        let copies: Vec<_> = running
            .iter()
            .filter(|(_, s)| s.table == new.table && s.name == new.name)
            .collect();
        if copies.is_empty() {
            // A new set, or one that had no map.
            continue;
        }
        if !copies
            .iter()
            .any(|(_, s)| !s.decl.is_empty() && s.decl == new.decl)
        {
            plan.reset.push(format!(
                "set netdev {name}: its declaration changed: it starts from the file's elements"
            ));
            continue;
        }
        let mut found = None;
        if let Some((c, s)) = copies
            .iter()
            .find(|(c, s)| c.key == key && same_map(s, new))
        {
            found = open(c, s)?.map(|m| (true, m));
        }
        if found.is_none() {
            for (c, s) in copies.iter().filter(|(_, s)| same_map(s, new)) {
                if let Some(m) = open(c, s)? {
                    found = Some((false, m));
                    break;
                }
            }
        }
        match found {
            // The array of maps is used again: it holds the live set.
            Some((true, map)) if super::swap::is_swappable(&map) => {
                plan.existing[i] = Some(ExistingMap::Handle(map))
            }
            // A map of an earlier build (not in an array of maps), or
            // another program's: copied.
            Some((_, map)) => {
                let name = format!("{target}/{}", new.member);
                plan.fill.push((i, super::swap::contents(&name, &map)?));
            }
            None => {
                plan.reset.push(format!(
                    "set netdev {name}: its map on {target} is of another shape (the rules look \
                     it up or add to it otherwise): there it starts from the file's elements"
                ));
                continue;
            }
        }
        if !plan.kept.contains(&name) {
            plan.kept.push(name);
        }
    }
    Ok(plan)
}

/// Makes the map `new` hold what `old` holds.
fn fill_from(new: &Map, old: &Map) -> Result<(), bpf_builder::handle::MapError> {
    let mut want = HashMap::new();
    for e in old.iter() {
        let (k, v) = e?;
        want.insert(k, v);
    }
    let extra: Vec<Vec<u8>> = new
        .keys()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|k| !want.contains_key(k))
        .collect();
    for k in extra {
        new.delete(&k)?;
    }
    for (k, v) in &want {
        new.update(k, v, bpf_builder::handle::UpdateFlags::Any)?;
    }
    Ok(())
}

/// Detaches and removes everything under the pin root, the root
/// included; returns the programs detached (`HOOK-DEVICE` keys). Entries
/// that are not ours are left, and said in the error.
pub fn unload(pin_root: &Path) -> Result<Vec<String>, DeployError> {
    let Some(mut roots) = open_roots(pin_root, false)? else {
        return Ok(Vec::new());
    };
    let mut detached = Vec::new();
    let mut strays = Vec::new();
    {
        let _outer = roots.outer.lock()?;
        let links = roots.links.lock()?;
        let members = roots.members.lock()?;
        let progs = roots.progs.lock()?;
        state::discard_half_made(&[&links, &members, &progs])?;
        let scan = links.scan()?;
        for name in &scan.units {
            links.remove(name)?;
            detached.push(name.clone());
        }
        strays.extend(scan.strays.iter().map(|s| format!("links/{s}")));
        let scan = members.scan()?;
        for name in &scan.units {
            let member = members
                .unit(name)?
                .program("prog")
                .map_err(DeployError::io(format!("opening members/{name}/prog")))?;
            let key = name.rsplit_once('-').map_or(name.as_str(), |k| k.0);
            leave_member(key, &member, &members, name)?;
            if !detached.iter().any(|d| d == key) {
                detached.push(key.to_string());
            }
        }
        strays.extend(scan.strays.iter().map(|s| format!("members/{s}")));
        let scan = progs.scan()?;
        for name in &scan.units {
            progs.remove(name)?;
        }
        strays.extend(scan.strays.iter().map(|s| format!("progs/{s}")));
    }
    if !strays.is_empty() {
        return Err(DeployError::Other(format!(
            "{}: left alone, not ours: {}",
            pin_root.display(),
            strays.join(", ")
        )));
    }
    drop(roots);
    for dir in [
        pin_root.join("links"),
        pin_root.join("members"),
        pin_root.join("progs"),
        pin_root.to_path_buf(),
    ] {
        std::fs::remove_dir(&dir)
            .map_err(DeployError::io(format!("removing {}", dir.display())))?;
    }
    Ok(detached)
}
