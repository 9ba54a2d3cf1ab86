//! A locked shard that keeps its store's total `used_bytes` current, shared by both engines.
//!
//! The server compares `used_bytes` with `maxmemory` before every write, so reading it must
//! not lock thousands of shards: each engine keeps the total in one atomic, and every shard
//! lock goes through [`ShardGuard`], which adds the shard's change to the total on release.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use parking_lot::{Mutex, MutexGuard};

use crate::StoreStats;

/// A shard whose counts include its `used_bytes`.
pub(crate) trait Counted {
    /// The shard's counts.
    fn counts(&self) -> &StoreStats;
}

/// A locked shard; on release its change of `used_bytes` is added to the store's total.
pub(crate) struct ShardGuard<'a, S: Counted> {
    shard: MutexGuard<'a, S>,
    used_bytes_before: usize,
    used_bytes: &'a AtomicUsize,
}

impl<'a, S: Counted> ShardGuard<'a, S> {
    /// Locks `shard` of a store whose total is `used_bytes`.
    pub(crate) fn lock(shard: &'a Mutex<S>, used_bytes: &'a AtomicUsize) -> Self {
        let shard = shard.lock();
        ShardGuard {
            used_bytes_before: shard.counts().used_bytes,
            shard,
            used_bytes,
        }
    }
}

impl<S: Counted> Deref for ShardGuard<'_, S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.shard
    }
}

impl<S: Counted> DerefMut for ShardGuard<'_, S> {
    fn deref_mut(&mut self) -> &mut S {
        &mut self.shard
    }
}

impl<S: Counted> Drop for ShardGuard<'_, S> {
    fn drop(&mut self) {
        let after = self.shard.counts().used_bytes;
        if after != self.used_bytes_before {
            // Modular arithmetic: a decrease is added as its two's complement.
            self.used_bytes
                .fetch_add(after.wrapping_sub(self.used_bytes_before), Relaxed);
        }
    }
}
