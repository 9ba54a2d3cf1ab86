//! The in-memory engine: records in token order, in shards by token prefix.
//!
//! Each shard is a `BTreeMap` from ring token to the keys with that token (almost always
//! one). Token order is what makes a `SCAN` cursor stable under inserts and deletes (the
//! cursor is simply the next token) and what lets anti-entropy and streaming walk one ring
//! range without visiting every key. Shards are chosen by the top bits of the token, so a
//! token range touches few shards and unrelated keys rarely wait on the same lock.
//!
//! Values are copied on insert: the request's `Bytes` share the connection's read buffer,
//! and keeping a slice of it would pin the whole buffer.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::record::Record;
use crate::token::key_token;
use crate::{ExpireStats, Store, StoreStats, Update};

/// log2 of the number of shards.
const SHARD_BITS: u32 = 6;
/// Number of shards; a power of two so the top token bits pick one.
const SHARDS: usize = 1 << SHARD_BITS;
/// Estimated bookkeeping bytes per key beyond its key and value bytes (tree node share,
/// slot vector, record fields), used for `used_memory`.
const ENTRY_OVERHEAD_BYTES: usize = 160;

/// Keys sharing one token: almost always exactly one.
type Slot = Vec<(Bytes, Record)>;

#[derive(Default)]
struct Shard {
    map: BTreeMap<u64, Slot>,
    stats: StoreStats,
}

/// Adds (`sign` > 0) or removes one record's share of the shard's counts.
fn account(stats: &mut StoreStats, key: &[u8], record: &Record, sign: isize) {
    {
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
}

impl Shard {
    fn find(&self, token: u64, key: &[u8]) -> Option<&Record> {
        self.map
            .get(&token)?
            .iter()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, r)| r)
    }

    /// Stores `record` for `key`, replacing what was there.
    fn put(&mut self, token: u64, key: &[u8], record: Record) {
        account(&mut self.stats, key, &record, 1);
        let record = Record {
            value: record.value.map(|v| Bytes::copy_from_slice(&v)),
            ..record
        };
        let slot = self.map.entry(token).or_default();
        match slot.iter_mut().find(|(k, _)| k.as_ref() == key) {
            Some((_, old)) => {
                let previous = std::mem::replace(old, record);
                account(&mut self.stats, key, &previous, -1);
            }
            None => slot.push((Bytes::copy_from_slice(key), record)),
        }
    }

    fn remove(&mut self, token: u64, key: &[u8]) {
        let Some(slot) = self.map.get_mut(&token) else {
            return;
        };
        if let Some(at) = slot.iter().position(|(k, _)| k.as_ref() == key) {
            let (key, record) = slot.swap_remove(at);
            account(&mut self.stats, &key, &record, -1);
        }
        if slot.is_empty() {
            self.map.remove(&token);
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

    fn shard(&self, token: u64) -> &Mutex<Shard> {
        &self.shards[Self::shard_of(token)]
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &[u8]) -> Option<Record> {
        let token = key_token(key);
        self.shard(token).lock().find(token, key).cloned()
    }

    fn update(
        &self,
        key: &[u8],
        decide: &mut dyn FnMut(Option<&Record>) -> Update,
    ) -> Option<Record> {
        let token = key_token(key);
        let mut shard = self.shard(token).lock();
        match decide(shard.find(token, key)) {
            Update::Keep => shard.find(token, key).cloned(),
            Update::Put(record) => {
                shard.put(token, key, record.clone());
                Some(record)
            }
        }
    }

    fn merge(&self, key: &[u8], incoming: &Record) -> bool {
        let token = key_token(key);
        let mut shard = self.shard(token).lock();
        let mut merged = shard.find(token, key).cloned().unwrap_or_default();
        if !merged.merge(incoming) {
            return false;
        }
        shard.put(token, key, merged);
        true
    }

    fn scan(&self, cursor: u64, count: usize, visit: &mut dyn FnMut(&Bytes, &Record)) -> u64 {
        let mut visited = 0;
        let mut from = cursor;
        for shard_index in Self::shard_of(cursor)..SHARDS {
            let shard = self.shards[shard_index].lock();
            for (&token, slot) in shard.map.range(from..) {
                if visited >= count.max(1) {
                    // Resume at this token; 0 would mean "done", and token 0 sorts first,
                    // so it can never be a resume point after the first key.
                    return token;
                }
                for (key, record) in slot {
                    visit(key, record);
                    visited += 1;
                }
            }
            from = 0;
        }
        0
    }

    fn random_key(&self, random_token: u64, now_ms: u64) -> Option<Bytes> {
        // Walk forward from a random token, wrapping once, through at most a bounded number
        // of records so that a store full of tombstones cannot make this slow.
        const RANDOM_KEY_PROBES_MAX: usize = 1024;
        let mut probes = 0;
        let start = Self::shard_of(random_token);
        for step in 0..=SHARDS {
            let shard_index = (start + step) % SHARDS;
            let lower = if step == 0 {
                Bound::Included(random_token)
            } else {
                Bound::Unbounded
            };
            let shard = self.shards[shard_index].lock();
            for (_, slot) in shard.map.range((lower, Bound::Unbounded)) {
                for (key, record) in slot {
                    if record.is_live(now_ms) {
                        return Some(key.clone());
                    }
                    probes += 1;
                    if probes >= RANDOM_KEY_PROBES_MAX {
                        return None;
                    }
                }
            }
        }
        None
    }

    fn clear(&self) {
        for shard in self.shards.iter() {
            *shard.lock() = Shard::default();
        }
    }

    fn expire_step(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        tombstone_before_ms: u64,
    ) -> (ExpireStats, u64) {
        let mut stats = ExpireStats::default();
        let mut from = cursor;
        for shard_index in Self::shard_of(cursor)..SHARDS {
            let mut shard = self.shards[shard_index].lock();
            let mut expired = Vec::new();
            let mut dead = Vec::new();
            let mut resume = None;
            for (&token, slot) in shard.map.range(from..) {
                if stats.sampled >= count.max(1) {
                    resume = Some(token);
                    break;
                }
                for (key, record) in slot {
                    stats.sampled += 1;
                    if record.value.is_some() && !record.is_live(now_ms) {
                        expired.push((token, key.clone(), record.clone()));
                    } else if record.value.is_none()
                        && record.version().unix_ms() < tombstone_before_ms
                    {
                        dead.push((token, key.clone()));
                    }
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
            if let Some(token) = resume {
                return (stats, token);
            }
            from = 0;
        }
        (stats, 0)
    }

    fn stats(&self) -> StoreStats {
        let mut total = StoreStats::default();
        for shard in self.shards.iter() {
            let stats = shard.lock().stats;
            total.keys += stats.keys;
            total.keys_with_expiry += stats.keys_with_expiry;
            total.tombstones += stats.tombstones;
            total.used_bytes += stats.used_bytes;
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
            cursor = store.scan(cursor, 13, &mut |key, _| seen.push(key.clone()));
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
        store.merge(b"k", &Record::tombstone(v(10)));
        assert!(!store.merge(b"k", &Record::new(Bytes::from("old"), None, v(5))));
        assert_eq!(store.get(b"k").unwrap().value, None);
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
        store.merge(b"kept", &Record::new(Bytes::from("x"), None, version));
        let (stats, _) = store.expire_step(0, 100, 3_000, 0);
        assert_eq!(stats.expired, 1);
        assert_eq!(store.stats().keys, 1);
        assert_eq!(store.stats().tombstones, 1);
        let (stats, _) = store.expire_step(0, 100, 3_000, 5_000);
        assert_eq!(stats.tombstones_dropped, 1);
        assert!(store.get(b"gone").is_none());
        assert!(store.get(b"kept").is_some());
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
                        store.update(&[k], &mut |_| Update::Put(Record::new(Bytes::from(vec![value]), None, version)));
                        model.insert(k, value);
                    }
                    Op::Delete(k) => {
                        store.update(&[k], &mut |_| Update::Put(Record::tombstone(version)));
                        model.remove(&k);
                    }
                }
            }
            for k in 0u8..32 {
                let stored = store.get(&[k]).and_then(|r| r.value).map(|b| b[0]);
                prop_assert_eq!(stored, model.get(&k).copied());
            }
            prop_assert_eq!(store.stats().keys, model.len());
        }
    }
}
