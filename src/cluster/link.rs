//! Peer transport: the connections this node keeps to its peers, and requests over them.
//!
//! Each node dials every member gossip tells it of and keeps one connection to each
//! (reconnecting with backoff, until the member leaves or is forgotten); its own requests
//! (reads, writes, pings) go out on the connections it dialed, multiplexed by request id,
//! and the answers come back on them into an [`Inbox`]. Both ends authenticate first with
//! the HMAC handshake ([`accept`] is the serving end's half; the serving itself is
//! [`super::server`]); frames are batched per flush; every queue has a bound.
//!
//! [`Links`] holds the established links, and is how the rest of the runtime asks a peer:
//! [`Links::request`] for one answer, [`Links::request_all`] for several at once,
//! [`Links::send`] for a caller that waits on its own inbox (a coordinator round).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};
use ringcache_cluster::protocol::message::NONCE_BYTES;
use ringcache_cluster::protocol::{
    Frame, FrameDecoder, Handshake, HandshakeEffect, LocalPeer, Message, PEER_FRAME_BYTES_MAX,
    Refusal,
};
use ringcache_cluster::{Liveness, NodeId};
use ringcache_storage::Record;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{mpsc, watch};

use super::error::{LinkError, RequestError};
use super::stats::ClusterStats;
use crate::clock::unix_now_ms;

/// How often a link pings its peer.
pub const PING_INTERVAL_MS: u64 = 250;
/// A connected peer not heard from for this long is down.
pub const DOWN_AFTER_MS: u64 = 1_000;
/// Frames queued for one peer before a request fails at once instead of waiting: a peer that
/// cannot keep up must not make the coordinator's memory grow.
pub const LINK_QUEUE_FRAMES: usize = 16 * 1024;
/// Bytes of frames queued on a link past which a pub/sub message is not sent to that peer
/// (at most once: it is dropped and counted): a flood of `PUBLISH` cannot take a link's
/// memory, nor its queue from the writes of requests.
pub const PUBLISH_QUEUED_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Frames queued on a link past which a pub/sub message is not sent: half the queue stays
/// for requests.
const PUBLISH_QUEUED_FRAMES_MAX: usize = LINK_QUEUE_FRAMES / 2;
/// Bytes gathered into one socket write.
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// Bytes read from a peer socket at a time.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;
/// How long a handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one dial may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Reconnect backoff, doubling from the first to the last.
const BACKOFF_MIN_MS: u64 = 100;
const BACKOFF_MAX_MS: u64 = 2_000;

/// What a peer answered one request with, or that it could not.
#[derive(Debug)]
pub enum Response {
    /// A read's record.
    Record(Option<Record>),
    /// A write was merged.
    Ack,
    /// The request failed there, or the link broke.
    Failed,
    /// A keyspace walk's keys and where it goes on (0: done).
    Keys {
        /// Where the next call starts.
        next: u64,
        /// Live keys.
        keys: Vec<Bytes>,
    },
    /// A count of live keys.
    Count(u64),
    /// A stream walk's records and where it goes on (0: done).
    Stream {
        /// Where the next walk starts.
        cursor: u64,
        /// Records in the ranges asked for.
        records: Vec<(Bytes, Record)>,
    },
    /// An answer to an anti-entropy request.
    Repair(ringcache_cluster::repair::Reply),
}

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
    /// A new, empty inbox to hand to [`Links::send`].
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
    /// Bytes of the frames queued and not written yet.
    queued_bytes: Arc<AtomicUsize>,
}

impl Link {
    /// Sends `message` as request `id`; the answer goes to `responder`.
    fn request(
        &self,
        id: u64,
        message: &Message,
        responder: Responder,
    ) -> Result<(), RequestError> {
        let mut frame = BytesMut::new();
        if let Err(e) = message.encode(id, &mut frame) {
            tracing::warn!(error = %e, "a peer request could not be encoded");
            return Err(RequestError::Encode(e.to_string()));
        }
        if matches!(message, Message::Publish { .. }) && !self.has_room_to_publish(frame.len()) {
            return Err(RequestError::NotSent(self.peer));
        }
        self.pending.lock().insert(id, responder);
        let len = frame.len();
        if self.out.try_send(frame.freeze()).is_err() {
            self.pending.lock().remove(&id);
            return Err(RequestError::NotSent(self.peer));
        }
        self.queued_bytes.fetch_add(len, Relaxed);
        Ok(())
    }

    /// Whether a pub/sub frame of `len` bytes may be queued: within
    /// [`PUBLISH_QUEUED_BYTES_MAX`] and [`PUBLISH_QUEUED_FRAMES_MAX`].
    fn has_room_to_publish(&self, len: usize) -> bool {
        let queued_frames = LINK_QUEUE_FRAMES - self.out.capacity();
        queued_frames < PUBLISH_QUEUED_FRAMES_MAX
            && self.queued_bytes.load(Relaxed) + len <= PUBLISH_QUEUED_BYTES_MAX
    }

    /// Forgets request `id`; a late answer is dropped.
    fn cancel(&self, id: u64) {
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

/// A request sent and not answered yet; dropping it cancels it (a late answer is dropped).
#[derive(Debug)]
pub struct InFlight {
    link: Arc<Link>,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.link.cancel(self.id);
    }
}

/// This node's established links, their liveness, and the requests over them.
pub struct Links {
    local: NodeId,
    identity: LocalPeer,
    liveness: Arc<Mutex<Liveness>>,
    stats: Arc<ClusterStats>,
    links: RwLock<HashMap<NodeId, Arc<Link>>>,
    next_request: AtomicU64,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("up", &self.links.read().len())
            .finish()
    }
}

impl Links {
    /// No links yet, for node `local` authenticating as `identity`; pongs and answers go
    /// to `liveness`, handshake and frame refusals are counted in `stats`.
    pub fn new(
        local: NodeId,
        identity: LocalPeer,
        liveness: Arc<Mutex<Liveness>>,
        stats: Arc<ClusterStats>,
    ) -> Links {
        Links {
            local,
            identity,
            liveness,
            stats,
            links: RwLock::new(HashMap::new()),
            next_request: AtomicU64::new(1),
        }
    }

    fn get(&self, node: NodeId) -> Option<Arc<Link>> {
        self.links.read().get(&node).cloned()
    }

    /// Registers the established link to `node`, replacing an older one.
    fn attach(&self, node: NodeId, link: Arc<Link>) {
        self.links.write().insert(node, link);
        self.liveness.lock().connected(node, unix_now_ms());
    }

    /// Forgets the link to `node` if it is `link` (a newer one may have replaced it).
    fn detach(&self, node: NodeId, link: &Arc<Link>) {
        let mut links = self.links.write();
        if links.get(&node).is_some_and(|l| Arc::ptr_eq(l, link)) {
            links.remove(&node);
            self.liveness.lock().disconnected(node);
        }
    }

    /// Whether the link to `node` is up now: connected and heard from lately.
    pub fn is_up(&self, node: NodeId, now_ms: u64) -> bool {
        self.liveness.lock().is_up(node, now_ms) && self.get(node).is_some()
    }

    /// Sends `message` to `peer`; the answer goes to `inbox`, unless the returned request is
    /// dropped first.
    ///
    /// # Errors
    /// Nothing was sent: no link, its queue full, or the message too large.
    pub fn send(
        &self,
        peer: NodeId,
        message: &Message,
        inbox: &Responder,
    ) -> Result<InFlight, RequestError> {
        let link = self.get(peer).ok_or(RequestError::NoLink(peer))?;
        let id = self.next_request.fetch_add(1, Relaxed);
        link.request(id, message, inbox.clone())?;
        Ok(InFlight { link, id })
    }

    /// Sends `message` to `peer` and waits up to `timeout` for its answer.
    ///
    /// # Errors
    /// Nothing was sent ([`Links::send`]), no answer came in time, or the peer refused (or
    /// the link broke).
    pub async fn request(
        &self,
        peer: NodeId,
        message: &Message,
        timeout: Duration,
    ) -> Result<Response, RequestError> {
        let inbox = Inbox::new();
        let _in_flight = self.send(peer, message, &inbox)?;
        match tokio::time::timeout(timeout, inbox.recv()).await {
            Ok((_, Response::Failed)) => Err(RequestError::Failed(peer)),
            Ok((_, response)) => Ok(response),
            Err(_) => Err(RequestError::Timeout {
                peer,
                timeout_ms: timeout.as_millis() as u64,
            }),
        }
    }

    /// Sends every request (pipelined, several to one peer allowed) and waits up to
    /// `timeout` for all their answers: one outcome per request, answers in arrival order
    /// first, then what failed to send or did not answer in time.
    pub async fn request_all(
        &self,
        requests: impl IntoIterator<Item = (NodeId, Message)>,
        timeout: Duration,
    ) -> Vec<(NodeId, Result<Response, RequestError>)> {
        let inbox = Inbox::new();
        let mut outcomes = Vec::new();
        let mut failed = Vec::new();
        let mut waiting: Vec<NodeId> = Vec::new();
        let mut in_flight = Vec::new();
        for (peer, message) in requests {
            match self.send(peer, &message, &inbox) {
                Ok(request) => {
                    in_flight.push(request);
                    waiting.push(peer);
                }
                Err(e) => failed.push((peer, Err(e))),
            }
        }
        let _ = tokio::time::timeout(timeout, async {
            while !waiting.is_empty() {
                let (from, response) = inbox.recv().await;
                if let Some(at) = waiting.iter().position(|&p| p == from) {
                    waiting.swap_remove(at);
                }
                outcomes.push(match response {
                    Response::Failed => (from, Err(RequestError::Failed(from))),
                    response => (from, Ok(response)),
                });
            }
        })
        .await;
        drop(in_flight);
        let timeout_ms = timeout.as_millis() as u64;
        outcomes.extend(failed);
        outcomes.extend(
            waiting
                .into_iter()
                .map(|peer| (peer, Err(RequestError::Timeout { peer, timeout_ms }))),
        );
        outcomes
    }
}

/// Runs a handshake over `stream`; returns the peer's id, with any bytes already read past
/// the handshake left in `input`.
async fn handshake(
    stream: &mut TcpStream,
    mut machine: Handshake,
    first: Option<Message>,
    input: &mut BytesMut,
) -> Result<NodeId, LinkError> {
    let run = async {
        let mut decoder = FrameDecoder::for_handshake();
        if let Some(message) = first {
            send(stream, &message).await?;
        }
        loop {
            let malformed =
                |e: ringcache_cluster::protocol::ProtocolError| LinkError::Malformed(e.to_string());
            while let Some(frame) = decoder.decode(input).map_err(malformed)? {
                let message = Message::decode(&frame).map_err(malformed)?;
                let mut established = None;
                for effect in machine.on_message(message) {
                    match effect {
                        HandshakeEffect::Send(reply) => send(stream, &reply).await?,
                        HandshakeEffect::Established { peer_node_id, .. } => {
                            established = Some(NodeId::new(peer_node_id));
                        }
                        HandshakeEffect::Refused { reason } => {
                            return Err(LinkError::Refused(reason));
                        }
                    }
                }
                if let Some(peer) = established {
                    return Ok(peer);
                }
            }
            input.reserve(4096);
            if stream.read_buf(input).await? == 0 {
                return Err(closed().into());
            }
        }
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, run).await {
        Ok(outcome) => outcome,
        Err(_) => Err(LinkError::TimedOut("the handshake".into())),
    }
}

fn closed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the peer closed the connection",
    )
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

/// Keeps a connection to the member at `addr` while `wanted(addr)`: dials, authenticates,
/// carries this node's requests over it, and redials with backoff when it breaks. Stops when
/// `addr` is no longer wanted (no member has it any more), it is this node, or at shutdown.
pub async fn dial(
    links: Arc<Links>,
    addr: SocketAddr,
    wanted: impl Fn(SocketAddr) -> bool,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut backoff_ms = BACKOFF_MIN_MS;
    while wanted(addr) {
        let attempt = connect(&links, addr);
        let outcome = tokio::select! {
            outcome = attempt => outcome,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match outcome {
            Ok(Connected::IsSelf) => return,
            // It was up: redial soon.
            Ok(Connected::Broke) => backoff_ms = BACKOFF_MIN_MS,
            Err(e) => tracing::debug!(%addr, error = %e, "peer link not established"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(backoff_ms)) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        backoff_ms = (backoff_ms * 2).min(BACKOFF_MAX_MS);
    }
}

/// How a connection that was established ended.
enum Connected {
    /// It carried requests, then broke: redial soon.
    Broke,
    /// The address is this node's own: stop dialing it.
    IsSelf,
}

/// Dials `addr` and runs the handshake as the initiator; the stream, the peer's id and any
/// bytes read past the handshake. `Ok(None)`: `addr` is this node.
async fn open(
    links: &Links,
    addr: &str,
) -> Result<Option<(TcpStream, NodeId, BytesMut)>, LinkError> {
    let mut stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => {
            return Err(LinkError::Unreachable {
                addr: addr.to_string(),
                source,
            });
        }
        Err(_) => return Err(LinkError::TimedOut(addr.to_string())),
    };
    let _ = stream.set_nodelay(true);
    let (machine, hello) = Handshake::initiate(links.identity.clone(), nonce());
    let mut input = BytesMut::new();
    match handshake(&mut stream, machine, Some(hello), &mut input).await {
        Ok(peer) => Ok(Some((stream, peer, input))),
        Err(LinkError::Refused(reason)) if is_self(links.local, &reason) => Ok(None),
        Err(e) => {
            count_refusal(links, &e, addr);
            Err(e)
        }
    }
}

/// Counts and logs a handshake refused or malformed.
fn count_refusal(links: &Links, error: &LinkError, addr: &str) {
    match error {
        LinkError::Refused(reason) => {
            links.stats.handshakes_refused.fetch_add(1, Relaxed);
            tracing::warn!(addr, %reason, "peer handshake refused");
        }
        LinkError::Malformed(e) => {
            links.stats.peer_frames_rejected.fetch_add(1, Relaxed);
            tracing::warn!(addr, error = %e, "peer sent a malformed handshake");
        }
        _ => tracing::debug!(addr, %error, "peer handshake failed"),
    }
}

/// One connection's life, from the dial to the break.
async fn connect(links: &Arc<Links>, addr: SocketAddr) -> Result<Connected, LinkError> {
    let Some((stream, peer, input)) = open(links, &addr.to_string()).await? else {
        return Ok(Connected::IsSelf);
    };
    tracing::info!(%addr, %peer, "peer link up");
    run_link(links, stream, peer, input).await;
    tracing::info!(%addr, %peer, "peer link down");
    Ok(Connected::Broke)
}

/// The transport half of a gossip push-pull, over its own short connection: sends `state`
/// (this node's encoded membership view) to the peer at `addr` and returns the peer's.
/// `Ok(None)`: `addr` is this node.
///
/// # Errors
/// The peer cannot be reached, refuses, or answers with something else: nothing was merged.
pub async fn push_pull(
    links: &Links,
    addr: &str,
    state: Bytes,
) -> Result<Option<Bytes>, LinkError> {
    let Some((mut stream, peer, mut input)) = open(links, addr).await? else {
        return Ok(None);
    };
    let exchange = async {
        send(&mut stream, &Message::Members { state }).await?;
        let mut decoder = FrameDecoder::new(PEER_FRAME_BYTES_MAX);
        loop {
            let malformed =
                |e: ringcache_cluster::protocol::ProtocolError| LinkError::Malformed(e.to_string());
            if let Some(frame) = decoder.decode(&mut input).map_err(malformed)? {
                return Message::decode(&frame).map_err(malformed);
            }
            input.reserve(READ_CHUNK_BYTES);
            if stream.read_buf(&mut input).await? == 0 {
                return Err(closed().into());
            }
        }
    };
    let answer = tokio::time::timeout(HANDSHAKE_TIMEOUT, exchange)
        .await
        .map_err(|_| LinkError::TimedOut(format!("{addr} (push-pull)")))??;
    match answer {
        Message::MembersReply { state } => Ok(Some(state)),
        other => Err(LinkError::Unexpected {
            peer,
            kind: other.kind(),
        }),
    }
}

fn is_self(local: NodeId, reason: &Refusal) -> bool {
    match reason {
        Refusal::SameNodeId { .. } => true,
        Refusal::RefusedByPeer { text } => {
            text.contains("own id") && text.contains(&local.to_string())
        }
        _ => false,
    }
}

/// The serving end's handshake on an accepted connection: the peer's id and any bytes read
/// past the handshake, or `None` when it did not establish (counted and logged).
pub async fn accept(
    links: &Links,
    stream: &mut TcpStream,
    addr: SocketAddr,
) -> Option<(NodeId, BytesMut)> {
    let machine = Handshake::accept(links.identity.clone(), nonce());
    let mut input = BytesMut::new();
    match handshake(stream, machine, None, &mut input).await {
        Ok(peer) => Some((peer, input)),
        Err(LinkError::Refused(Refusal::SameNodeId { .. })) => None,
        Err(e) => {
            count_refusal(links, &e, &addr.to_string());
            None
        }
    }
}

/// Counts and logs bytes from a peer that are not a valid frame; the connection closes.
pub fn reject_frame(links: &Links, peer: NodeId, error: &dyn std::fmt::Display) {
    links.stats.peer_frames_rejected.fetch_add(1, Relaxed);
    tracing::warn!(%peer, %error, "bad frame from peer; closing");
}

/// Carries this node's requests over an established connection until it breaks.
async fn run_link(links: &Arc<Links>, stream: TcpStream, peer: NodeId, mut input: BytesMut) {
    let (reader, writer) = stream.into_split();
    let (out, queue) = mpsc::channel(LINK_QUEUE_FRAMES);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let link = Arc::new(Link {
        peer,
        out,
        pending: Mutex::new(HashMap::new()),
        queued_bytes: queued_bytes.clone(),
    });
    links.attach(peer, link.clone());
    let writing = tokio::spawn(write_frames(writer, queue, queued_bytes));
    let pinging = tokio::spawn(ping(link.clone()));
    let mut decoder = FrameDecoder::new(PEER_FRAME_BYTES_MAX);
    'read: loop {
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(frame)) => {
                    if !on_answer(links, &link, frame) {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    reject_frame(links, peer, &e);
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
    links.detach(peer, &link);
    link.fail_all();
}

/// Handles one answer on a dialed link; false on a message that has no place there.
fn on_answer(links: &Links, link: &Link, frame: Frame) -> bool {
    let message = match Message::decode(&frame) {
        Ok(message) => message,
        Err(e) => {
            links.stats.peer_frames_rejected.fetch_add(1, Relaxed);
            tracing::warn!(peer = %link.peer, error = %e, "bad message from peer");
            return false;
        }
    };
    let now = unix_now_ms();
    let response = match message {
        Message::Pong { now_ms, echoed_ms } => {
            links
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
    links.liveness.lock().heard(link.peer, now);
    link.resolve(frame.request_id, response);
    true
}

/// Writes queued frames, as many per write as are waiting.
///
/// Woken by the first frame, the writer yields once before it drains the queue: the
/// connection tasks that are ready to run queue their frames meanwhile, and one write
/// carries them all. Under load this cuts the syscalls per request several times over; idle,
/// nothing else is ready and the yield returns at once.
async fn write_frames(
    mut writer: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Bytes>,
    queued_bytes: Arc<AtomicUsize>,
) {
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
        // Counted out when taken from the queue (pings, queued without counting, make it
        // read a little low, never high).
        let _ =
            queued_bytes.fetch_update(Relaxed, Relaxed, |q| Some(q.saturating_sub(batch.len())));
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
