//! Anti-entropy at run time: rounds of Merkle repair (the sessions of
//! [`ringcache_cluster::repair`]) run over the peer links, by a scheduler and by `RING REPAIR`;
//! and what follows from each range's last complete round ([`super::repair_state`]): the
//! tombstone horizon, `RING REPAIR STATUS`, the ages INFO shows. The replica side of a
//! peer's round (its writes and announcements) is answered by [`super::server`].
//!
//! Each range is repaired by its first replica that is up, at least every
//! `--repair-interval-s`. A round that reached every replica of a range is announced to them
//! ([`Message::RepairDone`]) with its start time; every replica then may drop a tombstone of
//! that range older than the start time minus the clock offset and the longest a write can
//! still be on its way (write timeout, hint window): every replica holds the tombstone by
//! then, and no older write can arrive after it is gone. See docs/cluster.md, "Anti-entropy".

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use ringcache_cluster::protocol::Message;
use ringcache_cluster::repair::{Reply, Round, Session, my_ranges};
use ringcache_cluster::{NodeId, Ring, TokenRange};
use ringcache_storage::{TombstoneHorizon, key_token};

use super::error::{RepairRefusal, RequestError};
use super::link::Response;
use super::repair_state::{RoundReport, take_record};
use super::state::Cluster;
use super::throttle::Throttle;
use crate::clock::unix_now_ms;
use crate::config::Config;
/// How often the scheduler looks for ranges due.
const SCHEDULE_TICK: Duration = Duration::from_secs(1);
/// How soon a range a round could not repair (a replica down) is tried again, at most.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// A repair request not answered within this fails its session.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Before when tombstones may be dropped, per range this node replicates
/// ([`super::repair_state::RepairState::tombstone_horizon`]).
pub fn tombstone_horizon(cluster: &Cluster) -> TombstoneHorizon {
    let ring = cluster.ring();
    cluster
        .repair
        .tombstone_horizon(&ring, &cluster.config, cluster.local, unix_now_ms())
}

/// One line per range this node replicates: `first last age_s replicas` (age `-` if the range
/// was never repaired with its current replicas), for `RING REPAIR STATUS`.
pub fn status_lines(cluster: &Cluster) -> Vec<String> {
    let ring = cluster.ring();
    let now = unix_now_ms();
    my_ranges(&ring, cluster.config.replication_factor, cluster.local)
        .into_iter()
        .map(|(range, replicas)| {
            let age = cluster
                .repair
                .last_repair(&range, &replicas)
                .map_or("-".to_string(), |at| {
                    (now.saturating_sub(at) / 1000).to_string()
                });
            let ids: Vec<String> = replicas.iter().map(NodeId::to_string).collect();
            format!(
                "{:016x} {:016x} {age} {}",
                range.start.wrapping_add(1),
                range.end,
                ids.join(",")
            )
        })
        .collect()
}

/// How current the repairs of the ranges this node replicates are (per range: `RING REPAIR
/// STATUS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ages {
    /// Ranges this node replicates.
    pub ranges: usize,
    /// Of those, never repaired with their current replicas.
    pub never: usize,
    /// Of those, last repaired longer ago than `--repair-interval-s`.
    pub overdue: usize,
    /// The age in seconds of the oldest repair among the repaired ones.
    pub oldest_s: u64,
}

/// See [`Ages`].
pub fn ages(cluster: &Cluster) -> Ages {
    let ring = cluster.ring();
    let now = unix_now_ms();
    let interval_s = cluster.config.repair_interval_s;
    let mine = my_ranges(&ring, cluster.config.replication_factor, cluster.local);
    let mut ages = Ages {
        ranges: mine.len(),
        ..Ages::default()
    };
    for (range, replicas) in &mine {
        match cluster.repair.last_repair(range, replicas) {
            None => ages.never += 1,
            Some(at) => {
                let age_s = now.saturating_sub(at) / 1000;
                ages.oldest_s = ages.oldest_s.max(age_s);
                ages.overdue += usize::from(age_s > interval_s);
            }
        }
    }
    ages
}

/// The scheduler: every range this node is the first live replica of is repaired once it is
/// `--repair-interval-s` old (never-repaired ones count from this node's start). A range a
/// round could not repair (a replica down) is tried again after [`RETRY_AFTER`] or the
/// interval, whichever is shorter, not at every tick.
///
/// `config` is read for `maxmemory` (repair's eviction rule, [`take_record`]).
pub async fn run(cluster: Arc<Cluster>, config: Arc<RwLock<Config>>) {
    let cluster = &cluster;
    let interval_ms = cluster.config.repair_interval_s.saturating_mul(1000);
    let retry_ms = interval_ms.min(RETRY_AFTER.as_millis() as u64);
    // By range end: when a round last tried it.
    let mut tried: HashMap<u64, u64> = HashMap::new();
    loop {
        let jitter = rand::random::<u64>() % 500;
        tokio::time::sleep(SCHEDULE_TICK + Duration::from_millis(jitter)).await;
        if !settled(cluster) {
            continue;
        }
        let now = unix_now_ms();
        let ring = cluster.ring();
        let mine = my_ranges(&ring, cluster.config.replication_factor, cluster.local);
        tried.retain(|end, _| mine.iter().any(|(range, _)| range.end == *end));
        let due: Vec<TokenRange> = mine
            .into_iter()
            .filter(|(range, replicas)| {
                let first_up = ring
                    .preference_list(range.end, replicas.len())
                    .iter()
                    .copied()
                    .find(|&n| cluster.is_up(n, now));
                let last = cluster
                    .repair
                    .last_repair(range, replicas)
                    .unwrap_or(cluster.repair.started_ms);
                let last_try = tried.get(&range.end).copied().unwrap_or(0);
                first_up == Some(cluster.local)
                    && now.saturating_sub(last) >= interval_ms
                    && now.saturating_sub(last_try) >= retry_ms
            })
            .map(|(range, _)| range)
            .collect();
        if !due.is_empty() {
            for range in &due {
                tried.insert(range.end, now);
            }
            let report = run_round(cluster, &config, due).await;
            tracing::info!(report = %report.line(), "scheduled repair round");
        }
    }
}

/// Whether the ring is still enough to repair: this node is a normal member and no member
/// joins or leaves (ranges are moving then, and streaming brings them together).
fn settled(cluster: &Cluster) -> bool {
    cannot_repair(cluster).is_none()
}

/// Why no round may run now, if one may not: the ring is moving (this node not normal, or a
/// member joining or leaving), or this node's clock is off from its peers' by more than
/// tolerated (a round's start time is what lets tombstones go).
fn cannot_repair(cluster: &Cluster) -> Option<RepairRefusal> {
    if !cluster.view().is_still(cluster.status()) {
        return Some(RepairRefusal::RingMoving);
    }
    if cluster.clock_skew().is_some() {
        return Some(RepairRefusal::ClockSkew);
    }
    None
}

/// `RING REPAIR [ALL | key]`: one round now over every range this node replicates, or over
/// the range holding `key`.
///
/// `config` is read for `maxmemory` (repair's eviction rule, [`take_record`]).
///
/// # Errors
/// When the ring is moving, or this node holds no replica of the key: nothing was compared.
pub async fn repair_now(
    cluster: &Arc<Cluster>,
    config: &Arc<RwLock<Config>>,
    key: Option<&Bytes>,
) -> Result<RoundReport, RepairRefusal> {
    if let Some(why) = cannot_repair(cluster) {
        return Err(why);
    }
    let ring = cluster.ring();
    let mine = my_ranges(&ring, cluster.config.replication_factor, cluster.local);
    let ranges: Vec<TokenRange> = match key {
        None => mine.into_iter().map(|(range, _)| range).collect(),
        Some(key) => {
            let token = key_token(key);
            let found: Vec<TokenRange> = mine
                .into_iter()
                .map(|(range, _)| range)
                .filter(|range| range.contains(token))
                .collect();
            if found.is_empty() {
                return Err(RepairRefusal::NotAReplica);
            }
            found
        }
    };
    Ok(run_round(cluster, config, ranges).await)
}

/// Runs one round over `ranges`: a session with each other replica, then announces the
/// ranges repaired with every replica to them and records them here. A round whose ring
/// changes under it (a join, a leave, a forget) stops and repairs nothing: its ranges and
/// replicas are not the ring's any more.
async fn run_round(
    cluster: &Arc<Cluster>,
    config: &Arc<RwLock<Config>>,
    ranges: Vec<TokenRange>,
) -> RoundReport {
    let _one_at_a_time = cluster.repair.running.lock().await;
    let started = std::time::Instant::now();
    let ring = cluster.ring();
    let n = cluster.config.replication_factor;
    let stats = &cluster.repair.stats;
    stats.ranges_in_progress.store(ranges.len() as u64, Relaxed);
    let mut round = Round::new(&ring, cluster.local, n, ranges, unix_now_ms());
    let mut throttle = Throttle::new(cluster.config.repair_throughput_mb);
    let mut moved = false;
    while let Some((peer, spans)) = round.next_session() {
        let outcome = run_session(cluster, config, &ring, peer, &spans, &mut throttle).await;
        if outcome.is_none() {
            tracing::warn!(%peer, "repair session failed; its ranges stay unrepaired this round");
        }
        round.session_done(peer, outcome);
        moved |= !still(cluster, &ring);
    }
    let repaired = if moved {
        tracing::info!("the ring changed during a repair round: nothing counts as repaired");
        Vec::new()
    } else {
        round.repaired_ids()
    };
    if !moved {
        for (peer, ranges) in round.announcements() {
            let message = Message::RepairDone {
                started_ms: round.started_ms,
                ranges,
            };
            // A replica that misses this keeps its tombstones longer: safe, and the next round
            // tells it again.
            let _ = cluster.links.request(peer, &message, REQUEST_TIMEOUT).await;
        }
        cluster
            .repair
            .record(&ring, n, cluster.local, &repaired, round.started_ms);
    }
    let report = RoundReport {
        ranges: round.range_count(),
        repaired: repaired.len(),
        stats: *round.stats(),
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    stats.count(&report);
    report
}

/// Whether the ring is still `ring` and no member joins or leaves.
fn still(cluster: &Cluster, ring: &Arc<Ring>) -> bool {
    let now = cluster.ring();
    settled(cluster) && (Arc::ptr_eq(&now, ring) || now.tokens() == ring.tokens())
}

/// One session with `peer`: its figures and whether it compared every key, or `None` if it
/// failed (no link, a timeout, an answer that did not fit, the local store failing, the ring
/// moving away from `ring`).
async fn run_session(
    cluster: &Arc<Cluster>,
    config: &Arc<RwLock<Config>>,
    ring: &Arc<Ring>,
    peer: NodeId,
    spans: &[(u64, u64)],
    throttle: &mut Throttle,
) -> Option<(ringcache_cluster::repair::RepairStats, bool)> {
    let mut session = Session::new(spans, tombstone_horizon(cluster));
    loop {
        if !still(cluster, ring) {
            return None;
        }
        let before = session.stats().bytes;
        // The local side of each step walks the store: off the async workers.
        let worker = cluster.clone();
        let (back, request) = tokio::task::spawn_blocking(move || {
            let request = session.next_request(worker.replica.store.as_ref(), unix_now_ms());
            (session, request)
        })
        .await
        .ok()?;
        session = back;
        let Some(request) = request else {
            break;
        };
        let reply = request_reply(cluster, peer, &request).await.ok()?;
        // What a peer sends is merged only while the ring is the one the session compares.
        if !still(cluster, ring) {
            return None;
        }
        let worker = cluster.clone();
        let maxmemory_bytes = config.read().maxmemory_bytes;
        let (back, fitted) = tokio::task::spawn_blocking(move || {
            let (replica, repair) = (&worker.replica, &worker.repair);
            let fitted = session.on_reply(
                reply,
                replica.store.as_ref(),
                unix_now_ms(),
                &mut |key, record| take_record(replica, repair, key, record, maxmemory_bytes),
            );
            (session, fitted)
        })
        .await
        .ok()?;
        session = back;
        fitted.ok()?;
        throttle.consumed(session.stats().bytes - before).await;
    }
    Some((*session.stats(), session.is_complete()))
}

/// Sends one repair request and waits for its answer.
///
/// # Errors
/// No answer, or one that is not a repair answer ([`RequestError::Failed`]).
async fn request_reply(
    cluster: &Cluster,
    peer: NodeId,
    message: &Message,
) -> Result<Reply, RequestError> {
    match cluster
        .links
        .request(peer, message, REQUEST_TIMEOUT)
        .await?
    {
        Response::Repair(reply) => Ok(reply),
        Response::Stream { cursor, records } => Ok(Reply::Records {
            records,
            rest_from: cursor,
        }),
        Response::Ack => Ok(Reply::Ack),
        _ => Err(RequestError::Failed(peer)),
    }
}
