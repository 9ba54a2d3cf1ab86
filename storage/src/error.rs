//! Storage errors, worded for the client: each says what happened to the data.

/// Why a write was refused. Every variant means nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The write could not be made durable as the fsync policy promises (disk full, I/O
    /// error); the segment is now poisoned.
    #[error("IOERR storage write failed, nothing was written: {0}")]
    Write(String),
    /// An earlier write or sync failed; the store refuses writes until restarted, because an
    /// fsync must never be retried after a failure (the kernel may have dropped the pages).
    #[error("IOERR storage refuses writes after an earlier I/O error, nothing was written: {0}")]
    Poisoned(String),
}
