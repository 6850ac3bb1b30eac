//! Elements given to a set of a running ruleset (`nft2bpf add element
//! ...`), checked as the ruleset's own elements are: each key against the
//! set's key types, ranges only with `flags interval`, a verdict map's
//! verdicts against the table's chains, duplicates dropped and
//! conflicting intervals refused (as `check` normalizes a set).

use std::collections::HashMap;

use cranelift_entity::EntityRef;

use super::sets::normalize;
use super::tree::{BaseChain, Chain, ChainId, Element, Hook, Policy, Set, Table, TableId, Verdict};
use super::{Checker, Names};
use crate::error::{Error, Errors};
use crate::syntax::ast::Expr;

/// A chain of the running ruleset's table, as a verdict may name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveChain {
    /// Its name.
    pub name: String,
    /// Whether it is a base chain (no `jump` or `goto` may go there).
    pub base: bool,
}

/// An element checked, its verdict as text (`accept`, `jump web`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveElement {
    /// The element.
    pub element: Element,
    /// Its verdict, for a verdict map, as [`verdict_text`] writes it.
    pub verdict: Option<String>,
}

/// Checks the elements `e` (an [`ExprKind::Set`](crate::syntax::ast::ExprKind::Set))
/// for `set` of table `table`, whose chains are `chains`.
pub fn live_elements(
    e: &Expr,
    table: &str,
    chains: &[LiveChain],
    set: &Set,
) -> Result<Vec<LiveElement>, Errors> {
    let mut c = Checker {
        out: super::Ruleset::default(),
        errors: Vec::new(),
        edges: Vec::new(),
    };
    let t = c.out.tables.push(Table {
        name: table.to_string(),
        span: Default::default(),
        chains: Vec::new(),
        sets: Vec::new(),
        counters: Vec::new(),
        quotas: Vec::new(),
        dormant: false,
    });
    let mut by_name = HashMap::new();
    for ch in chains {
        let id = c.out.chains.push(Chain {
            table: t,
            name: ch.name.clone(),
            span: Default::default(),
            base: ch.base.then(|| BaseChain {
                hook: Hook::Ingress,
                devices: Vec::new(),
                priority: 0,
                policy: Policy::Accept,
                span: Default::default(),
            }),
            rules: Vec::new(),
        });
        by_name.insert(ch.name.clone(), id);
    }
    let names = Names {
        table: t,
        table_name: table.to_string(),
        chains: by_name,
        sets: HashMap::new(),
        counters: HashMap::new(),
        quotas: HashMap::new(),
    };
    let one = |e: Error| Errors(vec![e]);
    let elements = c.elements(e, set, false, &names).map_err(one)?;
    let mut probe = Set {
        table: TableId::new(0),
        elements,
        ..set.clone()
    };
    normalize(&mut probe).map_err(one)?;
    let chain_name = |id: ChainId| chains[id.index()].name.clone();
    Ok(probe
        .elements
        .into_iter()
        .map(|element| LiveElement {
            verdict: element.verdict.map(|v| verdict_text(v, &chain_name)),
            element,
        })
        .collect())
}

/// A verdict as nft writes it, chains by `name`: `accept`, `drop`,
/// `continue`, `return`, `jump NAME`, `goto NAME`.
pub fn verdict_text(v: Verdict, name: &dyn Fn(ChainId) -> String) -> String {
    match v {
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Continue => "continue".into(),
        Verdict::Return => "return".into(),
        Verdict::Jump(c) => format!("jump {}", name(c)),
        Verdict::Goto(c) => format!("goto {}", name(c)),
    }
}
