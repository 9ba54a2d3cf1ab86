//! Anti-entropy's state, apart from the rounds that change it ([`super::repair`]): each
//! range's last complete round, kept in `data_dir/repair`, and the counters. The peer server
//! records a round announced to it here, and the cluster state holds it, so neither needs
//! the rounds' driver.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use parking_lot::Mutex;
use ringcache_cluster::repair::{RangeId, RepairHistory, Taken, tombstone_margin_ms};
use ringcache_cluster::{NodeId, Ring, TokenRange};
use ringcache_storage::{Record, TombstoneHorizon};

use super::persist;
use super::replica::{Applied, Replica, Source};
use crate::clock::unix_now_ms;
use crate::config::ClusterConfig;

/// Where the last complete round of each range is kept, in the data dir.
const REPAIR_FILE: &str = "repair";

/// Counters of anti-entropy, for INFO and the metrics.
#[derive(Debug, Default)]
pub struct RepairStats {
    /// Rounds finished (whether or not every range was repaired).
    pub rounds: AtomicU64,
    /// Rounds that left some range unrepaired (a replica down or unreachable).
    pub rounds_incomplete: AtomicU64,
    /// Ranges repaired with every replica.
    pub ranges_repaired: AtomicU64,
    /// Ranges the running round covers and has not finished; 0 when none runs.
    pub ranges_in_progress: AtomicU64,
    /// Single Merkle leaves found different.
    pub leaves_differing: AtomicU64,
    /// Keys compared by version.
    pub keys_compared: AtomicU64,
    /// Records pulled from peers that changed this store.
    pub keys_pulled: AtomicU64,
    /// Live elements of the collections among them.
    pub elements_pulled: AtomicU64,
    /// Records this node pushed to peers.
    pub keys_pushed: AtomicU64,
    /// Records peers pushed here that changed this store.
    pub keys_received: AtomicU64,
    /// Values refused because this node evicted the key and is above the limit.
    pub keys_refused_evicted: AtomicU64,
    /// Bytes of repair requests and answers this node's rounds sent and received.
    pub bytes: AtomicU64,
    /// How long the last round took, ms.
    pub last_round_ms: AtomicU64,
    /// Peers' repair requests refused as over their bounds.
    pub requests_refused: AtomicU64,
}

impl RepairStats {
    /// Counts a finished round.
    pub fn count(&self, report: &RoundReport) {
        self.rounds.fetch_add(1, Relaxed);
        if report.repaired < report.ranges {
            self.rounds_incomplete.fetch_add(1, Relaxed);
        }
        self.ranges_in_progress.store(0, Relaxed);
        self.last_round_ms.store(report.elapsed_ms, Relaxed);
        let s = &report.stats;
        for (counter, value) in [
            (&self.ranges_repaired, report.repaired as u64),
            (&self.leaves_differing, s.leaves_differing),
            (&self.keys_compared, s.keys_compared),
            (&self.keys_pulled, s.keys_pulled),
            (&self.elements_pulled, s.elements_pulled),
            (&self.keys_pushed, s.keys_pushed),
            (&self.bytes, s.bytes),
        ] {
            counter.fetch_add(value, Relaxed);
        }
    }

    /// Each counter with its name (after `repair_` in INFO, `ringcache_repair_` in the
    /// metrics).
    pub fn named(&self) -> [(&'static str, u64); 14] {
        [
            ("rounds", self.rounds.load(Relaxed)),
            ("rounds_incomplete", self.rounds_incomplete.load(Relaxed)),
            ("ranges_repaired", self.ranges_repaired.load(Relaxed)),
            ("ranges_in_progress", self.ranges_in_progress.load(Relaxed)),
            ("leaves_differing", self.leaves_differing.load(Relaxed)),
            ("keys_compared", self.keys_compared.load(Relaxed)),
            ("keys_pulled", self.keys_pulled.load(Relaxed)),
            ("elements_pulled", self.elements_pulled.load(Relaxed)),
            ("keys_pushed", self.keys_pushed.load(Relaxed)),
            ("keys_received", self.keys_received.load(Relaxed)),
            (
                "keys_refused_evicted",
                self.keys_refused_evicted.load(Relaxed),
            ),
            ("bytes", self.bytes.load(Relaxed)),
            ("last_round_ms", self.last_round_ms.load(Relaxed)),
            ("requests_refused", self.requests_refused.load(Relaxed)),
        ]
    }
}

/// The anti-entropy state of a node.
#[derive(Debug)]
pub struct RepairState {
    file: PathBuf,
    history: Mutex<RepairHistory>,
    /// One round at a time: `RING REPAIR` waits for a scheduled round and the other way round.
    pub running: tokio::sync::Mutex<()>,
    /// When this node started: a range never repaired is due one interval after it.
    pub started_ms: u64,
    /// Counters.
    pub stats: RepairStats,
}

/// What one round did, for `RING REPAIR`'s reply.
#[derive(Debug, Clone, Default)]
pub struct RoundReport {
    /// Ranges the round covered.
    pub ranges: usize,
    /// Ranges repaired with every replica.
    pub repaired: usize,
    /// Figures summed over its sessions.
    pub stats: ringcache_cluster::repair::RepairStats,
    /// Wall time, ms.
    pub elapsed_ms: u64,
}

impl RoundReport {
    /// One line: `ranges=… repaired=… leaves_differing=… keys_pulled=… …`.
    pub fn line(&self) -> String {
        let s = &self.stats;
        format!(
            "ranges={} repaired={} leaves_differing={} keys_compared={} keys_pulled={} elements_pulled={} keys_pushed={} keys_refused={} bytes={} ms={}",
            self.ranges,
            self.repaired,
            s.leaves_differing,
            s.keys_compared,
            s.keys_pulled,
            s.elements_pulled,
            s.keys_pushed,
            s.keys_refused,
            s.bytes,
            self.elapsed_ms
        )
    }
}

impl RepairState {
    /// The state kept in `data_dir` (none yet: nothing repaired).
    pub fn open(data_dir: &Path) -> RepairState {
        let file = data_dir.join(REPAIR_FILE);
        RepairState {
            history: Mutex::new(RepairHistory::decode(
                &std::fs::read_to_string(&file).unwrap_or_default(),
            )),
            file,
            running: tokio::sync::Mutex::new(()),
            started_ms: unix_now_ms(),
            stats: RepairStats::default(),
        }
    }

    /// Records that `ranges` (as a round saw them) were repaired with every replica by a
    /// round that started at `started_ms`, and keeps it in the data dir.
    pub fn record(&self, ring: &Ring, n: usize, me: NodeId, ranges: &[RangeId], started_ms: u64) {
        let mut history = self.history.lock();
        if !history.record(ring, n, me, ranges, started_ms) {
            return;
        }
        let text = history.encode();
        drop(history);
        if let Err(e) = persist::write_atomically(&self.file, text.as_bytes()) {
            tracing::error!(error = %e, "cannot keep the repair times");
        }
    }

    pub fn last_repair(&self, range: &TokenRange, replicas: &[NodeId]) -> Option<u64> {
        self.history.lock().last_repair(range, replicas)
    }

    /// Before when tombstones may be dropped, per range this node (`me`) replicates in
    /// `ring`: the start of the range's last complete round, less the clock offset tolerated
    /// and the longest a write can be on its way (a write's timeout, or a hint's window).
    /// Tokens of ranges never repaired with their current replicas keep every tombstone.
    pub fn tombstone_horizon(
        &self,
        ring: &Ring,
        config: &ClusterConfig,
        me: NodeId,
        now_ms: u64,
    ) -> TombstoneHorizon {
        let margin_ms = tombstone_margin_ms(
            config.max_clock_offset_ms,
            config.write_timeout_ms,
            config.hint_window_ms,
        );
        let n = config.replication_factor;
        self.history.lock().horizon(ring, n, me, margin_ms, now_ms)
    }

    /// Drops what was recorded (the store was emptied: nothing here was repaired).
    pub fn forget_all(&self) {
        self.history.lock().clear();
        let _ = persist::write_atomically(&self.file, b"");
    }
}

/// Merges a record that repair brought (pulled from a peer, or pushed by one) through the
/// replica path ([`Source::Repair`]), with `maxmemory_bytes` for its eviction rule; counts
/// what that rule refused. As repair's sessions count it: changed, unchanged (flushed
/// counts as unchanged), refused or failed.
pub fn take_record(
    replica: &Replica,
    repair: &RepairState,
    key: &Bytes,
    record: &Record,
    maxmemory_bytes: u64,
) -> Taken {
    let source = Source::Repair { maxmemory_bytes };
    match replica.apply(key, record, unix_now_ms(), source) {
        Ok(Applied::Changed) => Taken::Changed,
        Ok(Applied::Unchanged | Applied::Flushed) => Taken::Unchanged,
        Ok(Applied::RefusedEvicted) => {
            repair.stats.keys_refused_evicted.fetch_add(1, Relaxed);
            Taken::Refused
        }
        Err(e) => {
            tracing::warn!(error = %e, "the store refused a repaired record");
            Taken::Failed
        }
    }
}
