//! Active expiry: a background sweep that reclaims expired values and old tombstones.
//!
//! Reads already treat an expired key as absent (lazy expiry); this sweep frees the memory
//! of keys nobody reads again. It walks the whole ring in token order, a bounded number of
//! records per step, ten steps a second (Redis's `hz`), so its cost per step is bounded and
//! every key is looked at within a predictable time. A full pass over a million keys takes
//! about 50 s.

use std::sync::Arc;
use std::time::Duration;

use ringcache_storage::TombstoneHorizon;

use crate::node::{Node, unix_now_ms};

/// Steps per second, as Redis's default `hz`.
const STEP_INTERVAL: Duration = Duration::from_millis(100);
/// Records looked at per step.
const RECORDS_PER_STEP: usize = 2_000;
/// How long a tombstone is kept on a single node before the sweep may drop it. In a
/// cluster a tombstone goes only after its range was repaired with every replica (see
/// `cluster::repair::tombstone_horizon`).
pub const TOMBSTONE_GRACE: Duration = Duration::from_secs(3600);
/// Steps between two computations of a cluster's tombstone horizon (a walk of the ring).
const HORIZON_STEPS: u32 = 10;

/// Runs the sweep until the server shuts down.
pub async fn run(node: Arc<Node>) {
    let mut shutdown = node.shutdown.subscribe();
    let mut tick = tokio::time::interval(STEP_INTERVAL);
    let mut cursor = 0;
    let mut horizon = TombstoneHorizon::default();
    let mut steps = 0u32;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let now_ms = unix_now_ms();
        if steps.is_multiple_of(HORIZON_STEPS) {
            horizon = match &node.cluster {
                Some(cluster) => crate::cluster::repair::tombstone_horizon(cluster),
                None => TombstoneHorizon::uniform(
                    now_ms.saturating_sub(TOMBSTONE_GRACE.as_millis() as u64),
                ),
            };
        }
        steps = steps.wrapping_add(1);
        // The store counts what it reclaims (INFO's expired_keys).
        let (_, next) = node
            .store
            .expire_step(cursor, RECORDS_PER_STEP, now_ms, &horizon);
        cursor = next;
        crate::notify::publish_expired(&node);
    }
}
