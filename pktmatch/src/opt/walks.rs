//! The chain walks of the pull-ups (module `pullup`), resumed rather
//! than redone. A pull-up at a head walks down its chain over the tests
//! of the head's value, then over tests of other values to the next test
//! of the head's value. The test above a head is the next head the pass
//! meets (the pass goes up from the verdicts), and its walk goes the
//! same way, one test longer: redone from each head, the walks were
//! quadratic in the length of a chain, the pull-ups of a 10,000-term
//! filter took seconds (libpcap's take as long).
//!
//! So each head leaves its walk where it stopped, and the head above it
//! resumes it when that gives what a walk of its own would: it tests
//! the same value, its chain shares the same edge, it dominates the head
//! below (so every test that passed the checks for that head passes
//! them for it), and no pull-up changed a test the walk passed since
//! (a test is owned by the last walk that passed it: changing it, or
//! another walk passing it, drops the walk).

use crate::ir::{BlockId, Edge, EntityRef};

use super::jumps::AValue;

/// Where a walk down a chain stands; the tests before it passed the
/// checks.
#[derive(Clone, Copy)]
pub(super) enum Walk {
    /// Among the tests of the head's value: `diff` is the next test to
    /// check, `above` the last one that passed (none: `diff` is the head).
    Same {
        diff: BlockId,
        above: Option<BlockId>,
    },
    /// Past them: `diff` is the first test of another value, `before`
    /// the last test that passed, where the walk goes on.
    Other {
        diff: BlockId,
        above: Option<BlockId>,
        before: BlockId,
    },
}

impl Walk {
    /// The walk of the head above `head`, resuming this walk of `head`.
    fn for_head_above(self, above_head: BlockId) -> Walk {
        match self {
            Walk::Same { diff, above } => Walk::Same {
                diff,
                above: above.or(Some(above_head)),
            },
            Walk::Other {
                diff,
                above,
                before,
            } => Walk::Other {
                diff,
                above: above.or(Some(above_head)),
                before,
            },
        }
    }
}

/// A walk a head left, for the head above it.
struct Left {
    walk: Walk,
    /// The value its tests are compared with, and the edge its chain
    /// shares.
    val: AValue,
    target: Edge,
    /// No pull-up changed a test it passed since.
    valid: bool,
}

/// A walk's number, for the tests it owns.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct WalkId(u32);

/// The walks of one pass of pull-ups, for `or` chains (kind 0) and
/// `and` chains (kind 1).
#[derive(Default)]
pub(super) struct Walks {
    /// By walk number: where it was left, if it was.
    walks: Vec<Option<Left>>,
    /// The walk each head left, per kind.
    left_at: [Vec<Option<WalkId>>; 2],
    /// The walk each test passed in, per kind.
    owner: [Vec<Option<WalkId>>; 2],
    /// The walk whose pull-up is moving edges: its own moves leave it
    /// as the pull-up says.
    moving: Option<(usize, WalkId)>,
}

impl Walks {
    /// No walks, for a pass over `n` blocks.
    pub fn reset(&mut self, n: usize) {
        self.walks.clear();
        for v in self.left_at.iter_mut().chain(self.owner.iter_mut()) {
            v.clear();
            v.resize(n, None);
        }
        self.moving = None;
    }

    /// A new walk.
    pub fn start(&mut self) -> WalkId {
        let id = WalkId(self.walks.len() as u32);
        self.walks.push(None);
        id
    }

    /// The walk head `b` left, for `head` above it (its chain edge goes
    /// to `b`, it passed the checks of its walk, dominates `b`), if it
    /// is for the same value and shared edge and still holds; taken, so
    /// that one head only resumes it.
    pub fn resume(
        &mut self,
        kind: usize,
        head: BlockId,
        b: BlockId,
        val: AValue,
        target: Edge,
    ) -> Option<(WalkId, Walk)> {
        let id = self.left_at[kind][b.index()].take()?;
        let left = self.walks[id.0 as usize].as_ref()?;
        if !left.valid || left.val != val || left.target != target {
            return None;
        }
        let walk = left.walk.for_head_above(head);
        self.passed(kind, id, head);
        Some((id, walk))
    }

    /// Test `x` passed the checks of walk `id`. A test has one owner:
    /// another walk that passed it is dropped (a change to the test
    /// could not reach it).
    pub fn passed(&mut self, kind: usize, id: WalkId, x: BlockId) {
        if let Some(old) = self.owner[kind][x.index()].replace(id)
            && old != id
        {
            self.drop_walk(old);
        }
    }

    /// Walk `id` no longer holds.
    fn drop_walk(&mut self, id: WalkId) {
        if let Some(left) = &mut self.walks[id.0 as usize] {
            left.valid = false;
        }
    }

    /// Head `head` leaves walk `id` at `walk` (comparing tests with
    /// `val`, its chain sharing `target`), for the head above it.
    pub fn leave(
        &mut self,
        kind: usize,
        head: BlockId,
        id: WalkId,
        walk: Walk,
        val: AValue,
        target: Edge,
    ) {
        self.walks[id.0 as usize] = Some(Left {
            walk,
            val,
            target,
            valid: true,
        });
        self.left_at[kind][head.index()] = Some(id);
    }

    /// Walk `id`'s pull-up moves edges (until `moved`).
    pub fn moving(&mut self, kind: usize, id: WalkId) {
        self.moving = Some((kind, id));
    }

    /// Its pull-up is over.
    pub fn moved(&mut self) {
        self.moving = None;
    }

    /// Test `x` changed: the walks that passed it no longer hold (but
    /// the one moving it).
    pub fn changed(&mut self, x: BlockId) {
        for kind in 0..2 {
            if let Some(id) = self.owner[kind][x.index()]
                && self.moving != Some((kind, id))
            {
                self.drop_walk(id);
            }
        }
    }
}
