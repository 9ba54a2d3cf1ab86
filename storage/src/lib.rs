//! Storage for ringcache: the record model and the engines that keep records.
//!
//! - [`record`]: a key's [`Record`] — a value cell and an expiry cell, each with its own
//!   [`Version`] (a hybrid logical clock plus the writing node) — and the per-cell merge.
//! - [`token`]: the stable hash that places a key on the ring; engines order keys by it so
//!   that a token range (and a `SCAN` cursor) can be walked without touching every key.
//! - [`memory`]: the in-memory engine, [`MemoryStore`].
//! - [`log`]: the log-structured engine on memory-mapped segment files, [`LogStore`].
//! - [`hints`]: the durable hint log of hinted handoff, [`Hints`]: per target node, the
//!   writes it missed, replayed in order once it is back.
//! - [`eviction`]: `maxmemory-policy` ([`EvictionPolicy`]) and Redis's approximated LRU and
//!   LFU: per-key access statistics, sampling and the eviction pool.
//!
//! Engines sit behind the narrow [`Store`] trait so the server (and later the cluster
//! coordinator) never depends on how records are kept.

pub mod aae;
pub mod error;
pub mod eviction;
pub mod hints;
pub mod log;
pub mod memory;
pub mod record;
mod shard_guard;
pub mod token;

pub use aae::{MerkleLeaves, TombstoneHorizon};
pub use error::StoreError;
pub use eviction::{EvictedKey, EvictionPolicy};
pub use hints::{
    Hint, HintBatch, HintError, HintOptions, HintPosition, HintRecovery, HintStats, Hints,
    TargetHintStats,
};
pub use log::{FsyncPolicy, LogError, LogOptions, LogStats, LogStore, RecoveryReport};
pub use memory::MemoryStore;
pub use record::{Record, Version};
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
    /// tombstones and drops tombstones whose newest version is older than
    /// `tombstone_before_ms` (unix ms). Returns the counts and the cursor of the next step,
    /// 0 when the sweep has gone round the whole ring.
    fn expire_step(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        tombstone_before_ms: u64,
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
