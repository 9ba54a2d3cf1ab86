//! The wall clock, in the unit every timestamp of the runtime uses. Its own file so that the
//! low modules (links, the replica path) read the time without importing the node.

use std::sync::LazyLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The wall clock in unix milliseconds (0 before 1970, which no supported system reports).
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// When this process first asked for [`monotonic_ms`].
static STARTED: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Milliseconds on the monotonic clock (since the first call): for durations that must not
/// jump with the wall clock, such as the ring handover ([`ringcache_cluster::view`]); an NTP
/// step or a resumed VM would otherwise end it at once.
pub fn monotonic_ms() -> u64 {
    STARTED.elapsed().as_millis() as u64
}
