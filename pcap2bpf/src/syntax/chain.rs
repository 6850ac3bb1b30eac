//! Trees of `and` and `or` walked down their left side by loops. A
//! chain whose operators take turns (`a and b or c and d ...`) is a tree
//! as high as it is long, all down its left side: the passes over the
//! syntax tree and the checked tree loop over its left operands and
//! recurse only into right operands (and `not`), whose depth the parser
//! bounds; the trees drop the same way.

/// A tree with `and` and `or` nodes of two operands.
pub trait BoolTree: Sized {
    /// The node's operator (`true`: `and`) and its operands, if it is
    /// an `and` or an `or`.
    fn operands(&self) -> Option<(bool, &Self, &Self)>;

    /// The left operand of an `and` or `or`, a leaf left in its place.
    fn take_left(&mut self) -> Option<Self>;

    /// The tree as a chain down its left side: the first operand that
    /// is no `and` or `or`, then each operator (`true`: `and`) with its
    /// right operand, in source order.
    fn left_chain(&self) -> (&Self, Vec<(bool, &Self)>) {
        let mut links = Vec::new();
        let mut node = self;
        while let Some((and, left, right)) = node.operands() {
            links.push((and, right));
            node = left;
        }
        links.reverse();
        (node, links)
    }
}

/// Takes `tree`'s left operands apart one by one, for its `Drop`: the
/// derived drop would recurse down a chain, a stack frame per operator.
pub fn drop_left_chain<T: BoolTree>(tree: &mut T) {
    let mut next = tree.take_left();
    while let Some(mut node) = next {
        next = node.take_left();
    }
}
