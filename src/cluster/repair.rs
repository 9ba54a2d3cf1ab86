//! Anti-entropy at run time: rounds of Merkle repair (the sessions of
//! [`ringcache_cluster::repair`]) run over the peer links, by a scheduler and by `RING REPAIR`;
//! what each range's last complete round was, kept in `data_dir/repair`; and the tombstone
//! horizon that follows from it.
//!
//! Each range is repaired by its first replica that is up, at least every
//! `--repair-interval-s`. A round that reached every replica of a range is announced to them
//! ([`Message::RepairDone`]) with its start time; every replica then may drop a tombstone of
//! that range older than the start time minus the clock offset and the longest a write can
//! still be on its way (write timeout, hint window): every replica holds the tombstone by
//! then, and no older write can arrive after it is gone. See docs/cluster.md, "Anti-entropy".

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use ringcache_cluster::membership::Status;
use ringcache_cluster::protocol::Message;
use ringcache_cluster::repair::{RangeId, RepairHistory, Reply, Round, Session, Taken, my_ranges};
use ringcache_cluster::{NodeId, Ring, TokenRange};
use ringcache_storage::{Record, TombstoneHorizon, key_token};

use super::link::Inbox;
use super::streaming::Throttle;
use super::{Cluster, Response, persist};
use crate::node::{Node, unix_now_ms};

/// Where the last complete round of each range is kept, in the data dir.
const REPAIR_FILE: &str = "repair";
/// How often the scheduler looks for ranges due.
const SCHEDULE_TICK: Duration = Duration::from_secs(1);
/// How soon a range a round could not repair (a replica down) is tried again, at most.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// A repair request not answered within this fails its session.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Above this share of `maxmemory`, a node takes no value from repair for a key it does not
/// hold (it evicted it): repair would refill what eviction empties, in a loop.
const EVICTED_REFILL_LIMIT: f64 = 0.95;

/// Counters of anti-entropy, for INFO and the metrics.
#[derive(Debug, Default)]
pub struct RepairStats {
    /// Rounds finished (whether or not every range was repaired).
    pub rounds: AtomicU64,
    /// Rounds that left some range unrepaired (a replica down or unreachable).
    pub rounds_incomplete: AtomicU64,
    /// Ranges repaired with every replica.
    pub ranges_repaired: AtomicU64,
    /// Ranges the running round covers and has not finished; 0 when none runs.
    pub ranges_in_progress: AtomicU64,
    /// Single Merkle leaves found different.
    pub leaves_differing: AtomicU64,
    /// Keys compared by version.
    pub keys_compared: AtomicU64,
    /// Records pulled from peers that changed this store.
    pub keys_pulled: AtomicU64,
    /// Records this node pushed to peers.
    pub keys_pushed: AtomicU64,
    /// Records peers pushed here that changed this store.
    pub keys_received: AtomicU64,
    /// Values refused because this node evicted the key and is above the limit.
    pub keys_refused_evicted: AtomicU64,
    /// Bytes of repair requests and answers this node's rounds sent and received.
    pub bytes: AtomicU64,
    /// How long the last round took, ms.
    pub last_round_ms: AtomicU64,
    /// Peers' repair requests refused as over their bounds.
    pub requests_refused: AtomicU64,
}

impl RepairStats {
    /// Counts a finished round.
    fn count(&self, report: &RoundReport) {
        self.rounds.fetch_add(1, Relaxed);
        if report.repaired < report.ranges {
            self.rounds_incomplete.fetch_add(1, Relaxed);
        }
        self.ranges_in_progress.store(0, Relaxed);
        self.last_round_ms.store(report.elapsed_ms, Relaxed);
        let s = &report.stats;
        for (counter, value) in [
            (&self.ranges_repaired, report.repaired as u64),
            (&self.leaves_differing, s.leaves_differing),
            (&self.keys_compared, s.keys_compared),
            (&self.keys_pulled, s.keys_pulled),
            (&self.keys_pushed, s.keys_pushed),
            (&self.bytes, s.bytes),
        ] {
            counter.fetch_add(value, Relaxed);
        }
    }

    /// Each counter with its name (after `repair_` in INFO, `ringcache_repair_` in the
    /// metrics).
    pub fn named(&self) -> [(&'static str, u64); 13] {
        [
            ("rounds", self.rounds.load(Relaxed)),
            ("rounds_incomplete", self.rounds_incomplete.load(Relaxed)),
            ("ranges_repaired", self.ranges_repaired.load(Relaxed)),
            ("ranges_in_progress", self.ranges_in_progress.load(Relaxed)),
            ("leaves_differing", self.leaves_differing.load(Relaxed)),
            ("keys_compared", self.keys_compared.load(Relaxed)),
            ("keys_pulled", self.keys_pulled.load(Relaxed)),
            ("keys_pushed", self.keys_pushed.load(Relaxed)),
            ("keys_received", self.keys_received.load(Relaxed)),
            (
                "keys_refused_evicted",
                self.keys_refused_evicted.load(Relaxed),
            ),
            ("bytes", self.bytes.load(Relaxed)),
            ("last_round_ms", self.last_round_ms.load(Relaxed)),
            ("requests_refused", self.requests_refused.load(Relaxed)),
        ]
    }
}

/// The anti-entropy state of a node.
#[derive(Debug)]
pub struct RepairState {
    file: PathBuf,
    history: Mutex<RepairHistory>,
    /// One round at a time: `RING REPAIR` waits for a scheduled round and the other way round.
    running: tokio::sync::Mutex<()>,
    /// When this node started: a range never repaired is due one interval after it.
    started_ms: u64,
    /// Counters.
    pub stats: RepairStats,
}

/// What one round did, for `RING REPAIR`'s reply.
#[derive(Debug, Clone, Default)]
pub struct RoundReport {
    /// Ranges the round covered.
    pub ranges: usize,
    /// Ranges repaired with every replica.
    pub repaired: usize,
    /// Figures summed over its sessions.
    pub stats: ringcache_cluster::repair::RepairStats,
    /// Wall time, ms.
    pub elapsed_ms: u64,
}

impl RoundReport {
    /// One line: `ranges=… repaired=… leaves_differing=… keys_pulled=… …`.
    pub fn line(&self) -> String {
        let s = &self.stats;
        format!(
            "ranges={} repaired={} leaves_differing={} keys_compared={} keys_pulled={} keys_pushed={} keys_refused={} bytes={} ms={}",
            self.ranges,
            self.repaired,
            s.leaves_differing,
            s.keys_compared,
            s.keys_pulled,
            s.keys_pushed,
            s.keys_refused,
            s.bytes,
            self.elapsed_ms
        )
    }
}

impl RepairState {
    /// The state kept in `data_dir` (none yet: nothing repaired).
    pub fn open(data_dir: &Path) -> RepairState {
        let file = data_dir.join(REPAIR_FILE);
        RepairState {
            history: Mutex::new(RepairHistory::decode(
                &std::fs::read_to_string(&file).unwrap_or_default(),
            )),
            file,
            running: tokio::sync::Mutex::new(()),
            started_ms: unix_now_ms(),
            stats: RepairStats::default(),
        }
    }

    /// Records that `ranges` (as a round saw them) were repaired with every replica by a
    /// round that started at `started_ms`, and keeps it in the data dir.
    fn record(&self, ring: &Ring, n: usize, me: NodeId, ranges: &[RangeId], started_ms: u64) {
        let mut history = self.history.lock();
        if !history.record(ring, n, me, ranges, started_ms) {
            return;
        }
        let text = history.encode();
        drop(history);
        if let Err(e) = persist::write_atomically(&self.file, text.as_bytes()) {
            tracing::error!(error = %e, "cannot keep the repair times");
        }
    }

    fn last_repair(&self, range: &TokenRange, replicas: &[NodeId]) -> Option<u64> {
        self.history.lock().last_repair(range, replicas)
    }

    /// Drops what was recorded (the store was emptied: nothing here was repaired).
    pub fn forget_all(&self) {
        self.history.lock().clear();
        let _ = persist::write_atomically(&self.file, b"");
    }
}

/// Before when tombstones may be dropped, per range this node replicates: the start of the
/// range's last complete round, less the clock offset tolerated and the longest a write can
/// be on its way (a write's timeout, or a hint's window). Tokens of ranges never repaired
/// with their current replicas keep every tombstone.
pub fn tombstone_horizon(cluster: &Cluster) -> TombstoneHorizon {
    let config = &cluster.config;
    let in_flight = config.write_timeout_ms.max(config.hint_window_ms);
    let margin_ms = config.max_clock_offset_ms + in_flight;
    let ring = cluster.ring();
    cluster.repair.history.lock().horizon(
        &ring,
        config.replication_factor,
        cluster.local,
        margin_ms,
        unix_now_ms(),
    )
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
pub async fn run(node: Arc<Node>) {
    let cluster = node.cluster.get().expect("cluster");
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
            let report = run_round(&node, due).await;
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
fn cannot_repair(cluster: &Cluster) -> Option<&'static str> {
    let view = cluster.view();
    let moving = cluster.status() != Status::Normal
        || view.future.is_some()
        || view
            .members
            .values()
            .any(|m| !matches!(m.status, Status::Normal | Status::Left));
    if moving {
        return Some("ERR a member is joining or leaving; repair once the ring is still");
    }
    if cluster.clock_skew().is_some() {
        return Some("ERR this node's clock is off from its peers' (see INFO clock_offset_ms)");
    }
    None
}

/// `RING REPAIR [ALL | key]`: one round now over every range this node replicates, or over
/// the range holding `key`.
///
/// # Errors
/// When the ring is moving, or this node holds no replica of the key.
pub async fn repair_now(node: &Arc<Node>, key: Option<&Bytes>) -> Result<RoundReport, String> {
    let cluster = node.cluster.get().expect("cluster");
    if let Some(why) = cannot_repair(cluster) {
        return Err(why.into());
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
                return Err(
                    "ERR this node holds no replica of the key; run it on one of RING REPLICAS key"
                        .into(),
                );
            }
            found
        }
    };
    Ok(run_round(node, ranges).await)
}

/// Runs one round over `ranges`: a session with each other replica, then announces the
/// ranges repaired with every replica to them and records them here. A round whose ring
/// changes under it (a join, a leave, a forget) stops and repairs nothing: its ranges and
/// replicas are not the ring's any more.
async fn run_round(node: &Arc<Node>, ranges: Vec<TokenRange>) -> RoundReport {
    let cluster = node.cluster.get().expect("cluster");
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
        let outcome = run_session(node, &ring, peer, &spans, &mut throttle).await;
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
            let _ = request(cluster, peer, &message).await;
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
    node: &Arc<Node>,
    ring: &Arc<Ring>,
    peer: NodeId,
    spans: &[(u64, u64)],
    throttle: &mut Throttle,
) -> Option<(ringcache_cluster::repair::RepairStats, bool)> {
    let cluster = node.cluster.get().expect("cluster");
    let mut session = Session::new(spans, tombstone_horizon(cluster));
    loop {
        if !still(cluster, ring) {
            return None;
        }
        let before = session.stats().bytes;
        // The local side of each step walks the store: off the async workers.
        let worker = node.clone();
        let (back, request) = tokio::task::spawn_blocking(move || {
            let request = session.next_request(worker.store.as_ref(), unix_now_ms());
            (session, request)
        })
        .await
        .ok()?;
        session = back;
        let Some(request) = request else {
            break;
        };
        let reply = request_reply(cluster, peer, &request).await?;
        // What a peer sends is merged only while the ring is the one the session compares.
        if !still(cluster, ring) {
            return None;
        }
        let worker = node.clone();
        let (back, fitted) = tokio::task::spawn_blocking(move || {
            let cluster = worker.cluster.get().expect("cluster");
            let fitted = session.on_reply(
                reply,
                worker.store.as_ref(),
                unix_now_ms(),
                &mut |key, record| take_record(&worker, cluster, key, record),
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
async fn request_reply(cluster: &Cluster, peer: NodeId, message: &Message) -> Option<Reply> {
    match request(cluster, peer, message).await? {
        Response::Repair(reply) => Some(reply),
        Response::Stream { cursor, records } => Some(Reply::Records {
            records,
            rest_from: cursor,
        }),
        Response::Ack => Some(Reply::Ack),
        _ => None,
    }
}

async fn request(cluster: &Cluster, peer: NodeId, message: &Message) -> Option<Response> {
    let link = cluster.link(peer)?;
    let answers = Inbox::new();
    let id = link
        .request(cluster.request_id(), message, peer, answers.clone())
        .ok()?;
    let answer = tokio::time::timeout(REQUEST_TIMEOUT, answers.recv()).await;
    link.cancel(id);
    match answer {
        Ok((_, Response::Failed)) | Err(_) => None,
        Ok((_, response)) => Some(response),
    }
}

/// Merges a record that repair brought (pulled from a peer, or pushed by one). Refused: a
/// value for a key this node does not hold while it is above [`EVICTED_REFILL_LIMIT`] of
/// `maxmemory` (it evicted the key; taking it back would only evict another). A tombstone is
/// always taken.
pub fn take_record(node: &Node, cluster: &Cluster, key: &Bytes, record: &Record) -> Taken {
    if !cluster.survives_flush(record) {
        return Taken::Unchanged;
    }
    let now = unix_now_ms();
    let maxmemory = node.config.read().maxmemory_bytes;
    if maxmemory > 0
        && node.store.used_bytes() as f64 > maxmemory as f64 * EVICTED_REFILL_LIMIT
        && record.is_live(now)
        && node.store.peek(key, now).is_none()
    {
        cluster
            .repair
            .stats
            .keys_refused_evicted
            .fetch_add(1, Relaxed);
        return Taken::Refused;
    }
    node.clock.observe(record.version());
    match node.store.merge(key, record) {
        Ok(true) => Taken::Changed,
        Ok(false) => Taken::Unchanged,
        Err(e) => {
            tracing::warn!(error = %e, "the store refused a repaired record");
            Taken::Failed
        }
    }
}

/// Answers a peer's [`Message::RepairWrite`] and [`Message::RepairDone`]. A write the store
/// could not take fails the whole answer (the peer's session fails, so the range does not
/// count as repaired); a round start ahead of this node's clock by more than the tolerated
/// offset is refused (it would let tombstones go early).
pub fn answer_write(node: &Node, message: Message) -> Message {
    let cluster = node.cluster.get().expect("cluster");
    match message {
        Message::RepairWrite { records } => {
            for (key, record) in &records {
                match take_record(node, cluster, key, record) {
                    Taken::Changed => {
                        cluster.repair.stats.keys_received.fetch_add(1, Relaxed);
                    }
                    Taken::Unchanged | Taken::Refused => {}
                    Taken::Failed => {
                        return Message::Error {
                            text: "ERR the store could not take a repaired record".into(),
                        };
                    }
                }
            }
            Message::WriteAck
        }
        Message::RepairDone { started_ms, ranges } => {
            let now = unix_now_ms();
            let max_offset = cluster.config.max_clock_offset_ms;
            if started_ms > now + max_offset {
                cluster.repair.stats.requests_refused.fetch_add(1, Relaxed);
                return Message::Error {
                    text: format!(
                        "ERR a repair round that started {} ms ahead of this node's clock",
                        started_ms - now
                    ),
                };
            }
            let ring = cluster.ring();
            let n = cluster.config.replication_factor;
            cluster
                .repair
                .record(&ring, n, cluster.local, &ranges, started_ms);
            Message::WriteAck
        }
        _ => Message::Error {
            text: "not a repair write".into(),
        },
    }
}
