//! Configuration: command-line flags and a TOML file, merged and validated at start.
//!
//! Every setting is a flag (`--data-dir`) and a key of the TOML file with the same spelling
//! (`data-dir = "..."`); a flag wins over the file, the file over the default. `validate`
//! rejects nonsense before anything starts, naming the field.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use ringcache_cluster::{NodeId, REPLICAS_MAX, VNODES_DEFAULT};
use ringcache_resp::Level;
use ringcache_storage::eviction::MAXMEMORY_SAMPLES_DEFAULT;
use ringcache_storage::{EvictionPolicy, FsyncPolicy};
use serde::{Deserialize, Deserializer};

/// Redis's default and maximum for one bulk argument (`proto-max-bulk-len`).
pub const PROTO_MAX_BULK_LEN_DEFAULT: u64 = 512 * 1024 * 1024;
/// Redis's default limit for one client's unparsed input (`client-query-buffer-limit`).
pub const QUERY_BUFFER_BYTES_DEFAULT: u64 = 1024 * 1024 * 1024;
/// Redis's smallest accepted value for both byte limits above.
pub const BYTE_LIMIT_MIN: u64 = 1024 * 1024;
/// Redis's largest accepted value for both byte limits above (`LLONG_MAX`).
pub const BYTE_LIMIT_MAX: u64 = i64::MAX as u64;
/// Most runtime worker threads (`--threads`); far past any core count.
pub const THREADS_MAX: usize = 1024;
/// Redis's default `maxclients`.
pub const CLIENTS_MAX_DEFAULT: u32 = 10_000;
/// Default size of one log segment file.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// Smallest log segment accepted: a segment must hold a useful number of records.
pub const SEGMENT_BYTES_MIN: u64 = 1024 * 1024;
/// Largest log segment accepted: segments are mapped whole, with offsets kept in 32 bits.
pub const SEGMENT_BYTES_MAX: u64 = 1024 * 1024 * 1024;
/// Redis's largest accepted `maxmemory-samples` (`INT_MAX`).
pub const MAXMEMORY_SAMPLES_MAX: u32 = i32::MAX as u32;

/// The storage engine (`--storage`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageEngine {
    /// Records in memory only, lost on restart: a pure cache.
    Memory,
    /// The log-structured engine on disk under `data-dir`: survives restarts and kill -9.
    #[default]
    Log,
}

impl std::fmt::Display for StorageEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StorageEngine::Memory => "memory",
            StorageEngine::Log => "log",
        })
    }
}

/// When the log engine calls fsync (`--appendfsync`, Redis's names and meanings).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppendFsync {
    /// Before acknowledging each write (writers share one fsync: group commit).
    Always,
    /// Once a second: a crash loses at most about the last second of writes.
    #[default]
    Everysec,
    /// Never explicitly; the kernel writes back when it likes.
    No,
}

impl From<AppendFsync> for FsyncPolicy {
    fn from(policy: AppendFsync) -> FsyncPolicy {
        match policy {
            AppendFsync::Always => FsyncPolicy::Always,
            AppendFsync::Everysec => FsyncPolicy::EverySec,
            AppendFsync::No => FsyncPolicy::No,
        }
    }
}

impl AppendFsync {
    /// Redis's name of the policy.
    pub fn name(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::Everysec => "everysec",
            AppendFsync::No => "no",
        }
    }

    /// Parses Redis's names in any case.
    ///
    /// # Errors
    /// [`ValueError::NotAppendFsync`] when `text` names no policy.
    pub fn parse(text: &str) -> Result<AppendFsync, ValueError> {
        [AppendFsync::Always, AppendFsync::Everysec, AppendFsync::No]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(text))
            .ok_or(ValueError::NotAppendFsync)
    }
}

impl std::fmt::Display for AppendFsync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a byte count with Redis's units: `1k` = 1000, `1kb` = 1024, up to `g`/`gb`, any
/// case; a plain number is bytes.
///
/// # Errors
/// [`ValueError::NotMemory`] for anything else, or a count past `u64`.
pub fn parse_memory(value: &str) -> Result<u64, ValueError> {
    let lower = value.to_ascii_lowercase();
    let units: [(&str, u64); 6] = [
        ("kb", 1 << 10),
        ("mb", 1 << 20),
        ("gb", 1 << 30),
        ("k", 1_000),
        ("m", 1_000_000),
        ("g", 1_000_000_000),
    ];
    let (digits, multiplier) = units
        .iter()
        .find_map(|(suffix, m)| lower.strip_suffix(suffix).map(|d| (d, *m)))
        .unwrap_or((lower.as_str(), 1));
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or(ValueError::NotMemory)
}

/// Why a value of a setting was refused, wherever it was given (flag, file or `CONFIG
/// SET`). `Display` is Redis's `CONFIG SET` reason word for word; at start it follows the
/// field's name ([`ConfigError::Invalid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not an integer (only `CONFIG SET` reads integers itself; flags and the file are
    /// typed).
    #[error("argument couldn't be parsed into an integer")]
    NotInteger,
    /// Not a byte count with Redis's units ([`parse_memory`]).
    #[error("argument must be a memory value")]
    NotMemory,
    /// Not the name of an fsync policy ([`AppendFsync::parse`]), listed in Redis's order.
    #[error("argument(s) must be one of the following: everysec, always, no")]
    NotAppendFsync,
    /// An integer outside the field's range.
    #[error("argument must be between {min} and {max} inclusive")]
    OutOfRange {
        /// The smallest value accepted.
        min: u64,
        /// The largest value accepted.
        max: u64,
    },
}

/// A memory value in the TOML file: a number of bytes or a string with Redis's units.
fn deserialize_memory<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Bytes(n) => Ok(Some(n)),
        Raw::Text(text) => parse_memory(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// Settings as given on the command line or in the TOML file; `None` means not given.
#[derive(Debug, Default, Parser, Deserialize)]
#[command(
    name = "ringcache",
    version,
    about = "A Redis-protocol cache-store that runs as a leaderless Dynamo-style cluster.",
    long_about = "A Redis-protocol cache-store. Point redis-cli or any Redis client at it.\n\
                  Every flag is also a key of the TOML file given with --config (same \
                  spelling, e.g. data-dir = \"./data\"); flags win over the file."
)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// TOML file with settings (keys spelled like the flags, e.g. `port = 6380`).
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// Address to listen on for clients and metrics [default: 127.0.0.1].
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<IpAddr>,

    /// TCP port for Redis clients [default: 6379].
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,

    /// Directory for the node's data; created if missing [default: ./data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// HTTP port serving Prometheus metrics at /metrics; 0 turns it off [default: 9379].
    #[arg(long, value_name = "PORT")]
    pub metrics_port: Option<u16>,

    /// Password that clients must give with AUTH or HELLO before any other command.
    /// Unset: no authentication. (Also read from RINGCACHE_REQUIREPASS.)
    #[arg(
        long,
        value_name = "PASS",
        env = "RINGCACHE_REQUIREPASS",
        hide_env_values = true
    )]
    pub requirepass: Option<String>,

    /// Most clients connected at once; the next one is told
    /// "ERR max number of clients reached" [default: 10000].
    #[arg(long, value_name = "N")]
    pub maxclients: Option<u32>,

    /// Close a client connection idle for this many seconds; 0 never does [default: 0].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,

    /// Worker threads serving clients and peers [default: the number of CPUs]. Give each
    /// node a share of the CPUs when several run on one machine (a local cluster): more
    /// runnable threads than cores cost context switches on every request.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Largest single argument (bulk string) a client may send, and largest value a command
    /// may build, in bytes [default: 536870912, i.e. 512 MiB; at least 1 MiB].
    #[arg(long, value_name = "BYTES")]
    pub proto_max_bulk_len: Option<u64>,

    /// Most unparsed input buffered for one client, in bytes; past it the client is closed
    /// [default: 1073741824, i.e. 1 GiB; at least 1 MiB].
    #[arg(long, value_name = "BYTES")]
    pub client_query_buffer_limit: Option<u64>,

    /// Default consistency level of reads: ONE, TWO, THREE, QUORUM, ALL or a count
    /// [default: QUORUM].
    #[arg(long, value_name = "LEVEL")]
    pub read_consistency: Option<String>,

    /// Default consistency level of writes: ONE, TWO, THREE, QUORUM, ALL, ANY or a count
    /// [default: QUORUM].
    #[arg(long, value_name = "LEVEL")]
    pub write_consistency: Option<String>,

    /// Memory limit for data, in bytes or with Redis's units (100mb, 1gb; 1k = 1000,
    /// 1kb = 1024); past it, writes evict keys by --maxmemory-policy or answer -OOM.
    /// 0 = no limit [default: 0].
    #[arg(long, value_name = "BYTES", value_parser = parse_memory)]
    #[serde(default, deserialize_with = "deserialize_memory")]
    pub maxmemory: Option<u64>,

    /// What a write does past --maxmemory: noeviction (answer -OOM), allkeys-lru,
    /// allkeys-lfu, allkeys-random, volatile-lru, volatile-lfu, volatile-random or
    /// volatile-ttl (volatile-*: only keys with an expiry) [default: noeviction].
    #[arg(long, value_name = "POLICY")]
    pub maxmemory_policy: Option<String>,

    /// Keys sampled per eviction by the LRU, LFU and TTL policies: more is closer to exact
    /// and slower; Redis's advice is 5, 10 is very close to true LRU [default: 5].
    #[arg(long, value_name = "N")]
    pub maxmemory_samples: Option<u32>,

    /// Storage engine: log (an append-only log on disk under --data-dir, read through
    /// memory maps; survives restarts) or memory (a pure cache, lost on restart)
    /// [default: log].
    #[arg(long, value_name = "ENGINE")]
    pub storage: Option<StorageEngine>,

    /// Size of one log segment file, in bytes or with Redis's units (64mb); compaction
    /// rewrites whole segments, so smaller ones reclaim space sooner [default: 64mb,
    /// at least 1mb].
    #[arg(long, value_name = "BYTES", value_parser = parse_memory)]
    #[serde(default, deserialize_with = "deserialize_memory")]
    pub segment_bytes: Option<u64>,

    /// When the log engine calls fsync: always (before each acknowledgement), everysec
    /// (lose at most about a second on a crash) or no (the kernel decides)
    /// [default: everysec].
    #[arg(long, value_name = "WHEN")]
    pub appendfsync: Option<AppendFsync>,

    /// TCP port for the other nodes of the cluster (peer protocol); opened when --seeds or
    /// --peer-port is given [default: 16379].
    #[arg(long, value_name = "PORT")]
    pub peer_port: Option<u16>,

    /// The cluster's members as HOST:PEERPORT,... (the same list on every node; a node
    /// skips itself). Unset: a single node.
    #[arg(long, value_name = "LIST")]
    pub seeds: Option<String>,

    /// This node's id, 16 hex digits [default: drawn once and kept in the data dir].
    #[arg(long, value_name = "ID")]
    pub node_id: Option<String>,

    /// Name of the cluster; peers with another name are refused [default: ringcache].
    #[arg(long, value_name = "NAME")]
    pub cluster_name: Option<String>,

    /// Secret shared by every node, proving membership in the peer handshake; required in a
    /// cluster. (Also read from RINGCACHE_CLUSTER_SECRET.)
    #[arg(
        long,
        value_name = "SECRET",
        env = "RINGCACHE_CLUSTER_SECRET",
        hide_env_values = true
    )]
    pub cluster_secret: Option<String>,

    /// Replicas of each key, N [default: 3].
    #[arg(long, value_name = "N")]
    pub replication_factor: Option<usize>,

    /// Tokens per node on the ring [default: 512].
    #[arg(long, value_name = "K")]
    pub vnodes: Option<u16>,

    /// How long a read waits for its replicas before -TIMEOUT [default: 1000].
    #[arg(long, value_name = "MS")]
    pub read_timeout_ms: Option<u64>,

    /// How long a write waits for its replicas' acks before -TIMEOUT [default: 1000].
    #[arg(long, value_name = "MS")]
    pub write_timeout_ms: Option<u64>,

    /// Hints for a replica that missed writes are kept this long, then dropped (anti-entropy
    /// repairs the rest); 0 keeps no hints [default: 10800000, 3 hours].
    #[arg(long, value_name = "MS")]
    pub hint_window_ms: Option<u64>,

    /// Largest clock offset tolerated: past it this node refuses to coordinate writes
    /// (-CLOCKSKEW) and replicas refuse versions that far ahead [default: 500].
    #[arg(long, value_name = "MS")]
    pub max_clock_offset_ms: Option<u64>,

    /// Streaming (join, decommission) moves at most this many megabytes a second; 0 does
    /// not limit it [default: 50].
    #[arg(long, value_name = "MB")]
    pub stream_throughput_mb: Option<u64>,

    /// Anti-entropy repair moves at most this many megabytes a second (digests, key lists
    /// and records); 0 does not limit it [default: 50].
    #[arg(long, value_name = "MB")]
    pub repair_throughput_mb: Option<u64>,

    /// Every range this node replicates is repaired with its other replicas at least this
    /// often (`RING REPAIR` runs one now) [default: 3600].
    #[arg(long, value_name = "S")]
    pub repair_interval_s: Option<u64>,
}

/// Redis's `busy-reply-threshold` default, milliseconds.
pub const BUSY_REPLY_THRESHOLD_MS_DEFAULT: u64 = 5_000;

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address for clients and metrics.
    pub bind: IpAddr,
    /// Client port.
    pub port: u16,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Metrics port, `None` when off.
    pub metrics_port: Option<u16>,
    /// Password required of clients, if any.
    pub requirepass: Option<String>,
    /// Most clients at once.
    pub maxclients: u32,
    /// Idle seconds before a client is closed; 0 = never.
    pub timeout_s: u64,
    /// Runtime worker threads, 1..=[`THREADS_MAX`].
    pub threads: usize,
    /// Largest bulk argument in bytes.
    pub proto_max_bulk_len: u64,
    /// Most unparsed bytes per client.
    pub query_buffer_bytes_max: u64,
    /// Default read level.
    pub read_level: Level,
    /// Default write level.
    pub write_level: Level,
    /// Memory limit for data in bytes (`maxmemory`); 0 = none.
    pub maxmemory_bytes: u64,
    /// What writes do past the limit.
    pub maxmemory_policy: EvictionPolicy,
    /// Keys sampled per eviction, 1..=[`MAXMEMORY_SAMPLES_MAX`].
    pub maxmemory_samples: u32,
    /// `notify-keyspace-events`: the event classes sent (`crate::notify`); set at run time
    /// only, by `CONFIG SET`, as a cache's clients turn them on.
    pub notify_keyspace_events: u32,
    /// `busy-reply-threshold` (alias `lua-time-limit`), milliseconds: past it a running
    /// script makes the node answer `BUSY` and `SCRIPT KILL` may stop it; run time only.
    pub busy_reply_threshold_ms: u64,
    /// The storage engine.
    pub storage: StorageEngine,
    /// The log engine's fsync policy.
    pub appendfsync: AppendFsync,
    /// The log engine's segment size in bytes.
    pub segment_bytes: u64,
    /// Cluster settings.
    pub cluster: ClusterConfig,
}

/// Default peer port: the client port's default plus 10,000, as Redis Cluster's bus.
pub const PEER_PORT_DEFAULT: u16 = 16379;
/// Default read and write timeout.
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 1_000;
/// Default hint window: 3 hours, as Cassandra's max_hint_window.
pub const HINT_WINDOW_MS_DEFAULT: u64 = 3 * 60 * 60 * 1000;
/// Default largest clock offset tolerated.
pub const MAX_CLOCK_OFFSET_MS_DEFAULT: u64 = 500;
/// Default streaming rate limit, MB/s (Cassandra's default is 24 MiB/s per node).
pub const STREAM_THROUGHPUT_MB_DEFAULT: u64 = 50;
/// Default `--repair-throughput-mb`.
pub const REPAIR_THROUGHPUT_MB_DEFAULT: u64 = 50;
/// Default `--repair-interval-s`: an hour, as Riak's Tictac AAE exchanges often and cheaply
/// rather than Cassandra's weekly full repairs.
pub const REPAIR_INTERVAL_S_DEFAULT: u64 = 3600;
/// Default replication factor.
pub const REPLICATION_FACTOR_DEFAULT: usize = 3;

/// The cluster part of the configuration.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Whether this node talks to peers at all (`--seeds` or `--peer-port` given).
    pub enabled: bool,
    /// Peer port.
    pub peer_port: u16,
    /// Members' peer addresses as given, `host:port`.
    pub seeds: Vec<String>,
    /// This node's id, if given.
    pub node_id: Option<NodeId>,
    /// Cluster name.
    pub name: String,
    /// Shared secret; required when enabled.
    pub secret: Option<String>,
    /// N.
    pub replication_factor: usize,
    /// Tokens per node.
    pub vnodes: u16,
    /// Read timeout.
    pub read_timeout_ms: u64,
    /// Write timeout.
    pub write_timeout_ms: u64,
    /// Hint window; 0 = no hints.
    pub hint_window_ms: u64,
    /// Largest tolerated clock offset.
    pub max_clock_offset_ms: u64,
    /// Streaming rate limit, MB/s; 0 = none.
    pub stream_throughput_mb: u64,
    /// Anti-entropy rate limit, MB/s; 0 = none.
    pub repair_throughput_mb: u64,
    /// Longest time between two repairs of a range.
    pub repair_interval_s: u64,
}

impl ClusterConfig {
    fn from_settings(settings: &Settings) -> Result<ClusterConfig, ConfigError> {
        let seeds: Vec<String> = settings
            .seeds
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let node_id = match settings.node_id.as_deref() {
            None => None,
            Some(text) => Some(text.parse::<NodeId>().map_err(|_| ConfigError::Invalid {
                field: "node-id",
                reason: "must be 1 to 16 hexadecimal digits".into(),
            })?),
        };
        Ok(ClusterConfig {
            enabled: !seeds.is_empty() || settings.peer_port.is_some(),
            peer_port: settings.peer_port.unwrap_or(PEER_PORT_DEFAULT),
            seeds,
            node_id,
            name: settings
                .cluster_name
                .clone()
                .unwrap_or_else(|| "ringcache".into()),
            secret: settings.cluster_secret.clone().filter(|s| !s.is_empty()),
            replication_factor: settings
                .replication_factor
                .unwrap_or(REPLICATION_FACTOR_DEFAULT),
            vnodes: settings.vnodes.unwrap_or(VNODES_DEFAULT),
            read_timeout_ms: settings
                .read_timeout_ms
                .unwrap_or(REQUEST_TIMEOUT_MS_DEFAULT),
            write_timeout_ms: settings
                .write_timeout_ms
                .unwrap_or(REQUEST_TIMEOUT_MS_DEFAULT),
            hint_window_ms: settings.hint_window_ms.unwrap_or(HINT_WINDOW_MS_DEFAULT),
            max_clock_offset_ms: settings
                .max_clock_offset_ms
                .unwrap_or(MAX_CLOCK_OFFSET_MS_DEFAULT),
            stream_throughput_mb: settings
                .stream_throughput_mb
                .unwrap_or(STREAM_THROUGHPUT_MB_DEFAULT),
            repair_throughput_mb: settings
                .repair_throughput_mb
                .unwrap_or(REPAIR_THROUGHPUT_MB_DEFAULT),
            repair_interval_s: settings
                .repair_interval_s
                .unwrap_or(REPAIR_INTERVAL_S_DEFAULT),
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.into(),
            })
        };
        if self.enabled && self.peer_port == 0 {
            return invalid("peer-port", "must be 1..65535");
        }
        if self.enabled && self.secret.is_none() {
            return invalid(
                "cluster-secret",
                "required in a cluster (--seeds or --peer-port given); every node needs the same one",
            );
        }
        if !(1..=REPLICAS_MAX).contains(&self.replication_factor) {
            return invalid("replication-factor", "must be 1..8");
        }
        if self.vnodes == 0 {
            return invalid("vnodes", "must be 1..65535");
        }
        if self.read_timeout_ms == 0 || self.write_timeout_ms == 0 {
            return invalid("read-timeout-ms/write-timeout-ms", "must be at least 1");
        }
        if self.max_clock_offset_ms == 0 {
            return invalid("max-clock-offset-ms", "must be at least 1");
        }
        if self.repair_interval_s == 0 {
            return invalid("repair-interval-s", "must be at least 1");
        }
        if self.name.is_empty() || self.name.len() > 255 {
            return invalid("cluster-name", "must be 1..255 bytes");
        }
        for seed in &self.seeds {
            if seed
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(ConfigError::Invalid {
                    field: "seeds",
                    reason: format!("'{seed}' is not HOST:PORT"),
                });
            }
        }
        Ok(())
    }
}

/// A setting that cannot be used; the text names the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or has unknown keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// toml's message, with line and column.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid value for {field}: {reason}")]
    Invalid {
        /// The flag or key, as spelled by the user.
        field: &'static str,
        /// What is wrong and what is accepted.
        reason: String,
    },
}

impl Settings {
    /// Reads the TOML file named by `--config`, if any.
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
    pub fn load_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// Fills every unset field of `self` from `file`.
    fn or(self, file: Settings) -> Settings {
        Settings {
            config: self.config,
            bind: self.bind.or(file.bind),
            port: self.port.or(file.port),
            data_dir: self.data_dir.or(file.data_dir),
            metrics_port: self.metrics_port.or(file.metrics_port),
            requirepass: self.requirepass.or(file.requirepass),
            maxclients: self.maxclients.or(file.maxclients),
            timeout: self.timeout.or(file.timeout),
            threads: self.threads.or(file.threads),
            proto_max_bulk_len: self.proto_max_bulk_len.or(file.proto_max_bulk_len),
            client_query_buffer_limit: self
                .client_query_buffer_limit
                .or(file.client_query_buffer_limit),
            read_consistency: self.read_consistency.or(file.read_consistency),
            write_consistency: self.write_consistency.or(file.write_consistency),
            maxmemory: self.maxmemory.or(file.maxmemory),
            maxmemory_policy: self.maxmemory_policy.or(file.maxmemory_policy),
            maxmemory_samples: self.maxmemory_samples.or(file.maxmemory_samples),
            storage: self.storage.or(file.storage),
            segment_bytes: self.segment_bytes.or(file.segment_bytes),
            appendfsync: self.appendfsync.or(file.appendfsync),
            peer_port: self.peer_port.or(file.peer_port),
            seeds: self.seeds.or(file.seeds),
            node_id: self.node_id.or(file.node_id),
            cluster_name: self.cluster_name.or(file.cluster_name),
            cluster_secret: self.cluster_secret.or(file.cluster_secret),
            replication_factor: self.replication_factor.or(file.replication_factor),
            vnodes: self.vnodes.or(file.vnodes),
            read_timeout_ms: self.read_timeout_ms.or(file.read_timeout_ms),
            write_timeout_ms: self.write_timeout_ms.or(file.write_timeout_ms),
            hint_window_ms: self.hint_window_ms.or(file.hint_window_ms),
            max_clock_offset_ms: self.max_clock_offset_ms.or(file.max_clock_offset_ms),
            stream_throughput_mb: self.stream_throughput_mb.or(file.stream_throughput_mb),
            repair_throughput_mb: self.repair_throughput_mb.or(file.repair_throughput_mb),
            repair_interval_s: self.repair_interval_s.or(file.repair_interval_s),
        }
    }
}

impl Config {
    /// Builds the configuration from the command line (and the file it names).
    ///
    /// # Errors
    /// When the file cannot be used or a value is invalid.
    pub fn from_settings(cli: Settings) -> Result<Config, ConfigError> {
        let settings = match cli.config.clone() {
            Some(path) => cli.or(Settings::load_file(&path)?),
            None => cli,
        };
        let cluster = ClusterConfig::from_settings(&settings)?;
        let config = Config {
            bind: settings.bind.unwrap_or(IpAddr::from([127, 0, 0, 1])),
            port: settings.port.unwrap_or(6379),
            data_dir: settings.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
            metrics_port: match settings.metrics_port.unwrap_or(9379) {
                0 => None,
                port => Some(port),
            },
            requirepass: settings.requirepass.filter(|p| !p.is_empty()),
            maxclients: settings.maxclients.unwrap_or(CLIENTS_MAX_DEFAULT),
            timeout_s: settings.timeout.unwrap_or(0),
            threads: settings.threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
            }),
            proto_max_bulk_len: settings
                .proto_max_bulk_len
                .unwrap_or(PROTO_MAX_BULK_LEN_DEFAULT),
            query_buffer_bytes_max: settings
                .client_query_buffer_limit
                .unwrap_or(QUERY_BUFFER_BYTES_DEFAULT),
            read_level: parse_level("read-consistency", settings.read_consistency.as_deref())?,
            write_level: parse_level("write-consistency", settings.write_consistency.as_deref())?,
            maxmemory_bytes: settings.maxmemory.unwrap_or(0),
            maxmemory_policy: match settings.maxmemory_policy.as_deref() {
                None => EvictionPolicy::NoEviction,
                Some(text) => text.parse().map_err(|reason| ConfigError::Invalid {
                    field: "maxmemory-policy",
                    reason,
                })?,
            },
            maxmemory_samples: settings
                .maxmemory_samples
                .unwrap_or(MAXMEMORY_SAMPLES_DEFAULT as u32),
            notify_keyspace_events: 0,
            busy_reply_threshold_ms: BUSY_REPLY_THRESHOLD_MS_DEFAULT,
            storage: settings.storage.unwrap_or_default(),
            appendfsync: settings.appendfsync.unwrap_or_default(),
            segment_bytes: settings.segment_bytes.unwrap_or(SEGMENT_BYTES_DEFAULT),
            cluster,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks values that types alone cannot. `CONFIG SET` runs it too, on the changed copy,
    /// so a setting that `CONFIG SET` can change is refused there and at start in the same
    /// words: Redis's `CONFIG SET` reasons (`argument must be between 1 and 4294967295
    /// inclusive`).
    ///
    /// # Errors
    /// The first invalid field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.into(),
            })
        };
        if self.port == 0 {
            return invalid("port", "must be 1..65535");
        }
        if self.metrics_port == Some(self.port) {
            return invalid("metrics-port", "must differ from port");
        }
        if self.maxclients == 0 {
            return invalid("maxclients", &out_of_range(1, u32::MAX.into()));
        }
        if !(1..=THREADS_MAX).contains(&self.threads) {
            return invalid("threads", "must be 1..1024");
        }
        let byte_limits = BYTE_LIMIT_MIN..=BYTE_LIMIT_MAX;
        if !byte_limits.contains(&self.proto_max_bulk_len) {
            return invalid(
                "proto-max-bulk-len",
                &out_of_range(BYTE_LIMIT_MIN, BYTE_LIMIT_MAX),
            );
        }
        if !byte_limits.contains(&self.query_buffer_bytes_max) {
            return invalid(
                "client-query-buffer-limit",
                &out_of_range(BYTE_LIMIT_MIN, BYTE_LIMIT_MAX),
            );
        }
        if self.read_level == Level::Any {
            return invalid("read-consistency", "ANY is for writes only");
        }
        if self.timeout_s > i32::MAX as u64 {
            return invalid("timeout", &out_of_range(0, i32::MAX as u64));
        }
        if self.busy_reply_threshold_ms > i64::MAX as u64 {
            return invalid("busy-reply-threshold", &out_of_range(0, i64::MAX as u64));
        }
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) {
            return invalid("segment-bytes", "must be 1mb..1gb");
        }
        if !(1..=MAXMEMORY_SAMPLES_MAX).contains(&self.maxmemory_samples) {
            return invalid(
                "maxmemory-samples",
                &out_of_range(1, MAXMEMORY_SAMPLES_MAX.into()),
            );
        }
        self.cluster.validate()
    }
}

/// Redis's `CONFIG SET` reason for an integer outside `min..=max`.
fn out_of_range(min: u64, max: u64) -> String {
    ValueError::OutOfRange { min, max }.to_string()
}

fn parse_level(field: &'static str, raw: Option<&str>) -> Result<Level, ConfigError> {
    match raw {
        None => Ok(Level::Quorum),
        Some(text) => Level::parse(text.as_bytes()).map_err(|e| ConfigError::Invalid {
            field,
            reason: e.to_string().trim_start_matches("ERR ").to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["ringcache"];
        argv.extend_from_slice(args);
        Config::from_settings(Settings::try_parse_from(argv).expect("flags parse"))
    }

    fn config_error(args: &[&str]) -> String {
        config(args).unwrap_err().to_string()
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let config = config(&[]).unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1");
        assert_eq!(config.port, 6379);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.metrics_port, Some(9379));
        assert_eq!(config.maxclients, 10_000);
        assert_eq!(
            (config.read_level, config.write_level),
            (Level::Quorum, Level::Quorum)
        );
    }

    #[test]
    fn a_bad_value_is_refused_naming_its_field() {
        let err = config(&["--read-consistency", "ANY"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("read-consistency"), "{err}");
        let err = config(&["--proto-max-bulk-len", "10"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("proto-max-bulk-len"), "{err}");
        let err = config(&["--write-consistency", "most"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("write-consistency") && err.contains("QUORUM"),
            "{err}"
        );
        let err = config(&["--threads", "0"]).unwrap_err().to_string();
        assert!(err.contains("threads"), "{err}");
        assert_eq!(config(&["--threads", "3"]).unwrap().threads, 3);
        assert!(config(&[]).unwrap().threads >= 1);
    }

    #[test]
    fn maxmemory_settings_take_redis_units_and_names() {
        let defaults = config(&[]).unwrap();
        assert_eq!(defaults.maxmemory_bytes, 0);
        assert_eq!(defaults.maxmemory_policy, EvictionPolicy::NoEviction);
        assert_eq!(defaults.maxmemory_samples, 5);
        assert_eq!(defaults.storage, StorageEngine::Log);
        assert_eq!(defaults.segment_bytes, SEGMENT_BYTES_DEFAULT);
        assert_eq!(defaults.appendfsync, AppendFsync::Everysec);
        let config = config(&[
            "--maxmemory",
            "100mb",
            "--maxmemory-policy",
            "ALLKEYS-LFU",
            "--maxmemory-samples",
            "10",
            "--storage",
            "log",
            "--appendfsync",
            "always",
        ])
        .unwrap();
        assert_eq!(config.maxmemory_bytes, 100 << 20);
        assert_eq!(config.maxmemory_policy, EvictionPolicy::AllKeysLfu);
        assert_eq!(config.maxmemory_samples, 10);
        assert_eq!(config.storage, StorageEngine::Log);
        assert_eq!(config.appendfsync, AppendFsync::Always);
    }

    #[test]
    fn bad_maxmemory_settings_are_refused_naming_their_field() {
        let err = config_error(&["--maxmemory-policy", "lru"]);
        assert!(
            err.contains("maxmemory-policy") && err.contains("allkeys-lru"),
            "{err}"
        );
        let err = config_error(&["--maxmemory-samples", "0"]);
        assert!(err.contains("maxmemory-samples"), "{err}");
        let mut argv = vec!["ringcache", "--maxmemory", "lots"];
        assert!(Settings::try_parse_from(&argv).is_err());
        argv[1] = "--storage";
        argv[2] = "disk";
        assert!(Settings::try_parse_from(&argv).is_err());
        argv[1] = "--appendfsync";
        argv[2] = "sometimes";
        assert!(Settings::try_parse_from(&argv).is_err());
    }

    #[test]
    fn maxmemory_settings_come_from_the_file_too() {
        let dir = std::env::temp_dir().join(format!("ringcache-config-mm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ringcache.toml");
        std::fs::write(
            &file,
            "maxmemory = \"2mb\"\nmaxmemory-policy = \"volatile-ttl\"\nmaxmemory-samples = 7\n\
             storage = \"memory\"\nappendfsync = \"no\"\n",
        )
        .unwrap();
        let config = config(&["--config", file.to_str().unwrap()]).unwrap();
        assert_eq!(config.maxmemory_bytes, 2 << 20);
        assert_eq!(config.maxmemory_policy, EvictionPolicy::VolatileTtl);
        assert_eq!(config.maxmemory_samples, 7);
        assert_eq!(config.appendfsync, AppendFsync::No);
        std::fs::write(&file, "maxmemory = 1048576\n").unwrap();
        let config = self::config(&["--config", file.to_str().unwrap()]).unwrap();
        assert_eq!(config.maxmemory_bytes, 1 << 20);
        std::fs::write(&file, "maxmemory = \"much\"\n").unwrap();
        let err = config_error(&["--config", file.to_str().unwrap()]);
        assert!(err.contains("maxmemory"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = std::env::temp_dir().join(format!("ringcache-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ringcache.toml");
        std::fs::write(
            &file,
            "port = 7000\nmaxclients = 5\ndata-dir = \"/tmp/x\"\n",
        )
        .unwrap();
        let config = config(&["--config", file.to_str().unwrap(), "--port", "7001"]).unwrap();
        assert_eq!(config.port, 7001);
        assert_eq!(config.maxclients, 5);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unknown_key_in_the_file_is_refused_with_its_line() {
        let dir = std::env::temp_dir().join(format!("ringcache-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ringcache.toml");
        std::fs::write(&file, "port = 7000\nprot = 1\n").unwrap();
        let err = config(&["--config", file.to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("prot") && err.contains("line 2"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cluster_settings_have_documented_defaults_and_need_a_secret() {
        let single = config(&[]).unwrap().cluster;
        assert!(!single.enabled);
        assert_eq!(single.peer_port, 16379);
        assert_eq!(single.replication_factor, 3);
        assert_eq!(
            (single.read_timeout_ms, single.write_timeout_ms),
            (1000, 1000)
        );
        assert_eq!(single.hint_window_ms, 3 * 60 * 60 * 1000);
        assert_eq!(single.max_clock_offset_ms, 500);
        let err = config_error(&["--seeds", "127.0.0.1:7001"]);
        assert!(err.contains("cluster-secret"), "{err}");
        let clustered = config(&["--seeds", "a:1, b:2", "--cluster-secret", "s"]).unwrap();
        assert!(clustered.cluster.enabled);
        assert_eq!(clustered.cluster.seeds, vec!["a:1", "b:2"]);
        let err = config_error(&["--seeds", "nohost", "--cluster-secret", "s"]);
        assert!(err.contains("seeds") && err.contains("HOST:PORT"), "{err}");
        let err = config_error(&["--node-id", "xyz"]);
        assert!(err.contains("node-id"), "{err}");
        let err = config_error(&["--replication-factor", "9"]);
        assert!(err.contains("replication-factor"), "{err}");
    }
}
