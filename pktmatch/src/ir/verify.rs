//! [`Ir::verify`]: checks the invariants the IR's documentation states,
//! which the optimiser and the code generator rely on.

use cranelift_entity::SecondaryMap;

use super::{
    BlockId, Cond, Edge, EntityRef, Ir, KeyId, MAX_KEY_BYTES, MAX_VARS, OnShort, Semantics, Val,
    ValNode,
};

/// An invariant of the IR that does not hold, naming values (`vN`) and
/// blocks (`bN`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The entry goes to a block that does not exist.
    #[error("the entry goes to {to}, which does not exist")]
    MissingEntry {
        /// The block named.
        to: BlockId,
    },
    /// An edge goes to a block that does not exist or is not after the
    /// block it leaves (blocks only jump forward).
    #[error("{block} jumps to {to}: edges go forward to an existing block")]
    Edge {
        /// The block the edge leaves.
        block: BlockId,
        /// The block it goes to.
        to: BlockId,
    },
    /// A value uses one that is not earlier in the arena.
    #[error("{val} uses {operand}, which is not an earlier value")]
    Operand {
        /// The value.
        val: Val,
        /// Its operand.
        operand: Val,
    },
    /// A block tests or assigns a value that does not exist.
    #[error("{block} uses {val}, which does not exist")]
    MissingValue {
        /// The block.
        block: BlockId,
        /// The value named.
        val: Val,
    },
    /// A value equals an earlier one: values are interned.
    #[error("{val} repeats {first}: values are interned")]
    Duplicate {
        /// The later value.
        val: Val,
        /// The earlier one.
        first: Val,
    },
    /// A load of another size than 1, 2 or 4 bytes.
    #[error("{val} loads {size} bytes (1, 2 or 4)")]
    LoadSize {
        /// The load.
        val: Val,
        /// Its size.
        size: u8,
    },
    /// A value reads a variable numbered `MAX_VARS` or more.
    #[error("{val} reads variable {var}, past the {MAX_VARS} there are")]
    ValueVar {
        /// The value.
        val: Val,
        /// The variable.
        var: u32,
    },
    /// A block assigns a variable numbered `MAX_VARS` or more.
    #[error("{block} sets variable {var}, past the {MAX_VARS} there are")]
    LetVar {
        /// The block.
        block: BlockId,
        /// The variable.
        var: u32,
    },
    /// A lookup names a key the IR does not have.
    #[error("{block} looks up {key}, which does not exist")]
    MissingKey {
        /// The block.
        block: BlockId,
        /// The key named.
        key: KeyId,
    },
    /// A key part is not 1, 2 or 4 bytes.
    #[error("{block} looks up a key with a part of {bytes} bytes (1, 2 or 4)")]
    KeyPartSize {
        /// The block.
        block: BlockId,
        /// The part's size.
        bytes: u8,
    },
    /// A key is empty or longer than [`MAX_KEY_BYTES`].
    #[error("{block} looks up a key of {len} bytes (1 to {MAX_KEY_BYTES})")]
    KeyLength {
        /// The block.
        block: BlockId,
        /// The key's length.
        len: u32,
    },
    /// An assignment's false edge is not REJECT.
    #[error("{block} is a `let` whose false edge is not reject")]
    LetFalseEdge {
        /// The block.
        block: BlockId,
    },
    /// A block of an IR with libpcap's meaning goes on after a short
    /// read (with libpcap's meaning, a short read rejects the filter).
    #[error("{block} goes on after a short read, which libpcap's meaning does not allow")]
    ShortEdge {
        /// The block.
        block: BlockId,
    },
    /// A block reads a variable that some path from the entry to it
    /// does not set.
    #[error("{block} reads variable {var}, which some path to it does not set")]
    UnsetVar {
        /// The block.
        block: BlockId,
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
    /// 2. blocks: the entry and every edge (an [`OnShort::To`] edge
    ///    too) go to an existing block, an edge to a block after the one
    ///    it leaves (the graph is acyclic
    ///    and block order is topological); every value a block uses
    ///    exists; a [`Cond::Let`] sets a variable below [`MAX_VARS`] and
    ///    its false edge is REJECT; with [`Semantics::Libpcap`] every
    ///    block rejects on a short read ([`OnShort::Reject`]);
    /// 3. variables: a block reachable from the entry reads a variable
    ///    (in its test or assignment) only if every path from the entry
    ///    to it goes through the true edge of a `Let` of that variable
    ///    (an [`OnShort::To`] edge leaves a block before it sets anything).
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
    fn verify_values(&self) -> Result<SecondaryMap<Val, u64>, VerifyError> {
        // Filled in arena order: the values before `val` are in it.
        let mut reads: SecondaryMap<Val, u64> = SecondaryMap::with_capacity(self.vals.len());
        let mut seen = std::collections::HashMap::with_capacity(self.vals.len());
        for (val, node) in self.vals.iter() {
            let operand = |o: Val| -> Result<u64, VerifyError> {
                match reads.get(o) {
                    Some(r) => Ok(*r),
                    None => Err(VerifyError::Operand { val, operand: o }),
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
            reads[val] = r;
        }
        Ok(reads)
    }

    /// Checks 2.
    fn verify_blocks(&self) -> Result<(), VerifyError> {
        let n = self.blocks.len();
        if let Some(Edge::Block(to)) = self.entry
            && to.index() >= n
        {
            return Err(VerifyError::MissingEntry { to });
        }
        let exists = |block: BlockId, val: Val| {
            if self.vals.is_valid(val) {
                Ok(())
            } else {
                Err(VerifyError::MissingValue { block, val })
            }
        };
        for (i, b) in self.blocks.iter().enumerate() {
            let block = BlockId::new(i);
            if self.semantics == Semantics::Libpcap && b.short != OnShort::Reject {
                return Err(VerifyError::ShortEdge { block });
            }
            for e in b.successors() {
                if let Edge::Block(to) = e
                    && (to <= block || to.index() >= n)
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
                }
                Cond::Act { .. } => {}
                Cond::Lookup { key, result, .. } => {
                    if !self.has_key(key) {
                        return Err(VerifyError::MissingKey { block, key });
                    }
                    let parts = self.key_parts(key);
                    for p in parts {
                        exists(block, p.val)?;
                        if !matches!(p.bytes, 1 | 2 | 4) {
                            return Err(VerifyError::KeyPartSize {
                                block,
                                bytes: p.bytes,
                            });
                        }
                    }
                    let len: u32 = parts.iter().map(|p| u32::from(p.bytes)).sum();
                    if len == 0 || len > MAX_KEY_BYTES {
                        return Err(VerifyError::KeyLength { block, len });
                    }
                    if let Some(var) = result.expand()
                        && var.index() as u32 >= MAX_VARS
                    {
                        return Err(VerifyError::LetVar {
                            block,
                            var: var.index() as u32,
                        });
                    }
                }
            }
            if matches!(b.cond, Cond::Let { .. }) && b.f != Edge::REJECT {
                return Err(VerifyError::LetFalseEdge { block });
            }
        }
        Ok(())
    }

    /// Checks 3, on a sound graph: blocks in index order see every
    /// predecessor first, so one sweep finds the variables set on every
    /// path into each block.
    fn verify_vars(&self, reads: &SecondaryMap<Val, u64>) -> Result<(), VerifyError> {
        let mut set: SecondaryMap<BlockId, Option<u64>> =
            SecondaryMap::with_capacity(self.blocks.len());
        if let Some(Edge::Block(i)) = self.entry {
            set[i] = Some(0);
        }
        for (i, b) in self.blocks.iter().enumerate() {
            let block = BlockId::new(i);
            let Some(have) = set[block] else { continue };
            let (read, sets) = match b.cond {
                Cond::Cmp { a, b, .. } => (reads[a] | reads[b], 0),
                Cond::ProtoChain { .. } | Cond::Act { .. } => (0, 0),
                Cond::Let { var, val } => (reads[val], 1u64 << var),
                Cond::Lookup { key, result, .. } => (
                    self.key_parts(key).iter().fold(0, |r, p| r | reads[p.val]),
                    result.expand().map_or(0, |v| 1u64 << v.index()),
                ),
            };
            let unset = read & !have;
            if unset != 0 {
                return Err(VerifyError::UnsetVar {
                    block,
                    var: unset.trailing_zeros(),
                });
            }
            // A short read to an edge of its own leaves before the block
            // sets anything. (One that takes the true edge of a `Let`
            // counts as setting it: nft's facts are assignments that may
            // not fit the packet, read only where they do.)
            let short = match b.short {
                OnShort::To(e) => Some((e, have)),
                _ => None,
            };
            for (e, out) in [(b.t, have | sets), (b.f, have)].into_iter().chain(short) {
                if let Edge::Block(j) = e {
                    set[j] = Some(set[j].map_or(out, |x| x & out));
                }
            }
        }
        Ok(())
    }
}
