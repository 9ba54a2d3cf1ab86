//! The throttle that holds streaming (`--stream-throughput-mb`) and repair
//! (`--repair-throughput-mb`) to their rates.

use std::time::{Duration, Instant};

/// The most idle time the throttle counts as credit.
const THROTTLE_BURST: Duration = Duration::from_millis(250);

/// Holds a transfer to `--stream-throughput-mb` (or repair to `--repair-throughput-mb`):
/// sleeps as long as it is ahead.
#[derive(Debug)]
pub struct Throttle {
    started: Instant,
    bytes: u64,
    bytes_per_s: u64,
}

impl Throttle {
    /// A throttle at `mb_per_s` (0: unthrottled), starting now.
    pub fn new(mb_per_s: u64) -> Throttle {
        Throttle {
            started: Instant::now(),
            bytes: 0,
            bytes_per_s: mb_per_s.saturating_mul(1_000_000),
        }
    }

    /// Counts `bytes` sent or received, and sleeps while ahead of the rate.
    pub async fn consumed(&mut self, bytes: u64) {
        if self.bytes_per_s == 0 {
            return;
        }
        // Time spent idle (a source retried, links not up yet) is credit for at most
        // THROTTLE_BURST: it must not turn into an unthrottled burst.
        let due_before = Duration::from_secs_f64(self.bytes as f64 / self.bytes_per_s as f64);
        if self.started.elapsed() > due_before + THROTTLE_BURST
            && let Some(start) = Instant::now().checked_sub(due_before + THROTTLE_BURST)
        {
            self.started = start;
        }
        self.bytes += bytes;
        let due = Duration::from_secs_f64(self.bytes as f64 / self.bytes_per_s as f64);
        if let Some(ahead) = due.checked_sub(self.started.elapsed()) {
            tokio::time::sleep(ahead).await;
        }
    }
}
