//! Opening a store: the keydir snapshot (see `snapshot`), then a scan of the segments it does
//! not cover.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};

use super::backend::StorageBackend;
use super::chain::{self, Chain};
use super::format::{self, FORMAT_VERSION, HEADER_BYTES, HeaderProblem, RECORD_ALIGN};
use super::inner::{Inner, SyncState, Writer};
use super::keydir::{
    Entry, Kind, Shard, account, entry_hash, fresh_access, header_record, tag_of, token_hash,
};
use super::segment::{Segment, Segments, parse_segment_name};
use super::snapshot;
use super::types::{LogError, LogOptions, RecoveryReport, SEGMENT_BYTES_MIN};
use crate::clock::wall_clock_ms;
use crate::record::Record;
use crate::shard::shard_of;
use crate::token::key_token;
use crate::{MerkleLeaves, StoreStats};

/// Recovers the store kept by `backend`: the state of a store ready to take writes, its
/// background thread not started yet.
///
/// # Errors
/// As [`LogStore::open`](super::LogStore::open).
pub(super) fn recover(
    backend: Arc<dyn StorageBackend>,
    options: &LogOptions,
) -> Result<(Arc<Inner>, RecoveryReport), LogError> {
    validate(options)?;
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
    let access = fresh_access(wall_clock_ms());
    // Kept with the keydir as it is rebuilt: every record the keydir gains, replaces or
    // loses moves the leaves, so they end equal to the recovered keydir.
    let merkle = MerkleLeaves::new();

    let covered = snapshot::load(&*backend, &table, &shards, &merkle, access, &mut report);
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
        expired: Default::default(),
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
    Ok((inner, report))
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
            let old_digest = old
                .0
                .merkle_record(current.offset())
                .unwrap_or_else(|| header_record(&old.1));
            if header.is_delta() {
                merge_delta(
                    segment,
                    offset,
                    header,
                    table,
                    current,
                    stats,
                    merkle,
                    &old_digest,
                );
                return;
            }
            if header.is_evicted() {
                if old.1.versions() > header.versions() {
                    return;
                }
                let gone = *current;
                chain::forget_links(table, gone);
                account(stats, Kind::of(&old.1, gone.reclaimed()), false);
                old.0
                    .live_bytes
                    .fetch_sub(old.1.bytes() as u64, Ordering::Relaxed);
                if let Ok(slot) = keydir.find_entry(entry_hash(&gone), |e| *e == gone) {
                    slot.remove();
                    merkle.toggle(token, &old_digest);
                }
                return;
            }
            // Equal versions: a collection record written later holds more cells (a merge
            // adds cells without a newer header), so the later one in log order wins.
            let later_wins = header.kind().digests_value() && header.versions() == old.1.versions();
            if header.versions() < old.1.versions()
                || (header.versions() == old.1.versions() && !later_wins)
            {
                return;
            }
            account(stats, Kind::of(&old.1, current.reclaimed()), false);
            chain::forget_links(table, *current);
            old.0
                .live_bytes
                .fetch_sub(old.1.bytes() as u64, Ordering::Relaxed);
            *current = entry;
            merkle.replace(
                token,
                Some(&old_digest),
                Some(
                    &segment
                        .merkle_record(offset)
                        .unwrap_or_else(|| header_record(header)),
                ),
            );
        }
        None if header.is_evicted() => return,
        None if header.is_delta() => {
            let (_, delta) = format::read_record(&segment.map, offset, header);
            let mut state = Record::default();
            state.merge(&delta);
            keydir.insert_unique(token_hash(token), entry, entry_hash);
            merkle.toggle(token, &state);
            chain::keep(
                table,
                Chain::from_delta(state, chain::position(entry), size),
            );
        }
        None => {
            keydir.insert_unique(token_hash(token), entry, entry_hash);
            merkle.toggle(
                token,
                &segment
                    .merkle_record(offset)
                    .unwrap_or_else(|| header_record(header)),
            );
        }
    }
    account(stats, Kind::of(header, false), true);
    segment.live_bytes.fetch_add(size, Ordering::Relaxed);
}

/// Applies the delta at `offset` of `segment` to the key whose record `current` is: merges
/// it into the key's state and makes it the chain's latest link (see `chain.rs`). A record
/// that is not a collection of the delta's type is no link: its bytes go dead.
#[allow(clippy::too_many_arguments)]
fn merge_delta(
    segment: &Segment,
    offset: usize,
    header: &format::RecordHeader,
    table: &Segments,
    current: &mut Entry,
    stats: &mut StoreStats,
    merkle: &MerkleLeaves,
    old_digest: &Record,
) {
    let size = header.bytes() as u64;
    let at = (segment.id, offset as u32);
    // Taken, not copied: a chain may have thousands of links.
    let taken = match chain::take(table, *current) {
        Some((kept, true)) => Some(kept),
        Some((made_up, false)) => Some(Chain {
            record: Inner::load(table, *current)
                .map(|(_, found)| found.record)
                .unwrap_or_default(),
            ..made_up
        }),
        None => None,
    };
    let (_, delta) = format::read_record(&segment.map, offset, header);
    let (chain, replaced) = match taken {
        Some(mut chain) if chain.record.kind == header.kind() => {
            let mut state = std::mem::take(&mut chain.record);
            state.merge(&delta);
            chain.push(state, at, size);
            (chain, None)
        }
        // (A delta follows its own type: this is after a corrupt record was skipped.)
        Some(other) => {
            let mut state = other.record.clone();
            state.merge(&delta);
            (Chain::from_delta(state, at, size), Some(other))
        }
        None => {
            let mut state = Inner::load(table, *current)
                .map(|(_, found)| found.record)
                .unwrap_or_default();
            state.merge(&delta);
            (Chain::from_delta(state, at, size), None)
        }
    };
    if let Some(old) = table.get(&current.segment)
        && let Some(old_header) = old.header_at(current.offset())
    {
        account(stats, Kind::of(&old_header, current.reclaimed()), false);
        if chain.links.len() == 1 {
            // The record before is no link of the new chain: its bytes, and those of the
            // chain it ended, are dead.
            if let Some(ended) = replaced {
                chain::forget_positions(table, &ended.links, chain::position(*current));
            }
            old.live_bytes
                .fetch_sub(old_header.bytes() as u64, Ordering::Relaxed);
        }
    }
    *current = Entry {
        segment: segment.id,
        slot: offset as u32,
        ..*current
    };
    merkle.replace(
        key_token(segment.key_at(offset)),
        Some(old_digest),
        Some(&chain.record),
    );
    account(stats, Kind::of(header, false), true);
    segment.live_bytes.fetch_add(size, Ordering::Relaxed);
    chain::keep(table, chain);
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
