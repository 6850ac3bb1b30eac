//! [`Ir::verify`]: checks the invariants the IR's documentation states,
//! which the optimiser and the code generator rely on.

use super::{Cond, Edge, Ir, MAX_VARS, OnShort, Semantics, Val, ValNode};

/// An invariant of the IR that does not hold; indices are arena indices
/// of values (`vN`) and block indices (`bN`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The entry goes to a block that does not exist.
    #[error("the entry goes to b{to}, which does not exist")]
    MissingEntry {
        /// The block named.
        to: u32,
    },
    /// An edge goes to a block that does not exist or is not after the
    /// block it leaves (blocks only jump forward).
    #[error("b{block} jumps to b{to}: edges go forward to an existing block")]
    Edge {
        /// The block the edge leaves.
        block: u32,
        /// The block it goes to.
        to: u32,
    },
    /// A value uses one that is not earlier in the arena.
    #[error("v{val} uses v{operand}, which is not an earlier value")]
    Operand {
        /// The value.
        val: u32,
        /// Its operand.
        operand: u32,
    },
    /// A block tests or assigns a value that does not exist.
    #[error("b{block} uses v{val}, which does not exist")]
    MissingValue {
        /// The block.
        block: u32,
        /// The value named.
        val: u32,
    },
    /// A value equals an earlier one: values are interned.
    #[error("v{val} repeats v{first}: values are interned")]
    Duplicate {
        /// The later value.
        val: u32,
        /// The earlier one.
        first: u32,
    },
    /// A load of another size than 1, 2 or 4 bytes.
    #[error("v{val} loads {size} bytes (1, 2 or 4)")]
    LoadSize {
        /// The load.
        val: u32,
        /// Its size.
        size: u8,
    },
    /// A value reads a variable numbered `MAX_VARS` or more.
    #[error("v{val} reads variable {var}, past the {MAX_VARS} there are")]
    ValueVar {
        /// The value.
        val: u32,
        /// The variable.
        var: u32,
    },
    /// A block assigns a variable numbered `MAX_VARS` or more.
    #[error("b{block} sets variable {var}, past the {MAX_VARS} there are")]
    LetVar {
        /// The block.
        block: u32,
        /// The variable.
        var: u32,
    },
    /// An assignment's false edge is not REJECT.
    #[error("b{block} is a `let` whose false edge is not reject")]
    LetFalseEdge {
        /// The block.
        block: u32,
    },
    /// A block of an IR with libpcap's meaning goes on after a short
    /// read (with libpcap's meaning, a short read rejects the filter).
    #[error("b{block} goes on after a short read, which libpcap's meaning does not allow")]
    ShortEdge {
        /// The block.
        block: u32,
    },
    /// A block reads a variable that some path from the entry to it
    /// does not set.
    #[error("b{block} reads variable {var}, which some path to it does not set")]
    UnsetVar {
        /// The block.
        block: u32,
        /// The variable.
        var: u32,
    },
}

impl Ir {
    /// Checks the invariants of the IR, in this order:
    ///
    /// 1. values: every operand (a load's variable offset, both operands
    ///    of an operation, the operand of a negation) is an earlier value
    ///    of the arena; loads read 1, 2 or 4 bytes; variables are below
    ///    [`MAX_VARS`]; no value equals an earlier one (interning);
    /// 2. blocks: the entry and every edge go to an existing block, an
    ///    edge to a block after the one it leaves (the graph is acyclic
    ///    and block order is topological); every value a block uses
    ///    exists; a [`Cond::Let`] sets a variable below [`MAX_VARS`] and
    ///    its false edge is REJECT; with [`Semantics::Libpcap`] every
    ///    block rejects on a short read ([`OnShort::Reject`]);
    /// 3. variables: a block reachable from the entry reads a variable
    ///    (in its test or assignment) only if every path from the entry
    ///    to it goes through the true edge of a `Let` of that variable.
    ///
    /// Not checked: that values are folded as [`Ir::val`] folds them (an
    /// unfolded value is correct, only slower), and anything about
    /// unreachable blocks beyond 2.
    pub fn verify(&self) -> Result<(), VerifyError> {
        let reads = self.verify_values()?;
        self.verify_blocks()?;
        self.verify_vars(&reads)
    }

    /// Checks 1; returns the variables each value reads, as bit sets.
    fn verify_values(&self) -> Result<Vec<u64>, VerifyError> {
        let mut reads: Vec<u64> = Vec::with_capacity(self.vals.len());
        let mut seen = std::collections::HashMap::with_capacity(self.vals.len());
        for (i, node) in self.vals.iter().enumerate() {
            let val = i as u32;
            let operand = |o: Val| -> Result<u64, VerifyError> {
                match reads.get(o.0 as usize) {
                    Some(r) => Ok(*r),
                    None => Err(VerifyError::Operand { val, operand: o.0 }),
                }
            };
            let r = match *node {
                ValNode::Const(_) | ValNode::Len | ValNode::Meta(_) => 0,
                ValNode::Load { off, size, .. } => {
                    if !matches!(size, 1 | 2 | 4) {
                        return Err(VerifyError::LoadSize { val, size });
                    }
                    match off {
                        Some(o) => operand(o)?,
                        None => 0,
                    }
                }
                ValNode::Bin(_, a, b) => operand(a)? | operand(b)?,
                ValNode::Neg(a) => operand(a)?,
                ValNode::Var(var) => {
                    if var >= MAX_VARS {
                        return Err(VerifyError::ValueVar { val, var });
                    }
                    1 << var
                }
            };
            if let Some(first) = seen.insert(*node, val) {
                return Err(VerifyError::Duplicate { val, first });
            }
            reads.push(r);
        }
        Ok(reads)
    }

    /// Checks 2.
    fn verify_blocks(&self) -> Result<(), VerifyError> {
        let n = self.blocks.len() as u32;
        if let Some(Edge::Block(to)) = self.entry
            && to >= n
        {
            return Err(VerifyError::MissingEntry { to });
        }
        let exists = |block: u32, v: Val| {
            if (v.0 as usize) < self.vals.len() {
                Ok(())
            } else {
                Err(VerifyError::MissingValue { block, val: v.0 })
            }
        };
        for (i, b) in self.blocks.iter().enumerate() {
            let block = i as u32;
            if self.semantics == Semantics::Libpcap && b.short != OnShort::Reject {
                return Err(VerifyError::ShortEdge { block });
            }
            for e in [b.t, b.f] {
                if let Edge::Block(to) = e
                    && (to <= block || to >= n)
                {
                    return Err(VerifyError::Edge { block, to });
                }
            }
            match b.cond {
                Cond::Cmp { a, b, .. } => {
                    exists(block, a)?;
                    exists(block, b)?;
                }
                Cond::ProtoChain { .. } => {}
                Cond::Let { var, val } => {
                    exists(block, val)?;
                    if var >= MAX_VARS {
                        return Err(VerifyError::LetVar { block, var });
                    }
                    if b.f != Edge::REJECT {
                        return Err(VerifyError::LetFalseEdge { block });
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks 3, on a sound graph: blocks in index order see every
    /// predecessor first, so one sweep finds the variables set on every
    /// path into each block.
    fn verify_vars(&self, reads: &[u64]) -> Result<(), VerifyError> {
        let mut set: Vec<Option<u64>> = vec![None; self.blocks.len()];
        if let Some(Edge::Block(i)) = self.entry {
            set[i as usize] = Some(0);
        }
        for (i, b) in self.blocks.iter().enumerate() {
            let Some(have) = set[i] else { continue };
            let (read, sets) = match b.cond {
                Cond::Cmp { a, b, .. } => (reads[a.0 as usize] | reads[b.0 as usize], 0),
                Cond::ProtoChain { .. } => (0, 0),
                Cond::Let { var, val } => (reads[val.0 as usize], 1u64 << var),
            };
            let unset = read & !have;
            if unset != 0 {
                return Err(VerifyError::UnsetVar {
                    block: i as u32,
                    var: unset.trailing_zeros(),
                });
            }
            for (e, out) in [(b.t, have | sets), (b.f, have)] {
                if let Edge::Block(j) = e {
                    let j = j as usize;
                    set[j] = Some(set[j].map_or(out, |x| x & out));
                }
            }
        }
        Ok(())
    }
}
