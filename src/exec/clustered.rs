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
//!    is sent only if every write met the level, else the error says what happened.
//!
//! Read-modify-writes (INCR, APPEND, SET NX, ...) hold a per-key lock on this coordinator
//! from step 1 to step 3, so they never interleave here; two coordinators can still race
//! (docs/consistency.md). Every key of a multi-key command is read and written at the
//! request's level, and a failure of any key fails the command: never a silent partial
//! answer. A multi-key write checks every key's replicas first, so `UNAVAILABLE` means
//! nothing was written.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use parking_lot::Mutex;
use ringcache_cluster::QuorumError;
use ringcache_resp::cmd::{Access, Command, Family, SetExpiry};
use ringcache_resp::{Level, Request};
use ringcache_storage::{Record, StoreError, Update};
use tokio::task::JoinSet;

use super::{ExecError, Outcome, Records, Session, dispatch};
use crate::cluster;
use crate::node::Node;

/// Whether `command` names keys and so goes through the coordinator. `KEYS`, `SCAN`,
/// `RANDOMKEY` and the server commands run on this node.
pub fn is_key_command(command: &Command) -> bool {
    matches!(command.family(), Family::Strings | Family::Keyspace) && !command.keys().is_empty()
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

/// Runs one key command through the coordinator.
pub async fn execute(
    node: &Arc<Node>,
    session: &mut Session,
    request: Request,
    now_ms: u64,
    touch: bool,
) -> Outcome {
    let cluster = node
        .cluster
        .get()
        .expect("clustered commands run in a cluster");
    refuse_until_seeds_reached(cluster)?;
    let write = request.command.access() == Access::Write;
    let level = level_of(node, session, &request, write);
    let mut keys: Vec<Bytes> = request.command.keys().into_iter().cloned().collect();
    keys.sort_unstable();
    keys.dedup();
    let key_refs: Vec<&Bytes> = keys.iter().collect();
    if write {
        refuse_if_clock_skewed(cluster)?;
        cluster.check_writable(&key_refs, level)?;
    }
    let blind = write && is_blind_write(&request.command);
    let _serialized = match write && !blind {
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
        for (key, record) in keys.iter().zip(read_all(node, &keys, read_level).await?) {
            overlay.records.lock().insert(key.clone(), record);
        }
    }
    let reply = dispatch(node, &overlay, session, request.command, now_ms, touch)?;
    let written = std::mem::take(&mut *overlay.written.lock());
    write_all(node, written, level).await?;
    Ok(reply)
}

fn refuse_until_seeds_reached(cluster: &cluster::Cluster) -> Result<(), ExecError> {
    let unresolved = cluster.unresolved_seeds();
    if unresolved.is_empty() {
        return Ok(());
    }
    Err(ExecError::Cluster(format!(
        "CLUSTERDOWN this node has not reached every seed yet ({}), so it cannot place keys; \
         retry shortly",
        unresolved.join(", ")
    )))
}

fn refuse_if_clock_skewed(cluster: &cluster::Cluster) -> Result<(), ExecError> {
    let Some(offset) = cluster.clock_skew() else {
        return Ok(());
    };
    cluster.stats.clock_skew_refusals.fetch_add(1, Relaxed);
    Err(ExecError::Cluster(format!(
        "CLOCKSKEW this node's clock is {offset} ms off its peers' (max {} ms); it does not \
         coordinate writes until its clock is fixed (nothing was written)",
        cluster.config.max_clock_offset_ms
    )))
}

/// Reads every key at `level`, concurrently; the merged records in the keys' order.
async fn read_all(
    node: &Arc<Node>,
    keys: &[Bytes],
    level: Level,
) -> Result<Vec<Option<Record>>, QuorumError> {
    if let [key] = keys {
        return Ok(vec![cluster::read(node, key, level).await?]);
    }
    let mut reads = JoinSet::new();
    for (at, key) in keys.iter().enumerate() {
        let (node, key) = (node.clone(), key.clone());
        reads.spawn(async move { (at, cluster::read(&node, &key, level).await) });
    }
    let mut records = vec![None; keys.len()];
    let mut first_error = None;
    while let Some(joined) = reads.join_next().await {
        match joined {
            Ok((at, Ok(record))) => records[at] = record,
            Ok((_, Err(e))) => {
                first_error.get_or_insert(e);
            }
            Err(e) => panic!("a read task failed: {e}"),
        }
    }
    first_error.map_or(Ok(records), Err)
}

/// Writes every changed record at `level`, concurrently; the first error, if any.
async fn write_all(
    node: &Arc<Node>,
    written: Vec<(Bytes, Record)>,
    level: Level,
) -> Result<(), QuorumError> {
    if written.len() <= 1 {
        for (key, record) in written {
            cluster::write(node, &key, record, level).await?;
        }
        return Ok(());
    }
    let mut writes = JoinSet::new();
    for (key, record) in written {
        let node = node.clone();
        writes.spawn(async move { cluster::write(&node, &key, record, level).await });
    }
    let mut first_error = None;
    while let Some(joined) = writes.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => panic!("a write task failed: {e}"),
        }
    }
    first_error.map_or(Ok(()), Err)
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
                self.written.lock().push((key, record.clone()));
                Ok(Some(record))
            }
        }
    }
}
