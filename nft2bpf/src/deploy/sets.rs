//! Sets of a running ruleset, changed in place: `add element`, `create
//! element`, `delete element`, `flush set` and `list set`, in nft's
//! command-line syntax ([`crate::syntax::parse_set_command`]). A change
//! takes effect on the next packet: the programs look their sets up in
//! BPF maps, pinned in their units (members `set0`..`set63`, described in
//! [`SetMeta`]; each the array of maps whose slot 0 holds the set's
//! map, [`SetMap::swappable_spec`]), and nothing is reloaded. A command
//! changes the map in place, element by element; [`super::batch::apply`]
//! runs a file of them as one transaction, swapping each set whole.
//!
//! [`SetMap::swappable_spec`]: crate::compile::sets::SetMap::swappable_spec
//!
//! Each program (each hook and device) has its own copy of a set, and a
//! set looked up with fields of different alignments has a map per
//! alignment: a change goes to every copy or, when one fails, to none
//! (what was written is undone). Elements are checked as in a ruleset
//! file ([`crate::check::live`]) and encoded by the function that wrote
//! the ruleset's own ([`element_keys`]), so an element added live is the
//! same bytes as one compiled.
//!
//! As in nft: `add` of an element that is there is no error, `create`
//! is (`File exists`), `delete` of one that is not there is (`No such
//! file or directory`), an interval that overlaps another is refused
//! (`conflicting intervals specified`), and a set full to its `size`
//! takes no more.
//!
//! Limits:
//! * a verdict map's elements may have only the verdicts the program
//!   was built with (those of the map's elements at load): the program
//!   branches on the map's value to code compiled for each of them, and
//!   there is no code for another (`jump other` needs a reload);
//! * a set that no rule looks up, or one whose elements became compare
//!   chains (ranges in a concatenation), has no map: it changes only
//!   with a reload;
//! * a reload (`load`) keeps a set's contents only when the set's
//!   declaration did not change (see [`super::load`]): a set declared
//!   otherwise starts again from the ruleset file's elements;
//! * `list set` shows an interval set's adjacent elements of one
//!   verdict as one range (the map keeps prefixes, not elements).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use bpf_builder::handle::{Map, UpdateFlags};

use super::DeployError;
use super::meta::{Meta, SetHead, SetMeta};
use super::pins::open_roots;
use super::state;
use crate::check::live::{LiveChain, LiveElement, live_elements, verdict_text};
use crate::check::tree::{ElemKey, KeyType, Set, SetId, TableId};
use crate::check::types::Type;
use crate::compile::dynset::{ElemValue, expiry};
use crate::compile::sets::{SetKind, element_keys, key_element};
use crate::error::{Error, Errors};
use crate::source::{FileId, SourceMap};
use crate::syntax::ast::{SetCommand, SetVerb};
use pktmatch::Span;

/// The name commands are shown under in errors, as nft's.
pub const CMDLINE: &str = "<cmdline>";

/// What [`run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// Elements added or removed.
    Changed {
        /// The maps written (`HOOK-DEVICE/setN`).
        maps: Vec<String>,
        /// Map entries written or removed in each.
        entries: usize,
    },
    /// `list set`: the set as nft lists it.
    Listing(String),
}

/// A command parsed, with its text.
#[derive(Debug)]
pub struct Parsed {
    /// The command's text, as [`CMDLINE`].
    pub map: SourceMap,
    /// Its file in `map`.
    pub file: FileId,
    /// The command.
    pub cmd: SetCommand,
}

impl Parsed {
    /// Parses `text`: an error is rendered with a caret under `text`.
    pub fn new(text: &str) -> Result<Parsed, DeployError> {
        let mut map = SourceMap::new();
        let file = map.add(CMDLINE, None, text, None);
        let cmd = crate::syntax::parse_set_command(&mut map, file)
            .map_err(|e| DeployError::Ruleset(e.render(&map)))?;
        Ok(Parsed { map, file, cmd })
    }

    fn fail(&self, e: Error) -> DeployError {
        DeployError::Ruleset(e.render(&self.map))
    }
}

/// The check's view of a described set: its key types, flags, size.
fn set_of(s: &SetMeta) -> Result<Set, String> {
    let mut key = Vec::new();
    for p in &s.parts {
        let ty = Type::ALL
            .into_iter()
            .find(|t| t.name() == p.ty)
            .ok_or_else(|| format!("set `{}`: unknown type `{}`", s.name, p.ty))?;
        key.push(KeyType { ty, bits: p.bits });
    }
    Ok(Set {
        table: TableId::from_u32(0),
        name: Some(s.name.clone()),
        span: Span::default(),
        key,
        interval: s.interval,
        is_map: s.is_map,
        size: s.size,
        state: crate::check::tree::SetState {
            dynamic: false,
            timeouts: s.timeouts,
            timeout: s.timeout,
        },
        constant: false,
        elements: Vec::new(),
    })
}

/// The chains of table `table`, as a program's description has them.
fn chains_of(meta: &Meta, table: &str) -> Vec<LiveChain> {
    meta.tables
        .iter()
        .filter(|t| t.name == table)
        .flat_map(|t| &t.chains)
        .map(|c| LiveChain {
            name: c.name.clone(),
            base: c.hook.is_some(),
        })
        .collect()
}

/// An element ready to be written: its map keys and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// Where the element is written.
    pub span: Span,
    /// The element.
    pub key: Vec<ElemKey>,
    /// Its map keys (one, or an LPM trie's one per prefix).
    pub keys: Vec<Vec<u8>>,
    /// The map's value: the index of its verdict in the map's verdict
    /// list, 1 in a set.
    pub value: u32,
    /// Its own `timeout`, in milliseconds (`timeout 0s` is none, as in
    /// nft: the set's applies).
    pub timeout: Option<u64>,
}

/// Checks the elements `e` for the set `set` describes (in a program
/// whose description is `meta`) and encodes them for its map, as
/// lowering encodes a ruleset's elements. A verdict the program was not
/// built with is an error.
pub fn encode(
    meta: &Meta,
    set: &SetMeta,
    e: &crate::syntax::ast::Expr,
) -> Result<Vec<Encoded>, Errors> {
    let checked = set_of(set).map_err(|m| Errors(vec![Error::new(m, e.span)]))?;
    let elements = live_elements(e, &set.table, &chains_of(meta, &set.table), &checked)?;
    let layout: Vec<_> = set.parts.iter().map(|p| p.layout.clone()).collect();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for LiveElement { element, verdict } in elements {
        let value = match verdict {
            None => 1,
            Some(v) => match set.verdicts.iter().position(|x| *x == v) {
                Some(i) => i as u32,
                None => {
                    let known = if set.verdicts.is_empty() {
                        "none: the map had no element when it was loaded".to_string()
                    } else {
                        set.verdicts.join(", ")
                    };
                    errors.push(Error::new(
                        format!(
                            "`{v}`: the program branches only to the verdicts it was built with for map `{}` ({known}); another takes a reload",
                            set.name
                        ),
                        element.span,
                    ));
                    continue;
                }
            },
        };
        out.push(Encoded {
            span: element.span,
            keys: element_keys(set.kind, &layout, &element.key),
            key: element.key,
            value,
            timeout: element.timeout.filter(|&t| t != 0),
        });
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(Errors(errors))
    }
}

/// One program's copy of the set.
pub(super) struct Copy {
    /// `HOOK-DEVICE/setN`.
    pub(super) name: String,
    pub(super) set: SetMeta,
    pub(super) meta: Meta,
    /// The pinned map: the array of maps holding `map` (or, pinned by an
    /// earlier build, `map` itself).
    pub(super) pinned: Map,
    /// The map holding the set's elements.
    pub(super) map: Map,
}

/// A change to one map: the key, the value written, the value it had.
pub(super) enum Op {
    Insert(Vec<u8>, Vec<u8>),
    Remove(Vec<u8>, Vec<u8>),
    /// An element of a set with timeouts, added again with a timeout: its
    /// expiry restarts (nft updates it; the element stays).
    Refresh(Vec<u8>, Vec<u8>, Vec<u8>),
}

/// The `u32` a map value starts with (a verdict's index; 1 in a set).
fn first_u32(v: &[u8]) -> u32 {
    v.get(..4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_ne_bytes)
        .unwrap_or(0)
}

/// Runs the command `text` (see the [module docs](self)) on the ruleset
/// running under `pin_root`. A failed command changes nothing.
pub fn run(pin_root: &Path, text: &str) -> Result<Done, DeployError> {
    let parsed = Parsed::new(text)?;
    let cmd = &parsed.cmd;
    with_running(pin_root, |scan, progs, now| {
        let copies = copies(scan, progs, cmd, &|e| parsed.fail(e))?;
        change(&parsed, &copies, now)
    })
}

/// Runs `f` on the ruleset running under `pin_root`, its pin roots
/// locked: with the units found, the program units' root, and the time.
pub(super) fn with_running<T>(
    pin_root: &Path,
    f: impl FnOnce(&state::Scanned, &bpf_builder::pins::Locked<'_>, u64) -> Result<T, DeployError>,
) -> Result<T, DeployError> {
    let Some(mut roots) = open_roots(pin_root, false)? else {
        return Err(DeployError::Other(format!(
            "no ruleset is loaded under {}",
            pin_root.display()
        )));
    };
    let _outer = roots.outer.lock()?;
    let links = roots.links.lock()?;
    let members = roots.members.lock()?;
    let progs = roots.progs.lock()?;
    let scan = state::scan(&links, &members, &progs)?;
    let now = bpf_builder::sys::clock::monotonic_ns()
        .map_err(|e| DeployError::Other(format!("reading the clock: {e}")))?;
    f(&scan, &progs, now)
}

/// Runs the command `parsed` on `copies`, the running copies of its set.
fn change(parsed: &Parsed, copies: &[Copy], now: u64) -> Result<Done, DeployError> {
    let cmd = &parsed.cmd;
    let first = &copies[0];
    if cmd.verb == SetVerb::List {
        let entries = read(first, now)?;
        return Ok(Done::Listing(listing(&first.set, &entries, now)));
    }
    // Every copy's changes are worked out before any is made.
    let mut plans = Vec::new();
    for copy in copies {
        let ops = match &cmd.elements {
            None => read(copy, now)?
                .into_iter()
                .map(|(k, v)| Op::Remove(k, v))
                .collect(),
            Some(e) => {
                let encoded = encode(&copy.meta, &copy.set, e)
                    .map_err(|e| DeployError::Ruleset(e.render(&parsed.map)))?;
                // An interval set's conflicts are with any element: all
                // are read. In a hash set only the elements named
                // matter, looked up one by one, so that a change to a
                // set of a million elements costs what it changes; the
                // kernel then says when the map is full.
                let (current, count) = if copy.set.kind == SetKind::Lpm {
                    let all = read(copy, now)?;
                    let n = all.len();
                    (all, Some(n))
                } else {
                    let keys = encoded.iter().flat_map(|e| &e.keys);
                    (read_keys(copy, keys, now)?, None)
                };
                plan(cmd, copy, &current, count, &encoded, now).map_err(|e| parsed.fail(e))?
            }
        };
        plans.push(ops);
    }
    let mut done: Vec<(&Map, &Op)> = Vec::new();
    let mut entries = 0;
    for (copy, ops) in copies.iter().zip(&plans) {
        for op in ops {
            // An expired element's entry is still in the map: a set with
            // state writes over it.
            let insert = if copy.set.stateful {
                UpdateFlags::Any
            } else {
                UpdateFlags::NoExist
            };
            let r = match op {
                Op::Insert(k, v) => copy.map.update(k, v, insert),
                Op::Refresh(k, v, _) => copy.map.update(k, v, UpdateFlags::Exist),
                Op::Remove(k, _) => copy.map.delete(k).map(|_| ()),
            };
            if let Err(e) = r {
                undo(&done);
                let full = matches!(e, bpf_builder::handle::MapError::Full { .. });
                return Err(if full {
                    parsed.fail(full_error(&copy.set, cmd.span))
                } else {
                    DeployError::Other(format!("{}: {e}; nothing was changed", copy.name))
                });
            }
            done.push((&copy.map, op));
        }
        entries = entries.max(ops.len());
    }
    Ok(Done::Changed {
        maps: copies.iter().map(|c| c.name.clone()).collect(),
        entries,
    })
}

/// The running programs' copies of the set `cmd` names (at least one),
/// their maps opened; `fail` renders an error in the command.
pub(super) fn copies(
    scan: &state::Scanned,
    progs: &bpf_builder::pins::Locked<'_>,
    cmd: &SetCommand,
    fail: &dyn Fn(Error) -> DeployError,
) -> Result<Vec<Copy>, DeployError> {
    let (table, name) = (&cmd.table.name.name, &cmd.set.name);
    let mut copies = Vec::new();
    let mut table_known = false;
    for c in &scan.current {
        let (Some(meta), Some(unit)) = (&c.meta, &c.unit) else {
            continue;
        };
        table_known |= meta.tables.iter().any(|t| &t.name == table);
        for s in meta
            .sets
            .iter()
            .filter(|s| &s.table == table && &s.name == name)
        {
            let pinned = progs
                .unit(unit)?
                .map(&s.member)
                .map_err(DeployError::io(format!("opening {}/{}", c.key, s.member)))?;
            if pinned.name() == super::PLACEHOLDER {
                return Err(DeployError::Other(format!(
                    "{}: set `{name}` is described but not pinned; reload the ruleset",
                    c.key
                )));
            }
            let copy_name = format!("{}/{}", c.key, s.member);
            copies.push(Copy {
                map: super::swap::contents(&copy_name, &pinned)?,
                name: copy_name,
                set: s.clone(),
                meta: meta.clone(),
                pinned,
            });
        }
    }
    if !table_known {
        return Err(fail(Error::new(
            format!("table `{table}` does not exist in the running ruleset"),
            cmd.table.name.span,
        )));
    }
    if copies.is_empty() {
        return Err(fail(Error::new(
            format!(
                "set `{name}` has no map in the running programs of table netdev {table}: it does not exist, no rule looks it up, or its elements are compare chains (ranges in a concatenation); it changes only with a reload"
            ),
            cmd.set.span,
        )));
    }
    Ok(copies)
}

/// Undoes `done`, last first.
fn undo(done: &[(&Map, &Op)]) {
    for (map, op) in done.iter().rev() {
        let _ = match op {
            Op::Insert(k, _) => map.delete(k).map(|_| ()),
            Op::Remove(k, v) | Op::Refresh(k, _, v) => map.update(k, v, UpdateFlags::Any),
        };
    }
}

/// A copy's entries and their values; in a set with state, the
/// elements that have not expired at `now` (an expired one is absent,
/// as in nft).
pub(super) fn read(copy: &Copy, now: u64) -> Result<HashMap<Vec<u8>, Vec<u8>>, DeployError> {
    read_entries(&copy.name, &copy.set, &copy.map, now)
}

/// The entries of `copy` under `keys` that are there (not expired at
/// `now`).
fn read_keys<'k>(
    copy: &Copy,
    keys: impl Iterator<Item = &'k Vec<u8>>,
    now: u64,
) -> Result<HashMap<Vec<u8>, Vec<u8>>, DeployError> {
    let mut out = HashMap::new();
    for k in keys {
        let v = copy
            .map
            .lookup(k)
            .map_err(|e| DeployError::Other(format!("reading {}: {e}", copy.name)))?;
        let Some(v) = v else { continue };
        if copy.set.stateful && ElemValue::parse(&v).is_some_and(|e| e.expired(now)) {
            continue;
        }
        out.insert(k.clone(), v);
    }
    Ok(out)
}

/// The entries of `map`, the map of `set` (called `name` in errors),
/// without the elements expired at `now`.
pub(super) fn read_entries(
    name: &str,
    set: &SetMeta,
    map: &Map,
    now: u64,
) -> Result<HashMap<Vec<u8>, Vec<u8>>, DeployError> {
    let mut out = HashMap::new();
    for e in map.iter() {
        let (k, v) = e.map_err(|e| DeployError::Other(format!("reading {name}: {e}")))?;
        if set.stateful && ElemValue::parse(&v).is_some_and(|e| e.expired(now)) {
            continue;
        }
        out.insert(k, v);
    }
    Ok(out)
}

/// The value an element of `set` is written with at `now`.
fn value_bytes(set: &SetMeta, e: &Encoded, now: u64) -> Vec<u8> {
    if set.stateful {
        // nft: the element's own timeout, else the set's.
        let timeout = e.timeout.or(set.timeout);
        ElemValue::new(now, timeout).bytes()
    } else {
        e.value.to_ne_bytes().to_vec()
    }
}

/// The error of a set with no room left.
pub(super) fn full_error(set: &SetMeta, span: Span) -> Error {
    let message = match set.size {
        Some(size) => format!(
            "set `{}` is full: its size is {size} (Too many open files in system)",
            set.name
        ),
        None => format!(
            "set `{}` is full: its map holds {} entries; declare it with a larger `size`",
            set.name, set.max_entries
        ),
    };
    Error::new(message, span)
}

/// Milliseconds as nft writes a time: `1m39s988ms`, `30s`.
pub fn time_text(ms: u64) -> String {
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if rest >= size {
            let _ = write!(out, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    if rest > 0 || out.is_empty() {
        let _ = write!(out, "{rest}ms");
    }
    out
}

/// The lowest and highest value of the one part of an LPM key.
fn bounds(set: &SetMeta, key: &[u8]) -> Option<(u128, u128)> {
    let layout: Vec<_> = set.parts.iter().map(|p| p.layout.clone()).collect();
    key_element(set.kind, &layout, key)?
        .first()
        .map(|k| k.bounds())
}

/// The changes `encoded` makes to a copy holding `current` (all its
/// entries, `count` of them; or, when `count` is `None`, only those
/// under the keys of `encoded`, and the kernel refuses inserts into a
/// full map).
pub(super) fn plan(
    cmd: &SetCommand,
    copy: &Copy,
    current: &HashMap<Vec<u8>, Vec<u8>>,
    mut count: Option<usize>,
    encoded: &[Encoded],
    now: u64,
) -> Result<Vec<Op>, Error> {
    let set = &copy.set;
    let mut ops = Vec::new();
    for e in encoded {
        let present = e.keys.iter().all(|k| current.contains_key(k));
        match cmd.verb {
            SetVerb::Delete => {
                if !present {
                    return Err(Error::new(
                        format!(
                            "No such file or directory: the element is not in set `{}`",
                            set.name
                        ),
                        e.span,
                    ));
                }
                ops.extend(
                    e.keys
                        .iter()
                        .map(|k| Op::Remove(k.clone(), current[k].clone())),
                );
            }
            _ => {
                let same = present && e.keys.iter().all(|k| first_u32(&current[k]) == e.value);
                if present && !same {
                    return Err(Error::new(
                        "File exists: the element is in the map with another verdict",
                        e.span,
                    ));
                }
                if same {
                    if cmd.verb == SetVerb::Create {
                        return Err(Error::new(
                            format!("File exists: the element is in set `{}`", set.name),
                            e.span,
                        ));
                    }
                    // nft restarts the timeout of an element added again
                    // with one; its limit state stays.
                    if set.stateful && e.timeout.is_some() {
                        for k in &e.keys {
                            let old = current[k].clone();
                            let mut v = ElemValue::parse(&old).unwrap_or_default();
                            v.expires = expiry(now, e.timeout);
                            ops.push(Op::Refresh(k.clone(), v.bytes(), old));
                        }
                    }
                    continue;
                }
                if set.kind == SetKind::Lpm {
                    let conflict = e.keys.iter().any(|k| {
                        let Some((l, h)) = bounds(set, k) else {
                            return false;
                        };
                        current
                            .keys()
                            .any(|c| bounds(set, c).is_some_and(|(cl, ch)| cl <= h && l <= ch))
                    });
                    if conflict {
                        return Err(Error::new("conflicting intervals specified", e.span));
                    }
                }
                if let Some(count) = &mut count {
                    *count += e.keys.len();
                    if *count > set.max_entries as usize {
                        return Err(full_error(set, e.span));
                    }
                }
                let value = value_bytes(set, e, now);
                ops.extend(e.keys.iter().map(|k| Op::Insert(k.clone(), value.clone())));
            }
        }
    }
    Ok(ops)
}

/// A set's entries (keys and map values) as nft lists the set at `now`
/// (an element with a timeout shows when it `expires`).
pub fn listing(set: &SetMeta, entries: &HashMap<Vec<u8>, Vec<u8>>, now: u64) -> String {
    format!(
        "table netdev {} {{\n{}}}\n",
        set.table,
        set_block(&set.head(), &listed_elements(set, entries, now))
    )
}

/// The elements of a set's map as nft lists them at `now`, in order.
pub fn listed_elements(
    set: &SetMeta,
    entries: &HashMap<Vec<u8>, Vec<u8>>,
    now: u64,
) -> Vec<String> {
    let layout: Vec<_> = set.parts.iter().map(|p| p.layout.clone()).collect();
    let expires: HashMap<Vec<ElemKey>, u64> = if set.stateful {
        entries
            .iter()
            .filter_map(|(k, v)| {
                let e = ElemValue::parse(v)?;
                (e.expires != 0).then_some((
                    key_element(set.kind, &layout, k)?,
                    e.expires.saturating_sub(now) / 1_000_000,
                ))
            })
            .collect()
    } else {
        HashMap::new()
    };
    let mut elements: Vec<(Vec<ElemKey>, u32)> = entries
        .iter()
        .filter_map(|(k, v)| Some((key_element(set.kind, &layout, k)?, first_u32(v))))
        .collect();
    // In value order: a single address and a range sort by where they
    // start, as nft lists them.
    elements.sort_by_key(|(k, v)| (key_bounds(k), *v));
    if set.kind == SetKind::Lpm {
        // The prefixes of one range, back together.
        let mut merged: Vec<(Vec<ElemKey>, u32)> = Vec::new();
        for (k, v) in elements {
            let (l, h) = k[0].bounds();
            if let Some((last, lv)) = merged.last_mut()
                && *lv == v
            {
                let (ll, lh) = last[0].bounds();
                if lh.checked_add(1) == Some(l) {
                    last[0] = ElemKey::Range(ll, h);
                    continue;
                }
            }
            merged.push((k, v));
        }
        elements = merged;
    }
    let head = set.head();
    elements
        .iter()
        .map(|(k, v)| {
            let verdict = set
                .is_map
                .then(|| set.verdicts.get(*v as usize).map_or("?", String::as_str));
            element_text(&head, k, None, expires.get(k).copied(), verdict)
        })
        .collect()
}

/// The declared elements of set `set` of `rs` as nft lists them, in
/// order: for a set no program keeps in a map, whose elements never
/// change.
pub fn declared_elements(rs: &crate::check::tree::Ruleset, set: SetId) -> Vec<String> {
    let s = &rs.sets[set];
    let head = SetHead::of(rs, set);
    let chain_name = |c| rs.chains[c].name.clone();
    let mut elements: Vec<_> = s.elements.iter().collect();
    elements.sort_by_key(|e| key_bounds(&e.key));
    elements
        .iter()
        .map(|e| {
            let verdict = e.verdict.map(|v| verdict_text(v, &chain_name));
            element_text(&head, &e.key, e.timeout, None, verdict.as_deref())
        })
        .collect()
}

/// Where each part of a key starts and ends.
fn key_bounds(key: &[ElemKey]) -> Vec<(u128, u128)> {
    key.iter().map(|k| k.bounds()).collect()
}

/// One element as nft lists it: the key's parts joined by ` . `, its
/// own `timeout` and when it `expires` (milliseconds), a verdict map's
/// verdict.
fn element_text(
    head: &SetHead,
    key: &[ElemKey],
    timeout: Option<u64>,
    expires: Option<u64>,
    verdict: Option<&str>,
) -> String {
    let part_text = |k: &ElemKey, (ty, bits): &(String, u32)| -> String {
        let ty = Type::ALL.into_iter().find(|t| t.name() == ty);
        let text = |v| match ty {
            Some(t) => crate::check::value_text(t, *bits, v),
            None => v.to_string(),
        };
        match *k {
            ElemKey::Value(v) => text(v),
            ElemKey::Range(l, h) => {
                let size = h.wrapping_sub(l).wrapping_add(1);
                let address = matches!(ty, Some(Type::Ipv4Addr | Type::Ipv6Addr));
                if address && size.is_power_of_two() && l % size == 0 {
                    format!("{}/{}", text(l), bits - size.trailing_zeros())
                } else if address && l == 0 && h == u128::MAX >> (128 - bits) {
                    format!("{}/0", text(l))
                } else {
                    format!("{}-{}", text(l), text(h))
                }
            }
        }
    };
    let parts: Vec<String> = key
        .iter()
        .zip(&head.types)
        .map(|(k, p)| part_text(k, p))
        .collect();
    let mut t = parts.join(" . ");
    if let Some(ms) = timeout {
        let _ = write!(t, " timeout {}", time_text(ms));
    }
    if let Some(ms) = expires {
        let _ = write!(t, " expires {}", time_text(ms));
    }
    if let Some(v) = verdict {
        let _ = write!(t, " : {v}");
    }
    t
}

/// A set's block in a table's listing, as nft prints it: `\tset NAME {`,
/// its type and flags, and `elements = { ... }` with nft's line breaks.
pub fn set_block(head: &SetHead, elements: &[String]) -> String {
    let types: Vec<&str> = head.types.iter().map(|(t, _)| t.as_str()).collect();
    let mut out = String::new();
    let kind = if head.is_map { "map" } else { "set" };
    let _ = writeln!(out, "\t{kind} {} {{", head.name);
    let data = if head.is_map { " : verdict" } else { "" };
    let _ = writeln!(out, "\t\ttype {}{data}", types.join(" . "));
    if head.interval {
        let _ = writeln!(out, "\t\tflags interval");
    }
    if let Some(t) = head.timeout {
        let _ = writeln!(out, "\t\ttimeout {}", time_text(t));
    } else if head.timeouts {
        let _ = writeln!(out, "\t\tflags timeout");
    }
    if let Some(size) = head.size {
        let _ = writeln!(out, "\t\tsize {size}");
    }
    if !elements.is_empty() {
        // nft's `calculate_delim`: a few short elements to a line for
        // some key types, one element a line for the rest.
        let per_line = match types.as_slice() {
            ["integer" | "inet_proto" | "inet_service" | "tcp_flag" | "mark"] => 5,
            ["ipv4_addr" | "pkt_type"] => 2,
            _ => 1,
        };
        let mut text = String::new();
        for (i, e) in elements.iter().enumerate() {
            if i > 0 {
                text.push_str(if i % per_line == 0 {
                    ",\n\t\t\t     "
                } else {
                    ", "
                });
            }
            text.push_str(e);
        }
        let _ = writeln!(out, "\t\telements = {{ {text} }}");
    }
    let _ = writeln!(out, "\t}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::{Attach, Device, lower};
    use crate::deploy::Source;
    use crate::syntax::MemLoader;

    /// A table whose sets hold `elements` (set name -> elements text).
    fn ruleset(elements: &[(&str, &str)]) -> String {
        let el = |name: &str| {
            elements
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(String::new(), |(_, e)| format!(" elements = {{ {e} }};"))
        };
        format!(
            "table netdev t {{
                set blocked {{ type ipv4_addr;{} }}
                set nets {{ type ipv4_addr; flags interval;{} }}
                set pairs {{ type ipv4_addr . inet_service;{} }}
                map ports {{ type inet_service : verdict;{} }}
                chain other {{ counter; }}
                chain c {{
                    type filter hook ingress device \"eth0\" priority 0; policy accept;
                    ip saddr @blocked drop
                    ip daddr @nets drop
                    ip saddr . udp dport @pairs drop
                    tcp sport vmap @ports
                }}
            }}",
            el("blocked"),
            el("nets"),
            el("pairs"),
            el("ports")
        )
    }

    fn lowered(text: &str) -> (crate::compile::Lowered, Meta) {
        let src = Source::from_text("t.nft", text, &mut MemLoader::new()).unwrap();
        let l = lower(&src.ruleset, Attach::Xdp, &Device::named("eth0")).unwrap();
        let tables = super::super::meta::tables(&src.ruleset, &src.ast);
        let meta = Meta::new("t.nft", &src.ruleset, tables, &l);
        (l, meta)
    }

    #[test]
    fn elements_added_live_are_the_bytes_compiled() {
        let live: &[(&str, &str)] = &[
            ("blocked", "10.0.0.1, 192.168.7.9"),
            ("nets", "10.0.0.0-10.0.0.5, 172.16.0.0/12"),
            ("pairs", "10.0.0.1 . 53, 10.0.0.2 . 8080"),
            ("ports", "8080 : drop, 22 : jump other"),
        ];
        let start = [("ports", "7 : accept, 6 : drop, 9 : jump other")];
        let all: Vec<(&str, String)> = live
            .iter()
            .map(|(n, e)| match start.iter().find(|s| s.0 == *n) {
                Some(s) => (*n, format!("{}, {e}", s.1)),
                None => (*n, e.to_string()),
            })
            .collect();
        let all: Vec<(&str, &str)> = all.iter().map(|(n, e)| (*n, e.as_str())).collect();
        let (compiled, _) = lowered(&ruleset(&all));
        let (empty, meta) = lowered(&ruleset(&start));
        assert_eq!(meta.sets.len(), 4, "{:?}", meta.sets);
        for (name, elements) in live {
            let set = meta.sets.iter().find(|s| s.name == *name).unwrap();
            let i: usize = set.member[3..].parse().unwrap();
            let cmd = format!("add element netdev t {name} {{ {elements} }}");
            let parsed = Parsed::new(&cmd).unwrap();
            let encoded = encode(&meta, set, parsed.cmd.elements.as_ref().unwrap())
                .unwrap_or_else(|e| panic!("{}", e.render(&parsed.map)));
            let mut got: Vec<(Vec<u8>, u32)> = empty.set_maps[i].entries.clone();
            for e in &encoded {
                got.extend(e.keys.iter().map(|k| (k.clone(), e.value)));
            }
            got.sort();
            let mut want = compiled.set_maps[i].entries.clone();
            want.sort();
            assert_eq!(got, want, "{name}");
            assert_eq!(compiled.set_maps[i].layout, empty.set_maps[i].layout);
            // And they read back as the elements.
            let raw = got
                .iter()
                .map(|(k, v)| (k.clone(), v.to_ne_bytes().to_vec()))
                .collect();
            let listed = listing(set, &raw, 0);
            assert!(listed.contains("elements = {"), "{listed}");
        }
    }

    #[test]
    fn verdicts_the_program_lacks_and_bad_elements_are_refused_with_a_place() {
        let (_, meta) = lowered(&ruleset(&[("ports", "7 : accept")]));
        let set = meta.sets.iter().find(|s| s.name == "ports").unwrap();
        let parsed = Parsed::new("add element netdev t ports { 8080 : drop }").unwrap();
        let e = encode(&meta, set, parsed.cmd.elements.as_ref().unwrap()).unwrap_err();
        let text = e.render(&parsed.map);
        assert!(
            text.contains("built with for map `ports` (accept)"),
            "{text}"
        );
        assert!(text.contains("<cmdline>:1:30"), "{text}");
        let set = meta.sets.iter().find(|s| s.name == "blocked").unwrap();
        let parsed = Parsed::new("add element netdev t blocked { 10.0.0.1 . 22 }").unwrap();
        let e = encode(&meta, set, parsed.cmd.elements.as_ref().unwrap()).unwrap_err();
        assert!(e.render(&parsed.map).contains('^'));
        assert!(Parsed::new("add element netdev t blocked 10.0.0.1").is_err());
        assert!(Parsed::new("flush element netdev t blocked").is_err());
    }

    #[test]
    fn size_bounds_the_map_and_the_elements() {
        let text = "table netdev t { set s { type inet_service; size 2; elements = { 1, 2, 3 }; }
            chain c { type filter hook ingress device \"eth0\" priority 0; udp dport @s drop; }; }";
        let e = Source::from_text("t.nft", text, &mut MemLoader::new()).unwrap_err();
        assert!(
            e.to_string()
                .contains("set `s` is full: 3 elements, more than its size 2"),
            "{e}"
        );
        let (l, meta) = lowered(&text.replace("1, 2, 3", "1, 2"));
        assert_eq!(l.set_maps[0].max_entries, 2);
        assert_eq!(meta.sets[0].size, Some(2));
        let e = Source::from_text(
            "t.nft",
            &text.replace("size 2", "size 4294967296"),
            &mut MemLoader::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("too large"), "{e}");
    }
}
