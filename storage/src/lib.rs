//! Storage for ringcache: the record model and the engines that keep records.
//!
//! - [`record`]: a key's [`Record`], a value cell and an expiry cell with a [`Version`] each.
//! - [`collection`]: hashes, sets, sorted sets and lists as cells merged one by one.
//! - [`ranked`]: [`RankedSet`], a copy-on-write B+ tree with subtree sizes: rank, select
//!   and counts between bounds in O(log n), for the sorted sets' score index.
//! - [`token`]: the stable hash that places a key on the ring; engines order keys by it.
//! - [`memory`]: the in-memory engine, [`MemoryStore`].
//! - [`log`]: the log-structured engine on memory-mapped segment files, [`LogStore`].
//! - [`hints`]: the durable hint log of hinted handoff, [`Hints`]: missed writes per target.
//! - [`expired`]: [`ExpiredKeys`], the keys reclaimed on expiry, for `expired` events.
//! - [`eviction`]: `maxmemory-policy` ([`EvictionPolicy`]), Redis's approximated LRU and LFU.
//! - [`aae`]: anti-entropy's [`MerkleLeaves`] and the per-range [`TombstoneHorizon`].
//! - [`error`]: [`StoreError`], saying what happened to the data.
//! - `clock`: the wall clock, for the calls that carry no `now_ms`.
//! - `shard`: both engines' shards by the token's top bits, so a shard is a token range.
//! - `shard_guard`: a shard lock guard that publishes the shard's `used_bytes` on release.
//! - `testing` (tests only): the model operations and checks both engines' tests share.
//!
//! Engines sit behind the narrow [`Store`] trait so the server and the cluster never depend
//! on how records are kept.

pub mod aae;
mod clock;
pub mod collection;
pub mod error;
pub mod eviction;
pub mod expired;
pub mod hints;
pub mod hll;
pub mod log;
pub mod memory;
pub mod ranked;
pub mod record;
mod shard;
mod shard_guard;
pub mod token;

pub use aae::{MerkleLeaves, TombstoneHorizon};
pub use collection::{Cell, Collection, Summary};
pub use error::StoreError;
pub use eviction::{EvictedKey, EvictionPolicy};
pub use expired::{EXPIRED_KEYS_QUEUED_MAX, ExpiredKeys};
pub use hints::{
    Hint, HintBatch, HintError, HintOptions, HintPosition, HintRecovery, HintStats, Hints,
    TargetHintStats,
};
pub use log::{FsyncPolicy, LogError, LogOptions, LogStats, LogStore, RecoveryReport};
pub use memory::MemoryStore;
pub use ranked::RankedSet;
pub use record::{DataType, Record, Value, Version};
pub use token::key_token;

use bytes::Bytes;

/// What a read-modify-write closure decides, given the key's current record.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Leave the key as it is.
    Keep,
    /// Replace the record with this one, whose changed cells carry versions newer than the
    /// current record's.
    Put(Record),
}

/// An in-place edit run on a copy, as an [`Update`]: `edit` gets the current record (or
/// `Record::default()`) and the copy is put if it changed it. What `update_in_place` does
/// where the record cannot be lent.
pub fn edit_copy(current: Option<&Record>, edit: &mut dyn FnMut(&mut Record) -> bool) -> Update {
    let mut record = current.cloned().unwrap_or_default();
    match edit(&mut record) {
        true => Update::Put(record),
        false => Update::Keep,
    }
}

/// Counts from one pass of active expiry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpireStats {
    /// Records looked at.
    pub sampled: usize,
    /// Values found expired and turned into tombstones.
    pub expired: usize,
    /// Tombstones old enough to be dropped, dropped.
    pub tombstones_dropped: usize,
}

/// How a key has been used, as eviction tracks it: what `OBJECT IDLETIME` and `OBJECT FREQ`
/// read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUse {
    /// Milliseconds since the last access (one-second resolution, as Redis's LRU clock).
    pub idle_ms: u64,
    /// Redis's logarithmic LFU counter, decayed to now.
    pub frequency: u8,
}

/// Sizes reported by `INFO` and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Keys holding a value (expired ones not yet reclaimed included, as Redis counts them).
    pub keys: usize,
    /// Keys holding a value with an expiry.
    pub keys_with_expiry: usize,
    /// Tombstones kept so that a delete is not undone by an older write.
    pub tombstones: usize,
    /// Estimated bytes used by keys, values and bookkeeping.
    pub used_bytes: usize,
    /// Values reclaimed because they had expired, since the store was created.
    pub expired: usize,
}

/// A storage engine: keeps one [`Record`] per key and merges writes by version.
///
/// Every method is safe to call from many threads; a method on one key is atomic.
pub trait Store: Send + Sync + 'static {
    /// The stored record, tombstones included (callers judge liveness with
    /// [`Record::live_value`]). A value found expired at `now_ms` is reclaimed first (lazy
    /// expiry, as Redis deletes an expired key it touches) and comes back as a tombstone.
    /// A live value counts as accessed for eviction (LRU clock, LFU counter), as in Redis;
    /// [`Store::peek`] reads without that.
    fn get(&self, key: &[u8], now_ms: u64) -> Option<Record>;

    /// As [`Store::get`], but the read does not count as an access for eviction (`EXISTS`,
    /// `TTL`, `TYPE`, and every read of a client in `CLIENT NO-TOUCH` mode, as in Redis).
    /// An engine that keeps no access statistics reads as [`Store::get`] does.
    fn peek(&self, key: &[u8], now_ms: u64) -> Option<Record> {
        self.get(key, now_ms)
    }

    /// Runs `decide` on the key's current record while holding the key's lock, so that a
    /// read-modify-write on one key is atomic against every other call on that key. An
    /// expired value is reclaimed first, as in [`Store::get`]. Returns the record stored
    /// afterwards, once the write is as durable as the engine's fsync policy promises.
    /// The key counts as accessed for eviction (a write is a use).
    ///
    /// # Errors
    /// [`StoreError`] when the write could not be made durable; nothing was written.
    fn update(
        &self,
        key: &[u8],
        now_ms: u64,
        decide: &mut dyn FnMut(Option<&Record>) -> Update,
    ) -> Result<Option<Record>, StoreError>;

    /// As [`Store::update`], but `edit` changes the key's record where it is stored and says
    /// whether it did; a missing key reads as `Record::default()` (a tombstone at version
    /// zero, which every read treats as no key). What `edit` leaves must be a record
    /// `decide` could have put. Why: a collection's cells can then be edited without copying
    /// them. The default runs `edit` on a copy through [`Store::update`].
    ///
    /// # Errors
    /// As [`Store::update`].
    fn update_in_place(
        &self,
        key: &[u8],
        now_ms: u64,
        edit: &mut dyn FnMut(&mut Record) -> bool,
    ) -> Result<Option<Record>, StoreError> {
        self.update(key, now_ms, &mut |current| edit_copy(current, edit))
    }

    /// How `key` has been used (its access statistics), `None` when the store holds no
    /// record for it or keeps no statistics. Not an access itself.
    fn key_use(&self, key: &[u8], now_ms: u64) -> Option<KeyUse> {
        let _ = (key, now_ms);
        None
    }

    /// Merges a record written elsewhere cell by cell: each cell keeps the higher version.
    /// Returns whether anything changed.
    ///
    /// # Errors
    /// As [`Store::update`].
    fn merge(&self, key: &[u8], incoming: &Record) -> Result<bool, StoreError>;

    /// Visits records in token order from `cursor` (0 starts at the beginning) until about
    /// `count` keys have been visited, then returns the cursor to resume from, 0 when the
    /// walk is complete. Keys present for the whole walk are visited at least once. Values
    /// expired at `now_ms` are reclaimed on the way.
    fn scan(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        visit: &mut dyn FnMut(&Bytes, &Record),
    ) -> u64;

    /// A key near a random token whose value is live at `now_ms`, if one is found; expired
    /// values passed on the way are reclaimed.
    fn random_key(&self, random_token: u64, now_ms: u64) -> Option<Bytes>;

    /// Removes every record.
    ///
    /// # Errors
    /// As [`Store::update`].
    fn clear(&self) -> Result<(), StoreError>;

    /// Makes every acknowledged write durable now (at shutdown).
    ///
    /// # Errors
    /// When the sync fails.
    fn sync(&self) -> Result<(), StoreError>;

    /// One step of the active expiry sweep: looks at about `count` records in token order
    /// from `cursor` (as [`Store::scan`] walks), turns values expired at `now_ms` into
    /// tombstones and drops the tombstones `horizon` allows
    /// ([`TombstoneHorizon::allows_drop`]: newest version older than the horizon of the key's
    /// token). Returns the counts and the cursor of the next step, 0 when the sweep has gone
    /// round the whole ring. An engine that also drops tombstones elsewhere (the log store's
    /// compaction) uses the last `horizon` given here; until the first call it keeps all.
    fn expire_step(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        horizon: &TombstoneHorizon,
    ) -> (ExpireStats, u64);

    /// Removes one key chosen by `policy` to free memory under `maxmemory`, and returns it
    /// with the bytes freed; `None` when nothing can be evicted (`noeviction`, or no key the
    /// policy may take: `volatile-*` take only keys with an expiry).
    ///
    /// LRU, LFU and TTL are approximated as Redis does: about `samples` keys
    /// (`maxmemory-samples`) are sampled into a pool of the best candidates kept between
    /// calls, and the best goes. `random_token` seeds the sampling; `now_ms` judges expiry
    /// and idle time. An eviction is local: the record is dropped without a tombstone, so
    /// in a cluster the other replicas keep the key.
    fn evict(
        &self,
        policy: EvictionPolicy,
        samples: usize,
        random_token: u64,
        now_ms: u64,
    ) -> Option<EvictedKey>;

    /// Drops the key's record here without leaving a tombstone, because this node no longer
    /// keeps a replica of it (its range moved to another node after a join or a leave). Unlike
    /// a delete, nothing is written that other replicas should learn. Returns whether a record
    /// was there. Durable as eviction is: a restart does not bring the record back.
    /// It is not an eviction either: the key leaves the eviction pool, and nothing counts it
    /// among evicted keys.
    ///
    /// # Errors
    /// As [`Store::update`].
    fn discard(&self, key: &[u8]) -> Result<bool, StoreError>;

    /// The keys this engine reclaimed because their values expired, each once, for the
    /// server's `expired` events; `None` for an engine that does not note them.
    fn expired_keys(&self) -> Option<&ExpiredKeys> {
        None
    }

    /// The Merkle leaves of every record held, kept up to date by every change (anti-entropy
    /// compares them between replicas; see [`aae`]).
    fn merkle(&self) -> &MerkleLeaves;

    /// Visits every record whose key's token falls in one of `spans` (sorted, disjoint,
    /// inclusive `(first, last)` token pairs), tombstones included, walking only the part of
    /// the store that holds those tokens. Values expired at `now_ms` are reclaimed on the way
    /// (which keeps their versions, so it changes no leaf).
    fn visit_spans(
        &self,
        spans: &[(u64, u64)],
        now_ms: u64,
        visit: &mut dyn FnMut(&Bytes, &Record),
    ) {
        let mut next_span = 0;
        let mut cursor = 0;
        while next_span < spans.len() {
            cursor = cursor.max(spans[next_span].0);
            let rest = &spans[next_span..];
            cursor = self.scan(cursor, 1, now_ms, &mut |key, record| {
                let token = key_token(key);
                let at = rest.partition_point(|&(_, last)| last < token);
                if rest.get(at).is_some_and(|&(first, _)| first <= token) {
                    visit(key, record);
                }
            });
            if cursor == 0 {
                break;
            }
            while next_span < spans.len() && spans[next_span].1 < cursor {
                next_span += 1;
            }
        }
    }

    /// Engine-specific figures for `INFO persistence` and the metrics (segments, live and
    /// dead bytes, compactions...), as name and value; none by default.
    fn engine_stats(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Whether writes are acknowledged only after [`Store::wait_durable`] (appendfsync
    /// `always`). The server then runs a batch of requests, waits once for the batch, and
    /// only then sends its replies, so concurrent clients share each fsync.
    fn acknowledges_after_sync(&self) -> bool {
        false
    }

    /// Blocks until every write made so far is durable (under appendfsync `always`; at once
    /// otherwise). Callers run it off the async runtime.
    ///
    /// # Errors
    /// When the sync fails: the writes may not be durable, and the store is poisoned.
    fn wait_durable(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Changes when writes are made durable (`CONFIG SET appendfsync`). Engines that keep
    /// nothing on disk have nothing to sync and accept any policy.
    ///
    /// # Errors
    /// When switching to `always` needs a sync first and it fails.
    fn set_fsync_policy(&self, _policy: FsyncPolicy) -> Result<(), StoreError> {
        Ok(())
    }

    /// The current [`StoreStats::used_bytes`], which the server compares with `maxmemory`
    /// before every write; engines should make it cheaper than [`Store::stats`].
    fn used_bytes(&self) -> usize {
        self.stats().used_bytes
    }

    /// Current sizes.
    fn stats(&self) -> StoreStats;
}

/// Helpers shared by the engines' tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::aae::{leaf_of, record_digest};
    use proptest::prelude::*;

    /// Empties `into`, then toggles into it every record a full [`Store::scan`] visits
    /// (tombstones included): the leaves the store should hold. `now_ms` 0 reclaims nothing,
    /// so checking changes no state.
    pub(crate) fn leaves_from_scan(store: &dyn Store, into: &MerkleLeaves) {
        into.clear();
        let mut cursor = 0;
        loop {
            cursor = store.scan(cursor, usize::MAX, 0, &mut |key, record| {
                into.toggle(key_token(key), record);
            });
            if cursor == 0 {
                return;
            }
        }
    }

    thread_local! {
        /// Leaves to rebuild into, kept per thread: leaves take 8 MiB and 40 ms to allocate
        /// in a debug build.
        static SCRATCH: MerkleLeaves = MerkleLeaves::new();
    }

    /// Whether the store's incrementally kept leaves equal leaves rebuilt from a scan. About
    /// 50 ms in a debug build.
    pub(crate) fn leaves_are_exact(store: &dyn Store) -> bool {
        SCRATCH.with(|rebuilt| {
            leaves_from_scan(store, rebuilt);
            store.merkle().same_as(rebuilt)
        })
    }

    /// Whether the store's leaves of the tokens of keys `[0]..[keys]` equal those rebuilt
    /// from a scan: cheap enough for every step of a property test. A change made with the
    /// wrong token can land elsewhere and shows only in [`leaves_are_exact`].
    pub(crate) fn key_leaves_are_exact(store: &dyn Store, keys: u8) -> bool {
        let mut expected = std::collections::HashMap::new();
        let mut cursor = 0;
        loop {
            cursor = store.scan(cursor, usize::MAX, 0, &mut |key, record| {
                let token = key_token(key);
                *expected.entry(leaf_of(token)).or_insert(0) ^= record_digest(token, record);
            });
            if cursor == 0 {
                break;
            }
        }
        (0..keys).all(|key| {
            let leaf = leaf_of(key_token(&[key]));
            store.merkle().span_digest(leaf, leaf) == expected.get(&leaf).copied().unwrap_or(0)
        })
    }

    /// One call on a store, for property tests that run any sequence of them.
    #[derive(Debug, Clone)]
    pub(crate) enum StoreOp {
        /// A SET: both cells at a fresh version of `ms` (unix ms), with an expiry maybe.
        Set {
            key: u8,
            value: u8,
            ms: u64,
            expiry_ms: Option<u64>,
        },
        /// A DEL: a tombstone at a fresh version of `ms`.
        Delete {
            key: u8,
            ms: u64,
        },
        /// A write from elsewhere, with versions of any age (older ones lose).
        Merge {
            key: u8,
            value: Option<u8>,
            value_ms: u64,
            expiry_ms: Option<u64>,
            expiry_version_ms: u64,
            node: u32,
        },
        /// A hash's cells written elsewhere at one version (a coordinator's delta), over a
        /// clear version below it: merges cell by cell.
        MergeCells {
            key: u8,
            elements: Vec<(u8, bool)>,
            ms: u64,
            clear_ms: u64,
            node: u32,
        },
        /// A read, which reclaims an expired value.
        Get {
            key: u8,
            now_ms: u64,
        },
        /// One step of the expiry sweep.
        Expire {
            cursor: u64,
            count: usize,
            now_ms: u64,
            horizon: TombstoneHorizon,
        },
        Evict {
            policy: EvictionPolicy,
            samples: usize,
            random: u64,
            now_ms: u64,
        },
        Discard(u8),
        Clear,
    }

    /// Times in the tests, versions' and expiries' alike, are small unix ms.
    const MS_MAX: u64 = 200;

    /// A horizon, uniform or by spans between arbitrary cut points of the ring.
    pub(crate) fn horizon() -> impl Strategy<Value = TombstoneHorizon> {
        prop_oneof![
            (0..MS_MAX + 50).prop_map(TombstoneHorizon::uniform),
            proptest::collection::vec((any::<u64>(), proptest::option::of(0..MS_MAX + 50)), 0..8)
                .prop_map(|cuts| {
                    let mut points: Vec<u64> = cuts.iter().map(|&(p, _)| p).collect();
                    points.sort_unstable();
                    points.dedup();
                    let spans = points
                        .windows(2)
                        .zip(cuts.iter().map(|&(_, before_ms)| before_ms))
                        .filter_map(|(w, before_ms)| Some((w[0], w[1] - 1, before_ms?)))
                        .collect();
                    TombstoneHorizon::by_span(spans)
                }),
        ]
    }

    /// Any [`StoreOp`] on keys `0..keys`.
    pub(crate) fn store_op(keys: u8) -> impl Strategy<Value = StoreOp> {
        let ms = 0..MS_MAX;
        let expiry = proptest::option::of(0..MS_MAX);
        prop_oneof![
            6 => (0..keys, any::<u8>(), ms.clone(), expiry.clone()).prop_map(
                |(key, value, ms, expiry_ms)| StoreOp::Set { key, value, ms, expiry_ms }
            ),
            2 => (0..keys, ms.clone()).prop_map(|(key, ms)| StoreOp::Delete { key, ms }),
            4 => (
                0..keys,
                proptest::option::of(any::<u8>()),
                ms.clone(),
                expiry,
                ms.clone(),
                1..4u32,
            )
                .prop_map(|(key, value, value_ms, expiry_ms, expiry_version_ms, node)| {
                    StoreOp::Merge { key, value, value_ms, expiry_ms, expiry_version_ms, node }
                }),
            3 => (
                0..keys,
                proptest::collection::vec((0..6u8, any::<bool>()), 0..4),
                ms.clone(),
                ms.clone(),
                1..4u32,
            )
                .prop_map(|(key, elements, ms, clear_ms, node)| StoreOp::MergeCells {
                    key,
                    elements,
                    ms,
                    clear_ms,
                    node,
                }),
            2 => (0..keys, ms.clone()).prop_map(|(key, now_ms)| StoreOp::Get { key, now_ms }),
            3 => (
                prop_oneof![Just(0), any::<u64>()],
                1..40usize,
                0..MS_MAX + 50,
                horizon(),
            )
                .prop_map(|(cursor, count, now_ms, horizon)| StoreOp::Expire {
                    cursor,
                    count,
                    now_ms,
                    horizon,
                }),
            2 => (
                proptest::sample::select(EvictionPolicy::ALL.to_vec()),
                1..8usize,
                any::<u64>(),
                ms,
            )
                .prop_map(|(policy, samples, random, now_ms)| StoreOp::Evict {
                    policy,
                    samples,
                    random,
                    now_ms,
                }),
            1 => (0..keys).prop_map(StoreOp::Discard),
            1 => Just(StoreOp::Clear),
        ]
    }

    /// A version at `ms` that no other step issues (`step` is the logical counter).
    fn version(ms: u64, step: u64, node: u32) -> Version {
        Version {
            hlc: (ms << Version::LOGICAL_BITS) | (step & 0xffff),
            node,
        }
    }

    /// Runs `op` as step `step`; writes that fail (a store poisoned on purpose) are ignored:
    /// what the leaves do then is what is being tested.
    pub(crate) fn apply(store: &dyn Store, op: &StoreOp, step: u64) {
        // Values long enough that a few dozen writes fill a 4 KiB log segment.
        let value = |byte: u8| Bytes::from(vec![byte; 150]);
        match op {
            &StoreOp::Set {
                key,
                value: byte,
                ms,
                expiry_ms,
            } => {
                let record = Record::new(value(byte), expiry_ms, version(ms, step, 1));
                let _ = store.update(&[key], ms, &mut |_| Update::Put(record.clone()));
            }
            &StoreOp::Delete { key, ms } => {
                let record = Record::tombstone(version(ms, step, 1));
                let _ = store.update(&[key], ms, &mut |_| Update::Put(record.clone()));
            }
            &StoreOp::Merge {
                key,
                value: byte,
                value_ms,
                expiry_ms,
                expiry_version_ms,
                node,
            } => {
                let record = Record {
                    kind: Default::default(),
                    value: byte.map(|b| crate::record::Value::Bytes(value(b))),
                    value_version: version(value_ms, step, node),
                    expiry_ms,
                    expiry_version: version(expiry_version_ms, step, node),
                };
                let _ = store.merge(&[key], &record);
            }
            StoreOp::MergeCells {
                key,
                elements,
                ms,
                clear_ms,
                node,
            } => {
                let at = version(*ms, step, *node);
                let clear = version((*clear_ms).min(ms.saturating_sub(1)), 0, 0);
                let mut cells = Collection::cleared_at(clear);
                for &(element, present) in elements {
                    let payload = present.then(|| value(element));
                    cells.put(&[element], payload.as_deref(), at);
                }
                let record = Record::collection(DataType::Hash, cells, None, at);
                let _ = store.merge(&[*key], &record);
            }
            &StoreOp::Get { key, now_ms } => {
                store.get(&[key], now_ms);
            }
            StoreOp::Expire {
                cursor,
                count,
                now_ms,
                horizon,
            } => {
                store.expire_step(*cursor, *count, *now_ms, horizon);
            }
            &StoreOp::Evict {
                policy,
                samples,
                random,
                now_ms,
            } => {
                store.evict(policy, samples, random, now_ms);
            }
            &StoreOp::Discard(key) => {
                let _ = store.discard(&[key]);
            }
            StoreOp::Clear => {
                let _ = store.clear();
            }
        }
    }

    /// Every key `visit_spans` visits, sorted, with the number of visits.
    pub(crate) fn visited(store: &dyn Store, spans: &[(u64, u64)]) -> Vec<(Bytes, usize)> {
        let mut seen = std::collections::BTreeMap::new();
        store.visit_spans(spans, 0, &mut |key, _| {
            *seen.entry(key.clone()).or_insert(0) += 1;
        });
        seen.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::visited;
    use super::*;
    use proptest::prelude::*;

    /// Keys `k0`.. with their tokens, sorted by token.
    fn keys(n: usize) -> Vec<(u64, Bytes)> {
        let mut keys: Vec<_> = (0..n)
            .map(|i| {
                let key = Bytes::from(format!("k{i}"));
                (key_token(&key), key)
            })
            .collect();
        keys.sort();
        keys
    }

    fn fill(store: &dyn Store, keys: &[(u64, Bytes)]) {
        for (i, (_, key)) in keys.iter().enumerate() {
            let version = Version {
                hlc: i as u64 + 1,
                node: 1,
            };
            // Every third a tombstone: visit_spans visits those too.
            let record = if i % 3 == 0 {
                Record::tombstone(version)
            } else {
                Record::new(Bytes::from("v"), None, version)
            };
            store.merge(key, &record).unwrap();
        }
    }

    /// The keys whose token falls in one of `spans`, each once.
    fn expected(keys: &[(u64, Bytes)], spans: &[(u64, u64)]) -> Vec<(Bytes, usize)> {
        let mut expected: Vec<_> = keys
            .iter()
            .filter(|(token, _)| spans.iter().any(|&(f, l)| f <= *token && *token <= l))
            .map(|(_, key)| (key.clone(), 1))
            .collect();
        expected.sort();
        expected
    }

    fn log_store(dir: &std::path::Path) -> LogStore {
        let options = LogOptions {
            segment_bytes_max: 4096,
            appendfsync: FsyncPolicy::No,
            background: false,
            ..LogOptions::default()
        };
        LogStore::open(dir, options).unwrap().0
    }

    /// Both engines, filled with the same 600 keys.
    fn engines(dir: &std::path::Path, keys: &[(u64, Bytes)]) -> Vec<Box<dyn Store>> {
        let engines: Vec<Box<dyn Store>> =
            vec![Box::new(MemoryStore::new()), Box::new(log_store(dir))];
        for store in &engines {
            fill(store.as_ref(), keys);
        }
        engines
    }

    #[test]
    fn visit_spans_visits_exactly_the_keys_of_spans_inside_one_shard() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys(600);
        for store in engines(dir.path(), &keys) {
            // A single key, the first and last token of the ring, a span between two keys
            // that holds none, and two keys' worth of tokens. 4,096 shards hold 2^52 tokens
            // each, so spans this narrow stay within one shard.
            let (t, _) = keys[300];
            let (u, _) = keys[301];
            let span_sets = [
                vec![(t, t)],
                vec![(t + 1, u - 1)],
                vec![(t, u)],
                vec![(t - 1, t - 1), (t, t), (u, u + 1)],
                vec![(0, 0), (u64::MAX, u64::MAX)],
                vec![(keys[0].0, keys[0].0), (keys[599].0, u64::MAX)],
            ];
            for spans in span_sets {
                assert_eq!(
                    visited(store.as_ref(), &spans),
                    expected(&keys, &spans),
                    "{spans:x?}"
                );
            }
        }
    }

    #[test]
    fn visit_spans_visits_exactly_the_keys_of_spans_across_shards() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys(600);
        let quarter = u64::MAX / 4;
        for store in engines(dir.path(), &keys) {
            let span_sets = [
                vec![(0, u64::MAX)],
                vec![(0, quarter), (2 * quarter, 3 * quarter)],
                vec![(quarter + 1, 2 * quarter), (3 * quarter + 1, u64::MAX)],
                // Spans that start and end between keys, many shards apart.
                vec![
                    (keys[10].0 + 1, keys[200].0 - 1),
                    (keys[201].0, keys[590].0),
                ],
                vec![],
            ];
            for spans in span_sets {
                assert_eq!(
                    visited(store.as_ref(), &spans),
                    expected(&keys, &spans),
                    "{spans:x?}"
                );
            }
        }
    }

    /// Sorted, disjoint inclusive spans from arbitrary cut points.
    fn spans() -> impl Strategy<Value = Vec<(u64, u64)>> {
        proptest::collection::vec((any::<u64>(), any::<bool>()), 0..12).prop_map(|cuts| {
            let mut points: Vec<u64> = cuts.iter().map(|&(p, _)| p).collect();
            points.sort_unstable();
            points.dedup();
            points
                .windows(2)
                .zip(cuts.iter().map(|&(_, keep)| keep))
                .filter(|&(_, keep)| keep)
                .map(|(w, _)| (w[0], w[1] - 1))
                .collect()
        })
    }

    #[test]
    fn visit_spans_visits_each_key_in_arbitrary_spans_once_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys(300);
        // Built once: a store's leaves alone take 8 MiB.
        let stores = engines(dir.path(), &keys);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(256));
        runner
            .run(&spans(), |spans| {
                for store in &stores {
                    prop_assert_eq!(visited(store.as_ref(), &spans), expected(&keys, &spans));
                }
                Ok(())
            })
            .unwrap();
    }
}
