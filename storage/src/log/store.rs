//! The engine's handle, [`LogStore`]: opening (recovery, then the background thread), the
//! [`Store`] methods, the write path that points the keydir at a new record, and the
//! background thread (the everysec fsync, snapshots, compaction). The state it shares and
//! the lock order are in `inner`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;

use super::backend::{FileBackend, StorageBackend};
use super::chain::{self, Chain};
use super::evict;
use super::format::{self, HEADER_BYTES, RecordHeader};
use super::inner::{Found, Inner};
use super::keydir::{
    Entry, Kind, Shard, account, at_or_after, entry_hash, fresh_access, tag_of, token_hash,
};
use super::recovery;
use super::segment::Segment;
use super::snapshot::{self, SNAPSHOT_NAME};
use super::types::{FsyncPolicy, LogError, LogOptions, LogStats, RecoveryReport};
use crate::aae::record_digest;
use crate::clock::wall_clock_ms;
use crate::collection::{self, Collection, Journal};
use crate::eviction::splitmix64;
use crate::record::{DataType, Record, Value, Version};
use crate::shard::{SHARDS, shard_of, shard_start};
use crate::token::key_token;
use crate::{
    EvictedKey, EvictionPolicy, ExpireStats, KeyUse, MerkleLeaves, Store, StoreError, StoreStats,
    TombstoneHorizon, Update,
};

/// The log-structured store. Open it with [`LogStore::open`]; see the module docs.
pub struct LogStore {
    pub(super) inner: Arc<Inner>,
    pub(super) thread: Option<JoinHandle<()>>,
}

impl Drop for LogStore {
    fn drop(&mut self) {
        // No sync here: a drop without `sync()` is what a crash looks like to the tests,
        // and a graceful shutdown calls `sync()` first.
        self.inner.background.lock().stop = true;
        self.inner.background_wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl LogStore {
    /// Opens (or creates) the store in `dir` on the real file system and recovers it.
    ///
    /// # Errors
    /// Bad options, an I/O error, or a segment of an unknown format version. Corrupt
    /// records and torn tails are not errors: they are skipped and counted in the report.
    pub fn open(
        dir: &std::path::Path,
        options: LogOptions,
    ) -> Result<(LogStore, RecoveryReport), LogError> {
        let backend = FileBackend::new(dir).map_err(LogError::io("creating the directory"))?;
        LogStore::open_with(Arc::new(backend), options)
    }

    /// Opens the store kept by `backend` (a fault-injecting one in tests).
    ///
    /// # Errors
    /// As [`LogStore::open`].
    pub fn open_with(
        backend: Arc<dyn StorageBackend>,
        options: LogOptions,
    ) -> Result<(LogStore, RecoveryReport), LogError> {
        let (inner, report) = recovery::recover(backend, &options)?;
        let thread = if options.background {
            let worker = inner.clone();
            Some(
                std::thread::Builder::new()
                    .name("ringcache-log".into())
                    .spawn(move || worker.run_background())
                    .map_err(LogError::io("starting the background thread"))?,
            )
        } else {
            None
        };
        Ok((LogStore { inner, thread }, report))
    }
}

/// What [`Inner::write_changed`] knows of the key's state before the change.
enum Before<'a> {
    /// A copy of it: the delta is a diff of the two states.
    Copy(&'a Record),
    /// Its type and Merkle digest: the change was made where the state is kept, and its
    /// journal gives the delta (`None`: the change replaced the state, written whole).
    Journaled {
        kind: DataType,
        digest: u64,
        journal: Option<&'a Journal>,
    },
}

impl Before<'_> {
    /// The type of the collection before, `None` when it was not one (or the delta cannot
    /// be told).
    fn kind(&self) -> Option<DataType> {
        match self {
            Before::Copy(before) => before.cells().map(|_| before.kind),
            Before::Journaled { kind, journal, .. } => journal.map(|_| *kind),
        }
    }

    /// The delta of `after` (a collection written at `version`) over the state before.
    fn delta(&self, after: &Collection, version: Version) -> Collection {
        match self {
            Before::Copy(before) => {
                let before = before.cells().expect("a collection before");
                after.delta_since(before, version)
            }
            Before::Journaled { journal, .. } => journal.expect("a journal").delta(after, version),
        }
    }
}

impl Inner {
    /// The key's record, its expired value reclaimed first. With `touch`, a live value
    /// counts as accessed for eviction.
    fn find_live(
        &self,
        shard: &mut Shard,
        token: u64,
        key: &[u8],
        now_ms: u64,
        touch: bool,
    ) -> Option<Found> {
        let segments = self.segments.read();
        let Shard { table, stats, rng } = shard;
        let entry = Self::find(&segments, table, token, key)?;
        let (_, mut found) = Self::load(&segments, *entry)?;
        Self::reclaim_if_expired(stats, &self.expired, key, entry, &mut found, now_ms);
        if touch && found.record.value.is_some() {
            entry.access = evict::touch(entry.access, now_ms, splitmix64(rng));
        }
        Some(found)
    }

    /// Writes `record` for `key` and points the keydir (and the Merkle leaves) at it, once it
    /// is as durable as the policy promises. On error the keydir and the leaves are
    /// unchanged. A key that held no value starts fresh access statistics at `now_ms`; one
    /// that did counts an access if `touch`.
    fn write(
        &self,
        shard: &mut Shard,
        token: u64,
        key: &[u8],
        record: &Record,
        now_ms: u64,
        touch: bool,
    ) -> Result<(), StoreError> {
        self.write_over(shard, token, key, record, now_ms, touch, None)
    }

    /// As [`Inner::write`]; `old_digest` is the Merkle digest of the record it replaces when
    /// that record is no longer where the keydir points (its state was edited in place).
    #[allow(clippy::too_many_arguments)]
    fn write_over(
        &self,
        shard: &mut Shard,
        token: u64,
        key: &[u8],
        record: &Record,
        now_ms: u64,
        touch: bool,
        old_digest: Option<u64>,
    ) -> Result<(), StoreError> {
        let value_len = record.value.as_ref().map_or(0, Value::encoded_len);
        if u32::try_from(key.len()).is_err()
            || u32::try_from(value_len).is_err()
            || HEADER_BYTES as u64 + format::record_bytes(key.len(), value_len) as u64
                >= u64::from(u32::MAX)
        {
            return Err(StoreError::Write(format!(
                "a record of {} key bytes and {value_len} value bytes is too large",
                key.len()
            )));
        }
        let mut bytes = Vec::new();
        format::encode_record(key, record, &mut bytes);
        let (segment, offset, position) = self.append(&bytes)?;
        if self.fsync_policy() == FsyncPolicy::Always && !self.options.deferred_acknowledgement {
            self.wait_durable(position)?;
        }
        let header = RecordHeader::parse(&bytes).expect("just encoded");
        let mut entry = Entry {
            tag: tag_of(token),
            segment: segment.id,
            slot: offset as u32,
            access: fresh_access(now_ms),
        };
        segment
            .live_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        account(&mut shard.stats, Kind::of(&header, false), true);
        let segments = self.segments.read();
        let Shard { table, stats, rng } = shard;
        match Self::find(&segments, table, token, key) {
            Some(slot) => {
                let old_record = match old_digest {
                    Some(_) => None,
                    None => segments
                        .get(&slot.segment)
                        .and_then(|s| s.merkle_record(slot.offset())),
                };
                let had_value = !slot.reclaimed()
                    && segments
                        .get(&slot.segment)
                        .and_then(|s| s.header_at(slot.offset()))
                        .is_some_and(|h| !h.is_tombstone());
                if had_value {
                    entry.access = if touch {
                        evict::touch(slot.access, now_ms, splitmix64(rng))
                    } else {
                        slot.access
                    };
                }
                let old = std::mem::replace(slot, entry);
                Self::forget(&segments, stats, old);
                match old_digest {
                    Some(old) => self.merkle.swap(token, old, record_digest(token, record)),
                    None => self
                        .merkle
                        .replace(token, old_record.as_ref(), Some(record)),
                }
            }
            None => {
                table.insert_unique(token_hash(token), entry, entry_hash);
                self.merkle.toggle(token, record);
            }
        }
        Ok(())
    }

    /// Writes `after`, the key's state after a change of `before` (the state `find_live`
    /// read under the same lock): as a delta that extends the key's chain when both are
    /// collections of one type and the chain may grow, else whole (a new base) through
    /// [`Inner::write`]. Either way the state is kept decoded at the new record, so the next
    /// read or write of the collection decodes nothing (see `chain.rs`).
    ///
    /// # Errors
    /// As [`Inner::write`].
    #[allow(clippy::too_many_arguments)]
    fn write_changed(
        &self,
        shard: &mut Shard,
        token: u64,
        key: &[u8],
        before: Before,
        after: &Record,
        now_ms: u64,
        touch: bool,
    ) -> Result<(), StoreError> {
        // The chain is taken out while the delta is written (its links are not copied: a
        // chain may have thousands) and put back if the write fails.
        let (current, taken) = {
            let segments = self.segments.read();
            match Self::find(&segments, &mut shard.table, token, key) {
                Some(entry) => (Some(*entry), chain::take(&segments, *entry)),
                None => (None, None),
            }
        };
        let put_back = |taken: Option<(Chain, bool)>| {
            if let Some((kept, true)) = taken {
                chain::keep(&self.segments.read(), kept);
            }
        };
        let extends = |kept: &Chain| {
            !chain::needs_base(kept.links.len(), kept.base_bytes, kept.delta_bytes)
                && !kept.touches_compacting(&self.segments.read())
        };
        let chained = match (before.kind(), after.cells(), current, &taken) {
            (Some(kind), Some(new), Some(current), Some((kept, _)))
                if kind == after.kind && extends(kept) =>
            {
                Some((current, before.delta(new, after.value_version)))
            }
            _ => None,
        };
        let Some((current, delta)) = chained else {
            put_back(taken);
            let old_digest = match &before {
                Before::Copy(_) => None,
                Before::Journaled { digest, .. } => Some(*digest),
            };
            self.write_over(shard, token, key, after, now_ms, touch, old_digest)?;
            self.keep_base(shard, token, key, after);
            return Ok(());
        };
        let mut bytes = Vec::new();
        format::encode_delta(key, after, &delta, &mut bytes);
        let appended = self.append(&bytes).and_then(|(segment, offset, position)| {
            if self.fsync_policy() == FsyncPolicy::Always && !self.options.deferred_acknowledgement
            {
                self.wait_durable(position)?;
            }
            Ok((segment, offset))
        });
        let (segment, offset) = match appended {
            Ok(at) => at,
            Err(error) => {
                put_back(taken);
                return Err(error);
            }
        };
        let mut extended = taken.expect("chained").0;
        let header = RecordHeader::parse(&bytes).expect("just encoded");
        segment
            .live_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let segments = self.segments.read();
        let Shard { table, stats, rng } = shard;
        let Some(slot) = Self::find(&segments, table, token, key) else {
            return Ok(());
        };
        debug_assert_eq!(*slot, current, "the key's record changed under its lock");
        let new = Entry {
            tag: tag_of(token),
            segment: segment.id,
            slot: offset as u32,
            access: match touch {
                true => evict::touch(slot.access, now_ms, splitmix64(rng)),
                false => slot.access,
            },
        };
        let old = std::mem::replace(slot, new);
        // The old link stays live, in the chain: only the keydir's counts move.
        if let Some(old_header) = segments
            .get(&old.segment)
            .and_then(|s| s.header_at(old.offset()))
        {
            account(stats, Kind::of(&old_header, old.reclaimed()), false);
        }
        account(stats, Kind::of(&header, false), true);
        extended.push(
            after.clone(),
            (segment.id, offset as u32),
            bytes.len() as u64,
        );
        chain::keep(&segments, extended);
        // `before` is the state the leaves hold for the key (the chain it was read from is
        // taken out, so it cannot be read again from there).
        match before {
            Before::Copy(before) => self.merkle.replace(token, Some(before), Some(after)),
            Before::Journaled { digest, .. } => {
                self.merkle.swap(token, digest, record_digest(token, after));
            }
        }
        Ok(())
    }

    /// [`LogStore::update_in_place`] of a live collection: the edit runs on the state kept
    /// with the key's chain, where it is (no copy of the path to each changed cell, no diff
    /// of two states), journaling what it changes; the journal gives the delta, and undoes
    /// the edit if writing it fails. Falls back to editing a copy when the state is shared
    /// (a reader holds it).
    fn edit_in_place(
        &self,
        shard: &mut Shard,
        token: u64,
        key: &[u8],
        found: Record,
        now_ms: u64,
        edit: &mut dyn FnMut(&mut Record) -> bool,
    ) -> Result<Option<Record>, StoreError> {
        let Some(entry) = Self::find(&self.segments.read(), &mut shard.table, token, key).copied()
        else {
            return Ok(Some(found));
        };
        let kept = chain::take_record(&self.segments.read(), entry);
        let had_kept = kept.is_some();
        let mut state = match kept {
            Some(kept) => {
                drop(found);
                kept
            }
            None => found,
        };
        let put_back = |state: &Record| {
            if had_kept {
                chain::set_record(&self.segments.read(), entry, state.clone());
            }
        };
        let digest = record_digest(token, &state);
        let header = (
            state.kind,
            state.value_version,
            state.expiry_ms,
            state.expiry_version,
        );
        let journaled = match &mut state.value {
            Some(Value::Cells(cells)) => Arc::get_mut(cells).map(Collection::start_journal),
            _ => None,
        };
        if journaled.is_none() {
            put_back(&state);
            let before = state.clone();
            if !edit(&mut state) {
                return Ok(Some(before));
            }
            self.write_changed(
                shard,
                token,
                key,
                Before::Copy(&before),
                &state,
                now_ms,
                false,
            )?;
            return Ok(Some(state));
        }
        let changed = edit(&mut state);
        let journal = match &mut state.value {
            Some(Value::Cells(cells)) => Arc::get_mut(cells).and_then(Collection::take_journal),
            _ => None,
        };
        if !changed {
            // The edit undid itself in place (a failed command): the state is as it was.
            put_back(&state);
            return Ok(Some(state));
        }
        // A live collection is edited where it is, so the journal is there; a record the
        // edit replaced whole is written whole.
        debug_assert!(journal.is_some(), "an edit replaced a live collection");
        let before = Before::Journaled {
            kind: header.0,
            digest,
            journal: journal.as_ref(),
        };
        match self.write_changed(shard, token, key, before, &state, now_ms, false) {
            Ok(()) => Ok(Some(state)),
            Err(error) => {
                if let (Some(journal), Some(Value::Cells(cells))) = (journal, &mut state.value) {
                    journal.undo(Arc::make_mut(cells));
                }
                (
                    state.kind,
                    state.value_version,
                    state.expiry_ms,
                    state.expiry_version,
                ) = header;
                put_back(&state);
                Err(error)
            }
        }
    }

    /// Writes the state of `key` whole (a new base at the head of the log) if its latest
    /// record is part of a chain of deltas, so that every older link goes dead: what
    /// compaction does instead of moving a link, and a snapshot before covering one.
    ///
    /// # Errors
    /// As [`Inner::write`].
    pub(super) fn rebase(&self, key: &[u8], now_ms: u64) -> Result<(), StoreError> {
        let token = key_token(key);
        let mut shard = self.lock_shard(shard_of(token));
        let state = {
            let segments = self.segments.read();
            let Some(entry) = Self::find(&segments, &mut shard.table, token, key).map(|e| *e)
            else {
                return Ok(());
            };
            let (links, _, _) = chain::links_of(&segments, entry);
            let lone_base = links.len() == 1
                && segments
                    .get(&entry.segment)
                    .and_then(|s| s.header_at(entry.offset()))
                    .is_some_and(|h| !h.is_delta());
            if links.is_empty() || lone_base {
                return Ok(());
            }
            match Self::load(&segments, entry) {
                Some((_, found)) => found.record,
                None => return Ok(()),
            }
        };
        self.write(&mut shard, token, key, &state, now_ms, false)?;
        self.keep_base(&mut shard, token, key, &state);
        Ok(())
    }

    /// The keys whose chain of deltas has a link in a sealed segment.
    fn chains_in_sealed_segments(&self) -> Vec<Bytes> {
        let segments = self.segments.read();
        let mut keys = Vec::new();
        for segment in segments.values() {
            for (&offset, kept) in segment.chains.lock().iter() {
                let sealed = |&(id, _): &chain::Position| {
                    segments
                        .get(&id)
                        .is_some_and(|s| s.sealed.load(Ordering::Acquire))
                };
                if kept.has_deltas() && kept.links.iter().any(sealed) {
                    keys.push(Bytes::copy_from_slice(segment.key_at(offset as usize)));
                }
            }
        }
        keys
    }

    /// Keeps `state`, just written whole for `key`, decoded at its record as a chain of one
    /// link, so that the next element write does not decode it again.
    fn keep_base(&self, shard: &mut Shard, token: u64, key: &[u8], state: &Record) {
        if state.cells().is_none() {
            return;
        }
        let segments = self.segments.read();
        let Some(entry) = Self::find(&segments, &mut shard.table, token, key).map(|e| *e) else {
            return;
        };
        let Some(header) = segments
            .get(&entry.segment)
            .and_then(|s| s.header_at(entry.offset()))
        else {
            return;
        };
        chain::keep(
            &segments,
            Chain::base(state.clone(), chain::position(entry), header.bytes() as u64),
        );
    }

    /// Walks shards from the one holding `cursor` until about `count` records were handed
    /// to `visit`, as `MemoryStore` does. Returns the next cursor, 0 after the last shard.
    fn walk(
        &self,
        cursor: u64,
        count: usize,
        visit: &mut dyn FnMut(&mut Shard, u64) -> usize,
    ) -> u64 {
        let mut visited = 0;
        let first = shard_of(cursor);
        for index in first..SHARDS {
            let from = if index == first { cursor } else { 0 };
            visited += visit(&mut self.lock_shard(index), from);
            if visited >= count.max(1) {
                return if index + 1 < SHARDS {
                    shard_start(index + 1)
                } else {
                    0
                };
            }
        }
        0
    }

    pub fn log_stats(&self) -> LogStats {
        let segments = self.segments.read();
        let mut stats = LogStats {
            segments: segments.len(),
            compactions: self.compactions.load(Ordering::Relaxed),
            bytes_reclaimed: self.bytes_reclaimed.load(Ordering::Relaxed),
            tombstones_dropped: self.tombstones_dropped.load(Ordering::Relaxed),
            snapshots: self.snapshots.load(Ordering::Relaxed),
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            poisoned: self.poison_reason.lock().clone(),
            ..LogStats::default()
        };
        for segment in segments.values() {
            let live = segment.live_bytes.load(Ordering::Relaxed);
            stats.live_bytes += live;
            stats.dead_bytes += segment.written_bytes().saturating_sub(live);
        }
        stats
    }

    /// The background thread: the everysec fsync, snapshots after a seal, compaction.
    pub fn run_background(self: &Arc<Inner>) {
        const TICK: Duration = Duration::from_secs(1);
        loop {
            {
                let mut mailbox = self.background.lock();
                if !mailbox.stop {
                    self.background_wake.wait_for(&mut mailbox, TICK);
                }
                if mailbox.stop {
                    return;
                }
            }
            if self.fsync_policy() == FsyncPolicy::EverySec && !self.is_poisoned() {
                let _ = self.sync_all();
            }
            if self.is_poisoned() {
                continue;
            }
            let now_ms = wall_clock_ms();
            let compacted = self
                .compact(now_ms, self.options.compaction_bytes_per_s)
                .unwrap_or(0);
            let due = std::mem::take(&mut self.background.lock().snapshot_due);
            if due || compacted > 0 {
                let _ = self.write_snapshot();
            }
        }
    }

    /// Writes a keydir snapshot covering the sealed segments (fsynced first).
    pub fn write_snapshot(&self) -> Result<(), LogError> {
        let _maintenance = self.maintenance.lock();
        // A snapshot covers no part of a chain: chains reaching into sealed segments are
        // re-based first (their links go dead), so the snapshot can cover those segments.
        for key in self.chains_in_sealed_segments() {
            self.rebase(&key, wall_clock_ms())
                .map_err(|e| LogError::io("re-basing a chain")(std::io::Error::other(e)))?;
        }
        if snapshot::write(&*self.backend, &self.segments, &self.shards)? {
            self.snapshots.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl LogStore {
    /// Counters for metrics: segments, live and dead bytes, compactions.
    pub fn log_stats(&self) -> LogStats {
        self.inner.log_stats()
    }

    /// Compacts now every sealed segment whose dead ratio passes the threshold, expiring
    /// values at `now_ms`, without a rate limit. Returns how many segments were compacted.
    /// The background thread does this by itself; this is for tests and tools.
    ///
    /// # Errors
    /// An I/O error; the segments involved are left as they were.
    pub fn compact(&self, now_ms: u64) -> Result<usize, LogError> {
        self.inner.compact(now_ms, 0)
    }

    /// Writes a keydir snapshot of the sealed segments now (the background thread does
    /// this after a segment is sealed).
    ///
    /// # Errors
    /// An I/O error; the previous snapshot stays in place.
    pub fn snapshot(&self) -> Result<(), LogError> {
        self.inner.write_snapshot()
    }
}

/// Whether `record` is a collection that expired with elements in it: one the lookups leave
/// as it is (see `Inner::reclaim_if_expired`), so a write over it or the sweep is its expiry.
fn expired_collection(record: &Record, now_ms: u64) -> bool {
    record.kind.digests_value() && record.holds_value() && !record.is_live(now_ms)
}

impl Store for LogStore {
    fn merkle(&self) -> &MerkleLeaves {
        &self.inner.merkle
    }

    fn expired_keys(&self) -> Option<&crate::ExpiredKeys> {
        Some(&self.inner.expired)
    }

    fn get(&self, key: &[u8], now_ms: u64) -> Option<Record> {
        let token = key_token(key);
        let mut shard = self.inner.lock_shard(shard_of(token));
        self.inner
            .find_live(&mut shard, token, key, now_ms, true)
            .map(|found| found.record)
    }

    fn peek(&self, key: &[u8], now_ms: u64) -> Option<Record> {
        let token = key_token(key);
        let mut shard = self.inner.lock_shard(shard_of(token));
        self.inner
            .find_live(&mut shard, token, key, now_ms, false)
            .map(|found| found.record)
    }

    fn update(
        &self,
        key: &[u8],
        now_ms: u64,
        decide: &mut dyn FnMut(Option<&Record>) -> Update,
    ) -> Result<Option<Record>, StoreError> {
        let token = key_token(key);
        let mut shard = self.inner.lock_shard(shard_of(token));
        // A write looks the key up as an access, as Redis's lookupKeyWrite does; the write
        // below then does not count a second one.
        let current = self.inner.find_live(&mut shard, token, key, now_ms, true);
        // An expired collection is not reclaimed by the lookup: written over (the sweep's
        // rewrite included), it expired now.
        let expired_collection = current
            .as_ref()
            .is_some_and(|found| expired_collection(&found.record, now_ms));
        match decide(current.as_ref().map(|found| &found.record)) {
            Update::Keep => Ok(current.map(|found| found.record)),
            Update::Put(record) => {
                if expired_collection {
                    self.inner.expired.note(key);
                }
                self.inner
                    .write(&mut shard, token, key, &record, now_ms, false)?;
                Ok(Some(record))
            }
        }
    }

    fn update_in_place(
        &self,
        key: &[u8],
        now_ms: u64,
        edit: &mut dyn FnMut(&mut Record) -> bool,
    ) -> Result<Option<Record>, StoreError> {
        let token = key_token(key);
        let mut shard = self.inner.lock_shard(shard_of(token));
        // A write looks the key up as an access, as `update` does.
        let before = self
            .inner
            .find_live(&mut shard, token, key, now_ms, true)
            .map(|found| found.record);
        if let Some(found) = before
            .clone()
            .filter(|r| r.cells().is_some() && r.is_live(now_ms))
        {
            drop(before);
            return self
                .inner
                .edit_in_place(&mut shard, token, key, found, now_ms, edit);
        }
        let mut after = before.clone().unwrap_or_default();
        if !edit(&mut after) {
            return Ok(before);
        }
        if before
            .as_ref()
            .is_some_and(|r| expired_collection(r, now_ms))
        {
            self.inner.expired.note(key);
        }
        let before = before.unwrap_or_default();
        self.inner.write_changed(
            &mut shard,
            token,
            key,
            Before::Copy(&before),
            &after,
            now_ms,
            false,
        )?;
        Ok(Some(after))
    }

    fn key_use(&self, key: &[u8], now_ms: u64) -> Option<KeyUse> {
        let token = key_token(key);
        let mut shard = self.inner.lock_shard(shard_of(token));
        let segments = self.inner.segments.read();
        let entry = Inner::find(&segments, &mut shard.table, token, key)?;
        Some(KeyUse {
            idle_ms: evict::idle_ms(entry.access, now_ms),
            frequency: evict::counter(entry.access, now_ms),
        })
    }

    fn merge(&self, key: &[u8], incoming: &Record) -> Result<bool, StoreError> {
        let token = key_token(key);
        let mut shard = self.inner.lock_shard(shard_of(token));
        let current = {
            let segments = self.inner.segments.read();
            Inner::find(&segments, &mut shard.table, token, key)
                .and_then(|entry| Inner::load(&segments, *entry))
                .map(|(_, found)| found.record)
        };
        let before = current.unwrap_or_default();
        let mut merged = before.clone();
        if !merged.merge(incoming) {
            return Ok(false);
        }
        let now_ms = wall_clock_ms();
        self.inner.write_changed(
            &mut shard,
            token,
            key,
            Before::Copy(&before),
            &merged,
            now_ms,
            true,
        )?;
        Ok(true)
    }

    fn scan(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        visit: &mut dyn FnMut(&Bytes, &Record),
    ) -> u64 {
        self.inner.walk(cursor, count, &mut |shard, from| {
            let segments = self.inner.segments.read();
            let mut visited = 0;
            let Shard { table, stats, .. } = shard;
            for entry in table.iter_mut().filter(|e| at_or_after(e, from)) {
                if let Some((key, mut found)) = Inner::load(&segments, *entry) {
                    Inner::reclaim_if_expired(
                        stats,
                        &self.inner.expired,
                        &key,
                        entry,
                        &mut found,
                        now_ms,
                    );
                    visit(&key, &found.record);
                    visited += 1;
                }
            }
            visited
        })
    }

    fn random_key(&self, random_token: u64, now_ms: u64) -> Option<Bytes> {
        // Bounded, so that a store full of tombstones cannot make this slow.
        const RANDOM_KEY_PROBES_MAX: usize = 1024;
        let mut probes = 0;
        let start = shard_of(random_token);
        for step in 0..SHARDS {
            let mut shard = self.inner.lock_shard((start + step) % SHARDS);
            let segments = self.inner.segments.read();
            let Shard { table, stats, .. } = &mut *shard;
            for entry in table.iter_mut() {
                if let Some((key, mut found)) = Inner::load(&segments, *entry) {
                    Inner::reclaim_if_expired(
                        stats,
                        &self.inner.expired,
                        &key,
                        entry,
                        &mut found,
                        now_ms,
                    );
                    if found.record.is_live(now_ms) {
                        return Some(key);
                    }
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
        let inner = &self.inner;
        let _maintenance = inner.maintenance.lock();
        let mut pool = inner.pool.lock();
        let mut shards: Vec<_> = (0..SHARDS).map(|i| inner.lock_shard(i)).collect();
        let mut writer = inner.writer.lock();
        if let Some(error) = inner.poisoned_error() {
            return Err(error);
        }
        let fail = |what: &str, error: std::io::Error| {
            let reason = format!("{what} failed during clear: {error}");
            inner.poison(reason.clone());
            StoreError::Write(reason)
        };
        // The snapshot first, so that it never describes segments that are gone.
        if inner
            .backend
            .list()
            .map_err(|e| fail("listing", e))?
            .iter()
            .any(|n| n == SNAPSHOT_NAME)
        {
            inner
                .backend
                .remove(SNAPSHOT_NAME)
                .map_err(|e| fail("removing the snapshot", e))?;
        }
        let old: Vec<Arc<Segment>> = inner.segments.read().values().cloned().collect();
        inner
            .new_segment(&mut writer, 0)
            .map_err(|e| fail("creating a segment", e))?;
        writer.unsynced.clear();
        // The keydir and its leaves are emptied before the old segments leave the table, so
        // that a retirement that fails (and poisons the store) leaves no entry pointing at a
        // segment that is gone. The leaves under every shard lock: no write lands between.
        for shard in shards.iter_mut() {
            let rng = shard.rng;
            **shard = Shard {
                rng,
                ..Shard::default()
            };
        }
        inner.merkle.clear();
        pool.clear();
        for segment in old {
            inner.segments.write().remove(&segment.id);
            segment
                .file
                .retire()
                .map_err(|e| fail("retiring a segment", e))?;
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StoreError> {
        self.inner.sync_all()
    }

    fn expire_step(
        &self,
        cursor: u64,
        count: usize,
        now_ms: u64,
        horizon: &TombstoneHorizon,
    ) -> (ExpireStats, u64) {
        {
            let mut last = self.inner.tombstone_horizon.lock();
            if **last != *horizon {
                *last = Arc::new(horizon.clone());
            }
        }
        let mut stats = ExpireStats::default();
        let inner = &self.inner;
        let mut collected = Vec::new();
        let mut expired_collections = Vec::new();
        let next = inner.walk(cursor, count, &mut |shard, from| {
            let segments = inner.segments.read();
            let mut visited = 0;
            let mut dead = Vec::new();
            let Shard {
                table,
                stats: counts,
                ..
            } = &mut *shard;
            for entry in table.iter_mut().filter(|e| at_or_after(e, from)) {
                visited += 1;
                let Some((key, mut found)) = Inner::load(&segments, *entry) else {
                    continue;
                };
                if Inner::reclaim_if_expired(
                    counts,
                    &inner.expired,
                    &key,
                    entry,
                    &mut found,
                    now_ms,
                ) {
                    stats.expired += 1;
                    continue;
                }
                if found.record.holds_value() && !found.record.kind.digests_value() {
                    continue;
                }
                // An expired collection is not reclaimed in place (its digest covers its
                // cells): it is rewritten as a tombstone below, which moves its leaf.
                if found.record.holds_value() && !found.record.is_live(now_ms) {
                    expired_collections.push(key.clone());
                    continue;
                }
                // Only a tombstone's or a collection's key is hashed: the keydir keeps only
                // part of the token.
                let token = key_token(&key);
                let before_ms = horizon.before_ms(token);
                if collection::without_old_removals(&found.record, before_ms).is_some() {
                    collected.push((key.clone(), before_ms));
                }
                if horizon.allows_drop(token, &found.record) {
                    dead.push((*entry, token, found.record));
                }
            }
            for (entry, token, record) in dead {
                if let Ok(slot) = shard.table.find_entry(entry_hash(&entry), |e| *e == entry) {
                    slot.remove();
                    Inner::forget(&segments, &mut shard.stats, entry);
                    inner.merkle.toggle(token, &record);
                    stats.tombstones_dropped += 1;
                }
            }
            stats.sampled += visited;
            visited
        });
        for key in expired_collections {
            let mut reclaimed = false;
            let written = self.update(&key, now_ms, &mut |current| {
                let expired = current
                    .filter(|r| r.kind.digests_value() && r.holds_value() && !r.is_live(now_ms));
                reclaimed = expired.is_some();
                expired.map_or(Update::Keep, |r| {
                    Update::Put(Record {
                        value: None,
                        ..r.clone()
                    })
                })
            });
            if reclaimed && written.is_ok() {
                stats.expired += 1;
                self.inner
                    .lock_shard(shard_of(key_token(&key)))
                    .stats
                    .expired += 1;
            }
        }
        // Removed-element cells past the horizon go, the record rewritten at its versions
        // (recovery takes the later of two equal-version collection records).
        for (key, before_ms) in collected {
            let _ = self.update(&key, now_ms, &mut |current| {
                current
                    .and_then(|record| collection::without_old_removals(record, before_ms))
                    .map_or(Update::Keep, Update::Put)
            });
        }
        (stats, next)
    }

    /// As `MemoryStore` evicts (see `evict`), plus an "evicted" record appended to the
    /// log so that the key stays evicted after a restart. `None` also when that record
    /// cannot be written (the store is poisoned).
    fn evict(
        &self,
        policy: EvictionPolicy,
        samples: usize,
        random_token: u64,
        now_ms: u64,
    ) -> Option<EvictedKey> {
        self.inner.evict(policy, samples, random_token, now_ms)
    }

    /// As an eviction is written down (see `evict`): the same evicted record is appended,
    /// so that the key stays gone after a restart, and is not waited for under `always`.
    fn discard(&self, key: &[u8]) -> Result<bool, StoreError> {
        self.inner.discard(key)
    }

    fn used_bytes(&self) -> usize {
        self.inner.used_bytes.load(Ordering::Relaxed)
    }

    fn acknowledges_after_sync(&self) -> bool {
        self.inner.options.deferred_acknowledgement
            && self.inner.fsync_policy() == FsyncPolicy::Always
    }

    fn wait_durable(&self) -> Result<(), StoreError> {
        if self.inner.fsync_policy() != FsyncPolicy::Always {
            return Ok(());
        }
        let position = self.inner.writer.lock().appended;
        self.inner.wait_durable(position)
    }

    fn engine_stats(&self) -> Vec<(&'static str, u64)> {
        let stats = self.log_stats();
        vec![
            ("segments", stats.segments as u64),
            ("live_bytes", stats.live_bytes),
            ("dead_bytes", stats.dead_bytes),
            ("compactions", stats.compactions),
            ("bytes_reclaimed", stats.bytes_reclaimed),
            ("tombstones_dropped", stats.tombstones_dropped),
            ("snapshots", stats.snapshots),
            ("fsyncs", stats.fsyncs),
            ("poisoned", u64::from(stats.poisoned.is_some())),
        ]
    }

    fn set_fsync_policy(&self, policy: FsyncPolicy) -> Result<(), StoreError> {
        if policy == FsyncPolicy::Always {
            // Group commit syncs the active segment only, trusting that everything before
            // it is durable: make that true before the first write relies on it.
            self.inner.sync_all()?;
        }
        self.inner
            .fsync_policy
            .store(policy.code(), Ordering::Release);
        Ok(())
    }

    fn stats(&self) -> StoreStats {
        let mut total = StoreStats::default();
        for shard in self.inner.shards.iter() {
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
impl LogStore {
    /// Total capacity and length of the keydir's tables, for the overhead measurement.
    pub(super) fn keydir_capacity(&self) -> (usize, usize) {
        self.inner
            .shards
            .iter()
            .fold((0, 0), |(capacity, len), shard| {
                let shard = shard.lock();
                (capacity + shard.table.capacity(), len + shard.table.len())
            })
    }
}
