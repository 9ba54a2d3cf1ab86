//! The in-memory engine: records in shards by token prefix, each shard a hash table.
//!
//! A key's ring token (xxh3 of the key) picks its shard by its top bits and is also the
//! shard table's hash, so a key is hashed once. Shards are therefore ranges of the ring:
//! a `SCAN` cursor is simply the token where the next shard starts (stable under inserts,
//! deletes and table growth, unlike a position in one big table), and anti-entropy or
//! streaming can walk one token range by visiting only the shards it covers.
//!
//! `SCAN` and the expiry sweep work a whole shard at a time, so one call may visit more
//! keys than asked: with 4,096 shards that is about 250 keys per shard per million keys
//! (Redis's COUNT is a hint too).
//!
//! Values are copied on insert: the request's `Bytes` share the connection's read buffer,
//! and keeping a slice of it would pin the whole buffer.

use bytes::Bytes;
use hashbrown::HashTable;
use parking_lot::Mutex;

use crate::record::Record;
use crate::token::key_token;
use crate::{ExpireStats, Store, StoreError, StoreStats, Update};

/// log2 of the number of shards.
const SHARD_BITS: u32 = 12;
/// Number of shards; a power of two so the top token bits pick one.
const SHARDS: usize = 1 << SHARD_BITS;
/// Estimated bookkeeping bytes per key beyond its key and value bytes (the table slot with
/// token, key handle and record, the key's and value's allocation headers, load factor),
/// used for `used_memory`.
const ENTRY_OVERHEAD_BYTES: usize = 200;

/// One key and its record, stored inline in the shard's table.
struct Entry {
    token: u64,
    key: Bytes,
    record: Record,
}

#[derive(Default)]
struct Shard {
    table: HashTable<Entry>,
    stats: StoreStats,
}

/// Adds (`sign` > 0) or removes one record's share of the shard's counts.
fn account(stats: &mut StoreStats, key: &[u8], record: &Record, sign: isize) {
    let bytes = key.len() + record.value.as_ref().map_or(0, Bytes::len) + ENTRY_OVERHEAD_BYTES;
    let add = |counter: &mut usize, n: usize| {
        *counter = if sign > 0 {
            *counter + n
        } else {
            counter.saturating_sub(n)
        };
    };
    add(&mut stats.used_bytes, bytes);
    if record.value.is_some() {
        add(&mut stats.keys, 1);
        if record.expiry_ms.is_some() {
            add(&mut stats.keys_with_expiry, 1);
        }
    } else {
        add(&mut stats.tombstones, 1);
    }
}

/// Turns an expired value into a tombstone that keeps both cells' versions, so an older
/// write arriving later cannot bring the value back. Returns whether it did.
fn reclaim_if_expired(stats: &mut StoreStats, entry: &mut Entry, now_ms: u64) -> bool {
    if entry.record.value.is_none() || entry.record.is_live(now_ms) {
        return false;
    }
    account(stats, &entry.key, &entry.record, -1);
    entry.record.value = None;
    account(stats, &entry.key, &entry.record, 1);
    stats.expired += 1;
    true
}

impl Shard {
    /// The key's record after reclaiming its value if it expired at `now_ms`: one lookup
    /// for both, since the lookup's cache misses are most of a GET's cost.
    fn find_live(&mut self, token: u64, key: &[u8], now_ms: u64) -> Option<&Record> {
        let entry = self.table.find_mut(token, |e| e.token == token && e.key == key)?;
        reclaim_if_expired(&mut self.stats, entry, now_ms);
        Some(&entry.record)
    }

    fn find(&self, token: u64, key: &[u8]) -> Option<&Record> {
        self.table
            .find(token, |e| e.token == token && e.key == key)
            .map(|e| &e.record)
    }

    /// Stores `record` for `key`, replacing what was there.
    fn put(&mut self, token: u64, key: &[u8], record: Record) {
        account(&mut self.stats, key, &record, 1);
        let record = Record {
            value: record.value.map(|v| Bytes::copy_from_slice(&v)),
            ..record
        };
        match self
            .table
            .find_mut(token, |e| e.token == token && e.key == key)
        {
            Some(entry) => {
                let previous = std::mem::replace(&mut entry.record, record);
                account(&mut self.stats, key, &previous, -1);
            }
            None => {
                let entry = Entry {
                    token,
                    key: Bytes::copy_from_slice(key),
                    record,
                };
                self.table.insert_unique(token, entry, |e| e.token);
            }
        }
    }

    fn remove(&mut self, token: u64, key: &[u8]) {
        if let Ok(found) = self
            .table
            .find_entry(token, |e| e.token == token && e.key == key)
        {
            let (entry, _) = found.remove();
            account(&mut self.stats, &entry.key, &entry.record, -1);
        }
    }
}

/// Records kept in memory only; lost on restart. The pure-cache engine.
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    fn shard_of(token: u64) -> usize {
        (token >> (64 - SHARD_BITS)) as usize
    }

    /// The first token of shard `index`: the cursor that resumes a walk there.
    fn shard_start(index: usize) -> u64 {
        (index as u64) << (64 - SHARD_BITS)
    }

    fn shard(&self, token: u64) -> &Mutex<Shard> {
        &self.shards[Self::shard_of(token)]
    }

    /// Walks shards from the one holding `cursor` until about `count` records were handed
    /// to `visit` (whole shards at a time; in the first shard only tokens ≥ `cursor`).
    /// Returns the cursor of the next shard, 0 after the last.
    fn walk(
        &self,
        cursor: u64,
        count: usize,
        visit: &mut dyn FnMut(&mut Shard, u64) -> usize,
    ) -> u64 {
        let mut visited = 0;
        let first = Self::shard_of(cursor);
        for index in first..SHARDS {
            let from = if index == first { cursor } else { 0 };
            visited += visit(&mut self.shards[index].lock(), from);
            if visited >= count.max(1) {
                return if index + 1 < SHARDS {
                    Self::shard_start(index + 1)
                } else {
                    0
                };
            }
        }
        0
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &[u8], now_ms: u64) -> Option<Record> {
        let token = key_token(key);
        self.shard(token).lock().find_live(token, key, now_ms).cloned()
    }

    fn update(
        &self,
        key: &[u8],
        now_ms: u64,
        decide: &mut dyn FnMut(Option<&Record>) -> Update,
    ) -> Result<Option<Record>, StoreError> {
        let token = key_token(key);
        let mut shard = self.shard(token).lock();
        Ok(match decide(shard.find_live(token, key, now_ms)) {
            Update::Keep => shard.find(token, key).cloned(),
            Update::Put(record) => {
                shard.put(token, key, record.clone());
                Some(record)
            }
        })
    }

    fn merge(&self, key: &[u8], incoming: &Record) -> Result<bool, StoreError> {
        let token = key_token(key);
        let mut shard = self.shard(token).lock();
        let mut merged = shard.find(token, key).cloned().unwrap_or_default();
        if !merged.merge(incoming) {
            return Ok(false);
        }
        shard.put(token, key, merged);
        Ok(true)
    }

    fn scan(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        visit: &mut dyn FnMut(&Bytes, &Record),
    ) -> u64 {
        self.walk(cursor, count, &mut |shard, from| {
            let mut visited = 0;
            let Shard { table, stats } = shard;
            for entry in table.iter_mut().filter(|e| e.token >= from) {
                reclaim_if_expired(stats, entry, now_ms);
                visit(&entry.key, &entry.record);
                visited += 1;
            }
            visited
        })
    }

    fn random_key(&self, random_token: u64, now_ms: u64) -> Option<Bytes> {
        // Look from a random shard onwards, wrapping once, through a bounded number of
        // records so that a store full of tombstones cannot make this slow.
        const RANDOM_KEY_PROBES_MAX: usize = 1024;
        let mut probes = 0;
        let start = Self::shard_of(random_token);
        for step in 0..SHARDS {
            let mut shard = self.shards[(start + step) % SHARDS].lock();
            let Shard { table, stats } = &mut *shard;
            for entry in table.iter_mut() {
                reclaim_if_expired(stats, entry, now_ms);
                if entry.record.is_live(now_ms) {
                    return Some(entry.key.clone());
                }
                probes += 1;
                if probes >= RANDOM_KEY_PROBES_MAX {
                    return None;
                }
            }
        }
        None
    }

    fn clear(&self) -> Result<(), StoreError> {
        for shard in self.shards.iter() {
            *shard.lock() = Shard::default();
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn expire_step(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        tombstone_before_ms: u64,
    ) -> (ExpireStats, u64) {
        let mut stats = ExpireStats::default();
        let next = self.walk(cursor, count, &mut |shard, from| {
            let mut expired = Vec::new();
            let mut dead = Vec::new();
            let mut visited = 0;
            for entry in shard.table.iter().filter(|e| e.token >= from) {
                visited += 1;
                let record = &entry.record;
                if record.value.is_some() && !record.is_live(now_ms) {
                    expired.push((entry.token, entry.key.clone(), record.clone()));
                } else if record.value.is_none() && record.version().unix_ms() < tombstone_before_ms
                {
                    dead.push((entry.token, entry.key.clone()));
                }
            }
            for (token, key, record) in expired {
                // The tombstone keeps both cells' versions, so an older write arriving later
                // cannot bring the expired value back.
                shard.put(
                    token,
                    &key,
                    Record {
                        value: None,
                        ..record
                    },
                );
                stats.expired += 1;
            }
            for (token, key) in dead {
                shard.remove(token, &key);
                stats.tombstones_dropped += 1;
            }
            stats.sampled += visited;
            visited
        });
        (stats, next)
    }

    fn stats(&self) -> StoreStats {
        let mut total = StoreStats::default();
        for shard in self.shards.iter() {
            let stats = shard.lock().stats;
            total.keys += stats.keys;
            total.keys_with_expiry += stats.keys_with_expiry;
            total.tombstones += stats.tombstones;
            total.used_bytes += stats.used_bytes;
            total.expired += stats.expired;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Version;
    use proptest::prelude::*;
    use std::collections::BTreeMap as Model;

    fn v(hlc: u64) -> Version {
        Version { hlc, node: 1 }
    }

    #[test]
    fn scan_visits_every_key_once_across_calls() {
        let store = MemoryStore::new();
        for i in 0..1000u64 {
            store.merge(
                format!("k{i}").as_bytes(),
                &Record::new(Bytes::from("x"), None, v(i + 1)),
            );
        }
        let mut seen = Vec::new();
        let mut cursor = 0;
        for _ in 0..10_000 {
            cursor = store.scan(cursor, 13, 0, &mut |key, _| seen.push(key.clone()));
            if cursor == 0 {
                break;
            }
        }
        seen.sort();
        let before = seen.len();
        seen.dedup();
        assert_eq!((before, seen.len()), (1000, 1000));
    }

    #[test]
    fn an_older_write_loses_to_a_newer_tombstone() {
        let store = MemoryStore::new();
        store.merge(b"k", &Record::tombstone(v(10))).unwrap();
        assert!(!store.merge(b"k", &Record::new(Bytes::from("old"), None, v(5))).unwrap());
        assert_eq!(store.get(b"k", 0).unwrap().value, None);
    }

    #[test]
    fn the_expiry_sweep_turns_expired_values_into_tombstones_then_drops_them() {
        let store = MemoryStore::new();
        let version = Version {
            hlc: 1_000 << Version::LOGICAL_BITS,
            node: 1,
        };
        store.merge(
            b"gone",
            &Record::new(Bytes::from("x"), Some(2_000), version),
        );
        store.merge(b"kept", &Record::new(Bytes::from("x"), None, version)).unwrap();
        let (stats, _) = store.expire_step(0, 100, 3_000, 0);
        assert_eq!(stats.expired, 1);
        assert_eq!(store.stats().keys, 1);
        assert_eq!(store.stats().tombstones, 1);
        let (stats, _) = store.expire_step(0, 100, 3_000, 5_000);
        assert_eq!(stats.tombstones_dropped, 1);
        assert!(store.get(b"gone", 3_000).is_none());
        assert!(store.get(b"kept", 3_000).is_some());
    }

    #[test]
    fn reading_an_expired_key_reclaims_it_as_a_tombstone_with_its_versions() {
        let store = MemoryStore::new();
        store.merge(b"k", &Record::new(Bytes::from("x"), Some(2_000), v(7))).unwrap();
        assert_eq!(store.stats().keys, 1);
        let record = store.get(b"k", 2_000).unwrap();
        assert_eq!((record.value, record.value_version), (None, v(7)));
        assert_eq!((store.stats().keys, store.stats().expired), (0, 1));
        assert!(!store.merge(b"k", &Record::new(Bytes::from("old"), None, v(6))).unwrap());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, u8),
        Delete(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..32, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
            (0u8..32).prop_map(Op::Delete),
        ]
    }

    proptest! {
        #[test]
        fn the_store_agrees_with_a_btreemap_model(ops in proptest::collection::vec(op(), 1..200)) {
            let store = MemoryStore::new();
            let mut model = Model::new();
            for (i, op) in ops.iter().enumerate() {
                let version = v(i as u64 + 1);
                match *op {
                    Op::Put(k, value) => {
                        store.update(&[k], 0, &mut |_| Update::Put(Record::new(Bytes::from(vec![value]), None, version))).unwrap();
                        model.insert(k, value);
                    }
                    Op::Delete(k) => {
                        store.update(&[k], 0, &mut |_| Update::Put(Record::tombstone(version))).unwrap();
                        model.remove(&k);
                    }
                }
            }
            for k in 0u8..32 {
                let stored = store.get(&[k], 0).and_then(|r| r.value).map(|b| b[0]);
                prop_assert_eq!(stored, model.get(&k).copied());
            }
            prop_assert_eq!(store.stats().keys, model.len());
        }
    }
}
