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

/// Times one command for its statistics (`INFO commandstats`, the latency histograms).
///
/// Why not `std::time::Instant`: every command takes two readings, and `clock_gettime` was
/// 10% of the server's CPU on `PING -P 16` (perf, one node, `--threads 1`). `quanta` reads
/// the CPU's invariant time-stamp counter where it has one (a few nanoseconds) and falls
/// back to the monotonic clock where it does not.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(quanta::Instant);

impl Stopwatch {
    /// Starts timing now.
    pub fn start() -> Stopwatch {
        Stopwatch(quanta::Instant::now())
    }

    /// The time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> std::time::Duration {
        self.0.elapsed()
    }

    /// When it started, on the standard monotonic clock (for deadlines counted from the
    /// command's start, as a blocking command's timeout is).
    pub fn started_at(&self) -> Instant {
        Instant::now()
            .checked_sub(self.elapsed())
            .unwrap_or_else(Instant::now)
    }
}
