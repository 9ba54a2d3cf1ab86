//! Pub/sub commands on a connection: its subscriptions, their confirmations, `PUBLISH` to
//! this node's subscribers, and `PUBSUB`'s counts. The hub that holds every connection's
//! subscriptions and queues their messages is [`crate::pubsub`]; a cluster also sends each
//! `PUBLISH` to the other nodes (`execute_clustered`).
//!
//! In RESP2 a connection with a subscription may only (un)subscribe, `PING`, `QUIT` or
//! `RESET` ([`refused_while_subscribed`]); in RESP3 it may run any command, and messages
//! arrive as push frames between the replies.

use bytes::Bytes;
use ringcache_resp::cmd::{Entry, PubSubCommand, Request};
use ringcache_resp::{Protocol, Reply};

use super::{Session, bulk};
use crate::node::Node;
use crate::pubsub::Subscriber;

/// Redis's `PUBSUB HELP`.
const HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// The commands a RESP2 connection with a subscription may run.
const ALLOWED_WHILE_SUBSCRIBED: &[&str] = &[
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "ping",
    "quit",
    "reset",
];

/// A connection's subscriptions, in the order they were made.
#[derive(Default)]
pub struct Subscriptions {
    /// Its queue in the hub, made at its first subscription.
    subscriber: Option<std::sync::Arc<Subscriber>>,
    channels: Vec<Bytes>,
    patterns: Vec<Bytes>,
}

impl std::fmt::Debug for Subscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriptions")
            .field("channels", &self.channels.len())
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

impl Subscriptions {
    /// Channels and patterns together (Redis's count in every confirmation).
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// The queue of messages for this connection, once it subscribed.
    pub fn subscriber(&self) -> Option<&Subscriber> {
        self.subscriber.as_deref()
    }
}

/// Runs one pub/sub command.
pub fn execute(node: &Node, session: &mut Session, command: PubSubCommand) -> Reply {
    let reply = match command {
        PubSubCommand::Subscribe(channels) => subscribe(node, session, channels, false),
        PubSubCommand::PSubscribe(patterns) => subscribe(node, session, patterns, true),
        PubSubCommand::Unsubscribe(channels) => unsubscribe(node, session, channels, false),
        PubSubCommand::PUnsubscribe(patterns) => unsubscribe(node, session, patterns, true),
        PubSubCommand::Publish { channel, message } => {
            node.pubsub
                .stats
                .published
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Reply::Integer(node.pubsub.deliver(&channel, &message) as i64)
        }
        PubSubCommand::Channels { pattern, shard } => match shard {
            true => Reply::Array(Vec::new()),
            false => Reply::Array(
                node.pubsub
                    .channels(pattern.as_deref())
                    .into_iter()
                    .map(Reply::Bulk)
                    .collect(),
            ),
        },
        PubSubCommand::NumSub { channels, shard } => Reply::Array(
            channels
                .into_iter()
                .flat_map(|channel| {
                    let count = if shard {
                        0
                    } else {
                        node.pubsub.subscribers(&channel)
                    };
                    [Reply::Bulk(channel), Reply::Integer(count as i64)]
                })
                .collect(),
        ),
        PubSubCommand::NumPat => Reply::Integer(node.pubsub.pattern_count() as i64),
        PubSubCommand::Help => Reply::Array(HELP.iter().map(|line| Reply::Simple(line)).collect()),
    };
    note_counts(session);
    reply
}

/// `SUBSCRIBE`/`PSUBSCRIBE`: one confirmation per name, each with the connection's count.
fn subscribe(node: &Node, session: &mut Session, names: Vec<Bytes>, patterns: bool) -> Reply {
    let subs = &mut session.subscriptions;
    let subscriber = subs
        .subscriber
        .get_or_insert_with(|| Subscriber::new(session.client.clone()))
        .clone();
    let kind = if patterns { "psubscribe" } else { "subscribe" };
    let confirmations = names
        .into_iter()
        .map(|name| {
            let added = match patterns {
                true => node.pubsub.psubscribe(&name, &subscriber),
                false => node.pubsub.subscribe(&name, &subscriber),
            };
            if added {
                let list = if patterns {
                    &mut subs.patterns
                } else {
                    &mut subs.channels
                };
                list.push(name.clone());
            }
            confirmation(kind, Reply::Bulk(name), subs.count())
        })
        .collect();
    Reply::Several(confirmations)
}

/// `UNSUBSCRIBE`/`PUNSUBSCRIBE`: the names given, or every one the connection has; with
/// none at all, one confirmation with a nil name.
fn unsubscribe(node: &Node, session: &mut Session, names: Vec<Bytes>, patterns: bool) -> Reply {
    let subs = &mut session.subscriptions;
    let kind = if patterns {
        "punsubscribe"
    } else {
        "unsubscribe"
    };
    let names = match names.is_empty() {
        true if patterns => subs.patterns.clone(),
        true => subs.channels.clone(),
        false => names,
    };
    if names.is_empty() {
        return Reply::Several(vec![confirmation(kind, Reply::Nil, subs.count())]);
    }
    let confirmations = names
        .into_iter()
        .map(|name| {
            let list = if patterns {
                &mut subs.patterns
            } else {
                &mut subs.channels
            };
            if let Some(at) = list.iter().position(|n| *n == name) {
                list.remove(at);
                if let Some(subscriber) = &subs.subscriber {
                    match patterns {
                        true => node.pubsub.punsubscribe(&name, subscriber),
                        false => node.pubsub.unsubscribe(&name, subscriber),
                    };
                }
            }
            confirmation(kind, Reply::Bulk(name), subs.count())
        })
        .collect();
    Reply::Several(confirmations)
}

/// `[kind, name, count]` as a push frame (an array in RESP2).
fn confirmation(kind: &'static str, name: Reply, count: usize) -> Reply {
    Reply::Push(vec![bulk(kind), name, Reply::Integer(count as i64)])
}

/// Drops every subscription of the connection (`RESET`, or the connection ends).
pub fn unsubscribe_all(node: &Node, session: &mut Session) {
    let subs = std::mem::take(&mut session.subscriptions);
    if let Some(subscriber) = &subs.subscriber {
        for channel in &subs.channels {
            node.pubsub.unsubscribe(channel, subscriber);
        }
        for pattern in &subs.patterns {
            node.pubsub.punsubscribe(pattern, subscriber);
        }
    }
    note_counts(session);
}

/// Keeps `CLIENT LIST`'s `sub=` and `psub=` in step with the session.
fn note_counts(session: &Session) {
    let subs = &session.subscriptions;
    *session.client.subscriptions.lock() = (subs.channels.len(), subs.patterns.len());
}

/// Commands Redis names with their subcommand (`pubsub|help`) in errors.
const CONTAINERS: &[&str] = &["client", "command", "config", "memory", "object", "pubsub"];

/// Redis's refusal of a command other than (un)subscribing, `PING`, `QUIT` and `RESET` on
/// a RESP2 connection with a subscription; `None` when the command may run.
pub fn refused_while_subscribed(session: &Session, entry: Entry, args: &[Bytes]) -> Option<Reply> {
    let name = entry.spec.name;
    if session.protocol != Protocol::Resp2
        || session.subscriptions.count() == 0
        || ALLOWED_WHILE_SUBSCRIBED.contains(&name)
    {
        return None;
    }
    let name = match args.get(1) {
        Some(sub) if CONTAINERS.contains(&name) => {
            format!("{name}|{}", String::from_utf8_lossy(sub).to_lowercase())
        }
        _ => name.to_string(),
    };
    Some(Reply::Error(format!(
        "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
         RESET are allowed in this context"
    )))
}

/// Moves the messages waiting for this connection into `output`, oldest first.
pub fn write_messages(session: &Session, output: &mut bytes::BytesMut) {
    if let Some(subscriber) = session.subscriptions.subscriber() {
        for message in subscriber.take() {
            message.encode(session.protocol, output);
        }
    }
}

/// The channel and message of a `PUBLISH`, to send to the other nodes of a cluster.
pub fn published(request: &Request) -> Option<(Bytes, Bytes)> {
    match &request.command {
        ringcache_resp::cmd::Command::PubSub(PubSubCommand::Publish { channel, message }) => {
            Some((channel.clone(), message.clone()))
        }
        _ => None,
    }
}
