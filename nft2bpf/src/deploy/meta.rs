//! What a deployed program's unit says about itself: the ruleset's
//! tables, chains and rules as text, and what its decisions, counter
//! slots and log slots are for, and the named sets' maps with what it
//! takes to change them while the program runs. Written as JSON into the unit's `meta`
//! map at load; `list`, `log` and the next load read it back.

use std::io::Write as _;

use serde_json::{Value, json};

use crate::check::live::verdict_text;
use crate::check::tree::{Counter, ElemKey, Hook, Policy, Quota, QuotaSpec, RuleId, Ruleset, Stmt};
use crate::compile::sets::{PartLayout, SetKind};
use crate::compile::{CounterSlot, Lowered, QuotaSlot};
use crate::syntax::ast;

/// The version of the JSON layout.
const VERSION: u64 = 1;

/// A deployed program's description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    /// The ruleset file, as given to `load`.
    pub file: String,
    /// The hook (`xdp`, `tcx-ingress`, `tcx-egress`).
    pub attach: String,
    /// The device.
    pub device: String,
    /// The tables of the ruleset, as loaded.
    pub tables: Vec<TableMeta>,
    /// The decisions, by verdict number.
    pub decisions: Vec<DecisionMeta>,
    /// What each counter slot counts.
    pub counters: Vec<CounterMeta>,
    /// What each quota slot is for.
    pub quotas: Vec<QuotaMeta>,
    /// The `log` statements, by log slot.
    pub logs: Vec<LogMeta>,
    /// The maps of named sets and verdict maps (anonymous sets' maps
    /// never change), each pinned as its `member` of the unit.
    pub sets: Vec<SetMeta>,
}

/// The map of a named set or verdict map in a program: what it takes to
/// write elements into it while the program runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetMeta {
    /// The unit's member it is pinned as (`set3`: the program's map
    /// `nft_set3`).
    pub member: String,
    /// The set's table.
    pub table: String,
    /// The set's name.
    pub name: String,
    /// The map's kind.
    pub kind: SetKind,
    /// The key's parts, in order.
    pub parts: Vec<SetPartMeta>,
    /// `flags interval`.
    pub interval: bool,
    /// Whether it is a verdict map.
    pub is_map: bool,
    /// A verdict map's verdicts as text, by the map's value: the
    /// verdicts the program can branch to.
    pub verdicts: Vec<String>,
    /// `size N`, if declared.
    pub size: Option<u32>,
    /// Entries the map holds at most.
    pub max_entries: u32,
    /// `flags timeout`: elements may have timeouts (the map's values are
    /// [`ElemValue`](crate::compile::dynset::ElemValue)s).
    pub timeouts: bool,
    /// The set's `timeout`, in milliseconds.
    pub timeout: Option<u64>,
    /// Whether the map's values are
    /// [`ElemValue`](crate::compile::dynset::ElemValue)s (a set with
    /// timeouts or elements added from the packet path), not a `u32`.
    pub stateful: bool,
    /// The set's declaration in the ruleset file, in a canonical form
    /// ([`set_declaration`]): a reload keeps the live contents of a set
    /// whose declaration is the same. Empty in descriptions written
    /// before it was kept (such a set counts as changed).
    pub decl: String,
}

/// The declaration of set `set` of `rs` in a canonical form, for
/// telling whether a reload changed it: its key's types and widths,
/// `flags interval`, `flags constant`, `flags timeout`, `timeout`,
/// `size`, whether it is a verdict map, and its declared elements (keys,
/// verdicts, own timeouts) in sorted order, as their number and a
/// digest. Not in it: where it is in
/// the file, the order of the elements, and whether rules add to it
/// (that changes the map's shape, which [`super::load`] checks apart).
pub fn set_declaration(rs: &Ruleset, set: crate::check::tree::SetId) -> String {
    let s = &rs.sets[set];
    let chain_name = |c| rs.chains[c].name.clone();
    let key: Vec<String> = s
        .key
        .iter()
        .map(|k| format!("{}/{}", k.ty.name(), k.bits))
        .collect();
    // Each element's text, in one buffer (a million sets' elements
    // would otherwise be a million allocations), sorted (as bytes: the
    // order of the texts).
    let mut text: Vec<u8> = Vec::new();
    let mut elements: Vec<std::ops::Range<usize>> = Vec::with_capacity(s.elements.len());
    for e in &s.elements {
        let start = text.len();
        write_key_debug(&mut text, &e.key);
        if let Some(v) = e.verdict {
            write!(text, " : {}", verdict_text(v, &chain_name)).expect("writing to a Vec");
        }
        if let Some(ms) = e.timeout {
            write!(text, " timeout {ms}").expect("writing to a Vec");
        }
        elements.push(start..text.len());
    }
    elements.sort_unstable_by(|a, b| text[a.clone()].cmp(&text[b.clone()]));
    // The elements as a count and a digest: the description is read at
    // every set command, and a million elements written out would make
    // each one read and parse megabytes.
    let digest = elements
        .iter()
        .fold(FNV_OFFSET, |h, e| fnv1a(fnv1a(h, &text[e.clone()]), b"\n"));
    format!(
        "type {}; map {}; interval {}; constant {}; timeouts {}; timeout {:?}; size {:?}; elements {} {digest:016x}",
        key.join(" . "),
        s.is_map,
        s.interval,
        s.constant,
        s.state.timeouts,
        s.state.timeout,
        s.size,
        elements.len(),
    )
}

/// Appends `key` as `{:?}` writes it (`[Value(1), Range(2, 3)]`), the
/// form declarations were first written with, without the formatting
/// machinery (a million elements' keys are written at each load).
fn write_key_debug(text: &mut Vec<u8>, key: &[ElemKey]) {
    text.push(b'[');
    for (i, k) in key.iter().enumerate() {
        if i > 0 {
            text.extend_from_slice(b", ");
        }
        match *k {
            ElemKey::Value(v) => {
                text.extend_from_slice(b"Value(");
                write_decimal(text, v);
            }
            ElemKey::Range(low, high) => {
                text.extend_from_slice(b"Range(");
                write_decimal(text, low);
                text.extend_from_slice(b", ");
                write_decimal(text, high);
            }
        }
        text.push(b')');
    }
    text.push(b']');
}

/// Appends `v` in decimal (in 64-bit steps while it fits: most keys
/// are addresses and ports).
fn write_decimal(text: &mut Vec<u8>, v: u128) {
    let mut digits = [0u8; 39];
    let mut at = digits.len();
    match u64::try_from(v) {
        Ok(mut small) => loop {
            at -= 1;
            digits[at] = b'0' + (small % 10) as u8;
            small /= 10;
            if small == 0 {
                break;
            }
        },
        Err(_) => {
            let mut big = v;
            loop {
                at -= 1;
                digits[at] = b'0' + (big % 10) as u8;
                big /= 10;
                if big == 0 {
                    break;
                }
            }
        }
    }
    text.extend_from_slice(&digits[at..]);
}

/// FNV-1a's 64-bit offset basis.
const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a (64 bits) of `bytes`, going on from `h`: a digest fixed by
/// its definition, so descriptions written by one build compare with
/// those of the next.
fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One part of a set's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetPartMeta {
    /// nft's type name (`ipv4_addr`, `inet_service`).
    pub ty: String,
    /// Its width in bits.
    pub bits: u32,
    /// Where it is in the map's keys.
    pub layout: PartLayout,
}

/// A table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableMeta {
    /// Its name.
    pub name: String,
    /// Its named counters and quotas, in declaration order.
    pub objects: Vec<ObjectMeta>,
    /// Its named sets and verdict maps, in declaration order.
    pub sets: Vec<SetDeclMeta>,
    /// Its chains.
    pub chains: Vec<ChainMeta>,
}

/// A named counter or quota of a table (nft's stateful objects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectMeta {
    /// `counter NAME`.
    Counter(String),
    /// `quota NAME`, as declared (`used` is where it started).
    Quota(String, QuotaSpec),
}

/// A named set or verdict map of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetDeclMeta {
    /// What nft lists of it besides its elements.
    pub head: SetHead,
    /// Its elements as nft lists them, for a set that no program keeps
    /// in a map (no rule looks it up, or its elements became tests):
    /// they never change. `None` for a set in a map, whose elements are
    /// read from the map.
    pub elements: Option<Vec<String>>,
}

/// What nft lists of a named set or verdict map besides its elements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetHead {
    /// Its table.
    pub table: String,
    /// Its name.
    pub name: String,
    /// Whether it is a verdict map.
    pub is_map: bool,
    /// The key's parts: nft's type name and width in bits.
    pub types: Vec<(String, u32)>,
    /// `flags interval`.
    pub interval: bool,
    /// `flags timeout`.
    pub timeouts: bool,
    /// `timeout`, in milliseconds.
    pub timeout: Option<u64>,
    /// `size N`.
    pub size: Option<u32>,
}

impl SetHead {
    /// The head of set `set` of `rs`.
    pub fn of(rs: &Ruleset, set: crate::check::tree::SetId) -> SetHead {
        let s = &rs.sets[set];
        SetHead {
            table: rs.tables[s.table].name.clone(),
            name: s.name.clone().unwrap_or_default(),
            is_map: s.is_map,
            types: s
                .key
                .iter()
                .map(|k| (k.ty.name().to_string(), k.bits))
                .collect(),
            interval: s.interval,
            timeouts: s.state.timeouts,
            timeout: s.state.timeout,
            size: s.size,
        }
    }
}

impl SetMeta {
    /// What nft lists of the set besides its elements.
    pub fn head(&self) -> SetHead {
        SetHead {
            table: self.table.clone(),
            name: self.name.clone(),
            is_map: self.is_map,
            types: self.parts.iter().map(|p| (p.ty.clone(), p.bits)).collect(),
            interval: self.interval,
            timeouts: self.timeouts,
            timeout: self.timeout,
            size: self.size,
        }
    }
}

/// What a quota slot is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QuotaMeta {
    /// The `nth` anonymous quota of a rule.
    Rule {
        /// Where the rule is.
        pos: RulePos,
        /// Which of its quotas (from 0).
        nth: usize,
    },
    /// A named quota of a table.
    Named {
        /// The table.
        table: String,
        /// The quota's name.
        name: String,
    },
}

/// A chain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainMeta {
    /// Its name.
    pub name: String,
    /// For a base chain, its hook line as nft prints it (`type filter
    /// hook ingress device "eth0" priority 0; policy drop;`).
    pub hook: Option<String>,
    /// Its rules, in order.
    pub rules: Vec<RuleMeta>,
}

/// A rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleMeta {
    /// Its statements as nft text.
    pub stmts: Vec<String>,
    /// Which of them are anonymous counters (indexes into `stmts`).
    pub counters: Vec<usize>,
    /// Which of them are anonymous quotas (indexes into `stmts`), with
    /// their parameters.
    pub quotas: Vec<(usize, QuotaSpec)>,
    /// `comment "..."`.
    pub comment: Option<String>,
}

impl RuleMeta {
    /// The rule's text.
    pub fn text(&self) -> String {
        let mut t = self.stmts.join(" ");
        if let Some(c) = &self.comment {
            t.push_str(&format!(" comment \"{c}\""));
        }
        t
    }
}

/// Where a rule is: table, chain, position in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct RulePos {
    /// The table.
    pub table: String,
    /// The chain.
    pub chain: String,
    /// The rule's position in the chain, from 0.
    pub rule: usize,
}

/// A decision of the program.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DecisionMeta {
    /// `accept`, `drop` or `fwd to DEV`.
    pub outcome: String,
    /// The table and chain whose rule or policy decided; none for frames
    /// the hook never sees and for the last chain's accept.
    pub chain: Option<(String, String)>,
    /// The rule's position, none for a policy.
    pub rule: Option<usize>,
}

/// What a counter slot counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CounterMeta {
    /// The `nth` anonymous counter of a rule.
    Rule {
        /// Where the rule is.
        pos: RulePos,
        /// Which of its counters (from 0).
        nth: usize,
        /// The rule's text.
        text: String,
        /// How many rules of the same text come before it in its chain.
        occurrence: usize,
    },
    /// A named counter of a table.
    Named {
        /// The table.
        table: String,
        /// The counter's name.
        name: String,
    },
}

impl CounterMeta {
    /// The key that finds the counter again across reloads: the rule's
    /// table, chain, text and occurrence and which of its counters, or
    /// the table and name.
    pub fn key(&self) -> String {
        match self {
            CounterMeta::Rule {
                pos,
                nth,
                text,
                occurrence,
            } => format!(
                "rule\0{}\0{}\0{text}\0{occurrence}\0{nth}",
                pos.table, pos.chain
            ),
            CounterMeta::Named { table, name } => format!("named\0{table}\0{name}"),
        }
    }
}

/// A `log` statement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogMeta {
    /// `prefix "..."`.
    pub prefix: Option<String>,
    /// The syslog level.
    pub level: u8,
    /// Its rule.
    pub pos: RulePos,
}

/// The statements of the syntax tree's rules, by the span the checked
/// rules carry.
fn ast_rules(ast: &ast::Ruleset) -> std::collections::HashMap<(usize, usize), &ast::Rule> {
    type Rules<'a> = std::collections::HashMap<(usize, usize), &'a ast::Rule>;
    fn chain<'a>(c: &'a ast::ChainDecl, out: &mut Rules<'a>) {
        for item in &c.items {
            if let ast::ChainItem::Rule(r) = item {
                out.insert((r.span.start, r.span.end), r);
            }
        }
    }
    let mut out = Rules::new();
    for cmd in &ast.commands {
        match cmd {
            ast::Command::Table(t) => {
                for item in &t.items {
                    if let ast::TableItem::Chain(c) = item {
                        chain(c, &mut out);
                    }
                }
            }
            ast::Command::Chain(c) => chain(&c.item, &mut out),
            ast::Command::Rule(r) => {
                out.insert((r.item.rule.span.start, r.item.rule.span.end), &r.item.rule);
            }
            _ => {}
        }
    }
    out
}

/// The tables of `rs` as text ([`TableMeta`]), the rules' statements
/// taken from the syntax tree `ast` that `rs` was checked from.
pub fn tables(rs: &Ruleset, ast: &ast::Ruleset) -> Vec<TableMeta> {
    let by_span = ast_rules(ast);
    rs.tables
        .values()
        .map(|t| TableMeta {
            name: t.name.clone(),
            objects: objects(rs, t),
            sets: t
                .sets
                .iter()
                .filter(|&&set| rs.sets[set].name.is_some())
                .map(|&set| SetDeclMeta {
                    head: SetHead::of(rs, set),
                    elements: None,
                })
                .collect(),
            chains: t
                .chains
                .iter()
                .map(|&c| {
                    let chain = &rs.chains[c];
                    ChainMeta {
                        name: chain.name.clone(),
                        hook: chain.base.as_ref().map(hook_line),
                        rules: chain
                            .rules
                            .iter()
                            .map(|&r| rule_meta(rs, r, &by_span))
                            .collect(),
                    }
                })
                .collect(),
        })
        .collect()
}

/// A table's named counters and quotas, in declaration order.
fn objects(rs: &Ruleset, t: &crate::check::tree::Table) -> Vec<ObjectMeta> {
    let counters = t.counters.iter().map(|&c| {
        let c = &rs.counters[c];
        (c.span.start, ObjectMeta::Counter(c.name.clone()))
    });
    let quotas = t.quotas.iter().map(|&q| {
        let q = &rs.quotas[q];
        (q.span.start, ObjectMeta::Quota(q.name.clone(), q.quota))
    });
    let mut all: Vec<_> = counters.chain(quotas).collect();
    all.sort_by_key(|(at, _)| *at);
    all.into_iter().map(|(_, o)| o).collect()
}

/// A chain's priority as nft lists it: `filter`, `filter + 5`, or the
/// number when it is more than 10 away from `filter` (0).
fn priority_text(p: i32) -> String {
    match p {
        0 => "filter".into(),
        1..=10 => format!("filter + {p}"),
        -10..=-1 => format!("filter - {}", -p),
        _ => p.to_string(),
    }
}

fn hook_line(b: &crate::check::tree::BaseChain) -> String {
    let hook = match b.hook {
        Hook::Ingress => "ingress",
        Hook::Egress => "egress",
    };
    let devices = match b.devices.as_slice() {
        [one] => format!("device \"{one}\""),
        many => format!(
            "devices = {{ {} }}",
            many.iter()
                .map(|d| format!("\"{d}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let policy = match b.policy {
        Policy::Accept => "accept",
        Policy::Drop => "drop",
    };
    format!(
        "type filter hook {hook} {devices} priority {}; policy {policy};",
        priority_text(b.priority)
    )
}

fn rule_meta(
    rs: &Ruleset,
    r: RuleId,
    by_span: &std::collections::HashMap<(usize, usize), &ast::Rule>,
) -> RuleMeta {
    let rule = &rs.rules[r];
    match by_span.get(&(rule.span.start, rule.span.end)) {
        Some(a) => RuleMeta {
            stmts: a.stmts.iter().map(|s| s.to_string()).collect(),
            counters: a
                .stmts
                .iter()
                .enumerate()
                .filter(|(_, s)| matches!(s, ast::Stmt::Counter(c) if c.name.is_none()))
                .map(|(i, _)| i)
                .collect(),
            quotas: rule_quotas(rs, r, a),
            comment: a.comment.as_ref().map(|c| c.name.clone()),
        },
        // Not in the tree (never so for a ruleset checked from it): the
        // checked statements, as the dump prints them.
        None => RuleMeta {
            stmts: rule.stmts.iter().map(|s| rs.stmt_text(s)).collect(),
            counters: Vec::new(),
            quotas: Vec::new(),
            comment: rule.comment.clone(),
        },
    }
}

/// The anonymous quotas of rule `r` (written as `a`): the statements'
/// indexes in `a` and their parameters.
fn rule_quotas(rs: &Ruleset, r: RuleId, a: &ast::Rule) -> Vec<(usize, QuotaSpec)> {
    let at = a
        .stmts
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, ast::Stmt::Quota(q) if q.name.is_none()))
        .map(|(i, _)| i);
    let specs = rs.rules[r].stmts.iter().filter_map(|s| match s {
        Stmt::Quota(Quota::Anonymous(spec)) => Some(*spec),
        _ => None,
    });
    at.zip(specs).collect()
}

/// Where rule `r` is.
pub fn rule_pos(rs: &Ruleset, r: RuleId) -> RulePos {
    let chain = &rs.chains[rs.rules[r].chain];
    RulePos {
        table: rs.tables[chain.table].name.clone(),
        chain: chain.name.clone(),
        rule: chain.rules.iter().position(|&x| x == r).unwrap_or(0),
    }
}

impl Meta {
    /// The description of the program `l` of ruleset `rs` (whose tables
    /// [`tables`] made), loaded from `file`.
    pub fn new(file: &str, rs: &Ruleset, tables: Vec<TableMeta>, l: &Lowered) -> Meta {
        let decisions = l
            .decisions
            .iter()
            .map(|d| DecisionMeta {
                outcome: d.outcome.to_string(),
                chain: d.chain.map(|c| {
                    let chain = &rs.chains[c];
                    (rs.tables[chain.table].name.clone(), chain.name.clone())
                }),
                rule: d.rule.map(|r| rule_pos(rs, r).rule),
            })
            .collect();
        let counters = l
            .slots
            .counters
            .iter()
            .map(|c| match *c {
                CounterSlot::Rule { rule, stmt, .. } => {
                    let pos = rule_pos(rs, rule);
                    let nth = rs.rules[rule].stmts[..stmt]
                        .iter()
                        .filter(|s| matches!(s, Stmt::Counter(Counter::Anonymous { .. })))
                        .count();
                    let rules = &tables
                        .iter()
                        .find(|t| t.name == pos.table)
                        .and_then(|t| t.chains.iter().find(|c| c.name == pos.chain))
                        .map(|c| c.rules.as_slice())
                        .unwrap_or_default();
                    let text = rules.get(pos.rule).map(RuleMeta::text).unwrap_or_default();
                    let occurrence = rules[..pos.rule.min(rules.len())]
                        .iter()
                        .filter(|r| r.text() == text)
                        .count();
                    CounterMeta::Rule {
                        pos,
                        nth,
                        text,
                        occurrence,
                    }
                }
                CounterSlot::Named(n) => {
                    let c = &rs.counters[n];
                    CounterMeta::Named {
                        table: rs.tables[c.table].name.clone(),
                        name: c.name.clone(),
                    }
                }
            })
            .collect();
        let quotas = l
            .slots
            .quotas
            .iter()
            .map(|q| match *q {
                QuotaSlot::Rule { rule, stmt, .. } => QuotaMeta::Rule {
                    pos: rule_pos(rs, rule),
                    nth: rs.rules[rule].stmts[..stmt]
                        .iter()
                        .filter(|s| matches!(s, Stmt::Quota(Quota::Anonymous(_))))
                        .count(),
                },
                QuotaSlot::Named(id) => {
                    let q = &rs.quotas[id];
                    QuotaMeta::Named {
                        table: rs.tables[q.table].name.clone(),
                        name: q.name.clone(),
                    }
                }
            })
            .collect();
        let logs = l
            .slots
            .logs
            .iter()
            .map(|(rule, _, e)| LogMeta {
                prefix: e.prefix.clone(),
                level: e.level,
                pos: rule_pos(rs, *rule),
            })
            .collect();
        let chain_name = |c| rs.chains[c].name.clone();
        let sets = l
            .set_maps
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                let set = m.set?;
                let s = &rs.sets[set];
                Some(SetMeta {
                    member: format!("set{i}"),
                    table: rs.tables[s.table].name.clone(),
                    name: s.name.clone()?,
                    kind: m.kind,
                    parts: s
                        .key
                        .iter()
                        .zip(&m.layout)
                        .map(|(k, layout)| SetPartMeta {
                            ty: k.ty.name().to_string(),
                            bits: k.bits,
                            layout: layout.clone(),
                        })
                        .collect(),
                    interval: s.interval,
                    is_map: s.is_map,
                    verdicts: m
                        .verdicts
                        .iter()
                        .map(|&v| verdict_text(v, &chain_name))
                        .collect(),
                    size: s.size,
                    max_entries: m.max_entries,
                    timeouts: s.state.timeouts,
                    timeout: s.state.timeout,
                    stateful: m.stateful,
                    decl: set_declaration(rs, set),
                })
            })
            .collect();
        Meta {
            file: file.to_string(),
            attach: l.attach.name().to_string(),
            device: l.device.name.clone(),
            tables,
            decisions,
            counters,
            quotas,
            logs,
            sets,
        }
    }

    /// The description as JSON.
    pub fn to_json(&self) -> String {
        let pos = |p: &RulePos| json!({"table": p.table, "chain": p.chain, "rule": p.rule});
        let v = json!({
            "version": VERSION,
            "file": self.file,
            "attach": self.attach,
            "device": self.device,
            "tables": self.tables.iter().map(|t| json!({
                "name": t.name,
                "objects": t.objects.iter().map(|o| match o {
                    ObjectMeta::Counter(name) => json!({"kind": "counter", "name": name}),
                    ObjectMeta::Quota(name, q) => json!({
                        "kind": "quota", "name": name, "quota": quota_json(q),
                    }),
                }).collect::<Vec<_>>(),
                "sets": t.sets.iter().map(|d| json!({
                    "name": d.head.name, "map": d.head.is_map,
                    "types": d.head.types.iter().map(|(t, b)| json!([t, b])).collect::<Vec<_>>(),
                    "interval": d.head.interval, "timeouts": d.head.timeouts,
                    "timeout": d.head.timeout, "size": d.head.size, "elements": d.elements,
                })).collect::<Vec<_>>(),
                "chains": t.chains.iter().map(|c| json!({
                    "name": c.name,
                    "hook": c.hook,
                    "rules": c.rules.iter().map(|r| json!({
                        "stmts": r.stmts,
                        "counters": r.counters,
                        "quotas": r.quotas.iter()
                            .map(|(i, q)| json!({"stmt": i, "quota": quota_json(q)}))
                            .collect::<Vec<_>>(),
                        "comment": r.comment,
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "decisions": self.decisions.iter().map(|d| json!({
                "outcome": d.outcome,
                "table": d.chain.as_ref().map(|c| &c.0),
                "chain": d.chain.as_ref().map(|c| &c.1),
                "rule": d.rule,
            })).collect::<Vec<_>>(),
            "counters": self.counters.iter().map(|c| match c {
                CounterMeta::Rule { pos: p, nth, text, occurrence } => json!({
                    "kind": "rule", "pos": pos(p), "nth": nth, "text": text,
                    "occurrence": occurrence,
                }),
                CounterMeta::Named { table, name } => json!({
                    "kind": "named", "table": table, "name": name,
                }),
            }).collect::<Vec<_>>(),
            "quotas": self.quotas.iter().map(|q| match q {
                QuotaMeta::Rule { pos: p, nth } => json!({
                    "kind": "rule", "pos": pos(p), "nth": nth,
                }),
                QuotaMeta::Named { table, name } => json!({
                    "kind": "named", "table": table, "name": name,
                }),
            }).collect::<Vec<_>>(),
            "logs": self.logs.iter().map(|l| json!({
                "prefix": l.prefix, "level": l.level, "pos": pos(&l.pos),
            })).collect::<Vec<_>>(),
            "sets": self.sets.iter().map(|s| json!({
                "member": s.member, "table": s.table, "name": s.name,
                "kind": s.kind.name(),
                "parts": s.parts.iter().map(|p| json!({
                    "type": p.ty, "bits": p.bits, "widths": p.layout.widths,
                    "shift": p.layout.shift, "layout_bits": p.layout.bits,
                })).collect::<Vec<_>>(),
                "interval": s.interval, "map": s.is_map, "verdicts": s.verdicts,
                "size": s.size, "max_entries": s.max_entries,
                "timeouts": s.timeouts, "timeout": s.timeout, "stateful": s.stateful,
                "decl": s.decl,
            })).collect::<Vec<_>>(),
        });
        v.to_string()
    }

    /// Reads [`Meta::to_json`]'s text back.
    pub fn from_json(text: &str) -> Result<Meta, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if v["version"].as_u64() != Some(VERSION) {
            return Err(format!("unknown description version {}", v["version"]));
        }
        let s = |v: &Value| v.as_str().map(str::to_string);
        let n = |v: &Value| v.as_u64().map(|n| n as usize);
        let arr = |v: &Value| v.as_array().cloned().unwrap_or_default();
        let bad = |what: &str| format!("bad description: {what}");
        let pos = |v: &Value| -> Result<RulePos, String> {
            Ok(RulePos {
                table: s(&v["table"]).ok_or_else(|| bad("table"))?,
                chain: s(&v["chain"]).ok_or_else(|| bad("chain"))?,
                rule: n(&v["rule"]).ok_or_else(|| bad("rule"))?,
            })
        };
        let mut m = Meta {
            file: s(&v["file"]).unwrap_or_default(),
            attach: s(&v["attach"]).ok_or_else(|| bad("attach"))?,
            device: s(&v["device"]).ok_or_else(|| bad("device"))?,
            ..Meta::default()
        };
        for t in arr(&v["tables"]) {
            let name = s(&t["name"]).ok_or_else(|| bad("table name"))?;
            let mut objects = Vec::new();
            for o in arr(&t["objects"]) {
                let oname = s(&o["name"]).ok_or_else(|| bad("object name"))?;
                objects.push(match o["kind"].as_str() {
                    Some("counter") => ObjectMeta::Counter(oname),
                    Some("quota") => ObjectMeta::Quota(
                        oname,
                        quota_from_json(&o["quota"]).ok_or_else(|| bad("quota"))?,
                    ),
                    _ => return Err(bad("object kind")),
                });
            }
            // Descriptions written before objects had named counters only.
            if t.get("objects").is_none() {
                objects = arr(&t["counters"])
                    .iter()
                    .filter_map(s)
                    .map(ObjectMeta::Counter)
                    .collect();
            }
            let mut sets = Vec::new();
            for d in arr(&t["sets"]) {
                let types = arr(&d["types"])
                    .iter()
                    .map(|p| Some((s(&p[0])?, p[1].as_u64()? as u32)))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| bad("set types"))?;
                sets.push(SetDeclMeta {
                    head: SetHead {
                        table: name.clone(),
                        name: s(&d["name"]).ok_or_else(|| bad("set name"))?,
                        is_map: d["map"].as_bool().unwrap_or(false),
                        types,
                        interval: d["interval"].as_bool().unwrap_or(false),
                        timeouts: d["timeouts"].as_bool().unwrap_or(false),
                        timeout: d["timeout"].as_u64(),
                        size: d["size"].as_u64().map(|x| x as u32),
                    },
                    elements: d["elements"]
                        .as_array()
                        .map(|e| e.iter().filter_map(s).collect()),
                });
            }
            let mut table = TableMeta {
                name,
                objects,
                sets,
                chains: Vec::new(),
            };
            for c in arr(&t["chains"]) {
                table.chains.push(ChainMeta {
                    name: s(&c["name"]).ok_or_else(|| bad("chain name"))?,
                    hook: s(&c["hook"]),
                    rules: arr(&c["rules"])
                        .iter()
                        .map(|r| RuleMeta {
                            stmts: arr(&r["stmts"]).iter().filter_map(s).collect(),
                            counters: arr(&r["counters"]).iter().filter_map(n).collect(),
                            quotas: arr(&r["quotas"])
                                .iter()
                                .filter_map(|q| {
                                    Some((n(&q["stmt"])?, quota_from_json(&q["quota"])?))
                                })
                                .collect(),
                            comment: s(&r["comment"]),
                        })
                        .collect(),
                });
            }
            m.tables.push(table);
        }
        for d in arr(&v["decisions"]) {
            m.decisions.push(DecisionMeta {
                outcome: s(&d["outcome"]).ok_or_else(|| bad("outcome"))?,
                chain: s(&d["table"]).zip(s(&d["chain"])),
                rule: n(&d["rule"]),
            });
        }
        for c in arr(&v["counters"]) {
            m.counters.push(match c["kind"].as_str() {
                Some("rule") => CounterMeta::Rule {
                    pos: pos(&c["pos"])?,
                    nth: n(&c["nth"]).ok_or_else(|| bad("nth"))?,
                    text: s(&c["text"]).unwrap_or_default(),
                    occurrence: n(&c["occurrence"]).unwrap_or(0),
                },
                Some("named") => CounterMeta::Named {
                    table: s(&c["table"]).ok_or_else(|| bad("table"))?,
                    name: s(&c["name"]).ok_or_else(|| bad("name"))?,
                },
                _ => return Err(bad("counter kind")),
            });
        }
        for q in arr(&v["quotas"]) {
            m.quotas.push(match q["kind"].as_str() {
                Some("rule") => QuotaMeta::Rule {
                    pos: pos(&q["pos"])?,
                    nth: n(&q["nth"]).ok_or_else(|| bad("nth"))?,
                },
                Some("named") => QuotaMeta::Named {
                    table: s(&q["table"]).ok_or_else(|| bad("table"))?,
                    name: s(&q["name"]).ok_or_else(|| bad("name"))?,
                },
                _ => return Err(bad("quota kind")),
            });
        }
        for l in arr(&v["logs"]) {
            m.logs.push(LogMeta {
                prefix: s(&l["prefix"]),
                level: l["level"].as_u64().unwrap_or(4) as u8,
                pos: pos(&l["pos"])?,
            });
        }
        // Descriptions written before sets were pinned have none.
        for v in arr(&v["sets"]) {
            let mut parts = Vec::new();
            for p in arr(&v["parts"]) {
                let u = |f: &str| p[f].as_u64().map(|x| x as u32).ok_or_else(|| bad(f));
                parts.push(SetPartMeta {
                    ty: s(&p["type"]).ok_or_else(|| bad("part type"))?,
                    bits: u("bits")?,
                    layout: PartLayout {
                        widths: arr(&p["widths"])
                            .iter()
                            .map(|w| w.as_u64().map(|x| x as u32).ok_or_else(|| bad("widths")))
                            .collect::<Result<_, _>>()?,
                        shift: u("shift")?,
                        bits: u("layout_bits")?,
                    },
                });
            }
            m.sets.push(SetMeta {
                member: s(&v["member"]).ok_or_else(|| bad("set member"))?,
                table: s(&v["table"]).ok_or_else(|| bad("set table"))?,
                name: s(&v["name"]).ok_or_else(|| bad("set name"))?,
                kind: v["kind"]
                    .as_str()
                    .and_then(SetKind::named)
                    .ok_or_else(|| bad("set kind"))?,
                parts,
                interval: v["interval"].as_bool().unwrap_or(false),
                is_map: v["map"].as_bool().unwrap_or(false),
                verdicts: arr(&v["verdicts"]).iter().filter_map(s).collect(),
                size: v["size"].as_u64().map(|x| x as u32),
                max_entries: v["max_entries"]
                    .as_u64()
                    .map(|x| x as u32)
                    .ok_or_else(|| bad("max_entries"))?,
                timeouts: v["timeouts"].as_bool().unwrap_or(false),
                timeout: v["timeout"].as_u64(),
                stateful: v["stateful"].as_bool().unwrap_or(false),
                decl: s(&v["decl"]).unwrap_or_default(),
            });
        }
        Ok(m)
    }

    /// Says where decision `n` came from: `TABLE/CHAIN rule N` or
    /// `TABLE/CHAIN policy`; `None` when no chain decided.
    pub fn decided_by(&self, n: usize) -> Option<String> {
        let d = self.decisions.get(n)?;
        let (t, c) = d.chain.as_ref()?;
        Some(match d.rule {
            Some(r) => format!("{t}/{c} rule {r}"),
            None => format!("{t}/{c} policy"),
        })
    }

    /// The text of the rule at `pos`.
    pub fn rule_text(&self, pos: &RulePos) -> Option<String> {
        let t = self.tables.iter().find(|t| t.name == pos.table)?;
        let c = t.chains.iter().find(|c| c.name == pos.chain)?;
        c.rules.get(pos.rule).map(RuleMeta::text)
    }
}

fn quota_json(q: &QuotaSpec) -> Value {
    json!({"over": q.over, "bytes": q.bytes, "used": q.used})
}

fn quota_from_json(v: &Value) -> Option<QuotaSpec> {
    Some(QuotaSpec {
        over: v["over"].as_bool()?,
        bytes: v["bytes"].as_u64()?,
        used: v["used"].as_u64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::Source;
    use crate::syntax::MemLoader;

    /// The declaration of set `s` of table `t` in `text`.
    fn decl(text: &str) -> String {
        let src = Source::from_text("t.nft", text, &mut MemLoader::new()).unwrap();
        let (id, _) = src
            .ruleset
            .sets
            .iter()
            .find(|(_, s)| s.name.as_deref() == Some("s"))
            .unwrap();
        set_declaration(&src.ruleset, id)
    }

    fn table(set: &str, rules: &str) -> String {
        let kind = if set.contains(": verdict") {
            "map"
        } else {
            "set"
        };
        format!(
            "table netdev t {{ {kind} s {{ {set} }}
                chain other {{ counter; }}
                chain c {{ type filter hook ingress device \"eth0\" priority 0; {rules} }}; }}"
        )
    }

    #[test]
    fn keys_are_written_as_debug_writes_them() {
        let keys = [
            vec![ElemKey::Value(0)],
            vec![ElemKey::Value(167_772_161)],
            vec![ElemKey::Value(u128::MAX), ElemKey::Range(0, 9)],
            vec![ElemKey::Range(10, u128::from(u64::MAX) + 1)],
            vec![ElemKey::Value(1), ElemKey::Value(22), ElemKey::Range(1, 2)],
        ];
        for key in keys {
            let mut text = Vec::new();
            write_key_debug(&mut text, &key);
            assert_eq!(String::from_utf8(text).unwrap(), format!("{key:?}"));
        }
    }

    #[test]
    fn the_digest_is_fnv1a_as_published() {
        // The reference vectors of FNV-1a, 64 bits.
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0x8594_4171_f739_67e8);
    }

    /// Declarations stored by one build compare with the next one's: the
    /// text of a declaration stays as it was written when pins were
    /// first made with it (this value comes from that build).
    #[test]
    fn a_set_declaration_reads_as_earlier_builds_wrote_it() {
        let d = decl(&table(
            "type ipv4_addr; flags timeout; elements = { 10.0.0.2, 10.0.0.1 timeout 1s, 192.168.1.1 };",
            "ip saddr @s drop;",
        ));
        assert_eq!(
            d,
            "type ipv4_addr/32; map false; interval false; constant false; timeouts true; \
             timeout None; size None; elements 3 de4688403f7ddb35"
        );
        let m = decl(&table(
            "type inet_service : verdict; elements = { 22 : drop, 80 : jump other, 443 : accept };",
            "udp dport vmap @s;",
        ));
        assert_eq!(
            m,
            "type inet_service/16; map true; interval false; constant false; timeouts false; \
             timeout None; size None; elements 3 f35ff98ad2fa74f5"
        );
    }

    #[test]
    fn a_set_declaration_is_its_type_flags_and_elements_not_their_order() {
        let base = decl(&table(
            "type ipv4_addr; elements = { 10.0.0.1, 10.0.0.2 };",
            "ip saddr @s drop;",
        ));
        // Elements in another order, other rules, other places: the same.
        let same = decl(&table(
            "type ipv4_addr;\n\n elements = { 10.0.0.2, 10.0.0.1 };",
            "udp dport 9 drop; ip daddr @s accept;",
        ));
        assert_eq!(base, same);
        for other in [
            "type ipv4_addr; elements = { 10.0.0.1 };",
            "type ipv4_addr; size 10; elements = { 10.0.0.1, 10.0.0.2 };",
            "type ipv4_addr; flags interval; elements = { 10.0.0.1, 10.0.0.2 };",
            "type ipv4_addr; flags timeout; elements = { 10.0.0.1, 10.0.0.2 };",
            "type ipv4_addr; timeout 1s; elements = { 10.0.0.1, 10.0.0.2 };",
            "type ipv4_addr; flags constant; elements = { 10.0.0.1, 10.0.0.2 };",
        ] {
            assert_ne!(decl(&table(other, "ip saddr @s drop;")), base, "{other}");
        }
        // An element's own timeout is part of it.
        let timeouts = |e: &str| {
            decl(&table(
                &format!("type ipv4_addr; flags timeout; elements = {{ {e} }};"),
                "ip saddr @s drop;",
            ))
        };
        assert_ne!(
            timeouts("10.0.0.1 timeout 1s, 10.0.0.2"),
            timeouts("10.0.0.1, 10.0.0.2")
        );
        // A verdict map's verdicts are part of it.
        let map = |e: &str| {
            decl(&table(
                &format!("type inet_service : verdict; elements = {{ {e} }};"),
                "udp dport vmap @s;",
            ))
        };
        assert_eq!(
            map("1 : drop, 2 : jump other"),
            map("2 : jump other, 1 : drop")
        );
        assert_ne!(map("1 : drop"), map("1 : accept"));
    }
}
