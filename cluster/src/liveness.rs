//! Which peers are reachable, and how far their clocks are from ours, as seen from the peer
//! connections: a peer is up while its connection is established and it answered a ping
//! recently. Gossip membership (SWIM) will replace this view; the coordinator only asks
//! [`Liveness::is_up`].
//!
//! Clock offsets come from pings: a pong carries the peer's wall clock when it replied and
//! echoes ours when we asked, so `offset = peer_now - (sent + received) / 2`, within half
//! the round trip. The sample with the shortest round trip of the last few is kept, as NTP
//! does, since a long round trip says little about the offset.

use std::collections::HashMap;

use crate::ring::NodeId;

/// Offset samples kept per peer; the one with the shortest round trip is used.
pub const OFFSET_SAMPLES: usize = 8;

/// A clock-offset measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    offset_ms: i64,
    round_trip_ms: u64,
}

/// What is known of one peer.
#[derive(Debug, Clone, Default)]
struct Peer {
    connected: bool,
    last_heard_ms: u64,
    samples: Vec<Sample>,
    next_sample: usize,
}

impl Peer {
    fn offset_ms(&self) -> Option<i64> {
        self.samples
            .iter()
            .min_by_key(|s| s.round_trip_ms)
            .map(|s| s.offset_ms)
    }
}

/// The liveness view of one node over its peers.
#[derive(Debug, Clone)]
pub struct Liveness {
    down_after_ms: u64,
    peers: HashMap<NodeId, Peer>,
}

impl Liveness {
    /// A view where a connected peer is down when not heard from for `down_after_ms`.
    pub fn new(down_after_ms: u64) -> Liveness {
        Liveness {
            down_after_ms,
            peers: HashMap::new(),
        }
    }

    /// The connection to `node` completed its handshake at `now_ms`.
    pub fn connected(&mut self, node: NodeId, now_ms: u64) {
        let peer = self.peers.entry(node).or_default();
        peer.connected = true;
        peer.last_heard_ms = now_ms;
    }

    /// The connection to `node` failed or closed.
    pub fn disconnected(&mut self, node: NodeId) {
        if let Some(peer) = self.peers.get_mut(&node) {
            peer.connected = false;
            peer.samples.clear();
        }
    }

    /// A pong from `node`: `sent_ms` is our clock when we pinged (echoed back), `peer_ms`
    /// the peer's when it answered, `now_ms` ours now.
    pub fn pong(&mut self, node: NodeId, sent_ms: u64, peer_ms: u64, now_ms: u64) {
        let Some(peer) = self.peers.get_mut(&node) else {
            return;
        };
        peer.last_heard_ms = peer.last_heard_ms.max(now_ms);
        if sent_ms > now_ms {
            return; // Not an echo of ours: ignore it for the offset.
        }
        let midpoint = sent_ms + (now_ms - sent_ms) / 2;
        let sample = Sample {
            offset_ms: peer_ms as i64 - midpoint as i64,
            round_trip_ms: now_ms - sent_ms,
        };
        if peer.samples.len() < OFFSET_SAMPLES {
            peer.samples.push(sample);
        } else {
            peer.samples[peer.next_sample] = sample;
        }
        peer.next_sample = (peer.next_sample + 1) % OFFSET_SAMPLES;
    }

    /// Any other message from `node` also shows it alive.
    pub fn heard(&mut self, node: NodeId, now_ms: u64) {
        if let Some(peer) = self.peers.get_mut(&node) {
            peer.last_heard_ms = peer.last_heard_ms.max(now_ms);
        }
    }

    /// Whether `node` is reachable now.
    pub fn is_up(&self, node: NodeId, now_ms: u64) -> bool {
        self.peers.get(&node).is_some_and(|p| {
            p.connected && now_ms.saturating_sub(p.last_heard_ms) <= self.down_after_ms
        })
    }

    /// The measured clock offset of `node` (its clock minus ours), if any.
    pub fn offset_ms(&self, node: NodeId) -> Option<i64> {
        self.peers.get(&node).and_then(Peer::offset_ms)
    }

    /// Our clock's offset from the peers that are up: the median of their offsets, negated
    /// (positive: our clock is ahead). 0 with no measurement.
    pub fn own_offset_ms(&self, now_ms: u64) -> i64 {
        let mut offsets: Vec<i64> = self.up_offsets(now_ms).collect();
        if offsets.is_empty() {
            return 0;
        }
        offsets.sort_unstable();
        -offsets[offsets.len() / 2]
    }

    /// Whether this node's clock is the outlier: more than half of the peers that are up
    /// and measured are further than `max_offset_ms` from it. A single skewed peer makes
    /// every other node see one large offset, but only the skewed node sees a majority.
    /// With one measured peer there is no telling which clock is wrong, so neither node
    /// refuses (replicas still refuse versions too far ahead).
    pub fn is_skewed(&self, max_offset_ms: u64, now_ms: u64) -> bool {
        let (mut far, mut measured) = (0usize, 0usize);
        for offset in self.up_offsets(now_ms) {
            measured += 1;
            if offset.unsigned_abs() > max_offset_ms {
                far += 1;
            }
        }
        measured >= 2 && far * 2 > measured
    }

    fn up_offsets(&self, now_ms: u64) -> impl Iterator<Item = i64> + '_ {
        self.peers
            .iter()
            .filter(move |(node, _)| self.is_up(**node, now_ms))
            .filter_map(|(_, p)| p.offset_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId::new(1);
    const B: NodeId = NodeId::new(2);
    const C: NodeId = NodeId::new(3);

    #[test]
    fn a_peer_is_up_while_connected_and_heard_from() {
        let mut view = Liveness::new(1_000);
        assert!(!view.is_up(A, 0));
        view.connected(A, 100);
        assert!(view.is_up(A, 1_100));
        assert!(!view.is_up(A, 1_101));
        view.pong(A, 1_000, 1_000, 1_050);
        assert!(view.is_up(A, 2_000));
        view.disconnected(A);
        assert!(!view.is_up(A, 2_000));
    }

    #[test]
    fn the_offset_comes_from_the_shortest_round_trip() {
        let mut view = Liveness::new(1_000);
        view.connected(A, 0);
        // Peer 300 ms ahead; a slow round trip gives a worse estimate.
        view.pong(A, 1_000, 1_310, 1_020);
        view.pong(A, 2_000, 2_500, 2_400);
        assert_eq!(view.offset_ms(A), Some(300));
    }

    #[test]
    fn only_the_node_far_from_most_peers_is_skewed() {
        // We are 2 s behind both peers: we are the outlier.
        let mut behind = Liveness::new(10_000);
        for peer in [A, B] {
            behind.connected(peer, 0);
            behind.pong(peer, 100, 2_100, 100);
        }
        assert!(behind.is_skewed(500, 100));
        assert_eq!(behind.own_offset_ms(100), -2_000);
        // One of two peers is 2 s off: not a majority, so we are not skewed.
        let mut fine = Liveness::new(10_000);
        fine.connected(A, 0);
        fine.pong(A, 100, 2_100, 100);
        fine.connected(B, 0);
        fine.pong(B, 100, 110, 100);
        assert!(!fine.is_skewed(500, 100));
        // One peer alone cannot tell which clock is off.
        let mut pair = Liveness::new(10_000);
        pair.connected(A, 0);
        pair.pong(A, 100, 2_100, 100);
        assert!(!pair.is_skewed(500, 100));
        // A down peer's offset does not count.
        fine.connected(C, 0);
        fine.pong(C, 100, 5_000, 100);
        fine.disconnected(C);
        assert!(!fine.is_skewed(500, 100));
    }
}
