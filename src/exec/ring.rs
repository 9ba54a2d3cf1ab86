//! `RING NODES | INFO | REPLICAS key | DECOMMISSION | FORGET id` and the `# Cluster`
//! section of `INFO`: what this node knows of the cluster, and membership changes, for
//! operators.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;
use ringcache_cluster::NodeId;
use ringcache_cluster::membership::{Health, Status};
use ringcache_resp::Reply;
use ringcache_resp::cmd::{RepairTarget, RingCommand};
use ringcache_storage::{Record, key_token};

use crate::cluster::{Cluster, OUTCOMES, RingError, persist};
use crate::node::{Node, unix_now_ms};

/// Answers a `RING` command on a node in `cluster`.
pub async fn execute(node: &Arc<Node>, cluster: &Arc<Cluster>, command: RingCommand) -> Reply {
    execute_in(node, cluster, command)
        .await
        .unwrap_or_else(Reply::error)
}

async fn execute_in(
    node: &Arc<Node>,
    cluster: &Arc<Cluster>,
    command: RingCommand,
) -> Result<Reply, RingError> {
    Ok(match command {
        RingCommand::Nodes => Reply::Bulk(Bytes::from(nodes(cluster))),
        RingCommand::Info => Reply::Bulk(Bytes::from(info_lines(node).replace("\r\n", "\n"))),
        RingCommand::Replicas(key) => replicas(cluster, &key).await,
        RingCommand::Decommission => {
            crate::cluster::streaming::decommission(cluster).await?;
            // The reply goes out first; then the process stops as on SHUTDOWN.
            let node = node.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                node.begin_shutdown();
            });
            Reply::Ok
        }
        RingCommand::Forget(id) => {
            forget(cluster, &id)?;
            Reply::Ok
        }
        RingCommand::Repair(RepairTarget::Status) => {
            let lines = crate::cluster::repair::status_lines(cluster);
            Reply::Bulk(Bytes::from(lines.join("\n") + "\n"))
        }
        RingCommand::Repair(target) => {
            let key = match &target {
                RepairTarget::Key(key) => Some(key),
                _ => None,
            };
            let report = crate::cluster::repair::repair_now(cluster, &node.config, key).await?;
            Reply::Bulk(Bytes::from(report.line()))
        }
    })
}

/// `RING FORGET id`: removes a dead member from the ring for good, and its hints.
fn forget(cluster: &Cluster, id: &[u8]) -> Result<(), RingError> {
    let id = std::str::from_utf8(id)
        .ok()
        .and_then(|t| t.parse::<NodeId>().ok())
        .ok_or(RingError::BadNodeId)?;
    cluster.membership.lock().forget(id, unix_now_ms())?;
    cluster.gossip_wake.notify_one();
    // Its hints go when the ring drops it (`Cluster::refresh_view`).
    tracing::info!(%id, "member forgotten");
    Ok(())
}

/// Answers a `RING` command on a single node (no cluster): itself, owning everything.
pub fn execute_single(node: &Node, command: RingCommand) -> Reply {
    match command {
        RingCommand::Nodes => Reply::Bulk(Bytes::from_static(b"- - self ownership=100.0%\n")),
        RingCommand::Info => Reply::Bulk(Bytes::from(info_lines(node).replace("\r\n", "\n"))),
        RingCommand::Replicas(key) => {
            let record = node.store.peek(&key, unix_now_ms());
            Reply::Array(vec![replica_entry("-", "-", "self", Some(record))])
        }
        RingCommand::Decommission | RingCommand::Forget(_) | RingCommand::Repair(_) => {
            Reply::error(RingError::NotInCluster)
        }
    }
}

/// One line per member: id, peer address, state as seen from here (self, up, down), then
/// its gossip record (status, health, incarnation), tokens owned, clock offset and share
/// of the keys it holds.
fn nodes(cluster: &Cluster) -> String {
    let now = unix_now_ms();
    let view = cluster.view();
    let ring = &view.ring;
    let shares =
        ring.replica_ownership(cluster.config.replication_factor.min(ring.members().len()));
    let mut out = String::new();
    for (id, member) in &view.members {
        let state = state(cluster, *id, now);
        // One lock at a time: `state` takes the liveness lock too.
        let offset = cluster.liveness.lock().offset_ms(*id).unwrap_or(0);
        let share = shares
            .iter()
            .find(|(n, _)| n == id)
            .map_or(0.0, |(_, s)| *s);
        let tokens = if ring.members().contains(id) {
            ring.vnodes()
        } else {
            0
        };
        let _ = writeln!(
            out,
            "{id} {} {state} status={} health={} incarnation={} tokens={tokens} offset_ms={offset} ownership={:.1}%",
            member.addr,
            persist::status_name(member.status),
            health_name(member.health),
            member.incarnation,
            share * 100.0
        );
    }
    out
}

/// A health's name in `RING NODES` and metrics.
pub fn health_name(health: Health) -> &'static str {
    match health {
        Health::Alive => "alive",
        Health::Suspect => "suspect",
        Health::Dead => "dead",
    }
}

fn state(cluster: &Cluster, id: NodeId, now: u64) -> &'static str {
    if id == cluster.local {
        "self"
    } else if cluster.is_up(id, now) {
        "up"
    } else {
        "down"
    }
}

/// The lines of `INFO cluster` (and `RING INFO`).
pub fn info_lines(node: &Node) -> String {
    let mut out = String::new();
    let config = node.config.read();
    // cluster_enabled stays 0: ringcache never redirects, so clients must not speak the
    // Redis Cluster protocol to it; ring_enabled says whether this node is in a ring.
    let mut line = |text: String| {
        out.push_str(&text);
        out.push_str("\r\n");
    };
    line("cluster_enabled:0".into());
    line(format!("read_consistency_default:{}", config.read_level));
    line(format!("write_consistency_default:{}", config.write_level));
    let Some(cluster) = &node.cluster else {
        line("ring_enabled:0".into());
        line("ring_nodes:1".into());
        line("ring_replicas:1".into());
        return out;
    };
    let now = unix_now_ms();
    let ring = cluster.ring();
    let stats = &cluster.stats;
    line("ring_enabled:1".into());
    line(format!("node_id:{}", cluster.local));
    line(format!("cluster_name:{}", cluster.config.name));
    line(format!(
        "replication_factor:{}",
        cluster.config.replication_factor
    ));
    line(format!("ring_nodes:{}", ring.members().len()));
    line(format!(
        "ring_replicas:{}",
        cluster.config.replication_factor.min(ring.members().len())
    ));
    line(format!("ring_vnodes:{}", ring.vnodes()));
    line(format!("members:{}", cluster.view().members.len()));
    line(format!("members_up:{}", cluster.members_up(now)));
    line(format!(
        "seeds_unreached:{}",
        cluster.unresolved_seeds().len()
    ));
    line(format!("status:{}", persist::status_name(cluster.status())));
    let view = cluster.view();
    for status in [
        Status::Joining,
        Status::Ready,
        Status::Normal,
        Status::Leaving,
    ] {
        let count = view.members.values().filter(|m| m.status == status).count();
        line(format!("members_{}:{count}", persist::status_name(status)));
    }
    for health in [Health::Suspect, Health::Dead] {
        let count = view.members.values().filter(|m| m.health == health).count();
        line(format!("members_{}:{count}", health_name(health)));
    }
    let gossip = cluster.membership.lock().stats().clone();
    let streaming = &cluster.streaming;
    let ages = crate::cluster::repair::ages(cluster);
    let (hints_pending, hints_pending_bytes) = cluster.hints_pending();
    for (name, value) in [
        ("gossip_probes", gossip.probes),
        ("gossip_indirect_probes", gossip.indirect_probes),
        ("gossip_suspicions", gossip.suspicions),
        ("gossip_refutations", gossip.refutations),
        ("gossip_deaths", gossip.deaths),
        ("gossip_false_deaths", gossip.false_deaths),
        ("gossip_bytes_in", gossip.bytes_in),
        ("gossip_bytes_out", gossip.bytes_out),
        ("gossip_datagrams_rejected", gossip.datagrams_rejected),
        ("gossip_push_pulls", gossip.push_pulls),
        ("stream_bytes", streaming.bytes.load(Relaxed)),
        ("stream_records", streaming.records.load(Relaxed)),
        ("stream_records_new", streaming.records_new.load(Relaxed)),
        ("stream_elements", streaming.elements.load(Relaxed)),
        ("stream_ranges_done", streaming.ranges_done.load(Relaxed)),
        (
            "stream_ranges_pending",
            streaming.ranges_pending.load(Relaxed),
        ),
        (
            "stream_records_discarded",
            streaming.records_discarded.load(Relaxed),
        ),
    ] {
        line(format!("{name}:{value}"));
    }
    for (name, value) in cluster.repair.stats.named() {
        line(format!("repair_{name}:{value}"));
    }
    for (name, value) in [
        ("repair_ranges", ages.ranges as u64),
        ("repair_ranges_never_repaired", ages.never as u64),
        ("repair_ranges_overdue", ages.overdue as u64),
        ("repair_oldest_age_s", ages.oldest_s),
        ("repair_tree_bytes", node.store.merkle().bytes() as u64),
        ("tombstones", node.store.stats().tombstones as u64),
        ("hints_pending", hints_pending),
        ("hints_pending_bytes", hints_pending_bytes),
        ("hints_stored", stats.hints_stored.load(Relaxed)),
        ("hints_replayed", stats.hints_replayed.load(Relaxed)),
        ("hints_dropped", stats.hints_dropped.load(Relaxed)),
        ("read_repairs", stats.read_repairs.load(Relaxed)),
        ("publish_sent", stats.publish_sent.load(Relaxed)),
        ("publish_unsent", stats.publish_unsent.load(Relaxed)),
    ] {
        line(format!("{name}:{value}"));
    }
    for (outcome, name) in OUTCOMES.iter().enumerate() {
        let count: u64 = stats
            .rounds
            .iter()
            .flatten()
            .map(|r| r.outcomes[outcome].load(Relaxed))
            .sum();
        line(format!("requests_{name}:{count}"));
    }
    line(format!(
        "handshakes_refused:{}",
        stats.handshakes_refused.load(Relaxed)
    ));
    line(format!(
        "clock_skew_refusals:{}",
        stats.clock_skew_refusals.load(Relaxed)
    ));
    line(format!(
        "clock_offset_ms:{}",
        cluster.liveness.lock().own_offset_ms(now)
    ));
    line(format!(
        "max_clock_offset_ms:{}",
        cluster.config.max_clock_offset_ms
    ));
    out
}

/// The key's preference list, each replica with its record as it holds it now.
async fn replicas(cluster: &Cluster, key: &Bytes) -> Reply {
    let now = unix_now_ms();
    let ring = cluster.ring();
    let list = ring.preference_list(key_token(key), cluster.config.replication_factor);
    let addresses = cluster.members();
    let mut entries = Vec::with_capacity(list.len());
    for &replica in list.iter() {
        let record = cluster.ask(replica, key).await;
        let addr = addresses.get(&replica).map_or("-", |a| a.as_str());
        let addr = if addr.is_empty() { "-" } else { addr };
        entries.push(replica_entry(
            &replica.to_string(),
            addr,
            state(cluster, replica, now),
            record,
        ));
    }
    Reply::Array(entries)
}

/// `[node, addr, state, record: value|tombstone|none|unreachable, version, expiry_ms]`:
/// `version` as `<unix ms>.<logical>@<node>` of the newer cell, `expiry_ms` -1 for none.
fn replica_entry(id: &str, addr: &str, state: &str, record: Option<Option<Record>>) -> Reply {
    let bulk = |text: &str| Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()));
    let (kind, version, expiry) = match &record {
        None => ("unreachable", Reply::Nil, Reply::Nil),
        Some(None) => ("none", Reply::Nil, Reply::Nil),
        Some(Some(r)) => {
            let v = r.version();
            let version = format!(
                "{}.{}@{:08x}",
                v.unix_ms(),
                v.hlc & ((1 << ringcache_storage::Version::LOGICAL_BITS) - 1),
                v.node
            );
            let kind = if r.value.is_some() {
                "value"
            } else {
                "tombstone"
            };
            (
                kind,
                bulk(&version),
                Reply::Integer(r.expiry_ms.map_or(-1, |e| e as i64)),
            )
        }
    };
    Reply::Array(vec![
        bulk("node"),
        bulk(id),
        bulk("addr"),
        bulk(addr),
        bulk("state"),
        bulk(state),
        bulk("record"),
        bulk(kind),
        bulk("version"),
        version,
        bulk("expiry_ms"),
        expiry,
    ])
}
