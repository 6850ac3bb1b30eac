//! The code of the statements that act mid-rule (`counter`, `quota`,
//! `limit`, `log`): pktmatch runs it at the rule's `Cond::Act` blocks,
//! and the maps it keeps its state in.

use crate::check::tree::Limit;

/// One statement that acts, as the program runs it. Its number in the
/// compiled chain's action table is the `Cond::Act` block's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Count the packet and its bytes (nft's `skb->len`) into slot
    /// `slot` of the counters map (a rule's anonymous counter, or a
    /// named counter: several rules may share one).
    Count {
        /// The counters map's index.
        slot: u32,
    },
    /// Add the packet's bytes to quota `slot`; the match holds until the
    /// quota is used up (or, with `over`, once it is).
    Quota {
        /// The quotas map's index (named quotas are shared).
        slot: u32,
        /// Holds once used up (`quota over`).
        over: bool,
        /// The quota in bytes.
        bytes: u64,
    },
    /// Take tokens from rate limit `slot`'s bucket; holds while under the
    /// rate (or, with `over`, over it).
    Limit {
        /// The limits map's index (one per `limit` statement).
        slot: u32,
        /// Its parameters.
        limit: Limit,
    },
    /// Send a log record of the packet for `log` statement `slot`.
    Log {
        /// The index of the statement in the log table (prefix, level,
        /// rule) kept with the program.
        slot: u32,
    },
}
