//! Membership changes under load: one node or two join (each announces itself, waits for its
//! turn and for gossip to settle, pulls its ranges with a kept [`Plan`], turns Normal), then
//! a node is decommissioned (announces that it leaves, waits, pushes the ranges it loses to
//! their gainers as writes, turns Left), as `src/cluster/streaming.rs` does.
//!
//! The model:
//! - The membership is a list of views, one per change: every member with its status
//!   (Joining, Normal, Leaving), the ring of the members Normal or Leaving, and the future
//!   ring by the runtime's `future_owners`: the ring minus the members Leaving if there is
//!   one, else the ring plus every member Joining, whatever its health (a joining node that
//!   is down stays a pending replica: writes need its extra ack from the others and keep
//!   hints for it). Each node learns a change by gossip 0–300 ms after it happened (the
//!   node that made it, at once); a node down learns the latest view after it restarts. A
//!   coordinator uses its own view: a write goes to the key's replicas in its ring and to its
//!   pending replicas (in the future ring, not in the ring now), each adding one ack to the
//!   level; reads use the ring now only.
//! - Each joining node waits for its turn (it is in the future ring of its view, no member
//!   is Leaving), waits the settle, then plans `moved_ranges(ring, future)` with
//!   [`Plan::for_join`] (waiting while a source looks down) and keeps the plan with the members of the future ring it was made for.
//!   Before each batch it checks that its view's future ring is still that one; if not
//!   (another node began to join), it drops the plan and starts over from its turn. After a
//!   restart it waits for its turn and the settle again, and resumes the kept plan only if
//!   the future ring is the same. When every walk is done it turns Normal (the ring then
//!   includes it; a node still joining goes on against the unchanged future ring).
//! - A source answers a `StreamRead` by walking [`STREAM_BATCH_KEYS`] keys of its store from
//!   the cursor, returning the records (tombstones included) whose token is in the ranges.
//!   The joining node merges them and keeps the plan after every batch (a string standing
//!   for `data_dir/stream`, which survives a crash). A pull not answered in time is retried
//!   until its source answers.
//! - Decommission (once every join is done: the runtime refuses it while one is under way)
//!   pushes the leaving node's records of each moved range to its gainer, batch by batch,
//!   each batch tried [`PUSH_ATTEMPTS`] times; after that the decommission is abandoned (the
//!   node turns Normal again) and retried later, as an operator would. A crash of the
//!   leaving node abandons it too. A node that left keeps nothing: its rounds and its hints
//!   are gone with it.
//! - Some time after a node learns a settled ring, it drops the keys it no longer
//!   replicates ([`CLEANUP_DELAY_MS`]), unless it was down then (as the runtime, which
//!   cleans once per ring change); the end of the run cleans every node once more.
//! - Directed faults, on top of the random ones: each joining node crashes after a few
//!   batches, in some seeds for long ([`JOINER_LONG_DOWN_MS`], many writes to its ranges
//!   while it is held dead); in some seeds, a source crashes in the middle of its walk for
//!   long enough that the joining node fails over.
//!
//! [`Plan`]: ringcache_cluster::transfer::Plan
//! [`Plan::gains`]: ringcache_cluster::transfer::Plan::gains
//! [`Plan::for_join`]: ringcache_cluster::transfer::Plan::for_join

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use ringcache_cluster::transfer::{Moved, Plan, Pull, Ranges, in_ranges, moved_ranges};
use ringcache_cluster::view::future_owners;
use ringcache_cluster::{Need, NodeId, Ring, Target, View as Placement, WriteRound};
use ringcache_storage::Record;

use super::{Event as WorldEvent, Message, VNODES, World};
use crate::sim::node::{Key, Round, Status, View, member};

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
/// Pause before retrying a source or a target, and between two looks at whether it is a
/// joining node's turn (the runtime's `RETRY_DELAY`, scaled).
const RETRY_MS: u64 = 100;
/// Tries of one pushed batch before the decommission is abandoned (the runtime's).
const PUSH_ATTEMPTS: usize = 5;
/// Failed pulls the joins may go through before the run is declared stuck.
const PULL_FAILURES_MAX: usize = 4_000;
/// Decommissions abandoned before the run is declared stuck.
const LEAVE_ABORTS_MAX: usize = 50;
/// How long a ring must be known before a node drops what it no longer replicates.
const CLEANUP_DELAY_MS: u64 = 1_000;
/// When the (first) join starts, and how long after the joins finished the decommission
/// starts.
const JOIN_AT_MS: (u64, u64) = (200, 800);
const LEAVE_AFTER_MS: (u64, u64) = (200, 800);
/// When the second of two joining nodes starts after the first: together (before the
/// first's settle is over, so both plan against the same future ring), or staggered (while
/// the first streams, so that it drops its plan and plans again).
const SECOND_JOIN_TOGETHER_MS: (u64, u64) = (0, 100);
/// (Staggered: after the first merged its first batch.)
const SECOND_JOIN_STAGGERED_MS: (u64, u64) = (0, 300);
/// A joining node crashes after this many of its batches.
const JOINER_CRASH_AFTER_BATCHES: (u64, u64) = (1, 3);
/// How long a joining node and a crashed source stay down.
const JOINER_DOWN_MS: (u64, u64) = (50, 1_500);
const SOURCE_DOWN_MS: (u64, u64) = (400, 1_500);
/// How long the first joining node stays down in a long crash: gossip holds it dead while
/// the clients write many times to its ranges.
const JOINER_LONG_DOWN_MS: (u64, u64) = (1_000, 3_000);
/// Keys the clients stop writing once the first join starts (they still read them): what
/// the final replicas hold of these must have come by streaming (or read repair), not by
/// new writes to the pending replicas, which supersede the older data of the other keys.
const COLD_KEYS: usize = 5;
/// Once the clients are done, how long the changes under way may take to finish.
const FINISH_MS_MAX: u64 = 30_000;

/// How a write treats the pending replicas of its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingRule {
    /// It goes to them, and each adds one ack to the level, up or not (one that is down
    /// gets a hint, so the level must be met by the others): of W + 1 acks at most one is
    /// from the replica that drops out, so W of the replicas after the change hold it.
    /// Cassandra's rule (`blockFor` = the level's + the pending endpoints), and the
    /// runtime's (`View::extra_replicas`).
    EachCounts,
    /// It goes to them, and each one up adds one ack; one down gets a hint and adds
    /// nothing (the runtime's rule before). The W acks may then include the replica that
    /// drops out.
    UpOnesCount,
    /// It ignores them (a broken rule, to see the checker catch what it loses).
    Ignored,
}

/// Which old replicas a joining node pulls a range from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceRule {
    /// [`Plan::gains`]: every loser of each range (every old replica when it has none).
    ///
    /// [`Plan::gains`]: ringcache_cluster::transfer::Plan::gains
    Gains,
    /// One loser even when there are several (a broken rule: a write acknowledged by the
    /// other loser and the replica that stays is on one final replica only).
    SingleLoserOnly,
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
    /// Crash a source of a join in the middle of its walk, for long enough that the joining
    /// node fails over to the other replicas.
    pub crash_source: bool,
    /// Nodes that join: 1 or 2.
    pub joiners: usize,
    /// With two joining nodes: the second starts while the first streams (else both start
    /// at about the same time).
    pub staggered: bool,
    /// The first joining node's directed crash lasts [`JOINER_LONG_DOWN_MS`].
    pub long_joiner_crash: bool,
    /// Which old replicas a joining node pulls from.
    pub sources: SourceRule,
    /// A joining node seen down stays in the future ring (the runtime's rule); else each
    /// node leaves the joining nodes it sees down out of it (a broken rule: the writes made
    /// while one is down skip it, and it resumes past them).
    pub dead_joiner_pending: bool,
    /// A joining node done streaming while another still streams waits (Ready), and they
    /// turn Normal together when the last is done, so that no ring holds one of them
    /// without the other (the runtime's `Status::Ready`; `SIM_BREAK=normal-apart` turns each
    /// Normal alone, and the ring with one joining node but not the other makes it a
    /// replica of ranges the other takes in the future ring, which it neither streamed nor
    /// got writes for).
    pub normal_together: bool,
}

/// Counts for the summary line, and what the test asserts on.
#[derive(Debug, Default, Clone)]
pub struct MembershipStats {
    /// Nodes that joined.
    pub joiners: usize,
    /// Plans made from scratch, and their walks.
    pub plans: u64,
    pub pulls_planned: usize,
    /// Plans put off because a source looked down.
    pub plan_waits: u64,
    /// Ranges planned whose old replicas lose two or more of their nodes (two joining nodes
    /// replace two of them).
    pub ranges_two_losers: u64,
    /// Plans dropped while streaming because the future ring changed (another node began to
    /// join), and kept plans found after a restart for another future ring.
    pub replans: u64,
    pub kept_plans_dropped: u64,
    /// Batches the joining nodes merged, and their records.
    pub batches: u64,
    pub records_streamed: u64,
    /// Crashes of a joining node while it streamed.
    pub joiner_crashes_streaming: u64,
    /// Restarts of a join from its kept plan, and those whose plan had progress in it.
    pub resumes: u64,
    pub resumes_with_progress: u64,
    /// The longest directed crash of a joining node (virtual ms).
    pub joiner_down_ms_max: u64,
    /// Writes started with a pending replica their coordinator sees down.
    pub writes_pending_down: u64,
    /// Directed crashes of a stream source (the joining node waits for it).
    pub sources_crashed: u64,
    /// Pull requests that failed (timed out).
    pub pull_failures: usize,
    /// When the last joining node turned Normal and the leaving one Left (virtual ms).
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

/// Membership steps; `joiner` is an index into the joining nodes.
#[derive(Debug)]
pub(in crate::sim) enum Event {
    /// `node` learns view `epoch` by gossip.
    Learn {
        node: usize,
        epoch: usize,
    },
    StartJoin {
        joiner: usize,
    },
    /// A waiting joining node looks again whether it is its turn.
    TurnCheck {
        joiner: usize,
        generation: u64,
    },
    /// The joining node's settle is over: it plans its pulls, or resumes its kept plan.
    PlanJoin {
        joiner: usize,
        generation: u64,
    },
    PullTimeout {
        joiner: usize,
        request: u64,
    },
    PullRetry {
        joiner: usize,
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

/// A joining node's streaming, in memory (lost in a crash; the plan is kept on disk).
#[derive(Debug)]
enum Join {
    NotYet,
    /// Until it is its turn ([`World::is_our_turn`]).
    Waiting,
    Settling,
    Pulling {
        plan: Plan,
        /// The members of the future ring the plan was made for.
        planned: Vec<NodeId>,
        index: usize,
        request: Option<u64>,
    },
    Crashed,
    Done,
}

/// One joining node.
#[derive(Debug)]
struct Joiner {
    /// Its index among the nodes.
    node: usize,
    join: Join,
    /// Bumped when what is in memory is lost or dropped: older timers are no-ops.
    generation: u64,
    /// Its batches so far, and after how many it crashes.
    batches: u64,
    crash_after: u64,
    /// Its directed crash happened; it may happen (for the first of two staggered joining
    /// nodes, only once it planned again for the second, so that it is up to see it come).
    crashed: bool,
    crash_armed: bool,
    /// The kept plan when it last crashed, to compare with what it finds after the restart.
    plan_at_crash: Option<(Vec<NodeId>, String)>,
    /// Its directed crash cut a plan with progress, not taken up again yet; then whether it
    /// resumed it, or dropped it for another future ring.
    awaiting_resume: bool,
    resumed_with_progress: bool,
    replanned_after_crash: bool,
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
    joiners: Vec<Joiner>,
    leaver: Option<usize>,
    leave: Leave,
    leave_generation: u64,
    /// The second joining node's start is scheduled.
    second_join_scheduled: bool,
    next_request: u64,
    stats: MembershipStats,
}

impl Membership {
    /// Nodes `joiners` will join the cluster of view `first`.
    pub(in crate::sim) fn new(scenario: Scenario, joiners: Vec<usize>, first: View) -> Membership {
        assert_eq!(joiners.len(), scenario.joiners);
        Membership {
            scenario,
            views: vec![first],
            joiners: joiners
                .into_iter()
                .map(|node| Joiner {
                    node,
                    join: Join::NotYet,
                    generation: 0,
                    batches: 0,
                    crash_after: 0,
                    crashed: false,
                    crash_armed: true,
                    plan_at_crash: None,
                    awaiting_resume: false,
                    resumed_with_progress: false,
                    replanned_after_crash: false,
                })
                .collect(),
            leaver: None,
            leave: Leave::NotYet,
            leave_generation: 0,
            second_join_scheduled: false,
            next_request: 0,
            stats: MembershipStats {
                joiners: scenario.joiners,
                ..MembershipStats::default()
            },
        }
    }

    fn settle_ms(&self) -> u64 {
        if self.scenario.settle { SETTLE_MS } else { 0 }
    }

    fn request(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    /// The joining node that is node `node`, if one is.
    fn joiner_at(&self, node: usize) -> Option<usize> {
        self.joiners.iter().position(|j| j.node == node)
    }
}

fn ring_of(members: impl IntoIterator<Item = NodeId>) -> Ring {
    Ring::new(members, VNODES)
}

/// `SIM_BREAK=single-loser-only`: [`Plan::gains`] as if a range never had several losers:
/// each range from its first loser only (or every old replica when it has none).
fn plan_from_one_loser(moved: &[Moved], local: NodeId) -> Plan {
    let mut by_source: BTreeMap<NodeId, Ranges> = BTreeMap::new();
    for m in moved.iter().filter(|m| m.gainers().contains(&local)) {
        let sources: Vec<NodeId> = match m.losers().into_iter().find(|&n| n != local) {
            Some(loser) => vec![loser],
            None => m.old.iter().copied().filter(|&n| n != local).collect(),
        };
        for source in sources {
            by_source.entry(source).or_default().push((m.first, m.last));
        }
    }
    let pulls = by_source
        .into_iter()
        .map(|(source, ranges)| Pull {
            source,
            ranges,
            cursor: 0,
            done: false,
        })
        .collect();
    Plan { pulls }
}

impl World {
    /// Whether `node`'s view still hands writes over to the ring before its last change.
    fn in_handover(&self, node: &crate::sim::node::Node) -> bool {
        node.view
            .handover
            .as_ref()
            .is_some_and(|h| self.now_ms < h.until_ms)
    }

    /// Whether node `node` is leaving (decommissioning and up): the runtime's status
    /// `leaving`, under which its own hints do not count at `ANY` ([`Need::hints_count`]).
    pub(super) fn is_leaving(&self, node: usize) -> bool {
        self.membership.as_ref().is_some_and(|m| {
            m.leaver == Some(node) && matches!(m.leave, Leave::Settling | Leave::Pushing { .. })
        })
    }

    fn m(&mut self) -> &mut Membership {
        self.membership
            .as_mut()
            .expect("a run with membership changes")
    }

    fn j(&mut self, joiner: usize) -> &mut Joiner {
        &mut self.m().joiners[joiner]
    }

    /// Counts of the membership changes, if the run has them.
    pub fn membership_stats(&self) -> Option<&MembershipStats> {
        self.membership.as_ref().map(|m| &m.stats)
    }

    /// The clients run while the nodes join and then one leaves; once all is done and every
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
        self.queue.push(
            join_ms,
            WorldEvent::Membership(Event::StartJoin { joiner: 0 }),
        );
        if self.m().joiners.len() > 1 {
            if self.m().scenario.staggered {
                self.m().joiners[0].crash_armed = false;
            } else {
                self.schedule_second_join(join_ms, SECOND_JOIN_TOGETHER_MS);
            }
        }
        let ops = self.cfg.ops;
        assert!(self.run_until(u64::MAX, |w| w.ops_issued == ops));
        // A change still under way finishes with the faults healed (under the random faults
        // a decommission may be abandoned again and again).
        self.heal_all();
        let until_ms = self.now_ms + FINISH_MS_MAX;
        let finished = self.run_until(until_ms, World::membership_done);
        let seed = self.cfg.seed;
        let m = self.m();
        let joins: Vec<&Join> = m.joiners.iter().map(|j| &j.join).collect();
        assert!(
            finished,
            "seed {seed}: the joins or the leave did not finish in {FINISH_MS_MAX} ms after \
             the clients stopped: {joins:?} {:?}",
            m.leave
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

    /// The second joining node starts `after` from `from_ms`, unless it is scheduled already.
    fn schedule_second_join(&mut self, from_ms: u64, after: (u64, u64)) {
        let m = self.m();
        if m.joiners.len() < 2 || m.second_join_scheduled {
            return;
        }
        m.second_join_scheduled = true;
        let at_ms = from_ms + self.rng.between(after.0, after.1);
        self.queue.push(
            at_ms,
            WorldEvent::Membership(Event::StartJoin { joiner: 1 }),
        );
    }

    /// Whether the clients no longer write `key` ([`COLD_KEYS`]).
    pub(super) fn is_cold(&self, key: Key) -> bool {
        let m = self.membership.as_ref().expect("membership");
        key + COLD_KEYS >= self.cfg.keys && !matches!(m.joiners[0].join, Join::NotYet)
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
        self.membership.as_ref().is_none_or(|m| {
            m.joiners.iter().all(|j| matches!(j.join, Join::Done)) && matches!(m.leave, Leave::Done)
        })
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
                .all(|n| n.out || (n.view.epoch == latest && !self.in_handover(n)))
    }

    fn check_membership_end(&mut self) {
        let seed = self.cfg.seed;
        let leaver = self.m().leaver.expect("a node left");
        let joiners: Vec<usize> = self.m().joiners.iter().map(|j| j.node).collect();
        for &joiner in &joiners {
            let id = self.nodes[joiner].id;
            assert!(
                self.ring.members().contains(&id) || joiner == leaver,
                "seed {seed}: joining node {id} is not in the final ring"
            );
        }
        assert!(
            !self.ring.members().contains(&self.nodes[leaver].id),
            "seed {seed}: the node that left is still in the ring"
        );
        assert_eq!(
            self.ring.members().len(),
            self.cfg.nodes + joiners.len() - 1
        );
        let m = self.m();
        assert!(m.stats.joined_at_ms.is_some() && m.stats.left_at_ms.is_some());
        for j in &m.joiners {
            assert!(
                !j.crashed || j.resumed_with_progress || j.replanned_after_crash,
                "seed {seed}: joining node {} crashed mid-stream but neither resumed a plan \
                 with progress nor planned again for another future ring: {:?}",
                j.node,
                m.stats
            );
        }
    }

    // ---- Gossip ----

    /// A new membership, the latest changed by `change`. Node `origin`, which made the
    /// change, knows it at once; the others learn it by gossip.
    fn announce(&mut self, origin: usize, change: impl FnOnce(&mut BTreeMap<NodeId, Status>)) {
        let now_ms = self.now_ms;
        let m = self.m();
        let last = m.views.last().expect("a first view");
        let mut statuses: BTreeMap<NodeId, Status> =
            last.members.values().map(|m| (m.id, m.status)).collect();
        change(&mut statuses);
        let members = statuses.iter().map(|(&id, &status)| member(id, status));
        let view = View {
            epoch: m.views.len(),
            placement: Arc::new(last.next(members, VNODES, now_ms, 0)),
        };
        m.views.push(view.clone());
        self.ring = (*view.ring).clone();
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

    /// `node` learns view `epoch`: it takes the members in with the runtime's
    /// [`Placement::next`], which starts a handover when its ring changed.
    fn learn(&mut self, node: usize, epoch: usize) {
        let latest = self.m().views[epoch].clone();
        let handover = self.m().scenario.handover;
        let handover_ms = if handover { HANDOVER_MS } else { 0 };
        let now_ms = self.now_ms;
        let known = &mut self.nodes[node];
        if known.out || known.crashed || epoch <= known.view.epoch {
            return;
        }
        let ring_changed = known.view.ring.members() != latest.ring.members();
        let members = latest.members.values().cloned();
        let placement = known.view.next(members, VNODES, now_ms, handover_ms);
        known.view = View {
            epoch,
            placement: Arc::new(placement),
        };
        if ring_changed && handover {
            let event = Event::EndHandover { node, epoch };
            self.queue
                .push(now_ms + HANDOVER_MS, WorldEvent::Membership(event));
        }
        if latest.future.is_none() && ring_changed {
            let event = Event::Cleanup { node, epoch };
            self.queue
                .push(now_ms + CLEANUP_DELAY_MS, WorldEvent::Membership(event));
        }
    }

    /// The view `node` places keys with: its own, or under the broken rule
    /// (`SIM_BREAK=dead-joiner-not-pending`) its own with a future ring that leaves out the
    /// joining nodes it sees down.
    fn seen_view(&self, node: usize) -> Cow<'_, Placement> {
        let m = self.membership.as_ref().expect("membership");
        let n = &self.nodes[node];
        if m.scenario.dead_joiner_pending {
            return Cow::Borrowed(&n.view.placement);
        }
        let counted = n.view.members.values().filter(|m| {
            !matches!(m.status, Status::Joining | Status::Ready)
                || m.id == n.id
                || n.sees_up[self.index_of(m.id)]
        });
        let owners = n.view.ring.members();
        let future = future_owners(counted, owners);
        let mut view = (*n.view.placement).clone();
        view.future = (future != owners).then(|| Arc::new(ring_of(future)));
        Cow::Owned(view)
    }

    /// The future ring as `node` sees it ([`World::seen_view`]).
    fn future_seen_by(&self, node: usize) -> Option<Arc<Ring>> {
        self.seen_view(node).future.clone()
    }

    /// A write's replicas of `key` and the round's need as `coordinator` sees them, with
    /// where its extra (pending and handover) replicas start: the runtime's
    /// [`Placement::write_targets`], each extra replica adding one ack whether up or not,
    /// unless the scenario breaks that rule.
    pub(super) fn write_targets_in_change(
        &self,
        coordinator: usize,
        key: Key,
        need: Need,
    ) -> (Vec<Target>, Need, usize) {
        let m = self.membership.as_ref().expect("membership");
        let (token, n) = (self.key_tokens[key], self.cfg.replicas);
        let node = &self.nodes[coordinator];
        let view = self.seen_view(coordinator);
        let link_up = |peer| node.sees_up[self.index_of(peer)];
        let (mut targets, mut round_need) =
            view.write_targets(token, n, self.now_ms, node.id, link_up, |_| need);
        let extras_from = view.ring.preference_list(token, n).len();
        match m.scenario.pending {
            PendingRule::EachCounts => {}
            PendingRule::Ignored => {
                targets.truncate(extras_from);
                round_need = need;
            }
            PendingRule::UpOnesCount => {
                let up = targets[extras_from..].iter().filter(|t| t.alive).count();
                round_need.required = need.required + up;
            }
        }
        (targets, round_need, extras_from)
    }

    /// Counts a write whose pending replicas include one its coordinator sees down.
    pub(super) fn note_pending_down(&mut self, pending: &[Target]) {
        if pending.iter().any(|t| !t.alive) {
            self.m().stats.writes_pending_down += 1;
        }
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
        let (mut targets, _, _) = self.write_targets_in_change(coordinator, key, need);
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
        let members = self.nodes[node].view.placement.members.clone();
        for target in 0..self.nodes.len() {
            let member = members.contains_key(&self.nodes[target].id);
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
        if let Some(joiner) = m.joiner_at(node) {
            let j = &mut m.joiners[joiner];
            if matches!(
                j.join,
                Join::Waiting | Join::Settling | Join::Pulling { .. }
            ) {
                if matches!(j.join, Join::Pulling { .. }) {
                    m.stats.joiner_crashes_streaming += 1;
                }
                j.join = Join::Crashed;
                j.generation += 1;
                j.plan_at_crash = self.nodes[node].plan_file.clone();
            }
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
        if let Some(joiner) = self.m().joiner_at(node)
            && matches!(self.j(joiner).join, Join::Crashed)
        {
            // The runtime's `join` starts over: its turn, the settle, then the kept plan.
            self.wait_for_turn(joiner);
        }
        if Some(node) == self.m().leaver && matches!(self.m().leave, Leave::Crashed) {
            self.abandon_leave(node);
        }
    }

    // ---- Join ----

    fn start_join(&mut self, joiner: usize) {
        let node = self.j(joiner).node;
        let n = &mut self.nodes[node];
        n.out = false;
        n.crashed = false;
        n.sees_up.fill(false);
        n.sees_up[node] = true;
        let id = n.id;
        self.views_change();
        self.announce(node, |members| {
            members.insert(id, Status::Joining);
        });
        let crash_after = self
            .rng
            .between(JOINER_CRASH_AFTER_BATCHES.0, JOINER_CRASH_AFTER_BATCHES.1);
        self.j(joiner).crash_after = crash_after;
        self.wait_for_turn(joiner);
    }

    /// Whether joining node `node` may stream now, in its view (the runtime's
    /// `is_our_turn`): there is another owner, no member is Leaving, and the future ring
    /// includes it.
    fn is_our_turn(&self, node: usize) -> bool {
        self.seen_view(node).may_stream(self.nodes[node].id)
    }

    /// Waits for the joining node's turn, then for the settle.
    fn wait_for_turn(&mut self, joiner: usize) {
        let node = self.j(joiner).node;
        let our_turn = self.is_our_turn(node);
        let (now_ms, settle_ms) = (self.now_ms, self.m().settle_ms());
        let j = self.j(joiner);
        let generation = j.generation;
        let (at_ms, event) = if our_turn {
            j.join = Join::Settling;
            let event = Event::PlanJoin { joiner, generation };
            (now_ms + settle_ms, event)
        } else {
            j.join = Join::Waiting;
            let event = Event::TurnCheck { joiner, generation };
            (now_ms + RETRY_MS, event)
        };
        self.queue.push(at_ms, WorldEvent::Membership(event));
    }

    /// The settle is over: resume the kept plan if it was made for the future ring the node
    /// sees, else plan the pulls for the ranges it gains from that future ring.
    fn plan_join(&mut self, joiner: usize, generation: u64) {
        let j = self.j(joiner);
        if generation != j.generation || !matches!(j.join, Join::Settling) {
            return;
        }
        let node = j.node;
        if !self.is_our_turn(node) {
            self.wait_for_turn(joiner);
            return;
        }
        let seed = self.cfg.seed;
        let future = self
            .future_seen_by(node)
            .expect("a future ring on our turn");
        let planned = future.members().to_vec();
        let kept = self.nodes[node].plan_file.clone();
        if let Some(at_crash) = self.j(joiner).plan_at_crash.take() {
            assert_eq!(
                Some(at_crash),
                kept,
                "seed {seed}: the kept plan changed while the joining node was down"
            );
        }
        let awaiting_resume = std::mem::take(&mut self.j(joiner).awaiting_resume);
        let plan = match kept {
            Some((ring, text)) if ring == planned => {
                let plan = Plan::decode(&text).expect("the kept plan reads back");
                assert_eq!(
                    plan.encode(),
                    text,
                    "seed {seed}: the plan does not round trip"
                );
                let progress = plan.pulls.iter().any(|p| p.done || p.cursor != 0);
                let m = self.m();
                m.stats.resumes += 1;
                m.stats.resumes_with_progress += u64::from(progress);
                m.joiners[joiner].resumed_with_progress |= awaiting_resume && progress;
                plan
            }
            kept => {
                let m = self.m();
                if kept.is_some() {
                    m.stats.kept_plans_dropped += 1;
                    m.joiners[joiner].replanned_after_crash |= awaiting_resume;
                }
                let rule = m.scenario.sources;
                let n = &self.nodes[node];
                let moved = moved_ranges(&n.view.ring, &future, self.cfg.replicas);
                let two_losers = moved
                    .iter()
                    .filter(|m| m.gainers().contains(&n.id) && m.losers().len() > 1)
                    .count() as u64;
                let is_up = |id| n.sees_up[self.index_of(id)];
                let plan = match rule {
                    SourceRule::Gains => Plan::for_join(&moved, n.id, is_up),
                    SourceRule::SingleLoserOnly => Some(plan_from_one_loser(&moved, n.id))
                        .filter(|plan| plan.pulls.iter().all(|p| is_up(p.source))),
                };
                // A source looks down: wait and plan again, as the runtime does.
                let Some(plan) = plan else {
                    self.m().stats.plan_waits += 1;
                    let event = Event::PlanJoin { joiner, generation };
                    self.queue
                        .push(self.now_ms + RETRY_MS, WorldEvent::Membership(event));
                    return;
                };
                if self.trace_key.is_some() {
                    eprintln!(
                        "{} ms: node {node} plans for {planned:?}: {plan:?}, sees up {:?}",
                        self.now_ms, n.sees_up
                    );
                }
                self.nodes[node].plan_file = Some((planned.clone(), plan.encode()));
                let m = self.m();
                m.stats.plans += 1;
                m.stats.ranges_two_losers += two_losers;
                m.stats.pulls_planned += plan.pulls.len();
                plan
            }
        };
        self.j(joiner).join = Join::Pulling {
            plan,
            planned,
            index: 0,
            request: None,
        };
        self.pull_next(joiner);
    }

    /// Asks the source of the next walk not done for a batch, or finishes the join; first,
    /// as the runtime before each batch, drops the plan if the future ring the node sees is
    /// not the one it was made for any more.
    fn pull_next(&mut self, joiner: usize) {
        let node = self.j(joiner).node;
        let Join::Pulling { planned, .. } = &self.m().joiners[joiner].join else {
            return;
        };
        let planned = planned.clone();
        let same_future = self.is_our_turn(node)
            && self
                .future_seen_by(node)
                .is_some_and(|f| f.members() == planned.as_slice());
        if !same_future {
            if self.trace_key.is_some() {
                eprintln!("{} ms: node {node} drops its plan", self.now_ms);
            }
            self.m().stats.replans += 1;
            self.nodes[node].plan_file = None;
            let j = self.j(joiner);
            j.generation += 1;
            j.crash_armed = true;
            self.wait_for_turn(joiner);
            return;
        }
        let request = self.m().request();
        let Join::Pulling {
            plan,
            index,
            request: in_flight,
            ..
        } = &mut self.m().joiners[joiner].join
        else {
            unreachable!("pulling");
        };
        while *index < plan.pulls.len() && plan.pulls[*index].done {
            *index += 1;
        }
        let Some(pull) = plan.pulls.get(*index) else {
            self.finish_join(joiner);
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
        self.send(node, source, Message::Transfer(message));
        let event = Event::PullTimeout { joiner, request };
        self.queue.push(
            self.now_ms + TRANSFER_TIMEOUT_MS,
            WorldEvent::Membership(event),
        );
    }

    /// A batch came back: merge it, keep the plan, then maybe crash someone.
    fn on_stream(&mut self, joiner: usize, request: u64, cursor: u64, records: Vec<(Key, Record)>) {
        let m = self.m();
        let (scenario, sources_crashed) = (m.scenario, m.stats.sources_crashed);
        let j = &mut m.joiners[joiner];
        let node = j.node;
        let Join::Pulling {
            plan,
            planned,
            index,
            request: in_flight,
        } = &mut j.join
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
        let kept = (planned.clone(), plan.encode());
        let work_left = plan.ranges_pending() > 0;
        j.batches += 1;
        let crash_joiner = j.crash_armed && !j.crashed && j.batches >= j.crash_after && work_left;
        let any_joiner_crashed = m.joiners.iter().any(|j| j.crashed);
        let crash_source = scenario.crash_source
            && sources_crashed == 0
            && (m.stats.resumes > 0 || any_joiner_crashed)
            && walk_left;
        m.stats.batches += 1;
        m.stats.records_streamed += records.len() as u64;
        for (key, record) in &records {
            self.nodes[node].apply(*key, record);
        }
        self.nodes[node].plan_file = Some(kept);
        if scenario.staggered && joiner == 0 {
            // The second joining node comes while the first streams.
            self.schedule_second_join(self.now_ms, SECOND_JOIN_STAGGERED_MS);
        }
        if crash_joiner {
            let long = scenario.long_joiner_crash && joiner == 0;
            let (low, high) = if long {
                JOINER_LONG_DOWN_MS
            } else {
                JOINER_DOWN_MS
            };
            let down_ms = self.rng.between(low, high);
            let m = self.m();
            m.stats.joiner_down_ms_max = m.stats.joiner_down_ms_max.max(down_ms);
            let j = &mut m.joiners[joiner];
            j.crashed = true;
            j.awaiting_resume = true;
            self.crash(node, down_ms);
            return;
        }
        let source = self.index_of(source);
        let others_up = (0..self.nodes.len())
            .all(|i| i == source || self.nodes[i].out || !self.nodes[i].crashed);
        let is_joiner = self.m().joiner_at(source).is_some();
        if crash_source && !is_joiner && others_up {
            self.m().stats.sources_crashed += 1;
            let down_ms = self.rng.between(SOURCE_DOWN_MS.0, SOURCE_DOWN_MS.1);
            self.crash(source, down_ms);
        }
        self.pull_next(joiner);
    }

    /// A pull was not answered: retry it later (a source that is down is waited for).
    fn pull_timeout(&mut self, joiner: usize, request: u64) {
        let seed = self.cfg.seed;
        let m = self.m();
        let j = &mut m.joiners[joiner];
        let generation = j.generation;
        let Join::Pulling {
            plan,
            request: in_flight,
            ..
        } = &mut j.join
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
        let event = Event::PullRetry { joiner, generation };
        self.queue
            .push(self.now_ms + RETRY_MS, WorldEvent::Membership(event));
    }

    /// Every walk is done: the joining node turns Normal (under
    /// [`Scenario::normal_together`], Ready while another still streams, then Normal with
    /// the others); once every one has, a node will be decommissioned.
    fn finish_join(&mut self, joiner: usize) {
        let now_ms = self.now_ms;
        let j = self.j(joiner);
        j.join = Join::Done;
        let node = j.node;
        self.m().stats.joined_at_ms = Some(now_ms);
        self.nodes[node].plan_file = None;
        let id = self.nodes[node].id;
        // (Should the first of two staggered joining nodes be done without a batch.)
        self.schedule_second_join(now_ms, SECOND_JOIN_STAGGERED_MS);
        let together = self.m().scenario.normal_together;
        self.announce(node, |members| {
            let others_joining = members
                .iter()
                .any(|(&other, &s)| other != id && s == Status::Joining);
            if together && others_joining {
                members.insert(id, Status::Ready);
                return;
            }
            members.insert(id, Status::Normal);
            for status in members.values_mut() {
                if *status == Status::Ready {
                    *status = Status::Normal;
                }
            }
        });
        if self
            .m()
            .joiners
            .iter()
            .all(|j| matches!(j.join, Join::Done))
        {
            let at_ms = self.now_ms + self.rng.between(LEAVE_AFTER_MS.0, LEAVE_AFTER_MS.1);
            self.queue
                .push(at_ms, WorldEvent::Membership(Event::StartLeave));
        }
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
        self.announce(leaver, |members| {
            members.insert(id, Status::Leaving);
        });
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
        let moved = node
            .view
            .moves_if_leaving(node.id, self.cfg.replicas, VNODES);
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
        let id = self.nodes[leaver].id;
        self.announce(leaver, |members| {
            members.insert(id, Status::Normal);
        });
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
        self.announce(leaver, |members| {
            members.remove(&id);
        });
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
            Event::StartJoin { joiner } => self.start_join(joiner),
            Event::TurnCheck { joiner, generation } => {
                let j = self.j(joiner);
                if generation == j.generation && matches!(j.join, Join::Waiting) {
                    self.wait_for_turn(joiner);
                }
            }
            Event::PlanJoin { joiner, generation } => self.plan_join(joiner, generation),
            Event::PullTimeout { joiner, request } => self.pull_timeout(joiner, request),
            Event::PullRetry { joiner, generation } => {
                let j = self.j(joiner);
                let idle = matches!(j.join, Join::Pulling { request: None, .. });
                if generation == j.generation && idle {
                    self.pull_next(joiner);
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
            // The view's handover ends by its own deadline: this event only lets the run
            // see the end (it may be what makes the membership quiet).
            Event::EndHandover { .. } => {}
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
                if let Some(joiner) = self.m().joiner_at(to) {
                    self.on_stream(joiner, request, cursor, records);
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
