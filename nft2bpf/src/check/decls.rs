//! Declarations: ids for tables, chains, sets and named objects, base
//! chain specs, and named sets' elements.

use std::collections::HashMap;

use crate::check::collect::{ChainDraft, TableDraft};
use crate::check::rules::quota_spec;
use crate::check::sets::{check_size, normalize};
use crate::check::tree::{BaseChain, Chain, Hook, NamedCounter, NamedQuota, Policy, Table};
use crate::check::value::MAX_IFNAME;
use crate::check::{Checker, Names};
use crate::error::Error;
use crate::syntax::ast::{Expr, ExprKind, HookSpec, SetItem};

impl Checker {
    /// Declares every table's contents; the names of each table, in the
    /// drafts' order.
    pub(crate) fn declare(&mut self, drafts: &[TableDraft]) -> Vec<Names> {
        let mut all = Vec::with_capacity(drafts.len());
        for draft in drafts {
            let table = self.out.tables.push(Table {
                name: draft.name.clone(),
                span: draft.span,
                chains: Vec::new(),
                sets: Vec::new(),
                counters: Vec::new(),
                quotas: Vec::new(),
                dormant: draft.dormant,
            });
            let mut names = Names {
                table,
                table_name: draft.name.clone(),
                chains: HashMap::new(),
                sets: HashMap::new(),
                counters: HashMap::new(),
                quotas: HashMap::new(),
            };
            for c in &draft.chains {
                let id = self.out.chains.push(Chain {
                    table,
                    name: c.name.clone(),
                    span: c.span,
                    base: None,
                    rules: Vec::new(),
                });
                self.out.tables[table].chains.push(id);
                names.chains.insert(c.name.clone(), id);
            }
            for c in &draft.counters {
                let id = self.out.counters.push(NamedCounter {
                    table,
                    name: c.name.name.clone(),
                    packets: c.packets.map_or(0, |n| n.value),
                    bytes: c.bytes.map_or(0, |n| n.value),
                    span: c.span,
                });
                self.out.tables[table].counters.push(id);
                names.counters.insert(c.name.name.clone(), id);
            }
            for q in &draft.quotas {
                match quota_spec(&q.quota) {
                    Ok(quota) => {
                        let id = self.out.quotas.push(NamedQuota {
                            table,
                            name: q.name.name.clone(),
                            quota,
                            span: q.span,
                        });
                        self.out.tables[table].quotas.push(id);
                        names.quotas.insert(q.name.name.clone(), id);
                    }
                    Err(e) => self.report(e),
                }
            }
            for s in &draft.sets {
                match self.declare_set(&s.decl, table) {
                    Ok(set) => {
                        let id = self.out.sets.push(set);
                        self.out.tables[table].sets.push(id);
                        names.sets.insert(s.decl.name.name.clone(), id);
                    }
                    Err(e) => self.report(e),
                }
            }
            for c in &draft.chains {
                if let Err(e) = self.base_chain(c, &names) {
                    self.report(e);
                }
            }
            self.set_elements(draft, &names);
            all.push(names);
        }
        all
    }

    /// The hook spec and policy of a chain.
    fn base_chain(&mut self, c: &ChainDraft, names: &Names) -> Result<(), Error> {
        let Some(spec) = &c.hook else {
            if let Some(p) = &c.policy {
                return Err(Error::new(
                    format!(
                        "policy on chain `{}`, which has no hook: only base chains have a policy",
                        c.name
                    ),
                    p.span,
                ));
            }
            return Ok(());
        };
        let base = base_spec(spec, c.policy.as_ref())?;
        self.out.chains[names.chains[&c.name]].base = Some(base);
        Ok(())
    }

    /// Every named set's elements, from its declaration and from `add
    /// element`.
    fn set_elements(&mut self, draft: &TableDraft, names: &Names) {
        for s in &draft.sets {
            let Some(&id) = names.sets.get(&s.decl.name.name) else {
                continue;
            };
            let lists = s.decl.items.iter().filter_map(|i| match i {
                SetItem::Elements(e) => Some(e),
                _ => None,
            });
            let mut elements = Vec::new();
            for list in lists.chain(&s.more) {
                match self.elements(list, &self.out.sets[id], false, names) {
                    Ok(mut e) => elements.append(&mut e),
                    Err(e) => self.report(e),
                }
            }
            let set = &mut self.out.sets[id];
            set.elements = elements;
            if let Err(e) = normalize(set).and_then(|()| check_size(set)) {
                self.report(e);
            }
        }
    }
}

/// A base chain from its spec and policy.
fn base_spec(spec: &HookSpec, policy: Option<&Expr>) -> Result<BaseChain, Error> {
    if spec.chain_type.name != "filter" {
        return Err(Error::new(
            format!(
                "chain type `{}`: netdev chains are of type filter",
                spec.chain_type.name
            ),
            spec.chain_type.span,
        ));
    }
    let hook = match spec.hook.name.as_str() {
        "ingress" => Hook::Ingress,
        "egress" => Hook::Egress,
        _ => {
            return Err(Error::new(
                "The netdev family does not support this hook",
                spec.hook.span,
            ));
        }
    };
    if spec.devices.is_empty() {
        return Err(Error::new(
            "Missing `device' in this chain definition",
            spec.span,
        ));
    }
    let mut devices = Vec::with_capacity(spec.devices.len());
    for d in &spec.devices {
        devices.push(device_name(d)?);
    }
    let Some(p) = &spec.priority else {
        return Err(Error::new(
            "Missing `priority' in this chain definition",
            spec.span,
        ));
    };
    let base = match &p.base.kind {
        ExprKind::Number(n) => i64::try_from(*n).unwrap_or(i64::MAX),
        ExprKind::Negative(n) => i64::try_from(*n).map_or(i64::MIN, |n| -n),
        ExprKind::Word(w) if w == "filter" => 0,
        _ => {
            return Err(Error::new(
                format!(
                    "unknown priority `{}`: netdev chains know `filter` (0) or a number",
                    p.base
                ),
                p.base.span,
            ));
        }
    };
    let priority = i32::try_from(base + p.offset.unwrap_or(0))
        .map_err(|_| Error::new("priority out of range (a 32-bit signed number)", p.span))?;
    let policy = match policy.map(|p| (&p.kind, p.span)) {
        None => Policy::Accept,
        Some((ExprKind::Word(w), _)) if w == "accept" => Policy::Accept,
        Some((ExprKind::Word(w), _)) if w == "drop" => Policy::Drop,
        Some((_, span)) => return Err(Error::new("policy must be `accept` or `drop`", span)),
    };
    Ok(BaseChain {
        hook,
        devices,
        priority,
        policy,
        span: spec.span,
    })
}

/// A device name: a word or a string of at most [`MAX_IFNAME`] bytes.
pub(crate) fn device_name(e: &Expr) -> Result<String, Error> {
    let name = match &e.kind {
        ExprKind::Word(w) | ExprKind::Quoted(w) => w,
        _ => {
            return Err(Error::new(
                format!("expected a device name, not `{e}`"),
                e.span,
            ));
        }
    };
    if name.is_empty()
        || name.len() > MAX_IFNAME
        || name.contains(['/', '\0'])
        || name.contains(char::is_whitespace)
    {
        return Err(Error::new(
            format!("device name `{name}` is not valid: 1 to {MAX_IFNAME} bytes, no '/' or spaces"),
            e.span,
        ));
    }
    Ok(name.clone())
}
