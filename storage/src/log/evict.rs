//! Eviction under `maxmemory` for the log store: the same policies and approximations as
//! `MemoryStore` (see [`crate::eviction`]), with two differences.
//!
//! - **Access statistics in 4 bytes.** A keydir entry keeps a 24-bit LRU clock (seconds, as
//!   Redis's) and the 8-bit LFU counter in one `u32`. Redis's LFU field also keeps the minute
//!   of the last decrement, but that is always the minute of the last access (both are set
//!   on every access, here and in [`KeyAccess::touch`]), so it is derived from the LRU clock:
//!   the ranks are those of [`KeyAccess`] (checked by a test) while the wraps are those of
//!   the 24-bit clock (194 days). The statistics start fresh when the store is opened.
//! - **An eviction is written down.** The key's entry leaves the keydir, and an "evicted"
//!   record carrying the evicted record's versions is appended (see `format`), so that
//!   recovery does not bring the value back from the segments. It is not a tombstone:
//!   nothing is replicated and no version is issued; it removes only what the log held
//!   before it. It is not waited for under `appendfsync always` (no client is answered by
//!   an eviction), but any later acknowledged write makes it durable too, since the log is
//!   synced in order; a crash that loses it brings back the evicted value itself, never an
//!   older one.
//!
//! `Store::discard` (the key's range moved to another node) drops a key with the same
//! evicted record and the same durability: to the log, a discard is an eviction of whatever
//! record the key had, a tombstone included. It is not an eviction to anyone else: no policy
//! decides it and nothing counts it as one.
//!
//! [`KeyAccess`]: crate::eviction::KeyAccess
//! [`KeyAccess::touch`]: crate::eviction::KeyAccess::touch

use bytes::Bytes;

use super::format;
use super::inner::Inner;
use super::keydir::{Entry, LRU_BITS, Shard, entry_hash};
use crate::eviction::{
    EvictionPolicy, EvictionPool, LFU_DECAY_TIME_MIN, LRU_CLOCK_MAX, LRU_CLOCK_RESOLUTION_MS,
    Ranking, evictable, lfu_log_incr, lru_clock, lru_idle_ms, splitmix64,
};
use crate::record::Record;
use crate::shard::{SHARDS, shard_of};
use crate::token::key_token;
use crate::{EvictedKey, StoreError};

/// Times one eviction refills the pool when every candidate in it was gone (deleted or no
/// longer eligible) before it gives up, as `MemoryStore` does.
const EVICTION_ROUNDS_MAX: usize = 16;
/// `access` after one access at `now_ms`: the clock is set, the counter decays and then gets
/// Redis's logarithmic increment decided by `random`.
pub(super) fn touch(access: u32, now_ms: u64, random: u64) -> u32 {
    let unit = (random >> 11) as f64 / (1u64 << 53) as f64;
    let counter = lfu_log_incr(counter(access, now_ms), unit);
    lru_clock(now_ms) | (u32::from(counter) << LRU_BITS)
}

/// The LFU counter of `access` decayed to `now_ms`: one less per [`LFU_DECAY_TIME_MIN`]
/// minutes since the last access (Redis's `LFUDecrAndReturn`).
pub(super) fn counter(access: u32, now_ms: u64) -> u8 {
    let now_s = now_ms / LRU_CLOCK_RESOLUTION_MS;
    let idle_s = idle_ms(access, now_ms) / LRU_CLOCK_RESOLUTION_MS;
    let then_s = now_s.saturating_sub(idle_s);
    let minutes = now_s / 60 - then_s / 60;
    u64::from(access >> LRU_BITS).saturating_sub(minutes / LFU_DECAY_TIME_MIN) as u8
}

/// Milliseconds idle at `now_ms`, at the clock's one-second resolution.
pub(super) fn idle_ms(access: u32, now_ms: u64) -> u64 {
    lru_idle_ms(lru_clock(now_ms), access & LRU_CLOCK_MAX)
}

/// How strongly `ranking` wants the key evicted, higher first: the same scores as
/// [`crate::eviction::KeyAccess::eviction_score`].
pub(super) fn score(access: u32, ranking: Ranking, expiry_ms: Option<u64>, now_ms: u64) -> u64 {
    match ranking {
        Ranking::Lru => idle_ms(access, now_ms),
        Ranking::Lfu => 255 - u64::from(counter(access, now_ms)),
        Ranking::Ttl => expiry_ms.map_or(0, |at| u64::MAX - at),
        Ranking::Random | Ranking::None => 0,
    }
}

/// Keys `policy` may consider in a shard, by its counts (expired values not yet reclaimed
/// included: this may overcount but never misses a candidate).
fn candidates(shard: &Shard, policy: EvictionPolicy) -> usize {
    if policy.volatile_only() {
        shard.stats.keys_with_expiry
    } else {
        shard.stats.keys
    }
}

impl Inner {
    /// `Store::evict` for the log store, as `MemoryStore::evict` works.
    pub fn evict(
        &self,
        policy: EvictionPolicy,
        samples: usize,
        random_token: u64,
        now_ms: u64,
    ) -> Option<EvictedKey> {
        let mut random = random_token;
        match policy.ranking() {
            Ranking::None => None,
            Ranking::Random => self.evict_random(policy, &mut random, now_ms),
            Ranking::Lru | Ranking::Lfu | Ranking::Ttl => {
                let mut pool = self.pool.lock();
                pool.use_policy(policy);
                for _ in 0..EVICTION_ROUNDS_MAX {
                    let offered =
                        self.sample_into(&mut pool, policy, samples.max(1), &mut random, now_ms);
                    if offered == 0 && pool.is_empty() {
                        return None;
                    }
                    // The best candidate still there goes; those gone since they were pooled
                    // are dropped on the way, as in Redis.
                    while let Some(candidate) = pool.pop_best() {
                        let mut shard = self.lock_shard(shard_of(candidate.token));
                        let freed = self.evict_key(
                            &mut shard,
                            candidate.token,
                            &candidate.key,
                            policy,
                            now_ms,
                        );
                        if let Some(bytes_freed) = freed {
                            return Some(EvictedKey {
                                key: candidate.key,
                                bytes_freed,
                            });
                        }
                    }
                }
                None
            }
        }
    }

    /// Offers up to `samples` keys that `policy` may evict to the pool: a run of neighbours
    /// from a random place of a random shard, then of the following shards (at most one lap
    /// of the ring). Expired values passed on the way are reclaimed. Returns the number
    /// offered. Keys are copied out of the map, so a pooled key never pins a retired
    /// segment's file.
    fn sample_into(
        &self,
        pool: &mut EvictionPool,
        policy: EvictionPolicy,
        samples: usize,
        random: &mut u64,
        now_ms: u64,
    ) -> usize {
        let ranking = policy.ranking();
        let start = shard_of(splitmix64(random));
        let mut offered = 0;
        for step in 0..SHARDS {
            if offered >= samples {
                break;
            }
            let mut guard = self.lock_shard((start + step) % SHARDS);
            if candidates(&guard, policy) == 0 {
                continue;
            }
            let segments = self.segments.read();
            let Shard { table, stats, .. } = &mut *guard;
            let len = table.len();
            let offset = (splitmix64(random) % len as u64) as usize;
            // From the offset to the end, then from the start to the offset.
            for (skip, take) in [(offset, len - offset), (0, offset)] {
                for entry in table.iter_mut().skip(skip).take(take) {
                    if offered >= samples {
                        break;
                    }
                    let Some((key, mut found)) = Inner::load(&segments, *entry) else {
                        continue;
                    };
                    Inner::reclaim_if_expired(
                        stats,
                        &self.expired,
                        &key,
                        entry,
                        &mut found,
                        now_ms,
                    );
                    if !evictable(policy, &found.record, now_ms) {
                        continue;
                    }
                    let score = score(entry.access, ranking, found.record.expiry_ms, now_ms);
                    pool.offer(score, key_token(&key), &key);
                    offered += 1;
                }
            }
        }
        offered
    }

    /// Evicts a random key that `policy` may evict: a random one of a random shard holding
    /// candidates (at most one lap of the ring).
    fn evict_random(
        &self,
        policy: EvictionPolicy,
        random: &mut u64,
        now_ms: u64,
    ) -> Option<EvictedKey> {
        let start = shard_of(splitmix64(random));
        for step in 0..SHARDS {
            let mut guard = self.lock_shard((start + step) % SHARDS);
            let count = candidates(&guard, policy);
            if count == 0 {
                continue;
            }
            let pick = (splitmix64(random) % count as u64) as usize;
            let mut chosen = None;
            {
                let segments = self.segments.read();
                let mut seen = 0;
                let Shard { table, stats, .. } = &mut *guard;
                // The pick-th candidate, or the last one if expired values made the count
                // high.
                for entry in table.iter_mut() {
                    let Some((key, mut found)) = Inner::load(&segments, *entry) else {
                        continue;
                    };
                    Inner::reclaim_if_expired(
                        stats,
                        &self.expired,
                        &key,
                        entry,
                        &mut found,
                        now_ms,
                    );
                    if evictable(policy, &found.record, now_ms) {
                        chosen = Some(key);
                        if seen == pick {
                            break;
                        }
                        seen += 1;
                    }
                }
            }
            if let Some(key) = chosen {
                let key = Bytes::copy_from_slice(&key);
                let token = key_token(&key);
                if let Some(bytes_freed) = self.evict_key(&mut guard, token, &key, policy, now_ms) {
                    return Some(EvictedKey { key, bytes_freed });
                }
            }
        }
        None
    }

    /// Removes `key` from the keydir if `policy` may evict it, after appending its evicted
    /// record; returns the bytes of `used_bytes` freed. `None` if the key is gone, not
    /// evictable, or the evicted record could not be written (then nothing changed).
    fn evict_key(
        &self,
        shard: &mut Shard,
        token: u64,
        key: &[u8],
        policy: EvictionPolicy,
        now_ms: u64,
    ) -> Option<usize> {
        let (entry, record) = {
            let segments = self.segments.read();
            let Shard { table, stats, .. } = &mut *shard;
            let entry = Inner::find(&segments, table, token, key)?;
            let (_, mut found) = Inner::load(&segments, *entry)?;
            Inner::reclaim_if_expired(stats, &self.expired, key, entry, &mut found, now_ms);
            if !evictable(policy, &found.record, now_ms) {
                return None;
            }
            (*entry, found.record)
        };
        self.drop_locally(shard, entry, key, &record).ok().flatten()
    }

    /// `Store::discard` for the log store: the key leaves the keydir as an evicted one does,
    /// with the same evicted record, whatever its record is (a live or expired value, or a
    /// tombstone). An expired value is not reclaimed first: it is dropped, not expired.
    pub fn discard(&self, key: &[u8]) -> Result<bool, StoreError> {
        let token = key_token(key);
        // The pool first, as the lock order wants; held until the entry is gone, so that no
        // eviction can pool the key in between.
        let mut pool = self.pool.lock();
        pool.remove(key);
        let mut shard = self.lock_shard(shard_of(token));
        let (entry, record) = {
            let segments = self.segments.read();
            let Some(entry) = Inner::find(&segments, &mut shard.table, token, key) else {
                return Ok(false);
            };
            let Some((_, found)) = Inner::load(&segments, *entry) else {
                return Ok(false);
            };
            (*entry, found.record)
        };
        Ok(self
            .drop_locally(&mut shard, entry, key, &record)?
            .is_some())
    }

    /// Appends the evicted record of `key`, whose keydir entry is `entry` and record
    /// `record`, then takes the entry out of the keydir and the record out of the Merkle
    /// leaves; returns the bytes of `used_bytes`
    /// freed, `None` if the entry was no longer there. The caller holds the key's shard.
    ///
    /// # Errors
    /// The evicted record could not be written (the store is poisoned); nothing changed.
    fn drop_locally(
        &self,
        shard: &mut Shard,
        entry: Entry,
        key: &[u8],
        record: &Record,
    ) -> Result<Option<usize>, StoreError> {
        // The segment table is not held across the append, which may create a segment.
        let mut bytes = Vec::new();
        format::encode_evicted(key, record, &mut bytes);
        self.append(&bytes)?;
        // The evicted record is never referenced by the keydir: its bytes are dead from the
        // start, and compaction reclaims them once nothing older can come back.
        let segments = self.segments.read();
        let Ok(slot) = shard.table.find_entry(entry_hash(&entry), |e| *e == entry) else {
            return Ok(None);
        };
        slot.remove();
        self.merkle.toggle(key_token(key), record);
        let before = shard.stats.used_bytes;
        Self::forget(&segments, &mut shard.stats, entry);
        Ok(Some(before - shard.stats.used_bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eviction::KeyAccess;
    use crate::log::keydir::fresh_access;

    #[test]
    fn packed_access_ranks_as_key_access_does() {
        let t0 = 1_700_000_000_000u64;
        let mut packed = fresh_access(t0);
        let mut full = KeyAccess::new(t0);
        let mut random = 3u64;
        let mut now = t0;
        for step in 0..2_000u64 {
            // Irregular gaps, sometimes across minute boundaries and long idle periods.
            now += [0, 10, 999, 1_000, 59_000, 61_000, 3_600_000][(step % 7) as usize];
            if step % 3 != 0 {
                let r = splitmix64(&mut random);
                packed = touch(packed, now, r);
                full.touch(now, r);
            }
            let later = now + step * 7_919;
            for ranking in [Ranking::Lru, Ranking::Lfu] {
                assert_eq!(
                    score(packed, ranking, None, later),
                    full.eviction_score(ranking, None, later),
                    "step {step} {ranking:?}"
                );
            }
        }
    }
}
