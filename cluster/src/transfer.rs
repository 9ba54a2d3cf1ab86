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
    /// Other replicas of these ranges, asked instead if the source dies.
    pub fallback: Vec<NodeId>,
    /// Where the walk resumes (0 at the start).
    pub cursor: u64,
    /// The walk is complete.
    pub done: bool,
}

/// A joining node's pulls: which stores it walks for which ranges, and how far each walk
/// got (kept in the data dir, so a join resumes after a crash).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The walks, in the order they run.
    pub pulls: Vec<Pull>,
}

impl Plan {
    /// Pulls for the ranges `local` gains: each from its loser if there is one and it is up,
    /// else from every old replica up (so a quorum-acknowledged write is found). A range none of whose replicas
    /// looks up is pulled from all of them: each walk waits for its source or fails over,
    /// where leaving the range out would let the join finish without it.
    pub fn gains(moved: &[Moved], local: NodeId, is_up: impl Fn(NodeId) -> bool) -> Plan {
        // One walk per source, whatever the ranges: every walk reads the source's whole
        // store. Its fallback is every other replica of any of its ranges (one that is not a
        // replica of a range simply has nothing in it).
        let mut by_source: BTreeMap<NodeId, (Ranges, Vec<NodeId>)> = BTreeMap::new();
        for m in moved.iter().filter(|m| m.gainers().contains(&local)) {
            let others: Vec<NodeId> = m.old.iter().copied().filter(|&n| n != local).collect();
            let losers: Vec<NodeId> = m.losers().into_iter().filter(|&n| n != local).collect();
            // One loser up: it held every write a quorum acknowledged with it, and the
            // others stay. Otherwise (it is down, or several nodes join at once and two
            // replicas drop out) every live old replica, so that no acknowledged write is
            // missed.
            let mut sources: Vec<NodeId> = match losers.as_slice() {
                [loser] if is_up(*loser) => vec![*loser],
                _ => others.iter().copied().filter(|&n| is_up(n)).collect(),
            };
            if sources.is_empty() {
                sources.clone_from(&others);
            }
            for source in sources {
                let (ranges, fallback) = by_source.entry(source).or_default();
                ranges.push((m.first, m.last));
                fallback.extend(others.iter().copied().filter(|&n| n != source));
                fallback.sort_unstable();
                fallback.dedup();
            }
        }
        Plan {
            pulls: by_source
                .into_iter()
                .map(|(source, (ranges, fallback))| Pull {
                    source,
                    ranges,
                    fallback,
                    cursor: 0,
                    done: false,
                })
                .collect(),
        }
    }

    /// Whether a join can be planned now without missing an acknowledged write: for every
    /// range `local` gains, its single loser is up, or a majority of its old replicas is up
    /// (a quorum write was acknowledged by a majority, so one of those is among them). With
    /// fewer, the writes only the down ones acknowledged would not be streamed: wait.
    pub fn can_plan(moved: &[Moved], local: NodeId, is_up: impl Fn(NodeId) -> bool) -> bool {
        moved
            .iter()
            .filter(|m| m.gainers().contains(&local))
            .all(|m| {
                let losers: Vec<NodeId> = m.losers().into_iter().filter(|&n| n != local).collect();
                if let [loser] = losers.as_slice()
                    && is_up(*loser)
                {
                    return true;
                }
                let old: Vec<NodeId> = m.old.iter().copied().filter(|&n| n != local).collect();
                let up = old.iter().filter(|&&n| is_up(n)).count();
                up > old.len() / 2
            })
    }

    /// Ranges whose walk is not complete.
    pub fn ranges_pending(&self) -> u64 {
        self.pulls
            .iter()
            .filter(|p| !p.done)
            .map(|p| p.ranges.len() as u64)
            .sum()
    }

    /// The source of walk `index` is dead: the walk ends, and each of its fallbacks but
    /// `local` walks the same ranges from the start instead (each, because one of them alone
    /// may lack a write that the dead source and another acknowledged). Returns how many
    /// walks were added.
    /// A walk without fallbacks stays as it is, to be retried until its source is back
    /// (or the caller gives it up, when the source is no longer a member).
    pub fn fail_over(&mut self, index: usize, local: NodeId) -> usize {
        let dead = self.pulls[index].clone();
        if dead.fallback.iter().all(|&n| n == local) {
            return 0;
        }
        self.pulls[index].done = true;
        let mut added = 0;
        for fallback in dead.fallback.iter().copied().filter(|&n| n != local) {
            self.pulls.push(Pull {
                source: fallback,
                ranges: dead.ranges.clone(),
                fallback: Vec::new(),
                cursor: 0,
                done: false,
            });
            added += 1;
        }
        added
    }

    /// The plan as text, one walk a line, for the data dir.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        for pull in &self.pulls {
            let ids = |ids: &[NodeId]| {
                ids.iter()
                    .map(NodeId::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            text.push_str(&format!(
                "pull {} {} {} {} {}\n",
                pull.source,
                pull.cursor,
                u8::from(pull.done),
                match ids(&pull.fallback).as_str() {
                    "" => "-".to_string(),
                    list => list.to_string(),
                },
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
            let ["pull", source, cursor, done, fallback, ranges] = fields.as_slice() else {
                return None;
            };
            let fallback = match *fallback {
                "-" => Vec::new(),
                list => list
                    .split(',')
                    .map(|id| id.parse().ok())
                    .collect::<Option<_>>()?,
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
                fallback,
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
                    fallback: vec![NodeId::new(1), NodeId::new(2)],
                    cursor: 77,
                    done: false,
                },
                Pull {
                    source: NodeId::new(3),
                    ranges: vec![(5, 6)],
                    fallback: Vec::new(),
                    cursor: 0,
                    done: true,
                },
            ],
        };
        assert_eq!(Plan::decode(&plan.encode()), Some(plan));
        assert_eq!(Plan::decode("pull x 1 0 - 1-2\n"), None);
        assert_eq!(Plan::decode("something else\n"), None);
    }

    #[test]
    fn a_join_pulls_from_the_loser_when_up_else_from_every_other_replica() {
        let old = Ring::new(ids(1..6), 32);
        let new = Ring::new(ids(1..7), 32);
        let joiner = NodeId::new(6);
        let moved = moved_ranges(&old, &new, 3);
        let plan = Plan::gains(&moved, joiner, |_| true);
        let walked: u128 = plan
            .pulls
            .iter()
            .flat_map(|p| p.ranges.iter())
            .map(|(f, l)| u128::from(l - f) + 1)
            .sum();
        let gained: u128 = moved.iter().map(Moved::width).sum();
        assert_eq!(walked, gained, "each range from exactly one source");
        let down = NodeId::new(3);
        let mut plan = Plan::gains(&moved, joiner, |n| n != down);
        assert!(plan.pulls.iter().all(|p| p.source != down));
        let from_two: u128 = plan
            .pulls
            .iter()
            .flat_map(|p| p.ranges.iter())
            .map(|(f, l)| u128::from(l - f) + 1)
            .sum();
        assert!(
            from_two > gained,
            "ranges node 3 loses come from both other replicas"
        );
        let first = plan.pulls[0].clone();
        let added = plan.fail_over(0, joiner);
        assert!(plan.pulls[0].done);
        assert_eq!(added, first.fallback.len());
    }

    #[test]
    fn a_join_that_sees_no_replica_up_still_plans_every_range_it_gains() {
        let old = Ring::new(ids(1..4), 16);
        let new = Ring::new(ids(1..5), 16);
        let joiner = NodeId::new(4);
        let moved = moved_ranges(&old, &new, 3);
        let plan = Plan::gains(&moved, joiner, |_| false);
        for m in moved.iter().filter(|m| m.gainers().contains(&joiner)) {
            let covered = plan
                .pulls
                .iter()
                .any(|p| p.ranges.contains(&(m.first, m.last)));
            assert!(covered, "{m:?} is in no pull of {plan:?}");
        }
    }

    #[test]
    fn a_join_waits_while_a_majority_of_a_ranges_old_replicas_is_down() {
        let old = Ring::new(ids(1..6), 32);
        let new = Ring::new(ids(1..7), 32);
        let joiner = NodeId::new(6);
        let moved = moved_ranges(&old, &new, 3);
        assert!(Plan::can_plan(&moved, joiner, |_| true));
        // One node down: every range keeps its loser up, or two of three old replicas.
        assert!(Plan::can_plan(&moved, joiner, |n| n != NodeId::new(2)));
        // Two down: some range the joiner gains lost its loser and one more.
        let two_down = |n: NodeId| n != NodeId::new(2) && n != NodeId::new(3);
        assert!(!Plan::can_plan(&moved, joiner, two_down));
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
