//! The log-structured engine, [`LogStore`]: append-only segment files read through memory
//! maps, an in-memory keydir, group commit, crash recovery, keydir snapshots and compaction.
//!
//! Modules from the bottom up; a module uses only those on lines above its own (no cycle):
//!
//! - `types`: the public options, errors and reports ([`LogOptions`], [`LogError`],
//!   [`RecoveryReport`], [`LogStats`]); re-exported here.
//! - [`format`](mod@format): the segment and record format, and what is assumed of the disk.
//! - [`backend`]: the narrow file interface ([`StorageBackend`]), the real files and a
//!   fault-injecting backend for crash tests.
//! - `segment` (uses backend, format): one segment's file, map, end and live bytes; the
//!   segment table; segment file names.
//! - `keydir` (uses format): the 16-byte keydir `Entry` (tag, segment, offset and slot
//!   flags, packed access statistics and a new key's fresh ones), a shard (`Shard`; which shard holds a token is
//!   `crate::shard`'s rule, shared with `MemoryStore`), the table's hashes, and what a
//!   shard counts of its records.
//! - `snapshot` (uses keydir, segment): the keydir snapshot file, its format, loading and
//!   writing.
//! - `inner` (uses keydir, segment): `Inner`, the state shared by the handle, its thread and
//!   the modules below; the lock order; lookups, appends with group commit and poisoning.
//! - `evict` (uses inner): eviction under `maxmemory` (the policies of [`crate::eviction`]),
//!   how an access updates an entry's packed statistics and how they rank, and the evicted
//!   record that keeps an evicted (or discarded) key gone across a restart.
//! - `compact` (uses inner): compaction of segments with many dead bytes.
//! - `recovery` (uses inner, snapshot): rebuilding the state from a directory
//!   (snapshot, scan, torn tails, corrupt records).
//! - `store` (uses all): the handle [`LogStore`], `open`, its [`Store`](crate::Store)
//!   implementation and the background thread.
//!
//! docs/storage.md holds the design: format, durability, recovery, the tombstone rule of
//! compaction and the measured keydir overhead per key.

pub mod backend;
mod chain;
mod compact;
mod evict;
pub mod format;
mod inner;
mod keydir;
mod recovery;
mod segment;
mod snapshot;
mod store;
mod types;

#[cfg(test)]
mod evict_tests;
#[cfg(test)]
mod tests;

pub use backend::{FaultBackend, FileBackend, SegmentFile, StorageBackend};
pub use store::LogStore;
pub use types::{FsyncPolicy, LogError, LogOptions, LogStats, RecoveryReport, SEGMENT_BYTES_MIN};
