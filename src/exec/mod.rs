//! Command execution: a parsed [`Request`] and the connection's [`Session`] in, a [`Reply`]
//! out. No sockets here, so every command is testable with a `Node` and a `Session`.
//!
//! - [`connection`]: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT, CONSISTENCY.
//! - [`server`]: DBSIZE, FLUSHALL/FLUSHDB, TIME, SHUTDOWN, and routes the three below.
//! - [`command`]: COMMAND and its subcommands, answered from the command table.
//! - [`info`]: INFO and its sections.
//! - [`config`]: CONFIG GET/SET/RESETSTAT, checked by `Config::validate`.
//! - [`strings`]: the string commands; [`lcs`]: `LCS`.
//! - [`bitmap`]: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD, over [`bits`], the bit
//!   arithmetic.
//! - [`keyspace`]: DEL, EXISTS, EXPIRE and the other key commands; [`rename`]: RENAME,
//!   RENAMENX, COPY.
//! - [`hyperloglog`]: PFADD, PFCOUNT, PFMERGE, over [`hll`], Redis's HLL string format.
//! - [`hash`], [`set`], [`zset`], [`list`]: the collection families, over [`collection`]
//!   (a key's cells, read with `WRONGTYPE` checks and edited at one version).
//! - [`blocking`]: `BLPOP` and the other blocking list commands: how a connection that
//!   found nothing waits, and how writes serve (single node) or wake (cluster) it.
//! - [`clustered`]: key commands through the coordinator, on a node in a cluster.
//! - [`ring`]: RING and INFO's `# Cluster`.
//!
//! What a command is (arity, flags, keys, family) comes from the command table in
//! `ringcache_resp::cmd` ([`TABLE`]): the name is looked up once, in [`execute`], and the
//! parsed [`Request`] carries its row; the `no_auth` and `denyoom` checks and the statistics
//! slot are read from it. Adding a command is a row there plus an arm in the family's
//! `execute` here.

pub mod bitmap;
pub mod bits;
pub mod blocking;
pub mod clustered;
pub mod collection;
pub mod command;
pub mod config;
pub mod connection;
pub mod hash;
pub mod hyperloglog;
pub mod info;
pub mod introspect;
pub mod keyspace;
pub mod lcs;
pub mod list;
pub mod pubsub;
pub mod rename;
pub mod ring;
pub mod script;
pub mod server;
pub mod set;
pub mod strings;
pub mod transaction;
pub mod zset;

use crate::clock::Stopwatch;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use ringcache_resp::cmd::{Access, Command, Entry, Family, Flags, TABLE, lookup, unknown_command};
use ringcache_resp::{CommandError, Level, Protocol, Reply, Request};
use ringcache_storage::{Record, Store, StoreError, Update};

use crate::clients::ClientHandle;
use crate::cluster::Cluster;
use crate::node::{Node, unix_now_ms};
use crate::notify;

/// Why a command failed; either way it becomes an error reply and the connection goes on.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The arguments or the stored value do not allow the command (nothing was written).
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The store refused a write (nothing was written).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cluster could not meet the request's level.
    #[error(transparent)]
    Quorum(#[from] ringcache_cluster::QuorumError),
    /// The cluster refused to coordinate the request (`CLUSTERDOWN ...`, `CLOCKSKEW ...`;
    /// nothing was written).
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterRefusal),
}

/// The records a key command reads and writes: the node's own store on a single node; in a
/// cluster, the records the coordinator gathered from each key's replicas, whose changes it
/// then writes back to them (see [`clustered`]).
pub trait Records {
    /// As [`Store::get`]: the key's record, counted as an access for eviction.
    fn get(&self, key: &[u8], now_ms: u64) -> Option<Record>;
    /// As [`Store::peek`]: the key's record, not counted as an access.
    fn peek(&self, key: &[u8], now_ms: u64) -> Option<Record>;
    /// As [`Store::update`]: a read-modify-write of the key's record.
    ///
    /// # Errors
    /// The store refused the write.
    fn update(
        &self,
        key: &[u8],
        now_ms: u64,
        decide: &mut dyn FnMut(Option<&Record>) -> Update,
    ) -> Result<Option<Record>, StoreError>;

    /// As [`Store::key_use`]: the key's access statistics, `None` when not kept here.
    fn key_use(&self, key: &[u8], now_ms: u64) -> Option<ringcache_storage::KeyUse> {
        let _ = (key, now_ms);
        None
    }

    /// As [`Store::update_in_place`]: `edit` changes the key's record where it is kept (a
    /// missing key reads as `Record::default()`) and says whether it did. The default edits
    /// a copy through [`Records::update`] (a coordinator's overlay, which must see the
    /// record before and after to send only the changed cells).
    ///
    /// # Errors
    /// The store refused the write.
    fn update_in_place(
        &self,
        key: &[u8],
        now_ms: u64,
        edit: &mut dyn FnMut(&mut Record) -> bool,
    ) -> Result<Option<Record>, StoreError> {
        self.update(key, now_ms, &mut |current| {
            ringcache_storage::edit_copy(current, edit)
        })
    }
}

impl Records for Arc<dyn Store> {
    fn get(&self, key: &[u8], now_ms: u64) -> Option<Record> {
        Store::get(self.as_ref(), key, now_ms)
    }

    fn peek(&self, key: &[u8], now_ms: u64) -> Option<Record> {
        Store::peek(self.as_ref(), key, now_ms)
    }

    fn update(
        &self,
        key: &[u8],
        now_ms: u64,
        decide: &mut dyn FnMut(Option<&Record>) -> Update,
    ) -> Result<Option<Record>, StoreError> {
        Store::update(self.as_ref(), key, now_ms, decide)
    }

    fn update_in_place(
        &self,
        key: &[u8],
        now_ms: u64,
        edit: &mut dyn FnMut(&mut Record) -> bool,
    ) -> Result<Option<Record>, StoreError> {
        Store::update_in_place(self.as_ref(), key, now_ms, edit)
    }

    fn key_use(&self, key: &[u8], now_ms: u64) -> Option<ringcache_storage::KeyUse> {
        Store::key_use(self.as_ref(), key, now_ms)
    }
}

/// What a command family's `execute` returns.
pub type Outcome = Result<Reply, ExecError>;

/// What the connection does after writing the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Keep reading.
    Continue,
    /// Close the connection (`QUIT`).
    Close,
    /// Close without a reply and stop the server (`SHUTDOWN`).
    Shutdown,
}

/// Per-connection state that commands read and change.
#[derive(Debug)]
pub struct Session {
    /// The registry entry of this client.
    pub client: Arc<ClientHandle>,
    /// RESP2 or RESP3.
    pub protocol: Protocol,
    /// Whether AUTH (or HELLO AUTH) succeeded, or no password is required.
    pub authenticated: bool,
    /// `CONSISTENCY READ` default for this connection; `None` uses the server's.
    pub read_level: Option<Level>,
    /// `CONSISTENCY WRITE` default for this connection; `None` uses the server's.
    pub write_level: Option<Level>,
    /// Set by a command that ends the connection.
    pub after: After,
    /// Whether a write command ran since the connection last waited for durability.
    pub wrote: bool,
    /// Set, instead of a reply, by a blocking command that found nothing: the connection
    /// waits with it ([`blocking::Blocked::wait`]) before it reads another command.
    pub blocked: Option<blocking::Blocked>,
    /// The transaction being queued, between `MULTI` and `EXEC` or `DISCARD`.
    pub transaction: Option<transaction::Transaction>,
    /// The keys under `WATCH`.
    pub watched: Vec<transaction::Watched>,
    /// `EXEC` is running the queue: a blocking command answers as its non-blocking form.
    pub in_exec: bool,
    /// While `EXEC` runs: the time every queued command runs at.
    pub exec_now_ms: Option<u64>,
    /// The channels and patterns it listens to.
    pub subscriptions: pubsub::Subscriptions,
    /// How the request being answered counts in `INFO commandstats`, set when it is
    /// refused before it runs and taken when it is counted.
    pub refusal: Refusal,
}

/// How a request that answered an error counts in `INFO commandstats`, by Redis 7.0's
/// rules: `failed_calls` for a command that ran, `rejected_calls` for one refused before it
/// ran (`rejectCommand`), nothing for a request whose command is not known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Refusal {
    /// It ran: an error it answered is a failed call.
    #[default]
    Ran,
    /// Refused before it ran (arity, `NOAUTH`, `OOM`, not allowed now): a rejected call.
    Rejected,
    /// An unknown command or subcommand: only the error is counted.
    Unattributed,
}

impl Refusal {
    /// How a parse error counts: Redis's command lookup refuses a wrong argument count and
    /// an unknown subcommand; every other error comes from the command itself, run.
    fn of(error: &CommandError) -> Refusal {
        match error {
            CommandError::UnknownSubcommand { .. } => Refusal::Unattributed,
            CommandError::WrongArity(_) => Refusal::Rejected,
            _ => Refusal::Ran,
        }
    }

    /// How an error answered instead of `+QUEUED` counts: every refusal while queuing is
    /// Redis's `rejectCommand`, except for a command it does not know. (The queue answers
    /// with replies; their texts are Redis's, so the unknown ones are told by them.)
    fn of_queued(text: &str) -> Refusal {
        match text.starts_with("ERR unknown command") || text.starts_with("ERR unknown subcommand")
        {
            true => Refusal::Unattributed,
            false => Refusal::Rejected,
        }
    }
}

impl Session {
    /// A new session for `client`.
    pub fn new(node: &Node, client: Arc<ClientHandle>) -> Session {
        Session {
            client,
            protocol: Protocol::Resp2,
            authenticated: node.config.read().requirepass.is_none(),
            read_level: None,
            write_level: None,
            after: After::Continue,
            wrote: false,
            blocked: None,
            transaction: None,
            watched: Vec::new(),
            in_exec: false,
            exec_now_ms: None,
            subscriptions: pubsub::Subscriptions::default(),
            refusal: Refusal::Ran,
        }
    }
}

/// The unix time in milliseconds as the signed integer that expiry arithmetic uses.
fn now_ms_signed(now_ms: u64) -> i64 {
    i64::try_from(now_ms).unwrap_or(i64::MAX)
}

/// Executes one request given as its raw arguments; `None` means no reply is sent: the
/// server stops, or the command blocked ([`Session::blocked`] is set).
pub fn execute(node: &Node, session: &mut Session, args: Vec<Bytes>) -> Option<Reply> {
    let (entry, started) = begin(session, &args);
    if let Some(reply) = transaction::queue(node, session, entry, &args) {
        return queued(node, session, entry, started, reply);
    }
    if transaction::is_exec(entry) {
        let reply = exec_single(node, session, entry, args);
        end(node, session, entry, started, &reply);
        return reply;
    }
    if is_script_kill(&args) || runs_beside_busy_script(node, entry) {
        // Runs beside the busy script, which holds the gate.
        let reply = run(node, session, entry, args);
        end(node, session, entry, started, &reply);
        return reply;
    }
    // Alone for a script or a command that changes several keys together (`Spec::alone`:
    // RENAME, COPY), as for EXEC; shared for the rest (see `transaction`).
    let alone = entry.is_some_and(|e| e.spec.alone || script::is_eval_name(e.spec.name));
    let reply = match gate(node, alone) {
        Ok(_gate) => run(node, session, entry, args),
        Err(busy) => Some(busy),
    };
    end(node, session, entry, started, &reply);
    // Waiters served here pop on behalf of their own commands: their events go out too.
    let ((), events) = notify::collect(&node.notifications, Default::default(), || {
        blocking::after_command(node)
    });
    publish_events(node, None, events, None, None);
    reply
}

/// A held transaction gate.
enum Gate<'a> {
    Alone(#[allow(dead_code)] parking_lot::RwLockWriteGuard<'a, ()>),
    Shared(#[allow(dead_code)] parking_lot::RwLockReadGuard<'a, ()>),
}

/// Redis's reply to a command while a script runs past `busy-reply-threshold`.
const BUSY: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
/// How long a command waits for the gate between two looks at whether a script is busy.
const GATE_WAIT: std::time::Duration = std::time::Duration::from_millis(10);

/// Takes the transaction gate for one command (`alone` for `EXEC`, a script, `RENAME`...).
/// While a script holds it past its time, waiting commands answer `BUSY` instead of waiting
/// on.
fn gate(node: &Node, alone: bool) -> Result<Gate<'_>, Reply> {
    loop {
        let held = match alone {
            true => node.transactions.try_write_for(GATE_WAIT).map(Gate::Alone),
            false => node.transactions.try_read_for(GATE_WAIT).map(Gate::Shared),
        };
        if let Some(gate) = held {
            return Ok(gate);
        }
        if node
            .script_state
            .busy
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(Reply::error(BUSY));
        }
    }
}

/// A command Redis runs while a script is busy (flag `allow_busy`: `SHUTDOWN`, `AUTH`,
/// `MULTI`...), when one is: it must not wait for the gate the script holds.
fn runs_beside_busy_script(node: &Node, entry: Option<Entry>) -> bool {
    entry.is_some_and(|e| e.spec.flags.contains(Flags::ALLOW_BUSY))
        && node
            .script_state
            .busy
            .load(std::sync::atomic::Ordering::Relaxed)
}

/// `SCRIPT KILL`, which must not wait for the script it stops.
fn is_script_kill(args: &[Bytes]) -> bool {
    matches!(args, [name, sub] if name.eq_ignore_ascii_case(b"script") && sub.eq_ignore_ascii_case(b"kill"))
}

/// `EXEC` on a cluster (see `transaction`): checks every queued write's level first, holds
/// this coordinator's locks of all the queue's keys, compares the watched keys' versions read
/// again at the read level, then runs the queue in order through the coordinator.
async fn exec_clustered(
    node: &Arc<Node>,
    cluster: &Arc<Cluster>,
    session: &mut Session,
    entry: Option<Entry>,
    args: Vec<Bytes>,
) -> Option<Reply> {
    if let Err(reply) = prepare_exec(node, session, entry, args) {
        return Some(transaction::refused_exec(session, reply));
    }
    let (queue, watched) = match transaction::take(session) {
        Ok(taken) => taken,
        Err(reply) => return Some(reply),
    };
    // Parsed only to find keys and levels here; each runs (and is parsed again, reporting
    // its own errors in its slot) below.
    let planned: Vec<(Request, Vec<Bytes>)> = queue
        .iter()
        .filter_map(|args| {
            let entry = lookup(args.first()?)?;
            let mut keys = Vec::new();
            let request = Request::parse_with_keys(entry, args.clone(), &mut keys).ok()?;
            Some((request, keys))
        })
        .collect();
    if let Err(e) = clustered::check_transaction(node, cluster, session, &planned) {
        return Some(Reply::error(e));
    }
    let mut all_keys: Vec<Bytes> = planned.into_iter().flat_map(|(_, keys)| keys).collect();
    all_keys.extend(watched.iter().map(|w| w.key().clone()));
    let key_refs: Vec<&Bytes> = all_keys.iter().collect();
    let _serialized = cluster.lock_keys(&key_refs).await;
    if !watched.is_empty() {
        let keys: Vec<Bytes> = watched.iter().map(|w| w.key().clone()).collect();
        let records = match clustered::read_watched(node, cluster, session, &keys).await {
            Ok(records) => records,
            Err(e) => return Some(Reply::error(e)),
        };
        let now_ms = unix_now_ms();
        if watched
            .iter()
            .zip(&records)
            .any(|(w, record)| w.changed(record.as_ref(), now_ms))
        {
            return Some(Reply::NilArray);
        }
    }
    session.in_exec = true;
    session.exec_now_ms = Some(unix_now_ms());
    let mut replies = Vec::with_capacity(queue.len());
    for args in queue {
        let reply = Box::pin(execute_clustered(node, cluster, session, args)).await;
        replies.push(reply.unwrap_or(Reply::Nil));
    }
    session.in_exec = false;
    session.exec_now_ms = None;
    Some(Reply::Array(replies))
}

/// `WATCH` on a cluster, outside `MULTI`: the keys' records read through the coordinator at
/// the connection's read level, to compare with at `EXEC`.
async fn watch_clustered(
    node: &Arc<Node>,
    cluster: &Arc<Cluster>,
    session: &mut Session,
    entry: Option<Entry>,
    args: Vec<Bytes>,
) -> Option<Reply> {
    let mut keys = Vec::new();
    if let Err(reply) = prepare(node, session, entry, args, Some(&mut keys)) {
        return Some(reply);
    }
    match clustered::read_watched(node, cluster, session, &keys).await {
        Ok(records) => {
            let now_ms = unix_now_ms();
            for (key, record) in keys.into_iter().zip(records) {
                let watched = transaction::Watched::new(key, record.as_ref(), now_ms);
                session.watched.push(watched);
            }
            Some(Reply::Ok)
        }
        Err(e) => Some(Reply::error(e)),
    }
}

/// The reply to a command met while a transaction is open: `+QUEUED` (the command is
/// counted when `EXEC` runs it) or the error that refused it (counted now, as Redis counts a
/// rejected call).
fn queued(
    node: &Node,
    session: &mut Session,
    entry: Option<Entry>,
    started: Stopwatch,
    reply: Reply,
) -> Option<Reply> {
    if let Reply::Error(text) = &reply {
        session.refusal = Refusal::of_queued(text);
        let reply = Some(reply);
        end(node, session, entry, started, &reply);
        return reply;
    }
    Some(reply)
}

/// `EXEC` on a single node: the queue runs holding the transaction gate alone, so no other
/// client's command runs in between.
fn exec_single(
    node: &Node,
    session: &mut Session,
    entry: Option<Entry>,
    args: Vec<Bytes>,
) -> Option<Reply> {
    if let Err(reply) = prepare_exec(node, session, entry, args) {
        return Some(transaction::refused_exec(session, reply));
    }
    let _gate = match gate(node, true) {
        Ok(gate) => gate,
        Err(busy) => return Some(busy),
    };
    session.in_exec = true;
    session.exec_now_ms = Some(unix_now_ms());
    let reply = transaction::exec(node, session, |session, args| {
        let (entry, started) = begin(session, &args);
        let reply = run(node, session, entry, args);
        end(node, session, entry, started, &reply);
        reply.unwrap_or(Reply::Nil)
    });
    session.in_exec = false;
    session.exec_now_ms = None;
    // Waiters on keys the transaction filled are served before another command runs (the
    // gate is still held), as Redis serves them when EXEC ends.
    blocking::after_command(node);
    Some(reply)
}

/// `EXEC`'s own checks before it runs: those of any command and, when the queue holds a
/// command that may add memory, room under `maxmemory` made once for all of them
/// (Redis refuses such an `EXEC` with `OOM` rather than fail it half way).
fn prepare_exec(
    node: &Node,
    session: &mut Session,
    entry: Option<Entry>,
    args: Vec<Bytes>,
) -> Result<(), Reply> {
    prepare(node, session, entry, args, None)?;
    if transaction::may_add_memory(session)
        && let Err(oom) = make_room(node, unix_now_ms())
    {
        session.refusal = Refusal::Rejected;
        return Err(oom);
    }
    Ok(())
}

/// Looks the command up (the only lookup of its name), notes it as the client's last
/// command, and takes the time it started.
fn begin(session: &Session, args: &[Bytes]) -> (Option<Entry>, Stopwatch) {
    let entry = args.first().and_then(|name| lookup(name));
    session
        .client
        .last_command
        .store(stats_slot(entry), std::sync::atomic::Ordering::Relaxed);
    (entry, Stopwatch::start())
}

/// The command's statistics slot: its row in [`TABLE`], or one past the end when unknown.
fn stats_slot(entry: Option<Entry>) -> usize {
    entry.map_or(TABLE.len(), |e| e.index)
}

/// Counts the command, its duration and its error, if any, as the session's
/// [`Refusal`] says (taken: the next request starts as [`Refusal::Ran`]).
fn end(
    node: &Node,
    session: &mut Session,
    entry: Option<Entry>,
    started: Stopwatch,
    reply: &Option<Reply>,
) {
    let error = match reply {
        Some(Reply::Error(text)) => Some(text.as_str()),
        _ => None,
    };
    let slot = stats_slot(entry);
    match (std::mem::take(&mut session.refusal), error) {
        (Refusal::Rejected, Some(text)) => node.stats.record_rejected(slot, text),
        (Refusal::Unattributed, Some(text)) => node.stats.record_error(text),
        _ => node.stats.record_command(slot, started.elapsed(), error),
    }
}

fn run(
    node: &Node,
    session: &mut Session,
    entry: Option<Entry>,
    args: Vec<Bytes>,
) -> Option<Reply> {
    // Keyspace events (off by default: one atomic load).
    let pending = entry.and_then(|e| {
        let exists = |key: &[u8]| {
            let now_ms = unix_now_ms();
            node.store
                .peek(key, now_ms)
                .is_some_and(|r| r.is_live(now_ms))
        };
        let keys = e.spec.routed_keys(&args).cloned();
        notify::Pending::new(&node.notifications, &args, e.spec.name, keys, Some(&exists))
    });
    let misses = entry.map(|e| misses(e, &args)).unwrap_or_default();
    let (reply, events) = notify::collect(&node.notifications, misses, || {
        run_command(node, session, entry, args)
    });
    publish_events(node, None, events, pending, reply.as_ref());
    reply
}

/// Which reads of the command report `keymiss`, and its first key.
fn misses(entry: Entry, args: &[Bytes]) -> (notify::Misses, Option<Bytes>) {
    let read_only = entry.spec.access() == Access::Read;
    let misses = notify::Misses::of(entry.spec.name, read_only);
    (misses, entry.spec.routed_keys(args).next().cloned())
}

/// Publishes what a command sent: first the `expired` events of the keys the store reclaimed
/// (this node's own), then the command's `events` merged with those `pending` on its reply,
/// to this node's subscribers and, on a cluster, every node's.
fn publish_events(
    node: &Node,
    cluster: Option<&Cluster>,
    events: Vec<(notify::Class, &'static str, Bytes)>,
    pending: Option<notify::Pending>,
    reply: Option<&Reply>,
) {
    notify::publish_expired(node);
    let pending = match (pending, reply) {
        (Some(pending), Some(reply)) => pending.events(reply),
        _ => Vec::new(),
    };
    if events.is_empty() && pending.is_empty() {
        return;
    }
    for (channel, payload) in notify::messages(&node.notifications, events, pending) {
        node.pubsub.deliver(&channel, &payload);
        if let Some(cluster) = cluster {
            cluster.publish(&channel, &payload);
        }
    }
}

fn run_command(
    node: &Node,
    session: &mut Session,
    entry: Option<Entry>,
    args: Vec<Bytes>,
) -> Option<Reply> {
    let (request, now_ms) = match prepare(node, session, entry, args, None) {
        Ok(prepared) => prepared,
        Err(reply) => return Some(reply),
    };
    let touch = touches(session);
    if let Some(command) = blocking::blocking_command(&request).filter(|_| !session.in_exec) {
        let command = command.clone();
        let outcome = blocking::run_single(node, session, command, now_ms, touch)?;
        return finish(session, outcome);
    }
    let reply = dispatch(node, &node.store, session, request, now_ms, touch);
    finish(session, reply)
}

/// Checks authentication, parses the request (pushing its keys onto `keys` when given),
/// marks a write for durability and makes room under maxmemory: what every command goes
/// through before it runs.
fn prepare(
    node: &Node,
    session: &mut Session,
    entry: Option<Entry>,
    args: Vec<Bytes>,
    keys: Option<&mut Vec<Bytes>>,
) -> Result<(Request, u64), Reply> {
    // What Redis's command lookup refuses (an unknown command or subcommand, a wrong
    // argument count) is answered before authentication, as in Redis.
    if !session.authenticated
        && let Some(entry) = entry.filter(|e| !e.spec.flags.contains(Flags::NO_AUTH))
    {
        return Err(match Request::lookup_error(entry, &args) {
            Some(e) => refused(session, e),
            None => {
                session.refusal = Refusal::Rejected;
                Reply::error("NOAUTH Authentication required.")
            }
        });
    }
    let Some(entry) = entry else {
        session.refusal = Refusal::Unattributed;
        return Err(Reply::error(unknown_command(&args)));
    };
    if let Some(not_now) = pubsub::refused_while_subscribed(session, entry, &args) {
        return Err(match Request::lookup_error(entry, &args) {
            Some(e) => refused(session, e),
            None => {
                session.refusal = Refusal::Rejected;
                not_now
            }
        });
    }
    let request = match keys {
        None => Request::parse_as(entry, args),
        Some(keys) => Request::parse_with_keys(entry, args, keys),
    }
    .map_err(|e| refused(session, e))?;
    if request.spec.access() == Access::Write {
        session.wrote = true;
    }
    // Inside EXEC the time is the transaction's (a key does not expire between two of its
    // commands) and room was made once, before it ran, as Redis does.
    if let Some(now_ms) = session.exec_now_ms {
        return Ok((request, now_ms));
    }
    let now_ms = unix_now_ms();
    if request.spec.flags.contains(Flags::DENYOOM)
        && let Err(oom) = make_room(node, now_ms)
    {
        session.refusal = Refusal::Rejected;
        return Err(oom);
    }
    Ok((request, now_ms))
}

/// The reply to a request refused with `error` before it ran, noting how it counts.
fn refused(session: &mut Session, error: CommandError) -> Reply {
    session.refusal = Refusal::of(&error);
    Reply::error(error)
}

/// Whether the session's reads count as accesses for eviction (not in `CLIENT NO-TOUCH`).
fn touches(session: &Session) -> bool {
    !session
        .client
        .no_touch
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs a parsed command over `records` (key commands) and the node (the rest); its table
/// row's family chooses the executor.
fn dispatch(
    node: &Node,
    records: &dyn Records,
    session: &mut Session,
    request: Request,
    now_ms: u64,
    touch: bool,
) -> Outcome {
    let command = request.command;
    // While events are collected, reads and writes tell `new` and `keymiss`.
    let watching;
    let records = match notify::collecting() {
        true => {
            watching = notify::Watching::new(records);
            &watching as &dyn Records
        }
        false => records,
    };
    let reply = match request.spec.family {
        Family::Connection => Ok(connection::execute(node, session, command)),
        Family::Server => match command {
            Command::Memory(memory) => introspect::memory(node, records, memory, now_ms),
            other => server::execute(node, session, other, now_ms),
        },
        Family::Strings => strings::execute(node, records, command, now_ms, touch),
        Family::Bitmap => match command {
            Command::Bitmap(c) => bitmap::execute(node, records, c, now_ms, touch),
            _ => Ok(misrouted("bitmap")),
        },
        Family::Keyspace => keyspace::execute(node, records, command, now_ms, touch),
        Family::HyperLogLog => hyperloglog::execute(node, records, command, now_ms, touch),
        Family::Hash | Family::Set | Family::SortedSet | Family::List => {
            collections(node, records, command, now_ms, touch)
        }
        Family::Transactions => transaction::execute(node, session, command),
        Family::Scripting => match command {
            Command::Script(command) => Ok(script::execute(
                node,
                session,
                command,
                &mut |session, args| {
                    let (entry, started) = begin(session, &args);
                    let reply = run(node, session, entry, args);
                    end(node, session, entry, started, &reply);
                    reply.unwrap_or(Reply::Nil)
                },
            )),
            _ => Ok(misrouted("scripting")),
        },
        Family::PubSub => match command {
            Command::PubSub(command) => Ok(pubsub::execute(node, session, command)),
            _ => Ok(misrouted("pub/sub")),
        },
    };
    if let Err(ExecError::Store(e)) = &reply {
        match e {
            StoreError::Write(_) => {
                tracing::error!(error = %e, "a write failed; the store now refuses writes")
            }
            StoreError::Poisoned(_) => tracing::debug!(error = %e, "write refused"),
        }
    }
    reply
}

/// Runs a collection command: each family's executor takes its own command enum.
fn collections(
    node: &Node,
    records: &dyn Records,
    command: Command,
    now_ms: u64,
    touch: bool,
) -> Outcome {
    match command {
        Command::Hash(c) => hash::execute(node, records, c, now_ms, touch),
        Command::Sets(c) => set::execute(node, records, c, now_ms, touch),
        Command::SortedSet(c) => zset::execute(node, records, c, now_ms, touch),
        Command::List(c) => list::execute(node, records, c, now_ms, touch),
        _ => Ok(misrouted("collection")),
    }
}

/// The reply to send, or none when the command stops the server.
fn finish(session: &Session, reply: Outcome) -> Option<Reply> {
    let reply = reply.unwrap_or_else(Reply::error);
    if session.after == After::Shutdown {
        return None;
    }
    Some(reply)
}

/// As [`execute`], on a node in a cluster: key commands go through the coordinator to each
/// key's replicas ([`clustered`]); the rest run on this node. A blocking command that found
/// nothing sets [`Session::blocked`] and answers `None`, to retry through the coordinator.
pub async fn execute_clustered(
    node: &Arc<Node>,
    cluster: &Arc<Cluster>,
    session: &mut Session,
    args: Vec<Bytes>,
) -> Option<Reply> {
    let (entry, started) = begin(session, &args);
    if let Some(reply) = transaction::queue(node, session, entry, &args) {
        return queued(node, session, entry, started, reply);
    }
    if transaction::is_exec(entry) {
        let reply = exec_clustered(node, cluster, session, entry, args).await;
        end(node, session, entry, started, &reply);
        return reply;
    }
    if entry.is_some_and(|e| e.spec.name == "watch") && session.transaction.is_none() {
        let reply = watch_clustered(node, cluster, session, entry, args).await;
        end(node, session, entry, started, &reply);
        return reply;
    }
    let pending = entry.and_then(|e| {
        let keys = e.spec.routed_keys(&args).cloned();
        notify::Pending::new(&node.notifications, &args, e.spec.name, keys, None)
    });
    let misses = entry.map(|e| misses(e, &args)).unwrap_or_default();
    let (reply, events) = notify::collect_async(
        &node.notifications,
        misses,
        run_clustered(node, cluster, session, entry, args, started),
    )
    .await;
    let Some(reply) = reply else {
        // Blocked: counted already.
        return None;
    };
    publish_events(node, Some(cluster), events, pending, reply.as_ref());
    end(node, session, entry, started, &reply);
    blocking::after_command(node);
    reply
}

/// [`execute_clustered`]'s run of one command: `None` when it blocked (counted already),
/// else its reply.
async fn run_clustered(
    node: &Arc<Node>,
    cluster: &Arc<Cluster>,
    session: &mut Session,
    entry: Option<Entry>,
    args: Vec<Bytes>,
    started: Stopwatch,
) -> Option<Option<Reply>> {
    let mut keys = Vec::new();
    let reply = match prepare(node, session, entry, args, Some(&mut keys)) {
        Err(reply) => Some(reply),
        Ok((request, now_ms)) => {
            let touch = touches(session);
            let outcome = if script::runs_script(&request) {
                let Command::Script(command) = request.command else {
                    unreachable!("a script");
                };
                Ok(script::execute_clustered(node, cluster, session, command).await)
            } else if let Some(retry) = blocking::blocking_command(&request)
                .is_some_and(|_| !session.in_exec)
                .then(|| (request.clone(), keys.clone()))
            {
                let outcome =
                    clustered::execute(node, cluster, session, request, keys, now_ms, touch).await;
                if blocking::found_nothing(&outcome) {
                    let (request, keys) = retry;
                    blocking::block_clustered(
                        node,
                        cluster,
                        session,
                        request,
                        keys,
                        started.started_at(),
                        touch,
                    );
                    end(node, session, entry, started, &None);
                    return None;
                }
                outcome
            } else if clustered::is_key_command(request.spec)
                && !keys.is_empty()
                && request.spec.family != Family::Transactions
                // FCALL names keys but is refused on this node, whole.
                && request.spec.family != Family::Scripting
            {
                clustered::execute(node, cluster, session, request, keys, now_ms, touch).await
            } else if clustered::is_keyspace_command(&request.command) {
                clustered::execute_keyspace(node, cluster, request.command, now_ms).await
            } else if let Command::Ring(sub) = request.command {
                Ok(ring::execute(node, cluster, sub).await)
            } else if let Some((channel, payload)) = pubsub::published(&request) {
                cluster.publish(&channel, &payload);
                dispatch(node, &node.store, session, request, now_ms, touch)
            } else {
                dispatch(node, &node.store, session, request, now_ms, touch)
            };
            finish(session, outcome)
        }
    };
    Some(reply)
}

/// The reply for a command handed to an executor of another family. The table's family
/// chooses the executor, so this is a bug; the client gets an error, the server goes on.
fn misrouted(family: &str) -> Reply {
    Reply::Error(format!(
        "ERR a command was sent to the {family} executor by mistake"
    ))
}

/// Most keys evicted before one command. Redis bounds its eviction loop by time
/// (`maxmemory-eviction-tenacity`) and lets the command run when the time is up while keys
/// were still being evicted; this bounds it by count the same way. One write adds one key,
/// so 64 per command is far more than needed to keep up.
pub const EVICTIONS_PER_COMMAND_MAX: usize = 64;

/// Redis's reply to a `denyoom` command while used memory is above `maxmemory` and nothing
/// can be evicted (or the policy is `noeviction`).
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Before a command that may add memory (flag `denyoom`): when `maxmemory` is set and the
/// store uses more, evicts keys by `maxmemory-policy` until it is under the limit or
/// [`EVICTIONS_PER_COMMAND_MAX`] keys went. Refuses the command with [`OOM_ERROR`] when it
/// is still over and nothing could be evicted, as Redis does.
///
/// # Errors
/// The `-OOM` reply.
pub(crate) fn make_room(node: &Node, now_ms: u64) -> Result<(), Reply> {
    let (maxmemory, policy, samples) = {
        let config = node.config.read();
        (
            config.maxmemory_bytes,
            config.maxmemory_policy,
            config.maxmemory_samples as usize,
        )
    };
    if maxmemory == 0 {
        return Ok(());
    }
    let over = || node.store.used_bytes() as u64 > maxmemory;
    for _ in 0..EVICTIONS_PER_COMMAND_MAX {
        if !over() {
            return Ok(());
        }
        let Some(evicted) = node.store.evict(policy, samples, rand::random(), now_ms) else {
            return Err(Reply::error(OOM_ERROR));
        };
        // An eviction is this node's own: its event goes to this node's subscribers only.
        let class = notify::Class::EVICTED;
        for (channel, payload) in node.notifications.messages(class, "evicted", &evicted.key) {
            node.pubsub.deliver(&channel, &payload);
        }
        node.stats
            .evicted_keys
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(())
}

/// A bulk string reply of a static text.
fn bulk(text: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

/// The reply for a value read from the store, counting the hit or miss.
fn lookup_reply(node: &Node, value: Option<&Bytes>) -> Reply {
    node.stats.record_lookup(value.is_some());
    value.map_or(Reply::Nil, |v| Reply::Bulk(v.clone()))
}

/// A bulk string reply of a copy of `bytes` (a collection's cell, which a reply must not
/// hold on to).
fn copied_bulk(bytes: &[u8]) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(bytes))
}

/// Bulk string replies of copies of `items`, all cut from one buffer: one allocation for a
/// whole `LRANGE` or `HGETALL` instead of one per element.
fn copied_bulks<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Vec<Reply> {
    let items: Vec<&[u8]> = items.into_iter().collect();
    let mut buffer = BytesMut::with_capacity(items.iter().map(|i| i.len()).sum());
    for item in &items {
        buffer.extend_from_slice(item);
    }
    let buffer = buffer.freeze();
    let mut at = 0;
    items
        .iter()
        .map(|item| {
            at += item.len();
            Reply::Bulk(buffer.slice(at - item.len()..at))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod testing {
    //! A node and session for command tests without sockets.

    use super::*;
    use crate::config::{Config, Settings};
    use clap::Parser;
    use ringcache_storage::MemoryStore;

    /// A node with default settings over a memory store.
    pub fn node() -> Node {
        let config = Config::from_settings(Settings::parse_from(["ringcache"])).unwrap();
        Node::new(config, Box::new(MemoryStore::new()), None)
    }

    /// A session registered on `node`.
    pub fn session(node: &Node) -> Session {
        let addr = "127.0.0.1:1".parse().unwrap();
        let client = node.clients.register(addr, addr, 10).unwrap();
        Session::new(node, client)
    }

    /// Runs one command line given as words.
    pub fn run(node: &Node, session: &mut Session, line: &str) -> Reply {
        let args = line
            .split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect();
        execute(node, session, args).unwrap_or(Reply::Nil)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{node, run, session};
    use super::*;

    #[test]
    fn noeviction_refuses_writes_over_maxmemory_but_serves_reads_and_deletes() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(run(&node, &mut s, "SET a 1"), Reply::Ok);
        assert_eq!(run(&node, &mut s, "CONFIG SET maxmemory 1"), Reply::Ok);
        assert_eq!(run(&node, &mut s, "SET b 2"), Reply::error(OOM_ERROR));
        assert_eq!(run(&node, &mut s, "INCR a"), Reply::error(OOM_ERROR));
        assert_eq!(run(&node, &mut s, "GET a"), bulk("1"));
        assert_eq!(run(&node, &mut s, "DEL a"), Reply::Integer(1));
        assert_eq!(
            node.stats
                .evicted_keys
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        assert!(info::info(&node, &[]).contains("errorstat_OOM:count=2"));
    }

    #[test]
    fn an_eviction_policy_makes_room_and_counts_evicted_keys() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(
            run(
                &node,
                &mut s,
                "CONFIG SET maxmemory 20kb maxmemory-policy allkeys-lru"
            ),
            Reply::Ok
        );
        for i in 0..1_000 {
            assert_eq!(run(&node, &mut s, &format!("SET key:{i} value")), Reply::Ok);
        }
        let used = node.store.used_bytes();
        // Over by at most the last write.
        assert!(used <= 20 * 1024 + 300, "used {used}");
        let evicted = node
            .stats
            .evicted_keys
            .load(std::sync::atomic::Ordering::Relaxed);
        let keys = node.store.stats().keys as u64;
        assert_eq!(evicted + keys, 1_000);
        assert!(info::info(&node, &[]).contains(&format!("evicted_keys:{evicted}")));
    }

    #[test]
    fn volatile_policies_answer_oom_when_no_key_has_an_expiry() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET plain 1");
        run(&node, &mut s, "SET ttl 1 EX 100");
        run(
            &node,
            &mut s,
            "CONFIG SET maxmemory 1 maxmemory-policy volatile-lru",
        );
        // The one key with an expiry goes; then nothing is left to evict.
        assert_eq!(run(&node, &mut s, "SET other 1"), Reply::error(OOM_ERROR));
        assert_eq!(run(&node, &mut s, "EXISTS ttl plain"), Reply::Integer(1));
        assert_eq!(
            node.stats
                .evicted_keys
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
    }

    /// Writes `a` and `b`, runs `reads`, then makes room for one more key under
    /// allkeys-lfu, which evicts exactly one of them; returns the survivor.
    fn lfu_survivor(reads: &[&str]) -> &'static str {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET a 1");
        run(&node, &mut s, "SET b 1");
        for line in reads {
            run(&node, &mut s, line);
        }
        run(&node, &mut s, "CLIENT NO-TOUCH off");
        let limit = node.store.used_bytes() - 1;
        let set = format!("CONFIG SET maxmemory {limit} maxmemory-policy allkeys-lfu");
        assert_eq!(run(&node, &mut s, &set), Reply::Ok);
        assert_eq!(run(&node, &mut s, "SET c 1"), Reply::Ok);
        match (
            run(&node, &mut s, "EXISTS a"),
            run(&node, &mut s, "EXISTS b"),
        ) {
            (Reply::Integer(1), Reply::Integer(0)) => "a",
            (Reply::Integer(0), Reply::Integer(1)) => "b",
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_count_as_accesses_except_under_client_no_touch_but_touch_always_does() {
        assert_eq!(lfu_survivor(&["GET a", "GET a"]), "a");
        assert_eq!(
            lfu_survivor(&["EXISTS a", "TTL a", "TYPE a", "STRLEN b"]),
            "b"
        );
        assert_eq!(
            lfu_survivor(&["CLIENT NO-TOUCH on", "GET a", "GET a", "TOUCH b"]),
            "b"
        );
    }

    #[test]
    fn commands_that_do_not_add_memory_run_over_maxmemory() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET a 1");
        run(&node, &mut s, "CONFIG SET maxmemory 1");
        for line in [
            "GET a",
            "EXISTS a",
            "TTL a",
            "EXPIRE a 100",
            "PING",
            "DBSIZE",
        ] {
            assert!(
                !matches!(run(&node, &mut s, line), Reply::Error(_)),
                "{line} was refused"
            );
        }
    }
}
