//! Eviction under `maxmemory`: Redis's policies and the approximations Redis uses for them.
//!
//! - [`EvictionPolicy`]: the eight `maxmemory-policy` values, parsed from Redis's names.
//! - [`KeyAccess`]: what an engine keeps per key to rank it: a 24-bit LRU clock in seconds
//!   and Redis's LFU field (16 bits of minutes, 8 bits of logarithmic counter), 8 bytes in
//!   all. Redis keeps one of the two in the 24 bits of its object header, interpreted by the
//!   current policy; keeping both costs 4 more bytes and lets `CONFIG SET maxmemory-policy`
//!   switch between LRU and LFU without a period of meaningless ranks.
//! - The LFU counter math is Redis's `LFULogIncr` and `LFUDecrAndReturn` with its defaults
//!   (`lfu-log-factor` 10, `lfu-decay-time` 1 minute): a hit increments the counter with
//!   probability `1 / ((counter - 5) * 10 + 1)`, and it loses one per minute without hits.
//! - [`EvictionPool`]: Redis's `evictionPoolPopulate`: sampled keys enter a pool of the 16
//!   best candidates seen so far (kept across evictions), and the best one goes first.
//!
//! An eviction is local to one node: it is not a delete and writes no tombstone, so in a
//! cluster the other replicas keep the key (and a later read repair or hint may bring it back,
//! as a cache refill would).

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;

use crate::record::Record;

/// Redis's `maxmemory-samples` default: keys sampled per eviction.
pub const MAXMEMORY_SAMPLES_DEFAULT: usize = 5;
/// Candidates kept in the eviction pool (Redis's `EVPOOL_SIZE`).
pub const EVICTION_POOL_SIZE: usize = 16;
/// The LFU counter of a new key (Redis's `LFU_INIT_VAL`), so a new key is not evicted before
/// it had a chance to be read again.
pub const LFU_INIT_VAL: u8 = 5;
/// Redis's default `lfu-log-factor`: how many hits it takes to raise the counter.
pub const LFU_LOG_FACTOR: f64 = 10.0;
/// Redis's default `lfu-decay-time`: minutes without a hit that take one off the counter.
pub const LFU_DECAY_TIME_MIN: u64 = 1;
/// The largest value of the 24-bit LRU clock (Redis's `LRU_CLOCK_MAX`); it wraps after
/// about 194 days.
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// Milliseconds per tick of the LRU clock (Redis's `LRU_CLOCK_RESOLUTION`).
pub const LRU_CLOCK_RESOLUTION_MS: u64 = 1000;

/// What to do when a write would take memory past `maxmemory` (Redis's `maxmemory-policy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum EvictionPolicy {
    /// Evict nothing: commands that may add memory answer `-OOM`.
    #[default]
    NoEviction,
    /// Evict the least recently used keys, approximately.
    AllKeysLru,
    /// Evict the least frequently used keys, approximately.
    AllKeysLfu,
    /// Evict random keys.
    AllKeysRandom,
    /// As `allkeys-lru`, among keys with an expiry only.
    VolatileLru,
    /// As `allkeys-lfu`, among keys with an expiry only.
    VolatileLfu,
    /// As `allkeys-random`, among keys with an expiry only.
    VolatileRandom,
    /// Evict the key with the nearest expiry first, among keys with an expiry only.
    VolatileTtl,
}

/// How a policy ranks keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranking {
    /// Nothing is evicted.
    None,
    /// Least recently used first.
    Lru,
    /// Least frequently used first.
    Lfu,
    /// Any key.
    Random,
    /// Nearest expiry first.
    Ttl,
}

impl EvictionPolicy {
    /// Every policy, in the order Redis lists them in its CONFIG SET error.
    pub const ALL: [EvictionPolicy; 8] = [
        EvictionPolicy::VolatileLru,
        EvictionPolicy::VolatileLfu,
        EvictionPolicy::VolatileRandom,
        EvictionPolicy::VolatileTtl,
        EvictionPolicy::AllKeysLru,
        EvictionPolicy::AllKeysLfu,
        EvictionPolicy::AllKeysRandom,
        EvictionPolicy::NoEviction,
    ];

    /// Redis's name of the policy (`allkeys-lru`).
    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::NoEviction => "noeviction",
            EvictionPolicy::AllKeysLru => "allkeys-lru",
            EvictionPolicy::AllKeysLfu => "allkeys-lfu",
            EvictionPolicy::AllKeysRandom => "allkeys-random",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::VolatileLfu => "volatile-lfu",
            EvictionPolicy::VolatileRandom => "volatile-random",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
        }
    }

    /// The policy named `text` in any case, as Redis accepts it.
    pub fn parse(text: &str) -> Option<EvictionPolicy> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(text))
    }

    /// Whether only keys with an expiry may be evicted (the `volatile-*` policies).
    pub fn volatile_only(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileLfu
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        )
    }

    /// How the policy ranks keys.
    pub fn ranking(self) -> Ranking {
        match self {
            EvictionPolicy::NoEviction => Ranking::None,
            EvictionPolicy::AllKeysLru | EvictionPolicy::VolatileLru => Ranking::Lru,
            EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu => Ranking::Lfu,
            EvictionPolicy::AllKeysRandom | EvictionPolicy::VolatileRandom => Ranking::Random,
            EvictionPolicy::VolatileTtl => Ranking::Ttl,
        }
    }

    /// Whether a key holding a value, with or without an expiry, may be evicted under this
    /// policy.
    pub fn may_evict(self, has_expiry: bool) -> bool {
        self != EvictionPolicy::NoEviction && (has_expiry || !self.volatile_only())
    }

    /// The list of names in Redis's CONFIG SET error:
    /// `volatile-lru, volatile-lfu, ..., noeviction`.
    pub fn names_for_error() -> String {
        Self::ALL.map(EvictionPolicy::name).join(", ")
    }
}

impl fmt::Display for EvictionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EvictionPolicy {
    type Err = String;

    /// Parses Redis's names in any case; the error is Redis's CONFIG SET reason.
    fn from_str(text: &str) -> Result<EvictionPolicy, String> {
        EvictionPolicy::parse(text).ok_or_else(|| {
            format!(
                "argument(s) must be one of the following: {}",
                EvictionPolicy::names_for_error()
            )
        })
    }
}

/// Whether `policy` may evict the record now: a live value, with an expiry for `volatile-*`.
/// Both engines judge their candidates by it, so that they evict the same keys.
pub(crate) fn evictable(policy: EvictionPolicy, record: &Record, now_ms: u64) -> bool {
    record.is_live(now_ms) && policy.may_evict(record.expiry_ms.is_some())
}

/// A key removed by [`crate::Store::evict`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictedKey {
    /// The key.
    pub key: Bytes,
    /// Bytes of `used_bytes` given back by removing it.
    pub bytes_freed: usize,
}

/// The LRU clock at `now_ms`: unix seconds in 24 bits (Redis's `getLRUClock`).
pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / LRU_CLOCK_RESOLUTION_MS) & u64::from(LRU_CLOCK_MAX)) as u32
}

/// Milliseconds since the LRU clock read `lru`, at clock `clock` (Redis's
/// `estimateObjectIdleTime`, which assumes the clock wrapped at most once).
pub fn lru_idle_ms(clock: u32, lru: u32) -> u64 {
    let ticks = if clock >= lru {
        u64::from(clock - lru)
    } else {
        u64::from(clock) + u64::from(LRU_CLOCK_MAX - lru)
    };
    ticks * LRU_CLOCK_RESOLUTION_MS
}

/// The LFU clock at `now_ms`: unix minutes in 16 bits (Redis's `LFUGetTimeInMinutes`).
pub fn lfu_minutes(now_ms: u64) -> u16 {
    ((now_ms / 60_000) & 0xffff) as u16
}

/// Minutes from `then` to `now` on the 16-bit LFU clock (Redis's `LFUTimeElapsed`, which
/// assumes it wrapped at most once).
pub fn lfu_minutes_elapsed(now: u16, then: u16) -> u64 {
    if now >= then {
        u64::from(now - then)
    } else {
        65_535 - u64::from(then) + u64::from(now)
    }
}

/// The counter after the decay since `then` (Redis's `LFUDecrAndReturn`): one less per
/// [`LFU_DECAY_TIME_MIN`] minutes elapsed, not below 0.
pub fn lfu_decay(counter: u8, then: u16, now: u16) -> u8 {
    let periods = lfu_minutes_elapsed(now, then) / LFU_DECAY_TIME_MIN;
    u64::from(counter).saturating_sub(periods) as u8
}

/// The counter after one hit (Redis's `LFULogIncr`): incremented when `r` (uniform in
/// `[0, 1)`) falls below `1 / ((counter - LFU_INIT_VAL) * LFU_LOG_FACTOR + 1)`; saturates
/// at 255.
pub fn lfu_log_incr(counter: u8, r: f64) -> u8 {
    if counter == u8::MAX {
        return counter;
    }
    let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
    let p = 1.0 / (base * LFU_LOG_FACTOR + 1.0);
    if r < p { counter + 1 } else { counter }
}

/// A uniform `[0, 1)` number from 64 random bits.
fn unit_interval(random: u64) -> f64 {
    (random >> 11) as f64 / (1u64 << 53) as f64
}

/// A step of splitmix64: the next pseudo-random number from `state`, which it advances.
/// Good enough for sampling and for LFU's coin flips, and needs no dependency.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Access statistics of one key, 8 bytes: when it was last used (LRU) and how often (LFU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyAccess {
    /// [`lru_clock`] at the last access.
    lru: u32,
    /// Redis's LFU field: [`lfu_minutes`] of the last decrement in the high 16 bits, the
    /// logarithmic counter in the low 8.
    lfu: u32,
}

const _: () = assert!(std::mem::size_of::<KeyAccess>() == 8);

impl KeyAccess {
    /// A key created at `now_ms`: used now, counter [`LFU_INIT_VAL`] (as Redis's
    /// `createObject` initialises it).
    pub fn new(now_ms: u64) -> KeyAccess {
        KeyAccess {
            lru: lru_clock(now_ms),
            lfu: (u32::from(lfu_minutes(now_ms)) << 8) | u32::from(LFU_INIT_VAL),
        }
    }

    /// Records one access at `now_ms` (Redis's `lookupKey` touching a key: the LRU clock is
    /// set; the LFU counter decays, then gets a logarithmic increment decided by `random`).
    pub fn touch(&mut self, now_ms: u64, random: u64) {
        let minutes = lfu_minutes(now_ms);
        let counter = lfu_log_incr(self.lfu_counter(minutes), unit_interval(random));
        self.lru = lru_clock(now_ms);
        self.lfu = (u32::from(minutes) << 8) | u32::from(counter);
    }

    /// The LFU counter decayed to `now` (minutes), without storing the decay.
    pub fn lfu_counter(&self, now: u16) -> u8 {
        lfu_decay((self.lfu & 0xff) as u8, (self.lfu >> 8) as u16, now)
    }

    /// Milliseconds idle at `now_ms`, at the LRU clock's one-second resolution.
    pub fn idle_ms(&self, now_ms: u64) -> u64 {
        lru_idle_ms(lru_clock(now_ms), self.lru)
    }

    /// How strongly `ranking` wants this key evicted at `now_ms`, higher first (Redis's
    /// `idle` in `evictionPoolPopulate`): idle time for LRU, `255 - counter` for LFU,
    /// `u64::MAX - expiry` for TTL (a key without expiry scores 0 there).
    pub fn eviction_score(&self, ranking: Ranking, expiry_ms: Option<u64>, now_ms: u64) -> u64 {
        match ranking {
            Ranking::Lru => self.idle_ms(now_ms),
            Ranking::Lfu => 255 - u64::from(self.lfu_counter(lfu_minutes(now_ms))),
            Ranking::Ttl => expiry_ms.map_or(0, |at| u64::MAX - at),
            Ranking::Random | Ranking::None => 0,
        }
    }

    /// The state with the LRU clock and LFU field given directly, for tests.
    #[cfg(test)]
    pub(crate) fn from_parts(lru: u32, lfu_minutes: u16, counter: u8) -> KeyAccess {
        KeyAccess {
            lru,
            lfu: (u32::from(lfu_minutes) << 8) | u32::from(counter),
        }
    }
}

/// One candidate in the [`EvictionPool`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolEntry {
    /// How strongly the key should go, see [`KeyAccess::eviction_score`].
    pub score: u64,
    /// The key's ring token (where the engine finds it).
    pub token: u64,
    /// The key.
    pub key: Bytes,
}

/// The best eviction candidates seen so far, at most [`EVICTION_POOL_SIZE`], ordered by
/// score (Redis's eviction pool). Scores are only comparable under one policy, so the pool
/// empties itself when the policy changes.
#[derive(Debug, Default)]
pub struct EvictionPool {
    policy: Option<EvictionPolicy>,
    /// Ascending by score: the best candidate is last.
    entries: Vec<PoolEntry>,
}

impl EvictionPool {
    /// Prepares the pool for an eviction under `policy`, emptying it if it was filled under
    /// another one.
    pub fn use_policy(&mut self, policy: EvictionPolicy) {
        if self.policy != Some(policy) {
            self.entries.clear();
            self.policy = Some(policy);
        }
    }

    /// Offers a sampled key. As in Redis, a key scoring no better than the worst of a full
    /// pool is not taken; otherwise it goes in at its place and the worst falls out. The key
    /// is copied only when it is taken: most samples are not.
    pub fn offer(&mut self, score: u64, token: u64, key: &[u8]) {
        if let Some(at) = self.entries.iter().position(|e| e.key == key) {
            self.entries.remove(at);
        }
        if self.entries.len() == EVICTION_POOL_SIZE && score <= self.entries[0].score {
            return;
        }
        let at = self.entries.partition_point(|e| e.score <= score);
        self.entries.insert(
            at,
            PoolEntry {
                score,
                token,
                key: Bytes::copy_from_slice(key),
            },
        );
        if self.entries.len() > EVICTION_POOL_SIZE {
            self.entries.remove(0);
        }
    }

    /// Takes `key` out of the candidates, if it is one (the key was discarded: it is no
    /// longer this node's to evict, and a later write of it must not inherit its rank).
    pub fn remove(&mut self, key: &[u8]) {
        self.entries.retain(|e| e.key != key);
    }

    /// Takes the best candidate out.
    pub fn pop_best(&mut self) -> Option<PoolEntry> {
        self.entries.pop()
    }

    /// Candidates held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the pool holds no candidate.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets every candidate (after the store was cleared).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_from_redis_names_in_any_case() {
        for policy in EvictionPolicy::ALL {
            assert_eq!(EvictionPolicy::parse(policy.name()), Some(policy));
            assert_eq!(
                policy.name().to_ascii_uppercase().parse::<EvictionPolicy>(),
                Ok(policy)
            );
        }
        assert_eq!(EvictionPolicy::parse("lru"), None);
        assert_eq!(
            "foo".parse::<EvictionPolicy>().unwrap_err(),
            "argument(s) must be one of the following: volatile-lru, volatile-lfu, \
             volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"
        );
        assert_eq!(EvictionPolicy::default(), EvictionPolicy::NoEviction);
    }

    #[test]
    fn volatile_policies_may_evict_only_keys_with_an_expiry() {
        assert!(!EvictionPolicy::VolatileLru.may_evict(false));
        assert!(EvictionPolicy::VolatileTtl.may_evict(true));
        assert!(EvictionPolicy::AllKeysRandom.may_evict(false));
        assert!(!EvictionPolicy::NoEviction.may_evict(true));
    }

    #[test]
    fn lfu_log_incr_matches_redis_probabilities() {
        // At or below LFU_INIT_VAL, p = 1: every hit counts.
        assert_eq!(lfu_log_incr(0, 0.999), 1);
        assert_eq!(lfu_log_incr(5, 0.999), 6);
        // counter 6: p = 1 / (1 * 10 + 1) = 0.0909...
        assert_eq!(lfu_log_incr(6, 0.09), 7);
        assert_eq!(lfu_log_incr(6, 0.091), 6);
        // counter 15: p = 1 / (10 * 10 + 1) = 0.00990...
        assert_eq!(lfu_log_incr(15, 0.0099), 16);
        assert_eq!(lfu_log_incr(15, 0.01), 15);
        // Saturates.
        assert_eq!(lfu_log_incr(255, 0.0), 255);
    }

    #[test]
    fn lfu_decay_takes_one_per_minute_and_handles_the_wrap() {
        assert_eq!(lfu_decay(10, 100, 100), 10);
        assert_eq!(lfu_decay(10, 100, 103), 7);
        assert_eq!(lfu_decay(10, 100, 200), 0);
        // Redis's LFUTimeElapsed across the 16-bit wrap: 65535 - 65530 + 2 = 7.
        assert_eq!(lfu_minutes_elapsed(2, 65_530), 7);
        assert_eq!(lfu_decay(10, 65_530, 2), 3);
    }

    #[test]
    fn lfu_counter_after_many_hits_is_near_redis_table() {
        // redis.conf's table for lfu-log-factor 10: 100 hits -> 10, 1000 hits -> 18.
        let mut state = 42;
        let mut access = KeyAccess::new(0);
        for _ in 0..100 {
            access.touch(0, splitmix64(&mut state));
        }
        let after_100 = access.lfu_counter(0);
        for _ in 100..1000 {
            access.touch(0, splitmix64(&mut state));
        }
        let after_1000 = access.lfu_counter(0);
        assert!((8..=12).contains(&after_100), "{after_100}");
        assert!((15..=21).contains(&after_1000), "{after_1000}");
    }

    #[test]
    fn lru_idle_time_is_in_clock_ticks_and_handles_the_wrap() {
        assert_eq!(lru_idle_ms(lru_clock(10_000), lru_clock(7_500)), 3_000);
        assert_eq!(lru_idle_ms(5, LRU_CLOCK_MAX - 5), 10_000);
        let access = KeyAccess::new(1_000_000);
        assert_eq!(access.idle_ms(1_000_999), 0);
        assert_eq!(access.idle_ms(1_060_000), 60_000);
    }

    #[test]
    fn scores_rank_idle_rare_and_soon_expiring_keys_first() {
        let now_ms = 3_600_000;
        let old = KeyAccess::from_parts(lru_clock(now_ms - 100_000), lfu_minutes(now_ms), 5);
        let recent = KeyAccess::from_parts(lru_clock(now_ms - 1_000), lfu_minutes(now_ms), 30);
        assert!(
            old.eviction_score(Ranking::Lru, None, now_ms)
                > recent.eviction_score(Ranking::Lru, None, now_ms)
        );
        assert!(
            old.eviction_score(Ranking::Lfu, None, now_ms)
                > recent.eviction_score(Ranking::Lfu, None, now_ms)
        );
        assert!(
            old.eviction_score(Ranking::Ttl, Some(5), now_ms)
                > old.eviction_score(Ranking::Ttl, Some(6), now_ms)
        );
    }

    #[test]
    fn the_pool_keeps_the_sixteen_best_and_gives_the_best_first() {
        let mut pool = EvictionPool::default();
        pool.use_policy(EvictionPolicy::AllKeysLru);
        for score in 0..40u64 {
            pool.offer(score, score, score.to_string().as_bytes());
        }
        assert_eq!(pool.len(), EVICTION_POOL_SIZE);
        pool.offer(1, 1, b"late and poor");
        assert_eq!(pool.len(), EVICTION_POOL_SIZE);
        assert_eq!(pool.pop_best().unwrap().score, 39);
        // Offering a key again moves it, never duplicates it.
        pool.offer(100, 30, b"30");
        assert_eq!(pool.pop_best().unwrap().key, Bytes::from("30"));
        assert_eq!(pool.pop_best().unwrap().score, 38);
        pool.use_policy(EvictionPolicy::AllKeysLfu);
        assert!(pool.is_empty());
    }
}
