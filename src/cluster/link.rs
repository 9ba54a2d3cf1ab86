//! Peer connections, both ends.
//!
//! Each node dials every member gossip tells it of and keeps one connection to each
//! (reconnecting with backoff, until the member leaves or is forgotten);
//! its own requests (reads, writes, pings) go out on the connections it dialed, multiplexed
//! by request id, and the answers come back on them. Connections accepted on the peer port
//! only serve: they answer reads from the local store, merge writes into it, and answer
//! pings. Both ends authenticate first with the HMAC handshake; frames are batched per
//! flush; every queue has a bound.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use ringcache_cluster::NodeId;
use ringcache_cluster::membership::Membership;
use ringcache_cluster::protocol::message::NONCE_BYTES;
use ringcache_cluster::protocol::{
    Frame, FrameDecoder, Handshake, HandshakeEffect, Message, PEER_FRAME_BYTES_MAX, Refusal, kind,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::{Cluster, PING_INTERVAL_MS, Response};
use crate::node::{Node, unix_now_ms};

/// Frames queued for one peer before a request fails at once instead of waiting: a peer that
/// cannot keep up must not make the coordinator's memory grow.
pub const LINK_QUEUE_FRAMES: usize = 16 * 1024;
/// Accepted peer connections served at once (authenticated or still in the handshake); past
/// it a new one is closed at once, so a flood of connections cannot exhaust the node. A
/// member needs one; 1,200 members need 1,199.
pub const PEER_CONNECTIONS_MAX: usize = 4096;
/// Bytes gathered into one socket write.
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// Bytes read from a peer socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// How long a handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one dial may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnect backoff, doubling from the first to the last.
const BACKOFF_MIN_MS: u64 = 100;
const BACKOFF_MAX_MS: u64 = 2_000;

/// Where an answer to one request goes.
/// Where the answers to a round's requests go.
pub type Responder = Arc<Inbox>;

/// The answers to one round's (or one caller's) peer requests, in arrival order.
///
/// Lighter than a channel, which every read and write round would otherwise allocate (with
/// a 32-slot block): a queue that holds at most the requests the round sent, and a wake-up.
#[derive(Debug, Default)]
pub struct Inbox {
    answers: Mutex<VecDeque<(NodeId, Response)>>,
    arrived: tokio::sync::Notify,
}

impl Inbox {
    /// A new, empty inbox to hand to [`Link::request`].
    pub fn new() -> Responder {
        Arc::new(Inbox::default())
    }

    fn push(&self, from: NodeId, response: Response) {
        self.answers.lock().push_back((from, response));
        self.arrived.notify_one();
    }

    /// The next answer, waiting for one to arrive.
    pub async fn recv(&self) -> (NodeId, Response) {
        loop {
            if let Some(answer) = self.answers.lock().pop_front() {
                return answer;
            }
            // A push between the check and here leaves a permit: this returns at once.
            self.arrived.notified().await;
        }
    }
}

/// An established connection to one peer, for this node's requests.
#[derive(Debug)]
pub struct Link {
    peer: NodeId,
    out: mpsc::Sender<Bytes>,
    pending: Mutex<HashMap<u64, Responder>>,
}

impl Link {
    /// Sends `message` as request `id`; the answer goes to `responder` as from `to`.
    ///
    /// # Errors
    /// The link's queue is full or closed (the caller counts the replica as failed).
    pub fn request(
        &self,
        id: u64,
        message: &Message,
        to: NodeId,
        responder: Responder,
    ) -> Result<u64, ()> {
        let mut frame = BytesMut::new();
        if let Err(e) = message.encode(id, &mut frame) {
            tracing::warn!(error = %e, "a peer request could not be encoded");
            return Err(());
        }
        debug_assert_eq!(to, self.peer);
        self.pending.lock().insert(id, responder);
        if self.out.try_send(frame.freeze()).is_err() {
            self.pending.lock().remove(&id);
            return Err(());
        }
        Ok(id)
    }

    /// Forgets request `id`; a late answer is dropped.
    pub fn cancel(&self, id: u64) {
        self.pending.lock().remove(&id);
    }

    fn resolve(&self, id: u64, response: Response) {
        if let Some(responder) = self.pending.lock().remove(&id) {
            responder.push(self.peer, response);
        }
    }

    /// The connection broke: every request in flight fails now, not at its timeout.
    fn fail_all(&self) {
        for (_, responder) in self.pending.lock().drain() {
            responder.push(self.peer, Response::Failed);
        }
    }
}

/// Why a handshake did not establish.
enum HandshakeFailure {
    Refused(Refusal),
    /// Bytes that are not a valid frame or message (counted as a rejected frame).
    Malformed(String),
    Io(std::io::Error),
}

/// Runs a handshake over `stream`; returns the peer's id, with any bytes already read past
/// the handshake left in `input`.
async fn handshake(
    stream: &mut TcpStream,
    mut machine: Handshake,
    first: Option<Message>,
    input: &mut BytesMut,
) -> Result<NodeId, HandshakeFailure> {
    let io = |e: std::io::Error| HandshakeFailure::Io(e);
    let bad = |text: String| HandshakeFailure::Io(std::io::Error::other(text));
    let run = async {
        let mut decoder = FrameDecoder::for_handshake();
        if let Some(message) = first {
            send(stream, &message).await.map_err(io)?;
        }
        loop {
            let malformed = |e: ringcache_cluster::protocol::ProtocolError| {
                HandshakeFailure::Malformed(e.to_string())
            };
            while let Some(frame) = decoder.decode(input).map_err(malformed)? {
                let message = Message::decode(&frame).map_err(malformed)?;
                let mut established = None;
                for effect in machine.on_message(message) {
                    match effect {
                        HandshakeEffect::Send(reply) => send(stream, &reply).await.map_err(io)?,
                        HandshakeEffect::Established { peer_node_id, .. } => {
                            established = Some(NodeId::new(peer_node_id));
                        }
                        HandshakeEffect::Refused { reason } => {
                            return Err(HandshakeFailure::Refused(reason));
                        }
                    }
                }
                if let Some(peer) = established {
                    return Ok(peer);
                }
            }
            input.reserve(4096);
            if stream.read_buf(input).await.map_err(io)? == 0 {
                return Err(bad("the peer closed the connection".into()));
            }
        }
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, run).await {
        Ok(outcome) => outcome,
        Err(_) => Err(bad("the handshake timed out".into())),
    }
}

async fn send(stream: &mut TcpStream, message: &Message) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    message
        .encode(0, &mut out)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    stream.write_all(&out).await
}

fn nonce() -> [u8; NONCE_BYTES] {
    rand::random()
}

/// Keeps a connection to the member at `addr` while it is a member: dials, authenticates,
/// serves this node's requests over it, and redials with backoff when it breaks. Stops when
/// no member has that address any more (it left or was forgotten), or it is this node.
pub async fn dial(node: Arc<Node>, addr: SocketAddr) {
    let cluster = node.cluster.get().expect("cluster");
    let mut shutdown = node.shutdown.subscribe();
    let mut backoff_ms = BACKOFF_MIN_MS;
    while cluster.wants_link(addr) {
        let attempt = connect(&node, addr);
        let outcome = tokio::select! {
            outcome = attempt => outcome,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match outcome {
            Ok(false) => return,
            // It was up: redial soon.
            Ok(true) => backoff_ms = BACKOFF_MIN_MS,
            Err(()) => {}
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(backoff_ms)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        backoff_ms = (backoff_ms * 2).min(BACKOFF_MAX_MS);
    }
}

/// Dials `addr` and runs the handshake as the initiator; the stream, the peer's id and any
/// bytes read past the handshake. `Ok(None)`: `addr` is this node.
async fn open(
    cluster: &Cluster,
    addr: &str,
) -> Result<Option<(TcpStream, NodeId, BytesMut)>, String> {
    let mut stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(format!("cannot reach {addr}: {e}")),
        Err(_) => return Err(format!("cannot reach {addr}: timed out")),
    };
    let _ = stream.set_nodelay(true);
    let (machine, hello) = Handshake::initiate(cluster.identity.clone(), nonce());
    let mut input = BytesMut::new();
    match handshake(&mut stream, machine, Some(hello), &mut input).await {
        Ok(peer) => Ok(Some((stream, peer, input))),
        Err(HandshakeFailure::Refused(reason)) if is_self(cluster, &reason) => Ok(None),
        Err(HandshakeFailure::Refused(reason)) => {
            cluster.stats.handshakes_refused.fetch_add(1, Relaxed);
            tracing::warn!(addr, %reason, "peer handshake refused");
            Err(reason.to_string())
        }
        Err(HandshakeFailure::Malformed(e)) => {
            cluster.stats.peer_frames_rejected.fetch_add(1, Relaxed);
            tracing::warn!(addr, error = %e, "peer sent a malformed handshake");
            Err(e)
        }
        Err(HandshakeFailure::Io(e)) => Err(e.to_string()),
    }
}

/// One connection's life. `Ok(true)`: it was established and later broke (redial soon);
/// `Ok(false)`: `addr` is this node (stop dialing); `Err`: it failed (back off).
async fn connect(node: &Arc<Node>, addr: SocketAddr) -> Result<bool, ()> {
    let cluster = node.cluster.get().expect("cluster");
    let (stream, peer, input) = match open(cluster, &addr.to_string()).await {
        Ok(Some(opened)) => opened,
        Ok(None) => return Ok(false),
        Err(e) => {
            tracing::debug!(%addr, error = %e, "peer link not established");
            return Err(());
        }
    };
    tracing::info!(%addr, %peer, "peer link up");
    run_link(node, stream, peer, input).await;
    tracing::info!(%addr, %peer, "peer link down");
    Ok(true)
}

/// Gossip push-pull over its own short connection: sends this node's whole membership view
/// to the peer at `addr` and merges the peer's answer. Also how a node first enters a
/// cluster through a seed.
///
/// # Errors
/// The peer cannot be reached, refuses, or answers with something else.
pub async fn push_pull(node: &Arc<Node>, addr: &str) -> Result<(), String> {
    let cluster = node.cluster.get().expect("cluster");
    let Some((mut stream, peer, mut input)) = open(cluster, addr).await? else {
        return Ok(()); // This node itself.
    };
    let state = Bytes::from(cluster.membership.lock().encode_state());
    let exchange = async {
        send(&mut stream, &Message::Members { state })
            .await
            .map_err(|e| e.to_string())?;
        let mut decoder = FrameDecoder::new(PEER_FRAME_BYTES_MAX);
        loop {
            if let Some(frame) = decoder.decode(&mut input).map_err(|e| e.to_string())? {
                return Message::decode(&frame).map_err(|e| e.to_string());
            }
            input.reserve(READ_CHUNK_BYTES);
            if stream
                .read_buf(&mut input)
                .await
                .map_err(|e| e.to_string())?
                == 0
            {
                return Err("the peer closed the connection".to_string());
            }
        }
    };
    let answer = tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| "the push-pull timed out".to_string())??;
    let Message::MembersReply { state } = answer else {
        return Err(format!(
            "{peer} answered a push-pull with kind {}",
            answer.kind()
        ));
    };
    merge_members(node, &state)
}

/// Merges a peer's encoded membership view into this node's.
fn merge_members(node: &Arc<Node>, state: &[u8]) -> Result<(), String> {
    let cluster = node.cluster.get().expect("cluster");
    let members = Membership::decode_state(state).map_err(|e| e.to_string())?;
    cluster
        .membership
        .lock()
        .merge_state(members, unix_now_ms());
    cluster.mark_synced();
    cluster.gossip_wake.notify_one();
    Ok(())
}

fn is_self(cluster: &Cluster, reason: &Refusal) -> bool {
    match reason {
        Refusal::SameNodeId { .. } => true,
        Refusal::RefusedByPeer { text } => {
            text.contains("own id") && text.contains(&cluster.local.to_string())
        }
        _ => false,
    }
}

/// Serves this node's requests over an established connection until it breaks.
async fn run_link(node: &Arc<Node>, stream: TcpStream, peer: NodeId, mut input: BytesMut) {
    let cluster = node.cluster.get().expect("cluster");
    let (reader, writer) = stream.into_split();
    let (out, queue) = mpsc::channel(LINK_QUEUE_FRAMES);
    let link = Arc::new(Link {
        peer,
        out,
        pending: Mutex::new(HashMap::new()),
    });
    cluster.attach(peer, link.clone());
    let writing = tokio::spawn(write_frames(writer, queue));
    let pinging = tokio::spawn(ping(link.clone()));
    let mut decoder = FrameDecoder::new(PEER_FRAME_BYTES_MAX);
    'read: loop {
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(frame)) => {
                    if !on_answer(cluster, &link, frame) {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    cluster.stats.peer_frames_rejected.fetch_add(1, Relaxed);
                    tracing::warn!(%peer, error = %e, "bad frame from peer; closing the link");
                    break 'read;
                }
            }
        }
        input.reserve(READ_CHUNK_BYTES);
        match crate::socket::read_some(reader.as_ref(), &mut input).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if writing.is_finished() {
            break;
        }
    }
    writing.abort();
    pinging.abort();
    cluster.detach(peer, &link);
    link.fail_all();
}

/// Handles one answer on a dialed link; false on a message that has no place there.
fn on_answer(cluster: &Cluster, link: &Link, frame: Frame) -> bool {
    let message = match Message::decode(&frame) {
        Ok(message) => message,
        Err(e) => {
            cluster.stats.peer_frames_rejected.fetch_add(1, Relaxed);
            tracing::warn!(peer = %link.peer, error = %e, "bad message from peer");
            return false;
        }
    };
    let now = unix_now_ms();
    let response = match message {
        Message::Pong { now_ms, echoed_ms } => {
            cluster
                .liveness
                .lock()
                .pong(link.peer, echoed_ms, now_ms, now);
            return true;
        }
        Message::ReadReply { record } => Response::Record(record),
        Message::WriteAck => Response::Ack,
        Message::ScanReply { next_token, keys } => Response::Keys {
            next: next_token,
            keys,
        },
        Message::KeyCountReply { keys } => Response::Count(keys),
        Message::StreamReply { cursor, records } => Response::Stream { cursor, records },
        message @ (Message::DigestsReply { .. } | Message::VersionsReply { .. }) => {
            match ringcache_cluster::repair::Reply::from_message(message) {
                Some(reply) => Response::Repair(reply),
                None => return false,
            }
        }
        Message::Error { text } => {
            tracing::debug!(peer = %link.peer, text, "peer refused a request");
            Response::Failed
        }
        other => {
            tracing::warn!(peer = %link.peer, kind = other.kind(), "unexpected message on a link");
            return false;
        }
    };
    cluster.liveness.lock().heard(link.peer, now);
    link.resolve(frame.request_id, response);
    true
}

/// Writes queued frames, as many per write as are waiting.
///
/// Woken by the first frame, the writer yields once before it drains the queue: the
/// connection tasks that are ready to run queue their frames meanwhile, and one write
/// carries them all. Under load this cuts the syscalls per request several times over; idle,
/// nothing else is ready and the yield returns at once.
async fn write_frames(mut writer: OwnedWriteHalf, mut queue: mpsc::Receiver<Bytes>) {
    let mut batch = BytesMut::new();
    while let Some(frame) = queue.recv().await {
        tokio::task::yield_now().await;
        batch.extend_from_slice(&frame);
        while batch.len() < WRITE_BATCH_BYTES {
            match queue.try_recv() {
                Ok(frame) => batch.extend_from_slice(&frame),
                Err(_) => break,
            }
        }
        if writer.write_all(&batch).await.is_err() {
            return;
        }
        batch.clear();
    }
}

/// Pings the peer every [`PING_INTERVAL_MS`]; the pongs keep it up and measure its clock.
async fn ping(link: Arc<Link>) {
    let mut interval = tokio::time::interval(Duration::from_millis(PING_INTERVAL_MS));
    loop {
        interval.tick().await;
        let mut frame = BytesMut::new();
        let ping = Message::Ping {
            now_ms: unix_now_ms(),
        };
        if ping.encode(0, &mut frame).is_ok() && link.out.try_send(frame.freeze()).is_err() {
            // Full: the peer is not reading; it will be seen down when no pong comes.
        }
    }
}

/// Accepts peer connections until shutdown.
pub async fn listen(node: Arc<Node>, listener: TcpListener) {
    let mut shutdown = node.shutdown.subscribe();
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
                let node = node.clone();
                tokio::spawn(async move {
                    serve(node, stream, addr).await;
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
async fn serve(node: Arc<Node>, mut stream: TcpStream, addr: std::net::SocketAddr) {
    let cluster = node.cluster.get().expect("cluster");
    let machine = Handshake::accept(cluster.identity.clone(), nonce());
    let mut input = BytesMut::new();
    let peer = match handshake(&mut stream, machine, None, &mut input).await {
        Ok(peer) => peer,
        Err(HandshakeFailure::Refused(Refusal::SameNodeId { .. })) => return,
        Err(HandshakeFailure::Refused(reason)) => {
            cluster.stats.handshakes_refused.fetch_add(1, Relaxed);
            tracing::warn!(%addr, %reason, "refused a peer connection");
            return;
        }
        Err(HandshakeFailure::Malformed(e)) => {
            cluster.stats.peer_frames_rejected.fetch_add(1, Relaxed);
            tracing::warn!(%addr, error = %e, "malformed peer handshake; closed");
            return;
        }
        Err(HandshakeFailure::Io(e)) => {
            tracing::debug!(%addr, error = %e, "peer handshake failed");
            return;
        }
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
                        let node = node.clone();
                        let walk =
                            tokio::task::spawn_blocking(move || answer(&node, &frame, &mut false));
                        walk.await.ok().flatten()
                    } else {
                        answer(&node, &frame, &mut wrote)
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
                    cluster.stats.peer_frames_rejected.fetch_add(1, Relaxed);
                    tracing::warn!(%peer, error = %e, "bad frame from peer; closing");
                    return;
                }
            }
        }
        if wrote && node.store.acknowledges_after_sync() && node.durability.wait().await.is_err() {
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
/// has no place here).
fn answer(node: &Arc<Node>, frame: &Frame, wrote: &mut bool) -> Option<Message> {
    let message = Message::decode(frame).ok()?;
    let now = unix_now_ms();
    let reply = match message {
        Message::Ping { now_ms } => Message::Pong {
            now_ms: now,
            echoed_ms: now_ms,
        },
        Message::Read { key } => {
            let record = node.store.get(&key, now);
            if let Some(record) = &record {
                node.clock.observe(record.version());
            }
            Message::ReadReply { record }
        }
        Message::Write { key, record } => {
            *wrote = true;
            apply_write(node, &key, &record, now)
        }
        Message::Scan { from_token, count } => {
            let (next_token, keys) = super::scan_local(node, from_token, count as usize);
            Message::ScanReply { next_token, keys }
        }
        Message::KeyCount => Message::KeyCountReply {
            keys: node.store.stats().keys as u64,
        },
        Message::Flush { version } => match super::apply_flush(node, version) {
            Ok(()) => Message::WriteAck,
            Err(text) => Message::Error { text },
        },
        Message::Members { state } => {
            if let Err(text) = merge_members(node, &state) {
                return Some(Message::Error { text });
            }
            let cluster = node.cluster.get().expect("cluster");
            let state = Bytes::from(cluster.membership.lock().encode_state());
            Message::MembersReply { state }
        }
        Message::StreamRead {
            cursor,
            count,
            ranges,
        } => {
            let (cursor, records) = super::streaming::read_ranges(node, cursor, count, &ranges);
            Message::StreamReply { cursor, records }
        }
        message @ (Message::Digests { .. }
        | Message::SpanDigests { .. }
        | Message::Versions { .. }
        | Message::Fetch { .. }) => {
            let reply = ringcache_cluster::repair::answer(node.store.as_ref(), &message, now)?;
            if let Message::Error { text } = &reply {
                let cluster = node.cluster.get().expect("cluster");
                cluster.repair.stats.requests_refused.fetch_add(1, Relaxed);
                tracing::warn!(text, "refused a peer's repair request");
            }
            reply
        }
        message @ (Message::RepairWrite { .. } | Message::RepairDone { .. }) => {
            *wrote = true;
            super::repair::answer_write(node, message)
        }
        _ => return None,
    };
    Some(reply)
}

/// Merges a record a coordinator sent, unless its version is further ahead of this node's
/// clock than the tolerated offset.
fn apply_write(node: &Node, key: &Bytes, record: &ringcache_storage::Record, now: u64) -> Message {
    let cluster = node.cluster.get().expect("cluster");
    let max = cluster.config.max_clock_offset_ms;
    if let Some(ahead) = ringcache_cluster::hlc::too_far_ahead(record.version(), now, max) {
        cluster.stats.clock_skew_refusals.fetch_add(1, Relaxed);
        return Message::Error {
            text: format!(
                "CLOCKSKEW the version is {ahead} ms ahead of this replica's clock (max {max} ms)"
            ),
        };
    }
    node.clock.observe(record.version());
    if !cluster.survives_flush(record) {
        return Message::WriteAck; // Dead since the last FLUSHALL: nothing to keep.
    }
    match node.store.merge(key, record) {
        Ok(_) => Message::WriteAck,
        Err(e) => Message::Error {
            text: e.to_string(),
        },
    }
}
