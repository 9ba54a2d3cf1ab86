//! Pub/sub on one node: which connections listen to which channels and patterns, and the
//! queue of messages each one has not written yet.
//!
//! A `PUBLISH` puts the message on every listening connection's queue and wakes it; the
//! connection writes what is queued between its commands (`crate::connection`). A queue is
//! bounded in bytes as Redis bounds a subscriber's output buffer (`client-output-buffer-limit
//! pubsub 32mb 8mb 60`): past the hard limit, or past the soft one for a minute, the
//! subscriber is disconnected and counted, so a slow reader cannot grow the server's memory.
//! In a cluster the publishing node also sends the message to every other node, which
//! delivers it to its own subscribers ([`PubSub::deliver`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use ringcache_resp::Reply;
use ringcache_resp::glob::glob_match;
use tokio::sync::Notify;

use crate::clients::ClientHandle;

/// Bytes a subscriber may have queued: past this it is disconnected at once (Redis's hard
/// `client-output-buffer-limit` for pub/sub clients).
pub const SUBSCRIBER_QUEUE_BYTES_MAX: usize = 32 * 1024 * 1024;
/// Bytes a subscriber may have queued for [`SUBSCRIBER_SOFT_LIMIT_TIME`] before it is
/// disconnected (Redis's soft limit).
pub const SUBSCRIBER_QUEUE_SOFT_BYTES: usize = 8 * 1024 * 1024;
/// How long a subscriber may stay past [`SUBSCRIBER_QUEUE_SOFT_BYTES`].
pub const SUBSCRIBER_SOFT_LIMIT_TIME: Duration = Duration::from_secs(60);
/// What a queued message costs beyond its channel, pattern and payload bytes (its frame and
/// bookkeeping), so that a flood of empty messages is bounded too.
const MESSAGE_OVERHEAD_BYTES: usize = 64;

/// Counters for `INFO` and metrics.
#[derive(Debug, Default)]
pub struct PubSubStats {
    /// Messages published on this node (`PUBLISH`).
    pub published: AtomicU64,
    /// Messages received from other nodes of the cluster.
    pub received_from_peers: AtomicU64,
    /// Messages put on a subscriber's queue.
    pub delivered: AtomicU64,
    /// Subscribers disconnected for a queue past its limit.
    pub slow_subscribers_disconnected: AtomicU64,
}

/// The node's subscriptions.
#[derive(Default)]
pub struct PubSub {
    channels: RwLock<HashMap<Bytes, Vec<Arc<Subscriber>>>>,
    /// In subscription order, as Redis keeps them.
    patterns: RwLock<Vec<(Bytes, Arc<Subscriber>)>>,
    /// Counters.
    pub stats: PubSubStats,
}

/// One listening connection: its queue of messages not yet written.
pub struct Subscriber {
    client: Arc<ClientHandle>,
    queue: Mutex<Queue>,
    ready: Notify,
}

/// What became of a message for one subscriber.
enum Pushed {
    Queued,
    /// Its queue is past the limits: the subscriber is disconnected now.
    Disconnected,
    /// The subscriber is being disconnected already.
    Dropped,
}

#[derive(Default)]
struct Queue {
    messages: VecDeque<Reply>,
    bytes: usize,
    /// Since when the queue has been past the soft limit.
    over_soft_since: Option<Instant>,
}

impl Subscriber {
    /// A subscriber for `client`'s connection.
    pub fn new(client: Arc<ClientHandle>) -> Arc<Subscriber> {
        Arc::new(Subscriber {
            client,
            queue: Mutex::new(Queue::default()),
            ready: Notify::new(),
        })
    }

    /// Completes when a message may be waiting.
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Takes every queued message, oldest first.
    pub fn take(&self) -> VecDeque<Reply> {
        let mut queue = self.queue.lock();
        queue.bytes = 0;
        queue.over_soft_since = None;
        std::mem::take(&mut queue.messages)
    }

    /// Queues `message` of about `bytes`, unless that would pass the queue's limits: the
    /// client is then disconnected (once: [`Pushed::Disconnected`], after that
    /// [`Pushed::Dropped`] until its connection ends).
    fn push(&self, message: Reply, bytes: usize) -> Pushed {
        if self.client.is_killed() {
            return Pushed::Dropped;
        }
        let mut queue = self.queue.lock();
        let bytes = queue.bytes + bytes;
        let now = Instant::now();
        let over_soft = bytes > SUBSCRIBER_QUEUE_SOFT_BYTES;
        let since = queue.over_soft_since.filter(|_| over_soft).unwrap_or(now);
        if bytes > SUBSCRIBER_QUEUE_BYTES_MAX
            || (over_soft && now.duration_since(since) > SUBSCRIBER_SOFT_LIMIT_TIME)
        {
            drop(queue);
            tracing::warn!(
                client = self.client.id,
                bytes,
                "disconnecting a subscriber that does not read its messages"
            );
            self.client.kill();
            return Pushed::Disconnected;
        }
        queue.over_soft_since = over_soft.then_some(since);
        queue.bytes = bytes;
        queue.messages.push_back(message);
        drop(queue);
        self.ready.notify_one();
        Pushed::Queued
    }

    fn is(&self, other: &Subscriber) -> bool {
        std::ptr::eq(self, other)
    }
}

impl PubSub {
    /// Subscribes `subscriber` to `channel`; false if it already was.
    pub fn subscribe(&self, channel: &Bytes, subscriber: &Arc<Subscriber>) -> bool {
        let mut channels = self.channels.write();
        let listeners = channels.entry(channel.clone()).or_default();
        if listeners.iter().any(|s| s.is(subscriber)) {
            return false;
        }
        listeners.push(subscriber.clone());
        true
    }

    /// Unsubscribes `subscriber` from `channel`; false if it was not subscribed.
    pub fn unsubscribe(&self, channel: &Bytes, subscriber: &Subscriber) -> bool {
        let mut channels = self.channels.write();
        let Some(listeners) = channels.get_mut(channel) else {
            return false;
        };
        let before = listeners.len();
        listeners.retain(|s| !s.is(subscriber));
        let removed = listeners.len() < before;
        if listeners.is_empty() {
            channels.remove(channel);
        }
        removed
    }

    /// Subscribes `subscriber` to `pattern`; false if it already was.
    pub fn psubscribe(&self, pattern: &Bytes, subscriber: &Arc<Subscriber>) -> bool {
        let mut patterns = self.patterns.write();
        if patterns
            .iter()
            .any(|(p, s)| p == pattern && s.is(subscriber))
        {
            return false;
        }
        patterns.push((pattern.clone(), subscriber.clone()));
        true
    }

    /// Unsubscribes `subscriber` from `pattern`; false if it was not subscribed.
    pub fn punsubscribe(&self, pattern: &Bytes, subscriber: &Subscriber) -> bool {
        let mut patterns = self.patterns.write();
        let before = patterns.len();
        patterns.retain(|(p, s)| !(p == pattern && s.is(subscriber)));
        patterns.len() < before
    }

    /// Delivers `payload` on `channel` to this node's subscribers: those of the channel, then
    /// those of each matching pattern. Returns how many received it.
    pub fn deliver(&self, channel: &Bytes, payload: &Bytes) -> usize {
        let mut receivers = 0;
        let base = channel.len() + payload.len() + MESSAGE_OVERHEAD_BYTES;
        let listeners = self.channels.read().get(channel).cloned();
        for subscriber in listeners.iter().flatten() {
            let message = Reply::Push(vec![
                Reply::Bulk(Bytes::from_static(b"message")),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(payload.clone()),
            ]);
            receivers += usize::from(self.queue(subscriber, message, base));
        }
        let matching: Vec<(Bytes, Arc<Subscriber>)> = self
            .patterns
            .read()
            .iter()
            .filter(|(pattern, _)| glob_match(pattern, channel, false))
            .cloned()
            .collect();
        for (pattern, subscriber) in matching {
            let message = Reply::Push(vec![
                Reply::Bulk(Bytes::from_static(b"pmessage")),
                Reply::Bulk(pattern.clone()),
                Reply::Bulk(channel.clone()),
                Reply::Bulk(payload.clone()),
            ]);
            let bytes = base + pattern.len();
            receivers += usize::from(self.queue(&subscriber, message, bytes));
        }
        receivers
    }

    fn queue(&self, subscriber: &Subscriber, message: Reply, bytes: usize) -> bool {
        match subscriber.push(message, bytes) {
            Pushed::Queued => {
                self.stats.delivered.fetch_add(1, Relaxed);
                true
            }
            Pushed::Disconnected => {
                let disconnected = &self.stats.slow_subscribers_disconnected;
                disconnected.fetch_add(1, Relaxed);
                false
            }
            Pushed::Dropped => false,
        }
    }

    /// Channels with at least one subscriber, matching `pattern` if given.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.channels
            .read()
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    /// Subscribers of `channel` (patterns not counted).
    pub fn subscribers(&self, channel: &[u8]) -> usize {
        self.channels.read().get(channel).map_or(0, Vec::len)
    }

    /// Pattern subscriptions, all clients together.
    pub fn pattern_count(&self) -> usize {
        self.patterns.read().len()
    }
}
