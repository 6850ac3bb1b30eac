//! Ancestor queries on the dominator trees of a pass, in constant or
//! logarithmic time rather than a walk up the tree: whether a block
//! dominates another (the pull-ups ask it at every step of a chain), and
//! the nearest dominating edge with a given test (`opt_j` asks it for
//! every edge). Walking up took time proportional to the depth of the
//! tree, which grows with the filter: long filters were cubic.
//!
//! Both trees number a node after its parent (blocks only jump
//! forward), so sizes add up in one backward sweep and preorder
//! positions follow in one forward sweep, with no recursion.

/// The preorder interval of each node of a forest whose nodes are
/// numbered after their parents: `a` is an ancestor of `b` (or `b`)
/// when `b`'s position falls in `a`'s interval.
#[derive(Default)]
pub(super) struct Intervals {
    /// Preorder position of each node.
    pre: Vec<u32>,
    /// Number of nodes in each node's subtree; 0 for a node not in the
    /// forest.
    size: Vec<u32>,
    /// Buffer: the next free position under each node.
    next: Vec<u32>,
}

impl Intervals {
    /// The intervals of nodes `0..n`; `parent(i)` is `None` for a node
    /// not in the forest, `Some(None)` for a root and `Some(Some(p))`,
    /// `p < i`, for a node under `p`.
    pub fn compute(&mut self, n: usize, parent: impl Fn(usize) -> Option<Option<usize>>) {
        self.size.clear();
        self.size
            .extend((0..n).map(|i| u32::from(parent(i).is_some())));
        for i in (0..n).rev() {
            if let Some(Some(p)) = parent(i) {
                debug_assert!(p < i, "a parent comes first");
                self.size[p] += self.size[i];
            }
        }
        self.pre.clear();
        self.pre.resize(n, 0);
        self.next.clear();
        self.next.resize(n, 0);
        let mut roots = 0;
        for i in 0..n {
            let at = match parent(i) {
                None => continue,
                Some(None) => &mut roots,
                Some(Some(p)) => &mut self.next[p],
            };
            self.pre[i] = *at;
            *at += self.size[i];
            self.next[i] = self.pre[i] + 1;
        }
    }

    /// Whether node `a` is node `b` or one of its ancestors; false when
    /// either is not in the forest.
    pub fn is_ancestor(&self, a: usize, b: usize) -> bool {
        self.size[a] != 0
            && self.size[b] != 0
            && self.pre[a] <= self.pre[b]
            && self.pre[b] < self.pre[a] + self.size[a]
    }
}

/// Nodes marked with keys, for "the nearest ancestor (or the node
/// itself) marked with this key".
pub(super) struct Marks<K> {
    /// By key, then preorder position.
    marks: Vec<Mark<K>>,
    /// `jump[k * marks.len() + i]`: the mark 2^k steps up from mark `i`
    /// by `Mark::up`, `u32::MAX` for none (so a query climbs the marks
    /// above it in logarithmic time).
    jump: Vec<u32>,
}

impl<K> Default for Marks<K> {
    fn default() -> Self {
        Marks {
            marks: Vec::new(),
            jump: Vec::new(),
        }
    }
}

#[derive(Clone, Copy)]
struct Mark<K> {
    key: K,
    /// The node's preorder interval.
    pre: u32,
    end: u32,
    node: u32,
    /// The nearest mark with the same key on an ancestor (an index
    /// into `marks`), `u32::MAX` for none.
    up: u32,
}

impl<K: Ord + Copy> Marks<K> {
    /// Drops every mark.
    pub fn clear(&mut self) {
        self.marks.clear();
    }

    /// Marks node `node` (in the forest of `t`) with `key`.
    pub fn mark(&mut self, key: K, node: usize, t: &Intervals) {
        self.marks.push(Mark {
            key,
            pre: t.pre[node],
            end: t.pre[node] + t.size[node],
            node: node as u32,
            up: u32::MAX,
        });
    }

    /// Sorts the marks and links each to the nearest one above it with
    /// the same key; call it after the last `mark`, before `nearest`.
    pub fn finish(&mut self, stack: &mut Vec<u32>) {
        self.marks.sort_unstable_by_key(|m| (m.key, m.pre));
        stack.clear();
        for i in 0..self.marks.len() {
            let m = self.marks[i];
            // The marks open around this one: same key, interval holding it.
            while let Some(&top) = stack.last() {
                let t = self.marks[top as usize];
                if t.key == m.key && m.pre < t.end {
                    break;
                }
                stack.pop();
            }
            self.marks[i].up = stack.last().copied().unwrap_or(u32::MAX);
            stack.push(i as u32);
        }
        let n = self.marks.len();
        let levels = (usize::BITS - n.leading_zeros()) as usize;
        self.jump.clear();
        self.jump.extend(self.marks.iter().map(|m| m.up));
        for k in 1..levels {
            for i in 0..n {
                let half = self.jump[(k - 1) * n + i];
                let full = match self.jump.get((k - 1) * n + half as usize) {
                    Some(&j) if half != u32::MAX => j,
                    _ => u32::MAX,
                };
                self.jump.push(full);
            }
        }
    }

    /// The nearest ancestor of `node` (or `node`) marked with `key`, and
    /// its preorder position (the larger, the nearer, among ancestors).
    pub fn nearest(&self, key: K, node: usize, t: &Intervals) -> Option<(u32, usize)> {
        if t.size[node] == 0 {
            return None;
        }
        let at = t.pre[node];
        // The last mark with this key at or before the node: an ancestor,
        // or a node beside it, under the nearest marked ancestor or not.
        let i = self
            .marks
            .partition_point(|m| (m.key, m.pre) <= (key, at))
            .checked_sub(1)?;
        if self.marks[i].key != key {
            return None;
        }
        // The marks above `i` that hold the node are those from some
        // point up: climb the others in halving steps.
        let n = self.marks.len();
        let holds = |j: usize| at < self.marks[j].end;
        let mut i = i;
        if !holds(i) {
            for k in (0..self.jump.len() / n.max(1)).rev() {
                let j = self.jump[k * n + i] as usize;
                if j < n && !holds(j) {
                    i = j;
                }
            }
            i = self.marks[i].up as usize;
        }
        let m = self.marks.get(i)?;
        Some((m.pre, m.node as usize))
    }
}

/// Nearest common ancestors in a forest that grows by leaves, each node
/// numbered after its parent, by binary lifting: a query climbs by
/// powers of two, in logarithmic time, where a walk up a long chain of
/// dominators took time proportional to its length.
#[derive(Default)]
pub(super) struct Lifting {
    /// The number of nodes, and of levels in `up`.
    n: usize,
    levels: usize,
    depth: Vec<u32>,
    /// `up[k * n + v]`: the ancestor of `v` 2^k levels up, or its root.
    up: Vec<u32>,
}

impl Lifting {
    /// Room for nodes `0..n`, none added.
    pub fn reset(&mut self, n: usize) {
        self.n = n;
        self.levels = (usize::BITS - n.leading_zeros()).max(1) as usize;
        self.depth.clear();
        self.depth.resize(n, 0);
        self.up.clear();
        self.up.resize(self.levels * n, 0);
    }

    /// Adds node `v` under `parent` (added before it), or as a root.
    pub fn add(&mut self, v: usize, parent: Option<usize>) {
        let n = self.n;
        let (p, depth) = match parent {
            Some(p) => (p, self.depth[p] + 1),
            None => (v, 0),
        };
        self.depth[v] = depth;
        self.up[v] = p as u32;
        for k in 1..self.levels {
            let half = self.up[(k - 1) * n + v] as usize;
            self.up[k * n + v] = self.up[(k - 1) * n + half];
        }
    }

    /// The nearest common ancestor of `a` and `b` (either may be it);
    /// none when they lie in different trees.
    pub fn common(&self, a: usize, b: usize) -> Option<usize> {
        let n = self.n;
        let up = |k: usize, v: usize| self.up[k * n + v] as usize;
        let (mut a, mut b) = if self.depth[a] >= self.depth[b] {
            (a, b)
        } else {
            (b, a)
        };
        let mut rise = self.depth[a] - self.depth[b];
        let mut k = 0;
        while rise > 0 {
            if rise & 1 == 1 {
                a = up(k, a);
            }
            rise >>= 1;
            k += 1;
        }
        if a == b {
            return Some(a);
        }
        for k in (0..self.levels).rev() {
            if up(k, a) != up(k, b) {
                a = up(k, a);
                b = up(k, b);
            }
        }
        // Now children of the common ancestor, or two roots.
        let p = up(0, a);
        (p == up(0, b) && p != a).then_some(p)
    }
}
