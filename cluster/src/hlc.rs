//! The hybrid logical clock that issues record versions.
//!
//! A reading is 48 bits of unix milliseconds and 16 bits of logical counter. The clock never
//! goes backwards and never issues the same reading twice, even when the wall clock steps
//! back: it then keeps the last milliseconds and counts up the logical part. Observing a
//! version from elsewhere moves the clock past it, so a version this node issues later is
//! newer than everything it has seen.

use std::sync::atomic::{AtomicU64, Ordering};

use ringcache_storage::Version;

/// Issues versions for one node. Lock-free; `wall_ms` is passed in by the caller.
#[derive(Debug)]
pub struct HybridClock {
    node: u32,
    last: AtomicU64,
}

impl HybridClock {
    /// A clock for the node whose tie-break id is `node`.
    pub fn new(node: u32) -> HybridClock {
        HybridClock {
            node,
            last: AtomicU64::new(0),
        }
    }

    /// A new version, newer than every version this clock has issued or observed.
    ///
    /// # Panics
    /// When the logical counter would overflow into the milliseconds (65,536 versions within
    /// one millisecond of a stalled wall clock, sustained for so long that the readings run
    /// 2^48 ms ahead): that would break the order of versions, which loses data.
    pub fn next(&self, wall_ms: u64) -> Version {
        let physical = wall_ms << Version::LOGICAL_BITS;
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = physical.max(last + 1);
            assert!(next > last, "hybrid clock overflowed");
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => {
                    return Version {
                        hlc: next,
                        node: self.node,
                    };
                }
                Err(current) => last = current,
            }
        }
    }

    /// The newest reading issued or observed so far (0 before any), as an `hlc` value: what
    /// a node keeps on disk so that after a restart it never issues an older reading.
    pub fn high_water(&self) -> u64 {
        self.last.load(Ordering::Acquire)
    }

    /// Moves the clock past a version seen from elsewhere. Reads observe every record they
    /// return, and almost all are older than the clock: a plain load first keeps them from
    /// writing the clock's cache line on every core.
    pub fn observe(&self, seen: Version) {
        if seen.hlc > self.last.load(Ordering::Acquire) {
            self.last.fetch_max(seen.hlc, Ordering::AcqRel);
        }
    }

    /// The node id used as the tie-break.
    pub fn node(&self) -> u32 {
        self.node
    }
}

/// A replica's check of a version a coordinator sent: how far ahead of the replica's wall
/// clock `now_ms` it is, when that is more than `max_offset_ms` (the write is then refused,
/// so one node's runaway clock cannot make its writes win over every later one). `None`:
/// accept it.
pub fn too_far_ahead(version: Version, now_ms: u64, max_offset_ms: u64) -> Option<u64> {
    let ahead = version.unix_ms().saturating_sub(now_ms);
    (ahead > max_offset_ms).then_some(ahead)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_even_when_the_wall_clock_steps_back() {
        let clock = HybridClock::new(1);
        let a = clock.next(1_000);
        let b = clock.next(900);
        let c = clock.next(900);
        assert!(a < b && b < c);
        assert_eq!(b.unix_ms(), 1_000);
    }

    #[test]
    fn a_reading_follows_the_wall_clock_when_it_moves_ahead() {
        let clock = HybridClock::new(1);
        clock.next(1_000);
        assert_eq!(clock.next(2_000).unix_ms(), 2_000);
    }

    #[test]
    fn observing_a_newer_version_moves_the_clock_past_it() {
        let clock = HybridClock::new(1);
        let seen = Version {
            hlc: 5_000 << Version::LOGICAL_BITS,
            node: 2,
        };
        clock.observe(seen);
        assert!(clock.next(10) > seen);
    }

    #[test]
    fn concurrent_callers_never_get_the_same_version() {
        let clock = std::sync::Arc::new(HybridClock::new(1));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let clock = clock.clone();
                std::thread::spawn(move || (0..10_000).map(|_| clock.next(1)).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<Version> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        let total = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), total);
    }

    #[test]
    fn a_replica_refuses_only_versions_further_ahead_than_the_tolerated_offset() {
        let at = |ms: u64| Version {
            hlc: ms << Version::LOGICAL_BITS,
            node: 1,
        };
        assert_eq!(too_far_ahead(at(10_500), 10_000, 500), None);
        assert_eq!(too_far_ahead(at(10_501), 10_000, 500), Some(501));
        // Versions from the past, however old, are fine: hints and repairs carry them.
        assert_eq!(too_far_ahead(at(1), 10_000, 500), None);
    }
}
