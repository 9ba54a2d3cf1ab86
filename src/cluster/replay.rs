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
use tokio::sync::watch;

use super::link::{Links, Response};
use super::state::Cluster;
use crate::clock::unix_now_ms;

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
pub async fn run(cluster: Arc<Cluster>, mut shutdown: watch::Receiver<bool>) {
    if cluster.hints.is_none() {
        return;
    }
    let mut last_sync = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = tokio::time::sleep(REPLAY_INTERVAL) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
        let targets = cluster
            .hints
            .as_ref()
            .map(|h| h.targets())
            .unwrap_or_default();
        for target in targets {
            let target = NodeId::new(target);
            if cluster.is_up(target, unix_now_ms()) {
                replay_target(&cluster, target).await;
            }
        }
        if last_sync.elapsed() >= SYNC_INTERVAL {
            last_sync = tokio::time::Instant::now();
            sync_hints(&cluster).await;
        }
    }
    sync_hints(&cluster).await;
}

/// Fsyncs the hint logs on a blocking thread, not on a runtime worker.
async fn sync_hints(cluster: &Arc<Cluster>) {
    let cluster = cluster.clone();
    let synced =
        tokio::task::spawn_blocking(move || cluster.hints.as_ref().map(|h| h.sync())).await;
    if let Ok(Some(Err(e))) = synced {
        tracing::error!(error = %e, "cannot sync the hint logs");
    }
}

/// Sends `target` its hints, batch by batch, while it acknowledges them all.
async fn replay_target(cluster: &Cluster, target: NodeId) {
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
        let records: Vec<(Bytes, Record)> = fresh.into_iter().map(|h| (h.key, h.record)).collect();
        if !send_records(&cluster.links, target, &records).await {
            return;
        }
        if let Err(e) = hints.acknowledge(target.get(), last) {
            tracing::error!(%target, error = %e, "cannot record delivered hints");
            return;
        }
        cluster.stats.hints_replayed.fetch_add(count, Relaxed);
        tracing::debug!(%target, count, "hints replayed");
    }
}

/// Writes `records` to `target` as pipelined coordinator writes (its replica path checks
/// them as any write) and waits for every answer; false if any failed or did not come within
/// [`BATCH_TIMEOUT`]. A refusal does not stop the others (merging is idempotent, and the
/// batch is sent again whole): a failing batch answers only once all are in or the timeout
/// passed. Hint replay and decommission streaming.
pub async fn send_records(links: &Links, target: NodeId, records: &[(Bytes, Record)]) -> bool {
    let writes = records.iter().map(|(key, record)| {
        let message = Message::Write {
            key: key.clone(),
            record: record.clone(),
        };
        (target, message)
    });
    let outcomes = links.request_all(writes, BATCH_TIMEOUT).await;
    outcomes
        .iter()
        .all(|(_, outcome)| matches!(outcome, Ok(Response::Ack)))
}
