//! A rule's statements, from the last to the first: each one's blocks
//! go to the next statement's when the rule goes on, to the next rule's
//! when it ends.

use pktmatch::ir::{CmpOp, Cond, Edge, EntityRef, VarNo};

use super::cfg::Short;
use super::{ChainCtx, Lower, pktinfo};
use crate::check::tree::{Counter, Quota, RuleId, Stmt, Verdict, VerdictMap};
use crate::compile::actions::Action;
use crate::compile::{CounterSlot, LogEntry, Outcome};
use crate::error::Error;

impl Lower<'_> {
    /// The rule `r`, going to `next` when it ends without a verdict.
    pub(super) fn rule(&mut self, r: RuleId, next: Edge, ctx: ChainCtx) -> Result<Edge, Error> {
        let rule = &self.rs.rules[r];
        // Actions carry no span of their own: their rule's.
        let span = rule.span;
        let mut cont = next;
        for (i, stmt) in rule.stmts.iter().enumerate().rev() {
            cont = match stmt {
                Stmt::Match(m) => self.match_blocks(&m.key, &m.test, m.span, cont, next)?,
                Stmt::Counter(c) => {
                    let slot = self.counter_slot(r, i, *c);
                    self.act(Action::Count { slot }, cont, cont, span)
                }
                Stmt::Quota(q) => {
                    let (slot, spec) = self.quota_slot(r, i, *q);
                    let action = Action::Quota {
                        slot,
                        over: spec.over,
                        bytes: spec.bytes,
                        used: spec.used,
                    };
                    self.act(action, cont, next, span)
                }
                Stmt::Limit(limit) => {
                    let slot = self.slots.limit(r, i, *limit);
                    let action = Action::Limit {
                        slot,
                        limit: *limit,
                    };
                    self.act(action, cont, next, span)
                }
                Stmt::Log(log) => {
                    let entry = LogEntry {
                        rule: r,
                        prefix: log.prefix.clone(),
                        level: log.level,
                    };
                    let slot = self.slots.log(r, i, entry);
                    self.act(Action::Log { slot }, cont, cont, span)
                }
                Stmt::Fwd(f) => {
                    self.decision(Outcome::Fwd(f.device.clone()), Some(r), Some(rule.chain))
                }
                Stmt::Verdict(v) => self.verdict(*v, r, next, ctx)?,
                Stmt::VerdictMap(vm) => self.vmap(vm, r, cont, next, ctx)?,
                Stmt::Pcap(p) => self.pcap(p, cont, next)?,
                Stmt::DynSet(d) => {
                    let parts = self.key_parts(&d.key, d.span)?;
                    let (key, map) = self.stateful_set(&parts, d.set, d.span)?;
                    let action = self.action(Action::DynSet {
                        map: map as u32,
                        update: d.update,
                        timeout_ms: d.timeout.unwrap_or(0),
                        limit: d.limit,
                    });
                    // A full set or a limit that breaks ends the rule, as
                    // does a key that cannot be read.
                    let cond = Cond::Lookup {
                        key,
                        action,
                        result: None.into(),
                    };
                    let block = self.cfg.test(cond, cont, next, Short::False, d.span);
                    self.guard(&parts, block, next, d.span)
                }
            };
        }
        Ok(cont)
    }

    /// The number of an action (equal actions share one).
    pub(super) fn action(&mut self, action: Action) -> u32 {
        self.actions.insert_full(action).0 as u32
    }

    /// An action block: `t` when it goes on, `f` when it fails.
    pub(super) fn act(&mut self, action: Action, t: Edge, f: Edge, span: pktmatch::Span) -> Edge {
        let cond = Cond::Act {
            action: self.action(action),
        };
        self.cfg.test(cond, t, f, Short::False, span)
    }

    /// Where a verdict of rule `r` goes.
    pub(super) fn verdict(
        &mut self,
        v: Verdict,
        r: RuleId,
        next: Edge,
        ctx: ChainCtx,
    ) -> Result<Edge, Error> {
        let chain = self.rs.rules[r].chain;
        Ok(match v {
            Verdict::Accept => match ctx.accept {
                Some(e) => e,
                None => self.decision(Outcome::Accept, Some(r), Some(chain)),
            },
            Verdict::Drop => self.decision(Outcome::Drop, Some(r), Some(chain)),
            Verdict::Continue => next,
            Verdict::Return => ctx.ret,
            Verdict::Jump(c) => self.inline(c, ChainCtx { ret: next, ..ctx })?,
            Verdict::Goto(c) => self.inline(c, ctx)?,
        })
    }

    /// `KEY vmap MAP`: the verdict of the element the key is, or `miss`
    /// when it is none; `next` when the key cannot be read.
    fn vmap(
        &mut self,
        vm: &VerdictMap,
        r: RuleId,
        miss: Edge,
        next: Edge,
        ctx: ChainCtx,
    ) -> Result<Edge, Error> {
        let parts = self.key_parts(&vm.key, vm.span)?;
        if let Some(lookup) = self.set_lookup(&parts, vm.map, false, vm.span)? {
            // A hit leaves the verdict's number in a variable: one test
            // per verdict but the last.
            // A map without elements has no verdict to branch to: no
            // element can be added to it while it runs either.
            let Some((last, rest)) = lookup.verdicts.split_last() else {
                return Ok(self.guard(&parts, miss, next, vm.span));
            };
            let mut hit = self.verdict(*last, r, next, ctx)?;
            for (i, v) in rest.iter().enumerate().rev() {
                let e = self.verdict(*v, r, next, ctx)?;
                let var = self.var(pktinfo::var::VMAP);
                let cond = self.cmp_cond(var, CmpOp::Eq, i as u32);
                hit = self.cfg.test(cond, e, hit, Short::False, vm.span);
            }
            let cond = Cond::Lookup {
                key: lookup.key,
                action: lookup.action,
                result: Some(VarNo::new(pktinfo::var::VMAP as usize)).into(),
            };
            let block = self.cfg.test(cond, hit, miss, Short::False, vm.span);
            return Ok(self.guard(&parts, block, next, vm.span));
        }
        let set = &self.rs.sets[vm.map];
        let mut e = miss;
        for el in set.elements.iter().rev() {
            let v = el.verdict.expect("a verdict map's element has a verdict");
            let hit = self.verdict(v, r, next, ctx)?;
            let f = self.element(&parts, &el.key);
            e = self.emit(&f, hit, e, vm.span);
        }
        Ok(self.guard(&parts, e, next, vm.span))
    }

    /// The counters' slot of statement `i` of rule `r`.
    pub(super) fn counter_slot(&mut self, r: RuleId, i: usize, c: Counter) -> u32 {
        let slot = match c {
            Counter::Anonymous { packets, bytes } => CounterSlot::Rule {
                rule: r,
                stmt: i,
                packets,
                bytes,
            },
            Counter::Named(id) => CounterSlot::Named(id),
        };
        self.slots.counter(slot)
    }

    /// The quotas' slot of statement `i` of rule `r`, and its parameters.
    fn quota_slot(
        &mut self,
        r: RuleId,
        i: usize,
        q: Quota,
    ) -> (u32, crate::check::tree::QuotaSpec) {
        match q {
            Quota::Anonymous(spec) => (
                self.slots.quota(crate::compile::QuotaSlot::Rule {
                    rule: r,
                    stmt: i,
                    spec,
                }),
                spec,
            ),
            Quota::Named(id) => {
                let spec = self.rs.quotas[id].quota;
                (self.slots.quota(crate::compile::QuotaSlot::Named(id)), spec)
            }
        }
    }
}
