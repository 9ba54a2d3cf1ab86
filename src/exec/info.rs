//! `INFO [section ...]`: the server's state and counters in Redis's sections and field names,
//! plus `# Cluster`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ringcache_resp::cmd::TABLE;

use super::connection::REDIS_COMPATIBLE_VERSION;
use crate::config::StorageEngine;
use crate::node::Node;

/// Sections `INFO` prints with no argument or `default`.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Writes one `INFO` section's lines.
type InfoSection = fn(&Node, &mut String);

/// The `INFO` text for the requested sections.
pub fn info(node: &Node, requested: &[Bytes]) -> String {
    let requested: Vec<String> = requested
        .iter()
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
        .collect();
    let everything = requested.iter().any(|s| s == "all" || s == "everything");
    let wanted = |section: &str| {
        everything
            || requested.iter().any(|s| s == section)
            || ((requested.is_empty() || requested.iter().any(|s| s == "default"))
                && DEFAULT_SECTIONS.contains(&section))
    };
    let mut out = String::new();
    let sections: [(&str, InfoSection); 11] = [
        ("server", info_server),
        ("clients", info_clients),
        ("memory", info_memory),
        ("persistence", info_persistence),
        ("stats", info_stats),
        ("replication", info_replication),
        ("cpu", info_cpu),
        ("commandstats", info_commandstats),
        ("errorstats", info_errorstats),
        ("cluster", info_cluster),
        ("keyspace", info_keyspace),
    ];
    for (name, write) in sections {
        if wanted(name) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            let mut title = name.to_string();
            title[..1].make_ascii_uppercase();
            let title = match name {
                "cpu" => "CPU".to_string(),
                "commandstats" => "Commandstats".to_string(),
                _ => title,
            };
            let _ = write!(out, "# {title}\r\n");
            write(node, &mut out);
        }
    }
    out
}

macro_rules! line {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
        $out.push_str("\r\n");
    }};
}

fn info_server(node: &Node, out: &mut String) {
    let config = node.config.read();
    let uptime = node.stats.started.elapsed().as_secs();
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros();
    line!(out, "redis_version:{REDIS_COMPATIBLE_VERSION}");
    line!(out, "ringcache_version:{}", env!("CARGO_PKG_VERSION"));
    line!(out, "redis_mode:standalone");
    line!(
        out,
        "os:{} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    line!(out, "arch_bits:{}", usize::BITS);
    line!(out, "process_id:{}", std::process::id());
    line!(out, "run_id:{}", node.run_id);
    line!(out, "tcp_port:{}", config.port);
    line!(out, "server_time_usec:{now_us}");
    line!(out, "uptime_in_seconds:{uptime}");
    line!(out, "uptime_in_days:{}", uptime / 86_400);
    line!(
        out,
        "executable:{}",
        std::env::current_exe().unwrap_or_default().display()
    );
}

fn info_clients(node: &Node, out: &mut String) {
    line!(out, "connected_clients:{}", node.clients.connected());
    line!(out, "maxclients:{}", node.config.read().maxclients);
    line!(out, "blocked_clients:{}", node.clients.blocked.count());
}

/// Resident set size from /proc, 0 where it cannot be read.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2}G", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.2}M", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.2}K", b as f64 / 1024.0),
        b => format!("{b}B"),
    }
}

fn info_memory(node: &Node, out: &mut String) {
    let used = node.store.stats().used_bytes as u64;
    let rss = rss_bytes();
    line!(out, "used_memory:{used}");
    line!(out, "used_memory_human:{}", human_bytes(used));
    line!(out, "used_memory_rss:{rss}");
    line!(out, "used_memory_rss_human:{}", human_bytes(rss));
    let (maxmemory, policy) = {
        let config = node.config.read();
        (config.maxmemory_bytes, config.maxmemory_policy)
    };
    line!(out, "maxmemory:{maxmemory}");
    line!(out, "maxmemory_human:{}", human_bytes(maxmemory));
    line!(out, "maxmemory_policy:{policy}");
    line!(out, "mem_allocator:libc");
    line!(out, "storage_engine:{}", node.config.read().storage);
}

fn info_persistence(node: &Node, out: &mut String) {
    let config = node.config.read();
    line!(out, "loading:0");
    line!(out, "rdb_changes_since_last_save:0");
    // The log engine is an append-only log, so it reports as Redis's AOF does.
    line!(
        out,
        "aof_enabled:{}",
        u8::from(config.storage == StorageEngine::Log)
    );
    line!(out, "appendfsync:{}", config.appendfsync);
    for (name, value) in node.store.engine_stats() {
        line!(out, "{}_{name}:{value}", config.storage);
    }
}

fn info_stats(node: &Node, out: &mut String) {
    let s = &node.stats;
    let errors: u64 = s.errors.iter().map(|e| e.load(Relaxed)).sum();
    line!(
        out,
        "total_connections_received:{}",
        s.connections_received.load(Relaxed)
    );
    line!(
        out,
        "total_commands_processed:{}",
        s.commands_processed.load(Relaxed)
    );
    line!(
        out,
        "total_net_input_bytes:{}",
        s.net_input_bytes.load(Relaxed)
    );
    line!(
        out,
        "total_net_output_bytes:{}",
        s.net_output_bytes.load(Relaxed)
    );
    line!(
        out,
        "rejected_connections:{}",
        s.connections_rejected.load(Relaxed)
    );
    line!(out, "expired_keys:{}", node.store.stats().expired);
    line!(out, "evicted_keys:{}", s.evicted_keys.load(Relaxed));
    line!(out, "keyspace_hits:{}", s.keyspace_hits.load(Relaxed));
    line!(out, "keyspace_misses:{}", s.keyspace_misses.load(Relaxed));
    line!(out, "pubsub_channels:{}", node.pubsub.channels(None).len());
    line!(out, "pubsub_patterns:{}", node.pubsub.pattern_count());
    line!(out, "pubsubshard_channels:0");
    line!(out, "total_error_replies:{errors}");
    line!(out, "protocol_errors:{}", s.protocol_errors.load(Relaxed));
}

fn info_replication(_node: &Node, out: &mut String) {
    line!(out, "role:master");
    line!(out, "connected_slaves:0");
}

/// CPU seconds (user, system) of this process from /proc.
fn cpu_seconds() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    const TICKS_PER_SECOND: f64 = 100.0;
    (ticks(11) / TICKS_PER_SECOND, ticks(12) / TICKS_PER_SECOND)
}

fn info_cpu(_node: &Node, out: &mut String) {
    let (user, sys) = cpu_seconds();
    line!(out, "used_cpu_sys:{sys:.6}");
    line!(out, "used_cpu_user:{user:.6}");
}

fn info_commandstats(node: &Node, out: &mut String) {
    for (spec, stats) in TABLE.iter().zip(node.stats.commands.iter()) {
        let calls = stats.calls.load(Relaxed);
        if calls == 0 {
            continue;
        }
        let usec = stats.usec.load(Relaxed);
        line!(
            out,
            "cmdstat_{}:calls={calls},usec={usec},usec_per_call={:.2},rejected_calls=0,\
             failed_calls={}",
            spec.name,
            usec as f64 / calls as f64,
            stats.failed.load(Relaxed)
        );
    }
}

fn info_errorstats(node: &Node, out: &mut String) {
    for (kind, count) in node.stats.error_counts() {
        if count > 0 {
            line!(out, "errorstat_{kind}:count={count}");
        }
    }
}

fn info_cluster(node: &Node, out: &mut String) {
    out.push_str(&super::ring::info_lines(node));
}

fn info_keyspace(node: &Node, out: &mut String) {
    let stats = node.store.stats();
    if stats.keys > 0 {
        line!(
            out,
            "db0:keys={},expires={},avg_ttl=0",
            stats.keys,
            stats.keys_with_expiry
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::testing::{node, run, session};

    #[test]
    fn info_has_the_default_sections_and_keyspace() {
        let node = node();
        let mut s = session(&node);
        run(&node, &mut s, "SET k v EX 100");
        let text = info(&node, &[]);
        for section in [
            "# Server",
            "# Clients",
            "# Memory",
            "# Stats",
            "# Cluster",
            "# Keyspace",
        ] {
            assert!(text.contains(section), "{section} missing");
        }
        assert!(text.contains("db0:keys=1,expires=1"));
        assert!(!text.contains("# Commandstats"));
        assert!(
            info(&node, &[Bytes::from_static(b"commandstats")]).contains("cmdstat_set:calls=1")
        );
    }
}
