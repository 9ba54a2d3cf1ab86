//! Live counters of a run, and the progress line printed from them once a second.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::client::Plan;

/// How often the progress line is printed.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Counters a caller can watch while a run goes on (the end-to-end test waits on them to kill a
/// server a third of the way through). Clients add to them once per batch.
#[derive(Debug, Default)]
pub struct Progress {
    requests: AtomicU64,
    errors: AtomicU64,
    gets_ok: AtomicU64,
    warmup_requests: AtomicU64,
    measuring: AtomicBool,
}

impl Progress {
    /// Measured requests done so far (answered or lost).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Measured requests that failed so far (error replies and lost requests).
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Measured GETs answered with a value or nil so far.
    pub fn gets_ok(&self) -> u64 {
        self.gets_ok.load(Ordering::Relaxed)
    }

    /// Requests done during the warmup.
    pub fn warmup_requests(&self) -> u64 {
        self.warmup_requests.load(Ordering::Relaxed)
    }

    /// Whether the measured phase has begun (the preload and warmup are over).
    pub fn measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    pub(crate) fn set_measuring(&self) {
        self.measuring.store(true, Ordering::Relaxed);
    }

    pub(crate) fn add_measured(&self, requests: u64, errors: u64, gets_ok: u64) {
        self.requests.fetch_add(requests, Ordering::Relaxed);
        if errors > 0 {
            self.errors.fetch_add(errors, Ordering::Relaxed);
        }
        if gets_ok > 0 {
            self.gets_ok.fetch_add(gets_ok, Ordering::Relaxed);
        }
    }

    pub(crate) fn add_warmup(&self, requests: u64) {
        self.warmup_requests.fetch_add(requests, Ordering::Relaxed);
    }
}

/// Prints `[  3.0s] 123456 req  41152 req/s  p99 1.23 ms  errors 0` on stderr once a second
/// (time from the start of the measured phase; `warmup` before it) until `done` is set. The
/// p99 is of the replies since the previous line.
pub async fn print_progress(plan: Arc<Plan>, warmup_end: Instant, done: Arc<AtomicBool>) {
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    ticker.tick().await;
    // The previous line's time and count, and whether it was of the measured phase.
    let mut last = (Instant::now(), 0u64, false);
    // Bounded by `done`, which the run sets once every client has returned.
    while !done.load(Ordering::Relaxed) {
        ticker.tick().await;
        let now = Instant::now();
        let progress = &plan.progress;
        let measuring = now >= warmup_end;
        let (label, count) = if measuring {
            let elapsed = now.duration_since(warmup_end).as_secs_f64();
            (format!("{elapsed:5.1}s"), progress.requests())
        } else {
            ("warmup".to_string(), progress.warmup_requests())
        };
        // The first measured line counts from the end of the warmup.
        let (since, base) = if measuring == last.2 {
            (last.0, last.1)
        } else {
            (warmup_end, 0)
        };
        let seconds = now.duration_since(since).as_secs_f64().max(1e-3);
        let rate = count.saturating_sub(base) as f64 / seconds;
        last = (now, count, measuring);
        let p99_ms = plan.progress_latency.as_ref().map_or(0.0, |latency| {
            latency.lock().map_or(0.0, |mut l| {
                let p99 = l.quantile_us(0.99) as f64 / 1000.0;
                l.reset();
                p99
            })
        });
        let line = format!(
            "[{label}] {count} req  {rate:.0} req/s  p99 {p99_ms:.2} ms  errors {}\n",
            progress.errors()
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}
