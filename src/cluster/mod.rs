//! The cluster at run time: who the members are, the ring over them, the links to peers,
//! and the driver that runs the coordinator's rounds ([`ringcache_cluster::coordinator`])
//! over real sockets, the local replica in-process.
//!
//! - [`link`]: peer connections, both ends: dialing with the handshake, pings, requests
//!   multiplexed by id; accepting, and serving reads and writes to the local store.
//! - [`replay`]: hinted handoff, replaying stored hints to a replica that is back.
//! - [`gossip`]: the gossip membership over UDP and TCP, and the bootstrap through seeds.
//! - [`streaming`]: join and decommission: ranges streamed in or out, and dropped after.
//! - [`persist`]: the node id, member table, clock and flush time kept in the data dir.

pub mod gossip;
pub mod link;
pub mod persist;
pub mod repair;
pub mod replay;
pub mod streaming;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use ringcache_cluster::coordinator::{Effect, Need, QuorumError, ReadRound, Target, WriteRound};
use ringcache_cluster::membership::{
    Config as MembershipConfig, Health, Member, Membership, Status,
};
use ringcache_cluster::protocol::{LocalPeer, Message};
use ringcache_cluster::view::{HANDOVER_MS, View, check_writable};
use ringcache_cluster::{Liveness, NodeId, Ring};
use ringcache_resp::Level;
use ringcache_storage::hints::{HintOptions, Hints};
use ringcache_storage::{Record, key_token};

use crate::config::ClusterConfig;
use crate::node::{Node, unix_now_ms};
use crate::stats::{LATENCY_BUCKETS, latency_bucket};
use link::{Inbox, Link, Responder};
use tokio::sync::Notify;

/// How often a link pings its peer.
pub const PING_INTERVAL_MS: u64 = 250;
/// A connected peer not heard from for this long is down.
pub const DOWN_AFTER_MS: u64 = 1_000;
/// A read replica that has not answered after this share of the timeout makes the round ask
/// another one (speculative retry).
const SPECULATE_DIVISOR: u64 = 4;
/// Stripes of the per-key lock that serializes one coordinator's read-modify-writes.
const KEY_LOCK_STRIPES: usize = 1024;

/// What a peer answered one request with, or that it could not.
#[derive(Debug)]
pub enum Response {
    /// A read's record.
    Record(Option<Record>),
    /// A write was merged.
    Ack,
    /// The request failed there, or the link broke.
    Failed,
    /// A keyspace walk's keys and where it goes on (0: done).
    Keys {
        /// Where the next call starts.
        next: u64,
        /// Live keys.
        keys: Vec<Bytes>,
    },
    /// A count of live keys.
    Count(u64),
    /// A stream walk's records and where it goes on (0: done).
    Stream {
        /// Where the next walk starts.
        cursor: u64,
        /// Records in the ranges asked for.
        records: Vec<(Bytes, Record)>,
    },
    /// An answer to an anti-entropy request.
    Repair(ringcache_cluster::repair::Reply),
}

/// Levels as counted in statistics; an integer level counts as `COUNT`.
pub const LEVEL_NAMES: [&str; 7] = ["ONE", "TWO", "THREE", "QUORUM", "ALL", "ANY", "COUNT"];
/// Round kinds as counted in statistics, indexed by [`OP_READ`] and [`OP_WRITE`].
pub const OP_NAMES: [&str; 2] = ["read", "write"];
/// Index of reads in [`ClusterStats::rounds`].
pub const OP_READ: usize = 0;
/// Index of writes in [`ClusterStats::rounds`].
pub const OP_WRITE: usize = 1;

/// The statistics slot of a level.
fn level_index(level: Level) -> usize {
    match level {
        Level::One => 0,
        Level::Two => 1,
        Level::Three => 2,
        Level::Quorum => 3,
        Level::All => 4,
        Level::Any => 5,
        Level::Count(_) => 6,
    }
}

/// Counters of the rounds of one kind at one level.
#[derive(Debug, Default)]
pub struct RoundStats {
    /// Rounds by outcome, see [`OUTCOMES`].
    pub outcomes: [AtomicU64; 4],
    /// Time to the reply, bucketed as the command latencies are.
    pub latency: [AtomicU64; LATENCY_BUCKETS],
}

/// Counters for INFO and metrics.
#[derive(Debug, Default)]
pub struct ClusterStats {
    /// Rounds by kind (read, write) and level.
    pub rounds: [[RoundStats; LEVEL_NAMES.len()]; 2],
    /// Read repairs sent.
    pub read_repairs: AtomicU64,
    /// Hints stored.
    pub hints_stored: AtomicU64,
    /// Hints replayed to their target.
    pub hints_replayed: AtomicU64,
    /// Hints dropped: past the window, or the target's hint log full.
    pub hints_dropped: AtomicU64,
    /// Handshakes refused (wrong secret, cluster name, version).
    pub handshakes_refused: AtomicU64,
    /// Peer connections closed for bytes that are not valid frames or messages.
    pub peer_frames_rejected: AtomicU64,
    /// Writes refused for clock skew.
    pub clock_skew_refusals: AtomicU64,
}

/// Index into [`ClusterStats::outcomes`].
pub fn outcome_index(outcome: &Result<Option<Record>, QuorumError>) -> usize {
    match outcome {
        Ok(_) => 0,
        Err(QuorumError::Unavailable { .. }) => 1,
        Err(QuorumError::Timeout { .. }) => 2,
        Err(QuorumError::Failed { .. }) => 3,
    }
}

/// Names of [`ClusterStats::outcomes`].
pub const OUTCOMES: [&str; 4] = ["ok", "unavailable", "timeout", "failed"];

/// Streaming counters for INFO and metrics.
#[derive(Debug, Default)]
pub struct StreamStats {
    /// Bytes of records received by streaming (join) or sent (decommission).
    pub bytes: AtomicU64,
    /// Records received or sent.
    pub records: AtomicU64,
    /// Records received that were new here (not already held at that version).
    pub records_new: AtomicU64,
    /// Ranges finished.
    pub ranges_done: AtomicU64,
    /// Ranges planned and not finished.
    pub ranges_pending: AtomicU64,
    /// Records dropped because this node no longer keeps a replica of them.
    pub records_discarded: AtomicU64,
}

/// One node's view of the cluster and its links.
pub struct Cluster {
    /// This node.
    pub local: NodeId,
    /// This node's peer address, as the other members reach it.
    pub address: SocketAddr,
    /// The settings.
    pub config: ClusterConfig,
    /// This node's side of peer handshakes.
    pub identity: LocalPeer,
    /// The gossip state machine, driven by [`gossip::run`].
    pub membership: Mutex<Membership>,
    /// Wakes [`gossip::run`] to carry out outputs queued outside it.
    pub gossip_wake: Notify,
    /// Wakes the streaming task when the view changed.
    pub view_changed: Notify,
    view: RwLock<Arc<View>>,
    /// Addresses a link task keeps a connection to.
    dialing: Mutex<BTreeSet<SocketAddr>>,
    /// The seeds as given, each with its address when it resolved.
    seed_addrs: Vec<(String, Option<SocketAddr>)>,
    /// Set once this node has been in the cluster with every seed (or, joining, with one):
    /// from then on no seed is waited for, even one that left.
    formed: AtomicBool,
    /// Set once a push-pull with any member has merged its view: a restarted node must not
    /// place keys on the ring it kept, which may be several changes old.
    synced: AtomicBool,
    /// Whether this node founds the cluster rather than joins it: no seeds, or its own
    /// peer address among them (Cassandra's rule: seeds do not bootstrap).
    pub founder: bool,
    /// Link liveness and clock offsets.
    pub liveness: Mutex<Liveness>,
    links: RwLock<HashMap<NodeId, Arc<Link>>>,
    /// Hints kept for replicas that missed writes; `None` when the window is 0.
    pub hints: Option<Hints>,
    /// Counters.
    pub stats: ClusterStats,
    /// Streaming counters.
    pub streaming: StreamStats,
    /// Anti-entropy: each range's last repair, and counters.
    pub repair: repair::RepairState,
    next_request: AtomicU64,
    key_locks: Box<[tokio::sync::Mutex<()>]>,
    /// The newest flush time applied here, kept in the data dir.
    flush_hlc: AtomicU64,
    data_dir: PathBuf,
    /// The member table as last written to the data dir.
    persisted: Mutex<Vec<Member>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("local", &self.local)
            .finish()
    }
}

impl Cluster {
    /// Opens the cluster state kept under `data_dir`: node id, member table, hints; this
    /// node's record starts at a higher incarnation than the one it kept, so its restart
    /// overrides any verdict of death.
    ///
    /// # Errors
    /// When the files cannot be read or written.
    pub fn open(
        config: &ClusterConfig,
        data_dir: &Path,
        address: SocketAddr,
    ) -> anyhow::Result<Cluster> {
        let local = persist::node_id(data_dir, config.node_id)?;
        let hints = match config.hint_window_ms {
            0 => None,
            _ => Some(Hints::open(
                &data_dir.join("hints"),
                HintOptions::default(),
            )?),
        };
        let seed_addrs = config
            .seeds
            .iter()
            .map(|seed| {
                let resolved = std::net::ToSocketAddrs::to_socket_addrs(seed.as_str())
                    .ok()
                    .and_then(|mut addrs| addrs.next());
                (seed.clone(), resolved)
            })
            .collect::<Vec<_>>();
        let founder =
            config.seeds.is_empty() || seed_addrs.iter().any(|(_, addr)| *addr == Some(address));
        let kept = persist::read_members(data_dir);
        let own = kept.iter().find(|m| m.id == local);
        let flush_hlc = persist::read_flush_hlc(data_dir)?;
        let me = Member {
            id: local,
            addr: address,
            // `Membership::new` starts one above: a restart overrides what was said of the last life.
            incarnation: own.map_or(0, |m| m.incarnation),
            status: gossip::starting_status(own.map(|m| m.status), founder),
            health: Health::Alive,
            flush_hlc,
        };
        let secret = config.secret.clone().unwrap_or_default().into_bytes();
        let mut machine = Membership::new(
            me.clone(),
            &config.name,
            &secret,
            MembershipConfig::lan(),
            rand::random(),
        );
        let others: Vec<Member> = kept.into_iter().filter(|m| m.id != local).collect();
        // Only a kept view can be stale: a fresh node starts from nothing, and the founder
        // and joiner rules of `unresolved_seeds` say when it may place keys.
        let synced = AtomicBool::new(others.is_empty());
        machine.merge_state(others, unix_now_ms());
        let cluster = Cluster {
            local,
            address,
            identity: LocalPeer {
                cluster_name: config.name.clone(),
                node_id: local.get(),
                secret,
            },
            config: config.clone(),
            membership: Mutex::new(machine),
            gossip_wake: Notify::new(),
            view_changed: Notify::new(),
            view: RwLock::new(Arc::new(View::empty(config.vnodes))),
            dialing: Mutex::new(BTreeSet::new()),
            seed_addrs,
            formed: AtomicBool::new(false),
            synced,
            founder,
            liveness: Mutex::new(Liveness::new(DOWN_AFTER_MS)),
            links: RwLock::new(HashMap::new()),
            hints,
            stats: ClusterStats::default(),
            streaming: StreamStats::default(),
            repair: repair::RepairState::open(data_dir),
            next_request: AtomicU64::new(1),
            key_locks: (0..KEY_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            flush_hlc: AtomicU64::new(flush_hlc),
            data_dir: data_dir.to_path_buf(),
            persisted: Mutex::new(Vec::new()),
        };
        cluster.rebuild_view();
        tracing::info!(node_id = %local, %address, status = persist::status_name(me.status), founder, "cluster state opened");
        Ok(cluster)
    }

    /// The tie-break id of this node's record versions.
    pub fn version_node(&self) -> u32 {
        let id = self.local.get();
        (id ^ (id >> 32)) as u32
    }

    /// The members and rings as gossip last told them.
    pub fn view(&self) -> Arc<View> {
        self.view.read().clone()
    }

    /// The ring over the current owners.
    pub fn ring(&self) -> Arc<Ring> {
        self.view().ring.clone()
    }

    /// This node's own status.
    pub fn status(&self) -> Status {
        self.membership.lock().local().status
    }

    /// Changes this node's own status and spreads it at once.
    pub fn set_status(&self, status: Status) {
        self.membership.lock().set_status(status, unix_now_ms());
        self.gossip_wake.notify_one();
    }

    /// Rebuilds the view from the membership machine ([`View::next`]).
    fn rebuild_view(&self) -> Arc<View> {
        let members: Vec<Member> = self.membership.lock().members().cloned().collect();
        let old = self.view();
        let view = Arc::new(old.next(members, self.config.vnodes, unix_now_ms(), HANDOVER_MS));
        *self.view.write() = view.clone();
        view
    }

    /// Takes in a change of the gossip view: rings, links to new members, a newer cluster
    /// flush time, and wakes what waits on the view.
    pub fn refresh_view(&self, node: &Arc<Node>) {
        let before = self.view();
        let view = self.rebuild_view();
        if !Arc::ptr_eq(&before.ring, &view.ring) {
            tracing::info!(owners = view.ring.members().len(), "ring rebuilt");
        }
        if before.members.len() != view.members.len() {
            // A member left or was forgotten (or one arrived): hint files, off the async
            // workers.
            let node = node.clone();
            tokio::task::spawn_blocking(move || {
                node.cluster
                    .get()
                    .expect("cluster")
                    .drop_hints_of_departed();
            });
        }
        for member in view.members.values().filter(|m| m.id != self.local) {
            if self.dialing.lock().insert(member.addr) {
                tokio::spawn(link::dial(node.clone(), member.addr));
            }
        }
        let newest_flush = view
            .members
            .values()
            .map(|m| m.flush_hlc)
            .max()
            .unwrap_or(0);
        if newest_flush > self.flushed_before() {
            let node = node.clone();
            let version = ringcache_storage::Version {
                hlc: newest_flush,
                node: 0,
            };
            tokio::task::spawn_blocking(move || {
                if let Err(e) = apply_late_flush(&node, version) {
                    tracing::error!(error = %e, "cannot apply the cluster's flush time");
                }
            });
        }
        self.view_changed.notify_waiters();
    }

    /// Drops the hints kept for nodes that left or were forgotten: they will not come back.
    fn drop_hints_of_departed(&self) {
        let Some(hints) = &self.hints else {
            return;
        };
        let departed: Vec<u64> = {
            let membership = self.membership.lock();
            hints
                .targets()
                .into_iter()
                .filter(|&t| {
                    membership
                        .member(NodeId::new(t))
                        .is_some_and(|m| m.status == Status::Left)
                })
                .collect()
        };
        for target in departed {
            if let Err(e) = hints.forget(target) {
                tracing::warn!(target, error = %e, "cannot drop the hints of a departed node");
            }
        }
    }

    /// Whether a link task should keep a connection to `addr`: a member is there.
    pub fn wants_link(&self, addr: SocketAddr) -> bool {
        let wanted = self
            .view()
            .members
            .values()
            .any(|m| m.addr == addr && m.id != self.local);
        if !wanted {
            self.dialing.lock().remove(&addr);
        }
        wanted
    }

    /// Writes the member table to the data dir if it changed.
    pub fn persist_members(&self) {
        let members: Vec<Member> = self.membership.lock().members().cloned().collect();
        let mut persisted = self.persisted.lock();
        if *persisted == members {
            return;
        }
        match persist::write_members(&self.data_dir, members.iter()) {
            Ok(()) => *persisted = members,
            Err(e) => tracing::error!(error = %e, "cannot keep the member table"),
        }
    }

    /// Members with their peer addresses.
    pub fn members(&self) -> BTreeMap<NodeId, String> {
        self.view()
            .members
            .values()
            .map(|m| (m.id, m.addr.to_string()))
            .collect()
    }

    /// The seeds this node still waits for before it places keys: for a founder, those not
    /// yet in its view (a cluster started all at once forms with every seed); for a node
    /// that joins, every seed until one of them has let it in.
    /// Before the first push-pull, every seed and known member is asked (a restarted node
    /// may find its seeds down and other members up).
    pub fn unresolved_seeds(&self) -> Vec<String> {
        if self.formed.load(Relaxed) {
            return Vec::new();
        }
        if !self.synced.load(Relaxed) {
            return self.contacts();
        }
        let unresolved = self.seeds_not_in_view();
        if unresolved.is_empty() {
            self.formed.store(true, Relaxed);
        }
        unresolved
    }

    /// A push-pull merged a member's view.
    pub fn mark_synced(&self) {
        self.synced.store(true, Relaxed);
    }

    /// The seeds but this node, then the members this node knows.
    fn contacts(&self) -> Vec<String> {
        let mut contacts: Vec<String> = self
            .seed_addrs
            .iter()
            .filter(|(_, addr)| *addr != Some(self.address))
            .map(|(seed, _)| seed.clone())
            .collect();
        for member in self.view().members.values().filter(|m| m.id != self.local) {
            let addr = member.addr.to_string();
            if !contacts.contains(&addr) {
                contacts.push(addr);
            }
        }
        contacts
    }

    fn seeds_not_in_view(&self) -> Vec<String> {
        let view = self.view();
        let others = view.members.len().saturating_sub(1);
        if !self.founder {
            return match others {
                0 => self.config.seeds.clone(),
                _ => Vec::new(),
            };
        }
        // Any record counts, a left one too: a seed decommissioned since was reached.
        let known: BTreeSet<SocketAddr> =
            self.membership.lock().members().map(|m| m.addr).collect();
        self.seed_addrs
            .iter()
            .filter(|(_, addr)| *addr != Some(self.address))
            .filter(|(_, addr)| !addr.is_some_and(|a| known.contains(&a)))
            .map(|(seed, _)| seed.clone())
            .collect()
    }

    /// Whether `node` is reachable now (this node always is): gossip does not hold it dead,
    /// and its link is up.
    pub fn is_up(&self, node: NodeId, now_ms: u64) -> bool {
        node == self.local
            || (self
                .view()
                .members
                .get(&node)
                .is_some_and(|m| m.health != Health::Dead)
                && self.liveness.lock().is_up(node, now_ms))
    }

    /// Members that are up, this node included.
    pub fn members_up(&self, now_ms: u64) -> usize {
        let ids: Vec<NodeId> = self.view().members.keys().copied().collect();
        ids.into_iter().filter(|&n| self.is_up(n, now_ms)).count()
    }

    /// The established link to `node`, if any.
    pub fn link(&self, node: NodeId) -> Option<Arc<Link>> {
        self.links.read().get(&node).cloned()
    }

    /// Registers the established link to `node`, replacing an older one.
    pub fn attach(&self, node: NodeId, link: Arc<Link>) {
        self.links.write().insert(node, link);
        self.liveness.lock().connected(node, unix_now_ms());
    }

    /// Forgets the link to `node` if it is `link` (a newer one may have replaced it).
    pub fn detach(&self, node: NodeId, link: &Arc<Link>) {
        let mut links = self.links.write();
        if links.get(&node).is_some_and(|l| Arc::ptr_eq(l, link)) {
            links.remove(&node);
            self.liveness.lock().disconnected(node);
        }
    }

    /// A fresh request id for a multiplexed peer request.
    pub fn request_id(&self) -> u64 {
        self.next_request.fetch_add(1, Relaxed)
    }

    /// Whether this node's link to `node` is up now: connected and heard from lately.
    fn link_up(&self, node: NodeId, now_ms: u64) -> bool {
        self.liveness.lock().is_up(node, now_ms) && self.link(node).is_some()
    }

    /// The replicas a read of `key` asks ([`View::read_targets`]).
    fn read_targets(&self, key: &[u8], now_ms: u64) -> Vec<Target> {
        let n = self.config.replication_factor;
        self.view()
            .read_targets(key_token(key), n, self.local, |node| {
                self.link_up(node, now_ms)
            })
    }

    /// A write's replicas and its need at `level` ([`View::write_targets`]).
    fn write_targets(&self, key: &[u8], level: Level, now_ms: u64) -> (Vec<Target>, Need) {
        let n = self.config.replication_factor;
        self.view().write_targets(
            key_token(key),
            n,
            now_ms,
            self.local,
            |node| self.link_up(node, now_ms),
            |replicas| self.need(level, replicas),
        )
    }

    fn need(&self, level: Level, replicas: usize) -> Need {
        let hints_count = level == Level::Any && self.hints.is_some();
        Need::new(
            level.name(),
            level.required(replicas),
            replicas,
            hints_count,
        )
    }

    /// The lock serializing this coordinator's read-modify-writes of the keys' stripes,
    /// taken in stripe order so two multi-key commands cannot deadlock.
    pub async fn lock_keys(&self, keys: &[&Bytes]) -> Vec<tokio::sync::MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = keys
            .iter()
            .map(|k| (key_token(k) % KEY_LOCK_STRIPES as u64) as usize)
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            guards.push(self.key_locks[stripe].lock().await);
        }
        guards
    }

    /// Checks, before any key is touched, that every key has enough replicas up for a write
    /// at `level`, so a multi-key write is refused whole rather than half done.
    ///
    /// # Errors
    /// The first key's [`QuorumError::Unavailable`].
    pub fn check_writable(&self, keys: &[&Bytes], level: Level) -> Result<(), QuorumError> {
        let now = unix_now_ms();
        for key in keys {
            let (targets, need) = self.write_targets(key, level, now);
            check_writable(&targets, &need)?;
        }
        Ok(())
    }

    /// Hints this node keeps for others, and their bytes.
    pub fn hints_pending(&self) -> (u64, u64) {
        self.hints.as_ref().map_or((0, 0), |hints| {
            let stats = hints.stats();
            (stats.pending_hints, stats.pending_bytes)
        })
    }

    /// What `replica` holds for `key` now, `None` when it cannot be asked (down, or no
    /// answer within the read timeout). For `RING REPLICAS`.
    pub async fn ask(&self, node: &Node, replica: NodeId, key: &Bytes) -> Option<Option<Record>> {
        if replica == self.local {
            return Some(node.store.peek(key, unix_now_ms()));
        }
        let link = self.link(replica)?;
        let answers = Inbox::new();
        let message = Message::Read { key: key.clone() };
        let id = link
            .request(self.request_id(), &message, replica, answers.clone())
            .ok()?;
        let timeout = Duration::from_millis(self.config.read_timeout_ms);
        let answer = tokio::time::timeout(timeout, answers.recv()).await;
        link.cancel(id);
        match answer {
            Ok((_, Response::Record(record))) => Some(record),
            _ => None,
        }
    }

    /// Sends `message` to every member that is up and waits (up to the read timeout) for
    /// their answers; this node answers with `local`. Returns the answers and the number of
    /// members that did not answer.
    pub async fn ask_every(
        &self,
        message: &Message,
        local: impl FnOnce() -> Response,
    ) -> (Vec<(NodeId, Response)>, usize) {
        let members: Vec<NodeId> = self.members().into_keys().collect();
        let mut answers = vec![(self.local, local())];
        let inbox = Inbox::new();
        let mut in_flight = Vec::new();
        for &member in members.iter().filter(|&&m| m != self.local) {
            if let Some(link) = self.link(member)
                && let Ok(id) = link.request(self.request_id(), message, member, inbox.clone())
            {
                in_flight.push((link, id));
            }
        }
        let timeout = Duration::from_millis(self.config.read_timeout_ms);
        let _ = tokio::time::timeout(timeout, async {
            for _ in 0..in_flight.len() {
                answers.push(inbox.recv().await);
            }
        })
        .await;
        for (link, id) in in_flight {
            link.cancel(id);
        }
        answers.retain(|(_, r)| !matches!(r, Response::Failed));
        let missing = members.len() - answers.len();
        (answers, missing)
    }

    /// The flush time: records no newer than it are dead (FLUSHALL in a cluster).
    pub fn flushed_before(&self) -> u64 {
        self.flush_hlc.load(Relaxed)
    }

    /// Whether a record sent here (a write, a repair, a hint) survives the last flush.
    pub fn survives_flush(&self, record: &Record) -> bool {
        record.version().hlc > self.flushed_before()
    }

    /// Whether this node's clock is too far from its peers' to coordinate writes.
    pub fn clock_skew(&self) -> Option<i64> {
        let now = unix_now_ms();
        let liveness = self.liveness.lock();
        liveness
            .is_skewed(self.config.max_clock_offset_ms, now)
            .then(|| liveness.own_offset_ms(now))
    }
}

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

/// Runs one round: applies its effects (local ones in-process, remote ones over links),
/// feeds it responses and ticks, and returns its reply; what remains after the reply
/// (hints for slow replicas, background read repair) goes on in a task.
struct Driver {
    node: Arc<Node>,
    key: Bytes,
    round: Round,
    inbox: Responder,
    /// Requests in flight on each link, cancelled when the round ends.
    in_flight: Vec<(Arc<Link>, u64)>,
    reply: Option<Result<Option<Record>, QuorumError>>,
    /// A read round sent repairs before its reply.
    repaired: bool,
}

impl Driver {
    fn new(node: Arc<Node>, key: Bytes, round: Round) -> Driver {
        Driver {
            node,
            key,
            round,
            inbox: Inbox::new(),
            in_flight: Vec::new(),
            reply: None,
            repaired: false,
        }
    }

    fn cluster(&self) -> &Cluster {
        self.node
            .cluster
            .get()
            .expect("a driver runs only in a cluster")
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
        if to == self.cluster().local {
            let record = self.node.store.get(&self.key, unix_now_ms());
            return self.round.on_response(to, Response::Record(record));
        }
        self.send(
            to,
            Message::Read {
                key: self.key.clone(),
            },
        )
    }

    fn write(&mut self, to: NodeId, record: Record) -> Vec<Effect> {
        if matches!(self.round, Round::Read(_)) {
            self.cluster().stats.read_repairs.fetch_add(1, Relaxed);
            self.repaired |= self.reply.is_none();
        }
        if to == self.cluster().local {
            let cluster = self.cluster();
            if !cluster.survives_flush(&record) {
                return self.round.on_response(to, Response::Ack);
            }
            let response = match self.node.store.merge(&self.key, &record) {
                // Under appendfsync always, the client's connection waits for durability
                // before it sends the reply (its session marked the write).
                Ok(_) => Response::Ack,
                Err(e) => {
                    tracing::warn!(error = %e, "local replica refused a write");
                    Response::Failed
                }
            };
            return self.round.on_response(to, response);
        }
        self.send(
            to,
            Message::Write {
                key: self.key.clone(),
                record,
            },
        )
    }

    fn send(&mut self, to: NodeId, message: Message) -> Vec<Effect> {
        let cluster = self.node.cluster.get().expect("cluster");
        let Some(link) = cluster.link(to) else {
            return self.round.on_response(to, Response::Failed);
        };
        match link.request(cluster.request_id(), &message, to, self.inbox.clone()) {
            Ok(id) => {
                self.in_flight.push((link, id));
                Vec::new()
            }
            Err(()) => self.round.on_response(to, Response::Failed),
        }
    }

    fn hint(&mut self, target: NodeId, record: &Record) -> Vec<Effect> {
        let cluster = self.node.cluster.get().expect("cluster");
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
            self.cancel();
            return;
        }
        tokio::spawn(async move {
            while !self.round.is_finished() {
                self.step().await;
                self.reply = None;
            }
            self.cancel();
        });
    }

    fn cancel(&mut self) {
        for (link, id) in self.in_flight.drain(..) {
            link.cancel(id);
        }
    }
}

/// Reads `key` at `level` through its replicas; the merged record.
///
/// # Errors
/// The level could not be met.
pub async fn read(
    node: &Arc<Node>,
    key: &Bytes,
    level: Level,
) -> Result<Option<Record>, QuorumError> {
    let cluster = node.cluster.get().expect("cluster");
    let now = unix_now_ms();
    let targets = cluster.read_targets(key, now);
    let need = cluster.need(level, targets.len());
    let timeout = cluster.config.read_timeout_ms;
    let started = ReadRound::start(need, &targets, now, timeout, timeout / SPECULATE_DIVISOR);
    let stats = &cluster.stats.rounds[OP_READ][level_index(level)];
    let (outcome, repaired) =
        run(node, key, stats, started.map(|(r, e)| (Round::Read(r), e))).await;
    match outcome {
        Ok(Some(record)) if repaired => {
            repair_extras(node, key, &record, level).await?;
            Ok(Some(record))
        }
        outcome => outcome,
    }
}

/// A read that repaired its replicas before replying promises that later reads see what it
/// returned; while the ring changes, the replicas those reads will ask include the key's
/// extra replicas ([`View::extra_replicas`]), so they get the repair too before the reply.
///
/// # Errors
/// An extra replica that is up did not take it in time.
async fn repair_extras(
    node: &Arc<Node>,
    key: &Bytes,
    record: &Record,
    level: Level,
) -> Result<(), QuorumError> {
    let cluster = node.cluster.get().expect("cluster");
    let view = cluster.view();
    let n = cluster.config.replication_factor;
    let now = unix_now_ms();
    let extras = view.extra_replicas(key_token(key), n, now);
    if extras.is_empty() {
        return Ok(());
    }
    let targets: Vec<Target> = extras
        .iter()
        .map(|&node| Target {
            node,
            alive: view.is_reachable(node, cluster.local, |n| cluster.link_up(n, now)),
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
    let stats = &cluster.stats.rounds[OP_WRITE][level_index(level)];
    let (outcome, _) = run(node, key, stats, started.map(|(w, e)| (Round::Write(w), e))).await;
    outcome.map(|_| ())
}

/// Writes `record` to `key`'s replicas at `level`.
///
/// # Errors
/// The level could not be met.
pub async fn write(
    node: &Arc<Node>,
    key: &Bytes,
    record: Record,
    level: Level,
) -> Result<(), QuorumError> {
    let cluster = node.cluster.get().expect("cluster");
    let now = unix_now_ms();
    let (targets, need) = cluster.write_targets(key, level, now);
    let started = WriteRound::start(need, record, &targets, now, cluster.config.write_timeout_ms);
    let stats = &cluster.stats.rounds[OP_WRITE][level_index(level)];
    let (outcome, _) = run(node, key, stats, started.map(|(r, e)| (Round::Write(r), e))).await;
    outcome.map(|_| ())
}

/// Runs a round to its reply; the reply, and whether a read round repaired before it.
async fn run(
    node: &Arc<Node>,
    key: &Bytes,
    stats: &RoundStats,
    started: Result<(Round, Vec<Effect>), QuorumError>,
) -> (Result<Option<Record>, QuorumError>, bool) {
    let began = std::time::Instant::now();
    let (outcome, repaired) = match started {
        Err(e) => (Err(e), false),
        Ok((round, effects)) => {
            let mut driver = Driver::new(node.clone(), key.clone(), round);
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

/// Live keys of this node's store in token order from `from`, about `count` of them, and
/// where the walk goes on (0: done).
pub fn scan_local(node: &Node, from: u64, count: usize) -> (u64, Vec<Bytes>) {
    let now = unix_now_ms();
    let mut keys = Vec::new();
    let next = node
        .store
        .scan(from, count.max(1), now, &mut |key, record| {
            if record.is_live(now) {
                keys.push(key.clone());
            }
        });
    (next, keys)
}

/// Applies a cluster-wide flush at `version`: records no newer are dead here from now on
/// (the flush time is kept first, so a write older than it that arrives later is dropped),
/// then the store is emptied.
///
/// # Errors
/// The flush time cannot be kept, or the store cannot be cleared.
pub fn apply_flush(node: &Node, version: ringcache_storage::Version) -> Result<(), String> {
    let cluster = node.cluster.get().expect("cluster");
    node.clock.observe(version);
    let previous = cluster.flush_hlc.fetch_max(version.hlc, Relaxed);
    if version.hlc > previous {
        persist::write_flush_hlc(&cluster.data_dir.join("flush-version"), version.hlc)
            .map_err(|e| e.to_string())?;
        // The flush time travels in gossip too: a member that missed it applies it later.
        cluster
            .membership
            .lock()
            .set_flush_hlc(version.hlc, unix_now_ms());
        cluster.gossip_wake.notify_one();
    }
    node.store.clear().map_err(|e| e.to_string())
}

/// Applies a flush this node missed and learned of later through gossip: records no newer
/// than `version` are dead here from now on, and those it holds are dropped one by one, not
/// by emptying the store, since writes newer than the flush may have arrived meanwhile.
///
/// # Errors
/// The flush time cannot be kept, or a record cannot be dropped.
pub fn apply_late_flush(node: &Node, version: ringcache_storage::Version) -> Result<(), String> {
    let cluster = node.cluster.get().expect("cluster");
    node.clock.observe(version);
    let previous = cluster.flush_hlc.fetch_max(version.hlc, Relaxed);
    if version.hlc <= previous {
        return Ok(());
    }
    persist::write_flush_hlc(&cluster.data_dir.join("flush-version"), version.hlc)
        .map_err(|e| e.to_string())?;
    cluster
        .membership
        .lock()
        .set_flush_hlc(version.hlc, unix_now_ms());
    cluster.gossip_wake.notify_one();
    let now = unix_now_ms();
    let mut cursor = 0;
    loop {
        let mut dead = Vec::new();
        cursor = node.store.scan(cursor, 4096, now, &mut |key, record| {
            if record.version().hlc <= version.hlc {
                dead.push(key.clone());
            }
        });
        for key in dead {
            node.store.discard(&key).map_err(|e| e.to_string())?;
        }
        if cursor == 0 {
            return Ok(());
        }
    }
}

/// How often the clock's high-water mark is kept in the data dir.
const CLOCK_KEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Keeps the clock's high-water mark in the data dir once a second and at shutdown, so a
/// restarted node starts its clock past every version it issued more than a second before a
/// crash, even if the wall clock stepped back meanwhile (a version is never issued twice).
pub async fn keep_clock(node: Arc<Node>) {
    let data_dir = node.config.read().data_dir.clone();
    let mut shutdown = node.shutdown.subscribe();
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(CLOCK_KEEP_INTERVAL) => false,
            _ = shutdown.wait_for(|stop| *stop) => true,
        };
        let (dir, hlc) = (data_dir.clone(), node.clock.high_water());
        let kept = tokio::task::spawn_blocking(move || persist::write_clock(&dir, hlc)).await;
        if let Ok(Err(e)) = kept {
            tracing::warn!(error = %e, "cannot keep the clock's high-water mark");
        }
        if stopping {
            return;
        }
    }
}
