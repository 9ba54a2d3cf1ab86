//! Hinted handoff: replays the hints this node keeps to each replica once it is up again,
//! in the order they were stored, a bounded batch at a time, and drops hints older than the
//! hint window (anti-entropy repairs what they would have carried).

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use ringcache_cluster::NodeId;
use ringcache_cluster::protocol::Message;
use ringcache_storage::Record;

use super::link::Inbox;
use super::{Cluster, Response};
use crate::node::{Node, unix_now_ms};

/// How often the replayer looks for targets that are up and have hints.
const REPLAY_INTERVAL: Duration = Duration::from_millis(200);
/// Hints sent per batch; the next batch goes once this one is acknowledged, which throttles
/// replay to what the target keeps up with.
pub const REPLAY_BATCH_HINTS: usize = 512;
/// How long a batch may wait for its acks before it is retried later.
const BATCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the hint logs are synced to disk.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// Replays hints until shutdown.
pub async fn run(node: Arc<Node>) {
    let cluster = node.cluster.get().expect("cluster");
    let Some(hints) = &cluster.hints else {
        return;
    };
    let mut shutdown = node.shutdown.subscribe();
    let mut last_sync = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep(REPLAY_INTERVAL) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        for target in hints.targets() {
            let target = NodeId::new(target);
            if cluster.is_up(target, unix_now_ms()) {
                replay_target(&node, cluster, target).await;
            }
        }
        if last_sync.elapsed() >= SYNC_INTERVAL {
            last_sync = tokio::time::Instant::now();
            sync_hints(&node).await;
        }
    }
    sync_hints(&node).await;
}

/// Fsyncs the hint logs on a blocking thread, not on a runtime worker.
async fn sync_hints(node: &Arc<Node>) {
    let node = node.clone();
    let synced =
        tokio::task::spawn_blocking(move || node.cluster.get()?.hints.as_ref().map(|h| h.sync()))
            .await;
    if let Ok(Some(Err(e))) = synced {
        tracing::error!(error = %e, "cannot sync the hint logs");
    }
}

/// Sends `target` its hints, batch by batch, while it acknowledges them all.
async fn replay_target(node: &Arc<Node>, cluster: &Cluster, target: NodeId) {
    let hints = cluster.hints.as_ref().expect("hints");
    let window = cluster.config.hint_window_ms;
    loop {
        let batch = match hints.read_batch(target.get(), REPLAY_BATCH_HINTS, unix_now_ms(), window)
        {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(%target, error = %e, "cannot read hints");
                return;
            }
        };
        cluster
            .stats
            .hints_dropped
            .fetch_add(batch.expired, Relaxed);
        let Some(last) = batch.last else {
            return;
        };
        // A hint is also too old when its record is: a read repair stores an old record as a
        // fresh hint, and a tombstone of that key may already be gone on every replica (its
        // range repaired after the window), so the old record would come back.
        let oldest_ms = unix_now_ms().saturating_sub(window);
        let (fresh, stale): (Vec<_>, Vec<_>) = batch
            .hints
            .into_iter()
            .partition(|hint| hint.record.version().unix_ms() >= oldest_ms);
        cluster
            .stats
            .hints_dropped
            .fetch_add(stale.len() as u64, Relaxed);
        let count = fresh.len() as u64;
        if !send_batch(cluster, target, fresh).await {
            return;
        }
        if let Err(e) = hints.acknowledge(target.get(), last) {
            tracing::error!(%target, error = %e, "cannot record delivered hints");
            return;
        }
        cluster.stats.hints_replayed.fetch_add(count, Relaxed);
        tracing::debug!(%target, count, "hints replayed");
        let _ = node;
    }
}

/// Sends every hint of a batch and waits for all acks; false if any failed or timed out.
async fn send_batch(
    cluster: &Cluster,
    target: NodeId,
    batch: Vec<ringcache_storage::hints::Hint>,
) -> bool {
    let records: Vec<(Bytes, Record)> = batch.into_iter().map(|h| (h.key, h.record)).collect();
    send_records(cluster, target, &records).await
}

/// Writes `records` to `target` as pipelined writes and waits for every ack; false if any
/// failed or none came within [`BATCH_TIMEOUT`]. Hint replay and decommission streaming.
pub async fn send_records(cluster: &Cluster, target: NodeId, records: &[(Bytes, Record)]) -> bool {
    if records.is_empty() {
        return true;
    }
    let Some(link) = cluster.link(target) else {
        return false;
    };
    let answers = Inbox::new();
    let mut ids = Vec::with_capacity(records.len());
    for (key, record) in records {
        let message = Message::Write {
            key: key.clone(),
            record: record.clone(),
        };
        match link.request(cluster.request_id(), &message, target, answers.clone()) {
            Ok(id) => ids.push(id),
            Err(()) => {
                ids.iter().for_each(|&id| link.cancel(id));
                return false;
            }
        }
    }
    let expected = ids.len();
    let all_acked = tokio::time::timeout(BATCH_TIMEOUT, async {
        for _ in 0..expected {
            match answers.recv().await {
                (_, Response::Ack) => {}
                _ => return false,
            }
        }
        true
    })
    .await
    .unwrap_or(false);
    ids.iter().for_each(|&id| link.cancel(id));
    all_acked
}
