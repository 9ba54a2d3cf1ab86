//! One simulated node: its replica store, clock, hints, rounds in flight and liveness view.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use ringcache_cluster::membership::{Health, Member};
use ringcache_cluster::{Effect, HybridClock, NodeId, ReadRound, View as Placement, WriteRound};
use ringcache_storage::Record;

/// A key of the simulated key space, by index.
pub type Key = usize;

/// A round's id, unique over the whole run (a restarted node never reuses one).
pub type RequestId = u64;

/// Unix milliseconds at virtual time 0, so clock skew never takes a wall clock below zero.
const WALL_MS_AT_START: u64 = 1_700_000_000_000;

/// A coordinator round of either kind.
#[derive(Debug)]
pub enum Round {
    /// A client's read (with its read repairs).
    Read(ReadRound),
    /// A client's write.
    Write(WriteRound),
}

impl Round {
    /// See [`ReadRound::on_tick`] and [`WriteRound::on_tick`].
    pub fn on_tick(&mut self, now_ms: u64) -> Vec<Effect> {
        match self {
            Round::Read(r) => r.on_tick(now_ms),
            Round::Write(w) => w.on_tick(now_ms),
        }
    }

    /// See [`ReadRound::deadline_ms`] and [`WriteRound::deadline_ms`].
    pub fn deadline_ms(&self) -> u64 {
        match self {
            Round::Read(r) => r.deadline_ms(),
            Round::Write(w) => w.deadline_ms(),
        }
    }

    /// See [`ReadRound::is_finished`] and [`WriteRound::is_finished`].
    pub fn is_finished(&self) -> bool {
        match self {
            Round::Read(r) => r.is_finished(),
            Round::Write(w) => w.is_finished(),
        }
    }
}

/// A member's status, as gossip carries it: the runtime's.
pub use ringcache_cluster::membership::Status;

/// A node's view of the membership, as gossip brought it: the runtime's placement
/// [`Placement`] (the members, the ring now, the future ring while joins or a leave are
/// under way, the handover after a change), built by the runtime's [`Placement::next`], and
/// which change of the membership it is at.
#[derive(Debug, Clone)]
pub struct View {
    /// Which change of the membership this is: views only move forward.
    pub epoch: usize,
    /// The rings and members, as the runtime keeps them.
    pub placement: Arc<Placement>,
}

/// A member record for node `id` in `status`, healthy: the simulated network needs no
/// address, so each gets a distinct made-up one.
pub fn member(id: NodeId, status: Status) -> Member {
    Member {
        id,
        addr: SocketAddr::from(([127, 0, 0, 1], (id.get() % 60_000) as u16)),
        incarnation: 1,
        status,
        health: Health::Alive,
        flush_hlc: 0,
    }
}

impl Deref for View {
    type Target = Placement;

    fn deref(&self) -> &Placement {
        &self.placement
    }
}

/// A round on its coordinator, with what the simulator needs to drive and check it.
#[derive(Debug)]
pub struct InFlight {
    /// The client operation, in the checker.
    pub op: usize,
    /// The key it reads or writes.
    pub key: Key,
    /// The state machine under test.
    pub round: Round,
    /// When its next tick is scheduled.
    pub tick_at_ms: u64,
    /// When it must be finished: its start plus its timeout.
    pub timeout_at_ms: u64,
}

/// One node of the simulated cluster.
#[derive(Debug)]
pub struct Node {
    /// Its id on the ring.
    pub id: NodeId,
    /// Issues the versions of the writes it coordinates; kept over a crash (a real node must
    /// recover a high-water mark, or it could issue a version twice).
    pub clock: HybridClock,
    /// How far its wall clock is from virtual time.
    pub skew_ms: i64,
    /// Down: receives nothing, sends nothing.
    pub crashed: bool,
    /// Not in the cluster: not started yet (a node that will join) or gone (a node that
    /// left). Such a node is also `crashed`, and no fault restarts it.
    pub out: bool,
    /// The membership as this node knows it.
    pub view: View,
    /// A join's plan and progress ([`ringcache_cluster::transfer::Plan::encode`]) with the
    /// members of the future ring it was planned against, durable like the runtime's
    /// `data_dir/stream`.
    pub plan_file: Option<(Vec<NodeId>, String)>,
    /// The replica's records, durable.
    pub store: BTreeMap<Key, Record>,
    /// Hints kept for each target (by node index), durable; hints for one key merge, so a
    /// target's hints are bounded by the key space.
    pub hints: Vec<BTreeMap<Key, Record>>,
    /// Rounds this node coordinates; lost in a crash.
    pub rounds: BTreeMap<RequestId, InFlight>,
    /// The liveness view: `sees_up[i]` is whether node `i` looks reachable from here.
    pub sees_up: Vec<bool>,
}

impl Node {
    /// Node `index` of `count`, up, empty, seeing every node up, knowing `view`.
    pub fn new(index: usize, count: usize, id: NodeId, skew_ms: i64, view: View) -> Node {
        Node {
            id,
            clock: HybridClock::new(index as u32 + 1),
            skew_ms,
            crashed: false,
            out: false,
            view,
            plan_file: None,
            store: BTreeMap::new(),
            hints: vec![BTreeMap::new(); count],
            rounds: BTreeMap::new(),
            sees_up: vec![true; count],
        }
    }

    /// This node's wall clock at virtual time `now_ms`.
    pub fn wall_ms(&self, now_ms: u64) -> u64 {
        WALL_MS_AT_START.saturating_add_signed(self.skew_ms) + now_ms
    }

    /// Merges `record` into the replica's copy of `key`.
    ///
    /// # Panics
    /// When a cell's version would go backwards.
    pub fn apply(&mut self, key: Key, record: &Record) {
        self.clock.observe(record.version());
        let held = self.store.entry(key).or_default();
        let before = held.clone();
        held.merge(record);
        assert!(
            held.value_version >= before.value_version
                && held.expiry_version >= before.expiry_version,
            "a version went backwards on {}, key {key}: {before:?} became {held:?}",
            self.id
        );
    }

    /// Keeps `record` as a hint of `key` for node `target`, merged with any hint kept.
    pub fn store_hint(&mut self, target: usize, key: Key, record: &Record) {
        self.hints[target]
            .entry(key)
            .and_modify(|kept| {
                kept.merge(record);
            })
            .or_insert_with(|| record.clone());
    }

    /// `target` applied the hint `record` of `key`: drop it unless a newer one merged in
    /// since it was sent. Whether it was dropped.
    pub fn hint_acked(&mut self, target: usize, key: Key, record: &Record) -> bool {
        let hints = &mut self.hints[target];
        if hints.get(&key) == Some(record) {
            hints.remove(&key);
            return true;
        }
        false
    }

    /// How many hints this node keeps.
    pub fn hint_count(&self) -> usize {
        self.hints.iter().map(BTreeMap::len).sum()
    }
}
