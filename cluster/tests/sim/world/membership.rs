//! Membership changes under load: a node joins (announces itself, waits for gossip to
//! settle, pulls its ranges with a kept [`Plan`], turns Normal), then a node is decommissioned
//! (announces that it leaves, waits, pushes the ranges it loses to their gainers as writes,
//! turns Left), as `src/cluster/streaming.rs` does.
//!
//! The model:
//! - The membership is a list of views (ring now, ring after the change under way), one per
//!   change. Each node learns a change by gossip 0–300 ms after it happened (the node that
//!   made it, at once); a node down learns the latest view after it restarts. A coordinator
//!   uses its own view: a write goes to the key's replicas in its ring and to its pending
//!   replicas (in the future ring, not in the ring now), each pending replica up adding one
//!   ack to the level; reads use the ring now only.
//! - A source answers a `StreamRead` by walking [`STREAM_BATCH_KEYS`] keys of its store from
//!   the cursor, returning the records (tombstones included) whose token is in the ranges.
//!   The joining node merges them, keeps the plan after every batch (a string standing for
//!   `data_dir/stream`, which survives a crash) and resumes from it after a restart. A pull
//!   not answered in time is retried; if its source looks down then, [`Plan::fail_over`].
//! - Decommission pushes the leaving node's records of each moved range to its gainer,
//!   batch by batch, each batch tried [`PUSH_ATTEMPTS`] times; after that the decommission
//!   is abandoned (the node turns Normal again) and retried later, as an operator would. A
//!   crash of the leaving node abandons it too. A node that left keeps nothing: its rounds
//!   and its hints are gone with it.
//! - Some time after a node learns a settled ring, it drops the keys it no longer
//!   replicates ([`CLEANUP_DELAY_MS`]), unless it was down then (as the runtime, which
//!   cleans once per ring change); the end of the run cleans every node once more.
//! - Directed faults, on top of the random ones: the joining node crashes after a few
//!   batches; in some seeds, a source crashes in the middle of its walk for long enough
//!   that the joining node fails over.
//!
//! [`Plan`]: ringcache_cluster::transfer::Plan
//! [`Plan::fail_over`]: ringcache_cluster::transfer::Plan::fail_over

use std::collections::BTreeMap;
use std::rc::Rc;

use ringcache_cluster::transfer::{Plan, Ranges, in_ranges, moved_ranges, pending_replicas};
use ringcache_cluster::{Need, NodeId, Ring, Target, WriteRound};
use ringcache_storage::Record;

use super::{Event as WorldEvent, Message, VNODES, World};
use crate::sim::node::{Key, Round, View};

/// How late a node learns a membership change by gossip.
const VIEW_DELAY_MS_MAX: u64 = 300;
/// How long a node waits after announcing a join or a leave before it streams, so that every
/// coordinator knows the pending replicas first: more than gossip takes, plus a write's trip.
/// The runtime's `JOIN_SETTLE` and `STATUS_SETTLE`, scaled to the simulated gossip.
const SETTLE_MS: u64 = VIEW_DELAY_MS_MAX + 200;
/// How long a node that learned a new ring keeps writing to the replicas of the one before
/// (while the nodes that have not learned it yet read from them): longer than gossip takes.
const HANDOVER_MS: u64 = VIEW_DELAY_MS_MAX + 200;
/// Keys a source walks per `StreamRead` (the runtime walks 1,000 records; the simulated
/// stores hold 20 keys, and a walk must take several batches to be cut in the middle).
const STREAM_BATCH_KEYS: usize = 2;
/// Keys the leaving node walks per pushed batch.
const PUSH_BATCH_KEYS: usize = 2;
/// A stream request or a push not answered within this has failed.
const TRANSFER_TIMEOUT_MS: u64 = 100;
/// Pause before retrying a source or a target.
const RETRY_MS: u64 = 100;
/// Tries of one pushed batch before the decommission is abandoned (the runtime's).
const PUSH_ATTEMPTS: usize = 5;
/// Failed pulls a join may go through before the run is declared stuck.
const PULL_FAILURES_MAX: usize = 2_000;
/// Decommissions abandoned before the run is declared stuck.
const LEAVE_ABORTS_MAX: usize = 50;
/// How long a ring must be known before a node drops what it no longer replicates.
const CLEANUP_DELAY_MS: u64 = 1_000;
/// When the join starts, and how long after it finished the decommission starts.
const JOIN_AT_MS: (u64, u64) = (200, 800);
const LEAVE_AFTER_MS: (u64, u64) = (200, 800);
/// The joining node crashes after this many of its batches.
const JOINER_CRASH_AFTER_BATCHES: (u64, u64) = (1, 3);
/// How long the joining node and a crashed source stay down.
const JOINER_DOWN_MS: (u64, u64) = (50, 1_500);
const SOURCE_DOWN_MS: (u64, u64) = (400, 1_500);
/// Once the clients are done, how long the change under way may take to finish.
const FINISH_MS_MAX: u64 = 30_000;

/// How a write treats the pending replicas of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingRule {
    /// It goes to them, and each adds one ack to the level, up or not (one that is down
    /// gets a hint, so the level must be met by the others): of W + 1 acks at most one is
    /// from the replica that drops out, so W of the replicas after the change hold it.
    /// Cassandra's rule (`blockFor` = the level's + the pending endpoints).
    EachCounts,
    /// It goes to them, and each one up adds one ack; one down gets a hint and adds
    /// nothing: the runtime's rule today (`src/cluster/mod.rs`, `write_targets`). The W
    /// acks may then include the replica that drops out.
    UpOnesCount,
    /// It ignores them (a broken rule, to see the checker catch what it loses).
    Ignored,
}

/// What a run does to the membership, and which of the runtime's rules it follows.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// Wait [`SETTLE_MS`] after announcing a join or a leave before streaming.
    pub settle: bool,
    /// How writes treat pending replicas.
    pub pending: PendingRule,
    /// After a node learns that a join or a leave finished, its writes go for
    /// [`HANDOVER_MS`] to the replicas of the ring before too, as to pending replicas.
    pub handover: bool,
    /// A read that repairs its read set before replying (QUORUM and above) also writes the
    /// merged record to the key's pending replicas, as a write would, before replying.
    pub repair_pending: bool,
    /// Crash a source of the join in the middle of its walk, for long enough that the
    /// joining node fails over to the other replicas.
    pub crash_source: bool,
}

/// Counts for the summary line, and what the test asserts on.
#[derive(Debug, Default, Clone)]
pub struct MembershipStats {
    /// Walks in the join's first plan.
    pub pulls_planned: usize,
    /// Batches the joining node merged, and their records.
    pub batches: u64,
    pub records_streamed: u64,
    /// Crashes of the joining node while it streamed.
    pub joiner_crashes_streaming: u64,
    /// Restarts of the join from its kept plan, and those whose plan had progress in it.
    pub resumes: u64,
    pub resumes_with_progress: u64,
    /// Directed crashes of a stream source, and walks failed over.
    pub sources_crashed: u64,
    pub fail_overs: u64,
    /// Walks failed over with no fallback left: they end with their ranges not walked.
    pub fail_overs_to_nothing: u64,
    /// Pull requests that failed (timed out).
    pub pull_failures: usize,
    /// When the joining node turned Normal and the leaving one Left (virtual ms).
    pub joined_at_ms: Option<u64>,
    pub left_at_ms: Option<u64>,
    /// Batches and records pushed by the leaving node; decommissions abandoned.
    pub pushes: u64,
    pub records_pushed: u64,
    pub leave_aborts: usize,
    /// Hints the leaving node held when it left (lost with it).
    pub hints_lost_on_leave: usize,
    /// Hints dropped because their target is no longer a member.
    pub hints_dropped: u64,
    /// Records dropped by cleanups during the run.
    pub discarded: u64,
    /// Records of keys a node no longer replicates found at the end (left by a cleanup
    /// that did not run, or brought back by a late hint).
    pub foreign_at_end: u64,
}

/// Membership steps.
#[derive(Debug)]
pub(in crate::sim) enum Event {
    /// `node` learns view `epoch` by gossip.
    Learn {
        node: usize,
        epoch: usize,
    },
    StartJoin,
    /// The joining node's settle is over: it plans its pulls.
    PlanJoin {
        generation: u64,
    },
    PullTimeout {
        request: u64,
    },
    PullRetry {
        generation: u64,
    },
    StartLeave,
    /// The leaving node's settle is over: it pushes.
    StartPush {
        generation: u64,
    },
    PushTimeout {
        request: u64,
    },
    PushRetry {
        generation: u64,
    },
    /// `node` drops what it does not replicate in view `epoch`, if it still has it.
    Cleanup {
        node: usize,
        epoch: usize,
    },
    /// `node` stops writing to the ring before view `epoch`.
    EndHandover {
        node: usize,
        epoch: usize,
    },
}

/// The streaming part of the peer protocol.
#[derive(Debug, Clone)]
pub(in crate::sim) enum Transfer {
    StreamRead {
        request: u64,
        cursor: u64,
        ranges: Ranges,
    },
    Stream {
        request: u64,
        cursor: u64,
        records: Vec<(Key, Record)>,
    },
    Push {
        request: u64,
        records: Vec<(Key, Record)>,
    },
    PushAck {
        request: u64,
    },
}

/// The joining node's streaming, in memory (lost in a crash; the plan is kept on disk).
#[derive(Debug)]
enum Join {
    NotYet,
    Settling,
    Pulling {
        plan: Plan,
        index: usize,
        request: Option<u64>,
    },
    Crashed,
    Done,
}

/// The leaving node's pushes.
#[derive(Debug)]
enum Leave {
    NotYet,
    Settling,
    Pushing {
        targets: Vec<(NodeId, Ranges)>,
        at: usize,
        cursor: u64,
        /// The batch in flight and the cursor after it.
        request: Option<(u64, u64)>,
        attempts: usize,
    },
    Crashed,
    Done,
}

/// The membership changes of a run.
#[derive(Debug)]
pub(in crate::sim) struct Membership {
    scenario: Scenario,
    /// Every view there was, by epoch; the last is the membership as it is.
    views: Vec<View>,
    joiner: usize,
    join: Join,
    join_generation: u64,
    joiner_crash_after: u64,
    joiner_crashed: bool,
    /// The kept plan when the joining node crashed, to compare with what it resumes from.
    plan_at_crash: Option<String>,
    leaver: Option<usize>,
    leave: Leave,
    leave_generation: u64,
    next_request: u64,
    stats: MembershipStats,
}

impl Membership {
    /// Node `joiner` will join the cluster of view `first`.
    pub(in crate::sim) fn new(scenario: Scenario, joiner: usize, first: View) -> Membership {
        Membership {
            scenario,
            views: vec![first],
            joiner,
            join: Join::NotYet,
            join_generation: 0,
            joiner_crash_after: 0,
            joiner_crashed: false,
            plan_at_crash: None,
            leaver: None,
            leave: Leave::NotYet,
            leave_generation: 0,
            next_request: 0,
            stats: MembershipStats::default(),
        }
    }

    fn settle_ms(&self) -> u64 {
        if self.scenario.settle { SETTLE_MS } else { 0 }
    }

    fn request(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }
}

fn ring_of(members: impl IntoIterator<Item = NodeId>) -> Ring {
    Ring::new(members, VNODES)
}

impl World {
    fn m(&mut self) -> &mut Membership {
        self.membership
            .as_mut()
            .expect("a run with membership changes")
    }

    /// Counts of the membership changes, if the run has them.
    pub fn membership_stats(&self) -> Option<&MembershipStats> {
        self.membership.as_ref().map(|m| &m.stats)
    }

    /// The clients run while a node joins and then one leaves; once both are done and every
    /// fault healed: the final replicas keep every promise, reads at every level through the
    /// final ring are checked, and the replicas converge.
    pub(super) fn run_with_membership(&mut self) {
        self.queue.push(0, WorldEvent::ClientOp);
        let first_fault = self
            .rng
            .between(super::FAULT_INTERVAL_MS.0, super::FAULT_INTERVAL_MS.1);
        self.queue.push(first_fault, WorldEvent::Fault);
        for node in 0..self.nodes.len() {
            self.queue.push(
                super::HINT_REPLAY_INTERVAL_MS + node as u64,
                WorldEvent::HintReplay { node },
            );
        }
        let join_ms = self.rng.between(JOIN_AT_MS.0, JOIN_AT_MS.1);
        self.queue
            .push(join_ms, WorldEvent::Membership(Event::StartJoin));
        let ops = self.cfg.ops;
        assert!(self.run_until(u64::MAX, |w| w.ops_issued == ops));
        // A change still under way finishes with the faults healed (under the random faults
        // a decommission may be abandoned again and again).
        self.heal_all();
        let until_ms = self.now_ms + FINISH_MS_MAX;
        let finished = self.run_until(until_ms, World::membership_done);
        let seed = self.cfg.seed;
        let m = self.m();
        assert!(
            finished,
            "seed {seed}: the join or the leave did not finish in {FINISH_MS_MAX} ms after the \
             clients stopped: {:?} {:?}",
            m.join, m.leave
        );

        let healed_ms = self.now_ms;
        self.settle("after healing");
        self.stats.drain_ms = self.now_ms - healed_ms;

        // Before any final read repairs what the replicas hold.
        for key in 0..self.cfg.keys {
            self.check.check_held(key, &self.replicas_of(key));
        }
        self.check
            .check_handed_off_to(|key| self.final_replicas_of(key));
        // A read at every level through the final ring, checked against every promise.
        for level in ["ONE", "QUORUM", "ALL"] {
            for key in 0..self.cfg.keys {
                let coordinator = self.some_member();
                self.start_read(coordinator, key, level);
            }
            self.settle("after the final reads");
        }
        self.clean_all_at_end();

        self.read_every_key_at_all();
        self.settle("after the final reads at ALL");
        self.check_converged();
        self.check.check_all_replied();
        self.check_membership_end();
        self.stats.end_ms = self.now_ms;
    }

    /// A member of the cluster, at random.
    pub(super) fn some_member(&mut self) -> usize {
        let members: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].out)
            .collect();
        members[self.rng.index(members.len())]
    }

    fn final_replicas_of(&self, key: Key) -> Vec<(NodeId, Option<Record>)> {
        let list = self
            .ring
            .preference_list(self.key_tokens[key], self.cfg.replicas);
        list.iter()
            .map(|&node| {
                (
                    node,
                    self.nodes[self.index_of(node)].store.get(&key).cloned(),
                )
            })
            .collect()
    }

    fn membership_done(&self) -> bool {
        self.membership
            .as_ref()
            .is_none_or(|m| matches!(m.join, Join::Done) && matches!(m.leave, Leave::Done))
    }

    /// No change under way, and every member knows the latest view.
    pub(super) fn membership_is_quiet(&self) -> bool {
        let Some(m) = &self.membership else {
            return true;
        };
        let latest = m.views.len() - 1;
        self.membership_done()
            && self
                .nodes
                .iter()
                .all(|n| n.out || (n.view.epoch == latest && n.handover.is_none()))
    }

    fn check_membership_end(&mut self) {
        let seed = self.cfg.seed;
        let (joiner, leaver) = (self.m().joiner, self.m().leaver);
        let joiner_id = self.nodes[joiner].id;
        assert!(
            self.ring.members().contains(&joiner_id) || Some(joiner) == leaver,
            "seed {seed}: the joining node is not in the final ring"
        );
        let leaver = leaver.expect("a node left");
        assert!(
            !self.ring.members().contains(&self.nodes[leaver].id),
            "seed {seed}: the node that left is still in the ring"
        );
        assert_eq!(self.ring.members().len(), self.cfg.nodes);
        let m = self.m();
        assert!(m.stats.joined_at_ms.is_some() && m.stats.left_at_ms.is_some());
        assert!(
            !m.joiner_crashed || m.stats.resumes_with_progress > 0,
            "seed {seed}: the joining node crashed mid-stream but did not resume a plan with \
             progress: {:?}",
            m.stats
        );
    }

    // ---- Gossip ----

    /// A new membership: `ring` now, `future` after the change under way. Node `origin`,
    /// which made the change, knows it at once; the others learn it by gossip.
    fn announce(&mut self, ring: Ring, future: Option<Ring>, origin: usize) {
        self.ring = ring.clone();
        let m = self.m();
        let view = View {
            epoch: m.views.len(),
            ring: Rc::new(ring),
            future: future.map(Rc::new),
        };
        m.views.push(view.clone());
        self.learn(origin, view.epoch);
        for node in 0..self.nodes.len() {
            if node != origin && !self.nodes[node].out {
                let at_ms = self.now_ms + self.rng.between(0, VIEW_DELAY_MS_MAX);
                let event = Event::Learn {
                    node,
                    epoch: view.epoch,
                };
                self.queue.push(at_ms, WorldEvent::Membership(event));
            }
        }
    }

    fn learn(&mut self, node: usize, epoch: usize) {
        let view = self.m().views[epoch].clone();
        let known = &mut self.nodes[node];
        if known.out || known.crashed || epoch <= known.view.epoch {
            return;
        }
        let ring_changed = known.view.ring.members() != view.ring.members();
        let before = std::mem::replace(&mut known.view, view.clone());
        let handover = self
            .membership
            .as_ref()
            .is_some_and(|m| m.scenario.handover);
        if ring_changed && handover {
            self.nodes[node].handover = Some(before.ring);
            let event = Event::EndHandover { node, epoch };
            self.queue
                .push(self.now_ms + HANDOVER_MS, WorldEvent::Membership(event));
        }
        if view.future.is_none() && ring_changed {
            let event = Event::Cleanup { node, epoch };
            self.queue.push(
                self.now_ms + CLEANUP_DELAY_MS,
                WorldEvent::Membership(event),
            );
        }
    }

    /// The key's pending replicas as `coordinator` sees them (none when the rule is off).
    pub(super) fn pending_targets(&self, coordinator: usize, key: Key) -> Vec<Target> {
        let m = self.membership.as_ref().expect("membership");
        let node = &self.nodes[coordinator];
        if m.scenario.pending == PendingRule::Ignored {
            return Vec::new();
        }
        let (token, n) = (self.key_tokens[key], self.cfg.replicas);
        let mut pending = Vec::new();
        if let Some(future) = &node.view.future {
            pending = pending_replicas(&node.view.ring, future, token, n);
        }
        if let Some(before) = &node.handover {
            // Replicas in the ring before that are not any more, but for those that left.
            for old in pending_replicas(&node.view.ring, before, token, n) {
                if !pending.contains(&old) && !self.nodes[self.index_of(old)].out {
                    pending.push(old);
                }
            }
        }
        pending
            .into_iter()
            .map(|pending| Target {
                node: pending,
                alive: node.sees_up[self.index_of(pending)],
            })
            .collect()
    }

    /// Whether a pending replica that is down adds an ack to the level.
    pub(super) fn pending_counts_when_down(&self) -> bool {
        let m = self.membership.as_ref().expect("membership");
        m.scenario.pending == PendingRule::EachCounts
    }

    /// Read `op` of `key` on `coordinator` merged `record` and repaired its read set: under
    /// [`Scenario::repair_pending`], if it blocks on its repair, it writes `record` to the
    /// nodes a write would go to now but the read did not ask (the pending replicas, or the
    /// new replicas if the coordinator learned of a finished change during the read), and
    /// replies when they acknowledged (a write round of the same op). Whether it did (else
    /// the caller replies).
    pub(super) fn repair_pending_replicas(
        &mut self,
        coordinator: usize,
        op: usize,
        key: Key,
        record: &Record,
    ) -> bool {
        let need = self.check.need_of(op);
        let m = self.membership.as_ref().expect("membership");
        if !m.scenario.repair_pending || !need.blocking_repair {
            return false;
        }
        let read_set = self.read_sets.get(&op).cloned().unwrap_or_default();
        let mut targets = self.targets(coordinator, key, false);
        targets.extend(self.pending_targets(coordinator, key));
        targets.retain(|t| !read_set.contains(&t.node));
        let counts_when_down = self.pending_counts_when_down();
        let required = targets
            .iter()
            .filter(|t| t.alive || counts_when_down)
            .count();
        if required == 0 {
            return false;
        }
        let repair_need = Need {
            required,
            hints_count: false,
            ..need
        };
        let (now_ms, timeout_ms) = (self.now_ms, super::WRITE_TIMEOUT_MS);
        match WriteRound::start(repair_need, record.clone(), &targets, now_ms, timeout_ms) {
            Ok((round, effects)) => {
                let round = Round::Write(round);
                self.begin_round(coordinator, op, key, round, timeout_ms, effects);
            }
            Err(error) => self.check.on_reply(op, Err(error), self.step),
        }
        true
    }

    /// Drops the hints `node` keeps for nodes no longer members in its view (a node that
    /// left never comes back for them).
    pub(super) fn drop_hints_for_departed(&mut self, node: usize) {
        let view = self.nodes[node].view.clone();
        for target in 0..self.nodes.len() {
            let id = self.nodes[target].id;
            let member = view.ring.members().contains(&id)
                || view
                    .future
                    .as_ref()
                    .is_some_and(|f| f.members().contains(&id));
            if !member && !self.nodes[node].hints[target].is_empty() {
                let dropped = std::mem::take(&mut self.nodes[node].hints[target]);
                self.m().stats.hints_dropped += dropped.len() as u64;
            }
        }
    }

    // ---- Crashes ----

    pub(super) fn membership_on_crash(&mut self, node: usize) {
        let Some(m) = self.membership.as_mut() else {
            return;
        };
        if node == m.joiner && matches!(m.join, Join::Settling | Join::Pulling { .. }) {
            if matches!(m.join, Join::Pulling { .. }) {
                m.stats.joiner_crashes_streaming += 1;
            }
            m.join = Join::Crashed;
            m.join_generation += 1;
            m.plan_at_crash = self.nodes[node].plan_file.clone();
        }
        if Some(node) == m.leaver && matches!(m.leave, Leave::Settling | Leave::Pushing { .. }) {
            m.leave = Leave::Crashed;
            m.leave_generation += 1;
        }
    }

    pub(super) fn membership_on_restart(&mut self, node: usize) {
        let Some(m) = self.membership.as_ref() else {
            return;
        };
        // It asks a peer for the membership (push-pull) before it serves a client: a node
        // that was down through a change would otherwise read from a ring long gone, beyond
        // what the handover covers (seed 33 of the CI list fails without this).
        let latest = m.views.len() - 1;
        self.learn(node, latest);
        if node == self.m().joiner && matches!(self.m().join, Join::Crashed) {
            self.resume_join(node);
        }
        if Some(node) == self.m().leaver && matches!(self.m().leave, Leave::Crashed) {
            self.abandon_leave(node);
        }
    }

    // ---- Join ----

    fn start_join(&mut self) {
        let joiner = self.m().joiner;
        let node = &mut self.nodes[joiner];
        node.out = false;
        node.crashed = false;
        node.sees_up.fill(false);
        node.sees_up[joiner] = true;
        let id = node.id;
        self.views_change();
        let future = ring_of(self.ring.members().iter().copied().chain([id]));
        self.announce(self.ring.clone(), Some(future), joiner);
        self.m().join = Join::Settling;
        self.m().joiner_crash_after = self
            .rng
            .between(JOINER_CRASH_AFTER_BATCHES.0, JOINER_CRASH_AFTER_BATCHES.1);
        self.schedule_plan();
    }

    fn schedule_plan(&mut self) {
        let now_ms = self.now_ms;
        let m = self.m();
        let event = Event::PlanJoin {
            generation: m.join_generation,
        };
        let at_ms = now_ms + m.settle_ms();
        self.queue.push(at_ms, WorldEvent::Membership(event));
    }

    /// The settle is over: the pulls for the ranges the joining node gains, each from the
    /// replica that loses it if that one looks up.
    fn plan_join(&mut self, generation: u64) {
        let joiner = self.m().joiner;
        if generation != self.m().join_generation || !matches!(self.m().join, Join::Settling) {
            return;
        }
        let node = &self.nodes[joiner];
        let after = ring_of(node.view.ring.members().iter().copied().chain([node.id]));
        let moved = moved_ranges(&node.view.ring, &after, self.cfg.replicas);
        let plan = Plan::gains(&moved, node.id, |n| node.sees_up[self.index_of(n)]);
        if self.trace_key.is_some() {
            eprintln!("plan: {plan:?}, sees up {:?}", node.sees_up);
        }
        self.nodes[joiner].plan_file = Some(plan.encode());
        let m = self.m();
        m.stats.pulls_planned = plan.pulls.len();
        m.join = Join::Pulling {
            plan,
            index: 0,
            request: None,
        };
        self.pull_next();
    }

    /// Resumes the join after a restart: from the kept plan, or from the settle if there
    /// was none yet.
    fn resume_join(&mut self, joiner: usize) {
        let Some(text) = self.nodes[joiner].plan_file.clone() else {
            self.m().join = Join::Settling;
            self.schedule_plan();
            return;
        };
        let seed = self.cfg.seed;
        let m = self.m();
        assert_eq!(
            m.plan_at_crash.as_deref(),
            Some(text.as_str()),
            "seed {seed}: the kept plan changed while the joining node was down"
        );
        let plan = Plan::decode(&text).expect("the kept plan reads back");
        assert_eq!(
            plan.encode(),
            text,
            "seed {seed}: the plan does not round trip"
        );
        m.stats.resumes += 1;
        if plan.pulls.iter().any(|p| p.done || p.cursor != 0) {
            m.stats.resumes_with_progress += 1;
        }
        m.join = Join::Pulling {
            plan,
            index: 0,
            request: None,
        };
        self.pull_next();
    }

    /// Asks the source of the next walk not done for a batch, or finishes the join.
    fn pull_next(&mut self) {
        let request = self.m().request();
        let m = self.m();
        let joiner = m.joiner;
        let Join::Pulling {
            plan,
            index,
            request: in_flight,
        } = &mut m.join
        else {
            return;
        };
        while *index < plan.pulls.len() && plan.pulls[*index].done {
            *index += 1;
        }
        let Some(pull) = plan.pulls.get(*index) else {
            self.finish_join();
            return;
        };
        let message = Transfer::StreamRead {
            request,
            cursor: pull.cursor,
            ranges: pull.ranges.clone(),
        };
        let source = pull.source;
        *in_flight = Some(request);
        let source = self.index_of(source);
        self.send(joiner, source, Message::Transfer(message));
        let event = Event::PullTimeout { request };
        self.queue.push(
            self.now_ms + TRANSFER_TIMEOUT_MS,
            WorldEvent::Membership(event),
        );
    }

    /// A batch came back: merge it, keep the plan, then maybe crash someone.
    fn on_stream(&mut self, request: u64, cursor: u64, records: Vec<(Key, Record)>) {
        let m = self.m();
        let joiner = m.joiner;
        let Join::Pulling {
            plan,
            index,
            request: in_flight,
        } = &mut m.join
        else {
            return;
        };
        if *in_flight != Some(request) {
            return; // Late, or a duplicate.
        }
        *in_flight = None;
        let pull = &mut plan.pulls[*index];
        pull.cursor = cursor;
        pull.done = cursor == 0;
        let (source, walk_left) = (pull.source, !pull.done);
        let text = plan.encode();
        let work_left = plan.ranges_pending() > 0;
        m.stats.batches += 1;
        m.stats.records_streamed += records.len() as u64;
        let crash_joiner =
            !m.joiner_crashed && m.stats.batches >= m.joiner_crash_after && work_left;
        let crash_source = m.scenario.crash_source
            && m.stats.sources_crashed == 0
            && (m.stats.resumes > 0 || m.joiner_crashed)
            && walk_left;
        for (key, record) in &records {
            self.nodes[joiner].apply(*key, record);
        }
        self.nodes[joiner].plan_file = Some(text);
        if crash_joiner {
            self.m().joiner_crashed = true;
            let down_ms = self.rng.between(JOINER_DOWN_MS.0, JOINER_DOWN_MS.1);
            self.crash(joiner, down_ms);
            return;
        }
        let source = self.index_of(source);
        let others_up = (0..self.nodes.len())
            .all(|i| i == source || self.nodes[i].out || !self.nodes[i].crashed);
        if crash_source && source != joiner && others_up {
            self.m().stats.sources_crashed += 1;
            let down_ms = self.rng.between(SOURCE_DOWN_MS.0, SOURCE_DOWN_MS.1);
            self.crash(source, down_ms);
        }
        self.pull_next();
    }

    /// A pull was not answered: retry it later, from the fallbacks if its source looks down.
    fn pull_timeout(&mut self, request: u64) {
        let seed = self.cfg.seed;
        let m = self.m();
        let joiner = m.joiner;
        let generation = m.join_generation;
        let Join::Pulling {
            plan,
            index,
            request: in_flight,
        } = &mut m.join
        else {
            return;
        };
        if *in_flight != Some(request) {
            return;
        }
        *in_flight = None;
        m.stats.pull_failures += 1;
        assert!(
            m.stats.pull_failures < PULL_FAILURES_MAX,
            "seed {seed}: the join is stuck: {plan:?}"
        );
        let source = plan.pulls[*index].source;
        let joiner_id = self.nodes[joiner].id;
        let source_index = self.index_of(source);
        if !self.nodes[joiner].sees_up[source_index] {
            let m = self.m();
            let Join::Pulling { plan, index, .. } = &mut m.join else {
                unreachable!("pulling");
            };
            if plan.fail_over(*index, joiner_id) == 0 {
                // A walk with no fallback ends with its ranges not walked (see the report of
                // `Plan::fail_over`): counted, so a run shows how often.
                m.stats.fail_overs_to_nothing += 1;
            }
            let text = plan.encode();
            m.stats.fail_overs += 1;
            self.nodes[joiner].plan_file = Some(text);
        }
        let event = Event::PullRetry { generation };
        self.queue
            .push(self.now_ms + RETRY_MS, WorldEvent::Membership(event));
    }

    /// Every walk is done: the joining node turns Normal.
    fn finish_join(&mut self) {
        let joiner = self.m().joiner;
        self.m().join = Join::Done;
        self.m().stats.joined_at_ms = Some(self.now_ms);
        self.nodes[joiner].plan_file = None;
        let ring = ring_of(
            self.ring
                .members()
                .iter()
                .copied()
                .chain([self.nodes[joiner].id]),
        );
        self.announce(ring, None, joiner);
        let at_ms = self.now_ms + self.rng.between(LEAVE_AFTER_MS.0, LEAVE_AFTER_MS.1);
        self.queue
            .push(at_ms, WorldEvent::Membership(Event::StartLeave));
    }

    // ---- Leave ----

    /// `RING DECOMMISSION` on a member up, at random: it turns Leaving.
    fn start_leave(&mut self) {
        let leaver = match self.m().leaver {
            Some(leaver) => leaver,
            None => self.some_member(),
        };
        if self.nodes[leaver].crashed {
            let event = Event::StartLeave;
            self.queue
                .push(self.now_ms + RETRY_MS, WorldEvent::Membership(event));
            return;
        }
        let m = self.m();
        m.leaver = Some(leaver);
        m.leave = Leave::Settling;
        let id = self.nodes[leaver].id;
        let future = ring_of(self.ring.members().iter().copied().filter(|&n| n != id));
        self.announce(self.ring.clone(), Some(future), leaver);
        let now_ms = self.now_ms;
        let m = self.m();
        let event = Event::StartPush {
            generation: m.leave_generation,
        };
        let at_ms = now_ms + m.settle_ms();
        self.queue.push(at_ms, WorldEvent::Membership(event));
    }

    /// The settle is over: push every range the leaving node loses to its gainers.
    fn start_push(&mut self, generation: u64) {
        let m = self.m();
        if generation != m.leave_generation || !matches!(m.leave, Leave::Settling) {
            return;
        }
        let leaver = m.leaver.expect("a leaver");
        let node = &self.nodes[leaver];
        let after = ring_of(
            node.view
                .ring
                .members()
                .iter()
                .copied()
                .filter(|&n| n != node.id),
        );
        let moved = moved_ranges(&node.view.ring, &after, self.cfg.replicas);
        let mut by_target: BTreeMap<NodeId, Ranges> = BTreeMap::new();
        for m in moved.iter().filter(|m| m.losers().contains(&node.id)) {
            for target in m.gainers() {
                by_target.entry(target).or_default().push((m.first, m.last));
            }
        }
        self.m().leave = Leave::Pushing {
            targets: by_target.into_iter().collect(),
            at: 0,
            cursor: 0,
            request: None,
            attempts: 0,
        };
        self.push_next();
    }

    /// Sends the next batch that holds records, or turns Left when none is left.
    fn push_next(&mut self) {
        let request = self.m().request();
        let m = self.membership.as_mut().expect("membership");
        let leaver = m.leaver.expect("a leaver");
        let Leave::Pushing {
            targets,
            at,
            cursor,
            request: in_flight,
            ..
        } = &mut m.leave
        else {
            return;
        };
        let store = &self.nodes[leaver].store;
        // The next batch that holds records, if a range is left to push.
        let batch = loop {
            let Some((target, ranges)) = targets.get(*at) else {
                break None;
            };
            let (next, records) = walk(store, &self.key_tokens, *cursor, PUSH_BATCH_KEYS, ranges);
            if records.is_empty() {
                if next == 0 {
                    *at += 1;
                }
                *cursor = next;
                continue;
            }
            *in_flight = Some((request, next));
            break Some((*target, records));
        };
        let Some((target, records)) = batch else {
            self.finish_leave(leaver);
            return;
        };
        m.stats.pushes += 1;
        m.stats.records_pushed += records.len() as u64;
        let to = self.index_of(target);
        let message = Transfer::Push { request, records };
        self.send(leaver, to, Message::Transfer(message));
        let event = Event::PushTimeout { request };
        self.queue.push(
            self.now_ms + TRANSFER_TIMEOUT_MS,
            WorldEvent::Membership(event),
        );
    }

    fn on_push_ack(&mut self, request: u64) {
        let m = self.m();
        let Leave::Pushing {
            at,
            cursor,
            request: in_flight,
            attempts,
            ..
        } = &mut m.leave
        else {
            return;
        };
        let Some((expected, next)) = *in_flight else {
            return;
        };
        if expected != request {
            return;
        }
        *in_flight = None;
        *attempts = 0;
        *cursor = next;
        if next == 0 {
            *at += 1;
        }
        self.push_next();
    }

    fn push_timeout(&mut self, request: u64) {
        let m = self.m();
        let leaver = m.leaver.expect("a leaver");
        let generation = m.leave_generation;
        let Leave::Pushing {
            request: in_flight,
            attempts,
            ..
        } = &mut m.leave
        else {
            return;
        };
        if in_flight.map(|(r, _)| r) != Some(request) {
            return;
        }
        *in_flight = None;
        *attempts += 1;
        if *attempts == PUSH_ATTEMPTS {
            self.abandon_leave(leaver);
            return;
        }
        let event = Event::PushRetry { generation };
        self.queue
            .push(self.now_ms + RETRY_MS, WorldEvent::Membership(event));
    }

    /// The decommission stopped (a target did not take the records, or the node crashed):
    /// the node turns Normal again, and the operator asks again later.
    fn abandon_leave(&mut self, leaver: usize) {
        let seed = self.cfg.seed;
        let m = self.m();
        m.leave = Leave::NotYet;
        m.leave_generation += 1;
        m.stats.leave_aborts += 1;
        assert!(
            m.stats.leave_aborts < LEAVE_ABORTS_MAX,
            "seed {seed}: the decommission never gets through"
        );
        self.announce(self.ring.clone(), None, leaver);
        let at_ms = self.now_ms + self.rng.between(LEAVE_AFTER_MS.0, LEAVE_AFTER_MS.1);
        self.queue
            .push(at_ms, WorldEvent::Membership(Event::StartLeave));
    }

    /// Every range is pushed: the node turns Left and stops, with its rounds and its hints.
    fn finish_leave(&mut self, leaver: usize) {
        let now_ms = self.now_ms;
        let m = self.m();
        m.leave = Leave::Done;
        m.stats.left_at_ms = Some(now_ms);
        let id = self.nodes[leaver].id;
        let ring = ring_of(self.ring.members().iter().copied().filter(|&n| n != id));
        self.announce(ring, None, leaver);
        let node = &mut self.nodes[leaver];
        node.out = true;
        node.crashed = true;
        let hints = node.hint_count();
        node.hints.iter_mut().for_each(BTreeMap::clear);
        let lost = std::mem::take(&mut node.rounds);
        for flight in lost.values() {
            self.check.on_lost(flight.op);
        }
        if hints > 0 {
            self.m().stats.hints_lost_on_leave += hints;
            self.check.forget_hints_of(leaver);
        }
        self.views_change();
    }

    // ---- Cleanup ----

    fn cleanup(&mut self, node: usize, epoch: usize) {
        let n = &self.nodes[node];
        if n.out || n.crashed || n.view.epoch != epoch {
            return;
        }
        let dropped = self.drop_foreign(node);
        self.m().stats.discarded += dropped;
    }

    /// Drops the keys `node` does not replicate in its view's ring; how many.
    fn drop_foreign(&mut self, node: usize) -> u64 {
        let (ring, id) = (self.nodes[node].view.ring.clone(), self.nodes[node].id);
        let (tokens, n) = (&self.key_tokens, self.cfg.replicas);
        let store = &mut self.nodes[node].store;
        let before = store.len();
        store.retain(|&key, _| ring.preference_list(tokens[key], n).contains(&id));
        (before - store.len()) as u64
    }

    /// The next cleanup of every member, once the run is quiet.
    fn clean_all_at_end(&mut self) {
        for node in 0..self.nodes.len() {
            if !self.nodes[node].out {
                let dropped = self.drop_foreign(node);
                self.m().stats.foreign_at_end += dropped;
            }
        }
    }

    // ---- Dispatch ----

    pub(super) fn on_membership_event(&mut self, event: Event) {
        match event {
            Event::Learn { node, epoch } => self.learn(node, epoch),
            Event::StartJoin => self.start_join(),
            Event::PlanJoin { generation } => self.plan_join(generation),
            Event::PullTimeout { request } => self.pull_timeout(request),
            Event::PullRetry { generation } => {
                let m = self.m();
                let idle = matches!(m.join, Join::Pulling { request: None, .. });
                if generation == m.join_generation && idle {
                    self.pull_next();
                }
            }
            Event::StartLeave => self.start_leave(),
            Event::StartPush { generation } => self.start_push(generation),
            Event::PushTimeout { request } => self.push_timeout(request),
            Event::PushRetry { generation } => {
                let m = self.m();
                let idle = matches!(m.leave, Leave::Pushing { request: None, .. });
                if generation == m.leave_generation && idle {
                    self.push_next();
                }
            }
            Event::Cleanup { node, epoch } => self.cleanup(node, epoch),
            Event::EndHandover { node, epoch } => {
                if self.nodes[node].view.epoch == epoch {
                    self.nodes[node].handover = None;
                }
            }
        }
    }

    /// A streaming message reaches node `to` (up, and not cut off from `from`).
    pub(super) fn on_transfer(&mut self, from: usize, to: usize, message: Transfer) {
        match message {
            Transfer::StreamRead {
                request,
                cursor,
                mut ranges,
            } => {
                ranges.sort_unstable();
                let (cursor, records) = walk(
                    &self.nodes[to].store,
                    &self.key_tokens,
                    cursor,
                    STREAM_BATCH_KEYS,
                    &ranges,
                );
                let answer = Transfer::Stream {
                    request,
                    cursor,
                    records,
                };
                self.send(to, from, Message::Transfer(answer));
            }
            Transfer::Stream {
                request,
                cursor,
                records,
            } => {
                if to == self.m().joiner {
                    self.on_stream(request, cursor, records);
                }
            }
            Transfer::Push { request, records } => {
                for (key, record) in &records {
                    self.nodes[to].apply(*key, record);
                }
                self.send(to, from, Message::Transfer(Transfer::PushAck { request }));
            }
            Transfer::PushAck { request } => {
                if Some(to) == self.m().leaver {
                    self.on_push_ack(request);
                }
            }
        }
    }
}

/// Walks `count` keys of `store` from `cursor` (0: the start) and returns the records of
/// those whose token is in `ranges` (sorted), with where the next walk starts (0: the
/// end), as a source answers a `StreamRead`.
fn walk(
    store: &BTreeMap<Key, Record>,
    key_tokens: &[u64],
    cursor: u64,
    count: usize,
    ranges: &[(u64, u64)],
) -> (u64, Vec<(Key, Record)>) {
    let from = cursor as usize;
    let walked: Vec<(&Key, &Record)> = store.range(from..).take(count + 1).collect();
    let next = match walked.get(count) {
        Some(&(&key, _)) => key as u64,
        None => 0,
    };
    let records = walked
        .iter()
        .take(count)
        .filter(|(key, _)| in_ranges(ranges, key_tokens[**key]))
        .map(|&(&key, record)| (key, record.clone()))
        .collect();
    (next, records)
}
