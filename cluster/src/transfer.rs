//! Which token ranges change replicas between two rings: what a joining node streams in,
//! what a leaving node streams out, and what a node left as a new replica of a forgotten
//! member's ranges must fetch.
//!
//! Both rings are pure functions of their member sets, so every node computes the same
//! answer. The work is one walk over the union of both rings' tokens: between two
//! consecutive tokens of the union, every key has the same preference list in each ring.

use std::collections::BTreeMap;

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

/// A key's pending replicas: those of `future` (the ring once the joins and leaves under way
/// finish) that are not among its `n` replicas in `ring` now. Writes go to them too, and
/// they must acknowledge on top of the level (Cassandra's pending endpoints), so that a
/// finished join or leave keeps every acknowledged write.
pub fn pending_replicas(ring: &Ring, future: &Ring, key_token: u64, n: usize) -> Vec<NodeId> {
    let now = ring.preference_list(key_token, n);
    future
        .preference_list(key_token, n)
        .iter()
        .copied()
        .filter(|node| !now.contains(node))
        .collect()
}

fn same_nodes(a: &[NodeId], b: &[NodeId]) -> bool {
    a.len() == b.len() && a.iter().all(|n| b.contains(n))
}

/// Whether one of `ranges` (sorted, not overlapping) holds `token`.
pub fn in_ranges(ranges: &[(u64, u64)], token: u64) -> bool {
    let after = ranges.partition_point(|&(first, _)| first <= token);
    after > 0 && token <= ranges[after - 1].1
}

/// Token ranges `first..=last`.
pub type Ranges = Vec<(u64, u64)>;

/// One walk of one source's store for some ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pull {
    /// The node whose store is walked.
    pub source: NodeId,
    /// Sorted, not overlapping.
    pub ranges: Ranges,
    /// Where the walk resumes (0 at the start).
    pub cursor: u64,
    /// The walk is complete.
    pub done: bool,
}

/// A joining node's pulls: which stores it walks for which ranges, and how far each walk
/// got (kept in the data dir, so a join resumes after a crash).
///
/// A range is pulled from every replica that loses it, and only from those (Cassandra's
/// consistent range movement): each loser held every write acknowledged with it, and the
/// old replicas that stay keep the rest, so a write acknowledged at any level, even `ONE`
/// on the loser alone, is on the new replicas afterwards. A walk has no fallback: pulling
/// the range from another replica instead could miss a write the loser alone acknowledged,
/// so a join waits for a loser that is down (or for it to be forgotten).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The walks, in the order they run.
    pub pulls: Vec<Pull>,
}

impl Plan {
    /// A joining node's plan, or `None` while a source it needs looks down: the one decision
    /// the runtime and the simulator both make.
    pub fn for_join(
        moved: &[Moved],
        local: NodeId,
        is_up: impl Fn(NodeId) -> bool,
    ) -> Option<Plan> {
        let plan = Plan::gains(moved, local);
        plan.pulls.iter().all(|p| is_up(p.source)).then_some(plan)
    }

    /// Pulls for the ranges `local` gains: each from every replica that loses it, or from
    /// every old replica when none does (a ring of fewer than `n` members grows, and all of
    /// them stay).
    pub fn gains(moved: &[Moved], local: NodeId) -> Plan {
        Plan::from_sources(moved, local, |m| {
            let losers: Vec<NodeId> = m.losers().into_iter().filter(|&n| n != local).collect();
            if losers.is_empty() {
                m.old.iter().copied().filter(|&n| n != local).collect()
            } else {
                losers
            }
        })
    }

    /// Pulls for the ranges `local` gains when the members `gone` were forgotten (their
    /// data went with them): each from every other old replica, so that a write one of them
    /// alone acknowledged is found.
    pub fn takeover(moved: &[Moved], local: NodeId, gone: &[NodeId]) -> Plan {
        Plan::from_sources(moved, local, |m| {
            m.old
                .iter()
                .copied()
                .filter(|n| *n != local && !gone.contains(n))
                .collect()
        })
    }

    /// One walk per source, whatever the ranges: every walk reads the source's whole store.
    fn from_sources(
        moved: &[Moved],
        local: NodeId,
        sources: impl Fn(&Moved) -> Vec<NodeId>,
    ) -> Plan {
        let mut by_source: BTreeMap<NodeId, Ranges> = BTreeMap::new();
        for m in moved.iter().filter(|m| m.gainers().contains(&local)) {
            for source in sources(m) {
                by_source.entry(source).or_default().push((m.first, m.last));
            }
        }
        Plan {
            pulls: by_source
                .into_iter()
                .map(|(source, ranges)| Pull {
                    source,
                    ranges,
                    cursor: 0,
                    done: false,
                })
                .collect(),
        }
    }

    /// Ranges whose walk is not complete.
    pub fn ranges_pending(&self) -> u64 {
        self.pulls
            .iter()
            .filter(|p| !p.done)
            .map(|p| p.ranges.len() as u64)
            .sum()
    }

    /// The plan as text, one walk a line, for the data dir.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        for pull in &self.pulls {
            text.push_str(&format!(
                "pull {} {} {} {}\n",
                pull.source,
                pull.cursor,
                u8::from(pull.done),
                pull.ranges
                    .iter()
                    .map(|(f, l)| format!("{f:x}-{l:x}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        text
    }

    /// Reads [`Plan::encode`]'s text; `None` for anything else.
    pub fn decode(text: &str) -> Option<Plan> {
        let mut pulls = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            // Before walks lost their fallbacks a line had them after `done`: a plan kept
            // then resumes (its walks wait for their sources as the new ones do).
            let (source, cursor, done, ranges) = match fields.as_slice() {
                ["pull", source, cursor, done, ranges] => (source, cursor, done, ranges),
                ["pull", source, cursor, done, _fallbacks, ranges] => {
                    (source, cursor, done, ranges)
                }
                _ => return None,
            };
            let ranges = ranges
                .split(',')
                .filter(|r| !r.is_empty())
                .map(|r| {
                    let (f, l) = r.split_once('-')?;
                    Some((
                        u64::from_str_radix(f, 16).ok()?,
                        u64::from_str_radix(l, 16).ok()?,
                    ))
                })
                .collect::<Option<_>>()?;
            pulls.push(Pull {
                source: source.parse().ok()?,
                cursor: cursor.parse().ok()?,
                done: *done == "1",
                ranges,
            });
        }
        Some(Plan { pulls })
    }
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
    fn a_token_is_found_in_sorted_inclusive_ranges() {
        let ranges = [(0, 9), (20, 29), (40, u64::MAX)];
        for (token, inside) in [(0, true), (9, true), (10, false), (19, false), (20, true)] {
            assert_eq!(in_ranges(&ranges, token), inside, "{token}");
        }
        assert!(in_ranges(&ranges, u64::MAX));
        assert!(!in_ranges(&[], 5));
    }

    #[test]
    fn a_plan_round_trips_through_its_file_and_garbage_is_refused() {
        let plan = Plan {
            pulls: vec![
                Pull {
                    source: NodeId::new(0xab),
                    ranges: vec![(0, 0xff), (0x1000, u64::MAX)],
                    cursor: 77,
                    done: false,
                },
                Pull {
                    source: NodeId::new(3),
                    ranges: vec![(5, 6)],
                    cursor: 0,
                    done: true,
                },
            ],
        };
        assert_eq!(Plan::decode(&plan.encode()), Some(plan));
        assert_eq!(Plan::decode("pull x 1 0 1-2\n"), None);
        // The format before walks lost their fallbacks resumes, the fallbacks dropped.
        let old = Plan::decode("pull 3 7 0 1,2 1-2\n").expect("the old format");
        assert_eq!(
            (old.pulls[0].cursor, old.pulls[0].ranges.clone()),
            (7, vec![(1, 2)])
        );
        assert_eq!(Plan::decode("something else\n"), None);
    }

    fn walked(plan: &Plan) -> u128 {
        plan.pulls
            .iter()
            .flat_map(|p| p.ranges.iter())
            .map(|(f, l)| u128::from(l - f) + 1)
            .sum()
    }

    #[test]
    fn a_join_pulls_each_range_from_its_loser_and_waits_while_one_is_down() {
        let old = Ring::new(ids(1..6), 32);
        let new = Ring::new(ids(1..7), 32);
        let joiner = NodeId::new(6);
        let moved = moved_ranges(&old, &new, 3);
        let plan = Plan::for_join(&moved, joiner, |_| true).expect("every loser up");
        let gained: u128 = moved.iter().map(Moved::width).sum();
        assert_eq!(walked(&plan), gained, "each range from exactly one source");
        for pull in &plan.pulls {
            for &(first, last) in &pull.ranges {
                let m = moved.iter().find(|m| m.first == first && m.last == last);
                assert_eq!(m.map(Moved::losers), Some(vec![pull.source]));
            }
        }
        // A loser down: another replica may lack a write only it acknowledged.
        assert_eq!(
            Plan::for_join(&moved, joiner, |n| n != NodeId::new(3)),
            None
        );
    }

    #[test]
    fn two_joining_nodes_pull_a_range_from_both_its_losers() {
        let old = Ring::new(ids(1..6), 32);
        let new = Ring::new(ids(1..8), 32);
        let joiner = NodeId::new(6);
        let moved = moved_ranges(&old, &new, 3);
        let plan = Plan::gains(&moved, joiner);
        let two = moved
            .iter()
            .find(|m| m.gainers().contains(&joiner) && m.losers().len() == 2)
            .expect("a range two nodes take from two losers");
        let sources: Vec<NodeId> = plan
            .pulls
            .iter()
            .filter(|p| p.ranges.contains(&(two.first, two.last)))
            .map(|p| p.source)
            .collect();
        let mut losers = two.losers();
        losers.sort_unstable();
        assert_eq!(sources, losers);
    }

    #[test]
    fn a_ring_smaller_than_n_grows_by_pulling_from_every_old_replica() {
        let old = Ring::new(ids(1..3), 16);
        let new = Ring::new(ids(1..4), 16);
        let joiner = NodeId::new(3);
        let moved = moved_ranges(&old, &new, 3);
        let plan = Plan::gains(&moved, joiner);
        let sources: Vec<NodeId> = plan.pulls.iter().map(|p| p.source).collect();
        assert_eq!(sources, ids(1..3));
        assert_eq!(
            walked(&plan),
            2 * moved.iter().map(Moved::width).sum::<u128>()
        );
    }

    #[test]
    fn a_forgotten_members_ranges_come_from_every_other_old_replica() {
        let old = Ring::new(ids(1..6), 16);
        let new = Ring::new(ids(2..6), 16);
        let moved = moved_ranges(&old, &new, 3);
        let gone = [NodeId::new(1)];
        let local = NodeId::new(4);
        let plan = Plan::takeover(&moved, local, &gone);
        assert!(!plan.pulls.is_empty());
        for m in moved.iter().filter(|m| m.gainers().contains(&local)) {
            let sources: Vec<NodeId> = plan
                .pulls
                .iter()
                .filter(|p| p.ranges.contains(&(m.first, m.last)))
                .map(|p| p.source)
                .collect();
            let others: Vec<NodeId> = m
                .old
                .iter()
                .copied()
                .filter(|n| *n != local && !gone.contains(n))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(sources, others, "{m:?}");
        }
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
