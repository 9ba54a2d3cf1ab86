//! The placement policy: which nodes own which keys as the membership changes, and what a
//! read or a write of one key must reach. The runtime (`src/cluster`) and every simulator
//! call these same functions, so a simulation tests the rules that ship.
//!
//! The rules:
//! - **Owners** are the members Normal or Leaving (a dead one included: a crashed node keeps
//!   its ranges, served by the other replicas and hints, until it is forgotten), and the
//!   members Ready once no member is Joining any more: all of them at once, so no ring holds
//!   one of several joining nodes without the others.
//! - **The future ring** is the ring once the changes under way finish ([`future_owners`]).
//!   A key's replicas there that are not replicas now are *pending*: writes go to them too.
//! - **The handover**: for [`HANDOVER_MS`] after the ring changed, writes also go to the
//!   previous ring's replicas that are still members, because nodes that have not heard of
//!   the change yet still read from them.
//! - Each pending or handover replica adds one required acknowledgement to the level,
//!   whether it is up or not (Cassandra adds pending replicas to the acks it blocks for): of
//!   the level's acks plus one, at most one comes from a replica that drops out, so the write
//!   is on the level's count of the replicas that stay.
//! - A joining node streams only when there is another owner to stream from, no member is
//!   leaving (a leave goes alone), and the future ring includes it; it turns Normal once the
//!   ring holds it.
//!
//! Nothing here reads a clock: `now_ms` is passed in. It only times the handover
//! ([`View::next`], [`View::extra_replicas`], [`View::write_targets`]), so any clock does as
//! long as it is the same one throughout: the runtime passes a monotonic one (a wall-clock
//! step must not end a handover), the simulators their virtual time.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::coordinator::{Need, Target};
use crate::membership::{Health, Member, Status};
use crate::ring::{NodeId, Ring};
use crate::transfer::{Moved, moved_ranges, pending_replicas};

/// How long writes also go to the previous ring's replicas after the ring changed: longer
/// than gossip takes to tell every node (about 3.5 s for 30 nodes on loopback, under 1 s in
/// the 1,200-node simulation).
pub const HANDOVER_MS: u64 = 10_000;

/// The ring before the last change, and until when writes still go to its replicas.
#[derive(Debug, Clone)]
pub struct Handover {
    /// The ring before the change.
    pub ring: Arc<Ring>,
    /// When the handover ends, in the caller's milliseconds.
    pub until_ms: u64,
}

/// The members and the rings over them, as one node's gossip last told them.
#[derive(Debug, Clone)]
pub struct View {
    /// Who owns what now ([`owners`]).
    pub ring: Arc<Ring>,
    /// Who will own what once the joins and leaves under way finish; `None` when none is.
    /// A replica there that is not one in `ring` is pending: writes go to it too.
    pub future: Option<Arc<Ring>>,
    /// The ring before the last change, for [`HANDOVER_MS`] after it.
    pub handover: Option<Handover>,
    /// Every member but those that left, by id.
    pub members: BTreeMap<NodeId, Member>,
}

/// The owners among `members`: Normal or Leaving, and Ready once none is Joining.
pub fn owners<'a>(members: impl IntoIterator<Item = &'a Member>) -> Vec<NodeId> {
    let members: Vec<&Member> = members.into_iter().collect();
    let joining = members.iter().any(|m| m.status == Status::Joining);
    let mut owners: Vec<NodeId> = members
        .iter()
        .filter(|m| match m.status {
            Status::Normal | Status::Leaving => true,
            Status::Ready => !joining,
            Status::Joining | Status::Left => false,
        })
        .map(|m| m.id)
        .collect();
    owners.sort_unstable();
    owners.dedup();
    owners
}

/// The owners once the changes under way finish. A leave goes alone: joins wait for it (and
/// a decommission is refused while a join is under way). Otherwise every joining member
/// joins, whatever its health: each plans against this same future ring that every
/// coordinator writes to, and a joining node that is down stays a pending replica (writes
/// need its extra acknowledgement from the others and keep hints for it) until it is back
/// or forgotten, so it misses nothing.
pub fn future_owners<'a>(
    members: impl IntoIterator<Item = &'a Member>,
    owners: &[NodeId],
) -> Vec<NodeId> {
    let members: Vec<&Member> = members.into_iter().collect();
    let with = |status: Status| members.iter().filter(move |m| m.status == status);
    let leaving: Vec<NodeId> = with(Status::Leaving).map(|m| m.id).collect();
    if !leaving.is_empty() {
        return owners
            .iter()
            .copied()
            .filter(|n| !leaving.contains(n))
            .collect();
    }
    let mut future = owners.to_vec();
    future.extend(with(Status::Joining).map(|m| m.id));
    future.extend(
        with(Status::Ready)
            .map(|m| m.id)
            .filter(|n| !owners.contains(n)),
    );
    future.sort_unstable();
    future.dedup();
    future
}

impl View {
    /// A view of no member: the ring is empty.
    pub fn empty(vnodes: u16) -> View {
        View {
            ring: Arc::new(Ring::new([], vnodes)),
            future: None,
            handover: None,
            members: BTreeMap::new(),
        }
    }

    /// The view after gossip changed the member records to `members` (those that left are
    /// dropped). The rings are rebuilt only when their member sets changed (a ring of 1,200
    /// nodes takes tens of milliseconds to build); a changed ring starts a handover of
    /// `handover_ms` from `now_ms` (none from a first, empty ring, nor when `handover_ms`
    /// is 0).
    pub fn next(
        &self,
        members: impl IntoIterator<Item = Member>,
        vnodes: u16,
        now_ms: u64,
        handover_ms: u64,
    ) -> View {
        let members: BTreeMap<NodeId, Member> = members
            .into_iter()
            .filter(|m| m.status != Status::Left)
            .map(|m| (m.id, m))
            .collect();
        let owners = owners(members.values());
        let future_owners = future_owners(members.values(), &owners);
        let (ring, handover) = if self.ring.members() == owners.as_slice() {
            (self.ring.clone(), self.handover.clone())
        } else {
            let ring = Arc::new(Ring::new(owners.iter().copied(), vnodes));
            let handover = (!self.ring.members().is_empty() && handover_ms > 0).then(|| Handover {
                ring: self.ring.clone(),
                until_ms: now_ms.saturating_add(handover_ms),
            });
            (ring, handover)
        };
        let future = if future_owners == owners {
            None
        } else if let Some(f) = self
            .future
            .as_ref()
            .filter(|f| f.members() == future_owners)
        {
            Some(f.clone())
        } else {
            Some(Arc::new(Ring::new(future_owners, vnodes)))
        };
        View {
            ring,
            future,
            handover,
            members,
        }
    }

    /// A key's extra write replicas: its pending replicas (in the future ring, not in the
    /// ring), then, during a handover, its replicas in the previous ring that are still
    /// members. Each must acknowledge on top of the level, whether up or not.
    pub fn extra_replicas(&self, token: u64, n: usize, now_ms: u64) -> Vec<NodeId> {
        let mut extras = match &self.future {
            Some(future) => pending_replicas(&self.ring, future, token, n),
            None => Vec::new(),
        };
        if let Some(handover) = &self.handover
            && now_ms < handover.until_ms
        {
            for node in pending_replicas(&self.ring, &handover.ring, token, n) {
                if self.members.contains_key(&node) && !extras.contains(&node) {
                    extras.push(node);
                }
            }
        }
        extras
    }

    /// Whether `node` can be asked now: it is `local`, or gossip does not hold it dead and
    /// `link_up` (the caller's liveness and connection) says it is reachable.
    pub fn is_reachable(
        &self,
        node: NodeId,
        local: NodeId,
        link_up: impl Fn(NodeId) -> bool,
    ) -> bool {
        node == local
            || (self
                .members
                .get(&node)
                .is_some_and(|m| m.health != Health::Dead)
                && link_up(node))
    }

    /// A read's replicas of the key at `token` in preference order, each marked reachable or
    /// not ([`View::is_reachable`]); the local replica first among them when it is one,
    /// since it answers without a round trip.
    pub fn read_targets(
        &self,
        token: u64,
        n: usize,
        local: NodeId,
        link_up: impl Fn(NodeId) -> bool,
    ) -> Vec<Target> {
        let mut targets: Vec<Target> = self
            .ring
            .preference_list(token, n)
            .iter()
            .map(|&node| Target {
                node,
                alive: self.is_reachable(node, local, &link_up),
            })
            .collect();
        if let Some(at) = targets.iter().position(|t| t.node == local) {
            let local = targets.remove(at);
            targets.insert(0, local);
        }
        targets
    }

    /// A write's replicas of the key at `token` and its need: the key's replicas in
    /// preference order with the need `need_for` gives for their count, then its extra
    /// replicas ([`View::extra_replicas`]), each adding one required acknowledgement.
    pub fn write_targets(
        &self,
        token: u64,
        n: usize,
        now_ms: u64,
        local: NodeId,
        link_up: impl Fn(NodeId) -> bool,
        need_for: impl FnOnce(usize) -> Need,
    ) -> (Vec<Target>, Need) {
        let target = |node: NodeId| Target {
            node,
            alive: self.is_reachable(node, local, &link_up),
        };
        let mut targets: Vec<Target> = self
            .ring
            .preference_list(token, n)
            .iter()
            .map(|&node| target(node))
            .collect();
        let mut need = need_for(targets.len());
        for node in self.extra_replicas(token, n, now_ms) {
            targets.push(target(node));
            need.required += 1;
        }
        (targets, need)
    }

    /// Whether `local`, joining, may stream its ranges now: there is another owner to stream
    /// from, no member is leaving (a leave goes alone), and the future ring includes it.
    pub fn may_stream(&self, local: NodeId) -> bool {
        self.ring.members().iter().any(|&n| n != local)
            && !self.members.values().any(|m| m.status == Status::Leaving)
            && self
                .future
                .as_ref()
                .is_some_and(|f| f.members().contains(&local))
    }

    /// Whether a node whose own status is `status` (as its membership holds it, which may
    /// be ahead of this view) may be decommissioned now: it is Normal, no join or leave is
    /// under way, and the nodes that stay are enough for `n` replicas.
    ///
    /// # Errors
    /// Why it may not; nothing was changed.
    pub fn may_leave(&self, status: Status, n: usize) -> Result<(), LeaveRefused> {
        if status != Status::Normal {
            return Err(LeaveRefused::NotNormal);
        }
        if self.future.is_some() {
            return Err(LeaveRefused::ChangeUnderWay);
        }
        let remaining = self.ring.members().len().saturating_sub(1);
        if remaining < n {
            return Err(LeaveRefused::TooFewNodes {
                remaining,
                replicas: n,
            });
        }
        Ok(())
    }

    /// The ranges whose replicas change if `local` leaves the ring now, with their old and
    /// new replicas: what a decommission pushes to the gainers.
    pub fn moves_if_leaving(&self, local: NodeId, n: usize, vnodes: u16) -> Vec<Moved> {
        let remaining = self.ring.members().iter().copied().filter(|&m| m != local);
        moved_ranges(&self.ring, &Ring::new(remaining, vnodes), n)
    }

    /// Whether the ring is still, so anti-entropy may run: this node's own status (as its
    /// membership holds it) is Normal, and no member joins, is ready or leaves (ranges are
    /// moving then, and streaming brings them together).
    pub fn is_still(&self, status: Status) -> bool {
        status == Status::Normal
            && self.future.is_none()
            && self
                .members
                .values()
                .all(|m| matches!(m.status, Status::Normal | Status::Left))
    }

    /// Whether `local`, done streaming (Ready), may turn Normal: the ring holds it.
    pub fn may_turn_normal(&self, local: NodeId) -> bool {
        self.ring.members().contains(&local)
    }
}

/// Why a node may not be decommissioned now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaveRefused {
    /// It is joining, leaving or left already.
    #[error("ERR this node is not normal: only a normal node can be decommissioned")]
    NotNormal,
    /// Another node joins or leaves.
    #[error("ERR a join or leave is under way; decommission when it has finished")]
    ChangeUnderWay,
    /// The nodes that would stay cannot hold every replica.
    #[error(
        "ERR decommission would leave {remaining} nodes for {replicas} replicas; add a node first"
    )]
    TooFewNodes {
        /// Owners once it left.
        remaining: usize,
        /// The replication factor.
        replicas: usize,
    },
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;
    use crate::coordinator::{QuorumError, check_writable};

    fn member(id: u64, status: Status) -> Member {
        Member {
            id: NodeId::new(id),
            addr: SocketAddr::from(([127, 0, 0, 1], 16_000 + id as u16)),
            incarnation: 1,
            status,
            health: Health::Alive,
            flush_hlc: 0,
        }
    }

    fn ids(ids: &[u64]) -> Vec<NodeId> {
        ids.iter().map(|&id| NodeId::new(id)).collect()
    }

    fn need(required: usize) -> Need {
        Need {
            level: "QUORUM",
            required,
            hints_count: false,
            blocking_repair: true,
        }
    }

    #[test]
    fn a_ready_member_owns_its_ranges_once_no_member_is_joining() {
        let joining = [
            member(1, Status::Normal),
            member(2, Status::Ready),
            member(3, Status::Joining),
        ];
        assert_eq!(owners(&joining), ids(&[1]));
        assert_eq!(future_owners(&joining, &ids(&[1])), ids(&[1, 2, 3]));
        let done = [member(1, Status::Normal), member(2, Status::Ready)];
        assert_eq!(owners(&done), ids(&[1, 2]));
        assert_eq!(future_owners(&done, &ids(&[1, 2])), ids(&[1, 2]));
    }

    #[test]
    fn a_leave_goes_alone_and_joins_wait_for_it() {
        let members = [
            member(1, Status::Normal),
            member(2, Status::Normal),
            member(3, Status::Leaving),
            member(4, Status::Joining),
        ];
        let owners = owners(&members);
        assert_eq!(owners, ids(&[1, 2, 3]));
        assert_eq!(future_owners(&members, &owners), ids(&[1, 2]));
        let view = View::empty(8).next(members, 8, 0, HANDOVER_MS);
        assert!(!view.may_stream(NodeId::new(4)));
    }

    #[test]
    fn a_ring_change_hands_over_to_the_previous_replicas_until_the_deadline() {
        let first = View::empty(16).next(
            [member(1, Status::Normal), member(2, Status::Normal)],
            16,
            0,
            HANDOVER_MS,
        );
        assert!(first.handover.is_none(), "a first view hands nothing over");
        let members = [1, 2, 3, 4].map(|id| member(id, Status::Normal));
        let second = first.next(members, 16, 1_000, HANDOVER_MS);
        let until = second.handover.as_ref().expect("a handover").until_ms;
        assert_eq!(until, 1_000 + HANDOVER_MS);
        // Some key moved off one of nodes 1 and 2: it is an extra replica until the end.
        let moved = (0..1_000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .find(|&token| !second.extra_replicas(token, 1, 1_000).is_empty())
            .expect("a key that moved");
        assert!(second.extra_replicas(moved, 1, until).is_empty());
        let same = second.next(second.members.values().cloned(), 16, 5_000, HANDOVER_MS);
        assert!(
            Arc::ptr_eq(&same.ring, &second.ring),
            "an unchanged ring is kept"
        );
        assert_eq!(same.handover.as_ref().map(|h| h.until_ms), Some(until));
    }

    #[test]
    fn each_pending_replica_adds_one_required_ack_even_when_down() {
        let view = View::empty(16).next(
            [
                member(1, Status::Normal),
                member(2, Status::Normal),
                member(3, Status::Joining),
            ],
            16,
            0,
            HANDOVER_MS,
        );
        let joiner = NodeId::new(3);
        let token = (0..1_000u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .find(|&t| view.extra_replicas(t, 2, 0) == vec![joiner])
            .expect("a key the joining node gains");
        let local = NodeId::new(1);
        let (targets, need) = view.write_targets(token, 2, 0, local, |n| n != joiner, |_| need(2));
        assert_eq!(need.required, 3);
        assert_eq!(targets.len(), 3);
        assert!(!targets[2].alive);
        assert!(matches!(
            check_writable(&targets, &need),
            Err(QuorumError::Unavailable {
                alive: 2,
                needed: 3,
                ..
            })
        ));
    }

    #[test]
    fn only_a_normal_node_leaves_alone_and_only_when_enough_stay() {
        let view = View::empty(16).next(
            [1, 2, 3, 4].map(|id| member(id, Status::Normal)),
            16,
            0,
            HANDOVER_MS,
        );
        assert_eq!(view.may_leave(Status::Normal, 3), Ok(()));
        assert_eq!(
            view.may_leave(Status::Normal, 4),
            Err(LeaveRefused::TooFewNodes {
                remaining: 3,
                replicas: 4
            })
        );
        let moves = view.moves_if_leaving(NodeId::new(4), 3, 16);
        assert!(!moves.is_empty());
        assert!(moves.iter().all(|m| m.losers() == vec![NodeId::new(4)]));
        let members = view.members.values().cloned().map(|mut m| {
            if m.id == NodeId::new(4) {
                m.status = Status::Leaving;
            }
            m
        });
        let leaving = view.next(members, 16, 1, HANDOVER_MS);
        assert_eq!(
            leaving.may_leave(Status::Leaving, 3),
            Err(LeaveRefused::NotNormal)
        );
        assert_eq!(
            leaving.may_leave(Status::Normal, 3),
            Err(LeaveRefused::ChangeUnderWay)
        );
    }

    #[test]
    fn the_ring_is_still_only_with_every_member_normal() {
        let normal = View::empty(16).next([1, 2].map(|id| member(id, Status::Normal)), 16, 0, 0);
        assert!(normal.is_still(Status::Normal));
        assert!(!normal.is_still(Status::Leaving));
        let ready = normal.next(
            [
                member(1, Status::Normal),
                member(2, Status::Normal),
                member(3, Status::Ready),
            ],
            16,
            0,
            0,
        );
        assert!(
            !ready.is_still(Status::Normal),
            "a ready member still moves ranges"
        );
    }

    #[test]
    fn reads_ask_the_local_replica_first_and_skip_the_dead() {
        let mut members = [1, 2, 3].map(|id| member(id, Status::Normal));
        members[2].health = Health::Dead;
        let view = View::empty(16).next(members, 16, 0, HANDOVER_MS);
        let local = NodeId::new(2);
        let targets = view.read_targets(7, 3, local, |_| true);
        assert_eq!(targets[0].node, local);
        let dead = targets
            .iter()
            .find(|t| t.node == NodeId::new(3))
            .expect("node 3");
        assert!(!dead.alive, "gossip holds it dead whatever the link says");
    }
}
