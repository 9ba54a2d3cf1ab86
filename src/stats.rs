//! Counters kept with plain atomics on the request path; `INFO` reads them directly and the
//! metrics publisher copies them into Prometheus once a second.
//!
//! Keeping the source of truth here (and not in the metrics recorder) costs one relaxed
//! atomic add per counter per command and lets `INFO` and `/metrics` agree.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use ringcache_resp::cmd::TABLE;

/// Latency buckets: bucket `i` counts durations in `(2^(i-1), 2^i]` microseconds, the last
/// bucket everything longer.
pub const LATENCY_BUCKETS: usize = 24;

/// The kinds error replies are counted under, in the order `INFO errorstats` and the
/// `ringcache_errors_total{kind}` metric list them: the first word of the error's text, which
/// every error type starts its `Display` with. This list is the one place a kind is named
/// for counting: a new error prefix counts under its own name once it is added here, and
/// under [`ERROR_KIND_OTHER`], the last, until then (the test
/// `every_error_type_counts_under_its_own_kind` names the types that must be listed).
pub const ERROR_KINDS: &[&str] = &[
    "ERR",
    "WRONGTYPE",
    "NOAUTH",
    "WRONGPASS",
    "NOPROTO",
    "OOM",
    "UNAVAILABLE",
    "TIMEOUT",
    "FAILED",
    "CLOCKSKEW",
    "CLUSTERDOWN",
    "IOERR",
    "INVALIDOBJ",
    ERROR_KIND_OTHER,
];

/// The kind of an error whose first word is none of the others in [`ERROR_KINDS`]: a fixed
/// set of kinds keeps the metric's labels bounded whatever a reply says.
pub const ERROR_KIND_OTHER: &str = "OTHER";

/// The index in [`ERROR_KINDS`] of the kind an error text counts under.
pub fn error_kind(text: &str) -> usize {
    let first = text.split(' ').next().unwrap_or("");
    ERROR_KINDS
        .iter()
        .position(|kind| *kind == first)
        .unwrap_or(ERROR_KINDS.len() - 1)
}

/// One command's counters.
#[derive(Debug, Default)]
pub struct CommandStats {
    /// Times called.
    pub calls: AtomicU64,
    /// Calls that ran and answered an error (Redis's `failed_calls`).
    pub failed: AtomicU64,
    /// Requests refused before the command ran (Redis's `rejected_calls`): a wrong argument
    /// count, `NOAUTH`, `OOM`, a command a subscribed RESP2 connection may not send, one
    /// refused while a transaction is queued. Not counted in `calls` nor timed, as in Redis.
    pub rejected: AtomicU64,
    /// Total microseconds spent executing.
    pub usec: AtomicU64,
    /// Latency histogram, see [`LATENCY_BUCKETS`].
    pub latency: [AtomicU64; LATENCY_BUCKETS],
}

impl CommandStats {
    fn record(&self, elapsed: Duration, failed: bool) {
        let micros = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
        self.calls.fetch_add(1, Relaxed);
        self.usec.fetch_add(micros, Relaxed);
        if failed {
            self.failed.fetch_add(1, Relaxed);
        }
        self.latency[latency_bucket(micros)].fetch_add(1, Relaxed);
    }
}

/// The bucket index for a duration in microseconds.
pub fn latency_bucket(micros: u64) -> usize {
    let bucket = (64 - micros.saturating_sub(1).leading_zeros()) as usize;
    bucket.min(LATENCY_BUCKETS - 1)
}

/// The upper bound of a latency bucket, in seconds.
pub fn latency_bucket_upper_s(bucket: usize) -> f64 {
    (1u64 << bucket) as f64 / 1e6
}

/// Server-wide counters.
#[derive(Debug)]
pub struct Stats {
    /// When the server started.
    pub started: Instant,
    /// Connections accepted (including those refused for maxclients).
    pub connections_received: AtomicU64,
    /// Connections refused because maxclients was reached.
    pub connections_rejected: AtomicU64,
    /// Commands executed.
    pub commands_processed: AtomicU64,
    /// Reads that found their key.
    pub keyspace_hits: AtomicU64,
    /// Reads that did not.
    pub keyspace_misses: AtomicU64,
    /// Keys evicted to stay under `maxmemory`.
    pub evicted_keys: AtomicU64,
    /// Connections closed for a protocol error or an oversized request.
    pub protocol_errors: AtomicU64,
    /// Bytes read from clients.
    pub net_input_bytes: AtomicU64,
    /// Bytes written to clients.
    pub net_output_bytes: AtomicU64,
    /// Error replies by kind, indexed like [`ERROR_KINDS`].
    pub errors: [AtomicU64; ERROR_KINDS.len()],
    /// Per-command counters, indexed like [`TABLE`]; the extra last one is for unknown
    /// commands.
    pub commands: Box<[CommandStats]>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            connections_received: AtomicU64::new(0),
            connections_rejected: AtomicU64::new(0),
            commands_processed: AtomicU64::new(0),
            keyspace_hits: AtomicU64::new(0),
            keyspace_misses: AtomicU64::new(0),
            evicted_keys: AtomicU64::new(0),
            protocol_errors: AtomicU64::new(0),
            net_input_bytes: AtomicU64::new(0),
            net_output_bytes: AtomicU64::new(0),
            errors: Default::default(),
            commands: (0..=TABLE.len()).map(|_| CommandStats::default()).collect(),
        }
    }
}

impl Stats {
    /// Records one executed command; `command` indexes [`TABLE`] (or is its length for an
    /// unknown command); `error` is the error text of the reply, if it was an error.
    pub fn record_command(&self, command: usize, elapsed: Duration, error: Option<&str>) {
        self.commands_processed.fetch_add(1, Relaxed);
        self.commands[command.min(TABLE.len())].record(elapsed, error.is_some());
        if let Some(text) = error {
            self.record_error(text);
        }
    }

    /// Records a request refused before its command ran (see [`CommandStats::rejected`]),
    /// answered with `error`: counted as rejected and as an error, not as a call nor in
    /// `total_commands_processed`, as Redis 7.0 does.
    pub fn record_rejected(&self, command: usize, error: &str) {
        self.commands[command.min(TABLE.len())]
            .rejected
            .fetch_add(1, Relaxed);
        self.record_error(error);
    }

    /// Counts one error reply by its kind ([`error_kind`]).
    pub fn record_error(&self, text: &str) {
        self.errors[error_kind(text)].fetch_add(1, Relaxed);
    }

    /// Each kind of [`ERROR_KINDS`] with its count, in that order: what `INFO errorstats`
    /// and the metrics show.
    pub fn error_counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ERROR_KINDS
            .iter()
            .zip(self.errors.iter())
            .map(|(kind, count)| (*kind, count.load(Relaxed)))
    }

    /// Counts a read that found (`hit`) or missed its key.
    pub fn record_lookup(&self, hit: bool) {
        if hit {
            self.keyspace_hits.fetch_add(1, Relaxed);
        } else {
            self.keyspace_misses.fetch_add(1, Relaxed);
        }
    }

    /// `CONFIG RESETSTAT`: zeroes the counters (not the uptime).
    pub fn reset(&self) {
        let counters = [
            &self.connections_received,
            &self.connections_rejected,
            &self.commands_processed,
            &self.keyspace_hits,
            &self.keyspace_misses,
            &self.evicted_keys,
            &self.protocol_errors,
            &self.net_input_bytes,
            &self.net_output_bytes,
        ];
        for counter in counters.into_iter().chain(self.errors.iter()) {
            counter.store(0, Relaxed);
        }
        for command in self.commands.iter() {
            command.calls.store(0, Relaxed);
            command.failed.store(0, Relaxed);
            command.rejected.store(0, Relaxed);
            command.usec.store(0, Relaxed);
            command.latency.iter().for_each(|b| b.store(0, Relaxed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_are_powers_of_two_microseconds() {
        assert_eq!(latency_bucket(0), 0);
        assert_eq!(latency_bucket(1), 0);
        assert_eq!(latency_bucket(2), 1);
        assert_eq!(latency_bucket(3), 2);
        assert_eq!(latency_bucket(1024), 10);
        assert_eq!(latency_bucket(1025), 11);
        assert_eq!(latency_bucket(u64::MAX), LATENCY_BUCKETS - 1);
    }

    #[test]
    fn errors_are_counted_by_their_first_word() {
        let stats = Stats::default();
        stats.record_error("ERR syntax error");
        stats.record_error("NOAUTH Authentication required.");
        stats.record_error("WEIRD thing");
        stats.record_error("OTHER is not a kind of its own");
        let counts: Vec<_> = stats.error_counts().filter(|(_, n)| *n > 0).collect();
        assert_eq!(
            counts,
            [("ERR", 1), ("NOAUTH", 1), (ERROR_KIND_OTHER, 2)].to_vec()
        );
    }

    #[test]
    fn every_error_type_counts_under_its_own_kind() {
        use ringcache_cluster::QuorumError;
        use ringcache_resp::{CommandError, LevelError};
        use ringcache_storage::StoreError;

        let level = "QUORUM";
        let errors: Vec<String> = vec![
            CommandError::Syntax.to_string(),
            CommandError::NotHyperLogLog.to_string(),
            CommandError::CorruptHyperLogLog.to_string(),
            LevelError::AnyForRead.to_string(),
            StoreError::Write("disk full".into()).to_string(),
            StoreError::Poisoned("disk full".into()).to_string(),
            QuorumError::Unavailable {
                level,
                needed: 2,
                alive: 1,
                write: true,
            }
            .to_string(),
            QuorumError::Timeout {
                level,
                needed: 2,
                got: 1,
                timeout_ms: 1000,
                write: true,
            }
            .to_string(),
            QuorumError::Failed {
                level,
                needed: 2,
                got: 1,
                failed: 1,
                write: true,
            }
            .to_string(),
            crate::cluster::ClusterRefusal::SeedsUnreached {
                unresolved: vec!["a:1".into()],
            }
            .to_string(),
            crate::cluster::ClusterRefusal::ClockSkew {
                offset_ms: 900,
                max_ms: 500,
            }
            .to_string(),
            crate::cluster::RingError::NotInCluster.to_string(),
            crate::exec::OOM_ERROR.to_string(),
        ];
        for text in errors {
            assert_ne!(
                ERROR_KINDS[error_kind(&text)],
                ERROR_KIND_OTHER,
                "add the first word of {text:?} to ERROR_KINDS"
            );
        }
    }
}
