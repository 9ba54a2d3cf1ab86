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

use crate::exec::table::COMMANDS;
use crate::node::Node;
use crate::stats::{ERROR_KINDS, LATENCY_BUCKETS, latency_bucket_upper_s};

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
        .install()?;
    tokio::spawn(publish(node));
    Ok(())
}

async fn publish(node: Arc<Node>) {
    let mut published_latency = vec![[0u64; LATENCY_BUCKETS]; COMMANDS.len() + 1];
    let mut tick = tokio::time::interval(PUBLISH_INTERVAL);
    loop {
        tick.tick().await;
        publish_once(&node, &mut published_latency);
    }
}

fn publish_once(node: &Node, published_latency: &mut [[u64; LATENCY_BUCKETS]]) {
    let s = &node.stats;
    counter!("ringcache_connections_received_total").absolute(s.connections_received.load(Relaxed));
    counter!("ringcache_connections_rejected_total").absolute(s.connections_rejected.load(Relaxed));
    counter!("ringcache_protocol_errors_total").absolute(s.protocol_errors.load(Relaxed));
    counter!("ringcache_keyspace_hits_total").absolute(s.keyspace_hits.load(Relaxed));
    counter!("ringcache_keyspace_misses_total").absolute(s.keyspace_misses.load(Relaxed));
    counter!("ringcache_evicted_keys_total").absolute(s.evicted_keys.load(Relaxed));
    counter!("ringcache_net_input_bytes_total").absolute(s.net_input_bytes.load(Relaxed));
    counter!("ringcache_net_output_bytes_total").absolute(s.net_output_bytes.load(Relaxed));
    gauge!("ringcache_connected_clients").set(node.clients.connected() as f64);
    let store = node.store.stats();
    gauge!("ringcache_keys").set(store.keys as f64);
    gauge!("ringcache_keys_with_expiry").set(store.keys_with_expiry as f64);
    gauge!("ringcache_tombstones").set(store.tombstones as f64);
    gauge!("ringcache_used_memory_bytes").set(store.used_bytes as f64);
    counter!("ringcache_expired_keys_total").absolute(store.expired as u64);
    for (name, value) in node.store.engine_stats() {
        gauge!("ringcache_storage", "stat" => name).set(value as f64);
    }
    for (kind, count) in ERROR_KINDS.iter().zip(s.errors.iter()) {
        counter!("ringcache_errors_total", "kind" => *kind).absolute(count.load(Relaxed));
    }
    let names = COMMANDS
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
        for (bucket, (count, seen)) in stats.latency.iter().zip(published.iter_mut()).enumerate() {
            let count = count.load(Relaxed);
            // A CONFIG RESETSTAT makes counts go down: publish from the new zero.
            let new = count.saturating_sub(*seen);
            *seen = count;
            if new > 0 {
                latency.record_many(latency_bucket_upper_s(bucket), new as usize);
            }
        }
    }
}
