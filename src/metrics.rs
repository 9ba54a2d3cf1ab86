//! Prometheus metrics at `http://<bind>:<metrics-port>/metrics`.
//!
//! The counters live in [`crate::stats::Stats`] (plain atomics on the request path, also read
//! by `INFO`); a publisher copies them into the metrics recorder once a second. Latency
//! histograms are published from the same power-of-two buckets, with the exporter's buckets
//! set to the same bounds so the counts land exactly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use crate::cluster::{Cluster, LEVEL_NAMES, OP_NAMES, OUTCOMES, persist};
use crate::exec::ring::health_name;
use crate::node::{Node, unix_now_ms};
use crate::stats::{LATENCY_BUCKETS, latency_bucket_upper_s};
use ringcache_cluster::membership::{Health, Status};
use ringcache_resp::cmd::TABLE;

/// How often counters are copied into the exporter.
pub const PUBLISH_INTERVAL: Duration = Duration::from_secs(1);

/// Starts the HTTP exporter on `addr` and the publisher.
///
/// # Errors
/// When the exporter cannot be built or bound.
pub fn start(node: Arc<Node>, addr: SocketAddr) -> anyhow::Result<()> {
    let buckets: Vec<f64> = (0..LATENCY_BUCKETS).map(latency_bucket_upper_s).collect();
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Full("ringcache_command_duration_seconds".into()),
            &buckets,
        )?
        .set_buckets_for_metric(
            Matcher::Full("ringcache_request_duration_seconds".into()),
            &buckets,
        )?
        .install()?;
    tokio::spawn(publish(node));
    Ok(())
}

async fn publish(node: Arc<Node>) {
    let mut published_latency = vec![[0u64; LATENCY_BUCKETS]; TABLE.len() + 1];
    let mut published_rounds = [[[0u64; LATENCY_BUCKETS]; LEVEL_NAMES.len()]; 2];
    let mut tick = tokio::time::interval(PUBLISH_INTERVAL);
    loop {
        tick.tick().await;
        publish_once(&node, &mut published_latency);
        if let Some(cluster) = &node.cluster {
            publish_cluster(cluster, &mut published_rounds);
        }
    }
}

/// Records the counts of `buckets` added since `published` into `histogram`.
fn record_new(
    histogram: &metrics::Histogram,
    buckets: &[std::sync::atomic::AtomicU64; LATENCY_BUCKETS],
    published: &mut [u64; LATENCY_BUCKETS],
) {
    for (bucket, (count, seen)) in buckets.iter().zip(published.iter_mut()).enumerate() {
        let count = count.load(Relaxed);
        // A CONFIG RESETSTAT makes counts go down: publish from the new zero.
        let new = count.saturating_sub(*seen);
        *seen = count;
        if new > 0 {
            histogram.record_many(latency_bucket_upper_s(bucket), new as usize);
        }
    }
}

fn publish_cluster(
    cluster: &Cluster,
    published: &mut [[[u64; LATENCY_BUCKETS]; LEVEL_NAMES.len()]; 2],
) {
    let s = &cluster.stats;
    for ((op, rounds), published) in OP_NAMES.iter().zip(&s.rounds).zip(published.iter_mut()) {
        for ((level, round), seen) in LEVEL_NAMES.iter().zip(rounds).zip(published.iter_mut()) {
            for (outcome, count) in OUTCOMES.iter().zip(&round.outcomes) {
                let count = count.load(Relaxed);
                if count > 0 {
                    counter!("ringcache_requests_total", "op" => *op, "level" => *level, "outcome" => *outcome)
                        .absolute(count);
                }
            }
            if round.outcomes.iter().all(|c| c.load(Relaxed) == 0) {
                continue; // A level never used is not published.
            }
            let latency =
                histogram!("ringcache_request_duration_seconds", "op" => *op, "level" => *level);
            record_new(&latency, &round.latency, seen);
        }
    }
    counter!("ringcache_read_repairs_total").absolute(s.read_repairs.load(Relaxed));
    counter!("ringcache_hints_stored_total").absolute(s.hints_stored.load(Relaxed));
    counter!("ringcache_hints_replayed_total").absolute(s.hints_replayed.load(Relaxed));
    counter!("ringcache_hints_dropped_total").absolute(s.hints_dropped.load(Relaxed));
    counter!("ringcache_handshakes_refused_total").absolute(s.handshakes_refused.load(Relaxed));
    counter!("ringcache_peer_frames_rejected_total").absolute(s.peer_frames_rejected.load(Relaxed));
    counter!("ringcache_clock_skew_refusals_total").absolute(s.clock_skew_refusals.load(Relaxed));
    counter!("ringcache_publish_sent_total").absolute(s.publish_sent.load(Relaxed));
    counter!("ringcache_publish_unsent_total").absolute(s.publish_unsent.load(Relaxed));
    let (pending, bytes) = cluster.hints_pending();
    gauge!("ringcache_hints_pending").set(pending as f64);
    gauge!("ringcache_hints_pending_bytes").set(bytes as f64);
    let now = unix_now_ms();
    gauge!("ringcache_members").set(cluster.members().len() as f64);
    gauge!("ringcache_members_up").set(cluster.members_up(now) as f64);
    for id in cluster
        .members()
        .into_keys()
        .filter(|&id| id != cluster.local)
    {
        let peer = id.to_string();
        let up = cluster.is_up(id, now);
        gauge!("ringcache_peer_up", "peer" => peer.clone()).set(if up { 1.0 } else { 0.0 });
        if let Some(offset) = cluster.liveness.lock().offset_ms(id) {
            gauge!("ringcache_peer_clock_offset_ms", "peer" => peer).set(offset as f64);
        }
    }
    gauge!("ringcache_clock_offset_ms").set(cluster.liveness.lock().own_offset_ms(now) as f64);
    publish_membership(cluster);
}

/// Gossip and streaming figures.
fn publish_membership(cluster: &Cluster) {
    let view = cluster.view();
    for status in [
        Status::Joining,
        Status::Ready,
        Status::Normal,
        Status::Leaving,
    ] {
        let count = view.members.values().filter(|m| m.status == status).count();
        gauge!("ringcache_members_by_status", "status" => persist::status_name(status))
            .set(count as f64);
    }
    for health in [Health::Alive, Health::Suspect, Health::Dead] {
        let count = view.members.values().filter(|m| m.health == health).count();
        gauge!("ringcache_members_by_health", "health" => health_name(health)).set(count as f64);
    }
    let (g, local_health) = {
        let machine = cluster.membership.lock();
        (machine.stats().clone(), machine.local_health())
    };
    counter!("ringcache_gossip_probes_total").absolute(g.probes);
    counter!("ringcache_gossip_indirect_probes_total").absolute(g.indirect_probes);
    counter!("ringcache_gossip_suspicions_total").absolute(g.suspicions);
    counter!("ringcache_gossip_refutations_total").absolute(g.refutations);
    counter!("ringcache_gossip_deaths_total").absolute(g.deaths);
    counter!("ringcache_gossip_false_deaths_total").absolute(g.false_deaths);
    counter!("ringcache_gossip_bytes_total", "direction" => "in").absolute(g.bytes_in);
    counter!("ringcache_gossip_bytes_total", "direction" => "out").absolute(g.bytes_out);
    counter!("ringcache_gossip_datagrams_rejected_total").absolute(g.datagrams_rejected);
    counter!("ringcache_gossip_push_pulls_total").absolute(g.push_pulls);
    gauge!("ringcache_gossip_local_health").set(f64::from(local_health));
    let st = &cluster.streaming;
    counter!("ringcache_stream_bytes_total").absolute(st.bytes.load(Relaxed));
    counter!("ringcache_stream_records_total").absolute(st.records.load(Relaxed));
    counter!("ringcache_stream_elements_total").absolute(st.elements.load(Relaxed));
    counter!("ringcache_stream_ranges_done_total").absolute(st.ranges_done.load(Relaxed));
    gauge!("ringcache_stream_ranges_pending").set(st.ranges_pending.load(Relaxed) as f64);
    counter!("ringcache_stream_records_discarded_total")
        .absolute(st.records_discarded.load(Relaxed));
    publish_repair(cluster);
}

/// Anti-entropy figures: counters, and gauges of how current the repairs are.
fn publish_repair(cluster: &Cluster) {
    for (name, value) in cluster.repair.stats.named() {
        match name {
            "ranges_in_progress" | "last_round_ms" => {
                gauge!(format!("ringcache_repair_{name}")).set(value as f64);
            }
            _ => counter!(format!("ringcache_repair_{name}_total")).absolute(value),
        }
    }
    let ages = crate::cluster::repair::ages(cluster);
    gauge!("ringcache_repair_ranges").set(ages.ranges as f64);
    gauge!("ringcache_repair_ranges_never_repaired").set(ages.never as f64);
    gauge!("ringcache_repair_ranges_overdue").set(ages.overdue as f64);
    gauge!("ringcache_repair_oldest_age_seconds").set(ages.oldest_s as f64);
}

fn publish_once(node: &Node, published_latency: &mut [[u64; LATENCY_BUCKETS]]) {
    let s = &node.stats;
    counter!("ringcache_connections_received_total").absolute(s.connections_received.load(Relaxed));
    counter!("ringcache_connections_rejected_total").absolute(s.connections_rejected.load(Relaxed));
    counter!("ringcache_protocol_errors_total").absolute(s.protocol_errors.load(Relaxed));
    counter!("ringcache_keyspace_hits_total").absolute(s.keyspace_hits.load(Relaxed));
    counter!("ringcache_keyspace_misses_total").absolute(s.keyspace_misses.load(Relaxed));
    counter!("ringcache_evicted_keys_total").absolute(s.evicted_keys.load(Relaxed));
    let p = &node.pubsub.stats;
    counter!("ringcache_pubsub_published_total").absolute(p.published.load(Relaxed));
    counter!("ringcache_pubsub_received_from_peers_total")
        .absolute(p.received_from_peers.load(Relaxed));
    counter!("ringcache_pubsub_delivered_total").absolute(p.delivered.load(Relaxed));
    counter!("ringcache_pubsub_slow_subscribers_disconnected_total")
        .absolute(p.slow_subscribers_disconnected.load(Relaxed));
    counter!("ringcache_net_input_bytes_total").absolute(s.net_input_bytes.load(Relaxed));
    counter!("ringcache_net_output_bytes_total").absolute(s.net_output_bytes.load(Relaxed));
    gauge!("ringcache_connected_clients").set(node.clients.connected() as f64);
    gauge!("ringcache_blocked_clients").set(node.clients.blocked.count() as f64);
    let store = node.store.stats();
    gauge!("ringcache_keys").set(store.keys as f64);
    gauge!("ringcache_keys_with_expiry").set(store.keys_with_expiry as f64);
    gauge!("ringcache_tombstones").set(store.tombstones as f64);
    gauge!("ringcache_repair_tree_bytes").set(node.store.merkle().bytes() as f64);
    gauge!("ringcache_used_memory_bytes").set(store.used_bytes as f64);
    counter!("ringcache_expired_keys_total").absolute(store.expired as u64);
    for (name, value) in node.store.engine_stats() {
        gauge!("ringcache_storage", "stat" => name).set(value as f64);
    }
    for (kind, count) in s.error_counts() {
        counter!("ringcache_errors_total", "kind" => kind).absolute(count);
    }
    let names = TABLE
        .iter()
        .map(|c| c.name)
        .chain(std::iter::once("unknown"));
    for ((name, stats), published) in names
        .zip(s.commands.iter())
        .zip(published_latency.iter_mut())
    {
        let calls = stats.calls.load(Relaxed);
        if calls == 0 {
            continue;
        }
        counter!("ringcache_commands_total", "command" => name).absolute(calls);
        counter!("ringcache_command_errors_total", "command" => name)
            .absolute(stats.failed.load(Relaxed));
        let latency = histogram!("ringcache_command_duration_seconds", "command" => name);
        record_new(&latency, &stats.latency, published);
    }
}
