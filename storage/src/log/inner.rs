//! [`Inner`], the state the store handle shares with its background thread and with the
//! modules that work on it (eviction, compaction, recovery), and the primitives they share:
//! locking a shard, finding and reading a key's record, appending (with seals, group commit
//! and poisoning) and forgetting a record the keydir no longer references.
//!
//! Locks, always taken in this order: the eviction pool, a keydir shard, then the writer,
//! then the segment table. A reader takes a shard, then the segment table. Compaction and
//! snapshots hold the maintenance lock and take the others one at a time.
//!
//! `used_bytes` is kept in one atomic, updated when a shard's lock is released
//! ([`ShardGuard`]), as `MemoryStore` does, so the server can read it before every write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use hashbrown::HashTable;
use parking_lot::{Condvar, Mutex, RwLock};

use super::backend::StorageBackend;
use super::format::{self, HEADER_BYTES, RecordHeader, SegmentHeader};
use super::keydir::{Entry, Kind, SLOT_RECLAIMED, Shard, ShardGuard, account, tag_of, token_hash};
use super::segment::{Segment, Segments, segment_name};
use super::types::{FsyncPolicy, LogOptions};
use crate::aae::record_digest;
use crate::eviction::EvictionPool;
use crate::expired::ExpiredKeys;
use crate::record::Record;
use crate::shard::SHARDS;
use crate::{MerkleLeaves, StoreError, StoreStats, TombstoneHorizon};

/// The append side: the active segment and what is not yet durable.
pub(super) struct Writer {
    pub active: Arc<Segment>,
    pub next_id: u32,
    /// Bytes appended since open, over all segments: the log position.
    pub appended: u64,
    /// Sealed segments with appends not yet fsynced.
    pub unsynced: Vec<Arc<Segment>>,
}

#[derive(Default)]
pub(super) struct SyncState {
    /// Log position known durable.
    pub synced: u64,
    /// A thread is fsyncing now; others wait for it.
    pub syncing: bool,
}

/// The background thread's mailbox.
#[derive(Default)]
pub(super) struct Background {
    pub stop: bool,
    /// A segment was sealed or compacted since the last snapshot.
    pub snapshot_due: bool,
}

/// Everything shared by the store handle and its background thread.
pub(super) struct Inner {
    pub backend: Arc<dyn StorageBackend>,
    pub options: LogOptions,
    pub shards: Box<[Mutex<Shard>]>,
    pub segments: RwLock<Segments>,
    pub writer: Mutex<Writer>,
    pub sync_state: Mutex<SyncState>,
    pub sync_done: Condvar,
    pub poisoned: AtomicBool,
    pub poison_reason: Mutex<Option<String>>,
    pub background: Mutex<Background>,
    pub background_wake: Condvar,
    /// Held by compaction and snapshots, which must not run at once.
    pub maintenance: Mutex<()>,
    /// The last horizon given to `expire_step`, which compaction drops tombstones by too
    /// (none given yet: the default, which keeps every tombstone).
    pub tombstone_horizon: Mutex<Arc<TombstoneHorizon>>,
    pub compactions: AtomicU64,
    pub bytes_reclaimed: AtomicU64,
    pub tombstones_dropped: AtomicU64,
    pub snapshots: AtomicU64,
    pub fsyncs: AtomicU64,
    /// The fsync policy in force; starts as `options.appendfsync`, changed by
    /// `CONFIG SET appendfsync` through [`Store::set_fsync_policy`].
    pub fsync_policy: AtomicU8,
    /// Sum of the shards' `used_bytes`, see [`ShardGuard`].
    pub used_bytes: AtomicUsize,
    /// Eviction candidates kept between evictions. Locked before any shard, never after.
    pub pool: Mutex<EvictionPool>,
    /// The anti-entropy leaves of every record in the keydir: changed, under the key's
    /// shard lock, exactly when the keydir gains, replaces or loses a key's record (not when
    /// compaction moves a record, which keeps its versions).
    pub merkle: MerkleLeaves,
    /// The keys reclaimed on expiry, for the server's `expired` events.
    pub expired: ExpiredKeys,
}

/// A keydir entry read back: the entry, its record's header and the record.
pub(super) struct Found {
    pub entry: Entry,
    pub header: RecordHeader,
    pub record: Record,
}

impl Inner {
    /// The fsync policy in force now.
    pub fn fsync_policy(&self) -> FsyncPolicy {
        FsyncPolicy::from_code(self.fsync_policy.load(Ordering::Acquire))
    }

    pub fn new_shards() -> Box<[Mutex<Shard>]> {
        (0..SHARDS)
            .map(|index| {
                Mutex::new(Shard {
                    rng: index as u64,
                    ..Shard::default()
                })
            })
            .collect()
    }

    /// Locks shard `index`; every change to a shard goes through here so `used_bytes`
    /// stays exact.
    pub fn lock_shard(&self, index: usize) -> ShardGuard<'_> {
        ShardGuard::lock(&self.shards[index], &self.used_bytes)
    }

    /// The entry of `key` in `table`.
    pub fn find<'t>(
        segments: &Segments,
        table: &'t mut HashTable<Entry>,
        token: u64,
        key: &[u8],
    ) -> Option<&'t mut Entry> {
        let tag = tag_of(token);
        table.find_mut(token_hash(token), |e| {
            e.tag == tag
                && segments
                    .get(&e.segment)
                    .is_some_and(|s| s.key_at(e.offset()) == key)
        })
    }

    /// Reads the record an entry points at.
    pub fn load(segments: &Segments, entry: Entry) -> Option<(Bytes, Found)> {
        let segment = segments.get(&entry.segment)?;
        let header = segment.header_at(entry.offset())?;
        let (key, mut record) = format::read_record(&segment.map, entry.offset(), &header);
        if super::chain::continues(&header)
            && let Some(state) = super::chain::state_at(segment, entry.offset())
        {
            record = state;
        }
        if entry.reclaimed() {
            record.value = None;
        }
        Some((
            key,
            Found {
                entry,
                header,
                record,
            },
        ))
    }

    /// Turns an expired value into a tombstone in the keydir (the record on disk reads as
    /// expired after a restart too, so nothing is written). Returns whether it did.
    ///
    /// The Merkle leaves are left alone: the record's digest covers its versions only (see
    /// [`crate::aae`]), and both are kept.
    pub fn reclaim_if_expired(
        stats: &mut StoreStats,
        expired: &ExpiredKeys,
        key: &[u8],
        entry: &mut Entry,
        found: &mut Found,
        now_ms: u64,
    ) -> bool {
        // A collection is left as it is (its digest covers its cells): reads judge it dead
        // by its expiry, and the sweep or compaction drops it under the horizon.
        if found.record.value.is_none()
            || found.record.kind.digests_value()
            || found.record.is_live(now_ms)
        {
            return false;
        }
        account(stats, Kind::of(&found.header, false), false);
        account(stats, Kind::of(&found.header, true), true);
        entry.slot |= SLOT_RECLAIMED;
        found.entry = *entry;
        let before = cfg!(debug_assertions).then(|| record_digest(0, &found.record));
        found.record.value = None;
        debug_assert_eq!(
            before,
            Some(record_digest(0, &found.record)),
            "reclaiming an expired value must not change the key's Merkle digest"
        );
        stats.expired += 1;
        expired.note(key);
        true
    }

    pub fn poison(&self, reason: String) {
        let mut slot = self.poison_reason.lock();
        if slot.is_none() {
            *slot = Some(reason);
        }
        self.poisoned.store(true, Ordering::Release);
    }

    pub fn poisoned_error(&self) -> Option<StoreError> {
        if !self.poisoned.load(Ordering::Acquire) {
            return None;
        }
        let reason = self.poison_reason.lock().clone().unwrap_or_default();
        Some(StoreError::Poisoned(reason))
    }

    /// Creates a segment for the writer with room for at least `record_bytes` of records.
    pub fn new_segment(&self, writer: &mut Writer, record_bytes: usize) -> std::io::Result<()> {
        let id = writer.next_id;
        let segment = self.create_segment(id, u64::from(id) << 32, record_bytes)?;
        writer.next_id += 1;
        writer.active = segment;
        Ok(())
    }

    /// Creates, allocates and maps segment `id`, its header written and synced.
    pub fn create_segment(
        &self,
        id: u32,
        seq: u64,
        record_bytes: usize,
    ) -> std::io::Result<Arc<Segment>> {
        let wanted = (HEADER_BYTES + record_bytes) as u64;
        let len = self.options.segment_bytes_max.max(wanted);
        let name = segment_name(id);
        let file = self.backend.create(&name, len)?;
        let header = format::encode_header(&SegmentHeader {
            id,
            seq,
            segment_bytes: len,
        });
        file.write_at(&header, 0)?;
        file.sync_data()?;
        let map = file.map()?;
        let segment = Arc::new(Segment::new(id, seq, file, map, HEADER_BYTES));
        self.segments.write().insert(id, segment.clone());
        Ok(segment)
    }

    /// Appends one encoded record. Returns its segment, offset and the log position after
    /// it.
    ///
    /// # Errors
    /// Poisoned, or the write failed (then the store is poisoned).
    pub fn append(&self, record: &[u8]) -> Result<(Arc<Segment>, usize, u64), StoreError> {
        let mut writer = self.writer.lock();
        if let Some(error) = self.poisoned_error() {
            return Err(error);
        }
        let end = writer.active.end.load(Ordering::Relaxed);
        if end + record.len() > writer.active.map.len() {
            self.seal_active(&mut writer, record.len())?;
        }
        let segment = writer.active.clone();
        let offset = segment.end.load(Ordering::Relaxed);
        if let Err(error) = segment.file.write_at(record, offset as u64) {
            let reason = format!("write to segment {} failed: {error}", segment.id);
            self.poison(reason.clone());
            return Err(StoreError::Write(reason));
        }
        segment.end.store(offset + record.len(), Ordering::Release);
        segment.synced.store(false, Ordering::Relaxed);
        writer.appended += record.len() as u64;
        Ok((segment, offset, writer.appended))
    }

    /// Seals the active segment and starts a new one.
    fn seal_active(&self, writer: &mut Writer, record_bytes: usize) -> Result<(), StoreError> {
        let old = writer.active.clone();
        if self.fsync_policy() == FsyncPolicy::Always {
            // Keep "everything before the active segment is durable" true for group commit.
            if let Err(error) = old.file.sync_data() {
                let reason = format!("fsync of segment {} failed: {error}", old.id);
                self.poison(reason.clone());
                return Err(StoreError::Write(reason));
            }
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
            old.synced.store(true, Ordering::Relaxed);
        } else {
            writer.unsynced.push(old.clone());
        }
        if let Err(error) = self.new_segment(writer, record_bytes) {
            let reason = format!("creating a segment failed: {error}");
            self.poison(reason.clone());
            return Err(StoreError::Write(reason));
        }
        old.sealed.store(true, Ordering::Release);
        self.background.lock().snapshot_due = true;
        self.background_wake.notify_all();
        Ok(())
    }

    /// fsyncs every segment with unsynced appends. Returns the log position now durable.
    ///
    /// # Errors
    /// The fsync failed; the store is poisoned.
    pub fn sync_now(&self) -> Result<u64, StoreError> {
        let (segments, target) = {
            let mut writer = self.writer.lock();
            let mut segments = std::mem::take(&mut writer.unsynced);
            segments.push(writer.active.clone());
            (segments, writer.appended)
        };
        for segment in segments {
            if segment.synced.load(Ordering::Relaxed) {
                continue;
            }
            if let Err(error) = segment.file.sync_data() {
                let reason = format!("fsync of segment {} failed: {error}", segment.id);
                self.poison(reason.clone());
                return Err(StoreError::Write(reason));
            }
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        Ok(target)
    }

    /// Group commit: returns once the log is durable up to `position`. The first waiter
    /// fsyncs for everyone who appended before it started; the others wait for it.
    ///
    /// # Errors
    /// An fsync failed (now or earlier): nothing is acknowledged.
    pub fn wait_durable(&self, position: u64) -> Result<(), StoreError> {
        let mut state = self.sync_state.lock();
        loop {
            if state.synced >= position {
                return Ok(());
            }
            if let Some(StoreError::Poisoned(reason)) = self.poisoned_error() {
                return Err(StoreError::Write(reason));
            }
            if state.syncing {
                self.sync_done.wait(&mut state);
                continue;
            }
            state.syncing = true;
            drop(state);
            let result = self.sync_now();
            state = self.sync_state.lock();
            state.syncing = false;
            if let Ok(target) = result {
                state.synced = state.synced.max(target);
            }
            self.sync_done.notify_all();
            result?;
        }
    }

    /// `sync()`: every acknowledged write durable now.
    pub fn sync_all(&self) -> Result<(), StoreError> {
        if let Some(StoreError::Poisoned(reason)) = self.poisoned_error() {
            // Never retry an fsync after a failure: the pages it covered may be gone.
            return Err(StoreError::Poisoned(reason));
        }
        let target = self.sync_now()?;
        let mut state = self.sync_state.lock();
        state.synced = state.synced.max(target);
        Ok(())
    }

    /// Takes a record the keydir no longer references out of the counts: its bytes are
    /// dead now. Not out of the Merkle leaves: compaction calls this for a record it moved,
    /// which the keydir still holds; callers that drop a key's record toggle the leaves.
    /// It needs no `Inner` (an associated function, as [`Inner::load`] is): only the segment
    /// table and the shard's counts, which the caller holds locked.
    pub fn forget(segments: &Segments, stats: &mut StoreStats, old: Entry) {
        super::chain::forget_links(segments, old);
        if let Some(segment) = segments.get(&old.segment)
            && let Some(header) = segment.header_at(old.offset())
        {
            account(stats, Kind::of(&header, old.reclaimed()), false);
            let _ = segment
                .live_bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                    Some(n.saturating_sub(header.bytes() as u64))
                });
        }
    }

    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }
}
