//! The code of the statements that act mid-rule (`counter`, `quota`,
//! `limit`, `log`): pktmatch runs it at the rule's `Cond::Act` blocks,
//! and the maps it keeps its state in.
//!
//! [`add_actions`] adds the maps an action table needs to an object and
//! returns their ids ([`ActionMaps`]) with the [`ActionCode`] that emits
//! each action; user space reads the state with [`read_counter`],
//! [`read_quota`], [`log_drops`] and, for log records,
//! [`RingBuf`](bpf_builder::ringbuf::RingBuf) with
//! [`LogRecord::parse`](super::log::LogRecord::parse).
//!
//! Every action reads the packet's length as nft's `skb->len` counts it
//! (at the netdev hooks: without the Ethernet header) from a filter
//! variable the caller's filter computes, and may clobber r0-r5, the
//! caller's stack slot and the counter key's.

use bpf_builder::asm::{Asm, Label};
use bpf_builder::handle::{Map, MapError};
use bpf_builder::helpers::Helper;
use bpf_builder::insn::{AluOp, AtomicOp, JmpOp, Reg::*, Size};
use bpf_builder::map::{ExistingMap, InitValue, MapSpec};
use bpf_builder::object::{FuncId, MapId, Object};
use pktmatch::codegen::{ActionEnd, var_slot};
use pktmatch::{Error, Span, Target};

use super::limit::{self, Bucket};
use super::log::{self, LogMaps};
use super::sets::SetMap;
use crate::check::tree::Limit;

/// The key slot of map lookups: the 4 bytes below r10 that pktmatch
/// leaves to the action and verdict code (its counter key's).
pub(super) const KEY_SLOT: i16 = -4;

/// One statement that acts, as the program runs it. Its number in the
/// compiled chain's action table is the `Cond::Act` block's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Count the packet and its bytes (nft's `skb->len`) into slot
    /// `slot` of the counters map (a rule's anonymous counter, or a
    /// named counter: several rules may share one).
    Count {
        /// The counters map's index.
        slot: u32,
    },
    /// Count the packet into the slot of the rule a classifier's lookup
    /// found ([`super::lower`]'s classifiers): slot `base` plus the rule's
    /// index in the classifier's run, which variable `var` holds shifted
    /// left by one (the low bit is the rule's verdict). The runs' rules
    /// have slots `base..base + rules`; an index past them counts nothing.
    CountIndexed {
        /// The slot of the run's first rule.
        base: u32,
        /// The number of rules (and slots) in the run.
        rules: u32,
        /// The filter variable the lookup wrote its value into.
        var: u32,
    },
    /// Add the packet's bytes to quota `slot`; the match holds until the
    /// quota is used up (or, with `over`, once it is).
    Quota {
        /// The quotas map's index (named quotas are shared).
        slot: u32,
        /// Holds once used up (`quota over`).
        over: bool,
        /// The quota in bytes.
        bytes: u64,
        /// Bytes already used when the ruleset is loaded (`used N`):
        /// the quotas map starts with it.
        used: u64,
    },
    /// Take tokens from rate limit `slot`'s bucket; holds while under the
    /// rate (or, with `over`, over it).
    Limit {
        /// The limits map's index (one per `limit` statement).
        slot: u32,
        /// Its parameters.
        limit: Limit,
    },
    /// Send a log record of the packet for `log` statement `slot`.
    Log {
        /// The index of the statement in the log table (prefix, level,
        /// rule) kept with the program.
        slot: u32,
    },
    /// `add @set { KEY ... }` or `update @set { ... }` with the key of a
    /// `Cond::Lookup` ([`super::dynset`]): holds unless the set is full
    /// or the element's limit breaks.
    DynSet {
        /// The set's map number.
        map: u32,
        /// `update`: a found element's timeout restarts.
        update: bool,
        /// New elements' timeout in milliseconds (0: none).
        timeout_ms: u64,
        /// The limit new elements get.
        limit: Option<Limit>,
    },
    /// Look the key of a `Cond::Lookup` up in the map `map` of a set
    /// with state ([`super::dynset`]): fails on a miss or an expired
    /// element; on a hit, with `limits`, runs the element's limit as
    /// nft's `nft_lookup_eval` does (`nft_set_elem_update_expr`), and
    /// fails when it breaks.
    LookupElement {
        /// The set's map number.
        map: u32,
        /// Whether the element's limit runs (a lookup that is not
        /// negated, in a program where elements may have limits).
        limits: bool,
    },
    /// Look the key of a `Cond::Lookup` up in set map `map`: falls
    /// through with r0 at the entry's value on a hit, fails on a miss.
    Lookup {
        /// The map's number ([`SetMap`]s, in the order given to
        /// [`add_actions`]).
        map: u32,
    },
}

/// Map names (the kernel keeps 15 bytes).
pub const COUNTERS_MAP: &str = "nft_counters";
/// The quotas map's name.
pub const QUOTAS_MAP: &str = "nft_quotas";
/// The limits map's name.
pub const LIMITS_MAP: &str = "nft_limits";
/// The log ring buffer's name.
pub const LOG_MAP: &str = "nft_log";
/// The log drop counter's name.
pub const LOG_DROPS_MAP: &str = "nft_log_drops";
/// The limit subprogram's name.
pub const LIMIT_FUNCTION: &str = "nft_limit_take";
pub use super::dynset::ELEM_LIMIT_FUNCTION;

/// The log ring buffer's default size: 256 KiB, about 1600 records.
pub const DEFAULT_LOG_RING_BYTES: u32 = 1 << 18;

/// How the actions' code is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionOptions {
    /// The program type (XDP or tc; socket filters take no actions).
    pub target: Target,
    /// The filter variable holding the packet's length as nft counts it.
    pub len_var: u32,
    /// The log ring buffer's size (a power of two, at least a page).
    pub log_ring_bytes: u32,
    /// Each set's map is the map in slot 0 of a one-entry array of maps
    /// ([`SetMap::swappable_spec`]), which the code reads first: a
    /// deployed program's sets can then be replaced whole, at once.
    pub swappable_sets: bool,
}

impl ActionOptions {
    /// Options for `target` with the length in variable `len_var`.
    pub fn new(target: Target, len_var: u32) -> Self {
        ActionOptions {
            target,
            len_var,
            log_ring_bytes: DEFAULT_LOG_RING_BYTES,
            swappable_sets: false,
        }
    }

    /// Sets [`ActionOptions::swappable_sets`].
    pub fn swappable_sets(mut self, swappable: bool) -> Self {
        self.swappable_sets = swappable;
        self
    }

    /// Sets [`ActionOptions::log_ring_bytes`].
    pub fn log_ring_bytes(mut self, bytes: u32) -> Self {
        self.log_ring_bytes = bytes;
        self
    }
}

/// The maps of an action table, those it needs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActionMaps {
    /// Per-CPU array of [`CounterValue`]s, by counter slot.
    pub counters: Option<MapId>,
    /// Shared array of `u64` bytes consumed, by quota slot.
    pub quotas: Option<MapId>,
    /// Shared array of token bucket states, by limit slot.
    pub limits: Option<MapId>,
    /// The log's ring buffer and drop counter.
    pub log: Option<LogMaps>,
    /// The sets' maps, by map number: the map the program names (with
    /// [`ActionOptions::swappable_sets`], the array of maps holding the
    /// set's map).
    pub sets: Vec<MapId>,
    /// With [`ActionOptions::swappable_sets`], the map made for each set
    /// and put in its array's slot 0 (none for an array of maps that
    /// exists already: it holds its map).
    pub set_contents: Vec<Option<MapId>>,
    /// Whether the sets' maps are in arrays of maps.
    pub swappable_sets: bool,
    /// Whether each set's map holds [`ElemValue`](super::dynset::ElemValue)s.
    pub stateful: Vec<bool>,
}

/// The code of an action table: [`ActionCode::emit`] has the signature of
/// pktmatch's [`ActionCode`](pktmatch::codegen::ActionCode).
#[derive(Debug, Clone)]
pub struct ActionCode {
    actions: Vec<Action>,
    /// By action number: the bucket of a `limit`.
    buckets: Vec<Option<Bucket>>,
    maps: ActionMaps,
    take: Option<FuncId>,
    elem_limit: Option<FuncId>,
    target: Target,
    len_slot: i16,
}

/// Looks up index `slot` of the array `map` into r0; jumps to `null` if
/// absent. Clobbers r0-r5 and the key slot.
pub(super) fn array_lookup(a: &mut Asm, map: MapId, slot: u32, null: Label) {
    a.st(Size::W, R10, KEY_SLOT, slot as i32);
    // Every index of an array exists: `null` is never taken, but the
    // verifier wants the check.
    lookup_key_at(a, map, KEY_SLOT, null);
}

/// Looks the key at stack offset `key` up in `map` into r0; jumps to
/// `null` if absent. Clobbers r0-r5.
pub(super) fn lookup_key_at(a: &mut Asm, map: MapId, key: i16, null: Label) {
    lookup_set_key(a, SetMapRef::direct(map), key, null);
}

/// The map a set's code names: the set's map, or the array of maps
/// whose slot 0 holds it ([`ActionOptions::swappable_sets`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetMapRef {
    /// The map the program names.
    pub map: MapId,
    /// `map` is a one-entry array of maps holding the set's map.
    pub swappable: bool,
}

impl SetMapRef {
    /// A map named directly.
    pub fn direct(map: MapId) -> SetMapRef {
        SetMapRef {
            map,
            swappable: false,
        }
    }

    /// Puts the set's map in r1; jumps to `null` when an array of maps
    /// holds none (never, once deployed). Clobbers r0-r5 and
    /// [`KEY_SLOT`].
    pub(super) fn load_r1(&self, a: &mut Asm, null: Label) {
        if self.swappable {
            // The inner map of the moment: a swap in between is seen by
            // the next packet.
            array_lookup(a, self.map, 0, null);
            a.mov64(R1, R0);
        } else {
            a.ld_map_fd(R1, self.map);
        }
    }
}

/// Looks the key at stack offset `key` up in the set map `set` into r0;
/// jumps to `null` if absent. Clobbers r0-r5 and [`KEY_SLOT`].
pub(super) fn lookup_set_key(a: &mut Asm, set: SetMapRef, key: i16, null: Label) {
    set.load_r1(a, null);
    a.mov64(R2, R10);
    a.add64(R2, i32::from(key));
    a.call(Helper::MapLookupElem);
    a.jmp(JmpOp::Eq, R0, 0, null);
}

/// A counter's value: `{packets, bytes}`, as in the counters map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterValue {
    /// Packets counted.
    pub packets: u64,
    /// Their bytes (nft's `skb->len`).
    pub bytes: u64,
}

/// Size of a counter's value.
const COUNTER_SIZE: u32 = 16;

/// The number of entries a map needs for these slots (at least one).
fn entries(slots: impl Iterator<Item = u32>) -> Result<u32, Error> {
    let max = slots.max().unwrap_or(0);
    max.checked_add(1)
        .ok_or_else(|| Error::new(format!("action slot {max} is too large"), Span::default()))
}

/// Adds the maps `actions` needs to `object` (none for kinds the table
/// lacks) and, with limits, the limit subprogram; returns the maps and
/// the code of the actions.
pub fn add_actions(
    object: &mut Object,
    actions: &[Action],
    sets: &[SetMap],
    opts: &ActionOptions,
) -> Result<(ActionMaps, ActionCode), Error> {
    add_actions_reusing(object, actions, sets, &[], opts)
}

/// [`add_actions`], with the sets' maps that `existing` gives (by map
/// number) used instead of new ones: a reload keeps a set's live
/// contents so. Such a map is checked against the set's shape at load.
pub fn add_actions_reusing(
    object: &mut Object,
    actions: &[Action],
    sets: &[SetMap],
    existing: &[Option<ExistingMap>],
    opts: &ActionOptions,
) -> Result<(ActionMaps, ActionCode), Error> {
    if opts.target == Target::SocketFilter {
        return Err(Error::new(
            "counter, quota, limit and log need an XDP or tc program",
            Span::default(),
        ));
    }
    let bad_var = actions.iter().find_map(|a| match *a {
        Action::CountIndexed { var, .. } if var >= pktmatch::ir::MAX_VARS => Some(var),
        _ => None,
    });
    if let Some(var) = bad_var {
        return Err(Error::new(
            format!("no filter variable {var}"),
            Span::default(),
        ));
    }
    if opts.len_var >= pktmatch::ir::MAX_VARS {
        return Err(Error::new(
            format!("no filter variable {}", opts.len_var),
            Span::default(),
        ));
    }
    let object_err =
        |e: bpf_builder::object::ObjectError| Error::new(e.to_string(), Span::default());
    let mut maps = ActionMaps::default();
    let counters = actions.iter().filter_map(|a| match *a {
        Action::Count { slot } => Some(slot),
        Action::CountIndexed { base, rules, .. } => Some(base + rules.saturating_sub(1)),
        _ => None,
    });
    if counters.clone().next().is_some() {
        let spec = MapSpec::per_cpu_array(COUNTERS_MAP, COUNTER_SIZE, entries(counters)?);
        maps.counters = Some(object.add_map(spec).map_err(object_err)?);
    }
    if let Some(spec) = quotas_map(actions)? {
        maps.quotas = Some(object.add_map(spec).map_err(object_err)?);
    }
    let limits = actions.iter().filter_map(|a| match a {
        Action::Limit { slot, .. } => Some(*slot),
        _ => None,
    });
    let mut take = None;
    if limits.clone().next().is_some() {
        let id = object
            .add_map(limit::map(LIMITS_MAP, entries(limits)?))
            .map_err(object_err)?;
        let code = limit::take_function(id)
            .finish()
            .map_err(|e| Error::new(format!("internal error: {e}"), Span::default()))?;
        take = Some(
            object
                .add_function(LIMIT_FUNCTION, code)
                .map_err(object_err)?,
        );
        maps.limits = Some(id);
    }
    if actions.iter().any(|a| matches!(a, Action::Log { .. })) {
        let ring = MapSpec::ring_buf(LOG_MAP, opts.log_ring_bytes);
        let ring = object.add_map(ring).map_err(object_err)?;
        let drops = MapSpec::per_cpu_array(LOG_DROPS_MAP, 8, 1);
        let drops = object.add_map(drops).map_err(object_err)?;
        maps.log = Some(LogMaps { ring, drops });
    }
    maps.swappable_sets = opts.swappable_sets;
    for (i, set) in sets.iter().enumerate() {
        let spec = if opts.swappable_sets {
            set.swappable_spec(i)
        } else {
            set.spec(i)
        };
        let (id, contents) = match existing.get(i).cloned().flatten() {
            Some(map) => (object.add_existing_map(spec, map), None),
            None if opts.swappable_sets => {
                let inner = object.add_map(set.inner_spec(i)).map_err(object_err)?;
                let outer = spec.with_entry(0u32.to_ne_bytes(), InitValue::Map(inner));
                (object.add_map(outer), Some(inner))
            }
            None => (object.add_map(spec), None),
        };
        maps.sets.push(id.map_err(object_err)?);
        maps.set_contents.push(contents);
        maps.stateful.push(set.stateful);
    }
    let buckets = actions
        .iter()
        .map(|a| match a {
            Action::Limit { slot, limit } => Bucket::new(limit)
                .map(Some)
                .map_err(|e| Error::new(format!("limit {slot}: {e}"), Span::default())),
            Action::DynSet {
                map,
                limit: Some(limit),
                ..
            } => Bucket::new(limit)
                .map(Some)
                .map_err(|e| Error::new(format!("set map {map}: {e}"), Span::default())),
            _ => Ok(None),
        })
        .collect::<Result<_, _>>()?;
    // Elements get limits only from the statements that make them.
    let mut elem_limit = None;
    if actions
        .iter()
        .any(|a| matches!(a, Action::DynSet { limit: Some(_), .. }))
    {
        let code = super::dynset::elem_limit_function()
            .finish()
            .map_err(|e| Error::new(format!("internal error: {e}"), Span::default()))?;
        elem_limit = Some(
            object
                .add_function(ELEM_LIMIT_FUNCTION, code)
                .map_err(object_err)?,
        );
    }
    let code = ActionCode {
        actions: actions.to_vec(),
        buckets,
        maps: maps.clone(),
        take,
        elem_limit,
        target: opts.target,
        len_slot: var_slot(opts.len_var),
    };
    Ok((maps, code))
}

/// The quotas map, with the bytes already used as its contents; `None`
/// without quotas. A quota shared by several actions takes the first's
/// `used`.
fn quotas_map(actions: &[Action]) -> Result<Option<MapSpec>, Error> {
    let quotas: Vec<(u32, u64)> = actions
        .iter()
        .filter_map(|a| match *a {
            Action::Quota { slot, used, .. } => Some((slot, used)),
            _ => None,
        })
        .collect();
    if quotas.is_empty() {
        return Ok(None);
    }
    let mut spec = MapSpec::array(QUOTAS_MAP, 8, entries(quotas.iter().map(|q| q.0))?);
    let mut seen = std::collections::HashSet::new();
    for (slot, used) in quotas {
        if seen.insert(slot) && used != 0 {
            spec = spec.with_typed_entry(slot, used);
        }
    }
    Ok(Some(spec))
}

impl ActionCode {
    /// Set map `map`'s reference, for code.
    fn set_ref(&self, map: u32) -> Option<SetMapRef> {
        Some(SetMapRef {
            map: *self.maps.sets.get(map as usize)?,
            swappable: self.maps.swappable_sets,
        })
    }

    /// The maps the code uses.
    pub fn maps(&self) -> ActionMaps {
        self.maps.clone()
    }

    /// Emits action number `action`: falls through when it holds, jumps
    /// to `fail` when it does not (a quota used up, a limit over its
    /// rate, or their `over` forms under it).
    pub fn emit(&self, a: &mut Asm, action: u32, fail: Label) -> Result<ActionEnd, Error> {
        let missing = || {
            Error::new(
                format!("internal error: no action {action} in the action table"),
                Span::default(),
            )
        };
        let act = *self.actions.get(action as usize).ok_or_else(missing)?;
        let map = |m: Option<MapId>| m.ok_or_else(missing);
        Ok(match act {
            Action::Count { slot } => {
                self.count(a, map(self.maps.counters)?, slot);
                ActionEnd::Continues
            }
            Action::CountIndexed { base, rules, var } => {
                self.count_indexed(a, map(self.maps.counters)?, base, rules, var);
                ActionEnd::Continues
            }
            Action::Quota {
                slot, over, bytes, ..
            } => {
                self.quota(a, map(self.maps.quotas)?, slot, over, bytes, fail);
                ActionEnd::MayFail
            }
            Action::Limit { slot, .. } => {
                let bucket = self.buckets[action as usize].ok_or_else(missing)?;
                let take = self.take.ok_or_else(missing)?;
                limit::emit_take(a, take, slot, &bucket, self.len_slot);
                // r0 is 1 under the rate.
                let op = if bucket.over { JmpOp::Ne } else { JmpOp::Eq };
                a.jmp(op, R0, 0, fail);
                ActionEnd::MayFail
            }
            Action::Log { slot } => {
                let maps = self.maps.log.ok_or_else(missing)?;
                log::emit(a, maps, slot, self.target, self.len_slot);
                ActionEnd::Continues
            }
            Action::DynSet {
                map,
                update,
                timeout_ms,
                ..
            } => {
                let code = super::dynset::DynSetCode {
                    set: self.set_ref(map).ok_or_else(missing)?,
                    update,
                    timeout_ms,
                    bucket: self.buckets[action as usize],
                    elem_limit: self.elem_limit,
                    len_slot: self.len_slot,
                };
                code.emit(a, fail);
                ActionEnd::MayFail
            }
            Action::LookupElement { map, limits } => {
                let set = self.set_ref(map).ok_or_else(missing)?;
                let elem_limit = if limits { self.elem_limit } else { None };
                super::dynset::emit_lookup(a, set, fail, elem_limit, self.len_slot);
                ActionEnd::MayFail
            }
            Action::Lookup { map } => {
                let set = self.set_ref(map).ok_or_else(missing)?;
                // The key a `Cond::Lookup` wrote.
                lookup_set_key(a, set, pktmatch::codegen::KEY_SLOT, fail);
                ActionEnd::MayFail
            }
        })
    }

    /// `counter`: `packets += 1; bytes += len` on this CPU.
    fn count(&self, a: &mut Asm, map: MapId, slot: u32) {
        let done = a.new_label();
        array_lookup(a, map, slot, done);
        self.bump(a);
        a.bind(done);
    }

    /// Adds one packet and its length to the counter r0 points at.
    fn bump(&self, a: &mut Asm) {
        a.mov64(R1, 1);
        a.atomic(AtomicOp::Add, Size::DW, R0, 0, R1);
        a.ldx(Size::W, R1, R10, self.len_slot);
        a.atomic(AtomicOp::Add, Size::DW, R0, 8, R1);
    }

    /// `counter` of the rule whose index (shifted left by one) variable
    /// `var` holds: slot `base + index`, when the index is below `rules`.
    fn count_indexed(&self, a: &mut Asm, map: MapId, base: u32, rules: u32, var: u32) {
        let done = a.new_label();
        a.ldx(Size::W, R1, R10, var_slot(var));
        a.alu32(AluOp::Rsh, R1, 1);
        a.jmp(JmpOp::Ge, R1, rules as i32, done);
        a.alu32(AluOp::Add, R1, base as i32);
        a.stx(Size::W, R10, KEY_SLOT, R1);
        lookup_key_at(a, map, KEY_SLOT, done);
        self.bump(a);
        a.bind(done);
    }

    /// `quota`: as `nft_overquota` (net/netfilter/nft_quota.c), the
    /// quota is over when `consumed += len` (atomically, every packet
    /// counting) exceeds the quota's bytes: `>` since Linux 6.16 (commit
    /// "netfilter: nft_quota: match correctly when the quota just
    /// depleted"; `>=` before), so a quota of N bytes passes exactly N.
    /// `quota until` fails when over, `quota over` when not.
    fn quota(&self, a: &mut Asm, map: MapId, slot: u32, over: bool, bytes: u64, fail: Label) {
        array_lookup(a, map, slot, fail);
        a.ldx(Size::W, R1, R10, self.len_slot);
        a.mov64(R2, R1);
        a.atomic(AtomicOp::FetchAdd, Size::DW, R0, 0, R1);
        a.add64(R1, R2);
        a.ld_imm64(R2, bytes);
        let op = if over { JmpOp::Le } else { JmpOp::Gt };
        a.jmp(op, R1, R2, fail);
    }
}

/// Counter `slot` of the counters map: the sum over the CPUs.
pub fn read_counter(counters: &Map, slot: u32) -> Result<CounterValue, MapError> {
    let key = slot.to_ne_bytes();
    Ok(CounterValue {
        packets: counters.sum_u64(&key, 0)?,
        bytes: counters.sum_u64(&key, 8)?,
    })
}

/// Sets counter `slot` to `value` (`counter packets N bytes M`, a named
/// counter's initial value): CPU 0 holds it, the others start at zero,
/// so the sum over the CPUs is `value`.
pub fn write_counter(counters: &Map, slot: u32, value: CounterValue) -> Result<(), MapError> {
    let mut first = [0u8; COUNTER_SIZE as usize];
    first[..8].copy_from_slice(&value.packets.to_ne_bytes());
    first[8..].copy_from_slice(&value.bytes.to_ne_bytes());
    let zero = [0u8; COUNTER_SIZE as usize];
    let cpus = bpf_builder::sys::bpf::possible_cpus().map_err(|source| MapError::Sys {
        map: counters.name().to_string(),
        op: "count CPUs",
        source,
    })?;
    let values: Vec<&[u8]> = (0..cpus)
        .map(|cpu| if cpu == 0 { &first[..] } else { &zero[..] })
        .collect();
    counters.update_per_cpu(
        &slot.to_ne_bytes(),
        &values,
        bpf_builder::handle::UpdateFlags::Any,
    )
}

/// The bytes quota `slot` has consumed (every packet it saw, also past
/// the quota; nft shows at most the quota).
pub fn read_quota(quotas: &Map, slot: u32) -> Result<u64, MapError> {
    let v = quotas.lookup(&slot.to_ne_bytes())?.unwrap_or_default();
    Ok(v.get(..8)
        .map_or(0, |b| u64::from_ne_bytes(b.try_into().expect("8 bytes"))))
}

/// Log records dropped because the ring buffer was full, over all CPUs.
pub fn log_drops(drops: &Map) -> Result<u64, MapError> {
    drops.sum_u64(&0u32.to_ne_bytes(), 0)
}
