//! The repair simulator's world: nodes with real [`MemoryStore`]s and [`RepairHistory`]s, one
//! consistent-hash ring, a virtual clock and a network that delays and loses messages.
//!
//! Writes are applied to replica stores directly (the coordinator is not under test here);
//! anti-entropy runs as it would in the server: every up node runs a [`Round`] over the ranges
//! it is primary of, one [`Session`] at a time, each request and reply crossing the network.
//! A lost message ends its session by timeout (`session_done(peer, None)`); a request to a
//! down node gets no answer. When a node's round is over it records the repaired ranges in its
//! history and announces them to the other replicas (`RepairDone`, itself lossy).

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use ringcache_cluster::protocol::Message;
use ringcache_cluster::repair::{
    RangeId, RepairHistory, RepairStats, Reply, Round, Session, Taken, answer, tombstone_margin_ms,
};
use ringcache_cluster::{NodeId, Ring, TokenRange};
use ringcache_storage::{MemoryStore, Record, Store, TombstoneHorizon, Version, key_token};

use crate::queue::EventQueue;
use crate::rng::Rng;

/// Replicas per key.
pub const N: usize = 3;
/// Tokens per node.
pub const VNODES: u16 = 8;
/// The margin of the tombstone horizon, by the runtime's rule: the default clock offset
/// (500 ms) plus the default write timeout (1 s), no hint window (the simulated nodes keep no
/// hints).
pub const MARGIN_MS: u64 = tombstone_margin_ms(500, 1_000, 0);
/// One-way latency of a message, at most.
pub const LATENCY_MS_MAX: u64 = 20;
/// A session's request without an answer by then failed: well above a round trip.
pub const SESSION_TIMEOUT_MS: u64 = 100;
/// Requests one session may send: far above what 2,000 keys need, so hitting it is a bug.
pub const SESSION_REQUESTS_MAX: u64 = 1_000;
/// Records one store walk visits per step.
const WALK_STEP_KEYS: usize = 256;

/// One node of the world.
pub struct Node {
    pub id: NodeId,
    pub store: MemoryStore,
    pub history: RepairHistory,
    pub up: bool,
    /// The last HLC reading issued, so versions never repeat.
    hlc: u64,
    /// This node's clock offset, for the versions of the writes it coordinates.
    pub skew_ms: i64,
}

/// One session as it ran, in the order sessions started.
#[derive(Debug)]
pub struct SessionLog {
    pub initiator: usize,
    pub peer: usize,
    pub spans: Vec<(u64, u64)>,
    /// Its figures when it went through; `None` when it failed.
    pub outcome: Option<(RepairStats, bool)>,
    /// Records it changed, on either side, as the harness saw the merges.
    pub changes: u64,
    /// Collections it pushed that changed nothing: their cells differed, so repair moves them
    /// both ways, and the peer that already held all of the initiator's keeps its record (a
    /// pull that changes nothing is not counted as pulled).
    pub idle: u64,
}

struct Running {
    log: usize,
    peer: usize,
    session: Session,
    request: u64,
}

struct Repairer {
    round: Round,
    running: Option<Running>,
}

enum Event {
    Request {
        to: usize,
        log: usize,
        request: u64,
        message: Message,
    },
    Reply {
        to: usize,
        log: usize,
        request: u64,
        message: Message,
    },
    Timeout {
        node: usize,
        log: usize,
        request: u64,
    },
    Announce {
        to: usize,
        ranges: Vec<RangeId>,
        started_ms: u64,
    },
}

/// The world; see the module docs.
pub struct World {
    pub ring: Ring,
    pub nodes: Vec<Node>,
    pub now_ms: u64,
    pub rng: Rng,
    pub loss_per_mille: u64,
    /// Sweep with `now - margin` everywhere instead of each node's repair history
    /// (`SIM_BREAK=gc-without-repair`): the bug the history exists to prevent.
    pub gc_without_repair: bool,
    queue: EventQueue<Event>,
    repairers: Vec<Option<Repairer>>,
    /// Sessions since the log was last cleared.
    pub sessions: Vec<SessionLog>,
    /// Times repair changed a key's record on a node, since last cleared.
    pub changes: HashMap<(Bytes, usize), u32>,
    /// Figures of the sessions that went through, from the rounds.
    pub round_stats: RepairStats,
    pub messages: u64,
    pub lost: u64,
    pub rounds: u64,
}

impl World {
    /// `nodes` nodes with random ids, starting at `now_ms`.
    pub fn new(mut rng: Rng, nodes: usize, now_ms: u64, loss_per_mille: u64) -> World {
        let mut ids: Vec<NodeId> = Vec::new();
        while ids.len() < nodes {
            let id = NodeId::new(rng.next_u64());
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let ring = Ring::new(ids.iter().copied(), VNODES);
        assert_eq!(ring.members().len(), nodes, "a node lost every token");
        let nodes: Vec<Node> = ids
            .iter()
            .map(|&id| Node {
                id,
                store: MemoryStore::new(),
                history: RepairHistory::default(),
                up: true,
                hlc: 0,
                skew_ms: rng.between(0, 300) as i64 - 150,
            })
            .collect();
        World {
            ring,
            repairers: nodes.iter().map(|_| None).collect(),
            nodes,
            now_ms,
            rng,
            loss_per_mille,
            gc_without_repair: false,
            queue: EventQueue::new(),
            sessions: Vec::new(),
            changes: HashMap::new(),
            round_stats: RepairStats::default(),
            messages: 0,
            lost: 0,
            rounds: 0,
        }
    }

    /// The node index of `id`.
    pub fn index(&self, id: NodeId) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .expect("a member")
    }

    /// The indexes of a key's replicas, primary first.
    pub fn replicas(&self, key: &[u8]) -> Vec<usize> {
        self.ring
            .preference_list(key_token(key), N)
            .iter()
            .map(|&id| self.index(id))
            .collect()
    }

    /// A fresh version from node `i`'s hybrid clock (skewed), never issued before.
    pub fn version(&mut self, i: usize) -> Version {
        let node = &mut self.nodes[i];
        let ms = self.now_ms.saturating_add_signed(node.skew_ms);
        node.hlc = (node.hlc + 1).max(ms << Version::LOGICAL_BITS);
        Version {
            hlc: node.hlc,
            node: i as u32 + 1,
        }
    }

    /// Every record of node `i`, by key (expired values reclaimed at `now_ms`).
    pub fn records(&self, i: usize) -> HashMap<Bytes, Record> {
        let mut records = HashMap::new();
        let mut cursor = 0;
        loop {
            cursor = self.nodes[i].store.scan(
                cursor,
                WALK_STEP_KEYS,
                self.now_ms,
                &mut |key, record| {
                    records.insert(key.clone(), record.clone());
                },
            );
            if cursor == 0 {
                return records;
            }
        }
    }

    /// The tombstone horizon node `i` repairs and sweeps with.
    pub fn horizon(&self, i: usize) -> TombstoneHorizon {
        self.nodes[i]
            .history
            .horizon(&self.ring, N, self.nodes[i].id, MARGIN_MS, self.now_ms)
    }

    /// The whole expiry sweep on node `i`; returns the tombstones dropped.
    pub fn sweep(&mut self, i: usize) -> usize {
        let horizon = if self.gc_without_repair {
            TombstoneHorizon::uniform(self.now_ms.saturating_sub(MARGIN_MS))
        } else {
            self.horizon(i)
        };
        let mut dropped = 0;
        let mut cursor = 0;
        loop {
            let (stats, next) =
                self.nodes[i]
                    .store
                    .expire_step(cursor, WALK_STEP_KEYS, self.now_ms, &horizon);
            dropped += stats.tombstones_dropped;
            if next == 0 {
                return dropped;
            }
            cursor = next;
        }
    }

    /// Replaces node `i`'s store by an empty one, as a node restarted on an empty data
    /// directory: its history goes with it.
    pub fn wipe(&mut self, i: usize) {
        self.nodes[i].store = MemoryStore::new();
        self.nodes[i].history.clear();
    }

    /// One round on every up node, over the ranges it is primary of, run to its end;
    /// returns the ranges repaired with every replica.
    pub fn run_round(&mut self) -> Vec<TokenRange> {
        self.rounds += 1;
        let mut repaired = Vec::new();
        for i in 0..self.nodes.len() {
            if !self.nodes[i].up {
                continue;
            }
            let me = self.nodes[i].id;
            let ranges: Vec<TokenRange> = self.ring.ranges().filter(|r| r.owner == me).collect();
            self.repairers[i] = Some(Repairer {
                round: Round::new(&self.ring, me, N, ranges, self.now_ms),
                running: None,
            });
            self.next_session(i, &mut repaired);
        }
        while let Some((at_ms, event)) = self.queue.pop() {
            self.now_ms = self.now_ms.max(at_ms);
            self.handle(event, &mut repaired);
        }
        assert!(
            self.repairers.iter().all(Option::is_none),
            "a round stalled"
        );
        repaired
    }

    fn send(&mut self, event: Event) {
        self.messages += 1;
        if self.rng.chance(self.loss_per_mille) {
            self.lost += 1;
            return;
        }
        let at_ms = self.now_ms + self.rng.between(1, LATENCY_MS_MAX);
        self.queue.push(at_ms, event);
    }

    /// Starts node `i`'s next session, or ends its round.
    fn next_session(&mut self, i: usize, repaired: &mut Vec<TokenRange>) {
        loop {
            let repairer = self.repairers[i].as_mut().expect("a round");
            let Some((peer_id, spans)) = repairer.round.next_session() else {
                let repairer = self.repairers[i].take().expect("a round");
                self.end_round(i, repairer.round, repaired);
                return;
            };
            let peer = self.index(peer_id);
            let mut session = Session::new(&spans, self.horizon(i));
            let log = self.sessions.len();
            self.sessions.push(SessionLog {
                initiator: i,
                peer,
                spans,
                outcome: None,
                changes: 0,
                idle: 0,
            });
            match session.next_request(&self.nodes[i].store, self.now_ms) {
                Some(message) => {
                    self.repairers[i].as_mut().expect("a round").running = Some(Running {
                        log,
                        peer,
                        session,
                        request: 0,
                    });
                    self.request(i, peer, log, 0, message);
                    return;
                }
                None => {
                    let outcome = (*session.stats(), session.is_complete());
                    self.sessions[log].outcome = Some(outcome);
                    let repairer = self.repairers[i].as_mut().expect("a round");
                    repairer.round.session_done(peer_id, Some(outcome));
                }
            }
        }
    }

    fn request(&mut self, from: usize, to: usize, log: usize, request: u64, message: Message) {
        assert!(
            request < SESSION_REQUESTS_MAX,
            "a session that does not end"
        );
        self.queue.push(
            self.now_ms + SESSION_TIMEOUT_MS,
            Event::Timeout {
                node: from,
                log,
                request,
            },
        );
        self.send(Event::Request {
            to,
            log,
            request,
            message,
        });
    }

    fn end_round(&mut self, i: usize, round: Round, repaired: &mut Vec<TokenRange>) {
        self.round_stats.add(round.stats());
        let done = round.repaired();
        let me = self.nodes[i].id;
        self.nodes[i]
            .history
            .record(&self.ring, N, me, &round.repaired_ids(), round.started_ms);
        for (peer, ranges) in round.announcements() {
            let to = self.index(peer);
            self.send(Event::Announce {
                to,
                ranges,
                started_ms: round.started_ms,
            });
        }
        repaired.extend(done);
    }

    fn handle(&mut self, event: Event, repaired: &mut Vec<TokenRange>) {
        match event {
            Event::Request {
                to,
                log,
                request,
                message,
            } => {
                if !self.nodes[to].up {
                    return;
                }
                let reply = match message {
                    Message::RepairWrite { records } => {
                        for (key, record) in &records {
                            let changed = self.nodes[to].store.merge(key, record).expect("merge");
                            if changed {
                                *self.changes.entry((key.clone(), to)).or_default() += 1;
                                self.sessions[log].changes += 1;
                            } else if record.kind.is_collection() {
                                self.sessions[log].idle += 1;
                            }
                        }
                        Message::WriteAck
                    }
                    other => answer(&self.nodes[to].store, &other, self.now_ms)
                        .expect("a repair request has an answer"),
                };
                let initiator = self.sessions[log].initiator;
                self.send(Event::Reply {
                    to: initiator,
                    log,
                    request,
                    message: reply,
                });
            }
            Event::Reply {
                to,
                log,
                request,
                message,
            } => self.on_reply(to, log, request, message, repaired),
            Event::Timeout { node, log, request } => {
                let Some(repairer) = self.repairers[node].as_mut() else {
                    return;
                };
                if !matches!(&repairer.running, Some(r) if r.log == log && r.request == request) {
                    return; // Answered in time.
                }
                let running = repairer.running.take().expect("checked");
                let peer = self.nodes[running.peer].id;
                repairer.round.session_done(peer, None);
                self.next_session(node, repaired);
            }
            Event::Announce {
                to,
                ranges,
                started_ms,
            } => {
                if self.nodes[to].up {
                    let me = self.nodes[to].id;
                    self.nodes[to]
                        .history
                        .record(&self.ring, N, me, &ranges, started_ms);
                }
            }
        }
    }

    fn on_reply(
        &mut self,
        to: usize,
        log: usize,
        request: u64,
        message: Message,
        repaired: &mut Vec<TokenRange>,
    ) {
        let World {
            nodes,
            repairers,
            changes,
            sessions,
            now_ms,
            ..
        } = self;
        let Some(repairer) = repairers[to].as_mut() else {
            return;
        };
        let Some(running) = repairer
            .running
            .as_mut()
            .filter(|r| r.log == log && r.request == request)
        else {
            return; // Late: the session already timed out.
        };
        let reply = Reply::from_message(message).expect("an answer to a repair request");
        let store = &nodes[to].store;
        let result = running.session.on_reply(
            reply,
            store,
            *now_ms,
            &mut |key: &Bytes, record: &Record| {
                // A pull that changes nothing is not counted as pulled (`Taken::Unchanged`).
                let changed = store.merge(key, record).expect("merge");
                if changed {
                    *changes.entry((key.clone(), to)).or_default() += 1;
                    sessions[log].changes += 1;
                }
                if changed {
                    Taken::Changed
                } else {
                    Taken::Unchanged
                }
            },
        );
        let peer = running.peer;
        let next = match result {
            Ok(()) => running.session.next_request(store, *now_ms),
            Err(_) => {
                let peer_id = nodes[peer].id;
                repairer.running = None;
                repairer.round.session_done(peer_id, None);
                return self.next_session(to, repaired);
            }
        };
        match next {
            Some(message) => {
                running.request += 1;
                let request = running.request;
                self.request(to, peer, log, request, message);
            }
            None => {
                let outcome = (*running.session.stats(), running.session.is_complete());
                sessions[log].outcome = Some(outcome);
                let peer_id = nodes[peer].id;
                repairer.running = None;
                repairer.round.session_done(peer_id, Some(outcome));
                self.next_session(to, repaired);
            }
        }
    }
}

/// Whether a token is in one of `spans` (inclusive, sorted).
pub fn in_spans(spans: &[(u64, u64)], token: u64) -> bool {
    spans.iter().any(|&(f, l)| f <= token && token <= l)
}

/// The nodes whose ranges include `node`, as a set of range ends.
pub fn ranges_with(ring: &Ring, node: NodeId) -> HashSet<u64> {
    ring.ranges()
        .filter(|r| ring.preference_list(r.end, N).contains(&node))
        .map(|r| r.end)
        .collect()
}
