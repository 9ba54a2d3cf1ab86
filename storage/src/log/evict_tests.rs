//! Tests of eviction in the log store: the policies (as `MemoryStore`'s tests), `used_bytes`,
//! and that an evicted key stays evicted across restarts, compactions and crashes without
//! hiding a write made after the eviction.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::eviction::splitmix64;
use crate::record::{Record, Version};
use crate::{EvictionPolicy, Store, Update};

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
        .and_then(|r| r.value)
        .map(|b| b.to_vec())
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
        store.expire_step(0, 10_000, T0 + 3_500, 0);
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

fn assert_evicted_below_40(store: &LogStore, last_round: u8) {
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
    assert_evicted_below_40(&store, 2);
    // Now from a snapshot that covers the evicted records.
    put(&store, b"fill", &[0; 3000], 10_000);
    store.snapshot().unwrap();
    store.sync().unwrap();
    drop(store);
    let (store, report) = LogStore::open(dir.path(), options()).unwrap();
    assert!(report.from_snapshot, "{report}");
    assert_evicted_below_40(&store, 2);
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
        assert_evicted_below_40(&store, 2);
        // Compact again: outputs holding evicted records must not become candidates at once.
        store.compact(T0).unwrap();
        store.sync().unwrap();
    }
    let store = open(dir.path());
    assert_evicted_below_40(&store, 2);
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
    assert_evicted_below_40(&store, 2);
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
/// acknowledged after it.
fn crash_after_evictions(seed: u64, policy: FsyncPolicy) {
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
                    .and_then(|r| r.value.as_ref())
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
        crash_after_evictions(seed, FsyncPolicy::Always);
        crash_after_evictions(seed, FsyncPolicy::No);
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
