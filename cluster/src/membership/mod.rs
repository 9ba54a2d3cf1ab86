//! Gossip membership: SWIM failure detection with suspicion, refutation by incarnation and
//! Lifeguard-style local health, piggybacked dissemination, and a periodic full-state
//! push-pull; as a state machine without I/O, so the simulator and the tokio runtime drive
//! the same code.
//!
//! Every member has a record ([`Member`]) that only it authors (address, status, flush time,
//! each change under a higher incarnation); other nodes only add their verdict on its health
//! (Suspect, Dead) at the incarnation they saw. Records merge by (incarnation, health rank):
//! a higher incarnation wins; at equal incarnation Dead beats Suspect beats Alive. A node that
//! hears itself suspected or declared dead refutes by taking a higher incarnation, so Dead is
//! not final: a restarted or falsely killed node comes back by itself.
//!
//! Inputs: [`Membership::on_datagram`] (a UDP datagram on the peer port),
//! [`Membership::tick`] (time passes; call by [`Membership::next_deadline_ms`]),
//! [`Membership::merge_state`] (a push-pull from a peer, over TCP), and the operator's
//! [`Membership::set_status`], [`Membership::set_flush_hlc`], [`Membership::forget`].
//! Outputs: [`Membership::drain_outputs`] (datagrams to send, push-pulls to start, "the view
//! changed").
//!
//! # The protocol, in one page
//!
//! - **Probe.** Every `probe_interval_ms × (1 + local_health)` the node ends the current probe
//!   and pings the next member of a shuffled round-robin list of Alive and Suspect members
//!   (Dead ones are not probed: a Dead member that restarts announces itself through a
//!   push-pull, and one push-pull in four goes to a Dead member, which heals a partition).
//!   No Ack within `probe_timeout_ms × (1 + local_health)`: `indirect_probes` random members
//!   are asked to ping it (PingReq) and relay its Ack, or answer Nack if it stays silent. No
//!   Ack by the end of the period: the member is Suspect at the incarnation probed.
//! - **Suspicion (Lifeguard).** Every node that learns a suspicion starts its own timer. The
//!   timeout starts at `suspicion_ms × suspicion_max_mult` and falls, logarithmically, to
//!   `suspicion_ms` as `suspicion_confirmations` other nodes confirm it independently (their
//!   own Suspect records name them); both bounds are scaled by `1 + local_health`. When it
//!   expires the member is Dead at the same incarnation. A Ping to a Suspect member carries
//!   its Suspect record first, so it learns of it and refutes quickly.
//! - **Local health (Lifeguard).** +1 per failed probe whose Nacks did not all come back (or
//!   with no one to ask), +1 per missing Nack, +1 per refutation, −1 per directly acked probe,
//!   bounded by `local_health_max`. A slow or overloaded node thus probes and accuses less.
//! - **Dissemination.** One queued update per member (its current record is sent, so a newer
//!   one replaces an older one), sent least-sent first, `retransmit_mult × ceil(log10(n + 1))`
//!   times; on every Ping, Ack, PingReq and Nack, and every `gossip_interval_ms` in Gossip
//!   datagrams to `gossip_fanout` random members while the queue is not empty.
//! - **Push-pull.** Every `push_pull_interval_ms` (jittered ±50 %), and once within
//!   `join_push_pull_ms` of the view first growing beyond this node, [`Output::PushPull`] asks
//!   the runtime to exchange full states with one member over TCP; both sides
//!   [`Membership::merge_state`]. This repairs views that missed an update whose retransmit
//!   budget ran out.
//! - **Restart.** [`Membership::new`] takes the persisted incarnation plus one: anything said
//!   about the previous life loses, and a Dead record at the new incarnation is certainly a
//!   false death ([`Stats::false_deaths`]).
//!
//! The wire formats are in [`wire`].

pub mod wire;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use crate::NodeId;

use wire::{DatagramWriter, Header, HmacSha256, Kind};

/// Members kept in the table (self and Left tombstones included); records about further
/// unknown members are ignored until some leave. Also bounds a push-pull state.
pub const MEMBERS_MAX: usize = 4096;
/// Indirect probes we relay for others at once; further PingReqs are ignored.
pub const FORWARDS_MAX: usize = 256;
/// Independent confirmations remembered per suspicion.
pub const SUSPICION_CONFIRMATIONS_MAX: usize = 16;
/// Upper bound of `Config::indirect_probes` and `Config::gossip_fanout`.
pub const FANOUT_MAX: usize = 16;
/// Outputs waiting for [`Membership::drain_outputs`]; beyond this, datagrams are dropped
/// (gossip tolerates loss) and counted in [`Stats::outputs_dropped`].
pub const OUTPUTS_MAX: usize = 4096;

/// Where a member stands in the ring's life cycle; authored by the member itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Streaming its ranges in; a pending replica of them.
    Joining,
    /// Done streaming while other nodes still join: still a pending replica; every ready
    /// node becomes an owner at once when no node is joining any more, so that no ring
    /// holds one of several joining nodes without the others.
    Ready,
    /// Owns its ranges.
    Normal,
    /// Streaming its ranges out; still owns them.
    Leaving,
    /// Gone for good (decommissioned, or forgotten by `RING FORGET`); kept as a tombstone so
    /// gossip does not bring it back.
    Left,
}

/// What the cluster believes about a member's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Health {
    /// Answers probes.
    Alive,
    /// Missed a probe and its indirect probes; Dead unless it refutes in time.
    Suspect,
    /// Did not refute in time. Still a member (its ranges stay its own) until it comes back
    /// or is forgotten.
    Dead,
}

/// One member as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Stable id (its ring tokens derive from it).
    pub id: NodeId,
    /// Peer address: TCP peer protocol and UDP gossip on the same port.
    pub addr: SocketAddr,
    /// Bumped by the member itself for every change of its record and every refutation.
    pub incarnation: u32,
    /// Life cycle, authored by the member.
    pub status: Status,
    /// Health, as gossiped.
    pub health: Health,
    /// The newest cluster flush time the member has applied (FLUSHALL travels in gossip).
    pub flush_hlc: u64,
}

/// Timing and size settings. [`Config::lan`] gives the defaults, tuned in the 1,200-node
/// simulation (`cluster/tests/gossip_sim.rs`).
#[derive(Debug, Clone)]
pub struct Config {
    /// One probe of one member (round-robin over a shuffled list) per period. Detection time
    /// is about 1.5 periods plus the suspicion timeout plus dissemination; every node sends
    /// one Ping and answers about one per period.
    pub probe_interval_ms: u64,
    /// A direct probe not acknowledged within this asks `indirect_probes` others to try.
    /// Well above the network round trip, well below `probe_interval_ms` (the indirect round
    /// trip must fit in the rest of the period).
    pub probe_timeout_ms: u64,
    /// Members asked to probe indirectly (1 to `FANOUT_MAX`). Each one is an independent
    /// path: with 1% loss, 3 make a false suspicion from loss alone about 1 in 10^6 probes.
    pub indirect_probes: usize,
    /// Base time from Suspect to Dead, reached with `suspicion_confirmations` independent
    /// confirmations; scaled by local health (Lifeguard). Must cover a refutation's round
    /// trip through gossip.
    pub suspicion_ms: u64,
    /// The suspicion timeout with no confirmation is `suspicion_ms × suspicion_max_mult`.
    pub suspicion_max_mult: u64,
    /// Independent confirmations (other nodes suspecting the same member) that bring the
    /// suspicion timeout down to `suspicion_ms`. 0 disables the shrinking.
    pub suspicion_confirmations: u32,
    /// Upper bound of the local-health multiplier.
    pub local_health_max: u32,
    /// An update is piggybacked `retransmit_mult * ceil(log10(n + 1))` times.
    pub retransmit_mult: u32,
    /// While updates are queued, send them to `gossip_fanout` random members this often.
    pub gossip_interval_ms: u64,
    /// Members per gossip round (0 to `FANOUT_MAX`; 0 leaves only piggybacking).
    pub gossip_fanout: usize,
    /// Full-state exchange with one random member this often (jittered).
    pub push_pull_interval_ms: u64,
    /// The first push-pull after this node's view first grows beyond itself (the join)
    /// comes within this delay (jittered).
    pub join_push_pull_ms: u64,
    /// Largest datagram sent, prefix included.
    pub datagram_bytes_max: usize,
    /// Left members are dropped from the table after this long.
    pub left_retention_ms: u64,
}

impl Config {
    /// Defaults for a LAN, tuned in the 1,200-node simulation with 1% loss and a 5× slow
    /// node: detection p99 under 5 s, zero false deaths, a few KB/s per node.
    pub fn lan() -> Config {
        Config {
            probe_interval_ms: 500,
            probe_timeout_ms: 200,
            indirect_probes: 3,
            suspicion_ms: 1_000,
            suspicion_max_mult: 3,
            suspicion_confirmations: 3,
            local_health_max: 8,
            retransmit_mult: 4,
            gossip_interval_ms: 200,
            gossip_fanout: 3,
            push_pull_interval_ms: 30_000,
            join_push_pull_ms: 1_000,
            datagram_bytes_max: 1_400,
            left_retention_ms: 24 * 3_600 * 1_000,
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    ///
    /// A message naming the first field out of range.
    pub fn validate(&self) -> Result<(), String> {
        let fail = |field: &str, why: &str| Err(format!("membership config: {field} {why}"));
        if self.probe_interval_ms == 0 {
            return fail("probe_interval_ms", "must be positive");
        }
        if self.probe_timeout_ms == 0 || self.probe_timeout_ms >= self.probe_interval_ms {
            return fail(
                "probe_timeout_ms",
                "must be positive and below probe_interval_ms",
            );
        }
        if self.indirect_probes == 0 || self.indirect_probes > FANOUT_MAX {
            return fail("indirect_probes", "must be 1 to FANOUT_MAX (16)");
        }
        if self.gossip_fanout > FANOUT_MAX {
            return fail("gossip_fanout", "must be at most FANOUT_MAX (16)");
        }
        if self.gossip_interval_ms == 0 {
            return fail("gossip_interval_ms", "must be positive");
        }
        if self.suspicion_ms == 0 {
            return fail("suspicion_ms", "must be positive");
        }
        if self.suspicion_max_mult == 0 || self.suspicion_max_mult > 100 {
            return fail("suspicion_max_mult", "must be 1 to 100");
        }
        if self.suspicion_confirmations as usize > SUSPICION_CONFIRMATIONS_MAX {
            return fail("suspicion_confirmations", "must be at most 16");
        }
        if self.local_health_max > 64 {
            return fail("local_health_max", "must be at most 64");
        }
        if self.retransmit_mult == 0 {
            return fail("retransmit_mult", "must be positive");
        }
        if self.push_pull_interval_ms == 0 {
            return fail("push_pull_interval_ms", "must be positive");
        }
        if self.datagram_bytes_max < wire::DATAGRAM_BYTES_MIN
            || self.datagram_bytes_max > wire::DATAGRAM_RECEIVE_BYTES_MAX
        {
            return fail("datagram_bytes_max", "must be 136 to 65507");
        }
        Ok(())
    }
}

/// Counters for INFO and metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Direct probes sent.
    pub probes: u64,
    /// Indirect probe requests sent.
    pub indirect_probes: u64,
    /// Members this node marked Suspect.
    pub suspicions: u64,
    /// Times this node refuted a suspicion or death of itself.
    pub refutations: u64,
    /// Times this node heard itself declared Dead at its current incarnation while running,
    /// and refuted it: certain false deaths.
    pub false_deaths: u64,
    /// Members this node marked Dead.
    pub deaths: u64,
    /// Gossip bytes received (datagrams, prefix included).
    pub bytes_in: u64,
    /// Gossip bytes sent.
    pub bytes_out: u64,
    /// Datagrams dropped: bad prefix, bad MAC, other cluster, undecodable.
    pub datagrams_rejected: u64,
    /// Push-pull exchanges merged.
    pub push_pulls: u64,
    /// Records about unknown members ignored because the table held `MEMBERS_MAX`.
    pub members_refused: u64,
    /// Datagrams not emitted because `OUTPUTS_MAX` outputs were waiting.
    pub outputs_dropped: u64,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this datagram.
    Datagram {
        /// Destination.
        to: SocketAddr,
        /// The bytes, prefix and MAC included.
        bytes: Vec<u8>,
    },
    /// Exchange full state with this member over TCP: send [`Membership::encode_state`],
    /// feed its answer to [`Membership::merge_state`].
    PushPull {
        /// The member.
        to: NodeId,
        /// Its address.
        addr: SocketAddr,
    },
    /// A member appeared, or its address, status, health or flush time changed: rebuild
    /// what depends on the view (the ring, links).
    ViewChanged,
}

/// A datagram or a state that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GossipError {
    /// Wrong magic, version or cluster, or a MAC that does not verify.
    #[error("datagram refused: {0}")]
    Refused(&'static str),
    /// Bytes that do not decode.
    #[error("malformed gossip: {0}")]
    Malformed(&'static str),
}

/// Why `RING FORGET` refused; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForgetError {
    /// The id is this node.
    #[error("{0} is this node; a node cannot forget itself")]
    IsSelf(NodeId),
    /// No such member.
    #[error("{0} is not a member")]
    Unknown(NodeId),
    /// The member is Alive or Suspect.
    #[error("{0} is alive; only a dead member can be forgotten")]
    Alive(NodeId),
}

/// SplitMix64: the member shuffle, target choices and jitter.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; `n` > 0.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
}

/// A suspicion this node is timing.
#[derive(Debug, Clone)]
struct Suspicion {
    started_ms: u64,
    /// The first suspecter, then independent confirmers (bounded).
    by: Vec<NodeId>,
}

/// A member and what this node tracks about it.
#[derive(Debug, Clone)]
struct Entry {
    member: Member,
    suspicion: Option<Suspicion>,
    /// The suspecter named when gossiping a Suspect record (the latest news).
    suspect_by: Option<NodeId>,
    /// When this node saw it become Left (for `left_retention_ms`).
    left_at_ms: Option<u64>,
}

/// The probe in flight.
#[derive(Debug, Clone)]
struct Probe {
    target: NodeId,
    seq: u32,
    indirect_at_ms: u64,
    indirect_sent: bool,
    /// When the indirect probes went out: they get the rest of a period from then, even
    /// when this node's timers fire late (a slow node must not accuse for its lateness).
    indirect_sent_at_ms: u64,
    acked: Option<Acked>,
    nacks_expected: u32,
    nacks: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acked {
    Direct,
    Indirect,
}

/// An indirect probe this node relays for another.
#[derive(Debug, Clone)]
struct Forward {
    seq: u32,
    target: NodeId,
    requester_addr: SocketAddr,
    requester_seq: u32,
    nack_at_ms: u64,
}

/// The dissemination queue: at most one entry per member, ordered least-sent first, then
/// newest first. The record sent is the member's current one, so news replaces news.
#[derive(Debug, Default)]
struct Broadcasts {
    by_member: BTreeMap<NodeId, (u32, u64)>,
    order: BTreeSet<(u32, std::cmp::Reverse<u64>, NodeId)>,
    next_order: u64,
}

impl Broadcasts {
    fn queue(&mut self, id: NodeId) {
        self.remove(id);
        self.next_order += 1;
        self.by_member.insert(id, (0, self.next_order));
        self.order
            .insert((0, std::cmp::Reverse(self.next_order), id));
    }

    fn remove(&mut self, id: NodeId) {
        if let Some((sent, order)) = self.by_member.remove(&id) {
            self.order.remove(&(sent, std::cmp::Reverse(order), id));
        }
    }

    fn sent(&mut self, id: NodeId, limit: u32) {
        if let Some((sent, order)) = self.by_member.remove(&id) {
            self.order.remove(&(sent, std::cmp::Reverse(order), id));
            if sent + 1 < limit {
                self.by_member.insert(id, (sent + 1, order));
                self.order.insert((sent + 1, std::cmp::Reverse(order), id));
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.by_member.is_empty()
    }
}

/// One node's membership state machine.
pub struct Membership {
    config: Config,
    local_id: NodeId,
    cluster_hash: u64,
    mac: HmacSha256,
    rng: Rng,
    /// Every member, self included, by id.
    members: BTreeMap<NodeId, Entry>,
    /// Members with a running suspicion timer.
    suspects: BTreeSet<NodeId>,
    /// Alive and Suspect members other than self, for random choices; rebuilt when stale.
    alive: Vec<NodeId>,
    alive_stale: bool,
    /// Another node forgot this one (`RING FORGET`) while it ran or was down: it must join
    /// again, streaming, not take its old ranges back with stale data.
    forgotten: bool,
    /// The probe round: a shuffled list and the position in it.
    probe_list: Vec<NodeId>,
    probe_next: usize,
    probe: Option<Probe>,
    next_probe_ms: Option<u64>,
    next_gossip_ms: u64,
    next_push_pull_ms: Option<u64>,
    join_push_pull_ms: Option<u64>,
    /// The view has grown beyond this node once (the join push-pull was scheduled).
    joined: bool,
    forwards: Vec<Forward>,
    next_seq: u32,
    broadcasts: Broadcasts,
    local_health: u32,
    outputs: Vec<Output>,
    view_changed: bool,
    stats: Stats,
}

impl Membership {
    /// A fresh view holding only `local` (its record as it starts: address, status,
    /// incarnation restored from disk, flush time). `cluster_name` and `secret` key the
    /// datagram prefix (different clusters never merge; strangers cannot inject). `seed`
    /// seeds the member shuffle and jitter.
    ///
    /// The local record starts at `local.incarnation + 1` and Alive: a restart is a new
    /// incarnation, so whatever the cluster said about the previous life (Suspect, Dead)
    /// loses without a refutation. Persist [`Membership::local`]'s incarnation.
    ///
    /// # Panics
    ///
    /// If `config` fails [`Config::validate`]; validate it at start.
    pub fn new(
        local: Member,
        cluster_name: &str,
        secret: &[u8],
        config: Config,
        seed: u64,
    ) -> Membership {
        if let Err(e) = config.validate() {
            panic!("{e}");
        }
        let mut local = local;
        local.incarnation = local.incarnation.saturating_add(1);
        local.health = Health::Alive;
        let local_id = local.id;
        let mut members = BTreeMap::new();
        members.insert(
            local_id,
            Entry {
                member: local,
                suspicion: None,
                suspect_by: None,
                left_at_ms: None,
            },
        );
        let mut broadcasts = Broadcasts::default();
        // The first probes carry our own record.
        broadcasts.queue(local_id);
        Membership {
            config,
            local_id,
            cluster_hash: twox_hash::XxHash3_64::oneshot(cluster_name.as_bytes()),
            mac: wire::keyed_mac(secret),
            rng: Rng(seed ^ local_id.get().rotate_left(17)),
            members,
            suspects: BTreeSet::new(),
            alive: Vec::new(),
            alive_stale: true,
            forgotten: false,
            probe_list: Vec::new(),
            probe_next: 0,
            probe: None,
            next_probe_ms: None,
            next_gossip_ms: 0,
            next_push_pull_ms: None,
            join_push_pull_ms: None,
            joined: false,
            forwards: Vec::new(),
            next_seq: 0,
            broadcasts,
            local_health: 0,
            outputs: Vec::new(),
            view_changed: false,
            stats: Stats::default(),
        }
    }

    /// This node's own record.
    pub fn local(&self) -> &Member {
        &self.members[&self.local_id].member
    }

    /// One member's record, self included.
    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.get(&id).map(|e| &e.member)
    }

    /// Every member sorted by id, self and Left tombstones included.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values().map(|e| &e.member)
    }

    /// Members Alive or Suspect and not Left, self included.
    pub fn len_alive(&self) -> usize {
        self.members
            .values()
            .filter(|e| e.member.health != Health::Dead && e.member.status != Status::Left)
            .count()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The Lifeguard local-health multiplier: 0 is healthy; intervals and timeouts are
    /// scaled by `1 + local_health`.
    pub fn local_health(&self) -> u32 {
        self.local_health
    }

    /// Handles one datagram from the gossip port.
    ///
    /// # Errors
    ///
    /// [`GossipError`] if it is refused (another cluster, version, bad MAC) or malformed;
    /// it is counted in [`Stats::datagrams_rejected`] and nothing changed.
    pub fn on_datagram(&mut self, bytes: &[u8], now_ms: u64) -> Result<(), GossipError> {
        self.stats.bytes_in += bytes.len() as u64;
        let (header, updates) = match wire::decode_datagram(bytes, self.cluster_hash, &self.mac) {
            Ok(decoded) => decoded,
            Err(e) => {
                self.stats.datagrams_rejected += 1;
                return Err(e);
            }
        };
        if header.from == self.local_id {
            // Our own datagram reflected back, or another node with our id: ignore it.
            self.stats.datagrams_rejected += 1;
            return Err(GossipError::Refused("sent with this node's own id"));
        }
        for update in updates {
            self.apply(update.member, update.by, now_ms);
        }
        match header.kind {
            Kind::Ping { target } => {
                if target == self.local_id {
                    self.send(header.from_addr, Kind::Ack, header.seq, None);
                }
            }
            Kind::Ack => self.on_ack(&header),
            Kind::Nack => {
                if let Some(probe) = &mut self.probe
                    && probe.seq == header.seq
                {
                    probe.nacks += 1;
                }
            }
            Kind::PingReq {
                target,
                target_addr,
            } => {
                if target != self.local_id && self.forwards.len() < FORWARDS_MAX {
                    let seq = self.seq();
                    self.forwards.push(Forward {
                        seq,
                        target,
                        requester_addr: header.from_addr,
                        requester_seq: header.seq,
                        nack_at_ms: now_ms + self.probe_timeout_ms(),
                    });
                    let suspect = self.is_suspect(target).then_some(target);
                    self.send(target_addr, Kind::Ping { target }, seq, suspect);
                }
            }
            Kind::Gossip => {}
        }
        Ok(())
    }

    fn on_ack(&mut self, header: &Header) {
        if let Some(probe) = &mut self.probe
            && probe.seq == header.seq
        {
            if header.from == probe.target {
                probe.acked.get_or_insert(Acked::Direct);
            } else {
                probe.acked.get_or_insert(Acked::Indirect);
            }
            return;
        }
        if let Some(i) = self
            .forwards
            .iter()
            .position(|f| f.seq == header.seq && f.target == header.from)
        {
            let forward = self.forwards.swap_remove(i);
            self.send(
                forward.requester_addr,
                Kind::Ack,
                forward.requester_seq,
                None,
            );
        }
    }

    /// Lets time pass: ends and starts probes, sends indirect probes and Nacks, expires
    /// suspicions, gossips, schedules push-pulls. Call it at [`Membership::next_deadline_ms`]
    /// at the latest; calling it early or late is harmless.
    pub fn tick(&mut self, now_ms: u64) {
        // Relayed probes whose target stayed silent: Nack.
        let mut i = 0;
        while i < self.forwards.len() {
            if self.forwards[i].nack_at_ms <= now_ms {
                let f = self.forwards.swap_remove(i);
                self.send(f.requester_addr, Kind::Nack, f.requester_seq, None);
            } else {
                i += 1;
            }
        }
        // The direct probe timed out: ask others.
        if let Some(probe) = &self.probe
            && probe.acked.is_none()
            && !probe.indirect_sent
            && probe.indirect_at_ms <= now_ms
        {
            self.send_indirect_probes(now_ms);
        }
        match self.next_probe_ms {
            None => {
                let interval = self.probe_interval_ms();
                self.next_probe_ms = Some(now_ms + self.rng.below(interval));
                self.next_gossip_ms = now_ms;
            }
            Some(at) if at <= now_ms => {
                // Late (a slow node): the indirect probes just sent get their time first.
                if let Some(probe) = &self.probe
                    && probe.acked.is_none()
                    && probe.indirect_sent
                {
                    let window = self.probe_interval_ms() - self.probe_timeout_ms();
                    let due = probe.indirect_sent_at_ms + window;
                    if due > now_ms {
                        self.next_probe_ms = Some(due);
                        return self.tick_rest(now_ms);
                    }
                }
                self.end_probe(now_ms);
                self.start_probe(now_ms);
                self.next_probe_ms = Some(now_ms + self.probe_interval_ms());
            }
            Some(_) => {}
        }
        self.tick_rest(now_ms);
    }

    /// The part of a tick after probing.
    fn tick_rest(&mut self, now_ms: u64) {
        self.expire_suspicions(now_ms);
        if self.next_gossip_ms <= now_ms {
            self.gossip();
            self.next_gossip_ms = now_ms + self.config.gossip_interval_ms;
        }
        if !self.joined && self.others_known() {
            self.joined = true;
            let delay = self.rng.below(self.config.join_push_pull_ms.max(1));
            self.join_push_pull_ms = Some(now_ms + delay);
        }
        if let Some(at) = self.join_push_pull_ms
            && at <= now_ms
        {
            self.join_push_pull_ms = None;
            self.push_pull();
        }
        match self.next_push_pull_ms {
            None => self.next_push_pull_ms = Some(now_ms + self.push_pull_jitter()),
            Some(at) if at <= now_ms => {
                self.push_pull();
                self.next_push_pull_ms = Some(now_ms + self.push_pull_jitter());
            }
            Some(_) => {}
        }
    }

    /// The latest time [`Membership::tick`] must be called; it may already be past (call
    /// it now).
    pub fn next_deadline_ms(&self) -> u64 {
        let Some(mut at) = self.next_probe_ms else {
            // Not ticked yet.
            return 0;
        };
        if let Some(probe) = &self.probe
            && probe.acked.is_none()
            && !probe.indirect_sent
        {
            at = at.min(probe.indirect_at_ms);
        }
        if !self.broadcasts.is_empty() {
            at = at.min(self.next_gossip_ms);
        }
        if let Some(pp) = self.next_push_pull_ms {
            at = at.min(pp);
        }
        if let Some(join) = self.join_push_pull_ms {
            at = at.min(join);
        }
        if !self.joined && self.others_known() {
            return 0;
        }
        for f in &self.forwards {
            at = at.min(f.nack_at_ms);
        }
        for id in &self.suspects {
            if let Some(s) = self.members.get(id).and_then(|e| e.suspicion.as_ref()) {
                at = at.min(s.started_ms + self.suspicion_timeout_ms(s.by.len()));
            }
        }
        at
    }

    /// The full view for a push-pull (bounded by [`MEMBERS_MAX`]).
    pub fn encode_state(&self) -> Vec<u8> {
        wire::encode_state(self.members.values().map(|e| {
            let first = e.suspicion.as_ref().and_then(|s| s.by.first().copied());
            (&e.member, e.suspect_by.or(first))
        }))
    }

    /// Decodes a peer's [`Membership::encode_state`].
    ///
    /// # Errors
    ///
    /// [`GossipError::Malformed`] if the bytes do not decode or hold more than
    /// [`MEMBERS_MAX`] members.
    pub fn decode_state(bytes: &[u8]) -> Result<Vec<Member>, GossipError> {
        Ok(wire::decode_state(bytes)?
            .into_iter()
            .map(|u| u.member)
            .collect())
    }

    /// Merges a peer's full view (a push-pull answer or request, the members persisted on
    /// disk, a seed's state at bootstrap) record by record; news is disseminated.
    pub fn merge_state(&mut self, members: Vec<Member>, now_ms: u64) {
        self.stats.push_pulls += 1;
        for member in members.into_iter().take(MEMBERS_MAX) {
            // Who suspected is not in the state: no confirmation is counted from it.
            self.apply(member, None, now_ms);
        }
    }

    /// Changes this node's own status (a new incarnation, disseminated).
    pub fn set_status(&mut self, status: Status, now_ms: u64) {
        let _ = now_ms;
        let entry = self.local_entry_mut();
        if entry.member.status == status {
            return;
        }
        entry.member.status = status;
        entry.member.incarnation = entry.member.incarnation.saturating_add(1);
        self.broadcasts.queue(self.local_id);
        self.view_changed = true;
    }

    /// Raises this node's flush time (a new incarnation, disseminated); a lower or equal
    /// one is ignored.
    pub fn set_flush_hlc(&mut self, hlc: u64, now_ms: u64) {
        let _ = now_ms;
        let entry = self.local_entry_mut();
        if hlc <= entry.member.flush_hlc {
            return;
        }
        entry.member.flush_hlc = hlc;
        entry.member.incarnation = entry.member.incarnation.saturating_add(1);
        self.broadcasts.queue(self.local_id);
        self.view_changed = true;
    }

    /// `RING FORGET`: a Dead member becomes Left at its incarnation + 1, disseminated, so
    /// every node drops it from the ring. Forgetting a Left member again does nothing.
    ///
    /// # Errors
    ///
    /// [`ForgetError`] for this node itself, an unknown member, or one that is Alive or
    /// Suspect; nothing changed.
    pub fn forget(&mut self, id: NodeId, now_ms: u64) -> Result<(), ForgetError> {
        if id == self.local_id {
            return Err(ForgetError::IsSelf(id));
        }
        let Some(entry) = self.members.get_mut(&id) else {
            return Err(ForgetError::Unknown(id));
        };
        if entry.member.status == Status::Left {
            return Ok(());
        }
        if entry.member.health != Health::Dead {
            return Err(ForgetError::Alive(id));
        }
        entry.member.status = Status::Left;
        entry.member.incarnation = entry.member.incarnation.saturating_add(1);
        entry.left_at_ms = Some(now_ms);
        self.broadcasts.queue(id);
        self.view_changed = true;
        self.alive_stale = true;
        Ok(())
    }

    /// Takes what the driver must do; [`Output::ViewChanged`] comes at most once, last.
    pub fn drain_outputs(&mut self) -> Vec<Output> {
        let mut out = std::mem::take(&mut self.outputs);
        if std::mem::take(&mut self.view_changed) {
            out.push(Output::ViewChanged);
        }
        out
    }

    // ---- merging ----

    /// Applies one record by the merge rule; `by` names the suspecter of a Suspect record.
    fn apply(&mut self, rec: Member, by: Option<NodeId>, now_ms: u64) {
        if rec.id == self.local_id {
            self.consider_self(&rec);
            return;
        }
        let Some(entry) = self.members.get_mut(&rec.id) else {
            if self.members.len() >= MEMBERS_MAX {
                self.stats.members_refused += 1;
                return;
            }
            let suspicion = (rec.health == Health::Suspect).then(|| Suspicion {
                started_ms: now_ms,
                by: by.into_iter().collect(),
            });
            if suspicion.is_some() {
                self.suspects.insert(rec.id);
            }
            let id = rec.id;
            let left_at_ms = (rec.status == Status::Left).then_some(now_ms);
            self.members.insert(
                id,
                Entry {
                    member: rec,
                    suspicion,
                    suspect_by: by,
                    left_at_ms,
                },
            );
            self.member_added(id, now_ms);
            self.broadcasts.queue(id);
            self.view_changed = true;
            self.alive_stale = true;
            return;
        };
        let known = &entry.member;
        if known.status == Status::Left && rec.incarnation <= known.incarnation {
            return;
        }
        let wins = rec.incarnation > known.incarnation
            || (rec.incarnation == known.incarnation && rank(&rec) > rank(known));
        if !wins {
            // Same suspicion heard from another suspecter: an independent confirmation.
            if rec.incarnation == known.incarnation
                && rec.health == Health::Suspect
                && known.health == Health::Suspect
                && let (Some(by), Some(s)) = (by, entry.suspicion.as_mut())
                && !s.by.contains(&by)
                && s.by.len() < SUSPICION_CONFIRMATIONS_MAX
            {
                s.by.push(by);
                entry.suspect_by = Some(by);
                self.broadcasts.queue(rec.id);
            }
            return;
        }
        let visible = known.addr != rec.addr
            || known.status != rec.status
            || known.health != rec.health
            || known.flush_hlc != rec.flush_hlc;
        let was_left = known.status == Status::Left;
        if rec.health == Health::Suspect {
            let restart = known.health != Health::Suspect || known.incarnation != rec.incarnation;
            if restart || entry.suspicion.is_none() {
                entry.suspicion = Some(Suspicion {
                    started_ms: now_ms,
                    by: by.into_iter().collect(),
                });
            }
            entry.suspect_by = by;
            self.suspects.insert(rec.id);
        } else {
            entry.suspicion = None;
            entry.suspect_by = None;
            self.suspects.remove(&rec.id);
        }
        if rec.status == Status::Left && !was_left {
            entry.left_at_ms = Some(now_ms);
        } else if rec.status != Status::Left {
            entry.left_at_ms = None;
        }
        let id = rec.id;
        let came_back = entry.member.health == Health::Dead && rec.health != Health::Dead;
        entry.member = rec;
        if came_back {
            self.member_added(id, now_ms);
        }
        self.broadcasts.queue(id);
        if visible {
            self.view_changed = true;
            self.alive_stale = true;
        }
    }

    /// A record about this node authored by someone else: refute it if it could win.
    fn consider_self(&mut self, rec: &Member) {
        let own = &self.members[&self.local_id].member;
        let differs = rec.health != Health::Alive
            || rec.status != own.status
            || rec.addr != own.addr
            || rec.flush_hlc != own.flush_hlc;
        if rec.incarnation < own.incarnation || (rec.incarnation == own.incarnation && !differs) {
            return;
        }
        if rec.status == Status::Left && own.status != Status::Left {
            self.forgotten = true;
        }
        if rec.health != Health::Alive {
            self.stats.refutations += 1;
            self.local_health = (self.local_health + 1).min(self.config.local_health_max);
            if rec.health == Health::Dead {
                self.stats.false_deaths += 1;
            }
        }
        let entry = self.local_entry_mut();
        entry.member.incarnation = rec.incarnation.saturating_add(1);
        self.broadcasts.queue(self.local_id);
    }

    /// Whether another node forgot this one since the last call (see `forgotten`): the
    /// caller turns it Joining so that it streams its ranges again.
    pub fn take_forgotten(&mut self) -> bool {
        std::mem::take(&mut self.forgotten)
    }

    /// A member appeared or came back: it joins the current probe round at a random place.
    fn member_added(&mut self, id: NodeId, now_ms: u64) {
        let _ = now_ms;
        if self.probe_next <= self.probe_list.len() {
            let span = self.probe_list.len() - self.probe_next;
            let at = self.probe_next + self.rng.index(span + 1);
            self.probe_list.insert(at, id);
        }
    }

    // ---- probing ----

    fn start_probe(&mut self, now_ms: u64) {
        let Some(target) = self.next_probe_target(now_ms) else {
            self.probe = None;
            return;
        };
        let seq = self.seq();
        let addr = self.members[&target].member.addr;
        self.probe = Some(Probe {
            target,
            seq,
            indirect_at_ms: now_ms + self.probe_timeout_ms(),
            indirect_sent: false,
            indirect_sent_at_ms: 0,
            acked: None,
            nacks_expected: 0,
            nacks: 0,
        });
        self.stats.probes += 1;
        // Buddy system: a Suspect member learns of it from the Ping itself.
        let suspect = self.is_suspect(target).then_some(target);
        self.send(addr, Kind::Ping { target }, seq, suspect);
    }

    /// The next Alive or Suspect member of the round; a new shuffled round when done.
    fn next_probe_target(&mut self, now_ms: u64) -> Option<NodeId> {
        for _ in 0..2 {
            while self.probe_next < self.probe_list.len() {
                let id = self.probe_list[self.probe_next];
                self.probe_next += 1;
                if self.probe_eligible(id) {
                    return Some(id);
                }
            }
            self.new_round(now_ms);
        }
        None
    }

    fn probe_eligible(&self, id: NodeId) -> bool {
        id != self.local_id
            && self
                .members
                .get(&id)
                .is_some_and(|e| e.member.health != Health::Dead && e.member.status != Status::Left)
    }

    fn new_round(&mut self, now_ms: u64) {
        // Tombstones past their retention go now, once per round.
        let retention = self.config.left_retention_ms;
        let expired: Vec<NodeId> = self
            .members
            .values()
            .filter(|e| {
                e.left_at_ms
                    .is_some_and(|at| now_ms.saturating_sub(at) >= retention)
            })
            .map(|e| e.member.id)
            .filter(|id| *id != self.local_id)
            .collect();
        for id in expired {
            self.members.remove(&id);
            self.broadcasts.remove(id);
            self.suspects.remove(&id);
            self.view_changed = true;
            self.alive_stale = true;
        }
        let mut list: Vec<NodeId> = self
            .members
            .keys()
            .copied()
            .filter(|id| self.probe_eligible(*id))
            .collect();
        for i in (1..list.len()).rev() {
            let j = self.rng.index(i + 1);
            list.swap(i, j);
        }
        self.probe_list = list;
        self.probe_next = 0;
    }

    fn send_indirect_probes(&mut self, now_ms: u64) {
        let Some(probe) = &self.probe else { return };
        let (target, seq) = (probe.target, probe.seq);
        let Some(target_addr) = self.members.get(&target).map(|e| e.member.addr) else {
            return;
        };
        let helpers = self.random_alive(self.config.indirect_probes, Some(target));
        for &helper in &helpers {
            let addr = self.members[&helper].member.addr;
            self.stats.indirect_probes += 1;
            self.send(
                addr,
                Kind::PingReq {
                    target,
                    target_addr,
                },
                seq,
                None,
            );
        }
        if let Some(probe) = &mut self.probe {
            probe.indirect_sent = true;
            probe.indirect_sent_at_ms = now_ms;
            probe.nacks_expected = helpers.len() as u32;
        }
    }

    /// Judges the probe whose period ends: local health, and a suspicion if unanswered.
    fn end_probe(&mut self, now_ms: u64) {
        let Some(probe) = self.probe.take() else {
            return;
        };
        let missing_nacks = probe.nacks_expected.saturating_sub(probe.nacks);
        let delta: i64 = match probe.acked {
            Some(Acked::Direct) => -1,
            // Helpers that relayed an Ack send no Nack: nothing to learn about ourselves.
            Some(Acked::Indirect) => 0,
            None if probe.nacks_expected > 0 => i64::from(missing_nacks),
            None => 1,
        };
        self.local_health = (i64::from(self.local_health) + delta)
            .clamp(0, i64::from(self.config.local_health_max)) as u32;
        if probe.acked.is_some() {
            return;
        }
        let Some(entry) = self.members.get(&probe.target) else {
            return;
        };
        if entry.member.health == Health::Dead || entry.member.status == Status::Left {
            return;
        }
        let mut rec = entry.member.clone();
        if rec.health == Health::Alive {
            self.stats.suspicions += 1;
        }
        rec.health = Health::Suspect;
        self.apply(rec, Some(self.local_id), now_ms);
    }

    fn expire_suspicions(&mut self, now_ms: u64) {
        let expired: Vec<NodeId> = self
            .suspects
            .iter()
            .copied()
            .filter(|id| {
                self.members
                    .get(id)
                    .and_then(|e| e.suspicion.as_ref())
                    .is_none_or(|s| now_ms >= s.started_ms + self.suspicion_timeout_ms(s.by.len()))
            })
            .collect();
        for id in expired {
            self.suspects.remove(&id);
            let Some(entry) = self.members.get_mut(&id) else {
                continue;
            };
            entry.suspicion = None;
            entry.suspect_by = None;
            if entry.member.health != Health::Suspect {
                continue;
            }
            entry.member.health = Health::Dead;
            self.stats.deaths += 1;
            self.broadcasts.queue(id);
            self.view_changed = true;
            self.alive_stale = true;
        }
    }

    /// Lifeguard's dynamic suspicion timeout with `by` suspecters known (the first plus
    /// confirmations): from `max` down to `min` as log(confirmations + 1) / log(k + 1).
    fn suspicion_timeout_ms(&self, by: usize) -> u64 {
        // log2(i) × 1000 for i in 0..=17, so the result is the same on every platform.
        const LOG2_MILLI: [u64; 18] = [
            0, 0, 1000, 1585, 2000, 2322, 2585, 2807, 3000, 3170, 3322, 3459, 3585, 3700, 3807,
            3907, 4000, 4087,
        ];
        let scale = 1 + u64::from(self.local_health);
        let min = self.config.suspicion_ms * scale;
        let max = min * self.config.suspicion_max_mult;
        let k = self.config.suspicion_confirmations as usize;
        let confirmations = by.saturating_sub(1);
        if k == 0 || confirmations >= k {
            return min;
        }
        let shrink = (max - min) * LOG2_MILLI[confirmations + 1] / LOG2_MILLI[k + 1];
        (max - shrink).max(min)
    }

    fn probe_interval_ms(&self) -> u64 {
        self.config.probe_interval_ms * (1 + u64::from(self.local_health))
    }

    fn probe_timeout_ms(&self) -> u64 {
        self.config.probe_timeout_ms * (1 + u64::from(self.local_health))
    }

    // ---- dissemination and push-pull ----

    fn gossip(&mut self) {
        if self.broadcasts.is_empty() || self.config.gossip_fanout == 0 {
            return;
        }
        let targets = self.random_alive(self.config.gossip_fanout, None);
        for id in targets {
            if self.broadcasts.is_empty() {
                break;
            }
            let addr = self.members[&id].member.addr;
            self.send(addr, Kind::Gossip, 0, None);
        }
    }

    fn push_pull(&mut self) {
        self.refresh_alive();
        let dead: Vec<NodeId> = self
            .members
            .values()
            .filter(|e| e.member.health == Health::Dead && e.member.status != Status::Left)
            .map(|e| e.member.id)
            .collect();
        // One in four goes to a Dead member: if it is alive after all (a healed partition),
        // the exchange tells it it is Dead and it refutes.
        let to = if !dead.is_empty() && (self.alive.is_empty() || self.rng.below(4) == 0) {
            dead[self.rng.index(dead.len())]
        } else if !self.alive.is_empty() {
            self.alive[self.rng.index(self.alive.len())]
        } else {
            return;
        };
        let addr = self.members[&to].member.addr;
        self.push_output(Output::PushPull { to, addr });
    }

    fn push_pull_jitter(&mut self) -> u64 {
        let interval = self.config.push_pull_interval_ms;
        interval / 2 + self.rng.below(interval.max(1))
    }

    /// Up to `n` distinct random Alive or Suspect members, not self, not `except`.
    fn random_alive(&mut self, n: usize, except: Option<NodeId>) -> Vec<NodeId> {
        self.refresh_alive();
        let mut chosen = Vec::with_capacity(n);
        let candidates =
            self.alive.len() - usize::from(except.is_some_and(|x| self.alive.contains(&x)));
        let want = n.min(candidates);
        // Rejection sampling, bounded; small n against a large list almost never retries.
        for _ in 0..want * 8 + 8 {
            if chosen.len() == want {
                break;
            }
            let id = self.alive[self.rng.index(self.alive.len())];
            if Some(id) != except && !chosen.contains(&id) {
                chosen.push(id);
            }
        }
        chosen
    }

    fn refresh_alive(&mut self) {
        if !self.alive_stale {
            return;
        }
        self.alive_stale = false;
        let local = self.local_id;
        self.alive = self
            .members
            .values()
            .filter(|e| {
                e.member.id != local
                    && e.member.health != Health::Dead
                    && e.member.status != Status::Left
            })
            .map(|e| e.member.id)
            .collect();
    }

    fn others_known(&self) -> bool {
        self.members.len() > 1
    }

    fn is_suspect(&self, id: NodeId) -> bool {
        self.members
            .get(&id)
            .is_some_and(|e| e.member.health == Health::Suspect)
    }

    fn seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }

    fn local_entry_mut(&mut self) -> &mut Entry {
        self.members
            .get_mut(&self.local_id)
            .expect("the local member is always in the table")
    }

    /// Builds a datagram with as many queued updates as fit (the record of `first` ahead of
    /// them) and emits it.
    fn send(&mut self, to: SocketAddr, kind: Kind, seq: u32, first: Option<NodeId>) {
        let header = Header {
            kind,
            seq,
            from: self.local_id,
            from_addr: self.members[&self.local_id].member.addr,
        };
        let mut writer =
            DatagramWriter::new(self.cluster_hash, &header, self.config.datagram_bytes_max);
        if let Some(id) = first
            && let Some(e) = self.members.get(&id)
        {
            writer.push(&e.member, e.suspect_by);
        }
        let mut sent = Vec::new();
        for &(_, _, id) in &self.broadcasts.order {
            if writer.room() < wire::RECORD_BYTES_MIN {
                break;
            }
            if Some(id) == first {
                continue;
            }
            if let Some(e) = self.members.get(&id)
                && writer.push(&e.member, e.suspect_by)
            {
                sent.push(id);
            }
        }
        let limit = self.retransmit_limit();
        for id in sent {
            self.broadcasts.sent(id, limit);
        }
        let bytes = writer.finish(&self.mac);
        self.stats.bytes_out += bytes.len() as u64;
        self.push_output(Output::Datagram { to, bytes });
    }

    fn retransmit_limit(&self) -> u32 {
        let n = self.members.len() as u64;
        // ceil(log10(n + 1)), at least 1.
        let (mut log, mut power) = (0u32, 1u64);
        while power < n + 1 {
            power = power.saturating_mul(10);
            log += 1;
        }
        let log = log.max(1);
        self.config.retransmit_mult * log
    }

    fn push_output(&mut self, output: Output) {
        if self.outputs.len() >= OUTPUTS_MAX {
            self.stats.outputs_dropped += 1;
            return;
        }
        self.outputs.push(output);
    }
}

/// The merge rank at equal incarnation: Left over not Left, then Dead > Suspect > Alive.
fn rank(member: &Member) -> (bool, Health) {
    (member.status == Status::Left, member.health)
}
