//! The log-structured engine, [`LogStore`]: append-only segment files read through memory
//! maps, an in-memory keydir, group commit, crash recovery, keydir snapshots and compaction.
//!
//! - [`format`]: the segment and record format, and what is assumed of the disk.
//! - [`backend`]: the narrow file interface ([`StorageBackend`]), the real files and a
//!   fault-injecting backend for crash tests.
//! - `store`: the engine and its [`Store`](crate::Store) implementation.
//! - `recovery`: opening a directory (scan, torn tails, corrupt records) and the keydir
//!   snapshot.
//! - `compact`: compaction of segments with many dead bytes.
//! - `evict`: eviction under `maxmemory` (the policies of [`crate::eviction`]), the
//!   per-key access statistics packed in the keydir, and the evicted record that keeps an
//!   evicted (or discarded) key gone across a restart.
//!
//! docs/storage.md holds the design: format, durability, recovery, the tombstone rule of
//! compaction and the measured keydir overhead per key.

pub mod backend;
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
