//! The event queue: events in virtual time, ties broken by the order they were scheduled, so
//! a run is a pure function of its seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One event due at `at_ms`; `seq` orders events due at the same time.
#[derive(Debug)]
struct Scheduled<E> {
    at_ms: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}

impl<E> Eq for Scheduled<E> {}

impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<E> Ord for Scheduled<E> {
    /// Reversed: `BinaryHeap` is a max-heap and the earliest event must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_ms, other.seq).cmp(&(self.at_ms, self.seq))
    }
}

/// Events by time, then by scheduling order.
#[derive(Debug)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Scheduled<E>>,
    next_seq: u64,
}

impl<E> EventQueue<E> {
    /// An empty queue.
    pub fn new() -> EventQueue<E> {
        EventQueue {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    /// Schedules `event` at `at_ms`.
    pub fn push(&mut self, at_ms: u64, event: E) {
        self.heap.push(Scheduled {
            at_ms,
            seq: self.next_seq,
            event,
        });
        self.next_seq += 1;
    }

    /// The earliest event and its time.
    pub fn pop(&mut self) -> Option<(u64, E)> {
        self.heap.pop().map(|s| (s.at_ms, s.event))
    }

    /// When the earliest event is due.
    pub fn peek_ms(&self) -> Option<u64> {
        self.heap.peek().map(|s| s.at_ms)
    }
}
