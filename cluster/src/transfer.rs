//! Which token ranges change replicas between two rings: what a joining node streams in,
//! what a leaving node streams out, and what a node left as a new replica of a forgotten
//! member's ranges must fetch.
//!
//! Both rings are pure functions of their member sets, so every node computes the same
//! answer. The work is one walk over the union of both rings' tokens: between two
//! consecutive tokens of the union, every key has the same preference list in each ring.

use crate::ring::{NodeId, PreferenceList, Ring};

/// Keys whose token lies in `first..=last` (never wrapping) change replicas from `old` to
/// `new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    /// First token of the range.
    pub first: u64,
    /// Last token of the range (inclusive).
    pub last: u64,
    /// Replicas before.
    pub old: PreferenceList,
    /// Replicas after.
    pub new: PreferenceList,
}

impl Moved {
    /// Replicas that keep the range no more.
    pub fn losers(&self) -> Vec<NodeId> {
        self.old
            .iter()
            .copied()
            .filter(|n| !self.new.contains(n))
            .collect()
    }

    /// Replicas that take the range.
    pub fn gainers(&self) -> Vec<NodeId> {
        self.new
            .iter()
            .copied()
            .filter(|n| !self.old.contains(n))
            .collect()
    }

    /// How many of the 2^64 tokens the range holds.
    pub fn width(&self) -> u128 {
        u128::from(self.last - self.first) + 1
    }
}

/// The ranges whose set of `n` replicas differs between `old` and `new`, in token order,
/// adjacent ranges with the same replicas merged. Replica order does not count: a range
/// whose replicas only swap places moves nothing.
pub fn moved_ranges(old: &Ring, new: &Ring, n: usize) -> Vec<Moved> {
    let mut bounds: Vec<u64> = old.tokens().iter().chain(new.tokens()).copied().collect();
    bounds.sort_unstable();
    bounds.dedup();
    let mut moved: Vec<Moved> = Vec::new();
    // Elementary intervals: (previous bound, bound]; the first wraps past u64::MAX, and is
    // split into its two non-wrapping parts.
    let Some(&highest) = bounds.last() else {
        return moved;
    };
    let mut intervals: Vec<(u64, u64)> = Vec::with_capacity(bounds.len() + 1);
    if highest < u64::MAX {
        intervals.push((highest + 1, u64::MAX));
    }
    let mut previous: Option<u64> = None;
    for &bound in &bounds {
        let first = previous.map_or(0, |p| p + 1);
        intervals.push((first, bound));
        previous = Some(bound);
    }
    intervals.sort_unstable();
    for (first, last) in intervals {
        // Every token of the interval has the lists of its last token.
        let (was, is) = (old.preference_list(last, n), new.preference_list(last, n));
        if same_nodes(&was, &is) {
            continue;
        }
        match moved.last_mut() {
            Some(prev)
                if prev.last.checked_add(1) == Some(first)
                    && same_nodes(&prev.old, &was)
                    && same_nodes(&prev.new, &is) =>
            {
                prev.last = last;
            }
            _ => moved.push(Moved {
                first,
                last,
                old: was,
                new: is,
            }),
        }
    }
    moved
}

fn same_nodes(a: &[NodeId], b: &[NodeId]) -> bool {
    a.len() == b.len() && a.iter().all(|n| b.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(range: std::ops::Range<u64>) -> Vec<NodeId> {
        range.map(NodeId::new).collect()
    }

    fn width_where(moved: &[Moved], pick: impl Fn(&Moved) -> bool) -> f64 {
        moved
            .iter()
            .filter(|m| pick(m))
            .map(|m| m.width() as f64)
            .sum::<f64>()
            / 2f64.powi(64)
    }

    #[test]
    fn a_joining_node_takes_about_n_over_members_of_the_ring_each_range_from_one_loser() {
        let old = Ring::new(ids(1..6), 256);
        let new = Ring::new(ids(1..7), 256);
        let joiner = NodeId::new(6);
        let moved = moved_ranges(&old, &new, 3);
        for m in &moved {
            assert_eq!(m.gainers(), vec![joiner], "{m:?}");
            assert_eq!(m.losers().len(), 1, "{m:?}");
            assert!(m.first <= m.last);
        }
        let share = width_where(&moved, |_| true);
        assert!((share - 3.0 / 6.0).abs() < 0.08, "joiner takes {share}");
        // The moved ranges are exactly where the joiner is a replica in the new ring.
        for token in (0..1000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) {
            let in_moved = moved.iter().any(|m| m.first <= token && token <= m.last);
            assert_eq!(in_moved, new.preference_list(token, 3).contains(&joiner));
        }
    }

    #[test]
    fn a_leaving_node_hands_each_of_its_ranges_to_one_gainer() {
        let old = Ring::new(ids(1..7), 64);
        let new = Ring::new(ids(2..7), 64);
        let moved = moved_ranges(&old, &new, 3);
        for m in &moved {
            assert_eq!(m.losers(), vec![NodeId::new(1)]);
            assert_eq!(m.gainers().len(), 1);
        }
        assert_eq!(moved_ranges(&old, &old, 3), Vec::new());
    }

    #[test]
    fn ranges_cover_the_top_and_bottom_of_the_token_space() {
        let old = Ring::new(ids(1..2), 4);
        let new = Ring::new(ids(1..3), 4);
        // With N = 1, node 2 takes its own ranges; with N = 2 it takes every key.
        let all = moved_ranges(&old, &new, 2);
        assert_eq!(all.first().map(|m| m.first), Some(0));
        assert_eq!(all.last().map(|m| m.last), Some(u64::MAX));
        assert_eq!(width_where(&all, |_| true), 1.0);
    }
}
