//! The cluster state of one node: who the members are (the gossip machine and the view built
//! from it), the seeds and whether this node has reached them, the links to peers, the
//! hints kept for others, this node's replica side, and the counters. Everything that acts
//! on it (gossip, streaming, repair, the coordinator, the peer server) sits above it and
//! takes it as a handle.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use ringcache_cluster::coordinator::check_writable;
use ringcache_cluster::coordinator::{Need, QuorumError, Target};
use ringcache_cluster::membership::{
    Config as MembershipConfig, GossipError, Health, Member, Membership, Status,
};
use ringcache_cluster::protocol::{LocalPeer, Message};
use ringcache_cluster::view::{HANDOVER_MS, View};
use ringcache_cluster::{HybridClock, Liveness, NodeId, Ring};
use ringcache_resp::Level;
use ringcache_storage::hints::{HintOptions, Hints};
use ringcache_storage::{Record, Store, key_token};
use tokio::sync::Notify;

use super::error::{ClusterRefusal, LinkError, RequestError};
use super::link::{DOWN_AFTER_MS, Inbox, Links, Response};
use super::persist;
use super::repair_state::RepairState;
use super::replica::Replica;
use super::stats::{ClusterStats, StreamStats};
use crate::clock::{monotonic_ms, unix_now_ms};
use crate::config::ClusterConfig;

/// Stripes of the per-key lock that serializes one coordinator's read-modify-writes.
const KEY_LOCK_STRIPES: usize = 1024;

/// One node's view of the cluster and its links.
pub struct Cluster {
    /// This node.
    pub local: NodeId,
    /// This node's peer address, as the other members reach it.
    pub address: SocketAddr,
    /// The settings.
    pub config: ClusterConfig,
    /// The gossip state machine, driven by [`super::gossip::run`].
    pub membership: Mutex<Membership>,
    /// Wakes [`super::gossip::run`] to carry out outputs queued outside it.
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
    /// Link liveness and clock offsets (shared with the links, which update it).
    pub liveness: Arc<Mutex<Liveness>>,
    /// The links to peers, and requests over them.
    pub links: Arc<Links>,
    /// Hints kept for replicas that missed writes; `None` when the window is 0.
    pub hints: Option<Hints>,
    /// This node's side as a replica: store, clock, flush time.
    pub replica: Replica,
    /// Counters.
    pub stats: Arc<ClusterStats>,
    /// Streaming counters.
    pub streaming: StreamStats,
    /// Anti-entropy: each range's last repair, and counters.
    pub repair: RepairState,
    key_locks: Box<[tokio::sync::Mutex<()>]>,
    /// The data dir, where [`persist`] keeps what a restart needs.
    pub data_dir: PathBuf,
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

/// The tie-break id of the record versions of node `local`.
fn version_node(local: NodeId) -> u32 {
    let id = local.get();
    (id ^ (id >> 32)) as u32
}

impl Cluster {
    /// Sends a message published on this node to every other member, without waiting for
    /// them: at most once (a member without a link up, or whose link queue is full, misses
    /// it, counted in `publish_unsent`), and in no order across publishers.
    pub fn publish(&self, channel: &Bytes, payload: &Bytes) {
        let message = Message::Publish {
            channel: channel.clone(),
            payload: payload.clone(),
        };
        // Nobody reads the acknowledgements: dropping each request forgets its answer.
        let inbox = Inbox::new();
        let view = self.view();
        for &peer in view.members.keys().filter(|&&n| n != self.local) {
            let counter = match self.links.send(peer, &message, &inbox) {
                Ok(_request) => &self.stats.publish_sent,
                Err(_) => &self.stats.publish_unsent,
            };
            counter.fetch_add(1, Relaxed);
        }
    }

    /// Opens the cluster state kept under `data_dir`: node id, member table, hints, flush
    /// time; this node's record starts at a higher incarnation than the one it kept, so its
    /// restart overrides any verdict of death. The replica side works on `store`, with a
    /// clock whose tie-break is this node's id.
    ///
    /// # Errors
    /// When the files cannot be read or written.
    pub fn open(
        config: &ClusterConfig,
        data_dir: &Path,
        address: SocketAddr,
        store: Arc<dyn Store>,
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
            status: starting_status(own.map(|m| m.status), founder),
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
        let stats = Arc::new(ClusterStats::default());
        let liveness = Arc::new(Mutex::new(Liveness::new(DOWN_AFTER_MS)));
        let identity = LocalPeer {
            cluster_name: config.name.clone(),
            node_id: local.get(),
            secret,
        };
        let clock = Arc::new(HybridClock::new(version_node(local)));
        let cluster = Cluster {
            local,
            address,
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
            links: Arc::new(Links::new(local, identity, liveness.clone(), stats.clone())),
            liveness,
            hints,
            replica: Replica::new(
                store,
                clock,
                config.max_clock_offset_ms,
                flush_hlc,
                stats.clone(),
            ),
            stats,
            streaming: StreamStats::default(),
            repair: RepairState::open(data_dir),
            key_locks: (0..KEY_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            data_dir: data_dir.to_path_buf(),
            persisted: Mutex::new(Vec::new()),
        };
        cluster.rebuild_view();
        tracing::info!(node_id = %local, %address, status = persist::status_name(me.status), founder, "cluster state opened");
        Ok(cluster)
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

    /// Rebuilds the view from the membership machine ([`View::next`]); what acts on the
    /// change is [`super::gossip::refresh_view`].
    pub fn rebuild_view(&self) -> Arc<View> {
        let members: Vec<Member> = self.membership.lock().members().cloned().collect();
        let old = self.view();
        // The handover is timed on the monotonic clock: see `monotonic_ms`.
        let view = Arc::new(old.next(members, self.config.vnodes, monotonic_ms(), HANDOVER_MS));
        *self.view.write() = view.clone();
        view
    }

    /// Drops the hints kept for nodes that left or were forgotten: they will not come back.
    pub fn drop_hints_of_departed(&self) {
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

    /// Marks `addr` as dialed; false if a link task keeps it already.
    pub fn start_dialing(&self, addr: SocketAddr) -> bool {
        self.dialing.lock().insert(addr)
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

    /// Merges a peer's encoded membership view into this node's.
    ///
    /// # Errors
    /// The bytes are not a member table: nothing was merged.
    pub fn merge_members(&self, state: &[u8]) -> Result<(), GossipError> {
        let members = Membership::decode_state(state)?;
        self.membership.lock().merge_state(members, unix_now_ms());
        self.mark_synced();
        self.gossip_wake.notify_one();
        Ok(())
    }

    /// This node's membership view, encoded for a push-pull.
    pub fn encode_members(&self) -> Bytes {
        Bytes::from(self.membership.lock().encode_state())
    }

    /// Gossip push-pull over its own short connection: sends this node's whole membership
    /// view to the peer at `addr` and merges the peer's answer. Also how a node first enters
    /// a cluster through a seed.
    ///
    /// # Errors
    /// The peer cannot be reached, refuses, or answers with something else: nothing merged.
    pub async fn push_pull(&self, addr: &str) -> Result<(), LinkError> {
        match super::link::push_pull(&self.links, addr, self.encode_members()).await? {
            Some(state) => Ok(self.merge_members(&state)?),
            None => Ok(()), // This node itself.
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

    /// Whether `node` is up now (this node always is): gossip does not hold it dead, and its
    /// link's liveness (pings) says up. Unlike [`View::is_reachable`] as a request's targets
    /// use it, a connection need not be established at this moment: the repair scheduler,
    /// hint replay and `members_up` wait for one.
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

    /// The replicas a read of `key` asks ([`View::read_targets`]).
    pub fn read_targets(&self, key: &[u8], now_ms: u64) -> Vec<Target> {
        let n = self.config.replication_factor;
        self.view()
            .read_targets(key_token(key), n, self.local, |node| {
                self.links.is_up(node, now_ms)
            })
    }

    /// A write's replicas and its need at `level` ([`View::write_targets`]).
    pub fn write_targets(&self, key: &[u8], level: Level, now_ms: u64) -> (Vec<Target>, Need) {
        let n = self.config.replication_factor;
        self.view().write_targets(
            key_token(key),
            n,
            monotonic_ms(),
            self.local,
            |node| self.links.is_up(node, now_ms),
            |replicas| self.need(level, replicas),
        )
    }

    /// What a round at `level` over `replicas` needs to reply.
    pub fn need(&self, level: Level, replicas: usize) -> Need {
        let leaving = self.status() == Status::Leaving;
        let hints_count = Need::hints_count(level == Level::Any, self.hints.is_some(), leaving);
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

    /// Whether this node may place keys: it has reached its seeds.
    ///
    /// # Errors
    /// [`ClusterRefusal::SeedsUnreached`] with the seeds still waited for.
    pub fn check_seeds(&self) -> Result<(), ClusterRefusal> {
        let unresolved = self.unresolved_seeds();
        match unresolved.is_empty() {
            true => Ok(()),
            false => Err(ClusterRefusal::SeedsUnreached { unresolved }),
        }
    }

    /// Whether this node may coordinate writes: its clock is close enough to its peers'.
    ///
    /// # Errors
    /// [`ClusterRefusal::ClockSkew`] (counted as a clock skew refusal).
    pub fn check_clock(&self) -> Result<(), ClusterRefusal> {
        let Some(offset_ms) = self.clock_skew() else {
            return Ok(());
        };
        self.stats.clock_skew_refusals.fetch_add(1, Relaxed);
        Err(ClusterRefusal::ClockSkew {
            offset_ms,
            max_ms: self.config.max_clock_offset_ms,
        })
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
    pub async fn ask(&self, replica: NodeId, key: &Bytes) -> Option<Option<Record>> {
        if replica == self.local {
            return Some(self.replica.store.peek(key, unix_now_ms()));
        }
        let message = Message::Read { key: key.clone() };
        let timeout = Duration::from_millis(self.config.read_timeout_ms);
        match self.links.request(replica, &message, timeout).await {
            Ok(Response::Record(record)) => Some(record),
            Ok(_) | Err(_) => None,
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
        let others = members.iter().filter(|&&m| m != self.local);
        let requests = others.map(|&member| (member, message.clone()));
        let timeout = Duration::from_millis(self.config.read_timeout_ms);
        for (member, outcome) in self.links.request_all(requests, timeout).await {
            match outcome {
                Ok(response) => answers.push((member, response)),
                Err(RequestError::Timeout { .. } | RequestError::Failed(_)) => {}
                Err(e) => tracing::debug!(%member, error = %e, "a member was not asked"),
            }
        }
        answers.retain(|(_, r)| !matches!(r, Response::Failed));
        let missing = members.len() - answers.len();
        (answers, missing)
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

/// The status this node starts in: the one it kept (a restart), else Normal for a founder
/// and Joining for a newcomer. A node that had left, or was forgotten, joins again.
fn starting_status(kept: Option<Status>, founder: bool) -> Status {
    match kept {
        Some(Status::Normal) => Status::Normal,
        // A decommission cut short by a crash is not resumed: the operator runs it again.
        Some(Status::Leaving) => Status::Normal,
        Some(Status::Joining) => Status::Joining,
        // Done streaming: still ready (writes kept coming to it as a pending replica).
        Some(Status::Ready) => Status::Ready,
        // A node that left, or was forgotten, holds stale data: it joins again.
        Some(Status::Left) => Status::Joining,
        None if founder => Status::Normal,
        None => Status::Joining,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use ringcache_storage::MemoryStore;

    /// The cluster state for the flags `args`, over a fresh data dir and an in-memory store;
    /// no socket is opened. The data dir is removed when the guard drops.
    pub fn open_cluster(args: &[&str]) -> (Cluster, DataDir) {
        let dir = std::env::temp_dir().join(format!(
            "ringcache-cluster-test-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let argv = std::iter::once("ringcache").chain(args.iter().copied());
        let settings = <crate::config::Settings as clap::Parser>::parse_from(argv);
        let config = crate::config::Config::from_settings(settings)
            .unwrap()
            .cluster;
        let address = "127.0.0.1:1".parse().unwrap();
        let store = Arc::new(MemoryStore::new());
        (
            Cluster::open(&config, &dir, address, store).unwrap(),
            DataDir(dir),
        )
    }

    /// Removes a test's data dir.
    pub struct DataDir(PathBuf);

    impl Drop for DataDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_founder_without_seeds_places_keys_at_once() {
        let (cluster, _dir) = open_cluster(&[]);
        assert!(cluster.founder);
        assert!(cluster.check_seeds().is_ok());
        assert!(cluster.check_clock().is_ok(), "no peer measured: no skew");
    }

    #[test]
    fn a_joining_node_refuses_keys_naming_the_seeds_it_waits_for() {
        let seeds = "127.0.0.1:7001,127.0.0.1:7002";
        let (cluster, _dir) = open_cluster(&["--seeds", seeds, "--cluster-secret", "s"]);
        assert!(!cluster.founder);
        let refusal = cluster.check_seeds().unwrap_err();
        assert!(
            refusal
                .to_string()
                .starts_with("CLUSTERDOWN this node has not reached every seed yet (127.0.0.1:7001, 127.0.0.1:7002)"),
            "{refusal}"
        );
    }

    #[tokio::test]
    async fn a_request_to_a_peer_without_a_link_fails_at_once() {
        let (cluster, _dir) = open_cluster(&[]);
        let peer = NodeId::new(42);
        let timeout = Duration::from_secs(60);
        let outcome = cluster
            .links
            .request(peer, &Message::KeyCount, timeout)
            .await;
        assert!(matches!(outcome, Err(RequestError::NoLink(p)) if p == peer));
        assert_eq!(cluster.ask(peer, &Bytes::from_static(b"k")).await, None);
    }

    #[tokio::test]
    async fn asking_every_member_of_a_one_node_cluster_answers_locally() {
        let (cluster, _dir) = open_cluster(&[]);
        let (answers, missing) = cluster
            .ask_every(&Message::KeyCount, || Response::Count(7))
            .await;
        assert_eq!(missing, 0);
        assert!(matches!(answers.as_slice(), [(n, Response::Count(7))] if *n == cluster.local));
    }
}
