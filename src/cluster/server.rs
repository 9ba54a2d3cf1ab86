//! The peer request server: accepts peer connections, authenticates them ([`link::accept`]),
//! and answers each request from this node's replica side: reads and writes through the
//! replica path ([`super::replica`]), scans and key counts, flushes, gossip push-pulls,
//! stream reads, and anti-entropy's questions and writes. Answers go back in request order,
//! batched per read from the socket; under appendfsync always, writes are durable before
//! their acknowledgements leave.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;
use ringcache_cluster::protocol::{Frame, FrameDecoder, Message, PEER_FRAME_BYTES_MAX, kind};
use ringcache_cluster::repair::{RangeId, Taken};
use ringcache_storage::Record;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::error::{RepairWriteError, ReplicaError};
use super::flush::apply_flush;
use super::link::{self, READ_CHUNK_BYTES};
use super::repair_state::take_record;
use super::replica::Source;
use super::state::Cluster;
use crate::clock::unix_now_ms;
use crate::config::Config;
use crate::durability::Durability;

/// Accepted peer connections served at once (authenticated or still in the handshake); past
/// it a new one is closed at once, so a flood of connections cannot exhaust the node. A
/// member needs one; 1,200 members need 1,199.
pub const PEER_CONNECTIONS_MAX: usize = 4096;

/// What the server answers with: the cluster state, durability (a write is acknowledged
/// once durable under appendfsync always), and the configuration (repair's eviction rule
/// reads `maxmemory`, which `CONFIG SET` changes).
#[derive(Clone)]
pub struct Server {
    /// The cluster state, this node's replica side in it.
    pub cluster: Arc<Cluster>,
    /// Waits for writes to be durable.
    pub durability: Arc<Durability>,
    /// The node's configuration.
    pub config: Arc<RwLock<Config>>,
    /// The node's subscribers, for messages published on other nodes.
    pub pubsub: Arc<crate::pubsub::PubSub>,
}

/// Accepts peer connections until shutdown.
pub async fn listen(server: Server, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(PEER_CONNECTIONS_MAX));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match accepted {
            Ok((stream, addr)) => {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    tracing::warn!(%addr, max = PEER_CONNECTIONS_MAX, "too many peer connections; closed one");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let server = server.clone();
                tokio::spawn(async move {
                    serve(server, stream, addr).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "peer accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves one accepted peer connection: handshake, then requests until it closes.
async fn serve(server: Server, mut stream: TcpStream, addr: SocketAddr) {
    let links = server.cluster.links.clone();
    let Some((peer, mut input)) = link::accept(&links, &mut stream, addr).await else {
        return;
    };
    let mut decoder = FrameDecoder::new(PEER_FRAME_BYTES_MAX);
    let mut output = BytesMut::new();
    loop {
        let mut wrote = false;
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(frame)) => {
                    let request_id = frame.request_id;
                    let reply = if walks_the_store(frame.kind) {
                        // Off the async workers, which serve clients meanwhile; this link's
                        // later requests wait, so answers keep their order.
                        let server = server.clone();
                        let walk = tokio::task::spawn_blocking(move || {
                            answer(&server, &frame, &mut false)
                        });
                        walk.await.ok().flatten()
                    } else {
                        answer(&server, &frame, &mut wrote)
                    };
                    let Some(message) = reply else {
                        return;
                    };
                    if let Err(e) = message.encode(request_id, &mut output) {
                        tracing::warn!(%peer, error = %e, "an answer could not be encoded");
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    link::reject_frame(&links, peer, &e);
                    return;
                }
            }
        }
        if wrote
            && server.cluster.replica.store.acknowledges_after_sync()
            && server.durability.wait().await.is_err()
        {
            return; // Not durable: no ack; the coordinators see the link fail.
        }
        if !output.is_empty() {
            if stream.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
        input.reserve(READ_CHUNK_BYTES);
        match crate::socket::read_some(&stream, &mut input).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Whether answering a request of this kind walks part of the store (anti-entropy's key lists,
/// span digests and fetches, streaming's walks, and digests over many leaves): such answers
/// run on a blocking thread.
fn walks_the_store(kind: u8) -> bool {
    matches!(
        kind,
        kind::DIGESTS | kind::SPAN_DIGESTS | kind::VERSIONS | kind::FETCH | kind::STREAM_READ
    )
}

/// The answer to one request from a peer; `None` closes the connection (a message that
/// has no place here). Sets `wrote` when the request wrote to the store.
fn answer(server: &Server, frame: &Frame, wrote: &mut bool) -> Option<Message> {
    let cluster = &server.cluster;
    let replica = &cluster.replica;
    let message = Message::decode(frame).ok()?;
    let now = unix_now_ms();
    let reply = match message {
        Message::Ping { now_ms } => Message::Pong {
            now_ms: now,
            echoed_ms: now_ms,
        },
        Message::Read { key } => Message::ReadReply {
            record: replica.read(&key, now),
        },
        Message::Publish { channel, payload } => {
            let stats = &server.pubsub.stats;
            stats.received_from_peers.fetch_add(1, Relaxed);
            server.pubsub.deliver(&channel, &payload);
            Message::WriteAck
        }
        Message::Write { key, record } => {
            *wrote = true;
            answer_write(cluster, &key, &record)
        }
        Message::Scan {
            from_token,
            count,
            kind,
        } => {
            let (next_token, keys) = replica.scan(from_token, count as usize, kind, now);
            Message::ScanReply { next_token, keys }
        }
        Message::KeyCount => Message::KeyCountReply {
            keys: replica.store.stats().keys as u64,
        },
        Message::Flush { version } => match apply_flush(cluster, version) {
            Ok(()) => Message::WriteAck,
            Err(e) => refusal(&e),
        },
        Message::Members { state } => {
            if let Err(e) = cluster.merge_members(&state) {
                return Some(refusal(&e));
            }
            Message::MembersReply {
                state: cluster.encode_members(),
            }
        }
        Message::StreamRead {
            cursor,
            count,
            ranges,
        } => {
            let (cursor, records) = replica.read_ranges(cursor, count, &ranges, now);
            Message::StreamReply { cursor, records }
        }
        message @ (Message::Digests { .. }
        | Message::SpanDigests { .. }
        | Message::Versions { .. }
        | Message::Fetch { .. }) => {
            let reply = ringcache_cluster::repair::answer(replica.store.as_ref(), &message, now)?;
            if let Message::Error { text } = &reply {
                cluster.repair.stats.requests_refused.fetch_add(1, Relaxed);
                tracing::warn!(text, "refused a peer's repair request");
            }
            reply
        }
        Message::RepairWrite { records } => {
            *wrote = true;
            let maxmemory_bytes = server.config.read().maxmemory_bytes;
            match answer_repair_write(cluster, &records, maxmemory_bytes) {
                Ok(()) => Message::WriteAck,
                Err(e) => refusal(&e),
            }
        }
        // Writes no record (the repair history is kept in its own file), so its
        // acknowledgement waits for no store sync.
        Message::RepairDone { started_ms, ranges } => {
            match answer_repair_done(cluster, started_ms, &ranges) {
                Ok(()) => Message::WriteAck,
                Err(e) => refusal(&e),
            }
        }
        _ => return None,
    };
    Some(reply)
}

/// A refusal as the peer sees it: the error's text.
fn refusal(error: &dyn std::fmt::Display) -> Message {
    Message::Error {
        text: error.to_string(),
    }
}

/// The remote leg of a coordinator's write: the same function as the local leg
/// ([`super::driver::local_write`]), its answer put on the wire.
fn answer_write(cluster: &Cluster, key: &Bytes, record: &Record) -> Message {
    match cluster
        .replica
        .apply(key, record, unix_now_ms(), Source::Coordinator)
    {
        Ok(_) => Message::WriteAck,
        Err(e @ (ReplicaError::ClockSkew { .. } | ReplicaError::Store(_))) => refusal(&e),
    }
}

/// Takes a peer's repair writes. A record the store could not take fails the whole answer
/// (the peer's session fails, so the range does not count as repaired).
fn answer_repair_write(
    cluster: &Cluster,
    records: &[(Bytes, Record)],
    maxmemory_bytes: u64,
) -> Result<(), RepairWriteError> {
    for (key, record) in records {
        match take_record(
            &cluster.replica,
            &cluster.repair,
            key,
            record,
            maxmemory_bytes,
        ) {
            Taken::Changed => {
                cluster.repair.stats.keys_received.fetch_add(1, Relaxed);
            }
            Taken::Unchanged | Taken::Refused => {}
            Taken::Failed => return Err(RepairWriteError::Store),
        }
    }
    Ok(())
}

/// Records a peer's round announced as complete over `ranges`; refused when it started
/// ahead of this node's clock by more than the tolerated offset (it would let tombstones go
/// early).
fn answer_repair_done(
    cluster: &Cluster,
    started_ms: u64,
    ranges: &[RangeId],
) -> Result<(), RepairWriteError> {
    let now = unix_now_ms();
    if started_ms > now + cluster.config.max_clock_offset_ms {
        cluster.repair.stats.requests_refused.fetch_add(1, Relaxed);
        return Err(RepairWriteError::StartedAhead {
            ahead_ms: started_ms - now,
        });
    }
    let ring = cluster.ring();
    let n = cluster.config.replication_factor;
    cluster
        .repair
        .record(&ring, n, cluster.local, ranges, started_ms);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::driver::local_write;
    use crate::cluster::link::Response;
    use crate::cluster::state::tests::{DataDir, open_cluster};
    use ringcache_storage::Version;

    /// Both legs of a write, side by side: the coordinator's own replica, and a peer's.
    fn both_legs(cluster: &Cluster, key: &Bytes, record: &Record) -> (Response, Message) {
        (
            local_write(&cluster.replica, key, record),
            answer_write(cluster, key, record),
        )
    }

    fn cluster() -> (Cluster, DataDir) {
        open_cluster(&["--max-clock-offset-ms", "500"])
    }

    fn ahead_of_now(ms: u64) -> Record {
        let version = Version {
            hlc: (unix_now_ms() + ms) << Version::LOGICAL_BITS,
            node: 9,
        };
        Record::new(Bytes::from_static(b"v"), None, version)
    }

    #[test]
    fn the_local_and_remote_legs_both_refuse_a_version_too_far_ahead() {
        let (cluster, _dir) = cluster();
        let record = ahead_of_now(60_000);
        let (local, remote) = both_legs(&cluster, &Bytes::from_static(b"k"), &record);
        assert!(matches!(local, Response::Failed), "{local:?}");
        assert!(
            matches!(&remote, Message::Error { text } if text.starts_with("CLOCKSKEW")),
            "{remote:?}"
        );
        assert_eq!(cluster.replica.store.peek(b"k", unix_now_ms()), None);
        assert_eq!(cluster.stats.clock_skew_refusals.load(Relaxed), 2);
        assert_eq!(
            cluster.replica.clock.high_water(),
            0,
            "the clock did not move"
        );
    }

    #[test]
    fn the_local_and_remote_legs_both_take_a_version_this_node_issued() {
        let (cluster, _dir) = cluster();
        let version = cluster.replica.clock.next(unix_now_ms());
        let record = Record::new(Bytes::from_static(b"v"), None, version);
        let (local, remote) = both_legs(&cluster, &Bytes::from_static(b"k"), &record);
        assert!(matches!(local, Response::Ack), "{local:?}");
        assert!(matches!(remote, Message::WriteAck), "{remote:?}");
        let held = cluster.replica.store.peek(b"k", unix_now_ms());
        assert_eq!(held.map(|r| r.version()), Some(version));
    }

    #[test]
    fn a_repair_round_announced_from_the_future_is_refused_and_counted() {
        let (cluster, _dir) = cluster();
        let outcome = answer_repair_done(&cluster, unix_now_ms() + 60_000, &[]);
        assert!(matches!(
            outcome,
            Err(RepairWriteError::StartedAhead { .. })
        ));
        assert_eq!(cluster.repair.stats.requests_refused.load(Relaxed), 1);
    }
}
