//! The cluster runtime's errors, each saying what happened to state and what the caller can
//! do; and the one place where the cluster's client-facing error texts are composed: every
//! RESP error a cluster command answers with is the `Display` of a type here (`RING`'s are
//! all [`RingError`]), except `UNAVAILABLE` and `TIMEOUT`, which
//! [`ringcache_cluster::QuorumError`] composes (level names from
//! [`ringcache_resp::Level::name`]).

use ringcache_cluster::NodeId;
use ringcache_cluster::membership::ForgetError;
use ringcache_cluster::protocol::Refusal as HandshakeRefusal;
use ringcache_cluster::view::LeaveRefused;
use ringcache_storage::StoreError;

/// Why this node does not coordinate a client's request at all (nothing was written; the
/// client may retry, here later or on another node).
#[derive(Debug, thiserror::Error)]
pub enum ClusterRefusal {
    /// The node has not been in the cluster with its seeds yet, so its ring may be wrong.
    #[error(
        "CLUSTERDOWN this node has not reached every seed yet ({}), so it cannot place keys; \
         retry shortly",
        seed_list(.unresolved)
    )]
    SeedsUnreached {
        /// The seeds still waited for.
        unresolved: Vec<String>,
    },
    /// This node's clock is too far off its peers' to issue versions for writes.
    #[error(
        "CLOCKSKEW this node's clock is {offset_ms} ms off its peers' (max {max_ms} ms); it \
         does not coordinate writes until its clock is fixed (nothing was written)"
    )]
    ClockSkew {
        /// This node's offset from its peers.
        offset_ms: i64,
        /// `--max-clock-offset-ms`.
        max_ms: u64,
    },
}

/// The seeds of [`ClusterRefusal::SeedsUnreached`]: the first few, then how many more.
fn seed_list(unresolved: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut list = unresolved[..unresolved.len().min(SHOWN)].join(", ");
    if unresolved.len() > SHOWN {
        list.push_str(&format!(" and {} more", unresolved.len() - SHOWN));
    }
    list
}

/// Why a replica did not take a record (see [`super::replica`]). The text travels back to a
/// coordinator in a peer `Error` message.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The record's version is further ahead of this replica's wall clock than tolerated:
    /// nothing was written and the clock did not move (a runaway clock must not make its
    /// writes win over every later one). The coordinator counts this replica as failed.
    #[error(
        "CLOCKSKEW the version is {ahead_ms} ms ahead of this replica's clock (max {max_ms} ms)"
    )]
    ClockSkew {
        /// How far ahead of this replica's wall clock the version is.
        ahead_ms: u64,
        /// `--max-clock-offset-ms`.
        max_ms: u64,
    },
    /// The store refused the write (see its error for what it kept).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a request to a peer got no answer ([`super::link::Links::request`]). Nothing is known
/// of what the peer did unless the variant says so.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// No connection to the peer is up: nothing was sent.
    #[error("no link to node {0} is up")]
    NoLink(NodeId),
    /// The link's queue is full or closed: nothing was sent; retry later.
    #[error("the link to node {0} is full or closing; the request was not sent")]
    NotSent(NodeId),
    /// The request could not be encoded (too large a frame): nothing was sent.
    #[error("the request could not be encoded: {0}")]
    Encode(String),
    /// The peer did not answer in time: it may have applied the request.
    #[error("node {peer} did not answer within {timeout_ms} ms")]
    Timeout {
        /// The peer asked.
        peer: NodeId,
        /// How long the caller waited.
        timeout_ms: u64,
    },
    /// The peer refused the request, or the link broke before the answer.
    #[error("node {0} refused the request, or its link broke")]
    Failed(NodeId),
}

/// Why a peer connection was not established ([`super::link`]'s dialing and push-pull).
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The TCP connection failed: nothing was exchanged.
    #[error("cannot reach {addr}: {source}")]
    Unreachable {
        /// The address dialed.
        addr: String,
        /// The socket's error.
        source: std::io::Error,
    },
    /// The TCP connection or the handshake took too long.
    #[error("cannot reach {0}: timed out")]
    TimedOut(String),
    /// The handshake was refused (wrong secret, cluster name or version).
    #[error("the handshake was refused: {0}")]
    Refused(HandshakeRefusal),
    /// The peer sent bytes that are not a valid frame or message (counted as rejected).
    #[error("the peer sent a malformed frame or message: {0}")]
    Malformed(String),
    /// The socket failed or closed during the exchange.
    #[error("the peer connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The peer answered a push-pull with another kind of message.
    #[error("node {peer} answered a push-pull with kind {kind}")]
    Unexpected {
        /// The peer.
        peer: NodeId,
        /// The kind of message it sent.
        kind: u8,
    },
    /// The peer's membership view could not be decoded: nothing was merged.
    #[error("the peer's member table is malformed: {0}")]
    Members(#[from] ringcache_cluster::membership::GossipError),
}

/// Why a cluster flush did not complete ([`super::flush`]).
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// The flush time could not be written to the data dir: nothing was flushed here (a
    /// restart would bring back the records). Retry the flush.
    #[error("cannot keep the flush time, nothing was flushed: {0:#}")]
    Keep(anyhow::Error),
    /// The flush time is kept (later writes older than it are dropped), but the store could
    /// not drop the records it held: some may still be read until the flush is retried.
    #[error("the flush time is kept but the store was not emptied: {0}")]
    Store(#[from] StoreError),
}

/// Why streaming a batch of records failed ([`super::streaming`]); the batch is retried.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The request for the batch got no answer.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The source answered with something else than records.
    #[error("node {0} answered a stream request with something else")]
    Unexpected(NodeId),
    /// The local store refused a streamed record: the records before it are merged, the
    /// cursor did not move.
    #[error("the local store refused a streamed record: {0}")]
    Store(#[from] ReplicaError),
    /// The target did not acknowledge a pushed batch after every attempt.
    #[error("node {0} did not take the records")]
    NotTaken(NodeId),
}

/// Why `RING DECOMMISSION` was refused or stopped; the text is its error reply.
#[derive(Debug, thiserror::Error)]
pub enum DecommissionError {
    /// Nothing was done: the node may not leave now ([`LeaveRefused`] says why).
    #[error(transparent)]
    Refused(#[from] LeaveRefused),
    /// Streaming out stopped; the node turned Normal again and keeps its data. Run it again.
    #[error("ERR decommission stopped, this node stays normal: {0}")]
    Stopped(#[from] StreamError),
}

/// Why `RING REPAIR` did not run a round (nothing was compared); the text is its error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RepairRefusal {
    /// The ring is moving (this node not Normal, or a member joining or leaving).
    #[error("ERR a member is joining or leaving; repair once the ring is still")]
    RingMoving,
    /// This node's clock is off from its peers' (a round's start lets tombstones go).
    #[error("ERR this node's clock is off from its peers' (see INFO clock_offset_ms)")]
    ClockSkew,
    /// This node holds no replica of the key asked for.
    #[error("ERR this node holds no replica of the key; run it on one of RING REPLICAS key")]
    NotAReplica,
}

/// Why a `RING` subcommand was refused or failed; the text is its error reply. Every error
/// `RING` answers with is one of these, on a single node as in a cluster.
#[derive(Debug, thiserror::Error)]
pub enum RingError {
    /// `RING DECOMMISSION`, `FORGET` or `REPAIR` on a single node: nothing was done.
    #[error("ERR this node is not in a cluster (no --seeds or --peer-port)")]
    NotInCluster,
    /// `RING FORGET` of something that is not a node id: nothing was done.
    #[error("ERR a node id is 1 to 16 hexadecimal digits")]
    BadNodeId,
    /// `RING FORGET` refused by the membership ([`ForgetError`] says why): nothing changed.
    #[error("ERR {0}")]
    Forget(#[from] ForgetError),
    /// `RING DECOMMISSION` refused or stopped.
    #[error(transparent)]
    Decommission(#[from] DecommissionError),
    /// `RING REPAIR` did not run a round.
    #[error(transparent)]
    Repair(#[from] RepairRefusal),
}

/// Why this node refused a peer's repair write or announcement; the text goes back in a
/// peer `Error` message and fails the peer's session.
#[derive(Debug, thiserror::Error)]
pub enum RepairWriteError {
    /// A record was not taken (those before it were): the range does not count as repaired.
    #[error("ERR the store could not take a repaired record")]
    Store,
    /// The round's start is ahead of this node's clock by more than tolerated: nothing was
    /// recorded (it would let tombstones go early).
    #[error("ERR a repair round that started {ahead_ms} ms ahead of this node's clock")]
    StartedAhead {
        /// How far ahead.
        ahead_ms: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_unreached_names_three_seeds_then_counts_the_rest() {
        let unresolved = ["a:1", "b:2", "c:3", "d:4", "e:5"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            ClusterRefusal::SeedsUnreached { unresolved }.to_string(),
            "CLUSTERDOWN this node has not reached every seed yet (a:1, b:2, c:3 and 2 more), \
             so it cannot place keys; retry shortly"
        );
    }

    #[test]
    fn the_coordinators_clock_skew_says_nothing_was_written() {
        let text = ClusterRefusal::ClockSkew {
            offset_ms: -900,
            max_ms: 500,
        }
        .to_string();
        assert!(text.starts_with("CLOCKSKEW this node's clock is -900 ms off"));
        assert!(text.ends_with("(nothing was written)"));
    }

    #[test]
    fn ring_errors_are_err_replies_naming_what_was_wrong() {
        let id: NodeId = "ab".parse().unwrap();
        let texts = [
            (
                RingError::NotInCluster,
                "ERR this node is not in a cluster (no --seeds or --peer-port)".to_string(),
            ),
            (
                RingError::BadNodeId,
                "ERR a node id is 1 to 16 hexadecimal digits".into(),
            ),
            (
                RingError::Forget(ForgetError::Alive(id)),
                format!("ERR {id} is alive; only a dead member can be forgotten"),
            ),
            (
                RingError::Repair(RepairRefusal::RingMoving),
                "ERR a member is joining or leaving; repair once the ring is still".into(),
            ),
        ];
        for (error, text) in texts {
            assert_eq!(error.to_string(), text);
        }
    }

    #[test]
    fn a_replicas_clock_skew_names_how_far_ahead() {
        let text = ReplicaError::ClockSkew {
            ahead_ms: 9_000,
            max_ms: 500,
        }
        .to_string();
        assert_eq!(
            text,
            "CLOCKSKEW the version is 9000 ms ahead of this replica's clock (max 500 ms)"
        );
    }
}
