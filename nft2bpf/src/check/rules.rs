//! Rules: each statement checked in order, nft's dependencies added
//! before the matches that need them.

use pktmatch::Span;

use crate::check::collect::TableDraft;
use crate::check::context::ProtoCtx;
use crate::check::decls::device_name;
use crate::check::matches::{key_types, same_key};
use crate::check::sets::{key_desc, time_ms};
use crate::check::tree::{
    ChainId, Counter, DynSet, Fwd, Key, Limit, LimitUnit, Log, PcapMatch, Quota, QuotaSpec, Rule,
    Stmt, Verdict, VerdictMap,
};
use crate::check::value::mismatch;
use crate::check::{Checker, Names, refuse};
use crate::error::Error;
use crate::syntax::ast::{self, Expr, ExprKind, Ident, VerdictKind};

/// The longest log prefix (the kernel's `NF_LOG_PREFIXLEN` less the
/// final zero; nft itself crashes on longer ones).
pub const MAX_LOG_PREFIX: usize = 127;

/// The syslog levels `log level` knows, in order from 0.
const LOG_LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warn", "notice", "info", "debug",
];

impl Checker {
    /// Checks every rule of every chain.
    pub(crate) fn check_rules(&mut self, drafts: &[TableDraft], names: &[Names]) {
        for (draft, names) in drafts.iter().zip(names) {
            for c in &draft.chains {
                let chain = names.chains[&c.name];
                for r in &c.rules {
                    match self.rule(r, chain, names) {
                        Ok(rule) => {
                            let id = self.out.rules.push(rule);
                            self.out.chains[chain].rules.push(id);
                        }
                        Err(e) => self.report(e),
                    }
                }
            }
        }
    }

    /// One rule.
    fn rule(&mut self, rule: &ast::Rule, chain: ChainId, names: &Names) -> Result<Rule, Error> {
        let mut ctx = ProtoCtx::default();
        let mut stmts = Vec::new();
        let mut terminal = false;
        for s in &rule.stmts {
            if terminal {
                return Err(Error::new(
                    "Statement after terminal statement has no effect",
                    s.span(),
                ));
            }
            match s {
                ast::Stmt::Match(rel) => self.relation(rel, &mut ctx, names, &mut stmts)?,
                ast::Stmt::Verdict(v) => {
                    let verdict = self.verdict(&v.kind, v.span, names)?;
                    if let Verdict::Jump(to) | Verdict::Goto(to) = verdict {
                        self.edges.push((chain, to, v.span));
                    }
                    terminal = verdict != Verdict::Continue;
                    stmts.push(Stmt::Verdict(verdict));
                }
                ast::Stmt::VerdictMap(vm) => {
                    let vm = self.verdict_map(vm, &mut ctx, names, &mut stmts)?;
                    for el in &self.out.sets[vm.map].elements {
                        if let Some(Verdict::Jump(to) | Verdict::Goto(to)) = el.verdict {
                            let at = if self.out.sets[vm.map].name.is_some() {
                                vm.span
                            } else {
                                el.span
                            };
                            self.edges.push((chain, to, at));
                        }
                    }
                    stmts.push(Stmt::VerdictMap(vm));
                }
                ast::Stmt::DynSet(d) => {
                    let ds = self.dynset(d, &mut ctx, names, &mut stmts)?;
                    stmts.push(Stmt::DynSet(ds));
                }
                ast::Stmt::Counter(c) => stmts.push(Stmt::Counter(self.counter(c, names)?)),
                ast::Stmt::Limit(l) => stmts.push(Stmt::Limit(limit(l)?)),
                ast::Stmt::Quota(q) => stmts.push(Stmt::Quota(self.quota(q, names)?)),
                ast::Stmt::Log(l) => stmts.push(Stmt::Log(log(l)?)),
                ast::Stmt::Fwd(f) => {
                    if let Some(fam) = &f.family {
                        return Err(Error::new(
                            refuse::message(&format!("fwd {}", fam.name)),
                            f.span,
                        ));
                    }
                    stmts.push(Stmt::Fwd(Fwd {
                        device: device_name(&f.to)?,
                    }));
                    terminal = true;
                }
                ast::Stmt::Pcap(p) => {
                    let m = PcapMatch {
                        filter: p.name.clone(),
                        span: p.span,
                    };
                    // The filter's syntax and names, as tcpdump checks
                    // them on an Ethernet link; what depends on the hook
                    // (`vlan` in metadata) is checked when compiled.
                    let names = pcap2bpf::Tables::system();
                    pcap2bpf::parse(&m.filter, pcap2bpf::LinkType::En10mb, &names)
                        .map_err(|e| m.error(&e))?;
                    stmts.push(Stmt::Pcap(m));
                }
                ast::Stmt::Mangle(m) => {
                    let why = refuse::why("set").unwrap_or("not supported by nft2bpf");
                    return Err(Error::new(format!("`{} set`: {why}", m.target), m.span));
                }
                ast::Stmt::Unsupported(u) => {
                    return Err(Error::new(refuse::message(&u.what), u.span));
                }
            }
        }
        Ok(Rule {
            chain,
            span: rule.span,
            comment: rule.comment.as_ref().map(|c| c.name.clone()),
            stmts,
        })
    }

    /// A verdict, its chain resolved in the table.
    pub(crate) fn verdict(
        &self,
        v: &VerdictKind,
        span: Span,
        names: &Names,
    ) -> Result<Verdict, Error> {
        Ok(match v {
            VerdictKind::Accept => Verdict::Accept,
            VerdictKind::Drop => Verdict::Drop,
            VerdictKind::Continue => Verdict::Continue,
            VerdictKind::Return => Verdict::Return,
            VerdictKind::Jump(t) => Verdict::Jump(self.target(t, span, names)?),
            VerdictKind::Goto(t) => Verdict::Goto(self.target(t, span, names)?),
        })
    }

    /// The chain a `jump` or `goto` names: a regular chain of the table.
    fn target(&self, t: &Expr, span: Span, names: &Names) -> Result<ChainId, Error> {
        let ExprKind::Word(name) = &t.kind else {
            return Err(Error::new(
                format!("expected a chain name, not `{t}`"),
                t.span,
            ));
        };
        let Some(&id) = names.chains.get(name) else {
            return Err(Error::new(
                format!(
                    "chain `{name}` does not exist in table netdev {}",
                    names.table_name
                ),
                t.span,
            ));
        };
        if self.out.chains[id].base.is_some() {
            return Err(Error::new(
                format!("`{name}` is a base chain: the kernel allows jumps to regular chains only"),
                span,
            ));
        }
        Ok(id)
    }

    /// `KEY vmap MAP`.
    fn verdict_map(
        &mut self,
        vm: &ast::VerdictMap,
        ctx: &mut ProtoCtx,
        names: &Names,
        stmts: &mut Vec<Stmt>,
    ) -> Result<VerdictMap, Error> {
        let parts = self.key_parts(&vm.key)?;
        self.add_dependencies(&parts, names.table, ctx, stmts)?;
        let key_types = key_types(&parts);
        let map = match &vm.map.kind {
            ExprKind::Set(_) => self.anonymous_set(&vm.map, key_types, true, names)?,
            ExprKind::SetRef(name) => {
                let id = self.named_set(name, &vm.map, names)?;
                let set = &self.out.sets[id];
                if !set.is_map {
                    return Err(Error::new("Expression is not a map", vm.map.span));
                }
                same_key(&key_types, &set.key, &vm.map)?;
                id
            }
            _ => {
                return Err(Error::new(
                    "expected a verdict map: `{ KEY : VERDICT, ... }` or `@map`",
                    vm.map.span,
                ));
            }
        };
        Ok(VerdictMap {
            key: Key { parts },
            map,
            span: vm.span,
        })
    }

    /// `add @set { KEY ... }` or `update @set { KEY ... }`, refused where
    /// nft refuses it.
    fn dynset(
        &mut self,
        d: &ast::DynSetStmt,
        ctx: &mut ProtoCtx,
        names: &Names,
        stmts: &mut Vec<Stmt>,
    ) -> Result<DynSet, Error> {
        let parts = self.key_parts(&d.key)?;
        self.add_dependencies(&parts, names.table, ctx, stmts)?;
        let key_types = key_types(&parts);
        let ExprKind::SetRef(name) = &d.set.kind else {
            return Err(Error::new("expected `@SET`", d.set.span));
        };
        let id = self.named_set(name, &d.set, names)?;
        let set = &self.out.sets[id];
        if set.is_map {
            return Err(Error::new(
                "maps changed from the packet path are not implemented in nft2bpf (sets are)",
                d.set.span,
            ));
        }
        if set.constant {
            return Err(Error::new(
                format!(
                    "set `{name}` is `constant`: nothing is added to it (nft: Device or resource busy)"
                ),
                d.span,
            ));
        }
        if set.interval {
            return Err(Error::new(
                format!(
                    "set `{name}` has `flags interval`: the kernel's interval sets take no elements from the packet path (nft: Operation not supported)"
                ),
                d.span,
            ));
        }
        // The set's type is what is expected here, the key is the
        // expression (nft's message).
        if same_key(&set.key, &key_types, &d.key).is_err() {
            return Err(mismatch(&key_desc(&set.key), &key_desc(&key_types), &d.key));
        }
        let own = match &d.timeout {
            Some(t) if !set.state.timeouts => {
                return Err(Error::new(
                    format!(
                        "a timeout needs `flags timeout` on set `{name}` (nft: Operation not supported)"
                    ),
                    t.span,
                ));
            }
            Some(t) => time_ms(t)?,
            None => 0,
        };
        // The kernel's `priv->timeout ? : set->timeout`; none at all:
        // the element never expires.
        let timeout = match own {
            0 => set.state.timeout.filter(|&t| t != 0),
            t => Some(t),
        };
        let mut limit_of = None;
        for s in &d.stmts {
            match s {
                ast::Stmt::Limit(l) if limit_of.is_none() => limit_of = Some(limit(l)?),
                ast::Stmt::Limit(l) => {
                    return Err(Error::new(
                        "a second `limit` in a set statement is not implemented in nft2bpf",
                        l.span,
                    ));
                }
                other => {
                    return Err(Error::new(
                        "only `limit` is implemented in nft2bpf's set statements (not counters or quotas per element)",
                        other.span(),
                    ));
                }
            }
        }
        self.out.sets[id].state.dynamic = true;
        Ok(DynSet {
            set: id,
            key: Key { parts },
            update: d.update,
            timeout,
            limit: limit_of,
            span: d.span,
        })
    }

    /// `counter [packets N bytes M]` or `counter name NAME`.
    fn counter(&self, c: &ast::CounterStmt, names: &Names) -> Result<Counter, Error> {
        if let Some(n) = &c.name {
            let id = object(n, &names.counters, "counter", names)?;
            return Ok(Counter::Named(id));
        }
        Ok(Counter::Anonymous {
            packets: c.packets.map_or(0, |n| n.value),
            bytes: c.bytes.map_or(0, |n| n.value),
        })
    }

    /// `quota ...` or `quota name NAME`.
    fn quota(&self, q: &ast::QuotaStmt, names: &Names) -> Result<Quota, Error> {
        if let Some(n) = &q.name {
            return Ok(Quota::Named(object(n, &names.quotas, "quota", names)?));
        }
        let spec = q
            .quota
            .as_ref()
            .ok_or_else(|| Error::new("quota without a size", q.span))?;
        Ok(Quota::Anonymous(quota_spec(spec)?))
    }
}

/// A named object of the table.
fn object<T: Copy>(
    n: &Expr,
    map: &std::collections::HashMap<String, T>,
    kind: &str,
    names: &Names,
) -> Result<T, Error> {
    let ExprKind::Word(name) = &n.kind else {
        return Err(Error::new(
            format!("expected a {kind} name, not `{n}`"),
            n.span,
        ));
    };
    map.get(name).copied().ok_or_else(|| {
        Error::new(
            format!(
                "{kind} `{name}` does not exist in table netdev {}",
                names.table_name
            ),
            n.span,
        )
    })
}

/// Bytes in a unit: `bytes`, `kbytes`, `mbytes` (nft's `data_unit_parse`).
fn byte_unit(u: &Ident) -> Result<u64, Error> {
    match u.name.as_str() {
        "bytes" => Ok(1),
        "kbytes" => Ok(1024),
        "mbytes" => Ok(1024 * 1024),
        _ => Err(Error::new("Wrong rate format", u.span)),
    }
}

/// `N * unit`, without overflow.
fn times(n: &ast::Num, unit: u64) -> Result<u64, Error> {
    n.value
        .checked_mul(unit)
        .ok_or_else(|| Error::new("value too large (more than 64 bits)", n.span))
}

/// The parameters of a quota, in bytes.
pub(crate) fn quota_spec(q: &ast::QuotaSpec) -> Result<QuotaSpec, Error> {
    let over = match &q.mode {
        Some(m) => m.name == "over",
        None => false,
    };
    let bytes = times(&q.amount.0, byte_unit(&q.amount.1)?)?;
    let used = match &q.used {
        Some((n, u)) => times(n, byte_unit(u)?)?,
        None => 0,
    };
    Ok(QuotaSpec { over, bytes, used })
}

/// `limit rate ...`.
fn limit(l: &ast::LimitStmt) -> Result<Limit, Error> {
    let Some(r) = &l.rate else {
        return Err(Error::new(refuse::message("limit"), l.span));
    };
    let per_seconds = match r.per.name.as_str() {
        "second" => 1,
        "minute" => 60,
        "hour" => 3600,
        "day" => 86400,
        "week" => 604800,
        _ => return Err(Error::new("Wrong rate format", r.per.span)),
    };
    let (unit, rate) = match &r.amount_unit {
        None => (LimitUnit::Packets, r.amount.value),
        Some(u) => (LimitUnit::Bytes, times(&r.amount, byte_unit(u)?)?),
    };
    if rate == 0 {
        return Err(Error::new(
            "limit rate must be greater than 0",
            r.amount.span,
        ));
    }
    let burst = match (&r.burst, unit) {
        (None, LimitUnit::Packets) => 5,
        (None, LimitUnit::Bytes) => 0,
        (Some((n, Some(u))), LimitUnit::Packets) => {
            if u.name != "packets" {
                return Err(Error::new("a packet limit's burst is in packets", u.span));
            }
            if n.value == 0 {
                return Err(Error::new(
                    "packet limit burst must be > 0",
                    n.span.to(u.span),
                ));
            }
            n.value
        }
        (Some((n, Some(u))), LimitUnit::Bytes) => times(n, byte_unit(u)?)?,
        (Some((n, None)), _) => return Err(Error::new("burst needs a unit", n.span)),
    };
    Ok(Limit {
        over: r.over,
        unit,
        rate,
        per_seconds,
        burst,
    })
}

/// `log [prefix "..."] [level L]`.
fn log(l: &ast::LogStmt) -> Result<Log, Error> {
    let mut out = Log {
        prefix: None,
        level: 4,
    };
    for o in &l.options {
        match o.key.name.as_str() {
            "prefix" => {
                let ExprKind::Quoted(p) = &o.value.kind else {
                    return Err(Error::new(
                        "log prefix must be a quoted string",
                        o.value.span,
                    ));
                };
                if p.len() > MAX_LOG_PREFIX {
                    return Err(Error::new(
                        format!(
                            "log prefix too long: {} bytes, at most {MAX_LOG_PREFIX}",
                            p.len()
                        ),
                        o.value.span,
                    ));
                }
                out.prefix = Some(p.clone());
            }
            "level" => {
                let ExprKind::Word(w) = &o.value.kind else {
                    return Err(Error::new("expected a log level", o.value.span));
                };
                if w == "audit" {
                    return Err(Error::new(
                        refuse::message("log level audit"),
                        o.key.span.to(o.value.span),
                    ));
                }
                let Some(level) = LOG_LEVELS.iter().position(|x| x == w) else {
                    return Err(Error::new(format!("invalid log level `{w}`"), o.value.span));
                };
                out.level = level as u8;
            }
            // What a record holds, not whether it is written.
            "flags" => {}
            other => {
                return Err(Error::new(
                    refuse::message(&format!("log {other}")),
                    o.key.span.to(o.value.span),
                ));
            }
        }
    }
    Ok(out)
}
