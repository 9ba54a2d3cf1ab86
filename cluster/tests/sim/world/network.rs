//! The network and the replicas' side of the protocol: delays, loss, duplication, refused
//! connections, partitions, store errors, and hint replay.

use ringcache_storage::Record;

use super::{Event, HINT_REPLAY_INTERVAL_MS, Message, World};
use crate::sim::node::Key;

/// One-way delay of a message between two nodes.
const DELAY_MS_MIN: u64 = 1;
const DELAY_MS_MAX: u64 = 20;
/// Replica operations that fail (a store error), per thousand.
const STORE_ERROR_PER_MILLE: u64 = 5;
/// A refused connection is noticed this fast.
const REFUSED_MS_MAX: u64 = 5;
/// Hints sent to one target per replay.
const HINT_REPLAY_BATCH_MAX: usize = 8;

impl World {
    pub(super) fn send(&mut self, from: usize, to: usize, message: Message) {
        self.stats.messages += 1;
        if from == to {
            // In-process: never lost, never late.
            self.queue
                .push(self.now_ms, Event::Deliver { from, to, message });
            return;
        }
        if self.rng.chance(self.cfg.loss_per_mille) {
            self.stats.lost += 1;
            return;
        }
        if self.rng.chance(self.cfg.duplicate_per_mille) {
            self.stats.duplicated += 1;
            let at_ms = self.now_ms + self.rng.between(DELAY_MS_MIN, DELAY_MS_MAX);
            let copy = message.clone();
            self.queue.push(
                at_ms,
                Event::Deliver {
                    from,
                    to,
                    message: copy,
                },
            );
        }
        let at_ms = self.now_ms + self.rng.between(DELAY_MS_MIN, DELAY_MS_MAX);
        self.queue.push(at_ms, Event::Deliver { from, to, message });
    }

    pub(super) fn deliver(&mut self, from: usize, to: usize, message: Message) {
        if self.partitioned(from, to) {
            self.stats.dropped += 1;
            return;
        }
        if self.nodes[to].crashed {
            self.stats.dropped += 1;
            self.refuse(from, to, &message);
            return;
        }
        match message {
            Message::Read { request, key } => {
                let answer = if self.store_fails() {
                    Message::Failed { request }
                } else {
                    let record = self.nodes[to].store.get(&key).cloned();
                    Message::Record { request, record }
                };
                self.send(to, from, answer);
            }
            Message::Write {
                request,
                key,
                record,
            } => {
                let answer = if self.store_fails() {
                    Message::Failed { request }
                } else {
                    self.nodes[to].apply(key, &record);
                    Message::Ack { request }
                };
                self.send(to, from, answer);
            }
            Message::Hint { key, record } => {
                self.nodes[to].apply(key, &record);
                self.send(to, from, Message::HintAck { key, record });
            }
            Message::HintAck { key, record } => {
                if self.nodes[to].hint_acked(from, key, &record) {
                    self.stats.hints_replayed += 1;
                }
            }
            Message::Record { request, .. }
            | Message::Ack { request }
            | Message::Failed { request } => self.on_answer(to, from, request, message),
            Message::Transfer(transfer) => self.on_transfer(from, to, transfer),
        }
    }

    /// A request reached a crashed node: the sender's connection is refused, which it
    /// notices quickly (a lost answer or a partition only shows as silence).
    fn refuse(&mut self, from: usize, to: usize, message: &Message) {
        let request = match *message {
            Message::Read { request, .. } | Message::Write { request, .. } => request,
            _ => return,
        };
        let at_ms = self.now_ms + self.rng.between(DELAY_MS_MIN, REFUSED_MS_MAX);
        let message = Message::Failed { request };
        self.queue.push(
            at_ms,
            Event::Deliver {
                from: to,
                to: from,
                message,
            },
        );
    }

    fn store_fails(&mut self) -> bool {
        let fails = self.rng.chance(STORE_ERROR_PER_MILLE);
        self.stats.store_errors += u64::from(fails);
        fails
    }

    fn partitioned(&self, a: usize, b: usize) -> bool {
        self.sides
            .as_ref()
            .is_some_and(|sides| sides[a] != sides[b])
    }

    pub(super) fn reachable(&self, observer: usize, target: usize) -> bool {
        observer == target || (!self.nodes[target].crashed && !self.partitioned(observer, target))
    }

    pub(super) fn replay_hints(&mut self, node: usize) {
        self.queue.push(
            self.now_ms + HINT_REPLAY_INTERVAL_MS,
            Event::HintReplay { node },
        );
        if self.nodes[node].crashed {
            return;
        }
        if self.membership.is_some() {
            self.drop_hints_for_departed(node);
        }
        for target in 0..self.nodes.len() {
            if !self.nodes[node].sees_up[target] {
                continue;
            }
            let batch: Vec<(Key, Record)> = self.nodes[node].hints[target]
                .iter()
                .take(HINT_REPLAY_BATCH_MAX)
                .map(|(&key, record)| (key, record.clone()))
                .collect();
            for (key, record) in batch {
                self.send(node, target, Message::Hint { key, record });
            }
        }
    }
}
