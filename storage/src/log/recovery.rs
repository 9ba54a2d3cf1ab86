//! Opening a store: the keydir snapshot, then a scan of the segments it does not cover.
//!
//! # Snapshot format (`keydir.snap`, format_version 1, little-endian)
//!
//! ```text
//! offset size field
//!      0    8 magic             b"RINGSNAP"
//!      8    4 format_version    1
//!     12    4 segment count S
//!     16    8 row count R
//!     24 S*24 segments          [id u32, reserved u32, seq u64, end u64]: the sealed
//!                               segments it covers and where their records end
//!      . R*24 rows              [token u64, segment u32, offset u32, key_len u32,
//!                                value_len u32]: the keydir entries into those segments
//!      .    4 crc32c            of everything before
//! ```
//!
//! It is written to `keydir.snap.tmp`, fsynced, and renamed over `keydir.snap` (rename then
//! directory fsync), so a crash leaves the old snapshot or the new one. It is used only if
//! its crc holds, every segment it names exists with the same seq, and every row points
//! inside its segment; otherwise recovery falls back to a full scan.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};

use super::backend::{FileBackend, StorageBackend};
use super::evict;
use super::format::{self, FORMAT_VERSION, HEADER_BYTES, HeaderProblem, RECORD_ALIGN};
use super::keydir::{
    Entry, Kind, SLOT_RECLAIMED, Shard, account, entry_hash, header_record, shard_of, tag_of,
    token_hash,
};
use super::segment::{Segment, Segments, parse_segment_name};
use super::store::{Inner, LogStore, SyncState, Writer};
use super::{LogError, LogOptions, RecoveryReport, SEGMENT_BYTES_MIN};
use crate::MerkleLeaves;
use crate::clock::wall_clock_ms;
use crate::token::key_token;

/// The snapshot's file name.
pub(super) const SNAPSHOT_NAME: &str = "keydir.snap";
const SNAPSHOT_TMP: &str = "keydir.snap.tmp";
const SNAPSHOT_MAGIC: [u8; 8] = *b"RINGSNAP";
const SNAPSHOT_HEADER_BYTES: usize = 24;
const SNAPSHOT_SEGMENT_BYTES: usize = 24;
const SNAPSHOT_ROW_BYTES: usize = 24;

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
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
        validate(&options)?;
        let started = Instant::now();
        let mut report = RecoveryReport::default();
        let names = backend.list().map_err(LogError::io("listing segments"))?;
        // Leftovers of an interrupted compaction, snapshot or retirement: never mapped now.
        for name in &names {
            if name.ends_with(".tmp") || name.ends_with(".dead") {
                backend
                    .remove(name)
                    .map_err(LogError::io(format!("removing {name}")))?;
            }
        }
        let mut segments: Vec<(Arc<Segment>, bool)> = Vec::new();
        let mut next_id = 0u32;
        for name in &names {
            let Some(id) = parse_segment_name(name) else {
                continue;
            };
            report.segments += 1;
            next_id = next_id.max(id.saturating_add(1));
            let file = backend
                .open(name)
                .map_err(LogError::io(format!("opening {name}")))?;
            let len = file
                .size()
                .map_err(LogError::io(format!("reading {name}")))?;
            if len < HEADER_BYTES as u64 {
                report.segments_skipped += 1;
                continue;
            }
            let map = file
                .map()
                .map_err(LogError::io(format!("mapping {name}")))?;
            let (seq, header_ok) = match format::decode_header(&map, id) {
                Ok(header) => (header.seq, true),
                Err(HeaderProblem::FormatVersion(found)) => {
                    return Err(LogError::FormatVersion {
                        name: name.clone(),
                        found,
                        expected: FORMAT_VERSION,
                    });
                }
                Err(_) => {
                    report.corrupt_headers += 1;
                    (u64::from(id) << 32, false)
                }
            };
            let segment = Segment::new(id, seq, file, map, HEADER_BYTES);
            segment.sealed.store(true, Ordering::Relaxed);
            segment.synced.store(true, Ordering::Relaxed);
            segments.push((Arc::new(segment), header_ok));
        }
        segments.sort_by_key(|(s, _)| (s.seq, s.id));
        let table: Segments = segments.iter().map(|(s, _)| (s.id, s.clone())).collect();
        let shards = Inner::new_shards();
        // Access statistics are not kept on disk: every key starts as used now.
        let access = evict::fresh(wall_clock_ms());
        // Kept with the keydir as it is rebuilt: every record the keydir gains, replaces or
        // loses moves the leaves, so they end equal to the recovered keydir.
        let merkle = MerkleLeaves::new();

        let covered = load_snapshot(&*backend, &table, &shards, &merkle, access, &mut report);
        report.from_snapshot = covered.is_some();
        let covered = covered.unwrap_or_default();
        for (segment, _) in &segments {
            if covered.contains(&segment.id) {
                continue;
            }
            scan_segment(segment, &table, &shards, &merkle, access, &mut report).map_err(
                LogError::io(format!("repairing segment {:08x}", segment.id)),
            )?;
        }

        // Keep appending to the newest segment if the writer filled it; else start one.
        let reuse = segments.last().and_then(|(segment, header_ok)| {
            (*header_ok
                && segment.seq == u64::from(segment.id) << 32
                && segment.id + 1 == next_id
                && !covered.contains(&segment.id))
            .then(|| segment.clone())
        });
        let placeholder = reuse.clone();
        let inner = Arc::new(Inner {
            backend,
            options: options.clone(),
            shards,
            segments: RwLock::new(table),
            writer: Mutex::new(Writer {
                active: match placeholder {
                    Some(segment) => segment,
                    None => dummy_segment(),
                },
                next_id,
                appended: 0,
                unsynced: Vec::new(),
            }),
            sync_state: Mutex::new(SyncState::default()),
            sync_done: Condvar::new(),
            poisoned: Default::default(),
            poison_reason: Mutex::new(None),
            background: Mutex::default(),
            background_wake: Condvar::new(),
            maintenance: Mutex::new(()),
            tombstone_horizon: Mutex::default(),
            compactions: Default::default(),
            bytes_reclaimed: Default::default(),
            tombstones_dropped: Default::default(),
            snapshots: Default::default(),
            fsyncs: Default::default(),
            fsync_policy: AtomicU8::new(options.appendfsync.code()),
            used_bytes: AtomicUsize::new(0),
            pool: Mutex::default(),
            merkle,
        });
        let used_bytes = inner.shards.iter().map(|s| s.lock().stats.used_bytes).sum();
        inner.used_bytes.store(used_bytes, Ordering::Relaxed);
        match reuse {
            Some(segment) => segment.sealed.store(false, Ordering::Relaxed),
            None => {
                let mut writer = inner.writer.lock();
                inner
                    .new_segment(&mut writer, 0)
                    .map_err(LogError::io("creating a segment"))?;
            }
        }
        report.keys = inner.shards.iter().map(|s| s.lock().table.len()).sum();
        report.duration = started.elapsed();
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

/// A stand-in active segment for the moment between building the store and creating its
/// first segment; never written (it has no room).
fn dummy_segment() -> Arc<Segment> {
    struct Nothing;
    impl super::backend::SegmentFile for Nothing {
        fn size(&self) -> std::io::Result<u64> {
            Ok(0)
        }
        fn write_at(&self, _: &[u8], _: u64) -> std::io::Result<()> {
            Err(std::io::Error::other("no segment"))
        }
        fn sync_data(&self) -> std::io::Result<()> {
            Ok(())
        }
        fn map(&self) -> std::io::Result<bytes::Bytes> {
            Ok(bytes::Bytes::new())
        }
        fn retire(&self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let segment = Segment::new(u32::MAX, 0, Arc::new(Nothing), bytes::Bytes::new(), 0);
    segment.synced.store(true, Ordering::Relaxed);
    Arc::new(segment)
}

fn validate(options: &LogOptions) -> Result<(), LogError> {
    let bad = |field, reason: &str| {
        Err(LogError::Options {
            field,
            reason: reason.to_owned(),
        })
    };
    if options.segment_bytes_max < SEGMENT_BYTES_MIN
        || options.segment_bytes_max >= u64::from(u32::MAX)
    {
        return bad("segment_bytes_max", "must be at least 4096 and below 4 GiB");
    }
    if !(options.compaction_dead_ratio > 0.0 && options.compaction_dead_ratio <= 1.0) {
        return bad("compaction_dead_ratio", "must be in (0, 1]");
    }
    Ok(())
}

/// Applies the record at `offset` of `segment` to the keydir: it wins if its versions are
/// newer than the key's current record. An evicted record instead removes the current
/// record if that is no newer than its versions; it is never kept in the keydir, since it
/// only acts on records before it and segments are read in log order (seq, then offset).
/// `merkle` follows the keydir.
fn apply(
    segment: &Segment,
    offset: usize,
    header: &format::RecordHeader,
    table: &Segments,
    shards: &[Mutex<Shard>],
    merkle: &MerkleLeaves,
    access: u32,
) {
    let key = segment.key_at(offset);
    let token = key_token(key);
    let mut shard = shards[shard_of(token)].lock();
    let Shard {
        table: keydir,
        stats,
        ..
    } = &mut *shard;
    let entry = Entry {
        tag: tag_of(token),
        segment: segment.id,
        slot: offset as u32,
        access,
    };
    let size = header.bytes() as u64;
    match Inner::find(table, keydir, token, key) {
        Some(current) => {
            let Some(old) = table
                .get(&current.segment)
                .and_then(|s| Some((s, s.header_at(current.offset())?)))
            else {
                return;
            };
            if header.is_evicted() {
                if old.1.versions() > header.versions() {
                    return;
                }
                let gone = *current;
                account(stats, Kind::of(&old.1, gone.reclaimed()), false);
                old.0
                    .live_bytes
                    .fetch_sub(old.1.bytes() as u64, Ordering::Relaxed);
                if let Ok(slot) = keydir.find_entry(entry_hash(&gone), |e| *e == gone) {
                    slot.remove();
                    merkle.toggle(token, &header_record(&old.1));
                }
                return;
            }
            if header.versions() <= old.1.versions() {
                return;
            }
            account(stats, Kind::of(&old.1, current.reclaimed()), false);
            old.0
                .live_bytes
                .fetch_sub(old.1.bytes() as u64, Ordering::Relaxed);
            *current = entry;
            merkle.replace(
                token,
                Some(&header_record(&old.1)),
                Some(&header_record(header)),
            );
        }
        None if header.is_evicted() => return,
        None => {
            keydir.insert_unique(token_hash(token), entry, entry_hash);
            merkle.toggle(token, &header_record(header));
        }
    }
    account(stats, Kind::of(header, false), true);
    segment.live_bytes.fetch_add(size, Ordering::Relaxed);
}

/// Finds the next valid record at or after `from`, at a multiple of [`RECORD_ALIGN`].
fn resync(map: &[u8], from: usize) -> Option<usize> {
    let mut at = from.div_ceil(RECORD_ALIGN) * RECORD_ALIGN;
    let magic = format::RECORD_MAGIC.to_le_bytes();
    while at + format::RECORD_HEADER_BYTES <= map.len() {
        if map[at + 14..at + 16] == magic && format::check_record(map, at, map.len()).is_some() {
            return Some(at);
        }
        at += RECORD_ALIGN;
    }
    None
}

/// Reads every record of a segment into the keydir, skipping damaged regions and zeroing
/// a torn tail; sets the segment's end after its last valid record.
fn scan_segment(
    segment: &Arc<Segment>,
    table: &Segments,
    shards: &[Mutex<Shard>],
    merkle: &MerkleLeaves,
    access: u32,
    report: &mut RecoveryReport,
) -> std::io::Result<()> {
    let map = &segment.map[..];
    let mut at = HEADER_BYTES;
    let mut end = HEADER_BYTES;
    while at < map.len() {
        if let Some(header) = format::check_record(map, at, map.len()) {
            apply(segment, at, &header, table, shards, merkle, access);
            report.records += 1;
            at += header.bytes();
            end = at;
            continue;
        }
        match resync(map, at + 1) {
            Some(next) => {
                // Zeros between records cannot come from our appends: count them too.
                report.corrupt_records_skipped += 1;
                at = next;
            }
            None => break,
        }
    }
    report.bytes_read += end as u64;
    // Everything after the last valid record should be zero; anything else is a torn write.
    let tail = &map[end.min(map.len())..];
    if let Some(last) = tail.iter().rposition(|&b| b != 0) {
        let torn = last + 1;
        report.torn_tail_bytes_truncated += torn as u64;
        report.bytes_read += torn as u64;
        const ZEROS_BYTES: usize = 64 << 10;
        let zeros = vec![0u8; ZEROS_BYTES.min(torn)];
        let mut done = 0;
        while done < torn {
            let n = zeros.len().min(torn - done);
            segment.file.write_at(&zeros[..n], (end + done) as u64)?;
            done += n;
        }
        segment.file.sync_data()?;
    }
    segment.end.store(end, Ordering::Release);
    Ok(())
}

/// Loads the snapshot into `shards` (and its records into `merkle`) if it is intact and
/// matches the segments; returns the ids of the segments it covers. On any mismatch the
/// keydir and the leaves are left empty.
fn load_snapshot(
    backend: &dyn StorageBackend,
    table: &Segments,
    shards: &[Mutex<Shard>],
    merkle: &MerkleLeaves,
    access: u32,
    report: &mut RecoveryReport,
) -> Option<Vec<u32>> {
    let file = backend.open(SNAPSHOT_NAME).ok()?;
    let map = file.map().ok()?;
    let bytes = &map[..];
    if bytes.len() < SNAPSHOT_HEADER_BYTES + 4 || bytes[0..8] != SNAPSHOT_MAGIC {
        return None;
    }
    let body = bytes.len() - 4;
    if crc32c::crc32c(&bytes[..body]) != le_u32(bytes, body) || le_u32(bytes, 8) != 1 {
        return None;
    }
    let segment_count = le_u32(bytes, 12) as usize;
    let row_count = usize::try_from(le_u64(bytes, 16)).ok()?;
    let rows_at =
        SNAPSHOT_HEADER_BYTES.checked_add(segment_count.checked_mul(SNAPSHOT_SEGMENT_BYTES)?)?;
    if rows_at.checked_add(row_count.checked_mul(SNAPSHOT_ROW_BYTES)?)? != body {
        return None;
    }
    let mut covered = Vec::with_capacity(segment_count);
    for i in 0..segment_count {
        let at = SNAPSHOT_HEADER_BYTES + i * SNAPSHOT_SEGMENT_BYTES;
        let (id, seq, end) = (
            le_u32(bytes, at),
            le_u64(bytes, at + 8),
            le_u64(bytes, at + 16),
        );
        let segment = table.get(&id)?;
        if segment.seq != seq || end > segment.map.len() as u64 || end < HEADER_BYTES as u64 {
            return None;
        }
        covered.push(id);
    }
    // Every row is checked against the record it points at (lengths and key token), so a
    // snapshot can never point the keydir at something that is not that key's record.
    let mut entries = Vec::with_capacity(row_count);
    for i in 0..row_count {
        let at = rows_at + i * SNAPSHOT_ROW_BYTES;
        let token = le_u64(bytes, at);
        let entry = Entry {
            tag: tag_of(token),
            segment: le_u32(bytes, at + 8),
            slot: le_u32(bytes, at + 12) & !SLOT_RECLAIMED,
            access,
        };
        let (key_len, value_len) = (le_u32(bytes, at + 16), le_u32(bytes, at + 20));
        if !covered.contains(&entry.segment) {
            return None;
        }
        let segment = table.get(&entry.segment)?;
        let header = segment.header_at(entry.offset())?;
        let end = entry.offset().checked_add(header.bytes())?;
        if end > segment.map.len()
            || (header.key_len, header.value_len) != (key_len, value_len)
            || header.is_evicted()
            || key_token(segment.key_at(entry.offset())) != token
        {
            return None;
        }
        entries.push((token, entry, header));
    }
    for (token, entry, header) in &entries {
        let segment = table.get(&entry.segment)?;
        let mut shard = shards[shard_of(*token)].lock();
        account(&mut shard.stats, Kind::of(header, false), true);
        segment
            .live_bytes
            .fetch_add(header.bytes() as u64, Ordering::Relaxed);
        shard
            .table
            .insert_unique(token_hash(*token), *entry, entry_hash);
        merkle.toggle(*token, &header_record(header));
    }
    for i in 0..segment_count {
        let at = SNAPSHOT_HEADER_BYTES + i * SNAPSHOT_SEGMENT_BYTES;
        if let Some(segment) = table.get(&le_u32(bytes, at)) {
            segment
                .end
                .store(le_u64(bytes, at + 16) as usize, Ordering::Release);
        }
    }
    report.bytes_read += bytes.len() as u64;
    Some(covered)
}

impl Inner {
    /// Writes a keydir snapshot covering the sealed segments (fsynced first).
    pub fn write_snapshot(&self) -> Result<(), LogError> {
        let _maintenance = self.maintenance.lock();
        let covered: Vec<Arc<Segment>> = {
            let segments = self.segments.read();
            let mut covered: Vec<_> = segments
                .values()
                .filter(|s| s.sealed.load(Ordering::Acquire))
                .cloned()
                .collect();
            covered.sort_by_key(|s| s.id);
            covered
        };
        for segment in &covered {
            if !segment.synced.load(Ordering::Acquire) {
                segment
                    .file
                    .sync_data()
                    .map_err(LogError::io("syncing a sealed segment"))?;
                segment.synced.store(true, Ordering::Release);
            }
        }
        let ids: Vec<u32> = covered.iter().map(|s| s.id).collect();
        let mut out = Vec::new();
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&(covered.len() as u32).to_le_bytes());
        out.extend_from_slice(&0u64.to_le_bytes());
        for segment in &covered {
            out.extend_from_slice(&segment.id.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&segment.seq.to_le_bytes());
            out.extend_from_slice(&(segment.end.load(Ordering::Acquire) as u64).to_le_bytes());
        }
        let mut rows = 0u64;
        for shard in self.shards.iter() {
            let shard = shard.lock();
            let segments = self.segments.read();
            for entry in shard.table.iter() {
                if !ids.contains(&entry.segment) {
                    continue;
                }
                let Some((segment, header)) = segments
                    .get(&entry.segment)
                    .and_then(|s| Some((s, s.header_at(entry.offset())?)))
                else {
                    continue;
                };
                // The keydir keeps only part of the token; the key in the map has all of it.
                let token = key_token(segment.key_at(entry.offset()));
                out.extend_from_slice(&token.to_le_bytes());
                out.extend_from_slice(&entry.segment.to_le_bytes());
                out.extend_from_slice(&(entry.slot & !SLOT_RECLAIMED).to_le_bytes());
                out.extend_from_slice(&header.key_len.to_le_bytes());
                out.extend_from_slice(&header.value_len.to_le_bytes());
                rows += 1;
            }
        }
        out[16..24].copy_from_slice(&rows.to_le_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        let _ = self.backend.remove(SNAPSHOT_TMP);
        let file = self
            .backend
            .create(SNAPSHOT_TMP, out.len() as u64)
            .map_err(LogError::io("creating the snapshot"))?;
        file.write_at(&out, 0)
            .and_then(|()| file.sync_data())
            .and_then(|()| self.backend.rename(SNAPSHOT_TMP, SNAPSHOT_NAME))
            .map_err(LogError::io("writing the snapshot"))?;
        self.snapshots.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
