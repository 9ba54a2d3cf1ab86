//! The keys whose values expired, as the engines reclaim them, for the server's `expired`
//! keyspace events.
//!
//! An engine reclaims an expired value once: on the first read or write that finds it
//! expired (lazy expiry) or when the sweep reaches it ([`crate::Store::expire_step`]). At
//! that moment, and only then, it notes the key here; the server takes the keys after each
//! command and each sweep step and publishes them. Noting is off until the server turns it
//! on (the events are off by default), so a store nobody listens to pays one atomic load.
//!
//! Bounded: at most [`EXPIRED_KEYS_QUEUED_MAX`] keys wait; past that a key is not queued
//! and counted in [`ExpiredKeys::dropped`] (its event is lost, the expiry itself is not).
//! The lock is taken inside a shard's lock for one push, and by the taker for one swap, so
//! it never holds up the store for longer than that.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use parking_lot::Mutex;

/// Most keys waiting to be taken. The server takes them after every command and every
/// sweep step (ten a second); a sweep step reclaims at most its record count (2,000), so
/// the bound is reached only when the server cannot keep up.
pub const EXPIRED_KEYS_QUEUED_MAX: usize = 16_384;

/// The queue of expired keys not yet taken by the server.
#[derive(Debug, Default)]
pub struct ExpiredKeys {
    noting: AtomicBool,
    queue: Mutex<VecDeque<Bytes>>,
    dropped: AtomicU64,
}

impl ExpiredKeys {
    /// Turns noting on or off; turning it off forgets the keys waiting.
    pub fn set_noting(&self, on: bool) {
        self.noting.store(on, Relaxed);
        if !on {
            self.queue.lock().clear();
        }
    }

    /// Notes `key`, reclaimed because its value expired, when noting is on.
    pub fn note(&self, key: &[u8]) {
        if !self.noting.load(Relaxed) {
            return;
        }
        let mut queue = self.queue.lock();
        if queue.len() >= EXPIRED_KEYS_QUEUED_MAX {
            drop(queue);
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        queue.push_back(Bytes::copy_from_slice(key));
    }

    /// Takes every key waiting, oldest first.
    pub fn take(&self) -> VecDeque<Bytes> {
        if !self.noting.load(Relaxed) {
            return VecDeque::new();
        }
        std::mem::take(&mut *self.queue.lock())
    }

    /// Keys not queued because the queue was full, since the store was created.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_noted_only_while_noting_is_on_and_up_to_the_bound() {
        let keys = ExpiredKeys::default();
        keys.note(b"off");
        keys.set_noting(true);
        assert!(keys.take().is_empty());
        for i in 0..EXPIRED_KEYS_QUEUED_MAX + 3 {
            keys.note(format!("k{i}").as_bytes());
        }
        let taken = keys.take();
        assert_eq!(taken.len(), EXPIRED_KEYS_QUEUED_MAX);
        assert_eq!(taken[0], Bytes::from_static(b"k0"));
        assert_eq!(keys.dropped(), 3);
        assert!(keys.take().is_empty());
    }
}
