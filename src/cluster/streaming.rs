//! Moving data when the ring changes: a joining node pulls its ranges in, a decommissioned
//! node pushes its ranges out, a node left as a new replica of a forgotten member's ranges
//! pulls them from the other replicas, and every node drops what it no longer replicates
//! once the ring is settled.
//!
//! Which ranges move is [`ringcache_cluster::transfer::moved_ranges`] between the ring now
//! and the ring after. A joining node pulls each range from every replica that loses it
//! (Cassandra's consistent range movement): a loser held every write acknowledged with it,
//! and the replicas that stay keep the rest, so nothing acknowledged at any level is lost.
//! Pulling from another replica instead could miss a write the loser alone acknowledged (at
//! `ONE`), so the join waits while a loser is down, until it is back or forgotten.
//! The plan and each source's cursor are kept in `data_dir/stream`, so a join resumes after a
//! crash where it stopped.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcache_cluster::membership::{Health, Status};
use ringcache_cluster::protocol::Message;
use ringcache_cluster::transfer::{Moved, Plan, Pull, moved_ranges};
use ringcache_cluster::{NodeId, Ring, View};
use ringcache_storage::{Record, key_token};
use tokio::sync::watch;

use super::error::{DecommissionError, StreamError};
use super::link::Response;
use super::persist;
use super::replay::send_records;
use super::replica::{Applied, Source};
use super::state::Cluster;
use super::throttle::Throttle;
use crate::clock::unix_now_ms;

/// Records a source walks per stream request.
const STREAM_BATCH_KEYS: u32 = 1_000;
/// How long a joining node waits after announcing itself before it streams, so that every
/// coordinator knows it as a pending replica first (gossip reaches 1,200 nodes in about 3 s;
/// Cassandra waits its RING_DELAY, 30 s, for the same reason).
const JOIN_SETTLE: Duration = Duration::from_secs(3);
/// How long the ring must stay unchanged before a node drops what it no longer replicates:
/// old owners keep their copy a while after the new owner said it has everything.
const CLEANUP_DELAY: Duration = Duration::from_secs(10);
/// Pause before retrying a source or a target that failed.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// A stream request not answered within this fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Records pushed per batch when decommissioning.
const PUSH_BATCH_RECORDS: usize = 256;
/// Where a join keeps its plan and progress, in the data dir.
const JOIN_PLAN_FILE: &str = "stream";
/// Where a take-over of a forgotten member's ranges keeps its plan and progress.
const TAKEOVER_PLAN_FILE: &str = "takeover";
/// How long a leaving node waits for its hints to be replayed.
const HINT_DRAIN_MAX: Duration = Duration::from_secs(30);
/// How long a leaving node gives gossip to spread a status change before going on: as long
/// as a joining node waits, for the same reason.
const STATUS_SETTLE: Duration = JOIN_SETTLE;

/// The plan of a join cut short, kept in `data_dir/stream`.
/// Its first line is the future ring it was planned against (`ring <id>,<id>,...`), then
/// the plan.
fn load_plan(file: &Path) -> Option<(Vec<NodeId>, Plan)> {
    let text = std::fs::read_to_string(file).ok()?;
    let (first, rest) = text.split_once('\n')?;
    let ring = first
        .strip_prefix("ring ")?
        .split(',')
        .map(|id| id.parse().ok())
        .collect::<Option<Vec<NodeId>>>()?;
    Some((ring, Plan::decode(rest)?))
}

/// Keeps a join's plan and progress, with the future ring it was planned against.
fn save_plan(ring: &[NodeId], plan: &Plan, file: &Path) {
    let ids: Vec<String> = ring.iter().map(NodeId::to_string).collect();
    let text = format!("ring {}\n{}", ids.join(","), plan.encode());
    if let Err(e) = persist::write_atomically(file, text.as_bytes()) {
        tracing::error!(error = %e, "cannot keep the streaming progress");
    }
}

fn alive(view: &View, node: NodeId) -> bool {
    view.members
        .get(&node)
        .is_some_and(|m| m.health != Health::Dead)
}

fn record_bytes(key: &Bytes, record: &Record) -> u64 {
    (key.len()
        + record
            .value
            .as_ref()
            .map_or(0, ringcache_storage::Value::encoded_len)
        + 32) as u64
}

/// The streaming task of a node: its own join first if it is joining, then, on every ring
/// change, pulls for ranges a forgotten member left it, and the cleanup of ranges it lost.
pub async fn run(cluster: Arc<Cluster>, mut shutdown: watch::Receiver<bool>) {
    let cluster = &cluster;
    let joined = async {
        match cluster.status() {
            Status::Joining => join(cluster).await,
            Status::Ready => become_owner(cluster).await,
            Status::Normal | Status::Leaving | Status::Left => {}
        }
    };
    tokio::select! {
        () = joined => {}
        _ = shutdown.wait_for(|stop| *stop) => return,
    }
    tokio::select! {
        () = async {
            resume_takeover(cluster).await;
            follow_ring(cluster).await;
        } => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

/// Joins: waits to be in the cluster, plans (or resumes) the pulls, pulls, turns Normal.
async fn join(cluster: &Cluster) {
    let stream_file = cluster.data_dir.join(JOIN_PLAN_FILE);
    loop {
        wait_for_turn(cluster).await;
        tokio::time::sleep(JOIN_SETTLE).await;
        if !is_our_turn(cluster) {
            continue;
        }
        let view = cluster.view();
        let Some(future) = view.future.clone() else {
            continue;
        };
        let plan = match load_plan(&stream_file) {
            // Kept against the same future ring: resume it.
            Some((planned, plan)) if planned == future.members() => {
                tracing::info!(pulls = plan.pulls.len(), "resuming the join's streaming");
                plan
            }
            _ => {
                let moved = moved_ranges(&view.ring, &future, cluster.config.replication_factor);
                let is_up = |n| alive(&view, n) && cluster.is_up(n, unix_now_ms());
                let Some(plan) = Plan::for_join(&moved, cluster.local, is_up) else {
                    tracing::warn!(
                        "joining: waiting, a replica that loses a range to this node is down \
                         (it may hold writes no other replica has); bring it back or forget it"
                    );
                    tokio::time::sleep(RETRY_DELAY).await;
                    continue;
                };
                save_plan(future.members(), &plan, &stream_file);
                tracing::info!(
                    pulls = plan.pulls.len(),
                    ranges = plan.ranges_pending(),
                    joining = future.members().len() - view.ring.members().len(),
                    "joining: streaming ranges in"
                );
                plan
            }
        };
        let planned = future.members().to_vec();
        let same_future = || {
            is_our_turn(cluster)
                && cluster
                    .view()
                    .future
                    .as_ref()
                    .is_some_and(|f| f.members() == planned.as_slice())
        };
        if pull_all(cluster, plan, Some((&stream_file, &planned)), same_future).await {
            break;
        }
        // The future ring changed (another node began to join, or a node to leave): the
        // ranges and their sources changed, so the next turn plans and walks anew.
        tracing::warn!("the join was interrupted by another membership change; it starts over");
        let _ = std::fs::remove_file(&stream_file);
    }
    let _ = std::fs::remove_file(&stream_file);
    become_owner(cluster).await;
}

/// Done streaming: turns Ready, and Normal once the ring holds it, which is when no other
/// node is still joining (see `Status::Ready`).
async fn become_owner(cluster: &Cluster) {
    if cluster.status() != Status::Ready {
        cluster.set_status(Status::Ready);
        tracing::info!(
            records = cluster.streaming.records.load(Relaxed),
            bytes = cluster.streaming.bytes.load(Relaxed),
            "joined: streaming done, ready"
        );
    }
    while !cluster.view().may_turn_normal(cluster.local) {
        let changed = cluster.view_changed.notified();
        let _ = tokio::time::timeout(RETRY_DELAY, changed).await;
    }
    cluster.set_status(Status::Normal);
    tracing::info!("joined: now normal");
}

/// Whether this node may stream now: it is in the cluster, and the view lets it
/// ([`View::may_stream`]).
fn is_our_turn(cluster: &Cluster) -> bool {
    cluster.unresolved_seeds().is_empty() && cluster.view().may_stream(cluster.local)
}

/// Waits until [`is_our_turn`].
async fn wait_for_turn(cluster: &Cluster) {
    let mut waited = false;
    while !is_our_turn(cluster) {
        if !waited {
            tracing::info!(
                "joining: waiting for the cluster, or for another join or leave to finish"
            );
            waited = true;
        }
        let changed = cluster.view_changed.notified();
        let _ = tokio::time::timeout(RETRY_DELAY, changed).await;
    }
}

/// Runs every pull of `plan` to its end, keeping progress (with the future ring it was
/// planned against) in the data dir if given, while `go_on` holds; true when every pull
/// finished.
/// A source that fails is retried until it answers or is no longer a member.
async fn pull_all(
    cluster: &Cluster,
    mut plan: Plan,
    kept: Option<(&Path, &[NodeId])>,
    go_on: impl Fn() -> bool,
) -> bool {
    let mut throttle = Throttle::new(cluster.config.stream_throughput_mb);
    cluster
        .streaming
        .ranges_pending
        .fetch_add(plan.ranges_pending(), Relaxed);
    let mut i = 0;
    while i < plan.pulls.len() {
        if !go_on() {
            cluster
                .streaming
                .ranges_pending
                .fetch_sub(plan.ranges_pending(), Relaxed);
            return false;
        }
        if plan.pulls[i].done {
            i += 1;
            continue;
        }
        let source = plan.pulls[i].source;
        match pull_batch(cluster, &mut plan.pulls[i], &mut throttle).await {
            Ok(()) => {
                if plan.pulls[i].done {
                    let ranges = plan.pulls[i].ranges.len() as u64;
                    cluster.streaming.ranges_done.fetch_add(ranges, Relaxed);
                    cluster.streaming.ranges_pending.fetch_sub(ranges, Relaxed);
                }
                if let Some((dir, ring)) = kept {
                    save_plan(ring, &plan, dir);
                }
            }
            Err(e) => {
                tracing::debug!(%source, error = %e, "stream pull failed");
                let view = cluster.view();
                if !view.members.contains_key(&source) {
                    // Left or forgotten: it will not come back, and what it alone held went
                    // with it.
                    tracing::warn!(%source, "stream source is gone; its walk is given up");
                    plan.pulls[i].done = true;
                    let ranges = plan.pulls[i].ranges.len() as u64;
                    cluster.streaming.ranges_pending.fetch_sub(ranges, Relaxed);
                }
                if let Some((dir, ring)) = kept {
                    save_plan(ring, &plan, dir);
                }
                tokio::time::sleep(RETRY_DELAY).await;
            }
        }
    }
    true
}

/// One request of a pull: merges what comes back through the replica path (as streamed
/// records: not checked for skew, see [`Source::Stream`]), advances the cursor.
async fn pull_batch(
    cluster: &Cluster,
    pull: &mut Pull,
    throttle: &mut Throttle,
) -> Result<(), StreamError> {
    let message = Message::StreamRead {
        cursor: pull.cursor,
        count: STREAM_BATCH_KEYS,
        ranges: pull.ranges.clone(),
    };
    let (cursor, records) = match cluster
        .links
        .request(pull.source, &message, REQUEST_TIMEOUT)
        .await?
    {
        Response::Stream { cursor, records } => (cursor, records),
        _ => return Err(StreamError::Unexpected(pull.source)),
    };
    let mut bytes = 0;
    let mut elements = 0;
    let now = unix_now_ms();
    for (key, record) in &records {
        bytes += record_bytes(key, record);
        elements += record.cells().map_or(0, |c| c.live_count() as u64);
        match cluster.replica.apply(key, record, now, Source::Stream)? {
            Applied::Changed => {
                cluster.streaming.records_new.fetch_add(1, Relaxed);
            }
            Applied::Unchanged | Applied::Flushed | Applied::RefusedEvicted => {}
        }
    }
    cluster
        .streaming
        .records
        .fetch_add(records.len() as u64, Relaxed);
    cluster.streaming.bytes.fetch_add(bytes, Relaxed);
    cluster.streaming.elements.fetch_add(elements, Relaxed);
    pull.cursor = cursor;
    pull.done = cursor == 0;
    throttle.consumed(bytes).await;
    Ok(())
}

/// Follows ring changes: pulls the ranges a forgotten member leaves this node, and drops the
/// ranges this node no longer replicates once the ring has stayed the same for
/// [`CLEANUP_DELAY`] with no join or leave under way.
async fn follow_ring(cluster: &Arc<Cluster>) {
    let mut seen = cluster.view();
    // None: not cleaned since start (a node restarted after a ring change holds what it lost).
    let mut cleaned: Option<Arc<Ring>> = None;
    let mut ring_since = Instant::now();
    loop {
        let changed = cluster.view_changed.notified();
        let _ = tokio::time::timeout(RETRY_DELAY, changed).await;
        if cluster.status() == Status::Joining {
            // Forgotten while away: it joins again (see gossip::carry_out).
            join(cluster).await;
            cleaned = None;
        }
        let view = cluster.view();
        if !Arc::ptr_eq(&view.ring, &seen.ring) {
            take_over_forgotten(cluster, &seen, &view).await;
            ring_since = Instant::now();
        }
        seen = view.clone();
        let quiet = view.future.is_none()
            && cluster.status() == Status::Normal
            && cluster.unresolved_seeds().is_empty();
        let cleaned_this = cleaned.as_ref().is_some_and(|c| Arc::ptr_eq(c, &view.ring));
        if quiet && ring_since.elapsed() >= CLEANUP_DELAY && !cleaned_this {
            let worker = cluster.clone();
            let ring = view.ring.clone();
            let done = tokio::task::spawn_blocking(move || cleanup(&worker, &ring)).await;
            if matches!(done, Ok(true)) {
                cleaned = Some(view.ring.clone());
            }
        }
    }
}

/// When owners disappear without having left (`RING FORGET`), the nodes that become
/// replicas of their ranges pull those ranges from every other old replica (one down is
/// waited for: a write it alone acknowledged is on no other node).
async fn take_over_forgotten(cluster: &Cluster, before: &View, after: &View) {
    let forgotten: Vec<NodeId> = before
        .ring
        .members()
        .iter()
        .copied()
        .filter(|n| !after.ring.members().contains(n))
        // A node that left by decommission pushed its ranges; one that died, even in the
        // middle of leaving, and was forgotten did not.
        .filter(|n| {
            before
                .members
                .get(n)
                .is_some_and(|m| m.status != Status::Leaving || m.health == Health::Dead)
        })
        .collect();
    if forgotten.is_empty() || cluster.status() != Status::Normal {
        return;
    }
    let moved = moved_ranges(&before.ring, &after.ring, cluster.config.replication_factor);
    let plan = Plan::takeover(&moved, cluster.local, &forgotten);
    if plan.pulls.is_empty() {
        return;
    }
    tracing::info!(
        ?forgotten,
        pulls = plan.pulls.len(),
        "taking over a forgotten member's ranges"
    );
    let file = cluster.data_dir.join(TAKEOVER_PLAN_FILE);
    save_plan(after.ring.members(), &plan, &file);
    pull_all(cluster, plan, Some((&file, after.ring.members())), || true).await;
    let _ = std::fs::remove_file(&file);
}

/// Finishes a take-over that a crash cut short (its plan kept in the data dir).
async fn resume_takeover(cluster: &Cluster) {
    let file = cluster.data_dir.join(TAKEOVER_PLAN_FILE);
    let Some((ring, plan)) = load_plan(&file) else {
        return;
    };
    tracing::info!(
        pulls = plan.pulls.len(),
        "resuming the take-over of a forgotten member's ranges"
    );
    pull_all(cluster, plan, Some((&file, &ring)), || true).await;
    let _ = std::fs::remove_file(&file);
}

/// Drops every record whose key this node no longer replicates in `ring`.
/// Stops, returning false, as soon as the ring changes or a join or leave begins: a range
/// this node is about to take (a decommissioned node pushing it here) must not be dropped.
fn cleanup(cluster: &Cluster, ring: &Arc<Ring>) -> bool {
    let store = &cluster.replica.store;
    let n = cluster.config.replication_factor;
    let now = unix_now_ms();
    let mut cursor = 0;
    let mut dropped = 0u64;
    loop {
        let mut foreign = Vec::new();
        cursor = store.scan(cursor, 4096, now, &mut |key, _| {
            if !ring
                .preference_list(key_token(key), n)
                .contains(&cluster.local)
            {
                foreign.push(key.clone());
            }
        });
        for key in foreign {
            let view = cluster.view();
            if !Arc::ptr_eq(&view.ring, ring) || view.future.is_some() {
                tracing::info!(dropped, "cleanup stopped: the ring is changing");
                cluster
                    .streaming
                    .records_discarded
                    .fetch_add(dropped, Relaxed);
                return false;
            }
            match store.discard(&key) {
                Ok(true) => dropped += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cleanup stopped: cannot drop a record");
                    cluster
                        .streaming
                        .records_discarded
                        .fetch_add(dropped, Relaxed);
                    return false;
                }
            }
        }
        if cursor == 0 {
            break;
        }
    }
    cluster
        .streaming
        .records_discarded
        .fetch_add(dropped, Relaxed);
    if dropped > 0 {
        tracing::info!(
            dropped,
            "dropped the records of ranges this node no longer replicates"
        );
    }
    true
}

/// `RING DECOMMISSION`: turns Leaving, pushes every range this node replicates to the node
/// that takes it, turns Left and stops the process. Refused when the ring would keep fewer
/// nodes than replicas, when a join or leave is under way, or when this node is not Normal.
///
/// # Errors
/// Why it was refused (nothing done) or stopped (the node stays normal); the text is the
/// command's error reply.
pub async fn decommission(cluster: &Cluster) -> Result<(), DecommissionError> {
    let view = cluster.view();
    let rf = cluster.config.replication_factor;
    view.may_leave(cluster.status(), rf)?;
    let moved = view.moves_if_leaving(cluster.local, rf, cluster.config.vnodes);
    cluster.set_status(Status::Leaving);
    spread_now(cluster).await;
    tracing::info!(ranges = moved.len(), "leaving: streaming ranges out");
    if let Err(e) = push_all(cluster, &moved).await {
        cluster.set_status(Status::Normal);
        spread_now(cluster).await;
        return Err(e.into());
    }
    drain_hints(cluster).await;
    cluster.set_status(Status::Left);
    spread_now(cluster).await;
    tracing::info!("decommissioned: left the cluster; stopping");
    Ok(())
}

/// Gives the hints this node keeps for others time to be replayed before it leaves (they go
/// with it otherwise; read repair and anti-entropy would be left to fix what they carried).
async fn drain_hints(cluster: &Cluster) {
    let deadline = Instant::now() + HINT_DRAIN_MAX;
    while cluster.hints_pending().0 > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (left, _) = cluster.hints_pending();
    if left > 0 {
        tracing::warn!(
            left,
            "leaving with hints not delivered (their targets are down)"
        );
    }
}

/// Spreads this node's new status by push-pull with a few members, then gives gossip time.
async fn spread_now(cluster: &Cluster) {
    let mut peers: Vec<String> = cluster
        .view()
        .members
        .values()
        .filter(|m| m.id != cluster.local && m.health != Health::Dead)
        .map(|m| m.addr.to_string())
        .collect();
    // A few at random: gossip carries it to the rest.
    let start = (rand::random::<u64>() as usize) % peers.len().max(1);
    peers.rotate_left(start);
    for peer in peers.iter().take(3) {
        let _ = cluster.push_pull(peer).await;
    }
    tokio::time::sleep(STATUS_SETTLE).await;
}

/// Pushes the records of every range this node loses to the nodes that gain it.
async fn push_all(cluster: &Cluster, moved: &[Moved]) -> Result<(), StreamError> {
    let mut by_target: BTreeMap<NodeId, Vec<(u64, u64)>> = BTreeMap::new();
    for m in moved.iter().filter(|m| m.losers().contains(&cluster.local)) {
        for target in m.gainers() {
            by_target.entry(target).or_default().push((m.first, m.last));
        }
    }
    let total: u64 = by_target.values().map(|r| r.len() as u64).sum();
    cluster.streaming.ranges_pending.fetch_add(total, Relaxed);
    let mut throttle = Throttle::new(cluster.config.stream_throughput_mb);
    let mut left = total;
    for (target, ranges) in by_target {
        if let Err(e) = push_to(cluster, target, &ranges, &mut throttle).await {
            // The decommission stops: nothing is pending any more.
            cluster.streaming.ranges_pending.fetch_sub(left, Relaxed);
            return Err(e);
        }
        let done = ranges.len() as u64;
        cluster.streaming.ranges_done.fetch_add(done, Relaxed);
        cluster.streaming.ranges_pending.fetch_sub(done, Relaxed);
        left -= done;
    }
    Ok(())
}

/// Walks the local store and writes every record in `ranges` to `target`, a batch at a
/// time, each batch retried a few times.
async fn push_to(
    cluster: &Cluster,
    target: NodeId,
    ranges: &[(u64, u64)],
    throttle: &mut Throttle,
) -> Result<(), StreamError> {
    const ATTEMPTS: usize = 5;
    let mut cursor = 0;
    loop {
        let batch = PUSH_BATCH_RECORDS as u32;
        let (next, records) = cluster
            .replica
            .read_ranges(cursor, batch, ranges, unix_now_ms());
        let bytes: u64 = records.iter().map(|(k, r)| record_bytes(k, r)).sum();
        let mut attempt = 0;
        while !send_records(&cluster.links, target, &records).await {
            attempt += 1;
            if attempt == ATTEMPTS {
                return Err(StreamError::NotTaken(target));
            }
            tokio::time::sleep(RETRY_DELAY).await;
        }
        cluster
            .streaming
            .records
            .fetch_add(records.len() as u64, Relaxed);
        cluster.streaming.bytes.fetch_add(bytes, Relaxed);
        throttle.consumed(bytes).await;
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}
