//! The replica path: how this node, as a replica, answers a read and takes a record. Every
//! record that reaches the store from the cluster goes through [`Replica::apply`]: the
//! coordinator's local leg and a peer's `Write` (the remote leg) alike, hints replayed,
//! streaming and anti-entropy; every replica read goes through [`Replica::read`].
//!
//! The checks, in order:
//! 1. **Clock skew** (coordinator writes of another node's version only): a version further
//!    ahead of this node's wall clock than `--max-clock-offset-ms` is refused
//!    ([`too_far_ahead`]), so one node's runaway clock cannot make its writes win over every
//!    later one. A version this node's own clock issued is not checked here: its clock may
//!    run ahead of its wall clock by versions it observed unchecked (streamed or repaired
//!    records, the read half of a read-modify-write, the high-water mark kept over a
//!    restart), and refusing its own write on the local leg would leave its replica without
//!    a write the peers acknowledged, and without a hint. The coordinator's own skew is
//!    checked before it writes at all (`Cluster::check_clock`), against its peers'.
//! 2. **Flush**: a record no newer than the last cluster flush is dead; it is acknowledged
//!    and not kept.
//! 3. **Eviction** (repair only): see [`Source::Repair`].
//! 4. The clock **observes** the version, and the store **merges** the record.
//!
//! Also here: the store walks the peer server answers with (keys of a scan, records of
//! stream ranges), and the flush time that check 2 reads.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use ringcache_cluster::HybridClock;
use ringcache_cluster::hlc::too_far_ahead;
use ringcache_cluster::protocol::message::STREAM_KEYS_MAX;
use ringcache_cluster::transfer::in_ranges;
use ringcache_storage::{DataType, Record, Store, Value, Version, key_token};

use super::error::ReplicaError;
use super::stats::ClusterStats;

/// Above this share of `maxmemory`, a node takes no value from repair for a key it does not
/// hold (it evicted it): repair would refill what eviction empties, in a loop.
pub const EVICTED_REFILL_LIMIT: f64 = 0.95;

/// Where a record to apply comes from: decides which checks it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A coordinator's write: the local or the remote leg of a round, a read repair, a hint
    /// replayed. Its version is checked against this node's clock.
    Coordinator,
    /// Streaming (join, take-over, decommission pushes come as coordinator writes): a record
    /// another replica holds already. Not checked for skew: it was accepted once, and
    /// refusing it would lose a write a quorum acknowledged.
    Stream,
    /// Anti-entropy: as [`Source::Stream`]; and above [`EVICTED_REFILL_LIMIT`] of
    /// `maxmemory_bytes` a live value for a key this node does not hold is refused (it
    /// evicted the key; taking it back would only evict another). A tombstone is always
    /// taken.
    Repair {
        /// `maxmemory` now (0: no limit).
        maxmemory_bytes: u64,
    },
}

/// What [`Replica::apply`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The store changed: the record was new here, or newer.
    Changed,
    /// The store held it already at that version or newer.
    Unchanged,
    /// It is no newer than the last cluster flush: dead, not kept (and acknowledged).
    Flushed,
    /// Repair's eviction rule refused it ([`Source::Repair`]).
    RefusedEvicted,
}

/// This node's side as a replica: its store and clock, the flush time, the skew limit.
pub struct Replica {
    /// Where records live (shared with the node).
    pub store: Arc<dyn Store>,
    /// Issues and observes versions (shared with the node).
    pub clock: Arc<HybridClock>,
    max_clock_offset_ms: u64,
    /// The newest cluster flush time applied here.
    flush_hlc: AtomicU64,
    stats: Arc<ClusterStats>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("flush_hlc", &self.flushed_before())
            .finish()
    }
}

impl Replica {
    /// The replica over `store` and `clock`, refusing coordinator versions more than
    /// `max_clock_offset_ms` ahead, with the flush time kept in the data dir; skew refusals
    /// are counted in `stats`.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<HybridClock>,
        max_clock_offset_ms: u64,
        flush_hlc: u64,
        stats: Arc<ClusterStats>,
    ) -> Replica {
        Replica {
            store,
            clock,
            max_clock_offset_ms,
            flush_hlc: AtomicU64::new(flush_hlc),
            stats,
        }
    }

    /// Answers a read of `key` (both legs of a read round): the stored record, its version
    /// observed so this node's next versions are newer.
    pub fn read(&self, key: &[u8], now_ms: u64) -> Option<Record> {
        let record = self.store.get(key, now_ms);
        if let Some(record) = &record {
            self.clock.observe(record.version());
        }
        record
    }

    /// Applies `record` to `key` as a replica: the checks of the module doc, in order.
    ///
    /// # Errors
    /// [`ReplicaError::ClockSkew`] (coordinator writes only; nothing written, the clock not
    /// moved, the refusal counted), or the store's refusal.
    pub fn apply(
        &self,
        key: &Bytes,
        record: &Record,
        now_ms: u64,
        source: Source,
    ) -> Result<Applied, ReplicaError> {
        if source == Source::Coordinator && record.version().node != self.clock.node() {
            let max_ms = self.max_clock_offset_ms;
            if let Some(ahead_ms) = too_far_ahead(record.version(), now_ms, max_ms) {
                self.stats.clock_skew_refusals.fetch_add(1, Relaxed);
                return Err(ReplicaError::ClockSkew { ahead_ms, max_ms });
            }
        }
        if !self.survives_flush(record) {
            return Ok(Applied::Flushed);
        }
        let flushed;
        let record = match self.without_flushed_cells(record) {
            Some(cleared) => {
                flushed = cleared;
                &flushed
            }
            None => record,
        };
        if let Source::Repair { maxmemory_bytes } = source
            && maxmemory_bytes > 0
            && self.store.used_bytes() as f64 > maxmemory_bytes as f64 * EVICTED_REFILL_LIMIT
            && record.is_live(now_ms)
            && self.store.peek(key, now_ms).is_none()
        {
            return Ok(Applied::RefusedEvicted);
        }
        self.clock.observe(record.version());
        match self.store.merge(key, record)? {
            true => Ok(Applied::Changed),
            false => Ok(Applied::Unchanged),
        }
    }

    /// The flush time: records no newer than it are dead (FLUSHALL in a cluster).
    pub fn flushed_before(&self) -> u64 {
        self.flush_hlc.load(Relaxed)
    }

    /// Whether a record sent here (a write, a repair, a hint) survives the last flush.
    pub fn survives_flush(&self, record: &Record) -> bool {
        record.version().hlc > self.flushed_before()
    }

    /// A collection written after the last flush may still carry cells from before it (a
    /// repair sends whole collections): those are dead like every record the flush killed.
    /// `None` when nothing needs dropping.
    pub fn without_flushed_cells(&self, record: &Record) -> Option<Record> {
        let flushed = self.flushed_before();
        if flushed == 0 || !record.kind.is_collection() {
            return None;
        }
        let collection = record.cells()?;
        let flush = Version {
            hlc: flushed,
            node: u32::MAX,
        };
        if collection.clear() >= flush {
            return None;
        }
        let mut collection = collection.clone();
        collection.clear_to(flush);
        Some(Record {
            value: Some(Value::Cells(Arc::new(collection))),
            ..record.clone()
        })
    }

    /// Raises the flush time to `hlc`; whether it was older (see [`super::flush`]).
    pub fn raise_flush(&self, hlc: u64) -> bool {
        self.flush_hlc.fetch_max(hlc, Relaxed) < hlc
    }

    /// Live keys (of type `kind`, when given) of this node's store in token order from
    /// `from`, about `count` of them, and where the walk goes on (0: done).
    pub fn scan(
        &self,
        from: u64,
        count: usize,
        kind: Option<DataType>,
        now_ms: u64,
    ) -> (u64, Vec<Bytes>) {
        let mut keys = Vec::new();
        let next = self
            .store
            .scan(from, count.max(1), now_ms, &mut |key, record| {
                if record.is_live(now_ms) && kind.is_none_or(|k| k.name() == record.kind.name()) {
                    keys.push(key.clone());
                }
            });
        (next, keys)
    }

    /// Answers a stream read: walks about `count` records of the store from `cursor` and
    /// returns those in `ranges`, tombstones included (a delete must move with the data).
    pub fn read_ranges(
        &self,
        cursor: u64,
        count: u32,
        ranges: &[(u64, u64)],
        now_ms: u64,
    ) -> (u64, Vec<(Bytes, Record)>) {
        let mut sorted = ranges.to_vec();
        sorted.sort_unstable();
        let mut records = Vec::new();
        let count = (count as usize).clamp(1, STREAM_KEYS_MAX);
        let next = self.store.scan(cursor, count, now_ms, &mut |key, record| {
            if in_ranges(&sorted, key_token(key)) && records.len() < STREAM_KEYS_MAX {
                records.push((key.clone(), record.clone()));
            }
        });
        (next, records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcache_storage::{MemoryStore, Version};

    const MAX_OFFSET_MS: u64 = 500;
    const NOW_MS: u64 = 1_000_000;

    fn replica() -> Replica {
        Replica::new(
            Arc::new(MemoryStore::new()),
            Arc::new(HybridClock::new(7)),
            MAX_OFFSET_MS,
            0,
            Arc::new(ClusterStats::default()),
        )
    }

    fn at_ms(ms: u64) -> Version {
        Version {
            hlc: ms << Version::LOGICAL_BITS,
            node: 9,
        }
    }

    fn value(version: Version) -> Record {
        Record::new(Bytes::from_static(b"v"), None, version)
    }

    fn key() -> Bytes {
        Bytes::from_static(b"k")
    }

    #[test]
    fn a_coordinator_version_too_far_ahead_is_refused_and_moves_nothing() {
        let replica = replica();
        let ahead = value(at_ms(NOW_MS + MAX_OFFSET_MS + 1));
        let outcome = replica.apply(&key(), &ahead, NOW_MS, Source::Coordinator);
        assert!(matches!(
            outcome,
            Err(ReplicaError::ClockSkew {
                ahead_ms: 501,
                max_ms: MAX_OFFSET_MS
            })
        ));
        assert_eq!(replica.store.peek(b"k", NOW_MS), None);
        assert_eq!(replica.clock.high_water(), 0);
        assert_eq!(replica.stats.clock_skew_refusals.load(Relaxed), 1);
    }

    #[test]
    fn a_version_this_nodes_clock_issued_passes_even_after_it_saw_the_furthest_accepted() {
        let replica = replica();
        // The furthest ahead a replica accepts, seen by this node's clock...
        let furthest = value(at_ms(NOW_MS + MAX_OFFSET_MS));
        assert_eq!(
            replica
                .apply(&key(), &furthest, NOW_MS, Source::Coordinator)
                .unwrap(),
            Applied::Changed
        );
        // ...so its next version is still within the limit of its own wall clock.
        let own = value(replica.clock.next(NOW_MS));
        let outcome = replica.apply(&Bytes::from_static(b"o"), &own, NOW_MS, Source::Coordinator);
        assert_eq!(outcome.unwrap(), Applied::Changed);
    }

    #[test]
    fn a_version_this_nodes_clock_issued_passes_after_it_observed_a_streamed_one_far_ahead() {
        let replica = replica();
        // A streamed record is not checked, and the clock observes it: 2 s ahead.
        let streamed = value(at_ms(NOW_MS + 4 * MAX_OFFSET_MS));
        let outcome = replica.apply(&key(), &streamed, NOW_MS, Source::Stream);
        assert_eq!(outcome.unwrap(), Applied::Changed);
        // The local leg of this node's next write takes it (its peers may refuse it; then
        // the round fails there, not silently here).
        let own = value(replica.clock.next(NOW_MS));
        assert!(too_far_ahead(own.version(), NOW_MS, MAX_OFFSET_MS).is_some());
        let outcome = replica.apply(&key(), &own, NOW_MS, Source::Coordinator);
        assert_eq!(outcome.unwrap(), Applied::Changed);
        assert_eq!(replica.store.peek(b"k", NOW_MS), Some(own));
    }

    #[test]
    fn a_record_no_newer_than_the_flush_is_acknowledged_and_not_kept() {
        let replica = replica();
        assert!(replica.raise_flush(at_ms(NOW_MS).hlc));
        let old = value(at_ms(NOW_MS - 1));
        let outcome = replica.apply(&key(), &old, NOW_MS, Source::Coordinator);
        assert_eq!(outcome.unwrap(), Applied::Flushed);
        assert_eq!(replica.store.peek(b"k", NOW_MS), None);
    }

    #[test]
    fn streamed_and_repaired_records_are_not_checked_for_skew() {
        let replica = replica();
        let ahead = value(at_ms(NOW_MS + 10 * MAX_OFFSET_MS));
        let streamed = replica.apply(&key(), &ahead, NOW_MS, Source::Stream);
        assert_eq!(streamed.unwrap(), Applied::Changed);
        let repaired = Source::Repair { maxmemory_bytes: 0 };
        let again = replica.apply(&key(), &ahead, NOW_MS, repaired);
        assert_eq!(again.unwrap(), Applied::Unchanged);
    }

    #[test]
    fn repair_does_not_refill_an_evicted_key_above_the_limit_but_takes_tombstones() {
        let replica = replica();
        let held = value(at_ms(NOW_MS - 10));
        replica
            .apply(&key(), &held, NOW_MS, Source::Stream)
            .unwrap();
        let full = Source::Repair { maxmemory_bytes: 1 };
        let other = Bytes::from_static(b"evicted");
        let refill = replica.apply(&other, &value(at_ms(NOW_MS - 5)), NOW_MS, full);
        assert_eq!(refill.unwrap(), Applied::RefusedEvicted);
        let tombstone = Record::tombstone(at_ms(NOW_MS - 5));
        let outcome = replica.apply(&other, &tombstone, NOW_MS, full);
        assert_eq!(outcome.unwrap(), Applied::Changed);
    }
}
