//! Checks: the syntax tree to the checked [`Ruleset`] lowering reads, with
//! nft's semantic errors.
//!
//! The passes, in order:
//!
//! 1. `collect`: the commands to tables, `flush ruleset` and `define`
//!    applied, variables substituted (`scope`), blocks of one table or
//!    chain merged;
//! 2. declarations (`decls`): ids for tables, chains, sets and named
//!    objects; base chain specs; set declarations and elements (`sets`);
//! 3. rules (`rules`, `matches`): every statement typed ([`types`],
//!    `value`), every match resolved to a field of the one table
//!    ([`fields`]) with the dependencies nft adds (`context`), every
//!    construct we cannot run refused by name ([`refuse`]);
//! 4. the jump graph (`graph`): no loops, no deeper than the kernel
//!    allows.
//!
//! Errors are collected across rules and declarations, in source order.
//!
//! ```
//! use nft2bpf::SourceMap;
//! use nft2bpf::check::tree::{CmpOp, Source, Stmt, Test};
//! use nft2bpf::syntax::{MemLoader, parse};
//!
//! let mut map = SourceMap::new();
//! let file = map.add(
//!     "fw.nft",
//!     None,
//!     "table netdev t { chain c { type filter hook ingress device eth0 priority 0; tcp dport 22 drop; }; }",
//!     None,
//! );
//! let ast = parse(&mut map, file, &mut MemLoader::new()).unwrap();
//! let rules = nft2bpf::check::check(&ast).unwrap();
//! let rule = rules.rules.values().next().unwrap();
//! // nft's dependency first, then the match, then the verdict.
//! let Stmt::Match(m) = &rule.stmts[1] else { panic!() };
//! assert_eq!(m.key.parts[0].source.name(), "tcp dport");
//! assert_eq!(m.test, Test::Cmp { op: CmpOp::Eq, value: 22 });
//! ```

mod collect;
mod context;
mod decls;
mod dump;
pub mod fields;
mod graph;
pub mod live;
mod matches;
pub mod refuse;
mod rules;
mod scope;
mod sets;
pub mod tree;
pub mod types;
mod value;

use std::collections::HashMap;

pub use dump::value_text;
pub use tree::Ruleset;

use crate::error::{Error, Errors};
use crate::syntax::ast;
use tree::{ChainId, CounterId, QuotaId, SetId, TableId};

/// Checks a parsed ruleset; every error found, in source order.
pub fn check(ruleset: &ast::Ruleset) -> Result<Ruleset, Errors> {
    let (drafts, mut errors) = collect::collect(ruleset);
    let mut c = Checker {
        out: Ruleset::default(),
        errors: Vec::new(),
        edges: Vec::new(),
    };
    let names = c.declare(&drafts);
    c.check_rules(&drafts, &names);
    c.check_graph();
    errors.append(&mut c.errors);
    if errors.is_empty() {
        return Ok(c.out);
    }
    errors.sort_by_key(|e| e.span.start);
    Err(Errors(errors))
}

/// The checks' state: the ruleset being built and the errors found.
pub(crate) struct Checker {
    out: Ruleset,
    errors: Vec<Error>,
    /// Every `jump`/`goto`, in a rule or a verdict map: from, to, where.
    edges: Vec<(ChainId, ChainId, pktmatch::Span)>,
}

/// The names of one table's chains, sets and objects.
#[derive(Debug)]
pub(crate) struct Names {
    table: TableId,
    table_name: String,
    chains: HashMap<String, ChainId>,
    sets: HashMap<String, SetId>,
    counters: HashMap<String, CounterId>,
    quotas: HashMap<String, QuotaId>,
}

impl Checker {
    /// Records an error and goes on.
    fn report(&mut self, e: Error) {
        self.errors.push(e);
    }
}
