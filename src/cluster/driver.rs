//! The coordinator at run time: runs the rounds of [`ringcache_cluster::coordinator`] over
//! real links, the local replica in-process through the same replica path a peer's request
//! takes ([`super::replica`]). [`read()`] and [`write()`] are what a key command calls.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use bytes::Bytes;
use ringcache_cluster::NodeId;
use ringcache_cluster::coordinator::{Effect, Need, QuorumError, ReadRound, Target, WriteRound};
use ringcache_cluster::protocol::Message;
use ringcache_resp::Level;
use ringcache_storage::{Record, key_token};

use super::link::{InFlight, Inbox, Responder, Response};
use super::replica::{Replica, Source};
use super::state::Cluster;
use super::stats::{OP_READ, OP_WRITE, RoundStats, level_index, outcome_index};
use crate::clock::{monotonic_ms, unix_now_ms};
use crate::stats::latency_bucket;

/// A read replica that has not answered after this share of the timeout makes the round ask
/// another one (speculative retry).
const SPECULATE_DIVISOR: u64 = 4;

/// A round of either kind.
enum Round {
    Read(ReadRound),
    Write(WriteRound),
}

impl Round {
    fn on_response(&mut self, from: NodeId, response: Response) -> Vec<Effect> {
        match (self, response) {
            (Round::Read(r), Response::Record(record)) => r.on_reply(from, record),
            (Round::Read(r), Response::Ack) => r.on_ack(from),
            (Round::Write(w), Response::Ack) => w.on_ack(from),
            (Round::Read(r), _) => r.on_failure(from),
            (Round::Write(w), _) => w.on_failure(from),
        }
    }

    fn on_tick(&mut self, now_ms: u64) -> Vec<Effect> {
        match self {
            Round::Read(r) => r.on_tick(now_ms),
            Round::Write(w) => w.on_tick(now_ms),
        }
    }

    fn deadline_ms(&self) -> u64 {
        match self {
            Round::Read(r) => r.deadline_ms(),
            Round::Write(w) => w.deadline_ms(),
        }
    }

    fn is_finished(&self) -> bool {
        match self {
            Round::Read(r) => r.is_finished(),
            Round::Write(w) => w.is_finished(),
        }
    }
}

/// The local leg of a write: the replica path, as a peer's `Write` takes it
/// ([`super::server`]); the answer as the round counts it.
pub fn local_write(replica: &Replica, key: &Bytes, record: &Record) -> Response {
    match replica.apply(key, record, unix_now_ms(), Source::Coordinator) {
        // Under appendfsync always, the client's connection waits for durability
        // before it sends the reply (its session marked the write).
        Ok(_) => Response::Ack,
        Err(e) => {
            tracing::warn!(error = %e, "local replica refused a write");
            Response::Failed
        }
    }
}

/// Runs one round: applies its effects (local ones in-process, remote ones over links),
/// feeds it responses and ticks, and returns its reply; what remains after the reply
/// (hints for slow replicas, background read repair) goes on in a task.
struct Driver {
    cluster: Arc<Cluster>,
    key: Bytes,
    round: Round,
    inbox: Responder,
    /// Requests in flight, cancelled when the round ends (dropped).
    in_flight: Vec<InFlight>,
    reply: Option<Result<Option<Record>, QuorumError>>,
    /// A read round sent repairs before its reply.
    repaired: bool,
}

impl Driver {
    fn new(cluster: Arc<Cluster>, key: Bytes, round: Round) -> Driver {
        Driver {
            cluster,
            key,
            round,
            inbox: Inbox::new(),
            in_flight: Vec::new(),
            reply: None,
            repaired: false,
        }
    }

    /// Applies effects until none is left; local ones produce more at once.
    fn apply(&mut self, effects: Vec<Effect>) {
        let mut queue: std::collections::VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            let more = match effect {
                Effect::Read { to } => self.read(to),
                Effect::Write { to, record } => self.write(to, record),
                Effect::Hint { target, record } => self.hint(target, &record),
                Effect::Reply(reply) => {
                    self.reply = Some(reply);
                    Vec::new()
                }
            };
            queue.extend(more);
        }
    }

    fn read(&mut self, to: NodeId) -> Vec<Effect> {
        if to == self.cluster.local {
            let record = self.cluster.replica.read(&self.key, unix_now_ms());
            return self.round.on_response(to, Response::Record(record));
        }
        let key = self.key.clone();
        self.send(to, Message::Read { key })
    }

    fn write(&mut self, to: NodeId, record: Record) -> Vec<Effect> {
        if matches!(self.round, Round::Read(_)) {
            self.cluster.stats.read_repairs.fetch_add(1, Relaxed);
            self.repaired |= self.reply.is_none();
        }
        if to == self.cluster.local {
            let response = local_write(&self.cluster.replica, &self.key, &record);
            return self.round.on_response(to, response);
        }
        let key = self.key.clone();
        self.send(to, Message::Write { key, record })
    }

    fn send(&mut self, to: NodeId, message: Message) -> Vec<Effect> {
        match self.cluster.links.send(to, &message, &self.inbox) {
            Ok(request) => {
                self.in_flight.push(request);
                Vec::new()
            }
            Err(_) => self.round.on_response(to, Response::Failed),
        }
    }

    fn hint(&mut self, target: NodeId, record: &Record) -> Vec<Effect> {
        let cluster = &self.cluster;
        let Some(hints) = &cluster.hints else {
            return Vec::new();
        };
        if target == cluster.local {
            return Vec::new();
        }
        match hints.append(target.get(), &self.key, record, unix_now_ms()) {
            Ok(()) => {
                cluster.stats.hints_stored.fetch_add(1, Relaxed);
                match &mut self.round {
                    // At ANY the hint acknowledges the write: make it durable first (other
                    // hints are synced once a second, like appendfsync everysec).
                    Round::Write(w) if w.need().hints_count => match hints.sync() {
                        Ok(()) => w.on_hint_stored(),
                        Err(e) => {
                            tracing::error!(error = %e, "cannot sync a hint");
                            Vec::new()
                        }
                    },
                    Round::Write(_) | Round::Read(_) => Vec::new(),
                }
            }
            Err(e) => {
                cluster.stats.hints_dropped.fetch_add(1, Relaxed);
                tracing::debug!(%target, error = %e, "hint not stored");
                Vec::new()
            }
        }
    }

    /// Waits for responses and deadlines until the round replied.
    async fn until_reply(&mut self) -> Result<Option<Record>, QuorumError> {
        loop {
            if let Some(reply) = self.reply.take() {
                return reply;
            }
            self.step().await;
        }
    }

    async fn step(&mut self) {
        let wait_ms = self.round.deadline_ms().saturating_sub(unix_now_ms());
        let effects = tokio::select! {
            (from, response) = self.inbox.recv() => {
                self.round.on_response(from, response)
            }
            () = tokio::time::sleep(Duration::from_millis(wait_ms)) => {
                self.round.on_tick(unix_now_ms())
            }
        };
        self.apply(effects);
    }

    /// Finishes the round after its reply, in the background.
    fn finish(mut self) {
        if self.round.is_finished() {
            return;
        }
        tokio::spawn(async move {
            while !self.round.is_finished() {
                self.step().await;
                self.reply = None;
            }
        });
    }
}

/// Reads `key` at `level` through its replicas; the merged record.
///
/// # Errors
/// The level could not be met.
pub async fn read(
    cluster: &Arc<Cluster>,
    key: &Bytes,
    level: Level,
) -> Result<Option<Record>, QuorumError> {
    let now = unix_now_ms();
    let targets = cluster.read_targets(key, now);
    let need = cluster.need(level, targets.len());
    let timeout = cluster.config.read_timeout_ms;
    let started = ReadRound::start(need, &targets, now, timeout, timeout / SPECULATE_DIVISOR);
    let stats = &cluster.stats.rounds[OP_READ][level_index(level)];
    let (outcome, repaired) = run(
        cluster,
        key,
        stats,
        started.map(|(r, e)| (Round::Read(r), e)),
    )
    .await;
    match outcome {
        Ok(Some(record)) if repaired => {
            repair_extras(cluster, key, &record, level).await?;
            Ok(Some(record))
        }
        outcome => outcome,
    }
}

/// A read that repaired its replicas before replying promises that later reads see what it
/// returned; while the ring changes, the replicas those reads will ask include the key's
/// extra replicas ([`ringcache_cluster::View::extra_replicas`]), so they get the repair too
/// before the reply.
///
/// # Errors
/// An extra replica that is up did not take it in time.
async fn repair_extras(
    cluster: &Arc<Cluster>,
    key: &Bytes,
    record: &Record,
    level: Level,
) -> Result<(), QuorumError> {
    let view = cluster.view();
    let n = cluster.config.replication_factor;
    let now = unix_now_ms();
    let extras = view.extra_replicas(key_token(key), n, monotonic_ms());
    if extras.is_empty() {
        return Ok(());
    }
    let targets: Vec<Target> = extras
        .iter()
        .map(|&node| Target {
            node,
            alive: view.is_reachable(node, cluster.local, |n| cluster.links.is_up(n, now)),
        })
        .collect();
    let need = Need {
        level: level.name(),
        required: targets.iter().filter(|t| t.alive).count(),
        hints_count: false,
        blocking_repair: false,
    };
    let timeout = cluster.config.write_timeout_ms;
    let started = WriteRound::start(need, record.clone(), &targets, now, timeout);
    run_write(cluster, key, level, started).await
}

/// Writes `record` to `key`'s replicas at `level`.
///
/// # Errors
/// The level could not be met.
pub async fn write(
    cluster: &Arc<Cluster>,
    key: &Bytes,
    record: Record,
    level: Level,
) -> Result<(), QuorumError> {
    let now = unix_now_ms();
    let (targets, need) = cluster.write_targets(key, level, now);
    let started = WriteRound::start(need, record, &targets, now, cluster.config.write_timeout_ms);
    run_write(cluster, key, level, started).await
}

/// Runs a write round to its reply, counted at `level`.
async fn run_write(
    cluster: &Arc<Cluster>,
    key: &Bytes,
    level: Level,
    started: Result<(WriteRound, Vec<Effect>), QuorumError>,
) -> Result<(), QuorumError> {
    let stats = &cluster.stats.rounds[OP_WRITE][level_index(level)];
    let started = started.map(|(round, effects)| (Round::Write(round), effects));
    let (outcome, _) = run(cluster, key, stats, started).await;
    outcome.map(|_| ())
}

/// Runs a round to its reply; the reply, and whether a read round repaired before it.
async fn run(
    cluster: &Arc<Cluster>,
    key: &Bytes,
    stats: &RoundStats,
    started: Result<(Round, Vec<Effect>), QuorumError>,
) -> (Result<Option<Record>, QuorumError>, bool) {
    let began = std::time::Instant::now();
    let (outcome, repaired) = match started {
        Err(e) => (Err(e), false),
        Ok((round, effects)) => {
            let mut driver = Driver::new(cluster.clone(), key.clone(), round);
            driver.apply(effects);
            let reply = driver.until_reply().await;
            let repaired = driver.repaired;
            driver.finish();
            (reply, repaired)
        }
    };
    stats.outcomes[outcome_index(&outcome)].fetch_add(1, Relaxed);
    let micros = began.elapsed().as_micros().min(u128::from(u64::MAX)) as u64;
    stats.latency[latency_bucket(micros)].fetch_add(1, Relaxed);
    (outcome, repaired)
}
