//! Key commands on a node in a cluster: the coordinator's side.
//!
//! A key command runs in three steps, so that the single-node command code in
//! [`super::strings`] and [`super::keyspace`] serves the cluster unchanged:
//! 1. **Read** each key's record from its replicas at the request's level (merged by
//!    version, stale replicas repaired) into an [`Overlay`]. Blind writes (`SET` without a
//!    condition, `GET` or `KEEPTTL`, and `MSET`) skip this: their result does not depend on
//!    what is stored.
//! 2. **Run** the command against the overlay as if it were the store; the records it
//!    writes are collected, with versions from this node's clock.
//! 3. **Write** each changed record to its key's replicas at the level; the command's reply
//!    is sent only if every write met the level, else the error says what happened. A read
//!    command's changes (PFCOUNT's cached cardinality) are dropped, not written.
//!
//! Read-modify-writes (INCR, APPEND, SET NX, PFADD, PFMERGE, ...) hold a per-key lock on
//! this coordinator from step 1 to step 3, so they never interleave here; two coordinators
//! can still race (docs/consistency.md). Every key of a multi-key command is read and written at the
//! request's level, and a failure of any key fails the command: never a silent partial
//! answer. A multi-key write checks every key's replicas first, so `UNAVAILABLE` means
//! nothing was written.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use ringcache_cluster::QuorumError;
use ringcache_cluster::protocol::Message;
use ringcache_resp::cmd::{Access, Command, SetExpiry, Spec};
use ringcache_resp::{Level, Reply, Request};
use ringcache_storage::{DataType, Record, StoreError, Update};
use tokio::task::JoinSet;

use super::{ExecError, Outcome, Records, Session, dispatch};
use crate::cluster::{self, Cluster};
use crate::node::{Node, unix_now_ms};

/// Whether the command names keys and so goes through the coordinator (the keyspace walks
/// go through [`execute_keyspace`]).
pub fn is_key_command(spec: &Spec) -> bool {
    spec.keys.has_keys()
}

/// Whether the command's writes do not depend on the stored records, so no read is needed.
fn is_blind_write(command: &Command) -> bool {
    match command {
        Command::Set(set) => {
            set.condition.is_none() && !set.get && !matches!(set.expiry, SetExpiry::Keep)
        }
        Command::MSet(_) => true,
        _ => false,
    }
}

/// The level of the request: named in it, else the connection's default, else the server's.
fn level_of(node: &Node, session: &Session, request: &Request, write: bool) -> Level {
    let session_level = if write {
        session.write_level
    } else {
        session.read_level
    };
    request.level.or(session_level).unwrap_or_else(|| {
        let config = node.config.read();
        if write {
            config.write_level
        } else {
            config.read_level
        }
    })
}

/// Runs one key command through the coordinator; `keys` are the keys it names, in order.
pub async fn execute(
    node: &Arc<Node>,
    cluster: &Arc<Cluster>,
    session: &mut Session,
    request: Request,
    mut keys: Vec<Bytes>,
    now_ms: u64,
    touch: bool,
) -> Outcome {
    cluster.check_seeds()?;
    let write = request.spec.access() == Access::Write;
    let level = level_of(node, session, &request, write);
    keys.sort_unstable();
    keys.dedup();
    let key_refs: Vec<&Bytes> = keys.iter().collect();
    let blind = write && is_blind_write(&request.command);
    if write {
        cluster.check_clock()?;
        // A blind write of one key goes straight to its round, which refuses it as
        // unavailable itself, in the same words; the check is for reads before writes, and
        // for commands that must not write some keys and not others.
        if !(blind && keys.len() == 1) {
            cluster.check_writable(&key_refs, level)?;
        }
    }
    // (A transaction's EXEC holds the locks of all its keys already.)
    let _serialized = match write && !blind && !session.in_exec {
        true => cluster.lock_keys(&key_refs).await,
        false => Vec::new(),
    };
    let overlay = Overlay::default();
    if !blind {
        // ANY is a write level; the read half of a read-modify-write needs one replica.
        let read_level = if level == Level::Any {
            Level::One
        } else {
            level
        };
        for (key, record) in keys.iter().zip(read_all(cluster, &keys, read_level).await?) {
            // A replica's clock may be ahead of ours: move past what was read, so that
            // the version this command writes is newer than the record it changes.
            if let Some(record) = &record {
                node.clock.observe(record.version());
            }
            overlay.records.lock().insert(key.clone(), record);
        }
    }
    let ordered = is_ordered_write(&request.command);
    let reply = dispatch(node, &overlay, session, request, now_ms, touch)?;
    let written = std::mem::take(&mut *overlay.written.lock());
    // A read command writes only a cache: PFCOUNT's cardinality in the HLL's header. Read
    // at the read level, without the key's lock or a writability check, it is not written
    // back, so a read never changes a replica (docs/consistency.md).
    if write && ordered {
        write_in_order(cluster, written, level).await?;
    } else if write {
        write_all(cluster, written, level).await?;
    }
    Ok(reply)
}

/// Whether the command's writes must reach their replicas one after the other, in the order
/// the command made them: `RENAME` and `RENAMENX` write the destination, then delete the
/// source, and the delete must not be sent unless the destination met the level (else a
/// failure half way could lose the value; the other way round it leaves both keys, which a
/// retry of the `RENAME` repairs).
fn is_ordered_write(command: &Command) -> bool {
    matches!(command, Command::Rename { .. })
}

/// Writes every changed record at `level`, one after the other in order, stopping at the
/// first that fails: those after it are not sent.
async fn write_in_order(
    cluster: &Arc<Cluster>,
    written: Vec<(Bytes, Record)>,
    level: Level,
) -> Result<(), QuorumError> {
    for (key, record) in written {
        cluster::write(cluster, &key, record, level).await?;
    }
    Ok(())
}

/// Before a transaction runs on a cluster: the seeds are reached and, for every write command
/// queued (`requests`, each with its keys), the clock is in bounds and every key's replicas
/// can meet the command's level now. Any failure fails the whole `EXEC`, nothing run.
///
/// # Errors
/// The first refusal.
pub fn check_transaction(
    node: &Node,
    cluster: &Arc<Cluster>,
    session: &Session,
    requests: &[(Request, Vec<Bytes>)],
) -> Result<(), ExecError> {
    cluster.check_seeds()?;
    for (request, keys) in requests {
        if request.spec.access() != Access::Write || keys.is_empty() {
            continue;
        }
        cluster.check_clock()?;
        let level = level_of(node, session, request, true);
        let key_refs: Vec<&Bytes> = keys.iter().collect();
        cluster.check_writable(&key_refs, level)?;
    }
    Ok(())
}

/// Before a script that may write runs on a cluster: every declared key's replicas can
/// meet the connection's write level (nothing is written otherwise).
///
/// # Errors
/// Why the script cannot run (`UNAVAILABLE`, clock skew, no seed reached).
pub fn check_script(
    node: &Node,
    cluster: &Arc<Cluster>,
    session: &Session,
    keys: &[Bytes],
) -> Result<(), ExecError> {
    cluster.check_seeds()?;
    if keys.is_empty() {
        return Ok(());
    }
    cluster.check_clock()?;
    let level = session
        .write_level
        .unwrap_or_else(|| node.config.read().write_level);
    let key_refs: Vec<&Bytes> = keys.iter().collect();
    cluster.check_writable(&key_refs, level)?;
    Ok(())
}

/// The records of `keys` read at the connection's read level: what `WATCH` notes and
/// `EXEC` reads again on a cluster.
///
/// # Errors
/// The read could not meet the level.
pub async fn read_watched(
    node: &Node,
    cluster: &Arc<Cluster>,
    session: &Session,
    keys: &[Bytes],
) -> Result<Vec<Option<Record>>, ExecError> {
    let level = session
        .read_level
        .unwrap_or_else(|| node.config.read().read_level);
    let level = if level == Level::Any {
        Level::One
    } else {
        level
    };
    Ok(read_all(cluster, keys, level).await?)
}

/// Reads every key at `level`, concurrently; the merged records in the keys' order.
async fn read_all(
    cluster: &Arc<Cluster>,
    keys: &[Bytes],
    level: Level,
) -> Result<Vec<Option<Record>>, QuorumError> {
    if let [key] = keys {
        return Ok(vec![cluster::read(cluster, key, level).await?]);
    }
    let reads = keys.iter().map(|key| {
        let (cluster, key) = (cluster.clone(), key.clone());
        async move { cluster::read(&cluster, &key, level).await }
    });
    all_or_first_error(reads.collect()).await
}

/// Writes every changed record at `level`, concurrently; the first error, if any.
async fn write_all(
    cluster: &Arc<Cluster>,
    written: Vec<(Bytes, Record)>,
    level: Level,
) -> Result<(), QuorumError> {
    if written.len() == 1 {
        let (key, record) = written.into_iter().next().expect("one write");
        return cluster::write(cluster, &key, record, level).await;
    }
    let writes = written.into_iter().map(|(key, record)| {
        let cluster = cluster.clone();
        async move { cluster::write(&cluster, &key, record, level).await }
    });
    all_or_first_error(writes.collect()).await.map(|_| ())
}

/// Runs the rounds of every key of one command (several keys; one goes straight to its
/// round) as concurrent tasks, each key's round waiting on its own replicas. Every round
/// runs to its end, so a failure of one key does not leave another's round half done; the
/// outputs come back in order, or the first error.
async fn all_or_first_error<T, F>(rounds: Vec<F>) -> Result<Vec<T>, QuorumError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, QuorumError>> + Send + 'static,
{
    if rounds.len() <= 1 {
        let mut outputs = Vec::with_capacity(1);
        for round in rounds {
            outputs.push(round.await?);
        }
        return Ok(outputs);
    }
    let count = rounds.len();
    let mut tasks = JoinSet::new();
    for (at, round) in rounds.into_iter().enumerate() {
        tasks.spawn(async move { (at, round.await) });
    }
    let mut outputs: Vec<Option<T>> = (0..count).map(|_| None).collect();
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((at, Ok(output))) => outputs[at] = Some(output),
            Ok((_, Err(e))) => {
                first_error.get_or_insert(e);
            }
            Err(e) => panic!("a key's round failed: {e}"),
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(outputs
            .into_iter()
            .map(|o| o.expect("every round answered"))
            .collect()),
    }
}

/// The records a command sees: what the coordinator read from the replicas, and what the
/// command writes over them, kept for step 3.
#[derive(Default)]
struct Overlay {
    records: Mutex<HashMap<Bytes, Option<Record>>>,
    written: Mutex<Vec<(Bytes, Record)>>,
}

impl Records for Overlay {
    fn get(&self, key: &[u8], _now_ms: u64) -> Option<Record> {
        self.records.lock().get(key).cloned().flatten()
    }

    fn peek(&self, key: &[u8], now_ms: u64) -> Option<Record> {
        self.get(key, now_ms)
    }

    fn update(
        &self,
        key: &[u8],
        _now_ms: u64,
        decide: &mut dyn FnMut(Option<&Record>) -> Update,
    ) -> Result<Option<Record>, StoreError> {
        let mut records = self.records.lock();
        let current = records.get(key).cloned().flatten();
        match decide(current.as_ref()) {
            Update::Keep => Ok(current),
            Update::Put(record) => {
                let key = Bytes::copy_from_slice(key);
                records.insert(key.clone(), Some(record.clone()));
                // A collection's replicas get the cells this write changed, not all of them.
                let sent = super::collection::delta(current.as_ref(), &record);
                self.written.lock().push((key, sent));
                Ok(Some(record))
            }
        }
    }
}

/// Whether `command` walks or changes the whole keyspace, which a cluster answers from
/// every member: `KEYS`, `SCAN`, `RANDOMKEY`, `DBSIZE`, `FLUSHALL`, `FLUSHDB`.
pub fn is_keyspace_command(command: &Command) -> bool {
    matches!(
        command,
        Command::Keys(_)
            | Command::Scan(_)
            | Command::RandomKey
            | Command::DbSize
            | Command::Flush(_)
    )
}

/// Runs a keyspace command over every member.
///
/// - `SCAN`: the cursor is a ring token. Every member that is up walks its own store from
///   it; the keys are merged without repeats, and the next cursor is the smallest place
///   any member stopped at, so every key present on an up replica for the whole walk is
///   returned at least once (some may come twice, as Redis allows).
/// - `KEYS`: a whole `SCAN` walk.
/// - `RANDOMKEY`: a key of this node's replicas (any key is on some node), else of another.
/// - `DBSIZE`: the sum of the members' live keys divided by the replication factor, an
///   estimate that is exact when every replica holds every key it should.
/// - `FLUSHALL`/`FLUSHDB`: a flush time from this node's clock, applied by every member
///   (all must be up); records no newer are dead everywhere from then on.
pub async fn execute_keyspace(
    node: &Arc<Node>,
    cluster: &Arc<Cluster>,
    command: Command,
    now_ms: u64,
) -> Outcome {
    cluster.check_seeds()?;
    Ok(match command {
        Command::Scan(scan) => {
            let count = scan.count.clamp(1, SCAN_WALK_KEYS_MAX);
            // A type no key can have (`TYPE foo`) finds nothing, as in Redis 7.0.
            let (kind, known) = match scan.type_filter.as_deref() {
                None => (None, true),
                Some(name) => match data_type_named(name) {
                    Some(kind) => (Some(kind), true),
                    None => (None, false),
                },
            };
            let (next, keys) = walk(cluster, scan.cursor, count, kind).await;
            let keys = keys
                .into_iter()
                .filter(|k| known && matches(scan.pattern.as_ref(), k))
                .map(Reply::Bulk)
                .collect();
            Reply::Array(vec![
                Reply::Bulk(Bytes::from(next.to_string())),
                Reply::Array(keys),
            ])
        }
        Command::Keys(pattern) => {
            let mut found = Vec::new();
            let mut cursor = 0;
            loop {
                let (next, keys) = walk(cluster, cursor, SCAN_WALK_KEYS_MAX, None).await;
                found.extend(keys.into_iter().filter(|k| matches(Some(&pattern), k)));
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            found.sort_unstable();
            found.dedup();
            Reply::Array(found.into_iter().map(Reply::Bulk).collect())
        }
        Command::RandomKey => match node.store.random_key(rand::random(), now_ms) {
            Some(key) => Reply::Bulk(key),
            None => {
                let (_, keys) = walk(cluster, rand::random(), 1, None).await;
                keys.into_iter().next().map_or(Reply::Nil, Reply::Bulk)
            }
        },
        Command::DbSize => {
            let local = || cluster::Response::Count(node.store.stats().keys as u64);
            let (answers, _) = cluster.ask_every(&Message::KeyCount, local).await;
            let total: u64 = answers
                .iter()
                .map(|(_, r)| match r {
                    cluster::Response::Count(n) => *n,
                    _ => 0,
                })
                .sum();
            let replicas = cluster
                .config
                .replication_factor
                .min(cluster.ring().members().len());
            Reply::Integer((total as f64 / replicas.max(1) as f64).round() as i64)
        }
        Command::Flush(_) => flush(node, cluster, now_ms).await?,
        _ => super::misrouted("keyspace"),
    })
}

/// Most keys one `SCAN` step asks of each member.
const SCAN_WALK_KEYS_MAX: usize = 100_000;

/// The type `SCAN ... TYPE` names (lowercased), if a key can have it.
fn data_type_named(name: &[u8]) -> Option<DataType> {
    [
        DataType::String,
        DataType::Hash,
        DataType::Set,
        DataType::ZSet,
        DataType::List,
    ]
    .into_iter()
    .find(|kind| kind.name().as_bytes() == name)
}

fn matches(pattern: Option<&Bytes>, key: &[u8]) -> bool {
    pattern.is_none_or(|p| ringcache_resp::glob::glob_match(p, key, false))
}

/// One step of a cluster-wide walk from `cursor`: the keys every member that is up holds
/// there, without repeats, and the smallest place any member stopped at (0: done).
async fn walk(
    cluster: &Cluster,
    cursor: u64,
    count: usize,
    kind: Option<DataType>,
) -> (u64, Vec<Bytes>) {
    let message = Message::Scan {
        from_token: cursor,
        count: count as u32,
        kind,
    };
    let local = || {
        let (next, keys) = cluster.replica.scan(cursor, count, kind, unix_now_ms());
        cluster::Response::Keys { next, keys }
    };
    let (answers, _) = cluster.ask_every(&message, local).await;
    let mut next = 0u64;
    let mut keys = Vec::new();
    for (_, answer) in answers {
        if let cluster::Response::Keys { next: n, keys: k } = answer {
            if n != 0 && (next == 0 || n < next) {
                next = n;
            }
            keys.extend(k);
        }
    }
    keys.sort_unstable();
    keys.dedup();
    (next, keys)
}

/// `FLUSHALL`/`FLUSHDB` in a cluster: every member applies one flush time.
async fn flush(node: &Arc<Node>, cluster: &Cluster, now_ms: u64) -> Result<Reply, ExecError> {
    let members = cluster.members().len();
    let alive = cluster.members_up(now_ms);
    if alive < members {
        return Err(QuorumError::Unavailable {
            level: Level::All.name(),
            needed: members,
            alive,
            write: true,
        }
        .into());
    }
    cluster.check_clock()?;
    let version = node.clock.next(now_ms);
    let local = || match cluster::apply_flush(cluster, version) {
        Ok(()) => cluster::Response::Ack,
        Err(e) => {
            tracing::error!(error = %e, "flush failed");
            cluster::Response::Failed
        }
    };
    let (answers, _) = cluster.ask_every(&Message::Flush { version }, local).await;
    let acks = answers
        .iter()
        .filter(|(_, r)| matches!(r, cluster::Response::Ack))
        .count();
    if acks < members {
        return Err(QuorumError::Timeout {
            level: Level::All.name(),
            needed: members,
            got: acks,
            timeout_ms: cluster.config.read_timeout_ms,
            write: true,
        }
        .into());
    }
    Ok(Reply::Ok)
}
