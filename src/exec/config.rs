//! `CONFIG GET`, `CONFIG SET`, `CONFIG RESETSTAT`'s parameters: each one's Redis name, how
//! it is shown and how it is changed. Every parameter Redis 7.0's `CONFIG GET *` lists is
//! here, so a client asking for one gets an answer: ringcache's real value where it has
//! one, else Redis's default, read-only. A change is checked by [`Config::validate`], the same
//! code that checks the configuration at start, so both refuse the same values with the same
//! words.

use bytes::Bytes;
use ringcache_resp::glob::glob_match;
use ringcache_resp::{CommandError, Level, LevelError, Reply};

use super::{bulk, introspect};
use crate::config::{AppendFsync, Config, ConfigError, StorageEngine, ValueError, parse_memory};
use crate::node::Node;

/// `appendonly` as Redis spells it: the log engine is an append-only log.
fn appendonly(config: &Config) -> &'static str {
    if config.storage == StorageEngine::Log {
        "yes"
    } else {
        "no"
    }
}

/// Changes one parameter on a copy of the config, or says why the value cannot be read.
/// Whether the value is allowed is [`Config::validate`]'s to say, afterwards.
type SetParameter = fn(&mut Config, &str) -> Result<(), SetError>;

/// Why `CONFIG SET` refused a parameter (nothing was changed: all parameters are applied or
/// none). `Display` is the reason in Redis's `CONFIG SET failed (possibly related to
/// argument '...') - reason`.
#[derive(Debug, thiserror::Error)]
enum SetError {
    /// The same parameter twice in one command.
    #[error("duplicate parameter")]
    Duplicate,
    /// A parameter fixed at start.
    #[error("can't set immutable config")]
    Immutable,
    /// The value is not of the parameter's kind (not an integer, not a memory value, ...).
    #[error(transparent)]
    Value(#[from] ValueError),
    /// Not a `maxmemory-policy`: the storage crate's text, which lists the policies.
    #[error("{0}")]
    Policy(String),
    /// Not a consistency level: [`LevelError`]'s text without its `ERR ` prefix, which the
    /// CONFIG SET reply already carries (start-up drops it the same way, in `crate::config`).
    #[error("{}", .0.to_string().trim_start_matches("ERR "))]
    Level(#[from] LevelError),
    /// A `notify-keyspace-events` letter Redis does not know.
    #[error("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")]
    EventClass,
    /// `save` to anything but `""`.
    #[error("ringcache takes no RDB snapshots")]
    Snapshots,
    /// `appendonly` to another engine than the running one.
    #[error("the engine is chosen at start with --storage (log or memory)")]
    EngineFixed,
    /// [`Config::validate`] refused the changed copy: its reason without the field's name
    /// (the reply names the parameter).
    #[error("{}", refusal(.0))]
    Refused(ConfigError),
}

/// The reason of a [`Config::validate`] refusal, as `CONFIG SET` words it.
fn refusal(error: &ConfigError) -> String {
    match error {
        ConfigError::Invalid { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// What `CONFIG GET` shows for a parameter.
#[derive(Clone, Copy)]
enum Shown {
    /// Read from the running configuration (or a constant of the code it describes).
    Live(fn(&Config) -> String),
    /// Redis 7.0's default, for a parameter that does not apply to ringcache.
    Fixed(&'static str),
}

/// A parameter that `CONFIG GET` shows and `CONFIG SET` may change.
struct Parameter {
    name: &'static str,
    get: Shown,
    /// `None` when the parameter cannot be changed at run time.
    set: Option<SetParameter>,
}

impl Parameter {
    /// The value `CONFIG GET` answers.
    fn value(&self, config: &Config) -> String {
        match self.get {
            Shown::Live(get) => get(config),
            Shown::Fixed(value) => value.to_string(),
        }
    }
}

/// A parameter of Redis 7.0 that does not apply to ringcache: shown with Redis's default,
/// read-only (a `CONFIG SET` to that same value is accepted and changes nothing, so a client
/// that makes sure of a setting is not refused; any other value is refused as immutable).
const fn fixed(name: &'static str, value: &'static str) -> Parameter {
    Parameter {
        name,
        get: Shown::Fixed(value),
        set: None,
    }
}

/// `client-output-buffer-limit` as Redis 7.0 prints it: the pub/sub class is the bound a
/// subscriber's unwritten messages are held to (`crate::pubsub`); the others are Redis's
/// defaults (no replicas here; normal clients are not bounded by it).
fn output_buffer_limits(_: &Config) -> String {
    use crate::pubsub::{
        SUBSCRIBER_QUEUE_BYTES_MAX, SUBSCRIBER_QUEUE_SOFT_BYTES, SUBSCRIBER_SOFT_LIMIT_TIME,
    };
    format!(
        "normal 0 0 0 slave 268435456 67108864 60 pubsub {SUBSCRIBER_QUEUE_BYTES_MAX} \
         {SUBSCRIBER_QUEUE_SOFT_BYTES} {}",
        SUBSCRIBER_SOFT_LIMIT_TIME.as_secs()
    )
}

fn parse_integer<T: std::str::FromStr>(value: &str) -> Result<T, ValueError> {
    value.parse().map_err(|_| ValueError::NotInteger)
}

/// An integer parameter: any `i64` is read, as Redis does; one that does not fit the field's
/// type becomes `refused`, a value [`Config::validate`] refuses, so that it is answered with
/// the field's range like any other value out of it (`maxclients -1`).
fn integer<T: TryFrom<i64>>(value: &str, refused: T) -> Result<T, ValueError> {
    Ok(T::try_from(parse_integer::<i64>(value)?).unwrap_or(refused))
}

fn parse_level(value: &str) -> Result<Level, LevelError> {
    Level::parse(value.as_bytes())
}

/// `busy-reply-threshold`, which `lua-time-limit` names too.
const BUSY_REPLY_THRESHOLD: Parameter = Parameter {
    name: "busy-reply-threshold",
    get: Shown::Live(|c| c.busy_reply_threshold_ms.to_string()),
    set: Some(|c, v| {
        c.busy_reply_threshold_ms = integer(v, u64::MAX)?;
        Ok(())
    }),
};

/// Every parameter `CONFIG GET` knows: ringcache's real ones first, then Redis 7.0's others
/// with their defaults. The one list of names: `CONFIG GET`, `CONFIG SET` and the tests read
/// it.
const PARAMETERS: &[Parameter] = &[
    Parameter {
        name: "bind",
        get: Shown::Live(|c| c.bind.to_string()),
        set: None,
    },
    Parameter {
        name: "port",
        get: Shown::Live(|c| c.port.to_string()),
        set: None,
    },
    Parameter {
        name: "dir",
        get: Shown::Live(|c| {
            std::fs::canonicalize(&c.data_dir)
                .unwrap_or(c.data_dir.clone())
                .display()
                .to_string()
        }),
        set: None,
    },
    Parameter {
        name: "databases",
        get: Shown::Live(|_| "1".into()),
        set: None,
    },
    Parameter {
        name: "requirepass",
        get: Shown::Live(|c| c.requirepass.clone().unwrap_or_default()),
        set: Some(|c, v| {
            c.requirepass = Some(v.to_string()).filter(|p| !p.is_empty());
            Ok(())
        }),
    },
    Parameter {
        name: "maxclients",
        get: Shown::Live(|c| c.maxclients.to_string()),
        set: Some(|c, v| {
            c.maxclients = integer(v, 0)?;
            Ok(())
        }),
    },
    Parameter {
        name: "timeout",
        get: Shown::Live(|c| c.timeout_s.to_string()),
        set: Some(|c, v| {
            c.timeout_s = integer(v, u64::MAX)?;
            Ok(())
        }),
    },
    Parameter {
        name: "proto-max-bulk-len",
        get: Shown::Live(|c| c.proto_max_bulk_len.to_string()),
        set: Some(|c, v| {
            c.proto_max_bulk_len = parse_memory(v)?;
            Ok(())
        }),
    },
    Parameter {
        name: "client-query-buffer-limit",
        get: Shown::Live(|c| c.query_buffer_bytes_max.to_string()),
        set: Some(|c, v| {
            c.query_buffer_bytes_max = parse_memory(v)?;
            Ok(())
        }),
    },
    Parameter {
        name: "maxmemory",
        get: Shown::Live(|c| c.maxmemory_bytes.to_string()),
        set: Some(|c, v| {
            c.maxmemory_bytes = parse_memory(v)?;
            Ok(())
        }),
    },
    Parameter {
        name: "maxmemory-policy",
        get: Shown::Live(|c| c.maxmemory_policy.to_string()),
        set: Some(|c, v| {
            c.maxmemory_policy = v.parse().map_err(SetError::Policy)?;
            Ok(())
        }),
    },
    BUSY_REPLY_THRESHOLD,
    // Redis 7's old name of the same parameter.
    Parameter {
        name: "lua-time-limit",
        ..BUSY_REPLY_THRESHOLD
    },
    Parameter {
        name: "notify-keyspace-events",
        get: Shown::Live(|c| crate::notify::classes_text(c.notify_keyspace_events)),
        set: Some(|c, v| {
            c.notify_keyspace_events =
                crate::notify::parse_classes(v).ok_or(SetError::EventClass)?;
            Ok(())
        }),
    },
    Parameter {
        name: "maxmemory-samples",
        get: Shown::Live(|c| c.maxmemory_samples.to_string()),
        set: Some(|c, v| {
            c.maxmemory_samples = integer(v, 0)?;
            Ok(())
        }),
    },
    Parameter {
        name: "storage",
        get: Shown::Live(|c| c.storage.to_string()),
        set: None,
    },
    Parameter {
        name: "segment-bytes",
        get: Shown::Live(|c| c.segment_bytes.to_string()),
        set: None,
    },
    Parameter {
        name: "appendfsync",
        get: Shown::Live(|c| c.appendfsync.to_string()),
        set: Some(|c, v| {
            c.appendfsync = AppendFsync::parse(v)?;
            Ok(())
        }),
    },
    // The thresholds of Redis's compact encodings: what `OBJECT ENCODING` answers by (and
    // the HLL sparse limit), Redis's defaults, fixed here (docs/redis-compatibility.md).
    // Redis lists the old `ziplist` names too.
    Parameter {
        name: "hash-max-listpack-entries",
        get: Shown::Live(|_| introspect::HASH_LISTPACK_ENTRIES_MAX.to_string()),
        set: None,
    },
    Parameter {
        name: "hash-max-ziplist-entries",
        get: Shown::Live(|_| introspect::HASH_LISTPACK_ENTRIES_MAX.to_string()),
        set: None,
    },
    Parameter {
        name: "hash-max-listpack-value",
        get: Shown::Live(|_| introspect::LISTPACK_VALUE_BYTES_MAX.to_string()),
        set: None,
    },
    Parameter {
        name: "hash-max-ziplist-value",
        get: Shown::Live(|_| introspect::LISTPACK_VALUE_BYTES_MAX.to_string()),
        set: None,
    },
    Parameter {
        name: "zset-max-listpack-entries",
        get: Shown::Live(|_| introspect::ZSET_LISTPACK_ENTRIES_MAX.to_string()),
        set: None,
    },
    Parameter {
        name: "zset-max-ziplist-entries",
        get: Shown::Live(|_| introspect::ZSET_LISTPACK_ENTRIES_MAX.to_string()),
        set: None,
    },
    Parameter {
        name: "zset-max-listpack-value",
        get: Shown::Live(|_| introspect::LISTPACK_VALUE_BYTES_MAX.to_string()),
        set: None,
    },
    Parameter {
        name: "zset-max-ziplist-value",
        get: Shown::Live(|_| introspect::LISTPACK_VALUE_BYTES_MAX.to_string()),
        set: None,
    },
    Parameter {
        name: "set-max-intset-entries",
        get: Shown::Live(|_| introspect::INTSET_ENTRIES_MAX.to_string()),
        set: None,
    },
    Parameter {
        name: "hll-sparse-max-bytes",
        get: Shown::Live(|_| ringcache_storage::hll::SPARSE_BYTES_MAX.to_string()),
        set: None,
    },
    Parameter {
        name: "save",
        get: Shown::Live(|_| String::new()),
        set: Some(|_, v| match v.is_empty() {
            true => Ok(()),
            false => Err(SetError::Snapshots),
        }),
    },
    Parameter {
        name: "appendonly",
        get: Shown::Live(|c| appendonly(c).into()),
        set: Some(|c, v| match v.eq_ignore_ascii_case(appendonly(c)) {
            true => Ok(()),
            false => Err(SetError::EngineFixed),
        }),
    },
    Parameter {
        name: "read-consistency",
        get: Shown::Live(|c| c.read_level.to_string()),
        set: Some(|c, v| {
            c.read_level = parse_level(v)?;
            Ok(())
        }),
    },
    Parameter {
        name: "write-consistency",
        get: Shown::Live(|c| c.write_level.to_string()),
        set: Some(|c, v| {
            c.write_level = parse_level(v)?;
            Ok(())
        }),
    },
    Parameter {
        name: "client-output-buffer-limit",
        get: Shown::Live(output_buffer_limits),
        set: None,
    },
    // Every other parameter Redis 7.0's `CONFIG GET *` lists, with its default there: none
    // applies to ringcache (docs/redis-compatibility.md, "CONFIG").
    fixed("acl-pubsub-default", "resetchannels"),
    fixed("aclfile", ""),
    fixed("acllog-max-len", "128"),
    fixed("active-defrag-cycle-max", "25"),
    fixed("active-defrag-cycle-min", "1"),
    fixed("active-defrag-ignore-bytes", "104857600"),
    fixed("active-defrag-max-scan-fields", "1000"),
    fixed("active-defrag-threshold-lower", "10"),
    fixed("active-defrag-threshold-upper", "100"),
    fixed("active-expire-effort", "1"),
    fixed("activedefrag", "no"),
    fixed("activerehashing", "yes"),
    fixed("always-show-logo", "no"),
    fixed("aof-disable-auto-gc", "no"),
    fixed("aof-load-truncated", "yes"),
    fixed("aof-rewrite-incremental-fsync", "yes"),
    fixed("aof-timestamp-enabled", "no"),
    fixed("aof-use-rdb-preamble", "yes"),
    fixed("aof_rewrite_cpulist", ""),
    fixed("appenddirname", "appendonlydir"),
    fixed("appendfilename", "appendonly.aof"),
    fixed("auto-aof-rewrite-min-size", "67108864"),
    fixed("auto-aof-rewrite-percentage", "100"),
    fixed("bgsave_cpulist", ""),
    fixed("bind-source-addr", ""),
    fixed("bio_cpulist", ""),
    fixed("cluster-allow-pubsubshard-when-down", "yes"),
    fixed("cluster-allow-reads-when-down", "no"),
    fixed("cluster-allow-replica-migration", "yes"),
    fixed("cluster-announce-bus-port", "0"),
    fixed("cluster-announce-hostname", ""),
    fixed("cluster-announce-ip", ""),
    fixed("cluster-announce-port", "0"),
    fixed("cluster-announce-tls-port", "0"),
    fixed("cluster-config-file", "nodes.conf"),
    fixed("cluster-enabled", "no"),
    fixed("cluster-link-sendbuf-limit", "0"),
    fixed("cluster-migration-barrier", "1"),
    fixed("cluster-node-timeout", "15000"),
    fixed("cluster-port", "0"),
    fixed("cluster-preferred-endpoint-type", "ip"),
    fixed("cluster-replica-no-failover", "no"),
    fixed("cluster-replica-validity-factor", "10"),
    fixed("cluster-require-full-coverage", "yes"),
    fixed("cluster-slave-no-failover", "no"),
    fixed("cluster-slave-validity-factor", "10"),
    fixed("crash-log-enabled", "yes"),
    fixed("crash-memcheck-enabled", "yes"),
    fixed("daemonize", "no"),
    fixed("dbfilename", "dump.rdb"),
    fixed("disable-thp", "yes"),
    fixed("dynamic-hz", "yes"),
    fixed("enable-debug-command", "no"),
    fixed("enable-module-command", "no"),
    fixed("enable-protected-configs", "no"),
    fixed("hz", "10"),
    fixed("ignore-warnings", ""),
    fixed("io-threads", "1"),
    fixed("io-threads-do-reads", "no"),
    fixed("jemalloc-bg-thread", "yes"),
    fixed("latency-monitor-threshold", "0"),
    fixed("latency-tracking", "yes"),
    fixed("latency-tracking-info-percentiles", "50 99 99.9"),
    fixed("lazyfree-lazy-eviction", "no"),
    fixed("lazyfree-lazy-expire", "no"),
    fixed("lazyfree-lazy-server-del", "no"),
    fixed("lazyfree-lazy-user-del", "no"),
    fixed("lazyfree-lazy-user-flush", "no"),
    fixed("lfu-decay-time", "1"),
    fixed("lfu-log-factor", "10"),
    fixed("list-compress-depth", "0"),
    fixed("list-max-listpack-size", "-2"),
    fixed("list-max-ziplist-size", "-2"),
    fixed("logfile", ""),
    fixed("loglevel", "notice"),
    fixed("masterauth", ""),
    fixed("masteruser", ""),
    fixed("maxmemory-clients", "0"),
    fixed("maxmemory-eviction-tenacity", "10"),
    fixed("min-replicas-max-lag", "10"),
    fixed("min-replicas-to-write", "0"),
    fixed("min-slaves-max-lag", "10"),
    fixed("min-slaves-to-write", "0"),
    fixed("no-appendfsync-on-rewrite", "no"),
    fixed("oom-score-adj", "no"),
    fixed("oom-score-adj-values", "0 200 800"),
    fixed("pidfile", ""),
    fixed("proc-title-template", "{title} {listen-addr} {server-mode}"),
    fixed("propagation-error-behavior", "ignore"),
    fixed("protected-mode", "yes"),
    fixed("rdb-del-sync-files", "no"),
    fixed("rdb-save-incremental-fsync", "yes"),
    fixed("rdbchecksum", "yes"),
    fixed("rdbcompression", "yes"),
    fixed("repl-backlog-size", "1048576"),
    fixed("repl-backlog-ttl", "3600"),
    fixed("repl-disable-tcp-nodelay", "no"),
    fixed("repl-diskless-load", "disabled"),
    fixed("repl-diskless-sync", "yes"),
    fixed("repl-diskless-sync-delay", "5"),
    fixed("repl-diskless-sync-max-replicas", "0"),
    fixed("repl-ping-replica-period", "10"),
    fixed("repl-ping-slave-period", "10"),
    fixed("repl-timeout", "60"),
    fixed("replica-announce-ip", ""),
    fixed("replica-announce-port", "0"),
    fixed("replica-announced", "yes"),
    fixed("replica-ignore-disk-write-errors", "no"),
    fixed("replica-ignore-maxmemory", "yes"),
    fixed("replica-lazy-flush", "no"),
    fixed("replica-priority", "100"),
    fixed("replica-read-only", "yes"),
    fixed("replica-serve-stale-data", "yes"),
    fixed("replicaof", ""),
    fixed("sanitize-dump-payload", "no"),
    fixed("server_cpulist", ""),
    fixed("set-proc-title", "yes"),
    fixed("shutdown-on-sigint", "default"),
    fixed("shutdown-on-sigterm", "default"),
    fixed("shutdown-timeout", "10"),
    fixed("slave-announce-ip", ""),
    fixed("slave-announce-port", "0"),
    fixed("slave-ignore-maxmemory", "yes"),
    fixed("slave-lazy-flush", "no"),
    fixed("slave-priority", "100"),
    fixed("slave-read-only", "yes"),
    fixed("slave-serve-stale-data", "yes"),
    fixed("slaveof", ""),
    fixed("slowlog-log-slower-than", "10000"),
    fixed("slowlog-max-len", "128"),
    fixed("socket-mark-id", "0"),
    fixed("stop-writes-on-bgsave-error", "yes"),
    fixed("stream-node-max-bytes", "4096"),
    fixed("stream-node-max-entries", "100"),
    fixed("supervised", "no"),
    fixed("syslog-enabled", "no"),
    fixed("syslog-facility", "local0"),
    fixed("syslog-ident", "redis"),
    fixed("tcp-backlog", "511"),
    fixed("tcp-keepalive", "300"),
    fixed("tls-auth-clients", "yes"),
    fixed("tls-ca-cert-dir", ""),
    fixed("tls-ca-cert-file", ""),
    fixed("tls-cert-file", ""),
    fixed("tls-ciphers", ""),
    fixed("tls-ciphersuites", ""),
    fixed("tls-client-cert-file", ""),
    fixed("tls-client-key-file", ""),
    fixed("tls-client-key-file-pass", ""),
    fixed("tls-cluster", "no"),
    fixed("tls-dh-params-file", ""),
    fixed("tls-key-file", ""),
    fixed("tls-key-file-pass", ""),
    fixed("tls-port", "0"),
    fixed("tls-prefer-server-ciphers", "no"),
    fixed("tls-protocols", ""),
    fixed("tls-replication", "no"),
    fixed("tls-session-cache-size", "20480"),
    fixed("tls-session-cache-timeout", "300"),
    fixed("tls-session-caching", "yes"),
    fixed("tracking-table-max-keys", "1000000"),
    fixed("unixsocket", ""),
    fixed("unixsocketperm", "0"),
];

/// `CONFIG GET`: like Redis 7.0, a pattern without glob characters is looked up by name and
/// answered under the name as the client spelled it; a glob answers canonical names.
pub fn get(node: &Node, patterns: &[Bytes]) -> Reply {
    let config = node.config.read();
    let mut pairs: Vec<(Reply, Reply)> = Vec::new();
    let mut add = |name: Reply, parameter: &Parameter| {
        if !pairs.iter().any(|(n, _)| *n == name) {
            pairs.push((name, Reply::Bulk(Bytes::from(parameter.value(&config)))));
        }
    };
    for pattern in patterns {
        if pattern.iter().any(|b| matches!(b, b'*' | b'?' | b'[')) {
            let matching = PARAMETERS
                .iter()
                .filter(|p| glob_match(pattern, p.name.as_bytes(), true));
            for parameter in matching {
                add(bulk(parameter.name), parameter);
            }
        } else if let Some(parameter) = PARAMETERS
            .iter()
            .find(|p| p.name.as_bytes().eq_ignore_ascii_case(pattern))
        {
            add(Reply::Bulk(pattern.clone()), parameter);
        }
    }
    Reply::Map(pairs)
}

/// `CONFIG SET`: every parameter is checked on a copy first; all are applied or none.
pub fn set(node: &Node, pairs: &[(Bytes, Bytes)]) -> Reply {
    // Validate everything on a copy first: CONFIG SET applies all parameters or none.
    let mut config = node.config.read().clone();
    let mut seen = Vec::new();
    for (name, value) in pairs {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let Some(parameter) = PARAMETERS.iter().find(|p| p.name == name) else {
            return Reply::error(CommandError::UnknownConfig(name));
        };
        if let Err(e) = set_one(&mut config, &mut seen, parameter, value) {
            return Reply::error(CommandError::ConfigSetFailed {
                arg: name,
                reason: e.to_string(),
            });
        }
    }
    if let Err(e) = node.store.set_fsync_policy(config.appendfsync.into()) {
        return Reply::error(e);
    }
    crate::notify::select(node, config.notify_keyspace_events);
    *node.config.write() = config;
    Reply::Ok
}

/// Sets one parameter on `config`, the copy, and checks the copy; `seen` holds the
/// parameters set before it in the same command.
fn set_one(
    config: &mut Config,
    seen: &mut Vec<&'static str>,
    parameter: &Parameter,
    value: &[u8],
) -> Result<(), SetError> {
    if seen.contains(&parameter.name) {
        return Err(SetError::Duplicate);
    }
    seen.push(parameter.name);
    if let Shown::Fixed(current) = parameter.get
        && current.as_bytes().eq_ignore_ascii_case(value)
    {
        return Ok(());
    }
    let set = parameter.set.ok_or(SetError::Immutable)?;
    set(config, &String::from_utf8_lossy(value))?;
    // The same check as at start: the rest of the copy was valid, so a refusal is about
    // this parameter.
    config.validate().map_err(SetError::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::info::info;
    use crate::exec::testing::{node, run, session};

    #[test]
    fn config_get_matches_patterns_and_set_changes_values() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(
            run(&node, &mut s, "CONFIG GET maxclients"),
            Reply::Map(vec![(bulk("maxclients"), bulk("10000"))])
        );
        assert_eq!(
            run(&node, &mut s, "CONFIG SET timeout 30 maxclients 20"),
            Reply::Ok
        );
        assert_eq!(node.config.read().timeout_s, 30);
        assert_eq!(
            run(&node, &mut s, "CONFIG GET nothing-like-this"),
            Reply::Map(vec![])
        );
        let Reply::Map(all) = run(&node, &mut s, "CONFIG GET *") else {
            panic!()
        };
        assert_eq!(all.len(), PARAMETERS.len());
    }

    #[test]
    fn config_get_of_an_exact_name_answers_it_as_spelled() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(
            run(&node, &mut s, "CONFIG GET MAXMEMORY"),
            Reply::Map(vec![(bulk("MAXMEMORY"), bulk("0"))])
        );
        assert_eq!(
            run(&node, &mut s, "CONFIG GET MAXMEM*"),
            Reply::Map(vec![
                (bulk("maxmemory"), bulk("0")),
                (bulk("maxmemory-policy"), bulk("noeviction")),
                (bulk("maxmemory-samples"), bulk("5")),
                (bulk("maxmemory-clients"), bulk("0")),
                (bulk("maxmemory-eviction-tenacity"), bulk("10")),
            ])
        );
    }

    #[test]
    fn a_parameter_that_does_not_apply_shows_redis_s_default_and_keeps_it() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(
            run(
                &node,
                &mut s,
                "CONFIG GET maxmemory hash-max-listpack-entries lua-time-limit"
            ),
            Reply::Map(vec![
                (bulk("maxmemory"), bulk("0")),
                (bulk("hash-max-listpack-entries"), bulk("512")),
                (bulk("lua-time-limit"), bulk("5000")),
            ])
        );
        assert_eq!(run(&node, &mut s, "CONFIG SET loglevel NOTICE"), Reply::Ok);
        assert_eq!(
            run(&node, &mut s, "CONFIG SET loglevel debug"),
            Reply::error(
                "ERR CONFIG SET failed (possibly related to argument 'loglevel') - can't set \
                 immutable config"
            )
        );
    }

    #[test]
    fn config_set_applies_all_or_nothing() {
        let node = node();
        let mut s = session(&node);
        let reply = run(&node, &mut s, "CONFIG SET timeout 5 maxclients many");
        assert_eq!(
            reply,
            Reply::error(
                "ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument \
                 couldn't be parsed into an integer"
            )
        );
        assert_eq!(node.config.read().timeout_s, 0);
    }

    #[test]
    fn maxmemory_parameters_are_real_and_refuse_bad_values_with_redis_texts() {
        let node = node();
        let mut s = session(&node);
        assert_eq!(
            run(
                &node,
                &mut s,
                "CONFIG SET maxmemory 2mb maxmemory-policy ALLKEYS-LFU maxmemory-samples 10"
            ),
            Reply::Ok
        );
        assert_eq!(
            run(
                &node,
                &mut s,
                "CONFIG GET maxmemory maxmemory-policy maxmemory-samples"
            ),
            Reply::Map(vec![
                (bulk("maxmemory"), bulk("2097152")),
                (bulk("maxmemory-policy"), bulk("allkeys-lfu")),
                (bulk("maxmemory-samples"), bulk("10")),
            ])
        );
        let text = info(&node, &[Bytes::from_static(b"memory")]);
        assert!(text.contains("maxmemory:2097152\r\n"), "{text}");
        assert!(text.contains("maxmemory_human:2.00M\r\n"), "{text}");
        assert!(text.contains("maxmemory_policy:allkeys-lfu\r\n"), "{text}");
        let refused = [
            (
                "CONFIG SET maxmemory-policy foo",
                "ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - \
                 argument(s) must be one of the following: volatile-lru, volatile-lfu, \
                 volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, \
                 noeviction",
            ),
            (
                "CONFIG SET maxmemory lots",
                "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument \
                 must be a memory value",
            ),
            (
                "CONFIG SET maxmemory -1",
                "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument \
                 must be a memory value",
            ),
            (
                "CONFIG SET maxmemory-samples 0",
                "ERR CONFIG SET failed (possibly related to argument 'maxmemory-samples') - \
                 argument must be between 1 and 2147483647 inclusive",
            ),
            (
                "CONFIG SET maxmemory-samples x",
                "ERR CONFIG SET failed (possibly related to argument 'maxmemory-samples') - \
                 argument couldn't be parsed into an integer",
            ),
            (
                "CONFIG SET appendfsync sometimes",
                "ERR CONFIG SET failed (possibly related to argument 'appendfsync') - \
                 argument(s) must be one of the following: everysec, always, no",
            ),
            (
                "CONFIG SET storage log",
                "ERR CONFIG SET failed (possibly related to argument 'storage') - can't set \
                 immutable config",
            ),
        ];
        for (line, error) in refused {
            assert_eq!(run(&node, &mut s, line), Reply::error(error), "{line}");
        }
        assert_eq!(node.config.read().maxmemory_bytes, 2 << 20);
        assert_eq!(
            run(&node, &mut s, "CONFIG SET appendfsync ALWAYS"),
            Reply::Ok
        );
        assert_eq!(
            run(&node, &mut s, "CONFIG GET appendfsync storage"),
            Reply::Map(vec![
                (bulk("appendfsync"), bulk("always")),
                (bulk("storage"), bulk("log")),
            ])
        );
    }

    #[test]
    fn config_set_refuses_what_the_config_file_refuses_in_redis_words() {
        let node = node();
        let mut s = session(&node);
        let refused = [
            (
                "maxclients",
                "0",
                "argument must be between 1 and 4294967295 inclusive",
            ),
            (
                "maxclients",
                "-1",
                "argument must be between 1 and 4294967295 inclusive",
            ),
            (
                "maxclients",
                "4294967296",
                "argument must be between 1 and 4294967295 inclusive",
            ),
            (
                "timeout",
                "-1",
                "argument must be between 0 and 2147483647 inclusive",
            ),
            (
                "client-query-buffer-limit",
                "10",
                "argument must be between 1048576 and 9223372036854775807 inclusive",
            ),
            ("read-consistency", "ANY", "ANY is for writes only"),
        ];
        for (name, value, reason) in refused {
            assert_eq!(
                run(&node, &mut s, &format!("CONFIG SET {name} {value}")),
                Reply::error(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
                )),
                "{name} {value}"
            );
            let mut config = node.config.read().clone();
            let set = PARAMETERS
                .iter()
                .find(|p| p.name == name)
                .unwrap()
                .set
                .unwrap();
            set(&mut config, value).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert_eq!(error, format!("invalid value for {name}: {reason}"));
        }
        assert_eq!(node.config.read().maxclients, 10_000);
        assert_eq!(run(&node, &mut s, "CONFIG SET maxclients 1"), Reply::Ok);
        assert_eq!(node.config.read().maxclients, 1);
    }

    #[test]
    fn config_set_words_its_own_refusals_as_it_always_has() {
        let node = node();
        let mut s = session(&node);
        let refused = [
            (
                "CONFIG SET timeout 1 TIMEOUT 2",
                "timeout",
                "duplicate parameter",
            ),
            (
                "CONFIG SET save 900",
                "save",
                "ringcache takes no RDB snapshots",
            ),
            (
                "CONFIG SET appendonly no",
                "appendonly",
                "the engine is chosen at start with --storage (log or memory)",
            ),
            (
                "CONFIG SET write-consistency most",
                "write-consistency",
                "invalid consistency level 'most': valid levels are ONE, TWO, THREE, \
                 QUORUM, ALL, ANY (writes only) or an integer from 1 to 255",
            ),
        ];
        for (line, name, reason) in refused {
            assert_eq!(
                run(&node, &mut s, line),
                Reply::error(format!(
                    "ERR CONFIG SET failed (possibly related to argument '{name}') - {reason}"
                )),
                "{line}"
            );
        }
        assert_eq!(run(&node, &mut s, "CONFIG SET appendonly YES"), Reply::Ok);
    }

    #[test]
    fn memory_values_take_redis_units() {
        assert_eq!(parse_memory("512mb"), Ok(512 << 20));
        assert_eq!(parse_memory("1k"), Ok(1000));
        assert_eq!(parse_memory("1GB"), Ok(1 << 30));
        assert!(parse_memory("lots").is_err());
    }
}
