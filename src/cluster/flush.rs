//! `FLUSHALL` in a cluster, on each member: a flush time from the coordinator's clock, after
//! which every record no newer is dead here. The time is kept in the data dir and travels in
//! gossip, so a member that missed the flush applies it when it learns of it
//! ([`apply_late_flush`]); the replica path drops older records that arrive later
//! ([`super::replica::Replica::survives_flush`]).

use ringcache_storage::Version;

use super::error::FlushError;
use super::persist;
use super::state::Cluster;
use crate::clock::unix_now_ms;

/// Records walked per step of a late flush.
const LATE_FLUSH_SCAN_KEYS: usize = 4096;

/// Raises this node's flush time to `version`: observed by the clock, kept in the data dir,
/// spread by gossip. Whether it was newer than the one applied.
fn raise(cluster: &Cluster, version: Version) -> Result<bool, FlushError> {
    cluster.replica.clock.observe(version);
    if !cluster.replica.raise_flush(version.hlc) {
        return Ok(false);
    }
    persist::write_flush_hlc(&cluster.data_dir.join("flush-version"), version.hlc)
        .map_err(FlushError::Keep)?;
    cluster
        .membership
        .lock()
        .set_flush_hlc(version.hlc, unix_now_ms());
    cluster.gossip_wake.notify_one();
    Ok(true)
}

/// Applies a cluster-wide flush at `version`: records no newer are dead here from now on
/// (the flush time is kept first, so a write older than it that arrives later is dropped),
/// then the store is emptied.
///
/// # Errors
/// The flush time cannot be kept, or the store cannot be cleared (see [`FlushError`]).
pub fn apply_flush(cluster: &Cluster, version: Version) -> Result<(), FlushError> {
    raise(cluster, version)?;
    Ok(cluster.replica.store.clear()?)
}

/// Applies a flush this node missed and learned of later through gossip: records no newer
/// than `version` are dead here from now on, and those it holds are dropped one by one, not
/// by emptying the store, since writes newer than the flush may have arrived meanwhile.
///
/// # Errors
/// The flush time cannot be kept, or a record cannot be dropped (see [`FlushError`]).
pub fn apply_late_flush(cluster: &Cluster, version: Version) -> Result<(), FlushError> {
    if !raise(cluster, version)? {
        return Ok(());
    }
    let store = &cluster.replica.store;
    let now = unix_now_ms();
    let mut cursor = 0;
    loop {
        let mut dead = Vec::new();
        let mut collections = Vec::new();
        cursor = store.scan(cursor, LATE_FLUSH_SCAN_KEYS, now, &mut |key, record| {
            if record.version().hlc <= version.hlc {
                dead.push(key.clone());
            } else if record.kind.is_collection() {
                collections.push((key.clone(), record.clone()));
            }
        });
        for key in dead {
            store.discard(&key)?;
        }
        // A collection written since keeps only the cells written since.
        for (key, record) in collections {
            if let Some(cleared) = cluster.replica.without_flushed_cells(&record) {
                store.merge(&key, &cleared)?;
            }
        }
        if cursor == 0 {
            return Ok(());
        }
    }
}
