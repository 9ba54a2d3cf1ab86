//! The keydir snapshot: written after a segment is sealed or compacted, so that recovery
//! reads the keydir of the sealed segments from it and scans only the segments after them.
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
use std::sync::atomic::Ordering;

use parking_lot::{Mutex, RwLock};

use super::backend::StorageBackend;
use super::chain;
use super::format::HEADER_BYTES;
use super::keydir::{
    Entry, Kind, SLOT_RECLAIMED, Shard, account, entry_hash, header_record, tag_of, token_hash,
};
use super::segment::{Segment, Segments};
use super::types::{LogError, RecoveryReport};
use crate::MerkleLeaves;
use crate::shard::shard_of;
use crate::token::key_token;

/// The snapshot's file name.
pub(super) const SNAPSHOT_NAME: &str = "keydir.snap";
const SNAPSHOT_TMP: &str = "keydir.snap.tmp";
const SNAPSHOT_MAGIC: [u8; 8] = *b"RINGSNAP";
/// The snapshot's `format_version`, written and required; a snapshot of another version is
/// not read (recovery scans the segments instead).
const SNAPSHOT_FORMAT_VERSION: u32 = 1;
const SNAPSHOT_HEADER_BYTES: usize = 24;
const SNAPSHOT_SEGMENT_BYTES: usize = 24;
const SNAPSHOT_ROW_BYTES: usize = 24;
// The sizes of the fields in the format table above: magic, format_version, segment count,
// row count; [id, reserved, seq, end]; [token, segment, offset, key_len, value_len].
const _: () = assert!(SNAPSHOT_HEADER_BYTES == SNAPSHOT_MAGIC.len() + 4 + 4 + 8);
const _: () = assert!(SNAPSHOT_SEGMENT_BYTES == 4 + 4 + 8 + 8);
const _: () = assert!(SNAPSHOT_ROW_BYTES == 8 + 4 + 4 + 4 + 4);

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Loads the snapshot into `shards` (and its records into `merkle`) if it is intact and
/// matches the segments; returns the ids of the segments it covers. On any mismatch the
/// keydir and the leaves are left empty.
pub(super) fn load(
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
    if crc32c::crc32c(&bytes[..body]) != le_u32(bytes, body)
        || le_u32(bytes, 8) != SNAPSHOT_FORMAT_VERSION
    {
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
            || header.is_delta()
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
        let digest = segment
            .merkle_record(entry.offset())
            .unwrap_or_else(|| header_record(header));
        merkle.toggle(*token, &digest);
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

/// The seq of the oldest segment holding the first link of a chain of deltas (`u64::MAX`
/// when there is none).
fn first_chain_seq(segments: &Segments) -> u64 {
    let mut first = u64::MAX;
    for segment in segments.values() {
        for kept in segment.chains.lock().values() {
            if kept.has_deltas()
                && let Some(start) = segments.get(&kept.links[0].0)
            {
                first = first.min(start.seq);
            }
        }
    }
    first
}

/// Writes a keydir snapshot covering the sealed segments of `table` (fsynced first), with
/// the entries of `shards` into them; `false` when it was not written because a chain of
/// deltas reached into a covered segment meanwhile (a writer extended a chain whose base
/// was there: the next snapshot, after re-basing, covers it). The caller keeps compaction
/// and other snapshots out meanwhile (the maintenance lock).
///
/// # Errors
/// An I/O error; the previous snapshot stays in place.
pub(super) fn write(
    backend: &dyn StorageBackend,
    table: &RwLock<Segments>,
    shards: &[Mutex<Shard>],
) -> Result<bool, LogError> {
    let covered: Vec<Arc<Segment>> = {
        let segments = table.read();
        // Only segments older than every chain of deltas (see `chain.rs`): recovery must
        // replay a chain's links in order, which it does only for the segments it scans.
        let chains_from = first_chain_seq(&segments);
        let mut covered: Vec<_> = segments
            .values()
            .filter(|s| s.sealed.load(Ordering::Acquire) && s.seq < chains_from)
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
    out.extend_from_slice(&SNAPSHOT_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(covered.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    for segment in &covered {
        out.extend_from_slice(&segment.id.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&segment.seq.to_le_bytes());
        out.extend_from_slice(&(segment.end.load(Ordering::Acquire) as u64).to_le_bytes());
    }
    let mut rows = 0u64;
    for shard in shards.iter() {
        let shard = shard.lock();
        let segments = table.read();
        for entry in shard.table.iter() {
            // Checked under the shard's lock, which a writer holds while it extends a chain.
            let (links, _, delta_bytes) = chain::links_of(&segments, *entry);
            if delta_bytes > 0 && links.iter().any(|(id, _)| ids.contains(id)) {
                return Ok(false);
            }
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
    let _ = backend.remove(SNAPSHOT_TMP);
    let file = backend
        .create(SNAPSHOT_TMP, out.len() as u64)
        .map_err(LogError::io("creating the snapshot"))?;
    file.write_at(&out, 0)
        .and_then(|()| file.sync_data())
        .and_then(|()| backend.rename(SNAPSHOT_TMP, SNAPSHOT_NAME))
        .map_err(LogError::io("writing the snapshot"))?;
    Ok(true)
}
