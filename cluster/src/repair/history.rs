//! Each range's last complete repair, and the tombstone horizon that follows from it.
//!
//! A range is known by its last token, its first token and its sorted replicas as the ring
//! had them when the round ran: once the ring gives the range other bounds or other replicas,
//! it is another range, never repaired, and keeps its tombstones until a round covers it.

use std::collections::HashMap;

use ringcache_storage::TombstoneHorizon;

use super::range_spans;
use crate::ring::{NodeId, Ring, TokenRange};

/// A range's last round that reached every replica.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Repaired {
    /// The range's first token (exclusive), as the ring was then.
    start: u64,
    /// When the round started, unix ms.
    started_ms: u64,
    /// The range's replicas then, sorted.
    replicas: Vec<NodeId>,
}

/// A range as a round saw it: first token (exclusive), last token, and the
/// [`replicas_hash`] of its sorted replicas.
pub type RangeId = (u64, u64, u64);

/// How far before a range's last complete round a tombstone must be to go: the clock offset
/// tolerated plus the longest a write can be on its way, a write's timeout or (a hint can
/// carry an older write for that long) the hint window.
pub const fn tombstone_margin_ms(
    max_clock_offset_ms: u64,
    write_timeout_ms: u64,
    hint_window_ms: u64,
) -> u64 {
    let in_flight = if write_timeout_ms > hint_window_ms {
        write_timeout_ms
    } else {
        hint_window_ms
    };
    max_clock_offset_ms + in_flight
}

/// A hash naming a set of replicas (sorted), so that a range's identity fits in a message.
pub fn replicas_hash(sorted: &[NodeId]) -> u64 {
    let bytes: Vec<u8> = sorted
        .iter()
        .flat_map(|id| id.get().to_le_bytes())
        .collect();
    twox_hash::XxHash3_64::oneshot(&bytes)
}

/// The identity of `range` in `ring` with `n` replicas.
pub fn range_id(ring: &Ring, range: &TokenRange, n: usize) -> RangeId {
    let mut replicas: Vec<NodeId> = ring.preference_list(range.end, n).to_vec();
    replicas.sort_unstable();
    (range.start, range.end, replicas_hash(&replicas))
}

/// The ranges of `ring` that `me` replicates with `n` replicas, each with its sorted replicas.
pub fn my_ranges(ring: &Ring, n: usize, me: NodeId) -> Vec<(TokenRange, Vec<NodeId>)> {
    ring.ranges()
        .map(|range| {
            let mut replicas: Vec<NodeId> = ring.preference_list(range.end, n).to_vec();
            replicas.sort_unstable();
            (range, replicas)
        })
        .filter(|(_, replicas)| replicas.contains(&me))
        .collect()
}

/// When each range was last repaired with every replica.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairHistory {
    /// By the range's last token.
    repaired: HashMap<u64, Repaired>,
}

impl RepairHistory {
    /// Records that `ranges` (as a round saw them) were repaired with every replica by a round
    /// that started at `started_ms`. Only a range `me` replicates in `ring` with the same
    /// bounds and replicas counts: a round over another ring repaired another range. A time
    /// is never moved back. Returns whether anything changed.
    pub fn record(
        &mut self,
        ring: &Ring,
        n: usize,
        me: NodeId,
        ranges: &[RangeId],
        started_ms: u64,
    ) -> bool {
        let mine: HashMap<u64, (TokenRange, Vec<NodeId>)> = my_ranges(ring, n, me)
            .into_iter()
            .map(|(range, replicas)| (range.end, (range, replicas)))
            .collect();
        let mut changed = false;
        for &(start, end, replicas_id) in ranges {
            let Some((range, replicas)) = mine.get(&end) else {
                continue;
            };
            if range.start != start || replicas_hash(replicas) != replicas_id {
                continue;
            }
            if self.last_repair(range, replicas) >= Some(started_ms) {
                continue;
            }
            self.repaired.insert(
                end,
                Repaired {
                    start: range.start,
                    started_ms,
                    replicas: replicas.clone(),
                },
            );
            changed = true;
        }
        changed
    }

    /// When `range` (with these sorted replicas) was last repaired with every replica; `None`
    /// if never, or not with these bounds and replicas.
    pub fn last_repair(&self, range: &TokenRange, replicas: &[NodeId]) -> Option<u64> {
        self.repaired
            .get(&range.end)
            .filter(|r| r.start == range.start && r.replicas == replicas)
            .map(|r| r.started_ms)
    }

    /// Before when tombstones of each range `me` replicates may be dropped: the start of its
    /// last complete round (never later than `now_ms`: a clock that ran ahead must not let
    /// everything go) less `margin_ms` (the clock offset tolerated plus the longest a write
    /// can still be on its way: its timeout, or a hint's window). A range never repaired with
    /// its current replicas keeps every tombstone.
    pub fn horizon(
        &self,
        ring: &Ring,
        n: usize,
        me: NodeId,
        margin_ms: u64,
        now_ms: u64,
    ) -> TombstoneHorizon {
        let mut spans = Vec::new();
        for (range, replicas) in my_ranges(ring, n, me) {
            if let Some(started_ms) = self.last_repair(&range, &replicas) {
                let before_ms = started_ms.min(now_ms).saturating_sub(margin_ms);
                spans.extend(
                    range_spans(&range)
                        .into_iter()
                        .map(|(f, l)| (f, l, before_ms)),
                );
            }
        }
        TombstoneHorizon::by_span(spans)
    }

    /// Forgets every repair (the store was emptied).
    pub fn clear(&mut self) {
        self.repaired.clear();
    }

    /// One line per range, `end start started_ms id,id,...` (hex tokens), to keep in a file.
    pub fn encode(&self) -> String {
        let mut ends: Vec<&u64> = self.repaired.keys().collect();
        ends.sort_unstable();
        let mut text = String::new();
        for end in ends {
            let r = &self.repaired[end];
            let ids: Vec<String> = r.replicas.iter().map(NodeId::to_string).collect();
            text.push_str(&format!(
                "{end:x} {:x} {} {}\n",
                r.start,
                r.started_ms,
                ids.join(",")
            ));
        }
        text
    }

    /// Reads what [`RepairHistory::encode`] wrote; a line that does not parse is skipped (its
    /// range then counts as never repaired, which keeps tombstones: the safe side).
    pub fn decode(text: &str) -> RepairHistory {
        let repaired = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split(' ');
                let end = u64::from_str_radix(fields.next()?, 16).ok()?;
                let start = u64::from_str_radix(fields.next()?, 16).ok()?;
                let started_ms = fields.next()?.parse().ok()?;
                let replicas = fields
                    .next()?
                    .split(',')
                    .map(|id| id.parse().ok())
                    .collect::<Option<Vec<NodeId>>>()?;
                Some((
                    end,
                    Repaired {
                        start,
                        started_ms,
                        replicas,
                    },
                ))
            })
            .collect();
        RepairHistory { repaired }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn ring(ids: &[u64]) -> Ring {
        Ring::new(ids.iter().map(|&id| NodeId::new(id)), 8)
    }

    #[test]
    fn a_repaired_range_has_a_horizon_and_others_keep_their_tombstones() {
        let ring = ring(&[1, 2, 3, 4]);
        let me = NodeId::new(1);
        let mine = my_ranges(&ring, 3, me);
        let (first, _) = mine[0];
        let id = range_id(&ring, &first, 3);
        let mut history = RepairHistory::default();
        assert!(history.record(&ring, 3, me, &[id], 10_000));
        let horizon = history.horizon(&ring, 3, me, 1_000, NOW);
        assert_eq!(horizon.before_ms(first.end), 9_000);
        assert_eq!(horizon.before_ms(mine[1].0.end), 0);
        // Never moved back.
        assert!(!history.record(&ring, 3, me, &[id], 5_000));
        let at =
            |history: &RepairHistory| history.horizon(&ring, 3, me, 0, NOW).before_ms(first.end);
        assert_eq!(at(&history), 10_000);
        // A time ahead of this node's clock counts as now.
        assert!(history.record(&ring, 3, me, &[id], NOW + 60_000));
        assert_eq!(at(&history), NOW);
    }

    #[test]
    fn a_ring_change_makes_a_range_unrepaired() {
        let before = ring(&[1, 2, 3, 4]);
        let me = NodeId::new(1);
        let mut history = RepairHistory::default();
        let ids: Vec<RangeId> = my_ranges(&before, 3, me)
            .iter()
            .map(|(r, _)| range_id(&before, r, 3))
            .collect();
        history.record(&before, 3, me, &ids, 10_000);
        let after = ring(&[1, 2, 3, 4, 5]);
        let kept = my_ranges(&after, 3, me)
            .iter()
            .filter(|(r, replicas)| history.last_repair(r, replicas).is_some())
            .count();
        assert!(
            kept < my_ranges(&after, 3, me).len(),
            "a new member changes some ranges"
        );
    }

    #[test]
    fn a_round_over_other_replicas_does_not_count() {
        let ring = ring(&[1, 2, 3, 4]);
        let me = NodeId::new(1);
        let (range, _) = my_ranges(&ring, 3, me)[0];
        let (start, end, _) = range_id(&ring, &range, 3);
        let other = replicas_hash(&[NodeId::new(1), NodeId::new(7), NodeId::new(9)]);
        let mut history = RepairHistory::default();
        assert!(!history.record(&ring, 3, me, &[(start, end, other)], 10_000));
        assert!(!history.record(
            &ring,
            3,
            me,
            &[(start + 1, end, range_id(&ring, &range, 3).2)],
            10_000
        ));
        assert_eq!(history.horizon(&ring, 3, me, 0, NOW).before_ms(end), 0);
    }

    #[test]
    fn the_history_reads_back_and_bad_lines_are_skipped() {
        let ring = ring(&[1, 2, 3]);
        let me = NodeId::new(2);
        let mut history = RepairHistory::default();
        let ids: Vec<RangeId> = my_ranges(&ring, 3, me)
            .iter()
            .map(|(r, _)| range_id(&ring, r, 3))
            .collect();
        history.record(&ring, 3, me, &ids, 1_700_000_000_000);
        let text = history.encode() + "garbage\nff 1 x 1\n";
        assert_eq!(RepairHistory::decode(&text), history);
    }
}
