//! The jump graph: what the kernel checks when it loads a ruleset. From
//! every base chain, `jump` and `goto` (in rules and in verdict maps) may
//! not loop back, and may not reach a chain more than
//! [`MAX_JUMP_DEPTH`] jumps away (the kernel's `NFT_JUMP_STACK_SIZE`,
//! 16 levels with the base chain's). Chains no base chain reaches are
//! not checked, as the kernel does not check them.

use std::collections::HashMap;

use pktmatch::Span;

use crate::check::Checker;
use crate::check::tree::ChainId;
use crate::error::Error;

/// How many jumps deep a chain may be from its base chain.
pub const MAX_JUMP_DEPTH: usize = 15;

/// What the walk knows of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// On the path being walked.
    OnPath,
    /// Done: the longest chain of jumps below it.
    Height(usize),
}

impl Checker {
    /// Checks the jumps reachable from every base chain.
    pub(crate) fn check_graph(&mut self) {
        let mut out: HashMap<ChainId, Vec<(ChainId, Span)>> = HashMap::new();
        for &(from, to, at) in &self.edges {
            out.entry(from).or_default().push((to, at));
        }
        let mut seen: HashMap<ChainId, Seen> = HashMap::new();
        let mut errors = Vec::new();
        let bases: Vec<ChainId> = self.out.base_chains().map(|(id, _, _)| id).collect();
        for base in bases {
            if let Some(e) = self.walk(base, &out, &mut seen) {
                errors.push(e);
                continue;
            }
            if let Some(Seen::Height(h)) = seen.get(&base)
                && *h > MAX_JUMP_DEPTH
            {
                errors.push(self.too_deep(base, &out, &seen));
            }
        }
        errors.dedup();
        for e in errors {
            self.report(e);
        }
    }

    /// A depth-first walk from `start` (with an explicit stack: chains can
    /// be many), computing every chain's height; the first loop is an
    /// error at the jump that closes it.
    fn walk(
        &self,
        start: ChainId,
        out: &HashMap<ChainId, Vec<(ChainId, Span)>>,
        seen: &mut HashMap<ChainId, Seen>,
    ) -> Option<Error> {
        if seen.contains_key(&start) {
            return None;
        }
        let none = Vec::new();
        let mut stack: Vec<(ChainId, usize)> = vec![(start, 0)];
        seen.insert(start, Seen::OnPath);
        while let Some(&mut (chain, ref mut next)) = stack.last_mut() {
            let edges = out.get(&chain).unwrap_or(&none);
            if let Some(&(to, at)) = edges.get(*next) {
                *next += 1;
                match seen.get(&to) {
                    Some(Seen::OnPath) => {
                        let from = stack.iter().position(|(c, _)| *c == to).unwrap_or(0);
                        let mut path: Vec<&str> = stack[from..]
                            .iter()
                            .map(|(c, _)| self.out.chains[*c].name.as_str())
                            .collect();
                        path.push(&self.out.chains[to].name);
                        return Some(Error::new(
                            format!(
                                "jump loop: {} (the kernel refuses loops)",
                                path.join(" -> ")
                            ),
                            at,
                        ));
                    }
                    Some(Seen::Height(_)) => {}
                    None => {
                        seen.insert(to, Seen::OnPath);
                        stack.push((to, 0));
                    }
                }
                continue;
            }
            let height = edges
                .iter()
                .filter_map(|(to, _)| match seen.get(to) {
                    Some(Seen::Height(h)) => Some(h + 1),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            seen.insert(chain, Seen::Height(height));
            stack.pop();
        }
        None
    }

    /// The error for a base chain whose jumps go too deep: the longest
    /// path, at its first jump.
    fn too_deep(
        &self,
        base: ChainId,
        out: &HashMap<ChainId, Vec<(ChainId, Span)>>,
        seen: &HashMap<ChainId, Seen>,
    ) -> Error {
        let height = |c: &ChainId| match seen.get(c) {
            Some(Seen::Height(h)) => *h,
            _ => 0,
        };
        let mut path = vec![self.out.chains[base].name.as_str()];
        let mut first = None;
        let mut at = base;
        while let Some(&(to, span)) = out
            .get(&at)
            .and_then(|e| e.iter().max_by_key(|(to, _)| height(to)))
        {
            first.get_or_insert(span);
            path.push(&self.out.chains[to].name);
            at = to;
        }
        Error::new(
            format!(
                "jumps nest too deeply: {} is {} jumps deep, the kernel allows {MAX_JUMP_DEPTH}",
                path.join(" -> "),
                path.len() - 1
            ),
            first.unwrap_or(self.out.chains[base].span),
        )
    }
}
