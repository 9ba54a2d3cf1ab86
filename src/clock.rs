//! The wall clock, in the unit every timestamp of the runtime uses. Its own file so that the
//! low modules (links, the replica path) read the time without importing the node.

use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock in unix milliseconds (0 before 1970, which no supported system reports).
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
