//! Compilation: the checked ruleset to XDP and tcx programs.
//!
//! [`lower`](fn@lower) turns the base chains one hook of one device runs into a
//! packet-match IR ([`Lowered`]): its verdicts number the
//! [`Decision`]s (what happens to the packet, and which rule decided),
//! its `Cond::Act` blocks the [`Action`]s, and [`Slots`] say which
//! counter, quota, rate limit and log statement each action's state is
//! for (a named counter or quota has one slot however many rules use it).

pub mod actions;
pub mod dynset;
pub mod limit;
pub mod log;
mod lower;
pub mod program;
pub mod sets;
pub mod switch;

use indexmap::IndexSet;
use pktmatch::ir::{Ir, Verdict};

pub use actions::Action;
pub use lower::{
    INLINE_ELEMENTS, IPV6_EXT_HEADERS, LEN_VAR, LowerOptions, MAX_CLASSIFIERS, MIN_RUN, lower,
    lower_with,
};

use crate::check::tree::{ChainId, CounterId, Hook, Limit, QuotaId, QuotaSpec, RuleId};

/// Where a program runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Attach {
    /// XDP, for `hook ingress` chains: before the kernel makes an skb,
    /// with the VLAN tag still in the frame.
    Xdp,
    /// tcx ingress, for `hook ingress` chains.
    TcxIngress,
    /// tcx egress, for `hook egress` chains.
    TcxEgress,
}

impl Attach {
    /// The nft hook whose chains the program runs.
    pub fn hook(self) -> Hook {
        match self {
            Attach::Xdp | Attach::TcxIngress => Hook::Ingress,
            Attach::TcxEgress => Hook::Egress,
        }
    }

    /// The program's kind, for code generation.
    pub fn target(self) -> pktmatch::Target {
        match self {
            Attach::Xdp => pktmatch::Target::Xdp,
            Attach::TcxIngress | Attach::TcxEgress => pktmatch::Target::Tc,
        }
    }

    /// nft's `skb->len` for a frame of `wire_len` bytes that starts with
    /// `frame` (what counters, quotas and `meta length` count), as the
    /// program computes it: at ingress without the Ethernet header and
    /// the outer VLAN tag (a tag XDP still sees in the frame; tcx gets
    /// it in metadata), at egress the whole frame.
    pub fn skb_len(self, frame: &[u8], wire_len: u32) -> u32 {
        match self {
            Attach::TcxEgress => wire_len,
            Attach::TcxIngress => wire_len.saturating_sub(14),
            Attach::Xdp => {
                let tagged = matches!(frame.get(12..14), Some([0x81, 0x00] | [0x88, 0xa8]));
                wire_len.saturating_sub(if tagged { 18 } else { 14 })
            }
        }
    }

    /// Its name on the command line: `xdp`, `tcx-ingress`, `tcx-egress`.
    pub fn name(self) -> &'static str {
        match self {
            Attach::Xdp => "xdp",
            Attach::TcxIngress => "tcx-ingress",
            Attach::TcxEgress => "tcx-egress",
        }
    }
}

/// The device a program is for: chains name their devices, and `meta
/// iifname` compares with the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Its name.
    pub name: String,
    /// Its MAC address, which `meta pkttype` needs in XDP (whether a
    /// frame is for this host).
    pub mac: Option<[u8; 6]>,
}

impl Device {
    /// A device known by name only.
    pub fn named(name: impl Into<String>) -> Device {
        Device {
            name: name.into(),
            mac: None,
        }
    }

    /// The same device with its MAC address.
    pub fn with_mac(mut self, mac: [u8; 6]) -> Device {
        self.mac = Some(mac);
        self
    }
}

/// What becomes of a packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It goes on (every chain of the hook accepted it).
    Accept,
    /// It is dropped.
    Drop,
    /// It leaves by this device (`fwd to`).
    Fwd(String),
    /// It goes on in program `n` of the hook's ([`Lowered::program`]): a
    /// tail call, where a hook's rules take several programs.
    Next(u32),
}

/// As nft says it: `accept`, `drop`, `fwd to DEV`, and `program N` for a
/// tail call.
impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Accept => f.write_str("accept"),
            Outcome::Drop => f.write_str("drop"),
            Outcome::Fwd(dev) => write!(f, "fwd to {dev}"),
            Outcome::Next(n) => write!(f, "program {n}"),
        }
    }
}

/// How a program's run ends: the outcome, and what decided it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Decision {
    /// What becomes of the packet.
    pub outcome: Outcome,
    /// The rule whose verdict it is; none for a chain's policy (and for
    /// frames the hook never sees).
    pub rule: Option<RuleId>,
    /// The chain whose rule or policy it is; none for the last base
    /// chain's accept falling through, and for frames the hook never
    /// sees (decision 0: shorter than an Ethernet header, or tagged and
    /// too short to untag).
    pub chain: Option<ChainId>,
    /// The classifier whose lookup found the rule, by number in
    /// [`Lowered::classifiers`] (`rule` is then none: the rule is the one
    /// the lookup's value names, [`Lowered::classified_rule`]).
    pub classifier: Option<u32>,
}

impl Decision {
    /// A decision.
    pub fn new(outcome: Outcome, rule: Option<RuleId>, chain: Option<ChainId>) -> Decision {
        Decision {
            outcome,
            rule,
            chain,
            classifier: None,
        }
    }
}

/// A program's IR and what its verdicts and actions mean.
#[derive(Debug, Clone)]
pub struct Lowered {
    /// Where it runs.
    pub attach: Attach,
    /// The device.
    pub device: Device,
    /// The base chains it runs, in order.
    pub chains: Vec<ChainId>,
    /// The IR of the program the hook runs: verdict `n` is
    /// `decisions[n]`; action `n` is `actions[n]`.
    pub ir: Ir,
    /// The IRs of the programs it goes on to by tail calls
    /// ([`Outcome::Next`]`(1)` is the first), when the rules take more
    /// than one program; they share its decisions, actions and maps.
    pub more: Vec<Ir>,
    /// The decisions, by verdict number.
    pub decisions: Vec<Decision>,
    /// The actions, by action number.
    pub actions: Vec<Action>,
    /// What the actions' state slots are for.
    pub slots: Slots,
    /// The maps of the sets looked up, by map number
    /// ([`Action::Lookup::map`]).
    pub set_maps: Vec<sets::SetMap>,
    /// The rules of each classifier (a run of rules folded into one
    /// lookup), by number ([`Decision::classifier`]).
    pub classifiers: Vec<Vec<RuleId>>,
}

impl Lowered {
    /// The decision of a verdict.
    pub fn decision(&self, v: Verdict) -> Option<&Decision> {
        self.decisions.get(v.0 as usize)
    }

    /// Program `n`'s IR: 0 is the one the hook runs, others are tail
    /// called ([`Outcome::Next`]).
    pub fn program(&self, n: u32) -> Option<&Ir> {
        match n {
            0 => Some(&self.ir),
            n => self.more.get(n as usize - 1),
        }
    }

    /// The rule of decision `d` when a classifier decided: the one its
    /// lookup's `value` names (the rule's index in the run, shifted left
    /// by one); `d.rule` otherwise.
    pub fn classified_rule(&self, d: &Decision, value: u32) -> Option<RuleId> {
        match d.classifier {
            Some(c) => self
                .classifiers
                .get(c as usize)?
                .get((value >> 1) as usize)
                .copied(),
            None => d.rule,
        }
    }

    /// The decision for a packet in the interpreter ([`Ir::run_acting`]),
    /// following tail calls: `act` answers for actions (counters,
    /// quotas, limits), the sets' entries for lookups.
    pub fn run(&self, data: &[u8], wirelen: u32, act: &mut dyn FnMut(u32) -> bool) -> Verdict {
        self.run_classified(data, wirelen, act).0
    }

    /// [`Lowered::run`], with the value of the last classifier lookup
    /// that hit (for [`Lowered::classified_rule`], when a classifier
    /// decided).
    pub fn run_classified(
        &self,
        data: &[u8],
        wirelen: u32,
        act: &mut dyn FnMut(u32) -> bool,
    ) -> (Verdict, Option<u32>) {
        let mut ir = &self.ir;
        let mut classified = None;
        let mut lookup = |a: u32, key: &[u8]| {
            let found = self.lookup(a, key);
            if let Some(Action::Lookup { map }) = self.actions.get(a as usize)
                && self
                    .set_maps
                    .get(*map as usize)
                    .is_some_and(|m| m.set.is_none())
                && found.is_some()
            {
                classified = found;
            }
            found
        };
        // Each tail call goes to a later program: at most one each.
        for _ in 0..=self.more.len() {
            let v = ir.run_acting(data, wirelen, &|_| None, act, &mut lookup);
            match self.decision(v).map(|d| &d.outcome) {
                Some(Outcome::Next(n)) => match self.program(*n) {
                    Some(next) => ir = next,
                    None => return (v, classified),
                },
                _ => return (v, classified),
            }
        }
        (Verdict(0), classified)
    }

    /// What the lookup of action `action` gives for `key`, as the
    /// program's map would (for [`Ir::run_acting`]).
    pub fn lookup(&self, action: u32, key: &[u8]) -> Option<u32> {
        match self.actions.get(action as usize)? {
            Action::Lookup { map } | Action::LookupElement { map, .. } => {
                self.set_maps.get(*map as usize)?.lookup(key)
            }
            // The interpreter keeps no state: an element is added (the
            // set has room), and has no limit to break.
            Action::DynSet { .. } => Some(1),
            _ => None,
        }
    }
}

/// A counter's slot: a rule's own, or a named counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterSlot {
    /// `counter` in rule `rule`, statement `stmt`, with its initial
    /// values.
    Rule {
        /// The rule.
        rule: RuleId,
        /// The statement's index in the rule.
        stmt: usize,
        /// Initial packets.
        packets: u64,
        /// Initial bytes.
        bytes: u64,
    },
    /// `counter name NAME`.
    Named(CounterId),
}

/// A quota's slot: a rule's own, or a named quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaSlot {
    /// `quota ...` in rule `rule`, statement `stmt`.
    Rule {
        /// The rule.
        rule: RuleId,
        /// The statement's index in the rule.
        stmt: usize,
        /// Its parameters.
        spec: QuotaSpec,
    },
    /// `quota name NAME`.
    Named(QuotaId),
}

/// A `log` statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogEntry {
    /// Its rule.
    pub rule: RuleId,
    /// `prefix "..."`.
    pub prefix: Option<String>,
    /// The syslog level.
    pub level: u8,
}

/// What each state slot of the actions is for, by slot number.
#[derive(Debug, Clone, Default)]
pub struct Slots {
    /// Counters.
    pub counters: IndexSet<CounterSlot>,
    /// Quotas.
    pub quotas: IndexSet<QuotaSlot>,
    /// Rate limits: the rule, the statement's index, its parameters.
    pub limits: IndexSet<(RuleId, usize, Limit)>,
    /// Log statements: the rule, the statement's index, the entry.
    pub logs: IndexSet<(RuleId, usize, LogEntry)>,
}

impl Slots {
    fn counter(&mut self, c: CounterSlot) -> u32 {
        self.counters.insert_full(c).0 as u32
    }

    fn quota(&mut self, q: QuotaSlot) -> u32 {
        self.quotas.insert_full(q).0 as u32
    }

    fn limit(&mut self, rule: RuleId, stmt: usize, l: Limit) -> u32 {
        self.limits.insert_full((rule, stmt, l)).0 as u32
    }

    fn log(&mut self, rule: RuleId, stmt: usize, e: LogEntry) -> u32 {
        self.logs.insert_full((rule, stmt, e)).0 as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// nft's counters at netdev ingress count `n - 14` bytes of an
    /// untagged frame and `n - 18` of a tagged one (testbed's nft bed
    /// measured it); tcx already has the tag out of the frame; egress
    /// counts the whole frame.
    #[test]
    fn skb_len_is_what_nft_counts() {
        let mut f = vec![0u8; 60];
        assert_eq!(Attach::Xdp.skb_len(&f, 60), 46);
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(Attach::Xdp.skb_len(&f, 60), 42);
        f[12..14].copy_from_slice(&[0x88, 0xa8]);
        assert_eq!(Attach::Xdp.skb_len(&f, 60), 42);
        assert_eq!(Attach::TcxIngress.skb_len(&f[4..], 56), 42);
        assert_eq!(Attach::TcxEgress.skb_len(&f, 60), 60);
    }
}
