//! The first pass: the file's commands, in order, to the tables they
//! leave. `flush ruleset` drops what came before it; table blocks and
//! `add` commands of one table name add to one table; chains and sets of
//! one name merge; variables are substituted where they are used, with
//! the scopes of [`super::scope`]. Nothing is typed yet.

use std::collections::HashMap;

use pktmatch::Span;

use crate::check::refuse;
use crate::check::scope::Scopes;
use crate::error::Error;
use crate::syntax::ast::*;

/// A table as the file builds it up.
#[derive(Debug)]
pub(crate) struct TableDraft {
    pub name: String,
    pub span: Span,
    pub dormant: bool,
    pub chains: Vec<ChainDraft>,
    /// Where each chain is in `chains`.
    chain_index: HashMap<String, usize>,
    pub sets: Vec<SetDraft>,
    pub counters: Vec<CounterDecl>,
    pub quotas: Vec<QuotaDecl>,
}

/// A chain: its hook spec and policy (variables substituted) and its
/// rules.
#[derive(Debug)]
pub(crate) struct ChainDraft {
    pub name: String,
    pub span: Span,
    pub hook: Option<HookSpec>,
    pub policy: Option<Expr>,
    pub rules: Vec<Rule>,
}

/// A set: its declaration, and the elements `add element` adds.
#[derive(Debug)]
pub(crate) struct SetDraft {
    pub decl: SetDecl,
    pub more: Vec<Expr>,
}

/// The collecting pass's state.
struct Collector {
    scopes: Scopes,
    tables: Vec<TableDraft>,
    errors: Vec<Error>,
}

/// The tables the file leaves, and the errors found on the way.
pub(crate) fn collect(ruleset: &Ruleset) -> (Vec<TableDraft>, Vec<Error>) {
    let mut c = Collector {
        scopes: Scopes::new(),
        tables: Vec::new(),
        errors: Vec::new(),
    };
    for cmd in &ruleset.commands {
        if let Err(e) = c.command(cmd) {
            c.errors.push(e);
        }
    }
    (c.tables, c.errors)
}

impl Collector {
    fn command(&mut self, cmd: &Command) -> Result<(), Error> {
        match cmd {
            Command::FlushRuleset(_) => self.tables.clear(),
            Command::Define(d) => self.scopes.apply(d)?,
            Command::Table(t) => {
                let table = self.table(&t.table)?;
                self.scopes.push();
                for item in &t.items {
                    if let Err(e) = self.table_item(table, item) {
                        self.errors.push(e);
                    }
                }
                self.scopes.pop();
            }
            Command::Chain(c) => {
                let table = self.existing_table(&c.table)?;
                self.chain(table, &c.item)?;
            }
            Command::Rule(r) => {
                let table = self.existing_table(&r.table)?;
                let Some(&chain) = self.tables[table].chain_index.get(&r.item.chain.name) else {
                    return Err(Error::new(
                        format!(
                            "chain `{}` does not exist in table netdev {}",
                            r.item.chain.name, r.table.name.name
                        ),
                        r.item.chain.span,
                    ));
                };
                let rule = self.rule(&r.item.rule)?;
                self.tables[table].chains[chain].rules.push(rule);
            }
            Command::Set(s) => {
                let table = self.existing_table(&s.table)?;
                self.set(table, &s.item)?;
            }
            Command::Element(e) => {
                let table = self.existing_table(&e.table)?;
                let elements = self.scopes.substitute(&e.item.elements)?;
                let Some(set) = self.tables[table]
                    .sets
                    .iter_mut()
                    .find(|s| s.decl.name.name == e.item.set.name)
                else {
                    return Err(Error::new(
                        format!(
                            "set `{}` does not exist in table netdev {}",
                            e.item.set.name, e.table.name.name
                        ),
                        e.item.set.span,
                    ));
                };
                set.more.push(elements);
            }
        }
        Ok(())
    }

    /// The table of that family and name, created if needed; only the
    /// netdev family is compiled.
    fn table(&mut self, table: &TableRef) -> Result<usize, Error> {
        netdev(table)?;
        let name = &table.name;
        if let Some(i) = self.tables.iter().position(|t| t.name == name.name) {
            return Ok(i);
        }
        self.tables.push(TableDraft {
            name: name.name.clone(),
            span: name.span,
            dormant: false,
            chains: Vec::new(),
            chain_index: HashMap::new(),
            sets: Vec::new(),
            counters: Vec::new(),
            quotas: Vec::new(),
        });
        Ok(self.tables.len() - 1)
    }

    /// A table an `add` command names: it must exist.
    fn existing_table(&mut self, table: &TableRef) -> Result<usize, Error> {
        netdev(table)?;
        let name = &table.name;
        self.tables
            .iter()
            .position(|t| t.name == name.name)
            .ok_or_else(|| {
                Error::new(
                    format!("table netdev {} does not exist", name.name),
                    name.span,
                )
            })
    }

    fn table_item(&mut self, table: usize, item: &TableItem) -> Result<(), Error> {
        match item {
            TableItem::Define(d) => self.scopes.apply(d)?,
            TableItem::Chain(c) => self.chain(table, c)?,
            TableItem::Set(s) => self.set(table, s)?,
            TableItem::Counter(c) => {
                if self.tables[table]
                    .counters
                    .iter()
                    .any(|x| x.name.name == c.name.name)
                {
                    return Err(Error::new(
                        format!("counter `{}` is declared twice", c.name.name),
                        c.name.span,
                    ));
                }
                self.tables[table].counters.push(c.clone());
            }
            TableItem::Quota(q) => {
                if self.tables[table]
                    .quotas
                    .iter()
                    .any(|x| x.name.name == q.name.name)
                {
                    return Err(Error::new(
                        format!("quota `{}` is declared twice", q.name.name),
                        q.name.span,
                    ));
                }
                self.tables[table].quotas.push(q.clone());
            }
            TableItem::Flags(flags) => {
                for f in flags {
                    match f.name.as_str() {
                        "dormant" => self.tables[table].dormant = true,
                        "owner" | "persist" => {}
                        other => {
                            return Err(Error::new(
                                format!("unknown table flag `{other}`"),
                                f.span,
                            ));
                        }
                    }
                }
            }
            TableItem::Comment(_) => {}
            TableItem::Unsupported(u) => return Err(Error::new(refuse::message(&u.what), u.span)),
        }
        Ok(())
    }

    /// Adds a chain block to the chain of its name.
    fn chain(&mut self, table: usize, decl: &ChainDecl) -> Result<(), Error> {
        let t = &mut self.tables[table];
        let index = match t.chain_index.get(&decl.name.name) {
            Some(&i) => i,
            None => {
                t.chains.push(ChainDraft {
                    name: decl.name.name.clone(),
                    span: decl.name.span,
                    hook: None,
                    policy: None,
                    rules: Vec::new(),
                });
                t.chain_index
                    .insert(decl.name.name.clone(), t.chains.len() - 1);
                t.chains.len() - 1
            }
        };
        self.scopes.push();
        for item in &decl.items {
            if let Err(e) = self.chain_item(table, index, item) {
                self.errors.push(e);
            }
        }
        self.scopes.pop();
        Ok(())
    }

    fn chain_item(&mut self, table: usize, chain: usize, item: &ChainItem) -> Result<(), Error> {
        match item {
            ChainItem::Define(d) => self.scopes.apply(d)?,
            ChainItem::Hook(h) => {
                let mut h = h.clone();
                for d in &mut h.devices {
                    *d = self.scopes.substitute(d)?;
                }
                if let Some(p) = &mut h.priority {
                    p.base = self.scopes.substitute(&p.base)?;
                }
                let draft = &mut self.tables[table].chains[chain];
                match &draft.hook {
                    Some(old) if old.hook.name != h.hook.name || old.devices != h.devices => {
                        return Err(Error::new(
                            format!("chain `{}` has another hook already", draft.name),
                            h.span,
                        ));
                    }
                    _ => draft.hook = Some(h),
                }
            }
            ChainItem::Policy(p) => {
                let p = self.scopes.substitute(p)?;
                self.tables[table].chains[chain].policy = Some(p);
            }
            ChainItem::Comment(_) => {}
            ChainItem::Flags(flags) => {
                let span = flags[0].span.to(flags[flags.len() - 1].span);
                return Err(Error::new(refuse::message("chain flags"), span));
            }
            ChainItem::Rule(r) => {
                let rule = self.rule(r)?;
                self.tables[table].chains[chain].rules.push(rule);
            }
        }
        Ok(())
    }

    /// Adds a set declaration; a second one of the same name must say the
    /// same (its elements are added).
    fn set(&mut self, table: usize, decl: &SetDecl) -> Result<(), Error> {
        // One copy of the declaration, the elements' being their
        // substitution (a set of a million elements is copied once).
        let mut items = Vec::with_capacity(decl.items.len());
        for item in &decl.items {
            items.push(match item {
                SetItem::Elements(e) => SetItem::Elements(self.scopes.substitute(e)?),
                other => other.clone(),
            });
        }
        let decl = SetDecl {
            items,
            name: decl.name.clone(),
            ..*decl
        };
        let sets = &mut self.tables[table].sets;
        if let Some(old) = sets.iter_mut().find(|s| s.decl.name.name == decl.name.name) {
            let key = |d: &SetDecl| {
                d.items
                    .iter()
                    .filter(|i| {
                        matches!(
                            i,
                            SetItem::Type { .. } | SetItem::Typeof { .. } | SetItem::Flags(_)
                        )
                    })
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
            };
            if key(&old.decl) != key(&decl) || old.decl.is_map != decl.is_map {
                return Err(Error::new(
                    format!(
                        "set `{}` exists already, declared otherwise",
                        decl.name.name
                    ),
                    decl.name.span,
                ));
            }
            for item in decl.items {
                if let SetItem::Elements(e) = item {
                    old.more.push(e);
                }
            }
            return Ok(());
        }
        sets.push(SetDraft {
            decl,
            more: Vec::new(),
        });
        Ok(())
    }

    /// A rule with its variables substituted.
    fn rule(&mut self, rule: &Rule) -> Result<Rule, Error> {
        let mut rule = rule.clone();
        for stmt in &mut rule.stmts {
            self.stmt(stmt)?;
        }
        Ok(rule)
    }

    fn stmt(&mut self, stmt: &mut Stmt) -> Result<(), Error> {
        let s = &mut self.scopes;
        let sub = |s: &mut Scopes, e: &mut Expr| -> Result<(), Error> {
            *e = s.substitute(e)?;
            Ok(())
        };
        match stmt {
            Stmt::Match(r) => {
                sub(s, &mut r.left)?;
                sub(s, &mut r.right)?;
                if let Some(m) = &mut r.mask {
                    sub(s, m)?;
                }
            }
            Stmt::Verdict(v) => match &mut v.kind {
                VerdictKind::Jump(t) | VerdictKind::Goto(t) => sub(s, t)?,
                _ => {}
            },
            Stmt::VerdictMap(v) => {
                sub(s, &mut v.key)?;
                sub(s, &mut v.map)?;
            }
            Stmt::Counter(CounterStmt { name: Some(n), .. })
            | Stmt::Limit(LimitStmt { name: Some(n), .. })
            | Stmt::Quota(QuotaStmt { name: Some(n), .. }) => sub(s, n)?,
            Stmt::Log(l) => {
                for o in &mut l.options {
                    sub(s, &mut o.value)?;
                }
            }
            Stmt::Fwd(f) => {
                sub(s, &mut f.to)?;
                if let Some(d) = &mut f.device {
                    sub(s, d)?;
                }
            }
            Stmt::DynSet(d) => {
                sub(s, &mut d.key)?;
                for st in &mut d.stmts {
                    if let Stmt::Limit(LimitStmt { name: Some(n), .. }) = st {
                        sub(s, n)?;
                    }
                }
            }
            Stmt::Counter(_)
            | Stmt::Pcap(_)
            | Stmt::Limit(_)
            | Stmt::Quota(_)
            | Stmt::Mangle(_)
            | Stmt::Unsupported(_) => {}
        }
        Ok(())
    }
}

/// Only the netdev family is compiled.
fn netdev(table: &TableRef) -> Result<(), Error> {
    let family = table.family_name();
    if family == "netdev" {
        return Ok(());
    }
    let name = &table.name.name;
    let (span, default) = match &table.family {
        Some(f) => (f.span, ""),
        None => (table.name.span, " (nft's default family)"),
    };
    Err(Error::new(
        format!(
            "table {family} {name}{default}: nft2bpf compiles tables of the netdev family only (`table netdev {name}`): XDP and tcx see frames at a device"
        ),
        span,
    ))
}
