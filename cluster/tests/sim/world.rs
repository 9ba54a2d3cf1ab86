//! The simulated cluster: nodes, network, faults and clients, driven by one event queue in
//! virtual time. Every choice comes from the seeded generator, so a seed replays exactly.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use ringcache_cluster::{
    Effect, Need, NodeId, ReadRound, Ring, Target, View as Placement, WriteRound,
};
use ringcache_storage::{Collection, DataType, Record, Version, key_token};

use super::check::{Checker, need, need_on};
use super::node::{InFlight, Key, Node, RequestId, Round, Status, View, member};
use super::queue::EventQueue;
use super::rng::Rng;

mod faults;
mod membership;
mod network;

pub use membership::{MembershipStats, PendingRule, Scenario, SourceRule};

/// Tokens per node: few, so the preference lists of 20 keys differ.
const VNODES: u16 = 16;
/// Round timeouts: a few slow round trips.
const WRITE_TIMEOUT_MS: u64 = 150;
const READ_TIMEOUT_MS: u64 = 150;
/// Below the slowest round trip (2 × 20 ms), so a read speculates now and then.
const SPECULATE_AFTER_MS: u64 = 30;
/// How often a node replays its hints.
const HINT_REPLAY_INTERVAL_MS: u64 = 100;
/// Time between two client operations.
const OP_INTERVAL_MS_MAX: u64 = 4;
/// Time between two fault decisions.
const FAULT_INTERVAL_MS: (u64, u64) = (100, 500);
/// Once every fault healed, the time hints get to drain and rounds to finish.
const SETTLE_MS_MAX: u64 = 30_000;
/// Rounds of `ALL` reads at the end, for keys whose read failed (lost messages): at 10%
/// loss, a read at `ALL` of 5 replicas fails about 2 times in 3.
const FINAL_READ_ATTEMPTS_MAX: usize = 100;
/// Writes that are an `HSET`/`HDEL` rather than a string write, per thousand.
const HASH_WRITES_PER_1000: u64 = 300;
/// Fields a simulated hash writes among: few, so that writes through different
/// coordinators meet on one field.
const HASH_FIELDS: u64 = 4;
/// Field writes that remove the field (`HDEL`), per thousand.
const HASH_REMOVALS_PER_1000: u64 = 250;
/// The client's mix of levels (repeated entries weigh more).
const WRITE_LEVELS: [&str; 7] = ["ONE", "TWO", "QUORUM", "QUORUM", "QUORUM", "ALL", "ANY"];
const READ_LEVELS: [&str; 5] = ["ONE", "QUORUM", "QUORUM", "QUORUM", "ALL"];

/// The shape of one run.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Seeds every choice.
    pub seed: u64,
    /// Nodes in the cluster.
    pub nodes: usize,
    /// Replicas per key (N).
    pub replicas: usize,
    /// Keys the clients use.
    pub keys: usize,
    /// Client operations.
    pub ops: usize,
    /// Messages between nodes lost, per thousand.
    pub loss_per_mille: u64,
    /// Messages between nodes delivered twice, per thousand.
    pub duplicate_per_mille: u64,
}

/// What happens at a point in virtual time.
#[derive(Debug)]
enum Event {
    /// A client sends the next operation to some node.
    ClientOp,
    /// A message arrives (or is dropped, if `to` is down or cut off from `from`).
    Deliver {
        from: usize,
        to: usize,
        message: Message,
    },
    /// A round's timer.
    Tick {
        node: usize,
        request: RequestId,
    },
    /// `observer` notices whether `target` is reachable.
    Refresh {
        observer: usize,
        target: usize,
    },
    /// A node replays hints to the targets it sees up.
    HintReplay {
        node: usize,
    },
    /// Maybe crash a node or partition the network.
    Fault,
    Restart {
        node: usize,
    },
    Heal,
    /// A step of a join, a leave, or of gossip spreading them.
    Membership(membership::Event),
}

/// The peer protocol, reduced to what the rounds exchange.
#[derive(Debug, Clone)]
enum Message {
    Read {
        request: RequestId,
        key: Key,
    },
    Record {
        request: RequestId,
        record: Option<Record>,
    },
    Write {
        request: RequestId,
        key: Key,
        record: Record,
    },
    Ack {
        request: RequestId,
    },
    /// The replica could not do it, or the connection was refused.
    Failed {
        request: RequestId,
    },
    Hint {
        key: Key,
        record: Record,
    },
    HintAck {
        key: Key,
        record: Record,
    },
    /// Streaming between nodes when the membership changes.
    Transfer(membership::Transfer),
}

/// Counts for the summary line.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Messages sent between nodes or to self.
    pub messages: u64,
    /// Lost on the wire.
    pub lost: u64,
    /// Delivered twice.
    pub duplicated: u64,
    /// Arrived at a crashed node or across a partition.
    pub dropped: u64,
    /// Replica operations failed by a store error.
    pub store_errors: u64,
    /// Read repairs sent.
    pub repairs: u64,
    /// Hint effects carried out (hints of one key for one target merge into one).
    pub hints_stored: u64,
    /// Hints acknowledged by their target.
    pub hints_replayed: u64,
    /// Node crashes.
    pub crashes: u64,
    /// Partitions.
    pub partitions: u64,
    /// Virtual ms from the last heal until the hints drained.
    pub drain_ms: u64,
    /// Virtual time at the end.
    pub end_ms: u64,
}

/// The simulated cluster.
pub struct World {
    cfg: Config,
    rng: Rng,
    queue: EventQueue<Event>,
    now_ms: u64,
    /// Events handled so far: orders "acknowledged before this started" exactly.
    step: u64,
    nodes: Vec<Node>,
    /// The ring as it is: the latest view's (each node learns it late, by gossip).
    ring: Ring,
    key_tokens: Vec<u64>,
    /// While partitioned: the side of each node.
    sides: Option<Vec<bool>>,
    faults_on: bool,
    ops_issued: usize,
    next_request: RequestId,
    /// The model, and the invariants checked against it.
    pub check: Checker,
    /// Counts for the summary.
    pub stats: Stats,
    /// The join and the leave under test, if any.
    membership: Option<membership::Membership>,
    /// The key whose story is printed, if any.
    trace_key: Option<Key>,
    /// Under membership changes, the replicas each read started with, by op.
    read_sets: std::collections::BTreeMap<usize, Vec<NodeId>>,
}

impl World {
    /// A cluster for `cfg`, every node up, nothing written.
    pub fn new(cfg: Config) -> World {
        World::build(cfg, None)
    }

    /// A cluster for `cfg` plus the nodes that join it while the clients run, after which a
    /// node is decommissioned, as `scenario` says.
    pub fn with_membership(cfg: Config, scenario: Scenario) -> World {
        World::build(cfg, Some(scenario))
    }

    fn build(cfg: Config, scenario: Option<Scenario>) -> World {
        let mut rng = Rng::new(cfg.seed);
        // The nodes that join are drawn last, so the others are those of `World::new`.
        let count = cfg.nodes + scenario.map_or(0, |s| s.joiners);
        let shapes: Vec<(NodeId, i64)> = (0..count)
            .map(|_| {
                let id = NodeId::new(rng.next_u64());
                let skew_ms = rng.between(0, 60) as i64 - 30;
                (id, skew_ms)
            })
            .collect();
        let members = shapes[..cfg.nodes]
            .iter()
            .map(|s| member(s.0, Status::Normal));
        let placement = Placement::empty(VNODES).next(members, VNODES, 0, 0);
        let ring = (*placement.ring).clone();
        let view = View {
            epoch: 0,
            placement: Arc::new(placement),
        };
        let mut nodes: Vec<Node> = shapes
            .iter()
            .enumerate()
            .map(|(i, &(id, skew_ms))| Node::new(i, count, id, skew_ms, view.clone()))
            .collect();
        let membership = scenario.map(|scenario| {
            for joiner in &mut nodes[cfg.nodes..] {
                joiner.out = true;
                joiner.crashed = true;
            }
            membership::Membership::new(scenario, (cfg.nodes..count).collect(), view)
        });
        let key_tokens = (0..cfg.keys)
            .map(|k| key_token(format!("key:{k}").as_bytes()))
            .collect();
        World {
            cfg,
            rng,
            queue: EventQueue::new(),
            now_ms: 0,
            step: 0,
            nodes,
            ring,
            key_tokens,
            sides: None,
            faults_on: true,
            ops_issued: 0,
            next_request: 0,
            check: Checker::new(cfg.seed, cfg.replicas, cfg.keys),
            stats: Stats::default(),
            membership,
            trace_key: trace_key_from_env(),
            read_sets: std::collections::BTreeMap::new(),
        }
    }

    /// Runs the clients under faults, heals everything, lets the hints drain, reads every
    /// key at `ALL`, and checks that the replicas converged.
    ///
    /// # Panics
    /// On a broken invariant, with the seed in the message.
    pub fn run(&mut self) {
        if self.membership.is_some() {
            self.run_with_membership();
            return;
        }
        self.queue.push(0, Event::ClientOp);
        let first_fault = self.rng.between(FAULT_INTERVAL_MS.0, FAULT_INTERVAL_MS.1);
        self.queue.push(first_fault, Event::Fault);
        for node in 0..self.cfg.nodes {
            self.queue.push(
                HINT_REPLAY_INTERVAL_MS + node as u64,
                Event::HintReplay { node },
            );
        }
        let ops = self.cfg.ops;
        assert!(self.run_until(u64::MAX, |w| w.ops_issued == ops));

        self.heal_all();
        let healed_ms = self.now_ms;
        self.settle("after healing");
        self.stats.drain_ms = self.now_ms - healed_ms;
        self.check.check_handed_off(|key| self.replicas_of(key));

        self.read_every_key_at_all();
        self.settle("after the final reads");
        self.check_converged();
        self.check.check_all_replied();
        self.stats.end_ms = self.now_ms;
    }

    /// Handles events until `done`, or until the next event is past `until_ms`. Whether
    /// `done` was reached.
    fn run_until(&mut self, until_ms: u64, done: impl Fn(&World) -> bool) -> bool {
        while !done(self) {
            match self.queue.peek_ms() {
                Some(at) if at <= until_ms => {}
                _ => return false,
            }
            let (at, event) = self.queue.pop().expect("peeked");
            self.now_ms = at;
            self.step += 1;
            self.handle(event);
        }
        true
    }

    /// Runs until no round is in flight, every view is right and no hint is left.
    fn settle(&mut self, when: &str) {
        let until_ms = self.now_ms + SETTLE_MS_MAX;
        let settled = self.run_until(until_ms, World::is_quiet);
        let hints: usize = self.nodes.iter().map(Node::hint_count).sum();
        assert!(
            settled,
            "seed {}: not settled {SETTLE_MS_MAX} ms {when}: {hints} hints left",
            self.cfg.seed
        );
    }

    fn is_quiet(&self) -> bool {
        self.membership_is_quiet()
            && self.nodes.iter().enumerate().all(|(i, node)| {
                node.rounds.is_empty()
                    && node.hint_count() == 0
                    && (0..self.nodes.len()).all(|t| node.sees_up[t] == self.reachable(i, t))
            })
    }

    fn handle(&mut self, event: Event) {
        if let Some(traced) = self.trace_key {
            self.trace(traced, &event);
        }
        match event {
            Event::ClientOp => self.client_op(),
            Event::Deliver { from, to, message } => self.deliver(from, to, message),
            Event::Tick { node, request } => self.tick(node, request),
            Event::Refresh { observer, target } => {
                self.nodes[observer].sees_up[target] = self.reachable(observer, target);
            }
            Event::HintReplay { node } => self.replay_hints(node),
            Event::Fault => self.fault(),
            Event::Restart { node } => self.restart(node),
            Event::Heal => self.heal(),
            Event::Membership(event) => self.on_membership_event(event),
        }
    }

    fn trace(&self, traced: Key, event: &Event) {
        let show = match event {
            Event::Deliver {
                message:
                    Message::Read { key, .. } | Message::Write { key, .. } | Message::Hint { key, .. },
                ..
            } => *key == traced,
            Event::Deliver {
                to,
                message:
                    Message::Record { request, .. }
                    | Message::Ack { request }
                    | Message::Failed { request },
                ..
            } => self.nodes[*to]
                .rounds
                .get(request)
                .is_some_and(|f| f.key == traced),
            Event::Deliver {
                message: Message::Transfer(_),
                ..
            }
            | Event::Membership(_)
            | Event::Restart { .. }
            | Event::Heal => true,
            _ => false,
        };
        if show {
            eprintln!("{} ms step {}: {event:?}", self.now_ms, self.step);
        }
    }

    // ---- Clients ----

    fn client_op(&mut self) {
        self.ops_issued += 1;
        if self.ops_issued < self.cfg.ops {
            let next_ms = self.now_ms + self.rng.between(0, OP_INTERVAL_MS_MAX);
            self.queue.push(next_ms, Event::ClientOp);
        }
        // A load balancer sends the request to a node that is up.
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].crashed)
            .collect();
        if up.is_empty() {
            return;
        }
        let coordinator = up[self.rng.index(up.len())];
        let key = self.rng.index(self.cfg.keys);
        // Under membership changes, some keys are only read once the first join started.
        let writable = self.membership.is_none() || !self.is_cold(key);
        if self.rng.chance(550) && writable {
            let level = WRITE_LEVELS[self.rng.index(WRITE_LEVELS.len())];
            self.start_write(coordinator, key, level);
        } else {
            let level = READ_LEVELS[self.rng.index(READ_LEVELS.len())];
            self.start_read(coordinator, key, level);
        }
    }

    /// A new record for `key` at `version`: mostly a `SET`, sometimes a `DEL`, sometimes an
    /// `EXPIRE` (the expiry cell alone, far in the future so nothing expires in a run),
    /// sometimes an `HSET`/`HDEL` of one or two of a few fields (the cells it writes: a
    /// coordinator sends only those, and replicas merge them cell by cell).
    fn new_record(&mut self, key: Key, version: Version) -> Record {
        if self.rng.chance(HASH_WRITES_PER_1000) {
            let mut cells = Collection::default();
            for _ in 0..self.rng.between(1, 2) {
                let field = format!("f{}", self.rng.below(HASH_FIELDS));
                let value = format!("{key}.{field}@{}.{}", version.hlc, version.node);
                let removed = self.rng.chance(HASH_REMOVALS_PER_1000);
                cells.put(
                    field.as_bytes(),
                    (!removed).then_some(value.as_bytes()),
                    version,
                );
            }
            return Record::collection(DataType::Hash, cells, None, version);
        }
        match self.rng.below(20) {
            0..=2 => Record::tombstone(version),
            3..=4 => Record {
                kind: Default::default(),
                value: None,
                value_version: Version::ZERO,
                expiry_ms: Some(version.unix_ms() + 3_600_000),
                expiry_version: version,
            },
            _ => Record::new(
                Bytes::from(format!("{key}@{}.{}", version.hlc, version.node)),
                None,
                version,
            ),
        }
    }

    fn start_write(&mut self, coordinator: usize, key: Key, level: &'static str) {
        let need = need_on(level, self.cfg.replicas, self.is_leaving(coordinator));
        let node = &self.nodes[coordinator];
        let version = node.clock.next(node.wall_ms(self.now_ms));
        let record = self.new_record(key, version);
        let op = self.check.begin_write(key, need, &record, self.step);
        // The checker holds the write to the level's promise; the round also waits for one
        // more ack for each pending replica (up or not, as the scenario's rule says).
        let (targets, round_need) = self.write_targets(coordinator, key, need);
        if self.membership.is_some() {
            let ids = targets.iter().map(|t| t.node).collect();
            self.check.set_write_targets(op, coordinator, ids);
        }
        if self.trace_key == Some(key) {
            eprintln!(
                "{} ms step {}: op {op} write {level} at node {coordinator} (view {}) to \
                 {targets:?}, {} acks needed",
                self.now_ms, self.step, self.nodes[coordinator].view.epoch, round_need.required
            );
        }
        match WriteRound::start(round_need, record, &targets, self.now_ms, WRITE_TIMEOUT_MS) {
            Ok((round, effects)) => {
                let round = Round::Write(round);
                self.begin_round(coordinator, op, key, round, WRITE_TIMEOUT_MS, effects);
            }
            Err(error) => self.check.on_reply(op, Err(error), self.step),
        }
    }

    /// Starts a read; the op's id.
    fn start_read(&mut self, coordinator: usize, key: Key, level: &'static str) -> usize {
        let need = need(level, self.cfg.replicas);
        let op = self.check.begin_read(key, need, self.step);
        let targets = self.read_targets(coordinator, key);
        if self.membership.is_some() {
            let ids = targets.iter().map(|t| t.node).collect();
            self.read_sets.insert(op, ids);
        }
        if self.trace_key == Some(key) {
            eprintln!(
                "{} ms step {}: op {op} read {level} at node {coordinator} (view {}) from \
                 {targets:?}",
                self.now_ms, self.step, self.nodes[coordinator].view.epoch
            );
        }
        let started = ReadRound::start(
            need,
            &targets,
            self.now_ms,
            READ_TIMEOUT_MS,
            SPECULATE_AFTER_MS,
        );
        match started {
            Ok((round, effects)) => {
                let round = Round::Read(round);
                self.begin_round(coordinator, op, key, round, READ_TIMEOUT_MS, effects);
            }
            Err(error) => self.check.on_reply(op, Err(error), self.step),
        }
        op
    }

    /// The replicas a read of `key` asks, as `coordinator` sees them: the runtime's
    /// [`Placement::read_targets`] over the node's view and liveness.
    fn read_targets(&self, coordinator: usize, key: Key) -> Vec<Target> {
        let node = &self.nodes[coordinator];
        node.view
            .read_targets(self.key_tokens[key], self.cfg.replicas, node.id, |peer| {
                node.sees_up[self.index_of(peer)]
            })
    }

    /// A write's replicas of `key` and the round's need, as `coordinator` sees them: the
    /// runtime's [`Placement::write_targets`], unless the scenario breaks the rule for
    /// pending replicas.
    fn write_targets(&mut self, coordinator: usize, key: Key, need: Need) -> (Vec<Target>, Need) {
        if self.membership.is_some() {
            let (targets, round_need, extras_from) =
                self.write_targets_in_change(coordinator, key, need);
            self.note_pending_down(&targets[extras_from..]);
            return (targets, round_need);
        }
        let node = &self.nodes[coordinator];
        node.view.write_targets(
            self.key_tokens[key],
            self.cfg.replicas,
            self.now_ms,
            node.id,
            |peer| node.sees_up[self.index_of(peer)],
            |_| need,
        )
    }

    fn index_of(&self, node: NodeId) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == node)
            .expect("a node of the ring")
    }

    // ---- Rounds ----

    fn begin_round(
        &mut self,
        coordinator: usize,
        op: usize,
        key: Key,
        round: Round,
        timeout_ms: u64,
        effects: Vec<Effect>,
    ) {
        let request = self.next_request;
        self.next_request += 1;
        let flight = InFlight {
            op,
            key,
            round,
            tick_at_ms: u64::MAX,
            timeout_at_ms: self.now_ms + timeout_ms,
        };
        self.nodes[coordinator].rounds.insert(request, flight);
        self.run_effects(coordinator, request, effects);
    }

    /// Carries out a round's effects, then drops it if finished or sets its timer.
    fn run_effects(&mut self, coordinator: usize, request: RequestId, effects: Vec<Effect>) {
        let mut pending = VecDeque::from(effects);
        while let Some(effect) = pending.pop_front() {
            let flight = &self.nodes[coordinator].rounds[&request];
            let (op, key, is_read) = (
                flight.op,
                flight.key,
                matches!(flight.round, Round::Read(_)),
            );
            match effect {
                Effect::Read { to } => {
                    let to = self.index_of(to);
                    self.send(coordinator, to, Message::Read { request, key });
                }
                Effect::Write { to, record } => {
                    self.stats.repairs += u64::from(is_read);
                    let to = self.index_of(to);
                    self.send(
                        coordinator,
                        to,
                        Message::Write {
                            request,
                            key,
                            record,
                        },
                    );
                }
                Effect::Hint { target, record } => {
                    let target = self.index_of(target);
                    self.nodes[coordinator].store_hint(target, key, &record);
                    self.stats.hints_stored += 1;
                    let flight = self.nodes[coordinator].rounds.get_mut(&request);
                    if let Some(InFlight {
                        round: Round::Write(write),
                        ..
                    }) = flight
                    {
                        pending.extend(write.on_hint_stored());
                    }
                }
                Effect::Reply(Ok(Some(record)))
                    if is_read
                        && self.membership.is_some()
                        && self.repair_pending_replicas(coordinator, op, key, &record) => {}
                Effect::Reply(Ok(None)) if !is_read && !self.check.is_write(op) => {
                    // The write of a read's merged record to the pending replicas: the read
                    // replies with that record.
                    let Round::Write(write) = &self.nodes[coordinator].rounds[&request].round
                    else {
                        unreachable!("a write round");
                    };
                    let record = write.record().clone();
                    self.check.on_reply(op, Ok(Some(record)), self.step);
                }
                Effect::Reply(reply) => self.check.on_reply(op, reply, self.step),
            }
        }
        self.set_timer(coordinator, request);
    }

    fn set_timer(&mut self, coordinator: usize, request: RequestId) {
        let rounds = &mut self.nodes[coordinator].rounds;
        let Some(flight) = rounds.get_mut(&request) else {
            return;
        };
        if flight.round.is_finished() {
            self.check.on_finished(flight.op);
            rounds.remove(&request);
            return;
        }
        let at_ms = flight.round.deadline_ms().max(self.now_ms);
        if at_ms != flight.tick_at_ms {
            flight.tick_at_ms = at_ms;
            self.queue.push(
                at_ms,
                Event::Tick {
                    node: coordinator,
                    request,
                },
            );
        }
    }

    fn tick(&mut self, coordinator: usize, request: RequestId) {
        let Some(flight) = self.nodes[coordinator].rounds.get_mut(&request) else {
            return; // Finished, or lost in a crash: the timer is a no-op.
        };
        let effects = flight.round.on_tick(self.now_ms);
        let past_timeout = self.now_ms >= flight.timeout_at_ms;
        self.run_effects(coordinator, request, effects);
        assert!(
            !past_timeout || !self.nodes[coordinator].rounds.contains_key(&request),
            "seed {}: request {request} is not finished at its deadline",
            self.cfg.seed
        );
    }

    /// A replica's answer reaches the round's coordinator.
    fn on_answer(&mut self, coordinator: usize, from: usize, request: RequestId, message: Message) {
        let from_id = self.nodes[from].id;
        let node = &mut self.nodes[coordinator];
        let Some(flight) = node.rounds.get_mut(&request) else {
            return; // The round finished: a late or duplicate answer.
        };
        let effects = match (&mut flight.round, message) {
            (Round::Read(read), Message::Record { record, .. }) => {
                if let Some(record) = &record {
                    node.clock.observe(record.version());
                }
                read.on_reply(from_id, record)
            }
            (Round::Read(read), Message::Ack { .. }) => read.on_ack(from_id),
            (Round::Read(read), Message::Failed { .. }) => read.on_failure(from_id),
            (Round::Write(write), Message::Ack { .. }) => write.on_ack(from_id),
            (Round::Write(write), Message::Failed { .. }) => write.on_failure(from_id),
            (round, message) => panic!("{message:?} for {round:?}"),
        };
        self.run_effects(coordinator, request, effects);
    }

    // ---- The end ----

    /// Reads every key at `ALL` (repairing what differs), again for keys whose read failed.
    fn read_every_key_at_all(&mut self) {
        let mut unread: Vec<Key> = (0..self.cfg.keys).collect();
        for _ in 0..FINAL_READ_ATTEMPTS_MAX {
            let reads: Vec<(Key, usize)> = unread
                .iter()
                .map(|&key| {
                    let coordinator = self.some_member();
                    (key, self.start_read(coordinator, key, "ALL"))
                })
                .collect();
            self.settle("after reading at ALL");
            unread = reads
                .into_iter()
                .filter(|&(_, op)| !self.check.succeeded(op))
                .map(|(key, _)| key)
                .collect();
            if unread.is_empty() {
                return;
            }
        }
        panic!(
            "seed {}: keys {unread:?} not read at ALL in {FINAL_READ_ATTEMPTS_MAX} attempts",
            self.cfg.seed
        );
    }

    /// What each replica of `key` holds, in preference order.
    fn replicas_of(&self, key: Key) -> Vec<Option<Record>> {
        let list = self
            .ring
            .preference_list(self.key_tokens[key], self.cfg.replicas);
        list.iter()
            .map(|&node| self.nodes[self.index_of(node)].store.get(&key).cloned())
            .collect()
    }

    /// Every replica of every key holds the same record, holding every acknowledged write;
    /// no other node holds the key.
    fn check_converged(&self) {
        for key in 0..self.cfg.keys {
            let held = self.replicas_of(key);
            assert!(
                held.iter().all(|record| *record == held[0]),
                "seed {}: the replicas of key {key} differ: {held:?}",
                self.cfg.seed
            );
            self.check.check_final(key, held[0].as_ref());
            let list = self
                .ring
                .preference_list(self.key_tokens[key], self.cfg.replicas);
            for node in self.nodes.iter().filter(|n| !n.out) {
                assert!(
                    list.contains(&node.id) || !node.store.contains_key(&key),
                    "seed {}: {} holds key {key} without being its replica",
                    self.cfg.seed,
                    node.id
                );
            }
        }
    }
}

/// `SIM_TRACE_KEY=k`: the run prints what happens to key `k` (and every membership step)
/// on stderr, to see why a seed fails.
fn trace_key_from_env() -> Option<Key> {
    std::env::var("SIM_TRACE_KEY").ok()?.parse().ok()
}
