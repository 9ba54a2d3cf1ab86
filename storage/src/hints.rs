//! The hint log of hinted handoff: when a replica misses a write (it is down or timed out),
//! the coordinator keeps a hint (target node, key, record) here and replays the target's
//! hints, in order, once the target is alive again.
//!
//! - [`Hints`]: every target's log under one directory; append, read a batch, acknowledge.
//! - `format`: the codec of the format below, and a bounded sequential reader of a segment.
//! - `target`: one target's log: its segments, its cursor, its recovery.
//!
//! A hint is only an optimisation: anti-entropy repairs whatever a lost hint would have, and
//! replaying a hint twice is harmless (records merge by version). So recovery prefers losing
//! hints to refusing to start: a damaged segment is cut short, a damaged header sets the
//! segment aside, a damaged cursor replays from the start. docs/storage.md ("Hint log") has
//! the design; the format follows.
//!
//! # Files (format_version 1, every integer little-endian)
//!
//! ```text
//! dir/<target: 16 lowercase hex digits>/NNNNNNNN.hint   segments, NNNNNNNN = id, 8+ hex digits
//! dir/<target>/cursor                                    the last acknowledged position
//! dir/<target>/*.tmp                                     unfinished; removed at open
//! dir/<target>/*.corrupt                                 set aside by recovery; never read
//! ```
//!
//! Segments are append-only (plain `pwrite` at the end; nothing is preallocated or mapped).
//! A new segment is written with its header as `NNNNNNNN.hint.tmp`, fsynced and renamed, so a
//! crash never leaves a segment without a whole header; a bad header is therefore damage.
//!
//! # Segment header (48 bytes)
//!
//! ```text
//! offset size field
//!      0    8 magic             b"RINGHNT\0"
//!      8    4 format_version    1
//!     12    4 reserved          0
//!     16    8 segment id        the number in the file name
//!     24    8 target            the node id in the directory name
//!     32   12 reserved          0
//!     44    4 crc32c            of bytes 0..44
//! ```
//!
//! # Hint record (56 bytes, then key and value; no padding)
//!
//! ```text
//! offset size field
//!      0    4 crc32c            of bytes 4..56+key_len+value_len (the whole record)
//!      4    4 key_len           at most HINT_KEY_BYTES_MAX
//!      8    4 value_len         at most HINT_VALUE_BYTES_MAX; 0 for a tombstone
//!     12    2 flags             bit 0: tombstone (no value), bit 1: has expiry; no others
//!     14    2 record magic      0x5243 ("RC")
//!     16    8 value version hlc
//!     24    4 value version node
//!     28    4 expiry version node
//!     32    8 expiry version hlc
//!     40    8 expiry_ms         absolute unix ms, 0 when bit 1 of flags is clear
//!     48    8 stored_ms         the coordinator's wall clock when the hint was kept
//!     56    . key, then value
//! ```
//!
//! Bytes 0..48 are laid out as a log record header (`log::format`), so the log's parser
//! reads them; the crc differs (it covers `stored_ms` and everything after). Records are not
//! aligned: the log aligns them to find the next record after damage, but a hint log never
//! looks past damage, it cuts the segment there.
//!
//! # Cursor (`cursor`, 40 bytes)
//!
//! ```text
//! offset size field
//!      0    8 magic             b"RINGHCUR"
//!      8    4 format_version    1
//!     12    4 reserved          0
//!     16    8 segment           the last acknowledged hint's position ...
//!     24    8 offset            ... (see HintPosition: where that hint ends)
//!     32    4 reserved          0
//!     36    4 crc32c            of bytes 0..36
//! ```
//!
//! Written to `cursor.tmp`, fsynced, renamed over `cursor`, then the directory fsynced, so a
//! crash leaves the old cursor or the new one. Segments with an id below the cursor's are
//! delivered (deleted after the cursor is durable; a crash in between leaves them to be
//! deleted at the next open).

mod format;
mod target;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::RwLock;

use crate::log::SEGMENT_BYTES_MIN;
use crate::record::Record;
use format::{HintHeader, SegmentReader, Step};
use target::{ReadPlan, Target, TargetState};

/// The longest key a hint keeps: the cluster's `PEER_KEY_BYTES_MAX`, since a hint whose key
/// a peer frame cannot carry could never be delivered. (The log store itself has no named
/// key limit, only its u32 length fields; storage cannot depend on the cluster crate, so the
/// value is repeated here.)
pub const HINT_KEY_BYTES_MAX: usize = 1024 * 1024;
/// The longest value a hint keeps: the cluster's `PEER_VALUE_BYTES_MAX` (Redis's default
/// `proto-max-bulk-len`), for the same reason as [`HINT_KEY_BYTES_MAX`].
pub const HINT_VALUE_BYTES_MAX: usize = 512 * 1024 * 1024;
const _: () = assert!(HINT_KEY_BYTES_MAX + HINT_VALUE_BYTES_MAX < u32::MAX as usize);

/// Hints one [`Hints::read_batch`] looks at, returned and expired together, whatever
/// `max_hints` asks: bounds the batch's memory and the time it takes.
pub const HINT_BATCH_HINTS_MAX: usize = 4096;
/// Key and value bytes one batch returns, once it holds at least one hint: a batch of large
/// values stops early rather than holding many of them in memory at once.
pub const HINT_BATCH_BYTES_MAX: u64 = 16 * 1024 * 1024;
/// Segments one batch reads from: segments emptied by damage cannot make a batch walk the
/// whole log.
pub const HINT_BATCH_SEGMENTS_MAX: usize = 64;

/// Settings of [`Hints`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HintOptions {
    /// A segment is closed once this many bytes are in it; delivered segments are deleted
    /// whole, so smaller segments give disk space back sooner, larger ones mean fewer files
    /// and fsyncs. At least 4 KiB. A hint larger than this gets a segment of its own.
    pub segment_bytes: u64,
    /// Pending bytes one target's log may hold; a hint that would pass it is refused
    /// ([`HintError::Full`]). Bounds the disk a long-dead node can take, and the replay it
    /// would face when it returns.
    pub target_bytes_max: u64,
}

impl Default for HintOptions {
    fn default() -> Self {
        HintOptions {
            segment_bytes: 8 << 20,
            target_bytes_max: 1 << 30,
        }
    }
}

impl HintOptions {
    /// Rejects settings the log cannot work with.
    ///
    /// # Errors
    /// [`HintError::Options`] naming the field.
    pub fn validate(&self) -> Result<(), HintError> {
        if self.segment_bytes < SEGMENT_BYTES_MIN {
            return Err(HintError::Options {
                field: "segment_bytes",
                reason: format!("{} is below {SEGMENT_BYTES_MIN}", self.segment_bytes),
            });
        }
        if self.target_bytes_max == 0 {
            return Err(HintError::Options {
                field: "target_bytes_max",
                reason: "0 would refuse every hint".into(),
            });
        }
        Ok(())
    }
}

/// Where a hint sits in its target's log: its segment, and the offset just past its last
/// byte. Ordered as the log is. Ending offsets make the last acknowledged position the place
/// reading resumes, without reading the hint again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HintPosition {
    /// The segment id.
    pub segment: u64,
    /// The offset in the segment where the hint ends.
    pub offset: u64,
}

/// One pending hint.
#[derive(Debug, Clone, PartialEq)]
pub struct Hint {
    /// Its position, to acknowledge it (and everything before it) once delivered.
    pub position: HintPosition,
    /// The key.
    pub key: Bytes,
    /// The record the target missed.
    pub record: Record,
    /// The coordinator's wall clock when the hint was kept (unix ms).
    pub stored_ms: u64,
}

/// Hints read by [`Hints::read_batch`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HintBatch {
    /// Hints to deliver, in append order.
    pub hints: Vec<Hint>,
    /// Hints skipped because they were older than the window; acknowledging `last` drops them.
    pub expired: u64,
    /// The position of the last hint read or skipped: acknowledge it once `hints` are
    /// delivered. `Some` with `hints` empty when every hint looked at had expired (or was
    /// damaged): acknowledge it and read again. `None` when nothing is pending.
    pub last: Option<HintPosition>,
}

/// One target's pending hints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetHintStats {
    /// The target node.
    pub target: u64,
    /// Hints not yet acknowledged.
    pub pending_hints: u64,
    /// Bytes of those hints (records as stored, segment headers excluded).
    pub pending_bytes: u64,
    /// Segment files.
    pub segments: usize,
    /// Why appends are refused, after a failed write or fsync.
    pub poisoned: Option<String>,
}

/// Pending hints for `INFO` and the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HintStats {
    /// Hints not yet acknowledged, all targets.
    pub pending_hints: u64,
    /// Bytes of those hints, all targets.
    pub pending_bytes: u64,
    /// Targets with pending hints (or a poisoned log), by target.
    pub targets: Vec<TargetHintStats>,
    /// Damaged records met by reads since open (the rest of their segment was skipped). The
    /// same damage counts again if it is read again before being acknowledged.
    pub damaged_reads: u64,
}

/// What [`Hints::open`] found on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HintRecovery {
    /// Time taken.
    pub duration: Duration,
    /// Target directories found.
    pub targets: usize,
    /// Segment files read.
    pub segments: usize,
    /// Pending hints found.
    pub hints: u64,
    /// Bytes of segments read (every record is checked at open).
    pub bytes_read: u64,
    /// Segments with a bad header, renamed `*.corrupt` and not read.
    pub corrupt_segments: usize,
    /// Segments cut at a record that failed its checks; hints after it in that segment were
    /// lost (anti-entropy repairs what they carried).
    pub damaged_records: u64,
    /// Segments cut at an incomplete last record (a write torn by a crash).
    pub torn_tails: u64,
    /// Bytes cut off segments by those two.
    pub bytes_truncated: u64,
    /// Cursors that were unreadable or pointed inside a record: replay from the start.
    pub corrupt_cursors: usize,
}

impl fmt::Display for HintRecovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "recovered {} hints for {} targets from {} segments ({} bytes) in {:.3} s; {} \
             corrupt segments set aside, {} damaged records, {} torn tails, {} bytes \
             truncated, {} corrupt cursors",
            self.hints,
            self.targets,
            self.segments,
            self.bytes_read,
            self.duration.as_secs_f64(),
            self.corrupt_segments,
            self.damaged_records,
            self.torn_tails,
            self.bytes_truncated,
            self.corrupt_cursors,
        )
    }
}

/// Why a hint operation failed. Each variant says what happened to the log.
#[derive(Debug, thiserror::Error)]
pub enum HintError {
    /// An option is out of range; nothing was opened.
    #[error("invalid hint log option {field}: {reason}")]
    Options {
        /// The option.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The target's log holds as many pending bytes as it may; the hint was not appended.
    #[error(
        "hint log of node {target:016x} is full ({pending_bytes} of {target_bytes_max} bytes \
         pending), the hint was not kept"
    )]
    Full {
        /// The target node.
        target: u64,
        /// Its pending bytes.
        pending_bytes: u64,
        /// [`HintOptions::target_bytes_max`].
        target_bytes_max: u64,
    },
    /// The key or value is longer than a hint may be; the hint was not appended.
    #[error(
        "a hint of {key_bytes} key bytes and {value_bytes} value bytes is too large, it was \
         not kept"
    )]
    TooLarge {
        /// Bytes of key.
        key_bytes: usize,
        /// Bytes of value.
        value_bytes: usize,
    },
    /// An earlier write or fsync of the target's log failed: appends are refused until its
    /// hints are all delivered (its files are then deleted) or the process restarts, because
    /// an fsync must never be retried. The hint was not appended.
    #[error("hint log of node {target:016x} refuses writes after an I/O error: {reason}")]
    Poisoned {
        /// The target node.
        target: u64,
        /// The earlier failure.
        reason: String,
    },
    /// The position is not the end of a pending hint of the target; nothing was acknowledged.
    #[error("{position:?} is not a pending hint of node {target:016x}, nothing was acknowledged")]
    Position {
        /// The target node.
        target: u64,
        /// The position given.
        position: HintPosition,
    },
    /// A segment was written by a format version this build does not read (a downgrade);
    /// the log was not opened, and that segment and the ones after it were not touched.
    #[error("hint segment {path} has format_version {found}, this build reads {expected}")]
    FormatVersion {
        /// The file.
        path: PathBuf,
        /// The version in its header.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
    /// An I/O error; `doing` says what was attempted and what became of it.
    #[error("hint log I/O error while {doing}: {source}")]
    Io {
        /// What the log was doing.
        doing: String,
        /// The error.
        source: io::Error,
    },
}

impl HintError {
    fn io(doing: impl Into<String>) -> impl FnOnce(io::Error) -> HintError {
        let doing = doing.into();
        move |source| HintError::Io { doing, source }
    }
}

/// Hints for all targets under one directory: `dir/<target as 16 lowercase hex digits>/`.
///
/// Every method may block on file I/O: call it off the async workers. Each target has its
/// own lock, held for in-memory bookkeeping and the append itself; reads, fsyncs and cursor
/// writes run outside it, so replaying one target never stalls hinting for it.
pub struct Hints {
    dir: PathBuf,
    options: HintOptions,
    /// One entry per target hinted for (or found on disk) since open: bounded by the nodes
    /// the cluster has had, so it has no cap of its own. Entries stay after their files go,
    /// so that positions from earlier batches keep meaning "already delivered".
    targets: RwLock<HashMap<u64, Arc<Target>>>,
    recovery: HintRecovery,
    damaged_reads: AtomicU64,
}

impl fmt::Debug for Hints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hints")
            .field("dir", &self.dir)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Hints {
    /// Opens (creating if needed) and recovers every target's log under `dir`. Every record
    /// is checked; what recovery found is in [`Hints::recovery`].
    ///
    /// # Errors
    /// [`HintError::Options`]; [`HintError::FormatVersion`] for a segment of another format;
    /// [`HintError::Io`] when the directory cannot be read or a damaged segment cannot be
    /// cut short.
    pub fn open(dir: &Path, options: HintOptions) -> Result<Hints, HintError> {
        options.validate()?;
        let started = Instant::now();
        std::fs::create_dir_all(dir).map_err(HintError::io("creating the hint directory"))?;
        let mut recovery = HintRecovery::default();
        let mut targets = HashMap::new();
        for (target, path) in target_dirs(dir)? {
            let state = TargetState::recover(path, target, &mut recovery)?;
            recovery.targets += 1;
            recovery.hints += state.pending_hints;
            targets.insert(target, Arc::new(Target::new(state)));
        }
        recovery.duration = started.elapsed();
        Ok(Hints {
            dir: dir.to_path_buf(),
            options,
            targets: RwLock::new(targets),
            recovery,
            damaged_reads: AtomicU64::new(0),
        })
    }

    /// What [`Hints::open`] found: log it.
    pub fn recovery(&self) -> &HintRecovery {
        &self.recovery
    }

    /// Appends a hint for `target`. `stored_ms` is the coordinator's wall clock now; the
    /// hint expires from it. Durable after the next [`Hints::sync`].
    ///
    /// # Errors
    /// Nothing was appended: [`HintError::Full`] when the target's log would pass
    /// [`HintOptions::target_bytes_max`] (the caller counts a dropped hint);
    /// [`HintError::TooLarge`]; [`HintError::Poisoned`]; [`HintError::Io`] when a segment
    /// could not be created or the write failed (the log is then poisoned).
    pub fn append(
        &self,
        target: u64,
        key: &[u8],
        record: &Record,
        stored_ms: u64,
    ) -> Result<(), HintError> {
        let value = record.value_bytes();
        if key.len() > HINT_KEY_BYTES_MAX || value.len() > HINT_VALUE_BYTES_MAX {
            return Err(HintError::TooLarge {
                key_bytes: key.len(),
                value_bytes: value.len(),
            });
        }
        let header = HintHeader::encode(key, record, stored_ms);
        let log = self.target(target);
        let mut state = log.state.lock();
        state.append(&header, key, &value, &self.options)
    }

    /// Targets that have pending hints, in order.
    pub fn targets(&self) -> Vec<u64> {
        let mut targets: Vec<u64> = self
            .all_targets()
            .into_iter()
            .filter(|(_, log)| log.state.lock().pending_hints > 0)
            .map(|(target, _)| target)
            .collect();
        targets.sort_unstable();
        targets
    }

    /// Up to `max_hints` pending hints for `target` in append order, starting after the last
    /// acknowledged one. Hints whose `stored_ms` is older than `now_ms - window_ms` are
    /// skipped and counted in `expired`. A batch also stops at [`HINT_BATCH_HINTS_MAX`] hints
    /// looked at, [`HINT_BATCH_BYTES_MAX`] bytes returned and [`HINT_BATCH_SEGMENTS_MAX`]
    /// segments. Reading does not move the cursor: until acknowledged, the next batch
    /// returns the same hints. A damaged record (the disk failed since open) is counted in
    /// [`HintStats::damaged_reads`] and the rest of its segment skipped.
    ///
    /// # Errors
    /// [`HintError::Io`] when a segment cannot be read; nothing changed.
    pub fn read_batch(
        &self,
        target: u64,
        max_hints: usize,
        now_ms: u64,
        window_ms: u64,
    ) -> Result<HintBatch, HintError> {
        let Some(log) = self.get(target) else {
            return Ok(HintBatch::default());
        };
        let plan = log.state.lock().read_plan(HINT_BATCH_SEGMENTS_MAX);
        let limits = BatchLimits {
            hints_max: max_hints.min(HINT_BATCH_HINTS_MAX),
            expired_before_ms: now_ms.saturating_sub(window_ms),
        };
        let (batch, damaged) = read_plan(&plan, &limits)?;
        if let Some(segment) = damaged {
            self.damaged_reads.fetch_add(1, Ordering::Relaxed);
            log.state.lock().seal_damaged(segment);
        }
        Ok(batch)
    }

    /// Marks every hint of `target` up to and including `upto` (from a batch) delivered.
    /// Durable when it returns: the cursor file is written to a temporary file, fsynced and
    /// renamed. Segments fully delivered are deleted; once nothing is left the target's
    /// directory goes too. A position at or before the last acknowledged one does nothing.
    ///
    /// # Errors
    /// [`HintError::Position`] when `upto` is not the end of a pending hint (nothing was
    /// acknowledged); [`HintError::Io`] when the cursor could not be written (nothing was
    /// acknowledged) or a delivered file could not be deleted (the acknowledgement stands;
    /// the file is deleted at the next open).
    pub fn acknowledge(&self, target: u64, upto: HintPosition) -> Result<(), HintError> {
        let Some(log) = self.get(target) else {
            return Err(HintError::Position {
                target,
                position: upto,
            });
        };
        log.acknowledge(upto)
    }

    /// `fdatasync` every target's open segment that has unsynced hints (the server calls it
    /// once a second, so a crash loses about a second of hints).
    ///
    /// # Errors
    /// The first failure; that target's log is poisoned (see [`HintError::Poisoned`]) and
    /// others are still synced.
    pub fn sync(&self) -> Result<(), HintError> {
        let mut first = None;
        for (_, log) in self.all_targets() {
            if let Err(error) = log.sync() {
                first.get_or_insert(error);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Pending hints and bytes, per target and in total, for `INFO` and the metrics.
    pub fn stats(&self) -> HintStats {
        let mut stats = HintStats {
            damaged_reads: self.damaged_reads.load(Ordering::Relaxed),
            ..HintStats::default()
        };
        for (_, log) in self.all_targets() {
            let target = log.state.lock().stats();
            if target.pending_hints > 0 || target.poisoned.is_some() {
                stats.pending_hints += target.pending_hints;
                stats.pending_bytes += target.pending_bytes;
                stats.targets.push(target);
            }
        }
        stats.targets.sort_unstable_by_key(|t| t.target);
        stats
    }

    /// Drops all hints for `target` (it was removed from the cluster) and deletes its
    /// directory. Positions from earlier batches count as acknowledged afterwards.
    ///
    /// # Errors
    /// [`HintError::Io`] when the directory could not be deleted; the hints are dropped from
    /// memory anyway, and what is left on disk comes back at the next open.
    pub fn forget(&self, target: u64) -> Result<(), HintError> {
        match self.get(target) {
            Some(log) => log.forget(),
            None => Ok(()),
        }
    }

    fn get(&self, target: u64) -> Option<Arc<Target>> {
        self.targets.read().get(&target).cloned()
    }

    fn target(&self, target: u64) -> Arc<Target> {
        if let Some(log) = self.get(target) {
            return log;
        }
        let dir = self.dir.join(target_dir_name(target));
        let mut targets = self.targets.write();
        let log = targets
            .entry(target)
            .or_insert_with(|| Arc::new(Target::new(TargetState::empty(target, dir))));
        Arc::clone(log)
    }

    /// The targets as they are now, so that no target's lock is taken under the map's.
    fn all_targets(&self) -> Vec<(u64, Arc<Target>)> {
        let targets = self.targets.read();
        targets
            .iter()
            .map(|(t, log)| (*t, Arc::clone(log)))
            .collect()
    }
}

/// The directory name of `target`.
fn target_dir_name(target: u64) -> String {
    format!("{target:016x}")
}

/// The target directories under `dir`; other entries are left alone.
fn target_dirs(dir: &Path) -> Result<Vec<(u64, PathBuf)>, HintError> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(HintError::io("listing the hint directory"))?;
    for entry in entries {
        let entry = entry.map_err(HintError::io("listing the hint directory"))?;
        let is_dir = entry
            .file_type()
            .map_err(HintError::io("listing the hint directory"))?
            .is_dir();
        let name = entry.file_name();
        if let (true, Some(target)) = (is_dir, name.to_str().and_then(parse_target_dir_name)) {
            found.push((target, entry.path()));
        }
    }
    found.sort_unstable();
    Ok(found)
}

fn parse_target_dir_name(name: &str) -> Option<u64> {
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if name.len() != 16 || !name.bytes().all(lower_hex) {
        return None;
    }
    u64::from_str_radix(name, 16).ok()
}

/// Where a batch stops.
struct BatchLimits {
    hints_max: usize,
    expired_before_ms: u64,
}

/// Reads a batch along `plan` without holding the target's lock. Returns the batch and the
/// segment where damage was met, if any.
fn read_plan(plan: &ReadPlan, limits: &BatchLimits) -> Result<(HintBatch, Option<u64>), HintError> {
    let mut batch = HintBatch::default();
    let mut returned_bytes = 0u64;
    let mut damaged = None;
    for segment in &plan.segments {
        let reader = match SegmentReader::open(&segment.path, segment.start, segment.len) {
            Ok(reader) => reader,
            // Deleted since the plan was made (acknowledged or forgotten meanwhile).
            Err(error) if error.kind() == io::ErrorKind::NotFound => break,
            Err(error) => return Err(HintError::io("opening a hint segment to read")(error)),
        };
        let mut read = SegmentRead {
            id: segment.id,
            len: segment.len,
            reader,
        };
        match read.read_into(&mut batch, &mut returned_bytes, limits)? {
            SegmentOutcome::Exhausted => {}
            SegmentOutcome::Damaged => damaged = Some(segment.id),
            SegmentOutcome::BatchFull => break,
        }
    }
    Ok((batch, damaged))
}

fn read_failed(source: io::Error) -> HintError {
    HintError::Io {
        doing: "reading a hint segment (nothing changed)".into(),
        source,
    }
}

/// How reading one segment into a batch ended.
enum SegmentOutcome {
    /// Every hint of the segment was looked at.
    Exhausted,
    /// A damaged record: the rest of the segment is skipped (`last` is its end).
    Damaged,
    /// The batch reached a limit.
    BatchFull,
}

/// One segment being read into a batch.
struct SegmentRead {
    id: u64,
    len: u64,
    reader: SegmentReader,
}

impl SegmentRead {
    fn read_into(
        &mut self,
        batch: &mut HintBatch,
        returned_bytes: &mut u64,
        limits: &BatchLimits,
    ) -> Result<SegmentOutcome, HintError> {
        loop {
            let looked_at = batch.hints.len() as u64 + batch.expired;
            if looked_at >= limits.hints_max as u64 {
                return Ok(SegmentOutcome::BatchFull);
            }
            let header = match self.reader.next().map_err(read_failed)? {
                Step::End => return Ok(SegmentOutcome::Exhausted),
                Step::Torn | Step::Damaged => return Ok(self.damaged(batch)),
                Step::Hint(header) => header,
            };
            if header.stored_ms < limits.expired_before_ms {
                // The header alone decides: open checked every record, and the expired
                // hint's key and value need not be read.
                self.reader.skip_body(&header).map_err(read_failed)?;
                batch.expired += 1;
            } else {
                let body = header.body_bytes();
                if !batch.hints.is_empty() && *returned_bytes + body > HINT_BATCH_BYTES_MAX {
                    return Ok(SegmentOutcome::BatchFull);
                }
                let Some((key, record)) = self.reader.read_body(&header).map_err(read_failed)?
                else {
                    return Ok(self.damaged(batch));
                };
                *returned_bytes += body;
                batch.hints.push(Hint {
                    position: self.position(),
                    key,
                    record,
                    stored_ms: header.stored_ms,
                });
            }
            batch.last = Some(self.position());
        }
    }

    fn position(&self) -> HintPosition {
        HintPosition {
            segment: self.id,
            offset: self.reader.offset(),
        }
    }

    /// Skips the rest of the segment: acknowledging its end drops what damage hid.
    fn damaged(&self, batch: &mut HintBatch) -> SegmentOutcome {
        batch.last = Some(HintPosition {
            segment: self.id,
            offset: self.len,
        });
        SegmentOutcome::Damaged
    }
}

const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<Hints>();
};
