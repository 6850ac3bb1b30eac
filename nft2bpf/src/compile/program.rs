//! Whole programs: a [`Lowered`] IR with its action code and the code of
//! each decision, in an object with the maps they use; and, once loaded,
//! the maps' first contents.

use bpf_builder::asm::{Annotation, Asm};
use bpf_builder::ctx::{TcxAction, XdpAction};
use bpf_builder::handle::UpdateFlags;
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{JmpOp, Reg, Size};
use bpf_builder::load::Loaded;
use bpf_builder::map::{ExistingMap, InitValue, MapSpec};
use bpf_builder::object::{MapId, Object, ProgId};
use pktmatch::codegen::SourceText;
use pktmatch::ir::Verdict;
use pktmatch::{EmitOptions, Span, Target};

use super::actions::{
    ActionMaps, ActionOptions, CounterValue, add_actions_reusing, array_lookup, write_counter,
};
use super::{Attach, CounterSlot, Lowered, Outcome};
use crate::check::tree::Ruleset;
use crate::error::Error;
use crate::source::SourceMap;

/// The map of `fwd to` targets: a devmap (XDP) or an array of interface
/// indexes (tcx), by target number.
pub const FWD_MAP: &str = "nft_fwd";

/// The program array of a hook whose rules take several programs: the
/// programs after the first, by number ([`Outcome::Next`]). It must stay
/// open (or pinned) while they run: the kernel empties a program array
/// when its last file descriptor closes.
pub const PROGS_MAP: &str = "nft_progs";

/// In a test run's program, the value of the classifier lookup that
/// decided (one `u32`), for [`Program::classified_rule`]: the program
/// returns the decision, which names the classifier but not the rule.
pub const DECIDED_MAP: &str = "nft_decided";

/// How a program ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// As the hook wants: pass, drop or redirect the packet.
    Hook,
    /// For `BPF_PROG_TEST_RUN`: return the number of the decision
    /// ([`Lowered::decisions`]); the actions run as at the hook.
    TestRun,
}

/// Options of [`build`].
#[derive(Debug, Clone, Copy)]
pub struct ProgramOptions<'s> {
    /// How the program ends.
    pub mode: Mode,
    /// The log ring buffer's size in bytes (a power of two, at least a
    /// page).
    pub log_ring_bytes: u32,
    /// The ruleset's files: the code's annotations (listings, the
    /// verifier's errors) then name each test's file, line and column.
    pub source: Option<&'s SourceMap>,
    /// Maps that exist already, used for the sets' maps of these numbers
    /// instead of new ones (a reload keeps a set's live contents so):
    /// they keep their contents, so [`Program::entries`] writes none
    /// into them.
    pub existing_sets: &'s [Option<ExistingMap>],
    /// Each set's map in a one-entry array of maps, so that a deployed
    /// set can be replaced whole at once
    /// ([`ActionOptions::swappable_sets`]).
    pub swappable_sets: bool,
}

impl<'s> ProgramOptions<'s> {
    /// A program for the hook, with the default log ring buffer, without
    /// source annotations.
    pub fn new(mode: Mode) -> ProgramOptions<'s> {
        ProgramOptions {
            mode,
            log_ring_bytes: super::actions::DEFAULT_LOG_RING_BYTES,
            source: None,
            existing_sets: &[],
            swappable_sets: false,
        }
    }

    /// Sets [`ProgramOptions::swappable_sets`].
    pub fn swappable_sets(mut self, swappable: bool) -> ProgramOptions<'s> {
        self.swappable_sets = swappable;
        self
    }

    /// Sets [`ProgramOptions::existing_sets`].
    pub fn existing_sets(mut self, maps: &'s [Option<ExistingMap>]) -> ProgramOptions<'s> {
        self.existing_sets = maps;
        self
    }

    /// Sets [`ProgramOptions::log_ring_bytes`].
    pub fn log_ring_bytes(mut self, bytes: u32) -> ProgramOptions<'s> {
        self.log_ring_bytes = bytes;
        self
    }

    /// Sets [`ProgramOptions::source`].
    pub fn source(mut self, map: &'s SourceMap) -> ProgramOptions<'s> {
        self.source = Some(map);
        self
    }
}

/// A program built, not loaded yet.
#[derive(Debug, Clone)]
pub struct Program {
    /// The object: the program, its maps and subprograms.
    pub object: Object,
    /// The program.
    pub prog: ProgId,
    /// The maps of the actions.
    pub maps: ActionMaps,
    /// The map of `fwd to` targets ([`FWD_MAP`]), if any.
    pub fwd: Option<MapId>,
    /// The `fwd to` devices, by target number.
    pub fwd_devices: Vec<String>,
    /// The programs tail-called after the first ([`Lowered::more`]), and
    /// their program array ([`PROGS_MAP`]).
    pub more: Vec<ProgId>,
    /// The program array, when there are more programs.
    pub progs: Option<MapId>,
    /// In a test run's program whose classifiers decide, [`DECIDED_MAP`].
    pub decided: Option<MapId>,
}

/// The program's name: `nft_` and the hook (`nft_xdp`, `nft_tcx_ingress`).
pub fn program_name(attach: Attach) -> String {
    format!("nft_{}", attach.name().replace('-', "_"))
}

/// The name of the `n`th program a hook's rules continue in
/// (`nft_xdp_1`, `nft_tcx_in_1`): the kernel refuses names past 15
/// bytes, which `nft_tcx_ingress_1` is.
pub fn next_program_name(attach: Attach, n: usize) -> String {
    let hook = match attach {
        Attach::Xdp => "xdp",
        Attach::TcxIngress => "tcx_in",
        Attach::TcxEgress => "tcx_eg",
    };
    format!("nft_{hook}_{n}")
}

/// Builds the program of `l`.
pub fn build(l: &Lowered, opts: &ProgramOptions<'_>) -> Result<Program, Error> {
    let target = l.attach.target();
    let internal = |e: &dyn std::fmt::Display| Error::new(e.to_string(), Span::default());
    let mut object = Object::new();
    let aopts = ActionOptions::new(target, super::LEN_VAR)
        .log_ring_bytes(opts.log_ring_bytes)
        .swappable_sets(opts.swappable_sets);
    let (maps, code) = add_actions_reusing(
        &mut object,
        &l.actions,
        &l.set_maps,
        opts.existing_sets,
        &aopts,
    )
    .map_err(pkt)?;
    let mut fwd_devices: Vec<String> = Vec::new();
    for d in &l.decisions {
        if let Outcome::Fwd(dev) = &d.outcome
            && !fwd_devices.contains(dev)
        {
            fwd_devices.push(dev.clone());
        }
    }
    let fwd = if fwd_devices.is_empty() || opts.mode == Mode::TestRun {
        None
    } else {
        let n = fwd_devices.len() as u32;
        let spec = match target {
            Target::Xdp => MapSpec::devmap(FWD_MAP, n),
            _ => MapSpec::array(FWD_MAP, 4, n),
        };
        Some(object.add_map(spec).map_err(|e| internal(&e))?)
    };
    let progs = if l.more.is_empty() {
        None
    } else {
        let spec = MapSpec::prog_array(PROGS_MAP, 1 + l.more.len() as u32);
        Some(object.add_map(spec).map_err(|e| internal(&e))?)
    };
    let classified = l.decisions.iter().any(|d| d.classifier.is_some());
    let decided = if classified && opts.mode == Mode::TestRun {
        let spec = MapSpec::array(DECIDED_MAP, 4, 1);
        Some(object.add_map(spec).map_err(|e| internal(&e))?)
    } else {
        None
    };
    let mut verdict = |a: &mut Asm, v: Verdict| {
        let d = &l.decisions[v.0 as usize];
        if let (Some(map), Some(_)) = (decided, d.classifier) {
            keep_decided(a, map);
        }
        match (&d.outcome, progs) {
            (Outcome::Next(n), Some(progs)) => {
                tail_call(a, progs, *n);
                // Never taken: the array holds every program.
                let dropped = match opts.mode {
                    Mode::TestRun => v.0 as i32,
                    Mode::Hook => match target {
                        Target::Xdp => XdpAction::Drop.value(),
                        _ => TcxAction::Drop.value(),
                    },
                };
                a.mov32(Reg::R0, dropped);
                a.exit();
            }
            _ if opts.mode == Mode::TestRun => {
                a.mov32(Reg::R0, v.0 as i32);
                a.exit();
            }
            _ => {
                let fwd_slot = match &d.outcome {
                    Outcome::Fwd(dev) => fwd_devices.iter().position(|x| x == dev),
                    _ => None,
                };
                hook_verdict(a, target, &d.outcome, fwd.zip(fwd_slot));
            }
        }
    };
    // A chain of rules: one verifier state a rule (see the option).
    let eopts = EmitOptions::new(target)
        .keep_context(progs.is_some())
        .reload_at_joins(true);
    let ptype = match l.attach {
        Attach::Xdp => bpf_builder::object::ProgramType::Xdp,
        _ => bpf_builder::object::ProgramType::SchedCls,
    };
    let mut ids = Vec::with_capacity(1 + l.more.len());
    // The prologue's tests come from no rule.
    let annotate = |span: Span| match opts.source {
        _ if span == Span::default() => Annotation::new("the packet's facts (nft_do_chain_netdev)"),
        Some(m) => m.annotation(span),
        None => Annotation::new(""),
    };
    for (n, ir) in std::iter::once(&l.ir).chain(&l.more).enumerate() {
        let asm_code = pktmatch::emit_program(
            ir,
            &eopts,
            SourceText::Annotate(&annotate),
            &mut verdict,
            |a, n, f| code.emit(a, n, f),
        )
        .map_err(pkt)?;
        let name = match n {
            0 => program_name(l.attach),
            n => next_program_name(l.attach, n),
        };
        ids.push(
            object
                .add_program(&name, ptype, asm_code)
                .map_err(|e| internal(&e))?,
        );
    }
    let prog = ids.remove(0);
    Ok(Program {
        object,
        prog,
        maps,
        fwd,
        fwd_devices,
        more: ids,
        progs,
        decided,
    })
}

/// Writes the classifier lookup's value into [`DECIDED_MAP`].
fn keep_decided(a: &mut Asm, map: MapId) {
    let done = a.new_label();
    array_lookup(a, map, 0, done);
    let var = pktmatch::codegen::var_slot(super::lower::CLASSIFIED_VAR);
    a.ldx(Size::W, Reg::R1, Reg::R10, var);
    a.stx(Size::W, Reg::R0, 0, Reg::R1);
    a.bind(done);
}

/// An entry's key and value when the value is bytes.
fn entry_bytes((_, key, value): &(MapId, Vec<u8>, InitValue)) -> Option<(&[u8], &[u8])> {
    match value {
        InitValue::Bytes(bytes) => Some((key, bytes)),
        _ => None,
    }
}

/// `bpf_tail_call(ctx, progs, n)`, the context from where the prologue
/// keeps it; falls through when it fails.
fn tail_call(a: &mut Asm, progs: MapId, n: u32) {
    a.ldx(Size::DW, Reg::R1, Reg::R10, pktmatch::codegen::CONTEXT_SLOT);
    a.ld_map_fd(Reg::R2, progs);
    a.mov32(Reg::R3, n as i32);
    a.call(Helper::TailCall);
}

/// A pktmatch error as ours.
fn pkt(e: pktmatch::Error) -> Error {
    Error::new(e.message, e.span)
}

/// The code of an outcome at the hook; `fwd` is the targets' map and
/// this one's number.
fn hook_verdict(a: &mut Asm, target: Target, outcome: &Outcome, fwd: Option<(MapId, usize)>) {
    let (pass, drop) = match target {
        Target::Xdp => (XdpAction::Pass.value(), XdpAction::Drop.value()),
        _ => (TcxAction::Next.value(), TcxAction::Drop.value()),
    };
    let ret = |a: &mut Asm, v: i32| {
        a.mov32(Reg::R0, v);
        a.exit();
    };
    match (outcome, fwd) {
        (Outcome::Accept, _) => ret(a, pass),
        // A tail call's code is the caller's (see `build`).
        (Outcome::Drop | Outcome::Next(_), _) | (Outcome::Fwd(_), None) => ret(a, drop),
        (Outcome::Fwd(_), Some((map, slot))) if target == Target::Xdp => {
            // A missing entry drops (the flags are the fallback action).
            a.ld_map_fd(Reg::R1, map);
            a.mov32(Reg::R2, slot as i32);
            a.mov64(Reg::R3, i64::from(drop) as i32);
            a.call(Helper::RedirectMap);
            a.exit();
        }
        (Outcome::Fwd(_), Some((map, slot))) => {
            let dropped = a.new_label();
            array_lookup(a, map, slot as u32, dropped);
            a.ldx(Size::W, Reg::R1, Reg::R0, 0);
            a.jmp(JmpOp::Eq, Reg::R1, 0, dropped);
            a.mov32(Reg::R2, 0);
            a.call(Helper::Redirect);
            a.exit();
            a.bind(dropped);
            ret(a, drop);
        }
    }
}

impl Program {
    /// In a test run's program, the rule of decision `d` of the run just
    /// made: the classifier's rule its lookup found, when a classifier
    /// decided; `d.rule` otherwise.
    pub fn classified_rule(
        &self,
        loaded: &Loaded,
        l: &Lowered,
        d: &super::Decision,
    ) -> Option<crate::check::tree::RuleId> {
        let (Some(map), Some(_)) = (self.decided, d.classifier) else {
            return d.rule;
        };
        let value = loaded.map(map).lookup(&0u32.to_ne_bytes()).ok()??;
        let value = u32::from_ne_bytes(value.get(..4)?.try_into().ok()?);
        l.classified_rule(d, value)
    }

    /// Writes the maps' first contents into the loaded object: the
    /// counters' initial values (`counter packets N bytes M`, named
    /// counters'), the sets' elements, the programs tail-called, and the
    /// `fwd to` targets, whose interface indexes `ifindex` gives (a device
    /// it does not know is not forwarded to: those packets are dropped).
    pub fn initialize(
        &self,
        loaded: &Loaded,
        l: &Lowered,
        ruleset: &Ruleset,
        ifindex: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<(), Error> {
        let err = |e: &dyn std::fmt::Display| Error::new(e.to_string(), Span::default());
        self.initialize_counters(loaded, l, ruleset)?;
        let entries = self.entries(l, ifindex)?;
        // A map's entries come together.
        for same in entries.chunk_by(|a, b| a.0 == b.0) {
            let map = loaded.map(same[0].0);
            // Bytes in batches where the map takes them (a classifier of
            // 100,000 rules fills in one call).
            if same.iter().all(|e| entry_bytes(e).is_some()) {
                map.update_all(same.iter().filter_map(entry_bytes))
                    .map_err(|e| err(&e))?;
                continue;
            }
            for (_, key, value) in same {
                match value {
                    InitValue::Prog(prog) => map.set_program(
                        u32::from_ne_bytes(key[..4].try_into().expect("a 4-byte index")),
                        Some(loaded.program(*prog)),
                    ),
                    InitValue::Bytes(bytes) => map.update(key, bytes, UpdateFlags::Any),
                    _ => unreachable!("entries() makes bytes and programs only"),
                }
                .map_err(|e| err(&e))?;
            }
        }
        Ok(())
    }

    /// Writes the counters' initial values (`counter packets N bytes M`,
    /// named counters' values) into the loaded maps; counters that start
    /// at zero are left alone.
    pub fn initialize_counters(
        &self,
        loaded: &Loaded,
        l: &Lowered,
        ruleset: &Ruleset,
    ) -> Result<(), Error> {
        let err = |e: &dyn std::fmt::Display| Error::new(e.to_string(), Span::default());
        if let Some(id) = self.maps.counters {
            let map = loaded.map(id);
            for (slot, c) in l.slots.counters.iter().enumerate() {
                let (packets, bytes) = match *c {
                    CounterSlot::Rule { packets, bytes, .. } => (packets, bytes),
                    CounterSlot::Named(n) => {
                        let n = &ruleset.counters[n];
                        (n.packets, n.bytes)
                    }
                };
                if packets != 0 || bytes != 0 {
                    write_counter(map, slot as u32, CounterValue { packets, bytes })
                        .map_err(|e| err(&e))?;
                }
            }
        }
        Ok(())
    }

    /// The first contents of the maps but the counters: the sets'
    /// elements, the program array's programs, the `fwd` targets (by
    /// their index as `ifindex` gives it). [`Program::initialize`] writes
    /// them into loaded maps; added to the object as initial contents
    /// ([`Program::with_entries`]) they are there before the program can
    /// run, as a program that joins an XDP dispatcher needs (its load is
    /// its attachment).
    pub fn entries(
        &self,
        l: &Lowered,
        ifindex: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<Vec<(MapId, Vec<u8>, InitValue)>, Error> {
        let err = |e: &dyn std::fmt::Display| Error::new(e.to_string(), Span::default());
        let mut out = Vec::with_capacity(l.set_maps.iter().map(|s| s.entries.len()).sum());
        let now = if l.set_maps.iter().any(|s| s.stateful) {
            bpf_builder::sys::clock::monotonic_ns().map_err(|e| err(&e))?
        } else {
            0
        };
        for (n, (set, id)) in l.set_maps.iter().zip(&self.maps.sets).enumerate() {
            // A map used again keeps what it holds.
            if self.object.existing_map(*id).is_some() {
                continue;
            }
            // In an array of maps, the elements go in the map it holds.
            let id = match self.maps.set_contents.get(n).copied().flatten() {
                Some(inner) => inner,
                None => *id,
            };
            for (i, (key, value)) in set.entries.iter().enumerate() {
                let bytes = if set.stateful {
                    let timeout = set.timeouts.get(i).copied().flatten();
                    crate::compile::dynset::ElemValue::new(now, timeout).bytes()
                } else {
                    value.to_ne_bytes().to_vec()
                };
                out.push((id, key.clone(), InitValue::Bytes(bytes)));
            }
        }
        if let Some(id) = self.progs {
            for (n, prog) in self.more.iter().enumerate() {
                out.push((
                    id,
                    (1 + n as u32).to_ne_bytes().to_vec(),
                    InitValue::Prog(*prog),
                ));
            }
        }
        if let Some(id) = self.fwd {
            for (slot, dev) in self.fwd_devices.iter().enumerate() {
                let Some(index) = ifindex(dev) else { continue };
                let key = (slot as u32).to_ne_bytes().to_vec();
                let value = match l.attach.target() {
                    Target::Xdp => {
                        let mut v = [0u8; 8];
                        v[..4].copy_from_slice(&index.to_ne_bytes());
                        v.to_vec()
                    }
                    _ => index.to_ne_bytes().to_vec(),
                };
                out.push((id, key, InitValue::Bytes(value)));
            }
        }
        Ok(out)
    }

    /// The object with [`Program::entries`] as the maps' initial
    /// contents: loading it gives the program its maps filled but for
    /// the counters' initial values.
    pub fn with_entries(
        &self,
        l: &Lowered,
        ifindex: &dyn Fn(&str) -> Option<u32>,
    ) -> Result<Object, Error> {
        let err = |e: &dyn std::fmt::Display| Error::new(e.to_string(), Span::default());
        let mut object = self.object.clone();
        for (map, key, value) in self.entries(l, ifindex)? {
            object.add_map_entry(map, key, value).map_err(|e| err(&e))?;
        }
        Ok(object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{Device, lower};
    use crate::syntax::MemLoader;

    /// The code of a rule is annotated with its file, line and column,
    /// and the line: listings show the line with a caret under the rule,
    /// the verifier's errors `FILE:LINE:COL`.
    #[test]
    fn annotations_name_each_rules_file_line_and_column() {
        let mut map = SourceMap::new();
        let text = "table netdev t {\n\tchain c {\n\t\ttype filter hook ingress device \"eth0\" priority 0;\n\t\ttcp dport 22 drop\n\t}\n}\n";
        let file = map.add("fw.nft", None, text, None);
        let rs = crate::check_ruleset(&mut map, file, &mut MemLoader::new()).expect("checks");
        let l = lower(&rs, Attach::Xdp, &Device::named("eth0")).expect("lowers");
        let p = build(&l, &ProgramOptions::new(Mode::Hook).source(&map)).expect("builds");
        let listing = p.object.listing(p.prog).expect("a listing");
        assert!(
            listing.contains("; \t\ttcp dport 22 drop\n;   ^"),
            "{listing}"
        );
        assert!(listing.contains("the packet's facts"), "{listing}");
        let a = map.annotation(Span::new(
            text.find("tcp").unwrap(),
            text.find(" drop").unwrap(),
        ));
        assert_eq!(
            (a.file.map(|f| f.to_string()), a.line, a.column),
            (Some("fw.nft".to_string()), 4, 3)
        );
    }
}
