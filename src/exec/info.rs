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

/// Every section, in Redis 7.0's order, with whether `INFO` without arguments (or
/// `default`) prints it; `all` and `everything` print them all (ringcache has no modules,
/// whose own sections are what `everything` adds to `all` in Redis). `# Cluster` holds
/// ringcache's ring fields after Redis's `cluster_enabled`.
const SECTIONS: [(&str, InfoSection, bool); 13] = [
    ("server", info_server, true),
    ("clients", info_clients, true),
    ("memory", info_memory, true),
    ("persistence", info_persistence, true),
    ("stats", info_stats, true),
    ("replication", info_replication, true),
    ("cpu", info_cpu, true),
    ("modules", info_modules, true),
    ("commandstats", info_commandstats, false),
    ("errorstats", info_errorstats, true),
    ("latencystats", info_latencystats, false),
    ("cluster", info_cluster, true),
    ("keyspace", info_keyspace, true),
];

/// Writes one `INFO` section's lines.
type InfoSection = fn(&Node, &mut String);

/// The `INFO` text for the requested sections (names case-insensitive, several at once,
/// `all`, `default` and `everything` among them), each printed once in Redis's order.
pub fn info(node: &Node, requested: &[Bytes]) -> String {
    let requested: Vec<String> = requested
        .iter()
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
        .collect();
    let asked = |name: &str| requested.iter().any(|s| s == name);
    let everything = asked("all") || asked("everything");
    let defaults = requested.is_empty() || asked("default");
    let mut out = String::new();
    for (name, write, default) in SECTIONS {
        if everything || asked(name) || (defaults && default) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            let _ = write!(out, "# {}\r\n", section_title(name));
            write(node, &mut out);
        }
    }
    out
}

/// A section's title as Redis prints it: capitalized, `CPU` in capitals.
fn section_title(name: &str) -> String {
    match name {
        "cpu" => "CPU".to_string(),
        _ => {
            let mut title = name.to_string();
            title[..1].make_ascii_uppercase();
            title
        }
    }
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

/// Redis's `repl-backlog-size` default, which `INFO replication` reports (ringcache keeps no
/// replication backlog: its replicas are peers, see docs/cluster.md).
const REPL_BACKLOG_BYTES: u64 = 1024 * 1024;

/// A master with no replicas and no backlog, as a fresh redis-server reports itself: a
/// ringcache node is never a Redis replica nor has one. The replication id is the run id.
fn info_replication(node: &Node, out: &mut String) {
    line!(out, "role:master");
    line!(out, "connected_slaves:0");
    line!(out, "master_failover_state:no-failover");
    line!(out, "master_replid:{}", node.run_id);
    line!(out, "master_replid2:{}", "0".repeat(node.run_id.len()));
    line!(out, "master_repl_offset:0");
    line!(out, "second_repl_offset:-1");
    line!(out, "repl_backlog_active:0");
    line!(out, "repl_backlog_size:{REPL_BACKLOG_BYTES}");
    line!(out, "repl_backlog_first_byte_offset:0");
    line!(out, "repl_backlog_histlen:0");
}

/// CPU seconds (user, system) from a `/proc/.../stat` file: of the process
/// (`/proc/self/stat`) or of one thread (`/proc/self/task/<tid>/stat`); 0 where it cannot be
/// read.
fn cpu_seconds(stat_path: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
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

/// Redis's CPU fields. ringcache forks no children (no RDB, no AOF rewrite), so theirs are
/// 0; the main thread is the process's first (it accepts connections and runs the tokio
/// runtime's timers), the rest of the work is on the runtime's workers, in the totals.
fn info_cpu(_node: &Node, out: &mut String) {
    let (user, sys) = cpu_seconds("/proc/self/stat");
    let main_thread = format!("/proc/self/task/{}/stat", std::process::id());
    let (main_user, main_sys) = cpu_seconds(&main_thread);
    line!(out, "used_cpu_sys:{sys:.6}");
    line!(out, "used_cpu_user:{user:.6}");
    line!(out, "used_cpu_sys_children:0.000000");
    line!(out, "used_cpu_user_children:0.000000");
    line!(out, "used_cpu_sys_main_thread:{main_sys:.6}");
    line!(out, "used_cpu_user_main_thread:{main_user:.6}");
}

/// ringcache loads no modules: the section is printed empty, as by a redis-server without.
fn info_modules(_node: &Node, _out: &mut String) {}

/// A line per command called, rejected or failed since the start (or `CONFIG RESETSTAT`),
/// in the command table's order (Redis's is its hash table's); a rejected call is counted
/// apart from `calls` and not timed, as in Redis.
fn info_commandstats(node: &Node, out: &mut String) {
    for (spec, stats) in TABLE.iter().zip(node.stats.commands.iter()) {
        let calls = stats.calls.load(Relaxed);
        let rejected = stats.rejected.load(Relaxed);
        let failed = stats.failed.load(Relaxed);
        if calls == 0 && rejected == 0 && failed == 0 {
            continue;
        }
        let usec = stats.usec.load(Relaxed);
        let per_call = if calls == 0 {
            0.0
        } else {
            usec as f64 / calls as f64
        };
        line!(
            out,
            "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per_call:.2},\
             rejected_calls={rejected},failed_calls={failed}",
            spec.name,
        );
    }
}

/// Each kind of error answered at least once, by name as Redis sorts them (its radix tree).
fn info_errorstats(node: &Node, out: &mut String) {
    let mut counts: Vec<(&str, u64)> = node
        .stats
        .error_counts()
        .filter(|(_, count)| *count > 0)
        .collect();
    counts.sort_unstable_by_key(|(kind, _)| *kind);
    for (kind, count) in counts {
        line!(out, "errorstat_{kind}:count={count}");
    }
}

/// The percentiles Redis 7.0 prints by default (`latency-tracking-info-percentiles`).
const LATENCY_PERCENTILES: [f64; 3] = [50.0, 99.0, 99.9];

/// Each timed command's latency percentiles, in microseconds as Redis prints them. Redis
/// keeps an HdrHistogram (3 significant digits); ringcache keeps power-of-two buckets
/// (`crate::stats::LATENCY_BUCKETS`), so a percentile here is the upper bound of its bucket:
/// never below the true value, at most twice it.
fn info_latencystats(node: &Node, out: &mut String) {
    for (spec, stats) in TABLE.iter().zip(node.stats.commands.iter()) {
        let buckets: Vec<u64> = stats.latency.iter().map(|b| b.load(Relaxed)).collect();
        let total: u64 = buckets.iter().sum();
        if total == 0 {
            continue;
        }
        let percentiles: Vec<String> = LATENCY_PERCENTILES
            .iter()
            .map(|&p| {
                let usec = percentile_usec(&buckets, total, p);
                format!("p{}={usec:.3}", format_percentile(p))
            })
            .collect();
        line!(
            out,
            "latency_percentiles_usec_{}:{}",
            spec.name,
            percentiles.join(",")
        );
    }
}

/// The upper bound, in microseconds, of the bucket holding the `p`th percentile of `total`
/// samples spread over `buckets`.
fn percentile_usec(buckets: &[u64], total: u64, p: f64) -> f64 {
    let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (bucket, count) in buckets.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return crate::stats::latency_bucket_upper_s(bucket) * 1e6;
        }
    }
    crate::stats::latency_bucket_upper_s(buckets.len() - 1) * 1e6
}

/// A percentile as Redis names it: `50`, `99`, `99.9` (no trailing zeros).
fn format_percentile(p: f64) -> String {
    let text = format!("{p}");
    text.strip_suffix(".0").map_or(text.clone(), str::to_string)
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
