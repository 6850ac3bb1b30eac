//! What is deployed under a pin root, read back: the running programs
//! with their descriptions and maps, counter values, the ruleset as
//! text with them, log records described.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use bpf_builder::attach::Link;
use bpf_builder::handle::{Map, Program};
use bpf_builder::pins::Locked;
use bpf_builder::text::escape;

use super::DeployError;
use super::meta::{CounterMeta, Meta, ObjectMeta, QuotaMeta, RulePos, SetMeta, TableMeta};
use super::pins::{PLACEHOLDER, open_roots};
use crate::check::tree::QuotaSpec;
use crate::compile::actions::read_quota;
use crate::compile::log::LogRecord;

/// A running program, as found in its units.
pub(super) struct Current {
    /// `HOOK-DEVICE`.
    pub key: String,
    /// Its link (a program that runs alone).
    pub link: Option<Link>,
    /// The generation switch the link runs (none for a member, and for
    /// a link pinned by an nft2bpf that had no switch).
    pub switch: Option<SwitchPins>,
    /// The member program (one that runs in an XDP dispatcher, pinned in
    /// a unit of `members/`).
    pub member: Option<Program>,
    /// That unit's name (`HOOK-DEVICE-GEN`).
    pub member_unit: Option<String>,
    /// The kernel's id of the rules' program that runs.
    pub running: Option<u32>,
    /// The program unit whose program the link runs, if one is.
    pub unit: Option<String>,
    /// Its description.
    pub meta: Option<Meta>,
    /// Its counters map.
    pub counters: Option<Map>,
    /// The counts carried into it ([`super::carry`]).
    pub carried: Option<Map>,
}

/// A link unit's generation switch ([`crate::compile::switch`]).
pub(super) struct SwitchPins {
    /// The hook's two slots.
    pub slots: Map,
    /// The ruleset's generation map (every link unit pins the same one).
    pub generation: Map,
}

impl SwitchPins {
    /// The switch of the link unit `unit`, when it has one.
    fn open(unit: &bpf_builder::pins::Unit<'_>) -> Option<SwitchPins> {
        Some(SwitchPins {
            slots: unit.map("slots").ok()?,
            generation: unit.map("generation").ok()?,
        })
    }

    /// The kernel's id of the rules' program the switch runs now.
    fn running(&self) -> Option<u32> {
        let generation = read_generation(&self.generation).ok()?;
        let id = self.slots.lookup(&generation.to_ne_bytes()).ok()??;
        Some(u32::from_ne_bytes(id.get(..4)?.try_into().ok()?))
    }
}

/// The generation a ruleset's switches run (entry 0 of its map).
pub(super) fn read_generation(map: &Map) -> Result<u32, DeployError> {
    let bytes = map
        .lookup(&0u32.to_ne_bytes())
        .map_err(|e| DeployError::Other(format!("reading the generation: {e}")))?
        .unwrap_or_default();
    match bytes
        .get(..4)
        .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")))
    {
        Some(g) if g < crate::compile::switch::SLOTS => Ok(g),
        other => Err(DeployError::Other(format!(
            "the generation map holds {other:?}, not a slot: unload and load again"
        ))),
    }
}

/// A member unit that a newer one of its key replaced, left by a reload
/// whose clean-up failed: its program may still be in the dispatcher.
pub(super) struct StaleMember {
    /// The unit's name.
    pub unit: String,
    /// Its program.
    pub member: Program,
}

/// What [`scan`] found.
pub(super) struct Scanned {
    /// One per link unit and per key of the member units.
    pub current: Vec<Current>,
    /// Program units no link runs.
    pub stale: Vec<String>,
    /// Member units of a key that has a newer one.
    pub stale_members: Vec<StaleMember>,
    /// The highest generation of a program unit (0 when none).
    pub max_gen: u64,
}

/// A pinned map, or `None` for the placeholder or an error.
fn pinned_map(unit: &bpf_builder::pins::Unit<'_>, member: &str) -> Option<Map> {
    unit.map(member).ok().filter(|m| m.name() != PLACEHOLDER)
}

/// The description in a unit's `meta` map.
fn read_meta(unit: &bpf_builder::pins::Unit<'_>) -> Option<Meta> {
    let map = unit.map("meta").ok()?;
    let bytes = map.lookup(&0u32.to_ne_bytes()).ok()??;
    Meta::from_json(std::str::from_utf8(&bytes).ok()?).ok()
}

/// Reads the units under the locked roots.
pub(super) fn scan(
    links: &Locked<'_>,
    members: &Locked<'_>,
    progs: &Locked<'_>,
) -> Result<Scanned, DeployError> {
    let mut units: Vec<(String, u64, Option<u32>)> = Vec::new();
    let mut max_gen = 0;
    for name in progs.scan()?.units {
        let Some(generation) = name
            .rsplit_once('-')
            .and_then(|(_, g)| g.parse::<u64>().ok())
        else {
            continue;
        };
        max_gen = max_gen.max(generation);
        let id = progs
            .unit(&name)
            .ok()
            .and_then(|u| u.program("prog").ok())
            .and_then(|p| p.id().ok())
            .map(|id| id.get());
        units.push((name, generation, id));
    }
    let mut current = Vec::new();
    // (key, (link, its switch), (member unit, member program)).
    type Attached = (
        String,
        Option<(Link, Option<SwitchPins>)>,
        Option<(String, Program)>,
    );
    let mut attached: Vec<Attached> = Vec::new();
    for key in links.scan()?.units {
        let unit = links.unit(&key)?;
        let switch = SwitchPins::open(&unit);
        attached.push((key.clone(), Some((unit.link("link")?, switch)), None));
    }
    // Member units are `KEY-GEN`; a key's newest is the one that runs
    // (an older one is left by a reload whose clean-up failed).
    let mut member_units: Vec<(String, u64, String)> = Vec::new();
    for name in members.scan()?.units {
        let Some((key, generation)) = name
            .rsplit_once('-')
            .and_then(|(k, g)| Some((k.to_string(), g.parse::<u64>().ok()?)))
        else {
            continue;
        };
        max_gen = max_gen.max(generation);
        member_units.push((key, generation, name));
    }
    member_units.sort();
    let mut stale_members = Vec::new();
    while let Some((key, _, name)) = member_units.pop() {
        let member = members
            .unit(&name)?
            .program("prog")
            .map_err(DeployError::io(format!("opening members/{name}/prog")))?;
        if attached.iter().any(|a| a.0 == key) {
            stale_members.push(StaleMember { unit: name, member });
            continue;
        }
        attached.push((key, None, Some((name, member))));
    }
    for (key, link, member) in attached {
        let (member_unit, member) = member.unzip();
        let (link, switch) = link.unzip();
        let switch = switch.flatten();
        let running = match (&link, &switch, &member) {
            (Some(_), Some(s), _) => s.running(),
            (Some(l), None, _) => l.program_id().ok().flatten().map(|id| id.get()),
            (None, _, Some(m)) => m.id().ok().map(|id| id.get()),
            (None, _, None) => None,
        };
        let unit = units
            .iter()
            .find(|(n, _, id)| {
                running.is_some() && *id == running && n.rsplit_once('-').map(|x| x.0) == Some(&key)
            })
            .map(|u| u.0.clone());
        let (meta, counters, carried) = match &unit {
            Some(n) => {
                let u = progs.unit(n)?;
                (
                    read_meta(&u),
                    pinned_map(&u, "counters"),
                    pinned_map(&u, "carried"),
                )
            }
            None => (None, None, None),
        };
        current.push(Current {
            key,
            link,
            switch,
            running,
            member,
            member_unit,
            unit,
            meta,
            counters,
            carried,
        });
    }
    let stale = units
        .into_iter()
        .map(|u| u.0)
        .filter(|n| !current.iter().any(|c| c.unit.as_ref() == Some(n)))
        .collect();
    Ok(Scanned {
        current,
        stale,
        stale_members,
        max_gen,
    })
}

/// Removes what killed commands left half made in the roots; says what.
pub(super) fn discard_half_made(roots: &[&Locked<'_>]) -> Result<Vec<String>, DeployError> {
    let mut notes = Vec::new();
    for locked in roots {
        for half in locked.scan()?.half_made {
            locked.discard(&half)?;
            notes.push(format!("removed what a killed command left: {half}"));
        }
    }
    Ok(notes)
}

/// A running program with what its units hold.
#[derive(Debug)]
pub struct Running {
    /// `HOOK-DEVICE`, its link unit's name.
    pub key: String,
    /// The kernel's id of its link (`None` for a member of an XDP
    /// dispatcher, which has no link of its own).
    pub link_id: Option<u32>,
    /// Whether it runs as a member of its interface's XDP dispatcher
    /// (`load --shared`).
    pub shared: bool,
    /// The kernel's id of the rules' program that runs (through the
    /// link's generation switch, or in the dispatcher).
    pub prog_id: Option<u32>,
    /// Its description (none when no program unit matches the link).
    pub meta: Option<Meta>,
    /// Its counters.
    pub counters: Option<Map>,
    /// The counts carried into its counters over reloads, which
    /// [`counters`] adds ([`super::carry`]).
    pub carried: Option<Map>,
    /// Its log ring buffer.
    pub log: Option<Map>,
    /// Its log drop counter.
    pub drops: Option<Map>,
    /// Its quotas' bytes used.
    pub quotas: Option<Map>,
    /// Its named sets' maps.
    pub sets: Vec<(SetMeta, Map)>,
}

/// The programs deployed under `pin_root` (none when there is no root).
/// Changes nothing.
pub fn running(pin_root: &Path) -> Result<Vec<Running>, DeployError> {
    let Some(mut roots) = open_roots(pin_root, false)? else {
        return Ok(Vec::new());
    };
    let _outer = roots.outer.lock()?;
    let links = roots.links.lock()?;
    let members = roots.members.lock()?;
    let progs = roots.progs.lock()?;
    let scan = scan(&links, &members, &progs)?;
    let mut out = Vec::new();
    for c in scan.current {
        let key = c.key.clone();
        let unit = c.unit.as_ref().and_then(|n| progs.unit(n).ok());
        let link_id = c.link.as_ref().and_then(|l| l.id().ok());
        out.push(Running {
            key: c.key,
            link_id: link_id.map(|i| i.get()),
            shared: c.member.is_some(),
            prog_id: c.running,
            counters: c.counters,
            carried: c.carried,
            log: unit.as_ref().and_then(|u| pinned_map(u, "log")),
            drops: unit.as_ref().and_then(|u| pinned_map(u, "drops")),
            quotas: unit.as_ref().and_then(|u| pinned_map(u, "quotas")),
            sets: match (&unit, &c.meta) {
                (Some(u), Some(meta)) => meta
                    .sets
                    .iter()
                    .filter_map(|s| {
                        let pinned = pinned_map(u, &s.member)?;
                        let name = format!("{key}/{}", s.member);
                        Some(super::swap::contents(&name, &pinned).map(|m| (s.clone(), m)))
                    })
                    .collect::<Result<_, _>>()?,
                _ => Vec::new(),
            },
            meta: c.meta,
        });
    }
    Ok(out)
}

/// A counter's value, summed over the programs that have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterRow {
    /// What it counts.
    pub what: CounterMeta,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// Every counter of the running programs, by key, summed over programs
/// (a chain on several devices runs in several): named counters first,
/// then rule counters in ruleset order.
pub fn counters(running: &[Running]) -> Result<Vec<CounterRow>, DeployError> {
    let mut rows: BTreeMap<(u8, String, String, usize, usize), CounterRow> = BTreeMap::new();
    for r in running {
        let (Some(meta), Some(map)) = (&r.meta, &r.counters) else {
            continue;
        };
        for (slot, c) in meta.counters.iter().enumerate() {
            let v = super::carry::total(map, r.carried.as_ref(), slot as u32)
                .map_err(|e| DeployError::Other(format!("reading counters of {}: {e}", r.key)))?;
            let order = match c {
                CounterMeta::Named { table, name } => (0, table.clone(), name.clone(), 0, 0),
                CounterMeta::Rule { pos, nth, .. } => {
                    // Tables and chains in the description's order.
                    let (ti, ci) = position(&meta.tables, pos);
                    (1, format!("{ti:08}"), format!("{ci:08}"), pos.rule, *nth)
                }
            };
            let row = rows.entry(order).or_insert(CounterRow {
                what: c.clone(),
                packets: 0,
                bytes: 0,
            });
            row.packets += v.packets;
            row.bytes += v.bytes;
        }
    }
    Ok(rows.into_values().collect())
}

fn position(tables: &[TableMeta], pos: &RulePos) -> (usize, usize) {
    let ti = tables.iter().position(|t| t.name == pos.table);
    let ci = ti.and_then(|t| tables[t].chains.iter().position(|c| c.name == pos.chain));
    (ti.unwrap_or(usize::MAX), ci.unwrap_or(usize::MAX))
}

/// The rules of the running ruleset: the tables, as the first program's
/// description has them (every program's description holds the whole
/// ruleset).
pub fn listing(running: &[Running]) -> Vec<TableMeta> {
    running
        .iter()
        .find_map(|r| r.meta.as_ref())
        .map(|m| m.tables.clone())
        .unwrap_or_default()
}

/// The value of the `nth` counter of the rule at `pos`, and of named
/// counter `name`, from `rows`.
fn rule_counter(rows: &[CounterRow], pos: &RulePos, nth: usize) -> Option<(u64, u64)> {
    rows.iter().find_map(|r| match &r.what {
        CounterMeta::Rule { pos: p, nth: n, .. } if p == pos && *n == nth => {
            Some((r.packets, r.bytes))
        }
        _ => None,
    })
}

/// A quota's bytes used, summed over the programs that have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaRow {
    /// What it is for.
    pub what: QuotaMeta,
    /// Bytes used.
    pub used: u64,
}

/// Every quota of the running programs with its bytes used, summed over
/// programs (a chain on several devices runs in several).
pub fn quotas(running: &[Running]) -> Result<Vec<QuotaRow>, DeployError> {
    let mut rows: Vec<QuotaRow> = Vec::new();
    for r in running {
        let (Some(meta), Some(map)) = (&r.meta, &r.quotas) else {
            continue;
        };
        for (slot, q) in meta.quotas.iter().enumerate() {
            let used = read_quota(map, slot as u32)
                .map_err(|e| DeployError::Other(format!("reading quotas of {}: {e}", r.key)))?;
            match rows.iter_mut().find(|row| row.what == *q) {
                Some(row) => row.used += used,
                None => rows.push(QuotaRow {
                    what: q.clone(),
                    used,
                }),
            }
        }
    }
    Ok(rows)
}

/// The elements of each named set that a running program keeps in a
/// map, as nft lists them at `now`, by table and name (from the first
/// program that has the set: every copy holds the same elements).
pub fn set_elements(
    running: &[Running],
    now: u64,
) -> Result<BTreeMap<(String, String), Vec<String>>, DeployError> {
    let mut out = BTreeMap::new();
    for r in running {
        for (set, map) in &r.sets {
            let key = (set.table.clone(), set.name.clone());
            if out.contains_key(&key) {
                continue;
            }
            let name = format!("{}/{}", r.key, set.member);
            let entries = super::sets::read_entries(&name, set, map, now)?;
            out.insert(key, super::sets::listed_elements(set, &entries, now));
        }
    }
    Ok(out)
}

/// A quota's parameters as nft lists them: `[over ]N UNIT[ used M
/// UNIT]`. The kernel reports the bytes used capped at the quota
/// (`nft_quota_do_dump`), though it goes on counting past it.
fn quota_text(q: &QuotaSpec) -> String {
    let mut t = format!(
        "{}{}",
        if q.over { "over " } else { "" },
        bytes_text(q.bytes)
    );
    let used = q.used.min(q.bytes);
    if used != 0 {
        let _ = write!(t, " used {}", bytes_text(used));
    }
    t
}

/// An amount of bytes in the largest unit that holds it exactly, as nft
/// prints it (`get_unit`).
fn bytes_text(mut n: u64) -> String {
    let mut unit = 0;
    while n >= 1024 && n.is_multiple_of(1024) && unit < 2 {
        n /= 1024;
        unit += 1;
    }
    format!("{n} {}", ["bytes", "kbytes", "mbytes"][unit])
}

/// The running ruleset as nft lists it: for each table its named
/// counters and quotas, its named sets and maps, and its chains with
/// their hooks, each block after a blank line; counters and quotas hold
/// their values now, sets their elements now (`sets`, from
/// [`set_elements`]).
pub fn ruleset_text(
    tables: &[TableMeta],
    rows: &[CounterRow],
    quotas: &[QuotaRow],
    sets: &BTreeMap<(String, String), Vec<String>>,
) -> String {
    let mut out = String::new();
    for t in tables {
        let _ = writeln!(out, "table netdev {} {{", t.name);
        let mut blocks: Vec<String> = Vec::new();
        for o in &t.objects {
            blocks.push(match o {
                ObjectMeta::Counter(name) => {
                    let (p, b) = rows
                        .iter()
                        .find_map(|r| match &r.what {
                            CounterMeta::Named { table, name: n }
                                if *table == t.name && n == name =>
                            {
                                Some((r.packets, r.bytes))
                            }
                            _ => None,
                        })
                        .unwrap_or((0, 0));
                    format!("\tcounter {name} {{\n\t\tpackets {p} bytes {b}\n\t}}\n")
                }
                ObjectMeta::Quota(name, declared) => {
                    let used = quotas.iter().find_map(|q| match &q.what {
                        QuotaMeta::Named { table, name: n } if *table == t.name && n == name => {
                            Some(q.used)
                        }
                        _ => None,
                    });
                    let q = QuotaSpec {
                        used: used.unwrap_or(declared.used),
                        ..*declared
                    };
                    format!("\tquota {name} {{\n\t\t{}\n\t}}\n", quota_text(&q))
                }
            });
        }
        for d in &t.sets {
            let key = (t.name.clone(), d.head.name.clone());
            let elements = sets
                .get(&key)
                .or(d.elements.as_ref())
                .map_or(&[][..], Vec::as_slice);
            blocks.push(super::sets::set_block(&d.head, elements));
        }
        for c in &t.chains {
            let mut block = format!("\tchain {} {{\n", c.name);
            if let Some(h) = &c.hook {
                let _ = writeln!(block, "\t\t{h}");
            }
            for (ri, r) in c.rules.iter().enumerate() {
                let pos = RulePos {
                    table: t.name.clone(),
                    chain: c.name.clone(),
                    rule: ri,
                };
                let mut stmts = r.stmts.clone();
                for (nth, &i) in r.counters.iter().enumerate() {
                    if let (Some(s), Some((p, b))) =
                        (stmts.get_mut(i), rule_counter(rows, &pos, nth))
                    {
                        *s = format!("counter packets {p} bytes {b}");
                    }
                }
                for (nth, (i, declared)) in r.quotas.iter().enumerate() {
                    let used = quotas.iter().find_map(|q| match &q.what {
                        QuotaMeta::Rule { pos: p, nth: n } if *p == pos && *n == nth => {
                            Some(q.used)
                        }
                        _ => None,
                    });
                    if let Some(s) = stmts.get_mut(*i) {
                        let q = QuotaSpec {
                            used: used.unwrap_or(declared.used),
                            ..*declared
                        };
                        *s = format!("quota {}", quota_text(&q));
                    }
                }
                let mut text = stmts.join(" ");
                if let Some(cm) = &r.comment {
                    let _ = write!(text, " comment \"{cm}\"");
                }
                let _ = writeln!(block, "\t\t{text}");
            }
            block.push_str("\t}\n");
            blocks.push(block);
        }
        out.push_str(&blocks.join("\n"));
        let _ = writeln!(out, "}}");
    }
    out
}

/// A log record, described.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The `log` statement's prefix (escaped).
    pub prefix: String,
    /// The rule: `TABLE/CHAIN rule N: TEXT` (escaped).
    pub rule: String,
    /// `IN=DEV OUT= MAC=... SRC=... DST=... LEN=... PROTO=... SPT=...
    /// DPT=...`, as nft's log prints a packet (escaped).
    pub packet: String,
}

impl std::fmt::Display for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{} [{}]", self.prefix, self.packet, self.rule)
    }
}

/// Describes record `rec` of the program `meta` describes.
pub fn describe_log(meta: &Meta, rec: &LogRecord) -> LogLine {
    let (prefix, rule) = match meta.logs.get(rec.slot as usize) {
        Some(l) => (
            l.prefix.clone().unwrap_or_default(),
            format!(
                "{}/{} rule {}: {}",
                l.pos.table,
                l.pos.chain,
                l.pos.rule,
                meta.rule_text(&l.pos).unwrap_or_default()
            ),
        ),
        None => (String::new(), format!("log slot {}", rec.slot)),
    };
    let dev = bpf_builder::sys::netns::if_indextoname(rec.ifindex)
        .unwrap_or_else(|_| meta.device.clone());
    let (inn, out) = if meta.attach == "tcx-egress" {
        (String::new(), dev)
    } else {
        (dev, String::new())
    };
    let packet = format!(
        "IN={} OUT={} {}",
        escape(&inn),
        escape(&out),
        summary(&rec.packet, rec.len)
    );
    LogLine {
        prefix: escape(&prefix).into_owned(),
        rule: escape(&rule).into_owned(),
        packet: packet.trim_end().to_string(),
    }
}

/// A short summary of an Ethernet frame, in nft's log words.
pub fn summary(frame: &[u8], len: u32) -> String {
    let mut out = String::new();
    if frame.len() < 14 {
        let _ = write!(out, "LEN={len}");
        return out;
    }
    let hex = |b: &[u8]| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let _ = write!(out, "MAC={}", hex(&frame[..14]));
    let mut at = 12;
    let mut ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    while matches!(ethertype, 0x8100 | 0x88a8) && frame.len() >= at + 6 {
        let tci = u16::from_be_bytes([frame[at + 2], frame[at + 3]]);
        let _ = write!(out, " VLAN={}", tci & 0xfff);
        at += 4;
        ethertype = u16::from_be_bytes([frame[at], frame[at + 1]]);
    }
    let l3 = &frame[(at + 2).min(frame.len())..];
    let (proto, l4) = match ethertype {
        0x0800 if l3.len() >= 20 => {
            let ihl = usize::from(l3[0] & 0xf) * 4;
            let ip = |b: &[u8]| format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]);
            let _ = write!(
                out,
                " SRC={} DST={} LEN={} TTL={}",
                ip(&l3[12..16]),
                ip(&l3[16..20]),
                u16::from_be_bytes([l3[2], l3[3]]),
                l3[8]
            );
            let frag = u16::from_be_bytes([l3[6], l3[7]]) & 0x1fff != 0;
            let l4 = if frag {
                &[][..]
            } else {
                l3.get(ihl..).unwrap_or(&[])
            };
            (l3[9], l4)
        }
        0x86dd if l3.len() >= 40 => {
            let ip = |b: &[u8]| {
                let words: Vec<u16> = b
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                let a: [u16; 8] = words.try_into().unwrap_or_default();
                std::net::Ipv6Addr::from(a).to_string()
            };
            let _ = write!(
                out,
                " SRC={} DST={} LEN={} HOPLIMIT={}",
                ip(&l3[8..24]),
                ip(&l3[24..40]),
                u16::from_be_bytes([l3[4], l3[5]]) as u32 + 40,
                l3[7]
            );
            (l3[6], &l3[40..])
        }
        0x0806 => {
            out.push_str(" PROTO=ARP");
            return out;
        }
        other => {
            let _ = write!(out, " ETHERTYPE=0x{other:04x} LEN={len}");
            return out;
        }
    };
    let name = match proto {
        1 => "ICMP".to_string(),
        6 => "TCP".to_string(),
        17 => "UDP".to_string(),
        58 => "ICMPv6".to_string(),
        132 => "SCTP".to_string(),
        n => n.to_string(),
    };
    let _ = write!(out, " PROTO={name}");
    if matches!(proto, 6 | 17 | 132) && l4.len() >= 4 {
        let _ = write!(
            out,
            " SPT={} DPT={}",
            u16::from_be_bytes([l4[0], l4[1]]),
            u16::from_be_bytes([l4[2], l4[3]])
        );
    }
    if matches!(proto, 1 | 58) && l4.len() >= 2 {
        let _ = write!(out, " TYPE={} CODE={}", l4[0], l4[1]);
    }
    out
}
