//! Tests of eviction in the log store: the policies (as `MemoryStore`'s tests), `used_bytes`,
//! and that an evicted key stays evicted across restarts, compactions and crashes without
//! hiding a write made after the eviction. Then the same of a discarded key, which leaves by
//! the same evicted record.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::eviction::splitmix64;
use crate::record::{Record, Version};
use crate::{EvictionPolicy, Store, TombstoneHorizon, Update};

const T0: u64 = 1_700_000_000_000;

fn v(hlc: u64) -> Version {
    Version { hlc, node: 1 }
}

fn options() -> LogOptions {
    LogOptions {
        segment_bytes_max: 4096,
        appendfsync: FsyncPolicy::No,
        background: false,
        ..LogOptions::default()
    }
}

fn open(dir: &Path) -> LogStore {
    LogStore::open(dir, options()).expect("open").0
}

/// Writes `key` at `now_ms` (a SET), with an absolute expiry if given.
fn set(store: &LogStore, key: &str, expiry_ms: Option<u64>, now_ms: u64) {
    let record = Record::new(Bytes::from("value"), expiry_ms, v(now_ms));
    store
        .update(key.as_bytes(), now_ms, &mut |_| Update::Put(record.clone()))
        .unwrap();
}

fn put(store: &LogStore, key: &[u8], value: &[u8], version: u64) {
    let record = Record::new(Bytes::copy_from_slice(value), None, v(version));
    store
        .update(key, T0, &mut |_| Update::Put(record.clone()))
        .unwrap();
}

fn value(store: &LogStore, key: &[u8]) -> Option<Vec<u8>> {
    store
        .peek(key, T0)
        .and_then(|r| r.bytes().map(|b| b.to_vec()))
}

/// Evicts `n` keys and returns their names.
fn evict_n(
    store: &LogStore,
    policy: EvictionPolicy,
    samples: usize,
    n: usize,
    now_ms: u64,
) -> Vec<String> {
    let mut random = 7;
    (0..n)
        .map_while(|_| store.evict(policy, samples, splitmix64(&mut random), now_ms))
        .map(|e| String::from_utf8(e.key.to_vec()).unwrap())
        .collect()
}

fn number(key: &str) -> usize {
    key.trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .parse()
        .unwrap()
}

#[test]
fn lru_evicts_the_least_recently_used_keys_when_sampling_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..100 {
        set(&store, &format!("k{i}"), None, T0);
    }
    for i in 0..50 {
        store.get(format!("k{i}").as_bytes(), T0 + 10_000);
    }
    let victims = evict_n(&store, EvictionPolicy::AllKeysLru, 1_000, 50, T0 + 20_000);
    assert_eq!(victims.len(), 50);
    for victim in &victims {
        assert!(
            number(victim) >= 50,
            "{victim} was read recently but evicted"
        );
    }
    assert_eq!(store.stats().keys, 50);
}

#[test]
fn lru_with_five_samples_mostly_evicts_idle_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options();
    options.segment_bytes_max = 1 << 20;
    let (store, _) = LogStore::open(dir.path(), options).unwrap();
    for i in 0..1000 {
        set(&store, &format!("k{i}"), None, T0);
    }
    for i in 0..500 {
        store.get(format!("k{i}").as_bytes(), T0 + 10_000);
    }
    let victims = evict_n(&store, EvictionPolicy::AllKeysLru, 5, 200, T0 + 20_000);
    let idle = victims.iter().filter(|k| number(k) >= 500).count();
    assert!(idle >= 180, "only {idle} of 200 victims were idle keys");
}

#[test]
fn reads_by_peek_do_not_count_as_accesses_and_writes_do() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    set(&store, "peeked", None, T0);
    set(&store, "read", None, T0);
    set(&store, "written", None, T0);
    store.peek(b"peeked", T0 + 10_000);
    store.get(b"read", T0 + 10_000);
    store
        .update(b"written", T0 + 10_000, &mut |_| Update::Keep)
        .unwrap();
    let victims = evict_n(&store, EvictionPolicy::AllKeysLru, 100, 1, T0 + 20_000);
    assert_eq!(victims, ["peeked"]);
}

#[test]
fn lfu_evicts_the_least_frequently_used_keys() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..100 {
        set(&store, &format!("k{i}"), None, T0);
    }
    for i in 0..50 {
        for _ in 0..20 {
            store.get(format!("k{i}").as_bytes(), T0);
        }
    }
    let victims = evict_n(&store, EvictionPolicy::AllKeysLfu, 1_000, 50, T0);
    assert_eq!(victims.len(), 50);
    for victim in &victims {
        assert!(number(victim) >= 50, "{victim} was read often but evicted");
    }
}

#[test]
fn volatile_ttl_evicts_the_nearest_expiry_first_and_never_keys_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..20u64 {
        set(&store, &format!("ttl{i:02}"), Some(T0 + 1_000_000 + i), T0);
        set(&store, &format!("plain{i:02}"), None, T0);
    }
    let victims = evict_n(&store, EvictionPolicy::VolatileTtl, 1_000, 100, T0);
    let expected: Vec<String> = (0..20).map(|i| format!("ttl{i:02}")).collect();
    assert_eq!(victims, expected);
    assert_eq!(store.stats().keys, 20);
}

#[test]
fn volatile_policies_never_evict_keys_without_an_expiry() {
    for policy in [
        EvictionPolicy::VolatileLru,
        EvictionPolicy::VolatileLfu,
        EvictionPolicy::VolatileRandom,
        EvictionPolicy::VolatileTtl,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        for i in 0..200 {
            let expiry = (i % 4 == 0).then_some(T0 + 1_000_000);
            set(&store, &format!("k{i}"), expiry, T0);
        }
        let victims = evict_n(&store, policy, 5, 1_000, T0);
        assert_eq!(victims.len(), 50, "{policy}");
        for victim in &victims {
            assert_eq!(number(victim) % 4, 0, "{policy} evicted {victim}");
        }
        assert_eq!(store.stats().keys, 150);
        assert_eq!(store.evict(policy, 5, 1, T0), None);
    }
}

#[test]
fn random_eviction_spreads_over_the_keys() {
    for policy in [
        EvictionPolicy::AllKeysRandom,
        EvictionPolicy::VolatileRandom,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut options = options();
        options.segment_bytes_max = 1 << 20;
        let (store, _) = LogStore::open(dir.path(), options).unwrap();
        for i in 0..1000 {
            set(&store, &format!("k{i}"), Some(T0 + 1_000_000), T0);
        }
        let victims = evict_n(&store, policy, 5, 500, T0);
        let low = victims.iter().filter(|k| number(k) < 500).count();
        assert_eq!(victims.len(), 500);
        assert!(
            (200..=300).contains(&low),
            "{policy}: {low} of 500 from the low half"
        );
    }
}

#[test]
fn an_eviction_is_local_and_gives_back_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    set(&store, "k", None, T0);
    let before = store.used_bytes();
    assert_eq!(before, store.stats().used_bytes);
    let evicted = store.evict(EvictionPolicy::AllKeysLru, 5, 1, T0).unwrap();
    assert_eq!(evicted.key, Bytes::from("k"));
    assert_eq!(evicted.bytes_freed, 1 + 5 + 24);
    assert_eq!(before - evicted.bytes_freed, store.used_bytes());
    assert_eq!(store.used_bytes(), 0);
    // No tombstone: the key is simply gone, and an older write may fill it again.
    assert_eq!(store.stats().tombstones, 0);
    assert!(store.get(b"k", T0).is_none());
    assert_eq!(store.evict(EvictionPolicy::AllKeysLru, 5, 1, T0), None);
    let older = Record::new(Bytes::from("older"), None, v(T0 - 1));
    assert!(store.merge(b"k", &older).unwrap());
    // The evicted record is dead bytes on disk.
    assert!(store.log_stats().dead_bytes > 0);
}

#[test]
fn noeviction_evicts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    set(&store, "k", None, T0);
    assert_eq!(store.evict(EvictionPolicy::NoEviction, 5, 1, T0), None);
}

#[test]
fn expired_keys_are_reclaimed_not_evicted_while_sampling() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    set(&store, "gone", Some(T0 + 10), T0);
    set(&store, "kept", None, T0);
    let victims = evict_n(&store, EvictionPolicy::VolatileTtl, 5, 1, T0 + 20);
    assert!(victims.is_empty());
    assert_eq!((store.stats().keys, store.stats().expired), (1, 1));
}

#[test]
fn used_bytes_stays_equal_to_the_sum_of_the_shards() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        for i in 0..500u64 {
            set(&store, &format!("k{i}"), Some(T0 + (i % 7) * 1_000), T0);
        }
        store.expire_step(0, 10_000, T0 + 3_500, &TombstoneHorizon::uniform(0));
        evict_n(&store, EvictionPolicy::AllKeysLfu, 5, 100, T0);
        store.merge(b"m", &Record::tombstone(v(1))).unwrap();
        store.compact(T0 + 3_500).unwrap();
        assert_eq!(store.used_bytes(), store.stats().used_bytes);
        store.sync().unwrap();
    }
    let store = open(dir.path());
    assert_eq!(store.used_bytes(), store.stats().used_bytes);
    assert!(store.used_bytes() > 0);
    store.clear().unwrap();
    assert_eq!(store.used_bytes(), 0);
}

/// Writes `rounds` versions of 100 keys (filling several segments), evicts every key
/// whose number is below 40, and returns the store.
fn write_then_evict(dir: &Path, rounds: u64) -> LogStore {
    let store = open(dir);
    for round in 0..rounds {
        for i in 0..100u64 {
            let version = 1 + round * 100 + i;
            put(
                &store,
                format!("k{i}").as_bytes(),
                &[round as u8; 20],
                version,
            );
        }
    }
    // Make the keys below 40 the least recently used.
    for i in 40..100 {
        store.get(format!("k{i}").as_bytes(), T0 + 10_000);
    }
    let victims = evict_n(&store, EvictionPolicy::AllKeysLru, 1_000, 40, T0 + 20_000);
    assert!(victims.iter().all(|k| number(k) < 40), "{victims:?}");
    assert_eq!(victims.len(), 40);
    store
}

/// Checks that the keys below 40 are gone (evicted or discarded), that the others hold the
/// value of `last_round`, and the counts.
fn assert_gone_below_40(store: &LogStore, last_round: u8) {
    for i in 0..100 {
        let expected = (i >= 40).then(|| vec![last_round; 20]);
        assert_eq!(value(store, format!("k{i}").as_bytes()), expected, "k{i}");
    }
    let fill = usize::from(value(store, b"fill").is_some());
    assert_eq!(store.stats().keys, 60 + fill);
    assert_eq!(store.stats().tombstones, 0);
    assert_eq!(store.used_bytes(), store.stats().used_bytes);
}

#[test]
fn evicted_keys_stay_evicted_after_reopen_with_and_without_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = write_then_evict(dir.path(), 3);
        store.sync().unwrap();
    }
    let store = open(dir.path());
    assert_gone_below_40(&store, 2);
    // Now from a snapshot that covers the evicted records.
    put(&store, b"fill", &[0; 3000], 10_000);
    store.snapshot().unwrap();
    store.sync().unwrap();
    drop(store);
    let (store, report) = LogStore::open(dir.path(), options()).unwrap();
    assert!(report.from_snapshot, "{report}");
    assert_gone_below_40(&store, 2);
}

#[test]
fn evicted_keys_stay_evicted_after_compaction_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = write_then_evict(dir.path(), 3);
        let before = store.log_stats();
        let compacted = store.compact(T0).unwrap();
        assert!(compacted > 0);
        assert!(store.log_stats().dead_bytes < before.dead_bytes);
        assert_gone_below_40(&store, 2);
        // Compact again: outputs holding evicted records must not become candidates at once.
        store.compact(T0).unwrap();
        store.sync().unwrap();
    }
    let store = open(dir.path());
    assert_gone_below_40(&store, 2);
    // Every sealed segment compacted with a very low threshold, then reopened.
    drop(store);
    let mut options = options();
    options.compaction_dead_ratio = 0.01;
    {
        let (store, _) = LogStore::open(dir.path(), options.clone()).unwrap();
        put(&store, b"fill", &[0; 3000], 10_000);
        store.compact(T0).unwrap();
        store.compact(T0).unwrap();
        store.sync().unwrap();
    }
    let store = open(dir.path());
    assert_gone_below_40(&store, 2);
}

#[test]
fn a_write_after_an_eviction_survives_reopen_whatever_its_version() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = write_then_evict(dir.path(), 2);
        // A newer write, as a SET after the eviction makes.
        put(&store, b"k1", b"newer", 1_000_000);
        // An older version arriving after the eviction (a read repair or hint): the store
        // accepts it, as MemoryStore does, and the evicted record must not hide it later.
        let older = Record::new(Bytes::from("older"), None, v(2));
        assert!(store.merge(b"k2", &older).unwrap());
        store.sync().unwrap();
    }
    for _ in 0..2 {
        let store = open(dir.path());
        assert_eq!(value(&store, b"k1"), Some(b"newer".to_vec()));
        assert_eq!(value(&store, b"k2"), Some(b"older".to_vec()));
        assert_eq!(value(&store, b"k3"), None);
        store.compact(T0).unwrap();
        store.sync().unwrap();
    }
}

/// The states a key may be in after a crash (`None`: absent), and its current record.
#[derive(Default)]
struct KeyModel {
    possible: Vec<Option<u64>>,
    current: Option<(Version, u64)>,
}

impl KeyModel {
    /// Moves the key to `state`; until a promise, a crash may leave it in any state since.
    fn change(&mut self, state: Option<(Version, u64)>) {
        if self.possible.is_empty() {
            self.possible.push(self.current.map(|(_, value)| value));
        }
        self.current = state;
        self.possible.push(state.map(|(_, value)| value));
    }
}

/// Random puts, older merges, evictions, compactions, syncs and crashes (torn or not); after
/// every crash each key is in a state it was in since it was last promised durable. So an
/// eviction never brings back a value older than the evicted one, and never hides a write
/// acknowledged after it. With `discards`, some evictions become deletes and discards (of
/// values and tombstones alike), which must keep the same promises.
fn crash_after_evictions(seed: u64, policy: FsyncPolicy, discards: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options();
    options.appendfsync = policy;
    options.compaction_dead_ratio = 0.3;
    let open_store = || {
        let backend = Arc::new(FaultBackend::new(dir.path()).unwrap());
        let (store, _) = LogStore::open_with(backend.clone(), options.clone()).unwrap();
        (store, backend)
    };
    let (mut store, mut backend) = open_store();
    let mut random = seed;
    let mut model: BTreeMap<u8, KeyModel> = BTreeMap::new();
    let mut version = 1_000u64;
    let promise_all = |model: &mut BTreeMap<u8, KeyModel>| {
        for key in model.values_mut() {
            key.possible = vec![key.current.map(|(_, value)| value)];
        }
    };
    for _ in 0..150 {
        let roll = splitmix64(&mut random) % 100;
        let k = (splitmix64(&mut random) % 12) as u8;
        version += 1;
        let mut accepted = None;
        if roll < 45 {
            let record = Record::new(
                Bytes::from(version.to_le_bytes().to_vec()),
                None,
                v(version),
            );
            store
                .update(&[k], T0, &mut |_| Update::Put(record.clone()))
                .unwrap();
            accepted = Some((v(version), version));
        } else if roll < 55 {
            // An older version than any put: taken only by a key this node does not hold.
            let old = splitmix64(&mut random) % 900;
            let record = Record::new(Bytes::from(old.to_le_bytes().to_vec()), None, v(old));
            if store.merge(&[k], &record).unwrap() {
                accepted = Some((v(old), old));
            }
        } else if discards && (65..72).contains(&roll) {
            store
                .update(&[k], T0, &mut |_| {
                    Update::Put(Record::tombstone(v(version)))
                })
                .unwrap();
            model.entry(k).or_default().change(None);
            if policy == FsyncPolicy::Always {
                promise_all(&mut model);
            }
        } else if discards && (72..80).contains(&roll) {
            if store.discard(&[k]).unwrap() {
                model.entry(k).or_default().change(None);
            }
        } else if roll < 80 {
            let token = splitmix64(&mut random);
            if let Some(evicted) = store.evict(EvictionPolicy::AllKeysRandom, 5, token, T0) {
                model.entry(evicted.key[0]).or_default().change(None);
            }
        } else if roll < 88 {
            store.compact(T0).unwrap();
        } else if roll < 93 {
            store.sync().unwrap();
            promise_all(&mut model);
        } else {
            drop(store);
            let torn = splitmix64(&mut random)
                .is_multiple_of(2)
                .then(|| (splitmix64(&mut random) % 60) as usize);
            backend.crash(torn).unwrap();
            (store, backend) = open_store();
            for k in 0u8..12 {
                let record = store.peek(&[k], T0);
                let got = record
                    .as_ref()
                    .and_then(|r| r.bytes())
                    .map(|b| u64::from_le_bytes(b[..].try_into().unwrap()));
                let key = model.entry(k).or_default();
                let allowed = if key.possible.is_empty() {
                    vec![key.current.map(|(_, value)| value)]
                } else {
                    key.possible.clone()
                };
                assert!(
                    allowed.contains(&got),
                    "seed {seed}: key {k} is {got:?}, allowed {allowed:?}"
                );
                key.current = record.and_then(|r| Some((r.value_version, got?)));
                key.possible = vec![got];
            }
        }
        if let Some(state) = accepted {
            model.entry(k).or_default().change(Some(state));
            if policy == FsyncPolicy::Always {
                // The write is durable, and so is everything appended before it.
                promise_all(&mut model);
            }
        }
    }
}

#[test]
fn a_crash_after_an_eviction_never_resurrects_an_older_value_nor_loses_a_later_write() {
    for seed in 0..12 {
        crash_after_evictions(seed, FsyncPolicy::Always, false);
        crash_after_evictions(seed, FsyncPolicy::No, false);
    }
}

#[test]
fn a_crash_after_a_discard_never_resurrects_an_older_value_nor_loses_a_later_write() {
    for seed in 0..12 {
        crash_after_evictions(seed, FsyncPolicy::Always, true);
        crash_after_evictions(seed, FsyncPolicy::No, true);
    }
}

#[test]
fn a_crash_after_eviction_and_compaction_does_not_bring_back_the_previous_value() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(FaultBackend::new(dir.path()).unwrap());
    let mut options = options();
    options.compaction_dead_ratio = 0.3;
    let (store, _) = LogStore::open_with(backend.clone(), options.clone()).unwrap();
    // Segment 1: "first" (dead once overwritten, a small part of it); segment 2: "second"
    // (half of it, dead once evicted).
    put(&store, b"k", b"first", 1);
    put(&store, b"fill1", &[0; 3900], 2);
    put(&store, b"k", &[b's'; 1900], 3);
    put(&store, b"fill2", &[0; 1900], 4);
    put(&store, b"fill3", &[0; 3000], 5);
    store.sync().unwrap();
    for key in [&b"fill1"[..], b"fill2", b"fill3"] {
        store.get(key, T0 + 50_000);
    }
    // "second" is evicted; its segment is compacted (dropping it) before anything syncs
    // the evicted record explicitly.
    let evicted = store.evict(EvictionPolicy::AllKeysLru, 100, 1, T0 + 100_000);
    assert_eq!(evicted.map(|e| e.key), Some(Bytes::from("k")));
    assert_eq!(store.compact(T0).unwrap(), 1);
    drop(store);
    backend.crash(None).unwrap();
    let backend = Arc::new(FaultBackend::new(dir.path()).unwrap());
    let (store, _) = LogStore::open_with(backend, options).unwrap();
    let got = value(&store, b"k");
    assert!(
        got.is_none() || got.as_deref() == Some(&[b's'; 1900][..]),
        "{:?}",
        got.map(String::from_utf8)
    );
}

/// The log position: bytes appended since open.
fn appended(store: &LogStore) -> u64 {
    store.inner.writer.lock().appended
}

#[test]
fn a_discard_drops_a_live_key_without_a_tombstone_and_gives_back_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    set(&store, "k", None, T0);
    set(&store, "other", None, T0);
    assert!(store.discard(b"k").unwrap());
    assert!(store.get(b"k", T0).is_none());
    let stats = store.stats();
    assert_eq!((stats.keys, stats.tombstones, stats.expired), (1, 0, 0));
    assert_eq!(stats.used_bytes, 5 + 5 + 24);
    assert_eq!(store.used_bytes(), stats.used_bytes);
    // The dropped record and the evicted record written for it are dead bytes.
    let log = store.log_stats();
    assert_eq!(log.live_bytes, format::record_bytes(5, 5) as u64);
    assert_eq!(
        log.dead_bytes,
        (format::record_bytes(1, 5) + format::record_bytes(1, 0)) as u64
    );
    // Gone, not deleted: an older version arriving later is taken.
    let older = Record::new(Bytes::from("older"), None, v(T0 - 1));
    assert!(store.merge(b"k", &older).unwrap());
    assert_eq!(value(&store, b"k"), Some(b"older".to_vec()));
}

#[test]
fn a_discard_of_a_key_with_an_expiry_lowers_keys_with_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    set(&store, "ttl", Some(T0 + 10_000), T0);
    set(&store, "expired", Some(T0 + 10), T0);
    set(&store, "reclaimed", Some(T0 + 10), T0);
    assert!(store.get(b"reclaimed", T0 + 20).unwrap().value.is_none());
    let stats = store.stats();
    assert_eq!((stats.keys, stats.keys_with_expiry), (2, 2));
    assert_eq!((stats.tombstones, stats.expired), (1, 1));
    assert!(store.discard(b"ttl").unwrap());
    assert_eq!((store.stats().keys, store.stats().keys_with_expiry), (1, 1));
    // An expired value not yet reclaimed is dropped as it is: not counted as expired.
    assert!(store.discard(b"expired").unwrap());
    // A reclaimed one reads as a tombstone and leaves as one.
    assert!(store.discard(b"reclaimed").unwrap());
    let stats = store.stats();
    assert_eq!((stats.keys, stats.keys_with_expiry), (0, 0));
    assert_eq!(
        (stats.tombstones, stats.expired, stats.used_bytes),
        (0, 1, 0)
    );
    assert_eq!((store.used_bytes(), store.log_stats().live_bytes), (0, 0));
}

#[test]
fn a_discarded_tombstone_is_simply_gone_and_blocks_no_older_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.merge(b"k", &Record::tombstone(v(10))).unwrap();
    assert_eq!(store.stats().tombstones, 1);
    assert!(store.discard(b"k").unwrap());
    assert!(store.get(b"k", T0).is_none());
    assert_eq!((store.stats().tombstones, store.used_bytes()), (0, 0));
    let old = Record::new(Bytes::from("old"), None, v(5));
    assert!(store.merge(b"k", &old).unwrap());
    assert_eq!(value(&store, b"k"), Some(b"old".to_vec()));
}

#[test]
fn a_discard_of_a_missing_key_returns_false_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    set(&store, "k", None, T0);
    let position = appended(&store);
    assert!(!store.discard(b"missing").unwrap());
    assert_eq!(appended(&store), position);
    assert!(store.discard(b"k").unwrap());
    let position = appended(&store);
    assert!(!store.discard(b"k").unwrap());
    assert_eq!(appended(&store), position);
    assert_eq!(store.stats(), crate::StoreStats::default());
}

#[test]
fn a_discard_that_cannot_be_written_is_an_error_and_keeps_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(FaultBackend::new(dir.path()).unwrap());
    let (store, _) = LogStore::open_with(backend.clone(), options()).unwrap();
    set(&store, "k", Some(T0 + 10_000), T0);
    let before = store.stats();
    backend.fail_after(Some(0));
    assert!(matches!(
        store.discard(b"k"),
        Err(crate::StoreError::Write(_))
    ));
    assert_eq!(value(&store, b"k"), Some(b"value".to_vec()));
    assert_eq!(store.stats(), before);
    backend.fail_after(None);
    assert!(matches!(
        store.discard(b"k"),
        Err(crate::StoreError::Poisoned(_))
    ));
    // Nothing there, nothing to write: no error.
    assert!(!store.discard(b"missing").unwrap());
}

#[test]
fn a_discarded_key_leaves_the_eviction_pool() {
    for seed in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        set(&store, "old", None, T0);
        set(&store, "mid", None, T0 + 5_000);
        set(&store, "new", None, T0 + 10_000);
        // Sampling everything pools all three; the idlest goes, the others stay pooled.
        let victims = evict_n(&store, EvictionPolicy::AllKeysLru, 100, 1, T0 + 20_000);
        assert_eq!(victims, ["old"]);
        // "mid" moves away and comes back fresh: its old rank must not make it the next
        // victim, whichever key the next one-key sample finds.
        assert!(store.discard(b"mid").unwrap());
        set(&store, "mid", None, T0 + 20_000);
        let evicted = store.evict(EvictionPolicy::AllKeysLru, 1, seed, T0 + 20_000);
        assert_eq!(
            evicted.map(|e| e.key),
            Some(Bytes::from("new")),
            "seed {seed}"
        );
    }
}

/// Writes `rounds` versions of 100 keys (filling several segments), deletes k30..k39 and
/// gives k20..k29 an expiry, then discards every key whose number is below 40 (tombstones
/// included), and returns the store.
fn write_then_discard(dir: &Path, rounds: u64) -> LogStore {
    let store = open(dir);
    for round in 0..rounds {
        for i in 0..100u64 {
            let version = 1 + round * 100 + i;
            put(
                &store,
                format!("k{i}").as_bytes(),
                &[round as u8; 20],
                version,
            );
        }
    }
    for i in 20..40u64 {
        let version = v(1 + rounds * 100 + i);
        let record = if i < 30 {
            Record::new(
                Bytes::from(vec![rounds as u8; 20]),
                Some(T0 + 1_000_000),
                version,
            )
        } else {
            Record::tombstone(version)
        };
        store
            .update(format!("k{i}").as_bytes(), T0, &mut |_| {
                Update::Put(record.clone())
            })
            .unwrap();
    }
    assert_eq!(
        (store.stats().keys_with_expiry, store.stats().tombstones),
        (10, 10)
    );
    for i in 0..40 {
        assert!(store.discard(format!("k{i}").as_bytes()).unwrap(), "k{i}");
    }
    assert_gone_below_40(&store, rounds as u8 - 1);
    assert_eq!(store.stats().keys_with_expiry, 0);
    store
}

#[test]
fn discarded_keys_stay_gone_after_reopen_with_and_without_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = write_then_discard(dir.path(), 3);
        store.sync().unwrap();
    }
    let store = open(dir.path());
    assert_gone_below_40(&store, 2);
    assert_eq!(store.stats().keys_with_expiry, 0);
    // Now from a snapshot that covers the evicted records.
    put(&store, b"fill", &[0; 3000], 10_000);
    store.snapshot().unwrap();
    store.sync().unwrap();
    drop(store);
    let (store, report) = LogStore::open(dir.path(), options()).unwrap();
    assert!(report.from_snapshot, "{report}");
    assert_gone_below_40(&store, 2);
}

#[test]
fn discarded_keys_stay_gone_after_compaction_then_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = write_then_discard(dir.path(), 3);
        let before = store.log_stats();
        assert!(store.compact(T0).unwrap() > 0);
        assert!(store.log_stats().dead_bytes < before.dead_bytes);
        assert_gone_below_40(&store, 2);
        store.sync().unwrap();
    }
    let store = open(dir.path());
    assert_gone_below_40(&store, 2);
    drop(store);
    // Every sealed segment compacted with a very low threshold, then reopened.
    let mut options = options();
    options.compaction_dead_ratio = 0.01;
    {
        let (store, _) = LogStore::open(dir.path(), options).unwrap();
        put(&store, b"fill", &[0; 3000], 10_000);
        store.compact(T0).unwrap();
        store.compact(T0).unwrap();
        assert_gone_below_40(&store, 2);
        store.sync().unwrap();
    }
    let store = open(dir.path());
    assert_gone_below_40(&store, 2);
}

#[test]
fn an_older_merge_after_a_discard_is_accepted_and_survives_reopen_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = write_then_discard(dir.path(), 2);
        // Older versions than the discarded records, of a value (k1) and of a tombstone
        // (k31), as a transfer back to this node may bring: taken, and not hidden later.
        for key in [&b"k1"[..], b"k31"] {
            let older = Record::new(Bytes::from("older"), None, v(2));
            assert!(store.merge(key, &older).unwrap());
        }
        store.sync().unwrap();
    }
    for _ in 0..2 {
        let store = open(dir.path());
        assert_eq!(value(&store, b"k1"), Some(b"older".to_vec()));
        assert_eq!(value(&store, b"k31"), Some(b"older".to_vec()));
        assert_eq!(value(&store, b"k2"), None);
        assert_eq!(value(&store, b"k32"), None);
        assert_eq!((store.stats().keys, store.stats().tombstones), (62, 0));
        store.compact(T0).unwrap();
        store.sync().unwrap();
    }
}
