//! Compaction: rewrites a sealed segment whose dead bytes pass the threshold into a new,
//! smaller segment holding only what must survive, then retires the old file.
//!
//! Per record of the input segment S:
//! - referenced by the keydir: kept (an expired value is rewritten as a tombstone with the
//!   same versions), except a tombstone in the oldest segment that the last horizon given to
//!   `expire_step` allows to drop (older than the horizon of its key's token), which is
//!   dropped with its keydir entry and its share of the Merkle leaves;
//! - not referenced, and the keydir holds a newer record of the key: dropped;
//! - not referenced, a value that is not expired: dropped (a newer tombstone shadows it);
//! - not referenced, a tombstone or expired value: kept unless S is the oldest segment,
//!   because it may still shadow an older value in an older segment (the bitcask
//!   resurrection). "Oldest" is by seq, the age order of the data: a compaction output takes
//!   its input's seq + 1, so it stays in its input's place.
//! - an evicted record (never referenced): kept, copied byte for byte, unless S is the
//!   oldest segment, for the same reason: it removes the evicted value and every older one
//!   that came before it, wherever compaction has put them.
//!
//! Moving a record into the output keeps its versions, so it changes no Merkle leaf; only a
//! dropped keydir entry does.
//!
//! Before an input is retired, the log is synced: a record dropped because a newer tombstone
//! or evicted record shadows it must not be gone from the disk while that shadowing record
//! is not durable yet, or a crash would bring back an older value.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::chain;
use super::format::{self, HEADER_BYTES, SegmentHeader};
use super::inner::Inner;
use super::keydir::{Entry, Kind, account, entry_hash, tag_of, token_hash};
use super::segment::{Segment, segment_name};
use super::types::LogError;
use crate::clock::wall_clock_ms;
use crate::record::Record;
use crate::shard::shard_of;
use crate::token::key_token;

/// A record to copy: where it was, its new bytes, whether the keydir should follow it.
struct Copy {
    token: u64,
    from: usize,
    bytes: Vec<u8>,
    referenced: bool,
}

impl Inner {
    /// Compacts every sealed segment past the dead ratio. Returns how many.
    pub fn compact(&self, now_ms: u64, bytes_per_s: u64) -> Result<usize, LogError> {
        let _maintenance = self.maintenance.lock();
        let mut candidates: Vec<Arc<Segment>> = self
            .segments
            .read()
            .values()
            .filter(|s| {
                let written = s.written_bytes();
                let dead = written.saturating_sub(s.live_bytes.load(Ordering::Relaxed));
                s.sealed.load(Ordering::Acquire)
                    && written > 0
                    && dead as f64 >= written as f64 * self.options.compaction_dead_ratio
            })
            .cloned()
            .collect();
        candidates.sort_by_key(|s| s.seq);
        let mut done = 0;
        for segment in candidates {
            if self.is_poisoned() {
                break;
            }
            // Set before the first decision about a record, under no lock: a writer that
            // extends a chain takes the key's shard lock, as `keeps_link` does, so either it
            // extended the chain before `keeps_link` looked (which then re-bases it) or it
            // sees the flag and writes the state whole.
            segment.compacting.store(true, Ordering::SeqCst);
            let compacted = self.compact_segment(&segment, now_ms, bytes_per_s);
            if compacted.is_err() {
                segment.compacting.store(false, Ordering::SeqCst);
            }
            compacted?;
            done += 1;
        }
        Ok(done)
    }

    fn compact_segment(
        &self,
        input: &Arc<Segment>,
        now_ms: u64,
        bytes_per_s: u64,
    ) -> Result<(), LogError> {
        let started = Instant::now();
        let oldest = self
            .segments
            .read()
            .values()
            .map(|s| s.seq)
            .min()
            .is_some_and(|seq| seq == input.seq);
        let horizon = self.tombstone_horizon.lock().clone();
        let map = &input.map[..];
        let end = input.end.load(Ordering::Acquire);
        let mut copies = Vec::new();
        let mut at = HEADER_BYTES;
        while at < end {
            let Some(header) = format::check_record(map, at, end) else {
                // A damaged region found at recovery: skip to the next valid record.
                at += format::RECORD_ALIGN;
                continue;
            };
            let here = at;
            at += header.bytes();
            if header.is_evicted() {
                if !oldest {
                    copies.push(Copy {
                        token: 0,
                        from: here,
                        bytes: input.map[here..at].to_vec(),
                        referenced: false,
                    });
                }
                throttle(started, (at - HEADER_BYTES) as u64, bytes_per_s);
                continue;
            }
            // Decided before the value is decoded: a dead collection costs nothing here.
            if chain::continues(&header) && !self.keeps_link(input, here, &header)? {
                throttle(started, (at - HEADER_BYTES) as u64, bytes_per_s);
                continue;
            }
            let (key, mut record) = format::read_record(&input.map, here, &header);
            let token = key_token(&key);
            let mut shard = self.lock_shard(shard_of(token));
            let segments = self.segments.read();
            let current = Inner::find(&segments, &mut shard.table, token, &key).map(|e| *e);
            let referenced = current.is_some_and(|e| e.segment == input.id && e.offset() == here);
            // A collection keeps its value, expired or emptied: its digest covers its cells,
            // and its removed cells and clear version must outlive the compaction.
            let tombstone_like = record.value.is_none()
                || (!record.kind.digests_value()
                    && (!record.is_live(now_ms)
                        || current.is_some_and(|e| referenced && e.reclaimed())));
            if tombstone_like {
                // Kept as a tombstone with the same versions: the same Merkle digest.
                record = Record {
                    value: None,
                    ..record
                };
            }
            let keep = if referenced {
                let droppable = oldest && horizon.allows_drop(token, &record);
                if droppable {
                    let entry = current.expect("referenced");
                    if let Ok(slot) = shard.table.find_entry(entry_hash(&entry), |e| *e == entry) {
                        slot.remove();
                        Self::forget(&segments, &mut shard.stats, entry);
                        self.merkle.toggle(token, &record);
                        self.tombstones_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                !droppable
            } else {
                let newer = current
                    .and_then(|e| Inner::load(&segments, e))
                    .is_some_and(|(_, found)| found.header.versions() >= header.versions());
                !newer && tombstone_like && !oldest
            };
            if keep {
                let mut bytes = Vec::new();
                format::encode_record(&key, &record, &mut bytes);
                copies.push(Copy {
                    token,
                    from: here,
                    bytes,
                    referenced,
                });
            }
            drop(segments);
            drop(shard);
            throttle(started, (at - HEADER_BYTES) as u64, bytes_per_s);
        }

        // Whatever shadows a record dropped above was appended before now: make it durable
        // before the dropped record leaves the disk.
        self.sync_all().map_err(|e| {
            LogError::io("syncing before retiring a segment")(std::io::Error::other(e))
        })?;
        if copies.is_empty() {
            return self.retire(input, 0);
        }
        let id = {
            let mut writer = self.writer.lock();
            let id = writer.next_id;
            writer.next_id += 1;
            id
        };
        let total: usize = copies.iter().map(|c| c.bytes.len()).sum();
        let len = (HEADER_BYTES + total) as u64;
        let tmp = format!("{}.tmp", segment_name(id));
        let file = self
            .backend
            .create(&tmp, len)
            .map_err(LogError::io("creating a compaction output"))?;
        let header = format::encode_header(&SegmentHeader {
            id,
            seq: input.seq + 1,
            segment_bytes: len,
        });
        let mut out = Vec::with_capacity(HEADER_BYTES + total);
        out.extend_from_slice(&header);
        let mut offsets = Vec::with_capacity(copies.len());
        for copy in &copies {
            offsets.push(out.len());
            out.extend_from_slice(&copy.bytes);
        }
        file.write_at(&out, 0)
            .and_then(|()| file.sync_data())
            .and_then(|()| self.backend.rename(&tmp, &segment_name(id)))
            .map_err(LogError::io("writing a compaction output"))?;
        // Reopened by its final name: the handle of the `.tmp` file would retire (rename)
        // a path that no longer exists when this output is compacted in turn.
        drop(file);
        let file = self
            .backend
            .open(&segment_name(id))
            .map_err(LogError::io("reopening a compaction output"))?;
        let map = file
            .map()
            .map_err(LogError::io("mapping a compaction output"))?;
        let output = Arc::new(Segment::new(id, input.seq + 1, file, map, out.len()));
        output.sealed.store(true, Ordering::Release);
        output.synced.store(true, Ordering::Release);
        self.segments.write().insert(id, output.clone());

        // Point the keydir at the copies whose key still has the record we copied.
        for (copy, &offset) in copies.iter().zip(&offsets) {
            let size = copy.bytes.len() as u64;
            if !copy.referenced {
                // A tombstone kept on disk for shadowing: live for the dead-ratio count.
                output.live_bytes.fetch_add(size, Ordering::Relaxed);
                continue;
            }
            let mut shard = self.lock_shard(shard_of(copy.token));
            let segments = self.segments.read();
            let tag = tag_of(copy.token);
            let found = shard.table.find_mut(token_hash(copy.token), |e| {
                e.tag == tag && e.segment == input.id && e.offset() == copy.from
            });
            if let Some(entry) = found {
                let old = *entry;
                let new = Entry {
                    tag,
                    segment: id,
                    slot: offset as u32,
                    access: old.access,
                };
                // The keydir keeps the same record, moved: the Merkle leaves do not change.
                *entry = new;
                let new_header = output.header_at(offset).expect("just written");
                Self::forget(&segments, &mut shard.stats, old);
                account(&mut shard.stats, Kind::of(&new_header, false), true);
                let old_had_value = !old.reclaimed()
                    && input
                        .header_at(copy.from)
                        .is_some_and(|h| !h.is_tombstone());
                if old_had_value && new_header.is_tombstone() {
                    // An expired value the keydir had not reclaimed yet became a tombstone.
                    shard.stats.expired += 1;
                }
                output.live_bytes.fetch_add(size, Ordering::Relaxed);
            }
        }

        self.retire(input, len)
    }

    /// Takes a compacted segment out of the store; `replaced_by_bytes` is its output's size.
    /// For a collection record (full or delta) at `here` of `input`: whether compaction
    /// goes on with it as with any record (a collection that is its key's whole state,
    /// referenced, or a dead one the usual rules drop). A link of a chain of deltas is never
    /// moved (a delta out of order would merge into the wrong state): the key's state is
    /// written whole at the head of the log instead, and the link is dead (`false`).
    ///
    /// # Errors
    /// Writing the new base failed.
    fn keeps_link(
        &self,
        input: &Arc<Segment>,
        here: usize,
        header: &format::RecordHeader,
    ) -> Result<bool, LogError> {
        let key = input.key_at(here);
        let token = key_token(key);
        {
            let mut shard = self.lock_shard(shard_of(token));
            let segments = self.segments.read();
            let Some(entry) = Inner::find(&segments, &mut shard.table, token, key).map(|e| *e)
            else {
                // No state of its key: dead, as a value that is not referenced is.
                return Ok(false);
            };
            let Some(alone) = chain::holds_link(&segments, entry, (input.id, here as u32)) else {
                return Ok(false);
            };
            if alone && !header.is_delta() {
                // Its key's whole state, referenced: moved as any record is.
                return Ok(true);
            }
        }
        self.rebase(key, wall_clock_ms())
            .map_err(|e| LogError::io("re-basing a chain")(std::io::Error::other(e)))?;
        Ok(false)
    }

    fn retire(&self, input: &Arc<Segment>, replaced_by_bytes: u64) -> Result<(), LogError> {
        self.segments.write().remove(&input.id);
        input
            .file
            .retire()
            .map_err(LogError::io("retiring a compacted segment"))?;
        self.compactions.fetch_add(1, Ordering::Relaxed);
        self.bytes_reclaimed.fetch_add(
            (input.map.len() as u64).saturating_sub(replaced_by_bytes),
            Ordering::Relaxed,
        );
        Ok(())
    }
}

/// Sleeps as long as needed to keep `bytes` since `started` under `bytes_per_s` (0: none).
fn throttle(started: Instant, bytes: u64, bytes_per_s: u64) {
    if bytes_per_s == 0 {
        return;
    }
    let due = Duration::from_secs_f64(bytes as f64 / bytes_per_s as f64);
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        std::thread::sleep(wait.min(Duration::from_millis(100)));
    }
}
