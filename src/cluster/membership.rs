//! The node id and the member list, kept in the data directory so that a restarted node is
//! the same node with the same ring.
//!
//! `node-id` holds 16 hex digits. `members` holds one line per seed address:
//! `<address> <node id>` once the seed has been reached, `<address> self` for this node's own
//! address, `<address> ?` before. A seed list is static for now (gossip membership is the
//! next step), so the ring is this node plus every seed reached at least once.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ringcache_cluster::NodeId;

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

/// Keeps the flush time durably.
///
/// # Errors
/// The file cannot be written.
pub fn write_flush_hlc(path: &Path, hlc: u64) -> anyhow::Result<()> {
    write_atomically(path, format!("{hlc}\n").as_bytes())
}

/// What a seed address is known to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seed {
    Unknown,
    SelfAddress,
    Node(NodeId),
}

/// The seeds and what each turned out to be.
#[derive(Debug)]
pub struct Members {
    local: NodeId,
    seeds: BTreeMap<String, Seed>,
    path: PathBuf,
}

impl Members {
    /// Loads what is known of `seeds` from the data dir.
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn open(data_dir: &Path, local: NodeId, seeds: &[String]) -> anyhow::Result<Members> {
        let path = data_dir.join("members");
        let mut known = BTreeMap::new();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for line in text.lines() {
                    if let Some((addr, what)) = line.split_once(' ') {
                        let seed = match what {
                            "self" => Seed::SelfAddress,
                            id => id.parse().map(Seed::Node).unwrap_or(Seed::Unknown),
                        };
                        known.insert(addr.to_string(), seed);
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        let seeds = seeds
            .iter()
            .map(|addr| {
                (
                    addr.clone(),
                    known.get(addr).copied().unwrap_or(Seed::Unknown),
                )
            })
            .collect();
        Ok(Members { local, seeds, path })
    }

    /// Every member: this node and the seeds reached.
    pub fn ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = std::iter::once(self.local)
            .chain(self.seeds.values().filter_map(|s| match s {
                Seed::Node(id) => Some(*id),
                _ => None,
            }))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Members and their peer addresses (this node's own address when known, else empty).
    pub fn addresses(&self) -> BTreeMap<NodeId, String> {
        let mut out: BTreeMap<NodeId, String> = BTreeMap::new();
        out.insert(self.local, String::new());
        for (addr, seed) in &self.seeds {
            match seed {
                Seed::Node(id) => {
                    out.insert(*id, addr.clone());
                }
                Seed::SelfAddress => {
                    out.insert(self.local, addr.clone());
                }
                Seed::Unknown => {}
            }
        }
        out
    }

    /// Seed addresses never reached.
    pub fn unresolved(&self) -> Vec<String> {
        self.seeds
            .iter()
            .filter(|(_, s)| **s == Seed::Unknown)
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// The seed at `addr` is `node`; returns whether the member set changed.
    ///
    /// # Errors
    /// The member file cannot be written (the change holds in memory).
    pub fn learn(&mut self, addr: &str, node: NodeId) -> anyhow::Result<bool> {
        let before = self.ids();
        match self.seeds.get(addr) {
            Some(Seed::Node(id)) if *id == node => return Ok(false),
            _ => {}
        }
        if let Some(old) = self.seeds.get(addr).copied()
            && old != Seed::Unknown
        {
            tracing::warn!(addr, ?old, %node, "a seed address now answers as another node");
        }
        self.seeds.insert(addr.to_string(), Seed::Node(node));
        self.save()?;
        Ok(self.ids() != before)
    }

    /// `addr` is this node's own address.
    pub fn mark_self(&mut self, addr: &str) {
        if self.seeds.get(addr) != Some(&Seed::SelfAddress) {
            self.seeds.insert(addr.to_string(), Seed::SelfAddress);
            if let Err(e) = self.save() {
                tracing::error!(error = %e, "cannot persist the member list");
            }
        }
    }

    fn save(&self) -> anyhow::Result<()> {
        let mut text = String::new();
        for (addr, seed) in &self.seeds {
            let what = match seed {
                Seed::Unknown => "?".to_string(),
                Seed::SelfAddress => "self".to_string(),
                Seed::Node(id) => id.to_string(),
            };
            text.push_str(&format!("{addr} {what}\n"));
        }
        write_atomically(&self.path, text.as_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary file, fsync and rename, so a crash leaves
/// the old file or the new one.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
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
    fn learned_seeds_are_kept_and_grow_the_member_set() {
        let dir = temp_dir("seeds");
        let local = NodeId::new(1);
        let seeds = vec!["a:1".to_string(), "b:2".to_string(), "c:3".to_string()];
        let mut members = Members::open(&dir, local, &seeds).unwrap();
        assert_eq!(members.unresolved().len(), 3);
        members.mark_self("a:1");
        assert!(members.learn("b:2", NodeId::new(2)).unwrap());
        assert!(!members.learn("b:2", NodeId::new(2)).unwrap());
        assert_eq!(members.ids(), vec![NodeId::new(1), NodeId::new(2)]);
        let again = Members::open(&dir, local, &seeds).unwrap();
        assert_eq!(again.unresolved(), vec!["c:3".to_string()]);
        assert_eq!(again.addresses()[&NodeId::new(1)], "a:1");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
