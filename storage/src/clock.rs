//! The wall clock, for the few calls that carry no `now_ms` (a merge, opening a store, the
//! log store's background thread). Everything else is handed `now_ms` by its caller, so
//! that tests choose the time.

use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock in unix milliseconds (0 if the clock reads before 1970).
pub(crate) fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
