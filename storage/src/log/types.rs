//! The engine's public types besides the handle: its options ([`LogOptions`],
//! [`FsyncPolicy`]), the error of opening a store ([`LogError`]) and what it reports
//! ([`RecoveryReport`], [`LogStats`]). `log` re-exports them; every module of the engine may
//! use them.

use std::fmt;
use std::time::Duration;

/// When appended records are made durable, named as Redis's `appendfsync`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Every write is durable before it is acknowledged; concurrent writers share one
    /// fsync (group commit).
    Always,
    /// A background thread fsyncs once a second: a crash loses at most about a second.
    #[default]
    EverySec,
    /// Never fsync explicitly (the kernel writes back when it likes); `sync()` still does.
    No,
}

impl FsyncPolicy {
    /// The policy as a byte, for an atomic.
    pub(crate) fn code(self) -> u8 {
        match self {
            FsyncPolicy::Always => 0,
            FsyncPolicy::EverySec => 1,
            FsyncPolicy::No => 2,
        }
    }

    /// The policy of a [`FsyncPolicy::code`].
    pub(crate) fn from_code(code: u8) -> FsyncPolicy {
        match code {
            0 => FsyncPolicy::Always,
            1 => FsyncPolicy::EverySec,
            _ => FsyncPolicy::No,
        }
    }
}

/// Settings of a [`LogStore`](super::LogStore).
#[derive(Debug, Clone, PartialEq)]
pub struct LogOptions {
    /// Size of a segment file, allocated when it is created. Larger segments mean fewer
    /// files and fsyncs at seal; smaller ones let compaction work in smaller steps. At least
    /// 4 KiB and below 4 GiB. A record larger than this gets a segment of its own.
    pub segment_bytes_max: u64,
    /// When writes become durable.
    pub appendfsync: FsyncPolicy,
    /// A sealed segment is compacted once its dead bytes are this fraction of its bytes.
    pub compaction_dead_ratio: f64,
    /// Bytes per second compaction may read and write in the background (0: no limit), so
    /// that it does not starve the foreground of disk bandwidth.
    pub compaction_bytes_per_s: u64,
    /// Whether a background thread runs the everysec fsync, snapshots and compaction.
    /// Tests turn it off to drive those steps by hand.
    pub background: bool,
    /// Under `always`: `false`, each write waits for its own fsync before it returns;
    /// `true`, writes return once appended and the caller acknowledges them only after
    /// [`crate::Store::wait_durable`]. The server uses `true` and waits once per batch of
    /// requests, off its async workers, so concurrent clients share each fsync.
    pub deferred_acknowledgement: bool,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            segment_bytes_max: 64 << 20,
            appendfsync: FsyncPolicy::EverySec,
            compaction_dead_ratio: 0.5,
            compaction_bytes_per_s: 64 << 20,
            background: true,
            deferred_acknowledgement: false,
        }
    }
}

/// Smallest segment size accepted.
pub const SEGMENT_BYTES_MIN: u64 = 4096;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An option is out of range.
    #[error("invalid log store option {field}: {reason}")]
    Options {
        /// The option.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A segment was written by a format version this code does not read; nothing was
    /// changed on disk.
    #[error("segment {name} has format_version {found}, this build reads {expected}")]
    FormatVersion {
        /// The file.
        name: String,
        /// The version in its header.
        found: u32,
        /// The version this build reads.
        expected: u32,
    },
    /// An I/O error while opening, recovering or compacting.
    #[error("log store I/O error while {doing}: {source}")]
    Io {
        /// What the store was doing.
        doing: String,
        /// The error.
        source: std::io::Error,
    },
}

impl LogError {
    pub(super) fn io(doing: impl Into<String>) -> impl FnOnce(std::io::Error) -> LogError {
        let doing = doing.into();
        move |source| LogError::Io { doing, source }
    }
}

/// What recovery found when a store was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Time taken.
    pub duration: Duration,
    /// Segment files found.
    pub segments: usize,
    /// Valid records read from segments (records loaded from a snapshot not included).
    pub records: u64,
    /// Keys in the keydir afterwards, tombstones included.
    pub keys: usize,
    /// Bytes of segments and snapshot read.
    pub bytes_read: u64,
    /// Damaged regions skipped in the middle of a segment (each may hold several records).
    pub corrupt_records_skipped: u64,
    /// Bytes after the last valid record of a segment that were not zero (a torn write),
    /// zeroed so that later appends start clean.
    pub torn_tail_bytes_truncated: u64,
    /// Segment files skipped whole: shorter than a header (a crash while creating it).
    pub segments_skipped: usize,
    /// Segment headers with a wrong magic or checksum, whose records were still read.
    pub corrupt_headers: usize,
    /// Whether a keydir snapshot was loaded (then only segments after it were scanned).
    pub from_snapshot: bool,
}

impl fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.duration.as_secs_f64().max(1e-9);
        write!(
            f,
            "recovered {} keys from {} segments ({} records, {} bytes read, {:.0} MB/s{}) in \
             {:.3} s; {} corrupt regions skipped, {} torn-tail bytes truncated, {} segments \
             skipped, {} corrupt headers",
            self.keys,
            self.segments,
            self.records,
            self.bytes_read,
            self.bytes_read as f64 / secs / 1e6,
            if self.from_snapshot {
                ", from snapshot"
            } else {
                ""
            },
            self.duration.as_secs_f64(),
            self.corrupt_records_skipped,
            self.torn_tail_bytes_truncated,
            self.segments_skipped,
            self.corrupt_headers,
        )
    }
}

/// Counters of the log engine, for metrics and `INFO`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Segment files in use.
    pub segments: usize,
    /// Bytes of records the keydir still references (plus tombstones kept on disk).
    pub live_bytes: u64,
    /// Bytes of records overwritten, deleted or dropped, not yet reclaimed.
    pub dead_bytes: u64,
    /// Segments compacted since open.
    pub compactions: u64,
    /// Bytes freed by compaction since open.
    pub bytes_reclaimed: u64,
    /// Tombstones dropped by compaction since open.
    pub tombstones_dropped: u64,
    /// Keydir snapshots written since open.
    pub snapshots: u64,
    /// fsyncs done since open (group commit shares one among many writes).
    pub fsyncs: u64,
    /// Why writes are refused, when an earlier write or fsync failed.
    pub poisoned: Option<String>,
}
