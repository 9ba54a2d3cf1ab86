//! What a node keeps of the cluster in its data directory, so that a restarted node is the
//! same node with the same view: `node-id` (16 hex digits), `members` (the member table as
//! gossip last told it, this node's own status and incarnation included), `clock` (the
//! clock's high-water mark) and `flush-version` (the last cluster flush time).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ringcache_cluster::membership::{Health, Member, Status};
use ringcache_cluster::{HybridClock, NodeId};
use tokio::sync::watch;

/// This node's id: `given` (written to the data dir), else the one kept there, else a new
/// random one, kept.
///
/// # Errors
/// The file cannot be read or written, or holds something else than an id.
pub fn node_id(data_dir: &Path, given: Option<NodeId>) -> anyhow::Result<NodeId> {
    let path = data_dir.join("node-id");
    let kept = match std::fs::read_to_string(&path) {
        Ok(text) => Some(
            text.trim()
                .parse::<NodeId>()
                .map_err(|_| anyhow::anyhow!("{} does not hold a node id", path.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let id = match (given, kept) {
        (Some(given), _) => given,
        (None, Some(kept)) => kept,
        (None, None) => NodeId::new(rand::random::<u64>().max(1)),
    };
    if kept != Some(id) {
        write_atomically(&path, format!("{id}\n").as_bytes())?;
    }
    Ok(id)
}

/// The flush time kept in `data_dir/flush-version` (0 when there is none).
///
/// # Errors
/// The file cannot be read or holds something else than a number.
pub fn read_flush_hlc(data_dir: &Path) -> anyhow::Result<u64> {
    let path = data_dir.join("flush-version");
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("{} does not hold a flush version", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The clock's high-water mark kept in `data_dir/clock` (0 when there is none).
pub fn read_clock(data_dir: &Path) -> u64 {
    std::fs::read_to_string(data_dir.join("clock"))
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Keeps the clock's high-water mark (replaced atomically; fsynced).
///
/// # Errors
/// The file cannot be written.
pub fn write_clock(data_dir: &Path, hlc: u64) -> anyhow::Result<()> {
    write_atomically(&data_dir.join("clock"), format!("{hlc}\n").as_bytes())
}

/// How often the clock's high-water mark is kept in the data dir.
const CLOCK_KEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Keeps `clock`'s high-water mark in `data_dir` once a second and at shutdown, so a
/// restarted node starts its clock past every version it issued more than a second before a
/// crash, even if the wall clock stepped back meanwhile (a version is never issued twice).
pub async fn keep_clock(
    clock: Arc<HybridClock>,
    data_dir: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(CLOCK_KEEP_INTERVAL) => false,
            _ = shutdown.wait_for(|stop| *stop) => true,
        };
        let (dir, hlc) = (data_dir.clone(), clock.high_water());
        let kept = tokio::task::spawn_blocking(move || write_clock(&dir, hlc)).await;
        if let Ok(Err(e)) = kept {
            tracing::warn!(error = %e, "cannot keep the clock's high-water mark");
        }
        if stopping {
            return;
        }
    }
}

/// Keeps the flush time durably.
///
/// # Errors
/// The file cannot be written.
pub fn write_flush_hlc(path: &Path, hlc: u64) -> anyhow::Result<()> {
    write_atomically(path, format!("{hlc}\n").as_bytes())
}

/// The member table as last seen (`data_dir/members`, one member a line:
/// `<id> <addr> <incarnation> <status>`), this node's own line included; empty when there
/// is none. Lines that do not parse are skipped: the table is a cache of what gossip
/// will tell again.
pub fn read_members(data_dir: &Path) -> Vec<Member> {
    let Ok(text) = std::fs::read_to_string(data_dir.join("members")) else {
        return Vec::new();
    };
    text.lines().filter_map(parse_member).collect()
}

fn parse_member(line: &str) -> Option<Member> {
    let mut fields = line.split_whitespace();
    let id = fields.next()?.parse().ok()?;
    let addr = fields.next()?.parse().ok()?;
    let incarnation = fields.next()?.parse().ok()?;
    let status = match fields.next()? {
        "joining" => Status::Joining,
        "ready" => Status::Ready,
        "normal" => Status::Normal,
        "leaving" => Status::Leaving,
        "left" => Status::Left,
        _ => return None,
    };
    Some(Member {
        id,
        addr,
        incarnation,
        status,
        health: Health::Alive,
        flush_hlc: 0,
    })
}

/// The name of a status in the member file, `RING NODES` and INFO.
pub fn status_name(status: Status) -> &'static str {
    match status {
        Status::Joining => "joining",
        Status::Ready => "ready",
        Status::Normal => "normal",
        Status::Leaving => "leaving",
        Status::Left => "left",
    }
}

/// Keeps the member table (replaced atomically).
///
/// # Errors
/// The file cannot be written.
pub fn write_members<'a>(
    data_dir: &Path,
    members: impl Iterator<Item = &'a Member>,
) -> anyhow::Result<()> {
    let mut text = String::new();
    for m in members {
        text.push_str(&format!(
            "{} {} {} {}\n",
            m.id,
            m.addr,
            m.incarnation,
            status_name(m.status)
        ));
    }
    write_atomically(&data_dir.join("members"), text.as_bytes())
}

/// Writes `bytes` to `path` through a temporary file, fsync and rename, so a crash leaves
/// the old file or the new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("ringcache-members-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_node_id_is_kept_across_restarts() {
        let dir = temp_dir("id");
        let first = node_id(&dir, None).unwrap();
        assert_eq!(node_id(&dir, None).unwrap(), first);
        let given = NodeId::new(0xabc);
        assert_eq!(node_id(&dir, Some(given)).unwrap(), given);
        assert_eq!(node_id(&dir, None).unwrap(), given);
        std::fs::write(dir.join("node-id"), "not hex").unwrap();
        assert!(node_id(&dir, None).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_clock_high_water_mark_and_flush_time_are_kept() {
        let dir = temp_dir("clock");
        assert_eq!(read_clock(&dir), 0);
        write_clock(&dir, 42 << 16).unwrap();
        assert_eq!(read_clock(&dir), 42 << 16);
        assert_eq!(read_flush_hlc(&dir).unwrap(), 0);
        write_flush_hlc(&dir.join("flush-version"), 7).unwrap();
        assert_eq!(read_flush_hlc(&dir).unwrap(), 7);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_member_table_round_trips_and_skips_what_does_not_parse() {
        let dir = temp_dir("members");
        assert!(read_members(&dir).is_empty());
        let member = |id: u64, status| Member {
            id: NodeId::new(id),
            addr: format!("127.0.0.1:{}", 7000 + id).parse().unwrap(),
            incarnation: id as u32 * 3,
            status,
            health: Health::Alive,
            flush_hlc: 0,
        };
        let members = [member(1, Status::Normal), member(2, Status::Joining)];
        write_members(&dir, members.iter()).unwrap();
        assert_eq!(read_members(&dir), members.to_vec());
        let text = std::fs::read_to_string(dir.join("members")).unwrap();
        std::fs::write(
            dir.join("members"),
            format!("{text}garbage line\n3 x 1 normal\n"),
        )
        .unwrap();
        assert_eq!(read_members(&dir), members.to_vec());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
