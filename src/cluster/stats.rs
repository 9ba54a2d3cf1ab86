//! The cluster's counters for INFO and the metrics: coordinator rounds by kind, level and
//! outcome with their latencies, hints, peer connections, clock skew, and streaming.
//! Anti-entropy's counters sit with its state ([`super::repair_state`]).

use std::sync::atomic::AtomicU64;

use ringcache_cluster::QuorumError;
use ringcache_resp::Level;
use ringcache_storage::Record;

use crate::stats::LATENCY_BUCKETS;

/// Levels as counted in statistics; an integer level counts as `COUNT`.
pub const LEVEL_NAMES: [&str; 7] = ["ONE", "TWO", "THREE", "QUORUM", "ALL", "ANY", "COUNT"];
/// Round kinds as counted in statistics, indexed by [`OP_READ`] and [`OP_WRITE`].
pub const OP_NAMES: [&str; 2] = ["read", "write"];
/// Index of reads in [`ClusterStats::rounds`].
pub const OP_READ: usize = 0;
/// Index of writes in [`ClusterStats::rounds`].
pub const OP_WRITE: usize = 1;

/// The statistics slot of a level.
pub fn level_index(level: Level) -> usize {
    match level {
        Level::One => 0,
        Level::Two => 1,
        Level::Three => 2,
        Level::Quorum => 3,
        Level::All => 4,
        Level::Any => 5,
        Level::Count(_) => 6,
    }
}

/// Counters of the rounds of one kind at one level.
#[derive(Debug, Default)]
pub struct RoundStats {
    /// Rounds by outcome, see [`OUTCOMES`].
    pub outcomes: [AtomicU64; 4],
    /// Time to the reply, bucketed as the command latencies are.
    pub latency: [AtomicU64; LATENCY_BUCKETS],
}

/// Counters for INFO and metrics.
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// Rounds by kind (read, write) and level.
    pub rounds: [[RoundStats; LEVEL_NAMES.len()]; 2],
    /// Read repairs sent.
    pub read_repairs: AtomicU64,
    /// Hints stored.
    pub hints_stored: AtomicU64,
    /// Hints replayed to their target.
    pub hints_replayed: AtomicU64,
    /// Hints dropped: past the window, or the target's hint log full.
    pub hints_dropped: AtomicU64,
    /// Handshakes refused (wrong secret, cluster name, version).
    pub handshakes_refused: AtomicU64,
    /// Peer connections closed for bytes that are not valid frames or messages.
    pub peer_frames_rejected: AtomicU64,
    /// Writes refused for clock skew: by this node as a coordinator, and by its replica.
    pub clock_skew_refusals: AtomicU64,
    /// Pub/sub messages sent to other members, and those not sent (no link to the member,
    /// or its queue full: delivery is at most once).
    pub publish_sent: AtomicU64,
    pub publish_unsent: AtomicU64,
}

/// Index into [`RoundStats::outcomes`].
pub fn outcome_index(outcome: &Result<Option<Record>, QuorumError>) -> usize {
    match outcome {
        Ok(_) => 0,
        Err(QuorumError::Unavailable { .. }) => 1,
        Err(QuorumError::Timeout { .. }) => 2,
        Err(QuorumError::Failed { .. }) => 3,
    }
}

/// Names of [`RoundStats::outcomes`].
pub const OUTCOMES: [&str; 4] = ["ok", "unavailable", "timeout", "failed"];

/// Streaming counters for INFO and metrics.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Bytes of records received by streaming (join) or sent (decommission).
    pub bytes: AtomicU64,
    /// Records received or sent.
    pub records: AtomicU64,
    /// Records received that were new here (not already held at that version).
    pub records_new: AtomicU64,
    /// Live elements of the collections (hash fields, set members, ...) in the records
    /// received: how a join's share of collections is counted element by element.
    pub elements: AtomicU64,
    /// Ranges finished.
    pub ranges_done: AtomicU64,
    /// Ranges planned and not finished.
    pub ranges_pending: AtomicU64,
    /// Records dropped because this node no longer keeps a replica of them.
    pub records_discarded: AtomicU64,
}
