//! [`RankedSet`]: a persistent (copy-on-write) B+ tree of ordered items that keeps each
//! subtree's size, so that besides insert, remove and lookup it answers in O(log n) what an
//! ordinary ordered set answers by walking: the rank of an item, the item at a rank, and how
//! many items lie between two bounds (two ranks subtracted). What a sorted set's score index
//! needs for `ZRANK`, `ZCOUNT`, `ZRANGE z 50000 50010` and the like, as Redis's skiplist spans
//! give them.
//!
//! # Shape
//! - A **leaf** holds up to [`LEAF_MAX`] items in order, inline (one block each).
//! - A **branch** holds up to [`BRANCH_MAX`] children in order, each with its subtree's size
//!   and least item; the sizes make rank descents, the least items make key descents, both
//!   without touching the children. Every leaf is at the same depth.
//! - Every node sits behind a reference count: a clone of the set is O(1) and shares every
//!   node; a change copies only the nodes on its path that another clone still shares
//!   (`Arc::make_mut`), so a reader's snapshot never sees a later write.
//!
//! # Fill
//! A full node splits in halves, except when the new item (or child) goes past its last slot
//! or before its first: then the full node stays full and the new one starts with the one
//! item, so that ascending (or descending) inserts, as a leaderboard fill or a bulk load
//! makes, leave full leaves rather than half-full ones. A node left with fewer than a quarter
//! of its slots by a removal merges with a neighbour when both fit in one node, else takes
//! items from it until both hold half of them. [`RankedSet::from_sorted`] builds full leaves.
//!
//! # Depth
//! A level is added only when the root splits, which needs it full ([`BRANCH_MAX`]
//! children), so the depth stays about log₃₂(n): at half fill, five levels of branches over
//! the leaves hold 32⁶ (about 10⁹) items. A descent is that many binary searches of one
//! node each; nothing recurses deeper than the tree.

use std::cmp::Ordering;
use std::ops::Range;

use imbl_sized_chunks::Chunk;
use triomphe::Arc;

/// Items a leaf holds at most. 64 items of a 16-byte score entry are a 1 KiB leaf: a binary
/// search of it touches a few cache lines, and a path copy copies at most that.
pub const LEAF_MAX: usize = 64;
/// Children a branch holds at most.
pub const BRANCH_MAX: usize = 64;
/// A leaf below this many items after a removal is merged or refilled.
const LEAF_MIN: usize = LEAF_MAX / 4;
/// A branch below this many children after a removal is merged or refilled.
const BRANCH_MIN: usize = BRANCH_MAX / 4;

type Items<T> = Chunk<T, LEAF_MAX>;
type Children<T> = Chunk<Child<T>, BRANCH_MAX>;

/// A node and how it is shared.
#[derive(Clone)]
enum Node<T> {
    Leaf(Arc<Items<T>>),
    Branch(Arc<Branch<T>>),
}

#[derive(Clone)]
struct Branch<T> {
    /// Items under this branch: the sum of its children's `len`.
    len: usize,
    children: Children<T>,
}

/// A branch's slot: a child with its figures, so descents read only the branch.
#[derive(Clone)]
struct Child<T> {
    /// The least item under `node` (kept exact, so a removed item is never kept alive here).
    min: T,
    /// Items under `node`.
    len: usize,
    node: Node<T>,
}

impl<T: Clone> Child<T> {
    fn of(node: Node<T>) -> Child<T> {
        Child {
            min: node.first().clone(),
            len: node.len(),
            node,
        }
    }

    /// Takes `min` and `len` again from the node.
    fn refresh(&mut self) {
        self.len = self.node.len();
        self.min = self.node.first().clone();
    }
}

impl<T> Node<T> {
    fn len(&self) -> usize {
        match self {
            Node::Leaf(items) => items.len(),
            Node::Branch(branch) => branch.len,
        }
    }

    /// Slots in use: items of a leaf, children of a branch.
    fn slots(&self) -> usize {
        match self {
            Node::Leaf(items) => items.len(),
            Node::Branch(branch) => branch.children.len(),
        }
    }

    fn is_underfull(&self) -> bool {
        match self {
            Node::Leaf(items) => items.len() < LEAF_MIN,
            Node::Branch(branch) => branch.children.len() < BRANCH_MIN,
        }
    }

    /// The least item. A node in a tree is never empty.
    fn first(&self) -> &T {
        match self {
            Node::Leaf(items) => &items[0],
            Node::Branch(branch) => &branch.children[0].min,
        }
    }
}

/// An ordered set of distinct items (by `Ord`) with O(log n) rank queries; see the module
/// docs.
#[derive(Clone)]
pub struct RankedSet<T> {
    root: Option<Node<T>>,
}

impl<T> Default for RankedSet<T> {
    fn default() -> RankedSet<T> {
        RankedSet { root: None }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for RankedSet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// What an insert into a subtree did.
enum Inserted<T> {
    /// An equal item was there: this one took its place.
    Replaced(T),
    /// One more item; the node split and this is its new right sibling.
    Split(Node<T>),
    /// One more item, no split.
    Added,
}

impl<T> RankedSet<T> {
    /// An empty set.
    pub fn new() -> RankedSet<T> {
        RankedSet::default()
    }

    /// How many items the set holds. O(1).
    pub fn len(&self) -> usize {
        self.root.as_ref().map_or(0, Node::len)
    }

    /// Whether the set holds no item.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// How many items lie before the first for which `pred` is false (`pred` must be true
    /// for a prefix of the items and false after, as for `slice::partition_point`): the
    /// rank where such a bound falls. O(log n), calling `pred` O(log n) times.
    pub fn partition_point(&self, pred: impl Fn(&T) -> bool) -> usize {
        let mut rank = 0;
        let mut node = match &self.root {
            Some(root) => root,
            None => return 0,
        };
        loop {
            match node {
                Node::Leaf(items) => return rank + items.partition_point(&pred),
                Node::Branch(branch) => {
                    // The bound lies in the last child whose least item is before it.
                    let before = branch.children.partition_point(|c| pred(&c.min));
                    let Some(last) = before.checked_sub(1) else {
                        return rank;
                    };
                    rank += branch.children[..last].iter().map(|c| c.len).sum::<usize>();
                    node = &branch.children[last].node;
                }
            }
        }
    }

    /// The item at `rank` (0 is the least), if there are more items than `rank`. O(log n).
    pub fn get(&self, rank: usize) -> Option<&T> {
        let (items, at) = self.leaf_at(rank)?;
        Some(&items[at])
    }

    /// The leaf holding the item at `rank` and the item's place in it.
    fn leaf_at(&self, mut rank: usize) -> Option<(&[T], usize)> {
        let mut node = self.root.as_ref()?;
        if rank >= node.len() {
            return None;
        }
        loop {
            match node {
                Node::Leaf(items) => return Some((items, rank)),
                Node::Branch(branch) => {
                    // In range, so some child holds it (the sizes add up to `len`).
                    let mut children = branch.children.iter();
                    node = loop {
                        let child = children.next().expect("a rank below the branch's size");
                        if rank < child.len {
                            break &child.node;
                        }
                        rank -= child.len;
                    };
                }
            }
        }
    }

    /// The items whose ranks are in `ranks` (clamped to the set), in order, from either end.
    /// Building it is O(1); each step is O(1) within a leaf and O(log n) to the next leaf.
    pub fn range(&self, ranks: Range<usize>) -> Iter<'_, T> {
        let end = ranks.end.min(self.len());
        Iter {
            set: self,
            front: (&[], 0),
            back: (&[], 0),
            front_rank: ranks.start.min(end),
            back_rank: end,
        }
    }

    /// Every item, in order, from either end.
    pub fn iter(&self) -> Iter<'_, T> {
        self.range(0..self.len())
    }
}

impl<T: Ord + Clone> RankedSet<T> {
    /// A set of `items`, which must be in strictly increasing order, built level by level
    /// with full nodes: O(n).
    ///
    /// # Panics
    /// In debug builds, when `items` are not strictly increasing.
    pub fn from_sorted(items: impl IntoIterator<Item = T>) -> RankedSet<T> {
        let mut items = items.into_iter().peekable();
        let mut level: Vec<Node<T>> = Vec::new();
        while items.peek().is_some() {
            let leaf: Items<T> = items.by_ref().take(LEAF_MAX).collect();
            debug_assert!(leaf.windows(2).all(|w| w[0] < w[1]));
            debug_assert!(level.last().is_none_or(|prev| last_item(prev) < &leaf[0]));
            level.push(Node::Leaf(Arc::new(leaf)));
        }
        while level.len() > 1 {
            let mut nodes = level.into_iter().map(Child::of).peekable();
            let mut up = Vec::new();
            while nodes.peek().is_some() {
                let children: Children<T> = nodes.by_ref().take(BRANCH_MAX).collect();
                let len = children.iter().map(|c| c.len).sum();
                up.push(Node::Branch(Arc::new(Branch { len, children })));
            }
            level = up;
        }
        RankedSet { root: level.pop() }
    }

    /// The rank of `item` if the set holds an item equal to it. O(log n).
    pub fn rank_of(&self, item: &T) -> Option<usize> {
        let rank = self.partition_point(|x| x < item);
        (self.get(rank)? == item).then_some(rank)
    }

    /// Whether the set holds an item equal to `item`.
    pub fn contains(&self, item: &T) -> bool {
        self.rank_of(item).is_some()
    }

    /// Adds `item`; the equal item it replaced, if there was one. O(log n).
    pub fn insert(&mut self, item: T) -> Option<T> {
        let Some(root) = &mut self.root else {
            self.root = Some(Node::Leaf(Arc::new(Chunk::unit(item))));
            return None;
        };
        match insert_into(root, item) {
            Inserted::Replaced(old) => Some(old),
            Inserted::Added => None,
            Inserted::Split(right) => {
                let left = self.root.take().expect("a root");
                let children = Chunk::pair(Child::of(left), Child::of(right));
                let len = children.iter().map(|c| c.len).sum();
                self.root = Some(Node::Branch(Arc::new(Branch { len, children })));
                None
            }
        }
    }

    /// Removes the item equal to `item`; the item removed. O(log n).
    ///
    /// Copies the path to where `item` would be when another clone shares it, even if the
    /// set does not hold `item`.
    pub fn remove(&mut self, item: &T) -> Option<T> {
        let root = self.root.as_mut()?;
        let removed = remove_from(root, item)?;
        // A branch of one child gives way to it; an empty root goes.
        loop {
            match &self.root {
                Some(Node::Branch(branch)) if branch.children.len() == 1 => {
                    self.root = Some(branch.children[0].node.clone());
                }
                Some(root) if root.slots() == 0 => self.root = None,
                _ => break,
            }
        }
        Some(removed)
    }

    /// Checks every invariant of the tree (order, sizes, least items, depth).
    ///
    /// # Panics
    /// When one does not hold: a bug here.
    #[cfg(test)]
    fn check(&self) {
        fn walk<T: Ord>(node: &Node<T>, depth: usize, leaves: &mut Vec<usize>) -> usize {
            match node {
                Node::Leaf(items) => {
                    assert!(!items.is_empty());
                    assert!(items.windows(2).all(|w| w[0] < w[1]));
                    leaves.push(depth);
                    items.len()
                }
                Node::Branch(branch) => {
                    assert!(!branch.children.is_empty());
                    let mut total = 0;
                    for (at, child) in branch.children.iter().enumerate() {
                        assert_eq!(walk(&child.node, depth + 1, leaves), child.len);
                        assert!(child.min == *child.node.first());
                        if let Some(next) = branch.children.get(at + 1) {
                            assert!(last_item(&child.node) < &next.min);
                        }
                        total += child.len;
                    }
                    assert_eq!(total, branch.len);
                    total
                }
            }
        }
        let Some(root) = &self.root else { return };
        let mut leaves = Vec::new();
        walk(root, 0, &mut leaves);
        assert!(
            leaves.windows(2).all(|w| w[0] == w[1]),
            "leaves at one depth"
        );
    }
}

/// The greatest item of a (non-empty) subtree.
fn last_item<T>(mut node: &Node<T>) -> &T {
    loop {
        match node {
            Node::Leaf(items) => return &items[items.len() - 1],
            Node::Branch(branch) => node = &branch.children[branch.children.len() - 1].node,
        }
    }
}

/// The child of a branch whose subtree `item` belongs in: the last whose least item is at
/// or below it, or the first.
fn child_for<T: Ord>(children: &Children<T>, item: &T) -> usize {
    children
        .partition_point(|c| c.min <= *item)
        .saturating_sub(1)
}

/// Puts `value` at `at` in `chunk`; when it is full, splits it and returns the right part
/// (see "Fill" in the module docs).
fn insert_slot<A, const N: usize>(
    chunk: &mut Chunk<A, N>,
    at: usize,
    value: A,
) -> Option<Chunk<A, N>> {
    if !chunk.is_full() {
        chunk.insert(at, value);
        return None;
    }
    if at == N {
        return Some(Chunk::unit(value));
    }
    if at == 0 {
        return Some(std::mem::replace(chunk, Chunk::unit(value)));
    }
    let mut right = chunk.split_off(N / 2);
    match at <= N / 2 {
        true => chunk.insert(at, value),
        false => right.insert(at - N / 2, value),
    }
    Some(right)
}

fn insert_into<T: Ord + Clone>(node: &mut Node<T>, item: T) -> Inserted<T> {
    match node {
        Node::Leaf(items) => {
            let items = Arc::make_mut(items);
            match items.binary_search(&item) {
                Ok(at) => Inserted::Replaced(items.set(at, item)),
                Err(at) => match insert_slot(items, at, item) {
                    Some(right) => Inserted::Split(Node::Leaf(Arc::new(right))),
                    None => Inserted::Added,
                },
            }
        }
        Node::Branch(branch) => {
            let branch = Arc::make_mut(branch);
            let at = child_for(&branch.children, &item);
            let child = &mut branch.children[at];
            // At or below the least item: the least item changes (or is replaced).
            let new_min = item <= child.min;
            let inserted = insert_into(&mut child.node, item);
            if new_min {
                child.min = child.node.first().clone();
            }
            match inserted {
                Inserted::Replaced(old) => return Inserted::Replaced(old),
                Inserted::Added => child.len += 1,
                Inserted::Split(right) => {
                    child.len = child.node.len();
                    branch.len += 1;
                    return match insert_slot(&mut branch.children, at + 1, Child::of(right)) {
                        None => Inserted::Added,
                        Some(children) => {
                            branch.len = branch.children.iter().map(|c| c.len).sum();
                            let len = children.iter().map(|c| c.len).sum();
                            Inserted::Split(Node::Branch(Arc::new(Branch { len, children })))
                        }
                    };
                }
            }
            branch.len += 1;
            Inserted::Added
        }
    }
}

fn remove_from<T: Ord + Clone>(node: &mut Node<T>, item: &T) -> Option<T> {
    match node {
        Node::Leaf(items) => {
            let at = items.binary_search(item).ok()?;
            Some(Arc::make_mut(items).remove(at))
        }
        Node::Branch(branch) => {
            let at = child_for(&branch.children, item);
            if branch.children[at].min > *item {
                return None;
            }
            let branch = Arc::make_mut(branch);
            let child = &mut branch.children[at];
            let removed = remove_from(&mut child.node, item)?;
            branch.len -= 1;
            child.len -= 1;
            if child.node.slots() == 0 {
                branch.children.remove(at);
                return Some(removed);
            }
            if child.min == removed {
                child.min = child.node.first().clone();
            }
            if child.node.is_underfull() {
                rebalance(&mut branch.children, at);
            }
            Some(removed)
        }
    }
}

/// Merges the underfull child at `at` with a neighbour when both fit in one node, else
/// moves items between them until they hold half each.
fn rebalance<T: Clone>(children: &mut Children<T>, at: usize) {
    if children.len() < 2 {
        return;
    }
    let left_at = if at + 1 < children.len() { at } else { at - 1 };
    let (left, right) = children.as_mut_slice()[left_at..].split_at_mut(1);
    let (left, right) = (&mut left[0], &mut right[0]);
    let merged = match (&mut left.node, &mut right.node) {
        (Node::Leaf(l), Node::Leaf(r)) => even_out(Arc::make_mut(l), Arc::make_mut(r)),
        (Node::Branch(l), Node::Branch(r)) => {
            let (l, r) = (Arc::make_mut(l), Arc::make_mut(r));
            let merged = even_out(&mut l.children, &mut r.children);
            l.len = l.children.iter().map(|c| c.len).sum();
            r.len = r.children.iter().map(|c| c.len).sum();
            merged
        }
        _ => unreachable!("siblings are at one depth"),
    };
    left.refresh();
    if merged {
        children.remove(left_at + 1);
    } else {
        right.refresh();
    }
}

/// Moves every item of `right` into `left` when they fit (true), else moves items across
/// until each holds half (false).
fn even_out<A, const N: usize>(left: &mut Chunk<A, N>, right: &mut Chunk<A, N>) -> bool {
    let total = left.len() + right.len();
    if total <= N {
        left.append(right);
        return true;
    }
    let half = total / 2;
    match left.len().cmp(&half) {
        Ordering::Less => left.drain_from_front(right, half - left.len()),
        Ordering::Greater => right.drain_from_back(left, left.len() - half),
        Ordering::Equal => {}
    }
    false
}

/// [`RankedSet::range`]'s iterator: a rank window walked from either end, each end keeping
/// the leaf it is in.
pub struct Iter<'a, T> {
    set: &'a RankedSet<T>,
    /// The front's leaf and the place of the next item in it (none yet: an empty slice).
    front: (&'a [T], usize),
    /// The back's leaf and the place after the next item from the back.
    back: (&'a [T], usize),
    /// The rank of the next item from the front.
    front_rank: usize,
    /// The rank after the next item from the back.
    back_rank: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        if self.front_rank == self.back_rank {
            return None;
        }
        if self.front.1 == self.front.0.len() {
            self.front = self.set.leaf_at(self.front_rank)?;
        }
        let item = &self.front.0[self.front.1];
        self.front.1 += 1;
        self.front_rank += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.back_rank - self.front_rank;
        (left, Some(left))
    }

    fn nth(&mut self, n: usize) -> Option<&'a T> {
        // A seek, not a walk: `skip` calls this.
        if n > 0 {
            self.front_rank = self.front_rank.saturating_add(n).min(self.back_rank);
            self.front = (&[], 0);
        }
        self.next()
    }
}

impl<'a, T> DoubleEndedIterator for Iter<'a, T> {
    fn next_back(&mut self) -> Option<&'a T> {
        if self.front_rank == self.back_rank {
            return None;
        }
        if self.back.1 == 0 {
            let (items, at) = self.set.leaf_at(self.back_rank - 1)?;
            self.back = (items, at + 1);
        }
        self.back.1 -= 1;
        self.back_rank -= 1;
        Some(&self.back.0[self.back.1])
    }

    fn nth_back(&mut self, n: usize) -> Option<&'a T> {
        if n > 0 {
            self.back_rank = self.back_rank.saturating_sub(n).max(self.front_rank);
            self.back = (&[], 0);
        }
        self.next_back()
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<T: Ord + Clone> FromIterator<T> for RankedSet<T> {
    /// Sorts the items (the last of equal ones wins, as with repeated inserts) and builds
    /// full nodes.
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> RankedSet<T> {
        let mut items: Vec<T> = items.into_iter().collect();
        items.reverse();
        // Stable: among equal items the last given comes first after the reverse.
        items.sort();
        items.dedup_by(|later, earlier| later == earlier);
        RankedSet::from_sorted(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn model_check(set: &RankedSet<u32>, model: &[u32]) {
        set.check();
        assert_eq!(set.len(), model.len());
        assert!(set.iter().copied().eq(model.iter().copied()));
        assert!(set.iter().rev().copied().eq(model.iter().rev().copied()));
    }

    #[test]
    fn ascending_inserts_leave_full_leaves() {
        let mut set = RankedSet::new();
        for i in 0..10_000u32 {
            set.insert(i);
        }
        set.check();
        let leaves = set.len().div_ceil(LEAF_MAX);
        let Some(Node::Branch(root)) = &set.root else {
            panic!("a branch root")
        };
        let counted: usize = root
            .children
            .iter()
            .map(|c| match &c.node {
                Node::Branch(b) => b.children.len(),
                Node::Leaf(_) => 1,
            })
            .sum();
        assert_eq!(counted, leaves);
    }

    #[test]
    fn descending_inserts_leave_full_leaves_too() {
        let mut set = RankedSet::new();
        for i in (0..4_096u32).rev() {
            set.insert(i);
        }
        set.check();
        assert_eq!(set.get(100), Some(&100));
        let Some(Node::Branch(root)) = &set.root else {
            panic!("a branch root")
        };
        assert_eq!(root.children.len(), 4_096 / LEAF_MAX);
    }

    #[test]
    fn ranks_counts_and_windows_of_a_large_set_are_exact() {
        let set: RankedSet<u32> = (0..100_000u32).map(|i| i * 2).collect();
        set.check();
        assert_eq!(set.rank_of(&100_000), Some(50_000));
        assert_eq!(set.rank_of(&100_001), None);
        assert_eq!(set.get(50_000), Some(&100_000));
        // Items in [1000, 21000): 10,000 of them.
        let count = set.partition_point(|&x| x < 21_000) - set.partition_point(|&x| x < 1_000);
        assert_eq!(count, 10_000);
        let window: Vec<u32> = set.range(50_000..50_003).copied().collect();
        assert_eq!(window, [100_000, 100_002, 100_004]);
        let back: Vec<u32> = set.range(50_000..50_003).rev().copied().collect();
        assert_eq!(back, [100_004, 100_002, 100_000]);
        assert_eq!(set.range(99_999..200_000).count(), 1);
        let (from, to) = (7, 3);
        assert_eq!(set.range(from..to).count(), 0);
        assert_eq!(set.iter().nth(70_000), Some(&140_000));
        assert_eq!(set.iter().rev().nth(1), Some(&199_996));
    }

    #[test]
    fn popping_from_one_end_keeps_the_tree_balanced() {
        let mut set: RankedSet<u32> = (0..5_000u32).collect();
        for i in 0..4_990u32 {
            assert_eq!(set.remove(&i), Some(i));
            if i % 97 == 0 {
                set.check();
            }
        }
        model_check(&set, &(4_990..5_000).collect::<Vec<_>>());
        for i in 4_990..5_000u32 {
            set.remove(&i);
        }
        assert!(set.is_empty());
    }

    #[test]
    fn scattered_inserts_and_removals_keep_a_deep_tree_exact() {
        // Enough items for branches under the root, so that branches merge and refill too.
        let mut set = RankedSet::new();
        let mut model = std::collections::BTreeSet::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut step = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 200_000) as u32
        };
        for _ in 0..60_000 {
            let item = step();
            assert_eq!(set.insert(item).is_some(), !model.insert(item));
        }
        let snapshot = set.clone();
        let kept: Vec<u32> = model.iter().copied().collect();
        set.check();
        for round in 0..120_000 {
            let item = step();
            assert_eq!(set.remove(&item).is_some(), model.remove(&item));
            if round % 10_000 == 0 {
                set.check();
                let rank = model.range(..item).count();
                assert_eq!(set.partition_point(|&y| y < item), rank);
            }
        }
        model_check(&set, &model.iter().copied().collect::<Vec<_>>());
        model_check(&snapshot, &kept);
        for item in model.iter().copied().collect::<Vec<_>>() {
            set.remove(&item);
        }
        assert!(set.is_empty() && set.root.is_none());
    }

    #[test]
    fn an_equal_item_replaces_the_one_held() {
        #[derive(Debug, Clone)]
        struct Tagged(u32, &'static str);
        impl PartialEq for Tagged {
            fn eq(&self, other: &Tagged) -> bool {
                self.0 == other.0
            }
        }
        impl Eq for Tagged {}
        impl PartialOrd for Tagged {
            fn partial_cmp(&self, other: &Tagged) -> Option<Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for Tagged {
            fn cmp(&self, other: &Tagged) -> Ordering {
                self.0.cmp(&other.0)
            }
        }
        let mut set: RankedSet<Tagged> = (0..1_000).map(|i| Tagged(i, "old")).collect();
        // The least item of a leaf is also kept in the branches above: replaced there too.
        for i in [0, 64, 500] {
            assert_eq!(set.insert(Tagged(i, "new")).map(|t| t.1), Some("old"));
        }
        let Some(Node::Branch(root)) = &set.root else {
            panic!("a branch root")
        };
        assert_eq!(root.children[0].min.1, "new");
        assert_eq!(root.children[1].min.1, "new");
        assert_eq!(set.get(500).map(|t| t.1), Some("new"));
        assert_eq!(set.len(), 1_000);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u32),
        Remove(u32),
        /// Take a snapshot (a clone) here; later ops must not change it.
        Snapshot,
    }

    fn arb_op(keys: u32) -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..keys).prop_map(Op::Insert),
            3 => (0..keys).prop_map(Op::Remove),
            1 => Just(Op::Snapshot),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Inserts and removes against a sorted Vec; rank, select and counts between bounds
        /// after every step; clones taken along the way keep what they held.
        #[test]
        fn the_set_follows_a_sorted_vec(
            start in proptest::collection::vec(0u32..3_000, 0..1_500),
            ops in proptest::collection::vec(arb_op(3_000), 1..600),
            probes in proptest::collection::vec((0u32..3_100, 0u32..3_100), 8),
        ) {
            let mut model: Vec<u32> = start.clone();
            model.sort();
            model.dedup();
            let mut set: RankedSet<u32> = start.into_iter().collect();
            let mut snapshots: Vec<(RankedSet<u32>, Vec<u32>)> = Vec::new();
            for op in ops {
                match op {
                    Op::Insert(x) => {
                        let had = model.binary_search(&x);
                        if let Err(at) = had { model.insert(at, x); }
                        prop_assert_eq!(set.insert(x).is_some(), had.is_ok());
                    }
                    Op::Remove(x) => {
                        let had = model.binary_search(&x);
                        if let Ok(at) = had { model.remove(at); }
                        prop_assert_eq!(set.remove(&x), had.ok().map(|_| x));
                    }
                    Op::Snapshot => snapshots.push((set.clone(), model.clone())),
                }
                prop_assert_eq!(set.len(), model.len());
            }
            model_check(&set, &model);
            for &(a, b) in &probes {
                let (lo, hi) = (a.min(b), a.max(b));
                prop_assert_eq!(set.rank_of(&a), model.binary_search(&a).ok());
                prop_assert_eq!(set.partition_point(|&x| x < a), model.partition_point(|&x| x < a));
                prop_assert_eq!(set.get(a as usize % 1_600), model.get(a as usize % 1_600));
                let count = set.partition_point(|&x| x <= hi) - set.partition_point(|&x| x < lo);
                prop_assert_eq!(count, model.iter().filter(|&&x| lo <= x && x <= hi).count());
                let ranks = (lo as usize / 2)..(hi as usize / 2);
                let window = model.get(ranks.start.min(model.len())..ranks.end.min(model.len()))
                    .unwrap_or(&[]);
                prop_assert!(set.range(ranks.clone()).eq(window.iter()));
                prop_assert!(set.range(ranks.clone()).rev().eq(window.iter().rev()));
                // Both ends at once meet in the middle.
                let mut both = set.range(ranks);
                let mut met = Vec::new();
                while let Some(x) = both.next() {
                    met.push(*x);
                    if let Some(y) = both.next_back() { met.push(*y); }
                }
                met.sort();
                prop_assert_eq!(&met[..], window);
            }
            for (snapshot, held) in &snapshots {
                model_check(snapshot, held);
            }
        }
    }
}
