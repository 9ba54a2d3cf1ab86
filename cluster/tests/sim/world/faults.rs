//! Faults: node crashes and restarts, partitions and their healing, and the delay with which
//! each liveness view learns of them.

use super::{Event, FAULT_INTERVAL_MS, World};

/// How long a crash and a partition last.
const CRASH_MS: (u64, u64) = (50, 1_500);
const PARTITION_MS: (u64, u64) = (100, 1_500);
/// How late a liveness view learns of a crash, a restart or a partition.
const DETECTION_MS_MAX: u64 = 30;

impl World {
    pub(super) fn fault(&mut self) {
        if !self.faults_on {
            return;
        }
        let next_ms = self.now_ms + self.rng.between(FAULT_INTERVAL_MS.0, FAULT_INTERVAL_MS.1);
        self.queue.push(next_ms, Event::Fault);
        match self.rng.below(3) {
            0 => self.crash_one(),
            1 if self.sides.is_none() => self.partition(),
            _ => {}
        }
    }

    fn crash_one(&mut self) {
        let up: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].crashed)
            .collect();
        // Keep a majority of the members up, so some requests still succeed.
        let members = self.nodes.iter().filter(|n| !n.out).count();
        if up.len() * 2 <= members + 1 {
            return;
        }
        let node = up[self.rng.index(up.len())];
        let down_ms = self.rng.between(CRASH_MS.0, CRASH_MS.1);
        self.crash(node, down_ms);
    }

    /// Crashes `node` for `down_ms`: it loses its rounds (and any streaming under way), never
    /// its store, hints or kept plan.
    pub(super) fn crash(&mut self, node: usize, down_ms: u64) {
        self.stats.crashes += 1;
        self.nodes[node].crashed = true;
        let lost = std::mem::take(&mut self.nodes[node].rounds);
        for flight in lost.values() {
            self.check.on_lost(flight.op);
        }
        self.membership_on_crash(node);
        self.queue
            .push(self.now_ms + down_ms, Event::Restart { node });
        self.views_change();
    }

    pub(super) fn restart(&mut self, node: usize) {
        if !self.nodes[node].crashed || self.nodes[node].out {
            return;
        }
        let restarted = &mut self.nodes[node];
        restarted.crashed = false;
        // It learns who is up again through its connections.
        restarted.sees_up.fill(false);
        restarted.sees_up[node] = true;
        self.views_change();
        self.membership_on_restart(node);
    }

    fn partition(&mut self) {
        let count = self.nodes.len();
        // A random split into two non-empty sides: the bits of a number in 1..2^count - 1.
        let mask = self.rng.between(1, (1 << count) - 2);
        self.sides = Some((0..count).map(|i| mask & (1 << i) != 0).collect());
        self.stats.partitions += 1;
        let heal_ms = self.now_ms + self.rng.between(PARTITION_MS.0, PARTITION_MS.1);
        self.queue.push(heal_ms, Event::Heal);
        self.views_change();
    }

    pub(super) fn heal(&mut self) {
        if self.sides.take().is_some() {
            self.views_change();
        }
    }

    pub(super) fn heal_all(&mut self) {
        self.faults_on = false;
        self.heal();
        for node in 0..self.nodes.len() {
            self.restart(node);
        }
    }

    /// Every view learns the change after its own detection delay.
    pub(super) fn views_change(&mut self) {
        for observer in 0..self.nodes.len() {
            for target in 0..self.nodes.len() {
                let at_ms = self.now_ms + self.rng.between(0, DETECTION_MS_MAX);
                self.queue.push(at_ms, Event::Refresh { observer, target });
            }
        }
    }
}
